/* log: see log.h.
 *
 * Invariants: log_ident is never NULL (a heap copy or the default literal);
 * log_form is LOG_FORM_UNKNOWN only until log_init() or the first message
 * decides it. A line is built whole in memory (on the stack when it is
 * short, else on the heap) and written with one write() call, so lines of
 * one process never interleave mid-line on a pipe or the journal stream.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum log_form { LOG_FORM_UNKNOWN, LOG_FORM_PLAIN, LOG_FORM_JOURNAL };

static const char log_default_ident[] = "dispatch";
static char *log_ident_copy;
static const char *log_ident = log_default_ident;
static log_level_t log_threshold = LOG_LEVEL_INFO;
static enum log_form log_form = LOG_FORM_UNKNOWN;

/* JOURNAL_STREAM is "device:inode" of the stream systemd connected; it is
 * inherited by children whose stderr may be elsewhere, hence the fstat. */
static bool stderr_is_journal(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    if (stream == NULL || stream[0] == '\0')
        return false;
    unsigned long long device, inode;
    char trailing;
    if (sscanf(stream, "%llu:%llu%c", &device, &inode, &trailing) != 2)
        return false;
    struct stat status;
    if (fstat(STDERR_FILENO, &status) < 0)
        return false;
    return (unsigned long long)status.st_dev == device &&
           (unsigned long long)status.st_ino == inode;
}

int log_init(const char *ident)
{
    log_form = stderr_is_journal() ? LOG_FORM_JOURNAL : LOG_FORM_PLAIN;
    if (ident == NULL)
        return 0;
    char *copy = strdup(ident);
    if (copy == NULL)
        return -ENOMEM;
    free(log_ident_copy);
    log_ident_copy = copy;
    log_ident = copy;
    return 0;
}

void log_set_level(log_level_t level)
{
    log_threshold = level;
}

log_level_t log_get_level(void)
{
    return log_threshold;
}

/* Each level's word first, then the other spellings it accepts. */
static const struct {
    const char *name;
    log_level_t level;
} level_names[] = {
    {"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN}, {"info", LOG_LEVEL_INFO},
    {"debug", LOG_LEVEL_DEBUG}, {"err", LOG_LEVEL_ERROR}, {"warning", LOG_LEVEL_WARN},
};

int log_parse_level(const char *name)
{
    if (name == NULL)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcasecmp(name, level_names[i].name) == 0)
            return (int)level_names[i].level;
    return -EINVAL;
}

static const char *level_word(log_level_t level)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (level_names[i].level == level)
            return level_names[i].name;
    return "?";
}

/* "2026-11-25T09:00:00.123+0800"; empty if the clock cannot be read. */
static void format_now(char *buffer, size_t size)
{
    struct timespec now;
    struct tm local;
    buffer[0] = '\0';
    if (clock_gettime(CLOCK_REALTIME, &now) < 0 || localtime_r(&now.tv_sec, &local) == NULL)
        return;
    char seconds[32], zone[8];
    strftime(seconds, sizeof(seconds), "%Y-%m-%dT%H:%M:%S", &local);
    strftime(zone, sizeof(zone), "%z", &local);
    snprintf(buffer, size, "%s.%03ld%s", seconds, now.tv_nsec / 1000000L, zone);
}

/* Copies at most `limit` bytes of `message` to `out` with control
 * characters escaped; `out` has room for 4 bytes per byte copied. Returns
 * the bytes written. */
static size_t escape_message(const char *message, size_t limit, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    const unsigned char *end = (const unsigned char *)message + limit;
    for (const unsigned char *c = (const unsigned char *)message; c < end && *c != '\0'; c++) {
        if (*c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (*c == '\r') {
            out[n++] = '\\';
            out[n++] = 'r';
        } else if ((*c < 0x20 && *c != '\t') || *c == 0x7f) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[*c >> 4];
            out[n++] = hex[*c & 0xf];
        } else {
            out[n++] = (char)*c;
        }
    }
    return n;
}

static void write_all(const char *data, size_t length)
{
    while (length > 0) {
        ssize_t written = write(STDERR_FILENO, data, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return;
        data += written;
        length -= (size_t)written;
    }
}

void log_msg(log_level_t level, const char *format, ...)
{
    if (level > log_threshold)
        return;
    if (log_form == LOG_FORM_UNKNOWN)
        log_form = stderr_is_journal() ? LOG_FORM_JOURNAL : LOG_FORM_PLAIN;
    int saved_errno = errno; /* callers may log and then look at errno */

    char message_stack[1024];
    char *message_heap = NULL;
    const char *message = message_stack;
    va_list args;
    va_start(args, format);
    int length = vsnprintf(message_stack, sizeof(message_stack), format, args);
    va_end(args);
    if (length < 0) {
        message = "(unformattable log message)";
    } else if ((size_t)length >= sizeof(message_stack)) {
        message_heap = malloc((size_t)length + 1);
        if (message_heap != NULL) {
            va_start(args, format);
            vsnprintf(message_heap, (size_t)length + 1, format, args);
            va_end(args);
            message = message_heap;
        } /* else: the stack copy, cut short, is better than nothing */
    }

    char prefix[192]; /* an ident past ~140 bytes is cut: it is only a label */
    if (log_form == LOG_FORM_JOURNAL) {
        snprintf(prefix, sizeof(prefix), "<%d>", (int)level);
    } else {
        char now[64];
        format_now(now, sizeof(now));
        snprintf(prefix, sizeof(prefix), "%s %s %s: ", now, level_word(level), log_ident);
    }
    size_t prefix_length = strlen(prefix);
    size_t message_length = strlen(message);

    /* Escaping may quadruple the message; then a newline. */
    char line_stack[4096];
    char *line_heap = NULL;
    char *line = line_stack;
    size_t room = sizeof(line_stack) - prefix_length - 1;
    if (message_length * 4 > room) {
        line_heap = malloc(prefix_length + message_length * 4 + 1);
        if (line_heap != NULL) {
            line = line_heap;
            room = message_length * 4;
        }
    }
    memcpy(line, prefix, prefix_length);
    size_t n = prefix_length + escape_message(message, room / 4, line + prefix_length);
    line[n++] = '\n';
    write_all(line, n);

    free(line_heap);
    free(message_heap);
    errno = saved_errno;
}

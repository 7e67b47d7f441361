/* ini: see ini.h for the syntax.
 *
 * Why not libinih (Debian's libinih 55): it cuts section names at 49 bytes
 * without a word, reads a line into a 200-byte buffer and parses the rest of
 * a longer one as a line of its own, gives the handler no line number, and
 * its settings (multi-line values, line size) are process-wide globals.
 * Working around that took more code than reading the lines here.
 *
 * The reader takes the source one physical line at a time, from the file
 * with getline() or from the text by copying the line out, into one buffer
 * that grows to the longest line: the line is whole, writable and
 * NUL-terminated, so it is cut into key and value in place.
 *
 * Invariants of struct reader between two lines:
 *   - line_number is the number of physical lines read so far;
 *   - section is a copy of the last header's name, NULL before the first;
 *   - continued_key is set iff the line above was a key line, or an
 *     indented line going on with one, and its key is one of the handler's
 *     continued_keys (it then points at that entry): an indented line is
 *     accepted iff continued_key is set;
 *   - the first error ends the reading, so exactly one message is written.
 */
#include "ini.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BYTE_ORDER_MARK "\xEF\xBB\xBF"

struct reader {
    const char *origin;
    FILE *file;       /* owned; the source is the file, or else text */
    const char *text; /* what is left of the text; not owned */
    char *line;       /* the current physical line without its line end */
    size_t line_capacity;
    int line_number;
    char *section;
    const char *continued_key;
    const ini_handler_t *handler;
    char *err;
    size_t err_len;
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

__attribute__((format(printf, 5, 0))) static void write_message(char *err, size_t err_len,
                                                                const char *origin, int line,
                                                                const char *format, va_list args)
{
    if (err == NULL || err_len == 0)
        return;
    int prefix = line > 0 ? snprintf(err, err_len, "%s:%d: ", origin, line)
                          : snprintf(err, err_len, "%s: ", origin);
    if (prefix < 0 || (size_t)prefix >= err_len)
        return;
    vsnprintf(err + prefix, err_len - (size_t)prefix, format, args);
}

int ini_report(const ini_item_t *item, char *err, size_t err_len, int code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    write_message(err, err_len, item->origin, item->line, format, args);
    va_end(args);
    return code;
}

__attribute__((format(printf, 4, 5))) static int reader_fail(struct reader *reader, int code,
                                                             int line, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    write_message(reader->err, reader->err_len, reader->origin, line, format, args);
    va_end(args);
    return code;
}

/* Reads the next physical line into reader->line, without its line end.
 * Returns 1 and its length in *length, 0 at the end, or a negative errno. */
static int reader_next_line(struct reader *reader, size_t *length)
{
    size_t span;
    if (reader->file != NULL) {
        errno = 0;
        ssize_t got = getline(&reader->line, &reader->line_capacity, reader->file);
        if (got < 0 && !ferror(reader->file))
            return 0;
        if (got < 0) {
            int code = -(errno != 0 ? errno : EIO);
            if (code == -ENOMEM)
                return reader_fail(reader, code, reader->line_number + 1, "out of memory");
            return reader_fail(reader, code, reader->line_number + 1, "cannot read: %s",
                               strerror(-code));
        }
        span = (size_t)got;
    } else {
        if (*reader->text == '\0')
            return 0;
        const char *newline = strchr(reader->text, '\n');
        span = newline != NULL ? (size_t)(newline - reader->text) + 1 : strlen(reader->text);
        if (span + 1 > reader->line_capacity) {
            char *grown = realloc(reader->line, span + 1);
            if (grown == NULL)
                return reader_fail(reader, -ENOMEM, reader->line_number + 1, "out of memory");
            reader->line = grown;
            reader->line_capacity = span + 1;
        }
        memcpy(reader->line, reader->text, span);
        reader->line[span] = '\0';
        reader->text += span;
    }
    if (span > 0 && reader->line[span - 1] == '\n')
        reader->line[--span] = '\0';
    if (span > 0 && reader->line[span - 1] == '\r')
        reader->line[--span] = '\0';
    *length = span;
    return 1;
}

/* Cuts `text` at a ';' that follows whitespace. */
static void cut_inline_comment(char *text)
{
    for (char *c = text; *c != '\0'; c++)
        if (*c == ';' && c > text && is_blank(c[-1])) {
            *c = '\0';
            return;
        }
}

/* Strips whitespace from both ends of `text`, in place. */
static char *trim(char *text)
{
    while (is_blank(*text))
        text++;
    size_t length = strlen(text);
    while (length > 0 && is_blank(text[length - 1]))
        text[--length] = '\0';
    return text;
}

/* The entry of continued_keys that is `key`, or NULL. */
static const char *find_continued_key(const ini_handler_t *handler, const char *key)
{
    for (const char *const *name = handler->continued_keys; name != NULL && *name != NULL; name++)
        if (strcmp(*name, key) == 0)
            return *name;
    return NULL;
}

static int reader_refuse_indented_line(struct reader *reader)
{
    const char *const *names = reader->handler->continued_keys;
    if (names == NULL || names[0] == NULL)
        return reader_fail(reader, -EINVAL, reader->line_number,
                           "indented line: no value may go on over indented lines; start every "
                           "key at the beginning of its line");
    char list[128] = "";
    for (size_t i = 0; names[i] != NULL; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? " or " : "", names[i]);
    }
    return reader_fail(reader, -EINVAL, reader->line_number,
                       "indented line: only a %s list may go on over indented lines; start every "
                       "key at the beginning of its line",
                       list);
}

/* `start` points at '['. */
static int reader_take_header(struct reader *reader, char *start, ini_item_t *item)
{
    char *end = strchr(start + 1, ']');
    if (end == NULL)
        return reader_fail(reader, -EINVAL, reader->line_number, "section header without ']'");
    for (const char *after = end + 1; *after != '\0' && *after != ';' && *after != '#'; after++)
        if (!is_blank(*after))
            return reader_fail(reader, -EINVAL, reader->line_number,
                               "unexpected text after section header");
    *end = '\0';
    char *name = strdup(start + 1);
    if (name == NULL)
        return reader_fail(reader, -ENOMEM, reader->line_number, "out of memory");
    free(reader->section);
    reader->section = name;
    *item = (ini_item_t){.origin = reader->origin, .line = reader->line_number, .section = name};
    return 1;
}

/* `start` is the beginning of a line that is not indented. */
static int reader_take_key(struct reader *reader, char *start, ini_item_t *item)
{
    cut_inline_comment(start);
    char *equals = strchr(start, '=');
    if (equals == NULL)
        return reader_fail(reader, -EINVAL, reader->line_number, "expected 'key = value'");
    *equals = '\0';
    char *key = trim(start);
    if (key[0] == '\0')
        return reader_fail(reader, -EINVAL, reader->line_number, "missing key before '='");
    if (reader->section == NULL)
        return reader_fail(reader, -EINVAL, reader->line_number,
                           "key '%s' before any section header", key);
    reader->continued_key = find_continued_key(reader->handler, key);
    *item = (ini_item_t){
        .origin = reader->origin,
        .line = reader->line_number,
        .section = reader->section,
        .key = key,
        .value = trim(equals + 1),
    };
    return 1;
}

/* `start` is the first non-blank character of an indented line. */
static int reader_take_continuation(struct reader *reader, char *start, ini_item_t *item)
{
    if (reader->continued_key == NULL)
        return reader_refuse_indented_line(reader);
    cut_inline_comment(start);
    *item = (ini_item_t){
        .origin = reader->origin,
        .line = reader->line_number,
        .section = reader->section,
        .key = reader->continued_key,
        .value = trim(start),
        .continued = true,
    };
    return 1;
}

/* Reads up to the next header or key line. Returns 1 with *item set, 0 at
 * the end, or a negative errno (the message written). */
static int reader_next(struct reader *reader, ini_item_t *item)
{
    for (;;) {
        size_t length = 0;
        int r = reader_next_line(reader, &length);
        if (r <= 0)
            return r;
        reader->line_number++;

        char *line = reader->line;
        if (strlen(line) != length)
            return reader_fail(reader, -EINVAL, reader->line_number, "line contains a NUL byte");
        if (reader->line_number == 1 && strncmp(line, BYTE_ORDER_MARK, 3) == 0) {
            line += 3;
            length -= 3;
        }
        char *start = line;
        while (is_blank(*start))
            start++;
        if (*start == '\0' || *start == ';' || *start == '#') {
            reader->continued_key = NULL;
            continue;
        }
        if (length > INI_LINE_MAX)
            return reader_fail(reader, -EINVAL, reader->line_number,
                               "line is %zu bytes long; a line holds at most %d", length,
                               INI_LINE_MAX);
        if (start > line)
            return reader_take_continuation(reader, start, item);
        reader->continued_key = NULL;
        if (*start == '[')
            return reader_take_header(reader, start, item);
        return reader_take_key(reader, start, item);
    }
}

int ini_parse(const char *origin, const char *text, const ini_handler_t *handler, void *user,
              char *err, size_t err_len)
{
    if (origin == NULL || handler == NULL || handler->key == NULL)
        return -EINVAL;
    struct reader reader = {
        .origin = origin,
        .text = text,
        .handler = handler,
        .err = err,
        .err_len = err_len,
    };
    if (text == NULL) {
        reader.file = fopen(origin, "re");
        if (reader.file == NULL) {
            int code = -errno;
            return reader_fail(&reader, code, 0, "%s", strerror(-code));
        }
    }

    ini_item_t item;
    int r;
    while ((r = reader_next(&reader, &item)) > 0) {
        if (item.key == NULL)
            r = handler->section != NULL ? handler->section(user, &item) : 0;
        else
            r = handler->key(user, &item);
        if (r < 0)
            break;
    }

    if (reader.file != NULL)
        fclose(reader.file);
    free(reader.line);
    free(reader.section);
    return r;
}

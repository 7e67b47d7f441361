/* log: one line per message on stderr, for the workers' and tools' main.c.
 * Library code in common/ never logs; it returns errors to its caller.
 *
 * Two output forms, chosen by log_init():
 *   - stderr is the journal (JOURNAL_STREAM names the very device:inode of
 *     stderr, as systemd documents): "<3>message", the syslog priority in
 *     the form journald parses; journald adds time and identifier itself;
 *   - otherwise: "2026-11-25T09:00:00.123+0800 info router-chaoyang: message"
 *     (local time with its offset, level, ident).
 *
 * A message stays on one line: newlines and other control characters in it
 * are written as \n, \r, \xHH, so that text from outside (a caller's
 * description) cannot forge a log line. Each line goes out in one write().
 *
 * State (level, ident, form) is process-wide and meant to be set once at
 * start, before other threads exist; log_msg() itself keeps no state.
 */
#ifndef DISPATCH_LOG_H
#define DISPATCH_LOG_H

/* The values are the syslog priorities, which the journal form prints. */
typedef enum log_level {
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_WARN = 4,
    LOG_LEVEL_INFO = 6,
    LOG_LEVEL_DEBUG = 7,
} log_level_t;

/* Sets the ident shown in plain lines (copied; e.g. "router-chaoyang") and
 * detects the journal. Returns 0, or -ENOMEM (then the ident is unchanged).
 * Before the first call the ident is "dispatch" and the journal is detected
 * on the first message. */
int log_init(const char *ident);

/* Messages above `level` are dropped. The default is LOG_LEVEL_INFO. */
void log_set_level(log_level_t level);
log_level_t log_get_level(void);

/* "error" (or "err"), "warn" (or "warning"), "info", "debug", in any case:
 * returns the level, or -EINVAL for anything else. */
int log_parse_level(const char *name);

/* Writes one message if `level` is enabled. Never fails visibly: output
 * errors are ignored, there is nowhere else to report them. */
__attribute__((format(printf, 2, 3))) void log_msg(log_level_t level, const char *format, ...);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif

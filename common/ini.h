/* ini: the one reader of INI files (the topology, the business calendar,
 * the deadline table). It says what each line is and where it stands; what
 * the sections and keys mean is the caller's, through a handler.
 *
 * Syntax, the same for every file:
 *
 *   [name]          a section header at the start of a line. The name is the
 *                   text between '[' and the first ']', as written; after ']'
 *                   only whitespace or a comment (';' or '#') may follow.
 *   key = value     a key line at the start of a line, inside a section. The
 *                   key is the text before the first '=' without trailing
 *                   whitespace, and is never empty; the value is the rest
 *                   without surrounding whitespace, and may be empty. ':' is
 *                   not a separator.
 *   ; or #          a line whose first non-blank character is ';' or '#' is
 *                   a comment; ';' also starts a comment inside a line when
 *                   it follows whitespace ('#' inside a line is text).
 *     more          an indented line goes on with the value of the key line
 *                   right above it (or of that line's previous indented
 *                   lines), for the keys the handler names in
 *                   continued_keys; anywhere else it is an error. A blank or
 *                   comment line ends the run.
 *
 * Lines end with "\n" or "\r\n"; a UTF-8 byte order mark at the start is
 * skipped; a NUL byte is refused. A line that is not blank or a comment is
 * at most INI_LINE_MAX bytes: a longer one is refused, never cut. The reader
 * keeps only the current line and section, so a file may have any number of
 * lines, sections and keys; duplicate sections and keys are the handler's to
 * judge.
 *
 * Errors are 0 or a negative errno. Messages go to `err` (truncated to
 * err_len, nothing when err_len is 0) as "origin:line: what is wrong", or
 * "origin: what is wrong" when the file cannot be opened. Nothing here logs.
 */
#ifndef DISPATCH_INI_H
#define DISPATCH_INI_H

#include <stdbool.h>
#include <stddef.h>

/* Longest line, in bytes without its line end, that holds a section or a key. */
#define INI_LINE_MAX 4096

/* One section header or key line as the handler sees it. Every pointer is
 * owned by the reader and valid only during the handler call. */
typedef struct ini_item {
    const char *origin;  /* the path, or the origin given with a text */
    int line;            /* 1-based physical line number */
    const char *section; /* the section the line is in (the header's own name for a header) */
    const char *key;     /* NULL for a section header */
    const char *value;   /* NULL for a section header; "" when empty */
    bool continued;      /* an indented line: value is its text, key the key it goes on with */
} ini_item_t;

/* What a file's format does with its lines. The functions return 0 to go
 * on, or a negative errno to stop; then ini_parse() returns that code, and
 * the message is the handler's to write (ini_report() writes one). */
typedef struct ini_handler {
    /* Each [section] header, in file order. May be NULL: headers are then
     * seen only as item->section of the keys. */
    int (*section)(void *user, const ini_item_t *item);
    /* Each key line, and each indented line that goes on with one. */
    int (*key)(void *user, const ini_item_t *item);
    /* NULL-terminated names of the keys whose value may go on over indented
     * lines; NULL when none may. */
    const char *const *continued_keys;
} ini_handler_t;

/* Reads `text`, or the file at `origin` when text is NULL, and hands every
 * section header and key line to `handler` with `user`, in file order, until
 * the end or the first error. Returns 0; -ENOENT and other -errno when the
 * file cannot be opened or read; -EINVAL on a syntax error; -ENOMEM; or the
 * code a handler returned. `origin` names the source in messages; pass
 * "(string)" with a text. */
int ini_parse(const char *origin, const char *text, const ini_handler_t *handler, void *user,
              char *err, size_t err_len);

/* Writes "origin:line: " and the formatted message about `item` to err (as
 * ini_parse() does) and returns code, so that a handler can
 * `return ini_report(item, err, err_len, -EINVAL, "...", ...);`. */
__attribute__((format(printf, 5, 6))) int
ini_report(const ini_item_t *item, char *err, size_t err_len, int code, const char *format, ...);

#endif

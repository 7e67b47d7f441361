/* Unit tests for common/ini: what each line is, line numbers, comments,
 * long lines and section names, indented lines that go on with a value,
 * empty values, syntax errors and the messages that name their line, handler
 * errors, and files (line ends, byte order mark, NUL bytes, missing file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ini.h"

/* Every item as one line of text: "<line> [<section>]" for a header,
 * "<line> <section>.<key>=<value>" for a key line, "+=" for an indented
 * line that goes on with one. */
struct record {
    char *log;
    size_t length;
    int fail_at_line; /* the key handler refuses this line with -ERANGE; 0 = never */
    char err[256];
};

__attribute__((format(printf, 2, 3))) static void record_append(struct record *record,
                                                                const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int length = vsnprintf(NULL, 0, format, args);
    va_end(args);
    assert_true(length >= 0);
    record->log = realloc(record->log, record->length + (size_t)length + 1);
    assert_non_null(record->log);
    va_start(args, format);
    vsnprintf(record->log + record->length, (size_t)length + 1, format, args);
    va_end(args);
    record->length += (size_t)length;
}

static int record_section(void *user, const ini_item_t *item)
{
    struct record *record = user;
    assert_null(item->key);
    assert_null(item->value);
    assert_false(item->continued);
    record_append(record, "%d [%s]\n", item->line, item->section);
    return 0;
}

static int record_key(void *user, const ini_item_t *item)
{
    struct record *record = user;
    if (item->line == record->fail_at_line)
        return ini_report(item, record->err, sizeof(record->err), -ERANGE, "no %s here", item->key);
    record_append(record, "%d %s.%s%s%s\n", item->line, item->section, item->key,
                  item->continued ? "+=" : "=", item->value);
    return 0;
}

static const char *const links_only[] = {"links", NULL};

static const ini_handler_t plain = {.section = record_section, .key = record_key};
static const ini_handler_t with_links = {
    .section = record_section,
    .key = record_key,
    .continued_keys = links_only,
};

/* Parses `text`, expects `code`, and returns the log (owned by the caller;
 * "" when nothing was handed over). The message goes to record->err. */
static char *parse_with(const ini_handler_t *handler, const char *text, int code,
                        struct record *record)
{
    int r = ini_parse("(string)", text, handler, record, record->err, sizeof(record->err));
    if (r != code)
        fail_msg("expected %d, got %d (%s) for:\n%s", code, r, record->err, text);
    char *log = record->log != NULL ? record->log : strdup("");
    assert_non_null(log);
    record->log = NULL;
    record->length = 0;
    return log;
}

static void expect_items(const ini_handler_t *handler, const char *text, const char *expected)
{
    struct record record = {0};
    char *log = parse_with(handler, text, 0, &record);
    assert_string_equal(log, expected);
    free(log);
}

/* The text is refused with -EINVAL and exactly `message`, after handing over
 * exactly the items in `expected`. */
static void expect_error(const ini_handler_t *handler, const char *text, const char *expected,
                         const char *message)
{
    struct record record = {0};
    char *log = parse_with(handler, text, -EINVAL, &record);
    assert_string_equal(log, expected);
    assert_string_equal(record.err, message);
    free(log);
}

static void test_sections_keys_and_comments(void **state)
{
    (void)state;
    expect_items(&plain,
                 "; a comment\n"                 /* 1 */
                 "# another\n"                   /* 2 */
                 "\n"                            /* 3 */
                 "[city]\n"                      /* 4 */
                 "name = changchun\n"            /* 5 */
                 "   ; an indented comment\n"    /* 6 */
                 "\t\n"                          /* 7 */
                 "kind=router;not a comment\n"   /* 8 */
                 "kind2 = router ; a comment\n"  /* 9 */
                 "tag = a # b\n"                 /* 10: '#' inside a line is text */
                 "sum = a=b\n"                   /* 11: the first '=' splits */
                 "spaced key   =   value  \n"    /* 12 */
                 "[worker.a] ; after a header\n" /* 13 */
                 "[worker.b]# also\n"            /* 14 */
                 "[ spaced ]\n"                  /* 15: names are as written */
                 "last = no line end",           /* 16 */
                 "4 [city]\n"
                 "5 city.name=changchun\n"
                 "8 city.kind=router;not a comment\n"
                 "9 city.kind2=router\n"
                 "10 city.tag=a # b\n"
                 "11 city.sum=a=b\n"
                 "12 city.spaced key=value\n"
                 "13 [worker.a]\n"
                 "14 [worker.b]\n"
                 "15 [ spaced ]\n"
                 "16  spaced .last=no line end\n");

    /* Without a section handler, headers show only in the keys. */
    static const ini_handler_t keys_only = {.key = record_key};
    expect_items(&keys_only, "[a]\n[b]\nk = v\n", "3 b.k=v\n");
}

static void test_empty_values(void **state)
{
    (void)state;
    expect_items(&plain, "[s]\nempty =\nspaces =   \ncomment = ; nothing\ntab =\t\n",
                 "1 [s]\n2 s.empty=\n3 s.spaces=\n4 s.comment=\n5 s.tab=\n");
}

static void test_long_lines(void **state)
{
    (void)state;
    size_t size = 3 * INI_LINE_MAX;
    char *text = malloc(size);
    assert_non_null(text);

    /* far longer than libinih's 200 bytes, read whole */
    snprintf(text, size, "[s]\nk = %0300d\n", 7);
    struct record record = {0};
    char *log = parse_with(&plain, text, 0, &record);
    assert_int_equal(strlen(log), strlen("1 [s]\n2 s.k=\n") + 300);
    free(log);

    /* exactly INI_LINE_MAX bytes without the line end: accepted */
    int value_length = INI_LINE_MAX - (int)strlen("k = ");
    snprintf(text, size, "[s]\r\nk = %0*d\r\n", value_length, 1);
    log = parse_with(&plain, text, 0, &record);
    assert_int_equal(strlen(log), strlen("1 [s]\n2 s.k=\n") + (size_t)value_length);
    free(log);

    /* one more: refused at its line, never cut in two */
    snprintf(text, size, "[s]\na = 1\nk = %0*d\nb = 2\n", value_length + 1, 1);
    char message[128];
    snprintf(message, sizeof(message), "(string):3: line is %d bytes long; a line holds at most %d",
             INI_LINE_MAX + 1, INI_LINE_MAX);
    expect_error(&plain, text, "1 [s]\n2 s.a=1\n", message);

    /* comment lines have no limit */
    memset(text, 0, size);
    strcpy(text, "[s]\n;");
    memset(text + strlen(text), 'x', 2 * INI_LINE_MAX);
    strcat(text, "\nk = v\n");
    expect_items(&plain, text, "1 [s]\n3 s.k=v\n");
    free(text);
}

static void test_long_section_names(void **state)
{
    (void)state;
    /* libinih kept 49 bytes of a section name; these two differ after 50 */
    char name_a[201], name_b[201];
    memset(name_a, 'a', 200);
    name_a[200] = '\0';
    memcpy(name_b, name_a, sizeof(name_b));
    name_b[199] = 'b';

    char text[1024], expected[1024];
    snprintf(text, sizeof(text), "[%s]\nk = 1\n[%s]\nk = 2\n", name_a, name_b);
    snprintf(expected, sizeof(expected), "1 [%s]\n2 %s.k=1\n3 [%s]\n4 %s.k=2\n", name_a, name_a,
             name_b, name_b);
    expect_items(&plain, text, expected);
}

static void test_continuation(void **state)
{
    (void)state;
    expect_items(&with_links,
                 "[w]\n"
                 "links = a,\n"
                 "        b   ; the other one\n"
                 "\tc,\n"
                 "  d\n"
                 "other = x\n",
                 "1 [w]\n2 w.links=a,\n3 w.links+=b\n4 w.links+=c,\n5 w.links+=d\n6 w.other=x\n");

    static const char only_links[] = "indented line: only a links list may go on over indented "
                                     "lines; start every key at the beginning of its line";
    char message[256];
    /* a blank or comment line ends the run */
    snprintf(message, sizeof(message), "(string):4: %s", only_links);
    expect_error(&with_links, "[w]\nlinks = a,\n\n  b\n", "1 [w]\n2 w.links=a,\n", message);
    expect_error(&with_links, "[w]\nlinks = a,\n  ; no\n  b\n", "1 [w]\n2 w.links=a,\n", message);
    /* only the keys the format names go on */
    snprintf(message, sizeof(message), "(string):3: %s", only_links);
    expect_error(&with_links, "[w]\nbus = a\n  b\n", "1 [w]\n2 w.bus=a\n", message);
    /* nor does a header, nor the first line */
    snprintf(message, sizeof(message), "(string):2: %s", only_links);
    expect_error(&with_links, "[w]\n  links = a\n", "1 [w]\n", message);
    snprintf(message, sizeof(message), "(string):1: %s", only_links);
    expect_error(&with_links, "  [w]\n", "", message);
    /* a format without continued keys refuses every indented line */
    expect_error(&plain, "[w]\nlinks = a,\n  b\n", "1 [w]\n2 w.links=a,\n",
                 "(string):3: indented line: no value may go on over indented lines; start "
                 "every key at the beginning of its line");
}

static void test_syntax_errors_name_their_line(void **state)
{
    (void)state;
    expect_error(&plain, "[s]\nk = v\n[t\n", "1 [s]\n2 s.k=v\n",
                 "(string):3: section header without ']'");
    expect_error(&plain, "[s] k = v\n", "", "(string):1: unexpected text after section header");
    expect_error(&plain, "[s]\n\nflag\n", "1 [s]\n", "(string):3: expected 'key = value'");
    /* ':' is not a separator, and a comment cuts the line before any '=' */
    expect_error(&plain, "[s]\nk: v\n", "1 [s]\n", "(string):2: expected 'key = value'");
    expect_error(&plain, "[s]\nk ; = v\n", "1 [s]\n", "(string):2: expected 'key = value'");
    expect_error(&plain, "[s]\n = v\n", "1 [s]\n",
                 "(string):2: indented line: no value may go on over indented lines; start "
                 "every key at the beginning of its line");
    expect_error(&plain, "[s]\n= v\n", "1 [s]\n", "(string):2: missing key before '='");
    expect_error(&plain, "; first\nk = v\n[s]\n", "",
                 "(string):2: key 'k' before any section header");
}

static void test_handler_errors_stop_the_reading(void **state)
{
    (void)state;
    struct record record = {.fail_at_line = 3};
    char *log = parse_with(&plain, "[s]\na = 1\nb = 2\nc = 3\n", -ERANGE, &record);
    assert_string_equal(log, "1 [s]\n2 s.a=1\n");
    assert_string_equal(record.err, "(string):3: no b here");
    free(log);

    /* no message buffer, or a tiny one, is fine */
    assert_int_equal(ini_parse("(string)", "[s\n", &plain, &record, NULL, 0), -EINVAL);
    char tiny[4] = "xyz";
    assert_int_equal(ini_parse("(string)", "[s\n", &plain, &record, tiny, sizeof(tiny)), -EINVAL);
    assert_string_equal(tiny, "(st");
    free(record.log);
}

/* Reads a temporary file holding `length` bytes of `content`: expects
 * `code`, and the message "<path><message>" when message is not NULL.
 * Returns the log (the caller frees it). */
static char *parse_file(const void *content, size_t length, int code, const char *message)
{
    const char *directory = getenv("TMPDIR");
    char *path = NULL;
    assert_true(asprintf(&path, "%s/test-ini-XXXXXX",
                         directory != NULL && directory[0] != '\0' ? directory : "/tmp") > 0);
    int fd = mkstemp(path);
    assert_true(fd >= 0 && write(fd, content, length) == (ssize_t)length && close(fd) == 0);

    struct record record = {0};
    assert_int_equal(ini_parse(path, NULL, &plain, &record, record.err, sizeof(record.err)), code);
    if (message != NULL) {
        char expected[512];
        snprintf(expected, sizeof(expected), "%s%s", path, message);
        assert_string_equal(record.err, expected);
    }
    unlink(path);
    free(path);
    return record.log != NULL ? record.log : strdup("");
}

static void test_files(void **state)
{
    (void)state;
    /* a byte order mark, CRLF line ends, a line longer than any small buffer */
    size_t size = 2 * INI_LINE_MAX;
    char *text = calloc(1, size);
    assert_non_null(text);
    strcpy(text, "\xEF\xBB\xBF[s]\r\nk = v\r\nlong = ");
    memset(text + strlen(text), 'x', INI_LINE_MAX - strlen("long = "));
    strcat(text, "\r\nlast = 1");
    char *log = parse_file(text, strlen(text), 0, NULL);
    assert_int_equal(strlen(log), strlen("1 [s]\n2 s.k=v\n3 s.long=\n4 s.last=1\n") + INI_LINE_MAX -
                                      strlen("long = "));
    assert_memory_equal(log, "1 [s]\n2 s.k=v\n3 s.long=x", 24);
    free(log);
    free(text);

    /* messages name the file */
    free(parse_file("[s]\nk\n", 6, -EINVAL, ":2: expected 'key = value'"));
    /* a NUL byte is refused, not read as the end of its line */
    log = parse_file("[s]\nk = a\0b\n", 12, -EINVAL, ":2: line contains a NUL byte");
    assert_string_equal(log, "1 [s]\n");
    free(log);

    struct record record = {0};
    assert_int_equal(ini_parse("/nonexistent/dispatch/x.ini", NULL, &plain, &record, record.err,
                               sizeof(record.err)),
                     -ENOENT);
    assert_string_equal(record.err, "/nonexistent/dispatch/x.ini: No such file or directory");
    assert_null(record.log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections_keys_and_comments),
        cmocka_unit_test(test_empty_values),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_long_section_names),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_syntax_errors_name_their_line),
        cmocka_unit_test(test_handler_errors_stop_the_reading),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

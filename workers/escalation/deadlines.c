/* deadlines: see deadlines.h for the file format.
 *
 * Loading runs in two passes: common/ini hands over each `key = value`,
 * which is checked and stored at once in its section's slot (so a bad value
 * is reported with its line); then every kind x urgency is resolved through
 * the lookup order and packed into an owned Rule. Invariant of a loaded
 * table: rules[kind][urgency] is set for every kind 0..5 and urgency 0..2,
 * with sign_for and handle set, remind_at ascending in 1..99, and exactly
 * DEADLINES_LADDER_LEVELS entries in each ladder.
 */
#include "deadlines.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "words.h"

#define KINDS 6     /* 0 = "*" / unspecified, then dispatch.Kind values */
#define URGENCIES 3 /* 0 = unspecified, then dispatch.Urgency values */
#define MAX_SPAN_DAYS 366
#define MINUTE_MS (60LL * 1000)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)
#define MAX_EXTENSIONS 100

enum key {
    KEY_SIGN_FOR,
    KEY_HANDLE,
    KEY_REMIND_AT,
    KEY_SIGN_FOR_LADDER,
    KEY_HANDLE_LADDER,
    KEY_PAUSE,
    KEY_MAX_EXTENSIONS,
};
#define KEY_COUNT (KEY_MAX_EXTENSIONS + 1)

static const char *const key_names[KEY_COUNT] = {"sign_for",        "handle",        "remind_at",
                                                 "sign_for_ladder", "handle_ladder", "pause",
                                                 "max_extensions"};

typedef struct span {
    int64_t ms;
    uint32_t working_days;
} span_t;

/* What one section sets. */
typedef struct section {
    bool has[KEY_COUNT];
    span_t sign_for, handle;
    uint32_t remind[DEADLINES_MAX_REMINDERS];
    size_t remind_count;
    span_t sign_for_ladder[DEADLINES_LADDER_LEVELS], handle_ladder[DEADLINES_LADDER_LEVELS];
    Dispatch__Escalation__Pause pause;
    uint32_t max_extensions;
} section_t;

struct deadlines {
    Dispatch__Escalation__Rule *rules[KINDS][URGENCIES];
};

/* What the ini handler fills, and where it writes its message. */
typedef struct parse {
    section_t defaults;
    section_t sections[KINDS][URGENCIES]; /* [0][u] = [*.<urgency>] */
    char *err;
    size_t err_len;
} parse_t;

/* ------------------------------------------------------------ values */

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* One length "<n><unit>" (or "off" when allowed) from *p, up to a comma
 * or the end. */
static bool parse_span(const char **p, bool allow_off, span_t *span)
{
    const char *s = skip_blanks(*p);
    *span = (span_t){0};
    if (allow_off && strncmp(s, "off", 3) == 0) {
        s = skip_blanks(s + 3);
        *p = s;
        return *s == '\0' || *s == ',';
    }
    if (*s < '0' || *s > '9')
        return false;
    uint64_t n = 0;
    while (*s >= '0' && *s <= '9') {
        n = n * 10 + (uint64_t)(*s - '0');
        if (n > 1000000)
            return false;
        s++;
    }
    if (n == 0)
        return false;
    if (strncmp(s, "wd", 2) == 0) {
        if (n > MAX_SPAN_DAYS)
            return false;
        span->working_days = (uint32_t)n;
        s += 2;
    } else if (*s == 'm' || *s == 'h' || *s == 'd') {
        int64_t unit = *s == 'm' ? MINUTE_MS : *s == 'h' ? HOUR_MS : DAY_MS;
        if ((int64_t)n * unit > MAX_SPAN_DAYS * DAY_MS)
            return false;
        span->ms = (int64_t)n * unit;
        s++;
    } else {
        return false;
    }
    s = skip_blanks(s);
    *p = s;
    return *s == '\0' || *s == ',';
}

static int parse_value(parse_t *parse, const ini_item_t *item, section_t *section, enum key key)
{
    const char *value = item->value, *where = item->section;
    const char *p = value;
    switch (key) {
    case KEY_SIGN_FOR:
    case KEY_HANDLE: {
        span_t *span = key == KEY_SIGN_FOR ? &section->sign_for : &section->handle;
        if (!parse_span(&p, false, span) || *p)
            return ini_report(item, parse->err, parse->err_len, -EINVAL,
                              "[%s] %s = %s: expected a length like 30m, 2h, 1d or 5wd "
                              "(at most %d days)",
                              where, key_names[key], value, MAX_SPAN_DAYS);
        break;
    }
    case KEY_REMIND_AT:
        section->remind_count = 0;
        if (strcmp(skip_blanks(value), "none") == 0)
            break;
        while (*p) {
            p = skip_blanks(p);
            char *end;
            unsigned long percent = strtoul(p, &end, 10);
            if (end == p || *end != '%' || percent < 1 || percent > 99 ||
                section->remind_count == DEADLINES_MAX_REMINDERS ||
                (section->remind_count && percent <= section->remind[section->remind_count - 1]))
                return ini_report(item, parse->err, parse->err_len, -EINVAL,
                                  "[%s] remind_at = %s: expected up to %d ascending percentages "
                                  "of 1%%..99%% (\"50%%, 80%%\") or none",
                                  where, value, DEADLINES_MAX_REMINDERS);
            section->remind[section->remind_count++] = (uint32_t)percent;
            p = skip_blanks(end + 1);
            if (*p == ',')
                p++;
            else if (*p)
                return ini_report(item, parse->err, parse->err_len, -EINVAL,
                                  "[%s] remind_at = %s: separate points by commas", where, value);
        }
        break;
    case KEY_SIGN_FOR_LADDER:
    case KEY_HANDLE_LADDER: {
        span_t *ladder =
            key == KEY_SIGN_FOR_LADDER ? section->sign_for_ladder : section->handle_ladder;
        for (int level = 0; level < DEADLINES_LADDER_LEVELS; level++) {
            if (!parse_span(&p, true, &ladder[level]) ||
                (level < DEADLINES_LADDER_LEVELS - 1 && *p++ != ','))
                return ini_report(item, parse->err, parse->err_len, -EINVAL,
                                  "[%s] %s = %s: expected %d lengths after the deadline "
                                  "(district, city, leader sign-off), each like 30m, 2h or 1wd, "
                                  "or off",
                                  where, key_names[key], value, DEADLINES_LADDER_LEVELS);
        }
        if (*p)
            return ini_report(item, parse->err, parse->err_len, -EINVAL,
                              "[%s] %s = %s: more than %d lengths", where, key_names[key], value,
                              DEADLINES_LADDER_LEVELS);
        break;
    }
    case KEY_PAUSE:
        if (strcmp(value, "none") == 0)
            section->pause = DISPATCH__ESCALATION__PAUSE__PAUSE_NONE;
        else if (strcmp(value, "citizen") == 0)
            section->pause = DISPATCH__ESCALATION__PAUSE__PAUSE_CITIZEN;
        else if (strcmp(value, "triage") == 0)
            section->pause = DISPATCH__ESCALATION__PAUSE__PAUSE_TRIAGE;
        else
            return ini_report(item, parse->err, parse->err_len, -EINVAL,
                              "[%s] pause = %s: expected none, citizen or triage", where, value);
        break;
    case KEY_MAX_EXTENSIONS: {
        char *end;
        unsigned long count = strtoul(value, &end, 10);
        if (end == value || *end || value[0] == '-' || count > MAX_EXTENSIONS)
            return ini_report(item, parse->err, parse->err_len, -EINVAL,
                              "[%s] max_extensions = %s: expected 0..%d", where, value,
                              MAX_EXTENSIONS);
        section->max_extensions = (uint32_t)count;
        break;
    }
    }
    section->has[key] = true;
    return 0;
}

static section_t *find_section(parse_t *parse, const char *name)
{
    if (strcmp(name, "defaults") == 0)
        return &parse->defaults;
    /* [<kind>.<urgency>]: words of dispatch.Kind (or "*") and dispatch.Urgency */
    const char *dot = strchr(name, '.');
    char kind_word[WORDS_SIZE];
    if (!dot || (size_t)(dot - name) >= sizeof(kind_word))
        return NULL;
    snprintf(kind_word, sizeof(kind_word), "%.*s", (int)(dot - name), name);
    int kind = 0, urgency;
    if ((strcmp(kind_word, "*") != 0 &&
         words_parse(&dispatch__kind__descriptor, kind_word, &kind) < 0) ||
        words_parse(&dispatch__urgency__descriptor, dot + 1, &urgency) < 0 || kind >= KINDS ||
        urgency >= URGENCIES)
        return NULL;
    return &parse->sections[kind][urgency];
}

static int on_key(void *user, const ini_item_t *item)
{
    parse_t *parse = user;
    const char *section_name = item->section, *name = item->key;
    section_t *section = find_section(parse, section_name);
    if (!section)
        return ini_report(item, parse->err, parse->err_len, -EINVAL,
                          "[%s]: unknown section (expected [defaults] or [<kind>.<urgency>] with "
                          "kind consult, help, complaint, report, suggestion or *, urgency normal "
                          "or urgent)",
                          section_name);
    for (int key = 0; key < KEY_COUNT; key++)
        if (strcmp(name, key_names[key]) == 0)
            return parse_value(parse, item, section, (enum key)key);
    return ini_report(item, parse->err, parse->err_len, -EINVAL,
                      "[%s] %s: unknown key (known: sign_for, handle, remind_at, sign_for_ladder, "
                      "handle_ladder, pause, max_extensions)",
                      section_name, name);
}

static const ini_handler_t deadlines_handler = {.key = on_key};

/* ------------------------------------------------------------ resolving */

static const section_t *resolve(const parse_t *parse, int kind, int urgency, enum key key)
{
    const section_t *order[3] = {&parse->sections[kind][urgency], &parse->sections[0][urgency],
                                 &parse->defaults};
    for (int i = 0; i < 3; i++)
        if (order[i]->has[key])
            return order[i];
    return NULL;
}

static void span_to_proto(const span_t *span, Dispatch__Escalation__Span *out)
{
    dispatch__escalation__span__init(out);
    out->ms = span->ms;
    out->working_days = span->working_days;
}

static int build_rule(const parse_t *parse, int kind, int urgency, Dispatch__Escalation__Rule **ret,
                      char *err, size_t err_len, const char *origin)
{
    const section_t *from[KEY_COUNT];
    for (int key = 0; key < KEY_COUNT; key++) {
        from[key] = resolve(parse, kind, urgency, (enum key)key);
        if (!from[key]) {
            char kind_word[WORDS_SIZE] = "*", urgency_word[WORDS_SIZE];
            if (kind != 0)
                words_name(&dispatch__kind__descriptor, kind, kind_word, sizeof(kind_word));
            words_name(&dispatch__urgency__descriptor, urgency, urgency_word, sizeof(urgency_word));
            if (err_len)
                snprintf(err, err_len,
                         "%s: no value for %s of %s.%s (set it in [%s.%s], [*.%s] or [defaults])",
                         origin, key_names[key], kind_word, urgency_word, kind_word, urgency_word,
                         urgency_word);
            return -EINVAL;
        }
    }
    Dispatch__Escalation__Span sign_for, handle;
    Dispatch__Escalation__Span sign_for_ladder[DEADLINES_LADDER_LEVELS];
    Dispatch__Escalation__Span handle_ladder[DEADLINES_LADDER_LEVELS];
    Dispatch__Escalation__Span *sign_for_ladder_ptrs[DEADLINES_LADDER_LEVELS];
    Dispatch__Escalation__Span *handle_ladder_ptrs[DEADLINES_LADDER_LEVELS];
    uint32_t remind[DEADLINES_MAX_REMINDERS];
    span_to_proto(&from[KEY_SIGN_FOR]->sign_for, &sign_for);
    span_to_proto(&from[KEY_HANDLE]->handle, &handle);
    for (int level = 0; level < DEADLINES_LADDER_LEVELS; level++) {
        span_to_proto(&from[KEY_SIGN_FOR_LADDER]->sign_for_ladder[level], &sign_for_ladder[level]);
        span_to_proto(&from[KEY_HANDLE_LADDER]->handle_ladder[level], &handle_ladder[level]);
        sign_for_ladder_ptrs[level] = &sign_for_ladder[level];
        handle_ladder_ptrs[level] = &handle_ladder[level];
    }
    size_t remind_count = from[KEY_REMIND_AT]->remind_count;
    memcpy(remind, from[KEY_REMIND_AT]->remind, remind_count * sizeof(*remind));

    Dispatch__Escalation__Rule rule = DISPATCH__ESCALATION__RULE__INIT;
    rule.sign_for = &sign_for;
    rule.handle = &handle;
    rule.remind_at = remind;
    rule.n_remind_at = remind_count;
    rule.sign_for_ladder = sign_for_ladder_ptrs;
    rule.n_sign_for_ladder = DEADLINES_LADDER_LEVELS;
    rule.handle_ladder = handle_ladder_ptrs;
    rule.n_handle_ladder = DEADLINES_LADDER_LEVELS;
    rule.pause = from[KEY_PAUSE]->pause;
    rule.max_extensions = from[KEY_MAX_EXTENSIONS]->max_extensions;

    /* An owned copy: pack and unpack. */
    size_t size = dispatch__escalation__rule__get_packed_size(&rule);
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes)
        return -ENOMEM;
    dispatch__escalation__rule__pack(&rule, bytes);
    *ret = dispatch__escalation__rule__unpack(NULL, size, bytes);
    free(bytes);
    return *ret ? 0 : -ENOMEM;
}

/* Reads `text`, or the file at `origin` when text is NULL. */
static int deadlines_parse(const char *origin, const char *text, deadlines_t **ret, char *err,
                           size_t err_len)
{
    parse_t *parse = calloc(1, sizeof(*parse));
    deadlines_t *self = calloc(1, sizeof(*self));
    int rc = parse && self ? 0 : -ENOMEM;
    if (rc == 0) {
        parse->err = err;
        parse->err_len = err_len;
        rc = ini_parse(origin, text, &deadlines_handler, parse, err, err_len);
    }
    for (int kind = 0; rc == 0 && kind < KINDS; kind++)
        for (int urgency = 1; rc == 0 && urgency < URGENCIES; urgency++)
            rc =
                build_rule(parse, kind, urgency, &self->rules[kind][urgency], err, err_len, origin);
    free(parse);
    if (rc < 0) {
        deadlines_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

int deadlines_parse_string(const char *text, deadlines_t **ret, char *err, size_t err_len)
{
    return text ? deadlines_parse("(string)", text, ret, err, err_len) : -EINVAL;
}

int deadlines_load(const char *path, deadlines_t **ret, char *err, size_t err_len)
{
    return path ? deadlines_parse(path, NULL, ret, err, err_len) : -EINVAL;
}

void deadlines_destroy(deadlines_t **self)
{
    deadlines_t *table = *self;
    if (!table)
        return;
    for (int kind = 0; kind < KINDS; kind++)
        for (int urgency = 0; urgency < URGENCIES; urgency++)
            if (table->rules[kind][urgency])
                dispatch__escalation__rule__free_unpacked(table->rules[kind][urgency], NULL);
    free(table);
    *self = NULL;
}

const Dispatch__Escalation__Rule *deadlines_rule(const deadlines_t *self, Dispatch__Kind kind,
                                                 Dispatch__Urgency urgency)
{
    int k = (int)kind >= 1 && (int)kind < KINDS ? (int)kind : 0;
    int u = (int)urgency == DISPATCH__URGENCY__URGENCY_URGENT ? 2 : 1;
    return self->rules[k][u];
}

void deadlines_span_format(const Dispatch__Escalation__Span *span, char *buf, size_t len)
{
    if (!span || (span->ms == 0 && span->working_days == 0))
        snprintf(buf, len, "off");
    else if (span->working_days)
        snprintf(buf, len, "%" PRIu32 "wd", span->working_days);
    else if (span->ms % HOUR_MS == 0)
        snprintf(buf, len, "%" PRId64 "h", (int64_t)(span->ms / HOUR_MS));
    else
        snprintf(buf, len, "%" PRId64 "m", (int64_t)(span->ms / MINUTE_MS));
}

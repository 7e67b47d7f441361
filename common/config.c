/* config: the topology file. See config.h for the format and what a loaded
 * config guarantees.
 *
 * The syntax (lines, sections, comments, indented lines) is common/ini's;
 * this file gives the sections and keys their meaning. Sections are opened
 * at their header, so a bad header is reported at its line.
 *
 * Values are parsed into struct value when read and checked as a whole
 * (references between sections) once the file is read: config_validate().
 * config_set() parses one value, swaps it in, validates again, and swaps
 * the old value back if that fails, so a config is never left half-changed.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"

enum value_type {
    VALUE_NAME,     /* [A-Za-z0-9._-]{1,63} */
    VALUE_TEXT,     /* any text without control characters */
    VALUE_KIND,     /* intake | router | escalation | audit */
    VALUE_TIMEZONE, /* IANA zone name, e.g. Asia/Shanghai */
    VALUE_ENDPOINT, /* transport://address */
    VALUE_LINKS,    /* comma-separated names */
    VALUE_BYTES,    /* number with optional B, KiB, MiB, GiB suffix */
    VALUE_MS,       /* milliseconds: 1 to CONFIG_MS_MAX */
    VALUE_COUNT,    /* a whole number: 1 to CONFIG_COUNT_MAX */
};

struct key_spec {
    const char *name;
    enum value_type type;
};

enum city_key { CITY_NAME, CITY_TIMEZONE, CITY_SECURITY, CITY_KEYS_DIR, CITY_KEY_COUNT };
enum district_key { DISTRICT_NAME, DISTRICT_KEY_COUNT };
enum worker_key {
    WORKER_KIND,
    WORKER_DISTRICT,
    WORKER_STATE_DIR,
    WORKER_BUS,
    WORKER_REQUEST,
    WORKER_PUBLISH,
    WORKER_LINKS,
    WORKER_MAP_SIZE,
    WORKER_UNITS,
    WORKER_ID_PREFIX,
    WORKER_DATA_DIR,
    WORKER_DEAD_AFTER_MS,
    WORKER_MAX_BACKLOG,
    WORKER_KEY_COUNT,
};
#define SECTION_KEY_MAX WORKER_KEY_COUNT

static const struct key_spec city_keys[CITY_KEY_COUNT] = {
    [CITY_NAME] = {"name", VALUE_NAME},
    [CITY_TIMEZONE] = {"timezone", VALUE_TIMEZONE},
    [CITY_SECURITY] = {"security", VALUE_TEXT},
    [CITY_KEYS_DIR] = {"keys_dir", VALUE_TEXT},
};
static const struct key_spec district_keys[DISTRICT_KEY_COUNT] = {
    [DISTRICT_NAME] = {"name", VALUE_TEXT},
};
static const struct key_spec worker_keys[WORKER_KEY_COUNT] = {
    [WORKER_KIND] = {"kind", VALUE_KIND},
    [WORKER_DISTRICT] = {"district", VALUE_NAME},
    [WORKER_STATE_DIR] = {"state_dir", VALUE_TEXT},
    [WORKER_BUS] = {"bus", VALUE_ENDPOINT},
    [WORKER_REQUEST] = {"request", VALUE_ENDPOINT},
    [WORKER_PUBLISH] = {"publish", VALUE_ENDPOINT},
    [WORKER_LINKS] = {"links", VALUE_LINKS},
    [WORKER_MAP_SIZE] = {"map_size", VALUE_BYTES},
    [WORKER_UNITS] = {"units", VALUE_ENDPOINT},
    [WORKER_ID_PREFIX] = {"id_prefix", VALUE_TEXT},
    [WORKER_DATA_DIR] = {"data_dir", VALUE_TEXT},
    [WORKER_DEAD_AFTER_MS] = {"dead_after_ms", VALUE_MS},
    [WORKER_MAX_BACKLOG] = {"max_backlog", VALUE_COUNT},
};

static const char *const worker_kinds[] = {"intake", "router", "escalation", "audit"};

/* One parsed value; which member is used depends on the key's type. */
struct value {
    char *text; /* every type but links and bytes; NULL = not set */
    char **links;
    size_t link_count;
    uint64_t bytes; /* bytes and milliseconds */
};

enum section_kind { SECTION_CITY, SECTION_DISTRICT, SECTION_WORKER };

struct section {
    enum section_kind kind;
    char *name; /* district id or worker name; NULL for [city] */
    int line;   /* line of the header; 0 = not in the file */
    struct value values[SECTION_KEY_MAX];
    int key_line[SECTION_KEY_MAX]; /* 0 = key not given */
    union {
        config_worker_t worker;
        config_district_t district;
    } view; /* what the accessors return; points into values */
};

struct config {
    struct section city;
    struct section **districts; /* pointers, so views stay put when the array grows */
    size_t district_count;
    size_t district_capacity;
    struct section **workers;
    size_t worker_count;
    size_t worker_capacity;
    char *default_keys_dir; /* "<dir of the topology file>/keys" */
};

/* Where an error message goes and how it is prefixed. */
struct report {
    char *buf;
    size_t len;
    const char *origin;  /* file path or "(string)" while parsing */
    const char *set_key; /* the key given to config_set() */
    bool written;
};

__attribute__((format(printf, 4, 5))) static int report_error(struct report *report, int code,
                                                              int line, const char *format, ...)
{
    if (report == NULL || report->written || report->buf == NULL || report->len == 0)
        return code;
    report->written = true;

    int prefix;
    if (report->set_key != NULL)
        prefix = snprintf(report->buf, report->len, "set %s: ", report->set_key);
    else if (line > 0)
        prefix = snprintf(report->buf, report->len, "%s:%d: ", report->origin, line);
    else
        prefix = snprintf(report->buf, report->len, "%s: ", report->origin);
    if (prefix < 0 || (size_t)prefix >= report->len)
        return code;

    va_list args;
    va_start(args, format);
    vsnprintf(report->buf + prefix, report->len - (size_t)prefix, format, args);
    va_end(args);
    return code;
}

static int report_out_of_memory(struct report *report, int line)
{
    return report_error(report, -ENOMEM, line, "out of memory");
}

/* ---- sections and values ---------------------------------------------- */

static const struct key_spec *section_keys(enum section_kind kind, size_t *count)
{
    switch (kind) {
    case SECTION_CITY:
        *count = CITY_KEY_COUNT;
        return city_keys;
    case SECTION_DISTRICT:
        *count = DISTRICT_KEY_COUNT;
        return district_keys;
    case SECTION_WORKER:
        break;
    }
    *count = WORKER_KEY_COUNT;
    return worker_keys;
}

/* "city", "district." or "worker.": with section->name, the header's text. */
static const char *section_prefix(const struct section *section)
{
    switch (section->kind) {
    case SECTION_CITY:
        return "city";
    case SECTION_DISTRICT:
        return "district.";
    case SECTION_WORKER:
        break;
    }
    return "worker.";
}

static const char *section_name(const struct section *section)
{
    return section->name != NULL ? section->name : "";
}

static void value_clear(struct value *value)
{
    free(value->text);
    for (size_t i = 0; i < value->link_count; i++)
        free(value->links[i]);
    free(value->links);
    *value = (struct value){0};
}

static void section_free(struct section *section)
{
    if (section == NULL)
        return;
    for (size_t i = 0; i < SECTION_KEY_MAX; i++)
        value_clear(&section->values[i]);
    free(section->name);
    free(section);
}

static const char *section_text(const struct section *section, int key)
{
    return section->values[key].text;
}

static void section_refresh_view(struct section *section)
{
    if (section->kind == SECTION_DISTRICT) {
        const char *name = section_text(section, DISTRICT_NAME);
        section->view.district.id = section->name;
        section->view.district.name = name != NULL ? name : section->name;
    } else if (section->kind == SECTION_WORKER) {
        config_worker_t *view = &section->view.worker;
        const struct value *links = &section->values[WORKER_LINKS];
        view->name = section->name;
        view->kind = section_text(section, WORKER_KIND);
        view->district = section_text(section, WORKER_DISTRICT);
        view->state_dir = section_text(section, WORKER_STATE_DIR);
        view->bus = section_text(section, WORKER_BUS);
        view->request = section_text(section, WORKER_REQUEST);
        view->publish = section_text(section, WORKER_PUBLISH);
        view->links = (const char *const *)links->links;
        view->link_count = links->link_count;
        view->map_size = section->values[WORKER_MAP_SIZE].bytes;
        view->units = section_text(section, WORKER_UNITS);
        view->id_prefix = section_text(section, WORKER_ID_PREFIX);
        view->data_dir = section_text(section, WORKER_DATA_DIR);
        view->dead_after_ms = (int)section->values[WORKER_DEAD_AFTER_MS].bytes;
        view->max_backlog = section->values[WORKER_MAX_BACKLOG].bytes;
    }
}

/* ---- value checks -------------------------------------------------------- */

static bool is_ascii_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

/* NULL when `name` is a valid name, else what is wrong with it. */
static const char *name_problem(const char *name)
{
    size_t length = strlen(name);
    if (length == 0)
        return "is empty";
    if (length > CONFIG_NAME_MAX)
        return "is longer than 63 bytes";
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (!is_ascii_alnum(c) && c != '.' && c != '_' && c != '-')
            return "has characters outside [A-Za-z0-9._-]";
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return "is a path component, not a name";
    return NULL;
}

static bool text_has_control_characters(const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++)
        if (*c < 0x20 || *c == 0x7f)
            return true;
    return false;
}

static bool timezone_is_valid(const char *zone)
{
    size_t length = strlen(zone);
    if (length == 0 || length > 255 || zone[0] == '/' || zone[length - 1] == '/')
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = zone[i];
        if (!is_ascii_alnum(c) && c != '/' && c != '_' && c != '+' && c != '-')
            return false;
        if (c == '/' && zone[i + 1] == '/')
            return false;
    }
    return true; /* '.' is refused above, so no component is "." or ".." */
}

static bool port_is_valid(const char *port)
{
    if (strcmp(port, "*") == 0)
        return true;
    size_t length = strlen(port);
    if (length == 0 || length > 5)
        return false;
    unsigned long number = 0;
    for (size_t i = 0; i < length; i++) {
        if (port[i] < '0' || port[i] > '9')
            return false;
        number = number * 10 + (unsigned long)(port[i] - '0');
    }
    return number <= 65535;
}

/* NULL when `endpoint` is a usable ZeroMQ endpoint, else what is wrong. */
static const char *endpoint_problem(const char *endpoint)
{
    for (const char *c = endpoint; *c != '\0'; c++)
        if (is_blank(*c) || (unsigned char)*c < 0x20)
            return "contains whitespace or control characters";
    const char *separator = strstr(endpoint, "://");
    if (separator == NULL)
        return "is not of the form transport://address";
    const char *address = separator + 3;
    if (*address == '\0')
        return "has no address after ://";
    size_t transport_length = (size_t)(separator - endpoint);
    if (transport_length == 3 && strncmp(endpoint, "tcp", 3) == 0) {
        const char *colon = strrchr(address, ':');
        if (colon == NULL || colon == address || !port_is_valid(colon + 1))
            return "needs tcp://host:port with a port of 0-65535 or *";
        return NULL;
    }
    if ((transport_length == 3 && strncmp(endpoint, "ipc", 3) == 0) ||
        (transport_length == 6 && strncmp(endpoint, "inproc", 6) == 0))
        return NULL;
    return "has an unknown transport (tcp, ipc or inproc)";
}

/* Wildcards are resolved by the OS at bind time, so two of them never clash. */
static bool endpoint_is_wildcard(const char *endpoint)
{
    size_t length = strlen(endpoint);
    if (strcmp(endpoint, "ipc://*") == 0)
        return true;
    return strncmp(endpoint, "tcp://", 6) == 0 && length > 2 &&
           (strcmp(endpoint + length - 2, ":*") == 0 || strcmp(endpoint + length - 2, ":0") == 0);
}

/* Parses "256MiB" and friends; 0 and overflow are refused. */
static int parse_bytes(const char *text, uint64_t *ret)
{
    const char *c = text;
    uint64_t number = 0;
    if (*c < '0' || *c > '9')
        return -EINVAL;
    for (; *c >= '0' && *c <= '9'; c++) {
        uint64_t digit = (uint64_t)(*c - '0');
        if (number > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        number = number * 10 + digit;
    }
    while (*c == ' ' || *c == '\t')
        c++;
    uint64_t unit;
    if (*c == '\0' || strcmp(c, "B") == 0)
        unit = 1;
    else if (strcmp(c, "KiB") == 0)
        unit = UINT64_C(1) << 10;
    else if (strcmp(c, "MiB") == 0)
        unit = UINT64_C(1) << 20;
    else if (strcmp(c, "GiB") == 0)
        unit = UINT64_C(1) << 30;
    else
        return -EINVAL;
    if (number == 0)
        return -EDOM;
    if (number > UINT64_MAX / unit)
        return -ERANGE;
    *ret = number * unit;
    return 0;
}

static int links_push(struct value *value, const char *name, size_t length)
{
    char **grown = realloc(value->links, (value->link_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    value->links = grown;
    char *copy = strndup(name, length);
    if (copy == NULL)
        return -ENOMEM;
    value->links[value->link_count++] = copy;
    return 0;
}

/* Appends the comma-separated names of one line to value->links. A comma at
 * the end of the line is allowed, so that a list can go on below it. */
static int links_append(struct value *value, const char *text, const struct section *section,
                        struct report *report, int line)
{
    const char *item = text;
    for (;;) {
        const char *comma = strchr(item, ',');
        const char *end = comma != NULL ? comma : item + strlen(item);
        const char *start = item;
        while (start < end && is_blank(*start))
            start++;
        const char *stop = end;
        while (stop > start && is_blank(stop[-1]))
            stop--;
        size_t length = (size_t)(stop - start);

        if (length == 0) {
            bool trailing_comma = comma == NULL && item != text;
            if (trailing_comma)
                return 0;
            return report_error(report, -EINVAL, line, "[%s%s] links: empty item in '%s'",
                                section_prefix(section), section_name(section), text);
        }
        char *name = strndup(start, length);
        if (name == NULL)
            return report_out_of_memory(report, line);
        const char *problem = name_problem(name);
        int r = 0;
        if (problem != NULL)
            r = report_error(report, -EINVAL, line, "[%s%s] links: worker name '%s' %s",
                             section_prefix(section), section_name(section), name, problem);
        else if (links_push(value, name, length) < 0)
            r = report_out_of_memory(report, line);
        free(name);
        if (r < 0)
            return r;
        if (comma == NULL)
            return 0;
        item = comma + 1;
    }
}

/* Parses `text` for key `spec` of `section` into *ret (zeroed first). */
static int value_parse(const struct key_spec *spec, const char *text, const struct section *section,
                       struct value *ret, struct report *report, int line)
{
    const char *prefix = section_prefix(section);
    const char *name = section_name(section);
    *ret = (struct value){0};

    if (text[0] == '\0')
        return report_error(report, -EINVAL, line,
                            "[%s%s] %s: empty value (leave the key out instead)", prefix, name,
                            spec->name);
    if (text_has_control_characters(text))
        return report_error(report, -EINVAL, line, "[%s%s] %s: value has control characters",
                            prefix, name, spec->name);

    const char *problem = NULL;
    switch (spec->type) {
    case VALUE_NAME:
        problem = name_problem(text);
        if (problem != NULL)
            return report_error(report, -EINVAL, line, "[%s%s] %s: '%s' %s", prefix, name,
                                spec->name, text, problem);
        break;
    case VALUE_TEXT:
        break;
    case VALUE_KIND: {
        bool known = false;
        for (size_t i = 0; i < sizeof(worker_kinds) / sizeof(worker_kinds[0]); i++)
            known = known || strcmp(text, worker_kinds[i]) == 0;
        if (!known)
            return report_error(report, -EINVAL, line,
                                "[%s%s] kind: unknown kind '%s' (intake, router, escalation "
                                "or audit)",
                                prefix, name, text);
        break;
    }
    case VALUE_TIMEZONE:
        if (!timezone_is_valid(text))
            return report_error(report, -EINVAL, line,
                                "[%s%s] %s: '%s' is not an IANA time zone name like "
                                "Asia/Shanghai",
                                prefix, name, spec->name, text);
        break;
    case VALUE_ENDPOINT:
        problem = endpoint_problem(text);
        if (problem != NULL)
            return report_error(report, -EINVAL, line, "[%s%s] %s: endpoint '%s' %s", prefix, name,
                                spec->name, text, problem);
        break;
    case VALUE_LINKS: {
        int r = links_append(ret, text, section, report, line);
        if (r < 0)
            value_clear(ret);
        return r;
    }
    case VALUE_BYTES: {
        int r = parse_bytes(text, &ret->bytes);
        if (r == -EDOM)
            return report_error(report, -EINVAL, line, "[%s%s] %s: must be more than 0", prefix,
                                name, spec->name);
        if (r == -ERANGE)
            return report_error(report, -EINVAL, line, "[%s%s] %s: '%s' is too large", prefix, name,
                                spec->name, text);
        if (r < 0)
            return report_error(report, -EINVAL, line,
                                "[%s%s] %s: '%s' is not a size (a number with an optional "
                                "suffix B, KiB, MiB or GiB)",
                                prefix, name, spec->name, text);
        return 0;
    }
    case VALUE_MS: {
        char *end;
        errno = 0;
        unsigned long long ms = strtoull(text, &end, 10);
        if (errno != 0 || text[0] < '0' || text[0] > '9' || *end != '\0' || ms == 0 ||
            ms > CONFIG_MS_MAX)
            return report_error(report, -EINVAL, line,
                                "[%s%s] %s: '%s' is not a number of milliseconds from 1 to %d",
                                prefix, name, spec->name, text, CONFIG_MS_MAX);
        ret->bytes = ms;
        return 0;
    }
    case VALUE_COUNT: {
        char *end;
        errno = 0;
        unsigned long long count = strtoull(text, &end, 10);
        if (errno != 0 || text[0] < '0' || text[0] > '9' || *end != '\0' || count == 0 ||
            count > CONFIG_COUNT_MAX)
            return report_error(report, -EINVAL, line,
                                "[%s%s] %s: '%s' is not a whole number from 1 to %d", prefix, name,
                                spec->name, text, CONFIG_COUNT_MAX);
        ret->bytes = count;
        return 0;
    }
    }

    ret->text = strdup(text);
    if (ret->text == NULL)
        return report_out_of_memory(report, line);
    return 0;
}

/* ---- lookups ------------------------------------------------------------- */

static struct section *find_named(struct section *const *sections, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(sections[i]->name, name) == 0)
            return sections[i];
    return NULL;
}

static int find_key(const struct section *section, const char *key)
{
    size_t count;
    const struct key_spec *keys = section_keys(section->kind, &count);
    for (size_t i = 0; i < count; i++)
        if (strcmp(keys[i].name, key) == 0)
            return (int)i;
    return -1;
}

static int report_unknown_key(struct report *report, int line, const struct section *section,
                              const char *key)
{
    size_t count;
    const struct key_spec *keys = section_keys(section->kind, &count);
    char known[128] = "";
    for (size_t i = 0; i < count; i++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof(known) - used, "%s%s", i > 0 ? ", " : "", keys[i].name);
    }
    return report_error(report, -EINVAL, line, "[%s%s]: unknown key '%s' (known: %s)",
                        section_prefix(section), section_name(section), key, known);
}

/* ---- whole-topology checks ----------------------------------------------- */

static bool kind_needs_district(const char *kind)
{
    return kind != NULL && (strcmp(kind, "router") == 0 || strcmp(kind, "escalation") == 0);
}

static const int endpoint_keys[] = {WORKER_BUS, WORKER_REQUEST, WORKER_PUBLISH, WORKER_UNITS};
#define ENDPOINT_KEY_COUNT (sizeof(endpoint_keys) / sizeof(endpoint_keys[0]))

static int validate_city(const config_t *config, struct report *report)
{
    const struct section *city = &config->city;
    if (city->line == 0)
        return report_error(report, -EINVAL, 0, "missing [city] section (name, timezone)");
    const int required[] = {CITY_NAME, CITY_TIMEZONE};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (section_text(city, required[i]) == NULL)
            return report_error(report, -EINVAL, city->line, "[city] has no %s",
                                city_keys[required[i]].name);
    const char *security = section_text(city, CITY_SECURITY);
    if (security && strcmp(security, "curve") != 0 && strcmp(security, "plain") != 0)
        return report_error(report, -EINVAL, city->key_line[CITY_SECURITY],
                            "[city] security: '%s' is neither curve nor plain", security);
    return 0;
}

/* With security = plain nothing on the wire is authenticated: a tcp
 * endpoint may only bind the loopback interface. */
static bool endpoint_is_loopback_or_local(const char *endpoint)
{
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return true; /* ipc and inproc never leave the host */
    const char *host = endpoint + 6;
    size_t host_length = (size_t)(strrchr(host, ':') - host);
    const char *const loopback[] = {"127.0.0.1", "[::1]", "::1", "localhost"};
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
        if (strlen(loopback[i]) == host_length && strncmp(host, loopback[i], host_length) == 0)
            return true;
    return false;
}

static int validate_plain_loopback(const config_t *config, struct report *report)
{
    const char *security = section_text(&config->city, CITY_SECURITY);
    if (!security || strcmp(security, "plain") != 0)
        return 0;
    for (size_t i = 0; i < config->worker_count; i++) {
        const struct section *worker = config->workers[i];
        for (size_t k = 0; k < ENDPOINT_KEY_COUNT; k++) {
            const char *endpoint = section_text(worker, endpoint_keys[k]);
            if (endpoint && !endpoint_is_loopback_or_local(endpoint))
                return report_error(report, -EINVAL, worker->key_line[endpoint_keys[k]],
                                    "[worker.%s] %s: '%s' is not on loopback; with [city] "
                                    "security = plain a tcp endpoint must bind 127.0.0.1, ::1 "
                                    "or localhost",
                                    worker->name, worker_keys[endpoint_keys[k]].name, endpoint);
        }
    }
    return 0;
}

static int validate_worker_links(const config_t *config, const struct section *worker,
                                 struct report *report)
{
    const struct value *links = &worker->values[WORKER_LINKS];
    int line = worker->key_line[WORKER_LINKS];
    for (size_t i = 0; i < links->link_count; i++) {
        const char *target_name = links->links[i];
        if (strcmp(target_name, worker->name) == 0)
            return report_error(report, -EINVAL, line, "[worker.%s] links to itself", worker->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(links->links[j], target_name) == 0)
                return report_error(report, -EINVAL, line, "[worker.%s] links to '%s' twice",
                                    worker->name, target_name);
        const struct section *target =
            find_named(config->workers, config->worker_count, target_name);
        if (target == NULL)
            return report_error(report, -EINVAL, line, "[worker.%s] links to unknown worker '%s'",
                                worker->name, target_name);
        if (section_text(target, WORKER_BUS) == NULL)
            return report_error(report, -EINVAL, line,
                                "[worker.%s] links to '%s', which has no bus endpoint",
                                worker->name, target_name);
    }
    return 0;
}

static int validate_worker(const config_t *config, const struct section *worker,
                           struct report *report)
{
    const char *kind = section_text(worker, WORKER_KIND);
    const char *district = section_text(worker, WORKER_DISTRICT);

    if (kind == NULL)
        return report_error(report, -EINVAL, worker->line,
                            "[worker.%s] has no kind (intake, router, escalation or audit)",
                            worker->name);
    if (district == NULL && kind_needs_district(kind))
        return report_error(report, -EINVAL, worker->line,
                            "[worker.%s] is a %s and needs a district", worker->name, kind);
    if (district != NULL && find_named(config->districts, config->district_count, district) == NULL)
        return report_error(report, -EINVAL, worker->key_line[WORKER_DISTRICT],
                            "[worker.%s] district '%s' has no [district.%s] section", worker->name,
                            district, district);
    if (section_text(worker, WORKER_STATE_DIR) == NULL)
        return report_error(report, -EINVAL, worker->line, "[worker.%s] has no state_dir",
                            worker->name);
    return validate_worker_links(config, worker, report);
}

/* No two binds of one endpoint: the second worker would fail at start. */
static int validate_endpoints_unique(const config_t *config, struct report *report)
{
    size_t total = config->worker_count * ENDPOINT_KEY_COUNT;
    for (size_t a = 0; a < total; a++) {
        const struct section *worker = config->workers[a / ENDPOINT_KEY_COUNT];
        int key = endpoint_keys[a % ENDPOINT_KEY_COUNT];
        const char *endpoint = section_text(worker, key);
        if (endpoint == NULL || endpoint_is_wildcard(endpoint))
            continue;
        for (size_t b = 0; b < a; b++) {
            const struct section *other = config->workers[b / ENDPOINT_KEY_COUNT];
            int other_key = endpoint_keys[b % ENDPOINT_KEY_COUNT];
            const char *other_endpoint = section_text(other, other_key);
            if (other_endpoint != NULL && strcmp(endpoint, other_endpoint) == 0)
                return report_error(report, -EINVAL, worker->key_line[key],
                                    "[worker.%s] %s: endpoint '%s' is already the %s of "
                                    "[worker.%s]",
                                    worker->name, worker_keys[key].name, endpoint,
                                    worker_keys[other_key].name, other->name);
        }
    }
    return 0;
}

/* Ticket ids carry their intake's prefix, and routers and escalation find
 * a ticket's intake by it: with more than one intake, each needs its own. */
static int validate_intake_prefixes(const config_t *config, struct report *report)
{
    const struct section *first = NULL;
    for (size_t i = 0; i < config->worker_count; i++) {
        const struct section *worker = config->workers[i];
        if (strcmp(section_text(worker, WORKER_KIND), "intake") != 0)
            continue;
        if (!first) {
            first = worker;
            continue;
        }
        const struct section *pair[2] = {first, worker};
        for (int k = 0; k < 2; k++)
            if (!section_text(pair[k], WORKER_ID_PREFIX))
                return report_error(report, -EINVAL, pair[k]->line,
                                    "[worker.%s] needs an id_prefix: with more than one intake "
                                    "(%s and %s) each issues ticket ids under its own prefix",
                                    pair[k]->name, first->name, worker->name);
        for (size_t j = 0; j < i; j++) {
            const struct section *other = config->workers[j];
            const char *prefix = section_text(other, WORKER_ID_PREFIX);
            if (strcmp(section_text(other, WORKER_KIND), "intake") == 0 && prefix &&
                strcmp(prefix, section_text(worker, WORKER_ID_PREFIX)) == 0)
                return report_error(report, -EINVAL, worker->key_line[WORKER_ID_PREFIX],
                                    "[worker.%s] id_prefix: '%s' is already the prefix of "
                                    "[worker.%s]; every intake needs its own",
                                    worker->name, prefix, other->name);
        }
    }
    return 0;
}

static int config_validate(const config_t *config, struct report *report)
{
    int r = validate_city(config, report);
    if (r < 0)
        return r;
    for (size_t i = 0; i < config->worker_count; i++) {
        r = validate_worker(config, config->workers[i], report);
        if (r < 0)
            return r;
    }
    r = validate_endpoints_unique(config, report);
    if (r == 0)
        r = validate_plain_loopback(config, report);
    return r < 0 ? r : validate_intake_prefixes(config, report);
}

/* ---- construction and destruction ---------------------------------------- */

static int config_new_empty(config_t **ret)
{
    config_t *config = calloc(1, sizeof(*config));
    if (config == NULL)
        return -ENOMEM;
    config->city.kind = SECTION_CITY;
    *ret = config;
    return 0;
}

void config_destroy(config_t **self)
{
    if (self == NULL || *self == NULL)
        return;
    config_t *config = *self;
    for (size_t i = 0; i < CITY_KEY_COUNT; i++)
        value_clear(&config->city.values[i]);
    for (size_t i = 0; i < config->district_count; i++)
        section_free(config->districts[i]);
    for (size_t i = 0; i < config->worker_count; i++)
        section_free(config->workers[i]);
    free(config->districts);
    free(config->workers);
    free(config->default_keys_dir);
    free(config);
    *self = NULL;
}

static int section_list_add(struct section ***list, size_t *count, size_t *capacity,
                            struct section *section)
{
    if (*count == *capacity) {
        size_t grown_capacity = *capacity == 0 ? 8 : *capacity * 2;
        struct section **grown = realloc(*list, grown_capacity * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        *list = grown;
        *capacity = grown_capacity;
    }
    (*list)[(*count)++] = section;
    return 0;
}

/* ---- the parser ---------------------------------------------------------- */

/* The handler's state: section is the section of the last header, never
 * NULL when a key arrives (ini refuses keys before any header, and a header
 * refused here ends the reading). */
struct parser {
    config_t *config;
    struct report *report;
    struct section *section;
};

/* Opens the section named by the header. */
static int parser_open_section(void *user, const ini_item_t *item)
{
    struct parser *parser = user;
    config_t *config = parser->config;
    struct report *report = parser->report;
    const char *header = item->section;
    int line = item->line;

    if (strcmp(header, "city") == 0) {
        if (config->city.line != 0)
            return report_error(report, -EINVAL, line, "[city] given twice (first at line %d)",
                                config->city.line);
        config->city.line = line;
        parser->section = &config->city;
        return 0;
    }

    enum section_kind kind;
    const char *name;
    if (strncmp(header, "district.", 9) == 0) {
        kind = SECTION_DISTRICT;
        name = header + 9;
    } else if (strncmp(header, "worker.", 7) == 0) {
        kind = SECTION_WORKER;
        name = header + 7;
    } else if (strcmp(header, "district") == 0 || strcmp(header, "worker") == 0) {
        return report_error(report, -EINVAL, line, "section [%s] needs a name: [%s.<name>]", header,
                            header);
    } else {
        return report_error(report, -EINVAL, line,
                            "unknown section [%s] (known: [city], [district.<id>], "
                            "[worker.<name>])",
                            header);
    }

    const char *what = kind == SECTION_DISTRICT ? "district id" : "worker name";
    const char *problem = name_problem(name);
    if (problem != NULL)
        return report_error(report, -EINVAL, line, "[%s]: %s '%s' %s", header, what, name, problem);

    struct section ***list = kind == SECTION_DISTRICT ? &config->districts : &config->workers;
    size_t *count = kind == SECTION_DISTRICT ? &config->district_count : &config->worker_count;
    size_t *capacity =
        kind == SECTION_DISTRICT ? &config->district_capacity : &config->worker_capacity;

    const struct section *existing = find_named(*list, *count, name);
    if (existing != NULL)
        return report_error(report, -EINVAL, line, "duplicate %s [%s] (first at line %d)",
                            kind == SECTION_DISTRICT ? "district" : "worker", header,
                            existing->line);

    struct section *section = calloc(1, sizeof(*section));
    if (section == NULL)
        return report_out_of_memory(report, line);
    section->kind = kind;
    section->line = line;
    section->name = strdup(name);
    if (section->name == NULL || section_list_add(list, count, capacity, section) < 0) {
        section_free(section);
        return report_out_of_memory(report, line);
    }
    parser->section = section;
    return 0;
}

/* A key line, or an indented line going on with a links list (the only key
 * in continued_keys, so its section is a worker's). */
static int parser_take_key(void *user, const ini_item_t *item)
{
    struct parser *parser = user;
    struct report *report = parser->report;
    struct section *section = parser->section;
    int line = item->line;

    if (item->continued)
        return links_append(&section->values[WORKER_LINKS], item->value, section, report, line);

    int index = find_key(section, item->key);
    if (index < 0)
        return report_unknown_key(report, line, section, item->key);
    if (section->key_line[index] != 0)
        return report_error(report, -EINVAL, line, "[%s%s] %s given twice (first at line %d)",
                            section_prefix(section), section_name(section), item->key,
                            section->key_line[index]);

    size_t count;
    const struct key_spec *spec = &section_keys(section->kind, &count)[index];
    struct value value;
    int r = value_parse(spec, item->value, section, &value, report, line);
    if (r < 0)
        return r;
    section->values[index] = value;
    section->key_line[index] = line;
    return 0;
}

static const char *const continued_keys[] = {"links", NULL};

static const ini_handler_t topology_handler = {
    .section = parser_open_section,
    .key = parser_take_key,
    .continued_keys = continued_keys,
};

/* Reads `text`, or the file at `origin` when text is NULL, then checks the
 * whole topology. */
/* Keys live beside the topology file unless [city] keys_dir says
 * otherwise; a topology read from a string looks in ./keys. */
static int set_default_keys_dir(config_t *config, const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    int length = slash ? (int)(slash - path) : 0;
    int r = slash ? asprintf(&config->default_keys_dir, "%.*s/keys", length > 0 ? length : 1,
                             length > 0 ? path : "/")
                  : asprintf(&config->default_keys_dir, "keys");
    if (r < 0) {
        config->default_keys_dir = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int parse_source(const char *origin, const char *text, config_t **ret, struct report *report)
{
    config_t *config = NULL;
    int r = config_new_empty(&config);
    if (r < 0)
        return report_out_of_memory(report, 0);

    struct parser parser = {.config = config, .report = report};
    r = ini_parse(origin, text, &topology_handler, &parser, report->buf, report->len);
    if (r == 0)
        r = config_validate(config, report);
    if (r < 0) {
        config_destroy(&config);
        return r;
    }

    for (size_t i = 0; i < config->district_count; i++)
        section_refresh_view(config->districts[i]);
    for (size_t i = 0; i < config->worker_count; i++)
        section_refresh_view(config->workers[i]);
    if (set_default_keys_dir(config, text == NULL ? origin : NULL) < 0) {
        config_destroy(&config);
        return report_out_of_memory(report, 0);
    }
    *ret = config;
    return 0;
}

static void clear_message(char *err, size_t err_len)
{
    if (err != NULL && err_len > 0)
        err[0] = '\0';
}

int config_load(const char *path, config_t **ret, char *err, size_t err_len)
{
    clear_message(err, err_len);
    struct report report = {.buf = err, .len = err_len, .origin = path};
    if (path == NULL || ret == NULL)
        return -EINVAL;
    return parse_source(path, NULL, ret, &report);
}

int config_parse_string(const char *text, config_t **ret, char *err, size_t err_len)
{
    clear_message(err, err_len);
    struct report report = {.buf = err, .len = err_len, .origin = "(string)"};
    if (text == NULL || ret == NULL)
        return -EINVAL;
    return parse_source("(string)", text, ret, &report);
}

/* ---- accessors ----------------------------------------------------------- */

const char *config_city(const config_t *config)
{
    return section_text(&config->city, CITY_NAME);
}

const char *config_timezone(const config_t *config)
{
    return section_text(&config->city, CITY_TIMEZONE);
}

config_security_t config_security(const config_t *config)
{
    const char *security = section_text(&config->city, CITY_SECURITY);
    return security && strcmp(security, "plain") == 0 ? CONFIG_SECURITY_PLAIN
                                                      : CONFIG_SECURITY_CURVE;
}

const char *config_keys_dir(const config_t *config)
{
    const char *dir = section_text(&config->city, CITY_KEYS_DIR);
    return dir ? dir : config->default_keys_dir;
}

size_t config_worker_count(const config_t *config)
{
    return config->worker_count;
}

const config_worker_t *config_worker_at(const config_t *config, size_t i)
{
    return i < config->worker_count ? &config->workers[i]->view.worker : NULL;
}

const config_worker_t *config_worker_find(const config_t *config, const char *name)
{
    if (name == NULL)
        return NULL;
    const struct section *worker = find_named(config->workers, config->worker_count, name);
    return worker != NULL ? &worker->view.worker : NULL;
}

size_t config_district_count(const config_t *config)
{
    return config->district_count;
}

const config_district_t *config_district_at(const config_t *config, size_t i)
{
    return i < config->district_count ? &config->districts[i]->view.district : NULL;
}

const config_district_t *config_district_find(const config_t *config, const char *id)
{
    if (id == NULL)
        return NULL;
    const struct section *district = find_named(config->districts, config->district_count, id);
    return district != NULL ? &district->view.district : NULL;
}

/* ---- overrides ----------------------------------------------------------- */

/* Finds the section and key named by "city.<key>", "district.<id>.<key>" or
 * "worker.<name>.<key>". Names may contain '.', keys do not. */
static int config_locate(config_t *config, const char *path, struct section **section_ret,
                         const char **key_ret, struct report *report)
{
    const char *last_dot = strrchr(path, '.');
    if (last_dot == NULL || last_dot[1] == '\0')
        return report_error(report, -EINVAL, 0,
                            "expected city.<key>, district.<id>.<key> or worker.<name>.<key>");
    const char *key = last_dot + 1;

    if (strncmp(path, "city.", 5) == 0 && path + 4 == last_dot) {
        *section_ret = &config->city;
        *key_ret = key;
        return 0;
    }

    struct section **list;
    size_t count;
    size_t prefix_length;
    if (strncmp(path, "district.", 9) == 0) {
        list = config->districts;
        count = config->district_count;
        prefix_length = 9;
    } else if (strncmp(path, "worker.", 7) == 0) {
        list = config->workers;
        count = config->worker_count;
        prefix_length = 7;
    } else {
        return report_error(report, -EINVAL, 0,
                            "expected city.<key>, district.<id>.<key> or worker.<name>.<key>");
    }
    if (last_dot <= path + prefix_length)
        return report_error(report, -EINVAL, 0, "missing the section name before the key");

    char *name = strndup(path + prefix_length, (size_t)(last_dot - path - prefix_length));
    if (name == NULL)
        return report_out_of_memory(report, 0);
    struct section *section = find_named(list, count, name);
    int r = 0;
    if (section == NULL)
        r = report_error(report, -ENOENT, 0, "no [%.*s] in the topology", (int)(last_dot - path),
                         path);
    free(name);
    if (r < 0)
        return r;
    *section_ret = section;
    *key_ret = key;
    return 0;
}

int config_set(config_t *config, const char *key, const char *value, char *err, size_t err_len)
{
    clear_message(err, err_len);
    struct report report = {.buf = err, .len = err_len, .set_key = key};
    if (config == NULL || key == NULL || value == NULL)
        return -EINVAL;

    struct section *section = NULL;
    const char *key_name = NULL;
    int r = config_locate(config, key, &section, &key_name, &report);
    if (r < 0 || section == NULL)
        return r < 0 ? r : -EINVAL;
    int index = find_key(section, key_name);
    if (index < 0)
        return report_unknown_key(&report, 0, section, key_name);

    size_t count;
    const struct key_spec *spec = &section_keys(section->kind, &count)[index];
    struct value replacement;
    r = value_parse(spec, value, section, &replacement, &report, 0);
    if (r < 0)
        return r;

    struct value previous = section->values[index];
    section->values[index] = replacement;
    r = config_validate(config, &report);
    if (r < 0) {
        section->values[index] = previous;
        value_clear(&replacement);
        return r;
    }
    value_clear(&previous);
    section_refresh_view(section);
    return 0;
}

#include "ctl_common.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "mask.h"
#include "pbjson.h"
#include "tool_keys.h"
#include "utf8.h"
#include "words.h"

/* --- errors and exit codes --- */

/* "dispatchctl: <message>" and `end` on stderr. */
__attribute__((format(printf, 2, 0))) static void print_error(const char *end, const char *format,
                                                              va_list args)
{
    fputs("dispatchctl: ", stderr);
    vfprintf(stderr, format ? format : "", args); /* never NULL; said for instrumented builds */
    fputs(end, stderr);
}

int ctl_usage_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    print_error("\nTry 'dispatchctl --help'.\n", format, args);
    va_end(args);
    return CTL_EXIT_USAGE;
}

int ctl_fail(int code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    print_error("\n", format, args);
    va_end(args);
    return code;
}

int ctl_exit_for_error_code(int code)
{
    switch (code) {
    case DISPATCH__ERROR_CODE__ERROR_CODE_OK:
        return CTL_EXIT_OK;
    case DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND:
        return CTL_EXIT_NOT_FOUND;
    case DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST:
    case DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE:
    case DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD:
    case DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE:
    case DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8:
    case DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_PHONE:
    case DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT:
    case DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN:
        return CTL_EXIT_REFUSED;
    case DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE:
        return CTL_EXIT_UNAVAILABLE;
    default:
        return CTL_EXIT_INTERNAL;
    }
}

int ctl_refused(const Dispatch__Error *error)
{
    char message[2048], field[256];
    ctl_clean(error->message, message, sizeof(message));
    ctl_clean(error->field, field, sizeof(field));
    fprintf(stderr, "dispatchctl: %s: %s%s%s%s\n",
            ctl_enum_name(&dispatch__error_code__descriptor, error->code, false), message,
            *field ? " (" : "", field, *field ? ")" : "");
    int code = ctl_exit_for_error_code(error->code);
    /* An Error with code OK is a server fault, not a success. */
    return code == CTL_EXIT_OK ? CTL_EXIT_INTERNAL : code;
}

/* --- endpoints --- */

static int need_config(ctl_t *ctl, const char *option)
{
    if (ctl->config)
        return CTL_EXIT_OK;
    return ctl_usage_error("no topology file (%s not found): give --config FILE or %s URL",
                           CTL_DEFAULT_CONFIG, option);
}

int ctl_intake_url(ctl_t *ctl, const char **url)
{
    if (ctl->intake_url) {
        *url = ctl->intake_url;
        return CTL_EXIT_OK;
    }
    int rc = need_config(ctl, "--intake");
    if (rc != CTL_EXIT_OK)
        return rc;
    for (size_t i = 0; i < config_worker_count(ctl->config); i++) {
        const config_worker_t *worker = config_worker_at(ctl->config, i);
        if (strcmp(worker->kind, "intake") == 0 && worker->request) {
            *url = worker->request;
            return CTL_EXIT_OK;
        }
    }
    return ctl_usage_error("%s has no intake with a request endpoint: give --intake URL",
                           ctl->config_path);
}

static int find_router(ctl_t *ctl, const char *district, const char *option,
                       const config_worker_t **ret)
{
    int rc = need_config(ctl, option);
    if (rc != CTL_EXIT_OK)
        return rc;
    const char *wanted = ctl->district ? ctl->district : district;
    const config_worker_t *found = NULL;
    size_t routers = 0;
    for (size_t i = 0; i < config_worker_count(ctl->config); i++) {
        const config_worker_t *worker = config_worker_at(ctl->config, i);
        if (strcmp(worker->kind, "router") != 0)
            continue;
        routers++;
        if (!wanted || strcmp(worker->district, wanted) == 0)
            found = worker;
    }
    if (!wanted && routers > 1)
        return ctl_usage_error("%s has %zu districts: give --district D or %s URL",
                               ctl->config_path, routers, option);
    if (!found)
        return wanted
                   ? ctl_usage_error("%s has no router for district '%s'", ctl->config_path, wanted)
                   : ctl_usage_error("%s has no router: give %s URL", ctl->config_path, option);
    *ret = found;
    return CTL_EXIT_OK;
}

/* A router's admin endpoint (`request`) or its unit endpoint (`units`). */
static int router_endpoint(ctl_t *ctl, const char *district, bool units, const char **url)
{
    const char *given = units ? ctl->units_url : ctl->router_url;
    const char *option = units ? "--units" : "--router";
    if (given) {
        *url = given;
        return CTL_EXIT_OK;
    }
    const config_worker_t *router = NULL;
    int rc = find_router(ctl, district, option, &router);
    if (rc != CTL_EXIT_OK)
        return rc;
    const char *endpoint = units ? router->units : router->request;
    if (!endpoint)
        return ctl_usage_error("worker %s in %s has no %s endpoint: give %s URL", router->name,
                               ctl->config_path, units ? "units" : "request (admin)", option);
    *url = endpoint;
    return CTL_EXIT_OK;
}

int ctl_router_url(ctl_t *ctl, const char *district, const char **url)
{
    return router_endpoint(ctl, district, false, url);
}

int ctl_units_url(ctl_t *ctl, const char *district, const char **url)
{
    return router_endpoint(ctl, district, true, url);
}

/* --- calls --- */

int ctl_call(ctl_t *ctl, const char *url, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *reply_descriptor, ProtobufCMessage **reply)
{
    *reply = NULL;
    client_t *client;
    const auth_client_t *curve;
    int rc = ctl_curve(ctl, url, &curve);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = client_new(ctl->zmq, url, ctl->timeout_ms, curve, &client);
    if (rc == -ENOMEM)
        return ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
    if (rc < 0)
        return ctl_usage_error("cannot connect to '%s': %s", url, strerror(-rc));
    rc = client_call(client, request, reply_descriptor, reply);
    client_destroy(&client);
    switch (rc) {
    case 0:
        return CTL_EXIT_OK;
    case -ETIMEDOUT:
        return ctl_fail(CTL_EXIT_UNAVAILABLE, "no answer from %s within %d ms", url,
                        ctl->timeout_ms);
    case -EINTR:
        return ctl_fail(CTL_EXIT_UNAVAILABLE, "interrupted while waiting for %s", url);
    case -EBADMSG:
        return ctl_fail(CTL_EXIT_INTERNAL, "undecodable reply from %s", url);
    default:
        return ctl_fail(CTL_EXIT_INTERNAL, "request to %s failed: %s", url, strerror(-rc));
    }
}

int ctl_print_json(const ProtobufCMessage *msg)
{
    int rc = pbjson_write(stdout, msg);
    fputc('\n', stdout);
    if (rc < 0 || fflush(stdout) != 0)
        return ctl_fail(CTL_EXIT_INTERNAL, "cannot write the output");
    return CTL_EXIT_OK;
}

const char *ctl_request_id(const char *given, char *buf, size_t len)
{
    if (given)
        return given;
    uint8_t random[16];
    ssize_t got = getrandom(random, sizeof(random), 0);
    if (got != (ssize_t)sizeof(random)) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        got = fd >= 0 ? read(fd, random, sizeof(random)) : -1;
        if (fd >= 0)
            close(fd);
    }
    if (got != (ssize_t)sizeof(random)) {
        /* Last resort: unique enough per process and instant. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t mix[2] = {(uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
                           (uint64_t)getpid()};
        memcpy(random, mix, sizeof(random));
    }
    static const char hex[] = "0123456789abcdef";
    char text[4 + 2 * sizeof(random) + 1] = "ctl-";
    for (size_t i = 0; i < sizeof(random); i++) {
        text[4 + 2 * i] = hex[random[i] >> 4];
        text[4 + 2 * i + 1] = hex[random[i] & 0x0f];
    }
    text[sizeof(text) - 1] = '\0';
    snprintf(buf, len, "%s", text);
    return buf;
}

void ctl_retry_hint(const char *request_id)
{
    fprintf(stderr,
            "dispatchctl: it may have been applied; retrying with --request-id %s "
            "never applies it twice\n",
            request_id);
}

void ctl_set_body(ProtobufCMessage *msg, int body_case, void *body)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field(msg->descriptor, (unsigned)body_case);
    assert(field && (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           field->type == PROTOBUF_C_TYPE_MESSAGE);
    uint32_t which = (uint32_t)body_case;
    memcpy((char *)msg + field->quantifier_offset, &which, sizeof(which));
    memcpy((char *)msg + field->offset, &body, sizeof(body));
}

/* Whether <keys_dir>/<actor>.key_secret is there. */
static bool has_key(const ctl_t *ctl, const char *actor)
{
    auth_keypair_t pair;
    return actor && auth_keypair_load(config_keys_dir(ctl->config), actor, &pair) == 0;
}

int ctl_curve(ctl_t *ctl, const char *url, const auth_client_t **ret)
{
    *ret = NULL;
    if (!ctl->config || config_security(ctl->config) != CONFIG_SECURITY_CURVE)
        return CTL_EXIT_OK;
    const char *actor =
        has_key(ctl, ctl->key_actor) ? ctl->key_actor : ctl_actor(ctl, "dispatchctl");
    char err[512];
    if (tool_keys(ctl->config, ctl->key_path, actor, tool_server_of(ctl->config, url), &ctl->curve,
                  ret, err, sizeof(err)) < 0)
        return ctl_usage_error("%s: %s", url, err);
    snprintf(ctl->key_name, sizeof(ctl->key_name), "%s", actor);
    if (ctl->key_path) {
        auth_actor_t who;
        if (auth_actor_load_file(ctl->key_path, &who) < 0)
            return ctl_usage_error("--key %s names no actor", ctl->key_path);
        snprintf(ctl->key_name, sizeof(ctl->key_name), "%s", who.name);
    }
    return CTL_EXIT_OK;
}

const char *ctl_intake_actor(ctl_t *ctl, const char *url)
{
    const auth_client_t *curve = NULL;
    if (ctl_curve(ctl, url, &curve) == CTL_EXIT_OK && curve)
        return ctl->actor ? ctl->actor : "";
    return ctl_actor(ctl, "dispatchctl");
}

const char *ctl_actor(const ctl_t *ctl, const char *fallback)
{
    if (ctl->actor)
        return ctl->actor;
    const char *env = getenv("DISPATCH_ACTOR");
    if (env && *env)
        return env;
    env = getenv("USER");
    if (env && *env)
        return env;
    return fallback;
}

/* --- following a stream --- */

static volatile sig_atomic_t follow_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    follow_stop = 1;
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void ctl_follow_start(ctl_follow_t *self, const ctl_t *ctl, const char *what)
{
    *self = (ctl_follow_t){ctl, what, 0};
    ctl_follow_seen(self);
    struct sigaction stop = {.sa_handler = on_stop_signal};
    sigemptyset(&stop.sa_mask);
    sigaction(SIGINT, &stop, NULL);
    sigaction(SIGTERM, &stop, NULL);
}

bool ctl_follow_stopped(void)
{
    return follow_stop != 0;
}

int ctl_follow_wait(ctl_follow_t *self, int max_ms, int *wait_ms)
{
    *wait_ms = max_ms;
    if (!self->ctl->timeout_given)
        return CTL_EXIT_OK;
    int64_t left = self->quiet_until - monotonic_ms();
    if (left <= 0)
        return ctl_fail(CTL_EXIT_UNAVAILABLE, "no %s within %d ms", self->what,
                        self->ctl->timeout_ms);
    if (left < max_ms)
        *wait_ms = (int)left;
    return CTL_EXIT_OK;
}

void ctl_follow_seen(ctl_follow_t *self)
{
    self->quiet_until = monotonic_ms() + self->ctl->timeout_ms;
}

/* --- words --- */

int ctl_parse_word(const ProtobufCEnumDescriptor *descriptor, const char *option, const char *text,
                   int *value)
{
    if (words_parse(descriptor, text, value) == 0)
        return 0;
    fprintf(stderr, "dispatchctl: %s: '%s' is not one of:", option, text);
    for (unsigned i = 0; i < descriptor->n_values; i++) {
        char word[WORDS_SIZE];
        if (words_name(descriptor, descriptor->values[i].value, word, sizeof(word)) == 0)
            fprintf(stderr, " %s", word);
        const char *alias = words_alias(descriptor, descriptor->values[i].value);
        if (alias)
            fprintf(stderr, " %s", alias);
    }
    fputs("\nTry 'dispatchctl --help'.\n", stderr);
    return -EINVAL;
}

/* Stores arg (of "--name") where option says; -EINVAL after printing why. */
static int store_option(const ctl_option_t *option, const char *name, const char *arg)
{
    switch (option->kind) {
    case CTL_OPTION_TEXT:
        *(const char **)option->value = arg;
        return 0;
    case CTL_OPTION_TRUE:
        *(protobuf_c_boolean *)option->value = 1;
        return 0;
    case CTL_OPTION_FALSE:
        *(protobuf_c_boolean *)option->value = 0;
        return 0;
    case CTL_OPTION_WORD:
        return ctl_parse_word(option->words, name, arg, (int *)option->value);
    case CTL_OPTION_LONG:
        return ctl_parse_long(name, arg, option->min, option->max, (long *)option->value);
    case CTL_OPTION_CHECK:
        return option->check(name, arg, option->value);
    }
    return -EINVAL;
}

int ctl_option_refused(const char *option, const char *arg, void *value)
{
    ctl_usage_error("%s", (const char *)value);
    return -EINVAL;
}

int ctl_parse_options(int argc, char **argv, const ctl_option_t *options, size_t count,
                      const char *command, int *first)
{
    struct option *table = calloc(count + 1, sizeof(*table));
    if (!table)
        return ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
    for (size_t i = 0; i < count; i++) {
        bool flag = options[i].kind == CTL_OPTION_TRUE || options[i].kind == CTL_OPTION_FALSE;
        table[i] = (struct option){options[i].name, flag ? no_argument : required_argument, NULL,
                                   (int)i + 256};
    }
    int opt, rc = CTL_EXIT_OK;
    optind = 0;
    while (rc == CTL_EXIT_OK && (opt = getopt_long(argc, argv, "", table, NULL)) != -1) {
        if (opt < 256 || (size_t)opt - 256 >= count) {
            rc = CTL_EXIT_USAGE;
            break;
        }
        const ctl_option_t *option = &options[opt - 256];
        char name[64];
        snprintf(name, sizeof(name), "--%s", option->name);
        if (store_option(option, name, optarg) < 0)
            rc = CTL_EXIT_USAGE;
    }
    free(table);
    if (rc == CTL_EXIT_OK && command && optind < argc)
        return ctl_usage_error("%s%sunexpected argument '%s'", command, *command ? ": " : "",
                               argv[optind]);
    if (first)
        *first = optind;
    return rc;
}

int ctl_parse_long(const char *option, const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || parsed < min || parsed > max) {
        ctl_usage_error("%s: '%s' is not a whole number from %ld to %ld", option, text, min, max);
        return -EINVAL;
    }
    *value = parsed;
    return 0;
}

void ctl_free_list(char **items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(items[i]);
    free(items);
}

int ctl_split_list(const char *option, const char *text, size_t max, char ***items, size_t *count)
{
    *items = NULL;
    *count = 0;
    char **list = calloc(max + 1, sizeof(*list));
    if (!list)
        return -ENOMEM;
    size_t n = 0;
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len > 0) {
            if (n == max) {
                ctl_free_list(list, n);
                ctl_usage_error("%s: more than %zu entries", option, max);
                return -EINVAL;
            }
            list[n] = strndup(p, len);
            if (!list[n]) {
                ctl_free_list(list, n);
                return -ENOMEM;
            }
            n++;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    *items = list;
    *count = n;
    return 0;
}

/* --- human output --- */

const char *ctl_enum_name(const ProtobufCEnumDescriptor *descriptor, int value, bool zero_dash)
{
    if (value == 0 && zero_dash)
        return "-";
    const char *suffix = words_suffix(descriptor, value);
    return suffix ? suffix : "?";
}

const char *ctl_enum_lower(const ProtobufCEnumDescriptor *descriptor, int value, char *buf,
                           size_t len)
{
    const char *name = ctl_enum_name(descriptor, value, true);
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        buf[i] = (char)tolower((unsigned char)name[i]);
    if (len)
        buf[i] = '\0';
    return buf;
}

const char *ctl_time(int64_t unix_ms, char *buf, size_t len)
{
    if (unix_ms == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t seconds = (time_t)(unix_ms / 1000);
    struct tm local;
    if (!localtime_r(&seconds, &local) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &local) == 0)
        snprintf(buf, len, "%lld", (long long)unix_ms);
    return buf;
}

static bool is_wide(uint32_t cp)
{
    static const uint32_t ranges[][2] = {
        {0x1100, 0x115f},   {0x2e80, 0x303e},   {0x3041, 0x33ff}, {0x3400, 0x4dbf},
        {0x4e00, 0x9fff},   {0xa000, 0xa4cf},   {0xac00, 0xd7a3}, {0xf900, 0xfaff},
        {0xfe30, 0xfe4f},   {0xff00, 0xff60},   {0xffe0, 0xffe6}, {0x1f300, 0x1f64f},
        {0x1f900, 0x1f9ff}, {0x20000, 0x3fffd},
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (cp >= ranges[i][0] && cp <= ranges[i][1])
            return true;
    return false;
}

size_t ctl_display_width(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t left = strlen(text), width = 0;
    while (left > 0) {
        uint32_t cp = '?';
        size_t n = utf8_char(p, left, &cp);
        if (n == 0)
            n = 1;
        width += is_wide(cp) ? 2 : 1;
        p += n;
        left -= n;
    }
    return width;
}

const char *ctl_clean(const char *text, char *buf, size_t len)
{
    if (len == 0)
        return buf;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    size_t left = strlen((const char *)p), used = 0;
    while (left > 0) {
        uint32_t cp = 0;
        size_t n = utf8_char(p, left, &cp);
        /* C0 and C1 controls and DEL could drive the terminal. */
        bool control = n > 0 && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f));
        const char *replacement = n == 0 ? "?" : control ? " " : NULL;
        size_t take = replacement ? 1 : n;
        if (used + take >= len)
            break;
        memcpy(buf + used, replacement ? (const unsigned char *)replacement : p, take);
        used += take;
        if (n == 0)
            n = 1;
        p += n;
        left -= n;
    }
    buf[used] = '\0';
    return buf;
}

void ctl_print_block(FILE *out, const char *text, int indent)
{
    const char *line = text ? text : "";
    bool first = true;
    for (;;) {
        size_t len = strcspn(line, "\n");
        char *piece = strndup(line, len);
        char *clean = malloc(len + 1);
        if (piece && clean) {
            ctl_clean(piece, clean, len + 1);
            fprintf(out, "%*s%s\n", first ? 0 : indent, "", clean);
        }
        free(piece);
        free(clean);
        first = false;
        if (line[len] != '\n')
            break;
        line += len + 1;
    }
}

void ctl_print_caller(const ctl_t *ctl, FILE *out, const char *name, const char *phone,
                      bool confidential)
{
    char shown_name[256], shown_phone[128], clean[256];
    bool full = ctl->role == DISPATCH__ROLE__ROLE_OPERATOR;
    if (full) {
        snprintf(shown_name, sizeof(shown_name), "%s", name ? name : "");
        snprintf(shown_phone, sizeof(shown_phone), "%s", phone ? phone : "");
    } else {
        mask_name(name, shown_name, sizeof(shown_name));
        mask_phone(phone, shown_phone, sizeof(shown_phone));
    }
    if (!*shown_name && !*shown_phone) {
        fprintf(out, "-%s\n", confidential ? " (confidential)" : "");
        return;
    }
    fprintf(out, "%s", ctl_clean(shown_name, clean, sizeof(clean)));
    fprintf(out, "%s%s", *shown_name && *shown_phone ? " " : "",
            ctl_clean(shown_phone, clean, sizeof(clean)));
    fprintf(out, "%s\n", confidential ? " (confidential)" : "");
}

/* --- tables --- */

struct ctl_table {
    size_t columns;
    char **cells; /* rows * columns, row 0 = headers */
    size_t rows, capacity;
};

static char *clean_dup(const char *text)
{
    const char *source = text && *text ? text : "-";
    size_t len = strlen(source) + 1; /* cleaning never makes text longer */
    char *copy = malloc(len);
    if (copy)
        ctl_clean(source, copy, len);
    return copy;
}

int ctl_table_new(size_t columns, const char *const *headers, ctl_table_t **ret)
{
    ctl_table_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->columns = columns;
    int rc = ctl_table_add(self, headers);
    if (rc < 0) {
        ctl_table_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void ctl_table_destroy(ctl_table_t **self)
{
    ctl_table_t *table = *self;
    if (!table)
        return;
    for (size_t i = 0; i < table->rows * table->columns; i++)
        free(table->cells[i]);
    free(table->cells);
    free(table);
    *self = NULL;
}

int ctl_table_add(ctl_table_t *self, const char *const *cells)
{
    if (self->rows == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 16;
        char **grown = realloc(self->cells, capacity * self->columns * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        self->cells = grown;
        self->capacity = capacity;
    }
    char **row = self->cells + self->rows * self->columns;
    for (size_t c = 0; c < self->columns; c++) {
        row[c] = clean_dup(cells[c]);
        if (!row[c]) {
            for (size_t k = 0; k < c; k++)
                free(row[k]);
            return -ENOMEM;
        }
    }
    self->rows++;
    return 0;
}

void ctl_table_print(const ctl_table_t *self, FILE *out)
{
    size_t *widths = calloc(self->columns, sizeof(*widths));
    if (!widths)
        return;
    for (size_t r = 0; r < self->rows; r++)
        for (size_t c = 0; c < self->columns; c++) {
            size_t width = ctl_display_width(self->cells[r * self->columns + c]);
            if (width > widths[c])
                widths[c] = width;
        }
    for (size_t r = 0; r < self->rows; r++) {
        for (size_t c = 0; c < self->columns; c++) {
            const char *cell = self->cells[r * self->columns + c];
            fputs(cell, out);
            if (c + 1 == self->columns)
                break;
            size_t pad = widths[c] - ctl_display_width(cell) + 2;
            fprintf(out, "%*s", (int)pad, "");
        }
        fputc('\n', out);
    }
    free(widths);
}

/* --- admin calls and queues (shared by ctl_admin.c and ctl_unit.c) --- */

int ctl_admin_call(ctl_t *ctl, const char *url, Dispatch__AdminRequest__BodyCase body_case,
                   void *body, const char *default_actor, Dispatch__Role default_role,
                   Dispatch__AdminReply **reply)
{
    *reply = NULL;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    ctl_set_body(&request.base, body_case, body);
    request.actor_id = (char *)(ctl->actor ? ctl->actor : default_actor);
    request.role = ctl->role ? ctl->role : default_role;
    /* With keys, the request speaks for the key's actor and nobody else. */
    const auth_client_t *curve;
    ctl->key_actor = request.actor_id;
    int rc = ctl_curve(ctl, url, &curve);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (curve)
        request.actor_id = ctl->key_name;
    ProtobufCMessage *msg;
    rc = ctl_call(ctl, url, &request.base, &dispatch__admin_reply__descriptor, &msg);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__AdminReply *answer = (Dispatch__AdminReply *)msg;
    if (ctl->json)
        rc = ctl_print_json(msg);
    if (answer->body_case == DISPATCH__ADMIN_REPLY__BODY_ERROR && answer->error)
        rc = ctl_refused(answer->error);
    else if (answer->body_case == DISPATCH__ADMIN_REPLY__BODY__NOT_SET)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "empty reply from %s", url);
    if (rc != CTL_EXIT_OK) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    *reply = answer;
    return CTL_EXIT_OK;
}

void ctl_print_queue(const Dispatch__QueueView *queue, bool with_unit)
{
    enum { COLUMNS = 11 };
    static const char *const headers[COLUMNS] = {
        "TICKET", "STATE", "CATEGORY", "AREA",        "KIND", "URGENCY",
        "UNIT",   "SINCE", "DEADLINE", "SUPERVISION", "TEXT",
    };
    ctl_table_t *table;
    if (ctl_table_new(COLUMNS, headers, &table) < 0)
        return;
    for (size_t i = 0; i < queue->n_items; i++) {
        const Dispatch__QueueItem *item = queue->items[i];
        char since[32], deadline[32], kind[32], urgency[32];
        const char *cells[COLUMNS] = {
            item->ticket_id,
            ctl_enum_name(&dispatch__ticket_state__descriptor, item->state, true),
            item->category,
            item->area,
            ctl_enum_lower(&dispatch__kind__descriptor, item->kind, kind, sizeof(kind)),
            ctl_enum_lower(&dispatch__urgency__descriptor, item->urgency, urgency, sizeof(urgency)),
            with_unit ? item->unit_id : NULL,
            ctl_time(item->since, since, sizeof(since)),
            ctl_time(item->deadline, deadline, sizeof(deadline)),
            ctl_enum_name(&dispatch__supervision_level__descriptor, item->supervision, true),
            item->text,
        };
        if (ctl_table_add(table, cells) < 0)
            break;
    }
    ctl_table_print(table, stdout);
    ctl_table_destroy(&table);
    if (queue->more && queue->n_items > 0)
        printf("(more: continue with --after %s)\n", queue->items[queue->n_items - 1]->ticket_id);
    else if (queue->n_items == 0)
        printf("(empty)\n");
}

/* gateway: construction, the HTTP dispatcher and the pieces every handler
 * uses; see gateway.h. */
#include "gateway_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "screen.h"

const double gateway_buckets[GATEWAY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,  0.1,    0.25,  0.5,  1.0};

#define PARAMS_MAX 64

struct gateway_params {
    size_t count;
    char *names[PARAMS_MAX];
    char *values[PARAMS_MAX];
    bool too_many;
    bool has_nul; /* a name or value held a NUL byte */
};

/* One HTTP request, from its first call to its completion. */
typedef struct exchange {
    struct timespec started;
    char *body;
    size_t len, capacity;
    bool too_large;
    gateway_route_t route;
} exchange_t;

static __thread unsigned respond_status;

/* ---- pools --------------------------------------------------------------- */

static int pool_open(gateway_t *self, gateway_pool_t *pool, const char *url, const char *server)
{
    snprintf(pool->url, sizeof(pool->url), "%s", url);
    for (size_t i = 0; i < GATEWAY_POOL; i++)
        pthread_mutex_init(&pool->locks[i], NULL);
    if (config_security(self->config) == CONFIG_SECURITY_CURVE) {
        int rc = auth_client_load(config_keys_dir(self->config), self->name, server, &pool->curve);
        if (rc < 0)
            return rc;
        pool->has_curve = true;
    }
    return 0;
}

static void pool_close(gateway_pool_t *pool)
{
    for (size_t i = 0; i < GATEWAY_POOL; i++) {
        client_destroy(&pool->clients[i]);
        pthread_mutex_destroy(&pool->locks[i]);
    }
}

int gateway_pool_call(gateway_t *self, gateway_pool_t *pool, const ProtobufCMessage *request,
                      const ProtobufCMessageDescriptor *reply_descriptor, ProtobufCMessage **reply)
{
    size_t start = atomic_fetch_add(&pool->next, 1) % GATEWAY_POOL, i = GATEWAY_POOL;
    /* A free client if there is one; else wait for the one due in turn. */
    for (size_t tries = 0; tries < GATEWAY_POOL && i == GATEWAY_POOL; tries++)
        if (pthread_mutex_trylock(&pool->locks[(start + tries) % GATEWAY_POOL]) == 0)
            i = (start + tries) % GATEWAY_POOL;
    if (i == GATEWAY_POOL) {
        i = start;
        pthread_mutex_lock(&pool->locks[i]);
    }
    int rc = 0;
    if (!pool->clients[i])
        rc = client_new(self->zmq, pool->url, self->options.timeout_ms,
                        pool->has_curve ? &pool->curve : NULL, &pool->clients[i]);
    if (rc == 0)
        rc = client_call(pool->clients[i], request, reply_descriptor, reply);
    pthread_mutex_unlock(&pool->locks[i]);
    if (rc < 0)
        atomic_fetch_add(&self->upstream_errors, 1);
    return rc;
}

gateway_intake_t *gateway_intake_for(gateway_t *self, const char *ticket_id)
{
    for (size_t i = 0; ticket_id && i < self->intake_count; i++) {
        size_t n = strlen(self->intakes[i].prefix);
        if (n && strncmp(ticket_id, self->intakes[i].prefix, n) == 0 && ticket_id[n] == '-')
            return &self->intakes[i];
    }
    return &self->intakes[0];
}

/* ---- responses ----------------------------------------------------------- */

enum MHD_Result gateway_respond(struct MHD_Connection *connection, unsigned status,
                                const char *content_type, const void *data, size_t len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    respond_status = status;
    return rc;
}

enum MHD_Result gateway_respond_json(struct MHD_Connection *connection, unsigned status,
                                     json_t *body)
{
    char *text =
        body ? json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(body);
    if (!text)
        return gateway_respond(connection, 500, "application/json; charset=utf-8",
                               "[{\"code\":500,\"description\":\"out of memory\"}]", 45);
    enum MHD_Result rc =
        gateway_respond(connection, status, "application/json; charset=utf-8", text, strlen(text));
    free(text);
    return rc;
}

enum MHD_Result gateway_respond_error(struct MHD_Connection *connection, unsigned status,
                                      const char *format, ...)
{
    char description[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(description, sizeof(description), format, args);
    va_end(args);
    json_t *error = json_pack("[{s:i,s:s}]", "code", (int)status, "description", description);
    if (!error) /* the description was not UTF-8: say so without it */
        error = json_pack("[{s:i,s:s}]", "code", (int)status, "description",
                          "the request could not be read");
    return gateway_respond_json(connection, status, error);
}

/* ---- times --------------------------------------------------------------- */

bool gateway_ticket_closed(Dispatch__TicketState state)
{
    switch (state) {
    case DISPATCH__TICKET_STATE__TICKET_STATE_MERGED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED:
        return true;
    case DISPATCH__TICKET_STATE__TICKET_STATE_UNSPECIFIED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_RETURNED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE:
    case DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED:
        return false;
    }
    return false;
}

void gateway_format_time(int64_t ms, char *buf, size_t len)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int gateway_parse_time(const char *text, int64_t *ms)
{
    struct tm tm = {0};
    const char *rest = strptime(text, "%Y-%m-%d", &tm);
    if (!rest)
        return -EINVAL;
    long offset = 0;
    if (*rest == 'T' || *rest == ' ') {
        rest = strptime(rest + 1, "%H:%M", &tm);
        if (!rest)
            return -EINVAL;
        if (*rest == ':') {
            rest = strptime(rest + 1, "%S", &tm);
            if (!rest)
                return -EINVAL;
            if (*rest == '.')
                for (rest++; *rest >= '0' && *rest <= '9'; rest++)
                    ;
        }
        if (*rest == 'Z') {
            rest++;
        } else if (*rest == '+' || *rest == '-') {
            int hours, minutes, used = 0;
            if (sscanf(rest + 1, "%2d:%2d%n", &hours, &minutes, &used) != 2 || used != 5 ||
                hours > 23 || minutes > 59)
                return -EINVAL;
            offset = (hours * 60L + minutes) * 60L * (*rest == '+' ? 1 : -1);
            rest += 6;
        }
    }
    if (*rest)
        return -EINVAL;
    time_t seconds = timegm(&tm);
    if (seconds == (time_t)-1)
        return -EINVAL;
    *ms = ((int64_t)seconds - offset) * 1000;
    return 0;
}

/* ---- parameters ---------------------------------------------------------- */

const char *gateway_param(const gateway_params_t *params, const char *name)
{
    /* The last one given wins: the body comes after the query string. */
    for (size_t i = params->count; i-- > 0;)
        if (strcmp(params->names[i], name) == 0)
            return params->values[i];
    return NULL;
}

static void params_add(gateway_params_t *params, const char *name, size_t name_len,
                       const char *value, size_t value_len)
{
    if (params->count == PARAMS_MAX) {
        params->too_many = true;
        return;
    }
    if (memchr(name, '\0', name_len) || memchr(value, '\0', value_len)) {
        params->has_nul = true; /* C strings cannot hold it: refused, not cut */
        return;
    }
    char *n = malloc(name_len + 1), *v = malloc(value_len + 1);
    if (n && v) {
        memcpy(n, name, name_len);
        n[name_len] = '\0';
        memcpy(v, value, value_len);
        v[value_len] = '\0';
    }
    if (!n || !v) {
        free(n);
        free(v);
        params->too_many = true;
        return;
    }
    params->names[params->count] = n;
    params->values[params->count] = v;
    params->count++;
}

static void params_free(gateway_params_t *params)
{
    for (size_t i = 0; i < params->count; i++) {
        free(params->names[i]);
        free(params->values[i]);
    }
    params->count = 0;
}

static enum MHD_Result query_arg(void *ctx, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    gateway_params_t *params = ctx;
    params_add(params, key, strlen(key), value ? value : "", value ? strlen(value) : 0);
    return MHD_YES;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded text in place; its new length. */
static size_t form_decode(char *text, size_t len)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '+') {
            text[out++] = ' ';
        } else if (text[i] == '%' && i + 2 < len && hex_value(text[i + 1]) >= 0 &&
                   hex_value(text[i + 2]) >= 0) {
            text[out++] = (char)(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            text[out++] = text[i];
        }
    }
    return out;
}

static void params_from_form(gateway_params_t *params, char *body, size_t len)
{
    size_t start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && body[end] != '&')
            end++;
        char *pair = body + start;
        size_t pair_len = end - start;
        size_t eq = 0;
        while (eq < pair_len && pair[eq] != '=')
            eq++;
        if (pair_len) {
            size_t name_len = form_decode(pair, eq);
            size_t value_len = eq < pair_len ? form_decode(pair + eq + 1, pair_len - eq - 1) : 0;
            params_add(params, pair, name_len, eq < pair_len ? pair + eq + 1 : "", value_len);
        }
        start = end + 1;
    }
}

static bool json_scalar_text(json_t *value, char *buf, size_t len)
{
    if (json_is_string(value)) {
        snprintf(buf, len, "%s", json_string_value(value));
        return strlen(json_string_value(value)) < len;
    }
    if (json_is_integer(value)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return true;
    }
    if (json_is_real(value)) {
        snprintf(buf, len, "%.17g", json_real_value(value));
        return true;
    }
    if (json_is_boolean(value)) {
        snprintf(buf, len, "%s", json_is_true(value) ? "true" : "false");
        return true;
    }
    return false;
}

/* A JSON object of scalars, "attribute" may be an object of scalars. */
static int params_from_json(gateway_params_t *params, const char *body, size_t len, char *err,
                            size_t err_len)
{
    json_error_t error;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        snprintf(err, err_len, "invalid JSON: %s (line %d, column %d)", error.text, error.line,
                 error.column);
        return -EINVAL;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(err, err_len, "invalid JSON: the body must be an object");
        rc = -EINVAL;
    }
    const char *key;
    json_t *value;
    char text[8192];
    json_object_foreach(json_is_object(root) ? root : NULL, key, value)
    {
        if (rc < 0)
            break;
        if (strcmp(key, "attribute") == 0 && json_is_object(value)) {
            const char *inner_key;
            json_t *inner;
            json_object_foreach(value, inner_key, inner)
            {
                char name[128];
                if (!json_scalar_text(inner, text, sizeof(text)) ||
                    (size_t)snprintf(name, sizeof(name), "attribute[%s]", inner_key) >=
                        sizeof(name)) {
                    snprintf(err, err_len, "invalid JSON: attribute values must be scalars");
                    rc = -EINVAL;
                    break;
                }
                params_add(params, name, strlen(name), text, strlen(text));
            }
        } else if (json_is_null(value)) {
            continue;
        } else if (!json_scalar_text(value, text, sizeof(text))) {
            snprintf(err, err_len, "invalid JSON: '%.64s' must be a string or a number", key);
            rc = -EINVAL;
        } else {
            params_add(params, key, strlen(key), text, strlen(text));
        }
    }
    json_decref(root);
    return rc;
}

/* ---- dispatcher ---------------------------------------------------------- */

static bool ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && strcmp(text + n - m, suffix) == 0;
}

/* "/services/{code}.json" -> code into buf (its format suffix cut); false
 * when url is not under prefix or the segment is empty or holds a '/'. */
static bool path_segment(const char *url, const char *prefix, char *buf, size_t len,
                         const char **format)
{
    size_t n = strlen(prefix);
    if (strncmp(url, prefix, n) != 0)
        return false;
    const char *segment = url + n;
    const char *dot = strrchr(segment, '.');
    if (!dot || dot == segment || strchr(segment, '/'))
        return false;
    size_t seg_len = (size_t)(dot - segment);
    if (seg_len >= len)
        seg_len = len - 1;
    memcpy(buf, segment, seg_len);
    buf[seg_len] = '\0';
    *format = dot + 1;
    return true;
}

static enum MHD_Result not_served_format(struct MHD_Connection *connection, const char *format)
{
    if (strcmp(format, "xml") == 0)
        return gateway_respond_error(connection, 501,
                                     "XML is not served by this endpoint; ask for .json");
    return gateway_respond_error(connection, 404, "unknown format '.%.16s'; ask for .json", format);
}

static gateway_route_t route_of(const char *url)
{
    if (strncmp(url, "/services", 9) == 0)
        return strcmp(url, "/services.json") == 0 || strcmp(url, "/services.xml") == 0
                   ? GATEWAY_ROUTE_SERVICES
                   : GATEWAY_ROUTE_SERVICE;
    if (strcmp(url, "/requests.json") == 0 || strcmp(url, "/requests.xml") == 0)
        return GATEWAY_ROUTE_REQUESTS;
    if (strncmp(url, "/requests/", 10) == 0)
        return GATEWAY_ROUTE_REQUEST;
    if (strcmp(url, "/metrics") == 0)
        return GATEWAY_ROUTE_METRICS;
    if (strncmp(url, "/screen", 7) == 0 || strcmp(url, "/") == 0)
        return GATEWAY_ROUTE_SCREEN;
    return GATEWAY_ROUTE_OTHER;
}

/* One item by its path, /services/{code} or /requests/{id}: GET of JSON
 * only, in our jurisdiction, then served by serve_one. */
static enum MHD_Result
serve_item(gateway_t *self, struct MHD_Connection *connection, const char *url, const char *prefix,
           bool get, const gateway_params_t *params,
           enum MHD_Result (*serve_one)(gateway_t *self, struct MHD_Connection *connection,
                                        const char *segment))
{
    char segment[128];
    const char *format = "json";
    if (!path_segment(url, prefix, segment, sizeof(segment), &format))
        return gateway_respond_error(connection, 404, "no such endpoint");
    if (!get)
        return gateway_respond_error(connection, 405, "GET only");
    if (strcmp(format, "json") != 0)
        return not_served_format(connection, format);
    if (!open311_jurisdiction_ok(self, params))
        return gateway_respond_error(connection, 404, "jurisdiction_id not found");
    return serve_one(self, connection, segment);
}

static enum MHD_Result serve(gateway_t *self, struct MHD_Connection *connection, const char *url,
                             const char *method, exchange_t *exchange)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    if (exchange->too_large)
        return gateway_respond_error(connection, 413, "the body is over %d bytes",
                                     GATEWAY_BODY_MAX);
    if (!get && !post)
        return gateway_respond_error(connection, 405, "method %.16s is not served", method);

    gateway_params_t params = {0};
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, query_arg, &params);
    enum MHD_Result rc = MHD_NO;
    switch (exchange->route) {
    case GATEWAY_ROUTE_SERVICES:
        if (!get)
            rc = gateway_respond_error(connection, 405, "GET %s only", url);
        else if (ends_with(url, ".xml"))
            rc = not_served_format(connection, "xml");
        else if (!open311_jurisdiction_ok(self, &params))
            rc = gateway_respond_error(connection, 404, "jurisdiction_id not found");
        else
            rc = open311_services(self, connection);
        break;
    case GATEWAY_ROUTE_SERVICE:
        rc = serve_item(self, connection, url, "/services/", get, &params, open311_service);
        break;
    case GATEWAY_ROUTE_REQUESTS:
        if (ends_with(url, ".xml")) {
            rc = not_served_format(connection, "xml");
        } else if (post) {
            char err[256] = "";
            const char *type =
                MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Type");
            int parsed = 0;
            if (type && strncasecmp(type, "application/json", 16) == 0)
                parsed = params_from_json(&params, exchange->body ? exchange->body : "",
                                          exchange->len, err, sizeof(err));
            else if (exchange->len)
                params_from_form(&params, exchange->body, exchange->len);
            if (parsed < 0)
                rc = gateway_respond_error(connection, 400, "%s", err);
            else if (params.has_nul)
                rc = gateway_respond_error(connection, 400, "a parameter holds a NUL byte");
            else if (params.too_many)
                rc = gateway_respond_error(connection, 400, "more than %d parameters", PARAMS_MAX);
            else
                rc = open311_post_request(self, connection, &params);
        } else {
            rc = params.too_many
                     ? gateway_respond_error(connection, 400, "more than %d parameters", PARAMS_MAX)
                     : open311_get_requests(self, connection, &params);
        }
        break;
    case GATEWAY_ROUTE_REQUEST:
        rc = serve_item(self, connection, url, "/requests/", get, &params, open311_get_request);
        break;
    case GATEWAY_ROUTE_METRICS:
        rc = get ? metrics_serve(self, connection)
                 : gateway_respond_error(connection, 405, "GET only");
        break;
    case GATEWAY_ROUTE_SCREEN:
        rc = get ? screen_serve(self, connection, url, &params)
                 : gateway_respond_error(connection, 405, "GET only");
        break;
    case GATEWAY_ROUTE_OTHER:
    case GATEWAY_ROUTE_COUNT:
        rc = gateway_respond_error(connection, 404, "no such endpoint: %.200s", url);
        break;
    }
    params_free(&params);
    return rc;
}

static void record(gateway_t *self, const exchange_t *exchange, unsigned status)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double seconds = (double)(now.tv_sec - exchange->started.tv_sec) +
                     (double)(now.tv_nsec - exchange->started.tv_nsec) / 1e9;
    gateway_route_stats_t *stats = &self->routes[exchange->route];
    unsigned cls = status / 100;
    atomic_fetch_add(&stats->by_class[cls < 6 ? cls : 5], 1);
    size_t b = 0;
    while (b < GATEWAY_BUCKETS && seconds > gateway_buckets[b])
        b++;
    atomic_fetch_add(&stats->buckets[b], 1);
    atomic_fetch_add(&stats->micros, (uint_fast64_t)(seconds * 1e6));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    gateway_t *self = cls;
    exchange_t *exchange = *con_cls;
    if (!exchange) {
        exchange = calloc(1, sizeof(*exchange));
        if (!exchange)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &exchange->started);
        exchange->route = route_of(url);
        *con_cls = exchange;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (exchange->too_large || exchange->len + n > GATEWAY_BODY_MAX) {
            /* Read and dropped: the answer is 413 once the body is in. */
            exchange->too_large = true;
            free(exchange->body);
            exchange->body = NULL;
            exchange->len = exchange->capacity = 0;
            return MHD_YES;
        }
        if (exchange->len + n > exchange->capacity) {
            size_t next = exchange->capacity ? exchange->capacity : 4096;
            while (next < exchange->len + n)
                next *= 2;
            char *bigger = realloc(exchange->body, next);
            if (!bigger)
                return MHD_NO;
            exchange->body = bigger;
            exchange->capacity = next;
        }
        memcpy(exchange->body + exchange->len, upload_data, n);
        exchange->len += n;
        return MHD_YES;
    }
    respond_status = 0;
    enum MHD_Result rc = serve(self, connection, url, method, exchange);
    if (respond_status)
        record(self, exchange, respond_status);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    exchange_t *exchange = *con_cls;
    if (exchange) {
        free(exchange->body);
        free(exchange);
        *con_cls = NULL;
    }
}

/* ---- construction -------------------------------------------------------- */

static int parse_listen(const char *listen, struct sockaddr_in *addr)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof(host))
        return -EINVAL;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -EINVAL;
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, *host ? host : "0.0.0.0", &addr->sin_addr) != 1)
        return -EINVAL;
    return 0;
}

static int connect_workers(gateway_t *self, char *err, size_t err_len)
{
    size_t n = config_worker_count(self->config);
    self->intakes = calloc(n, sizeof(*self->intakes));
    if (!self->intakes)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const config_worker_t *w = config_worker_at(self->config, i);
        int rc = 0;
        if (strcmp(w->kind, "intake") == 0 && w->request) {
            gateway_intake_t *intake = &self->intakes[self->intake_count++];
            snprintf(intake->name, sizeof(intake->name), "%s", w->name);
            snprintf(intake->prefix, sizeof(intake->prefix), "%s",
                     w->id_prefix ? w->id_prefix : "");
            rc = pool_open(self, &intake->pool, w->request, w->name);
        } else if (strcmp(w->kind, "audit") == 0 && w->request && w->publish && !self->has_audit) {
            rc = pool_open(self, &self->audit, w->request, w->name);
            snprintf(self->audit_publish, sizeof(self->audit_publish), "%s", w->publish);
            self->has_audit = true;
        }
        if (rc < 0) {
            snprintf(err, err_len, "keys of %s toward %s in %s: %s", self->name, w->name,
                     config_keys_dir(self->config), strerror(-rc));
            return rc;
        }
    }
    if (!self->intake_count) {
        snprintf(err, err_len, "the topology has no intake with a request endpoint");
        return -EINVAL;
    }
    return 0;
}

int gateway_new(const gateway_options_t *options, gateway_t **ret, char *err, size_t err_len)
{
    gateway_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->options = *options;
    if (!self->options.timeout_ms)
        self->options.timeout_ms = 5000;
    if (!self->options.max_connections)
        self->options.max_connections = 256;
    snprintf(self->name, sizeof(self->name), "%s", options->name ? options->name : "gateway");
    snprintf(self->web_dir, sizeof(self->web_dir), "%s",
             options->web_dir ? options->web_dir : GATEWAY_WEB_DIR);
    int rc = config_load(options->config_path, &self->config, err, err_len);
    if (rc == 0) {
        snprintf(self->jurisdiction, sizeof(self->jurisdiction), "%s",
                 options->jurisdiction ? options->jurisdiction : config_city(self->config));
        rc = catalog_load(options->data_dir ? options->data_dir : "deploy/data", &self->catalog,
                          err, err_len);
    }
    if (rc == 0)
        rc = apikeys_load(options->api_keys, &self->apikeys, err, err_len);
    if (rc == 0) {
        self->zmq = zmq_ctx_new();
        rc = self->zmq ? connect_workers(self, err, err_len) : -ENOMEM;
    }
    if (rc == 0 && self->has_audit) {
        rc = board_new(self->zmq, self->audit_publish, self->audit.url,
                       self->audit.has_curve ? &self->audit.curve : NULL,
                       config_timezone(self->config), &self->board);
        if (rc < 0)
            snprintf(err, err_len, "board: %s", strerror(-rc));
    }
    struct sockaddr_in addr;
    if (rc == 0 && parse_listen(options->listen ? options->listen : "127.0.0.1:0", &addr) < 0) {
        snprintf(err, err_len, "--listen wants ADDRESS:PORT (IPv4), not '%s'", options->listen);
        rc = -EINVAL;
    }
    if (rc == 0) {
        self->daemon = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL,
            NULL, on_request, self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
            MHD_OPTION_CONNECTION_LIMIT, self->options.max_connections,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            self, MHD_OPTION_END);
        if (!self->daemon) {
            snprintf(err, err_len, "cannot listen on %s", options->listen);
            rc = -EADDRINUSE;
        }
    }
    if (rc == 0) {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
        self->port = info ? info->port : 0;
        *ret = self;
        return 0;
    }
    gateway_destroy(&self);
    return rc;
}

uint16_t gateway_port(const gateway_t *self)
{
    return self->port;
}

void gateway_destroy(gateway_t **self)
{
    if (!self || !*self)
        return;
    gateway_t *g = *self;
    atomic_store(&g->stopping, true);
    if (g->daemon)
        MHD_stop_daemon(g->daemon);
    board_destroy(&g->board);
    for (size_t i = 0; i < g->intake_count; i++)
        pool_close(&g->intakes[i].pool);
    if (g->has_audit)
        pool_close(&g->audit);
    free(g->intakes);
    if (g->zmq)
        zmq_ctx_term(g->zmq);
    apikeys_destroy(&g->apikeys);
    catalog_destroy(&g->catalog);
    config_destroy(&g->config);
    free(g);
    *self = NULL;
}

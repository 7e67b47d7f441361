/* screen: the big screen's page, its live feed and its KPIs; see screen.h.
 *
 * The feed: each /screen/events connection has its own follower (the
 * clone pattern of follower.h) from the seq the page asks for, so a page
 * that reconnects (EventSource sends Last-Event-ID) gets every record after
 * the last one it saw, from the audit's replay and then live, with no gap
 * and nothing twice. The connection's thread blocks in the follower (at
 * most a second at a time, so the gateway can stop) and writes a comment
 * line every 10 s of silence so proxies keep the connection.
 */
#include "screen.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "follower.h"
#include "gateway_private.h"
#include "words.h"

#define STREAM_BATCH 256
#define STREAM_BUFFER (256 * 1024)
#define KEEPALIVE_S 10
#define FILE_MAX (1024 * 1024)

typedef struct stream {
    gateway_t *gateway;
    follower_t *follower;
    uint64_t next; /* the seq the page gets next */
    char *text;    /* formatted, not yet written */
    size_t len, off;
    time_t last_write;
    bool started;
} stream_t;

/* ---- one record as the page sees it ---------------------------------------- */

static void add_word(json_t *o, const char *key, const ProtobufCEnumDescriptor *d, int value)
{
    char word[WORDS_SIZE];
    if (words_name(d, value, word, sizeof(word)) == 0)
        json_object_set_new(o, key, json_string(word));
}

static json_t *record_json(const Dispatch__AuditRecord *record)
{
    const Dispatch__Event *e = record->event;
    const char *name = "unknown";
    if (e) {
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field(&dispatch__event__descriptor, e->body_case);
        if (field)
            name = field->name;
    }
    json_t *o = json_pack("{s:I,s:s,s:I}", "seq", (json_int_t)record->seq, "event", name,
                          "recorded_at", (json_int_t)record->recorded_at);
    if (!o || !e)
        return o;
    json_object_set_new(o, "ticket", json_string(e->ticket_id ? e->ticket_id : ""));
    json_object_set_new(o, "district", json_string(e->district ? e->district : ""));
    json_object_set_new(o, "origin", json_string(e->origin ? e->origin : ""));
    json_object_set_new(o, "at", json_integer(e->at));
    if (e->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED && e->ticket_registered &&
        e->ticket_registered->ticket) {
        const Dispatch__Ticket *t = e->ticket_registered->ticket;
        add_word(o, "channel", &dispatch__channel__descriptor, t->channel);
        add_word(o, "kind", &dispatch__kind__descriptor, t->kind);
        add_word(o, "urgency", &dispatch__urgency__descriptor, t->urgency);
        add_word(o, "state", &dispatch__ticket_state__descriptor, t->state);
        json_object_set_new(o, "category", json_string(t->category ? t->category : ""));
        json_object_set_new(o, "area", json_string(t->area ? t->area : ""));
        json_object_set_new(o, "registered_at", json_integer(t->registered_at));
        if (t->location && t->location->point) {
            json_object_set_new(o, "lat", json_real(t->location->point->lat_e6 / 1e6));
            json_object_set_new(o, "lon", json_real(t->location->point->lon_e6 / 1e6));
        }
    } else if (e->body_case == DISPATCH__EVENT__BODY_TICKET_DISPATCHED && e->ticket_dispatched) {
        const Dispatch__TicketDispatched *d = e->ticket_dispatched;
        json_object_set_new(o, "unit", json_string(d->unit_id ? d->unit_id : ""));
        if (d->deadline_handle)
            json_object_set_new(o, "deadline_handle", json_integer(d->deadline_handle));
    }
    return o;
}

/* ---- the stream ------------------------------------------------------------ */

static int append(stream_t *s, const char *text, size_t len)
{
    if (s->off == s->len)
        s->off = s->len = 0;
    char *bigger = realloc(s->text, s->len + len + 1);
    if (!bigger)
        return -ENOMEM;
    s->text = bigger;
    memcpy(s->text + s->len, text, len);
    s->len += len;
    return 0;
}

static int append_record(stream_t *s, const Dispatch__AuditRecord *record)
{
    json_t *o = record_json(record);
    char *data = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    if (!data)
        return -ENOMEM;
    char head[64];
    int n = snprintf(head, sizeof(head), "id: %" PRIu64 "\nevent: record\ndata: ", record->seq);
    int rc = append(s, head, (size_t)n);
    if (rc == 0)
        rc = append(s, data, strlen(data));
    if (rc == 0)
        rc = append(s, "\n\n", 2);
    free(data);
    s->next = record->seq + 1;
    return rc;
}

/* Fills s->text: records (up to STREAM_BATCH), or a keepalive, or nothing
 * after about a second. */
static int stream_fill(stream_t *s)
{
    gateway_t *g = s->gateway;
    if (!s->started) {
        s->started = true;
        s->last_write = time(NULL);
        return append(s, "retry: 1000\n\n", 13);
    }
    if (!s->follower) {
        follower_options_t options = {
            .from_seq = s->next,
            .rcvhwm = 100000,
            .call_timeout_ms = 2000,
            .curve = g->audit.has_curve ? &g->audit.curve : NULL,
        };
        if (follower_new(g->zmq, g->audit_publish, g->audit.url, &options, &s->follower) < 0)
            return -EAGAIN;
    }
    const Dispatch__AuditRecord *record;
    int rc = follower_next(s->follower, 1000, &record);
    for (size_t n = 0; rc == 0; n++) {
        rc = append_record(s, record);
        if (rc < 0 || n + 1 == STREAM_BATCH || s->len > STREAM_BUFFER)
            break;
        rc = follower_next(s->follower, 0, &record);
    }
    if (rc == -ETIMEDOUT && s->len == s->off && time(NULL) - s->last_write >= KEEPALIVE_S)
        rc = append(s, ": keepalive\n\n", 13);
    if (rc < 0 && rc != -ETIMEDOUT && rc != -ENOMEM) {
        /* Start over from the next seq the page wants. */
        follower_destroy(&s->follower);
        rc = 0;
    }
    return rc == -ETIMEDOUT ? 0 : rc;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *s = cls;
    if (atomic_load(&s->gateway->stopping))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (s->off == s->len && stream_fill(s) == -ENOMEM)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = s->len - s->off;
    if (n > max)
        n = max;
    memcpy(buf, s->text + s->off, n);
    s->off += n;
    if (n)
        s->last_write = time(NULL);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream_t *s = cls;
    follower_destroy(&s->follower);
    free(s->text);
    free(s);
}

static enum MHD_Result serve_events(gateway_t *self, struct MHD_Connection *connection,
                                    const gateway_params_t *params)
{
    if (!self->has_audit)
        return gateway_respond_error(connection, 501, "the topology has no audit to follow");
    uint64_t from = 1;
    const char *text = gateway_param(params, "from");
    const char *last = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Last-Event-ID");
    char *end;
    if (last && *last) {
        unsigned long long seq = strtoull(last, &end, 10);
        if (*end)
            return gateway_respond_error(connection, 400, "Last-Event-ID is not a seq");
        from = seq + 1;
    } else if (text && *text) {
        from = strtoull(text, &end, 10);
        if (*end || from == 0)
            return gateway_respond_error(connection, 400, "from must be a seq (1 or more)");
    }
    stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return gateway_respond_error(connection, 500, "out of memory");
    s->gateway = self;
    s->next = from;
    struct MHD_Response *response =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, s, stream_free);
    if (!response) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(response, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response(connection, 200, response);
    MHD_destroy_response(response);
    atomic_fetch_add(&self->screen_streams, 1);
    return rc;
}

/* ---- KPIs and the report, from audit ---------------------------------------- */

static json_t *kpi_row_json(const Dispatch__KpiRow *row)
{
    const Dispatch__KpiCounts *c = row->counts;
    const Dispatch__KpiRates *r = row->rates;
    json_t *counts =
        c ? json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "registered",
                      (json_int_t)c->registered, "dispatched", (json_int_t)c->dispatched,
                      "signed_for", (json_int_t)c->signed_for, "signed_in_time",
                      (json_int_t)c->signed_in_time, "returned", (json_int_t)c->returned,
                      "resolved", (json_int_t)c->resolved, "resolved_on_time",
                      (json_int_t)c->resolved_on_time, "resolved_solved",
                      (json_int_t)c->resolved_solved, "called_back", (json_int_t)c->called_back,
                      "satisfied", (json_int_t)c->satisfied, "unreachable",
                      (json_int_t)c->unreachable, "reopened", (json_int_t)c->reopened, "closed",
                      (json_int_t)c->closed, "overdue", (json_int_t)c->overdue)
          : json_object();
    json_t *rates = r ? json_pack("{s:f,s:f,s:f,s:f,s:f}", "response", r->response, "on_time",
                                  r->on_time, "resolution", r->resolution, "satisfaction",
                                  r->satisfaction, "reopen", r->reopen)
                      : json_object();
    return json_pack("{s:s,s:o,s:o}", "key", row->key ? row->key : "", "counts", counts, "rates",
                     rates);
}

static enum MHD_Result audit_query(gateway_t *self, struct MHD_Connection *connection,
                                   Dispatch__AuditQuery *query, Dispatch__AuditReply **ret)
{
    *ret = NULL;
    if (!self->has_audit)
        return gateway_respond_error(connection, 501, "the topology has no audit");
    int rc = gateway_pool_call(self, &self->audit, &query->base, &dispatch__audit_reply__descriptor,
                               (ProtobufCMessage **)ret);
    if (rc < 0)
        return gateway_respond_error(connection, rc == -ETIMEDOUT ? 503 : 502, "audit: %s",
                                     rc == -ETIMEDOUT ? "no answer in time" : strerror(-rc));
    if ((*ret)->error) {
        enum MHD_Result result = gateway_respond_error(
            connection, 400, "audit: %s", (*ret)->error->message ? (*ret)->error->message : "?");
        protobuf_c_message_free_unpacked(&(*ret)->base, NULL);
        *ret = NULL;
        return result;
    }
    return MHD_YES;
}

static enum MHD_Result serve_kpi(gateway_t *self, struct MHD_Connection *connection,
                                 const gateway_params_t *params)
{
    const char *by = gateway_param(params, "by");
    int dimension = DISPATCH__KPI_DIMENSION__KPI_DIMENSION_DISTRICT;
    if (by && *by && words_parse(&dispatch__kpi_dimension__descriptor, by, &dimension) < 0)
        return gateway_respond_error(connection, 400, "by: district, unit, category or city");
    const char *at = gateway_param(params, "at");
    const char *after = gateway_param(params, "after");
    Dispatch__KpiQuery kpi = DISPATCH__KPI_QUERY__INIT;
    kpi.by = (Dispatch__KpiDimension)dimension;
    kpi.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY;
    kpi.at = (char *)(at ? at : "");
    kpi.after_key = (char *)(after ? after : "");
    kpi.limit = 1000;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_KPI;
    query.kpi = &kpi;
    Dispatch__AuditReply *reply;
    enum MHD_Result rc = audit_query(self, connection, &query, &reply);
    if (!reply)
        return rc;
    if (reply->body_case != DISPATCH__AUDIT_REPLY__BODY_KPI || !reply->kpi) {
        protobuf_c_message_free_unpacked(&reply->base, NULL);
        return gateway_respond_error(connection, 502, "audit answered with no KPIs");
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < reply->kpi->n_rows; i++)
        json_array_append_new(rows, kpi_row_json(reply->kpi->rows[i]));
    json_t *body = json_pack("{s:s,s:o,s:b,s:I}", "period_key",
                             reply->kpi->period_key ? reply->kpi->period_key : "", "rows", rows,
                             "more", reply->kpi->more, "seq",
                             (json_int_t)(self->board ? board_next_seq(self->board) - 1 : 0));
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return gateway_respond_json(connection, 200, body);
}

static enum MHD_Result serve_report(gateway_t *self, struct MHD_Connection *connection,
                                    const gateway_params_t *params)
{
    const char *at = gateway_param(params, "at");
    Dispatch__ReportQuery report = DISPATCH__REPORT_QUERY__INIT;
    report.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY;
    report.at = (char *)(at ? at : "");
    report.top = 10;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_REPORT;
    query.report = &report;
    Dispatch__AuditReply *reply;
    enum MHD_Result rc = audit_query(self, connection, &query, &reply);
    if (!reply)
        return rc;
    if (reply->body_case != DISPATCH__AUDIT_REPLY__BODY_REPORT || !reply->report) {
        protobuf_c_message_free_unpacked(&reply->base, NULL);
        return gateway_respond_error(connection, 502, "audit answered with no report");
    }
    const Dispatch__SpecialReport *r = reply->report;
    json_t *categories = json_array();
    for (size_t i = 0; i < r->n_categories; i++) {
        const Dispatch__CategoryShare *c = r->categories[i];
        json_array_append_new(categories, json_pack("{s:s,s:i,s:I,s:f}", "category", c->category,
                                                    "rank", (int)c->rank, "count",
                                                    (json_int_t)c->count, "share", c->share));
    }
    json_t *body = json_pack("{s:s,s:I,s:o}", "period_key", r->period_key ? r->period_key : "",
                             "total", (json_int_t)r->total, "categories", categories);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return gateway_respond_json(connection, 200, body);
}

static enum MHD_Result serve_config(gateway_t *self, struct MHD_Connection *connection)
{
    json_t *districts = json_array();
    for (size_t i = 0; i < config_district_count(self->config); i++) {
        const config_district_t *d = config_district_at(self->config, i);
        json_array_append_new(districts, json_pack("{s:s,s:s}", "id", d->id, "name", d->name));
    }
    json_t *services = json_object();
    for (size_t i = 0; i < catalog_service_count(self->catalog); i++) {
        const catalog_service_t *s = catalog_service_at(self->catalog, i);
        json_object_set_new(services, s->code, json_string(s->name));
    }
    return gateway_respond_json(
        connection, 200,
        json_pack("{s:s,s:s,s:o,s:o,s:I}", "city", config_city(self->config), "timezone",
                  config_timezone(self->config), "districts", districts, "services", services,
                  "day_first_seq",
                  (json_int_t)(self->board ? board_day_first_seq(self->board) : 0)));
}

/* ---- the open tickets, for a page that starts from today's first record ---- */

static bool open_ticket(void *ctx, const board_ticket_t *t)
{
    json_t *list = ctx;
    if (gateway_ticket_closed(t->state))
        return true;
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:b,s:b}", "id", t->id, "district", t->district,
                          "category", t->category, "registered_at", (json_int_t)t->registered_at,
                          "overdue", t->overdue, "registered", t->registered);
    if (!o)
        return true;
    add_word(o, "state", &dispatch__ticket_state__descriptor, t->state);
    add_word(o, "urgency", &dispatch__urgency__descriptor, t->urgency);
    if (t->has_point) {
        json_object_set_new(o, "lat", json_real(t->lat_e6 / 1e6));
        json_object_set_new(o, "lon", json_real(t->lon_e6 / 1e6));
    }
    json_array_append_new(list, o);
    return true;
}

/* {"seq": S, "tickets": [...]}: the open tickets as records up to S left them. */
static enum MHD_Result serve_open(gateway_t *self, struct MHD_Connection *connection)
{
    if (!self->board)
        return gateway_respond_error(connection, 501, "the topology has no audit to follow");
    json_t *list = json_array();
    uint64_t next = board_each(self->board, open_ticket, list);
    return gateway_respond_json(
        connection, 200, json_pack("{s:I,s:o}", "seq", (json_int_t)(next - 1), "tickets", list));
}

/* ---- files ----------------------------------------------------------------- */

static enum MHD_Result serve_file(gateway_t *self, struct MHD_Connection *connection,
                                  const char *name, const char *type)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", self->web_dir, name);
    FILE *file = fopen(path, "re");
    if (!file)
        return gateway_respond_error(connection, 404, "%s is not installed", name);
    char *data = malloc(FILE_MAX);
    size_t len = data ? fread(data, 1, FILE_MAX, file) : 0;
    fclose(file);
    if (!data)
        return gateway_respond_error(connection, 500, "out of memory");
    enum MHD_Result rc = gateway_respond(connection, 200, type, data, len);
    free(data);
    return rc;
}

enum MHD_Result screen_serve(gateway_t *self, struct MHD_Connection *connection, const char *url,
                             const gateway_params_t *params)
{
    if (strcmp(url, "/") == 0 || strcmp(url, "/screen") == 0 || strcmp(url, "/screen/") == 0)
        return serve_file(self, connection, "screen.html", "text/html; charset=utf-8");
    if (strcmp(url, "/screen/screen.js") == 0)
        return serve_file(self, connection, "screen.js", "text/javascript; charset=utf-8");
    if (strcmp(url, "/screen/screen.css") == 0)
        return serve_file(self, connection, "screen.css", "text/css; charset=utf-8");
    if (strcmp(url, "/screen/events") == 0)
        return serve_events(self, connection, params);
    if (strcmp(url, "/screen/kpi.json") == 0)
        return serve_kpi(self, connection, params);
    if (strcmp(url, "/screen/report.json") == 0)
        return serve_report(self, connection, params);
    if (strcmp(url, "/screen/config.json") == 0)
        return serve_config(self, connection);
    if (strcmp(url, "/screen/open.json") == 0)
        return serve_open(self, connection);
    return gateway_respond_error(connection, 404, "no such endpoint: %.200s", url);
}

/* metrics: GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * What is exported, by where it comes from:
 *   - each worker of the topology, probed at every scrape over its own
 *     client endpoint with the gateway's key (intake: a GetTicket, audit: a
 *     Replay of one record, router and escalation: an admin request, each
 *     answered with a reply or a refusal): dispatch_worker_up and
 *     dispatch_worker_probe_seconds, labels worker, kind, district;
 *   - the audit log as the board folded it: events recorded per emitting
 *     worker and event (dispatch_events_total{worker,event}), tickets by
 *     district and state, open overdue and open urgent tickets per
 *     district, tickets registered per district and channel, the log's
 *     last seq;
 *   - the gateway itself: HTTP requests and their handling time per route
 *     (a histogram), Open311 submits by outcome, failed upstream calls.
 * Names follow Prometheus's guide: a dispatch_ prefix, _total for
 * counters, _seconds for durations, base units.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway_private.h"
#include "words.h"

#define PROBE_TIMEOUT_MS 1000

static const char *const route_names[GATEWAY_ROUTE_COUNT] = {
    [GATEWAY_ROUTE_SERVICES] = "services", [GATEWAY_ROUTE_SERVICE] = "service",
    [GATEWAY_ROUTE_REQUESTS] = "requests", [GATEWAY_ROUTE_REQUEST] = "request",
    [GATEWAY_ROUTE_METRICS] = "metrics",   [GATEWAY_ROUTE_SCREEN] = "screen",
    [GATEWAY_ROUTE_OTHER] = "other",
};

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* One request and its reply on a fresh client: 0 when any reply came. */
static int probe(gateway_t *self, const config_worker_t *w, double *seconds)
{
    auth_client_t keys;
    const auth_client_t *curve = NULL;
    if (config_security(self->config) == CONFIG_SECURITY_CURVE) {
        int rc = auth_client_load(config_keys_dir(self->config), self->name, w->name, &keys);
        if (rc < 0)
            return rc;
        curve = &keys;
    }
    client_t *client;
    int rc = client_new(self->zmq, w->request, PROBE_TIMEOUT_MS, curve, &client);
    if (rc < 0)
        return rc;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    ProtobufCMessage *reply = NULL;
    if (strcmp(w->kind, "intake") == 0) {
        Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
        get.ticket_id = "metrics-probe";
        Dispatch__Request request = DISPATCH__REQUEST__INIT;
        request.actor = self->name;
        request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
        request.get_ticket = &get;
        rc = client_call(client, &request.base, &dispatch__reply__descriptor, &reply);
    } else if (strcmp(w->kind, "audit") == 0) {
        Dispatch__ReplayRequest replay = DISPATCH__REPLAY_REQUEST__INIT;
        replay.from_seq = 1;
        replay.limit = 1;
        Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
        query.body_case = DISPATCH__AUDIT_QUERY__BODY_REPLAY;
        query.replay = &replay;
        rc = client_call(client, &query.base, &dispatch__audit_reply__descriptor, &reply);
    } else {
        /* No request in it: refused (MISSING_FIELD), which is an answer. */
        Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
        request.actor_id = self->name;
        rc = client_call(client, &request.base, &dispatch__admin_reply__descriptor, &reply);
    }
    *seconds = seconds_since(&start);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    client_destroy(&client);
    return rc;
}

static void probe_workers(gateway_t *self, FILE *out)
{
    fputs("# HELP dispatch_worker_up Whether the worker answered the gateway's probe on its "
          "client endpoint.\n# TYPE dispatch_worker_up gauge\n",
          out);
    size_t n = config_worker_count(self->config);
    double *seconds = calloc(n ? n : 1, sizeof(*seconds));
    int *rcs = calloc(n ? n : 1, sizeof(*rcs));
    for (size_t i = 0; i < n && seconds && rcs; i++) {
        const config_worker_t *w = config_worker_at(self->config, i);
        rcs[i] = w->request ? probe(self, w, &seconds[i]) : -ENOENT;
        fprintf(out, "dispatch_worker_up{worker=\"%s\",kind=\"%s\",district=\"%s\"} %d\n", w->name,
                w->kind, w->district ? w->district : "", rcs[i] == 0);
    }
    fputs("# HELP dispatch_worker_probe_seconds How long the worker took to answer the probe.\n"
          "# TYPE dispatch_worker_probe_seconds gauge\n",
          out);
    for (size_t i = 0; i < n && seconds && rcs; i++) {
        const config_worker_t *w = config_worker_at(self->config, i);
        if (rcs[i] == 0)
            fprintf(out, "dispatch_worker_probe_seconds{worker=\"%s\"} %.6f\n", w->name,
                    seconds[i]);
    }
    free(seconds);
    free(rcs);
}

/* ---- from the board ------------------------------------------------------ */

#define STATES 11
#define CHANNELS 8
#define DISTRICTS_MAX 64

typedef struct tally {
    const config_t *config;
    uint64_t by_state[DISTRICTS_MAX + 1][STATES];
    uint64_t by_channel[DISTRICTS_MAX + 1][CHANNELS];
    uint64_t overdue[DISTRICTS_MAX + 1], urgent[DISTRICTS_MAX + 1];
} tally_t;

static size_t district_index(const config_t *config, const char *district)
{
    size_t n = config_district_count(config);
    for (size_t i = 0; i < n && i < DISTRICTS_MAX; i++)
        if (strcmp(config_district_at(config, i)->id, district) == 0)
            return i;
    return DISTRICTS_MAX; /* "_": not a district of the topology */
}

static bool tally_ticket(void *ctx, const board_ticket_t *t)
{
    tally_t *tally = ctx;
    size_t d = district_index(tally->config, t->district);
    if ((unsigned)t->state < STATES)
        tally->by_state[d][t->state]++;
    if ((unsigned)t->channel < CHANNELS)
        tally->by_channel[d][t->channel]++;
    bool open = t->state != DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED &&
                t->state != DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED &&
                t->state != DISPATCH__TICKET_STATE__TICKET_STATE_MERGED &&
                t->state != DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED;
    if (open && t->overdue)
        tally->overdue[d]++;
    if (open && t->urgency == DISPATCH__URGENCY__URGENCY_URGENT)
        tally->urgent[d]++;
    return true;
}

static const char *district_label(const config_t *config, size_t d)
{
    return d < config_district_count(config) ? config_district_at(config, d)->id : "_";
}

static void event_count(void *ctx, const char *origin, Dispatch__Event__BodyCase body,
                        uint64_t count)
{
    FILE *out = ctx;
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field(&dispatch__event__descriptor, (unsigned)body);
    fprintf(out, "dispatch_events_total{worker=\"%s\",event=\"%s\"} %" PRIu64 "\n", origin,
            field ? field->name : "unknown", count);
}

static void board_figures(gateway_t *self, FILE *out)
{
    board_stats_t stats;
    board_stats(self->board, &stats);
    fprintf(out,
            "# HELP dispatch_audit_records_total Audit records the gateway has read (its "
            "table is whole up to here).\n# TYPE dispatch_audit_records_total counter\n"
            "dispatch_audit_records_total %" PRIu64 "\n"
            "# HELP dispatch_audit_last_seq The seq of the last audit record read.\n"
            "# TYPE dispatch_audit_last_seq gauge\ndispatch_audit_last_seq %" PRIu64 "\n"
            "# HELP dispatch_audit_last_record_timestamp_seconds When audit recorded it.\n"
            "# TYPE dispatch_audit_last_record_timestamp_seconds gauge\n"
            "dispatch_audit_last_record_timestamp_seconds %.3f\n",
            stats.records, board_next_seq(self->board) - 1, (double)stats.last_record_at / 1e3);
    fputs("# HELP dispatch_events_total Events recorded by audit, by the worker that emitted "
          "them.\n# TYPE dispatch_events_total counter\n",
          out);
    board_each_event_count(self->board, event_count, out);

    tally_t *tally = calloc(1, sizeof(*tally));
    if (!tally)
        return;
    tally->config = self->config;
    board_each(self->board, tally_ticket, tally);
    size_t districts = config_district_count(self->config);
    fputs("# HELP dispatch_tickets Tickets by district and current state.\n"
          "# TYPE dispatch_tickets gauge\n",
          out);
    for (size_t d = 0; d <= DISTRICTS_MAX; d++) {
        if (d >= districts && d != DISTRICTS_MAX)
            continue;
        for (unsigned s = 1; s < STATES; s++) {
            char word[WORDS_SIZE];
            if (words_name(&dispatch__ticket_state__descriptor, (int)s, word, sizeof(word)) < 0)
                continue;
            if (d == DISTRICTS_MAX && !tally->by_state[d][s])
                continue;
            fprintf(out, "dispatch_tickets{district=\"%s\",state=\"%s\"} %" PRIu64 "\n",
                    district_label(self->config, d), word, tally->by_state[d][s]);
        }
    }
    fputs("# HELP dispatch_tickets_registered_total Tickets registered, by district and "
          "channel.\n# TYPE dispatch_tickets_registered_total counter\n",
          out);
    for (size_t d = 0; d <= DISTRICTS_MAX; d++)
        for (unsigned c = 1; c < CHANNELS; c++) {
            char word[WORDS_SIZE];
            if (!tally->by_channel[d][c] ||
                words_name(&dispatch__channel__descriptor, (int)c, word, sizeof(word)) < 0)
                continue;
            fprintf(out,
                    "dispatch_tickets_registered_total{district=\"%s\",channel=\"%s\"} %" PRIu64
                    "\n",
                    district_label(self->config, d), word, tally->by_channel[d][c]);
        }
    fputs("# HELP dispatch_tickets_overdue Open tickets past a deadline, by district.\n"
          "# TYPE dispatch_tickets_overdue gauge\n",
          out);
    for (size_t d = 0; d < districts && d < DISTRICTS_MAX; d++)
        fprintf(out, "dispatch_tickets_overdue{district=\"%s\"} %" PRIu64 "\n",
                district_label(self->config, d), tally->overdue[d]);
    fputs("# HELP dispatch_tickets_urgent_open Open urgent tickets, by district.\n"
          "# TYPE dispatch_tickets_urgent_open gauge\n",
          out);
    for (size_t d = 0; d < districts && d < DISTRICTS_MAX; d++)
        fprintf(out, "dispatch_tickets_urgent_open{district=\"%s\"} %" PRIu64 "\n",
                district_label(self->config, d), tally->urgent[d]);
    free(tally);
}

/* ---- the gateway's own --------------------------------------------------- */

static void gateway_figures(gateway_t *self, FILE *out)
{
    fputs("# HELP dispatch_gateway_http_requests_total HTTP requests answered, by route and "
          "status class.\n# TYPE dispatch_gateway_http_requests_total counter\n",
          out);
    for (size_t r = 0; r < GATEWAY_ROUTE_COUNT; r++)
        for (unsigned c = 1; c < 6; c++)
            fprintf(out,
                    "dispatch_gateway_http_requests_total{route=\"%s\",code=\"%uxx\"} %" PRIu64
                    "\n",
                    route_names[r], c, (uint64_t)atomic_load(&self->routes[r].by_class[c]));
    fputs("# HELP dispatch_gateway_http_request_duration_seconds Time to handle a request, by "
          "route.\n# TYPE dispatch_gateway_http_request_duration_seconds histogram\n",
          out);
    for (size_t r = 0; r < GATEWAY_ROUTE_COUNT; r++) {
        gateway_route_stats_t *stats = &self->routes[r];
        uint64_t cumulative = 0;
        for (size_t b = 0; b < GATEWAY_BUCKETS; b++) {
            cumulative += atomic_load(&stats->buckets[b]);
            fprintf(out,
                    "dispatch_gateway_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                    "%" PRIu64 "\n",
                    route_names[r], gateway_buckets[b], cumulative);
        }
        cumulative += atomic_load(&stats->buckets[GATEWAY_BUCKETS]);
        fprintf(out,
                "dispatch_gateway_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                "%" PRIu64 "\n"
                "dispatch_gateway_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                "dispatch_gateway_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
                route_names[r], cumulative, route_names[r],
                (double)atomic_load(&stats->micros) / 1e6, route_names[r], cumulative);
    }
    fprintf(out,
            "# HELP dispatch_gateway_submits_total Open311 posts by outcome.\n"
            "# TYPE dispatch_gateway_submits_total counter\n"
            "dispatch_gateway_submits_total{result=\"created\"} %" PRIu64 "\n"
            "dispatch_gateway_submits_total{result=\"replayed\"} %" PRIu64 "\n"
            "dispatch_gateway_submits_total{result=\"refused\"} %" PRIu64 "\n"
            "# HELP dispatch_gateway_upstream_errors_total Calls to intake or audit that got no "
            "answer.\n# TYPE dispatch_gateway_upstream_errors_total counter\n"
            "dispatch_gateway_upstream_errors_total %" PRIu64 "\n"
            "# HELP dispatch_gateway_screen_streams_total Live screen streams opened.\n"
            "# TYPE dispatch_gateway_screen_streams_total counter\n"
            "dispatch_gateway_screen_streams_total %" PRIu64 "\n",
            (uint64_t)atomic_load(&self->submits), (uint64_t)atomic_load(&self->submit_retries),
            (uint64_t)atomic_load(&self->refusals), (uint64_t)atomic_load(&self->upstream_errors),
            (uint64_t)atomic_load(&self->screen_streams));
}

enum MHD_Result metrics_serve(gateway_t *self, struct MHD_Connection *connection)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return gateway_respond_error(connection, 500, "out of memory");
    probe_workers(self, out);
    if (self->board)
        board_figures(self, out);
    gateway_figures(self, out);
    fclose(out);
    enum MHD_Result rc =
        gateway_respond(connection, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    return rc;
}

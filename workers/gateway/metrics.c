/* metrics: GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * What is exported, by where it comes from:
 *   - each worker of the topology, asked at every scrape over its own
 *     client endpoint with the gateway's key (StatsQuery: Request.stats at
 *     intake, AuditQuery.stats at audit, AdminRequest.stats with the
 *     auditor role at router and escalation): whether and how fast it
 *     answered, its store's commits and size, whether its store's batches
 *     fail (since when, how many failed), its bus's counters (applied,
 *     duplicates, dead letters, ...) and each link's state (up, last heard,
 *     outbox, lag, diverged, resends, reconnects), labels worker, district,
 *     peer, direction;
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway_private.h"
#include "words.h"

#define PROBE_TIMEOUT_MS 2000

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

/* StatsQuery on a fresh client of the worker's client endpoint: fills
 * result->stats and seconds when it answers; *reply is what stats points
 * into (the caller frees it; NULL when there is none). */
static void probe(gateway_t *self, metrics_worker_t *result, ProtobufCMessage **reply_ret)
{
    const config_worker_t *w = result->worker;
    auth_client_t keys;
    const auth_client_t *curve = NULL;
    if (config_security(self->config) == CONFIG_SECURITY_CURVE) {
        if (auth_client_load(config_keys_dir(self->config), self->name, w->name, &keys) < 0)
            return;
        curve = &keys;
    }
    client_t *client;
    if (client_new(self->zmq, w->request, PROBE_TIMEOUT_MS, curve, &client) < 0)
        return;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    Dispatch__StatsQuery stats = DISPATCH__STATS_QUERY__INIT;
    if (strcmp(w->kind, "intake") == 0) {
        Dispatch__Request request = DISPATCH__REQUEST__INIT;
        request.body_case = DISPATCH__REQUEST__BODY_STATS;
        request.stats = &stats;
        client_call(client, &request.base, &dispatch__reply__descriptor, reply_ret);
        const Dispatch__Reply *reply = (const Dispatch__Reply *)*reply_ret;
        if (reply && reply->body_case == DISPATCH__REPLY__BODY_STATS)
            result->stats = reply->stats;
    } else if (strcmp(w->kind, "audit") == 0) {
        Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
        query.body_case = DISPATCH__AUDIT_QUERY__BODY_STATS;
        query.stats = &stats;
        client_call(client, &query.base, &dispatch__audit_reply__descriptor, reply_ret);
        const Dispatch__AuditReply *reply = (const Dispatch__AuditReply *)*reply_ret;
        if (reply && reply->body_case == DISPATCH__AUDIT_REPLY__BODY_STATS)
            result->stats = reply->stats;
    } else {
        Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
        request.actor_id = self->name;
        request.role = DISPATCH__ROLE__ROLE_AUDITOR;
        request.body_case = DISPATCH__ADMIN_REQUEST__BODY_STATS;
        request.stats = &stats;
        client_call(client, &request.base, &dispatch__admin_reply__descriptor, reply_ret);
        const Dispatch__AdminReply *reply = (const Dispatch__AdminReply *)*reply_ret;
        if (reply && reply->body_case == DISPATCH__ADMIN_REPLY__BODY_STATS)
            result->stats = reply->stats;
    }
    result->seconds = seconds_since(&start);
    client_destroy(&client);
}

typedef struct counter_field {
    const char *name, *help, *type;
    size_t offset; /* of a uint64_t in Dispatch__WorkerStats */
    int storage;   /* 0, or 1 + storage_value()'s which: a figure of WorkerStats.storage */
} counter_field_t;

/* Whether the worker's store fails its batches (StorageState): a gauge to
 * alert on, the count that says how often, and since when, so that a
 * dashboard shows how long nothing was applied. */
static double storage_value(const Dispatch__StorageState *s, int which)
{
    switch (which) {
    case 0:
        return s->failing;
    case 1:
        return (double)s->failed_batches;
    default:
        return s->failing ? (double)s->failing_since / 1e3 : 0;
    }
}

/* Where a figure is: a uint64_t field of WorkerStats, or one of its
 * storage (storage_value()'s which). */
#define STAT(field) offsetof(Dispatch__WorkerStats, field), 0
#define STORAGE(which) 0, 1 + (which)
static const counter_field_t worker_fields[] = {
    {"dispatch_store_commits_total",
     "Write transactions committed to the worker's store since it was created.", "counter",
     STAT(commits)},
    {"dispatch_store_used_bytes", "Bytes of the worker's LMDB map in use.", "gauge",
     STAT(store_used_bytes)},
    {"dispatch_store_map_bytes", "Size of the worker's LMDB map.", "gauge", STAT(store_map_bytes)},
    {"dispatch_bus_applied_total", "Bus messages applied since the worker started.", "counter",
     STAT(applied)},
    {"dispatch_bus_duplicates_total", "Bus messages dropped as already applied.", "counter",
     STAT(duplicates)},
    {"dispatch_bus_gaps_total", "Bus messages dropped as ahead of a lost one.", "counter",
     STAT(gaps)},
    {"dispatch_bus_dead_letters_total", "Bus messages the worker refused (kept as dead letters).",
     "counter", STAT(rejected)},
    {"dispatch_bus_dead_letters_dropped_total", "Dead letters dropped to stay in bounds.",
     "counter", STAT(dead_dropped)},
    {"dispatch_bus_refused_total", "Bus messages from an incarnation not accepted.", "counter",
     STAT(refused)},
    {"dispatch_bus_bad_frames_total", "Undecodable bus frames dropped.", "counter",
     STAT(bad_frames)},
    {"dispatch_bus_forged_total", "Bus frames whose key was not the named sender's.", "counter",
     STAT(forged)},
    {"dispatch_endpoint_malformed_total",
     "Client requests badly framed or not decodable, on the worker's client endpoints.", "counter",
     STAT(malformed)},
    {"dispatch_endpoint_connections_cut_total",
     "Client connections cut for sending 64 malformed requests within a second.", "counter",
     STAT(connections_cut)},
    {"dispatch_endpoint_dropped_after_cut_total", "Messages of cut connections dropped unread.",
     "counter", STAT(dropped_after_cut)},
    {"dispatch_store_failing",
     "Whether the worker's store fails its write batches (a full or failing disk): it applies "
     "nothing meanwhile.",
     "gauge", STORAGE(0)},
    {"dispatch_store_failed_batches_total",
     "Write batches of the worker's store that failed since the worker started.", "counter",
     STORAGE(1)},
    {"dispatch_store_failing_since_seconds",
     "Unix time of the first failed batch of the episode of failures going on; 0 when not "
     "failing.",
     "gauge", STORAGE(2)},
};

typedef struct link_field {
    const char *name, *help, *type;
    int which;
} link_field_t;

static const link_field_t link_fields[] = {
    {"dispatch_link_up", "Whether the peer was heard within dead_after_ms.", "gauge", 0},
    {"dispatch_link_last_heard_seconds", "Time since the peer was last heard (ack or message).",
     "gauge", 1},
    {"dispatch_link_outbox_messages", "Messages in the outbox of an outgoing link.", "gauge", 2},
    {"dispatch_link_lag_messages", "Seqs committed on an outgoing link, not yet acknowledged.",
     "gauge", 3},
    {"dispatch_link_diverged", "Whether the link is diverged (nothing applied or deleted).",
     "gauge", 4},
    {"dispatch_link_resends_total", "Messages sent again on an outgoing link.", "counter", 5},
    {"dispatch_link_reconnects_total", "Sockets rebuilt after silence on an outgoing link.",
     "counter", 6},
};

static double link_value(const Dispatch__LinkState *l, int which)
{
    switch (which) {
    case 0:
        return l->up;
    case 1:
        return (double)l->last_heard_age / 1e3;
    case 2:
        return (double)l->outbox;
    case 3:
        return (double)l->lag;
    case 4:
        return l->divergence != DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_UNSPECIFIED;
    case 5:
        return (double)l->resends;
    default:
        return (double)l->reconnects;
    }
}

void metrics_workers(FILE *out, const metrics_worker_t *workers, size_t n)
{
    fputs("# HELP dispatch_worker_up Whether the worker answered the gateway's StatsQuery on "
          "its client endpoint.\n# TYPE dispatch_worker_up gauge\n",
          out);
    for (size_t i = 0; i < n; i++) {
        const config_worker_t *w = workers[i].worker;
        fprintf(out, "dispatch_worker_up{worker=\"%s\",kind=\"%s\",district=\"%s\"} %d\n", w->name,
                w->kind, w->district ? w->district : "", workers[i].stats != NULL);
    }
    fputs("# HELP dispatch_worker_probe_seconds How long the worker took to answer.\n"
          "# TYPE dispatch_worker_probe_seconds gauge\n",
          out);
    for (size_t i = 0; i < n; i++)
        if (workers[i].stats)
            fprintf(out, "dispatch_worker_probe_seconds{worker=\"%s\"} %.6f\n",
                    workers[i].worker->name, workers[i].seconds);
    for (size_t f = 0; f < sizeof(worker_fields) / sizeof(worker_fields[0]); f++) {
        const counter_field_t *field = &worker_fields[f];
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", field->name, field->help, field->name,
                field->type);
        for (size_t i = 0; i < n; i++) {
            const config_worker_t *w = workers[i].worker;
            const Dispatch__WorkerStats *stats = workers[i].stats;
            if (!stats || (field->storage && !stats->storage))
                continue; /* no answer, or from a worker older than WorkerStats.storage */
            const char *district = w->district ? w->district : "";
            if (field->storage) {
                fprintf(out, "%s{worker=\"%s\",district=\"%s\"} %.15g\n", field->name, w->name,
                        district, storage_value(stats->storage, field->storage - 1));
                continue;
            }
            uint64_t value;
            memcpy(&value, (const char *)stats + field->offset, sizeof(value));
            fprintf(out, "%s{worker=\"%s\",district=\"%s\"} %" PRIu64 "\n", field->name, w->name,
                    district, value);
        }
    }
    for (size_t f = 0; f < sizeof(link_fields) / sizeof(link_fields[0]); f++) {
        const link_field_t *field = &link_fields[f];
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", field->name, field->help, field->name,
                field->type);
        for (size_t i = 0; i < n; i++) {
            const Dispatch__WorkerStats *stats = workers[i].stats;
            for (size_t k = 0; stats && k < stats->n_links; k++) {
                const Dispatch__LinkState *l = stats->links[k];
                bool outgoing = l->direction == DISPATCH__LINK_DIRECTION__LINK_DIRECTION_OUTGOING;
                if (!outgoing && field->which >= 2 && field->which != 4)
                    continue; /* outbox, lag, resends, reconnects: outgoing only */
                fprintf(out, "%s{worker=\"%s\",peer=\"%s\",direction=\"%s\"} %g\n", field->name,
                        workers[i].worker->name, l->peer, outgoing ? "outgoing" : "incoming",
                        link_value(l, field->which));
            }
        }
    }
}

static void probe_workers(gateway_t *self, FILE *out)
{
    size_t n = config_worker_count(self->config);
    metrics_worker_t *workers = calloc(n ? n : 1, sizeof(*workers));
    ProtobufCMessage **replies = calloc(n ? n : 1, sizeof(*replies));
    for (size_t i = 0; workers && replies && i < n; i++) {
        workers[i].worker = config_worker_at(self->config, i);
        if (workers[i].worker->request)
            probe(self, &workers[i], &replies[i]);
    }
    if (workers && replies)
        metrics_workers(out, workers, n);
    for (size_t i = 0; replies && i < n; i++)
        if (replies[i])
            protobuf_c_message_free_unpacked(replies[i], NULL);
    free(replies);
    free(workers);
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

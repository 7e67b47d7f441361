/* audit_service: the worker loop: the stream (publish what committed), answer the
 * queries of the iteration, options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"
#include "clock.h"
#include "codec.h"
#include "log.h"

/* ---- the stream --------------------------------------------------------- */

int audit_stream_message(audit_t *self, MDB_txn *txn, uint64_t seq, char *topic, size_t topic_len,
                         void **buf, size_t *len)
{
    Dispatch__Audit__LogEntry *entry;
    int rc = trail_get(self->trail, txn, seq, &entry);
    if (rc < 0)
        return rc;
    Dispatch__AuditRecord *record;
    rc = stream_record_of(entry, &record);
    if (rc < 0)
        return rc;
    if (record->event)
        stream_topic(record->event, topic, topic_len);
    else
        snprintf(topic, topic_len, "_.unknown");
    rc = codec_encode(&record->base, buf, len);
    stream_record_free(record);
    return rc;
}

/* ---- the worker loop ----------------------------------------------------- */

/* Puts the committed records after the last one published on the stream. */
static int publish_committed(audit_t *self, MDB_txn *txn)
{
    if (!self->stream)
        return 0;
    trail_head_t head;
    int rc = trail_head(self->trail, txn, &head);
    for (uint64_t seq = self->published + 1; rc == 0 && seq <= head.seq; seq++) {
        char topic[STREAM_TOPIC_SIZE];
        void *buf = NULL;
        size_t len;
        rc = audit_stream_message(self, txn, seq, topic, sizeof(topic), &buf, &len);
        if (rc == 0)
            stream_publish(self->stream, topic, buf, len); /* a full subscriber loses it */
        free(buf);
        if (rc == -ENOENT || rc == -EBADMSG)
            rc = 0; /* not publishable; replay shows what is there */
        if (rc == 0)
            self->published = seq;
    }
    return rc;
}

static void reply_unavailable(audit_t *self, size_t i)
{
    /* Error is field 3 of both AuditReply and ReplayReply: one refusal
     * reads right whichever the client sent. */
    Dispatch__Error error = DISPATCH__ERROR__INIT;
    error.code = DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
    error.message = (char *)"the audit store cannot be read now; retry";
    Dispatch__AuditReply reply = DISPATCH__AUDIT_REPLY__INIT;
    reply.error = &error;
    endpoint_reply(self->endpoint, i, &reply.base);
}

static size_t loop_pollitems(void *app, zmq_pollitem_t *items, size_t capacity)
{
    audit_t *self = app;
    return endpoint_pollitems(&self->endpoint, 1, items, capacity);
}

static bool loop_drain(void *app, int64_t now_ms)
{
    (void)now_ms;
    audit_t *self = app;
    endpoint_drain(self->endpoint);
    return false; /* queries never write */
}

/* A revoked key's subscription ends within the loop's next iterations. */
static void renew_stream(audit_t *self)
{
    int rc = stream_renew(self->stream);
    if (rc == 1)
        log_info("stream: a key was revoked: every subscriber reconnects to %s",
                 stream_url(self->stream));
    else if (rc < 0 && rc != -EADDRINUSE)
        log_warn("stream: cannot bind %s again: %s", stream_url(self->stream), strerror(-rc));
}

/* Wakes often enough to see a revoked key within AUTH_RESCAN_MS more. */
static int loop_timeout(void *app, int64_t now_ms)
{
    (void)now_ms;
    audit_t *self = app;
    return self->stream ? AUTH_RESCAN_MS : -1;
}

static void loop_done(void *app, int rc)
{
    (void)rc; /* what did not commit is not in the store to publish */
    audit_t *self = app;
    if (self->stream)
        renew_stream(self);
    size_t count = endpoint_count(self->endpoint);
    if (count == 0 && !self->appended)
        return;
    MDB_txn *txn;
    bool readable = store_read_begin(self->store, &txn) == 0;
    if (readable && self->appended)
        publish_committed(self, txn);
    int64_t now_ms = clock_now_ms();
    for (size_t i = 0; i < count; i++) {
        endpoint_request_t request;
        endpoint_request(self->endpoint, i, &request);
        const ProtobufCMessage *reply = NULL;
        if (!readable ||
            audit_handle_request(self, txn, request.actor, request.body, request.body_len, now_ms,
                                 &reply) < 0 ||
            endpoint_reply(self->endpoint, i, reply) < 0)
            reply_unavailable(self, i);
    }
    if (readable)
        store_read_end(&txn);
    arena_reset(self->arena);
    endpoint_flush(self->endpoint);
    self->appended = false;
}

/* "--name N" or "--name=N": the value, or NULL when argv[*i] is not flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag)
{
    size_t len = strlen(flag);
    if (strcmp(argv[*i], flag) == 0 && *i + 1 < argc)
        return argv[++*i];
    if (strncmp(argv[*i], flag, len) == 0 && argv[*i][len] == '=')
        return argv[*i] + len + 1;
    return NULL;
}

static int parse_positive(const char *text, long long max, long long *value)
{
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno || end == text || *end || parsed <= 0 || parsed > max)
        return -EINVAL;
    *value = parsed;
    return 0;
}

static int parse_options(int argc, char **argv, audit_options_t *options)
{
    static const struct {
        const char *flag;
        long long unit_ms; /* 0: a count, not a time */
        size_t offset;
    } flags[] = {
        {"--stream-hwm", 0, 0},
        {"--sign-for-minutes", 60000, offsetof(audit_options_t, kpi.sign_for_ms)},
        {"--sign-for-urgent-minutes", 60000, offsetof(audit_options_t, kpi.sign_for_urgent_ms)},
        {"--handle-hours", 3600000, offsetof(audit_options_t, kpi.handle_ms)},
        {"--handle-urgent-hours", 3600000, offsetof(audit_options_t, kpi.handle_urgent_ms)},
    };
    for (int i = 1; i < argc; i++) {
        bool known = false;
        for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]) && !known; f++) {
            const char *value = flag_value(argc, argv, &i, flags[f].flag);
            if (!value)
                continue;
            known = true;
            long long parsed;
            long long max = flags[f].unit_ms ? 24LL * 365 * 100 : 100000000;
            if (parse_positive(value, max, &parsed) < 0)
                return -EINVAL;
            if (flags[f].unit_ms)
                *(int64_t *)((char *)options + flags[f].offset) = parsed * flags[f].unit_ms;
            else
                options->stream_hwm = (int)parsed;
        }
        if (!known)
            return -EINVAL;
    }
    return 0;
}

static int audit_start(worker_t *worker, int argc, char **argv, void **app)
{
    audit_options_t options;
    audit_options_init(&options);
    int rc = parse_options(argc, argv, &options);
    const config_worker_t *self_config = worker_self(worker);
    if (rc == 0 && !self_config->request)
        rc = -EINVAL; /* without its request endpoint nobody can catch up */
    options.timezone = config_timezone(worker_config(worker));
    audit_t *self = NULL;
    if (rc == 0)
        rc = audit_new(worker_store(worker), &options, &self);
    if (rc < 0)
        return rc;
    self->bus = worker_bus(worker);
    rc = worker_endpoint(worker, "request", self_config->request, AUDIT_MAX_REQUEST, 0,
                         &self->endpoint);
    if (rc == 0 && self_config->publish) {
        rc = stream_new(worker_zmq(worker), self_config->publish, options.stream_hwm,
                        worker_auth(worker), &self->stream);
        if (rc == 0)
            rc = worker_announce(worker, "publish", stream_url(self->stream));
    }
    /* What was committed before this start is there for replay; the stream
     * carries what comes from now on. */
    MDB_txn *txn;
    if (rc == 0)
        rc = store_read_begin(worker_store(worker), &txn);
    if (rc == 0) {
        trail_head_t head;
        rc = trail_head(self->trail, txn, &head);
        self->published = head.seq;
        store_read_end(&txn);
    }
    if (rc < 0) {
        audit_destroy(&self);
        return rc;
    }
    *app = self;
    return 0;
}

static void audit_stop(void *app)
{
    audit_t *self = app;
    audit_destroy(&self);
}

const worker_kind_t audit_kind = {
    .kind = "audit",
    .start = audit_start,
    .stop = audit_stop,
    .apply = audit_apply_event,
    .loop =
        {
            .pollitems = loop_pollitems,
            .drain = loop_drain,
            .done = loop_done,
            .timeout_ms = loop_timeout,
        },
};

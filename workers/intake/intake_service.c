/* intake_service: the worker around the handlers: the request endpoint,
 * batches answered after their commit, options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "endpoint.h"
#include "intake_internal.h"
#include "log.h"

/* ---- the worker loop --------------------------------------------------- */

#define REQUEST_FIELD_TAG 2 /* Request.tag in dispatch.proto */

/* One varint at *at (at most 10 bytes, before end); false when cut. */
static bool read_varint(const uint8_t **at, const uint8_t *end, uint64_t *value)
{
    *value = 0;
    for (int shift = 0; shift < 64 && *at < end; shift += 7) {
        uint8_t byte = *(*at)++;
        *value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return true;
    }
    return false;
}

/* Peeks at a queued request: does handling it write, and its tag. A walk
 * over the top-level fields of the wire format, not a decode: the request
 * is decoded once, when it is handled (which refuses what is malformed).
 * Request: tag = 2 (varint), body oneof submit = 10, get_ticket = 11,
 * callback = 12 (the last one on the wire is the one that counts). */
static bool request_writes(const void *body, size_t len, uint64_t *tag)
{
    const uint8_t *at = body, *end = at + len;
    uint64_t body_field = 0, value;
    *tag = 0;
    while (at < end) {
        uint64_t key;
        if (!read_varint(&at, end, &key))
            return false;
        switch (key & 7) {
        case 0: /* varint */
            if (!read_varint(&at, end, &value))
                return false;
            if (key >> 3 == REQUEST_FIELD_TAG)
                *tag = value;
            break;
        case 1: /* 64-bit */
            if (end - at < 8)
                return false;
            at += 8;
            break;
        case 2: /* length-delimited */
            if (!read_varint(&at, end, &value) || value > (uint64_t)(end - at))
                return false;
            at += value;
            if (key >> 3 >= DISPATCH__REQUEST__BODY_SUBMIT &&
                key >> 3 <= DISPATCH__REQUEST__BODY_CALLBACK)
                body_field = key >> 3;
            break;
        case 5: /* 32-bit */
            if (end - at < 4)
                return false;
            at += 4;
            break;
        default:
            return false;
        }
    }
    return body_field == DISPATCH__REQUEST__BODY_SUBMIT ||
           body_field == DISPATCH__REQUEST__BODY_CALLBACK;
}

static void reply_unavailable(intake_t *self, size_t i)
{
    endpoint_request_t request;
    endpoint_request(self->endpoint, i, &request);
    uint64_t tag;
    request_writes(request.body, request.body_len, &tag);
    Dispatch__Error error = DISPATCH__ERROR__INIT;
    error.code = DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
    error.message =
        (char *)"storage failure: nothing was applied; retry with the same client_request_id";
    Dispatch__Reply reply = DISPATCH__REPLY__INIT;
    reply.tag = tag;
    reply.body_case = DISPATCH__REPLY__BODY_ERROR;
    reply.error = &error;
    endpoint_reply(self->endpoint, i, &reply.base);
}

/* Handles request i in txn and sets its reply. */
static int answer(intake_t *self, MDB_txn *txn, size_t i, int64_t now_ms)
{
    endpoint_request_t request;
    endpoint_request(self->endpoint, i, &request);
    const Dispatch__Reply *reply;
    int rc = intake_handle_request(self, txn, request.actor, request.body, request.body_len, now_ms,
                                   &reply);
    if (rc < 0)
        return rc;
    if (rc == REFUSED)
        endpoint_strike(self->endpoint, i);
    return endpoint_reply(self->endpoint, i, &reply->base);
}

static size_t loop_pollitems(void *app, zmq_pollitem_t *items, size_t capacity)
{
    intake_t *self = app;
    return endpoint_pollitems(&self->endpoint, 1, items, capacity);
}

static bool loop_drain(void *app, int64_t now_ms)
{
    (void)now_ms;
    intake_t *self = app;
    self->batch_applied = false;
    size_t count = endpoint_drain(self->endpoint);
    bool writes = false;
    for (size_t i = 0; i < count && !writes; i++) {
        endpoint_request_t request;
        endpoint_request(self->endpoint, i, &request);
        uint64_t tag;
        writes = request_writes(request.body, request.body_len, &tag);
    }
    return writes;
}

static int loop_apply(void *app, MDB_txn *txn)
{
    intake_t *self = app;
    self->batch_applied = true;
    endpoint_clear_replies(self->endpoint);
    int64_t now_ms = clock_now_ms();
    size_t count = endpoint_count(self->endpoint);
    for (size_t i = 0; i < count; i++) {
        int rc = answer(self, txn, i, now_ms);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void loop_done(void *app, int rc)
{
    intake_t *self = app;
    size_t count = endpoint_count(self->endpoint);
    if (count > 0 && (rc != 0 || !self->batch_applied)) {
        /* Nothing to write, or the batch did not commit: reads and
         * refusals are answered from a read transaction, and what writes
         * UNAVAILABLE. A batch of the bus fails too while the disk is full,
         * and a StatsQuery that came with it is how an operator learns so. */
        MDB_txn *txn;
        bool readable = store_read_begin(self->store, &txn) == 0;
        int64_t now_ms = clock_now_ms();
        for (size_t i = 0; i < count; i++) {
            endpoint_request_t request;
            endpoint_request(self->endpoint, i, &request);
            uint64_t tag;
            if (!readable || (rc != 0 && request_writes(request.body, request.body_len, &tag)) ||
                answer(self, txn, i, now_ms) < 0)
                reply_unavailable(self, i);
        }
        if (readable)
            store_read_end(&txn);
    }
    endpoint_flush(self->endpoint);
    self->batch_applied = false;
}

/* --duplicate-window-minutes N (or =N); nothing else. */
static int parse_options(int argc, char **argv, intake_options_t *options)
{
    static const char flag[] = "--duplicate-window-minutes";
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (strcmp(argv[i], flag) == 0 && i + 1 < argc)
            value = argv[++i];
        else if (strncmp(argv[i], flag, sizeof(flag) - 1) == 0 && argv[i][sizeof(flag) - 1] == '=')
            value = argv[i] + sizeof(flag);
        else
            return -EINVAL;
        char *end;
        errno = 0;
        long long minutes = strtoll(value, &end, 10);
        if (errno || end == value || *end || minutes < 0 || minutes > INT64_MAX / MINUTE_MS)
            return -EINVAL;
        options->duplicate_window_minutes = minutes;
    }
    return 0;
}

static int intake_start(worker_t *worker, int argc, char **argv, void **app)
{
    intake_options_t options;
    intake_options_init(&options);
    int rc = parse_options(argc, argv, &options);
    const config_worker_t *self_config = worker_self(worker);
    if (rc == 0 && !self_config->request)
        rc = -EINVAL; /* an intake without a request endpoint serves no one */
    intake_t *self = NULL;
    if (rc == 0)
        rc = intake_new(worker_store(worker), worker_bus(worker), worker_config(worker),
                        self_config->name, &options, &self);
    if (rc < 0)
        return rc;
    if (self_config->data_dir) {
        /* The city's lists: a category or area off them is refused. */
        char path[4200], err[512];
        snprintf(path, sizeof(path), "%s/lists.csv", self_config->data_dir);
        city_lists_t *lists = NULL;
        rc = city_lists_load(path, &lists, err, sizeof(err));
        if (rc == -ENOENT) {
            log_warn("%s: no such file: categories and areas are not checked", path);
            rc = 0;
        } else if (rc < 0) {
            log_error("%s", err);
            intake_destroy(&self);
            return rc;
        } else {
            intake_set_city_lists(self, lists);
            log_info("%s: the city's categories and areas are checked", path);
        }
    } else {
        log_warn("no data_dir in the topology: categories and areas are not checked");
    }
    rc = worker_endpoint(worker, "request", self_config->request, INTAKE_MAX_REQUEST, 0,
                         &self->endpoint);
    if (rc < 0) {
        intake_destroy(&self);
        return rc;
    }
    *app = self;
    return 0;
}

static void intake_stop(void *app)
{
    intake_t *self = app;
    intake_destroy(&self);
}

/* SIGHUP (worker.h): the districts and the links of the new topology. A
 * district added there is served from now on (its router's link is open
 * already); the id prefix and the time zone stay as they were. */
static int intake_reload(void *app, const config_t *config)
{
    intake_t *self = app;
    peers_t *peers;
    int rc = peers_new(config, self->name, self->bus, &peers);
    if (rc < 0)
        return rc;
    peers_destroy(&self->peers);
    self->peers = peers;
    self->config = config;
    return 0;
}

const worker_kind_t intake_kind = {
    .kind = "intake",
    .start = intake_start,
    .options_help = "  --duplicate-window-minutes N   tickets with the same caller, address or "
                    "place and category\n"
                    "                                 within N minutes merge (0: never; "
                    "docs/protocol.md 4.1)\n",
    .stop = intake_stop,
    .apply = intake_apply_event,
    .loop =
        {
            .pollitems = loop_pollitems,
            .drain = loop_drain,
            .apply = loop_apply,
            .done = loop_done,
        },
    .reload = intake_reload,
};

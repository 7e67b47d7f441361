/* follower: see follower.h for the protocol and the invariant. */
#include "follower.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <zmq.h>

#include "client.h"
#include "clock.h"
#include "codec.h"

#define DEFAULT_CALL_TIMEOUT_MS 5000
#define DEFAULT_REPLAY_LIMIT 1000
#define MAX_RECORD (1024 * 1024)
/* A silent stream is checked by replay at most this often. */
#define PROBE_MS 200

struct follower {
    void *sub;
    client_t *client;
    follower_options_t options;
    bool started;
    bool need_replay;
    uint64_t next, last;
    Dispatch__ReplayReply *batch; /* the last reply, records from batch_index on unread */
    size_t batch_index;
    Dispatch__AuditRecord *live; /* the live record last returned */
    int64_t probed_at;           /* last replay asked because the stream was silent */
    follower_stats_t stats;
    auth_client_t curve; /* options.curve points here when set */
};

int follower_new(void *zmq_context, const char *publish_url, const char *request_url,
                 const follower_options_t *options, follower_t **ret)
{
    follower_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    if (options)
        self->options = *options;
    if (self->options.curve) {
        self->curve = *self->options.curve;
        self->options.curve = &self->curve;
    }
    if (self->options.call_timeout_ms <= 0)
        self->options.call_timeout_ms = DEFAULT_CALL_TIMEOUT_MS;
    if (self->options.replay_limit == 0 || self->options.replay_limit > DEFAULT_REPLAY_LIMIT)
        self->options.replay_limit = DEFAULT_REPLAY_LIMIT;
    int rc = 0;
    self->sub = zmq_socket(zmq_context, ZMQ_SUB);
    if (!self->sub)
        rc = -ENOMEM;
    int linger = 0;
    int64_t max_message = MAX_RECORD;
    if (rc == 0 &&
        (zmq_setsockopt(self->sub, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
         zmq_setsockopt(self->sub, ZMQ_MAXMSGSIZE, &max_message, sizeof(max_message)) < 0 ||
         (self->options.rcvhwm > 0 && zmq_setsockopt(self->sub, ZMQ_RCVHWM, &self->options.rcvhwm,
                                                     sizeof(self->options.rcvhwm)) < 0) ||
         zmq_setsockopt(self->sub, ZMQ_SUBSCRIBE, "", 0) < 0))
        rc = -errno;
    if (rc == 0)
        rc = auth_client_apply(self->sub, self->options.curve);
    if (rc == 0 && zmq_connect(self->sub, publish_url) < 0)
        rc = -errno;
    /* Subscribed before the first replay: nothing falls between the two. */
    if (rc == 0)
        rc = client_new(zmq_context, request_url, self->options.call_timeout_ms,
                        self->options.curve, &self->client);
    if (rc < 0) {
        follower_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

static void drop_batch(follower_t *self)
{
    if (self->batch)
        dispatch__replay_reply__free_unpacked(self->batch, NULL);
    self->batch = NULL;
    self->batch_index = 0;
}

static void drop_live(follower_t *self)
{
    if (self->live)
        dispatch__audit_record__free_unpacked(self->live, NULL);
    self->live = NULL;
}

void follower_destroy(follower_t **self)
{
    follower_t *follower = *self;
    if (!follower)
        return;
    drop_batch(follower);
    drop_live(follower);
    client_destroy(&follower->client);
    if (follower->sub)
        zmq_close(follower->sub);
    free(follower);
    *self = NULL;
}

static int replay(follower_t *self, uint64_t from_seq)
{
    drop_batch(self);
    Dispatch__ReplayRequest request = DISPATCH__REPLAY_REQUEST__INIT;
    request.from_seq = from_seq;
    request.limit = self->options.replay_limit;
    ProtobufCMessage *reply = NULL;
    int rc = client_call(self->client, &request.base, &dispatch__replay_reply__descriptor, &reply);
    if (rc < 0)
        return rc;
    Dispatch__ReplayReply *replayed = (Dispatch__ReplayReply *)reply;
    if (replayed->error) {
        dispatch__replay_reply__free_unpacked(replayed, NULL);
        return -EPROTO;
    }
    self->stats.replays++;
    self->last = replayed->last_seq;
    self->batch = replayed;
    /* The log has nothing after what this reply holds. */
    self->need_replay = replayed->n_records > 0 &&
                        replayed->records[replayed->n_records - 1]->seq < replayed->last_seq;
    return 0;
}

/* Reads one live record (non-blocking); 0 with *ret, or -EAGAIN. */
static int receive_live(follower_t *self, Dispatch__AuditRecord **ret)
{
    zmq_msg_t topic, body;
    zmq_msg_init(&topic);
    if (zmq_msg_recv(&topic, self->sub, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&topic);
        return -EAGAIN;
    }
    bool more = zmq_msg_more(&topic);
    zmq_msg_close(&topic);
    if (!more)
        return -EBADMSG;
    zmq_msg_init(&body);
    int rc = zmq_msg_recv(&body, self->sub, 0) < 0 ? -errno : 0;
    ProtobufCMessage *record = NULL;
    char err[256];
    if (rc == 0 && !zmq_msg_more(&body))
        rc = codec_decode(&dispatch__audit_record__descriptor, zmq_msg_data(&body),
                          zmq_msg_size(&body), MAX_RECORD, &record, err, sizeof(err));
    while (zmq_msg_more(&body)) { /* a malformed message: drop the rest */
        zmq_msg_close(&body);
        zmq_msg_init(&body);
        zmq_msg_recv(&body, self->sub, 0);
        rc = -EBADMSG;
    }
    zmq_msg_close(&body);
    if (rc < 0 && record)
        protobuf_c_message_free_unpacked(record, NULL);
    *ret = rc < 0 ? NULL : (Dispatch__AuditRecord *)record;
    return rc < 0 ? -EBADMSG : 0;
}

int follower_next(follower_t *self, int wait_ms, const Dispatch__AuditRecord **ret)
{
    *ret = NULL;
    drop_live(self);
    if (!self->started) {
        if (self->options.from_seq == 0) {
            int rc = replay(self, UINT64_MAX);
            if (rc < 0)
                return rc;
            self->next = self->last + 1;
            self->need_replay = false;
            drop_batch(self);
        } else {
            self->next = self->options.from_seq;
            self->need_replay = true;
        }
        self->started = true;
    }
    int64_t deadline = clock_monotonic_ms() + (wait_ms > 0 ? wait_ms : 0);
    for (;;) {
        while (self->batch && self->batch_index < self->batch->n_records) {
            Dispatch__AuditRecord *record = self->batch->records[self->batch_index++];
            if (record->seq < self->next) {
                self->stats.duplicates++;
                continue;
            }
            /* A reply starts at the seq asked for; beyond it there is
             * nothing to wait for. */
            self->next = record->seq + 1;
            self->stats.replayed++;
            *ret = record;
            return 0;
        }
        if (self->need_replay) {
            int rc = replay(self, self->next);
            if (rc < 0)
                return rc;
            continue;
        }
        Dispatch__AuditRecord *record = NULL;
        int rc = receive_live(self, &record);
        if (rc == -EBADMSG)
            continue;
        if (rc == 0) {
            if (record->seq < self->next) {
                self->stats.duplicates++;
                dispatch__audit_record__free_unpacked(record, NULL);
            } else if (record->seq > self->next) {
                self->stats.gaps++;
                self->need_replay = true;
                dispatch__audit_record__free_unpacked(record, NULL);
            } else {
                self->next++;
                if (record->seq > self->last)
                    self->last = record->seq;
                self->stats.live++;
                self->live = record;
                *ret = record;
                return 0;
            }
            continue;
        }
        /* Nothing on the stream now: records dropped at the tail would
         * never show a gap, so ask, at most every PROBE_MS. */
        int64_t now = clock_monotonic_ms();
        if (now - self->probed_at >= PROBE_MS) {
            self->probed_at = now;
            self->need_replay = true;
            continue;
        }
        int64_t left = deadline - now;
        if (left > 0) {
            zmq_pollitem_t item = {.socket = self->sub, .events = ZMQ_POLLIN};
            if (zmq_poll(&item, 1, (long)left) < 0 && errno == EINTR)
                return -EINTR;
            continue;
        }
        return -ETIMEDOUT;
    }
}

uint64_t follower_next_seq(const follower_t *self)
{
    return self->next;
}

uint64_t follower_last_seq(const follower_t *self)
{
    return self->last;
}

void follower_stats(const follower_t *self, follower_stats_t *stats)
{
    *stats = self->stats;
}

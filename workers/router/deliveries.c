#include "deliveries.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"
#include "record.h"
#include "refusal.h"
#include "router_state.pb-c.h"

#define PEER_MAX 255
#define QUEUE_KEY_SIZE (LIMIT_ID + 1 + 8)

/* What a session may push beyond the unit's ack (see deliveries.h). */
typedef enum session_mode {
    SESSION_PROBING,   /* one delivery: does the unit hold more than that? */
    SESSION_HOLDING,   /* nothing until the unit's acks stand still */
    SESSION_STREAMING, /* the window */
} session_mode_t;

typedef struct session {
    char unit[LIMIT_ID + 1]; /* "" = free slot */
    unsigned char peer[PEER_MAX];
    size_t peer_len;
    bool online;
    bool push_due;    /* in the due list */
    uint64_t acked;   /* last ack seen in this session */
    uint64_t sent;    /* highest seq pushed in this session (0 = rewind to acked) */
    int64_t moved_ms; /* CLOCK_MONOTONIC of the last progress or rewind */
    session_mode_t mode;
    uint64_t hold_until; /* last_seq when the probe went: nothing beyond was
                            ever pushed before it, so none beyond is held */
} session_t;

typedef struct pending_ack {
    char unit[LIMIT_ID + 1];
    unsigned char peer[PEER_MAX];
    size_t peer_len;
    uint64_t seq;      /* the unit's durable acked after this ack */
    uint64_t unit_seq; /* what the unit said it applied */
} pending_ack_t;

struct deliveries {
    store_t *store;
    MDB_dbi queue, counters;
    uint32_t window;
    int resend_after_ms; /* a repeated ack rewinds after this long without progress */
    session_t *sessions; /* open addressing, capacity a power of two */
    size_t capacity, used;
    pending_ack_t *acks; /* acks of the running batch */
    size_t ack_count, ack_capacity;
    char (*due)[LIMIT_ID + 1]; /* units to push to after the batch */
    size_t due_count, due_capacity;
    unsigned char *buffer; /* one pushed body */
    size_t buffer_size;
    loop_touched_t *touched; /* unit ids written, for deliveries_check() */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static session_t *slot_for(session_t *table, size_t capacity, const char *unit)
{
    size_t i = (size_t)hash(unit) & (capacity - 1);
    while (table[i].unit[0] && strcmp(table[i].unit, unit) != 0)
        i = (i + 1) & (capacity - 1);
    return &table[i];
}

static int grow(deliveries_t *self)
{
    size_t capacity = self->capacity ? self->capacity * 2 : 256;
    session_t *table = calloc(capacity, sizeof(*table));
    if (!table)
        return -ENOMEM;
    for (size_t i = 0; i < self->capacity; i++)
        if (self->sessions[i].unit[0])
            *slot_for(table, capacity, self->sessions[i].unit) = self->sessions[i];
    free(self->sessions);
    self->sessions = table;
    self->capacity = capacity;
    return 0;
}

static session_t *session_find(const deliveries_t *self, const char *unit)
{
    if (!self->capacity)
        return NULL;
    session_t *slot = slot_for(self->sessions, self->capacity, unit);
    return slot->unit[0] ? slot : NULL;
}

static session_t *session_get(deliveries_t *self, const char *unit)
{
    session_t *slot = session_find(self, unit);
    if (slot)
        return slot;
    size_t len = strlen(unit);
    if (len > LIMIT_ID)
        return NULL;
    if ((self->used + 1) * 2 > self->capacity && grow(self) < 0)
        return NULL;
    if (!self->sessions)
        return NULL;
    slot = slot_for(self->sessions, self->capacity, unit);
    memset(slot, 0, sizeof(*slot));
    memcpy(slot->unit, unit, len + 1);
    self->used++;
    return slot;
}

int deliveries_new(store_t *store, uint32_t window, deliveries_t **ret)
{
    deliveries_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->store = store;
    self->window = window ? window : DELIVERIES_DEFAULT_WINDOW;
    self->resend_after_ms = DELIVERIES_DEFAULT_RESEND_AFTER_MS;
    const store_db_t dbs[] = {
        {"router.deliveries", &self->queue, 0},
        {"router.unit_queues", &self->counters, 0},
    };
    int rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc == 0)
        rc = loop_touched_new(&self->touched);
    if (rc < 0)
        deliveries_destroy(&self);
    *ret = self;
    return rc;
}

void deliveries_set_resend_after(deliveries_t *self, int ms)
{
    self->resend_after_ms = ms < 0 ? 0 : ms;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void deliveries_destroy(deliveries_t **self)
{
    deliveries_t *d = *self;
    if (!d)
        return;
    free(d->sessions);
    free(d->acks);
    free(d->due);
    free(d->buffer);
    loop_touched_destroy(&d->touched);
    free(d);
    *self = NULL;
}

static size_t queue_key(unsigned char *key, const char *unit, uint64_t seq)
{
    size_t len = strlen(unit);
    memcpy(key, unit, len);
    key[len] = '\0';
    store_u64_encode(seq, key + len + 1);
    return len + 9;
}

static int unit_id_ok(const char *unit)
{
    size_t len = strlen(unit);
    return len > 0 && len <= LIMIT_ID;
}

int deliveries_counters(deliveries_t *self, MDB_txn *txn, const char *unit_id, uint64_t *last_seq,
                        uint64_t *acked)
{
    *last_seq = *acked = 0;
    if (!unit_id_ok(unit_id))
        return -EINVAL;
    Dispatch__Router__DeliveryCounters *counters;
    int rc = record_get(txn, self->counters, unit_id, strlen(unit_id),
                        &dispatch__router__delivery_counters__descriptor,
                        (ProtobufCMessage **)&counters);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    *last_seq = counters->last_seq;
    *acked = counters->acked;
    dispatch__router__delivery_counters__free_unpacked(counters, NULL);
    return 0;
}

static int counters_put(deliveries_t *self, MDB_txn *txn, const char *unit_id, uint64_t last_seq,
                        uint64_t acked)
{
    Dispatch__Router__DeliveryCounters counters = DISPATCH__ROUTER__DELIVERY_COUNTERS__INIT;
    counters.last_seq = last_seq;
    counters.acked = acked;
    return record_put(txn, self->counters, unit_id, strlen(unit_id), &counters.base, 0);
}

static int due_add(deliveries_t *self, const char *unit)
{
    session_t *session = session_find(self, unit);
    if (!session || !session->online || session->push_due)
        return 0;
    if (self->due_count == self->due_capacity) {
        size_t capacity = self->due_capacity ? self->due_capacity * 2 : 64;
        void *grown = realloc(self->due, capacity * sizeof(*self->due));
        if (!grown)
            return -ENOMEM;
        self->due = grown;
        self->due_capacity = capacity;
    }
    snprintf(self->due[self->due_count++], LIMIT_ID + 1, "%s", unit);
    session->push_due = true;
    return 0;
}

int deliveries_append(deliveries_t *self, MDB_txn *txn, Dispatch__UnitDelivery *delivery)
{
    const char *unit = delivery->unit_id;
    uint64_t last_seq, acked;
    int rc = deliveries_counters(self, txn, unit, &last_seq, &acked);
    if (rc < 0)
        return rc;
    loop_touched_add(self->touched, unit, strlen(unit));
    delivery->seq = last_seq + 1;
    unsigned char key[QUEUE_KEY_SIZE];
    size_t len = queue_key(key, unit, delivery->seq);
    rc = record_put(txn, self->queue, key, len, &delivery->base, 0);
    if (rc == 0)
        rc = counters_put(self, txn, unit, delivery->seq, acked);
    /* A push after an aborted batch finds nothing new: harmless. */
    if (rc == 0)
        rc = due_add(self, unit);
    return rc;
}

int deliveries_ack(deliveries_t *self, MDB_txn *txn, const char *unit_id, uint64_t seq,
                   const void *peer, size_t peer_len)
{
    if (peer_len > PEER_MAX)
        return -EINVAL;
    uint64_t last_seq, acked;
    int rc = deliveries_counters(self, txn, unit_id, &last_seq, &acked);
    if (rc < 0)
        return rc;
    loop_touched_add(self->touched, unit_id, strlen(unit_id));
    if (seq > last_seq)
        seq = last_seq;
    if (seq > acked) {
        MDB_cursor *cursor;
        rc = store_rc(mdb_cursor_open(txn, self->queue, &cursor));
        if (rc < 0)
            return rc;
        unsigned char key[QUEUE_KEY_SIZE];
        MDB_val k = {queue_key(key, unit_id, acked + 1), key}, v;
        int mrc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
        size_t prefix = strlen(unit_id) + 1;
        while (mrc == 0 && k.mv_size == prefix + 8 && memcmp(k.mv_data, key, prefix) == 0 &&
               store_u64_decode((const unsigned char *)k.mv_data + prefix) <= seq) {
            mrc = mdb_cursor_del(cursor, 0);
            if (mrc == 0)
                mrc = mdb_cursor_get(cursor, &k, &v, MDB_GET_CURRENT);
        }
        mdb_cursor_close(cursor);
        if (mrc != 0 && mrc != MDB_NOTFOUND && mrc != EINVAL)
            return store_rc(mrc);
        rc = counters_put(self, txn, unit_id, last_seq, seq);
        if (rc < 0)
            return rc;
        acked = seq;
    }

    if (self->ack_count == self->ack_capacity) {
        size_t capacity = self->ack_capacity ? self->ack_capacity * 2 : 64;
        void *grown = realloc(self->acks, capacity * sizeof(*self->acks));
        if (!grown)
            return -ENOMEM;
        self->acks = grown;
        self->ack_capacity = capacity;
    }
    pending_ack_t *pending = &self->acks[self->ack_count++];
    snprintf(pending->unit, sizeof(pending->unit), "%s", unit_id);
    memcpy(pending->peer, peer, peer_len);
    pending->peer_len = peer_len;
    pending->seq = acked;
    pending->unit_seq = seq < acked ? seq : acked;
    return 0;
}

/* Raw visit: fn(seq, body, len); stops when fn returns non-zero. */
typedef int (*raw_fn)(uint64_t seq, const void *body, size_t len, void *ctx);

static int each_raw(deliveries_t *self, MDB_txn *txn, const char *unit, uint64_t from_seq,
                    uint64_t to_seq, raw_fn fn, void *ctx)
{
    if (!unit_id_ok(unit))
        return 0;
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, self->queue, &cursor));
    if (rc < 0)
        return rc;
    unsigned char key[QUEUE_KEY_SIZE];
    MDB_val k = {queue_key(key, unit, from_seq), key}, v;
    size_t prefix = strlen(unit) + 1;
    int count = 0, stop = 0;
    int mrc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && k.mv_size == prefix + 8 && memcmp(k.mv_data, key, prefix) == 0) {
        uint64_t seq = store_u64_decode((const unsigned char *)k.mv_data + prefix);
        if (seq > to_seq)
            break;
        stop = fn(seq, v.mv_data, v.mv_size, ctx);
        if (stop != 0)
            break;
        count++;
        mrc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (stop < 0)
        return stop;
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return store_rc(mrc);
    return count;
}

typedef struct visit {
    deliveries_visit_fn fn;
    void *ctx;
} visit_t;

static int visit_unpacked(uint64_t seq, const void *body, size_t len, void *ctx)
{
    (void)seq;
    visit_t *visit = ctx;
    Dispatch__UnitDelivery *delivery = dispatch__unit_delivery__unpack(NULL, len, body);
    if (!delivery)
        return -EPROTO;
    int rc = visit->fn(delivery, visit->ctx);
    dispatch__unit_delivery__free_unpacked(delivery, NULL);
    return rc;
}

int deliveries_each(deliveries_t *self, MDB_txn *txn, const char *unit_id, uint64_t from_seq,
                    size_t limit, deliveries_visit_fn fn, void *ctx)
{
    visit_t visit = {fn, ctx};
    uint64_t to_seq = limit ? from_seq + limit - 1 : UINT64_MAX;
    if (to_seq < from_seq)
        to_seq = UINT64_MAX;
    return each_raw(self, txn, unit_id, from_seq, to_seq, visit_unpacked, &visit);
}

int deliveries_drop_unit(deliveries_t *self, MDB_txn *txn, const char *unit_id)
{
    uint64_t last_seq, acked;
    int rc = deliveries_counters(self, txn, unit_id, &last_seq, &acked);
    if (rc == 0)
        loop_touched_add(self->touched, unit_id, strlen(unit_id));
    for (uint64_t seq = acked + 1; rc == 0 && seq <= last_seq; seq++) {
        unsigned char key[QUEUE_KEY_SIZE];
        rc = record_delete(txn, self->queue, key, queue_key(key, unit_id, seq));
        if (rc == -ENOENT)
            rc = 0;
    }
    if (rc == 0) {
        rc = record_delete(txn, self->counters, unit_id, strlen(unit_id));
        if (rc == -ENOENT)
            rc = 0;
    }
    session_t *session = session_find(self, unit_id);
    if (rc == 0 && session)
        session->online = false; /* promoted early: a removed unit gets nothing more */
    return rc;
}

void deliveries_batch_begin(deliveries_t *self)
{
    self->ack_count = 0;
}

typedef struct push {
    deliveries_t *deliveries;
    session_t *session;
    uint64_t acked;
    deliveries_send_fn send;
    void *ctx;
    int pushed;
} push_t;

/* The stored body with UnitDelivery.acked (field 5, varint) appended:
 * protobuf merges a field that follows the rest of a message. */
static int stamp_acked(deliveries_t *self, const void *body, size_t len, uint64_t acked,
                       size_t *out_len)
{
    size_t need = len + 11;
    if (need > self->buffer_size) {
        void *grown = realloc(self->buffer, need);
        if (!grown)
            return -ENOMEM;
        self->buffer = grown;
        self->buffer_size = need;
    }
    unsigned char *out = self->buffer;
    memcpy(out, body, len);
    size_t n = len;
    if (acked) {
        out[n++] = (5 << 3) | 0;
        for (; acked >= 0x80; acked >>= 7)
            out[n++] = (unsigned char)(acked | 0x80);
        out[n++] = (unsigned char)acked;
    }
    *out_len = n;
    return 0;
}

static int push_one(uint64_t seq, const void *body, size_t len, void *ctx)
{
    push_t *push = ctx;
    session_t *session = push->session;
    size_t stamped_len;
    int rc = stamp_acked(push->deliveries, body, len, push->acked, &stamped_len);
    if (rc < 0)
        return 1;
    rc = push->send(push->ctx, session->peer, session->peer_len, push->deliveries->buffer,
                    stamped_len);
    if (rc == -EHOSTUNREACH) {
        session->online = false;
        return 1;
    }
    if (rc < 0)
        return 1; /* full or failing: the next ack resends */
    session->sent = seq;
    push->pushed++;
    return 0;
}

static int push_session(deliveries_t *self, MDB_txn *txn, session_t *session,
                        deliveries_send_fn send, void *ctx)
{
    uint64_t last_seq, acked;
    int rc = deliveries_counters(self, txn, session->unit, &last_seq, &acked);
    if (rc < 0 || !session->online)
        return rc;
    uint64_t from = (session->sent > acked ? session->sent : acked) + 1;
    uint64_t to = acked;
    switch (session->mode) {
    case SESSION_PROBING:
        to = acked + 1;
        break;
    case SESSION_HOLDING:
        break;
    case SESSION_STREAMING:
        to = acked + self->window;
        break;
    }
    if (to > last_seq)
        to = last_seq;
    if (from > to)
        return 0;
    if (session->mode == SESSION_PROBING)
        session->hold_until = last_seq;
    push_t push = {self, session, acked, send, ctx, 0};
    rc = each_raw(self, txn, session->unit, from, to, push_one, &push);
    return rc < 0 ? rc : push.pushed;
}

int deliveries_batch_done(deliveries_t *self, int rc, deliveries_send_fn send, void *ctx)
{
    if (rc == 0) {
        int64_t now = self->ack_count ? monotonic_ms() : 0;
        for (size_t i = 0; i < self->ack_count; i++) {
            const pending_ack_t *ack = &self->acks[i];
            session_t *session = session_get(self, ack->unit);
            if (!session)
                return -ENOMEM;
            bool same_peer = session->online && session->peer_len == ack->peer_len &&
                             memcmp(session->peer, ack->peer, ack->peer_len) == 0;
            bool progress = ack->seq > session->acked;
            /* What was pushed and not acked is still on its way unless the
             * session is new, the unit fell back (it lost its own state),
             * or its acks stood still for resend_after_ms while something
             * was outstanding (a gap: the unit drops what follows it and
             * repeats its ack). A repeated ack alone (a heartbeat, or the
             * unit dropping a duplicate) is no reason to send it all again:
             * that is how one rewind used to breed the next. */
            bool rewind = !same_peer || ack->unit_seq < ack->seq ||
                          (!progress && session->sent > ack->seq &&
                           now - session->moved_ms >= self->resend_after_ms);
            /* After a rewind the unit may still hold deliveries pushed
             * before (by this router, or by the one before a restart) that
             * it has not read yet: sending the window again would make
             * each of them a duplicate. So a rewound session probes with
             * one delivery: acked exactly, nothing else was in flight, the
             * window opens; acked beyond it, the unit is reading what it
             * holds, and the session waits until the unit's acks stand
             * still (it drops the probe's copy and acks again, or its
             * heartbeat comes) or reach what was queued when the probe
             * went (nothing beyond it was ever pushed), then streams. */
            uint64_t probe = session->sent;
            if (rewind) {
                session->sent = 0; /* resend from acked + 1 */
                session->mode = SESSION_PROBING;
            } else if (session->mode == SESSION_PROBING && progress && probe) {
                session->mode = ack->seq > probe && ack->seq < session->hold_until
                                    ? SESSION_HOLDING
                                    : SESSION_STREAMING;
            } else if (session->mode == SESSION_HOLDING &&
                       (!progress || ack->seq >= session->hold_until)) {
                session->mode = SESSION_STREAMING;
            }
            if (rewind || progress)
                session->moved_ms = now;
            memcpy(session->peer, ack->peer, ack->peer_len);
            session->peer_len = ack->peer_len;
            session->acked = ack->seq;
            session->online = true;
            if (due_add(self, ack->unit) < 0)
                return -ENOMEM;
        }
    }
    self->ack_count = 0;
    if (self->due_count == 0)
        return 0;

    MDB_txn *txn = NULL;
    int read_rc = store_read_begin(self->store, &txn);
    int pushed = 0;
    for (size_t i = 0; i < self->due_count; i++) {
        session_t *session = session_find(self, self->due[i]);
        if (!session)
            continue;
        session->push_due = false;
        if (read_rc < 0 || !send)
            continue;
        int n = push_session(self, txn, session, send, ctx);
        if (n < 0)
            read_rc = n;
        else
            pushed += n;
    }
    self->due_count = 0;
    store_read_end(&txn);
    return read_rc < 0 ? read_rc : pushed;
}

int deliveries_online(const deliveries_t *self, const char *unit_id)
{
    const session_t *session = session_find(self, unit_id);
    return session && session->online;
}

/* ------------------------------------------------------------ checks */

/* Compares the unit's queue with (acked, last_seq]: its two ends, or with
 * walk every entry. */
static int check_queue(deliveries_t *self, MDB_txn *txn, const char *unit, uint64_t acked,
                       uint64_t last_seq, bool walk, char *why, size_t why_len)
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, self->queue, &cursor));
    if (rc < 0) {
        snprintf(why, why_len, "router.deliveries: %s", store_strerror(rc));
        return rc;
    }
    unsigned char key[QUEUE_KEY_SIZE];
    size_t prefix = strlen(unit) + 1;
    MDB_val k = {queue_key(key, unit, 0), key}, v;
    uint64_t due = acked + 1;
    int got = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
    while (got == 0 && k.mv_size == prefix + 8 && memcmp(k.mv_data, key, prefix) == 0) {
        uint64_t seq = store_u64_decode((const unsigned char *)k.mv_data + prefix);
        if (seq != due || seq > last_seq) {
            snprintf(why, why_len,
                     "unit %s's delivery queue holds seq %llu where %s (acked %llu, last_seq %llu)",
                     unit, (unsigned long long)seq,
                     due > last_seq ? "it should end" : "another is due", (unsigned long long)acked,
                     (unsigned long long)last_seq);
            rc = -EPROTO;
            break;
        }
        if (!walk && due < last_seq) {
            due = last_seq; /* from the first entry straight to the last */
            k = (MDB_val){queue_key(key, unit, last_seq), key};
            got = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
            continue;
        }
        due++;
        got = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc == 0 && got != 0 && got != MDB_NOTFOUND) {
        rc = store_rc(got);
        snprintf(why, why_len, "router.deliveries: %s", store_strerror(rc));
    }
    if (rc == 0 && due <= last_seq) {
        snprintf(why, why_len,
                 "unit %s's delivery queue lacks seq %llu (acked %llu, last_seq %llu)", unit,
                 (unsigned long long)due, (unsigned long long)acked, (unsigned long long)last_seq);
        rc = -EPROTO;
    }
    return rc;
}

static int check_unit(deliveries_t *self, MDB_txn *txn, const char *unit, bool walk,
                      uint64_t *pending, char *why, size_t why_len)
{
    uint64_t last_seq, acked;
    int rc = deliveries_counters(self, txn, unit, &last_seq, &acked);
    if (rc < 0) {
        snprintf(why, why_len, "router.unit_queues: the counters of unit %s: %s", unit,
                 store_strerror(rc));
        return rc;
    }
    if (acked > last_seq) {
        snprintf(why, why_len, "unit %s: acked %llu is beyond last_seq %llu", unit,
                 (unsigned long long)acked, (unsigned long long)last_seq);
        return -EPROTO;
    }
    *pending = last_seq - acked;
    return check_queue(self, txn, unit, acked, last_seq, walk, why, why_len);
}

int deliveries_check(deliveries_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    if (loop_touched_overflowed(self->touched)) {
        loop_touched_clear(self->touched);
        return deliveries_check_all(self, txn, why, why_len);
    }
    size_t cursor = 0, len;
    const void *key;
    int rc = 0;
    while (rc == 0 && loop_touched_next(self->touched, &cursor, &key, &len)) {
        char unit[LIMIT_ID + 1];
        uint64_t pending;
        snprintf(unit, sizeof(unit), "%.*s", (int)len, (const char *)key);
        rc = check_unit(self, txn, unit, false, &pending, why, why_len);
    }
    loop_touched_clear(self->touched);
    return rc;
}

int deliveries_loop_check(void *deliveries, MDB_txn *txn, char *why, size_t why_len)
{
    return deliveries_check(deliveries, txn, why, why_len);
}

int deliveries_check_all(deliveries_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, self->counters, &cursor));
    if (rc < 0) {
        snprintf(why, why_len, "router.unit_queues: %s", store_strerror(rc));
        return rc;
    }
    uint64_t pending_all = 0;
    MDB_val k, v;
    int got = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == 0 && got == 0) {
        char unit[LIMIT_ID + 1];
        uint64_t pending = 0;
        if (k.mv_size == 0 || k.mv_size > LIMIT_ID) {
            snprintf(why, why_len, "router.unit_queues: a key of %zu bytes names no unit",
                     k.mv_size);
            rc = -EPROTO;
            break;
        }
        snprintf(unit, sizeof(unit), "%.*s", (int)k.mv_size, (const char *)k.mv_data);
        rc = check_unit(self, txn, unit, true, &pending, why, why_len);
        pending_all += pending;
        got = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc == 0 && got != MDB_NOTFOUND) {
        rc = store_rc(got);
        snprintf(why, why_len, "router.unit_queues: %s", store_strerror(rc));
    }
    MDB_stat st;
    if (rc == 0 && (rc = store_rc(mdb_stat(txn, self->queue, &st))) < 0)
        snprintf(why, why_len, "router.deliveries: %s", store_strerror(rc));
    if (rc == 0 && st.ms_entries != pending_all) {
        snprintf(why, why_len,
                 "router.deliveries holds %zu entries but the unit queues account for %llu: "
                 "entries of a unit without counters",
                 (size_t)st.ms_entries, (unsigned long long)pending_all);
        rc = -EPROTO;
    }
    return rc;
}

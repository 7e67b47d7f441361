#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "bus.pb-c.h"
#include "clock.h"
#include "codec.h"

#define BUS_ID_MAX 63
#define BUS_HEADER_MAX 256
#define BUS_ACK_MAX 128
#define BUS_ACCEPTS_MAX 16
#define INC BUS_INCARNATION_SIZE

struct bus_link {
    bus_t *bus;
    char *peer_id;
    char *endpoint;
    void *socket;
    MDB_dbi outbox;
    uint64_t next, next_pending;                   /* seq of the next bus_send() */
    uint64_t acked_durable, acked_durable_pending; /* entries <= this are deleted */
    uint64_t acked;                                /* receiver's cumulative ack */
    uint64_t sent;                                 /* highest seq put on the socket */
    uint64_t resends, reconnects;
    int64_t last_heard_ms, last_ack_progress_ms, last_probe_ms, last_send_ms, socket_ms;
    /* The receiver's incarnation: known (from bus.links or an ack), and
     * recorded once written; recorded_pending inside a batch. */
    unsigned char peer_incarnation[INC];
    bool peer_known, peer_recorded, peer_recorded_pending;
    /* Divergence noticed here (an operator accepts here), and refusal by
     * the receiver (an operator accepts there). */
    bus_diverged_reason_t diverged;
    unsigned char offered[INC];
    bool accept_due, accepted_pending;
    bool refused;
};

/* A sender whose messages this instance receives. */
typedef struct bus_peer {
    char id[BUS_ID_MAX + 1];
    /* Its incarnation; recorded = bus.senders holds it (committed). An
     * unrecorded incarnation was adopted on first sight and nothing of it
     * is applied yet (last == 0). */
    unsigned char incarnation[INC];
    bool adopted, recorded, recorded_pending;
    uint64_t last, last_pending; /* last applied seq: committed / in this batch */
    bool ack_due, gap, probe_reply;
    uint64_t probe_sent;
    bool gap_reported; /* a gap at gap_reported_last was already reported */
    uint64_t gap_reported_last;
    uint32_t queued; /* items in the batch queue: pinned while > 0 */
    int64_t last_heard_ms;
    /* Divergence: the incarnation it offers, refused until accepted. */
    bus_diverged_reason_t diverged;
    unsigned char offered[INC];
    char renamed_from[BUS_ID_MAX + 1];
    bool refuse_due, accept_due, accepted_pending;
    uint64_t accepted_last;
} bus_peer_t;

typedef struct bus_item {
    uint32_t peer;
    bool probe;
    uint64_t seq;
    uint64_t probe_sent;
    zmq_msg_t body;
} bus_item_t;

struct bus {
    void *context;
    store_t *store;
    char *self_id;
    bus_options_t options;
    MDB_dbi self_db, links_db, last_seq_db, senders_db, incarnations_db, dead_db;
    unsigned char incarnation[INC];

    void *router;
    char endpoint[256];
    bus_apply_fn apply;
    void *app;

    bus_link_t **links;
    size_t link_count;

    bus_peer_t *peers;
    size_t peer_count;

    bus_item_t *queue;
    size_t queue_length;
    uint64_t queue_bytes;

    /* Acceptances waiting for a peer to diverge: on the link to it, as a
     * sender, or both; pinned ones only for the incarnation accepted on the
     * other side. */
    struct bus_accept_wait {
        char id[BUS_ID_MAX + 1];
        bool link, sender, pinned;
        unsigned char incarnation[INC];
    } accepts[BUS_ACCEPTS_MAX];
    size_t accept_count;

    /* bus.dead: letters in it, their bytes, the next key; committed and
     * inside a batch. */
    uint64_t dead_count, dead_bytes, dead_next;
    uint64_t dead_count_pending, dead_bytes_pending, dead_next_pending, dead_dropped_pending;

    bus_stats_t stats, batch_stats;
};

int64_t bus_now_ms(void)
{
    return clock_monotonic_ms();
}

const char *bus_event_word(bus_event_kind_t kind)
{
    switch (kind) {
    case BUS_EVENT_DIVERGED:
        return "diverged";
    case BUS_EVENT_REFUSED:
        return "refused";
    case BUS_EVENT_RESUMED:
        return "resumed";
    case BUS_EVENT_ACCEPTED:
        return "accepted";
    case BUS_EVENT_RECONNECTED:
        return "reconnected";
    case BUS_EVENT_DEAD_DROPPED:
        return "dead-dropped";
    case BUS_EVENT_FORGED:
        return "forged";
    }
    return "?";
}

const char *bus_reason_word(bus_diverged_reason_t reason)
{
    switch (reason) {
    case BUS_DIVERGED_NONE:
        return "-";
    case BUS_DIVERGED_SENDER_INCARNATION:
        return "sender-incarnation";
    case BUS_DIVERGED_SENDER_RENAMED:
        return "sender-renamed";
    case BUS_DIVERGED_RECEIVER_INCARNATION:
        return "receiver-incarnation";
    case BUS_DIVERGED_ACKED_BACKWARDS:
        return "acked-backwards";
    case BUS_DIVERGED_ACKED_BEYOND:
        return "acked-beyond";
    }
    return "?";
}

static bool id_valid(const char *id)
{
    size_t len = strlen(id);
    return len > 0 && len <= BUS_ID_MAX;
}

static int set_int(void *socket, int option, int value)
{
    return zmq_setsockopt(socket, option, &value, sizeof(value)) == 0 ? 0 : -errno;
}

static void emit(const bus_t *self, const bus_event_t *event)
{
    if (self->options.on_event)
        self->options.on_event(self->options.event_ctx, event);
}

static int self_get(MDB_txn *txn, const bus_t *self, const char *key, uint64_t *value)
{
    return store_get_u64(txn, self->self_db, key, strlen(key), 0, value);
}

static int self_put(MDB_txn *txn, const bus_t *self, const char *key, uint64_t value)
{
    return store_put_u64(txn, self->self_db, key, strlen(key), value);
}

/* Reads, or creates with the store, this store's incarnation. */
static int incarnation_setup(MDB_txn *txn, void *ctx)
{
    bus_t *self = ctx;
    MDB_val k = {11, "incarnation"}, v;
    int rc = mdb_get(txn, self->self_db, &k, &v);
    if (rc == 0 && v.mv_size == INC) {
        memcpy(self->incarnation, v.mv_data, INC);
    } else if (rc == MDB_NOTFOUND) {
        if (getrandom(self->incarnation, INC, 0) != INC)
            return -EIO;
        v = (MDB_val){INC, self->incarnation};
        rc = store_rc(mdb_put(txn, self->self_db, &k, &v, 0));
        if (rc < 0)
            return rc;
    } else {
        return rc == 0 ? -EPROTO : store_rc(rc);
    }
    rc = self_get(txn, self, "dead.count", &self->dead_count);
    if (rc == 0)
        rc = self_get(txn, self, "dead.bytes", &self->dead_bytes);
    if (rc == 0)
        rc = self_get(txn, self, "dead.next", &self->dead_next);
    if (rc == 0)
        rc = self_get(txn, self, "dead.dropped", &self->stats.dead_dropped);
    return rc;
}

int bus_new(void *zmq_context, store_t *store, const char *self_id, const bus_options_t *options,
            bus_t **ret)
{
    if (!id_valid(self_id))
        return -EINVAL;
    bus_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->context = zmq_context;
    self->store = store;
    if (options)
        self->options = *options;
    bus_options_t *o = &self->options;
    o->window = o->window ? o->window : 4096;
    o->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : 1000;
    o->ack_timeout_ms = o->ack_timeout_ms ? o->ack_timeout_ms : 300;
    o->dead_after_ms = o->dead_after_ms ? o->dead_after_ms : 3000;
    o->max_message = o->max_message ? o->max_message : 1 << 20;
    o->max_batch = o->max_batch ? o->max_batch : 8192;
    o->max_batch_bytes = o->max_batch_bytes ? o->max_batch_bytes : 64u << 20;
    o->dead_max_count = o->dead_max_count ? o->dead_max_count : 10000;
    o->dead_max_bytes = o->dead_max_bytes ? o->dead_max_bytes : 16u << 20;

    int rc = -ENOMEM;
    self->self_id = strdup(self_id);
    self->queue = calloc(o->max_batch, sizeof(*self->queue));
    self->peers = calloc(BUS_MAX_PEERS, sizeof(*self->peers));
    if (!self->self_id || !self->queue || !self->peers)
        goto fail;
    const store_db_t dbs[] = {
        {"bus.self", &self->self_db, 0},
        {"bus.links", &self->links_db, 0},
        {"bus.last_seq", &self->last_seq_db, 0},
        {"bus.senders", &self->senders_db, 0},
        {"bus.incarnations", &self->incarnations_db, 0},
        {"bus.dead", &self->dead_db, 0},
    };
    rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc == 0)
        rc = store_write(store, incarnation_setup, self);
    if (rc < 0)
        goto fail;
    self->dead_count_pending = self->dead_count;
    self->dead_bytes_pending = self->dead_bytes;
    self->dead_next_pending = self->dead_next;
    *ret = self;
    return 0;

fail:
    bus_destroy(&self);
    return rc;
}

const char *bus_self_id(const bus_t *self)
{
    return self->self_id;
}

const unsigned char *bus_incarnation(const bus_t *self)
{
    return self->incarnation;
}

void bus_destroy(bus_t **self)
{
    bus_t *bus = *self;
    if (!bus)
        return;
    for (size_t i = 0; i < bus->queue_length; i++)
        zmq_msg_close(&bus->queue[i].body);
    for (size_t i = 0; i < bus->link_count; i++) {
        zmq_close(bus->links[i]->socket);
        free(bus->links[i]->peer_id);
        free(bus->links[i]->endpoint);
        free(bus->links[i]);
    }
    if (bus->router)
        zmq_close(bus->router);
    free(bus->links);
    free(bus->peers);
    free(bus->queue);
    free(bus->self_id);
    free(bus);
    *self = NULL;
}

int bus_listen(bus_t *self, const char *endpoint, bus_apply_fn apply, void *app)
{
    if (self->router)
        return -EALREADY;
    void *router = zmq_socket(self->context, ZMQ_ROUTER);
    if (!router)
        return -errno;
    int64_t max_message = self->options.max_message;
    int rc = set_int(router, ZMQ_LINGER, 0);
    /* A restarted sender takes over its routing id at once. */
    if (rc == 0)
        rc = set_int(router, ZMQ_ROUTER_HANDOVER, 1);
    /* Bounded per sender: a full pipe stops reading its connection (TCP
     * pushes back); nothing is dropped. */
    if (rc == 0)
        rc = set_int(router, ZMQ_RCVHWM, (int)self->options.window + 1024);
    if (rc == 0 && zmq_setsockopt(router, ZMQ_MAXMSGSIZE, &max_message, sizeof(max_message)) < 0)
        rc = -errno;
    if (rc == 0 && self->options.auth)
        rc = auth_server_apply(self->options.auth, router);
    if (rc == 0 && zmq_bind(router, endpoint) < 0)
        rc = -errno;
    size_t len = sizeof(self->endpoint);
    if (rc == 0 && zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, self->endpoint, &len) < 0)
        rc = -errno;
    if (rc < 0) {
        zmq_close(router);
        return rc;
    }
    self->router = router;
    self->apply = apply;
    self->app = app;
    return 0;
}

const char *bus_listen_endpoint(const bus_t *self)
{
    return self->router ? self->endpoint : NULL;
}

/* Keys of a link's durable acked position and of its receiver's
 * incarnation in bus.links. */
static size_t link_meta_key(const char *peer_id, char *key, size_t len)
{
    return (size_t)snprintf(key, len, "%s.acked", peer_id);
}

static size_t link_incarnation_key(const char *peer_id, char *key, size_t len)
{
    return (size_t)snprintf(key, len, "%s.incarnation", peer_id);
}

/* Reads a 16-byte incarnation: 1 found, 0 absent, or an error. */
static int get_incarnation(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len,
                           unsigned char out[INC])
{
    MDB_val k = {key_len, (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return store_rc(rc);
    if (v.mv_size != INC)
        return -EPROTO;
    memcpy(out, v.mv_data, INC);
    return 1;
}

static int put_incarnation(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len,
                           const unsigned char incarnation[INC])
{
    MDB_val k = {key_len, (void *)key}, v = {INC, (void *)incarnation};
    return store_rc(mdb_put(txn, dbi, &k, &v, 0));
}

/* Restores next/acked from the outbox: it holds exactly (acked, next). */
static int link_restore(bus_link_t *link)
{
    bus_t *bus = link->bus;
    MDB_txn *txn;
    int rc = store_read_begin(bus->store, &txn);
    if (rc < 0)
        return rc;
    char key[BUS_ID_MAX + 16];
    size_t key_len = link_meta_key(link->peer_id, key, sizeof(key));
    rc = store_get_u64(txn, bus->links_db, key, key_len, 0, &link->acked_durable);
    if (rc == 0) {
        key_len = link_incarnation_key(link->peer_id, key, sizeof(key));
        rc = get_incarnation(txn, bus->links_db, key, key_len, link->peer_incarnation);
        link->peer_known = link->peer_recorded = rc == 1;
        rc = rc < 0 ? rc : 0;
    }
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = store_rc(mdb_cursor_open(txn, link->outbox, &cursor));
    if (rc == 0) {
        MDB_val k, v;
        int found = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
        if (found == 0)
            link->next = store_u64_decode(k.mv_data) + 1;
        else if (found == MDB_NOTFOUND)
            link->next = link->acked_durable + 1;
        else
            rc = store_rc(found);
        mdb_cursor_close(cursor);
    }
    store_read_end(&txn);
    link->next_pending = link->next;
    link->acked_durable_pending = link->acked_durable;
    link->peer_recorded_pending = link->peer_recorded;
    link->acked = link->sent = link->acked_durable;
    return rc;
}

/* The link's DEALER, connected; the one place its options are set. */
static int link_socket_open(bus_link_t *link, void **ret)
{
    bus_t *self = link->bus;
    void *socket = zmq_socket(self->context, ZMQ_DEALER);
    if (!socket)
        return -errno;
    /* CURVE's handshake commands (WELCOME, READY with metadata) must pass
     * this limit too; acks are still held to BUS_ACK_MAX when decoded. */
    int64_t max_ack = self->options.auth ? 1024 : BUS_ACK_MAX;
    int rc = set_int(socket, ZMQ_LINGER, 0);
    if (rc == 0 && zmq_setsockopt(socket, ZMQ_ROUTING_ID, self->self_id, strlen(self->self_id)) < 0)
        rc = -errno;
    if (rc == 0)
        rc = set_int(socket, ZMQ_SNDHWM, (int)self->options.window + 1024);
    if (rc == 0)
        rc = set_int(socket, ZMQ_RCVHWM, (int)self->options.window + 1024);
    if (rc == 0)
        rc = set_int(socket, ZMQ_RECONNECT_IVL, 50);
    if (rc == 0)
        rc = set_int(socket, ZMQ_RECONNECT_IVL_MAX, 1000);
    if (rc == 0 && zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_ack, sizeof(max_ack)) < 0)
        rc = -errno;
    auth_client_t keys;
    if (rc == 0 && self->options.auth &&
        (rc = auth_peer_keys(self->options.auth, link->peer_id, &keys)) == 0)
        rc = auth_client_apply(socket, &keys);
    if (rc == 0 && zmq_connect(socket, link->endpoint) < 0)
        rc = -errno;
    if (rc < 0) {
        zmq_close(socket);
        return rc;
    }
    *ret = socket;
    return 0;
}

static bool accept_take(bus_t *self, const char *peer_id, bool link,
                        const unsigned char offered[INC]);

int bus_link_open(bus_t *self, const char *peer_id, const char *endpoint, bus_link_t **ret)
{
    if (!id_valid(peer_id))
        return -EINVAL;
    if (bus_link_find(self, peer_id))
        return -EEXIST;
    bus_link_t **links = realloc(self->links, (self->link_count + 1) * sizeof(*links));
    if (!links)
        return -ENOMEM;
    self->links = links;
    bus_link_t *link = calloc(1, sizeof(*link));
    if (!link)
        return -ENOMEM;
    link->bus = self;
    link->peer_id = strdup(peer_id);
    link->endpoint = strdup(endpoint);
    int rc = -ENOMEM;
    if (!link->peer_id || !link->endpoint)
        goto fail;

    char name[BUS_ID_MAX + 16];
    snprintf(name, sizeof(name), "outbox.%s", peer_id);
    rc = store_dbi(self->store, name, 0, &link->outbox);
    if (rc == 0)
        rc = link_restore(link);
    if (rc == 0)
        rc = link_socket_open(link, &link->socket);
    if (rc < 0)
        goto fail;

    int64_t now = bus_now_ms();
    link->last_heard_ms = link->last_ack_progress_ms = link->socket_ms = now;
    link->last_probe_ms = link->last_send_ms = now - self->options.heartbeat_ms;
    self->links[self->link_count++] = link;
    if (ret)
        *ret = link;
    return 0;

fail:
    free(link->peer_id);
    free(link->endpoint);
    free(link);
    return rc;
}

bus_link_t *bus_link_find(bus_t *self, const char *peer_id)
{
    for (size_t i = 0; i < self->link_count; i++)
        if (strcmp(self->links[i]->peer_id, peer_id) == 0)
            return self->links[i];
    return NULL;
}

void bus_link_stats(const bus_link_t *link, bus_link_stats_t *stats)
{
    int64_t now = bus_now_ms();
    *stats = (bus_link_stats_t){
        .next = link->next,
        .sent = link->sent,
        .acked = link->acked,
        .resends = link->resends,
        .outbox = link->next - 1 - link->acked_durable,
        .lag = link->next - 1 - link->acked,
        .last_ack_age_ms = now - link->last_heard_ms,
        .reconnects = link->reconnects,
        .up = now - link->last_heard_ms < link->bus->options.dead_after_ms,
        .diverged = link->diverged != BUS_DIVERGED_NONE,
        .refused = link->refused,
        .reason = link->diverged,
        .peer_known = link->peer_known,
    };
    memcpy(stats->self_incarnation, link->bus->incarnation, INC);
    memcpy(stats->peer_incarnation, link->peer_incarnation, INC);
    memcpy(stats->offered, link->offered, INC);
}

uint64_t bus_link_backlog(const bus_link_t *link)
{
    uint64_t next = link->next_pending > link->next ? link->next_pending : link->next;
    return next - 1 - link->acked;
}

void bus_stats(const bus_t *self, bus_stats_t *stats)
{
    *stats = self->stats;
}

void bus_links_each(const bus_t *self, int (*fn)(void *ctx, const bus_link_view_t *view), void *ctx)
{
    bus_link_view_t view;
    for (size_t i = 0; i < self->link_count; i++) {
        view = (bus_link_view_t){.peer_id = self->links[i]->peer_id, .direction = BUS_OUTGOING};
        bus_link_stats(self->links[i], &view.stats);
        if (fn(ctx, &view))
            return;
    }
    int64_t now = bus_now_ms();
    for (size_t i = 0; i < self->peer_count; i++) {
        const bus_peer_t *peer = &self->peers[i];
        view = (bus_link_view_t){.peer_id = peer->id, .direction = BUS_INCOMING};
        bus_link_stats_t *stats = &view.stats;
        stats->acked = peer->last;
        stats->last_ack_age_ms = now - peer->last_heard_ms;
        stats->up = now - peer->last_heard_ms < self->options.dead_after_ms;
        stats->diverged = peer->diverged != BUS_DIVERGED_NONE;
        stats->reason = peer->diverged;
        stats->peer_known = peer->adopted;
        memcpy(stats->self_incarnation, self->incarnation, INC);
        memcpy(stats->peer_incarnation, peer->incarnation, INC);
        memcpy(stats->offered, peer->offered, INC);
        if (fn(ctx, &view))
            return;
    }
}

static bool link_can_accept(const bus_link_t *link)
{
    return link->diverged == BUS_DIVERGED_RECEIVER_INCARNATION ||
           link->diverged == BUS_DIVERGED_ACKED_BACKWARDS;
}

/* Takes a waiting acceptance for peer_id, offering incarnation offered, on
 * its link or as a sender. */
static bool accept_take(bus_t *self, const char *peer_id, bool link,
                        const unsigned char offered[INC])
{
    for (size_t i = 0; i < self->accept_count; i++) {
        struct bus_accept_wait *wait = &self->accepts[i];
        if (strcmp(wait->id, peer_id) != 0 || !(link ? wait->link : wait->sender) ||
            (wait->pinned && memcmp(wait->incarnation, offered, INC) != 0))
            continue;
        if (link)
            wait->link = false;
        else
            wait->sender = false;
        if (!wait->link && !wait->sender) {
            memmove(wait, wait + 1, (self->accept_count - i - 1) * sizeof(*wait));
            self->accept_count--;
        }
        return true;
    }
    return false;
}

int bus_accept(bus_t *self, const char *peer_id, bool wait)
{
    if (!id_valid(peer_id))
        return -EINVAL;
    bool link_now = false, sender_now = false;
    const unsigned char *accepted = NULL;
    bus_link_t *link = bus_link_find(self, peer_id);
    if (link && link_can_accept(link)) {
        link_now = link->accept_due = true;
        accepted = link->offered;
    }
    for (size_t i = 0; i < self->peer_count; i++) {
        bus_peer_t *peer = &self->peers[i];
        if (peer->diverged != BUS_DIVERGED_NONE && strcmp(peer->id, peer_id) == 0) {
            sender_now = peer->accept_due = true;
            accepted = peer->offered;
        }
    }
    if (!wait && !accepted)
        return -ENOENT;
    /* A reset peer shows its new incarnation both ways, each when it is
     * noticed: the direction that has not diverged yet is accepted when it
     * does, for that incarnation only. */
    bool link_later = link && !link_now, sender_later = !sender_now;
    if (!link_later && !sender_later)
        return 0;
    struct bus_accept_wait *entry = NULL;
    for (size_t i = 0; i < self->accept_count && !entry; i++)
        if (strcmp(self->accepts[i].id, peer_id) == 0)
            entry = &self->accepts[i];
    if (!entry) {
        if (self->accept_count == BUS_ACCEPTS_MAX)
            return wait ? -ENOSPC : 0;
        entry = &self->accepts[self->accept_count++];
        *entry = (struct bus_accept_wait){0};
        snprintf(entry->id, sizeof(entry->id), "%s", peer_id);
    }
    entry->link |= link_later;
    entry->sender |= sender_later;
    entry->pinned = !wait;
    if (!wait)
        memcpy(entry->incarnation, accepted, INC);
    return 0;
}

int bus_send(bus_t *self, MDB_txn *txn, bus_link_t *link, const void *body, size_t len)
{
    unsigned char key[8];
    store_u64_encode(link->next_pending, key);
    MDB_val k = {sizeof(key), key}, v = {len, (void *)body};
    int rc = store_rc(mdb_put(txn, link->outbox, &k, &v, MDB_APPEND));
    if (rc == 0)
        link->next_pending++;
    return rc;
}

size_t bus_pollitems(bus_t *self, zmq_pollitem_t *items, size_t capacity)
{
    size_t n = 0;
    if (self->router && n < capacity)
        items[n++] = (zmq_pollitem_t){.socket = self->router, .events = ZMQ_POLLIN};
    for (size_t i = 0; i < self->link_count && n < capacity; i++)
        items[n++] = (zmq_pollitem_t){.socket = self->links[i]->socket, .events = ZMQ_POLLIN};
    return n;
}

static bool link_can_stream(const bus_link_t *link)
{
    return link->diverged == BUS_DIVERGED_NONE && !link->refused && link->sent + 1 < link->next &&
           link->sent - link->acked < link->bus->options.window;
}

int bus_timeout_ms(const bus_t *self, int64_t now_ms)
{
    if (self->queue_length > 0)
        return 0;
    int64_t timeout = self->options.heartbeat_ms;
    for (size_t i = 0; i < self->link_count; i++) {
        const bus_link_t *link = self->links[i];
        /* The socket refused more (high-water mark): try again soon. */
        if (link_can_stream(link))
            return 1;
        int64_t due = link->last_probe_ms + self->options.heartbeat_ms;
        if (link->sent > link->acked) {
            int64_t stall = link->last_ack_progress_ms + self->options.ack_timeout_ms;
            int64_t again = link->last_probe_ms + self->options.ack_timeout_ms;
            int64_t probe_due = stall > again ? stall : again;
            if (probe_due < due)
                due = probe_due;
        }
        int64_t silent =
            link->last_heard_ms > link->socket_ms ? link->last_heard_ms : link->socket_ms;
        if (silent + self->options.dead_after_ms < due)
            due = silent + self->options.dead_after_ms;
        if (due - now_ms < timeout)
            timeout = due - now_ms;
    }
    return timeout < 0 ? 0 : (int)timeout;
}

/* Key of a sender's last_seq: its id, a NUL, its incarnation. */
static size_t last_seq_key(const char *id, const unsigned char incarnation[INC],
                           unsigned char key[BUS_ID_MAX + 1 + INC])
{
    size_t len = strlen(id);
    memcpy(key, id, len);
    key[len] = '\0';
    memcpy(key + len + 1, incarnation, INC);
    return len + 1 + INC;
}

/* Loads a sender's recorded incarnation and last applied seq. */
static int peer_load(bus_t *self, MDB_txn *txn, bus_peer_t *peer)
{
    int rc = get_incarnation(txn, self->senders_db, peer->id, strlen(peer->id), peer->incarnation);
    if (rc <= 0)
        return rc;
    peer->adopted = peer->recorded = peer->recorded_pending = true;
    unsigned char key[BUS_ID_MAX + 1 + INC];
    size_t len = last_seq_key(peer->id, peer->incarnation, key);
    rc = store_get_u64(txn, self->last_seq_db, key, len, 0, &peer->last);
    peer->last_pending = peer->last;
    return rc;
}

static bool peer_pinned(const bus_peer_t *peer)
{
    return peer->queued > 0 || peer->refuse_due || peer->accept_due ||
           peer->diverged != BUS_DIVERGED_NONE;
}

/* A slot for a new sender in a full table: the least recently heard of the
 * senders never recorded, else of the recorded ones silent for
 * dead_after_ms (the store keeps what they are). -ENOSPC when every entry
 * is busy. */
static int peer_evict(bus_t *self, int64_t now_ms, uint32_t *index)
{
    size_t victim = SIZE_MAX;
    for (size_t i = 0; i < self->peer_count; i++) {
        const bus_peer_t *peer = &self->peers[i];
        if (peer_pinned(peer))
            continue;
        if (peer->recorded && now_ms - peer->last_heard_ms < self->options.dead_after_ms)
            continue;
        if (victim == SIZE_MAX) {
            victim = i;
            continue;
        }
        const bus_peer_t *best = &self->peers[victim];
        if ((best->recorded && !peer->recorded) ||
            (best->recorded == peer->recorded && peer->last_heard_ms < best->last_heard_ms))
            victim = i;
    }
    if (victim == SIZE_MAX) {
        self->stats.peers_full++;
        return -ENOSPC;
    }
    self->stats.evicted++;
    *index = (uint32_t)victim;
    return 0;
}

/* Finds the entry of a sender, loading it from the store on first sight
 * (evicting an idle one when the table is full). */
static int peer_find(bus_t *self, const char *id, int64_t now_ms, uint32_t *index)
{
    for (size_t i = 0; i < self->peer_count; i++) {
        if (strcmp(self->peers[i].id, id) == 0) {
            *index = (uint32_t)i;
            return 0;
        }
    }
    uint32_t slot = (uint32_t)self->peer_count;
    if (self->peer_count == BUS_MAX_PEERS) {
        int rc = peer_evict(self, now_ms, &slot);
        if (rc < 0)
            return rc;
    }
    bus_peer_t *peer = &self->peers[slot];
    memset(peer, 0, sizeof(*peer));
    snprintf(peer->id, sizeof(peer->id), "%s", id);
    MDB_txn *txn;
    int rc = store_read_begin(self->store, &txn);
    if (rc < 0)
        return rc;
    rc = peer_load(self, txn, peer);
    store_read_end(&txn);
    if (rc < 0)
        return rc;
    if (slot == self->peer_count)
        self->peer_count++;
    *index = slot;
    return 0;
}

/* The sender named by an incarnation in bus.incarnations, into owner
 * ("" when none). */
static int incarnation_owner(bus_t *self, const unsigned char incarnation[INC],
                             char owner[BUS_ID_MAX + 1])
{
    owner[0] = '\0';
    MDB_txn *txn;
    int rc = store_read_begin(self->store, &txn);
    if (rc < 0)
        return rc;
    MDB_val k = {INC, (void *)incarnation}, v;
    rc = mdb_get(txn, self->incarnations_db, &k, &v);
    if (rc == 0 && v.mv_size <= BUS_ID_MAX) {
        memcpy(owner, v.mv_data, v.mv_size);
        owner[v.mv_size] = '\0';
    }
    store_read_end(&txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

/* Whether a message from the sender under incarnation may be queued; when
 * not, the sender is diverged and gets a refusing ack. */
static int peer_admit(bus_t *self, bus_peer_t *peer, const unsigned char incarnation[INC])
{
    if (peer->adopted && memcmp(peer->incarnation, incarnation, INC) == 0 &&
        peer->diverged == BUS_DIVERGED_NONE)
        return 1;
    bus_diverged_reason_t reason = BUS_DIVERGED_SENDER_INCARNATION;
    char owner[BUS_ID_MAX + 1] = "";
    if (peer->adopted && memcmp(peer->incarnation, incarnation, INC) == 0) {
        /* Diverged under another incarnation before; the known one is back. */
        peer->diverged = BUS_DIVERGED_NONE;
        peer->accept_due = false;
        return 1;
    }
    int rc = incarnation_owner(self, incarnation, owner);
    if (rc < 0)
        return rc;
    if (owner[0] && strcmp(owner, peer->id) != 0) {
        reason = BUS_DIVERGED_SENDER_RENAMED;
    } else if (!peer->recorded) {
        /* First sight, nothing applied yet: this is who it is. */
        memcpy(peer->incarnation, incarnation, INC);
        peer->adopted = true;
        peer->diverged = BUS_DIVERGED_NONE;
        return 1;
    } else {
        owner[0] = '\0';
    }
    bool news = peer->diverged != reason || memcmp(peer->offered, incarnation, INC) != 0;
    peer->diverged = reason;
    memcpy(peer->offered, incarnation, INC);
    snprintf(peer->renamed_from, sizeof(peer->renamed_from), "%s", owner);
    peer->refuse_due = true;
    self->stats.refused++;
    if (news) {
        peer->accept_due = accept_take(self, peer->id, false, incarnation);
        bus_event_t event = {.kind = BUS_EVENT_DIVERGED,
                             .reason = reason,
                             .peer_id = peer->id,
                             .renamed_from = owner[0] ? owner : NULL,
                             .known = peer->recorded ? peer->incarnation : NULL,
                             .offered = incarnation};
        emit(self, &event);
    }
    return 0;
}

static void discard_rest(void *socket)
{
    int more = 1;
    size_t size = sizeof(more);
    while (zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &size) == 0 && more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, socket, ZMQ_DONTWAIT);
        zmq_msg_close(&part);
    }
}

static bool more_parts(void *socket)
{
    int more = 0;
    size_t size = sizeof(more);
    return zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &size) == 0 && more;
}

/* Under CURVE a frame's key must be the named sender's own: a worker key
 * of that worker. Anything else (another worker's key, a unit's, one
 * revoked since the handshake) is a forgery: dropped, counted, told. */
static bool key_is_sender(bus_t *self, zmq_msg_t *frame, const char *sender)
{
    const char *key = zmq_msg_gets(frame, "X-Key");
    auth_actor_t actor = {0};
    bool known = key && auth_lookup(self->options.auth, key, &actor) == 0;
    const char *worker = *actor.worker ? actor.worker : actor.name;
    if (known && actor.kind == AUTH_KIND_WORKER && strcmp(worker, sender) == 0)
        return true;
    bus_event_t event = {
        .kind = BUS_EVENT_FORGED, .peer_id = sender, .key_actor = known ? actor.name : ""};
    emit(self, &event);
    return false;
}

/* Reads one message from the listening socket into the batch queue.
 * Returns 1 when something was read, 0 when nothing is waiting. */
static int drain_one(bus_t *self, int64_t now_ms)
{
    zmq_msg_t routing, header_frame;
    zmq_msg_init(&routing);
    if (zmq_msg_recv(&routing, self->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&routing);
        return errno == EAGAIN ? 0 : -errno;
    }
    zmq_msg_init(&header_frame);
    Dispatch__Bus__BusHeader *header = NULL;
    bus_item_t *item = &self->queue[self->queue_length];
    bool queued = false;

    if (!more_parts(self->router) || zmq_msg_recv(&header_frame, self->router, 0) < 0)
        goto drop;
    char err[128];
    if (codec_decode(&dispatch__bus__bus_header__descriptor, zmq_msg_data(&header_frame),
                     zmq_msg_size(&header_frame), BUS_HEADER_MAX, (ProtobufCMessage **)&header, err,
                     sizeof(err)) < 0)
        goto drop;
    /* The routing id is the sender's stable id; a header claiming another
     * sender is spoofed. */
    size_t id_len = strlen(header->sender_id);
    if (id_len == 0 || id_len > BUS_ID_MAX || id_len != zmq_msg_size(&routing) ||
        memcmp(header->sender_id, zmq_msg_data(&routing), id_len) != 0)
        goto drop;
    if (header->incarnation.len != INC)
        goto drop;
    if (self->options.auth && !key_is_sender(self, &header_frame, header->sender_id)) {
        self->stats.forged++;
        goto drop;
    }
    uint32_t peer;
    if (peer_find(self, header->sender_id, now_ms, &peer) < 0)
        goto drop;
    self->peers[peer].last_heard_ms = now_ms;
    int admitted = peer_admit(self, &self->peers[peer], header->incarnation.data);
    if (admitted < 0)
        goto drop;
    if (admitted == 0) {
        queued = true; /* refused, not bad: answered in bus_batch_done() */
        goto drop;
    }

    *item = (bus_item_t){.peer = peer};
    zmq_msg_init(&item->body);
    if (header->kind == DISPATCH__BUS__FRAME_KIND__FRAME_KIND_PROBE) {
        item->probe = true;
        item->probe_sent = header->probe_sent;
    } else if (header->kind == DISPATCH__BUS__FRAME_KIND__FRAME_KIND_DATA && header->link_seq > 0 &&
               more_parts(self->router)) {
        item->seq = header->link_seq;
        if (zmq_msg_recv(&item->body, self->router, 0) < 0) {
            zmq_msg_close(&item->body);
            goto drop;
        }
    } else {
        zmq_msg_close(&item->body);
        goto drop;
    }
    queued = true;
    self->queue_length++;
    self->queue_bytes += zmq_msg_size(&item->body);
    self->peers[peer].queued++;

drop:
    if (!queued)
        self->stats.bad_frames++;
    discard_rest(self->router);
    if (header)
        protobuf_c_message_free_unpacked(&header->base, NULL);
    zmq_msg_close(&header_frame);
    zmq_msg_close(&routing);
    return 1;
}

static void link_rewind(bus_link_t *link)
{
    if (link->sent > link->acked) {
        link->resends += link->sent - link->acked;
        link->sent = link->acked;
    }
}

static void link_diverge(bus_link_t *link, bus_diverged_reason_t reason,
                         const unsigned char offered[INC])
{
    link_rewind(link); /* nothing more goes out, nothing in flight counts */
    bool news = link->diverged != reason || memcmp(link->offered, offered, INC) != 0;
    link->diverged = reason;
    memcpy(link->offered, offered, INC);
    if (!news)
        return;
    if (link_can_accept(link))
        link->accept_due = accept_take(link->bus, link->peer_id, true, offered);
    bus_event_t event = {.kind = BUS_EVENT_DIVERGED,
                         .reason = reason,
                         .peer_id = link->peer_id,
                         .known = link->peer_known ? link->peer_incarnation : NULL,
                         .offered = offered};
    emit(link->bus, &event);
}

static void link_on_ack(bus_link_t *link, const Dispatch__Bus__BusAck *ack, int64_t now_ms)
{
    link->last_heard_ms = now_ms;
    const unsigned char *incarnation = ack->incarnation.data;
    if (!link->peer_known) {
        /* The first receiver incarnation this link hears of is its own;
         * written in the next batch. */
        memcpy(link->peer_incarnation, incarnation, INC);
        link->peer_known = true;
    }
    if (memcmp(link->peer_incarnation, incarnation, INC) != 0) {
        link_diverge(link, BUS_DIVERGED_RECEIVER_INCARNATION, incarnation);
        return;
    }
    if (link->diverged != BUS_DIVERGED_NONE)
        return; /* only an operator ends it */
    if (ack->refused) {
        link_rewind(link);
        if (!link->refused) {
            link->refused = true;
            bus_event_t event = {.kind = BUS_EVENT_REFUSED, .peer_id = link->peer_id};
            emit(link->bus, &event);
        }
        return;
    }
    if (link->refused) {
        link->refused = false;
        bus_event_t event = {.kind = BUS_EVENT_RESUMED, .peer_id = link->peer_id};
        emit(link->bus, &event);
    }
    if (ack->acked_seq >= link->next) {
        /* The receiver applied seqs this outbox never held. */
        link_diverge(link, BUS_DIVERGED_ACKED_BEYOND, incarnation);
        return;
    }
    if (ack->acked_seq < link->acked_durable) {
        /* It no longer has what it acknowledged (a state from before
         * incarnations, or one restored from an old copy). */
        link_diverge(link, BUS_DIVERGED_ACKED_BACKWARDS, incarnation);
        return;
    }
    if (ack->acked_seq > link->acked) {
        link->acked = ack->acked_seq;
        link->last_ack_progress_ms = now_ms;
        if (link->sent < link->acked)
            link->sent = link->acked;
    }
    if (ack->acked_seq < link->acked)
        return; /* stale */
    bool lost = ack->gap || (ack->probe_reply && ack->acked_seq < ack->probe_sent);
    if (lost)
        link_rewind(link);
}

static void drain_link(bus_link_t *link, int64_t now_ms)
{
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, link->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return;
        }
        Dispatch__Bus__BusAck *ack = NULL;
        char err[128];
        if (!more_parts(link->socket) &&
            codec_decode(&dispatch__bus__bus_ack__descriptor, zmq_msg_data(&frame),
                         zmq_msg_size(&frame), BUS_ACK_MAX, (ProtobufCMessage **)&ack, err,
                         sizeof(err)) == 0 &&
            ack->incarnation.len == INC) {
            link_on_ack(link, ack, now_ms);
            protobuf_c_message_free_unpacked(&ack->base, NULL);
        } else {
            if (ack)
                protobuf_c_message_free_unpacked(&ack->base, NULL);
            link->bus->stats.bad_frames++;
            discard_rest(link->socket);
        }
        zmq_msg_close(&frame);
    }
}

static int drain_router(bus_t *self, int64_t now_ms)
{
    int rc = 0;
    while (self->router && self->queue_length < self->options.max_batch &&
           self->queue_bytes < self->options.max_batch_bytes) {
        rc = drain_one(self, now_ms);
        if (rc <= 0)
            break;
    }
    return rc < 0 ? rc : (int)self->queue_length;
}

int bus_drain(bus_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->link_count; i++)
        drain_link(self->links[i], now_ms);
    return drain_router(self, now_ms);
}

static bool polled_readable(const zmq_pollitem_t *items, size_t count, const void *socket)
{
    for (size_t i = 0; i < count; i++)
        if (items[i].socket == socket)
            return (items[i].revents & ZMQ_POLLIN) != 0;
    return true; /* not polled (opened since): try it */
}

int bus_drain_polled(bus_t *self, const zmq_pollitem_t *items, size_t count, int64_t now_ms)
{
    /* bus_pollitems() order: the listening socket, then the links. */
    size_t at = self->router ? 1 : 0;
    for (size_t i = 0; i < self->link_count; i++) {
        bus_link_t *link = self->links[i];
        bool readable = at + i < count && items[at + i].socket == link->socket
                            ? (items[at + i].revents & ZMQ_POLLIN) != 0
                            : polled_readable(items, count, link->socket);
        if (readable)
            drain_link(link, now_ms);
    }
    if (self->router && !polled_readable(items, count, self->router))
        return (int)self->queue_length;
    return drain_router(self, now_ms);
}

/* Acked entries are deleted in the next batch, or in one of their own when
 * enough piled up or the link went quiet. */
static bool link_cleanup_due(const bus_link_t *link)
{
    uint64_t acked_not_deleted = link->acked - link->acked_durable;
    return acked_not_deleted > 0 &&
           (acked_not_deleted >= link->bus->options.window / 2 || link->acked + 1 == link->next);
}

bool bus_batch_ready(const bus_t *self)
{
    for (size_t i = 0; i < self->queue_length; i++)
        if (!self->queue[i].probe)
            return true;
    for (size_t i = 0; i < self->link_count; i++) {
        const bus_link_t *link = self->links[i];
        if (link_cleanup_due(link) || link->accept_due ||
            (link->peer_known && !link->peer_recorded))
            return true;
    }
    for (size_t i = 0; i < self->peer_count; i++)
        if (self->peers[i].accept_due)
            return true;
    return false;
}

static int dead_counters_put(bus_t *self, MDB_txn *txn)
{
    int rc = self_put(txn, self, "dead.count", self->dead_count_pending);
    if (rc == 0)
        rc = self_put(txn, self, "dead.bytes", self->dead_bytes_pending);
    if (rc == 0)
        rc = self_put(txn, self, "dead.next", self->dead_next_pending);
    if (rc == 0)
        rc = self_put(txn, self, "dead.dropped",
                      self->stats.dead_dropped + self->dead_dropped_pending);
    return rc;
}

/* Keeps a refused body in bus.dead under the next dead-letter number
 * (value: id length, id, link seq, body), then drops the oldest letters
 * until the count and bytes are within bounds. */
static int keep_dead_letter(bus_t *self, MDB_txn *txn, const bus_peer_t *peer,
                            const bus_item_t *item)
{
    size_t id_len = strlen(peer->id), body_len = zmq_msg_size((zmq_msg_t *)&item->body);
    unsigned char key[8];
    store_u64_encode(++self->dead_next_pending, key);
    MDB_val k = {sizeof(key), key}, v = {1 + id_len + 8 + body_len, NULL};
    int rc = store_rc(mdb_put(txn, self->dead_db, &k, &v, MDB_RESERVE));
    if (rc < 0)
        return rc;
    unsigned char *at = v.mv_data;
    at[0] = (unsigned char)id_len;
    memcpy(at + 1, peer->id, id_len);
    store_u64_encode(item->seq, at + 1 + id_len);
    memcpy(at + 1 + id_len + 8, zmq_msg_data((zmq_msg_t *)&item->body), body_len);
    self->dead_count_pending++;
    self->dead_bytes_pending += v.mv_size;

    MDB_cursor *cursor;
    rc = store_rc(mdb_cursor_open(txn, self->dead_db, &cursor));
    if (rc < 0)
        return rc;
    while (self->dead_count_pending > self->options.dead_max_count ||
           self->dead_bytes_pending > self->options.dead_max_bytes) {
        /* Numbered letters sort before any older "sender\0seq" key. */
        rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
        if (rc != 0 || k.mv_size != 8)
            break;
        size_t size = v.mv_size;
        rc = mdb_cursor_del(cursor, 0);
        if (rc != 0)
            break;
        self->dead_count_pending--;
        self->dead_bytes_pending -= size;
        self->dead_dropped_pending++;
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_rc(rc);
    return dead_counters_put(self, txn);
}

static int apply_item(bus_t *self, MDB_txn *txn, bus_item_t *item)
{
    bus_peer_t *peer = &self->peers[item->peer];
    if (item->probe)
        return 0; /* answered in bus_batch_done(), with what is committed */
    peer->ack_due = true;
    if (item->seq <= peer->last_pending) {
        self->batch_stats.duplicates++;
        return 0;
    }
    if (item->seq > peer->last_pending + 1) {
        self->batch_stats.gaps++;
        if (!(peer->gap_reported && peer->gap_reported_last == peer->last_pending))
            peer->gap = true;
        return 0;
    }
    int rc = self->apply ? self->apply(self->app, txn, peer->id, item->seq,
                                       zmq_msg_data(&item->body), zmq_msg_size(&item->body))
                         : BUS_REJECTED;
    if (rc == BUS_REJECTED) {
        self->batch_stats.rejected++;
        rc = keep_dead_letter(self, txn, peer, item);
    } else if (rc == 0) {
        self->batch_stats.applied++;
    }
    if (rc < 0)
        return rc;
    peer->last_pending = item->seq;
    return 0;
}

static int del_if_there(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t len)
{
    MDB_val k = {len, (void *)key};
    int rc = mdb_del(txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

/* Writes that a sender is known under its incarnation with last_seq last. */
static int peer_record(bus_t *self, MDB_txn *txn, const char *id,
                       const unsigned char incarnation[INC], uint64_t last)
{
    unsigned char key[BUS_ID_MAX + 1 + INC];
    size_t len = last_seq_key(id, incarnation, key);
    int rc = store_put_u64(txn, self->last_seq_db, key, len, last);
    if (rc == 0)
        rc = put_incarnation(txn, self->senders_db, id, strlen(id), incarnation);
    MDB_val k = {INC, (void *)incarnation}, v = {strlen(id), (void *)id};
    if (rc == 0)
        rc = store_rc(mdb_put(txn, self->incarnations_db, &k, &v, 0));
    return rc;
}

static bus_peer_t *peer_in_table(bus_t *self, const char *id)
{
    for (size_t i = 0; i < self->peer_count; i++)
        if (strcmp(self->peers[i].id, id) == 0)
            return &self->peers[i];
    return NULL;
}

/* The operator accepted the incarnation a sender offers: a renamed state
 * keeps its last_seq under the new name, a new state starts at 0. */
static int peer_accept(bus_t *self, MDB_txn *txn, bus_peer_t *peer)
{
    unsigned char key[BUS_ID_MAX + 1 + INC];
    size_t len;
    uint64_t last = 0;
    int rc = 0;
    if (peer->renamed_from[0]) {
        bus_peer_t *old = peer_in_table(self, peer->renamed_from);
        if (old && old->queued > 0)
            return 0; /* its messages of this batch go first; next batch */
        len = last_seq_key(peer->renamed_from, peer->offered, key);
        rc = store_get_u64(txn, self->last_seq_db, key, len, 0, &last);
        if (rc == 0)
            rc = del_if_there(txn, self->last_seq_db, key, len);
        if (rc == 0)
            rc =
                del_if_there(txn, self->senders_db, peer->renamed_from, strlen(peer->renamed_from));
    }
    if (rc == 0 && peer->recorded) {
        len = last_seq_key(peer->id, peer->incarnation, key);
        rc = del_if_there(txn, self->last_seq_db, key, len);
        if (rc == 0)
            rc = del_if_there(txn, self->incarnations_db, peer->incarnation, INC);
    }
    if (rc == 0)
        rc = peer_record(self, txn, peer->id, peer->offered, last);
    if (rc == 0) {
        peer->accepted_pending = true;
        peer->accepted_last = last;
    }
    return rc;
}

static int link_delete_acked(bus_link_t *link, MDB_txn *txn)
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, link->outbox, &cursor));
    if (rc < 0)
        return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST)) == 0 &&
           store_u64_decode(k.mv_data) <= link->acked) {
        rc = mdb_cursor_del(cursor, 0);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_rc(rc);
    char key[BUS_ID_MAX + 16];
    size_t key_len = link_meta_key(link->peer_id, key, sizeof(key));
    rc = store_put_u64(txn, link->bus->links_db, key, key_len, link->acked);
    if (rc == 0)
        link->acked_durable_pending = link->acked;
    return rc;
}

/* The operator accepted the receiver's new incarnation: what the old one
 * acknowledged is deleted, what it did not is renumbered from seq 1 (the
 * new state has applied none of it), in order, in place. */
static int link_accept(bus_link_t *link, MDB_txn *txn)
{
    int rc = link->acked > link->acked_durable ? link_delete_acked(link, txn) : 0;
    uint64_t shift = link->acked;
    unsigned char key[8];
    void *copy = NULL;
    for (uint64_t seq = shift + 1; rc == 0 && shift > 0 && seq < link->next_pending; seq++) {
        store_u64_encode(seq, key);
        MDB_val k = {sizeof(key), key}, v;
        rc = store_rc(mdb_get(txn, link->outbox, &k, &v));
        if (rc < 0)
            break;
        void *grown = realloc(copy, v.mv_size ? v.mv_size : 1);
        if (!grown) {
            rc = -ENOMEM;
            break;
        }
        copy = grown;
        memcpy(copy, v.mv_data, v.mv_size);
        size_t size = v.mv_size;
        rc = store_rc(mdb_del(txn, link->outbox, &k, NULL));
        store_u64_encode(seq - shift, key);
        MDB_val moved = {size, copy};
        if (rc == 0)
            rc = store_rc(mdb_put(txn, link->outbox, &k, &moved, 0));
    }
    free(copy);
    char meta[BUS_ID_MAX + 16];
    size_t meta_len = link_meta_key(link->peer_id, meta, sizeof(meta));
    if (rc == 0)
        rc = store_put_u64(txn, link->bus->links_db, meta, meta_len, 0);
    meta_len = link_incarnation_key(link->peer_id, meta, sizeof(meta));
    if (rc == 0)
        rc = put_incarnation(txn, link->bus->links_db, meta, meta_len, link->offered);
    if (rc < 0)
        return rc;
    link->next_pending -= shift;
    link->acked_durable_pending = 0;
    link->peer_recorded_pending = true;
    link->accepted_pending = true;
    return 0;
}

int bus_batch_apply(bus_t *self, MDB_txn *txn)
{
    /* Restartable: everything starts again from the committed state. */
    memset(&self->batch_stats, 0, sizeof(self->batch_stats));
    self->dead_count_pending = self->dead_count;
    self->dead_bytes_pending = self->dead_bytes;
    self->dead_next_pending = self->dead_next;
    self->dead_dropped_pending = 0;
    for (size_t i = 0; i < self->peer_count; i++) {
        bus_peer_t *peer = &self->peers[i];
        peer->last_pending = peer->last;
        peer->recorded_pending = peer->recorded;
        peer->ack_due = peer->gap = peer->probe_reply = peer->accepted_pending = false;
    }
    for (size_t i = 0; i < self->link_count; i++) {
        bus_link_t *link = self->links[i];
        link->next_pending = link->next;
        link->acked_durable_pending = link->acked_durable;
        link->peer_recorded_pending = link->peer_recorded;
        link->accepted_pending = false;
    }

    /* Operators' acceptances first: this batch's messages see their effect. */
    for (size_t i = 0; i < self->peer_count; i++) {
        if (self->peers[i].accept_due) {
            int rc = peer_accept(self, txn, &self->peers[i]);
            if (rc < 0)
                return rc;
        }
    }
    for (size_t i = 0; i < self->link_count; i++) {
        bus_link_t *link = self->links[i];
        int rc = 0;
        if (link->accept_due && link_can_accept(link)) {
            rc = link_accept(link, txn);
        } else if (link->peer_known && !link->peer_recorded) {
            char key[BUS_ID_MAX + 16];
            size_t key_len = link_incarnation_key(link->peer_id, key, sizeof(key));
            rc = put_incarnation(txn, self->links_db, key, key_len, link->peer_incarnation);
            link->peer_recorded_pending = rc == 0;
        }
        if (rc < 0)
            return rc;
    }

    for (size_t i = 0; i < self->queue_length; i++) {
        int rc = apply_item(self, txn, &self->queue[i]);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < self->peer_count; i++) {
        bus_peer_t *peer = &self->peers[i];
        if (peer->last_pending == peer->last)
            continue;
        int rc;
        if (peer->recorded) {
            unsigned char key[BUS_ID_MAX + 1 + INC];
            size_t len = last_seq_key(peer->id, peer->incarnation, key);
            rc = store_put_u64(txn, self->last_seq_db, key, len, peer->last_pending);
        } else {
            rc = peer_record(self, txn, peer->id, peer->incarnation, peer->last_pending);
        }
        if (rc < 0)
            return rc;
        peer->recorded_pending = true;
    }
    for (size_t i = 0; i < self->link_count; i++) {
        bus_link_t *link = self->links[i];
        if (link->acked > link->acked_durable && !link->accepted_pending &&
            link->diverged == BUS_DIVERGED_NONE) {
            int rc = link_delete_acked(link, txn);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static void send_ack(bus_t *self, bus_peer_t *peer, bool refused)
{
    Dispatch__Bus__BusAck ack = DISPATCH__BUS__BUS_ACK__INIT;
    ack.incarnation = (ProtobufCBinaryData){INC, self->incarnation};
    ack.refused = refused;
    if (!refused) {
        ack.acked_seq = peer->last;
        ack.gap = peer->gap;
        ack.probe_reply = peer->probe_reply;
        ack.probe_sent = peer->probe_sent;
    }
    unsigned char buf[BUS_ACK_MAX];
    size_t len = dispatch__bus__bus_ack__pack(&ack, buf);
    /* An unroutable ack (sender gone) is dropped; the sender probes again. */
    if (zmq_send(self->router, peer->id, strlen(peer->id), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(self->router, buf, len, ZMQ_DONTWAIT);
    if (!refused && peer->gap) {
        peer->gap_reported = true;
        peer->gap_reported_last = peer->last;
    }
}

static void peer_accepted(bus_t *self, bus_peer_t *peer)
{
    bus_event_t event = {.kind = BUS_EVENT_ACCEPTED,
                         .reason = peer->diverged,
                         .peer_id = peer->id,
                         .renamed_from = peer->renamed_from[0] ? peer->renamed_from : NULL,
                         .known = peer->recorded ? peer->incarnation : NULL,
                         .offered = peer->offered};
    emit(self, &event);
    bus_peer_t *old = peer->renamed_from[0] ? peer_in_table(self, peer->renamed_from) : NULL;
    if (old) { /* its records went to the new name: it is unknown again */
        old->adopted = old->recorded = old->recorded_pending = false;
        old->last = old->last_pending = 0;
        old->gap_reported = false;
    }
    memcpy(peer->incarnation, peer->offered, INC);
    peer->adopted = peer->recorded = peer->recorded_pending = true;
    peer->last = peer->last_pending = peer->accepted_last;
    peer->diverged = BUS_DIVERGED_NONE;
    peer->renamed_from[0] = '\0';
    peer->accept_due = peer->accepted_pending = peer->refuse_due = false;
    peer->gap_reported = false;
}

static void link_accepted(bus_link_t *link)
{
    bus_event_t event = {.kind = BUS_EVENT_ACCEPTED,
                         .reason = link->diverged,
                         .peer_id = link->peer_id,
                         .known = link->peer_known ? link->peer_incarnation : NULL,
                         .offered = link->offered};
    emit(link->bus, &event);
    memcpy(link->peer_incarnation, link->offered, INC);
    link->peer_known = link->peer_recorded = true;
    link->acked = link->sent = 0;
    link->diverged = BUS_DIVERGED_NONE;
    link->accept_due = link->accepted_pending = false;
    link->last_ack_progress_ms = bus_now_ms();
}

void bus_batch_done(bus_t *self, int rc)
{
    if (rc == 0) {
        for (size_t i = 0; i < self->link_count; i++) {
            bus_link_t *link = self->links[i];
            link->next = link->next_pending;
            link->acked_durable = link->acked_durable_pending;
            link->peer_recorded = link->peer_recorded_pending;
            if (link->accepted_pending)
                link_accepted(link);
        }
        self->stats.applied += self->batch_stats.applied;
        if (self->batch_stats.applied > 0) {
            unsigned bucket = 0;
            for (uint64_t n = self->batch_stats.applied; n > 1 && bucket + 1 < BUS_BATCH_BUCKETS;
                 n >>= 1)
                bucket++;
            self->stats.batches[bucket]++;
        }
        self->stats.duplicates += self->batch_stats.duplicates;
        self->stats.gaps += self->batch_stats.gaps;
        self->stats.rejected += self->batch_stats.rejected;
        self->dead_count = self->dead_count_pending;
        self->dead_bytes = self->dead_bytes_pending;
        self->dead_next = self->dead_next_pending;
        if (self->dead_dropped_pending) {
            self->stats.dead_dropped += self->dead_dropped_pending;
            bus_event_t event = {.kind = BUS_EVENT_DEAD_DROPPED,
                                 .count = self->dead_dropped_pending};
            emit(self, &event);
        }
    }
    memset(&self->batch_stats, 0, sizeof(self->batch_stats));
    self->dead_count_pending = self->dead_count;
    self->dead_bytes_pending = self->dead_bytes;
    self->dead_next_pending = self->dead_next;
    self->dead_dropped_pending = 0;
    /* A probe is answered even when no transaction ran: everything it
     * reports (last) is committed. */
    for (size_t i = 0; i < self->queue_length; i++) {
        bus_item_t *item = &self->queue[i];
        if (item->probe) {
            bus_peer_t *peer = &self->peers[item->peer];
            peer->ack_due = peer->probe_reply = true;
            peer->probe_sent = item->probe_sent;
        }
    }
    for (size_t i = 0; i < self->peer_count; i++) {
        bus_peer_t *peer = &self->peers[i];
        if (rc == 0) {
            peer->last = peer->last_pending;
            peer->recorded = peer->recorded_pending;
            if (peer->accepted_pending)
                peer_accepted(self, peer);
        }
        if (peer->refuse_due)
            send_ack(self, peer, true);
        else if (peer->ack_due && (rc == 0 || peer->probe_reply))
            send_ack(self, peer, false);
        peer->last_pending = peer->last;
        peer->recorded_pending = peer->recorded;
        peer->ack_due = peer->gap = peer->probe_reply = peer->refuse_due = false;
        peer->accepted_pending = false;
        peer->queued = 0;
    }
    for (size_t i = 0; i < self->link_count; i++) {
        bus_link_t *link = self->links[i];
        link->next_pending = link->next;
        link->acked_durable_pending = link->acked_durable;
        link->peer_recorded_pending = link->peer_recorded;
        link->accepted_pending = false;
    }
    /* On failure nothing was acknowledged: the senders resend. */
    for (size_t i = 0; i < self->queue_length; i++)
        zmq_msg_close(&self->queue[i].body);
    self->queue_length = 0;
    self->queue_bytes = 0;
}

static int send_header(bus_link_t *link, const Dispatch__Bus__BusHeader *header, int flags)
{
    unsigned char buf[BUS_HEADER_MAX];
    size_t len = dispatch__bus__bus_header__pack(header, buf);
    return zmq_send(link->socket, buf, len, flags | ZMQ_DONTWAIT) < 0 ? -errno : 0;
}

static void link_probe(bus_link_t *link, int64_t now_ms)
{
    Dispatch__Bus__BusHeader header = DISPATCH__BUS__BUS_HEADER__INIT;
    header.kind = DISPATCH__BUS__FRAME_KIND__FRAME_KIND_PROBE;
    header.sender_id = link->bus->self_id;
    header.incarnation = (ProtobufCBinaryData){INC, link->bus->incarnation};
    header.probe_sent = link->sent;
    if (send_header(link, &header, 0) == 0)
        link->last_probe_ms = link->last_send_ms = now_ms;
}

/* Streams committed outbox entries after link->sent, within the window. */
static int link_stream(bus_link_t *link, MDB_txn *txn, int64_t now_ms)
{
    if (!link_can_stream(link))
        return 0;
    if (link->sent == link->acked)
        link->last_ack_progress_ms = now_ms; /* the ack clock starts now */
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, link->outbox, &cursor));
    if (rc < 0)
        return rc;
    unsigned char key[8];
    store_u64_encode(link->sent + 1, key);
    MDB_val k = {sizeof(key), key}, v;
    Dispatch__Bus__BusHeader header = DISPATCH__BUS__BUS_HEADER__INIT;
    header.kind = DISPATCH__BUS__FRAME_KIND__FRAME_KIND_DATA;
    header.sender_id = link->bus->self_id;
    header.incarnation = (ProtobufCBinaryData){INC, link->bus->incarnation};
    int found = mdb_cursor_get(cursor, &k, &v, MDB_SET_KEY);
    while (found == 0 && link_can_stream(link)) {
        header.link_seq = store_u64_decode(k.mv_data);
        if (header.link_seq != link->sent + 1) {
            rc = -EPROTO; /* a hole in the outbox: the invariant is broken */
            break;
        }
        if (send_header(link, &header, ZMQ_SNDMORE) < 0)
            break; /* high-water mark: later */
        zmq_send(link->socket, v.mv_data, v.mv_size, 0);
        link->sent = header.link_seq;
        link->last_send_ms = now_ms;
        found = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    if (found != 0 && found != MDB_NOTFOUND && rc == 0)
        rc = store_rc(found);
    mdb_cursor_close(cursor);
    return rc;
}

/* A link silent for dead_after_ms (and as long since its socket was
 * made) gets a new socket: a connection that half died, or a peer that
 * came back where the old socket does not see it, is dropped for a fresh
 * one. Whatever was in flight is sent again. */
static void link_reconnect_if_dead(bus_link_t *link, int64_t now_ms)
{
    int dead_after = link->bus->options.dead_after_ms;
    if (now_ms - link->last_heard_ms < dead_after || now_ms - link->socket_ms < dead_after)
        return;
    void *socket;
    link->socket_ms = now_ms;
    if (link_socket_open(link, &socket) < 0)
        return; /* tried again after dead_after_ms */
    zmq_close(link->socket);
    link->socket = socket;
    link->reconnects++;
    link_rewind(link);
    bus_event_t event = {.kind = BUS_EVENT_RECONNECTED, .peer_id = link->peer_id};
    emit(link->bus, &event);
}

int bus_link_retarget(bus_link_t *link, const char *endpoint)
{
    char *copy = strdup(endpoint);
    if (!copy)
        return -ENOMEM;
    char *old = link->endpoint;
    link->endpoint = copy;
    void *socket;
    int rc = link_socket_open(link, &socket);
    if (rc < 0) {
        link->endpoint = old;
        free(copy);
        return rc;
    }
    free(old);
    zmq_close(link->socket);
    link->socket = socket;
    link->socket_ms = bus_now_ms();
    link->reconnects++;
    link_rewind(link);
    return 0;
}

const char *bus_link_endpoint(const bus_link_t *link)
{
    return link->endpoint;
}

int bus_tick(bus_t *self, int64_t now_ms)
{
    MDB_txn *txn = NULL;
    int rc = 0;
    for (size_t i = 0; i < self->link_count; i++) {
        bus_link_t *link = self->links[i];
        link_reconnect_if_dead(link, now_ms);
        bool stalled = link->sent > link->acked &&
                       now_ms - link->last_ack_progress_ms >= self->options.ack_timeout_ms &&
                       now_ms - link->last_probe_ms >= self->options.ack_timeout_ms;
        bool idle = now_ms - link->last_probe_ms >= self->options.heartbeat_ms &&
                    now_ms - link->last_send_ms >= self->options.heartbeat_ms;
        if (stalled || idle)
            link_probe(link, now_ms);
        if (!link_can_stream(link))
            continue;
        if (!txn && (rc = store_read_begin(self->store, &txn)) < 0)
            return rc;
        rc = link_stream(link, txn, now_ms);
        if (rc < 0)
            break;
    }
    store_read_end(&txn);
    return rc;
}

bool bus_idle(const bus_t *self)
{
    for (size_t i = 0; i < self->link_count; i++)
        if (self->links[i]->acked + 1 < self->links[i]->next)
            return false;
    return true;
}

/* ------------------------------------------------------------ checks */

/* The outbox holds exactly (acked_durable, next): counted in O(1), then
 * its ends. */
static int check_outbox(const bus_link_t *link, MDB_txn *txn, char *why, size_t why_len)
{
    MDB_stat st;
    int rc = store_rc(mdb_stat(txn, link->outbox, &st));
    if (rc < 0) {
        snprintf(why, why_len, "link to %s: reading its outbox: %s", link->peer_id,
                 store_strerror(rc));
        return rc;
    }
    uint64_t expected = link->next - 1 - link->acked_durable;
    if (st.ms_entries != expected) {
        snprintf(why, why_len,
                 "link to %s: the outbox holds %zu entries where seqs %llu..%llu make %llu: "
                 "a hole or a stray entry",
                 link->peer_id, (size_t)st.ms_entries, (unsigned long long)link->acked_durable + 1,
                 (unsigned long long)link->next - 1, (unsigned long long)expected);
        return -EPROTO;
    }
    if (expected == 0)
        return 0;
    MDB_cursor *cursor;
    rc = store_rc(mdb_cursor_open(txn, link->outbox, &cursor));
    if (rc < 0) {
        snprintf(why, why_len, "link to %s: reading its outbox: %s", link->peer_id,
                 store_strerror(rc));
        return rc;
    }
    MDB_val first, last, v;
    int found = mdb_cursor_get(cursor, &first, &v, MDB_FIRST);
    if (found == 0)
        found = mdb_cursor_get(cursor, &last, &v, MDB_LAST);
    mdb_cursor_close(cursor);
    if (found != 0) {
        snprintf(why, why_len, "link to %s: reading its outbox: %s", link->peer_id,
                 store_strerror(store_rc(found)));
        return store_rc(found);
    }
    if (first.mv_size != 8 || last.mv_size != 8 ||
        store_u64_decode(first.mv_data) != link->acked_durable + 1 ||
        store_u64_decode(last.mv_data) != link->next - 1) {
        snprintf(why, why_len, "link to %s: the outbox does not run from seq %llu to %llu",
                 link->peer_id, (unsigned long long)link->acked_durable + 1,
                 (unsigned long long)link->next - 1);
        return -EPROTO;
    }
    return 0;
}

static int check_link(const bus_t *self, const bus_link_t *link, MDB_txn *txn, char *why,
                      size_t why_len)
{
    if (link->next_pending != link->next || link->acked_durable_pending != link->acked_durable) {
        snprintf(why, why_len, "link to %s: a batch's positions are still pending", link->peer_id);
        return -EPROTO;
    }
    if (!(link->acked_durable <= link->acked && link->acked <= link->sent &&
          link->sent < link->next)) {
        snprintf(why, why_len,
                 "link to %s: positions out of order: acked_durable %llu, acked %llu, sent %llu, "
                 "next %llu",
                 link->peer_id, (unsigned long long)link->acked_durable,
                 (unsigned long long)link->acked, (unsigned long long)link->sent,
                 (unsigned long long)link->next);
        return -EPROTO;
    }
    char key[BUS_ID_MAX + 16];
    size_t key_len = link_meta_key(link->peer_id, key, sizeof(key));
    uint64_t stored;
    int rc = store_get_u64(txn, self->links_db, key, key_len, 0, &stored);
    if (rc < 0) {
        snprintf(why, why_len, "link to %s: reading bus.links: %s", link->peer_id,
                 store_strerror(rc));
        return rc;
    }
    if (stored != link->acked_durable) {
        snprintf(
            why, why_len, "link to %s: the acked position is %llu in bus.links but %llu in memory",
            link->peer_id, (unsigned long long)stored, (unsigned long long)link->acked_durable);
        return -EPROTO;
    }
    if ((link->diverged != BUS_DIVERGED_NONE || link->refused) && link->sent != link->acked) {
        snprintf(why, why_len, "link to %s: diverged or refused, yet seqs %llu..%llu are in flight",
                 link->peer_id, (unsigned long long)link->acked + 1,
                 (unsigned long long)link->sent);
        return -EPROTO;
    }
    unsigned char incarnation[INC];
    key_len = link_incarnation_key(link->peer_id, key, sizeof(key));
    rc = get_incarnation(txn, self->links_db, key, key_len, incarnation);
    if (rc < 0) {
        snprintf(why, why_len, "link to %s: reading its receiver's incarnation: %s", link->peer_id,
                 store_strerror(rc));
        return rc;
    }
    bool same =
        rc == 1 && link->peer_known && memcmp(incarnation, link->peer_incarnation, INC) == 0;
    if (rc == 1 ? !(same && link->peer_recorded) : link->peer_recorded) {
        snprintf(why, why_len,
                 "link to %s: the receiver's incarnation in bus.links is not the one in memory",
                 link->peer_id);
        return -EPROTO;
    }
    return check_outbox(link, txn, why, why_len);
}

static int check_peer(const bus_t *self, const bus_peer_t *peer, MDB_txn *txn, char *why,
                      size_t why_len)
{
    if (peer->last_pending != peer->last || peer->recorded_pending != peer->recorded) {
        snprintf(why, why_len, "sender %s: a batch's last_seq is still pending", peer->id);
        return -EPROTO;
    }
    if (peer->queued || peer->refuse_due || peer->accepted_pending) {
        snprintf(why, why_len, "sender %s: still pinned by a batch", peer->id);
        return -EPROTO;
    }
    unsigned char incarnation[INC];
    int rc = get_incarnation(txn, self->senders_db, peer->id, strlen(peer->id), incarnation);
    if (rc < 0) {
        snprintf(why, why_len, "sender %s: reading bus.senders: %s", peer->id, store_strerror(rc));
        return rc;
    }
    if (rc == 0) {
        if (peer->recorded || peer->last != 0) {
            snprintf(why, why_len, "sender %s: not in bus.senders, yet last_seq is %llu in memory",
                     peer->id, (unsigned long long)peer->last);
            return -EPROTO;
        }
        return 0;
    }
    if (!peer->recorded || memcmp(incarnation, peer->incarnation, INC) != 0) {
        snprintf(why, why_len, "sender %s: bus.senders names another incarnation than memory",
                 peer->id);
        return -EPROTO;
    }
    unsigned char key[BUS_ID_MAX + 1 + INC];
    size_t len = last_seq_key(peer->id, peer->incarnation, key);
    uint64_t stored;
    rc = store_get_u64(txn, self->last_seq_db, key, len, 0, &stored);
    if (rc < 0) {
        snprintf(why, why_len, "sender %s: reading bus.last_seq: %s", peer->id, store_strerror(rc));
        return rc;
    }
    if (stored != peer->last) {
        snprintf(why, why_len, "sender %s: last_seq is %llu in the store but %llu in memory",
                 peer->id, (unsigned long long)stored, (unsigned long long)peer->last);
        return -EPROTO;
    }
    return 0;
}

/* bus.dead: within its bounds, its counters those in memory. */
static int check_dead(const bus_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    uint64_t count, bytes, next;
    int rc = self_get(txn, self, "dead.count", &count);
    if (rc == 0)
        rc = self_get(txn, self, "dead.bytes", &bytes);
    if (rc == 0)
        rc = self_get(txn, self, "dead.next", &next);
    if (rc < 0) {
        snprintf(why, why_len, "bus.dead: reading its counters: %s", store_strerror(rc));
        return rc;
    }
    if (count != self->dead_count || bytes != self->dead_bytes || next != self->dead_next) {
        snprintf(why, why_len,
                 "bus.dead: %llu letters, %llu bytes in the store but %llu, %llu in memory",
                 (unsigned long long)count, (unsigned long long)bytes,
                 (unsigned long long)self->dead_count, (unsigned long long)self->dead_bytes);
        return -EPROTO;
    }
    if (count > self->options.dead_max_count || bytes > self->options.dead_max_bytes ||
        count > next) {
        snprintf(why, why_len, "bus.dead: %llu letters, %llu bytes: past its bounds",
                 (unsigned long long)count, (unsigned long long)bytes);
        return -EPROTO;
    }
    return 0;
}

int bus_check(const bus_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    if (self->queue_length) {
        snprintf(why, why_len, "the batch queue still holds %zu messages", self->queue_length);
        return -EPROTO;
    }
    if (self->queue_bytes || self->peer_count > BUS_MAX_PEERS) {
        snprintf(why, why_len, "%zu senders in a table of %d, %llu bytes queued", self->peer_count,
                 BUS_MAX_PEERS, (unsigned long long)self->queue_bytes);
        return -EPROTO;
    }
    int rc = check_dead(self, txn, why, why_len);
    for (size_t i = 0; rc == 0 && i < self->link_count; i++)
        rc = check_link(self, self->links[i], txn, why, why_len);
    for (size_t i = 0; rc == 0 && i < self->peer_count; i++)
        rc = check_peer(self, &self->peers[i], txn, why, why_len);
    return rc;
}

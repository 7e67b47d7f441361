#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.pb-c.h"
#include "codec.h"

#define BUS_ID_MAX 63
#define BUS_MAX_PEERS 1024
#define BUS_HEADER_MAX 256
#define BUS_ACK_MAX 128

struct bus_link {
    bus_t *bus;
    char *peer_id;
    void *socket;
    MDB_dbi outbox;
    uint64_t next, next_pending;                   /* seq of the next bus_send() */
    uint64_t acked_durable, acked_durable_pending; /* entries <= this are deleted */
    uint64_t acked;                                /* receiver's cumulative ack */
    uint64_t sent;                                 /* highest seq put on the socket */
    uint64_t resends;
    int64_t last_heard_ms, last_ack_progress_ms, last_probe_ms, last_send_ms;
    bool diverged;
};

/* A sender whose messages this instance receives. */
typedef struct bus_peer {
    char id[BUS_ID_MAX + 1];
    uint64_t last, last_pending; /* last applied seq: committed / in this batch */
    bool ack_due, gap, probe_reply;
    uint64_t probe_sent;
    bool gap_reported; /* a gap at gap_reported_last was already reported */
    uint64_t gap_reported_last;
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
    MDB_dbi links_db, last_seq_db, dead_db;

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

    bus_stats_t stats, batch_stats;
};

int64_t bus_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

    int rc = -ENOMEM;
    self->self_id = strdup(self_id);
    self->queue = calloc(o->max_batch, sizeof(*self->queue));
    self->peers = calloc(BUS_MAX_PEERS, sizeof(*self->peers));
    if (!self->self_id || !self->queue || !self->peers)
        goto fail;
    rc = store_dbi(store, "bus.links", 0, &self->links_db);
    if (rc == 0)
        rc = store_dbi(store, "bus.last_seq", 0, &self->last_seq_db);
    if (rc == 0)
        rc = store_dbi(store, "bus.dead", 0, &self->dead_db);
    if (rc < 0)
        goto fail;
    *ret = self;
    return 0;

fail:
    bus_destroy(&self);
    return rc;
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
    if (rc == 0)
        rc = set_int(router, ZMQ_RCVHWM, 0);
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

/* Key of a link's durable acked position in bus.links. */
static size_t link_meta_key(const char *peer_id, char *key, size_t len)
{
    return (size_t)snprintf(key, len, "%s.acked", peer_id);
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
    link->acked = link->sent = link->acked_durable;
    return rc;
}

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
    if (!link->peer_id) {
        free(link);
        return -ENOMEM;
    }

    char name[BUS_ID_MAX + 16];
    snprintf(name, sizeof(name), "outbox.%s", peer_id);
    int rc = store_dbi(self->store, name, 0, &link->outbox);
    if (rc == 0)
        rc = link_restore(link);
    if (rc < 0)
        goto fail;

    link->socket = zmq_socket(self->context, ZMQ_DEALER);
    if (!link->socket) {
        rc = -errno;
        goto fail;
    }
    /* CURVE's handshake commands (WELCOME, READY with metadata) must pass
     * this limit too; acks are still held to BUS_ACK_MAX when decoded. */
    int64_t max_ack = self->options.auth ? 1024 : BUS_ACK_MAX;
    rc = set_int(link->socket, ZMQ_LINGER, 0);
    if (rc == 0 &&
        zmq_setsockopt(link->socket, ZMQ_ROUTING_ID, self->self_id, strlen(self->self_id)) < 0)
        rc = -errno;
    if (rc == 0)
        rc = set_int(link->socket, ZMQ_SNDHWM, (int)self->options.window + 1024);
    if (rc == 0)
        rc = set_int(link->socket, ZMQ_RECONNECT_IVL, 50);
    if (rc == 0)
        rc = set_int(link->socket, ZMQ_RECONNECT_IVL_MAX, 1000);
    if (rc == 0 && zmq_setsockopt(link->socket, ZMQ_MAXMSGSIZE, &max_ack, sizeof(max_ack)) < 0)
        rc = -errno;
    auth_client_t keys;
    if (rc == 0 && self->options.auth &&
        (rc = auth_peer_keys(self->options.auth, peer_id, &keys)) == 0)
        rc = auth_client_apply(link->socket, &keys);
    if (rc == 0 && zmq_connect(link->socket, endpoint) < 0)
        rc = -errno;
    if (rc < 0)
        goto fail;

    int64_t now = bus_now_ms();
    link->last_heard_ms = link->last_ack_progress_ms = now;
    link->last_probe_ms = link->last_send_ms = now - self->options.heartbeat_ms;
    self->links[self->link_count++] = link;
    if (ret)
        *ret = link;
    return 0;

fail:
    if (link->socket)
        zmq_close(link->socket);
    free(link->peer_id);
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
        .up = now - link->last_heard_ms < link->bus->options.dead_after_ms,
        .diverged = link->diverged,
    };
}

void bus_stats(const bus_t *self, bus_stats_t *stats)
{
    *stats = self->stats;
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
    return link->sent + 1 < link->next && link->sent - link->acked < link->bus->options.window;
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
        if (due - now_ms < timeout)
            timeout = due - now_ms;
    }
    return timeout < 0 ? 0 : (int)timeout;
}

/* Finds the peer of a sender, loading its last applied seq on first sight. */
static int peer_find(bus_t *self, const char *id, uint32_t *index)
{
    for (size_t i = 0; i < self->peer_count; i++) {
        if (strcmp(self->peers[i].id, id) == 0) {
            *index = (uint32_t)i;
            return 0;
        }
    }
    if (self->peer_count == BUS_MAX_PEERS)
        return -ENOSPC;
    bus_peer_t *peer = &self->peers[self->peer_count];
    memset(peer, 0, sizeof(*peer));
    snprintf(peer->id, sizeof(peer->id), "%s", id);
    MDB_txn *txn;
    int rc = store_read_begin(self->store, &txn);
    if (rc < 0)
        return rc;
    rc = store_get_u64(txn, self->last_seq_db, id, strlen(id), 0, &peer->last);
    store_read_end(&txn);
    if (rc < 0)
        return rc;
    peer->last_pending = peer->last;
    *index = (uint32_t)self->peer_count++;
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

/* Reads one message from the listening socket into the batch queue.
 * Returns 1 when something was read, 0 when nothing is waiting. */
static int drain_one(bus_t *self)
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
    uint32_t peer;
    if (peer_find(self, header->sender_id, &peer) < 0)
        goto drop;

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

static void link_on_ack(bus_link_t *link, const Dispatch__Bus__BusAck *ack, int64_t now_ms)
{
    link->last_heard_ms = now_ms;
    if (ack->acked_seq >= link->next) {
        /* The receiver applied seqs this outbox never held: its state or
         * ours was replaced. Nothing is resent over it; an operator must look. */
        link->diverged = true;
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
                         sizeof(err)) == 0) {
            link_on_ack(link, ack, now_ms);
            protobuf_c_message_free_unpacked(&ack->base, NULL);
        } else {
            link->bus->stats.bad_frames++;
            discard_rest(link->socket);
        }
        zmq_msg_close(&frame);
    }
}

int bus_drain(bus_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->link_count; i++)
        drain_link(self->links[i], now_ms);
    int rc = 0;
    while (self->router && self->queue_length < self->options.max_batch) {
        rc = drain_one(self);
        if (rc <= 0)
            break;
    }
    return rc < 0 ? rc : (int)self->queue_length;
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
    for (size_t i = 0; i < self->link_count; i++)
        if (link_cleanup_due(self->links[i]))
            return true;
    return false;
}

static int keep_dead_letter(bus_t *self, MDB_txn *txn, const bus_peer_t *peer,
                            const bus_item_t *item)
{
    char key[BUS_ID_MAX + 16];
    size_t len = strlen(peer->id);
    memcpy(key, peer->id, len);
    key[len] = '\0';
    store_u64_encode(item->seq, (unsigned char *)key + len + 1);
    MDB_val k = {len + 9, key};
    MDB_val v = {zmq_msg_size((zmq_msg_t *)&item->body), zmq_msg_data((zmq_msg_t *)&item->body)};
    return store_rc(mdb_put(txn, self->dead_db, &k, &v, 0));
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

int bus_batch_apply(bus_t *self, MDB_txn *txn)
{
    /* Restartable: everything starts again from the committed state. */
    memset(&self->batch_stats, 0, sizeof(self->batch_stats));
    for (size_t i = 0; i < self->peer_count; i++) {
        bus_peer_t *peer = &self->peers[i];
        peer->last_pending = peer->last;
        peer->ack_due = peer->gap = peer->probe_reply = false;
    }
    for (size_t i = 0; i < self->link_count; i++) {
        self->links[i]->next_pending = self->links[i]->next;
        self->links[i]->acked_durable_pending = self->links[i]->acked_durable;
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
        int rc =
            store_put_u64(txn, self->last_seq_db, peer->id, strlen(peer->id), peer->last_pending);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < self->link_count; i++) {
        bus_link_t *link = self->links[i];
        if (link->acked > link->acked_durable) {
            int rc = link_delete_acked(link, txn);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static void send_ack(bus_t *self, bus_peer_t *peer)
{
    Dispatch__Bus__BusAck ack = DISPATCH__BUS__BUS_ACK__INIT;
    ack.acked_seq = peer->last;
    ack.gap = peer->gap;
    ack.probe_reply = peer->probe_reply;
    ack.probe_sent = peer->probe_sent;
    unsigned char buf[BUS_ACK_MAX];
    size_t len = dispatch__bus__bus_ack__pack(&ack, buf);
    /* An unroutable ack (sender gone) is dropped; the sender probes again. */
    if (zmq_send(self->router, peer->id, strlen(peer->id), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(self->router, buf, len, ZMQ_DONTWAIT);
    if (peer->gap) {
        peer->gap_reported = true;
        peer->gap_reported_last = peer->last;
    }
}

void bus_batch_done(bus_t *self, int rc)
{
    if (rc == 0) {
        for (size_t i = 0; i < self->link_count; i++) {
            bus_link_t *link = self->links[i];
            link->next = link->next_pending;
            link->acked_durable = link->acked_durable_pending;
        }
        self->stats.applied += self->batch_stats.applied;
        self->stats.duplicates += self->batch_stats.duplicates;
        self->stats.gaps += self->batch_stats.gaps;
        self->stats.rejected += self->batch_stats.rejected;
    }
    memset(&self->batch_stats, 0, sizeof(self->batch_stats));
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
        if (rc == 0)
            peer->last = peer->last_pending;
        if (peer->ack_due && (rc == 0 || peer->probe_reply))
            send_ack(self, peer);
        peer->last_pending = peer->last;
        peer->ack_due = peer->gap = peer->probe_reply = false;
    }
    for (size_t i = 0; i < self->link_count; i++) {
        self->links[i]->next_pending = self->links[i]->next;
        self->links[i]->acked_durable_pending = self->links[i]->acked_durable;
    }
    /* On failure nothing was acknowledged: the senders resend. */
    for (size_t i = 0; i < self->queue_length; i++)
        zmq_msg_close(&self->queue[i].body);
    self->queue_length = 0;
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

int bus_tick(bus_t *self, int64_t now_ms)
{
    MDB_txn *txn = NULL;
    int rc = 0;
    for (size_t i = 0; i < self->link_count; i++) {
        bus_link_t *link = self->links[i];
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
    return check_outbox(link, txn, why, why_len);
}

static int check_peer(const bus_t *self, const bus_peer_t *peer, MDB_txn *txn, char *why,
                      size_t why_len)
{
    if (peer->last_pending != peer->last) {
        snprintf(why, why_len, "sender %s: a batch's last_seq is still pending", peer->id);
        return -EPROTO;
    }
    uint64_t stored;
    int rc = store_get_u64(txn, self->last_seq_db, peer->id, strlen(peer->id), 0, &stored);
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

int bus_check(const bus_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    if (self->queue_length) {
        snprintf(why, why_len, "the batch queue still holds %zu messages", self->queue_length);
        return -EPROTO;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < self->link_count; i++)
        rc = check_link(self, self->links[i], txn, why, why_len);
    for (size_t i = 0; rc == 0 && i < self->peer_count; i++)
        rc = check_peer(self, &self->peers[i], txn, why, why_len);
    return rc;
}

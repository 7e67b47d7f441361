/* bus: reliable links between worker instances (DESIGN.md section 3).
 *
 * A link runs from this instance (sender, DEALER) to one peer instance
 * (receiver, ROUTER). Exactly-once effects come from LMDB, not from ZeroMQ:
 *
 *  1. bus_send() appends the message to the link's outbox inside the
 *     caller's write transaction, with the next gapless link seq. The state
 *     change and the messages it causes commit together or not at all.
 *  2. The sender streams outbox entries (at most `window` unacknowledged)
 *     and rewinds to the first unacknowledged one when the receiver reports
 *     a gap, when a probe shows messages lost on the way, and after a
 *     restart (acked position is durable).
 *  3. The receiver applies a message only if seq == last_seq[sender] + 1 and
 *     records last_seq in the same transaction; older seqs are duplicates
 *     (dropped), newer ones are a gap (dropped, reported: go-back-N).
 *  4. Acks are cumulative and sent only after the receiver's commit. The
 *     sender deletes acknowledged entries in a later transaction.
 *  5. Group commit: everything drained from the sockets in one loop
 *     iteration is applied in one transaction, one fsync.
 *
 * Identity (DESIGN.md section 3 point 6). Every store gets a random
 * 128-bit incarnation the first time a bus opens it (bus.self); it travels in
 * every header and every ack. The receiver keeps last_seq per (sender,
 * incarnation) and the sender remembers the receiver's incarnation per link.
 * A message from an incarnation the receiver does not know for that sender
 * (its state was reset), or from an incarnation that belongs to another
 * sender (a state dir renamed), is refused: not applied, answered with a
 * refusing ack. An ack naming another receiver incarnation than the one the
 * link knows (the receiver's state was reset), or acknowledging less than
 * the receiver acknowledged before, marks the link diverged: nothing is
 * deleted from its outbox and nothing is sent until an operator calls
 * bus_accept() on the side that noticed:
 *  - receiver, reset sender: the new incarnation starts at last_seq 0;
 *  - receiver, renamed sender: the old name's last_seq moves to the new one;
 *  - sender, reset receiver: the outbox still unacknowledged is renumbered
 *    from seq 1 (the new receiver state has applied none of it).
 * Each case then goes on with 0 lost and 0 applied twice. Divergence,
 * acceptance, socket rebuilds and dropped dead letters are reported through
 * bus_options_t.on_event: this module does not log.
 *
 * Bounds: the table of senders holds at most BUS_MAX_PEERS entries and
 * evicts idle ones (they are reloaded from the store when heard again); a
 * receive batch holds at most max_batch messages, and draining stops once
 * its bodies reach max_batch_bytes (so it ends at most one message, at most
 * max_message, past it); each incoming pipe buffers at most window + 1024
 * messages;
 * bus.dead keeps at most dead_max_count letters and dead_max_bytes bytes,
 * dropping the oldest (counted). A link silent for dead_after_ms gets a new
 * socket.
 *
 * Invariants between calls, each checked by bus_check():
 *  - per link: acked_durable <= acked <= sent <= next - 1;
 *  - per link: the durable acked position in bus.links equals
 *    acked_durable, and the outbox holds exactly the seqs
 *    (acked_durable, next): that many entries, the first acked_durable + 1,
 *    the last next - 1 (so no hole and no stray entry);
 *  - per link: the receiver incarnation in bus.links is the one in memory
 *    (absent only while one learnt from an ack is not written yet); a
 *    diverged or refused link has nothing in flight (sent == acked);
 *  - per sender: last_seq in memory equals last_seq in the store under
 *    (sender, incarnation), and bus.senders names that incarnation (a
 *    sender never recorded has last_seq 0);
 *  - the table of senders holds at most BUS_MAX_PEERS entries, none pinned
 *    by a batch; bus.dead is within its bounds and its counters add up;
 *  - after bus_batch_done() no batch is left over: the batch queue is
 *    empty (it holds only messages drained since the last
 *    bus_batch_done()) and no position of the batch is still pending.
 * No transaction is open between calls (the bus keeps none).
 *
 * A link's states (the same for a sender seen by the receiver):
 *    up <-> down          heard within dead_after_ms or not (a new socket
 *                         every dead_after_ms while down)
 *    any -> diverged      an unknown incarnation, or acks that go backwards
 *    diverged -> up       bus_accept(), applied in the next batch
 *    up <-> refused       the receiver refuses this link's incarnation, until
 *                         an operator there accepts it
 *
 * The batch protocol (driven by loop.c, or by a test):
 *    bus_drain()         read sockets: acks are handled at once, data queued
 *    bus_batch_apply()   inside store_write(): acceptances, then queued
 *                        data, dedupe, delete acked outbox entries;
 *                        restartable
 *    bus_batch_done(rc)  after the commit (rc == 0): acks and probe replies
 *                        go out; on failure the queue is dropped unacked
 *                        and the senders resend
 *    bus_tick()          probes, timeouts, streaming of new outbox entries
 */
#ifndef DISPATCH_BUS_H
#define DISPATCH_BUS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "auth.h"
#include "store.h"

typedef struct bus bus_t;
typedef struct bus_link bus_link_t;

#define BUS_INCARNATION_SIZE 16
#define BUS_MAX_PEERS 1024

typedef enum bus_event_kind {
    BUS_EVENT_DIVERGED = 1, /* a link or a sender diverged: see reason */
    BUS_EVENT_REFUSED,      /* the receiver refuses this link's incarnation */
    BUS_EVENT_RESUMED,      /* a refusing receiver accepts this link again */
    BUS_EVENT_ACCEPTED,     /* an operator's bus_accept() took effect */
    BUS_EVENT_RECONNECTED,  /* a silent link got a new socket */
    BUS_EVENT_DEAD_DROPPED, /* old dead letters dropped to stay in bounds */
    BUS_EVENT_FORGED,       /* a frame under a sender's name with another key */
} bus_event_kind_t;

typedef enum bus_diverged_reason {
    BUS_DIVERGED_NONE = 0,
    BUS_DIVERGED_SENDER_INCARNATION,   /* receiver: a sender's state was reset */
    BUS_DIVERGED_SENDER_RENAMED,       /* receiver: an incarnation under a new name */
    BUS_DIVERGED_RECEIVER_INCARNATION, /* sender: the receiver's state was reset */
    BUS_DIVERGED_ACKED_BACKWARDS,      /* sender: acked less than it acked before */
    BUS_DIVERGED_ACKED_BEYOND,         /* sender: acked seqs this outbox never held */
} bus_diverged_reason_t;

/* One thing an operator should hear of; valid during the callback only. */
typedef struct bus_event {
    bus_event_kind_t kind;
    bus_diverged_reason_t reason; /* DIVERGED, ACCEPTED */
    const char *peer_id;          /* the link's receiver or the sender */
    const char *renamed_from;     /* SENDER_RENAMED: the incarnation's old name */
    const unsigned char *known;   /* incarnation known so far, or NULL */
    const unsigned char *offered; /* incarnation presented, or NULL */
    uint64_t count;               /* DEAD_DROPPED: letters dropped */
    const char *key_actor;        /* FORGED: whose key it was ("" when unknown) */
} bus_event_t;

typedef void (*bus_event_fn)(void *ctx, const bus_event_t *event);

/* One word each, for logs and dispatchctl ("diverged",
 * "sender-incarnation"). */
const char *bus_event_word(bus_event_kind_t kind);
const char *bus_reason_word(bus_diverged_reason_t reason);

typedef struct bus_options {
    uint32_t window;          /* unacknowledged messages per link; 0 = 4096 */
    int heartbeat_ms;         /* probe an idle link this often; 0 = 1000 */
    int ack_timeout_ms;       /* probe when acks stall this long; 0 = 300 */
    int dead_after_ms;        /* peer down, socket rebuilt after this long silent; 0 = 3000 */
    int64_t max_message;      /* MAXMSGSIZE of the listening socket; 0 = 1 MiB */
    uint32_t max_batch;       /* messages applied per transaction; 0 = 8192 */
    uint64_t max_batch_bytes; /* draining stops past this many body bytes; 0 = 64 MiB */
    uint64_t dead_max_count;  /* letters kept in bus.dead; 0 = 10000 */
    uint64_t dead_max_bytes;  /* body bytes kept in bus.dead; 0 = 16 MiB */
    bus_event_fn on_event;    /* called from the bus calls; NULL = none */
    void *event_ctx;
    auth_t *auth; /* CURVE with the worker's key (auth.h); NULL = plain */
} bus_options_t;

/* Returned by an apply function for a message that can never be applied
 * (it is consumed, counted and kept in the "bus.dead" database). */
#define BUS_REJECTED 1

/* Applies one message inside the receiver's write transaction. Must be
 * restartable (see store.h). 0 = applied, BUS_REJECTED, or a negative code
 * that aborts the whole batch. */
typedef int (*bus_apply_fn)(void *app, MDB_txn *txn, const char *sender, uint64_t seq,
                            const void *body, size_t len);

typedef struct bus_link_stats {
    uint64_t next;  /* seq the next bus_send() will take */
    uint64_t sent;  /* highest seq put on the socket */
    uint64_t acked; /* highest seq the receiver committed */
    uint64_t resends;
    uint64_t outbox;         /* entries in the outbox: next - 1 - acked position deleted */
    uint64_t lag;            /* seqs committed here, not acknowledged: next - 1 - acked */
    int64_t last_ack_age_ms; /* since the peer was last heard */
    uint64_t reconnects;     /* sockets rebuilt after dead_after_ms of silence */
    bool up;                 /* heard from the peer within dead_after_ms */
    bool diverged;           /* this side refuses the peer: see reason, bus_accept() */
    bool refused;            /* the peer refuses this side (accept on the peer) */
    bus_diverged_reason_t reason;
    bool peer_known; /* peer_incarnation is set */
    unsigned char self_incarnation[BUS_INCARNATION_SIZE];
    unsigned char peer_incarnation[BUS_INCARNATION_SIZE];
    unsigned char offered[BUS_INCARNATION_SIZE]; /* diverged: what the peer presents */
} bus_link_stats_t;

typedef struct bus_stats {
    uint64_t applied;      /* messages applied */
    uint64_t duplicates;   /* dropped: already applied */
    uint64_t gaps;         /* dropped: arrived ahead of a lost one */
    uint64_t rejected;     /* refused by the apply function */
    uint64_t bad_frames;   /* undecodable or spoofed frames dropped */
    uint64_t refused;      /* dropped: from an incarnation not accepted */
    uint64_t peers_full;   /* dropped: the table of senders was full of busy ones */
    uint64_t evicted;      /* idle senders evicted from the table */
    uint64_t dead_dropped; /* dead letters dropped to stay in bounds */
    uint64_t forged;       /* dropped: the key is not the named sender's (CURVE) */
} bus_stats_t;

/* One end of a link as an operator sees it (bus_links_each()). */
typedef enum bus_direction {
    BUS_OUTGOING = 1, /* a link of this instance: it sends */
    BUS_INCOMING,     /* a sender this instance receives from */
} bus_direction_t;

typedef struct bus_link_view {
    const char *peer_id;
    bus_direction_t direction;
    bus_link_stats_t stats; /* INCOMING: acked = last applied; next, sent,
                               outbox, lag, resends are 0 */
} bus_link_view_t;

int bus_new(void *zmq_context, store_t *store, const char *self_id, const bus_options_t *options,
            bus_t **ret);
void bus_destroy(bus_t **self);

/* Binds the ROUTER for incoming links; apply gets every new message. */
int bus_listen(bus_t *self, const char *endpoint, bus_apply_fn apply, void *app);
/* The endpoint actually bound (port resolved), or NULL. */
const char *bus_listen_endpoint(const bus_t *self);

/* Opens the link to peer_id at endpoint, restoring its outbox state. */
int bus_link_open(bus_t *self, const char *peer_id, const char *endpoint, bus_link_t **ret);
bus_link_t *bus_link_find(bus_t *self, const char *peer_id);
void bus_link_stats(const bus_link_t *link, bus_link_stats_t *stats);
void bus_stats(const bus_t *self, bus_stats_t *stats);
/* Visits every link, then every sender in the table; fn returns non-zero
 * to stop. The view is valid during the call only. */
void bus_links_each(const bus_t *self, int (*fn)(void *ctx, const bus_link_view_t *view),
                    void *ctx);
/* The id this instance is known by on the bus. */
const char *bus_self_id(const bus_t *self);
/* This store's incarnation (created with it). */
const unsigned char *bus_incarnation(const bus_t *self);

/* An operator's decision: accept the incarnation peer_id presents, on the
 * link to it and from it as a sender, where they are diverged now; the
 * direction not diverged yet is accepted when it diverges with that same
 * incarnation (a reset peer is noticed each way at its own time). With
 * wait, where they are not, the acceptance waits for their next divergence
 * (any incarnation) and is used once (a start option: links must be open
 * first). Takes effect
 * in the next batch (one transaction); the bus reports BUS_EVENT_ACCEPTED.
 * -ENOENT without wait when nothing is diverged, -EINVAL for a bad id,
 * -ENOSPC when too many acceptances wait. */
int bus_accept(bus_t *self, const char *peer_id, bool wait);

/* Appends body to the link's outbox in txn (the caller's write batch). */
int bus_send(bus_t *self, MDB_txn *txn, bus_link_t *link, const void *body, size_t len);

/* Event loop pieces, in this order each iteration. */
size_t bus_pollitems(bus_t *self, zmq_pollitem_t *items, size_t capacity);
int bus_timeout_ms(const bus_t *self, int64_t now_ms);
int bus_drain(bus_t *self, int64_t now_ms);
bool bus_batch_ready(const bus_t *self);
int bus_batch_apply(bus_t *self, MDB_txn *txn);
void bus_batch_done(bus_t *self, int rc);
int bus_tick(bus_t *self, int64_t now_ms);

/* True when every committed outbox entry of every link is acknowledged. */
bool bus_idle(const bus_t *self);

/* Checks the invariants above in txn, a read transaction begun after
 * bus_batch_done() (not the batch's write transaction: its positions are not
 * promoted yet). O(links + senders): a few reads per link and per sender,
 * no scan of an outbox. Returns 0, -EPROTO with a sentence in why when one
 * is broken, or the store's error when it could not read. */
int bus_check(const bus_t *self, MDB_txn *txn, char *why, size_t why_len);

int64_t bus_now_ms(void);

#endif

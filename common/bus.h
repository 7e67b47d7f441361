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
 * Invariants between calls, each checked by bus_check():
 *  - per link: acked_durable <= acked <= sent <= next - 1;
 *  - per link: the durable acked position in bus.links equals
 *    acked_durable, and the outbox holds exactly the seqs
 *    (acked_durable, next): that many entries, the first acked_durable + 1,
 *    the last next - 1 (so no hole and no stray entry);
 *  - per sender: last_seq in memory equals last_seq in the store;
 *  - after bus_batch_done() no batch is left over: the batch queue is
 *    empty (it holds only messages drained since the last
 *    bus_batch_done()) and no position of the batch is still pending.
 * No transaction is open between calls (the bus keeps none).
 *
 * The batch protocol (driven by loop.c, or by a test):
 *    bus_drain()         read sockets: acks are handled at once, data queued
 *    bus_batch_apply()   inside store_write(): apply queued data, dedupe,
 *                        delete acked outbox entries; restartable
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

typedef struct bus_options {
    uint32_t window;     /* unacknowledged messages per link; 0 = 4096 */
    int heartbeat_ms;    /* probe an idle link this often; 0 = 1000 */
    int ack_timeout_ms;  /* probe when acks stall this long; 0 = 300 */
    int dead_after_ms;   /* peer is down after this long silent; 0 = 3000 */
    int64_t max_message; /* MAXMSGSIZE of the listening socket; 0 = 1 MiB */
    uint32_t max_batch;  /* messages applied per transaction; 0 = 8192 */
    auth_t *auth;        /* CURVE with the worker's key (auth.h); NULL = plain */
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
    bool up;       /* heard from the peer within dead_after_ms */
    bool diverged; /* the peer acked seqs this outbox never held */
} bus_link_stats_t;

typedef struct bus_stats {
    uint64_t applied;    /* messages applied */
    uint64_t duplicates; /* dropped: already applied */
    uint64_t gaps;       /* dropped: arrived ahead of a lost one */
    uint64_t rejected;   /* refused by the apply function */
    uint64_t bad_frames; /* undecodable or spoofed frames dropped */
} bus_stats_t;

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

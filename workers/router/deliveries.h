/* deliveries: each unit's durable delivery queue, and its live session.
 *
 *   router.deliveries   unit id NUL seq (u64 big-endian) -> dispatch.UnitDelivery
 *   router.unit_queues  unit id -> dispatch.router.DeliveryCounters {last_seq, acked}
 *
 * Invariants:
 *  - per unit, seqs are gapless from 1: deliveries_append() gives
 *    last_seq + 1 in the caller's transaction, so a delivery commits with
 *    the decision that caused it, or not at all;
 *  - the queue of a unit holds exactly the seqs (acked, last_seq]; a unit
 *    without counters has no queue (checked);
 *  - acked <= last_seq (an ack beyond last_seq counts as last_seq; checked).
 * deliveries_check() looks at the units written since its last call, in
 * O(log n) each: their counters, and that their queue starts at acked + 1
 * and ends at last_seq; a hole strictly inside a queue is found by
 * deliveries_check_all() only, which walks every queue and counts every
 * entry. Both return 0, -EPROTO with a sentence in why for a broken
 * invariant, or the store's error when they could not read.
 *
 * Sessions live in memory only. A unit's session is the routing id that
 * sent its latest ack; it is online until a push to it fails with
 * -EHOSTUNREACH. After a restart no unit has a session until it acks again
 * (units ack on connect and every few seconds).
 *
 * Pushing (deliveries_batch_done, after the commit) sends from the first
 * seq not yet sent in this session up to acked + window. Only what was lost
 * is sent again: pushing rewinds to acked + 1 on an ack from a new routing
 * id or from an offline unit (a new session), on an ack below the unit's
 * durable acked (the unit lost its state), and on an ack that repeats the
 * previous one while deliveries are outstanding and the acks have not
 * moved for resend_after_ms (the ack timeout: the unit reports a gap by
 * dropping what follows it and repeating its ack; its heartbeat repeats it
 * too). Any other ack continues where pushing stopped: a repeated ack
 * within the timeout (a heartbeat, or a duplicate dropped) resends nothing,
 * so one rewind does not breed the next.
 *
 * A rewound session does not send its window at once: the unit may still
 * hold deliveries pushed before (by this router, or by the one before a
 * restart) that it has not read, and each would come twice. It probes
 * with acked + 1 alone: acked exactly, the window opens (streaming); acked
 * beyond it, the unit is reading what it holds, and the session holds
 * still until the unit's acks stand still (it drops the probe's copy and
 * acks again, or its heartbeat comes) or reach what was queued when the
 * probe went (nothing beyond that was ever pushed). After a restart a
 * unit thus gets the probe twice, not the window. The unit drops
 * duplicates.
 * Every pushed delivery carries UnitDelivery.acked, the unit's durable
 * acked seq, so that a unit that lost its own state (it acks below what it
 * acknowledged before) can resume instead of waiting for deleted seqs.
 *
 * Batch protocol, as the loop drives it: deliveries_batch_begin() at the
 * start of every (re)run of apply; deliveries_append()/deliveries_ack()
 * inside the transaction; deliveries_batch_done(rc) after it: session
 * changes are promoted only when rc == 0, pushes read committed data only.
 */
#ifndef DISPATCH_ROUTER_DELIVERIES_H
#define DISPATCH_ROUTER_DELIVERIES_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.pb-c.h"
#include "store.h"

#define DELIVERIES_DEFAULT_WINDOW 256
/* Unit acks that stand still this long with deliveries outstanding: the
 * rest of the window was lost, it is sent again. */
#define DELIVERIES_DEFAULT_RESEND_AFTER_MS 500

typedef struct deliveries deliveries_t;

/* Sends one delivery body to a routing id: 0, -EHOSTUNREACH (the peer is
 * gone), -EAGAIN (its queue is full: try on its next ack). */
typedef int (*deliveries_send_fn)(void *ctx, const void *peer, size_t peer_len, const void *body,
                                  size_t len);

/* window 0 = DELIVERIES_DEFAULT_WINDOW. */
int deliveries_new(store_t *store, uint32_t window, deliveries_t **ret);
void deliveries_destroy(deliveries_t **self);
/* The ack timeout (DELIVERIES_DEFAULT_RESEND_AFTER_MS until set). */
void deliveries_set_resend_after(deliveries_t *self, int ms);

/* Appends delivery to the queue of delivery->unit_id, setting delivery->seq. */
int deliveries_append(deliveries_t *self, MDB_txn *txn, Dispatch__UnitDelivery *delivery);

/* The unit applied everything up to seq: deletes it, and makes peer the
 * unit's session once the transaction commits. */
int deliveries_ack(deliveries_t *self, MDB_txn *txn, const char *unit_id, uint64_t seq,
                   const void *peer, size_t peer_len);

int deliveries_counters(deliveries_t *self, MDB_txn *txn, const char *unit_id, uint64_t *last_seq,
                        uint64_t *acked);

/* Visits the unit's pending deliveries with seq >= from_seq, in order, up
 * to limit (0 = all), until fn returns non-zero. The delivery passed to fn
 * is freed after fn returns. Returns the number visited or < 0. */
typedef int (*deliveries_visit_fn)(const Dispatch__UnitDelivery *delivery, void *ctx);
int deliveries_each(deliveries_t *self, MDB_txn *txn, const char *unit_id, uint64_t from_seq,
                    size_t limit, deliveries_visit_fn fn, void *ctx);

/* Deletes the unit's queue and counters (the unit is removed). */
int deliveries_drop_unit(deliveries_t *self, MDB_txn *txn, const char *unit_id);

void deliveries_batch_begin(deliveries_t *self);
/* Returns the number of deliveries pushed, or a negative code of the read.
 * send NULL: nothing is pushed (sessions still change). */
int deliveries_batch_done(deliveries_t *self, int rc, deliveries_send_fn send, void *ctx);

/* 1 when the unit has an online session, else 0. */
int deliveries_online(const deliveries_t *self, const char *unit_id);

/* The units written since the last call (then forgotten, whatever the
 * result); all of them when that was more than it could keep. */
int deliveries_check(deliveries_t *self, MDB_txn *txn, char *why, size_t why_len);
int deliveries_check_all(deliveries_t *self, MDB_txn *txn, char *why, size_t why_len);
/* deliveries_check() as a loop_check_fn (worker_check_add()): ctx is the
 * deliveries_t. */
int deliveries_loop_check(void *deliveries, MDB_txn *txn, char *why, size_t why_len);

#endif

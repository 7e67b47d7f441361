/* loop: the single-threaded event loop every worker runs.
 *
 * One iteration: poll the bus sockets and the application's sockets, drain
 * everything ready, apply it all in ONE write transaction (group commit: one
 * fsync per batch), then let the bus send acks and stream its outbox, and
 * the application send its replies. Nothing is sent before its commit.
 *
 * The application's part is a set of callbacks, so that its handlers stay
 * callable without sockets (tests and fuzzers call them directly):
 *   pollitems  its sockets, added to the poll set
 *   drain      read its sockets (non-blocking) and queue work; return true
 *              when the queued work needs a write transaction
 *   apply      its queued work, inside the transaction, after the bus's
 *              messages; must be restartable (see store.h)
 *   done       called every iteration, after the transaction if one ran:
 *              rc == 0 committed (or nothing to write), else aborted; keep
 *              "pending" state that apply sets and done promotes
 *   timeout_ms how long it may sleep (its timers); < 0 = no limit
 * All callbacks are optional.
 */
#ifndef DISPATCH_LOOP_H
#define DISPATCH_LOOP_H

#include <lmdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "bus.h"
#include "store.h"

typedef struct loop_app {
    void *app;
    size_t (*pollitems)(void *app, zmq_pollitem_t *items, size_t capacity);
    bool (*drain)(void *app, int64_t now_ms);
    int (*apply)(void *app, MDB_txn *txn);
    void (*done)(void *app, int rc);
    int (*timeout_ms)(void *app, int64_t now_ms);
} loop_app_t;

/* Runs until *stop becomes non-zero (set it from a signal handler).
 * A failed batch (disk full, say) is not an end: it was dropped unacknowledged,
 * the senders resend it, and the application learnt of it in done(rc).
 * Returns 0 on stop, or a negative code when the sockets or the store's
 * reads fail. */
int loop_run(store_t *store, bus_t *bus, const loop_app_t *app, volatile sig_atomic_t *stop);

/* One iteration, waiting at most max_wait_ms (< 0: as long as the timers
 * allow). */
int loop_once(store_t *store, bus_t *bus, const loop_app_t *app, int max_wait_ms);

#endif

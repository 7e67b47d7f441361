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
 *
 * Invariant checks (in the manner of SQLite's assert_pager_state()). In
 * builds with DISPATCH_CHECKS (meson -Dchecks=true, the default), after every
 * iteration that ran a batch (once done() has run, whether it committed or
 * not), bus_check() and then each of app->checks run in one read
 * transaction; the first that fails aborts the process with its sentence on
 * stderr, so that a test fails loudly. Without DISPATCH_CHECKS they never
 * run and loop_touched_t keeps nothing.
 *
 * They run after the commit, not inside the write transaction, because the
 * invariants hold between calls: the bus promotes its positions (next seq,
 * acked, last_seq) in bus_batch_done() only, so inside the transaction
 * memory and store legitimately differ. After the commit the check sees what
 * a crash would leave and a restart would read, and compares it with the
 * memory the loop goes on with. A read transaction does not block the
 * writer. The price: a broken state is already durable (and acknowledged)
 * when the abort comes.
 *
 * A check costs O(links) or O(what the batch touched), never a scan of the
 * store: modules keep the keys their writes touched in a loop_touched_t and
 * check those records only (a failed batch's keys are checked against the
 * committed values, which must hold too).
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

/* An invariant check: 0 when everything it covers holds in txn, else a
 * negative code and one sentence in why (NUL-terminated, cut to why_len):
 * -EPROTO for a broken invariant, a store error when it could not read. */
typedef int (*loop_check_fn)(void *ctx, MDB_txn *txn, char *why, size_t why_len);

typedef struct loop_check {
    loop_check_fn fn;
    void *ctx; /* the caller's; outlives the loop */
} loop_check_t;

/* What the loop tells of the store's write batches (loop_app_t.on_storage):
 * once when an episode of failures opens (and again when its cause
 * changes), once when it closes (store.h: commits work and none failed for
 * STORE_EPISODE_QUIET_MS). The loop does not log; the worker says it. */
typedef enum loop_storage_kind {
    LOOP_STORAGE_FAILING,   /* a batch failed: error is why */
    LOOP_STORAGE_RECOVERED, /* the episode is over */
} loop_storage_kind_t;

typedef struct loop_storage_event {
    loop_storage_kind_t kind;
    int error;              /* FAILING: the cause (store_strerror()) */
    uint64_t failures;      /* RECOVERED: batches failed in the episode */
    int64_t duration_ms;    /* RECOVERED: from its first failure to its last */
    uint64_t failed_writes; /* batches failed since the store was opened */
} loop_storage_event_t;

typedef struct loop_app {
    void *app;
    size_t (*pollitems)(void *app, zmq_pollitem_t *items, size_t capacity);
    bool (*drain)(void *app, int64_t now_ms);
    int (*apply)(void *app, MDB_txn *txn);
    void (*done)(void *app, int rc);
    int (*timeout_ms)(void *app, int64_t now_ms);
    /* Run after each batch, after bus_check(), in DISPATCH_CHECKS builds. */
    const loop_check_t *checks;
    size_t check_count;
    /* Told of failing and recovered commits (optional; see above). */
    void (*on_storage)(void *ctx, const loop_storage_event_t *event);
    void *storage_ctx;
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

/* The keys a module's writes touched since its last check, for that check
 * to look at those records only. Keys are byte strings of at most
 * LOOP_TOUCHED_KEY_MAX bytes; a key repeated at once is kept once. Past
 * LOOP_TOUCHED_MAX bytes in all, or when memory runs out, the set only
 * remembers that it overflowed: the check must then look at everything.
 * Without DISPATCH_CHECKS it keeps nothing and is always overflowed, so a
 * check done anyway is a full one. */
#define LOOP_TOUCHED_KEY_MAX 512
#define LOOP_TOUCHED_MAX (4u << 20)

typedef struct loop_touched loop_touched_t;

int loop_touched_new(loop_touched_t **ret);
void loop_touched_destroy(loop_touched_t **self);
void loop_touched_add(loop_touched_t *self, const void *key, size_t len);
/* True when keys were lost (or never kept): check everything. */
bool loop_touched_overflowed(const loop_touched_t *self);
/* Visits the keys in the order added: *cursor starts at 0; *key points
 * into the set until the next add or clear. False at the end. */
bool loop_touched_next(const loop_touched_t *self, size_t *cursor, const void **key, size_t *len);
/* Empties the set; with DISPATCH_CHECKS it tracks again. */
void loop_touched_clear(loop_touched_t *self);

#endif

/* timers: the durable timer index of the escalation worker.
 *
 *   escalation.timers   due (u64 big-endian, unix ms) || ticket id  ->  (empty)
 *
 * LMDB keeps keys sorted by bytes, so the index iterates in (due time,
 * ticket id) order: the next timer to fire is the first key, and the
 * timers due by a time are a prefix. Firing n due timers costs n cursor
 * steps and deletes, O(n log N) page work for N armed timers, and never
 * looks at a timer that is not due: the number of open tickets does not
 * enter it except through the depth of the B-tree.
 *
 * Invariants (kept by the caller, escalation.c, the only writer): a ticket
 * has at most one timer, and its case record names it (Case.timer_due), so
 * moving or cancelling a timer is one delete and one put; every change to
 * the index is made in the write transaction that changes the case, so
 * after a crash the index and the cases agree. timers_pop_due() deletes
 * the entry it returns in the caller's transaction: if that transaction
 * does not commit, the timer is still there and fires again after a
 * restart; if it commits, it never fires again.
 *
 * Functions return 0, -ENOENT (nothing there), -EINVAL (bad ticket id), or
 * a negative store error.
 */
#ifndef DISPATCH_ESCALATION_TIMERS_H
#define DISPATCH_ESCALATION_TIMERS_H

#include <lmdb.h>
#include <stdint.h>

#include "store.h"

/* Longest ticket id (docs/protocol.md section 10), and a buffer for one. */
#define TIMERS_ID_MAX 64
#define TIMERS_ID_SIZE (TIMERS_ID_MAX + 1)

typedef struct timers timers_t;

int timers_new(store_t *store, timers_t **ret);
void timers_destroy(timers_t **self);

/* Arms the timer of ticket_id at due (unix ms, > 0). */
int timers_arm(timers_t *self, MDB_txn *txn, int64_t due, const char *ticket_id);
/* Removes that timer; -ENOENT when it was not armed. */
int timers_disarm(timers_t *self, MDB_txn *txn, int64_t due, const char *ticket_id);

/* The first timer: its due time (and ticket when ticket_id is not NULL).
 * -ENOENT when there is none. */
int timers_first(timers_t *self, MDB_txn *txn, int64_t *due, char ticket_id[TIMERS_ID_SIZE]);

/* Removes and returns the first timer if it is due by now (due <= now);
 * -ENOENT when none is; -EAGAIN when the first entry was malformed (not
 * written by this module): it was dropped, call again. */
int timers_pop_due(timers_t *self, MDB_txn *txn, int64_t now, int64_t *due,
                   char ticket_id[TIMERS_ID_SIZE]);

/* Armed timers in all. */
int timers_count(timers_t *self, MDB_txn *txn, uint64_t *count);

#endif

/* cases: escalation's record of each ticket it follows, and its queues.
 *
 *   escalation.cases    ticket id                      -> dispatch.escalation.Case
 *   escalation.queues   QueueKind (1 byte) || ticket id -> since (u64 big-endian, unix ms)
 *
 * The queue index holds the work lists of ListQueue (EXTENSION, SIGN_OFF,
 * OVERDUE, URGENT), each in ticket id order, which pages with
 * after_ticket_id.
 *
 * Invariants (kept by escalation.c, the only writer), each checked by
 * cases_check() and cases_check_all():
 *  - a case decodes and is stored under its own ticket_id;
 *  - the pair (kind, ticket) is in escalation.queues iff the ticket has a
 *    case and bit (1 << kind) is set in its Case.queued;
 *  - Case.queued has no bit that names no QueueKind.
 * cases_check() looks only at the tickets written since its last call (a
 * case put, a queue entry put or deleted): one read per QueueKind each,
 * cheap enough for every batch (loop.h). cases_check_all() reads everything,
 * for tests. Both return 0, -EPROTO with a sentence in why for a broken
 * invariant, or the store's error when they could not read.
 *
 * Records from cases_get() and cases_new_case() belong to the caller: free
 * them with dispatch__escalation__case__free_unpacked(). They use the
 * default allocator, so their string fields may be replaced with
 * record_string_set() and their sub-messages with malloc'ed ones that
 * free_unpacked frees; never do that to a message built on the stack.
 * Functions return 0, -ENOENT for an absent record, -EPROTO for one that
 * does not decode, or another negative code.
 */
#ifndef DISPATCH_ESCALATION_CASES_H
#define DISPATCH_ESCALATION_CASES_H

#include <lmdb.h>
#include <stdint.h>

#include "dispatch.pb-c.h"
#include "escalation_state.pb-c.h"
#include "record.h"
#include "store.h"

typedef struct cases cases_t;

int cases_new(store_t *store, cases_t **ret);
void cases_destroy(cases_t **self);

int cases_get(cases_t *self, MDB_txn *txn, const char *ticket_id, Dispatch__Escalation__Case **ret);
int cases_put(cases_t *self, MDB_txn *txn, const Dispatch__Escalation__Case *record);

/* A fresh, owned record for ticket_id with empty tracks and a copy of
 * rule. */
int cases_new_case(const char *ticket_id, const Dispatch__Escalation__Rule *rule,
                   Dispatch__Escalation__Case **ret);
/* Replaces record->rule with an owned copy of rule. */
int cases_set_rule(Dispatch__Escalation__Case *record, const Dispatch__Escalation__Rule *rule);
/* Sets (replacing) or clears (request NULL) the pending extension. */
int cases_set_extension(Dispatch__Escalation__Case *record,
                        const Dispatch__ExtensionRequested *request, int64_t since);

int cases_queue_put(cases_t *self, MDB_txn *txn, Dispatch__QueueKind kind, const char *ticket_id,
                    int64_t since);
/* Absent is not an error. */
int cases_queue_delete(cases_t *self, MDB_txn *txn, Dispatch__QueueKind kind,
                       const char *ticket_id);

/* Visits one queue in ticket id order after `after` ("" = from the start)
 * until fn returns non-zero (1 = stop, < 0 = error, returned). */
typedef int (*cases_visit_fn)(const char *ticket_id, int64_t since, void *ctx);
int cases_queue_each(cases_t *self, MDB_txn *txn, Dispatch__QueueKind kind, const char *after,
                     cases_visit_fn fn, void *ctx);

/* The tickets written since the last call (then forgotten, whatever the
 * result); all of them when that was more than it could keep. */
int cases_check(cases_t *self, MDB_txn *txn, char *why, size_t why_len);
int cases_check_all(cases_t *self, MDB_txn *txn, char *why, size_t why_len);
/* cases_check() as a loop_check_fn (worker_check_add()): ctx is the
 * cases_t. */
int cases_loop_check(void *cases, MDB_txn *txn, char *why, size_t why_len);

#endif

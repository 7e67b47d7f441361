/* tickets: the router's ticket records and their open-ticket indexes.
 *
 *   router.tickets       ticket id               -> dispatch.router.RouterTicket
 *   router.triage        ticket id               -> since (u64 big-endian, unix ms)
 *   router.unit_tickets  unit id NUL ticket id   -> HandlingRole (1 byte)
 *
 * Invariants (kept by the router, which is the only writer), each checked
 * by tickets_check() and tickets_check_all():
 *  - a record decodes, has its ticket, and is stored under its ticket's id;
 *  - a ticket is in router.triage iff it has a record whose state is TRIAGE;
 *  - (unit, ticket) is in router.unit_tickets iff the ticket has a record,
 *    is open (not CLOSED, MERGED or TRANSFERRED) and unit is its lead unit
 *    (ticket.assigned_unit; the entry's role is LEAD) or one of its
 *    assisting units (role ASSIST).
 * By construction of the keys (not checked): indexes iterate in ticket id
 * order, which pages with after_ticket_id.
 *
 * Checks. tickets_check() looks only at what was written since its last
 * call: every index entry put or deleted, and every ticket put together
 * with the units of the record it replaced (so that a unit dropped from a
 * record while its entry stays is found; to know them, tickets_put() reads
 * the old record in DISPATCH_CHECKS builds). That is a few reads per
 * ticket, cheap enough for every batch (loop.h). tickets_check_all() reads
 * everything, for tests. Both return 0, -EPROTO with a sentence in why for
 * a broken invariant, or the store's error when they could not read.
 *
 * Records returned by tickets_get() belong to the caller
 * (dispatch__router__router_ticket__free_unpacked). Functions return 0,
 * -ENOENT for an absent record, or another negative code.
 */
#ifndef DISPATCH_ROUTER_TICKETS_H
#define DISPATCH_ROUTER_TICKETS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "router_state.pb-c.h"
#include "store.h"

typedef struct tickets tickets_t;

int tickets_new(store_t *store, tickets_t **ret);
void tickets_destroy(tickets_t **self);

int tickets_get(tickets_t *self, MDB_txn *txn, const char *id,
                Dispatch__Router__RouterTicket **ret);
int tickets_put(tickets_t *self, MDB_txn *txn, const Dispatch__Router__RouterTicket *record);

int tickets_triage_put(tickets_t *self, MDB_txn *txn, const char *ticket_id, int64_t since);
/* Absent is not an error. */
int tickets_triage_delete(tickets_t *self, MDB_txn *txn, const char *ticket_id);

int tickets_unit_put(tickets_t *self, MDB_txn *txn, const char *unit_id, const char *ticket_id,
                     Dispatch__HandlingRole role);
/* Absent is not an error. */
int tickets_unit_delete(tickets_t *self, MDB_txn *txn, const char *unit_id, const char *ticket_id);
int tickets_unit_has_open(tickets_t *self, MDB_txn *txn, const char *unit_id, bool *ret);

/* Visits index entries in ticket id order, starting after `after` ("" =
 * from the start), until fn returns non-zero (1 = stop, < 0 = error,
 * returned). role is UNSPECIFIED for the triage index. */
typedef int (*tickets_visit_fn)(const char *ticket_id, Dispatch__HandlingRole role, void *ctx);
int tickets_triage_each(tickets_t *self, MDB_txn *txn, const char *after, tickets_visit_fn fn,
                        void *ctx);
int tickets_unit_each(tickets_t *self, MDB_txn *txn, const char *unit_id, const char *after,
                      tickets_visit_fn fn, void *ctx);

/* Every ticket record, in id order, after `after` ("" = from the first),
 * until fn returns non-zero (< 0: returned). The record is freed after fn. */
typedef int (*tickets_record_fn)(const Dispatch__Router__RouterTicket *record, void *ctx);
int tickets_each_record(tickets_t *self, MDB_txn *txn, const char *after, tickets_record_fn fn,
                        void *ctx);

/* What was written since the last call (then forgotten, whatever the
 * result); everything when that was more than it could keep. */
int tickets_check(tickets_t *self, MDB_txn *txn, char *why, size_t why_len);
int tickets_check_all(tickets_t *self, MDB_txn *txn, char *why, size_t why_len);
/* tickets_check() as a loop_check_fn (worker_check_add()): ctx is the
 * tickets_t. */
int tickets_loop_check(void *tickets, MDB_txn *txn, char *why, size_t why_len);

#endif

/* tickets: the router's ticket records and their open-ticket indexes.
 *
 *   router.tickets       ticket id               -> dispatch.router.RouterTicket
 *   router.triage        ticket id               -> since (u64 big-endian, unix ms)
 *   router.unit_tickets  unit id NUL ticket id   -> HandlingRole (1 byte)
 *
 * Invariants (kept by the router, which is the only writer):
 *  - a ticket is in router.triage iff its state is TRIAGE;
 *  - (unit, ticket) is in router.unit_tickets iff the ticket is open (not
 *    CLOSED, MERGED or TRANSFERRED) and unit is its lead unit
 *    (ticket.assigned_unit) or one of its assisting units;
 *  - indexes iterate in ticket id order, which pages with after_ticket_id.
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

#endif

/* router: dispatch-router, one per district (DESIGN.md sections 1, 2, 4).
 *
 * It owns the unit registry and the routing rules, decides the owner of
 * every ticket of its district, keeps the triage queue, delivers tickets
 * to units through per-unit durable queues, and applies the units' actions
 * (sign for, return, objection, progress, resolve, extension request).
 *
 * Ticket states it drives (docs/protocol.md section 8.2):
 *
 *   REGISTERED --rule, lead usable--> DISPATCHED --lead signs for--> ACCEPTED
 *       |                                |  ^                          |
 *       +--no rule / lead unusable--> TRIAGE --TriageAssign--+         +--resolve--> RESOLVED
 *                                        ^                   |                         |
 *   DISPATCHED/ACCEPTED --return--> RETURNED --next unit--> DISPATCHED (REROUTE)       |
 *                                        +--none / too many returns--> TRIAGE           |
 *   DISPATCHED/ACCEPTED --objection (after the window)--> TRIAGE                       |
 *   RESOLVED --TicketReopened (intake)--> DISPATCHED (same lead) or TRIAGE  <----------+
 *   any open state --TicketClosed / TicketMerged / TicketTransferred--> final
 *
 * Invariants:
 *  - a ticket of this district is decided once per TicketRegistered: a
 *    repeated TicketRegistered for a known ticket id changes nothing;
 *  - every state change, the events it causes (event_send) and the
 *    deliveries it causes (per-unit seq) commit in one transaction;
 *  - a unit acts only on tickets it is assigned to, and only as its role
 *    allows; an applied action is recorded under (unit, action_id) and a
 *    repeat returns the recorded result without applying it again;
 *  - the indexes of tickets.h hold exactly the open tickets they describe.
 *
 * Handlers take the caller's write transaction and plain bytes, never
 * sockets. They return 0 (a refusal is a reply, not an error), BUS_REJECTED
 * for an event that can never apply, or a negative code when the
 * transaction must be aborted (storage). Replies and results point into
 * memory the router owns until its next handler call or router_destroy().
 */
#ifndef DISPATCH_ROUTER_H
#define DISPATCH_ROUTER_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "bus.h"
#include "config.h"
#include "deliveries.h"
#include "dispatch.pb-c.h"
#include "store.h"
#include "worker.h"

/* Largest UnitAction / AdminRequest accepted (the endpoints' MAXMSGSIZE). */
#define ROUTER_MAX_REQUEST (64 * 1024)
/* Largest AdminRequest accepted: a RulesImport of a whole rule set. */
#define ROUTER_MAX_ADMIN_REQUEST (4 * 1024 * 1024)

typedef struct router router_t;

typedef struct router_options {
    int64_t return_window_ms; /* a lead may return within this of the dispatch; 0 = 24 h */
    uint32_t max_returns;     /* after this many returns: TRIAGE; 0 = 2 */
    uint32_t delivery_window; /* unacknowledged deliveries pushed per unit; 0 = 256 */
} router_options_t;

/* name is the instance's worker name in config (a router with a district);
 * its links give the intake(s), escalation and audit. bus may be NULL: no
 * events leave then. */
int router_new(store_t *store, bus_t *bus, const config_t *config, const char *name,
               const router_options_t *options, router_t **ret);
void router_destroy(router_t **self);

/* An Event from the bus (intake, escalation). */
int router_handle_event(router_t *self, MDB_txn *txn, const void *body, size_t len, int64_t now_ms);

/* A UnitAction from routing id peer, sent with actor's key (NULL on a
 * plain endpoint): a unit key acts only for its own unit (FORBIDDEN).
 * *result gets the ActionResult to send back (seq 0), or body_case NOT_SET
 * when nothing is to be sent (a valid ack). Returns 0; REFUSED (refusal.h)
 * when the bytes were not a UnitAction at all (*result is the error to
 * send; the endpoint holds it against the connection); negative on a
 * storage failure. */
int router_handle_unit_action(router_t *self, MDB_txn *txn, const void *peer, size_t peer_len,
                              const auth_actor_t *actor, const void *body, size_t len,
                              int64_t now_ms, Dispatch__UnitDelivery *result);

/* An AdminRequest sent with actor's key (NULL: plain; admin.h checks the
 * claimed actor and role against it); *reply is always set (error, done or
 * queue). */
int router_handle_admin(router_t *self, MDB_txn *txn, const auth_actor_t *actor, const void *body,
                        size_t len, int64_t now_ms, Dispatch__AdminReply *reply);

/* Seed files (formats in registry.h). On error err says what and where. */
int router_load_units_csv(router_t *self, MDB_txn *txn, const char *path, char *err,
                          size_t err_len);
int router_load_rules_csv(router_t *self, MDB_txn *txn, const char *path, char *err,
                          size_t err_len);
/* In one write transaction: loads <data_dir>/units.csv when the unit
 * registry is empty and <data_dir>/rules.csv when there are no rules
 * (absent files are skipped). *loaded_units / *loaded_rules (may be NULL)
 * get the counts loaded. */
int router_seed(router_t *self, const char *data_dir, size_t *loaded_units, size_t *loaded_rules,
                char *err, size_t err_len);

/* The unit's pending deliveries from from_seq on, oldest first (for tests
 * and tools); fn's delivery is freed after it returns. Returns the count. */
typedef int (*router_delivery_fn)(const Dispatch__UnitDelivery *delivery, void *ctx);
int router_pending_deliveries(router_t *self, MDB_txn *txn, const char *unit_id, uint64_t from_seq,
                              router_delivery_fn fn, void *ctx);

/* Batch protocol around the handlers: router_batch_begin() at the start of
 * every run of a write batch (it may be rerun); router_batch_done(rc) after
 * it: unit sessions change and pushes go out (through send) only on commit. */
void router_batch_begin(router_t *self);
int router_batch_done(router_t *self, int rc, deliveries_send_fn send, void *ctx);

const char *router_district(const router_t *self);

/* The worker kind for worker_main(): binds the unit endpoint (topology key
 * `units`) and the admin endpoint (`request`), seeds from data_dir, and
 * takes --return-window-hours N, --max-returns N. */
extern const worker_kind_t router_kind;

#endif

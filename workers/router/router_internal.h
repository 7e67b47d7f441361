/* router_internal: what the parts of the router (router.c: state changes;
 * router_events.c, router_actions.c, router_requests.c: the three inputs;
 * router_service.c: sockets and loop) share. Not for use outside
 * workers/router. */
#ifndef DISPATCH_ROUTER_INTERNAL_H
#define DISPATCH_ROUTER_INTERNAL_H

#include <stdbool.h>

#include "admin.h"
#include "deliveries.h"
#include "endpoint.h"
#include "peers.h"
#include "refusal.h"
#include "registry.h"
#include "router.h"
#include "router_state.pb-c.h"
#include "tickets.h"

#define ROUTER_ACTOR "router"

/* Memory of a rule-keeping reply (router_rules.c). */
typedef struct router_rules_reply router_rules_reply_t;

/* Memory the last reply points into. */
typedef struct router_reply {
    admin_reply_t admin; /* admin replies, and the refusal of a unit action */
    Dispatch__ActionResult action_result;
    char action_id[LIMIT_ID + 1];
    char unit_id[LIMIT_ID + 1];
    char ticket_id[LIMIT_ID + 1];
    router_rules_reply_t *rules; /* RulesDiff, RulesView, UnitsView, RouteExplanation */
} router_reply_t;

struct router {
    store_t *store;
    bus_t *bus;
    char name[CONFIG_NAME_MAX + 1];
    char district[LIMIT_ID + 1];
    router_options_t options;
    registry_t *registry;
    tickets_t *tickets;
    deliveries_t *deliveries;
    MDB_dbi meta, actions;
    peers_t *peers; /* intakes, escalation and audit: where events go */
    router_reply_t reply;
    char data_dir[4096]; /* of the topology, for DataReload; "" = none */

    /* Sockets (router_service.c); NULL when driven without them. */
    endpoint_t *unit_endpoint, *admin_endpoint;
    uint64_t pushes, push_failures;
};

/* Frees what the previous reply held. */
void router_reply_reset(router_t *self);

/* Emits the event whose body is `body` (a TicketAccepted, ...) about
 * ticket (id, district from it) to the receivers the lifecycle table names
 * and folds it into the ticket (lifecycle_apply); fills event_id, ticket_id, district, at, actor,
 * origin. */
int router_emit(router_t *self, MDB_txn *txn, Dispatch__Ticket *ticket, const char *actor,
                int64_t now, ProtobufCMessage *body);

/* Appends a delivery about ticket_id to unit's queue (fills unit_id,
 * ticket_id, at). */
int router_deliver(router_t *self, MDB_txn *txn, const char *unit, const char *ticket_id,
                   int64_t now, Dispatch__UnitDelivery *delivery);
int router_deliver_withdrawn(router_t *self, MDB_txn *txn, const char *unit, const char *ticket_id,
                             const char *reason, int64_t now);

int router_save(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record, int64_t now);

/* How a (re)assignment reaches the units. */
typedef struct router_assignment {
    const char *lead;
    char *const *assisting;
    size_t assisting_count;
    Dispatch__DispatchCause cause;
    const char *note;
    const char *actor;
    /* Reopened: units get ReopenedTicket (with reason and satisfaction)
     * instead of DispatchedTicket. */
    bool reopened;
    const char *reopen_reason;
    Dispatch__Satisfaction satisfaction;
} router_assignment_t;

/* DISPATCHED to assignment->lead: units that lose the ticket get Withdrawn,
 * every assigned unit gets the ticket, TicketDispatched goes out, the record
 * is saved. */
int router_assign(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                  const router_assignment_t *assignment, int64_t now);

/* TRIAGE: the lead unit (if any) gets Withdrawn and loses the ticket,
 * TicketTriaged goes out, the record is saved. */
int router_triage(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                  Dispatch__TriageCause cause, const char *from_unit, const char *note,
                  const char *actor, int64_t now);

/* Routes by the rules: DISPATCHED (cause) or TRIAGE (NO_RULE, UNIT_INACTIVE). */
int router_route(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                 Dispatch__DispatchCause cause, const char *actor, int64_t now);

/* The ticket leaves every unit's open list (closed, merged, transferred);
 * with reason, its units get Withdrawn first. */
int router_release(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                   const char *reason, int64_t now);

/* Rule keeping at the admin endpoint (router_rules.c): RulesImport,
 * DataReload, RulesList, UnitsList, RouteExplain, TriageReroute. */
int router_serve_rules(admin_call_t *call);
void router_rules_reply_free(router_rules_reply_t **self);
/* After a RuleUpsert was applied (AdminDone in the reply): warnings for a
 * rule that looks wrong, into the AdminDone. */
int router_rule_warnings(admin_call_t *call, const Dispatch__RoutingRule *rule);
/* How many rules of the rules file at path differ from the stored ones
 * (new, or another lead, assisting units or priority), and both counts. */
int router_rules_file_check(router_t *router, MDB_txn *txn, const char *path, size_t *differ,
                            size_t *file_rules, size_t *stored_rules);

/* Error reply helpers. */
void router_reply_error(router_t *self, const refusal_t *err, Dispatch__Error **ret);

const char *router_triage_cause_name(Dispatch__TriageCause cause);
const char *router_state_name(Dispatch__TicketState state);

#endif

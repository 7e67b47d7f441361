/* router_requests.c: AdminRequest from the admin endpoint (dispatchers,
 * supervisors, administrators, units listing their own tickets). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "codec.h"
#include "record.h"
#include "router_internal.h"

typedef admin_call_t admin_t;

/* The router serving the call. */
static router_t *router_of(const admin_t *a)
{
    return a->worker;
}

/* ---------------------------------------------------------- triage assign */

static int check_assignable(admin_t *a, const char *unit, const char *field)
{
    Dispatch__Unit *found;
    int rc = registry_unit_get(router_of(a)->registry, a->txn, unit, &found);
    if (rc == -ENOENT)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, field,
                      "unit %s is not registered", unit);
    if (rc < 0)
        return rc;
    bool active = found->active;
    dispatch__unit__free_unpacked(found, NULL);
    if (!active)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, field,
                      "unit %s is inactive", unit);
    return 0;
}

static int triage_assign(admin_t *a)
{
    const Dispatch__TriageAssign *request = a->request->triage_assign;
    if (admin_require(a, AUTHZ_TRIAGE_ASSIGN) ||
        refuse_text(a->err, "triage_assign.ticket_id", request->ticket_id, LIMIT_ID, true) ||
        refuse_text(a->err, "triage_assign.lead_unit", request->lead_unit, LIMIT_ID, true) ||
        refuse_units(a->err, "triage_assign.assisting_units", request->assisting_units,
                     request->n_assisting_units, request->lead_unit) ||
        refuse_text(a->err, "triage_assign.note", request->note, LIMIT_TEXT, false))
        return REFUSED;

    router_t *router = router_of(a);
    Dispatch__Router__RouterTicket *record;
    int rc = tickets_get(router->tickets, a->txn, request->ticket_id, &record);
    if (rc == -ENOENT)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "triage_assign.ticket_id",
                      "ticket %s is not known here", request->ticket_id);
    if (rc < 0)
        return rc;
    if (record->ticket->state != DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE) {
        rc = refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "triage_assign.ticket_id",
                    "ticket %s is %s, not in TRIAGE", request->ticket_id,
                    router_state_name(record->ticket->state));
        goto out;
    }
    rc = check_assignable(a, request->lead_unit, "triage_assign.lead_unit");
    for (size_t i = 0; rc == 0 && i < request->n_assisting_units; i++)
        rc = check_assignable(a, request->assisting_units[i], "triage_assign.assisting_units");
    if (rc != 0)
        goto out;

    Dispatch__TriageAssigned assigned = DISPATCH__TRIAGE_ASSIGNED__INIT;
    assigned.lead_unit = request->lead_unit;
    assigned.assisting_units = request->assisting_units;
    assigned.n_assisting_units = request->n_assisting_units;
    assigned.note = request->note;
    rc = router_emit(router, a->txn, record->ticket, a->request->actor_id, a->now, &assigned.base);
    if (rc < 0)
        goto out;
    router_assignment_t assignment = {
        .lead = request->lead_unit,
        .assisting = request->assisting_units,
        .assisting_count = request->n_assisting_units,
        .cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_TRIAGE,
        .note = request->note,
        .actor = a->request->actor_id,
    };
    rc = router_assign(router, a->txn, record, &assignment, a->now);
    if (rc == 0)
        admin_call_done(a, record->ticket->id, record->ticket->state);
out:
    dispatch__router__router_ticket__free_unpacked(record, NULL);
    return rc;
}

/* ---------------------------------------------------------- registry */

static int unit_upsert(admin_t *a)
{
    const Dispatch__UnitUpsert *request = a->request->unit_upsert;
    registry_t *registry = router_of(a)->registry;
    if (admin_require(a, AUTHZ_REGISTRY))
        return REFUSED;
    int rc = registry_check_unit(registry, a->txn, request->unit, true, "unit_upsert.unit", a->err);
    if (rc == 0)
        rc = registry_unit_put(registry, a->txn, request->unit);
    if (rc == 0)
        admin_call_done(a, "", DISPATCH__TICKET_STATE__TICKET_STATE_UNSPECIFIED);
    return rc;
}

static int unit_remove(admin_t *a)
{
    const char *id = a->request->unit_remove->unit_id;
    router_t *router = router_of(a);
    if (admin_require(a, AUTHZ_REGISTRY) ||
        refuse_text(a->err, "unit_remove.unit_id", id, LIMIT_ID, true))
        return REFUSED;
    Dispatch__Unit *unit;
    int rc = registry_unit_get(router->registry, a->txn, id, &unit);
    if (rc == -ENOENT)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "unit_remove.unit_id",
                      "unit %s is not registered", id);
    if (rc < 0)
        return rc;
    dispatch__unit__free_unpacked(unit, NULL);

    bool open;
    char other[2 * LIMIT_ID + 2];
    rc = tickets_unit_has_open(router->tickets, a->txn, id, &open);
    if (rc < 0)
        return rc;
    if (open)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "unit_remove.unit_id",
                      "unit %s has open tickets: set active = false instead", id);
    rc = registry_unit_first_child(router->registry, a->txn, id, other);
    if (rc < 0)
        return rc;
    if (*other)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "unit_remove.unit_id",
                      "unit %s is the parent of %s: move or remove its units first", id, other);
    rc = registry_rule_naming(router->registry, a->txn, id, other);
    if (rc < 0)
        return rc;
    if (*other)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "unit_remove.unit_id",
                      "routing rule %s names unit %s: change the rule first", other, id);
    rc = registry_unit_delete(router->registry, a->txn, id);
    if (rc == 0)
        rc = deliveries_drop_unit(router->deliveries, a->txn, id);
    if (rc == 0)
        admin_call_done(a, "", DISPATCH__TICKET_STATE__TICKET_STATE_UNSPECIFIED);
    return rc;
}

static int rule_upsert(admin_t *a)
{
    const Dispatch__RuleUpsert *request = a->request->rule_upsert;
    registry_t *registry = router_of(a)->registry;
    if (admin_require(a, AUTHZ_REGISTRY))
        return REFUSED;
    int rc = registry_check_rule(registry, a->txn, request->rule, "rule_upsert.rule", a->err);
    if (rc == 0)
        rc = registry_rule_put(registry, a->txn, request->rule);
    if (rc == 0)
        admin_call_done(a, "", DISPATCH__TICKET_STATE__TICKET_STATE_UNSPECIFIED);
    if (rc == 0)
        rc = router_rule_warnings(a, request->rule);
    return rc;
}

static int check_district(admin_t *a, const char *district, const char *field)
{
    if (refuse_text(a->err, field, district, LIMIT_ID, false))
        return REFUSED;
    if (*district && strcmp(district, router_of(a)->district) != 0)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, field,
                      "district %s is served by its own router; this router serves %s", district,
                      router_of(a)->district);
    return 0;
}

static int rule_remove(admin_t *a)
{
    const Dispatch__RuleRemove *request = a->request->rule_remove;
    if (admin_require(a, AUTHZ_REGISTRY) ||
        check_district(a, request->district, "rule_remove.district") ||
        refuse_text(a->err, "rule_remove.category", request->category, LIMIT_ID, true) ||
        refuse_text(a->err, "rule_remove.area", request->area, LIMIT_ID, false))
        return REFUSED;
    int rc = registry_rule_delete(router_of(a)->registry, a->txn, request->category, request->area);
    if (rc == -ENOENT)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "rule_remove.category",
                      "no rule for category '%s' in area '%s'", request->category, request->area);
    if (rc == 0)
        admin_call_done(a, "", DISPATCH__TICKET_STATE__TICKET_STATE_UNSPECIFIED);
    return rc;
}

/* ---------------------------------------------------------- queues */

typedef struct page {
    admin_t *admin;
    Dispatch__QueueKind kind;
} page_t;

static void fill_item(admin_entry_t *entry, Dispatch__QueueKind kind, Dispatch__HandlingRole role)
{
    const Dispatch__Router__RouterTicket *record =
        (const Dispatch__Router__RouterTicket *)entry->record;
    const Dispatch__Ticket *ticket = record->ticket;
    Dispatch__QueueItem *item = &entry->item;
    item->ticket_id = ticket->id;
    item->district = ticket->district;
    item->category = ticket->category;
    item->area = ticket->area;
    item->kind = ticket->kind;
    item->urgency = ticket->urgency;
    item->state = ticket->state;
    item->supervision = ticket->supervision;
    if (kind == DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE) {
        item->unit_id = record->triage_from_unit;
        item->since = record->triage_since;
        item->deadline = ticket->deadline_handle;
        item->triage_cause = record->triage_cause;
        snprintf(entry->text, sizeof(entry->text), "%s%s%s",
                 router_triage_cause_name(record->triage_cause), *record->triage_note ? ": " : "",
                 record->triage_note);
    } else {
        item->unit_id = ticket->assigned_unit;
        item->since = ticket->dispatched_at;
        item->deadline = ticket->state == DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED &&
                                 ticket->deadline_sign_for
                             ? ticket->deadline_sign_for
                             : ticket->deadline_handle;
        snprintf(entry->text, sizeof(entry->text), "%s",
                 role == DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD ? "lead" : "assisting");
    }
}

static int page_add(const char *ticket_id, Dispatch__HandlingRole role, void *ctx)
{
    page_t *page = ctx;
    router_t *router = router_of(page->admin);
    Dispatch__Router__RouterTicket *record;
    int rc = tickets_get(router->tickets, page->admin->txn, ticket_id, &record);
    if (rc == -ENOENT || rc == -EPROTO)
        return 0; /* the index outlived its record: nothing to show */
    if (rc < 0)
        return rc;
    admin_entry_t *entry;
    rc = admin_page_add(&router->reply.admin, &record->base, &entry);
    if (rc < 0 || !entry)
        return rc < 0 ? rc : 1;
    fill_item(entry, page->kind, role);
    return admin_page_keep(&router->reply.admin);
}

static int list_queue(admin_t *a)
{
    const Dispatch__ListQueue *request = a->request->list_queue;
    router_t *router = router_of(a);
    if (admin_check_queue(a->err, request->kind, LIFECYCLE_ROUTER))
        return REFUSED;
    if (request->kind == DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE &&
        admin_require(a, AUTHZ_LIST_TRIAGE))
        return REFUSED;
    if (request->kind == DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT) {
        if (admin_require(a, AUTHZ_LIST_UNIT) ||
            refuse_text(a->err, "list_queue.unit_id", request->unit_id, LIMIT_ID, true))
            return REFUSED;
        if (a->request->role == DISPATCH__ROLE__ROLE_UNIT &&
            authz_unit(a->err, "list_queue.unit_id", a->actor, a->request->actor_id,
                       request->unit_id))
            return REFUSED;
        Dispatch__Unit *unit;
        int found = registry_unit_get(router->registry, a->txn, request->unit_id, &unit);
        if (found == -ENOENT)
            return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "list_queue.unit_id",
                          "unit %s is not registered with the router of %s", request->unit_id,
                          router->district);
        if (found < 0)
            return found;
        dispatch__unit__free_unpacked(unit, NULL);
    }
    if (check_district(a, request->district, "list_queue.district") ||
        refuse_text(a->err, "list_queue.after_ticket_id", request->after_ticket_id, LIMIT_ID,
                    false) ||
        admin_page_start(&router->reply.admin, a->err, request->limit))
        return REFUSED;

    page_t page = {a, request->kind};
    int rc = request->kind == DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE
                 ? tickets_triage_each(router->tickets, a->txn, request->after_ticket_id, page_add,
                                       &page)
                 : tickets_unit_each(router->tickets, a->txn, request->unit_id,
                                     request->after_ticket_id, page_add, &page);
    if (rc < 0)
        return rc;
    return admin_page_finish(&router->reply.admin, a->reply);
}

/* ---------------------------------------------------------- entry */

static int serve(admin_t *a)
{
    switch (a->request->body_case) {
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN:
        return triage_assign(a);
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT:
        return unit_upsert(a);
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE:
        return unit_remove(a);
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT:
        return rule_upsert(a);
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE:
        return rule_remove(a);
    case DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE:
        return list_queue(a);
    case DISPATCH__ADMIN_REQUEST__BODY_RULES_IMPORT:
    case DISPATCH__ADMIN_REQUEST__BODY_DATA_RELOAD:
    case DISPATCH__ADMIN_REQUEST__BODY_RULES_LIST:
    case DISPATCH__ADMIN_REQUEST__BODY_UNITS_LIST:
    case DISPATCH__ADMIN_REQUEST__BODY_ROUTE_EXPLAIN:
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_REROUTE:
    case DISPATCH__ADMIN_REQUEST__BODY_TICKET_OWNERS_LIST:
        return router_serve_rules(a);
    case DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION: /* admin_served_by() */
    case DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF:
    case DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY: /* admin_handle() */
    case DISPATCH__ADMIN_REQUEST__BODY_STATS:
    case DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT:
    case DISPATCH__ADMIN_REQUEST__BODY__NOT_SET:
        break;
    }
    return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, "body", "not served here");
}

int router_handle_admin(router_t *self, MDB_txn *txn, const auth_actor_t *actor, const void *body,
                        size_t len, int64_t now_ms, Dispatch__AdminReply *reply)
{
    router_reply_reset(self);
    return admin_handle(&self->reply.admin, LIFECYCLE_ROUTER, self, self->store, self->bus, txn,
                        actor, now_ms, body, len, ROUTER_MAX_ADMIN_REQUEST, serve, reply);
}

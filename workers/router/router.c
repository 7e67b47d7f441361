/* router.c: construction, and the state changes every input shares
 * (assign, triage, route, release) with their events and deliveries. */
#include "router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "event.h"
#include "lifecycle.h"
#include "mask.h"
#include "record.h"
#include "router_internal.h"
#include "words.h"

#define DEFAULT_RETURN_WINDOW_MS (24LL * 3600 * 1000)
#define DEFAULT_MAX_RETURNS 2

int router_new(store_t *store, bus_t *bus, const config_t *config, const char *name,
               const router_options_t *options, router_t **ret)
{
    const config_worker_t *me = config_worker_find(config, name);
    if (!me || strcmp(me->kind, "router") != 0 || !me->district || strlen(me->district) > LIMIT_ID)
        return -EINVAL;
    router_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->store = store;
    self->bus = bus;
    snprintf(self->name, sizeof(self->name), "%s", name);
    snprintf(self->district, sizeof(self->district), "%s", me->district);
    if (options)
        self->options = *options;
    if (self->options.return_window_ms <= 0)
        self->options.return_window_ms = DEFAULT_RETURN_WINDOW_MS;
    if (self->options.max_returns == 0)
        self->options.max_returns = DEFAULT_MAX_RETURNS;

    int rc = registry_new(store, self->district, &self->registry);
    if (rc == 0)
        rc = tickets_new(store, &self->tickets);
    if (rc == 0)
        rc = deliveries_new(store, self->options.delivery_window, &self->deliveries);
    const store_db_t dbs[] = {
        {"router.meta", &self->meta, 0},
        {"router.actions", &self->actions, 0},
    };
    if (rc == 0)
        rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc == 0)
        rc = peers_new(config, name, bus, &self->peers);
    if (rc < 0) {
        router_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void router_destroy(router_t **self)
{
    router_t *router = *self;
    if (!router)
        return;
    router_reply_reset(router);
    admin_reply_free(&router->reply.admin);
    registry_destroy(&router->registry);
    tickets_destroy(&router->tickets);
    deliveries_destroy(&router->deliveries);
    peers_destroy(&router->peers);
    endpoint_destroy(&router->unit_endpoint);
    endpoint_destroy(&router->admin_endpoint);
    free(router);
    *self = NULL;
}

const char *router_district(const router_t *self)
{
    return self->district;
}

void router_reply_reset(router_t *self)
{
    admin_reply_reset(&self->reply.admin);
}

/* ------------------------------------------------------------- names */

/* Display text for queue items and notes, not enum words (common/words.h). */
const char *router_triage_cause_name(Dispatch__TriageCause cause)
{
    switch (cause) {
    case DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNSPECIFIED:
        break;
    case DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_NO_RULE:
        return "no routing rule";
    case DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNIT_INACTIVE:
        return "unit inactive or unknown";
    case DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_RETURNED:
        return "returned, no next unit";
    case DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_OBJECTION:
        return "objection";
    }
    return "unspecified";
}

const char *router_state_name(Dispatch__TicketState state)
{
    const char *suffix = words_suffix(&dispatch__ticket_state__descriptor, state);
    return suffix ? suffix : "UNKNOWN";
}

void router_reply_error(router_t *self, const refusal_t *err, Dispatch__Error **ret)
{
    admin_reply_t *reply = &self->reply.admin;
    reply->refusal = *err;
    refusal_error(&reply->refusal, &reply->error);
    *ret = &reply->error;
}

/* ------------------------------------------------------------- effects */

int router_emit(router_t *self, MDB_txn *txn, Dispatch__Ticket *ticket, const char *actor,
                int64_t now, ProtobufCMessage *body)
{
    char id[EVENT_ID_SIZE];
    int rc = event_next_id(txn, self->meta, self->name, self->bus, id);
    if (rc < 0)
        return rc;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event_set_body(&event, body);
    event.event_id = id;
    event.ticket_id = ticket->id;
    event.district = ticket->district;
    event.at = now;
    event.actor = (char *)(actor && *actor ? actor : ROUTER_ACTOR);
    event.origin = self->name;
    rc = peers_send(self->peers, txn, &event);
    /* Last: the fold may free strings the event points to (its own). */
    return rc < 0 ? rc : lifecycle_apply(ticket, &event, now, LIFECYCLE_COPY);
}

int router_deliver(router_t *self, MDB_txn *txn, const char *unit, const char *ticket_id,
                   int64_t now, Dispatch__UnitDelivery *delivery)
{
    delivery->unit_id = (char *)unit;
    delivery->ticket_id = (char *)ticket_id;
    delivery->at = now;
    return deliveries_append(self->deliveries, txn, delivery);
}

int router_deliver_withdrawn(router_t *self, MDB_txn *txn, const char *unit, const char *ticket_id,
                             const char *reason, int64_t now)
{
    Dispatch__Withdrawn withdrawn = DISPATCH__WITHDRAWN__INIT;
    withdrawn.reason = (char *)reason;
    Dispatch__UnitDelivery delivery = DISPATCH__UNIT_DELIVERY__INIT;
    delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_WITHDRAWN;
    delivery.withdrawn = &withdrawn;
    return router_deliver(self, txn, unit, ticket_id, now, &delivery);
}

/* The ticket as a unit may see it: caller masked when confidential. The
 * copy is shallow; name and phone point into the buffers given. */
static void ticket_for_unit(const Dispatch__Ticket *ticket, Dispatch__Ticket *copy, char *name,
                            char *phone, size_t len)
{
    *copy = *ticket;
    if (!ticket->caller_confidential)
        return;
    mask_name(ticket->caller_name, name, len);
    mask_phone(ticket->caller_phone, phone, len);
    copy->caller_name = name;
    copy->caller_phone = phone;
}

static int deliver_ticket(router_t *self, MDB_txn *txn,
                          const Dispatch__Router__RouterTicket *record, const char *unit,
                          Dispatch__HandlingRole role, const router_assignment_t *assignment,
                          int64_t now)
{
    Dispatch__Ticket ticket;
    char name[4 * LIMIT_NAME + 1], phone[4 * LIMIT_NAME + 1];
    ticket_for_unit(record->ticket, &ticket, name, phone, sizeof(name));
    Dispatch__UnitDelivery delivery = DISPATCH__UNIT_DELIVERY__INIT;
    Dispatch__DispatchedTicket dispatched = DISPATCH__DISPATCHED_TICKET__INIT;
    Dispatch__ReopenedTicket reopened = DISPATCH__REOPENED_TICKET__INIT;
    if (assignment->reopened) {
        reopened.ticket = &ticket;
        reopened.role = role;
        reopened.reason = (char *)(assignment->reopen_reason ? assignment->reopen_reason : "");
        reopened.satisfaction = assignment->satisfaction;
        delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_REOPENED;
        delivery.reopened = &reopened;
    } else {
        dispatched.ticket = &ticket;
        dispatched.role = role;
        dispatched.cause = assignment->cause;
        dispatched.note = (char *)(assignment->note ? assignment->note : "");
        delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED;
        delivery.dispatched = &dispatched;
    }
    return router_deliver(self, txn, unit, record->ticket->id, now, &delivery);
}

int router_save(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record, int64_t now)
{
    record->ticket->updated_at = now;
    return tickets_put(self->tickets, txn, record);
}

/* Units assigned to the ticket now: lead first, then assisting. */
typedef struct unit_set {
    char ids[LIMIT_UNITS + 1][LIMIT_ID + 1];
    size_t count;
} unit_set_t;

static void unit_set_add(unit_set_t *set, const char *id)
{
    if (!*id || set->count == LIMIT_UNITS + 1)
        return;
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->ids[i], id) == 0)
            return;
    snprintf(set->ids[set->count++], LIMIT_ID + 1, "%s", id);
}

static void assigned_units(const Dispatch__Ticket *ticket, unit_set_t *set)
{
    set->count = 0;
    unit_set_add(set, ticket->assigned_unit);
    for (size_t i = 0; i < ticket->n_assisting_units; i++)
        unit_set_add(set, ticket->assisting_units[i]);
}

static const char *withdraw_reason(Dispatch__DispatchCause cause)
{
    switch (cause) {
    case DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_TRIAGE:
        return "reassigned by a dispatcher";
    case DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REROUTE:
        return "rerouted after a return";
    case DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_UNSPECIFIED:
    case DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE:
    case DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REOPEN:
        break;
    }
    return "reassigned";
}

int router_assign(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                  const router_assignment_t *assignment, int64_t now)
{
    Dispatch__Ticket *ticket = record->ticket;
    unit_set_t before, after = {.count = 0};
    assigned_units(ticket, &before);
    unit_set_add(&after, assignment->lead);
    for (size_t i = 0; i < assignment->assisting_count; i++)
        unit_set_add(&after, assignment->assisting[i]);

    int rc = 0;
    for (size_t i = 0; rc == 0 && i < before.count; i++) {
        bool kept = false;
        for (size_t j = 0; j < after.count; j++)
            kept = kept || strcmp(before.ids[i], after.ids[j]) == 0;
        if (kept)
            continue;
        rc = router_deliver_withdrawn(self, txn, before.ids[i], ticket->id,
                                      withdraw_reason(assignment->cause), now);
        if (rc == 0)
            rc = tickets_unit_delete(self->tickets, txn, before.ids[i], ticket->id);
    }
    if (rc < 0)
        return rc;

    ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED;
    ticket->dispatched_at = now;
    ticket->updated_at = now;
    ticket->accepted_at = 0;
    rc = record_string_set(&ticket->assigned_unit, assignment->lead);
    if (rc == 0)
        rc = record_strings_set(&ticket->assisting_units, &ticket->n_assisting_units,
                                assignment->assisting, assignment->assisting_count);
    if (rc == 0)
        rc = record_string_set(&record->dispatch_note, assignment->note);
    if (rc == 0)
        rc = record_string_set(&record->triage_from_unit, "");
    if (rc == 0)
        rc = record_string_set(&record->triage_note, "");
    if (rc < 0)
        return rc;
    record_strings_clear(&record->signed_by, &record->n_signed_by);
    record->dispatch_cause = assignment->cause;
    record->triage_cause = DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNSPECIFIED;
    record->triage_since = 0;

    rc = tickets_triage_delete(self->tickets, txn, ticket->id);
    for (size_t i = 0; rc == 0 && i < after.count; i++) {
        Dispatch__HandlingRole role = i == 0 ? DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD
                                             : DISPATCH__HANDLING_ROLE__HANDLING_ROLE_ASSIST;
        rc = tickets_unit_put(self->tickets, txn, after.ids[i], ticket->id, role);
        if (rc == 0)
            rc = deliver_ticket(self, txn, record, after.ids[i], role, assignment, now);
    }
    if (rc < 0)
        return rc;

    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = ticket->assigned_unit;
    dispatched.assisting_units = ticket->assisting_units;
    dispatched.n_assisting_units = ticket->n_assisting_units;
    dispatched.cause = assignment->cause;
    dispatched.note = (char *)(assignment->note ? assignment->note : "");
    /* Escalation takes its deadlines from these. */
    dispatched.kind = ticket->kind;
    dispatched.urgency = ticket->urgency;
    dispatched.category = ticket->category;
    dispatched.area = ticket->area;
    dispatched.registered_at = ticket->registered_at;
    rc = router_emit(self, txn, ticket, assignment->actor, now, &dispatched.base);
    return rc < 0 ? rc : router_save(self, txn, record, now);
}

int router_triage(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                  Dispatch__TriageCause cause, const char *from_unit, const char *note,
                  const char *actor, int64_t now)
{
    Dispatch__Ticket *ticket = record->ticket;
    int rc = 0;
    if (*ticket->assigned_unit) {
        char reason[LIMIT_TEXT + 1];
        snprintf(reason, sizeof(reason), "to triage: %s", router_triage_cause_name(cause));
        rc = router_deliver_withdrawn(self, txn, ticket->assigned_unit, ticket->id, reason, now);
        if (rc == 0)
            rc = tickets_unit_delete(self->tickets, txn, ticket->assigned_unit, ticket->id);
        if (rc == 0)
            rc = record_string_set(&ticket->assigned_unit, "");
    }
    ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE;
    record->triage_cause = cause;
    record->triage_since = now;
    if (rc == 0)
        rc = record_string_set(&record->triage_from_unit, from_unit);
    if (rc == 0)
        rc = record_string_set(&record->triage_note, note);
    if (rc == 0)
        rc = tickets_triage_put(self->tickets, txn, ticket->id, now);
    if (rc < 0)
        return rc;

    Dispatch__TicketTriaged triaged = DISPATCH__TICKET_TRIAGED__INIT;
    triaged.cause = cause;
    triaged.from_unit = (char *)(from_unit ? from_unit : "");
    triaged.note = (char *)(note ? note : "");
    rc = router_emit(self, txn, ticket, actor, now, &triaged.base);
    return rc < 0 ? rc : router_save(self, txn, record, now);
}

int router_route(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                 Dispatch__DispatchCause cause, const char *actor, int64_t now)
{
    const Dispatch__Ticket *ticket = record->ticket;
    Dispatch__RoutingRule *rule;
    int rc = registry_route(self->registry, txn, ticket->category, ticket->area, &rule);
    if (rc == -ENOENT) {
        char note[LIMIT_TEXT + 1];
        snprintf(note, sizeof(note), "no routing rule for category '%s' in area '%s'",
                 ticket->category, ticket->area);
        return router_triage(self, txn, record, DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_NO_RULE, "",
                             note, actor, now);
    }
    if (rc < 0)
        return rc;

    bool usable;
    rc = registry_unit_usable(self->registry, txn, rule->lead_unit, &usable);
    if (rc == 0 && !usable) {
        char note[LIMIT_TEXT + 1];
        snprintf(note, sizeof(note), "lead unit %s of rule %s/%s is inactive or not registered",
                 rule->lead_unit, rule->category, rule->area);
        rc = router_triage(self, txn, record, DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNIT_INACTIVE,
                           rule->lead_unit, note, actor, now);
        dispatch__routing_rule__free_unpacked(rule, NULL);
        return rc;
    }
    /* Assisting units that cannot take tickets now are left out. */
    char *assisting[LIMIT_UNITS];
    size_t count = 0;
    for (size_t i = 0; rc == 0 && i < rule->n_assisting_units && count < LIMIT_UNITS; i++) {
        rc = registry_unit_usable(self->registry, txn, rule->assisting_units[i], &usable);
        if (rc == 0 && usable && strcmp(rule->assisting_units[i], rule->lead_unit) != 0)
            assisting[count++] = rule->assisting_units[i];
    }
    if (rc == 0) {
        router_assignment_t assignment = {
            .lead = rule->lead_unit,
            .assisting = assisting,
            .assisting_count = count,
            .cause = cause,
            .note = "",
            .actor = actor,
        };
        rc = router_assign(self, txn, record, &assignment, now);
    }
    dispatch__routing_rule__free_unpacked(rule, NULL);
    return rc;
}

int router_release(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                   const char *reason, int64_t now)
{
    Dispatch__Ticket *ticket = record->ticket;
    unit_set_t units;
    assigned_units(ticket, &units);
    int rc = tickets_triage_delete(self->tickets, txn, ticket->id);
    for (size_t i = 0; rc == 0 && i < units.count; i++) {
        if (reason)
            rc = router_deliver_withdrawn(self, txn, units.ids[i], ticket->id, reason, now);
        if (rc == 0)
            rc = tickets_unit_delete(self->tickets, txn, units.ids[i], ticket->id);
    }
    record->triage_since = 0;
    return rc;
}

/* ------------------------------------------------------------- seeding */

int router_load_units_csv(router_t *self, MDB_txn *txn, const char *path, char *err, size_t err_len)
{
    return registry_load_units_csv(self->registry, txn, path, err, err_len);
}

int router_load_rules_csv(router_t *self, MDB_txn *txn, const char *path, char *err, size_t err_len)
{
    return registry_load_rules_csv(self->registry, txn, path, err, err_len);
}

typedef struct seed {
    router_t *router;
    char units_path[4096], rules_path[4096];
    size_t units, rules;
    char *err;
    size_t err_len;
} seed_t;

static bool file_exists(const char *path)
{
    FILE *file = fopen(path, "r");
    if (file)
        fclose(file);
    return file != NULL;
}

static int seed_fn(MDB_txn *txn, void *ctx)
{
    seed_t *seed = ctx;
    registry_t *registry = seed->router->registry;
    seed->units = seed->rules = 0;
    int rc = 0;
    if (registry_unit_count(registry, txn) == 0 && file_exists(seed->units_path)) {
        rc = registry_load_units_csv(registry, txn, seed->units_path, seed->err, seed->err_len);
        seed->units = registry_unit_count(registry, txn);
    }
    if (rc == 0 && registry_rule_count(registry, txn) == 0 && file_exists(seed->rules_path)) {
        rc = registry_load_rules_csv(registry, txn, seed->rules_path, seed->err, seed->err_len);
        seed->rules = registry_rule_count(registry, txn);
    }
    return rc;
}

int router_seed(router_t *self, const char *data_dir, size_t *loaded_units, size_t *loaded_rules,
                char *err, size_t err_len)
{
    seed_t *seed = calloc(1, sizeof(*seed));
    if (!seed)
        return -ENOMEM;
    seed->router = self;
    seed->err = err;
    seed->err_len = err_len;
    snprintf(seed->units_path, sizeof(seed->units_path), "%s/units.csv", data_dir);
    snprintf(seed->rules_path, sizeof(seed->rules_path), "%s/rules.csv", data_dir);
    if (err_len)
        *err = '\0';
    int rc = store_write(self->store, seed_fn, seed);
    if (rc == 0) {
        if (loaded_units)
            *loaded_units = seed->units;
        if (loaded_rules)
            *loaded_rules = seed->rules;
    } else if (err_len && !*err) {
        snprintf(err, err_len, "seeding from %s: %s", data_dir, store_strerror(rc));
    }
    free(seed);
    return rc;
}

/* ------------------------------------------------------------- deliveries */

int router_pending_deliveries(router_t *self, MDB_txn *txn, const char *unit_id, uint64_t from_seq,
                              router_delivery_fn fn, void *ctx)
{
    return deliveries_each(self->deliveries, txn, unit_id, from_seq, 0, fn, ctx);
}

void router_batch_begin(router_t *self)
{
    deliveries_batch_begin(self->deliveries);
}

int router_batch_done(router_t *self, int rc, deliveries_send_fn send, void *ctx)
{
    return deliveries_batch_done(self->deliveries, rc, send, ctx);
}

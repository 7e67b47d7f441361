/* router_events.c: events from the bus (intake, escalation). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "lifecycle.h"
#include "log.h"
#include "record.h"
#include "router_internal.h"

/* The first field in which two registrations under one id differ, or NULL
 * when they are the same ticket (a registration delivered again). */
static const char *registration_differs(const Dispatch__Ticket *known,
                                        const Dispatch__Ticket *incoming)
{
    if (strcmp(known->client_request_id, incoming->client_request_id) != 0)
        return "client_request_id";
    if (known->registered_at != incoming->registered_at)
        return "registered_at";
    if (known->channel != incoming->channel || known->kind != incoming->kind)
        return "channel or kind";
    if (strcmp(known->district, incoming->district) != 0)
        return "district";
    if (strcmp(known->description, incoming->description) != 0)
        return "description";
    return NULL;
}

static int on_registered(router_t *self, MDB_txn *txn, const Dispatch__Event *event, int64_t now)
{
    const Dispatch__Ticket *ticket = event->ticket_registered->ticket;
    if (!ticket || !*ticket->id || strlen(ticket->id) > LIMIT_ID ||
        strlen(ticket->district) > LIMIT_ID || strlen(ticket->category) > LIMIT_ID ||
        strlen(ticket->area) > LIMIT_ID ||
        (*event->ticket_id && strcmp(event->ticket_id, ticket->id) != 0))
        return BUS_REJECTED;

    Dispatch__Router__RouterTicket *record;
    int rc = tickets_get(self->tickets, txn, ticket->id, &record);
    if (rc == 0) {
        /* Already known: it was decided when it first came, unless this is
         * another ticket under the same id (two intakes issuing one id). */
        const char *differs = registration_differs(record->ticket, ticket);
        if (differs)
            log_warn("ticket_registered %s from %s: a ticket with this id is known with another "
                     "%s; refused (dead letter), the first one stands",
                     ticket->id, event->origin, differs);
        dispatch__router__router_ticket__free_unpacked(record, NULL);
        return differs ? BUS_REJECTED : 0;
    }
    if (rc != -ENOENT)
        return rc;

    Dispatch__Router__RouterTicket fresh = DISPATCH__ROUTER__ROUTER_TICKET__INIT;
    fresh.ticket = (Dispatch__Ticket *)ticket;
    fresh.routed_here = strcmp(ticket->district, self->district) == 0;
    /* A deep copy that the record helpers may edit. */
    record = (Dispatch__Router__RouterTicket *)record_clone(&fresh.base);
    if (!record)
        return -ENOMEM;
    Dispatch__Ticket *own = record->ticket;
    /* The intake's assignment fields mean nothing here. */
    rc = record_string_set(&own->assigned_unit, "");
    if (rc == 0)
        record_strings_clear(&own->assisting_units, &own->n_assisting_units);
    if (rc == 0) {
        if (record->routed_here && own->state == DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED)
            rc = router_route(self, txn, record, DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE,
                              ROUTER_ACTOR, now);
        else
            rc = router_save(self, txn, record, now);
    }
    dispatch__router__router_ticket__free_unpacked(record, NULL);
    return rc;
}

/* The lead unit of the ticket, or unit when given. */
static const char *target_unit(const Dispatch__Ticket *ticket, const char *unit)
{
    return unit && *unit ? unit : ticket->assigned_unit;
}

static bool is_assigned(const Dispatch__Ticket *ticket, const char *unit)
{
    return strcmp(ticket->assigned_unit, unit) == 0 ||
           record_strings_contain(ticket->assisting_units, ticket->n_assisting_units, unit);
}

/* Delivers body to unit when the ticket is open and the unit still has it
 * (a reminder for a ticket that moved on is stale). */
static int deliver_notice(router_t *self, MDB_txn *txn, const Dispatch__Ticket *ticket,
                          const char *unit, int64_t now, Dispatch__UnitDelivery *delivery)
{
    if (!*unit || lifecycle_state_final(ticket->state) || !is_assigned(ticket, unit))
        return 0;
    return router_deliver(self, txn, unit, ticket->id, now, delivery);
}

static int on_reopened(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                       const Dispatch__Event *event, int64_t now)
{
    Dispatch__Ticket *ticket = record->ticket;
    const Dispatch__TicketReopened *reopened = event->ticket_reopened;
    if (!record->routed_here)
        return router_save(self, txn, record, now);
    if (!*ticket->assigned_unit)
        return router_route(self, txn, record, DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REOPEN,
                            ROUTER_ACTOR, now);
    bool usable;
    int rc = registry_unit_usable(self->registry, txn, ticket->assigned_unit, &usable);
    if (rc < 0)
        return rc;
    if (!usable) {
        char lead[LIMIT_ID + 1], note[LIMIT_TEXT + 1];
        snprintf(lead, sizeof(lead), "%s", ticket->assigned_unit);
        snprintf(note, sizeof(note), "reopened; lead unit %s is inactive or not registered", lead);
        return router_triage(self, txn, record, DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNIT_INACTIVE,
                             lead, note, ROUTER_ACTOR, now);
    }
    /* Same lead and assisting units; copies, as assign replaces them. */
    char lead[LIMIT_ID + 1];
    char assisting_ids[LIMIT_UNITS][LIMIT_ID + 1];
    char *assisting[LIMIT_UNITS];
    size_t count = 0;
    snprintf(lead, sizeof(lead), "%s", ticket->assigned_unit);
    for (size_t i = 0; i < ticket->n_assisting_units && count < LIMIT_UNITS; i++) {
        snprintf(assisting_ids[count], LIMIT_ID + 1, "%s", ticket->assisting_units[i]);
        assisting[count] = assisting_ids[count];
        count++;
    }
    router_assignment_t assignment = {
        .lead = lead,
        .assisting = assisting,
        .assisting_count = count,
        .cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REOPEN,
        .note = "",
        .actor = ROUTER_ACTOR,
        .reopened = true,
        .reopen_reason = reopened->reason,
        .satisfaction = reopened->satisfaction,
    };
    return router_assign(self, txn, record, &assignment, now);
}

static int on_final(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                    const char *reason, int64_t now)
{
    int rc = router_release(self, txn, record, reason, now);
    return rc < 0 ? rc : router_save(self, txn, record, now);
}

static int on_reminder(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                       const Dispatch__ReminderSent *sent, int64_t now)
{
    Dispatch__Ticket *ticket = record->ticket;
    Dispatch__Reminder reminder = DISPATCH__REMINDER__INIT;
    reminder.deadline_kind = sent->deadline_kind;
    reminder.deadline = sent->deadline;
    reminder.overdue = sent->overdue;
    reminder.level = ticket->supervision;
    reminder.text = sent->text;
    Dispatch__UnitDelivery delivery = DISPATCH__UNIT_DELIVERY__INIT;
    delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_REMINDER;
    delivery.reminder = &reminder;
    int rc = deliver_notice(self, txn, ticket, target_unit(ticket, sent->unit_id), now, &delivery);
    return rc < 0 ? rc : router_save(self, txn, record, now);
}

static int on_signed_off(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                         const Dispatch__SignedOff *signed_off, int64_t now)
{
    Dispatch__LeaderSignOff sign_off = DISPATCH__LEADER_SIGN_OFF__INIT;
    sign_off.ticket_id = record->ticket->id;
    sign_off.report_id = signed_off->report_id;
    sign_off.leader = signed_off->leader;
    sign_off.instruction = signed_off->instruction;
    Dispatch__UnitDelivery delivery = DISPATCH__UNIT_DELIVERY__INIT;
    delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF;
    delivery.sign_off = &sign_off;
    return deliver_notice(self, txn, record->ticket, record->ticket->assigned_unit, now, &delivery);
}

static int on_extension_decision(router_t *self, MDB_txn *txn,
                                 Dispatch__Router__RouterTicket *record, bool granted,
                                 const char *request_id, int64_t new_deadline, const char *note,
                                 int64_t now)
{
    Dispatch__Ticket *ticket = record->ticket;
    Dispatch__ExtensionDecision decision = DISPATCH__EXTENSION_DECISION__INIT;
    decision.ticket_id = ticket->id;
    decision.request_id = (char *)request_id;
    decision.granted = granted;
    decision.new_deadline = new_deadline;
    decision.note = (char *)note;
    Dispatch__UnitDelivery delivery = DISPATCH__UNIT_DELIVERY__INIT;
    delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION;
    delivery.extension_decision = &decision;
    int rc = deliver_notice(self, txn, ticket, ticket->assigned_unit, now, &delivery);
    return rc < 0 ? rc : router_save(self, txn, record, now);
}

/* The router's side of an event it receives, after lifecycle_apply()
 * folded it into the ticket. */
static int apply_event(router_t *self, MDB_txn *txn, Dispatch__Router__RouterTicket *record,
                       const Dispatch__Event *event, int64_t now)
{
    switch (event->body_case) {
    case DISPATCH__EVENT__BODY_TICKET_REOPENED:
        return on_reopened(self, txn, record, event, now);
    case DISPATCH__EVENT__BODY_TICKET_CLOSED:
        return on_final(self, txn, record, NULL, now);
    case DISPATCH__EVENT__BODY_TICKET_MERGED: {
        char reason[LIMIT_TEXT + 1];
        snprintf(reason, sizeof(reason), "merged into %s", event->ticket_merged->master_id);
        return on_final(self, txn, record, reason, now);
    }
    case DISPATCH__EVENT__BODY_TICKET_TRANSFERRED:
        return on_final(self, txn, record, "handed over to an emergency line", now);
    case DISPATCH__EVENT__BODY_REMINDER_SENT:
        return on_reminder(self, txn, record, event->reminder_sent, now);
    case DISPATCH__EVENT__BODY_SIGNED_OFF:
        return on_signed_off(self, txn, record, event->signed_off, now);
    case DISPATCH__EVENT__BODY_EXTENSION_GRANTED:
        return on_extension_decision(self, txn, record, true, event->extension_granted->request_id,
                                     event->extension_granted->new_deadline_handle,
                                     event->extension_granted->note, now);
    case DISPATCH__EVENT__BODY_EXTENSION_REFUSED:
        return on_extension_decision(self, txn, record, false, event->extension_refused->request_id,
                                     0, event->extension_refused->note, now);
    case DISPATCH__EVENT__BODY_CALLED_BACK:
    case DISPATCH__EVENT__BODY_TICKET_RESOLVED:
    case DISPATCH__EVENT__BODY_TICKET_ESCALATED:
    case DISPATCH__EVENT__BODY_CLOCK_RESUMED:
    case DISPATCH__EVENT__BODY_DEADLINES_SET:
        return router_save(self, txn, record, now);
    case DISPATCH__EVENT__BODY_TICKET_OVERDUE: /* escalation's own bookkeeping */
    case DISPATCH__EVENT__BODY_SIGN_OFF_REQUESTED:
    case DISPATCH__EVENT__BODY_CLOCK_PAUSED:
        return 0;
    case DISPATCH__EVENT__BODY_TICKET_REGISTERED: /* on_registered() */
    case DISPATCH__EVENT__BODY_TICKET_DISPATCHED: /* the router's own */
    case DISPATCH__EVENT__BODY_TICKET_ACCEPTED:
    case DISPATCH__EVENT__BODY_TICKET_RETURNED:
    case DISPATCH__EVENT__BODY_TICKET_REROUTED:
    case DISPATCH__EVENT__BODY_TICKET_TRIAGED:
    case DISPATCH__EVENT__BODY_TRIAGE_ASSIGNED:
    case DISPATCH__EVENT__BODY_EXTENSION_REQUESTED:
    case DISPATCH__EVENT__BODY_PROGRESS_REPORTED:
    case DISPATCH__EVENT__BODY__NOT_SET:
        return BUS_REJECTED;
    }
    return BUS_REJECTED;
}

int router_handle_event(router_t *self, MDB_txn *txn, const void *body, size_t len, int64_t now_ms)
{
    router_reply_reset(self);
    Dispatch__Event *event;
    char err[256];
    if (event_decode(body, len, &event, err, sizeof(err)) < 0)
        return BUS_REJECTED;
    int rc = BUS_REJECTED;
    if (!lifecycle_receives(LIFECYCLE_ROUTER, event->body_case)) {
        rc = BUS_REJECTED; /* the router's own events, or none */
    } else if (event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED) {
        rc = on_registered(self, txn, event, now_ms);
    } else if (event->body_case == DISPATCH__EVENT__BODY_SIGNED_OFF && !*event->ticket_id) {
        rc = 0; /* an instruction on a special report: no unit to deliver to */
    } else {
        Dispatch__Router__RouterTicket *record;
        rc = tickets_get(self->tickets, txn, event->ticket_id, &record);
        if (rc == 0) {
            bool reopen = event->body_case == DISPATCH__EVENT__BODY_TICKET_REOPENED;
            if (reopen && lifecycle_state_final(record->ticket->state))
                rc = BUS_REJECTED; /* a final ticket is never reopened */
            else
                rc = lifecycle_apply(record->ticket, event, event->at ? event->at : now_ms,
                                     LIFECYCLE_COPY);
            if (rc == 0)
                rc = apply_event(self, txn, record, event, now_ms);
            dispatch__router__router_ticket__free_unpacked(record, NULL);
        } else if (rc == -ENOENT) {
            rc = BUS_REJECTED;
        }
    }
    event_free(event);
    return rc;
}

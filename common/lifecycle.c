/* lifecycle: see lifecycle.h. */
#include "lifecycle.h"

#include <errno.h>
#include <string.h>

#include "record.h"

#define INTAKE LIFECYCLE_INTAKE
#define ROUTER LIFECYCLE_ROUTER
#define ESCALATION LIFECYCLE_ESCALATION
#define AUDIT LIFECYCLE_AUDIT
#define STATE(s) DISPATCH__TICKET_STATE__TICKET_STATE_##s
#define ROW(member, from, to, after, unit, text)                                                   \
    [DISPATCH__EVENT__BODY_##member] = {DISPATCH__EVENT__BODY_##member, from, to, after, unit, text}

/* docs/protocol.md section 8.1: event, emitters, receivers, state after,
 * the fields of its body that its history line shows (unit, text). Every
 * worker hears of every event of a
 * ticket that it keeps a copy of: intake (the public status and history)
 * hears of all, the router of what intake and escalation decide, escalation
 * of what the router decides; audit records everything. */
static const lifecycle_event_t rows[] = {
    ROW(TICKET_REGISTERED, INTAKE, ROUTER | AUDIT, STATE(REGISTERED), NULL, NULL),
    ROW(TICKET_MERGED, INTAKE, ROUTER | AUDIT, STATE(MERGED), NULL, "reason"),
    ROW(TICKET_TRANSFERRED, INTAKE, AUDIT, STATE(TRANSFERRED), NULL, "note"),
    ROW(TICKET_DISPATCHED, ROUTER, INTAKE | ESCALATION | AUDIT, STATE(DISPATCHED), "unit_id",
        "note"),
    ROW(TICKET_ACCEPTED, ROUTER, INTAKE | ESCALATION | AUDIT, STATE(ACCEPTED), "unit_id", NULL),
    ROW(TICKET_RETURNED, ROUTER, INTAKE | ESCALATION | AUDIT, STATE(RETURNED), "unit_id", "reason"),
    ROW(TICKET_REROUTED, ROUTER, INTAKE | ESCALATION | AUDIT, STATE(UNSPECIFIED), "to_unit",
        "reason"),
    ROW(TICKET_TRIAGED, ROUTER, INTAKE | ESCALATION | AUDIT, STATE(TRIAGE), "from_unit", "note"),
    ROW(TRIAGE_ASSIGNED, ROUTER, INTAKE | ESCALATION | AUDIT, STATE(UNSPECIFIED), "lead_unit",
        "note"),
    ROW(REMINDER_SENT, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), "unit_id", "text"),
    ROW(TICKET_OVERDUE, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), "unit_id", NULL),
    ROW(TICKET_ESCALATED, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), NULL, "reason"),
    ROW(SIGN_OFF_REQUESTED, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), NULL,
        "reason"),
    ROW(SIGNED_OFF, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), NULL, "instruction"),
    ROW(EXTENSION_REQUESTED, ROUTER, INTAKE | ESCALATION | AUDIT, STATE(UNSPECIFIED), "unit_id",
        "reason"),
    ROW(EXTENSION_GRANTED, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), NULL, "note"),
    ROW(EXTENSION_REFUSED, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), NULL, "note"),
    ROW(CLOCK_PAUSED, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), NULL, "reason"),
    ROW(CLOCK_RESUMED, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), NULL, NULL),
    ROW(DEADLINES_SET, ESCALATION, INTAKE | ROUTER | AUDIT, STATE(UNSPECIFIED), NULL, NULL),
    ROW(PROGRESS_REPORTED, ROUTER, INTAKE | ESCALATION | AUDIT, STATE(UNSPECIFIED), "unit_id",
        "text"),
    ROW(TICKET_RESOLVED, ROUTER | INTAKE, INTAKE | ROUTER | ESCALATION | AUDIT, STATE(RESOLVED),
        "unit_id", "text"),
    ROW(CALLED_BACK, INTAKE, ROUTER | AUDIT, STATE(UNSPECIFIED), NULL, "comment"),
    ROW(TICKET_REOPENED, INTAKE, ROUTER | AUDIT, STATE(REOPENED), NULL, "reason"),
    ROW(TICKET_CLOSED, INTAKE, ROUTER | AUDIT, STATE(CLOSED), NULL, "note"),
};

#define ROW_COUNT (sizeof(rows) / sizeof(rows[0]))

static const char *const worker_names[] = {"intake", "router", "escalation", "audit"};

const lifecycle_event_t *lifecycle_event(Dispatch__Event__BodyCase body)
{
    if (body <= 0 || (size_t)body >= ROW_COUNT || rows[body].emitters == 0)
        return NULL;
    return &rows[body];
}

lifecycle_worker_t lifecycle_worker_of(const char *kind)
{
    for (unsigned i = 0; i < sizeof(worker_names) / sizeof(worker_names[0]); i++)
        if (strcmp(kind, worker_names[i]) == 0)
            return (lifecycle_worker_t)(1u << i);
    return 0;
}

const char *lifecycle_worker_name(lifecycle_worker_t worker)
{
    for (unsigned i = 0; i < sizeof(worker_names) / sizeof(worker_names[0]); i++)
        if (worker == 1u << i)
            return worker_names[i];
    return "unknown";
}

unsigned lifecycle_receivers(const Dispatch__Event *event, lifecycle_worker_t from)
{
    const lifecycle_event_t *row = lifecycle_event(event->body_case);
    if (!row || !(row->emitters & from))
        return 0;
    unsigned to = row->receivers & ~(unsigned)from;
    const Dispatch__Ticket *registered = event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED
                                             ? event->ticket_registered->ticket
                                             : NULL;
    /* Handed to an emergency line at submit: no unit will ever see it. */
    if (registered && registered->state == STATE(TRANSFERRED))
        to = AUDIT;
    /* An instruction on a special report concerns no ticket. */
    if (event->body_case == DISPATCH__EVENT__BODY_SIGNED_OFF && !*event->ticket_id)
        to = AUDIT;
    /* Escalation follows a ticket from its first dispatch, which comes
     * from the router: a consult answered at intake never had a clock. */
    if (from == INTAKE)
        to &= ~(unsigned)ESCALATION;
    return to;
}

bool lifecycle_receives(lifecycle_worker_t to, Dispatch__Event__BodyCase body)
{
    const lifecycle_event_t *row = lifecycle_event(body);
    return row && (row->receivers & to);
}

bool lifecycle_state_final(Dispatch__TicketState state)
{
    return state == STATE(MERGED) || state == STATE(TRANSFERRED) || state == STATE(CLOSED);
}

Dispatch__TicketState lifecycle_state_after(Dispatch__TicketState state,
                                            Dispatch__Event__BodyCase body)
{
    const lifecycle_event_t *row = lifecycle_event(body);
    if (!row || lifecycle_state_final(state) || row->state_after == STATE(UNSPECIFIED))
        return state;
    return row->state_after;
}

static int set_string(char **field, char *value, lifecycle_strings_t strings)
{
    if (strings == LIFECYCLE_COPY)
        return record_string_set(field, value);
    *field = value;
    return 0;
}

static int set_strings(char ***items, size_t *count, char **values, size_t value_count,
                       lifecycle_strings_t strings)
{
    if (strings == LIFECYCLE_COPY)
        return record_strings_set(items, count, values, value_count);
    *items = values;
    *count = value_count;
    return 0;
}

static void set_deadlines(Dispatch__Ticket *ticket, int64_t sign_for, int64_t handle)
{
    if (sign_for)
        ticket->deadline_sign_for = sign_for;
    if (handle)
        ticket->deadline_handle = handle;
}

int lifecycle_apply(Dispatch__Ticket *ticket, const Dispatch__Event *event, int64_t at,
                    lifecycle_strings_t strings)
{
    ticket->updated_at = at;
    if (lifecycle_state_final(ticket->state) ||
        event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED)
        return 0; /* a registration's body is the ticket itself */
    ticket->state = lifecycle_state_after(ticket->state, event->body_case);
    int rc = 0;
    switch (event->body_case) {
    case DISPATCH__EVENT__BODY_TICKET_MERGED:
        rc = set_string(&ticket->master_id, event->ticket_merged->master_id, strings);
        break;
    case DISPATCH__EVENT__BODY_TICKET_TRANSFERRED:
        ticket->transferred_to = event->ticket_transferred->line;
        break;
    case DISPATCH__EVENT__BODY_TICKET_DISPATCHED: {
        const Dispatch__TicketDispatched *dispatched = event->ticket_dispatched;
        ticket->dispatched_at = at;
        set_deadlines(ticket, dispatched->deadline_sign_for, dispatched->deadline_handle);
        rc = set_string(&ticket->assigned_unit, dispatched->unit_id, strings);
        if (rc == 0)
            rc = set_strings(&ticket->assisting_units, &ticket->n_assisting_units,
                             dispatched->assisting_units, dispatched->n_assisting_units, strings);
        break;
    }
    case DISPATCH__EVENT__BODY_TICKET_ACCEPTED:
        ticket->accepted_at = at;
        break;
    case DISPATCH__EVENT__BODY_TICKET_RETURNED:
        ticket->return_count++;
        break;
    case DISPATCH__EVENT__BODY_REMINDER_SENT: {
        const Dispatch__ReminderSent *sent = event->reminder_sent;
        if (sent->deadline_kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR)
            set_deadlines(ticket, sent->deadline, 0);
        else if (sent->deadline_kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE)
            set_deadlines(ticket, 0, sent->deadline);
        break;
    }
    case DISPATCH__EVENT__BODY_TICKET_ESCALATED:
        ticket->supervision = event->ticket_escalated->level;
        break;
    case DISPATCH__EVENT__BODY_EXTENSION_GRANTED:
        ticket->extension_count++;
        set_deadlines(ticket, 0, event->extension_granted->new_deadline_handle);
        break;
    case DISPATCH__EVENT__BODY_CLOCK_RESUMED:
        set_deadlines(ticket, event->clock_resumed->deadline_sign_for,
                      event->clock_resumed->deadline_handle);
        break;
    case DISPATCH__EVENT__BODY_DEADLINES_SET:
        set_deadlines(ticket, event->deadlines_set->deadline_sign_for,
                      event->deadlines_set->deadline_handle);
        break;
    case DISPATCH__EVENT__BODY_TICKET_RESOLVED:
        ticket->resolved_at = at;
        ticket->result = event->ticket_resolved->result;
        break;
    case DISPATCH__EVENT__BODY_CALLED_BACK: /* the last callback's, none when unreachable */
        ticket->satisfaction = event->called_back->satisfaction;
        break;
    case DISPATCH__EVENT__BODY_TICKET_REOPENED: {
        const Dispatch__TicketReopened *reopened = event->ticket_reopened;
        ticket->reopen_count =
            reopened->reopen_count ? reopened->reopen_count : ticket->reopen_count + 1;
        if (reopened->satisfaction)
            ticket->satisfaction = reopened->satisfaction;
        ticket->resolved_at = 0;
        break;
    }
    case DISPATCH__EVENT__BODY_TICKET_CLOSED:
        ticket->closed_at = at;
        if (event->ticket_closed->satisfaction)
            ticket->satisfaction = event->ticket_closed->satisfaction;
        break;
    case DISPATCH__EVENT__BODY_TICKET_REGISTERED:   /* its body is the ticket */
    case DISPATCH__EVENT__BODY_TICKET_REROUTED:     /* a TicketDispatched follows */
    case DISPATCH__EVENT__BODY_TICKET_TRIAGED:      /* the state alone */
    case DISPATCH__EVENT__BODY_TRIAGE_ASSIGNED:     /* a TicketDispatched follows */
    case DISPATCH__EVENT__BODY_TICKET_OVERDUE:      /* history and KPIs only */
    case DISPATCH__EVENT__BODY_SIGN_OFF_REQUESTED:  /* history only */
    case DISPATCH__EVENT__BODY_SIGNED_OFF:          /* delivered to the unit */
    case DISPATCH__EVENT__BODY_EXTENSION_REQUESTED: /* escalation decides */
    case DISPATCH__EVENT__BODY_EXTENSION_REFUSED:   /* delivered to the unit */
    case DISPATCH__EVENT__BODY_CLOCK_PAUSED:        /* deadlines move on resume */
    case DISPATCH__EVENT__BODY_PROGRESS_REPORTED:   /* history only */
    case DISPATCH__EVENT__BODY__NOT_SET:
        break;
    }
    return rc < 0 ? -ENOMEM : 0;
}

/* The string field `name` of msg; NULL for no name. */
static char *string_field(const ProtobufCMessage *msg, const char *name)
{
    const ProtobufCFieldDescriptor *field =
        name ? protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name) : NULL;
    return field ? *(char *const *)((const char *)msg + field->offset) : NULL;
}

const ProtobufCMessage *lifecycle_body(const Dispatch__Event *event)
{
    const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field(
        &dispatch__event__descriptor, (unsigned)event->body_case);
    return field ? *(const ProtobufCMessage *const *)((const char *)event + field->offset) : NULL;
}

void lifecycle_history_entry(const Dispatch__Event *event, int64_t at,
                             Dispatch__HistoryEntry *entry)
{
    dispatch__history_entry__init(entry);
    entry->at = at;
    entry->type = (Dispatch__EventType)event->body_case;
    entry->actor = event->actor;
    const lifecycle_event_t *row = lifecycle_event(event->body_case);
    const ProtobufCMessage *body = lifecycle_body(event);
    if (!row || !body)
        return;
    char *unit = string_field(body, row->history_unit),
         *text = string_field(body, row->history_text);
    if (unit)
        entry->unit_id = unit;
    if (text)
        entry->text = text;
}

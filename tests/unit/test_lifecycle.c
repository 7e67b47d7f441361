/* The lifecycle table against the proto's descriptors and the example
 * topology, and the fold of events into a ticket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "dispatch.pb-c.h"
#include "lifecycle.h"

#define WORKER_KINDS 4

static const ProtobufCFieldDescriptor *body_field(unsigned i)
{
    const ProtobufCMessageDescriptor *event = &dispatch__event__descriptor;
    const ProtobufCFieldDescriptor *field = &event->fields[i];
    return (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? field : NULL;
}

/* "ticket_registered" -> "EVENT_TYPE_TICKET_REGISTERED" */
static void event_type_name(const char *member, char *out, size_t len)
{
    size_t n = (size_t)snprintf(out, len, "EVENT_TYPE_");
    for (const char *p = member; *p && n + 1 < len; p++)
        out[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    out[n] = '\0';
}

/* EventType names each member of Event.body with its field number, and has
 * nothing else but UNSPECIFIED: code casts one to the other. */
static void test_event_type_equals_oneof_numbers(void **state)
{
    (void)state;
    const ProtobufCEnumDescriptor *types = &dispatch__event_type__descriptor;
    unsigned members = 0;
    for (unsigned i = 0; i < dispatch__event__descriptor.n_fields; i++) {
        const ProtobufCFieldDescriptor *field = body_field(i);
        if (!field)
            continue;
        members++;
        char name[128];
        event_type_name(field->name, name, sizeof(name));
        const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value_by_name(types, name);
        if (!value)
            fail_msg("EventType has no %s for Event.%s", name, field->name);
        if (value->value != (int)field->id)
            fail_msg("%s = %d but Event.%s = %u", name, value->value, field->name, field->id);
    }
    assert_true(members > 0);
    if (types->n_values != members + 1)
        fail_msg("EventType has %u values, Event.body %u members (+ UNSPECIFIED)", types->n_values,
                 members);
}

/* Every member of Event.body has its row, and every row a member. */
static void test_every_event_has_a_row(void **state)
{
    (void)state;
    unsigned rows = 0;
    for (int body = 0; body < 1000; body++)
        if (lifecycle_event((Dispatch__Event__BodyCase)body))
            rows++;
    unsigned members = 0;
    for (unsigned i = 0; i < dispatch__event__descriptor.n_fields; i++) {
        const ProtobufCFieldDescriptor *field = body_field(i);
        if (!field)
            continue;
        members++;
        const lifecycle_event_t *row = lifecycle_event((Dispatch__Event__BodyCase)field->id);
        if (!row)
            fail_msg("Event.%s has no row in the lifecycle table", field->name);
        assert_int_equal(row->body, field->id);
        assert_true(row->emitters != 0);
        assert_true(row->receivers & LIFECYCLE_AUDIT); /* audit records everything */
        /* The history line's fields are string fields of the body. */
        const char *names[2] = {row->history_unit, row->history_text};
        for (int k = 0; k < 2; k++) {
            if (!names[k])
                continue;
            const ProtobufCFieldDescriptor *named =
                protobuf_c_message_descriptor_get_field_by_name(field->descriptor, names[k]);
            if (!named || named->type != PROTOBUF_C_TYPE_STRING ||
                named->label == PROTOBUF_C_LABEL_REPEATED)
                fail_msg("Event.%s has no string field %s for its history line", field->name,
                         names[k]);
        }
    }
    assert_int_equal(rows, members);
    assert_null(lifecycle_event(DISPATCH__EVENT__BODY__NOT_SET));
}

/* An event of the member `field` with an empty body, about a ticket. */
typedef struct sample {
    Dispatch__Event event;
    void *body;
} sample_t;

static void sample_init(sample_t *sample, const ProtobufCFieldDescriptor *field)
{
    const ProtobufCMessageDescriptor *descriptor = field->descriptor;
    sample->body = calloc(1, descriptor->sizeof_message);
    assert_non_null(sample->body);
    protobuf_c_message_init(descriptor, sample->body);
    dispatch__event__init(&sample->event);
    sample->event.ticket_id = "T-20260301-000001";
    sample->event.district = "chaoyang";
    sample->event.body_case = (Dispatch__Event__BodyCase)field->id;
    memcpy((char *)&sample->event + field->offset, &sample->body, sizeof(void *));
}

/* Does worker `from` link to a worker of kind `to` that can take events of
 * a ticket of district (any intake, the audit; the router or escalation of
 * that district)? */
static bool links_to(const config_t *config, const config_worker_t *from, lifecycle_worker_t to,
                     const char *district)
{
    for (size_t i = 0; i < from->link_count; i++) {
        const config_worker_t *peer = config_worker_find(config, from->links[i]);
        if (!peer || lifecycle_worker_of(peer->kind) != to)
            continue;
        bool districted = to == LIFECYCLE_ROUTER || to == LIFECYCLE_ESCALATION;
        if (!districted || (peer->district && strcmp(peer->district, district) == 0))
            return true;
    }
    return false;
}

/* The emit table and the example topology agree: every worker links to
 * each receiver of each event it emits (for every district its events may
 * concern), and each of its links carries some event. */
static void test_emit_table_matches_topology_links(void **state)
{
    (void)state;
    config_t *config;
    char err[512];
    if (config_load(TOPOLOGY_EXAMPLE, &config, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    for (size_t w = 0; w < config_worker_count(config); w++) {
        const config_worker_t *worker = config_worker_at(config, w);
        lifecycle_worker_t kind = lifecycle_worker_of(worker->kind);
        assert_true(kind != 0);
        unsigned used = 0;
        for (unsigned i = 0; i < dispatch__event__descriptor.n_fields; i++) {
            const ProtobufCFieldDescriptor *field = body_field(i);
            if (!field)
                continue;
            sample_t sample;
            sample_init(&sample, field);
            unsigned to = lifecycle_receivers(&sample.event, kind);
            used |= to;
            for (size_t d = 0; d < config_district_count(config); d++) {
                const char *district = config_district_at(config, d)->id;
                /* A router's and an escalation's events are about tickets
                 * of their own district. */
                if (worker->district && strcmp(worker->district, district) != 0)
                    continue;
                for (unsigned r = 0; r < WORKER_KINDS; r++) {
                    lifecycle_worker_t receiver = (lifecycle_worker_t)(1u << r);
                    if ((to & receiver) && !links_to(config, worker, receiver, district))
                        fail_msg("%s emits %s to %s, but links to no %s for district %s",
                                 worker->name, field->name, lifecycle_worker_name(receiver),
                                 lifecycle_worker_name(receiver), district);
                }
            }
            free(sample.body);
        }
        for (size_t l = 0; l < worker->link_count; l++) {
            const config_worker_t *peer = config_worker_find(config, worker->links[l]);
            if (!(used & lifecycle_worker_of(peer->kind)))
                fail_msg("%s links to %s, but sends a %s no event", worker->name, peer->name,
                         peer->kind);
        }
    }
    config_destroy(&config);
}

/* What content changes: a ticket transferred at submit and a report's
 * sign-off go to audit alone; intake never sends to escalation. */
static void test_receivers_by_content(void **state)
{
    (void)state;
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    Dispatch__TicketRegistered registered = DISPATCH__TICKET_REGISTERED__INIT;
    registered.ticket = &ticket;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    event.ticket_registered = &registered;
    ticket.state = DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED;
    assert_int_equal(lifecycle_receivers(&event, LIFECYCLE_INTAKE),
                     LIFECYCLE_ROUTER | LIFECYCLE_AUDIT);
    ticket.state = DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED;
    assert_int_equal(lifecycle_receivers(&event, LIFECYCLE_INTAKE), LIFECYCLE_AUDIT);
    assert_int_equal(lifecycle_receivers(&event, LIFECYCLE_ROUTER), 0); /* not its event */

    Dispatch__SignedOff signed_off = DISPATCH__SIGNED_OFF__INIT;
    event.body_case = DISPATCH__EVENT__BODY_SIGNED_OFF;
    event.signed_off = &signed_off;
    event.ticket_id = "T-20260301-000001";
    assert_int_equal(lifecycle_receivers(&event, LIFECYCLE_ESCALATION),
                     LIFECYCLE_INTAKE | LIFECYCLE_ROUTER | LIFECYCLE_AUDIT);
    event.ticket_id = "";
    assert_int_equal(lifecycle_receivers(&event, LIFECYCLE_ESCALATION), LIFECYCLE_AUDIT);

    Dispatch__TicketResolved resolved = DISPATCH__TICKET_RESOLVED__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RESOLVED;
    event.ticket_resolved = &resolved;
    assert_int_equal(lifecycle_receivers(&event, LIFECYCLE_ROUTER),
                     LIFECYCLE_INTAKE | LIFECYCLE_ESCALATION | LIFECYCLE_AUDIT);
    assert_int_equal(lifecycle_receivers(&event, LIFECYCLE_INTAKE),
                     LIFECYCLE_ROUTER | LIFECYCLE_AUDIT);
}

/* A walk through the lifecycle of section 8.2, folded into one ticket. */
static void test_fold_follows_the_state_diagram(void **state)
{
    (void)state;
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.state = DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED;
    Dispatch__Event event = DISPATCH__EVENT__INIT;

    char *assisting[] = {"power-grid"};
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = "chaoyang-s03";
    dispatched.assisting_units = assisting;
    dispatched.n_assisting_units = 1;
    dispatched.deadline_sign_for = 5000;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    assert_int_equal(lifecycle_apply(&ticket, &event, 1000, LIFECYCLE_BORROW), 0);
    assert_int_equal(ticket.state, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED);
    assert_string_equal(ticket.assigned_unit, "chaoyang-s03");
    assert_int_equal(ticket.n_assisting_units, 1);
    assert_int_equal(ticket.dispatched_at, 1000);
    assert_int_equal(ticket.deadline_sign_for, 5000);

    Dispatch__ReminderSent reminder = DISPATCH__REMINDER_SENT__INIT;
    reminder.deadline_kind = DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE;
    reminder.deadline = 90000;
    event.body_case = DISPATCH__EVENT__BODY_REMINDER_SENT;
    event.reminder_sent = &reminder;
    assert_int_equal(lifecycle_apply(&ticket, &event, 1500, LIFECYCLE_BORROW), 0);
    assert_int_equal(ticket.state, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED);
    assert_int_equal(ticket.deadline_handle, 90000);

    Dispatch__TicketAccepted accepted = DISPATCH__TICKET_ACCEPTED__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &accepted;
    assert_int_equal(lifecycle_apply(&ticket, &event, 2000, LIFECYCLE_BORROW), 0);
    assert_int_equal(ticket.state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_int_equal(ticket.accepted_at, 2000);

    Dispatch__TicketResolved resolved = DISPATCH__TICKET_RESOLVED__INIT;
    resolved.result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RESOLVED;
    event.ticket_resolved = &resolved;
    assert_int_equal(lifecycle_apply(&ticket, &event, 3000, LIFECYCLE_BORROW), 0);
    assert_int_equal(ticket.state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
    assert_int_equal(ticket.resolved_at, 3000);

    Dispatch__TicketReopened reopened = DISPATCH__TICKET_REOPENED__INIT;
    reopened.satisfaction = DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REOPENED;
    event.ticket_reopened = &reopened;
    assert_int_equal(lifecycle_apply(&ticket, &event, 4000, LIFECYCLE_BORROW), 0);
    assert_int_equal(ticket.state, DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED);
    assert_int_equal(ticket.reopen_count, 1);
    assert_int_equal(ticket.resolved_at, 0);
    assert_int_equal(ticket.satisfaction, DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED);

    Dispatch__TicketClosed closed = DISPATCH__TICKET_CLOSED__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_CLOSED;
    event.ticket_closed = &closed;
    assert_int_equal(lifecycle_apply(&ticket, &event, 5000, LIFECYCLE_BORROW), 0);
    assert_int_equal(ticket.state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    assert_int_equal(ticket.closed_at, 5000);

    /* Final: later events count, but change nothing. */
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    dispatched.unit_id = "elsewhere";
    assert_int_equal(lifecycle_apply(&ticket, &event, 6000, LIFECYCLE_BORROW), 0);
    assert_int_equal(ticket.state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    assert_string_equal(ticket.assigned_unit, "chaoyang-s03");
    assert_int_equal(ticket.updated_at, 6000);
}

/* LIFECYCLE_COPY leaves the ticket owning its strings: the event can go. */
static void test_fold_copies_strings_into_an_owned_ticket(void **state)
{
    (void)state;
    Dispatch__Ticket fresh = DISPATCH__TICKET__INIT;
    uint8_t packed[64];
    size_t len = dispatch__ticket__pack(&fresh, packed);
    Dispatch__Ticket *ticket = dispatch__ticket__unpack(NULL, len, packed);
    assert_non_null(ticket);
    char unit[] = "chaoyang-s03", master[] = "T-20260301-000007";
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = unit;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    assert_int_equal(lifecycle_apply(ticket, &event, 1, LIFECYCLE_COPY), 0);
    Dispatch__TicketMerged merged = DISPATCH__TICKET_MERGED__INIT;
    merged.master_id = master;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_MERGED;
    event.ticket_merged = &merged;
    assert_int_equal(lifecycle_apply(ticket, &event, 2, LIFECYCLE_COPY), 0);
    memset(unit, 'x', sizeof(unit) - 1);
    memset(master, 'x', sizeof(master) - 1);
    assert_string_equal(ticket->assigned_unit, "chaoyang-s03");
    assert_string_equal(ticket->master_id, "T-20260301-000007");
    assert_int_equal(ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    dispatch__ticket__free_unpacked(ticket, NULL); /* ASan: nothing leaked, nothing twice */
}

/* The history line names the unit and the words of the event. */
static void test_history_entry(void **state)
{
    (void)state;
    Dispatch__TicketReturned returned = DISPATCH__TICKET_RETURNED__INIT;
    returned.unit_id = "chaoyang-s03";
    returned.reason = "a power-company well";
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RETURNED;
    event.ticket_returned = &returned;
    event.actor = "chaoyang-s03";
    Dispatch__HistoryEntry entry;
    lifecycle_history_entry(&event, 42, &entry);
    assert_int_equal(entry.at, 42);
    assert_int_equal(entry.type, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_RETURNED);
    assert_string_equal(entry.unit_id, "chaoyang-s03");
    assert_string_equal(entry.text, "a power-company well");
    assert_string_equal(entry.actor, "chaoyang-s03");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_type_equals_oneof_numbers),
        cmocka_unit_test(test_every_event_has_a_row),
        cmocka_unit_test(test_emit_table_matches_topology_links),
        cmocka_unit_test(test_receivers_by_content),
        cmocka_unit_test(test_fold_follows_the_state_diagram),
        cmocka_unit_test(test_fold_copies_strings_into_an_owned_ticket),
        cmocka_unit_test(test_history_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

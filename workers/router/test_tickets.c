/* tickets_check() and tickets_check_all() on a real LMDB store: consistent
 * records and indexes pass, and each invariant of tickets.h, broken on
 * purpose, is reported by name. */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "invariants.h"
#include "record.h"
#include "store.h"
#include "tickets.h"

#define STATE(name) DISPATCH__TICKET_STATE__TICKET_STATE_##name
#define LEAD DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD
#define ASSIST DISPATCH__HANDLING_ROLE__HANDLING_ROLE_ASSIST

typedef struct fixture {
    char dir[512];
    store_t *store;
    tickets_t *tickets;
    MDB_dbi records, unit_tickets;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(harness_tmpdir("tickets", f->dir, sizeof(f->dir)), 0);
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(tickets_new(f->store, &f->tickets), 0);
    assert_int_equal(store_dbi(f->store, "router.tickets", 0, &f->records), 0);
    assert_int_equal(store_dbi(f->store, "router.unit_tickets", 0, &f->unit_tickets), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tickets_destroy(&f->tickets);
    store_destroy(&f->store);
    harness_rmtree(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ writing */

/* A ticket as the router would store it; assisting ends with NULL. */
typedef struct spec {
    const char *id;
    Dispatch__TicketState state;
    const char *lead;
    const char *assisting[4];
} spec_t;

static size_t assisting_count(const spec_t *spec)
{
    size_t n = 0;
    while (spec->assisting[n])
        n++;
    return n;
}

static int put_record(tickets_t *tickets, MDB_txn *txn, const spec_t *spec)
{
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.id = (char *)spec->id;
    ticket.state = spec->state;
    ticket.assigned_unit = (char *)(spec->lead ? spec->lead : "");
    ticket.assisting_units = (char **)spec->assisting;
    ticket.n_assisting_units = assisting_count(spec);
    Dispatch__Router__RouterTicket record = DISPATCH__ROUTER__ROUTER_TICKET__INIT;
    record.ticket = &ticket;
    return tickets_put(tickets, txn, &record);
}

/* The record and the index entries that go with it. */
static int put_consistent(tickets_t *tickets, MDB_txn *txn, const spec_t *spec)
{
    int rc = put_record(tickets, txn, spec);
    bool open = spec->state != STATE(CLOSED) && spec->state != STATE(MERGED) &&
                spec->state != STATE(TRANSFERRED);
    if (rc == 0 && spec->state == STATE(TRIAGE))
        rc = tickets_triage_put(tickets, txn, spec->id, 1);
    if (rc == 0 && open && spec->lead)
        rc = tickets_unit_put(tickets, txn, spec->lead, spec->id, LEAD);
    for (size_t i = 0; rc == 0 && open && spec->assisting[i]; i++)
        rc = tickets_unit_put(tickets, txn, spec->assisting[i], spec->id, ASSIST);
    return rc;
}

typedef enum change_kind {
    PUT_CONSISTENT,
    PUT_RECORD_ONLY,
    UNIT_PUT,
    UNIT_DELETE,
    TRIAGE_PUT,
    TRIAGE_DELETE,
    RAW_PUT, /* bytes past tickets.c: nothing is tracked */
} change_kind_t;

typedef struct change {
    change_kind_t kind;
    const spec_t *spec;
    const char *unit, *ticket;
    Dispatch__HandlingRole role;
    bool records; /* RAW_PUT: into router.tickets, else router.unit_tickets */
    const void *key, *value;
    size_t key_len, value_len;
} change_t;

typedef struct batch {
    fixture_t *f;
    const change_t *changes;
} batch_t;

static int apply_change(MDB_txn *txn, size_t index, void *ctx)
{
    const batch_t *batch = ctx;
    fixture_t *f = batch->f;
    const change_t *c = &batch->changes[index];
    tickets_t *t = f->tickets;
    switch (c->kind) {
    case PUT_CONSISTENT:
        return put_consistent(t, txn, c->spec);
    case PUT_RECORD_ONLY:
        return put_record(t, txn, c->spec);
    case UNIT_PUT:
        return tickets_unit_put(t, txn, c->unit, c->ticket, c->role);
    case UNIT_DELETE:
        return tickets_unit_delete(t, txn, c->unit, c->ticket);
    case TRIAGE_PUT:
        return tickets_triage_put(t, txn, c->ticket, 1);
    case TRIAGE_DELETE:
        return tickets_triage_delete(t, txn, c->ticket);
    case RAW_PUT: {
        MDB_val k = {c->key_len, (void *)c->key}, v = {c->value_len, (void *)c->value};
        return store_rc(mdb_put(txn, c->records ? f->records : f->unit_tickets, &k, &v, 0));
    }
    }
    return -EINVAL;
}

static void write_batch(fixture_t *f, const change_t *changes, size_t count)
{
    batch_t batch = {f, changes};
    assert_int_equal(harness_write_changes(f->store, apply_change, count, &batch), 0);
}

/* ------------------------------------------------------------ checking */

/* tickets_check_all() in the shape of a loop_check_fn. */
static int check_all(void *tickets, MDB_txn *txn, char *why, size_t why_len)
{
    return tickets_check_all(tickets, txn, why, why_len);
}

/* What the batch check (on what was written since it last ran) and the
 * full scan say; batch false: the full scan only. */
static void assert_checks_say(fixture_t *f, bool batch, int expected, const char *named)
{
    assert_true(harness_checks_say(f->store, batch ? tickets_loop_check : NULL, check_all,
                                   f->tickets, expected, named));
}

static const spec_t DISPATCHED = {"T1", STATE(DISPATCHED), "u1", {"u2", "u3", NULL}};
static const spec_t TRIAGED = {"T2", STATE(TRIAGE), NULL, {"u3", NULL}};
static const spec_t CLOSED = {"T3", STATE(CLOSED), "u1", {NULL}};
static const spec_t OTHER_DISTRICT = {"T4", STATE(REGISTERED), NULL, {NULL}};

/* Four tickets in every shape, then nothing more written. */
static void write_city(fixture_t *f)
{
    const change_t changes[] = {
        {.kind = PUT_CONSISTENT, .spec = &DISPATCHED},
        {.kind = PUT_CONSISTENT, .spec = &TRIAGED},
        {.kind = PUT_CONSISTENT, .spec = &CLOSED},
        {.kind = PUT_CONSISTENT, .spec = &OTHER_DISTRICT},
    };
    write_batch(f, changes, sizeof(changes) / sizeof(changes[0]));
    assert_checks_say(f, true, 0, NULL);
}

/* ------------------------------------------------------------ tests */

static void test_consistent_tickets_pass(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    assert_checks_say(f, true, 0, NULL); /* nothing written since */

    /* A dispatch to other units, as router_assign() does it. */
    const spec_t redispatched = {"T1", STATE(DISPATCHED), "u4", {"u2", NULL}};
    const change_t changes[] = {
        {.kind = UNIT_DELETE, .unit = "u1", .ticket = "T1"},
        {.kind = UNIT_DELETE, .unit = "u3", .ticket = "T1"},
        {.kind = PUT_CONSISTENT, .spec = &redispatched},
    };
    write_batch(f, changes, 3);
    assert_checks_say(f, true, 0, NULL);
}

static void test_ticket_in_a_unit_list_it_is_not_assigned_to(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const change_t changes[] = {{.kind = UNIT_PUT, .unit = "u9", .ticket = "T1", .role = ASSIST}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "unit u9's open list holds ticket T1, which is not assigned to it");
}

static void test_assigned_ticket_missing_from_the_unit_list(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const change_t changes[] = {{.kind = UNIT_DELETE, .unit = "u2", .ticket = "T1"}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "ticket T1 is open and assigned to unit u2, but not in its open list");
}

static void test_wrong_role_in_the_unit_list(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const change_t changes[] = {{.kind = UNIT_PUT, .unit = "u2", .ticket = "T1", .role = LEAD}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "unit u2's open list holds ticket T1 with the wrong role: the unit is its "
                      "assisting unit");
}

static void test_closed_ticket_left_in_the_unit_list(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const spec_t closed = {"T1", STATE(CLOSED), "u1", {"u2", "u3", NULL}};
    const change_t changes[] = {{.kind = PUT_RECORD_ONLY, .spec = &closed}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "unit u1's open list holds ticket T1, which is no longer open");
}

/* The record drops a unit but its entry stays: found because the check
 * remembers the units of the record a put replaced. */
static void test_unit_dropped_from_the_record_but_not_from_its_list(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const spec_t fewer = {"T1", STATE(DISPATCHED), "u1", {"u2", NULL}};
    const change_t changes[] = {{.kind = PUT_RECORD_ONLY, .spec = &fewer}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "unit u3's open list holds ticket T1, which is not assigned to it");
}

static void test_triage_entry_of_a_ticket_not_in_triage(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const change_t changes[] = {{.kind = TRIAGE_PUT, .ticket = "T1"}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO, "router.triage holds ticket T1, which is not in TRIAGE");
}

static void test_ticket_in_triage_without_its_entry(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const change_t changes[] = {{.kind = TRIAGE_DELETE, .ticket = "T2"}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO, "ticket T2 is in TRIAGE but not in router.triage");
}

static void test_entries_of_a_ticket_without_record(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const change_t changes[] = {{.kind = UNIT_PUT, .unit = "u1", .ticket = "T404", .role = LEAD}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "unit u1's open list holds ticket T404, which has no record");
    const change_t triage[] = {{.kind = UNIT_DELETE, .unit = "u1", .ticket = "T404"},
                               {.kind = TRIAGE_PUT, .ticket = "T405"}};
    write_batch(f, triage, 2);
    assert_checks_say(f, true, -EPROTO, "router.triage holds ticket T405, which has no record");
}

/* Damage written past tickets.c is not tracked: the full scan finds it. */
static void test_full_scan_finds_untracked_damage(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    const unsigned char lead = (unsigned char)LEAD;
    const change_t stray[] = {{.kind = RAW_PUT,

                               .key = "u7\0T4",
                               .key_len = 5,
                               .value = &lead,
                               .value_len = 1}};
    write_batch(f, stray, 1);
    assert_checks_say(f, false, -EPROTO,
                      "unit u7's open list holds ticket T4, which is not "
                      "assigned to it");
}

static void test_record_under_another_id(void **state)
{
    fixture_t *f = *state;
    write_city(f);
    MDB_txn *txn;
    MDB_val k = {2, "T1"}, v;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    assert_int_equal(mdb_get(txn, f->records, &k, &v), 0);
    void *copy = malloc(v.mv_size);
    assert_non_null(copy);
    memcpy(copy, v.mv_data, v.mv_size);
    size_t len = v.mv_size;
    store_read_end(&txn);
    const change_t changes[] = {
        {.kind = RAW_PUT,
         .records = true,
         .key = "T9",
         .key_len = 2,
         .value = copy,
         .value_len = len},
        {.kind = RAW_PUT,
         .records = true,
         .key = "T8",
         .key_len = 2,
         .value = "\xff",
         .value_len = 1},
    };
    write_batch(f, changes, 1);
    assert_checks_say(f, false, -EPROTO, "the record under T9 is not ticket T9");
    write_batch(f, changes + 1, 1);
    assert_checks_say(f, false, -EPROTO, "the record of T8 does not decode");
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_consistent_tickets_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_in_a_unit_list_it_is_not_assigned_to, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_assigned_ticket_missing_from_the_unit_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_role_in_the_unit_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_ticket_left_in_the_unit_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unit_dropped_from_the_record_but_not_from_its_list,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_triage_entry_of_a_ticket_not_in_triage, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ticket_in_triage_without_its_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_of_a_ticket_without_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_scan_finds_untracked_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_under_another_id, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

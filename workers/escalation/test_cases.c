/* cases_check() and cases_check_all() on a real LMDB store: cases whose
 * queued bits match escalation.queues pass, and each invariant of cases.h,
 * broken on purpose, is reported by name. */
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

#include "cases.h"
#include "harness.h"
#include "invariants.h"
#include "store.h"

#define KIND(name) DISPATCH__QUEUE_KIND__QUEUE_KIND_##name
#define BIT(name) (1u << KIND(name))

typedef struct fixture {
    char dir[512];
    store_t *store;
    cases_t *cases;
    MDB_dbi queues;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(harness_tmpdir("cases", f->dir, sizeof(f->dir)), 0);
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(cases_new(f->store, &f->cases), 0);
    assert_int_equal(store_dbi(f->store, "escalation.queues", 0, &f->queues), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    cases_destroy(&f->cases);
    store_destroy(&f->store);
    harness_rmtree(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ writing */

typedef enum change_kind {
    PUT_CASE,     /* a case with these queued bits (and no queue entry) */
    QUEUE_PUT,    /* through cases.c */
    QUEUE_DELETE, /* through cases.c */
    RAW_QUEUE,    /* a queue entry past cases.c: nothing is tracked */
} change_kind_t;

typedef struct change {
    change_kind_t kind;
    const char *ticket_id;
    uint32_t queued;
    Dispatch__QueueKind queue;
} change_t;

typedef struct batch {
    fixture_t *f;
    const change_t *changes;
} batch_t;

static int put_case(cases_t *cases, MDB_txn *txn, const char *ticket_id, uint32_t queued)
{
    Dispatch__Escalation__Rule rule = DISPATCH__ESCALATION__RULE__INIT;
    Dispatch__Escalation__Case *record;
    int rc = cases_new_case(ticket_id, &rule, &record);
    if (rc < 0)
        return rc;
    record->queued = queued;
    rc = cases_put(cases, txn, record);
    dispatch__escalation__case__free_unpacked(record, NULL);
    return rc;
}

static int apply_change(MDB_txn *txn, size_t index, void *ctx)
{
    const batch_t *batch = ctx;
    fixture_t *f = batch->f;
    const change_t *c = &batch->changes[index];
    switch (c->kind) {
    case PUT_CASE:
        return put_case(f->cases, txn, c->ticket_id, c->queued);
    case QUEUE_PUT:
        return cases_queue_put(f->cases, txn, c->queue, c->ticket_id, 1);
    case QUEUE_DELETE:
        return cases_queue_delete(f->cases, txn, c->queue, c->ticket_id);
    case RAW_QUEUE: {
        unsigned char key[128];
        size_t len = strlen(c->ticket_id);
        key[0] = (unsigned char)c->queue;
        memcpy(key + 1, c->ticket_id, len);
        return store_put_u64(txn, f->queues, key, len + 1, 1);
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

/* cases_check_all() in the shape of a loop_check_fn. */
static int check_all(void *cases, MDB_txn *txn, char *why, size_t why_len)
{
    return cases_check_all(cases, txn, why, why_len);
}

/* What the batch check (on what was written since it last ran) and the
 * full scan say; batch false: the full scan only. */
static void assert_checks_say(fixture_t *f, bool batch, int expected, const char *named)
{
    assert_true(harness_checks_say(f->store, batch ? cases_loop_check : NULL, check_all, f->cases,
                                   expected, named));
}

/* C1 in the extension and urgent queues, C2 in none. */
static void write_cases(fixture_t *f)
{
    const change_t changes[] = {
        {.kind = PUT_CASE, .ticket_id = "C1", .queued = BIT(EXTENSION) | BIT(URGENT)},
        {.kind = QUEUE_PUT, .ticket_id = "C1", .queue = KIND(EXTENSION)},
        {.kind = QUEUE_PUT, .ticket_id = "C1", .queue = KIND(URGENT)},
        {.kind = PUT_CASE, .ticket_id = "C2", .queued = 0},
    };
    write_batch(f, changes, sizeof(changes) / sizeof(changes[0]));
    assert_checks_say(f, true, 0, NULL);
}

/* ------------------------------------------------------------ tests */

static void test_cases_matching_their_queues_pass(void **state)
{
    fixture_t *f = *state;
    write_cases(f);
    assert_checks_say(f, true, 0, NULL); /* nothing written since */
    /* Out of the extension queue, into the overdue one, as escalation.c
     * moves a case. */
    const change_t changes[] = {
        {.kind = QUEUE_DELETE, .ticket_id = "C1", .queue = KIND(EXTENSION)},
        {.kind = QUEUE_PUT, .ticket_id = "C1", .queue = KIND(OVERDUE)},
        {.kind = PUT_CASE, .ticket_id = "C1", .queued = BIT(OVERDUE) | BIT(URGENT)},
    };
    write_batch(f, changes, 3);
    assert_checks_say(f, true, 0, NULL);
}

static void test_queued_bit_without_its_queue_entry(void **state)
{
    fixture_t *f = *state;
    write_cases(f);
    const change_t changes[] = {{.kind = PUT_CASE, .ticket_id = "C2", .queued = BIT(SIGN_OFF)}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "case C2 has the queued bit of SIGN_OFF but no entry in "
                      "escalation.queues");
}

static void test_queue_entry_without_its_queued_bit(void **state)
{
    fixture_t *f = *state;
    write_cases(f);
    const change_t changes[] = {{.kind = QUEUE_PUT, .ticket_id = "C2", .queue = KIND(OVERDUE)}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "escalation.queues holds (OVERDUE, C2) but the case's queued "
                      "bit is clear");
}

static void test_queue_entry_dropped_but_bit_kept(void **state)
{
    fixture_t *f = *state;
    write_cases(f);
    const change_t changes[] = {{.kind = QUEUE_DELETE, .ticket_id = "C1", .queue = KIND(URGENT)}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO, "case C1 has the queued bit of URGENT but no entry");
}

static void test_queue_entry_of_a_ticket_without_case(void **state)
{
    fixture_t *f = *state;
    write_cases(f);
    const change_t changes[] = {{.kind = QUEUE_PUT, .ticket_id = "C404", .queue = KIND(URGENT)}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO,
                      "escalation.queues holds (URGENT, C404) but there is no such "
                      "case");
}

static void test_queued_bit_that_names_no_kind(void **state)
{
    fixture_t *f = *state;
    write_cases(f);
    const change_t changes[] = {{.kind = PUT_CASE, .ticket_id = "C2", .queued = 1u << 20}};
    write_batch(f, changes, 1);
    assert_checks_say(f, true, -EPROTO, "case C2: queued 0x100000 has bits that name no QueueKind");
}

/* Damage written past cases.c is not tracked: the full scan finds it. */
static void test_full_scan_finds_untracked_damage(void **state)
{
    fixture_t *f = *state;
    write_cases(f);
    const change_t changes[] = {{.kind = RAW_QUEUE, .ticket_id = "C2", .queue = KIND(EXTENSION)}};
    write_batch(f, changes, 1);
    assert_checks_say(f, false, -EPROTO, "escalation.queues holds (EXTENSION, C2)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cases_matching_their_queues_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_bit_without_its_queue_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_entry_without_its_queued_bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_entry_dropped_but_bit_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_entry_of_a_ticket_without_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_bit_that_names_no_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_scan_finds_untracked_damage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

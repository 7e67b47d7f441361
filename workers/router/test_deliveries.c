/* deliveries_check() and deliveries_check_all() on a real LMDB store:
 * queues written through deliveries.c pass, and each invariant of
 * deliveries.h, broken on purpose, is reported by name. */
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

#include "deliveries.h"
#include "harness.h"
#include "invariants.h"
#include "record.h"
#include "router_state.pb-c.h"
#include "store.h"

typedef struct fixture {
    char dir[512];
    store_t *store;
    deliveries_t *deliveries;
    MDB_dbi queue, counters;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(harness_tmpdir("deliveries", f->dir, sizeof(f->dir)), 0);
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    assert_int_equal(deliveries_new(f->store, 0, &f->deliveries), 0);
    assert_int_equal(store_dbi(f->store, "router.deliveries", 0, &f->queue), 0);
    assert_int_equal(store_dbi(f->store, "router.unit_queues", 0, &f->counters), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    deliveries_destroy(&f->deliveries);
    store_destroy(&f->store);
    harness_rmtree(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ writing */

typedef enum change_kind {
    APPEND,       /* through deliveries.c */
    ACK,          /* through deliveries.c (seq 0: only marks the unit written) */
    RAW_DELETE,   /* queue entry (unit, seq), past deliveries.c */
    RAW_PUT,      /* queue entry (unit, seq), past deliveries.c */
    RAW_COUNTERS, /* (last_seq, acked) of unit, past deliveries.c */
} change_kind_t;

typedef struct change {
    change_kind_t kind;
    const char *unit;
    uint64_t seq, last_seq, acked;
} change_t;

typedef struct batch {
    fixture_t *f;
    const change_t *changes;
} batch_t;

static size_t queue_key(unsigned char *key, const char *unit, uint64_t seq)
{
    size_t len = strlen(unit);
    memcpy(key, unit, len + 1);
    store_u64_encode(seq, key + len + 1);
    return len + 9;
}

static int apply_change(MDB_txn *txn, size_t index, void *ctx)
{
    const batch_t *batch = ctx;
    fixture_t *f = batch->f;
    const change_t *c = &batch->changes[index];
    if (index == 0)
        deliveries_batch_begin(f->deliveries); /* as at the start of every (re)run */
    unsigned char key[128];
    MDB_val k = {queue_key(key, c->unit, c->seq), key}, v = {1, "x"};
    switch (c->kind) {
    case APPEND: {
        Dispatch__Withdrawn withdrawn = DISPATCH__WITHDRAWN__INIT;
        withdrawn.reason = "test";
        Dispatch__UnitDelivery delivery = DISPATCH__UNIT_DELIVERY__INIT;
        delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_WITHDRAWN;
        delivery.withdrawn = &withdrawn;
        delivery.unit_id = (char *)c->unit;
        delivery.ticket_id = "T1";
        return deliveries_append(f->deliveries, txn, &delivery);
    }
    case ACK:
        return deliveries_ack(f->deliveries, txn, c->unit, c->seq, "peer", 4);
    case RAW_DELETE:
        return store_rc(mdb_del(txn, f->queue, &k, NULL));
    case RAW_PUT:
        return store_rc(mdb_put(txn, f->queue, &k, &v, 0));
    case RAW_COUNTERS: {
        Dispatch__Router__DeliveryCounters counters = DISPATCH__ROUTER__DELIVERY_COUNTERS__INIT;
        counters.last_seq = c->last_seq;
        counters.acked = c->acked;
        return record_put(txn, f->counters, c->unit, strlen(c->unit), &counters.base, 0);
    }
    }
    return -EINVAL;
}

static void write_batch(fixture_t *f, const change_t *changes, size_t count)
{
    batch_t batch = {f, changes};
    int rc = harness_write_changes(f->store, apply_change, count, &batch);
    deliveries_batch_done(f->deliveries, rc, NULL, NULL);
    assert_int_equal(rc, 0);
}

/* ------------------------------------------------------------ checking */

/* deliveries_check_all() in the shape of a loop_check_fn. */
static int check_all(void *deliveries, MDB_txn *txn, char *why, size_t why_len)
{
    return deliveries_check_all(deliveries, txn, why, why_len);
}

/* What the batch check (on what was written since it last ran) and the
 * full scan say; batch false: the full scan only. */
static void assert_checks_say(fixture_t *f, bool batch, int expected, const char *named)
{
    assert_true(harness_checks_say(f->store, batch ? deliveries_loop_check : NULL, check_all,
                                   f->deliveries, expected, named));
}

/* u1 holds 3..6 (acked 2), u2 holds 1..3, u3 everything acked. */
static void write_queues(fixture_t *f)
{
    change_t changes[16];
    size_t n = 0;
    for (int i = 0; i < 6; i++)
        changes[n++] = (change_t){.kind = APPEND, .unit = "u1"};
    for (int i = 0; i < 3; i++)
        changes[n++] = (change_t){.kind = APPEND, .unit = "u2"};
    changes[n++] = (change_t){.kind = APPEND, .unit = "u3"};
    changes[n++] = (change_t){.kind = ACK, .unit = "u1", .seq = 2};
    changes[n++] = (change_t){.kind = ACK, .unit = "u3", .seq = 1};
    write_batch(f, changes, n);
    assert_checks_say(f, true, 0, NULL);
}

/* ------------------------------------------------------------ tests */

static void test_queues_written_through_deliveries_pass(void **state)
{
    fixture_t *f = *state;
    write_queues(f);
    const change_t more[] = {{.kind = APPEND, .unit = "u3"},
                             {.kind = ACK, .unit = "u2", .seq = 9},
                             {.kind = APPEND, .unit = "u2"}};
    write_batch(f, more, 3);
    assert_checks_say(f, true, 0, NULL);
    uint64_t last_seq, acked;
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    assert_int_equal(deliveries_counters(f->deliveries, txn, "u2", &last_seq, &acked), 0);
    store_read_end(&txn);
    assert_int_equal(last_seq, 4);
    assert_int_equal(acked, 3);
}

static void test_queue_that_does_not_start_after_acked(void **state)
{
    fixture_t *f = *state;
    write_queues(f);
    const change_t changes[] = {{.kind = RAW_DELETE, .unit = "u1", .seq = 3},
                                {.kind = ACK, .unit = "u1"}};
    write_batch(f, changes, 2);
    assert_checks_say(f, true, -EPROTO,
                      "unit u1's delivery queue holds seq 4 where another is due");
}

static void test_queue_that_ends_before_last_seq(void **state)
{
    fixture_t *f = *state;
    write_queues(f);
    const change_t changes[] = {{.kind = RAW_DELETE, .unit = "u2", .seq = 3},
                                {.kind = ACK, .unit = "u2"}};
    write_batch(f, changes, 2);
    assert_checks_say(f, true, -EPROTO, "unit u2's delivery queue lacks seq 3");
}

static void test_entry_beyond_last_seq(void **state)
{
    fixture_t *f = *state;
    write_queues(f);
    const change_t changes[] = {{.kind = RAW_PUT, .unit = "u3", .seq = 9},
                                {.kind = ACK, .unit = "u3"}};
    write_batch(f, changes, 2);
    assert_checks_say(f, true, -EPROTO, "unit u3's delivery queue holds seq 9 where it should end");
}

static void test_acked_beyond_last_seq(void **state)
{
    fixture_t *f = *state;
    write_queues(f);
    const change_t changes[] = {{.kind = RAW_COUNTERS, .unit = "u3", .last_seq = 1, .acked = 4},
                                {.kind = ACK, .unit = "u3"}};
    write_batch(f, changes, 2);
    assert_checks_say(f, true, -EPROTO, "unit u3: acked 4 is beyond last_seq 1");
}

/* A hole strictly inside a queue: the ends are right, only the full walk
 * finds it. */
static void test_hole_inside_a_queue(void **state)
{
    fixture_t *f = *state;
    write_queues(f);
    const change_t changes[] = {{.kind = RAW_DELETE, .unit = "u1", .seq = 5}};
    write_batch(f, changes, 1);
    assert_checks_say(f, false, -EPROTO,
                      "unit u1's delivery queue holds seq 6 where another is due");
}

static void test_entries_of_a_unit_without_counters(void **state)
{
    fixture_t *f = *state;
    write_queues(f);
    const change_t changes[] = {{.kind = RAW_PUT, .unit = "ghost", .seq = 1}};
    write_batch(f, changes, 1);
    assert_checks_say(f, false, -EPROTO, "entries of a unit without counters");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queues_written_through_deliveries_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_that_does_not_start_after_acked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_that_ends_before_last_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_beyond_last_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acked_beyond_last_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hole_inside_a_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_of_a_unit_without_counters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

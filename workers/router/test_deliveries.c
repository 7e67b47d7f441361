/* deliveries_check() and deliveries_check_all() on a real LMDB store:
 * queues written through deliveries.c pass, and each invariant of
 * deliveries.h, broken on purpose, is reported by name. And pushing: only
 * what was lost is sent again (a new session, a unit that fell back, or
 * acks that stood still past the ack timeout), never on a mere repeated
 * ack, and a rewound session probes with one delivery before it streams,
 * so what the unit still holds is not sent twice. */
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
    const char *peer; /* ACK: the routing id; NULL = "peer" */
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
        return deliveries_ack(f->deliveries, txn, c->unit, c->seq, c->peer ? c->peer : "peer",
                              strlen(c->peer ? c->peer : "peer"));
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

/* ------------------------------------------------------------ pushing */

/* The seqs pushed by one batch, in order. */
typedef struct pushed {
    uint64_t seq[64];
    size_t count;
} pushed_t;

static int record_push(void *ctx, const void *peer, size_t peer_len, const void *body, size_t len)
{
    (void)peer;
    (void)peer_len;
    pushed_t *pushed = ctx;
    Dispatch__UnitDelivery *delivery = dispatch__unit_delivery__unpack(NULL, len, body);
    assert_non_null(delivery);
    if (pushed->count < 64)
        pushed->seq[pushed->count++] = delivery->seq;
    dispatch__unit_delivery__free_unpacked(delivery, NULL);
    return 0;
}

/* One batch of changes, then the pushes it makes: from..to, or none when
 * from is 0. */
static void expect_pushed(fixture_t *f, const change_t *changes, size_t count, uint64_t from,
                          uint64_t to)
{
    batch_t batch = {f, changes};
    pushed_t pushed = {.count = 0};
    int rc = harness_write_changes(f->store, apply_change, count, &batch);
    assert_int_equal(rc, 0);
    assert_true(deliveries_batch_done(f->deliveries, rc, record_push, &pushed) >= 0);
    size_t want = from ? (size_t)(to - from + 1) : 0;
    if (pushed.count != want)
        fail_msg("%zu deliveries pushed (first %llu), %zu expected (%llu..%llu)", pushed.count,
                 (unsigned long long)(pushed.count ? pushed.seq[0] : 0), want,
                 (unsigned long long)from, (unsigned long long)to);
    for (size_t i = 0; i < pushed.count; i++)
        assert_int_equal(pushed.seq[i], from + i);
}

static void append_n(fixture_t *f, const char *unit, int n, uint64_t from, uint64_t to)
{
    change_t changes[32];
    assert_true(n <= 32);
    for (int i = 0; i < n; i++)
        changes[i] = (change_t){.kind = APPEND, .unit = unit};
    expect_pushed(f, changes, (size_t)n, from, to);
}

static void ack(fixture_t *f, const char *unit, uint64_t seq, const char *peer, uint64_t from,
                uint64_t to)
{
    const change_t change = {.kind = ACK, .unit = unit, .seq = seq, .peer = peer};
    expect_pushed(f, &change, 1, from, to);
}

/* A session probes with one delivery, then streams the window. */
static void test_repeated_ack_resends_nothing_within_the_timeout(void **state)
{
    fixture_t *f = *state;
    deliveries_set_resend_after(f->deliveries, 600000);
    append_n(f, "u1", 10, 0, 0);  /* no session yet */
    ack(f, "u1", 0, "A", 1, 1);   /* the ack that opens the session: the probe */
    ack(f, "u1", 0, "A", 0, 0);   /* a heartbeat: the probe is on its way */
    ack(f, "u1", 1, "A", 2, 10);  /* the probe, exactly: the window opens */
    ack(f, "u1", 1, "A", 0, 0);   /* a repeat within the timeout: nothing */
    ack(f, "u1", 4, "A", 0, 0);   /* progress */
    ack(f, "u1", 4, "A", 0, 0);   /* the unit dropped a duplicate */
    append_n(f, "u1", 5, 11, 15); /* new ones go out at once */
    ack(f, "u1", 4, "A", 0, 0);   /* still nothing resent */
    ack(f, "u1", 4, "B", 5, 5);   /* a new routing id: a new session, probing */
    ack(f, "u1", 2, "B", 5, 5);   /* below what it acked: it lost its state */
    ack(f, "u1", 5, "B", 6, 15);  /* the probe: streaming */
    ack(f, "u1", 15, "B", 0, 0);  /* all applied */
    ack(f, "u1", 15, "B", 0, 0);  /* nothing outstanding, nothing to send */
}

/* Acks that stand still past the timeout with deliveries outstanding: the
 * unit lost some and drops what follows; the rest is sent again (a probe
 * first), once per timeout. */
static void test_acks_standing_still_past_the_timeout_rewind(void **state)
{
    fixture_t *f = *state;
    deliveries_set_resend_after(f->deliveries, 600000);
    append_n(f, "u1", 8, 0, 0);
    ack(f, "u1", 0, "A", 1, 1);
    ack(f, "u1", 1, "A", 2, 8);
    ack(f, "u1", 3, "A", 0, 0);
    deliveries_set_resend_after(f->deliveries, 0);
    ack(f, "u1", 3, "A", 4, 4); /* the timeout passed: 4 again, as a probe */
    ack(f, "u1", 4, "A", 5, 8);
    ack(f, "u1", 8, "A", 0, 0);
    ack(f, "u1", 8, "A", 0, 0); /* nothing outstanding: no rewind however long */
}

/* A router restarted while the unit held deliveries it had not read: the
 * new session's probe is the only one sent twice; while the unit acks its
 * way through what it holds, nothing is pushed, and the window opens when
 * its acks reach what was queued (or stand still). */
static void test_restart_resends_a_probe_not_the_window(void **state)
{
    fixture_t *f = *state;
    deliveries_set_resend_after(f->deliveries, 600000);
    append_n(f, "u1", 20, 0, 0);
    ack(f, "u1", 0, "A", 1, 1);
    ack(f, "u1", 1, "A", 2, 20);        /* the unit has 2..20 on its way */
    deliveries_destroy(&f->deliveries); /* the router restarts */
    assert_int_equal(deliveries_new(f->store, 0, &f->deliveries), 0);
    deliveries_set_resend_after(f->deliveries, 600000);
    ack(f, "u1", 5, "A", 6, 6);    /* applied 5, holds 6..20: the probe is 6 */
    ack(f, "u1", 9, "A", 0, 0);    /* beyond the probe: it holds more, wait */
    append_n(f, "u1", 3, 0, 0);    /* 21..23 wait too */
    ack(f, "u1", 14, "A", 0, 0);   /* still reading what it holds */
    ack(f, "u1", 20, "A", 21, 23); /* all it could hold: the window opens */

    /* The same when the unit held less than was queued: its ack standing
     * still (the probe's copy dropped, or its heartbeat) opens it. */
    append_n(f, "u1", 4, 24, 27);
    deliveries_destroy(&f->deliveries);
    assert_int_equal(deliveries_new(f->store, 0, &f->deliveries), 0);
    deliveries_set_resend_after(f->deliveries, 600000);
    ack(f, "u1", 23, "A", 24, 24); /* probe */
    ack(f, "u1", 25, "A", 0, 0);   /* holds 25: wait */
    ack(f, "u1", 25, "A", 26, 27); /* stands still: it held no more */
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
        cmocka_unit_test_setup_teardown(test_repeated_ack_resends_nothing_within_the_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_acks_standing_still_past_the_timeout_rewind, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restart_resends_a_probe_not_the_window, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

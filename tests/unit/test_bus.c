/* The bus in one process: two stores, two buses, real sockets on loopback.
 * Each test steps both event loops (waiting on poll, never on a timer)
 * until a condition holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.h"
#include "auth.h"
#include "bus.h"
#include "bus.pb-c.h"
#include "harness.h"
#include "invariants.h"
#include "loop.h"
#include "store.h"

#define STEP_LIMIT 20000

typedef struct side {
    char dir[600];
    store_t *store;
    bus_t *bus;
    bus_link_t *link;
    MDB_dbi applied, meta;
    loop_app_t app;
    /* receiver behaviour */
    uint64_t reject_value; /* refuse the message carrying this value */
    uint64_t fail_value;   /* fail the batch holding this value ... */
    int fail_times;        /* ... this many times */
    bool reject_all;       /* refuse every message */
    uint64_t base;         /* the value before the first one expected */
    /* bus events heard */
    int diverged, refused, accepted, reconnected, forged;
    bus_diverged_reason_t reason;
} side_t;

typedef struct fixture {
    char dir[512];
    void *context;
    side_t sender, receiver;
    char endpoint[256];
    bus_options_t options;
    store_options_t receiver_store;
} fixture_t;

static int receiver_apply(void *app, MDB_txn *txn, const char *sender, uint64_t seq,
                          const void *body, size_t len)
{
    side_t *side = app;
    if (len < 8)
        return BUS_REJECTED;
    uint64_t value = store_u64_decode(body);
    if (value == side->reject_value || side->reject_all)
        return BUS_REJECTED;
    if (value == side->fail_value && side->fail_times > 0) {
        side->fail_times--;
        return -EIO;
    }
    MDB_val k = {8, (void *)body}, v = {len, (void *)body};
    int rc = mdb_put(txn, side->applied, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        uint64_t dups;
        rc = store_get_u64(txn, side->meta, "dups", 4, 0, &dups);
        return rc < 0 ? rc : store_put_u64(txn, side->meta, "dups", 4, dups + 1);
    }
    uint64_t last;
    if (rc == 0)
        rc = store_get_u64(txn, side->meta, "last", 4, side->base, &last);
    if (rc == 0 && value != last + 1)
        rc = -EPROTO; /* out of order: the test fails on it */
    return rc == 0 ? store_put_u64(txn, side->meta, "last", 4, value) : store_rc(rc);
}

static void on_event(void *ctx, const bus_event_t *event)
{
    side_t *side = ctx;
    switch (event->kind) {
    case BUS_EVENT_DIVERGED:
        side->diverged++;
        side->reason = event->reason;
        break;
    case BUS_EVENT_REFUSED:
        side->refused++;
        break;
    case BUS_EVENT_ACCEPTED:
        side->accepted++;
        break;
    case BUS_EVENT_RECONNECTED:
        side->reconnected++;
        break;
    case BUS_EVENT_FORGED:
        side->forged++;
        break;
    case BUS_EVENT_RESUMED:
    case BUS_EVENT_DEAD_DROPPED:
        break;
    }
}

/* Opens the state dir `dir` under the bus id `id`. */
static void side_open_as(fixture_t *f, side_t *side, const char *dir, const char *id,
                         const store_options_t *store_options)
{
    snprintf(side->dir, sizeof(side->dir), "%s/%s", f->dir, dir);
    assert_int_equal(store_open(side->dir, store_options, &side->store), 0);
    assert_int_equal(store_dbi(side->store, "applied", 0, &side->applied), 0);
    assert_int_equal(store_dbi(side->store, "meta", 0, &side->meta), 0);
    bus_options_t options = f->options;
    options.on_event = on_event;
    options.event_ctx = side;
    assert_int_equal(bus_new(f->context, side->store, id, &options, &side->bus), 0);
    side->app = (loop_app_t){.app = side};
}

static void side_open(fixture_t *f, side_t *side, const char *name,
                      const store_options_t *store_options)
{
    side_open_as(f, side, name, name, store_options);
}

static void step(side_t *side);
static void side_stop(side_t *side);

static void receiver_start(fixture_t *f)
{
    /* A receiver stopped just before may still hold the port: ZeroMQ
     * closes its listener in the background. */
    int rc = -EADDRINUSE;
    for (int i = 0; i < 1000 && rc == -EADDRINUSE; i++) {
        side_open(f, &f->receiver, "receiver", &f->receiver_store);
        rc = bus_listen(f->receiver.bus, f->endpoint, receiver_apply, &f->receiver);
        if (rc == -EADDRINUSE) {
            side_stop(&f->receiver);
            if (f->sender.bus)
                step(&f->sender);
            else
                zmq_poll(NULL, 0, 5);
        }
    }
    assert_int_equal(rc, 0);
    snprintf(f->endpoint, sizeof(f->endpoint), "%s", bus_listen_endpoint(f->receiver.bus));
}

static void sender_start(fixture_t *f)
{
    side_open(f, &f->sender, "sender", NULL);
    assert_int_equal(bus_link_open(f->sender.bus, "receiver", f->endpoint, &f->sender.link), 0);
}

static void side_stop(side_t *side)
{
    bus_destroy(&side->bus);
    store_destroy(&side->store);
    side->link = NULL;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_int_equal(harness_tmpdir("bus", f->dir, sizeof(f->dir)), 0);
    f->context = zmq_ctx_new();
    f->options = (bus_options_t){.ack_timeout_ms = 50, .heartbeat_ms = 200};
    /* The receiver restarts on this port: one no client can take over. */
    assert_int_equal(harness_tcp_endpoint(f->endpoint, sizeof(f->endpoint)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    side_stop(&f->sender);
    side_stop(&f->receiver);
    zmq_ctx_term(f->context);
    harness_rmtree(f->dir);
    free(f);
    return 0;
}

typedef struct send_batch {
    side_t *side;
    uint64_t first, count;
    size_t size;
} send_batch_t;

static int send_fn(MDB_txn *txn, void *ctx)
{
    send_batch_t *batch = ctx;
    unsigned char *body = calloc(1, batch->size);
    int rc = bus_batch_apply(batch->side->bus, txn);
    for (uint64_t i = 0; i < batch->count && rc == 0; i++) {
        store_u64_encode(batch->first + i, body);
        rc = bus_send(batch->side->bus, txn, batch->side->link, body, batch->size);
    }
    free(body);
    return rc;
}

/* Messages first..first+count-1 into the sender's outbox, one transaction. */
static void send_values(fixture_t *f, uint64_t first, uint64_t count, size_t size)
{
    send_batch_t batch = {&f->sender, first, count, size};
    int rc = store_write(f->sender.store, send_fn, &batch);
    bus_batch_done(f->sender.bus, rc);
    assert_int_equal(rc, 0);
}

static uint64_t meta(side_t *side, const char *key)
{
    MDB_txn *txn;
    uint64_t value = 0;
    assert_int_equal(store_read_begin(side->store, &txn), 0);
    assert_int_equal(store_get_u64(txn, side->meta, key, strlen(key), 0, &value), 0);
    store_read_end(&txn);
    return value;
}

static uint64_t outbox_entries(side_t *side)
{
    MDB_txn *txn;
    MDB_dbi outbox;
    MDB_stat st;
    assert_int_equal(store_dbi(side->store, "outbox.receiver", 0, &outbox), 0);
    assert_int_equal(store_read_begin(side->store, &txn), 0);
    assert_int_equal(mdb_stat(txn, outbox, &st), 0);
    store_read_end(&txn);
    return st.ms_entries;
}

static void step(side_t *side)
{
    if (side->bus)
        assert_int_equal(loop_once(side->store, side->bus, &side->app, 5), 0);
}

/* Steps both sides until the receiver has applied up to last and the sender
 * has seen everything acknowledged. */
static void run_until_delivered(fixture_t *f, uint64_t last)
{
    for (int i = 0; i < STEP_LIMIT; i++) {
        step(&f->receiver);
        step(&f->sender);
        if (meta(&f->receiver, "last") == last && bus_idle(f->sender.bus))
            return;
    }
    fail_msg("not delivered: receiver at %llu of %llu",
             (unsigned long long)meta(&f->receiver, "last"), (unsigned long long)last);
}

/* A link on which values 1..count were delivered and acknowledged. */
static void link_with_delivered(fixture_t *f, uint64_t count)
{
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, count, 16);
    run_until_delivered(f, count);
}

static void test_streams_acks_and_cleans_up(void **state)
{
    fixture_t *f = *state;
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 4000, 32);
    send_values(f, 4001, 6000, 32);
    run_until_delivered(f, 10000);

    bus_stats_t stats;
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.applied, 10000);
    assert_int_equal(stats.duplicates, 0);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
    /* Group commit: far fewer commits than messages. */
    assert_true(store_commits(f->receiver.store) < 10000 / 4);

    /* Acknowledged entries leave the outbox. */
    for (int i = 0; i < STEP_LIMIT && outbox_entries(&f->sender) > 0; i++)
        step(&f->sender);
    assert_int_equal(outbox_entries(&f->sender), 0);
    bus_link_stats_t link;
    bus_link_stats(f->sender.link, &link);
    assert_int_equal(link.acked, 10000);
    assert_int_equal(link.next, 10001);
    assert_true(link.up);
    assert_false(link.diverged);
}

static void test_sender_restart_resends_and_receiver_dedupes(void **state)
{
    fixture_t *f = *state;
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 1000, 16);
    /* The receiver applies everything, but the sender dies before it reads
     * a single ack: its outbox still holds all 1000. */
    step(&f->sender);
    for (int i = 0; i < STEP_LIMIT && meta(&f->receiver, "last") < 1000; i++)
        step(&f->receiver);
    assert_int_equal(meta(&f->receiver, "last"), 1000);
    side_stop(&f->sender);

    sender_start(f);
    bus_link_stats_t link;
    bus_link_stats(f->sender.link, &link);
    assert_int_equal(link.next, 1001);
    assert_int_equal(link.acked, 0);
    send_values(f, 1001, 10, 16);
    run_until_delivered(f, 1010);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
    bus_stats_t stats;
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.applied, 1010);
}

static void test_receiver_restart_loses_nothing(void **state)
{
    fixture_t *f = *state;
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 20000, 16);
    for (int i = 0; i < STEP_LIMIT && meta(&f->receiver, "last") == 0; i++) {
        step(&f->sender);
        step(&f->receiver);
    }
    uint64_t before = meta(&f->receiver, "last");
    assert_true(before > 0);
    /* Whatever was in flight is gone with the receiver's sockets. */
    side_stop(&f->receiver);
    step(&f->sender);
    receiver_start(f); /* same endpoint, same state */
    run_until_delivered(f, 20000);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
}

static void test_rejected_message_is_kept_and_stream_goes_on(void **state)
{
    fixture_t *f = *state;
    f->receiver.reject_value = 3;
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 2, 16);
    send_values(f, 3, 1, 16); /* refused */
    run_until_delivered(f, 2);
    bus_stats_t stats;
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.rejected, 1);

    MDB_dbi dead;
    MDB_txn *txn;
    MDB_stat st;
    assert_int_equal(store_dbi(f->receiver.store, "bus.dead", 0, &dead), 0);
    assert_int_equal(store_read_begin(f->receiver.store, &txn), 0);
    assert_int_equal(mdb_stat(txn, dead, &st), 0);
    store_read_end(&txn);
    assert_int_equal(st.ms_entries, 1);
    bus_link_stats_t link;
    bus_link_stats(f->sender.link, &link);
    assert_int_equal(link.acked, 3); /* consumed, not stuck */
}

static void test_failed_batch_is_resent_not_lost(void **state)
{
    fixture_t *f = *state;
    receiver_start(f);
    f->receiver.fail_value = 5;
    f->receiver.fail_times = 3;
    sender_start(f);
    send_values(f, 1, 100, 16);
    run_until_delivered(f, 100);
    assert_int_equal(f->receiver.fail_times, 0);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
    bus_link_stats_t link;
    bus_link_stats(f->sender.link, &link);
    assert_true(link.resends > 0);
}

static void test_receiver_map_grows(void **state)
{
    fixture_t *f = *state;
    f->receiver_store = (store_options_t){.map_size = 1 << 20};
    receiver_start(f);
    sender_start(f);
    for (uint64_t i = 0; i < 8; i++)
        send_values(f, 1 + i * 1000, 1000, 1024); /* 8 MiB into a 1 MiB map */
    run_until_delivered(f, 8000);
    assert_true(store_map_size(f->receiver.store) >= 8u << 20);
}

/* Sends raw frames as a hostile peer with routing id `id`. */
static void *hostile(fixture_t *f, const char *id)
{
    void *socket = zmq_socket(f->context, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(socket, ZMQ_ROUTING_ID, id, strlen(id));
    assert_int_equal(zmq_connect(socket, f->endpoint), 0);
    return socket;
}

static int view_count_fn(void *ctx, const bus_link_view_t *view)
{
    int *count = ctx;
    if (view->direction == BUS_INCOMING)
        (*count)++;
    return 0;
}

static void test_hostile_frames_are_dropped(void **state)
{
    fixture_t *f = *state;
    f->options.max_message = 4096;
    link_with_delivered(f, 10);

    void *mallory = hostile(f, "mallory");
    /* garbage header */
    zmq_send(mallory, "\xff\xff\xff", 3, 0);
    /* a header that claims to be "sender" */
    Dispatch__Bus__BusHeader header = DISPATCH__BUS__BUS_HEADER__INIT;
    header.kind = DISPATCH__BUS__FRAME_KIND__FRAME_KIND_DATA;
    header.sender_id = "sender";
    header.link_seq = 11;
    unsigned char buf[64], body[16] = {0};
    size_t len = dispatch__bus__bus_header__pack(&header, buf);
    zmq_send(mallory, buf, len, ZMQ_SNDMORE);
    zmq_send(mallory, body, sizeof(body), 0);
    /* data without a body, and seq 0 */
    header.sender_id = "mallory";
    len = dispatch__bus__bus_header__pack(&header, buf);
    zmq_send(mallory, buf, len, 0);
    header.link_seq = 0;
    len = dispatch__bus__bus_header__pack(&header, buf);
    zmq_send(mallory, buf, len, ZMQ_SNDMORE);
    zmq_send(mallory, body, sizeof(body), 0);
    /* an oversized frame: the socket drops the peer */
    void *big_sender = hostile(f, "big");
    char *big = calloc(1, 8192);
    zmq_send(big_sender, big, 8192, 0);
    free(big);

    bus_stats_t stats = {0};
    for (int i = 0; i < STEP_LIMIT && stats.bad_frames < 4; i++) {
        step(&f->receiver);
        bus_stats(f->receiver.bus, &stats);
    }
    assert_int_equal(stats.bad_frames, 4);
    assert_int_equal(stats.applied, 10);

    /* The real sender is still served. */
    send_values(f, 11, 5, 16);
    run_until_delivered(f, 15);
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.applied, 15);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
    zmq_close(mallory);
    zmq_close(big_sender);
}

/* ------------------------------------------------------------ checks */

/* bus_check() in the shape of a loop_check_fn. */
static int check_bus(void *bus, MDB_txn *txn, char *why, size_t why_len)
{
    return bus_check(bus, txn, why, why_len);
}

static void assert_check_holds(side_t *side)
{
    assert_true(harness_checks_say(side->store, NULL, check_bus, side->bus, 0, NULL));
}

/* The check fails with -EPROTO and a sentence that names what broke. */
static void assert_check_fails(side_t *side, const char *named)
{
    assert_true(harness_checks_say(side->store, NULL, check_bus, side->bus, -EPROTO, named));
}

typedef struct corruption {
    MDB_dbi dbi;
    const void *key;
    size_t key_len;
    bool put; /* else delete */
    uint64_t value;
} corruption_t;

static int corrupt_fn(MDB_txn *txn, size_t index, void *ctx)
{
    const corruption_t *c = ctx;
    MDB_val k = {c->key_len, (void *)c->key};
    if (c->put)
        return store_put_u64(txn, c->dbi, c->key, c->key_len, c->value);
    return store_rc(mdb_del(txn, c->dbi, &k, NULL));
}

/* Writes past the bus, as a bug or a damaged file would. */
static void corrupt(side_t *side, const char *db, const void *key, size_t key_len, bool put,
                    uint64_t value)
{
    corruption_t c = {.key = key, .key_len = key_len, .put = put, .value = value};
    assert_int_equal(store_dbi(side->store, db, 0, &c.dbi), 0);
    assert_int_equal(harness_write_changes(side->store, corrupt_fn, 1, &c), 0);
}

typedef struct raw {
    MDB_dbi dbi;
    MDB_val key, value;
} raw_t;

static int raw_fn(MDB_txn *txn, size_t index, void *ctx)
{
    raw_t *raw = ctx;
    return store_rc(mdb_put(txn, raw->dbi, &raw->key, &raw->value, 0));
}

/* Puts any bytes under key, past the bus. */
static void raw_put(side_t *side, MDB_dbi dbi, const void *key, size_t key_len, const void *value,
                    size_t len)
{
    raw_t raw = {dbi, {key_len, (void *)key}, {len, (void *)value}};
    assert_int_equal(harness_write_changes(side->store, raw_fn, 1, &raw), 0);
}

static void corrupt_outbox(side_t *side, uint64_t seq, bool put)
{
    unsigned char key[8];
    store_u64_encode(seq, key);
    corrupt(side, "outbox.receiver", key, sizeof(key), put, seq);
}

static void test_check_holds_through_streams_and_restarts(void **state)
{
    fixture_t *f = *state;
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 500, 16);
    assert_check_holds(&f->sender);
    run_until_delivered(f, 500);
    assert_check_holds(&f->sender);
    assert_check_holds(&f->receiver);
    side_stop(&f->sender);
    sender_start(f); /* restored from the store */
    assert_check_holds(&f->sender);
    send_values(f, 501, 10, 16);
    run_until_delivered(f, 510);
    assert_check_holds(&f->sender);
    assert_check_holds(&f->receiver);
}

/* A settled link (value 1 delivered and acknowledged) with 2..11 in the
 * outbox, not streamed yet. */
static void outbox_with_unsent(fixture_t *f)
{
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 1, 16);
    run_until_delivered(f, 1);
    send_values(f, 2, 10, 16); /* deletes entry 1, acknowledged */
    assert_int_equal(outbox_entries(&f->sender), 10);
    assert_check_holds(&f->sender);
}

static void test_check_finds_a_hole_in_the_outbox(void **state)
{
    fixture_t *f = *state;
    outbox_with_unsent(f);
    corrupt_outbox(&f->sender, 5, false);
    assert_check_fails(&f->sender, "a hole or a stray entry");
}

static void test_check_finds_a_stray_outbox_entry(void **state)
{
    fixture_t *f = *state;
    outbox_with_unsent(f);
    corrupt_outbox(&f->sender, 12, true); /* a seq bus_send() never gave */
    assert_check_fails(&f->sender, "a hole or a stray entry");
    /* As many entries again, but the range shifted by one. */
    corrupt_outbox(&f->sender, 2, false);
    assert_check_fails(&f->sender, "does not run from seq 2 to 11");
}

static void test_check_finds_last_seq_above_what_was_received(void **state)
{
    fixture_t *f = *state;
    link_with_delivered(f, 5);
    assert_check_holds(&f->receiver);
    unsigned char key[7 + BUS_INCARNATION_SIZE] = "sender";
    memcpy(key + 7, bus_incarnation(f->sender.bus), BUS_INCARNATION_SIZE);
    corrupt(&f->receiver, "bus.last_seq", key, sizeof(key), true, 9);
    assert_check_fails(&f->receiver, "last_seq is 9 in the store but 5 in memory");
}

static void test_check_finds_a_wrong_acked_position(void **state)
{
    fixture_t *f = *state;
    link_with_delivered(f, 5);
    for (int i = 0; i < STEP_LIMIT && outbox_entries(&f->sender) > 0; i++)
        step(&f->sender);
    assert_int_equal(outbox_entries(&f->sender), 0);
    assert_check_holds(&f->sender);
    corrupt(&f->sender, "bus.links", "receiver.acked", 14, true, 3);
    assert_check_fails(&f->sender, "acked position is 3 in bus.links but 5 in memory");
}

/* ------------------------------------------------------------ identity */

typedef struct view_find {
    const char *peer_id;
    bus_direction_t direction;
    bus_link_view_t found;
    bool seen;
} view_find_t;

static int view_find_fn(void *ctx, const bus_link_view_t *view)
{
    view_find_t *find = ctx;
    if (view->direction != find->direction || strcmp(view->peer_id, find->peer_id) != 0)
        return 0;
    find->found = *view;
    find->found.peer_id = NULL; /* valid during the call only */
    find->seen = true;
    return 1;
}

/* What bus_links_each() says of one end of a link. */
static bus_link_stats_t link_view(side_t *side, const char *peer_id, bus_direction_t direction)
{
    view_find_t find = {.peer_id = peer_id, .direction = direction};
    bus_links_each(side->bus, view_find_fn, &find);
    assert_true(find.seen);
    return find.found.stats;
}

/* Steps both sides until `side` heard of a divergence or a refusal. */
static void run_until_heard(fixture_t *f, side_t *side, const int *counter)
{
    for (int i = 0; i < STEP_LIMIT && *counter == 0; i++) {
        step(&f->receiver);
        step(&f->sender);
    }
    assert_true(*counter > 0);
}

/* A few more round trips, for anything that would wrongly go on. */
static void run_a_while(fixture_t *f)
{
    for (int i = 0; i < 50; i++) {
        step(&f->receiver);
        step(&f->sender);
    }
}

static void wipe(side_t *side)
{
    side_stop(side);
    assert_int_equal(harness_rmtree(side->dir), 0);
}

static int no_serve(admin_call_t *call)
{
    return -EPROTO; /* links requests are served by admin_handle() itself */
}

/* One admin request to the side's admin handling, as a router's endpoint
 * serves it: the reply is in memory until the next. */
static Dispatch__AdminReply admin_links(side_t *side, admin_reply_t *memory, const char *accept)
{
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    Dispatch__LinksQuery query = DISPATCH__LINKS_QUERY__INIT;
    Dispatch__LinkAccept link_accept = DISPATCH__LINK_ACCEPT__INIT;
    request.actor_id = "ops";
    request.role = DISPATCH__ROLE__ROLE_ADMIN;
    if (accept) {
        link_accept.peer = (char *)accept;
        request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT;
        request.link_accept = &link_accept;
    } else {
        request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY;
        request.links_query = &query;
    }
    unsigned char buf[256];
    size_t len = dispatch__admin_request__pack(&request, buf);
    Dispatch__AdminReply reply;
    assert_int_equal(admin_handle(memory, LIFECYCLE_ROUTER, NULL, side->store, side->bus, NULL,
                                  NULL, 0, buf, len, sizeof(buf), no_serve, &reply),
                     0);
    return reply;
}

/* The sender's state dir is reset: its new seqs 1.. would be taken for the
 * old ones. The receiver refuses the new incarnation, nothing is applied
 * nor deleted, until it is accepted; then all 80 arrive once. */
static void test_reset_sender_is_refused_until_accepted(void **state)
{
    fixture_t *f = *state;
    link_with_delivered(f, 100);
    wipe(&f->sender);

    sender_start(f);
    send_values(f, 101, 80, 16); /* seqs 1..80 of a new incarnation */
    run_until_heard(f, &f->receiver, &f->receiver.diverged);
    run_until_heard(f, &f->sender, &f->sender.refused);
    run_a_while(f);
    assert_int_equal(f->receiver.reason, BUS_DIVERGED_SENDER_INCARNATION);
    assert_int_equal(meta(&f->receiver, "last"), 100);
    assert_int_equal(outbox_entries(&f->sender), 80);
    bus_link_stats_t in = link_view(&f->receiver, "sender", BUS_INCOMING);
    assert_true(in.diverged);
    assert_int_equal(in.reason, BUS_DIVERGED_SENDER_INCARNATION);
    assert_memory_equal(in.offered, bus_incarnation(f->sender.bus), BUS_INCARNATION_SIZE);
    bus_link_stats_t out = link_view(&f->sender, "receiver", BUS_OUTGOING);
    assert_true(out.refused);
    assert_int_equal(out.acked, 0);
    assert_int_equal(out.lag, 80);
    assert_check_holds(&f->sender);
    assert_check_holds(&f->receiver);

    assert_int_equal(bus_accept(f->receiver.bus, "sender", false), 0);
    run_until_delivered(f, 180);
    assert_int_equal(f->receiver.accepted, 1);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
    bus_stats_t stats;
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.applied, 180);
    assert_false(link_view(&f->receiver, "sender", BUS_INCOMING).diverged);
    assert_false(link_view(&f->sender, "receiver", BUS_OUTGOING).refused);
    assert_check_holds(&f->sender);
    assert_check_holds(&f->receiver);
}

/* The receiver's state dir is reset: the sender sees another incarnation
 * in its acks, keeps its outbox and sends nothing until accepted; then the
 * unacknowledged rest is renumbered and arrives once. */
static void test_reset_receiver_diverges_until_accepted(void **state)
{
    fixture_t *f = *state;
    link_with_delivered(f, 100);
    wipe(&f->receiver);

    f->receiver.base = 100; /* the application starts again after 100 */
    receiver_start(f);
    send_values(f, 101, 50, 16);
    run_until_heard(f, &f->sender, &f->sender.diverged);
    run_a_while(f);
    assert_int_equal(f->sender.reason, BUS_DIVERGED_RECEIVER_INCARNATION);
    assert_int_equal(meta(&f->receiver, "last"), 0); /* nothing applied */
    bus_stats_t stats;
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.applied, 0);
    assert_int_equal(outbox_entries(&f->sender), 50);
    bus_link_stats_t out = link_view(&f->sender, "receiver", BUS_OUTGOING);
    assert_true(out.diverged);
    assert_int_equal(out.outbox, 50);
    assert_memory_equal(out.offered, bus_incarnation(f->receiver.bus), BUS_INCARNATION_SIZE);
    assert_memory_not_equal(out.peer_incarnation, out.offered, BUS_INCARNATION_SIZE);
    assert_check_holds(&f->sender);

    /* As an admin endpoint shows it, and accepts it. */
    admin_reply_t memory = {0};
    Dispatch__AdminReply reply = admin_links(&f->sender, &memory, NULL);
    assert_int_equal(reply.body_case, DISPATCH__ADMIN_REPLY__BODY_LINKS);
    assert_string_equal(reply.links->worker, "sender");
    assert_int_equal(reply.links->n_links, 1);
    const Dispatch__LinkState *shown = reply.links->links[0];
    assert_string_equal(shown->peer, "receiver");
    assert_int_equal(shown->direction, DISPATCH__LINK_DIRECTION__LINK_DIRECTION_OUTGOING);
    assert_int_equal(shown->divergence,
                     DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_RECEIVER_INCARNATION);
    assert_int_equal(shown->outbox, 50);
    assert_int_equal(shown->offered.len, BUS_INCARNATION_SIZE);
    assert_memory_equal(shown->offered.data, bus_incarnation(f->receiver.bus),
                        BUS_INCARNATION_SIZE);
    reply = admin_links(&f->sender, &memory, "nobody");
    assert_int_equal(reply.body_case, DISPATCH__ADMIN_REPLY__BODY_ERROR);
    assert_int_equal(reply.error->code, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    reply = admin_links(&f->sender, &memory, "receiver");
    assert_int_equal(reply.body_case, DISPATCH__ADMIN_REPLY__BODY_LINKS);
    admin_reply_free(&memory);
    run_until_delivered(f, 150);
    assert_int_equal(f->sender.accepted, 1);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.applied, 50);
    out = link_view(&f->sender, "receiver", BUS_OUTGOING);
    assert_false(out.diverged);
    assert_int_equal(out.next, 51);
    assert_check_holds(&f->sender);
    assert_check_holds(&f->receiver);
}

/* A sender's state dir runs under another name: its incarnation belongs
 * to the old name. Refused until accepted; then the old name's position
 * goes on under the new one. */
static void test_renamed_sender_is_refused_until_accepted(void **state)
{
    fixture_t *f = *state;
    link_with_delivered(f, 100);
    side_stop(&f->sender);

    side_open_as(f, &f->sender, "sender", "sender2", NULL);
    assert_int_equal(bus_link_open(f->sender.bus, "receiver", f->endpoint, &f->sender.link), 0);
    send_values(f, 101, 20, 16);
    run_until_heard(f, &f->receiver, &f->receiver.diverged);
    run_a_while(f);
    assert_int_equal(f->receiver.reason, BUS_DIVERGED_SENDER_RENAMED);
    assert_int_equal(meta(&f->receiver, "last"), 100);
    assert_int_equal(outbox_entries(&f->sender), 20);
    assert_true(link_view(&f->receiver, "sender2", BUS_INCOMING).diverged);

    assert_int_equal(bus_accept(f->receiver.bus, "sender2", false), 0);
    run_until_delivered(f, 120);
    assert_int_equal(f->receiver.accepted, 1);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
    assert_int_equal(link_view(&f->receiver, "sender2", BUS_INCOMING).acked, 120);
    assert_check_holds(&f->receiver);
}

/* An acceptance given before the divergence (a start option's way) waits
 * for it, and is used once. */
static void test_accept_given_early_waits_for_the_divergence(void **state)
{
    fixture_t *f = *state;
    link_with_delivered(f, 10);
    assert_int_equal(bus_accept(f->receiver.bus, "sender", false), -ENOENT);
    assert_int_equal(bus_accept(f->receiver.bus, "sender", true), 0);
    run_a_while(f);
    assert_int_equal(f->receiver.accepted, 0); /* nothing to accept yet */
    wipe(&f->sender);
    sender_start(f);
    send_values(f, 11, 10, 16);
    run_until_delivered(f, 20);
    assert_int_equal(f->receiver.diverged, 1);
    assert_int_equal(f->receiver.accepted, 1);
    assert_int_equal(meta(&f->receiver, "dups"), 0);

    /* Used up: a second reset is refused again. */
    wipe(&f->sender);
    sender_start(f);
    send_values(f, 21, 10, 16);
    run_until_heard(f, &f->receiver, &f->receiver.diverged);
    for (int i = 0; i < STEP_LIMIT && f->receiver.diverged < 2; i++) {
        step(&f->receiver);
        step(&f->sender);
    }
    run_a_while(f);
    assert_int_equal(f->receiver.diverged, 2);
    assert_int_equal(meta(&f->receiver, "last"), 20);
    assert_int_equal(outbox_entries(&f->sender), 10);
}

/* ------------------------------------------------------------ bounds */

/* One probe under each of many names: the table stays bounded, idle
 * strangers are evicted, and a real sender is served after them. */
static void test_peer_table_is_bounded(void **state)
{
    fixture_t *f = *state;
    receiver_start(f);
    Dispatch__Bus__BusHeader header = DISPATCH__BUS__BUS_HEADER__INIT;
    header.kind = DISPATCH__BUS__FRAME_KIND__FRAME_KIND_PROBE;
    unsigned char incarnation[BUS_INCARNATION_SIZE] = {1};
    header.incarnation = (ProtobufCBinaryData){sizeof(incarnation), incarnation};
    unsigned char buf[128];
    int names = (BUS_MAX_PEERS / 100 + 3) * 100;
    for (int i = 0; i < names; i += 100) {
        void *sockets[100];
        for (int j = 0; j < 100; j++) {
            char id[32];
            snprintf(id, sizeof(id), "stranger-%d", i + j);
            incarnation[1] = (unsigned char)j;
            incarnation[2] = (unsigned char)(i / 100);
            sockets[j] = hostile(f, id);
            header.sender_id = id;
            size_t len = dispatch__bus__bus_header__pack(&header, buf);
            zmq_send(sockets[j], buf, len, 0);
        }
        /* Each stranger gets its probe answered. */
        for (int j = 0; j < 100; j++) {
            zmq_pollitem_t item = {.socket = sockets[j], .events = ZMQ_POLLIN};
            for (int k = 0; k < STEP_LIMIT && zmq_poll(&item, 1, 0) == 0; k++)
                step(&f->receiver);
            zmq_close(sockets[j]);
        }
    }
    int count = 0;
    bus_links_each(f->receiver.bus, view_count_fn, &count);
    assert_int_equal(count, BUS_MAX_PEERS);
    bus_stats_t stats;
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.evicted, names - BUS_MAX_PEERS);

    sender_start(f);
    send_values(f, 1, 10, 16);
    run_until_delivered(f, 10);
    assert_check_holds(&f->receiver);
}

/* A receive batch holds at most max_batch_bytes of bodies (and one more). */
static void test_batch_is_bounded_in_bytes(void **state)
{
    fixture_t *f = *state;
    f->options.max_batch_bytes = 4096;
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 200, 1024);
    run_until_delivered(f, 200);
    /* 1 KiB bodies, at most 5 a batch: 40 commits or more. */
    assert_true(store_commits(f->receiver.store) >= 40);
}

/* bus.dead keeps the newest letters within its count and bytes. */
static void test_dead_letters_are_bounded(void **state)
{
    fixture_t *f = *state;
    f->options.dead_max_count = 3;
    f->receiver.reject_all = true;
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 10, 16);
    for (int i = 0; i < STEP_LIMIT && !bus_idle(f->sender.bus); i++) {
        step(&f->receiver);
        step(&f->sender);
    }
    assert_true(bus_idle(f->sender.bus));
    bus_stats_t stats;
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.rejected, 10);
    assert_int_equal(stats.dead_dropped, 7);

    MDB_dbi dead;
    MDB_txn *txn;
    MDB_cursor *cursor;
    assert_int_equal(store_dbi(f->receiver.store, "bus.dead", 0, &dead), 0);
    assert_int_equal(store_read_begin(f->receiver.store, &txn), 0);
    assert_int_equal(mdb_cursor_open(txn, dead, &cursor), 0);
    MDB_val k, v;
    uint64_t seqs[3], n = 0;
    for (int op = MDB_FIRST; mdb_cursor_get(cursor, &k, &v, op) == 0 && n < 3; op = MDB_NEXT) {
        const unsigned char *at = v.mv_data;
        assert_int_equal(at[0], 6);
        assert_memory_equal(at + 1, "sender", 6);
        seqs[n++] = store_u64_decode(at + 7);
    }
    mdb_cursor_close(cursor);
    store_read_end(&txn);
    assert_int_equal(n, 3);
    assert_int_equal(seqs[0], 8); /* the oldest went */
    assert_int_equal(seqs[2], 10);
    assert_check_holds(&f->receiver);

    /* In bytes: one letter is 1 + 6 + 8 + 16 = 31 bytes. */
    side_stop(&f->receiver);
    f->options.dead_max_count = 0;
    f->options.dead_max_bytes = 70;
    receiver_start(f); /* over its bounds now: the next letter trims it */
    send_values(f, 11, 1, 16);
    for (int i = 0; i < STEP_LIMIT && !bus_idle(f->sender.bus); i++) {
        step(&f->receiver);
        step(&f->sender);
    }
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.dead_dropped, 7 + 2);
    assert_check_holds(&f->receiver);
}

/* A link silent for dead_after_ms gets a new socket, and goes on. */
static void test_silent_link_gets_a_new_socket(void **state)
{
    fixture_t *f = *state;
    f->options.dead_after_ms = 300;
    link_with_delivered(f, 10);
    side_stop(&f->receiver);
    for (int i = 0; i < STEP_LIMIT && f->sender.reconnected == 0; i++)
        step(&f->sender);
    assert_true(f->sender.reconnected > 0);
    bus_link_stats_t link;
    bus_link_stats(f->sender.link, &link);
    assert_false(link.up);
    assert_true(link.reconnects > 0);
    receiver_start(f);
    send_values(f, 11, 10, 16);
    run_until_delivered(f, 20);
    assert_int_equal(meta(&f->receiver, "dups"), 0);
}

static void test_check_finds_another_incarnation_in_the_store(void **state)
{
    fixture_t *f = *state;
    link_with_delivered(f, 5);
    assert_check_holds(&f->receiver);
    assert_check_holds(&f->sender);
    unsigned char other[BUS_INCARNATION_SIZE] = {42};
    MDB_dbi senders, links;
    assert_int_equal(store_dbi(f->receiver.store, "bus.senders", 0, &senders), 0);
    assert_int_equal(store_dbi(f->sender.store, "bus.links", 0, &links), 0);
    raw_put(&f->receiver, senders, "sender", 6, other, sizeof(other));
    assert_check_fails(&f->receiver, "bus.senders names another incarnation than memory");
    raw_put(&f->sender, links, "receiver.incarnation", 20, other, sizeof(other));
    assert_check_fails(&f->sender, "the receiver's incarnation in bus.links is not the one");
}

static void test_check_finds_dead_letters_miscounted(void **state)
{
    fixture_t *f = *state;
    f->receiver.reject_value = 3;
    receiver_start(f);
    sender_start(f);
    send_values(f, 1, 3, 16);
    for (int i = 0; i < STEP_LIMIT && !bus_idle(f->sender.bus); i++) {
        step(&f->receiver);
        step(&f->sender);
    }
    assert_check_holds(&f->receiver);
    corrupt(&f->receiver, "bus.self", "dead.count", 10, true, 7);
    assert_check_fails(&f->receiver, "bus.dead: 7 letters");
}

/* ------------------------------------------------------------ the loop's hook */

typedef struct hook {
    int calls;
    int rc;
    bool work;
} hook_t;

static bool hook_drain(void *app, int64_t now_ms)
{
    hook_t *hook = app;
    bool work = hook->work;
    hook->work = false;
    return work;
}

static int hook_check(void *ctx, MDB_txn *txn, char *why, size_t why_len)
{
    hook_t *hook = ctx;
    hook->calls++;
    if (hook->rc < 0)
        snprintf(why, why_len, "a planted failure");
    return hook->rc;
}

static void hook_open(fixture_t *f, side_t *side, hook_t *hook, loop_check_t *check)
{
    side_open(f, side, "hooked", NULL);
    *check = (loop_check_t){hook_check, hook};
    side->app = (loop_app_t){.app = hook, .drain = hook_drain, .checks = check, .check_count = 1};
}

static void test_loop_runs_the_checks_after_each_batch(void **state)
{
    fixture_t *f = *state;
    hook_t hook = {0};
    loop_check_t check;
    hook_open(f, &f->sender, &hook, &check);
    step(&f->sender); /* no batch */
    assert_int_equal(hook.calls, 0);
    hook.work = true;
    step(&f->sender);
#ifdef DISPATCH_CHECKS
    assert_int_equal(hook.calls, 1);
#else
    assert_int_equal(hook.calls, 0);
#endif
}

/* A failed check ends the process with its sentence (in a child, so that
 * this one goes on). */
static void test_loop_aborts_on_a_failed_check(void **state)
{
    fixture_t *f = *state;
    int err[2];
    assert_int_equal(pipe(err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(err[1], STDERR_FILENO);
        close(err[0]);
        hook_t hook = {.rc = -EPROTO, .work = true};
        loop_check_t check;
        f->context = zmq_ctx_new(); /* the parent's is not for a child */
        hook_open(f, &f->sender, &hook, &check);
        loop_once(f->sender.store, f->sender.bus, &f->sender.app, 0);
        _exit(hook.calls == 0 ? 0 : 3);
    }
    close(err[1]);
    char text[1024] = "";
    size_t len = 0;
    ssize_t n;
    while (len + 1 < sizeof(text) && (n = read(err[0], text + len, sizeof(text) - 1 - len)) > 0)
        len += (size_t)n;
    text[len] = '\0';
    close(err[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
#ifdef DISPATCH_CHECKS
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(text, "invariant broken after a batch: a planted failure"));
#else
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
}

/* The keys a batch touched, once each in a row; too many and the set
 * only says so. */
static void test_touched_keys(void **state)
{
    loop_touched_t *touched;
    assert_int_equal(loop_touched_new(&touched), 0);
    loop_touched_add(touched, "a", 1);
    loop_touched_add(touched, "a", 1);
    loop_touched_add(touched, "bc", 2);
    loop_touched_add(touched, "a", 1);
    size_t cursor = 0, len, count = 0;
    const void *key;
    char seen[16] = "";
    while (loop_touched_next(touched, &cursor, &key, &len))
        count += (size_t)snprintf(seen + count, sizeof(seen) - count, "%.*s,", (int)len,
                                  (const char *)key);
#ifdef DISPATCH_CHECKS
    assert_string_equal(seen, "a,bc,a,");
    assert_false(loop_touched_overflowed(touched));
    static char big[LOOP_TOUCHED_KEY_MAX + 1];
    loop_touched_add(touched, big, sizeof(big));
    assert_true(loop_touched_overflowed(touched));
    loop_touched_clear(touched);
    assert_false(loop_touched_overflowed(touched));
    cursor = 0;
    assert_false(loop_touched_next(touched, &cursor, &key, &len));
#else
    assert_string_equal(seen, ""); /* nothing kept: a check looks at everything */
    assert_true(loop_touched_overflowed(touched));
#endif
    loop_touched_destroy(&touched);
    assert_null(touched);
}

/* A worker's key for `name` in dir. */
static void worker_key(const char *dir, const char *name)
{
    auth_actor_t actor = {.kind = AUTH_KIND_WORKER};
    snprintf(actor.name, sizeof(actor.name), "%s", name);
    snprintf(actor.worker, sizeof(actor.worker), "%s", name);
    assert_int_equal(auth_key_new(dir, &actor), 0);
}

/* Under CURVE a link is accepted only with its sender's own key: a process
 * naming itself "sender" with another worker's key (a key the directory
 * knows, so the handshake itself passes) has nothing applied, and is told
 * as a forgery. The real sender's key then delivers everything, once. */
static void test_forged_sender_key_is_dropped(void **state)
{
    fixture_t *f = *state;
    char keys[600];
    snprintf(keys, sizeof(keys), "%s/keys", f->dir);
    worker_key(keys, "receiver");
    worker_key(keys, "sender");
    worker_key(keys, "intruder");
    auth_t *receiver_auth, *sender_auth;
    assert_int_equal(auth_new(f->context, keys, "receiver", &receiver_auth), 0);
    f->options.auth = receiver_auth;
    receiver_start(f);

    /* The sender's side in its own context: one ZAP handler a context. */
    void *receiver_context = f->context;
    f->context = zmq_ctx_new();
    assert_int_equal(auth_new(f->context, keys, "intruder", &sender_auth), 0);
    f->options.auth = sender_auth;
    sender_start(f);
    send_values(f, 1, 100, 16);
    run_until_heard(f, &f->receiver, &f->receiver.forged);
    run_a_while(f);
    bus_stats_t stats;
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.applied, 0);
    assert_true(stats.forged > 0);
    assert_int_equal(meta(&f->receiver, "last"), 0);
    side_stop(&f->sender);
    auth_destroy(&sender_auth);
    zmq_ctx_term(f->context); /* its ZAP endpoint goes with it */
    f->context = zmq_ctx_new();

    assert_int_equal(auth_new(f->context, keys, "sender", &sender_auth), 0);
    f->options.auth = sender_auth;
    side_open(f, &f->sender, "sender", NULL);
    assert_int_equal(bus_link_open(f->sender.bus, "receiver", f->endpoint, &f->sender.link), 0);
    run_until_delivered(f, 100);
    bus_stats(f->receiver.bus, &stats);
    assert_int_equal(stats.applied, 100);
    assert_int_equal(meta(&f->receiver, "dups"), 0);

    side_stop(&f->sender);
    auth_destroy(&sender_auth);
    zmq_ctx_term(f->context);
    f->context = receiver_context;
    side_stop(&f->receiver);
    auth_destroy(&receiver_auth);
    f->options.auth = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_streams_acks_and_cleans_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_sender_key_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_restart_resends_and_receiver_dedupes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_receiver_restart_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejected_message_is_kept_and_stream_goes_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_is_resent_not_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_map_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_frames_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_sender_is_refused_until_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reset_receiver_diverges_until_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_renamed_sender_is_refused_until_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_accept_given_early_waits_for_the_divergence, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peer_table_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_is_bounded_in_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letters_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_link_gets_a_new_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_holds_through_streams_and_restarts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_a_hole_in_the_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_a_stray_outbox_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_last_seq_above_what_was_received, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_a_wrong_acked_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_another_incarnation_in_the_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_dead_letters_miscounted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_runs_the_checks_after_each_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loop_aborts_on_a_failed_check, setup, teardown),
        cmocka_unit_test(test_touched_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

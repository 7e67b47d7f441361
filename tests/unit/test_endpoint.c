/* Unit tests for common/endpoint: a connection that floods malformed
 * requests is cut and its key refused for a while, on real sockets, while
 * the other connections (of the same key too) are served; fewer strikes
 * than the bound cut nothing; a strike counts once per request. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "auth.h"
#include "endpoint.h"
#include "harness.h"

#define CAPACITY 64
#define DEADLINE_MS 10000

typedef struct fixture {
    char dir[64];
    void *zmq;
    auth_t *auth;
    endpoint_t *endpoint;
    int monitors;
    void *sockets[16]; /* the test's, closed by the teardown (a failed assert too) */
    size_t socket_count;
} fixture_t;

static void *keep(fixture_t *f, void *socket)
{
    assert_true(f->socket_count < sizeof(f->sockets) / sizeof(*f->sockets));
    f->sockets[f->socket_count++] = socket;
    return socket;
}

static void key_new(const char *dir, const char *name, auth_kind_t kind)
{
    auth_actor_t actor = {.kind = kind};
    snprintf(actor.name, sizeof(actor.name), "%s", name);
    if (kind == AUTH_KIND_WORKER)
        snprintf(actor.worker, sizeof(actor.worker), "%s", name);
    else
        actor.roles = AUTH_ROLE_UNIT;
    assert_int_equal(auth_key_new(dir, &actor), 0);
}

/* secure: a CURVE endpoint with its ZAP handler, else plain. */
static fixture_t *fixture_new(bool secure)
{
    fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-endpoint-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->zmq = zmq_ctx_new();
    if (secure) {
        key_new(f->dir, "router-x", AUTH_KIND_WORKER);
        key_new(f->dir, "units", AUTH_KIND_UNIT_GATEWAY);
        key_new(f->dir, "units-2", AUTH_KIND_UNIT_GATEWAY);
        assert_int_equal(auth_new(f->zmq, f->dir, "router-x", &f->auth), 0);
    }
    assert_int_equal(
        endpoint_new(f->zmq, "tcp://127.0.0.1:*", 4096, CAPACITY, f->auth, &f->endpoint), 0);
    return f;
}

static int setup_secure(void **state)
{
    *state = fixture_new(true);
    return 0;
}

static int setup_plain(void **state)
{
    *state = fixture_new(false);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < f->socket_count; i++)
        zmq_close(f->sockets[i]);
    endpoint_destroy(&f->endpoint);
    auth_destroy(&f->auth);
    zmq_ctx_term(f->zmq);
    assert_int_equal(harness_rmtree(f->dir), 0);
    free(f);
    return 0;
}

/* A client of the endpoint; key: its key's name, NULL on a plain one. */
static void *client_new(fixture_t *f, const char *key)
{
    void *socket = keep(f, zmq_socket(f->zmq, ZMQ_DEALER));
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
    if (key) {
        auth_client_t keys;
        assert_int_equal(auth_client_load(f->dir, key, "router-x", &keys), 0);
        assert_int_equal(auth_client_apply(socket, &keys), 0);
    }
    assert_int_equal(zmq_connect(socket, endpoint_url(f->endpoint)), 0);
    return socket;
}

/* A PAIR that receives the socket's events of the mask. */
static void *monitor_new(fixture_t *f, void *socket, int events)
{
    char url[64];
    snprintf(url, sizeof(url), "inproc://test-endpoint-monitor-%d", f->monitors++);
    assert_int_equal(zmq_socket_monitor(socket, url, events), 0);
    void *monitor = keep(f, zmq_socket(f->zmq, ZMQ_PAIR));
    int zero = 0;
    zmq_setsockopt(monitor, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_connect(monitor, url), 0);
    return monitor;
}

/* Waits for one event of the monitor's mask: its number, or 0 at the
 * deadline. */
static int monitor_wait(void *monitor)
{
    zmq_pollitem_t item = {.socket = monitor, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, DEADLINE_MS) <= 0)
        return 0;
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    zmq_msg_recv(&frame, monitor, 0);
    uint16_t event = 0;
    if (zmq_msg_size(&frame) >= 2)
        memcpy(&event, zmq_msg_data(&frame), sizeof(event));
    zmq_msg_recv(&frame, monitor, 0); /* the address */
    zmq_msg_close(&frame);
    return event;
}

static void send_request(void *client, const char *body)
{
    assert_int_equal(zmq_send(client, "", 0, ZMQ_SNDMORE), 0);
    assert_int_equal(zmq_send(client, body, strlen(body), 0), (int)strlen(body));
}

/* What a worker would do, until `requests` more requests were served or a
 * cut was made: drains (each drain reads at most CAPACITY messages),
 * strikes twice every request whose body is "garbage" (the second must
 * not count), answers each "ok", flushes. The cuts made land in cut (at
 * most one). */
static size_t serve(fixture_t *f, size_t requests, endpoint_cut_t *cut, size_t *cuts)
{
    size_t served = 0;
    *cuts = 0;
    int64_t deadline = harness_now_ms() + DEADLINE_MS;
    while (served < requests && *cuts == 0 && harness_now_ms() < deadline) {
        zmq_pollitem_t item = {.socket = endpoint_socket(f->endpoint), .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, 50);
        endpoint_stats_t before, after;
        endpoint_stats(f->endpoint, &before);
        size_t count = endpoint_drain(f->endpoint);
        endpoint_stats(f->endpoint, &after);
        assert_true(count + (after.bad_frames - before.bad_frames) +
                        (after.dropped - before.dropped) <=
                    CAPACITY);
        for (size_t i = 0; i < count; i++) {
            endpoint_request_t request;
            endpoint_request(f->endpoint, i, &request);
            if (request.body_len == 7 && memcmp(request.body, "garbage", 7) == 0) {
                endpoint_strike(f->endpoint, i);
                endpoint_strike(f->endpoint, i);
            }
            zmq_send(endpoint_socket(f->endpoint), request.peer, request.peer_len,
                     ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(endpoint_socket(f->endpoint), "", 0, ZMQ_SNDMORE);
            zmq_send(endpoint_socket(f->endpoint), "ok", 2, 0);
        }
        endpoint_flush(f->endpoint);
        served += count;
        *cuts = endpoint_take_cuts(f->endpoint, cut, 1);
    }
    return served;
}

/* The client's next reply body is "ok". */
static void assert_answered(void *client)
{
    zmq_pollitem_t item = {.socket = client, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&item, 1, DEADLINE_MS), 1);
    char frame[16];
    assert_int_equal(zmq_recv(client, frame, sizeof(frame), 0), 0);
    assert_int_equal(zmq_recv(client, frame, sizeof(frame), 0), 2);
    assert_memory_equal(frame, "ok", 2);
}

static void test_a_flood_of_bad_frames_is_cut_and_its_key_refused(void **state)
{
    fixture_t *f = *state;
    /* An honest connection of the flooder's own key, and one of another. */
    void *honest = client_new(f, "units");
    void *other = client_new(f, "units-2");
    void *flooder = client_new(f, "units");
    void *flooder_events = monitor_new(f, flooder, ZMQ_EVENT_DISCONNECTED);
    send_request(honest, "hello");
    send_request(other, "hello");
    endpoint_cut_t cut;
    size_t cuts;
    assert_int_equal(serve(f, 2, &cut, &cuts), 2);
    assert_answered(honest);
    assert_answered(other);

    /* Frames without the empty delimiter, far more than the bound. */
    for (int i = 0; i < 4 * ENDPOINT_STRIKES; i++)
        assert_int_equal(zmq_send(flooder, "x", 1, 0), 1);
    serve(f, SIZE_MAX, &cut, &cuts);
    assert_int_equal(cuts, 1);
    assert_string_equal(cut.actor, "units");
    assert_int_equal(strncmp(cut.address, "127.0.0.1:", 10), 0);
    assert_int_equal(cut.suspended_ms, AUTH_SUSPEND_MIN_MS);
    assert_int_equal(monitor_wait(flooder_events), ZMQ_EVENT_DISCONNECTED);
    endpoint_stats_t stats;
    endpoint_stats(f->endpoint, &stats);
    assert_int_equal(stats.cuts, 1);
    assert_true(stats.bad_frames >= ENDPOINT_STRIKES);
    assert_int_equal(stats.malformed, stats.bad_frames);

    /* The key's other connection and the other key are served on. */
    send_request(honest, "again");
    send_request(other, "again");
    assert_int_equal(serve(f, 2, &cut, &cuts), 2);
    assert_int_equal(cuts, 0);
    assert_answered(honest);
    assert_answered(other);

    /* A new connection of the key gets no handshake; another key's does. */
    void *again = client_new(f, "units");
    void *again_events =
        monitor_new(f, again, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    void *newcomer = client_new(f, "units-2");
    void *newcomer_events =
        monitor_new(f, newcomer, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(monitor_wait(again_events), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    assert_int_equal(monitor_wait(newcomer_events), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_true(auth_suspended_refusals(f->auth) >= 1);
    auth_refusal_t refusals[4];
    assert_int_equal(auth_take_refusals(f->auth, refusals, 4, NULL), 0); /* told once, above */
}

static void test_undecodable_requests_cut_only_past_the_bound(void **state)
{
    fixture_t *f = *state;
    void *client = client_new(f, NULL);
    void *events = monitor_new(f, client, ZMQ_EVENT_DISCONNECTED);
    endpoint_cut_t cut;
    size_t cuts;
    for (int i = 0; i < ENDPOINT_STRIKES - 1; i++)
        send_request(client, "garbage");
    assert_int_equal(serve(f, ENDPOINT_STRIKES - 1, &cut, &cuts), ENDPOINT_STRIKES - 1);
    assert_int_equal(cuts, 0);
    for (int i = 0; i < ENDPOINT_STRIKES - 1; i++)
        assert_answered(client);
    endpoint_stats_t stats;
    endpoint_stats(f->endpoint, &stats);
    assert_int_equal(stats.malformed, ENDPOINT_STRIKES - 1); /* struck twice, counted once */
    assert_int_equal(stats.cuts, 0);

    /* Past the bound within the window (whatever of it is left: as many
     * again make the bound in any window). */
    for (int i = 0; i < ENDPOINT_STRIKES; i++)
        send_request(client, "garbage");
    serve(f, SIZE_MAX, &cut, &cuts);
    assert_int_equal(cuts, 1);
    assert_string_equal(cut.actor, ""); /* plain: no key, nothing suspended */
    assert_int_equal(cut.suspended_ms, 0);
    assert_int_equal(monitor_wait(events), ZMQ_EVENT_DISCONNECTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_flood_of_bad_frames_is_cut_and_its_key_refused,
                                        setup_secure, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_requests_cut_only_past_the_bound,
                                        setup_plain, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

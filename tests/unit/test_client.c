/* Unit tests for common/client and common/unit_session against a fake
 * server in the test: a ROUTER socket on tcp://127.0.0.1:*.
 *
 * client_t calls block, so the fake intake runs a script in a thread (one
 * step per request) and records what it saw; the test checks the replies
 * and, after joining, the server's record. The unit session needs no
 * thread: the server learns the session's routing id from its first ack
 * and queues deliveries before the session acts. Nothing sleeps: waits are
 * zmq_poll with a bound, or the client's own timeouts.
 */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "client.h"
#include "codec.h"
#include "dispatch.pb-c.h"
#include "unit_session.h"

/* How long the fake server waits for a request before it gives up. */
#define SERVER_WAIT_MS 5000
/* Short client timeouts: the tests that time out wait this long. */
#define SHORT_TIMEOUT_MS 200

typedef struct fixture {
    void *ctx;
    void *router;
    char url[256];
} fixture_t;

static int setup(void **state)
{
    fixture_t *fixture = calloc(1, sizeof(*fixture));
    assert_non_null(fixture);
    fixture->ctx = zmq_ctx_new();
    assert_non_null(fixture->ctx);
    fixture->router = zmq_socket(fixture->ctx, ZMQ_ROUTER);
    assert_non_null(fixture->router);
    int linger = 0;
    assert_int_equal(zmq_setsockopt(fixture->router, ZMQ_LINGER, &linger, sizeof(linger)), 0);
    assert_int_equal(zmq_bind(fixture->router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof(fixture->url);
    assert_int_equal(zmq_getsockopt(fixture->router, ZMQ_LAST_ENDPOINT, fixture->url, &len), 0);
    *state = fixture;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fixture = *state;
    if (fixture->router)
        zmq_close(fixture->router);
    zmq_ctx_term(fixture->ctx);
    free(fixture);
    return 0;
}

/* --- server side helpers --- */

typedef struct received {
    char peer[256];
    size_t peer_len;
    size_t frames; /* frames after the routing id */
    size_t delimiter_len;
    uint8_t body[65536];
    size_t body_len;
} received_t;

/* Waits for one message on the ROUTER: 0, or -ETIMEDOUT. */
static int server_receive(void *router, received_t *in)
{
    zmq_pollitem_t item = {.socket = router, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, SERVER_WAIT_MS) <= 0)
        return -ETIMEDOUT;
    memset(in, 0, sizeof(*in));
    int n = zmq_recv(router, in->peer, sizeof(in->peer), 0);
    if (n < 0)
        return -errno;
    in->peer_len = (size_t)n;
    int more = 0;
    size_t size = sizeof(more);
    zmq_getsockopt(router, ZMQ_RCVMORE, &more, &size);
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, router, 0);
        if (in->frames == 0)
            in->delimiter_len = zmq_msg_size(&part);
        if (in->frames == 1 && zmq_msg_size(&part) <= sizeof(in->body)) {
            memcpy(in->body, zmq_msg_data(&part), zmq_msg_size(&part));
            in->body_len = zmq_msg_size(&part);
        }
        in->frames++;
        zmq_msg_close(&part);
        zmq_getsockopt(router, ZMQ_RCVMORE, &more, &size);
    }
    return 0;
}

static void server_send_raw(void *router, const void *peer, size_t peer_len, const void *body,
                            size_t len, bool with_delimiter)
{
    zmq_send(router, peer, peer_len, ZMQ_SNDMORE);
    if (with_delimiter)
        zmq_send(router, "", 0, ZMQ_SNDMORE);
    zmq_send(router, body, len, 0);
}

static void server_send(void *router, const void *peer, size_t peer_len,
                        const ProtobufCMessage *msg)
{
    void *body;
    size_t len;
    if (codec_encode(msg, &body, &len) < 0)
        return;
    server_send_raw(router, peer, peer_len, body, len, true);
    free(body);
}

/* Reply { tag, ticket: { ticket: { id } } } */
static void server_send_ticket(void *router, const void *peer, size_t peer_len, uint64_t tag,
                               const char *ticket_id)
{
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.id = (char *)ticket_id;
    Dispatch__TicketView view = DISPATCH__TICKET_VIEW__INIT;
    view.ticket = &ticket;
    Dispatch__Reply reply = DISPATCH__REPLY__INIT;
    reply.tag = tag;
    reply.body_case = DISPATCH__REPLY__BODY_TICKET;
    reply.ticket = &view;
    server_send(router, peer, peer_len, &reply.base);
}

/* --- the scripted fake intake (a thread) --- */

typedef enum step {
    STEP_ECHO,                /* reply with the requested ticket id and the request's tag */
    STEP_IGNORE,              /* no reply: the client times out */
    STEP_LATE_THEN_ECHO,      /* answer the previous request now (tag 0), then echo */
    STEP_WRONG_TAG_THEN_ECHO, /* a bad frame, a reply with another tag, then echo */
    STEP_GARBAGE,             /* a body that is not a Reply */
} step_t;

#define MAX_STEPS 8

typedef struct script {
    void *router;
    step_t steps[MAX_STEPS];
    size_t step_count;
    /* What the server saw, per step. */
    char peers[MAX_STEPS][256];
    size_t peer_lens[MAX_STEPS];
    uint64_t tags[MAX_STEPS];
    char ticket_ids[MAX_STEPS][65];
    size_t done;
    char failure[256]; /* empty when every step went as planned */
} script_t;

static void *script_run(void *arg)
{
    script_t *script = arg;
    received_t *in = malloc(sizeof(*in));
    for (size_t i = 0; in && i < script->step_count; i++) {
        if (server_receive(script->router, in) < 0) {
            snprintf(script->failure, sizeof(script->failure), "step %zu: no request", i);
            break;
        }
        ProtobufCMessage *msg = NULL;
        char err[256];
        if (in->frames != 2 || in->delimiter_len != 0 ||
            codec_decode(&dispatch__request__descriptor, in->body, in->body_len, 65536, &msg, err,
                         sizeof(err)) < 0) {
            snprintf(script->failure, sizeof(script->failure), "step %zu: bad request", i);
            break;
        }
        Dispatch__Request *request = (Dispatch__Request *)msg;
        memcpy(script->peers[i], in->peer, in->peer_len);
        script->peer_lens[i] = in->peer_len;
        script->tags[i] = request->tag;
        if (request->body_case == DISPATCH__REQUEST__BODY_GET_TICKET)
            snprintf(script->ticket_ids[i], sizeof(script->ticket_ids[i]), "%s",
                     request->get_ticket->ticket_id);
        switch (script->steps[i]) {
        case STEP_ECHO:
            server_send_ticket(script->router, in->peer, in->peer_len, request->tag,
                               script->ticket_ids[i]);
            break;
        case STEP_IGNORE:
            break;
        case STEP_LATE_THEN_ECHO:
            /* Tag 0 is accepted by the client: only the new socket keeps
             * this late answer away from it. */
            if (i > 0)
                server_send_ticket(script->router, script->peers[i - 1], script->peer_lens[i - 1],
                                   0, "late");
            server_send_ticket(script->router, in->peer, in->peer_len, request->tag,
                               script->ticket_ids[i]);
            break;
        case STEP_WRONG_TAG_THEN_ECHO:
            server_send_raw(script->router, in->peer, in->peer_len, "no delimiter", 12, false);
            server_send_ticket(script->router, in->peer, in->peer_len, request->tag + 1,
                               "wrong-tag");
            server_send_ticket(script->router, in->peer, in->peer_len, request->tag,
                               script->ticket_ids[i]);
            break;
        case STEP_GARBAGE:
            server_send_raw(script->router, in->peer, in->peer_len, "\xff\xff\xff", 3, true);
            break;
        }
        protobuf_c_message_free_unpacked(msg, NULL);
        script->done = i + 1;
    }
    free(in);
    return NULL;
}

static void get_ticket_request(Dispatch__Request *request, Dispatch__GetTicket *get,
                               const char *ticket_id)
{
    dispatch__request__init(request);
    dispatch__get_ticket__init(get);
    get->ticket_id = (char *)ticket_id;
    request->actor = "op-1";
    request->body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request->get_ticket = get;
}

/* Calls get_ticket(ticket_id); returns the client's code and, on success,
 * checks that the reply is the ticket `expect_id`. */
static int call_get(client_t *client, const char *ticket_id, const char *expect_id)
{
    Dispatch__Request request;
    Dispatch__GetTicket get;
    get_ticket_request(&request, &get, ticket_id);
    ProtobufCMessage *msg = (ProtobufCMessage *)&request; /* replaced below */
    int rc = client_call(client, &request.base, &dispatch__reply__descriptor, &msg);
    if (rc < 0) {
        assert_null(msg);
        return rc;
    }
    assert_non_null(expect_id);
    Dispatch__Reply *reply = (Dispatch__Reply *)msg;
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_TICKET);
    assert_string_equal(reply->ticket->ticket->id, expect_id);
    assert_int_equal(reply->tag, client_last_tag(client));
    /* The caller's message is left as it was. */
    assert_int_equal(request.tag, 0);
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
}

static void run_script(fixture_t *fixture, script_t *script, pthread_t *thread)
{
    script->router = fixture->router;
    assert_int_equal(pthread_create(thread, NULL, script_run, script), 0);
}

static void finish_script(script_t *script, pthread_t thread)
{
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_string_equal(script->failure, "");
    assert_int_equal(script->done, script->step_count);
}

static void test_call_and_reply(void **state)
{
    fixture_t *fixture = *state;
    script_t script = {.steps = {STEP_ECHO, STEP_ECHO}, .step_count = 2};
    pthread_t thread;
    run_script(fixture, &script, &thread);

    client_t *client;
    assert_int_equal(client_new(fixture->ctx, fixture->url, SERVER_WAIT_MS, NULL, &client), 0);
    assert_int_equal(call_get(client, "CY-20261125-000001", "CY-20261125-000001"), 0);
    uint64_t first_tag = client_last_tag(client);
    assert_int_equal(call_get(client, "CY-20261125-000002", "CY-20261125-000002"), 0);
    client_destroy(&client);
    assert_null(client);
    finish_script(&script, thread);

    /* A fresh nonzero tag per call, sent in the request. */
    assert_int_not_equal(script.tags[0], 0);
    assert_int_not_equal(script.tags[1], 0);
    assert_int_not_equal(script.tags[0], script.tags[1]);
    assert_int_equal(script.tags[0], first_tag);
    /* Same socket for both calls. */
    assert_int_equal(script.peer_lens[0], script.peer_lens[1]);
    assert_memory_equal(script.peers[0], script.peers[1], script.peer_lens[0]);
}

static void test_timeout_then_own_reply(void **state)
{
    fixture_t *fixture = *state;
    script_t script = {.steps = {STEP_IGNORE, STEP_LATE_THEN_ECHO}, .step_count = 2};
    pthread_t thread;
    run_script(fixture, &script, &thread);

    client_t *client;
    assert_int_equal(client_new(fixture->ctx, fixture->url, SHORT_TIMEOUT_MS, NULL, &client), 0);
    assert_int_equal(call_get(client, "first", NULL), -ETIMEDOUT);
    assert_int_equal(call_get(client, "second", "second"), 0);
    client_destroy(&client);
    finish_script(&script, thread);

    /* The second request came from a new socket. */
    assert_false(script.peer_lens[0] == script.peer_lens[1] &&
                 memcmp(script.peers[0], script.peers[1], script.peer_lens[0]) == 0);
}

static void test_tag_mismatch_skipped(void **state)
{
    fixture_t *fixture = *state;
    script_t script = {.steps = {STEP_WRONG_TAG_THEN_ECHO, STEP_ECHO}, .step_count = 2};
    pthread_t thread;
    run_script(fixture, &script, &thread);

    client_t *client;
    assert_int_equal(client_new(fixture->ctx, fixture->url, SERVER_WAIT_MS, NULL, &client), 0);
    assert_int_equal(call_get(client, "right", "right"), 0);
    /* Nothing of the first exchange is left over for the next call. */
    assert_int_equal(call_get(client, "next", "next"), 0);
    client_destroy(&client);
    finish_script(&script, thread);
}

static void test_undecodable_reply(void **state)
{
    fixture_t *fixture = *state;
    script_t script = {.steps = {STEP_GARBAGE, STEP_ECHO}, .step_count = 2};
    pthread_t thread;
    run_script(fixture, &script, &thread);

    client_t *client;
    assert_int_equal(client_new(fixture->ctx, fixture->url, SERVER_WAIT_MS, NULL, &client), 0);
    assert_int_equal(call_get(client, "garbage", NULL), -EBADMSG);
    assert_int_equal(call_get(client, "after", "after"), 0);
    client_destroy(&client);
    finish_script(&script, thread);
}

static void test_bad_arguments(void **state)
{
    fixture_t *fixture = *state;
    client_t *client = NULL;
    assert_int_equal(client_new(fixture->ctx, fixture->url, 0, NULL, &client), -EINVAL);
    assert_int_equal(client_new(fixture->ctx, NULL, 100, NULL, &client), -EINVAL);
    assert_true(client_new(fixture->ctx, "nonsense", 100, NULL, &client) < 0);
    assert_null(client);
    unit_session_t *session = NULL;
    assert_int_equal(unit_session_new(fixture->ctx, fixture->url, "", NULL, NULL, &session),
                     -EINVAL);
    char long_id[80];
    memset(long_id, 'u', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(unit_session_new(fixture->ctx, fixture->url, long_id, NULL, NULL, &session),
                     -EINVAL);
    assert_null(session);
}

/* --- unit session --- */

/* Receives one UnitAction on the ROUTER; checks its framing and routing
 * id. The caller frees the result. */
static Dispatch__UnitAction *server_receive_action(void *router, const char *routing_id)
{
    received_t *in = malloc(sizeof(*in));
    assert_non_null(in);
    assert_int_equal(server_receive(router, in), 0);
    assert_int_equal(in->peer_len, strlen(routing_id));
    assert_memory_equal(in->peer, routing_id, in->peer_len);
    assert_int_equal(in->frames, 2);
    assert_int_equal(in->delimiter_len, 0);
    ProtobufCMessage *msg;
    char err[256];
    assert_int_equal(codec_decode(&dispatch__unit_action__descriptor, in->body, in->body_len, 65536,
                                  &msg, err, sizeof(err)),
                     0);
    free(in);
    return (Dispatch__UnitAction *)msg;
}

static void expect_ack(void *router, const char *routing_id, const char *unit_id, uint64_t seq)
{
    Dispatch__UnitAction *action = server_receive_action(router, routing_id);
    assert_string_equal(action->unit_id, unit_id);
    assert_string_equal(action->ticket_id, "");
    assert_string_equal(action->action_id, "");
    assert_int_equal(action->body_case, DISPATCH__UNIT_ACTION__BODY_ACK);
    assert_non_null(action->ack);
    assert_int_equal(action->ack->seq, seq);
    protobuf_c_message_free_unpacked(&action->base, NULL);
}

static void push_delivery(void *router, const char *routing_id, uint64_t seq, const char *ticket_id,
                          const char *result_of)
{
    Dispatch__UnitDelivery delivery = DISPATCH__UNIT_DELIVERY__INIT;
    Dispatch__Withdrawn withdrawn = DISPATCH__WITHDRAWN__INIT;
    Dispatch__ActionResult result = DISPATCH__ACTION_RESULT__INIT;
    delivery.seq = seq;
    delivery.unit_id = "u-water";
    delivery.ticket_id = (char *)ticket_id;
    if (result_of) {
        result.action_id = (char *)result_of;
        result.state = DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED;
        delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT;
        delivery.action_result = &result;
    } else {
        withdrawn.reason = "reassigned";
        delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_WITHDRAWN;
        delivery.withdrawn = &withdrawn;
    }
    server_send(router, routing_id, strlen(routing_id), &delivery.base);
}

static void expect_delivery(unit_session_t *session, uint64_t seq, const char *ticket_id)
{
    Dispatch__UnitDelivery *delivery;
    assert_int_equal(unit_session_recv(session, SERVER_WAIT_MS, &delivery), 0);
    assert_int_equal(delivery->seq, seq);
    assert_string_equal(delivery->ticket_id, ticket_id);
    protobuf_c_message_free_unpacked(&delivery->base, NULL);
}

static void test_unit_session_queues_while_acting(void **state)
{
    fixture_t *fixture = *state;
    unit_session_t *session, *again;
    assert_int_equal(
        unit_session_new(fixture->ctx, fixture->url, "u-water", "cli-42", NULL, &session), 0);
    /* "<unit>/<session>-<64 random bits>": no other session has it. */
    const char *routing_id = unit_session_routing_id(session);
    assert_int_equal(strlen(routing_id), strlen("u-water/cli-42-") + 16);
    assert_int_equal(strncmp(routing_id, "u-water/cli-42-", strlen("u-water/cli-42-")), 0);
    assert_int_equal(
        unit_session_new(fixture->ctx, fixture->url, "u-water", "cli-42", NULL, &again), 0);
    assert_string_not_equal(unit_session_routing_id(again), routing_id);
    unit_session_destroy(&again);

    /* The first ack tells the server who is connected. */
    assert_int_equal(unit_session_ack(session, 0), 0);
    expect_ack(fixture->router, routing_id, "u-water", 0);

    /* Two deliveries, a stale result, and a frame of the wrong shape come
     * before the result the session waits for. */
    push_delivery(fixture->router, routing_id, 1, "CY-1", NULL);
    push_delivery(fixture->router, routing_id, 0, "CY-0", "act-old");
    server_send_raw(fixture->router, routing_id, strlen(routing_id), "x", 1, false);
    push_delivery(fixture->router, routing_id, 2, "CY-2", NULL);
    push_delivery(fixture->router, routing_id, 0, "CY-1", "act-1");

    Dispatch__SignFor sign_for = DISPATCH__SIGN_FOR__INIT;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.ticket_id = "CY-1";
    action.action_id = "act-1";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &sign_for;
    Dispatch__ActionResult *result;
    assert_int_equal(unit_session_act(session, &action, SERVER_WAIT_MS, &result), 0);
    assert_string_equal(result->action_id, "act-1");
    assert_int_equal(result->state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_null(result->error);
    protobuf_c_message_free_unpacked(&result->base, NULL);
    /* act filled in the unit id. */
    assert_string_equal(action.unit_id, "u-water");
    assert_int_equal(unit_session_queued(session), 3);
    assert_int_equal(unit_session_skipped(session), 1);

    /* The action went out as sent. */
    Dispatch__UnitAction *sent = server_receive_action(fixture->router, routing_id);
    assert_string_equal(sent->unit_id, "u-water");
    assert_string_equal(sent->ticket_id, "CY-1");
    assert_string_equal(sent->action_id, "act-1");
    assert_int_equal(sent->body_case, DISPATCH__UNIT_ACTION__BODY_SIGN_FOR);
    protobuf_c_message_free_unpacked(&sent->base, NULL);

    /* What came meanwhile is returned in arrival order, then the socket. */
    expect_delivery(session, 1, "CY-1");
    expect_delivery(session, 0, "CY-0");
    expect_delivery(session, 2, "CY-2");
    assert_int_equal(unit_session_queued(session), 0);
    push_delivery(fixture->router, routing_id, 3, "CY-3", NULL);
    expect_delivery(session, 3, "CY-3");

    assert_int_equal(unit_session_ack(session, 3), 0);
    expect_ack(fixture->router, routing_id, "u-water", 3);

    Dispatch__UnitDelivery *none = (Dispatch__UnitDelivery *)&action;
    assert_int_equal(unit_session_recv(session, SHORT_TIMEOUT_MS, &none), -ETIMEDOUT);
    assert_null(none);
    unit_session_destroy(&session);
    assert_null(session);
}

static void test_unit_session_act_timeout(void **state)
{
    fixture_t *fixture = *state;
    unit_session_t *session;
    /* The main session: routing id "<unit>/<64 random bits>". */
    assert_int_equal(unit_session_new(fixture->ctx, fixture->url, "u-gas", NULL, NULL, &session),
                     0);
    const char *routing_id = unit_session_routing_id(session);
    assert_int_equal(strlen(routing_id), strlen("u-gas/") + 16);
    assert_int_equal(strncmp(routing_id, "u-gas/", strlen("u-gas/")), 0);
    assert_int_equal(unit_session_ack(session, 0), 0);
    expect_ack(fixture->router, routing_id, "u-gas", 0);
    push_delivery(fixture->router, routing_id, 7, "CY-7", NULL);

    Dispatch__Progress progress = DISPATCH__PROGRESS__INIT;
    progress.text = "on site";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = "u-gas";
    action.ticket_id = "CY-7";
    action.action_id = "act-7";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_PROGRESS;
    action.progress = &progress;
    Dispatch__ActionResult *result;
    assert_int_equal(unit_session_act(session, &action, SHORT_TIMEOUT_MS, &result), -ETIMEDOUT);
    assert_null(result);
    /* The delivery that came meanwhile is kept. */
    assert_int_equal(unit_session_queued(session), 1);
    expect_delivery(session, 7, "CY-7");

    /* An action without an action_id is refused before sending. */
    action.action_id = "";
    assert_int_equal(unit_session_act(session, &action, SHORT_TIMEOUT_MS, &result), -EINVAL);

    /* Deliveries still queued at destroy are freed (the sanitizer run
     * checks for leaks). */
    Dispatch__UnitAction *sent = server_receive_action(fixture->router, routing_id);
    assert_string_equal(sent->action_id, "act-7");
    protobuf_c_message_free_unpacked(&sent->base, NULL);
    push_delivery(fixture->router, routing_id, 8, "CY-8", NULL);
    action.action_id = "act-8";
    assert_int_equal(unit_session_act(session, &action, SHORT_TIMEOUT_MS, &result), -ETIMEDOUT);
    assert_int_equal(unit_session_queued(session), 1);
    unit_session_destroy(&session);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_call_and_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_then_own_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_mismatch_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unit_session_queues_while_acting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unit_session_act_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

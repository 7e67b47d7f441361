/* intake's handlers with a real LMDB store and real bus links: requests and
 * router events go in as bytes, replies come back, and what intake sent is
 * read from the links' outbox databases ("outbox.<peer>"). The peers never
 * run: nothing leaves the outboxes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "auth.h"
#include "bus.h"
#include "codec.h"
#include "config.h"
#include "event.h"
#include "harness.h"
#include "intake.h"
#include "record.h"
#include "refusal.h"
#include "store.h"

/* 2026-11-25 09:00 in Asia/Shanghai. */
#define NOW 1795568400000LL
#define MINUTE 60000LL
#define DAY (1440 * MINUTE)
#define MAX_EVENTS 64

static const char topology[] = "[city]\n"
                               "name = testcity\n"
                               "timezone = Asia/Shanghai\n"
                               "\n"
                               "[district.north]\n"
                               "name = North\n"
                               "\n"
                               "[district.south]\n"
                               "name = South\n"
                               "\n"
                               "[worker.intake-a]\n"
                               "kind = intake\n"
                               "id_prefix = TA\n"
                               "state_dir = state/intake-a\n"
                               "bus = inproc://intake-a\n"
                               "request = inproc://intake-a-request\n"
                               "links = router-north, router-south, audit\n"
                               "\n"
                               "[worker.router-north]\n"
                               "kind = router\n"
                               "district = north\n"
                               "state_dir = state/router-north\n"
                               "bus = inproc://router-north\n"
                               "\n"
                               "[worker.router-south]\n"
                               "kind = router\n"
                               "district = south\n"
                               "state_dir = state/router-south\n"
                               "bus = inproc://router-south\n"
                               "\n"
                               "[worker.audit]\n"
                               "kind = audit\n"
                               "state_dir = state/audit\n"
                               "bus = inproc://audit\n";

typedef struct fixture {
    char dir[512];
    char state[600];
    void *zmq;
    config_t *config;
    store_t *store;
    bus_t *bus;
    intake_t *intake;
    intake_options_t options;
} fixture_t;

static void fixture_open(fixture_t *f)
{
    assert_int_equal(store_open(f->state, NULL, &f->store), 0);
    assert_int_equal(bus_new(f->zmq, f->store, "intake-a", NULL, &f->bus), 0);
    assert_int_equal(intake_new(f->store, f->bus, f->config, "intake-a", &f->options, &f->intake),
                     0);
    const char *peers[] = {"router-north", "router-south", "audit"};
    for (size_t i = 0; i < 3; i++) {
        const config_worker_t *peer = config_worker_find(f->config, peers[i]);
        bus_link_t *link;
        assert_int_equal(bus_link_open(f->bus, peer->name, peer->bus, &link), 0);
    }
}

static void fixture_close(fixture_t *f)
{
    intake_destroy(&f->intake);
    assert_null(f->intake);
    bus_destroy(&f->bus);
    store_destroy(&f->store);
}

static int setup_with(void **state, int64_t window_minutes)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(harness_tmpdir("intake", f->dir, sizeof(f->dir)), 0);
    snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
    char err[256];
    assert_int_equal(config_parse_string(topology, &f->config, err, sizeof(err)), 0);
    f->zmq = zmq_ctx_new();
    intake_options_init(&f->options);
    f->options.duplicate_window_minutes = window_minutes;
    fixture_open(f);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, INTAKE_DEFAULT_DUPLICATE_WINDOW_MINUTES);
}

static int setup_no_duplicates(void **state)
{
    return setup_with(state, 0);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    fixture_close(f);
    config_destroy(&f->config);
    zmq_ctx_term(f->zmq);
    harness_rmtree(f->dir);
    free(f);
    return 0;
}

/* A restart: everything in memory is gone, the store stays. */
static void fixture_restart(fixture_t *f)
{
    fixture_close(f);
    fixture_open(f);
}

/* ---- driving the handlers like the loop does --------------------------- */

typedef struct call {
    fixture_t *f;
    const void *body;
    size_t len;
    int64_t now;
    bool abort_after;          /* fail the batch after the handler ran */
    const auth_actor_t *actor; /* whose key sent it; NULL = a plain endpoint */
    Dispatch__Reply *reply;
    int handler_rc;
} call_t;

/* The intake's reply is its own until its next request: tests keep
 * copies. */
static Dispatch__Reply *reply_copy(const Dispatch__Reply *reply)
{
    Dispatch__Reply *copy = (Dispatch__Reply *)record_clone(&reply->base);
    assert_non_null(copy);
    return copy;
}

static void reply_free(Dispatch__Reply *reply)
{
    if (reply)
        protobuf_c_message_free_unpacked(&reply->base, NULL);
}

static int call_request_fn(MDB_txn *txn, void *ctx)
{
    call_t *call = ctx;
    int rc = bus_batch_apply(call->f->bus, txn);
    reply_free(call->reply);
    call->reply = NULL;
    const Dispatch__Reply *reply = NULL;
    if (rc == 0)
        rc = call->handler_rc = intake_handle_request(call->f->intake, txn, call->actor, call->body,
                                                      call->len, call->now, &reply);
    if (rc == REFUSED) /* not a Request at all: answered, nothing to abort */
        rc = 0;
    if (reply)
        call->reply = reply_copy(reply);
    if (rc == 0 && call->abort_after)
        rc = -EIO;
    return rc;
}

/* The reply to one request of len bytes, handled in its own batch. */
static Dispatch__Reply *send_bytes_at(fixture_t *f, const void *body, size_t len, int64_t now)
{
    call_t call = {.f = f, .body = body, .len = len, .now = now};
    int rc = store_write(f->store, call_request_fn, &call);
    bus_batch_done(f->bus, rc);
    assert_int_equal(rc, 0);
    assert_non_null(call.reply);
    return call.reply;
}

/* The reply to request sent with actor's key, in its own batch. */
static Dispatch__Reply *send_as(fixture_t *f, const Dispatch__Request *request,
                                const auth_actor_t *actor)
{
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&request->base, &body, &len), 0);
    call_t call = {.f = f, .body = body, .len = len, .now = NOW, .actor = actor};
    int rc = store_write(f->store, call_request_fn, &call);
    bus_batch_done(f->bus, rc);
    free(body);
    assert_int_equal(rc, 0);
    assert_non_null(call.reply);
    return call.reply;
}

static Dispatch__Reply *send_at(fixture_t *f, const Dispatch__Request *request, int64_t now)
{
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&request->base, &body, &len), 0);
    Dispatch__Reply *reply = send_bytes_at(f, body, len, now);
    free(body);
    assert_int_equal(reply->tag, request->tag);
    return reply;
}

typedef struct event_call {
    fixture_t *f;
    const void *body;
    size_t len;
    int handler_rc;
} event_call_t;

static int call_event_fn(MDB_txn *txn, void *ctx)
{
    event_call_t *call = ctx;
    call->handler_rc = intake_handle_event(call->f->intake, txn, call->body, call->len, NOW);
    /* A refused event changes nothing; the bus commits its consumption. */
    return call->handler_rc == BUS_REJECTED ? 0 : call->handler_rc;
}

static int apply_bytes(fixture_t *f, const void *body, size_t len)
{
    event_call_t call = {.f = f, .body = body, .len = len};
    int rc = store_write(f->store, call_event_fn, &call);
    assert_int_equal(rc, 0);
    return call.handler_rc;
}

/* A router event about ticket (body set by the caller). */
static int router_event(fixture_t *f, const char *ticket, Dispatch__Event *event, int64_t at,
                        const char *actor)
{
    static unsigned serial;
    char event_id[32];
    snprintf(event_id, sizeof(event_id), "router-north-%u", ++serial);
    event->event_id = event_id;
    event->ticket_id = (char *)ticket;
    event->district = "north";
    event->at = at;
    event->actor = (char *)actor;
    event->origin = "router-north";
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&event->base, &body, &len), 0);
    int rc = apply_bytes(f, body, len);
    free(body);
    return rc;
}

/* The id of the intake's n-th event: its name, its incarnation, n. */
static const char *event_id_of(fixture_t *f, unsigned n)
{
    static char id[EVENT_ID_SIZE];
    const unsigned char *i = bus_incarnation(f->bus);
    snprintf(id, sizeof(id), "intake-a-%02x%02x%02x%02x-%u", i[0], i[1], i[2], i[3], n);
    return id;
}

/* ---- reading what was sent ---------------------------------------------- */

typedef struct sent {
    Dispatch__Event *events[MAX_EVENTS];
    size_t count;
} sent_t;

static void sent_read(fixture_t *f, const char *peer, sent_t *sent)
{
    char name[96];
    snprintf(name, sizeof(name), "outbox.%s", peer);
    MDB_dbi dbi;
    assert_int_equal(store_dbi(f->store, name, 0, &dbi), 0);
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    MDB_cursor *cursor;
    assert_int_equal(mdb_cursor_open(txn, dbi, &cursor), 0);
    sent->count = 0;
    MDB_val key, value;
    for (int rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
        assert_true(sent->count < MAX_EVENTS);
        char err[256];
        assert_int_equal(event_decode(value.mv_data, value.mv_size, &sent->events[sent->count], err,
                                      sizeof(err)),
                         0);
        sent->count++;
    }
    mdb_cursor_close(cursor);
    store_read_end(&txn);
}

static void sent_free(sent_t *sent)
{
    for (size_t i = 0; i < sent->count; i++)
        event_free(sent->events[i]);
    sent->count = 0;
}

static size_t sent_count(fixture_t *f, const char *peer)
{
    sent_t sent;
    sent_read(f, peer, &sent);
    size_t count = sent.count;
    sent_free(&sent);
    return count;
}

/* ---- building requests -------------------------------------------------- */

typedef struct submit_request {
    Dispatch__Request request;
    Dispatch__SubmitTicket submit;
    Dispatch__Location location;
    Dispatch__GeoPoint point;
} submit_request_t;

static void submit_init(submit_request_t *r, const char *client_request_id)
{
    dispatch__request__init(&r->request);
    dispatch__submit_ticket__init(&r->submit);
    dispatch__location__init(&r->location);
    dispatch__geo_point__init(&r->point);
    r->request.actor = "agent-7";
    r->request.tag = 42;
    r->request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    r->request.submit = &r->submit;
    r->submit.client_request_id = (char *)client_request_id;
    r->submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    r->submit.kind = DISPATCH__KIND__KIND_COMPLAINT;
    r->submit.category = "noise";
    r->submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    r->submit.district = "north";
    r->submit.area = "north-s01";
    r->submit.caller_name = "Wang Fang";
    r->submit.caller_phone = "13812341234";
    r->submit.description = "construction noise after 22:00";
    r->location.address = "12 Renmin Street";
    r->point.lat_e6 = 43817000;
    r->point.lon_e6 = 125323000;
    r->location.point = &r->point;
    r->submit.location = &r->location;
}

/* Submits and expects a SubmitReply; copies the ticket id out. */
static Dispatch__SubmitReply *submit_ok(fixture_t *f, submit_request_t *r, int64_t now,
                                        Dispatch__Reply **keep)
{
    *keep = send_at(f, &r->request, now);
    if ((*keep)->body_case == DISPATCH__REPLY__BODY_ERROR)
        fail_msg("submit refused: %s (%s)", (*keep)->error->message, (*keep)->error->field);
    assert_int_equal((*keep)->body_case, DISPATCH__REPLY__BODY_SUBMIT);
    return (*keep)->submit;
}

static void submit_id(fixture_t *f, submit_request_t *r, int64_t now, Dispatch__TicketState want,
                      char id[64])
{
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *reply = submit_ok(f, r, now, &keep);
    assert_int_equal(reply->state, want);
    assert_true(reply->created);
    snprintf(id, 64, "%s", reply->ticket_id);
    reply_free(keep);
}

static Dispatch__TicketView *get_ticket(fixture_t *f, const char *id, Dispatch__Reply **keep)
{
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = (char *)id;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "agent-7";
    request.tag = 7;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    *keep = send_at(f, &request, NOW);
    assert_int_equal((*keep)->body_case, DISPATCH__REPLY__BODY_TICKET);
    return (*keep)->ticket;
}

static Dispatch__TicketState state_of(fixture_t *f, const char *id)
{
    Dispatch__Reply *keep;
    Dispatch__TicketState state = get_ticket(f, id, &keep)->ticket->state;
    reply_free(keep);
    return state;
}

static Dispatch__Reply *callback_at(fixture_t *f, const char *id, const char *client_request_id,
                                    Dispatch__Satisfaction satisfaction, bool solved,
                                    bool unreachable, int64_t now)
{
    Dispatch__Callback callback = DISPATCH__CALLBACK__INIT;
    callback.client_request_id = (char *)client_request_id;
    callback.ticket_id = (char *)id;
    callback.satisfaction = satisfaction;
    callback.solved = solved;
    callback.unreachable = unreachable;
    callback.comment = "caller reached on the second try";
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "agent-9";
    request.tag = 9;
    request.body_case = DISPATCH__REQUEST__BODY_CALLBACK;
    request.callback = &callback;
    return send_at(f, &request, now);
}

static void expect_error(Dispatch__Reply *reply, Dispatch__ErrorCode code, const char *field)
{
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_ERROR);
    if (reply->error->code != code)
        fail_msg("expected error %d, got %d: %s", code, reply->error->code, reply->error->message);
    assert_string_equal(reply->error->field, field);
    assert_true(strlen(reply->error->message) > 0);
}

/* Refused: the right error, nothing registered, nothing sent. */
static void expect_refused(fixture_t *f, const submit_request_t *r, Dispatch__ErrorCode code,
                           const char *field)
{
    Dispatch__Reply *reply = send_at(f, &r->request, NOW);
    expect_error(reply, code, field);
    reply_free(reply);
    assert_int_equal(sent_count(f, "router-north"), 0);
    assert_int_equal(sent_count(f, "audit"), 0);
}

/* The router's part of a ticket's life up to RESOLVED. */
static void router_resolves(fixture_t *f, const char *id, int64_t at)
{
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = "street-office-1";
    dispatched.cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    assert_int_equal(router_event(f, id, &event, at, "system"), 0);

    Dispatch__TicketAccepted accepted = DISPATCH__TICKET_ACCEPTED__INIT;
    accepted.unit_id = "street-office-1";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &accepted;
    assert_int_equal(router_event(f, id, &event, at + 1, "street-office-1"), 0);

    Dispatch__TicketResolved resolved = DISPATCH__TICKET_RESOLVED__INIT;
    resolved.unit_id = "street-office-1";
    resolved.result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
    resolved.text = "site visited, works stopped at night";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RESOLVED;
    event.ticket_resolved = &resolved;
    assert_int_equal(router_event(f, id, &event, at + 2, "street-office-1"), 0);
}

/* ---- submit and get ------------------------------------------------------ */

static void test_submit_and_get(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "desk-7-0001");
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *reply = submit_ok(f, &r, NOW, &keep);
    assert_string_equal(reply->ticket_id, "TA-20261125-000001");
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    assert_true(reply->created);
    assert_string_equal(reply->master_id, "");
    assert_int_equal(reply->registered_at, NOW);
    assert_int_equal(keep->tag, 42);
    reply_free(keep);

    Dispatch__TicketView *view = get_ticket(f, "TA-20261125-000001", &keep);
    assert_int_equal(keep->tag, 7);
    Dispatch__Ticket *ticket = view->ticket;
    assert_string_equal(ticket->id, "TA-20261125-000001");
    assert_string_equal(ticket->client_request_id, "desk-7-0001");
    assert_int_equal(ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    assert_int_equal(ticket->kind, DISPATCH__KIND__KIND_COMPLAINT);
    assert_string_equal(ticket->district, "north");
    assert_string_equal(ticket->area, "north-s01");
    assert_string_equal(ticket->category, "noise");
    assert_string_equal(ticket->caller_phone, "13812341234");
    assert_string_equal(ticket->caller_name, "Wang Fang");
    assert_string_equal(ticket->location->address, "12 Renmin Street");
    assert_int_equal(ticket->location->point->lat_e6, 43817000);
    assert_int_equal(ticket->registered_at, NOW);
    assert_int_equal(view->n_history, 1);
    assert_int_equal(view->history[0]->type, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REGISTERED);
    assert_int_equal(view->history[0]->at, NOW);
    assert_string_equal(view->history[0]->actor, "agent-7");
    reply_free(keep);

    /* TicketRegistered with the full ticket to its district's router and
     * to audit; nothing to the other district. */
    sent_t sent;
    sent_read(f, "router-north", &sent);
    assert_int_equal(sent.count, 1);
    Dispatch__Event *event = sent.events[0];
    assert_int_equal(event->body_case, DISPATCH__EVENT__BODY_TICKET_REGISTERED);
    assert_string_equal(event->event_id, event_id_of(f, 1));
    assert_string_equal(event->ticket_id, "TA-20261125-000001");
    assert_string_equal(event->district, "north");
    assert_string_equal(event->actor, "agent-7");
    assert_string_equal(event->origin, "intake-a");
    assert_int_equal(event->at, NOW);
    assert_string_equal(event->ticket_registered->ticket->description,
                        "construction noise after 22:00");
    assert_string_equal(event->ticket_registered->ticket->caller_phone, "13812341234");
    sent_free(&sent);
    sent_read(f, "audit", &sent);
    assert_int_equal(sent.count, 1);
    assert_string_equal(sent.events[0]->event_id, event_id_of(f, 1));
    sent_free(&sent);
    assert_int_equal(sent_count(f, "router-south"), 0);
}

/* Ids: one counter per registration day in the city's time zone. */
static void test_ticket_ids_count_per_local_day(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "id-1");
    r.submit.caller_phone = "";
    r.location.address = "";
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    assert_string_equal(id, "TA-20261125-000001");
    submit_init(&r, "id-2");
    r.submit.caller_phone = "";
    r.location.address = "";
    submit_id(f, &r, NOW + MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    assert_string_equal(id, "TA-20261125-000002");
    /* 16:00 UTC is midnight in Shanghai: a new day, a new counter. */
    submit_init(&r, "id-3");
    r.submit.caller_phone = "";
    r.location.address = "";
    submit_id(f, &r, NOW + 15 * 60 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    assert_string_equal(id, "TA-20261126-000001");
    /* The counter is durable. */
    fixture_restart(f);
    submit_init(&r, "id-4");
    r.submit.caller_phone = "";
    r.location.address = "";
    submit_id(f, &r, NOW + 2 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    assert_string_equal(id, "TA-20261125-000003");
}

/* An aborted batch leaves nothing; the rerun takes the same id and event id. */
static void test_aborted_batch_leaves_nothing(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "abort-1");
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&r.request.base, &body, &len), 0);
    call_t call = {.f = f, .body = body, .len = len, .now = NOW, .abort_after = true};
    int rc = store_write(f->store, call_request_fn, &call);
    bus_batch_done(f->bus, rc);
    assert_int_equal(rc, -EIO);
    assert_int_equal(call.handler_rc, 0);
    reply_free(call.reply);
    assert_int_equal(sent_count(f, "router-north"), 0);

    Dispatch__Reply *reply = send_bytes_at(f, body, len, NOW);
    free(body);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_SUBMIT);
    assert_string_equal(reply->submit->ticket_id, "TA-20261125-000001");
    assert_true(reply->submit->created);
    reply_free(reply);
    sent_t sent;
    sent_read(f, "router-north", &sent);
    assert_int_equal(sent.count, 1);
    assert_string_equal(sent.events[0]->event_id, event_id_of(f, 1));
    sent_free(&sent);
}

/* get_ticket only reads: it works in a read-only transaction. */
static void test_get_in_read_transaction(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "read-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);

    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = id;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&request.base, &body, &len), 0);
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    const Dispatch__Reply *reply;
    assert_int_equal(intake_handle_request(f->intake, txn, NULL, body, len, NOW, &reply), 0);
    store_read_end(&txn);
    free(body);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_TICKET);
    assert_string_equal(reply->ticket->ticket->id, id);
}

/* ---- refusals: one per error code, every request path ------------------- */

static void test_refuse_malformed(void **state)
{
    fixture_t *f = *state;
    const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    Dispatch__Reply *reply = send_bytes_at(f, garbage, sizeof(garbage), NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "");
    assert_int_equal(reply->tag, 0);
    reply_free(reply);

    /* A valid request cut short. */
    submit_request_t r;
    submit_init(&r, "cut-1");
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&r.request.base, &body, &len), 0);
    reply = send_bytes_at(f, body, len - 3, NOW);
    free(body);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "");
    reply_free(reply);

    /* A request with no body in its oneof. */
    Dispatch__Request empty = DISPATCH__REQUEST__INIT;
    empty.tag = 5;
    reply = send_at(f, &empty, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body");
    reply_free(reply);

    /* Zero bytes decode as an empty Request: no body either. */
    reply = send_bytes_at(f, "", 0, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body");
    reply_free(reply);
    assert_int_equal(sent_count(f, "audit"), 0);
}

static void test_refuse_oversized_body(void **state)
{
    fixture_t *f = *state;
    size_t len = INTAKE_MAX_REQUEST + 1;
    unsigned char *body = calloc(1, len);
    assert_non_null(body);
    Dispatch__Reply *reply = send_bytes_at(f, body, len, NOW);
    free(body);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "");
    reply_free(reply);
}

static void test_refuse_too_large_fields(void **state)
{
    fixture_t *f = *state;
    char big[4002];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char id65[66];
    memset(id65, 'k', 65);
    id65[65] = '\0';
    submit_request_t r;

    submit_init(&r, "big-1");
    r.submit.description = big;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "submit.description");
    submit_init(&r, id65);
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "submit.client_request_id");
    submit_init(&r, "big-2");
    r.submit.category = id65;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "submit.category");
    submit_init(&r, "big-3");
    r.submit.area = id65;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "submit.area");
    submit_init(&r, "big-4");
    r.submit.caller_name = id65;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "submit.caller_name");
    submit_init(&r, "big-5");
    big[257] = '\0';
    r.location.address = big;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "submit.location.address");
    submit_init(&r, "big-6");
    r.request.actor = id65;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "actor");
    submit_init(&r, "big-7");
    r.submit.caller_phone = "138123412341234123412";
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "submit.caller_phone");
    submit_init(&r, "big-8");
    r.submit.kind = DISPATCH__KIND__KIND_CONSULT;
    r.submit.answered = true;
    memset(big, 'a', sizeof(big) - 1);
    r.submit.answer = big;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "submit.answer");
}

static void test_refuse_missing_fields(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "");
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                   "submit.client_request_id");
    submit_init(&r, "miss-1");
    r.submit.channel = DISPATCH__CHANNEL__CHANNEL_UNSPECIFIED;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "submit.channel");
    submit_init(&r, "miss-2");
    r.submit.kind = DISPATCH__KIND__KIND_UNSPECIFIED;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "submit.kind");
    submit_init(&r, "miss-3");
    r.submit.urgency = DISPATCH__URGENCY__URGENCY_UNSPECIFIED;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "submit.urgency");
    submit_init(&r, "miss-4");
    r.submit.description = "";
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "submit.description");
    submit_init(&r, "miss-5");
    r.submit.district = "";
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "submit.district");
    submit_init(&r, "miss-6");
    r.submit.kind = DISPATCH__KIND__KIND_CONSULT;
    r.submit.answered = true;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "submit.answer");

    /* get_ticket and callback paths. */
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    Dispatch__Reply *reply = send_at(f, &request, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "get_ticket.ticket_id");
    reply_free(reply);
    reply = callback_at(f, "TA-20261125-000001", "", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED,
                        true, false, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                 "callback.client_request_id");
    reply_free(reply);
    reply = callback_at(f, "", "cb-miss-1", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true,
                        false, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "callback.ticket_id");
    reply_free(reply);
    reply = callback_at(f, "TA-20261125-000001", "cb-miss-2",
                        DISPATCH__SATISFACTION__SATISFACTION_UNSPECIFIED, true, false, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "callback.satisfaction");
    reply_free(reply);
}

static void test_refuse_invalid_utf8(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "utf8-1");
    r.submit.caller_name = "Wang \xc3\x28";
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8, "submit.caller_name");
    submit_init(&r, "utf8-2");
    r.location.address = "\xed\xa0\x80 surrogate";
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8, "submit.location.address");
    submit_init(&r, "utf8-3");
    r.submit.description = "overlong \xc0\xaf";
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8, "submit.description");
    /* Valid multi-byte text passes. */
    submit_init(&r, "utf8-4");
    r.submit.caller_name = "张三丰";
    r.submit.description = "井盖破损";
    char id[64];
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
}

static void test_refuse_unknown_enum(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "enum-1");
    r.submit.kind = (Dispatch__Kind)99;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.kind");
    submit_init(&r, "enum-2");
    r.submit.transfer_to = (Dispatch__EmergencyLine)7;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.transfer_to");
    submit_init(&r, "enum-3");
    r.submit.channel = (Dispatch__Channel)-1;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.channel");
}

static void test_refuse_out_of_range(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "range-1");
    r.point.lat_e6 = 90000001;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                   "submit.location.point.lat_e6");
    submit_init(&r, "range-2");
    r.point.lon_e6 = -180000001;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                   "submit.location.point.lon_e6");
    submit_init(&r, "range-3");
    r.submit.answered = true; /* a complaint cannot be answered at intake */
    r.submit.answer = "see the city website";
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.answered");
    submit_init(&r, "range-4");
    r.submit.kind = DISPATCH__KIND__KIND_CONSULT;
    r.submit.answered = true;
    r.submit.answer = "call 110";
    r.submit.transfer_to = DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_POLICE_110;
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.answered");
}

static void test_refuse_unknown_district(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "district-1");
    r.submit.district = "atlantis";
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.district");
    submit_init(&r, "district-2");
    r.submit.district = "North"; /* ids are exact */
    expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.district");
}

static void test_refuse_bad_phone(void **state)
{
    fixture_t *f = *state;
    const char *bad[] = {"12",       "+1",    "+",           "++8613812341234", "138-1234-1234",
                         "138 1234", "phone", "1381234123x", "８６１３８"};
    submit_request_t r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        submit_init(&r, "phone-bad");
        r.submit.caller_phone = (char *)bad[i];
        expect_refused(f, &r, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_PHONE,
                       "submit.caller_phone");
    }
    const char *good[] = {"110", "+12", "+8613812341234", "13812341234", "01012345678901234567"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char key[32];
        snprintf(key, sizeof(key), "phone-good-%zu", i);
        submit_init(&r, key);
        r.submit.caller_phone = (char *)good[i];
        r.location.address = "";
        char id[64];
        submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    }
}

static void test_get_unknown_ticket(void **state)
{
    fixture_t *f = *state;
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = "TA-20261125-000099";
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    Dispatch__Reply *reply = send_at(f, &request, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "get_ticket.ticket_id");
    reply_free(reply);
    char id65[66];
    memset(id65, 'k', 65);
    id65[65] = '\0';
    get.ticket_id = id65;
    reply = send_at(f, &request, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "get_ticket.ticket_id");
    reply_free(reply);
    reply = callback_at(f, "TA-20261125-000099", "cb-unknown",
                        DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true, false, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "callback.ticket_id");
    reply_free(reply);
}

/* ---- idempotency --------------------------------------------------------- */

static void test_idempotent_replay(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "desk-7-0001");
    Dispatch__Reply *first_keep;
    Dispatch__SubmitReply *first = submit_ok(f, &r, NOW, &first_keep);
    assert_true(first->created);

    /* The retry (even with other fields, later) returns the first outcome. */
    r.submit.description = "something else entirely";
    r.request.tag = 43;
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *again = submit_ok(f, &r, NOW + 5 * MINUTE, &keep);
    assert_int_equal(keep->tag, 43);
    assert_false(again->created);
    assert_string_equal(again->ticket_id, first->ticket_id);
    assert_int_equal(again->state, first->state);
    assert_int_equal(again->registered_at, NOW);
    reply_free(keep);
    assert_int_equal(sent_count(f, "router-north"), 1);
    assert_int_equal(sent_count(f, "audit"), 1);

    /* Across a restart. */
    fixture_restart(f);
    again = submit_ok(f, &r, NOW + DAY, &keep);
    assert_false(again->created);
    assert_string_equal(again->ticket_id, first->ticket_id);
    reply_free(keep);
    assert_int_equal(sent_count(f, "router-north"), 1);
    Dispatch__TicketView *view = get_ticket(f, first->ticket_id, &keep);
    assert_string_equal(view->ticket->description, "construction noise after 22:00");
    assert_int_equal(view->n_history, 1);
    reply_free(keep);

    /* The key is per actor: another desk's identical key is another ticket. */
    r.request.actor = "agent-8";
    r.submit.caller_phone = "";
    r.location.address = "";
    again = submit_ok(f, &r, NOW, &keep);
    assert_true(again->created);
    assert_string_not_equal(again->ticket_id, first->ticket_id);
    reply_free(keep);
    reply_free(first_keep);

    /* A key the same desk used for a submit cannot be a callback's. */
    Dispatch__Callback callback = DISPATCH__CALLBACK__INIT;
    callback.client_request_id = "desk-7-0001";
    callback.ticket_id = "TA-20261125-000001";
    callback.satisfaction = DISPATCH__SATISFACTION__SATISFACTION_SATISFIED;
    callback.solved = true;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "agent-7";
    request.body_case = DISPATCH__REQUEST__BODY_CALLBACK;
    request.callback = &callback;
    Dispatch__Reply *reply = send_at(f, &request, NOW);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "callback.client_request_id");
    reply_free(reply);
}

/* ---- duplicates ---------------------------------------------------------- */

static void test_duplicate_merged_by_phone(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char master[64], other[64];
    submit_init(&r, "dup-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, master);

    /* Same caller and category, elsewhere, an hour later: merged. */
    submit_init(&r, "dup-2");
    r.location.address = "Train station square";
    r.request.actor = "agent-8";
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *reply = submit_ok(f, &r, NOW + 60 * MINUTE, &keep);
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    assert_string_equal(reply->master_id, master);
    assert_true(reply->created);
    char duplicate[64];
    snprintf(duplicate, sizeof(duplicate), "%s", reply->ticket_id);
    reply_free(keep);

    /* Router and audit: TicketRegistered (state MERGED) then TicketMerged. */
    const char *peers[] = {"router-north", "audit"};
    for (size_t p = 0; p < 2; p++) {
        sent_t sent;
        sent_read(f, peers[p], &sent);
        assert_int_equal(sent.count, 3);
        assert_int_equal(sent.events[1]->body_case, DISPATCH__EVENT__BODY_TICKET_REGISTERED);
        assert_string_equal(sent.events[1]->ticket_id, duplicate);
        assert_int_equal(sent.events[1]->ticket_registered->ticket->state,
                         DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
        assert_string_equal(sent.events[1]->ticket_registered->ticket->master_id, master);
        assert_int_equal(sent.events[2]->body_case, DISPATCH__EVENT__BODY_TICKET_MERGED);
        assert_string_equal(sent.events[2]->ticket_merged->master_id, master);
        assert_string_equal(sent.events[2]->actor, "agent-8");
        sent_free(&sent);
    }

    /* The duplicate's view and the master's history. */
    Dispatch__TicketView *view = get_ticket(f, duplicate, &keep);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    assert_string_equal(view->ticket->master_id, master);
    assert_int_equal(view->n_history, 2);
    assert_int_equal(view->history[1]->type, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_MERGED);
    reply_free(keep);
    view = get_ticket(f, master, &keep);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    assert_int_equal(view->n_history, 2);
    assert_int_equal(view->history[1]->type, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_MERGED);
    assert_non_null(strstr(view->history[1]->text, duplicate));
    assert_string_equal(view->history[1]->actor, "agent-8");
    reply_free(keep);

    /* Not duplicates: another category, another district, no phone. */
    submit_init(&r, "dup-3");
    r.submit.category = "sanitation";
    r.location.address = "";
    submit_id(f, &r, NOW + 61 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, other);
    submit_init(&r, "dup-4");
    r.submit.district = "south";
    r.location.address = "";
    submit_id(f, &r, NOW + 62 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, other);
    assert_int_equal(sent_count(f, "router-south"), 1);
    submit_init(&r, "dup-5");
    r.submit.caller_phone = "";
    r.location.address = "";
    submit_id(f, &r, NOW + 63 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, other);
    /* Unclassified requests are not matched either. */
    submit_init(&r, "dup-6");
    r.submit.category = "";
    submit_id(f, &r, NOW + 64 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, other);
    submit_init(&r, "dup-7");
    r.submit.category = "";
    submit_id(f, &r, NOW + 65 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, other);

    /* The merged submit's replay says MERGED too. */
    submit_init(&r, "dup-2");
    r.request.actor = "agent-8";
    reply = submit_ok(f, &r, NOW + 70 * MINUTE, &keep);
    assert_false(reply->created);
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    assert_string_equal(reply->master_id, master);
    reply_free(keep);
}

static void test_duplicate_merged_by_address(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char master[64], id[64];
    submit_init(&r, "addr-1");
    r.location.address = "  12 Renmin   Street ";
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, master);

    /* Another caller, the same place written differently. */
    submit_init(&r, "addr-2");
    r.submit.caller_phone = "13900000002";
    r.location.address = "12 RENMIN\tstreet";
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *reply = submit_ok(f, &r, NOW + MINUTE, &keep);
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    assert_string_equal(reply->master_id, master);
    reply_free(keep);

    /* Ideographic spaces count as white space. */
    submit_init(&r, "addr-2b");
    r.submit.caller_phone = "";
    r.location.address = "12\u3000Renmin\u3000\u3000Street";
    reply = submit_ok(f, &r, NOW + MINUTE, &keep);
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    assert_string_equal(reply->master_id, master);
    reply_free(keep);

    /* No address: no match; another address: no match. */
    submit_init(&r, "addr-3");
    r.submit.caller_phone = "13900000003";
    r.location.address = "";
    submit_id(f, &r, NOW + 2 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    submit_init(&r, "addr-4");
    r.submit.caller_phone = "13900000004";
    r.location.address = "14 Renmin Street";
    submit_id(f, &r, NOW + 3 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    submit_init(&r, "addr-5");
    r.submit.caller_phone = "13900000005";
    r.submit.location = NULL;
    submit_id(f, &r, NOW + 4 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
}

static void test_no_merge_after_master_closed(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char master[64], id[64];
    submit_init(&r, "closed-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, master);
    router_resolves(f, master, NOW + MINUTE);
    Dispatch__Reply *reply =
        callback_at(f, master, "cb-closed-1", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true,
                    false, NOW + 10 * MINUTE);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_CALLBACK);
    assert_int_equal(reply->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    reply_free(reply);

    /* Same caller, same address, same category: a new ticket now. */
    submit_init(&r, "closed-2");
    submit_id(f, &r, NOW + 20 * MINUTE, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    /* ... which is the new master. */
    submit_init(&r, "closed-3");
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *merged = submit_ok(f, &r, NOW + 21 * MINUTE, &keep);
    assert_int_equal(merged->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    assert_string_equal(merged->master_id, id);
    reply_free(keep);
}

static void test_no_merge_outside_window(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char first[64], second[64];
    submit_init(&r, "window-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, first);
    /* At exactly the window's end it still merges. */
    submit_init(&r, "window-2");
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *reply = submit_ok(f, &r, NOW + DAY, &keep);
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    reply_free(keep);
    /* One ms later the first ticket is out of the window. */
    submit_init(&r, "window-3");
    submit_id(f, &r, NOW + DAY + 1, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, second);
    /* The newer ticket is now the master. */
    submit_init(&r, "window-4");
    reply = submit_ok(f, &r, NOW + DAY + 2, &keep);
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    assert_string_equal(reply->master_id, second);
    reply_free(keep);
}

static void test_no_duplicate_detection_when_window_zero(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "zero-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    submit_init(&r, "zero-2");
    submit_id(f, &r, NOW + 1, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
}

/* ---- consult answered, transfer ------------------------------------------ */

static void test_consult_answered_at_intake(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "consult-1");
    r.submit.kind = DISPATCH__KIND__KIND_CONSULT;
    r.submit.category = "social-security";
    r.submit.answered = true;
    r.submit.answer = "Bring your ID card to any social security office.";
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *reply = submit_ok(f, &r, NOW, &keep);
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
    char id[64];
    snprintf(id, sizeof(id), "%s", reply->ticket_id);
    reply_free(keep);

    const char *peers[] = {"router-north", "audit"};
    for (size_t p = 0; p < 2; p++) {
        sent_t sent;
        sent_read(f, peers[p], &sent);
        assert_int_equal(sent.count, 2);
        assert_int_equal(sent.events[0]->body_case, DISPATCH__EVENT__BODY_TICKET_REGISTERED);
        Dispatch__Ticket *ticket = sent.events[0]->ticket_registered->ticket;
        assert_int_equal(ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
        assert_true(ticket->answered_at_intake);
        assert_string_equal(ticket->answer, r.submit.answer);
        assert_int_equal(sent.events[1]->body_case, DISPATCH__EVENT__BODY_TICKET_RESOLVED);
        assert_true(sent.events[1]->ticket_resolved->at_intake);
        assert_string_equal(sent.events[1]->ticket_resolved->text, r.submit.answer);
        assert_string_equal(sent.events[1]->ticket_resolved->unit_id, "");
        sent_free(&sent);
    }
    assert_int_equal(sent_count(f, "router-south"), 0);

    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
    assert_int_equal(view->ticket->resolved_at, NOW);
    assert_int_equal(view->n_history, 2);
    assert_int_equal(view->history[1]->type, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_RESOLVED);
    assert_string_equal(view->history[1]->text, r.submit.answer);
    reply_free(keep);

    /* The callback closes it. */
    Dispatch__Reply *called =
        callback_at(f, id, "cb-consult-1", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true,
                    false, NOW + DAY);
    assert_int_equal(called->body_case, DISPATCH__REPLY__BODY_CALLBACK);
    assert_int_equal(called->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    reply_free(called);
}

static void test_emergency_transfer(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "fire-1");
    r.submit.category = "fire";
    r.submit.transfer_to = DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_FIRE_119;
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *reply = submit_ok(f, &r, NOW, &keep);
    assert_int_equal(reply->state, DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED);
    char id[64];
    snprintf(id, sizeof(id), "%s", reply->ticket_id);
    reply_free(keep);

    /* Audit only: the router never sees it. */
    assert_int_equal(sent_count(f, "router-north"), 0);
    sent_t sent;
    sent_read(f, "audit", &sent);
    assert_int_equal(sent.count, 2);
    assert_int_equal(sent.events[0]->body_case, DISPATCH__EVENT__BODY_TICKET_REGISTERED);
    assert_int_equal(sent.events[0]->ticket_registered->ticket->state,
                     DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED);
    assert_int_equal(sent.events[1]->body_case, DISPATCH__EVENT__BODY_TICKET_TRANSFERRED);
    assert_int_equal(sent.events[1]->ticket_transferred->line,
                     DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_FIRE_119);
    sent_free(&sent);

    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED);
    assert_int_equal(view->ticket->transferred_to,
                     DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_FIRE_119);
    assert_int_equal(view->n_history, 2);
    reply_free(keep);

    /* Final: never a master, never called back. */
    submit_init(&r, "fire-2");
    r.submit.category = "fire";
    char other[64];
    submit_id(f, &r, NOW + 1, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, other);
    Dispatch__Reply *called = callback_at(
        f, id, "cb-fire", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true, false, NOW + 2);
    expect_error(called, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "callback.ticket_id");
    reply_free(called);
}

/* ---- callback ------------------------------------------------------------ */

static void test_callback_closes(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "cb-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    router_resolves(f, id, NOW + MINUTE);
    size_t before = sent_count(f, "router-north");

    Dispatch__Reply *reply =
        callback_at(f, id, "cb-close-1", DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED,
                    true, false, NOW + DAY);
    assert_int_equal(reply->tag, 9);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_CALLBACK);
    assert_string_equal(reply->callback->ticket_id, id);
    assert_int_equal(reply->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    assert_int_equal(reply->callback->reopen_count, 0);
    reply_free(reply);

    const char *peers[] = {"router-north", "audit"};
    for (size_t p = 0; p < 2; p++) {
        sent_t sent;
        sent_read(f, peers[p], &sent);
        assert_true(sent.count >= 2);
        Dispatch__Event *called = sent.events[sent.count - 2];
        Dispatch__Event *closed = sent.events[sent.count - 1];
        assert_int_equal(called->body_case, DISPATCH__EVENT__BODY_CALLED_BACK);
        assert_int_equal(called->called_back->satisfaction,
                         DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED);
        assert_true(called->called_back->solved);
        assert_string_equal(called->actor, "agent-9");
        assert_int_equal(closed->body_case, DISPATCH__EVENT__BODY_TICKET_CLOSED);
        assert_int_equal(closed->ticket_closed->satisfaction,
                         DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED);
        sent_free(&sent);
    }
    assert_int_equal(sent_count(f, "router-north"), before + 2);

    Dispatch__Reply *keep;
    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    assert_int_equal(view->ticket->closed_at, NOW + DAY);
    assert_int_equal(view->ticket->satisfaction,
                     DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED);
    const Dispatch__EventType steps[] = {
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REGISTERED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_DISPATCHED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_ACCEPTED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_RESOLVED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_CALLED_BACK,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_CLOSED,
    };
    assert_int_equal(view->n_history, sizeof(steps) / sizeof(steps[0]));
    for (size_t i = 0; i < view->n_history; i++)
        assert_int_equal(view->history[i]->type, steps[i]);
    reply_free(keep);

    /* The retry returns the same outcome and sends nothing. */
    reply = callback_at(f, id, "cb-close-1", DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED,
                        false, false, NOW + DAY + 1);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_CALLBACK);
    assert_int_equal(reply->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    reply_free(reply);
    assert_int_equal(sent_count(f, "router-north"), before + 2);
    /* A new callback on a closed ticket: conflict. */
    reply = callback_at(f, id, "cb-close-2", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true,
                        false, NOW + DAY + 2);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "callback.ticket_id");
    reply_free(reply);
}

static void test_callback_reopens(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "reopen-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    router_resolves(f, id, NOW + MINUTE);

    /* Unsatisfied. */
    Dispatch__Reply *reply =
        callback_at(f, id, "cb-reopen-1", DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED, true,
                    false, NOW + 120 * MINUTE);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_CALLBACK);
    assert_int_equal(reply->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED);
    assert_int_equal(reply->callback->reopen_count, 1);
    reply_free(reply);
    sent_t sent;
    sent_read(f, "router-north", &sent);
    assert_int_equal(sent.events[sent.count - 2]->body_case, DISPATCH__EVENT__BODY_CALLED_BACK);
    Dispatch__Event *reopened = sent.events[sent.count - 1];
    assert_int_equal(reopened->body_case, DISPATCH__EVENT__BODY_TICKET_REOPENED);
    assert_int_equal(reopened->ticket_reopened->reopen_count, 1);
    assert_int_equal(reopened->ticket_reopened->satisfaction,
                     DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED);
    sent_free(&sent);
    assert_int_equal(sent_count(f, "audit"), 3);

    /* Still the master of its duplicates while reopened. */
    submit_init(&r, "reopen-dup");
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *merged = submit_ok(f, &r, NOW + 121 * MINUTE, &keep);
    assert_int_equal(merged->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    reply_free(keep);

    /* Back to the unit, resolved again; satisfied but not solved: reopened. */
    router_resolves(f, id, NOW + 130 * MINUTE);
    reply = callback_at(f, id, "cb-reopen-2", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, false,
                        false, NOW + 2 * DAY);
    assert_int_equal(reply->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED);
    assert_int_equal(reply->callback->reopen_count, 2);
    reply_free(reply);
    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    assert_int_equal(view->ticket->reopen_count, 2);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED);
    assert_int_equal(view->ticket->closed_at, 0);
    reply_free(keep);
}

static void test_callback_unreachable_closes_without_rating(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "unreach-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    router_resolves(f, id, NOW + MINUTE);
    Dispatch__Reply *reply =
        callback_at(f, id, "cb-unreach", DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED, false,
                    true, NOW + DAY);
    assert_int_equal(reply->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    reply_free(reply);
    Dispatch__Reply *keep;
    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    assert_int_equal(view->ticket->satisfaction, DISPATCH__SATISFACTION__SATISFACTION_UNSPECIFIED);
    reply_free(keep);
    sent_t sent;
    sent_read(f, "audit", &sent);
    Dispatch__Event *called = sent.events[sent.count - 2];
    assert_true(called->called_back->unreachable);
    assert_int_equal(sent.events[sent.count - 1]->ticket_closed->satisfaction,
                     DISPATCH__SATISFACTION__SATISFACTION_UNSPECIFIED);
    sent_free(&sent);
}

static void test_callback_conflict_when_not_resolved(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "conflict-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    size_t before = sent_count(f, "audit");
    Dispatch__Reply *reply = callback_at(
        f, id, "cb-conflict", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true, false, NOW + 1);
    expect_error(reply, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "callback.ticket_id");
    assert_non_null(strstr(reply->error->message, "REGISTERED"));
    reply_free(reply);
    assert_int_equal(sent_count(f, "audit"), before);
    assert_int_equal(state_of(f, id), DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);

    /* The refused key was not consumed: once resolved, it works. */
    router_resolves(f, id, NOW + MINUTE);
    reply = callback_at(f, id, "cb-conflict", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true,
                        false, NOW + DAY);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_CALLBACK);
    reply_free(reply);
}

/* ---- events from routers ------------------------------------------------- */

static void test_router_events_update_ticket(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "events-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);

    Dispatch__Event event = DISPATCH__EVENT__INIT;
    Dispatch__TicketTriaged triaged = DISPATCH__TICKET_TRIAGED__INIT;
    triaged.cause = DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_NO_RULE;
    triaged.note = "no rule for noise in north-s01";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_TRIAGED;
    event.ticket_triaged = &triaged;
    assert_int_equal(router_event(f, id, &event, NOW + 1000, "system"), 0);
    assert_int_equal(state_of(f, id), DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE);

    char *assisting[] = {"police-north", "env-bureau"};
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = "street-office-1";
    dispatched.n_assisting_units = 2;
    dispatched.assisting_units = assisting;
    dispatched.cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_TRIAGE;
    dispatched.deadline_sign_for = NOW + 2 * 60 * MINUTE;
    dispatched.deadline_handle = NOW + 5 * DAY;
    dispatched.note = "dispatcher: street office leads";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    assert_int_equal(router_event(f, id, &event, NOW + 2000, "dispatcher-li"), 0);

    Dispatch__TicketReturned returned = DISPATCH__TICKET_RETURNED__INIT;
    returned.unit_id = "street-office-1";
    returned.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_WRONG_AREA;
    returned.reason = "the site is in the next street's territory";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RETURNED;
    event.ticket_returned = &returned;
    assert_int_equal(router_event(f, id, &event, NOW + 3000, "street-office-1"), 0);
    assert_int_equal(state_of(f, id), DISPATCH__TICKET_STATE__TICKET_STATE_RETURNED);

    Dispatch__TicketRerouted rerouted = DISPATCH__TICKET_REROUTED__INIT;
    rerouted.from_unit = "street-office-1";
    rerouted.to_unit = "street-office-2";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REROUTED;
    event.ticket_rerouted = &rerouted;
    assert_int_equal(router_event(f, id, &event, NOW + 3500, "system"), 0);
    assert_int_equal(state_of(f, id), DISPATCH__TICKET_STATE__TICKET_STATE_RETURNED);

    dispatched.unit_id = "street-office-2";
    dispatched.n_assisting_units = 1;
    dispatched.cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REROUTE;
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    assert_int_equal(router_event(f, id, &event, NOW + 4000, "system"), 0);

    Dispatch__TicketAccepted accepted = DISPATCH__TICKET_ACCEPTED__INIT;
    accepted.unit_id = "street-office-2";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &accepted;
    assert_int_equal(router_event(f, id, &event, NOW + 5000, "street-office-2"), 0);

    Dispatch__ProgressReported progress = DISPATCH__PROGRESS_REPORTED__INIT;
    progress.unit_id = "police-north";
    progress.text = "patrol checked the site at 23:00";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_PROGRESS_REPORTED;
    event.progress_reported = &progress;
    assert_int_equal(router_event(f, id, &event, NOW + 6000, "police-north"), 0);

    Dispatch__ReminderSent reminder = DISPATCH__REMINDER_SENT__INIT;
    reminder.unit_id = "street-office-2";
    reminder.deadline_kind = DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE;
    reminder.text = "one working day left";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_REMINDER_SENT;
    event.reminder_sent = &reminder;
    assert_int_equal(router_event(f, id, &event, NOW + 7000, "system"), 0);

    Dispatch__TicketEscalated escalated = DISPATCH__TICKET_ESCALATED__INIT;
    escalated.level = DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_DISTRICT;
    escalated.previous = DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_UNIT_REMINDER;
    escalated.reason = "handling deadline passed";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ESCALATED;
    event.ticket_escalated = &escalated;
    assert_int_equal(router_event(f, id, &event, NOW + 8000, "system"), 0);

    Dispatch__ExtensionRequested asked = DISPATCH__EXTENSION_REQUESTED__INIT;
    asked.unit_id = "street-office-2";
    asked.request_id = "ext-1";
    asked.extra_working_days = 3;
    asked.reason = "waiting for the contractor";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_EXTENSION_REQUESTED;
    event.extension_requested = &asked;
    assert_int_equal(router_event(f, id, &event, NOW + 9000, "street-office-2"), 0);

    Dispatch__ExtensionGranted granted = DISPATCH__EXTENSION_GRANTED__INIT;
    granted.request_id = "ext-1";
    granted.new_deadline_handle = NOW + 8 * DAY;
    granted.note = "granted once";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_EXTENSION_GRANTED;
    event.extension_granted = &granted;
    assert_int_equal(router_event(f, id, &event, NOW + 10000, "supervisor-zhao"), 0);

    Dispatch__SignedOff signed_off = DISPATCH__SIGNED_OFF__INIT;
    signed_off.leader = "leader-sun";
    signed_off.instruction = "solve it this week";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_SIGNED_OFF;
    event.signed_off = &signed_off;
    assert_int_equal(router_event(f, id, &event, NOW + 11000, "leader-sun"), 0);

    Dispatch__TicketResolved resolved = DISPATCH__TICKET_RESOLVED__INIT;
    resolved.unit_id = "street-office-2";
    resolved.result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_PARTLY_SOLVED;
    resolved.text = "night works limited to 21:00";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RESOLVED;
    event.ticket_resolved = &resolved;
    assert_int_equal(router_event(f, id, &event, NOW + 12000, "street-office-2"), 0);

    Dispatch__Reply *keep;
    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    Dispatch__Ticket *ticket = view->ticket;
    assert_int_equal(ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
    assert_string_equal(ticket->assigned_unit, "street-office-2");
    assert_int_equal(ticket->n_assisting_units, 1);
    assert_string_equal(ticket->assisting_units[0], "police-north");
    assert_int_equal(ticket->dispatched_at, NOW + 4000);
    assert_int_equal(ticket->accepted_at, NOW + 5000);
    assert_int_equal(ticket->resolved_at, NOW + 12000);
    assert_int_equal(ticket->updated_at, NOW + 12000);
    assert_int_equal(ticket->return_count, 1);
    assert_int_equal(ticket->extension_count, 1);
    assert_int_equal(ticket->deadline_sign_for, NOW + 2 * 60 * MINUTE);
    assert_int_equal(ticket->deadline_handle, NOW + 8 * DAY);
    assert_int_equal(ticket->supervision, DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_DISTRICT);
    assert_int_equal(ticket->result, DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_PARTLY_SOLVED);

    const struct {
        Dispatch__EventType type;
        const char *actor, *unit, *text;
    } want[] = {
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REGISTERED, "agent-7", "", ""},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_TRIAGED, "system", "", triaged.note},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_DISPATCHED, "dispatcher-li", "street-office-1",
         dispatched.note},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_RETURNED, "street-office-1", "street-office-1",
         returned.reason},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REROUTED, "system", "street-office-2", ""},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_DISPATCHED, "system", "street-office-2",
         dispatched.note},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_ACCEPTED, "street-office-2", "street-office-2",
         ""},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_PROGRESS_REPORTED, "police-north", "police-north",
         progress.text},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_REMINDER_SENT, "system", "street-office-2",
         reminder.text},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_ESCALATED, "system", "", escalated.reason},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_EXTENSION_REQUESTED, "street-office-2", "street-office-2",
         asked.reason},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_EXTENSION_GRANTED, "supervisor-zhao", "", granted.note},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_SIGNED_OFF, "leader-sun", "", signed_off.instruction},
        {DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_RESOLVED, "street-office-2", "street-office-2",
         resolved.text},
    };
    assert_int_equal(view->n_history, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < view->n_history; i++) {
        assert_int_equal(view->history[i]->type, want[i].type);
        assert_string_equal(view->history[i]->actor, want[i].actor);
        assert_string_equal(view->history[i]->unit_id, want[i].unit);
        assert_string_equal(view->history[i]->text, want[i].text);
    }
    assert_int_equal(view->history[1]->at, NOW + 1000);
    reply_free(keep);

    /* Intake forwards nothing it hears: only its own registration went out. */
    assert_int_equal(sent_count(f, "router-north"), 1);
    assert_int_equal(sent_count(f, "audit"), 1);
}

static void test_final_ticket_keeps_its_state(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    char id[64];
    submit_init(&r, "final-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    router_resolves(f, id, NOW + MINUTE);
    Dispatch__Reply *reply = callback_at(
        f, id, "cb-final", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true, false, NOW + DAY);
    reply_free(reply);

    /* A late escalation: recorded, the ticket stays CLOSED. */
    Dispatch__TicketEscalated escalated = DISPATCH__TICKET_ESCALATED__INIT;
    escalated.level = DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_CITY;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ESCALATED;
    event.ticket_escalated = &escalated;
    assert_int_equal(router_event(f, id, &event, NOW + DAY + 1, "system"), 0);
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = "street-office-9";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    assert_int_equal(router_event(f, id, &event, NOW + DAY + 2, "system"), 0);

    Dispatch__Reply *keep;
    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    assert_string_equal(view->ticket->assigned_unit, "street-office-1");
    assert_int_equal(view->ticket->supervision,
                     DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_NONE);
    assert_int_equal(view->history[view->n_history - 1]->type,
                     DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_DISPATCHED);
    reply_free(keep);
}

static void test_event_for_unknown_ticket_rejected(void **state)
{
    fixture_t *f = *state;
    Dispatch__TicketAccepted accepted = DISPATCH__TICKET_ACCEPTED__INIT;
    accepted.unit_id = "street-office-1";
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &accepted;
    assert_int_equal(router_event(f, "TA-20261125-000404", &event, NOW, "system"), BUS_REJECTED);
    assert_int_equal(router_event(f, "XX-20261125-000001", &event, NOW, "system"), BUS_REJECTED);
    assert_int_equal(router_event(f, "", &event, NOW, "system"), BUS_REJECTED);
    char id65[66];
    memset(id65, 'k', 65);
    id65[65] = '\0';
    assert_int_equal(router_event(f, id65, &event, NOW, "system"), BUS_REJECTED);

    /* Undecodable bytes, an empty body, an event holding nothing. */
    const unsigned char garbage[] = {0xff, 0xff, 0xff};
    assert_int_equal(apply_bytes(f, garbage, sizeof(garbage)), BUS_REJECTED);
    assert_int_equal(apply_bytes(f, "", 0), BUS_REJECTED);

    submit_request_t r;
    char id[64];
    submit_init(&r, "reject-1");
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    assert_int_equal(router_event(f, id, &event, NOW, "system"), BUS_REJECTED);

    /* Events only intake decides are refused from others. */
    Dispatch__TicketClosed closed = DISPATCH__TICKET_CLOSED__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_CLOSED;
    event.ticket_closed = &closed;
    assert_int_equal(router_event(f, id, &event, NOW, "system"), BUS_REJECTED);
    Dispatch__Reply *keep;
    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    assert_int_equal(view->n_history, 1);
    reply_free(keep);

    /* The bus apply function is the same handler. */
    accepted.unit_id = "x";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.event_id = "router-north-77";
    event.ticket_id = "TA-20261125-000404";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &accepted;
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&event.base, &body, &len), 0);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(store_env(f->store), NULL, 0, &txn), 0);
    assert_int_equal(intake_apply_event(f->intake, txn, "router-north", 1, body, len),
                     BUS_REJECTED);
    mdb_txn_abort(txn);
    free(body);
}

/* Construction refuses what it cannot serve. */
static void test_new_refuses_bad_setup(void **state)
{
    fixture_t *f = *state;
    intake_t *other = NULL;
    assert_int_equal(intake_new(f->store, f->bus, f->config, "router-north", NULL, &other),
                     -EINVAL);
    assert_int_equal(intake_new(f->store, f->bus, f->config, "nobody", NULL, &other), -EINVAL);
    intake_options_t options;
    intake_options_init(&options);
    assert_int_equal(options.duplicate_window_minutes, 1440);
    options.duplicate_window_minutes = -1;
    assert_int_equal(intake_new(f->store, f->bus, f->config, "intake-a", &options, &other),
                     -EINVAL);
    assert_null(other);

    config_t *config;
    char err[256];
    char text[sizeof(topology) + 64];
    snprintf(text, sizeof(text), "%s", topology);
    char *prefix = strstr(text, "id_prefix = TA");
    assert_non_null(prefix);
    memcpy(prefix, "id_prefix = t1", 14); /* ids.h wants [A-Z][A-Z0-9]* */
    assert_int_equal(config_parse_string(text, &config, err, sizeof(err)), 0);
    assert_int_equal(intake_new(f->store, f->bus, config, "intake-a", NULL, &other), -EINVAL);
    config_destroy(&config);
}

/* A GetTicket with the lookup code given at submit. */
static Dispatch__Reply *get_public(fixture_t *f, const char *id, const char *code)
{
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = (char *)id;
    get.lookup_code = (char *)code;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.tag = 8;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    return send_at(f, &request, NOW);
}

/* The caller's lookup code opens the public status: the ticket's progress
 * with its personal data masked. A wrong code and an unknown id get the
 * same NOT_FOUND, so ids cannot be probed; a retried submit gets the same
 * code. */
static void test_lookup_code_opens_the_public_status(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "lookup-1");
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *submitted = submit_ok(f, &r, NOW, &keep);
    char id[64], code[64];
    snprintf(id, sizeof(id), "%s", submitted->ticket_id);
    snprintf(code, sizeof(code), "%s", submitted->lookup_code);
    reply_free(keep);
    assert_int_equal(strlen(code), 10);
    assert_int_equal(strspn(code, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"), 10);

    Dispatch__SubmitReply *again = submit_ok(f, &r, NOW + 1000, &keep);
    assert_false(again->created);
    assert_string_equal(again->lookup_code, code);
    reply_free(keep);

    Dispatch__Reply *reply = get_public(f, id, code);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_TICKET);
    const Dispatch__Ticket *ticket = reply->ticket->ticket;
    assert_string_equal(ticket->id, id);
    assert_int_equal(ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    assert_string_equal(ticket->caller_phone, "138****1234");
    assert_string_equal(ticket->caller_name, "W********");
    assert_string_not_equal(ticket->location->address, "12 Renmin Street");
    assert_null(strstr(ticket->description, "noise"));
    assert_string_equal(ticket->client_request_id, "");
    assert_true(reply->ticket->n_history > 0);
    assert_string_equal(reply->ticket->history[0]->actor, "");
    reply_free(reply);

    /* The operator's view is whole. */
    Dispatch__TicketView *view = get_ticket(f, id, &keep);
    assert_string_equal(view->ticket->caller_phone, "13812341234");
    reply_free(keep);

    code[0] = code[0] == 'A' ? 'B' : 'A';
    reply = get_public(f, id, code);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_ERROR);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    char wrong_code[256];
    snprintf(wrong_code, sizeof(wrong_code), "%s", reply->error->message);
    reply_free(reply);
    char unknown[64];
    snprintf(unknown, sizeof(unknown), "%.*s999999", (int)(strlen(id) - 6), id);
    reply = get_public(f, unknown, code);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    char unknown_message[256];
    snprintf(unknown_message, sizeof(unknown_message), "no ticket '%s' with this lookup code",
             unknown);
    assert_string_equal(reply->error->message, unknown_message);
    reply_free(reply);
    snprintf(unknown_message, sizeof(unknown_message), "no ticket '%s' with this lookup code", id);
    assert_string_equal(wrong_code, unknown_message);
}

/* Under CURVE the key decides who sees the caller: a GetTicket from a key
 * without the operator role gets name and phone masked; an operator's key,
 * and the plain endpoint of the hotline's own desk, see them. */
static void test_name_and_phone_only_for_operators(void **state)
{
    fixture_t *f = *state;
    submit_request_t r;
    submit_init(&r, "roles-1");
    char id[64];
    submit_id(f, &r, NOW, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED, id);
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = id;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&request.base, &body, &len), 0);
    auth_actor_t dispatcher = {.kind = AUTH_KIND_PERSON, .roles = AUTH_ROLE_DISPATCHER};
    auth_actor_t desk = {.kind = AUTH_KIND_PERSON, .roles = AUTH_ROLE_OPERATOR};
    const auth_actor_t *actors[3] = {&dispatcher, &desk, NULL};
    const char *phones[3] = {"138****1234", "13812341234", "13812341234"};
    const char *names[3] = {"W********", "Wang Fang", "Wang Fang"};
    for (int k = 0; k < 3; k++) {
        call_t call = {.f = f, .body = body, .len = len, .now = NOW, .actor = actors[k]};
        assert_int_equal(store_write(f->store, call_request_fn, &call), 0);
        bus_batch_done(f->bus, 0);
        assert_int_equal(call.reply->body_case, DISPATCH__REPLY__BODY_TICKET);
        assert_string_equal(call.reply->ticket->ticket->caller_phone, phones[k]);
        assert_string_equal(call.reply->ticket->ticket->caller_name, names[k]);
        reply_free(call.reply);
    }
    free(body);
}

static auth_actor_t key_of(const char *name, auth_kind_t kind, unsigned roles)
{
    auth_actor_t actor = {.kind = kind, .roles = roles};
    snprintf(actor.name, sizeof(actor.name), "%s", name);
    return actor;
}

/* The actor of a step is the key's: a person's key speaks only for
 * itself, a gateway's for the agents behind it (recorded under the
 * gateway), and a key without the operator role registers nothing and
 * reads a ticket only with its lookup code (authz.h). */
static void test_actor_and_rights_come_from_the_key(void **state)
{
    fixture_t *f = *state;
    auth_actor_t agent = key_of("agent-7", AUTH_KIND_PERSON, AUTH_ROLE_OPERATOR);
    auth_actor_t callgen = key_of("callgen", AUTH_KIND_GATEWAY, AUTH_ROLE_OPERATOR);
    auth_actor_t unit = key_of("cy-s1", AUTH_KIND_UNIT, AUTH_ROLE_UNIT);

    submit_request_t r;
    submit_init(&r, "key-1");
    r.request.actor = "agent-9";
    Dispatch__Reply *reply = send_as(f, &r.request, &agent);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_ERROR);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_string_equal(reply->error->field, "actor");
    reply_free(reply);

    const struct {
        const auth_actor_t *key;
        const char *named, *recorded;
    } cases[] = {{&agent, "", "agent-7"},
                 {&agent, "agent-7", "agent-7"},
                 {&callgen, "agent-07", "callgen/agent-07"},
                 {&callgen, "", "callgen"}};
    char id[64] = "", code[16] = "";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char request_id[16];
        snprintf(request_id, sizeof(request_id), "key-%zu", i + 2);
        submit_init(&r, request_id);
        r.request.actor = (char *)cases[i].named;
        r.submit.caller_phone = "13900000000";
        r.location.address = "1 Other Street";
        r.submit.description = "a different matter";
        reply = send_as(f, &r.request, cases[i].key);
        assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_SUBMIT);
        snprintf(id, sizeof(id), "%s", reply->submit->ticket_id);
        snprintf(code, sizeof(code), "%s", reply->submit->lookup_code);
        reply_free(reply);

        Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
        get.ticket_id = id;
        Dispatch__Request request = DISPATCH__REQUEST__INIT;
        request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
        request.get_ticket = &get;
        reply = send_as(f, &request, &agent);
        assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_TICKET);
        assert_true(reply->ticket->n_history > 0);
        assert_string_equal(reply->ticket->history[0]->actor, cases[i].recorded);
        reply_free(reply);
    }

    /* A unit's key registers nothing, and reads only with the code. */
    submit_init(&r, "key-unit");
    r.request.actor = "";
    reply = send_as(f, &r.request, &unit);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_ERROR);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_non_null(strstr(reply->error->message, "may not register a ticket"));
    reply_free(reply);
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = id;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    reply = send_as(f, &request, &unit);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_ERROR);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    reply_free(reply);
    get.lookup_code = code;
    reply = send_as(f, &request, &unit);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_TICKET);
    assert_string_equal(reply->ticket->ticket->id, id);
    reply_free(reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_and_phone_only_for_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_and_rights_come_from_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_code_opens_the_public_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_ids_count_per_local_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_batch_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_in_read_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_oversized_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_too_large_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_missing_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_unknown_enum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_unknown_district, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_bad_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_unknown_ticket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_merged_by_phone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_merged_by_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_merge_after_master_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_merge_outside_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_duplicate_detection_when_window_zero,
                                        setup_no_duplicates, teardown),
        cmocka_unit_test_setup_teardown(test_consult_answered_at_intake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emergency_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_unreachable_closes_without_rating, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_callback_conflict_when_not_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_router_events_update_ticket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_final_ticket_keeps_its_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_for_unknown_ticket_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_refuses_bad_setup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

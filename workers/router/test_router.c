/* The router's handlers on a real LMDB store in a temp dir, without
 * sockets: events, unit actions and admin requests go in as bytes, and the
 * tests read back what is durable (records, deliveries, the bus outboxes). */
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
#include <time.h>

#include "bus.h"
#include "codec.h"
#include "config.h"
#include "harness.h"
#include "refusal.h"
#include "router.h"
#include "store.h"

#define NOW0 1800000000000LL
#define HOUR (3600LL * 1000)
#define MAX_PUSHES 4096

static const char *const TOPOLOGY = "[city]\n"
                                    "name = testcity\n"
                                    "timezone = UTC\n"
                                    "[district.cy]\n"
                                    "name = Chaoyang\n"
                                    "[district.ng]\n"
                                    "name = Nanguan\n"
                                    "[worker.intake-1]\n"
                                    "kind = intake\n"
                                    "state_dir = /nonexistent/intake\n"
                                    "bus = inproc://test-intake-1\n"
                                    "id_prefix = CY\n"
                                    "[worker.router-cy]\n"
                                    "kind = router\n"
                                    "district = cy\n"
                                    "state_dir = /nonexistent/router\n"
                                    "bus = inproc://test-router-cy\n"
                                    "links = intake-1, escalation-cy, audit\n"
                                    "[worker.escalation-cy]\n"
                                    "kind = escalation\n"
                                    "district = cy\n"
                                    "state_dir = /nonexistent/escalation\n"
                                    "bus = inproc://test-escalation-cy\n"
                                    "[worker.audit]\n"
                                    "kind = audit\n"
                                    "state_dir = /nonexistent/audit\n"
                                    "bus = inproc://test-audit\n";

static const char *const UNITS_CSV =
    "id,name,parent_id,level,district,active\n"
    "# Test hierarchy: city -> district -> streets -> community; bureaus; enterprises.\n"
    "cy,Chaoyang District,city,district,cy,1\n" /* parent listed later */
    "city,Test City,,city,,1\n"
    "cy-s1,Street One,cy,street,cy,1\n"
    "cy-s1-c1,Community One,cy-s1,community,cy,1\n"
    "cy-s2,Street Two,cy,street,cy,1\r\n"
    "sanitation,Sanitation Bureau,cy,bureau,cy,1\n"
    "roads,Roads Bureau,cy,bureau,cy,1\n"
    "\n"
    "power,Power Company,city,enterprise,,1\n"
    "water,\"Water Company, \"\"old\"\"\",city,enterprise,,0\n";

static const char *const RULES_CSV =
    "category,area,lead_unit,assisting_units,priority\n"
    "noise,,cy,,0\n"
    "noise,s1,cy-s1,,5\n"
    "garbage,,sanitation,roads;cy-s1-c1,0\n"
    "leak,,water,,0\n"
    "road,,roads,,1\n"
    "road,,cy-s2,,0\n"; /* same key, lower priority: the first is kept */

typedef struct push {
    char peer[128];
    uint64_t seq;
    uint64_t acked;
} push_t;

typedef struct fixture {
    char dir[512];
    void *zmq;
    config_t *config;
    store_t *store;
    bus_t *bus;
    router_t *router;
    router_options_t options;
    int64_t now;
    uint64_t ticket_counter;
    push_t pushes[MAX_PUSHES];
    size_t push_count;
    int push_error;            /* returned by the fake send, when not 0 */
    const auth_actor_t *actor; /* the key requests come with; NULL = plain */
} fixture_t;

/* ------------------------------------------------------------ plumbing */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

static int fake_send(void *ctx, const void *peer, size_t peer_len, const void *body, size_t len)
{
    fixture_t *f = ctx;
    if (f->push_error)
        return f->push_error;
    Dispatch__UnitDelivery *delivery = dispatch__unit_delivery__unpack(NULL, len, body);
    assert_non_null(delivery);
    assert_true(f->push_count < MAX_PUSHES);
    push_t *push = &f->pushes[f->push_count++];
    snprintf(push->peer, sizeof(push->peer), "%.*s", (int)peer_len, (const char *)peer);
    push->seq = delivery->seq;
    push->acked = delivery->acked;
    dispatch__unit_delivery__free_unpacked(delivery, NULL);
    return 0;
}

typedef int (*txn_fn)(fixture_t *f, MDB_txn *txn, void *ctx);

typedef struct batch {
    fixture_t *f;
    txn_fn fn;
    void *ctx;
} batch_t;

static int batch_fn(MDB_txn *txn, void *ctx)
{
    batch_t *batch = ctx;
    int rc = bus_batch_apply(batch->f->bus, txn);
    router_batch_begin(batch->f->router);
    return rc < 0 ? rc : batch->fn(batch->f, txn, batch->ctx);
}

/* One write batch as the loop runs it. */
static int in_batch(fixture_t *f, txn_fn fn, void *ctx)
{
    batch_t batch = {f, fn, ctx};
    int rc = store_write(f->store, batch_fn, &batch);
    bus_batch_done(f->bus, rc);
    router_batch_done(f->router, rc, fake_send, f);
    return rc;
}

static void open_router(fixture_t *f)
{
    assert_int_equal(router_new(f->store, f->bus, f->config, "router-cy", &f->options, &f->router),
                     0);
}

static void setup_store(fixture_t *f)
{
    char err[256];
    assert_int_equal(config_parse_string(TOPOLOGY, &f->config, err, sizeof(err)), 0);
    char state[600];
    snprintf(state, sizeof(state), "%s/state", f->dir);
    assert_int_equal(store_open(state, NULL, &f->store), 0);
    f->zmq = zmq_ctx_new();
    assert_int_equal(bus_new(f->zmq, f->store, "router-cy", NULL, &f->bus), 0);
    assert_int_equal(bus_link_open(f->bus, "intake-1", "inproc://test-intake-1", NULL), 0);
    assert_int_equal(bus_link_open(f->bus, "escalation-cy", "inproc://test-escalation-cy", NULL),
                     0);
    assert_int_equal(bus_link_open(f->bus, "audit", "inproc://test-audit", NULL), 0);
    open_router(f);
}

static int setup_empty(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(harness_tmpdir("router", f->dir, sizeof(f->dir)), 0);
    f->now = NOW0;
    setup_store(f);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    setup_empty(state);
    fixture_t *f = *state;
    write_file(f->dir, "units.csv", UNITS_CSV);
    write_file(f->dir, "rules.csv", RULES_CSV);
    char err[512];
    size_t units = 0, rules = 0;
    int rc = router_seed(f->router, f->dir, &units, &rules, err, sizeof(err));
    if (rc != 0)
        fail_msg("seed: %s", err);
    assert_int_equal(units, 9);
    assert_int_equal(rules, 5);
    return 0;
}

/* The same, with a delivery window of 2 and one return allowed. */
static int setup_small(void **state)
{
    setup(state);
    fixture_t *f = *state;
    router_destroy(&f->router);
    f->options.delivery_window = 2;
    f->options.max_returns = 1;
    open_router(f);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    router_destroy(&f->router);
    bus_destroy(&f->bus);
    store_destroy(&f->store);
    zmq_ctx_term(f->zmq);
    config_destroy(&f->config);
    harness_rmtree(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ events in */

typedef struct raw {
    const void *body;
    size_t len;
    const void *peer;
    size_t peer_len;
    int handler_rc;
    Dispatch__UnitDelivery result;
    Dispatch__AdminReply reply;
    /* copied out of the reply */
    Dispatch__ErrorCode code;
    char message[512];
    char field[128];
    Dispatch__TicketState state;
    bool answered;
    size_t items;
    char item_ids[32][65];
    char item_text[32][256];
    Dispatch__TriageCause item_cause[32];
    char item_area[32][65];
    bool more;
    uint64_t tag;
} raw_t;

static int event_fn(fixture_t *f, MDB_txn *txn, void *ctx)
{
    raw_t *raw = ctx;
    raw->handler_rc = router_handle_event(f->router, txn, raw->body, raw->len, f->now);
    return raw->handler_rc < 0 ? raw->handler_rc : 0;
}

static int event_raw(fixture_t *f, const void *body, size_t len)
{
    raw_t raw = {.body = body, .len = len};
    assert_int_equal(in_batch(f, event_fn, &raw), 0);
    return raw.handler_rc;
}

static int send_event(fixture_t *f, Dispatch__Event *event)
{
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&event->base, &body, &len), 0);
    int rc = event_raw(f, body, len);
    free(body);
    return rc;
}

static void next_ticket_id(fixture_t *f, char *id, size_t len)
{
    snprintf(id, len, "CY-20270115-%06llu", (unsigned long long)++f->ticket_counter);
}

static int register_ticket_full(fixture_t *f, const char *id, const char *category,
                                const char *area, const char *district, bool confidential)
{
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.id = (char *)id;
    ticket.category = (char *)category;
    ticket.area = (char *)area;
    ticket.district = (char *)district;
    ticket.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    ticket.kind = DISPATCH__KIND__KIND_COMPLAINT;
    ticket.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    ticket.caller_name = "张三丰";
    ticket.caller_phone = "13812341234";
    ticket.caller_confidential = confidential;
    ticket.description = "a test request";
    ticket.state = DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED;
    ticket.registered_at = f->now;
    Dispatch__TicketRegistered registered = DISPATCH__TICKET_REGISTERED__INIT;
    registered.ticket = &ticket;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.event_id = "intake-1-1";
    event.ticket_id = (char *)id;
    event.district = (char *)district;
    event.at = f->now;
    event.actor = "op-1";
    event.origin = "intake-1";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    event.ticket_registered = &registered;
    return send_event(f, &event);
}

/* Registers a new ticket of district cy; its id goes to id. */
static void register_ticket(fixture_t *f, char *id, const char *category, const char *area)
{
    next_ticket_id(f, id, 40);
    assert_int_equal(register_ticket_full(f, id, category, area, "cy", false), 0);
}

static int intake_event(fixture_t *f, const char *ticket_id, Dispatch__Event *event)
{
    event->event_id = "intake-1-99";
    event->ticket_id = (char *)ticket_id;
    event->district = "cy";
    event->at = f->now;
    event->actor = "op-1";
    event->origin = "intake-1";
    return send_event(f, event);
}

/* ------------------------------------------------------------ unit actions */

static void copy_error(raw_t *raw, const Dispatch__Error *error)
{
    raw->code = error ? error->code : DISPATCH__ERROR_CODE__ERROR_CODE_OK;
    if (error) {
        snprintf(raw->message, sizeof(raw->message), "%s", error->message);
        snprintf(raw->field, sizeof(raw->field), "%s", error->field);
    }
}

static int action_fn(fixture_t *f, MDB_txn *txn, void *ctx)
{
    raw_t *raw = ctx;
    raw->handler_rc = router_handle_unit_action(f->router, txn, raw->peer, raw->peer_len, f->actor,
                                                raw->body, raw->len, f->now, &raw->result);
    Dispatch__UnitDelivery *result = &raw->result;
    raw->answered = result->body_case == DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT;
    if (raw->answered) {
        assert_int_equal(result->seq, 0);
        /* The result must pack: it goes on the wire as it is. */
        void *bytes;
        size_t len;
        assert_int_equal(codec_encode(&result->base, &bytes, &len), 0);
        Dispatch__UnitDelivery *copy = dispatch__unit_delivery__unpack(NULL, len, bytes);
        assert_non_null(copy);
        char err[128];
        assert_int_equal(codec_validate(&copy->base, err, sizeof(err)), 0);
        dispatch__unit_delivery__free_unpacked(copy, NULL);
        free(bytes);
        copy_error(raw, result->action_result->error);
        raw->state = result->action_result->state;
    }
    return raw->handler_rc < 0 ? raw->handler_rc : 0;
}

static raw_t unit_raw(fixture_t *f, const char *peer, const void *body, size_t len)
{
    raw_t raw = {.body = body, .len = len, .peer = peer, .peer_len = strlen(peer)};
    assert_int_equal(in_batch(f, action_fn, &raw), 0);
    /* REFUSED: not a UnitAction at all; then an error is the answer. */
    assert_true(raw.handler_rc == 0 || (raw.handler_rc == REFUSED && raw.answered && raw.code));
    return raw;
}

static raw_t unit_send(fixture_t *f, const char *peer, Dispatch__UnitAction *action)
{
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&action->base, &body, &len), 0);
    raw_t raw = unit_raw(f, peer, body, len);
    free(body);
    return raw;
}

static int action_counter;

static raw_t sign_for(fixture_t *f, const char *unit, const char *ticket_id)
{
    char action_id[32];
    snprintf(action_id, sizeof(action_id), "a-%d", ++action_counter);
    Dispatch__SignFor body = DISPATCH__SIGN_FOR__INIT;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = (char *)unit;
    action.ticket_id = (char *)ticket_id;
    action.action_id = action_id;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &body;
    return unit_send(f, unit, &action);
}

static raw_t return_ticket(fixture_t *f, const char *unit, const char *ticket_id,
                           const char *suggested)
{
    char action_id[32];
    snprintf(action_id, sizeof(action_id), "a-%d", ++action_counter);
    Dispatch__ReturnTicket body = DISPATCH__RETURN_TICKET__INIT;
    body.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_NOT_OUR_DUTY;
    body.reason = "not ours";
    body.suggested_unit = (char *)suggested;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = (char *)unit;
    action.ticket_id = (char *)ticket_id;
    action.action_id = action_id;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_RETURN_TICKET;
    action.return_ticket = &body;
    return unit_send(f, unit, &action);
}

static raw_t objection(fixture_t *f, const char *unit, const char *ticket_id)
{
    char action_id[32];
    snprintf(action_id, sizeof(action_id), "a-%d", ++action_counter);
    Dispatch__Objection body = DISPATCH__OBJECTION__INIT;
    body.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_WRONG_AREA;
    body.reason = "the pipe is in the next street";
    body.suggested_unit = "cy-s2";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = (char *)unit;
    action.ticket_id = (char *)ticket_id;
    action.action_id = action_id;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_OBJECTION;
    action.objection = &body;
    return unit_send(f, unit, &action);
}

static raw_t resolve(fixture_t *f, const char *unit, const char *ticket_id)
{
    char action_id[32];
    snprintf(action_id, sizeof(action_id), "a-%d", ++action_counter);
    Dispatch__Resolve body = DISPATCH__RESOLVE__INIT;
    body.result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
    body.text = "fixed";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = (char *)unit;
    action.ticket_id = (char *)ticket_id;
    action.action_id = action_id;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_RESOLVE;
    action.resolve = &body;
    return unit_send(f, unit, &action);
}

static raw_t progress_as(fixture_t *f, const char *peer, const char *unit, const char *ticket_id,
                         const char *action_id)
{
    Dispatch__Progress body = DISPATCH__PROGRESS__INIT;
    body.text = "crew on the way";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = (char *)unit;
    action.ticket_id = (char *)ticket_id;
    action.action_id = (char *)action_id;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_PROGRESS;
    action.progress = &body;
    return unit_send(f, peer, &action);
}

static raw_t ack(fixture_t *f, const char *peer, const char *unit, uint64_t seq)
{
    Dispatch__UnitAck body = DISPATCH__UNIT_ACK__INIT;
    body.seq = seq;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = (char *)unit;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_ACK;
    action.ack = &body;
    return unit_send(f, peer, &action);
}

/* ------------------------------------------------------------ admin */

static int admin_fn(fixture_t *f, MDB_txn *txn, void *ctx)
{
    raw_t *raw = ctx;
    raw->handler_rc =
        router_handle_admin(f->router, txn, f->actor, raw->body, raw->len, f->now, &raw->reply);
    Dispatch__AdminReply *reply = &raw->reply;
    raw->tag = reply->tag;
    raw->answered = reply->body_case != DISPATCH__ADMIN_REPLY__BODY__NOT_SET;
    void *bytes;
    size_t len;
    assert_int_equal(codec_encode(&reply->base, &bytes, &len), 0);
    assert_true(len < 64 * 1024);
    free(bytes);
    if (reply->body_case == DISPATCH__ADMIN_REPLY__BODY_ERROR)
        copy_error(raw, reply->error);
    if (reply->body_case == DISPATCH__ADMIN_REPLY__BODY_DONE)
        raw->state = reply->done->state;
    if (reply->body_case == DISPATCH__ADMIN_REPLY__BODY_QUEUE) {
        raw->items = reply->queue->n_items;
        raw->more = reply->queue->more;
        for (size_t i = 0; i < raw->items && i < 32; i++) {
            snprintf(raw->item_ids[i], 65, "%s", reply->queue->items[i]->ticket_id);
            snprintf(raw->item_text[i], 256, "%s", reply->queue->items[i]->text);
            snprintf(raw->item_area[i], 65, "%s", reply->queue->items[i]->area);
            raw->item_cause[i] = reply->queue->items[i]->triage_cause;
        }
    }
    return raw->handler_rc < 0 ? raw->handler_rc : 0;
}

static raw_t admin_raw(fixture_t *f, const void *body, size_t len)
{
    raw_t raw = {.body = body, .len = len};
    assert_int_equal(in_batch(f, admin_fn, &raw), 0);
    assert_int_equal(raw.handler_rc, 0);
    assert_true(raw.answered);
    return raw;
}

static raw_t admin_send(fixture_t *f, Dispatch__AdminRequest *request)
{
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&request->base, &body, &len), 0);
    raw_t raw = admin_raw(f, body, len);
    free(body);
    return raw;
}

static raw_t list_queue(fixture_t *f, Dispatch__Role role, const char *actor,
                        Dispatch__QueueKind kind, const char *unit, uint32_t limit,
                        const char *after)
{
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = kind;
    list.unit_id = (char *)unit;
    list.limit = limit;
    list.after_ticket_id = (char *)after;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = (char *)actor;
    request.role = role;
    request.tag = 7;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    raw_t raw = admin_send(f, &request);
    assert_int_equal(raw.tag, 7);
    return raw;
}

static raw_t list_triage(fixture_t *f)
{
    return list_queue(f, DISPATCH__ROLE__ROLE_DISPATCHER, "disp-1",
                      DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 0, "");
}

static raw_t triage_assign(fixture_t *f, Dispatch__Role role, const char *ticket_id,
                           const char *lead, char **assisting, size_t count)
{
    Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
    assign.ticket_id = (char *)ticket_id;
    assign.lead_unit = (char *)lead;
    assign.assisting_units = assisting;
    assign.n_assisting_units = count;
    assign.note = "the cover belongs to the power company";
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "disp-1";
    request.role = role;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN;
    request.triage_assign = &assign;
    return admin_send(f, &request);
}

static raw_t unit_upsert(fixture_t *f, Dispatch__Role role, const char *id, const char *parent,
                         Dispatch__UnitLevel level, bool active)
{
    Dispatch__Unit unit = DISPATCH__UNIT__INIT;
    unit.id = (char *)id;
    unit.name = "A Unit";
    unit.parent_id = (char *)parent;
    unit.level = level;
    unit.district = "cy";
    unit.active = active;
    Dispatch__UnitUpsert upsert = DISPATCH__UNIT_UPSERT__INIT;
    upsert.unit = &unit;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "admin-1";
    request.role = role;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT;
    request.unit_upsert = &upsert;
    return admin_send(f, &request);
}

static raw_t unit_remove(fixture_t *f, Dispatch__Role role, const char *id)
{
    Dispatch__UnitRemove remove = DISPATCH__UNIT_REMOVE__INIT;
    remove.unit_id = (char *)id;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "admin-1";
    request.role = role;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE;
    request.unit_remove = &remove;
    return admin_send(f, &request);
}

static raw_t rule_upsert(fixture_t *f, Dispatch__Role role, const char *district,
                         const char *category, const char *area, const char *lead)
{
    Dispatch__RoutingRule rule = DISPATCH__ROUTING_RULE__INIT;
    rule.district = (char *)district;
    rule.category = (char *)category;
    rule.area = (char *)area;
    rule.lead_unit = (char *)lead;
    Dispatch__RuleUpsert upsert = DISPATCH__RULE_UPSERT__INIT;
    upsert.rule = &rule;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "admin-1";
    request.role = role;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT;
    request.rule_upsert = &upsert;
    return admin_send(f, &request);
}

static raw_t rule_remove(fixture_t *f, const char *category, const char *area)
{
    Dispatch__RuleRemove remove = DISPATCH__RULE_REMOVE__INIT;
    remove.category = (char *)category;
    remove.area = (char *)area;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "admin-1";
    request.role = DISPATCH__ROLE__ROLE_ADMIN;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE;
    request.rule_remove = &remove;
    return admin_send(f, &request);
}

/* ------------------------------------------------------------ reading back */

typedef struct seen {
    size_t count;
    uint64_t seqs[256];
    Dispatch__UnitDelivery__BodyCase kinds[256];
    Dispatch__HandlingRole roles[256];
    Dispatch__DispatchCause causes[256];
    char tickets[256][65];
    char caller_phone[256][32];
} seen_t;

static int collect_delivery(const Dispatch__UnitDelivery *delivery, void *ctx)
{
    seen_t *seen = ctx;
    if (seen->count == 256)
        return 1;
    size_t i = seen->count++;
    seen->seqs[i] = delivery->seq;
    seen->kinds[i] = delivery->body_case;
    snprintf(seen->tickets[i], 65, "%s", delivery->ticket_id);
    seen->roles[i] = DISPATCH__HANDLING_ROLE__HANDLING_ROLE_UNSPECIFIED;
    seen->causes[i] = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_UNSPECIFIED;
    seen->caller_phone[i][0] = '\0';
    if (delivery->body_case == DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED) {
        seen->roles[i] = delivery->dispatched->role;
        seen->causes[i] = delivery->dispatched->cause;
        snprintf(seen->caller_phone[i], 32, "%s", delivery->dispatched->ticket->caller_phone);
    }
    if (delivery->body_case == DISPATCH__UNIT_DELIVERY__BODY_REOPENED)
        seen->roles[i] = delivery->reopened->role;
    return 0;
}

static seen_t pending(fixture_t *f, const char *unit, uint64_t from)
{
    seen_t seen = {0};
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    int n = router_pending_deliveries(f->router, txn, unit, from, collect_delivery, &seen);
    store_read_end(&txn);
    assert_int_equal(n, (int)seen.count);
    return seen;
}

/* The last delivery of the unit (after all earlier ones). */
static Dispatch__UnitDelivery__BodyCase last_kind(fixture_t *f, const char *unit)
{
    seen_t seen = pending(f, unit, 1);
    return seen.count ? seen.kinds[seen.count - 1] : DISPATCH__UNIT_DELIVERY__BODY__NOT_SET;
}

/* Events in the outbox of link peer, optionally only about ticket_id and
 * of one kind; the last one of them goes to *last (caller frees). */
static size_t count_events(fixture_t *f, const char *peer, const char *ticket_id,
                           Dispatch__Event__BodyCase kind, Dispatch__Event **last)
{
    char name[128];
    snprintf(name, sizeof(name), "outbox.%s", peer);
    MDB_dbi dbi;
    assert_int_equal(store_dbi(f->store, name, 0, &dbi), 0);
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    MDB_cursor *cursor;
    assert_int_equal(mdb_cursor_open(txn, dbi, &cursor), 0);
    MDB_val k, v;
    size_t count = 0;
    if (last)
        *last = NULL;
    int op = MDB_FIRST;
    while (mdb_cursor_get(cursor, &k, &v, op) == 0) {
        op = MDB_NEXT;
        Dispatch__Event *event = dispatch__event__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(event);
        bool match = (!ticket_id || strcmp(event->ticket_id, ticket_id) == 0) &&
                     (kind == DISPATCH__EVENT__BODY__NOT_SET || event->body_case == kind);
        if (match) {
            count++;
            assert_string_equal(event->origin, "router-cy");
            assert_string_equal(event->district, "cy");
            assert_true(event->at >= NOW0 && event->at <= f->now);
            assert_true(strncmp(event->event_id, "router-cy-", 10) == 0);
        }
        if (match && last) {
            if (*last)
                dispatch__event__free_unpacked(*last, NULL);
            *last = event;
        } else {
            dispatch__event__free_unpacked(event, NULL);
        }
    }
    mdb_cursor_close(cursor);
    store_read_end(&txn);
    return count;
}

static size_t events_of(fixture_t *f, const char *ticket_id, Dispatch__Event__BodyCase kind)
{
    size_t audit = count_events(f, "audit", ticket_id, kind, NULL);
    /* Every event goes to the owning intake, escalation and audit alike. */
    assert_int_equal(count_events(f, "intake-1", ticket_id, kind, NULL), audit);
    assert_int_equal(count_events(f, "escalation-cy", ticket_id, kind, NULL), audit);
    return audit;
}

static Dispatch__Event *last_event(fixture_t *f, const char *ticket_id,
                                   Dispatch__Event__BodyCase kind)
{
    Dispatch__Event *event;
    assert_true(count_events(f, "audit", ticket_id, kind, &event) > 0);
    return event;
}

static raw_t unit_list(fixture_t *f, const char *unit)
{
    return list_queue(f, DISPATCH__ROLE__ROLE_UNIT, unit, DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT,
                      unit, 0, "");
}

static bool listed(const raw_t *raw, const char *ticket_id)
{
    for (size_t i = 0; i < raw->items && i < 32; i++)
        if (strcmp(raw->item_ids[i], ticket_id) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------ routing */

static void test_specific_rule_beats_default(void **state)
{
    fixture_t *f = *state;
    char in_s1[40], elsewhere[40];
    register_ticket(f, in_s1, "noise", "s1");
    register_ticket(f, elsewhere, "noise", "s9");

    seen_t s1 = pending(f, "cy-s1", 1);
    assert_int_equal(s1.count, 1);
    assert_string_equal(s1.tickets[0], in_s1);
    assert_int_equal(s1.roles[0], DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD);
    assert_int_equal(s1.causes[0], DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE);
    /* Not confidential: the unit sees the caller in full. */
    assert_string_equal(s1.caller_phone[0], "13812341234");

    seen_t district = pending(f, "cy", 1);
    assert_int_equal(district.count, 1);
    assert_string_equal(district.tickets[0], elsewhere);

    Dispatch__Event *event = last_event(f, in_s1, DISPATCH__EVENT__BODY_TICKET_DISPATCHED);
    assert_string_equal(event->ticket_dispatched->unit_id, "cy-s1");
    assert_int_equal(event->ticket_dispatched->cause,
                     DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE);
    assert_string_equal(event->actor, "router");
    /* What escalation needs for the deadline table travels with it. */
    assert_int_equal(event->ticket_dispatched->kind, DISPATCH__KIND__KIND_COMPLAINT);
    assert_int_equal(event->ticket_dispatched->urgency, DISPATCH__URGENCY__URGENCY_NORMAL);
    assert_string_equal(event->ticket_dispatched->category, "noise");
    assert_string_equal(event->ticket_dispatched->area, "s1");
    assert_int_equal(event->ticket_dispatched->registered_at, NOW0);
    dispatch__event__free_unpacked(event, NULL);
    assert_int_equal(events_of(f, in_s1, DISPATCH__EVENT__BODY__NOT_SET), 1);

    /* Of two rules with one key in the file, the higher priority was kept. */
    char road[40];
    register_ticket(f, road, "road", "");
    assert_int_equal(pending(f, "roads", 1).count, 1);
    assert_int_equal(pending(f, "cy-s2", 1).count, 0);
}

static void test_co_handling(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "garbage", "s2");
    seen_t lead = pending(f, "sanitation", 1);
    seen_t roads = pending(f, "roads", 1);
    seen_t community = pending(f, "cy-s1-c1", 1);
    assert_int_equal(lead.count, 1);
    assert_int_equal(lead.roles[0], DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD);
    assert_int_equal(roads.count, 1);
    assert_int_equal(roads.roles[0], DISPATCH__HANDLING_ROLE__HANDLING_ROLE_ASSIST);
    assert_int_equal(community.count, 1);
    assert_int_equal(community.roles[0], DISPATCH__HANDLING_ROLE__HANDLING_ROLE_ASSIST);

    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_DISPATCHED);
    assert_string_equal(event->ticket_dispatched->unit_id, "sanitation");
    assert_int_equal(event->ticket_dispatched->n_assisting_units, 2);
    assert_string_equal(event->ticket_dispatched->assisting_units[0], "roads");
    assert_string_equal(event->ticket_dispatched->assisting_units[1], "cy-s1-c1");
    dispatch__event__free_unpacked(event, NULL);

    /* An assisting unit signs for (recorded) and reports progress, but may
     * neither resolve nor return. */
    raw_t raw = sign_for(f, "roads", id);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ACCEPTED), 0);
    raw = progress_as(f, "roads", "roads", id, "p-1");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_PROGRESS_REPORTED), 1);
    assert_int_equal(resolve(f, "roads", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_int_equal(return_ticket(f, "roads", id, "").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    /* The assisting units list it as theirs. */
    raw = unit_list(f, "roads");
    assert_true(listed(&raw, id));
    assert_string_equal(raw.item_text[0], "assisting");
}

static void test_no_rule_and_inactive_unit_go_to_triage(void **state)
{
    fixture_t *f = *state;
    char no_rule[40], inactive[40], unclassified[40];
    register_ticket(f, no_rule, "manhole", "s1");
    register_ticket(f, inactive, "leak", "");
    register_ticket(f, unclassified, "", "");

    Dispatch__Event *event = last_event(f, no_rule, DISPATCH__EVENT__BODY_TICKET_TRIAGED);
    assert_int_equal(event->ticket_triaged->cause, DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_NO_RULE);
    dispatch__event__free_unpacked(event, NULL);
    event = last_event(f, inactive, DISPATCH__EVENT__BODY_TICKET_TRIAGED);
    assert_int_equal(event->ticket_triaged->cause,
                     DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNIT_INACTIVE);
    dispatch__event__free_unpacked(event, NULL);
    assert_int_equal(events_of(f, no_rule, DISPATCH__EVENT__BODY_TICKET_DISPATCHED), 0);
    assert_int_equal(pending(f, "water", 1).count, 0);

    raw_t queue = list_triage(f);
    assert_int_equal(queue.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(queue.items, 3);
    assert_false(queue.more);
    assert_string_equal(queue.item_ids[0], no_rule);
    assert_int_equal(queue.item_cause[0], DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_NO_RULE);
    assert_string_equal(queue.item_area[0], "s1");
    assert_non_null(strstr(queue.item_text[0], "no routing rule"));
    assert_int_equal(queue.item_cause[1], DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNIT_INACTIVE);

    /* Paging: one at a time. */
    raw_t page = list_queue(f, DISPATCH__ROLE__ROLE_SUPERVISOR, "sup-1",
                            DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 1, "");
    assert_int_equal(page.items, 1);
    assert_true(page.more);
    page = list_queue(f, DISPATCH__ROLE__ROLE_SUPERVISOR, "sup-1",
                      DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 5, no_rule);
    assert_int_equal(page.items, 2);
    assert_string_equal(page.item_ids[0], inactive);
    assert_false(page.more);
}

static void test_duplicate_registration_dispatches_once(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    assert_int_equal(register_ticket_full(f, id, "noise", "s1", "cy", false), 0);
    assert_int_equal(register_ticket_full(f, id, "garbage", "", "cy", false), 0);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_DISPATCHED), 1);
    assert_int_equal(pending(f, "cy-s1", 1).count, 1);
    assert_int_equal(pending(f, "sanitation", 1).count, 0);

    /* A ticket of another district is recorded, not routed. */
    char other[40];
    next_ticket_id(f, other, sizeof(other));
    assert_int_equal(register_ticket_full(f, other, "noise", "s1", "ng", false), 0);
    assert_int_equal(events_of(f, other, DISPATCH__EVENT__BODY__NOT_SET), 0);
    assert_int_equal(pending(f, "cy-s1", 1).count, 1);
}

static void test_manhole_cover_to_power_company(void **state)
{
    fixture_t *f = *state;
    char id[40];
    /* Unknown owner of a manhole cover: no rule, a dispatcher decides. */
    next_ticket_id(f, id, sizeof(id));
    assert_int_equal(register_ticket_full(f, id, "manhole", "s2", "cy", true), 0);
    raw_t queue = list_triage(f);
    assert_int_equal(queue.items, 1);
    assert_string_equal(queue.item_ids[0], id);

    /* Who may assign, and to whom. */
    assert_int_equal(triage_assign(f, DISPATCH__ROLE__ROLE_OPERATOR, id, "power", NULL, 0).code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_int_equal(triage_assign(f, DISPATCH__ROLE__ROLE_UNIT, id, "power", NULL, 0).code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_int_equal(triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, id, "water", NULL, 0).code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    assert_int_equal(triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, id, "nobody", NULL, 0).code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    char *twice[] = {"roads", "roads"};
    raw_t raw = triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, id, "power", twice, 2);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    assert_string_equal(raw.field, "triage_assign.assisting_units");
    char *self_assist[] = {"power"};
    assert_int_equal(
        triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, id, "power", self_assist, 1).code,
        DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    assert_int_equal(
        triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, "CY-20270115-999999", "power", NULL, 0)
            .code,
        DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);

    char *assisting[] = {"cy-s2"};
    raw = triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, id, "power", assisting, 1);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED);

    seen_t power = pending(f, "power", 1);
    assert_int_equal(power.count, 1);
    assert_int_equal(power.roles[0], DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD);
    assert_int_equal(power.causes[0], DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_TRIAGE);
    /* The caller asked not to be disclosed: masked for units. */
    assert_string_equal(power.caller_phone[0], "138****1234");
    assert_int_equal(pending(f, "cy-s2", 1).roles[0],
                     DISPATCH__HANDLING_ROLE__HANDLING_ROLE_ASSIST);

    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TRIAGE_ASSIGNED);
    assert_string_equal(event->triage_assigned->lead_unit, "power");
    assert_string_equal(event->actor, "disp-1");
    dispatch__event__free_unpacked(event, NULL);
    event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_DISPATCHED);
    assert_int_equal(event->ticket_dispatched->cause,
                     DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_TRIAGE);
    assert_string_equal(event->ticket_dispatched->unit_id, "power");
    dispatch__event__free_unpacked(event, NULL);

    assert_int_equal(list_triage(f).items, 0);
    /* No longer in triage: a second assignment is a conflict. */
    assert_int_equal(triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, id, "roads", NULL, 0).code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    /* The power company works it. */
    assert_int_equal(sign_for(f, "power", id).state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_int_equal(resolve(f, "power", id).state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
}

/* ------------------------------------------------------------ unit actions */

static auth_actor_t key_of(const char *name, auth_kind_t kind, unsigned roles, const char *unit)
{
    auth_actor_t actor = {.kind = kind, .roles = roles};
    snprintf(actor.name, sizeof(actor.name), "%s", name);
    snprintf(actor.unit, sizeof(actor.unit), "%s", unit ? unit : "");
    return actor;
}

/* The unit a key names is the unit it acts for, whatever the action says. */
static void test_unit_key_acts_for_its_unit_only(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    auth_actor_t other = key_of("cy-s2", AUTH_KIND_UNIT, AUTH_ROLE_UNIT, "cy-s2");
    f->actor = &other;
    raw_t raw = sign_for(f, "cy-s1", id);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_string_equal(raw.field, "unit_id");
    assert_non_null(strstr(raw.message, "key cy-s2 does not act for unit cy-s1"));
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ACCEPTED), 0);

    auth_actor_t own = key_of("cy-s1", AUTH_KIND_UNIT, AUTH_ROLE_UNIT, "cy-s1");
    f->actor = &own;
    assert_int_equal(sign_for(f, "cy-s1", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    /* A person's key is no unit's. */
    auth_actor_t person = key_of("disp-1", AUTH_KIND_PERSON, AUTH_ROLE_DISPATCHER, NULL);
    f->actor = &person;
    assert_int_equal(resolve(f, "cy-s1", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    /* A gateway of units without the unit role acts for none. */
    auth_actor_t roleless = key_of("units", AUTH_KIND_UNIT_GATEWAY, AUTH_ROLE_DISPATCHER, NULL);
    f->actor = &roleless;
    raw = resolve(f, "cy-s1", id);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_non_null(strstr(raw.message, "may not act for a unit"));
    /* The simulator's gateway key acts for any unit. */
    auth_actor_t gateway = key_of("units", AUTH_KIND_UNIT_GATEWAY, AUTH_ROLE_UNIT, NULL);
    f->actor = &gateway;
    assert_int_equal(resolve(f, "cy-s1", id).state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
    f->actor = NULL;
}

/* An admin request speaks for its key: another actor_id, or a role the key
 * does not hold, is refused before anything is served. */
static void test_admin_actor_and_role_come_from_the_key(void **state)
{
    fixture_t *f = *state;
    auth_actor_t dispatcher = key_of("disp-1", AUTH_KIND_PERSON, AUTH_ROLE_DISPATCHER, NULL);
    f->actor = &dispatcher;
    assert_int_equal(list_triage(f).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    raw_t raw = list_queue(f, DISPATCH__ROLE__ROLE_DISPATCHER, "sup-1",
                           DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, NULL, 10, NULL);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_string_equal(raw.field, "actor_id");
    auth_actor_t not_admin = key_of("admin-1", AUTH_KIND_PERSON, AUTH_ROLE_DISPATCHER, NULL);
    f->actor = &not_admin;
    raw = unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy-s9", "cy",
                      DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET, true);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_string_equal(raw.field, "role");
    assert_non_null(strstr(raw.message, "role ADMIN is not a role of admin-1"));

    auth_actor_t admin = key_of("admin-1", AUTH_KIND_PERSON, AUTH_ROLE_ADMIN, NULL);
    f->actor = &admin;
    assert_int_equal(unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy-s9", "cy",
                                 DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET, true)
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    f->actor = NULL;
}

static void test_sign_for_return_reroute_then_triage(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    raw_t raw = sign_for(f, "cy-s1", id);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ACCEPTED), 1);
    /* Signing again is a conflict (a new action, not a replay). */
    assert_int_equal(sign_for(f, "cy-s1", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);

    /* First return: the category default's lead (cy) is next. */
    f->now += HOUR;
    raw = return_ticket(f, "cy-s1", id, "");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_RETURNED), 1);
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_REROUTED);
    assert_string_equal(event->ticket_rerouted->from_unit, "cy-s1");
    assert_string_equal(event->ticket_rerouted->to_unit, "cy");
    dispatch__event__free_unpacked(event, NULL);
    event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_DISPATCHED);
    assert_int_equal(event->ticket_dispatched->cause,
                     DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REROUTE);
    assert_string_equal(event->ticket_dispatched->unit_id, "cy");
    dispatch__event__free_unpacked(event, NULL);
    assert_int_equal(last_kind(f, "cy-s1"), DISPATCH__UNIT_DELIVERY__BODY_WITHDRAWN);
    seen_t cy = pending(f, "cy", 1);
    assert_int_equal(cy.count, 1);
    assert_int_equal(cy.causes[0], DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REROUTE);
    /* The returning unit lost it: it may not act on it any more. */
    assert_int_equal(sign_for(f, "cy-s1", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_false(listed((raw_t[]){unit_list(f, "cy-s1")}, id));

    /* Second return reaches --max-returns (2): triage. */
    raw = return_ticket(f, "cy", id, "cy-s2");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE);
    event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_TRIAGED);
    assert_int_equal(event->ticket_triaged->cause, DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_RETURNED);
    assert_string_equal(event->ticket_triaged->from_unit, "cy");
    dispatch__event__free_unpacked(event, NULL);
    assert_int_equal(last_kind(f, "cy"), DISPATCH__UNIT_DELIVERY__BODY_WITHDRAWN);
    raw_t queue = list_triage(f);
    assert_int_equal(queue.items, 1);
    assert_int_equal(queue.item_cause[0], DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_RETURNED);
}

static void test_return_candidates(void **state)
{
    fixture_t *f = *state;
    /* The suggestion comes first when it can take tickets. */
    char suggested[40];
    register_ticket(f, suggested, "noise", "s1");
    assert_int_equal(return_ticket(f, "cy-s1", suggested, "power").state,
                     DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED);
    assert_int_equal(pending(f, "power", 1).count, 1);

    /* An inactive suggestion is skipped; the default's lead is the
     * returning unit itself, so the parent (cy) is next. */
    char parent[40];
    register_ticket(f, parent, "garbage", "");
    assert_int_equal(return_ticket(f, "sanitation", parent, "water").state,
                     DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED);
    Dispatch__Event *event = last_event(f, parent, DISPATCH__EVENT__BODY_TICKET_REROUTED);
    assert_string_equal(event->ticket_rerouted->to_unit, "cy");
    dispatch__event__free_unpacked(event, NULL);
    /* The assisting units stay with the ticket. */
    event = last_event(f, parent, DISPATCH__EVENT__BODY_TICKET_DISPATCHED);
    assert_int_equal(event->ticket_dispatched->n_assisting_units, 2);
    dispatch__event__free_unpacked(event, NULL);

    /* A city-level parent cannot handle: power's parent is the city. */
    char city[40];
    register_ticket(f, city, "manhole", "");
    char *none[1];
    assert_int_equal(
        triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, city, "power", none, 0).state,
        DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED);
    assert_int_equal(return_ticket(f, "power", city, "").state,
                     DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE);
}

static void test_return_window_and_objection(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    /* Within the window an objection is refused: return instead. */
    raw_t raw = objection(f, "cy-s1", id);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    assert_int_equal(sign_for(f, "cy-s1", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);

    f->now += 25 * HOUR; /* the default window is 24 h */
    raw = return_ticket(f, "cy-s1", id, "");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    assert_non_null(strstr(raw.message, "Objection"));
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_RETURNED), 0);

    raw = objection(f, "cy-s1", id);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE);
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_TRIAGED);
    assert_int_equal(event->ticket_triaged->cause, DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_OBJECTION);
    assert_string_equal(event->actor, "cy-s1");
    dispatch__event__free_unpacked(event, NULL);
    raw_t queue = list_triage(f);
    assert_int_equal(queue.items, 1);
    assert_int_equal(queue.item_cause[0], DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_OBJECTION);
    assert_non_null(strstr(queue.item_text[0], "next street"));
    /* The dispatcher decides the objection: back to the street office. */
    assert_int_equal(triage_assign(f, DISPATCH__ROLE__ROLE_DISPATCHER, id, "cy-s1", NULL, 0).code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
}

static void test_resolve_reopen_close(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    assert_int_equal(resolve(f, "cy-s1", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    assert_int_equal(sign_for(f, "cy-s1", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    raw_t raw = resolve(f, "cy-s1", id);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_RESOLVED);
    assert_string_equal(event->ticket_resolved->unit_id, "cy-s1");
    assert_int_equal(event->ticket_resolved->result,
                     DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED);
    dispatch__event__free_unpacked(event, NULL);
    /* Resolved is still open until the callback. */
    raw_t list = unit_list(f, "cy-s1");
    assert_true(listed(&list, id));

    /* Callback: unsatisfied -> reopened -> back to the same lead. */
    Dispatch__CalledBack called = DISPATCH__CALLED_BACK__INIT;
    called.satisfaction = DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED;
    Dispatch__Event in = DISPATCH__EVENT__INIT;
    in.body_case = DISPATCH__EVENT__BODY_CALLED_BACK;
    in.called_back = &called;
    assert_int_equal(intake_event(f, id, &in), 0);
    Dispatch__TicketReopened reopened = DISPATCH__TICKET_REOPENED__INIT;
    reopened.reason = "still noisy at night";
    reopened.reopen_count = 1;
    reopened.satisfaction = DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED;
    in.body_case = DISPATCH__EVENT__BODY_TICKET_REOPENED;
    in.ticket_reopened = &reopened;
    f->now += HOUR;
    assert_int_equal(intake_event(f, id, &in), 0);
    seen_t seen = pending(f, "cy-s1", 1);
    assert_int_equal(seen.kinds[seen.count - 1], DISPATCH__UNIT_DELIVERY__BODY_REOPENED);
    assert_int_equal(seen.roles[seen.count - 1], DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD);
    event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_DISPATCHED);
    assert_int_equal(event->ticket_dispatched->cause,
                     DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REOPEN);
    dispatch__event__free_unpacked(event, NULL);
    /* It is worked again: sign for, resolve. */
    assert_int_equal(sign_for(f, "cy-s1", id).state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_int_equal(resolve(f, "cy-s1", id).state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);

    /* Closed: off the unit's list; actions are conflicts now. */
    Dispatch__TicketClosed closed = DISPATCH__TICKET_CLOSED__INIT;
    closed.satisfaction = DISPATCH__SATISFACTION__SATISFACTION_SATISFIED;
    in.body_case = DISPATCH__EVENT__BODY_TICKET_CLOSED;
    in.ticket_closed = &closed;
    assert_int_equal(intake_event(f, id, &in), 0);
    list = unit_list(f, "cy-s1");
    assert_false(listed(&list, id));
    raw = progress_as(f, "cy-s1", "cy-s1", id, "late");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    assert_int_equal(raw.state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    /* A reopen after the close can never apply. */
    in.body_case = DISPATCH__EVENT__BODY_TICKET_REOPENED;
    in.ticket_reopened = &reopened;
    assert_int_equal(intake_event(f, id, &in), BUS_REJECTED);
}

static void test_reopen_with_inactive_lead_goes_to_triage(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "road", "");
    assert_int_equal(sign_for(f, "roads", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(resolve(f, "roads", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "roads", "cy",
                                 DISPATCH__UNIT_LEVEL__UNIT_LEVEL_BUREAU, false)
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    Dispatch__TicketReopened reopened = DISPATCH__TICKET_REOPENED__INIT;
    reopened.reason = "not solved";
    Dispatch__Event in = DISPATCH__EVENT__INIT;
    in.body_case = DISPATCH__EVENT__BODY_TICKET_REOPENED;
    in.ticket_reopened = &reopened;
    assert_int_equal(intake_event(f, id, &in), 0);
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_TRIAGED);
    assert_int_equal(event->ticket_triaged->cause,
                     DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNIT_INACTIVE);
    dispatch__event__free_unpacked(event, NULL);
}

static void test_forbidden_actions(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    /* Another unit's ticket. */
    raw_t raw = sign_for(f, "roads", id);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_string_equal(raw.field, "ticket_id");
    /* unit_id that is not the routing id's unit. */
    raw = progress_as(f, "roads", "cy-s1", id, "x-1");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_string_equal(raw.field, "unit_id");
    raw = progress_as(f, "cy-s1x", "cy-s1", id, "x-2");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    /* A CLI session of the unit: "unit/session" is the unit. */
    raw = progress_as(f, "cy-s1/cli-7", "cy-s1", id, "x-3");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    /* An unregistered unit. */
    raw = progress_as(f, "ghost", "ghost", id, "x-4");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    /* An unknown ticket. */
    raw = progress_as(f, "cy-s1", "cy-s1", "CY-20270115-424242", "x-5");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_PROGRESS_REPORTED), 1);
}

static void test_idempotent_replay(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    Dispatch__SignFor body = DISPATCH__SIGN_FOR__INIT;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = "cy-s1";
    action.ticket_id = id;
    action.action_id = "sign-once";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &body;
    raw_t first = unit_send(f, "cy-s1", &action);
    raw_t again = unit_send(f, "cy-s1", &action);
    assert_int_equal(first.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(again.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(again.state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ACCEPTED), 1);

    /* A replay is answered from the record even after the state moved on. */
    assert_int_equal(resolve(f, "cy-s1", id).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    again = unit_send(f, "cy-s1", &action);
    assert_int_equal(again.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(again.state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);

    assert_int_equal(progress_as(f, "cy-s1", "cy-s1", id, "p").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    /* A refused action is not recorded: the same id may apply later. */
    char other[40];
    register_ticket(f, other, "noise", "s1");
    assert_int_equal(progress_as(f, "cy-s1", "cy-s1", other, "p").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(progress_as(f, "cy-s1", "cy-s1", other, "p").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(events_of(f, other, DISPATCH__EVENT__BODY_PROGRESS_REPORTED), 1);
}

static void test_extension_request_and_decisions(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    Dispatch__ExtensionRequest body = DISPATCH__EXTENSION_REQUEST__INIT;
    body.extra_working_days = 3;
    body.reason = "waiting for parts";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = "cy-s1";
    action.ticket_id = id;
    action.action_id = "ext-1";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_EXTENSION_REQUEST;
    action.extension_request = &body;
    assert_int_equal(unit_send(f, "cy-s1", &action).code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT); /* not signed for */
    sign_for(f, "cy-s1", id);
    body.requested_deadline = f->now + HOUR;
    assert_int_equal(unit_send(f, "cy-s1", &action).code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE); /* both given */
    body.requested_deadline = 0;
    assert_int_equal(unit_send(f, "cy-s1", &action).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_EXTENSION_REQUESTED);
    assert_string_equal(event->extension_requested->request_id, "ext-1");
    assert_int_equal(event->extension_requested->extra_working_days, 3);
    dispatch__event__free_unpacked(event, NULL);

    /* Escalation's answers become deliveries to the lead. */
    Dispatch__ExtensionGranted granted = DISPATCH__EXTENSION_GRANTED__INIT;
    granted.request_id = "ext-1";
    granted.new_deadline_handle = f->now + 72 * HOUR;
    Dispatch__Event in = DISPATCH__EVENT__INIT;
    in.body_case = DISPATCH__EVENT__BODY_EXTENSION_GRANTED;
    in.extension_granted = &granted;
    assert_int_equal(intake_event(f, id, &in), 0);
    assert_int_equal(last_kind(f, "cy-s1"), DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION);
    Dispatch__ReminderSent reminder = DISPATCH__REMINDER_SENT__INIT;
    reminder.deadline_kind = DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE;
    reminder.deadline = f->now + HOUR;
    reminder.text = "due soon";
    in.body_case = DISPATCH__EVENT__BODY_REMINDER_SENT;
    in.reminder_sent = &reminder;
    assert_int_equal(intake_event(f, id, &in), 0);
    assert_int_equal(last_kind(f, "cy-s1"), DISPATCH__UNIT_DELIVERY__BODY_REMINDER);
    Dispatch__SignedOff signed_off = DISPATCH__SIGNED_OFF__INIT;
    signed_off.leader = "mayor";
    signed_off.instruction = "solve it this week";
    in.body_case = DISPATCH__EVENT__BODY_SIGNED_OFF;
    in.signed_off = &signed_off;
    assert_int_equal(intake_event(f, id, &in), 0);
    assert_int_equal(last_kind(f, "cy-s1"), DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF);
    Dispatch__TicketEscalated escalated = DISPATCH__TICKET_ESCALATED__INIT;
    escalated.level = DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_CITY;
    in.body_case = DISPATCH__EVENT__BODY_TICKET_ESCALATED;
    in.ticket_escalated = &escalated;
    assert_int_equal(intake_event(f, id, &in), 0);
    /* Events about an unknown ticket can never apply. */
    assert_int_equal(intake_event(f, "CY-20270115-777777", &in), BUS_REJECTED);
}

/* ------------------------------------------------------------ deliveries */

static void test_delivery_queue_seqs_and_acks(void **state)
{
    fixture_t *f = *state;
    char ids[5][40];
    for (int i = 0; i < 5; i++)
        register_ticket(f, ids[i], "noise", "s1");
    seen_t seen = pending(f, "cy-s1", 1);
    assert_int_equal(seen.count, 5);
    for (size_t i = 0; i < seen.count; i++)
        assert_int_equal(seen.seqs[i], i + 1); /* gapless from 1 */

    /* An ack deletes what it covers and makes the routing id the session:
     * a new session gets one delivery (the unit may still hold what was
     * pushed before), and the ack of that one opens the window. */
    raw_t raw = ack(f, "cy-s1", "cy-s1", 2);
    assert_false(raw.answered);
    seen = pending(f, "cy-s1", 1);
    assert_int_equal(seen.count, 3);
    assert_int_equal(seen.seqs[0], 3);
    assert_int_equal(f->push_count, 1);
    assert_int_equal(f->pushes[0].seq, 3);
    assert_string_equal(f->pushes[0].peer, "cy-s1");
    assert_int_equal(f->pushes[0].acked, 2); /* the unit's durable position */
    ack(f, "cy-s1", "cy-s1", 3);
    assert_int_equal(f->push_count, 3);
    assert_int_equal(f->pushes[1].seq, 4);
    assert_int_equal(f->pushes[2].seq, 5);

    /* A new delivery goes out at once to the live session. */
    char more[40];
    register_ticket(f, more, "noise", "s1");
    assert_int_equal(f->push_count, 4);
    assert_int_equal(f->pushes[3].seq, 6);

    /* A repeated ack (a heartbeat, a duplicate dropped) resends nothing
     * within the ack timeout (test_deliveries: what happens after it). */
    ack(f, "cy-s1", "cy-s1", 3);
    assert_int_equal(f->push_count, 4);

    /* A push that finds the unit gone marks it offline: nothing more is
     * pushed until it acks again, then it gets everything pending. */
    f->push_error = -EHOSTUNREACH;
    register_ticket(f, more, "noise", "s1");
    f->push_error = 0;
    size_t before = f->push_count;
    register_ticket(f, more, "noise", "s1");
    assert_int_equal(f->push_count, before);
    ack(f, "cy-s1/cli-2", "cy-s1", 6);
    assert_int_equal(f->push_count, before + 1);
    assert_int_equal(f->pushes[before].seq, 7);
    assert_string_equal(f->pushes[before].peer, "cy-s1/cli-2");
    ack(f, "cy-s1/cli-2", "cy-s1", 7);
    assert_int_equal(f->push_count, before + 2);
    assert_int_equal(f->pushes[before + 1].seq, 8);

    /* A unit that lost its state acks 0: it gets what is pending, told
     * that everything up to 7 is gone; nothing is rolled back. */
    before = f->push_count;
    ack(f, "cy-s1", "cy-s1", 0);
    assert_int_equal(f->push_count, before + 1);
    assert_int_equal(f->pushes[before].seq, 8);
    assert_int_equal(f->pushes[before].acked, 7);
    assert_int_equal(pending(f, "cy-s1", 1).seqs[0], 8);

    /* An ack beyond the last seq counts as the last: the queue empties. */
    ack(f, "cy-s1", "cy-s1", 1000);
    assert_int_equal(pending(f, "cy-s1", 1).count, 0);
    register_ticket(f, more, "noise", "s1");
    seen = pending(f, "cy-s1", 1);
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.seqs[0], 9);

    /* Acks are checked like actions. */
    raw = ack(f, "roads", "cy-s1", 9);
    assert_true(raw.answered);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_int_equal(pending(f, "cy-s1", 1).count, 1);
    raw = ack(f, "ghost", "ghost", 1);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
}

static void test_delivery_window(void **state)
{
    fixture_t *f = *state; /* window 2 */
    char id[40];
    for (int i = 0; i < 5; i++)
        register_ticket(f, id, "noise", "s1");
    ack(f, "cy-s1", "cy-s1", 0);
    assert_int_equal(f->push_count, 1); /* a new session: one, to probe */
    assert_int_equal(f->pushes[0].seq, 1);
    ack(f, "cy-s1", "cy-s1", 1); /* the probe acked: the window (2) opens */
    assert_int_equal(f->push_count, 3);
    assert_int_equal(f->pushes[2].seq, 3);
    ack(f, "cy-s1", "cy-s1", 2); /* progress: continue after 3, to acked + 2 */
    assert_int_equal(f->push_count, 4);
    assert_int_equal(f->pushes[3].seq, 4);
    /* With one return allowed, the first return goes to triage. */
    char returned[40];
    register_ticket(f, returned, "garbage", "");
    assert_int_equal(return_ticket(f, "sanitation", returned, "").state,
                     DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE);
}

static int act_then_fail(fixture_t *f, MDB_txn *txn, void *ctx)
{
    int rc = action_fn(f, txn, ctx);
    return rc < 0 ? rc : -EIO; /* the disk fails: the batch is aborted */
}

static void test_aborted_batch_changes_nothing(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");
    register_ticket(f, id, "noise", "s1");
    /* An ack and a sign-for in a batch that does not commit: no session,
     * no push, nothing deleted, nothing recorded. */
    Dispatch__UnitAck ack_body = DISPATCH__UNIT_ACK__INIT;
    ack_body.seq = 1;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = "cy-s1";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_ACK;
    action.ack = &ack_body;
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&action.base, &body, &len), 0);
    raw_t raw = {.body = body, .len = len, .peer = "cy-s1", .peer_len = 5};
    assert_int_equal(in_batch(f, act_then_fail, &raw), -EIO);
    free(body);
    assert_int_equal(f->push_count, 0);
    assert_int_equal(pending(f, "cy-s1", 1).count, 2);

    Dispatch__SignFor sign_body = DISPATCH__SIGN_FOR__INIT;
    action = (Dispatch__UnitAction)DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = "cy-s1";
    action.ticket_id = id;
    action.action_id = "abort-1";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &sign_body;
    assert_int_equal(codec_encode(&action.base, &body, &len), 0);
    raw = (raw_t){.body = body, .len = len, .peer = "cy-s1", .peer_len = 5};
    assert_int_equal(in_batch(f, act_then_fail, &raw), -EIO);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ACCEPTED), 0);
    /* The retry applies it once. */
    raw_t retry = unit_raw(f, "cy-s1", body, len);
    free(body);
    assert_int_equal(retry.state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ACCEPTED), 1);
    ack(f, "cy-s1", "cy-s1", 1);
    assert_int_equal(f->push_count, 1);
    assert_int_equal(f->pushes[0].seq, 2);
}

/* ------------------------------------------------------------ admin */

static void test_admin_units(void **state)
{
    fixture_t *f = *state;
    /* Only an administrator changes the registry. */
    assert_int_equal(unit_upsert(f, DISPATCH__ROLE__ROLE_DISPATCHER, "cy-s3", "cy",
                                 DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET, true)
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_int_equal(unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy-s3", "nowhere",
                                 DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET, true)
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    raw_t raw = unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy", "cy-s1-c1",
                            DISPATCH__UNIT_LEVEL__UNIT_LEVEL_DISTRICT, true);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE); /* a cycle */
    assert_string_equal(raw.field, "unit_upsert.unit.parent_id");
    raw = unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "a/b", "cy",
                      DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET, true);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    raw = unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy-s3", "cy",
                      DISPATCH__UNIT_LEVEL__UNIT_LEVEL_UNSPECIFIED, true);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_int_equal(unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy-s3", "cy",
                                 DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET, true)
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);

    /* The new unit is usable at once: a rule to it routes there. */
    assert_int_equal(rule_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy", "noise", "s3", "cy-s3").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    char id[40];
    register_ticket(f, id, "noise", "s3");
    assert_int_equal(pending(f, "cy-s3", 1).count, 1);

    /* Removing: not with open tickets, not with child units, not when a
     * rule names it. */
    assert_int_equal(unit_remove(f, DISPATCH__ROLE__ROLE_ADMIN, "cy-s3").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    assert_int_equal(unit_remove(f, DISPATCH__ROLE__ROLE_ADMIN, "cy-s1").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    assert_int_equal(unit_remove(f, DISPATCH__ROLE__ROLE_ADMIN, "power").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(unit_remove(f, DISPATCH__ROLE__ROLE_ADMIN, "power").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    assert_int_equal(unit_remove(f, DISPATCH__ROLE__ROLE_SUPERVISOR, "cy-s2").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    raw = unit_remove(f, DISPATCH__ROLE__ROLE_ADMIN, "roads");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT);
    assert_non_null(strstr(raw.message, "rule"));

    /* Deactivated: new tickets go to triage. */
    assert_int_equal(unit_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy-s3", "cy",
                                 DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET, false)
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    register_ticket(f, id, "noise", "s3");
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_TRIAGED);
    assert_int_equal(event->ticket_triaged->cause,
                     DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_UNIT_INACTIVE);
    dispatch__event__free_unpacked(event, NULL);
}

static void test_admin_rules(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(
        rule_upsert(f, DISPATCH__ROLE__ROLE_DISPATCHER, "cy", "lamp", "", "roads").code,
        DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_int_equal(rule_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "ng", "lamp", "", "roads").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    assert_int_equal(rule_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy", "lamp", "", "nobody").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    assert_int_equal(rule_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "", "lamp", "", "roads").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_int_equal(rule_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy", "", "", "roads").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_int_equal(rule_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy", "lamp", "", "roads").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    char id[40];
    register_ticket(f, id, "lamp", "s2");
    assert_int_equal(pending(f, "roads", 1).count, 1);

    /* Replaced: the same key now routes to the power company. */
    assert_int_equal(rule_upsert(f, DISPATCH__ROLE__ROLE_ADMIN, "cy", "lamp", "", "power").code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    register_ticket(f, id, "lamp", "s2");
    assert_int_equal(pending(f, "power", 1).count, 1);

    assert_int_equal(rule_remove(f, "lamp", "").code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_int_equal(rule_remove(f, "lamp", "").code, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    register_ticket(f, id, "lamp", "s2");
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_TRIAGED);
    assert_int_equal(event->ticket_triaged->cause, DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_NO_RULE);
    dispatch__event__free_unpacked(event, NULL);
}

static void test_admin_queues_and_roles(void **state)
{
    fixture_t *f = *state;
    char ids[3][40];
    for (int i = 0; i < 3; i++)
        register_ticket(f, ids[i], "garbage", "");
    raw_t raw = unit_list(f, "sanitation");
    assert_int_equal(raw.items, 3);
    assert_string_equal(raw.item_text[0], "lead");
    /* A unit lists only its own tickets; a dispatcher any unit's. */
    raw = list_queue(f, DISPATCH__ROLE__ROLE_UNIT, "roads", DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT,
                     "sanitation", 0, "");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    raw = list_queue(f, DISPATCH__ROLE__ROLE_UNIT, "sanitation/cli-1",
                     DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT, "sanitation", 2, "");
    assert_int_equal(raw.items, 2);
    assert_true(raw.more);
    raw = list_queue(f, DISPATCH__ROLE__ROLE_DISPATCHER, "disp-1",
                     DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT, "sanitation", 2, ids[1]);
    assert_int_equal(raw.items, 1);
    assert_string_equal(raw.item_ids[0], ids[2]);
    assert_false(raw.more);
    /* Roles, kinds, limits. */
    assert_int_equal(list_queue(f, DISPATCH__ROLE__ROLE_OPERATOR, "op-1",
                                DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 0, "")
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_int_equal(list_queue(f, DISPATCH__ROLE__ROLE_UNIT, "roads",
                                DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 0, "")
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_int_equal(list_queue(f, DISPATCH__ROLE__ROLE_SUPERVISOR, "sup-1",
                                DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, "", 0, "")
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    assert_int_equal(list_queue(f, DISPATCH__ROLE__ROLE_SUPERVISOR, "sup-1",
                                DISPATCH__QUEUE_KIND__QUEUE_KIND_UNSPECIFIED, "", 0, "")
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_int_equal(
        list_queue(f, DISPATCH__ROLE__ROLE_SUPERVISOR, "sup-1",
                   DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 501, "")
            .code,
        DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE); /* over a limit (protocol.md 10) */
    assert_int_equal(list_queue(f, DISPATCH__ROLE__ROLE_ADMIN, "admin-1",
                                DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT, "", 0, "")
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_int_equal(list_queue(f, DISPATCH__ROLE__ROLE_UNSPECIFIED, "x",
                                DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 0, "")
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_int_equal(list_queue(f, DISPATCH__ROLE__ROLE_ADMIN, "",
                                DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 0, "")
                         .code,
                     DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    /* Requests that escalation serves. */
    Dispatch__LeaderSignOff sign_off = DISPATCH__LEADER_SIGN_OFF__INIT;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "mayor";
    request.role = DISPATCH__ROLE__ROLE_LEADER;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF;
    request.leader_sign_off = &sign_off;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    assert_non_null(strstr(raw.message, "escalation"));
}

static void test_queue_page_fits_a_message(void **state)
{
    fixture_t *f = *state;
    /* 500 triaged tickets with long notes: a page stops under 64 KiB. */
    for (int i = 0; i < 500; i++) {
        char id[40];
        register_ticket(f, id, "no-such-category-with-a-rather-long-name-for-size-0123456789",
                        "an-area-name-that-is-also-long-enough-to-matter-0123456789");
    }
    raw_t raw = list_queue(f, DISPATCH__ROLE__ROLE_DISPATCHER, "disp-1",
                           DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE, "", 500, "");
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
    assert_true(raw.items > 50);
    assert_true(raw.items < 500);
    assert_true(raw.more);
}

/* ------------------------------------------------------------ hostile input */

static void test_hostile_unit_actions(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "s1");

    static const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
    raw_t raw = unit_raw(f, "cy-s1", garbage, sizeof(garbage));
    assert_true(raw.answered);
    assert_int_equal(raw.handler_rc, REFUSED);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);

    size_t big_len = ROUTER_MAX_REQUEST + 1;
    char *big = calloc(1, big_len);
    raw = unit_raw(f, "cy-s1", big, big_len);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    free(big);

    assert_int_equal(raw.handler_rc, REFUSED);
    raw = unit_raw(f, "cy-s1", "", 0);   /* empty: no unit, no action */
    assert_int_equal(raw.handler_rc, 0); /* a UnitAction, if an empty one */
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);

    Dispatch__Progress progress = DISPATCH__PROGRESS__INIT;
    progress.text = "ok";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = "cy-s1";
    action.ticket_id = id;
    action.action_id = "h-1";
    /* No action in the oneof. */
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    action.body_case = DISPATCH__UNIT_ACTION__BODY_PROGRESS;
    action.progress = &progress;
    /* Bad UTF-8 in a text. */
    progress.text = "bad \xc3\x28 text";
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8);
    /* Missing and oversized fields. */
    progress.text = "";
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_string_equal(raw.field, "progress.text");
    char long_text[2100];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    progress.text = long_text;
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    progress.text = "ok";
    action.action_id = "";
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_string_equal(raw.field, "action_id");
    char long_id[80];
    memset(long_id, 'i', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    action.action_id = long_id;
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    action.action_id = "h-2";
    action.ticket_id = "";
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    action.ticket_id = id;
    action.unit_id = long_id;
    raw = unit_send(f, long_id, &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    action.unit_id = "cy-s1";

    /* Unknown enum values; required enums left UNSPECIFIED. */
    Dispatch__ReturnTicket returned = DISPATCH__RETURN_TICKET__INIT;
    returned.reason = "why";
    returned.reason_code = (Dispatch__ReturnReason)77;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_RETURN_TICKET;
    action.return_ticket = &returned;
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    returned.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_UNSPECIFIED;
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    Dispatch__Resolve resolved = DISPATCH__RESOLVE__INIT;
    resolved.text = "done";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_RESOLVE;
    action.resolve = &resolved;
    raw = unit_send(f, "cy-s1", &action);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_string_equal(raw.field, "resolve.result");
    /* A routing id that is binary garbage. */
    static const char binary_peer[] = {0x00, 0x6b, (char)0x8b, 0x45, 0x67};
    action.body_case = DISPATCH__UNIT_ACTION__BODY_PROGRESS;
    action.progress = &progress;
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&action.base, &body, &len), 0);
    raw_t peer_raw = {.body = body, .len = len, .peer = binary_peer, .peer_len = 5};
    assert_int_equal(in_batch(f, action_fn, &peer_raw), 0);
    assert_int_equal(peer_raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    free(body);

    /* Nothing of it applied; the router still serves. */
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_PROGRESS_REPORTED), 0);
    assert_int_equal(sign_for(f, "cy-s1", id).state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
}

static void test_hostile_admin(void **state)
{
    fixture_t *f = *state;
    static const unsigned char garbage[] = {0x0a, 0xff, 0x01};
    raw_t raw = admin_raw(f, garbage, sizeof(garbage));
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    size_t big_len = ROUTER_MAX_ADMIN_REQUEST + 100; /* the admin endpoint's own limit */
    char *big = calloc(1, big_len);
    raw = admin_raw(f, big, big_len);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    free(big);
    raw = admin_raw(f, "", 0);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);

    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "admin-1";
    request.role = DISPATCH__ROLE__ROLE_ADMIN;
    request.tag = 42;
    raw = admin_send(f, &request); /* no body */
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    assert_int_equal(raw.tag, 42);
    request.role = (Dispatch__Role)99;
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    request.role = DISPATCH__ROLE__ROLE_ADMIN;
    list.kind = (Dispatch__QueueKind)1234;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE;
    list.district = "ng";
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    list.district = "";
    request.actor_id = "\xe2\x82"; /* cut UTF-8 */
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8);
    request.actor_id = "admin-1";

    /* Unit upsert without a unit; with bad strings. */
    Dispatch__UnitUpsert upsert = DISPATCH__UNIT_UPSERT__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT;
    request.unit_upsert = &upsert;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    Dispatch__Unit unit = DISPATCH__UNIT__INIT;
    unit.id = "u-1";
    unit.name = "";
    unit.level = DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET;
    upsert.unit = &unit;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assert_string_equal(raw.field, "unit_upsert.unit.name");
    char long_name[100];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    unit.name = long_name;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    unit.name = "Unit";
    unit.id = "tab\there";
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    unit.id = "u-1";
    unit.level = (Dispatch__UnitLevel)40;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);

    /* Rules: too many assisting units. */
    char *many[17];
    for (int i = 0; i < 17; i++)
        many[i] = "roads";
    Dispatch__RoutingRule rule = DISPATCH__ROUTING_RULE__INIT;
    rule.district = "cy";
    rule.category = "x";
    rule.lead_unit = "cy";
    rule.assisting_units = many;
    rule.n_assisting_units = 17;
    Dispatch__RuleUpsert rule_up = DISPATCH__RULE_UPSERT__INIT;
    rule_up.rule = &rule;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT;
    request.rule_upsert = &rule_up;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    rule.n_assisting_units = 0;
    rule_up.rule = NULL;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);

    /* Triage assign: missing ids, too many assisting units. */
    Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN;
    request.triage_assign = &assign;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    assign.ticket_id = "CY-20270115-000001";
    assign.lead_unit = "power";
    assign.assisting_units = many;
    assign.n_assisting_units = 17;
    raw = admin_send(f, &request);
    assert_int_equal(raw.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);

    /* Still serving. */
    assert_int_equal(list_triage(f).code, DISPATCH__ERROR_CODE__ERROR_CODE_OK);
}

static void test_hostile_events(void **state)
{
    fixture_t *f = *state;
    static const unsigned char garbage[] = {0x52, 0xff, 0xff};
    assert_int_equal(event_raw(f, garbage, sizeof(garbage)), BUS_REJECTED);
    assert_int_equal(event_raw(f, "", 0), BUS_REJECTED); /* no body */
    /* TicketRegistered without a ticket, or with a ticket id that is not
     * the event's. */
    Dispatch__TicketRegistered registered = DISPATCH__TICKET_REGISTERED__INIT;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.ticket_id = "CY-20270115-000001";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    event.ticket_registered = &registered;
    assert_int_equal(send_event(f, &event), BUS_REJECTED);
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.id = "CY-20270115-000002";
    ticket.district = "cy";
    ticket.state = DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED;
    registered.ticket = &ticket;
    assert_int_equal(send_event(f, &event), BUS_REJECTED);
    /* Bad UTF-8 and unknown enums inside the ticket. */
    event.ticket_id = ticket.id;
    ticket.description = "\xff";
    assert_int_equal(send_event(f, &event), BUS_REJECTED);
    ticket.description = "";
    ticket.kind = (Dispatch__Kind)55;
    assert_int_equal(send_event(f, &event), BUS_REJECTED);
    ticket.kind = DISPATCH__KIND__KIND_HELP;
    char long_category[100];
    memset(long_category, 'c', sizeof(long_category) - 1);
    long_category[sizeof(long_category) - 1] = '\0';
    ticket.category = long_category;
    assert_int_equal(send_event(f, &event), BUS_REJECTED);
    /* Nothing was recorded; a good one still routes. */
    ticket.category = "noise";
    ticket.area = "s1";
    assert_int_equal(send_event(f, &event), 0);
    assert_int_equal(pending(f, "cy-s1", 1).count, 1);
    /* An event of the router's own kinds is not for it. */
    Dispatch__TicketAccepted accepted = DISPATCH__TICKET_ACCEPTED__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &accepted;
    assert_int_equal(send_event(f, &event), BUS_REJECTED);
}

/* ------------------------------------------------------------ seed files */

typedef struct load {
    const char *path;
    bool rules;
    char err[512];
    int rc;
} load_t;

static int load_fn(fixture_t *f, MDB_txn *txn, void *ctx)
{
    load_t *load = ctx;
    load->rc =
        load->rules
            ? router_load_rules_csv(f->router, txn, load->path, load->err, sizeof(load->err))
            : router_load_units_csv(f->router, txn, load->path, load->err, sizeof(load->err));
    return load->rc;
}

static int load_csv(fixture_t *f, const char *name, const char *text, bool rules, char *err,
                    size_t err_len)
{
    write_file(f->dir, name, text);
    load_t load = {.rules = rules};
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    load.path = path;
    int rc = in_batch(f, load_fn, &load);
    snprintf(err, err_len, "%s", load.err);
    return rc;
}

static void expect_csv_error(fixture_t *f, const char *text, bool rules, const char *needle)
{
    char err[512] = "";
    int rc = load_csv(f, rules ? "bad-rules.csv" : "bad-units.csv", text, rules, err, sizeof(err));
    if (rc >= 0)
        fail_msg("loaded, expected an error with '%s'", needle);
    if (!strstr(err, needle))
        fail_msg("expected '%s' in '%s'", needle, err);
}

static void test_csv_errors(void **state)
{
    fixture_t *f = *state;
    expect_csv_error(f, "id,name,parent,level,district,active\n", false, "header");
    expect_csv_error(f, "id,name,parent_id,level,district,active\nu1,U,,planet,cy,1\n", false,
                     "line 2: level 'planet'");
    expect_csv_error(f, "id,name,parent_id,level,district,active\nu1,U,,street,cy,yes\n", false,
                     "line 2: active");
    expect_csv_error(f,
                     "id,name,parent_id,level,district,active\nu1,U,,street,cy,1\n"
                     "u1,U,,street,cy,1\n",
                     false, "line 3: unit u1 is listed twice");
    expect_csv_error(f, "id,name,parent_id,level,district,active\nu2,U,nobody,street,cy,1\n", false,
                     "parent unit nobody");
    expect_csv_error(f, "id,name,parent_id,level,district,active\nu3,\"U,street,cy,1\n", false,
                     "unterminated quote");
    expect_csv_error(f, "id,name,parent_id,level,district,active\nu4,U,street,cy,1\n", false,
                     "5 fields, expected 6");
    expect_csv_error(f, "id,name,parent_id,level,district,active\nu5,\xff,,street,cy,1\n", false,
                     "UTF-8");
    expect_csv_error(f, "category,area,lead_unit,assisting_units,priority\nx,,nobody,,0\n", true,
                     "line 2");
    expect_csv_error(f, "category,area,lead_unit,assisting_units,priority\nx,,roads,cy;cy,0\n",
                     true, "named twice");
    expect_csv_error(f, "category,area,lead_unit,assisting_units,priority\nx,,roads,,high\n", true,
                     "priority");
    /* A failed load changed nothing. */
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    store_read_end(&txn);
    char id[40];
    register_ticket(f, id, "x", "");
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_TRIAGED);
    dispatch__event__free_unpacked(event, NULL);

    /* Seeding runs only on an empty registry. */
    size_t units = 99, rules = 99;
    char err[256];
    assert_int_equal(router_seed(f->router, f->dir, &units, &rules, err, sizeof(err)), 0);
    assert_int_equal(units, 0);
    assert_int_equal(rules, 0);
}

static void test_load_3015_units_in_one_transaction(void **state)
{
    fixture_t *f = *state;
    /* Changchun's 3,015 connected units: 1 city, 1 district, 60 streets,
     * 2,900 communities, 50 bureaus, 3 enterprises; rules for 300
     * categories, a default and an area rule each. */
    size_t cap = 512 * 1024;
    char *units = malloc(cap), *rules = malloc(cap);
    size_t n = 0, m = 0, count = 0;
    n += (size_t)snprintf(units + n, cap - n, "id,name,parent_id,level,district,active\n");
    n += (size_t)snprintf(units + n, cap - n, "c,City,,city,,1\nd,District,c,district,cy,1\n");
    count = 2;
    for (int s = 0; s < 60; s++, count++)
        n += (size_t)snprintf(units + n, cap - n, "s%d,Street %d,d,street,cy,1\n", s, s);
    for (int k = 0; k < 2900; k++, count++)
        n += (size_t)snprintf(units + n, cap - n, "s%d-c%d,Community %d,s%d,community,cy,%d\n",
                              k % 60, k, k, k % 60, k % 97 ? 1 : 0);
    for (int b = 0; b < 50; b++, count++)
        n += (size_t)snprintf(units + n, cap - n, "b%d,Bureau %d,d,bureau,cy,1\n", b, b);
    for (int e = 0; e < 3; e++, count++)
        n += (size_t)snprintf(units + n, cap - n, "e%d,Enterprise %d,c,enterprise,,1\n", e, e);
    assert_int_equal(count, 3015);
    m += (size_t)snprintf(rules + m, cap - m, "category,area,lead_unit,assisting_units,priority\n");
    for (int c = 0; c < 300; c++) {
        m += (size_t)snprintf(rules + m, cap - m, "cat%d,,b%d,e%d;d,0\n", c, c % 50, c % 3);
        m += (size_t)snprintf(rules + m, cap - m, "cat%d,a%d,s%d-c%d,,1\n", c, c % 60, c % 60, c);
    }
    assert_true(n < cap && m < cap);

    char err[512] = "";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t commits = store_commits(f->store);
    if (load_csv(f, "big-units.csv", units, false, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    if (load_csv(f, "big-rules.csv", rules, true, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(store_commits(f->store) - commits, 2); /* one transaction each */
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("loaded 3015 units and 600 rules in %.3f s\n", seconds);
    assert_true(seconds < 10.0);

    /* Seeded from a data dir the same way (fresh registry). */
    char id[40];
    register_ticket(f, id, "cat7", "a7");
    assert_int_equal(pending(f, "s7-c7", 1).count, 1);
    register_ticket(f, id, "cat8", "elsewhere");
    seen_t lead = pending(f, "b8", 1);
    assert_int_equal(lead.count, 1);
    assert_int_equal(pending(f, "e2", 1).count, 1);
    free(units);
    free(rules);
}

/* A registration delivered again is the same ticket: nothing changes. A
 * registration of another ticket under a known id (two intakes issuing
 * one id) is refused as a dead letter; the first ticket stands. */
static void test_known_id_with_other_content_is_refused(void **state)
{
    fixture_t *f = *state;
    char id[40];
    register_ticket(f, id, "noise", "cy-s01");
    size_t dispatched = events_of(f, id, DISPATCH__EVENT__BODY_TICKET_DISPATCHED);
    assert_int_equal(dispatched, 1);
    assert_int_equal(register_ticket_full(f, id, "noise", "cy-s01", "cy", false), 0);
    f->now += 60000;
    assert_int_equal(register_ticket_full(f, id, "noise", "cy-s01", "cy", false), BUS_REJECTED);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_DISPATCHED), dispatched);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_specific_rule_beats_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_co_handling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unit_key_acts_for_its_unit_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_actor_and_role_come_from_the_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_known_id_with_other_content_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_rule_and_inactive_unit_go_to_triage, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_registration_dispatches_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_manhole_cover_to_power_company, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_for_return_reroute_then_triage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_candidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_window_and_objection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_reopen_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_with_inactive_lead_goes_to_triage, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_forbidden_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extension_request_and_decisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_queue_seqs_and_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_window, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_batch_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_units, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_queues_and_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_page_fits_a_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_unit_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_3015_units_in_one_transaction, setup_empty,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The escalation's parts on a real LMDB store in a temp dir, without
 * sockets: the business calendar and the deadline table (the shipped data
 * files and hostile ones), the timer index, and the handlers: events and
 * admin requests go in as bytes, timers fire at chosen instants, and the
 * tests read back what is durable (cases, timers, the bus outboxes). */
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

#include "bus.h"
#include "calendar.h"
#include "codec.h"
#include "config.h"
#include "deadlines.h"
#include "escalation.h"
#include "event.h"
#include "harness.h"
#include "store.h"
#include "timers.h"

#define MINUTE (60LL * 1000)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

static const char *const TOPOLOGY = "[city]\n"
                                    "name = testcity\n"
                                    "timezone = Asia/Shanghai\n"
                                    "[district.cy]\n"
                                    "[district.ng]\n"
                                    "[worker.intake-1]\n"
                                    "kind = intake\n"
                                    "state_dir = /nonexistent/intake\n"
                                    "bus = inproc://esc-intake-1\n"
                                    "id_prefix = CY\n"
                                    "[worker.router-cy]\n"
                                    "kind = router\n"
                                    "district = cy\n"
                                    "state_dir = /nonexistent/router\n"
                                    "bus = inproc://esc-router-cy\n"
                                    "[worker.escalation-cy]\n"
                                    "kind = escalation\n"
                                    "district = cy\n"
                                    "state_dir = /nonexistent/escalation\n"
                                    "bus = inproc://esc-escalation-cy\n"
                                    "links = router-cy, intake-1, audit\n"
                                    "[worker.audit]\n"
                                    "kind = audit\n"
                                    "state_dir = /nonexistent/audit\n"
                                    "bus = inproc://esc-audit\n";

static const char *const PEERS[3] = {"router-cy", "intake-1", "audit"};

/* An instant in China Standard Time (UTC+8, no daylight saving). */
static int64_t cst(int year, int month, int day, int hour, int minute)
{
    return (calendar_day_from_date(year, month, day) * 86400 + hour * 3600 + minute * 60 -
            8 * 3600) *
           1000LL;
}

static const char *data_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("DEPLOY_DATA");
    snprintf(buf, len, "%s/%s", dir && *dir ? dir : "deploy/data", name);
    return buf;
}

/* ------------------------------------------------------------ fixture */

typedef struct fixture {
    char dir[512];
    void *zmq;
    config_t *config;
    store_t *store;
    bus_t *bus;
    escalation_t *escalation;
    int64_t now;
    int counter;
} fixture_t;

static void open_escalation(fixture_t *f, const char *table_text)
{
    char path[1024], err[512];
    deadlines_t *table;
    calendar_t *calendar;
    if (table_text) {
        int rc = deadlines_parse_string(table_text, &table, err, sizeof(err));
        if (rc != 0)
            fail_msg("table: %s", err);
    } else {
        int rc = deadlines_load(data_path("deadlines.ini", path, sizeof(path)), &table, err,
                                sizeof(err));
        if (rc != 0)
            fail_msg("deadlines.ini: %s", err);
    }
    int rc =
        calendar_load(data_path("calendar.ini", path, sizeof(path)), &calendar, err, sizeof(err));
    if (rc != 0)
        fail_msg("calendar.ini: %s", err);
    assert_int_equal(escalation_new(f->store, f->bus, f->config, "escalation-cy", table, calendar,
                                    &f->escalation),
                     0);
}

static int setup_with(void **state, const char *table_text)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(harness_tmpdir("escalation", f->dir, sizeof(f->dir)), 0);
    char err[256];
    assert_int_equal(config_parse_string(TOPOLOGY, &f->config, err, sizeof(err)), 0);
    char state_dir[600];
    snprintf(state_dir, sizeof(state_dir), "%s/state", f->dir);
    assert_int_equal(store_open(state_dir, NULL, &f->store), 0);
    f->zmq = zmq_ctx_new();
    assert_int_equal(bus_new(f->zmq, f->store, "escalation-cy", NULL, &f->bus), 0);
    for (int i = 0; i < 3; i++) {
        char url[64];
        snprintf(url, sizeof(url), "inproc://esc-%s", PEERS[i]);
        assert_int_equal(bus_link_open(f->bus, PEERS[i], url, NULL), 0);
    }
    open_escalation(f, table_text);
    f->now = cst(2026, 3, 2, 9, 0); /* a Monday */
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    escalation_destroy(&f->escalation);
    bus_destroy(&f->bus);
    store_destroy(&f->store);
    zmq_ctx_term(f->zmq);
    config_destroy(&f->config);
    harness_rmtree(f->dir);
    free(f);
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
    return rc < 0 ? rc : batch->fn(batch->f, txn, batch->ctx);
}

/* One write batch as the loop runs it. */
static int in_batch(fixture_t *f, txn_fn fn, void *ctx)
{
    batch_t batch = {f, fn, ctx};
    int rc = store_write(f->store, batch_fn, &batch);
    bus_batch_done(f->bus, rc);
    return rc;
}

/* ------------------------------------------------------------ events in */

typedef struct raw {
    const void *body;
    size_t len;
    int rc;
} raw_t;

static int event_fn(fixture_t *f, MDB_txn *txn, void *ctx)
{
    raw_t *raw = ctx;
    raw->rc = escalation_handle_event(f->escalation, txn, raw->body, raw->len, f->now);
    return raw->rc < 0 ? raw->rc : 0;
}

static int event_raw(fixture_t *f, const void *body, size_t len)
{
    raw_t raw = {body, len, 0};
    assert_int_equal(in_batch(f, event_fn, &raw), 0);
    return raw.rc;
}

static int send_event(fixture_t *f, const char *ticket_id, Dispatch__Event *event)
{
    char id[32];
    snprintf(id, sizeof(id), "router-cy-%d", ++f->counter);
    event->event_id = id;
    event->ticket_id = (char *)ticket_id;
    event->district = "cy";
    event->at = f->now;
    event->actor = "router";
    event->origin = "router-cy";
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&event->base, &body, &len), 0);
    int rc = event_raw(f, body, len);
    free(body);
    return rc;
}

static void dispatch_ticket(fixture_t *f, const char *ticket_id, Dispatch__Kind kind,
                            Dispatch__Urgency urgency, const char *unit,
                            Dispatch__DispatchCause cause)
{
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = (char *)unit;
    dispatched.cause = cause;
    dispatched.kind = kind;
    dispatched.urgency = urgency;
    dispatched.category = "noise";
    dispatched.area = "cy-s01";
    dispatched.registered_at = f->now;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    assert_int_equal(send_event(f, ticket_id, &event), 0);
}

static void dispatch_urgent(fixture_t *f, const char *ticket_id)
{
    dispatch_ticket(f, ticket_id, DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__URGENCY__URGENCY_URGENT,
                    "cy-s01", DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE);
}

static void accepted(fixture_t *f, const char *ticket_id, const char *unit)
{
    Dispatch__TicketAccepted body = DISPATCH__TICKET_ACCEPTED__INIT;
    body.unit_id = (char *)unit;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &body;
    assert_int_equal(send_event(f, ticket_id, &event), 0);
}

static void resolved(fixture_t *f, const char *ticket_id)
{
    Dispatch__TicketResolved body = DISPATCH__TICKET_RESOLVED__INIT;
    body.unit_id = "cy-s01";
    body.result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
    body.text = "fixed";
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RESOLVED;
    event.ticket_resolved = &body;
    assert_int_equal(send_event(f, ticket_id, &event), 0);
}

static void extension_requested(fixture_t *f, const char *ticket_id, const char *request_id,
                                uint32_t extra_days, int64_t requested_deadline)
{
    Dispatch__ExtensionRequested body = DISPATCH__EXTENSION_REQUESTED__INIT;
    body.unit_id = "cy-s01";
    body.request_id = (char *)request_id;
    body.extra_working_days = extra_days;
    body.requested_deadline = requested_deadline;
    body.reason = "waiting for the contractor";
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_EXTENSION_REQUESTED;
    event.extension_requested = &body;
    assert_int_equal(send_event(f, ticket_id, &event), 0);
}

/* ------------------------------------------------------------ timers */

typedef struct fire {
    int64_t now;
    size_t max;
    size_t fired;
} fire_t;

static int fire_fn(fixture_t *f, MDB_txn *txn, void *ctx)
{
    fire_t *fire = ctx;
    return escalation_fire_due(f->escalation, txn, fire->now, fire->max, &fire->fired);
}

/* Moves the clock to now and fires what is due; returns how many timers. */
static size_t advance(fixture_t *f, int64_t now)
{
    f->now = now;
    fire_t fire = {now, 100000, 0};
    assert_int_equal(in_batch(f, fire_fn, &fire), 0);
    return fire.fired;
}

static int64_t next_due(fixture_t *f)
{
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    int64_t due = 0;
    int rc = escalation_next_due(f->escalation, txn, &due);
    store_read_end(&txn);
    return rc == -ENOENT ? -1 : due;
}

static Dispatch__Escalation__Case *get_case(fixture_t *f, const char *ticket_id)
{
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    Dispatch__Escalation__Case *record = NULL;
    int rc = escalation_get_case(f->escalation, txn, ticket_id, &record);
    store_read_end(&txn);
    return rc == 0 ? record : NULL;
}

/* ------------------------------------------------------------ events out */

/* Counts events about ticket_id of kind in the outbox to peer; *last gets
 * the last one (caller frees) when not NULL. */
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
            assert_string_equal(event->origin, "escalation-cy");
            /* A special report is the city's: no district (issue 18). */
            assert_string_equal(event->district, *event->ticket_id ? "cy" : "");
            assert_true(strncmp(event->event_id, "escalation-cy-", 14) == 0);
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

/* Events of a kind about a ticket; the router, the owning intake and audit
 * get the same ones. */
static size_t events_of(fixture_t *f, const char *ticket_id, Dispatch__Event__BodyCase kind)
{
    size_t audit = count_events(f, "audit", ticket_id, kind, NULL);
    assert_int_equal(count_events(f, "router-cy", ticket_id, kind, NULL), audit);
    assert_int_equal(count_events(f, "intake-1", ticket_id, kind, NULL), audit);
    return audit;
}

static Dispatch__Event *last_event(fixture_t *f, const char *ticket_id,
                                   Dispatch__Event__BodyCase kind)
{
    Dispatch__Event *event;
    assert_true(count_events(f, "audit", ticket_id, kind, &event) > 0);
    return event;
}

/* ------------------------------------------------------------ admin */

typedef struct admin_result {
    int rc;
    Dispatch__AdminReply__BodyCase body;
    Dispatch__ErrorCode code;
    char message[512];
    char field[128];
    uint64_t tag;
    size_t items;
    char ids[32][65];
    char text[32][512];
    int64_t deadline[32];
    Dispatch__SupervisionLevel supervision[32];
    bool more;
} admin_result_t;

typedef struct admin_call {
    const void *body;
    size_t len;
    admin_result_t *result;
} admin_call_t;

static int admin_fn(fixture_t *f, MDB_txn *txn, void *ctx)
{
    admin_call_t *call = ctx;
    admin_result_t *result = call->result;
    Dispatch__AdminReply reply;
    memset(result, 0, sizeof(*result));
    result->rc =
        escalation_handle_admin(f->escalation, txn, NULL, call->body, call->len, f->now, &reply);
    if (result->rc < 0)
        return result->rc;
    /* The reply must pack and fit a client's message. */
    void *bytes;
    size_t len;
    assert_int_equal(codec_encode(&reply.base, &bytes, &len), 0);
    assert_true(len < 64 * 1024);
    Dispatch__AdminReply *copy = dispatch__admin_reply__unpack(NULL, len, bytes);
    assert_non_null(copy);
    char err[128];
    assert_int_equal(codec_validate(&copy->base, err, sizeof(err)), 0);
    dispatch__admin_reply__free_unpacked(copy, NULL);
    free(bytes);
    result->body = reply.body_case;
    result->tag = reply.tag;
    if (reply.body_case == DISPATCH__ADMIN_REPLY__BODY_ERROR) {
        result->code = reply.error->code;
        snprintf(result->message, sizeof(result->message), "%s", reply.error->message);
        snprintf(result->field, sizeof(result->field), "%s", reply.error->field);
    }
    if (reply.body_case == DISPATCH__ADMIN_REPLY__BODY_QUEUE) {
        result->items = reply.queue->n_items;
        result->more = reply.queue->more;
        for (size_t i = 0; i < result->items && i < 32; i++) {
            snprintf(result->ids[i], 65, "%s", reply.queue->items[i]->ticket_id);
            snprintf(result->text[i], 512, "%s", reply.queue->items[i]->text);
            result->deadline[i] = reply.queue->items[i]->deadline;
            result->supervision[i] = reply.queue->items[i]->supervision;
        }
    }
    return 0;
}

static admin_result_t admin_raw(fixture_t *f, const void *body, size_t len)
{
    admin_result_t result;
    admin_call_t call = {body, len, &result};
    assert_int_equal(in_batch(f, admin_fn, &call), 0);
    assert_int_equal(result.rc, 0);
    assert_int_not_equal(result.body, DISPATCH__ADMIN_REPLY__BODY__NOT_SET);
    return result;
}

static admin_result_t admin_send(fixture_t *f, Dispatch__AdminRequest *request)
{
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&request->base, &body, &len), 0);
    admin_result_t result = admin_raw(f, body, len);
    free(body);
    return result;
}

static admin_result_t list_queue(fixture_t *f, Dispatch__QueueKind kind, uint32_t limit,
                                 const char *after)
{
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = kind;
    list.limit = limit;
    list.after_ticket_id = (char *)after;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "sup-1";
    request.role = DISPATCH__ROLE__ROLE_SUPERVISOR;
    request.tag = 42;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    admin_result_t result = admin_send(f, &request);
    assert_int_equal(result.tag, 42);
    assert_int_equal(result.body, DISPATCH__ADMIN_REPLY__BODY_QUEUE);
    return result;
}

static bool listed(const admin_result_t *result, const char *ticket_id)
{
    for (size_t i = 0; i < result->items && i < 32; i++)
        if (strcmp(result->ids[i], ticket_id) == 0)
            return true;
    return false;
}

static admin_result_t decide(fixture_t *f, Dispatch__Role role, const char *ticket_id,
                             const char *request_id, bool granted, int64_t new_deadline)
{
    Dispatch__ExtensionDecision decision = DISPATCH__EXTENSION_DECISION__INIT;
    decision.ticket_id = (char *)ticket_id;
    decision.request_id = (char *)request_id;
    decision.granted = granted;
    decision.new_deadline = new_deadline;
    decision.note = granted ? "granted: the contractor is booked" : "refused: do it now";
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "sup-1";
    request.role = role;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION;
    request.extension_decision = &decision;
    return admin_send(f, &request);
}

static admin_result_t sign_off(fixture_t *f, const char *actor, Dispatch__Role role,
                               const char *ticket_id, const char *report_id,
                               const char *instruction)
{
    Dispatch__LeaderSignOff body = DISPATCH__LEADER_SIGN_OFF__INIT;
    body.ticket_id = (char *)ticket_id;
    body.report_id = (char *)report_id;
    body.instruction = (char *)instruction;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = (char *)actor;
    request.role = role;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF;
    request.leader_sign_off = &body;
    return admin_send(f, &request);
}

static void assert_refused(const admin_result_t *result, Dispatch__ErrorCode code,
                           const char *field)
{
    if (result->body != DISPATCH__ADMIN_REPLY__BODY_ERROR || result->code != code)
        fail_msg("expected error %d on %s, got body %d code %d (%s)", code, field, result->body,
                 result->code, result->message);
    assert_string_equal(result->field, field);
    assert_true(strlen(result->message) > 0);
}

/* ============================================================ calendar */

static void test_calendar_2026_holidays(void **state)
{
    (void)state;
    char path[1024], err[512];
    calendar_t *calendar;
    int rc =
        calendar_load(data_path("calendar.ini", path, sizeof(path)), &calendar, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(calendar_time_zone(calendar), "Asia/Shanghai");
    /* National Day 2026: Oct 1-7 off; Sep 20 (Sun) and Oct 10 (Sat) worked. */
    struct {
        int month, day;
        bool working;
    } days[] = {{9, 19, false}, {9, 20, true},  {9, 25, false},  {9, 28, true},
                {9, 30, true},  {10, 1, false}, {10, 7, false},  {10, 8, true},
                {10, 9, true},  {10, 10, true}, {10, 11, false}, {10, 12, true}};
    for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
        int64_t day = calendar_day_from_date(2026, days[i].month, days[i].day);
        if (calendar_is_working_day(calendar, day) != days[i].working)
            fail_msg("2026-%02d-%02d should %sbe a working day", days[i].month, days[i].day,
                     days[i].working ? "" : "not ");
    }
    /* New Year 2026: Jan 1-3 off, Sunday Jan 4 worked; Spring Festival. */
    assert_false(calendar_is_working_day(calendar, calendar_day_from_date(2026, 1, 2)));
    assert_true(calendar_is_working_day(calendar, calendar_day_from_date(2026, 1, 4)));
    assert_false(calendar_is_working_day(calendar, calendar_day_from_date(2026, 2, 17)));
    assert_true(calendar_is_working_day(calendar, calendar_day_from_date(2026, 2, 28)));
    assert_int_equal(calendar_weekday(calendar_day_from_date(2026, 10, 1)), 4); /* Thursday */

    /* 5 WD from Wed 2026-09-30 10:00: Oct 8, 9, 10 (make-up), 12, 13 ->
     * 24:00 of Oct 13 = 2026-10-14 00:00 CST. */
    int64_t start = cst(2026, 9, 30, 10, 0);
    int64_t deadline = calendar_add_working_days(calendar, start, 5);
    assert_int_equal(deadline, cst(2026, 10, 14, 0, 0));
    assert_int_equal(deadline, 1791907200000LL); /* 2026-10-13T16:00:00Z */
    /* A deadline + 1 WD counts from the day after the deadline's day. */
    assert_int_equal(calendar_add_working_days(calendar, deadline, 1), cst(2026, 10, 15, 0, 0));
    assert_int_equal(calendar_add_working_days(calendar, start, 0), start);
    /* Dispatched on a holiday: day one is the first working day after it. */
    assert_int_equal(calendar_add_working_days(calendar, cst(2026, 10, 3, 15, 0), 1),
                     cst(2026, 10, 9, 0, 0));

    /* Working time: 14 h on Sep 30, then 5 days of 24 h = 134 h. */
    assert_int_equal(calendar_working_ms_between(calendar, start, deadline), 134 * HOUR);
    /* Half of it: 14 + 24 + 24 h, then 5 h into Sat Oct 10. */
    assert_int_equal(calendar_add_working_ms(calendar, start, 67 * HOUR), cst(2026, 10, 10, 5, 0));
    /* Never lands on a holiday: 14 h from Sep 30 10:00 is Oct 1 00:00, the
     * 15th hour is on Oct 8. */
    assert_int_equal(calendar_add_working_ms(calendar, start, 15 * HOUR), cst(2026, 10, 8, 1, 0));
    assert_int_equal(calendar_working_ms_between(calendar, deadline, start), 0);

    char text[32];
    calendar_format(calendar, deadline, text, sizeof(text));
    assert_string_equal(text, "2026-10-14 00:00");
    assert_int_equal(calendar_day_of(calendar, deadline), calendar_day_from_date(2026, 10, 14));
    assert_int_equal(calendar_day_of(calendar, deadline - 1), calendar_day_from_date(2026, 10, 13));
    calendar_destroy(&calendar);
    assert_null(calendar);
}

static void test_calendar_civil_dates(void **state)
{
    (void)state;
    assert_int_equal(calendar_day_from_date(1970, 1, 1), 0);
    assert_int_equal(calendar_day_from_date(2000, 3, 1), 11017);
    for (int64_t day = -800; day < 80000; day += 37) {
        int y, m, d;
        calendar_date_from_day(day, &y, &m, &d);
        assert_int_equal(calendar_day_from_date(y, m, d), day);
    }
    int y, m, d;
    calendar_date_from_day(calendar_day_from_date(2024, 2, 29), &y, &m, &d);
    assert_int_equal(y * 10000 + m * 100 + d, 20240229);

    /* A UTC calendar with a Friday-Saturday weekend and no dates. */
    calendar_t *calendar;
    char err[256];
    assert_int_equal(calendar_parse_string("[calendar]\ntime_zone = UTC\nweekend = fri, sat\n",
                                           &calendar, err, sizeof(err)),
                     0);
    int64_t thursday = calendar_day_start(calendar, calendar_day_from_date(2026, 3, 5));
    assert_int_equal(thursday, calendar_day_from_date(2026, 3, 5) * DAY);
    /* 1 WD from Thursday noon: Friday and Saturday off -> end of Sunday. */
    assert_int_equal(calendar_add_working_days(calendar, thursday + 12 * HOUR, 1),
                     calendar_day_from_date(2026, 3, 9) * DAY);
    calendar_destroy(&calendar);
}

static void test_calendar_errors(void **state)
{
    (void)state;
    struct {
        const char *text;
        const char *expect; /* in the message */
    } cases[] = {
        {"[holidays]\n2026-02-30 = no such day\n", "(string):2:"},
        {"[holidays]\n2026-10-07..2026-10-01 = backwards\n", "later one"},
        {"[holidays]\n2026-01-01..2027-06-01 = too long\n", "at most"},
        {"[workdays]\n2026-01-01..2026-01-02 = two\n", "one date per line"},
        {"[holidays]\n2026-10-01x = trailing\n", "unexpected"},
        {"; a comment\n[calendar]\ntime_zone = Mars/Olympus_Mons\n", "(string):3: time_zone"},
        {"[calendar]\ntime_zone = ../etc/passwd\n", "not a zone name"},
        {"[calendar]\nweekend = sat, sun, funday\n", "funday"},
        {"[calendar]\nweekend = sun, mon, tue, wed, thu, fri, sat\n", "every day"},
        {"[calendar]\ncolour = blue\n", "unknown key"},
        {"[moon]\nphase = full\n", "unknown section"},
        {"[holidays]\n2026-10-01 = a\n[workdays]\n2026-10-01 = b\n", "both a holiday"},
        {"[holidays\n", "(string):1:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        calendar_t *calendar = NULL;
        char err[512] = "";
        int rc = calendar_parse_string(cases[i].text, &calendar, err, sizeof(err));
        if (rc != -EINVAL || calendar || !strstr(err, cases[i].expect))
            fail_msg("case %zu: rc %d, message '%s', expected '%s'", i, rc, err, cases[i].expect);
    }
    calendar_t *calendar = NULL;
    char err[512];
    assert_int_equal(calendar_load("/nonexistent/calendar.ini", &calendar, err, sizeof(err)),
                     -ENOENT);
    assert_null(calendar);
}

/* ============================================================ deadline table */

static void test_deadline_table_defaults(void **state)
{
    (void)state;
    char path[1024], err[512];
    deadlines_t *table;
    int rc =
        deadlines_load(data_path("deadlines.ini", path, sizeof(path)), &table, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    /* Urgent, any kind: sign for within 30 min, close within 24 h. */
    const Dispatch__Escalation__Rule *urgent =
        deadlines_rule(table, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_URGENT);
    assert_int_equal(urgent->sign_for->ms, 30 * MINUTE);
    assert_int_equal(urgent->handle->ms, 24 * HOUR);
    assert_int_equal(urgent->pause, DISPATCH__ESCALATION__PAUSE__PAUSE_NONE);
    assert_int_equal(urgent->n_sign_for_ladder, DEADLINES_LADDER_LEVELS);
    assert_int_equal(urgent->sign_for_ladder[0]->ms, 30 * MINUTE);
    assert_int_equal(urgent->sign_for_ladder[2]->ms, 2 * HOUR);
    /* Ordinary: sign for within 2 h; consult 1, help/complaint/report 5,
     * suggestion 15 working days. */
    const Dispatch__Kind kinds[] = {DISPATCH__KIND__KIND_CONSULT, DISPATCH__KIND__KIND_HELP,
                                    DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__KIND__KIND_REPORT,
                                    DISPATCH__KIND__KIND_SUGGESTION};
    const uint32_t working_days[] = {1, 5, 5, 5, 15};
    for (int i = 0; i < 5; i++) {
        const Dispatch__Escalation__Rule *rule =
            deadlines_rule(table, kinds[i], DISPATCH__URGENCY__URGENCY_NORMAL);
        assert_int_equal(rule->sign_for->ms, 2 * HOUR);
        assert_int_equal(rule->handle->working_days, working_days[i]);
        assert_int_equal(rule->handle->ms, 0);
        assert_int_equal(rule->n_remind_at, 2);
        assert_int_equal(rule->remind_at[0], 50);
        assert_int_equal(rule->remind_at[1], 80);
        assert_int_equal(rule->handle_ladder[2]->working_days, 5);
        assert_int_equal(rule->pause, DISPATCH__ESCALATION__PAUSE__PAUSE_CITIZEN);
        assert_int_equal(rule->max_extensions, 3);
    }
    /* An unspecified kind or urgency still finds a rule. */
    const Dispatch__Escalation__Rule *fallback = deadlines_rule(
        table, DISPATCH__KIND__KIND_UNSPECIFIED, DISPATCH__URGENCY__URGENCY_UNSPECIFIED);
    assert_int_equal(fallback->handle->working_days, 5);
    char text[16];
    deadlines_span_format(urgent->sign_for, text, sizeof(text));
    assert_string_equal(text, "30m");
    deadlines_span_format(fallback->handle, text, sizeof(text));
    assert_string_equal(text, "5wd");
    deadlines_destroy(&table);
    assert_null(table);
}

static const char *const MINIMAL_TABLE = "[defaults]\n"
                                         "sign_for = 1h\n"
                                         "handle = 2wd\n"
                                         "remind_at = none\n"
                                         "sign_for_ladder = 1h, off, 3h\n"
                                         "handle_ladder = 1d, 2d, 3d\n"
                                         "pause = triage\n"
                                         "max_extensions = 0\n";

static void test_deadline_table_lookup_and_errors(void **state)
{
    (void)state;
    char err[512];
    deadlines_t *table;
    char text[2048];
    snprintf(text, sizeof(text),
             "%s[*.urgent]\nhandle = 12h\n[report.urgent]\nhandle = 6h\n"
             "[report.normal]\nremind_at = 10%%, 90%%\n",
             MINIMAL_TABLE);
    assert_int_equal(deadlines_parse_string(text, &table, err, sizeof(err)), 0);
    /* [report.urgent] beats [*.urgent] beats [defaults]. */
    assert_int_equal(
        deadlines_rule(table, DISPATCH__KIND__KIND_REPORT, DISPATCH__URGENCY__URGENCY_URGENT)
            ->handle->ms,
        6 * HOUR);
    assert_int_equal(
        deadlines_rule(table, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_URGENT)
            ->handle->ms,
        12 * HOUR);
    const Dispatch__Escalation__Rule *rule =
        deadlines_rule(table, DISPATCH__KIND__KIND_REPORT, DISPATCH__URGENCY__URGENCY_NORMAL);
    assert_int_equal(rule->handle->working_days, 2);
    assert_int_equal(rule->n_remind_at, 2);
    assert_int_equal(rule->remind_at[1], 90);
    assert_int_equal(rule->sign_for_ladder[1]->ms, 0); /* off */
    assert_int_equal(rule->sign_for_ladder[1]->working_days, 0);
    assert_int_equal(
        deadlines_rule(table, (Dispatch__Kind)99, DISPATCH__URGENCY__URGENCY_NORMAL)->n_remind_at,
        0);
    deadlines_destroy(&table);

    struct {
        const char *append;
        const char *expect;
    } cases[] = {
        {"[help.normal]\nhandle = 5 weeks\n", "expected a length"},
        {"[help.normal]\nhandle = 0h\n", "expected a length"},
        {"[help.normal]\nhandle = 400wd\n", "at most"},
        {"[help.normal]\nhandle = 9000h\n", "at most"},
        {"[help.normal]\nremind_at = 80%, 50%\n", "ascending"},
        {"[help.normal]\nremind_at = 100%\n", "1%..99%"},
        {"[help.normal]\nremind_at = 50\n", "percentages"},
        {"[help.normal]\nsign_for_ladder = 1h, 2h\n", "3 lengths"},
        {"[help.normal]\nsign_for_ladder = 1h, 2h, 3h, 4h\n", "more than 3"},
        {"[help.normal]\npause = sometimes\n", "none, citizen or triage"},
        {"[help.normal]\nmax_extensions = -1\n", "0..100"},
        {"[help.normal]\ncolour = red\n", "unknown key"},
        {"[help.eventually]\nhandle = 1h\n", "unknown section"},
        {"[help]\nhandle = 1h\n", "unknown section"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", MINIMAL_TABLE, cases[i].append);
        table = NULL;
        err[0] = '\0';
        int rc = deadlines_parse_string(text, &table, err, sizeof(err));
        /* The bad line is the 9th or 10th of the text. */
        if (rc != -EINVAL || table || !strstr(err, cases[i].expect) ||
            (!strstr(err, "(string):9:") && !strstr(err, "(string):10:")))
            fail_msg("case %zu: rc %d, message '%s', expected '%s'", i, rc, err, cases[i].expect);
    }
    /* Every key must resolve for every kind and urgency. */
    err[0] = '\0';
    assert_int_equal(
        deadlines_parse_string("[*.normal]\nsign_for = 1h\n", &table, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no value for"));
    assert_int_equal(deadlines_load("/nonexistent/deadlines.ini", &table, err, sizeof(err)),
                     -ENOENT);
}

/* ============================================================ timer index */

typedef struct timer_fixture {
    char dir[512];
    store_t *store;
    timers_t *timers;
} timer_fixture_t;

typedef struct arm_batch {
    timers_t *timers;
    int64_t first_due;
    int count;
    int64_t step;
} arm_batch_t;

static int arm_fn(MDB_txn *txn, void *ctx)
{
    arm_batch_t *batch = ctx;
    for (int i = 0; i < batch->count; i++) {
        char id[32];
        snprintf(id, sizeof(id), "CY-20260302-%06d", i);
        int rc = timers_arm(batch->timers, txn, batch->first_due + i * batch->step, id);
        if (rc < 0)
            return rc;
    }
    return 0;
}

typedef struct pop_batch {
    timers_t *timers;
    int64_t now;
    int64_t dues[16];
    char ids[16][TIMERS_ID_SIZE];
    int popped;
} pop_batch_t;

static int pop_fn(MDB_txn *txn, void *ctx)
{
    pop_batch_t *batch = ctx;
    batch->popped = 0;
    while (batch->popped < 16) {
        int rc = timers_pop_due(batch->timers, txn, batch->now, &batch->dues[batch->popped],
                                batch->ids[batch->popped]);
        if (rc == -ENOENT)
            return 0;
        if (rc < 0)
            return rc;
        batch->popped++;
    }
    return 0;
}

static void test_timer_index_order_and_pop(void **state)
{
    (void)state;
    timer_fixture_t t;
    assert_int_equal(harness_tmpdir("timers", t.dir, sizeof(t.dir)), 0);
    assert_int_equal(store_open(t.dir, NULL, &t.store), 0);
    assert_int_equal(timers_new(t.store, &t.timers), 0);

    /* 1,000 timers a minute apart, armed in one batch. */
    int64_t t0 = cst(2026, 3, 2, 9, 0);
    arm_batch_t arm = {t.timers, t0, 1000, MINUTE};
    assert_int_equal(store_write(t.store, arm_fn, &arm), 0);

    MDB_txn *txn;
    assert_int_equal(store_read_begin(t.store, &txn), 0);
    uint64_t count;
    assert_int_equal(timers_count(t.timers, txn, &count), 0);
    assert_int_equal(count, 1000);
    int64_t first;
    char id[TIMERS_ID_SIZE];
    assert_int_equal(timers_first(t.timers, txn, &first, id), 0);
    assert_int_equal(first, t0);
    assert_string_equal(id, "CY-20260302-000000");
    store_read_end(&txn);

    /* Due by t0 + 2 min 30 s: exactly the first three, in due order. */
    pop_batch_t pop = {.timers = t.timers, .now = t0 + 2 * MINUTE + 30000};
    assert_int_equal(store_write(t.store, pop_fn, &pop), 0);
    assert_int_equal(pop.popped, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pop.dues[i], t0 + i * MINUTE);
        char expect[32];
        snprintf(expect, sizeof(expect), "CY-20260302-%06d", i);
        assert_string_equal(pop.ids[i], expect);
    }
    /* Popped is gone: nothing is due at the same instant any more. */
    assert_int_equal(store_write(t.store, pop_fn, &pop), 0);
    assert_int_equal(pop.popped, 0);

    /* Same due time: ticket id order. */
    arm_batch_t same = {t.timers, t0 - HOUR, 3, 0};
    assert_int_equal(store_write(t.store, arm_fn, &same), 0);
    assert_int_equal(store_read_begin(t.store, &txn), 0);
    assert_int_equal(timers_first(t.timers, txn, &first, id), 0);
    assert_int_equal(first, t0 - HOUR);
    assert_string_equal(id, "CY-20260302-000000");
    store_read_end(&txn);

    /* Bad input is refused, not stored; a timer disarms once. */
    MDB_txn *write;
    assert_int_equal(mdb_txn_begin(store_env(t.store), NULL, 0, &write), 0);
    assert_int_equal(timers_arm(t.timers, write, 0, "CY-1"), -EINVAL);
    assert_int_equal(timers_arm(t.timers, write, t0, ""), -EINVAL);
    char long_id[80];
    memset(long_id, 'x', 70);
    long_id[70] = '\0';
    assert_int_equal(timers_arm(t.timers, write, t0, long_id), -EINVAL);
    assert_int_equal(timers_disarm(t.timers, write, t0 - HOUR, "CY-20260302-000001"), 0);
    assert_int_equal(timers_disarm(t.timers, write, t0 - HOUR, "CY-20260302-000001"), -ENOENT);
    /* A malformed key is dropped, not fired, and does not block the rest. */
    MDB_dbi dbi;
    assert_int_equal(mdb_dbi_open(write, "escalation.timers", 0, &dbi), 0);
    MDB_val k = {3, "\x00\x00\x01"}, v = {0, NULL};
    assert_int_equal(mdb_put(write, dbi, &k, &v, 0), 0);
    int64_t due;
    assert_int_equal(timers_pop_due(t.timers, write, t0, &due, id), -EAGAIN);
    assert_int_equal(timers_pop_due(t.timers, write, t0, &due, id), 0);
    assert_int_equal(due, t0 - HOUR);
    assert_string_equal(id, "CY-20260302-000000");
    mdb_txn_abort(write);

    timers_destroy(&t.timers);
    store_destroy(&t.store);
    harness_rmtree(t.dir);
}

/* ============================================================ the ladder */

/* Must show 1, in the handlers: an urgent ticket not signed for. */
static void test_urgent_ladder_to_leader_sign_off(void **state)
{
    fixture_t *f = *state;
    const char *id = "CY-20260302-000001";
    int64_t t0 = f->now;
    dispatch_urgent(f, id);
    Dispatch__Escalation__Case *record = get_case(f, id);
    assert_non_null(record);
    assert_int_equal(record->sign_for->deadline, t0 + 30 * MINUTE);
    assert_int_equal(record->handle->deadline, t0 + 24 * HOUR);
    assert_int_equal(record->timer_due, t0 + 15 * MINUTE);
    assert_int_equal(record->kind, DISPATCH__KIND__KIND_COMPLAINT);
    assert_string_equal(record->category, "noise");
    dispatch__escalation__case__free_unpacked(record, NULL);
    assert_int_equal(next_due(f), t0 + 15 * MINUTE);

    /* The dispatch's deadlines, for every view of the ticket (issue 18). */
    Dispatch__Event *set = last_event(f, id, DISPATCH__EVENT__BODY_DEADLINES_SET);
    assert_int_equal(set->deadlines_set->deadline_sign_for, t0 + 30 * MINUTE);
    assert_int_equal(set->deadlines_set->deadline_handle, t0 + 24 * HOUR);
    dispatch__event__free_unpacked(set, NULL);
    /* Nothing else a millisecond early. */
    assert_int_equal(advance(f, t0 + 15 * MINUTE - 1), 0);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY__NOT_SET), 1);

    /* 50% and 80% of the 30 minutes: reminders, not overdue. */
    assert_int_equal(advance(f, t0 + 15 * MINUTE), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 1);
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT);
    assert_int_equal(event->at, t0 + 15 * MINUTE);
    assert_string_equal(event->reminder_sent->unit_id, "cy-s01");
    assert_int_equal(event->reminder_sent->deadline_kind,
                     DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR);
    assert_int_equal(event->reminder_sent->deadline, t0 + 30 * MINUTE);
    assert_false(event->reminder_sent->overdue);
    assert_non_null(strstr(event->reminder_sent->text, "2026-03-02 09:30"));
    dispatch__event__free_unpacked(event, NULL);
    assert_int_equal(next_due(f), t0 + 24 * MINUTE);
    assert_int_equal(advance(f, t0 + 24 * MINUTE), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 2);

    /* The deadline: overdue, unit reminder level, an overdue reminder. */
    assert_int_equal(advance(f, t0 + 30 * MINUTE), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_OVERDUE), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 3);
    event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_ESCALATED);
    assert_int_equal(event->ticket_escalated->level,
                     DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_UNIT_REMINDER);
    assert_int_equal(event->ticket_escalated->previous,
                     DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_NONE);
    dispatch__event__free_unpacked(event, NULL);
    event = last_event(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT);
    assert_true(event->reminder_sent->overdue);
    dispatch__event__free_unpacked(event, NULL);
    admin_result_t overdue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, 0, "");
    assert_true(listed(&overdue, id));
    assert_int_equal(overdue.deadline[0], t0 + 30 * MINUTE);

    /* The ladder: district at +30 min, city at +1 h, leader at +2 h. */
    const int64_t steps[3] = {t0 + 60 * MINUTE, t0 + 90 * MINUTE, t0 + 150 * MINUTE};
    const Dispatch__SupervisionLevel levels[3] = {
        DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_DISTRICT,
        DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_CITY,
        DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_LEADER_SIGN_OFF};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(next_due(f), steps[i]);
        assert_int_equal(advance(f, steps[i] - 1), 0);
        assert_int_equal(advance(f, steps[i]), 1);
        assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ESCALATED), 2 + i);
        event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_ESCALATED);
        assert_int_equal(event->ticket_escalated->level, levels[i]);
        assert_int_equal(event->at, steps[i]);
        dispatch__event__free_unpacked(event, NULL);
        assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 4 + i);
    }
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_SIGN_OFF_REQUESTED), 1);
    admin_result_t queue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, 0, "");
    assert_int_equal(queue.items, 1);
    assert_string_equal(queue.ids[0], id);
    assert_int_equal(queue.supervision[0],
                     DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_LEADER_SIGN_OFF);
    assert_non_null(strstr(queue.text[0], "waiting for a leader"));
    /* The sign-for ladder is done; the handling deadline comes next. */
    assert_int_equal(next_due(f), t0 + 12 * HOUR);

    /* A leader's instruction: SignedOff out, the ticket stays queued. */
    admin_result_t done = sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, id, "",
                                   "sign for it now and report by noon");
    assert_int_equal(done.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_SIGNED_OFF), 1);
    event = last_event(f, id, DISPATCH__EVENT__BODY_SIGNED_OFF);
    assert_string_equal(event->signed_off->leader, "leader-li");
    assert_string_equal(event->signed_off->instruction, "sign for it now and report by noon");
    assert_string_equal(event->actor, "leader-li");
    dispatch__event__free_unpacked(event, NULL);
    /* A retry of the same instruction is not a second one. */
    done = sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, id, "",
                    "sign for it now and report by noon");
    assert_int_equal(done.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_SIGNED_OFF), 1);
    queue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, 0, "");
    assert_non_null(strstr(queue.text[0], "instruction by leader-li"));

    /* Signed for, then resolved: tracked to completion, then gone. */
    accepted(f, id, "cy-s01");
    overdue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, 0, "");
    assert_false(listed(&overdue, id)); /* the sign-for deadline no longer runs */
    queue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, 0, "");
    assert_true(listed(&queue, id));
    resolved(f, id);
    queue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, 0, "");
    assert_int_equal(queue.items, 0);
    queue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, 0, "");
    assert_int_equal(queue.items, 0);
    assert_int_equal(next_due(f), -1);
    /* No step fires after the resolution, however late it gets. */
    size_t before = events_of(f, id, DISPATCH__EVENT__BODY__NOT_SET);
    assert_int_equal(advance(f, t0 + 30 * DAY), 0);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY__NOT_SET), before);
    /* A sign-off on a resolved ticket is refused. */
    done = sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, id, "", "again");
    assert_refused(&done, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "leader_sign_off.ticket_id");
}

static void test_late_firing_skips_stale_reminders(void **state)
{
    fixture_t *f = *state;
    const char *id = "CY-20260302-000002";
    int64_t t0 = f->now;
    dispatch_urgent(f, id);
    /* The worker was away for 70 minutes: both reminder points and the
     * deadline and the district step are due at once. The reminders say
     * nothing new now and are skipped; the rest fires once each. */
    assert_int_equal(advance(f, t0 + 70 * MINUTE), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_OVERDUE), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ESCALATED), 2);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 2);
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_TICKET_ESCALATED);
    assert_int_equal(event->ticket_escalated->level,
                     DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_DISTRICT);
    assert_int_equal(event->ticket_escalated->previous,
                     DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_UNIT_REMINDER);
    assert_non_null(strstr(event->ticket_escalated->reason, "40 min ago"));
    dispatch__event__free_unpacked(event, NULL);
    assert_int_equal(next_due(f), t0 + 90 * MINUTE);
    /* Firing again at the same instant does nothing. */
    assert_int_equal(advance(f, t0 + 70 * MINUTE), 0);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_ESCALATED), 2);
}

/* Dispatched before escalation heard of it: the deadlines count from the
 * dispatch (the event's time), and what is already due fires at once. */
static void test_deadlines_count_from_the_dispatch(void **state)
{
    fixture_t *f = *state;
    const char *id = "CY-20260302-000003";
    int64_t t0 = f->now;
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = "cy-s01";
    dispatched.cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE;
    dispatched.kind = DISPATCH__KIND__KIND_HELP;
    dispatched.urgency = DISPATCH__URGENCY__URGENCY_URGENT;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.event_id = "router-cy-77";
    event.ticket_id = (char *)id;
    event.district = "cy";
    event.at = t0;
    event.origin = "router-cy";
    event.actor = "router";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    void *body;
    size_t len;
    assert_int_equal(codec_encode(&event.base, &body, &len), 0);
    f->now = t0 + 20 * MINUTE; /* heard 20 minutes late */
    assert_int_equal(event_raw(f, body, len), 0);
    free(body);
    Dispatch__Escalation__Case *record = get_case(f, id);
    assert_int_equal(record->sign_for->deadline, t0 + 30 * MINUTE);
    assert_int_equal(record->dispatched_at, t0);
    dispatch__escalation__case__free_unpacked(record, NULL);
    assert_int_equal(next_due(f), t0 + 15 * MINUTE);
    /* The 50% point passed; the 80% point has not: one reminder now. */
    assert_int_equal(advance(f, t0 + 20 * MINUTE), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 1);
    assert_int_equal(next_due(f), t0 + 24 * MINUTE);
}

/* Must show 2, in the handlers: a 5-working-day ticket before National Day. */
static void test_five_working_days_across_national_day(void **state)
{
    fixture_t *f = *state;
    const char *id = "CY-20260930-000001";
    f->now = cst(2026, 9, 30, 10, 0);
    dispatch_ticket(f, id, DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__URGENCY__URGENCY_NORMAL,
                    "cy-s01", DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE);
    accepted(f, id, "cy-s01");
    Dispatch__Escalation__Case *record = get_case(f, id);
    assert_int_equal(record->state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    assert_false(record->sign_for->active);
    /* Oct 8, 9, 10 (make-up Saturday), 12, 13: due at 24:00 on Oct 13. */
    assert_int_equal(record->handle->deadline, cst(2026, 10, 14, 0, 0));
    dispatch__escalation__case__free_unpacked(record, NULL);
    /* 50% of 134 working hours: Oct 10 05:00; 80%: Oct 12 21:12. */
    assert_int_equal(next_due(f), cst(2026, 10, 10, 5, 0));
    assert_int_equal(advance(f, cst(2026, 10, 10, 5, 0)), 1);
    Dispatch__Event *event = last_event(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT);
    assert_int_equal(event->reminder_sent->deadline_kind,
                     DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE);
    assert_int_equal(event->reminder_sent->deadline, cst(2026, 10, 14, 0, 0));
    dispatch__event__free_unpacked(event, NULL);
    assert_int_equal(next_due(f), cst(2026, 10, 12, 21, 12));
    assert_int_equal(advance(f, cst(2026, 10, 12, 21, 12)), 1);
    assert_int_equal(next_due(f), cst(2026, 10, 14, 0, 0));
    assert_int_equal(advance(f, cst(2026, 10, 14, 0, 0) - 1), 0);
    assert_int_equal(advance(f, cst(2026, 10, 14, 0, 0)), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_TICKET_OVERDUE), 1);
    /* District supervision one working day later: end of Oct 14. */
    assert_int_equal(next_due(f), cst(2026, 10, 15, 0, 0));
}

/* Must show 3, in the handlers. */
static void test_extension_granted_moves_refused_keeps(void **state)
{
    fixture_t *f = *state;
    const char *moved = "CY-20260302-000010", *kept = "CY-20260302-000011";
    int64_t t0 = f->now;                       /* Monday 2026-03-02 09:00 */
    int64_t deadline = cst(2026, 3, 10, 0, 0); /* 5 WD: Mar 3, 4, 5, 6, 9 */
    for (int i = 0; i < 2; i++) {
        const char *id = i ? kept : moved;
        dispatch_ticket(f, id, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_NORMAL,
                        "cy-s01", DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE);
        accepted(f, id, "cy-s01");
        Dispatch__Escalation__Case *record = get_case(f, id);
        assert_int_equal(record->handle->deadline, deadline);
        dispatch__escalation__case__free_unpacked(record, NULL);
    }
    f->now = t0 + HOUR;
    extension_requested(f, moved, "ext-1", 3, 0);
    extension_requested(f, kept, "ext-2", 2, 0);
    admin_result_t queue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, 0, "");
    assert_int_equal(queue.items, 2);
    assert_true(listed(&queue, moved) && listed(&queue, kept));
    assert_non_null(strstr(queue.text[0], "+3 working days"));

    /* Only a supervisor decides; the request must be the pending one. */
    admin_result_t result = decide(f, DISPATCH__ROLE__ROLE_DISPATCHER, moved, "ext-1", true, 0);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "role");
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, moved, "ext-9", true, 0);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND,
                   "extension_decision.request_id");
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, moved, "ext-1", true, deadline - 1);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                   "extension_decision.new_deadline");
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, kept, "ext-2", false, deadline + DAY);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                   "extension_decision.new_deadline");
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, "CY-20260302-999999", "ext-1", true, 0);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND,
                   "extension_decision.ticket_id");
    assert_int_equal(events_of(f, NULL, DISPATCH__EVENT__BODY_EXTENSION_GRANTED), 0);

    /* Granted as asked: +3 WD from the deadline's day (Mar 9) -> Mar 10,
     * 11, 12: due at 24:00 on Mar 12. */
    int64_t extended = cst(2026, 3, 13, 0, 0);
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, moved, "ext-1", true, 0);
    assert_int_equal(result.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
    Dispatch__Event *event = last_event(f, moved, DISPATCH__EVENT__BODY_EXTENSION_GRANTED);
    assert_int_equal(event->extension_granted->new_deadline_handle, extended);
    assert_string_equal(event->extension_granted->request_id, "ext-1");
    assert_string_equal(event->actor, "sup-1");
    dispatch__event__free_unpacked(event, NULL);
    assert_int_equal(events_of(f, moved, DISPATCH__EVENT__BODY_EXTENSION_GRANTED), 1);
    /* A retry of the decision: done again, no second event. */
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, moved, "ext-1", true, 0);
    assert_int_equal(result.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
    assert_int_equal(events_of(f, moved, DISPATCH__EVENT__BODY_EXTENSION_GRANTED), 1);

    /* Refused: the deadline stays. */
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, kept, "ext-2", false, 0);
    assert_int_equal(result.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
    assert_int_equal(events_of(f, kept, DISPATCH__EVENT__BODY_EXTENSION_REFUSED), 1);
    queue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, 0, "");
    assert_int_equal(queue.items, 0);

    /* At the old deadline only the refused one is overdue. */
    advance(f, deadline);
    admin_result_t overdue = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, 0, "");
    assert_true(listed(&overdue, kept));
    assert_false(listed(&overdue, moved));
    assert_int_equal(events_of(f, kept, DISPATCH__EVENT__BODY_TICKET_OVERDUE), 1);
    assert_int_equal(events_of(f, moved, DISPATCH__EVENT__BODY_TICKET_OVERDUE), 0);
    /* At the new deadline the extended one is, with the new deadline. */
    advance(f, extended - 1);
    assert_int_equal(events_of(f, moved, DISPATCH__EVENT__BODY_TICKET_OVERDUE), 0);
    advance(f, extended);
    event = last_event(f, moved, DISPATCH__EVENT__BODY_TICKET_OVERDUE);
    assert_int_equal(event->ticket_overdue->deadline, extended);
    assert_int_equal(event->at, extended);
    dispatch__event__free_unpacked(event, NULL);

    /* The table allows 3 extensions of a normal ticket. */
    for (int i = 0; i < 3; i++) {
        char request_id[16];
        snprintf(request_id, sizeof(request_id), "more-%d", i);
        extension_requested(f, moved, request_id, 0, f->now + (i + 2) * DAY);
        result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, moved, request_id, true, 0);
        if (i < 2)
            assert_int_equal(result.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
        else
            assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT,
                           "extension_decision");
    }
}

/* The handling clock stops in triage while waiting on the citizen. */
static void test_clock_pause_while_waiting_on_the_citizen(void **state)
{
    fixture_t *f = *state;
    const char *id = "CY-20260302-000020";
    int64_t t0 = f->now;
    dispatch_ticket(f, id, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_NORMAL, "cy-s01",
                    DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE);
    int64_t deadline = cst(2026, 3, 10, 0, 0);
    f->now = t0 + 30 * MINUTE;
    Dispatch__TicketReturned returned = DISPATCH__TICKET_RETURNED__INIT;
    returned.unit_id = "cy-s01";
    returned.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_INSUFFICIENT_INFO;
    returned.reason = "which building?";
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RETURNED;
    event.ticket_returned = &returned;
    assert_int_equal(send_event(f, id, &event), 0);
    Dispatch__TicketTriaged triaged = DISPATCH__TICKET_TRIAGED__INIT;
    triaged.cause = DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_RETURNED;
    triaged.from_unit = "cy-s01";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_TRIAGED;
    event.ticket_triaged = &triaged;
    assert_int_equal(send_event(f, id, &event), 0);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_CLOCK_PAUSED), 1);
    /* Paused: no timer at all (the sign-for deadline stopped with the unit). */
    assert_int_equal(next_due(f), -1);
    admin_result_t urgent = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, 0, "");
    assert_int_equal(urgent.items, 0);

    /* Two days later the dispatcher assigns it again. */
    f->now = t0 + 30 * MINUTE + 2 * DAY;
    dispatch_ticket(f, id, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_NORMAL, "cy-s02",
                    DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_TRIAGE);
    Dispatch__Event *resumed = last_event(f, id, DISPATCH__EVENT__BODY_CLOCK_RESUMED);
    assert_int_equal(resumed->clock_resumed->paused_ms, 2 * DAY);
    assert_int_equal(resumed->clock_resumed->deadline_handle, deadline + 2 * DAY);
    assert_int_equal(resumed->clock_resumed->deadline_sign_for, f->now + 2 * HOUR);
    dispatch__event__free_unpacked(resumed, NULL);
    Dispatch__Escalation__Case *record = get_case(f, id);
    assert_int_equal(record->handle->deadline, deadline + 2 * DAY);
    assert_string_equal(record->unit_id, "cy-s02");
    assert_int_equal(record->paused_at, 0);
    dispatch__escalation__case__free_unpacked(record, NULL);

    /* A triage for another reason does not stop a normal ticket's clock
     * (pause = citizen), and never an urgent one's (pause = none). */
    const char *other = "CY-20260302-000021";
    dispatch_urgent(f, other);
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    triaged.cause = DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_OBJECTION;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_TRIAGED;
    event.ticket_triaged = &triaged;
    assert_int_equal(send_event(f, other, &event), 0);
    assert_int_equal(events_of(f, other, DISPATCH__EVENT__BODY_CLOCK_PAUSED), 0);
    record = get_case(f, other);
    assert_int_equal(record->timer_due, f->now + 12 * HOUR); /* the handling reminder */
    dispatch__escalation__case__free_unpacked(record, NULL);
}

/* A reopened ticket starts a new round: both clocks from the reopen. */
static void test_reopen_starts_a_new_round(void **state)
{
    fixture_t *f = *state;
    const char *id = "CY-20260302-000030";
    dispatch_ticket(f, id, DISPATCH__KIND__KIND_CONSULT, DISPATCH__URGENCY__URGENCY_NORMAL,
                    "cy-s01", DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE);
    accepted(f, id, "cy-s01");
    resolved(f, id);
    assert_int_equal(next_due(f), -1);
    f->now = cst(2026, 3, 4, 15, 0); /* Wednesday */
    /* Escalation hears of a reopen from the router's new dispatch alone:
     * intake's TicketReopened is not for it (lifecycle table). */
    Dispatch__TicketReopened reopened = DISPATCH__TICKET_REOPENED__INIT;
    reopened.reopen_count = 1;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REOPENED;
    event.ticket_reopened = &reopened;
    assert_int_equal(send_event(f, id, &event), BUS_REJECTED);
    dispatch_ticket(f, id, DISPATCH__KIND__KIND_CONSULT, DISPATCH__URGENCY__URGENCY_NORMAL,
                    "cy-s01", DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REOPEN);
    Dispatch__Escalation__Case *record = get_case(f, id);
    assert_int_equal(record->round, 2);
    assert_int_equal(record->handle->deadline, cst(2026, 3, 6, 0, 0)); /* consult: 1 WD */
    assert_true(record->sign_for->active);
    dispatch__escalation__case__free_unpacked(record, NULL);
    assert_int_equal(next_due(f), f->now + HOUR); /* 50% of the 2 h sign-for */
}

/* A batch that does not commit fires nothing for good. */
static int fire_then_abort(fixture_t *f, MDB_txn *txn, void *ctx)
{
    fire_t *fire = ctx;
    int rc = escalation_fire_due(f->escalation, txn, fire->now, 100, &fire->fired);
    return rc < 0 ? rc : -EIO;
}

static void test_aborted_firing_fires_again(void **state)
{
    fixture_t *f = *state;
    const char *id = "CY-20260302-000040";
    int64_t t0 = f->now;
    dispatch_urgent(f, id);
    fire_t fire = {t0 + 15 * MINUTE, 100, 0};
    assert_int_equal(in_batch(f, fire_then_abort, &fire), -EIO);
    assert_int_equal(fire.fired, 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 0);
    assert_int_equal(next_due(f), t0 + 15 * MINUTE);
    assert_int_equal(advance(f, t0 + 15 * MINUTE), 1);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 1);
    /* And a restarted escalation sees the same index. */
    escalation_destroy(&f->escalation);
    open_escalation(f, NULL);
    assert_int_equal(next_due(f), t0 + 24 * MINUTE);
    assert_int_equal(advance(f, t0 + 15 * MINUTE), 0);
    assert_int_equal(events_of(f, id, DISPATCH__EVENT__BODY_REMINDER_SENT), 1);
}

/* Firing is bounded per batch and takes only what is due. */
static void test_fire_batch_bound(void **state)
{
    fixture_t *f = *state;
    int64_t t0 = f->now;
    for (int i = 0; i < 30; i++) {
        char id[32];
        snprintf(id, sizeof(id), "CY-20260302-%06d", 100 + i);
        f->now = t0 + i * MINUTE;
        dispatch_urgent(f, id);
    }
    /* Due just before t0 + 24 min: the 50% reminders of the first nine. */
    fire_t fire = {t0 + 24 * MINUTE - 1, 4, 0};
    f->now = fire.now;
    assert_int_equal(in_batch(f, fire_fn, &fire), 0);
    assert_int_equal(fire.fired, 4);
    fire.max = 100;
    assert_int_equal(in_batch(f, fire_fn, &fire), 0);
    assert_int_equal(fire.fired, 5);
    assert_int_equal(events_of(f, NULL, DISPATCH__EVENT__BODY_REMINDER_SENT), 9);
    assert_int_equal(next_due(f), t0 + 24 * MINUTE);
}

/* ============================================================ admin */

static void test_queues_urgent_view_and_paging(void **state)
{
    fixture_t *f = *state;
    int64_t t0 = f->now;
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "CY-20260302-%06d", 200 + i);
        dispatch_urgent(f, id);
    }
    dispatch_ticket(f, "CY-20260302-000300", DISPATCH__KIND__KIND_HELP,
                    DISPATCH__URGENCY__URGENCY_NORMAL, "cy-s01",
                    DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE);
    f->now = t0 + 10 * MINUTE;
    admin_result_t page = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, 2, "");
    assert_int_equal(page.items, 2);
    assert_true(page.more);
    assert_string_equal(page.ids[0], "CY-20260302-000200");
    assert_int_equal(page.deadline[0], t0 + 30 * MINUTE);
    assert_non_null(strstr(page.text[0], "sign for by 2026-03-02 09:30: 20 min left"));
    page = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, 2, "CY-20260302-000201");
    assert_int_equal(page.items, 2);
    assert_string_equal(page.ids[0], "CY-20260302-000202");
    page = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, 0, "CY-20260302-000203");
    assert_int_equal(page.items, 1);
    assert_false(page.more);
    /* Signed for: the view counts down to the handling deadline. */
    accepted(f, "CY-20260302-000200", "cy-s01");
    page = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, 1, "");
    assert_int_equal(page.deadline[0], t0 + 24 * HOUR);
    assert_non_null(strstr(page.text[0], "close by 2026-03-03 09:00: 23 h 50 min left"));
    /* Overdue shows as such. */
    advance(f, t0 + 40 * MINUTE);
    page = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, 2, "");
    assert_non_null(strstr(page.text[1], "overdue by 10 min"));
    page = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, 0, "");
    assert_int_equal(page.items, 4);
    assert_non_null(strstr(page.text[0], "sign-for deadline 2026-03-02 09:30 passed 10 min ago"));
}

static void test_report_sign_off_goes_to_audit(void **state)
{
    fixture_t *f = *state;
    admin_result_t result = sign_off(f, "leader-wang", DISPATCH__ROLE__ROLE_LEADER, "",
                                     "categories-2026-Q3", "Street vending: a plan by Friday");
    assert_int_equal(result.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
    assert_int_equal(count_events(f, "audit", "", DISPATCH__EVENT__BODY_SIGNED_OFF, NULL), 1);
    assert_int_equal(count_events(f, "router-cy", NULL, DISPATCH__EVENT__BODY__NOT_SET, NULL), 0);
    Dispatch__Event *event = last_event(f, "", DISPATCH__EVENT__BODY_SIGNED_OFF);
    assert_string_equal(event->signed_off->report_id, "categories-2026-Q3");
    dispatch__event__free_unpacked(event, NULL);
    result = sign_off(f, "leader-wang", DISPATCH__ROLE__ROLE_LEADER, "", "categories-2026-Q3",
                      "Street vending: a plan by Friday");
    assert_int_equal(result.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
    assert_int_equal(count_events(f, "audit", "", DISPATCH__EVENT__BODY_SIGNED_OFF, NULL), 1);
}

/* A listing with the longest texts still fits, and stays valid UTF-8
 * where it is cut (admin_fn checks every reply). */
static void test_long_texts_in_listings(void **state)
{
    fixture_t *f = *state;
    char instruction[2001];
    size_t len = 0;
    while (len + 3 <= 2000) { /* 666 x "办", 1998 bytes */
        memcpy(instruction + len, "\xe5\x8a\x9e", 3);
        len += 3;
    }
    instruction[len] = '\0';
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof(id), "CY-20260302-%06d", 700 + i);
        dispatch_urgent(f, id);
        admin_result_t done =
            sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, id, "", instruction);
        assert_int_equal(done.body, DISPATCH__ADMIN_REPLY__BODY_DONE);
        extension_requested(f, id, "ext-long", 1, 0);
    }
    admin_result_t page = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, 500, "");
    assert_true(page.items > 0 && page.items < 40);
    assert_true(page.more); /* cut at the page size, not at 500 items */
    page = list_queue(f, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, 0, "");
    assert_int_equal(page.items, 40);
}

static void test_hostile_admin(void **state)
{
    fixture_t *f = *state;
    dispatch_urgent(f, "CY-20260302-000500");

    /* Bytes that are no AdminRequest, oversized input, bad UTF-8. */
    admin_result_t result = admin_raw(f, "\xff\xff\xff\xff", 4);
    assert_int_equal(result.body, DISPATCH__ADMIN_REPLY__BODY_ERROR);
    assert_int_equal(result.code, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    size_t big = ESCALATION_MAX_REQUEST + 1;
    char *huge = calloc(1, big);
    result = admin_raw(f, huge, big);
    assert_int_equal(result.code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    free(huge);
    result = admin_raw(f, "", 0);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "actor_id");

    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "\xc3\x28";
    request.role = DISPATCH__ROLE__ROLE_SUPERVISOR;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    result = admin_send(f, &request);
    assert_int_equal(result.code, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8);
    request.actor_id = "sup-1";
    request.role = (Dispatch__Role)77;
    result = admin_send(f, &request);
    assert_int_equal(result.code, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    request.role = DISPATCH__ROLE__ROLE_UNSPECIFIED;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "role");
    char long_id[100];
    memset(long_id, 'a', 70);
    long_id[70] = '\0';
    request.role = DISPATCH__ROLE__ROLE_SUPERVISOR;
    request.actor_id = long_id;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "actor_id");
    request.actor_id = "sup-1";

    /* ListQueue: kind required, router's queues refused, limits. */
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "list_queue.kind");
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "list_queue.kind");
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT;
    list.limit = 501;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "list_queue.limit");
    list.limit = 0;
    list.district = "ng";
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "list_queue.district");
    list.district = "";
    list.after_ticket_id = long_id;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE,
                   "list_queue.after_ticket_id");
    list.after_ticket_id = "";
    request.role = DISPATCH__ROLE__ROLE_UNIT;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "role");

    /* Requests of the router, and none at all. */
    Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
    request.role = DISPATCH__ROLE__ROLE_DISPATCHER;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN;
    request.triage_assign = &assign;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body");
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY__NOT_SET;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body");

    /* Sign-off: role, exactly one target, instruction, own name, lengths. */
    const char *id = "CY-20260302-000500";
    result = sign_off(f, "sup-1", DISPATCH__ROLE__ROLE_SUPERVISOR, id, "", "do it");
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "role");
    result = sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, "", "", "do it");
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                   "leader_sign_off.ticket_id");
    result = sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, id, "report-1", "do it");
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                   "leader_sign_off.ticket_id");
    result = sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, id, "", "");
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                   "leader_sign_off.instruction");
    char *long_text = malloc(2002);
    memset(long_text, 'x', 2001);
    long_text[2001] = '\0';
    result = sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, id, "", long_text);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE,
                   "leader_sign_off.instruction");
    free(long_text);
    result =
        sign_off(f, "leader-li", DISPATCH__ROLE__ROLE_LEADER, "CY-20260302-777777", "", "do it");
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND,
                   "leader_sign_off.ticket_id");
    Dispatch__LeaderSignOff body = DISPATCH__LEADER_SIGN_OFF__INIT;
    body.ticket_id = (char *)id;
    body.leader = "leader-zhao";
    body.instruction = "do it";
    request.actor_id = "leader-li";
    request.role = DISPATCH__ROLE__ROLE_LEADER;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF;
    request.leader_sign_off = &body;
    result = admin_send(f, &request);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "leader_sign_off.leader");

    /* Extension decisions on nothing pending, a negative time, lengths. */
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, id, "ext-1", true, 0);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND,
                   "extension_decision.request_id");
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, id, "ext-1", true, -5);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                   "extension_decision.new_deadline");
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, "", "ext-1", true, 0);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                   "extension_decision.ticket_id");
    result = decide(f, DISPATCH__ROLE__ROLE_SUPERVISOR, id, long_id, true, 0);
    assert_refused(&result, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE,
                   "extension_decision.request_id");
    /* Nothing of it left a trace. */
    assert_int_equal(count_events(f, "audit", NULL, DISPATCH__EVENT__BODY_SIGNED_OFF, NULL), 0);
    assert_int_equal(events_of(f, NULL, DISPATCH__EVENT__BODY_EXTENSION_GRANTED), 0);
}

static void test_hostile_events(void **state)
{
    fixture_t *f = *state;
    /* Undecodable, oversized, empty. */
    assert_int_equal(event_raw(f, "\x0a\xff\xff", 3), BUS_REJECTED);
    size_t big = EVENT_MAX_SIZE + 1;
    char *huge = calloc(1, big);
    assert_int_equal(event_raw(f, huge, big), BUS_REJECTED);
    free(huge);
    assert_int_equal(event_raw(f, "", 0), BUS_REJECTED);

    /* Escalation's own events coming back are refused. */
    Dispatch__ReminderSent reminder = DISPATCH__REMINDER_SENT__INIT;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_REMINDER_SENT;
    event.reminder_sent = &reminder;
    assert_int_equal(send_event(f, "CY-20260302-000600", &event), BUS_REJECTED);

    /* A dispatch without a ticket id, with an oversized id, without a unit. */
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = "cy-s01";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    assert_int_equal(send_event(f, "", &event), BUS_REJECTED);
    char long_id[100];
    memset(long_id, '7', 70);
    long_id[70] = '\0';
    assert_int_equal(send_event(f, long_id, &event), BUS_REJECTED);
    dispatched.unit_id = "";
    assert_int_equal(send_event(f, "CY-20260302-000601", &event), BUS_REJECTED);
    dispatched.unit_id = long_id;
    assert_int_equal(send_event(f, "CY-20260302-000601", &event), BUS_REJECTED);
    /* An unknown kind and urgency: decoded as out of range, refused. */
    dispatched.unit_id = "cy-s01";
    dispatched.kind = (Dispatch__Kind)42;
    assert_int_equal(send_event(f, "CY-20260302-000601", &event), BUS_REJECTED);
    /* No kind and urgency (an older router): the defaults apply. */
    dispatched.kind = DISPATCH__KIND__KIND_UNSPECIFIED;
    assert_int_equal(send_event(f, "CY-20260302-000601", &event), 0);
    Dispatch__Escalation__Case *record = get_case(f, "CY-20260302-000601");
    assert_non_null(record);
    assert_int_equal(record->sign_for->deadline, f->now + 2 * HOUR);
    dispatch__escalation__case__free_unpacked(record, NULL);

    /* Events about tickets not followed are consumed, change nothing. */
    Dispatch__TicketAccepted accept = DISPATCH__TICKET_ACCEPTED__INIT;
    accept.unit_id = "cy-s01";
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &accept;
    assert_int_equal(send_event(f, "CY-20260302-000602", &event), 0);
    assert_null(get_case(f, "CY-20260302-000602"));
    /* An accept by a unit that is not the lead changes nothing. */
    accept.unit_id = "cy-s99";
    assert_int_equal(send_event(f, "CY-20260302-000601", &event), 0);
    record = get_case(f, "CY-20260302-000601");
    assert_true(record->sign_for->active);
    dispatch__escalation__case__free_unpacked(record, NULL);
    /* An extension request with an oversized reason is refused. */
    Dispatch__ExtensionRequested ext = DISPATCH__EXTENSION_REQUESTED__INIT;
    char *long_text = malloc(2002);
    memset(long_text, 'x', 2001);
    long_text[2001] = '\0';
    ext.request_id = "x-1";
    ext.reason = long_text;
    event = (Dispatch__Event)DISPATCH__EVENT__INIT;
    event.body_case = DISPATCH__EVENT__BODY_EXTENSION_REQUESTED;
    event.extension_requested = &ext;
    assert_int_equal(send_event(f, "CY-20260302-000601", &event), BUS_REJECTED);
    free(long_text);
    ext.request_id = "";
    ext.reason = "ok";
    assert_int_equal(send_event(f, "CY-20260302-000601", &event), BUS_REJECTED);
    /* None of it emitted anything but the deadlines of the one valid dispatch. */
    assert_int_equal(events_of(f, NULL, DISPATCH__EVENT__BODY__NOT_SET), 1);
    assert_int_equal(events_of(f, "CY-20260302-000601", DISPATCH__EVENT__BODY_DEADLINES_SET), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calendar_2026_holidays),
        cmocka_unit_test(test_calendar_civil_dates),
        cmocka_unit_test(test_calendar_errors),
        cmocka_unit_test(test_deadline_table_defaults),
        cmocka_unit_test(test_deadline_table_lookup_and_errors),
        cmocka_unit_test(test_timer_index_order_and_pop),
        cmocka_unit_test_setup_teardown(test_urgent_ladder_to_leader_sign_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_firing_skips_stale_reminders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadlines_count_from_the_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_five_working_days_across_national_day, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_extension_granted_moves_refused_keeps, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_clock_pause_while_waiting_on_the_citizen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reopen_starts_a_new_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_firing_fires_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fire_batch_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_urgent_view_and_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_sign_off_goes_to_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_texts_in_listings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

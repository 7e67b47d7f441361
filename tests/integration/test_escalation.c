/* Intake, router and escalation as real processes on real sockets, on a
 * simulated business clock: every worker reads the time from one file
 * (--clock sim:FILE); a test writes a new instant there and then waits for
 * what must follow (a reminder at the unit's session, an entry in the
 * ticket's history, a queue listing), never for a while.
 *
 * Each test has its own small city (district chaoyang, units cy, cy-s01,
 * cy-s02) and the shipped deadline table and 2026 calendar
 * (deploy/data/deadlines.ini, calendar.ini). Instants are China Standard
 * Time, computed by hand in the comments. */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "calendar.h"
#include "dispatch_test.h"
#include "harness.h"

#define MINUTE (60LL * 1000)
#define HOUR (60 * MINUTE)
#define ESCALATION "escalation-chaoyang"
#define WAIT_MS 30000
#define MAX_LOG 4096

static const char *const DISTRICTS[] = {"chaoyang"};

static const char *const UNITS_CSV = "id,name,parent_id,level,district,active\n"
                                     "cy,Chaoyang District,,district,chaoyang,1\n"
                                     "cy-s01,Street One,cy,street,chaoyang,1\n"
                                     "cy-s02,Street Two,cy,street,chaoyang,1\n";
static const char *const RULES_CSV = "category,area,lead_unit,assisting_units,priority\n"
                                     "noise,,cy-s01,,0\n"
                                     "road-damage,,cy-s02,,0\n";

/* An instant in China Standard Time (UTC+8, no daylight saving). */
static int64_t cst(int year, int month, int day, int hour, int minute)
{
    return (calendar_day_from_date(year, month, day) * 86400 + hour * 3600 + minute * 60 -
            8 * 3600) *
           1000LL;
}

/* ------------------------------------------------------------ deliveries */

typedef struct delivered {
    char unit[64], ticket[64];
    Dispatch__UnitDelivery__BodyCase body;
    int64_t at;
    /* reminder */
    Dispatch__DeadlineKind deadline_kind;
    int64_t deadline;
    bool overdue;
    Dispatch__SupervisionLevel level;
    /* sign_off, extension_decision */
    char text[256];
    bool granted;
    int64_t new_deadline;
} delivered_t;

typedef struct delivery_log {
    delivered_t items[MAX_LOG];
    size_t count;
} delivery_log_t;

static void collect(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    delivery_log_t *log = ctx;
    assert_true(log->count < MAX_LOG);
    delivered_t *item = &log->items[log->count++];
    memset(item, 0, sizeof(*item));
    snprintf(item->unit, sizeof(item->unit), "%s", unit);
    snprintf(item->ticket, sizeof(item->ticket), "%s", d->ticket_id);
    item->body = d->body_case;
    item->at = d->at;
    if (d->body_case == DISPATCH__UNIT_DELIVERY__BODY_REMINDER) {
        item->deadline_kind = d->reminder->deadline_kind;
        item->deadline = d->reminder->deadline;
        item->overdue = d->reminder->overdue;
        item->level = d->reminder->level;
        snprintf(item->text, sizeof(item->text), "%s", d->reminder->text);
    } else if (d->body_case == DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF) {
        snprintf(item->text, sizeof(item->text), "%s", d->sign_off->instruction);
    } else if (d->body_case == DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION) {
        item->granted = d->extension_decision->granted;
        item->new_deadline = d->extension_decision->new_deadline;
        snprintf(item->text, sizeof(item->text), "%s", d->extension_decision->request_id);
    }
}

static size_t count_of(const delivery_log_t *log, const char *ticket,
                       Dispatch__UnitDelivery__BodyCase body)
{
    size_t n = 0;
    for (size_t i = 0; i < log->count; i++)
        if ((!ticket || strcmp(log->items[i].ticket, ticket) == 0) && log->items[i].body == body)
            n++;
    return n;
}

/* The last delivery of that kind about ticket. */
static const delivered_t *last_of(const delivery_log_t *log, const char *ticket,
                                  Dispatch__UnitDelivery__BodyCase body)
{
    for (size_t i = log->count; i-- > 0;)
        if (strcmp(log->items[i].ticket, ticket) == 0 && log->items[i].body == body)
            return &log->items[i];
    return NULL;
}

/* ------------------------------------------------------------ the world */

typedef struct world {
    void *zmq;
    char clock_dir[512], clock_path[600];
    char clock_spec[700]; /* --clock for every (re)start */
    int clock_fd;
    char *deadlines, *calendar;
    city_t *city;
    client_t *intake, *escalation; /* escalation: as sup-chen */
    client_t *leader;              /* the escalation, as leader-li */
    unit_pool_t *pool;
    unit_session_t *desk;
    delivery_log_t *log;
    int submitted, actions;
} world_t;

/* Moves business time: every worker reads it at its next look. Written in
 * place and at a fixed width, so a reader never sees a torn number. */
static void set_clock(world_t *w, int64_t ms)
{
    char text[32];
    int len = snprintf(text, sizeof(text), "%019lld", (long long)ms);
    assert_int_equal(pwrite(w->clock_fd, text, (size_t)len, 0), len);
}

static const char *units_url(world_t *w)
{
    return city_endpoint(w->city, "router-chaoyang", "units");
}

static int start_world(void **state, int64_t t0)
{
    world_t *w = calloc(1, sizeof(*w));
    w->log = calloc(1, sizeof(*w->log));
    w->zmq = zmq_ctx_new();
    assert_int_equal(harness_tmpdir("escalation-clock", w->clock_dir, sizeof(w->clock_dir)), 0);
    snprintf(w->clock_path, sizeof(w->clock_path), "%s/now", w->clock_dir);
    w->clock_fd = open(w->clock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(w->clock_fd >= 0);
    set_clock(w, t0);
    snprintf(w->clock_spec, sizeof(w->clock_spec), "sim:%s", w->clock_path);

    w->deadlines = test_deploy_data("deadlines.ini");
    w->calendar = test_deploy_data("calendar.ini");
    const char *files[] = {"deadlines.ini", w->deadlines, "calendar.ini", w->calendar, NULL};
    const char *rules[] = {RULES_CSV};
    /* Every ticket here is its own matter: no duplicate merging. */
    static const char *const intake_args[] = {"--duplicate-window-minutes", "0", NULL};
    city_options_t options = {
        .districts = DISTRICTS,
        .district_count = 1,
        .units_csv = UNITS_CSV,
        .rules_csv = rules,
        .intake_args = intake_args,
        .escalation = true,
        .escalation_files = files,
        .clock = w->clock_spec,
    };
    assert_int_equal(city_new("escalation", &options, &w->city), 0);
    assert_int_equal(city_start_all(w->city), 0);
    test_ctl_config(city_topology(w->city));
    const char *intake = city_endpoint(w->city, "intake-1", "request");
    const char *escalation = city_endpoint(w->city, ESCALATION, "request");
    assert_int_equal(client_new(w->zmq, intake, TEST_TIMEOUT_MS,
                                test_keys(w->city, "agent-7", intake), &w->intake),
                     0);
    assert_int_equal(client_new(w->zmq, escalation, TEST_TIMEOUT_MS,
                                test_keys(w->city, "sup-chen", escalation), &w->escalation),
                     0);
    assert_int_equal(client_new(w->zmq, escalation, TEST_TIMEOUT_MS,
                                test_keys(w->city, "leader-li", escalation), &w->leader),
                     0);
    assert_int_equal(unit_pool_new(w->zmq, w->city, 4, &w->pool), 0);
    assert_int_equal(unit_pool_connect(w->pool, units_url(w), "cy-s01", 0), 0);
    assert_int_equal(unit_session_new(w->zmq, units_url(w), "cy-s01", "desk",
                                      test_keys(w->city, "units", units_url(w)), &w->desk),
                     0);
    *state = w;
    return 0;
}

static int stop_world(void **state)
{
    world_t *w = *state;
    unit_session_destroy(&w->desk);
    unit_pool_destroy(&w->pool);
    client_destroy(&w->intake);
    client_destroy(&w->escalation);
    client_destroy(&w->leader);
    /* DISPATCH_KEEP_STATE=1 keeps the state directories for a look. */
    city_destroy(&w->city, getenv("DISPATCH_KEEP_STATE") != NULL);
    close(w->clock_fd);
    harness_rmtree(w->clock_dir);
    zmq_ctx_term(w->zmq);
    free(w->deadlines);
    free(w->calendar);
    free(w->log);
    free(w);
    return 0;
}

static int setup_march(void **state)
{
    return start_world(state, cst(2026, 3, 2, 9, 0)); /* a Monday */
}

static int setup_extension(void **state)
{
    return start_world(state, cst(2026, 3, 16, 9, 0)); /* a Monday */
}

static int setup_april(void **state)
{
    return start_world(state, cst(2026, 4, 13, 9, 0)); /* a Monday */
}

static int setup_national_day(void **state)
{
    return start_world(state, cst(2026, 9, 30, 10, 0)); /* Wednesday before National Day */
}

/* ------------------------------------------------------------ steps */

static void submit(world_t *w, Dispatch__Kind kind, Dispatch__Urgency urgency, char *ticket,
                   size_t len)
{
    char request_id[64], phone[32];
    snprintf(request_id, sizeof(request_id), "esc-%d", ++w->submitted);
    snprintf(phone, sizeof(phone), "1381234%04d", w->submitted);
    Dispatch__SubmitTicket body = DISPATCH__SUBMIT_TICKET__INIT;
    body.client_request_id = request_id;
    body.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    body.kind = kind;
    body.category = "noise";
    body.urgency = urgency;
    body.district = "chaoyang";
    body.caller_name = "Zhao Min";
    body.caller_phone = phone;
    body.description = "a construction site drills through the night";
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "agent-7";
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &body;
    Dispatch__Reply *reply = test_call_intake(w->intake, &request);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_SUBMIT);
    assert_int_equal(reply->submit->state, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    snprintf(ticket, len, "%s", reply->submit->ticket_id);
    dispatch__reply__free_unpacked(reply, NULL);
}

/* Polls the unit's session until `count` deliveries of that kind about
 * ticket (NULL = any) have arrived. */
static void wait_deliveries(world_t *w, const char *ticket, Dispatch__UnitDelivery__BodyCase body,
                            size_t count)
{
    int64_t deadline = harness_now_ms() + WAIT_MS;
    while (count_of(w->log, ticket, body) < count && harness_now_ms() < deadline)
        unit_pool_poll(w->pool, 50, collect, w->log);
    if (count_of(w->log, ticket, body) != count)
        fail_msg("%s: %zu deliveries of kind %d, expected %zu", ticket ? ticket : "all",
                 count_of(w->log, ticket, body), body, count);
}

static Dispatch__ActionResult *act(world_t *w, const char *ticket, Dispatch__UnitAction *action)
{
    char action_id[32];
    snprintf(action_id, sizeof(action_id), "desk-%d", ++w->actions);
    action->unit_id = "cy-s01";
    action->ticket_id = (char *)ticket;
    action->action_id = action_id;
    Dispatch__ActionResult *result = NULL;
    assert_int_equal(unit_session_act(w->desk, action, TEST_TIMEOUT_MS, &result), 0);
    if (result->error)
        fail_msg("%s: %s", ticket, result->error->message);
    return result;
}

static void sign_for(world_t *w, const char *ticket)
{
    Dispatch__SignFor body = DISPATCH__SIGN_FOR__INIT;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &body;
    dispatch__action_result__free_unpacked(act(w, ticket, &action), NULL);
}

static void resolve(world_t *w, const char *ticket)
{
    Dispatch__Resolve body = DISPATCH__RESOLVE__INIT;
    body.result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
    body.text = "the site stops at 22:00 from today";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_RESOLVE;
    action.resolve = &body;
    dispatch__action_result__free_unpacked(act(w, ticket, &action), NULL);
}

/* Returns the request id (the action id). */
static void request_extension(world_t *w, const char *ticket, uint32_t days, char *request_id,
                              size_t len)
{
    Dispatch__ExtensionRequest body = DISPATCH__EXTENSION_REQUEST__INIT;
    body.extra_working_days = days;
    body.reason = "the noise survey needs a second night";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_EXTENSION_REQUEST;
    action.extension_request = &body;
    Dispatch__ActionResult *result = act(w, ticket, &action);
    snprintf(request_id, len, "%s", result->action_id);
    dispatch__action_result__free_unpacked(result, NULL);
}

static Dispatch__AdminReply *admin(world_t *w, const char *actor, Dispatch__Role role,
                                   Dispatch__AdminRequest *request)
{
    /* A client speaks as its key's actor. */
    client_t *client = strcmp(actor, "leader-li") == 0 ? w->leader : w->escalation;
    Dispatch__AdminReply *reply = test_admin(client, actor, role, request);
    assert_non_null(reply);
    return reply;
}

/* The ticket ids of an escalation queue (at most max). A round trip to
 * escalation: it fires what is due by its clock before it answers. */
static size_t list_queue(world_t *w, Dispatch__QueueKind kind, char ids[][64], int64_t *deadlines,
                         size_t max)
{
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = kind;
    list.limit = 500;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    Dispatch__AdminReply *reply = admin(w, "sup-chen", DISPATCH__ROLE__ROLE_SUPERVISOR, &request);
    if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_QUEUE)
        fail_msg("list_queue: %s", reply->error ? reply->error->message : "no queue");
    size_t n = reply->queue->n_items;
    for (size_t i = 0; i < n && i < max; i++) {
        if (ids)
            snprintf(ids[i], 64, "%s", reply->queue->items[i]->ticket_id);
        if (deadlines)
            deadlines[i] = reply->queue->items[i]->deadline;
    }
    dispatch__admin_reply__free_unpacked(reply, NULL);
    return n;
}

static bool queued(world_t *w, Dispatch__QueueKind kind, const char *ticket, int64_t *deadline)
{
    char ids[500][64];
    int64_t deadlines[500];
    size_t n = list_queue(w, kind, ids, deadlines, 500);
    for (size_t i = 0; i < n && i < 500; i++) {
        if (strcmp(ids[i], ticket) == 0) {
            if (deadline)
                *deadline = deadlines[i];
            return true;
        }
    }
    return false;
}

/* Asks escalation until the ticket is (or is no longer) in the queue. */
static void wait_queued(world_t *w, Dispatch__QueueKind kind, const char *ticket, bool present)
{
    int64_t deadline = harness_now_ms() + WAIT_MS;
    while (queued(w, kind, ticket, NULL) != present && harness_now_ms() < deadline)
        ;
    if (queued(w, kind, ticket, NULL) != present)
        fail_msg("%s is %sin queue %d", ticket, present ? "not " : "", kind);
}

/* History entries of a type, with their instants. */
static size_t history_of(world_t *w, const char *ticket, Dispatch__EventType type, int64_t *at,
                         size_t max)
{
    Dispatch__Reply *keep = NULL;
    Dispatch__TicketView *view = test_get(w->intake, ticket, &keep);
    assert_non_null(view);
    size_t n = 0;
    for (size_t i = 0; i < view->n_history; i++) {
        if (view->history[i]->type != type)
            continue;
        if (at && n < max)
            at[n] = view->history[i]->at;
        n++;
    }
    dispatch__reply__free_unpacked(keep, NULL);
    return n;
}

static void wait_history(world_t *w, const char *ticket, Dispatch__EventType type, size_t count)
{
    int64_t deadline = harness_now_ms() + WAIT_MS;
    while (history_of(w, ticket, type, NULL, 0) < count && harness_now_ms() < deadline)
        ;
    if (history_of(w, ticket, type, NULL, 0) != count)
        fail_msg("%s: %zu history entries of type %d, expected %zu", ticket,
                 history_of(w, ticket, type, NULL, 0), type, count);
}

static Dispatch__AdminReply *leader_sign_off(world_t *w, const char *ticket,
                                             const char *instruction)
{
    Dispatch__LeaderSignOff body = DISPATCH__LEADER_SIGN_OFF__INIT;
    body.ticket_id = (char *)ticket;
    body.instruction = (char *)instruction;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF;
    request.leader_sign_off = &body;
    return admin(w, "leader-li", DISPATCH__ROLE__ROLE_LEADER, &request);
}

/* An urgent complaint (its id into ticket), dispatched; returns when it waits
 * in the urgent queue to be signed for. */
static void urgent_complaint(world_t *w, char *ticket, size_t len)
{
    submit(w, DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__URGENCY__URGENCY_URGENT, ticket, len);
    wait_deliveries(w, ticket, DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED, 1);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, ticket, true);
}

/* ---- Must show 1: the urgent ticket nobody signs for ---- */

static void test_urgent_ladder_and_sign_off(void **state)
{
    world_t *w = *state;
    int64_t t0 = cst(2026, 3, 2, 9, 0);
    char ticket[64];
    urgent_complaint(w, ticket, sizeof(ticket));
    int64_t deadline;
    assert_true(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, ticket, &deadline));
    assert_int_equal(deadline, t0 + 30 * MINUTE); /* sign for within 30 minutes */

    /* Reminders at 50% and 80% of the 30 minutes, the deadline, then the
     * ladder: district +30 min, city +1 h, leader sign-off +2 h. */
    struct {
        int64_t at;
        bool overdue;
        Dispatch__SupervisionLevel level;
    } steps[] = {
        {t0 + 15 * MINUTE, false, DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_NONE},
        {t0 + 24 * MINUTE, false, DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_NONE},
        {t0 + 30 * MINUTE, true, DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_UNIT_REMINDER},
        {t0 + 60 * MINUTE, true, DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_DISTRICT},
        {t0 + 90 * MINUTE, true, DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_CITY},
        {t0 + 150 * MINUTE, true, DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_LEADER_SIGN_OFF},
    };
    const size_t step_count = sizeof(steps) / sizeof(steps[0]);
    for (size_t i = 0; i < step_count; i++) {
        /* A millisecond before: escalation has looked at that time (the
         * queue listing is answered after it fired what was due) ... */
        set_clock(w, steps[i].at - 1);
        list_queue(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, NULL, NULL, 0);
        /* ... and at the instant, the reminder reaches the unit. */
        set_clock(w, steps[i].at);
        wait_deliveries(w, ticket, DISPATCH__UNIT_DELIVERY__BODY_REMINDER, i + 1);
        const delivered_t *reminder =
            last_of(w->log, ticket, DISPATCH__UNIT_DELIVERY__BODY_REMINDER);
        assert_int_equal(reminder->deadline_kind, DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR);
        assert_int_equal(reminder->deadline, t0 + 30 * MINUTE);
        assert_int_equal(reminder->overdue, steps[i].overdue);
        assert_int_equal(reminder->level, steps[i].level);
        assert_int_equal(reminder->at, steps[i].at);
    }
    /* Intake's history has each reminder at its instant, each level once. */
    wait_history(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_REMINDER_SENT, step_count);
    int64_t at[16];
    assert_int_equal(history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_REMINDER_SENT, at, 16),
                     step_count);
    for (size_t i = 0; i < step_count; i++)
        assert_int_equal(at[i], steps[i].at);
    assert_int_equal(
        history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_ESCALATED, at, 16), 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(at[i], steps[2 + i].at);
    assert_int_equal(history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_OVERDUE, at, 16),
                     1);
    assert_int_equal(at[0], t0 + 30 * MINUTE);
    assert_int_equal(
        history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_SIGN_OFF_REQUESTED, NULL, 0), 1);
    Dispatch__Reply *keep;
    Dispatch__TicketView *view = test_get(w->intake, ticket, &keep);
    assert_int_equal(view->ticket->supervision,
                     DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_LEADER_SIGN_OFF);
    dispatch__reply__free_unpacked(keep, NULL);

    /* In the leader sign-off queue; the leader's instruction reaches the unit. */
    assert_true(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, ticket, NULL));
    set_clock(w, t0 + 160 * MINUTE);
    Dispatch__AdminReply *reply =
        leader_sign_off(w, ticket, "Sign for it at once; stop the night work and report by 18:00");
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_DONE);
    assert_string_equal(reply->done->ticket_id, ticket);
    dispatch__admin_reply__free_unpacked(reply, NULL);
    wait_deliveries(w, ticket, DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF, 1);
    const delivered_t *instruction =
        last_of(w->log, ticket, DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF);
    assert_string_equal(instruction->text,
                        "Sign for it at once; stop the night work and report by 18:00");
    assert_int_equal(instruction->at, t0 + 160 * MINUTE);
    wait_history(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_SIGNED_OFF, 1);

    /* Tracked to completion: it leaves the queue when the unit resolves it. */
    sign_for(w, ticket);
    assert_true(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, ticket, NULL));
    resolve(w, ticket);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, ticket, false);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, ticket, false);
}

/* ---- Must show 2: 5 working days across National Day ---- */

static void test_five_working_days_before_national_day(void **state)
{
    world_t *w = *state;
    /* Registered Wed 2026-09-30 10:00. Oct 1-7 are holidays, Sat Oct 10 is
     * a make-up working day, Sun Oct 11 is off: the 5 working days are
     * Oct 8, 9, 10, 12, 13 and the ticket is due at 24:00 on Oct 13,
     * 2026-10-14 00:00 CST = 2026-10-13T16:00:00Z = 1791907200000. (Five
     * days without the calendar would have ended on Oct 7.) */
    const int64_t due = 1791907200000LL;
    assert_int_equal(cst(2026, 10, 14, 0, 0), due);
    const int64_t t0 = cst(2026, 9, 30, 10, 0);
    const int64_t sign_for_due = t0 + 2 * HOUR;
    char ticket[64];
    submit(w, DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__URGENCY__URGENCY_NORMAL, ticket,
           sizeof(ticket));
    wait_deliveries(w, ticket, DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED, 1);

    /* Nobody signs for it: both deadlines run their ladders through the
     * holiday.
     *  sign-for (2 h): reminders at 11:00 and 11:36, overdue at 12:00,
     *    district +2 h = 14:00, city +1 WD = 24:00 on Oct 8 (the first
     *    working day after Sep 30), leader +2 WD = 24:00 on Oct 9;
     *  handling (5 WD): working time 14 h + 5 x 24 h = 134 h; 50% is spent
     *    at Sat Oct 10 05:00 (14 + 24 + 24 + 5), 80% (107.2 h) at Mon Oct 12
     *    21:12; overdue at 24:00 on Oct 13. */
    const struct {
        int64_t at;
        Dispatch__DeadlineKind kind;
        bool overdue;
    } steps[] = {
        {t0 + HOUR, DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR, false},
        {t0 + 96 * MINUTE, DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR, false},
        {sign_for_due, DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR, true},
        {cst(2026, 9, 30, 14, 0), DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR, true},
        {cst(2026, 10, 9, 0, 0), DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR, true},
        {cst(2026, 10, 10, 0, 0), DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR, true},
        {cst(2026, 10, 10, 5, 0), DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE, false},
        {cst(2026, 10, 12, 21, 12), DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE, false},
        {due, DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE, true},
    };
    const size_t step_count = sizeof(steps) / sizeof(steps[0]);
    for (size_t i = 0; i < step_count; i++) {
        set_clock(w, steps[i].at - 1);
        list_queue(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, NULL, NULL, 0);
        set_clock(w, steps[i].at);
        wait_deliveries(w, ticket, DISPATCH__UNIT_DELIVERY__BODY_REMINDER, i + 1);
        const delivered_t *reminder =
            last_of(w->log, ticket, DISPATCH__UNIT_DELIVERY__BODY_REMINDER);
        assert_int_equal(reminder->at, steps[i].at);
        assert_int_equal(reminder->deadline_kind, steps[i].kind);
        assert_int_equal(
            reminder->deadline,
            steps[i].kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE ? due : sign_for_due);
        assert_int_equal(reminder->overdue, steps[i].overdue);
        if (steps[i].kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE)
            assert_non_null(strstr(reminder->text, "2026-10-14 00:00"));
    }

    /* The handling deadline is the one the overdue queue names now. */
    int64_t listed_deadline;
    assert_true(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, ticket, &listed_deadline));
    assert_int_equal(listed_deadline, sign_for_due); /* the sign-for one is overdue longest */
    sign_for(w, ticket);
    int64_t wait_until = harness_now_ms() + WAIT_MS;
    do
        queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, ticket, &listed_deadline);
    while (listed_deadline != due && harness_now_ms() < wait_until);
    assert_int_equal(listed_deadline, due);

    /* Intake's history: each step at its instant. */
    wait_history(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_REMINDER_SENT, step_count);
    int64_t at[16];
    history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_REMINDER_SENT, at, 16);
    for (size_t i = 0; i < step_count; i++)
        assert_int_equal(at[i], steps[i].at);
    assert_int_equal(history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_OVERDUE, at, 16),
                     2);
    assert_int_equal(at[0], sign_for_due);
    assert_int_equal(at[1], due);
    assert_int_equal(
        history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_ESCALATED, at, 16), 4);
    assert_int_equal(at[0], sign_for_due);
    assert_int_equal(at[1], steps[3].at);
    assert_int_equal(at[2], steps[4].at);
    assert_int_equal(at[3], steps[5].at);
}

/* ---- Must show 3: extension granted moves the deadline, refused keeps it ---- */

/* Two help tickets (ids into moved and kept, 64 bytes each), dispatched and
 * signed for, then at Mon 2026-03-16 10:00 each with an extension request
 * (ids into moved_request and kept_request): 3 working days for moved, 2
 * for kept. Returns when both wait for a supervisor (and escalation has
 * seen the sign-fors, which the router sent before the requests). */
static void two_extension_requests(world_t *w, char *moved, char *kept, char *moved_request,
                                   char *kept_request)
{
    submit(w, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_NORMAL, moved, 64);
    submit(w, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_NORMAL, kept, 64);
    wait_deliveries(w, NULL, DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED, 2);
    sign_for(w, moved);
    sign_for(w, kept);
    set_clock(w, cst(2026, 3, 16, 10, 0));
    request_extension(w, moved, 3, moved_request, 64);
    request_extension(w, kept, 2, kept_request, 64);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, moved, true);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, kept, true);
}

static void test_extension_granted_and_refused(void **state)
{
    world_t *w = *state;
    /* Mon 2026-03-16 09:00, help requests: 5 WD = Mar 17, 18, 19, 20, 23,
     * due at 24:00 on Mar 23 = 2026-03-24 00:00 CST. */
    const int64_t due = cst(2026, 3, 24, 0, 0);
    char moved[64], kept[64], moved_request[64], kept_request[64];
    two_extension_requests(w, moved, kept, moved_request, kept_request);

    /* Granted as asked: 3 WD more from the deadline's day (Mar 23): Mar 24,
     * 25, 26, due at 2026-03-27 00:00. */
    const int64_t extended = cst(2026, 3, 27, 0, 0);
    Dispatch__ExtensionDecision decision = DISPATCH__EXTENSION_DECISION__INIT;
    decision.ticket_id = moved;
    decision.request_id = moved_request;
    decision.granted = true;
    decision.note = "granted: one more night of measurements";
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION;
    request.extension_decision = &decision;
    Dispatch__AdminReply *reply = admin(w, "sup-chen", DISPATCH__ROLE__ROLE_SUPERVISOR, &request);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_DONE);
    dispatch__admin_reply__free_unpacked(reply, NULL);
    decision.ticket_id = kept;
    decision.request_id = kept_request;
    decision.granted = false;
    decision.note = "refused: measure tonight";
    reply = admin(w, "sup-chen", DISPATCH__ROLE__ROLE_SUPERVISOR, &request);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_DONE);
    dispatch__admin_reply__free_unpacked(reply, NULL);

    /* The unit hears both decisions. */
    wait_deliveries(w, moved, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION, 1);
    wait_deliveries(w, kept, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION, 1);
    const delivered_t *granted =
        last_of(w->log, moved, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION);
    assert_true(granted->granted);
    assert_int_equal(granted->new_deadline, extended);
    assert_string_equal(granted->text, moved_request);
    assert_false(last_of(w->log, kept, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION)->granted);
    wait_history(w, moved, DISPATCH__EVENT_TYPE__EVENT_TYPE_EXTENSION_GRANTED, 1);
    wait_history(w, kept, DISPATCH__EVENT_TYPE__EVENT_TYPE_EXTENSION_REFUSED, 1);
    Dispatch__Reply *keep;
    Dispatch__TicketView *view = test_get(w->intake, moved, &keep);
    assert_int_equal(view->ticket->deadline_handle, extended);
    assert_int_equal(view->ticket->extension_count, 1);
    dispatch__reply__free_unpacked(keep, NULL);

    /* At the old deadline only the refused one is overdue ... */
    set_clock(w, due - 1);
    assert_false(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, kept, NULL));
    set_clock(w, due);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, kept, true);
    assert_false(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, moved, NULL));
    wait_history(w, kept, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_OVERDUE, 1);
    assert_int_equal(history_of(w, moved, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_OVERDUE, NULL, 0),
                     0);
    /* ... and the extended one at its new deadline, which its overdue
     * reminder names. */
    set_clock(w, extended - 1);
    assert_false(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, moved, NULL));
    set_clock(w, extended);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, moved, true);
    int64_t listed_deadline;
    assert_true(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, moved, &listed_deadline));
    assert_int_equal(listed_deadline, extended);
    int64_t wait_until = harness_now_ms() + WAIT_MS;
    const delivered_t *overdue = NULL;
    while (!overdue && harness_now_ms() < wait_until) {
        unit_pool_poll(w->pool, 50, collect, w->log);
        for (size_t i = 0; i < w->log->count; i++)
            if (strcmp(w->log->items[i].ticket, moved) == 0 && w->log->items[i].overdue)
                overdue = &w->log->items[i];
    }
    assert_non_null(overdue);
    assert_int_equal(overdue->deadline, extended);
    assert_int_equal(overdue->at, extended);
}

/* ---- Must show 4: SIGKILL mid-schedule ---- */

#define CRASH_TICKETS 100

static void restart_escalation(world_t *w)
{
    assert_int_equal(city_start(w->city, ESCALATION), 0);
}

static void kill_escalation(world_t *w)
{
    int status = city_stop(w->city, ESCALATION, SIGKILL);
    assert_true(status >= 0);
}

static void test_sigkill_loses_no_timer_fires_none_twice(void **state)
{
    world_t *w = *state;
    int64_t t0 = cst(2026, 4, 13, 9, 0);
    char tickets[CRASH_TICKETS][64];
    for (int i = 0; i < CRASH_TICKETS; i++)
        submit(w, DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__URGENCY__URGENCY_URGENT, tickets[i],
               sizeof(tickets[i]));
    wait_deliveries(w, NULL, DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED, CRASH_TICKETS);
    int64_t deadline = harness_now_ms() + WAIT_MS;
    while (list_queue(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, NULL, NULL, 0) < CRASH_TICKETS &&
           harness_now_ms() < deadline)
        ;
    assert_int_equal(list_queue(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, NULL, NULL, 0),
                     CRASH_TICKETS);

    /* The six steps of the sign-for ladder, each with a kill at another
     * moment of it. */
    const int64_t steps[] = {t0 + 15 * MINUTE, t0 + 24 * MINUTE, t0 + 30 * MINUTE,
                             t0 + 60 * MINUTE, t0 + 90 * MINUTE, t0 + 150 * MINUTE};
    const size_t step_count = sizeof(steps) / sizeof(steps[0]);
    for (size_t i = 0; i < step_count; i++) {
        size_t expected = CRASH_TICKETS * (i + 1);
        switch (i) {
        case 0: /* time moves, then a kill at once: before, during or after the firing */
            set_clock(w, steps[i]);
            kill_escalation(w);
            restart_escalation(w);
            break;
        case 1: /* a kill when the first reminder of the step reached the unit */
            set_clock(w, steps[i]);
            deadline = harness_now_ms() + WAIT_MS;
            while (count_of(w->log, NULL, DISPATCH__UNIT_DELIVERY__BODY_REMINDER) ==
                       expected - CRASH_TICKETS &&
                   harness_now_ms() < deadline)
                unit_pool_poll(w->pool, 50, collect, w->log);
            kill_escalation(w);
            restart_escalation(w);
            break;
        case 2: /* time moves while escalation is down */
            kill_escalation(w);
            set_clock(w, steps[i]);
            restart_escalation(w);
            break;
        case 3: /* twice in a row, the second right after the restart */
            set_clock(w, steps[i]);
            kill_escalation(w);
            restart_escalation(w);
            kill_escalation(w);
            restart_escalation(w);
            break;
        case 4: /* after the step, before the next */
            set_clock(w, steps[i]);
            wait_deliveries(w, NULL, DISPATCH__UNIT_DELIVERY__BODY_REMINDER, expected);
            kill_escalation(w);
            restart_escalation(w);
            break;
        default:
            set_clock(w, steps[i]);
            break;
        }
        wait_deliveries(w, NULL, DISPATCH__UNIT_DELIVERY__BODY_REMINDER, expected);
    }

    /* A marker behind everything escalation sent: an instruction on the
     * first ticket. Links and the unit's queue keep order, so once it has
     * arrived every earlier reminder has too, at the unit and at intake. */
    Dispatch__AdminReply *reply = leader_sign_off(w, tickets[0], "report by 18:00");
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_DONE);
    dispatch__admin_reply__free_unpacked(reply, NULL);
    wait_deliveries(w, tickets[0], DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF, 1);
    wait_history(w, tickets[0], DISPATCH__EVENT_TYPE__EVENT_TYPE_SIGNED_OFF, 1);

    for (int i = 0; i < CRASH_TICKETS; i++) {
        const char *ticket = tickets[i];
        /* At the unit: each step once. */
        assert_int_equal(count_of(w->log, ticket, DISPATCH__UNIT_DELIVERY__BODY_REMINDER),
                         step_count);
        bool seen[6] = {false};
        for (size_t j = 0; j < w->log->count; j++) {
            const delivered_t *d = &w->log->items[j];
            if (strcmp(d->ticket, ticket) != 0 || d->body != DISPATCH__UNIT_DELIVERY__BODY_REMINDER)
                continue;
            for (size_t s = 0; s < step_count; s++)
                if (d->at == steps[s]) {
                    assert_false(seen[s]);
                    seen[s] = true;
                }
        }
        for (size_t s = 0; s < step_count; s++)
            assert_true(seen[s]);
        /* In intake's history: the same, and each level once. */
        int64_t at[16];
        assert_int_equal(
            history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_REMINDER_SENT, at, 16),
            step_count);
        for (size_t s = 0; s < step_count; s++)
            assert_int_equal(at[s], steps[s]);
        assert_int_equal(
            history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_ESCALATED, NULL, 0), 4);
        assert_int_equal(
            history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_OVERDUE, NULL, 0), 1);
        assert_int_equal(
            history_of(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_SIGN_OFF_REQUESTED, NULL, 0), 1);
    }
    assert_int_equal(list_queue(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, NULL, NULL, 0),
                     CRASH_TICKETS);
}

/* ---- A reset state dir on a link ---- */

/* The row of `peer` in `direction` ("out", "in") of dispatchctl links on
 * the router, into row ("" when none). */
static void links_row(world_t *w, const char *peer, const char *direction, char *row, size_t len)
{
    static char out[65536];
    row[0] = '\0';
    const char *admin = city_endpoint(w->city, "router-chaoyang", "request");
    if (test_ctl(out, sizeof(out), "--router", admin, "links", NULL) != 0)
        return;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64], dir[8];
        if (sscanf(line, "%63s %7s", name, dir) == 2 && strcmp(name, peer) == 0 &&
            strcmp(dir, direction) == 0) {
            snprintf(row, len, "%s", line);
            return;
        }
    }
}

/* Asks until the row holds `what` (a link changes with its next heartbeat). */
static bool links_row_shows(world_t *w, const char *peer, const char *direction, const char *what)
{
    char row[512];
    int64_t deadline = harness_now_ms() + WAIT_MS;
    do {
        links_row(w, peer, direction, row, sizeof(row));
        if (strstr(row, what))
            return true;
        poll(NULL, 0, 100);
    } while (harness_now_ms() < deadline);
    fprintf(stderr, "links: %s %s: \"%s\", not \"%s\"\n", peer, direction, row, what);
    return false;
}

/* Escalation's state dir is reset: the router's link to it sees another
 * incarnation in the acks and diverges; dispatchctl links says so, the
 * tickets dispatched meanwhile wait in the router's outbox. The operator's
 * `dispatchctl links accept` on the router sends them to the new state,
 * once. */
static void test_reset_escalation_diverges_until_accepted(void **state)
{
    world_t *w = *state;
    char before[64], during[64];
    submit(w, DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__URGENCY__URGENCY_URGENT, before,
           sizeof(before));
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, before, true);
    assert_true(links_row_shows(w, ESCALATION, "out", " up "));

    assert_true(WIFSIGNALED(city_stop(w->city, ESCALATION, SIGKILL)));
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/%s", city_dir(w->city), ESCALATION);
    assert_int_equal(harness_rmtree(dir), 0);
    assert_int_equal(city_start(w->city, ESCALATION), 0);

    submit(w, DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__URGENCY__URGENCY_URGENT, during,
           sizeof(during));
    wait_deliveries(w, during, DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED, 1);
    assert_true(links_row_shows(w, ESCALATION, "out", "DIVERGED:receiver-incarnation"));
    assert_false(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, during, NULL));

    static char out[65536];
    const char *admin = city_endpoint(w->city, "router-chaoyang", "request");
    assert_int_equal(test_ctl(out, sizeof(out), "--router", admin, "links", "accept",
                              "router-chaoyang", ESCALATION, NULL),
                     0);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, during, true);
    assert_true(links_row_shows(w, ESCALATION, "out", " up "));
    char ids[500][64];
    size_t n = list_queue(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, ids, NULL, 500);
    size_t seen = 0;
    for (size_t i = 0; i < n && i < 500; i++)
        seen += strcmp(ids[i], during) == 0;
    assert_int_equal(seen, 1);
    /* Nothing the router gave escalation's old state is sent again. */
    assert_false(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, before, NULL));
}

/* ---- Issue 18, Must show 1: supervisors and leaders through dispatchctl ---- */

static void test_supervise_through_dispatchctl(void **state)
{
    world_t *w = *state;
    char moved[64], kept[64], moved_request[64], kept_request[64];
    two_extension_requests(w, moved, kept, moved_request, kept_request);

    /* The supervisor's queue names both requests. */
    char out[16384];
    assert_int_equal(
        test_ctl(out, sizeof(out), "--actor", "sup-chen", "supervise", "extensions", NULL), 0);
    assert_non_null(strstr(out, moved));
    assert_non_null(strstr(out, kept));
    assert_non_null(strstr(out, "+3 working days"));
    /* A refusal without a reason, a decision on no request, a leader
     * deciding: each refused, nothing applied. */
    assert_int_equal(
        test_ctl(out, sizeof(out), "--actor", "sup-chen", "supervise", "refuse", kept, NULL), 2);
    assert_int_equal(test_ctl(out, sizeof(out), "--actor", "sup-chen", "supervise", "grant", kept,
                              "--request", "no-such-request", NULL),
                     3);
    assert_int_equal(test_ctl(out, sizeof(out), "--actor", "leader-li", "--role", "leader",
                              "supervise", "grant", kept, "--request", kept_request, NULL),
                     4);
    assert_int_equal(test_ctl(out, sizeof(out), "--actor", "sup-chen", "supervise", "grant", moved,
                              "--until", "2026-13-40", NULL),
                     2);

    /* Granted with another deadline than asked: the end of Monday Mar 30. */
    const int64_t extended = cst(2026, 3, 31, 0, 0);
    assert_int_equal(test_ctl(out, sizeof(out), "--actor", "sup-chen", "supervise", "grant", moved,
                              "--until", "2026-03-30", "--reason", "one more night of measurements",
                              NULL),
                     0);
    assert_non_null(strstr(out, "granted until 2026-03-31 00:00"));
    assert_int_equal(test_ctl(out, sizeof(out), "--actor", "sup-chen", "supervise", "refuse", kept,
                              "--reason", "measure tonight", NULL),
                     0);
    assert_non_null(strstr(out, "refused"));
    /* The queue is empty now; a repeated decision is refused as decided. */
    assert_int_equal(
        test_ctl(out, sizeof(out), "--actor", "sup-chen", "supervise", "extensions", NULL), 0);
    assert_null(strstr(out, moved));

    /* A leader's instruction on a ticket, and a sign-off of a special report. */
    assert_int_equal(test_ctl(out, sizeof(out), "--actor", "leader-li", "supervise", "sign-off",
                              kept, "--instruction", "visit the site tonight and report", NULL),
                     0);
    assert_int_equal(
        test_ctl(out, sizeof(out), "--actor", "leader-li", "supervise", "sign-offs", NULL), 0);
    assert_non_null(strstr(out, kept));
    assert_non_null(strstr(out, "visit the site tonight"));
    assert_int_equal(test_ctl(out, sizeof(out), "--actor", "leader-li", "supervise", "sign-off",
                              "--report", "categories-2026-03", "--instruction",
                              "noise doubled: a plan by Friday", NULL),
                     0);
    assert_non_null(strstr(out, "report categories-2026-03  signed off"));
    /* A supervisor may not sign off. */
    assert_int_equal(test_ctl(out, sizeof(out), "--actor", "sup-chen", "--role", "supervisor",
                              "supervise", "sign-off", moved, "--instruction", "x", NULL),
                     4);

    /* Each reaches the unit. */
    wait_deliveries(w, moved, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION, 1);
    wait_deliveries(w, kept, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION, 1);
    wait_deliveries(w, kept, DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF, 1);
    const delivered_t *granted =
        last_of(w->log, moved, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION);
    assert_true(granted->granted);
    assert_int_equal(granted->new_deadline, extended);
    assert_string_equal(granted->text, moved_request);
    const delivered_t *refused =
        last_of(w->log, kept, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION);
    assert_false(refused->granted);
    assert_string_equal(refused->text, kept_request);
    assert_string_equal(last_of(w->log, kept, DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF)->text,
                        "visit the site tonight and report");
    wait_history(w, moved, DISPATCH__EVENT_TYPE__EVENT_TYPE_EXTENSION_GRANTED, 1);
    wait_history(w, kept, DISPATCH__EVENT_TYPE__EVENT_TYPE_EXTENSION_REFUSED, 1);
    Dispatch__Reply *keep;
    Dispatch__TicketView *view = test_get(w->intake, moved, &keep);
    assert_int_equal(view->ticket->deadline_handle, extended);
    dispatch__reply__free_unpacked(keep, NULL);
}

/* ---- Issue 18: the intake's ticket view shows the deadlines ---- */

static void test_intake_view_shows_the_deadlines(void **state)
{
    world_t *w = *state;
    int64_t t0 = cst(2026, 3, 2, 9, 0);
    char ticket[64];
    urgent_complaint(w, ticket, sizeof(ticket));
    /* As soon as escalation has the clock running: sign for within 30
     * minutes, close within 24 hours (deploy/data/deadlines.ini). */
    int64_t until = harness_now_ms() + WAIT_MS;
    Dispatch__Reply *keep = NULL;
    Dispatch__TicketView *view = NULL;
    while (harness_now_ms() < until) {
        view = test_get(w->intake, ticket, &keep);
        if (view && view->ticket->deadline_sign_for && view->ticket->deadline_handle)
            break;
        dispatch__reply__free_unpacked(keep, NULL);
        keep = NULL;
        view = NULL;
    }
    if (!view)
        fail_msg("%s: the intake's view has no deadlines", ticket);
    assert_int_equal(view->ticket->deadline_sign_for, t0 + 30 * MINUTE);
    assert_true(view->ticket->deadline_handle > t0);
    dispatch__reply__free_unpacked(keep, NULL);
    /* After the 50 % reminder and the overdue mark, still there. */
    set_clock(w, t0 + 15 * MINUTE);
    wait_deliveries(w, ticket, DISPATCH__UNIT_DELIVERY__BODY_REMINDER, 1);
    set_clock(w, t0 + 30 * MINUTE);
    wait_history(w, ticket, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_OVERDUE, 1);
    view = test_get(w->intake, ticket, &keep);
    assert_int_equal(view->ticket->deadline_sign_for, t0 + 30 * MINUTE);
    assert_true(view->ticket->deadline_handle > t0);
    dispatch__reply__free_unpacked(keep, NULL);
}

/* ---- Issue 18, Must show 1: the demo's supervisors and leader ---- */

/* The value of `key=` in a progress line, or 0. */
static unsigned long long progress_value(const char *line, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof(pattern), " %s=", key);
    const char *at = strstr(line, pattern);
    return at ? strtoull(at + strlen(pattern), NULL, 10) : 0;
}

static void test_unitsim_supervisors_decide_and_sign_off(void **state)
{
    world_t *w = *state;
    int64_t t0 = cst(2026, 3, 2, 9, 0);
    /* An urgent ticket nobody signs for climbs to the leader's queue
     * (t0 + 150 min); two others ask for more time. */
    char urgent[64], first[64], second[64], request[64];
    submit(w, DISPATCH__KIND__KIND_COMPLAINT, DISPATCH__URGENCY__URGENCY_URGENT, urgent,
           sizeof(urgent));
    submit(w, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_NORMAL, first, sizeof(first));
    submit(w, DISPATCH__KIND__KIND_HELP, DISPATCH__URGENCY__URGENCY_NORMAL, second, sizeof(second));
    wait_deliveries(w, NULL, DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED, 3);
    sign_for(w, first);
    sign_for(w, second);
    request_extension(w, first, 2, request, sizeof(request));
    request_extension(w, second, 3, request, sizeof(request));
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, first, true);
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, second, true);
    static const int64_t ladder[] = {15, 24, 30, 60, 90, 150};
    for (size_t i = 0; i < sizeof(ladder) / sizeof(*ladder); i++) {
        set_clock(w, t0 + ladder[i] * MINUTE);
        list_queue(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, NULL, NULL, 0);
    }
    wait_queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, urgent, true);

    /* The simulator with no units of its own: the district's supervisor
     * and the leader, with their own keys. */
    char keys[512], key_path[700];
    snprintf(key_path, sizeof(key_path), "%s/units.key_secret",
             city_keys_dir(w->city, keys, sizeof(keys)));
    const char *argv[] = {harness_program("UNITSIM", "tools/dispatch-unitsim"),
                          "--config",
                          city_topology(w->city),
                          "--clock",
                          w->clock_spec,
                          "--key",
                          key_path,
                          "--units",
                          "none",
                          "--supervisors",
                          "--supervisor",
                          "sup-chen",
                          "--leader",
                          "leader-li",
                          "--grant-share",
                          "50%",
                          "--progress-every",
                          "100",
                          NULL};
    harness_proc_t *sim;
    assert_int_equal(harness_spawn(argv, true, &sim), 0);
    assert_int_equal(harness_wait_ready(sim, WAIT_MS), 0);
    char line[4096] = "";
    unsigned long long decided = 0, signed_off = 0;
    int64_t until = harness_now_ms() + WAIT_MS;
    while ((decided < 2 || signed_off < 1) && harness_now_ms() < until) {
        if (harness_progress_line(sim, line, sizeof(line), 1000) != 1)
            continue;
        decided = progress_value(line, "ext_granted") + progress_value(line, "ext_refused");
        signed_off = progress_value(line, "signed_off");
    }
    assert_int_equal(decided, 2);
    assert_int_equal(signed_off, 1);
    harness_stop(sim, WAIT_MS);
    harness_destroy(&sim);

    /* The unit hears each decision and the instruction. */
    wait_deliveries(w, first, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION, 1);
    wait_deliveries(w, second, DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION, 1);
    wait_deliveries(w, urgent, DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF, 1);
    assert_false(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, first, NULL));
    assert_false(queued(w, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, second, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_urgent_ladder_and_sign_off, setup_march, stop_world),
        cmocka_unit_test_setup_teardown(test_five_working_days_before_national_day,
                                        setup_national_day, stop_world),
        cmocka_unit_test_setup_teardown(test_extension_granted_and_refused, setup_extension,
                                        stop_world),
        cmocka_unit_test_setup_teardown(test_supervise_through_dispatchctl, setup_extension,
                                        stop_world),
        cmocka_unit_test_setup_teardown(test_unitsim_supervisors_decide_and_sign_off, setup_march,
                                        stop_world),
        cmocka_unit_test_setup_teardown(test_intake_view_shows_the_deadlines, setup_march,
                                        stop_world),
        cmocka_unit_test_setup_teardown(test_reset_escalation_diverges_until_accepted, setup_march,
                                        stop_world),
        cmocka_unit_test_setup_teardown(test_sigkill_loses_no_timer_fires_none_twice, setup_april,
                                        stop_world),
    };
    /* TEST_FILTER=test_supervise* runs the tests whose names match. */
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

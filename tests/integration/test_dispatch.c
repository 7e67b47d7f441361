/* Intake and routers as real processes on real sockets: the life of a
 * ticket from a citizen's call to the responsible unit and back.
 *
 * One city for the whole file: three districts, 3,015 units, the rules of
 * tests/harness/citydata.c. Each test uses its own callers and areas so the
 * tests do not see each other's tickets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "bus.h"
#include "citydata.h"
#include "dispatch_test.h"
#include "event.h"
#include "harness.h"
#include "loop.h"
#include "raw_request.h"
#include "store.h"
#include "submitter.h"
#include "worker.h"

typedef struct world {
    void *zmq;
    city_t *city;
    client_t *intake;
    client_t *router[CITYDATA_DISTRICTS];
} world_t;

static world_t world;

static const char *router_name(int d, char *buf, size_t len)
{
    snprintf(buf, len, "router-%s", citydata_districts[d]);
    return buf;
}

static const char *units_url(int d)
{
    char name[64];
    return city_endpoint(world.city, router_name(d, name, sizeof(name)), "units");
}

static int start_world(void **state)
{
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);

    world.zmq = zmq_ctx_new();
    zmq_ctx_set(world.zmq, ZMQ_MAX_SOCKETS, 16384);
    char *units = citydata_units_csv();
    char *rules[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        rules[d] = citydata_rules_csv(citydata_districts[d]);
    char *deadlines = test_deploy_data("deadlines.ini");
    char *calendar = test_deploy_data("calendar.ini");
    const char *escalation_files[] = {"deadlines.ini", deadlines, "calendar.ini", calendar, NULL};
    /* The whole chain: every event reaches escalation and audit too. */
    city_options_t options = {
        .districts = citydata_districts,
        .district_count = CITYDATA_DISTRICTS,
        .units_csv = units,
        .rules_csv = (const char *const *)rules,
        .escalation = true,
        .escalation_files = escalation_files,
        .audit = true,
    };
    int rc = city_new("dispatch", &options, &world.city);
    free(units);
    free(deadlines);
    free(calendar);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        free(rules[d]);
    if (rc == 0)
        test_ctl_config(city_topology(world.city));
    if (rc == 0)
        rc = city_start_all(world.city);
    if (rc == 0)
        rc = client_new(
            world.zmq, city_endpoint(world.city, "intake-1", "request"), TEST_TIMEOUT_MS,
            test_keys(world.city, "agent-7", city_endpoint(world.city, "intake-1", "request")),
            &world.intake);
    for (int d = 0; rc == 0 && d < CITYDATA_DISTRICTS; d++) {
        char name[64];
        const char *url = city_endpoint(world.city, router_name(d, name, sizeof(name)), "request");
        rc = client_new(world.zmq, url, TEST_TIMEOUT_MS,
                        test_keys(world.city, "dispatcher-li", url), &world.router[d]);
    }
    return rc;
}

static int stop_world(void **state)
{
    client_destroy(&world.intake);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        client_destroy(&world.router[d]);
    /* DISPATCH_KEEP_STATE=1 keeps the state directories for a look. */
    city_destroy(&world.city, getenv("DISPATCH_KEEP_STATE") != NULL);
    zmq_ctx_term(world.zmq);
    return 0;
}

/* ---- a single unit's deliveries, for the story tests ---- */

typedef struct inbox {
    char ticket[64][64];
    Dispatch__UnitDelivery__BodyCase kind[64];
    char unit[64][64];
    size_t count;
} inbox_t;

static void to_inbox(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    inbox_t *inbox = ctx;
    if (inbox->count < 64) {
        snprintf(inbox->ticket[inbox->count], 64, "%s", d->ticket_id);
        snprintf(inbox->unit[inbox->count], 64, "%s", unit);
        inbox->kind[inbox->count++] = d->body_case;
    }
}

/* Polls until the inbox holds `count` deliveries. */
static void wait_deliveries(unit_pool_t *pool, inbox_t *inbox, size_t count)
{
    for (int i = 0; i < 200 && inbox->count < count; i++)
        unit_pool_poll(pool, 50, to_inbox, inbox);
    assert_int_equal(inbox->count, count);
}

static Dispatch__ActionResult *act(unit_session_t *session, const char *unit, const char *ticket,
                                   const char *action_id, Dispatch__UnitAction *action)
{
    action->unit_id = (char *)unit;
    action->ticket_id = (char *)ticket;
    action->action_id = (char *)action_id;
    Dispatch__ActionResult *result = NULL;
    assert_int_equal(unit_session_act(session, action, TEST_TIMEOUT_MS, &result), 0);
    return result;
}

static void sign_for(unit_session_t *session, const char *unit, const char *ticket,
                     const char *action_id)
{
    Dispatch__SignFor sign = DISPATCH__SIGN_FOR__INIT;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &sign;
    Dispatch__ActionResult *result = act(session, unit, ticket, action_id, &action);
    assert_null(result->error);
    assert_int_equal(result->state, DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED);
    dispatch__action_result__free_unpacked(result, NULL);
}

static void resolve(unit_session_t *session, const char *unit, const char *ticket,
                    const char *action_id)
{
    Dispatch__Resolve body = DISPATCH__RESOLVE__INIT;
    body.result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
    body.text = "repaired and made safe";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_RESOLVE;
    action.resolve = &body;
    Dispatch__ActionResult *result = act(session, unit, ticket, action_id, &action);
    assert_null(result->error);
    assert_int_equal(result->state, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED);
    dispatch__action_result__free_unpacked(result, NULL);
}

static Dispatch__Reply *callback(const char *ticket, const char *request_id,
                                 Dispatch__Satisfaction satisfaction, bool solved)
{
    Dispatch__Callback body = DISPATCH__CALLBACK__INIT;
    body.client_request_id = (char *)request_id;
    body.ticket_id = (char *)ticket;
    body.satisfaction = satisfaction;
    body.solved = solved;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "agent-7";
    request.body_case = DISPATCH__REQUEST__BODY_CALLBACK;
    request.callback = &body;
    Dispatch__Reply *reply = test_call_intake(world.intake, &request);
    assert_non_null(reply);
    return reply;
}

/* Must show 1: the manhole cover whose owner nobody knew. */
static void test_manhole_cover_end_to_end(void **state)
{
    unit_pool_t *pool;
    unit_pool_new(world.zmq, world.city, 4, &pool);
    assert_int_equal(unit_pool_connect(pool, units_url(0), "power-company", 0), 0);
    inbox_t inbox = {0};

    Dispatch__Reply *keep;
    Dispatch__SubmitReply *submitted =
        test_submit(world.intake, "manhole-1", "chaoyang", "manhole-cover", "chaoyang-s03",
                    "13812340001", "12 Renmin Street, by the bus stop", &keep);
    assert_non_null(submitted);
    assert_int_equal(submitted->state, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    char ticket[64];
    snprintf(ticket, sizeof(ticket), "%s", submitted->ticket_id);
    dispatch__reply__free_unpacked(keep, NULL);

    /* No rule owns manhole covers: the router puts it in triage. */
    assert_true(test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE));
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    Dispatch__AdminReply *reply =
        test_admin(world.router[0], "dispatcher-li", DISPATCH__ROLE__ROLE_DISPATCHER, &request);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_QUEUE);
    bool listed = false;
    for (size_t i = 0; i < reply->queue->n_items; i++)
        listed |= strcmp(reply->queue->items[i]->ticket_id, ticket) == 0;
    assert_true(listed);
    dispatch__admin_reply__free_unpacked(reply, NULL);

    /* The dispatcher finds it is a power-company well. */
    Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
    assign.ticket_id = ticket;
    assign.lead_unit = "power-company";
    assign.note = "cable well of the power grid, not a municipal manhole";
    request = (Dispatch__AdminRequest)DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN;
    request.triage_assign = &assign;
    reply = test_admin(world.router[0], "dispatcher-li", DISPATCH__ROLE__ROLE_DISPATCHER, &request);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_DONE);
    dispatch__admin_reply__free_unpacked(reply, NULL);

    wait_deliveries(pool, &inbox, 1);
    assert_string_equal(inbox.ticket[0], ticket);
    assert_int_equal(inbox.kind[0], DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED);

    unit_session_t *desk;
    assert_int_equal(unit_session_new(world.zmq, units_url(0), "power-company", "desk",
                                      test_keys(world.city, "units", units_url(0)), &desk),
                     0);
    sign_for(desk, "power-company", ticket, "pc-1");
    resolve(desk, "power-company", ticket, "pc-2");
    unit_session_destroy(&desk);
    assert_true(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED));

    Dispatch__Reply *called =
        callback(ticket, "cb-manhole-1", DISPATCH__SATISFACTION__SATISFACTION_SATISFIED, true);
    assert_int_equal(called->body_case, DISPATCH__REPLY__BODY_CALLBACK);
    assert_int_equal(called->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    dispatch__reply__free_unpacked(called, NULL);

    Dispatch__TicketView *view = test_get(world.intake, ticket, &keep);
    assert_non_null(view);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED);
    assert_string_equal(view->ticket->assigned_unit, "power-company");
    const Dispatch__EventType steps[] = {
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REGISTERED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_TRIAGED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TRIAGE_ASSIGNED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_DISPATCHED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_ACCEPTED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_RESOLVED,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_CALLED_BACK,
        DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_CLOSED,
    };
    /* Every step, in this order. */
    size_t at = 0;
    for (size_t i = 0; i < view->n_history && at < sizeof(steps) / sizeof(steps[0]); i++)
        if (view->history[i]->type == steps[at])
            at++;
    assert_int_equal(at, sizeof(steps) / sizeof(steps[0]));
    dispatch__reply__free_unpacked(keep, NULL);
    unit_pool_destroy(&pool);
}

/* ---- Must show 2: 10,000 tickets, 3,015 units ---- */

typedef struct expectation {
    char district[16], category[32], area[64];
    char lead[64], assist[64];
    char ticket[64];
    int lead_seen, assist_seen, wrong;
} expectation_t;

typedef struct routing_run {
    expectation_t *cases;
    size_t count;
    size_t *by_ticket; /* indexes sorted by ticket id */
    size_t delivered, expected_deliveries, strays;
} routing_run_t;

static routing_run_t *sorting_run;

static int by_ticket_cmp(const void *a, const void *b)
{
    return strcmp(sorting_run->cases[*(const size_t *)a].ticket,
                  sorting_run->cases[*(const size_t *)b].ticket);
}

static expectation_t *find_case(routing_run_t *run, const char *ticket)
{
    size_t lo = 0, hi = run->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(run->cases[run->by_ticket[mid]].ticket, ticket);
        if (c == 0)
            return &run->cases[run->by_ticket[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void on_submitted(void *ctx, size_t index, const Dispatch__Reply *reply)
{
    routing_run_t *run = ctx;
    if (reply->body_case == DISPATCH__REPLY__BODY_SUBMIT)
        snprintf(run->cases[index].ticket, 64, "%s", reply->submit->ticket_id);
}

static void on_delivery(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    routing_run_t *run = ctx;
    if (d->body_case != DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED) {
        run->strays++;
        return;
    }
    expectation_t *e = find_case(run, d->ticket_id);
    if (!e) {
        run->strays++;
        return;
    }
    run->delivered++;
    bool lead = d->dispatched->role == DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD;
    if (lead && strcmp(unit, e->lead) == 0)
        e->lead_seen++;
    else if (!lead && strcmp(unit, e->assist) == 0)
        e->assist_seen++;
    else
        e->wrong++;
}

static void test_ten_thousand_tickets_reach_their_units(void **state)
{
    enum { TICKETS = 10000 };
    routing_run_t run = {.count = TICKETS};
    run.cases = calloc(TICKETS, sizeof(*run.cases));
    run.by_ticket = calloc(TICKETS, sizeof(*run.by_ticket));

    /* Every unit of the city connects, to see that nothing reaches a unit
     * that should not get it: a district's units to their district's
     * router, city-level units (bureaus, enterprises) to every router. */
    char *units = citydata_units_csv();
    unit_pool_t *pools[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        unit_pool_new(world.zmq, world.city, CITYDATA_UNITS, &pools[d]);
    size_t connected = 0;
    for (char *line = strchr(units, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        char id[64], district[64] = "";
        size_t len = strcspn(line, ",");
        snprintf(id, sizeof(id), "%.*s", (int)len, line);
        const char *field = line;
        for (int f = 0; f < 4; f++)
            field += strcspn(field, ",") + 1; /* id,name,parent_id,level,district */
        snprintf(district, sizeof(district), "%.*s", (int)strcspn(field, ",\n"), field);
        for (int d = 0; d < CITYDATA_DISTRICTS; d++)
            if (!district[0] || strcmp(district, citydata_districts[d]) == 0)
                assert_int_equal(unit_pool_connect(pools[d], units_url(d), id, 0), 0);
        connected++;
    }
    free(units);
    assert_int_equal(connected, CITYDATA_UNITS);

    submitter_t *submitter;
    assert_int_equal(submitter_new(world.zmq, city_endpoint(world.city, "intake-1", "request"), 64,
                                   test_keys(world.city, "agent-7",
                                             city_endpoint(world.city, "intake-1", "request")),
                                   &submitter),
                     0);
    srand(20261125);
    size_t triaged = 0;
    for (size_t i = 0; i < TICKETS; i++) {
        expectation_t *e = &run.cases[i];
        int d = rand() % CITYDATA_DISTRICTS;
        const char *district = citydata_districts[d];
        const char *category = citydata_categories[rand() % (int)citydata_category_count];
        int street = 1 + rand() % CITYDATA_STREETS;
        switch (rand() % 3) {
        case 0:
            citydata_street(e->area, sizeof(e->area), district, street);
            break;
        case 1:
            citydata_community(e->area, sizeof(e->area), district, street,
                               1 + rand() % CITYDATA_COMMUNITIES);
            break;
        default:
            e->area[0] = '\0';
            break;
        }
        snprintf(e->district, sizeof(e->district), "%s", district);
        snprintf(e->category, sizeof(e->category), "%s", category);
        citydata_expected(district, category, e->area, e->lead, sizeof(e->lead), e->assist,
                          sizeof(e->assist));
        if (!e->lead[0])
            triaged++;
        run.expected_deliveries += (e->lead[0] != 0) + (e->assist[0] != 0);

        char request_id[32], phone[32];
        snprintf(request_id, sizeof(request_id), "route-%zu", i);
        snprintf(phone, sizeof(phone), "139%08zu", i); /* distinct callers: no merging */
        Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
        submit.client_request_id = request_id;
        submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
        submit.kind = DISPATCH__KIND__KIND_COMPLAINT;
        submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
        submit.district = (char *)district;
        submit.category = (char *)category;
        submit.area = e->area;
        submit.caller_phone = phone;
        submit.description = "routing run";
        submitter_add(submitter, "", &submit); /* the key's actor */
    }
    assert_int_equal(submitter_run(submitter, 5000, 300000, on_submitted, NULL, &run), 0);
    submitter_destroy(&submitter);
    for (size_t i = 0; i < TICKETS; i++) {
        assert_true(run.cases[i].ticket[0] != '\0');
        run.by_ticket[i] = i;
    }
    sorting_run = &run;
    qsort(run.by_ticket, TICKETS, sizeof(size_t), by_ticket_cmp);

    for (int round = 0; round < 2000 && run.delivered < run.expected_deliveries; round++)
        for (int d = 0; d < CITYDATA_DISTRICTS; d++)
            unit_pool_poll(pools[d], 10, on_delivery, &run);
    /* Anything beyond the expected would show up now. */
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        unit_pool_poll(pools[d], 200, on_delivery, &run);

    size_t wrong = 0, missing = 0;
    for (size_t i = 0; i < TICKETS; i++) {
        expectation_t *e = &run.cases[i];
        wrong += (size_t)e->wrong;
        if (e->lead_seen != (e->lead[0] ? 1 : 0) || e->assist_seen != (e->assist[0] ? 1 : 0)) {
            if (missing++ < 5)
                fprintf(stderr, "ticket %s (%s %s %s): lead %s seen %d, assist %s seen %d\n",
                        e->ticket, e->district, e->category, e->area, e->lead, e->lead_seen,
                        e->assist, e->assist_seen);
        }
    }
    printf("routing: %zu tickets, %zu deliveries expected, %zu delivered, %zu to triage, "
           "%zu wrong, %zu strays\n",
           (size_t)TICKETS, run.expected_deliveries, run.delivered, triaged, wrong, run.strays);
    assert_int_equal(missing, 0);
    assert_int_equal(wrong, 0);
    assert_int_equal(run.strays, 0);
    assert_int_equal(run.delivered, run.expected_deliveries);

    /* The ones no rule owns wait in their district's triage queue. */
    size_t in_triage = 0;
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        char after[64] = "";
        for (;;) {
            Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
            list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE;
            list.limit = 500;
            list.after_ticket_id = after;
            Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
            request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
            request.list_queue = &list;
            Dispatch__AdminReply *reply = test_admin(world.router[d], "dispatcher-li",
                                                     DISPATCH__ROLE__ROLE_DISPATCHER, &request);
            assert_non_null(reply);
            assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_QUEUE);
            for (size_t i = 0; i < reply->queue->n_items; i++) {
                expectation_t *e = find_case(&run, reply->queue->items[i]->ticket_id);
                if (e) {
                    assert_string_equal(e->lead, "");
                    in_triage++;
                }
            }
            bool more = reply->queue->more && reply->queue->n_items > 0;
            if (more)
                snprintf(after, sizeof(after), "%s",
                         reply->queue->items[reply->queue->n_items - 1]->ticket_id);
            dispatch__admin_reply__free_unpacked(reply, NULL);
            if (!more)
                break;
        }
    }
    assert_int_equal(in_triage, triaged);

    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        unit_pool_destroy(&pools[d]);
    free(run.cases);
    free(run.by_ticket);
}

/* ---- Must show 3: return and reroute, merge, idempotent resubmit, offline
 * unit catching up, reopen ---- */

static char *submit_ticket(const char *request_id, const char *district, const char *category,
                           const char *area, const char *phone, Dispatch__TicketState expect)
{
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *reply =
        test_submit(world.intake, request_id, district, category, area, phone, NULL, &keep);
    assert_non_null(reply);
    assert_int_equal(reply->state, expect);
    char *ticket = strdup(reply->ticket_id);
    dispatch__reply__free_unpacked(keep, NULL);
    return ticket;
}

static void return_ticket(unit_session_t *session, const char *unit, const char *ticket,
                          const char *action_id)
{
    Dispatch__ReturnTicket body = DISPATCH__RETURN_TICKET__INIT;
    body.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_NOT_OUR_DUTY;
    body.reason = "the noise comes from a construction site: housing bureau";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_RETURN_TICKET;
    action.return_ticket = &body;
    Dispatch__ActionResult *result = act(session, unit, ticket, action_id, &action);
    assert_null(result->error);
    dispatch__action_result__free_unpacked(result, NULL);
}

static void test_return_reroute_then_triage(void **state)
{
    const char *street = "kuancheng-s05", *office = "office-kuancheng";
    unit_pool_t *pool;
    unit_pool_new(world.zmq, world.city, 4, &pool);
    unit_pool_connect(pool, units_url(2), street, 0);
    unit_pool_connect(pool, units_url(2), office, 0);
    inbox_t inbox = {0};
    char *ticket = submit_ticket("return-1", "kuancheng", "noise", street, "13900000051",
                                 DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    wait_deliveries(pool, &inbox, 1);
    assert_string_equal(inbox.unit[0], street);

    unit_session_t *desk;
    unit_session_new(world.zmq, units_url(2), street, "desk",
                     test_keys(world.city, "units", units_url(2)), &desk);
    return_ticket(desk, street, ticket, "ret-1");
    unit_session_destroy(&desk);
    /* The street office is told it lost the ticket; the district office,
     * the category's default owner, gets it. */
    wait_deliveries(pool, &inbox, 3);
    bool withdrawn = false, rerouted = false;
    for (size_t i = 1; i < 3; i++) {
        withdrawn |= strcmp(inbox.unit[i], street) == 0 &&
                     inbox.kind[i] == DISPATCH__UNIT_DELIVERY__BODY_WITHDRAWN;
        rerouted |= strcmp(inbox.unit[i], office) == 0 &&
                    inbox.kind[i] == DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED;
    }
    assert_true(withdrawn);
    assert_true(rerouted);

    /* The office returns it too: no candidate is left, a dispatcher decides. */
    unit_session_new(world.zmq, units_url(2), office, "desk",
                     test_keys(world.city, "units", units_url(2)), &desk);
    return_ticket(desk, office, ticket, "ret-2");
    unit_session_destroy(&desk);
    assert_true(test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE));
    Dispatch__Reply *keep;
    Dispatch__TicketView *view = test_get(world.intake, ticket, &keep);
    assert_non_null(view);
    assert_int_equal(view->ticket->return_count, 2);
    assert_true(test_history_has(view, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_RETURNED));
    assert_true(test_history_has(view, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REROUTED));
    assert_true(test_history_has(view, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_TRIAGED));
    dispatch__reply__free_unpacked(keep, NULL);
    free(ticket);
    unit_pool_destroy(&pool);
}

static void test_duplicate_report_is_merged(void **state)
{
    char *master = submit_ticket("merge-1", "chaoyang", "noise", "chaoyang-s07", "13900000077",
                                 DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *again = test_submit(world.intake, "merge-2", "chaoyang", "noise",
                                               "chaoyang-s07", "13900000077", NULL, &keep);
    assert_non_null(again);
    assert_int_equal(again->state, DISPATCH__TICKET_STATE__TICKET_STATE_MERGED);
    assert_string_equal(again->master_id, master);
    assert_string_not_equal(again->ticket_id, master);
    dispatch__reply__free_unpacked(keep, NULL);

    Dispatch__TicketView *view = test_get(world.intake, master, &keep);
    assert_non_null(view);
    assert_true(test_history_has(view, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_MERGED));
    dispatch__reply__free_unpacked(keep, NULL);
    free(master);
}

static void test_resubmit_returns_the_original_across_restart(void **state)
{
    char *ticket = submit_ticket("idem-1", "nanguan", "greening", "nanguan-s02", "13900000101",
                                 DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *again = test_submit(world.intake, "idem-1", "nanguan", "greening",
                                               "nanguan-s02", "13900000101", NULL, &keep);
    assert_non_null(again);
    assert_string_equal(again->ticket_id, ticket);
    assert_false(again->created);
    dispatch__reply__free_unpacked(keep, NULL);

    assert_true(WIFSIGNALED(city_stop(world.city, "intake-1", SIGKILL)));
    assert_int_equal(city_start(world.city, "intake-1"), 0);
    again = test_submit(world.intake, "idem-1", "nanguan", "greening", "nanguan-s02", "13900000101",
                        NULL, &keep);
    assert_non_null(again);
    assert_string_equal(again->ticket_id, ticket);
    assert_false(again->created);
    dispatch__reply__free_unpacked(keep, NULL);
    free(ticket);
}

/* A submit intake accepts (gas in nanguan); tests change what they try. */
static void valid_submit(Dispatch__SubmitTicket *submit, const char *request_id)
{
    *submit = (Dispatch__SubmitTicket)DISPATCH__SUBMIT_TICKET__INIT;
    submit->client_request_id = (char *)request_id;
    submit->channel = DISPATCH__CHANNEL__CHANNEL_WEB;
    submit->kind = DISPATCH__KIND__KIND_REPORT;
    submit->urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    submit->district = "nanguan";
    submit->category = "gas";
    submit->description = "smell of gas in the stairwell";
}

/* Whether the escalation of nanguan lists ticket among its open urgent
 * tickets (asked as sup-chen). */
static bool escalation_lists_urgent(client_t *escalation, const char *ticket)
{
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT;
    list.limit = 500;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    Dispatch__AdminReply *reply =
        test_admin(escalation, "sup-chen", DISPATCH__ROLE__ROLE_SUPERVISOR, &request);
    bool found = false;
    for (size_t i = 0; reply && reply->body_case == DISPATCH__ADMIN_REPLY__BODY_QUEUE &&
                       i < reply->queue->n_items && !found;
         i++)
        found = strcmp(reply->queue->items[i]->ticket_id, ticket) == 0;
    if (reply)
        dispatch__admin_reply__free_unpacked(reply, NULL);
    return found;
}

/* Whether audit holds ticket's registration and dispatch (asked as the
 * auditor). */
static bool audit_has_dispatch(client_t *audit, const char *ticket)
{
    Dispatch__HistoryQuery history = DISPATCH__HISTORY_QUERY__INIT;
    history.ticket_id = (char *)ticket;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.tag = 1;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_HISTORY;
    query.history = &history;
    ProtobufCMessage *msg = NULL;
    if (client_call(audit, &query.base, &dispatch__audit_reply__descriptor, &msg) < 0 || !msg)
        return false;
    const Dispatch__AuditReply *reply = (const Dispatch__AuditReply *)msg;
    bool registered = false, dispatched = false;
    for (size_t i = 0;
         reply->body_case == DISPATCH__AUDIT_REPLY__BODY_HISTORY && i < reply->history->n_records;
         i++) {
        const Dispatch__Event *event = reply->history->records[i]->event;
        registered |= event && event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED;
        dispatched |= event && event->body_case == DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return registered && dispatched;
}

/* One process per identity: a second process started under a live
 * worker's name exits at once, before it opens a socket, and the live one
 * keeps serving (its links are not taken over). Five times, a second
 * process under the name of each worker a ticket passes (intake, router, escalation, audit) while
 * urgent tickets flow: each exits at once with WORKER_EXIT_RUNNING, and every ticket still reaches
 * its unit, the escalation's urgent list and audit. */
static void test_second_process_under_a_live_name_exits(void **state)
{
    enum { ROUNDS = 5 };
    struct {
        const char *env, *program, *name;
    } workers[] = {
        {"INTAKE_BIN", "workers/dispatch-intake", "intake-1"},
        {"ROUTER_BIN", "workers/dispatch-router", "router-nanguan"},
        {"ESCALATION_BIN", "workers/dispatch-escalation", "escalation-nanguan"},
        {"AUDIT_BIN", "workers/dispatch-audit", "audit"},
    };
    char *tickets[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t w = 0; w < sizeof(workers) / sizeof(workers[0]); w++) {
            const char *argv[] = {harness_program(workers[w].env, workers[w].program),
                                  "--config",
                                  city_topology(world.city),
                                  "--name",
                                  workers[w].name,
                                  NULL};
            harness_proc_t *second;
            assert_int_equal(harness_spawn(argv, false, &second), 0);
            assert_int_equal(harness_wait_ready(second, TEST_TIMEOUT_MS), -ECHILD);
            int status = 0;
            assert_int_equal(harness_wait_exit(second, TEST_TIMEOUT_MS, &status), 0);
            /* Refused for its name, not for an address in use. */
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), WORKER_EXIT_RUNNING);
            harness_destroy(&second);
        }
        char request_id[32], phone[16];
        snprintf(request_id, sizeof(request_id), "twin-%d", round);
        snprintf(phone, sizeof(phone), "1350000%04d", round);
        Dispatch__SubmitTicket submit;
        valid_submit(&submit, request_id);
        submit.urgency = DISPATCH__URGENCY__URGENCY_URGENT;
        submit.category = "greening";
        submit.area = "nanguan-s02";
        submit.caller_phone = phone;
        Dispatch__Request request = DISPATCH__REQUEST__INIT;
        request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
        request.submit = &submit;
        Dispatch__Reply *reply = test_call_intake(world.intake, &request);
        assert_non_null(reply);
        assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_SUBMIT);
        tickets[round] = strdup(reply->submit->ticket_id);
        dispatch__reply__free_unpacked(reply, NULL);
    }

    /* Its unit: every ticket delivered. */
    char unit[64] = "";
    for (int i = 0; i < ROUNDS; i++) {
        assert_true(test_wait_state(world.intake, tickets[i],
                                    DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
        Dispatch__Reply *keep;
        Dispatch__TicketView *view = test_get(world.intake, tickets[i], &keep);
        assert_non_null(view);
        if (i == 0)
            snprintf(unit, sizeof(unit), "%s", view->ticket->assigned_unit);
        assert_string_equal(view->ticket->assigned_unit, unit);
        dispatch__reply__free_unpacked(keep, NULL);
    }
    unit_pool_t *pool;
    assert_int_equal(unit_pool_new(world.zmq, world.city, 2, &pool), 0);
    assert_int_equal(unit_pool_connect(pool, units_url(1), unit, 0), 0);
    inbox_t inbox = {0};
    bool delivered[ROUNDS] = {false};
    size_t count = 0;
    for (int poll_round = 0; poll_round < TEST_TIMEOUT_MS / 50 && count < ROUNDS; poll_round++) {
        unit_pool_poll(pool, 50, to_inbox, &inbox);
        for (size_t d = 0; d < inbox.count; d++)
            for (int i = 0; i < ROUNDS; i++)
                if (!delivered[i] && strcmp(inbox.ticket[d], tickets[i]) == 0) {
                    delivered[i] = true;
                    count++;
                }
        inbox.count = 0;
    }
    assert_int_equal(count, ROUNDS);
    unit_pool_destroy(&pool);

    /* Escalation and audit: every ticket there. */
    const char *admin = city_endpoint(world.city, "escalation-nanguan", "request");
    const char *audit_url = city_endpoint(world.city, "audit", "request");
    client_t *escalation, *audit;
    assert_int_equal(client_new(world.zmq, admin, TEST_TIMEOUT_MS,
                                test_keys(world.city, "sup-chen", admin), &escalation),
                     0);
    assert_int_equal(client_new(world.zmq, audit_url, TEST_TIMEOUT_MS,
                                test_keys(world.city, "auditor", audit_url), &audit),
                     0);
    for (int i = 0; i < ROUNDS; i++) {
        bool listed = false, recorded = false;
        for (int k = 0; k < TEST_TIMEOUT_MS / 100 && !(listed && recorded); k++) {
            listed = listed || escalation_lists_urgent(escalation, tickets[i]);
            recorded = recorded || audit_has_dispatch(audit, tickets[i]);
            if (!(listed && recorded))
                poll(NULL, 0, 100);
        }
        assert_true(listed);
        assert_true(recorded);
        free(tickets[i]);
    }
    client_destroy(&escalation);
    client_destroy(&audit);
}

static void test_offline_unit_catches_up(void **state)
{
    const char *unit = "chaoyang-s09";
    unit_pool_t *pool;
    unit_pool_new(world.zmq, world.city, 2, &pool);
    unit_pool_connect(pool, units_url(0), unit, 0);
    unit_pool_disconnect(pool, unit); /* the unit's desk goes offline */
    char *tickets[3];
    for (int i = 0; i < 3; i++) {
        char request_id[32], phone[32];
        snprintf(request_id, sizeof(request_id), "offline-%d", i);
        snprintf(phone, sizeof(phone), "1390000020%d", i);
        tickets[i] = submit_ticket(request_id, "chaoyang", "sanitation", unit, phone,
                                   DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    }
    for (int i = 0; i < 3; i++)
        assert_true(test_wait_state(world.intake, tickets[i],
                                    DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
    /* Back online: everything pending arrives, in order. */
    assert_int_equal(unit_pool_connect(pool, units_url(0), unit, unit_pool_applied(pool, unit)), 0);
    inbox_t inbox = {0};
    wait_deliveries(pool, &inbox, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(inbox.ticket[i], tickets[i]);
        free(tickets[i]);
    }
    unit_pool_destroy(&pool);
}

static void test_unsatisfied_callback_reopens(void **state)
{
    const char *unit = "bureau-traffic";
    unit_pool_t *pool;
    unit_pool_new(world.zmq, world.city, 2, &pool);
    unit_pool_connect(pool, units_url(1), unit, 0);
    inbox_t inbox = {0};
    char *ticket = submit_ticket("reopen-1", "nanguan", "traffic", "nanguan-s11", "13900000301",
                                 DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    wait_deliveries(pool, &inbox, 1);
    unit_session_t *desk;
    unit_session_new(world.zmq, units_url(1), unit, "desk",
                     test_keys(world.city, "units", units_url(1)), &desk);
    sign_for(desk, unit, ticket, "tr-1");
    resolve(desk, unit, ticket, "tr-2");
    assert_true(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED));

    Dispatch__Reply *reply =
        callback(ticket, "cb-reopen-1", DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED, false);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_CALLBACK);
    assert_int_equal(reply->callback->state, DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED);
    dispatch__reply__free_unpacked(reply, NULL);

    /* Back to its unit, marked as reopened. */
    wait_deliveries(pool, &inbox, 2);
    assert_string_equal(inbox.ticket[1], ticket);
    assert_int_equal(inbox.kind[1], DISPATCH__UNIT_DELIVERY__BODY_REOPENED);
    assert_true(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
    Dispatch__TicketView *view = test_get(world.intake, ticket, &reply);
    assert_int_equal(view->ticket->reopen_count, 1);
    assert_true(test_history_has(view, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REOPENED));
    dispatch__reply__free_unpacked(reply, NULL);
    unit_session_destroy(&desk);
    free(ticket);
    unit_pool_destroy(&pool);
}

/* ---- Must show 5: malformed, oversized and out-of-range input over the
 * real sockets; each gets its error and the worker keeps serving ---- */

/* raw_request() as the tester; returns the reply body
 * (malloc'ed) or NULL when none came within wait_ms. */
static void *raw_call(const char *url, const char *routing_id, const void *body, size_t len,
                      int wait_ms, size_t *reply_len)
{
    return raw_request(world.zmq, url, test_keys(world.city, "tester", url), routing_id, body, len,
                       wait_ms, reply_len);
}

static Dispatch__ErrorCode intake_error_for(const void *body, size_t len)
{
    size_t reply_len;
    void *raw = raw_call(city_endpoint(world.city, "intake-1", "request"), NULL, body, len,
                         TEST_TIMEOUT_MS, &reply_len);
    assert_non_null(raw);
    Dispatch__Reply *reply = dispatch__reply__unpack(NULL, reply_len, raw);
    free(raw);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__REPLY__BODY_ERROR);
    assert_true(strlen(reply->error->message) > 0);
    Dispatch__ErrorCode code = reply->error->code;
    dispatch__reply__free_unpacked(reply, NULL);
    return code;
}

static Dispatch__ErrorCode submit_error_for(Dispatch__SubmitTicket *submit)
{
    Dispatch__Request request = DISPATCH__REQUEST__INIT; /* actor: raw_call's key */
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = submit;
    unsigned char buf[8192];
    size_t len = dispatch__request__pack(&request, buf);
    return intake_error_for(buf, len);
}

/* The intake's StatsQuery answer on client (the tester's: an auditor);
 * *keep is freed first, and is the caller's to free after. */
static const Dispatch__WorkerStats *intake_stats(client_t *client, Dispatch__Reply **keep)
{
    if (*keep)
        dispatch__reply__free_unpacked(*keep, NULL);
    Dispatch__StatsQuery query = DISPATCH__STATS_QUERY__INIT;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_STATS;
    request.stats = &query;
    *keep = test_call_intake(client, &request);
    assert_non_null(*keep);
    assert_int_equal((*keep)->body_case, DISPATCH__REPLY__BODY_STATS);
    return (*keep)->stats;
}

static void test_bad_input_gets_errors_and_intake_keeps_serving(void **state)
{
    assert_int_equal(intake_error_for("\xff\x01\x02 not protobuf", 16),
                     DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST);

    Dispatch__SubmitTicket submit;
    valid_submit(&submit, "bad-1");
    submit.kind = (Dispatch__Kind)42;
    assert_int_equal(submit_error_for(&submit), DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    valid_submit(&submit, "bad-2");
    submit.caller_phone = "call me maybe";
    assert_int_equal(submit_error_for(&submit), DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_PHONE);
    valid_submit(&submit, "bad-3");
    submit.description = "\xc3\x28 broken";
    assert_int_equal(submit_error_for(&submit), DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8);
    valid_submit(&submit, "bad-4");
    submit.description = "";
    assert_int_equal(submit_error_for(&submit), DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD);
    valid_submit(&submit, "bad-5");
    submit.district = "atlantis";
    assert_int_equal(submit_error_for(&submit), DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE);
    valid_submit(&submit, "bad-6");
    char *long_text = malloc(5001);
    memset(long_text, 'x', 5000);
    long_text[5000] = '\0';
    submit.description = long_text;
    assert_int_equal(submit_error_for(&submit), DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    free(long_text);

    /* Above the socket's limit: ZeroMQ drops the sender, no reply. */
    size_t huge_len = 200 * 1024, reply_len;
    char *huge = calloc(1, huge_len);
    void *none = raw_call(city_endpoint(world.city, "intake-1", "request"), NULL, huge, huge_len,
                          500, &reply_len);
    assert_null(none);
    free(huge);

    /* A flood of garbage from one client: cut, counted; then the next
     * caller is served. */
    const char *intake = city_endpoint(world.city, "intake-1", "request");
    client_t *auditor;
    assert_int_equal(client_new(world.zmq, intake, TEST_TIMEOUT_MS,
                                test_keys(world.city, "tester", intake), &auditor),
                     0);
    Dispatch__Reply *keep = NULL;
    uint64_t cut_before = intake_stats(auditor, &keep)->connections_cut;
    void *flood = zmq_socket(world.zmq, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(flood, ZMQ_LINGER, &zero, sizeof(zero));
    auth_client_apply(flood, test_keys(world.city, "agent-7", intake));
    zmq_connect(flood, intake);
    /* The intake cuts the connection and refuses the key's handshakes a
     * while: the socket then has no peer and would block. */
    for (int i = 0; i < 2000; i++)
        if (zmq_send(flood, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(flood, "\x0a\xff", 2, ZMQ_DONTWAIT) < 0)
            break;
    const Dispatch__WorkerStats *stats = NULL;
    /* Each answer comes from a loop turn of the intake that read the
     * flood too: ask until the cut shows, or the deadline. */
    for (int64_t end = harness_now_ms() + TEST_TIMEOUT_MS; harness_now_ms() < end;)
        if ((stats = intake_stats(auditor, &keep))->connections_cut > cut_before)
            break;
    zmq_close(flood); /* only now: what it had queued goes with it */
    assert_int_equal(stats->connections_cut, cut_before + 1);
    assert_true(stats->malformed >= 64);
    dispatch__reply__free_unpacked(keep, NULL);
    client_destroy(&auditor);
    char *ticket = submit_ticket("after-bad", "nanguan", "gas", "", "13900000401",
                                 DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    free(ticket);
}

static void test_bad_input_gets_errors_and_router_keeps_serving(void **state)
{
    char name[64];
    const char *admin = city_endpoint(world.city, router_name(0, name, sizeof(name)), "request");
    size_t reply_len;
    void *raw = raw_call(admin, NULL, "\x12\x34 junk", 7, TEST_TIMEOUT_MS, &reply_len);
    assert_non_null(raw);
    Dispatch__AdminReply *reply = dispatch__admin_reply__unpack(NULL, reply_len, raw);
    free(raw);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_ERROR);
    dispatch__admin_reply__free_unpacked(reply, NULL);

    /* An operator may not assign; an unknown ticket is not found. */
    Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
    assign.ticket_id = "T1-20000101-000001";
    assign.lead_unit = "power-company";
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN;
    request.triage_assign = &assign;
    reply = test_admin(world.router[0], "agent-7", DISPATCH__ROLE__ROLE_OPERATOR, &request);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_ERROR);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    dispatch__admin_reply__free_unpacked(reply, NULL);
    reply = test_admin(world.router[0], "dispatcher-li", DISPATCH__ROLE__ROLE_DISPATCHER, &request);
    assert_non_null(reply);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    dispatch__admin_reply__free_unpacked(reply, NULL);

    /* Units: junk, and a unit acting on a ticket that is not its own. */
    const char *units = units_url(0);
    raw = raw_call(units, "chaoyang-s01", "\xff\xfe", 2, TEST_TIMEOUT_MS, &reply_len);
    assert_non_null(raw);
    Dispatch__UnitDelivery *delivery = dispatch__unit_delivery__unpack(NULL, reply_len, raw);
    free(raw);
    assert_non_null(delivery);
    assert_int_equal(delivery->body_case, DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT);
    assert_non_null(delivery->action_result->error);
    dispatch__unit_delivery__free_unpacked(delivery, NULL);

    char *ticket = submit_ticket("not-yours", "chaoyang", "gas", "", "13900000501",
                                 DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    assert_true(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
    unit_session_t *intruder;
    unit_session_new(world.zmq, units, "water-company", "desk",
                     test_keys(world.city, "units", units), &intruder);
    Dispatch__SignFor sign = DISPATCH__SIGN_FOR__INIT;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &sign;
    Dispatch__ActionResult *result = act(intruder, "water-company", ticket, "steal-1", &action);
    assert_non_null(result->error);
    assert_int_equal(result->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    dispatch__action_result__free_unpacked(result, NULL);
    /* Claiming to be another unit than the session is refused too. */
    result = act(intruder, "gas-company", ticket, "steal-2", &action);
    assert_non_null(result->error);
    assert_int_equal(result->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    dispatch__action_result__free_unpacked(result, NULL);
    unit_session_destroy(&intruder);

    /* The owner still can. */
    unit_session_t *owner;
    unit_session_new(world.zmq, units, "gas-company", "desk", test_keys(world.city, "units", units),
                     &owner);
    sign_for(owner, "gas-company", ticket, "gas-1");
    unit_session_destroy(&owner);
    free(ticket);
}

/* ---- dispatchctl against the real workers ---- */

static void test_dispatchctl_drives_the_workers(void **state)
{
    const char *intake = city_endpoint(world.city, "intake-1", "request");
    char name[64];
    const char *admin = city_endpoint(world.city, router_name(2, name, sizeof(name)), "request");
    const char *units = units_url(2);
    static char out[65536];

    assert_int_equal(test_ctl(out, sizeof(out), "--intake", intake, "--json", "submit", "--channel",
                              "web", "--kind", "report", "--urgency", "normal", "--district",
                              "kuancheng", "--category", "manhole-cover", "--phone", "13800001111",
                              "--caller-name", "Zhao Lei", "--description", "cover missing", NULL),
                     0);
    char *at = strstr(out, "\"ticket_id\":\"");
    assert_non_null(at);
    char ticket[64];
    snprintf(ticket, sizeof(ticket), "%.*s", (int)strcspn(at + 13, "\""), at + 13);
    assert_true(test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE));

    /* People see the caller masked unless they are the operator. */
    assert_int_equal(test_ctl(out, sizeof(out), "--intake", intake, "get", ticket, NULL), 0);
    assert_non_null(strstr(out, "TRIAGE"));
    assert_null(strstr(out, "13800001111"));
    assert_non_null(strstr(out, "138****1111"));
    assert_null(strstr(out, "Zhao Lei"));

    /* The routing test left some hundred tickets in this triage queue. */
    assert_int_equal(
        test_ctl(out, sizeof(out), "--router", admin, "triage", "list", "--limit", "500", NULL), 0);
    assert_non_null(strstr(out, ticket));
    assert_int_equal(test_ctl(out, sizeof(out), "--router", admin, "registry", "upsert", "--id",
                              "kc-well-team", "--name", "Power well team", "--level", "enterprise",
                              "--parent", "power-company", NULL),
                     0);
    assert_int_equal(test_ctl(out, sizeof(out), "--router", admin, "triage", "assign", ticket,
                              "--unit", "kc-well-team", "--note", "a power cable well", NULL),
                     0);
    /* The new unit gets its own key: it lists its tickets as itself. */
    assert_int_equal(test_ctl(out, sizeof(out), "keys", "new", "kc-well-team", "--kind", "unit",
                              "--roles", "unit", "--unit", "kc-well-team", NULL),
                     0);
    assert_int_equal(test_ctl(out, sizeof(out), "--router", admin, "unit", "list", "--unit",
                              "kc-well-team", NULL),
                     0);
    assert_non_null(strstr(out, ticket));
    assert_int_equal(test_ctl(out, sizeof(out), "--units", units, "unit", "sign-for", ticket,
                              "--unit", "kc-well-team", NULL),
                     0);
    assert_int_equal(test_ctl(out, sizeof(out), "--units", units, "unit", "resolve", ticket,
                              "--unit", "kc-well-team", "--result", "solved", "--text",
                              "cover replaced", NULL),
                     0);
    assert_true(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED));

    /* A rule added at run time routes the next ticket. */
    assert_int_equal(test_ctl(out, sizeof(out), "--router", admin, "rule", "upsert", "--category",
                              "pothole", "--lead", "bureau-roads", "--district", "kuancheng", NULL),
                     0);
    assert_int_equal(test_ctl(out, sizeof(out), "--intake", intake, "--json", "submit", "--channel",
                              "phone", "--kind", "complaint", "--urgency", "normal", "--district",
                              "kuancheng", "--category", "pothole", "--description", "deep pothole",
                              NULL),
                     0);
    at = strstr(out, "\"ticket_id\":\"");
    assert_non_null(at);
    snprintf(ticket, sizeof(ticket), "%.*s", (int)strcspn(at + 13, "\""), at + 13);
    assert_true(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
    assert_int_equal(test_ctl(out, sizeof(out), "--intake", intake, "--json", "get", ticket, NULL),
                     0);
    assert_non_null(strstr(out, "\"assigned_unit\":\"bureau-roads\""));

    /* Exit codes tell errors apart. */
    assert_int_equal(
        test_ctl(out, sizeof(out), "--intake", intake, "get", "T1-20000101-999999", NULL), 3);
    assert_int_equal(test_ctl(out, sizeof(out), "--intake", intake, "submit", "--channel", "web",
                              "--kind", "report", "--urgency", "normal", "--district", "kuancheng",
                              "--phone", "not a phone", "--description", "x", NULL),
                     4);
    assert_int_equal(test_ctl(out, sizeof(out), "--units", units, "unit", "sign-for", ticket,
                              "--unit", "water-company", NULL),
                     4);
    /* Whose key an endpoint wants is known only for the city's endpoints. */
    assert_int_equal(test_ctl(out, sizeof(out), "--intake", "tcp://127.0.0.1:1", "--timeout", "300",
                              "get", ticket, NULL),
                     2);
    assert_int_equal(test_ctl(out, sizeof(out), "--intake", intake, "--key", "/nonexistent", "get",
                              ticket, NULL),
                     2);
    assert_int_equal(test_ctl(out, sizeof(out), "--intake", intake, "frobnicate", NULL), 2);
}

/* Asks a worker for its links (`dispatchctl links --worker`) until the
 * output shows `what`, for up to TEST_TIMEOUT_MS (a link's state changes
 * with its next heartbeat). */
static bool links_show(const char *worker, const char *what, char *out, size_t out_len)
{
    for (int i = 0; i < TEST_TIMEOUT_MS / 100; i++) {
        if (test_ctl(out, out_len, "links", "--worker", worker, NULL) == 0 && strstr(out, what))
            return true;
        poll(NULL, 0, 100);
    }
    return false;
}

/* A router whose state dir was reset: the intake's link to it sees another
 * incarnation in the acks and diverges, and the intake refuses the router's
 * new incarnation. Nothing is applied or deleted: the router's links say
 * REFUSED, the intake's DIVERGED, a new ticket waits in the intake's
 * outbox. `dispatchctl links accept intake-1 router-nanguan` delivers it,
 * once, with no restart. */
static void test_reset_router_is_refused_until_accepted(void **state)
{
    const char *router = "router-nanguan";
    static char out[65536];
    assert_true(links_show(router, "intake-1", out, sizeof(out)));
    assert_null(strstr(out, "DIVERGED"));
    assert_null(strstr(out, "REFUSED"));

    assert_true(WIFSIGNALED(city_stop(world.city, router, SIGKILL)));
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/%s", city_dir(world.city), router);
    assert_int_equal(harness_rmtree(dir), 0);
    assert_int_equal(city_start(world.city, router), 0);
    char *ticket = submit_ticket("reset-router-1", "nanguan", "greening", "nanguan-s02", "",
                                 DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);

    /* The router's link to the intake: refused; the intake's: diverged. */
    assert_true(links_show(router, "REFUSED", out, sizeof(out)));
    printf("%s", out);
    assert_true(links_show("intake-1", "DIVERGED:receiver-incarnation", out, sizeof(out)));
    printf("%s", out);
    assert_non_null(strstr(out, "dispatchctl links accept intake-1 router-nanguan"));
    assert_false(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));

    /* The operator's decision, on the intake, while it runs. */
    assert_int_equal(test_ctl(out, sizeof(out), "links", "accept", "intake-1", router, NULL), 0);
    assert_true(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
    /* The router's escalation and audit knew the old state as a sender:
     * they refuse the new one until accepted there too; then the dispatch
     * reaches audit. */
    const char *receivers[] = {"escalation-nanguan", "audit"};
    for (size_t i = 0; i < 2; i++) {
        assert_true(links_show(receivers[i], "DIVERGED:sender-incarnation", out, sizeof(out)));
        assert_int_equal(test_ctl(out, sizeof(out), "links", "accept", receivers[i], router, NULL),
                         0);
    }
    const char *audit_url = city_endpoint(world.city, "audit", "request");
    client_t *audit;
    assert_int_equal(client_new(world.zmq, audit_url, TEST_TIMEOUT_MS,
                                test_keys(world.city, "auditor", audit_url), &audit),
                     0);
    bool recorded = false;
    for (int k = 0; k < TEST_TIMEOUT_MS / 100 && !recorded; k++)
        if (!(recorded = audit_has_dispatch(audit, ticket)))
            poll(NULL, 0, 100);
    client_destroy(&audit);
    assert_true(recorded);
    /* Every link of the router back up, each once its peer's next ack
     * says so. */
    bool clear = false;
    for (int k = 0; k < TEST_TIMEOUT_MS / 100 && !clear; k++) {
        clear = links_show(router, " up ", out, sizeof(out)) && !strstr(out, "REFUSED") &&
                !strstr(out, "DIVERGED");
        if (!clear)
            poll(NULL, 0, 100);
    }
    if (!clear)
        printf("%s", out);
    assert_true(clear);
    free(ticket);
}

/* ---- identities are proven by keys, not claimed ---- */

/* A GetTicket on an unknown id: true when the intake answered at all. */
static bool intake_answers(client_t *client)
{
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = "T1-20000101-999999";
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    ProtobufCMessage *reply = NULL;
    if (client_call(client, &request.base, &dispatch__reply__descriptor, &reply) < 0)
        return false;
    protobuf_c_message_free_unpacked(reply, NULL);
    return true;
}

static void new_key(const char *name, auth_kind_t kind, unsigned roles, const char *unit)
{
    char dir[600];
    auth_actor_t actor = {.kind = kind, .roles = roles};
    snprintf(actor.name, sizeof(actor.name), "%s", name);
    snprintf(actor.unit, sizeof(actor.unit), "%s", unit ? unit : "");
    assert_int_equal(auth_key_new(city_keys_dir(world.city, dir, sizeof(dir)), &actor), 0);
}

static void test_unknown_key_gets_no_handshake(void **state)
{
    (void)state;
    const char *intake = city_endpoint(world.city, "intake-1", "request");
    auth_client_t stranger = *test_keys(world.city, "agent-7", intake);
    char public_txt[41], secret_txt[41];
    assert_int_equal(zmq_curve_keypair(public_txt, secret_txt), 0);
    zmq_z85_decode(stranger.self.public_key, public_txt);
    zmq_z85_decode(stranger.self.secret_key, secret_txt);
    client_t *client;
    assert_int_equal(client_new(world.zmq, intake, 500, &stranger, &client), 0);
    assert_false(intake_answers(client)); /* intake-1 logs "refused CURVE handshake" */
    client_destroy(&client);
    /* Plain ZMTP gets nowhere either. */
    assert_int_equal(client_new(world.zmq, intake, 500, NULL, &client), 0);
    assert_false(intake_answers(client));
    client_destroy(&client);
}

static void test_unit_key_cannot_act_as_another_unit(void **state)
{
    (void)state;
    new_key("water-desk", AUTH_KIND_UNIT, AUTH_ROLE_UNIT, "water-company");
    char dir[600];
    const char *units = units_url(0);
    auth_client_t keys;
    assert_int_equal(auth_client_load(city_keys_dir(world.city, dir, sizeof(dir)), "water-desk",
                                      "router-chaoyang", &keys),
                     0);
    /* The session says gas-company (its routing id) and so does the action:
     * the key says water-company. */
    unit_session_t *impostor;
    assert_int_equal(unit_session_new(world.zmq, units, "gas-company", "desk", &keys, &impostor),
                     0);
    Dispatch__SignFor sign = DISPATCH__SIGN_FOR__INIT;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &sign;
    /* The key may take a moment to be read: the session retries. */
    Dispatch__ActionResult *result =
        act(impostor, "gas-company", "T1-20000101-000001", "imp-1", &action);
    assert_non_null(result->error);
    assert_int_equal(result->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_non_null(strstr(result->error->message, "key water-desk does not act for unit"));
    dispatch__action_result__free_unpacked(result, NULL);
    unit_session_destroy(&impostor);
}

/* The router hands a routing id over to whoever connects with it, so that
 * a unit that reconnects replaces its old connection at once. A unit's
 * routing id is "<unit>/<64 random bits>": another unit's key that
 * connects under the unit's bare id (its whole routing id, once) takes
 * over nothing, and the unit's delivery reaches the unit alone. */
static void test_guessed_routing_id_takes_no_deliveries(void **state)
{
    (void)state;
    new_key("power-desk", AUTH_KIND_UNIT, AUTH_ROLE_UNIT, "power-company");
    unit_pool_t *pool;
    assert_int_equal(unit_pool_new(world.zmq, world.city, 1, &pool), 0);
    assert_int_equal(unit_pool_connect(pool, units_url(0), "gas-company", 0), 0);

    char dir[600];
    auth_client_t keys;
    assert_int_equal(auth_client_load(city_keys_dir(world.city, dir, sizeof(dir)), "power-desk",
                                      "router-chaoyang", &keys),
                     0);
    void *thief = zmq_socket(world.zmq, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(thief, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(thief, ZMQ_ROUTING_ID, "gas-company", strlen("gas-company"));
    assert_int_equal(auth_client_apply(thief, &keys), 0);
    assert_int_equal(
        zmq_socket_monitor(thief, "inproc://thief-events", ZMQ_EVENT_HANDSHAKE_SUCCEEDED), 0);
    void *events = zmq_socket(world.zmq, ZMQ_PAIR);
    zmq_setsockopt(events, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_connect(events, "inproc://thief-events"), 0);
    assert_int_equal(zmq_connect(thief, units_url(0)), 0);
    zmq_pollitem_t handshake = {.socket = events, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&handshake, 1, TEST_TIMEOUT_MS), 1); /* the thief is in */

    char *ticket = submit_ticket("guess-1", citydata_districts[0], "gas", "", "13900000601",
                                 DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    inbox_t inbox = {0}; /* the unit's earlier tickets come first */
    bool delivered = false;
    for (int i = 0; i < TEST_TIMEOUT_MS / 50 && !delivered; i++) {
        unit_pool_poll(pool, 50, to_inbox, &inbox);
        for (size_t d = 0; d < inbox.count; d++)
            delivered = delivered || strcmp(inbox.ticket[d], ticket) == 0;
        inbox.count = 0;
    }
    assert_true(delivered);
    zmq_pollitem_t stolen = {.socket = thief, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&stolen, 1, 0), 0);
    free(ticket);
    zmq_close(events);
    zmq_close(thief);
    unit_pool_destroy(&pool);
}

/* GetTicket as each key sees it (NULL reply when refused: *code set). */
static Dispatch__Reply *get_as(const char *actor, const char *ticket, const char *lookup_code)
{
    const char *intake = city_endpoint(world.city, "intake-1", "request");
    client_t *client;
    assert_int_equal(client_new(world.zmq, intake, TEST_TIMEOUT_MS,
                                test_keys(world.city, actor, intake), &client),
                     0);
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = (char *)ticket;
    get.lookup_code = (char *)lookup_code;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    Dispatch__Reply *reply = test_call_intake(client, &request);
    client_destroy(&client);
    assert_non_null(reply);
    return reply;
}

/* The caller's name and phone go to the operator's key only; a unit's key
 * reads a ticket only with its lookup code, a wrong code is NOT_FOUND like
 * an unknown id, and the right one gives the public view. */
static void test_caller_and_status_by_the_key(void **state)
{
    (void)state;
    Dispatch__Reply *keep;
    Dispatch__SubmitReply *submitted = test_submit(world.intake, "by-key-1", "chaoyang", "noise",
                                                   "chaoyang-s03", "13912345678", NULL, &keep);
    assert_non_null(submitted);
    char ticket[64], code[32];
    snprintf(ticket, sizeof(ticket), "%s", submitted->ticket_id);
    snprintf(code, sizeof(code), "%s", submitted->lookup_code);
    dispatch__reply__free_unpacked(keep, NULL);
    assert_true(strlen(code) == 10);

    Dispatch__Reply *operator_view = get_as("agent-7", ticket, NULL);
    assert_int_equal(operator_view->body_case, DISPATCH__REPLY__BODY_TICKET);
    assert_string_equal(operator_view->ticket->ticket->caller_phone, "13912345678");
    assert_string_equal(operator_view->ticket->ticket->caller_name, "Wang Fang");
    dispatch__reply__free_unpacked(operator_view, NULL);

    Dispatch__Reply *dispatcher_view = get_as("dispatcher-li", ticket, NULL);
    assert_int_equal(dispatcher_view->body_case, DISPATCH__REPLY__BODY_TICKET);
    assert_string_equal(dispatcher_view->ticket->ticket->caller_phone, "139****5678");
    assert_null(strstr(dispatcher_view->ticket->ticket->caller_name, "Wang"));
    dispatch__reply__free_unpacked(dispatcher_view, NULL);

    Dispatch__Reply *refused = get_as("units", ticket, NULL);
    assert_int_equal(refused->body_case, DISPATCH__REPLY__BODY_ERROR);
    assert_int_equal(refused->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    dispatch__reply__free_unpacked(refused, NULL);

    char wrong[32];
    snprintf(wrong, sizeof(wrong), "%s", code);
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    Dispatch__Reply *probe = get_as("units", ticket, wrong);
    assert_int_equal(probe->body_case, DISPATCH__REPLY__BODY_ERROR);
    assert_int_equal(probe->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    dispatch__reply__free_unpacked(probe, NULL);

    Dispatch__Reply *public_view = get_as("units", ticket, code);
    assert_int_equal(public_view->body_case, DISPATCH__REPLY__BODY_TICKET);
    assert_string_equal(public_view->ticket->ticket->id, ticket);
    assert_null(strstr(public_view->ticket->ticket->caller_phone, "12345678"));
    assert_null(strstr(public_view->ticket->ticket->caller_name, "Wang"));
    dispatch__reply__free_unpacked(public_view, NULL);
}

/* The router's count of frames dropped for a key not their sender's. */
static uint64_t router_forged(client_t *router)
{
    Dispatch__StatsQuery query = DISPATCH__STATS_QUERY__INIT;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_STATS;
    request.stats = &query;
    Dispatch__AdminReply *reply =
        test_admin(router, "tester", DISPATCH__ROLE__ROLE_ADMIN, &request);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_STATS);
    uint64_t forged = reply->stats->forged;
    dispatch__admin_reply__free_unpacked(reply, NULL);
    return forged;
}

typedef struct forger {
    bus_t *bus;
    bus_link_t *link;
    bool sent, pending;
} forger_t;

static int forge_apply(void *app, MDB_txn *txn)
{
    forger_t *f = app;
    if (f->sent)
        return 0;
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.id = "T1-20000101-777777";
    ticket.district = "nanguan";
    ticket.category = "greening";
    ticket.area = "nanguan-s02";
    ticket.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    Dispatch__TicketRegistered body = DISPATCH__TICKET_REGISTERED__INIT;
    body.ticket = &ticket;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.event_id = "intake-1-forged-1";
    event.ticket_id = ticket.id;
    event.district = ticket.district;
    event.origin = "intake-1";
    event.actor = "agent-7";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    event.ticket_registered = &body;
    f->pending = true;
    return event_send(f->bus, txn, &f->link, 1, &event);
}

static bool forge_drain(void *app, int64_t now_ms)
{
    (void)now_ms;
    return !((forger_t *)app)->sent;
}

static void forge_done(void *app, int rc)
{
    forger_t *f = app;
    f->sent |= rc == 0 && f->pending;
}

/* A bus that names itself intake-1 but speaks with another worker's key
 * (the test's "injector") sends the router a ticket: the router applies
 * nothing of it, counts and logs the forgery, and the real intake-1's
 * tickets still go through. */
static void test_forged_bus_frame_is_dropped(void **state)
{
    (void)state;
    const char *router_admin = city_endpoint(world.city, "router-nanguan", "request");
    client_t *router;
    assert_int_equal(client_new(world.zmq, router_admin, TEST_TIMEOUT_MS,
                                test_keys(world.city, "tester", router_admin), &router),
                     0);
    uint64_t before = router_forged(router);

    char dir[512], keys[600];
    assert_int_equal(harness_tmpdir("forger", dir, sizeof(dir)), 0);
    store_t *store;
    assert_int_equal(store_open(dir, NULL, &store), 0);
    auth_t *auth;
    assert_int_equal(
        auth_new(world.zmq, city_keys_dir(world.city, keys, sizeof(keys)), "injector", &auth), 0);
    bus_options_t options = {.auth = auth};
    forger_t forger = {0};
    assert_int_equal(bus_new(world.zmq, store, "intake-1", &options, &forger.bus), 0);
    assert_int_equal(bus_link_open(forger.bus, "router-nanguan",
                                   city_endpoint(world.city, "router-nanguan", "bus"),
                                   &forger.link),
                     0);
    loop_app_t app = {
        .app = &forger, .drain = forge_drain, .apply = forge_apply, .done = forge_done};
    uint64_t forged = before;
    int64_t deadline = harness_now_ms() + TEST_TIMEOUT_MS;
    while (forged == before && harness_now_ms() < deadline) {
        assert_int_equal(loop_once(store, forger.bus, &app, 100), 0);
        forged = router_forged(router);
    }
    assert_true(forger.sent);
    assert_true(forged > before);
    bus_destroy(&forger.bus);
    auth_destroy(&auth);
    store_destroy(&store);
    harness_rmtree(dir);

    /* Nothing of it was applied: the router does not know the ticket. */
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE;
    list.limit = 500;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    Dispatch__AdminReply *reply =
        test_admin(router, "tester", DISPATCH__ROLE__ROLE_ADMIN, &request);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_QUEUE);
    for (size_t i = 0; i < reply->queue->n_items; i++)
        assert_string_not_equal(reply->queue->items[i]->ticket_id, "T1-20000101-777777");
    dispatch__admin_reply__free_unpacked(reply, NULL);
    client_destroy(&router);

    /* The real intake-1 goes on reaching the router. */
    char *ticket = submit_ticket("after-forgery", "nanguan", "greening", "nanguan-s02",
                                 "13900007777", DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    assert_true(
        test_wait_state(world.intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
    free(ticket);
}

static void test_non_admin_key_claiming_admin_is_refused(void **state)
{
    (void)state;
    Dispatch__Unit unit = DISPATCH__UNIT__INIT;
    unit.id = "cy-rogue";
    unit.name = "Rogue";
    unit.level = DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET;
    unit.district = "chaoyang";
    unit.active = true;
    Dispatch__UnitUpsert upsert = DISPATCH__UNIT_UPSERT__INIT;
    upsert.unit = &unit;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT;
    request.unit_upsert = &upsert;
    /* world.router[0] speaks with dispatcher-li's key. */
    Dispatch__AdminReply *reply =
        test_admin(world.router[0], "dispatcher-li", DISPATCH__ROLE__ROLE_ADMIN, &request);
    assert_non_null(reply);
    assert_int_equal(reply->body_case, DISPATCH__ADMIN_REPLY__BODY_ERROR);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_string_equal(reply->error->field, "role");
    dispatch__admin_reply__free_unpacked(reply, NULL);
    /* Nor may it name another actor that has the role. */
    reply = test_admin(world.router[0], "admin", DISPATCH__ROLE__ROLE_ADMIN, &request);
    assert_non_null(reply);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
    assert_string_equal(reply->error->field, "actor_id");
    dispatch__admin_reply__free_unpacked(reply, NULL);
}

static void test_key_revoked_at_run_time_stops_within_a_second(void **state)
{
    (void)state;
    new_key("temp-agent", AUTH_KIND_PERSON, AUTH_ROLE_OPERATOR, NULL);
    char dir[600];
    const char *intake = city_endpoint(world.city, "intake-1", "request");
    auth_client_t keys;
    assert_int_equal(auth_client_load(city_keys_dir(world.city, dir, sizeof(dir)), "temp-agent",
                                      "intake-1", &keys),
                     0);
    client_t *client;
    assert_int_equal(client_new(world.zmq, intake, 200, &keys, &client), 0);
    /* Added at run time: in once the intake has read it (a timed-out call
     * reconnects). */
    int64_t deadline = harness_now_ms() + TEST_TIMEOUT_MS;
    while (!intake_answers(client) && harness_now_ms() < deadline)
        ;
    assert_true(intake_answers(client));

    int64_t revoked = harness_now_ms();
    assert_int_equal(auth_key_revoke(dir, "temp-agent"), 0);
    int64_t started = revoked;
    for (;;) {
        started = harness_now_ms();
        if (!intake_answers(client) || started - revoked > 5000)
            break;
    }
    /* The first call left unanswered started within a second of the
     * revocation, on the connection made before it. */
    assert_true(started - revoked <= 1000);
    assert_false(intake_answers(client)); /* and a new connection gets no handshake */
    client_destroy(&client);
}

/* A subscriber of the audit stream on its own key. */
static void *stream_subscriber(const char *name)
{
    const char *publish = city_endpoint(world.city, "audit", "publish");
    void *socket = zmq_socket(world.zmq, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(socket, ZMQ_SUBSCRIBE, "", 0);
    assert_int_equal(auth_client_apply(socket, test_keys(world.city, name, publish)), 0);
    assert_int_equal(zmq_connect(socket, publish), 0);
    return socket;
}

/* Reads what waits on a subscriber: the ticket ids of its records into
 * seen (a ticket's index = its position in ids); returns how many came. */
static size_t stream_take(void *socket, char ids[][40], size_t id_count, bool *seen)
{
    size_t count = 0;
    for (;;) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&topic, socket, ZMQ_DONTWAIT) < 0 ||
            zmq_msg_recv(&body, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            return count;
        }
        Dispatch__AuditRecord *record =
            dispatch__audit_record__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        for (size_t i = 0; record && record->event && i < id_count; i++)
            if (strcmp(ids[i], record->event->ticket_id) == 0)
                seen[i] = true;
        if (record)
            dispatch__audit_record__free_unpacked(record, NULL);
        zmq_msg_close(&topic);
        zmq_msg_close(&body);
        count++;
    }
}

/* A PUB cannot refuse one subscriber: on a revocation audit drops every
 * subscription and binds again, so the revoked key hears nothing of what
 * happens a second after, while a key still in the directory does. */
static void test_revoked_key_loses_the_audit_stream(void **state)
{
    (void)state;
    enum { TICKETS = 40 };
    new_key("watch-gone", AUTH_KIND_PERSON, AUTH_ROLE_AUDITOR, NULL);
    new_key("watch-kept", AUTH_KIND_PERSON, AUTH_ROLE_AUDITOR, NULL);
    void *gone = stream_subscriber("watch-gone"), *kept = stream_subscriber("watch-kept");
    static char ids[TICKETS][40];
    int64_t submitted_at[TICKETS];
    bool gone_seen[TICKETS] = {false}, kept_seen[TICKETS] = {false};

    /* Both hear a ticket before (the key is read at run time: submit
     * until both have it). */
    size_t n = 0;
    int64_t deadline = harness_now_ms() + TEST_TIMEOUT_MS;
    bool both = false;
    while (!both && harness_now_ms() < deadline) {
        char request_id[32];
        char phone[16];
        snprintf(request_id, sizeof(request_id), "stream-before-%zu", n);
        snprintf(phone, sizeof(phone), "1370000%04zu", n);
        char *ticket = submit_ticket(request_id, "chaoyang", "noise", "chaoyang-s01", phone,
                                     DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
        snprintf(ids[0], sizeof(ids[0]), "%s", ticket);
        free(ticket);
        gone_seen[0] = kept_seen[0] = false;
        int64_t wait = harness_now_ms() + 500;
        while (!(gone_seen[0] && kept_seen[0]) && harness_now_ms() < wait) {
            zmq_pollitem_t items[2] = {{.socket = gone, .events = ZMQ_POLLIN},
                                       {.socket = kept, .events = ZMQ_POLLIN}};
            zmq_poll(items, 2, 50);
            stream_take(gone, ids, 1, gone_seen);
            stream_take(kept, ids, 1, kept_seen);
        }
        both = gone_seen[0] && kept_seen[0];
        n++;
    }
    assert_true(both);

    char dir[600];
    int64_t revoked = harness_now_ms();
    assert_int_equal(auth_key_revoke(city_keys_dir(world.city, dir, sizeof(dir)), "watch-gone"), 0);
    /* A ticket every 50 ms for two seconds, both listening. */
    for (size_t i = 0; i < TICKETS; i++) {
        char request_id[32];
        char phone[16];
        snprintf(request_id, sizeof(request_id), "stream-after-%zu", i);
        snprintf(phone, sizeof(phone), "1360000%04zu", i);
        submitted_at[i] = harness_now_ms();
        char *ticket = submit_ticket(request_id, "chaoyang", "noise", "chaoyang-s01", phone,
                                     DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
        snprintf(ids[i], sizeof(ids[i]), "%s", ticket);
        free(ticket);
        int64_t next = submitted_at[i] + 50;
        while (harness_now_ms() < next) {
            zmq_pollitem_t items[2] = {{.socket = gone, .events = ZMQ_POLLIN},
                                       {.socket = kept, .events = ZMQ_POLLIN}};
            zmq_poll(items, 2, (long)(next - harness_now_ms()));
            stream_take(gone, ids, i + 1, gone_seen);
            stream_take(kept, ids, i + 1, kept_seen);
        }
    }
    /* The kept key hears the last tickets (its subscription renewed)... */
    deadline = harness_now_ms() + TEST_TIMEOUT_MS;
    while (!kept_seen[TICKETS - 1] && harness_now_ms() < deadline) {
        zmq_pollitem_t item = {.socket = kept, .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, 100);
        stream_take(kept, ids, TICKETS, kept_seen);
    }
    assert_true(kept_seen[TICKETS - 1]);
    stream_take(gone, ids, TICKETS, gone_seen);
    /* ...the revoked one nothing submitted a second after revocation. */
    size_t late = 0, kept_late = 0;
    for (size_t i = 0; i < TICKETS; i++) {
        if (submitted_at[i] > revoked + 1000) {
            late += gone_seen[i];
            kept_late += kept_seen[i];
        }
    }
    assert_int_equal(late, 0);
    assert_true(kept_late > 0);
    zmq_close(gone);
    zmq_close(kept);
}

/* Backpressure: with its district's router down, the intake acknowledges
 * tickets until max_backlog of them wait unacknowledged on the link, then
 * refuses new submits with UNAVAILABLE and a retry-after, registering
 * nothing; once the router is back and has caught up, the refused request
 * (same client_request_id) goes through, once. Its own small city. */
static void test_intake_refuses_past_the_router_backlog(void **state)
{
    (void)state;
    enum { MAX_BACKLOG = 3 };
    const char *const districts[] = {"chaoyang"};
    char *units = citydata_units_csv();
    char *rules[] = {citydata_rules_csv("chaoyang")};
    city_options_t options = {
        .districts = districts,
        .district_count = 1,
        .units_csv = units,
        .rules_csv = (const char *const *)rules,
        .max_backlog = MAX_BACKLOG,
    };
    city_t *city;
    assert_int_equal(city_new("backlog", &options, &city), 0);
    free(units);
    free(rules[0]);
    assert_int_equal(city_start_all(city), 0);
    const char *url = city_endpoint(city, "intake-1", "request");
    client_t *intake;
    assert_int_equal(
        client_new(world.zmq, url, TEST_TIMEOUT_MS, test_keys(city, "agent-7", url), &intake), 0);
    assert_true(WIFSIGNALED(city_stop(city, "router-chaoyang", SIGKILL)));

    Dispatch__Reply *keep;
    char request_id[32], phone[32];
    for (int i = 0; i <= MAX_BACKLOG; i++) {
        snprintf(request_id, sizeof(request_id), "backlog-%d", i);
        snprintf(phone, sizeof(phone), "1390000%04d", i);
        Dispatch__SubmitReply *reply = test_submit(intake, request_id, "chaoyang", "greening",
                                                   "chaoyang-s02", phone, NULL, &keep);
        assert_non_null(reply);
        assert_true(reply->created);
        dispatch__reply__free_unpacked(keep, NULL);
    }
    assert_null(test_submit(intake, "backlog-refused", "chaoyang", "greening", "chaoyang-s02",
                            "13900009999", NULL, &keep));
    assert_non_null(keep);
    assert_int_equal(keep->body_case, DISPATCH__REPLY__BODY_ERROR);
    assert_int_equal(keep->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE);
    assert_true(keep->error->retry_after_ms > 0);
    assert_non_null(strstr(keep->error->message, "max_backlog 3"));
    dispatch__reply__free_unpacked(keep, NULL);

    /* The router comes back and acknowledges the backlog; the client
     * retries as told. */
    assert_int_equal(city_start(city, "router-chaoyang"), 0);
    Dispatch__SubmitReply *reply = NULL;
    for (int i = 0; i < TEST_TIMEOUT_MS / 50 && !reply; i++) {
        reply = test_submit(intake, "backlog-refused", "chaoyang", "greening", "chaoyang-s02",
                            "13900009999", NULL, &keep);
        if (!reply) {
            assert_int_equal(keep->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE);
            struct timespec pause = {0, (long)keep->error->retry_after_ms * 1000000L};
            dispatch__reply__free_unpacked(keep, NULL);
            nanosleep(&pause, NULL); /* the retry-after the intake asked for */
        }
    }
    assert_non_null(reply);
    assert_true(reply->created);
    dispatch__reply__free_unpacked(keep, NULL);
    client_destroy(&intake);
    city_destroy(&city, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manhole_cover_end_to_end),
        cmocka_unit_test(test_ten_thousand_tickets_reach_their_units),
        cmocka_unit_test(test_return_reroute_then_triage),
        cmocka_unit_test(test_duplicate_report_is_merged),
        cmocka_unit_test(test_resubmit_returns_the_original_across_restart),
        cmocka_unit_test(test_offline_unit_catches_up),
        cmocka_unit_test(test_second_process_under_a_live_name_exits),
        cmocka_unit_test(test_unsatisfied_callback_reopens),
        cmocka_unit_test(test_bad_input_gets_errors_and_intake_keeps_serving),
        cmocka_unit_test(test_bad_input_gets_errors_and_router_keeps_serving),
        cmocka_unit_test(test_dispatchctl_drives_the_workers),
        cmocka_unit_test(test_reset_router_is_refused_until_accepted),
        cmocka_unit_test(test_unknown_key_gets_no_handshake),
        cmocka_unit_test(test_unit_key_cannot_act_as_another_unit),
        cmocka_unit_test(test_guessed_routing_id_takes_no_deliveries),
        cmocka_unit_test(test_non_admin_key_claiming_admin_is_refused),
        cmocka_unit_test(test_forged_bus_frame_is_dropped),
        cmocka_unit_test(test_caller_and_status_by_the_key),
        cmocka_unit_test(test_key_revoked_at_run_time_stops_within_a_second),
        cmocka_unit_test(test_revoked_key_loses_the_audit_stream),
        cmocka_unit_test(test_intake_refuses_past_the_router_backlog),
    };
    return cmocka_run_group_tests(tests, start_world, stop_world);
}

/* fuzz-seed CORPUS_DIR: writes the seed inputs of every target into
 * CORPUS_DIR/<target>/seed-*: valid messages of every kind, most of them
 * made by the scratch city's own handlers (a ticket registered, dispatched,
 * signed for, extended, resolved, called back; its timers fired a month
 * on), and the deploy/ files for the file decoders. Existing files are
 * overwritten; files of other names (found by fuzzing) are left alone. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "audit.h"
#include "bus.pb-c.h"
#include "codec.h"
#include "escalation.h"
#include "intake.h"
#include "router.h"
#include "router_internal.h"
#include "scratch.h"

#define DAY_MS (86400LL * 1000)

static const char *corpus;
static scratch_city_t *city;

/* ---- writing seeds ------------------------------------------------------ */

static void write_seed(const char *target, const char *name, const void *data, size_t size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", corpus, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/seed-%s", corpus, target, name);
    FILE *file = fopen(path, "wb");
    if (!file || fwrite(data, 1, size, file) != size) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    fclose(file);
}

static void write_message(const char *target, const char *name, const void *message)
{
    void *buf;
    size_t len;
    if (codec_encode(message, &buf, &len) < 0) {
        fprintf(stderr, "encode %s\n", name);
        exit(1);
    }
    write_seed(target, name, buf, len);
    free(buf);
}

/* Several messages in one input, cut by the separator. */
typedef struct joined {
    char *data;
    size_t size;
} joined_t;

static void join(joined_t *joined, const void *data, size_t size)
{
    size_t extra = (joined->size ? SCRATCH_SEPARATOR_LEN : 0) + size;
    joined->data = realloc(joined->data, joined->size + extra);
    if (joined->size) {
        memcpy(joined->data + joined->size, SCRATCH_SEPARATOR, SCRATCH_SEPARATOR_LEN);
        joined->size += SCRATCH_SEPARATOR_LEN;
    }
    memcpy(joined->data + joined->size, data, size);
    joined->size += size;
}

static void join_message(joined_t *joined, const void *message)
{
    void *buf;
    size_t len;
    codec_encode(message, &buf, &len);
    join(joined, buf, len);
    free(buf);
}

static void copy_file(const char *target, const char *name, const char *path, size_t max_lines)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    joined_t text = {0};
    char line[8192];
    size_t lines = 0;
    while ((max_lines == 0 || lines < max_lines) && fgets(line, sizeof(line), file)) {
        size_t len = strlen(line);
        text.data = realloc(text.data, text.size + len);
        memcpy(text.data + text.size, line, len);
        text.size += len;
        lines++;
    }
    fclose(file);
    write_seed(target, name, text.data, text.size);
    free(text.data);
}

/* ---- committing steps in the seed city ---------------------------------- */

typedef int (*step_fn)(MDB_txn *txn, void *ctx);

static void commit(scratch_worker_t *worker, step_fn fn, void *ctx)
{
    int rc = store_write(worker->store, fn, ctx);
    bus_batch_done(worker->bus, rc);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", worker->name, store_strerror(rc));
        exit(1);
    }
}

typedef struct bytes {
    const void *data;
    size_t size;
} bytes_t;

static int unit_action_step(MDB_txn *txn, void *ctx)
{
    bytes_t *body = ctx;
    router_batch_begin(city->router_app);
    Dispatch__UnitDelivery result;
    int rc = router_handle_unit_action(city->router_app, txn, SCRATCH_TICKET_UNIT,
                                       strlen(SCRATCH_TICKET_UNIT), NULL, body->data, body->size,
                                       SCRATCH_NOW + 15 * DAY_MS, &result);
    router_reply_reset(city->router_app);
    return rc < 0 ? rc : 0; /* a seed that is no UnitAction commits nothing either */
}

/* Every message of a worker's outbox to peer, each a seed of target. */
typedef struct outbox_seeds {
    const char *target;
    const char *prefix;
    size_t count;
    joined_t all;
} outbox_seeds_t;

static void outbox_seed(const void *body, size_t len, void *ctx)
{
    outbox_seeds_t *seeds = ctx;
    char name[128];
    snprintf(name, sizeof(name), "%s-%02zu", seeds->prefix, seeds->count++);
    write_seed(seeds->target, name, body, len);
    join(&seeds->all, body, len);
}

static void outbox_seeds(scratch_worker_t *from, const char *peer, const char *target,
                         const char *prefix)
{
    outbox_seeds_t seeds = {target, prefix, 0, {0}};
    scratch_outbox_each(from, peer, outbox_seed, &seeds);
    if (seeds.count > 1) {
        char name[128];
        snprintf(name, sizeof(name), "%s-all", prefix);
        write_seed(target, name, seeds.all.data, seeds.all.size);
    }
    free(seeds.all.data);
}

typedef struct apply_all {
    scratch_worker_t *to;
    int64_t now;
} apply_all_t;

static int event_step(MDB_txn *txn, void *ctx)
{
    bytes_t *event = ((void **)ctx)[0];
    apply_all_t *apply = ((void **)ctx)[1];
    int rc = 0;
    if (apply->to == &city->escalation)
        rc = escalation_handle_event(city->escalation_app, txn, event->data, event->size,
                                     apply->now);
    else if (apply->to == &city->intake)
        rc = intake_handle_event(city->intake_app, txn, event->data, event->size, apply->now);
    else if (apply->to == &city->audit)
        rc = audit_handle_event(city->audit_app, txn, event->data, event->size, apply->now, NULL);
    else if (apply->to == &city->router) {
        router_batch_begin(city->router_app);
        rc = router_handle_event(city->router_app, txn, event->data, event->size, apply->now);
    }
    return rc < 0 ? rc : 0;
}

static void apply_one(const void *body, size_t len, void *ctx)
{
    bytes_t event = {body, len};
    void *both[2] = {&event, ctx};
    commit(((apply_all_t *)ctx)->to, event_step, both);
}

/* Applies what `from` sent `to` since the last call (seq > *done). */
typedef struct pending {
    size_t seen, done;
    apply_all_t apply;
} pending_t;

static void apply_new(const void *body, size_t len, void *ctx)
{
    pending_t *pending = ctx;
    if (pending->seen++ >= pending->done) {
        apply_one(body, len, &pending->apply);
        pending->done++;
    }
}

static size_t delivered[4][4];

static size_t worker_index(scratch_worker_t *worker)
{
    if (worker == &city->intake)
        return 0;
    if (worker == &city->router)
        return 1;
    if (worker == &city->escalation)
        return 2;
    return 3;
}

static void flow(scratch_worker_t *from, scratch_worker_t *to, int64_t now)
{
    size_t *done = &delivered[worker_index(from)][worker_index(to)];
    pending_t pending = {0, *done, {to, now}};
    scratch_outbox_each(from, to->name, apply_new, &pending);
    *done = pending.done;
}

static void flow_all(int64_t now)
{
    scratch_worker_t *workers[4] = {&city->intake, &city->router, &city->escalation, &city->audit};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < 4; i++)
            for (size_t j = 0; j < 4; j++)
                if (i != j && j != 3)
                    flow(workers[i], workers[j], now);
    for (size_t i = 0; i < 3; i++)
        flow(workers[i], &city->audit, now);
}

/* ---- the messages ------------------------------------------------------- */

static int fire_step(MDB_txn *txn, void *ctx)
{
    const int64_t *now = ctx;
    size_t fired;
    return escalation_fire_due(city->escalation_app, txn, *now, ESCALATION_FIRE_BATCH, &fired);
}

static void unit_action_seeds(void)
{
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = SCRATCH_TICKET_UNIT;
    action.ticket_id = city->ticket_id;
    joined_t all = {0};

    Dispatch__SignFor sign_for = DISPATCH__SIGN_FOR__INIT;
    sign_for.note = "on it";
    action.action_id = "a-sign";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &sign_for;
    write_message("router_unit_action", "sign-for", &action);
    join_message(&all, &action);

    Dispatch__ReturnTicket back = DISPATCH__RETURN_TICKET__INIT;
    back.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_WRONG_AREA;
    back.reason = "not our street";
    back.suggested_unit = "cy-s1";
    Dispatch__UnitAction returned = action;
    returned.action_id = "a-return";
    returned.body_case = DISPATCH__UNIT_ACTION__BODY_RETURN_TICKET;
    returned.return_ticket = &back;
    write_message("router_unit_action", "return", &returned);

    Dispatch__Objection objection = DISPATCH__OBJECTION__INIT;
    objection.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_NOT_OUR_DUTY;
    objection.reason = "belongs to the bureau";
    Dispatch__UnitAction objected = action;
    objected.action_id = "a-object";
    objected.body_case = DISPATCH__UNIT_ACTION__BODY_OBJECTION;
    objected.objection = &objection;
    write_message("router_unit_action", "objection", &objected);

    Dispatch__Progress progress = DISPATCH__PROGRESS__INIT;
    progress.text = "inspector sent";
    action.action_id = "a-progress";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_PROGRESS;
    action.progress = &progress;
    write_message("router_unit_action", "progress", &action);
    join_message(&all, &action);

    Dispatch__ExtensionRequest extension = DISPATCH__EXTENSION_REQUEST__INIT;
    extension.extra_working_days = 3;
    extension.reason = "parts on order";
    action.action_id = "a-extend";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_EXTENSION_REQUEST;
    action.extension_request = &extension;
    write_message("router_unit_action", "extension", &action);
    join_message(&all, &action);

    Dispatch__Resolve resolve = DISPATCH__RESOLVE__INIT;
    resolve.result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
    resolve.text = "work stopped at 22:00";
    action.action_id = "a-resolve";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_RESOLVE;
    action.resolve = &resolve;
    write_message("router_unit_action", "resolve", &action);
    join_message(&all, &action);

    Dispatch__UnitAck ack = DISPATCH__UNIT_ACK__INIT;
    ack.seq = 1;
    Dispatch__UnitAction acked = DISPATCH__UNIT_ACTION__INIT;
    acked.unit_id = SCRATCH_TICKET_UNIT;
    acked.body_case = DISPATCH__UNIT_ACTION__BODY_ACK;
    acked.ack = &ack;
    write_message("router_unit_action", "ack", &acked);
    join_message(&all, &acked);
    write_seed("router_unit_action", "all", all.data, all.size);

    /* The same, committed: the events they cause are seeds downstream. */
    size_t start = 0;
    for (size_t i = 0; i <= all.size; i++) {
        if (i == all.size ||
            (i + SCRATCH_SEPARATOR_LEN <= all.size &&
             memcmp(all.data + i, SCRATCH_SEPARATOR, SCRATCH_SEPARATOR_LEN) == 0)) {
            bytes_t body = {all.data + start, i - start};
            commit(&city->router, unit_action_step, &body);
            router_batch_done(city->router_app, 0, NULL, NULL);
            start = i + SCRATCH_SEPARATOR_LEN;
            flow_all(SCRATCH_NOW + 15 * DAY_MS);
        }
    }
    free(all.data);
}

static void request_seeds(void)
{
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    submit.client_request_id = "seed-1";
    submit.channel = DISPATCH__CHANNEL__CHANNEL_WECHAT;
    submit.kind = DISPATCH__KIND__KIND_COMPLAINT;
    submit.category = "garbage";
    submit.urgency = DISPATCH__URGENCY__URGENCY_URGENT;
    submit.district = "cy";
    submit.area = "s1";
    submit.caller_name = "Li Si";
    submit.caller_phone = "+8613900001111";
    submit.description = "Garbage not collected for three days";
    Dispatch__Location location = DISPATCH__LOCATION__INIT;
    Dispatch__GeoPoint point = DISPATCH__GEO_POINT__INIT;
    point.lat_e6 = 43880000;
    point.lon_e6 = 125350000;
    location.point = &point;
    location.address = "1 Renmin Street";
    submit.location = &location;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "op-1";
    request.tag = 7;
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &submit;
    write_message("intake_request", "submit", &request);
    write_message("codec", "x-request", &request);
    joined_t all = {0};
    join_message(&all, &request);
    join_message(&all, &request); /* a retry: the same ticket */

    Dispatch__SubmitTicket consult = submit;
    consult.client_request_id = "seed-2";
    consult.kind = DISPATCH__KIND__KIND_CONSULT;
    consult.answered = 1;
    consult.answer = "Collection is on Tuesdays";
    consult.location = NULL;
    request.submit = &consult;
    write_message("intake_request", "consult", &request);
    join_message(&all, &request);

    Dispatch__SubmitTicket transfer = submit;
    transfer.client_request_id = "seed-3";
    transfer.transfer_to = DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_FIRE_119;
    transfer.caller_confidential = 1;
    request.submit = &transfer;
    write_message("intake_request", "transfer", &request);

    Dispatch__SubmitTicket duplicate = DISPATCH__SUBMIT_TICKET__INIT;
    duplicate.client_request_id = "seed-4";
    duplicate.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    duplicate.kind = DISPATCH__KIND__KIND_COMPLAINT;
    duplicate.category = "noise";
    duplicate.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    duplicate.district = "cy";
    duplicate.caller_phone = "13812341234";
    duplicate.description = "Still loud";
    request.submit = &duplicate;
    write_message("intake_request", "duplicate", &request);
    join_message(&all, &request);

    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = city->ticket_id;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    write_message("intake_request", "get", &request);
    join_message(&all, &request);
    get.lookup_code = "123456";
    write_message("intake_request", "get-lookup", &request);

    Dispatch__Callback callback = DISPATCH__CALLBACK__INIT;
    callback.client_request_id = "seed-cb";
    callback.ticket_id = city->ticket_id;
    callback.satisfaction = DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED;
    callback.comment = "still noisy";
    request.body_case = DISPATCH__REQUEST__BODY_CALLBACK;
    request.callback = &callback;
    write_message("intake_request", "callback", &request);
    join_message(&all, &request);
    callback.unreachable = 1;
    callback.satisfaction = DISPATCH__SATISFACTION__SATISFACTION_UNSPECIFIED;
    write_message("intake_request", "callback-unreachable", &request);
    write_seed("intake_request", "all", all.data, all.size);
    free(all.data);
}

static void admin_seeds(void)
{
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = "admin-1";
    request.role = DISPATCH__ROLE__ROLE_ADMIN;
    request.tag = 3;
    joined_t router_all = {0}, escalation_all = {0};

    Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
    char *assisting[] = {"roads"};
    assign.ticket_id = city->ticket_id;
    assign.lead_unit = "sanitation";
    assign.n_assisting_units = 1;
    assign.assisting_units = assisting;
    assign.note = "by hand";
    request.role = DISPATCH__ROLE__ROLE_DISPATCHER;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN;
    request.triage_assign = &assign;
    write_message("router_admin", "triage-assign", &request);
    join_message(&router_all, &request);

    Dispatch__ExtensionDecision decision = DISPATCH__EXTENSION_DECISION__INIT;
    decision.ticket_id = city->ticket_id;
    decision.request_id = "a-extend";
    decision.granted = 1;
    decision.note = "granted";
    request.role = DISPATCH__ROLE__ROLE_SUPERVISOR;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION;
    request.extension_decision = &decision;
    write_message("escalation_admin", "extension-decision", &request);
    join_message(&escalation_all, &request);
    decision.granted = 0;
    write_message("escalation_admin", "extension-refused", &request);

    Dispatch__LeaderSignOff sign_off = DISPATCH__LEADER_SIGN_OFF__INIT;
    sign_off.ticket_id = city->ticket_id;
    sign_off.leader = "leader-1";
    sign_off.instruction = "solve it this week";
    request.role = DISPATCH__ROLE__ROLE_LEADER;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF;
    request.leader_sign_off = &sign_off;
    write_message("escalation_admin", "sign-off", &request);
    join_message(&escalation_all, &request);
    Dispatch__LeaderSignOff report_sign_off = sign_off;
    report_sign_off.ticket_id = "";
    report_sign_off.report_id = "categories-2026-Q1";
    request.leader_sign_off = &report_sign_off;
    write_message("escalation_admin", "sign-off-report", &request);

    Dispatch__Unit unit = DISPATCH__UNIT__INIT;
    unit.id = "cy-s2";
    unit.name = "Street Two";
    unit.parent_id = "cy";
    unit.level = DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET;
    unit.district = "cy";
    unit.active = 1;
    Dispatch__UnitUpsert upsert = DISPATCH__UNIT_UPSERT__INIT;
    upsert.unit = &unit;
    request.role = DISPATCH__ROLE__ROLE_ADMIN;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT;
    request.unit_upsert = &upsert;
    write_message("router_admin", "unit-upsert", &request);
    join_message(&router_all, &request);

    Dispatch__RoutingRule rule = DISPATCH__ROUTING_RULE__INIT;
    rule.category = "road";
    rule.area = "s2";
    rule.district = "cy";
    rule.lead_unit = "cy-s2";
    rule.priority = 3;
    Dispatch__RuleUpsert rule_upsert = DISPATCH__RULE_UPSERT__INIT;
    rule_upsert.rule = &rule;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT;
    request.rule_upsert = &rule_upsert;
    write_message("router_admin", "rule-upsert", &request);
    join_message(&router_all, &request);

    Dispatch__RuleRemove rule_remove = DISPATCH__RULE_REMOVE__INIT;
    rule_remove.district = "cy";
    rule_remove.category = "road";
    rule_remove.area = "s2";
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE;
    request.rule_remove = &rule_remove;
    write_message("router_admin", "rule-remove", &request);
    join_message(&router_all, &request);

    Dispatch__UnitRemove unit_remove = DISPATCH__UNIT_REMOVE__INIT;
    unit_remove.unit_id = "cy-s2";
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE;
    request.unit_remove = &unit_remove;
    write_message("router_admin", "unit-remove", &request);
    join_message(&router_all, &request);

    static const Dispatch__QueueKind kinds[] = {
        DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE,   DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION,
        DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE,
        DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT,     DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT};
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    request.role = DISPATCH__ROLE__ROLE_SUPERVISOR;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        list.kind = kinds[i];
        list.limit = 10;
        list.unit_id = kinds[i] == DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT ? SCRATCH_TICKET_UNIT : "";
        char name[32];
        snprintf(name, sizeof(name), "list-queue-%d", (int)kinds[i]);
        write_message("router_admin", name, &request);
        write_message("escalation_admin", name, &request);
    }

    Dispatch__LinksQuery links = DISPATCH__LINKS_QUERY__INIT;
    request.role = DISPATCH__ROLE__ROLE_ADMIN;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY;
    request.links_query = &links;
    write_message("router_admin", "links", &request);
    write_message("escalation_admin", "links", &request);
    join_message(&router_all, &request);
    Dispatch__LinkAccept accept = DISPATCH__LINK_ACCEPT__INIT;
    accept.peer = "intake-1";
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT;
    request.link_accept = &accept;
    write_message("router_admin", "link-accept", &request);
    write_message("escalation_admin", "link-accept", &request);
    write_message("codec", "x-admin-request", &request);

    write_seed("router_admin", "all", router_all.data, router_all.size);
    write_seed("escalation_admin", "all", escalation_all.data, escalation_all.size);
    free(router_all.data);
    free(escalation_all.data);
}

static void audit_query_seeds(void)
{
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.tag = 5;
    joined_t all = {0};

    Dispatch__ReplayRequest replay = DISPATCH__REPLAY_REQUEST__INIT;
    replay.from_seq = 1;
    replay.limit = 50;
    write_message("audit_query", "bare-replay", &replay);
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_REPLAY;
    query.replay = &replay;
    write_message("audit_query", "replay", &query);
    join_message(&all, &query);

    static const Dispatch__KpiDimension dimensions[] = {
        DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT,
        DISPATCH__KPI_DIMENSION__KPI_DIMENSION_DISTRICT,
        DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CATEGORY,
        DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY};
    static const Dispatch__KpiPeriod periods[] = {DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY,
                                                  DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH,
                                                  DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER};
    Dispatch__KpiQuery kpi = DISPATCH__KPI_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_KPI;
    query.kpi = &kpi;
    for (size_t d = 0; d < 4; d++) {
        for (size_t p = 0; p < 3; p++) {
            kpi.by = dimensions[d];
            kpi.period = periods[p];
            kpi.at = p == 0 ? "2026-03-02" : p == 1 ? "2026-03" : "2026-Q1";
            char name[32];
            snprintf(name, sizeof(name), "kpi-%zu-%zu", d, p);
            write_message("audit_query", name, &query);
        }
    }
    kpi.key = SCRATCH_TICKET_UNIT;
    kpi.by = DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT;
    kpi.limit = 2;
    kpi.after_key = "a";
    write_message("audit_query", "kpi-key", &query);
    join_message(&all, &query);

    Dispatch__ReportQuery report = DISPATCH__REPORT_QUERY__INIT;
    report.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER;
    report.at = "2026-03-02";
    report.top = 4;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_REPORT;
    query.report = &report;
    write_message("audit_query", "report", &query);
    join_message(&all, &query);

    Dispatch__HistoryQuery history = DISPATCH__HISTORY_QUERY__INIT;
    history.ticket_id = city->ticket_id;
    history.limit = 10;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_HISTORY;
    query.history = &history;
    write_message("audit_query", "history", &query);
    join_message(&all, &query);

    Dispatch__VerifyQuery verify = DISPATCH__VERIFY_QUERY__INIT;
    verify.from_seq = 1;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_VERIFY;
    query.verify = &verify;
    write_message("audit_query", "verify", &query);
    write_message("codec", "x-audit-query", &query);
    join_message(&all, &query);
    write_seed("audit_query", "all", all.data, all.size);
    free(all.data);
}

/* A BusHeader frame then the body, from sender (index in fuzz_bus_frame.c). */
static void bus_seed(const char *name, int sender, const char *sender_id, uint64_t seq,
                     const void *body, size_t len, bool probe)
{
    static const unsigned char incarnation[16] = "0123456789abcdef";
    Dispatch__Bus__BusHeader header = DISPATCH__BUS__BUS_HEADER__INIT;
    header.kind = probe ? DISPATCH__BUS__FRAME_KIND__FRAME_KIND_PROBE
                        : DISPATCH__BUS__FRAME_KIND__FRAME_KIND_DATA;
    header.sender_id = (char *)sender_id;
    header.link_seq = probe ? 0 : seq;
    header.probe_sent = probe ? seq : 0;
    header.incarnation.data = (uint8_t *)incarnation;
    header.incarnation.len = sizeof(incarnation);
    void *buf;
    size_t buf_len;
    codec_encode(&header.base, &buf, &buf_len);
    joined_t frames = {0};
    frames.data = malloc(1 + buf_len + 4 + len);
    frames.data[0] = (char)sender;
    memcpy(frames.data + 1, buf, buf_len);
    frames.size = 1 + buf_len;
    if (!probe) {
        memcpy(frames.data + frames.size, "\xfa\xce\xb0\x0c", 4);
        memcpy(frames.data + frames.size + 4, body, len);
        frames.size += 4 + len;
    }
    write_seed("bus_frame", name, frames.data, frames.size);
    char codec_name[64];
    snprintf(codec_name, sizeof(codec_name), "x-bus-header-%s", name);
    joined_t tagged = {0};
    tagged.data = malloc(buf_len + 1);
    tagged.data[0] = 7; /* BusHeader in fuzz_codec.c */
    memcpy(tagged.data + 1, buf, buf_len);
    write_seed("codec", codec_name, tagged.data, buf_len + 1);
    free(tagged.data);
    free(frames.data);
    free(buf);
}

typedef struct first_event {
    void *data;
    size_t size;
} first_event_t;

static void keep_first(const void *body, size_t len, void *ctx)
{
    first_event_t *first = ctx;
    if (first->data)
        return;
    first->data = malloc(len);
    memcpy(first->data, body, len);
    first->size = len;
}

static void bus_seeds(void)
{
    first_event_t event = {0};
    scratch_outbox_each(&city->intake, "audit", keep_first, &event);
    bus_seed("data-intake", 0, "intake-1", 1, event.data, event.size, false);
    bus_seed("data-router", 1, "router-cy", 1, event.data, event.size, false);
    bus_seed("probe", 2, "escalation-cy", 3, NULL, 0, true);
    bus_seed("gap", 0, "intake-1", 5, event.data, event.size, false);
    free(event.data);
}

static void tagged_message(const char *name, unsigned char tag, const void *message)
{
    void *buf;
    size_t len;
    codec_encode(message, &buf, &len);
    unsigned char *data = malloc(len + 1);
    data[0] = tag;
    memcpy(data + 1, buf, len);
    write_seed("codec", name, data, len + 1);
    free(data);
    free(buf);
}

static int read_replies(MDB_txn *txn, void *ctx)
{
    (void)ctx;
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = city->ticket_id;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    void *buf;
    size_t len;
    codec_encode(&request.base, &buf, &len);
    const Dispatch__Reply *reply;
    if (intake_handle_request(city->intake_app, txn, NULL, buf, len, SCRATCH_NOW, &reply) == 0) {
        tagged_message("reply-ticket", 0, reply);
        if (reply->ticket && reply->ticket->ticket)
            tagged_message("ticket", 13, reply->ticket->ticket);
    }
    free(buf);
    return -ECANCELED;
}

static int read_audit(MDB_txn *txn, void *ctx)
{
    (void)ctx;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    Dispatch__ReplayRequest replay = DISPATCH__REPLAY_REQUEST__INIT;
    replay.from_seq = 1;
    replay.limit = 3;
    query.tag = 1;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_REPLAY;
    query.replay = &replay;
    void *buf;
    size_t len;
    codec_encode(&query.base, &buf, &len);
    const ProtobufCMessage *reply;
    if (audit_handle_request(city->audit_app, txn, NULL, buf, len, SCRATCH_NOW, &reply) == 0) {
        tagged_message("audit-reply", 2, reply);
        const Dispatch__AuditReply *audit_reply = (const Dispatch__AuditReply *)reply;
        if (audit_reply->replay) {
            tagged_message("replay-reply", 3, audit_reply->replay);
            if (audit_reply->replay->n_records > 0)
                tagged_message("audit-record", 5, audit_reply->replay->records[0]);
        }
    }
    free(buf);
    return -ECANCELED;
}

static int unit_delivery(const Dispatch__UnitDelivery *delivery, void *ctx)
{
    size_t *count = ctx;
    char name[32];
    snprintf(name, sizeof(name), "unit-delivery-%zu", (*count)++);
    tagged_message(name, 4, delivery);
    return 0;
}

static int read_deliveries(MDB_txn *txn, void *ctx)
{
    (void)ctx;
    size_t count = 0;
    router_pending_deliveries(city->router_app, txn, SCRATCH_TICKET_UNIT, 0, unit_delivery, &count);
    return -ECANCELED;
}

static void codec_seeds(void)
{
    store_write(city->intake.store, read_replies, NULL);
    bus_batch_done(city->intake.bus, -ECANCELED);
    store_write(city->audit.store, read_audit, NULL);
    bus_batch_done(city->audit.bus, -ECANCELED);
    store_write(city->router.store, read_deliveries, NULL);
    bus_batch_done(city->router.bus, -ECANCELED);

    Dispatch__AdminReply admin_reply = DISPATCH__ADMIN_REPLY__INIT;
    Dispatch__AdminDone done = DISPATCH__ADMIN_DONE__INIT;
    done.ticket_id = city->ticket_id;
    done.state = DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED;
    admin_reply.tag = 4;
    admin_reply.body_case = DISPATCH__ADMIN_REPLY__BODY_DONE;
    admin_reply.done = &done;
    tagged_message("admin-reply", 1, &admin_reply);

    Dispatch__Bus__BusAck ack = DISPATCH__BUS__BUS_ACK__INIT;
    static const unsigned char incarnation[16] = "0123456789abcdef";
    ack.acked_seq = 4;
    ack.gap = 1;
    ack.incarnation.data = (uint8_t *)incarnation;
    ack.incarnation.len = 16;
    tagged_message("bus-ack", 8, &ack);

    first_event_t event = {0};
    scratch_outbox_each(&city->router, "audit", keep_first, &event);
    unsigned char *data = malloc(event.size + 1);
    data[0] = 6;
    memcpy(data + 1, event.data, event.size);
    write_seed("codec", "event", data, event.size + 1);
    free(data);
    free(event.data);
}

static const char scratch_topology[] = "[city]\n"
                                       "name = fuzzcity\n"
                                       "timezone = Asia/Shanghai\n"
                                       "keys_dir = keys\n"
                                       "[district.cy]\n"
                                       "[worker.intake-1]\n"
                                       "kind = intake\n"
                                       "id_prefix = CY\n"
                                       "state_dir = state/intake-1\n"
                                       "bus = tcp://127.0.0.1:7101\n"
                                       "request = tcp://127.0.0.1:7102\n"
                                       "links = router-cy, audit\n"
                                       "map_size = 16KiB\n"
                                       "[worker.router-cy]\n"
                                       "kind = router\n"
                                       "district = cy\n"
                                       "state_dir = state/router-cy\n"
                                       "bus = tcp://127.0.0.1:7111\n"
                                       "units = tcp://127.0.0.1:7114\n"
                                       "links = intake-1, audit\n"
                                       "dead_after_ms = 5000\n"
                                       "[worker.audit]\n"
                                       "kind = audit\n"
                                       "state_dir = state/audit\n"
                                       "bus = tcp://127.0.0.1:7191\n"
                                       "request = tcp://127.0.0.1:7192\n"
                                       "publish = tcp://127.0.0.1:7193\n"
                                       "\n--set\n"
                                       "router-cy.map_size=1MiB\n"
                                       "city.security=plain\n";

static const char small_calendar[] = "[calendar]\n"
                                     "time_zone = Asia/Shanghai\n"
                                     "weekend = fri, sat\n"
                                     "[holidays]\n"
                                     "2026-03-03..2026-03-05 = Spring break\n"
                                     "[workdays]\n"
                                     "2026-03-07 = make-up day\n";

static void file_seeds(void)
{
    copy_file("topology", "example", DEPLOY_DATA "/../topology.example.ini", 0);
    write_seed("topology", "scratch", scratch_topology, sizeof(scratch_topology) - 1);
    copy_file("calendar", "deploy", DEPLOY_DATA "/calendar.ini", 0);
    write_seed("calendar", "small", small_calendar, sizeof(small_calendar) - 1);
    copy_file("deadlines", "deploy", DEPLOY_DATA "/deadlines.ini", 0);
    copy_file("csv", "units", DEPLOY_DATA "/chaoyang/units.csv", 40);
    copy_file("csv", "rules", DEPLOY_DATA "/chaoyang/rules.csv", 40);
    static const char quoted[] = "id,name,parent_id,level,district,active\n"
                                 "water,\"Water Company, \"\"old\"\"\",city,enterprise,,0\r\n"
                                 "\n"
                                 "# a comment\n"
                                 "cy-s9,Street Nine,cy,street,cy,1\n";
    write_seed("csv", "quoted", quoted, sizeof(quoted) - 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    corpus = argv[1];
    mkdir(corpus, 0755);
    city = scratch_city();

    /* What the start committed: TicketRegistered at the router, the
     * dispatch at escalation, audit and intake. */
    outbox_seeds(&city->intake, "router-cy", "router_event", "intake");
    request_seeds();
    admin_seeds();
    audit_query_seeds();
    bus_seeds();
    file_seeds();

    /* The ticket's life: its sign-for timers fire (reminders, overdue,
     * supervision), then the unit acts. */
    for (int64_t hours = 1; hours <= 24 * 14; hours *= 2) {
        int64_t later = SCRATCH_NOW + hours * 3600 * 1000;
        commit(&city->escalation, fire_step, &later);
        flow_all(later);
    }
    unit_action_seeds();
    flow_all(SCRATCH_NOW + 3600 * 1000);

    outbox_seeds(&city->router, "intake-1", "intake_event", "router");
    outbox_seeds(&city->escalation, "intake-1", "intake_event", "escalation");
    outbox_seeds(&city->router, "escalation-cy", "escalation_event", "router");
    outbox_seeds(&city->escalation, "router-cy", "router_event", "escalation");
    outbox_seeds(&city->intake, "audit", "audit_event", "intake");
    outbox_seeds(&city->router, "audit", "audit_event", "router");
    outbox_seeds(&city->escalation, "audit", "audit_event", "escalation");
    codec_seeds();
    printf("seeds written to %s\n", corpus);
    return 0;
}

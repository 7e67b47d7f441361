/* router_service.c: the router as a worker process. Binds the unit and
 * admin endpoints, seeds the registry, and drives the handlers from the
 * event loop: requests are applied inside the loop's write batch, replies
 * and pushes go out only after its commit. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "codec.h"
#include "log.h"
#include "router_internal.h"

#define ENDPOINT_MAX_QUEUE 1024
#define MAX_RETURN_WINDOW_HOURS (24 * 366)
#define MAX_MAX_RETURNS 100

static int parse_number(const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (errno || end == text || *end || parsed < min || parsed > max)
        return -EINVAL;
    *value = parsed;
    return 0;
}

static int parse_options(int argc, char **argv, router_options_t *options)
{
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        long number;
        if (strcmp(name, "--return-window-hours") == 0 && value) {
            if (parse_number(value, 1, MAX_RETURN_WINDOW_HOURS, &number) < 0) {
                log_error("--return-window-hours %s: expected 1..%d", value,
                          MAX_RETURN_WINDOW_HOURS);
                return -EINVAL;
            }
            options->return_window_ms = number * 3600 * 1000;
            i++;
        } else if (strcmp(name, "--max-returns") == 0 && value) {
            if (parse_number(value, 1, MAX_MAX_RETURNS, &number) < 0) {
                log_error("--max-returns %s: expected 1..%d", value, MAX_MAX_RETURNS);
                return -EINVAL;
            }
            options->max_returns = (uint32_t)number;
            i++;
        } else {
            log_error("unknown option %s (router options: --return-window-hours N, "
                      "--max-returns N)",
                      name);
            return -EINVAL;
        }
    }
    return 0;
}

/* A data_dir that is not there, or lacks a file, is a typo in the
 * topology: refused at start rather than a router with no units and no
 * rules that sends everything to triage. */
static int check_data_dir(const char *dir)
{
    static const char *const files[] = {"units.csv", "rules.csv"};
    struct stat st;
    int failed = stat(dir, &st) < 0 ? errno : 0;
    if (failed || !S_ISDIR(st.st_mode)) {
        log_error("data_dir %s: %s: check data_dir in the topology", dir,
                  failed ? strerror(failed) : "not a directory");
        return -ENOENT;
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        if (access(path, R_OK) < 0) {
            log_error("data_dir %s has no readable %s (%s): check data_dir in the topology", dir,
                      files[i], strerror(errno));
            return -ENOENT;
        }
    }
    return 0;
}

typedef struct stale_check {
    router_t *router;
    char path[PATH_MAX];
    size_t differ, file_rules, stored_rules;
} stale_check_t;

static int stale_check(MDB_txn *txn, void *ctx)
{
    stale_check_t *check = ctx;
    return router_rules_file_check(check->router, txn, check->path, &check->differ,
                                   &check->file_rules, &check->stored_rules);
}

/* Rules are seeded only into an empty store: a rules.csv edited since is
 * said at start, with what to do, rather than ignored in silence. */
static void warn_stale_rules(router_t *router, const char *data_dir)
{
    stale_check_t *check = calloc(1, sizeof(*check));
    if (!check)
        return;
    check->router = router;
    snprintf(check->path, sizeof(check->path), "%s/rules.csv", data_dir);
    int rc = store_write(router->store, stale_check, check);
    if (rc < 0)
        log_warn("%s: cannot compare with the stored rules: %s", check->path, strerror(-rc));
    else if (check->differ || check->file_rules != check->stored_rules)
        log_warn("%s differs from the rules this router keeps (%zu of its %zu rules new or "
                 "changed; %zu stored): the stored rules route; dispatchctl rules reload "
                 "--dry-run shows the diff, rules reload applies it",
                 check->path, check->differ, check->file_rules, check->stored_rules);
    free(check);
}

static int router_start(worker_t *worker, int argc, char **argv, void **app)
{
    router_options_t options = {0};
    int rc = parse_options(argc, argv, &options);
    if (rc < 0)
        return rc;
    const config_worker_t *me = worker_self(worker);
    router_t *router;
    rc = router_new(worker_store(worker), worker_bus(worker), worker_config(worker), me->name,
                    &options, &router);
    if (rc < 0)
        return rc;
    if (me->data_dir && (rc = check_data_dir(me->data_dir)) < 0) {
        router_destroy(&router);
        return rc;
    }
    if (!me->data_dir)
        log_warn("no data_dir in the topology: units and rules come only from the admin "
                 "endpoint");
    if (me->data_dir) {
        char err[1024];
        size_t units = 0, rules = 0;
        rc = router_seed(router, me->data_dir, &units, &rules, err, sizeof(err));
        if (rc < 0) {
            log_error("%s", err);
            router_destroy(&router);
            return rc;
        }
        if (units || rules)
            log_info("seeded %zu units and %zu routing rules from %s", units, rules, me->data_dir);
        if (!rules)
            warn_stale_rules(router, me->data_dir);
    }
    if (me->units)
        rc = worker_endpoint(worker, "units", me->units, ROUTER_MAX_REQUEST, ENDPOINT_MAX_QUEUE,
                             &router->unit_endpoint);
    if (rc == 0 && me->request)
        rc = worker_endpoint(worker, "request", me->request, ROUTER_MAX_ADMIN_REQUEST,
                             ENDPOINT_MAX_QUEUE, &router->admin_endpoint);
    if (rc == 0 && !me->units)
        log_warn("no `units` endpoint in the topology: units cannot connect");
    if (rc == 0)
        rc = worker_check_add(worker, tickets_loop_check, router->tickets);
    if (rc == 0)
        rc = worker_check_add(worker, deliveries_loop_check, router->deliveries);
    if (rc < 0) {
        router_destroy(&router);
        return rc;
    }
    *app = router;
    return 0;
}

static void router_stop(void *app)
{
    router_t *router = app;
    router_destroy(&router);
}

static int apply_bus(void *app, MDB_txn *txn, const char *sender, uint64_t seq, const void *body,
                     size_t len)
{
    (void)sender;
    (void)seq;
    return router_handle_event(app, txn, body, len, clock_now_ms());
}

static size_t pollitems(void *app, zmq_pollitem_t *items, size_t capacity)
{
    router_t *router = app;
    endpoint_t *endpoints[2] = {router->unit_endpoint, router->admin_endpoint};
    return endpoint_pollitems(endpoints, 2, items, capacity);
}

static bool drain(void *app, int64_t now_ms)
{
    (void)now_ms;
    router_t *router = app;
    size_t queued = 0;
    if (router->unit_endpoint)
        queued += endpoint_drain(router->unit_endpoint);
    if (router->admin_endpoint)
        queued += endpoint_drain(router->admin_endpoint);
    return queued > 0;
}

static int apply_requests(void *app, MDB_txn *txn)
{
    router_t *router = app;
    router_batch_begin(router);
    endpoint_t *units = router->unit_endpoint, *admin = router->admin_endpoint;
    if (units) {
        endpoint_clear_replies(units);
        for (size_t i = 0; i < endpoint_count(units); i++) {
            endpoint_request_t request;
            endpoint_request(units, i, &request);
            Dispatch__UnitDelivery result;
            int rc = router_handle_unit_action(router, txn, request.peer, request.peer_len,
                                               request.actor, request.body, request.body_len,
                                               clock_now_ms(), &result);
            if (rc < 0)
                return rc;
            if (rc == REFUSED)
                endpoint_strike(units, i);
            if (result.body_case != DISPATCH__UNIT_DELIVERY__BODY__NOT_SET &&
                (rc = endpoint_reply(units, i, &result.base)) < 0)
                return rc;
        }
    }
    if (admin) {
        endpoint_clear_replies(admin);
        for (size_t i = 0; i < endpoint_count(admin); i++) {
            endpoint_request_t request;
            endpoint_request(admin, i, &request);
            Dispatch__AdminReply reply;
            int rc = router_handle_admin(router, txn, request.actor, request.body, request.body_len,
                                         clock_now_ms(), &reply);
            if (rc == 0)
                rc = endpoint_reply(admin, i, &reply.base);
            if (rc < 0)
                return rc;
        }
    }
    router_reply_reset(router);
    return 0;
}

static int handle_outside(void *router, const auth_actor_t *actor, const void *body, size_t len,
                          Dispatch__AdminReply *reply)
{
    return router_handle_admin(router, NULL, actor, body, len, clock_now_ms(), reply);
}

/* The batch did not commit: every request is answered "retry later" (but
 * what tells why: admin_answer_failed()). */
static void answer_unavailable(router_t *router)
{
    Dispatch__Error error = DISPATCH__ERROR__INIT;
    error.code = DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
    error.message = "the router could not store this request (storage full or failing): "
                    "nothing was applied, retry later";
    endpoint_t *units = router->unit_endpoint, *admin = router->admin_endpoint;
    if (units)
        endpoint_clear_replies(units);
    for (size_t i = 0; units && i < endpoint_count(units); i++) {
        endpoint_request_t request;
        endpoint_request(units, i, &request);
        Dispatch__UnitAction *action = dispatch__unit_action__unpack(
            NULL, request.body_len <= ROUTER_MAX_REQUEST ? request.body_len : 0, request.body);
        bool ack = action && action->body_case == DISPATCH__UNIT_ACTION__BODY_ACK;
        Dispatch__ActionResult result = DISPATCH__ACTION_RESULT__INIT;
        result.error = &error;
        Dispatch__UnitDelivery delivery = DISPATCH__UNIT_DELIVERY__INIT;
        delivery.body_case = DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT;
        delivery.action_result = &result;
        delivery.at = clock_now_ms();
        if (action && codec_validate(&action->base, NULL, 0) == 0 &&
            strlen(action->action_id) <= LIMIT_ID && strlen(action->ticket_id) <= LIMIT_ID &&
            strlen(action->unit_id) <= LIMIT_ID) {
            result.action_id = action->action_id;
            delivery.ticket_id = action->ticket_id;
            delivery.unit_id = action->unit_id;
        }
        if (!ack)
            endpoint_reply(units, i, &delivery.base);
        if (action)
            dispatch__unit_action__free_unpacked(action, NULL);
    }
    if (admin)
        admin_answer_failed(admin, ROUTER_MAX_REQUEST, error.message, handle_outside, router);
}

static int send_delivery(void *ctx, const void *peer, size_t peer_len, const void *body, size_t len)
{
    router_t *router = ctx;
    void *socket = endpoint_socket(router->unit_endpoint);
    if (zmq_send(socket, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -errno;
    /* The peer accepted the first frame: the rest of the message follows. */
    zmq_send(socket, "", 0, ZMQ_SNDMORE);
    return zmq_send(socket, body, len, 0) < 0 ? -errno : 0;
}

static void batch_done(void *app, int rc)
{
    router_t *router = app;
    if (rc != 0)
        answer_unavailable(router);
    if (router->unit_endpoint)
        endpoint_flush(router->unit_endpoint);
    if (router->admin_endpoint)
        endpoint_flush(router->admin_endpoint);
    int pushed =
        router_batch_done(router, rc, router->unit_endpoint ? send_delivery : NULL, router);
    if (pushed > 0)
        router->pushes += (uint64_t)pushed;
    else if (pushed < 0)
        router->push_failures++;
}

const worker_kind_t router_kind = {
    .kind = "router",
    .start = router_start,
    .options_help = "  --return-window-hours N   a unit may return a ticket within N hours of its "
                    "dispatch (default 24)\n"
                    "  --max-returns N           returns before a ticket goes to triage\n",
    .stop = router_stop,
    .apply = apply_bus,
    .loop =
        {
            .pollitems = pollitems,
            .drain = drain,
            .apply = apply_requests,
            .done = batch_done,
        },
};

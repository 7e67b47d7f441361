#include "scratch.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "audit.h"
#include "codec.h"
#include "escalation.h"
#include "intake.h"
#include "router.h"

#ifndef DEPLOY_DATA
#define DEPLOY_DATA "deploy/data"
#endif

static const char topology[] = "[city]\n"
                               "name = fuzzcity\n"
                               "timezone = Asia/Shanghai\n"
                               "[district.cy]\n"
                               "name = Chaoyang\n"
                               "[worker.intake-1]\n"
                               "kind = intake\n"
                               "id_prefix = CY\n"
                               "state_dir = /nonexistent/intake-1\n"
                               "bus = inproc://fuzz-intake-1\n"
                               "links = router-cy, audit\n"
                               "[worker.router-cy]\n"
                               "kind = router\n"
                               "district = cy\n"
                               "state_dir = /nonexistent/router-cy\n"
                               "bus = inproc://fuzz-router-cy\n"
                               "links = intake-1, escalation-cy, audit\n"
                               "[worker.escalation-cy]\n"
                               "kind = escalation\n"
                               "district = cy\n"
                               "state_dir = /nonexistent/escalation-cy\n"
                               "bus = inproc://fuzz-escalation-cy\n"
                               "links = router-cy, intake-1, audit\n"
                               "[worker.audit]\n"
                               "kind = audit\n"
                               "state_dir = /nonexistent/audit\n"
                               "bus = inproc://fuzz-audit\n";

static const char units_csv[] = "id,name,parent_id,level,district,active\n"
                                "city,Test City,,city,,1\n"
                                "cy,Chaoyang District,city,district,cy,1\n"
                                "cy-s1,Street One,cy,street,cy,1\n"
                                "cy-s1-c1,Community One,cy-s1,community,cy,1\n"
                                "sanitation,Sanitation Bureau,cy,bureau,cy,1\n"
                                "roads,Roads Bureau,cy,bureau,cy,1\n"
                                "water,Water Company,city,enterprise,,0\n";

static const char rules_csv[] = "category,area,lead_unit,assisting_units,priority\n"
                                "noise,,cy,,0\n"
                                "noise,s1,cy-s1,,5\n"
                                "garbage,,sanitation,roads;cy-s1-c1,0\n"
                                "road,,roads,,1\n";

static scratch_city_t *the_city;

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz scratch city: %s: %s\n", what, store_strerror(rc));
    abort();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_city(void)
{
    if (!the_city)
        return;
    nftw(the_city->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void open_worker(scratch_city_t *city, scratch_worker_t *worker, const char *name)
{
    snprintf(worker->name, sizeof(worker->name), "%s", name);
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/%s", city->dir, name);
    /* Inputs never commit: durability would only cost time. */
    store_options_t options = {.no_sync = 1};
    int rc = store_open(dir, &options, &worker->store);
    if (rc < 0)
        die(dir, rc);
    if ((rc = bus_new(city->zmq, worker->store, name, NULL, &worker->bus)) < 0)
        die("bus", rc);
    const config_worker_t *self = config_worker_find(city->config, name);
    for (size_t i = 0; i < self->link_count; i++) {
        const config_worker_t *peer = config_worker_find(city->config, self->links[i]);
        if ((rc = bus_link_open(worker->bus, peer->name, peer->bus, NULL)) < 0)
            die("link", rc);
    }
}

void scratch_write_file(const char *name, const void *data, size_t size, char *path,
                        size_t path_len)
{
    snprintf(path, path_len, "%s/%s", the_city->dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        die(path, -errno);
    const char *at = data;
    while (size > 0) {
        ssize_t n = write(fd, at, size);
        if (n < 0)
            die(path, -errno);
        at += n;
        size -= (size_t)n;
    }
    close(fd);
}

MDB_txn *scratch_begin(scratch_worker_t *worker)
{
    MDB_txn *txn;
    int rc = store_rc(mdb_txn_begin(store_env(worker->store), NULL, 0, &txn));
    if (rc < 0)
        die("begin", rc);
    if ((rc = bus_batch_apply(worker->bus, txn)) < 0)
        die("bus batch", rc);
    return txn;
}

void scratch_abort(scratch_worker_t *worker, MDB_txn **txn)
{
    mdb_txn_abort(*txn);
    *txn = NULL;
    bus_batch_done(worker->bus, -ECANCELED);
}

void scratch_outbox_each(scratch_worker_t *worker, const char *peer, scratch_outbox_fn fn,
                         void *ctx)
{
    char name[96];
    snprintf(name, sizeof(name), "outbox.%s", peer);
    MDB_dbi dbi;
    int rc = store_dbi(worker->store, name, 0, &dbi);
    MDB_txn *txn = NULL;
    if (rc == 0)
        rc = store_read_begin(worker->store, &txn);
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = store_rc(mdb_cursor_open(txn, dbi, &cursor));
    if (rc < 0)
        die(name, rc);
    MDB_val key, value;
    for (int got = mdb_cursor_get(cursor, &key, &value, MDB_FIRST); got == 0;
         got = mdb_cursor_get(cursor, &key, &value, MDB_NEXT))
        fn(value.mv_data, value.mv_size, ctx);
    mdb_cursor_close(cursor);
    store_read_end(&txn);
}

void scratch_encode(const void *message)
{
    void *buf = NULL;
    size_t len = 0;
    int rc = codec_encode(message, &buf, &len);
    if (rc < 0)
        die("a reply does not encode", rc);
    free(buf);
}

void scratch_split(const uint8_t *data, size_t size, scratch_message_fn fn, void *ctx)
{
    const uint8_t *start = data, *end = data + size;
    for (;;) {
        const uint8_t *cut =
            memmem(start, (size_t)(end - start), SCRATCH_SEPARATOR, SCRATCH_SEPARATOR_LEN);
        if (!cut) {
            fn(start, (size_t)(end - start), ctx);
            return;
        }
        fn(start, (size_t)(cut - start), ctx);
        start = cut + SCRATCH_SEPARATOR_LEN;
    }
}

/* ---- the start: one ticket through the city, committed ----------------- */

typedef struct step {
    scratch_city_t *city;
    const void *body;
    size_t len;
    int (*handle)(scratch_city_t *city, MDB_txn *txn, const void *body, size_t len);
} step_t;

static int step_run(MDB_txn *txn, void *ctx)
{
    step_t *step = ctx;
    return step->handle(step->city, txn, step->body, step->len);
}

static void commit(scratch_worker_t *worker, step_t *step)
{
    int rc = store_write(worker->store, step_run, step);
    bus_batch_done(worker->bus, rc);
    if (rc < 0)
        die(worker->name, rc);
}

static int submit(scratch_city_t *city, MDB_txn *txn, const void *body, size_t len)
{
    const Dispatch__Reply *reply;
    int rc = intake_handle_request(city->intake_app, txn, NULL, body, len, SCRATCH_NOW, &reply);
    if (rc < 0)
        return rc;
    if (reply->body_case != DISPATCH__REPLY__BODY_SUBMIT)
        return -EPROTO;
    snprintf(city->ticket_id, sizeof(city->ticket_id), "%s", reply->submit->ticket_id);
    return 0;
}

static int to_router(scratch_city_t *city, MDB_txn *txn, const void *body, size_t len)
{
    router_batch_begin(city->router_app);
    int rc = router_handle_event(city->router_app, txn, body, len, SCRATCH_NOW);
    return rc == BUS_REJECTED ? -EPROTO : rc;
}

static int to_escalation(scratch_city_t *city, MDB_txn *txn, const void *body, size_t len)
{
    int rc = escalation_handle_event(city->escalation_app, txn, body, len, SCRATCH_NOW);
    return rc == BUS_REJECTED ? -EPROTO : rc;
}

static int to_audit(scratch_city_t *city, MDB_txn *txn, const void *body, size_t len)
{
    int rc = audit_handle_event(city->audit_app, txn, body, len, SCRATCH_NOW, NULL);
    return rc == BUS_REJECTED ? -EPROTO : rc;
}

static int to_intake(scratch_city_t *city, MDB_txn *txn, const void *body, size_t len)
{
    int rc = intake_handle_event(city->intake_app, txn, body, len, SCRATCH_NOW);
    return rc == BUS_REJECTED ? -EPROTO : rc;
}

typedef struct deliver {
    scratch_city_t *city;
    scratch_worker_t *worker;
    int (*handle)(scratch_city_t *city, MDB_txn *txn, const void *body, size_t len);
} deliver_t;

static void deliver_one(const void *body, size_t len, void *ctx)
{
    deliver_t *deliver = ctx;
    step_t step = {deliver->city, body, len, deliver->handle};
    commit(deliver->worker, &step);
    if (deliver->handle == to_router)
        router_batch_done(deliver->city->router_app, 0, NULL, NULL);
}

static void deliver(scratch_city_t *city, scratch_worker_t *from, scratch_worker_t *to,
                    int (*handle)(scratch_city_t *, MDB_txn *, const void *, size_t))
{
    deliver_t context = {city, to, handle};
    scratch_outbox_each(from, to->name, deliver_one, &context);
}

static void register_ticket(scratch_city_t *city)
{
    Dispatch__SubmitTicket submit_body = DISPATCH__SUBMIT_TICKET__INIT;
    submit_body.client_request_id = "scratch-1";
    submit_body.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    submit_body.kind = DISPATCH__KIND__KIND_COMPLAINT;
    submit_body.category = "noise";
    submit_body.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    submit_body.district = "cy";
    submit_body.caller_name = "Zhang San";
    submit_body.caller_phone = "13812341234";
    submit_body.description = "Loud construction at night";
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "op-1";
    request.tag = 1;
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &submit_body;
    void *buf;
    size_t len;
    int rc = codec_encode(&request.base, &buf, &len);
    if (rc < 0)
        die("encode", rc);
    step_t step = {city, buf, len, submit};
    commit(&city->intake, &step);
    free(buf);

    deliver(city, &city->intake, &city->router, to_router);
    deliver(city, &city->intake, &city->audit, to_audit);
    deliver(city, &city->router, &city->escalation, to_escalation);
    deliver(city, &city->router, &city->audit, to_audit);
    deliver(city, &city->router, &city->intake, to_intake);
}

scratch_city_t *scratch_city(void)
{
    if (the_city)
        return the_city;
    scratch_city_t *city = calloc(1, sizeof(*city));
    if (!city)
        die("calloc", -ENOMEM);
    const char *base = getenv("TMPDIR");
    snprintf(city->dir, sizeof(city->dir), "%s/dispatch-fuzz-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(city->dir))
        die(city->dir, -errno);
    the_city = city;
    atexit(remove_city);

    char err[512];
    int rc = config_parse_string(topology, &city->config, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "fuzz scratch city: %s\n", err);
        abort();
    }
    city->zmq = zmq_ctx_new();
    /* Room for the sockets closed but not yet destroyed by ZeroMQ's reaper
     * when a target makes one per input. */
    zmq_ctx_set(city->zmq, ZMQ_MAX_SOCKETS, 8192);
    open_worker(city, &city->intake, "intake-1");
    open_worker(city, &city->router, "router-cy");
    open_worker(city, &city->escalation, "escalation-cy");
    open_worker(city, &city->audit, "audit");

    intake_t *intake;
    if ((rc = intake_new(city->intake.store, city->intake.bus, city->config, "intake-1", NULL,
                         &intake)) < 0)
        die("intake", rc);
    city->intake_app = intake;

    router_t *router;
    if ((rc = router_new(city->router.store, city->router.bus, city->config, "router-cy", NULL,
                         &router)) < 0)
        die("router", rc);
    city->router_app = router;
    char path[700];
    scratch_write_file("units.csv", units_csv, sizeof(units_csv) - 1, path, sizeof(path));
    scratch_write_file("rules.csv", rules_csv, sizeof(rules_csv) - 1, path, sizeof(path));
    if ((rc = router_seed(router, city->dir, NULL, NULL, err, sizeof(err))) < 0) {
        fprintf(stderr, "fuzz scratch city: seed: %s\n", err);
        abort();
    }

    deadlines_t *table;
    calendar_t *calendar;
    if ((rc = escalation_load_data(DEPLOY_DATA, &table, &calendar, err, sizeof(err))) < 0) {
        fprintf(stderr, "fuzz scratch city: %s\n", err);
        abort();
    }
    escalation_t *escalation;
    if ((rc = escalation_new(city->escalation.store, city->escalation.bus, city->config,
                             "escalation-cy", table, calendar, &escalation)) < 0)
        die("escalation", rc);
    city->escalation_app = escalation;

    audit_options_t audit_options;
    audit_options_init(&audit_options);
    audit_t *audit;
    if ((rc = audit_new(city->audit.store, &audit_options, &audit)) < 0)
        die("audit", rc);
    city->audit_app = audit;

    register_ticket(city);
    return city;
}

/* dispatch-audit with intake and routers as real processes: every event of
 * a 10,000-ticket run recorded once (audit killed twice meanwhile), the
 * chain checked by `dispatchctl audit verify` and a tampered store caught,
 * a paused subscriber that ends with all 50,000 records in order, and no
 * caller's phone or name unmasked on the stream, in replies, reports or the
 * workers' logs.
 *
 * One city for the whole file; the tests run in order and build on each
 * other (the log of the first is the one the second tampers with). The
 * workers' stderr goes to a file the last test reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bus.h"
#include "citydata.h"
#include "dispatch_test.h"
#include "event.h"
#include "follower.h"
#include "harness.h"
#include "loop.h"
#include "store.h"
#include "submitter.h"

#define TICKETS 10000
#define PAUSED_RECORDS 50000
#define WARM_UP_RECORDS 100
#define TAMPERED_SEQ 12345

static const char *const categories[] = {"traffic", "water-supply", "power-outage",
                                         "heating", "gas",          "telecom"};
#define CATEGORY_COUNT 6
/* The callers of this test: what must never appear unmasked. */
static const char *const names[] = {"张伟明", "Zhang Weiming", "李四光"};

typedef struct world {
    void *zmq;
    city_t *city;
    char log_path[600];
    int log_fd;
    size_t category_count[CATEGORY_COUNT];
    uint64_t records_after_run;
    char first_ticket[64];
    char day[16]; /* the registration day of the run, YYYY-MM-DD */
    /* Everything clients got from the audit, for the last test. */
    char *seen;
    size_t seen_len, seen_capacity;
} world_t;

static world_t world;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seen_add(const void *bytes, size_t len)
{
    if (world.seen_len + len > world.seen_capacity) {
        world.seen_capacity = (world.seen_len + len) * 2;
        world.seen = realloc(world.seen, world.seen_capacity);
    }
    memcpy(world.seen + world.seen_len, bytes, len);
    world.seen_len += len;
}

static void seen_add_message(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    unsigned char *buf = malloc(len + 1);
    protobuf_c_message_pack(msg, buf);
    seen_add(buf, len);
    free(buf);
}

/* Workers started inside this pair write their stderr to the log file. */
static int saved_stderr = -1;

static void workers_log_begin(void)
{
    fflush(stderr);
    saved_stderr = dup(2);
    dup2(world.log_fd, 2);
}

static void workers_log_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
}

static int start(const char *worker)
{
    workers_log_begin();
    int rc = worker ? city_start(world.city, worker) : city_start_all(world.city);
    workers_log_end();
    return rc;
}

static const char *audit_request(void)
{
    return city_endpoint(world.city, "audit", "request");
}

static uint64_t audit_last_seq(void)
{
    client_t *client;
    assert_int_equal(client_new(world.zmq, audit_request(), TEST_TIMEOUT_MS,
                                test_keys(world.city, "auditor", audit_request()), &client),
                     0);
    Dispatch__ReplayRequest request = DISPATCH__REPLAY_REQUEST__INIT;
    request.from_seq = UINT64_MAX;
    ProtobufCMessage *reply = NULL;
    int rc = client_call(client, &request.base, &dispatch__replay_reply__descriptor, &reply);
    client_destroy(&client);
    assert_int_equal(rc, 0);
    uint64_t last = ((Dispatch__ReplayReply *)reply)->last_seq;
    protobuf_c_message_free_unpacked(reply, NULL);
    return last;
}

/* Runs dispatchctl with args; its stdout (and stderr) into out. Returns the
 * exit status. */
static int run_ctl(char *out, size_t len, const char *const *args)
{
    const char *argv[32];
    size_t argc = 0;
    argv[argc++] = harness_program("DISPATCHCTL", "tools/dispatchctl");
    argv[argc++] = "--config";
    argv[argc++] = city_topology(world.city);
    for (size_t i = 0; args[i] && argc < 27; i++)
        argv[argc++] = args[i];
    /* The topology has wildcard ports; the city knows the bound ones. */
    argv[argc++] = "--audit";
    argv[argc++] = audit_request();
    bool tail = false;
    for (size_t i = 0; args[i]; i++)
        tail |= strcmp(args[i], "tail") == 0;
    if (tail) {
        argv[argc++] = "--publish";
        argv[argc++] = city_endpoint(world.city, "audit", "publish");
    }
    argv[argc] = NULL;
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("DISPATCH_ACTOR", "tester", 1); /* the city's key of every role */
        dup2(pipe_fds[1], 1);
        dup2(pipe_fds[1], 2);
        close(pipe_fds[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipe_fds[1]);
    size_t used = 0;
    ssize_t got;
    char chunk[65536];
    while ((got = read(pipe_fds[0], chunk, sizeof(chunk))) > 0) {
        seen_add(chunk, (size_t)got);
        size_t room = len - 1 - used;
        size_t take = (size_t)got < room ? (size_t)got : room;
        memcpy(out + used, chunk, take);
        used += take;
    }
    out[used] = '\0';
    close(pipe_fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int start_world(void **state)
{
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
    signal(SIGPIPE, SIG_IGN);

    world.zmq = zmq_ctx_new();
    char *units = citydata_units_csv();
    char *rules[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        rules[d] = citydata_rules_csv(citydata_districts[d]);
    static const char *const debug[] = {"--log-level", "debug", NULL};
    city_options_t options = {
        .districts = citydata_districts,
        .district_count = CITYDATA_DISTRICTS,
        .units_csv = units,
        .rules_csv = (const char *const *)rules,
        .intake_args = debug,
        .router_args = debug,
        .audit = true,
        .audit_args = debug,
    };
    int rc = city_new("audit", &options, &world.city);
    free(units);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        free(rules[d]);
    if (rc < 0)
        return rc;
    snprintf(world.log_path, sizeof(world.log_path), "%s/workers.log", city_dir(world.city));
    world.log_fd = open(world.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (world.log_fd < 0)
        return -errno;
    return start(NULL);
}

static int stop_world(void **state)
{
    workers_log_begin();
    city_destroy(&world.city, getenv("DISPATCH_KEEP_STATE") != NULL);
    workers_log_end();
    close(world.log_fd);
    zmq_ctx_term(world.zmq);
    free(world.seen);
    return 0;
}

/* ---- 1. every event exactly once --------------------------------------- */

typedef struct run {
    char (*ticket)[64];
    size_t kills_done;
} run_t;

static void on_reply(void *ctx, size_t index, const Dispatch__Reply *reply)
{
    run_t *run = ctx;
    if (reply->body_case == DISPATCH__REPLY__BODY_SUBMIT)
        snprintf(run->ticket[index], 64, "%s", reply->submit->ticket_id);
}

static void on_progress(void *ctx, size_t answered)
{
    run_t *run = ctx;
    /* SIGKILL the audit at a third and two thirds of the run. */
    if (run->kills_done < 2 && answered >= TICKETS * (run->kills_done + 1) / 3) {
        city_stop(world.city, "audit", SIGKILL);
        if (start("audit") < 0) {
            fprintf(stderr, "FAIL: audit did not restart\n");
            exit(1);
        }
        run->kills_done++;
    }
}

typedef struct ticket_index {
    const char *id;
    long index;
} ticket_index_t;

static int by_id(const void *a, const void *b)
{
    return strcmp(((const ticket_index_t *)a)->id, ((const ticket_index_t *)b)->id);
}

static ticket_index_t *sorted_tickets;

static long find_ticket(run_t *run, const char *id)
{
    if (!sorted_tickets) {
        sorted_tickets = calloc(TICKETS, sizeof(*sorted_tickets));
        for (long i = 0; i < TICKETS; i++)
            sorted_tickets[i] = (ticket_index_t){run->ticket[i], i};
        qsort(sorted_tickets, TICKETS, sizeof(*sorted_tickets), by_id);
    }
    ticket_index_t key = {id, -1};
    ticket_index_t *found = bsearch(&key, sorted_tickets, TICKETS, sizeof(key), by_id);
    return found ? found->index : -1;
}

/* "<origin>-<n>": n, and the origin into buf. */
/* "<origin>-<incarnation>-<n>" (common/event.h): origin into origin, n
 * returned; the incarnation part is 8 hex digits. */
static uint64_t split_event_id(const char *id, char *origin, size_t len)
{
    const char *dash = strrchr(id, '-');
    assert_non_null(dash);
    const char *incarnation = dash - 9;
    assert_true(incarnation > id && *incarnation == '-');
    assert_int_equal(strspn(incarnation + 1, "0123456789abcdef"), 8);
    snprintf(origin, len, "%.*s", (int)(incarnation - id), id);
    return strtoull(dash + 1, NULL, 10);
}

static void test_every_event_of_10000_tickets_is_logged_once(void **state)
{
    run_t run = {.ticket = calloc(TICKETS, 64)};
    submitter_t *submitter;
    assert_int_equal(submitter_new(world.zmq, city_endpoint(world.city, "intake-1", "request"), 64,
                                   test_keys(world.city, "agent-7",
                                             city_endpoint(world.city, "intake-1", "request")),
                                   &submitter),
                     0);
    for (size_t i = 0; i < TICKETS; i++) {
        char request_id[32], phone[32];
        snprintf(request_id, sizeof(request_id), "audit-%zu", i);
        snprintf(phone, sizeof(phone), "137%08zu", i);
        int category = (int)(i * 7 % CATEGORY_COUNT);
        world.category_count[category]++;
        Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
        submit.client_request_id = request_id;
        submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
        submit.kind = DISPATCH__KIND__KIND_HELP;
        submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
        submit.district = (char *)citydata_districts[i % CITYDATA_DISTRICTS];
        submit.category = (char *)categories[category];
        submit.caller_name = (char *)names[i % 2];
        submit.caller_phone = phone;
        submit.description = "no water since the morning";
        submitter_add(submitter, "", &submit); /* the key's actor */
    }
    int rc = submitter_run(submitter, 2000, 600000, on_reply, on_progress, &run);
    submitter_destroy(&submitter);
    assert_int_equal(rc, 0);
    assert_int_equal(run.kills_done, 2);
    snprintf(world.first_ticket, sizeof(world.first_ticket), "%s", run.ticket[0]);

    /* Each ticket: TicketRegistered (intake) and TicketDispatched (its
     * router) = 20,000 events; wait until audit has them all. */
    const uint64_t expected = 2 * TICKETS;
    int64_t deadline = now_ms() + 300000;
    uint64_t last = 0;
    /* Each record audit appends is published: ask again when one comes. */
    void *stream = zmq_socket(world.zmq, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(stream, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(stream, ZMQ_SUBSCRIBE, "", 0);
    const char *publish = city_endpoint(world.city, "audit", "publish");
    assert_int_equal(auth_client_apply(stream, test_keys(world.city, "auditor", publish)), 0);
    assert_int_equal(zmq_connect(stream, publish), 0);
    while ((last = audit_last_seq()) < expected && now_ms() < deadline) {
        zmq_pollitem_t item = {.socket = stream, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 1000) > 0) {
            zmq_msg_t frame;
            zmq_msg_init(&frame);
            while (zmq_msg_recv(&frame, stream, ZMQ_DONTWAIT) >= 0)
                ;
            zmq_msg_close(&frame);
        }
    }
    zmq_close(stream);
    assert_int_equal(last, expected);

    /* Read the whole log back (replay, through a follower) and count. */
    follower_options_t options = {.from_seq = 1,
                                  .curve = test_keys(world.city, "auditor", audit_request())};
    follower_t *follower;
    assert_int_equal(follower_new(world.zmq, city_endpoint(world.city, "audit", "publish"),
                                  audit_request(), &options, &follower),
                     0);
    uint8_t *registered = calloc(TICKETS, 1), *dispatched = calloc(TICKETS, 1);
    uint8_t *intake_ids = calloc(TICKETS + 1, 1);
    uint8_t *router_ids[CITYDATA_DISTRICTS];
    uint64_t router_max[CITYDATA_DISTRICTS] = {0};
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        router_ids[d] = calloc(TICKETS + 1, 1);
    size_t twice = 0, strangers = 0;
    for (uint64_t seq = 1; seq <= expected; seq++) {
        const Dispatch__AuditRecord *record;
        assert_int_equal(follower_next(follower, 5000, &record), 0);
        assert_int_equal(record->seq, seq);
        assert_non_null(record->event);
        if (seq % 97 == 0)
            seen_add_message(&record->base);
        const Dispatch__Event *event = record->event;
        if (seq == 1) {
            /* The day the run was registered on, for the report below. */
            time_t t = (time_t)(event->at / 1000);
            struct tm tm;
            setenv("TZ", "Asia/Shanghai", 1);
            tzset();
            localtime_r(&t, &tm);
            strftime(world.day, sizeof(world.day), "%Y-%m-%d", &tm);
        }
        char origin[64];
        uint64_t n = split_event_id(event->event_id, origin, sizeof(origin));
        assert_true(n >= 1 && n <= TICKETS);
        long ticket = find_ticket(&run, event->ticket_id);
        if (ticket < 0) {
            strangers++;
            continue;
        }
        if (event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED) {
            assert_string_equal(origin, "intake-1");
            twice += intake_ids[n]++ > 0;
            twice += registered[ticket]++ > 0;
            /* Masked in every record that leaves the audit. */
            const Dispatch__Ticket *t = event->ticket_registered->ticket;
            char phone[32];
            snprintf(phone, sizeof(phone), "137****%04ld", ticket % 10000);
            assert_string_equal(t->caller_phone, phone);
            assert_true(strcmp(t->caller_name, "张**") == 0 ||
                        strcmp(t->caller_name, "Z************") == 0);
        } else {
            assert_int_equal(event->body_case, DISPATCH__EVENT__BODY_TICKET_DISPATCHED);
            int d = -1;
            for (int k = 0; k < CITYDATA_DISTRICTS; k++) {
                char name[64];
                snprintf(name, sizeof(name), "router-%s", citydata_districts[k]);
                if (strcmp(name, origin) == 0)
                    d = k;
            }
            assert_true(d >= 0);
            twice += router_ids[d][n]++ > 0;
            if (n > router_max[d])
                router_max[d] = n;
            twice += dispatched[ticket]++ > 0;
        }
    }
    follower_stats_t stats;
    follower_stats(follower, &stats);
    follower_destroy(&follower);
    /* Nothing beyond the 20,000. */
    world.records_after_run = audit_last_seq();
    assert_int_equal(world.records_after_run, expected);

    size_t missing = 0;
    for (size_t i = 0; i < TICKETS; i++)
        missing += !registered[i] + !dispatched[i] + !intake_ids[i + 1];
    uint64_t router_total = 0;
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        for (uint64_t n = 1; n <= router_max[d]; n++)
            missing += !router_ids[d][n]; /* each router's ids 1..max, none skipped */
        router_total += router_max[d];
        free(router_ids[d]);
    }
    printf("audit: %llu records for %d tickets; missing %zu, twice %zu, strangers %zu; "
           "read back with %llu replays\n",
           (unsigned long long)expected, TICKETS, missing, twice, strangers,
           (unsigned long long)stats.replays);
    assert_int_equal(missing, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(strangers, 0);
    assert_int_equal(router_total, TICKETS);
    free(registered);
    free(dispatched);
    free(intake_ids);
    free(sorted_tickets);
    sorted_tickets = NULL;
    free(run.ticket);
}

/* ---- 2. verify, and a tampered store ------------------------------------ */

typedef enum { EDIT_BYTE, DELETE_RECORD, SWAP_RECORDS, RESTORE } edit_t;

/* Opens the audit's environment as an outsider would and changes it. */
static void edit_store(edit_t what, uint64_t seq, size_t byte, unsigned char saved[2][8192],
                       size_t saved_len[2])
{
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/audit", city_dir(world.city));
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "audit.log", 0, &log), 0);
    unsigned char keys[2][8];
    MDB_val key[2], value;
    for (int i = 0; i < 2; i++) {
        store_u64_encode(seq + (uint64_t)i, keys[i]);
        key[i] = (MDB_val){8, keys[i]};
    }
    if (what == RESTORE) {
        for (int i = 0; i < 2; i++) {
            MDB_val original = {saved_len[i], saved[i]};
            assert_int_equal(mdb_put(txn, log, &key[i], &original, 0), 0);
        }
    } else {
        for (int i = 0; i < 2; i++) {
            assert_int_equal(mdb_get(txn, log, &key[i], &value), 0);
            assert_true(value.mv_size <= 8192);
            memcpy(saved[i], value.mv_data, value.mv_size);
            saved_len[i] = value.mv_size;
        }
        if (what == EDIT_BYTE) {
            unsigned char copy[8192];
            memcpy(copy, saved[0], saved_len[0]);
            copy[byte % saved_len[0]] ^= 0x20;
            MDB_val edited = {saved_len[0], copy};
            assert_int_equal(mdb_put(txn, log, &key[0], &edited, 0), 0);
        } else if (what == DELETE_RECORD) {
            assert_int_equal(mdb_del(txn, log, &key[0], NULL), 0);
        } else {
            for (int i = 0; i < 2; i++) {
                MDB_val other = {saved_len[1 - i], saved[1 - i]};
                assert_int_equal(mdb_put(txn, log, &key[i], &other, 0), 0);
            }
        }
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void expect_broken_at(uint64_t seq, const char *what)
{
    char out[4096], expected[64];
    const char *args[] = {"audit", "verify", NULL};
    int status = run_ctl(out, sizeof(out), args);
    snprintf(expected, sizeof(expected), "BROKEN at seq %llu", (unsigned long long)seq);
    if (status != 1 || !strstr(out, expected))
        fail_msg("%s: audit verify exited %d:\n%s", what, status, out);
}

static void test_verify_names_an_edited_deleted_or_reordered_record(void **state)
{
    char out[4096], expected[128];
    const char *local[] = {"audit", "verify", NULL};
    const char *remote[] = {"audit", "verify", "--remote", NULL};
    /* Read-only beside the running worker, and asked of the worker. */
    if (run_ctl(out, sizeof(out), local) != 0)
        fail_msg("audit verify: %s", out);
    snprintf(expected, sizeof(expected), "intact: %llu records",
             (unsigned long long)world.records_after_run);
    assert_non_null(strstr(out, expected));
    if (run_ctl(out, sizeof(out), remote) != 0)
        fail_msg("audit verify --remote: %s", out);
    assert_non_null(strstr(out, expected));

    assert_int_equal(city_stop(world.city, "audit", SIGTERM), 0);
    unsigned char saved[2][8192];
    size_t saved_len[2];
    const size_t bytes[] = {3, 60, 100, 1000000};
    for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
        edit_store(EDIT_BYTE, TAMPERED_SEQ, bytes[i], saved, saved_len);
        expect_broken_at(TAMPERED_SEQ, "one byte edited");
        edit_store(RESTORE, TAMPERED_SEQ, 0, saved, saved_len);
    }
    assert_int_equal(run_ctl(out, sizeof(out), local), 0);

    edit_store(DELETE_RECORD, TAMPERED_SEQ, 0, saved, saved_len);
    expect_broken_at(TAMPERED_SEQ, "one record deleted");
    edit_store(RESTORE, TAMPERED_SEQ, 0, saved, saved_len);
    edit_store(SWAP_RECORDS, TAMPERED_SEQ, 0, saved, saved_len);
    expect_broken_at(TAMPERED_SEQ, "two records swapped");
    edit_store(RESTORE, TAMPERED_SEQ, 0, saved, saved_len);

    assert_int_equal(run_ctl(out, sizeof(out), local), 0);
    assert_int_equal(start("audit"), 0);
    assert_int_equal(audit_last_seq(), world.records_after_run);
}

/* ---- 3. a paused subscriber ----------------------------------------------- */

typedef struct injector {
    char dir[512];
    store_t *store;
    auth_t *auth; /* the context's ZAP handler, with injector's key */
    bus_t *bus;
    bus_link_t *link;
    uint64_t sent, target, goal;
    bool applied;
    char description[1025];
} injector_t;

static int inject_batch(MDB_txn *txn, void *ctx)
{
    injector_t *in = ctx;
    for (uint64_t n = in->sent + 1; n <= in->target; n++) {
        char id[64], ticket_id[64], phone[32];
        snprintf(id, sizeof(id), "injector-%llu", (unsigned long long)n);
        snprintf(ticket_id, sizeof(ticket_id), "X1-%llu", (unsigned long long)n);
        snprintf(phone, sizeof(phone), "139%08llu", (unsigned long long)n);
        Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
        ticket.id = ticket_id;
        ticket.district = (char *)citydata_districts[n % CITYDATA_DISTRICTS];
        ticket.category = "noise";
        ticket.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
        ticket.caller_name = (char *)names[2];
        ticket.caller_phone = phone;
        ticket.description = in->description;
        Dispatch__TicketRegistered body = DISPATCH__TICKET_REGISTERED__INIT;
        body.ticket = &ticket;
        Dispatch__Event event = DISPATCH__EVENT__INIT;
        event.event_id = id;
        event.ticket_id = ticket_id;
        event.district = ticket.district;
        event.origin = "injector";
        event.actor = "injector";
        event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
        event.ticket_registered = &body;
        int rc = event_send(in->bus, txn, &in->link, 1, &event);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The injector's loop: each iteration sends up to 1,000 events in its
 * write batch (the outbox is written inside the loop's transaction, as a
 * worker does), keeping at most 20,000 unacknowledged. */
static bool inject_drain(void *app, int64_t now_ms)
{
    injector_t *in = app;
    bus_link_stats_t stats;
    bus_link_stats(in->link, &stats);
    return in->sent < in->goal && stats.next - stats.acked < 20000;
}

static int inject_apply(void *app, MDB_txn *txn)
{
    injector_t *in = app;
    if (in->sent >= in->goal)
        return 0;
    in->target = in->sent + 1000 < in->goal ? in->sent + 1000 : in->goal;
    in->applied = true;
    return inject_batch(txn, in);
}

static void inject_done(void *app, int rc)
{
    injector_t *in = app;
    if (rc == 0 && in->applied)
        in->sent = in->target;
    in->applied = false;
}

/* Sends events up to `total` and waits until the audit acknowledged them
 * all (committed). */
static void inject(injector_t *in, uint64_t total)
{
    in->goal = total;
    loop_app_t app = {.app = in, .drain = inject_drain, .apply = inject_apply, .done = inject_done};
    int64_t deadline = now_ms() + 300000;
    while ((in->sent < total || !bus_idle(in->bus)) && now_ms() < deadline)
        assert_int_equal(loop_once(in->store, in->bus, &app, 50), 0);
    assert_int_equal(in->sent, total);
    assert_true(bus_idle(in->bus));
}

static void expect_injected(const Dispatch__AuditRecord *record, uint64_t n)
{
    char id[64], phone[32];
    snprintf(id, sizeof(id), "injector-%llu", (unsigned long long)n);
    assert_non_null(record->event);
    assert_string_equal(record->event->event_id, id);
    const Dispatch__Ticket *ticket = record->event->ticket_registered->ticket;
    snprintf(phone, sizeof(phone), "139****%04llu", (unsigned long long)(n % 10000));
    assert_string_equal(ticket->caller_phone, phone);
    assert_string_equal(ticket->caller_name, "李**");
}

static void test_paused_subscriber_ends_with_all_50000_in_order(void **state)
{
    injector_t in = {0};
    memset(in.description, 'd', 1024);
    assert_int_equal(harness_tmpdir("audit-injector", in.dir, sizeof(in.dir)), 0);
    assert_int_equal(store_open(in.dir, NULL, &in.store), 0);
    /* A worker of the city as far as audit can tell: its link speaks with
     * the injector's worker key. */
    char keys[600];
    assert_int_equal(
        auth_new(world.zmq, city_keys_dir(world.city, keys, sizeof(keys)), "injector", &in.auth),
        0);
    bus_options_t bus_options = {.auth = in.auth};
    assert_int_equal(bus_new(world.zmq, in.store, "injector", &bus_options, &in.bus), 0);
    assert_int_equal(
        bus_link_open(in.bus, "audit", city_endpoint(world.city, "audit", "bus"), &in.link), 0);

    uint64_t base = audit_last_seq();
    follower_options_t options = {.from_seq = base + 1,
                                  .rcvhwm = 100,
                                  .curve = test_keys(world.city, "auditor", audit_request())};
    follower_t *follower;
    assert_int_equal(follower_new(world.zmq, city_endpoint(world.city, "audit", "publish"),
                                  audit_request(), &options, &follower),
                     0);
    /* Warm up: the subscriber is live and caught up. */
    inject(&in, WARM_UP_RECORDS);
    for (uint64_t n = 1; n <= WARM_UP_RECORDS; n++) {
        const Dispatch__AuditRecord *record;
        assert_int_equal(follower_next(follower, 10000, &record), 0);
        assert_int_equal(record->seq, base + n);
        expect_injected(record, n);
    }
    follower_stats_t before;
    follower_stats(follower, &before);

    /* Paused: 50,000 records are published while it reads nothing. */
    int64_t t0 = now_ms();
    inject(&in, WARM_UP_RECORDS + PAUSED_RECORDS);
    int64_t published_ms = now_ms() - t0;
    assert_int_equal(audit_last_seq(), base + WARM_UP_RECORDS + PAUSED_RECORDS);

    t0 = now_ms();
    for (uint64_t n = WARM_UP_RECORDS + 1; n <= WARM_UP_RECORDS + PAUSED_RECORDS; n++) {
        const Dispatch__AuditRecord *record;
        int rc = follower_next(follower, 10000, &record);
        if (rc != 0)
            fail_msg("record %llu: %s", (unsigned long long)n, strerror(-rc));
        assert_int_equal(record->seq, base + n);
        expect_injected(record, n);
        if (n % 101 == 0)
            seen_add_message(&record->base);
    }
    int64_t caught_up_ms = now_ms() - t0;
    follower_stats_t after;
    follower_stats(follower, &after);
    printf("paused subscriber: %d records published in %.1f s while paused; caught up in "
           "%.1f s: %llu live, %llu replayed in %llu replays, %llu gaps seen\n",
           PAUSED_RECORDS, (double)published_ms / 1000, (double)caught_up_ms / 1000,
           (unsigned long long)(after.live - before.live),
           (unsigned long long)(after.replayed - before.replayed),
           (unsigned long long)(after.replays - before.replays),
           (unsigned long long)(after.gaps - before.gaps));
    /* The PUB did drop (the high-water mark), and replay filled it. */
    assert_true(after.replayed - before.replayed > 0);
    assert_true(after.gaps - before.gaps + (after.replays - before.replays) > 0);
    assert_true(after.live - before.live < PAUSED_RECORDS);
    follower_destroy(&follower);
    bus_destroy(&in.bus);
    auth_destroy(&in.auth);
    store_destroy(&in.store);
    harness_rmtree(in.dir);
}

/* ---- 4. no caller data unmasked anywhere ----------------------------------- */

/* A run of exactly 11 digits starting with "13": a mobile number like the
 * test's callers' (times in ms have 13 digits, ids at most 8 in a row). */
static bool has_phone(const char *bytes, size_t len, size_t *at)
{
    size_t run = 0;
    for (size_t i = 0; i <= len; i++) {
        bool digit = i < len && bytes[i] >= '0' && bytes[i] <= '9';
        if (digit) {
            run++;
            continue;
        }
        if (run == 11 && bytes[i - 11] == '1' && bytes[i - 10] == '3') {
            *at = i - 11;
            return true;
        }
        run = 0;
    }
    return false;
}

static void expect_no_caller(const char *what, const char *bytes, size_t len)
{
    size_t at;
    if (has_phone(bytes, len, &at))
        fail_msg("%s: a phone number unmasked: %.20s", what, bytes + at);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (memmem(bytes, len, names[i], strlen(names[i])))
            fail_msg("%s: the name '%s' unmasked", what, names[i]);
    if (memmem(bytes, len, "Weiming", 7) || memmem(bytes, len, "伟明", strlen("伟明")) ||
        memmem(bytes, len, "四光", strlen("四光")))
        fail_msg("%s: part of a name unmasked", what);
}

static void test_no_caller_phone_or_name_unmasked_anywhere(void **state)
{
    static char out[4 * 1024 * 1024];
    /* The stream as dispatchctl shows it, in JSON and as text. */
    const char *tail_json[] = {"--json", "tail", "--from", "1", "--count", "300", NULL};
    assert_int_equal(run_ctl(out, sizeof(out), tail_json), 0);
    assert_non_null(strstr(out, "\"caller_phone\":\"137****0000\""));
    expect_no_caller("tail --json", out, strlen(out));
    const char *tail_text[] = {"tail", "--from", "19990", "--count", "200", NULL};
    assert_int_equal(run_ctl(out, sizeof(out), tail_text), 0);
    expect_no_caller("tail", out, strlen(out));

    /* A ticket's history. */
    const char *history[] = {"--json", "audit", "history", world.first_ticket, NULL};
    assert_int_equal(run_ctl(out, sizeof(out), history), 0);
    assert_non_null(strstr(out, "ticket_dispatched"));
    expect_no_caller("audit history", out, strlen(out));

    /* Reports and KPIs, for people and for tools. The run's categories
     * counted as submitted; the injected tickets are all "noise". */
    const char *report_json[] = {"report",  "--period", "quarter", "--at",
                                 world.day, "--json",   NULL};
    assert_int_equal(run_ctl(out, sizeof(out), report_json), 0);
    expect_no_caller("report --json", out, strlen(out));
    for (int c = 0; c < CATEGORY_COUNT; c++) {
        char expected[128];
        snprintf(expected, sizeof(expected), "\"category\":\"%s\"", categories[c]);
        char *found = strstr(out, expected);
        assert_non_null(found);
        snprintf(expected, sizeof(expected), "\"count\":\"%zu\"", world.category_count[c]);
        char *count = strstr(found, expected);
        assert_true(count && count - found < 80);
    }
    assert_non_null(strstr(out, "\"category\":\"noise\""));
    const char *report_text[] = {"report", "--period", "month", "--at", world.day, NULL};
    assert_int_equal(run_ctl(out, sizeof(out), report_text), 0);
    assert_non_null(strstr(out, "water-supply"));
    expect_no_caller("report", out, strlen(out));
    const char *kpi_csv[] = {"kpi",  "--by",    "unit",  "--period", "day",
                             "--at", world.day, "--csv", NULL};
    assert_int_equal(run_ctl(out, sizeof(out), kpi_csv), 0);
    assert_non_null(strstr(out, "water-company,"));
    expect_no_caller("kpi --csv", out, strlen(out));
    const char *kpi_text[] = {"kpi", "--by", "district", "--at", world.day, NULL};
    assert_int_equal(run_ctl(out, sizeof(out), kpi_text), 0);
    expect_no_caller("kpi", out, strlen(out));

    /* Everything clients got from the audit in this file (replay,
     * stream, dispatchctl output), packed as it came. */
    expect_no_caller("replies and stream", world.seen, world.seen_len);

    /* The workers' logs (every worker, at debug level, audit killed and
     * restarted in between). */
    fflush(stderr);
    FILE *log = fopen(world.log_path, "r");
    assert_non_null(log);
    size_t len = fread(out, 1, sizeof(out) - 1, log);
    fclose(log);
    out[len] = '\0';
    assert_non_null(strstr(out, "serving (audit"));
    expect_no_caller("workers' logs", out, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_event_of_10000_tickets_is_logged_once),
        cmocka_unit_test(test_verify_names_an_edited_deleted_or_reordered_record),
        cmocka_unit_test(test_paused_subscriber_ends_with_all_50000_in_order),
        cmocka_unit_test(test_no_caller_phone_or_name_unmasked_anywhere),
    };
    return cmocka_run_group_tests(tests, start_world, stop_world);
}

/* Storage faults with real workers over real sockets on real LMDB files:
 *
 *  - a full disk under intake, under a router and under audit (a small
 *    tmpfs mounted on the worker's state dir by the test; it runs as root,
 *    and is skipped with a message when the mount is refused): the failure
 *    is logged once with its cause however many batches fail, nothing is
 *    lost, and once space is freed the worker logs its recovery and the
 *    work that waited is done (intake: the retried submit gets its ticket;
 *    router: the ticket is dispatched; audit: every reply said "failing"
 *    meanwhile, and the ticket is recorded); whoever asks is told: intake's
 *    and the router's StatsQuery say failing, then not, and `dispatchctl
 *    links` (the real tool) prints audit's failing storage, then that it
 *    works again;
 *  - a 16 KiB map_size starts and grows;
 *  - a truncated data file, and one with flipped bytes, are refused at
 *    start with a clear message and a non-zero exit, not a signal.
 *
 * Each test has its own city (plain security, on loopback); the workers'
 * stderr goes to a file the test reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "dispatch_test.h"
#include "harness.h"

#define TMPFS_SIZE "4m"
#define MAX_SUBMITS 20000
#define FAILING_LINE "storage: a batch could not commit: No space left on device"
#define RECOVERED_LINE "storage: commits work again after"

static const char units_csv[] = "id,name,parent_id,level,district,active\n"
                                "city,Test City,,city,,1\n"
                                "cy,Chaoyang District,city,district,cy,1\n";
static const char *const rules_csv[] = {"category,area,lead_unit,assisting_units,priority\n"
                                        "noise,,cy,,0\n"};
static const char *const districts[] = {"cy"};

typedef struct world {
    void *zmq;
    city_t *city;
    char log_path[600];
    int log_fd;
    char mount[600]; /* the tmpfs, when mounted */
    bool failed;
} world_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void world_open(world_t *world, const char *tag, bool audit)
{
    memset(world, 0, sizeof(*world));
    world->zmq = zmq_ctx_new();
    city_options_t options = {
        .districts = districts,
        .district_count = 1,
        .units_csv = units_csv,
        .rules_csv = rules_csv,
        .audit = audit,
        .plain = true,
    };
    assert_int_equal(city_new(tag, &options, &world->city), 0);
    snprintf(world->log_path, sizeof(world->log_path), "%s/workers.log", city_dir(world->city));
    world->log_fd = open(world->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    assert_true(world->log_fd >= 0);
}

static void world_close(world_t *world)
{
    /* STORAGE_KEEP=1 keeps the city's directory and its log. */
    const char *keep = getenv("STORAGE_KEEP");
    city_destroy(&world->city, keep && *keep == '1');
    if (world->mount[0])
        umount2(world->mount, MNT_DETACH);
    close(world->log_fd);
    zmq_ctx_term(world->zmq);
}

/* Workers started in between write their stderr to the log file. */
static int start(world_t *world, const char *worker)
{
    fflush(stderr);
    int saved = dup(2);
    dup2(world->log_fd, 2);
    int rc = worker ? city_start(world->city, worker) : city_start_all(world->city);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return rc;
}

/* The log so far (malloc'ed, NUL-terminated). */
static char *read_log(const world_t *world)
{
    FILE *file = fopen(world->log_path, "r");
    assert_non_null(file);
    char *text = NULL;
    size_t len = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), file)) > 0) {
        text = realloc(text, len + n + 1);
        memcpy(text + len, buf, n);
        len += n;
    }
    fclose(file);
    if (!text)
        text = calloc(1, 1);
    text[len] = '\0';
    return text;
}

/* Lines of the log that hold both `worker` (its ident) and `what`. */
static size_t log_count(const world_t *world, const char *worker, const char *what)
{
    char *text = read_log(world);
    size_t count = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, what) && strstr(line, worker))
            count++;
    free(text);
    return count;
}

/* Waits until the log has `count` such lines (a worker says its recovery
 * once its commits worked for 2 s: store.h). */
static bool wait_log(const world_t *world, const char *worker, const char *what, size_t count)
{
    int64_t deadline = now_ms() + TEST_TIMEOUT_MS;
    while (log_count(world, worker, what) < count) {
        if (now_ms() >= deadline)
            return false;
        poll(NULL, 0, 50);
    }
    return log_count(world, worker, what) == count;
}

/* Mounts a small tmpfs on the state dir of worker (before its first
 * start). False when the system refuses (not root, no mount namespace). */
static bool mount_state(world_t *world, const char *worker)
{
    snprintf(world->mount, sizeof(world->mount), "%s/%s", city_dir(world->city), worker);
    if (mkdir(world->mount, 0750) < 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", world->mount, strerror(errno));
    if (mount("dispatch-test", world->mount, "tmpfs", 0, "size=" TMPFS_SIZE ",mode=0750") < 0) {
        fprintf(stderr, "storage test skipped: cannot mount a tmpfs on %s: %s (run as root)\n",
                world->mount, strerror(errno));
        world->mount[0] = '\0';
        return false;
    }
    return true;
}

static char *filler_path(const world_t *world, char *buf, size_t len)
{
    snprintf(buf, len, "%s/filler", world->mount);
    return buf;
}

/* Takes every free byte of the tmpfs. */
static void fill_disk(const world_t *world)
{
    char path[700];
    int fd = open(filler_path(world, path, sizeof(path)), O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    static char block[64 * 1024];
    memset(block, 'x', sizeof(block));
    size_t size = sizeof(block);
    for (;;) {
        ssize_t n = write(fd, block, size);
        if (n < 0 && errno == ENOSPC && size > 1) {
            size /= 2;
            continue;
        }
        if (n < 0)
            break;
    }
    assert_int_equal(errno, ENOSPC);
    close(fd);
}

static void free_disk(const world_t *world)
{
    char path[700];
    assert_int_equal(unlink(filler_path(world, path, sizeof(path))), 0);
}

static client_t *intake_client(world_t *world)
{
    client_t *client;
    const char *url = city_endpoint(world->city, "intake-1", "request");
    assert_int_equal(client_new(world->zmq, url, TEST_TIMEOUT_MS, NULL, &client), 0);
    return client;
}

/* A submit: 0 with the ticket id, or the error code intake answered. */
static int submit(client_t *intake, unsigned n, char *ticket_id, size_t len)
{
    char request_id[32], phone[32];
    snprintf(request_id, sizeof(request_id), "storage-%u", n);
    snprintf(phone, sizeof(phone), "1390000%04u", n % 10000);
    Dispatch__Reply *reply = NULL;
    Dispatch__SubmitReply *submitted =
        test_submit(intake, request_id, "cy", "noise", "", phone, NULL, &reply);
    int rc = -1;
    if (submitted) {
        snprintf(ticket_id, len, "%s", submitted->ticket_id);
        rc = 0;
    } else if (reply && reply->body_case == DISPATCH__REPLY__BODY_ERROR) {
        rc = reply->error->code;
    }
    if (reply)
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

/* What worker (intake-1 or a router) says of its store in its answer to
 * StatsQuery; the caller frees *keep. Asked once: a worker answers it even
 * in a batch that did not commit (UNAVAILABLE would fail the test). */
static const Dispatch__StorageState *stats_storage(world_t *world, const char *worker,
                                                   ProtobufCMessage **keep)
{
    const char *url = city_endpoint(world->city, worker, "request");
    client_t *client;
    assert_int_equal(client_new(world->zmq, url, TEST_TIMEOUT_MS, NULL, &client), 0);
    Dispatch__StatsQuery stats = DISPATCH__STATS_QUERY__INIT;
    const Dispatch__WorkerStats *answer = NULL;
    const Dispatch__Error *error = NULL;
    *keep = NULL;
    if (strncmp(worker, "intake", 6) == 0) {
        Dispatch__Request request = DISPATCH__REQUEST__INIT;
        request.actor = "agent-7";
        request.body_case = DISPATCH__REQUEST__BODY_STATS;
        request.stats = &stats;
        Dispatch__Reply *reply = test_call_intake(client, &request);
        *keep = reply ? &reply->base : NULL;
        answer = reply && reply->body_case == DISPATCH__REPLY__BODY_STATS ? reply->stats : NULL;
        error = reply && reply->body_case == DISPATCH__REPLY__BODY_ERROR ? reply->error : NULL;
    } else {
        Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
        request.body_case = DISPATCH__ADMIN_REQUEST__BODY_STATS;
        request.stats = &stats;
        Dispatch__AdminReply *reply =
            test_admin(client, "tester", DISPATCH__ROLE__ROLE_AUDITOR, &request);
        *keep = reply ? &reply->base : NULL;
        answer =
            reply && reply->body_case == DISPATCH__ADMIN_REPLY__BODY_STATS ? reply->stats : NULL;
        error =
            reply && reply->body_case == DISPATCH__ADMIN_REPLY__BODY_ERROR ? reply->error : NULL;
    }
    client_destroy(&client);
    if (!answer)
        fail_msg("%s answered StatsQuery with %s", worker,
                 error ? error->message : "no reply, or no stats in it");
    assert_non_null(answer->storage);
    return answer->storage;
}

/* Asserts what worker's StatsQuery says: failing or not, and at least one
 * failed batch either way (the test filled its disk). */
static void expect_stats_storage(world_t *world, const char *worker, bool failing)
{
    ProtobufCMessage *keep;
    const Dispatch__StorageState *storage = stats_storage(world, worker, &keep);
    assert_int_equal(storage->failing, failing);
    assert_true(storage->failed_batches > 0);
    assert_non_null(strstr(storage->error, "No space left on device"));
    if (failing) {
        assert_true(storage->episode_failures > 0);
        assert_true(storage->failing_since > 0);
    } else {
        assert_int_equal(storage->episode_failures, 0);
        assert_int_equal(storage->failing_since, 0);
    }
    protobuf_c_message_free_unpacked(keep, NULL);
}

/* ---- full disk ---------------------------------------------------------- */

static void test_full_disk_intake(void **state)
{
    world_t world;
    world_open(&world, "storage-intake", false);
    if (!mount_state(&world, "intake-1")) {
        world_close(&world);
        skip();
    }
    assert_int_equal(start(&world, NULL), 0);
    client_t *intake = intake_client(&world);
    char ticket[64];
    assert_int_equal(submit(intake, 0, ticket, sizeof(ticket)), 0);

    fill_disk(&world);
    /* Submits until intake cannot store one: freed pages are reused first. */
    unsigned n = 1, refused = 0, refused_at = 0;
    for (; n < MAX_SUBMITS && refused < 20; n++) {
        int rc = submit(intake, n, ticket, sizeof(ticket));
        if (rc == DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE) {
            if (!refused++)
                refused_at = n;
        } else {
            assert_int_equal(rc, 0);
        }
    }
    assert_int_equal(refused, 20);
    /* Twenty failed batches, one line. */
    assert_int_equal(log_count(&world, "intake-1", FAILING_LINE), 1);
    assert_int_equal(log_count(&world, "intake-1", RECOVERED_LINE), 0);
    expect_stats_storage(&world, "intake-1", true);

    free_disk(&world);
    /* The first refused submit, retried with its key, gets its ticket. */
    assert_int_equal(submit(intake, refused_at, ticket, sizeof(ticket)), 0);
    assert_true(wait_log(&world, "intake-1", RECOVERED_LINE, 1));
    assert_int_equal(log_count(&world, "intake-1", FAILING_LINE), 1);
    expect_stats_storage(&world, "intake-1", false);
    Dispatch__Reply *keep = NULL;
    Dispatch__TicketView *view = test_get(intake, ticket, &keep);
    assert_non_null(view);
    protobuf_c_message_free_unpacked(&keep->base, NULL);
    client_destroy(&intake);
    world_close(&world);
}

static void test_full_disk_router(void **state)
{
    world_t world;
    world_open(&world, "storage-router", false);
    if (!mount_state(&world, "router-cy")) {
        world_close(&world);
        skip();
    }
    assert_int_equal(start(&world, NULL), 0);
    client_t *intake = intake_client(&world);
    char ticket[64];
    assert_int_equal(submit(intake, 0, ticket, sizeof(ticket)), 0);
    assert_true(test_wait_state(intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));

    fill_disk(&world);
    /* Intake stores every ticket; the router fails once its pages run out. */
    unsigned n = 1;
    int64_t deadline = now_ms() + 60000;
    while (log_count(&world, "router-cy", FAILING_LINE) == 0) {
        assert_true(n < MAX_SUBMITS && now_ms() < deadline);
        assert_int_equal(submit(intake, n++, ticket, sizeof(ticket)), 0);
    }
    /* More tickets meanwhile: more failed batches, no more lines. */
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(submit(intake, n++, ticket, sizeof(ticket)), 0);
    Dispatch__Reply *keep = NULL;
    Dispatch__TicketView *view = test_get(intake, ticket, &keep);
    assert_non_null(view);
    assert_int_equal(view->ticket->state, DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED);
    protobuf_c_message_free_unpacked(&keep->base, NULL);
    expect_stats_storage(&world, "router-cy", true);

    free_disk(&world);
    /* The bus resends what the router could not store: the last ticket is
     * dispatched, and the recovery said once. */
    assert_true(test_wait_state(intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
    assert_true(wait_log(&world, "router-cy", RECOVERED_LINE, 1));
    assert_int_equal(log_count(&world, "router-cy", FAILING_LINE), 1);
    expect_stats_storage(&world, "router-cy", false);
    client_destroy(&intake);
    world_close(&world);
}

/* What audit says of its store in a reply to a verify query; the caller
 * frees *keep. */
static Dispatch__StorageState *audit_storage(world_t *world, Dispatch__AuditReply **keep)
{
    const char *url = city_endpoint(world->city, "audit", "request");
    client_t *client;
    assert_int_equal(client_new(world->zmq, url, TEST_TIMEOUT_MS, NULL, &client), 0);
    Dispatch__VerifyQuery verify = DISPATCH__VERIFY_QUERY__INIT;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.tag = 1;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_VERIFY;
    query.verify = &verify;
    ProtobufCMessage *reply = NULL;
    assert_int_equal(client_call(client, &query.base, &dispatch__audit_reply__descriptor, &reply),
                     0);
    client_destroy(&client);
    *keep = (Dispatch__AuditReply *)reply;
    assert_non_null((*keep)->storage);
    return (*keep)->storage;
}

/* Records audit holds of ticket_id. */
static size_t audit_history(world_t *world, const char *ticket_id)
{
    const char *url = city_endpoint(world->city, "audit", "request");
    client_t *client;
    assert_int_equal(client_new(world->zmq, url, TEST_TIMEOUT_MS, NULL, &client), 0);
    Dispatch__HistoryQuery history = DISPATCH__HISTORY_QUERY__INIT;
    history.ticket_id = (char *)ticket_id;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.tag = 2;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_HISTORY;
    query.history = &history;
    ProtobufCMessage *reply = NULL;
    assert_int_equal(client_call(client, &query.base, &dispatch__audit_reply__descriptor, &reply),
                     0);
    client_destroy(&client);
    Dispatch__AuditReply *audit_reply = (Dispatch__AuditReply *)reply;
    size_t count = audit_reply->history ? audit_reply->history->n_records : 0;
    protobuf_c_message_free_unpacked(reply, NULL);
    return count;
}

static void test_full_disk_audit(void **state)
{
    world_t world;
    world_open(&world, "storage-audit", true);
    if (!mount_state(&world, "audit")) {
        world_close(&world);
        skip();
    }
    assert_int_equal(start(&world, NULL), 0);
    client_t *intake = intake_client(&world);
    Dispatch__AuditReply *keep;
    Dispatch__StorageState *storage = audit_storage(&world, &keep);
    assert_false(storage->failing);
    assert_int_equal(storage->failed_batches, 0);
    protobuf_c_message_free_unpacked(&keep->base, NULL);

    fill_disk(&world);
    /* Tickets until audit says it cannot record. */
    char ticket[64];
    unsigned n = 0;
    int64_t deadline = now_ms() + 60000;
    for (;;) {
        assert_true(n < MAX_SUBMITS && now_ms() < deadline);
        assert_int_equal(submit(intake, n++, ticket, sizeof(ticket)), 0);
        storage = audit_storage(&world, &keep);
        bool failing = storage->failing;
        if (failing) {
            assert_true(storage->failed_batches >= 1);
            assert_non_null(strstr(storage->error, "No space left on device"));
            assert_true(storage->failing_since > 0);
        }
        protobuf_c_message_free_unpacked(&keep->base, NULL);
        if (failing)
            break;
    }
    /* Tickets go on; audit keeps failing, logged once. */
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(submit(intake, n++, ticket, sizeof(ticket)), 0);
    storage = audit_storage(&world, &keep);
    assert_true(storage->failing);
    protobuf_c_message_free_unpacked(&keep->base, NULL);
    assert_int_equal(audit_history(&world, ticket), 0);
    assert_int_equal(log_count(&world, "audit", FAILING_LINE), 1);
    /* The operator's tool says so, under audit's name. */
    char out[16384];
    test_ctl_config(city_topology(world.city));
    assert_int_equal(test_ctl(out, sizeof(out), "links", "--worker", "audit", NULL), 0);
    assert_non_null(strstr(out, "audit: storage FAILING since "));
    assert_non_null(strstr(out, "failed (No space left on device)\n"));

    free_disk(&world);
    /* The senders resend: the last ticket is recorded; 2 s later audit
     * says its store works. */
    deadline = now_ms() + TEST_TIMEOUT_MS;
    for (;;) {
        assert_true(now_ms() < deadline);
        storage = audit_storage(&world, &keep);
        bool failing = storage->failing;
        protobuf_c_message_free_unpacked(&keep->base, NULL);
        if (!failing && audit_history(&world, ticket) > 0)
            break;
        poll(NULL, 0, 50);
    }
    storage = audit_storage(&world, &keep);
    assert_true(storage->failed_batches >= 1);
    assert_int_equal(storage->episode_failures, 0);
    protobuf_c_message_free_unpacked(&keep->base, NULL);
    assert_true(wait_log(&world, "audit", RECOVERED_LINE, 1));
    assert_int_equal(log_count(&world, "audit", FAILING_LINE), 1);
    assert_int_equal(test_ctl(out, sizeof(out), "links", "--worker", "audit", NULL), 0);
    assert_null(strstr(out, "FAILING"));
    assert_non_null(strstr(out, "audit: storage ok; "));
    assert_non_null(strstr(out, " failed since start, the latest: No space left on device\n"));
    test_ctl_config(NULL);
    client_destroy(&intake);
    world_close(&world);
}

/* ---- map size ------------------------------------------------------------ */

/* Starts worker with a map_size of 16 KiB (the whole map smaller than
 * what its databases take at start). */
static int start_small(world_t *world, const char *worker)
{
    char set[128];
    snprintf(set, sizeof(set), "worker.%s.map_size=16KiB", worker);
    const char *more[] = {"--set", set, NULL};
    fflush(stderr);
    int saved = dup(2);
    dup2(world->log_fd, 2);
    int rc = city_start_with(world->city, worker, more);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return rc;
}

static void test_small_map_grows(void **state)
{
    world_t world;
    world_open(&world, "storage-map", true);
    static const char *const workers[] = {"audit", "router-cy", "intake-1"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(start_small(&world, workers[i]), 0);
    client_t *intake = intake_client(&world);
    char ticket[64];
    for (unsigned n = 0; n < 300; n++)
        assert_int_equal(submit(intake, n, ticket, sizeof(ticket)), 0);
    assert_true(test_wait_state(intake, ticket, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED));
    client_destroy(&intake);
    /* Audit recorded them all: the last ticket's registration and dispatch. */
    int64_t deadline = now_ms() + TEST_TIMEOUT_MS;
    while (audit_history(&world, ticket) < 2) {
        assert_true(now_ms() < deadline);
        poll(NULL, 0, 20);
    }

    /* Every data file grew past the map it started with. */
    for (size_t i = 0; i < 3; i++) {
        char path[700];
        snprintf(path, sizeof(path), "%s/%s/data.mdb", city_dir(world.city), workers[i]);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size > 16 * 1024);
    }
    world_close(&world);
}

/* ---- corrupted data files ---------------------------------------------- */

/* Starts intake-1 by hand: it must exit by itself with a non-zero status,
 * not a signal, and say `what` in the log (lines: how many the log has of
 * it then). */
static void expect_refused(world_t *world, const char *what, size_t lines)
{
    const char *program = harness_program("INTAKE_BIN", "dispatch-intake");
    const char *argv[] = {program,  "--config", city_topology(world->city),
                          "--name", "intake-1", NULL};
    fflush(stderr);
    int saved = dup(2);
    dup2(world->log_fd, 2);
    harness_proc_t *proc;
    int rc = harness_spawn(argv, false, &proc);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, 0);
    assert_int_equal(harness_wait_ready(proc, TEST_TIMEOUT_MS), -ECHILD);
    int status = 0;
    assert_int_equal(harness_wait_exit(proc, TEST_TIMEOUT_MS, &status), 0);
    harness_destroy(&proc);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
    assert_int_equal(log_count(world, "intake-1", what), lines);
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

static void test_corrupted_data_file(void **state)
{
    world_t world;
    world_open(&world, "storage-corrupt", false);
    assert_int_equal(start(&world, NULL), 0);
    client_t *intake = intake_client(&world);
    char ticket[64];
    for (unsigned n = 0; n < 200; n++)
        assert_int_equal(submit(intake, n, ticket, sizeof(ticket)), 0);
    client_destroy(&intake);
    assert_int_equal(city_stop(world.city, "intake-1", SIGTERM), 0);

    char data[700], good[700];
    snprintf(data, sizeof(data), "%s/intake-1/data.mdb", city_dir(world.city));
    snprintf(good, sizeof(good), "%s/data.mdb.good", city_dir(world.city));
    copy_file(data, good);
    struct stat st;
    assert_int_equal(stat(data, &st), 0);
    long page = sysconf(_SC_PAGESIZE);
    assert_true(st.st_size >= 8 * page);

    /* Truncated to half. */
    assert_int_equal(truncate(data, st.st_size / 2), 0);
    expect_refused(&world, "the data file (data.mdb) is truncated", 1);

    /* Every page past the two meta pages with its header's bytes flipped. */
    copy_file(good, data);
    int fd = open(data, O_RDWR);
    assert_true(fd >= 0);
    for (off_t at = 2 * page; at + 16 <= st.st_size; at += page) {
        unsigned char bytes[16];
        assert_int_equal(pread(fd, bytes, sizeof(bytes), at), (ssize_t)sizeof(bytes));
        for (size_t i = 0; i < sizeof(bytes); i++)
            bytes[i] ^= 0xff;
        assert_int_equal(pwrite(fd, bytes, sizeof(bytes), at), (ssize_t)sizeof(bytes));
    }
    close(fd);
    expect_refused(&world, "the data file (data.mdb) is corrupted", 1);

    /* Both meta pages flipped: not an LMDB file any more. */
    copy_file(good, data);
    fd = open(data, O_RDWR);
    for (off_t at = 0; at < 2 * page; at += page) {
        unsigned char bytes[64];
        assert_int_equal(pread(fd, bytes, sizeof(bytes), at), (ssize_t)sizeof(bytes));
        for (size_t i = 0; i < sizeof(bytes); i++)
            bytes[i] ^= 0x5a;
        assert_int_equal(pwrite(fd, bytes, sizeof(bytes), at), (ssize_t)sizeof(bytes));
    }
    close(fd);
    expect_refused(&world, "the data file (data.mdb) is corrupted", 2);

    /* The good copy back: it starts and has its tickets. */
    copy_file(good, data);
    assert_int_equal(start(&world, "intake-1"), 0);
    intake = intake_client(&world);
    Dispatch__Reply *keep = NULL;
    assert_non_null(test_get(intake, ticket, &keep));
    protobuf_c_message_free_unpacked(&keep->base, NULL);
    client_destroy(&intake);
    world_close(&world);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk_intake),    cmocka_unit_test(test_full_disk_router),
        cmocka_unit_test(test_full_disk_audit),     cmocka_unit_test(test_small_map_grows),
        cmocka_unit_test(test_corrupted_data_file),
    };
    /* The tmpfs mounts live in a mount namespace of this test and its
     * workers: they vanish with them, even when a test fails midway. */
    if (unshare(CLONE_NEWNS) == 0)
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    /* STORAGE_TEST=test_full_disk_router runs that one alone. */
    const char *only = getenv("STORAGE_TEST");
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

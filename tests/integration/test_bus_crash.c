/* The bus under SIGKILL: a sender pushes --count messages through its outbox
 * to a receiver that applies each to LMDB. At random moments the test kills
 * the sender, the receiver or both with SIGKILL (at least --kills each) and
 * restarts them. At the end the receiver must have applied every message
 * exactly once and in order: 0 lost, 0 duplicated, 0 out of order.
 *
 * The link runs under CURVE, as between workers (each end with its own
 * worker key); --plain runs it without.
 *
 *   test-bus-crash [--runs N] [--count N] [--kills N] [--seed N] [--plain]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "auth.h"
#include "buspeer.h"
#include "harness.h"

#define STALL_MS 60000

typedef struct run {
    const char *program;
    char dir[512], sender_state[600], receiver_state[600], keys[600];
    bool curve;
    char endpoint[256];
    uint64_t count;
    harness_proc_t *sender, *receiver;
    uint64_t applied;
    bool sender_done;
} run_t;

static int fail(const char *what)
{
    fprintf(stderr, "FAIL: %s\n", what);
    return -1;
}

/* Ends argv (n arguments so far) with --keys under CURVE, and NULL. */
static void with_keys(const run_t *run, const char **argv, size_t n)
{
    if (run->curve) {
        argv[n++] = "--keys";
        argv[n++] = run->keys;
    }
    argv[n] = NULL;
}

static int start_receiver(run_t *run)
{
    const char *argv[12] = {run->program, "receive",  "--state", run->receiver_state,
                            "--id",       "receiver", "--bind",  run->endpoint};
    with_keys(run, argv, 8);
    int rc = harness_spawn(argv, true, &run->receiver);
    if (rc == 0)
        rc = harness_wait_ready(run->receiver, 30000);
    if (rc < 0)
        return fail("receiver did not become ready");
    /* The first start binds a free port; restarts bind the same one. */
    snprintf(run->endpoint, sizeof(run->endpoint), "%s", harness_endpoint(run->receiver, "bus"));
    return 0;
}

static int start_sender(run_t *run)
{
    char count[32];
    snprintf(count, sizeof(count), "%llu", (unsigned long long)run->count);
    const char *argv[18] = {
        run->program, "send",      "--state",     run->sender_state, "--id", "sender",  "--peer",
        "receiver",   "--connect", run->endpoint, "--count",         count,  "--batch", "500"};
    with_keys(run, argv, 14);
    int rc = harness_spawn(argv, true, &run->sender);
    if (rc == 0)
        rc = harness_wait_ready(run->sender, 30000);
    return rc < 0 ? fail("sender did not become ready") : 0;
}

/* Reads progress; returns -1 on a stall. */
static int follow(run_t *run, int wait_ms)
{
    char line[128];
    int rc = harness_progress_line(run->receiver, line, sizeof(line), wait_ms);
    unsigned long long value;
    if (rc == 1 && sscanf(line, "applied %llu", &value) == 1)
        run->applied = value;
    if (!run->sender_done && harness_progress_line(run->sender, line, sizeof(line), 0) == 1 &&
        strncmp(line, "done ", 5) == 0)
        run->sender_done = true;
    return 0;
}

static int verify(run_t *run)
{
    buspeer_applied_t a;
    int rc = buspeer_applied(run->receiver_state, &a);
    printf("  applied %llu of %llu, last %llu, duplicates %llu, out of order %llu, holes %llu\n",
           (unsigned long long)a.count, (unsigned long long)run->count,
           (unsigned long long)a.last_meta, (unsigned long long)a.dups,
           (unsigned long long)a.disorder, (unsigned long long)a.holes);
    if (rc < 0)
        return fail("cannot read the receiver's store");
    if (a.count != run->count || a.first != 1 || a.last_meta != run->count || a.holes != 0)
        return fail("messages lost");
    if (a.dups != 0)
        return fail("messages applied twice");
    if (a.disorder != 0)
        return fail("messages applied out of order");
    return 0;
}

/* A worker key for each end in run->keys. */
static int make_keys(run_t *run)
{
    snprintf(run->keys, sizeof(run->keys), "%s/keys", run->dir);
    const char *ids[] = {"sender", "receiver"};
    for (size_t i = 0; i < 2; i++) {
        auth_actor_t actor = {.kind = AUTH_KIND_WORKER};
        snprintf(actor.name, sizeof(actor.name), "%s", ids[i]);
        snprintf(actor.worker, sizeof(actor.worker), "%s", ids[i]);
        if (auth_key_new(run->keys, &actor) < 0)
            return fail("keys");
    }
    return 0;
}

static int one_run(const char *program, uint64_t count, int kills, unsigned seed, int number,
                   bool curve)
{
    srand(seed);
    run_t run = {.program = program, .count = count, .curve = curve};
    /* The receiver restarts on this port: one no client can take over. */
    if (harness_tcp_endpoint(run.endpoint, sizeof(run.endpoint)) < 0)
        return fail("no free port");
    if (harness_tmpdir("bus-crash", run.dir, sizeof(run.dir)) < 0)
        return fail("tmpdir");
    snprintf(run.sender_state, sizeof(run.sender_state), "%s/sender", run.dir);
    snprintf(run.receiver_state, sizeof(run.receiver_state), "%s/receiver", run.dir);
    if (curve && make_keys(&run) < 0)
        return -1;

    /* Kill points: receiver progress thresholds spread over the run, each
     * naming a victim: 0 receiver, 1 sender, 2 both. */
    int points = 2 * kills + kills / 4;
    uint64_t *at = calloc((size_t)points, sizeof(*at));
    int *victim = calloc((size_t)points, sizeof(*victim));
    for (int i = 0; i < points; i++) {
        at[i] = count / 50 + (uint64_t)rand() % (count * 9 / 10);
        victim[i] = i < kills ? 0 : i < 2 * kills ? 1 : 2;
    }
    for (int i = points - 1; i > 0; i--) { /* shuffle victims, sort points */
        int j = rand() % (i + 1), t = victim[i];
        victim[i] = victim[j];
        victim[j] = t;
    }
    for (int i = 1; i < points; i++)
        for (int j = i; j > 0 && at[j - 1] > at[j]; j--) {
            uint64_t t = at[j];
            at[j] = at[j - 1];
            at[j - 1] = t;
        }

    int rc = start_receiver(&run);
    if (rc == 0)
        rc = start_sender(&run);
    int next = 0, receiver_kills = 0, sender_kills = 0;
    uint64_t last_applied = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t stalled_ms = 0;
    while (rc == 0 && (run.applied < count || !run.sender_done)) {
        follow(&run, rand() % 4);
        if (run.applied == last_applied && !run.sender_done) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
            if (stalled_ms == 0)
                stalled_ms = ms;
            else if (ms - stalled_ms > STALL_MS)
                rc = fail("no progress for 60 s");
        } else {
            stalled_ms = 0;
            last_applied = run.applied;
        }
        if (next < points && run.applied >= at[next]) {
            if (victim[next] != 1) {
                harness_kill(run.receiver, SIGKILL);
                harness_destroy(&run.receiver);
                receiver_kills++;
            }
            if (victim[next] != 0) {
                harness_kill(run.sender, SIGKILL);
                harness_destroy(&run.sender);
                sender_kills++;
            }
            if (!run.receiver && (rc = start_receiver(&run)) < 0)
                break;
            if (!run.sender && (rc = start_sender(&run)) < 0)
                break;
            next++;
        }
    }
    int status = -1;
    if (rc == 0 && (harness_wait_exit(run.sender, 30000, &status) < 0 || !WIFEXITED(status) ||
                    WEXITSTATUS(status) != 0))
        rc = fail("sender did not finish cleanly");
    harness_destroy(&run.sender);
    if (run.receiver)
        harness_kill(run.receiver, SIGKILL);
    harness_destroy(&run.receiver);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("run %d (seed %u): %d receiver kills, %d sender kills, %.1f s\n", number, seed,
           receiver_kills, sender_kills,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (rc == 0 && (receiver_kills < kills || sender_kills < kills))
        rc = fail("fewer kills than asked");
    if (rc == 0)
        rc = verify(&run);
    if (rc == 0)
        harness_rmtree(run.dir);
    else
        fprintf(stderr, "state kept in %s\n", run.dir);
    free(at);
    free(victim);
    return rc;
}

int main(int argc, char **argv)
{
    int runs = 1, kills = 20;
    bool curve = true;
    uint64_t count = 200000;
    unsigned seed = (unsigned)time(NULL);
    static const struct option options[] = {
        {"runs", required_argument, NULL, 'r'},  {"count", required_argument, NULL, 'c'},
        {"kills", required_argument, NULL, 'k'}, {"seed", required_argument, NULL, 's'},
        {"plain", no_argument, NULL, 'p'},       {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'r':
            runs = atoi(optarg);
            break;
        case 'c':
            count = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            kills = atoi(optarg);
            break;
        case 's':
            seed = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            curve = false;
            break;
        default:
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    const char *program = harness_program("BUS_PEER", "tools/bus-peer");
    int passed = 0;
    for (int i = 1; i <= runs; i++)
        if (one_run(program, count, kills, seed + (unsigned)i, i, curve) == 0)
            passed++;
    printf("%d of %d runs passed (%s)\n", passed, runs, curve ? "CURVE" : "plain");
    return passed == runs ? 0 : 1;
}

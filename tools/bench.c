/* dispatch-bench: benchmarks that report figures (not tests).
 *
 *   dispatch-bench bus [--count N] [--single-count N] [--size BYTES] [--rounds N]
 *
 * bus: one link between two real processes (tools/bus-peer) over loopback
 * TCP, every commit fsynced (LMDB's default, durable mode). It runs the
 * same stream with group commit (the sender writes 1,000 messages per
 * transaction, the receiver applies all it has drained in one transaction)
 * under CURVE (each end with its worker key, as the workers run) and plain,
 * interleaved for --rounds rounds (default 3; the median is compared), then
 * once with one commit per message on both sides. It prints durable
 * messages/s and fsyncs (commits) per message for each, and the ratios.
 *
 * The workers' own benchmarks live beside them: dispatch-bench-replay
 * (workers/audit) and dispatch-bench-timers (workers/escalation).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "harness.h"

typedef struct bus_result {
    unsigned long long messages, ms, sender_commits, receiver_commits;
} bus_result_t;

/* A worker key for each end of the link in <dir>/keys (path into keys). */
static int make_keys(const char *dir, char *keys, size_t len)
{
    snprintf(keys, len, "%s/keys", dir);
    const char *ids[] = {"sender", "receiver"};
    for (size_t i = 0; i < 2; i++) {
        auth_actor_t actor = {.kind = AUTH_KIND_WORKER};
        snprintf(actor.name, sizeof(actor.name), "%s", ids[i]);
        snprintf(actor.worker, sizeof(actor.worker), "%s", ids[i]);
        int rc = auth_key_new(keys, &actor);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int bus_run(const char *program, unsigned long long count, unsigned size, bool per_message,
                   bool curve, bus_result_t *result)
{
    char dir[512], sender_state[600], receiver_state[600], count_arg[32], size_arg[32];
    char keys[600] = "";
    if (harness_tmpdir("bench-bus", dir, sizeof(dir)) < 0)
        return -1;
    if (curve && make_keys(dir, keys, sizeof(keys)) < 0)
        return -1;
    snprintf(sender_state, sizeof(sender_state), "%s/sender", dir);
    snprintf(receiver_state, sizeof(receiver_state), "%s/receiver", dir);
    snprintf(count_arg, sizeof(count_arg), "%llu", count);
    snprintf(size_arg, sizeof(size_arg), "%u", size);
    const char *batch = per_message ? "1" : "1000";
    const char *receiver_argv[] = {program,
                                   "receive",
                                   "--state",
                                   receiver_state,
                                   "--id",
                                   "receiver",
                                   "--max-batch",
                                   per_message ? "1" : "8192",
                                   curve ? "--keys" : NULL,
                                   keys,
                                   NULL};
    harness_proc_t *receiver = NULL, *sender = NULL;
    int rc = harness_spawn(receiver_argv, true, &receiver);
    if (rc == 0)
        rc = harness_wait_ready(receiver, 30000);
    if (rc == 0) {
        const char *sender_argv[] = {program,
                                     "send",
                                     "--state",
                                     sender_state,
                                     "--id",
                                     "sender",
                                     "--peer",
                                     "receiver",
                                     "--connect",
                                     harness_endpoint(receiver, "bus"),
                                     "--count",
                                     count_arg,
                                     "--batch",
                                     batch,
                                     "--size",
                                     size_arg,
                                     curve ? "--keys" : NULL,
                                     keys,
                                     NULL};
        rc = harness_spawn(sender_argv, true, &sender);
    }
    if (rc == 0)
        rc = harness_wait_ready(sender, 30000);

    char line[256];
    *result = (bus_result_t){0};
    unsigned long long applied = 0, commits = 0;
    while (rc == 0 && applied < count) {
        if (harness_progress_line(receiver, line, sizeof(line), 600000) <= 0)
            rc = -ETIMEDOUT;
        else if (sscanf(line, "applied %llu commits %llu", &applied, &commits) == 2)
            result->receiver_commits = commits;
    }
    while (rc == 0 && result->messages == 0) {
        if (harness_progress_line(sender, line, sizeof(line), 30000) <= 0)
            rc = -ETIMEDOUT;
        else
            sscanf(line, "done %llu %llu %llu", &result->messages, &result->ms,
                   &result->sender_commits);
    }
    harness_destroy(&sender);
    harness_destroy(&receiver);
    harness_rmtree(dir);
    return rc;
}

static void print_bus(const char *mode, const bus_result_t *r)
{
    double seconds = (double)r->ms / 1000.0;
    printf("%-24s %10llu %9.2f %12.0f %14.4f %16.4f\n", mode, r->messages, seconds,
           seconds > 0 ? (double)r->messages / seconds : 0.0,
           (double)r->sender_commits / (double)r->messages,
           (double)r->receiver_commits / (double)r->messages);
}

static double rate(const bus_result_t *r)
{
    return r->ms ? (double)r->messages * 1000.0 / (double)r->ms : 0.0;
}

static int by_rate(const void *a, const void *b)
{
    double x = rate(a), y = rate(b);
    return (x > y) - (x < y);
}

static int bench_bus(int argc, char **argv)
{
    enum { MAX_ROUNDS = 9 };
    unsigned long long count = 500000, single_count = 5000;
    unsigned size = 64;
    int rounds = 3;
    static const struct option options[] = {
        {"count", required_argument, NULL, 'c'},
        {"single-count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"rounds", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            count = strtoull(optarg, NULL, 10);
            break;
        case 'n':
            single_count = strtoull(optarg, NULL, 10);
            break;
        case 's':
            size = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rounds = atoi(optarg);
            if (rounds < 1 || rounds > MAX_ROUNDS)
                return 2;
            break;
        default:
            return 2;
        }
    }
    const char *program = harness_program("BUS_PEER", "tools/bus-peer");
    bus_result_t curve[MAX_ROUNDS], plain[MAX_ROUNDS], single;
    for (int i = 0; i < rounds; i++) {
        if (bus_run(program, count, size, false, true, &curve[i]) < 0 ||
            bus_run(program, count, size, false, false, &plain[i]) < 0) {
            fprintf(stderr, "bench bus: a run failed\n");
            return 1;
        }
    }
    if (bus_run(program, single_count, size, true, true, &single) < 0) {
        fprintf(stderr, "bench bus: a run failed\n");
        return 1;
    }
    printf("bus: one link, %u-byte messages, loopback TCP, every commit fsynced, window 4096\n",
           size);
    printf("%-24s %10s %9s %12s %14s %16s\n", "mode", "messages", "seconds", "msgs/s",
           "fsyncs/msg out", "fsyncs/msg in");
    for (int i = 0; i < rounds; i++) {
        char mode[32];
        snprintf(mode, sizeof(mode), "group, CURVE (%d)", i + 1);
        print_bus(mode, &curve[i]);
        snprintf(mode, sizeof(mode), "group, plain (%d)", i + 1);
        print_bus(mode, &plain[i]);
    }
    print_bus("per message, CURVE", &single);
    qsort(curve, (size_t)rounds, sizeof(curve[0]), by_rate);
    qsort(plain, (size_t)rounds, sizeof(plain[0]), by_rate);
    const bus_result_t *curve_median = &curve[rounds / 2], *plain_median = &plain[rounds / 2];
    printf("median of %d rounds: CURVE %.0f msgs/s, plain %.0f msgs/s: CURVE / plain = %.2f\n",
           rounds, rate(curve_median), rate(plain_median), rate(curve_median) / rate(plain_median));
    printf("group commit / commit per message (CURVE): %.0fx\n",
           rate(curve_median) / rate(&single));
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "bus") == 0)
        return bench_bus(argc - 1, argv + 1);
    fprintf(stderr, "usage: dispatch-bench bus [--count N] [--single-count N] [--size BYTES] "
                    "[--rounds N]\n");
    return 2;
}

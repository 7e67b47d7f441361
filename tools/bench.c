/* dispatch-bench: benchmarks that report figures (not tests).
 *
 *   dispatch-bench bus [--count N] [--single-count N] [--size BYTES]
 *
 * bus: one link between two real processes (tools/bus-peer) over loopback
 * TCP, every commit fsynced (LMDB's default, durable mode). It runs the
 * same stream twice in one go: with group commit (the sender writes 1,000
 * messages per transaction, the receiver applies all it has drained in one
 * transaction) and with one commit per message on both sides. It prints
 * durable messages/s and fsyncs (commits) per message for each.
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

#include "harness.h"

typedef struct bus_result {
    unsigned long long messages, ms, sender_commits, receiver_commits;
} bus_result_t;

static int bus_run(const char *program, unsigned long long count, unsigned size, bool per_message,
                   bus_result_t *result)
{
    char dir[512], sender_state[600], receiver_state[600], count_arg[32], size_arg[32];
    if (harness_tmpdir("bench-bus", dir, sizeof(dir)) < 0)
        return -1;
    snprintf(sender_state, sizeof(sender_state), "%s/sender", dir);
    snprintf(receiver_state, sizeof(receiver_state), "%s/receiver", dir);
    snprintf(count_arg, sizeof(count_arg), "%llu", count);
    snprintf(size_arg, sizeof(size_arg), "%u", size);
    const char *batch = per_message ? "1" : "1000";
    const char *receiver_argv[] = {program, "receive",  "--state",     receiver_state,
                                   "--id",  "receiver", "--max-batch", per_message ? "1" : "8192",
                                   NULL};
    harness_proc_t *receiver = NULL, *sender = NULL;
    int rc = harness_spawn(receiver_argv, true, &receiver);
    if (rc == 0)
        rc = harness_wait_ready(receiver, 30000);
    if (rc == 0) {
        const char *sender_argv[] = {
            program,   "send",    "--state",  sender_state, "--id",
            "sender",  "--peer",  "receiver", "--connect",  harness_endpoint(receiver, "bus"),
            "--count", count_arg, "--batch",  batch,        "--size",
            size_arg,  NULL};
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
    printf("%-20s %10llu %9.2f %12.0f %14.4f %16.4f\n", mode, r->messages, seconds,
           seconds > 0 ? (double)r->messages / seconds : 0.0,
           (double)r->sender_commits / (double)r->messages,
           (double)r->receiver_commits / (double)r->messages);
}

static int bench_bus(int argc, char **argv)
{
    unsigned long long count = 500000, single_count = 5000;
    unsigned size = 64;
    static const struct option options[] = {
        {"count", required_argument, NULL, 'c'},
        {"single-count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
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
        default:
            return 2;
        }
    }
    const char *program = harness_program("BUS_PEER", "tools/bus-peer");
    bus_result_t group, single;
    if (bus_run(program, count, size, false, &group) < 0 ||
        bus_run(program, single_count, size, true, &single) < 0) {
        fprintf(stderr, "bench bus: a run failed\n");
        return 1;
    }
    printf("bus: one link, %u-byte messages, loopback TCP, every commit fsynced, window 4096\n",
           size);
    printf("%-20s %10s %9s %12s %14s %16s\n", "mode", "messages", "seconds", "msgs/s",
           "fsyncs/msg out", "fsyncs/msg in");
    print_bus("group commit", &group);
    print_bus("commit per message", &single);
    double ratio =
        ((double)group.messages / (double)group.ms) / ((double)single.messages / (double)single.ms);
    printf("group commit / commit per message: %.0fx\n", ratio);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "bus") == 0)
        return bench_bus(argc - 1, argv + 1);
    fprintf(stderr, "usage: dispatch-bench bus [--count N] [--single-count N] [--size BYTES]\n");
    return 2;
}

/* dispatch-bench-replay: the audit's replay endpoint, read back by a client
 * (a benchmark that reports figures, not a test).
 *
 *   dispatch-bench-replay [--count N]
 *
 * An audit log of N records (ticket registrations of about 400 bytes,
 * written in-process through the audit's own handler, not fsynced), served
 * by a real dispatch-audit process ($AUDIT_BIN); a client on loopback TCP
 * reads it all back from seq 1, first with bare ReplayRequests (1,000
 * records or 60 KiB per reply), then as a catching-up subscriber
 * (common/follower.h). It prints records/s for each: every record is read
 * from LMDB, decoded, masked, packed, sent and decoded again.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "audit.h"
#include "client.h"
#include "follower.h"
#include "harness.h"
#include "store.h"

typedef struct replay_fill {
    audit_t *audit;
    uint64_t from, to;
} replay_fill_t;

static int replay_fill_batch(MDB_txn *txn, void *ctx)
{
    replay_fill_t *fill = ctx;
    for (uint64_t n = fill->from; n <= fill->to; n++) {
        char event_id[64], ticket_id[64], phone[32];
        snprintf(event_id, sizeof(event_id), "bench-%llu", (unsigned long long)n);
        snprintf(ticket_id, sizeof(ticket_id), "B1-20261125-%06llu", (unsigned long long)n);
        snprintf(phone, sizeof(phone), "138%08llu", (unsigned long long)(n % 100000000));
        Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
        ticket.id = ticket_id;
        ticket.district = "chaoyang";
        ticket.category = "noise";
        ticket.kind = DISPATCH__KIND__KIND_COMPLAINT;
        ticket.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
        ticket.caller_name = "Wang Fang";
        ticket.caller_phone = phone;
        ticket.description = "Construction noise after 22:00 every night this week at the site "
                             "on the north side of the street; the caller asks for the work to "
                             "stop at night and for the site to be inspected.";
        ticket.registered_at = 1795568400000LL + (int64_t)n;
        Dispatch__TicketRegistered body = DISPATCH__TICKET_REGISTERED__INIT;
        body.ticket = &ticket;
        Dispatch__Event event = DISPATCH__EVENT__INIT;
        event.event_id = event_id;
        event.ticket_id = ticket_id;
        event.district = "chaoyang";
        event.at = ticket.registered_at;
        event.actor = "bench";
        event.origin = "bench";
        event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
        event.ticket_registered = &body;
        unsigned char buf[1024];
        size_t len = dispatch__event__pack(&event, buf);
        int rc = audit_handle_event(fill->audit, txn, buf, len, event.at, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int replay_fill_log(const char *dir, uint64_t count)
{
    store_t *store;
    store_options_t options = {.no_sync = 1}; /* filling is not what is measured */
    int rc = store_open(dir, &options, &store);
    if (rc < 0)
        return rc;
    audit_options_t audit_options;
    audit_options_init(&audit_options);
    audit_options.timezone = "Asia/Shanghai";
    audit_t *audit;
    rc = audit_new(store, &audit_options, &audit);
    for (uint64_t from = 1; rc == 0 && from <= count; from += 10000) {
        replay_fill_t fill = {audit, from, from + 9999 < count ? from + 9999 : count};
        rc = store_write(store, replay_fill_batch, &fill);
    }
    audit_destroy(&audit);
    store_destroy(&store);
    return rc;
}

static double elapsed_s(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int bench_replay(int argc, char **argv)
{
    unsigned long long count = 200000;
    static const struct option options[] = {
        {"count", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt != 'c') {
            fprintf(stderr, "usage: dispatch-bench-replay [--count N]\n");
            return 2;
        }
        count = strtoull(optarg, NULL, 10);
    }
    char dir[512], state[600], topology[600];
    if (count == 0 || harness_tmpdir("bench-replay", dir, sizeof(dir)) < 0)
        return 1;
    snprintf(state, sizeof(state), "%s/audit", dir);
    snprintf(topology, sizeof(topology), "%s/topology.ini", dir);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = replay_fill_log(state, count);
    double fill_s = elapsed_s(&t0);
    FILE *f = rc == 0 ? fopen(topology, "w") : NULL;
    if (f) {
        fprintf(f,
                "[city]\nname = bench\ntimezone = Asia/Shanghai\nsecurity = plain\n\n"
                "[district.chaoyang]\n\n"
                "[worker.audit]\nkind = audit\nstate_dir = %s\nbus = ipc://%s/audit.bus\n"
                "request = tcp://127.0.0.1:*\npublish = tcp://127.0.0.1:*\nmap_size = 4GiB\n",
                state, dir);
        fclose(f);
    }
    const char *program = harness_program("AUDIT_BIN", "workers/audit/dispatch-audit");
    const char *audit_argv[] = {program, "--config", topology, "--name", "audit", NULL};
    harness_proc_t *audit = NULL;
    if (rc == 0 && f)
        rc = harness_spawn(audit_argv, false, &audit);
    if (rc == 0)
        rc = harness_wait_ready(audit, 60000);
    void *zmq = zmq_ctx_new();
    client_t *client = NULL;
    if (rc == 0)
        rc = client_new(zmq, harness_endpoint(audit, "request"), 30000, NULL, &client);

    /* Bare ReplayRequests, one after the other. */
    unsigned long long records = 0, replies = 0;
    uint64_t next = 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (rc == 0 && next <= count) {
        Dispatch__ReplayRequest request = DISPATCH__REPLAY_REQUEST__INIT;
        request.from_seq = next;
        request.limit = 1000;
        ProtobufCMessage *msg = NULL;
        rc = client_call(client, &request.base, &dispatch__replay_reply__descriptor, &msg);
        if (rc < 0)
            break;
        Dispatch__ReplayReply *reply = (Dispatch__ReplayReply *)msg;
        if (reply->n_records == 0 || reply->records[0]->seq != next)
            rc = -EPROTO;
        else
            next = reply->records[reply->n_records - 1]->seq + 1;
        records += reply->n_records;
        replies++;
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    double replay_s = elapsed_s(&t0);

    /* A subscriber catching up from seq 1. */
    follower_t *follower = NULL;
    follower_options_t follow = {.from_seq = 1};
    unsigned long long followed = 0;
    if (rc == 0)
        rc = follower_new(zmq, harness_endpoint(audit, "publish"),
                          harness_endpoint(audit, "request"), &follow, &follower);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (rc == 0 && followed < count) {
        const Dispatch__AuditRecord *record;
        rc = follower_next(follower, 10000, &record);
        if (rc == 0 && record->seq != followed + 1)
            rc = -EPROTO;
        followed += rc == 0;
    }
    double follow_s = elapsed_s(&t0);
    follower_destroy(&follower);
    client_destroy(&client);
    zmq_ctx_term(zmq);
    if (audit)
        harness_stop(audit, 15000);
    harness_destroy(&audit);
    harness_rmtree(dir);
    if (rc < 0) {
        fprintf(stderr, "bench replay: failed: %s\n", strerror(-rc));
        return 1;
    }
    printf("replay: %llu records (%.1f s to write them), one dispatch-audit on loopback TCP,\n"
           "every record read from LMDB, decoded, masked and packed\n",
           count, fill_s);
    printf("%-24s %10s %9s %12s\n", "reader", "records", "seconds", "records/s");
    printf("%-24s %10llu %9.2f %12.0f   (%llu replies)\n", "ReplayRequest loop", records, replay_s,
           (double)records / replay_s, replies);
    printf("%-24s %10llu %9.2f %12.0f\n", "catching-up subscriber", followed, follow_s,
           (double)followed / follow_s);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    return bench_replay(argc, argv);
}

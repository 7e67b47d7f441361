/* bus-peer: one end of a bus link, for crash tests and benchmarks.
 *
 *   bus-peer receive --state DIR --id ID [--bind EP] [--max-batch N]
 *   bus-peer send    --state DIR --id ID --peer ID --connect EP --count N
 *                    [--first N] [--batch N] [--size BYTES] [--window N]
 *   common: [--ready-fd N] [--progress-fd N] [--no-sync]
 *           [--accept-incarnation PEER]... [--dead-after MS] [--keys DIR]
 *
 * The sender generates messages first..first+count-1 (an 8-byte big-endian
 * counter, padded to --size; first defaults to 1) into its outbox, --batch
 * per transaction, with the generated count in the same transaction; it
 * exits 0 once every message is acknowledged, after the progress line
 * "done <count> <ms> <commits>".
 *
 * The receiver applies each message in its transaction: it records the
 * counter in "peer.applied" (a second application is counted in "dups"),
 * counts any counter that is not last + 1 after the first in "disorder",
 * and after each commit writes "applied <last> commits <n>" to the
 * progress fd. A test reads those figures back from the LMDB files.
 *
 * --keys DIR runs the link under CURVE as the workers do: DIR holds a
 * worker key (auth.h) for each end, named by its id, and the link is
 * accepted only with the sender's own key.
 *
 * --accept-incarnation PEER is the operator's decision of bus_accept(): the
 * incarnation PEER presents is accepted when the link or the sender
 * diverges. Bus events go to stderr and to the progress fd as
 * "bus <event> <peer> <reason>", e.g. "bus diverged sender
 * sender-incarnation".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "bus.h"
#include "loop.h"
#include "ready.h"
#include "store.h"

typedef struct peer {
    store_t *store;
    bus_t *bus;
    bus_link_t *link;
    MDB_dbi meta, applied;
    int progress_fd;
    /* sender */
    uint64_t count, first, batch, size, generated, generated_pending;
    int64_t started_ms;
    /* receiver */
    uint64_t last, last_pending;
    bool progress_owed;
} peer_t;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void progress(peer_t *peer, const char *line)
{
    if (peer->progress_fd >= 0)
        ready_write_line(peer->progress_fd, line);
}

/* --- receiver --- */

static int count_up(MDB_txn *txn, MDB_dbi dbi, const char *key)
{
    uint64_t value;
    int rc = store_get_u64(txn, dbi, key, strlen(key), 0, &value);
    return rc < 0 ? rc : store_put_u64(txn, dbi, key, strlen(key), value + 1);
}

static int receiver_apply(void *app, MDB_txn *txn, const char *sender, uint64_t seq,
                          const void *body, size_t len)
{
    peer_t *peer = app;
    if (len < 8)
        return BUS_REJECTED;
    uint64_t value = store_u64_decode(body), last;
    int rc = store_get_u64(txn, peer->meta, "last", 4, 0, &last);
    if (rc == 0 && last != 0 && value != last + 1)
        rc = count_up(txn, peer->meta, "disorder");
    if (rc < 0)
        return rc;
    MDB_val k = {8, (void *)body}, v = {0, ""};
    rc = mdb_put(txn, peer->applied, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        rc = count_up(txn, peer->meta, "dups");
    else
        rc = store_rc(rc);
    if (rc == 0)
        rc = store_put_u64(txn, peer->meta, "last", 4, value);
    if (rc == 0)
        peer->last_pending = value;
    return rc;
}

static void receiver_done(void *app, int rc)
{
    peer_t *peer = app;
    if (rc == 0 && peer->last_pending != peer->last) {
        peer->last = peer->last_pending;
        peer->progress_owed = true;
    }
    peer->last_pending = peer->last;
    /* The pipe is non-blocking: a line that did not fit is written later,
     * so the reader always gets the latest figure. */
    if (peer->progress_owed && peer->progress_fd >= 0) {
        char line[96];
        snprintf(line, sizeof(line), "applied %llu commits %llu", (unsigned long long)peer->last,
                 (unsigned long long)store_commits(peer->store));
        peer->progress_owed = ready_write_line(peer->progress_fd, line) == -EAGAIN;
    }
}

static int receiver_timeout(void *app, int64_t now_ms)
{
    peer_t *peer = app;
    return peer->progress_owed ? 10 : -1;
}

/* --- sender --- */

static bool sender_may_generate(peer_t *peer)
{
    if (peer->generated >= peer->count)
        return false;
    bus_link_stats_t stats;
    bus_link_stats(peer->link, &stats);
    /* Keep a bounded backlog so that generation and streaming interleave. */
    return stats.next - stats.acked <= 4 * peer->batch + 8192;
}

static bool sender_drain(void *app, int64_t now_ms)
{
    return sender_may_generate(app);
}

static int sender_apply(void *app, MDB_txn *txn)
{
    peer_t *peer = app;
    peer->generated_pending = peer->generated;
    if (!sender_may_generate(peer))
        return 0;
    unsigned char *body = calloc(1, peer->size);
    if (!body)
        return -ENOMEM;
    int rc = 0;
    for (uint64_t i = 0; i < peer->batch && peer->generated_pending < peer->count && rc == 0; i++) {
        store_u64_encode(peer->first + peer->generated_pending, body);
        rc = bus_send(peer->bus, txn, peer->link, body, peer->size);
        if (rc == 0)
            peer->generated_pending++;
    }
    free(body);
    if (rc == 0)
        rc = store_put_u64(txn, peer->meta, "generated", 9, peer->generated_pending);
    return rc;
}

static void sender_done(void *app, int rc)
{
    peer_t *peer = app;
    if (rc == 0)
        peer->generated = peer->generated_pending;
    peer->generated_pending = peer->generated;
}

static int sender_timeout(void *app, int64_t now_ms)
{
    return sender_may_generate(app) ? 0 : -1;
}

static void on_bus_event(void *app, const bus_event_t *event)
{
    char line[160];
    snprintf(line, sizeof(line), "bus %s %s %s", bus_event_word(event->kind),
             event->peer_id ? event->peer_id : "-", bus_reason_word(event->reason));
    fprintf(stderr, "bus-peer: %s\n", line);
    progress(app, line);
}

static int usage(void)
{
    fprintf(stderr, "usage: bus-peer receive|send --state DIR --id ID [options]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    bool sending = strcmp(argv[1], "send") == 0;
    if (!sending && strcmp(argv[1], "receive") != 0)
        return usage();

    const char *state = NULL, *id = NULL, *peer_id = NULL, *connect = NULL, *keys = NULL;
    const char *bind = "tcp://127.0.0.1:*";
    int ready_fd = -1;
    peer_t peer = {.progress_fd = -1, .first = 1, .batch = 1000, .size = 64};
    const char *accepts[8];
    size_t accept_count = 0;
    bus_options_t bus_options = {0};
    store_options_t store_options = {0};
    static const struct option options[] = {
        {"state", required_argument, NULL, 's'},
        {"id", required_argument, NULL, 'i'},
        {"peer", required_argument, NULL, 'p'},
        {"connect", required_argument, NULL, 'c'},
        {"bind", required_argument, NULL, 'b'},
        {"count", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'B'},
        {"size", required_argument, NULL, 'S'},
        {"window", required_argument, NULL, 'w'},
        {"max-batch", required_argument, NULL, 'm'},
        {"ready-fd", required_argument, NULL, 'r'},
        {"progress-fd", required_argument, NULL, 'P'},
        {"no-sync", no_argument, NULL, 'N'},
        {"first", required_argument, NULL, 'f'},
        {"accept-incarnation", required_argument, NULL, 'a'},
        {"dead-after", required_argument, NULL, 'd'},
        {"keys", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            state = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 'p':
            peer_id = optarg;
            break;
        case 'c':
            connect = optarg;
            break;
        case 'b':
            bind = optarg;
            break;
        case 'n':
            peer.count = strtoull(optarg, NULL, 10);
            break;
        case 'B':
            peer.batch = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            peer.size = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            bus_options.window = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'm':
            bus_options.max_batch = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            ready_fd = atoi(optarg);
            break;
        case 'P':
            peer.progress_fd = atoi(optarg);
            break;
        case 'N':
            store_options.no_sync = 1;
            break;
        case 'f':
            peer.first = strtoull(optarg, NULL, 10);
            break;
        case 'a':
            if (accept_count == sizeof(accepts) / sizeof(accepts[0]))
                return usage();
            accepts[accept_count++] = optarg;
            break;
        case 'd':
            bus_options.dead_after_ms = atoi(optarg);
            break;
        case 'k':
            keys = optarg;
            break;
        default:
            return usage();
        }
    }
    if (!state || !id || (sending && (!peer_id || !connect || peer.count == 0)) ||
        peer.batch == 0 || peer.size < 8)
        return usage();

    bus_options.on_event = on_bus_event;
    bus_options.event_ctx = &peer;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    void *context = zmq_ctx_new();
    auth_t *auth = NULL;
    int rc = keys ? auth_new(context, keys, id, &auth) : 0;
    if (rc < 0) {
        fprintf(stderr, "bus-peer: keys %s: %s\n", keys, strerror(-rc));
        return 1;
    }
    bus_options.auth = auth;
    rc = store_open(state, &store_options, &peer.store);
    if (rc == 0)
        rc = store_dbi(peer.store, "peer.meta", 0, &peer.meta);
    if (rc == 0)
        rc = store_dbi(peer.store, "peer.applied", 0, &peer.applied);
    if (rc == 0)
        rc = bus_new(context, peer.store, id, &bus_options, &peer.bus);
    if (rc < 0) {
        fprintf(stderr, "bus-peer: %s: %s\n", state, store_strerror(rc));
        return 1;
    }

    loop_app_t app = {.app = &peer};
    ready_endpoint_t endpoint = {"bus", NULL};
    if (sending) {
        rc = bus_link_open(peer.bus, peer_id, connect, &peer.link);
        MDB_txn *txn;
        if (rc == 0 && (rc = store_read_begin(peer.store, &txn)) == 0) {
            rc = store_get_u64(txn, peer.meta, "generated", 9, 0, &peer.generated);
            store_read_end(&txn);
        }
        peer.generated_pending = peer.generated;
        app.drain = sender_drain;
        app.apply = sender_apply;
        app.done = sender_done;
        app.timeout_ms = sender_timeout;
        endpoint = (ready_endpoint_t){"connect", connect};
    } else {
        rc = bus_listen(peer.bus, bind, receiver_apply, &peer);
        MDB_txn *txn;
        if (rc == 0 && (rc = store_read_begin(peer.store, &txn)) == 0) {
            rc = store_get_u64(txn, peer.meta, "last", 4, 0, &peer.last);
            store_read_end(&txn);
        }
        peer.last_pending = peer.last;
        app.done = receiver_done;
        app.timeout_ms = receiver_timeout;
        endpoint.url = bus_listen_endpoint(peer.bus);
    }
    for (size_t i = 0; rc == 0 && i < accept_count; i++)
        rc = bus_accept(peer.bus, accepts[i], true);
    if (rc < 0) {
        fprintf(stderr, "bus-peer: start: %s\n", store_strerror(rc));
        return 1;
    }
    if (peer.progress_fd >= 0)
        fcntl(peer.progress_fd, F_SETFL, fcntl(peer.progress_fd, F_GETFL) | O_NONBLOCK);
    ready_announce(ready_fd, &endpoint, 1);

    peer.started_ms = bus_now_ms();
    while (!stop) {
        rc = loop_once(peer.store, peer.bus, &app, -1);
        if (rc < 0) {
            fprintf(stderr, "bus-peer: loop: %s\n", store_strerror(rc));
            break;
        }
        if (sending && peer.generated == peer.count && bus_idle(peer.bus)) {
            char line[128];
            snprintf(line, sizeof(line), "done %llu %lld %llu", (unsigned long long)peer.count,
                     (long long)(bus_now_ms() - peer.started_ms),
                     (unsigned long long)store_commits(peer.store));
            progress(&peer, line);
            break;
        }
    }
    bus_destroy(&peer.bus);
    store_destroy(&peer.store);
    auth_destroy(&auth);
    zmq_ctx_term(context);
    return rc < 0 ? 1 : 0;
}

/* bench-flood: other units' action latency while one client floods a
 * router's unit endpoint with garbage (scripts/bench flood; figures, not a
 * pass/fail test).
 *
 * One district (intake-1, router-chaoyang, CURVE). The six city-wide units
 * get their tickets, then sign for them one at a time, round the units,
 * each action timed from send to its result: first --actions of them in
 * quiet, then as many while a second process, holding the same valid unit
 * gateway key, sends garbage to the unit endpoint as fast as it can (a
 * quarter of it badly framed, the rest [empty][random bytes]) and opens a
 * new connection whenever its own is gone. Prints p50, p99 and the
 * largest latency of both phases, what the flooder handed its sockets,
 * and the ratio of the p99s. The router's own account of the flood is in
 * its log (`cut the connection of units ...`).
 *
 *   bench-flood [--actions N] [--size BYTES] [--plain]
 *   bench-flood --flood URL [--keys DIR] --size BYTES   (the flooder itself)
 *
 * --plain: the city without CURVE (the flooder then costs the router no
 * decryption), to tell the cost of the flood's crypto from the rest.
 *   env: INTAKE_BIN ROUTER_BIN
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "citydata.h"
#include "dispatch_test.h"
#include "submitter.h"

#define UNITS 6

extern char **environ;

static const char *const categories[UNITS][2] = {
    {"traffic", "bureau-traffic"},
    {"water-supply", "water-company"},
    {"power-outage", "power-company"},
    {"heating", "heating-company"},
    {"gas", "gas-company"},
    {"telecom", "telecom-company"},
};

static volatile sig_atomic_t stop_flood;

static void on_term(int sig)
{
    (void)sig;
    stop_flood = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A connection of the flooder, with the unit gateway's key. */
static void *flood_connect(void *zmq, const char *url, const auth_client_t *keys)
{
    void *socket = zmq_socket(zmq, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(socket, ZMQ_ROUTING_ID, "flooder", 7);
    auth_client_apply(socket, keys);
    zmq_connect(socket, url);
    return socket;
}

/* The flooder: garbage as fast as the socket takes it, until SIGTERM;
 * then "sent N in MS, C connections" on stdout. A determined one: when
 * its connection is gone (nothing could be sent for 100 ms) it opens a
 * new one at once, as a hostile client would, instead of waiting for
 * ZeroMQ (which does not reconnect after a refused handshake). */
static int flood(const char *url, const char *keys_dir, size_t size)
{
    signal(SIGTERM, on_term);
    void *zmq = zmq_ctx_new();
    auth_client_t keys;
    if (keys_dir && auth_client_load(keys_dir, "units", "router-chaoyang", &keys) < 0) {
        fprintf(stderr, "flood: no unit gateway key in %s\n", keys_dir);
        return 1;
    }
    const auth_client_t *client = keys_dir ? &keys : NULL;
    void *socket = flood_connect(zmq, url, client);
    unsigned connections = 1;
    unsigned char *garbage = malloc(size);
    unsigned seed = 12345;
    for (size_t i = 0; i < size; i++)
        garbage[i] = (unsigned char)rand_r(&seed);
    uint64_t sent = 0;
    int64_t t0 = now_us();
    while (!stop_flood) {
        garbage[sent % size] ^= (unsigned char)sent;
        int rc;
        if (sent % 4 == 0) /* no empty delimiter: dropped while drained */
            rc = zmq_send(socket, garbage, size, ZMQ_DONTWAIT);
        else if ((rc = zmq_send(socket, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT)) >= 0)
            rc = zmq_send(socket, garbage, size, 0);
        if (rc >= 0) {
            sent++;
            continue;
        }
        if (errno != EAGAIN)
            break;
        zmq_pollitem_t item = {.socket = socket, .events = ZMQ_POLLOUT};
        if (zmq_poll(&item, 1, 100) == 0 && !stop_flood) {
            zmq_close(socket);
            socket = flood_connect(zmq, url, client);
            connections++;
        }
    }
    printf("sent %llu in %lld, %u connections\n", (unsigned long long)sent,
           (long long)((now_us() - t0) / 1000), connections);
    fflush(stdout);
    zmq_close(socket);
    zmq_ctx_term(zmq);
    free(garbage);
    return 0;
}

typedef struct bench {
    city_t *city;
    unit_pool_t *pool;
    char (*ticket)[64];
    int *category;
    size_t count;
    /* Tickets of each unit not signed for yet. */
    size_t *queue[UNITS], queued[UNITS], next[UNITS];
} bench_t;

static void on_reply(void *ctx, size_t index, const Dispatch__Reply *reply)
{
    bench_t *b = ctx;
    if (reply->body_case == DISPATCH__REPLY__BODY_SUBMIT)
        snprintf(b->ticket[index], 64, "%s", reply->submit->ticket_id);
}

static void on_delivery(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    (void)ctx;
    (void)unit;
    (void)d;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* n actions, round the units; latencies in us into lat. Returns how many
 * got their result. */
static size_t sign_round(bench_t *b, size_t n, int64_t *lat)
{
    size_t done = 0;
    for (size_t i = 0; done < n && i < n * 2; i++) {
        int u = (int)(i % UNITS);
        if (b->next[u] >= b->queued[u])
            continue;
        const char *ticket = b->ticket[b->queue[u][b->next[u]++]];
        char action_id[96];
        snprintf(action_id, sizeof(action_id), "sign-%s", ticket);
        Dispatch__SignFor sign = DISPATCH__SIGN_FOR__INIT;
        Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
        action.unit_id = "";
        action.ticket_id = (char *)ticket;
        action.action_id = action_id;
        action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
        action.sign_for = &sign;
        Dispatch__ActionResult *result = NULL;
        int64_t t0 = now_us();
        int rc =
            unit_session_act(unit_pool_session(b->pool, categories[u][1]), &action, 10000, &result);
        int64_t took = now_us() - t0;
        if (rc == 0 && !result->error)
            lat[done++] = took;
        else
            fprintf(stderr, "bench-flood: sign-for %s: %s\n", ticket,
                    rc < 0 ? strerror(-rc) : result->error->message);
        if (result)
            protobuf_c_message_free_unpacked(&result->base, NULL);
        /* Deliveries that came meanwhile are applied and acked. */
        unit_pool_poll(b->pool, 0, on_delivery, b);
    }
    return done;
}

static void report(const char *what, int64_t *lat, size_t n, double seconds)
{
    qsort(lat, n, sizeof(*lat), by_value);
    if (n == 0) {
        printf("flood: %s: no action got a result\n", what);
        return;
    }
    printf("flood: %-12s %zu actions in %.1f s: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, n,
           seconds, (double)lat[n / 2] / 1000.0, (double)lat[(n * 99) / 100] / 1000.0,
           (double)lat[n - 1] / 1000.0);
}

int main(int argc, char **argv)
{
    size_t actions = 600, size = 64;
    const char *flood_url = NULL, *keys_dir = NULL;
    bool plain = false;
    static const struct option options[] = {
        {"actions", required_argument, NULL, 'a'}, {"size", required_argument, NULL, 'z'},
        {"flood", required_argument, NULL, 'f'},   {"keys", required_argument, NULL, 'k'},
        {"plain", no_argument, NULL, 'p'},         {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'a':
            actions = strtoul(optarg, NULL, 10);
            break;
        case 'z':
            size = strtoul(optarg, NULL, 10);
            break;
        case 'f':
            flood_url = optarg;
            break;
        case 'k':
            keys_dir = optarg;
            break;
        case 'p':
            plain = true;
            break;
        default:
            return 2;
        }
    }
    if (size == 0)
        size = 1;
    if (flood_url)
        return flood(flood_url, keys_dir, size);
    signal(SIGPIPE, SIG_IGN);

    void *zmq = zmq_ctx_new();
    char *units = citydata_units_csv();
    char *rules = citydata_rules_csv(citydata_districts[0]);
    const char *const districts[] = {citydata_districts[0]};
    const char *const all_rules[] = {rules};
    static const char *const intake_args[] = {"--duplicate-window-minutes", "0", NULL};
    city_options_t city_options = {
        .districts = districts,
        .district_count = 1,
        .units_csv = units,
        .rules_csv = all_rules,
        .intake_args = intake_args,
        .plain = plain,
    };
    bench_t b = {.count = 2 * actions + 2 * UNITS};
    b.ticket = calloc(b.count, sizeof(*b.ticket));
    b.category = calloc(b.count, sizeof(*b.category));
    if (city_new("bench-flood", &city_options, &b.city) < 0 || city_start_all(b.city) < 0) {
        fprintf(stderr, "bench-flood: the city did not start\n");
        return 1;
    }
    const char *units_url = city_endpoint(b.city, "router-chaoyang", "units");
    unit_pool_new(zmq, b.city, UNITS, &b.pool);
    for (int u = 0; u < UNITS; u++)
        unit_pool_connect(b.pool, units_url, categories[u][1], 0);

    /* The tickets, the same number for each unit. */
    submitter_t *submitter;
    submitter_new(zmq, city_endpoint(b.city, "intake-1", "request"), 64,
                  test_keys(b.city, "agent-7", city_endpoint(b.city, "intake-1", "request")),
                  &submitter);
    for (int u = 0; u < UNITS; u++)
        b.queue[u] = calloc(b.count, sizeof(size_t));
    for (size_t i = 0; i < b.count; i++) {
        char request_id[32], phone[32];
        snprintf(request_id, sizeof(request_id), "flood-%zu", i);
        snprintf(phone, sizeof(phone), "135%08zu", i);
        b.category[i] = (int)(i % UNITS);
        b.queue[i % UNITS][b.queued[i % UNITS]++] = i;
        Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
        submit.client_request_id = request_id;
        submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
        submit.kind = DISPATCH__KIND__KIND_HELP;
        submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
        submit.district = (char *)citydata_districts[0];
        submit.category = (char *)categories[b.category[i]][0];
        submit.caller_phone = phone;
        submit.description = "flood bench";
        submitter_add(submitter, "agent-7", &submit);
    }
    if (submitter_run(submitter, 2000, 300000, on_reply, NULL, &b) < 0) {
        fprintf(stderr, "bench-flood: submissions unanswered\n");
        return 1;
    }
    submitter_destroy(&submitter);
    size_t got = 0;
    for (int64_t end = now_us() + 60000000; got < b.count && now_us() < end;)
        got += unit_pool_poll(b.pool, 100, on_delivery, &b);

    int64_t *quiet = calloc(actions, sizeof(int64_t)), *flooded = calloc(actions, sizeof(int64_t));
    int64_t t0 = now_us();
    size_t quiet_n = sign_round(&b, actions, quiet);
    double quiet_s = (double)(now_us() - t0) / 1e6;

    /* The flooder: this program again, in its own process. */
    char keys[1024], size_arg[32];
    city_keys_dir(b.city, keys, sizeof(keys));
    snprintf(size_arg, sizeof(size_arg), "%zu", size);
    int out[2];
    if (pipe(out) < 0)
        return 1;
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_adddup2(&files, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&files, out[0]);
    char *const flood_argv[] = {"bench-flood", "--flood", (char *)units_url,
                                "--size",      size_arg,  plain ? NULL : "--keys",
                                keys,          NULL};
    pid_t pid;
    if (posix_spawn(&pid, "/proc/self/exe", &files, NULL, flood_argv, environ) != 0) {
        fprintf(stderr, "bench-flood: cannot start the flooder\n");
        return 1;
    }
    close(out[1]);
    /* Let the flood build up: a second of it before the first action. */
    struct timespec second = {1, 0};
    nanosleep(&second, NULL);
    t0 = now_us();
    size_t flooded_n = sign_round(&b, actions, flooded);
    double flooded_s = (double)(now_us() - t0) / 1e6;
    kill(pid, SIGTERM);
    char line[128] = "";
    FILE *from = fdopen(out[0], "r");
    if (!fgets(line, sizeof(line), from))
        line[0] = '\0';
    fclose(from);
    waitpid(pid, NULL, 0);
    unsigned long long sent = 0;
    long long ms = 1;
    unsigned connections = 0;
    sscanf(line, "sent %llu in %lld, %u connections", &sent, &ms, &connections);

    printf("flood: %s city\n", plain ? "plain (no CURVE)" : "CURVE");
    printf("flood: one client handed %llu garbage messages of %zu bytes to its sockets in %.1f s "
           "(%.0f msg/s) "
           "to the unit endpoint, over %u connections\n",
           sent, size, (double)ms / 1000.0, ms ? (double)sent * 1000.0 / (double)ms : 0.0,
           connections);
    report("quiet:", quiet, quiet_n, quiet_s);
    report("under flood:", flooded, flooded_n, flooded_s);
    if (quiet_n && flooded_n)
        printf("flood: p99 under flood / quiet = %.2f\n",
               (double)flooded[(flooded_n * 99) / 100] / (double)quiet[(quiet_n * 99) / 100]);

    unit_pool_destroy(&b.pool);
    city_destroy(&b.city, false);
    zmq_ctx_term(zmq);
    free(units);
    free(rules);
    for (int u = 0; u < UNITS; u++)
        free(b.queue[u]);
    free(b.ticket);
    free(b.category);
    free(quiet);
    free(flooded);
    return 0;
}

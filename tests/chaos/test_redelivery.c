/* Redelivery after router restarts: a unit gets again only what was lost.
 *
 * One district (intake-1, router-chaoyang, CURVE) and its six city-wide
 * units. Tickets are submitted while the units lag behind (they read only
 * between replies, so each has a backlog of up to a window in flight), and
 * the router is SIGKILLed and started again, --kills times under that
 * load and while the units drain the rest. Each router start opens new
 * unit sessions and resends what was not acknowledged: the deliveries in
 * flight at the kill may come twice, as documented. What must not happen
 * is a resend breeding the next (a unit that drops a duplicate acks again
 * what it had acked; a router that rewinds on every ack that repeats the
 * one before sends its whole window again for each).
 *
 * Counted by the units themselves (common/unit_session: a delivery at or
 * below what the unit applied is a duplicate, one beyond the next a gap):
 * the run passes when every ticket reached its unit exactly once and the
 * units dropped at most --max-ratio deliveries (duplicates and gaps) per
 * real one. The units here lag behind by up to a window (they read
 * DRAIN_PER_UNIT at a time, as dispatch-unitsim does, and only every 100th
 * reply), so at each kill they hold deliveries the router pushed and they
 * have not read: a router that resends its window on a new session sends
 * each of them twice (0.6 to 0.9 duplicates per real delivery here); one
 * that probes first (deliveries.h) sends one per unit and restart. CI
 * runs it with --max-ratio 0.1.
 *
 *   test-redelivery [--tickets N] [--kills N] [--max-ratio X] [--seed N]
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "citydata.h"
#include "dispatch_test.h"
#include "submitter.h"

#define UNITS 6

static const char *const categories[UNITS][2] = {
    {"traffic", "bureau-traffic"},
    {"water-supply", "water-company"},
    {"power-outage", "power-company"},
    {"heating", "heating-company"},
    {"gas", "gas-company"},
    {"telecom", "telecom-company"},
};

/* What a unit applied (a delivery may come before its ticket's reply). */
typedef struct applied {
    char ticket[64];
    int unit;
} applied_t;

/* A submission: its ticket id, once acknowledged, and index. */
typedef struct submitted {
    char ticket[64];
    size_t index;
} submitted_t;

typedef struct run {
    city_t *city;
    unit_pool_t *pool;
    size_t count;
    submitted_t *ticket;
    int *category, *delivered;
    applied_t *applied;
    size_t fresh, strays, wrong_unit;
    size_t kill_at[32];
    int kills, next_kill;
    int kill_under_load;
} run_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int by_ticket(const void *a, const void *b)
{
    return strcmp(((const submitted_t *)a)->ticket, ((const submitted_t *)b)->ticket);
}

static void on_reply(void *ctx, size_t index, const Dispatch__Reply *reply)
{
    run_t *run = ctx;
    if (reply->body_case == DISPATCH__REPLY__BODY_SUBMIT)
        snprintf(run->ticket[index].ticket, 64, "%s", reply->submit->ticket_id);
}

static void on_delivery(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    run_t *run = ctx;
    if (d->body_case != DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED || run->fresh >= 2 * run->count) {
        run->strays++;
        return;
    }
    applied_t *a = &run->applied[run->fresh++];
    snprintf(a->ticket, sizeof(a->ticket), "%s", d->ticket_id);
    a->unit = 0;
    while (a->unit < UNITS - 1 && strcmp(categories[a->unit][1], unit) != 0)
        a->unit++;
}

/* The units read as a busy unit client does (dispatch-unitsim): at most
 * DRAIN_PER_UNIT deliveries of a unit at a time, then the ack of what it
 * applied, owed by whatever arrived, duplicates too; and the heartbeat
 * ack every second. Waits up to wait_ms for something to read. */
#define DRAIN_PER_UNIT 4

static void units_read(run_t *run, int wait_ms)
{
    zmq_pollitem_t items[UNITS];
    unit_session_t *sessions[UNITS];
    for (int u = 0; u < UNITS; u++) {
        sessions[u] = unit_pool_session(run->pool, categories[u][1]);
        items[u] =
            (zmq_pollitem_t){.socket = unit_session_socket(sessions[u]), .events = ZMQ_POLLIN};
    }
    zmq_poll(items, UNITS, wait_ms);
    for (int u = 0; u < UNITS; u++) {
        Dispatch__UnitDelivery *d;
        for (int n = 0; n < DRAIN_PER_UNIT && unit_session_next(sessions[u], 0, &d) == 0; n++) {
            if (d->seq)
                on_delivery(run, categories[u][1], d);
            protobuf_c_message_free_unpacked(&d->base, NULL);
        }
        unit_session_ack_due(sessions[u], -1);
        unit_session_ack_due(sessions[u], 1000);
    }
}

/* Matches what the units applied with the acknowledged tickets (sorted). */
static void match(run_t *run)
{
    for (size_t i = 0; i < run->fresh; i++) {
        submitted_t key;
        memcpy(key.ticket, run->applied[i].ticket, sizeof(key.ticket));
        submitted_t *t = bsearch(&key, run->ticket, run->count, sizeof(*run->ticket), by_ticket);
        if (!t) {
            run->strays++;
            continue;
        }
        run->delivered[t->index]++;
        if (run->applied[i].unit != run->category[t->index])
            run->wrong_unit++;
    }
}

/* SIGKILL and a new start at once (the units do not read meanwhile). */
static void kill_router(run_t *run)
{
    city_stop(run->city, "router-chaoyang", SIGKILL);
    if (city_start(run->city, "router-chaoyang") < 0) {
        fprintf(stderr, "FAIL: router-chaoyang did not start again\n");
        exit(1);
    }
    run->next_kill++;
}

/* The units read only now and then: every 100th reply, so they lag. */
static void on_progress(void *ctx, size_t answered)
{
    run_t *run = ctx;
    if (answered % 100 == 0)
        units_read(run, 0);
    if (run->next_kill < run->kill_under_load && answered >= run->kill_at[run->next_kill])
        kill_router(run);
}

int main(int argc, char **argv)
{
    size_t tickets = 6000;
    int kills = 6;
    double max_ratio = 1.2;
    unsigned seed = (unsigned)time(NULL);
    static const struct option options[] = {
        {"tickets", required_argument, NULL, 't'},
        {"kills", required_argument, NULL, 'k'},
        {"max-ratio", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 't':
            tickets = strtoul(optarg, NULL, 10);
            break;
        case 'k':
            kills = atoi(optarg);
            break;
        case 'm':
            max_ratio = atof(optarg);
            break;
        case 's':
            seed = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (kills > 32)
        kills = 32;
    if (kills < 2)
        kills = 2;
    srand(seed);
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
    };
    run_t run = {.count = tickets, .kills = kills};
    run.ticket = calloc(tickets, sizeof(*run.ticket));
    run.applied = calloc(2 * tickets, sizeof(*run.applied));
    run.category = calloc(tickets, sizeof(*run.category));
    run.delivered = calloc(tickets, sizeof(*run.delivered));
    if (city_new("redelivery", &city_options, &run.city) < 0 || city_start_all(run.city) < 0) {
        fprintf(stderr, "FAIL: the city did not start\n");
        return 1;
    }
    /* Half the kills while submitting, half while the units drain. */
    int under_load = kills / 2;
    run.kill_under_load = under_load;
    for (int k = 0; k < under_load; k++)
        run.kill_at[k] = tickets * (size_t)(k + 1) / (size_t)(under_load + 1);

    unit_pool_new(zmq, run.city, UNITS, &run.pool);
    for (int u = 0; u < UNITS; u++)
        unit_pool_connect(run.pool, city_endpoint(run.city, "router-chaoyang", "units"),
                          categories[u][1], 0);
    submitter_t *submitter;
    submitter_new(zmq, city_endpoint(run.city, "intake-1", "request"), 64,
                  test_keys(run.city, "agent-7", city_endpoint(run.city, "intake-1", "request")),
                  &submitter);
    for (size_t i = 0; i < tickets; i++) {
        char request_id[32], phone[32];
        snprintf(request_id, sizeof(request_id), "redelivery-%zu", i);
        snprintf(phone, sizeof(phone), "136%08zu", i);
        run.category[i] = rand() % UNITS;
        run.ticket[i].index = i;
        Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
        submit.client_request_id = request_id;
        submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
        submit.kind = DISPATCH__KIND__KIND_HELP;
        submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
        submit.district = (char *)citydata_districts[0];
        submit.category = (char *)categories[run.category[i]][0];
        submit.caller_phone = phone;
        submit.description = "redelivery run";
        submitter_add(submitter, "agent-7", &submit);
    }
    int rc = submitter_run(submitter, 2000, 600000, on_reply, on_progress, &run);
    submitter_destroy(&submitter);
    if (rc < 0) {
        fprintf(stderr, "FAIL: submissions unanswered\n");
        return 1;
    }

    /* Drain; the rest of the kills at even steps of what is left. */
    size_t left = tickets - run.fresh;
    int drain_kills = kills - run.next_kill;
    int64_t deadline = now_ms() + 300000;
    while (run.fresh < tickets && now_ms() < deadline) {
        units_read(&run, 20);
        int j = drain_kills - (kills - run.next_kill) + 1; /* the next drain kill, from 1 */
        if (j <= drain_kills &&
            run.fresh >= tickets - left + left * (size_t)j / (size_t)(drain_kills + 1))
            kill_router(&run);
    }
    units_read(&run, 500);        /* extras show up now */
    while (run.next_kill < kills) /* the drain was too quick */
        kill_router(&run);
    for (int64_t end = now_ms() + 1500; now_ms() < end;)
        units_read(&run, 100);

    size_t missing = 0, twice = 0, distinct = 0;
    qsort(run.ticket, tickets, sizeof(*run.ticket), by_ticket);
    for (size_t i = 0; i < tickets; i++)
        distinct += run.ticket[i].ticket[0] &&
                    (i == 0 || strcmp(run.ticket[i].ticket, run.ticket[i - 1].ticket) != 0);
    match(&run);
    for (size_t i = 0; i < tickets; i++) {
        missing += run.delivered[i] == 0;
        twice += run.delivered[i] > 1;
    }
    uint64_t duplicates = unit_pool_duplicates(run.pool), gaps = unit_pool_gaps(run.pool);
    double ratio = run.fresh ? (double)(duplicates + gaps) / (double)run.fresh : 0;
    printf("redelivery: %zu tickets (%zu distinct), %d router kills; units applied %zu: missing "
           "%zu, twice %zu, wrong unit %zu, strays %zu; resent %llu and gaps %llu dropped: %.3f "
           "duplicates per real delivery (at most %.2f), %.3f deliveries received per real one\n",
           tickets, distinct, run.next_kill, run.fresh, missing, twice, run.wrong_unit, run.strays,
           (unsigned long long)duplicates, (unsigned long long)gaps, ratio, max_ratio, 1.0 + ratio);
    bool ok = distinct == tickets && missing == 0 && twice == 0 && run.wrong_unit == 0 &&
              run.strays == 0 && ratio <= max_ratio;
    printf("redelivery: %s\n", ok ? "ok" : "FAIL");

    unit_pool_destroy(&run.pool);
    city_destroy(&run.city, !ok);
    zmq_ctx_term(zmq);
    free(units);
    free(rules);
    free(run.ticket);
    free(run.category);
    free(run.delivered);
    free(run.applied);
    return ok ? 0 : 1;
}

/* SIGKILL of intake or of a router in the middle of 10,000 submissions:
 * every acknowledged ticket is dispatched exactly once.
 *
 * The desk client resends what got no answer (same client_request_id), as a
 * real one does after a crash; the units stay connected through the router
 * restarts and keep acknowledging. At the end each ticket has reached its
 * unit once (one delivery seq), no ticket was created twice, and no
 * delivery names a ticket nobody was told about.
 *
 *   test-dispatch-crash [--tickets N] [--kills N] [--seed N]
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
#include "harness.h"
#include "submitter.h"

typedef struct crash_run {
    city_t *city;
    size_t count;
    char (*ticket)[64];
    int *category;
    int *delivered;
    size_t answered_kills_at[64];
    const char *victim[64];
    int kills, next_kill, intake_kills, router_kills;
    size_t strays, wrong_unit, delivered_total;
    int64_t kill_ms;
} crash_run_t;

static void on_reply(void *ctx, size_t index, const Dispatch__Reply *reply)
{
    crash_run_t *run = ctx;
    if (reply->body_case == DISPATCH__REPLY__BODY_SUBMIT)
        snprintf(run->ticket[index], 64, "%s", reply->submit->ticket_id);
}

static void on_progress(void *ctx, size_t answered)
{
    crash_run_t *run = ctx;
    if (run->next_kill >= run->kills || answered < run->answered_kills_at[run->next_kill])
        return;
    const char *victim = run->victim[run->next_kill++];
    int64_t t0 = harness_now_ms();
    city_stop(run->city, victim, SIGKILL);
    if (city_start(run->city, victim) < 0) {
        fprintf(stderr, "FAIL: %s did not restart\n", victim);
        exit(1);
    }
    run->kill_ms += harness_now_ms() - t0;
    if (strcmp(victim, "intake-1") == 0)
        run->intake_kills++;
    else
        run->router_kills++;
}

static long find_ticket(crash_run_t *run, const char *ticket)
{
    for (size_t i = 0; i < run->count; i++)
        if (strcmp(run->ticket[i], ticket) == 0)
            return (long)i;
    return -1;
}

static void on_delivery(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    crash_run_t *run = ctx;
    long i = d->body_case == DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED
                 ? find_ticket(run, d->ticket_id)
                 : -1;
    if (i < 0) {
        run->strays++;
        return;
    }
    run->delivered[i]++;
    run->delivered_total++;
    if (strcmp(unit, citydata_citywide[run->category[i]][1]) != 0)
        run->wrong_unit++;
}

int main(int argc, char **argv)
{
    size_t tickets = 10000;
    int kills = 6;
    unsigned seed = (unsigned)time(NULL);
    static const struct option options[] = {
        {"tickets", required_argument, NULL, 't'},
        {"kills", required_argument, NULL, 'k'},
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
        case 's':
            seed = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            return 2;
        }
    }
    if (kills > 64)
        kills = 64;
    srand(seed);
    signal(SIGPIPE, SIG_IGN);

    void *zmq = zmq_ctx_new();
    char *units = citydata_units_csv();
    char *rules[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        rules[d] = citydata_rules_csv(citydata_districts[d]);
    city_options_t city_options = {
        .districts = citydata_districts,
        .district_count = CITYDATA_DISTRICTS,
        .units_csv = units,
        .rules_csv = (const char *const *)rules,
    };
    crash_run_t run = {.count = tickets, .kills = kills};
    run.ticket = calloc(tickets, sizeof(*run.ticket));
    run.category = calloc(tickets, sizeof(*run.category));
    run.delivered = calloc(tickets, sizeof(*run.delivered));
    int rc = city_new("dispatch-crash", &city_options, &run.city);
    if (rc == 0)
        rc = city_start_all(run.city);
    if (rc < 0) {
        fprintf(stderr, "FAIL: the city did not start\n");
        return 1;
    }

    /* Kill points spread over the submissions; intake and a router in
     * turn. */
    static char router_names[CITYDATA_DISTRICTS][64];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        snprintf(router_names[d], 64, "router-%s", citydata_districts[d]);
    for (int k = 0; k < kills; k++) {
        run.answered_kills_at[k] = tickets * (size_t)(k + 1) / (size_t)(kills + 1) +
                                   (size_t)rand() % (tickets / (size_t)(4 * (kills + 1)) + 1);
        run.victim[k] = k % 2 == 0 ? "intake-1" : router_names[rand() % CITYDATA_DISTRICTS];
    }

    unit_pool_t *pools[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        char name[64];
        snprintf(name, sizeof(name), "router-%s", citydata_districts[d]);
        unit_pool_new(zmq, run.city, CITYDATA_CITYWIDE_COUNT, &pools[d]);
        for (int c = 0; c < CITYDATA_CITYWIDE_COUNT; c++)
            unit_pool_connect(pools[d], city_endpoint(run.city, name, "units"),
                              citydata_citywide[c][1], 0);
    }

    submitter_t *submitter;
    submitter_new(zmq, city_endpoint(run.city, "intake-1", "request"), 64,
                  test_keys(run.city, "agent-7", city_endpoint(run.city, "intake-1", "request")),
                  &submitter);
    for (size_t i = 0; i < tickets; i++) {
        char request_id[32], phone[32];
        snprintf(request_id, sizeof(request_id), "crash-%zu", i);
        snprintf(phone, sizeof(phone), "137%08zu", i);
        run.category[i] = rand() % CITYDATA_CITYWIDE_COUNT;
        Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
        submit.client_request_id = request_id;
        submit.channel = DISPATCH__CHANNEL__CHANNEL_WECHAT;
        submit.kind = DISPATCH__KIND__KIND_HELP;
        submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
        submit.district = (char *)citydata_districts[rand() % CITYDATA_DISTRICTS];
        submit.category = (char *)citydata_citywide[run.category[i]][0];
        submit.caller_phone = phone;
        submit.description = "crash run";
        submitter_add(submitter, "", &submit); /* the key's actor */
    }
    int64_t t0 = harness_now_ms();
    rc = submitter_run(submitter, 2000, 600000, on_reply, on_progress, &run);
    submitter_destroy(&submitter);
    int64_t submitted_ms = harness_now_ms() - t0;
    if (rc < 0) {
        fprintf(stderr, "FAIL: submissions unanswered after 600 s\n");
        return 1;
    }

    /* Drain the units; a router is killed once more while they receive. */
    bool killed_in_delivery = false;
    int64_t deadline = harness_now_ms() + 300000;
    while (run.delivered_total < tickets && harness_now_ms() < deadline) {
        for (int d = 0; d < CITYDATA_DISTRICTS; d++)
            unit_pool_poll(pools[d], 10, on_delivery, &run);
        if (!killed_in_delivery && run.delivered_total > tickets / 2) {
            city_stop(run.city, router_names[1], SIGKILL);
            city_start(run.city, router_names[1]);
            run.router_kills++;
            killed_in_delivery = true;
        }
    }
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        unit_pool_poll(pools[d], 300, on_delivery, &run); /* extras show up now */

    size_t missing = 0, twice = 0, distinct = 0;
    for (size_t i = 0; i < tickets; i++) {
        missing += run.delivered[i] == 0;
        twice += run.delivered[i] > 1;
        bool first = run.ticket[i][0] != '\0';
        for (size_t j = 0; first && j < i; j++)
            if (strcmp(run.ticket[j], run.ticket[i]) == 0)
                first = false;
        distinct += first;
    }
    printf("crash: %zu tickets acknowledged (%zu distinct) in %.1f s, %d intake kills, %d router "
           "kills (restarts %.1f s in all); delivered %zu: missing %zu, twice %zu, wrong unit "
           "%zu, strays %zu\n",
           tickets, distinct, (double)submitted_ms / 1000.0, run.intake_kills, run.router_kills,
           (double)run.kill_ms / 1000.0, run.delivered_total, missing, twice, run.wrong_unit,
           run.strays);
    bool ok = distinct == tickets && missing == 0 && twice == 0 && run.wrong_unit == 0 &&
              run.strays == 0 && run.intake_kills > 0 && run.router_kills > 1;

    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        unit_pool_destroy(&pools[d]);
    city_destroy(&run.city, !ok);
    zmq_ctx_term(zmq);
    free(units);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        free(rules[d]);
    free(run.ticket);
    free(run.category);
    free(run.delivered);
    return ok ? 0 : 1;
}

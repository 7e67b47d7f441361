/* SIGHUP to the intake: a district added to the topology while the city
 * runs is served without a restart of anything else.
 *
 * A city of two districts (chaoyang, nanguan) runs; a kuancheng ticket is
 * refused (no such district). kuancheng is written into the topology (its
 * router's section and data, its key, the intake's links), its router
 * started, and the intake sent SIGHUP: a kuancheng ticket is then accepted
 * and reaches its unit once. The tickets accepted before the reload are
 * delivered too; nothing was restarted. tests/hosts does the same across
 * hosts, with a district moved as well; this one runs in the sanitizer
 * build.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "citydata.h"
#include "dispatch_test.h"

__attribute__((format(printf, 1, 2))) static bool fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    return false;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct seen {
    char tickets[8][64];
    size_t count;
} seen_t;

static void on_delivery(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    seen_t *seen = ctx;
    if (d->body_case == DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED && seen->count < 8 &&
        strcmp(unit, "bureau-traffic") == 0)
        snprintf(seen->tickets[seen->count++], 64, "%s", d->ticket_id);
}

/* How many times ticket was delivered, after polling the pool until it
 * was or the deadline passed. */
static size_t delivered(unit_pool_t *pool, seen_t *seen, const char *ticket)
{
    for (int64_t deadline = now_ms() + TEST_TIMEOUT_MS;;) {
        size_t n = 0;
        for (size_t i = 0; i < seen->count; i++)
            n += strcmp(seen->tickets[i], ticket) == 0;
        if (n > 0 || now_ms() > deadline) {
            unit_pool_poll(pool, 300, on_delivery, seen); /* a second copy would show now */
            n = 0;
            for (size_t i = 0; i < seen->count; i++)
                n += strcmp(seen->tickets[i], ticket) == 0;
            return n;
        }
        unit_pool_poll(pool, 50, on_delivery, seen);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    bool ok = true;
    char *units = citydata_units_csv();
    char *rules[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        rules[d] = citydata_rules_csv(citydata_districts[d]);
    city_options_t options = {
        .districts = citydata_districts,
        .district_count = 2,
        .units_csv = units,
        .rules_csv = (const char *const *)rules,
    };
    void *zmq = zmq_ctx_new();
    city_t *city = NULL;
    client_t *intake = NULL;
    unit_pool_t *pools[CITYDATA_DISTRICTS] = {NULL};
    seen_t seen[CITYDATA_DISTRICTS] = {0};
    Dispatch__Reply *keep = NULL;
    if (city_new("reload", &options, &city) < 0 || city_start_all(city) < 0) {
        ok = fail("the city did not start");
        goto out;
    }
    const char *url = city_endpoint(city, "intake-1", "request");
    if (client_new(zmq, url, TEST_TIMEOUT_MS, test_keys(city, "agent-7", url), &intake) < 0) {
        ok = fail("no client of intake-1");
        goto out;
    }
    for (int d = 0; d < 2; d++) {
        char router[64];
        snprintf(router, sizeof(router), "router-%s", citydata_districts[d]);
        unit_pool_new(zmq, city, 1, &pools[d]);
        unit_pool_connect(pools[d], city_endpoint(city, router, "units"), "bureau-traffic", 0);
    }

    const char *added = citydata_districts[2];
    if (test_submit(intake, "before-1", added, "traffic", NULL, "13800000001", NULL, &keep)) {
        ok = fail("intake-1 took a ticket of %s before it was in the topology", added);
        goto out;
    }
    if (!keep || keep->body_case != DISPATCH__REPLY__BODY_ERROR) {
        ok = fail("no refusal for a district not in the topology");
        goto out;
    }
    protobuf_c_message_free_unpacked(&keep->base, NULL);
    keep = NULL;
    Dispatch__SubmitReply *first =
        test_submit(intake, "before-2", "nanguan", "traffic", NULL, "13800000002", NULL, &keep);
    if (!first) {
        ok = fail("a nanguan ticket was refused");
        goto out;
    }
    char nanguan_ticket[64];
    snprintf(nanguan_ticket, sizeof(nanguan_ticket), "%s", first->ticket_id);
    protobuf_c_message_free_unpacked(&keep->base, NULL);
    keep = NULL;

    char router[64];
    snprintf(router, sizeof(router), "router-%s", added);
    if (city_add_district(city, added, rules[2]) < 0 || city_start(city, router) < 0) {
        ok = fail("%s did not start", router);
        goto out;
    }
    unit_pool_new(zmq, city, 1, &pools[2]);
    unit_pool_connect(pools[2], city_endpoint(city, router, "units"), "bureau-traffic", 0);
    if (city_signal(city, "intake-1", SIGHUP) < 0) {
        ok = fail("no SIGHUP to intake-1");
        goto out;
    }

    /* The reload happens in the intake's next loop round: ask until it
     * answers with a ticket, each time with a new request id. */
    char added_ticket[64] = "";
    int refusals = 0;
    for (int64_t deadline = now_ms() + TEST_TIMEOUT_MS; !added_ticket[0];) {
        char request_id[32];
        snprintf(request_id, sizeof(request_id), "after-%d", refusals);
        Dispatch__SubmitReply *reply =
            test_submit(intake, request_id, added, "traffic", NULL, "13800000003", NULL, &keep);
        if (reply)
            snprintf(added_ticket, sizeof(added_ticket), "%s", reply->ticket_id);
        else
            refusals++;
        if (keep)
            protobuf_c_message_free_unpacked(&keep->base, NULL);
        keep = NULL;
        if (!added_ticket[0] && now_ms() > deadline) {
            ok = fail("intake-1 did not take a %s ticket within %d ms of its SIGHUP", added,
                      TEST_TIMEOUT_MS);
            goto out;
        }
    }
    size_t added_times = delivered(pools[2], &seen[2], added_ticket);
    size_t nanguan_times = delivered(pools[1], &seen[1], nanguan_ticket);
    printf("reload: %s served after SIGHUP (%d refusals while it read the topology); its ticket "
           "%s delivered %zu time(s); %s delivered %zu time(s)\n",
           added, refusals, added_ticket, added_times, nanguan_ticket, nanguan_times);
    if (added_times != 1 || nanguan_times != 1) {
        ok = fail("each ticket must reach bureau-traffic once");
        goto out;
    }

out:
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        unit_pool_destroy(&pools[d]);
    client_destroy(&intake);
    city_destroy(&city, !ok);
    zmq_ctx_term(zmq);
    free(units);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        free(rules[d]);
    return ok ? 0 : 1;
}

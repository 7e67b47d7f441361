/* dispatch-bench-timers: time to fire the escalation's due timers against
 * the number of open tickets (a benchmark, not a test).
 *
 *   dispatch-bench-timers [--open N[,N...]] [--due N] [--batch N] [--repeat N]
 *                         [--scatter] [--data DIR] [--keep]
 *
 * For each count of open tickets it builds a fresh escalation store in a
 * temp dir, then fires the due timers the way the worker does and reports
 * the time; with --repeat it does so that many times on fresh stores and
 * reports the median (fsync latency varies from run to run). Defaults:
 * --open 10000,1000000,10000000 --due 10000 --batch 1024 (the worker's
 * ESCALATION_FIRE_BATCH) --repeat 3 --data deploy/data.
 *
 * Setup (not timed; commits NOT fsynced, the store is synced once at the
 * end): the `due` tickets are urgent complaints dispatched at t0 through
 * the real handler (TicketDispatched -> case, deadlines, timer at t0 + 15
 * min, the 50% sign-for reminder); every other open ticket is a normal
 * complaint whose case record (cloned from one made by the handler) and
 * timer (at t0 + 1 h) are written directly through the cases and timers
 * modules. The due tickets are the newest ones (the highest ids: tickets
 * due together were dispatched together), or, with --scatter, spread
 * evenly over all ids.
 *
 * Firing (timed; DURABLE: every commit fsynced, as the worker runs): at
 * now = t0 + 15 min, write batches of escalation_fire_due() until every
 * due timer fired. Each firing loads the case, emits ReminderSent to the
 * router, the intake and audit (bus outboxes), re-arms the timer at the
 * next step and saves the case, all in the batch's transaction.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "bus.h"
#include "calendar.h"
#include "cases.h"
#include "codec.h"
#include "config.h"
#include "deadlines.h"
#include "escalation.h"
#include "harness.h"
#include "store.h"
#include "timers.h"

#define MAX_RUNS 8
#define SETUP_BATCH 50000
#define MINUTE_MS (60LL * 1000)

static const char *const TOPOLOGY = "[city]\nname = bench\ntimezone = Asia/Shanghai\n"
                                    "[district.cy]\n"
                                    "[worker.intake-1]\nkind = intake\nstate_dir = /x/i\n"
                                    "bus = inproc://bench-intake\nid_prefix = T1\n"
                                    "[worker.router-cy]\nkind = router\ndistrict = cy\n"
                                    "state_dir = /x/r\nbus = inproc://bench-router\n"
                                    "[worker.audit]\nkind = audit\nstate_dir = /x/a\n"
                                    "bus = inproc://bench-audit\n"
                                    "[worker.escalation-cy]\nkind = escalation\ndistrict = cy\n"
                                    "state_dir = /x/e\nbus = inproc://bench-escalation\n"
                                    "links = router-cy, intake-1, audit\n";

typedef struct options {
    uint64_t open[MAX_RUNS];
    size_t runs;
    uint64_t due;
    size_t batch;
    size_t repeat;
    int scatter;
    int keep;
    const char *data;
} options_t;

typedef struct bench {
    const options_t *options;
    char dir[512];
    void *zmq;
    config_t *config;
    store_t *store;
    bus_t *bus;
    escalation_t *escalation;
    cases_t *cases;
    timers_t *timers;
    int64_t t0;
    uint64_t open;
} bench_t;

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ticket_id(uint64_t i, char *buf, size_t len)
{
    snprintf(buf, len, "T1-20260302-%07" PRIu64, i + 1);
}

static bool is_due(const bench_t *b, uint64_t i)
{
    uint64_t due = b->options->due;
    if (b->options->scatter)
        return i % (b->open / due) == 0 && i / (b->open / due) < due;
    return i >= b->open - due;
}

static int open_all(bench_t *b, int no_sync)
{
    store_options_t store_options = {
        .map_size = 512ULL * 1024 * 1024 + b->open * 640ULL,
        .no_sync = no_sync,
    };
    char err[512];
    int rc = store_open(b->dir, &store_options, &b->store);
    if (rc == 0)
        rc = bus_new(b->zmq, b->store, "escalation-cy", NULL, &b->bus);
    const char *peers[3][2] = {{"router-cy", "inproc://bench-router"},
                               {"intake-1", "inproc://bench-intake"},
                               {"audit", "inproc://bench-audit"}};
    for (int i = 0; rc == 0 && i < 3; i++)
        rc = bus_link_open(b->bus, peers[i][0], peers[i][1], NULL);
    deadlines_t *table = NULL;
    calendar_t *calendar = NULL;
    if (rc == 0 &&
        (rc = escalation_load_data(b->options->data, &table, &calendar, err, sizeof(err))) < 0)
        fprintf(stderr, "%s\n", err);
    if (rc == 0)
        rc = escalation_new(b->store, b->bus, b->config, "escalation-cy", table, calendar,
                            &b->escalation);
    if (rc == 0)
        rc = cases_new(b->store, &b->cases);
    if (rc == 0)
        rc = timers_new(b->store, &b->timers);
    return rc;
}

static void close_all(bench_t *b)
{
    timers_destroy(&b->timers);
    cases_destroy(&b->cases);
    escalation_destroy(&b->escalation);
    bus_destroy(&b->bus);
    store_destroy(&b->store);
}

/* ------------------------------------------------------------ setup */

typedef struct setup {
    bench_t *bench;
    uint64_t from, to;
    Dispatch__Escalation__Case *template;
    int64_t template_due;
} setup_t;

static int dispatch_event(bench_t *b, MDB_txn *txn, const char *id, Dispatch__Urgency urgency)
{
    Dispatch__TicketDispatched dispatched = DISPATCH__TICKET_DISPATCHED__INIT;
    dispatched.unit_id = "cy-s01";
    dispatched.cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE;
    dispatched.kind = DISPATCH__KIND__KIND_COMPLAINT;
    dispatched.urgency = urgency;
    dispatched.category = "noise";
    dispatched.area = "cy-s01";
    dispatched.registered_at = b->t0;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.event_id = "router-cy-1";
    event.ticket_id = (char *)id;
    event.district = "cy";
    event.at = b->t0;
    event.actor = "router";
    event.origin = "router-cy";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &dispatched;
    uint8_t body[1024];
    size_t len = dispatch__event__pack(&event, body);
    int rc = escalation_handle_event(b->escalation, txn, body, len, b->t0);
    return rc == 0 ? 0 : rc < 0 ? rc : -EPROTO;
}

static int setup_fn(MDB_txn *txn, void *ctx)
{
    setup_t *s = ctx;
    bench_t *b = s->bench;
    int rc = bus_batch_apply(b->bus, txn);
    for (uint64_t i = s->from; rc == 0 && i < s->to; i++) {
        char id[TIMERS_ID_SIZE];
        ticket_id(i, id, sizeof(id));
        if (is_due(b, i)) {
            rc = dispatch_event(b, txn, id, DISPATCH__URGENCY__URGENCY_URGENT);
            continue;
        }
        rc = record_string_set(&s->template->ticket_id, id);
        if (rc == 0)
            rc = cases_put(b->cases, txn, s->template);
        if (rc == 0)
            rc = timers_arm(b->timers, txn, s->template_due, id);
    }
    return rc;
}

/* A normal ticket's case, as the handler makes it, for the clones. */
static int make_template(bench_t *b, setup_t *s)
{
    MDB_txn *txn;
    int rc = store_read_begin(b->store, &txn);
    if (rc < 0)
        return rc;
    rc = escalation_get_case(b->escalation, txn, "T1-template", &s->template);
    store_read_end(&txn);
    if (rc < 0)
        return rc;
    s->template_due = s->template->timer_due;
    return 0;
}

static int template_fn(MDB_txn *txn, void *ctx)
{
    setup_t *s = ctx;
    int rc = bus_batch_apply(s->bench->bus, txn);
    if (rc == 0)
        rc = dispatch_event(s->bench, txn, "T1-template", DISPATCH__URGENCY__URGENCY_NORMAL);
    return rc;
}

static int build(bench_t *b)
{
    setup_t s = {.bench = b};
    int rc = store_write(b->store, template_fn, &s);
    bus_batch_done(b->bus, rc);
    if (rc == 0)
        rc = make_template(b, &s);
    for (uint64_t from = 0; rc == 0 && from < b->open; from += SETUP_BATCH) {
        s.from = from;
        s.to = from + SETUP_BATCH < b->open ? from + SETUP_BATCH : b->open;
        rc = store_write(b->store, setup_fn, &s);
        bus_batch_done(b->bus, rc);
    }
    if (s.template)
        dispatch__escalation__case__free_unpacked(s.template, NULL);
    if (rc == 0)
        rc = store_rc(mdb_env_sync(store_env(b->store), 1));
    return rc;
}

/* ------------------------------------------------------------ firing */

typedef struct fire {
    bench_t *bench;
    int64_t now;
    size_t max, fired;
} fire_t;

static int fire_fn(MDB_txn *txn, void *ctx)
{
    fire_t *f = ctx;
    int rc = bus_batch_apply(f->bench->bus, txn);
    return rc < 0 ? rc : escalation_fire_due(f->bench->escalation, txn, f->now, f->max, &f->fired);
}

typedef struct result {
    uint64_t open, fired, commits, timers_after, outbox;
    int64_t setup_ms, fire_ms;
} result_t;

static int run(const options_t *options, uint64_t open, result_t *result)
{
    bench_t b = {
        .options = options, .open = open, .t0 = 1772413200000LL}; /* 2026-03-02 09:00 CST */
    char err[256];
    int rc = harness_tmpdir("bench-timers", b.dir, sizeof(b.dir));
    if (rc < 0)
        return rc;
    b.zmq = zmq_ctx_new();
    rc = config_parse_string(TOPOLOGY, &b.config, err, sizeof(err));
    int64_t started = monotonic_ms();
    if (rc == 0)
        rc = open_all(&b, 1);
    if (rc == 0)
        rc = build(&b);
    close_all(&b);
    result->open = open;
    result->setup_ms = monotonic_ms() - started;

    /* Durable from here on, as the worker runs. */
    if (rc == 0)
        rc = open_all(&b, 0);
    uint64_t commits = b.store ? store_commits(b.store) : 0;
    fire_t fire = {&b, b.t0 + 15 * MINUTE_MS, options->batch, 0};
    started = monotonic_ms();
    while (rc == 0 && result->fired < options->due) {
        rc = store_write(b.store, fire_fn, &fire);
        bus_batch_done(b.bus, rc);
        if (fire.fired == 0)
            break;
        result->fired += fire.fired;
    }
    result->fire_ms = monotonic_ms() - started;
    if (b.store) {
        result->commits = store_commits(b.store) - commits;
        MDB_txn *txn;
        if (store_read_begin(b.store, &txn) == 0) {
            timers_count(b.timers, txn, &result->timers_after);
            store_read_end(&txn);
        }
        bus_link_stats_t stats;
        bus_link_stats(bus_link_find(b.bus, "audit"), &stats);
        result->outbox = stats.next - 1;
    }
    close_all(&b);
    config_destroy(&b.config);
    zmq_ctx_term(b.zmq);
    if (options->keep)
        fprintf(stderr, "state kept in %s\n", b.dir);
    else
        harness_rmtree(b.dir);
    return rc;
}

static int parse_count(const char *text, uint64_t *value)
{
    char *end;
    errno = 0;
    unsigned long long parsed = strtoull(text, &end, 10);
    if (errno || end == text || (*end && *end != ',') || parsed == 0)
        return -EINVAL;
    *value = parsed;
    return (int)(end - text);
}

static int usage(void)
{
    fprintf(stderr, "usage: dispatch-bench-timers [--open N[,N...]] [--due N] [--batch N] "
                    "[--repeat N] [--scatter] [--data DIR] [--keep]\n");
    return 2;
}

int main(int argc, char **argv)
{
    options_t options = {.open = {10000, 1000000, 10000000},
                         .runs = 3,
                         .due = 10000,
                         .batch = 1024,
                         .repeat = 3,
                         .data = "deploy/data"};
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t number;
        if (strcmp(argv[i], "--open") == 0 && value) {
            options.runs = 0;
            for (const char *p = value; *p && options.runs < MAX_RUNS;) {
                int used = parse_count(p, &options.open[options.runs++]);
                if (used < 0)
                    return usage();
                p += used + (p[used] == ',');
            }
            i++;
        } else if (strcmp(argv[i], "--due") == 0 && value && parse_count(value, &number) >= 0) {
            options.due = number;
            i++;
        } else if (strcmp(argv[i], "--batch") == 0 && value && parse_count(value, &number) >= 0) {
            options.batch = (size_t)number;
            i++;
        } else if (strcmp(argv[i], "--repeat") == 0 && value && parse_count(value, &number) >= 0 &&
                   number <= 99) {
            options.repeat = (size_t)number;
            i++;
        } else if (strcmp(argv[i], "--data") == 0 && value) {
            options.data = value;
            i++;
        } else if (strcmp(argv[i], "--scatter") == 0) {
            options.scatter = 1;
        } else if (strcmp(argv[i], "--keep") == 0) {
            options.keep = 1;
        } else {
            return usage();
        }
    }
    for (size_t i = 0; i < options.runs; i++)
        if (options.open[i] < options.due) {
            fprintf(stderr, "--open %" PRIu64 " is below --due %" PRIu64 "\n", options.open[i],
                    options.due);
            return 2;
        }

    printf("escalation timers: fire %" PRIu64 " due timers, batches of %zu, durable commits "
           "(fsync per batch); setup NOT fsynced; due tickets %s; median of %zu runs\n",
           options.due, options.batch, options.scatter ? "spread over all ids" : "the newest ids",
           options.repeat);
    printf("%12s %10s %10s %10s %12s %8s %14s %10s\n", "open", "fire ms", "min ms", "max ms",
           "timers/s", "commits", "timers after", "setup s");
    /* Rounds over all sizes, so that a change in the machine's load while
     * the benchmark runs falls on every size alike. */
    int64_t times[MAX_RUNS][100];
    result_t last[MAX_RUNS] = {{0}};
    for (size_t k = 0; k < options.repeat; k++) {
        for (size_t i = 0; i < options.runs; i++) {
            result_t r = {0};
            int rc = run(&options, options.open[i], &r);
            if (rc < 0) {
                fprintf(stderr, "open %" PRIu64 ": %s\n", options.open[i], store_strerror(rc));
                return 1;
            }
            /* Every due ticket fired once (one ReminderSent each) and was
             * re-armed; the count of timers (one per open ticket, and the
             * template's) holds. */
            if (r.fired != options.due || r.outbox != options.due ||
                r.timers_after != options.open[i] + 1) {
                fprintf(stderr,
                        "open %" PRIu64 ": fired %" PRIu64 ", %" PRIu64 " events, %" PRIu64
                        " timers after\n",
                        options.open[i], r.fired, r.outbox, r.timers_after);
                return 1;
            }
            /* Insertion sort: a handful of runs. */
            size_t at = k;
            while (at > 0 && times[i][at - 1] > r.fire_ms) {
                times[i][at] = times[i][at - 1];
                at--;
            }
            times[i][at] = r.fire_ms;
            last[i] = r;
        }
    }
    int64_t medians[MAX_RUNS];
    for (size_t i = 0; i < options.runs; i++) {
        const result_t *r = &last[i];
        medians[i] = times[i][options.repeat / 2];
        printf("%12" PRIu64 " %10" PRId64 " %10" PRId64 " %10" PRId64 " %12.0f %8" PRIu64
               " %14" PRIu64 " %10.1f\n",
               r->open, medians[i], times[i][0], times[i][options.repeat - 1],
               medians[i] > 0 ? (double)r->fired * 1000.0 / (double)medians[i] : 0.0, r->commits,
               r->timers_after, (double)r->setup_ms / 1000.0);
    }
    int64_t lo = INT64_MAX, hi = 0;
    for (size_t i = 0; i < options.runs; i++) {
        lo = medians[i] < lo ? medians[i] : lo;
        hi = medians[i] > hi ? medians[i] : hi;
    }
    printf("slowest / fastest median: %.2fx\n", lo > 0 ? (double)hi / (double)lo : 0.0);
    lo = INT64_MAX, hi = 0;
    for (size_t i = 0; i < options.runs; i++) {
        lo = times[i][0] < lo ? times[i][0] : lo;
        hi = times[i][0] > hi ? times[i][0] : hi;
    }
    printf("slowest / fastest best run: %.2fx\n", lo > 0 ? (double)hi / (double)lo : 0.0);
    return 0;
}

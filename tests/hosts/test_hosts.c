/* The city on five hosts, under a wide-area link's faults, with one
 * district cut off under a steady load and then healed.
 *
 * Hosts (network namespaces, hosts.h): "city" runs intake-1 and audit;
 * "d-<district>" runs that district's router and escalation, for each of
 * the three districts; "units" runs this test process, which is the
 * units' side (a session per unit on each router, as each unit's desk
 * client connects) and the submitting client (an agent desk with many
 * requests in flight, resending what gets no answer). Every worker binds
 * its host's address; CURVE on every link and endpoint; one topology file.
 * Every port of the switch delays each frame 50 ms +- 20 ms (so frames
 * overtake each other) and drops 2 % of them, for the whole run.
 *
 * Timeline: --warmup s of load, --before s measured, then the host of the
 * second district is cut off (its switch port down) for --partition s,
 * then healed; the load goes on until the district has caught up (every
 * ticket acknowledged before the heal delivered to its unit), then stops,
 * and everything is drained.
 *
 * Checks: every acknowledged ticket is delivered once, to its unit; no
 * delivery of a ticket nobody was told about; the audit holds one
 * TicketRegistered and one TicketDispatched for each and its chain
 * verifies; the other districts' p99 latency (acknowledged at intake ->
 * delivered to the unit) during the partition is within 2x of before.
 * Figures: the catch-up time after the heal, the peak of the tickets
 * waiting in outboxes (all workers; intake's link to the cut district),
 * the latencies.
 *
 *   test-hosts [--rate N] [--warmup S] [--before S] [--partition S]
 *              [--catch-up-max S] [--seed N] [--keep]
 *
 * Exit 77 (skipped) when network namespaces cannot be made (not root, no
 * CAP_NET_ADMIN, no netns): the message says so.
 */
#include <getopt.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "citydata.h"
#include "dispatch_test.h"
#include "hosts.h"
#include "submitter.h"
#include "trail.h"

#define SKIP 77
#define TICK_MS 250
#define CUT 1 /* the district cut off: citydata_districts[CUT] */

/* Categories owned city-wide: one lead unit each, in every district. */
static const char *const categories[][2] = {
    {"traffic", "bureau-traffic"},
    {"water-supply", "water-company"},
    {"power-outage", "power-company"},
    {"heating", "heating-company"},
    {"gas", "gas-company"},
    {"telecom", "telecom-company"},
};
#define CATEGORY_COUNT 6

typedef struct ticket {
    char id[64];
    int district, category;
    int64_t acked_ms; /* 0: not acknowledged (yet) */
    int64_t delivered_ms;
    int delivered, wrong_unit, registered_in_audit, dispatched_in_audit;
} ticket_t;

typedef struct delivery {
    char ticket[64];
    char unit[64];
    int64_t at_ms;
} delivery_t;

typedef struct run {
    hosts_t *hosts;
    city_t *city;
    ticket_t *tickets;
    size_t count, capacity;
    /* Deliveries, appended by the units' thread. */
    pthread_mutex_t lock;
    delivery_t *deliveries;
    size_t delivery_count, delivery_capacity;
    volatile int stop_units;
    unit_pool_t *pools[CITYDATA_DISTRICTS];
} run_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the hosts and where each worker runs ---------------------------------- */

static const char *const host_names[] = {"city", "d-chaoyang", "d-nanguan", "d-kuancheng", "units"};
#define HOST_COUNT 5

static const char *host_of(const char *worker)
{
    if (strcmp(worker, "intake-1") == 0 || strcmp(worker, "audit") == 0)
        return "city";
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        const char *district = citydata_districts[d];
        size_t n = strlen(district);
        size_t len = strlen(worker);
        if (len > n && strcmp(worker + len - n, district) == 0 && worker[len - n - 1] == '-')
            return host_names[1 + d];
    }
    return "units";
}

static void place(void *ctx, const char *worker, city_host_t *host)
{
    const hosts_t *hosts = ctx;
    const char *name = host_of(worker);
    host->netns = hosts_netns(hosts, name);
    host->address = hosts_address(hosts, name);
}

/* --- the units' side -------------------------------------------------------- */

static void on_delivery(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    run_t *run = ctx;
    if (d->body_case != DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED)
        return;
    pthread_mutex_lock(&run->lock);
    if (run->delivery_count == run->delivery_capacity) {
        run->delivery_capacity = run->delivery_capacity ? 2 * run->delivery_capacity : 4096;
        run->deliveries =
            realloc(run->deliveries, run->delivery_capacity * sizeof(*run->deliveries));
    }
    delivery_t *out = &run->deliveries[run->delivery_count++];
    snprintf(out->ticket, sizeof(out->ticket), "%s", d->ticket_id);
    snprintf(out->unit, sizeof(out->unit), "%s", unit);
    out->at_ms = now_ms();
    pthread_mutex_unlock(&run->lock);
}

static void *units_main(void *arg)
{
    run_t *run = arg;
    while (!run->stop_units)
        for (int d = 0; d < CITYDATA_DISTRICTS; d++)
            unit_pool_poll(run->pools[d], 2, on_delivery, run);
    return NULL;
}

/* --- the callers' side ------------------------------------------------------ */

static void on_reply(void *ctx, size_t index, const Dispatch__Reply *reply)
{
    run_t *run = ctx;
    if (reply->body_case != DISPATCH__REPLY__BODY_SUBMIT)
        return;
    ticket_t *t = &run->tickets[index];
    snprintf(t->id, sizeof(t->id), "%s", reply->submit->ticket_id);
    t->acked_ms = now_ms();
}

static void add_ticket(run_t *run, submitter_t *submitter)
{
    if (run->count == run->capacity) {
        run->capacity = run->capacity ? 2 * run->capacity : 8192;
        run->tickets = realloc(run->tickets, run->capacity * sizeof(*run->tickets));
    }
    ticket_t *t = &run->tickets[run->count];
    *t = (ticket_t){.district = rand() % CITYDATA_DISTRICTS, .category = rand() % CATEGORY_COUNT};
    char request_id[32], phone[32];
    snprintf(request_id, sizeof(request_id), "hosts-%zu", run->count);
    snprintf(phone, sizeof(phone), "139%08zu", run->count);
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    submit.client_request_id = request_id;
    submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    submit.kind = DISPATCH__KIND__KIND_HELP;
    submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    submit.district = (char *)citydata_districts[t->district];
    submit.category = (char *)categories[t->category][0];
    submit.caller_phone = phone;
    submit.description = "hosts run";
    size_t index = submitter_add(submitter, "gateway", &submit);
    if (index == run->count)
        run->count++;
}

/* --- figures from the stores ---------------------------------------------- */

/* Entries waiting in the outboxes of the store in dir ("outbox.<peer>"
 * databases); *to_peer gets those of outbox.<peer> when peer is given.
 * Read-only, beside the running worker. */
static uint64_t outbox_entries(const char *dir, const char *peer, uint64_t *to_peer)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cursor = NULL;
    MDB_dbi main_dbi;
    uint64_t total = 0;
    if (mdb_env_create(&env) != 0)
        return 0;
    mdb_env_set_maxdbs(env, 64);
    if (mdb_env_open(env, dir, MDB_RDONLY, 0) != 0 ||
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0 || mdb_dbi_open(txn, NULL, 0, &main_dbi) ||
        mdb_cursor_open(txn, main_dbi, &cursor) != 0)
        goto done;
    MDB_val key, value;
    key.mv_data = "outbox.";
    key.mv_size = 7;
    for (int rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
        if (key.mv_size < 7 || memcmp(key.mv_data, "outbox.", 7) != 0 || key.mv_size > 127)
            break;
        char name[128];
        memcpy(name, key.mv_data, key.mv_size);
        name[key.mv_size] = '\0';
        MDB_dbi dbi;
        MDB_stat stat;
        if (mdb_dbi_open(txn, name, 0, &dbi) != 0 || mdb_stat(txn, dbi, &stat) != 0)
            continue;
        total += stat.ms_entries;
        if (peer && to_peer && strcmp(name + 7, peer) == 0)
            *to_peer = stat.ms_entries;
    }
done:
    if (cursor)
        mdb_cursor_close(cursor);
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return total;
}

static const char *const worker_names[] = {
    "intake-1",         "audit",
    "router-chaoyang",  "escalation-chaoyang",
    "router-nanguan",   "escalation-nanguan",
    "router-kuancheng", "escalation-kuancheng",
};
#define WORKER_COUNT 8

typedef struct outbox_peak {
    uint64_t total, to_cut;
} outbox_peak_t;

static void sample_outboxes(run_t *run, outbox_peak_t *peak)
{
    char dir[600], cut_router[80];
    snprintf(cut_router, sizeof(cut_router), "router-%s", citydata_districts[CUT]);
    uint64_t total = 0, to_cut = 0;
    for (int i = 0; i < WORKER_COUNT; i++) {
        uint64_t mine = 0;
        total += outbox_entries(city_state_dir(run->city, worker_names[i], dir, sizeof(dir)),
                                i == 0 ? cut_router : NULL, &mine);
        if (i == 0)
            to_cut = mine;
    }
    if (total > peak->total)
        peak->total = total;
    if (to_cut > peak->to_cut)
        peak->to_cut = to_cut;
}

/* --- checks ----------------------------------------------------------------- */

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* p99 of delivered - acked over tickets acked in [from, to) of districts
 * other than skip (-1: none); -1 when there are none. */
static int64_t p99(const run_t *run, int64_t from, int64_t to, int skip, size_t *n_out)
{
    int64_t *values = malloc((run->count + 1) * sizeof(*values));
    size_t n = 0;
    for (size_t i = 0; i < run->count; i++) {
        const ticket_t *t = &run->tickets[i];
        if (t->acked_ms >= from && t->acked_ms < to && t->district != skip && t->delivered)
            values[n++] = t->delivered_ms > t->acked_ms ? t->delivered_ms - t->acked_ms : 0;
    }
    int64_t result = -1;
    if (n > 0) {
        qsort(values, n, sizeof(*values), compare_i64);
        result = values[(n * 99 + 99) / 100 - 1];
    }
    free(values);
    *n_out = n;
    return result;
}

/* Ticket ids -> index, open addressing. */
typedef struct index_map {
    size_t *slots; /* index + 1; 0 = empty */
    size_t mask;
} index_map_t;

static size_t hash_text(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static void map_build(index_map_t *map, const run_t *run)
{
    size_t size = 1;
    while (size < 2 * run->count + 2)
        size <<= 1;
    map->slots = calloc(size, sizeof(*map->slots));
    map->mask = size - 1;
    for (size_t i = 0; i < run->count; i++) {
        if (!run->tickets[i].id[0])
            continue;
        size_t h = hash_text(run->tickets[i].id) & map->mask;
        while (map->slots[h])
            h = (h + 1) & map->mask;
        map->slots[h] = i + 1;
    }
}

static long map_find(const index_map_t *map, const run_t *run, const char *id)
{
    for (size_t h = hash_text(id) & map->mask; map->slots[h]; h = (h + 1) & map->mask)
        if (strcmp(run->tickets[map->slots[h] - 1].id, id) == 0)
            return (long)map->slots[h] - 1;
    return -1;
}

/* Folds the deliveries so far into the tickets; returns the strays. */
static size_t fold_deliveries(run_t *run, const index_map_t *map, size_t *folded)
{
    size_t strays = 0;
    pthread_mutex_lock(&run->lock);
    for (; *folded < run->delivery_count; (*folded)++) {
        const delivery_t *d = &run->deliveries[*folded];
        long i = map_find(map, run, d->ticket);
        if (i < 0) {
            strays++;
            continue;
        }
        ticket_t *t = &run->tickets[i];
        if (t->delivered++ == 0)
            t->delivered_ms = d->at_ms;
        if (strcmp(d->unit, categories[t->category][1]) != 0)
            t->wrong_unit++;
    }
    pthread_mutex_unlock(&run->lock);
    return strays;
}

/* Counts TicketRegistered and TicketDispatched per ticket in the audit's
 * trail, read-only beside the running audit; records of tickets this run
 * did not make count as strays. Returns the records read, or -1. */
static long read_audit(run_t *run, const index_map_t *map, size_t *strays)
{
    char dir[600];
    city_state_dir(run->city, "audit", dir, sizeof(dir));
    for (size_t i = 0; i < run->count; i++)
        run->tickets[i].registered_in_audit = run->tickets[i].dispatched_in_audit = 0;
    *strays = 0;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    trail_t *trail = NULL;
    long records = -1;
    if (mdb_env_create(&env) != 0)
        return -1;
    mdb_env_set_maxdbs(env, 64);
    if (mdb_env_open(env, dir, MDB_RDONLY, 0) != 0 ||
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0 || trail_attach(txn, &trail) < 0)
        goto done;
    trail_head_t head;
    if (trail_head(trail, txn, &head) < 0)
        goto done;
    records = 0;
    for (uint64_t seq = 1; seq <= head.seq; seq++) {
        Dispatch__Audit__LogEntry *entry;
        if (trail_get(trail, txn, seq, &entry) < 0)
            continue;
        Dispatch__Event *event = dispatch__event__unpack(NULL, entry->event.len, entry->event.data);
        trail_entry_free(entry);
        records++;
        if (!event)
            continue;
        long i = map_find(map, run, event->ticket_id);
        bool registered = event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED;
        bool dispatched = event->body_case == DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
        if (i < 0 && (registered || dispatched))
            (*strays)++;
        else if (i >= 0 && registered)
            run->tickets[i].registered_in_audit++;
        else if (i >= 0 && dispatched)
            run->tickets[i].dispatched_in_audit++;
        dispatch__event__free_unpacked(event, NULL);
    }
done:
    trail_destroy(&trail);
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return records;
}

static char *read_data(const char *name)
{
    const char *dir = getenv("DEPLOY_DATA");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "deploy/data", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    size_t got = fread(text, 1, (size_t)len, f);
    text[got] = '\0';
    fclose(f);
    return text;
}

int main(int argc, char **argv)
{
    double rate = 50;
    int warmup_s = 5, before_s = 20, partition_s = 60, catch_up_max_s = 120;
    unsigned seed = (unsigned)time(NULL);
    bool keep = false;
    static const struct option options[] = {
        {"rate", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"before", required_argument, NULL, 'b'},
        {"partition", required_argument, NULL, 'p'},
        {"catch-up-max", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},
        {"keep", no_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'w':
            warmup_s = atoi(optarg);
            break;
        case 'b':
            before_s = atoi(optarg);
            break;
        case 'p':
            partition_s = atoi(optarg);
            break;
        case 'c':
            catch_up_max_s = atoi(optarg);
            break;
        case 's':
            seed = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            keep = true;
            break;
        default:
            return 2;
        }
    }
    srand(seed);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    run_t run = {.lock = PTHREAD_MUTEX_INITIALIZER};
    char why[256] = "";
    const hosts_faults_t faults = {.delay_ms = 50, .jitter_ms = 20, .loss_percent = 2.0};
    int rc = hosts_new(host_names, HOST_COUNT, &faults, &run.hosts, why, sizeof(why));
    if (rc < 0) {
        printf("SKIP: network namespaces cannot be made here: %s\n", why);
        return SKIP;
    }
    printf("hosts: 5 namespaces behind a switch with 50 ms +- 20 ms delay and 2 %% loss per "
           "frame; seed %u, %.0f tickets/s offered\n",
           seed, rate);

    char *units_csv = citydata_units_csv();
    char *rules[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        rules[d] = citydata_rules_csv(citydata_districts[d]);
    char *deadlines = read_data("deadlines.ini"), *calendar = read_data("calendar.ini");
    if (!deadlines || !calendar) {
        fprintf(stderr, "FAIL: deadlines.ini / calendar.ini not found ($DEPLOY_DATA)\n");
        return 1;
    }
    const char *files[] = {"deadlines.ini", deadlines, "calendar.ini", calendar, NULL};
    city_options_t city_options = {
        .districts = citydata_districts,
        .district_count = CITYDATA_DISTRICTS,
        .units_csv = units_csv,
        .rules_csv = (const char *const *)rules,
        .escalation = true,
        .escalation_files = files,
        .audit = true,
        .place = place,
        .place_ctx = run.hosts,
    };
    bool ok = false;
    rc = city_new("hosts", &city_options, &run.city);
    if (rc == 0)
        rc = city_start_all(run.city);
    if (rc < 0) {
        fprintf(stderr, "FAIL: the city did not start on its hosts\n");
        goto out;
    }
    /* From here on this process is the units host. */
    if (hosts_enter(run.hosts, "units") < 0) {
        fprintf(stderr, "FAIL: cannot enter the units host\n");
        goto out;
    }
    test_ctl_config(city_topology(run.city));

    void *zmq = zmq_ctx_new();
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        char router[80];
        snprintf(router, sizeof(router), "router-%s", citydata_districts[d]);
        unit_pool_new(zmq, run.city, CATEGORY_COUNT, &run.pools[d]);
        for (int c = 0; c < CATEGORY_COUNT; c++)
            unit_pool_connect(run.pools[d], city_endpoint(run.city, router, "units"),
                              categories[c][1], 0);
    }
    pthread_t units_thread;
    pthread_create(&units_thread, NULL, units_main, &run);

    const char *intake_url = city_endpoint(run.city, "intake-1", "request");
    submitter_t *submitter;
    submitter_new(zmq, intake_url, 512, test_keys(run.city, "agent-7", intake_url), &submitter);

    /* The load: every tick, the tickets the rate owes by now, then their
     * answers; the outboxes sampled each tick. */
    int64_t t0 = now_ms();
    int64_t before_from = t0 + warmup_s * 1000LL, cut_at = before_from + before_s * 1000LL;
    int64_t heal_at = cut_at + partition_s * 1000LL,
            catch_up_deadline = heal_at + catch_up_max_s * 1000LL;
    int64_t caught_up_at = 0;
    bool cut = false, healed = false;
    outbox_peak_t peak = {0};
    index_map_t map = {0};
    size_t folded = 0, strays = 0;
    for (int64_t next_tick = t0;;) {
        int64_t now = now_ms();
        if (!cut && now >= cut_at) {
            if (hosts_link(run.hosts, host_names[1 + CUT], false) < 0) {
                fprintf(stderr, "FAIL: cannot cut %s off\n", host_names[1 + CUT]);
                goto stop;
            }
            cut = true;
            printf("hosts: %s cut off at %.1f s (%zu tickets so far)\n", host_names[1 + CUT],
                   (double)(now - t0) / 1000.0, run.count);
        }
        if (cut && !healed && now >= heal_at) {
            hosts_link(run.hosts, host_names[1 + CUT], true);
            healed = true;
            printf("hosts: %s healed at %.1f s (%zu tickets so far)\n", host_names[1 + CUT],
                   (double)(now - t0) / 1000.0, run.count);
        }
        if (healed) {
            /* Caught up: every ticket of the cut district acknowledged
             * before the heal has reached its unit. */
            free(map.slots);
            map_build(&map, &run);
            folded = 0;
            for (size_t i = 0; i < run.count; i++)
                run.tickets[i].delivered = run.tickets[i].wrong_unit = 0;
            strays = fold_deliveries(&run, &map, &folded);
            bool all = true;
            int64_t last = 0;
            for (size_t i = 0; i < run.count && all; i++) {
                const ticket_t *t = &run.tickets[i];
                if (t->district != CUT || !t->acked_ms || t->acked_ms >= heal_at)
                    continue;
                all = t->delivered > 0;
                if (t->delivered_ms > last)
                    last = t->delivered_ms;
            }
            if (all) {
                caught_up_at = last;
                break;
            }
            if (now > catch_up_deadline)
                break;
        }
        size_t owed = (size_t)((double)(now - t0) * rate / 1000.0);
        while (run.count < owed)
            add_ticket(&run, submitter);
        if (submitter_run(submitter, 5000, 120000, on_reply, NULL, &run) < 0) {
            fprintf(stderr, "FAIL: submissions unanswered for 120 s\n");
            goto stop;
        }
        sample_outboxes(&run, &peak);
        next_tick += TICK_MS;
        int64_t wait = next_tick - now_ms();
        if (wait > 0) {
            struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
            nanosleep(&ts, NULL); /* the pace of the load, not a wait for readiness */
        } else {
            next_tick = now_ms();
        }
    }
    int64_t load_ms = now_ms() - t0;
    printf("hosts: load stopped after %.1f s: %zu tickets, %.1f/s\n", (double)load_ms / 1000.0,
           run.count, (double)run.count * 1000.0 / (double)load_ms);

    /* Drain: every acknowledged ticket delivered, and in the audit. */
    free(map.slots);
    map_build(&map, &run);
    folded = 0;
    for (size_t i = 0; i < run.count; i++)
        run.tickets[i].delivered = run.tickets[i].wrong_unit = 0;
    size_t missing = run.count, audit_strays = 0, audit_missing = run.count;
    for (int64_t deadline = now_ms() + 120000; now_ms() < deadline;) {
        strays += fold_deliveries(&run, &map, &folded);
        missing = 0;
        for (size_t i = 0; i < run.count; i++)
            missing += run.tickets[i].acked_ms && run.tickets[i].delivered == 0;
        if (missing == 0) {
            read_audit(&run, &map, &audit_strays);
            audit_missing = 0;
            for (size_t i = 0; i < run.count; i++)
                audit_missing +=
                    !run.tickets[i].registered_in_audit || !run.tickets[i].dispatched_in_audit;
            if (audit_missing == 0)
                break;
        }
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL); /* polling a condition, with a deadline */
    }
    /* Anything sent twice would be arriving by now: one more look. */
    {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    strays += fold_deliveries(&run, &map, &folded);
    long records = read_audit(&run, &map, &audit_strays);
    trail_verdict_t verdict = {0};
    char audit_dir[600];
    int verify_rc = trail_verify_dir(
        city_state_dir(run.city, "audit", audit_dir, sizeof(audit_dir)), 0, 0, &verdict);

    size_t unacked = 0, twice = 0, wrong = 0, audit_twice = 0;
    missing = 0;
    audit_missing = 0;
    for (size_t i = 0; i < run.count; i++) {
        const ticket_t *t = &run.tickets[i];
        if (!t->acked_ms) {
            unacked++;
            continue;
        }
        missing += t->delivered == 0;
        twice += t->delivered > 1;
        wrong += t->wrong_unit > 0;
        audit_missing += !t->registered_in_audit || !t->dispatched_in_audit;
        audit_twice += t->registered_in_audit > 1 || t->dispatched_in_audit > 1;
    }
    size_t n_before, n_during, n_cut_before;
    int64_t p99_before = p99(&run, before_from, cut_at, CUT, &n_before);
    int64_t p99_during = p99(&run, cut_at, heal_at, CUT, &n_during);
    int64_t p99_cut_before = p99(&run, before_from, cut_at, -1, &n_cut_before);
    double catch_up_s = caught_up_at ? (double)(caught_up_at - heal_at) / 1000.0 : -1;

    printf("hosts: %zu tickets acknowledged (%zu unanswered); delivered: missing %zu, twice %zu, "
           "wrong unit %zu, strays %zu\n",
           run.count - unacked, unacked, missing, twice, wrong, strays);
    printf("hosts: audit: %ld records; missing %zu, twice %zu, strays %zu; chain %s (%llu "
           "records checked%s%s)\n",
           records, audit_missing, audit_twice, audit_strays,
           verify_rc == 0 && verdict.broken_seq == 0 ? "verifies" : "BROKEN",
           (unsigned long long)verdict.checked, verdict.problem[0] ? ": " : "", verdict.problem);
    printf("hosts: p99 acknowledged -> delivered, other districts: before %lld ms (%zu tickets), "
           "during the partition %lld ms (%zu tickets); all districts before %lld ms (%zu)\n",
           (long long)p99_before, n_before, (long long)p99_during, n_during,
           (long long)p99_cut_before, n_cut_before);
    printf("hosts: FIGURES partition %d s at %.0f tickets/s offered: caught up %.1f s after the "
           "heal; peak outbox depth %llu entries in all workers, %llu on intake -> router-%s\n",
           partition_s, rate, catch_up_s, (unsigned long long)peak.total,
           (unsigned long long)peak.to_cut, citydata_districts[CUT]);

    ok = unacked == 0 && missing == 0 && twice == 0 && wrong == 0 && strays == 0 &&
         audit_missing == 0 && audit_twice == 0 && audit_strays == 0 && verify_rc == 0 &&
         verdict.broken_seq == 0 && caught_up_at != 0 && n_before > 0 && n_during > 0 &&
         p99_during <= 2 * p99_before;
    if (!ok)
        printf("FAIL: see above (p99 during must be <= 2x before; every count above 0 must be "
               "0)\n");

stop:
    free(map.slots);
    run.stop_units = 1;
    pthread_join(units_thread, NULL);
    submitter_destroy(&submitter);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        unit_pool_destroy(&run.pools[d]);
    zmq_ctx_term(zmq);
out:
    city_destroy(&run.city, !ok && keep);
    hosts_destroy(&run.hosts);
    free(units_csv);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        free(rules[d]);
    free(deadlines);
    free(calendar);
    free(run.tickets);
    free(run.deliveries);
    return ok ? 0 : 1;
}

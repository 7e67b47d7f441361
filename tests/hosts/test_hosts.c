/* The city on hosts, under a wide-area link's faults: one district cut off
 * under a steady load and healed (--scenario partition, the default); or a
 * fourth district added and a district moved to another host while the
 * city runs (--scenario topology).
 *
 * Hosts (network namespaces, hosts.h): "city" runs intake-1 and audit;
 * "d-<district>" runs that district's router and escalation; "units" runs
 * this test process, which is the units' side (a session per unit on each
 * router, as each unit's desk client connects) and the submitting client
 * (an agent desk with many requests in flight, resending what gets no
 * answer). Every worker binds its host's address; CURVE on every link and
 * endpoint; one topology file. Every port of the switch delays each frame
 * 50 ms +- 20 ms (so frames overtake each other) and drops 2 % of them,
 * for the whole run.
 *
 * partition: --warmup s of load, --before s measured, then the host of
 * nanguan is cut off (its switch port down) for --partition s, then
 * healed; the load goes on until nanguan has caught up (every ticket
 * acknowledged before the heal delivered to its unit); with --units-cut,
 * the units host is then cut off from kuancheng's host (blackhole routes
 * both ways) for that long and joined again, and the load goes on until
 * kuancheng's units have caught up their queues; then it stops.
 *
 * topology: after --warmup + --before s, district xinghua is added on its
 * own host (its rules and keys written, its router and escalation
 * started, the topology file rewritten) and the intake is sent SIGHUP: it
 * must serve xinghua without a restart. Then kuancheng moves to host
 * d-kuancheng-2: its router and escalation are stopped, the load goes on
 * for --move-gap s (kuancheng's tickets wait in the intake's outbox), their
 * state dirs are copied with mdb_env_copy2 (bus incarnations travel with
 * them), the copies started on the new host's address, the old host's
 * link cut (nothing can reach the old address), and the intake sent
 * SIGHUP. --after s of load follow.
 *
 * Checks (both): every acknowledged ticket is delivered once, to its unit;
 * no delivery of a ticket nobody was told about; the audit holds one
 * TicketRegistered and one TicketDispatched for each and its chain
 * verifies. partition also: the other districts' p99 latency (acknowledged
 * at intake -> delivered to the unit) during the partition within 2x of
 * before. Figures: the catch-up time after the heal, the peak of the
 * entries waiting in outboxes (all workers; the intake's link to the cut
 * district), the latencies; the time the intake took to serve the new
 * district, the moved district's downtime.
 *
 *   test-hosts [--scenario partition|topology] [--rate N] [--warmup S]
 *              [--before S] [--partition S] [--catch-up-max S]
 *              [--units-cut S] [--move-gap S] [--after S] [--seed N] [--keep]
 *
 * Exit 77 (skipped) when network namespaces cannot be made (not root, no
 * CAP_NET_ADMIN, no netns): the message says so.
 */
#include <getopt.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "citydata.h"
#include "dispatch_test.h"
#include "harness.h"
#include "hosts.h"
#include "submitter.h"
#include "trail.h"

#define SKIP 77
#define TICK_MS 250
#define CUT 1   /* the district cut off: nanguan */
#define MOVED 2 /* the district moved: kuancheng */
#define ADDED 3 /* the district added: xinghua */
#define MAX_DISTRICTS 4

static const char *const districts[MAX_DISTRICTS] = {"chaoyang", "nanguan", "kuancheng", "xinghua"};

typedef struct ticket {
    char id[64];
    int district, category;
    int64_t acked_ms; /* 0: not acknowledged (yet) */
    int64_t delivered_ms;
    int delivered, wrong_unit, registered_in_audit, dispatched_in_audit;
    bool refused; /* answered with an error: not acknowledged */
    int shard;    /* the intake it was submitted to: intake-<shard + 1> */
} ticket_t;

typedef struct run run_t;

/* An intake shard and the desk that submits to it. */
typedef struct shard {
    run_t *run;
    int n; /* intake-<n + 1> */
    submitter_t *submitter;
    size_t *tickets; /* the submitter's index -> the run's */
    size_t count, capacity;
} shard_t;
#define MAX_SHARDS 2

typedef struct delivery {
    char ticket[64];
    char unit[64];
    int64_t at_ms;
} delivery_t;

struct run {
    hosts_t *hosts;
    city_t *city;
    ticket_t *tickets;
    size_t count, capacity;
    /* Deliveries, appended by the units' thread. */
    pthread_mutex_t lock;
    delivery_t *deliveries;
    size_t delivery_count, delivery_capacity;
    atomic_int stop_units;
    /* One pool per router; the units' thread polls them, holding pool_lock
     * (the main thread takes it to connect a pool or move its sessions). */
    pthread_mutex_t pool_lock;
    unit_pool_t *pools[MAX_DISTRICTS];
    int district_count; /* districts the load submits to */
    /* Workers moved off their district's host: worker, host. */
    const char *moved_worker[4], *moved_host[4];
    size_t moved_count;
    shard_t shards[MAX_SHARDS];
    int shard_count;
    int next_shard;
};

/* --- the hosts and where each worker runs ---------------------------------- */

static const char *const host_names[] = {"city",  "d-chaoyang", "d-nanguan",     "d-kuancheng",
                                         "units", "d-xinghua",  "d-kuancheng-2", "city-2"};
#define PARTITION_HOSTS 5
#define TOPOLOGY_HOSTS 8

static const char *host_of(const run_t *run, const char *worker)
{
    for (size_t i = 0; i < run->moved_count; i++)
        if (strcmp(run->moved_worker[i], worker) == 0)
            return run->moved_host[i];
    if (strcmp(worker, "intake-1") == 0 || strcmp(worker, "audit") == 0)
        return "city";
    if (strcmp(worker, "intake-2") == 0)
        return "city-2";
    for (int d = 0; d < MAX_DISTRICTS; d++) {
        size_t n = strlen(districts[d]), len = strlen(worker);
        if (len > n && strcmp(worker + len - n, districts[d]) == 0 && worker[len - n - 1] == '-')
            return d == ADDED ? "d-xinghua" : host_names[1 + d];
    }
    return "units";
}

static void place(void *ctx, const char *worker, city_host_t *host)
{
    const run_t *run = ctx;
    const char *name = host_of(run, worker);
    host->netns = hosts_netns(run->hosts, name);
    host->address = hosts_address(run->hosts, name);
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
    out->at_ms = harness_now_ms();
    pthread_mutex_unlock(&run->lock);
}

static void *units_main(void *arg)
{
    run_t *run = arg;
    while (!atomic_load(&run->stop_units)) {
        pthread_mutex_lock(&run->pool_lock);
        for (int d = 0; d < MAX_DISTRICTS; d++)
            if (run->pools[d])
                unit_pool_poll(run->pools[d], 2, on_delivery, run);
        pthread_mutex_unlock(&run->pool_lock);
    }
    return NULL;
}

/* --- the callers' side ------------------------------------------------------ */

static void on_reply(void *ctx, size_t index, const Dispatch__Reply *reply)
{
    shard_t *shard = ctx;
    ticket_t *t = &shard->run->tickets[shard->tickets[index]];
    if (reply->body_case != DISPATCH__REPLY__BODY_SUBMIT) {
        t->refused = true;
        return;
    }
    snprintf(t->id, sizeof(t->id), "%s", reply->submit->ticket_id);
    t->acked_ms = harness_now_ms();
}

/* A ticket of district (-1: any) for intake shard (-1: the next in turn). */
static void add_ticket(run_t *run, int district, int shard_n)
{
    if (shard_n < 0) {
        shard_n = run->next_shard;
        run->next_shard = (run->next_shard + 1) % run->shard_count;
    }
    shard_t *shard = &run->shards[shard_n];
    if (run->count == run->capacity) {
        run->capacity = run->capacity ? 2 * run->capacity : 8192;
        run->tickets = realloc(run->tickets, run->capacity * sizeof(*run->tickets));
    }
    ticket_t *t = &run->tickets[run->count];
    *t = (ticket_t){.district = district >= 0 ? district : rand() % run->district_count,
                    .category = rand() % CITYDATA_CITYWIDE_COUNT,
                    .shard = shard_n};
    char request_id[32], phone[32];
    snprintf(request_id, sizeof(request_id), "hosts-%zu", run->count);
    snprintf(phone, sizeof(phone), "139%08zu", run->count);
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    submit.client_request_id = request_id;
    submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    submit.kind = DISPATCH__KIND__KIND_HELP;
    submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    submit.district = (char *)districts[t->district];
    submit.category = (char *)citydata_citywide[t->category][0];
    submit.caller_phone = phone;
    submit.description = "hosts run";
    if (shard->count == shard->capacity) {
        shard->capacity = shard->capacity ? 2 * shard->capacity : 8192;
        shard->tickets = realloc(shard->tickets, shard->capacity * sizeof(*shard->tickets));
    }
    submitter_add(shard->submitter, "", &submit); /* the key's actor */
    shard->tickets[shard->count++] = run->count++;
}

/* Sends what is queued to every shard and collects the answers. */
static int submit_all(run_t *run, int deadline_ms)
{
    for (int i = 0; i < run->shard_count; i++) {
        int rc = submitter_run(run->shards[i].submitter, 5000, deadline_ms, on_reply, NULL,
                               &run->shards[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
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

#define SERIES_MAX 256 /* samples kept for the 5 s series */

typedef struct outbox_peak {
    uint64_t total, to_cut;
    /* The intake's outbox to the cut district, the last sample of each 5 s
     * from the start. */
    uint64_t series[SERIES_MAX];
    int64_t t0;
} outbox_peak_t;

static void sample_outboxes(run_t *run, outbox_peak_t *peak)
{
    static const char *const kinds[] = {"router", "escalation"};
    char dir[600], name[80], cut_router[80];
    snprintf(cut_router, sizeof(cut_router), "router-%s", districts[CUT]);
    uint64_t to_cut = 0;
    uint64_t total = outbox_entries(city_state_dir(run->city, "intake-1", dir, sizeof(dir)),
                                    cut_router, &to_cut);
    total += outbox_entries(city_state_dir(run->city, "audit", dir, sizeof(dir)), NULL, NULL);
    if (run->shard_count > 1)
        total +=
            outbox_entries(city_state_dir(run->city, "intake-2", dir, sizeof(dir)), NULL, NULL);
    for (int d = 0; d < run->district_count; d++) {
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof(name), "%s-%s", kinds[k], districts[d]);
            total += outbox_entries(city_state_dir(run->city, name, dir, sizeof(dir)), NULL, NULL);
        }
    }
    if (total > peak->total)
        peak->total = total;
    if (to_cut > peak->to_cut)
        peak->to_cut = to_cut;
    int64_t slot = (harness_now_ms() - peak->t0) / 5000;
    if (slot >= 0 && slot < SERIES_MAX)
        peak->series[slot] = to_cut;
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
        if (t->acked_ms && t->acked_ms >= from && t->acked_ms < to && t->district != skip &&
            t->delivered)
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
        if (strcmp(d->unit, citydata_citywide[t->category][1]) != 0)
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
    return harness_read_text(path);
}

/* --- the run ---------------------------------------------------------------- */

typedef struct scenario {
    /* options */
    bool topology;
    double rate;
    int warmup_s, before_s, partition_s, catch_up_max_s, move_gap_s, after_s;
    /* partition */
    int64_t t0, before_from, cut_at, heal_at, caught_up_at;
    bool cut, healed;
    /* then the units host cut off from kuancheng's host */
    int units_cut_s;
    int64_t units_cut_at, units_heal_at, units_caught_up_at;
    /* topology */
    int64_t add_at, hup_at, learned_at, move_at, moved_at, move_stop_at, stop_at;
    bool added, moving, moved;
    char *rules; /* of the added district */
    outbox_peak_t peak;
    index_map_t map;
    size_t folded, strays;
} scenario_t;

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Rebuilds the id map and folds every delivery so far into the tickets. */
static void refold(run_t *run, scenario_t *sc)
{
    free(sc->map.slots);
    map_build(&sc->map, run);
    sc->folded = 0;
    for (size_t i = 0; i < run->count; i++)
        run->tickets[i].delivered = run->tickets[i].wrong_unit = 0;
    sc->strays = fold_deliveries(run, &sc->map, &sc->folded);
}

static double seconds(const scenario_t *sc, int64_t at)
{
    return (double)(at - sc->t0) / 1000.0;
}

/* partition: true when the load should stop. */
static bool partition_tick(run_t *run, scenario_t *sc, int64_t now)
{
    const char *host = host_names[1 + CUT];
    if (!sc->cut && now >= sc->cut_at) {
        if (hosts_link(run->hosts, host, false) < 0) {
            fprintf(stderr, "FAIL: cannot cut %s off\n", host);
            exit(1);
        }
        sc->cut = true;
        printf("hosts: %s cut off at %.1f s (%zu tickets so far)\n", host, seconds(sc, now),
               run->count);
    }
    if (sc->cut && !sc->healed && now >= sc->heal_at) {
        hosts_link(run->hosts, host, true);
        sc->healed = true;
        printf("hosts: %s healed at %.1f s (%zu tickets so far)\n", host, seconds(sc, now),
               run->count);
    }
    if (!sc->healed)
        return false;
    /* Caught up: every ticket of the cut district acknowledged before the
     * heal has reached its unit. */
    refold(run, sc);
    int64_t last = 0;
    for (size_t i = 0; i < run->count; i++) {
        const ticket_t *t = &run->tickets[i];
        if (t->district != CUT || !t->acked_ms || t->acked_ms >= sc->heal_at)
            continue;
        if (!t->delivered)
            return now > sc->heal_at + sc->catch_up_max_s * 1000LL;
        if (t->delivered_ms > last)
            last = t->delivered_ms;
    }
    if (!sc->caught_up_at) {
        sc->caught_up_at = last;
        printf("hosts: %s caught up %.1f s after the heal\n", districts[CUT],
               (double)(last - sc->heal_at) / 1000.0);
    }
    if (sc->units_cut_s <= 0)
        return true;
    /* The units host cut off from one district's host: its units must
     * catch up their queues when they reach their router again. */
    const char *district_host = host_names[1 + MOVED];
    if (!sc->units_cut_at) {
        if (hosts_block(run->hosts, "units", district_host, true) < 0) {
            fprintf(stderr, "FAIL: cannot cut units off from %s\n", district_host);
            exit(1);
        }
        sc->units_cut_at = now;
        printf("hosts: units cut off from %s at %.1f s\n", district_host, seconds(sc, now));
        return false;
    }
    if (!sc->units_heal_at) {
        if (now < sc->units_cut_at + sc->units_cut_s * 1000LL)
            return false;
        hosts_block(run->hosts, "units", district_host, false);
        sc->units_heal_at = now;
        printf("hosts: units and %s joined again at %.1f s\n", district_host, seconds(sc, now));
    }
    last = 0;
    for (size_t i = 0; i < run->count; i++) {
        const ticket_t *t = &run->tickets[i];
        if (t->district != MOVED || !t->acked_ms || t->acked_ms >= sc->units_heal_at)
            continue;
        if (!t->delivered)
            return now > sc->units_heal_at + sc->catch_up_max_s * 1000LL;
        if (t->delivered_ms > last)
            last = t->delivered_ms;
    }
    sc->units_caught_up_at = last;
    return true;
}

/* Rules of the added district: the city-wide categories, to the same
 * units as everywhere. */
static char *added_rules(void)
{
    size_t len = 256 + CITYDATA_CITYWIDE_COUNT * 96;
    char *text = malloc(len);
    size_t used = (size_t)snprintf(text, len, "category,area,lead_unit,assisting_units,priority\n");
    for (int c = 0; c < CITYDATA_CITYWIDE_COUNT; c++)
        used += (size_t)snprintf(text + used, len - used, "%s,,%s,,0\n", citydata_citywide[c][0],
                                 citydata_citywide[c][1]);
    return text;
}

static void connect_pool(run_t *run, int d, void *zmq)
{
    char router[80];
    snprintf(router, sizeof(router), "router-%s", districts[d]);
    const char *url = city_endpoint(run->city, router, "units");
    pthread_mutex_lock(&run->pool_lock);
    if (!run->pools[d])
        unit_pool_new(zmq, run->city, CITYDATA_CITYWIDE_COUNT, &run->pools[d]);
    /* A unit whose router moved reconnects where it is now, acknowledging
     * what it applied: nothing is delivered twice to it. */
    for (int c = 0; c < CITYDATA_CITYWIDE_COUNT; c++)
        unit_pool_connect(run->pools[d], url, citydata_citywide[c][1],
                          unit_pool_applied(run->pools[d], citydata_citywide[c][1]));
    pthread_mutex_unlock(&run->pool_lock);
}

/* Copies a stopped worker's LMDB environment with mdb_env_copy2, as onto
 * the new host's disk, and puts the copy where the worker's state dir is
 * (the same path on every host, as the topology says); the original is
 * kept aside. */
static int copy_state(run_t *run, const char *worker)
{
    char dir[600], copy[700], aside[700];
    city_state_dir(run->city, worker, dir, sizeof(dir));
    snprintf(copy, sizeof(copy), "%s.copy", dir);
    snprintf(aside, sizeof(aside), "%s.old-host", dir);
    if (mkdir(copy, 0750) < 0)
        return -errno;
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc == 0) {
        mdb_env_set_maxdbs(env, 64);
        rc = mdb_env_open(env, dir, MDB_RDONLY, 0);
        if (rc == 0)
            rc = mdb_env_copy2(env, copy, 0);
        mdb_env_close(env);
    }
    if (rc != 0)
        return -rc;
    if (rename(dir, aside) < 0 || rename(copy, dir) < 0)
        return -errno;
    return 0;
}

/* Every intake shard is sent sig. */
static void signal_intakes(run_t *run, int sig)
{
    for (int i = 0; i < run->shard_count; i++) {
        char name[32];
        snprintf(name, sizeof(name), "intake-%d", i + 1);
        city_signal(run->city, name, sig);
    }
}

/* The first ticket of district each shard acknowledged; true when every
 * shard has one (at[shard] then holds when). */
static bool every_shard_took(const run_t *run, int district, int64_t at[MAX_SHARDS])
{
    bool all = true;
    for (int n = 0; n < run->shard_count; n++) {
        at[n] = 0;
        for (size_t i = 0; i < run->count && !at[n]; i++)
            if (run->tickets[i].district == district && run->tickets[i].shard == n)
                at[n] = run->tickets[i].acked_ms;
        all = all && at[n];
    }
    return all;
}

static bool topology_tick(run_t *run, scenario_t *sc, int64_t now, void *zmq)
{
    if (!sc->added && now >= sc->add_at) {
        sc->rules = added_rules(); /* the city points to it until it ends */
        if (city_add_district(run->city, districts[ADDED], sc->rules) < 0 ||
            city_start(run->city, "router-xinghua") < 0 ||
            city_start(run->city, "escalation-xinghua") < 0) {
            fprintf(stderr, "FAIL: district xinghua did not start on its host\n");
            exit(1);
        }
        connect_pool(run, ADDED, zmq);
        /* Before they are told, the intakes do not know xinghua. */
        size_t probe = run->count;
        for (int n = 0; n < run->shard_count; n++)
            add_ticket(run, ADDED, n);
        bool refused = submit_all(run, 60000) == 0;
        for (size_t i = probe; i < run->count; i++)
            refused = refused && run->tickets[i].refused;
        if (!refused) {
            fprintf(stderr, "FAIL: an intake took a xinghua ticket before its SIGHUP\n");
            exit(1);
        }
        sc->hup_at = harness_now_ms();
        signal_intakes(run, SIGHUP);
        sc->added = true;
        printf("hosts: xinghua added on d-xinghua at %.1f s; %d intake shard(s) refused it, "
               "then were told (SIGHUP)\n",
               seconds(sc, now), run->shard_count);
    }
    if (sc->added && !sc->learned_at) {
        /* A probe each tick to each shard until both take xinghua. */
        int64_t at[MAX_SHARDS];
        if (every_shard_took(run, ADDED, at)) {
            sc->learned_at = at[0] > at[run->shard_count - 1] ? at[0] : at[run->shard_count - 1];
            run->district_count = MAX_DISTRICTS;
            sc->move_at = now + sc->before_s * 500LL;
            size_t refused = 0;
            for (size_t j = 0; j < run->count; j++)
                refused += run->tickets[j].refused;
            printf("hosts: every intake shard serves xinghua %.2f s after the SIGHUP (%zu probes "
                   "refused, those before it)\n",
                   (double)(sc->learned_at - sc->hup_at) / 1000.0, refused);
        } else {
            if (now - sc->hup_at > 30000) {
                fprintf(stderr, "FAIL: the intakes did not take xinghua within 30 s of SIGHUP\n");
                exit(1);
            }
            for (int n = 0; n < run->shard_count; n++)
                if (!at[n])
                    add_ticket(run, ADDED, n);
        }
    }
    if (sc->learned_at && !sc->moving && now >= sc->move_at) {
        city_stop(run->city, "router-kuancheng", SIGTERM);
        city_stop(run->city, "escalation-kuancheng", SIGTERM);
        sc->moving = true;
        sc->move_stop_at = harness_now_ms();
        printf("hosts: kuancheng stopped on d-kuancheng at %.1f s\n", seconds(sc, now));
    }
    if (sc->moving && !sc->moved && now >= sc->move_stop_at + sc->move_gap_s * 1000LL) {
        run->moved_worker[0] = "router-kuancheng";
        run->moved_worker[1] = "escalation-kuancheng";
        run->moved_host[0] = run->moved_host[1] = "d-kuancheng-2";
        run->moved_count = 2;
        if (copy_state(run, "router-kuancheng") < 0 ||
            copy_state(run, "escalation-kuancheng") < 0 ||
            city_replace(run->city, "router-kuancheng") < 0 ||
            city_replace(run->city, "escalation-kuancheng") < 0 ||
            city_start(run->city, "router-kuancheng") < 0 ||
            city_start(run->city, "escalation-kuancheng") < 0) {
            fprintf(stderr, "FAIL: kuancheng did not start on d-kuancheng-2\n");
            exit(1);
        }
        /* Nothing reaches the old address any more. */
        hosts_link(run->hosts, "d-kuancheng", false);
        connect_pool(run, MOVED, zmq);
        signal_intakes(run, SIGHUP);
        sc->moved = true;
        sc->moved_at = harness_now_ms();
        sc->stop_at = sc->moved_at + sc->after_s * 1000LL;
        printf("hosts: kuancheng started on d-kuancheng-2 (%s) at %.1f s from a copy of its "
               "state; the intakes told (SIGHUP)\n",
               city_endpoint(run->city, "router-kuancheng", "units"), seconds(sc, sc->moved_at));
    }
    return sc->moved && now >= sc->stop_at;
}

int main(int argc, char **argv)
{
    scenario_t sc = {.rate = 50,
                     .warmup_s = 5,
                     .before_s = 20,
                     .partition_s = 60,
                     .catch_up_max_s = 120,
                     .move_gap_s = 5,
                     .after_s = 20};
    unsigned seed = (unsigned)time(NULL);
    bool keep = false;
    static const struct option options[] = {
        {"scenario", required_argument, NULL, 'S'},
        {"rate", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"before", required_argument, NULL, 'b'},
        {"partition", required_argument, NULL, 'p'},
        {"catch-up-max", required_argument, NULL, 'c'},
        {"move-gap", required_argument, NULL, 'g'},
        {"after", required_argument, NULL, 'a'},
        {"units-cut", required_argument, NULL, 'u'},
        {"seed", required_argument, NULL, 's'},
        {"keep", no_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'S':
            if (strcmp(optarg, "topology") != 0 && strcmp(optarg, "partition") != 0)
                return 2;
            sc.topology = strcmp(optarg, "topology") == 0;
            break;
        case 'r':
            sc.rate = strtod(optarg, NULL);
            break;
        case 'w':
            sc.warmup_s = atoi(optarg);
            break;
        case 'b':
            sc.before_s = atoi(optarg);
            break;
        case 'p':
            sc.partition_s = atoi(optarg);
            break;
        case 'c':
            sc.catch_up_max_s = atoi(optarg);
            break;
        case 'g':
            sc.move_gap_s = atoi(optarg);
            break;
        case 'a':
            sc.after_s = atoi(optarg);
            break;
        case 'u':
            sc.units_cut_s = atoi(optarg);
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

    run_t run = {.lock = PTHREAD_MUTEX_INITIALIZER,
                 .pool_lock = PTHREAD_MUTEX_INITIALIZER,
                 .district_count = CITYDATA_DISTRICTS};
    char why[256] = "";
    const hosts_faults_t faults = {.delay_ms = 50, .jitter_ms = 20, .loss_percent = 2.0};
    size_t host_count = sc.topology ? TOPOLOGY_HOSTS : PARTITION_HOSTS;
    int rc = hosts_new(host_names, host_count, &faults, &run.hosts, why, sizeof(why));
    if (rc < 0) {
        printf("SKIP: network namespaces cannot be made here: %s\n", why);
        return SKIP;
    }
    printf("hosts: %zu namespaces behind a switch with 50 ms +- 20 ms delay and 2 %% loss per "
           "frame; %s; seed %u, %.0f tickets/s offered\n",
           host_count, sc.topology ? "topology changes" : "partition", seed, sc.rate);

    char *units_csv = citydata_units_csv();
    char *rules[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        rules[d] = citydata_rules_csv(districts[d]);
    char *deadlines = read_data("deadlines.ini"), *calendar = read_data("calendar.ini");
    if (!deadlines || !calendar) {
        fprintf(stderr, "FAIL: deadlines.ini / calendar.ini not found ($DEPLOY_DATA)\n");
        return 1;
    }
    const char *files[] = {"deadlines.ini", deadlines, "calendar.ini", calendar, NULL};
    city_options_t city_options = {
        .districts = districts,
        .district_count = CITYDATA_DISTRICTS,
        .units_csv = units_csv,
        .rules_csv = (const char *const *)rules,
        .escalation = true,
        .escalation_files = files,
        .audit = true,
        .place = place,
        .place_ctx = &run,
        .intakes = sc.topology ? 2 : 1,
    };
    bool ok = false;
    void *zmq = NULL;
    pthread_t units_thread;
    bool units_running = false;
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
    zmq = zmq_ctx_new();
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        connect_pool(&run, d, zmq);
    pthread_create(&units_thread, NULL, units_main, &run);
    units_running = true;
    run.shard_count = sc.topology ? 2 : 1;
    for (int n = 0; n < run.shard_count; n++) {
        char name[32];
        snprintf(name, sizeof(name), "intake-%d", n + 1);
        const char *url = city_endpoint(run.city, name, "request");
        run.shards[n] = (shard_t){.run = &run, .n = n};
        submitter_new(zmq, url, 512, test_keys(run.city, "agent-7", url), &run.shards[n].submitter);
    }

    /* The load: every tick, the tickets the rate owes by now, then their
     * answers; the outboxes sampled each tick. */
    sc.t0 = sc.peak.t0 = harness_now_ms();
    sc.before_from = sc.t0 + sc.warmup_s * 1000LL;
    sc.cut_at = sc.add_at = sc.before_from + sc.before_s * 1000LL;
    sc.heal_at = sc.cut_at + sc.partition_s * 1000LL;
    for (int64_t next_tick = sc.t0;;) {
        int64_t now = harness_now_ms();
        bool stop =
            sc.topology ? topology_tick(&run, &sc, now, zmq) : partition_tick(&run, &sc, now);
        if (stop)
            break;
        size_t owed = (size_t)((double)(now - sc.t0) * sc.rate / 1000.0);
        while (run.count < owed)
            add_ticket(&run, -1, -1);
        if (submit_all(&run, 120000) < 0) {
            fprintf(stderr, "FAIL: submissions unanswered for 120 s\n");
            goto out;
        }
        sample_outboxes(&run, &sc.peak);
        next_tick += TICK_MS;
        if (next_tick < harness_now_ms())
            next_tick = harness_now_ms();
        sleep_ms(next_tick - harness_now_ms()); /* the pace of the load, not a wait for readiness */
    }
    int64_t load_ms = harness_now_ms() - sc.t0;
    printf("hosts: load stopped after %.1f s: %zu tickets, %.1f/s\n", (double)load_ms / 1000.0,
           run.count, (double)run.count * 1000.0 / (double)load_ms);

    /* Drain: every acknowledged ticket delivered, and in the audit. */
    refold(&run, &sc);
    size_t missing = run.count, audit_strays = 0, audit_missing = run.count;
    for (int64_t deadline = harness_now_ms() + 120000; harness_now_ms() < deadline;) {
        sc.strays += fold_deliveries(&run, &sc.map, &sc.folded);
        missing = 0;
        for (size_t i = 0; i < run.count; i++)
            missing += run.tickets[i].acked_ms && run.tickets[i].delivered == 0;
        if (missing == 0) {
            read_audit(&run, &sc.map, &audit_strays);
            audit_missing = 0;
            for (size_t i = 0; i < run.count; i++)
                audit_missing += run.tickets[i].acked_ms && (!run.tickets[i].registered_in_audit ||
                                                             !run.tickets[i].dispatched_in_audit);
            if (audit_missing == 0)
                break;
        }
        sleep_ms(200); /* polling a condition, with a deadline */
    }
    sleep_ms(1000); /* anything sent twice would be arriving by now: one more look */
    sc.strays += fold_deliveries(&run, &sc.map, &sc.folded);
    long records = read_audit(&run, &sc.map, &audit_strays);
    trail_verdict_t verdict = {0};
    char audit_dir[600];
    int verify_rc = trail_verify_dir(
        city_state_dir(run.city, "audit", audit_dir, sizeof(audit_dir)), 0, 0, &verdict);

    size_t unacked = 0, refused = 0, twice = 0, wrong = 0, audit_twice = 0;
    size_t per_district[MAX_DISTRICTS] = {0}, waited_move = 0;
    size_t per_shard[MAX_SHARDS] = {0}, wrong_prefix = 0;
    missing = 0;
    audit_missing = 0;
    for (size_t i = 0; i < run.count; i++) {
        const ticket_t *t = &run.tickets[i];
        if (t->refused) {
            refused++;
            continue;
        }
        if (!t->acked_ms) {
            unacked++;
            continue;
        }
        per_district[t->district]++;
        per_shard[t->shard]++;
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "T%d", t->shard + 1);
        wrong_prefix += strncmp(t->id, prefix, strlen(prefix)) != 0;
        waited_move += t->district == MOVED && t->acked_ms >= sc.move_stop_at && sc.move_stop_at &&
                       t->acked_ms < sc.moved_at;
        missing += t->delivered == 0;
        twice += t->delivered > 1;
        wrong += t->wrong_unit > 0;
        audit_missing += !t->registered_in_audit || !t->dispatched_in_audit;
        audit_twice += t->registered_in_audit > 1 || t->dispatched_in_audit > 1;
    }
    printf("hosts: %zu tickets acknowledged (", run.count - unacked - refused);
    for (int d = 0; d < run.district_count; d++)
        printf("%s%s %zu", d ? ", " : "", districts[d], per_district[d]);
    printf("), %zu refused, %zu unanswered; delivered: missing %zu, twice %zu, wrong unit %zu, "
           "strays %zu\n",
           refused, unacked, missing, twice, wrong, sc.strays);
    printf("hosts: audit: %ld records; missing %zu, twice %zu, strays %zu; chain %s (%llu "
           "records checked%s%s)\n",
           records, audit_missing, audit_twice, audit_strays,
           verify_rc == 0 && verdict.broken_seq == 0 ? "verifies" : "BROKEN",
           (unsigned long long)verdict.checked, verdict.problem[0] ? ": " : "", verdict.problem);
    ok = unacked == 0 && missing == 0 && twice == 0 && wrong == 0 && sc.strays == 0 &&
         audit_missing == 0 && audit_twice == 0 && audit_strays == 0 && verify_rc == 0 &&
         verdict.broken_seq == 0;

    if (sc.topology) {
        size_t n_before, n_after;
        int64_t p99_before = p99(&run, sc.before_from, sc.add_at, -1, &n_before);
        int64_t p99_after = p99(&run, sc.moved_at, sc.stop_at, -1, &n_after);
        printf("hosts: FIGURES topology: xinghua served by every intake %.2f s after their SIGHUP; "
               "kuancheng down %.1f s for its move (%zu of its tickets acknowledged meanwhile, "
               "all delivered once after it); p99 all districts before %lld ms (%zu), after the "
               "move %lld ms (%zu); peak outbox depth %llu entries\n",
               (double)(sc.learned_at - sc.hup_at) / 1000.0,
               (double)(sc.moved_at - sc.move_stop_at) / 1000.0, waited_move, (long long)p99_before,
               n_before, (long long)p99_after, n_after, (unsigned long long)sc.peak.total);
        printf("hosts: intake shards: intake-1 on city (T1) %zu tickets, intake-2 on city-2 (T2) "
               "%zu; %zu with another shard's prefix\n",
               per_shard[0], per_shard[1], wrong_prefix);
        ok = ok && per_district[ADDED] > 0 && waited_move > 0 && per_shard[0] > 0 &&
             per_shard[1] > 0 && wrong_prefix == 0;
    } else {
        size_t n_before, n_during, n_all;
        int64_t p99_before = p99(&run, sc.before_from, sc.cut_at, CUT, &n_before);
        int64_t p99_during = p99(&run, sc.cut_at, sc.heal_at, CUT, &n_during);
        int64_t p99_all = p99(&run, sc.before_from, sc.cut_at, -1, &n_all);
        printf("hosts: p99 of the other districts per 5 s from the start, [during] (ms):");
        for (int64_t from = sc.t0; from < sc.t0 + load_ms; from += 5000) {
            size_t n;
            bool during = from >= sc.cut_at && from < sc.heal_at;
            printf(" %s%lld%s", during ? "[" : "", (long long)p99(&run, from, from + 5000, CUT, &n),
                   during ? "]" : "");
        }
        printf("\n");
        printf("hosts: entries in intake-1's outbox to router-%s per 5 s, [during]:",
               districts[CUT]);
        for (int64_t slot = 0; slot < SERIES_MAX && slot * 5000 < load_ms; slot++) {
            int64_t from = sc.t0 + slot * 5000;
            bool during = from >= sc.cut_at && from < sc.heal_at;
            printf(" %s%llu%s", during ? "[" : "", (unsigned long long)sc.peak.series[slot],
                   during ? "]" : "");
        }
        printf("\n");
        double catch_up_s = sc.caught_up_at ? (double)(sc.caught_up_at - sc.heal_at) / 1000.0 : -1;
        printf("hosts: p99 acknowledged -> delivered, other districts: before %lld ms (%zu "
               "tickets), during the partition %lld ms (%zu tickets); all districts before %lld "
               "ms (%zu)\n",
               (long long)p99_before, n_before, (long long)p99_during, n_during, (long long)p99_all,
               n_all);
        printf("hosts: FIGURES partition %d s at %.0f tickets/s offered: caught up %.1f s after "
               "the heal; peak outbox depth %llu entries in all workers, %llu on intake -> "
               "router-%s\n",
               sc.partition_s, sc.rate, catch_up_s, (unsigned long long)sc.peak.total,
               (unsigned long long)sc.peak.to_cut, districts[CUT]);
        ok = ok && sc.caught_up_at != 0 && n_before > 0 && n_during > 0 &&
             p99_during <= 2 * p99_before;
        if (sc.units_cut_s > 0) {
            size_t waited = 0;
            for (size_t i = 0; i < run.count; i++)
                waited += run.tickets[i].district == MOVED &&
                          run.tickets[i].acked_ms >= sc.units_cut_at &&
                          run.tickets[i].acked_ms < sc.units_heal_at;
            printf("hosts: FIGURES units cut off from d-%s for %d s: %zu of its tickets waited in "
                   "the router; the units caught up %.1f s after they could reach it again\n",
                   districts[MOVED], sc.units_cut_s, waited,
                   sc.units_caught_up_at
                       ? (double)(sc.units_caught_up_at - sc.units_heal_at) / 1000.0
                       : -1.0);
            ok = ok && sc.units_caught_up_at != 0 && waited > 0;
        }
    }
    if (!ok)
        printf("FAIL: see above (every count of a failure must be 0%s)\n",
               sc.topology ? "; xinghua served; kuancheng's tickets waited and were delivered; "
                             "both shards served"
                           : "; p99 during <= 2x before; caught up");

out:
    free(sc.map.slots);
    free(sc.rules);
    if (units_running) {
        atomic_store(&run.stop_units, 1);
        pthread_join(units_thread, NULL);
    }
    for (int n = 0; n < MAX_SHARDS; n++) {
        submitter_destroy(&run.shards[n].submitter);
        free(run.shards[n].tickets);
    }
    for (int d = 0; d < MAX_DISTRICTS; d++)
        unit_pool_destroy(&run.pools[d]);
    if (zmq)
        zmq_ctx_term(zmq);
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

#include "worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "ready.h"

#define WORKER_MAX_ENDPOINTS 8
#define WATCHDOG_MS 1000

struct worker {
    config_t *config;
    const config_worker_t *self;
    void *zmq;
    auth_t *auth; /* NULL with [city] security = plain */
    store_t *store;
    bus_t *bus;
    ready_endpoint_t endpoints[WORKER_MAX_ENDPOINTS];
    char *urls[WORKER_MAX_ENDPOINTS];
    /* The client endpoints among them (NULL for others), whose cuts the
     * loop logs; they belong to the application. */
    endpoint_t *served[WORKER_MAX_ENDPOINTS];
    size_t endpoint_count;
    loop_check_t checks[WORKER_MAX_CHECKS];
    size_t check_count;
    /* What a reload reads again: the file and the --set overrides. */
    const char *config_path;
    char **sets;
    size_t set_count;
    config_t **retired; /* configs replaced by reloads, freed at exit */
    size_t retired_count;
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_reload_signal(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

const config_t *worker_config(const worker_t *worker)
{
    return worker->config;
}

const config_worker_t *worker_self(const worker_t *worker)
{
    return worker->self;
}

store_t *worker_store(worker_t *worker)
{
    return worker->store;
}

bus_t *worker_bus(worker_t *worker)
{
    return worker->bus;
}

void *worker_zmq(worker_t *worker)
{
    return worker->zmq;
}

auth_t *worker_auth(worker_t *worker)
{
    return worker->auth;
}

bus_link_t *worker_link_to(worker_t *worker, const char *kind, const char *district)
{
    for (size_t i = 0; i < worker->self->link_count; i++) {
        const config_worker_t *peer = config_worker_find(worker->config, worker->self->links[i]);
        if (strcmp(peer->kind, kind) == 0 &&
            (!district || (peer->district && strcmp(peer->district, district) == 0)))
            return bus_link_find(worker->bus, peer->name);
    }
    return NULL;
}

int worker_announce(worker_t *worker, const char *name, const char *url)
{
    if (worker->endpoint_count == WORKER_MAX_ENDPOINTS)
        return -ENOSPC;
    char *copy = strdup(url);
    if (!copy)
        return -ENOMEM;
    worker->urls[worker->endpoint_count] = copy;
    worker->endpoints[worker->endpoint_count++] = (ready_endpoint_t){name, copy};
    return 0;
}

int worker_endpoint(worker_t *worker, const char *name, const char *url, int64_t max_message,
                    size_t max_queue, endpoint_t **ret)
{
    int rc = endpoint_new(worker->zmq, url, max_message, max_queue, worker->auth, ret);
    if (rc < 0) {
        log_error("%s endpoint %s: %s", name, url, strerror(-rc));
        return rc;
    }
    rc = worker_announce(worker, name, endpoint_url(*ret));
    if (rc == 0)
        worker->served[worker->endpoint_count - 1] = *ret;
    return rc;
}

int worker_check_add(worker_t *worker, loop_check_fn fn, void *ctx)
{
    if (worker->check_count == WORKER_MAX_CHECKS)
        return -ENOSPC;
    worker->checks[worker->check_count++] = (loop_check_t){fn, ctx};
    return 0;
}

/* The usage; with help (--help) on stdout and exit 0, else on stderr, 2. */
static int usage(const worker_kind_t *kind, bool help)
{
    FILE *out = help ? stdout : stderr;
    fprintf(out,
            "usage: dispatch-%s --config FILE --name NAME [--set KEY=VALUE]... [--ready-fd N]\n"
            "       [--log-level error|warn|info|debug] [--clock "
            "real|sim:FILE|fast:SPEED@MS[/ANCHOR_MS]]\n"
            "       [--no-sync] [--accept-incarnation PEER]...%s\n",
            kind->kind, kind->options_help ? " [OPTIONS]" : "");
    if (help)
        fprintf(out, "  --set KEY=VALUE   a topology key for this run: worker.<name>.<key>, "
                     "city.<key>,\n"
                     "                    district.<id>.<key> (common/config.h)\n");
    if (kind->options_help)
        fprintf(out, "options of dispatch-%s:\n%s", kind->kind, kind->options_help);
    return help ? 0 : 2;
}

/* A --set of KEY that names an option of the kind: the hint to give it. */
static void option_hint(const worker_kind_t *kind, const char *key)
{
    const char *last = strrchr(key, '.');
    char option[96];
    int n = snprintf(option, sizeof(option), "--%s", last ? last + 1 : key);
    if (n <= 2 || (size_t)n >= sizeof(option) || !kind->options_help)
        return;
    for (char *p = option; *p; p++)
        if (*p == '_')
            *p = '-';
    const char *at = strstr(kind->options_help, option);
    if (at && (at[n] == ' ' || at[n] == '=' || at[n] == '\n'))
        log_error("%s is an option of dispatch-%s, not a topology key: give %s", key, kind->kind,
                  option);
}

static void incarnation_text(const unsigned char *incarnation,
                             char text[2 * BUS_INCARNATION_SIZE + 1])
{
    if (!incarnation) {
        snprintf(text, 2 * BUS_INCARNATION_SIZE + 1, "none");
        return;
    }
    for (size_t i = 0; i < BUS_INCARNATION_SIZE; i++)
        snprintf(text + 2 * i, 3, "%02x", incarnation[i]);
}

/* The bus does not log: what it reports is said here. */
static void on_bus_event(void *ctx, const bus_event_t *event)
{
    char known[2 * BUS_INCARNATION_SIZE + 1], offered[2 * BUS_INCARNATION_SIZE + 1];
    incarnation_text(event->known, known);
    incarnation_text(event->offered, offered);
    const char *peer = event->peer_id ? event->peer_id : "-";
    switch (event->kind) {
    case BUS_EVENT_DIVERGED:
        log_error("bus: link with %s diverged (%s): known incarnation %s, now %s%s%s; nothing is "
                  "applied or deleted until an operator accepts it: `dispatchctl links accept %s "
                  "%s` or a restart with --accept-incarnation %s",
                  peer, bus_reason_word(event->reason), known, offered,
                  event->renamed_from ? ", which belongs to " : "",
                  event->renamed_from ? event->renamed_from : "", (const char *)ctx, peer, peer);
        break;
    case BUS_EVENT_REFUSED:
        log_error("bus: %s refuses this instance's incarnation: accept it on %s", peer, peer);
        break;
    case BUS_EVENT_RESUMED:
        log_info("bus: %s accepts this instance again", peer);
        break;
    case BUS_EVENT_ACCEPTED:
        log_warn("bus: link with %s: incarnation %s accepted (%s), was %s", peer, offered,
                 bus_reason_word(event->reason), known);
        break;
    case BUS_EVENT_RECONNECTED:
        log_warn("bus: link to %s silent: new socket", peer);
        break;
    case BUS_EVENT_DEAD_DROPPED:
        log_warn("bus: %llu dead letters dropped, the oldest, to keep bus.dead in bounds",
                 (unsigned long long)event->count);
        break;
    case BUS_EVENT_FORGED:
        log_error("bus: a frame named %s came with %s%s%s: dropped (a link is accepted only with "
                  "its sender's own key)",
                  peer, *event->key_actor ? "the key of " : "a key not in the directory",
                  event->key_actor, "");
        break;
    }
}

static int open_links(worker_t *worker)
{
    for (size_t i = 0; i < worker->self->link_count; i++) {
        const char *peer = worker->self->links[i];
        const config_worker_t *target = config_worker_find(worker->config, peer);
        int rc = bus_link_open(worker->bus, peer, target->bus, NULL);
        if (rc < 0) {
            log_error("link to %s (%s): %s", peer, target->bus, store_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* Handshakes the ZAP handler refused since the last call: the client only
 * sees a timeout, so the server says who knocked. */
static void log_refusals(worker_t *worker)
{
    if (!worker->auth)
        return;
    auth_refusal_t refusals[AUTH_REFUSALS_MAX];
    uint64_t dropped = 0;
    size_t n = auth_take_refusals(worker->auth, refusals, AUTH_REFUSALS_MAX, &dropped);
    for (size_t i = 0; i < n; i++)
        log_warn("refused %s handshake from %s: key %s is not in the key directory",
                 refusals[i].mechanism, refusals[i].address,
                 refusals[i].key[0] ? refusals[i].key : "(none)");
    if (dropped)
        log_warn("refused %llu more handshakes", (unsigned long long)dropped);
}

/* Connections the client endpoints cut for flooding them with malformed
 * requests (endpoint.h). */
static void log_cuts(worker_t *worker)
{
    for (size_t i = 0; i < worker->endpoint_count; i++) {
        endpoint_cut_t cuts[ENDPOINT_CUTS_MAX];
        size_t n =
            worker->served[i] ? endpoint_take_cuts(worker->served[i], cuts, ENDPOINT_CUTS_MAX) : 0;
        for (size_t c = 0; c < n; c++) {
            char suspended[160] = "";
            if (cuts[c].suspended_ms)
                snprintf(suspended, sizeof(suspended),
                         "; key %.64s refused new connections for %d s",
                         cuts[c].actor[0] ? cuts[c].actor : "(unknown)",
                         (cuts[c].suspended_ms + 999) / 1000);
            log_warn("%s endpoint: cut the connection of %s from %s: %d malformed requests "
                     "within %d ms%s",
                     worker->endpoints[i].name, cuts[c].actor[0] ? cuts[c].actor : "a client",
                     cuts[c].address, ENDPOINT_STRIKES, ENDPOINT_STRIKE_WINDOW_MS, suspended);
        }
    }
}

/* The topology file with the --set overrides, as at start. */
static int load_topology(worker_t *worker, config_t **ret)
{
    char err[512];
    config_t *config;
    int rc = config_load(worker->config_path, &config, err, sizeof(err));
    if (rc < 0) {
        log_error("%s", err);
        return rc;
    }
    for (size_t i = 0; i < worker->set_count; i++) {
        char key[512];
        const char *eq = strchr(worker->sets[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - worker->sets[i]), worker->sets[i]);
        if ((rc = config_set(config, key, eq + 1, err, sizeof(err))) < 0) {
            log_error("%s", err);
            config_destroy(&config);
            return rc;
        }
    }
    *ret = config;
    return 0;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* SIGHUP: see worker.h. */
static void reload(worker_t *worker, const worker_kind_t *kind, void *app)
{
    if (!kind->reload) {
        log_warn("reload: a dispatch-%s does not read its topology again; restart it", kind->kind);
        return;
    }
    config_t *config;
    if (load_topology(worker, &config) < 0) {
        log_error("reload: the topology %s is refused; the old one stays", worker->config_path);
        return;
    }
    const config_worker_t *old = worker->self;
    const config_worker_t *self = config_worker_find(config, old->name);
    if (!self || strcmp(self->kind, old->kind) != 0 ||
        !same_text(self->state_dir, old->state_dir) || !same_text(self->bus, old->bus) ||
        !same_text(self->request, old->request) || !same_text(self->publish, old->publish) ||
        !same_text(self->units, old->units) || !same_text(self->id_prefix, old->id_prefix)) {
        log_error("reload: %s's own section changed (kind, state_dir, endpoints or id_prefix): "
                  "that needs a restart; the old topology stays",
                  old->name);
        config_destroy(&config);
        return;
    }
    config_t **retired =
        realloc(worker->retired, (worker->retired_count + 1) * sizeof(*worker->retired));
    if (!retired) {
        config_destroy(&config);
        return;
    }
    worker->retired = retired;
    size_t opened = 0, moved = 0, failed = 0;
    for (size_t i = 0; i < self->link_count; i++) {
        const char *peer = self->links[i];
        const config_worker_t *target = config_worker_find(config, peer);
        bus_link_t *link = bus_link_find(worker->bus, peer);
        int rc = 0;
        if (!link) {
            rc = bus_link_open(worker->bus, peer, target->bus, NULL);
            opened += rc == 0;
        } else if (strcmp(bus_link_endpoint(link), target->bus) != 0) {
            log_info("reload: %s moved from %s to %s", peer, bus_link_endpoint(link), target->bus);
            rc = bus_link_retarget(link, target->bus);
            moved += rc == 0;
        }
        if (rc < 0) {
            log_error("reload: link to %s (%s): %s", peer, target->bus, store_strerror(rc));
            failed++;
        }
    }
    /* A link that could not be opened (its peer's key not there yet) would
     * make the kind accept what it cannot send: the old topology stays,
     * and the next SIGHUP tries again. */
    if (failed) {
        log_error("reload: %zu links could not be opened; the old topology stays", failed);
        config_destroy(&config);
        return;
    }
    int rc = kind->reload(app, config);
    if (rc < 0) {
        /* The links stay as they are now: they match the new file. */
        log_error("reload: %s", store_strerror(rc));
        config_destroy(&config);
        return;
    }
    worker->retired[worker->retired_count++] = worker->config;
    worker->config = config;
    worker->self = self;
    log_info("reload: topology %s read again: %zu links opened, %zu pointed at a new endpoint",
             worker->config_path, opened, moved);
}

/* The loop does not log: a failing store is said here, once per episode
 * (and per cause), and its recovery (store.h: episodes). */
static void on_storage_event(void *ctx, const loop_storage_event_t *event)
{
    (void)ctx;
    switch (event->kind) {
    case LOOP_STORAGE_FAILING:
        log_error("storage: a batch could not commit: %s; nothing of it is applied or "
                  "acknowledged (senders resend, clients are answered UNAVAILABLE) until a "
                  "commit works again (%llu failed batches since start)",
                  store_strerror(event->error), (unsigned long long)event->failed_writes);
        break;
    case LOOP_STORAGE_RECOVERED:
        log_warn("storage: commits work again after %llu failed batches over %.1f s",
                 (unsigned long long)event->failures, (double)event->duration_ms / 1000.0);
        break;
    }
}

/* The batch-size histogram of the bus at stop: how many messages each
 * committed batch applied (group commit at work, or not). */
static void log_batches(const bus_t *bus)
{
    bus_stats_t stats;
    bus_stats(bus, &stats);
    char line[512];
    size_t at = 0;
    for (unsigned i = 0; i < BUS_BATCH_BUCKETS && at < sizeof(line); i++) {
        if (!stats.batches[i])
            continue;
        unsigned long long low = 1ULL << i, high = (1ULL << (i + 1)) - 1;
        int n = i + 1 == BUS_BATCH_BUCKETS ? snprintf(line + at, sizeof(line) - at, " %llu+:%llu",
                                                      low, (unsigned long long)stats.batches[i])
                : low == high ? snprintf(line + at, sizeof(line) - at, " %llu:%llu", low,
                                         (unsigned long long)stats.batches[i])
                              : snprintf(line + at, sizeof(line) - at, " %llu-%llu:%llu", low, high,
                                         (unsigned long long)stats.batches[i]);
        if (n < 0)
            break;
        at += (size_t)n;
    }
    if (at > 0)
        log_info("bus: %llu messages applied; committed batches by messages (size:count):%s",
                 (unsigned long long)stats.applied, line);
}

static int run(worker_t *worker, const worker_kind_t *kind, void *app)
{
    loop_app_t loop = kind->loop;
    loop.app = app;
    loop.on_storage = on_storage_event;
    loop.checks = worker->checks;
    loop.check_count = worker->check_count;
    int64_t last_watchdog = 0;
    while (!stop_requested) {
        if (reload_requested) {
            reload_requested = 0;
            reload(worker, kind, app);
        }
        int rc = loop_once(worker->store, worker->bus, &loop, WATCHDOG_MS);
        if (rc < 0) {
            log_error("event loop: %s", store_strerror(rc));
            return rc;
        }
        log_refusals(worker);
        log_cuts(worker);
        int64_t now = bus_now_ms();
        if (now - last_watchdog >= WATCHDOG_MS) {
            ready_watchdog();
            last_watchdog = now;
        }
    }
    return 0;
}

int worker_main(int argc, char **argv, const worker_kind_t *kind)
{
    const char *config_path = NULL, *name = NULL, *clock_spec = "real";
    const char *level = "info";
    int ready_fd = -1;
    store_options_t store_options = {0};
    char **sets = calloc((size_t)argc + 1, sizeof(*sets));
    size_t set_count = 0;
    char **accepts = calloc((size_t)argc + 1, sizeof(*accepts));
    size_t accept_count = 0;
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"set", required_argument, NULL, 's'},
        {"ready-fd", required_argument, NULL, 'r'},
        {"log-level", required_argument, NULL, 'l'},
        {"clock", required_argument, NULL, 'k'},
        {"no-sync", no_argument, NULL, 'N'},
        {"accept-incarnation", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Unknown options are left in argv for the kind's start(). */
    opterr = 0;
    int opt;
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    int rest_count = 0;
    rest[rest_count++] = argv[0];
    while ((opt = getopt_long(argc, argv, "-", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 's':
            sets[set_count++] = optarg;
            break;
        case 'r':
            ready_fd = atoi(optarg);
            break;
        case 'l':
            level = optarg;
            break;
        case 'k':
            clock_spec = optarg;
            break;
        case 'N':
            store_options.no_sync = 1;
            break;
        case 'a':
            accepts[accept_count++] = optarg;
            break;
        case 'h':
            free(sets);
            free(accepts);
            free(rest);
            return usage(kind, true);
        case 1:
            rest[rest_count++] = optarg;
            break;
        default:
            rest[rest_count++] = argv[optind - 1];
            break;
        }
    }
    if (!config_path || !name) {
        free(sets);
        free(accepts);
        free(rest);
        return usage(kind, false);
    }

    worker_t worker = {0};
    void *app = NULL;
    int rc = 0, exit_code = 1;
    log_init(name);
    int parsed_level = log_parse_level(level);
    if (parsed_level < 0) {
        log_error("unknown log level '%s'", level);
        goto done;
    }
    log_set_level(parsed_level);
    if ((rc = clock_init(clock_spec)) < 0) {
        log_error("--clock %s: %s", clock_spec, strerror(-rc));
        goto done;
    }

    char err[512];
    if ((rc = config_load(config_path, &worker.config, err, sizeof(err))) < 0) {
        log_error("%s", err);
        goto done;
    }
    for (size_t i = 0; i < set_count; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            log_error("--set %s: expected KEY=VALUE", sets[i]);
            goto done;
        }
        *eq = '\0';
        rc = config_set(worker.config, sets[i], eq + 1, err, sizeof(err));
        if (rc < 0) {
            log_error("%s", err);
            option_hint(kind, sets[i]);
            goto done;
        }
        *eq = '='; /* as given: a reload applies it again */
    }
    /* The city's zone for local dates (ticket ids, working days, logs);
     * set once, before anything reads the time zone. */
    setenv("TZ", config_timezone(worker.config), 1);
    tzset();
    worker.self = config_worker_find(worker.config, name);
    if (!worker.self || strcmp(worker.self->kind, kind->kind) != 0) {
        log_error("%s: no %s worker named '%s'", config_path, kind->kind, name);
        goto done;
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction action = {.sa_handler = on_stop_signal};
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    struct sigaction reload_action = {.sa_handler = on_reload_signal};
    sigaction(SIGHUP, &reload_action, NULL);
    worker.config_path = config_path;
    worker.sets = sets;
    worker.set_count = set_count;

    /* One process per identity: before any socket or the store is opened.
     * The lock holds until the process ends. */
    int lock_fd = -1;
    long holder;
    if ((rc = store_lock(worker.self->state_dir, &lock_fd, &holder)) < 0) {
        if (rc == -EWOULDBLOCK) {
            log_error("%s is already running (pid %ld holds %s/worker.lock): not starting a "
                      "second process under this name",
                      name, holder, worker.self->state_dir);
            exit_code = WORKER_EXIT_RUNNING;
        } else {
            log_error("state %s: cannot lock: %s", worker.self->state_dir, strerror(-rc));
        }
        goto done;
    }

    worker.zmq = zmq_ctx_new();
    /* The ZAP handler is bound before any server socket of the context. */
    if (config_security(worker.config) == CONFIG_SECURITY_CURVE &&
        (rc = auth_new(worker.zmq, config_keys_dir(worker.config), name, &worker.auth)) < 0) {
        log_error("keys %s: %s (%s/%s.key_secret)", config_keys_dir(worker.config), strerror(-rc),
                  config_keys_dir(worker.config), name);
        goto done;
    }
    if (worker.self->map_size)
        store_options.map_size = worker.self->map_size;
    if ((rc = store_open(worker.self->state_dir, &store_options, &worker.store)) < 0) {
        log_error("state %s: %s", worker.self->state_dir, store_strerror(rc));
        goto done;
    }
    if (store_stale_readers(worker.store) > 0)
        log_warn("cleared %d stale LMDB readers", store_stale_readers(worker.store));
    bus_options_t bus_options = {.dead_after_ms = worker.self->dead_after_ms,
                                 .on_event = on_bus_event,
                                 .event_ctx = (void *)name,
                                 .auth = worker.auth};
    if ((rc = bus_new(worker.zmq, worker.store, name, &bus_options, &worker.bus)) < 0) {
        log_error("bus: %s", store_strerror(rc));
        goto done;
    }
    char incarnation[2 * BUS_INCARNATION_SIZE + 1];
    incarnation_text(bus_incarnation(worker.bus), incarnation);
    log_info("bus: incarnation %s", incarnation);
    if ((rc = open_links(&worker)) < 0) {
        log_error("bus: %s", store_strerror(rc));
        goto done;
    }
    for (size_t i = 0; i < accept_count; i++) {
        if ((rc = bus_accept(worker.bus, accepts[i], true)) < 0) {
            log_error("--accept-incarnation %s: %s", accepts[i], strerror(-rc));
            goto done;
        }
        log_warn("bus: the next incarnation %s presents is accepted", accepts[i]);
    }
    if ((rc = kind->start(&worker, rest_count, rest, &app)) < 0) {
        log_error("start: %s", store_strerror(rc));
        goto done;
    }
    if (worker.self->bus) {
        if ((rc = bus_listen(worker.bus, worker.self->bus, kind->apply, app)) < 0) {
            log_error("bus %s: %s", worker.self->bus, strerror(-rc));
            goto done;
        }
        worker_announce(&worker, "bus", bus_listen_endpoint(worker.bus));
    }
    ready_announce(ready_fd, worker.endpoints, worker.endpoint_count);
    log_info("serving (%s, state %s%s)", kind->kind, worker.self->state_dir,
             store_options.no_sync ? ", commits NOT fsynced" : "");

    if (run(&worker, kind, app) == 0)
        exit_code = 0;
    ready_stopping();
    log_batches(worker.bus);
    log_info("stopping");

done:
    if (app && kind->stop)
        kind->stop(app);
    bus_destroy(&worker.bus);
    store_destroy(&worker.store);
    auth_destroy(&worker.auth);
    if (worker.zmq)
        zmq_ctx_term(worker.zmq);
    for (size_t i = 0; i < worker.endpoint_count; i++)
        free(worker.urls[i]);
    config_destroy(&worker.config);
    for (size_t i = 0; i < worker.retired_count; i++)
        config_destroy(&worker.retired[i]);
    free(worker.retired);
    free(sets);
    free(accepts);
    free(rest);
    return exit_code;
}

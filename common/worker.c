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
    size_t endpoint_count;
    loop_check_t checks[WORKER_MAX_CHECKS];
    size_t check_count;
};

static volatile sig_atomic_t stop_requested;

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
    return worker_announce(worker, name, endpoint_url(*ret));
}

int worker_check_add(worker_t *worker, loop_check_fn fn, void *ctx)
{
    if (worker->check_count == WORKER_MAX_CHECKS)
        return -ENOSPC;
    worker->checks[worker->check_count++] = (loop_check_t){fn, ctx};
    return 0;
}

static int usage(const char *kind)
{
    fprintf(stderr,
            "usage: dispatch-%s --config FILE --name NAME [--set KEY=VALUE]... [--ready-fd N]\n"
            "       [--log-level error|warn|info|debug] [--clock real|sim:FILE|fast:SPEED@MS]\n"
            "       [--no-sync] [--accept-incarnation PEER]...\n",
            kind);
    return 2;
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

static int run(worker_t *worker, const worker_kind_t *kind, void *app)
{
    loop_app_t loop = kind->loop;
    loop.app = app;
    loop.checks = worker->checks;
    loop.check_count = worker->check_count;
    int64_t last_watchdog = 0;
    while (!stop_requested) {
        int rc = loop_once(worker->store, worker->bus, &loop, WATCHDOG_MS);
        if (rc < 0) {
            log_error("event loop: %s", store_strerror(rc));
            return rc;
        }
        log_refusals(worker);
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
            return usage(kind->kind);
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
        return usage(kind->kind);
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
        if ((rc = config_set(worker.config, sets[i], eq + 1, err, sizeof(err))) < 0) {
            log_error("%s", err);
            goto done;
        }
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
    free(sets);
    free(accepts);
    free(rest);
    return exit_code;
}

#include "city.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define CITY_MAX_WORKERS 16
#define CITY_READY_MS 60000

typedef struct city_worker {
    char name[64];
    char kind[16];
    char district[64];
    harness_proc_t *proc;
    /* Client endpoints pinned after the first start. */
    char request[256], units[256], publish[256];
} city_worker_t;

struct city {
    char dir[512];
    char topology[600];
    city_options_t options;
    city_worker_t workers[CITY_MAX_WORKERS];
    size_t worker_count;
    /* Districts added at run time: the lists options points to then. */
    const char **added_districts, **added_rules;
};

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -errno;
}

static city_worker_t *find(city_t *city, const char *name)
{
    for (size_t i = 0; i < city->worker_count; i++)
        if (strcmp(city->workers[i].name, name) == 0)
            return &city->workers[i];
    return NULL;
}

static void write_links(FILE *f, const city_t *city, const char *first, ...)
    __attribute__((sentinel));

/* "links = a, b, ..." of the names given that exist in this city. */
static void write_links(FILE *f, const city_t *city, const char *first, ...)
{
    va_list args;
    va_start(args, first);
    fprintf(f, "links = ");
    bool any = false;
    for (const char *name = first; name; name = va_arg(args, const char *)) {
        if (!find((city_t *)city, name))
            continue;
        fprintf(f, "%s%s", any ? ", " : "", name);
        any = true;
    }
    va_end(args);
    fprintf(f, "\n\n");
}

/* A client endpoint for the topology: a fixed port below the ephemeral
 * range (harness_tcp_endpoint), so a restart on it cannot be taken over. */
static const char *client_endpoint(char *buf, size_t len)
{
    if (harness_tcp_endpoint(buf, len) < 0)
        snprintf(buf, len, "tcp://127.0.0.1:*");
    return buf;
}

enum { ENDPOINT_BUS = 1, ENDPOINT_REQUEST, ENDPOINT_UNITS, ENDPOINT_PUBLISH };

/* A worker's endpoint in the topology. One host: its bus an ipc:// file in
 * the city's directory, client endpoints on loopback (client_endpoint).
 * Over hosts: its host's address and a port fixed by the worker's place in
 * the city, the same on every host it may move to. */
static const char *endpoint_of(city_t *city, const char *name, int which, char *buf, size_t len)
{
    if (city->options.place) {
        city_host_t host = {0};
        city->options.place(city->options.place_ctx, name, &host);
        long index = find(city, name) - city->workers;
        snprintf(buf, len, "tcp://%s:%ld", host.address, 7000 + 10 * index + which);
        return buf;
    }
    if (which == ENDPOINT_BUS) {
        snprintf(buf, len, "ipc://%s/%s.bus", city->dir, name);
        return buf;
    }
    /* Written again (a district added): the endpoint it has keeps. */
    const city_worker_t *worker = find(city, name);
    const char *pinned = !worker                     ? ""
                         : which == ENDPOINT_REQUEST ? worker->request
                         : which == ENDPOINT_UNITS   ? worker->units
                                                     : worker->publish;
    if (pinned[0]) {
        snprintf(buf, len, "%s", pinned);
        return buf;
    }
    return client_endpoint(buf, len);
}

static int write_topology(city_t *city)
{
    FILE *f = fopen(city->topology, "w");
    if (!f)
        return -errno;
    char a[600], b[600], bus[600];
    fprintf(f, "[city]\nname = testcity\ntimezone = Asia/Shanghai\nsecurity = %s\n\n",
            city->options.plain ? "plain" : "curve");
    for (size_t i = 0; i < city->options.district_count; i++)
        fprintf(f, "[district.%s]\n\n", city->options.districts[i]);

    for (size_t n = 1; n == 1 || n <= city->options.intakes; n++) {
        char intake[32];
        snprintf(intake, sizeof(intake), "intake-%zu", n);
        fprintf(f,
                "[worker.%s]\nkind = intake\nid_prefix = T%zu\nstate_dir = %s/%s\n"
                "bus = %s\nrequest = %s\nlinks = ",
                intake, n, city->dir, intake,
                endpoint_of(city, intake, ENDPOINT_BUS, bus, sizeof(bus)),
                endpoint_of(city, intake, ENDPOINT_REQUEST, a, sizeof(a)));
        for (size_t i = 0; i < city->options.district_count; i++)
            fprintf(f, "%srouter-%s", i ? ", " : "", city->options.districts[i]);
        fprintf(f, "%s\n", city->options.audit ? ", audit" : "");
        if (city->options.max_backlog)
            fprintf(f, "max_backlog = %u\n", city->options.max_backlog);
        fprintf(f, "\n");
    }
    for (size_t i = 0; i < city->options.district_count; i++) {
        const char *d = city->options.districts[i];
        char escalation[80], router[80];
        snprintf(escalation, sizeof(escalation), "escalation-%s", d);
        snprintf(router, sizeof(router), "router-%s", d);
        fprintf(f,
                "[worker.router-%s]\nkind = router\ndistrict = %s\nstate_dir = %s/router-%s\n"
                "data_dir = %s/data-%s\nbus = %s\n"
                "request = %s\nunits = %s\n",
                d, d, city->dir, d, city->dir, d,
                endpoint_of(city, router, ENDPOINT_BUS, bus, sizeof(bus)),
                endpoint_of(city, router, ENDPOINT_REQUEST, a, sizeof(a)),
                endpoint_of(city, router, ENDPOINT_UNITS, b, sizeof(b)));
        write_links(f, city, "intake-1", "intake-2", escalation, "audit", (char *)NULL);
        if (!city->options.escalation)
            continue;
        fprintf(f,
                "[worker.escalation-%s]\nkind = escalation\ndistrict = %s\n"
                "state_dir = %s/escalation-%s\ndata_dir = %s/escalation-data-%s\n"
                "bus = %s\nrequest = %s\n",
                d, d, city->dir, d, city->dir, d,
                endpoint_of(city, escalation, ENDPOINT_BUS, bus, sizeof(bus)),
                endpoint_of(city, escalation, ENDPOINT_REQUEST, a, sizeof(a)));
        write_links(f, city, router, "intake-1", "intake-2", "audit", (char *)NULL);
    }
    if (city->options.audit)
        fprintf(f,
                "[worker.audit]\nkind = audit\nstate_dir = %s/audit\nbus = %s\n"
                "request = %s\npublish = %s\n\n",
                city->dir, endpoint_of(city, "audit", ENDPOINT_BUS, bus, sizeof(bus)),
                endpoint_of(city, "audit", ENDPOINT_REQUEST, a, sizeof(a)),
                endpoint_of(city, "audit", ENDPOINT_PUBLISH, b, sizeof(b)));
    return fclose(f) == 0 ? 0 : -errno;
}

/* The actors tests speak as; "tester" (every role, any unit) is for the
 * dispatchctl runs of tests, which switch roles and units from one command
 * to the next. */
static const struct {
    const char *name;
    auth_kind_t kind;
    const char *roles;
} test_actors[] = {
    {"agent-7", AUTH_KIND_PERSON, "operator"},
    {"dispatcher-li", AUTH_KIND_PERSON, "dispatcher"},
    {"sup-chen", AUTH_KIND_PERSON, "supervisor"},
    {"leader-li", AUTH_KIND_PERSON, "leader"},
    {"auditor", AUTH_KIND_PERSON, "auditor"},
    {"units", AUTH_KIND_UNIT_GATEWAY, "unit"},
    {"injector", AUTH_KIND_WORKER, ""}, /* a test's own bus, posing as a worker */
    {"tester", AUTH_KIND_UNIT_GATEWAY, "operator,dispatcher,supervisor,leader,unit,admin,auditor"},
};

static int make_keys(city_t *city)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/keys", city->dir);
    int rc = 0;
    for (size_t i = 0; i < city->worker_count && rc == 0; i++) {
        auth_actor_t actor = {.kind = AUTH_KIND_WORKER};
        snprintf(actor.name, sizeof(actor.name), "%s", city->workers[i].name);
        snprintf(actor.worker, sizeof(actor.worker), "%s", city->workers[i].name);
        rc = auth_key_new(dir, &actor);
    }
    for (size_t i = 0; i < sizeof(test_actors) / sizeof(test_actors[0]) && rc == 0; i++) {
        auth_actor_t actor = {.kind = test_actors[i].kind};
        snprintf(actor.name, sizeof(actor.name), "%s", test_actors[i].name);
        rc = auth_roles_parse(test_actors[i].roles, &actor.roles);
        if (rc == 0)
            rc = auth_key_new(dir, &actor);
    }
    return rc;
}

static city_worker_t *add_worker(city_t *city, const char *kind, const char *district)
{
    city_worker_t *worker = &city->workers[city->worker_count++];
    snprintf(worker->kind, sizeof(worker->kind), "%s", kind);
    if (district) {
        snprintf(worker->district, sizeof(worker->district), "%s", district);
        snprintf(worker->name, sizeof(worker->name), "%s-%s", kind, district);
    } else {
        snprintf(worker->name, sizeof(worker->name), "%s", kind);
    }
    return worker;
}

/* Makes <city dir>/<prefix><district>/ and writes files (name, content
 * pairs) into it. */
static int write_data(city_t *city, const char *prefix, const char *district,
                      const char *const *files)
{
    char path[800];
    snprintf(path, sizeof(path), "%s/%s%s", city->dir, prefix, district);
    size_t len;
    if (mkdir(path, 0750) < 0)
        return -errno;
    len = strlen(path);
    for (size_t i = 0; files && files[i] && files[i + 1]; i += 2) {
        snprintf(path + len, sizeof(path) - len, "/%s", files[i]);
        int rc = write_file(path, files[i + 1]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int city_new(const char *tag, const city_options_t *options, city_t **ret)
{
    city_t *city = calloc(1, sizeof(*city));
    if (!city)
        return -ENOMEM;
    city->options = *options;
    int rc = harness_tmpdir(tag, city->dir, sizeof(city->dir));
    if (rc < 0) {
        free(city);
        return rc;
    }
    snprintf(city->topology, sizeof(city->topology), "%s/topology.ini", city->dir);

    add_worker(city, "intake", NULL);
    snprintf(city->workers[0].name, sizeof(city->workers[0].name), "intake-1");
    if (options->intakes >= 2) {
        city_worker_t *shard = add_worker(city, "intake", NULL);
        snprintf(shard->name, sizeof(shard->name), "intake-2");
    }
    for (size_t i = 0; i < options->district_count && rc == 0; i++) {
        const char *d = options->districts[i];
        add_worker(city, "router", d);
        const char *router_files[] = {"units.csv", options->units_csv, "rules.csv",
                                      options->rules_csv[i], NULL};
        rc = write_data(city, "data-", d, router_files);
        if (rc == 0 && options->escalation) {
            add_worker(city, "escalation", d);
            rc = write_data(city, "escalation-data-", d, options->escalation_files);
        }
    }
    if (options->audit)
        add_worker(city, "audit", NULL);
    if (rc == 0)
        rc = write_topology(city);
    if (rc == 0 && !options->plain)
        rc = make_keys(city);
    if (rc < 0) {
        city_destroy(&city, false);
        return rc;
    }
    *ret = city;
    return 0;
}

static const char *program(const char *kind)
{
    if (strcmp(kind, "intake") == 0)
        return harness_program("INTAKE_BIN", "workers/dispatch-intake");
    if (strcmp(kind, "router") == 0)
        return harness_program("ROUTER_BIN", "workers/dispatch-router");
    if (strcmp(kind, "escalation") == 0)
        return harness_program("ESCALATION_BIN", "workers/dispatch-escalation");
    return harness_program("AUDIT_BIN", "workers/dispatch-audit");
}

static const char *const *extra_args(const city_t *city, const char *kind)
{
    if (strcmp(kind, "intake") == 0)
        return city->options.intake_args;
    if (strcmp(kind, "router") == 0)
        return city->options.router_args;
    if (strcmp(kind, "escalation") == 0)
        return city->options.escalation_args;
    return city->options.audit_args;
}

/* Adds "--set worker.<name>.<key>=<value>" when value is pinned. */
static size_t pin(const char **argv, size_t argc, char *buf, size_t len, const char *name,
                  const char *key, const char *value)
{
    if (!value[0])
        return argc;
    snprintf(buf, len, "worker.%s.%s=%s", name, key, value);
    argv[argc++] = "--set";
    argv[argc++] = buf;
    return argc;
}

int city_start(city_t *city, const char *name)
{
    return city_start_with(city, name, NULL);
}

int city_start_with(city_t *city, const char *name, const char *const *more)
{
    city_worker_t *worker = find(city, name);
    if (!worker)
        return -ENOENT;
    if (worker->proc)
        return -EALREADY;
    const char *argv[52];
    size_t argc = 0;
    char set_request[400], set_units[400], set_publish[400];
    city_host_t host = {0};
    if (city->options.place)
        city->options.place(city->options.place_ctx, worker->name, &host);
    if (host.netns) {
        argv[argc++] = harness_program("IP_BIN", "/sbin/ip");
        argv[argc++] = "netns";
        argv[argc++] = "exec";
        argv[argc++] = host.netns;
    }
    argv[argc++] = program(worker->kind);
    argv[argc++] = "--config";
    argv[argc++] = city->topology;
    argv[argc++] = "--name";
    argv[argc++] = worker->name;
    if (city->options.clock) {
        argv[argc++] = "--clock";
        argv[argc++] = city->options.clock;
    }
    argc =
        pin(argv, argc, set_request, sizeof(set_request), worker->name, "request", worker->request);
    argc = pin(argv, argc, set_units, sizeof(set_units), worker->name, "units", worker->units);
    argc =
        pin(argv, argc, set_publish, sizeof(set_publish), worker->name, "publish", worker->publish);
    const char *const *extra = extra_args(city, worker->kind);
    for (size_t i = 0; extra && extra[i] && argc < 50; i++)
        argv[argc++] = extra[i];
    for (size_t i = 0; more && more[i] && argc < 50; i++)
        argv[argc++] = more[i];
    argv[argc] = NULL;

    int rc = harness_spawn(argv, false, &worker->proc);
    if (rc == 0)
        rc = harness_wait_ready(worker->proc, CITY_READY_MS);
    if (rc < 0) {
        fprintf(stderr, "city: %s did not become ready (%s)\n", name, strerror(-rc));
        harness_destroy(&worker->proc);
        return rc;
    }
    const char *request = harness_endpoint(worker->proc, "request");
    const char *units = harness_endpoint(worker->proc, "units");
    const char *publish = harness_endpoint(worker->proc, "publish");
    if (request)
        snprintf(worker->request, sizeof(worker->request), "%s", request);
    if (units)
        snprintf(worker->units, sizeof(worker->units), "%s", units);
    if (publish)
        snprintf(worker->publish, sizeof(worker->publish), "%s", publish);
    return 0;
}

int city_start_all(city_t *city)
{
    /* Routers first: intake's first events find them listening. Not needed
     * for correctness (the outbox waits), only for a quicker start. */
    for (size_t i = city->worker_count; i-- > 0;) {
        int rc = city_start(city, city->workers[i].name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int city_stop(city_t *city, const char *name, int sig)
{
    city_worker_t *worker = find(city, name);
    if (!worker || !worker->proc)
        return -ENOENT;
    int status = harness_kill(worker->proc, sig);
    harness_destroy(&worker->proc);
    return status;
}

const char *city_endpoint(const city_t *city, const char *name, const char *endpoint)
{
    city_worker_t *worker = find((city_t *)city, name);
    if (!worker)
        return NULL;
    if (strcmp(endpoint, "request") == 0)
        return worker->request[0] ? worker->request : NULL;
    if (strcmp(endpoint, "units") == 0)
        return worker->units[0] ? worker->units : NULL;
    if (strcmp(endpoint, "publish") == 0)
        return worker->publish[0] ? worker->publish : NULL;
    return worker->proc ? harness_endpoint(worker->proc, endpoint) : NULL;
}

const char *city_keys_dir(const city_t *city, char *buf, size_t len)
{
    snprintf(buf, len, "%s/keys", city->dir);
    return buf;
}

int city_keys(const city_t *city, const char *actor, const char *url, auth_client_t *keys,
              const auth_client_t **ret)
{
    *ret = NULL;
    if (city->options.plain)
        return 0;
    const char *server = NULL;
    for (size_t i = 0; i < city->worker_count && !server; i++) {
        const city_worker_t *w = &city->workers[i];
        if (strcmp(w->request, url) == 0 || strcmp(w->units, url) == 0 ||
            strcmp(w->publish, url) == 0)
            server = w->name;
    }
    if (!server)
        return -ENOENT;
    char dir[600];
    int rc = auth_client_load(city_keys_dir(city, dir, sizeof(dir)), actor, server, keys);
    if (rc == 0)
        *ret = keys;
    return rc;
}

const char *city_topology(const city_t *city)
{
    return city->topology;
}

pid_t city_pid(const city_t *city, const char *name)
{
    city_worker_t *worker = find((city_t *)city, name);
    return worker && worker->proc ? harness_pid(worker->proc) : 0;
}

const char *city_dir(const city_t *city)
{
    return city->dir;
}

const char *city_state_dir(const city_t *city, const char *worker, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", city->dir, worker);
    return buf;
}

static int make_worker_key(city_t *city, const char *name)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/keys", city->dir);
    auth_actor_t actor = {.kind = AUTH_KIND_WORKER};
    snprintf(actor.name, sizeof(actor.name), "%s", name);
    snprintf(actor.worker, sizeof(actor.worker), "%s", name);
    return auth_key_new(dir, &actor);
}

int city_add_district(city_t *city, const char *district, const char *rules_csv)
{
    size_t count = city->options.district_count;
    if (city->worker_count + 2 > CITY_MAX_WORKERS)
        return -ENOSPC;
    const char **districts = calloc(count + 1, sizeof(*districts));
    const char **rules = calloc(count + 1, sizeof(*rules));
    if (!districts || !rules) {
        free(districts);
        free(rules);
        return -ENOMEM;
    }
    memcpy(districts, city->options.districts, count * sizeof(*districts));
    memcpy(rules, city->options.rules_csv, count * sizeof(*rules));
    districts[count] = district;
    rules[count] = rules_csv;
    free(city->added_districts);
    free(city->added_rules);
    city->added_districts = districts;
    city->added_rules = rules;
    city->options.districts = districts;
    city->options.rules_csv = rules;
    city->options.district_count = count + 1;

    city_worker_t *router = add_worker(city, "router", district);
    const char *router_files[] = {"units.csv", city->options.units_csv, "rules.csv", rules_csv,
                                  NULL};
    int rc = write_data(city, "data-", district, router_files);
    if (rc == 0 && !city->options.plain)
        rc = make_worker_key(city, router->name);
    if (rc == 0 && city->options.escalation) {
        city_worker_t *escalation = add_worker(city, "escalation", district);
        rc = write_data(city, "escalation-data-", district, city->options.escalation_files);
        if (rc == 0 && !city->options.plain)
            rc = make_worker_key(city, escalation->name);
    }
    return rc == 0 ? write_topology(city) : rc;
}

int city_signal(city_t *city, const char *name, int sig)
{
    city_worker_t *worker = find(city, name);
    if (!worker || !worker->proc)
        return -ENOENT;
    return kill(harness_pid(worker->proc), sig) == 0 ? 0 : -errno;
}

int city_replace(city_t *city, const char *name)
{
    city_worker_t *worker = find(city, name);
    if (!worker || !city->options.place)
        return -ENOENT;
    if (worker->proc)
        return -EBUSY;
    worker->request[0] = worker->units[0] = worker->publish[0] = '\0';
    return write_topology(city);
}

void city_destroy(city_t **self, bool keep)
{
    city_t *city = *self;
    if (!city)
        return;
    for (size_t i = 0; i < city->worker_count; i++) {
        if (city->workers[i].proc) {
            harness_stop(city->workers[i].proc, 15000);
            harness_destroy(&city->workers[i].proc);
        }
    }
    if (keep)
        fprintf(stderr, "city: state kept in %s\n", city->dir);
    else
        harness_rmtree(city->dir);
    free(city->added_districts);
    free(city->added_rules);
    free(city);
    *self = NULL;
}

#include "city.h"

#include <errno.h>
#include <signal.h>
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
    char request[256], units[256];
} city_worker_t;

struct city {
    char dir[512];
    char topology[600];
    city_options_t options;
    city_worker_t workers[CITY_MAX_WORKERS];
    size_t worker_count;
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

static int write_topology(city_t *city)
{
    FILE *f = fopen(city->topology, "w");
    if (!f)
        return -errno;
    fprintf(f, "[city]\nname = testcity\ntimezone = Asia/Shanghai\n\n");
    for (size_t i = 0; i < city->options.district_count; i++)
        fprintf(f, "[district.%s]\n\n", city->options.districts[i]);

    fprintf(f, "[worker.intake-1]\nkind = intake\nid_prefix = T1\nstate_dir = %s/intake-1\n"
               "bus = ipc://%s/intake-1.bus\nrequest = tcp://127.0.0.1:*\nlinks = ",
            city->dir, city->dir);
    for (size_t i = 0; i < city->options.district_count; i++)
        fprintf(f, "%srouter-%s", i ? ", " : "", city->options.districts[i]);
    fprintf(f, "\n\n");
    for (size_t i = 0; i < city->options.district_count; i++) {
        const char *d = city->options.districts[i];
        fprintf(f,
                "[worker.router-%s]\nkind = router\ndistrict = %s\nstate_dir = %s/router-%s\n"
                "data_dir = %s/data-%s\nbus = ipc://%s/router-%s.bus\n"
                "request = tcp://127.0.0.1:*\nunits = tcp://127.0.0.1:*\nlinks = intake-1\n\n",
                d, d, city->dir, d, city->dir, d, city->dir, d);
    }
    return fclose(f) == 0 ? 0 : -errno;
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

    city_worker_t *intake = &city->workers[city->worker_count++];
    snprintf(intake->name, sizeof(intake->name), "intake-1");
    snprintf(intake->kind, sizeof(intake->kind), "intake");
    for (size_t i = 0; i < options->district_count && rc == 0; i++) {
        city_worker_t *router = &city->workers[city->worker_count++];
        snprintf(router->name, sizeof(router->name), "router-%s", options->districts[i]);
        snprintf(router->kind, sizeof(router->kind), "router");
        snprintf(router->district, sizeof(router->district), "%s", options->districts[i]);
        char path[700];
        snprintf(path, sizeof(path), "%s/data-%s", city->dir, options->districts[i]);
        if (mkdir(path, 0750) < 0)
            rc = -errno;
        snprintf(path, sizeof(path), "%s/data-%s/units.csv", city->dir, options->districts[i]);
        if (rc == 0)
            rc = write_file(path, options->units_csv);
        snprintf(path, sizeof(path), "%s/data-%s/rules.csv", city->dir, options->districts[i]);
        if (rc == 0)
            rc = write_file(path, options->rules_csv[i]);
    }
    if (rc == 0)
        rc = write_topology(city);
    if (rc < 0) {
        city_destroy(&city, false);
        return rc;
    }
    *ret = city;
    return 0;
}

static const char *program(const char *kind)
{
    return strcmp(kind, "intake") == 0 ? harness_program("INTAKE_BIN", "workers/intake/dispatch-intake")
                                       : harness_program("ROUTER_BIN", "workers/router/dispatch-router");
}

int city_start(city_t *city, const char *name)
{
    city_worker_t *worker = find(city, name);
    if (!worker)
        return -ENOENT;
    if (worker->proc)
        return -EALREADY;
    const char *argv[48];
    size_t argc = 0;
    char set_request[400], set_units[400];
    argv[argc++] = program(worker->kind);
    argv[argc++] = "--config";
    argv[argc++] = city->topology;
    argv[argc++] = "--name";
    argv[argc++] = worker->name;
    if (worker->request[0]) {
        snprintf(set_request, sizeof(set_request), "worker.%s.request=%s", worker->name,
                 worker->request);
        argv[argc++] = "--set";
        argv[argc++] = set_request;
    }
    if (worker->units[0]) {
        snprintf(set_units, sizeof(set_units), "worker.%s.units=%s", worker->name, worker->units);
        argv[argc++] = "--set";
        argv[argc++] = set_units;
    }
    const char *const *extra =
        strcmp(worker->kind, "intake") == 0 ? city->options.intake_args : city->options.router_args;
    for (size_t i = 0; extra && extra[i] && argc < 46; i++)
        argv[argc++] = extra[i];
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
    if (request)
        snprintf(worker->request, sizeof(worker->request), "%s", request);
    if (units)
        snprintf(worker->units, sizeof(worker->units), "%s", units);
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
    return worker->proc ? harness_endpoint(worker->proc, endpoint) : NULL;
}

const char *city_topology(const city_t *city)
{
    return city->topology;
}

const char *city_dir(const city_t *city)
{
    return city->dir;
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
    free(city);
    *self = NULL;
}

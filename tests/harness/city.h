/* city: a worker set of real processes for integration tests.
 *
 * city_new() writes a topology into a fresh directory: one intake
 * ("intake-1", id prefix T1), a router per district ("router-<district>"),
 * each router with a data_dir holding units.csv and its district's
 * rules.csv; optionally an escalation per district ("escalation-<district>",
 * its data_dir holding the files of options.escalation_files) and the
 * city's audit ("audit"). Links: intake -> routers, audit; router -> intake,
 * its escalation, audit; escalation -> its router, intake, audit. Bus endpoints are ipc:// files in
 * that directory, so links can name their peers before anything runs; client endpoints are
 * tcp://127.0.0.1:* and, once resolved at the first start, stay pinned, so
 * a restarted worker is found where it was. Workers are started on their
 * ready pipe, never after a sleep.
 */
#ifndef DISPATCH_CITY_H
#define DISPATCH_CITY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "auth.h"

typedef struct city city_t;

/* Where a worker of a city spread over hosts runs (tests/hosts): the
 * network namespace its process is started in ("ip netns exec"; NULL:
 * here) and the IPv4 address all its endpoints bind, on fixed ports. */
typedef struct city_host {
    const char *netns;
    const char *address;
} city_host_t;
/* Fills host for worker (its name in the topology). */
typedef void (*city_place_fn)(void *ctx, const char *worker, city_host_t *host);

typedef struct city_options {
    const char *const *districts; /* ids */
    size_t district_count;
    const char *units_csv;          /* the whole registry, given to every router */
    const char *const *rules_csv;   /* per district, same order */
    const char *const *intake_args; /* extra arguments, NULL-terminated or NULL */
    const char *const *router_args;
    bool escalation;                     /* start an escalation per district */
    const char *const *escalation_files; /* pairs: file name, content; NULL-terminated */
    const char *const *escalation_args;
    bool audit; /* start the city's audit */
    const char *const *audit_args;
    /* --clock for every worker ("sim:<file>", "fast:..."); NULL = real. */
    const char *clock;
    /* security = plain; else (the default) CURVE, with keys made by
     * city_new() in <dir>/keys: one per worker, and agent-7 (operator),
     * dispatcher-li, sup-chen, leader-li, auditor (persons with that role),
     * units (unit gateway), tester (gateway with every role) and injector (a
     * worker key for a test's own bus). */
    bool plain;
    /* A city over hosts: every endpoint is tcp://<its host's address>:<a
     * port fixed per worker>, and the workers are started in their hosts'
     * namespaces. NULL: one host (ipc:// buses, loopback). */
    city_place_fn place;
    void *place_ctx;
    /* 2: a second intake shard, "intake-2" (id prefix T2), linked like
     * intake-1 and linked to by every router and escalation; 0 or 1: one. */
    size_t intakes;
    /* The intake's max_backlog in the topology; 0 = not written (the
     * default). */
    unsigned max_backlog;
} city_options_t;

int city_new(const char *tag, const city_options_t *options, city_t **ret);
/* Starts one worker ("intake-1", "router-<district>") and waits until it is
 * ready; or every worker. */
int city_start(city_t *city, const char *worker);
/* The same with more arguments for this start only (NULL-terminated). */
int city_start_with(city_t *city, const char *worker, const char *const *more);
int city_start_all(city_t *city);
/* Sends sig, reaps; the worker is down until city_start. */
int city_stop(city_t *city, const char *worker, int sig);
/* An endpoint a worker announced: "request", "units", "publish", "bus". */
const char *city_endpoint(const city_t *city, const char *worker, const char *name);
const char *city_topology(const city_t *city);
/* The process id of a running worker, for a signal that does not stop it
 * (SIGSTOP, SIGCONT); 0 when it is down or unknown. */
pid_t city_pid(const city_t *city, const char *worker);
/* <dir>/keys into buf. */
const char *city_keys_dir(const city_t *city, char *buf, size_t len);
/* The keys of actor toward the worker that serves url (an endpoint of the
 * city, once started): *ret is keys, or NULL for a plain city. -ENOENT
 * when no worker serves url or a key is missing. */
int city_keys(const city_t *city, const char *actor, const char *url, auth_client_t *keys,
              const auth_client_t **ret);
const char *city_dir(const city_t *city);
/* The state dir of a worker (<dir>/<name>) into buf. */
const char *city_state_dir(const city_t *city, const char *worker, char *buf, size_t len);
/* A placed city's worker moves: the topology is written again with its
 * endpoints on the address place() gives it now; the worker must be
 * stopped, and is started there by city_start. Workers that link to it
 * learn the new address when they read the topology again. */
int city_replace(city_t *city, const char *worker);
/* A district added to a city that runs: its router (and escalation, when
 * the city has them) written into the topology, their data dirs (the
 * city's units, these rules; the escalation files) and keys made; nothing
 * is started or told (city_start, then SIGHUP to the intake). */
int city_add_district(city_t *city, const char *district, const char *rules_csv);
/* Sends sig to a running worker (SIGHUP: read the topology again). */
int city_signal(city_t *city, const char *worker, int sig);
/* Stops everything (SIGTERM, so LeakSanitizer sees the exit); the directory
 * is removed unless keep is set (kept for a failed test). */
void city_destroy(city_t **city, bool keep);

#endif

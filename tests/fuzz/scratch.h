/* scratch: the workers of a small city on scratch stores, for the fuzz
 * targets and their seed generator. No process, no socket is bound: each
 * worker's handlers are called directly with a transaction of its own
 * store, as the worker's loop would call them.
 *
 * The city: district "cy", intake-1 (ticket ids CY-...), router-cy (a
 * small unit registry and rules), escalation-cy (the deadline table and
 * calendar of deploy/data), audit. Each worker has its store in a temporary
 * directory and a bus with the links its topology names (inproc, nothing
 * listens: what is sent stays in the outboxes).
 *
 * A fuzz input is one or more messages, cut at SCRATCH_SEPARATOR; each is
 * handled in turn in one write transaction that is aborted at the end, so
 * that every input starts from the same committed state and replays the
 * same way.
 */
#ifndef DISPATCH_FUZZ_SCRATCH_H
#define DISPATCH_FUZZ_SCRATCH_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "store.h"

/* Between the messages of one input (also in tests/fuzz/fuzz.dict). */
#define SCRATCH_SEPARATOR "\xde\xad\xbe\xef"
#define SCRATCH_SEPARATOR_LEN 4

/* Business time of every handler call: 2026-03-02 09:00 CST, a Monday. */
#define SCRATCH_NOW 1772413200000LL

/* The ticket scratch_city_new() registers and the router dispatches, and
 * the unit it goes to (the rule for category "noise"). */
#define SCRATCH_TICKET_UNIT "cy"

typedef struct scratch_worker {
    char name[32];
    store_t *store;
    bus_t *bus;
} scratch_worker_t;

typedef struct scratch_city {
    char dir[512];
    void *zmq;
    config_t *config;
    scratch_worker_t intake, router, escalation, audit;
    /* The workers' logic: intake_t, router_t, escalation_t, audit_t. */
    void *intake_app, *router_app, *escalation_app, *audit_app;
    char ticket_id[64]; /* registered and dispatched at start */
} scratch_city_t;

/* The city with one ticket registered at intake and dispatched by the
 * router (every worker saw its events, committed). Aborts on failure: a
 * fuzz target cannot run without it. */
scratch_city_t *scratch_city(void);

/* Each message of an input, in order. */
typedef void (*scratch_message_fn)(const uint8_t *data, size_t size, void *ctx);
void scratch_split(const uint8_t *data, size_t size, scratch_message_fn fn, void *ctx);

/* A write transaction on worker's store, with the bus batch begun. */
MDB_txn *scratch_begin(scratch_worker_t *worker);
/* Aborts it and tells the bus the batch did not commit. */
void scratch_abort(scratch_worker_t *worker, MDB_txn **txn);

/* Every message in worker's outbox to peer, oldest first. */
typedef void (*scratch_outbox_fn)(const void *body, size_t len, void *ctx);
void scratch_outbox_each(scratch_worker_t *worker, const char *peer, scratch_outbox_fn fn,
                         void *ctx);

/* Packs a reply the way the endpoint would (and frees the bytes): the
 * reply a handler built must encode. Aborts when it does not. */
void scratch_encode(const void *message);

/* A file in the city's directory with these bytes; its path in path. */
void scratch_write_file(const char *name, const void *data, size_t size, char *path,
                        size_t path_len);

#endif

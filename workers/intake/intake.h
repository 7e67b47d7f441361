/* intake: ticket registration, idempotency keys, duplicate detection and the
 * public ticket status (DESIGN.md sections 1, 2 and 4; docs/protocol.md
 * section 4).
 *
 * An intake instance owns the tickets whose ids carry its prefix. Clients
 * send it dispatch.Request on its request endpoint; routers send it the
 * lifecycle events of its tickets on its bus. Every effect of a request or
 * an event (ticket, history, idempotency key, duplicate index, counters, the
 * events it emits) is written in the caller's write transaction, so a batch
 * commits all of it or none of it.
 *
 * The handlers take a transaction and bytes, never a socket: tests and
 * fuzzers call them directly. The worker loop (intake_kind) calls them inside
 * its batch and answers clients only after the commit.
 */
#ifndef DISPATCH_INTAKE_H
#define DISPATCH_INTAKE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "bus.h"
#include "config.h"
#include "dispatch.pb-c.h"
#include "store.h"
#include "worker.h"

/* Largest request body accepted (the request endpoint's ZMQ_MAXMSGSIZE). */
#define INTAKE_MAX_REQUEST (64 * 1024)
/* Ticket id prefix when the topology gives the instance none. */
#define INTAKE_DEFAULT_PREFIX "T"
#define INTAKE_DEFAULT_DUPLICATE_WINDOW_MINUTES 1440

typedef struct intake intake_t;

typedef struct intake_options {
    /* A submit is merged into an open ticket registered at most this long
     * before it (same caller, or same address). 0 = no duplicate detection. */
    int64_t duplicate_window_minutes;
} intake_options_t;

/* Defaults: a window of INTAKE_DEFAULT_DUPLICATE_WINDOW_MINUTES. */
void intake_options_init(intake_options_t *options);

/* Opens the intake's databases in store. `name` is the instance's name in the
 * topology (the origin of its events; its id_prefix, default
 * INTAKE_DEFAULT_PREFIX, starts its ticket ids). store, bus and config are
 * borrowed and must outlive the intake; options may be NULL (defaults).
 * Its events go to the workers its topology `links` name, as the lifecycle
 * table says (peers.h). Returns 0, -EINVAL (unknown name, a prefix or time
 * zone ids.h refuses), -ENOMEM, or a store error. */
int intake_new(store_t *store, bus_t *bus, const config_t *config, const char *name,
               const intake_options_t *options, intake_t **ret);
void intake_destroy(intake_t **self);

/* The city's lists (city_lists.h) a submit's category and area must be on,
 * and that CityListsQuery serves; the intake owns them from now on (NULL:
 * nothing is checked). */
struct city_lists;
void intake_set_city_lists(intake_t *self, struct city_lists *lists);

/* Handles one client request (a serialized dispatch.Request of len bytes) in
 * txn at business time now_ms. On 0, *ret is the reply to send (a result or
 * an Error; Reply.tag = Request.tag). actor is whose key sent it (NULL on a
 * plain endpoint: the hotline's own desk): a GetTicket from a key without
 * the operator role gets the caller's name and phone masked. Like every worker's reply, it belongs
 * to the intake and stays valid until its next request (or its destroy).
 * REFUSED (refusal.h): the bytes were not a Request at all; *ret is the
 * error to send, and the endpoint holds it against the connection.
 * A negative return is a storage failure: the batch must be aborted
 * (nothing of it may commit) and *ret is NULL. MDB_MAP_FULL is among them:
 * store_write() grows the map and reruns. Requests that only read
 * (get_ticket, refusals) may run in a read-only transaction. */
int intake_handle_request(intake_t *self, MDB_txn *txn, const auth_actor_t *actor, const void *body,
                          size_t len, int64_t now_ms, const Dispatch__Reply **ret);

/* Applies one lifecycle event from a router (a serialized dispatch.Event) to
 * the ticket it names, in txn: its state, unit, times and counters, and one
 * history entry. 0 = applied; BUS_REJECTED = undecodable, not about a ticket
 * of this intake, or a kind of event intake only emits; negative = storage
 * failure (abort the batch). */
int intake_handle_event(intake_t *self, MDB_txn *txn, const void *body, size_t len, int64_t now_ms);

/* The bus apply function (app = intake_t): intake_handle_event at
 * clock_now_ms(). */
int intake_apply_event(void *app, MDB_txn *txn, const char *sender, uint64_t seq, const void *body,
                       size_t len);

/* For worker_main: `dispatch-intake ... [--duplicate-window-minutes N]`. */
extern const worker_kind_t intake_kind;

#endif

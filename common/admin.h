/* admin: what every admin endpoint does around its own requests.
 *
 * An AdminRequest is decoded, checked (actor, role, served by this kind of
 * worker: one table, admin_served_by()), handed to the worker's serve
 * function, and answered with an AdminReply. The reply's memory is an
 * admin_reply_t the worker owns: one rule for every admin endpoint, the
 * reply points into it until the next request (admin_reply_reset()).
 *
 * LinksQuery and LinkAccept are served here for every admin endpoint, from
 * the worker's bus (bus_links_each(), bus_accept()): the state of its links,
 * and an operator's acceptance of a diverged peer (admin role only).
 *
 * A queue page (ListQueue) collects items, each with the record it points
 * into (an unpacked message the page frees) and a text buffer, up to the
 * request's limit and under QUEUE_MAX_BYTES so that the reply fits the
 * clients' 64 KiB.
 */
#ifndef DISPATCH_ADMIN_H
#define DISPATCH_ADMIN_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "authz.h"
#include "bus.h"
#include "dispatch.pb-c.h"
#include "endpoint.h"
#include "lifecycle.h"
#include "linkview.h"
#include "refusal.h"
#include "store.h"

#define ADMIN_QUEUE_DEFAULT_LIMIT 100
#define ADMIN_QUEUE_MAX_LIMIT 500
#define ADMIN_QUEUE_MAX_BYTES (60 * 1024)

/* One item of a page, with the record its strings point into. */
typedef struct admin_entry {
    Dispatch__QueueItem item;
    ProtobufCMessage *record;
    char text[LIMIT_TEXT + 1];
} admin_entry_t;

/* The memory an AdminReply points into. */
typedef struct admin_reply {
    refusal_t refusal;
    Dispatch__Error error;
    Dispatch__AdminDone done;
    char ticket_id[LIMIT_ID + 1];
    Dispatch__QueueView queue;
    admin_entry_t *entries;
    Dispatch__QueueItem **items;
    size_t entry_count, entry_capacity;
    size_t limit, bytes;
    bool more;
    linkview_t links;
    Dispatch__WorkerStats stats; /* its links point into links */
} admin_reply_t;

/* Frees the records of the last reply (not the arrays, kept for reuse). */
void admin_reply_reset(admin_reply_t *reply);
/* Frees everything. */
void admin_reply_free(admin_reply_t *reply);

/* Which worker kind serves a request body (0 for none set). */
lifecycle_worker_t admin_served_by(Dispatch__AdminRequest__BodyCase body);

/* Which worker kind serves a ListQueue of this kind (0 for UNSPECIFIED). */
lifecycle_worker_t admin_queue_served_by(Dispatch__QueueKind kind);
/* MISSING_FIELD for no kind, BAD_REQUEST naming the right worker for a
 * queue that `self` does not serve. */
int admin_check_queue(refusal_t *refusal, Dispatch__QueueKind kind, lifecycle_worker_t self);

/* The request was applied: AdminDone with the ticket and its state. */
void admin_done(admin_reply_t *memory, Dispatch__AdminReply *reply, const char *ticket_id,
                Dispatch__TicketState state);

/* Checks ListQueue.limit (OUT_OF_RANGE past ADMIN_QUEUE_MAX_LIMIT) and
 * starts an empty page of that many items at most. */
int admin_page_start(admin_reply_t *memory, refusal_t *refusal, uint32_t limit);
/* Adds an entry that owns record (freed with the page, or at once on
 * failure). *ret is NULL when the page is full (the caller stops: return 1
 * from its iteration); -ENOMEM. The caller fills entry->item, then calls
 * admin_page_keep(). */
int admin_page_add(admin_reply_t *memory, ProtobufCMessage *record, admin_entry_t **ret);
/* Keeps the entry just filled unless it would push the reply past
 * ADMIN_QUEUE_MAX_BYTES: then it is dropped, the page is full (returns 1). */
int admin_page_keep(admin_reply_t *memory);
/* The QueueView of the page, into reply. */
int admin_page_finish(admin_reply_t *memory, Dispatch__AdminReply *reply);

/* One admin request being served: what a worker's serve function gets.
 * The reply (and memory) hold the answer; err the refusal. */
typedef struct admin_call {
    void *worker;   /* the router_t or escalation_t serving it */
    store_t *store; /* its store: StatsQuery, LinksQuery */
    bus_t *bus;     /* its bus: LinksQuery, LinkAccept */
    MDB_txn *txn;
    int64_t now;
    const Dispatch__AdminRequest *request;
    const auth_actor_t *actor; /* the key's (NULL on a plain endpoint) */
    Dispatch__AdminReply *reply;
    admin_reply_t *memory;
    refusal_t *err;
} admin_call_t;

/* Serves one request (checked: actor, role, served by this kind of
 * worker); returns 0, REFUSED with call->err filled, or a negative code. */
typedef int (*admin_serve_fn)(admin_call_t *call);

/* authz_named() for the call's role; admin_done() for its reply. */
int admin_require(admin_call_t *call, authz_call_t what);
void admin_call_done(admin_call_t *call, const char *ticket_id, Dispatch__TicketState state);

/* Decodes and checks an AdminRequest of len bytes (at most max), serves it
 * in txn at now and fills reply (tag, body): LinksQuery and StatsQuery from
 * bus and store, LinkAccept from bus, the rest through serve. actor is who
 * the request's key belongs to (NULL on a plain endpoint): an actor_id
 * other than its name, or a role it does not hold, is FORBIDDEN. A refusal
 * becomes the reply's Error (a partial page is dropped). A negative return
 * is a failure of the worker itself (storage): the batch is aborted. */
int admin_handle(admin_reply_t *memory, lifecycle_worker_t self, void *worker, store_t *store,
                 bus_t *bus, MDB_txn *txn, const auth_actor_t *actor, int64_t now, const void *body,
                 size_t len, size_t max, admin_serve_fn serve, Dispatch__AdminReply *reply);

/* The worker's admin_handle() for a request served outside any batch (txn
 * NULL, at the time it wants). */
typedef int (*admin_outside_fn)(void *worker, const auth_actor_t *actor, const void *body,
                                size_t len, Dispatch__AdminReply *reply);

/* The batch the requests of endpoint admin (at most max bytes each) came in
 * did not commit: each is answered UNAVAILABLE with message, but LinksQuery
 * and StatsQuery, which read nothing the batch wrote, are served by outside:
 * while batches fail they are how an operator learns why. */
void admin_answer_failed(endpoint_t *admin, size_t max, const char *message,
                         admin_outside_fn outside, void *worker);

#endif

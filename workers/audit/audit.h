/* audit: dispatch-audit, one per city (DESIGN.md sections 1, 3, 4, 6;
 * docs/protocol.md section 7; docs/kpi.md).
 *
 * Every event any worker sends it on the bus is recorded once: the bus
 * drops repeats per link, and audit.events (event_id -> seq) drops an event
 * seen before under the same id from any link. A recorded event gets the
 * next global seq in the hash-chained log (trail.h), and the projections
 * (kpi.h: ticket history, facts, KPI counts) move in the same transaction.
 * After the commit the new records go out on the live stream, masked
 * (stream.h). Queries on the request endpoint only read.
 *
 * Invariants (of every committed state):
 *  - each event_id in audit.events names the one record that holds it;
 *  - the log and the projections describe the same events (kpi.h);
 *  - records up to the head were published once the batch committed;
 *    a subscriber that missed some replays them (follower.h).
 *
 * Handlers take a transaction and bytes, never a socket: tests and fuzzers
 * call them directly. Replies point into memory the audit owns until its
 * next request or audit_destroy().
 */
#ifndef DISPATCH_AUDIT_H
#define DISPATCH_AUDIT_H

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "dispatch.pb-c.h"
#include "kpi.h"
#include "store.h"
#include "worker.h"

/* Largest query accepted (the request endpoint's ZMQ_MAXMSGSIZE). */
#define AUDIT_MAX_REQUEST (64 * 1024)
/* Replay and history replies stay under this many bytes. */
#define AUDIT_MAX_REPLY_RECORDS_BYTES (60 * 1024)

typedef struct audit audit_t;

typedef struct audit_options {
    kpi_options_t kpi;
    /* The city's time zone: periods are its local days. When set, audit_new
     * points the process's TZ at it (the worker is single-threaded). NULL =
     * the process's zone as it is. */
    const char *timezone;
    int stream_hwm; /* ZMQ_SNDHWM of the stream; 0 = 10000 */
} audit_options_t;

void audit_options_init(audit_options_t *options);

/* Opens the audit's databases in store (borrowed; must outlive the audit). */
int audit_new(store_t *store, const audit_options_t *options, audit_t **ret);
void audit_destroy(audit_t **self);

/* Records one event from the bus (a serialized dispatch.Event), logged at
 * business time now_ms. 0 = recorded, or a repeat of a recorded event_id
 * (nothing changes); BUS_REJECTED = not an Event (kept in bus.dead);
 * negative = storage failure (abort the batch). *seq (may be NULL) gets the
 * record's seq, 0 for a repeat. */
int audit_handle_event(audit_t *self, MDB_txn *txn, const void *body, size_t len, int64_t now_ms,
                       uint64_t *seq);

/* The bus apply function (app = audit_t): audit_handle_event at
 * clock_now_ms(). */
int audit_apply_event(void *app, MDB_txn *txn, const char *sender, uint64_t seq, const void *body,
                      size_t len);

/* Answers one query (an AuditQuery, or a bare ReplayRequest) read in txn
 * (a read-only one is enough) at business time now_ms. On 0, *reply is the
 * reply to send: an AuditReply, or a ReplayReply for a bare ReplayRequest;
 * it lives until the next call. actor is the key that asked (NULL on a
 * plain endpoint): a query its roles may not make is FORBIDDEN (authz.h).
 * Negative: storage failure. */
int audit_handle_request(audit_t *self, MDB_txn *txn, const auth_actor_t *actor, const void *body,
                         size_t len, int64_t now_ms, const ProtobufCMessage **reply);

/* The record subscribers get for seq (masked), packed into *buf (malloc'ed,
 * the caller frees), with its topic. -ENOENT when there is no such record. */
int audit_stream_message(audit_t *self, MDB_txn *txn, uint64_t seq, char *topic, size_t topic_len,
                         void **buf, size_t *len);

/* For worker_main: binds `request` and `publish`, and takes
 * --stream-hwm N, --sign-for-minutes N, --sign-for-urgent-minutes N,
 * --handle-hours N, --handle-urgent-hours N. */
extern const worker_kind_t audit_kind;

#endif

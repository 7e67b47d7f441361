/* client: synchronous clients of the Dispatch endpoints, for tools and tests
 * (docs/protocol.md sections 2, 5 and 6).
 *
 * client_t: one request, one reply, on the intake request endpoint, an admin
 * endpoint or the audit replay endpoint.
 *
 *   - A DEALER socket (LINGER 0, ZMQ_MAXMSGSIZE CLIENT_MAX_REPLY) sends
 *     [empty][body] and waits in zmq_poll, up to the timeout, for a reply of
 *     the same shape; frames of another shape are skipped.
 *   - Tags: when the request message has a non-repeated uint64 field named
 *     "tag" (Request.tag, AdminRequest.tag), every call sends a fresh nonzero
 *     tag in it (the caller's message is not modified) and, when the reply
 *     has a "tag" field too, skips replies whose tag differs. A reply with
 *     tag 0 is accepted: a server that cannot decode a request cannot echo
 *     its tag.
 *   - On a timeout the socket is closed and a new one connected, so a late
 *     reply to this request is never taken for the answer to the next one.
 *   - Invariant between calls: no request is outstanding on the socket.
 *
 * unit_session_t: a unit's DEALER on a router's unit endpoint (section 5).
 *
 *   - Routing id: the unit id for the unit's main session, which receives
 *     the unit's deliveries; "<unit id>/<session>" for a side session (e.g.
 *     the CLI's "U/cli-<pid>"), which gets the results of its own actions
 *     and does not take the main session's place. Set before connect;
 *     LINGER 0; ZMQ_MAXMSGSIZE CLIENT_MAX_REPLY.
 *   - unit_session_act() waits for the action_result (seq 0) with the same
 *     action_id; everything else that arrives meanwhile (sequenced
 *     deliveries, results of other actions) is queued in arrival order and
 *     returned first by unit_session_recv(). The queue holds at most
 *     UNIT_SESSION_QUEUE_MAX deliveries; past that, new ones are dropped,
 *     which is safe: the router resends every unacknowledged delivery.
 *   - Frames that are not [empty][body] and bodies that do not decode as a
 *     UnitDelivery are skipped and counted (unit_session_skipped()).
 *
 * Errors are 0 or negative: -ETIMEDOUT (no answer in time), -EINVAL (bad
 * argument), -ENOMEM, -EBADMSG (client_call: the reply does not decode),
 * -EINTR (a signal interrupted the wait), other -errno from ZeroMQ. Decoding
 * goes through codec_decode (UTF-8 and enum checks) with a limit of
 * CLIENT_MAX_REPLY bytes. Returned messages belong to the caller: free them
 * with protobuf_c_message_free_unpacked(msg, NULL). Nothing here logs.
 * Timeouts run on CLOCK_MONOTONIC.
 */
#ifndef DISPATCH_CLIENT_H
#define DISPATCH_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.pb-c.h"

/* Largest reply or delivery accepted, in bytes. */
#define CLIENT_MAX_REPLY (1024 * 1024)

/* Most deliveries unit_session_act() keeps for unit_session_recv(). */
#define UNIT_SESSION_QUEUE_MAX 4096

typedef struct client client_t;

/* Connects a DEALER to url. timeout_ms > 0 bounds each call. */
int client_new(void *zmq_ctx, const char *url, int timeout_ms, client_t **ret);
void client_destroy(client_t **self);

/* Sends request and waits for its reply, decoded as reply_descriptor into
 * *reply (owned by the caller). On error *reply is NULL. */
int client_call(client_t *self, const ProtobufCMessage *request,
                const ProtobufCMessageDescriptor *reply_descriptor, ProtobufCMessage **reply);

/* The tag sent by the last call (0 when the request has no tag field). */
uint64_t client_last_tag(const client_t *self);

typedef struct unit_session unit_session_t;

/* Connects to a router's unit endpoint as unit_id (<= 64 bytes, not empty).
 * session NULL: the unit's main session (routing id = unit_id); otherwise
 * routing id "unit_id/session" (at most 255 bytes in all). */
int unit_session_new(void *zmq_ctx, const char *url, const char *unit_id, const char *session,
                     unit_session_t **ret);
void unit_session_destroy(unit_session_t **self);
const char *unit_session_routing_id(const unit_session_t *self);

/* Sends one action, without waiting; -EAGAIN when the socket's send queue
 * is full. */
int unit_session_send(unit_session_t *self, const Dispatch__UnitAction *action);

/* Next delivery: first from the queue, else from the socket, waiting up to
 * timeout_ms (0 = only what is already there). Returns 0 and *ret (owned by
 * the caller), or -ETIMEDOUT, -EINTR. Includes action results (seq 0). */
int unit_session_recv(unit_session_t *self, int timeout_ms, Dispatch__UnitDelivery **ret);

/* Sends UnitAction { unit_id, ack: UnitAck { seq } }. */
int unit_session_ack(unit_session_t *self, uint64_t seq);

/* Sends action and waits up to timeout_ms for its ActionResult (*ret, owned
 * by the caller). action->action_id must be set; an empty action->unit_id is
 * set to the session's unit id (a string owned by the session). -ETIMEDOUT
 * when no result came: resend the same action (same action_id) to retry. */
int unit_session_act(unit_session_t *self, Dispatch__UnitAction *action, int timeout_ms,
                     Dispatch__ActionResult **ret);

/* Deliveries waiting in the queue. */
size_t unit_session_queued(const unit_session_t *self);
/* Messages skipped: wrong frame shape, undecodable, or queue full. */
uint64_t unit_session_skipped(const unit_session_t *self);

#endif

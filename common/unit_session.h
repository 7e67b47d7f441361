/* unit_session: a unit's session on a router's unit endpoint, the one
 * client of docs/protocol.md section 5 (used by dispatch-unitsim,
 * dispatchctl's unit commands and the tests' unit pool).
 *
 *   - A DEALER (dealer.h) whose routing id is "<unit id>/<secret>" for the
 *     unit's main session, which receives the unit's deliveries, or
 *     "<unit id>/<session>-<secret>" for a side session (e.g. the CLI's
 *     "U/cli-<pid>-..."), which gets the results of its own actions and
 *     does not take the main session's place. The secret is 64 random bits
 *     drawn for each session: the router hands a routing id over to
 *     whoever connects with it (ZMQ_ROUTER_HANDOVER, so that a unit that
 *     reconnects replaces its old connection at once), and a routing id
 *     nobody can guess is what keeps another key from taking a unit's
 *     connection, and its deliveries, over.
 *   - Deliveries in order (section 5.1): unit_session_start() says what the
 *     unit has applied and sends the ack that opens the session;
 *     unit_session_next() then returns each sequenced delivery once, in seq
 *     order, and the action results (seq 0) as they come. It first moves
 *     "applied" up to the router's `acked` (a desk that lost its position
 *     continues from there); a delivery at or below "applied" is a
 *     duplicate, one beyond applied + 1 a gap: both are dropped and counted,
 *     and the router resends after the next ack. A returned delivery counts
 *     as applied: the next ack covers it.
 *   - Acks: every sequenced delivery that arrives makes an ack owed.
 *     unit_session_next() sends it when it finds nothing more waiting (the
 *     batch is drained, and the caller applied what it returned before it
 *     called again); unit_session_ack_due() sends it at once, or sends the
 *     ack again as a heartbeat when the last one is older than the caller's
 *     interval.
 *   - unit_session_act() waits for the action_result with the same
 *     action_id; everything else that arrives meanwhile is queued in arrival
 *     order and returned first by unit_session_recv() and
 *     unit_session_next(). The queue holds at most UNIT_SESSION_QUEUE_MAX
 *     deliveries; past that, new ones are dropped, which is safe: the router
 *     resends every unacknowledged delivery.
 *   - Frames that are not [empty][body] and bodies that do not decode as a
 *     UnitDelivery are skipped and counted (unit_session_skipped()).
 *
 * Invariant between calls: every sequenced delivery with seq <= applied was
 * returned by unit_session_next() once (or applied before the session
 * started), none beyond it; ack_owed is set when a sequenced delivery came
 * after the last ack.
 *
 * Errors are 0 or negative: -ETIMEDOUT (nothing in time), -EINVAL (bad
 * argument), -ENOMEM, -EAGAIN (the send queue is full), -EINTR (a signal
 * interrupted the wait), other -errno from ZeroMQ. Returned messages belong
 * to the caller: free them with protobuf_c_message_free_unpacked(msg, NULL).
 * Nothing here logs. Timeouts run on CLOCK_MONOTONIC.
 */
#ifndef DISPATCH_UNIT_SESSION_H
#define DISPATCH_UNIT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "dispatch.pb-c.h"

/* Most deliveries unit_session_act() keeps for unit_session_recv(). */
#define UNIT_SESSION_QUEUE_MAX 4096

typedef struct unit_session unit_session_t;

/* Connects to a router's unit endpoint as unit_id (<= 64 bytes, not empty).
 * session NULL: the unit's main session (routing id "unit_id/<secret>");
 * otherwise routing id "unit_id/session-<secret>" (at most 255 bytes in
 * all). */
int unit_session_new(void *zmq_ctx, const char *url, const char *unit_id, const char *session,
                     const auth_client_t *curve, unit_session_t **ret);
void unit_session_destroy(unit_session_t **self);
const char *unit_session_routing_id(const unit_session_t *self);
/* The unit id (a string owned by the session). */
const char *unit_session_unit_id(const unit_session_t *self);

/* The socket, for zmq_poll (ZMQ_POLLIN) only: read through the session.
 * Deliveries queued by unit_session_act() do not make it readable. */
void *unit_session_socket(const unit_session_t *self);

/* Sends one action, without waiting; -EAGAIN when the socket's send queue
 * is full. */
int unit_session_send(unit_session_t *self, const Dispatch__UnitAction *action);
/* Sends an encoded UnitAction as it is (a resend keeps its bytes, and so its
 * action_id). */
int unit_session_send_encoded(unit_session_t *self, const void *body, size_t len);

/* Next delivery as it arrived: first from the queue, else from the socket,
 * waiting up to timeout_ms (0 = only what is already there). Returns 0 and
 * *ret (owned by the caller), or -ETIMEDOUT, -EINTR. Includes action results
 * (seq 0); no ordering, no ack owed. */
int unit_session_recv(unit_session_t *self, int timeout_ms, Dispatch__UnitDelivery **ret);

/* Sends UnitAction { unit_id, ack: UnitAck { seq } }. */
int unit_session_ack(unit_session_t *self, uint64_t seq);

/* Sends action and waits up to timeout_ms for its ActionResult (*ret, owned
 * by the caller). action->action_id must be set; an empty action->unit_id is
 * set to the session's unit id (a string owned by the session). -ETIMEDOUT
 * when no result came: resend the same action (same action_id) to retry. */
int unit_session_act(unit_session_t *self, Dispatch__UnitAction *action, int timeout_ms,
                     Dispatch__ActionResult **ret);

/* --- deliveries in order (section 5.1) --- */

/* The unit has applied every delivery up to `applied` (0 at first): sets
 * that and sends the ack that opens the session. */
int unit_session_start(unit_session_t *self, uint64_t applied);

/* The next delivery to apply (seq = applied + 1, then counted as applied)
 * or an action result (seq 0), waiting up to timeout_ms (0 = only what is
 * already there); an owed ack goes out when nothing more is waiting.
 * Returns 0 and *ret (owned by the caller), or -ETIMEDOUT, -EINTR. */
int unit_session_next(unit_session_t *self, int timeout_ms, Dispatch__UnitDelivery **ret);

/* Sends the ack of what was applied when one is owed, or when the last ack
 * went heartbeat_ms or more ago (heartbeat_ms < 0: only when owed). 0 when
 * it went or none was due. */
int unit_session_ack_due(unit_session_t *self, int heartbeat_ms);

/* The highest seq applied. */
uint64_t unit_session_applied(const unit_session_t *self);

/* Deliveries waiting in the queue. */
size_t unit_session_queued(const unit_session_t *self);
/* Messages skipped: wrong frame shape, undecodable, or queue full. */
uint64_t unit_session_skipped(const unit_session_t *self);
/* Sequenced deliveries dropped by unit_session_next(): already applied
 * (duplicates) or beyond the next one (gaps). */
uint64_t unit_session_duplicates(const unit_session_t *self);
uint64_t unit_session_gaps(const unit_session_t *self);

#endif

/* client: a synchronous client of the Dispatch request/reply endpoints, for
 * tools and tests (docs/protocol.md sections 2, 4, 6 and 7): one request,
 * one reply, on the intake request endpoint, an admin endpoint or the audit
 * request endpoint. (A unit's session is unit_session.h.)
 *
 *   - A DEALER socket (dealer.h: LINGER 0, ZMQ_MAXMSGSIZE DEALER_MAX_MESSAGE) sends
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
 * Errors are 0 or negative: -ETIMEDOUT (no answer in time), -EINVAL (bad
 * argument), -ENOMEM, -EBADMSG (the reply does not decode), -EINTR (a
 * signal interrupted the wait), other -errno from ZeroMQ. Decoding goes
 * through codec_decode (UTF-8 and enum checks) with a limit of
 * DEALER_MAX_MESSAGE bytes. Returned messages belong to the caller: free them
 * with protobuf_c_message_free_unpacked(msg, NULL). Nothing here logs.
 * Timeouts run on CLOCK_MONOTONIC.
 */
#ifndef DISPATCH_CLIENT_H
#define DISPATCH_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "dispatch.pb-c.h"

typedef struct client client_t;

/* Connects a DEALER to url. timeout_ms > 0 bounds each call. */
int client_new(void *zmq_ctx, const char *url, int timeout_ms, const auth_client_t *curve,
               client_t **ret);
void client_destroy(client_t **self);

/* Sends request and waits for its reply, decoded as reply_descriptor into
 * *reply (owned by the caller). On error *reply is NULL. */
int client_call(client_t *self, const ProtobufCMessage *request,
                const ProtobufCMessageDescriptor *reply_descriptor, ProtobufCMessage **reply);

/* The tag sent by the last call (0 when the request has no tag field). */
uint64_t client_last_tag(const client_t *self);

#endif

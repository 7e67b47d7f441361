/* dealer: the client end of a Dispatch endpoint (docs/protocol.md section
 * 2): a DEALER socket whose messages are [empty][one protobuf body], in both
 * directions.
 *
 * Plain functions over a ZeroMQ socket that the caller owns and closes
 * (zmq_close). client.h (one request, one reply) and unit_session.h (a
 * unit's session) are built on them; a tool that keeps many requests in
 * flight on one socket uses them directly.
 *
 *   - dealer_open() sets LINGER 0 and ZMQ_MAXMSGSIZE DEALER_MAX_MESSAGE, and
 *     the routing id when one is given, before it connects.
 *   - Sends never block: -EAGAIN when the send queue is full.
 *   - dealer_recv() reads one waiting message without blocking. A message of
 *     another shape is read whole, dropped and reported as -EPROTO; a body
 *     that does not decode (codec_decode: UTF-8 and enum checks, at most
 *     DEALER_MAX_MESSAGE bytes) is dropped and reported as -EBADMSG.
 *   - Time is CLOCK_MONOTONIC in ms (dealer_clock_ms()).
 *
 * Errors are 0 or negative: -EAGAIN, -EPROTO, -EBADMSG, -ETIMEDOUT, -EINTR, -ENOMEM,
 * other -errno from ZeroMQ. Nothing here logs.
 */
#ifndef DISPATCH_DEALER_H
#define DISPATCH_DEALER_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

/* Largest reply or delivery accepted, in bytes. */
#define DEALER_MAX_MESSAGE (1024 * 1024)

/* A DEALER connected to url (*ret, the caller closes it); routing_id NULL
 * lets the server pick one. */
int dealer_open(void *zmq_ctx, const char *url, const char *routing_id, const auth_client_t *curve,
                void **ret);

/* Sends [empty][body]. */
int dealer_send(void *socket, const void *body, size_t len);
/* Packs msg and sends it. */
int dealer_send_message(void *socket, const ProtobufCMessage *msg);

/* One waiting message decoded as descriptor into *ret (owned by the caller:
 * protobuf_c_message_free_unpacked). -EAGAIN when nothing is waiting. */
int dealer_recv(void *socket, const ProtobufCMessageDescriptor *descriptor, ProtobufCMessage **ret);

/* Waits until socket is readable (0) or deadline passes (-ETIMEDOUT). */
int dealer_wait(void *socket, int64_t deadline);

/* Now on CLOCK_MONOTONIC, in ms. */
int64_t dealer_clock_ms(void);

#endif

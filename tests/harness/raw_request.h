/* raw_request: one request of arbitrary bytes to a worker's socket, for the
 * tests of malformed, oversized and hostile input, which the real clients
 * cannot send.
 */
#ifndef DISPATCH_RAW_REQUEST_H
#define DISPATCH_RAW_REQUEST_H

#include <stddef.h>

#include "auth.h"

/* Sends body as [empty][body] on a fresh DEALER connected to url (with the
 * ZMQ routing id routing_id and the CURVE keys keys, each when not NULL)
 * and returns the body of the first reply, or NULL when none came within
 * wait_ms. The reply is malloc'ed (one byte more than *reply_len); the
 * caller frees it. */
void *raw_request(void *zmq, const char *url, const auth_client_t *keys, const char *routing_id,
                  const void *body, size_t len, int wait_ms, size_t *reply_len);

#endif

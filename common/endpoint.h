/* endpoint: a client-facing ROUTER socket (requests in, replies and pushes
 * out), for the intake request endpoint, the admin endpoints and the router's
 * unit endpoint.
 *
 * Framing (docs/protocol.md): a client sends [empty][body], so REQ and DEALER
 * clients both work; the ROUTER adds the client's routing id in front. A
 * reply or a push goes out as [routing id][empty][body].
 *
 * endpoint_drain() reads what is waiting (non-blocking) into the request
 * queue; frames that are not [empty][body] are dropped and counted. The
 * worker handles the queue inside its batch, sets one reply per request
 * (endpoint_reply), and calls endpoint_flush() after the commit: nothing is
 * answered before it is durable. endpoint_clear_replies() undoes the
 * replies of an aborted batch attempt.
 *
 * With an auth_t (auth.h) the socket is a CURVE server: only keys of the
 * city's key directory get a handshake, and every request carries the
 * actor its key belongs to, looked up when it is drained; a request whose
 * key was revoked since the handshake is dropped and counted.
 *
 * The socket has ZMQ_MAXMSGSIZE: a larger frame makes ZeroMQ drop the
 * sender's connection; a REQ client then times out and reconnects.
 *
 * A connection that floods garbage is cut, so that it cannot take the
 * worker's loop from everybody else. Malformed requests are held against
 * the connection they came on (ZeroMQ's routing id; frames not
 * [empty][body] are counted here, bodies the worker could not decode are
 * told with endpoint_strike()). ENDPOINT_STRIKES of them within
 * ENDPOINT_STRIKE_WINDOW_MS and the connection's socket is shut down
 * under ZeroMQ, which drops it as it drops a peer that went away; what
 * the connection still had queued is dropped unread. Its key is then
 * refused new handshakes for a while (auth_suspend()): a client that
 * keeps flooding costs a handshake now and then instead of the loop. The
 * key's other connections stay up. Before a cut the far end is checked
 * against the one the connection had at its first strike, so a socket
 * number ZeroMQ closed and reused meanwhile is never cut. The owner logs
 * the cuts (endpoint_take_cuts()); a drain reads at most max_queue
 * messages, good or bad, so that it always ends.
 */
#ifndef DISPATCH_ENDPOINT_H
#define DISPATCH_ENDPOINT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "auth.h"

typedef struct endpoint endpoint_t;

typedef struct endpoint_request {
    const void *peer; /* routing id of the client */
    size_t peer_len;
    const void *body;
    size_t body_len;
    /* Who sent it, as its key says; NULL on a plain endpoint. Valid, like
     * peer and body, until endpoint_flush(). */
    const auth_actor_t *actor;
} endpoint_request_t;

/* Binds a ROUTER at url. max_message: ZMQ_MAXMSGSIZE; max_queue: requests
 * read per drain. auth: NULL for plain ZMTP, else the context's ZAP
 * handler with the server's key pair; it must outlive the endpoint. */
int endpoint_new(void *zmq_context, const char *url, int64_t max_message, size_t max_queue,
                 auth_t *auth, endpoint_t **ret);
void endpoint_destroy(endpoint_t **self);
/* Poll items (ZMQ_POLLIN) for the endpoints of the list that are not NULL,
 * at most capacity; their count. */
size_t endpoint_pollitems(endpoint_t *const *endpoints, size_t count, zmq_pollitem_t *items,
                          size_t capacity);
const char *endpoint_url(const endpoint_t *self); /* port resolved */
void *endpoint_socket(endpoint_t *self);

/* Reads waiting requests; returns how many are queued. */
size_t endpoint_drain(endpoint_t *self);
size_t endpoint_count(const endpoint_t *self);
void endpoint_request(const endpoint_t *self, size_t i, endpoint_request_t *request);

/* Sets (replacing) the reply to request i: msg is packed now. */
int endpoint_reply(endpoint_t *self, size_t i, const ProtobufCMessage *msg);
void endpoint_clear_replies(endpoint_t *self);
/* Sends every reply set, then empties the queue. */
void endpoint_flush(endpoint_t *self);

/* Sends msg to a client now (unsolicited push, e.g. a delivery to a unit).
 * -EHOSTUNREACH when that client is not connected. */
int endpoint_push(endpoint_t *self, const void *peer, size_t peer_len, const ProtobufCMessage *msg);

/* Request i was not a message of the protocol (its body did not decode):
 * a strike against its connection (once per request). */
void endpoint_strike(endpoint_t *self, size_t i);

#define ENDPOINT_STRIKES 64
#define ENDPOINT_STRIKE_WINDOW_MS 1000
#define ENDPOINT_CUTS_MAX 8

/* A connection cut, for the owner's log. */
typedef struct endpoint_cut {
    char actor[AUTH_NAME_MAX + 1]; /* its key's actor; "" on a plain endpoint */
    char address[64];              /* its far end, ip:port */
    int suspended_ms;              /* how long its key is refused; 0 = not */
} endpoint_cut_t;
/* Moves the cuts made since the last call (up to capacity, at most
 * ENDPOINT_CUTS_MAX are kept) into out; their count. */
size_t endpoint_take_cuts(endpoint_t *self, endpoint_cut_t *out, size_t capacity);

typedef struct endpoint_stats {
    uint64_t bad_frames; /* dropped: not [empty][body] */
    uint64_t revoked;    /* dropped: the key is no longer in the directory */
    uint64_t malformed;  /* strikes: bad frames and bodies that did not decode */
    uint64_t cuts;       /* connections cut */
    uint64_t dropped;    /* messages of cut connections dropped unread */
} endpoint_stats_t;
void endpoint_stats(const endpoint_t *self, endpoint_stats_t *ret);
/* The sum over every endpoint this process made (its StatsQuery answer):
 * counts only, so a worker needs no endpoint at hand to tell them. */
void endpoint_stats_all(endpoint_stats_t *ret);

#endif

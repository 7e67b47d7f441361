#include "endpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "polled.h"

typedef struct slot {
    zmq_msg_t peer, body;
    void *reply;
    size_t reply_len;
    auth_actor_t actor;
} slot_t;

struct endpoint {
    void *socket;
    char url[256];
    slot_t *slots;
    size_t count, capacity;
    uint64_t bad_frames;
    auth_t *auth; /* NULL: plain */
    uint64_t revoked;
};

static int set_int(void *socket, int option, int value)
{
    return zmq_setsockopt(socket, option, &value, sizeof(value)) == 0 ? 0 : -errno;
}

int endpoint_new(void *zmq_context, const char *url, int64_t max_message, size_t max_queue,
                 auth_t *auth, endpoint_t **ret)
{
    endpoint_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->auth = auth;
    self->capacity = max_queue ? max_queue : 1024;
    self->slots = calloc(self->capacity, sizeof(*self->slots));
    self->socket = zmq_socket(zmq_context, ZMQ_ROUTER);
    int rc = self->slots && self->socket ? 0 : -ENOMEM;
    if (rc == 0)
        rc = set_int(self->socket, ZMQ_LINGER, 0);
    /* Replies to a client that is gone fail instead of vanishing. */
    if (rc == 0)
        rc = set_int(self->socket, ZMQ_ROUTER_MANDATORY, 1);
    if (rc == 0)
        rc = set_int(self->socket, ZMQ_ROUTER_HANDOVER, 1);
    if (rc == 0 &&
        zmq_setsockopt(self->socket, ZMQ_MAXMSGSIZE, &max_message, sizeof(max_message)) < 0)
        rc = -errno;
    if (rc == 0 && auth)
        rc = auth_server_apply(auth, self->socket);
    if (rc == 0 && zmq_bind(self->socket, url) < 0)
        rc = -errno;
    size_t len = sizeof(self->url);
    if (rc == 0 && zmq_getsockopt(self->socket, ZMQ_LAST_ENDPOINT, self->url, &len) < 0)
        rc = -errno;
    if (rc < 0) {
        endpoint_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

static void slot_release(slot_t *slot)
{
    zmq_msg_close(&slot->peer);
    zmq_msg_close(&slot->body);
    free(slot->reply);
    slot->reply = NULL;
}

size_t endpoint_pollitems(endpoint_t *const *endpoints, size_t count, zmq_pollitem_t *items,
                          size_t capacity)
{
    size_t n = 0;
    for (size_t i = 0; i < count && n < capacity; i++)
        if (endpoints[i])
            items[n++] = (zmq_pollitem_t){.socket = endpoints[i]->socket, .events = ZMQ_POLLIN};
    return n;
}

void endpoint_destroy(endpoint_t **self)
{
    endpoint_t *endpoint = *self;
    if (!endpoint)
        return;
    for (size_t i = 0; i < endpoint->count; i++)
        slot_release(&endpoint->slots[i]);
    if (endpoint->socket)
        zmq_close(endpoint->socket);
    free(endpoint->slots);
    free(endpoint);
    *self = NULL;
}

const char *endpoint_url(const endpoint_t *self)
{
    return self->url;
}

void *endpoint_socket(endpoint_t *self)
{
    return self->socket;
}

static bool more(void *socket)
{
    int value = 0;
    size_t size = sizeof(value);
    return zmq_getsockopt(socket, ZMQ_RCVMORE, &value, &size) == 0 && value;
}

static void discard_rest(void *socket)
{
    while (more(socket)) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, socket, ZMQ_DONTWAIT);
        zmq_msg_close(&part);
    }
}

/* The actor of the key the message came with, as the directory says now. */
static bool actor_of(auth_t *auth, zmq_msg_t *msg, auth_actor_t *actor)
{
    const char *key = zmq_msg_gets(msg, "X-Key");
    return key && auth_lookup(auth, key, actor) == 0;
}

size_t endpoint_drain(endpoint_t *self)
{
    if (!polled_maybe_readable(self->socket))
        return self->count; /* the loop's poll found nothing waiting */
    while (self->count < self->capacity) {
        slot_t *slot = &self->slots[self->count];
        zmq_msg_init(&slot->peer);
        if (zmq_msg_recv(&slot->peer, self->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&slot->peer);
            break;
        }
        zmq_msg_t delimiter;
        zmq_msg_init(&delimiter);
        zmq_msg_init(&slot->body);
        bool ok = more(self->socket) && zmq_msg_recv(&delimiter, self->socket, 0) >= 0 &&
                  zmq_msg_size(&delimiter) == 0 && more(self->socket) &&
                  zmq_msg_recv(&slot->body, self->socket, 0) >= 0 && !more(self->socket);
        zmq_msg_close(&delimiter);
        if (!ok) {
            discard_rest(self->socket);
            zmq_msg_close(&slot->peer);
            zmq_msg_close(&slot->body);
            self->bad_frames++;
            continue;
        }
        if (self->auth && !actor_of(self->auth, &slot->body, &slot->actor)) {
            zmq_msg_close(&slot->peer);
            zmq_msg_close(&slot->body);
            self->revoked++;
            continue;
        }
        slot->reply = NULL;
        self->count++;
    }
    return self->count;
}

size_t endpoint_count(const endpoint_t *self)
{
    return self->count;
}

void endpoint_request(const endpoint_t *self, size_t i, endpoint_request_t *request)
{
    slot_t *slot = &self->slots[i];
    *request = (endpoint_request_t){
        .peer = zmq_msg_data(&slot->peer),
        .peer_len = zmq_msg_size(&slot->peer),
        .body = zmq_msg_data(&slot->body),
        .body_len = zmq_msg_size(&slot->body),
        .actor = self->auth ? &slot->actor : NULL,
    };
}

int endpoint_reply(endpoint_t *self, size_t i, const ProtobufCMessage *msg)
{
    slot_t *slot = &self->slots[i];
    free(slot->reply);
    slot->reply = NULL;
    return codec_encode(msg, &slot->reply, &slot->reply_len);
}

void endpoint_clear_replies(endpoint_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        free(self->slots[i].reply);
        self->slots[i].reply = NULL;
    }
}

static int send_framed(void *socket, const void *peer, size_t peer_len, const void *body,
                       size_t body_len)
{
    if (zmq_send(socket, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -errno;
    zmq_send(socket, "", 0, ZMQ_SNDMORE);
    return zmq_send(socket, body, body_len, 0) < 0 ? -errno : 0;
}

void endpoint_flush(endpoint_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        slot_t *slot = &self->slots[i];
        if (slot->reply)
            send_framed(self->socket, zmq_msg_data(&slot->peer), zmq_msg_size(&slot->peer),
                        slot->reply, slot->reply_len);
        slot_release(slot);
    }
    self->count = 0;
}

int endpoint_push(endpoint_t *self, const void *peer, size_t peer_len, const ProtobufCMessage *msg)
{
    void *body;
    size_t len;
    int rc = codec_encode(msg, &body, &len);
    if (rc < 0)
        return rc;
    rc = send_framed(self->socket, peer, peer_len, body, len);
    free(body);
    return rc;
}

uint64_t endpoint_bad_frames(const endpoint_t *self)
{
    return self->bad_frames;
}

uint64_t endpoint_revoked(const endpoint_t *self)
{
    return self->revoked;
}

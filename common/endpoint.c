#include "endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "codec.h"
#include "polled.h"

typedef struct slot {
    zmq_msg_t peer, body;
    void *reply;
    size_t reply_len;
    auth_actor_t actor;
    int fd;      /* the connection's socket, as ZeroMQ tells it */
    bool struck; /* endpoint_strike() counted it already */
} slot_t;

/* A connection with strikes against it, by routing id. */
#define STRIKE_SLOTS 16
typedef struct strike {
    uint8_t peer[256]; /* routing id */
    size_t peer_len;   /* 0: a free entry */
    int fd;
    struct sockaddr_storage far; /* the far end at the first strike */
    socklen_t far_len;
    int64_t window_ms; /* CLOCK_MONOTONIC start of the strikes counted */
    unsigned count;
    int64_t cut_until_ms; /* past now: cut, what it still sends is dropped */
} strike_t;

/* Every endpoint's counts, summed (endpoint_stats_all()). Endpoints live
 * in the thread of the worker's loop. */
static endpoint_stats_t process_stats;

struct endpoint {
    void *socket;
    char url[256];
    slot_t *slots;
    size_t count, capacity;
    auth_t *auth; /* NULL: plain */
    endpoint_stats_t stats;
    strike_t strikes[STRIKE_SLOTS];
    size_t strikes_used; /* entries not free: none, and drains skip the table */
    endpoint_cut_t cuts[ENDPOINT_CUTS_MAX];
    size_t cut_count;
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

static strike_t *strike_find(endpoint_t *self, zmq_msg_t *peer)
{
    for (size_t i = 0; self->strikes_used && i < STRIKE_SLOTS; i++) {
        strike_t *s = &self->strikes[i];
        if (s->peer_len && s->peer_len == zmq_msg_size(peer) &&
            memcmp(s->peer, zmq_msg_data(peer), s->peer_len) == 0)
            return s;
    }
    return NULL;
}

static void strike_free(endpoint_t *self, strike_t *s)
{
    s->peer_len = 0;
    self->strikes_used--;
}

/* An entry for peer: a free one, else the one struck longest ago that is
 * not cut (a flood of many connections at once forgets the quiet ones). */
static strike_t *strike_new(endpoint_t *self, zmq_msg_t *peer, int fd, int64_t now)
{
    strike_t *entry = NULL;
    for (size_t i = 0; i < STRIKE_SLOTS; i++) {
        strike_t *s = &self->strikes[i];
        if (!s->peer_len) {
            entry = s;
            break;
        }
        if (s->cut_until_ms <= now && (!entry || s->window_ms < entry->window_ms))
            entry = s;
    }
    if (!entry || zmq_msg_size(peer) > sizeof(entry->peer))
        return NULL;
    if (entry->peer_len)
        strike_free(self, entry);
    entry->far_len = sizeof(entry->far);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&entry->far, &entry->far_len) < 0)
        return NULL; /* gone already */
    memcpy(entry->peer, zmq_msg_data(peer), zmq_msg_size(peer));
    entry->peer_len = zmq_msg_size(peer);
    entry->fd = fd;
    entry->window_ms = now;
    entry->count = 0;
    entry->cut_until_ms = 0;
    self->strikes_used++;
    return entry;
}

static void format_far(const strike_t *s, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (s->far.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&s->far;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (s->far.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&s->far;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, len, "%s:%u", ip, port);
}

/* Cuts the connection of s, when its socket still is that connection;
 * frame: one it sent (ZeroMQ hangs the connection's properties on them). */
static void cut(endpoint_t *self, strike_t *s, zmq_msg_t *frame, int64_t now)
{
    struct sockaddr_storage far;
    socklen_t far_len = sizeof(far);
    if (getpeername(s->fd, (struct sockaddr *)&far, &far_len) < 0 || far_len != s->far_len ||
        memcmp(&far, &s->far, far_len) != 0) {
        strike_free(self, s); /* the connection is gone; the number may be another's now */
        return;
    }
    shutdown(s->fd, SHUT_RDWR);
    self->stats.cuts++;
    process_stats.cuts++;
    const char *key = zmq_msg_gets(frame, "X-Key");
    auth_actor_t actor = {.name = ""};
    int suspended = 0;
    if (self->auth && key) {
        auth_lookup(self->auth, key, &actor);
        suspended = auth_suspend(self->auth, key);
    }
    s->cut_until_ms =
        now + (suspended > ENDPOINT_STRIKE_WINDOW_MS ? suspended : ENDPOINT_STRIKE_WINDOW_MS);
    if (self->cut_count < ENDPOINT_CUTS_MAX) {
        endpoint_cut_t *c = &self->cuts[self->cut_count++];
        snprintf(c->actor, sizeof(c->actor), "%s", actor.name);
        format_far(s, c->address, sizeof(c->address));
        c->suspended_ms = suspended;
    }
}

/* One malformed message from the connection of peer: fd, its socket (-1:
 * not known, nothing to hold it against), and frame, one of its frames. */
static void strike(endpoint_t *self, zmq_msg_t *peer, int fd, zmq_msg_t *frame)
{
    self->stats.malformed++;
    process_stats.malformed++;
    if (fd < 0)
        return;
    int64_t now = clock_monotonic_ms();
    strike_t *s = strike_find(self, peer);
    if (s && s->cut_until_ms > now && s->fd == fd)
        return; /* cut already: the rest of its queue */
    if (s && (s->fd != fd || s->cut_until_ms))
        strike_free(self, s); /* a new connection under the same id */
    else if (s && now - s->window_ms >= ENDPOINT_STRIKE_WINDOW_MS)
        strike_free(self, s); /* its strikes are old */
    else if (s)
        goto count;
    if (!(s = strike_new(self, peer, fd, now)))
        return;
count:
    if (++s->count >= ENDPOINT_STRIKES)
        cut(self, s, frame, now);
}

/* Whether the message of peer comes from a connection cut a moment ago. */
static bool from_cut(endpoint_t *self, zmq_msg_t *peer, int fd)
{
    strike_t *s = strike_find(self, peer);
    if (!s || s->cut_until_ms == 0)
        return false;
    if (s->cut_until_ms <= clock_monotonic_ms()) {
        strike_free(self, s);
        return false;
    }
    return s->fd == fd;
}

void endpoint_strike(endpoint_t *self, size_t i)
{
    slot_t *slot = &self->slots[i];
    if (slot->struck)
        return;
    slot->struck = true;
    strike(self, &slot->peer, slot->fd, &slot->body);
}

size_t endpoint_take_cuts(endpoint_t *self, endpoint_cut_t *out, size_t capacity)
{
    size_t n = self->cut_count < capacity ? self->cut_count : capacity;
    memcpy(out, self->cuts, n * sizeof(*out));
    memmove(self->cuts, self->cuts + n, (self->cut_count - n) * sizeof(*out));
    self->cut_count -= n;
    return n;
}

void endpoint_stats(const endpoint_t *self, endpoint_stats_t *ret)
{
    *ret = self->stats;
}

void endpoint_stats_all(endpoint_stats_t *ret)
{
    *ret = process_stats;
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
    for (size_t read = 0; self->count < self->capacity && read < self->capacity; read++) {
        slot_t *slot = &self->slots[self->count];
        zmq_msg_init(&slot->peer);
        if (zmq_msg_recv(&slot->peer, self->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&slot->peer);
            break;
        }
        /* The frame after the routing id came off the wire: it knows the
         * connection's socket (the routing id frame may not). */
        zmq_msg_t first;
        zmq_msg_init(&first);
        bool framed = more(self->socket) && zmq_msg_recv(&first, self->socket, 0) >= 0;
        slot->fd = framed ? zmq_msg_get(&first, ZMQ_SRCFD) : -1;
        slot->struck = false;
        if (self->strikes_used && from_cut(self, &slot->peer, slot->fd)) {
            discard_rest(self->socket);
            zmq_msg_close(&first);
            zmq_msg_close(&slot->peer);
            self->stats.dropped++;
            process_stats.dropped++;
            continue;
        }
        zmq_msg_init(&slot->body);
        bool ok = framed && zmq_msg_size(&first) == 0 && more(self->socket) &&
                  zmq_msg_recv(&slot->body, self->socket, 0) >= 0 && !more(self->socket);
        if (!ok) {
            discard_rest(self->socket);
            self->stats.bad_frames++;
            process_stats.bad_frames++;
            strike(self, &slot->peer, slot->fd, &first);
            zmq_msg_close(&first);
            zmq_msg_close(&slot->peer);
            zmq_msg_close(&slot->body);
            continue;
        }
        zmq_msg_close(&first);
        if (self->auth && !actor_of(self->auth, &slot->body, &slot->actor)) {
            zmq_msg_close(&slot->peer);
            zmq_msg_close(&slot->body);
            self->stats.revoked++;
            process_stats.revoked++;
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

#include "client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "codec.h"

/* --- shared socket helpers --- */

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int set_int(void *socket, int option, int value)
{
    return zmq_setsockopt(socket, option, &value, sizeof(value)) == 0 ? 0 : -errno;
}

/* A DEALER connected to url; routing_id NULL lets the server pick one. */
static int dealer_open(void *zmq_ctx, const char *url, const char *routing_id, void **ret)
{
    void *socket = zmq_socket(zmq_ctx, ZMQ_DEALER);
    if (!socket)
        return -errno;
    int64_t max_message = CLIENT_MAX_REPLY;
    int rc = set_int(socket, ZMQ_LINGER, 0);
    if (rc == 0 && zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_message, sizeof(max_message)) < 0)
        rc = -errno;
    if (rc == 0 && routing_id &&
        zmq_setsockopt(socket, ZMQ_ROUTING_ID, routing_id, strlen(routing_id)) < 0)
        rc = -errno;
    if (rc == 0 && zmq_connect(socket, url) < 0)
        rc = -errno;
    if (rc < 0) {
        zmq_close(socket);
        return rc;
    }
    *ret = socket;
    return 0;
}

static int send_framed(void *socket, const void *body, size_t len)
{
    if (zmq_send(socket, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -errno;
    /* The first frame is queued, so the rest of the message goes too. */
    return zmq_send(socket, body, len, ZMQ_DONTWAIT) < 0 ? -errno : 0;
}

static bool more(void *socket)
{
    int value = 0;
    size_t size = sizeof(value);
    return zmq_getsockopt(socket, ZMQ_RCVMORE, &value, &size) == 0 && value;
}

/* Reads one waiting message without blocking. 0 and *body (initialised; the
 * caller closes it) for [empty][body]; -EBADMSG for another shape (read and
 * dropped whole); -EAGAIN when nothing is waiting. */
static int recv_framed(void *socket, zmq_msg_t *body)
{
    zmq_msg_t delimiter;
    zmq_msg_init(&delimiter);
    if (zmq_msg_recv(&delimiter, socket, ZMQ_DONTWAIT) < 0) {
        int rc = -errno;
        zmq_msg_close(&delimiter);
        return rc;
    }
    bool ok = zmq_msg_size(&delimiter) == 0 && more(socket);
    zmq_msg_close(&delimiter);
    zmq_msg_init(body);
    if (ok)
        ok = zmq_msg_recv(body, socket, 0) >= 0 && !more(socket);
    while (more(socket)) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, socket, 0);
        zmq_msg_close(&part);
    }
    if (!ok) {
        zmq_msg_close(body);
        return -EBADMSG;
    }
    return 0;
}

/* Waits until socket is readable or the deadline (monotonic ms) passes:
 * 0 readable, -ETIMEDOUT, -EINTR, other -errno. */
static int wait_readable(void *socket, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - monotonic_ms();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = {.socket = socket, .events = ZMQ_POLLIN};
        int n = zmq_poll(&item, 1, (long)left);
        if (n < 0)
            return -errno;
        if (n > 0 && (item.revents & ZMQ_POLLIN))
            return 0;
        if (left == 0)
            return -ETIMEDOUT;
    }
}

/* The message's non-repeated uint64 field "tag", or NULL. */
static const ProtobufCFieldDescriptor *tag_field(const ProtobufCMessageDescriptor *descriptor)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name(descriptor, "tag");
    if (!field || field->type != PROTOBUF_C_TYPE_UINT64 ||
        field->label == PROTOBUF_C_LABEL_REPEATED || (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return NULL;
    return field;
}

/* --- client_t --- */

struct client {
    void *zmq_ctx;
    void *socket; /* NULL after a failed reconnect; the next call retries */
    char *url;
    int timeout_ms;
    uint64_t next_tag;
    uint64_t last_tag;
};

int client_new(void *zmq_ctx, const char *url, int timeout_ms, client_t **ret)
{
    if (!zmq_ctx || !url || timeout_ms <= 0)
        return -EINVAL;
    client_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->zmq_ctx = zmq_ctx;
    self->timeout_ms = timeout_ms;
    self->url = strdup(url);
    /* A random start keeps tags of clients sharing a server apart. */
    if (getrandom(&self->next_tag, sizeof(self->next_tag), GRND_NONBLOCK) !=
        (ssize_t)sizeof(self->next_tag))
        self->next_tag = (uint64_t)monotonic_ms() * 1000003u ^ (uint64_t)getpid();
    int rc = self->url ? dealer_open(zmq_ctx, url, NULL, &self->socket) : -ENOMEM;
    if (rc < 0) {
        client_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void client_destroy(client_t **self)
{
    client_t *client = *self;
    if (!client)
        return;
    if (client->socket)
        zmq_close(client->socket);
    free(client->url);
    free(client);
    *self = NULL;
}

uint64_t client_last_tag(const client_t *self)
{
    return self->last_tag;
}

/* Drops the socket and whatever may still arrive on it. */
static void client_reconnect(client_t *self)
{
    if (self->socket)
        zmq_close(self->socket);
    self->socket = NULL;
    dealer_open(self->zmq_ctx, self->url, NULL, &self->socket);
}

static uint64_t client_fresh_tag(client_t *self)
{
    self->next_tag++;
    if (self->next_tag == 0)
        self->next_tag = 1;
    return self->next_tag;
}

/* Packs request, with `tag` in its tag field when it has one. */
static int encode_tagged(const ProtobufCMessage *request, uint64_t tag, void **ret, size_t *len)
{
    const ProtobufCFieldDescriptor *field = tag_field(request->descriptor);
    if (!field)
        return codec_encode(request, ret, len);
    /* A shallow copy shares the caller's strings and sub-messages; packing
     * only reads them. */
    size_t size = request->descriptor->sizeof_message;
    char *copy = malloc(size);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, request, size);
    memcpy(copy + field->offset, &tag, sizeof(tag));
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL) {
        protobuf_c_boolean has = 1;
        memcpy(copy + field->quantifier_offset, &has, sizeof(has));
    }
    int rc = codec_encode((const ProtobufCMessage *)copy, ret, len);
    free(copy);
    return rc;
}

static uint64_t read_tag(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    uint64_t tag;
    memcpy(&tag, (const char *)msg + field->offset, sizeof(tag));
    return tag;
}

int client_call(client_t *self, const ProtobufCMessage *request,
                const ProtobufCMessageDescriptor *reply_descriptor, ProtobufCMessage **reply)
{
    *reply = NULL;
    if (!request || !reply_descriptor)
        return -EINVAL;
    if (!self->socket) {
        int rc = dealer_open(self->zmq_ctx, self->url, NULL, &self->socket);
        if (rc < 0)
            return rc;
    }
    bool tagged = tag_field(request->descriptor) != NULL;
    uint64_t tag = tagged ? client_fresh_tag(self) : 0;
    self->last_tag = tag;
    const ProtobufCFieldDescriptor *reply_tag = tagged ? tag_field(reply_descriptor) : NULL;

    void *body;
    size_t len;
    int rc = encode_tagged(request, tag, &body, &len);
    if (rc < 0)
        return rc;
    rc = send_framed(self->socket, body, len);
    free(body);
    if (rc < 0) {
        client_reconnect(self);
        return rc == -EAGAIN ? -ETIMEDOUT : rc;
    }

    int64_t deadline = monotonic_ms() + self->timeout_ms;
    for (;;) {
        zmq_msg_t frame;
        rc = recv_framed(self->socket, &frame);
        if (rc == -EBADMSG)
            continue;
        if (rc == -EAGAIN) {
            rc = wait_readable(self->socket, deadline);
            if (rc < 0)
                break;
            continue;
        }
        if (rc < 0)
            break;
        char err[256];
        ProtobufCMessage *msg;
        rc = codec_decode(reply_descriptor, zmq_msg_data(&frame), zmq_msg_size(&frame),
                          CLIENT_MAX_REPLY, &msg, err, sizeof(err));
        zmq_msg_close(&frame);
        if (rc < 0)
            return -EBADMSG;
        if (reply_tag) {
            uint64_t got = read_tag(msg, reply_tag);
            if (got != 0 && got != tag) {
                protobuf_c_message_free_unpacked(msg, NULL);
                continue;
            }
        }
        *reply = msg;
        return 0;
    }
    /* The request is still outstanding: its reply must not reach the next
     * call. */
    client_reconnect(self);
    return rc;
}

/* --- unit_session_t --- */

struct unit_session {
    void *socket;
    char unit_id[65];
    char routing_id[256];
    /* Ring of deliveries kept for unit_session_recv(), oldest at head. */
    Dispatch__UnitDelivery **queue;
    size_t head, count, capacity;
    uint64_t skipped;
};

int unit_session_new(void *zmq_ctx, const char *url, const char *unit_id, const char *session,
                     unit_session_t **ret)
{
    if (!zmq_ctx || !url || !unit_id || !*unit_id || strlen(unit_id) > 64 || (session && !*session))
        return -EINVAL;
    unit_session_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    snprintf(self->unit_id, sizeof(self->unit_id), "%s", unit_id);
    int n = session
                ? snprintf(self->routing_id, sizeof(self->routing_id), "%s/%s", unit_id, session)
                : snprintf(self->routing_id, sizeof(self->routing_id), "%s", unit_id);
    int rc = n > 0 && (size_t)n < sizeof(self->routing_id) ? 0 : -EINVAL;
    if (rc == 0)
        rc = dealer_open(zmq_ctx, url, self->routing_id, &self->socket);
    if (rc < 0) {
        unit_session_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void unit_session_destroy(unit_session_t **self)
{
    unit_session_t *session = *self;
    if (!session)
        return;
    for (size_t i = 0; i < session->count; i++) {
        Dispatch__UnitDelivery *delivery = session->queue[(session->head + i) % session->capacity];
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
    }
    free(session->queue);
    if (session->socket)
        zmq_close(session->socket);
    free(session);
    *self = NULL;
}

const char *unit_session_routing_id(const unit_session_t *self)
{
    return self->routing_id;
}

size_t unit_session_queued(const unit_session_t *self)
{
    return self->count;
}

uint64_t unit_session_skipped(const unit_session_t *self)
{
    return self->skipped;
}

/* Takes ownership of delivery: queued, or freed and counted when full. */
static void queue_push(unit_session_t *self, Dispatch__UnitDelivery *delivery)
{
    if (self->count == self->capacity && self->capacity < UNIT_SESSION_QUEUE_MAX) {
        size_t capacity = self->capacity ? self->capacity * 2 : 16;
        if (capacity > UNIT_SESSION_QUEUE_MAX)
            capacity = UNIT_SESSION_QUEUE_MAX;
        Dispatch__UnitDelivery **grown = malloc(capacity * sizeof(*grown));
        if (grown) {
            for (size_t i = 0; i < self->count; i++)
                grown[i] = self->queue[(self->head + i) % self->capacity];
            free(self->queue);
            self->queue = grown;
            self->head = 0;
            self->capacity = capacity;
        }
    }
    if (self->count == self->capacity) {
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
        self->skipped++;
        return;
    }
    self->queue[(self->head + self->count) % self->capacity] = delivery;
    self->count++;
}

static Dispatch__UnitDelivery *queue_pop(unit_session_t *self)
{
    if (self->count == 0)
        return NULL;
    Dispatch__UnitDelivery *delivery = self->queue[self->head];
    self->head = (self->head + 1) % self->capacity;
    self->count--;
    return delivery;
}

/* Next decodable delivery from the socket, waiting until deadline. */
static int socket_next_delivery(unit_session_t *self, int64_t deadline,
                                Dispatch__UnitDelivery **ret)
{
    for (;;) {
        zmq_msg_t frame;
        int rc = recv_framed(self->socket, &frame);
        if (rc == -EBADMSG) {
            self->skipped++;
            continue;
        }
        if (rc == -EAGAIN) {
            rc = wait_readable(self->socket, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        if (rc < 0)
            return rc;
        char err[256];
        ProtobufCMessage *msg;
        rc = codec_decode(&dispatch__unit_delivery__descriptor, zmq_msg_data(&frame),
                          zmq_msg_size(&frame), CLIENT_MAX_REPLY, &msg, err, sizeof(err));
        zmq_msg_close(&frame);
        if (rc < 0) {
            self->skipped++;
            continue;
        }
        *ret = (Dispatch__UnitDelivery *)msg;
        return 0;
    }
}

int unit_session_send(unit_session_t *self, const Dispatch__UnitAction *action)
{
    void *body;
    size_t len;
    int rc = codec_encode(&action->base, &body, &len);
    if (rc < 0)
        return rc;
    rc = send_framed(self->socket, body, len);
    free(body);
    return rc;
}

int unit_session_recv(unit_session_t *self, int timeout_ms, Dispatch__UnitDelivery **ret)
{
    *ret = queue_pop(self);
    if (*ret)
        return 0;
    if (timeout_ms < 0)
        return -EINVAL;
    return socket_next_delivery(self, monotonic_ms() + timeout_ms, ret);
}

int unit_session_ack(unit_session_t *self, uint64_t seq)
{
    Dispatch__UnitAck ack = DISPATCH__UNIT_ACK__INIT;
    ack.seq = seq;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = self->unit_id;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_ACK;
    action.ack = &ack;
    return unit_session_send(self, &action);
}

static bool is_result_of(const Dispatch__UnitDelivery *delivery, const char *action_id)
{
    return delivery->seq == 0 &&
           delivery->body_case == DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT &&
           delivery->action_result && strcmp(delivery->action_result->action_id, action_id) == 0;
}

int unit_session_act(unit_session_t *self, Dispatch__UnitAction *action, int timeout_ms,
                     Dispatch__ActionResult **ret)
{
    *ret = NULL;
    if (!action->action_id || !*action->action_id || timeout_ms < 0)
        return -EINVAL;
    if (!action->unit_id || !*action->unit_id)
        action->unit_id = self->unit_id;
    int rc = unit_session_send(self, action);
    if (rc < 0)
        return rc;
    int64_t deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        Dispatch__UnitDelivery *delivery;
        rc = socket_next_delivery(self, deadline, &delivery);
        if (rc < 0)
            return rc;
        if (!is_result_of(delivery, action->action_id)) {
            queue_push(self, delivery);
            continue;
        }
        /* Detach the result, free the envelope. */
        *ret = delivery->action_result;
        delivery->action_result = NULL;
        delivery->body_case = DISPATCH__UNIT_DELIVERY__BODY__NOT_SET;
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
        return 0;
    }
}

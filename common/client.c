/* client: see client.h for the protocol and the invariant. */
#include "client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zmq.h>

#include "codec.h"
#include "dealer.h"

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

struct client {
    void *zmq_ctx;
    void *socket; /* NULL after a failed reconnect; the next call retries */
    char *url;
    int timeout_ms;
    auth_client_t curve; /* a copy: the socket is reopened after a timeout */
    bool has_curve;
    uint64_t next_tag;
    uint64_t last_tag;
};

static const auth_client_t *client_curve(const client_t *self)
{
    return self->has_curve ? &self->curve : NULL;
}

int client_new(void *zmq_ctx, const char *url, int timeout_ms, const auth_client_t *curve,
               client_t **ret)
{
    if (!zmq_ctx || !url || timeout_ms <= 0)
        return -EINVAL;
    client_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->zmq_ctx = zmq_ctx;
    self->timeout_ms = timeout_ms;
    self->has_curve = curve != NULL;
    if (curve)
        self->curve = *curve;
    self->url = strdup(url);
    /* A random start keeps tags of clients sharing a server apart. */
    if (getrandom(&self->next_tag, sizeof(self->next_tag), GRND_NONBLOCK) !=
        (ssize_t)sizeof(self->next_tag))
        self->next_tag = (uint64_t)dealer_clock_ms() * 1000003u ^ (uint64_t)getpid();
    int rc =
        self->url ? dealer_open(zmq_ctx, url, NULL, client_curve(self), &self->socket) : -ENOMEM;
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
    dealer_open(self->zmq_ctx, self->url, NULL, client_curve(self), &self->socket);
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
        int rc = dealer_open(self->zmq_ctx, self->url, NULL, client_curve(self), &self->socket);
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
    rc = dealer_send(self->socket, body, len);
    free(body);
    if (rc < 0) {
        client_reconnect(self);
        return rc == -EAGAIN ? -ETIMEDOUT : rc;
    }

    int64_t deadline = dealer_clock_ms() + self->timeout_ms;
    for (;;) {
        ProtobufCMessage *msg;
        rc = dealer_recv(self->socket, reply_descriptor, &msg);
        if (rc == -EPROTO)
            continue;
        if (rc == -EAGAIN) {
            rc = dealer_wait(self->socket, deadline);
            if (rc < 0)
                break;
            continue;
        }
        if (rc == -EBADMSG)
            return rc;
        if (rc < 0)
            break;
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

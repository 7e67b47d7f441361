/* stream: see stream.h.
 *
 * Invariant: nothing leaves this module with a caller name or phone as it
 * was stored; stream_record() is the only way a stored event becomes
 * something to send.
 */
#include "stream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "event.h"
#include "mask.h"
#include "trail.h"

#define DEFAULT_HWM 10000

struct stream {
    void *socket;
    char url[256];
    uint64_t sent;
    auth_t *auth;
    uint64_t revocations; /* auth_revocations() when the socket was bound */
    bool unbound;         /* renewing: the endpoint waits to be bound again */
};

int stream_new(void *zmq_context, const char *url, int hwm, auth_t *auth, stream_t **ret)
{
    stream_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->socket = zmq_socket(zmq_context, ZMQ_PUB);
    int rc = self->socket ? 0 : -ENOMEM;
    int linger = 0;
    if (hwm <= 0)
        hwm = DEFAULT_HWM;
    if (rc == 0 && (zmq_setsockopt(self->socket, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
                    zmq_setsockopt(self->socket, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0))
        rc = -errno;
    self->auth = auth;
    if (auth)
        self->revocations = auth_revocations(auth);
    if (rc == 0 && auth)
        rc = auth_server_apply(auth, self->socket);
    if (rc == 0 && zmq_bind(self->socket, url) < 0)
        rc = -errno;
    size_t len = sizeof(self->url);
    if (rc == 0 && zmq_getsockopt(self->socket, ZMQ_LAST_ENDPOINT, self->url, &len) < 0)
        rc = -errno;
    if (rc < 0) {
        stream_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void stream_destroy(stream_t **self)
{
    stream_t *stream = *self;
    if (!stream)
        return;
    if (stream->socket)
        zmq_close(stream->socket);
    free(stream);
    *self = NULL;
}

int stream_renew(stream_t *self)
{
    if (!self->auth)
        return 0;
    uint64_t revocations = auth_revocations(self->auth);
    if (!self->unbound && revocations == self->revocations)
        return 0;
    if (!self->unbound) {
        /* Unbinding closes every connection accepted on the endpoint. */
        if (zmq_unbind(self->socket, self->url) < 0)
            return -errno;
        self->unbound = true;
    }
    /* The old listener closes in ZeroMQ's I/O thread: until it has, the
     * address is in use, and the next call tries again. */
    if (zmq_bind(self->socket, self->url) < 0)
        return -errno;
    self->unbound = false;
    self->revocations = revocations;
    return 1;
}

const char *stream_url(const stream_t *self)
{
    return self->url;
}

int stream_publish(stream_t *self, const char *topic, const void *record, size_t len)
{
    if (zmq_send(self->socket, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->socket, record, len, ZMQ_DONTWAIT) < 0)
        return -errno;
    self->sent++;
    return 0;
}

uint64_t stream_sent(const stream_t *self)
{
    return self->sent;
}

void stream_topic(const Dispatch__Event *event, char *buf, size_t len)
{
    const char *district = event->district && *event->district ? event->district : "_";
    size_t district_len = strnlen(district, len);
    /* A district that cannot name a topic part (too long, holds a dot) is
     * not one. */
    if (district_len > 64 || memchr(district, '.', district_len))
        district = "_";
    snprintf(buf, len, "%s.%s", district, event_name(event));
}

/* ---- masking --------------------------------------------------------- */

void stream_mask(ProtobufCMessage *msg)
{
    mask_message(msg, PERSONAL_PHONE | PERSONAL_NAME);
}

/* ---- records ----------------------------------------------------------- */

static int copy_bytes(const ProtobufCBinaryData *from, ProtobufCBinaryData *to)
{
    *to = (ProtobufCBinaryData){0, NULL};
    if (from->len == 0)
        return 0;
    to->data = malloc(from->len);
    if (!to->data)
        return -ENOMEM;
    memcpy(to->data, from->data, from->len);
    to->len = from->len;
    return 0;
}

int stream_record(const Dispatch__Audit__LogEntry *entry, Dispatch__AuditRecord **ret)
{
    *ret = NULL;
    Dispatch__AuditRecord *record = malloc(sizeof(*record));
    if (!record)
        return -ENOMEM;
    dispatch__audit_record__init(record);
    record->seq = entry->seq;
    record->recorded_at = entry->recorded_at;
    int rc = copy_bytes(&entry->prev_hash, &record->prev_hash);
    if (rc == 0)
        rc = copy_bytes(&entry->hash, &record->hash);
    if (rc < 0) {
        stream_record_free(record);
        return rc;
    }
    char err[256];
    Dispatch__Event *event = NULL;
    if (event_decode(entry->event.data, entry->event.len, &event, err, sizeof(err)) == 0) {
        stream_mask(&event->base);
        record->event = event;
    }
    *ret = record;
    return 0;
}

int stream_record_of(Dispatch__Audit__LogEntry *entry, Dispatch__AuditRecord **ret)
{
    int rc = stream_record(entry, ret);
    trail_entry_free(entry);
    return rc;
}

void stream_record_free(Dispatch__AuditRecord *record)
{
    if (!record)
        return;
    free(record->prev_hash.data);
    free(record->hash.data);
    event_free(record->event);
    free(record);
}

void stream_record_free_any(void *record)
{
    stream_record_free(record);
}

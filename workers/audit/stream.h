/* stream: the audit's live stream (PUB) and the records it and the replies
 * carry (docs/protocol.md sections 7.1 and 7.2).
 *
 * A message on the stream is two frames: the topic "<district>.<event>"
 * (district "_" when the event has none) and an AuditRecord whose event is
 * masked: every caller name and phone in it (Ticket.caller_name,
 * Ticket.caller_phone, at any depth) goes through common/mask.h, and fields
 * this build of the contract does not know are dropped, because what is not
 * known cannot be masked. The same masked record goes into replay and
 * history replies; only the store keeps the event as it came.
 *
 * The PUB socket has ZMQ_SNDHWM: a subscriber that does not keep up loses
 * messages (never the publisher's time) and fills the gap by replay.
 *
 * With an auth_t the PUB is a CURVE server: only keys of the key directory
 * subscribe. A PUB cannot look at each subscriber per message, so when a
 * key is revoked stream_renew() unbinds the endpoint, which closes every
 * subscriber's connection, and binds it again: the others shake hands
 * anew (and fill the gap by replay), the revoked key is refused.
 */
#ifndef DISPATCH_AUDIT_STREAM_H
#define DISPATCH_AUDIT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "dispatch.pb-c.h"
#include "trail.pb-c.h"

/* Room for "<district>.<event>" with a 64-byte district and its NUL. */
#define STREAM_TOPIC_SIZE 160

typedef struct stream stream_t;

/* Binds a PUB at url with ZMQ_SNDHWM hwm (0 = 10000); auth NULL = plain,
 * else it must outlive the stream. */
int stream_new(void *zmq_context, const char *url, int hwm, auth_t *auth, stream_t **ret);
void stream_destroy(stream_t **self);
const char *stream_url(const stream_t *self); /* port resolved */
/* Call once per loop iteration: when a key was revoked since the endpoint
 * was bound, drops every subscriber and binds again. 1 when renewed, 0 when
 * nothing was to do, -errno while the address is not free yet (call again;
 * meanwhile nothing is delivered). */
int stream_renew(stream_t *self);

/* Sends [topic][record]; never blocks. -errno when ZeroMQ refuses. */
int stream_publish(stream_t *self, const char *topic, const void *record, size_t len);
/* Messages handed to the socket. */
uint64_t stream_sent(const stream_t *self);

/* The topic of event into buf (cut to fit len). */
void stream_topic(const Dispatch__Event *event, char *buf, size_t len);

/* Masks every caller name and phone in msg and its sub-messages (the fields
 * marked "personal: name" or "personal: phone" in dispatch.proto) and drops
 * unknown fields, in place: mask_message() with those two kinds. */
void stream_mask(ProtobufCMessage *msg);

/* The record subscribers get for a stored entry: seq, hashes, recorded_at
 * and the event decoded and masked (absent when the stored bytes no longer
 * decode). On 0 *ret is the caller's: free it with stream_record_free(). */
int stream_record(const Dispatch__Audit__LogEntry *entry, Dispatch__AuditRecord **ret);
/* The same, for an entry of trail_get() that it frees. */
int stream_record_of(Dispatch__Audit__LogEntry *entry, Dispatch__AuditRecord **ret);
void stream_record_free(Dispatch__AuditRecord *record);
/* Adapter for arena_adopt(). */
void stream_record_free_any(void *record);

#endif

/* codec: protobuf in and out, with input treated as hostile.
 *
 * codec_decode() refuses input larger than the caller's limit before
 * parsing, refuses malformed protobuf, and then checks what protobuf-c does
 * not: every string field is valid UTF-8 and every enum field holds a value
 * its enum declares (proto3 enums are open on the wire). On refusal the
 * message is freed, *ret stays NULL, and err names the problem and the field
 * path ("ticket.caller_name: invalid UTF-8").
 *
 * Decoded messages are owned by the caller: free them with
 * protobuf_c_message_free_unpacked(msg, NULL).
 */
#ifndef DISPATCH_CODEC_H
#define DISPATCH_CODEC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* Error codes, all negative. */
enum {
    CODEC_TOO_LARGE = -1001, /* input above the limit */
    CODEC_MALFORMED = -1002, /* not a valid encoding of the message */
    CODEC_BAD_UTF8 = -1003,  /* a string field is not UTF-8 */
    CODEC_BAD_ENUM = -1004,  /* an enum field holds an undeclared value */
};

int codec_decode(const ProtobufCMessageDescriptor *descriptor, const void *data, size_t len,
                 size_t max_len, ProtobufCMessage **ret, char *err, size_t err_len);

/* Checks UTF-8 and enum values of msg and its sub-messages. */
int codec_validate(const ProtobufCMessage *msg, char *err, size_t err_len);

/* Packs msg into a new malloc'ed buffer the caller frees. */
int codec_encode(const ProtobufCMessage *msg, void **ret, size_t *len);

bool codec_utf8_valid(const char *s, size_t len);

#endif

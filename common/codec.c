#include "codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

bool codec_utf8_valid(const char *s, size_t len)
{
    return utf8_valid(s, len);
}

static bool enum_declared(const ProtobufCEnumDescriptor *descriptor, int value)
{
    return protobuf_c_enum_descriptor_get_value(descriptor, value) != NULL;
}

/* The dotted path of a field ("submit.location.address"), kept as a chain
 * of names and written out only for an error: every decode walks every
 * field, and formatting each path cost more than the checks. */
typedef struct field_path {
    const struct field_path *parent; /* NULL: a field of the top message */
    const char *name;
} field_path_t;

static size_t path_write(const field_path_t *path, char *buf, size_t len)
{
    size_t at = path->parent ? path_write(path->parent, buf, len) : 0;
    int n = snprintf(buf + at, len - at, "%s%s", path->parent ? "." : "", path->name);
    return n < 0 ? at : (at + (size_t)n < len ? at + (size_t)n : len - 1);
}

static int validate(const ProtobufCMessage *msg, const field_path_t *parent, char *err,
                    size_t err_len);

static int validate_value(const ProtobufCFieldDescriptor *field, const void *value,
                          const field_path_t *path, char *err, size_t err_len)
{
    char text[256];
    switch (field->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)value;
        if (s && !codec_utf8_valid(s, strlen(s))) {
            path_write(path, text, sizeof(text));
            snprintf(err, err_len, "%s: invalid UTF-8", text);
            return CODEC_BAD_UTF8;
        }
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM:
        if (!enum_declared(field->descriptor, *(const int *)value)) {
            path_write(path, text, sizeof(text));
            snprintf(err, err_len, "%s: value %d is not a declared %s", text, *(const int *)value,
                     ((const ProtobufCEnumDescriptor *)field->descriptor)->name);
            return CODEC_BAD_ENUM;
        }
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)value;
        return sub ? validate(sub, path, err, err_len) : 0;
    }
    default:
        return 0;
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *field)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    default:
        return 0;
    }
}

static int validate(const ProtobufCMessage *msg, const field_path_t *parent, char *err,
                    size_t err_len)
{
    const ProtobufCMessageDescriptor *descriptor = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        size_t size = value_size(field);
        if (size == 0)
            continue;
        /* A oneof member that is not the chosen one holds nothing. */
        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t chosen = *(const uint32_t *)(base + field->quantifier_offset);
            if (chosen != field->id)
                continue;
        }
        field_path_t field_path = {parent, field->name};
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *)(base + field->quantifier_offset);
            const char *items = *(char *const *)(base + field->offset);
            for (size_t k = 0; k < count; k++) {
                int rc = validate_value(field, items + k * size, &field_path, err, err_len);
                if (rc < 0)
                    return rc;
            }
        } else {
            int rc = validate_value(field, base + field->offset, &field_path, err, err_len);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int codec_validate(const ProtobufCMessage *msg, char *err, size_t err_len)
{
    return validate(msg, NULL, err, err_len);
}

int codec_decode(const ProtobufCMessageDescriptor *descriptor, const void *data, size_t len,
                 size_t max_len, ProtobufCMessage **ret, char *err, size_t err_len)
{
    *ret = NULL;
    if (len > max_len) {
        snprintf(err, err_len, "%s: %zu bytes, limit %zu", descriptor->short_name, len, max_len);
        return CODEC_TOO_LARGE;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(descriptor, NULL, len, data);
    if (!msg) {
        snprintf(err, err_len, "%s: malformed protobuf", descriptor->short_name);
        return CODEC_MALFORMED;
    }
    int rc = codec_validate(msg, err, err_len);
    if (rc < 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    *ret = msg;
    return 0;
}

int codec_encode(const ProtobufCMessage *msg, void **ret, size_t *len)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    /* malloc(0) may return NULL: keep one byte so an empty message packs. */
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        return -ENOMEM;
    protobuf_c_message_pack(msg, buf);
    *ret = buf;
    *len = size;
    return 0;
}

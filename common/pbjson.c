#include "pbjson.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static void write_message(FILE *out, const ProtobufCMessage *msg);

void pbjson_write_string(FILE *out, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    const unsigned char *end = p + len;
    fputc('"', out);
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t n = utf8_char(p, (size_t)(end - p), NULL);
            if (n == 0) {
                fputs("\\ufffd", out);
                p++;
            } else {
                fwrite(p, 1, n, out);
                p += n;
            }
            continue;
        }
        switch (c) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\b':
            fputs("\\b", out);
            break;
        case '\f':
            fputs("\\f", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            /* DEL is legal JSON but as invisible as the C0 controls. */
            if (c < 0x20 || c == 0x7f)
                fprintf(out, "\\u%04x", c);
            else
                fputc(c, out);
        }
        p++;
    }
    fputc('"', out);
}

static void write_base64(FILE *out, const uint8_t *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc('"', out);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t group = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            group |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            group |= data[i + 2];
        fputc(alphabet[(group >> 18) & 0x3f], out);
        fputc(alphabet[(group >> 12) & 0x3f], out);
        fputc(i + 1 < len ? alphabet[(group >> 6) & 0x3f] : '=', out);
        fputc(i + 2 < len ? alphabet[group & 0x3f] : '=', out);
    }
    fputc('"', out);
}

/* The shortest of %.{min..max}g that reads back as the same value. */
static void write_floating(FILE *out, double value, bool single)
{
    if (isnan(value)) {
        fputs("\"NaN\"", out);
        return;
    }
    if (isinf(value)) {
        fputs(value > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
        return;
    }
    int min = single ? 6 : 15, max = single ? 9 : 17;
    char buf[64];
    for (int precision = min; precision <= max; precision++) {
        snprintf(buf, sizeof(buf), "%.*g", precision, value);
        bool same = single ? strtof(buf, NULL) == (float)value : strtod(buf, NULL) == value;
        if (same)
            break;
    }
    fputs(buf, out);
}

static void write_enum(FILE *out, const ProtobufCFieldDescriptor *field, int value)
{
    const ProtobufCEnumValue *named =
        protobuf_c_enum_descriptor_get_value(field->descriptor, value);
    if (named)
        pbjson_write_string(out, named->name, strlen(named->name));
    else
        fprintf(out, "%d", value);
}

/* Writes the one value stored at `value` (a field member, or an element of
 * a repeated field's array). */
static void write_value(FILE *out, const ProtobufCFieldDescriptor *field, const void *value)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        fprintf(out, "%" PRId32, *(const int32_t *)value);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        fprintf(out, "%" PRIu32, *(const uint32_t *)value);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        fprintf(out, "\"%" PRId64 "\"", *(const int64_t *)value);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(out, "\"%" PRIu64 "\"", *(const uint64_t *)value);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        write_floating(out, *(const float *)value, true);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        write_floating(out, *(const double *)value, false);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)value ? "true" : "false", out);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        write_enum(out, field, *(const int *)value);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *text = *(char *const *)value;
        pbjson_write_string(out, text ? text : "", text ? strlen(text) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bytes = value;
        write_base64(out, bytes->data, bytes->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)value;
        if (sub)
            write_message(out, sub);
        else
            fputs("null", out);
        break;
    }
    }
}

static size_t element_size(const ProtobufCFieldDescriptor *field)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* proto3 implicit presence: is the value the type's default? */
static bool is_default(const ProtobufCFieldDescriptor *field, const void *value)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)value == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)value == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)value == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)value == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)value;
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int *)value == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *text = *(char *const *)value;
        return !text || !*text;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)value)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)value == NULL;
    }
    return true;
}

/* Whether a non-repeated field is written (see the header). */
static bool is_present(const ProtobufCFieldDescriptor *field, const char *base)
{
    const void *value = base + field->offset;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + field->quantifier_offset) == field->id;
    switch (field->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return true;
    case PROTOBUF_C_LABEL_OPTIONAL:
        /* Strings and messages carry presence in the pointer itself. */
        if (field->type == PROTOBUF_C_TYPE_MESSAGE)
            return *(ProtobufCMessage *const *)value != NULL;
        if (field->type == PROTOBUF_C_TYPE_STRING) {
            const char *text = *(char *const *)value;
            return text && text != field->default_value;
        }
        return *(const protobuf_c_boolean *)(base + field->quantifier_offset);
    case PROTOBUF_C_LABEL_NONE:
    default:
        return !is_default(field, value);
    }
}

static void write_message(FILE *out, const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *descriptor = msg->descriptor;
    const char *base = (const char *)msg;
    bool first = true;
    fputc('{', out);
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        size_t count = 1;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *)(base + field->quantifier_offset);
            if (count == 0)
                continue;
        } else if (!is_present(field, base)) {
            continue;
        }
        if (!first)
            fputc(',', out);
        first = false;
        pbjson_write_string(out, field->name, strlen(field->name));
        fputc(':', out);
        if (field->label != PROTOBUF_C_LABEL_REPEATED) {
            write_value(out, field, base + field->offset);
            continue;
        }
        const char *items = *(char *const *)(base + field->offset);
        size_t size = element_size(field);
        fputc('[', out);
        for (size_t k = 0; k < count; k++) {
            if (k > 0)
                fputc(',', out);
            write_value(out, field, items + k * size);
        }
        fputc(']', out);
    }
    fputc('}', out);
}

int pbjson_write(FILE *out, const ProtobufCMessage *msg)
{
    if (!out || !msg)
        return -EINVAL;
    write_message(out, msg);
    return ferror(out) ? -EIO : 0;
}

/* mask: see mask.h for what is revealed.
 *
 * The mask functions write through struct output, which refuses any piece
 * that does not fit whole and then refuses everything after it, so the
 * output is always a prefix of the full result made of whole characters.
 * Each input character yields at most as many bytes as it has, which is what
 * lets mask_message() write a result over its input.
 */
#include "mask.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define PHONE_LONG_DIGITS 11 /* mobile numbers in China; landlines with area code */
#define PHONE_LONG_HEAD 3
#define PHONE_LONG_TAIL 4
#define PHONE_SHORT_TAIL 2
#define ADDRESS_KEPT 6 /* characters: city and district in a Chinese address */
#define SCRATCH_SIZE 256

struct output {
    char *buffer;
    size_t capacity; /* bytes available for text, without the NUL */
    size_t used;
    bool full;
};

static struct output output_start(char *buffer, size_t len)
{
    struct output output = {.buffer = buffer, .capacity = len > 0 ? len - 1 : 0};
    if (buffer == NULL || len == 0)
        output.full = true;
    else
        buffer[0] = '\0';
    return output;
}

static void output_append(struct output *output, const char *bytes, size_t count)
{
    if (output->full)
        return;
    if (count > output->capacity - output->used) {
        output->full = true;
        return;
    }
    memcpy(output->buffer + output->used, bytes, count);
    output->used += count;
    output->buffer[output->used] = '\0';
}

static void output_star(struct output *output)
{
    output_append(output, "*", 1);
}

/* Steps over one character of [text, end): a valid UTF-8 sequence, or a
 * single stray byte. */
static size_t character_length(const unsigned char *text, const unsigned char *end)
{
    size_t length = utf8_char(text, (size_t)(end - text), NULL);
    return length > 0 ? length : 1;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_phone_separator(unsigned char c)
{
    return c == '+' || c == '-' || c == '(' || c == ')' || c == '.' || c == ' ';
}

void mask_phone(const char *in, char *out, size_t len)
{
    struct output output = output_start(out, len);
    const unsigned char *text = (const unsigned char *)(in != NULL ? in : "");
    const unsigned char *end = text + strlen((const char *)text);

    size_t digits = 0;
    for (const unsigned char *c = text; c < end; c++)
        digits += is_digit(*c);

    size_t head = 0, tail;
    if (digits >= PHONE_LONG_DIGITS) {
        head = PHONE_LONG_HEAD;
        tail = PHONE_LONG_TAIL;
    } else {
        tail = digits / 2 < PHONE_SHORT_TAIL ? digits / 2 : PHONE_SHORT_TAIL;
    }

    size_t digit_index = 0;
    for (const unsigned char *c = text; c < end;) {
        if (is_digit(*c)) {
            bool revealed = digit_index < head || digit_index >= digits - tail;
            if (revealed)
                output_append(&output, (const char *)c, 1);
            else
                output_star(&output);
            digit_index++;
            c++;
        } else if (is_phone_separator(*c)) {
            output_append(&output, (const char *)c, 1);
            c++;
        } else {
            output_star(&output);
            c += character_length(c, end);
        }
    }
}

static bool is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The text without leading and trailing ASCII whitespace: [*text, *end).
 * A character is never cut by `end`: trailing spaces are single bytes. */
static void trim(const char *utf8_in, const unsigned char **text, const unsigned char **end)
{
    const unsigned char *start = (const unsigned char *)(utf8_in != NULL ? utf8_in : "");
    while (is_ascii_space(*start))
        start++;
    const unsigned char *stop = start + strlen((const char *)start);
    while (stop > start && is_ascii_space(stop[-1]))
        stop--;
    *text = start;
    *end = stop;
}

/* Copies the character at c when it is printable UTF-8, else one '*'.
 * Returns its length. */
static size_t keep_printable(struct output *output, const unsigned char *c,
                             const unsigned char *end)
{
    size_t length = utf8_char(c, (size_t)(end - c), NULL);
    bool printable = length > 1 || (length == 1 && c[0] >= 0x20 && c[0] != 0x7f);
    if (printable)
        output_append(output, (const char *)c, length);
    else
        output_star(output);
    return character_length(c, end);
}

/* Keeps the first `kept` characters of [text, end) (printable ones), one
 * '*' for each further character. */
static void keep_head(struct output *output, const unsigned char *text, const unsigned char *end,
                      size_t kept)
{
    size_t index = 0;
    for (const unsigned char *c = text; c < end; index++) {
        if (index < kept) {
            c += keep_printable(output, c, end);
        } else {
            output_star(output);
            c += character_length(c, end);
        }
    }
}

void mask_name(const char *utf8_in, char *out, size_t len)
{
    struct output output = output_start(out, len);
    const unsigned char *text, *end;
    trim(utf8_in, &text, &end);
    keep_head(&output, text, end, 1);
}

void mask_address(const char *utf8_in, char *out, size_t len)
{
    struct output output = output_start(out, len);
    const unsigned char *text, *end;
    trim(utf8_in, &text, &end);
    size_t characters = 0;
    for (const unsigned char *c = text; c < end; c += character_length(c, end))
        characters++;
    keep_head(&output, text, end, characters / 2 < ADDRESS_KEPT ? characters / 2 : ADDRESS_KEPT);
}

void mask_text(const char *utf8_in, char *out, size_t len)
{
    struct output output = output_start(out, len);
    const unsigned char *text, *end;
    trim(utf8_in, &text, &end);
    keep_head(&output, text, end, 0);
}

void mask_as(personal_kind_t kind, const char *utf8_in, char *out, size_t len)
{
    if (out != NULL && len > 0)
        out[0] = '\0';
    switch (kind) {
    case PERSONAL_PHONE:
        mask_phone(utf8_in, out, len);
        break;
    case PERSONAL_NAME:
        mask_name(utf8_in, out, len);
        break;
    case PERSONAL_ADDRESS:
        mask_address(utf8_in, out, len);
        break;
    case PERSONAL_TEXT:
        mask_text(utf8_in, out, len);
        break;
    }
}

/* ---- messages ----------------------------------------------------------- */

/* Rewrites text with its masked form. The result is never longer than the
 * text, so it fits where the text was. */
static void mask_string(char *text, personal_kind_t kind)
{
    size_t len = strlen(text);
    if (len == 0)
        return; /* possibly the library's shared empty string: never written */
    char scratch[SCRATCH_SIZE];
    char *out = len < sizeof(scratch) ? scratch : malloc(len + 1);
    if (!out) {
        memset(text, '*', len); /* nothing is revealed rather than too much */
        return;
    }
    mask_as(kind, text, out, len + 1);
    memcpy(text, out, strlen(out) + 1);
    if (out != scratch)
        free(out);
}

static void drop_unknown_fields(ProtobufCMessage *msg)
{
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        free(msg->unknown_fields[i].data);
    free(msg->unknown_fields);
    msg->unknown_fields = NULL;
    msg->n_unknown_fields = 0;
}

/* The values of a string or message field of msg, as an array of pointers
 * into msg: the repeated field's array, or the one pointer of a singular
 * field (none when it is NULL, or a oneof member that is not the case set).
 * Returns their count. */
static size_t field_values(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field,
                           void ***values)
{
    char *base = (char *)msg;
    if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + field->quantifier_offset) != field->id)
        return 0;
    if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        *values = *(void ***)(base + field->offset);
        return *(const size_t *)(base + field->quantifier_offset);
    }
    *values = (void **)(base + field->offset);
    return **values != NULL;
}

void mask_message(ProtobufCMessage *msg, unsigned kinds)
{
    drop_unknown_fields(msg);
    const ProtobufCMessageDescriptor *descriptor = msg->descriptor;
    for (size_t i = 0; i < personal_field_count; i++) {
        const personal_field_t *personal = &personal_fields[i];
        if (!(personal->kind & kinds) || strcmp(personal->message, descriptor->name) != 0)
            continue;
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field(descriptor, personal->number);
        if (!field || field->type != PROTOBUF_C_TYPE_STRING)
            continue;
        void **values;
        size_t count = field_values(msg, field, &values);
        for (size_t k = 0; k < count; k++)
            mask_string(values[k], personal->kind);
    }

    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        if (field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        void **values;
        size_t count = field_values(msg, field, &values);
        for (size_t k = 0; k < count; k++)
            mask_message(values[k], kinds);
    }
}

/* mask: see mask.h for what is revealed.
 *
 * Both functions write through struct output, which refuses any piece that
 * does not fit whole and then refuses everything after it, so the output
 * is always a prefix of the full result made of whole characters.
 */
#include "mask.h"

#include <stdbool.h>
#include <string.h>

#define PHONE_LONG_DIGITS 11 /* mobile numbers in China; landlines with area code */
#define PHONE_LONG_HEAD 3
#define PHONE_LONG_TAIL 4
#define PHONE_SHORT_TAIL 2

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

/* Length of the valid UTF-8 sequence at `text` (1..4), or 0 when the bytes
 * there are not one (overlong forms, surrogates and values past U+10FFFF
 * included). Never reads past a NUL: the NUL fails the continuation test. */
static size_t utf8_sequence_length(const unsigned char *text)
{
    unsigned char lead = text[0];
    size_t length;
    unsigned char second_min = 0x80, second_max = 0xBF;

    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0)
            second_min = 0xA0;
        if (lead == 0xED)
            second_max = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0)
            second_min = 0x90;
        if (lead == 0xF4)
            second_max = 0x8F;
    } else {
        return 0;
    }
    if (text[1] < second_min || text[1] > second_max)
        return 0;
    for (size_t i = 2; i < length; i++)
        if (text[i] < 0x80 || text[i] > 0xBF)
            return 0;
    return length;
}

/* Steps over one character: a valid sequence, or a single stray byte. */
static size_t character_length(const unsigned char *text)
{
    size_t length = utf8_sequence_length(text);
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

    size_t digits = 0;
    for (const unsigned char *c = text; *c != '\0'; c++)
        digits += is_digit(*c);

    size_t head = 0, tail;
    if (digits >= PHONE_LONG_DIGITS) {
        head = PHONE_LONG_HEAD;
        tail = PHONE_LONG_TAIL;
    } else {
        tail = digits / 2 < PHONE_SHORT_TAIL ? digits / 2 : PHONE_SHORT_TAIL;
    }

    size_t digit_index = 0;
    for (const unsigned char *c = text; *c != '\0';) {
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
            c += character_length(c);
        }
    }
}

static bool is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void mask_name(const char *utf8_in, char *out, size_t len)
{
    struct output output = output_start(out, len);
    const unsigned char *text = (const unsigned char *)(utf8_in != NULL ? utf8_in : "");

    while (is_ascii_space(*text))
        text++;
    const unsigned char *end = text + strlen((const char *)text);
    while (end > text && is_ascii_space(end[-1]))
        end--;
    if (text == end)
        return;

    size_t first_length = utf8_sequence_length(text);
    bool first_printable =
        first_length > 1 || (first_length == 1 && text[0] >= 0x20 && text[0] != 0x7f);
    if (first_printable)
        output_append(&output, (const char *)text, first_length);
    else
        output_star(&output);

    /* A sequence is never cut by `end`: trailing spaces are single bytes. */
    for (const unsigned char *c = text + character_length(text); c < end; c += character_length(c))
        output_star(&output);
}

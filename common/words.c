/* words: see words.h for the rule.
 *
 * The prefix is never built: prefix_length() matches a value's name against
 * the enum's CamelCase name character by character, so the module needs no
 * buffer and no table but the aliases.
 */
#include "words.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "dispatch.pb-c.h"

/* Short forms in use before the rule: accepted, never printed as the word. */
static const struct alias {
    const ProtobufCEnumDescriptor *descriptor;
    int value;
    const char *word;
} aliases[] = {
    {&dispatch__satisfaction__descriptor, DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED,
     "basically"},
    {&dispatch__resolution_result__descriptor,
     DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_PARTLY_SOLVED, "partly"},
    {&dispatch__emergency_line__descriptor, DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_POLICE_110,
     "110"},
    {&dispatch__emergency_line__descriptor, DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_FIRE_119,
     "119"},
    {&dispatch__emergency_line__descriptor, DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_AMBULANCE_120,
     "120"},
    {&dispatch__emergency_line__descriptor, DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_TRAFFIC_122,
     "122"},
};

#define UNSPECIFIED "UNSPECIFIED"

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_lower_or_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static char to_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static char to_lower(char c)
{
    return is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

/* Length of the enum's prefix at the start of name ("EMERGENCY_LINE_" for
 * EmergencyLine), 0 when name does not start with it. A word boundary in
 * the CamelCase name is an upper-case letter after a lower-case letter or a
 * digit, or before a lower-case letter after an upper-case one ("KPIQuery"
 * -> "KPI_QUERY"). */
static size_t prefix_length(const char *camel, const char *name)
{
    size_t at = 0;
    for (size_t i = 0; camel[i]; i++) {
        bool boundary =
            i > 0 && is_upper(camel[i]) &&
            (is_lower_or_digit(camel[i - 1]) ||
             (is_upper(camel[i - 1]) && camel[i + 1] && is_lower_or_digit(camel[i + 1])));
        if (boundary && name[at++] != '_')
            return 0;
        if (name[at++] != to_upper(camel[i]))
            return 0;
    }
    return name[at] == '_' && name[at + 1] ? at + 1 : 0;
}

static const char *suffix_of(const ProtobufCEnumDescriptor *descriptor,
                             const ProtobufCEnumValue *named)
{
    return named->name + prefix_length(descriptor->short_name, named->name);
}

const char *words_suffix(const ProtobufCEnumDescriptor *descriptor, int value)
{
    const ProtobufCEnumValue *named = protobuf_c_enum_descriptor_get_value(descriptor, value);
    return named ? suffix_of(descriptor, named) : NULL;
}

int words_name(const ProtobufCEnumDescriptor *descriptor, int value, char *buf, size_t len)
{
    if (len > 0)
        buf[0] = '\0';
    const char *suffix = words_suffix(descriptor, value);
    if (!suffix || strcmp(suffix, UNSPECIFIED) == 0)
        return -EINVAL;
    size_t length = strlen(suffix);
    if (length >= len)
        return -ENOSPC;
    for (size_t i = 0; i < length; i++)
        buf[i] = suffix[i] == '_' ? '-' : to_lower(suffix[i]);
    buf[length] = '\0';
    return 0;
}

const char *words_alias(const ProtobufCEnumDescriptor *descriptor, int value)
{
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (aliases[i].descriptor == descriptor && aliases[i].value == value)
            return aliases[i].word;
    return NULL;
}

/* Whether word is the word of suffix: '-' for '_', ASCII case ignored. */
static bool is_word_of(const char *word, const char *suffix)
{
    for (; *word && *suffix; word++, suffix++) {
        char expected = *suffix == '_' ? '-' : *suffix;
        if (to_upper(*word) != expected)
            return false;
    }
    return *word == '\0' && *suffix == '\0';
}

static bool same_ignoring_case(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (to_lower(*a) != to_lower(*b))
            return false;
    return *a == '\0' && *b == '\0';
}

int words_parse(const ProtobufCEnumDescriptor *descriptor, const char *word, int *value)
{
    if (!word || !*word)
        return -EINVAL;
    for (unsigned i = 0; i < descriptor->n_values; i++) {
        const char *suffix = suffix_of(descriptor, &descriptor->values[i]);
        if (strcmp(suffix, UNSPECIFIED) != 0 && is_word_of(word, suffix)) {
            *value = descriptor->values[i].value;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (aliases[i].descriptor == descriptor && same_ignoring_case(word, aliases[i].word)) {
            *value = aliases[i].value;
            return 0;
        }
    }
    return -EINVAL;
}

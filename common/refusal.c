/* refusal: see refusal.h. */
#include "refusal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

/* Cuts text back to whole UTF-8 characters (vsnprintf may have cut one). */
static void utf8_trim(char *text)
{
    size_t len = strlen(text);
    while (len > 0 && !codec_utf8_valid(text, len))
        text[--len] = '\0';
}

int refuse(refusal_t *refusal, Dispatch__ErrorCode code, const char *field, const char *format, ...)
{
    refusal->code = code;
    snprintf(refusal->field, sizeof(refusal->field), "%s", field ? field : "");
    va_list args;
    va_start(args, format);
    /* Never NULL from a caller (the format attribute checks them all);
     * said here so that instrumented builds see it too. */
    vsnprintf(refusal->message, sizeof(refusal->message), format ? format : "", args);
    va_end(args);
    utf8_trim(refusal->field);
    utf8_trim(refusal->message);
    return REFUSED;
}

int refuse_text(refusal_t *refusal, const char *field, const char *value, size_t limit,
                bool required)
{
    size_t len = value ? strlen(value) : 0;
    if (required && len == 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, field,
                      "%s is required", field);
    if (len > limit)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, field,
                      "%s is %zu bytes, at most %zu allowed", field, len, limit);
    return 0;
}

int refuse_unset_enum(refusal_t *refusal, const char *field, int value)
{
    if (value == 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, field,
                      "%s is required (it is UNSPECIFIED)", field);
    return 0;
}

int refuse_phone(refusal_t *refusal, const char *field, const char *phone)
{
    size_t len = strlen(phone);
    if (len == 0)
        return 0;
    if (len > LIMIT_PHONE)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, field,
                      "%s is %zu characters, at most %d allowed", field, len, LIMIT_PHONE);
    size_t digits_from = phone[0] == '+' ? 1 : 0;
    bool digits_only = len > digits_from;
    for (size_t i = digits_from; i < len; i++)
        digits_only = digits_only && phone[i] >= '0' && phone[i] <= '9';
    if (!digits_only || len < LIMIT_PHONE_MIN)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_PHONE, field,
                      "%s must be an optional '+' then digits, %d to %d characters in all", field,
                      LIMIT_PHONE_MIN, LIMIT_PHONE);
    return 0;
}

int refuse_units(refusal_t *refusal, const char *field, char *const *units, size_t count,
                 const char *lead)
{
    if (count > LIMIT_UNITS)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, field,
                      "%zu units, at most %d", count, LIMIT_UNITS);
    for (size_t i = 0; i < count; i++) {
        if (refuse_text(refusal, field, units[i], LIMIT_ID, true))
            return REFUSED;
        bool twice = strcmp(units[i], lead) == 0;
        for (size_t j = 0; j < i && !twice; j++)
            twice = strcmp(units[j], units[i]) == 0;
        if (twice)
            return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, field,
                          "unit %s is named twice", units[i]);
    }
    return 0;
}

int refuse_decode(refusal_t *refusal, int rc, const char *err, size_t len, size_t max,
                  const char *what)
{
    /* For UTF-8 and enum refusals err reads "<field path>: <problem>". */
    char field[128] = "";
    const char *colon = strstr(err, ": ");
    if (colon && (rc == CODEC_BAD_UTF8 || rc == CODEC_BAD_ENUM))
        snprintf(field, sizeof(field), "%.*s", (int)(colon - err), err);
    switch (rc) {
    case CODEC_TOO_LARGE:
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, NULL,
                      "request of %zu bytes, at most %zu allowed", len, max);
    case CODEC_BAD_UTF8:
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8, field, "%s", err);
    case CODEC_BAD_ENUM:
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, field, "%s", err);
    default:
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, NULL,
                      "not a valid %s (malformed protobuf)", what);
    }
}

void refusal_error(const refusal_t *refusal, Dispatch__Error *error)
{
    dispatch__error__init(error);
    error->code = refusal->code;
    error->message = (char *)refusal->message;
    error->field = (char *)refusal->field;
}

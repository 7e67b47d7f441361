/* refusal: why a request is refused, and the protocol's field limits.
 *
 * Every request path (intake, router, escalation, audit) checks its input
 * with these helpers and answers a refusal with one dispatch.Error: a code,
 * the dotted path of the offending field ("submit.caller_phone") and a
 * message. Convention of every check: 0 = fine, REFUSED = refused (the
 * refusal is filled in), a negative code = a failure of the worker itself
 * (storage: the batch is aborted and retried).
 *
 * The limits are those of docs/protocol.md section 10, declared once.
 * Messages are cut at a UTF-8 character boundary, so an Error always
 * encodes (protobuf strings must be valid UTF-8).
 */
#ifndef DISPATCH_REFUSAL_H
#define DISPATCH_REFUSAL_H

#include <stdbool.h>
#include <stddef.h>

#include "dispatch.pb-c.h"

/* docs/protocol.md section 10, in bytes unless said otherwise. */
#define LIMIT_ID 64          /* every id, code and name of the topology */
#define LIMIT_NAME 64        /* caller_name, Unit.name */
#define LIMIT_PHONE 20       /* characters: optional '+', then digits */
#define LIMIT_PHONE_MIN 3    /* characters in all */
#define LIMIT_LONG_TEXT 4000 /* description, answer, Resolve.text */
#define LIMIT_ADDRESS 256    /* Location.address */
#define LIMIT_TEXT 2000      /* other free text */
#define LIMIT_UNITS 16       /* assisting_units entries */
#define LIMIT_LAT_E6 90000000
#define LIMIT_LON_E6 180000000

#define REFUSED 1

typedef struct refusal {
    Dispatch__ErrorCode code; /* ERROR_CODE_OK: not refused */
    char field[128];
    char message[512];
} refusal_t;

/* Fills the refusal; returns REFUSED. field may be NULL (no field). */
__attribute__((format(printf, 4, 5))) int refuse(refusal_t *refusal, Dispatch__ErrorCode code,
                                                 const char *field, const char *format, ...);

/* A text field: MISSING_FIELD when required and empty, TOO_LARGE past
 * limit bytes. */
int refuse_text(refusal_t *refusal, const char *field, const char *value, size_t limit,
                bool required);
/* MISSING_FIELD when an enum field is UNSPECIFIED (0). */
int refuse_unset_enum(refusal_t *refusal, const char *field, int value);
/* "" or an optional '+' then digits, LIMIT_PHONE_MIN..LIMIT_PHONE
 * characters in all: TOO_LARGE past LIMIT_PHONE, else INVALID_PHONE. */
int refuse_phone(refusal_t *refusal, const char *field, const char *phone);
/* A list of unit ids beside a lead unit: at most LIMIT_UNITS, each an id,
 * none named twice nor equal to lead. */
int refuse_units(refusal_t *refusal, const char *field, char *const *units, size_t count,
                 const char *lead);

/* A request codec_decode() refused (rc, err as it wrote them) of len bytes
 * (max accepted), mapped to its error code; for UTF-8 and enum problems the
 * field is the path codec_decode named. `what` names the message type in
 * the text ("dispatch.Request"). */
int refuse_decode(refusal_t *refusal, int rc, const char *err, size_t len, size_t max,
                  const char *what);

/* The Error of a refusal; its strings point into the refusal. */
void refusal_error(const refusal_t *refusal, Dispatch__Error *error);

#endif

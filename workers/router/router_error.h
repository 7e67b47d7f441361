/* router_error: why the router refuses a request, as it goes into an Error
 * reply (code, dotted field path, message). Filled by validation and
 * decision code; the caller turns it into the reply.
 *
 * Convention of the router's checks: 0 = fine, ROUTER_REFUSED = refused
 * (the error is filled in), a negative code = storage failure (the batch
 * is aborted and retried). */
#ifndef DISPATCH_ROUTER_ERROR_H
#define DISPATCH_ROUTER_ERROR_H

#include <stdarg.h>
#include <stdio.h>

#include "dispatch.pb-c.h"

/* Limits of dispatch.proto (docs/protocol.md section 10), in bytes. */
#define ROUTER_ID_MAX 64
#define ROUTER_NAME_MAX 64
#define ROUTER_TEXT_MAX 2000
#define ROUTER_LONG_TEXT_MAX 4000
#define ROUTER_UNITS_MAX 16

#define ROUTER_REFUSED 1

typedef struct router_error {
    Dispatch__ErrorCode code; /* ERROR_CODE_OK = no error */
    char field[128];
    char message[512];
} router_error_t;

__attribute__((format(printf, 4, 5))) static inline int router_error_set(router_error_t *err,
                                                                         Dispatch__ErrorCode code,
                                                                         const char *field,
                                                                         const char *format, ...)
{
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_list args;
    va_start(args, format);
    vsnprintf(err->message, sizeof(err->message), format, args);
    va_end(args);
    return ROUTER_REFUSED;
}

#endif

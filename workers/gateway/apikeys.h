/* apikeys: the Open311 api_key of each client of the gateway.
 *
 * A file of lines "<api_key> <client_id>" ('#' starts a comment line). The
 * client id is who the request comes from: it prefixes the idempotency key
 * the gateway sends to intake, so two clients' keys never meet, and it is
 * what the gateway logs. An api_key is 16..128 printable ASCII characters
 * without spaces; a client id 1..32 bytes of [A-Za-z0-9._-].
 *
 * Immutable once loaded; any thread may look up.
 */
#ifndef DISPATCH_GATEWAY_APIKEYS_H
#define DISPATCH_GATEWAY_APIKEYS_H

#include <stddef.h>

#define APIKEYS_CLIENT_MAX 32

typedef struct apikeys apikeys_t;

/* -ENOENT, -EINVAL (err says which line), -ENOMEM. */
int apikeys_load(const char *path, apikeys_t **ret, char *err, size_t err_len);
void apikeys_destroy(apikeys_t **self);
size_t apikeys_count(const apikeys_t *self);
/* The client of api_key, or NULL. Compares in time independent of where
 * the keys differ. */
const char *apikeys_client(const apikeys_t *self, const char *api_key);

#endif

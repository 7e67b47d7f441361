/* tool_keys: the CURVE keys a tool (dispatchctl, dispatch-unitsim,
 * dispatch-callgen) uses to reach a worker of the topology.
 *
 * With [city] security = plain there are none (*ret NULL). Else the tool's
 * key pair is key_path (--key) or <keys_dir>/<actor>.key_secret, and the
 * server's public key <keys_dir>/<server>.key. Nothing here prints: on
 * failure err says what is missing.
 */
#ifndef DISPATCH_TOOL_KEYS_H
#define DISPATCH_TOOL_KEYS_H

#include <stddef.h>

#include "auth.h"
#include "config.h"

/* 0 and *ret (NULL, or keys pointing to `keys`); negative errno and err. */
int tool_keys(const config_t *config, const char *key_path, const char *actor, const char *server,
              auth_client_t *keys, const auth_client_t **ret, char *err, size_t err_len);

/* The worker of config that binds url (request, units or publish); NULL
 * when none does. */
const char *tool_server_of(const config_t *config, const char *url);

#endif

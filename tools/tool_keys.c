#include "tool_keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int tool_keys(const config_t *config, const char *key_path, const char *actor, const char *server,
              auth_client_t *keys, const auth_client_t **ret, char *err, size_t err_len)
{
    *ret = NULL;
    if (!config || config_security(config) != CONFIG_SECURITY_CURVE)
        return 0;
    const char *dir = config_keys_dir(config);
    if (!server) {
        snprintf(err, err_len,
                 "no worker of the topology serves that endpoint, so its key is "
                 "unknown");
        return -ENOENT;
    }
    int rc = auth_public_load(dir, server, keys->server_key);
    if (rc < 0) {
        snprintf(err, err_len, "key of %s: %s/%s.key: %s", server, dir, server, strerror(-rc));
        return rc;
    }
    rc = key_path ? auth_keypair_load_file(key_path, &keys->self)
                  : auth_keypair_load(dir, actor, &keys->self);
    if (rc < 0) {
        if (key_path)
            snprintf(err, err_len, "key %s: %s", key_path, strerror(-rc));
        else
            snprintf(err, err_len, "no key for %s: %s/%s.key_secret: %s (give --key FILE)", actor,
                     dir, actor, strerror(-rc));
        return rc;
    }
    *ret = keys;
    return 0;
}

const char *tool_server_of(const config_t *config, const char *url)
{
    for (size_t i = 0; config && i < config_worker_count(config); i++) {
        const config_worker_t *w = config_worker_at(config, i);
        const char *const endpoints[] = {w->request, w->units, w->publish};
        for (size_t k = 0; k < sizeof(endpoints) / sizeof(endpoints[0]); k++)
            if (endpoints[k] && strcmp(endpoints[k], url) == 0)
                return w->name;
    }
    return NULL;
}

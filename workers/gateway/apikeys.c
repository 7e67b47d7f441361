/* apikeys: the api_key file; see apikeys.h. */
#include "apikeys.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MIN 16
#define KEY_MAX 128

typedef struct apikey {
    char key[KEY_MAX + 1];
    size_t key_len;
    char client[APIKEYS_CLIENT_MAX + 1];
} apikey_t;

struct apikeys {
    apikey_t *keys;
    size_t count;
};

static bool key_valid(const char *key, size_t len)
{
    if (len < KEY_MIN || len > KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] <= ' ' || key[i] > '~')
            return false;
    return true;
}

static bool client_valid(const char *client, size_t len)
{
    if (len < 1 || len > APIKEYS_CLIENT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = client[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int apikeys_load(const char *path, apikeys_t **ret, char *err, size_t err_len)
{
    FILE *file = fopen(path, "re");
    if (!file) {
        int rc = -errno;
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return rc;
    }
    apikeys_t *self = calloc(1, sizeof(*self));
    size_t capacity = 0;
    int rc = self ? 0 : -ENOMEM;
    char line[512];
    unsigned long number = 0;
    while (rc == 0 && fgets(line, sizeof(line), file)) {
        number++;
        char *key = line + strspn(line, " \t");
        if (*key == '#' || *key == '\n' || *key == '\0')
            continue;
        size_t key_len = strcspn(key, " \t\n");
        char *client = key + key_len;
        client += strspn(client, " \t");
        size_t client_len = strcspn(client, " \t\n");
        if (!key_valid(key, key_len) || !client_valid(client, client_len)) {
            snprintf(err, err_len, "%s:%lu: want \"<api_key of 16..128 characters> <client_id>\"",
                     path, number);
            rc = -EINVAL;
            break;
        }
        if (self->count == capacity) {
            size_t next = capacity ? capacity * 2 : 8;
            apikey_t *bigger = realloc(self->keys, next * sizeof(*bigger));
            if (!bigger) {
                rc = -ENOMEM;
                break;
            }
            self->keys = bigger;
            capacity = next;
        }
        apikey_t *entry = &self->keys[self->count++];
        memcpy(entry->key, key, key_len);
        entry->key[key_len] = '\0';
        entry->key_len = key_len;
        memcpy(entry->client, client, client_len);
        entry->client[client_len] = '\0';
    }
    fclose(file);
    if (rc < 0) {
        apikeys_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void apikeys_destroy(apikeys_t **self)
{
    if (!self || !*self)
        return;
    free((*self)->keys);
    free(*self);
    *self = NULL;
}

size_t apikeys_count(const apikeys_t *self)
{
    return self->count;
}

const char *apikeys_client(const apikeys_t *self, const char *api_key)
{
    size_t len = strnlen(api_key, KEY_MAX + 1);
    if (len > KEY_MAX)
        return NULL;
    const char *found = NULL;
    for (size_t i = 0; i < self->count; i++) {
        const apikey_t *entry = &self->keys[i];
        unsigned char diff = (unsigned char)(entry->key_len != len);
        for (size_t j = 0; j < KEY_MAX; j++)
            diff |=
                (unsigned char)(entry->key[j < entry->key_len ? j : 0] ^ api_key[j < len ? j : 0]) &
                (unsigned char)-(j < len && j < entry->key_len);
        if (!diff && !found)
            found = entry->client;
    }
    return found;
}

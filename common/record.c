#include "record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "store.h"

int record_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len,
               const ProtobufCMessageDescriptor *descriptor, ProtobufCMessage **ret)
{
    *ret = NULL;
    MDB_val k = {key_len, (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc != 0)
        return store_rc(rc);
    *ret = protobuf_c_message_unpack(descriptor, NULL, v.mv_size, v.mv_data);
    return *ret ? 0 : -EPROTO;
}

int record_put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len,
               const ProtobufCMessage *msg, unsigned flags)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    if (size > RECORD_MAX_SIZE)
        return -EMSGSIZE;
    MDB_val k = {key_len, (void *)key}, v = {size, NULL};
    /* Pack straight into the page LMDB reserves: no copy. */
    int rc = mdb_put(txn, dbi, &k, &v, flags | MDB_RESERVE);
    if (rc != 0)
        return store_rc(rc);
    protobuf_c_message_pack(msg, v.mv_data);
    return 0;
}

int record_delete(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len)
{
    MDB_val k = {key_len, (void *)key};
    int rc = mdb_del(txn, dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    return store_rc(rc);
}

ProtobufCMessage *record_clone(const ProtobufCMessage *msg)
{
    void *bytes;
    size_t len;
    if (codec_encode(msg, &bytes, &len) < 0)
        return NULL;
    ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, bytes);
    free(bytes);
    return copy;
}

static void string_free(char *s)
{
    if (s && s != protobuf_c_empty_string)
        free(s);
}

int record_string_set(char **field, const char *value)
{
    char *copy = (char *)protobuf_c_empty_string;
    if (value && *value) {
        copy = strdup(value);
        if (!copy)
            return -ENOMEM;
    }
    string_free(*field);
    *field = copy;
    return 0;
}

bool record_strings_contain(char *const *items, size_t count, const char *value)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(items[i], value) == 0)
            return true;
    return false;
}

int record_strings_append(char ***items, size_t *count, const char *value)
{
    char *copy = strdup(value);
    char **grown = realloc(*items, (*count + 1) * sizeof(**items));
    if (!copy || !grown) {
        free(copy);
        if (grown)
            *items = grown;
        return -ENOMEM;
    }
    grown[(*count)++] = copy;
    *items = grown;
    return 0;
}

void record_strings_remove(char **items, size_t *count, const char *value)
{
    size_t kept = 0;
    for (size_t i = 0; i < *count; i++) {
        if (strcmp(items[i], value) == 0)
            string_free(items[i]);
        else
            items[kept++] = items[i];
    }
    *count = kept;
}

void record_strings_clear(char ***items, size_t *count)
{
    for (size_t i = 0; i < *count; i++)
        string_free((*items)[i]);
    free(*items);
    *items = NULL;
    *count = 0;
}

int record_strings_set(char ***items, size_t *count, char *const *values, size_t value_count)
{
    char **copy = NULL;
    size_t copied = 0;
    for (size_t i = 0; i < value_count; i++) {
        int rc = record_strings_append(&copy, &copied, values[i]);
        if (rc < 0) {
            record_strings_clear(&copy, &copied);
            return rc;
        }
    }
    record_strings_clear(items, count);
    *items = copy;
    *count = copied;
    return 0;
}

size_t record_key2(char *key, size_t len, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + 1 + lb > len)
        return 0;
    memcpy(key, a, la);
    key[la] = '\0';
    memcpy(key + la + 1, b, lb);
    return la + 1 + lb;
}

size_t record_key3(char *key, size_t len, const char *a, const char *b, const char *c)
{
    size_t first = record_key2(key, len, a, b);
    size_t lc = strlen(c);
    if (first == 0 || first + 1 + lc > len)
        return 0;
    key[first] = '\0';
    memcpy(key + first + 1, c, lc);
    return first + 1 + lc;
}

/* timers: see timers.h. */
#include "timers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX (8 + TIMERS_ID_MAX)

struct timers {
    MDB_dbi dbi;
};

int timers_new(store_t *store, timers_t **ret)
{
    timers_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    int rc = store_dbi(store, "escalation.timers", 0, &self->dbi);
    if (rc < 0) {
        free(self);
        return rc;
    }
    *ret = self;
    return 0;
}

void timers_destroy(timers_t **self)
{
    free(*self);
    *self = NULL;
}

static int make_key(int64_t due, const char *ticket_id, unsigned char key[KEY_MAX], size_t *len)
{
    size_t id_len = strlen(ticket_id);
    if (due <= 0 || id_len == 0 || id_len > TIMERS_ID_MAX)
        return -EINVAL;
    store_u64_encode((uint64_t)due, key);
    memcpy(key + 8, ticket_id, id_len);
    *len = 8 + id_len;
    return 0;
}

int timers_arm(timers_t *self, MDB_txn *txn, int64_t due, const char *ticket_id)
{
    unsigned char key[KEY_MAX];
    size_t len;
    int rc = make_key(due, ticket_id, key, &len);
    if (rc < 0)
        return rc;
    MDB_val k = {len, key}, v = {0, NULL};
    return store_rc(mdb_put(txn, self->dbi, &k, &v, 0));
}

int timers_disarm(timers_t *self, MDB_txn *txn, int64_t due, const char *ticket_id)
{
    unsigned char key[KEY_MAX];
    size_t len;
    int rc = make_key(due, ticket_id, key, &len);
    if (rc < 0)
        return rc;
    MDB_val k = {len, key};
    rc = mdb_del(txn, self->dbi, &k, NULL);
    return rc == MDB_NOTFOUND ? -ENOENT : store_rc(rc);
}

/* Decodes a key; -EPROTO for one this module never wrote. */
static int read_key(const MDB_val *k, int64_t *due, char ticket_id[TIMERS_ID_SIZE])
{
    if (k->mv_size <= 8 || k->mv_size > KEY_MAX)
        return -EPROTO;
    *due = (int64_t)store_u64_decode(k->mv_data);
    if (ticket_id) {
        memcpy(ticket_id, (const unsigned char *)k->mv_data + 8, k->mv_size - 8);
        ticket_id[k->mv_size - 8] = '\0';
    }
    return 0;
}

int timers_first(timers_t *self, MDB_txn *txn, int64_t *due, char ticket_id[TIMERS_ID_SIZE])
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, self->dbi, &cursor));
    if (rc < 0)
        return rc;
    MDB_val k, v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    if (rc == MDB_NOTFOUND)
        rc = -ENOENT;
    else if (rc == 0)
        rc = read_key(&k, due, ticket_id);
    else
        rc = store_rc(rc);
    mdb_cursor_close(cursor);
    return rc;
}

int timers_pop_due(timers_t *self, MDB_txn *txn, int64_t now, int64_t *due,
                   char ticket_id[TIMERS_ID_SIZE])
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, self->dbi, &cursor));
    if (rc < 0)
        return rc;
    MDB_val k, v;
    rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    if (rc == MDB_NOTFOUND) {
        rc = -ENOENT;
    } else if (rc != 0) {
        rc = store_rc(rc);
    } else {
        rc = read_key(&k, due, ticket_id);
        if (rc == -EPROTO) {
            /* Not ours: drop it rather than stop every timer behind it. */
            rc = store_rc(mdb_cursor_del(cursor, 0));
            if (rc == 0)
                rc = -EAGAIN;
        } else if (rc == 0 && *due > now) {
            rc = -ENOENT;
        } else if (rc == 0) {
            rc = store_rc(mdb_cursor_del(cursor, 0));
        }
    }
    mdb_cursor_close(cursor);
    return rc;
}

int timers_count(timers_t *self, MDB_txn *txn, uint64_t *count)
{
    MDB_stat stat;
    int rc = store_rc(mdb_stat(txn, self->dbi, &stat));
    if (rc == 0)
        *count = stat.ms_entries;
    return rc;
}

#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_DEFAULT_MAP_SIZE (64ULL << 20)
#define STORE_DEFAULT_MAX_MAP_SIZE (1ULL << 40)
#define STORE_DEFAULT_MAX_DBS 64

struct store {
    MDB_env *env;
    uint64_t map_size;
    uint64_t max_map_size;
    uint64_t commits;
    int stale_readers;
};

static int make_dirs(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int rc = 0;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0750) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *p = '/';
    }
    if (rc == 0 && mkdir(copy, 0750) < 0 && errno != EEXIST)
        rc = -errno;
    free(copy);
    return rc;
}

int store_lock(const char *dir, int *fd, long *holder)
{
    *holder = 0;
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/worker.lock", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int rc = make_dirs(dir);
    if (rc < 0)
        return rc;
    int lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock < 0)
        return -errno;
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        char text[32] = "";
        ssize_t n = pread(lock, text, sizeof(text) - 1, 0);
        if (n > 0)
            *holder = strtol(text, NULL, 10);
        close(lock);
        return rc;
    }
    char text[32];
    int len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(lock, 0) < 0 || pwrite(lock, text, (size_t)len, 0) != len) {
        rc = -errno;
        close(lock);
        return rc;
    }
    *fd = lock;
    return 0;
}

int store_open(const char *dir, const store_options_t *options, store_t **ret)
{
    store_options_t defaults = {0};
    if (!options)
        options = &defaults;

    store_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->map_size = options->map_size ? options->map_size : STORE_DEFAULT_MAP_SIZE;
    self->max_map_size = options->max_map_size ? options->max_map_size : STORE_DEFAULT_MAX_MAP_SIZE;
    if (self->max_map_size < self->map_size)
        self->max_map_size = self->map_size;

    int rc = make_dirs(dir);
    if (rc < 0)
        goto fail;
    rc = store_rc(mdb_env_create(&self->env));
    if (rc < 0)
        goto fail;
    rc = store_rc(
        mdb_env_set_maxdbs(self->env, options->max_dbs ? options->max_dbs : STORE_DEFAULT_MAX_DBS));
    if (rc == 0)
        rc = store_rc(mdb_env_set_mapsize(self->env, self->map_size));
    /* NOTLS: read transactions are tied to the caller, not the thread. */
    unsigned flags = MDB_NOTLS | (options->no_sync ? MDB_NOSYNC : 0);
    if (rc == 0)
        rc = store_rc(mdb_env_open(self->env, dir, flags, 0640));
    if (rc < 0)
        goto fail;

    /* A file that is larger than asked (grown in an earlier run) keeps its size. */
    MDB_envinfo info;
    mdb_env_info(self->env, &info);
    self->map_size = info.me_mapsize;

    rc = store_rc(mdb_reader_check(self->env, &self->stale_readers));
    if (rc < 0)
        goto fail;

    *ret = self;
    return 0;

fail:
    if (self->env)
        mdb_env_close(self->env);
    free(self);
    return rc;
}

void store_destroy(store_t **self)
{
    if (!*self)
        return;
    mdb_env_close((*self)->env);
    free(*self);
    *self = NULL;
}

int store_dbis(store_t *self, const store_db_t *dbs, size_t count)
{
    MDB_txn *txn;
    int rc = store_rc(mdb_txn_begin(self->env, NULL, 0, &txn));
    if (rc < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = store_rc(mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | MDB_CREATE, dbs[i].dbi));
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_rc(mdb_txn_commit(txn));
}

int store_dbi(store_t *self, const char *name, unsigned flags, MDB_dbi *ret)
{
    return store_dbis(self, &(store_db_t){name, ret, flags}, 1);
}

static int grow(store_t *self)
{
    if (self->map_size >= self->max_map_size)
        return MDB_MAP_FULL;
    uint64_t size = self->map_size * 2;
    if (size > self->max_map_size)
        size = self->max_map_size;
    int rc = store_rc(mdb_env_set_mapsize(self->env, size));
    if (rc == 0)
        self->map_size = size;
    return rc;
}

/* Another process (a reader such as dispatchctl) may have grown the map:
 * adopt its size. */
static int adopt_map_size(store_t *self)
{
    int rc = store_rc(mdb_env_set_mapsize(self->env, 0));
    if (rc == 0) {
        MDB_envinfo info;
        mdb_env_info(self->env, &info);
        self->map_size = info.me_mapsize;
    }
    return rc;
}

int store_write(store_t *self, store_write_fn fn, void *ctx)
{
    for (;;) {
        MDB_txn *txn;
        int rc = store_rc(mdb_txn_begin(self->env, NULL, 0, &txn));
        if (rc == MDB_MAP_RESIZED) {
            rc = adopt_map_size(self);
            if (rc < 0)
                return rc;
            continue;
        }
        if (rc < 0)
            return rc;

        rc = fn(txn, ctx);
        if (rc == 0) {
            rc = store_rc(mdb_txn_commit(txn));
            if (rc == 0)
                self->commits++;
        } else {
            mdb_txn_abort(txn);
        }
        if (rc != MDB_MAP_FULL)
            return rc;
        rc = grow(self);
        if (rc < 0)
            return rc;
    }
}

int store_read_begin(store_t *self, MDB_txn **ret)
{
    int rc = store_rc(mdb_txn_begin(self->env, NULL, MDB_RDONLY, ret));
    if (rc == MDB_MAP_RESIZED) {
        rc = adopt_map_size(self);
        if (rc == 0)
            rc = store_rc(mdb_txn_begin(self->env, NULL, MDB_RDONLY, ret));
    }
    return rc;
}

void store_read_end(MDB_txn **txn)
{
    if (*txn) {
        mdb_txn_abort(*txn);
        *txn = NULL;
    }
}

MDB_env *store_env(store_t *self)
{
    return self->env;
}

uint64_t store_map_size(const store_t *self)
{
    return self->map_size;
}

uint64_t store_commits(const store_t *self)
{
    return self->commits;
}

int store_stale_readers(const store_t *self)
{
    return self->stale_readers;
}

const char *store_strerror(int rc)
{
    if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE)
        return mdb_strerror(rc);
    return strerror(-rc);
}

int store_get_u64(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len, uint64_t fallback,
                  uint64_t *value)
{
    MDB_val k = {key_len, (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *value = fallback;
        return 0;
    }
    if (rc != 0)
        return store_rc(rc);
    if (v.mv_size != 8)
        return -EPROTO;
    *value = store_u64_decode(v.mv_data);
    return 0;
}

int store_put_u64(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len, uint64_t value)
{
    unsigned char bytes[8];
    store_u64_encode(value, bytes);
    MDB_val k = {key_len, (void *)key}, v = {8, bytes};
    return store_rc(mdb_put(txn, dbi, &k, &v, 0));
}

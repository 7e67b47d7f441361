#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
    store_health_t health;
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

/* ---- the check of a data file at open ----------------------------------- */

/* What the child that walks the file reports in its exit status. */
enum {
    CHECK_SOUND = 0,
    CHECK_TRUNCATED = 1,
    CHECK_CORRUPTED = 2,
    CHECK_VERSION = 3,
    CHECK_FAILED = 4, /* it could not look (memory, files): not the file's fault */
};

static int check_of_rc(int rc)
{
    switch (rc) {
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_VALSIZE:
    case -EINVAL:
        return CHECK_CORRUPTED;
    case MDB_VERSION_MISMATCH:
        return CHECK_VERSION;
    default:
        return CHECK_FAILED;
    }
}

/* Reads every key and value of dbi, so that every page is touched. */
static int walk_db(MDB_txn *txn, MDB_dbi dbi, volatile unsigned char *sum)
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, dbi, &cursor));
    if (rc < 0)
        return rc;
    MDB_val key, value;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = store_rc(mdb_cursor_get(cursor, &key, &value, op))) == 0) {
        op = MDB_NEXT;
        for (size_t i = 0; i < key.mv_size; i++)
            *sum ^= ((const unsigned char *)key.mv_data)[i];
        for (size_t i = 0; i < value.mv_size; i++)
            *sum ^= ((const unsigned char *)value.mv_data)[i];
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* In the child: the whole check, as an exit status. */
static int check_file(const char *dir, off_t file_size)
{
    MDB_env *env;
    if (mdb_env_create(&env) != 0)
        return CHECK_FAILED;
    mdb_env_set_maxdbs(env, 4096);
    int rc = store_rc(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0640));
    if (rc < 0)
        return check_of_rc(rc);
    MDB_envinfo info;
    MDB_stat stat;
    mdb_env_info(env, &info);
    mdb_env_stat(env, &stat);
    if ((uint64_t)file_size < ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize)
        return CHECK_TRUNCATED;

    MDB_txn *txn;
    if ((rc = store_rc(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))) < 0)
        return check_of_rc(rc);
    volatile unsigned char sum = 0;
    MDB_dbi main_dbi;
    rc = store_rc(mdb_dbi_open(txn, NULL, 0, &main_dbi));
    if (rc == 0)
        rc = walk_db(txn, main_dbi, &sum);
    /* The main database's keys name the others. */
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = store_rc(mdb_cursor_open(txn, main_dbi, &cursor));
    MDB_val key, value;
    MDB_cursor_op op = MDB_FIRST;
    while (rc == 0 && (rc = store_rc(mdb_cursor_get(cursor, &key, &value, op))) == 0) {
        op = MDB_NEXT;
        char name[512];
        if (key.mv_size == 0 || key.mv_size >= sizeof(name) || memchr(key.mv_data, 0, key.mv_size))
            continue; /* not a database name */
        memcpy(name, key.mv_data, key.mv_size);
        name[key.mv_size] = '\0';
        MDB_dbi dbi;
        int opened = store_rc(mdb_dbi_open(txn, name, 0, &dbi));
        if (opened == MDB_INCOMPATIBLE)
            continue; /* a plain record of the main database */
        rc = opened < 0 ? opened : walk_db(txn, dbi, &sum);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (cursor)
        mdb_cursor_close(cursor);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc < 0 ? check_of_rc(rc) : CHECK_SOUND;
}

/* A data file that is there is checked in a child process: a page LMDB
 * reads past the end of the file or through a broken pointer faults the
 * child, not the worker. */
static int check_data_file(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    struct stat st;
    if (stat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (st.st_size == 0)
        return 0; /* created, never written: LMDB starts it */
    fflush(NULL);
    pid_t child = fork();
    if (child < 0)
        return -errno;
    if (child == 0)
        _exit(check_file(dir, st.st_size));
    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    if (WIFSIGNALED(status))
        return STORE_CORRUPTED;
    switch (WEXITSTATUS(status)) {
    case CHECK_SOUND:
        return 0;
    case CHECK_TRUNCATED:
        return STORE_TRUNCATED;
    case CHECK_CORRUPTED:
        return STORE_CORRUPTED;
    case CHECK_VERSION:
        return MDB_VERSION_MISMATCH;
    default:
        return 0; /* the check could not run; LMDB's own open decides */
    }
}

/* ---- open and close ------------------------------------------------------ */

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
    if (rc == 0)
        rc = check_data_file(dir);
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
    if (rc == MDB_INVALID || rc == MDB_CORRUPTED)
        rc = STORE_CORRUPTED;
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

static int64_t realtime_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int count_outcome(store_t *self, int rc)
{
    store_health_t *health = &self->health;
    int64_t now = realtime_ms();
    if (rc >= 0) {
        health->last_success_ms = now;
        health->committed_since = true;
        return rc;
    }
    health->committed_since = false;
    health->failed_writes++;
    if (health->episode_failures++ == 0)
        health->failing_since_ms = now;
    health->last_error = rc;
    health->last_failure_ms = now;
    return rc;
}

bool store_episode_close(store_t *self, int64_t now_ms, store_health_t *ended)
{
    store_health_t *health = &self->health;
    /* Within one millisecond the times cannot tell the order: the flag can. */
    if (health->episode_failures == 0 || !health->committed_since ||
        now_ms - health->last_failure_ms < STORE_EPISODE_QUIET_MS)
        return false;
    if (ended)
        *ended = *health;
    health->episode_failures = 0;
    health->failing_since_ms = 0;
    return true;
}

/* counted: the commit counts in store_commits() (batches do; opening the
 * databases does not). */
static int write_once(store_t *self, store_write_fn fn, void *ctx, bool counted)
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
            if (rc == 0 && counted)
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

int store_write(store_t *self, store_write_fn fn, void *ctx)
{
    return count_outcome(self, write_once(self, fn, ctx, true));
}

typedef struct open_dbs {
    const store_db_t *dbs;
    size_t count;
} open_dbs_t;

static int open_dbs(MDB_txn *txn, void *ctx)
{
    open_dbs_t *open = ctx;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < open->count; i++)
        rc = store_rc(mdb_dbi_open(txn, open->dbs[i].name, open->dbs[i].flags | MDB_CREATE,
                                   open->dbs[i].dbi));
    return rc;
}

/* A batch like any other: a map too small for the new databases grows. */
int store_dbis(store_t *self, const store_db_t *dbs, size_t count)
{
    open_dbs_t open = {dbs, count};
    return count_outcome(self, write_once(self, open_dbs, &open, false));
}

int store_dbi(store_t *self, const char *name, unsigned flags, MDB_dbi *ret)
{
    return store_dbis(self, &(store_db_t){name, ret, flags}, 1);
}

void store_health(const store_t *self, store_health_t *ret)
{
    *ret = self->health;
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
    if (rc == STORE_TRUNCATED)
        return "the data file (data.mdb) is truncated: it is shorter than the pages its meta page "
               "names; restore the state dir from a copy, or move it away to start empty";
    if (rc == STORE_CORRUPTED)
        return "the data file (data.mdb) is corrupted: LMDB cannot read all of its pages; "
               "restore the state dir from a copy, or move it away to start empty";
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

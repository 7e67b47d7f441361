/* store: one worker instance's LMDB environment.
 *
 * Guarantees
 *  - A write batch (store_write) is all or nothing: the callback runs inside
 *    one write transaction and either everything it wrote commits or nothing
 *    does.
 *  - MDB_MAP_FULL never loses a write and never crashes: the transaction is
 *    aborted, the map grown (doubled, up to max_map_size) and the callback
 *    run again from the start. A callback must therefore be restartable:
 *    everything it changes goes through the transaction, or is reset when it
 *    starts.
 *  - Durable by default: every commit is fsynced (one fsync per batch).
 *    STORE_NO_SYNC trades that for speed and must be asked for explicitly.
 *  - Reader slots left by dead processes are cleared at open
 *    (mdb_reader_check).
 *  - Any map size starts: opening the databases grows the map as a batch
 *    does (a 16 KiB map_size is doubled until they fit).
 *  - A data file that cannot be the one LMDB wrote is refused at open, never
 *    read into a crash: STORE_TRUNCATED when it is shorter than the pages
 *    its meta page names, STORE_CORRUPTED when LMDB refuses its meta pages or
 *    a walk of every page of every database (in a child process, so that a
 *    fault there ends only the child) fails. The walk reads the whole file
 *    once per open.
 *  - Every write batch that does not commit is counted, with its cause; the
 *    failures close together form one episode (store_health()), so the
 *    worker can say once that commits fail and once that they work again.
 *
 * Between calls no transaction is open. One process, one thread writes.
 *
 * Errors: 0, or a negative code. LMDB's own codes (MDB_KEYEXIST ...
 * MDB_LAST_ERRCODE) are negative already and pass through; system errors are
 * returned as -errno. store_strerror() names either kind.
 */
#ifndef DISPATCH_STORE_H
#define DISPATCH_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

typedef struct store_options {
    uint64_t map_size;     /* initial map size; 0 = 64 MiB */
    uint64_t max_map_size; /* growth stops here; 0 = 1 TiB */
    unsigned max_dbs;      /* named databases; 0 = 64 */
    int no_sync;           /* 1 = MDB_NOSYNC: commits are not fsynced */
} store_options_t;

/* Refusals of a data file at open (outside LMDB's codes; store_strerror()
 * names them). */
#define STORE_TRUNCATED (-31001)
#define STORE_CORRUPTED (-31002)

/* Opens (creating if needed) the environment in directory dir. */
int store_open(const char *dir, const store_options_t *options, store_t **ret);

/* One process per state: takes the lock of directory dir (creating both),
 * a flock(2) on dir/worker.lock that holds until *fd is closed or the
 * process ends, whatever way it ends. The file holds the holder's pid.
 * -EWOULDBLOCK when another process holds it (*holder: its pid, 0 when
 * unknown), or another negative errno. */
int store_lock(const char *dir, int *fd, long *holder);
void store_destroy(store_t **self);

/* Opens or creates the named database; call at start, before any batch. */
int store_dbi(store_t *self, const char *name, unsigned flags, MDB_dbi *ret);

/* One named database of a module: its name, flags, where its handle goes. */
typedef struct store_db {
    const char *name;
    MDB_dbi *dbi;
    unsigned flags;
} store_db_t;

/* Opens or creates count databases in one transaction (one commit). */
int store_dbis(store_t *self, const store_db_t *dbs, size_t count);

/* A write batch. fn gets the open write transaction and returns 0 to commit
 * or a negative code to abort; MDB_MAP_FULL from fn or from the commit grows
 * the map and runs fn again. Returns fn's error, the commit's, or 0. */
typedef int (*store_write_fn)(MDB_txn *txn, void *ctx);
int store_write(store_t *self, store_write_fn fn, void *ctx);

/* A read-only transaction; end it with store_read_end() before the loop
 * iteration ends. */
int store_read_begin(store_t *self, MDB_txn **ret);
void store_read_end(MDB_txn **txn);

MDB_env *store_env(store_t *self);
uint64_t store_map_size(const store_t *self);
/* Commits that reached the disk (counted for benchmarks and tests). */
uint64_t store_commits(const store_t *self);

/* Write batches that failed, and the current episode of failures. An
 * episode opens at a failure and stays open while batches fail now and then:
 * it closes (store_episode_close()) once a batch committed after the last
 * failure and STORE_EPISODE_QUIET_MS passed without another. A disk that
 * frees a page now and then (a full one does) is one episode, not one per
 * commit that slipped through. */
#define STORE_EPISODE_QUIET_MS 2000

typedef struct store_health {
    uint64_t failed_writes;    /* since open */
    uint64_t episode_failures; /* in the open episode; 0 = none is open */
    int last_error;            /* the latest failure's code; 0 = none yet */
    int64_t failing_since_ms;  /* CLOCK_REALTIME ms of the open episode's first failure */
    int64_t last_failure_ms;   /* of the latest failure; 0 = none */
    int64_t last_success_ms;   /* of the latest commit; 0 = none */
    bool committed_since;      /* a commit came after the latest failure */
} store_health_t;
void store_health(const store_t *self, store_health_t *ret);
/* Closes the open episode when it is over (see above) at CLOCK_REALTIME
 * now_ms: true, and *ended (may be NULL) gets the health as it was before
 * the close; false when none is open or it goes on. */
bool store_episode_close(store_t *self, int64_t now_ms, store_health_t *ended);
/* Reader slots of dead processes cleared when the store was opened. */
int store_stale_readers(const store_t *self);
const char *store_strerror(int rc);

/* An LMDB return code in the store's convention (0 or negative). */
static inline int store_rc(int mdb_rc)
{
    return mdb_rc > 0 ? -mdb_rc : mdb_rc;
}

/* Keys that sort numerically: 64-bit big-endian. */
static inline void store_u64_encode(uint64_t value, unsigned char out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
}

static inline uint64_t store_u64_decode(const void *in)
{
    const unsigned char *bytes = in;
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | bytes[i];
    return value;
}

/* Reads a u64 value stored under key; *value = fallback when absent. */
int store_get_u64(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len, uint64_t fallback,
                  uint64_t *value);
int store_put_u64(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len, uint64_t value);

#endif

/* trail: the hash-chained, append-only event log of the audit. The audit
 * worker appends to it; `dispatchctl audit verify` checks it on the store,
 * read-only, beside the running worker or after it stopped.
 *
 * Record n (seq n, gapless from 1) is stored under its seq (big-endian u64)
 * in audit.log as a LogEntry (common/trail.proto):
 *
 *   hash(n) = SHA-256( prev_hash(n) || seq (8 bytes BE) || recorded_at (8 bytes BE)
 *                      || event bytes )
 *   prev_hash(n) = hash(n - 1); prev_hash(1) = 32 zero bytes
 *
 * where the event bytes are the Event exactly as it arrived on the bus. The
 * head (audit.meta "head": seq and hash of the last record) moves in the
 * same transaction as the append.
 *
 * Invariants (of every committed state): audit.log holds exactly the seqs
 * 1..head.seq; the record under key n has seq n; its prev_hash is the hash
 * of record n - 1; its hash is the hash of its content; head.hash is the
 * hash of record head.seq. Nothing rewrites or deletes a record.
 *
 * trail_verify() checks all of that and names the first record that breaks
 * it: an edited record (its hash no longer matches, or it no longer
 * decodes), a deleted one (a seq missing, or the head beyond the last
 * record), a moved one (the record under key n holds another seq, or its
 * prev_hash does not match).
 *
 * Errors: 0 or negative (store.h conventions); -EBADMSG for a record that
 * does not decode where one is needed to go on.
 */
#ifndef DISPATCH_TRAIL_H
#define DISPATCH_TRAIL_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "trail.pb-c.h"

#define TRAIL_HASH_SIZE 32

typedef struct trail trail_t;

typedef struct trail_head {
    uint64_t seq; /* 0 = empty log */
    unsigned char hash[TRAIL_HASH_SIZE];
} trail_head_t;

/* Opens (creating) the databases in store, for the worker. */
int trail_new(store_t *store, trail_t **ret);
/* Opens the existing databases in txn, for a read-only environment (the
 * CLI). -ENOENT when they are not there (not an audit store). */
int trail_attach(MDB_txn *txn, trail_t **ret);
void trail_destroy(trail_t **self);

/* The hash of one record, as above. */
void trail_hash(const unsigned char prev_hash[TRAIL_HASH_SIZE], uint64_t seq, int64_t recorded_at,
                const void *event, size_t len, unsigned char out[TRAIL_HASH_SIZE]);

int trail_head(trail_t *self, MDB_txn *txn, trail_head_t *head);

/* Appends the event bytes as the next record; *seq (may be NULL) gets its
 * seq. */
int trail_append(trail_t *self, MDB_txn *txn, const void *event, size_t len, int64_t recorded_at,
                 uint64_t *seq);

/* Record seq, unpacked (free with trail_entry_free). -ENOENT when absent,
 * -EBADMSG when it does not decode. */
int trail_get(trail_t *self, MDB_txn *txn, uint64_t seq, Dispatch__Audit__LogEntry **ret);
void trail_entry_free(Dispatch__Audit__LogEntry *entry);

typedef struct trail_verdict {
    uint64_t from_seq;                   /* first seq checked */
    uint64_t checked;                    /* records found sound */
    uint64_t last_seq;                   /* the head's seq */
    uint64_t broken_seq;                 /* first broken record; 0 = none */
    unsigned char hash[TRAIL_HASH_SIZE]; /* hash of the last sound record */
    char problem[256];
} trail_verdict_t;

/* Checks records from_seq (0 = 1) on, at most limit of them (0 = all), in
 * txn. Returns 0 with the verdict (broken or not), or a storage error. */
int trail_verify(trail_t *self, MDB_txn *txn, uint64_t from_seq, uint64_t limit,
                 trail_verdict_t *verdict);

/* The same on the audit store in directory dir, opened read-only
 * (MDB_RDONLY) beside a running worker. -ENOENT: no audit store there. */
int trail_verify_dir(const char *dir, uint64_t from_seq, uint64_t limit, trail_verdict_t *verdict);

#endif

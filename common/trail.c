/* trail: see trail.h for the record layout, the hash and the invariants.
 *
 * Appends are O(log n) puts with MDB_APPEND (keys only grow). A verify walks
 * a cursor over audit.log, so a missing key is seen as a jump in seqs.
 */
#include "trail.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

#define HEAD_KEY "head"

struct trail {
    MDB_dbi log, meta;
};

static const unsigned char zero_hash[TRAIL_HASH_SIZE];

static int trail_alloc(trail_t **ret)
{
    if (sodium_init() < 0)
        return -EIO;
    *ret = calloc(1, sizeof(**ret));
    return *ret ? 0 : -ENOMEM;
}

int trail_new(store_t *store, trail_t **ret)
{
    trail_t *self;
    int rc = trail_alloc(&self);
    if (rc < 0)
        return rc;
    const store_db_t dbs[] = {
        {"audit.log", &self->log, 0},
        {"audit.meta", &self->meta, 0},
    };
    rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc < 0) {
        trail_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

int trail_attach(MDB_txn *txn, trail_t **ret)
{
    trail_t *self;
    int rc = trail_alloc(&self);
    if (rc < 0)
        return rc;
    rc = mdb_dbi_open(txn, "audit.log", 0, &self->log);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "audit.meta", 0, &self->meta);
    if (rc != 0) {
        trail_destroy(&self);
        return rc == MDB_NOTFOUND ? -ENOENT : store_rc(rc);
    }
    *ret = self;
    return 0;
}

void trail_destroy(trail_t **self)
{
    free(*self);
    *self = NULL;
}

void trail_hash(const unsigned char prev_hash[TRAIL_HASH_SIZE], uint64_t seq, int64_t recorded_at,
                const void *event, size_t len, unsigned char out[TRAIL_HASH_SIZE])
{
    unsigned char seq_bytes[8], at_bytes[8];
    store_u64_encode(seq, seq_bytes);
    store_u64_encode((uint64_t)recorded_at, at_bytes);
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init(&state);
    crypto_hash_sha256_update(&state, prev_hash, TRAIL_HASH_SIZE);
    crypto_hash_sha256_update(&state, seq_bytes, sizeof(seq_bytes));
    crypto_hash_sha256_update(&state, at_bytes, sizeof(at_bytes));
    crypto_hash_sha256_update(&state, event, len);
    crypto_hash_sha256_final(&state, out);
}

int trail_head(trail_t *self, MDB_txn *txn, trail_head_t *head)
{
    *head = (trail_head_t){0};
    Dispatch__Audit__Head *stored;
    int rc = record_get(txn, self->meta, HEAD_KEY, sizeof(HEAD_KEY) - 1,
                        &dispatch__audit__head__descriptor, (ProtobufCMessage **)&stored);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc == -EPROTO ? -EBADMSG : rc;
    bool sound = stored->hash.len == TRAIL_HASH_SIZE;
    if (sound) {
        head->seq = stored->seq;
        memcpy(head->hash, stored->hash.data, TRAIL_HASH_SIZE);
    }
    dispatch__audit__head__free_unpacked(stored, NULL);
    return sound ? 0 : -EBADMSG;
}

static int head_store(trail_t *self, MDB_txn *txn, uint64_t seq,
                      const unsigned char hash[TRAIL_HASH_SIZE])
{
    Dispatch__Audit__Head head = DISPATCH__AUDIT__HEAD__INIT;
    head.seq = seq;
    head.hash = (ProtobufCBinaryData){TRAIL_HASH_SIZE, (uint8_t *)hash};
    return record_put(txn, self->meta, HEAD_KEY, sizeof(HEAD_KEY) - 1, &head.base, 0);
}

int trail_append(trail_t *self, MDB_txn *txn, const void *event, size_t len, int64_t recorded_at,
                 uint64_t *seq)
{
    trail_head_t head;
    int rc = trail_head(self, txn, &head);
    if (rc < 0)
        return rc;
    uint64_t next = head.seq + 1;
    unsigned char hash[TRAIL_HASH_SIZE];
    trail_hash(head.hash, next, recorded_at, event, len, hash);

    Dispatch__Audit__LogEntry entry = DISPATCH__AUDIT__LOG_ENTRY__INIT;
    entry.seq = next;
    entry.prev_hash = (ProtobufCBinaryData){TRAIL_HASH_SIZE, head.hash};
    entry.hash = (ProtobufCBinaryData){TRAIL_HASH_SIZE, hash};
    entry.event = (ProtobufCBinaryData){len, (uint8_t *)event};
    entry.recorded_at = recorded_at;
    unsigned char key_bytes[8];
    store_u64_encode(next, key_bytes);
    MDB_val key = {sizeof(key_bytes), key_bytes};
    MDB_val value = {dispatch__audit__log_entry__get_packed_size(&entry), NULL};
    rc = mdb_put(txn, self->log, &key, &value, MDB_RESERVE | MDB_APPEND);
    if (rc != 0)
        return store_rc(rc);
    dispatch__audit__log_entry__pack(&entry, value.mv_data);
    rc = head_store(self, txn, next, hash);
    if (rc == 0 && seq)
        *seq = next;
    return rc;
}

int trail_get(trail_t *self, MDB_txn *txn, uint64_t seq, Dispatch__Audit__LogEntry **ret)
{
    *ret = NULL;
    unsigned char key_bytes[8];
    store_u64_encode(seq, key_bytes);
    MDB_val key = {sizeof(key_bytes), key_bytes}, value;
    int rc = mdb_get(txn, self->log, &key, &value);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc != 0)
        return store_rc(rc);
    *ret = dispatch__audit__log_entry__unpack(NULL, value.mv_size, value.mv_data);
    return *ret ? 0 : -EBADMSG;
}

void trail_entry_free(Dispatch__Audit__LogEntry *entry)
{
    if (entry)
        dispatch__audit__log_entry__free_unpacked(entry, NULL);
}

/* ---- verify -------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void broken(trail_verdict_t *verdict, uint64_t seq,
                                                         const char *format, ...)
{
    verdict->broken_seq = seq;
    va_list args;
    va_start(args, format);
    vsnprintf(verdict->problem, sizeof(verdict->problem), format, args);
    va_end(args);
}

/* Checks one stored record against the chain so far (verdict->hash is the
 * hash of record seq - 1). Returns true when it is sound. */
static bool check_record(uint64_t seq, const MDB_val *value, trail_verdict_t *verdict)
{
    Dispatch__Audit__LogEntry *entry =
        dispatch__audit__log_entry__unpack(NULL, value->mv_size, value->mv_data);
    if (!entry) {
        broken(verdict, seq, "the record does not decode (edited)");
        return false;
    }
    bool sound = false;
    unsigned char hash[TRAIL_HASH_SIZE];
    if (entry->seq != seq) {
        broken(verdict, seq, "the record stored here is the one of seq %llu (moved)",
               (unsigned long long)(entry->seq));
    } else if (entry->prev_hash.len != TRAIL_HASH_SIZE ||
               memcmp(entry->prev_hash.data, verdict->hash, TRAIL_HASH_SIZE) != 0) {
        broken(verdict, seq, "prev_hash is not the hash of record %llu (edited or moved)",
               (unsigned long long)(seq - 1));
    } else {
        trail_hash(entry->prev_hash.data, seq, entry->recorded_at, entry->event.data,
                   entry->event.len, hash);
        if (entry->hash.len != TRAIL_HASH_SIZE ||
            memcmp(entry->hash.data, hash, TRAIL_HASH_SIZE) != 0)
            broken(verdict, seq, "the hash does not match the record's content (edited)");
        else
            sound = true;
    }
    if (sound)
        memcpy(verdict->hash, hash, TRAIL_HASH_SIZE);
    dispatch__audit__log_entry__free_unpacked(entry, NULL);
    return sound;
}

/* The hash record seq claims for itself: the chain before from_seq is
 * taken as checked. */
static int chain_start(trail_t *self, MDB_txn *txn, uint64_t from_seq, trail_verdict_t *verdict)
{
    if (from_seq == 1) {
        memcpy(verdict->hash, zero_hash, TRAIL_HASH_SIZE);
        return 0;
    }
    Dispatch__Audit__LogEntry *entry;
    int rc = trail_get(self, txn, from_seq - 1, &entry);
    if (rc == -ENOENT || rc == -EBADMSG || (rc == 0 && entry->hash.len != TRAIL_HASH_SIZE)) {
        broken(verdict, from_seq - 1, "record %llu is missing or does not decode",
               (unsigned long long)(from_seq - 1));
        trail_entry_free(entry);
        return 1;
    }
    if (rc < 0)
        return rc;
    memcpy(verdict->hash, entry->hash.data, TRAIL_HASH_SIZE);
    trail_entry_free(entry);
    return 0;
}

int trail_verify(trail_t *self, MDB_txn *txn, uint64_t from_seq, uint64_t limit,
                 trail_verdict_t *verdict)
{
    *verdict = (trail_verdict_t){.from_seq = from_seq ? from_seq : 1};
    from_seq = verdict->from_seq;
    trail_head_t head;
    int rc = trail_head(self, txn, &head);
    if (rc == -EBADMSG) {
        broken(verdict, from_seq, "the head record does not decode");
        return 0;
    }
    if (rc < 0)
        return rc;
    verdict->last_seq = head.seq;
    rc = chain_start(self, txn, from_seq, verdict);
    if (rc != 0)
        return rc < 0 ? rc : 0;

    MDB_cursor *cursor;
    rc = mdb_cursor_open(txn, self->log, &cursor);
    if (rc != 0)
        return store_rc(rc);
    unsigned char key_bytes[8];
    store_u64_encode(from_seq, key_bytes);
    MDB_val key = {sizeof(key_bytes), key_bytes}, value;
    uint64_t expected = from_seq;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && (limit == 0 || verdict->checked < limit)) {
        uint64_t seq = key.mv_size == 8 ? store_u64_decode(key.mv_data) : 0;
        if (seq != expected) {
            broken(verdict, expected, "record %llu is missing (deleted)",
                   (unsigned long long)(expected));
            break;
        }
        if (!check_record(seq, &value, verdict))
            break;
        verdict->checked++;
        expected++;
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_rc(rc);
    if (verdict->broken_seq || (limit && verdict->checked == limit))
        return 0;
    /* The walk reached the end of the log: it must end at the head. */
    uint64_t last = expected - 1;
    if (head.seq > last)
        broken(verdict, expected, "record %llu is missing (deleted): the head is further on",
               (unsigned long long)(expected));
    else if (head.seq < last)
        broken(verdict, head.seq + 1, "record %llu lies beyond the head",
               (unsigned long long)(head.seq + 1));
    else if (last >= from_seq && memcmp(head.hash, verdict->hash, TRAIL_HASH_SIZE) != 0)
        broken(verdict, last, "the head's hash is not the hash of record %llu",
               (unsigned long long)(last));
    return 0;
}

int trail_verify_dir(const char *dir, uint64_t from_seq, uint64_t limit, trail_verdict_t *verdict)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    trail_t *trail = NULL;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 64);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_RDONLY, 0);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    rc = rc == ENOENT ? -ENOENT : store_rc(rc);
    if (rc == 0)
        rc = trail_attach(txn, &trail);
    if (rc == 0)
        rc = trail_verify(trail, txn, from_seq, limit, verdict);
    trail_destroy(&trail);
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return rc;
}

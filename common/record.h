/* record: protobuf records in LMDB, and safe edits of unpacked messages.
 *
 * record_get() unpacks a stored message (owned by the caller: free with
 * protobuf_c_message_free_unpacked(msg, NULL)); record_put() packs one.
 *
 * Unpacked messages use the default allocator, so a string field may be
 * replaced by a malloc'ed copy (record_string_set) and a repeated string
 * field by a malloc'ed array of malloc'ed copies (record_strings_*), and
 * protobuf_c_message_free_unpacked() still frees exactly what it should.
 * The empty string is stored as protobuf_c_empty_string, which is never
 * freed. Use these only on messages that came from record_get() or
 * record_clone(), never on messages built on the stack.
 */
#ifndef DISPATCH_RECORD_H
#define DISPATCH_RECORD_H

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* Stored records are never larger than this. */
#define RECORD_MAX_SIZE (1024 * 1024)

/* 0, -ENOENT when absent, -EPROTO when the stored bytes do not decode. */
int record_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len,
               const ProtobufCMessageDescriptor *descriptor, ProtobufCMessage **ret);
int record_put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len,
               const ProtobufCMessage *msg, unsigned flags);
/* 0, or -ENOENT when absent. */
int record_delete(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t key_len);

/* A deep copy (pack and unpack); NULL when out of memory. */
ProtobufCMessage *record_clone(const ProtobufCMessage *msg);

int record_string_set(char **field, const char *value);
bool record_strings_contain(char *const *items, size_t count, const char *value);
int record_strings_append(char ***items, size_t *count, const char *value);
/* Removes every entry equal to value. */
void record_strings_remove(char **items, size_t *count, const char *value);
int record_strings_set(char ***items, size_t *count, char *const *values, size_t value_count);
void record_strings_clear(char ***items, size_t *count);

/* Key "a NUL b" (and "a NUL b NUL c" with c); returns its length, 0 when
 * it does not fit in len bytes. */
size_t record_key2(char *key, size_t len, const char *a, const char *b);
size_t record_key3(char *key, size_t len, const char *a, const char *b, const char *c);

#endif

#include "tickets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "refusal.h"

#define INDEX_KEY_SIZE (2 * LIMIT_ID + 2)

struct tickets {
    MDB_dbi records, triage, unit_tickets;
};

int tickets_new(store_t *store, tickets_t **ret)
{
    tickets_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    int rc = store_dbi(store, "router.tickets", 0, &self->records);
    if (rc == 0)
        rc = store_dbi(store, "router.triage", 0, &self->triage);
    if (rc == 0)
        rc = store_dbi(store, "router.unit_tickets", 0, &self->unit_tickets);
    if (rc < 0) {
        free(self);
        return rc;
    }
    *ret = self;
    return 0;
}

void tickets_destroy(tickets_t **self)
{
    free(*self);
    *self = NULL;
}

int tickets_get(tickets_t *self, MDB_txn *txn, const char *id, Dispatch__Router__RouterTicket **ret)
{
    *ret = NULL;
    size_t len = strlen(id);
    if (len == 0 || len > LIMIT_ID)
        return -ENOENT;
    return record_get(txn, self->records, id, len, &dispatch__router__router_ticket__descriptor,
                      (ProtobufCMessage **)ret);
}

int tickets_put(tickets_t *self, MDB_txn *txn, const Dispatch__Router__RouterTicket *record)
{
    const char *id = record->ticket->id;
    return record_put(txn, self->records, id, strlen(id), &record->base, 0);
}

static int delete_absent_ok(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t len)
{
    int rc = record_delete(txn, dbi, key, len);
    return rc == -ENOENT ? 0 : rc;
}

int tickets_triage_put(tickets_t *self, MDB_txn *txn, const char *ticket_id, int64_t since)
{
    return store_put_u64(txn, self->triage, ticket_id, strlen(ticket_id), (uint64_t)since);
}

int tickets_triage_delete(tickets_t *self, MDB_txn *txn, const char *ticket_id)
{
    return delete_absent_ok(txn, self->triage, ticket_id, strlen(ticket_id));
}

int tickets_unit_put(tickets_t *self, MDB_txn *txn, const char *unit_id, const char *ticket_id,
                     Dispatch__HandlingRole role)
{
    char key[INDEX_KEY_SIZE];
    size_t len = record_key2(key, sizeof(key), unit_id, ticket_id);
    if (len == 0)
        return -EINVAL;
    unsigned char value = (unsigned char)role;
    MDB_val k = {len, key}, v = {1, &value};
    return store_rc(mdb_put(txn, self->unit_tickets, &k, &v, 0));
}

int tickets_unit_delete(tickets_t *self, MDB_txn *txn, const char *unit_id, const char *ticket_id)
{
    char key[INDEX_KEY_SIZE];
    size_t len = record_key2(key, sizeof(key), unit_id, ticket_id);
    return len == 0 ? 0 : delete_absent_ok(txn, self->unit_tickets, key, len);
}

/* Visits keys that start with prefix (prefix_len bytes), after the key
 * prefix+after; fn gets the rest of the key. */
static int visit(MDB_txn *txn, MDB_dbi dbi, const char *prefix, size_t prefix_len,
                 const char *after, tickets_visit_fn fn, void *ctx)
{
    char start[INDEX_KEY_SIZE];
    size_t after_len = strlen(after);
    if (prefix_len + after_len > sizeof(start))
        return -EINVAL;
    memcpy(start, prefix, prefix_len);
    memcpy(start + prefix_len, after, after_len);
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, dbi, &cursor));
    if (rc < 0)
        return rc;
    MDB_val k = {prefix_len + after_len, start}, v;
    /* LMDB refuses an empty key: from the very start is MDB_FIRST. */
    rc = k.mv_size ? mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE)
                   : mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    /* Paging continues strictly after `after`. */
    if (rc == 0 && after_len && k.mv_size == prefix_len + after_len &&
        memcmp(k.mv_data, start, k.mv_size) == 0)
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    int stop = 0;
    while (rc == 0) {
        if (k.mv_size < prefix_len || memcmp(k.mv_data, prefix, prefix_len) != 0 ||
            k.mv_size - prefix_len > LIMIT_ID)
            break;
        char id[LIMIT_ID + 1];
        memcpy(id, (const char *)k.mv_data + prefix_len, k.mv_size - prefix_len);
        id[k.mv_size - prefix_len] = '\0';
        Dispatch__HandlingRole role = DISPATCH__HANDLING_ROLE__HANDLING_ROLE_UNSPECIFIED;
        if (v.mv_size == 1)
            role = (Dispatch__HandlingRole) * (const unsigned char *)v.mv_data;
        stop = fn(id, role, ctx);
        if (stop != 0)
            break;
        rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (stop != 0)
        return stop < 0 ? stop : 0;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

int tickets_triage_each(tickets_t *self, MDB_txn *txn, const char *after, tickets_visit_fn fn,
                        void *ctx)
{
    return visit(txn, self->triage, "", 0, after, fn, ctx);
}

int tickets_unit_each(tickets_t *self, MDB_txn *txn, const char *unit_id, const char *after,
                      tickets_visit_fn fn, void *ctx)
{
    char prefix[LIMIT_ID + 2];
    size_t len = strlen(unit_id);
    if (len == 0 || len > LIMIT_ID)
        return 0;
    memcpy(prefix, unit_id, len);
    prefix[len] = '\0';
    return visit(txn, self->unit_tickets, prefix, len + 1, after, fn, ctx);
}

static int found(const char *ticket_id, Dispatch__HandlingRole role, void *ctx)
{
    (void)ticket_id;
    (void)role;
    *(bool *)ctx = true;
    return 1;
}

int tickets_unit_has_open(tickets_t *self, MDB_txn *txn, const char *unit_id, bool *ret)
{
    *ret = false;
    int rc = tickets_unit_each(self, txn, unit_id, "", found, ret);
    return rc < 0 ? rc : 0;
}

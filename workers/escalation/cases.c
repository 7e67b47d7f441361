/* cases: see cases.h. */
#include "cases.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "record.h"
#include "words.h"

#define ID_MAX 64

struct cases {
    MDB_dbi records, queues;
    loop_touched_t *touched; /* ticket ids written, for cases_check() */
};

int cases_new(store_t *store, cases_t **ret)
{
    cases_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    const store_db_t dbs[] = {
        {"escalation.cases", &self->records, 0},
        {"escalation.queues", &self->queues, 0},
    };
    int rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc == 0)
        rc = loop_touched_new(&self->touched);
    if (rc < 0)
        cases_destroy(&self);
    *ret = self;
    return rc;
}

void cases_destroy(cases_t **self)
{
    if (*self)
        loop_touched_destroy(&(*self)->touched);
    free(*self);
    *self = NULL;
}

static int check_id(const char *ticket_id)
{
    size_t len = strlen(ticket_id);
    return len == 0 || len > ID_MAX ? -EINVAL : 0;
}

/* Sub-messages every stored case has; a record written by an older
 * version may lack them. */
static int ensure_tracks(Dispatch__Escalation__Case *record)
{
    Dispatch__Escalation__Track **tracks[2] = {&record->sign_for, &record->handle};
    for (int i = 0; i < 2; i++) {
        if (*tracks[i])
            continue;
        *tracks[i] = malloc(sizeof(**tracks[i]));
        if (!*tracks[i])
            return -ENOMEM;
        dispatch__escalation__track__init(*tracks[i]);
    }
    return 0;
}

int cases_get(cases_t *self, MDB_txn *txn, const char *ticket_id, Dispatch__Escalation__Case **ret)
{
    *ret = NULL;
    if (check_id(ticket_id) < 0)
        return -ENOENT;
    ProtobufCMessage *msg;
    int rc = record_get(txn, self->records, ticket_id, strlen(ticket_id),
                        &dispatch__escalation__case__descriptor, &msg);
    if (rc < 0)
        return rc;
    Dispatch__Escalation__Case *record = (Dispatch__Escalation__Case *)msg;
    rc = ensure_tracks(record);
    if (rc < 0) {
        dispatch__escalation__case__free_unpacked(record, NULL);
        return rc;
    }
    *ret = record;
    return 0;
}

int cases_put(cases_t *self, MDB_txn *txn, const Dispatch__Escalation__Case *record)
{
    if (check_id(record->ticket_id) < 0)
        return -EINVAL;
    loop_touched_add(self->touched, record->ticket_id, strlen(record->ticket_id));
    return record_put(txn, self->records, record->ticket_id, strlen(record->ticket_id),
                      &record->base, 0);
}

int cases_new_case(const char *ticket_id, const Dispatch__Escalation__Rule *rule,
                   Dispatch__Escalation__Case **ret)
{
    Dispatch__Escalation__Track sign_for = DISPATCH__ESCALATION__TRACK__INIT;
    Dispatch__Escalation__Track handle = DISPATCH__ESCALATION__TRACK__INIT;
    Dispatch__Escalation__Case fresh = DISPATCH__ESCALATION__CASE__INIT;
    fresh.ticket_id = (char *)ticket_id;
    fresh.rule = (Dispatch__Escalation__Rule *)rule;
    fresh.sign_for = &sign_for;
    fresh.handle = &handle;
    *ret = (Dispatch__Escalation__Case *)record_clone(&fresh.base);
    if (!*ret)
        return -ENOMEM;
    int rc = ensure_tracks(*ret);
    if (rc < 0) {
        dispatch__escalation__case__free_unpacked(*ret, NULL);
        *ret = NULL;
    }
    return rc;
}

int cases_set_rule(Dispatch__Escalation__Case *record, const Dispatch__Escalation__Rule *rule)
{
    Dispatch__Escalation__Rule *copy = (Dispatch__Escalation__Rule *)record_clone(&rule->base);
    if (!copy)
        return -ENOMEM;
    if (record->rule)
        dispatch__escalation__rule__free_unpacked(record->rule, NULL);
    record->rule = copy;
    return 0;
}

int cases_set_extension(Dispatch__Escalation__Case *record,
                        const Dispatch__ExtensionRequested *request, int64_t since)
{
    if (record->extension) {
        dispatch__escalation__pending_extension__free_unpacked(record->extension, NULL);
        record->extension = NULL;
    }
    if (!request)
        return 0;
    Dispatch__Escalation__PendingExtension *pending = malloc(sizeof(*pending));
    if (!pending)
        return -ENOMEM;
    dispatch__escalation__pending_extension__init(pending);
    record->extension = pending; /* freed with the record from here on */
    pending->requested_deadline = request->requested_deadline;
    pending->extra_working_days = request->extra_working_days;
    pending->since = since;
    int rc = record_string_set(&pending->request_id, request->request_id);
    if (rc == 0)
        rc = record_string_set(&pending->unit_id, request->unit_id);
    if (rc == 0)
        rc = record_string_set(&pending->reason, request->reason);
    return rc;
}

/* ------------------------------------------------------------ queues */

static int queue_key(Dispatch__QueueKind kind, const char *ticket_id, unsigned char *key,
                     size_t *len)
{
    size_t id_len = strlen(ticket_id);
    if (id_len == 0 || id_len > ID_MAX || kind <= 0 || kind > 255)
        return -EINVAL;
    key[0] = (unsigned char)kind;
    memcpy(key + 1, ticket_id, id_len);
    *len = 1 + id_len;
    return 0;
}

int cases_queue_put(cases_t *self, MDB_txn *txn, Dispatch__QueueKind kind, const char *ticket_id,
                    int64_t since)
{
    unsigned char key[1 + ID_MAX];
    size_t len;
    int rc = queue_key(kind, ticket_id, key, &len);
    if (rc < 0)
        return rc;
    loop_touched_add(self->touched, ticket_id, strlen(ticket_id));
    return store_put_u64(txn, self->queues, key, len, (uint64_t)since);
}

int cases_queue_delete(cases_t *self, MDB_txn *txn, Dispatch__QueueKind kind, const char *ticket_id)
{
    unsigned char key[1 + ID_MAX];
    size_t len;
    int rc = queue_key(kind, ticket_id, key, &len);
    if (rc < 0)
        return rc;
    loop_touched_add(self->touched, ticket_id, strlen(ticket_id));
    MDB_val k = {len, key};
    rc = mdb_del(txn, self->queues, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

int cases_queue_each(cases_t *self, MDB_txn *txn, Dispatch__QueueKind kind, const char *after,
                     cases_visit_fn fn, void *ctx)
{
    unsigned char start[1 + ID_MAX];
    size_t start_len = 1;
    start[0] = (unsigned char)kind;
    size_t after_len = strlen(after);
    if (after_len > ID_MAX)
        return -EINVAL;
    memcpy(start + 1, after, after_len);
    start_len += after_len;

    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, self->queues, &cursor));
    if (rc < 0)
        return rc;
    MDB_val k = {start_len, start}, v;
    int op = MDB_SET_RANGE;
    rc = 0;
    for (;;) {
        int got = mdb_cursor_get(cursor, &k, &v, op);
        op = MDB_NEXT;
        if (got == MDB_NOTFOUND)
            break;
        if (got != 0) {
            rc = store_rc(got);
            break;
        }
        const unsigned char *key = k.mv_data;
        if (k.mv_size < 2 || key[0] != (unsigned char)kind)
            break;
        size_t id_len = k.mv_size - 1;
        if (id_len > ID_MAX)
            continue;
        /* SET_RANGE lands on `after` itself when it is queued: skip it. */
        if (after_len && id_len == after_len && memcmp(key + 1, after, id_len) == 0)
            continue;
        char id[ID_MAX + 1];
        memcpy(id, key + 1, id_len);
        id[id_len] = '\0';
        int64_t since = v.mv_size == 8 ? (int64_t)store_u64_decode(v.mv_data) : 0;
        rc = fn(id, since, ctx);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cursor);
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------ checks */

/* The queue entries of ticket id (case NULL: it has none), kind by kind of
 * the QueueKind descriptor. */
static int check_case(cases_t *self, MDB_txn *txn, const char *id,
                      const Dispatch__Escalation__Case *record, char *why, size_t why_len)
{
    const ProtobufCEnumDescriptor *kinds = &dispatch__queue_kind__descriptor;
    uint32_t named = 0;
    for (unsigned i = 0; i < kinds->n_values; i++)
        if (kinds->values[i].value > 0 && kinds->values[i].value < 32)
            named |= 1u << kinds->values[i].value;
    uint32_t queued = record ? record->queued : 0;
    if (queued & ~named) {
        snprintf(why, why_len, "case %s: queued 0x%x has bits that name no QueueKind", id,
                 (unsigned)queued);
        return -EPROTO;
    }
    for (unsigned i = 0; i < kinds->n_values; i++) {
        int kind = kinds->values[i].value;
        if (kind <= 0 || kind >= 32)
            continue;
        unsigned char key[1 + ID_MAX];
        size_t len;
        if (queue_key((Dispatch__QueueKind)kind, id, key, &len) < 0)
            continue;
        MDB_val k = {len, key}, v;
        int got = mdb_get(txn, self->queues, &k, &v);
        if (got != 0 && got != MDB_NOTFOUND) {
            snprintf(why, why_len, "escalation.queues: %s", store_strerror(store_rc(got)));
            return store_rc(got);
        }
        bool row = got == 0, bit = (queued & (1u << kind)) != 0;
        if (row && !bit) {
            snprintf(why, why_len, "escalation.queues holds (%s, %s) but %s",
                     words_suffix(kinds, kind), id,
                     record ? "the case's queued bit is clear" : "there is no such case");
            return -EPROTO;
        }
        if (bit && !row) {
            snprintf(why, why_len,
                     "case %s has the queued bit of %s but no entry in escalation.queues", id,
                     words_suffix(kinds, kind));
            return -EPROTO;
        }
    }
    return 0;
}

/* Loads the case of id (NULL when there is none) and checks it. */
static int check_ticket(cases_t *self, MDB_txn *txn, const char *id, char *why, size_t why_len)
{
    Dispatch__Escalation__Case *record = NULL;
    int rc = cases_get(self, txn, id, &record);
    if (rc == -ENOENT) {
        record = NULL;
        rc = 0;
    } else if (rc < 0) {
        snprintf(why, why_len, "escalation.cases: the case of %s: %s", id, store_strerror(rc));
        return rc;
    } else if (strcmp(record->ticket_id, id) != 0) {
        snprintf(why, why_len, "escalation.cases: the case under %s is that of %s", id,
                 record->ticket_id);
        rc = -EPROTO;
    }
    if (rc == 0)
        rc = check_case(self, txn, id, record, why, why_len);
    if (record)
        dispatch__escalation__case__free_unpacked(record, NULL);
    return rc;
}

int cases_check(cases_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    if (loop_touched_overflowed(self->touched)) {
        loop_touched_clear(self->touched);
        return cases_check_all(self, txn, why, why_len);
    }
    size_t cursor = 0, len;
    const void *key;
    int rc = 0;
    while (rc == 0 && loop_touched_next(self->touched, &cursor, &key, &len)) {
        char id[ID_MAX + 1];
        snprintf(id, sizeof(id), "%.*s", (int)len, (const char *)key);
        rc = check_ticket(self, txn, id, why, why_len);
    }
    loop_touched_clear(self->touched);
    return rc;
}

int cases_loop_check(void *cases, MDB_txn *txn, char *why, size_t why_len)
{
    return cases_check(cases, txn, why, why_len);
}

typedef struct scan {
    cases_t *self;
    MDB_txn *txn;
    char *why;
    size_t why_len;
} scan_t;

/* A cases_visit_fn: the queue entry's ticket, all its entries. */
static int scan_queued(const char *ticket_id, int64_t since, void *ctx)
{
    scan_t *scan = ctx;
    return check_ticket(scan->self, scan->txn, ticket_id, scan->why, scan->why_len);
}

/* Every case against its queue entries. */
static int scan_cases(scan_t *scan)
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(scan->txn, scan->self->records, &cursor));
    if (rc < 0) {
        snprintf(scan->why, scan->why_len, "escalation.cases: %s", store_strerror(rc));
        return rc;
    }
    MDB_val k, v;
    int got = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == 0 && got == 0) {
        char id[ID_MAX + 1];
        if (k.mv_size == 0 || k.mv_size > ID_MAX) {
            snprintf(scan->why, scan->why_len,
                     "escalation.cases: a key of %zu bytes names no ticket", k.mv_size);
            rc = -EPROTO;
            break;
        }
        snprintf(id, sizeof(id), "%.*s", (int)k.mv_size, (const char *)k.mv_data);
        rc = check_ticket(scan->self, scan->txn, id, scan->why, scan->why_len);
        got = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc == 0 && got != MDB_NOTFOUND) {
        rc = store_rc(got);
        snprintf(scan->why, scan->why_len, "escalation.cases: %s", store_strerror(rc));
    }
    return rc;
}

int cases_check_all(cases_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    /* Every case against its queue entries, then every queue entry against
     * its case (the entries no case names). */
    scan_t scan = {self, txn, why, why_len};
    if (why_len)
        why[0] = '\0';
    int rc = scan_cases(&scan);
    const ProtobufCEnumDescriptor *kinds = &dispatch__queue_kind__descriptor;
    for (unsigned i = 0; rc == 0 && i < kinds->n_values; i++)
        if (kinds->values[i].value > 0)
            rc = cases_queue_each(self, txn, (Dispatch__QueueKind)kinds->values[i].value, "",
                                  scan_queued, &scan);
    if (rc < 0 && why_len && !why[0]) /* the visit's own read failed */
        snprintf(why, why_len, "escalation.queues: %s", store_strerror(rc));
    return rc;
}

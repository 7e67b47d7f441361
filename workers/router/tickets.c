#include "tickets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "loop.h"
#include "record.h"
#include "refusal.h"

#define INDEX_KEY_SIZE (2 * LIMIT_ID + 2)

struct tickets {
    MDB_dbi records, triage, unit_tickets;
    /* For tickets_check(): "unit NUL ticket" per index entry written,
     * "NUL ticket" per ticket put or triage entry written. */
    loop_touched_t *touched;
};

int tickets_new(store_t *store, tickets_t **ret)
{
    tickets_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    const store_db_t dbs[] = {
        {"router.tickets", &self->records, 0},
        {"router.triage", &self->triage, 0},
        {"router.unit_tickets", &self->unit_tickets, 0},
    };
    int rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc == 0)
        rc = loop_touched_new(&self->touched);
    if (rc < 0)
        tickets_destroy(&self);
    *ret = self;
    return rc;
}

void tickets_destroy(tickets_t **self)
{
    if (*self)
        loop_touched_destroy(&(*self)->touched);
    free(*self);
    *self = NULL;
}

/* unit "" = the ticket itself. */
static void touch(tickets_t *self, const char *unit_id, const char *ticket_id)
{
    char key[INDEX_KEY_SIZE];
    size_t len = record_key2(key, sizeof(key), unit_id, ticket_id);
    if (len)
        loop_touched_add(self->touched, key, len);
}

/* The units of the record about to be replaced: a put that drops a unit
 * without deleting its entry leaves that entry stale. */
static void touch_previous_units(tickets_t *self, MDB_txn *txn, const char *id)
{
    Dispatch__Router__RouterTicket *old;
    if (loop_touched_overflowed(self->touched) || tickets_get(self, txn, id, &old) < 0)
        return;
    if (old->ticket) {
        if (*old->ticket->assigned_unit)
            touch(self, old->ticket->assigned_unit, id);
        for (size_t i = 0; i < old->ticket->n_assisting_units; i++)
            touch(self, old->ticket->assisting_units[i], id);
    }
    dispatch__router__router_ticket__free_unpacked(old, NULL);
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
    touch_previous_units(self, txn, id);
    touch(self, "", id);
    return record_put(txn, self->records, id, strlen(id), &record->base, 0);
}

int tickets_each_record(tickets_t *self, MDB_txn *txn, const char *after, tickets_record_fn fn,
                        void *ctx)
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, self->records, &cursor));
    if (rc < 0)
        return rc;
    size_t after_len = strlen(after);
    MDB_val k = {after_len, (void *)after}, v;
    int op = after_len ? MDB_SET_RANGE : MDB_FIRST, stop = 0;
    while ((rc = mdb_cursor_get(cursor, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (after_len && k.mv_size == after_len && memcmp(k.mv_data, after, after_len) == 0)
            continue; /* strictly after */
        Dispatch__Router__RouterTicket *record =
            dispatch__router__router_ticket__unpack(NULL, v.mv_size, v.mv_data);
        if (!record || !record->ticket) {
            if (record)
                dispatch__router__router_ticket__free_unpacked(record, NULL);
            continue; /* tickets_check_all() reports it */
        }
        stop = fn(record, ctx);
        dispatch__router__router_ticket__free_unpacked(record, NULL);
        if (stop != 0)
            break;
    }
    mdb_cursor_close(cursor);
    if (stop != 0)
        return stop < 0 ? stop : 0;
    return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

static int delete_absent_ok(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t len)
{
    int rc = record_delete(txn, dbi, key, len);
    return rc == -ENOENT ? 0 : rc;
}

int tickets_triage_put(tickets_t *self, MDB_txn *txn, const char *ticket_id, int64_t since)
{
    touch(self, "", ticket_id);
    return store_put_u64(txn, self->triage, ticket_id, strlen(ticket_id), (uint64_t)since);
}

int tickets_triage_delete(tickets_t *self, MDB_txn *txn, const char *ticket_id)
{
    touch(self, "", ticket_id);
    return delete_absent_ok(txn, self->triage, ticket_id, strlen(ticket_id));
}

int tickets_unit_put(tickets_t *self, MDB_txn *txn, const char *unit_id, const char *ticket_id,
                     Dispatch__HandlingRole role)
{
    char key[INDEX_KEY_SIZE];
    size_t len = record_key2(key, sizeof(key), unit_id, ticket_id);
    if (len == 0)
        return -EINVAL;
    touch(self, unit_id, ticket_id);
    unsigned char value = (unsigned char)role;
    MDB_val k = {len, key}, v = {1, &value};
    return store_rc(mdb_put(txn, self->unit_tickets, &k, &v, 0));
}

int tickets_unit_delete(tickets_t *self, MDB_txn *txn, const char *unit_id, const char *ticket_id)
{
    char key[INDEX_KEY_SIZE];
    size_t len = record_key2(key, sizeof(key), unit_id, ticket_id);
    touch(self, unit_id, ticket_id);
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

/* ------------------------------------------------------------ checks */

/* The record of id (NULL when there is none). */
static int load(tickets_t *self, MDB_txn *txn, const char *id,
                Dispatch__Router__RouterTicket **record, char *why, size_t why_len)
{
    int rc = tickets_get(self, txn, id, record);
    if (rc == -ENOENT)
        return 0;
    if (rc == -EPROTO)
        snprintf(why, why_len, "router.tickets: the record of %s does not decode", id);
    else if (rc < 0)
        snprintf(why, why_len, "router.tickets: reading %s: %s", id, store_strerror(rc));
    else if (!(*record)->ticket || strcmp((*record)->ticket->id, id) != 0) {
        snprintf(why, why_len, "router.tickets: the record under %s is not ticket %s", id, id);
        rc = -EPROTO;
    }
    return rc;
}

static int present(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t len, MDB_val *value,
                   const char *db, char *why, size_t why_len)
{
    MDB_val k = {len, (void *)key};
    int rc = mdb_get(txn, dbi, &k, value);
    if (rc == 0)
        return 1;
    if (rc == MDB_NOTFOUND)
        return 0;
    snprintf(why, why_len, "%s: %s", db, store_strerror(store_rc(rc)));
    return store_rc(rc);
}

/* The role unit must hold ticket with in its open list; UNSPECIFIED for
 * none. */
static Dispatch__HandlingRole expected_role(const Dispatch__Router__RouterTicket *record,
                                            const char *unit)
{
    if (!record || lifecycle_state_final(record->ticket->state) || !*unit)
        return DISPATCH__HANDLING_ROLE__HANDLING_ROLE_UNSPECIFIED;
    const Dispatch__Ticket *ticket = record->ticket;
    if (strcmp(ticket->assigned_unit, unit) == 0)
        return DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD;
    if (record_strings_contain(ticket->assisting_units, ticket->n_assisting_units, unit))
        return DISPATCH__HANDLING_ROLE__HANDLING_ROLE_ASSIST;
    return DISPATCH__HANDLING_ROLE__HANDLING_ROLE_UNSPECIFIED;
}

static int check_unit_entry(tickets_t *self, MDB_txn *txn,
                            const Dispatch__Router__RouterTicket *record, const char *unit,
                            const char *id, char *why, size_t why_len)
{
    char key[INDEX_KEY_SIZE];
    size_t len = record_key2(key, sizeof(key), unit, id);
    MDB_val v;
    int found =
        len ? present(txn, self->unit_tickets, key, len, &v, "router.unit_tickets", why, why_len)
            : 0;
    if (found < 0)
        return found;
    Dispatch__HandlingRole expected = expected_role(record, unit);
    bool expected_there = expected != DISPATCH__HANDLING_ROLE__HANDLING_ROLE_UNSPECIFIED;
    if (found && !expected_there) {
        snprintf(why, why_len, "unit %s's open list holds ticket %s, which %s", unit, id,
                 !record                                        ? "has no record"
                 : lifecycle_state_final(record->ticket->state) ? "is no longer open"
                                                                : "is not assigned to it");
        return -EPROTO;
    }
    if (!found && expected_there) {
        snprintf(why, why_len,
                 "ticket %s is open and assigned to unit %s, but not in its open list", id, unit);
        return -EPROTO;
    }
    if (found && (v.mv_size != 1 || *(const unsigned char *)v.mv_data != (unsigned char)expected)) {
        snprintf(why, why_len,
                 "unit %s's open list holds ticket %s with the wrong role: the unit is its %s",
                 unit, id,
                 expected == DISPATCH__HANDLING_ROLE__HANDLING_ROLE_LEAD ? "lead unit"
                                                                         : "assisting unit");
        return -EPROTO;
    }
    return 0;
}

/* The triage entry and the open-list entries of every unit of the ticket. */
static int check_ticket(tickets_t *self, MDB_txn *txn, const Dispatch__Router__RouterTicket *record,
                        const char *id, char *why, size_t why_len)
{
    MDB_val v;
    int found = present(txn, self->triage, id, strlen(id), &v, "router.triage", why, why_len);
    if (found < 0)
        return found;
    bool triage = record && record->ticket->state == DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE;
    if (found && !triage) {
        snprintf(why, why_len, "router.triage holds ticket %s, which %s", id,
                 record ? "is not in TRIAGE" : "has no record");
        return -EPROTO;
    }
    if (!found && triage) {
        snprintf(why, why_len, "ticket %s is in TRIAGE but not in router.triage", id);
        return -EPROTO;
    }
    if (!record)
        return 0;
    const Dispatch__Ticket *ticket = record->ticket;
    int rc = *ticket->assigned_unit
                 ? check_unit_entry(self, txn, record, ticket->assigned_unit, id, why, why_len)
                 : 0;
    for (size_t i = 0; rc == 0 && i < ticket->n_assisting_units; i++)
        rc = check_unit_entry(self, txn, record, ticket->assisting_units[i], id, why, why_len);
    return rc;
}

/* One touched key, "unit NUL ticket" or "NUL ticket"; record is the
 * ticket's (the caller loads it once for a run of keys of one ticket). */
static int check_key(tickets_t *self, MDB_txn *txn, const char *unit, const char *id,
                     const Dispatch__Router__RouterTicket *record, char *why, size_t why_len)
{
    return *unit ? check_unit_entry(self, txn, record, unit, id, why, why_len)
                 : check_ticket(self, txn, record, id, why, why_len);
}

/* Splits "unit NUL ticket" into its two strings. */
static bool split_key(const void *key, size_t len, char *unit, char *id)
{
    const char *nul = memchr(key, '\0', len);
    if (!nul)
        return false;
    size_t unit_len = (size_t)(nul - (const char *)key), id_len = len - unit_len - 1;
    if (unit_len > LIMIT_ID || id_len == 0 || id_len > LIMIT_ID)
        return false;
    memcpy(unit, key, unit_len);
    unit[unit_len] = '\0';
    memcpy(id, nul + 1, id_len);
    id[id_len] = '\0';
    return true;
}

int tickets_check(tickets_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    if (loop_touched_overflowed(self->touched)) {
        loop_touched_clear(self->touched);
        return tickets_check_all(self, txn, why, why_len);
    }
    Dispatch__Router__RouterTicket *record = NULL;
    char loaded[LIMIT_ID + 1] = "", unit[LIMIT_ID + 1], id[LIMIT_ID + 1];
    size_t cursor = 0, len;
    const void *key;
    int rc = 0;
    while (rc == 0 && loop_touched_next(self->touched, &cursor, &key, &len)) {
        if (!split_key(key, len, unit, id))
            continue;
        if (strcmp(loaded, id) != 0) {
            if (record)
                dispatch__router__router_ticket__free_unpacked(record, NULL);
            record = NULL;
            snprintf(loaded, sizeof(loaded), "%s", id);
            rc = load(self, txn, id, &record, why, why_len);
        }
        if (rc == 0)
            rc = check_key(self, txn, unit, id, record, why, why_len);
    }
    if (record)
        dispatch__router__router_ticket__free_unpacked(record, NULL);
    loop_touched_clear(self->touched);
    return rc;
}

int tickets_loop_check(void *tickets, MDB_txn *txn, char *why, size_t why_len)
{
    return tickets_check(tickets, txn, why, why_len);
}

typedef struct scan {
    tickets_t *self;
    MDB_txn *txn;
    char *why;
    size_t why_len;
} scan_t;

/* A tickets_visit_fn: the ticket's record against its index entries. */
static int scan_ticket(const char *ticket_id, Dispatch__HandlingRole role, void *ctx)
{
    scan_t *scan = ctx;
    Dispatch__Router__RouterTicket *record = NULL;
    int rc = load(scan->self, scan->txn, ticket_id, &record, scan->why, scan->why_len);
    if (rc == 0)
        rc = check_ticket(scan->self, scan->txn, record, ticket_id, scan->why, scan->why_len);
    if (record)
        dispatch__router__router_ticket__free_unpacked(record, NULL);
    return rc;
}

/* Every entry of router.unit_tickets against the record of its ticket. */
static int scan_unit_entries(scan_t *scan)
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(scan->txn, scan->self->unit_tickets, &cursor));
    if (rc < 0) {
        snprintf(scan->why, scan->why_len, "router.unit_tickets: %s", store_strerror(rc));
        return rc;
    }
    MDB_val k, v;
    int got = mdb_cursor_get(cursor, &k, &v, MDB_FIRST);
    while (rc == 0 && got == 0) {
        char unit[LIMIT_ID + 1], id[LIMIT_ID + 1];
        if (!split_key(k.mv_data, k.mv_size, unit, id) || !*unit) {
            snprintf(scan->why, scan->why_len,
                     "router.unit_tickets: a key of %zu bytes names no unit and ticket", k.mv_size);
            rc = -EPROTO;
            break;
        }
        Dispatch__Router__RouterTicket *record = NULL;
        rc = load(scan->self, scan->txn, id, &record, scan->why, scan->why_len);
        if (rc == 0)
            rc =
                check_unit_entry(scan->self, scan->txn, record, unit, id, scan->why, scan->why_len);
        if (record)
            dispatch__router__router_ticket__free_unpacked(record, NULL);
        got = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc == 0 && got != MDB_NOTFOUND) {
        rc = store_rc(got);
        snprintf(scan->why, scan->why_len, "router.unit_tickets: %s", store_strerror(rc));
    }
    return rc;
}

int tickets_check_all(tickets_t *self, MDB_txn *txn, char *why, size_t why_len)
{
    /* Every record against its index entries, then every index entry
     * against its record (the entries no record names). */
    scan_t scan = {self, txn, why, why_len};
    if (why_len)
        why[0] = '\0';
    int rc = visit(txn, self->records, "", 0, "", scan_ticket, &scan);
    if (rc == 0)
        rc = tickets_triage_each(self, txn, "", scan_ticket, &scan);
    if (rc == 0)
        rc = scan_unit_entries(&scan);
    if (rc < 0 && why_len && !why[0]) /* the visit's own read failed */
        snprintf(why, why_len, "reading the ticket indexes: %s", store_strerror(rc));
    return rc;
}

/* intake_duplicates: the duplicate index (intake.duplicates), see
 * intake.c for its invariant. A ticket is the master of up to two match
 * keys, its caller's phone and its normalized address, each within its
 * district and category. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "intake_internal.h"
#include "lifecycle.h"
#include "record.h"

#define DUPLICATE_KEY_SIZE 512

static const char *const match_reasons[INTAKE_MATCH_KINDS] = {
    [INTAKE_MATCH_PHONE] = "same caller phone, district and category",
    [INTAKE_MATCH_ADDRESS] = "same address, district and category",
};

/* Bytes of white space at p (ASCII, or the ideographic space U+3000 common
 * in Chinese text); 0 when p is not white space. */
static size_t space_length(const unsigned char *p)
{
    if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f')
        return 1;
    return p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80 ? 3 : 0;
}

/* Lower-cases ASCII letters, turns every run of white space into one space
 * and trims both ends. */
static void address_normalize(const char *in, char *out, size_t len)
{
    size_t n = 0;
    bool pending_space = false;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 1 < len;) {
        size_t space_len = space_length(p);
        if (space_len) {
            pending_space = n > 0;
            p += space_len;
            continue;
        }
        if (pending_space) {
            if (n + 2 >= len)
                break;
            out[n++] = ' ';
            pending_space = false;
        }
        out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        p++;
    }
    out[n] = '\0';
}

/* The duplicate-index key of a ticket for one kind of match; 0 when the
 * ticket cannot match that way (no category, phone or address). */
static size_t duplicate_key(const Dispatch__Ticket *ticket, int match,
                            unsigned char key[DUPLICATE_KEY_SIZE])
{
    char value[LIMIT_ADDRESS + 1];
    if (match == INTAKE_MATCH_PHONE)
        snprintf(value, sizeof(value), "%s", ticket->caller_phone);
    else
        address_normalize(ticket->location ? ticket->location->address : "", value, sizeof(value));
    if (ticket->category[0] == '\0' || value[0] == '\0')
        return 0;
    int len = snprintf((char *)key, DUPLICATE_KEY_SIZE, "%c%s%c%s%c%s",
                       match == INTAKE_MATCH_PHONE ? 'p' : 'a', ticket->district, 0,
                       ticket->category, 0, value);
    return len > 0 && len < DUPLICATE_KEY_SIZE ? (size_t)len : 0;
}

/* The entry of the ticket's key of one kind: *ret NULL when it does not
 * decode; -ENOENT when there is none (or the ticket has no such key). */
static int entry_get(intake_t *self, MDB_txn *txn, const Dispatch__Ticket *ticket, int kind,
                     unsigned char key[DUPLICATE_KEY_SIZE], Dispatch__Intake__DuplicateEntry **ret)
{
    *ret = NULL;
    size_t key_len = duplicate_key(ticket, kind, key);
    if (key_len == 0)
        return -ENOENT;
    int rc = record_get(txn, self->duplicates, key, key_len,
                        &dispatch__intake__duplicate_entry__descriptor, (ProtobufCMessage **)ret);
    return rc == -EPROTO ? 0 : rc;
}

/* Finds the open ticket a new ticket duplicates: *master is loaded (release
 * it) and *match says how it matched; master->loaded stays NULL when none. */
int intake_duplicate_find(intake_t *self, MDB_txn *txn, const Dispatch__Ticket *ticket,
                          int64_t now_ms, ticket_work_t *master, int *match)
{
    *master = (ticket_work_t){0};
    if (self->duplicate_window_ms == 0)
        return 0;
    for (int kind = 0; kind < INTAKE_MATCH_KINDS; kind++) {
        unsigned char key_bytes[DUPLICATE_KEY_SIZE];
        Dispatch__Intake__DuplicateEntry *entry;
        int rc = entry_get(self, txn, ticket, kind, key_bytes, &entry);
        if (rc == -ENOENT)
            continue;
        if (rc < 0)
            return rc;
        if (!entry)
            continue; /* none, or unreadable: no match; the new ticket replaces it */
        bool in_window = now_ms - entry->registered_at <= self->duplicate_window_ms;
        rc = in_window ? intake_work_load(self, txn, entry->master_id, master) : -ENOENT;
        protobuf_c_message_free_unpacked(&entry->base, NULL);
        if (rc == -ENOENT || rc == -EBADMSG)
            continue;
        if (rc < 0)
            return rc;
        if (!lifecycle_state_final(master->ticket.state)) {
            *match = kind;
            return 0;
        }
        intake_work_release(master);
    }
    return 0;
}

/* Makes the ticket the master of its match keys. */
int intake_duplicate_index(intake_t *self, MDB_txn *txn, ticket_work_t *work)
{
    Dispatch__Intake__DuplicateEntry entry = DISPATCH__INTAKE__DUPLICATE_ENTRY__INIT;
    entry.master_id = work->ticket.id;
    entry.registered_at = work->ticket.registered_at;
    unsigned char packed[LIMIT_ID + 32];
    MDB_val value = {dispatch__intake__duplicate_entry__pack(&entry, packed), packed};
    for (int kind = 0; kind < INTAKE_MATCH_KINDS; kind++) {
        unsigned char key_bytes[DUPLICATE_KEY_SIZE];
        MDB_val key = {duplicate_key(&work->ticket, kind, key_bytes), key_bytes};
        if (key.mv_size == 0)
            continue;
        int rc = store_rc(mdb_put(txn, self->duplicates, &key, &value, 0));
        if (rc < 0)
            return rc;
        work->duplicate_master = true;
    }
    return 0;
}

/* Removes the ticket's match keys that still name it. */
int intake_duplicate_unindex(intake_t *self, MDB_txn *txn, ticket_work_t *work)
{
    for (int kind = 0; kind < INTAKE_MATCH_KINDS && work->duplicate_master; kind++) {
        unsigned char key_bytes[DUPLICATE_KEY_SIZE];
        Dispatch__Intake__DuplicateEntry *entry;
        int rc = entry_get(self, txn, &work->ticket, kind, key_bytes, &entry);
        if (rc == -ENOENT)
            continue;
        if (rc < 0)
            return rc;
        MDB_val key = {duplicate_key(&work->ticket, kind, key_bytes), key_bytes};
        bool ours = !entry || strcmp(entry->master_id, work->ticket.id) == 0;
        if (entry)
            protobuf_c_message_free_unpacked(&entry->base, NULL);
        if (ours && (rc = mdb_del(txn, self->duplicates, &key, NULL)) != 0)
            return store_rc(rc);
    }
    work->duplicate_master = false;
    return 0;
}

const char *intake_match_reason(int match)
{
    return match_reasons[match];
}

/* intake: ticket registration, idempotency, duplicates, public status.
 *
 * Invariants (between batches, i.e. of every committed state):
 *  - Every ticket in intake.tickets carries this instance's prefix and has
 *    exactly the history entries 0 .. history_count - 1 in intake.history
 *    (key: id, NUL, big-endian u32 index); entry 0 is its TicketRegistered.
 *  - Every event this intake emitted about a ticket is in that ticket's
 *    history and in the outbox of each link it went to (router of the
 *    ticket's district unless the ticket was transferred; audit), written in
 *    the transaction that changed the ticket.
 *  - intake.requests maps (actor, client_request_id) to the reply of the
 *    request that first used the key; the ticket it names exists. A key is
 *    never rewritten, so a retry always gets the first outcome.
 *  - intake.counters holds, per registration day, the highest counter
 *    issued; no ticket of that day has a higher one, so ids never repeat.
 *  - intake.duplicates maps a match key (caller phone or normalized address,
 *    within district and category) to the open ticket that later submits
 *    with that key merge into. A ticket's entries are removed when it
 *    closes; an entry whose master is final or older than the window never
 *    matches and is replaced by the next ticket with that key.
 *  - A ticket in a final state (MERGED, TRANSFERRED, CLOSED) keeps it: a
 *    later event goes into its history and changes nothing else.
 *
 * Batches: the loop's apply() runs every queued request in the write
 * transaction; it is restartable because every effect goes through the
 * transaction and the replies set in an attempt are cleared when the next
 * attempt starts. done() sends the replies only after the commit, or
 * UNAVAILABLE to every request of a failed batch. When a loop iteration
 * needs no write (only reads and refusals), done() answers from a read
 * transaction.
 */
#include "intake_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "event.h"
#include "ids.h"
#include "record.h"

void intake_options_init(intake_options_t *options)
{
    *options = (intake_options_t){
        .duplicate_window_minutes = INTAKE_DEFAULT_DUPLICATE_WINDOW_MINUTES,
    };
}

/* ---- construction ---------------------------------------------------- */

int intake_new(store_t *store, bus_t *bus, const config_t *config, const char *name,
               const intake_options_t *options, intake_t **ret)
{
    const config_worker_t *self_config = config_worker_find(config, name);
    if (!self_config || strcmp(self_config->kind, "intake") != 0)
        return -EINVAL;
    intake_options_t defaults;
    intake_options_init(&defaults);
    if (!options)
        options = &defaults;
    if (options->duplicate_window_minutes < 0 ||
        options->duplicate_window_minutes > INT64_MAX / MINUTE_MS)
        return -EINVAL;
    const char *prefix = self_config->id_prefix ? self_config->id_prefix : INTAKE_DEFAULT_PREFIX;
    if (strlen(prefix) > IDS_PREFIX_MAX)
        return -EINVAL;
    /* Refuse a prefix or time zone that ids.h would refuse at every submit. */
    char probe[IDS_TICKET_SIZE];
    int rc = ids_format_ticket(probe, sizeof(probe), prefix, 0, config_timezone(config), 1);
    if (rc < 0)
        return rc == -ENOMEM ? rc : -EINVAL;

    if (sodium_init() < 0) /* lookup codes come from its random source */
        return -EIO;
    intake_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->store = store;
    self->bus = bus;
    self->config = config;
    snprintf(self->name, sizeof(self->name), "%s", name);
    snprintf(self->prefix, sizeof(self->prefix), "%s", prefix);
    self->timezone = config_timezone(config);
    self->duplicate_window_ms = options->duplicate_window_minutes * MINUTE_MS;
    rc = peers_new(config, name, bus, &self->peers);
    const store_db_t dbs[] = {
        {"intake.tickets", &self->tickets, 0},   {"intake.history", &self->history, 0},
        {"intake.requests", &self->requests, 0}, {"intake.duplicates", &self->duplicates, 0},
        {"intake.counters", &self->counters, 0}, {"intake.meta", &self->meta, 0},
    };
    if (rc == 0)
        rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc < 0) {
        intake_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void intake_destroy(intake_t **self)
{
    intake_t *intake = *self;
    if (!intake)
        return;
    endpoint_destroy(&intake->endpoint);
    peers_destroy(&intake->peers);
    intake_reply_drop(intake);
    free(intake);
    *self = NULL;
}

/* ---- records ----------------------------------------------------------- */

void intake_work_release(ticket_work_t *work)
{
    if (work->loaded)
        protobuf_c_message_free_unpacked(&work->loaded->base, NULL);
    work->loaded = NULL;
}

/* -ENOENT when the ticket is not ours; -EBADMSG when its record does not
 * decode. */
int intake_work_load(intake_t *self, MDB_txn *txn, const char *id, ticket_work_t *work)
{
    *work = (ticket_work_t){0};
    size_t id_len = strlen(id);
    if (id_len == 0 || id_len > LIMIT_ID)
        return -ENOENT;
    ProtobufCMessage *msg;
    int rc = record_get(txn, self->tickets, id, id_len,
                        &dispatch__intake__ticket_record__descriptor, &msg);
    if (rc == -ENOENT || rc < 0)
        return rc == -EPROTO ? -EBADMSG : rc;
    work->loaded = (ticket_record_t *)msg;
    if (!work->loaded->ticket) {
        intake_work_release(work);
        return -EBADMSG;
    }
    work->ticket = *work->loaded->ticket;
    work->history_count = work->loaded->history_count;
    work->duplicate_master = work->loaded->duplicate_master;
    work->lookup_code = work->loaded->lookup_code;
    return 0;
}

int intake_work_save(intake_t *self, MDB_txn *txn, ticket_work_t *work)
{
    ticket_record_t record = DISPATCH__INTAKE__TICKET_RECORD__INIT;
    record.ticket = &work->ticket;
    record.history_count = work->history_count;
    record.duplicate_master = work->duplicate_master;
    record.lookup_code = (char *)(work->lookup_code ? work->lookup_code : "");
    return record_put(txn, self->tickets, work->ticket.id, strlen(work->ticket.id), &record.base,
                      0);
}

void intake_reply_drop(intake_t *self)
{
    if (self->reply)
        protobuf_c_message_free_unpacked(&self->reply->base, NULL);
    self->reply = NULL;
}

size_t intake_history_key(const char *id, uint32_t index, unsigned char key[HISTORY_KEY_SIZE])
{
    size_t len = strlen(id);
    memcpy(key, id, len);
    key[len] = '\0';
    for (int i = 0; i < 4; i++)
        key[len + 1 + i] = (unsigned char)(index >> (24 - 8 * i));
    return len + 5;
}

int intake_history_append(intake_t *self, MDB_txn *txn, ticket_work_t *work,
                          const Dispatch__HistoryEntry *entry)
{
    unsigned char key[HISTORY_KEY_SIZE];
    size_t key_len = intake_history_key(work->ticket.id, work->history_count, key);
    int rc = record_put(txn, self->history, key, key_len, &entry->base, 0);
    if (rc == 0)
        work->history_count++;
    return rc;
}

/* Emits the event whose body is `body` (a TicketMerged, ...) about the
 * ticket in work: stamps it, appends it to the outbox of each of its
 * receivers (the lifecycle table), folds it into the ticket and records it
 * in the ticket's history. */
int intake_emit(intake_t *self, MDB_txn *txn, ticket_work_t *work, ProtobufCMessage *body,
                const char *actor, int64_t now_ms)
{
    char event_id[EVENT_ID_SIZE];
    int rc = event_next_id(txn, self->meta, self->name, self->bus, event_id);
    if (rc < 0)
        return rc;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event_set_body(&event, body);
    event.event_id = event_id;
    event.ticket_id = work->ticket.id;
    event.district = work->ticket.district;
    event.at = now_ms;
    event.actor = (char *)actor;
    event.origin = self->name;
    rc = peers_send(self->peers, txn, &event);
    if (rc == 0)
        rc = lifecycle_apply(&work->ticket, &event, now_ms, LIFECYCLE_BORROW);
    if (rc < 0)
        return rc;
    Dispatch__HistoryEntry entry;
    lifecycle_history_entry(&event, now_ms, &entry);
    return intake_history_append(self, txn, work, &entry);
}

/* ---- ticket ids -------------------------------------------------------- */

/* The next id of the registration day of now_ms ("PREFIX-YYYYMMDD-NNNNNN"),
 * its counter taken from intake.counters in txn. */
int intake_ticket_id_next(intake_t *self, MDB_txn *txn, int64_t now_ms, char id[IDS_TICKET_SIZE])
{
    char day_probe[IDS_TICKET_SIZE];
    int rc =
        ids_format_ticket(day_probe, sizeof(day_probe), self->prefix, now_ms, self->timezone, 0);
    if (rc < 0)
        return rc;
    const char *day = day_probe + strlen(self->prefix) + 1; /* YYYYMMDD */
    uint64_t last;
    rc = store_get_u64(txn, self->counters, day, 8, 0, &last);
    if (rc == 0)
        rc = store_put_u64(txn, self->counters, day, 8, last + 1);
    if (rc == 0)
        rc = ids_format_ticket(id, IDS_TICKET_SIZE, self->prefix, now_ms, self->timezone, last + 1);
    return rc;
}

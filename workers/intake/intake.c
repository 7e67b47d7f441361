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
#include "intake.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "endpoint.h"
#include "event.h"
#include "ids.h"
#include "intake_state.pb-c.h"

/* Field limits of dispatch.proto, in bytes. */
#define LIMIT_ID 64
#define LIMIT_NAME 64
#define LIMIT_PHONE 20
#define LIMIT_PHONE_MIN 3
#define LIMIT_DESCRIPTION 4000
#define LIMIT_ADDRESS 256
#define LIMIT_TEXT 2000
#define LAT_E6_MAX 90000000
#define LON_E6_MAX 180000000

#define HISTORY_KEY_SIZE (LIMIT_ID + 1 + 4)
#define REQUEST_KEY_SIZE (LIMIT_ID + 1 + LIMIT_ID)
#define DUPLICATE_KEY_SIZE 512
#define DEFAULT_ACTOR "intake"
#define MINUTE_MS 60000

/* Handlers return this (not an error) when the request was refused. */
#define REFUSED 1

typedef Dispatch__Intake__TicketRecord ticket_record_t;

struct intake {
    store_t *store;
    bus_t *bus;
    const config_t *config;
    char name[CONFIG_NAME_MAX + 1];
    char prefix[IDS_PREFIX_MAX + 1];
    const char *timezone;
    int64_t duplicate_window_ms; /* 0 = no duplicate detection */
    MDB_dbi tickets, history, requests, duplicates, counters, meta;
    bus_link_t **routers; /* by index of the district in the topology */
    size_t district_count;
    bus_link_t *audit;

    /* The worker loop's part; NULL / unused when handlers are called
     * directly. */
    endpoint_t *endpoint;
    bool batch_applied; /* apply() ran in this loop iteration */
};

/* Why a request is refused: becomes the reply's Error. */
typedef struct refusal {
    Dispatch__ErrorCode code;
    char field[128];
    char message[512];
} refusal_t;

/* A ticket being changed: the loaded record owns its strings; `ticket` is a
 * shallow copy whose fields may point at other strings (the request's, an
 * event's) until it is saved. */
typedef struct ticket_work {
    ticket_record_t *loaded;
    Dispatch__Ticket ticket;
    uint32_t history_count;
    bool duplicate_master;
} ticket_work_t;

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
    self->district_count = config_district_count(config);
    self->routers = calloc(self->district_count ? self->district_count : 1, sizeof(*self->routers));
    if (!self->routers) {
        free(self);
        return -ENOMEM;
    }
    rc = store_dbi(store, "intake.tickets", 0, &self->tickets);
    if (rc == 0)
        rc = store_dbi(store, "intake.history", 0, &self->history);
    if (rc == 0)
        rc = store_dbi(store, "intake.requests", 0, &self->requests);
    if (rc == 0)
        rc = store_dbi(store, "intake.duplicates", 0, &self->duplicates);
    if (rc == 0)
        rc = store_dbi(store, "intake.counters", 0, &self->counters);
    if (rc == 0)
        rc = store_dbi(store, "intake.meta", 0, &self->meta);
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
    free(intake->routers);
    free(intake);
    *self = NULL;
}

static int district_index(const intake_t *self, const char *district, size_t *index)
{
    for (size_t i = 0; i < self->district_count; i++) {
        if (strcmp(config_district_at(self->config, i)->id, district) == 0) {
            *index = i;
            return 0;
        }
    }
    return -ENOENT;
}

int intake_set_router_link(intake_t *self, const char *district, bus_link_t *link)
{
    size_t index;
    int rc = district_index(self, district, &index);
    if (rc == 0)
        self->routers[index] = link;
    return rc;
}

void intake_set_audit_link(intake_t *self, bus_link_t *link)
{
    self->audit = link;
}

static bus_link_t *router_link(const intake_t *self, const char *district)
{
    size_t index;
    return district_index(self, district, &index) == 0 ? self->routers[index] : NULL;
}

/* ---- replies ----------------------------------------------------------- */

void intake_reply_free(Dispatch__Reply *reply)
{
    if (reply)
        protobuf_c_message_free_unpacked(&reply->base, NULL);
}

/* Turns a draft (pointing at borrowed strings) into a reply that owns all
 * of its memory, by packing and unpacking it. */
static int reply_finish(const Dispatch__Reply *draft, Dispatch__Reply **ret)
{
    void *packed;
    size_t len;
    int rc = codec_encode(&draft->base, &packed, &len);
    if (rc < 0)
        return rc;
    *ret = dispatch__reply__unpack(NULL, len, packed);
    free(packed);
    return *ret ? 0 : -ENOMEM;
}

static int reply_refusal(uint64_t tag, const refusal_t *refusal, Dispatch__Reply **ret)
{
    Dispatch__Error error = DISPATCH__ERROR__INIT;
    error.code = refusal->code;
    error.message = (char *)refusal->message;
    error.field = (char *)refusal->field;
    Dispatch__Reply draft = DISPATCH__REPLY__INIT;
    draft.tag = tag;
    draft.body_case = DISPATCH__REPLY__BODY_ERROR;
    draft.error = &error;
    return reply_finish(&draft, ret);
}

__attribute__((format(printf, 4, 5))) static int
refuse(refusal_t *refusal, Dispatch__ErrorCode code, const char *field, const char *format, ...)
{
    refusal->code = code;
    snprintf(refusal->field, sizeof(refusal->field), "%s", field);
    va_list args;
    va_start(args, format);
    vsnprintf(refusal->message, sizeof(refusal->message), format, args);
    va_end(args);
    return REFUSED;
}

/* ---- validation -------------------------------------------------------- */

static int check_text(refusal_t *refusal, const char *field, const char *value, size_t limit,
                      bool required)
{
    size_t len = value ? strlen(value) : 0;
    if (required && len == 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, field,
                      "%s is required", field);
    if (len > limit)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, field,
                      "%s is %zu bytes, at most %zu allowed", field, len, limit);
    return 0;
}

static int check_required_enum(refusal_t *refusal, const char *field, int value)
{
    if (value == 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, field,
                      "%s is required (it is UNSPECIFIED)", field);
    return 0;
}

/* "" or an optional '+' then digits, LIMIT_PHONE_MIN..LIMIT_PHONE characters
 * in all. */
static int check_phone(refusal_t *refusal, const char *field, const char *phone)
{
    size_t len = strlen(phone);
    if (len == 0)
        return 0;
    if (len > LIMIT_PHONE)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, field,
                      "%s is %zu characters, at most %d allowed", field, len, LIMIT_PHONE);
    size_t digits_from = phone[0] == '+' ? 1 : 0;
    bool digits_only = len > digits_from;
    for (size_t i = digits_from; i < len; i++)
        digits_only = digits_only && phone[i] >= '0' && phone[i] <= '9';
    if (!digits_only || len < LIMIT_PHONE_MIN)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_PHONE, field,
                      "%s must be an optional '+' then digits, %d to %d characters in all", field,
                      LIMIT_PHONE_MIN, LIMIT_PHONE);
    return 0;
}

static int check_submit(const intake_t *self, const Dispatch__SubmitTicket *submit,
                        refusal_t *refusal)
{
    int rc = 0;
    /* client_request_id was checked before the idempotency lookup. */
    if (!rc)
        rc = check_required_enum(refusal, "submit.channel", submit->channel);
    if (!rc)
        rc = check_required_enum(refusal, "submit.kind", submit->kind);
    if (!rc)
        rc = check_text(refusal, "submit.category", submit->category, LIMIT_ID, false);
    if (!rc)
        rc = check_required_enum(refusal, "submit.urgency", submit->urgency);
    if (!rc)
        rc = check_text(refusal, "submit.district", submit->district, LIMIT_ID, true);
    if (!rc && !config_district_find(self->config, submit->district))
        rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.district",
                    "submit.district '%s' is not a district of city %s", submit->district,
                    config_city(self->config));
    if (!rc)
        rc = check_text(refusal, "submit.area", submit->area, LIMIT_ID, false);
    if (!rc && submit->location)
        rc = check_text(refusal, "submit.location.address", submit->location->address,
                        LIMIT_ADDRESS, false);
    if (!rc && submit->location && submit->location->point) {
        const Dispatch__GeoPoint *point = submit->location->point;
        if (point->lat_e6 < -LAT_E6_MAX || point->lat_e6 > LAT_E6_MAX)
            rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                        "submit.location.point.lat_e6",
                        "submit.location.point.lat_e6 %d is outside -90000000..90000000",
                        (int)point->lat_e6);
        else if (point->lon_e6 < -LON_E6_MAX || point->lon_e6 > LON_E6_MAX)
            rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                        "submit.location.point.lon_e6",
                        "submit.location.point.lon_e6 %d is outside -180000000..180000000",
                        (int)point->lon_e6);
    }
    if (!rc)
        rc = check_text(refusal, "submit.caller_name", submit->caller_name, LIMIT_NAME, false);
    if (!rc)
        rc = check_phone(refusal, "submit.caller_phone", submit->caller_phone);
    if (!rc)
        rc =
            check_text(refusal, "submit.description", submit->description, LIMIT_DESCRIPTION, true);
    if (!rc)
        rc = check_text(refusal, "submit.answer", submit->answer, LIMIT_DESCRIPTION, false);
    if (!rc && submit->answered && submit->kind != DISPATCH__KIND__KIND_CONSULT)
        rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.answered",
                    "submit.answered is only for kind KIND_CONSULT");
    if (!rc && submit->answered &&
        submit->transfer_to != DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_UNSPECIFIED)
        rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.answered",
                    "submit.answered cannot go together with submit.transfer_to");
    if (!rc && submit->answered && submit->answer[0] == '\0')
        rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "submit.answer",
                    "submit.answer is required when submit.answered is set");
    return rc;
}

static int check_callback(const Dispatch__Callback *callback, refusal_t *refusal)
{
    /* client_request_id was checked before the idempotency lookup. */
    int rc = check_text(refusal, "callback.ticket_id", callback->ticket_id, LIMIT_ID, true);
    if (!rc && !callback->unreachable)
        rc = check_required_enum(refusal, "callback.satisfaction", callback->satisfaction);
    if (!rc)
        rc = check_text(refusal, "callback.comment", callback->comment, LIMIT_TEXT, false);
    return rc;
}

/* Decodes a request with the checks of codec_decode, mapped to error codes.
 * *tag is the request's tag whenever the protobuf itself could be read. */
static int decode_request(const void *body, size_t len, Dispatch__Request **ret, uint64_t *tag,
                          refusal_t *refusal)
{
    char err[384] = "";
    *tag = 0;
    int rc = codec_decode(&dispatch__request__descriptor, body, len, INTAKE_MAX_REQUEST,
                          (ProtobufCMessage **)ret, err, sizeof(err));
    if (rc == 0) {
        *tag = (*ret)->tag;
        return 0;
    }
    if (rc == CODEC_BAD_UTF8 || rc == CODEC_BAD_ENUM) {
        /* Readable but refused: the client still gets its tag back. */
        Dispatch__Request *raw = dispatch__request__unpack(NULL, len, body);
        if (raw) {
            *tag = raw->tag;
            dispatch__request__free_unpacked(raw, NULL);
        }
    }
    /* For UTF-8 and enum refusals err reads "<field path>: <problem>". */
    char field[128] = "";
    const char *colon = strstr(err, ": ");
    if (colon && (rc == CODEC_BAD_UTF8 || rc == CODEC_BAD_ENUM))
        snprintf(field, sizeof(field), "%.*s", (int)(colon - err), err);
    switch (rc) {
    case CODEC_TOO_LARGE:
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "",
                      "request of %zu bytes, at most %d allowed", len, INTAKE_MAX_REQUEST);
    case CODEC_BAD_UTF8:
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8, field, "%s", err);
    case CODEC_BAD_ENUM:
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, field, "%s", err);
    default:
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "",
                      "not a valid dispatch.Request (malformed protobuf)");
    }
}

/* ---- records ----------------------------------------------------------- */

static void work_release(ticket_work_t *work)
{
    if (work->loaded)
        protobuf_c_message_free_unpacked(&work->loaded->base, NULL);
    work->loaded = NULL;
}

/* -ENOENT when the ticket is not ours; -EBADMSG when its record does not
 * decode. */
static int work_load(intake_t *self, MDB_txn *txn, const char *id, ticket_work_t *work)
{
    *work = (ticket_work_t){0};
    size_t id_len = strlen(id);
    if (id_len == 0 || id_len > LIMIT_ID)
        return -ENOENT;
    MDB_val key = {id_len, (void *)id}, value;
    int rc = mdb_get(txn, self->tickets, &key, &value);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc != 0)
        return store_rc(rc);
    work->loaded = dispatch__intake__ticket_record__unpack(NULL, value.mv_size, value.mv_data);
    if (!work->loaded || !work->loaded->ticket) {
        work_release(work);
        return -EBADMSG;
    }
    work->ticket = *work->loaded->ticket;
    work->history_count = work->loaded->history_count;
    work->duplicate_master = work->loaded->duplicate_master;
    return 0;
}

static int work_save(intake_t *self, MDB_txn *txn, ticket_work_t *work)
{
    ticket_record_t record = DISPATCH__INTAKE__TICKET_RECORD__INIT;
    record.ticket = &work->ticket;
    record.history_count = work->history_count;
    record.duplicate_master = work->duplicate_master;
    void *packed;
    size_t len;
    int rc = codec_encode(&record.base, &packed, &len);
    if (rc < 0)
        return rc;
    MDB_val key = {strlen(work->ticket.id), work->ticket.id}, value = {len, packed};
    rc = store_rc(mdb_put(txn, self->tickets, &key, &value, 0));
    free(packed);
    return rc;
}

static size_t history_key(const char *id, uint32_t index, unsigned char key[HISTORY_KEY_SIZE])
{
    size_t len = strlen(id);
    memcpy(key, id, len);
    key[len] = '\0';
    for (int i = 0; i < 4; i++)
        key[len + 1 + i] = (unsigned char)(index >> (24 - 8 * i));
    return len + 5;
}

static int history_append(intake_t *self, MDB_txn *txn, ticket_work_t *work,
                          const Dispatch__HistoryEntry *entry)
{
    unsigned char key_bytes[HISTORY_KEY_SIZE];
    MDB_val key = {history_key(work->ticket.id, work->history_count, key_bytes), key_bytes};
    void *packed;
    size_t len;
    int rc = codec_encode(&entry->base, &packed, &len);
    if (rc < 0)
        return rc;
    MDB_val value = {len, packed};
    rc = store_rc(mdb_put(txn, self->history, &key, &value, 0));
    free(packed);
    if (rc == 0)
        work->history_count++;
    return rc;
}

/* The history entry of an event: who, which unit, what was said. Points into
 * the event. */
static void history_from_event(const Dispatch__Event *event, int64_t at,
                               Dispatch__HistoryEntry *entry)
{
    dispatch__history_entry__init(entry);
    entry->at = at;
    entry->type = (Dispatch__EventType)event->body_case;
    entry->actor = event->actor;
    switch (event->body_case) {
    case DISPATCH__EVENT__BODY_TICKET_MERGED:
        entry->text = event->ticket_merged->reason;
        break;
    case DISPATCH__EVENT__BODY_TICKET_TRANSFERRED:
        entry->text = event->ticket_transferred->note;
        break;
    case DISPATCH__EVENT__BODY_TICKET_DISPATCHED:
        entry->unit_id = event->ticket_dispatched->unit_id;
        entry->text = event->ticket_dispatched->note;
        break;
    case DISPATCH__EVENT__BODY_TICKET_ACCEPTED:
        entry->unit_id = event->ticket_accepted->unit_id;
        break;
    case DISPATCH__EVENT__BODY_TICKET_RETURNED:
        entry->unit_id = event->ticket_returned->unit_id;
        entry->text = event->ticket_returned->reason;
        break;
    case DISPATCH__EVENT__BODY_TICKET_REROUTED:
        entry->unit_id = event->ticket_rerouted->to_unit;
        entry->text = event->ticket_rerouted->reason;
        break;
    case DISPATCH__EVENT__BODY_TICKET_TRIAGED:
        entry->unit_id = event->ticket_triaged->from_unit;
        entry->text = event->ticket_triaged->note;
        break;
    case DISPATCH__EVENT__BODY_TRIAGE_ASSIGNED:
        entry->unit_id = event->triage_assigned->lead_unit;
        entry->text = event->triage_assigned->note;
        break;
    case DISPATCH__EVENT__BODY_REMINDER_SENT:
        entry->unit_id = event->reminder_sent->unit_id;
        entry->text = event->reminder_sent->text;
        break;
    case DISPATCH__EVENT__BODY_TICKET_OVERDUE:
        entry->unit_id = event->ticket_overdue->unit_id;
        break;
    case DISPATCH__EVENT__BODY_TICKET_ESCALATED:
        entry->text = event->ticket_escalated->reason;
        break;
    case DISPATCH__EVENT__BODY_SIGN_OFF_REQUESTED:
        entry->text = event->sign_off_requested->reason;
        break;
    case DISPATCH__EVENT__BODY_SIGNED_OFF:
        entry->text = event->signed_off->instruction;
        break;
    case DISPATCH__EVENT__BODY_EXTENSION_REQUESTED:
        entry->unit_id = event->extension_requested->unit_id;
        entry->text = event->extension_requested->reason;
        break;
    case DISPATCH__EVENT__BODY_EXTENSION_GRANTED:
        entry->text = event->extension_granted->note;
        break;
    case DISPATCH__EVENT__BODY_EXTENSION_REFUSED:
        entry->text = event->extension_refused->note;
        break;
    case DISPATCH__EVENT__BODY_CLOCK_PAUSED:
        entry->text = event->clock_paused->reason;
        break;
    case DISPATCH__EVENT__BODY_PROGRESS_REPORTED:
        entry->unit_id = event->progress_reported->unit_id;
        entry->text = event->progress_reported->text;
        break;
    case DISPATCH__EVENT__BODY_TICKET_RESOLVED:
        entry->unit_id = event->ticket_resolved->unit_id;
        entry->text = event->ticket_resolved->text;
        break;
    case DISPATCH__EVENT__BODY_CALLED_BACK:
        entry->text = event->called_back->comment;
        break;
    case DISPATCH__EVENT__BODY_TICKET_REOPENED:
        entry->text = event->ticket_reopened->reason;
        break;
    case DISPATCH__EVENT__BODY_TICKET_CLOSED:
        entry->text = event->ticket_closed->note;
        break;
    default:
        break;
    }
}

/* Emits one event about the ticket in work (body already set in event):
 * stamps it, appends it to the outbox of the ticket's router (when
 * to_router) and of audit, and records it in the ticket's history. */
static int emit(intake_t *self, MDB_txn *txn, ticket_work_t *work, Dispatch__Event *event,
                const char *actor, int64_t now_ms, bool to_router)
{
    char event_id[EVENT_ID_SIZE];
    int rc = event_next_id(txn, self->meta, self->name, event_id);
    if (rc < 0)
        return rc;
    event->event_id = event_id;
    event->ticket_id = work->ticket.id;
    event->district = work->ticket.district;
    event->at = now_ms;
    event->actor = (char *)actor;
    event->origin = self->name;
    bus_link_t *links[2] = {to_router ? router_link(self, work->ticket.district) : NULL,
                            self->audit};
    rc = event_send(self->bus, txn, links, 2, event);
    if (rc < 0)
        return rc;
    Dispatch__HistoryEntry entry;
    history_from_event(event, now_ms, &entry);
    return history_append(self, txn, work, &entry);
}

static size_t request_key(const char *actor, const char *client_request_id,
                          unsigned char key[REQUEST_KEY_SIZE + 1])
{
    size_t actor_len = strlen(actor), id_len = strlen(client_request_id);
    memcpy(key, actor, actor_len);
    key[actor_len] = '\0';
    memcpy(key + actor_len + 1, client_request_id, id_len);
    return actor_len + 1 + id_len;
}

/* The record of an idempotency key, or NULL (*ret) when the key is new. */
static int request_find(intake_t *self, MDB_txn *txn, const char *actor,
                        const char *client_request_id, Dispatch__Intake__RequestRecord **ret)
{
    *ret = NULL;
    unsigned char key_bytes[REQUEST_KEY_SIZE + 1];
    MDB_val key = {request_key(actor, client_request_id, key_bytes), key_bytes}, value;
    int rc = mdb_get(txn, self->requests, &key, &value);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return store_rc(rc);
    *ret = dispatch__intake__request_record__unpack(NULL, value.mv_size, value.mv_data);
    return *ret ? 0 : -EBADMSG;
}

static int request_store(intake_t *self, MDB_txn *txn, const char *actor,
                         const char *client_request_id,
                         const Dispatch__Intake__RequestRecord *record)
{
    unsigned char key_bytes[REQUEST_KEY_SIZE + 1];
    MDB_val key = {request_key(actor, client_request_id, key_bytes), key_bytes};
    void *packed;
    size_t len;
    int rc = codec_encode(&record->base, &packed, &len);
    if (rc < 0)
        return rc;
    MDB_val value = {len, packed};
    rc = store_rc(mdb_put(txn, self->requests, &key, &value, MDB_NOOVERWRITE));
    free(packed);
    return rc;
}

/* ---- ticket ids -------------------------------------------------------- */

/* The next id of the registration day of now_ms ("PREFIX-YYYYMMDD-NNNNNN"),
 * its counter taken from intake.counters in txn. */
static int ticket_id_next(intake_t *self, MDB_txn *txn, int64_t now_ms, char id[IDS_TICKET_SIZE])
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

/* ---- duplicates -------------------------------------------------------- */

enum { MATCH_PHONE, MATCH_ADDRESS, MATCH_KINDS };

static const char *const match_reasons[MATCH_KINDS] = {
    [MATCH_PHONE] = "same caller phone, district and category",
    [MATCH_ADDRESS] = "same address, district and category",
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
    if (match == MATCH_PHONE)
        snprintf(value, sizeof(value), "%s", ticket->caller_phone);
    else
        address_normalize(ticket->location ? ticket->location->address : "", value, sizeof(value));
    if (ticket->category[0] == '\0' || value[0] == '\0')
        return 0;
    int len =
        snprintf((char *)key, DUPLICATE_KEY_SIZE, "%c%s%c%s%c%s", match == MATCH_PHONE ? 'p' : 'a',
                 ticket->district, 0, ticket->category, 0, value);
    return len > 0 && len < DUPLICATE_KEY_SIZE ? (size_t)len : 0;
}

static bool state_is_final(Dispatch__TicketState state)
{
    return state == DISPATCH__TICKET_STATE__TICKET_STATE_MERGED ||
           state == DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED ||
           state == DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED;
}

/* Finds the open ticket a new ticket duplicates: *master is loaded (release
 * it) and *match says how it matched; master->loaded stays NULL when none. */
static int duplicate_find(intake_t *self, MDB_txn *txn, const Dispatch__Ticket *ticket,
                          int64_t now_ms, ticket_work_t *master, int *match)
{
    *master = (ticket_work_t){0};
    if (self->duplicate_window_ms == 0)
        return 0;
    for (int kind = 0; kind < MATCH_KINDS; kind++) {
        unsigned char key_bytes[DUPLICATE_KEY_SIZE];
        MDB_val key = {duplicate_key(ticket, kind, key_bytes), key_bytes}, value;
        if (key.mv_size == 0)
            continue;
        int rc = mdb_get(txn, self->duplicates, &key, &value);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return store_rc(rc);
        Dispatch__Intake__DuplicateEntry *entry =
            dispatch__intake__duplicate_entry__unpack(NULL, value.mv_size, value.mv_data);
        if (!entry)
            continue; /* unreadable entry: no match; the new ticket replaces it */
        bool in_window = now_ms - entry->registered_at <= self->duplicate_window_ms;
        rc = in_window ? work_load(self, txn, entry->master_id, master) : -ENOENT;
        protobuf_c_message_free_unpacked(&entry->base, NULL);
        if (rc == -ENOENT || rc == -EBADMSG)
            continue;
        if (rc < 0)
            return rc;
        if (!state_is_final(master->ticket.state)) {
            *match = kind;
            return 0;
        }
        work_release(master);
    }
    return 0;
}

/* Makes the ticket the master of its match keys. */
static int duplicate_index(intake_t *self, MDB_txn *txn, ticket_work_t *work)
{
    Dispatch__Intake__DuplicateEntry entry = DISPATCH__INTAKE__DUPLICATE_ENTRY__INIT;
    entry.master_id = work->ticket.id;
    entry.registered_at = work->ticket.registered_at;
    unsigned char packed[LIMIT_ID + 32];
    MDB_val value = {dispatch__intake__duplicate_entry__pack(&entry, packed), packed};
    for (int kind = 0; kind < MATCH_KINDS; kind++) {
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
static int duplicate_unindex(intake_t *self, MDB_txn *txn, ticket_work_t *work)
{
    for (int kind = 0; kind < MATCH_KINDS && work->duplicate_master; kind++) {
        unsigned char key_bytes[DUPLICATE_KEY_SIZE];
        MDB_val key = {duplicate_key(&work->ticket, kind, key_bytes), key_bytes}, value;
        if (key.mv_size == 0)
            continue;
        int rc = mdb_get(txn, self->duplicates, &key, &value);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return store_rc(rc);
        Dispatch__Intake__DuplicateEntry *entry =
            dispatch__intake__duplicate_entry__unpack(NULL, value.mv_size, value.mv_data);
        bool ours = !entry || strcmp(entry->master_id, work->ticket.id) == 0;
        if (entry)
            protobuf_c_message_free_unpacked(&entry->base, NULL);
        if (ours && (rc = mdb_del(txn, self->duplicates, &key, NULL)) != 0)
            return store_rc(rc);
    }
    work->duplicate_master = false;
    return 0;
}

/* ---- submit ------------------------------------------------------------ */

static const char *emergency_line_name(Dispatch__EmergencyLine line)
{
    switch (line) {
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_POLICE_110:
        return "110 (police)";
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_FIRE_119:
        return "119 (fire)";
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_AMBULANCE_120:
        return "120 (ambulance)";
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_TRAFFIC_122:
        return "122 (traffic police)";
    default:
        return "an emergency line";
    }
}

static void ticket_from_submit(const Dispatch__SubmitTicket *submit, const char *id, int64_t now_ms,
                               Dispatch__Ticket *ticket)
{
    dispatch__ticket__init(ticket);
    ticket->id = (char *)id;
    ticket->client_request_id = submit->client_request_id;
    ticket->channel = submit->channel;
    ticket->kind = submit->kind;
    ticket->category = submit->category;
    ticket->urgency = submit->urgency;
    ticket->district = submit->district;
    ticket->area = submit->area;
    ticket->location = submit->location;
    ticket->caller_name = submit->caller_name;
    ticket->caller_phone = submit->caller_phone;
    ticket->caller_confidential = submit->caller_confidential;
    ticket->description = submit->description;
    ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED;
    ticket->registered_at = now_ms;
    ticket->updated_at = now_ms;
}

/* The master learns of its duplicate in its own history. */
static int master_note_duplicate(intake_t *self, MDB_txn *txn, ticket_work_t *master,
                                 const char *duplicate_id, const char *reason, const char *actor,
                                 int64_t now_ms)
{
    char text[256];
    snprintf(text, sizeof(text), "duplicate %s merged into this ticket (%s)", duplicate_id, reason);
    Dispatch__HistoryEntry entry = DISPATCH__HISTORY_ENTRY__INIT;
    entry.at = now_ms;
    entry.type = DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_MERGED;
    entry.actor = (char *)actor;
    entry.text = text;
    int rc = history_append(self, txn, master, &entry);
    master->ticket.updated_at = now_ms;
    return rc == 0 ? work_save(self, txn, master) : rc;
}

/* Registers a new ticket (validated) and fills *outcome. */
static int submit_register(intake_t *self, MDB_txn *txn, const Dispatch__SubmitTicket *submit,
                           const char *actor, int64_t now_ms, Dispatch__SubmitReply *outcome,
                           char id[IDS_TICKET_SIZE], char master_id[LIMIT_ID + 1])
{
    int rc = ticket_id_next(self, txn, now_ms, id);
    if (rc < 0)
        return rc;
    ticket_work_t work = {0}, master = {0};
    ticket_from_submit(submit, id, now_ms, &work.ticket);
    Dispatch__Ticket *ticket = &work.ticket;
    int match = MATCH_PHONE;
    bool transfer = submit->transfer_to != DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_UNSPECIFIED;
    if (!transfer && (rc = duplicate_find(self, txn, ticket, now_ms, &master, &match)) < 0)
        return rc;

    Dispatch__Event registered = DISPATCH__EVENT__INIT, second = DISPATCH__EVENT__INIT;
    Dispatch__TicketRegistered registered_body = DISPATCH__TICKET_REGISTERED__INIT;
    Dispatch__TicketTransferred transferred = DISPATCH__TICKET_TRANSFERRED__INIT;
    Dispatch__TicketMerged merged = DISPATCH__TICKET_MERGED__INIT;
    Dispatch__TicketResolved resolved = DISPATCH__TICKET_RESOLVED__INIT;
    char note[128];
    registered.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    registered.ticket_registered = &registered_body;
    registered_body.ticket = ticket;

    if (transfer) {
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED;
        ticket->transferred_to = submit->transfer_to;
        snprintf(note, sizeof(note), "handed over to %s", emergency_line_name(submit->transfer_to));
        transferred.line = submit->transfer_to;
        transferred.note = note;
        second.body_case = DISPATCH__EVENT__BODY_TICKET_TRANSFERRED;
        second.ticket_transferred = &transferred;
    } else if (master.loaded) {
        snprintf(master_id, LIMIT_ID + 1, "%s", master.ticket.id);
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_MERGED;
        ticket->master_id = master_id;
        merged.master_id = master_id;
        merged.reason = (char *)match_reasons[match];
        second.body_case = DISPATCH__EVENT__BODY_TICKET_MERGED;
        second.ticket_merged = &merged;
    } else if (submit->answered) {
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED;
        ticket->answered_at_intake = true;
        ticket->answer = submit->answer;
        ticket->resolved_at = now_ms;
        ticket->result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_EXPLAINED;
        resolved.result = ticket->result;
        resolved.text = submit->answer;
        resolved.at_intake = true;
        second.body_case = DISPATCH__EVENT__BODY_TICKET_RESOLVED;
        second.ticket_resolved = &resolved;
    }

    /* The ticket is new: its id was never used (counters), so its history
     * starts empty. */
    rc = emit(self, txn, &work, &registered, actor, now_ms, !transfer);
    if (rc == 0 && second.body_case != DISPATCH__EVENT__BODY__NOT_SET)
        rc = emit(self, txn, &work, &second, actor, now_ms, !transfer);
    if (rc == 0 && master.loaded)
        rc = master_note_duplicate(self, txn, &master, id, match_reasons[match], actor, now_ms);
    if (rc == 0 && !state_is_final(ticket->state) && self->duplicate_window_ms > 0)
        rc = duplicate_index(self, txn, &work);
    if (rc == 0)
        rc = work_save(self, txn, &work);
    work_release(&master);
    if (rc < 0)
        return rc;

    outcome->ticket_id = id;
    outcome->state = ticket->state;
    outcome->master_id = ticket->master_id;
    outcome->created = true;
    outcome->registered_at = now_ms;
    return 0;
}

static int handle_submit(intake_t *self, MDB_txn *txn, const Dispatch__Request *request,
                         int64_t now_ms, Dispatch__Reply **ret)
{
    const Dispatch__SubmitTicket *submit = request->submit;
    const char *actor = request->actor[0] ? request->actor : DEFAULT_ACTOR;
    refusal_t refusal;
    if (check_text(&refusal, "submit.client_request_id", submit->client_request_id, LIMIT_ID, true))
        return reply_refusal(request->tag, &refusal, ret);

    Dispatch__Reply draft = DISPATCH__REPLY__INIT;
    draft.tag = request->tag;
    draft.body_case = DISPATCH__REPLY__BODY_SUBMIT;

    Dispatch__Intake__RequestRecord *earlier;
    int rc = request_find(self, txn, request->actor, submit->client_request_id, &earlier);
    if (rc == -EBADMSG) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, "submit.client_request_id",
               "the stored outcome of this client_request_id is unreadable");
        return reply_refusal(request->tag, &refusal, ret);
    }
    if (rc < 0)
        return rc;
    if (earlier) {
        if (earlier->reply_case == DISPATCH__INTAKE__REQUEST_RECORD__REPLY_SUBMIT) {
            Dispatch__SubmitReply replay = *earlier->submit;
            replay.created = false;
            draft.submit = &replay;
            rc = reply_finish(&draft, ret);
        } else {
            refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "submit.client_request_id",
                   "submit.client_request_id '%s' was already used by a callback",
                   submit->client_request_id);
            rc = reply_refusal(request->tag, &refusal, ret);
        }
        protobuf_c_message_free_unpacked(&earlier->base, NULL);
        return rc;
    }

    if (check_submit(self, submit, &refusal))
        return reply_refusal(request->tag, &refusal, ret);

    Dispatch__SubmitReply outcome = DISPATCH__SUBMIT_REPLY__INIT;
    char id[IDS_TICKET_SIZE], master_id[LIMIT_ID + 1] = "";
    rc = submit_register(self, txn, submit, actor, now_ms, &outcome, id, master_id);
    Dispatch__Intake__RequestRecord record = DISPATCH__INTAKE__REQUEST_RECORD__INIT;
    record.ticket_id = id;
    record.reply_case = DISPATCH__INTAKE__REQUEST_RECORD__REPLY_SUBMIT;
    record.submit = &outcome;
    if (rc == 0)
        rc = request_store(self, txn, request->actor, submit->client_request_id, &record);
    if (rc < 0)
        return rc;
    draft.submit = &outcome;
    return reply_finish(&draft, ret);
}

/* ---- get_ticket -------------------------------------------------------- */

static int handle_get_ticket(intake_t *self, MDB_txn *txn, const Dispatch__Request *request,
                             Dispatch__Reply **ret)
{
    const Dispatch__GetTicket *get = request->get_ticket;
    refusal_t refusal;
    if (check_text(&refusal, "get_ticket.ticket_id", get->ticket_id, LIMIT_ID, true))
        return reply_refusal(request->tag, &refusal, ret);
    ticket_work_t work;
    int rc = work_load(self, txn, get->ticket_id, &work);
    if (rc == -ENOENT) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "get_ticket.ticket_id",
               "no ticket '%s' at this intake", get->ticket_id);
        return reply_refusal(request->tag, &refusal, ret);
    }
    if (rc == -EBADMSG) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, "get_ticket.ticket_id",
               "the record of ticket '%s' is unreadable", get->ticket_id);
        return reply_refusal(request->tag, &refusal, ret);
    }
    if (rc < 0)
        return rc;

    Dispatch__HistoryEntry **history =
        calloc(work.history_count ? work.history_count : 1, sizeof(*history));
    size_t count = 0;
    rc = history ? 0 : -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < work.history_count; i++) {
        unsigned char key_bytes[HISTORY_KEY_SIZE];
        MDB_val key = {history_key(work.ticket.id, i, key_bytes), key_bytes}, value;
        int found = mdb_get(txn, self->history, &key, &value);
        if (found == MDB_NOTFOUND)
            continue; /* cannot happen (invariant); show what there is */
        if (found != 0) {
            rc = store_rc(found);
            break;
        }
        history[count] = dispatch__history_entry__unpack(NULL, value.mv_size, value.mv_data);
        if (history[count])
            count++;
    }
    if (rc == 0) {
        Dispatch__TicketView view = DISPATCH__TICKET_VIEW__INIT;
        view.ticket = &work.ticket;
        view.n_history = count;
        view.history = history;
        Dispatch__Reply draft = DISPATCH__REPLY__INIT;
        draft.tag = request->tag;
        draft.body_case = DISPATCH__REPLY__BODY_TICKET;
        draft.ticket = &view;
        rc = reply_finish(&draft, ret);
    }
    for (size_t i = 0; i < count; i++)
        protobuf_c_message_free_unpacked(&history[i]->base, NULL);
    free(history);
    work_release(&work);
    return rc;
}

/* ---- callback ---------------------------------------------------------- */

/* Applies a callback to a RESOLVED ticket: CalledBack, then TicketClosed or
 * TicketReopened. */
static int callback_apply(intake_t *self, MDB_txn *txn, ticket_work_t *work,
                          const Dispatch__Callback *callback, const char *actor, int64_t now_ms)
{
    Dispatch__Ticket *ticket = &work->ticket;
    bool reopen = !callback->unreachable &&
                  (callback->satisfaction == DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED ||
                   !callback->solved);
    Dispatch__Satisfaction satisfaction = callback->unreachable
                                              ? DISPATCH__SATISFACTION__SATISFACTION_UNSPECIFIED
                                              : callback->satisfaction;

    Dispatch__CalledBack called = DISPATCH__CALLED_BACK__INIT;
    called.satisfaction = satisfaction;
    called.solved = callback->solved;
    called.unreachable = callback->unreachable;
    called.comment = callback->comment;
    Dispatch__Event first = DISPATCH__EVENT__INIT, second = DISPATCH__EVENT__INIT;
    first.body_case = DISPATCH__EVENT__BODY_CALLED_BACK;
    first.called_back = &called;

    Dispatch__TicketReopened reopened = DISPATCH__TICKET_REOPENED__INIT;
    Dispatch__TicketClosed closed = DISPATCH__TICKET_CLOSED__INIT;
    ticket->satisfaction = satisfaction;
    ticket->updated_at = now_ms;
    if (reopen) {
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED;
        ticket->reopen_count++;
        reopened.reason = callback->comment;
        reopened.reopen_count = ticket->reopen_count;
        reopened.satisfaction = satisfaction;
        second.body_case = DISPATCH__EVENT__BODY_TICKET_REOPENED;
        second.ticket_reopened = &reopened;
    } else {
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED;
        ticket->closed_at = now_ms;
        closed.satisfaction = satisfaction;
        closed.note =
            callback->unreachable ? "caller unreachable: closed without rating" : callback->comment;
        second.body_case = DISPATCH__EVENT__BODY_TICKET_CLOSED;
        second.ticket_closed = &closed;
    }
    int rc = emit(self, txn, work, &first, actor, now_ms, true);
    if (rc == 0)
        rc = emit(self, txn, work, &second, actor, now_ms, true);
    if (rc == 0 && !reopen)
        rc = duplicate_unindex(self, txn, work);
    return rc == 0 ? work_save(self, txn, work) : rc;
}

static const char *state_name(Dispatch__TicketState state)
{
    const ProtobufCEnumValue *value =
        protobuf_c_enum_descriptor_get_value(&dispatch__ticket_state__descriptor, (int)state);
    return value ? value->name : "?";
}

static int handle_callback(intake_t *self, MDB_txn *txn, const Dispatch__Request *request,
                           int64_t now_ms, Dispatch__Reply **ret)
{
    const Dispatch__Callback *callback = request->callback;
    const char *actor = request->actor[0] ? request->actor : DEFAULT_ACTOR;
    refusal_t refusal;
    if (check_text(&refusal, "callback.client_request_id", callback->client_request_id, LIMIT_ID,
                   true))
        return reply_refusal(request->tag, &refusal, ret);

    Dispatch__Reply draft = DISPATCH__REPLY__INIT;
    draft.tag = request->tag;
    draft.body_case = DISPATCH__REPLY__BODY_CALLBACK;

    Dispatch__Intake__RequestRecord *earlier;
    int rc = request_find(self, txn, request->actor, callback->client_request_id, &earlier);
    if (rc == -EBADMSG) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, "callback.client_request_id",
               "the stored outcome of this client_request_id is unreadable");
        return reply_refusal(request->tag, &refusal, ret);
    }
    if (rc < 0)
        return rc;
    if (earlier) {
        if (earlier->reply_case == DISPATCH__INTAKE__REQUEST_RECORD__REPLY_CALLBACK) {
            draft.callback = earlier->callback;
            rc = reply_finish(&draft, ret);
        } else {
            refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT,
                   "callback.client_request_id",
                   "callback.client_request_id '%s' was already used by a submit",
                   callback->client_request_id);
            rc = reply_refusal(request->tag, &refusal, ret);
        }
        protobuf_c_message_free_unpacked(&earlier->base, NULL);
        return rc;
    }

    if (check_callback(callback, &refusal))
        return reply_refusal(request->tag, &refusal, ret);
    ticket_work_t work;
    rc = work_load(self, txn, callback->ticket_id, &work);
    if (rc == -ENOENT || rc == -EBADMSG) {
        refuse(&refusal,
               rc == -ENOENT ? DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND
                             : DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL,
               "callback.ticket_id",
               rc == -ENOENT ? "no ticket '%s' at this intake"
                             : "the record of ticket '%s' is unreadable",
               callback->ticket_id);
        return reply_refusal(request->tag, &refusal, ret);
    }
    if (rc < 0)
        return rc;
    if (work.ticket.state != DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "callback.ticket_id",
               "ticket '%s' is %s; a callback needs TICKET_STATE_RESOLVED", callback->ticket_id,
               state_name(work.ticket.state));
        work_release(&work);
        return reply_refusal(request->tag, &refusal, ret);
    }

    rc = callback_apply(self, txn, &work, callback, actor, now_ms);
    Dispatch__CallbackReply outcome = DISPATCH__CALLBACK_REPLY__INIT;
    outcome.ticket_id = work.ticket.id;
    outcome.state = work.ticket.state;
    outcome.reopen_count = work.ticket.reopen_count;
    Dispatch__Intake__RequestRecord record = DISPATCH__INTAKE__REQUEST_RECORD__INIT;
    record.ticket_id = work.ticket.id;
    record.reply_case = DISPATCH__INTAKE__REQUEST_RECORD__REPLY_CALLBACK;
    record.callback = &outcome;
    if (rc == 0)
        rc = request_store(self, txn, request->actor, callback->client_request_id, &record);
    if (rc == 0) {
        draft.callback = &outcome;
        rc = reply_finish(&draft, ret);
    }
    work_release(&work);
    return rc;
}

/* ---- requests ---------------------------------------------------------- */

int intake_handle_request(intake_t *self, MDB_txn *txn, const void *body, size_t len,
                          int64_t now_ms, Dispatch__Reply **ret)
{
    *ret = NULL;
    refusal_t refusal;
    Dispatch__Request *request = NULL;
    uint64_t tag;
    if (decode_request(body, len, &request, &tag, &refusal))
        return reply_refusal(tag, &refusal, ret);

    int rc;
    if (check_text(&refusal, "actor", request->actor, LIMIT_ID, false)) {
        rc = reply_refusal(request->tag, &refusal, ret);
    } else {
        switch (request->body_case) {
        case DISPATCH__REQUEST__BODY_SUBMIT:
            rc = handle_submit(self, txn, request, now_ms, ret);
            break;
        case DISPATCH__REQUEST__BODY_GET_TICKET:
            rc = handle_get_ticket(self, txn, request, ret);
            break;
        case DISPATCH__REQUEST__BODY_CALLBACK:
            rc = handle_callback(self, txn, request, now_ms, ret);
            break;
        default:
            refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body",
                   "the request holds none of submit, get_ticket, callback");
            rc = reply_refusal(request->tag, &refusal, ret);
            break;
        }
    }
    protobuf_c_message_free_unpacked(&request->base, NULL);
    if (rc < 0 && *ret) {
        intake_reply_free(*ret);
        *ret = NULL;
    }
    return rc;
}

/* ---- events from routers ----------------------------------------------- */

/* Changes the ticket as the event says. Returns BUS_REJECTED for events
 * that only intake emits (or none at all). A final ticket keeps its
 * state. */
static int ticket_follow_event(Dispatch__Ticket *ticket, const Dispatch__Event *event, int64_t at)
{
    bool open = !state_is_final(ticket->state);
    switch (event->body_case) {
    case DISPATCH__EVENT__BODY_TICKET_DISPATCHED: {
        const Dispatch__TicketDispatched *dispatched = event->ticket_dispatched;
        if (!open)
            break;
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED;
        ticket->assigned_unit = dispatched->unit_id;
        ticket->n_assisting_units = dispatched->n_assisting_units;
        ticket->assisting_units = dispatched->assisting_units;
        ticket->dispatched_at = at;
        if (dispatched->deadline_sign_for)
            ticket->deadline_sign_for = dispatched->deadline_sign_for;
        if (dispatched->deadline_handle)
            ticket->deadline_handle = dispatched->deadline_handle;
        break;
    }
    case DISPATCH__EVENT__BODY_TICKET_ACCEPTED:
        if (open) {
            ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED;
            ticket->accepted_at = at;
        }
        break;
    case DISPATCH__EVENT__BODY_TICKET_RETURNED:
        if (open) {
            ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_RETURNED;
            ticket->return_count++;
        }
        break;
    case DISPATCH__EVENT__BODY_TICKET_TRIAGED:
        if (open)
            ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE;
        break;
    case DISPATCH__EVENT__BODY_TICKET_ESCALATED:
        if (open)
            ticket->supervision = event->ticket_escalated->level;
        break;
    case DISPATCH__EVENT__BODY_EXTENSION_GRANTED:
        if (open) {
            ticket->extension_count++;
            if (event->extension_granted->new_deadline_handle)
                ticket->deadline_handle = event->extension_granted->new_deadline_handle;
        }
        break;
    case DISPATCH__EVENT__BODY_CLOCK_RESUMED:
        if (open && event->clock_resumed->deadline_sign_for)
            ticket->deadline_sign_for = event->clock_resumed->deadline_sign_for;
        if (open && event->clock_resumed->deadline_handle)
            ticket->deadline_handle = event->clock_resumed->deadline_handle;
        break;
    case DISPATCH__EVENT__BODY_TICKET_RESOLVED:
        if (open) {
            ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED;
            ticket->resolved_at = at;
            ticket->result = event->ticket_resolved->result;
        }
        break;
    case DISPATCH__EVENT__BODY_TICKET_REROUTED:
    case DISPATCH__EVENT__BODY_TRIAGE_ASSIGNED:
    case DISPATCH__EVENT__BODY_REMINDER_SENT:
    case DISPATCH__EVENT__BODY_TICKET_OVERDUE:
    case DISPATCH__EVENT__BODY_SIGN_OFF_REQUESTED:
    case DISPATCH__EVENT__BODY_SIGNED_OFF:
    case DISPATCH__EVENT__BODY_EXTENSION_REQUESTED:
    case DISPATCH__EVENT__BODY_EXTENSION_REFUSED:
    case DISPATCH__EVENT__BODY_CLOCK_PAUSED:
    case DISPATCH__EVENT__BODY_PROGRESS_REPORTED:
        break; /* history only */
    default:
        /* Registered, merged, transferred, called back, reopened, closed:
         * intake's own decisions, never taken from another worker. */
        return BUS_REJECTED;
    }
    ticket->updated_at = at;
    return 0;
}

int intake_handle_event(intake_t *self, MDB_txn *txn, const void *body, size_t len, int64_t now_ms)
{
    Dispatch__Event *event = NULL;
    char err[256];
    if (event_decode(body, len, &event, err, sizeof(err)) < 0)
        return BUS_REJECTED;
    ticket_work_t work;
    int rc = work_load(self, txn, event->ticket_id, &work);
    if (rc == -ENOENT || rc == -EBADMSG) {
        event_free(event);
        return BUS_REJECTED;
    }
    int64_t at = event->at ? event->at : now_ms;
    if (rc == 0)
        rc = ticket_follow_event(&work.ticket, event, at);
    if (rc == 0) {
        Dispatch__HistoryEntry entry;
        history_from_event(event, at, &entry);
        rc = history_append(self, txn, &work, &entry);
    }
    if (rc == 0)
        rc = work_save(self, txn, &work);
    work_release(&work);
    event_free(event);
    return rc;
}

int intake_apply_event(void *app, MDB_txn *txn, const char *sender, uint64_t seq, const void *body,
                       size_t len)
{
    (void)sender;
    (void)seq;
    return intake_handle_event(app, txn, body, len, clock_now_ms());
}

/* ---- the worker loop --------------------------------------------------- */

/* Peeks at a queued request: does handling it write? */
static bool request_writes(const void *body, size_t len, uint64_t *tag)
{
    ProtobufCMessage *msg;
    char err[256];
    *tag = 0;
    if (codec_decode(&dispatch__request__descriptor, body, len, INTAKE_MAX_REQUEST, &msg, err,
                     sizeof(err)) < 0)
        return false;
    Dispatch__Request *request = (Dispatch__Request *)msg;
    *tag = request->tag;
    bool writes = request->body_case == DISPATCH__REQUEST__BODY_SUBMIT ||
                  request->body_case == DISPATCH__REQUEST__BODY_CALLBACK;
    protobuf_c_message_free_unpacked(msg, NULL);
    return writes;
}

static void reply_unavailable(intake_t *self, size_t i)
{
    endpoint_request_t request;
    endpoint_request(self->endpoint, i, &request);
    uint64_t tag;
    request_writes(request.body, request.body_len, &tag);
    Dispatch__Error error = DISPATCH__ERROR__INIT;
    error.code = DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
    error.message =
        (char *)"storage failure: nothing was applied; retry with the same client_request_id";
    Dispatch__Reply reply = DISPATCH__REPLY__INIT;
    reply.tag = tag;
    reply.body_case = DISPATCH__REPLY__BODY_ERROR;
    reply.error = &error;
    endpoint_reply(self->endpoint, i, &reply.base);
}

/* Handles request i in txn and sets its reply. */
static int answer(intake_t *self, MDB_txn *txn, size_t i, int64_t now_ms)
{
    endpoint_request_t request;
    endpoint_request(self->endpoint, i, &request);
    Dispatch__Reply *reply;
    int rc = intake_handle_request(self, txn, request.body, request.body_len, now_ms, &reply);
    if (rc < 0)
        return rc;
    rc = endpoint_reply(self->endpoint, i, &reply->base);
    intake_reply_free(reply);
    return rc;
}

static size_t loop_pollitems(void *app, zmq_pollitem_t *items, size_t capacity)
{
    intake_t *self = app;
    if (capacity == 0)
        return 0;
    items[0] = (zmq_pollitem_t){.socket = endpoint_socket(self->endpoint), .events = ZMQ_POLLIN};
    return 1;
}

static bool loop_drain(void *app, int64_t now_ms)
{
    (void)now_ms;
    intake_t *self = app;
    self->batch_applied = false;
    size_t count = endpoint_drain(self->endpoint);
    bool writes = false;
    for (size_t i = 0; i < count && !writes; i++) {
        endpoint_request_t request;
        endpoint_request(self->endpoint, i, &request);
        uint64_t tag;
        writes = request_writes(request.body, request.body_len, &tag);
    }
    return writes;
}

static int loop_apply(void *app, MDB_txn *txn)
{
    intake_t *self = app;
    self->batch_applied = true;
    endpoint_clear_replies(self->endpoint);
    int64_t now_ms = clock_now_ms();
    size_t count = endpoint_count(self->endpoint);
    for (size_t i = 0; i < count; i++) {
        int rc = answer(self, txn, i, now_ms);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void loop_done(void *app, int rc)
{
    intake_t *self = app;
    size_t count = endpoint_count(self->endpoint);
    if (count > 0 && rc != 0) {
        for (size_t i = 0; i < count; i++)
            reply_unavailable(self, i);
    } else if (count > 0 && !self->batch_applied) {
        /* Nothing to write: reads and refusals, from a read transaction. */
        MDB_txn *txn;
        bool readable = store_read_begin(self->store, &txn) == 0;
        int64_t now_ms = clock_now_ms();
        for (size_t i = 0; i < count; i++)
            if (!readable || answer(self, txn, i, now_ms) < 0)
                reply_unavailable(self, i);
        if (readable)
            store_read_end(&txn);
    }
    endpoint_flush(self->endpoint);
    self->batch_applied = false;
}

/* --duplicate-window-minutes N (or =N); nothing else. */
static int parse_options(int argc, char **argv, intake_options_t *options)
{
    static const char flag[] = "--duplicate-window-minutes";
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (strcmp(argv[i], flag) == 0 && i + 1 < argc)
            value = argv[++i];
        else if (strncmp(argv[i], flag, sizeof(flag) - 1) == 0 && argv[i][sizeof(flag) - 1] == '=')
            value = argv[i] + sizeof(flag);
        else
            return -EINVAL;
        char *end;
        errno = 0;
        long long minutes = strtoll(value, &end, 10);
        if (errno || end == value || *end || minutes < 0 || minutes > INT64_MAX / MINUTE_MS)
            return -EINVAL;
        options->duplicate_window_minutes = minutes;
    }
    return 0;
}

static int intake_start(worker_t *worker, int argc, char **argv, void **app)
{
    intake_options_t options;
    intake_options_init(&options);
    int rc = parse_options(argc, argv, &options);
    const config_worker_t *self_config = worker_self(worker);
    if (rc == 0 && !self_config->request)
        rc = -EINVAL; /* an intake without a request endpoint serves no one */
    intake_t *self = NULL;
    if (rc == 0)
        rc = intake_new(worker_store(worker), worker_bus(worker), worker_config(worker),
                        self_config->name, &options, &self);
    if (rc < 0)
        return rc;
    const config_t *config = worker_config(worker);
    for (size_t i = 0; i < config_district_count(config); i++) {
        const char *district = config_district_at(config, i)->id;
        intake_set_router_link(self, district, worker_link_to(worker, "router", district));
    }
    intake_set_audit_link(self, worker_link_to(worker, "audit", NULL));
    rc = endpoint_new(worker_zmq(worker), self_config->request, INTAKE_MAX_REQUEST, 0,
                      &self->endpoint);
    if (rc == 0)
        rc = worker_announce(worker, "request", endpoint_url(self->endpoint));
    if (rc < 0) {
        intake_destroy(&self);
        return rc;
    }
    *app = self;
    return 0;
}

static void intake_stop(void *app)
{
    intake_t *self = app;
    intake_destroy(&self);
}

const worker_kind_t intake_kind = {
    .kind = "intake",
    .start = intake_start,
    .stop = intake_stop,
    .apply = intake_apply_event,
    .loop =
        {
            .pollitems = loop_pollitems,
            .drain = loop_drain,
            .apply = loop_apply,
            .done = loop_done,
        },
};

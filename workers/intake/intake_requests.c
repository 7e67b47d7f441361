/* intake_requests: the client requests (submit, get_ticket, callback),
 * validated and answered in the caller's transaction. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "codec.h"
#include "ids.h"
#include "intake_internal.h"
#include "lifecycle.h"
#include "linkview.h"
#include "mask.h"
#include "record.h"
#include "words.h"
#include "workerstats.h"

#define REQUEST_KEY_SIZE (LIMIT_ID + 1 + LIMIT_ID)

/* ---- replies ----------------------------------------------------------- */

/* Turns a draft (pointing at borrowed strings) into the intake's reply,
 * which owns all of its memory (packed and unpacked) until the next
 * request. */
static int reply_finish(intake_t *self, const Dispatch__Reply *draft, const Dispatch__Reply **ret)
{
    void *packed;
    size_t len;
    int rc = codec_encode(&draft->base, &packed, &len);
    if (rc < 0)
        return rc;
    intake_reply_drop(self);
    self->reply = dispatch__reply__unpack(NULL, len, packed);
    free(packed);
    *ret = self->reply;
    return self->reply ? 0 : -ENOMEM;
}

static int reply_error(intake_t *self, uint64_t tag, Dispatch__Error *error,
                       const Dispatch__Reply **ret)
{
    Dispatch__Reply draft = DISPATCH__REPLY__INIT;
    draft.tag = tag;
    draft.body_case = DISPATCH__REPLY__BODY_ERROR;
    draft.error = error;
    return reply_finish(self, &draft, ret);
}

static int reply_refusal(intake_t *self, uint64_t tag, const refusal_t *refusal,
                         const Dispatch__Reply **ret)
{
    Dispatch__Error error;
    refusal_error(refusal, &error);
    return reply_error(self, tag, &error, ret);
}

/* ---- backpressure ------------------------------------------------------ */

/* How long a refused client waits before it tries again: about what a
 * router takes to work off a batch. */
#define BACKLOG_RETRY_AFTER_MS 200

/* Refuses a submit while the district's router has more than max_backlog
 * messages from this intake that it has not acknowledged: acknowledging
 * work that cannot be handed on only hides the flood from the callers.
 * The backlog is the bus link's lag (dispatchctl links). 1 = refused
 * (*ret is the reply), 0 = go on. */
static int refuse_if_backlogged(intake_t *self, const Dispatch__Request *request,
                                const Dispatch__Reply **ret, int *rc)
{
    bus_link_t *link = peers_router_of(self->peers, request->submit->district);
    uint64_t backlog = link ? bus_link_backlog(link) : 0;
    if (backlog <= self->max_backlog)
        return 0;
    char message[256];
    snprintf(message, sizeof(message),
             "the router of district %s has %llu messages not yet acknowledged (max_backlog "
             "%llu): nothing was registered; retry with the same client_request_id in %d ms",
             request->submit->district, (unsigned long long)backlog,
             (unsigned long long)self->max_backlog, BACKLOG_RETRY_AFTER_MS);
    Dispatch__Error error = DISPATCH__ERROR__INIT;
    error.code = DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
    error.message = message;
    error.retry_after_ms = BACKLOG_RETRY_AFTER_MS;
    *rc = reply_error(self, request->tag, &error, ret);
    return 1;
}

/* ---- validation -------------------------------------------------------- */

/* A category and an area (both optional) on the city's lists, the area
 * in the submit's district: what no rule could route is refused here. */
static int check_on_lists(const city_lists_t *lists, const Dispatch__SubmitTicket *submit,
                          refusal_t *refusal)
{
    if (*submit->category && !city_lists_has_category(lists, submit->category))
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.category",
                      "submit.category '%s' is not on the city's list of categories (a "
                      "city_lists request lists them)",
                      submit->category);
    if (!*submit->area)
        return 0;
    const char *district = city_lists_area_district(lists, submit->area);
    if (!district)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.area",
                      "submit.area '%s' is not on the city's list of areas (a city_lists "
                      "request lists them)",
                      submit->area);
    if (strcmp(district, submit->district) != 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.area",
                      "submit.area '%s' is an area of district %s, not of %s", submit->area,
                      district, submit->district);
    return 0;
}

static int check_submit(const intake_t *self, const Dispatch__SubmitTicket *submit,
                        refusal_t *refusal)
{
    int rc = 0;
    /* client_request_id was checked before the idempotency lookup. */
    if (!rc)
        rc = refuse_unset_enum(refusal, "submit.channel", submit->channel);
    if (!rc)
        rc = refuse_unset_enum(refusal, "submit.kind", submit->kind);
    if (!rc)
        rc = refuse_text(refusal, "submit.category", submit->category, LIMIT_ID, false);
    if (!rc)
        rc = refuse_unset_enum(refusal, "submit.urgency", submit->urgency);
    if (!rc)
        rc = refuse_text(refusal, "submit.district", submit->district, LIMIT_ID, true);
    if (!rc && !config_district_find(self->config, submit->district))
        rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "submit.district",
                    "submit.district '%s' is not a district of city %s", submit->district,
                    config_city(self->config));
    if (!rc)
        rc = refuse_text(refusal, "submit.area", submit->area, LIMIT_ID, false);
    if (!rc && self->lists)
        rc = check_on_lists(self->lists, submit, refusal);
    if (!rc && submit->location)
        rc = refuse_text(refusal, "submit.location.address", submit->location->address,
                         LIMIT_ADDRESS, false);
    if (!rc && submit->location && submit->location->point) {
        const Dispatch__GeoPoint *point = submit->location->point;
        if (point->lat_e6 < -LIMIT_LAT_E6 || point->lat_e6 > LIMIT_LAT_E6)
            rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                        "submit.location.point.lat_e6",
                        "submit.location.point.lat_e6 %d is outside -90000000..90000000",
                        (int)point->lat_e6);
        else if (point->lon_e6 < -LIMIT_LON_E6 || point->lon_e6 > LIMIT_LON_E6)
            rc = refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                        "submit.location.point.lon_e6",
                        "submit.location.point.lon_e6 %d is outside -180000000..180000000",
                        (int)point->lon_e6);
    }
    if (!rc)
        rc = refuse_text(refusal, "submit.caller_name", submit->caller_name, LIMIT_NAME, false);
    if (!rc)
        rc = refuse_phone(refusal, "submit.caller_phone", submit->caller_phone);
    if (!rc)
        rc = refuse_text(refusal, "submit.description", submit->description, LIMIT_LONG_TEXT, true);
    if (!rc)
        rc = refuse_text(refusal, "submit.answer", submit->answer, LIMIT_LONG_TEXT, false);
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
    int rc = refuse_text(refusal, "callback.ticket_id", callback->ticket_id, LIMIT_ID, true);
    if (!rc && !callback->unreachable)
        rc = refuse_unset_enum(refusal, "callback.satisfaction", callback->satisfaction);
    if (!rc)
        rc = refuse_text(refusal, "callback.comment", callback->comment, LIMIT_TEXT, false);
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
    return refuse_decode(refusal, rc, err, len, INTAKE_MAX_REQUEST, "dispatch.Request");
}

/* ---- idempotency keys -------------------------------------------------- */

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
    unsigned char key[REQUEST_KEY_SIZE + 1];
    size_t key_len = request_key(actor, client_request_id, key);
    int rc = record_get(txn, self->requests, key, key_len,
                        &dispatch__intake__request_record__descriptor, (ProtobufCMessage **)ret);
    return rc == -ENOENT ? 0 : rc == -EPROTO ? -EBADMSG : rc;
}

static int request_store(intake_t *self, MDB_txn *txn, const char *actor,
                         const char *client_request_id,
                         const Dispatch__Intake__RequestRecord *record)
{
    unsigned char key[REQUEST_KEY_SIZE + 1];
    size_t key_len = request_key(actor, client_request_id, key);
    return record_put(txn, self->requests, key, key_len, &record->base, MDB_NOOVERWRITE);
}

/* A request whose idempotency key was used before gets the first outcome
 * again (*replayed): a submit says created = false; a key first used by
 * the other kind of request is a CONFLICT. */
static int replay_earlier(intake_t *self, MDB_txn *txn, const Dispatch__Request *request,
                          const char *actor, const char *client_request_id,
                          Dispatch__Intake__RequestRecord__ReplyCase kind,
                          const Dispatch__Reply **ret, bool *replayed)
{
    bool submit = kind == DISPATCH__INTAKE__REQUEST_RECORD__REPLY_SUBMIT;
    const char *field = submit ? "submit.client_request_id" : "callback.client_request_id";
    refusal_t refusal;
    Dispatch__Intake__RequestRecord *earlier;
    int rc = request_find(self, txn, actor, client_request_id, &earlier);
    *replayed = rc == -EBADMSG || (rc == 0 && earlier);
    if (rc == -EBADMSG) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, field,
               "the stored outcome of this client_request_id is unreadable");
        return reply_refusal(self, request->tag, &refusal, ret);
    }
    if (rc < 0 || !earlier)
        return rc;
    if (earlier->reply_case == kind) {
        Dispatch__Reply draft = DISPATCH__REPLY__INIT;
        draft.tag = request->tag;
        Dispatch__SubmitReply replay;
        if (submit) {
            replay = *earlier->submit;
            replay.created = false;
            draft.body_case = DISPATCH__REPLY__BODY_SUBMIT;
            draft.submit = &replay;
        } else {
            draft.body_case = DISPATCH__REPLY__BODY_CALLBACK;
            draft.callback = earlier->callback;
        }
        rc = reply_finish(self, &draft, ret);
    } else {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, field,
               "%s '%s' was already used by a %s", field, client_request_id,
               submit ? "callback" : "submit");
        rc = reply_refusal(self, request->tag, &refusal, ret);
    }
    protobuf_c_message_free_unpacked(&earlier->base, NULL);
    return rc;
}

/* ---- submit ------------------------------------------------------------ */

/* How the transfer note names the line: display text for people reading
 * the ticket's history, not an enum word (those are common/words.h). */
static const char *emergency_line_name(Dispatch__EmergencyLine line)
{
    switch (line) {
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_UNSPECIFIED:
        break;
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_POLICE_110:
        return "110 (police)";
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_FIRE_119:
        return "119 (fire)";
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_AMBULANCE_120:
        return "120 (ambulance)";
    case DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_TRAFFIC_122:
        return "122 (traffic police)";
    }
    return "an emergency line";
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
    int rc = intake_history_append(self, txn, master, &entry);
    master->ticket.updated_at = now_ms;
    return rc == 0 ? intake_work_save(self, txn, master) : rc;
}

/* A fresh lookup code, from the kernel's random source. The bytes are
 * drawn a pool at a time (one system call per hundred codes, not one per
 * symbol); 32 symbols, so a byte's low five bits pick one uniformly. */
static void lookup_code_new(char code[LOOKUP_CODE_LENGTH + 1])
{
    static const char symbols[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    _Static_assert(sizeof(symbols) - 1 == 32, "a byte's low five bits pick a symbol");
    static unsigned char pool[LOOKUP_CODE_LENGTH * 100];
    static size_t used = sizeof(pool);
    if (used + LOOKUP_CODE_LENGTH > sizeof(pool)) {
        randombytes_buf(pool, sizeof(pool));
        used = 0;
    }
    for (int i = 0; i < LOOKUP_CODE_LENGTH; i++)
        code[i] = symbols[pool[used + (size_t)i] & 31];
    sodium_memzero(pool + used, LOOKUP_CODE_LENGTH);
    used += LOOKUP_CODE_LENGTH;
    code[LOOKUP_CODE_LENGTH] = '\0';
}

/* Registers a new ticket (validated) and fills *outcome. */
static int submit_register(intake_t *self, MDB_txn *txn, const Dispatch__SubmitTicket *submit,
                           const char *actor, int64_t now_ms, Dispatch__SubmitReply *outcome,
                           char id[IDS_TICKET_SIZE], char master_id[LIMIT_ID + 1],
                           char code[LOOKUP_CODE_LENGTH + 1])
{
    int rc = intake_ticket_id_next(self, txn, now_ms, id);
    if (rc < 0)
        return rc;
    ticket_work_t work = {0}, master = {0};
    ticket_from_submit(submit, id, now_ms, &work.ticket);
    lookup_code_new(code);
    work.lookup_code = code;
    Dispatch__Ticket *ticket = &work.ticket;
    int match = INTAKE_MATCH_PHONE;
    bool transfer = submit->transfer_to != DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_UNSPECIFIED;
    if (!transfer && (rc = intake_duplicate_find(self, txn, ticket, now_ms, &master, &match)) < 0)
        return rc;

    Dispatch__TicketRegistered registered = DISPATCH__TICKET_REGISTERED__INIT;
    ProtobufCMessage *second = NULL;
    Dispatch__TicketTransferred transferred = DISPATCH__TICKET_TRANSFERRED__INIT;
    Dispatch__TicketMerged merged = DISPATCH__TICKET_MERGED__INIT;
    Dispatch__TicketResolved resolved = DISPATCH__TICKET_RESOLVED__INIT;
    char note[128];
    registered.ticket = ticket;

    if (transfer) {
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED;
        ticket->transferred_to = submit->transfer_to;
        snprintf(note, sizeof(note), "handed over to %s", emergency_line_name(submit->transfer_to));
        transferred.line = submit->transfer_to;
        transferred.note = note;
        second = &transferred.base;
    } else if (master.loaded) {
        snprintf(master_id, LIMIT_ID + 1, "%s", master.ticket.id);
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_MERGED;
        ticket->master_id = master_id;
        merged.master_id = master_id;
        merged.reason = (char *)intake_match_reason(match);
        second = &merged.base;
    } else if (submit->answered) {
        ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED;
        ticket->answered_at_intake = true;
        ticket->answer = submit->answer;
        ticket->resolved_at = now_ms;
        ticket->result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_EXPLAINED;
        resolved.result = ticket->result;
        resolved.text = submit->answer;
        resolved.at_intake = true;
        second = &resolved.base;
    }

    /* The ticket is new: its id was never used (counters), so its history
     * starts empty. */
    rc = intake_emit(self, txn, &work, &registered.base, actor, now_ms);
    if (rc == 0 && second)
        rc = intake_emit(self, txn, &work, second, actor, now_ms);
    if (rc == 0 && master.loaded)
        rc = master_note_duplicate(self, txn, &master, id, intake_match_reason(match), actor,
                                   now_ms);
    if (rc == 0 && !lifecycle_state_final(ticket->state) && self->duplicate_window_ms > 0)
        rc = intake_duplicate_index(self, txn, &work);
    if (rc == 0)
        rc = intake_work_save(self, txn, &work);
    intake_work_release(&master);
    if (rc < 0)
        return rc;

    outcome->ticket_id = id;
    outcome->state = ticket->state;
    outcome->master_id = ticket->master_id;
    outcome->created = true;
    outcome->registered_at = now_ms;
    outcome->lookup_code = code;
    return 0;
}

static int handle_submit(intake_t *self, MDB_txn *txn, const Dispatch__Request *request,
                         const char *actor, int64_t now_ms, const Dispatch__Reply **ret)
{
    const Dispatch__SubmitTicket *submit = request->submit;
    refusal_t refusal;
    if (refuse_text(&refusal, "submit.client_request_id", submit->client_request_id, LIMIT_ID,
                    true))
        return reply_refusal(self, request->tag, &refusal, ret);

    bool replayed;
    int rc = replay_earlier(self, txn, request, actor, submit->client_request_id,
                            DISPATCH__INTAKE__REQUEST_RECORD__REPLY_SUBMIT, ret, &replayed);
    if (rc < 0 || replayed)
        return rc;

    if (check_submit(self, submit, &refusal))
        return reply_refusal(self, request->tag, &refusal, ret);
    if (refuse_if_backlogged(self, request, ret, &rc))
        return rc;

    Dispatch__SubmitReply outcome = DISPATCH__SUBMIT_REPLY__INIT;
    char id[IDS_TICKET_SIZE], master_id[LIMIT_ID + 1] = "", code[LOOKUP_CODE_LENGTH + 1];
    rc = submit_register(self, txn, submit, actor, now_ms, &outcome, id, master_id, code);
    Dispatch__Intake__RequestRecord record = DISPATCH__INTAKE__REQUEST_RECORD__INIT;
    record.ticket_id = id;
    record.reply_case = DISPATCH__INTAKE__REQUEST_RECORD__REPLY_SUBMIT;
    record.submit = &outcome;
    if (rc == 0)
        rc = request_store(self, txn, actor, submit->client_request_id, &record);
    if (rc < 0)
        return rc;
    Dispatch__Reply draft = DISPATCH__REPLY__INIT;
    draft.tag = request->tag;
    draft.body_case = DISPATCH__REPLY__BODY_SUBMIT;
    draft.submit = &outcome;
    return reply_finish(self, &draft, ret);
}

/* ---- get_ticket -------------------------------------------------------- */

static bool lookup_code_matches(const ticket_work_t *work, const char *code)
{
    size_t len = strlen(code);
    return work->lookup_code && strlen(work->lookup_code) == len && len > 0 &&
           sodium_memcmp(work->lookup_code, code, len) == 0;
}

/* What a caller sees with the lookup code: the ticket's progress, its
 * personal data masked (dispatch.proto's marks: phone, name, address, free
 * text), no idempotency key, and each step without its people or words. */
static void public_view(Dispatch__TicketView *view)
{
    mask_message(&view->base, PERSONAL_ALL);
    /* Cut in place: an empty field may be the library's shared "". */
    if (*view->ticket->client_request_id)
        *view->ticket->client_request_id = '\0';
    for (size_t i = 0; i < view->n_history; i++) {
        if (*view->history[i]->actor)
            *view->history[i]->actor = '\0';
        if (*view->history[i]->text)
            *view->history[i]->text = '\0';
    }
}

static int handle_get_ticket(intake_t *self, MDB_txn *txn, const Dispatch__Request *request,
                             const Dispatch__Reply **ret)
{
    const Dispatch__GetTicket *get = request->get_ticket;
    refusal_t refusal;
    if (refuse_text(&refusal, "get_ticket.ticket_id", get->ticket_id, LIMIT_ID, true) ||
        refuse_text(&refusal, "get_ticket.lookup_code", get->lookup_code, LIMIT_ID, false))
        return reply_refusal(self, request->tag, &refusal, ret);
    ticket_work_t work;
    int rc = intake_work_load(self, txn, get->ticket_id, &work);
    bool public = *get->lookup_code;
    if (public && (rc == -ENOENT || (rc == 0 && !lookup_code_matches(&work, get->lookup_code)))) {
        /* One answer for an unknown id and a wrong code: ids cannot be
         * probed with it. */
        if (rc == 0)
            intake_work_release(&work);
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "get_ticket.lookup_code",
               "no ticket '%s' with this lookup code", get->ticket_id);
        return reply_refusal(self, request->tag, &refusal, ret);
    }
    if (rc == -ENOENT) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "get_ticket.ticket_id",
               "no ticket '%s' at this intake", get->ticket_id);
        return reply_refusal(self, request->tag, &refusal, ret);
    }
    if (rc == -EBADMSG) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, "get_ticket.ticket_id",
               "the record of ticket '%s' is unreadable", get->ticket_id);
        return reply_refusal(self, request->tag, &refusal, ret);
    }
    if (rc < 0)
        return rc;

    Dispatch__HistoryEntry **history =
        calloc(work.history_count ? work.history_count : 1, sizeof(*history));
    size_t count = 0;
    rc = history ? 0 : -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < work.history_count; i++) {
        unsigned char key_bytes[HISTORY_KEY_SIZE];
        MDB_val key = {intake_history_key(work.ticket.id, i, key_bytes), key_bytes}, value;
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
        rc = reply_finish(self, &draft, ret);
    }
    if (rc == 0 && public)
        public_view(self->reply->ticket);
    for (size_t i = 0; i < count; i++)
        protobuf_c_message_free_unpacked(&history[i]->base, NULL);
    free(history);
    intake_work_release(&work);
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
    ProtobufCMessage *second;

    Dispatch__TicketReopened reopened = DISPATCH__TICKET_REOPENED__INIT;
    Dispatch__TicketClosed closed = DISPATCH__TICKET_CLOSED__INIT;
    if (reopen) {
        reopened.reason = callback->comment;
        reopened.reopen_count = ticket->reopen_count + 1;
        reopened.satisfaction = satisfaction;
        second = &reopened.base;
    } else {
        closed.satisfaction = satisfaction;
        closed.note =
            callback->unreachable ? "caller unreachable: closed without rating" : callback->comment;
        second = &closed.base;
    }
    int rc = intake_emit(self, txn, work, &called.base, actor, now_ms);
    if (rc == 0)
        rc = intake_emit(self, txn, work, second, actor, now_ms);
    if (rc == 0 && !reopen)
        rc = intake_duplicate_unindex(self, txn, work);
    return rc == 0 ? intake_work_save(self, txn, work) : rc;
}

static int handle_callback(intake_t *self, MDB_txn *txn, const Dispatch__Request *request,
                           const char *actor, int64_t now_ms, const Dispatch__Reply **ret)
{
    const Dispatch__Callback *callback = request->callback;
    refusal_t refusal;
    if (refuse_text(&refusal, "callback.client_request_id", callback->client_request_id, LIMIT_ID,
                    true))
        return reply_refusal(self, request->tag, &refusal, ret);

    bool replayed;
    int rc = replay_earlier(self, txn, request, actor, callback->client_request_id,
                            DISPATCH__INTAKE__REQUEST_RECORD__REPLY_CALLBACK, ret, &replayed);
    if (rc < 0 || replayed)
        return rc;

    if (check_callback(callback, &refusal))
        return reply_refusal(self, request->tag, &refusal, ret);
    ticket_work_t work;
    rc = intake_work_load(self, txn, callback->ticket_id, &work);
    if (rc == -ENOENT || rc == -EBADMSG) {
        refuse(&refusal,
               rc == -ENOENT ? DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND
                             : DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL,
               "callback.ticket_id",
               rc == -ENOENT ? "no ticket '%s' at this intake"
                             : "the record of ticket '%s' is unreadable",
               callback->ticket_id);
        return reply_refusal(self, request->tag, &refusal, ret);
    }
    if (rc < 0)
        return rc;
    if (work.ticket.state != DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED) {
        const char *state = words_suffix(&dispatch__ticket_state__descriptor, work.ticket.state);
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "callback.ticket_id",
               "ticket '%s' is %s; a callback needs RESOLVED", callback->ticket_id,
               state ? state : "?");
        intake_work_release(&work);
        return reply_refusal(self, request->tag, &refusal, ret);
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
        rc = request_store(self, txn, actor, callback->client_request_id, &record);
    if (rc == 0) {
        Dispatch__Reply draft = DISPATCH__REPLY__INIT;
        draft.tag = request->tag;
        draft.body_case = DISPATCH__REPLY__BODY_CALLBACK;
        draft.callback = &outcome;
        rc = reply_finish(self, &draft, ret);
    }
    intake_work_release(&work);
    return rc;
}

/* ---- city lists -------------------------------------------------------- */

static int fill_entries(const city_list_entry_t *entries, size_t count, const char *district,
                        Dispatch__ListEntry **items, Dispatch__ListEntry *memory, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        if (district && strcmp(entries[i].district, district) != 0)
            continue;
        Dispatch__ListEntry *entry = &memory[*n];
        dispatch__list_entry__init(entry);
        entry->id = (char *)entries[i].id;
        entry->name = (char *)entries[i].name;
        entry->district = (char *)entries[i].district;
        items[(*n)++] = entry;
    }
    return 0;
}

static int handle_city_lists(intake_t *self, const Dispatch__Request *request,
                             const Dispatch__Reply **ret)
{
    const Dispatch__CityListsQuery *query = request->city_lists;
    refusal_t refusal;
    if (refuse_text(&refusal, "city_lists.district", query->district, LIMIT_ID, false))
        return reply_refusal(self, request->tag, &refusal, ret);
    if (*query->district && !config_district_find(self->config, query->district)) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "city_lists.district",
               "city_lists.district '%s' is not a district of city %s", query->district,
               config_city(self->config));
        return reply_refusal(self, request->tag, &refusal, ret);
    }
    Dispatch__CityLists lists = DISPATCH__CITY_LISTS__INIT;
    const city_list_entry_t *categories = NULL, *areas = NULL;
    size_t category_count = self->lists ? city_lists_categories(self->lists, &categories) : 0;
    size_t area_count = self->lists ? city_lists_areas(self->lists, &areas) : 0;
    size_t total = category_count + area_count;
    Dispatch__ListEntry *memory = calloc(total ? total : 1, sizeof(*memory));
    Dispatch__ListEntry **items = calloc(total ? total : 1, sizeof(*items));
    if (!memory || !items) {
        free(memory);
        free(items);
        return -ENOMEM;
    }
    lists.checked = self->lists != NULL;
    lists.categories = items;
    fill_entries(categories, category_count, NULL, items, memory, &lists.n_categories);
    lists.areas = items + lists.n_categories;
    fill_entries(areas, area_count, *query->district ? query->district : NULL, lists.areas,
                 memory + lists.n_categories, &lists.n_areas);
    Dispatch__Reply draft = DISPATCH__REPLY__INIT;
    draft.tag = request->tag;
    draft.body_case = DISPATCH__REPLY__BODY_CITY_LISTS;
    draft.city_lists = &lists;
    int rc = reply_finish(self, &draft, ret);
    free(memory);
    free(items);
    return rc;
}

/* ---- links ------------------------------------------------------------- */

static int handle_links(intake_t *self, const Dispatch__Request *request,
                        const Dispatch__Reply **ret)
{
    refusal_t refusal;
    if (!self->bus) {
        refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE, "body",
               "this intake runs without a bus");
        return reply_refusal(self, request->tag, &refusal, ret);
    }
    if (request->body_case == DISPATCH__REQUEST__BODY_LINK_ACCEPT &&
        linkview_accept(self->bus, request->link_accept->peer, &refusal))
        return reply_refusal(self, request->tag, &refusal, ret);
    linkview_t links = {0};
    Dispatch__Reply draft = DISPATCH__REPLY__INIT;
    draft.tag = request->tag;
    draft.body_case = DISPATCH__REPLY__BODY_LINKS;
    int rc = linkview_fill(&links, self->store, self->bus, LINKVIEW_MAX_BYTES, &draft.links);
    if (rc == 0)
        rc = reply_finish(self, &draft, ret);
    linkview_free(&links);
    return rc;
}

/* ---- stats: the worker's figures, for metrics --------------------------- */

static int handle_stats(intake_t *self, MDB_txn *txn, const Dispatch__Request *request,
                        const Dispatch__Reply **ret)
{
    linkview_t links = {0};
    Dispatch__WorkerStats stats;
    int rc = workerstats_fill(&stats, self->store, self->bus, &links);
    if (rc == 0) {
        Dispatch__Reply draft = DISPATCH__REPLY__INIT;
        draft.tag = request->tag;
        draft.body_case = DISPATCH__REPLY__BODY_STATS;
        draft.stats = &stats;
        rc = reply_finish(self, &draft, ret);
    }
    linkview_free(&links);
    return rc;
}

/* ---- requests ---------------------------------------------------------- */

/* What the request asks of authz.h. A ticket asked for with its lookup
 * code is the public view, open to every key. */
static authz_call_t call_of(const Dispatch__Request *request)
{
    switch (request->body_case) {
    case DISPATCH__REQUEST__BODY_SUBMIT:
        return AUTHZ_SUBMIT;
    case DISPATCH__REQUEST__BODY_CALLBACK:
        return AUTHZ_CALLBACK;
    case DISPATCH__REQUEST__BODY_GET_TICKET:
        return *request->get_ticket->lookup_code ? AUTHZ_LOOKUP : AUTHZ_GET_TICKET;
    case DISPATCH__REQUEST__BODY_LINKS_QUERY:
        return AUTHZ_LINKS;
    case DISPATCH__REQUEST__BODY_LINK_ACCEPT:
        return AUTHZ_LINK_ACCEPT;
    case DISPATCH__REQUEST__BODY_CITY_LISTS:
        return AUTHZ_CITY_LISTS;
    case DISPATCH__REQUEST__BODY_STATS:
        return AUTHZ_STATS;
    case DISPATCH__REQUEST__BODY__NOT_SET:
        break;
    }
    return AUTHZ_LOOKUP; /* refused as BAD_REQUEST after */
}

int intake_handle_request(intake_t *self, MDB_txn *txn, const auth_actor_t *actor, const void *body,
                          size_t len, int64_t now_ms, const Dispatch__Reply **ret)
{
    *ret = NULL;
    refusal_t refusal;
    Dispatch__Request *request = NULL;
    uint64_t tag;
    if (decode_request(body, len, &request, &tag, &refusal)) {
        int rc = reply_refusal(self, tag, &refusal, ret);
        return rc < 0 ? rc : REFUSED;
    }

    int rc = 0;
    char buf[LIMIT_ID + 1];
    const char *who;
    if (refuse_text(&refusal, "actor", request->actor, LIMIT_ID, false) ||
        authz_actor(&refusal, actor, request->actor, DEFAULT_ACTOR, buf, &who) ||
        authz_key(&refusal, call_of(request), actor)) {
        rc = reply_refusal(self, request->tag, &refusal, ret);
    } else {
        switch (request->body_case) {
        case DISPATCH__REQUEST__BODY_SUBMIT:
            rc = handle_submit(self, txn, request, who, now_ms, ret);
            break;
        case DISPATCH__REQUEST__BODY_GET_TICKET:
            rc = handle_get_ticket(self, txn, request, ret);
            if (rc == 0 && !authz_key_may(AUTHZ_SEE_CALLER, actor) &&
                (*ret)->body_case == DISPATCH__REPLY__BODY_TICKET)
                mask_message(&self->reply->base, PERSONAL_PHONE | PERSONAL_NAME);
            break;
        case DISPATCH__REQUEST__BODY_CALLBACK:
            rc = handle_callback(self, txn, request, who, now_ms, ret);
            break;
        case DISPATCH__REQUEST__BODY_LINKS_QUERY:
        case DISPATCH__REQUEST__BODY_LINK_ACCEPT:
            rc = handle_links(self, request, ret);
            break;
        case DISPATCH__REQUEST__BODY_CITY_LISTS:
            rc = handle_city_lists(self, request, ret);
            break;
        case DISPATCH__REQUEST__BODY_STATS:
            rc = handle_stats(self, txn, request, ret);
            break;
        case DISPATCH__REQUEST__BODY__NOT_SET:
            refuse(&refusal, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body",
                   "the request holds none of submit, get_ticket, callback");
            rc = reply_refusal(self, request->tag, &refusal, ret);
            break;
        }
    }
    protobuf_c_message_free_unpacked(&request->base, NULL);
    if (rc < 0) {
        intake_reply_drop(self);
        *ret = NULL;
    }
    return rc;
}

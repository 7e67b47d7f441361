/* router_actions.c: UnitAction from the unit endpoint. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "authz.h"
#include "codec.h"
#include "record.h"
#include "router_internal.h"

#define ACTION_KEY_SIZE (2 * LIMIT_ID + 2)

typedef Dispatch__Router__RouterTicket record_t;

/* What one action is working on. */
typedef struct action {
    router_t *router;
    MDB_txn *txn;
    const Dispatch__UnitAction *request;
    const char *unit;
    record_t *record;
    bool lead; /* the unit is the lead (else an assisting unit) */
    int64_t now;
    refusal_t err;
} action_t;

static const char *action_name(Dispatch__UnitAction__BodyCase body)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field(&dispatch__unit_action__descriptor, (int)body);
    return field ? field->name : "action";
}

/* ------------------------------------------------------------ validation */

static int check_reason(const char *name, Dispatch__ReturnReason code, const char *reason,
                        const char *suggested, refusal_t *err)
{
    char field[64];
    snprintf(field, sizeof(field), "%s.reason_code", name);
    if (code == DISPATCH__RETURN_REASON__RETURN_REASON_UNSPECIFIED)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, field, "%s is required",
                      field);
    snprintf(field, sizeof(field), "%s.reason", name);
    if (refuse_text(err, field, reason, LIMIT_TEXT, true))
        return REFUSED;
    snprintf(field, sizeof(field), "%s.suggested_unit", name);
    return refuse_text(err, field, suggested, LIMIT_ID, false);
}

static int check_body(const Dispatch__UnitAction *request, int64_t now, refusal_t *err)
{
    switch (request->body_case) {
    case DISPATCH__UNIT_ACTION__BODY_SIGN_FOR:
        return refuse_text(err, "sign_for.note", request->sign_for->note, LIMIT_TEXT, false);
    case DISPATCH__UNIT_ACTION__BODY_RETURN_TICKET:
        return check_reason("return_ticket", request->return_ticket->reason_code,
                            request->return_ticket->reason, request->return_ticket->suggested_unit,
                            err);
    case DISPATCH__UNIT_ACTION__BODY_OBJECTION:
        return check_reason("objection", request->objection->reason_code,
                            request->objection->reason, request->objection->suggested_unit, err);
    case DISPATCH__UNIT_ACTION__BODY_PROGRESS:
        return refuse_text(err, "progress.text", request->progress->text, LIMIT_TEXT, true);
    case DISPATCH__UNIT_ACTION__BODY_RESOLVE:
        if (request->resolve->result == DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_UNSPECIFIED)
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "resolve.result",
                          "resolve.result is required");
        return refuse_text(err, "resolve.text", request->resolve->text, LIMIT_LONG_TEXT, true);
    case DISPATCH__UNIT_ACTION__BODY_EXTENSION_REQUEST: {
        const Dispatch__ExtensionRequest *ext = request->extension_request;
        if (!ext->requested_deadline && !ext->extra_working_days)
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                          "extension_request.requested_deadline",
                          "give requested_deadline or extra_working_days");
        if (ext->requested_deadline && ext->extra_working_days)
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                          "extension_request.extra_working_days",
                          "give requested_deadline or extra_working_days, not both");
        if (ext->requested_deadline && ext->requested_deadline <= now)
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                          "extension_request.requested_deadline",
                          "the requested deadline is not in the future");
        if (ext->extra_working_days > 366)
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                          "extension_request.extra_working_days",
                          "%u working days is more than a year", ext->extra_working_days);
        return refuse_text(err, "extension_request.reason", ext->reason, LIMIT_TEXT, true);
    }
    case DISPATCH__UNIT_ACTION__BODY_ACK: /* handled before any ticket is read */
    case DISPATCH__UNIT_ACTION__BODY__NOT_SET:
        break;
    }
    return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body", "no action set");
}

/* ------------------------------------------------------------ actions */

static int refuse_state(action_t *a, const char *allowed)
{
    return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "ticket_id",
                  "%s is not allowed in state %s (only %s)", action_name(a->request->body_case),
                  router_state_name(a->record->ticket->state), allowed);
}

static int lead_only(action_t *a)
{
    return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "unit_id",
                  "only the lead unit (%s) may %s ticket %s", a->record->ticket->assigned_unit,
                  action_name(a->request->body_case), a->record->ticket->id);
}

static bool state_is(const action_t *a, Dispatch__TicketState one, Dispatch__TicketState two)
{
    Dispatch__TicketState state = a->record->ticket->state;
    return state == one || state == two;
}

static int emit(action_t *a, ProtobufCMessage *body)
{
    return router_emit(a->router, a->txn, a->record->ticket, a->unit, a->now, body);
}

static int do_sign_for(action_t *a)
{
    Dispatch__Ticket *ticket = a->record->ticket;
    record_t *record = a->record;
    if (!a->lead) {
        if (!state_is(a, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED,
                      DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED))
            return refuse_state(a, "DISPATCHED or ACCEPTED");
        if (record_strings_contain(record->signed_by, record->n_signed_by, a->unit))
            return 0;
        int rc = record_strings_append(&record->signed_by, &record->n_signed_by, a->unit);
        return rc < 0 ? rc : router_save(a->router, a->txn, record, a->now);
    }
    if (ticket->state != DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED)
        return refuse_state(a, "DISPATCHED");
    int rc = record_strings_append(&record->signed_by, &record->n_signed_by, a->unit);
    Dispatch__TicketAccepted accepted = DISPATCH__TICKET_ACCEPTED__INIT;
    accepted.unit_id = (char *)a->unit;
    if (rc == 0)
        rc = emit(a, &accepted.base);
    return rc < 0 ? rc : router_save(a->router, a->txn, record, a->now);
}

static bool within_return_window(const action_t *a)
{
    return a->now - a->record->ticket->dispatched_at <= a->router->options.return_window_ms;
}

/* The next unit after a return: the suggestion, the category default's
 * lead, the returning unit's parent (not city level); each must be usable
 * and must not have returned the ticket before. *next is "" when none. */
static int next_candidate(action_t *a, const char *suggested, char *next)
{
    router_t *router = a->router;
    record_t *record = a->record;
    char candidates[3][LIMIT_ID + 1] = {"", "", ""};
    snprintf(candidates[0], sizeof(candidates[0]), "%s", suggested);
    Dispatch__RoutingRule *rule;
    int rc = registry_rule_get(router->registry, a->txn, record->ticket->category, "", &rule);
    if (rc == 0) {
        snprintf(candidates[1], sizeof(candidates[1]), "%s", rule->lead_unit);
        dispatch__routing_rule__free_unpacked(rule, NULL);
    } else if (rc != -ENOENT) {
        return rc;
    }
    Dispatch__Unit *unit;
    rc = registry_unit_get(router->registry, a->txn, a->unit, &unit);
    if (rc == 0) {
        snprintf(candidates[2], sizeof(candidates[2]), "%s", unit->parent_id);
        dispatch__unit__free_unpacked(unit, NULL);
        Dispatch__Unit *parent;
        rc = registry_unit_get(router->registry, a->txn, candidates[2], &parent);
        if (rc == 0) {
            if (parent->level == DISPATCH__UNIT_LEVEL__UNIT_LEVEL_CITY)
                candidates[2][0] = '\0';
            dispatch__unit__free_unpacked(parent, NULL);
        }
    }
    if (rc < 0 && rc != -ENOENT)
        return rc;

    *next = '\0';
    for (int i = 0; i < 3; i++) {
        const char *id = candidates[i];
        if (!*id || strcmp(id, a->unit) == 0 ||
            record_strings_contain(record->returned_by, record->n_returned_by, id))
            continue;
        bool usable;
        rc = registry_unit_usable(router->registry, a->txn, id, &usable);
        if (rc < 0)
            return rc;
        if (usable) {
            memcpy(next, id, strlen(id) + 1);
            return 0;
        }
    }
    return 0;
}

static int do_return(action_t *a)
{
    const Dispatch__ReturnTicket *request = a->request->return_ticket;
    router_t *router = a->router;
    record_t *record = a->record;
    Dispatch__Ticket *ticket = record->ticket;
    if (!a->lead)
        return lead_only(a);
    if (!state_is(a, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED,
                  DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED))
        return refuse_state(a, "DISPATCHED or ACCEPTED");
    if (!within_return_window(a))
        return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "return_ticket",
                      "the return window (%lld h after dispatch) has passed: the "
                      "ticket is the unit's own; file an Objection to dispute it",
                      (long long)(router->options.return_window_ms / 3600000));

    Dispatch__TicketReturned returned = DISPATCH__TICKET_RETURNED__INIT;
    returned.unit_id = (char *)a->unit;
    returned.reason_code = request->reason_code;
    returned.reason = request->reason;
    int rc = emit(a, &returned.base);
    if (rc == 0)
        rc = record_strings_append(&record->returned_by, &record->n_returned_by, a->unit);
    char reason[LIMIT_TEXT + 1];
    snprintf(reason, sizeof(reason), "returned by this unit: %s", request->reason);
    if (rc == 0)
        rc = router_deliver_withdrawn(router, a->txn, a->unit, ticket->id, reason, a->now);
    if (rc == 0)
        rc = tickets_unit_delete(router->tickets, a->txn, a->unit, ticket->id);
    if (rc == 0)
        rc = record_string_set(&ticket->assigned_unit, "");
    if (rc < 0)
        return rc;

    char next[LIMIT_ID + 1] = "";
    if (ticket->return_count < router->options.max_returns) {
        rc = next_candidate(a, request->suggested_unit, next);
        if (rc < 0)
            return rc;
    }
    if (!*next) {
        char note[LIMIT_TEXT + 1];
        snprintf(note, sizeof(note), "%s (returned %u times)", request->reason,
                 ticket->return_count);
        return router_triage(router, a->txn, record, DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_RETURNED,
                             a->unit, note, a->unit, a->now);
    }

    Dispatch__TicketRerouted rerouted = DISPATCH__TICKET_REROUTED__INIT;
    rerouted.from_unit = (char *)a->unit;
    rerouted.to_unit = next;
    rerouted.reason = request->reason;
    rc = router_emit(router, a->txn, ticket, ROUTER_ACTOR, a->now, &rerouted.base);
    if (rc < 0)
        return rc;
    /* The assisting units stay, but the new lead is not its own assistant. */
    char assisting_ids[LIMIT_UNITS][LIMIT_ID + 1];
    char *assisting[LIMIT_UNITS];
    size_t count = 0;
    for (size_t i = 0; i < ticket->n_assisting_units && count < LIMIT_UNITS; i++) {
        if (strcmp(ticket->assisting_units[i], next) == 0)
            continue;
        snprintf(assisting_ids[count], LIMIT_ID + 1, "%s", ticket->assisting_units[i]);
        assisting[count] = assisting_ids[count];
        count++;
    }
    router_assignment_t assignment = {
        .lead = next,
        .assisting = assisting,
        .assisting_count = count,
        .cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REROUTE,
        .note = request->reason,
        .actor = ROUTER_ACTOR,
    };
    return router_assign(router, a->txn, record, &assignment, a->now);
}

static int do_objection(action_t *a)
{
    const Dispatch__Objection *request = a->request->objection;
    if (!a->lead)
        return lead_only(a);
    if (!state_is(a, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED,
                  DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED))
        return refuse_state(a, "DISPATCHED or ACCEPTED");
    if (within_return_window(a))
        return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "objection",
                      "the ticket is within its return window (%lld h after "
                      "dispatch): return it instead",
                      (long long)(a->router->options.return_window_ms / 3600000));
    char note[LIMIT_TEXT + 1];
    if (*request->suggested_unit)
        snprintf(note, sizeof(note), "%s (suggested unit: %s)", request->reason,
                 request->suggested_unit);
    else
        snprintf(note, sizeof(note), "%s", request->reason);
    return router_triage(a->router, a->txn, a->record,
                         DISPATCH__TRIAGE_CAUSE__TRIAGE_CAUSE_OBJECTION, a->unit, note, a->unit,
                         a->now);
}

static int do_progress(action_t *a)
{
    if (!state_is(a, DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED,
                  DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED))
        return refuse_state(a, "DISPATCHED or ACCEPTED");
    Dispatch__ProgressReported progress = DISPATCH__PROGRESS_REPORTED__INIT;
    progress.unit_id = (char *)a->unit;
    progress.text = a->request->progress->text;
    int rc = emit(a, &progress.base);
    return rc < 0 ? rc : router_save(a->router, a->txn, a->record, a->now);
}

static int do_resolve(action_t *a)
{
    const Dispatch__Resolve *request = a->request->resolve;
    Dispatch__Ticket *ticket = a->record->ticket;
    if (!a->lead)
        return lead_only(a);
    if (ticket->state != DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED)
        return refuse_state(a, "ACCEPTED: sign for it first");
    Dispatch__TicketResolved resolved = DISPATCH__TICKET_RESOLVED__INIT;
    resolved.unit_id = (char *)a->unit;
    resolved.result = request->result;
    resolved.text = request->text;
    int rc = emit(a, &resolved.base);
    return rc < 0 ? rc : router_save(a->router, a->txn, a->record, a->now);
}

static int do_extension(action_t *a)
{
    const Dispatch__ExtensionRequest *request = a->request->extension_request;
    const Dispatch__Ticket *ticket = a->record->ticket;
    if (!a->lead)
        return lead_only(a);
    if (ticket->state != DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED)
        return refuse_state(a, "ACCEPTED");
    if (ticket->deadline_handle && a->now > ticket->deadline_handle)
        return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "extension_request",
                      "the handling deadline has passed: ask before it");
    if (request->requested_deadline && ticket->deadline_handle &&
        request->requested_deadline <= ticket->deadline_handle)
        return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                      "extension_request.requested_deadline",
                      "the requested deadline is not after the current one");
    Dispatch__ExtensionRequested requested = DISPATCH__EXTENSION_REQUESTED__INIT;
    requested.unit_id = (char *)a->unit;
    requested.request_id = a->request->action_id;
    requested.requested_deadline = request->requested_deadline;
    requested.extra_working_days = request->extra_working_days;
    requested.reason = request->reason;
    int rc = emit(a, &requested.base);
    return rc < 0 ? rc : router_save(a->router, a->txn, a->record, a->now);
}

static int apply_action(action_t *a)
{
    switch (a->request->body_case) {
    case DISPATCH__UNIT_ACTION__BODY_SIGN_FOR:
        return do_sign_for(a);
    case DISPATCH__UNIT_ACTION__BODY_RETURN_TICKET:
        return do_return(a);
    case DISPATCH__UNIT_ACTION__BODY_OBJECTION:
        return do_objection(a);
    case DISPATCH__UNIT_ACTION__BODY_PROGRESS:
        return do_progress(a);
    case DISPATCH__UNIT_ACTION__BODY_RESOLVE:
        return do_resolve(a);
    case DISPATCH__UNIT_ACTION__BODY_EXTENSION_REQUEST:
        return do_extension(a);
    case DISPATCH__UNIT_ACTION__BODY_ACK: /* check_body() refused these */
    case DISPATCH__UNIT_ACTION__BODY__NOT_SET:
        break;
    }
    return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body", "no action set");
}

/* ------------------------------------------------------------ entry */

/* Ids echoed in a result: an id over its limit is not echoed (a cut
 * could split a UTF-8 character). */
static void copy_id(char *out, const char *id)
{
    snprintf(out, LIMIT_ID + 1, "%s", id && strlen(id) <= LIMIT_ID ? id : "");
}

static void set_result(router_t *self, Dispatch__UnitDelivery *result, const char *unit,
                       const char *ticket_id, const char *action_id, int64_t now)
{
    router_reply_t *reply = &self->reply;
    copy_id(reply->unit_id, unit);
    copy_id(reply->ticket_id, ticket_id);
    copy_id(reply->action_id, action_id);
    dispatch__action_result__init(&reply->action_result);
    reply->action_result.action_id = reply->action_id;
    dispatch__unit_delivery__init(result);
    result->unit_id = reply->unit_id;
    result->ticket_id = reply->ticket_id;
    result->at = now;
    result->body_case = DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT;
    result->action_result = &reply->action_result;
}

static void set_error(router_t *self, const refusal_t *err)
{
    router_reply_error(self, err, &self->reply.action_result.error);
}

/* The unit part of a routing id ("unit" or "unit/session") equals unit_id. */
static bool peer_is_unit(const void *peer, size_t peer_len, const char *unit_id)
{
    const char *bytes = peer;
    const char *slash = memchr(bytes, '/', peer_len);
    size_t len = slash ? (size_t)(slash - bytes) : peer_len;
    return len == strlen(unit_id) && memcmp(bytes, unit_id, len) == 0;
}

static int recorded_result(router_t *self, MDB_txn *txn, const char *key, size_t key_len)
{
    Dispatch__Router__ActionRecord *stored;
    int rc = record_get(txn, self->actions, key, key_len,
                        &dispatch__router__action_record__descriptor, (ProtobufCMessage **)&stored);
    if (rc < 0)
        return rc;
    if (stored->result)
        self->reply.action_result.state = stored->result->state;
    dispatch__router__action_record__free_unpacked(stored, NULL);
    return 0;
}

/* Checks done before the ticket is read: ids, the peer, the unit. */
static int check_request(router_t *self, MDB_txn *txn, const Dispatch__UnitAction *request,
                         const void *peer, size_t peer_len, const auth_actor_t *actor,
                         refusal_t *err)
{
    if (refuse_text(err, "unit_id", request->unit_id, LIMIT_ID, true))
        return REFUSED;
    if (actor && (authz_key(err, AUTHZ_UNIT_ACTION, actor) ||
                  authz_unit(err, "unit_id", actor, "", request->unit_id)))
        return REFUSED;
    if (!peer_is_unit(peer, peer_len, request->unit_id))
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "unit_id",
                      "unit_id %s is not the unit of this connection's routing id",
                      request->unit_id);
    if (request->body_case == DISPATCH__UNIT_ACTION__BODY__NOT_SET)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body", "no action set");
    Dispatch__Unit *unit;
    int rc = registry_unit_get(self->registry, txn, request->unit_id, &unit);
    if (rc == -ENOENT)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "unit_id",
                      "unit %s is not registered with the router of %s", request->unit_id,
                      self->district);
    if (rc < 0)
        return rc;
    dispatch__unit__free_unpacked(unit, NULL);
    if (request->body_case == DISPATCH__UNIT_ACTION__BODY_ACK)
        return 0;
    if (refuse_text(err, "ticket_id", request->ticket_id, LIMIT_ID, true) ||
        refuse_text(err, "action_id", request->action_id, LIMIT_ID, true))
        return REFUSED;
    return 0;
}

static int act(action_t *a, const char *key, size_t key_len)
{
    router_t *self = a->router;
    const Dispatch__UnitAction *request = a->request;
    int rc = tickets_get(self->tickets, a->txn, request->ticket_id, &a->record);
    if (rc == -ENOENT)
        return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "ticket_id",
                      "ticket %s is not known to the router of %s", request->ticket_id,
                      self->district);
    if (rc < 0)
        return rc;
    const Dispatch__Ticket *ticket = a->record->ticket;
    a->lead = strcmp(ticket->assigned_unit, a->unit) == 0;
    bool assisting =
        record_strings_contain(ticket->assisting_units, ticket->n_assisting_units, a->unit);
    self->reply.action_result.state = ticket->state;
    if (!a->lead && !assisting)
        return refuse(&a->err, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "ticket_id",
                      "ticket %s is not assigned to unit %s", ticket->id, a->unit);
    rc = apply_action(a);
    if (rc != 0)
        return rc;
    self->reply.action_result.state = a->record->ticket->state;

    Dispatch__Router__ActionRecord stored = DISPATCH__ROUTER__ACTION_RECORD__INIT;
    stored.result = &self->reply.action_result;
    stored.ticket_id = a->record->ticket->id;
    stored.at = a->now;
    return record_put(a->txn, self->actions, key, key_len, &stored.base, 0);
}

int router_handle_unit_action(router_t *self, MDB_txn *txn, const void *peer, size_t peer_len,
                              const auth_actor_t *actor, const void *body, size_t len,
                              int64_t now_ms, Dispatch__UnitDelivery *result)
{
    router_reply_reset(self);
    Dispatch__UnitAction *request = NULL;
    char detail[256];
    action_t a = {.router = self, .txn = txn, .now = now_ms};
    int rc = codec_decode(&dispatch__unit_action__descriptor, body, len, ROUTER_MAX_REQUEST,
                          (ProtobufCMessage **)&request, detail, sizeof(detail));
    if (rc < 0) {
        set_result(self, result, "", "", "", now_ms);
        refuse_decode(&a.err, rc, detail, len, ROUTER_MAX_REQUEST, "dispatch.UnitAction");
        set_error(self, &a.err);
        return REFUSED;
    }
    a.request = request;
    a.unit = request->unit_id;
    set_result(self, result, request->unit_id, request->ticket_id, request->action_id, now_ms);

    rc = check_request(self, txn, request, peer, peer_len, actor, &a.err);
    if (rc == 0 && request->body_case == DISPATCH__UNIT_ACTION__BODY_ACK) {
        rc = deliveries_ack(self->deliveries, txn, request->unit_id, request->ack->seq, peer,
                            peer_len);
        dispatch__unit_delivery__init(result); /* a valid ack gets no answer */
        goto done;
    }
    char key[ACTION_KEY_SIZE];
    size_t key_len = 0;
    if (rc == 0) {
        key_len = record_key2(key, sizeof(key), request->unit_id, request->action_id);
        rc = recorded_result(self, txn, key, key_len);
        if (rc == 0)
            goto done; /* a repeat: the recorded result, nothing applied */
        if (rc == -ENOENT)
            rc = check_body(request, now_ms, &a.err);
    }
    if (rc == 0)
        rc = act(&a, key, key_len);
    if (rc == REFUSED) {
        set_error(self, &a.err);
        rc = 0;
    }

done:
    if (a.record)
        dispatch__router__router_ticket__free_unpacked(a.record, NULL);
    protobuf_c_message_free_unpacked(&request->base, NULL);
    return rc;
}

/* escalation_requests.c: AdminRequest from the admin endpoint: supervisors'
 * extension decisions, leaders' sign-offs, and the work queues. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "codec.h"
#include "escalation_internal.h"
#include "words.h"

/* An extension reaches at most this far ahead. */
#define MAX_EXTENSION_MS (366LL * CALENDAR_DAY_MS)

typedef admin_call_t admin_t;

/* The escalation serving the call. */
static escalation_t *self_of(const admin_t *a)
{
    return a->worker;
}

/* A decision on a case: its event goes out in the decider's name, the case
 * is saved, the reply says done. */
static int decided(admin_t *a, Dispatch__Escalation__Case *record, ProtobufCMessage *body)
{
    int rc = escalation_emit(self_of(a), a->txn, record, a->request->actor_id, a->now, body);
    if (rc == 0)
        rc = escalation_save(self_of(a), a->txn, record, a->now);
    if (rc == 0)
        admin_call_done(a, record->ticket_id, record->state);
    return rc;
}

static int load_case(admin_t *a, const char *ticket_id, const char *field,
                     Dispatch__Escalation__Case **record)
{
    int rc = cases_get(self_of(a)->cases, a->txn, ticket_id, record);
    if (rc == -ENOENT || rc == -EPROTO)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, field,
                      "ticket %s is not followed by this escalation (district %s)", ticket_id,
                      self_of(a)->district);
    return rc;
}

/* ---------------------------------------------------------- extensions */

/* The new handling deadline a grant sets, or a refusal. */
static int granted_deadline(admin_t *a, const Dispatch__Escalation__Case *record,
                            const Dispatch__ExtensionDecision *decision, int64_t *deadline)
{
    const Dispatch__Escalation__PendingExtension *pending = record->extension;
    int64_t current = record->handle->deadline;
    if (decision->new_deadline)
        *deadline = decision->new_deadline;
    else if (pending->requested_deadline)
        *deadline = pending->requested_deadline;
    else if (pending->extra_working_days)
        *deadline =
            calendar_add_working_days(self_of(a)->calendar, current, pending->extra_working_days);
    else
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                      "extension_decision.new_deadline",
                      "the request names no deadline: set new_deadline");
    if (*deadline <= current || *deadline <= a->now)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                      "extension_decision.new_deadline",
                      "the new deadline must be after the current one (%" PRId64 ") and after now",
                      current);
    if (*deadline - a->now > MAX_EXTENSION_MS)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                      "extension_decision.new_deadline",
                      "the new deadline is more than 366 days ahead");
    uint32_t max = record->rule ? record->rule->max_extensions : 0;
    if (max && record->extension_count >= max)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "extension_decision",
                      "ticket %s has had %u extensions, the most the deadline table "
                      "allows",
                      record->ticket_id, record->extension_count);
    return 0;
}

static int decide(admin_t *a, Dispatch__Escalation__Case *record,
                  const Dispatch__ExtensionDecision *decision)
{
    if (!record->extension || strcmp(record->extension->request_id, decision->request_id) != 0) {
        if (strcmp(record->decided_request_id, decision->request_id) == 0) {
            /* A retry of a decision already applied. */
            admin_call_done(a, record->ticket_id, record->state);
            return 0;
        }
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND,
                      "extension_decision.request_id",
                      "no pending extension request %s on ticket %s", decision->request_id,
                      record->ticket_id);
    }
    if (!escalation_case_open(record))
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT,
                      "extension_decision.ticket_id", "ticket %s is %s", record->ticket_id,
                      words_suffix(&dispatch__ticket_state__descriptor, record->state));
    ProtobufCMessage *body;
    Dispatch__ExtensionGranted granted = DISPATCH__EXTENSION_GRANTED__INIT;
    Dispatch__ExtensionRefused refused = DISPATCH__EXTENSION_REFUSED__INIT;
    if (decision->granted) {
        int64_t deadline = 0;
        int rc = granted_deadline(a, record, decision, &deadline);
        if (rc != 0)
            return rc;
        escalation_move_handle_deadline(self_of(a), record, deadline, a->now);
        record->extension_count++;
        granted.request_id = decision->request_id;
        granted.new_deadline_handle = deadline;
        granted.note = decision->note;
        body = &granted.base;
    } else {
        refused.request_id = decision->request_id;
        refused.note = decision->note;
        body = &refused.base;
    }
    int rc = record_string_set(&record->decided_request_id, decision->request_id);
    if (rc == 0)
        rc = cases_set_extension(record, NULL, 0);
    return rc < 0 ? rc : decided(a, record, body);
}

static int extension_decision(admin_t *a)
{
    const Dispatch__ExtensionDecision *decision = a->request->extension_decision;
    if (admin_require(a, AUTHZ_DECIDE_EXTENSION) ||
        refuse_text(a->err, "extension_decision.ticket_id", decision->ticket_id, LIMIT_ID, true) ||
        refuse_text(a->err, "extension_decision.request_id", decision->request_id, LIMIT_ID,
                    true) ||
        refuse_text(a->err, "extension_decision.note", decision->note, LIMIT_TEXT, false))
        return REFUSED;
    if (!decision->granted && decision->new_deadline)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                      "extension_decision.new_deadline", "a refusal sets no new deadline");
    if (decision->new_deadline < 0)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE,
                      "extension_decision.new_deadline", "a time is not negative");
    Dispatch__Escalation__Case *record;
    int rc = load_case(a, decision->ticket_id, "extension_decision.ticket_id", &record);
    if (rc != 0)
        return rc;
    rc = decide(a, record, decision);
    dispatch__escalation__case__free_unpacked(record, NULL);
    return rc;
}

/* ---------------------------------------------------------- sign-off */

static int sign_off_report(admin_t *a, const Dispatch__LeaderSignOff *sign_off, const char *leader)
{
    escalation_t *self = self_of(a);
    MDB_val k = {strlen(sign_off->report_id), sign_off->report_id}, v;
    int rc = mdb_get(a->txn, self->reports, &k, &v);
    if (rc == 0) {
        Dispatch__Escalation__ReportSignOff *last =
            dispatch__escalation__report_sign_off__unpack(NULL, v.mv_size, v.mv_data);
        bool repeat = last && strcmp(last->leader, leader) == 0 &&
                      strcmp(last->instruction, sign_off->instruction) == 0;
        if (last)
            dispatch__escalation__report_sign_off__free_unpacked(last, NULL);
        if (repeat) {
            admin_call_done(a, "", DISPATCH__TICKET_STATE__TICKET_STATE_UNSPECIFIED);
            return 0;
        }
    } else if (rc != MDB_NOTFOUND) {
        return store_rc(rc);
    }
    Dispatch__Escalation__ReportSignOff record = DISPATCH__ESCALATION__REPORT_SIGN_OFF__INIT;
    record.leader = (char *)leader;
    record.instruction = sign_off->instruction;
    record.at = a->now;
    size_t size = dispatch__escalation__report_sign_off__get_packed_size(&record);
    v = (MDB_val){size, NULL};
    rc = store_rc(mdb_put(a->txn, self->reports, &k, &v, MDB_RESERVE));
    if (rc < 0)
        return rc;
    dispatch__escalation__report_sign_off__pack(&record, v.mv_data);

    Dispatch__SignedOff signed_off = DISPATCH__SIGNED_OFF__INIT;
    signed_off.leader = (char *)leader;
    signed_off.report_id = sign_off->report_id;
    signed_off.instruction = sign_off->instruction;
    rc = escalation_emit_report(self, a->txn, a->request->actor_id, a->now, &signed_off.base);
    if (rc == 0)
        admin_call_done(a, "", DISPATCH__TICKET_STATE__TICKET_STATE_UNSPECIFIED);
    return rc;
}

static int sign_off_ticket(admin_t *a, const Dispatch__LeaderSignOff *sign_off, const char *leader)
{
    Dispatch__Escalation__Case *record;
    int rc = load_case(a, sign_off->ticket_id, "leader_sign_off.ticket_id", &record);
    if (rc != 0)
        return rc;
    if (!escalation_case_open(record)) {
        rc = refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT, "leader_sign_off.ticket_id",
                    "ticket %s is %s: nothing to instruct", record->ticket_id,
                    words_suffix(&dispatch__ticket_state__descriptor, record->state));
    } else if (strcmp(record->leader, leader) == 0 &&
               strcmp(record->instruction, sign_off->instruction) == 0) {
        admin_call_done(a, record->ticket_id, record->state); /* a retry: recorded already */
    } else {
        record->signed_off_at = a->now;
        rc = record_string_set(&record->leader, leader);
        if (rc == 0)
            rc = record_string_set(&record->instruction, sign_off->instruction);
        if (rc == 0 && !record->sign_off_since) {
            /* Instructed without being queued: tracked to completion all the same. */
            char reason[128];
            snprintf(reason, sizeof(reason), "instruction by %s", leader);
            record->sign_off_since = a->now;
            rc = record_string_set(&record->sign_off_reason, reason);
        }
        Dispatch__SignedOff signed_off = DISPATCH__SIGNED_OFF__INIT;
        signed_off.leader = (char *)leader;
        signed_off.instruction = sign_off->instruction;
        if (rc == 0)
            rc = decided(a, record, &signed_off.base);
    }
    dispatch__escalation__case__free_unpacked(record, NULL);
    return rc;
}

static int leader_sign_off(admin_t *a)
{
    const Dispatch__LeaderSignOff *sign_off = a->request->leader_sign_off;
    if (admin_require(a, AUTHZ_SIGN_OFF) ||
        refuse_text(a->err, "leader_sign_off.ticket_id", sign_off->ticket_id, LIMIT_ID, false) ||
        refuse_text(a->err, "leader_sign_off.report_id", sign_off->report_id, LIMIT_ID, false) ||
        refuse_text(a->err, "leader_sign_off.leader", sign_off->leader, LIMIT_ID, false) ||
        refuse_text(a->err, "leader_sign_off.instruction", sign_off->instruction, LIMIT_TEXT, true))
        return REFUSED;
    bool ticket = *sign_off->ticket_id, report = *sign_off->report_id;
    if (ticket == report)
        return refuse(a->err,
                      ticket ? DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE
                             : DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                      "leader_sign_off.ticket_id", "exactly one of ticket_id and report_id");
    const char *leader = *sign_off->leader ? sign_off->leader : a->request->actor_id;
    if (strcmp(leader, a->request->actor_id) != 0)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "leader_sign_off.leader",
                      "a leader signs off in their own name (actor %s, leader %s)",
                      a->request->actor_id, leader);
    return ticket ? sign_off_ticket(a, sign_off, leader) : sign_off_report(a, sign_off, leader);
}

/* ---------------------------------------------------------- queues */

typedef struct page {
    admin_t *admin;
    Dispatch__QueueKind kind;
} page_t;

/* "sign for: 12 min left" / "handling: overdue by 2 h 5 min" */
static int64_t describe_clock(const escalation_t *self, const Dispatch__Escalation__Case *record,
                              int64_t now, char *text, size_t len)
{
    const Dispatch__Escalation__Track *track =
        record->sign_for->active ? record->sign_for : record->handle;
    const char *name = track == record->sign_for ? "sign for" : "close";
    char span[32], at[32];
    if (!track->active) {
        snprintf(text, len, "no deadline running");
        return 0;
    }
    calendar_format(self->calendar, track->deadline, at, sizeof(at));
    if (track == record->handle && record->paused_at) {
        char since[32];
        calendar_format(self->calendar, record->paused_at, since, sizeof(since));
        snprintf(text, len, "clock paused since %s (deadline %s before the pause)", since, at);
    } else if (track->deadline > now) {
        escalation_format_duration(track->deadline - now, span, sizeof(span));
        snprintf(text, len, "%s by %s: %s left", name, at, span);
    } else {
        escalation_format_duration(now - track->deadline, span, sizeof(span));
        snprintf(text, len, "%s by %s: overdue by %s", name, at, span);
    }
    return track->deadline;
}

static void fill_item(const escalation_t *self, admin_entry_t *entry, Dispatch__QueueKind kind,
                      int64_t since, int64_t now)
{
    const Dispatch__Escalation__Case *record = (const Dispatch__Escalation__Case *)entry->record;
    Dispatch__QueueItem *item = &entry->item;
    item->ticket_id = record->ticket_id;
    item->district = record->district;
    item->category = record->category;
    item->area = record->area;
    item->kind = record->kind;
    item->urgency = record->urgency;
    item->state = record->state;
    item->unit_id = record->unit_id;
    item->supervision = record->supervision;
    item->since = since;
    char at[32];
    switch (kind) {
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION: {
        const Dispatch__Escalation__PendingExtension *pending = record->extension;
        item->deadline = record->handle->deadline;
        if (pending)
            item->request_id = pending->request_id;
        if (!pending) {
            snprintf(entry->text, sizeof(entry->text), "no request pending");
        } else if (pending->requested_deadline) {
            calendar_format(self->calendar, pending->requested_deadline, at, sizeof(at));
            snprintf(entry->text, sizeof(entry->text), "request %s by %s: until %s: %s",
                     pending->request_id, pending->unit_id, at, pending->reason);
        } else {
            snprintf(entry->text, sizeof(entry->text), "request %s by %s: +%u working days: %s",
                     pending->request_id, pending->unit_id, pending->extra_working_days,
                     pending->reason);
        }
        break;
    }
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF:
        item->deadline = record->handle->deadline;
        if (*record->instruction) {
            calendar_format(self->calendar, record->signed_off_at, at, sizeof(at));
            snprintf(entry->text, sizeof(entry->text), "%s; instruction by %s at %s: %s",
                     record->sign_off_reason, record->leader, at, record->instruction);
        } else {
            snprintf(entry->text, sizeof(entry->text), "%s; waiting for a leader's instruction",
                     record->sign_off_reason);
        }
        break;
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE: {
        bool sign_for = record->sign_for->active && record->sign_for->overdue;
        const Dispatch__Escalation__Track *track = sign_for ? record->sign_for : record->handle;
        char late[32];
        item->deadline = track->deadline;
        calendar_format(self->calendar, track->deadline, at, sizeof(at));
        escalation_format_duration(now - track->deadline, late, sizeof(late));
        snprintf(entry->text, sizeof(entry->text), "%s deadline %s passed %s ago",
                 sign_for ? "sign-for" : "handling", at, late);
        break;
    }
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT:
        item->deadline = describe_clock(self, record, now, entry->text, sizeof(entry->text));
        break;
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_UNSPECIFIED: /* admin_check_queue() */
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE:
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT:
        break;
    }
}

static int page_add(const char *ticket_id, int64_t since, void *ctx)
{
    page_t *page = ctx;
    escalation_t *self = self_of(page->admin);
    Dispatch__Escalation__Case *record;
    int rc = cases_get(self->cases, page->admin->txn, ticket_id, &record);
    if (rc == -ENOENT || rc == -EPROTO)
        return 0; /* the index outlived its record: nothing to show */
    if (rc < 0)
        return rc;
    admin_entry_t *entry;
    rc = admin_page_add(&self->reply, &record->base, &entry);
    if (rc < 0 || !entry)
        return rc < 0 ? rc : 1;
    fill_item(self, entry, page->kind, since, page->admin->now);
    return admin_page_keep(&self->reply);
}

static int list_queue(admin_t *a)
{
    const Dispatch__ListQueue *request = a->request->list_queue;
    escalation_t *self = self_of(a);
    if (admin_check_queue(a->err, request->kind, LIFECYCLE_ESCALATION))
        return REFUSED;
    if (admin_require(a, AUTHZ_LIST_CASES) ||
        refuse_text(a->err, "list_queue.district", request->district, LIMIT_ID, false) ||
        refuse_text(a->err, "list_queue.after_ticket_id", request->after_ticket_id, LIMIT_ID,
                    false) ||
        refuse_text(a->err, "list_queue.unit_id", request->unit_id, LIMIT_ID, false))
        return REFUSED;
    if (*request->district && strcmp(request->district, self->district) != 0)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "list_queue.district",
                      "district %s is served by its own escalation; this one serves %s",
                      request->district, self->district);
    if (admin_page_start(&self->reply, a->err, request->limit))
        return REFUSED;

    page_t page = {a, request->kind};
    int rc = cases_queue_each(self->cases, a->txn, request->kind, request->after_ticket_id,
                              page_add, &page);
    if (rc < 0)
        return rc;
    return admin_page_finish(&self->reply, a->reply);
}

/* ---------------------------------------------------------- entry */

static int serve(admin_t *a)
{
    switch (a->request->body_case) {
    case DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION:
        return extension_decision(a);
    case DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF:
        return leader_sign_off(a);
    case DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE:
        return list_queue(a);
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN: /* admin_served_by() */
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT:
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE:
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT:
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE:
    case DISPATCH__ADMIN_REQUEST__BODY_RULES_IMPORT:
    case DISPATCH__ADMIN_REQUEST__BODY_DATA_RELOAD:
    case DISPATCH__ADMIN_REQUEST__BODY_RULES_LIST:
    case DISPATCH__ADMIN_REQUEST__BODY_UNITS_LIST:
    case DISPATCH__ADMIN_REQUEST__BODY_ROUTE_EXPLAIN:
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_REROUTE:
    case DISPATCH__ADMIN_REQUEST__BODY_TICKET_OWNERS_LIST:
    case DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY: /* admin_handle() */
    case DISPATCH__ADMIN_REQUEST__BODY_STATS:
    case DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT:
    case DISPATCH__ADMIN_REQUEST__BODY__NOT_SET:
        break;
    }
    return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, "body", "not served here");
}

int escalation_handle_admin(escalation_t *self, MDB_txn *txn, const auth_actor_t *actor,
                            const void *body, size_t len, int64_t now_ms,
                            Dispatch__AdminReply *reply)
{
    escalation_reply_reset(self);
    return admin_handle(&self->reply, LIFECYCLE_ESCALATION, self, self->store, self->bus, txn,
                        actor, now_ms, body, len, ESCALATION_MAX_REQUEST, serve, reply);
}

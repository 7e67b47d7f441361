/* escalation_events.c: lifecycle events from the bus (the router's: the
 * lifecycle table sends escalation nothing else). They start, stop, pause and resume
 * the deadlines of a case; none of them fires a step (escalation_fire.c
 * does, when the timer they arm comes due). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "escalation_internal.h"
#include "event.h"
#include "lifecycle.h"

static bool text_fits(const char *value, size_t max, bool required)
{
    size_t len = strlen(value);
    return len <= max && (!required || len > 0);
}

/* When the event happened on the business clock: its own time, unless it
 * claims to be from the future. Deadlines count from the dispatch, not from
 * when escalation heard of it (it may have been down). */
static int64_t event_time(const Dispatch__Event *event, int64_t now)
{
    return event->at > 0 && event->at <= now ? event->at : now;
}

static void start_track(escalation_t *self, Dispatch__Escalation__Track *track, int64_t start,
                        int64_t given_deadline, const Dispatch__Escalation__Span *limit)
{
    track->active = true;
    track->start = start;
    track->deadline =
        given_deadline > start ? given_deadline : schedule_after(self->calendar, start, limit);
    track->next_step = 0;
    track->overdue = false;
}

static int on_dispatched(escalation_t *self, MDB_txn *txn, const Dispatch__Event *event,
                         Dispatch__Escalation__Case *record, int64_t now)
{
    const Dispatch__TicketDispatched *dispatched = event->ticket_dispatched;
    int64_t at = event_time(event, now);
    bool new_round = record->round == 0 || !escalation_case_open(record) ||
                     dispatched->cause == DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_REOPEN;
    int rc = 0;
    if (*event->district)
        rc = record_string_set(&record->district, event->district);
    if (rc == 0 && *dispatched->category)
        rc = record_string_set(&record->category, dispatched->category);
    if (rc == 0 && *dispatched->area)
        rc = record_string_set(&record->area, dispatched->area);
    if (rc == 0)
        rc = record_string_set(&record->unit_id, dispatched->unit_id);
    if (rc < 0)
        return rc;
    if (dispatched->kind)
        record->kind = dispatched->kind;
    if (dispatched->urgency)
        record->urgency = dispatched->urgency;
    if (dispatched->registered_at)
        record->registered_at = dispatched->registered_at;

    bool resumed = false;
    int64_t paused_ms = 0;
    if (new_round) {
        /* The table as it is now; a round keeps it to its end. */
        rc = cases_set_rule(record, deadlines_rule(self->table, record->kind, record->urgency));
        if (rc == 0)
            rc = cases_set_extension(record, NULL, 0);
        if (rc < 0)
            return rc;
        record->round++;
        record->paused_at = 0;
        record->resolved_at = 0;
        record->sign_off_since = 0;
        start_track(self, record->handle, at, dispatched->deadline_handle, record->rule->handle);
    } else if (record->paused_at) {
        paused_ms = at > record->paused_at ? at - record->paused_at : 0;
        record->handle->start += paused_ms;
        record->handle->deadline += paused_ms;
        record->paused_at = 0;
        resumed = true;
    }
    start_track(self, record->sign_for, at, dispatched->deadline_sign_for, record->rule->sign_for);
    record->state = DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED;
    record->dispatched_at = at;
    record->awaiting_citizen = false;

    if (!resumed) {
        /* The clocks this dispatch started, for every view of the ticket. */
        Dispatch__DeadlinesSet deadlines = DISPATCH__DEADLINES_SET__INIT;
        deadlines.deadline_sign_for = record->sign_for->active ? record->sign_for->deadline : 0;
        deadlines.deadline_handle = record->handle->active ? record->handle->deadline : 0;
        if (deadlines.deadline_sign_for || deadlines.deadline_handle)
            rc = escalation_emit(self, txn, record, NULL, at, &deadlines.base);
        if (rc < 0)
            return rc;
    } else {
        Dispatch__ClockResumed clock = DISPATCH__CLOCK_RESUMED__INIT;
        clock.paused_ms = paused_ms;
        clock.deadline_sign_for = record->sign_for->deadline;
        clock.deadline_handle = record->handle->deadline;
        rc = escalation_emit(self, txn, record, NULL, at, &clock.base);
        if (rc < 0)
            return rc;
    }
    return escalation_save(self, txn, record, now);
}

static int on_triaged(escalation_t *self, MDB_txn *txn, const Dispatch__Event *event,
                      Dispatch__Escalation__Case *record, int64_t now)
{
    int64_t at = event_time(event, now);
    record->state = DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE;
    record->sign_for->active = false;
    int rc = record_string_set(&record->unit_id, "");
    if (rc < 0)
        return rc;
    Dispatch__Escalation__Pause pause =
        record->rule ? record->rule->pause : DISPATCH__ESCALATION__PAUSE__PAUSE_NONE;
    bool stop = pause == DISPATCH__ESCALATION__PAUSE__PAUSE_TRIAGE ||
                (pause == DISPATCH__ESCALATION__PAUSE__PAUSE_CITIZEN && record->awaiting_citizen);
    if (stop && record->handle->active && !record->paused_at) {
        record->paused_at = at;
        Dispatch__ClockPaused paused = DISPATCH__CLOCK_PAUSED__INIT;
        paused.reason = record->awaiting_citizen
                            ? "in triage after a return for insufficient information: "
                              "waiting on the citizen"
                            : "in triage: no unit owns the ticket";
        rc = escalation_emit(self, txn, record, NULL, at, &paused.base);
        if (rc < 0)
            return rc;
    }
    return escalation_save(self, txn, record, now);
}

/* Resolved, closed, merged, transferred: the clocks stop, the queues let
 * go of the ticket. */
static int on_finished(escalation_t *self, MDB_txn *txn, const Dispatch__Event *event,
                       Dispatch__Escalation__Case *record, Dispatch__TicketState state, int64_t now)
{
    record->state = state;
    record->sign_for->active = false;
    record->handle->active = false;
    record->paused_at = 0;
    record->sign_off_since = 0;
    if (state == DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED)
        record->resolved_at = event_time(event, now);
    int rc = cases_set_extension(record, NULL, 0);
    return rc < 0 ? rc : escalation_save(self, txn, record, now);
}

/* Escalation's side of an event about a case it follows. */
static int apply_event(escalation_t *self, MDB_txn *txn, const Dispatch__Event *event,
                       Dispatch__Escalation__Case *record, int64_t now)
{
    switch (event->body_case) {
    case DISPATCH__EVENT__BODY_TICKET_DISPATCHED:
        if (lifecycle_state_final(record->state))
            return 0;
        return on_dispatched(self, txn, event, record, now);
    case DISPATCH__EVENT__BODY_TICKET_ACCEPTED:
        /* The lead unit signed for it: the sign-for deadline is met. An
         * assisting unit's sign-for is only recorded by the router. */
        if (record->state != DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED ||
            strcmp(event->ticket_accepted->unit_id, record->unit_id) != 0)
            return 0;
        record->state = DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED;
        record->sign_for->active = false;
        return escalation_save(self, txn, record, now);
    case DISPATCH__EVENT__BODY_TICKET_RETURNED:
        if (!escalation_case_open(record))
            return 0;
        record->state = DISPATCH__TICKET_STATE__TICKET_STATE_RETURNED;
        record->sign_for->active = false;
        record->awaiting_citizen = event->ticket_returned->reason_code ==
                                   DISPATCH__RETURN_REASON__RETURN_REASON_INSUFFICIENT_INFO;
        return escalation_save(self, txn, record, now);
    case DISPATCH__EVENT__BODY_TICKET_TRIAGED:
        return escalation_case_open(record) ? on_triaged(self, txn, event, record, now) : 0;
    case DISPATCH__EVENT__BODY_EXTENSION_REQUESTED: {
        const Dispatch__ExtensionRequested *requested = event->extension_requested;
        if (!text_fits(requested->request_id, LIMIT_ID, true) ||
            !text_fits(requested->unit_id, LIMIT_ID, false) ||
            !text_fits(requested->reason, LIMIT_TEXT, false))
            return BUS_REJECTED;
        if (!escalation_case_open(record) || !record->handle->active)
            return 0;
        int rc = cases_set_extension(record, requested, event_time(event, now));
        return rc < 0 ? rc : escalation_save(self, txn, record, now);
    }
    case DISPATCH__EVENT__BODY_TICKET_RESOLVED:
        if (!escalation_case_open(record))
            return 0;
        return on_finished(self, txn, event, record, DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED,
                           now);
    case DISPATCH__EVENT__BODY_TICKET_REROUTED:   /* a TicketDispatched follows */
    case DISPATCH__EVENT__BODY_TRIAGE_ASSIGNED:   /* a TicketDispatched follows */
    case DISPATCH__EVENT__BODY_PROGRESS_REPORTED: /* nothing to time */
        return 0;
    case DISPATCH__EVENT__BODY_TICKET_REGISTERED: /* not received: lifecycle table */
    case DISPATCH__EVENT__BODY_TICKET_MERGED:
    case DISPATCH__EVENT__BODY_TICKET_TRANSFERRED:
    case DISPATCH__EVENT__BODY_CALLED_BACK:
    case DISPATCH__EVENT__BODY_TICKET_REOPENED:
    case DISPATCH__EVENT__BODY_TICKET_CLOSED:
    case DISPATCH__EVENT__BODY_REMINDER_SENT: /* escalation's own */
    case DISPATCH__EVENT__BODY_TICKET_OVERDUE:
    case DISPATCH__EVENT__BODY_TICKET_ESCALATED:
    case DISPATCH__EVENT__BODY_SIGN_OFF_REQUESTED:
    case DISPATCH__EVENT__BODY_SIGNED_OFF:
    case DISPATCH__EVENT__BODY_EXTENSION_GRANTED:
    case DISPATCH__EVENT__BODY_EXTENSION_REFUSED:
    case DISPATCH__EVENT__BODY_CLOCK_PAUSED:
    case DISPATCH__EVENT__BODY_CLOCK_RESUMED:
    case DISPATCH__EVENT__BODY_DEADLINES_SET:
    case DISPATCH__EVENT__BODY__NOT_SET:
        return BUS_REJECTED;
    }
    return BUS_REJECTED;
}

int escalation_handle_event(escalation_t *self, MDB_txn *txn, const void *body, size_t len,
                            int64_t now_ms)
{
    escalation_reply_reset(self);
    Dispatch__Event *event;
    char err[256];
    if (event_decode(body, len, &event, err, sizeof(err)) < 0)
        return BUS_REJECTED;
    int rc = BUS_REJECTED;
    bool dispatched = event->body_case == DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    const Dispatch__TicketDispatched *d = dispatched ? event->ticket_dispatched : NULL;
    if (!lifecycle_receives(LIFECYCLE_ESCALATION, event->body_case) ||
        !text_fits(event->ticket_id, LIMIT_ID, true) ||
        !text_fits(event->district, LIMIT_ID, false) ||
        (d && (!text_fits(d->unit_id, LIMIT_ID, true) || !text_fits(d->category, LIMIT_ID, false) ||
               !text_fits(d->area, LIMIT_ID, false)))) {
        event_free(event);
        return BUS_REJECTED;
    }
    Dispatch__Escalation__Case *record = NULL;
    rc = cases_get(self->cases, txn, event->ticket_id, &record);
    if (rc == -ENOENT && d) {
        /* First dispatch: escalation starts following the ticket. */
        rc = cases_new_case(event->ticket_id, deadlines_rule(self->table, d->kind, d->urgency),
                            &record);
    } else if (rc == -ENOENT || rc == -EPROTO) {
        rc = 0; /* not followed here (in triage before any dispatch, say) */
    }
    if (rc == 0 && record)
        rc = apply_event(self, txn, event, record, now_ms);
    if (record)
        dispatch__escalation__case__free_unpacked(record, NULL);
    event_free(event);
    return rc;
}

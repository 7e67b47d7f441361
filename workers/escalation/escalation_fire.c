/* escalation_fire.c: due timers, and the steps of the ladder they fire.
 *
 * A timer names a case; firing it runs every step of the case's active
 * tracks that is due by now, in time order (sign-for first on a tie),
 * then re-arms the timer at the next step. A reminder point is skipped
 * when the step after it on the same track is due as well (the worker was
 * down, or the clock jumped): "the deadline is near" is no news once it has
 * passed. The deadline and the ladder levels always fire, each once.
 */
#include <errno.h>
#include <string.h>

#include "escalation_internal.h"

typedef struct firing {
    escalation_t *self;
    MDB_txn *txn;
    Dispatch__Escalation__Case *record;
    int64_t now;
} firing_t;

static int send_reminder(firing_t *f, Dispatch__DeadlineKind kind, bool overdue, const char *text)
{
    const Dispatch__Escalation__Track *track = schedule_track(f->record, kind);
    Dispatch__ReminderSent sent = DISPATCH__REMINDER_SENT__INIT;
    sent.unit_id = f->record->unit_id;
    sent.deadline_kind = kind;
    sent.deadline = track->deadline;
    sent.overdue = overdue;
    sent.text = (char *)text;
    return escalation_emit(f->self, f->txn, f->record, NULL, f->now, &sent.base);
}

static int fire_reminder(firing_t *f, Dispatch__DeadlineKind kind, const schedule_step_t *step)
{
    const Dispatch__Escalation__Track *track = schedule_track(f->record, kind);
    const Dispatch__Escalation__Rule *rule = f->record->rule;
    char deadline[32], limit[32], left[32], text[256];
    calendar_format(f->self->calendar, track->deadline, deadline, sizeof(deadline));
    deadlines_span_format(kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR ? rule->sign_for
                                                                                  : rule->handle,
                          limit, sizeof(limit));
    escalation_format_duration(track->deadline - f->now, left, sizeof(left));
    snprintf(text, sizeof(text), "%s by %s (%s left; %u%% of the %s %s limit has passed)",
             kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR ? "sign for it" : "handle it",
             deadline, left, step->percent, limit, escalation_deadline_name(kind));
    return send_reminder(f, kind, false, text);
}

static int fire_overdue(firing_t *f, Dispatch__DeadlineKind kind)
{
    Dispatch__Escalation__Track *track = schedule_track(f->record, kind);
    Dispatch__Escalation__Case *record = f->record;
    track->overdue = true;
    if (!record->overdue_since)
        record->overdue_since = f->now;
    char deadline[32], text[256];
    calendar_format(f->self->calendar, track->deadline, deadline, sizeof(deadline));
    snprintf(text, sizeof(text), "the %s deadline %s has passed", escalation_deadline_name(kind),
             deadline);

    Dispatch__TicketOverdue overdue = DISPATCH__TICKET_OVERDUE__INIT;
    overdue.unit_id = record->unit_id;
    overdue.deadline_kind = kind;
    overdue.deadline = track->deadline;
    int rc = escalation_emit(f->self, f->txn, record, NULL, f->now, &overdue.base);
    if (rc == 0)
        rc = escalation_climb(f->self, f->txn, record,
                              DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_UNIT_REMINDER, text,
                              NULL, f->now);
    return rc < 0 ? rc : send_reminder(f, kind, true, text);
}

static int fire_ladder(firing_t *f, Dispatch__DeadlineKind kind, const schedule_step_t *step)
{
    const Dispatch__Escalation__Track *track = schedule_track(f->record, kind);
    char deadline[32], late[32], reason[256], text[320];
    calendar_format(f->self->calendar, track->deadline, deadline, sizeof(deadline));
    escalation_format_duration(f->now - track->deadline, late, sizeof(late));
    snprintf(reason, sizeof(reason), "the %s deadline %s passed %s ago",
             escalation_deadline_name(kind), deadline, late);
    int rc = escalation_climb(f->self, f->txn, f->record, step->level, reason, NULL, f->now);
    if (rc == 0 && step->level == DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_LEADER_SIGN_OFF)
        rc = escalation_request_sign_off(f->self, f->txn, f->record, reason, f->now);
    snprintf(text, sizeof(text), "%s: the ticket is in %s", reason,
             escalation_level_name(step->level));
    return rc < 0 ? rc : send_reminder(f, kind, true, text);
}

/* The track whose next step comes first and is due, or 0. */
static Dispatch__DeadlineKind next_due_track(firing_t *f, schedule_step_t *step, uint32_t *index)
{
    const Dispatch__DeadlineKind kinds[2] = {DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR,
                                             DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE};
    Dispatch__DeadlineKind best = DISPATCH__DEADLINE_KIND__DEADLINE_KIND_UNSPECIFIED;
    int64_t best_at = SCHEDULE_NEVER;
    for (int i = 0; i < 2; i++) {
        const Dispatch__Escalation__Track *track = schedule_track(f->record, kinds[i]);
        if (!track->active ||
            (kinds[i] == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE && f->record->paused_at))
            continue;
        uint32_t at_index;
        int64_t at =
            schedule_next_step(f->self->calendar, f->record, kinds[i], track->next_step, &at_index);
        if (at <= f->now && at < best_at) {
            best = kinds[i];
            best_at = at;
            *index = at_index;
        }
    }
    if (best)
        schedule_step(f->self->calendar, f->record, best, *index, step);
    return best;
}

static int fire_case(firing_t *f)
{
    for (;;) {
        schedule_step_t step;
        uint32_t index;
        Dispatch__DeadlineKind kind = next_due_track(f, &step, &index);
        if (!kind)
            return 0;
        Dispatch__Escalation__Track *track = schedule_track(f->record, kind);
        track->next_step = index + 1;
        int rc = 0;
        switch (step.kind) {
        case SCHEDULE_REMINDER: {
            uint32_t following;
            int64_t next_at = schedule_next_step(f->self->calendar, f->record, kind,
                                                 track->next_step, &following);
            if (next_at > f->now)
                rc = fire_reminder(f, kind, &step);
            break;
        }
        case SCHEDULE_OVERDUE:
            rc = fire_overdue(f, kind);
            break;
        case SCHEDULE_LADDER:
            rc = fire_ladder(f, kind, &step);
            break;
        }
        if (rc < 0)
            return rc;
    }
}

int escalation_fire_due(escalation_t *self, MDB_txn *txn, int64_t now_ms, size_t max, size_t *fired)
{
    *fired = 0;
    while (*fired < max) {
        int64_t due;
        char ticket_id[TIMERS_ID_SIZE];
        int rc = timers_pop_due(self->timers, txn, now_ms, &due, ticket_id);
        if (rc == -ENOENT)
            return 0;
        if (rc == -EAGAIN)
            continue; /* a malformed entry was dropped */
        if (rc < 0)
            return rc;
        (*fired)++;
        Dispatch__Escalation__Case *record;
        rc = cases_get(self->cases, txn, ticket_id, &record);
        if (rc == -ENOENT || rc == -EPROTO)
            continue; /* a timer that outlived its case: nothing to do */
        if (rc < 0)
            return rc;
        if (record->timer_due == due) {
            record->timer_due = 0; /* popped */
            firing_t f = {self, txn, record, now_ms};
            rc = fire_case(&f);
            if (rc == 0)
                rc = escalation_save(self, txn, record, now_ms);
        }
        dispatch__escalation__case__free_unpacked(record, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

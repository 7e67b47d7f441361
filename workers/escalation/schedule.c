/* schedule: see schedule.h. */
#include "schedule.h"

#include <stddef.h>

#include "deadlines.h"

int64_t schedule_after(const calendar_t *calendar, int64_t start,
                       const Dispatch__Escalation__Span *span)
{
    if (!span)
        return start;
    if (span->working_days)
        return calendar_add_working_days(calendar, start, span->working_days);
    return start + span->ms;
}

Dispatch__Escalation__Track *schedule_track(const Dispatch__Escalation__Case *record,
                                            Dispatch__DeadlineKind kind)
{
    return kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR ? record->sign_for
                                                                   : record->handle;
}

static bool span_is_set(const Dispatch__Escalation__Span *span)
{
    return span && (span->ms > 0 || span->working_days > 0);
}

bool schedule_step(const calendar_t *calendar, const Dispatch__Escalation__Case *record,
                   Dispatch__DeadlineKind kind, uint32_t index, schedule_step_t *step)
{
    const Dispatch__Escalation__Rule *rule = record->rule;
    const Dispatch__Escalation__Track *track = schedule_track(record, kind);
    if (!rule || !track)
        return false;
    bool sign_for = kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR;
    const Dispatch__Escalation__Span *limit = sign_for ? rule->sign_for : rule->handle;
    size_t reminders = rule->n_remind_at;
    *step = (schedule_step_t){0};
    if (index < reminders) {
        uint32_t percent = rule->remind_at[index];
        int64_t at;
        if (limit && limit->working_days) {
            int64_t working = calendar_working_ms_between(calendar, track->start, track->deadline);
            at = calendar_add_working_ms(calendar, track->start,
                                         working / 100 * percent + working % 100 * percent / 100);
        } else {
            int64_t span = track->deadline - track->start;
            at = track->start + span / 100 * percent + span % 100 * percent / 100;
        }
        *step = (schedule_step_t){.kind = SCHEDULE_REMINDER, .at = at, .percent = percent};
        return true;
    }
    if (index == reminders) {
        *step = (schedule_step_t){.kind = SCHEDULE_OVERDUE, .at = track->deadline};
        return true;
    }
    size_t level = index - reminders - 1;
    size_t ladder_count = sign_for ? rule->n_sign_for_ladder : rule->n_handle_ladder;
    if (level >= ladder_count || level >= DEADLINES_LADDER_LEVELS)
        return false;
    const Dispatch__Escalation__Span *after =
        sign_for ? rule->sign_for_ladder[level] : rule->handle_ladder[level];
    if (!span_is_set(after))
        return false;
    static const Dispatch__SupervisionLevel levels[DEADLINES_LADDER_LEVELS] = {
        DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_DISTRICT,
        DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_CITY,
        DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_LEADER_SIGN_OFF,
    };
    *step = (schedule_step_t){.kind = SCHEDULE_LADDER,
                              .at = schedule_after(calendar, track->deadline, after),
                              .level = levels[level]};
    return true;
}

int64_t schedule_next_step(const calendar_t *calendar, const Dispatch__Escalation__Case *record,
                           Dispatch__DeadlineKind kind, uint32_t from, uint32_t *index)
{
    const Dispatch__Escalation__Rule *rule = record->rule;
    if (!rule)
        return SCHEDULE_NEVER;
    uint32_t last = (uint32_t)rule->n_remind_at + 1 + DEADLINES_LADDER_LEVELS;
    for (uint32_t i = from; i < last; i++) {
        schedule_step_t step;
        if (schedule_step(calendar, record, kind, i, &step)) {
            *index = i;
            return step.at;
        }
    }
    return SCHEDULE_NEVER;
}

int64_t schedule_next_due(const calendar_t *calendar, const Dispatch__Escalation__Case *record)
{
    int64_t due = SCHEDULE_NEVER;
    const Dispatch__DeadlineKind kinds[2] = {DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR,
                                             DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE};
    for (int i = 0; i < 2; i++) {
        const Dispatch__Escalation__Track *track = schedule_track(record, kinds[i]);
        if (!track || !track->active)
            continue;
        if (kinds[i] == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE && record->paused_at)
            continue;
        uint32_t index;
        int64_t at = schedule_next_step(calendar, record, kinds[i], track->next_step, &index);
        if (at < due)
            due = at;
    }
    return due;
}

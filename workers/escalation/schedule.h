/* schedule: when each step of a case's deadlines falls (pure functions).
 *
 * A case has two tracks, one per deadline: sign-for (from each dispatch to
 * the lead unit's sign-for) and handling (from the first dispatch of a
 * round to the resolution). The steps of a track, in index order:
 *
 *   0 .. r-1     reminders at the points rule.remind_at (percent of the
 *                limit: of wall time for an hour limit, of working time
 *                for a working-day limit), before the deadline
 *   r            the deadline: overdue
 *   r+1 .. r+3   the ladder after the deadline: district supervision, city
 *                supervision, leader sign-off queue (a level set "off" in
 *                the table has no step)
 *
 * where r = rule.n_remind_at. A track runs its steps in index order; the
 * ladder lengths of the table are meant to ascend.
 */
#ifndef DISPATCH_ESCALATION_SCHEDULE_H
#define DISPATCH_ESCALATION_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "calendar.h"
#include "dispatch.pb-c.h"
#include "escalation_state.pb-c.h"

#define SCHEDULE_NEVER INT64_MAX

typedef enum schedule_step_kind {
    SCHEDULE_REMINDER,
    SCHEDULE_OVERDUE,
    SCHEDULE_LADDER,
} schedule_step_kind_t;

typedef struct schedule_step {
    schedule_step_kind_t kind;
    int64_t at;
    uint32_t percent;                 /* SCHEDULE_REMINDER */
    Dispatch__SupervisionLevel level; /* SCHEDULE_LADDER */
} schedule_step_t;

/* start plus a length of the table (working days through the calendar). */
int64_t schedule_after(const calendar_t *calendar, int64_t start,
                       const Dispatch__Escalation__Span *span);

/* The track of a case for a deadline kind (SIGN_FOR or HANDLE). */
Dispatch__Escalation__Track *schedule_track(const Dispatch__Escalation__Case *record,
                                            Dispatch__DeadlineKind kind);

/* Step `index` of the track of `kind`; false when there is no such step
 * (past the last, or a ladder level that is off). */
bool schedule_step(const calendar_t *calendar, const Dispatch__Escalation__Case *record,
                   Dispatch__DeadlineKind kind, uint32_t index, schedule_step_t *step);

/* The first step at or after `from` that exists: *index and its time, or
 * SCHEDULE_NEVER. */
int64_t schedule_next_step(const calendar_t *calendar, const Dispatch__Escalation__Case *record,
                           Dispatch__DeadlineKind kind, uint32_t from, uint32_t *index);

/* When the case's timer must fire: the earliest next step of its active
 * tracks (the handling track not while its clock is paused), or
 * SCHEDULE_NEVER. */
int64_t schedule_next_due(const calendar_t *calendar, const Dispatch__Escalation__Case *record);

#endif

/* escalation.c: construction, the save that keeps timers and queues in
 * line with a case, and the events every input shares. */
#include "escalation.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "escalation_internal.h"
#include "event.h"

int escalation_new(store_t *store, bus_t *bus, const config_t *config, const char *name,
                   deadlines_t *table, calendar_t *calendar, escalation_t **ret)
{
    const config_worker_t *me = config_worker_find(config, name);
    escalation_t *self = NULL;
    int rc = 0;
    if (!me || strcmp(me->kind, "escalation") != 0 || !me->district ||
        strlen(me->district) > LIMIT_ID || !table || !calendar)
        rc = -EINVAL;
    if (rc == 0 && !(self = calloc(1, sizeof(*self))))
        rc = -ENOMEM;
    if (rc < 0) {
        deadlines_destroy(&table);
        calendar_destroy(&calendar);
        return rc;
    }
    self->store = store;
    self->bus = bus;
    self->table = table;
    self->calendar = calendar;
    self->next_due = SCHEDULE_NEVER;
    snprintf(self->name, sizeof(self->name), "%s", name);
    snprintf(self->district, sizeof(self->district), "%s", me->district);
    rc = timers_new(store, &self->timers);
    if (rc == 0)
        rc = cases_new(store, &self->cases);
    const store_db_t dbs[] = {
        {"escalation.meta", &self->meta, 0},
        {"escalation.reports", &self->reports, 0},
    };
    if (rc == 0)
        rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc == 0)
        rc = peers_new(config, name, bus, &self->peers);
    if (rc < 0) {
        escalation_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void escalation_destroy(escalation_t **self)
{
    escalation_t *escalation = *self;
    if (!escalation)
        return;
    escalation_reply_reset(escalation);
    admin_reply_free(&escalation->reply);
    timers_destroy(&escalation->timers);
    cases_destroy(&escalation->cases);
    deadlines_destroy(&escalation->table);
    calendar_destroy(&escalation->calendar);
    endpoint_destroy(&escalation->admin_endpoint);
    peers_destroy(&escalation->peers);
    free(escalation);
    *self = NULL;
}

int escalation_load_data(const char *data_dir, deadlines_t **table, calendar_t **calendar,
                         char *err, size_t err_len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/deadlines.ini", data_dir);
    int rc = deadlines_load(path, table, err, err_len);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/calendar.ini", data_dir);
    rc = calendar_load(path, calendar, err, err_len);
    if (rc < 0)
        deadlines_destroy(table);
    return rc;
}

const char *escalation_district(const escalation_t *self)
{
    return self->district;
}

const calendar_t *escalation_calendar(const escalation_t *self)
{
    return self->calendar;
}

int escalation_get_case(escalation_t *self, MDB_txn *txn, const char *ticket_id,
                        Dispatch__Escalation__Case **ret)
{
    return cases_get(self->cases, txn, ticket_id, ret);
}

int escalation_next_due(escalation_t *self, MDB_txn *txn, int64_t *due)
{
    return timers_first(self->timers, txn, due, NULL);
}

void escalation_reply_reset(escalation_t *self)
{
    admin_reply_reset(&self->reply);
}

/* ------------------------------------------------------------- saving */

bool escalation_case_open(const Dispatch__Escalation__Case *record)
{
    switch (record->state) {
    case DISPATCH__TICKET_STATE__TICKET_STATE_UNSPECIFIED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_MERGED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED:
        return false;
    case DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_RETURNED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE:
    case DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED:
        return true;
    }
    return false;
}

static bool track_overdue(const Dispatch__Escalation__Track *track)
{
    return track && track->active && track->overdue;
}

static const Dispatch__QueueKind queue_kinds[] = {
    DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION,
    DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF,
    DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE,
    DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT,
};

/* Whether the case belongs in a queue, and since when. */
static bool queue_wanted(const Dispatch__Escalation__Case *record, Dispatch__QueueKind kind,
                         int64_t *since)
{
    if (!escalation_case_open(record))
        return false;
    switch (kind) {
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION:
        *since = record->extension ? record->extension->since : 0;
        return record->extension != NULL;
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF:
        *since = record->sign_off_since;
        return record->sign_off_since != 0;
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE:
        *since = record->overdue_since;
        return track_overdue(record->sign_for) || track_overdue(record->handle);
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT:
        *since = record->dispatched_at;
        return record->urgency == DISPATCH__URGENCY__URGENCY_URGENT;
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_UNSPECIFIED:
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE: /* the router's queues */
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT:
        break;
    }
    return false;
}

int escalation_save(escalation_t *self, MDB_txn *txn, Dispatch__Escalation__Case *record,
                    int64_t now)
{
    (void)now;
    int rc = 0;
    if (!track_overdue(record->sign_for) && !track_overdue(record->handle))
        record->overdue_since = 0;

    int64_t due =
        escalation_case_open(record) ? schedule_next_due(self->calendar, record) : SCHEDULE_NEVER;
    if (due != SCHEDULE_NEVER && due < 1)
        due = 1; /* keys hold positive times */
    int64_t armed = record->timer_due ? record->timer_due : SCHEDULE_NEVER;
    if (due != armed) {
        if (record->timer_due) {
            rc = timers_disarm(self->timers, txn, record->timer_due, record->ticket_id);
            if (rc == -ENOENT)
                rc = 0;
        }
        if (rc == 0 && due != SCHEDULE_NEVER)
            rc = timers_arm(self->timers, txn, due, record->ticket_id);
        if (rc < 0)
            return rc;
        record->timer_due = due == SCHEDULE_NEVER ? 0 : due;
    }

    for (size_t i = 0; i < sizeof(queue_kinds) / sizeof(queue_kinds[0]); i++) {
        Dispatch__QueueKind kind = queue_kinds[i];
        uint32_t bit = 1u << kind;
        int64_t since = 0;
        bool wanted = queue_wanted(record, kind, &since);
        bool queued = (record->queued & bit) != 0;
        if (wanted && !queued)
            rc = cases_queue_put(self->cases, txn, kind, record->ticket_id, since);
        else if (!wanted && queued)
            rc = cases_queue_delete(self->cases, txn, kind, record->ticket_id);
        if (rc < 0)
            return rc;
        record->queued = wanted ? record->queued | bit : record->queued & ~bit;
    }
    return cases_put(self->cases, txn, record);
}

/* ------------------------------------------------------------- events */

static int fill_event(escalation_t *self, MDB_txn *txn, const char *ticket_id, const char *district,
                      const char *actor, int64_t now, char *id, Dispatch__Event *event)
{
    int rc = event_next_id(txn, self->meta, self->name, self->bus, id);
    if (rc < 0)
        return rc;
    event->event_id = id;
    event->ticket_id = (char *)ticket_id;
    event->district = (char *)(district && *district ? district : self->district);
    event->at = now;
    event->actor = (char *)(actor && *actor ? actor : ESCALATION_ACTOR);
    event->origin = self->name;
    return 0;
}

int escalation_emit(escalation_t *self, MDB_txn *txn, const Dispatch__Escalation__Case *record,
                    const char *actor, int64_t now, ProtobufCMessage *body)
{
    char id[EVENT_ID_SIZE];
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event_set_body(&event, body);
    int rc = fill_event(self, txn, record->ticket_id, record->district, actor, now, id, &event);
    return rc < 0 ? rc : peers_send(self->peers, txn, &event);
}

int escalation_emit_report(escalation_t *self, MDB_txn *txn, const char *actor, int64_t now,
                           ProtobufCMessage *body)
{
    char id[EVENT_ID_SIZE];
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event_set_body(&event, body);
    int rc = fill_event(self, txn, "", self->district, actor, now, id, &event);
    return rc < 0 ? rc : peers_send(self->peers, txn, &event);
}

int escalation_climb(escalation_t *self, MDB_txn *txn, Dispatch__Escalation__Case *record,
                     Dispatch__SupervisionLevel level, const char *reason, const char *actor,
                     int64_t now)
{
    if (level <= record->supervision)
        return 0;
    Dispatch__TicketEscalated escalated = DISPATCH__TICKET_ESCALATED__INIT;
    escalated.level = level;
    escalated.previous = record->supervision;
    escalated.reason = (char *)reason;
    record->supervision = level;
    return escalation_emit(self, txn, record, actor, now, &escalated.base);
}

int escalation_request_sign_off(escalation_t *self, MDB_txn *txn,
                                Dispatch__Escalation__Case *record, const char *reason, int64_t now)
{
    if (record->sign_off_since)
        return 0;
    record->sign_off_since = now;
    int rc = record_string_set(&record->sign_off_reason, reason);
    if (rc < 0)
        return rc;
    Dispatch__SignOffRequested requested = DISPATCH__SIGN_OFF_REQUESTED__INIT;
    requested.reason = (char *)reason;
    return escalation_emit(self, txn, record, NULL, now, &requested.base);
}

void escalation_move_handle_deadline(escalation_t *self, Dispatch__Escalation__Case *record,
                                     int64_t deadline, int64_t now)
{
    Dispatch__Escalation__Track *track = record->handle;
    track->deadline = deadline;
    track->overdue = false;
    track->next_step = 0;
    /* Reminder points of the longer limit that lie in the past are history. */
    schedule_step_t step;
    while (schedule_step(self->calendar, record, DISPATCH__DEADLINE_KIND__DEADLINE_KIND_HANDLE,
                         track->next_step, &step) &&
           step.kind == SCHEDULE_REMINDER && step.at <= now)
        track->next_step++;
}

/* ------------------------------------------------------------- names */

const char *escalation_level_name(Dispatch__SupervisionLevel level)
{
    switch (level) {
    case DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_UNIT_REMINDER:
        return "unit reminder";
    case DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_DISTRICT:
        return "district supervision";
    case DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_CITY:
        return "city supervision";
    case DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_LEADER_SIGN_OFF:
        return "the leader sign-off queue";
    case DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_NONE:
        break;
    }
    return "no supervision";
}

const char *escalation_deadline_name(Dispatch__DeadlineKind kind)
{
    return kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR ? "sign-for" : "handling";
}

void escalation_format_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = -ms;
    int64_t minutes = ms / 60000;
    int64_t days = minutes / (24 * 60), hours = minutes / 60 % 24, rest = minutes % 60;
    if (days > 0)
        snprintf(buf, len, "%" PRId64 " d %" PRId64 " h", days, hours);
    else if (hours > 0)
        snprintf(buf, len, "%" PRId64 " h %" PRId64 " min", hours, rest);
    else
        snprintf(buf, len, "%" PRId64 " min", rest);
}

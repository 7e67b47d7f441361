/* intake_events: lifecycle events from routers and escalation, folded into
 * the ticket's public status and history. */
#include <errno.h>

#include "clock.h"
#include "event.h"
#include "intake_internal.h"
#include "lifecycle.h"

int intake_handle_event(intake_t *self, MDB_txn *txn, const void *body, size_t len, int64_t now_ms)
{
    Dispatch__Event *event = NULL;
    char err[256];
    if (event_decode(body, len, &event, err, sizeof(err)) < 0)
        return BUS_REJECTED;
    if (!lifecycle_receives(LIFECYCLE_INTAKE, event->body_case)) {
        /* Intake's own decisions, never taken from another worker. */
        event_free(event);
        return BUS_REJECTED;
    }
    ticket_work_t work;
    int rc = intake_work_load(self, txn, event->ticket_id, &work);
    if (rc == -ENOENT || rc == -EBADMSG) {
        event_free(event);
        return BUS_REJECTED;
    }
    int64_t at = event->at ? event->at : now_ms;
    if (rc == 0)
        rc = lifecycle_apply(&work.ticket, event, at, LIFECYCLE_BORROW);
    if (rc == 0) {
        Dispatch__HistoryEntry entry;
        lifecycle_history_entry(event, at, &entry);
        rc = intake_history_append(self, txn, &work, &entry);
    }
    if (rc == 0)
        rc = intake_work_save(self, txn, &work);
    intake_work_release(&work);
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

/* audit_events: every event recorded once: the log, the KPI facts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"
#include "clock.h"
#include "event.h"
#include "kpi.h"
#include "refusal.h"

/* ---- recording ---------------------------------------------------------- */

int audit_handle_event(audit_t *self, MDB_txn *txn, const void *body, size_t len, int64_t now_ms,
                       uint64_t *seq)
{
    if (seq)
        *seq = 0;
    Dispatch__Event *event = NULL;
    char err[256];
    if (event_decode(body, len, &event, err, sizeof(err)) < 0)
        return BUS_REJECTED;
    size_t id_len = strlen(event->event_id);
    /* An id the contract does not allow cannot be a key; such an event is
     * still recorded, without the repeat check. */
    bool keyed = id_len > 0 && id_len <= LIMIT_ID;
    MDB_val key = {id_len, event->event_id}, value;
    int rc = keyed ? mdb_get(txn, self->events, &key, &value) : MDB_NOTFOUND;
    if (rc == 0) {
        event_free(event);
        return 0; /* recorded before */
    }
    rc = rc == MDB_NOTFOUND ? 0 : store_rc(rc);
    uint64_t recorded = 0;
    if (rc == 0)
        rc = trail_append(self->trail, txn, body, len, now_ms, &recorded);
    unsigned char seq_bytes[8];
    store_u64_encode(recorded, seq_bytes);
    value = (MDB_val){sizeof(seq_bytes), seq_bytes};
    if (rc == 0 && keyed)
        rc = store_rc(mdb_put(txn, self->events, &key, &value, 0));
    if (rc == 0)
        rc = kpi_apply(self->kpi, txn, event, recorded, now_ms);
    event_free(event);
    if (rc == 0 && seq)
        *seq = recorded;
    return rc;
}

int audit_apply_event(void *app, MDB_txn *txn, const char *sender, uint64_t seq, const void *body,
                      size_t len)
{
    (void)sender;
    (void)seq;
    audit_t *self = app;
    self->appended = true;
    return audit_handle_event(self, txn, body, len, clock_now_ms(), NULL);
}

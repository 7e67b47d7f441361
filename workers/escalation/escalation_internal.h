/* escalation_internal: what the parts of the escalation worker share
 * (escalation.c: construction, saving and emitting; escalation_events.c,
 * escalation_fire.c, escalation_requests.c: the three inputs;
 * escalation_service.c: sockets and loop). Not for use outside
 * workers/escalation. */
#ifndef DISPATCH_ESCALATION_INTERNAL_H
#define DISPATCH_ESCALATION_INTERNAL_H

#include <stdbool.h>

#include "admin.h"
#include "cases.h"
#include "endpoint.h"
#include "escalation.h"
#include "peers.h"
#include "refusal.h"
#include "schedule.h"
#include "timers.h"

#define ESCALATION_ACTOR "system"

struct escalation {
    store_t *store;
    bus_t *bus;
    char name[CONFIG_NAME_MAX + 1];
    char district[LIMIT_ID + 1];
    deadlines_t *table;
    calendar_t *calendar;
    timers_t *timers;
    cases_t *cases;
    MDB_dbi meta, reports;
    peers_t *peers;      /* the router, intakes and audit: where events go */
    admin_reply_t reply; /* memory the last admin reply points into */

    /* The worker loop (escalation_service.c); unused when driven directly. */
    endpoint_t *admin_endpoint;
    int64_t next_due;   /* first armed timer, SCHEDULE_NEVER when none */
    bool batch_applied; /* the loop's apply ran in this iteration */
    uint64_t fired;     /* timers fired, committed */
    uint64_t fired_pending;
};

/* True while the ticket is open to escalation: dispatched and not yet
 * resolved, closed, merged or transferred. */
bool escalation_case_open(const Dispatch__Escalation__Case *record);

/* Writes the case and brings its timer and queue entries in line with it
 * (the module's one place for that invariant). */
int escalation_save(escalation_t *self, MDB_txn *txn, Dispatch__Escalation__Case *record,
                    int64_t now);

/* Emits event about the case's ticket to the router, the owning intake and
 * audit: fills event_id, ticket_id, district, at, actor, origin. */
int escalation_emit(escalation_t *self, MDB_txn *txn, const Dispatch__Escalation__Case *record,
                    const char *actor, int64_t now, ProtobufCMessage *body);
/* An event on no ticket (a special report): to audit only. */
int escalation_emit_report(escalation_t *self, MDB_txn *txn, const char *actor, int64_t now,
                           ProtobufCMessage *body);

/* Raises the case's supervision to level (TicketEscalated) when it is
 * below it; nothing otherwise. */
int escalation_climb(escalation_t *self, MDB_txn *txn, Dispatch__Escalation__Case *record,
                     Dispatch__SupervisionLevel level, const char *reason, const char *actor,
                     int64_t now);

/* Puts the case in the leader sign-off queue (SignOffRequested) unless it
 * is there already. */
int escalation_request_sign_off(escalation_t *self, MDB_txn *txn,
                                Dispatch__Escalation__Case *record, const char *reason,
                                int64_t now);

/* Moves the handling deadline to `deadline` (extension): the steps before
 * now are taken as done, the overdue mark goes. */
void escalation_move_handle_deadline(escalation_t *self, Dispatch__Escalation__Case *record,
                                     int64_t deadline, int64_t now);

void escalation_reply_reset(escalation_t *self);

/* Names and texts. */
const char *escalation_level_name(Dispatch__SupervisionLevel level);
const char *escalation_deadline_name(Dispatch__DeadlineKind kind);
/* "3 h 20 min", "2 d 4 h", "12 min", "0 min". */
void escalation_format_duration(int64_t ms, char *buf, size_t len);

#endif

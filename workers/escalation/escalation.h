/* escalation: dispatch-escalation, one per district (DESIGN.md sections 1,
 * 2 and 5). "None missed, none delayed": it keeps every dispatched ticket's
 * deadlines and acts when one comes near or passes.
 *
 *  - Deadlines come from the deadline table (deadlines.h) by kind x
 *    urgency and the business calendar (calendar.h), computed when the
 *    router's TicketDispatched arrives: a sign-for deadline from each
 *    dispatch, a handling deadline from the first dispatch of a round (a
 *    reopen starts a new round).
 *  - Each deadline runs a ladder of steps (schedule.h): reminders to the
 *    unit before it; at it ReminderSent + TicketOverdue + TicketEscalated
 *    (unit reminder); after it TicketEscalated to district supervision,
 *    city supervision and the leader sign-off queue (SignOffRequested),
 *    each with a ReminderSent to the unit. The supervision level only
 *    climbs.
 *  - A unit's ExtensionRequested waits in the EXTENSION queue until a
 *    supervisor's ExtensionDecision: granted moves the handling deadline
 *    (and its steps), refused keeps it; ExtensionGranted / ExtensionRefused
 *    go to the unit through the router.
 *  - While a ticket sits in triage the handling clock stops if the table
 *    allows it (pause = triage, or citizen after a return for insufficient
 *    information): ClockPaused, then ClockResumed with the deadline moved
 *    by the pause when it is dispatched again.
 *  - A leader's LeaderSignOff on a ticket is recorded, emitted as SignedOff
 *    (the router delivers it to the unit) and the ticket stays in the
 *    SIGN_OFF queue until it is resolved or closed.
 *  - Resolved or closed tickets cancel their timers and leave every queue.
 *
 * Timers: one per case at its next step, in the durable index of timers.h.
 * escalation_fire_due() pops the due ones in (due, ticket) order; firing a
 * step, the events it causes (event_send, in the caller's transaction) and
 * the removal or re-arming of the timer commit together, so across a crash
 * a step fires exactly once.
 *
 * Invariants: a case's timer and queue entries always match what
 * schedule_next_due() and the case's state say (escalation.c keeps them in
 * escalation_save); every event goes to the router, the owning intake and
 * audit in the transaction of the change that causes it.
 *
 * Handlers take the caller's write transaction and plain bytes, never
 * sockets. They return 0 (a refusal is a reply, not an error), BUS_REJECTED
 * for an event that can never apply, or a negative code when the
 * transaction must be aborted. Replies point into memory the escalation
 * owns until its next handler call or escalation_destroy().
 */
#ifndef DISPATCH_ESCALATION_H
#define DISPATCH_ESCALATION_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "bus.h"
#include "calendar.h"
#include "config.h"
#include "deadlines.h"
#include "dispatch.pb-c.h"
#include "escalation_state.pb-c.h"
#include "store.h"
#include "worker.h"

/* Largest AdminRequest accepted (the admin endpoint's MAXMSGSIZE). */
#define ESCALATION_MAX_REQUEST (64 * 1024)
/* Timers fired per write batch: bounds a batch's size and the latency of
 * the admin requests that share it. */
#define ESCALATION_FIRE_BATCH 1024
/* With a simulated clock (clock.h) the worker cannot know when time moves:
 * while it has timers it reads the clock again at least this often. */
#define ESCALATION_SIM_POLL_MS 50

typedef struct escalation escalation_t;

/* name is the instance's worker name in config (an escalation with a
 * district); its links give the router, the intake(s) and audit. bus may
 * be NULL: no events leave then. Takes ownership of table and calendar
 * (freed by escalation_destroy, or here on failure). */
int escalation_new(store_t *store, bus_t *bus, const config_t *config, const char *name,
                   deadlines_t *table, calendar_t *calendar, escalation_t **ret);
void escalation_destroy(escalation_t **self);

/* <data_dir>/deadlines.ini and <data_dir>/calendar.ini. */
int escalation_load_data(const char *data_dir, deadlines_t **table, calendar_t **calendar,
                         char *err, size_t err_len);

/* An Event from the bus (router; intake's, if the topology links it). */
int escalation_handle_event(escalation_t *self, MDB_txn *txn, const void *body, size_t len,
                            int64_t now_ms);

/* An AdminRequest sent with actor's key (NULL: plain; admin.h checks the
 * claimed actor and role against it); *reply is always set (error, done or
 * queue). */
int escalation_handle_admin(escalation_t *self, MDB_txn *txn, const auth_actor_t *actor,
                            const void *body, size_t len, int64_t now_ms,
                            Dispatch__AdminReply *reply);

/* Fires at most max timers due by now_ms; *fired gets how many were taken
 * from the index. */
int escalation_fire_due(escalation_t *self, MDB_txn *txn, int64_t now_ms, size_t max,
                        size_t *fired);

/* The first armed timer's due time; -ENOENT when none is armed. */
int escalation_next_due(escalation_t *self, MDB_txn *txn, int64_t *due);

/* The case of a ticket (for tests and tools; the caller frees it with
 * dispatch__escalation__case__free_unpacked). -ENOENT when not followed. */
int escalation_get_case(escalation_t *self, MDB_txn *txn, const char *ticket_id,
                        Dispatch__Escalation__Case **ret);

const char *escalation_district(const escalation_t *self);
const calendar_t *escalation_calendar(const escalation_t *self);

/* The worker kind for worker_main(): loads the table and the calendar
 * from data_dir, binds the admin endpoint (topology key `request`). */
extern const worker_kind_t escalation_kind;

#endif

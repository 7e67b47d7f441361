/* lifecycle: what each event does to a ticket, written once.
 *
 * The ticket lifecycle of docs/protocol.md section 8 as code: for every
 * member of Event.body, which workers emit it, which receive it,
 * the state it leaves the ticket in, what it changes in a Ticket, and the
 * history line it makes. Intake, router, escalation and audit all fold
 * events through this module and keep only their own side effects
 * (deliveries, timers, KPI facts).
 *
 * Rules that hold for every event:
 *  - A final ticket (MERGED, TRANSFERRED, CLOSED) keeps its state and its
 *    fields; the event still counts (history, updated_at).
 *  - Every switch over Event.body in this tree has no `default:`, so a new
 *    event makes the compiler name each place that must decide what it does.
 *  - The emit table is the only statement of who sends what to whom: an
 *    emitter sends an event to exactly lifecycle_receivers() of it, and a
 *    receiver refuses (dead-letters) an event it is not listed for.
 */
#ifndef DISPATCH_LIFECYCLE_H
#define DISPATCH_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

#include "dispatch.pb-c.h"

/* Worker kinds, as bits of a set. */
typedef enum lifecycle_worker {
    LIFECYCLE_INTAKE = 1u << 0,
    LIFECYCLE_ROUTER = 1u << 1,
    LIFECYCLE_ESCALATION = 1u << 2,
    LIFECYCLE_AUDIT = 1u << 3,
} lifecycle_worker_t;

/* One row of the table. */
typedef struct lifecycle_event {
    Dispatch__Event__BodyCase body;
    unsigned emitters;  /* lifecycle_worker_t bits: who may emit it */
    unsigned receivers; /* who receives it (from any emitter; see lifecycle_receivers) */
    Dispatch__TicketState state_after; /* UNSPECIFIED: the state does not change */
    const char *history_unit;          /* string field of the body: the unit concerned */
    const char *history_text;          /* string field of the body: the words */
} lifecycle_event_t;

/* The row of body; NULL for BODY__NOT_SET or a value no row has. */
const lifecycle_event_t *lifecycle_event(Dispatch__Event__BodyCase body);

/* The worker kind named in the topology ("intake", ...); 0 when unknown. */
lifecycle_worker_t lifecycle_worker_of(const char *kind);
const char *lifecycle_worker_name(lifecycle_worker_t worker);

/* The workers that `from` sends this very event to (a set of bits; 0 when
 * `from` does not emit it). It may depend on the event's content: a ticket
 * transferred at submit and a sign-off on a special report go to audit only,
 * a consult answered at intake goes to the router too. */
unsigned lifecycle_receivers(const Dispatch__Event *event, lifecycle_worker_t from);

/* True when worker `to` is a receiver of events of this kind from anyone. */
bool lifecycle_receives(lifecycle_worker_t to, Dispatch__Event__BodyCase body);

bool lifecycle_state_final(Dispatch__TicketState state);

/* How lifecycle_apply() stores strings it takes from the event. */
typedef enum lifecycle_strings {
    /* The ticket points into the event, which must outlive it. */
    LIFECYCLE_BORROW,
    /* The ticket owns its strings (an unpacked message, see record.h): the
     * old value is freed and a malloc'ed copy put in its place. */
    LIFECYCLE_COPY,
} lifecycle_strings_t;

/* Folds event (which happened at `at`) into ticket: state, unit, times,
 * counters, deadlines, supervision, satisfaction, as the table says.
 * TicketRegistered changes nothing (its body is the ticket). Returns 0, or
 * -ENOMEM (LIFECYCLE_COPY only; the ticket is then partly changed and must
 * not be saved). */
int lifecycle_apply(Dispatch__Ticket *ticket, const Dispatch__Event *event, int64_t at,
                    lifecycle_strings_t strings);

/* The state `state` becomes after events of this kind (final states stay). */
Dispatch__TicketState lifecycle_state_after(Dispatch__TicketState state,
                                            Dispatch__Event__BodyCase body);

/* The event's body (the member of Event.body that is set); NULL when none. */
const ProtobufCMessage *lifecycle_body(const Dispatch__Event *event);

/* The history line of an event: type, actor, unit concerned, text. Points
 * into the event. */
void lifecycle_history_entry(const Dispatch__Event *event, int64_t at,
                             Dispatch__HistoryEntry *entry);

#endif

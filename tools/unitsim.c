/* dispatch-unitsim: the city's units at work, over their real sockets.
 *
 *   dispatch-unitsim --config FILE [--clock SPEC] [--router NAME]...
 *                    [--units ruled|all] [--max-units N]
 *                    [--sign-late S] [--resolve-late S] [--return-share S]
 *                    [--extension-share S] [--progress-share S] [--not-solved-share S]
 *                    [--delay-scale X] [--dispatcher] [--dispatch-every DURATION]
 *                    [--duration DURATION] [--seed N] [--ack-only]
 *                    [--ready-fd N] [--progress-fd N] [--progress-every MS]
 *
 * --ack-only (benchmarks): every delivery is counted and acknowledged,
 * nothing else: no ticket is worked, no action sent.
 *
 * Every unit a router of the topology can send a ticket to gets its main
 * session on that router's unit endpoint (docs/protocol.md section 5): one
 * DEALER whose routing id is the unit id. "ruled" units (the default) are
 * those named by the router's rules.csv (lead or assisting) and their
 * parents below city level (where a returned ticket goes next), plus the
 * district office with --dispatcher; "all" adds every unit of the router's
 * district and every city-level unit. A unit serving several districts has
 * one session per router.
 *
 * A session applies deliveries in seq order and acknowledges them
 * (cumulative), again every few seconds as a heartbeat. A unit then works
 * its tickets in business time (clock.h; --clock like the workers):
 *
 *   lead unit:  sign for (minutes; urgent sooner), handle (hours by kind),
 *               resolve (solved mostly, some explained / partly / not
 *               solved); some tickets are returned within the window
 *               (--return-share), signed for after the sign-for deadline
 *               (--sign-late) or resolved after the handling deadline
 *               (--resolve-late); some get a progress note or an extension
 *               request on the way. A reminder prompts a unit that is not
 *               late to sign for soon; a late one reacts only once overdue.
 *               A reopened ticket is signed for and handled again.
 *   assisting:  signs for and sometimes adds a progress note.
 *
 * Every action carries a stable action_id ("<ticket>/<round>/<verb>"): a
 * result that does not come within a few seconds is asked for again with
 * the same id, so a router restart never applies an action twice.
 *
 * With --dispatcher it also plays the district dispatchers: every
 * --dispatch-every of business time it lists each router's triage queue
 * and assigns the tickets to the district office.
 *
 * With --supervisors it also plays each district's supervisor and a city
 * leader (sim_supervisors.h): every --supervise-every of business time they
 * decide the extension requests (--grant-share granted) and instruct the
 * tickets in the leader sign-off queue, with the keys "supervisor" and
 * "leader" of the keys dir.
 *
 * Progress: one line of counters (business time, totals, "d.<district>.
 * <counter>=N" per district) every --progress-every ms on --progress-fd.
 * Readiness: "ready" on --ready-fd once every session is connected (the
 * sockets connect in the background; deliveries wait in the routers).
 * SIGTERM / SIGINT or --duration end the run; the statistics go to stdout.
 *
 * Invariants: a ticket slot is keyed by (session, ticket id); it has at
 * most one action in flight, and at most one live timer (older heap
 * entries carry an outdated generation and are skipped). Deliveries of a
 * session are applied only in seq order (last + 1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "client.h"
#include "clock.h"
#include "codec.h"
#include "config.h"
#include "sim_array.h"
#include "sim_cli.h"
#include "sim_data.h"
#include "sim_heap.h"
#include "sim_map.h"
#include "sim_random.h"
#include "sim_supervisors.h"
#include "tool_keys.h"
#include "unit_session.h"

#define MAX_ROUTERS 32
#define HEARTBEAT_MS 5000
#define ACTION_RETRY_MS 5000
#define UNAVAILABLE_RETRY_MS 1000
#define DRAIN_PER_SESSION 64
#define HEARTBEATS_PER_TURN 512
#define ADMIN_TIMEOUT_MS 3000
#define MAX_PLAN_STEPS 4

#define MINUTE_MS (60 * 1000LL)
#define HOUR_MS (60 * MINUTE_MS)

typedef enum verb {
    VERB_NONE = 0,
    VERB_SIGN_FOR,
    VERB_RETURN,
    VERB_PROGRESS,
    VERB_EXTEND,
    VERB_RESOLVE,
} verb_t;

static const char *const verb_names[] = {"none", "sign", "return", "progress", "extend", "resolve"};

typedef struct district_stats {
    uint64_t dispatched, assisting, signed_for, returned, resolved, reopened, reminders, overdue,
        triage_assigned;
} district_stats_t;

typedef struct router {
    const char *name, *district, *units_url, *admin_url, *data_dir;
    const char *office; /* unit the dispatcher assigns triage to; NULL = none */
    district_stats_t stats;
    client_t *admin;
    auth_client_t keys;         /* the simulator's key and this router's */
    const auth_client_t *curve; /* &keys, or NULL with security = plain */
} router_t;

typedef struct session {
    unit_session_t *session; /* the unit's main session on the router */
    uint32_t router;
    uint32_t unit; /* index in the registry of that router's data dir */
    char unit_id[65];
} session_t;

typedef struct plan_step {
    verb_t verb;
    int64_t at; /* business ms */
} plan_step_t;

typedef struct ticket {
    uint32_t session;
    char id[65];
    bool lead, urgent, late_sign, late_resolve, overdue_counted, done;
    Dispatch__Kind kind;
    uint32_t round;
    int64_t deadline_sign_for, deadline_handle;
    plan_step_t steps[MAX_PLAN_STEPS];
    uint32_t step_count, step; /* next step to run */
    uint32_t generation;       /* of the live timer */
    /* The action in flight (verb NONE: none). */
    verb_t pending;
    char action_id[96];
    void *packed;
    size_t packed_len;
    int64_t sent_real;
    uint32_t attempts;
} ticket_t;

typedef struct options {
    sim_options_t common;
    const char *routers[MAX_ROUTERS];
    size_t router_count;
    bool all_units;
    long max_units;
    double sign_late, resolve_late, return_share, extension_share, progress_share, not_solved;
    double delay_scale;
    bool dispatcher;
    int64_t dispatch_every;
    bool supervisors; /* --supervisors: sim_supervisors.h */
    bool no_units;    /* --units none: only the dispatcher, supervisors and leader */
    const char *supervisor_actor, *leader_actor;
    int64_t supervise_every;
    double grant_share;
    bool ack_only;
} options_t;

typedef struct sim {
    options_t options;
    config_t *config;
    void *zmq;
    char actor[AUTH_NAME_MAX + 1]; /* the key's actor: the admin requests' actor_id */
    router_t routers[MAX_ROUTERS];
    size_t router_count;
    sim_units_t *registries[MAX_ROUTERS]; /* one per router (data dirs may differ) */
    session_t *sessions;
    size_t session_count, session_capacity;
    zmq_pollitem_t *items;
    sim_map_t *session_index; /* "<router>:<unit>" -> session */
    ticket_t *tickets;
    size_t ticket_count, ticket_capacity;
    sim_map_t *ticket_index; /* "<session>:<ticket id>" -> ticket */
    sim_heap_t *timers;
    sim_random_t random;
    size_t heartbeat_cursor;
    int64_t started_business, started_real;
    int64_t next_dispatch;
    sim_supervisors_t *supervisors; /* with --supervisors */
    sim_random_t supervisor_random; /* their own stream: the units' draws stay as they were */
    int64_t next_supervise;
    /* Totals. */
    uint64_t deliveries, withdrawn, sign_offs, extension_decisions, reminders_seen, actions_sent,
        retries, results_ok, refused, refused_codes[16], progress, extensions;
} sim_t;

static int64_t scaled(const sim_t *sim, double ms)
{
    double value = ms * sim->options.delay_scale;
    return value < 1 ? 1 : (int64_t)value;
}

/* --- setup ------------------------------------------------------------- */

typedef struct served {
    sim_t *sim;
    uint32_t router;
    sim_units_t *units;
    bool *wanted; /* by unit index */
    char *err;
    size_t err_len;
} served_t;

static int want_unit(const char *unit_id, void *ctx)
{
    served_t *served = ctx;
    long index = sim_units_find(served->units, unit_id);
    if (index < 0) {
        snprintf(served->err, served->err_len, "rules name unit %s, which units.csv lacks",
                 unit_id);
        return -EINVAL;
    }
    served->wanted[index] = true;
    /* A returned ticket may go to the returning unit's parent (not the city). */
    const sim_unit_t *unit = sim_units_at(served->units, (size_t)index);
    long parent = *unit->parent ? sim_units_find(served->units, unit->parent) : -1;
    if (parent >= 0 &&
        sim_units_at(served->units, (size_t)parent)->level != DISPATCH__UNIT_LEVEL__UNIT_LEVEL_CITY)
        served->wanted[parent] = true;
    return 0;
}

static int add_session(sim_t *sim, uint32_t router, uint32_t unit, const char *unit_id)
{
    int rc = sim_array_reserve(&sim->sessions, sim->session_count, &sim->session_capacity,
                               sizeof(*sim->sessions), 64);
    if (rc < 0)
        return rc;
    session_t *s = &sim->sessions[sim->session_count];
    memset(s, 0, sizeof(*s));
    s->router = router;
    s->unit = unit;
    snprintf(s->unit_id, sizeof(s->unit_id), "%s", unit_id);
    char key[160];
    snprintf(key, sizeof(key), "%u:%s", router, unit_id);
    rc = sim_map_put(sim->session_index, key, (uint32_t)sim->session_count);
    if (rc < 0)
        return rc;
    sim->session_count++;
    return 0;
}

static int path_in(char *buf, size_t len, const char *dir, const char *file)
{
    int n = snprintf(buf, len, "%s/%s", dir, file);
    return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* Loads the router's registry and rules; adds a session per served unit. */
static int setup_router(sim_t *sim, uint32_t r, char *err, size_t err_len)
{
    router_t *router = &sim->routers[r];
    char path[1024];
    if (path_in(path, sizeof(path), router->data_dir, "units.csv") < 0)
        return -ENAMETOOLONG;
    int rc = sim_units_load(path, &sim->registries[r], err, err_len);
    if (rc < 0)
        return rc;
    sim_units_t *units = sim->registries[r];
    size_t count = sim_units_count(units);
    bool *wanted = calloc(count ? count : 1, sizeof(bool));
    if (!wanted)
        return -ENOMEM;
    served_t served = {sim, r, units, wanted, err, err_len};
    if (path_in(path, sizeof(path), router->data_dir, "rules.csv") < 0)
        rc = -ENAMETOOLONG;
    if (rc == 0)
        rc = sim_rules_each_unit(path, want_unit, &served, err, err_len);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const sim_unit_t *unit = sim_units_at(units, i);
        if (unit->level == DISPATCH__UNIT_LEVEL__UNIT_LEVEL_DISTRICT &&
            strcmp(unit->district, router->district) == 0 && !router->office)
            router->office = unit->id;
        if (sim->options.all_units &&
            (strcmp(unit->district, router->district) == 0 ||
             (!*unit->district && unit->level != DISPATCH__UNIT_LEVEL__UNIT_LEVEL_CITY)))
            wanted[i] = true;
    }
    if (rc == 0 && sim->options.dispatcher && router->office)
        wanted[sim_units_find(units, router->office)] = true;
    long added = 0;
    for (size_t i = 0; rc == 0 && !sim->options.no_units && i < count; i++) {
        if (!wanted[i])
            continue;
        if (sim->options.max_units && added >= sim->options.max_units)
            break;
        rc = add_session(sim, r, (uint32_t)i, sim_units_at(units, i)->id);
        added++;
    }
    free(wanted);
    return rc;
}

/* --- sending ----------------------------------------------------------- */

static void ticket_clear_pending(ticket_t *t)
{
    free(t->packed);
    t->packed = NULL;
    t->packed_len = 0;
    t->pending = VERB_NONE;
}

static const char *resolve_text(Dispatch__ResolutionResult result)
{
    switch (result) {
    case DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_EXPLAINED:
        return "We looked into it and explained the rules to the caller by phone.";
    case DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_PARTLY_SOLVED:
        return "Partly fixed on site; the rest is scheduled with the responsible team.";
    case DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_NOT_SOLVED:
        return "Not solved: it needs funding approval; the caller was told the reason.";
    default:
        return "Staff went on site and dealt with it; the caller was informed.";
    }
}

static Dispatch__ResolutionResult draw_result(sim_t *sim)
{
    double x = sim_random_unit(&sim->random);
    double not_solved = sim->options.not_solved;
    if (x < not_solved)
        return DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_NOT_SOLVED;
    if (x < not_solved + 0.06)
        return DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_PARTLY_SOLVED;
    if (x < not_solved + 0.16)
        return DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_EXPLAINED;
    return DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
}

/* Builds the action of verb for t and sends it; it stays pending until its
 * result comes. */
static int start_action(sim_t *sim, ticket_t *t, verb_t verb, int64_t now)
{
    session_t *s = &sim->sessions[t->session];
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    Dispatch__SignFor sign_for = DISPATCH__SIGN_FOR__INIT;
    Dispatch__ReturnTicket return_ticket = DISPATCH__RETURN_TICKET__INIT;
    Dispatch__Progress progress = DISPATCH__PROGRESS__INIT;
    Dispatch__Resolve resolve = DISPATCH__RESOLVE__INIT;
    Dispatch__ExtensionRequest extension = DISPATCH__EXTENSION_REQUEST__INIT;
    snprintf(t->action_id, sizeof(t->action_id), "%s/%u/%s", t->id, t->round, verb_names[verb]);
    action.unit_id = s->unit_id;
    action.ticket_id = t->id;
    action.action_id = t->action_id;
    switch (verb) {
    case VERB_SIGN_FOR:
        sign_for.note = t->lead ? "Received; assigned to the duty team." : "Received; we assist.";
        action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
        action.sign_for = &sign_for;
        break;
    case VERB_RETURN: {
        bool wrong_area = sim_random_chance(&sim->random, 0.5);
        return_ticket.reason_code = wrong_area
                                        ? DISPATCH__RETURN_REASON__RETURN_REASON_WRONG_AREA
                                        : DISPATCH__RETURN_REASON__RETURN_REASON_NOT_OUR_DUTY;
        return_ticket.reason =
            wrong_area ? "The address is outside our area." : "This matter is outside our remit.";
        action.body_case = DISPATCH__UNIT_ACTION__BODY_RETURN_TICKET;
        action.return_ticket = &return_ticket;
        break;
    }
    case VERB_PROGRESS:
        progress.text = t->lead ? "On site today; work is under way."
                                : "Our staff joined the lead unit on site.";
        action.body_case = DISPATCH__UNIT_ACTION__BODY_PROGRESS;
        action.progress = &progress;
        break;
    case VERB_EXTEND:
        extension.extra_working_days = 2 + (uint32_t)sim_random_below(&sim->random, 4);
        extension.reason = "Parts have to be ordered; the repair needs more time.";
        action.body_case = DISPATCH__UNIT_ACTION__BODY_EXTENSION_REQUEST;
        action.extension_request = &extension;
        break;
    case VERB_RESOLVE:
        resolve.result = draw_result(sim);
        resolve.text = (char *)resolve_text(resolve.result);
        action.body_case = DISPATCH__UNIT_ACTION__BODY_RESOLVE;
        action.resolve = &resolve;
        break;
    default:
        return -EINVAL;
    }
    ticket_clear_pending(t);
    int rc = codec_encode(&action.base, &t->packed, &t->packed_len);
    if (rc < 0)
        return rc;
    t->pending = verb;
    t->attempts = 1;
    t->sent_real = sim_monotonic_ms();
    sim->actions_sent++;
    (void)now;
    if (unit_session_send_encoded(s->session, t->packed, t->packed_len) < 0)
        t->sent_real -= ACTION_RETRY_MS - UNAVAILABLE_RETRY_MS; /* try again soon */
    return 0;
}

/* --- planning ---------------------------------------------------------- */

static int arm(sim_t *sim, uint32_t index, int64_t at)
{
    ticket_t *t = &sim->tickets[index];
    t->generation++;
    return sim_heap_push(sim->timers, at, index, t->generation);
}

static void plan_clear(ticket_t *t)
{
    t->step_count = 0;
    t->step = 0;
    t->done = false;
}

static void plan_add(ticket_t *t, verb_t verb, int64_t at)
{
    if (t->step_count < MAX_PLAN_STEPS)
        t->steps[t->step_count++] = (plan_step_t){verb, at};
}

static int64_t sign_delay(sim_t *sim, const ticket_t *t, int64_t now)
{
    if (t->late_sign) {
        if (t->deadline_sign_for > now)
            return t->deadline_sign_for - now +
                   scaled(sim, sim_random_between(&sim->random, 15, 120) * MINUTE_MS);
        return scaled(sim, sim_random_between(&sim->random, 3, 8) * HOUR_MS);
    }
    if (t->urgent)
        return scaled(sim, sim_random_between(&sim->random, 3, 20) * MINUTE_MS);
    double minutes = sim_random_lognormal(&sim->random, 30, 0.8);
    if (minutes > 360)
        minutes = 360;
    return scaled(sim, minutes * MINUTE_MS);
}

/* Typical business hours a unit takes to handle a ticket of this kind. */
static double median_hours(Dispatch__Kind kind)
{
    switch (kind) {
    case DISPATCH__KIND__KIND_CONSULT:
        return 1;
    case DISPATCH__KIND__KIND_HELP:
        return 3;
    case DISPATCH__KIND__KIND_COMPLAINT:
        return 5;
    case DISPATCH__KIND__KIND_REPORT:
        return 4;
    case DISPATCH__KIND__KIND_SUGGESTION:
        return 6;
    case DISPATCH__KIND__KIND_UNSPECIFIED:
        break;
    }
    return 8;
}

static int64_t handle_delay(sim_t *sim, const ticket_t *t, int64_t now)
{
    double median = median_hours(t->kind);
    if (t->urgent)
        median = 2;
    double hours = sim_random_lognormal(&sim->random, median, 0.7);
    if (hours > 120)
        hours = 120;
    if (t->late_resolve) {
        if (t->deadline_handle > now)
            return t->deadline_handle - now +
                   scaled(sim, sim_random_between(&sim->random, 1, 12) * HOUR_MS);
        hours *= sim_random_between(&sim->random, 3, 6);
    }
    return scaled(sim, hours * HOUR_MS);
}

/* A new assignment of t (dispatched, rerouted, assigned from triage,
 * reopened): the plan from signing for on. */
static int plan_assignment(sim_t *sim, uint32_t index, int64_t now, bool may_return)
{
    ticket_t *t = &sim->tickets[index];
    plan_clear(t);
    if (!t->lead) {
        int64_t at = now + sign_delay(sim, t, now);
        plan_add(t, VERB_SIGN_FOR, at);
        if (sim_random_chance(&sim->random, sim->options.progress_share / 2))
            plan_add(t, VERB_PROGRESS,
                     at + scaled(sim, sim_random_between(&sim->random, 1, 6) * HOUR_MS));
        return arm(sim, index, t->steps[0].at);
    }
    if (may_return && sim_random_chance(&sim->random, sim->options.return_share)) {
        plan_add(t, VERB_RETURN,
                 now + scaled(sim, sim_random_between(&sim->random, 10, 90) * MINUTE_MS));
        return arm(sim, index, t->steps[0].at);
    }
    plan_add(t, VERB_SIGN_FOR, now + sign_delay(sim, t, now));
    return arm(sim, index, t->steps[0].at);
}

/* After the lead signed for: handle, maybe report progress or ask for
 * more time, resolve. */
static void plan_handling(sim_t *sim, ticket_t *t, int64_t now)
{
    int64_t resolve_at = now + handle_delay(sim, t, now);
    if (sim_random_chance(&sim->random, sim->options.progress_share))
        plan_add(t, VERB_PROGRESS, now + (resolve_at - now) / 3);
    /* A unit that will be late asks for more time far more often; it asks
     * half way to its deadline when it knows it, else half way through. */
    double extension = sim->options.extension_share * (t->late_resolve ? 10 : 1);
    if (sim_random_chance(&sim->random, extension > 1 ? 1 : extension)) {
        int64_t by = t->deadline_handle > now && t->deadline_handle < resolve_at
                         ? t->deadline_handle
                         : resolve_at;
        plan_add(t, VERB_EXTEND, now + (by - now) / 2);
    }
    plan_add(t, VERB_RESOLVE, resolve_at);
}

/* The step after t's current one, or done. */
static int next_step(sim_t *sim, uint32_t index)
{
    ticket_t *t = &sim->tickets[index];
    t->step++;
    if (t->step >= t->step_count) {
        t->done = true;
        t->generation++;
        return 0;
    }
    return arm(sim, index, t->steps[t->step].at);
}

/* --- tickets ------------------------------------------------------------ */

static int ticket_find(sim_t *sim, uint32_t session, const char *ticket_id, uint32_t *index)
{
    char key[128];
    snprintf(key, sizeof(key), "%u:%s", session, ticket_id);
    return sim_map_get(sim->ticket_index, key, index);
}

static int ticket_add(sim_t *sim, uint32_t session, const char *ticket_id, uint32_t *index)
{
    int rc = sim_array_reserve(&sim->tickets, sim->ticket_count, &sim->ticket_capacity,
                               sizeof(*sim->tickets), 4096);
    if (rc < 0)
        return rc;
    ticket_t *t = &sim->tickets[sim->ticket_count];
    memset(t, 0, sizeof(*t));
    t->session = session;
    snprintf(t->id, sizeof(t->id), "%s", ticket_id);
    char key[128];
    snprintf(key, sizeof(key), "%u:%s", session, ticket_id);
    rc = sim_map_put(sim->ticket_index, key, (uint32_t)sim->ticket_count);
    if (rc < 0)
        return rc;
    *index = (uint32_t)sim->ticket_count++;
    return 0;
}

static void take_ticket_facts(ticket_t *t, const Dispatch__Ticket *ticket)
{
    if (!ticket)
        return;
    t->kind = ticket->kind;
    t->urgent = ticket->urgency == DISPATCH__URGENCY__URGENCY_URGENT;
    if (ticket->deadline_sign_for)
        t->deadline_sign_for = ticket->deadline_sign_for;
    if (ticket->deadline_handle)
        t->deadline_handle = ticket->deadline_handle;
}

static district_stats_t *stats_of(sim_t *sim, uint32_t session)
{
    return &sim->routers[sim->sessions[session].router].stats;
}

static int on_assigned(sim_t *sim, uint32_t session, const Dispatch__UnitDelivery *delivery,
                       const Dispatch__Ticket *ticket, Dispatch__HandlingRole role, bool reopened,
                       int64_t now)
{
    uint32_t index;
    bool known = ticket_find(sim, session, delivery->ticket_id, &index) == 0;
    if (!known) {
        int rc = ticket_add(sim, session, delivery->ticket_id, &index);
        if (rc < 0)
            return rc;
    }
    ticket_t *t = &sim->tickets[index];
    if (known && reopened && ticket && ticket->reopen_count <= t->round && !t->done)
        return 0; /* this round is being worked already */
    if (known)
        t->round++;
    if (ticket && ticket->reopen_count > t->round)
        t->round = ticket->reopen_count;
    ticket_clear_pending(t);
    take_ticket_facts(t, ticket);
    t->lead = role != DISPATCH__HANDLING_ROLE__HANDLING_ROLE_ASSIST;
    /* Late or not is the unit's habit for this ticket, drawn once. */
    if (!known) {
        t->late_sign = t->lead && sim_random_chance(&sim->random, sim->options.sign_late);
        t->late_resolve = t->lead && sim_random_chance(&sim->random, sim->options.resolve_late);
    } else {
        t->late_sign = false;
        t->late_resolve = false;
    }
    district_stats_t *stats = stats_of(sim, session);
    if (reopened)
        stats->reopened++;
    else if (t->lead)
        stats->dispatched++;
    else
        stats->assisting++;
    return plan_assignment(sim, index, now, !known && !reopened);
}

static void on_reminder(sim_t *sim, uint32_t session, const Dispatch__UnitDelivery *delivery,
                        int64_t now)
{
    const Dispatch__Reminder *reminder = delivery->reminder;
    district_stats_t *stats = stats_of(sim, session);
    stats->reminders++;
    sim->reminders_seen++;
    uint32_t index;
    if (ticket_find(sim, session, delivery->ticket_id, &index) < 0)
        return;
    ticket_t *t = &sim->tickets[index];
    bool sign = reminder->deadline_kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR;
    if (reminder->deadline) {
        if (sign)
            t->deadline_sign_for = reminder->deadline;
        else
            t->deadline_handle = reminder->deadline;
    }
    if (reminder->overdue && !t->overdue_counted) {
        t->overdue_counted = true;
        stats->overdue++;
    }
    if (t->done || t->pending || t->step >= t->step_count)
        return;
    plan_step_t *step = &t->steps[t->step];
    bool late = sign ? t->late_sign : t->late_resolve;
    if (late && !reminder->overdue)
        return;
    if (step->verb != (sign ? VERB_SIGN_FOR : VERB_RESOLVE))
        return;
    int64_t soon = now + scaled(sim, (sign ? sim_random_between(&sim->random, 5, 30)
                                           : sim_random_between(&sim->random, 60, 240)) *
                                         MINUTE_MS);
    if (step->at > soon) {
        step->at = soon;
        arm(sim, index, soon);
    }
}

static void on_withdrawn(sim_t *sim, uint32_t session, const Dispatch__UnitDelivery *delivery)
{
    sim->withdrawn++;
    uint32_t index;
    if (ticket_find(sim, session, delivery->ticket_id, &index) < 0)
        return;
    ticket_t *t = &sim->tickets[index];
    ticket_clear_pending(t);
    t->done = true;
    t->generation++;
}

static int apply_delivery(sim_t *sim, uint32_t session, const Dispatch__UnitDelivery *delivery,
                          int64_t now)
{
    sim->deliveries++;
    switch (delivery->body_case) {
    case DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED:
        return on_assigned(sim, session, delivery, delivery->dispatched->ticket,
                           delivery->dispatched->role, false, now);
    case DISPATCH__UNIT_DELIVERY__BODY_REOPENED:
        return on_assigned(sim, session, delivery, delivery->reopened->ticket,
                           delivery->reopened->role, true, now);
    case DISPATCH__UNIT_DELIVERY__BODY_REMINDER:
        on_reminder(sim, session, delivery, now);
        return 0;
    case DISPATCH__UNIT_DELIVERY__BODY_WITHDRAWN:
        on_withdrawn(sim, session, delivery);
        return 0;
    case DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF:
        sim->sign_offs++;
        return 0;
    case DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION:
        sim->extension_decisions++;
        return 0;
    default:
        return 0;
    }
}

/* An ActionResult for session: the pending action of its ticket moves on. */
static int on_result(sim_t *sim, uint32_t session, const Dispatch__ActionResult *result,
                     int64_t now)
{
    char ticket_id[96];
    snprintf(ticket_id, sizeof(ticket_id), "%s", result->action_id);
    char *slash = strchr(ticket_id, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    uint32_t index;
    if (ticket_find(sim, session, ticket_id, &index) < 0)
        return 0;
    ticket_t *t = &sim->tickets[index];
    if (t->pending == VERB_NONE || strcmp(t->action_id, result->action_id) != 0)
        return 0; /* a late answer to an earlier attempt */
    verb_t verb = t->pending;
    if (result->error && result->error->code == DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE) {
        t->sent_real = sim_monotonic_ms() - ACTION_RETRY_MS + UNAVAILABLE_RETRY_MS;
        return 0;
    }
    ticket_clear_pending(t);
    district_stats_t *stats = stats_of(sim, session);
    if (result->error) {
        sim->refused++;
        if ((unsigned)result->error->code < 16)
            sim->refused_codes[result->error->code]++;
        if (verb == VERB_RETURN) {
            /* The window passed or the ticket moved: keep it after all. */
            plan_clear(t);
            plan_add(t, VERB_SIGN_FOR, now + sign_delay(sim, t, now));
            return arm(sim, index, t->steps[0].at);
        }
        if (verb == VERB_EXTEND || verb == VERB_PROGRESS)
            return next_step(sim, index);
        t->done = true;
        t->generation++;
        return 0;
    }
    sim->results_ok++;
    switch (verb) {
    case VERB_SIGN_FOR:
        if (t->lead) {
            stats->signed_for++;
            plan_handling(sim, t, now);
        }
        break;
    case VERB_RETURN:
        stats->returned++;
        t->done = true;
        t->generation++;
        return 0;
    case VERB_PROGRESS:
        sim->progress++;
        break;
    case VERB_EXTEND:
        sim->extensions++;
        break;
    case VERB_RESOLVE:
        stats->resolved++;
        break;
    default:
        break;
    }
    return next_step(sim, index);
}

/* --- receiving ----------------------------------------------------------- */

/* --ack-only: the delivery is counted; drain_session() acknowledges it. */
static int ack_only_delivery(sim_t *sim)
{
    sim->deliveries++;
    return 0;
}

static int drain_session(sim_t *sim, uint32_t index, int64_t now)
{
    session_t *s = &sim->sessions[index];
    Dispatch__UnitDelivery *delivery;
    for (int n = 0; n < DRAIN_PER_SESSION && unit_session_next(s->session, 0, &delivery) == 0;
         n++) {
        int rc = 0;
        if (delivery->seq == 0) {
            if (delivery->body_case == DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT)
                rc = on_result(sim, index, delivery->action_result, now);
        } else {
            rc = sim->options.ack_only ? ack_only_delivery(sim)
                                       : apply_delivery(sim, index, delivery, now);
        }
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
        if (rc < 0)
            return rc;
    }
    unit_session_ack_due(s->session, -1);
    return 0;
}

/* --- the dispatcher ------------------------------------------------------ */

static void dispatch_triage(sim_t *sim, router_t *router)
{
    if (!router->admin_url || !router->office)
        return;
    if (!router->admin && client_new(sim->zmq, router->admin_url, ADMIN_TIMEOUT_MS, router->curve,
                                     &router->admin) < 0)
        return;
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE;
    list.limit = 200;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.actor_id = sim->actor;
    request.role = DISPATCH__ROLE__ROLE_DISPATCHER;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &list;
    ProtobufCMessage *msg;
    if (client_call(router->admin, &request.base, &dispatch__admin_reply__descriptor, &msg) < 0)
        return;
    Dispatch__AdminReply *reply = (Dispatch__AdminReply *)msg;
    if (reply->body_case == DISPATCH__ADMIN_REPLY__BODY_QUEUE) {
        for (size_t i = 0; i < reply->queue->n_items && !sim_stop_requested(); i++) {
            Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
            assign.ticket_id = reply->queue->items[i]->ticket_id;
            assign.lead_unit = (char *)router->office;
            assign.note = "No rule fits: the district office takes it and coordinates.";
            Dispatch__AdminRequest req = DISPATCH__ADMIN_REQUEST__INIT;
            req.actor_id = sim->actor;
            req.role = DISPATCH__ROLE__ROLE_DISPATCHER;
            req.body_case = DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN;
            req.triage_assign = &assign;
            ProtobufCMessage *answer;
            if (client_call(router->admin, &req.base, &dispatch__admin_reply__descriptor, &answer) <
                0)
                break;
            if (((Dispatch__AdminReply *)answer)->body_case == DISPATCH__ADMIN_REPLY__BODY_DONE)
                router->stats.triage_assigned++;
            protobuf_c_message_free_unpacked(answer, NULL);
        }
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* --- the loop ------------------------------------------------------------ */

static int run_timers(sim_t *sim, int64_t now)
{
    sim_timer_t timer;
    while (sim_heap_peek(sim->timers, &timer) && timer.due <= now) {
        sim_heap_pop(sim->timers, &timer);
        ticket_t *t = &sim->tickets[timer.item];
        if (timer.generation != t->generation || t->done || t->pending || t->step >= t->step_count)
            continue;
        int rc = start_action(sim, t, t->steps[t->step].verb, now);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Resends actions whose result is overdue (same action_id). Linear in the
 * tickets, run a few times a second. */
static void resend_overdue(sim_t *sim)
{
    int64_t real = sim_monotonic_ms();
    for (size_t i = 0; i < sim->ticket_count; i++) {
        ticket_t *t = &sim->tickets[i];
        if (t->pending == VERB_NONE || real - t->sent_real < ACTION_RETRY_MS)
            continue;
        t->sent_real = real;
        t->attempts++;
        sim->retries++;
        unit_session_send_encoded(sim->sessions[t->session].session, t->packed, t->packed_len);
    }
}

static void heartbeats(sim_t *sim)
{
    for (size_t n = 0; n < HEARTBEATS_PER_TURN && n < sim->session_count; n++) {
        session_t *s = &sim->sessions[sim->heartbeat_cursor];
        sim->heartbeat_cursor = (sim->heartbeat_cursor + 1) % sim->session_count;
        unit_session_ack_due(s->session, HEARTBEAT_MS);
    }
}

static void totals(const sim_t *sim, district_stats_t *all)
{
    memset(all, 0, sizeof(*all));
    for (size_t r = 0; r < sim->router_count; r++) {
        const district_stats_t *d = &sim->routers[r].stats;
        all->dispatched += d->dispatched;
        all->assisting += d->assisting;
        all->signed_for += d->signed_for;
        all->returned += d->returned;
        all->resolved += d->resolved;
        all->reopened += d->reopened;
        all->reminders += d->reminders;
        all->overdue += d->overdue;
        all->triage_assigned += d->triage_assigned;
    }
}

static void write_progress(sim_t *sim, int64_t now)
{
    if (sim->options.common.progress_fd < 0)
        return;
    district_stats_t all;
    totals(sim, &all);
    char line[4096], when[32];
    size_t open = 0;
    for (size_t i = 0; i < sim->ticket_count; i++)
        open += !sim->tickets[i].done;
    int n = snprintf(line, sizeof(line),
                     "units t=%s sessions=%zu open=%zu dispatched=%llu signed=%llu returned=%llu "
                     "resolved=%llu reopened=%llu reminders=%llu overdue=%llu triage_assigned=%llu "
                     "refused=%llu retries=%llu",
                     sim_format_time(now, when, sizeof(when)), sim->session_count, open,
                     (unsigned long long)all.dispatched, (unsigned long long)all.signed_for,
                     (unsigned long long)all.returned, (unsigned long long)all.resolved,
                     (unsigned long long)all.reopened, (unsigned long long)all.reminders,
                     (unsigned long long)all.overdue, (unsigned long long)all.triage_assigned,
                     (unsigned long long)sim->refused, (unsigned long long)sim->retries);
    for (size_t r = 0; r < sim->router_count && n > 0 && (size_t)n < sizeof(line); r++) {
        const router_t *router = &sim->routers[r];
        const char *d = router->district;
        const district_stats_t *st = &router->stats;
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      " d.%s.dispatched=%llu d.%s.signed=%llu d.%s.resolved=%llu d.%s.overdue=%llu",
                      d, (unsigned long long)st->dispatched, d, (unsigned long long)st->signed_for,
                      d, (unsigned long long)st->resolved, d, (unsigned long long)st->overdue);
    }
    if (sim->supervisors && n > 0 && (size_t)n < sizeof(line)) {
        sim_supervisors_counts_t c = sim_supervisors_counts(sim->supervisors);
        snprintf(line + n, sizeof(line) - (size_t)n,
                 " ext_granted=%llu ext_refused=%llu signed_off=%llu",
                 (unsigned long long)c.granted, (unsigned long long)c.refused,
                 (unsigned long long)c.signed_off);
    }
    sim_write_progress(&sim->options.common, line);
}

/* The supervisors' and the leader's round, when one is due. */
static void supervise_turn(sim_t *sim, int64_t now)
{
    if (!sim->supervisors || now < sim->next_supervise)
        return;
    sim_supervisors_turn(sim->supervisors, &sim->supervisor_random);
    sim->next_supervise = now + sim->options.supervise_every;
}

static int loop(sim_t *sim)
{
    int64_t next_progress = 0, next_resend = 0;
    sim->started_business = clock_now_ms();
    sim->started_real = sim_monotonic_ms();
    sim->next_dispatch = sim->started_business + sim->options.dispatch_every;
    while (!sim_stop_requested()) {
        int64_t now = clock_now_ms();
        if (sim->options.common.duration &&
            now - sim->started_business >= sim->options.common.duration)
            break;
        int rc = run_timers(sim, now);
        if (rc < 0)
            return rc;
        int64_t real = sim_monotonic_ms();
        if (real >= next_resend) {
            resend_overdue(sim);
            next_resend = real + 250;
        }
        heartbeats(sim);
        if (sim->options.dispatcher && now >= sim->next_dispatch) {
            for (size_t r = 0; r < sim->router_count; r++)
                dispatch_triage(sim, &sim->routers[r]);
            sim->next_dispatch = now + sim->options.dispatch_every;
        }
        supervise_turn(sim, now);
        if (real >= next_progress) {
            write_progress(sim, now);
            next_progress = real + sim->options.common.progress_every;
        }

        long wait = 100;
        sim_timer_t timer;
        if (sim_heap_peek(sim->timers, &timer)) {
            double speed = clock_speed();
            double real_wait = (double)(timer.due - clock_now_ms()) / (speed > 0 ? speed : 1);
            if (real_wait < wait)
                wait = real_wait < 0 ? 0 : (long)real_wait;
        }
        int n = zmq_poll(sim->items, (int)sim->session_count, wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        now = clock_now_ms();
        for (size_t i = 0; n > 0 && i < sim->session_count; i++) {
            if (!(sim->items[i].revents & ZMQ_POLLIN))
                continue;
            n--;
            rc = drain_session(sim, (uint32_t)i, now);
            if (rc < 0)
                return rc;
        }
    }
    write_progress(sim, clock_now_ms());
    return 0;
}

/* --- statistics ---------------------------------------------------------- */

static void print_stats(const sim_t *sim)
{
    district_stats_t all;
    totals(sim, &all);
    uint64_t duplicates = 0, gaps = 0, skipped = 0;
    for (size_t i = 0; i < sim->session_count; i++) {
        const unit_session_t *session = sim->sessions[i].session;
        if (!session)
            continue;
        duplicates += unit_session_duplicates(session);
        gaps += unit_session_gaps(session);
        skipped += unit_session_skipped(session);
    }
    int64_t business = clock_now_ms() - sim->started_business;
    double real = (double)(sim_monotonic_ms() - sim->started_real) / 1000.0;
    printf("unitsim: %zu unit sessions on %zu routers; %lldh%02lldm of business time in %.1f s\n",
           sim->session_count, sim->router_count, (long long)(business / HOUR_MS),
           (long long)(business % HOUR_MS / MINUTE_MS), real);
    printf("unitsim: deliveries %llu: dispatched %llu as lead, %llu as assisting unit, "
           "reopened %llu, reminders %llu, withdrawn %llu, sign-offs %llu, extension "
           "decisions %llu; duplicates %llu, gaps %llu, undecodable %llu\n",
           (unsigned long long)sim->deliveries, (unsigned long long)all.dispatched,
           (unsigned long long)all.assisting, (unsigned long long)all.reopened,
           (unsigned long long)all.reminders, (unsigned long long)sim->withdrawn,
           (unsigned long long)sim->sign_offs, (unsigned long long)sim->extension_decisions,
           (unsigned long long)duplicates, (unsigned long long)gaps, (unsigned long long)skipped);
    printf("unitsim: actions %llu: signed for %llu (as lead), returned %llu, progress %llu, "
           "extensions "
           "asked %llu, resolved %llu; refused %llu (conflict %llu, forbidden %llu, not found "
           "%llu), resent %llu\n",
           (unsigned long long)sim->actions_sent, (unsigned long long)all.signed_for,
           (unsigned long long)all.returned, (unsigned long long)sim->progress,
           (unsigned long long)sim->extensions, (unsigned long long)all.resolved,
           (unsigned long long)sim->refused,
           (unsigned long long)sim->refused_codes[DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT],
           (unsigned long long)sim->refused_codes[DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN],
           (unsigned long long)sim->refused_codes[DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND],
           (unsigned long long)sim->retries);
    printf("unitsim: overdue tickets %llu; triage tickets assigned by the dispatcher %llu\n",
           (unsigned long long)all.overdue, (unsigned long long)all.triage_assigned);
    if (sim->supervisors)
        sim_supervisors_print(sim->supervisors, stdout, "unitsim: ");
    for (size_t r = 0; r < sim->router_count; r++) {
        const district_stats_t *d = &sim->routers[r].stats;
        printf("unitsim:   %-12s dispatched %6llu  signed for %6llu  returned %5llu  resolved "
               "%6llu  reopened %5llu  overdue %5llu\n",
               sim->routers[r].district, (unsigned long long)d->dispatched,
               (unsigned long long)d->signed_for, (unsigned long long)d->returned,
               (unsigned long long)d->resolved, (unsigned long long)d->reopened,
               (unsigned long long)d->overdue);
    }
    fflush(stdout);
}

/* --- options ------------------------------------------------------------- */

static const char usage_text[] =
    "dispatch-unitsim --config FILE [--clock SPEC] [--router NAME]...\n"
    "         [--units ruled|all|none] [--max-units N]\n"
    "         [--sign-late S] [--resolve-late S] [--return-share S]\n"
    "         [--extension-share S] [--progress-share S] [--not-solved-share S]\n"
    "         [--delay-scale X] [--dispatcher] [--dispatch-every DURATION]\n"
    "         [--supervisors] [--supervise-every DURATION] [--grant-share S]\n"
    "         [--supervisor NAME] [--leader NAME]\n"
    "         [--duration DURATION] [--seed N] [--ack-only]\n"
    "         [--ready-fd N] [--progress-fd N] [--progress-every MS] [--key FILE]\n"
    "  --supervisors: also the district supervisors (extension decisions) and a leader\n"
    "         (sign-offs), with the keys of --supervisor and --leader (default supervisor\n"
    "         and leader) in the keys dir; --units none: no unit sessions at all\n"
    "  --key: the simulator's key (security = curve); default <keys_dir>/unitsim.key_secret,\n"
    "         a unit-gateway key with roles unit,dispatcher: it acts for every unit\n"
    "  S: a share, 0.05 or 5%; DURATION: business time, 90s 15m 12h 2d\n";

static int add_router(const char *arg, void *value)
{
    options_t *o = value;
    if (o->router_count == MAX_ROUTERS)
        return -EINVAL;
    o->routers[o->router_count++] = arg;
    return 0;
}

static int choose_units(const char *arg, void *value)
{
    options_t *o = value;
    if (strcmp(arg, "all") != 0 && strcmp(arg, "ruled") != 0 && strcmp(arg, "none") != 0)
        return -EINVAL;
    o->all_units = strcmp(arg, "all") == 0;
    o->no_units = strcmp(arg, "none") == 0;
    return 0;
}

static int parse_options(int argc, char **argv, options_t *o)
{
    const sim_option_t options[] = {
        {"router", SIM_OPTION_CHECK, o, .check = add_router},
        {"units", SIM_OPTION_CHECK, o, .check = choose_units},
        {"max-units", SIM_OPTION_LONG, &o->max_units, .min = 1, .max = 1000000},
        {"sign-late", SIM_OPTION_SHARE, &o->sign_late, .max = 1},
        {"resolve-late", SIM_OPTION_SHARE, &o->resolve_late, .max = 1},
        {"return-share", SIM_OPTION_SHARE, &o->return_share, .max = 1},
        {"extension-share", SIM_OPTION_SHARE, &o->extension_share, .max = 1},
        {"progress-share", SIM_OPTION_SHARE, &o->progress_share, .max = 1},
        {"not-solved-share", SIM_OPTION_SHARE, &o->not_solved, .max = 0.8},
        {"delay-scale", SIM_OPTION_POSITIVE, &o->delay_scale, .max = 1000},
        {"dispatcher", SIM_OPTION_SET, .value = &o->dispatcher},
        {"dispatch-every", SIM_OPTION_DURATION, .value = &o->dispatch_every},
        {"supervisors", SIM_OPTION_SET, .value = &o->supervisors},
        {"supervise-every", SIM_OPTION_DURATION, .value = &o->supervise_every},
        {"grant-share", SIM_OPTION_SHARE, &o->grant_share, .max = 1},
        {"supervisor", SIM_OPTION_TEXT, .value = &o->supervisor_actor},
        {"leader", SIM_OPTION_TEXT, .value = &o->leader_actor},
        {"ack-only", SIM_OPTION_SET, .value = &o->ack_only},
    };
    return sim_parse_options("dispatch-unitsim", usage_text, argc, argv, options,
                             sizeof(options) / sizeof(options[0]), &o->common);
}

static bool router_selected(const options_t *o, const char *name)
{
    if (o->router_count == 0)
        return true;
    for (size_t i = 0; i < o->router_count; i++)
        if (strcmp(o->routers[i], name) == 0)
            return true;
    return false;
}

/* One key for every unit (kind unit-gateway) and the dispatcher role: the
 * simulator is one client of many units, and 3,000 key files would be
 * 3,000 handshakes to manage for nothing the routers could tell apart. */
static int load_keys(sim_t *sim)
{
    snprintf(sim->actor, sizeof(sim->actor), "unitsim");
    const char *key_path = sim->options.common.key_path;
    if (key_path && config_security(sim->config) == CONFIG_SECURITY_CURVE) {
        auth_actor_t actor;
        int rc = auth_actor_load_file(key_path, &actor);
        if (rc < 0) {
            fprintf(stderr, "dispatch-unitsim: --key %s: %s\n", key_path, strerror(-rc));
            return rc;
        }
        snprintf(sim->actor, sizeof(sim->actor), "%s", actor.name);
    }
    for (size_t r = 0; r < sim->router_count; r++) {
        router_t *router = &sim->routers[r];
        char err[512];
        int rc = tool_keys(sim->config, key_path, sim->actor, router->name, &router->keys,
                           &router->curve, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "dispatch-unitsim: %s\n", err);
            return rc;
        }
    }
    return 0;
}

/* With --supervisors: a supervisor and the leader at the escalation of
 * every simulated district. */
static int setup_supervisors(sim_t *sim)
{
    if (!sim->options.supervisors)
        return 0;
    const char *districts[MAX_ROUTERS];
    for (size_t r = 0; r < sim->router_count; r++)
        districts[r] = sim->routers[r].district;
    char err[512] = "";
    int rc = sim_supervisors_new(sim->zmq, sim->config, districts, sim->router_count,
                                 sim->options.supervisor_actor, sim->options.leader_actor,
                                 sim->options.grant_share, &sim->supervisors, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "dispatch-unitsim: --supervisors: %s\n", err[0] ? err : strerror(-rc));
    sim_random_seed(&sim->supervisor_random, sim->options.common.seed, 2);
    return rc;
}

static int setup(sim_t *sim)
{
    char err[1024];
    int rc = sim_load_topology("dispatch-unitsim", &sim->options.common, &sim->config);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < config_worker_count(sim->config); i++) {
        const config_worker_t *w = config_worker_at(sim->config, i);
        if (strcmp(w->kind, "router") != 0 || !router_selected(&sim->options, w->name))
            continue;
        if (!w->units || !w->data_dir) {
            fprintf(stderr, "dispatch-unitsim: router %s has no %s in the topology: skipped\n",
                    w->name, w->units ? "data_dir" : "units endpoint");
            continue;
        }
        if (sim->router_count == MAX_ROUTERS)
            break;
        sim->routers[sim->router_count++] = (router_t){
            .name = w->name,
            .district = w->district,
            .units_url = w->units,
            .admin_url = w->request,
            .data_dir = w->data_dir,
        };
    }
    if (sim->router_count == 0) {
        fprintf(stderr, "dispatch-unitsim: no router with a units endpoint in %s\n",
                sim->options.common.config_path);
        return -EINVAL;
    }
    if ((rc = load_keys(sim)) < 0)
        return rc;
    if ((rc = sim_map_new(&sim->session_index)) < 0 || (rc = sim_map_new(&sim->ticket_index)) < 0 ||
        (rc = sim_heap_new(&sim->timers)) < 0)
        return rc;
    for (size_t r = 0; r < sim->router_count; r++) {
        err[0] = '\0';
        rc = setup_router(sim, (uint32_t)r, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "dispatch-unitsim: router %s: %s\n", sim->routers[r].name,
                    err[0] ? err : strerror(-rc));
            return rc;
        }
    }

    long files = sim_raise_file_limit();
    if (files > 0 && (size_t)files < sim->session_count * 2 + 64)
        fprintf(stderr,
                "dispatch-unitsim: %zu sessions need about %zu open files, the limit is "
                "%ld: some units will not connect\n",
                sim->session_count, sim->session_count * 2 + 64, files);
    sim->zmq = zmq_ctx_new();
    if (!sim->zmq)
        return -errno;
    zmq_ctx_set(sim->zmq, ZMQ_MAX_SOCKETS, (int)sim->session_count + 64);
    sim->items = calloc(sim->session_count ? sim->session_count : 1, sizeof(zmq_pollitem_t));
    if (!sim->items)
        return -ENOMEM;
    for (size_t i = 0; i < sim->session_count; i++) {
        session_t *s = &sim->sessions[i];
        rc = unit_session_new(sim->zmq, sim->routers[s->router].units_url, s->unit_id, NULL,
                              sim->routers[s->router].curve, &s->session);
        if (rc < 0) {
            fprintf(stderr, "dispatch-unitsim: unit %s on %s: %s\n", s->unit_id,
                    sim->routers[s->router].units_url, zmq_strerror(-rc));
            return rc;
        }
        sim->items[i] =
            (zmq_pollitem_t){.socket = unit_session_socket(s->session), .events = ZMQ_POLLIN};
        unit_session_start(s->session, 0);
    }
    return setup_supervisors(sim);
}

static void teardown(sim_t *sim)
{
    for (size_t i = 0; i < sim->ticket_count; i++)
        free(sim->tickets[i].packed);
    free(sim->tickets);
    for (size_t i = 0; i < sim->session_count; i++)
        unit_session_destroy(&sim->sessions[i].session);
    sim_supervisors_destroy(&sim->supervisors);
    for (size_t r = 0; r < sim->router_count; r++) {
        client_destroy(&sim->routers[r].admin);
        sim_units_destroy(&sim->registries[r]);
    }
    free(sim->sessions);
    free(sim->items);
    sim_map_destroy(&sim->session_index);
    sim_map_destroy(&sim->ticket_index);
    sim_heap_destroy(&sim->timers);
    if (sim->zmq)
        zmq_ctx_term(sim->zmq);
    config_destroy(&sim->config);
}

int main(int argc, char **argv)
{
    sim_t sim = {
        .options =
            {
                .sign_late = 0.08,
                .resolve_late = 0.06,
                .return_share = 0.04,
                .extension_share = 0.02,
                .progress_share = 0.3,
                .not_solved = 0.04,
                .delay_scale = 1.0,
                .dispatch_every = 20 * MINUTE_MS,
                .supervise_every = 30 * MINUTE_MS,
                .grant_share = 0.75,
                .supervisor_actor = "supervisor",
                .leader_actor = "leader",
                .common = {.seed = 1, .ready_fd = -1, .progress_fd = -1, .progress_every = 1000},
            },
    };
    int rc = parse_options(argc, argv, &sim.options);
    if (rc == 0)
        rc = sim_start("dispatch-unitsim", &sim.options.common);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    sim_random_seed(&sim.random, sim.options.common.seed, 1);

    rc = setup(&sim);
    if (rc == 0) {
        sim_announce_ready(&sim.options.common);
        fprintf(stderr, "dispatch-unitsim: %zu unit sessions on %zu routers\n", sim.session_count,
                sim.router_count);
        rc = loop(&sim);
        if (rc < 0)
            fprintf(stderr, "dispatch-unitsim: %s\n", zmq_strerror(-rc));
        print_stats(&sim);
    }
    teardown(&sim);
    return rc < 0 ? 1 : 0;
}

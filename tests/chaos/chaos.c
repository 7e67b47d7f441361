/* chaos: the whole city under load while a nemesis kills its workers, and
 * checks at the end that trust nothing the product counts itself.
 *
 * The city: intake-1, a router and an escalation per district (three) and
 * the audit, under CURVE, each a real process on its own LMDB store.
 * Three parties run at once, each in its own thread:
 *
 *   - the client submits tickets at a steady rate (--rate) through the
 *     intake, resending what gets no answer with the same client_request_id
 *     (tests/harness/submitter), and logs every acknowledgement (request id,
 *     ticket id) to <city>/acks.log;
 *   - the units (the six city-wide units, connected to every router) log
 *     every delivery they apply (district, unit, seq, ticket) to
 *     <city>/deliveries.log, and sign for every tenth ticket at once
 *     (without waiting for the result: a unit client sends its action
 *     again, same action_id, until it has one, which the run does at the
 *     end);
 *   - the nemesis SIGKILLs a random worker every 100-500 ms and starts it
 *     again (waiting for its ready line), and now and then SIGSTOPs one for
 *     longer than the dead-link timeout (3 s) before SIGCONT.
 *
 * After --seconds the client and the nemesis stop, every worker runs, and
 * the run waits (on events, with a deadline) until the units have every
 * ticket. Then, from the logs and from the workers' public endpoints:
 *
 *   - every acknowledged ticket is registered exactly once and dispatched
 *     exactly once in the audit log, which holds no ticket nobody
 *     acknowledged and no event twice (event ids), and whose hash chain
 *     verifies (VerifyQuery over the whole log);
 *   - every acknowledged ticket reached its unit (the one the category's
 *     rule names) from its own district's router exactly once: one delivery
 *     seq; the same seq sent again after a crash is the documented
 *     redelivery (docs/protocol.md 5.1) that the unit drops, and is counted
 *     apart, per real delivery;
 *   - intake (GetTicket), the routers (the unit's queue) and audit (its
 *     records folded in the order they happened) give every ticket the
 *     same state: ACCEPTED when its unit signed for it, else DISPATCHED.
 *
 * It prints kills and stops per worker and the figures, and fails unless
 * every check holds, every worker was killed at least once and there were
 * at least --min-kills kills.
 *
 *   chaos [--seconds N] [--rate N] [--min-kills N] [--seed N] [--keep]
 *   env: INTAKE_BIN ROUTER_BIN ESCALATION_BIN AUDIT_BIN DEPLOY_DATA
 *        CHAOS_SKIP (set: exit 77, skipped, e.g. under sanitizers)
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "citydata.h"
#include "dispatch_test.h"
#include "harness.h"
#include "ids.h"
#include "lifecycle.h"
#include "submitter.h"

#define WORKERS 8
#define UNITS 6
#define TICKET_ID_SIZE IDS_TICKET_SIZE
/* Longer than a link's dead_after_ms (3000 by default). */
#define STOP_MIN_MS 3500
#define STOP_SPREAD_MS 1500
#define CONVERGE_MS 180000

/* Categories owned city-wide: one lead unit each, the same in every
 * district. */
static const char *const categories[UNITS][2] = {
    {"traffic", "bureau-traffic"},
    {"water-supply", "water-company"},
    {"power-outage", "power-company"},
    {"heating", "heating-company"},
    {"gas", "gas-company"},
    {"telecom", "telecom-company"},
};

typedef struct ticket {
    char id[TICKET_ID_SIZE]; /* "" until acknowledged */
    unsigned char district, category;
    /* What the checks found. */
    unsigned short registered, dispatched, delivered, wrong_unit, wrong_district;
    bool signed_for;
    Dispatch__TicketState audit_state, router_state, intake_state;
} ticket_t;

typedef struct delivery {
    char ticket[TICKET_ID_SIZE];
    unsigned char district, unit;
    uint64_t seq;
    bool dispatched; /* a DispatchedTicket (else a reminder, ...) */
    bool signed_for; /* the unit signed for it */
} delivery_t;

typedef struct chaos chaos_t;

/* The pool of one district's router, as the units' callback sees it. */
typedef struct unit_site {
    chaos_t *c;
    int district;
} unit_site_t;

struct chaos {
    /* Options. */
    int seconds, rate, min_kills;
    unsigned seed;
    bool keep;

    void *zmq;
    city_t *city;
    char names[WORKERS][64];
    char routers[CITYDATA_DISTRICTS][64];
    FILE *ack_log, *delivery_log;

    /* Client (main thread). */
    ticket_t *tickets;
    size_t count, capacity, acknowledged, refused;

    /* Units (their thread until joined). */
    unit_pool_t *pools[CITYDATA_DISTRICTS];
    delivery_t *deliveries;
    size_t delivery_count, delivery_capacity;
    atomic_size_t fresh_dispatched;
    size_t sign_sent, sign_send_failed;
    atomic_bool units_stop;

    /* Nemesis (its thread until joined). */
    atomic_bool nemesis_stop;
    int kills[WORKERS], stops[WORKERS];
    int64_t restart_ms_total, restart_ms_max;
    int failed_start; /* index + 1 of a worker that did not start again */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pacing only (the nemesis's rhythm, the client's rate), never a wait for
 * something to be ready. */
static void pause_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ nemesis */

/* A signal to a running worker; never to pid 0 (that is our own group). */
static void signal_worker(chaos_t *c, int worker, int sig)
{
    int pid = city_pid(c->city, c->names[worker]);
    if (pid > 0)
        kill(pid, sig);
}

static void *nemesis_main(void *arg)
{
    chaos_t *c = arg;
    unsigned seed = c->seed * 2654435761u + 1;
    int stopped = -1;
    int64_t cont_at = 0, next_stop = now_ms() + 5000 + rand_r(&seed) % 10000;
    while (!atomic_load(&c->nemesis_stop)) {
        pause_ms(100 + rand_r(&seed) % 401);
        int64_t now = now_ms();
        if (stopped >= 0 && now >= cont_at) {
            signal_worker(c, stopped, SIGCONT);
            stopped = -1;
            next_stop = now + 10000 + rand_r(&seed) % 15000;
        } else if (stopped < 0 && now >= next_stop) {
            stopped = (int)(rand_r(&seed) % WORKERS);
            signal_worker(c, stopped, SIGSTOP);
            c->stops[stopped]++;
            cont_at = now + STOP_MIN_MS + rand_r(&seed) % STOP_SPREAD_MS;
            continue;
        }
        int victim = (int)(rand_r(&seed) % WORKERS);
        if (victim == stopped)
            continue;
        int64_t t0 = now_ms();
        city_stop(c->city, c->names[victim], SIGKILL);
        c->kills[victim]++;
        if (city_start(c->city, c->names[victim]) < 0) {
            c->failed_start = victim + 1;
            break;
        }
        int64_t took = now_ms() - t0;
        c->restart_ms_total += took;
        if (took > c->restart_ms_max)
            c->restart_ms_max = took;
    }
    if (stopped >= 0)
        signal_worker(c, stopped, SIGCONT);
    return NULL;
}

/* ------------------------------------------------------------ units */

/* The unit signs for ticket: sent as it is when timeout_ms is 0, else
 * waiting for the result: 0 when applied (or applied before). */
static int sign_for(unit_session_t *session, const char *ticket, int timeout_ms)
{
    if (!session)
        return -ENOTCONN;
    char action_id[64];
    snprintf(action_id, sizeof(action_id), "sign-%s", ticket);
    Dispatch__SignFor sign = DISPATCH__SIGN_FOR__INIT;
    sign.note = "on it";
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = "";
    action.ticket_id = (char *)ticket;
    action.action_id = action_id;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
    action.sign_for = &sign;
    if (timeout_ms == 0)
        return unit_session_send(session, &action);
    Dispatch__ActionResult *result = NULL;
    int rc = unit_session_act(session, &action, timeout_ms, &result);
    if (rc == 0 && result->error) {
        fprintf(stderr, "chaos: sign-for %s: %s\n", ticket,
                result->error->message ? result->error->message : "refused");
        rc = -EPROTO;
    }
    if (result)
        protobuf_c_message_free_unpacked(&result->base, NULL);
    return rc;
}

static void on_delivery(void *ctx, const char *unit, const Dispatch__UnitDelivery *d)
{
    unit_site_t *at = ctx;
    chaos_t *c = at->c;
    int u = 0;
    while (u < UNITS && strcmp(categories[u][1], unit) != 0)
        u++;
    if (c->delivery_count == c->delivery_capacity) {
        c->delivery_capacity = c->delivery_capacity ? c->delivery_capacity * 2 : 4096;
        c->deliveries = realloc(c->deliveries, c->delivery_capacity * sizeof(*c->deliveries));
        if (!c->deliveries) {
            fprintf(stderr, "chaos: out of memory\n");
            exit(1);
        }
    }
    delivery_t *rec = &c->deliveries[c->delivery_count++];
    snprintf(rec->ticket, sizeof(rec->ticket), "%s", d->ticket_id ? d->ticket_id : "");
    rec->district = (unsigned char)at->district;
    rec->unit = (unsigned char)u;
    rec->seq = d->seq;
    rec->dispatched = d->body_case == DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED;
    fprintf(c->delivery_log, "%s %s %llu %s %s\n", citydata_districts[at->district], unit,
            (unsigned long long)d->seq, rec->ticket, rec->dispatched ? "dispatched" : "other");
    rec->signed_for = false;
    if (rec->dispatched) {
        atomic_fetch_add(&c->fresh_dispatched, 1);
        /* Every tenth ticket (by its id) is signed for at once. */
        size_t n = strlen(rec->ticket);
        if (n > 0 && rec->ticket[n - 1] == '0') {
            rec->signed_for = true;
            if (sign_for(unit_pool_session(c->pools[at->district], unit), rec->ticket, 0) == 0)
                c->sign_sent++;
            else
                c->sign_send_failed++;
        }
    }
}

static void *units_main(void *arg)
{
    chaos_t *c = arg;
    unit_site_t at[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        at[d] = (unit_site_t){c, d};
    while (!atomic_load(&c->units_stop))
        for (int d = 0; d < CITYDATA_DISTRICTS; d++)
            unit_pool_poll(c->pools[d], 5, on_delivery, &at[d]);
    fflush(c->delivery_log);
    return NULL;
}

/* ------------------------------------------------------------ client */

/* One round of the client: its submitter's index 0 is ticket first. */
typedef struct round {
    chaos_t *c;
    size_t first;
} round_t;

static void on_reply(void *ctx, size_t index, const Dispatch__Reply *reply)
{
    round_t *round = ctx;
    chaos_t *c = round->c;
    index += round->first;
    ticket_t *t = &c->tickets[index];
    if (reply->body_case == DISPATCH__REPLY__BODY_SUBMIT && reply->submit->ticket_id &&
        reply->submit->ticket_id[0]) {
        snprintf(t->id, sizeof(t->id), "%s", reply->submit->ticket_id);
        fprintf(c->ack_log, "chaos-%zu %s\n", index, t->id);
        c->acknowledged++;
    } else {
        c->refused++;
        fprintf(c->ack_log, "chaos-%zu refused\n", index);
    }
}

/* Submits rounds of rate / 10 tickets every 100 ms until the time is up.
 * A round waits for every answer (resending after 2 s), so a dead or
 * stopped intake holds the client up as it holds a real desk up. */
static int client_run(chaos_t *c, const char *url, const auth_client_t *keys)
{
    int64_t start = now_ms(), end = start + (int64_t)c->seconds * 1000;
    size_t round = (size_t)(c->rate / 10 > 0 ? c->rate / 10 : 1);
    int64_t next = start;
    while (now_ms() < end) {
        submitter_t *submitter;
        int rc = submitter_new(c->zmq, url, 32, keys, &submitter);
        if (rc < 0)
            return rc;
        size_t first = c->count;
        for (size_t i = 0; i < round; i++) {
            if (c->count == c->capacity) {
                c->capacity = c->capacity ? c->capacity * 2 : 8192;
                c->tickets = realloc(c->tickets, c->capacity * sizeof(*c->tickets));
                if (!c->tickets)
                    return -ENOMEM;
            }
            ticket_t *t = &c->tickets[c->count];
            memset(t, 0, sizeof(*t));
            t->district = (unsigned char)(rand() % CITYDATA_DISTRICTS);
            t->category = (unsigned char)(rand() % UNITS);
            char request_id[32], phone[32];
            snprintf(request_id, sizeof(request_id), "chaos-%zu", c->count);
            snprintf(phone, sizeof(phone), "139%08zu", c->count);
            Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
            submit.client_request_id = request_id;
            submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
            submit.kind = DISPATCH__KIND__KIND_HELP;
            submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
            submit.district = (char *)citydata_districts[t->district];
            submit.category = (char *)categories[t->category][0];
            submit.caller_phone = phone;
            submit.description = "chaos run";
            submitter_add(submitter, "agent-7", &submit);
            c->count++;
        }
        round_t ctx = {c, first};
        rc = submitter_run(submitter, 2000, 120000, on_reply, NULL, &ctx);
        submitter_destroy(&submitter);
        if (rc < 0)
            return rc;
        fflush(c->ack_log);
        next += 100;
        pause_ms(next - now_ms());
        if (now_ms() > next + 1000)
            next = now_ms(); /* after an outage: steady again, no burst */
    }
    return 0;
}

/* ------------------------------------------------------------ checks */

static int by_id(const void *a, const void *b)
{
    return strcmp(((const ticket_t *)a)->id, ((const ticket_t *)b)->id);
}

static ticket_t *find_ticket(chaos_t *c, const char *id)
{
    ticket_t key;
    snprintf(key.id, sizeof(key.id), "%s", id);
    return bsearch(&key, c->tickets, c->acknowledged, sizeof(*c->tickets), by_id);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct figures {
    size_t audit_records, audit_unknown, audit_events_twice;
    size_t lost, registered_twice, dispatched_twice, not_dispatched, delivery_missing,
        delivery_twice, delivery_wrong_unit, delivery_wrong_district, delivery_strays;
    size_t state_disagree;
    uint64_t resent, gaps;
    bool chain_intact;
    uint64_t chain_checked, chain_last;
} figures_t;

/* One audit record of an acknowledged ticket. */
typedef struct audit_event {
    size_t ticket; /* index in the sorted tickets */
    int64_t at;
    uint64_t seq;
    Dispatch__Event__BodyCase body;
} audit_event_t;

/* A ticket's events in the order they happened: by event time, a
 * registration before anything else of the same millisecond (the audit
 * records events in the order their links bring them, which is not that
 * order: docs/kpi.md), then by record. */
static int by_happening(const void *a, const void *b)
{
    const audit_event_t *x = a, *y = b;
    if (x->ticket != y->ticket)
        return x->ticket < y->ticket ? -1 : 1;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    bool xr = x->body == DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    bool yr = y->body == DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    if (xr != yr)
        return xr ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every audit record: counts per ticket, the audit's state of each ticket
 * (its events folded in the order they happened), event ids seen twice. */
static int check_audit(chaos_t *c, figures_t *f)
{
    const char *url = city_endpoint(c->city, "audit", "request");
    client_t *client;
    int rc = client_new(c->zmq, url, 30000, test_keys(c->city, "auditor", url), &client);
    if (rc < 0)
        return rc;
    size_t id_count = 0, id_capacity = 0, event_count = 0;
    char **ids = NULL;
    audit_event_t *events = NULL;
    uint64_t from = 1;
    for (;;) {
        Dispatch__ReplayRequest request = DISPATCH__REPLAY_REQUEST__INIT;
        request.from_seq = from;
        request.limit = 1000;
        ProtobufCMessage *msg = NULL;
        rc = client_call(client, &request.base, &dispatch__replay_reply__descriptor, &msg);
        if (rc < 0)
            break;
        Dispatch__ReplayReply *reply = (Dispatch__ReplayReply *)msg;
        size_t n = reply->n_records;
        for (size_t i = 0; i < n; i++) {
            const Dispatch__Event *event = reply->records[i]->event;
            f->audit_records++;
            if (!event)
                continue;
            if (id_count == id_capacity) {
                id_capacity = id_capacity ? id_capacity * 2 : 65536;
                ids = realloc(ids, id_capacity * sizeof(*ids));
                events = realloc(events, id_capacity * sizeof(*events));
                if (!ids || !events) {
                    fprintf(stderr, "chaos: out of memory\n");
                    exit(1);
                }
            }
            ids[id_count++] = strdup(event->event_id ? event->event_id : "");
            if (!event->ticket_id || !event->ticket_id[0])
                continue;
            ticket_t *t = find_ticket(c, event->ticket_id);
            if (!t) {
                f->audit_unknown++;
                continue;
            }
            events[event_count++] = (audit_event_t){(size_t)(t - c->tickets), event->at,
                                                    reply->records[i]->seq, event->body_case};
            if (event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED)
                t->registered++;
            if (event->body_case == DISPATCH__EVENT__BODY_TICKET_DISPATCHED) {
                t->dispatched++;
                if (strcmp(event->ticket_dispatched->unit_id, categories[t->category][1]) != 0)
                    t->wrong_unit++;
            }
        }
        from += n;
        bool done = n == 0 || from > reply->last_seq;
        protobuf_c_message_free_unpacked(msg, NULL);
        if (done)
            break;
    }
    qsort(events, event_count, sizeof(*events), by_happening);
    for (size_t i = 0; i < event_count; i++) {
        ticket_t *t = &c->tickets[events[i].ticket];
        t->audit_state = lifecycle_state_after(t->audit_state, events[i].body);
    }
    free(events);
    qsort(ids, id_count, sizeof(*ids), by_string);
    for (size_t i = 1; i < id_count; i++)
        f->audit_events_twice += strcmp(ids[i - 1], ids[i]) == 0;
    for (size_t i = 0; i < id_count; i++)
        free(ids[i]);
    free(ids);

    /* The hash chain, checked by audit over its whole store, a page of
     * 50,000 records (its most per query) at a time. */
    f->chain_intact = true;
    for (uint64_t seq = 1; rc == 0 && f->chain_intact;) {
        Dispatch__VerifyQuery verify = DISPATCH__VERIFY_QUERY__INIT;
        verify.from_seq = seq;
        verify.limit = 50000;
        Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
        query.tag = 1;
        query.body_case = DISPATCH__AUDIT_QUERY__BODY_VERIFY;
        query.verify = &verify;
        ProtobufCMessage *msg = NULL;
        rc = client_call(client, &query.base, &dispatch__audit_reply__descriptor, &msg);
        if (rc < 0)
            break;
        Dispatch__AuditReply *reply = (Dispatch__AuditReply *)msg;
        bool done = true;
        if (reply->body_case == DISPATCH__AUDIT_REPLY__BODY_VERIFY) {
            f->chain_intact = reply->verify->intact;
            f->chain_checked += reply->verify->checked;
            f->chain_last = reply->verify->last_seq;
            seq += reply->verify->checked;
            done = reply->verify->checked == 0 || seq > reply->verify->last_seq;
        } else {
            f->chain_intact = false;
        }
        protobuf_c_message_free_unpacked(msg, NULL);
        if (done)
            break;
    }
    client_destroy(&client);
    return rc;
}

/* Each router's queue of each unit: the router's state of its tickets. */
static int check_routers(chaos_t *c)
{
    int rc = 0;
    for (int d = 0; d < CITYDATA_DISTRICTS && rc == 0; d++) {
        const char *url = city_endpoint(c->city, c->routers[d], "request");
        client_t *client;
        rc = client_new(c->zmq, url, 30000, test_keys(c->city, "tester", url), &client);
        for (int u = 0; u < UNITS && rc == 0; u++) {
            char after[TICKET_ID_SIZE] = "";
            for (;;) {
                Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
                list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT;
                list.unit_id = (char *)categories[u][1];
                list.limit = 500;
                list.after_ticket_id = after;
                Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
                request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
                request.list_queue = &list;
                Dispatch__AdminReply *reply =
                    test_admin(client, "tester", DISPATCH__ROLE__ROLE_ADMIN, &request);
                if (!reply || reply->body_case != DISPATCH__ADMIN_REPLY__BODY_QUEUE) {
                    fprintf(stderr, "chaos: %s refused the queue of %s\n", c->routers[d],
                            categories[u][1]);
                    if (reply)
                        dispatch__admin_reply__free_unpacked(reply, NULL);
                    rc = -EPROTO;
                    break;
                }
                for (size_t i = 0; i < reply->queue->n_items; i++) {
                    const Dispatch__QueueItem *item = reply->queue->items[i];
                    ticket_t *t = find_ticket(c, item->ticket_id);
                    if (t && t->district == d)
                        t->router_state = item->state;
                    snprintf(after, sizeof(after), "%s", item->ticket_id);
                }
                bool more = reply->queue->more && reply->queue->n_items > 0;
                dispatch__admin_reply__free_unpacked(reply, NULL);
                if (!more)
                    break;
            }
        }
        client_destroy(&client);
    }
    return rc;
}

static int check_intake(chaos_t *c)
{
    const char *url = city_endpoint(c->city, "intake-1", "request");
    client_t *client;
    int rc = client_new(c->zmq, url, 30000, test_keys(c->city, "agent-7", url), &client);
    for (size_t i = 0; i < c->acknowledged && rc == 0; i++) {
        Dispatch__Reply *keep = NULL;
        Dispatch__TicketView *view = test_get(client, c->tickets[i].id, &keep);
        if (view && view->ticket)
            c->tickets[i].intake_state = view->ticket->state;
        if (keep)
            dispatch__reply__free_unpacked(keep, NULL);
    }
    client_destroy(&client);
    return rc;
}

/* The units' log against the acknowledged tickets. */
static void check_deliveries(chaos_t *c, figures_t *f)
{
    for (size_t i = 0; i < c->delivery_count; i++) {
        const delivery_t *d = &c->deliveries[i];
        if (!d->dispatched)
            continue;
        ticket_t *t = find_ticket(c, d->ticket);
        if (!t) {
            f->delivery_strays++;
            continue;
        }
        t->delivered++;
        if (d->unit != t->category)
            t->wrong_unit++;
        if (d->district != t->district)
            t->wrong_district++;
    }
}

static const char *state_word(Dispatch__TicketState state)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&dispatch__ticket_state__descriptor, (int)state);
    return v ? v->name : "?";
}

/* Until the units have a delivery for every acknowledged ticket, or the
 * deadline: the units' count read now and then. */
static bool converge(chaos_t *c, int64_t deadline)
{
    while (atomic_load(&c->fresh_dispatched) < c->acknowledged) {
        if (now_ms() >= deadline)
            return false;
        pause_ms(100);
    }
    return true;
}

/* Runs every check from scratch; true when the city agrees with the
 * client's and the units' logs. */
static bool check_all(chaos_t *c, figures_t *f)
{
    uint64_t resent = f->resent, gaps = f->gaps;
    *f = (figures_t){.resent = resent, .gaps = gaps};
    for (size_t i = 0; i < c->acknowledged; i++) {
        ticket_t *t = &c->tickets[i];
        t->registered = t->dispatched = t->delivered = t->wrong_unit = t->wrong_district = 0;
        t->audit_state = t->router_state = t->intake_state = 0;
    }
    if (check_audit(c, f) < 0 || check_routers(c) < 0 || check_intake(c) < 0) {
        fprintf(stderr, "chaos: a check could not read the city\n");
        return false;
    }
    check_deliveries(c, f);
    for (size_t i = 0; i < c->acknowledged; i++) {
        const ticket_t *t = &c->tickets[i];
        f->lost += t->registered == 0;
        f->registered_twice += t->registered > 1;
        f->not_dispatched += t->dispatched == 0;
        f->dispatched_twice += t->dispatched > 1;
        f->delivery_missing += t->delivered == 0;
        f->delivery_twice += t->delivered > 1;
        f->delivery_wrong_unit += t->wrong_unit > 0;
        f->delivery_wrong_district += t->wrong_district > 0;
        Dispatch__TicketState expected = t->signed_for
                                             ? DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED
                                             : DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED;
        bool agree = t->intake_state == t->router_state && t->router_state == t->audit_state &&
                     t->audit_state == expected;
        if (!agree && f->state_disagree++ < 5)
            fprintf(stderr, "chaos: %s: intake %s, router %s, audit %s\n", t->id,
                    state_word(t->intake_state), state_word(t->router_state),
                    state_word(t->audit_state));
    }
    return f->lost == 0 && f->registered_twice == 0 && f->not_dispatched == 0 &&
           f->dispatched_twice == 0 && f->delivery_missing == 0 && f->delivery_twice == 0 &&
           f->delivery_wrong_unit == 0 && f->delivery_wrong_district == 0 &&
           f->delivery_strays == 0 && f->audit_unknown == 0 && f->audit_events_twice == 0 &&
           f->state_disagree == 0 && f->chain_intact && f->chain_checked == f->chain_last &&
           f->chain_last == f->audit_records;
}

static char *read_file(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return harness_read_text(path);
}

int main(int argc, char **argv)
{
    chaos_t c = {.seconds = 70, .rate = 200, .min_kills = 100, .seed = (unsigned)time(NULL)};
    static const struct option options[] = {
        {"seconds", required_argument, NULL, 't'},
        {"rate", required_argument, NULL, 'r'},
        {"min-kills", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'},
        {"keep", no_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 't':
            c.seconds = atoi(optarg);
            break;
        case 'r':
            c.rate = atoi(optarg);
            break;
        case 'k':
            c.min_kills = atoi(optarg);
            break;
        case 's':
            c.seed = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'K':
            c.keep = true;
            break;
        default:
            fprintf(stderr, "usage: chaos [--seconds N] [--rate N] [--min-kills N] [--seed N] "
                            "[--keep]\n");
            return 2;
        }
    }
    if (getenv("CHAOS_SKIP")) {
        printf("chaos: skipped (%s)\n", getenv("CHAOS_SKIP"));
        return 77;
    }
    srand(c.seed);
    signal(SIGPIPE, SIG_IGN);
    printf("chaos: seed %u, %d s at %d tickets/s\n", c.seed, c.seconds, c.rate);

    /* The city of the example topology: 1 intake, 3 routers, 3
     * escalations, 1 audit, CURVE everywhere. */
    const char *data = getenv("DEPLOY_DATA") ? getenv("DEPLOY_DATA") : "deploy/data";
    char *deadlines = read_file(data, "deadlines.ini"), *calendar = read_file(data, "calendar.ini");
    if (!deadlines || !calendar) {
        fprintf(stderr, "chaos: no deadlines.ini or calendar.ini in %s (DEPLOY_DATA)\n", data);
        return 1;
    }
    const char *escalation_files[] = {"deadlines.ini", deadlines, "calendar.ini", calendar, NULL};
    char *units = citydata_units_csv();
    char *rules[CITYDATA_DISTRICTS];
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        rules[d] = citydata_rules_csv(citydata_districts[d]);
    /* Every ticket its own matter: no duplicate merging. */
    static const char *const intake_args[] = {"--duplicate-window-minutes", "0", NULL};
    city_options_t city_options = {
        .districts = citydata_districts,
        .district_count = CITYDATA_DISTRICTS,
        .units_csv = units,
        .rules_csv = (const char *const *)rules,
        .intake_args = intake_args,
        .escalation = true,
        .escalation_files = escalation_files,
        .audit = true,
    };
    c.zmq = zmq_ctx_new();
    if (city_new("chaos", &city_options, &c.city) < 0 || city_start_all(c.city) < 0) {
        fprintf(stderr, "chaos: the city did not start\n");
        return 1;
    }
    int w = 0;
    snprintf(c.names[w++], 64, "intake-1");
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        snprintf(c.routers[d], 64, "router-%s", citydata_districts[d]);
        snprintf(c.names[w++], 64, "router-%s", citydata_districts[d]);
        snprintf(c.names[w++], 64, "escalation-%s", citydata_districts[d]);
    }
    snprintf(c.names[w++], 64, "audit");

    char path[1024];
    snprintf(path, sizeof(path), "%s/acks.log", city_dir(c.city));
    c.ack_log = fopen(path, "w");
    snprintf(path, sizeof(path), "%s/deliveries.log", city_dir(c.city));
    c.delivery_log = fopen(path, "w");

    /* Everything that reads the city's endpoints and keys happens before
     * the nemesis starts and after it stops: only it starts workers. */
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        unit_pool_new(c.zmq, c.city, UNITS, &c.pools[d]);
        for (int u = 0; u < UNITS; u++)
            unit_pool_connect(c.pools[d], city_endpoint(c.city, c.routers[d], "units"),
                              categories[u][1], 0);
    }
    char intake_url[256];
    snprintf(intake_url, sizeof(intake_url), "%s", city_endpoint(c.city, "intake-1", "request"));
    auth_client_t intake_keys = *test_keys(c.city, "agent-7", intake_url);

    pthread_t units_thread, nemesis_thread;
    pthread_create(&units_thread, NULL, units_main, &c);
    pthread_create(&nemesis_thread, NULL, nemesis_main, &c);
    int64_t t0 = now_ms();
    int rc = client_run(&c, intake_url, &intake_keys);
    int64_t load_ms = now_ms() - t0;
    atomic_store(&c.nemesis_stop, true);
    pthread_join(nemesis_thread, NULL);
    if (rc < 0)
        fprintf(stderr, "chaos: the client gave up: %s\n", strerror(-rc));
    if (c.failed_start)
        fprintf(stderr, "chaos: %s did not start again\n", c.names[c.failed_start - 1]);

    /* Let the city settle, then check it. */
    int64_t deadline = now_ms() + CONVERGE_MS;
    bool delivered = rc == 0 && !c.failed_start && converge(&c, deadline);
    pause_ms(1000); /* late extras show up now */
    atomic_store(&c.units_stop, true);
    pthread_join(units_thread, NULL);
    /* Each unit has its result for each of its sign-fors, sending again
     * what got none. */
    size_t signs = 0, sign_failed = 0;
    for (size_t i = 0; i < c.delivery_count && delivered; i++) {
        const delivery_t *d = &c.deliveries[i];
        if (!d->signed_for)
            continue;
        signs++;
        int src = -ETIMEDOUT;
        for (int attempt = 0; attempt < 3 && src == -ETIMEDOUT; attempt++)
            src = sign_for(unit_pool_session(c.pools[d->district], categories[d->unit][1]),
                           d->ticket, 10000);
        sign_failed += src < 0;
    }
    figures_t f = {0};
    for (int d = 0; d < CITYDATA_DISTRICTS; d++) {
        f.resent += unit_pool_duplicates(c.pools[d]);
        f.gaps += unit_pool_gaps(c.pools[d]);
    }
    /* The acknowledged tickets, by id (a refused submission has none). */
    size_t kept = 0;
    for (size_t i = 0; i < c.count; i++)
        if (c.tickets[i].id[0])
            c.tickets[kept++] = c.tickets[i];
    qsort(c.tickets, kept, sizeof(*c.tickets), by_id);
    for (size_t i = 0; i < c.delivery_count; i++) {
        ticket_t *t = c.deliveries[i].signed_for ? find_ticket(&c, c.deliveries[i].ticket) : NULL;
        if (t)
            t->signed_for = true;
    }
    bool ok = false;
    if (rc == 0 && !c.failed_start) {
        while (!(ok = check_all(&c, &f)) && now_ms() < deadline)
            pause_ms(1000); /* the bus may still be carrying the last events */
    }
    if (sign_failed)
        ok = false;

    int total_kills = 0, total_stops = 0;
    bool everyone = true;
    printf("chaos: kills per worker:");
    for (int i = 0; i < WORKERS; i++) {
        printf(" %s=%d", c.names[i], c.kills[i]);
        total_kills += c.kills[i];
        total_stops += c.stops[i];
        everyone = everyone && c.kills[i] > 0;
    }
    printf("\nchaos: stops (SIGSTOP %d-%d ms) per worker:", STOP_MIN_MS,
           STOP_MIN_MS + STOP_SPREAD_MS);
    for (int i = 0; i < WORKERS; i++)
        if (c.stops[i])
            printf(" %s=%d", c.names[i], c.stops[i]);
    printf("\nchaos: %d kills, %d stops in %.1f s; restart to ready %.0f ms on average, %lld "
           "ms at most\n",
           total_kills, total_stops, (double)load_ms / 1000.0,
           total_kills ? (double)c.restart_ms_total / total_kills : 0.0,
           (long long)c.restart_ms_max);
    printf("chaos: %zu submitted, %zu acknowledged, %zu refused; lost %zu, registered twice %zu, "
           "dispatched twice %zu, never dispatched %zu\n",
           c.count, c.acknowledged, c.refused, f.lost, f.registered_twice, f.dispatched_twice,
           f.not_dispatched);
    printf("chaos: units applied %zu deliveries: missing %zu, duplicated %zu, wrong unit %zu, "
           "wrong district %zu, strays %zu; resent and dropped by the units %llu (%.3f per "
           "delivery), gaps %llu\n",
           c.delivery_count, f.delivery_missing, f.delivery_twice, f.delivery_wrong_unit,
           f.delivery_wrong_district, f.delivery_strays, (unsigned long long)f.resent,
           c.delivery_count ? (double)f.resent / (double)c.delivery_count : 0.0,
           (unsigned long long)f.gaps);
    printf("chaos: units signed for %zu tickets (%zu sent during the run, %zu unsent), %zu "
           "without a result at the end\n",
           signs, c.sign_sent, c.sign_send_failed, sign_failed);
    printf("chaos: audit %zu records, %zu of unknown tickets, %zu events twice; chain %s (%llu "
           "of %llu checked); states that disagree %zu\n",
           f.audit_records, f.audit_unknown, f.audit_events_twice,
           f.chain_intact ? "intact" : "BROKEN", (unsigned long long)f.chain_checked,
           (unsigned long long)f.chain_last, f.state_disagree);
    if (total_kills < c.min_kills || !everyone) {
        fprintf(stderr, "chaos: FAIL: %d kills (at least %d, every worker), too few\n", total_kills,
                c.min_kills);
        ok = false;
    }
    if (c.acknowledged == 0)
        ok = false;
    printf("chaos: %s\n", ok ? "ok" : "FAIL");

    fclose(c.ack_log);
    fclose(c.delivery_log);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        unit_pool_destroy(&c.pools[d]);
    city_destroy(&c.city, !ok || c.keep);
    zmq_ctx_term(c.zmq);
    free(units);
    for (int d = 0; d < CITYDATA_DISTRICTS; d++)
        free(rules[d]);
    free(deadlines);
    free(calendar);
    free(c.tickets);
    free(c.deliveries);
    return ok ? 0 : 1;
}

/* sim_supervisors: see sim_supervisors.h. */
#include "sim_supervisors.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "dispatch.pb-c.h"
#include "sim_map.h"
#include "tool_keys.h"

#define CALL_TIMEOUT_MS 3000
#define PAGE 200
#define MAX_DESKS 32

static const char *const grant_notes[] = {
    "Granted: the reason holds; report progress halfway.",
    "Granted as asked; this is the last extension for this ticket.",
    "Granted: the works need the contractor's slot; keep the caller informed.",
};

static const char *const refuse_notes[] = {
    "Refused: the matter is simple; close it by the current deadline.",
    "Refused: call the caller today and handle it within the limit.",
};

static const char *const instructions[] = {
    "Handle it today and report the result to my office.",
    "The district head takes this personally: on site tomorrow morning, report by noon.",
    "Coordinate with the bureaus concerned and reply to the caller within the limit.",
};

/* One escalation and the two persons at its desk. */
typedef struct desk {
    const char *name, *district, *url;
    auth_client_t supervisor_keys, leader_keys;
    const auth_client_t *supervisor_curve, *leader_curve;
    client_t *supervisor, *leader;
    sim_supervisors_counts_t counts;
} desk_t;

struct sim_supervisors {
    void *zmq;
    const char *supervisor, *leader; /* actors: their keys' names */
    double grant_share;
    desk_t desks[MAX_DESKS];
    size_t desk_count;
    sim_map_t *instructed; /* tickets the leader has instructed */
};

static bool district_wanted(const char *district, const char *const *districts, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(districts[i], district) == 0)
            return true;
    return count == 0;
}

int sim_supervisors_new(void *zmq, const config_t *config, const char *const *districts,
                        size_t count, const char *supervisor, const char *leader,
                        double grant_share, sim_supervisors_t **ret, char *err, size_t err_len)
{
    *ret = NULL;
    sim_supervisors_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->zmq = zmq;
    self->supervisor = supervisor;
    self->leader = leader;
    self->grant_share = grant_share;
    int rc = sim_map_new(&self->instructed);
    for (size_t i = 0; rc == 0 && i < config_worker_count(config); i++) {
        const config_worker_t *w = config_worker_at(config, i);
        if (strcmp(w->kind, "escalation") != 0 || !w->request ||
            !district_wanted(w->district, districts, count))
            continue;
        if (self->desk_count == MAX_DESKS)
            break;
        desk_t *desk = &self->desks[self->desk_count];
        *desk = (desk_t){.name = w->name, .district = w->district, .url = w->request};
        rc = tool_keys(config, NULL, supervisor, w->name, &desk->supervisor_keys,
                       &desk->supervisor_curve, err, err_len);
        if (rc == 0)
            rc = tool_keys(config, NULL, leader, w->name, &desk->leader_keys, &desk->leader_curve,
                           err, err_len);
        if (rc == 0)
            self->desk_count++;
    }
    if (rc == 0 && self->desk_count == 0) {
        snprintf(err, err_len, "no escalation with a request endpoint for the districts simulated");
        rc = -ENOENT;
    }
    if (rc < 0) {
        sim_supervisors_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void sim_supervisors_destroy(sim_supervisors_t **self)
{
    if (!*self)
        return;
    for (size_t i = 0; i < (*self)->desk_count; i++) {
        client_destroy(&(*self)->desks[i].supervisor);
        client_destroy(&(*self)->desks[i].leader);
    }
    sim_map_destroy(&(*self)->instructed);
    free(*self);
    *self = NULL;
}

/* One admin call as actor/role; the reply (free it) or NULL when none came
 * (the client is dropped, to be made again next turn). */
static Dispatch__AdminReply *call(sim_supervisors_t *self, desk_t *desk, bool leader,
                                  Dispatch__AdminRequest *request)
{
    client_t **client = leader ? &desk->leader : &desk->supervisor;
    if (!*client && client_new(self->zmq, desk->url, CALL_TIMEOUT_MS,
                               leader ? desk->leader_curve : desk->supervisor_curve, client) < 0)
        return NULL;
    request->actor_id = (char *)(leader ? self->leader : self->supervisor);
    request->role = leader ? DISPATCH__ROLE__ROLE_LEADER : DISPATCH__ROLE__ROLE_SUPERVISOR;
    ProtobufCMessage *msg;
    if (client_call(*client, &request->base, &dispatch__admin_reply__descriptor, &msg) < 0) {
        client_destroy(client);
        desk->counts.failed++;
        return NULL;
    }
    return (Dispatch__AdminReply *)msg;
}

static Dispatch__AdminReply *list(sim_supervisors_t *self, desk_t *desk, bool leader,
                                  Dispatch__QueueKind kind)
{
    Dispatch__ListQueue body = DISPATCH__LIST_QUEUE__INIT;
    body.kind = kind;
    body.limit = PAGE;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = &body;
    Dispatch__AdminReply *reply = call(self, desk, leader, &request);
    if (reply && reply->body_case != DISPATCH__ADMIN_REPLY__BODY_QUEUE) {
        desk->counts.failed++;
        dispatch__admin_reply__free_unpacked(reply, NULL);
        return NULL;
    }
    return reply;
}

/* A decision; true when it was applied. */
static bool decide(sim_supervisors_t *self, desk_t *desk, const Dispatch__QueueItem *item,
                   bool grant, const char *note)
{
    Dispatch__ExtensionDecision body = DISPATCH__EXTENSION_DECISION__INIT;
    body.ticket_id = item->ticket_id;
    body.request_id = item->request_id;
    body.granted = grant;
    body.note = (char *)note;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION;
    request.extension_decision = &body;
    Dispatch__AdminReply *reply = call(self, desk, false, &request);
    bool done = reply && reply->body_case == DISPATCH__ADMIN_REPLY__BODY_DONE;
    if (reply)
        dispatch__admin_reply__free_unpacked(reply, NULL);
    return done;
}

static void supervise(sim_supervisors_t *self, desk_t *desk, sim_random_t *random)
{
    Dispatch__AdminReply *reply =
        list(self, desk, false, DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION);
    if (!reply)
        return;
    for (size_t i = 0; i < reply->queue->n_items; i++) {
        const Dispatch__QueueItem *item = reply->queue->items[i];
        if (!*item->request_id)
            continue;
        bool grant = sim_random_chance(random, self->grant_share);
        const char *note =
            grant
                ? grant_notes[sim_random_below(random, sizeof(grant_notes) / sizeof(*grant_notes))]
                : refuse_notes[sim_random_below(random,
                                                sizeof(refuse_notes) / sizeof(*refuse_notes))];
        if (grant && decide(self, desk, item, true, note)) {
            desk->counts.granted++;
            continue;
        }
        /* Refused by choice, or a grant the escalation cannot give (the
         * table's most extensions, a deadline already past). */
        if (decide(self, desk, item, false, grant ? refuse_notes[0] : note))
            desk->counts.refused++;
    }
    dispatch__admin_reply__free_unpacked(reply, NULL);
}

/* The leader's attention: the sign-off queue, and the urgent tickets
 * overdue at city supervision or above (urgent tickets are followed to the
 * end, RULES.md), which in a short run rarely wait long enough to be
 * queued. */
static bool wants_instruction(Dispatch__QueueKind kind, const Dispatch__QueueItem *item)
{
    return kind == DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF ||
           (item->urgency == DISPATCH__URGENCY__URGENCY_URGENT &&
            item->supervision >= DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_CITY);
}

static void sign_off(sim_supervisors_t *self, desk_t *desk, sim_random_t *random,
                     Dispatch__QueueKind kind)
{
    Dispatch__AdminReply *reply = list(self, desk, true, kind);
    if (!reply)
        return;
    for (size_t i = 0; i < reply->queue->n_items; i++) {
        const Dispatch__QueueItem *item = reply->queue->items[i];
        uint32_t seen;
        if (!wants_instruction(kind, item) ||
            sim_map_get(self->instructed, item->ticket_id, &seen) == 0)
            continue;
        Dispatch__LeaderSignOff body = DISPATCH__LEADER_SIGN_OFF__INIT;
        body.ticket_id = item->ticket_id;
        body.instruction = (char *)
            instructions[sim_random_below(random, sizeof(instructions) / sizeof(*instructions))];
        Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
        request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF;
        request.leader_sign_off = &body;
        Dispatch__AdminReply *answer = call(self, desk, true, &request);
        if (!answer)
            break;
        /* Done, or refused for good (the ticket closed meanwhile): not again. */
        if (answer->body_case == DISPATCH__ADMIN_REPLY__BODY_DONE)
            desk->counts.signed_off++;
        sim_map_put(self->instructed, item->ticket_id, 1);
        dispatch__admin_reply__free_unpacked(answer, NULL);
    }
    dispatch__admin_reply__free_unpacked(reply, NULL);
}

void sim_supervisors_turn(sim_supervisors_t *self, sim_random_t *random)
{
    for (size_t i = 0; i < self->desk_count; i++) {
        supervise(self, &self->desks[i], random);
        sign_off(self, &self->desks[i], random, DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF);
        sign_off(self, &self->desks[i], random, DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE);
    }
}

sim_supervisors_counts_t sim_supervisors_counts(const sim_supervisors_t *self)
{
    sim_supervisors_counts_t all = {0};
    for (size_t i = 0; self && i < self->desk_count; i++) {
        all.granted += self->desks[i].counts.granted;
        all.refused += self->desks[i].counts.refused;
        all.signed_off += self->desks[i].counts.signed_off;
        all.failed += self->desks[i].counts.failed;
    }
    return all;
}

void sim_supervisors_print(const sim_supervisors_t *self, FILE *out, const char *prefix)
{
    sim_supervisors_counts_t all = sim_supervisors_counts(self);
    fprintf(out,
            "%ssupervisors: extensions granted %llu, refused %llu; leader sign-offs %llu; "
            "unanswered calls %llu\n",
            prefix, (unsigned long long)all.granted, (unsigned long long)all.refused,
            (unsigned long long)all.signed_off, (unsigned long long)all.failed);
    for (size_t i = 0; i < self->desk_count; i++) {
        const desk_t *desk = &self->desks[i];
        fprintf(out, "%s  %-12s granted %5llu  refused %5llu  signed off %5llu\n", prefix,
                desk->district, (unsigned long long)desk->counts.granted,
                (unsigned long long)desk->counts.refused,
                (unsigned long long)desk->counts.signed_off);
    }
}

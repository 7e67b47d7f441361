/* admin: see admin.h. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "words.h"

void admin_reply_reset(admin_reply_t *reply)
{
    for (size_t i = 0; i < reply->entry_count; i++)
        if (reply->entries[i].record)
            protobuf_c_message_free_unpacked(reply->entries[i].record, NULL);
    reply->entry_count = 0;
    reply->link_count = 0;
    reply->bytes = 0;
    reply->more = false;
}

void admin_reply_free(admin_reply_t *reply)
{
    admin_reply_reset(reply);
    free(reply->entries);
    free(reply->items);
    free(reply->link_entries);
    free(reply->link_items);
    reply->entries = NULL;
    reply->items = NULL;
    reply->link_entries = NULL;
    reply->link_items = NULL;
    reply->entry_capacity = reply->link_capacity = 0;
}

lifecycle_worker_t admin_served_by(Dispatch__AdminRequest__BodyCase body)
{
    switch (body) {
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN:
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT:
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE:
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT:
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE:
        return LIFECYCLE_ROUTER;
    case DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION:
    case DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF:
        return LIFECYCLE_ESCALATION;
    case DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE:  /* by queue kind: both */
    case DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY: /* every admin endpoint */
    case DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT:
    case DISPATCH__ADMIN_REQUEST__BODY_STATS:
        return LIFECYCLE_ROUTER | LIFECYCLE_ESCALATION;
    case DISPATCH__ADMIN_REQUEST__BODY__NOT_SET:
        break;
    }
    return 0;
}

lifecycle_worker_t admin_queue_served_by(Dispatch__QueueKind kind)
{
    switch (kind) {
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE:
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT:
        return LIFECYCLE_ROUTER;
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION:
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF:
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE:
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT:
        return LIFECYCLE_ESCALATION;
    case DISPATCH__QUEUE_KIND__QUEUE_KIND_UNSPECIFIED:
        break;
    }
    return 0;
}

/* "this request is served by dispatch-escalation, not the router" */
static int refuse_elsewhere(refusal_t *refusal, const char *field, const char *what,
                            lifecycle_worker_t served_by, lifecycle_worker_t self)
{
    return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, field,
                  "this %s is served by dispatch-%s, not %s%s", what,
                  lifecycle_worker_name(served_by), self == LIFECYCLE_ROUTER ? "the " : "",
                  lifecycle_worker_name(self));
}

int admin_check_queue(refusal_t *refusal, Dispatch__QueueKind kind, lifecycle_worker_t self)
{
    lifecycle_worker_t served_by = admin_queue_served_by(kind);
    if (served_by == 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "list_queue.kind",
                      "list_queue.kind is required");
    if (!(served_by & self))
        return refuse_elsewhere(refusal, "list_queue.kind", "queue", served_by, self);
    return 0;
}

int admin_require_role(refusal_t *refusal, Dispatch__Role role, const Dispatch__Role *allowed,
                       size_t count, const char *what)
{
    for (size_t i = 0; i < count; i++)
        if (role == allowed[i])
            return 0;
    const ProtobufCEnumValue *value =
        protobuf_c_enum_descriptor_get_value(&dispatch__role__descriptor, role);
    return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "role", "role %s may not %s",
                  value ? value->name : "?", what);
}

void admin_done(admin_reply_t *memory, Dispatch__AdminReply *reply, const char *ticket_id,
                Dispatch__TicketState state)
{
    dispatch__admin_done__init(&memory->done);
    snprintf(memory->ticket_id, sizeof(memory->ticket_id), "%s", ticket_id ? ticket_id : "");
    memory->done.ticket_id = memory->ticket_id;
    memory->done.state = state;
    reply->body_case = DISPATCH__ADMIN_REPLY__BODY_DONE;
    reply->done = &memory->done;
}

int admin_page_start(admin_reply_t *memory, refusal_t *refusal, uint32_t limit)
{
    if (limit > ADMIN_QUEUE_MAX_LIMIT)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "list_queue.limit",
                      "limit %u is over %d", limit, ADMIN_QUEUE_MAX_LIMIT);
    admin_reply_reset(memory);
    memory->limit = limit ? limit : ADMIN_QUEUE_DEFAULT_LIMIT;
    return 0;
}

int admin_page_add(admin_reply_t *memory, ProtobufCMessage *record, admin_entry_t **ret)
{
    *ret = NULL;
    if (memory->entry_count == memory->limit) {
        memory->more = true;
        protobuf_c_message_free_unpacked(record, NULL);
        return 0;
    }
    if (memory->entry_count == memory->entry_capacity) {
        size_t capacity = memory->entry_capacity ? memory->entry_capacity * 2 : 32;
        admin_entry_t *grown = realloc(memory->entries, capacity * sizeof(*grown));
        if (!grown) {
            protobuf_c_message_free_unpacked(record, NULL);
            return -ENOMEM;
        }
        memory->entries = grown;
        memory->entry_capacity = capacity;
    }
    admin_entry_t *entry = &memory->entries[memory->entry_count++];
    memset(entry, 0, sizeof(*entry));
    dispatch__queue_item__init(&entry->item);
    entry->record = record;
    entry->item.text = entry->text;
    *ret = entry;
    return 0;
}

int admin_page_keep(admin_reply_t *memory)
{
    admin_entry_t *entry = &memory->entries[memory->entry_count - 1];
    /* A long reason cut at the buffer's end may end inside a character. */
    size_t len = strlen(entry->text);
    while (len > 0 && !codec_utf8_valid(entry->text, len))
        entry->text[--len] = '\0';
    size_t size = protobuf_c_message_get_packed_size(&entry->item.base) + 8;
    if (memory->bytes + size > ADMIN_QUEUE_MAX_BYTES) {
        protobuf_c_message_free_unpacked(entry->record, NULL);
        memory->entry_count--;
        memory->more = true;
        return 1;
    }
    memory->bytes += size;
    return 0;
}

int admin_page_finish(admin_reply_t *memory, Dispatch__AdminReply *reply)
{
    Dispatch__QueueItem **items =
        realloc(memory->items, (memory->entry_count + 1) * sizeof(*items));
    if (!items)
        return -ENOMEM;
    memory->items = items;
    for (size_t i = 0; i < memory->entry_count; i++) {
        /* The entries moved as the array grew: point text at its new place. */
        memory->entries[i].item.text = memory->entries[i].text;
        items[i] = &memory->entries[i].item;
    }
    dispatch__queue_view__init(&memory->queue);
    memory->queue.items = items;
    memory->queue.n_items = memory->entry_count;
    memory->queue.more = memory->more;
    reply->body_case = DISPATCH__ADMIN_REPLY__BODY_QUEUE;
    reply->queue = &memory->queue;
    return 0;
}

static int check(lifecycle_worker_t self, const Dispatch__AdminRequest *request, refusal_t *refusal)
{
    if (refuse_text(refusal, "actor_id", request->actor_id, LIMIT_ID, true))
        return REFUSED;
    if (request->role == DISPATCH__ROLE__ROLE_UNSPECIFIED)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "role",
                      "role is required");
    lifecycle_worker_t served_by = admin_served_by(request->body_case);
    if (served_by == 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "body",
                      "no request set");
    if (!(served_by & self))
        return refuse_elsewhere(refusal, "body", "request", served_by, self);
    return 0;
}

/* The key's bit for a Role; 0 for none. */
static unsigned role_bit(Dispatch__Role role)
{
    switch (role) {
    case DISPATCH__ROLE__ROLE_UNSPECIFIED:
        return 0;
    case DISPATCH__ROLE__ROLE_OPERATOR:
        return AUTH_ROLE_OPERATOR;
    case DISPATCH__ROLE__ROLE_DISPATCHER:
        return AUTH_ROLE_DISPATCHER;
    case DISPATCH__ROLE__ROLE_SUPERVISOR:
        return AUTH_ROLE_SUPERVISOR;
    case DISPATCH__ROLE__ROLE_LEADER:
        return AUTH_ROLE_LEADER;
    case DISPATCH__ROLE__ROLE_UNIT:
        return AUTH_ROLE_UNIT;
    case DISPATCH__ROLE__ROLE_AUDITOR:
        return AUTH_ROLE_AUDITOR;
    case DISPATCH__ROLE__ROLE_ADMIN:
        return AUTH_ROLE_ADMIN;
    }
    return 0;
}

/* The request speaks for the key that sent it, not for whom it names. */
static int check_key(const auth_actor_t *actor, const Dispatch__AdminRequest *request,
                     refusal_t *refusal)
{
    if (strcmp(request->actor_id, actor->name) != 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "actor_id",
                      "actor_id %s is not the actor of this connection's key (%s)",
                      request->actor_id, actor->name);
    unsigned bit = role_bit(request->role);
    if (!bit || !(actor->roles & bit)) {
        const char *word = words_suffix(&dispatch__role__descriptor, (int)request->role);
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "role",
                      "role %s is not a role of %s", word ? word : "?", actor->name);
    }
    return 0;
}

int admin_require(admin_call_t *call, const Dispatch__Role *allowed, size_t count, const char *what)
{
    return admin_require_role(call->err, call->request->role, allowed, count, what);
}

void admin_call_done(admin_call_t *call, const char *ticket_id, Dispatch__TicketState state)
{
    admin_done(call->memory, call->reply, ticket_id, state);
}

/* ---------------------------------------------------------- links */

static Dispatch__LinkDivergence link_divergence(bus_diverged_reason_t reason)
{
    switch (reason) {
    case BUS_DIVERGED_NONE:
        return DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_UNSPECIFIED;
    case BUS_DIVERGED_SENDER_INCARNATION:
        return DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_SENDER_INCARNATION;
    case BUS_DIVERGED_SENDER_RENAMED:
        return DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_SENDER_RENAMED;
    case BUS_DIVERGED_RECEIVER_INCARNATION:
        return DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_RECEIVER_INCARNATION;
    case BUS_DIVERGED_ACKED_BACKWARDS:
        return DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_ACKED_BACKWARDS;
    case BUS_DIVERGED_ACKED_BEYOND:
        return DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_ACKED_BEYOND;
    }
    return DISPATCH__LINK_DIVERGENCE__LINK_DIVERGENCE_UNSPECIFIED;
}

static Dispatch__LinkDirection link_direction(bus_direction_t direction)
{
    switch (direction) {
    case BUS_OUTGOING:
        return DISPATCH__LINK_DIRECTION__LINK_DIRECTION_OUTGOING;
    case BUS_INCOMING:
        return DISPATCH__LINK_DIRECTION__LINK_DIRECTION_INCOMING;
    }
    return DISPATCH__LINK_DIRECTION__LINK_DIRECTION_UNSPECIFIED;
}

/* Adds one link to the view, under ADMIN_QUEUE_MAX_BYTES; 1 = full. */
static int links_add(void *ctx, const bus_link_view_t *view)
{
    admin_reply_t *memory = ctx;
    if (memory->link_count == memory->link_capacity) {
        size_t capacity = memory->link_capacity ? memory->link_capacity * 2 : 16;
        admin_link_t *grown = realloc(memory->link_entries, capacity * sizeof(*grown));
        if (!grown) {
            memory->more = true;
            return 1;
        }
        memory->link_entries = grown;
        memory->link_capacity = capacity;
    }
    admin_link_t *link = &memory->link_entries[memory->link_count];
    const bus_link_stats_t *stats = &view->stats;
    dispatch__link_state__init(&link->state);
    snprintf(link->peer, sizeof(link->peer), "%s", view->peer_id);
    memcpy(link->incarnation, stats->self_incarnation, BUS_INCARNATION_SIZE);
    memcpy(link->peer_incarnation, stats->peer_incarnation, BUS_INCARNATION_SIZE);
    memcpy(link->offered, stats->offered, BUS_INCARNATION_SIZE);
    link->peer_known = stats->peer_known;
    Dispatch__LinkState *state = &link->state;
    state->direction = link_direction(view->direction);
    state->up = stats->up;
    state->last_heard_age = stats->last_ack_age_ms;
    state->outbox = stats->outbox;
    state->lag = stats->lag;
    state->acked = stats->acked;
    state->next = stats->next;
    state->divergence = link_divergence(stats->reason);
    state->refused = stats->refused;
    state->reconnects = stats->reconnects;
    state->resends = stats->resends;
    size_t size = protobuf_c_message_get_packed_size(&state->base) + strlen(link->peer) +
                  3 * (BUS_INCARNATION_SIZE + 2) + 8;
    if (memory->bytes + size > ADMIN_QUEUE_MAX_BYTES) {
        memory->more = true;
        return 1;
    }
    memory->bytes += size;
    memory->link_count++;
    return 0;
}

static int links_fill(admin_reply_t *memory, bus_t *bus);

static int serve_links(admin_call_t *call)
{
    static const Dispatch__Role query_roles[] = {DISPATCH__ROLE__ROLE_ADMIN,
                                                 DISPATCH__ROLE__ROLE_SUPERVISOR};
    static const Dispatch__Role accept_roles[] = {DISPATCH__ROLE__ROLE_ADMIN};
    admin_reply_t *memory = call->memory;
    if (!call->bus)
        return refuse(call->err, DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE, "body",
                      "this worker runs without a bus");
    if (call->request->body_case == DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT) {
        const char *peer = call->request->link_accept->peer;
        if (admin_require(call, accept_roles, 1, "accept a link's incarnation") ||
            refuse_text(call->err, "link_accept.peer", peer, 63, true))
            return REFUSED;
        int rc = bus_accept(call->bus, peer, false);
        if (rc == -ENOENT)
            return refuse(call->err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "link_accept.peer",
                          "no link with %s is diverged", peer);
        if (rc < 0)
            return refuse(call->err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
                          "link_accept.peer", "'%s' is not a worker name", peer);
    } else if (admin_require(call, query_roles, 2, "see the links")) {
        return REFUSED;
    }
    int rc = links_fill(call->memory, call->bus);
    if (rc < 0)
        return rc;
    call->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_LINKS;
    call->reply->links = &memory->links;
    return 0;
}

/* memory->links: the bus's links, outgoing then incoming, cut to fit. */
static int links_fill(admin_reply_t *memory, bus_t *bus)
{
    memory->link_count = 0;
    memory->bytes = 0;
    memory->more = false;
    bus_links_each(bus, links_add, memory);
    Dispatch__LinkState **items =
        realloc(memory->link_items, (memory->link_count + 1) * sizeof(*items));
    if (!items)
        return -ENOMEM;
    memory->link_items = items;
    for (size_t i = 0; i < memory->link_count; i++) {
        /* The entries moved as the array grew: point at their new place. */
        admin_link_t *link = &memory->link_entries[i];
        link->state.peer = link->peer;
        link->state.incarnation = (ProtobufCBinaryData){BUS_INCARNATION_SIZE, link->incarnation};
        link->state.peer_incarnation = (ProtobufCBinaryData){
            link->peer_known ? BUS_INCARNATION_SIZE : 0, link->peer_incarnation};
        bool diverged = link->state.divergence != 0;
        link->state.offered =
            (ProtobufCBinaryData){diverged ? BUS_INCARNATION_SIZE : 0, link->offered};
        items[i] = &link->state;
    }
    dispatch__links_view__init(&memory->links);
    snprintf(memory->worker, sizeof(memory->worker), "%s", bus_self_id(bus));
    memory->links.worker = memory->worker;
    memory->links.links = items;
    memory->links.n_links = memory->link_count;
    memory->links.more = memory->more;
    return 0;
}

int admin_worker_stats(admin_reply_t *memory, MDB_txn *txn, bus_t *bus,
                       Dispatch__WorkerStats *stats)
{
    dispatch__worker_stats__init(stats);
    MDB_envinfo info;
    MDB_stat stat;
    MDB_env *env = txn ? mdb_txn_env(txn) : NULL;
    if (env && mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &stat) == 0) {
        /* Every committed write transaction takes the next id. */
        stats->commits = info.me_last_txnid;
        stats->store_used_bytes = (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
        stats->store_map_bytes = info.me_mapsize;
    }
    if (!bus)
        return 0;
    bus_stats_t counts;
    bus_stats(bus, &counts);
    stats->applied = counts.applied;
    stats->duplicates = counts.duplicates;
    stats->gaps = counts.gaps;
    stats->rejected = counts.rejected;
    stats->refused = counts.refused;
    stats->bad_frames = counts.bad_frames;
    stats->forged = counts.forged;
    stats->dead_dropped = counts.dead_dropped;
    int rc = links_fill(memory, bus);
    if (rc < 0)
        return rc;
    stats->worker = memory->worker;
    stats->links = memory->links.links;
    stats->n_links = memory->links.n_links;
    stats->more = memory->links.more;
    return 0;
}

static int serve_stats(admin_call_t *call)
{
    static const Dispatch__Role roles[] = {
        DISPATCH__ROLE__ROLE_AUDITOR, DISPATCH__ROLE__ROLE_SUPERVISOR, DISPATCH__ROLE__ROLE_ADMIN};
    if (admin_require(call, roles, 3, "see the worker's figures"))
        return REFUSED;
    int rc = admin_worker_stats(call->memory, call->txn, call->bus, &call->memory->stats);
    if (rc < 0)
        return rc;
    call->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_STATS;
    call->reply->stats = &call->memory->stats;
    return 0;
}

static bool served_here(Dispatch__AdminRequest__BodyCase body)
{
    return body == DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY ||
           body == DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT ||
           body == DISPATCH__ADMIN_REQUEST__BODY_STATS;
}

int admin_handle(admin_reply_t *memory, lifecycle_worker_t self, void *worker, bus_t *bus,
                 MDB_txn *txn, const auth_actor_t *actor, int64_t now, const void *body, size_t len,
                 size_t max, admin_serve_fn serve, Dispatch__AdminReply *reply)
{
    admin_reply_reset(memory);
    dispatch__admin_reply__init(reply);
    admin_call_t call = {.worker = worker,
                         .bus = bus,
                         .txn = txn,
                         .now = now,
                         .reply = reply,
                         .memory = memory,
                         .err = &memory->refusal};
    Dispatch__AdminRequest *request = NULL;
    char detail[256];
    int rc = codec_decode(&dispatch__admin_request__descriptor, body, len, max,
                          (ProtobufCMessage **)&request, detail, sizeof(detail));
    if (rc < 0) {
        rc = refuse_decode(&memory->refusal, rc, detail, len, max, "dispatch.AdminRequest");
    } else {
        reply->tag = request->tag;
        call.request = request;
        rc = check(self, request, &memory->refusal);
        if (rc == 0 && actor)
            rc = check_key(actor, request, &memory->refusal);
        if (rc == 0)
            rc = !served_here(request->body_case)                            ? serve(&call)
                 : request->body_case == DISPATCH__ADMIN_REQUEST__BODY_STATS ? serve_stats(&call)
                                                                             : serve_links(&call);
    }
    if (rc == REFUSED) {
        /* A refused request changes nothing: a partial page is dropped. */
        admin_reply_reset(memory);
        refusal_error(&memory->refusal, &memory->error);
        reply->body_case = DISPATCH__ADMIN_REPLY__BODY_ERROR;
        reply->error = &memory->error;
        rc = 0;
    }
    if (request)
        protobuf_c_message_free_unpacked(&request->base, NULL);
    return rc;
}

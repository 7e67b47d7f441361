/* admin: see admin.h. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "words.h"
#include "workerstats.h"

void admin_reply_reset(admin_reply_t *reply)
{
    for (size_t i = 0; i < reply->entry_count; i++)
        if (reply->entries[i].record)
            protobuf_c_message_free_unpacked(reply->entries[i].record, NULL);
    reply->entry_count = 0;
    reply->bytes = 0;
    reply->more = false;
}

void admin_reply_free(admin_reply_t *reply)
{
    admin_reply_reset(reply);
    free(reply->entries);
    free(reply->items);
    linkview_free(&reply->links);
    reply->entries = NULL;
    reply->items = NULL;
    reply->entry_capacity = 0;
}

lifecycle_worker_t admin_served_by(Dispatch__AdminRequest__BodyCase body)
{
    switch (body) {
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN:
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT:
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE:
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT:
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE:
    case DISPATCH__ADMIN_REQUEST__BODY_RULES_IMPORT:
    case DISPATCH__ADMIN_REQUEST__BODY_DATA_RELOAD:
    case DISPATCH__ADMIN_REQUEST__BODY_RULES_LIST:
    case DISPATCH__ADMIN_REQUEST__BODY_UNITS_LIST:
    case DISPATCH__ADMIN_REQUEST__BODY_ROUTE_EXPLAIN:
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_REROUTE:
    case DISPATCH__ADMIN_REQUEST__BODY_TICKET_OWNERS_LIST:
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
    if (limit >
        ADMIN_QUEUE_MAX_LIMIT) /* over a limit: TOO_LARGE, as every limit (protocol.md 10) */
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "list_queue.limit",
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

/* The request speaks for the key that sent it, not for whom it names. */
static int check_key(const auth_actor_t *actor, const Dispatch__AdminRequest *request,
                     refusal_t *refusal)
{
    if (strcmp(request->actor_id, actor->name) != 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "actor_id",
                      "actor_id %s is not the actor of this connection's key (%s)",
                      request->actor_id, actor->name);
    unsigned bit = authz_role_bit(request->role);
    if (!bit || !(actor->roles & bit)) {
        const char *word = words_suffix(&dispatch__role__descriptor, (int)request->role);
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "role",
                      "role %s is not a role of %s", word ? word : "?", actor->name);
    }
    return 0;
}

int admin_require(admin_call_t *call, authz_call_t what)
{
    return authz_named(call->err, what, call->request->role);
}

void admin_call_done(admin_call_t *call, const char *ticket_id, Dispatch__TicketState state)
{
    admin_done(call->memory, call->reply, ticket_id, state);
}

/* ---------------------------------------------------------- links */

static int serve_links(admin_call_t *call)
{
    if (!call->bus)
        return refuse(call->err, DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE, "body",
                      "this worker runs without a bus");
    if (call->request->body_case == DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT) {
        if (admin_require(call, AUTHZ_LINK_ACCEPT) ||
            linkview_accept(call->bus, call->request->link_accept->peer, call->err))
            return REFUSED;
    } else if (admin_require(call, AUTHZ_LINKS)) {
        return REFUSED;
    }
    int rc = linkview_fill(&call->memory->links, call->store, call->bus, LINKVIEW_MAX_BYTES,
                           &call->reply->links);
    if (rc == 0)
        call->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_LINKS;
    return rc;
}

static int serve_stats(admin_call_t *call)
{
    if (admin_require(call, AUTHZ_STATS))
        return REFUSED;
    int rc = workerstats_fill(&call->memory->stats, call->store, call->bus, &call->memory->links);
    if (rc == 0) {
        call->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_STATS;
        call->reply->stats = &call->memory->stats;
    }
    return rc;
}

static bool served_here(Dispatch__AdminRequest__BodyCase body)
{
    return body == DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY ||
           body == DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT ||
           body == DISPATCH__ADMIN_REQUEST__BODY_STATS;
}

int admin_handle(admin_reply_t *memory, lifecycle_worker_t self, void *worker, store_t *store,
                 bus_t *bus, MDB_txn *txn, const auth_actor_t *actor, int64_t now, const void *body,
                 size_t len, size_t max, admin_serve_fn serve, Dispatch__AdminReply *reply)
{
    admin_reply_reset(memory);
    dispatch__admin_reply__init(reply);
    admin_call_t call = {.worker = worker,
                         .store = store,
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
        call.actor = actor;
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

void admin_answer_failed(endpoint_t *admin, size_t max, const char *message,
                         admin_outside_fn outside, void *worker)
{
    Dispatch__Error error = DISPATCH__ERROR__INIT;
    error.code = DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE;
    error.message = (char *)message;
    endpoint_clear_replies(admin);
    for (size_t i = 0; i < endpoint_count(admin); i++) {
        endpoint_request_t request;
        endpoint_request(admin, i, &request);
        Dispatch__AdminRequest *decoded = dispatch__admin_request__unpack(
            NULL, request.body_len <= max ? request.body_len : 0, request.body);
        bool reads_outside =
            decoded && (decoded->body_case == DISPATCH__ADMIN_REQUEST__BODY_STATS ||
                        decoded->body_case == DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY);
        Dispatch__AdminReply reply = DISPATCH__ADMIN_REPLY__INIT;
        if (!reads_outside ||
            outside(worker, request.actor, request.body, request.body_len, &reply) < 0) {
            dispatch__admin_reply__init(&reply);
            reply.tag = decoded ? decoded->tag : 0;
            reply.body_case = DISPATCH__ADMIN_REPLY__BODY_ERROR;
            reply.error = &error;
        }
        endpoint_reply(admin, i, &reply.base);
        if (decoded)
            dispatch__admin_request__free_unpacked(decoded, NULL);
    }
}

/* linkview: the LinksView of a worker's bus. */
#include "linkview.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

typedef struct fill {
    linkview_t *self;
    size_t max_bytes;
} fill_t;

/* Adds one link to the view, under max_bytes; 1 = full. */
static int links_add(void *ctx, const bus_link_view_t *view)
{
    fill_t *fill = ctx;
    linkview_t *memory = fill->self;
    if (memory->count == memory->capacity) {
        size_t capacity = memory->capacity ? memory->capacity * 2 : 16;
        linkview_link_t *grown = realloc(memory->entries, capacity * sizeof(*grown));
        if (!grown) {
            memory->view.more = true;
            return 1;
        }
        memory->entries = grown;
        memory->capacity = capacity;
    }
    linkview_link_t *link = &memory->entries[memory->count];
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
    if (memory->bytes + size > fill->max_bytes) {
        memory->view.more = true;
        return 1;
    }
    memory->bytes += size;
    memory->count++;
    return 0;
}

int linkview_fill(linkview_t *self, const store_t *store, bus_t *bus, size_t max_bytes,
                  Dispatch__LinksView **ret)
{
    dispatch__links_view__init(&self->view);
    storagestate_fill(&self->storage, store);
    self->view.storage = &self->storage.state;
    self->count = 0;
    /* The storage state is always sent; the links take what is left. */
    self->bytes = protobuf_c_message_get_packed_size(&self->storage.state.base) + 8;
    fill_t fill = {self, max_bytes};
    bus_links_each(bus, links_add, &fill);
    Dispatch__LinkState **items = realloc(self->items, (self->count + 1) * sizeof(*items));
    if (!items)
        return -ENOMEM;
    self->items = items;
    for (size_t i = 0; i < self->count; i++) {
        /* The entries moved as the array grew: point at their new place. */
        linkview_link_t *link = &self->entries[i];
        link->state.peer = link->peer;
        link->state.incarnation = (ProtobufCBinaryData){BUS_INCARNATION_SIZE, link->incarnation};
        link->state.peer_incarnation = (ProtobufCBinaryData){
            link->peer_known ? BUS_INCARNATION_SIZE : 0, link->peer_incarnation};
        bool diverged = link->state.divergence != 0;
        link->state.offered =
            (ProtobufCBinaryData){diverged ? BUS_INCARNATION_SIZE : 0, link->offered};
        items[i] = &link->state;
    }
    snprintf(self->worker, sizeof(self->worker), "%s", bus_self_id(bus));
    self->view.worker = self->worker;
    self->view.links = items;
    self->view.n_links = self->count;
    *ret = &self->view;
    return 0;
}

int linkview_accept(bus_t *bus, const char *peer, refusal_t *refusal)
{
    if (refuse_text(refusal, "link_accept.peer", peer, 63, true))
        return REFUSED;
    int rc = bus_accept(bus, peer, false);
    if (rc == -ENOENT)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "link_accept.peer",
                      "no link with %s is diverged", peer);
    if (rc < 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "link_accept.peer",
                      "'%s' is not a worker name", peer);
    return 0;
}

void linkview_free(linkview_t *self)
{
    free(self->entries);
    free(self->items);
    memset(self, 0, sizeof(*self));
}

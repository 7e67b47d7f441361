/* peers: see peers.h. */
#include "peers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

typedef struct peer {
    lifecycle_worker_t kind;
    const char *district;  /* NULL for intake and audit; points into the config */
    const char *id_prefix; /* intake: "" when the topology gives none */
    const char *name;      /* points into the config */
} peer_t;

struct peers {
    bus_t *bus;
    lifecycle_worker_t self;
    peer_t *items;
    size_t count;
};

int peers_new(const config_t *config, const char *name, bus_t *bus, peers_t **ret)
{
    const config_worker_t *me = config_worker_find(config, name);
    if (!me)
        return -EINVAL;
    peers_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->bus = bus;
    self->self = lifecycle_worker_of(me->kind);
    self->items = calloc(me->link_count ? me->link_count : 1, sizeof(*self->items));
    if (!self->items) {
        free(self);
        return -ENOMEM;
    }
    for (size_t i = 0; i < me->link_count; i++) {
        const config_worker_t *peer = config_worker_find(config, me->links[i]);
        if (!peer)
            continue;
        self->items[self->count++] = (peer_t){
            .kind = lifecycle_worker_of(peer->kind),
            .district = peer->district,
            .id_prefix = peer->id_prefix ? peer->id_prefix : "",
            .name = peer->name,
        };
    }
    *ret = self;
    return 0;
}

void peers_destroy(peers_t **self)
{
    if (!*self)
        return;
    free((*self)->items);
    free(*self);
    *self = NULL;
}

/* The bus link to peer: links are opened by the bus, possibly after
 * peers_new(), so they are looked up when used. */
static bus_link_t *link_of(const peers_t *self, const peer_t *peer)
{
    return peer && self->bus ? bus_link_find(self->bus, peer->name) : NULL;
}

/* The first peer of kind (in district, when not NULL). */
static const peer_t *find(const peers_t *self, lifecycle_worker_t kind, const char *district)
{
    for (size_t i = 0; i < self->count; i++) {
        const peer_t *peer = &self->items[i];
        if (peer->kind == kind &&
            (!district || (peer->district && strcmp(peer->district, district) == 0)))
            return peer;
    }
    return NULL;
}

bus_link_t *peers_intake_of(const peers_t *self, const char *ticket_id)
{
    const peer_t *only = NULL;
    size_t intakes = 0;
    const char *dash = strchr(ticket_id, '-');
    size_t len = dash ? (size_t)(dash - ticket_id) : strlen(ticket_id);
    for (size_t i = 0; i < self->count; i++) {
        const peer_t *peer = &self->items[i];
        if (peer->kind != LIFECYCLE_INTAKE)
            continue;
        only = peer;
        intakes++;
        if (strlen(peer->id_prefix) == len && memcmp(peer->id_prefix, ticket_id, len) == 0)
            return link_of(self, peer);
    }
    return intakes == 1 ? link_of(self, only) : NULL;
}

bus_link_t *peers_router_of(const peers_t *self, const char *district)
{
    return link_of(self, find(self, LIFECYCLE_ROUTER, district));
}

bus_link_t *peers_escalation_of(const peers_t *self, const char *district)
{
    return link_of(self, find(self, LIFECYCLE_ESCALATION, district));
}

bus_link_t *peers_audit(const peers_t *self)
{
    return link_of(self, find(self, LIFECYCLE_AUDIT, NULL));
}

int peers_send(const peers_t *self, MDB_txn *txn, const Dispatch__Event *event)
{
    unsigned to = lifecycle_receivers(event, self->self);
    bus_link_t *links[4] = {
        to & LIFECYCLE_INTAKE ? peers_intake_of(self, event->ticket_id) : NULL,
        to & LIFECYCLE_ROUTER ? peers_router_of(self, event->district) : NULL,
        to & LIFECYCLE_ESCALATION ? peers_escalation_of(self, event->district) : NULL,
        to & LIFECYCLE_AUDIT ? peers_audit(self) : NULL,
    };
    if (!self->bus || !(links[0] || links[1] || links[2] || links[3]))
        return 0;
    void *body;
    size_t len;
    int rc = codec_encode(&event->base, &body, &len);
    for (size_t i = 0; rc == 0 && i < 4; i++)
        if (links[i])
            rc = bus_send(self->bus, txn, links[i], body, len);
    free(body);
    return rc;
}

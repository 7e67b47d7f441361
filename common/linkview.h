/* linkview: a worker's bus links as the LinksView every endpoint answers
 * with (router and escalation through their admin endpoint, intake and
 * audit through their request endpoint), and LinkAccept. The view carries
 * the worker's storage state too: a worker whose batches fail applies
 * nothing its links bring, and whoever looks at the links should see why.
 *
 * A linkview_t is the memory one LinksView points into; it is reused from
 * one answer to the next and freed with linkview_free(). */
#ifndef DISPATCH_LINKVIEW_H
#define DISPATCH_LINKVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "dispatch.pb-c.h"
#include "refusal.h"
#include "storagestate.h"

/* What a LinksView may take of a reply (all replies stay under 64 KiB). */
#define LINKVIEW_MAX_BYTES (60 * 1024)

/* One LinkState, with the bytes it points into. */
typedef struct linkview_link {
    Dispatch__LinkState state;
    char peer[64];
    unsigned char incarnation[BUS_INCARNATION_SIZE], peer_incarnation[BUS_INCARNATION_SIZE],
        offered[BUS_INCARNATION_SIZE];
    bool peer_known;
} linkview_link_t;

typedef struct linkview {
    Dispatch__LinksView view;
    char worker[64];
    storagestate_t storage;
    linkview_link_t *entries;
    Dispatch__LinkState **items;
    size_t count, capacity, bytes;
} linkview_t;

/* Fills self->view with the state of store (storagestate.h) and every
 * link of bus, up to max_bytes of reply (view.more when some did not fit);
 * *ret is &self->view. -ENOMEM. */
int linkview_fill(linkview_t *self, const store_t *store, bus_t *bus, size_t max_bytes,
                  Dispatch__LinksView **ret);
/* LinkAccept of peer (checked: 1..63 bytes, a diverged link): 0, or
 * REFUSED with refusal filled (field "link_accept.peer"). */
int linkview_accept(bus_t *bus, const char *peer, refusal_t *refusal);
void linkview_free(linkview_t *self);

#endif

/* workerstats: a worker's figures for metrics, the answer to StatsQuery on
 * every client endpoint (intake's Request, router's and escalation's
 * AdminRequest, audit's AuditQuery; docs/protocol.md section 6).
 *
 * What it holds: the counts of the process's client endpoints (malformed
 * requests, connections cut; endpoint.h), the commits of the worker's store since it was created
 * (LMDB's last transaction id: every committed write transaction takes the
 * next one), the store's size and storage state (storagestate.h), the bus's
 * counters since the start, and the bus's links as linkview.h gives them.
 * Nothing in it is personal.
 *
 * The links and the storage state point into a linkview_t the caller keeps
 * until the reply is sent (and frees with linkview_free()).
 */
#ifndef DISPATCH_WORKERSTATS_H
#define DISPATCH_WORKERSTATS_H

#include "bus.h"
#include "dispatch.pb-c.h"
#include "linkview.h"
#include "store.h"

/* Fills stats from store and bus (NULL: no bus figures, no links). 0, or
 * -ENOMEM. */
int workerstats_fill(Dispatch__WorkerStats *stats, store_t *store, bus_t *bus, linkview_t *links);

#endif

/* workerstats: a worker's figures for metrics, the answer to StatsQuery on
 * every client endpoint (intake's Request, router's and escalation's
 * AdminRequest, audit's AuditQuery; docs/protocol.md section 6).
 *
 * What it holds: the commits of the worker's store since it was created
 * (LMDB's last transaction id: every committed write transaction takes the
 * next one), the store's size, the bus's counters since the start, and the
 * bus's links as linkview.h gives them. Nothing in it is personal.
 *
 * The links point into a linkview_t the caller keeps until the reply is
 * sent (and frees with linkview_free()).
 */
#ifndef DISPATCH_WORKERSTATS_H
#define DISPATCH_WORKERSTATS_H

#include <lmdb.h>

#include "bus.h"
#include "dispatch.pb-c.h"
#include "linkview.h"

/* Fills stats from txn's environment and bus (NULL: no bus figures, no
 * links). 0, or -ENOMEM. */
int workerstats_fill(Dispatch__WorkerStats *stats, MDB_txn *txn, bus_t *bus, linkview_t *links);

#endif

/* peers: the workers one worker sends events to, found in the topology.
 *
 * A worker's `links` name the workers its bus sends to. peers_new() sorts
 * them by kind: the intakes (each with the id prefix of the tickets it
 * issues), the router and the escalation of each district, the audit.
 * peers_send() then hands an event to exactly the workers that the
 * lifecycle table names for it (lifecycle_receivers()), picking for each
 * receiving kind the one instance that concerns the ticket: the intake that
 * issued it (by id prefix), the router or escalation of its district.
 *
 * A receiver the topology gives no link to is skipped: that is the
 * topology's decision, and the lifecycle test checks that the example
 * topology links every emitter to each of its receivers.
 */
#ifndef DISPATCH_PEERS_H
#define DISPATCH_PEERS_H

#include <lmdb.h>

#include "bus.h"
#include "config.h"
#include "dispatch.pb-c.h"
#include "lifecycle.h"

typedef struct peers peers_t;

/* Sorts the links of worker `name`; bus may be NULL (handlers called
 * without sockets: nothing is sent). The config must outlive the peers. -EINVAL when `name` is not
 * in config, -ENOMEM. */
int peers_new(const config_t *config, const char *name, bus_t *bus, peers_t **ret);
void peers_destroy(peers_t **self);

/* The link to the intake that issued ticket_id (by its id prefix; the only
 * intake when there is one), the router or escalation of district, the
 * audit; NULL when there is none. */
bus_link_t *peers_intake_of(const peers_t *self, const char *ticket_id);
bus_link_t *peers_router_of(const peers_t *self, const char *district);
bus_link_t *peers_escalation_of(const peers_t *self, const char *district);
bus_link_t *peers_audit(const peers_t *self);

/* Appends event (filled in: ids, district, body) to the outbox of each of
 * its receivers, in txn. The event is encoded once. */
int peers_send(const peers_t *self, MDB_txn *txn, const Dispatch__Event *event);

#endif

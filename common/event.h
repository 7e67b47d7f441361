/* event: lifecycle events (dispatch.Event) on the bus.
 *
 * An event is encoded once and appended to the outbox of each link it goes
 * to, in the caller's transaction. Its event_id is "<origin>-<i>-<n>": i
 * the first 4 bytes of the bus incarnation in hex, n from a durable counter
 * in the caller's meta database, taken in the same transaction: stable
 * across a batch restart, unique across the system (origins are unique
 * instance names, and a state dir reset under the same name counts again
 * from 1 under a new incarnation, which receivers that dedupe by event id
 * must not mistake for what they have).
 */
#ifndef DISPATCH_EVENT_H
#define DISPATCH_EVENT_H

#include <lmdb.h>

#include "bus.h"
#include "dispatch.pb-c.h"

#define EVENT_MAX_SIZE (256 * 1024)
#define EVENT_ID_SIZE 80

/* Takes the next id of origin from meta (key "event.next"); bus gives the
 * incarnation (NULL: "<origin>-<n>", for handlers run without a bus). */
int event_next_id(MDB_txn *txn, MDB_dbi meta, const char *origin, const bus_t *bus,
                  char id[EVENT_ID_SIZE]);

/* Encodes event and appends it to each of the links (NULL entries are
 * skipped). */
int event_send(bus_t *bus, MDB_txn *txn, bus_link_t *const *links, size_t link_count,
               const Dispatch__Event *event);

/* Sets the event's body to message, which it borrows (a message on the
 * stack is fine): the member of Event.body of message's type. Returns that
 * member's case; BODY__NOT_SET (event unchanged) when no member has it. */
Dispatch__Event__BodyCase event_set_body(Dispatch__Event *event, ProtobufCMessage *message);

/* Decodes an event from the bus (limits and checks of codec_decode). */
int event_decode(const void *body, size_t len, Dispatch__Event **ret, char *err, size_t err_len);
void event_free(Dispatch__Event *event);

/* The event's name: the snake_case oneof member ("ticket_registered"), or
 * "unknown". Used in audit topics and history. */
const char *event_name(const Dispatch__Event *event);

#endif

/* storagestate: a worker's store as the protocol shows it (StorageState):
 * whether its write batches fail, how many failed, and why. The one filler
 * of every StorageState a worker sends: on audit's every reply, in
 * WorkerStats and in LinksView.
 *
 * A storagestate_t is the memory one StorageState points into (its error
 * text); the caller keeps it until the reply is sent. Nothing to free. */
#ifndef DISPATCH_STORAGESTATE_H
#define DISPATCH_STORAGESTATE_H

#include "dispatch.pb-c.h"
#include "store.h"

typedef struct storagestate {
    Dispatch__StorageState state;
    /* store_strerror() of the latest failure; its longest (a refused data
     * file) is under 200 bytes. */
    char error[256];
} storagestate_t;

/* Fills self->state from store_health() of store: failing while an
 * episode of failures is open. */
void storagestate_fill(storagestate_t *self, const store_t *store);

#endif

/* storagestate: StorageState from store_health(); see storagestate.h. */
#include "storagestate.h"

#include <stdio.h>

void storagestate_fill(storagestate_t *self, const store_t *store)
{
    store_health_t health;
    store_health(store, &health);
    Dispatch__StorageState *state = &self->state;
    dispatch__storage_state__init(state);
    /* An open episode, not the latest batch: a full disk lets a commit
     * through now and then, and that is not a recovery (store.h). */
    state->failing = health.episode_failures > 0;
    state->failed_batches = health.failed_writes;
    state->episode_failures = health.episode_failures;
    state->failing_since = state->failing ? health.failing_since_ms : 0;
    snprintf(self->error, sizeof(self->error), "%s",
             health.last_error ? store_strerror(health.last_error) : "");
    state->error = self->error;
}

/* Escalation's bus handler (events from the router), then its timers a
 * month on: what the events armed fires. */
#include "escalation.h"
#include "fuzz.h"
#include "scratch.h"

#define MONTH_MS (31LL * 86400 * 1000)

typedef struct run {
    scratch_city_t *city;
    MDB_txn *txn;
    int rc;
} run_t;

static void one(const uint8_t *data, size_t size, void *ctx)
{
    run_t *run = ctx;
    if (run->rc >= 0)
        run->rc =
            escalation_handle_event(run->city->escalation_app, run->txn, data, size, SCRATCH_NOW);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scratch_city_t *city = scratch_city();
    run_t run = {city, scratch_begin(&city->escalation), 0};
    scratch_split(data, size, one, &run);
    size_t fired;
    if (run.rc >= 0)
        escalation_fire_due(city->escalation_app, run.txn, SCRATCH_NOW + MONTH_MS,
                            ESCALATION_FIRE_BATCH, &fired);
    scratch_abort(&city->escalation, &run.txn);
    return 0;
}

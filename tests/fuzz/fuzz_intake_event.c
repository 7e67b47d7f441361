/* Intake's bus handler: lifecycle events from routers and escalation. */
#include "fuzz.h"
#include "intake.h"
#include "scratch.h"

typedef struct run {
    scratch_city_t *city;
    MDB_txn *txn;
    int rc;
} run_t;

static void one(const uint8_t *data, size_t size, void *ctx)
{
    run_t *run = ctx;
    if (run->rc >= 0)
        run->rc = intake_handle_event(run->city->intake_app, run->txn, data, size, SCRATCH_NOW);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scratch_city_t *city = scratch_city();
    run_t run = {city, scratch_begin(&city->intake), 0};
    scratch_split(data, size, one, &run);
    scratch_abort(&city->intake, &run.txn);
    return 0;
}

/* The router's bus handler: events from intake and escalation. */
#include <errno.h>

#include "fuzz.h"
#include "router.h"
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
        run->rc = router_handle_event(run->city->router_app, run->txn, data, size, SCRATCH_NOW);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scratch_city_t *city = scratch_city();
    run_t run = {city, scratch_begin(&city->router), 0};
    router_batch_begin(city->router_app);
    scratch_split(data, size, one, &run);
    scratch_abort(&city->router, &run.txn);
    router_batch_done(city->router_app, -ECANCELED, NULL, NULL);
    return 0;
}

/* The router's unit endpoint handler (UnitAction), as the unit the scratch
 * city's ticket was dispatched to (its routing id). */
#include <string.h>

#include <errno.h>

#include "fuzz.h"
#include "router.h"
#include "router_internal.h"
#include "scratch.h"

typedef struct run {
    scratch_city_t *city;
    MDB_txn *txn;
    int rc;
} run_t;

static void one(const uint8_t *data, size_t size, void *ctx)
{
    run_t *run = ctx;
    if (run->rc < 0)
        return;
    Dispatch__UnitDelivery result;
    run->rc = router_handle_unit_action(run->city->router_app, run->txn, SCRATCH_TICKET_UNIT,
                                        strlen(SCRATCH_TICKET_UNIT), NULL, data, size, SCRATCH_NOW,
                                        &result);
    if (run->rc == REFUSED)
        run->rc = 0;
    if (run->rc == 0 && result.body_case != DISPATCH__UNIT_DELIVERY__BODY__NOT_SET)
        scratch_encode(&result);
    router_reply_reset(run->city->router_app);
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

/* Escalation's admin endpoint handler (AdminRequest, plain endpoint). */
#include "escalation.h"
#include "escalation_internal.h"
#include "fuzz.h"
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
    Dispatch__AdminReply reply;
    run->rc = escalation_handle_admin(run->city->escalation_app, run->txn, NULL, data, size,
                                      SCRATCH_NOW, &reply);
    if (run->rc == 0)
        scratch_encode(&reply);
    escalation_reply_reset(run->city->escalation_app);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scratch_city_t *city = scratch_city();
    run_t run = {city, scratch_begin(&city->escalation), 0};
    scratch_split(data, size, one, &run);
    scratch_abort(&city->escalation, &run.txn);
    return 0;
}

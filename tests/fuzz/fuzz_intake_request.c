/* Intake's request handler (Request: submit, get_ticket, callback), the
 * messages of one input in one batch. */
#include "fuzz.h"
#include "intake.h"
#include "refusal.h"
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
        return; /* a failed batch is aborted whole */
    const Dispatch__Reply *reply;
    run->rc = intake_handle_request(run->city->intake_app, run->txn, NULL, data, size, SCRATCH_NOW,
                                    &reply);
    if (run->rc == REFUSED) /* not a Request at all: an error to send */
        run->rc = 0;
    if (run->rc == 0)
        scratch_encode(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scratch_city_t *city = scratch_city();
    run_t run = {city, scratch_begin(&city->intake), 0};
    scratch_split(data, size, one, &run);
    scratch_abort(&city->intake, &run.txn);
    return 0;
}

/* Audit's request handler (AuditQuery: replay, kpi, report, history,
 * verify; or a bare ReplayRequest). */
#include "audit.h"
#include "audit_internal.h"
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
    audit_t *audit = run->city->audit_app;
    const ProtobufCMessage *reply = NULL;
    run->rc = audit_handle_request(audit, run->txn, NULL, data, size, SCRATCH_NOW, &reply);
    if (run->rc == 0)
        scratch_encode(reply);
    arena_reset(audit->arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scratch_city_t *city = scratch_city();
    run_t run = {city, scratch_begin(&city->audit), 0};
    scratch_split(data, size, one, &run);
    scratch_abort(&city->audit, &run.txn);
    return 0;
}

/* Audit's bus handler (an Event from any worker), then the stream message
 * of what it recorded (masked). */
#include <stdlib.h>

#include "audit.h"
#include "fuzz.h"
#include "scratch.h"
#include "stream.h"

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
    uint64_t seq = 0;
    run->rc = audit_handle_event(run->city->audit_app, run->txn, data, size, SCRATCH_NOW, &seq);
    if (run->rc == 0 && seq > 0) {
        char topic[STREAM_TOPIC_SIZE];
        void *buf = NULL;
        size_t len;
        audit_stream_message(run->city->audit_app, run->txn, seq, topic, sizeof(topic), &buf, &len);
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scratch_city_t *city = scratch_city();
    run_t run = {city, scratch_begin(&city->audit), 0};
    scratch_split(data, size, one, &run);
    scratch_abort(&city->audit, &run.txn);
    return 0;
}

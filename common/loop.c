#include "loop.h"

#include <errno.h>

#define LOOP_MAX_ITEMS 256

typedef struct batch {
    bus_t *bus;
    const loop_app_t *app;
} batch_t;

static int batch_apply(MDB_txn *txn, void *ctx)
{
    batch_t *batch = ctx;
    int rc = bus_batch_apply(batch->bus, txn);
    if (rc == 0 && batch->app->apply)
        rc = batch->app->apply(batch->app->app, txn);
    return rc;
}

int loop_once(store_t *store, bus_t *bus, const loop_app_t *app, int max_wait_ms)
{
    zmq_pollitem_t items[LOOP_MAX_ITEMS];
    size_t count = bus_pollitems(bus, items, LOOP_MAX_ITEMS);
    if (app->pollitems)
        count += app->pollitems(app->app, items + count, LOOP_MAX_ITEMS - count);

    int64_t now = bus_now_ms();
    int timeout = bus_timeout_ms(bus, now);
    if (app->timeout_ms) {
        int app_timeout = app->timeout_ms(app->app, now);
        if (app_timeout >= 0 && app_timeout < timeout)
            timeout = app_timeout;
    }
    if (max_wait_ms >= 0 && max_wait_ms < timeout)
        timeout = max_wait_ms;

    if (zmq_poll(items, (int)count, timeout) < 0 && errno != EINTR)
        return -errno;

    now = bus_now_ms();
    int rc = bus_drain(bus, now);
    if (rc < 0)
        return rc;
    bool work = app->drain ? app->drain(app->app, now) : false;
    rc = 0;
    if (work || bus_batch_ready(bus)) {
        batch_t batch = {bus, app};
        rc = store_write(store, batch_apply, &batch);
    }
    bus_batch_done(bus, rc);
    if (app->done)
        app->done(app->app, rc);
    return bus_tick(bus, bus_now_ms());
}

int loop_run(store_t *store, bus_t *bus, const loop_app_t *app, volatile sig_atomic_t *stop)
{
    while (!*stop) {
        int rc = loop_once(store, bus, app, -1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

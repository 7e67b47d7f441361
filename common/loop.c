#include "loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "polled.h"

#define LOOP_MAX_ITEMS 256
#define LOOP_WHY_MAX 512

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

#ifdef DISPATCH_CHECKS
/* The assert of the batch boundary: a broken invariant ends the process
 * here, before the worker builds on it. A store that cannot start a read
 * is no broken invariant: the checks wait for the next batch. */
static void check_or_abort(store_t *store, bus_t *bus, const loop_app_t *app)
{
    MDB_txn *txn;
    if (store_read_begin(store, &txn) < 0)
        return;
    char why[LOOP_WHY_MAX] = "";
    int rc = bus_check(bus, txn, why, sizeof(why));
    for (size_t i = 0; rc == 0 && i < app->check_count; i++)
        rc = app->checks[i].fn(app->checks[i].ctx, txn, why, sizeof(why));
    store_read_end(&txn);
    if (rc < 0) {
        fprintf(stderr, "invariant broken after a batch: %s (%s)\n", why, store_strerror(rc));
        abort();
    }
}
#endif

/* A failed batch that opens an episode, or fails for another cause than the
 * one before, is told. */
static void tell_failure(const loop_app_t *app, const store_health_t *before,
                         const store_health_t *after, int rc)
{
    if (!app->on_storage || rc >= 0)
        return;
    if (before->episode_failures > 0 && before->last_error == rc)
        return;
    loop_storage_event_t event = {
        .kind = LOOP_STORAGE_FAILING, .error = rc, .failed_writes = after->failed_writes};
    app->on_storage(app->storage_ctx, &event);
}

/* Every iteration, batch or not: an episode that is over is told. */
static void tell_recovery(store_t *store, const loop_app_t *app)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    store_health_t ended;
    if (!store_episode_close(store, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, &ended) ||
        !app->on_storage)
        return;
    loop_storage_event_t event = {.kind = LOOP_STORAGE_RECOVERED,
                                  .failures = ended.episode_failures,
                                  .duration_ms = ended.last_failure_ms - ended.failing_since_ms,
                                  .failed_writes = ended.failed_writes};
    app->on_storage(app->storage_ctx, &event);
}

int loop_once(store_t *store, bus_t *bus, const loop_app_t *app, int max_wait_ms)
{
    zmq_pollitem_t items[LOOP_MAX_ITEMS];
    size_t bus_count = bus_pollitems(bus, items, LOOP_MAX_ITEMS);
    size_t count = bus_count;
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

    int polled = zmq_poll(items, (int)count, timeout);
    if (polled < 0 && errno != EINTR)
        return -errno;

    now = bus_now_ms();
    int rc = bus_drain_polled(bus, items, bus_count, now);
    if (rc < 0)
        return rc;
    /* The application's drains skip the sockets the poll found idle. */
    if (polled >= 0)
        polled_set(items + bus_count, count - bus_count);
    bool work = app->drain ? app->drain(app->app, now) : false;
    polled_clear();
    bool batched = work || bus_batch_ready(bus);
    rc = 0;
    if (batched) {
        batch_t batch = {bus, app};
        store_health_t before, after;
        store_health(store, &before);
        rc = store_write(store, batch_apply, &batch);
        store_health(store, &after);
        tell_failure(app, &before, &after, rc);
    }
    tell_recovery(store, app);
    bus_batch_done(bus, rc);
    if (app->done)
        app->done(app->app, rc);
#ifdef DISPATCH_CHECKS
    if (batched)
        check_or_abort(store, bus, app);
#endif
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

/* ------------------------------------------------------------ touched keys */

/* Keys one after another, each behind its length (2 bytes, big-endian). */
struct loop_touched {
    unsigned char *bytes;
    size_t length, capacity;
    size_t last; /* offset of the latest key, for repeats */
    bool overflowed;
};

int loop_touched_new(loop_touched_t **ret)
{
    loop_touched_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
#ifndef DISPATCH_CHECKS
    self->overflowed = true;
#endif
    *ret = self;
    return 0;
}

void loop_touched_destroy(loop_touched_t **self)
{
    if (!*self)
        return;
    free((*self)->bytes);
    free(*self);
    *self = NULL;
}

static size_t key_length(const unsigned char *at)
{
    return (size_t)at[0] << 8 | at[1];
}

void loop_touched_add(loop_touched_t *self, const void *key, size_t len)
{
    if (self->overflowed)
        return;
    if (len > LOOP_TOUCHED_KEY_MAX || self->length + 2 + len > LOOP_TOUCHED_MAX) {
        self->overflowed = true;
        return;
    }
    if (self->length && key_length(self->bytes + self->last) == len &&
        memcmp(self->bytes + self->last + 2, key, len) == 0)
        return;
    if (self->length + 2 + len > self->capacity) {
        size_t capacity = self->capacity ? self->capacity : 4096;
        while (capacity < self->length + 2 + len)
            capacity *= 2;
        unsigned char *grown = realloc(self->bytes, capacity);
        if (!grown) {
            self->overflowed = true;
            return;
        }
        self->bytes = grown;
        self->capacity = capacity;
    }
    unsigned char *at = self->bytes + self->length;
    at[0] = (unsigned char)(len >> 8);
    at[1] = (unsigned char)len;
    memcpy(at + 2, key, len);
    self->last = self->length;
    self->length += 2 + len;
}

bool loop_touched_overflowed(const loop_touched_t *self)
{
    return self->overflowed;
}

bool loop_touched_next(const loop_touched_t *self, size_t *cursor, const void **key, size_t *len)
{
    if (*cursor + 2 > self->length)
        return false;
    const unsigned char *at = self->bytes + *cursor;
    *len = key_length(at);
    *key = at + 2;
    *cursor += 2 + *len;
    return true;
}

void loop_touched_clear(loop_touched_t *self)
{
    self->length = self->last = 0;
#ifdef DISPATCH_CHECKS
    self->overflowed = false;
#endif
}

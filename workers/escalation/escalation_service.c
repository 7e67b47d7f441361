/* escalation_service.c: the escalation as a worker process. Loads the
 * deadline table and the calendar from data_dir, binds the admin endpoint,
 * and drives the handlers from the event loop: in each write batch the bus
 * events come first (they arm timers), then the timers due by now fire,
 * then the admin requests are answered (so a queue listing reflects every
 * step due at the time it was read); replies go out only after the commit.
 *
 * Waking up for timers: the loop's timeout is the real time until the
 * first armed timer (clock_real_ms_until). A simulated clock (--clock
 * sim:FILE) cannot say when its file will change, so while any timer is
 * armed the worker reads the clock again at least every
 * ESCALATION_SIM_POLL_MS (50 ms) of real time; with no timer armed it
 * sleeps until a message arrives. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "escalation_internal.h"
#include "log.h"

#define ENDPOINT_MAX_QUEUE 1024

/* Re-reads the first armed timer after a batch (the batch may have armed,
 * moved or fired any). */
static void refresh_next_due(escalation_t *self)
{
    MDB_txn *txn;
    if (store_read_begin(self->store, &txn) < 0)
        return; /* keep the old value: the loop retries on its next pass */
    int64_t due;
    self->next_due = escalation_next_due(self, txn, &due) == 0 ? due : SCHEDULE_NEVER;
    store_read_end(&txn);
}

static int escalation_start(worker_t *worker, int argc, char **argv, void **app)
{
    for (int i = 1; i < argc; i++) {
        log_error("unknown option %s (dispatch-escalation takes only the common options)", argv[i]);
        return -EINVAL;
    }
    const config_worker_t *me = worker_self(worker);
    if (!me->data_dir) {
        log_error("%s: no data_dir in the topology: it must hold deadlines.ini and calendar.ini",
                  me->name);
        return -EINVAL;
    }
    deadlines_t *table;
    calendar_t *calendar;
    char err[1024];
    int rc = escalation_load_data(me->data_dir, &table, &calendar, err, sizeof(err));
    if (rc < 0) {
        log_error("%s", err);
        return rc;
    }
    log_info("deadline table and calendar (%s, %zu holidays, %zu make-up working days) from %s",
             calendar_time_zone(calendar), calendar_holiday_count(calendar),
             calendar_workday_count(calendar), me->data_dir);
    escalation_t *self;
    rc = escalation_new(worker_store(worker), worker_bus(worker), worker_config(worker), me->name,
                        table, calendar, &self);
    if (rc < 0)
        return rc;
    if (me->request) {
        rc = worker_endpoint(worker, "request", me->request, ESCALATION_MAX_REQUEST,
                             ENDPOINT_MAX_QUEUE, &self->admin_endpoint);
    } else {
        log_warn("no `request` endpoint in the topology: supervisors and leaders cannot reach "
                 "this escalation");
    }
    if (rc == 0)
        rc = worker_check_add(worker, cases_loop_check, self->cases);
    if (rc < 0) {
        escalation_destroy(&self);
        return rc;
    }
    refresh_next_due(self);
    *app = self;
    return 0;
}

static void escalation_stop(void *app)
{
    escalation_t *self = app;
    escalation_destroy(&self);
}

static int apply_bus(void *app, MDB_txn *txn, const char *sender, uint64_t seq, const void *body,
                     size_t len)
{
    (void)sender;
    (void)seq;
    return escalation_handle_event(app, txn, body, len, clock_now_ms());
}

static size_t pollitems(void *app, zmq_pollitem_t *items, size_t capacity)
{
    escalation_t *self = app;
    return endpoint_pollitems(&self->admin_endpoint, 1, items, capacity);
}

static bool drain(void *app, int64_t now_ms)
{
    (void)now_ms;
    escalation_t *self = app;
    self->batch_applied = false;
    size_t queued = self->admin_endpoint ? endpoint_drain(self->admin_endpoint) : 0;
    return queued > 0 || (self->next_due != SCHEDULE_NEVER && clock_now_ms() >= self->next_due);
}

static int apply(void *app, MDB_txn *txn)
{
    escalation_t *self = app;
    self->batch_applied = true;
    self->fired_pending = 0;
    int64_t now = clock_now_ms();
    size_t fired;
    int rc = escalation_fire_due(self, txn, now, ESCALATION_FIRE_BATCH, &fired);
    if (rc < 0)
        return rc;
    self->fired_pending = fired;
    endpoint_t *admin = self->admin_endpoint;
    if (!admin)
        return 0;
    endpoint_clear_replies(admin);
    for (size_t i = 0; i < endpoint_count(admin); i++) {
        endpoint_request_t request;
        endpoint_request(admin, i, &request);
        Dispatch__AdminReply reply;
        rc = escalation_handle_admin(self, txn, request.actor, request.body, request.body_len, now,
                                     &reply);
        if (rc == 0)
            rc = endpoint_reply(admin, i, &reply.base);
        if (rc < 0)
            return rc;
    }
    escalation_reply_reset(self);
    return 0;
}

static int handle_outside(void *self, const auth_actor_t *actor, const void *body, size_t len,
                          Dispatch__AdminReply *reply)
{
    return escalation_handle_admin(self, NULL, actor, body, len, clock_now_ms(), reply);
}

/* The batch did not commit: every request is answered "retry later" (but
 * what tells why: admin_answer_failed()). */
static void answer_unavailable(escalation_t *self)
{
    if (self->admin_endpoint)
        admin_answer_failed(self->admin_endpoint, ESCALATION_MAX_REQUEST,
                            "the escalation could not store this request (storage full or "
                            "failing): nothing was applied, retry later",
                            handle_outside, self);
}

static void batch_done(void *app, int rc)
{
    escalation_t *self = app;
    if (rc != 0)
        answer_unavailable(self);
    else if (self->batch_applied)
        self->fired += self->fired_pending;
    if (self->admin_endpoint)
        endpoint_flush(self->admin_endpoint);
    self->fired_pending = 0;
    self->batch_applied = false;
    refresh_next_due(self);
}

static int timeout_ms(void *app, int64_t now_ms)
{
    (void)now_ms;
    escalation_t *self = app;
    if (self->next_due == SCHEDULE_NEVER)
        return -1;
    if (clock_now_ms() >= self->next_due)
        return 0; /* more due than one batch fired */
    int64_t wait = clock_real_ms_until(self->next_due);
    if (wait < 0)
        return ESCALATION_SIM_POLL_MS;
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

const worker_kind_t escalation_kind = {
    .kind = "escalation",
    .start = escalation_start,
    .stop = escalation_stop,
    .apply = apply_bus,
    .loop =
        {
            .pollitems = pollitems,
            .drain = drain,
            .apply = apply,
            .done = batch_done,
            .timeout_ms = timeout_ms,
        },
};

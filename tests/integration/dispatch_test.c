#include "dispatch_test.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Dispatch__Reply *test_call_intake(client_t *intake, Dispatch__Request *request)
{
    ProtobufCMessage *reply = NULL;
    if (client_call(intake, &request->base, &dispatch__reply__descriptor, &reply) < 0)
        return NULL;
    return (Dispatch__Reply *)reply;
}

Dispatch__SubmitReply *test_submit(client_t *intake, const char *request_id, const char *district,
                                   const char *category, const char *area, const char *phone,
                                   const char *address, Dispatch__Reply **keep)
{
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    Dispatch__Location location = DISPATCH__LOCATION__INIT;
    submit.client_request_id = (char *)request_id;
    submit.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    submit.kind = DISPATCH__KIND__KIND_COMPLAINT;
    submit.urgency = DISPATCH__URGENCY__URGENCY_NORMAL;
    submit.district = (char *)district;
    submit.category = (char *)category;
    submit.area = (char *)area;
    submit.caller_name = "Wang Fang";
    submit.caller_phone = (char *)phone;
    submit.description = "reported by phone";
    if (address) {
        location.address = (char *)address;
        submit.location = &location;
    }
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "agent-7";
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &submit;
    *keep = test_call_intake(intake, &request);
    if (!*keep || (*keep)->body_case != DISPATCH__REPLY__BODY_SUBMIT)
        return NULL;
    return (*keep)->submit;
}

Dispatch__TicketView *test_get(client_t *intake, const char *ticket_id, Dispatch__Reply **keep)
{
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = (char *)ticket_id;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "agent-7";
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    *keep = test_call_intake(intake, &request);
    if (!*keep || (*keep)->body_case != DISPATCH__REPLY__BODY_TICKET)
        return NULL;
    return (*keep)->ticket;
}

bool test_wait_state(client_t *intake, const char *ticket_id, Dispatch__TicketState state)
{
    int64_t deadline = now_ms() + TEST_TIMEOUT_MS;
    while (now_ms() < deadline) {
        Dispatch__Reply *keep = NULL;
        Dispatch__TicketView *view = test_get(intake, ticket_id, &keep);
        bool reached = view && view->ticket && view->ticket->state == state;
        if (keep)
            dispatch__reply__free_unpacked(keep, NULL);
        if (reached)
            return true;
    }
    return false;
}

bool test_history_has(const Dispatch__TicketView *view, Dispatch__EventType type)
{
    for (size_t i = 0; i < view->n_history; i++)
        if (view->history[i]->type == type)
            return true;
    return false;
}

Dispatch__AdminReply *test_admin(client_t *router, const char *actor, Dispatch__Role role,
                                 Dispatch__AdminRequest *request)
{
    request->actor_id = (char *)actor;
    request->role = role;
    ProtobufCMessage *reply = NULL;
    if (client_call(router, &request->base, &dispatch__admin_reply__descriptor, &reply) < 0)
        return NULL;
    return (Dispatch__AdminReply *)reply;
}

const auth_client_t *test_keys(const city_t *city, const char *actor, const char *url)
{
    static auth_client_t keys[4];
    static size_t next;
    auth_client_t *slot = &keys[next++ % 4];
    const auth_client_t *ret;
    int rc = city_keys(city, actor, url, slot, &ret);
    if (rc < 0) {
        fprintf(stderr, "test_keys: %s toward %s: %s\n", actor, url, strerror(-rc));
        abort();
    }
    return ret;
}

/* ---- unit pool ---- */

/* A silent session sends its ack again after this long, as unit clients do:
 * a router that restarted learns of the session and resends what is
 * pending. */
#define POOL_HEARTBEAT_MS 1000

typedef struct pool_slot {
    char unit[65];
    unit_session_t *session; /* NULL while the unit is offline */
    uint64_t applied;        /* what the session had applied when it closed */
} pool_slot_t;

struct unit_pool {
    void *context;
    const city_t *city;
    pool_slot_t *units;
    size_t count, capacity;
    zmq_pollitem_t *items;
    pool_slot_t **order; /* the slot of each poll item */
};

int unit_pool_new(void *zmq_context, const city_t *city, size_t capacity, unit_pool_t **ret)
{
    unit_pool_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->context = zmq_context;
    self->city = city;
    self->capacity = capacity;
    self->units = calloc(capacity, sizeof(*self->units));
    self->items = calloc(capacity, sizeof(*self->items));
    self->order = calloc(capacity, sizeof(*self->order));
    if (!self->units || !self->items || !self->order) {
        unit_pool_destroy(&self);
        return -ENOMEM;
    }
    *ret = self;
    return 0;
}

void unit_pool_destroy(unit_pool_t **self)
{
    unit_pool_t *pool = *self;
    if (!pool)
        return;
    for (size_t i = 0; i < pool->count; i++)
        unit_session_destroy(&pool->units[i].session);
    free(pool->units);
    free(pool->items);
    free(pool->order);
    free(pool);
    *self = NULL;
}

static pool_slot_t *slot(unit_pool_t *self, const char *unit)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->units[i].unit, unit) == 0)
            return &self->units[i];
    if (self->count == self->capacity)
        return NULL;
    pool_slot_t *s = &self->units[self->count++];
    snprintf(s->unit, sizeof(s->unit), "%s", unit);
    return s;
}

int unit_pool_connect(unit_pool_t *self, const char *url, const char *unit, uint64_t acked)
{
    pool_slot_t *s = slot(self, unit);
    if (!s)
        return -ENOSPC;
    unit_session_destroy(&s->session);
    int rc = unit_session_new(self->context, url, unit, NULL, test_keys(self->city, "units", url),
                              &s->session);
    if (rc == 0)
        rc = unit_session_start(s->session, acked);
    return rc;
}

void unit_pool_disconnect(unit_pool_t *self, const char *unit)
{
    pool_slot_t *s = slot(self, unit);
    if (s && s->session) {
        s->applied = unit_session_applied(s->session);
        unit_session_destroy(&s->session);
    }
}

uint64_t unit_pool_applied(const unit_pool_t *self, const char *unit)
{
    for (size_t i = 0; i < self->count; i++) {
        const pool_slot_t *s = &self->units[i];
        if (strcmp(s->unit, unit) == 0)
            return s->session ? unit_session_applied(s->session) : s->applied;
    }
    return 0;
}

unit_session_t *unit_pool_session(unit_pool_t *self, const char *unit)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->units[i].unit, unit) == 0)
            return self->units[i].session;
    return NULL;
}

uint64_t unit_pool_duplicates(const unit_pool_t *self)
{
    uint64_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->units[i].session)
            n += unit_session_duplicates(self->units[i].session);
    return n;
}

uint64_t unit_pool_gaps(const unit_pool_t *self)
{
    uint64_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->units[i].session)
            n += unit_session_gaps(self->units[i].session);
    return n;
}

size_t unit_pool_poll(unit_pool_t *self, int wait_ms, unit_delivery_fn fn, void *ctx)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++) {
        if (!self->units[i].session)
            continue;
        self->order[n] = &self->units[i];
        self->items[n++] = (zmq_pollitem_t){.socket = unit_session_socket(self->units[i].session),
                                            .events = ZMQ_POLLIN};
    }
    size_t fresh = 0;
    if (zmq_poll(self->items, (int)n, wait_ms) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (!(self->items[i].revents & ZMQ_POLLIN))
                continue;
            pool_slot_t *s = self->order[i];
            Dispatch__UnitDelivery *d;
            while (unit_session_next(s->session, 0, &d) == 0) {
                if (d->seq) {
                    fn(ctx, s->unit, d);
                    fresh++;
                }
                protobuf_c_message_free_unpacked(&d->base, NULL);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        unit_session_ack_due(self->order[i]->session, POOL_HEARTBEAT_MS);
    return fresh;
}

static const char *ctl_topology;

void test_ctl_config(const char *topology)
{
    ctl_topology = topology;
}

int test_ctl(char *out, size_t out_len, ...)
{
    const char *argv[40];
    size_t argc = 0;
    argv[argc++] = harness_program("DISPATCHCTL", "tools/dispatchctl");
    if (ctl_topology) {
        argv[argc++] = "--config";
        argv[argc++] = ctl_topology;
    }
    va_list args;
    va_start(args, out_len);
    for (const char *arg; (arg = va_arg(args, const char *)) && argc < 39;)
        argv[argc++] = arg;
    va_end(args);
    argv[argc] = NULL;
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        setenv("DISPATCH_ACTOR", "tester", 1);
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t used = 0;
    ssize_t n;
    while ((n = read(pipefd[0], out + used, out_len - 1 - used)) > 0)
        used += (size_t)n;
    out[used] = '\0';
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

char *test_deploy_data(const char *name)
{
    const char *dir = getenv("DEPLOY_DATA");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "deploy/data", name);
    char *text = harness_read_text(path);
    if (!text || !*text) {
        fprintf(stderr, "test_deploy_data: cannot read %s\n", path);
        abort();
    }
    return text;
}

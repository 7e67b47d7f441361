#include "dispatch_test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

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

/* ---- unit pool ---- */

typedef struct unit_session {
    char unit[64];
    void *socket;
    uint64_t applied;
    int64_t acked_at;
} unit_session_slot_t;

struct unit_pool {
    void *context;
    unit_session_slot_t *units;
    size_t count, capacity;
    zmq_pollitem_t *items;
};

int unit_pool_new(void *zmq_context, size_t capacity, unit_pool_t **ret)
{
    unit_pool_t *self = calloc(1, sizeof(*self));
    self->context = zmq_context;
    self->capacity = capacity;
    self->units = calloc(capacity, sizeof(*self->units));
    self->items = calloc(capacity, sizeof(*self->items));
    *ret = self;
    return 0;
}

void unit_pool_destroy(unit_pool_t **self)
{
    unit_pool_t *pool = *self;
    if (!pool)
        return;
    for (size_t i = 0; i < pool->count; i++)
        if (pool->units[i].socket)
            zmq_close(pool->units[i].socket);
    free(pool->units);
    free(pool->items);
    free(pool);
    *self = NULL;
}

static unit_session_slot_t *slot(unit_pool_t *self, const char *unit)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->units[i].unit, unit) == 0)
            return &self->units[i];
    if (self->count == self->capacity)
        return NULL;
    unit_session_slot_t *s = &self->units[self->count++];
    snprintf(s->unit, sizeof(s->unit), "%s", unit);
    return s;
}

static void send_ack(unit_session_slot_t *s)
{
    Dispatch__UnitAck ack = DISPATCH__UNIT_ACK__INIT;
    ack.seq = s->applied;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = s->unit;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_ACK;
    action.ack = &ack;
    unsigned char buf[256];
    size_t len = dispatch__unit_action__pack(&action, buf);
    zmq_send(s->socket, "", 0, ZMQ_SNDMORE);
    zmq_send(s->socket, buf, len, 0);
    s->acked_at = now_ms();
}

int unit_pool_connect(unit_pool_t *self, const char *url, const char *unit, uint64_t acked)
{
    unit_session_slot_t *s = slot(self, unit);
    if (!s)
        return -ENOSPC;
    if (s->socket)
        zmq_close(s->socket);
    s->socket = zmq_socket(self->context, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s->socket, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s->socket, ZMQ_ROUTING_ID, unit, strlen(unit));
    if (zmq_connect(s->socket, url) < 0)
        return -errno;
    s->applied = acked;
    send_ack(s);
    return 0;
}

void unit_pool_disconnect(unit_pool_t *self, const char *unit)
{
    unit_session_slot_t *s = slot(self, unit);
    if (s && s->socket) {
        zmq_close(s->socket);
        s->socket = NULL;
    }
}

uint64_t unit_pool_applied(const unit_pool_t *self, const char *unit)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->units[i].unit, unit) == 0)
            return self->units[i].applied;
    return 0;
}

size_t unit_pool_poll(unit_pool_t *self, int wait_ms, unit_delivery_fn fn, void *ctx)
{
    size_t n = 0;
    unit_session_slot_t **order = calloc(self->count, sizeof(*order));
    for (size_t i = 0; i < self->count; i++) {
        if (!self->units[i].socket)
            continue;
        order[n] = &self->units[i];
        self->items[n++] = (zmq_pollitem_t){.socket = self->units[i].socket, .events = ZMQ_POLLIN};
    }
    size_t fresh = 0;
    if (zmq_poll(self->items, (int)n, wait_ms) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (!(self->items[i].revents & ZMQ_POLLIN))
                continue;
            unit_session_slot_t *s = order[i];
            bool progressed = false;
            for (;;) {
                zmq_msg_t delimiter, body;
                zmq_msg_init(&delimiter);
                if (zmq_msg_recv(&delimiter, s->socket, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&delimiter);
                    break;
                }
                zmq_msg_close(&delimiter);
                zmq_msg_init(&body);
                zmq_msg_recv(&body, s->socket, 0);
                Dispatch__UnitDelivery *d =
                    dispatch__unit_delivery__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
                zmq_msg_close(&body);
                if (!d)
                    continue;
                /* A new desk of a unit starts where the router says the
                 * unit's acknowledged deliveries end. */
                if (d->seq && d->acked > s->applied)
                    s->applied = d->acked;
                if (d->seq == s->applied + 1) {
                    s->applied = d->seq;
                    fn(ctx, s->unit, d);
                    fresh++;
                    progressed = true;
                }
                dispatch__unit_delivery__free_unpacked(d, NULL);
            }
            if (progressed)
                send_ack(s);
        }
    }
    /* Heartbeat: a router that restarted learns of the session again and
     * resends what is pending. */
    int64_t now = now_ms();
    for (size_t i = 0; i < n; i++)
        if (now - order[i]->acked_at >= 1000)
            send_ack(order[i]);
    free(order);
    return fresh;
}

/* unit_session: see unit_session.h for the protocol and the invariant. */
#include "unit_session.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zmq.h>

#include "codec.h"
#include "dealer.h"

struct unit_session {
    void *socket;
    char unit_id[65];
    char routing_id[256];
    /* Ring of deliveries kept for unit_session_recv(), oldest at head. */
    Dispatch__UnitDelivery **queue;
    size_t head, count, capacity;
    uint64_t skipped, duplicates, gaps;
    uint64_t applied; /* highest seq returned by unit_session_next() */
    bool ack_owed;    /* a sequenced delivery came after the last ack */
    int64_t acked_at; /* when the last ack went (dealer_clock_ms) */
};

int unit_session_new(void *zmq_ctx, const char *url, const char *unit_id, const char *session,
                     const auth_client_t *curve, unit_session_t **ret)
{
    if (!zmq_ctx || !url || !unit_id || !*unit_id || strlen(unit_id) > 64 || (session && !*session))
        return -EINVAL;
    unit_session_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    snprintf(self->unit_id, sizeof(self->unit_id), "%s", unit_id);
    uint64_t secret;
    if (getrandom(&secret, sizeof(secret), 0) != sizeof(secret)) {
        unit_session_destroy(&self);
        return -EIO;
    }
    int n = snprintf(self->routing_id, sizeof(self->routing_id), "%s/%s%s%016llx", unit_id,
                     session ? session : "", session ? "-" : "", (unsigned long long)secret);
    int rc = n > 0 && (size_t)n < sizeof(self->routing_id) ? 0 : -EINVAL;
    if (rc == 0)
        rc = dealer_open(zmq_ctx, url, self->routing_id, curve, &self->socket);
    if (rc < 0) {
        unit_session_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void unit_session_destroy(unit_session_t **self)
{
    unit_session_t *session = *self;
    if (!session)
        return;
    for (size_t i = 0; i < session->count; i++) {
        Dispatch__UnitDelivery *delivery = session->queue[(session->head + i) % session->capacity];
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
    }
    free(session->queue);
    if (session->socket)
        zmq_close(session->socket);
    free(session);
    *self = NULL;
}

const char *unit_session_routing_id(const unit_session_t *self)
{
    return self->routing_id;
}

const char *unit_session_unit_id(const unit_session_t *self)
{
    return self->unit_id;
}

void *unit_session_socket(const unit_session_t *self)
{
    return self->socket;
}

size_t unit_session_queued(const unit_session_t *self)
{
    return self->count;
}

uint64_t unit_session_skipped(const unit_session_t *self)
{
    return self->skipped;
}

uint64_t unit_session_duplicates(const unit_session_t *self)
{
    return self->duplicates;
}

uint64_t unit_session_gaps(const unit_session_t *self)
{
    return self->gaps;
}

uint64_t unit_session_applied(const unit_session_t *self)
{
    return self->applied;
}

/* Takes ownership of delivery: queued, or freed and counted when full. */
static void queue_push(unit_session_t *self, Dispatch__UnitDelivery *delivery)
{
    if (self->count == self->capacity && self->capacity < UNIT_SESSION_QUEUE_MAX) {
        size_t capacity = self->capacity ? self->capacity * 2 : 16;
        if (capacity > UNIT_SESSION_QUEUE_MAX)
            capacity = UNIT_SESSION_QUEUE_MAX;
        Dispatch__UnitDelivery **grown = malloc(capacity * sizeof(*grown));
        if (grown) {
            for (size_t i = 0; i < self->count; i++)
                grown[i] = self->queue[(self->head + i) % self->capacity];
            free(self->queue);
            self->queue = grown;
            self->head = 0;
            self->capacity = capacity;
        }
    }
    if (self->count == self->capacity) {
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
        self->skipped++;
        return;
    }
    self->queue[(self->head + self->count) % self->capacity] = delivery;
    self->count++;
}

static Dispatch__UnitDelivery *queue_pop(unit_session_t *self)
{
    if (self->count == 0)
        return NULL;
    Dispatch__UnitDelivery *delivery = self->queue[self->head];
    self->head = (self->head + 1) % self->capacity;
    self->count--;
    return delivery;
}

/* Next decodable delivery from the socket, waiting until deadline. */
static int socket_next_delivery(unit_session_t *self, int64_t deadline,
                                Dispatch__UnitDelivery **ret)
{
    for (;;) {
        ProtobufCMessage *msg;
        int rc = dealer_recv(self->socket, &dispatch__unit_delivery__descriptor, &msg);
        if (rc == -EPROTO || rc == -EBADMSG) {
            self->skipped++;
            continue;
        }
        /* Nothing waiting and no time left: no need to ask the socket again. */
        if (rc == -EAGAIN && deadline <= dealer_clock_ms())
            return -ETIMEDOUT;
        if (rc == -EAGAIN) {
            rc = dealer_wait(self->socket, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        if (rc < 0)
            return rc;
        *ret = (Dispatch__UnitDelivery *)msg;
        return 0;
    }
}

int unit_session_send(unit_session_t *self, const Dispatch__UnitAction *action)
{
    return dealer_send_message(self->socket, &action->base);
}

int unit_session_send_encoded(unit_session_t *self, const void *body, size_t len)
{
    return dealer_send(self->socket, body, len);
}

int unit_session_recv(unit_session_t *self, int timeout_ms, Dispatch__UnitDelivery **ret)
{
    *ret = queue_pop(self);
    if (*ret)
        return 0;
    if (timeout_ms < 0)
        return -EINVAL;
    return socket_next_delivery(self, dealer_clock_ms() + timeout_ms, ret);
}

int unit_session_ack(unit_session_t *self, uint64_t seq)
{
    Dispatch__UnitAck ack = DISPATCH__UNIT_ACK__INIT;
    ack.seq = seq;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = self->unit_id;
    action.body_case = DISPATCH__UNIT_ACTION__BODY_ACK;
    action.ack = &ack;
    int rc = unit_session_send(self, &action);
    if (rc == 0) {
        self->acked_at = dealer_clock_ms();
        if (seq >= self->applied)
            self->ack_owed = false;
    }
    return rc;
}

static bool is_result_of(const Dispatch__UnitDelivery *delivery, const char *action_id)
{
    return delivery->seq == 0 &&
           delivery->body_case == DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT &&
           delivery->action_result && strcmp(delivery->action_result->action_id, action_id) == 0;
}

int unit_session_act(unit_session_t *self, Dispatch__UnitAction *action, int timeout_ms,
                     Dispatch__ActionResult **ret)
{
    *ret = NULL;
    if (!action->action_id || !*action->action_id || timeout_ms < 0)
        return -EINVAL;
    if (!action->unit_id || !*action->unit_id)
        action->unit_id = self->unit_id;
    int rc = unit_session_send(self, action);
    if (rc < 0)
        return rc;
    int64_t deadline = dealer_clock_ms() + timeout_ms;
    for (;;) {
        Dispatch__UnitDelivery *delivery;
        rc = socket_next_delivery(self, deadline, &delivery);
        if (rc < 0)
            return rc;
        if (!is_result_of(delivery, action->action_id)) {
            queue_push(self, delivery);
            continue;
        }
        /* Detach the result, free the envelope. */
        *ret = delivery->action_result;
        delivery->action_result = NULL;
        delivery->body_case = DISPATCH__UNIT_DELIVERY__BODY__NOT_SET;
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
        return 0;
    }
}

/* --- deliveries in order --- */

int unit_session_start(unit_session_t *self, uint64_t applied)
{
    self->applied = applied;
    self->ack_owed = true;
    return unit_session_ack_due(self, -1);
}

int unit_session_next(unit_session_t *self, int timeout_ms, Dispatch__UnitDelivery **ret)
{
    *ret = NULL;
    if (timeout_ms < 0)
        return -EINVAL;
    int64_t deadline = dealer_clock_ms() + timeout_ms;
    for (;;) {
        Dispatch__UnitDelivery *delivery = queue_pop(self);
        int rc = delivery ? 0 : socket_next_delivery(self, dealer_clock_ms(), &delivery);
        if (rc == -ETIMEDOUT) {
            /* Drained: what was returned is applied, so acknowledge it
             * (duplicates and gaps too) before waiting for more. */
            unit_session_ack_due(self, -1);
            rc = socket_next_delivery(self, deadline, &delivery);
        }
        if (rc < 0)
            return rc;
        if (delivery->seq == 0) {
            *ret = delivery;
            return 0;
        }
        self->ack_owed = true;
        if (delivery->acked > self->applied)
            self->applied = delivery->acked;
        if (delivery->seq == self->applied + 1) {
            self->applied = delivery->seq;
            *ret = delivery;
            return 0;
        }
        if (delivery->seq <= self->applied)
            self->duplicates++;
        else
            self->gaps++;
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
    }
}

int unit_session_ack_due(unit_session_t *self, int heartbeat_ms)
{
    bool heartbeat = heartbeat_ms >= 0 && dealer_clock_ms() - self->acked_at >= heartbeat_ms;
    if (!self->ack_owed && !heartbeat)
        return 0;
    return unit_session_ack(self, self->applied);
}

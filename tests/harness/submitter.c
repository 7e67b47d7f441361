#include "submitter.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "harness.h"

typedef struct pending {
    void *body;
    size_t len;
    int64_t sent_ms; /* 0 = not sent */
    bool answered;
} pending_t;

struct submitter {
    void *context, *socket;
    char url[256];
    size_t window;
    pending_t *requests;
    size_t count, capacity;
    auth_client_t curve;
    bool has_curve;
};

static int open_socket(submitter_t *self)
{
    if (self->socket)
        zmq_close(self->socket);
    self->socket = zmq_socket(self->context, ZMQ_DEALER);
    int zero = 0, ivl = 50;
    zmq_setsockopt(self->socket, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(self->socket, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
    int rc = auth_client_apply(self->socket, self->has_curve ? &self->curve : NULL);
    if (rc < 0)
        return rc;
    return zmq_connect(self->socket, self->url) == 0 ? 0 : -errno;
}

int submitter_new(void *zmq_context, const char *url, size_t window, const auth_client_t *curve,
                  submitter_t **ret)
{
    submitter_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->has_curve = curve != NULL;
    if (curve)
        self->curve = *curve;
    self->context = zmq_context;
    self->window = window ? window : 64;
    strncpy(self->url, url, sizeof(self->url) - 1);
    int rc = open_socket(self);
    if (rc < 0) {
        submitter_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void submitter_destroy(submitter_t **self)
{
    submitter_t *s = *self;
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++)
        free(s->requests[i].body);
    free(s->requests);
    if (s->socket)
        zmq_close(s->socket);
    free(s);
    *self = NULL;
}

size_t submitter_add(submitter_t *self, const char *actor, const Dispatch__SubmitTicket *submit)
{
    if (self->count == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 1024;
        self->requests = realloc(self->requests, self->capacity * sizeof(*self->requests));
    }
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = (char *)actor;
    request.tag = self->count + 1; /* tag = index + 1 */
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = (Dispatch__SubmitTicket *)submit;
    pending_t *p = &self->requests[self->count];
    *p = (pending_t){0};
    p->len = dispatch__request__get_packed_size(&request);
    p->body = malloc(p->len ? p->len : 1);
    dispatch__request__pack(&request, p->body);
    return self->count++;
}

static void send_one(submitter_t *self, pending_t *p, int64_t now)
{
    zmq_send(self->socket, "", 0, ZMQ_SNDMORE);
    zmq_send(self->socket, p->body, p->len, 0);
    p->sent_ms = now;
}

int submitter_run(submitter_t *self, int retry_ms, int deadline_ms,
                  void (*on_reply)(void *ctx, size_t index, const Dispatch__Reply *reply),
                  void (*on_progress)(void *ctx, size_t answered), void *ctx)
{
    int64_t deadline = harness_now_ms() + deadline_ms;
    size_t answered = 0, next = 0, in_flight = 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->requests[i].answered)
            answered++;
    while (answered < self->count) {
        int64_t now = harness_now_ms();
        if (now > deadline)
            return -ETIMEDOUT;
        /* Resend what timed out (same bytes, same client_request_id). */
        bool resent = false;
        for (size_t i = 0; i < next; i++) {
            pending_t *p = &self->requests[i];
            if (!p->answered && p->sent_ms && now - p->sent_ms >= retry_ms) {
                if (!resent) {
                    open_socket(self); /* drop replies to the lost socket */
                    resent = true;
                }
                send_one(self, p, now);
            }
        }
        while (next < self->count && in_flight < self->window) {
            if (!self->requests[next].answered) {
                send_one(self, &self->requests[next], now);
                in_flight++;
            }
            next++;
        }
        zmq_pollitem_t item = {.socket = self->socket, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, retry_ms / 4 + 1) <= 0)
            continue;
        for (;;) {
            zmq_msg_t delimiter, body;
            zmq_msg_init(&delimiter);
            if (zmq_msg_recv(&delimiter, self->socket, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&delimiter);
                break;
            }
            zmq_msg_close(&delimiter);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, self->socket, 0) < 0) {
                zmq_msg_close(&body);
                break;
            }
            Dispatch__Reply *reply =
                dispatch__reply__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
            zmq_msg_close(&body);
            if (!reply)
                continue;
            size_t index = (size_t)reply->tag - 1;
            if (reply->tag >= 1 && index < self->count && !self->requests[index].answered) {
                self->requests[index].answered = true;
                answered++;
                if (in_flight > 0)
                    in_flight--;
                on_reply(ctx, index, reply);
                if (on_progress)
                    on_progress(ctx, answered);
            }
            dispatch__reply__free_unpacked(reply, NULL);
        }
    }
    return 0;
}

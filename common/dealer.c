/* dealer: see dealer.h. */
#include "dealer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "clock.h"
#include "codec.h"

int64_t dealer_clock_ms(void)
{
    return clock_monotonic_ms();
}

int dealer_open(void *zmq_ctx, const char *url, const char *routing_id, const auth_client_t *curve,
                void **ret)
{
    void *socket = zmq_socket(zmq_ctx, ZMQ_DEALER);
    if (!socket)
        return -errno;
    int linger = 0;
    int64_t max_message = DEALER_MAX_MESSAGE;
    int rc = 0;
    if (zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_message, sizeof(max_message)) < 0 ||
        (routing_id &&
         zmq_setsockopt(socket, ZMQ_ROUTING_ID, routing_id, strlen(routing_id)) < 0) ||
        (rc = auth_client_apply(socket, curve)) < 0 || zmq_connect(socket, url) < 0)
        rc = rc < 0 ? rc : -errno;
    if (rc < 0) {
        zmq_close(socket);
        return rc;
    }
    *ret = socket;
    return 0;
}

int dealer_send(void *socket, const void *body, size_t len)
{
    if (zmq_send(socket, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -errno;
    /* The first frame is queued, so the rest of the message goes too. */
    return zmq_send(socket, body, len, ZMQ_DONTWAIT) < 0 ? -errno : 0;
}

int dealer_send_message(void *socket, const ProtobufCMessage *msg)
{
    void *body;
    size_t len;
    int rc = codec_encode(msg, &body, &len);
    if (rc < 0)
        return rc;
    rc = dealer_send(socket, body, len);
    free(body);
    return rc;
}

static bool more(void *socket)
{
    int value = 0;
    size_t size = sizeof(value);
    return zmq_getsockopt(socket, ZMQ_RCVMORE, &value, &size) == 0 && value;
}

/* Reads one waiting message without blocking. 0 and *body (initialised; the
 * caller closes it) for [empty][body]; -EPROTO for another shape (read and
 * dropped whole); -EAGAIN when nothing is waiting. */
static int recv_framed(void *socket, zmq_msg_t *body)
{
    zmq_msg_t delimiter;
    zmq_msg_init(&delimiter);
    if (zmq_msg_recv(&delimiter, socket, ZMQ_DONTWAIT) < 0) {
        int rc = -errno;
        zmq_msg_close(&delimiter);
        return rc;
    }
    bool ok = zmq_msg_size(&delimiter) == 0 && more(socket);
    zmq_msg_close(&delimiter);
    zmq_msg_init(body);
    if (ok)
        ok = zmq_msg_recv(body, socket, 0) >= 0 && !more(socket);
    while (more(socket)) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        zmq_msg_recv(&part, socket, 0);
        zmq_msg_close(&part);
    }
    if (!ok) {
        zmq_msg_close(body);
        return -EPROTO;
    }
    return 0;
}

int dealer_recv(void *socket, const ProtobufCMessageDescriptor *descriptor, ProtobufCMessage **ret)
{
    *ret = NULL;
    zmq_msg_t body;
    int rc = recv_framed(socket, &body);
    if (rc < 0)
        return rc;
    char err[256];
    rc = codec_decode(descriptor, zmq_msg_data(&body), zmq_msg_size(&body), DEALER_MAX_MESSAGE, ret,
                      err, sizeof(err));
    zmq_msg_close(&body);
    return rc < 0 ? -EBADMSG : 0;
}

int dealer_wait(void *socket, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - dealer_clock_ms();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = {.socket = socket, .events = ZMQ_POLLIN};
        int n = zmq_poll(&item, 1, (long)left);
        if (n < 0)
            return -errno;
        if (n > 0 && (item.revents & ZMQ_POLLIN))
            return 0;
        if (left == 0)
            return -ETIMEDOUT;
    }
}

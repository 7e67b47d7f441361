#include "raw_request.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

void *raw_request(void *zmq, const char *url, const auth_client_t *keys, const char *routing_id,
                  const void *body, size_t len, int wait_ms, size_t *reply_len)
{
    void *socket = zmq_socket(zmq, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero));
    if (routing_id)
        zmq_setsockopt(socket, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
    auth_client_apply(socket, keys);
    zmq_connect(socket, url);
    zmq_send(socket, "", 0, ZMQ_SNDMORE);
    zmq_send(socket, body, len, 0);
    void *reply = NULL;
    zmq_pollitem_t item = {.socket = socket, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, wait_ms) > 0) {
        zmq_msg_t delimiter, frame;
        zmq_msg_init(&delimiter);
        zmq_msg_init(&frame);
        zmq_msg_recv(&delimiter, socket, 0);
        zmq_msg_recv(&frame, socket, 0);
        *reply_len = zmq_msg_size(&frame);
        reply = malloc(*reply_len + 1);
        memcpy(reply, zmq_msg_data(&frame), *reply_len);
        zmq_msg_close(&delimiter);
        zmq_msg_close(&frame);
    }
    zmq_close(socket);
    return reply;
}

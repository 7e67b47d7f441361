/* polled: see polled.h. */
#include "polled.h"

static _Thread_local const zmq_pollitem_t *polled_items;
static _Thread_local size_t polled_count;

void polled_set(const zmq_pollitem_t *items, size_t count)
{
    polled_items = items;
    polled_count = count;
}

void polled_clear(void)
{
    polled_items = NULL;
    polled_count = 0;
}

bool polled_maybe_readable(const void *socket)
{
    for (size_t i = 0; i < polled_count; i++)
        if (polled_items[i].socket == socket)
            return (polled_items[i].revents & ZMQ_POLLIN) != 0;
    return true;
}

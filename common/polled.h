/* polled: what the event loop's zmq_poll saw, for the drains of the same
 * iteration.
 *
 * A receive on a ZeroMQ socket that finds nothing still costs libzmq
 * system calls (its command mailbox, its fork check). loop_once() records
 * the poll items and their revents between its zmq_poll and the end of its
 * drains; a drain asks polled_maybe_readable() first and skips a socket
 * the poll found not readable. Outside that window (tests, tools, a drain
 * called on its own) nothing is recorded and every socket may be
 * readable, so a caller never misses a message: at worst it tries.
 *
 * One record per thread; the items belong to the caller of polled_set()
 * and must stay valid until polled_clear().
 */
#ifndef DISPATCH_POLLED_H
#define DISPATCH_POLLED_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

void polled_set(const zmq_pollitem_t *items, size_t count);
void polled_clear(void);
/* false only when socket was among the recorded items without ZMQ_POLLIN. */
bool polled_maybe_readable(const void *socket);

#endif

/* ready: how a process tells its starter that it is serving.
 *
 * With --ready-fd N the process writes, once its sockets are bound, one line
 * "endpoint <name> <url>" per bound endpoint (ports resolved, so tests can
 * bind tcp://127.0.0.1:*) and then the line "ready". Under systemd
 * (NOTIFY_SOCKET set) it also sends READY=1. A starter waits on this, never
 * on a timer.
 */
#ifndef DISPATCH_READY_H
#define DISPATCH_READY_H

#include <stddef.h>

typedef struct ready_endpoint {
    const char *name;
    const char *url;
} ready_endpoint_t;

/* fd < 0: only systemd is told. Returns 0 or -errno of the write. */
int ready_announce(int fd, const ready_endpoint_t *endpoints, size_t count);

/* Writes "<line>\n" to fd in one write (progress lines of tools); -EAGAIN
 * when a non-blocking pipe is full, -EMSGSIZE above PIPE_BUF. */
int ready_write_line(int fd, const char *line);

/* systemd: WATCHDOG=1 (when WatchdogSec is set) and STOPPING=1. */
void ready_watchdog(void);
void ready_stopping(void);

#endif

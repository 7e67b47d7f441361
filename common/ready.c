#include "ready.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int ready_write_line(int fd, const char *line)
{
    /* One write: a line of at most PIPE_BUF bytes reaches a pipe whole or
     * (non-blocking, pipe full) not at all. */
    char buf[PIPE_BUF];
    int len = snprintf(buf, sizeof(buf), "%s\n", line);
    if (len < 0 || (size_t)len >= sizeof(buf))
        return -EMSGSIZE;
    return write_all(fd, buf, (size_t)len);
}

int ready_announce(int fd, const ready_endpoint_t *endpoints, size_t count)
{
    int rc = 0;
    for (size_t i = 0; fd >= 0 && rc == 0 && i < count; i++) {
        char line[512];
        snprintf(line, sizeof(line), "endpoint %s %s", endpoints[i].name, endpoints[i].url);
        rc = ready_write_line(fd, line);
    }
    if (fd >= 0 && rc == 0)
        rc = ready_write_line(fd, "ready");
    sd_notify(0, "READY=1");
    return rc;
}

void ready_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}

void ready_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum clock_kind { CLOCK_REAL, CLOCK_SIM, CLOCK_FAST };

static struct {
    enum clock_kind kind;
    int sim_fd;
    double speed;
    int64_t start_ms;      /* business time at the anchor of a fast run */
    int64_t real_start_ms; /* the anchor, unix ms (CLOCK_REALTIME) */
    int64_t last_ms;       /* never go backwards (torn read, clock set back) */
} clock_state = {.kind = CLOCK_REAL, .sim_fd = -1, .speed = 1.0};

static int64_t timespec_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int clock_init(const char *spec)
{
    if (!spec || strcmp(spec, "real") == 0) {
        clock_state.kind = CLOCK_REAL;
        return 0;
    }
    if (strncmp(spec, "sim:", 4) == 0) {
        int fd = open(spec + 4, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        clock_state.kind = CLOCK_SIM;
        clock_state.sim_fd = fd;
        return 0;
    }
    double speed;
    long long start, anchor;
    int end = 0;
    if (sscanf(spec, "fast:%lf@%lld/%lld%n", &speed, &start, &anchor, &end) == 3 &&
        spec[end] == '\0' && speed > 0) {
        clock_state.real_start_ms = anchor;
    } else if (end = 0, sscanf(spec, "fast:%lf@%lld%n", &speed, &start, &end) == 2 &&
                            spec[end] == '\0' && speed > 0) {
        clock_state.real_start_ms = timespec_ms(CLOCK_REALTIME);
    } else {
        return -EINVAL;
    }
    clock_state.kind = CLOCK_FAST;
    clock_state.speed = speed;
    clock_state.start_ms = start;
    clock_state.last_ms = INT64_MIN;
    return 0;
}

int64_t clock_now_ms(void)
{
    switch (clock_state.kind) {
    case CLOCK_SIM: {
        char buf[32];
        ssize_t n = pread(clock_state.sim_fd, buf, sizeof(buf) - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            char *end;
            long long value = strtoll(buf, &end, 10);
            if (end != buf && value > clock_state.last_ms)
                clock_state.last_ms = value;
        }
        return clock_state.last_ms;
    }
    case CLOCK_FAST: {
        int64_t now = clock_state.start_ms +
                      (int64_t)((double)(timespec_ms(CLOCK_REALTIME) - clock_state.real_start_ms) *
                                clock_state.speed);
        if (now > clock_state.last_ms)
            clock_state.last_ms = now;
        return clock_state.last_ms;
    }
    default:
        return timespec_ms(CLOCK_REALTIME);
    }
}

double clock_speed(void)
{
    return clock_state.kind == CLOCK_FAST ? clock_state.speed : 1.0;
}

int64_t clock_real_ms_until(int64_t at_ms)
{
    if (clock_state.kind == CLOCK_SIM)
        return -1;
    int64_t business_ms = at_ms - clock_now_ms();
    if (business_ms <= 0)
        return 0;
    /* Rounded up: waking a little late is fine, early only costs a loop. */
    double real_ms = (double)business_ms / clock_speed();
    return real_ms >= 9.0e15 ? INT64_MAX : (int64_t)real_ms + 1;
}

int64_t clock_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

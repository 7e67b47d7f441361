#include "sim_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int sim_parse_duration(const char *text, int64_t *ms)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || !isfinite(value) || value <= 0)
        return -EINVAL;
    double unit = 1000;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        unit = 60e3, end++;
    else if (*end == 'h')
        unit = 3600e3, end++;
    else if (*end == 'd')
        unit = 86400e3, end++;
    if (*end || value * unit > 1e15)
        return -EINVAL;
    *ms = (int64_t)(value * unit);
    return *ms > 0 ? 0 : -EINVAL;
}

int sim_parse_share(const char *text, double *share)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text)
        return -EINVAL;
    if (*end == '%') {
        value /= 100;
        end++;
    }
    if (*end || !(value >= 0 && value <= 1))
        return -EINVAL;
    *share = value;
    return 0;
}

int sim_parse_long(const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (errno || end == text || *end || parsed < min || parsed > max)
        return -EINVAL;
    *value = parsed;
    return 0;
}

int sim_parse_range(const char *text, int64_t *low, int64_t *high)
{
    char copy[64];
    if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy))
        return -EINVAL;
    char *dash = strchr(copy, '-');
    if (dash)
        *dash = '\0';
    if (sim_parse_duration(copy, low) < 0)
        return -EINVAL;
    if (!dash) {
        *high = *low;
        return 0;
    }
    return sim_parse_duration(dash + 1, high) == 0 && *high >= *low ? 0 : -EINVAL;
}

int64_t sim_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

const char *sim_format_time(int64_t unix_ms, char *buf, size_t len)
{
    time_t seconds = (time_t)(unix_ms / 1000);
    struct tm local;
    if (!localtime_r(&seconds, &local) || strftime(buf, len, "%Y-%m-%dT%H:%M", &local) == 0)
        snprintf(buf, len, "%lld", (long long)unix_ms);
    return buf;
}

void sim_local_hour(int64_t unix_ms, int *hour, int *weekday)
{
    time_t seconds = (time_t)(unix_ms / 1000);
    struct tm local = {0};
    localtime_r(&seconds, &local);
    *hour = local.tm_hour;
    *weekday = local.tm_wday;
}

void sim_use_timezone(const char *zone)
{
    if (zone && !getenv("TZ"))
        setenv("TZ", zone, 1);
    tzset();
}

long sim_raise_file_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        return -1;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    return limit.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)limit.rlim_cur;
}

void sim_nonblocking(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

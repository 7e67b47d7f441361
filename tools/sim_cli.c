#include "sim_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "clock.h"
#include "ready.h"

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

/* Sets TZ to zone unless TZ is set already. */
static void use_timezone(const char *zone)
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

/* Makes fd non-blocking (a progress pipe nobody reads must not stall the
 * tool). fd < 0 is ignored. */
static void make_nonblocking(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* --- options --------------------------------------------------------------- */

static int bad_value(const char *program, const char *name, const char *arg)
{
    fprintf(stderr, "%s: --%s: '%s' is not a valid value\n", program, name, arg);
    return 2;
}

static int parse_number(const char *text, double *value)
{
    char *end;
    *value = strtod(text, &end);
    return *end ? -EINVAL : 0;
}

/* Stores arg into option->value as option->kind says; -EINVAL when it is
 * not a valid value. */
static int store_option(const sim_option_t *option, const char *arg)
{
    double number;
    long whole;
    char *end;
    switch (option->kind) {
    case SIM_OPTION_TEXT:
        *(const char **)option->value = arg;
        return 0;
    case SIM_OPTION_SET:
        *(bool *)option->value = true;
        return 0;
    case SIM_OPTION_CLEAR:
        *(bool *)option->value = false;
        return 0;
    case SIM_OPTION_LONG:
        return sim_parse_long(arg, (long)option->min, (long)option->max, (long *)option->value);
    case SIM_OPTION_FD:
        if (sim_parse_long(arg, 0, 1 << 20, &whole) < 0)
            return -EINVAL;
        *(int *)option->value = (int)whole;
        return 0;
    case SIM_OPTION_NUMBER:
        if (parse_number(arg, &number) < 0 || !(number >= option->min && number <= option->max))
            return -EINVAL;
        *(double *)option->value = number;
        return 0;
    case SIM_OPTION_POSITIVE:
        if (parse_number(arg, &number) < 0 || !(number > 0 && number <= option->max))
            return -EINVAL;
        *(double *)option->value = number;
        return 0;
    case SIM_OPTION_SHARE:
        if (sim_parse_share(arg, &number) < 0 || number > option->max)
            return -EINVAL;
        *(double *)option->value = number;
        return 0;
    case SIM_OPTION_DURATION:
        return sim_parse_duration(arg, (int64_t *)option->value);
    case SIM_OPTION_RANGE: {
        int64_t *range = option->value;
        return sim_parse_range(arg, &range[0], &range[1]);
    }
    case SIM_OPTION_SEED:
        *(uint64_t *)option->value = strtoull(arg, &end, 10);
        return *end || end == arg ? -EINVAL : 0;
    case SIM_OPTION_CHECK:
        return option->check(arg, option->value);
    }
    return -EINVAL;
}

int sim_parse_options(const char *program, const char *usage, int argc, char **argv,
                      const sim_option_t *own, size_t own_count, sim_options_t *options)
{
    const sim_option_t shared[] = {
        {"config", SIM_OPTION_TEXT, .value = &options->config_path},
        {"clock", SIM_OPTION_TEXT, .value = &options->clock},
        {"key", SIM_OPTION_TEXT, .value = &options->key_path},
        {"duration", SIM_OPTION_DURATION, .value = &options->duration},
        {"seed", SIM_OPTION_SEED, .value = &options->seed},
        {"ready-fd", SIM_OPTION_FD, .value = &options->ready_fd},
        {"progress-fd", SIM_OPTION_FD, .value = &options->progress_fd},
        {"progress-every", SIM_OPTION_LONG, &options->progress_every, .min = 10, .max = 3600000},
    };
    size_t shared_count = sizeof(shared) / sizeof(shared[0]);
    size_t count = shared_count + own_count;
    /* getopt_long's table: every option, then --help, then the end. */
    struct option *table = calloc(count + 2, sizeof(*table));
    if (!table) {
        fprintf(stderr, "%s: out of memory\n", program);
        return 2;
    }
    for (size_t i = 0; i < count; i++) {
        const sim_option_t *option = i < shared_count ? &shared[i] : &own[i - shared_count];
        bool flag = option->kind == SIM_OPTION_SET || option->kind == SIM_OPTION_CLEAR;
        table[i] = (struct option){option->name, flag ? no_argument : required_argument, NULL,
                                   (int)i + 256};
    }
    table[count] = (struct option){"help", no_argument, NULL, (int)count + 256};
    int opt, rc = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, "", table, NULL)) != -1) {
        size_t i = (size_t)opt - 256;
        if (opt < 256 || i > count) {
            rc = 2;
            fprintf(stderr, "usage: %s", usage);
        } else if (i == count) {
            rc = 1;
            fprintf(stderr, "usage: %s", usage);
        } else {
            const sim_option_t *option = i < shared_count ? &shared[i] : &own[i - shared_count];
            if (store_option(option, optarg) < 0)
                rc = bad_value(program, option->name, optarg);
            if (option->kind == SIM_OPTION_SEED)
                options->seed_given = true;
        }
    }
    free(table);
    if (rc == 0 && (optind < argc || !options->config_path)) {
        rc = 2;
        fprintf(stderr, "usage: %s", usage);
    }
    return rc;
}

/* --- start-up ------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

bool sim_stop_requested(void)
{
    return stop_requested != 0;
}

int sim_start(const char *program, const sim_options_t *options)
{
    int rc = clock_init(options->clock);
    if (rc < 0) {
        fprintf(stderr, "%s: --clock %s: %s\n", program, options->clock, strerror(-rc));
        return 2;
    }
    make_nonblocking(options->progress_fd);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction stop = {.sa_handler = on_stop};
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    return 0;
}

int sim_load_topology(const char *program, const sim_options_t *options, config_t **ret)
{
    char err[1024];
    int rc = config_load(options->config_path, ret, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", program, err);
        return rc;
    }
    use_timezone(config_timezone(*ret));
    return 0;
}

void sim_announce_ready(const sim_options_t *options)
{
    if (options->ready_fd >= 0)
        ready_write_line(options->ready_fd, "ready");
}

void sim_write_progress(const sim_options_t *options, const char *line)
{
    if (options->progress_fd >= 0)
        ready_write_line(options->progress_fd, line);
}

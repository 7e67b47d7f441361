/* sim_cli: the command line and start-up shared by dispatch-unitsim and
 * dispatch-callgen: their options as a table (the ones both take, and each
 * tool's own), durations and shares on the command line, the clock, the
 * stop signals, the topology, business times in the city's time zone, the
 * ready and progress pipes, the file limit.
 *
 * Messages go to stderr prefixed with the tool's name; a usage error is
 * exit code 2.
 */
#ifndef DISPATCH_SIM_CLI_H
#define DISPATCH_SIM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The options both tools take. */
typedef struct sim_options {
    const char *config_path; /* --config FILE (required) */
    const char *clock;       /* --clock SPEC (clock.h); NULL = real time */
    int64_t duration;        /* --duration: business ms; 0 = until stopped */
    uint64_t seed;           /* --seed N */
    bool seed_given;
    int ready_fd;         /* --ready-fd N: "ready" goes there; -1 = none */
    int progress_fd;      /* --progress-fd N: progress lines; -1 = none */
    long progress_every;  /* --progress-every MS */
    const char *key_path; /* --key FILE; NULL = the tool's key in the topology's keys dir */
} sim_options_t;

/* What an option's argument is, and where it goes (`value`). */
typedef enum sim_option_kind {
    SIM_OPTION_TEXT,     /* const char *: the argument as given */
    SIM_OPTION_SET,      /* bool: true; no argument */
    SIM_OPTION_CLEAR,    /* bool: false; no argument */
    SIM_OPTION_LONG,     /* long: a decimal in [min, max] */
    SIM_OPTION_FD,       /* int: a file descriptor number */
    SIM_OPTION_NUMBER,   /* double: a number in [min, max] */
    SIM_OPTION_POSITIVE, /* double: a number above 0, at most max */
    SIM_OPTION_SHARE,    /* double: a share (sim_parse_share), at most max */
    SIM_OPTION_DURATION, /* int64_t: business ms (sim_parse_duration) */
    SIM_OPTION_RANGE,    /* int64_t[2]: LOW-HIGH (sim_parse_range) */
    SIM_OPTION_SEED,     /* uint64_t: a decimal */
    SIM_OPTION_CHECK,    /* check(arg, value): 0, or -EINVAL for a bad value */
} sim_option_kind_t;

typedef struct sim_option {
    const char *name; /* without the leading "--" */
    sim_option_kind_t kind;
    void *value;
    double min, max;
    int (*check)(const char *arg, void *value);
} sim_option_t;

/* Parses argv into options (the shared ones) and the tool's own table.
 * usage: the tool's usage text, printed on --help (to stderr) and on a
 * usage error. Returns 0 to run, 1 after --help, or 2 after a usage error
 * (printed). */
int sim_parse_options(const char *program, const char *usage, int argc, char **argv,
                      const sim_option_t *own, size_t own_count, sim_options_t *options);

/* Start-up both tools share: the clock (--clock), the progress pipe made
 * non-blocking, SIGPIPE ignored, SIGTERM and SIGINT caught. Returns 0, or 2
 * after printing why. */
int sim_start(const char *program, const sim_options_t *options);
/* True once SIGTERM or SIGINT came. */
bool sim_stop_requested(void);

/* Loads --config (printing why not) and sets TZ to the city's zone. */
int sim_load_topology(const char *program, const sim_options_t *options, config_t **ret);

/* "ready" on --ready-fd; one line on --progress-fd. Nothing without them. */
void sim_announce_ready(const sim_options_t *options);
void sim_write_progress(const sim_options_t *options, const char *line);

/* "90s", "15m", "12h", "2d" or plain seconds ("30"), fractions allowed
 * ("1.5h"), into ms; -EINVAL for anything else or a value <= 0. */
int sim_parse_duration(const char *text, int64_t *ms);
/* A share: "0.05" or "5%", in [0, 1]; -EINVAL otherwise. */
int sim_parse_share(const char *text, double *share);
/* A decimal in [min, max]; -EINVAL otherwise. */
int sim_parse_long(const char *text, long min, long max, long *value);
/* "LOW-HIGH" (two durations, LOW <= HIGH) or one duration (both). */
int sim_parse_range(const char *text, int64_t *low, int64_t *high);

/* Monotonic real time in ms (timeouts, pacing; not business time). */
int64_t sim_monotonic_ms(void);
/* "2026-11-23T14:05" of a business time, local to TZ (the tools set TZ to
 * the city's zone at start). */
const char *sim_format_time(int64_t unix_ms, char *buf, size_t len);
/* Local hour (0..23) and weekday (0 = Sunday) of a business time. */
void sim_local_hour(int64_t unix_ms, int *hour, int *weekday);

/* Raises the soft limit of open files to the hard limit (thousands of unit
 * sockets); returns the new soft limit. */
long sim_raise_file_limit(void);

#endif

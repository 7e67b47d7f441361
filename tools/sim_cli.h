/* sim_cli: command-line values and output shared by dispatch-unitsim and
 * dispatch-callgen: durations and shares on the command line, business
 * times in the city's time zone, the progress pipe, the file limit.
 */
#ifndef DISPATCH_SIM_CLI_H
#define DISPATCH_SIM_CLI_H

#include <stddef.h>
#include <stdint.h>

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
/* Sets TZ to zone unless TZ is set already. */
void sim_use_timezone(const char *zone);

/* Raises the soft limit of open files to the hard limit (thousands of unit
 * sockets); returns the new soft limit. */
long sim_raise_file_limit(void);

/* Makes fd non-blocking (a progress pipe nobody reads must not stall the
 * tool). fd < 0 is ignored. */
void sim_nonblocking(int fd);

#endif

/* clock: business time in unix milliseconds, injectable.
 *
 * Deadlines, reminders, ticket dates and KPIs use this clock, never the
 * system's directly, so that tests drive time and the demo runs it fast.
 * (The bus's timeouts use CLOCK_MONOTONIC: they are about sockets, not
 * business.) The source is chosen once per process:
 *
 *   real                 the system clock (default)
 *   sim:<file>           the time is the decimal number of ms in <file>,
 *                        read at every call; a test writes it to move time
 *   fast:<speed>@<start>/<anchor>
 *                        runs <speed> times faster than real time and
 *                        was at <start> ms at the unix instant <anchor> ms
 *                        (system clock): business time = start + (now -
 *                        anchor) x speed. Every process given the same
 *                        value is on one timeline, whenever it starts and
 *                        on whichever host (as far as their system clocks
 *                        agree). The demo and scripts/run use this.
 *   fast:<speed>@<start> the same anchored at this process's own start:
 *                        for one process alone (two started a second
 *                        apart are <speed> seconds apart)
 *
 * A fast clock never goes backwards, even when the system clock is set
 * back: it stands still until it catches up.
 */
#ifndef DISPATCH_CLOCK_H
#define DISPATCH_CLOCK_H

#include <stdint.h>

/* 0, or -EINVAL for a spec that is none of the above (-errno when the sim
 * file cannot be opened). */
int clock_init(const char *spec);
int64_t clock_now_ms(void);
/* Business ms that pass per real ms (1 for real and sim). */
double clock_speed(void);
/* Real milliseconds until business time reaches at_ms (0 when it has), for
 * a loop that sleeps until a business instant; -1 when the clock cannot
 * tell: a sim clock moves only when its file is written, so such a sleeper
 * must wake up on its own now and then and read the clock again. */
int64_t clock_real_ms_until(int64_t at_ms);

/* Socket time: CLOCK_MONOTONIC in ms, for timeouts, windows and backoffs
 * (never business time: it does not follow the spec above). */
int64_t clock_monotonic_ms(void);

#endif

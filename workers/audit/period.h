/* period: the days, months and quarters KPIs are counted in.
 *
 * A period is named by its key: "2026-11-25" (day), "2026-11" (month),
 * "2026-Q4" (quarter). An instant belongs to the period of its local date
 * in the process's time zone (the audit sets TZ to the city's zone at
 * start; see audit.h). Dates are proleptic Gregorian, years 1..9999.
 */
#ifndef DISPATCH_AUDIT_PERIOD_H
#define DISPATCH_AUDIT_PERIOD_H

#include <stdint.h>

#include "dispatch.pb-c.h"

/* Room for the longest key and its NUL. */
#define PERIOD_KEY_SIZE 12

typedef struct period_date {
    int year, month, day;
} period_date_t;

/* The local date of unix_ms. -ERANGE outside years 1..9999. */
int period_date_of(int64_t unix_ms, period_date_t *date);

/* The key of the period of `period` kind that holds date. -EINVAL for a
 * period kind that is not DAY, MONTH or QUARTER. */
int period_key(Dispatch__KpiPeriod period, const period_date_t *date, char key[PERIOD_KEY_SIZE]);

/* Reads a day "YYYY-MM-DD" (any period), a month "YYYY-MM" (month and
 * quarter) or a quarter "YYYY-Qn" (quarter) into a date inside it.
 * -EINVAL for anything else, or a date that does not exist. */
int period_parse(Dispatch__KpiPeriod period, const char *text, period_date_t *date);

/* A date in the period before the one holding date. */
void period_previous(Dispatch__KpiPeriod period, const period_date_t *date, period_date_t *ret);

#endif

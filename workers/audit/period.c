/* period: see period.h. */
#include "period.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

static bool date_valid(const period_date_t *date)
{
    return date->year >= 1 && date->year <= 9999 && date->month >= 1 && date->month <= 12 &&
           date->day >= 1 && date->day <= days_in_month(date->year, date->month);
}

static int date_of_second(int64_t seconds, period_date_t *date)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    if ((int64_t)t != seconds || !localtime_r(&t, &tm))
        return -ERANGE;
    *date = (period_date_t){tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday};
    return date_valid(date) ? 0 : -ERANGE;
}

/* The date of the last minute asked for: every event counts in a few
 * periods, and events come in runs of the same minute. The process's zone
 * is set once at start (audit.h), and a zone's offset changes only on
 * whole minutes; a minute is kept only when its first and last second
 * have the same date. */
static _Thread_local struct {
    int64_t minute;
    period_date_t date;
    bool valid;
} date_cache;

int period_date_of(int64_t unix_ms, period_date_t *date)
{
    /* Floor division: an instant before 1970 belongs to the earlier second. */
    int64_t seconds = unix_ms / 1000 - (unix_ms % 1000 < 0 ? 1 : 0);
    int64_t minute = seconds / 60 - (seconds % 60 < 0 ? 1 : 0);
    if (date_cache.valid && date_cache.minute == minute) {
        *date = date_cache.date;
        return 0;
    }
    int rc = date_of_second(seconds, date);
    if (rc < 0)
        return rc;
    period_date_t first, last;
    date_cache.valid =
        date_of_second(minute * 60, &first) == 0 && date_of_second(minute * 60 + 59, &last) == 0 &&
        memcmp(&first, date, sizeof(first)) == 0 && memcmp(&last, date, sizeof(last)) == 0;
    date_cache.minute = minute;
    date_cache.date = *date;
    return 0;
}

static void put_digits(char *at, unsigned value, int count)
{
    for (int i = count - 1; i >= 0; i--) {
        at[i] = (char)('0' + value % 10u);
        value /= 10u;
    }
}

/* Keys are written digit by digit: kpi_apply() names three periods for
 * every count it changes. */
int period_key(Dispatch__KpiPeriod period, const period_date_t *date, char key[PERIOD_KEY_SIZE])
{
    unsigned year = (unsigned)date->year % 10000u, month = (unsigned)date->month % 100u;
    put_digits(key, year, 4);
    key[4] = '-';
    switch (period) {
    case DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY:
        put_digits(key + 5, month, 2);
        key[7] = '-';
        put_digits(key + 8, (unsigned)date->day % 100u, 2);
        key[10] = '\0';
        return 0;
    case DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH:
        put_digits(key + 5, month, 2);
        key[7] = '\0';
        return 0;
    case DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER:
        key[5] = 'Q';
        key[6] = (char)('0' + (month + 2u) / 3u % 10u);
        key[7] = '\0';
        return 0;
    default:
        key[0] = '\0';
        return -EINVAL;
    }
}

/* Exactly `count` decimal digits at text; their value in *value. */
static bool digits(const char *text, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        *value = *value * 10 + (text[i] - '0');
    }
    return true;
}

int period_parse(Dispatch__KpiPeriod period, const char *text, period_date_t *date)
{
    size_t len = strlen(text);
    period_date_t parsed = {0, 0, 1};
    bool ok = len >= 7 && digits(text, 4, &parsed.year) && text[4] == '-';
    if (ok && len == 10)
        ok = digits(text + 5, 2, &parsed.month) && text[7] == '-' &&
             digits(text + 8, 2, &parsed.day);
    else if (ok && len == 7 && text[5] == 'Q')
        ok = period == DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER && text[6] >= '1' &&
             text[6] <= '4' && (parsed.month = (text[6] - '1') * 3 + 1) > 0;
    else if (ok && len == 7)
        ok = period != DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY && digits(text + 5, 2, &parsed.month);
    else
        ok = false;
    if (!ok || !date_valid(&parsed))
        return -EINVAL;
    *date = parsed;
    return 0;
}

void period_previous(Dispatch__KpiPeriod period, const period_date_t *date, period_date_t *ret)
{
    period_date_t prev = *date;
    switch (period) {
    case DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY:
        if (--prev.day == 0) {
            if (--prev.month == 0) {
                prev.month = 12;
                prev.year--;
            }
            prev.day = days_in_month(prev.year < 1 ? 1 : prev.year, prev.month);
        }
        break;
    case DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH:
        prev.day = 1;
        if (--prev.month == 0) {
            prev.month = 12;
            prev.year--;
        }
        break;
    default:
        prev.day = 1;
        prev.month = (date->month - 1) / 3 * 3 + 1 - 3;
        if (prev.month < 1) {
            prev.month += 12;
            prev.year--;
        }
        break;
    }
    *ret = prev;
}

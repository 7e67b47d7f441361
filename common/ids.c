/* ids: see ids.h for the id shape and the time zone choice.
 *
 * Invariant: every function leaves TZ and the C library's time zone state
 * as it found them, whatever path it returns by.
 */
#include "ids.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COUNTER_MIN_DIGITS 6
#define COUNTER_MAX_DIGITS 20 /* UINT64_MAX */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool prefix_is_valid(const char *prefix)
{
    size_t length = strlen(prefix);
    if (length == 0 || length > IDS_PREFIX_MAX || !is_upper(prefix[0]))
        return false;
    for (size_t i = 0; i < length; i++)
        if (!is_upper(prefix[i]) && !is_digit(prefix[i]))
            return false;
    return true;
}

static bool zone_name_is_valid(const char *zone)
{
    size_t length = strlen(zone);
    if (length == 0 || zone[0] == '/')
        return false; /* no '.' either, below: the name stays under the zone directory */
    for (size_t i = 0; i < length; i++) {
        char c = zone[i];
        bool allowed = is_digit(c) || is_upper(c) || (c >= 'a' && c <= 'z') || c == '/' ||
                       c == '_' || c == '+' || c == '-';
        if (!allowed)
            return false;
    }
    return true;
}

static bool zone_is_utc(const char *zone)
{
    return strcmp(zone, "UTC") == 0 || strcmp(zone, "Etc/UTC") == 0;
}

int ids_check_timezone(const char *tz)
{
    if (tz == NULL || !zone_name_is_valid(tz))
        return -EINVAL;
    const char *directory = getenv("TZDIR");
    if (directory == NULL || directory[0] == '\0')
        directory = "/usr/share/zoneinfo";
    char path[PATH_MAX];
    int length = snprintf(path, sizeof(path), "%s/%s", directory, tz);
    if (length < 0 || (size_t)length >= sizeof(path))
        return -EINVAL;
    if (access(path, R_OK) < 0)
        return zone_is_utc(tz) ? 0 : -ENOENT; /* UTC needs no file */
    return 0;
}

/* The broken-down local time of `seconds` in `zone`. */
static int local_time_in_zone(time_t seconds, const char *zone, struct tm *ret)
{
    if (zone_is_utc(zone))
        return gmtime_r(&seconds, ret) != NULL ? 0 : -ERANGE;

    const char *current = getenv("TZ");
    if (current != NULL && strcmp(current, zone) == 0) {
        tzset(); /* localtime_r need not notice a TZ set since the last tzset */
        return localtime_r(&seconds, ret) != NULL ? 0 : -ERANGE;
    }

    char *saved = NULL;
    if (current != NULL) {
        saved = strdup(current);
        if (saved == NULL)
            return -ENOMEM;
    }
    int r = 0;
    if (setenv("TZ", zone, 1) < 0) {
        r = errno != 0 ? -errno : -ENOMEM;
    } else {
        tzset();
        if (localtime_r(&seconds, ret) == NULL)
            r = -ERANGE;
        if (saved != NULL)
            setenv("TZ", saved, 1);
        else
            unsetenv("TZ");
        tzset();
    }
    free(saved);
    return r;
}

/* The date of one UTC minute in one zone, kept from the last call: an id
 * is formatted twice per ticket, and finding the date costs a time-zone
 * file check and, for a zone other than TZ's, a tzset() that reads the
 * file. A zone's offset changes only on whole minutes, and the date is
 * taken for the minute's first and last second both: it is kept only when
 * they agree. One cache per thread. */
typedef struct date_cache {
    char zone[64];
    int64_t minute;
    int year, month, day;
    bool valid;
} date_cache_t;

static _Thread_local date_cache_t date_cache;

static int local_date(int64_t seconds, const char *tz, int *year, int *month, int *day)
{
    int64_t minute = seconds / 60 - (seconds % 60 < 0 ? 1 : 0);
    if (date_cache.valid && date_cache.minute == minute && strcmp(date_cache.zone, tz) == 0) {
        *year = date_cache.year;
        *month = date_cache.month;
        *day = date_cache.day;
        return 0;
    }
    int r = ids_check_timezone(tz);
    if (r < 0)
        return r;
    if ((int64_t)(time_t)seconds != seconds)
        return -ERANGE;
    struct tm local = {0};
    r = local_time_in_zone((time_t)seconds, tz, &local);
    if (r < 0)
        return r;
    *year = local.tm_year + 1900;
    *month = local.tm_mon + 1;
    *day = local.tm_mday;
    if (*year < 1 || *year > 9999)
        return -ERANGE;

    struct tm first = {0}, last = {0};
    int64_t first_second = minute * 60;
    date_cache.valid = false;
    if (strlen(tz) < sizeof(date_cache.zone) &&
        (int64_t)(time_t)(first_second + 59) == first_second + 59 &&
        local_time_in_zone((time_t)first_second, tz, &first) == 0 &&
        local_time_in_zone((time_t)(first_second + 59), tz, &last) == 0 &&
        first.tm_year == local.tm_year && first.tm_mon == local.tm_mon &&
        first.tm_mday == local.tm_mday && last.tm_year == local.tm_year &&
        last.tm_mon == local.tm_mon && last.tm_mday == local.tm_mday) {
        snprintf(date_cache.zone, sizeof(date_cache.zone), "%s", tz);
        date_cache.minute = minute;
        date_cache.year = *year;
        date_cache.month = *month;
        date_cache.day = *day;
        date_cache.valid = true;
    }
    return 0;
}

static void put_digits(char *at, uint64_t value, int count)
{
    for (int i = count - 1; i >= 0; i--) {
        at[i] = (char)('0' + value % 10);
        value /= 10;
    }
}

int ids_format_ticket(char *buf, size_t len, const char *prefix, int64_t unix_ms, const char *tz,
                      uint64_t counter)
{
    if (buf == NULL || len == 0)
        return -ENOSPC;
    buf[0] = '\0';
    if (prefix == NULL || !prefix_is_valid(prefix))
        return -EINVAL;
    if (tz == NULL || !zone_name_is_valid(tz))
        return -EINVAL;

    /* Floor, not truncation: -1 ms is the last second of 1969. */
    int64_t seconds = unix_ms / 1000 - (unix_ms % 1000 < 0 ? 1 : 0);
    int year, month, day;
    int r = local_date(seconds, tz, &year, &month, &day);
    if (r < 0)
        return r;

    /* PREFIX-YYYYMMDD-NNNNNN (at least six counter digits), without
     * printf: this runs for every ticket. */
    size_t prefix_length = strlen(prefix);
    int counter_digits = 1;
    for (uint64_t rest = counter / 10; rest > 0; rest /= 10)
        counter_digits++;
    if (counter_digits < COUNTER_MIN_DIGITS)
        counter_digits = COUNTER_MIN_DIGITS;
    size_t length = prefix_length + 1 + 8 + 1 + (size_t)counter_digits;
    if (length >= len)
        return -ENOSPC; /* a cut-off id is another ticket's id */
    char *at = buf;
    memcpy(at, prefix, prefix_length);
    at += prefix_length;
    *at++ = '-';
    put_digits(at, (uint64_t)year, 4);
    put_digits(at + 4, (uint64_t)month, 2);
    put_digits(at + 6, (uint64_t)day, 2);
    at += 8;
    *at++ = '-';
    put_digits(at, counter, counter_digits);
    at[counter_digits] = '\0';
    return 0;
}

static bool is_leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

static int parse_fixed_digits(const char *text, size_t count)
{
    int value = 0;
    for (size_t i = 0; i < count; i++)
        value = value * 10 + (text[i] - '0');
    return value;
}

int ids_parse_ticket(const char *id, ids_ticket_t *ret)
{
    if (id == NULL)
        return -EINVAL;

    const char *dash = strchr(id, '-');
    if (dash == NULL)
        return -EINVAL;
    size_t prefix_length = (size_t)(dash - id);
    char prefix[IDS_PREFIX_MAX + 1];
    if (prefix_length == 0 || prefix_length > IDS_PREFIX_MAX)
        return -EINVAL;
    memcpy(prefix, id, prefix_length);
    prefix[prefix_length] = '\0';
    if (!prefix_is_valid(prefix))
        return -EINVAL;

    const char *date = dash + 1;
    for (size_t i = 0; i < 8; i++)
        if (!is_digit(date[i]))
            return -EINVAL;
    if (date[8] != '-')
        return -EINVAL;
    int year = parse_fixed_digits(date, 4);
    int month = parse_fixed_digits(date + 4, 2);
    int day = parse_fixed_digits(date + 6, 2);
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
        return -EINVAL;

    const char *digits = date + 9;
    size_t digit_count = strlen(digits);
    if (digit_count < COUNTER_MIN_DIGITS || digit_count > COUNTER_MAX_DIGITS)
        return -EINVAL;
    if (digit_count > COUNTER_MIN_DIGITS && digits[0] == '0')
        return -EINVAL; /* not canonical: padding beyond 6 digits */
    uint64_t counter = 0;
    for (size_t i = 0; i < digit_count; i++) {
        if (!is_digit(digits[i]))
            return -EINVAL;
        uint64_t digit = (uint64_t)(digits[i] - '0');
        if (counter > (UINT64_MAX - digit) / 10)
            return -EINVAL;
        counter = counter * 10 + digit;
    }

    if (ret != NULL) {
        memcpy(ret->prefix, prefix, prefix_length + 1);
        ret->year = year;
        ret->month = month;
        ret->day = day;
        ret->counter = counter;
    }
    return 0;
}

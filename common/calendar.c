/* calendar: see calendar.h for the file format and the working-day model.
 *
 * Invariants of a loaded calendar: holidays[] and workdays[] are sorted,
 * without repeats, and share no day; weekend[] leaves at least one day of
 * the week working; offsets[] holds the UTC offset (seconds east) of local
 * midnight for every day of [first_day, first_day + offset_count). Nothing
 * changes after load, and every function leaves TZ as it found it.
 */
#include "calendar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "ini.h"

#define DAY_SECONDS 86400LL
#define MAX_RANGE_DAYS 366
/* Loops over days stop here (about 270 years): a guard, never reached by
 * the spans a hotline uses. */
#define MAX_DAYS_WALKED 100000
#define DEFAULT_FIRST_YEAR 2020
#define DEFAULT_LAST_YEAR 2040

struct calendar {
    char zone[128];
    bool weekend[7];
    int64_t *holidays, *workdays;
    size_t holiday_count, workday_count;
    size_t holiday_capacity, workday_capacity;
    int64_t first_day;
    int32_t *offsets;
    size_t offset_count;
};

/* ------------------------------------------------------------ civil dates */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Days from civil (proleptic Gregorian), after H. Hinnant's algorithm. */
int64_t calendar_day_from_date(int year, int month, int day)
{
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t mp = (month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void calendar_date_from_day(int64_t z, int *year, int *month, int *mday)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(yoe + era * 400 + (m <= 2));
    *month = (int)m;
    *mday = (int)d;
}

int calendar_weekday(int64_t day)
{
    /* 1970-01-01 was a Thursday. */
    return (int)(((day % 7) + 7 + 4) % 7);
}

static bool date_is_valid(int year, int month, int day)
{
    static const int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1970 || year > 9999 || month < 1 || month > 12 || day < 1)
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    int last = days_in_month[month - 1] + (month == 2 && leap);
    return day <= last;
}

/* "YYYY-MM-DD" exactly; *end gets what follows. */
static bool parse_date(const char *text, int64_t *day, const char **end)
{
    int year = 0, month = 0, mday = 0;
    const char *p = text;
    for (int i = 0; i < 10; i++) {
        char c = p[i];
        if (i == 4 || i == 7) {
            if (c != '-')
                return false;
        } else if (c < '0' || c > '9') {
            return false;
        }
    }
    year = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    month = (p[5] - '0') * 10 + (p[6] - '0');
    mday = (p[8] - '0') * 10 + (p[9] - '0');
    if (!date_is_valid(year, month, mday))
        return false;
    *day = calendar_day_from_date(year, month, mday);
    *end = p + 10;
    return true;
}

/* ------------------------------------------------------------ loading */

/* What the ini handler fills, and where it writes its message. */
typedef struct parse {
    calendar_t *calendar;
    char *err;
    size_t err_len;
} parse_t;

static int day_list_add(int64_t **days, size_t *count, size_t *capacity, int64_t day)
{
    if (*count == *capacity) {
        size_t grown_capacity = *capacity ? *capacity * 2 : 64;
        int64_t *grown = realloc(*days, grown_capacity * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        *days = grown;
        *capacity = grown_capacity;
    }
    (*days)[(*count)++] = day;
    return 0;
}

static int compare_days(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool day_list_has(const int64_t *days, size_t count, int64_t day)
{
    return count > 0 && bsearch(&day, days, count, sizeof(*days), compare_days) != NULL;
}

static int parse_weekend(parse_t *parse, const ini_item_t *item)
{
    static const char *const names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    const char *value = item->value;
    calendar_t *calendar = parse->calendar;
    memset(calendar->weekend, 0, sizeof(calendar->weekend));
    if (strcmp(value, "none") == 0)
        return 0;
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - start);
        int found = -1;
        for (int i = 0; i < 7; i++)
            if (len == 3 && strncmp(start, names[i], 3) == 0)
                found = i;
        if (found < 0)
            return ini_report(item, parse->err, parse->err_len, -EINVAL,
                              "weekend: '%.*s' is not a day (sun, mon, tue, wed, thu, fri, sat)",
                              (int)len, start);
        calendar->weekend[found] = true;
    }
    for (int i = 0; i < 7; i++)
        if (!calendar->weekend[i])
            return 0;
    return ini_report(item, parse->err, parse->err_len, -EINVAL,
                      "weekend: every day of the week is a weekend day");
}

static int parse_dated(parse_t *parse, const ini_item_t *item)
{
    const char *section = item->section, *name = item->key;
    calendar_t *calendar = parse->calendar;
    bool holiday = strcmp(section, "holidays") == 0;
    int64_t first, last;
    const char *end;
    if (!parse_date(name, &first, &end))
        return ini_report(item, parse->err, parse->err_len, -EINVAL,
                          "[%s] %s: expected a date YYYY-MM-DD or a range "
                          "YYYY-MM-DD..YYYY-MM-DD",
                          section, name);
    last = first;
    if (strncmp(end, "..", 2) == 0) {
        if (!parse_date(end + 2, &last, &end) || last < first)
            return ini_report(item, parse->err, parse->err_len, -EINVAL,
                              "[%s] %s: a range runs from a date to a later one", section, name);
        if (last - first >= MAX_RANGE_DAYS)
            return ini_report(item, parse->err, parse->err_len, -EINVAL,
                              "[%s] %s: a range is at most %d days", section, name, MAX_RANGE_DAYS);
    }
    if (*end)
        return ini_report(item, parse->err, parse->err_len, -EINVAL,
                          "[%s] %s: unexpected '%s' after the date", section, name, end);
    if (!holiday && first != last)
        return ini_report(item, parse->err, parse->err_len, -EINVAL,
                          "[workdays] %s: one date per line", name);
    for (int64_t day = first; day <= last; day++) {
        int rc = holiday ? day_list_add(&calendar->holidays, &calendar->holiday_count,
                                        &calendar->holiday_capacity, day)
                         : day_list_add(&calendar->workdays, &calendar->workday_count,
                                        &calendar->workday_capacity, day);
        if (rc < 0)
            return ini_report(item, parse->err, parse->err_len, rc, "out of memory");
    }
    return 0;
}

static int on_key(void *user, const ini_item_t *item)
{
    parse_t *parse = user;
    const char *section = item->section, *name = item->key, *value = item->value;
    calendar_t *calendar = parse->calendar;
    if (strcmp(section, "calendar") == 0) {
        if (strcmp(name, "time_zone") == 0) {
            int rc = ids_check_timezone(value);
            if (rc == -ENOENT)
                return ini_report(item, parse->err, parse->err_len, -EINVAL,
                                  "time_zone: zone '%s' is not installed", value);
            if (rc < 0 || strlen(value) >= sizeof(calendar->zone))
                return ini_report(item, parse->err, parse->err_len, -EINVAL,
                                  "time_zone: '%s' is not a zone name", value);
            snprintf(calendar->zone, sizeof(calendar->zone), "%s", value);
            return 0;
        }
        if (strcmp(name, "weekend") == 0)
            return parse_weekend(parse, item);
        return ini_report(item, parse->err, parse->err_len, -EINVAL,
                          "[calendar] %s: unknown key (known: time_zone, weekend)", name);
    }
    if (strcmp(section, "holidays") == 0 || strcmp(section, "workdays") == 0)
        return parse_dated(parse, item);
    return ini_report(item, parse->err, parse->err_len, -EINVAL,
                      "[%s]: unknown section (known: calendar, holidays, workdays)", section);
}

static const ini_handler_t calendar_handler = {.key = on_key};

static bool zone_is_utc(const char *zone)
{
    return strcmp(zone, "UTC") == 0 || strcmp(zone, "Etc/UTC") == 0;
}

/* offsets[] for the years [first_year, last_year]. */
static int compute_offsets(calendar_t *self, int first_year, int last_year)
{
    self->first_day = calendar_day_from_date(first_year, 1, 1);
    int64_t last_day = calendar_day_from_date(last_year, 12, 31);
    self->offset_count = (size_t)(last_day - self->first_day + 1);
    self->offsets = calloc(self->offset_count, sizeof(*self->offsets));
    if (!self->offsets)
        return -ENOMEM;
    if (zone_is_utc(self->zone))
        return 0;

    const char *current = getenv("TZ");
    char *saved = NULL;
    if (current) {
        saved = strdup(current);
        if (!saved)
            return -ENOMEM;
    }
    int rc = 0;
    if (setenv("TZ", self->zone, 1) < 0) {
        rc = -ENOMEM;
    } else {
        tzset();
        for (size_t i = 0; i < self->offset_count; i++) {
            int64_t day = self->first_day + (int64_t)i;
            int year, month, mday;
            calendar_date_from_day(day, &year, &month, &mday);
            struct tm tm = {
                .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = mday, .tm_isdst = -1};
            time_t midnight = mktime(&tm);
            if (midnight == (time_t)-1) {
                rc = -ERANGE;
                break;
            }
            self->offsets[i] = (int32_t)(day * DAY_SECONDS - (int64_t)midnight);
        }
        if (saved)
            setenv("TZ", saved, 1);
        else
            unsetenv("TZ");
        tzset();
    }
    free(saved);
    return rc;
}

static void year_range(const calendar_t *self, int *first_year, int *last_year)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < self->holiday_count; i++) {
        lo = self->holidays[i] < lo ? self->holidays[i] : lo;
        hi = self->holidays[i] > hi ? self->holidays[i] : hi;
    }
    for (size_t i = 0; i < self->workday_count; i++) {
        lo = self->workdays[i] < lo ? self->workdays[i] : lo;
        hi = self->workdays[i] > hi ? self->workdays[i] : hi;
    }
    if (lo > hi) {
        *first_year = DEFAULT_FIRST_YEAR;
        *last_year = DEFAULT_LAST_YEAR;
        return;
    }
    int month, mday;
    calendar_date_from_day(lo, first_year, &month, &mday);
    calendar_date_from_day(hi, last_year, &month, &mday);
    *first_year -= 1;
    *last_year += 2;
}

/* Sorts a day list and drops repeats (a day named twice is one day). */
static void day_list_normalize(int64_t *days, size_t *count)
{
    if (*count == 0)
        return;
    qsort(days, *count, sizeof(*days), compare_days);
    size_t kept = 1;
    for (size_t i = 1; i < *count; i++)
        if (days[i] != days[kept - 1])
            days[kept++] = days[i];
    *count = kept;
}

static int finish(calendar_t *self, char *err, size_t err_len, const char *origin)
{
    day_list_normalize(self->holidays, &self->holiday_count);
    day_list_normalize(self->workdays, &self->workday_count);
    for (size_t i = 0; i < self->workday_count; i++) {
        if (day_list_has(self->holidays, self->holiday_count, self->workdays[i])) {
            int year, month, mday;
            calendar_date_from_day(self->workdays[i], &year, &month, &mday);
            if (err_len)
                snprintf(err, err_len, "%s: %04d-%02d-%02d is both a holiday and a working day",
                         origin, year, month, mday);
            return -EINVAL;
        }
    }
    int first_year, last_year;
    year_range(self, &first_year, &last_year);
    int rc = compute_offsets(self, first_year, last_year);
    if (rc < 0 && err_len)
        snprintf(err, err_len, "%s: cannot compute the offsets of zone %s: %s", origin, self->zone,
                 strerror(-rc));
    return rc;
}

/* Reads `text`, or the file at `origin` when text is NULL. */
static int calendar_parse(const char *origin, const char *text, calendar_t **ret, char *err,
                          size_t err_len)
{
    calendar_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    snprintf(self->zone, sizeof(self->zone), "%s", CALENDAR_DEFAULT_TIME_ZONE);
    self->weekend[0] = self->weekend[6] = true;
    parse_t parse = {.calendar = self, .err = err, .err_len = err_len};
    int rc = ini_parse(origin, text, &calendar_handler, &parse, err, err_len);
    if (rc == 0)
        rc = finish(self, err, err_len, origin);
    if (rc < 0) {
        calendar_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

int calendar_parse_string(const char *text, calendar_t **ret, char *err, size_t err_len)
{
    return text ? calendar_parse("(string)", text, ret, err, err_len) : -EINVAL;
}

int calendar_load(const char *path, calendar_t **ret, char *err, size_t err_len)
{
    return path ? calendar_parse(path, NULL, ret, err, err_len) : -EINVAL;
}

void calendar_destroy(calendar_t **self)
{
    calendar_t *calendar = *self;
    if (!calendar)
        return;
    free(calendar->holidays);
    free(calendar->workdays);
    free(calendar->offsets);
    free(calendar);
    *self = NULL;
}

const char *calendar_time_zone(const calendar_t *self)
{
    return self->zone;
}

size_t calendar_holiday_count(const calendar_t *self)
{
    return self->holiday_count;
}

size_t calendar_workday_count(const calendar_t *self)
{
    return self->workday_count;
}

/* ------------------------------------------------------------ arithmetic */

static int64_t offset_seconds(const calendar_t *self, int64_t day)
{
    int64_t i = day - self->first_day;
    if (i < 0)
        i = 0;
    if (i >= (int64_t)self->offset_count)
        i = (int64_t)self->offset_count - 1;
    return self->offsets[i];
}

int64_t calendar_day_start(const calendar_t *self, int64_t day)
{
    return (day * DAY_SECONDS - offset_seconds(self, day)) * 1000;
}

int64_t calendar_day_of(const calendar_t *self, int64_t unix_ms)
{
    int64_t guess = floor_div(unix_ms, CALENDAR_DAY_MS);
    int64_t day = floor_div(unix_ms + offset_seconds(self, guess) * 1000, CALENDAR_DAY_MS);
    while (calendar_day_start(self, day + 1) <= unix_ms)
        day++;
    while (calendar_day_start(self, day) > unix_ms)
        day--;
    return day;
}

bool calendar_is_working_day(const calendar_t *self, int64_t day)
{
    if (day_list_has(self->workdays, self->workday_count, day))
        return true;
    if (day_list_has(self->holidays, self->holiday_count, day))
        return false;
    return !self->weekend[calendar_weekday(day)];
}

int64_t calendar_add_working_days(const calendar_t *self, int64_t from_ms, uint32_t days)
{
    if (days == 0)
        return from_ms;
    int64_t day = calendar_day_of(self, from_ms - 1);
    uint32_t counted = 0;
    for (int walked = 0; counted < days && walked < MAX_DAYS_WALKED; walked++) {
        day++;
        if (calendar_is_working_day(self, day))
            counted++;
    }
    return calendar_day_start(self, day + 1);
}

int64_t calendar_working_ms_between(const calendar_t *self, int64_t from_ms, int64_t to_ms)
{
    if (to_ms <= from_ms)
        return 0;
    int64_t total = 0;
    int64_t day = calendar_day_of(self, from_ms);
    for (int walked = 0; walked < MAX_DAYS_WALKED; walked++, day++) {
        int64_t start = calendar_day_start(self, day), end = calendar_day_start(self, day + 1);
        int64_t lo = from_ms > start ? from_ms : start;
        int64_t hi = to_ms < end ? to_ms : end;
        if (hi > lo && calendar_is_working_day(self, day))
            total += hi - lo;
        if (end >= to_ms)
            break;
    }
    return total;
}

int64_t calendar_add_working_ms(const calendar_t *self, int64_t from_ms, int64_t working_ms)
{
    if (working_ms <= 0)
        return from_ms;
    int64_t day = calendar_day_of(self, from_ms);
    for (int walked = 0; walked < MAX_DAYS_WALKED; walked++, day++) {
        if (!calendar_is_working_day(self, day))
            continue;
        int64_t start = calendar_day_start(self, day), end = calendar_day_start(self, day + 1);
        int64_t lo = from_ms > start ? from_ms : start;
        if (working_ms <= end - lo)
            return lo + working_ms;
        working_ms -= end - lo;
    }
    return from_ms + working_ms;
}

void calendar_format(const calendar_t *self, int64_t unix_ms, char *buf, size_t len)
{
    int64_t day = calendar_day_of(self, unix_ms);
    int year, month, mday;
    calendar_date_from_day(day, &year, &month, &mday);
    int64_t minutes = (unix_ms - calendar_day_start(self, day)) / 60000;
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d", year, month, mday, (int)(minutes / 60),
             (int)(minutes % 60));
}

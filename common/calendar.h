/* calendar: the business calendar that turns working days into instants.
 *
 * A calendar knows, for one time zone, which local days are working days:
 * every day except the weekend days and the public holidays, plus the
 * make-up working days (调休上班) that fall on a weekend. It is read from an
 * INI file (the escalation worker's <data_dir>/calendar.ini):
 *
 *   [calendar]
 *   time_zone = Asia/Shanghai      ; IANA zone; default Asia/Shanghai
 *   weekend = sat, sun             ; default sat, sun; "none" = no weekend
 *   [holidays]
 *   2026-10-01..2026-10-07 = National Day   ; one day, or an inclusive range
 *   [workdays]
 *   2026-10-10 = National Day make-up working day
 *
 * A date may not be both a holiday and a make-up working day, and at least
 * one day of the week must be a working day. Values (the names) are free
 * text and may be empty. The syntax is common/ini.h's: ';' starts a comment
 * at the start of a line or after whitespace, '#' at the start of a line;
 * every key starts at the beginning of its line (no value goes on over
 * indented lines).
 *
 * The model (what a "working day" means here):
 *  - a working day counts as a whole local day, 00:00 to 24:00: the
 *    hotline and its units are staffed every hour of a working day;
 *  - "N working days from an instant" ends at 24:00 of the Nth working day
 *    after the local day of the instant: the day it starts is not counted
 *    (the usual rule for periods in Chinese administrative practice). An
 *    instant at exactly 00:00 belongs, for this purpose, to the day that
 *    ends there, so a deadline plus N working days counts from the day
 *    after the deadline's day;
 *  - working time between two instants is the part of that span that lies
 *    in working days (reminder points of working-day limits use it, so a
 *    reminder never falls on a holiday).
 *
 * Time zone: the UTC offset of each local midnight is computed once at load
 * (with the C library, TZ pointed at the zone for the duration, as ids.h
 * describes) for the years the file names, one year before and two after;
 * outside them the nearest computed offset is used. Asia/Shanghai has had
 * one offset since 1991, so nothing is lost there.
 *
 * Days are numbered like Unix days: local day 0 is 1970-01-01. A loaded
 * calendar is read-only and owns all its memory. Functions return 0 or a
 * negative errno; load errors say "path:line: what is wrong" in err.
 */
#ifndef DISPATCH_CALENDAR_H
#define DISPATCH_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CALENDAR_DEFAULT_TIME_ZONE "Asia/Shanghai"
#define CALENDAR_DAY_MS (24LL * 3600 * 1000)

typedef struct calendar calendar_t;

/* -ENOENT (no file), -EINVAL (bad content; err says where), -ENOMEM. */
int calendar_load(const char *path, calendar_t **ret, char *err, size_t err_len);
/* The same from a NUL-terminated text; messages name the origin "(string)". */
int calendar_parse_string(const char *text, calendar_t **ret, char *err, size_t err_len);
void calendar_destroy(calendar_t **self);

const char *calendar_time_zone(const calendar_t *self);
/* Counts of dated entries (holiday days, make-up working days). */
size_t calendar_holiday_count(const calendar_t *self);
size_t calendar_workday_count(const calendar_t *self);

/* Local day number <-> civil date. */
int64_t calendar_day_from_date(int year, int month, int day);
void calendar_date_from_day(int64_t day, int *year, int *month, int *mday);
/* 0 = Sunday .. 6 = Saturday. */
int calendar_weekday(int64_t day);

/* The local day an instant falls in, and the instant that local day starts. */
int64_t calendar_day_of(const calendar_t *self, int64_t unix_ms);
int64_t calendar_day_start(const calendar_t *self, int64_t day);
bool calendar_is_working_day(const calendar_t *self, int64_t day);

/* 24:00 of the `days`-th working day after the local day of `from_ms` (the
 * day that holds from_ms - 1). days == 0 returns from_ms. */
int64_t calendar_add_working_days(const calendar_t *self, int64_t from_ms, uint32_t days);
/* Milliseconds of [from_ms, to_ms) that lie in working days (0 when
 * to_ms <= from_ms). */
int64_t calendar_working_ms_between(const calendar_t *self, int64_t from_ms, int64_t to_ms);
/* The instant at which `working_ms` of working time have passed since
 * from_ms (from_ms itself when working_ms <= 0). */
int64_t calendar_add_working_ms(const calendar_t *self, int64_t from_ms, int64_t working_ms);

/* "YYYY-MM-DD HH:MM" in the calendar's zone; buf of at least 24 bytes. */
void calendar_format(const calendar_t *self, int64_t unix_ms, char *buf, size_t len);

#endif

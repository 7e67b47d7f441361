/* ids: ticket ids a person can read out on the phone.
 *
 *   CY-20261125-000123
 *   |  |        counter: decimal, zero-padded to 6 digits, more when needed
 *   |  local date of registration in the city's time zone (YYYYMMDD)
 *   prefix: 1..8 of [A-Z0-9], starting with a letter (district or intake
 *           instance), so it never contains the '-' separator
 *
 * Unique: the owner of a prefix hands out each counter value once (the
 * counter is stored with the ticket, in the same transaction). Stable: the
 * id is formatted once at registration and stored; the date part is the
 * registration day and is never recomputed. Canonical: every id has exactly
 * one spelling (no extra leading zeros), so string equality is id equality.
 *
 * Time zones: the date is the one in force in `tz` at `unix_ms`. The C
 * library offers no localtime for a zone other than the process's, so
 * ids_format_ticket() points TZ at `tz` for the duration of the call
 * (setenv, tzset, localtime_r, then the old TZ back and tzset again). That
 * is invisible to a single-threaded process, which every Dispatch worker
 * is, but not safe while another thread reads the environment or the time
 * zone. When TZ already names `tz` (a worker sets TZ to the city's zone at
 * start) or `tz` is "UTC", nothing is changed at all. glibc silently falls
 * back to UTC for an unknown zone, so the zone file is checked first.
 */
#ifndef DISPATCH_IDS_H
#define DISPATCH_IDS_H

#include <stddef.h>
#include <stdint.h>

#define IDS_PREFIX_MAX 8
/* Room for the longest id (20-digit counter) and its NUL. */
#define IDS_TICKET_SIZE 40

typedef struct ids_ticket {
    char prefix[IDS_PREFIX_MAX + 1];
    int year, month, day;
    uint64_t counter;
} ids_ticket_t;

/* Writes the id into buf (len bytes, IDS_TICKET_SIZE is always enough).
 * Returns 0; -EINVAL for a bad prefix or time zone name; -ENOENT when the
 * zone is not installed; -ERANGE when the year is not 1..9999; -ENOSPC when
 * buf is too small (buf is then ""); -ENOMEM. */
int ids_format_ticket(char *buf, size_t len, const char *prefix, int64_t unix_ms, const char *tz,
                      uint64_t counter);

/* Checks that `id` is a canonical ticket id with a real calendar date, and
 * fills *ret when it is not NULL. Returns 0 or -EINVAL. */
int ids_parse_ticket(const char *id, ids_ticket_t *ret);

/* 0 when `tz` is an installed IANA zone (looked up under $TZDIR, else
 * /usr/share/zoneinfo), -EINVAL for a malformed name, -ENOENT when it is
 * not installed. For a worker to refuse a bad topology at start. */
int ids_check_timezone(const char *tz);

#endif

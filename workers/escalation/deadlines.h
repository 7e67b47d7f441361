/* deadlines: the deadline table, keyed by ticket kind x urgency.
 *
 * Data, not code: the escalation worker reads <data_dir>/deadlines.ini
 * (deploy/data/deadlines.ini holds the defaults and says where each comes
 * from). The file is INI (syntax: common/ini.h; every key starts at the
 * beginning of its line, no value goes on over indented lines):
 *
 *   [defaults]                    every key, for any kind and urgency
 *   [*.urgent]                    any kind, urgency urgent (or normal)
 *   [complaint.normal]            one kind (consult, help, complaint,
 *                                 report, suggestion) and urgency
 *
 * A key is looked up in [<kind>.<urgency>], then [*.<urgency>], then
 * [defaults]; every key must resolve for every kind and urgency. Keys:
 *
 *   sign_for = 2h                 sign-for limit, from the dispatch
 *   handle = 5wd                  handling limit, from the first dispatch
 *   remind_at = 50%, 80%          reminders to the unit at these points of
 *                                 a limit ("none" = no early reminder)
 *   sign_for_ladder = 2h, 1wd, 2wd   after the sign-for deadline: district
 *                                 supervision, city supervision, leader
 *                                 sign-off queue ("off" skips a level)
 *   handle_ladder = 1wd, 3wd, 5wd    the same after the handling deadline
 *   pause = citizen               none | citizen | triage (escalation_state.proto)
 *   max_extensions = 3            extensions a supervisor may grant; 0 = any
 *
 * Lengths: <n>m (minutes), <n>h (hours), <n>d (days of 24 h), all wall
 * clock; <n>wd (working days of the business calendar, calendar.h). A
 * length is at most 366 days (or working days).
 *
 * The loaded table is read-only and owns its rules; a rule returned by
 * deadlines_rule() lives as long as the table.
 */
#ifndef DISPATCH_ESCALATION_DEADLINES_H
#define DISPATCH_ESCALATION_DEADLINES_H

#include <stddef.h>

#include "dispatch.pb-c.h"
#include "escalation_state.pb-c.h"

#define DEADLINES_LADDER_LEVELS 3 /* district, city, leader sign-off */
#define DEADLINES_MAX_REMINDERS 8

typedef struct deadlines deadlines_t;

/* -ENOENT (no file), -EINVAL (err says "path:line: what"), -ENOMEM. */
int deadlines_load(const char *path, deadlines_t **ret, char *err, size_t err_len);
int deadlines_parse_string(const char *text, deadlines_t **ret, char *err, size_t err_len);
void deadlines_destroy(deadlines_t **self);

/* The rule for a ticket; an UNSPECIFIED (or unknown) kind takes the
 * [*.<urgency>] and [defaults] values, an UNSPECIFIED urgency counts as
 * normal. Never NULL. */
const Dispatch__Escalation__Rule *deadlines_rule(const deadlines_t *self, Dispatch__Kind kind,
                                                 Dispatch__Urgency urgency);

/* "30m", "2h", "5wd", "off" for a span. */
void deadlines_span_format(const Dispatch__Escalation__Span *span, char *buf, size_t len);

#endif

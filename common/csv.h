/* csv: the city's data files (units.csv, rules.csv, categories.csv, ...),
 * one record at a time; read by the router's registry and by the unit
 * simulator and the call generator.
 *
 * Format: RFC 4180 fields separated by ',', optionally in double quotes
 * ("" inside quotes is one quote; a quoted field may not span lines). Lines
 * end in LF or CRLF. A UTF-8 byte order mark at the very start is skipped.
 * Empty lines and lines whose first character is '#' (comments, e.g. the
 * published rule a default follows) are skipped.
 *
 * csv_next() returns the fields of the next record, valid until the next
 * call: pointers into the reader's own line buffer. Lines longer than
 * CSV_LINE_MAX and records with more than CSV_FIELDS_MAX fields are errors,
 * never truncated.
 */
#ifndef DISPATCH_CSV_H
#define DISPATCH_CSV_H

#include <stddef.h>
#include <stdio.h>

#define CSV_LINE_MAX 8192
#define CSV_FIELDS_MAX 16

typedef struct csv csv_t;

/* Opens path; -errno when it cannot be opened. */
int csv_open(const char *path, csv_t **ret);
void csv_destroy(csv_t **self);

/* 1 = a record in fields[0..*count), 0 = end of file, or a negative code
 * (-EINVAL malformed quoting, -E2BIG line or field count over the limit,
 * -errno of the read); err says what and where. */
int csv_next(csv_t *self, const char **fields, size_t *count, char *err, size_t err_len);

/* Line number of the record csv_next() returned last (1-based). */
unsigned long csv_line(const csv_t *self);

#endif

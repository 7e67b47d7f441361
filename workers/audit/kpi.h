/* kpi: the audit's projections, written in the transaction that appends
 * the event to the log (docs/kpi.md defines every figure).
 *
 *   audit.history  ticket id, NUL, seq           -> (empty)     a ticket's records
 *   audit.tickets  ticket id                     -> TicketFacts what counts of a ticket
 *   audit.kpi      dim, period, key, NUL, entity -> KpiCounts   counts per period
 *
 * Events reach the audit over several links, so a ticket's events may
 * arrive out of order (a router's dispatch before intake's registration).
 * The counts therefore are a function of a ticket's facts, not of arrival
 * order: on every event that adds a fact, the ticket's contributions are
 * computed before and after (facts sorted by event time, then seq) and only
 * the difference is applied. A late registration moves what was counted
 * under category "_" to the ticket's category; a late sign-for deadline
 * turns a sign-for late or in time.
 *
 * Invariants (of every committed state):
 *  - audit.history holds (ticket, seq) for every logged event with a
 *    ticket id of 1..64 bytes, and nothing else;
 *  - every count in audit.kpi equals the sum, over all tickets in
 *    audit.tickets, of the contributions of their facts; no count is
 *    negative; a record whose counts are all zero is deleted.
 */
#ifndef DISPATCH_AUDIT_KPI_H
#define DISPATCH_AUDIT_KPI_H

#include <lmdb.h>
#include <stdint.h>

#include "arena.h"
#include "dispatch.pb-c.h"
#include "period.h"
#include "store.h"

#define KPI_KEY_MAX 64

typedef struct kpi kpi_t;

/* Limits used when no event gave the deadline (ours: docs/kpi.md). */
typedef struct kpi_options {
    int64_t sign_for_ms;        /* normal tickets: 2 h */
    int64_t sign_for_urgent_ms; /* urgent: 30 min */
    int64_t handle_ms;          /* normal: 15 days after registration */
    int64_t handle_urgent_ms;   /* urgent: 24 h after registration */
} kpi_options_t;

void kpi_options_init(kpi_options_t *options);

/* options NULL = defaults; a limit <= 0 takes its default. */
int kpi_new(store_t *store, const kpi_options_t *options, kpi_t **ret);
void kpi_destroy(kpi_t **self);

/* Applies event, logged as seq at recorded_at, to the projections in txn. */
int kpi_apply(kpi_t *self, MDB_txn *txn, const Dispatch__Event *event, uint64_t seq,
              int64_t recorded_at);

/* The seq of the ticket's first record after after_seq: 0 and *seq, or
 * -ENOENT when there is none. */
int kpi_history_next(kpi_t *self, MDB_txn *txn, const char *ticket_id, uint64_t after_seq,
                     uint64_t *seq);

/* A page of rows of one period into reply (memory from arena). key: one
 * entity or "" for all; after_key: rows after it ("" = from the first);
 * limit: 1..1000. */
int kpi_rows(kpi_t *self, MDB_txn *txn, Dispatch__KpiDimension by, Dispatch__KpiPeriod period,
             const period_date_t *date, const char *key, const char *after_key, uint32_t limit,
             arena_t *arena, Dispatch__KpiReply *reply);

/* The special report of the period holding date: the top categories. */
int kpi_report(kpi_t *self, MDB_txn *txn, Dispatch__KpiPeriod period, const period_date_t *date,
               uint32_t top, arena_t *arena, Dispatch__SpecialReport *report);

/* Rates of counts (0 when a denominator is 0). */
void kpi_rates(const Dispatch__KpiCounts *counts, Dispatch__KpiRates *rates);

#endif

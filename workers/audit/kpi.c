/* kpi: see kpi.h for the databases, the approach and the invariants.
 *
 * A count record's key: dimension (1 byte, KpiDimension), period (1 byte,
 * KpiPeriod), the period key ("2026-11-25", "2026-11", "2026-Q4"), NUL, the
 * entity (unit id, district id, category; "_" for none and for the city).
 * Rows of one period are thus one key range, ascending by entity.
 */
#include "kpi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_state.pb-c.h"
#include "record.h"

#define MINUTE_MS (60LL * 1000)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)
#define ROW_KEY_MAX (2 + PERIOD_KEY_SIZE + 1 + KPI_KEY_MAX)
#define HISTORY_KEY_MAX (KPI_KEY_MAX + 1 + 8)
/* Facts kept per ticket; past that, further facts are not counted. */
#define FACTS_MAX 1024
#define NONE "_"

typedef Dispatch__Audit__TicketFacts facts_t;
typedef Dispatch__Audit__Fact fact_t;

/* KpiCounts field numbers. */
enum {
    COUNT_REGISTERED = 1,
    COUNT_DISPATCHED,
    COUNT_SIGNED_FOR,
    COUNT_SIGNED_IN_TIME,
    COUNT_RETURNED,
    COUNT_RESOLVED,
    COUNT_RESOLVED_ON_TIME,
    COUNT_RESOLVED_SOLVED,
    COUNT_CALLED_BACK,
    COUNT_SATISFIED,
    COUNT_UNREACHABLE,
    COUNT_REOPENED,
    COUNT_CLOSED,
    COUNT_OVERDUE,
};

struct kpi {
    kpi_options_t options;
    MDB_dbi history, tickets, counts;
};

/* One +1 a ticket gives to a count: in the period of `at`, for the ticket's
 * district and category, the city, and `unit` when there is one. */
typedef struct contribution {
    int64_t at;
    const char *unit;
    int count;
} contribution_t;

typedef struct contributions {
    contribution_t *items;
    size_t len, capacity;
} contributions_t;

/* A change of one count of one record. */
typedef struct delta {
    unsigned char key[ROW_KEY_MAX];
    size_t key_len;
    int count;
    int64_t change;
} delta_t;

typedef struct deltas {
    delta_t *items;
    size_t len, capacity;
} deltas_t;

void kpi_options_init(kpi_options_t *options)
{
    *options = (kpi_options_t){
        .sign_for_ms = 2 * HOUR_MS,
        .sign_for_urgent_ms = 30 * MINUTE_MS,
        .handle_ms = 15 * DAY_MS,
        .handle_urgent_ms = DAY_MS,
    };
}

int kpi_new(store_t *store, const kpi_options_t *options, kpi_t **ret)
{
    kpi_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    kpi_options_t defaults;
    kpi_options_init(&defaults);
    self->options = options ? *options : defaults;
    if (self->options.sign_for_ms <= 0)
        self->options.sign_for_ms = defaults.sign_for_ms;
    if (self->options.sign_for_urgent_ms <= 0)
        self->options.sign_for_urgent_ms = defaults.sign_for_urgent_ms;
    if (self->options.handle_ms <= 0)
        self->options.handle_ms = defaults.handle_ms;
    if (self->options.handle_urgent_ms <= 0)
        self->options.handle_urgent_ms = defaults.handle_urgent_ms;
    const store_db_t dbs[] = {
        {"audit.history", &self->history, 0},
        {"audit.tickets", &self->tickets, 0},
        {"audit.kpi", &self->counts, 0},
    };
    int rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc < 0) {
        kpi_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void kpi_destroy(kpi_t **self)
{
    free(*self);
    *self = NULL;
}

static bool id_usable(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    return len > 0 && len <= KPI_KEY_MAX;
}

/* ---- history --------------------------------------------------------------- */

static size_t history_key(const char *ticket_id, uint64_t seq, unsigned char key[HISTORY_KEY_MAX])
{
    size_t len = strlen(ticket_id);
    memcpy(key, ticket_id, len);
    key[len] = '\0';
    store_u64_encode(seq, key + len + 1);
    return len + 1 + 8;
}

int kpi_history_next(kpi_t *self, MDB_txn *txn, const char *ticket_id, uint64_t after_seq,
                     uint64_t *seq)
{
    if (!id_usable(ticket_id) || after_seq == UINT64_MAX)
        return -ENOENT;
    unsigned char key_bytes[HISTORY_KEY_MAX];
    size_t id_len = strlen(ticket_id);
    MDB_val key = {history_key(ticket_id, after_seq + 1, key_bytes), key_bytes}, value;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, self->history, &cursor);
    if (rc != 0)
        return store_rc(rc);
    rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    bool found =
        rc == 0 && key.mv_size == id_len + 1 + 8 && memcmp(key.mv_data, ticket_id, id_len + 1) == 0;
    if (found)
        *seq = store_u64_decode((const unsigned char *)key.mv_data + id_len + 1);
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_rc(rc);
    return found ? 0 : -ENOENT;
}

/* ---- facts ----------------------------------------------------------------- */

static facts_t *facts_load(kpi_t *self, MDB_txn *txn, const char *ticket_id, int *rc)
{
    ProtobufCMessage *facts = NULL;
    *rc = record_get(txn, self->tickets, ticket_id, strlen(ticket_id),
                     &dispatch__audit__ticket_facts__descriptor, &facts);
    /* A record that no longer decodes starts over rather than stopping the
     * log: the log is what must never stop. */
    if (*rc == -ENOENT || *rc == -EPROTO)
        *rc = 0;
    return (facts_t *)facts;
}

static int facts_store(kpi_t *self, MDB_txn *txn, const char *ticket_id, const facts_t *facts)
{
    return record_put(txn, self->tickets, ticket_id, strlen(ticket_id), &facts->base, 0);
}

/* Facts in time order (then seq): an array of pointers the caller frees. */
static const fact_t **facts_sorted(const facts_t *facts)
{
    const fact_t **sorted = malloc((facts->n_facts ? facts->n_facts : 1) * sizeof(*sorted));
    if (!sorted)
        return NULL;
    /* Insertion sort: a ticket has few facts and they mostly arrive in
     * order already. */
    for (size_t i = 0; i < facts->n_facts; i++) {
        const fact_t *fact = facts->facts[i];
        size_t j = i;
        while (j > 0 && (sorted[j - 1]->at > fact->at ||
                         (sorted[j - 1]->at == fact->at && sorted[j - 1]->seq > fact->seq))) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = fact;
    }
    return sorted;
}

/* ---- contributions ------------------------------------------------------- */

static int contribute(contributions_t *list, int64_t at, const char *unit, int count)
{
    if (list->len == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 32;
        contribution_t *items = realloc(list->items, capacity * sizeof(*items));
        if (!items)
            return -ENOMEM;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->len++] = (contribution_t){at, unit ? unit : "", count};
    return 0;
}

static bool urgent(const facts_t *facts)
{
    return facts->urgency == DISPATCH__URGENCY__URGENCY_URGENT;
}

/* Index of the next fact of kind after i in sorted, or n. */
static size_t next_of_kind(const fact_t **sorted, size_t n, size_t i,
                           Dispatch__Audit__FactKind kind)
{
    for (size_t k = i + 1; k < n; k++)
        if (sorted[k]->kind == kind)
            return k;
    return n;
}

/* The unit of the last resolution before index i ("" if none). */
static const char *resolver_before(const fact_t **sorted, size_t i)
{
    for (size_t k = i; k-- > 0;)
        if (sorted[k]->kind == DISPATCH__AUDIT__FACT_KIND__FACT_KIND_RESOLVE)
            return sorted[k]->unit;
    return "";
}

static int contribute_dispatch(const kpi_t *self, const facts_t *facts, const fact_t **sorted,
                               size_t n, size_t i, contributions_t *out)
{
    const fact_t *dispatch = sorted[i];
    int rc = contribute(out, dispatch->at, dispatch->unit, COUNT_DISPATCHED);
    size_t end = next_of_kind(sorted, n, i, DISPATCH__AUDIT__FACT_KIND__FACT_KIND_DISPATCH);
    const fact_t *accept = NULL;
    int64_t deadline = dispatch->deadline;
    for (size_t k = i + 1; k < end; k++) {
        if (!accept && sorted[k]->kind == DISPATCH__AUDIT__FACT_KIND__FACT_KIND_ACCEPT &&
            strcmp(sorted[k]->unit, dispatch->unit) == 0)
            accept = sorted[k];
        if (!dispatch->deadline &&
            sorted[k]->kind == DISPATCH__AUDIT__FACT_KIND__FACT_KIND_SIGN_FOR_DEADLINE)
            deadline = sorted[k]->deadline;
    }
    if (!deadline)
        deadline = dispatch->at +
                   (urgent(facts) ? self->options.sign_for_urgent_ms : self->options.sign_for_ms);
    if (rc == 0 && accept)
        rc = contribute(out, dispatch->at, dispatch->unit, COUNT_SIGNED_FOR);
    if (rc == 0 && accept && accept->at <= deadline)
        rc = contribute(out, dispatch->at, dispatch->unit, COUNT_SIGNED_IN_TIME);
    return rc;
}

static int contribute_resolve(const kpi_t *self, const facts_t *facts, const fact_t **sorted,
                              size_t n, size_t i, contributions_t *out)
{
    const fact_t *resolve = sorted[i];
    int rc = contribute(out, resolve->at, resolve->unit, COUNT_RESOLVED);
    int64_t deadline = 0, first_dispatch = 0;
    for (size_t k = 0; k < i; k++) {
        if (sorted[k]->kind == DISPATCH__AUDIT__FACT_KIND__FACT_KIND_HANDLE_DEADLINE)
            deadline = sorted[k]->deadline;
        if (!first_dispatch && sorted[k]->kind == DISPATCH__AUDIT__FACT_KIND__FACT_KIND_DISPATCH)
            first_dispatch = sorted[k]->at;
    }
    if (!deadline) {
        int64_t base = facts->registered ? facts->registered_at
                       : first_dispatch  ? first_dispatch
                                         : resolve->at;
        deadline =
            base + (urgent(facts) ? self->options.handle_urgent_ms : self->options.handle_ms);
    }
    if (rc == 0 && resolve->at <= deadline)
        rc = contribute(out, resolve->at, resolve->unit, COUNT_RESOLVED_ON_TIME);
    if (rc == 0 && resolve->value == DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED)
        rc = contribute(out, resolve->at, resolve->unit, COUNT_RESOLVED_SOLVED);
    size_t next = next_of_kind(sorted, n, i, DISPATCH__AUDIT__FACT_KIND__FACT_KIND_RESOLVE);
    bool reopened = false;
    for (size_t k = i + 1; k < next; k++)
        reopened |= sorted[k]->kind == DISPATCH__AUDIT__FACT_KIND__FACT_KIND_REOPEN;
    if (rc == 0 && reopened)
        rc = contribute(out, resolve->at, resolve->unit, COUNT_REOPENED);
    return rc;
}

static int contribute_callback(const fact_t **sorted, size_t i, contributions_t *out)
{
    const fact_t *callback = sorted[i];
    const char *unit = resolver_before(sorted, i);
    if (callback->flag)
        return contribute(out, callback->at, unit, COUNT_UNREACHABLE);
    int rc = contribute(out, callback->at, unit, COUNT_CALLED_BACK);
    if (rc == 0 && (callback->value == DISPATCH__SATISFACTION__SATISFACTION_SATISFIED ||
                    callback->value == DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED))
        rc = contribute(out, callback->at, unit, COUNT_SATISFIED);
    return rc;
}

/* Everything the ticket counts for, from its facts. Units point into facts. */
static int ticket_contributions(const kpi_t *self, const facts_t *facts, contributions_t *out)
{
    out->len = 0;
    if (!facts)
        return 0;
    int rc = 0;
    if (facts->registered)
        rc = contribute(out, facts->registered_at, "", COUNT_REGISTERED);
    const fact_t **sorted = facts_sorted(facts);
    if (!sorted)
        return -ENOMEM;
    size_t n = facts->n_facts;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const fact_t *fact = sorted[i];
        switch (fact->kind) {
        case DISPATCH__AUDIT__FACT_KIND__FACT_KIND_DISPATCH:
            rc = contribute_dispatch(self, facts, sorted, n, i, out);
            break;
        case DISPATCH__AUDIT__FACT_KIND__FACT_KIND_RETURN:
            rc = contribute(out, fact->at, fact->unit, COUNT_RETURNED);
            break;
        case DISPATCH__AUDIT__FACT_KIND__FACT_KIND_RESOLVE:
            /* No unit: a consult answered at intake, not a resolution by a
             * unit; counting it would sink the resolution rate of its
             * district and city (docs/kpi.md). */
            if (*fact->unit)
                rc = contribute_resolve(self, facts, sorted, n, i, out);
            break;
        case DISPATCH__AUDIT__FACT_KIND__FACT_KIND_CALLBACK:
            rc = contribute_callback(sorted, i, out);
            break;
        case DISPATCH__AUDIT__FACT_KIND__FACT_KIND_CLOSE:
            rc = contribute(out, fact->at, resolver_before(sorted, i), COUNT_CLOSED);
            break;
        case DISPATCH__AUDIT__FACT_KIND__FACT_KIND_OVERDUE:
            rc = contribute(out, fact->at, fact->unit, COUNT_OVERDUE);
            break;
        default:
            break; /* accepts, reopens and deadlines count through others */
        }
    }
    free(sorted);
    return rc;
}

/* ---- deltas ---------------------------------------------------------------- */

static size_t row_key(Dispatch__KpiDimension by, Dispatch__KpiPeriod period, const char *period_key,
                      const char *entity, unsigned char key[ROW_KEY_MAX])
{
    size_t period_len = strlen(period_key), entity_len = strlen(entity);
    key[0] = (unsigned char)by;
    key[1] = (unsigned char)period;
    memcpy(key + 2, period_key, period_len);
    key[2 + period_len] = '\0';
    memcpy(key + 3 + period_len, entity, entity_len);
    return 3 + period_len + entity_len;
}

static int delta_add(deltas_t *list, Dispatch__KpiDimension by, Dispatch__KpiPeriod period,
                     const char *period_key, const char *entity, int count, int64_t change)
{
    if (!*entity)
        entity = NONE;
    if (strlen(entity) > KPI_KEY_MAX)
        return 0; /* not an id the contract allows: not counted */
    if (list->len == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 128;
        delta_t *items = realloc(list->items, capacity * sizeof(*items));
        if (!items)
            return -ENOMEM;
        list->items = items;
        list->capacity = capacity;
    }
    delta_t *delta = &list->items[list->len++];
    delta->key_len = row_key(by, period, period_key, entity, delta->key);
    delta->count = count;
    delta->change = change;
    return 0;
}

static const Dispatch__KpiPeriod periods[] = {
    DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY,
    DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH,
    DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER,
};

static int expand(const facts_t *facts, const contributions_t *list, int64_t change, deltas_t *out)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < list->len; i++) {
        const contribution_t *c = &list->items[i];
        period_date_t date;
        if (period_date_of(c->at, &date) < 0)
            continue; /* a time no calendar holds is not counted */
        for (size_t p = 0; rc == 0 && p < sizeof(periods) / sizeof(periods[0]); p++) {
            char period_key_text[PERIOD_KEY_SIZE];
            period_key(periods[p], &date, period_key_text);
            rc = delta_add(out, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY, periods[p],
                           period_key_text, NONE, c->count, change);
            if (rc == 0)
                rc = delta_add(out, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_DISTRICT, periods[p],
                               period_key_text, facts->district, c->count, change);
            if (rc == 0)
                rc = delta_add(out, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CATEGORY, periods[p],
                               period_key_text, facts->category, c->count, change);
            if (rc == 0 && *c->unit)
                rc = delta_add(out, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT, periods[p],
                               period_key_text, c->unit, c->count, change);
        }
    }
    return rc;
}

static int delta_compare(const void *a, const void *b)
{
    const delta_t *x = a, *y = b;
    size_t len = x->key_len < y->key_len ? x->key_len : y->key_len;
    int order = memcmp(x->key, y->key, len);
    if (order == 0 && x->key_len != y->key_len)
        order = x->key_len < y->key_len ? -1 : 1;
    if (order == 0)
        order = x->count - y->count;
    return order;
}

static uint64_t *count_slot(Dispatch__KpiCounts *counts, int count)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field(&dispatch__kpi_counts__descriptor, (unsigned)count);
    return (uint64_t *)((char *)counts + field->offset);
}

static bool counts_zero(const Dispatch__KpiCounts *counts)
{
    for (unsigned i = 0; i < dispatch__kpi_counts__descriptor.n_fields; i++)
        if (*(const uint64_t *)((const char *)counts +
                                dispatch__kpi_counts__descriptor.fields[i].offset))
            return false;
    return true;
}

/* Applies deltas[from, to) (one key, sorted by count) to its record. */
static int apply_record(kpi_t *self, MDB_txn *txn, const delta_t *deltas, size_t from, size_t to)
{
    bool changed = false;
    for (size_t i = from; i < to; i++)
        changed |= deltas[i].change != 0;
    if (!changed)
        return 0;
    MDB_val key = {deltas[from].key_len, (void *)deltas[from].key}, value;
    Dispatch__KpiCounts counts = DISPATCH__KPI_COUNTS__INIT;
    int rc = mdb_get(txn, self->counts, &key, &value);
    if (rc == 0) {
        Dispatch__KpiCounts *stored =
            dispatch__kpi_counts__unpack(NULL, value.mv_size, value.mv_data);
        if (stored) {
            counts = *stored;
            counts.base.n_unknown_fields = 0;
            counts.base.unknown_fields = NULL;
            dispatch__kpi_counts__free_unpacked(stored, NULL);
        }
    } else if (rc != MDB_NOTFOUND) {
        return store_rc(rc);
    }
    for (size_t i = from; i < to; i++) {
        uint64_t *slot = count_slot(&counts, deltas[i].count);
        int64_t value_now = (int64_t)*slot + deltas[i].change;
        *slot = value_now > 0 ? (uint64_t)value_now : 0;
    }
    if (counts_zero(&counts)) {
        rc = mdb_del(txn, self->counts, &key, NULL);
        return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
    }
    unsigned char buf[256];
    value = (MDB_val){dispatch__kpi_counts__pack(&counts, buf), buf};
    return store_rc(mdb_put(txn, self->counts, &key, &value, 0));
}

static int apply_deltas(kpi_t *self, MDB_txn *txn, deltas_t *deltas)
{
    if (deltas->len == 0)
        return 0;
    qsort(deltas->items, deltas->len, sizeof(*deltas->items), delta_compare);
    /* Merge equal (key, count) pairs. */
    size_t merged = 0;
    for (size_t i = 0; i < deltas->len; i++) {
        if (merged > 0 && delta_compare(&deltas->items[merged - 1], &deltas->items[i]) == 0)
            deltas->items[merged - 1].change += deltas->items[i].change;
        else
            deltas->items[merged++] = deltas->items[i];
    }
    int rc = 0;
    size_t start = 0;
    for (size_t i = 1; rc == 0 && i <= merged; i++) {
        if (i < merged && deltas->items[i].key_len == deltas->items[start].key_len &&
            memcmp(deltas->items[i].key, deltas->items[start].key, deltas->items[i].key_len) == 0)
            continue;
        rc = apply_record(self, txn, deltas->items, start, i);
        start = i;
    }
    return rc;
}

/* ---- events to facts ------------------------------------------------------- */

/* The fact an event adds (kind UNSPECIFIED: none), and for a few events a
 * second one (a deadline). */
static void facts_of_event(const Dispatch__Event *event, int64_t at, uint64_t seq, fact_t *first,
                           fact_t *second)
{
    dispatch__audit__fact__init(first);
    dispatch__audit__fact__init(second);
    first->at = second->at = at;
    first->seq = second->seq = seq;
    switch (event->body_case) {
    case DISPATCH__EVENT__BODY_TICKET_DISPATCHED:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_DISPATCH;
        first->unit = event->ticket_dispatched->unit_id;
        first->deadline = event->ticket_dispatched->deadline_sign_for;
        if (event->ticket_dispatched->deadline_handle) {
            second->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_HANDLE_DEADLINE;
            second->deadline = event->ticket_dispatched->deadline_handle;
        }
        break;
    case DISPATCH__EVENT__BODY_TICKET_ACCEPTED:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_ACCEPT;
        first->unit = event->ticket_accepted->unit_id;
        break;
    case DISPATCH__EVENT__BODY_TICKET_RETURNED:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_RETURN;
        first->unit = event->ticket_returned->unit_id;
        break;
    case DISPATCH__EVENT__BODY_TICKET_RESOLVED:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_RESOLVE;
        first->unit = event->ticket_resolved->unit_id;
        first->value = event->ticket_resolved->result;
        break;
    case DISPATCH__EVENT__BODY_CALLED_BACK:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_CALLBACK;
        first->value = event->called_back->satisfaction;
        first->flag = event->called_back->unreachable;
        break;
    case DISPATCH__EVENT__BODY_TICKET_REOPENED:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_REOPEN;
        break;
    case DISPATCH__EVENT__BODY_TICKET_CLOSED:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_CLOSE;
        break;
    case DISPATCH__EVENT__BODY_TICKET_OVERDUE:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_OVERDUE;
        first->unit = event->ticket_overdue->unit_id;
        first->value = event->ticket_overdue->deadline_kind;
        second->deadline = event->ticket_overdue->deadline;
        second->kind =
            event->ticket_overdue->deadline_kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR
                ? DISPATCH__AUDIT__FACT_KIND__FACT_KIND_SIGN_FOR_DEADLINE
                : DISPATCH__AUDIT__FACT_KIND__FACT_KIND_HANDLE_DEADLINE;
        break;
    case DISPATCH__EVENT__BODY_REMINDER_SENT:
        first->deadline = event->reminder_sent->deadline;
        first->kind =
            event->reminder_sent->deadline_kind == DISPATCH__DEADLINE_KIND__DEADLINE_KIND_SIGN_FOR
                ? DISPATCH__AUDIT__FACT_KIND__FACT_KIND_SIGN_FOR_DEADLINE
                : DISPATCH__AUDIT__FACT_KIND__FACT_KIND_HANDLE_DEADLINE;
        break;
    case DISPATCH__EVENT__BODY_EXTENSION_GRANTED:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_HANDLE_DEADLINE;
        first->deadline = event->extension_granted->new_deadline_handle;
        break;
    case DISPATCH__EVENT__BODY_CLOCK_RESUMED:
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_SIGN_FOR_DEADLINE;
        first->deadline = event->clock_resumed->deadline_sign_for;
        second->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_HANDLE_DEADLINE;
        second->deadline = event->clock_resumed->deadline_handle;
        break;
    case DISPATCH__EVENT__BODY_DEADLINES_SET:
        if (event->deadlines_set->deadline_sign_for) {
            first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_SIGN_FOR_DEADLINE;
            first->deadline = event->deadlines_set->deadline_sign_for;
        }
        if (event->deadlines_set->deadline_handle) {
            second->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_HANDLE_DEADLINE;
            second->deadline = event->deadlines_set->deadline_handle;
        }
        break;
    case DISPATCH__EVENT__BODY_TICKET_REGISTERED: /* counted as a registration */
    case DISPATCH__EVENT__BODY_TICKET_MERGED:
    case DISPATCH__EVENT__BODY_TICKET_TRANSFERRED:
    case DISPATCH__EVENT__BODY_TICKET_REROUTED:
    case DISPATCH__EVENT__BODY_TICKET_TRIAGED:
    case DISPATCH__EVENT__BODY_TRIAGE_ASSIGNED:
    case DISPATCH__EVENT__BODY_TICKET_ESCALATED:
    case DISPATCH__EVENT__BODY_SIGN_OFF_REQUESTED:
    case DISPATCH__EVENT__BODY_SIGNED_OFF:
    case DISPATCH__EVENT__BODY_EXTENSION_REQUESTED:
    case DISPATCH__EVENT__BODY_EXTENSION_REFUSED:
    case DISPATCH__EVENT__BODY_CLOCK_PAUSED:
    case DISPATCH__EVENT__BODY_PROGRESS_REPORTED:
    case DISPATCH__EVENT__BODY__NOT_SET:
        break; /* no KPI counts them */
    }
    /* A deadline fact without a deadline says nothing. */
    if (first->kind >= DISPATCH__AUDIT__FACT_KIND__FACT_KIND_SIGN_FOR_DEADLINE && !first->deadline)
        first->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_UNSPECIFIED;
    if (second->kind >= DISPATCH__AUDIT__FACT_KIND__FACT_KIND_SIGN_FOR_DEADLINE &&
        !second->deadline)
        second->kind = DISPATCH__AUDIT__FACT_KIND__FACT_KIND_UNSPECIFIED;
    if (!first->unit)
        first->unit = "";
}

static bool fact_known(const facts_t *facts, const fact_t *fact)
{
    bool deadline = fact->kind >= DISPATCH__AUDIT__FACT_KIND__FACT_KIND_SIGN_FOR_DEADLINE;
    for (size_t i = 0; i < facts->n_facts; i++) {
        const fact_t *have = facts->facts[i];
        if (have->kind != fact->kind)
            continue;
        /* The same record twice, or a deadline already known. */
        if (have->seq == fact->seq || (deadline && have->deadline == fact->deadline))
            return true;
    }
    return false;
}

int kpi_apply(kpi_t *self, MDB_txn *txn, const Dispatch__Event *event, uint64_t seq,
              int64_t recorded_at)
{
    if (!id_usable(event->ticket_id))
        return 0; /* events on a report, or not about a usable ticket id */
    unsigned char history_bytes[HISTORY_KEY_MAX];
    MDB_val key = {history_key(event->ticket_id, seq, history_bytes), history_bytes};
    MDB_val empty = {0, ""};
    int rc = store_rc(mdb_put(txn, self->history, &key, &empty, 0));
    if (rc < 0)
        return rc;

    int64_t at = event->at ? event->at : recorded_at;
    fact_t first, second;
    facts_of_event(event, at, seq, &first, &second);
    bool registration = event->body_case == DISPATCH__EVENT__BODY_TICKET_REGISTERED &&
                        event->ticket_registered->ticket;
    if (!registration && !first.kind && !second.kind)
        return 0;

    facts_t *loaded = facts_load(self, txn, event->ticket_id, &rc);
    if (rc < 0)
        return rc;
    facts_t facts = DISPATCH__AUDIT__TICKET_FACTS__INIT;
    if (loaded) {
        facts = *loaded;
        facts.base.n_unknown_fields = 0;
        facts.base.unknown_fields = NULL;
    }
    contributions_t before = {0}, after = {0};
    deltas_t deltas = {0};
    fact_t **items = NULL;
    rc = ticket_contributions(self, loaded, &before);

    /* The ticket's facts with this event's. Strings point into the loaded
     * record or the event, both alive until the end. */
    if (registration && !facts.registered) {
        const Dispatch__Ticket *ticket = event->ticket_registered->ticket;
        facts.registered = true;
        facts.category = ticket->category;
        facts.urgency = ticket->urgency;
        facts.registered_at = ticket->registered_at ? ticket->registered_at : at;
        if (ticket->district && *ticket->district)
            facts.district = ticket->district;
    }
    if (!facts.district || !*facts.district)
        facts.district = event->district ? event->district : "";
    if (!facts.category)
        facts.category = "";
    items = malloc((facts.n_facts + 2) * sizeof(*items));
    if (rc == 0 && !items)
        rc = -ENOMEM;
    if (rc == 0) {
        if (facts.n_facts)
            memcpy(items, facts.facts, facts.n_facts * sizeof(*items));
        facts.facts = items;
        if (first.kind && facts.n_facts < FACTS_MAX && !fact_known(&facts, &first))
            items[facts.n_facts++] = &first;
        if (second.kind && facts.n_facts < FACTS_MAX && !fact_known(&facts, &second))
            items[facts.n_facts++] = &second;
        rc = ticket_contributions(self, &facts, &after);
    }
    /* A ticket that was not registered yet counted under district and
     * category as they were then: take all of it back and count it anew. */
    if (rc == 0 && loaded)
        rc = expand(loaded, &before, -1, &deltas);
    if (rc == 0)
        rc = expand(&facts, &after, +1, &deltas);
    if (rc == 0)
        rc = apply_deltas(self, txn, &deltas);
    if (rc == 0)
        rc = facts_store(self, txn, event->ticket_id, &facts);
    free(items);
    free(before.items);
    free(after.items);
    free(deltas.items);
    if (loaded)
        dispatch__audit__ticket_facts__free_unpacked(loaded, NULL);
    return rc;
}

/* ---- queries --------------------------------------------------------------- */

void kpi_rates(const Dispatch__KpiCounts *c, Dispatch__KpiRates *rates)
{
    dispatch__kpi_rates__init(rates);
    rates->response = c->dispatched ? (double)c->signed_in_time / (double)c->dispatched : 0;
    rates->on_time = c->resolved ? (double)c->resolved_on_time / (double)c->resolved : 0;
    rates->resolution = c->resolved ? (double)c->resolved_solved / (double)c->resolved : 0;
    rates->satisfaction = c->called_back ? (double)c->satisfied / (double)c->called_back : 0;
    rates->reopen = c->resolved ? (double)c->reopened / (double)c->resolved : 0;
}

static void counts_free(void *counts)
{
    dispatch__kpi_counts__free_unpacked(counts, NULL);
}

static Dispatch__KpiRow *row_new(arena_t *arena, const char *entity, size_t entity_len,
                                 const MDB_val *value)
{
    Dispatch__KpiCounts *counts =
        dispatch__kpi_counts__unpack(NULL, value->mv_size, value->mv_data);
    if (!counts || arena_adopt(arena, counts, counts_free) < 0)
        return NULL;
    Dispatch__KpiRow *row = arena_alloc(arena, sizeof(*row));
    Dispatch__KpiRates *rates = arena_alloc(arena, sizeof(*rates));
    char *key = arena_alloc(arena, entity_len + 1);
    if (!row || !rates || !key)
        return NULL;
    dispatch__kpi_row__init(row);
    memcpy(key, entity, entity_len);
    row->key = key;
    row->counts = counts;
    kpi_rates(counts, rates);
    row->rates = rates;
    return row;
}

/* Calls fn for each row of (by, period key), ascending entity, starting
 * after after_key; stops when fn returns non-zero (1 = enough). */
typedef int (*row_fn)(void *ctx, const char *entity, size_t entity_len, const MDB_val *value);

static int rows_walk(kpi_t *self, MDB_txn *txn, Dispatch__KpiDimension by,
                     Dispatch__KpiPeriod period, const char *period_key_text, const char *after_key,
                     row_fn fn, void *ctx)
{
    unsigned char start[ROW_KEY_MAX];
    size_t prefix_len = row_key(by, period, period_key_text, "", start);
    size_t start_len = row_key(by, period, period_key_text, after_key, start);
    MDB_cursor *cursor;
    int rc = mdb_cursor_open(txn, self->counts, &cursor);
    if (rc != 0)
        return store_rc(rc);
    MDB_val key = {start_len, start}, value;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size >= prefix_len && memcmp(key.mv_data, start, prefix_len) == 0) {
        const char *entity = (const char *)key.mv_data + prefix_len;
        size_t entity_len = key.mv_size - prefix_len;
        bool skip = *after_key && entity_len == strlen(after_key) &&
                    memcmp(entity, after_key, entity_len) == 0;
        if (!skip) {
            int stop = fn(ctx, entity, entity_len, &value);
            if (stop) {
                rc = stop < 0 ? stop : MDB_NOTFOUND;
                break;
            }
        }
        rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
    }
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc < 0 ? rc : store_rc(rc);
}

typedef struct page {
    arena_t *arena;
    Dispatch__KpiReply *reply;
    uint32_t limit;
} page_t;

static int page_add(void *ctx, const char *entity, size_t entity_len, const MDB_val *value)
{
    page_t *page = ctx;
    if (page->reply->n_rows == page->limit) {
        page->reply->more = true;
        return 1;
    }
    Dispatch__KpiRow *row = row_new(page->arena, entity, entity_len, value);
    if (!row)
        return -ENOMEM;
    page->reply->rows[page->reply->n_rows++] = row;
    return 0;
}

int kpi_rows(kpi_t *self, MDB_txn *txn, Dispatch__KpiDimension by, Dispatch__KpiPeriod period,
             const period_date_t *date, const char *key, const char *after_key, uint32_t limit,
             arena_t *arena, Dispatch__KpiReply *reply)
{
    char period_key_text[PERIOD_KEY_SIZE];
    int rc = period_key(period, date, period_key_text);
    if (rc < 0)
        return rc;
    dispatch__kpi_reply__init(reply);
    reply->by = by;
    reply->period = period;
    reply->period_key = arena_strdup(arena, period_key_text);
    reply->rows = arena_alloc(arena, (limit ? limit : 1) * sizeof(*reply->rows));
    if (!reply->period_key || !reply->rows)
        return -ENOMEM;
    page_t page = {arena, reply, limit};
    if (!*key)
        return rows_walk(self, txn, by, period, period_key_text, after_key, page_add, &page);
    if (strlen(key) > KPI_KEY_MAX)
        return 0;
    unsigned char key_bytes[ROW_KEY_MAX];
    MDB_val row = {row_key(by, period, period_key_text, key, key_bytes), key_bytes}, value;
    rc = mdb_get(txn, self->counts, &row, &value);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return store_rc(rc);
    return page_add(&page, key, strlen(key), &value) < 0 ? -ENOMEM : 0;
}

/* ---- the special report ---------------------------------------------------- */

typedef struct category_count {
    char *category;
    uint64_t count;
    uint32_t rank;
} category_count_t;

typedef struct category_list {
    arena_t *arena;
    category_count_t *items;
    size_t len, capacity;
    int error;
} category_list_t;

static int category_add(void *ctx, const char *entity, size_t entity_len, const MDB_val *value)
{
    category_list_t *list = ctx;
    Dispatch__KpiCounts *counts =
        dispatch__kpi_counts__unpack(NULL, value->mv_size, value->mv_data);
    if (!counts)
        return 0; /* an unreadable record counts as none */
    uint64_t registered = counts->registered;
    dispatch__kpi_counts__free_unpacked(counts, NULL);
    if (registered == 0)
        return 0;
    if (list->len == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        category_count_t *items = realloc(list->items, capacity * sizeof(*items));
        if (!items)
            return -ENOMEM;
        list->items = items;
        list->capacity = capacity;
    }
    char *category = arena_alloc(list->arena, entity_len + 1);
    if (!category)
        return -ENOMEM;
    memcpy(category, entity, entity_len);
    list->items[list->len++] = (category_count_t){category, registered, 0};
    return 0;
}

static int by_count(const void *a, const void *b)
{
    const category_count_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->category, y->category);
}

static int categories_of(kpi_t *self, MDB_txn *txn, Dispatch__KpiPeriod period,
                         const char *period_key_text, category_list_t *list, uint64_t *total)
{
    int rc = rows_walk(self, txn, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CATEGORY, period,
                       period_key_text, "", category_add, list);
    if (rc < 0)
        return rc;
    if (list->len > 1)
        qsort(list->items, list->len, sizeof(*list->items), by_count);
    *total = 0;
    for (size_t i = 0; i < list->len; i++) {
        list->items[i].rank = (uint32_t)(i + 1);
        *total += list->items[i].count;
    }
    return 0;
}

int kpi_report(kpi_t *self, MDB_txn *txn, Dispatch__KpiPeriod period, const period_date_t *date,
               uint32_t top, arena_t *arena, Dispatch__SpecialReport *report)
{
    period_date_t previous_date;
    period_previous(period, date, &previous_date);
    char key_now[PERIOD_KEY_SIZE], key_before[PERIOD_KEY_SIZE], report_id[64];
    int rc = period_key(period, date, key_now);
    if (rc < 0)
        return rc;
    period_key(period, &previous_date, key_before);
    snprintf(report_id, sizeof(report_id), "categories-%s", key_now);

    dispatch__special_report__init(report);
    report->period = period;
    report->report_id = arena_strdup(arena, report_id);
    report->period_key = arena_strdup(arena, key_now);
    report->previous_key = arena_strdup(arena, key_before);
    category_list_t now = {.arena = arena}, before = {.arena = arena};
    if (!report->report_id || !report->period_key || !report->previous_key)
        rc = -ENOMEM;
    if (rc == 0)
        rc = categories_of(self, txn, period, key_now, &now, &report->total);
    if (rc == 0)
        rc = categories_of(self, txn, period, key_before, &before, &report->previous_total);
    size_t listed = now.len < top ? now.len : top;
    if (rc == 0) {
        report->categories =
            arena_alloc(arena, (listed ? listed : 1) * sizeof(*report->categories));
        if (!report->categories)
            rc = -ENOMEM;
    }
    uint64_t listed_now = 0, listed_before = 0;
    for (size_t i = 0; rc == 0 && i < listed; i++) {
        Dispatch__CategoryShare *share = arena_alloc(arena, sizeof(*share));
        if (!share) {
            rc = -ENOMEM;
            break;
        }
        dispatch__category_share__init(share);
        const category_count_t *item = &now.items[i];
        share->category = item->category;
        share->rank = item->rank;
        share->count = item->count;
        share->share = (double)item->count / (double)report->total;
        for (size_t k = 0; k < before.len; k++) {
            if (strcmp(before.items[k].category, item->category) == 0) {
                share->previous_count = before.items[k].count;
                share->previous_rank = before.items[k].rank;
                share->previous_share =
                    (double)before.items[k].count / (double)report->previous_total;
            }
        }
        share->change = (int64_t)share->count - (int64_t)share->previous_count;
        share->change_ratio =
            share->previous_count ? (double)share->change / (double)share->previous_count : 0;
        listed_now += share->count;
        listed_before += share->previous_count;
        report->categories[report->n_categories++] = share;
    }
    if (report->total)
        report->top_share = (double)listed_now / (double)report->total;
    if (report->previous_total)
        report->previous_top_share = (double)listed_before / (double)report->previous_total;
    free(now.items);
    free(before.items);
    return rc;
}

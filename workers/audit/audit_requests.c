/* audit_requests: the queries (replay, KPIs, report, history, verify),
 * answered from a read transaction. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_internal.h"
#include "authz.h"
#include "codec.h"
#include "kpi.h"
#include "linkview.h"
#include "period.h"
#include "refusal.h"
#include "storagestate.h"
#include "workerstats.h"

#define REPLAY_DEFAULT_LIMIT 100
#define REPLAY_MAX_LIMIT 1000
#define ROWS_DEFAULT_LIMIT 100
#define ROWS_MAX_LIMIT 1000
#define REPORT_DEFAULT_TOP 10
#define REPORT_MAX_TOP 100
#define VERIFY_DEFAULT_LIMIT 10000
#define VERIFY_MAX_LIMIT 50000
/* Room left in a reply for what surrounds the records (tag, last_seq, ...). */
#define REPLY_OVERHEAD 256

/* ---- replies ---------------------------------------------------------------- */

static Dispatch__Error *error_of(arena_t *arena, const refusal_t *refusal)
{
    Dispatch__Error *error = arena_alloc(arena, sizeof(*error));
    if (!error)
        return NULL;
    dispatch__error__init(error);
    error->code = refusal->code;
    error->message = arena_strdup(arena, refusal->message);
    error->field = arena_strdup(arena, refusal->field);
    return error->message && error->field ? error : NULL;
}

/* Records with a byte budget (60 KiB replies hold at least one record). */
typedef struct collector {
    arena_t *arena;
    Dispatch__AuditRecord **records;
    size_t count, capacity, bytes;
} collector_t;

/* Adds record seq: 0, 1 when the budget is spent (not added), -ENOENT
 * when there is no such record, or a storage error. */
static int collect(audit_t *self, MDB_txn *txn, collector_t *collector, uint64_t seq)
{
    if (collector->count == collector->capacity)
        return 1;
    Dispatch__Audit__LogEntry *entry;
    int rc = trail_get(self->trail, txn, seq, &entry);
    if (rc == -EBADMSG) {
        /* A record that no longer decodes still takes its place: seq only. */
        Dispatch__Audit__LogEntry empty = DISPATCH__AUDIT__LOG_ENTRY__INIT;
        empty.seq = seq;
        entry = NULL;
        Dispatch__AuditRecord *record;
        rc = stream_record(&empty, &record);
        if (rc == 0)
            rc = arena_adopt(collector->arena, record, stream_record_free_any);
        if (rc == 0)
            collector->records[collector->count++] = record;
        return rc;
    }
    if (rc < 0)
        return rc;
    Dispatch__AuditRecord *record;
    rc = stream_record_of(entry, &record);
    if (rc < 0)
        return rc;
    size_t size = protobuf_c_message_get_packed_size(&record->base) + 8;
    if (collector->count > 0 &&
        collector->bytes + size > AUDIT_MAX_REPLY_RECORDS_BYTES - REPLY_OVERHEAD) {
        stream_record_free(record);
        return 1;
    }
    rc = arena_adopt(collector->arena, record, stream_record_free_any);
    if (rc < 0)
        return rc;
    collector->records[collector->count++] = record;
    collector->bytes += size;
    return 0;
}

static int collector_init(collector_t *collector, arena_t *arena, size_t capacity)
{
    *collector = (collector_t){.arena = arena, .capacity = capacity};
    collector->records = arena_alloc(arena, capacity * sizeof(*collector->records));
    return collector->records ? 0 : -ENOMEM;
}

static int answer_replay(audit_t *self, MDB_txn *txn, const Dispatch__ReplayRequest *request,
                         refusal_t *refusal, Dispatch__ReplayReply *reply)
{
    if (request->limit > REPLAY_MAX_LIMIT)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "limit",
                      "limit %u is over %d", request->limit, REPLAY_MAX_LIMIT);
    trail_head_t head;
    int rc = trail_head(self->trail, txn, &head);
    if (rc < 0)
        return rc;
    uint32_t limit = request->limit ? request->limit : REPLAY_DEFAULT_LIMIT;
    collector_t collector;
    rc = collector_init(&collector, self->arena, limit);
    uint64_t seq = request->from_seq ? request->from_seq : 1;
    for (; rc == 0 && seq <= head.seq; seq++) {
        rc = collect(self, txn, &collector, seq);
        if (rc == -ENOENT) /* a record gone from the store: the next one */
            rc = 0;
    }
    if (rc < 0)
        return rc;
    reply->records = collector.records;
    reply->n_records = collector.count;
    reply->last_seq = head.seq;
    return 0;
}

static int answer_history(audit_t *self, MDB_txn *txn, const Dispatch__HistoryQuery *query,
                          refusal_t *refusal, Dispatch__TicketHistory *reply)
{
    if (!*query->ticket_id)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "history.ticket_id",
                      "ticket_id is required");
    if (strlen(query->ticket_id) > LIMIT_ID)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "history.ticket_id",
                      "ticket_id is over %d bytes", LIMIT_ID);
    if (query->limit > REPLAY_MAX_LIMIT)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "history.limit",
                      "limit %u is over %d", query->limit, REPLAY_MAX_LIMIT);
    collector_t collector;
    int rc =
        collector_init(&collector, self->arena, query->limit ? query->limit : REPLAY_DEFAULT_LIMIT);
    uint64_t seq = query->after_seq;
    while (rc == 0) {
        rc = kpi_history_next(self->kpi, txn, query->ticket_id, seq, &seq);
        if (rc == -ENOENT)
            break;
        if (rc == 0)
            rc = collect(self, txn, &collector, seq);
        if (rc == 1)
            reply->more = true;
        if (rc == -ENOENT) /* indexed but gone from the log */
            rc = 0;
    }
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (collector.count == 0 && query->after_seq == 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, "history.ticket_id",
                      "no record of ticket '%s'", query->ticket_id);
    reply->ticket_id = arena_strdup(self->arena, query->ticket_id);
    reply->records = collector.records;
    reply->n_records = collector.count;
    return reply->ticket_id ? 0 : -ENOMEM;
}

/* The date `at` names for period (field: the query's field path). */
static int period_date(const char *at, Dispatch__KpiPeriod period, int64_t now_ms,
                       const char *field, refusal_t *refusal, period_date_t *date)
{
    if (!*at)
        return period_date_of(now_ms, date) == 0
                   ? 0
                   : refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, field,
                            "the clock is outside the calendar");
    if (period_parse(period, at, date) < 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, field,
                      "'%.64s' is not a day YYYY-MM-DD%s", at,
                      period == DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER
                          ? ", a month YYYY-MM or a quarter YYYY-Qn"
                      : period == DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH ? " or a month YYYY-MM"
                                                                         : "");
    return 0;
}

static int answer_kpi(audit_t *self, MDB_txn *txn, const Dispatch__KpiQuery *query, int64_t now_ms,
                      refusal_t *refusal, Dispatch__KpiReply *reply)
{
    if (query->by == DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNSPECIFIED)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "kpi.by",
                      "by is required (unit, district, category or city)");
    if (query->period == DISPATCH__KPI_PERIOD__KPI_PERIOD_UNSPECIFIED)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "kpi.period",
                      "period is required (day, month or quarter)");
    if (strlen(query->key) > LIMIT_ID)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "kpi.key",
                      "key is over %d bytes", LIMIT_ID);
    if (strlen(query->after_key) > LIMIT_ID)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "kpi.after_key",
                      "after_key is over %d bytes", LIMIT_ID);
    if (query->limit > ROWS_MAX_LIMIT)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "kpi.limit",
                      "limit %u is over %d", query->limit, ROWS_MAX_LIMIT);
    period_date_t date;
    int rc = period_date(query->at, query->period, now_ms, "kpi.at", refusal, &date);
    if (rc != 0)
        return rc;
    return kpi_rows(self->kpi, txn, query->by, query->period, &date, query->key, query->after_key,
                    query->limit ? query->limit : ROWS_DEFAULT_LIMIT, self->arena, reply);
}

static int answer_report(audit_t *self, MDB_txn *txn, const Dispatch__ReportQuery *query,
                         int64_t now_ms, refusal_t *refusal, Dispatch__SpecialReport *reply)
{
    if (query->period == DISPATCH__KPI_PERIOD__KPI_PERIOD_UNSPECIFIED)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "report.period",
                      "period is required (day, month or quarter)");
    if (query->top > REPORT_MAX_TOP)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "report.top",
                      "top %u is over %d", query->top, REPORT_MAX_TOP);
    period_date_t date;
    int rc = period_date(query->at, query->period, now_ms, "report.at", refusal, &date);
    if (rc != 0)
        return rc;
    return kpi_report(self->kpi, txn, query->period, &date,
                      query->top ? query->top : REPORT_DEFAULT_TOP, self->arena, reply);
}

static int answer_verify(audit_t *self, MDB_txn *txn, const Dispatch__VerifyQuery *query,
                         refusal_t *refusal, Dispatch__VerifyReply *reply)
{
    if (query->limit > VERIFY_MAX_LIMIT)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "verify.limit",
                      "limit %llu is over %d", (unsigned long long)query->limit, VERIFY_MAX_LIMIT);
    trail_verdict_t verdict;
    int rc = trail_verify(self->trail, txn, query->from_seq,
                          query->limit ? query->limit : VERIFY_DEFAULT_LIMIT, &verdict);
    if (rc < 0)
        return rc;
    reply->intact = verdict.broken_seq == 0;
    reply->from_seq = verdict.from_seq;
    reply->checked = verdict.checked;
    reply->last_seq = verdict.last_seq;
    reply->broken_seq = verdict.broken_seq;
    reply->problem = arena_strdup(self->arena, verdict.problem);
    unsigned char *hash = arena_alloc(self->arena, TRAIL_HASH_SIZE);
    if (!reply->problem || !hash)
        return -ENOMEM;
    memcpy(hash, verdict.hash, TRAIL_HASH_SIZE);
    reply->hash = (ProtobufCBinaryData){verdict.checked ? TRAIL_HASH_SIZE : 0, hash};
    return 0;
}

/* Decodes a request: 0, or REFUSED with the refusal filled. */
static int decode(const ProtobufCMessageDescriptor *descriptor, const void *body, size_t len,
                  ProtobufCMessage **msg, refusal_t *refusal)
{
    char err[256];
    int rc = codec_decode(descriptor, body, len, AUDIT_MAX_REQUEST, msg, err, sizeof(err));
    return rc < 0 ? refuse_decode(refusal, rc, err, len, AUDIT_MAX_REQUEST, descriptor->name) : 0;
}

/* After an answer (rc): frees the request; a refusal becomes *error. */
static int conclude(audit_t *self, ProtobufCMessage *msg, int rc, const refusal_t *refusal,
                    Dispatch__Error **error)
{
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    if (rc == REFUSED && !(*error = error_of(self->arena, refusal)))
        return -ENOMEM;
    return rc < 0 ? rc : 0;
}

/* Whoever asks learns whether recording stands still (store.h). */
static int storage_state(audit_t *self, Dispatch__StorageState **ret)
{
    storagestate_t *memory = arena_alloc(self->arena, sizeof(*memory));
    if (!memory)
        return -ENOMEM;
    storagestate_fill(memory, self->store);
    *ret = &memory->state;
    return 0;
}

/* A bare ReplayRequest: answered with a bare ReplayReply. */
static int answer_bare_replay(audit_t *self, MDB_txn *txn, const auth_actor_t *actor,
                              const void *body, size_t len, const ProtobufCMessage **ret)
{
    Dispatch__ReplayReply *reply = arena_alloc(self->arena, sizeof(*reply));
    if (!reply)
        return -ENOMEM;
    dispatch__replay_reply__init(reply);
    ProtobufCMessage *msg = NULL;
    refusal_t refusal;
    int rc = decode(&dispatch__replay_request__descriptor, body, len, &msg, &refusal);
    if (rc == 0)
        rc = authz_key(&refusal, AUTHZ_AUDIT_LOG, actor);
    if (rc == 0)
        rc = answer_replay(self, txn, (Dispatch__ReplayRequest *)msg, &refusal, reply);
    rc = conclude(self, msg, rc, &refusal, &reply->error);
    if (rc == 0)
        *ret = &reply->base;
    return rc;
}

/* The reply body of the query's kind, set in reply (the oneof numbers of
 * the query and the reply are the same). */
static void *reply_body(audit_t *self, const Dispatch__AuditQuery *query,
                        Dispatch__AuditReply *reply)
{
    const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field(
        &dispatch__audit_reply__descriptor, (unsigned)query->body_case);
    const ProtobufCMessageDescriptor *descriptor = field->descriptor;
    void *body = arena_alloc(self->arena, descriptor->sizeof_message);
    if (!body)
        return NULL;
    protobuf_c_message_init(descriptor, body);
    memcpy((char *)reply + field->offset, &body, sizeof(body));
    return body;
}

/* What a query asks of authz.h. */
static authz_call_t call_of(Dispatch__AuditQuery__BodyCase body)
{
    switch (body) {
    case DISPATCH__AUDIT_QUERY__BODY_REPLAY:
    case DISPATCH__AUDIT_QUERY__BODY_HISTORY:
    case DISPATCH__AUDIT_QUERY__BODY__NOT_SET:
        break;
    case DISPATCH__AUDIT_QUERY__BODY_KPI:
    case DISPATCH__AUDIT_QUERY__BODY_REPORT:
        return AUTHZ_AUDIT_FIGURES;
    case DISPATCH__AUDIT_QUERY__BODY_VERIFY:
        return AUTHZ_AUDIT_VERIFY;
    case DISPATCH__AUDIT_QUERY__BODY_LINKS_QUERY:
        return AUTHZ_LINKS;
    case DISPATCH__AUDIT_QUERY__BODY_LINK_ACCEPT:
        return AUTHZ_LINK_ACCEPT;
    case DISPATCH__AUDIT_QUERY__BODY_STATS:
        return AUTHZ_STATS;
    }
    return AUTHZ_AUDIT_LOG;
}

static int answer_links(audit_t *self, const Dispatch__AuditQuery *query, refusal_t *refusal,
                        Dispatch__AuditReply *reply)
{
    if (!self->bus)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE, "body",
                      "this audit runs without a bus");
    if (query->body_case == DISPATCH__AUDIT_QUERY__BODY_LINK_ACCEPT &&
        linkview_accept(self->bus, query->link_accept->peer, refusal))
        return REFUSED;
    int rc = linkview_fill(&self->links, self->store, self->bus, LINKVIEW_MAX_BYTES, &reply->links);
    if (rc == 0)
        reply->body_case = DISPATCH__AUDIT_REPLY__BODY_LINKS;
    return rc;
}

static int answer_query(audit_t *self, MDB_txn *txn, const auth_actor_t *actor,
                        const Dispatch__AuditQuery *query, int64_t now_ms, refusal_t *refusal,
                        Dispatch__AuditReply *reply)
{
    if (query->body_case == DISPATCH__AUDIT_QUERY__BODY__NOT_SET)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "",
                      "no query in the body");
    if (authz_key(refusal, call_of(query->body_case), actor))
        return REFUSED;
    if (query->body_case == DISPATCH__AUDIT_QUERY__BODY_LINKS_QUERY ||
        query->body_case == DISPATCH__AUDIT_QUERY__BODY_LINK_ACCEPT)
        return answer_links(self, query, refusal, reply);
    void *body = reply_body(self, query, reply);
    if (!body)
        return -ENOMEM;
    int rc = 0;
    switch (query->body_case) {
    case DISPATCH__AUDIT_QUERY__BODY_REPLAY:
        rc = answer_replay(self, txn, query->replay, refusal, body);
        if (rc == REFUSED) {
            /* The field path from the query's top. */
            char field[sizeof(refusal->field)];
            snprintf(field, sizeof(field), "replay.%.48s", refusal->field);
            snprintf(refusal->field, sizeof(refusal->field), "%s", field);
        }
        break;
    case DISPATCH__AUDIT_QUERY__BODY_KPI:
        rc = answer_kpi(self, txn, query->kpi, now_ms, refusal, body);
        break;
    case DISPATCH__AUDIT_QUERY__BODY_REPORT:
        rc = answer_report(self, txn, query->report, now_ms, refusal, body);
        break;
    case DISPATCH__AUDIT_QUERY__BODY_HISTORY:
        rc = answer_history(self, txn, query->history, refusal, body);
        break;
    case DISPATCH__AUDIT_QUERY__BODY_VERIFY:
        rc = answer_verify(self, txn, query->verify, refusal, body);
        break;
    case DISPATCH__AUDIT_QUERY__BODY_STATS:
        rc = workerstats_fill(body, self->store, self->bus, &self->links);
        break;
    case DISPATCH__AUDIT_QUERY__BODY_LINKS_QUERY:
    case DISPATCH__AUDIT_QUERY__BODY_LINK_ACCEPT:
    case DISPATCH__AUDIT_QUERY__BODY__NOT_SET:
        break;
    }
    if (rc == 0)
        reply->body_case = (Dispatch__AuditReply__BodyCase)query->body_case;
    return rc;
}

int audit_handle_request(audit_t *self, MDB_txn *txn, const auth_actor_t *actor, const void *body,
                         size_t len, int64_t now_ms, const ProtobufCMessage **ret)
{
    *ret = NULL;
    arena_reset(self->arena);
    Dispatch__AuditReply *reply = arena_alloc(self->arena, sizeof(*reply));
    if (!reply)
        return -ENOMEM;
    dispatch__audit_reply__init(reply);
    ProtobufCMessage *msg = NULL;
    refusal_t refusal;
    int rc = decode(&dispatch__audit_query__descriptor, body, len, &msg, &refusal);
    Dispatch__AuditQuery *query = (Dispatch__AuditQuery *)msg;
    if (rc == 0 && query->body_case == DISPATCH__AUDIT_QUERY__BODY__NOT_SET && query->tag == 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return answer_bare_replay(self, txn, actor, body, len, ret);
    }
    if (rc == 0) {
        reply->tag = query->tag;
        rc = answer_query(self, txn, actor, query, now_ms, &refusal, reply);
    }
    if (rc == REFUSED)
        reply->body_case = DISPATCH__AUDIT_REPLY__BODY__NOT_SET;
    rc = conclude(self, msg, rc, &refusal, &reply->error);
    if (rc == 0)
        rc = storage_state(self, &reply->storage);
    if (rc == 0)
        *ret = &reply->base;
    return rc;
}

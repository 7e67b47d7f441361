/* Unit tests of the audit's handlers, with a real LMDB store in a temp
 * directory and no sockets: recording, the hash chain and its check, the
 * masked replay, hostile queries, and KPIs and the special report on a
 * scripted scenario whose figures are worked out by hand below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "bus.h"
#include "harness.h"
#include "period.h"
#include "stream.h"
#include "trail.h"

#define MINUTE (60LL * 1000)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
/* 2026-11-25 09:00 in Asia/Shanghai. */
#define T0 1795568400000LL
/* 2026-08-10 10:00 in Asia/Shanghai (the quarter before). */
#define Q3_DAY 1786327200000LL

typedef struct fixture {
    char dir[256];
    store_t *store;
    audit_t *audit;
    int event_counter;
    const auth_actor_t *actor; /* the key queries are asked with; NULL = plain */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_int_equal(harness_tmpdir("audit-unit", f->dir, sizeof(f->dir)), 0);
    assert_int_equal(store_open(f->dir, NULL, &f->store), 0);
    audit_options_t options;
    audit_options_init(&options);
    options.timezone = "Asia/Shanghai";
    assert_int_equal(audit_new(f->store, &options, &f->audit), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    audit_destroy(&f->audit);
    store_destroy(&f->store);
    harness_rmtree(f->dir);
    free(f);
    return 0;
}

/* ---- driving the handlers ---------------------------------------------- */

typedef struct record_call {
    fixture_t *f;
    const void *body;
    size_t len;
    int64_t now;
    uint64_t seq;
    int result;
} record_call_t;

static int record_in_txn(MDB_txn *txn, void *ctx)
{
    record_call_t *call = ctx;
    call->result =
        audit_handle_event(call->f->audit, txn, call->body, call->len, call->now, &call->seq);
    return call->result < 0 ? call->result : 0;
}

static int record_bytes(fixture_t *f, const void *body, size_t len, int64_t now, uint64_t *seq)
{
    record_call_t call = {f, body, len, now, 0, 0};
    assert_int_equal(store_write(f->store, record_in_txn, &call), 0);
    if (seq)
        *seq = call.seq;
    return call.result;
}

/* Records event (event_id filled when empty); returns its seq. */
static uint64_t record(fixture_t *f, Dispatch__Event *event)
{
    char id[64];
    if (!event->event_id || !*event->event_id) {
        snprintf(id, sizeof(id), "test-%d", ++f->event_counter);
        event->event_id = id;
    }
    if (!event->origin || !*event->origin)
        event->origin = "test";
    size_t len = dispatch__event__get_packed_size(event);
    unsigned char *buf = malloc(len + 1);
    dispatch__event__pack(event, buf);
    uint64_t seq;
    assert_int_equal(record_bytes(f, buf, len, event->at ? event->at + 1000 : T0, &seq), 0);
    free(buf);
    event->event_id = NULL;
    return seq;
}

/* The reply to a packed query (valid until the next query). */
static const ProtobufCMessage *ask_bytes(fixture_t *f, const void *body, size_t len)
{
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    const ProtobufCMessage *reply = NULL;
    assert_int_equal(audit_handle_request(f->audit, txn, f->actor, body, len, T0 + 2 * DAY, &reply),
                     0);
    store_read_end(&txn);
    assert_non_null(reply);
    return reply;
}

static const Dispatch__AuditReply *ask(fixture_t *f, Dispatch__AuditQuery *query)
{
    if (!query->tag)
        query->tag = 77;
    size_t len = dispatch__audit_query__get_packed_size(query);
    unsigned char *buf = malloc(len + 1);
    dispatch__audit_query__pack(query, buf);
    const ProtobufCMessage *reply = ask_bytes(f, buf, len);
    free(buf);
    assert_ptr_equal(reply->descriptor, &dispatch__audit_reply__descriptor);
    const Dispatch__AuditReply *audit_reply = (const Dispatch__AuditReply *)reply;
    assert_int_equal(audit_reply->tag, query->tag);
    return audit_reply;
}

/* ---- events ------------------------------------------------------------- */

static Dispatch__Ticket ticket_template;

static void registered(fixture_t *f, const char *ticket_id, const char *category,
                       Dispatch__Urgency urgency, int64_t at, const char *name, const char *phone)
{
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.id = (char *)ticket_id;
    ticket.category = (char *)category;
    ticket.urgency = urgency;
    ticket.kind = DISPATCH__KIND__KIND_COMPLAINT;
    ticket.channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    ticket.district = "cy";
    ticket.caller_name = (char *)name;
    ticket.caller_phone = (char *)phone;
    ticket.description = "water on the street";
    ticket.registered_at = at;
    ticket.state = DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED;
    Dispatch__TicketRegistered body = DISPATCH__TICKET_REGISTERED__INIT;
    body.ticket = &ticket;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.ticket_id = (char *)ticket_id;
    event.district = "cy";
    event.at = at;
    event.actor = "agent-1";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    event.ticket_registered = &body;
    record(f, &event);
    (void)ticket_template;
}

static void base_event(Dispatch__Event *event, const char *ticket_id, int64_t at)
{
    dispatch__event__init(event);
    event->ticket_id = (char *)ticket_id;
    event->district = "cy";
    event->at = at;
    event->actor = "system";
}

static void dispatched(fixture_t *f, const char *ticket_id, const char *unit, int64_t at,
                       int64_t deadline_sign_for, int64_t deadline_handle)
{
    Dispatch__TicketDispatched body = DISPATCH__TICKET_DISPATCHED__INIT;
    body.unit_id = (char *)unit;
    body.cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_RULE;
    body.deadline_sign_for = deadline_sign_for;
    body.deadline_handle = deadline_handle;
    Dispatch__Event event;
    base_event(&event, ticket_id, at);
    event.body_case = DISPATCH__EVENT__BODY_TICKET_DISPATCHED;
    event.ticket_dispatched = &body;
    record(f, &event);
}

static void accepted(fixture_t *f, const char *ticket_id, const char *unit, int64_t at)
{
    Dispatch__TicketAccepted body = DISPATCH__TICKET_ACCEPTED__INIT;
    body.unit_id = (char *)unit;
    Dispatch__Event event;
    base_event(&event, ticket_id, at);
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &body;
    record(f, &event);
}

static void returned(fixture_t *f, const char *ticket_id, const char *unit, int64_t at)
{
    Dispatch__TicketReturned body = DISPATCH__TICKET_RETURNED__INIT;
    body.unit_id = (char *)unit;
    body.reason_code = DISPATCH__RETURN_REASON__RETURN_REASON_NOT_OUR_DUTY;
    body.reason = "not ours";
    Dispatch__Event event;
    base_event(&event, ticket_id, at);
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RETURNED;
    event.ticket_returned = &body;
    record(f, &event);
}

static void resolved(fixture_t *f, const char *ticket_id, const char *unit, int64_t at,
                     Dispatch__ResolutionResult result)
{
    Dispatch__TicketResolved body = DISPATCH__TICKET_RESOLVED__INIT;
    body.unit_id = (char *)unit;
    body.result = result;
    body.text = "done";
    Dispatch__Event event;
    base_event(&event, ticket_id, at);
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RESOLVED;
    event.ticket_resolved = &body;
    record(f, &event);
}

static void called_back(fixture_t *f, const char *ticket_id, int64_t at,
                        Dispatch__Satisfaction satisfaction, bool unreachable)
{
    Dispatch__CalledBack body = DISPATCH__CALLED_BACK__INIT;
    body.satisfaction = satisfaction;
    body.unreachable = unreachable;
    body.solved = satisfaction != DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED;
    Dispatch__Event event;
    base_event(&event, ticket_id, at);
    event.body_case = DISPATCH__EVENT__BODY_CALLED_BACK;
    event.called_back = &body;
    record(f, &event);
}

static void reopened(fixture_t *f, const char *ticket_id, int64_t at)
{
    Dispatch__TicketReopened body = DISPATCH__TICKET_REOPENED__INIT;
    body.reopen_count = 1;
    Dispatch__Event event;
    base_event(&event, ticket_id, at);
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REOPENED;
    event.ticket_reopened = &body;
    record(f, &event);
}

static void closed(fixture_t *f, const char *ticket_id, int64_t at)
{
    Dispatch__TicketClosed body = DISPATCH__TICKET_CLOSED__INIT;
    Dispatch__Event event;
    base_event(&event, ticket_id, at);
    event.body_case = DISPATCH__EVENT__BODY_TICKET_CLOSED;
    event.ticket_closed = &body;
    record(f, &event);
}

static void extension_granted(fixture_t *f, const char *ticket_id, int64_t at, int64_t deadline)
{
    Dispatch__ExtensionGranted body = DISPATCH__EXTENSION_GRANTED__INIT;
    body.request_id = "ext-1";
    body.new_deadline_handle = deadline;
    Dispatch__Event event;
    base_event(&event, ticket_id, at);
    event.body_case = DISPATCH__EVENT__BODY_EXTENSION_GRANTED;
    event.extension_granted = &body;
    record(f, &event);
}

static trail_verdict_t verify(fixture_t *f)
{
    MDB_txn *txn;
    trail_t *trail;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    assert_int_equal(trail_attach(txn, &trail), 0);
    trail_verdict_t verdict;
    assert_int_equal(trail_verify(trail, txn, 0, 0, &verdict), 0);
    trail_destroy(&trail);
    store_read_end(&txn);
    return verdict;
}

/* ---- the log ------------------------------------------------------------- */

static void test_chain_follows_the_documented_hash(void **state)
{
    fixture_t *f = *state;
    registered(f, "T-1", "noise", DISPATCH__URGENCY__URGENCY_NORMAL, T0, "Li Lei", "13800000001");
    dispatched(f, "T-1", "U1", T0 + MINUTE, 0, 0);
    accepted(f, "T-1", "U1", T0 + 2 * MINUTE);

    MDB_txn *txn;
    trail_t *trail;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    assert_int_equal(trail_attach(txn, &trail), 0);
    unsigned char prev[TRAIL_HASH_SIZE] = {0};
    for (uint64_t seq = 1; seq <= 3; seq++) {
        Dispatch__Audit__LogEntry *entry;
        assert_int_equal(trail_get(trail, txn, seq, &entry), 0);
        assert_int_equal(entry->seq, seq);
        assert_memory_equal(entry->prev_hash.data, prev, TRAIL_HASH_SIZE);
        /* SHA-256(prev_hash || seq BE || recorded_at BE || event bytes), by hand. */
        size_t len = TRAIL_HASH_SIZE + 16 + entry->event.len;
        unsigned char *input = malloc(len);
        memcpy(input, prev, TRAIL_HASH_SIZE);
        for (int i = 0; i < 8; i++) {
            input[TRAIL_HASH_SIZE + i] = (unsigned char)(seq >> (56 - 8 * i));
            input[TRAIL_HASH_SIZE + 8 + i] =
                (unsigned char)((uint64_t)entry->recorded_at >> (56 - 8 * i));
        }
        memcpy(input + TRAIL_HASH_SIZE + 16, entry->event.data, entry->event.len);
        unsigned char expected[TRAIL_HASH_SIZE];
        crypto_hash_sha256(expected, input, len);
        free(input);
        assert_int_equal(entry->hash.len, TRAIL_HASH_SIZE);
        assert_memory_equal(entry->hash.data, expected, TRAIL_HASH_SIZE);
        memcpy(prev, expected, TRAIL_HASH_SIZE);
        trail_entry_free(entry);
    }
    trail_head_t head;
    assert_int_equal(trail_head(trail, txn, &head), 0);
    assert_int_equal(head.seq, 3);
    assert_memory_equal(head.hash, prev, TRAIL_HASH_SIZE);
    trail_destroy(&trail);
    store_read_end(&txn);

    trail_verdict_t verdict = verify(f);
    assert_int_equal(verdict.broken_seq, 0);
    assert_int_equal(verdict.checked, 3);
    assert_int_equal(verdict.last_seq, 3);
}

static void test_repeated_event_is_recorded_once(void **state)
{
    fixture_t *f = *state;
    Dispatch__TicketAccepted body = DISPATCH__TICKET_ACCEPTED__INIT;
    body.unit_id = "U1";
    Dispatch__Event event;
    base_event(&event, "T-9", T0);
    event.event_id = "router-cy-17";
    event.origin = "router-cy";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_ACCEPTED;
    event.ticket_accepted = &body;
    unsigned char buf[512];
    size_t len = dispatch__event__pack(&event, buf);
    uint64_t seq;
    assert_int_equal(record_bytes(f, buf, len, T0, &seq), 0);
    assert_int_equal(seq, 1);
    /* Again (another link, a resend after a restart): nothing new. */
    assert_int_equal(record_bytes(f, buf, len, T0 + 5, &seq), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(verify(f).last_seq, 1);
}

static void test_non_events_are_rejected(void **state)
{
    fixture_t *f = *state;
    const unsigned char garbage[] = {0xff, 0xff, 0xff, 0x01, 0x02};
    assert_int_equal(record_bytes(f, garbage, sizeof(garbage), T0, NULL), BUS_REJECTED);
    /* An enum value the contract does not declare. */
    Dispatch__TicketResolved body = DISPATCH__TICKET_RESOLVED__INIT;
    body.result = 99;
    Dispatch__Event event;
    base_event(&event, "T-1", T0);
    event.event_id = "x-1";
    event.body_case = DISPATCH__EVENT__BODY_TICKET_RESOLVED;
    event.ticket_resolved = &body;
    unsigned char buf[256];
    size_t len = dispatch__event__pack(&event, buf);
    assert_int_equal(record_bytes(f, buf, len, T0, NULL), BUS_REJECTED);
    /* Bad UTF-8. */
    event.ticket_resolved->result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;
    event.actor = "\xc3\x28";
    len = dispatch__event__pack(&event, buf);
    assert_int_equal(record_bytes(f, buf, len, T0, NULL), BUS_REJECTED);
    assert_int_equal(verify(f).last_seq, 0);
    assert_int_equal(verify(f).broken_seq, 0);
}

typedef struct tamper {
    fixture_t *f;
    uint64_t seq;
    size_t byte; /* edit: which byte of the value is flipped */
    enum { TAMPER_FLIP, TAMPER_DELETE, TAMPER_SWAP, TAMPER_RESTORE } what;
    unsigned char saved[2][4096];
    size_t saved_len[2];
} tamper_t;

static int tamper_in_txn(MDB_txn *txn, void *ctx)
{
    tamper_t *t = ctx;
    MDB_dbi log;
    int rc = mdb_dbi_open(txn, "audit.log", 0, &log);
    if (rc != 0)
        return store_rc(rc);
    unsigned char key_bytes[2][8];
    MDB_val key[2], value;
    for (int i = 0; i < 2; i++) {
        store_u64_encode(t->seq + (uint64_t)i, key_bytes[i]);
        key[i] = (MDB_val){8, key_bytes[i]};
    }
    switch (t->what) {
    case TAMPER_FLIP: {
        if ((rc = mdb_get(txn, log, &key[0], &value)) != 0)
            return store_rc(rc);
        unsigned char copy[4096];
        memcpy(copy, value.mv_data, value.mv_size);
        copy[t->byte % value.mv_size] ^= 0x01;
        MDB_val edited = {value.mv_size, copy};
        return store_rc(mdb_put(txn, log, &key[0], &edited, 0));
    }
    case TAMPER_DELETE:
    case TAMPER_SWAP:
        for (int i = 0; i < 2; i++) {
            if (mdb_get(txn, log, &key[i], &value) == 0) {
                memcpy(t->saved[i], value.mv_data, value.mv_size);
                t->saved_len[i] = value.mv_size;
            }
        }
        if (t->what == TAMPER_DELETE)
            return store_rc(mdb_del(txn, log, &key[0], NULL));
        for (int i = 0; i < 2; i++) {
            MDB_val other = {t->saved_len[1 - i], t->saved[1 - i]};
            if ((rc = mdb_put(txn, log, &key[i], &other, 0)) != 0)
                return store_rc(rc);
        }
        return 0;
    case TAMPER_RESTORE:
        for (int i = 0; i < 2; i++) {
            MDB_val original = {t->saved_len[i], t->saved[i]};
            if (t->saved_len[i] && (rc = mdb_put(txn, log, &key[i], &original, 0)) != 0)
                return store_rc(rc);
        }
        return 0;
    }
    return 0;
}

static void tamper(fixture_t *f, tamper_t *t)
{
    t->f = f;
    assert_int_equal(store_write(f->store, tamper_in_txn, t), 0);
}

static void test_verify_names_the_edited_deleted_or_moved_record(void **state)
{
    fixture_t *f = *state;
    registered(f, "T-1", "noise", DISPATCH__URGENCY__URGENCY_NORMAL, T0, "Li Lei", "13800000001");
    for (int i = 0; i < 5; i++)
        accepted(f, "T-1", "U1", T0 + (i + 1) * MINUTE);
    assert_int_equal(verify(f).broken_seq, 0);

    /* One byte of record 3, anywhere in its stored value. */
    MDB_txn *txn;
    assert_int_equal(store_read_begin(f->store, &txn), 0);
    trail_t *trail;
    assert_int_equal(trail_attach(txn, &trail), 0);
    Dispatch__Audit__LogEntry *entry;
    assert_int_equal(trail_get(trail, txn, 3, &entry), 0);
    size_t size = dispatch__audit__log_entry__get_packed_size(entry);
    trail_entry_free(entry);
    trail_destroy(&trail);
    store_read_end(&txn);
    for (size_t byte = 0; byte < size; byte++) {
        tamper_t t = {.seq = 3, .byte = byte, .what = TAMPER_FLIP};
        tamper(f, &t);
        trail_verdict_t verdict = verify(f);
        if (verdict.broken_seq != 3)
            fail_msg("byte %zu of record 3 flipped: broken_seq %llu (%s)", byte,
                     (unsigned long long)verdict.broken_seq, verdict.problem);
        assert_int_equal(verdict.checked, 2);
        tamper(f, &t); /* flipped back */
        assert_int_equal(verify(f).broken_seq, 0);
    }

    tamper_t deleted = {.seq = 3, .what = TAMPER_DELETE};
    tamper(f, &deleted);
    trail_verdict_t verdict = verify(f);
    assert_int_equal(verdict.broken_seq, 3);
    assert_non_null(strstr(verdict.problem, "missing"));
    deleted.what = TAMPER_RESTORE;
    tamper(f, &deleted);
    assert_int_equal(verify(f).broken_seq, 0);

    tamper_t swapped = {.seq = 4, .what = TAMPER_SWAP};
    tamper(f, &swapped);
    verdict = verify(f);
    assert_int_equal(verdict.broken_seq, 4);
    assert_non_null(strstr(verdict.problem, "moved"));
    swapped.what = TAMPER_RESTORE;
    tamper(f, &swapped);
    assert_int_equal(verify(f).broken_seq, 0);

    /* The last record gone: the head still says 6. */
    tamper_t last = {.seq = 6, .what = TAMPER_DELETE};
    tamper(f, &last);
    verdict = verify(f);
    assert_int_equal(verdict.broken_seq, 6);
    last.what = TAMPER_RESTORE;
    tamper(f, &last);

    /* The same check through the query endpoint, from the middle on. */
    Dispatch__VerifyQuery check = DISPATCH__VERIFY_QUERY__INIT;
    check.from_seq = 4;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_VERIFY;
    query.verify = &check;
    const Dispatch__AuditReply *reply = ask(f, &query);
    assert_int_equal(reply->body_case, DISPATCH__AUDIT_REPLY__BODY_VERIFY);
    assert_true(reply->verify->intact);
    assert_int_equal(reply->verify->checked, 3);
    assert_int_equal(reply->verify->last_seq, 6);
    tamper_t edited = {.seq = 5, .byte = 40, .what = TAMPER_FLIP};
    tamper(f, &edited);
    reply = ask(f, &query);
    assert_false(reply->verify->intact);
    assert_int_equal(reply->verify->broken_seq, 5);
}

/* ---- replay and masking -------------------------------------------------- */

static bool contains(const void *haystack, size_t len, const char *needle)
{
    return memmem(haystack, len, needle, strlen(needle)) != NULL;
}

static void test_replay_is_masked_ordered_and_paged(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 30; i++) {
        char id[32], phone[32];
        snprintf(id, sizeof(id), "T-%d", i + 1);
        snprintf(phone, sizeof(phone), "138%08d", i);
        registered(f, id, "noise", DISPATCH__URGENCY__URGENCY_NORMAL, T0 + i, "张三丰", phone);
    }
    /* A bare ReplayRequest gets a bare ReplayReply. */
    Dispatch__ReplayRequest request = DISPATCH__REPLAY_REQUEST__INIT;
    request.from_seq = 5;
    request.limit = 10;
    unsigned char buf[64];
    size_t len = dispatch__replay_request__pack(&request, buf);
    const ProtobufCMessage *msg = ask_bytes(f, buf, len);
    assert_ptr_equal(msg->descriptor, &dispatch__replay_reply__descriptor);
    const Dispatch__ReplayReply *reply = (const Dispatch__ReplayReply *)msg;
    assert_null(reply->error);
    assert_int_equal(reply->last_seq, 30);
    assert_int_equal(reply->n_records, 10);
    for (size_t i = 0; i < reply->n_records; i++) {
        const Dispatch__AuditRecord *record = reply->records[i];
        assert_int_equal(record->seq, 5 + i);
        assert_int_equal(record->hash.len, 32);
        if (i > 0)
            assert_memory_equal(record->prev_hash.data, reply->records[i - 1]->hash.data, 32);
        const Dispatch__Ticket *ticket = record->event->ticket_registered->ticket;
        char expected[32];
        snprintf(expected, sizeof(expected), "138****%04zu", 4 + i);
        assert_string_equal(ticket->caller_phone, expected);
        assert_string_equal(ticket->caller_name, "张**");
        assert_string_equal(ticket->description, "water on the street");
    }
    /* Packed, nothing of a caller is left. */
    void *packed = malloc(protobuf_c_message_get_packed_size(msg));
    size_t packed_len = protobuf_c_message_pack(msg, packed);
    assert_false(contains(packed, packed_len, "13800000004"));
    assert_false(contains(packed, packed_len, "张三丰"));
    free(packed);

    /* 0 reads as 1; limit 0 as 100 (all 30 here). */
    request.from_seq = 0;
    request.limit = 0;
    len = dispatch__replay_request__pack(&request, buf);
    reply = (const Dispatch__ReplayReply *)ask_bytes(f, buf, len);
    assert_int_equal(reply->n_records, 30);
    assert_int_equal(reply->records[0]->seq, 1);
    /* Past the end: nothing, and where the end is. */
    request.from_seq = 31;
    len = dispatch__replay_request__pack(&request, buf);
    reply = (const Dispatch__ReplayReply *)ask_bytes(f, buf, len);
    assert_int_equal(reply->n_records, 0);
    assert_int_equal(reply->last_seq, 30);
    /* Over the limit. */
    request.limit = 1001;
    len = dispatch__replay_request__pack(&request, buf);
    reply = (const Dispatch__ReplayReply *)ask_bytes(f, buf, len);
    assert_non_null(reply->error);
    assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE);
    assert_string_equal(reply->error->field, "limit");

    /* The same through AuditQuery. */
    Dispatch__ReplayRequest inner = DISPATCH__REPLAY_REQUEST__INIT;
    inner.from_seq = 29;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_REPLAY;
    query.replay = &inner;
    const Dispatch__AuditReply *audit_reply = ask(f, &query);
    assert_int_equal(audit_reply->body_case, DISPATCH__AUDIT_REPLY__BODY_REPLAY);
    assert_int_equal(audit_reply->replay->n_records, 2);
    inner.limit = 5000;
    audit_reply = ask(f, &query);
    assert_non_null(audit_reply->error);
    assert_string_equal(audit_reply->error->field, "replay.limit");

    /* History of one ticket. */
    Dispatch__HistoryQuery history = DISPATCH__HISTORY_QUERY__INIT;
    history.ticket_id = "T-7";
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_HISTORY;
    query.history = &history;
    audit_reply = ask(f, &query);
    assert_int_equal(audit_reply->body_case, DISPATCH__AUDIT_REPLY__BODY_HISTORY);
    assert_int_equal(audit_reply->history->n_records, 1);
    assert_int_equal(audit_reply->history->records[0]->seq, 7);
    assert_string_equal(
        audit_reply->history->records[0]->event->ticket_registered->ticket->caller_phone,
        "138****0006");
}

static void test_replay_reply_stays_under_60_kib(void **state)
{
    fixture_t *f = *state;
    char description[4001];
    memset(description, 'x', 4000);
    description[4000] = '\0';
    for (int i = 0; i < 40; i++) {
        Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
        char id[32];
        snprintf(id, sizeof(id), "T-%d", i);
        ticket.id = id;
        ticket.description = description;
        Dispatch__TicketRegistered body = DISPATCH__TICKET_REGISTERED__INIT;
        body.ticket = &ticket;
        Dispatch__Event event;
        base_event(&event, id, T0);
        event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
        event.ticket_registered = &body;
        record(f, &event);
    }
    Dispatch__ReplayRequest request = DISPATCH__REPLAY_REQUEST__INIT;
    request.limit = 1000;
    uint64_t next = 1;
    size_t replies = 0;
    while (next <= 40) {
        request.from_seq = next;
        unsigned char buf[64];
        size_t len = dispatch__replay_request__pack(&request, buf);
        const ProtobufCMessage *msg = ask_bytes(f, buf, len);
        const Dispatch__ReplayReply *reply = (const Dispatch__ReplayReply *)msg;
        assert_true(reply->n_records >= 1);
        assert_true(protobuf_c_message_get_packed_size(msg) <= 60 * 1024);
        assert_int_equal(reply->records[0]->seq, next);
        next = reply->records[reply->n_records - 1]->seq + 1;
        replies++;
    }
    assert_true(replies >= 3);
}

/* ---- hostile queries ------------------------------------------------------- */

static void assert_refused(const ProtobufCMessage *msg, Dispatch__ErrorCode code, const char *field)
{
    assert_ptr_equal(msg->descriptor, &dispatch__audit_reply__descriptor);
    const Dispatch__AuditReply *reply = (const Dispatch__AuditReply *)msg;
    assert_non_null(reply->error);
    assert_int_equal(reply->error->code, code);
    assert_int_equal(reply->body_case, DISPATCH__AUDIT_REPLY__BODY__NOT_SET);
    assert_true(strlen(reply->error->message) > 0);
    if (field)
        assert_string_equal(reply->error->field, field);
}

static const ProtobufCMessage *ask_raw(fixture_t *f, Dispatch__AuditQuery *query)
{
    size_t len = dispatch__audit_query__get_packed_size(query);
    unsigned char *buf = malloc(len + 1);
    dispatch__audit_query__pack(query, buf);
    const ProtobufCMessage *reply = ask_bytes(f, buf, len);
    free(buf);
    return reply;
}

static void test_hostile_queries_are_refused(void **state)
{
    fixture_t *f = *state;
    registered(f, "T-1", "noise", DISPATCH__URGENCY__URGENCY_NORMAL, T0, "Li Lei", "13800000001");

    const unsigned char garbage[] = {0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    assert_refused(ask_bytes(f, garbage, sizeof(garbage)),
                   DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, NULL);
    unsigned char *big = calloc(1, AUDIT_MAX_REQUEST + 1);
    assert_refused(ask_bytes(f, big, AUDIT_MAX_REQUEST + 1),
                   DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, NULL);
    free(big);

    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.tag = 5; /* a query without a body */
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "");

    Dispatch__KpiQuery kpi = DISPATCH__KPI_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_KPI;
    query.kpi = &kpi;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, "kpi.by");
    kpi.by = DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                   "kpi.period");
    kpi.period = 9;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, NULL);
    kpi.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY;
    kpi.at = "2026-02-30";
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "kpi.at");
    kpi.at = "2026-Q1"; /* a quarter is no day */
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "kpi.at");
    kpi.at = "";
    kpi.key = "\xff\xfe";
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8, NULL);
    char long_key[80];
    memset(long_key, 'k', 79);
    long_key[79] = '\0';
    kpi.key = long_key;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "kpi.key");
    kpi.key = "";
    kpi.after_key = long_key;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "kpi.after_key");
    kpi.after_key = "";
    kpi.limit = 1001;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "kpi.limit");

    Dispatch__ReportQuery report = DISPATCH__REPORT_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_REPORT;
    query.report = &report;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                   "report.period");
    report.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH;
    report.top = 101;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "report.top");
    report.top = 0;
    report.at = "2026-13";
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, "report.at");

    Dispatch__HistoryQuery history = DISPATCH__HISTORY_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_HISTORY;
    query.history = &history;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                   "history.ticket_id");
    history.ticket_id = long_key;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE,
                   "history.ticket_id");
    history.ticket_id = "T-404";
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND,
                   "history.ticket_id");

    Dispatch__VerifyQuery check = DISPATCH__VERIFY_QUERY__INIT;
    check.limit = 2000000;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_VERIFY;
    query.verify = &check;
    assert_refused(ask_raw(f, &query), DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "verify.limit");

    /* Still serving. */
    check.limit = 0;
    const Dispatch__AuditReply *reply = ask(f, &query);
    assert_true(reply->verify->intact);
}

/* ---- KPIs and the special report -------------------------------------------- */

static const Dispatch__KpiRow *kpi_row(fixture_t *f, Dispatch__KpiDimension by,
                                       Dispatch__KpiPeriod period, const char *at, const char *key)
{
    Dispatch__KpiQuery kpi = DISPATCH__KPI_QUERY__INIT;
    kpi.by = by;
    kpi.period = period;
    kpi.at = (char *)at;
    kpi.key = (char *)key;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_KPI;
    query.kpi = &kpi;
    const Dispatch__AuditReply *reply = ask(f, &query);
    assert_null(reply->error);
    assert_int_equal(reply->body_case, DISPATCH__AUDIT_REPLY__BODY_KPI);
    if (reply->kpi->n_rows == 0)
        return NULL;
    assert_int_equal(reply->kpi->n_rows, 1);
    assert_string_equal(reply->kpi->rows[0]->key, key);
    return reply->kpi->rows[0];
}

/* The counts in KpiCounts field order. */
static void assert_counts(const Dispatch__KpiRow *row, const uint64_t expected[14],
                          const char *what)
{
    assert_non_null(row);
    const Dispatch__KpiCounts *c = row->counts;
    const uint64_t got[14] = {
        c->registered,  c->dispatched,       c->signed_for,      c->signed_in_time, c->returned,
        c->resolved,    c->resolved_on_time, c->resolved_solved, c->called_back,    c->satisfied,
        c->unreachable, c->reopened,         c->closed,          c->overdue};
    for (int i = 0; i < 14; i++)
        if (got[i] != expected[i])
            fail_msg("%s: count %d (%s) is %llu, worked out %llu", what, i + 1,
                     dispatch__kpi_counts__descriptor.fields[i].name, (unsigned long long)got[i],
                     (unsigned long long)expected[i]);
}

static void assert_near(double got, double expected)
{
    if (fabs(got - expected) > 1e-12)
        fail_msg("%.15f, worked out %.15f", got, expected);
}

/* The scenario of docs/kpi.md's worked example (all in 2026-11, Q4). */
static void scenario(fixture_t *f)
{
    const Dispatch__Urgency normal = DISPATCH__URGENCY__URGENCY_NORMAL;
    const Dispatch__Satisfaction satisfied = DISPATCH__SATISFACTION__SATISFACTION_SATISFIED;
    const Dispatch__ResolutionResult solved = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED;

    /* A: signed for in time (default 2 h), solved, satisfied, closed. */
    registered(f, "A", "noise", normal, T0, "Wang Fang", "13912345678");
    dispatched(f, "A", "U1", T0 + MINUTE, 0, 0);
    accepted(f, "A", "U1", T0 + 30 * MINUTE);
    resolved(f, "A", "U1", T0 + DAY, solved);
    called_back(f, "A", T0 + DAY + HOUR, satisfied, false);
    closed(f, "A", T0 + DAY + HOUR + MINUTE);

    /* B: the dispatch gives a 30-min sign-for deadline; signed for after
     * 49 min (late, though within the 2-h default); partly solved;
     * unsatisfied -> reopened; dispatched again, signed for in time,
     * solved the next day, basically satisfied, closed. */
    registered(f, "B", "noise", normal, T0 + 10 * MINUTE, "Zhao Min", "13912345679");
    dispatched(f, "B", "U1", T0 + 11 * MINUTE, T0 + 41 * MINUTE, 0);
    accepted(f, "B", "U1", T0 + HOUR);
    resolved(f, "B", "U1", T0 + 2 * HOUR,
             DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_PARTLY_SOLVED);
    called_back(f, "B", T0 + 3 * HOUR, DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED, false);
    reopened(f, "B", T0 + 3 * HOUR);
    dispatched(f, "B", "U1", T0 + 3 * HOUR + MINUTE, 0, 0);
    accepted(f, "B", "U1", T0 + 3 * HOUR + 5 * MINUTE);
    resolved(f, "B", "U1", T0 + DAY + 2 * HOUR, solved);
    called_back(f, "B", T0 + DAY + 3 * HOUR,
                DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED, false);
    closed(f, "B", T0 + DAY + 3 * HOUR + MINUTE);

    /* C: urgent; signed for after 39 min (late: 30 min), resolved after 30 h
     * (late: 24 h from registration), caller unreachable, closed. */
    registered(f, "C", "traffic", DISPATCH__URGENCY__URGENCY_URGENT, T0 + 20 * MINUTE, "Sun Li",
               "13912345680");
    dispatched(f, "C", "U2", T0 + 21 * MINUTE, 0, 0);
    accepted(f, "C", "U2", T0 + HOUR);
    resolved(f, "C", "U2", T0 + 30 * HOUR, solved);
    called_back(f, "C", T0 + 31 * HOUR, DISPATCH__SATISFACTION__SATISFACTION_UNSPECIFIED, true);
    closed(f, "C", T0 + 31 * HOUR + MINUTE);

    /* D arrives out of order: the router's events before intake's
     * registration. Dispatched to U2 with a 1-h handling deadline, returned
     * unsigned, rerouted to U1, signed for in time, extension to 5 h,
     * solved after 4 h: on time thanks to the extension. */
    dispatched(f, "D", "U2", T0 + 31 * MINUTE, 0, T0 + HOUR);
    returned(f, "D", "U2", T0 + 40 * MINUTE);
    dispatched(f, "D", "U1", T0 + 41 * MINUTE, 0, 0);
    accepted(f, "D", "U1", T0 + 50 * MINUTE);
    extension_granted(f, "D", T0 + 55 * MINUTE, T0 + 5 * HOUR);
    resolved(f, "D", "U1", T0 + 4 * HOUR, solved);
    registered(f, "D", "traffic", normal, T0 + 30 * MINUTE, "Qian Jun", "13912345681");

    /* E: registered, never dispatched (triage). */
    registered(f, "E", "water", normal, T0 + 40 * MINUTE, "Zhou Yu", "13912345682");
}

static void test_kpis_equal_the_figures_worked_out_by_hand(void **state)
{
    fixture_t *f = *state;
    scenario(f);
    const Dispatch__KpiPeriod month = DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH;
    const Dispatch__KpiPeriod day = DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY;
    const Dispatch__KpiPeriod quarter = DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER;

    /* U1, 2026-11: dispatched A, B, B again, D (rerouted) = 4; signed for
     * all 4, in time 3 (B's first was late against its own deadline);
     * resolved A, B (partly), B, D = 4, all on time, solved 3; called back
     * A (satisfied), B (unsatisfied), B (basically) = 3, satisfied 2;
     * reopened: B's first resolution = 1; closed A, B = 2. */
    const uint64_t u1[14] = {0, 4, 4, 3, 0, 4, 4, 3, 3, 2, 0, 1, 2, 0};
    const Dispatch__KpiRow *row =
        kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT, month, "2026-11-25", "U1");
    assert_counts(row, u1, "U1 2026-11");
    assert_near(row->rates->response, 3.0 / 4);
    assert_near(row->rates->on_time, 4.0 / 4);
    assert_near(row->rates->resolution, 3.0 / 4);
    assert_near(row->rates->satisfaction, 2.0 / 3);
    assert_near(row->rates->reopen, 1.0 / 4);

    /* U2, 2026-11: dispatched C, D = 2; signed for C only, late; returned D;
     * resolved C, late, solved; C's caller unreachable; closed C. */
    const uint64_t u2[14] = {0, 2, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0};
    row = kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT, month, "2026-11", "U2");
    assert_counts(row, u2, "U2 2026-11");
    assert_near(row->rates->response, 0);
    assert_near(row->rates->on_time, 0);
    assert_near(row->rates->resolution, 1);
    assert_near(row->rates->satisfaction, 0);

    /* The city, 2026-11 and Q4 (the same five tickets). */
    const uint64_t city[14] = {5, 6, 5, 3, 1, 5, 4, 4, 3, 2, 1, 1, 3, 0};
    assert_counts(kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY, month, "", "_"), city,
                  "city 2026-11");
    assert_counts(kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY, quarter, "2026-Q4", "_"),
                  city, "city 2026-Q4");
    assert_counts(
        kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_DISTRICT, month, "2026-11", "cy"), city,
        "district cy 2026-11");

    /* Categories: noise (A, B), traffic (C, D: counted there although the
     * registration came last), water (E). */
    const uint64_t noise[14] = {2, 3, 3, 2, 0, 3, 3, 2, 3, 2, 0, 1, 2, 0};
    const uint64_t traffic[14] = {2, 3, 2, 1, 1, 2, 1, 2, 0, 0, 1, 0, 1, 0};
    const uint64_t water[14] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_counts(
        kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CATEGORY, month, "2026-11", "noise"),
        noise, "noise 2026-11");
    assert_counts(
        kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CATEGORY, month, "2026-11", "traffic"),
        traffic, "traffic 2026-11");
    assert_counts(
        kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CATEGORY, month, "2026-11", "water"),
        water, "water 2026-11");
    /* Nothing was left under "_" by D's early events. */
    assert_null(kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CATEGORY, month, "2026-11", "_"));

    /* Days: U1 on the 26th resolved A and B (solved, on time), both called
     * back satisfied and closed; the city on the 26th also has C. */
    const uint64_t u1_26[14] = {0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 0, 0, 2, 0};
    assert_counts(kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT, day, "2026-11-26", "U1"),
                  u1_26, "U1 2026-11-26");
    const uint64_t city_26[14] = {0, 0, 0, 0, 0, 3, 2, 3, 2, 2, 1, 0, 3, 0};
    assert_counts(kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY, day, "2026-11-26", "_"),
                  city_26, "city 2026-11-26");
    const uint64_t city_25[14] = {5, 6, 5, 3, 1, 2, 2, 1, 1, 0, 0, 1, 0, 0};
    assert_counts(kpi_row(f, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY, day, "2026-11-25", "_"),
                  city_25, "city 2026-11-25");

    /* All units of the month, paged one by one. */
    Dispatch__KpiQuery kpi = DISPATCH__KPI_QUERY__INIT;
    kpi.by = DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT;
    kpi.period = month;
    kpi.at = "2026-11";
    kpi.limit = 1;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_KPI;
    query.kpi = &kpi;
    const Dispatch__AuditReply *reply = ask(f, &query);
    assert_int_equal(reply->kpi->n_rows, 1);
    assert_string_equal(reply->kpi->rows[0]->key, "U1");
    assert_true(reply->kpi->more);
    assert_string_equal(reply->kpi->period_key, "2026-11");
    kpi.after_key = "U1";
    reply = ask(f, &query);
    assert_int_equal(reply->kpi->n_rows, 1);
    assert_string_equal(reply->kpi->rows[0]->key, "U2");
    assert_false(reply->kpi->more);
}

static void test_special_report_equals_the_figures_worked_out_by_hand(void **state)
{
    fixture_t *f = *state;
    scenario(f);
    /* Q3: traffic 3, noise 1, sanitation 1. */
    const Dispatch__Urgency normal = DISPATCH__URGENCY__URGENCY_NORMAL;
    registered(f, "P1", "traffic", normal, Q3_DAY, "Wu Di", "13700000001");
    registered(f, "P2", "traffic", normal, Q3_DAY + HOUR, "Wu Di", "13700000002");
    registered(f, "P3", "traffic", normal, Q3_DAY + 2 * HOUR, "Wu Di", "13700000003");
    registered(f, "P4", "noise", normal, Q3_DAY + 3 * HOUR, "Wu Di", "13700000004");
    registered(f, "P5", "sanitation", normal, Q3_DAY + 4 * HOUR, "Wu Di", "13700000005");

    Dispatch__ReportQuery report_query = DISPATCH__REPORT_QUERY__INIT;
    report_query.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER;
    report_query.at = "2026-Q4";
    report_query.top = 2;
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    query.body_case = DISPATCH__AUDIT_QUERY__BODY_REPORT;
    query.report = &report_query;
    const Dispatch__AuditReply *reply = ask(f, &query);
    assert_int_equal(reply->body_case, DISPATCH__AUDIT_REPLY__BODY_REPORT);
    const Dispatch__SpecialReport *report = reply->report;
    /* Q4: noise 2, traffic 2, water 1 of 5; Q3: traffic 3, noise 1,
     * sanitation 1 of 5. A tie is ranked by name. */
    assert_string_equal(report->report_id, "categories-2026-Q4");
    assert_string_equal(report->period_key, "2026-Q4");
    assert_string_equal(report->previous_key, "2026-Q3");
    assert_int_equal(report->total, 5);
    assert_int_equal(report->previous_total, 5);
    assert_int_equal(report->n_categories, 2);
    const Dispatch__CategoryShare *noise = report->categories[0];
    const Dispatch__CategoryShare *traffic = report->categories[1];
    assert_string_equal(noise->category, "noise");
    assert_int_equal(noise->rank, 1);
    assert_int_equal(noise->count, 2);
    assert_near(noise->share, 0.4);
    assert_int_equal(noise->previous_count, 1);
    assert_near(noise->previous_share, 0.2);
    assert_int_equal(noise->previous_rank, 2);
    assert_int_equal(noise->change, 1);
    assert_near(noise->change_ratio, 1.0);
    assert_string_equal(traffic->category, "traffic");
    assert_int_equal(traffic->rank, 2);
    assert_int_equal(traffic->count, 2);
    assert_near(traffic->share, 0.4);
    assert_int_equal(traffic->previous_count, 3);
    assert_near(traffic->previous_share, 0.6);
    assert_int_equal(traffic->previous_rank, 1);
    assert_int_equal(traffic->change, -1);
    assert_near(traffic->change_ratio, -1.0 / 3);
    assert_near(report->top_share, 0.8);
    assert_near(report->previous_top_share, 0.8);

    /* November against an empty October. */
    report_query.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH;
    report_query.at = "2026-11-25";
    report_query.top = 0;
    reply = ask(f, &query);
    report = reply->report;
    assert_string_equal(report->previous_key, "2026-10");
    assert_int_equal(report->previous_total, 0);
    assert_int_equal(report->n_categories, 3);
    assert_string_equal(report->categories[2]->category, "water");
    assert_near(report->categories[2]->share, 0.2);
    assert_int_equal(report->categories[2]->previous_rank, 0);
    assert_near(report->top_share, 1.0);
    assert_near(report->previous_top_share, 0);

    /* The report holds no caller. */
    size_t len = protobuf_c_message_get_packed_size(&reply->base);
    void *packed = malloc(len);
    protobuf_c_message_pack(&reply->base, packed);
    assert_false(contains(packed, len, "1391234"));
    assert_false(contains(packed, len, "Wang Fang"));
    free(packed);
}

/* ---- pieces ---------------------------------------------------------------- */

static void test_topics_and_masking(void **state)
{
    (void)state;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    Dispatch__TicketClosed body = DISPATCH__TICKET_CLOSED__INIT;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_CLOSED;
    event.ticket_closed = &body;
    char topic[STREAM_TOPIC_SIZE];
    stream_topic(&event, topic, sizeof(topic));
    assert_string_equal(topic, "_.ticket_closed");
    event.district = "chaoyang";
    stream_topic(&event, topic, sizeof(topic));
    assert_string_equal(topic, "chaoyang.ticket_closed");
    event.district = "a.b";
    stream_topic(&event, topic, sizeof(topic));
    assert_string_equal(topic, "_.ticket_closed");

    /* A field added to the contract later (number 99 in Ticket) cannot be
     * masked, so it is dropped. */
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.caller_phone = "13812341234";
    ticket.caller_name = "Maria Lopez";
    Dispatch__TicketRegistered registered_body = DISPATCH__TICKET_REGISTERED__INIT;
    registered_body.ticket = &ticket;
    Dispatch__Event registration = DISPATCH__EVENT__INIT;
    registration.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    registration.ticket_registered = &registered_body;
    unsigned char buf[512];
    size_t len = dispatch__event__pack(&registration, buf);
    /* Append field 99 (string "secret 13900001111") to the ticket: the
     * ticket is the last field written, so extend it in place. */
    Dispatch__Event *decoded = dispatch__event__unpack(NULL, len, buf);
    assert_non_null(decoded);
    ProtobufCMessageUnknownField *unknown = malloc(sizeof(*unknown));
    unknown->tag = 99;
    unknown->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    unknown->len = 18;
    unknown->data = malloc(18);
    memcpy(unknown->data, "secret 13900001111", 18);
    decoded->ticket_registered->ticket->base.unknown_fields = unknown;
    decoded->ticket_registered->ticket->base.n_unknown_fields = 1;
    stream_mask(&decoded->base);
    assert_string_equal(decoded->ticket_registered->ticket->caller_phone, "138****1234");
    assert_string_equal(decoded->ticket_registered->ticket->caller_name, "M**********");
    len = dispatch__event__pack(decoded, buf);
    assert_false(contains(buf, len, "13900001111"));
    dispatch__event__free_unpacked(decoded, NULL);
}

static void test_periods(void **state)
{
    (void)state;
    period_date_t date;
    char key[PERIOD_KEY_SIZE];
    /* 2026-11-25 23:30 in Shanghai is 15:30 UTC: still the 25th there. */
    assert_int_equal(period_date_of(T0 + 14 * HOUR + 30 * MINUTE, &date), 0);
    period_key(DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY, &date, key);
    assert_string_equal(key, "2026-11-25");
    assert_int_equal(period_date_of(T0 + 15 * HOUR, &date), 0);
    period_key(DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY, &date, key);
    assert_string_equal(key, "2026-11-26");
    period_key(DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER, &date, key);
    assert_string_equal(key, "2026-Q4");

    assert_int_equal(period_parse(DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER, "2027-Q1", &date), 0);
    period_date_t previous;
    period_previous(DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER, &date, &previous);
    period_key(DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER, &previous, key);
    assert_string_equal(key, "2026-Q4");
    assert_int_equal(period_parse(DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY, "2024-03-01", &date), 0);
    period_previous(DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY, &date, &previous);
    period_key(DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY, &previous, key);
    assert_string_equal(key, "2024-02-29");
    assert_int_equal(period_parse(DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH, "2026-01", &date), 0);
    period_previous(DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH, &date, &previous);
    period_key(DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH, &previous, key);
    assert_string_equal(key, "2025-12");
    assert_int_equal(period_parse(DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY, "2025-02-29", &date),
                     -EINVAL);
    assert_int_equal(period_parse(DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH, "2026-Q1", &date),
                     -EINVAL);
    assert_int_equal(period_parse(DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER, "2026-Q5", &date),
                     -EINVAL);
    assert_int_equal(period_parse(DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY, "26-11-25", &date),
                     -EINVAL);
}

/* ---- who may ask ------------------------------------------------------- */

/* Each query needs a role the table gives it (authz.h): the log and the
 * figures for auditor, supervisor, leader and admin; verification for
 * auditor and admin; nothing for an operator or a unit. */
static void test_queries_need_a_role_of_the_table(void **state)
{
    fixture_t *f = *state;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    Dispatch__TicketRegistered registered = DISPATCH__TICKET_REGISTERED__INIT;
    event.ticket_id = "T-1";
    event.at = T0;
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    event.ticket_registered = &registered;
    record(f, &event);

    Dispatch__VerifyQuery check = DISPATCH__VERIFY_QUERY__INIT;
    Dispatch__KpiQuery kpi = DISPATCH__KPI_QUERY__INIT;
    kpi.by = DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY;
    kpi.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY;
    kpi.at = "2026-11-25";
    Dispatch__ReplayRequest replay = DISPATCH__REPLAY_REQUEST__INIT;
    replay.from_seq = 1;
    Dispatch__AuditQuery queries[3] = {DISPATCH__AUDIT_QUERY__INIT, DISPATCH__AUDIT_QUERY__INIT,
                                       DISPATCH__AUDIT_QUERY__INIT};
    queries[0].body_case = DISPATCH__AUDIT_QUERY__BODY_REPLAY;
    queries[0].replay = &replay;
    queries[1].body_case = DISPATCH__AUDIT_QUERY__BODY_KPI;
    queries[1].kpi = &kpi;
    queries[2].body_case = DISPATCH__AUDIT_QUERY__BODY_VERIFY;
    queries[2].verify = &check;

    const struct {
        unsigned roles;
        bool allowed[3]; /* replay, kpi, verify */
    } cases[] = {
        {AUTH_ROLE_AUDITOR, {true, true, true}}, {AUTH_ROLE_SUPERVISOR, {true, true, false}},
        {AUTH_ROLE_LEADER, {true, true, false}}, {AUTH_ROLE_OPERATOR, {false, false, false}},
        {AUTH_ROLE_UNIT, {false, false, false}}, {0, {false, false, false}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        auth_actor_t key = {.kind = AUTH_KIND_PERSON, .roles = cases[i].roles};
        snprintf(key.name, sizeof(key.name), "person-%zu", i);
        f->actor = &key;
        for (size_t q = 0; q < 3; q++) {
            const Dispatch__AuditReply *reply = ask(f, &queries[q]);
            if (cases[i].allowed[q]) {
                assert_null(reply->error);
            } else {
                assert_non_null(reply->error);
                assert_int_equal(reply->error->code, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN);
                assert_non_null(strstr(reply->error->message, key.name));
            }
        }
    }
    f->actor = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_follows_the_documented_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_event_is_recorded_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_events_are_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_the_edited_deleted_or_moved_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_is_masked_ordered_and_paged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_reply_stays_under_60_kib, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_queries_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kpis_equal_the_figures_worked_out_by_hand, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_special_report_equals_the_figures_worked_out_by_hand,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_need_a_role_of_the_table, setup, teardown),
        cmocka_unit_test(test_topics_and_masking),
        cmocka_unit_test(test_periods),
    };
    setenv("TZ", "Asia/Shanghai", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

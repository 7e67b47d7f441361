/* Unit tests for common/pbjson: a Ticket with Chinese text, quotes,
 * newlines and control characters, repeated fields, enums, int64, nested
 * messages; a oneof; bytes; text that is not UTF-8; a failing stream. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.pb-c.h"
#include "pbjson.h"

/* pbjson output of msg as a malloc'ed string. */
static char *to_json(const ProtobufCMessage *msg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(pbjson_write(out, msg), 0);
    assert_int_equal(fclose(out), 0);
    return text;
}

static void expect_json(const ProtobufCMessage *msg, const char *expected)
{
    char *text = to_json(msg);
    assert_string_equal(text, expected);
    free(text);
}

static void expect_escaped(const char *in, size_t len, const char *expected)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    pbjson_write_string(out, in, len);
    assert_int_equal(fclose(out), 0);
    assert_string_equal(text, expected);
    free(text);
}

static void make_ticket(Dispatch__Ticket *ticket, Dispatch__Location *location,
                        Dispatch__GeoPoint *point, char **assisting)
{
    dispatch__ticket__init(ticket);
    dispatch__location__init(location);
    dispatch__geo_point__init(point);
    point->lat_e6 = 43880000;
    point->lon_e6 = -125320000;
    location->address = "人民大街1号 \"东门\"";
    location->point = point;
    ticket->id = "CY-20261125-000123";
    ticket->channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    ticket->kind = DISPATCH__KIND__KIND_COMPLAINT;
    ticket->category = "noise";
    ticket->urgency = DISPATCH__URGENCY__URGENCY_URGENT;
    ticket->district = "chaoyang";
    ticket->location = location;
    ticket->caller_name = "张三丰";
    ticket->caller_phone = "13812341234";
    ticket->description = "楼下烧烤\n噪音很大\t\"每晚\" C:\\tmp \x01\x1b[31m";
    ticket->state = DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED;
    assisting[0] = "u-water";
    assisting[1] = "u-police";
    ticket->n_assisting_units = 2;
    ticket->assisting_units = assisting;
    ticket->registered_at = 1764032400000;
    ticket->deadline_handle = -1; /* negative int64: still a string */
    ticket->reopen_count = 2;
}

static const char ticket_json[] =
    "{\"id\":\"CY-20261125-000123\","
    "\"channel\":\"CHANNEL_PHONE\","
    "\"kind\":\"KIND_COMPLAINT\","
    "\"category\":\"noise\","
    "\"urgency\":\"URGENCY_URGENT\","
    "\"district\":\"chaoyang\","
    "\"location\":{\"address\":\"人民大街1号 \\\"东门\\\"\","
    "\"point\":{\"lat_e6\":43880000,\"lon_e6\":-125320000}},"
    "\"caller_name\":\"张三丰\","
    "\"caller_phone\":\"13812341234\","
    "\"description\":\"楼下烧烤\\n噪音很大\\t\\\"每晚\\\" C:\\\\tmp \\u0001\\u001b[31m\","
    "\"state\":\"TICKET_STATE_DISPATCHED\","
    "\"assisting_units\":[\"u-water\",\"u-police\"],"
    "\"registered_at\":\"1764032400000\","
    "\"deadline_handle\":\"-1\","
    "\"reopen_count\":2}";

static void test_ticket(void **state)
{
    (void)state;
    Dispatch__Ticket ticket;
    Dispatch__Location location;
    Dispatch__GeoPoint point;
    char *assisting[2];
    make_ticket(&ticket, &location, &point, assisting);
    expect_json(&ticket.base, ticket_json);
}

static void test_defaults_left_out(void **state)
{
    (void)state;
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    expect_json(&ticket.base, "{}");
    /* A present sub-message is written even when empty. */
    Dispatch__Location location = DISPATCH__LOCATION__INIT;
    Dispatch__GeoPoint point = DISPATCH__GEO_POINT__INIT;
    location.point = &point;
    ticket.location = &location;
    expect_json(&ticket.base, "{\"location\":{\"point\":{}}}");
}

static void test_oneof_and_nested(void **state)
{
    (void)state;
    Dispatch__Ticket ticket;
    Dispatch__Location location;
    Dispatch__GeoPoint point;
    char *assisting[2];
    make_ticket(&ticket, &location, &point, assisting);

    Dispatch__HistoryEntry entries[2];
    Dispatch__HistoryEntry *history[2] = {&entries[0], &entries[1]};
    dispatch__history_entry__init(&entries[0]);
    entries[0].at = 1764032400000;
    entries[0].type = DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REGISTERED;
    entries[0].actor = "op-7";
    dispatch__history_entry__init(&entries[1]);
    entries[1].at = 1764032460000;
    entries[1].type = DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_DISPATCHED;
    entries[1].actor = "system";
    entries[1].unit_id = "u-env";
    entries[1].text = "规则: 噪音";

    Dispatch__TicketView view = DISPATCH__TICKET_VIEW__INIT;
    view.ticket = &ticket;
    view.n_history = 2;
    view.history = history;
    Dispatch__Reply reply = DISPATCH__REPLY__INIT;
    reply.tag = UINT64_MAX;
    reply.body_case = DISPATCH__REPLY__BODY_TICKET;
    reply.ticket = &view;

    char expected[4096];
    snprintf(expected, sizeof(expected),
             "{\"tag\":\"18446744073709551615\",\"ticket\":{\"ticket\":%s,\"history\":["
             "{\"at\":\"1764032400000\",\"type\":\"EVENT_TYPE_TICKET_REGISTERED\","
             "\"actor\":\"op-7\"},"
             "{\"at\":\"1764032460000\",\"type\":\"EVENT_TYPE_TICKET_DISPATCHED\","
             "\"actor\":\"system\",\"unit_id\":\"u-env\",\"text\":\"规则: 噪音\"}]}}",
             ticket_json);
    expect_json(&reply.base, expected);
}

static void test_oneof_member_at_default(void **state)
{
    (void)state;
    /* The chosen member is written even when it is empty or zero; the
     * other members of the oneof never. */
    Dispatch__SubmitReply submit = DISPATCH__SUBMIT_REPLY__INIT;
    Dispatch__Reply reply = DISPATCH__REPLY__INIT;
    reply.body_case = DISPATCH__REPLY__BODY_SUBMIT;
    reply.submit = &submit;
    expect_json(&reply.base, "{\"submit\":{}}");

    Dispatch__Error error = DISPATCH__ERROR__INIT;
    error.code = DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND;
    error.message = "no ticket CY-1";
    error.field = "get_ticket.ticket_id";
    reply.body_case = DISPATCH__REPLY__BODY_ERROR;
    reply.error = &error;
    expect_json(&reply.base, "{\"error\":{\"code\":\"ERROR_CODE_NOT_FOUND\","
                             "\"message\":\"no ticket CY-1\","
                             "\"field\":\"get_ticket.ticket_id\"}}");

    Dispatch__UnitAck ack = DISPATCH__UNIT_ACK__INIT;
    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    action.unit_id = "u-1";
    action.body_case = DISPATCH__UNIT_ACTION__BODY_ACK;
    action.ack = &ack;
    expect_json(&action.base, "{\"unit_id\":\"u-1\",\"ack\":{}}");
}

static void test_enum_not_declared(void **state)
{
    (void)state;
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.state = 99;
    ticket.supervision = DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_CITY;
    expect_json(&ticket.base, "{\"state\":99,\"supervision\":\"SUPERVISION_LEVEL_CITY\"}");
}

static void test_bytes_base64(void **state)
{
    (void)state;
    uint8_t prev[1] = {0xff};
    uint8_t hash[5] = {'h', 'e', 'l', 'l', 'o'};
    Dispatch__AuditRecord record = DISPATCH__AUDIT_RECORD__INIT;
    record.seq = 42;
    record.prev_hash.data = prev;
    record.prev_hash.len = sizeof(prev);
    record.hash.data = hash;
    record.hash.len = sizeof(hash);
    expect_json(&record.base, "{\"seq\":\"42\",\"prev_hash\":\"/w==\",\"hash\":\"aGVsbG8=\"}");
    uint8_t six[6] = {0xfb, 0xff, 0xbf, 0x00, 0x01, 0x02};
    record.hash.data = six;
    record.hash.len = sizeof(six);
    record.prev_hash.len = 0;
    expect_json(&record.base, "{\"seq\":\"42\",\"hash\":\"+/+/AAEC\"}");
}

static void test_string_escapes(void **state)
{
    (void)state;
    expect_escaped("", 0, "\"\"");
    expect_escaped("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    expect_escaped("\b\f\n\r\t\x7f", 6, "\"\\b\\f\\n\\r\\t\\u007f\"");
    /* An embedded NUL is data too. */
    expect_escaped("a\0b", 3, "\"a\\u0000b\"");
    /* Two-, three- and four-byte UTF-8, U+2028 included, pass through. */
    expect_escaped("é中😀\xe2\x80\xa8", 12, "\"é中😀\xe2\x80\xa8\"");
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    /* stray continuation byte; truncated sequence at the end */
    expect_escaped("a\x80z\xe4\xb8", 5, "\"a\\ufffdz\\ufffd\\ufffd\"");
    /* overlong "/"; a UTF-16 surrogate; past U+10FFFF */
    expect_escaped("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
    expect_escaped("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
    expect_escaped("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    /* valid text around a bad byte stays intact */
    expect_escaped("中\xff文", 7, "\"中\\ufffd文\"");
}

static void test_write_error(void **state)
{
    (void)state;
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    assert_int_equal(pbjson_write(stdout, NULL), -EINVAL);
    FILE *readonly = fopen("/dev/null", "r");
    assert_non_null(readonly);
    ticket.id = "x";
    int rc = pbjson_write(readonly, &ticket.base);
    fclose(readonly);
    assert_int_equal(rc, -EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticket),
        cmocka_unit_test(test_defaults_left_out),
        cmocka_unit_test(test_oneof_and_nested),
        cmocka_unit_test(test_oneof_member_at_default),
        cmocka_unit_test(test_enum_not_declared),
        cmocka_unit_test(test_bytes_base64),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_write_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for common/mask: phones of every length reveal at most 7
 * digits, names keep one UTF-8 character, addresses their head, free text
 * only its length, and small buffers cut the result safely; mask_message()
 * masks exactly the fields marked personal in dispatch.proto, at any depth,
 * and no field that is merely named like one. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.pb-c.h"
#include "mask.h"
#include "mask_probe.pb-c.h"

static void expect_masked(personal_kind_t kind, const char *in, const char *expected)
{
    char out[128];
    memset(out, 'x', sizeof(out));
    mask_as(kind, in, out, sizeof(out));
    assert_string_equal(out, expected);
}

static void expect_phone(const char *in, const char *expected)
{
    expect_masked(PERSONAL_PHONE, in, expected);
}

static void expect_name(const char *in, const char *expected)
{
    expect_masked(PERSONAL_NAME, in, expected);
}

static void test_mobile_numbers(void **state)
{
    (void)state;
    expect_phone("13812341234", "138****1234");
    expect_phone("15900000000", "159****0000");
    /* with separators and a country code: digits still counted as one run */
    expect_phone("138-1234-1234", "138-****-1234");
    expect_phone("+86 138 1234 1234", "+86 1** **** 1234");
    /* a landline with area code, 12 digits */
    expect_phone("043188881234", "043*****1234");
}

static void test_short_numbers(void **state)
{
    (void)state;
    expect_phone("88881234", "******34");
    expect_phone("12345", "***45");
    expect_phone("1234", "**34");
    expect_phone("110", "**0");
    expect_phone("12", "*2");
    expect_phone("7", "*");
    expect_phone("", "");
    expect_phone(NULL, "");
    expect_phone("0431-888812", "****-****12"); /* 10 digits: still short */
}

static void test_other_characters_never_leak(void **state)
{
    (void)state;
    expect_phone("138abc1234x", "********34*");
    expect_phone("ext. 12", "***. *2");
    /* full-width digits are not digits here: one star per character */
    expect_phone("\xEF\xBC\x91\xEF\xBC\x93\xEF\xBC\x98", "***");
    /* stray bytes that are not UTF-8 are starred one by one */
    expect_phone("\xFF\xFE", "**");
}

static size_t count_digits(const char *text)
{
    size_t n = 0;
    for (; *text != '\0'; text++)
        n += *text >= '0' && *text <= '9';
    return n;
}

static void test_never_more_than_seven_digits(void **state)
{
    (void)state;
    char number[40];
    char out[40];
    for (size_t length = 0; length < 32; length++) {
        for (size_t i = 0; i < length; i++)
            number[i] = (char)('1' + i % 9);
        number[length] = '\0';
        mask_phone(number, out, sizeof(out));
        assert_int_equal(strlen(out), length);
        size_t revealed = count_digits(out);
        assert_true(revealed <= 7);
        if (length < 11)
            assert_true(revealed * 2 <= length);
        else
            assert_int_equal(revealed, 7);
    }
}

static void test_phone_truncation(void **state)
{
    (void)state;
    char out[16];
    mask_phone("13812341234", out, 6);
    assert_string_equal(out, "138**");
    mask_phone("13812341234", out, 1);
    assert_string_equal(out, "");
    memset(out, 'x', sizeof(out));
    mask_phone("13812341234", out, 0);
    assert_int_equal(out[0], 'x'); /* len 0: not even a NUL */
    mask_phone("13812341234", NULL, 0);
    mask_phone("13812341234", out, 12);
    assert_string_equal(out, "138****1234");
}

static void test_names(void **state)
{
    (void)state;
    expect_name("张三丰", "张**");
    expect_name("张三", "张*");
    expect_name("李", "李");
    expect_name("Maria Lopez", "M**********");
    expect_name("Zoë", "Z**");
    expect_name("  Ann \t", "A**");
    expect_name("\xF0\x9F\x98\x80"
                "ab",
                "\xF0\x9F\x98\x80**"); /* 4-byte first character */
    expect_name("", "");
    expect_name("   ", "");
    expect_name(NULL, "");
}

static void test_names_not_utf8(void **state)
{
    (void)state;
    expect_name("\xFF\xFE"
                "ab",
                "****"); /* invalid first byte is not revealed */
    expect_name("\xC0\xAF"
                "x",
                "***");                 /* overlong '/' */
    expect_name("\xED\xA0\x80", "***"); /* UTF-16 surrogate */
    expect_name("\xE5\xBC", "**");      /* cut-off sequence */
    expect_name("\x01"
                "bc",
                "***"); /* control character */
    expect_name("A\xE5\xBC", "A**");
}

static void test_name_truncation(void **state)
{
    (void)state;
    char out[8];
    mask_name("张三丰", out, 3); /* 张 needs 3 bytes, only 2 fit: nothing */
    assert_string_equal(out, "");
    mask_name("张三丰", out, 4);
    assert_string_equal(out, "张");
    mask_name("张三丰", out, 5);
    assert_string_equal(out, "张*");
    mask_name("张三丰", out, 6);
    assert_string_equal(out, "张**");
    mask_name("Maria Lopez", out, 4);
    assert_string_equal(out, "M**");
    mask_name("Maria Lopez", out, 1);
    assert_string_equal(out, "");
    memset(out, 'x', sizeof(out));
    mask_name("Maria", out, 0);
    assert_int_equal(out[0], 'x');
}

static void test_addresses(void **state)
{
    (void)state;
    expect_masked(PERSONAL_ADDRESS, "北京市朝阳区建国路88号", "北京市朝阳区******");
    expect_masked(PERSONAL_ADDRESS, "12 Main Street", "12 Mai********");
    expect_masked(PERSONAL_ADDRESS, "Room 5", "Roo***"); /* never more than half */
    expect_masked(PERSONAL_ADDRESS, " 长安街 ", "长**");
    expect_masked(PERSONAL_ADDRESS, "a", "*");
    expect_masked(PERSONAL_ADDRESS, "", "");
    expect_masked(PERSONAL_ADDRESS, NULL, "");
    expect_masked(PERSONAL_ADDRESS,
                  "\x01"
                  "bcdefgh",
                  "*bcd****"); /* a control character is not kept */
    expect_masked(PERSONAL_ADDRESS,
                  "ab\xFF"
                  "defgh",
                  "ab*d****"); /* nor a byte that is not UTF-8 */
}

static void test_free_text(void **state)
{
    (void)state;
    expect_masked(PERSONAL_TEXT, "Call me at 13812341234", "**********************");
    expect_masked(PERSONAL_TEXT, "井盖丢了", "****");
    expect_masked(PERSONAL_TEXT, "\n  two\nlines \n", "*********");
    expect_masked(PERSONAL_TEXT, "", "");
    expect_masked(PERSONAL_TEXT, NULL, "");
}

/* Every mask fits over its input: mask_message() relies on it. */
static void test_results_never_longer(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "13812341234",  "+86 (10) 8888-1234", "张三丰", "Maria Lopez", "北京市朝阳区建国路88号",
        "\xFF\xFE\xFD", "\xE5\xBC",           "a",      " x ",         "ext. 12 \xEF\xBC\x91",
    };
    static const personal_kind_t kinds[] = {PERSONAL_PHONE, PERSONAL_NAME, PERSONAL_ADDRESS,
                                            PERSONAL_TEXT};
    char out[128];
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            mask_as(kinds[k], inputs[i], out, sizeof(out));
            assert_true(strlen(out) <= strlen(inputs[i]));
        }
}

/* ---- mask_message --------------------------------------------------------- */

/* Every message with a field marked personal in dispatch.proto. A mark on a
 * message not listed here fails test_every_marked_message_is_checked: add
 * the message, and the tests below check it. */
static const ProtobufCMessageDescriptor *const marked_messages[] = {
    &dispatch__location__descriptor,        &dispatch__ticket__descriptor,
    &dispatch__submit_ticket__descriptor,   &dispatch__callback__descriptor,
    &dispatch__reopened_ticket__descriptor, &dispatch__called_back__descriptor,
    &dispatch__ticket_reopened__descriptor,
};

#define SAMPLE "  Wang Fang, 13812341234, 建国路88号  "

static const personal_field_t *find_mark(const ProtobufCMessageDescriptor *descriptor,
                                         uint32_t number)
{
    for (size_t i = 0; i < personal_field_count; i++)
        if (strcmp(personal_fields[i].message, descriptor->name) == 0 &&
            personal_fields[i].number == number)
            return &personal_fields[i];
    return NULL;
}

/* A message of `descriptor` with SAMPLE in each of its singular string
 * fields (a oneof member is set); free with protobuf_c_message_free_unpacked. */
static ProtobufCMessage *sample_message(const ProtobufCMessageDescriptor *descriptor)
{
    ProtobufCMessage *msg = malloc(descriptor->sizeof_message);
    assert_non_null(msg);
    protobuf_c_message_init(descriptor, msg);
    char *base = (char *)msg;
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        if (field->type != PROTOBUF_C_TYPE_STRING || field->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        *(char **)(base + field->offset) = strdup(SAMPLE);
        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)(base + field->quantifier_offset) = field->id;
    }
    return msg;
}

/* Masks a sample of descriptor with `kinds` and checks every string field:
 * masked as its kind when it is marked with one of kinds, else untouched. */
static void check_masks_exactly(const ProtobufCMessageDescriptor *descriptor, unsigned kinds)
{
    ProtobufCMessage *msg = sample_message(descriptor);
    mask_message(msg, kinds);
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[i];
        if (field->type != PROTOBUF_C_TYPE_STRING || field->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        const char *value = *(char *const *)(base + field->offset);
        const personal_field_t *mark = find_mark(descriptor, field->id);
        char expected[128];
        if (mark && (mark->kind & kinds)) {
            mask_as(mark->kind, SAMPLE, expected, sizeof(expected));
            assert_string_not_equal(expected, SAMPLE);
        } else {
            snprintf(expected, sizeof(expected), "%s", SAMPLE);
        }
        if (strcmp(value, expected) != 0)
            fail_msg("%s.%s with kinds %#x: \"%s\", expected \"%s\"", descriptor->name, field->name,
                     kinds, value, expected);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

static void test_every_marked_message_is_checked(void **state)
{
    (void)state;
    assert_true(personal_field_count > 0);
    for (size_t i = 0; i < personal_field_count; i++) {
        const personal_field_t *mark = &personal_fields[i];
        const ProtobufCMessageDescriptor *descriptor = NULL;
        for (size_t m = 0; m < sizeof(marked_messages) / sizeof(marked_messages[0]); m++)
            if (strcmp(marked_messages[m]->name, mark->message) == 0)
                descriptor = marked_messages[m];
        if (!descriptor)
            fail_msg("%s.%s is marked personal: list %s in marked_messages", mark->message,
                     mark->name, mark->message);
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field(descriptor, mark->number);
        assert_non_null(field);
        assert_string_equal(field->name, mark->name);
        assert_int_equal(field->type, PROTOBUF_C_TYPE_STRING);
    }
}

static void test_marked_fields_are_the_caller_data(void **state)
{
    (void)state;
    static const struct {
        const ProtobufCMessageDescriptor *message;
        const char *field;
        personal_kind_t kind;
    } expected[] = {
        {&dispatch__ticket__descriptor, "caller_phone", PERSONAL_PHONE},
        {&dispatch__ticket__descriptor, "caller_name", PERSONAL_NAME},
        {&dispatch__ticket__descriptor, "description", PERSONAL_TEXT},
        {&dispatch__submit_ticket__descriptor, "caller_phone", PERSONAL_PHONE},
        {&dispatch__submit_ticket__descriptor, "caller_name", PERSONAL_NAME},
        {&dispatch__submit_ticket__descriptor, "description", PERSONAL_TEXT},
        {&dispatch__location__descriptor, "address", PERSONAL_ADDRESS},
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name(expected[i].message, expected[i].field);
        assert_non_null(field);
        const personal_field_t *mark = find_mark(expected[i].message, field->id);
        assert_non_null(mark);
        assert_int_equal(mark->kind, expected[i].kind);
    }
}

static void test_masks_exactly_the_marked_fields(void **state)
{
    (void)state;
    static const unsigned kind_sets[] = {
        PERSONAL_PHONE,
        PERSONAL_NAME,
        PERSONAL_ADDRESS,
        PERSONAL_TEXT,
        PERSONAL_PHONE | PERSONAL_NAME,
        PERSONAL_ALL,
        0,
    };
    for (size_t m = 0; m < sizeof(marked_messages) / sizeof(marked_messages[0]); m++)
        for (size_t k = 0; k < sizeof(kind_sets) / sizeof(kind_sets[0]); k++)
            check_masks_exactly(marked_messages[m], kind_sets[k]);
}

/* A ticket as it travels: packed inside an event inside an audit record,
 * then unpacked, as the audit does. */
static Dispatch__AuditRecord *unpacked_record(void)
{
    Dispatch__Location location = DISPATCH__LOCATION__INIT;
    location.address = "北京市朝阳区建国路88号";
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.caller_phone = "13812341234";
    ticket.caller_name = "Maria Lopez";
    ticket.description = "cover missing";
    ticket.category = "manhole-cover";
    ticket.location = &location;
    Dispatch__TicketRegistered registered = DISPATCH__TICKET_REGISTERED__INIT;
    registered.ticket = &ticket;
    Dispatch__Event event = DISPATCH__EVENT__INIT;
    event.actor = "Maria Lopez"; /* an actor id, never personal data here */
    event.body_case = DISPATCH__EVENT__BODY_TICKET_REGISTERED;
    event.ticket_registered = &registered;
    Dispatch__AuditRecord record = DISPATCH__AUDIT_RECORD__INIT;
    record.seq = 1;
    record.event = &event;
    uint8_t buf[1024];
    size_t len = dispatch__audit_record__pack(&record, buf);
    assert_true(len <= sizeof(buf));
    Dispatch__AuditRecord *unpacked = dispatch__audit_record__unpack(NULL, len, buf);
    assert_non_null(unpacked);
    return unpacked;
}

static void test_nested_ticket(void **state)
{
    (void)state;
    Dispatch__AuditRecord *record = unpacked_record();
    mask_message(&record->base, PERSONAL_PHONE | PERSONAL_NAME);
    const Dispatch__Ticket *ticket = record->event->ticket_registered->ticket;
    assert_string_equal(ticket->caller_phone, "138****1234");
    assert_string_equal(ticket->caller_name, "M**********");
    assert_string_equal(ticket->description, "cover missing");
    assert_string_equal(ticket->location->address, "北京市朝阳区建国路88号");
    assert_string_equal(ticket->category, "manhole-cover");
    assert_string_equal(record->event->actor, "Maria Lopez");
    dispatch__audit_record__free_unpacked(record, NULL);

    record = unpacked_record();
    mask_message(&record->base, PERSONAL_ALL);
    ticket = record->event->ticket_registered->ticket;
    assert_string_equal(ticket->caller_phone, "138****1234");
    assert_string_equal(ticket->description, "*************");
    assert_string_equal(ticket->location->address, "北京市朝阳区******");
    assert_string_equal(ticket->category, "manhole-cover");
    dispatch__audit_record__free_unpacked(record, NULL);
}

static void test_nested_submit(void **state)
{
    (void)state;
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    submit.caller_phone = "+8613812341234";
    submit.caller_name = "张三丰";
    submit.client_request_id = "13812341234";
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &submit;
    uint8_t buf[256];
    size_t len = dispatch__request__pack(&request, buf);
    Dispatch__Request *unpacked = dispatch__request__unpack(NULL, len, buf);
    assert_non_null(unpacked);
    mask_message(&unpacked->base, PERSONAL_PHONE | PERSONAL_NAME);
    assert_string_equal(unpacked->submit->caller_phone, "+861******1234");
    assert_string_equal(unpacked->submit->caller_name, "张**");
    assert_string_equal(unpacked->submit->client_request_id, "13812341234");
    dispatch__request__free_unpacked(unpacked, NULL);
}

/* Fields named like personal ones but not marked stay as they are; the
 * marked ticket inside is masked; unknown fields are dropped. */
static void test_names_alone_mask_nothing(void **state)
{
    (void)state;
    Dispatch__Ticket ticket = DISPATCH__TICKET__INIT;
    ticket.caller_phone = "13812341234";
    Masktest__Probe probe = MASKTEST__PROBE__INIT;
    probe.caller_phone = "13812341234";
    probe.caller_name = "Maria Lopez";
    probe.description = "cover missing";
    probe.address = "12 Main Street";
    probe.ticket = &ticket;
    uint8_t buf[256];
    size_t len = masktest__probe__pack(&probe, buf);
    /* field 99, a string this build does not know: "13900001111" */
    static const uint8_t unknown[] = {0x9a, 0x06, 11,  '1', '3', '9', '0',
                                      '0',  '0',  '0', '1', '1', '1', '1'};
    memcpy(buf + len, unknown, sizeof(unknown));
    len += sizeof(unknown);
    Masktest__Probe *unpacked = masktest__probe__unpack(NULL, len, buf);
    assert_non_null(unpacked);
    assert_int_equal(unpacked->base.n_unknown_fields, 1);
    mask_message(&unpacked->base, PERSONAL_ALL);
    assert_string_equal(unpacked->caller_phone, "13812341234");
    assert_string_equal(unpacked->caller_name, "Maria Lopez");
    assert_string_equal(unpacked->description, "cover missing");
    assert_string_equal(unpacked->address, "12 Main Street");
    assert_string_equal(unpacked->ticket->caller_phone, "138****1234");
    assert_int_equal(unpacked->base.n_unknown_fields, 0);
    masktest__probe__free_unpacked(unpacked, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mobile_numbers),
        cmocka_unit_test(test_short_numbers),
        cmocka_unit_test(test_other_characters_never_leak),
        cmocka_unit_test(test_never_more_than_seven_digits),
        cmocka_unit_test(test_phone_truncation),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_names_not_utf8),
        cmocka_unit_test(test_name_truncation),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_free_text),
        cmocka_unit_test(test_results_never_longer),
        cmocka_unit_test(test_every_marked_message_is_checked),
        cmocka_unit_test(test_marked_fields_are_the_caller_data),
        cmocka_unit_test(test_masks_exactly_the_marked_fields),
        cmocka_unit_test(test_nested_ticket),
        cmocka_unit_test(test_nested_submit),
        cmocka_unit_test(test_names_alone_mask_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

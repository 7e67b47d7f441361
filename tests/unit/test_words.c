/* Unit tests for common/words: the word of every value of every enum of
 * the contract comes from its descriptor and parses back; every word the
 * command line, the data files and the deadline table accepted before the
 * rule is still accepted, and every word they printed is printed the same. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <string.h>

#include "dispatch.pb-c.h"
#include "words.h"

static const ProtobufCEnumDescriptor *const contract_enums[] = {
    &dispatch__channel__descriptor,
    &dispatch__kind__descriptor,
    &dispatch__urgency__descriptor,
    &dispatch__ticket_state__descriptor,
    &dispatch__satisfaction__descriptor,
    &dispatch__resolution_result__descriptor,
    &dispatch__supervision_level__descriptor,
    &dispatch__error_code__descriptor,
    &dispatch__emergency_line__descriptor,
    &dispatch__unit_level__descriptor,
    &dispatch__role__descriptor,
    &dispatch__handling_role__descriptor,
    &dispatch__return_reason__descriptor,
    &dispatch__triage_cause__descriptor,
    &dispatch__dispatch_cause__descriptor,
    &dispatch__deadline_kind__descriptor,
    &dispatch__queue_kind__descriptor,
    &dispatch__event_type__descriptor,
    &dispatch__kpi_dimension__descriptor,
    &dispatch__kpi_period__descriptor,
};

static void expect_word(const ProtobufCEnumDescriptor *descriptor, int value, const char *word)
{
    char buf[WORDS_SIZE];
    assert_int_equal(words_name(descriptor, value, buf, sizeof(buf)), 0);
    assert_string_equal(buf, word);
}

static void expect_parse(const ProtobufCEnumDescriptor *descriptor, const char *word, int value)
{
    int parsed = -1;
    if (words_parse(descriptor, word, &parsed) != 0)
        fail_msg("%s: '%s' is not accepted", descriptor->name, word);
    assert_int_equal(parsed, value);
}

static void expect_refused(const ProtobufCEnumDescriptor *descriptor, const char *word)
{
    int parsed = -1;
    assert_int_equal(words_parse(descriptor, word, &parsed), -EINVAL);
    assert_int_equal(parsed, -1);
}

static void test_words_from_the_descriptor(void **state)
{
    (void)state;
    expect_word(&dispatch__satisfaction__descriptor,
                DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED, "basically-satisfied");
    expect_word(&dispatch__channel__descriptor, DISPATCH__CHANNEL__CHANNEL_OPEN311, "open311");
    expect_word(&dispatch__channel__descriptor, DISPATCH__CHANNEL__CHANNEL_MESSAGE_BOARD,
                "message-board");
    expect_word(&dispatch__emergency_line__descriptor,
                DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_POLICE_110, "police-110");
    expect_word(&dispatch__resolution_result__descriptor,
                DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_NOT_SOLVED, "not-solved");
    expect_word(&dispatch__kpi_dimension__descriptor, DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY,
                "city");
    /* a 0 with a meaning has a word */
    expect_word(&dispatch__supervision_level__descriptor,
                DISPATCH__SUPERVISION_LEVEL__SUPERVISION_LEVEL_NONE, "none");
    expect_word(&dispatch__error_code__descriptor, DISPATCH__ERROR_CODE__ERROR_CODE_OK, "ok");
}

static void test_unspecified_and_unknown_have_no_word(void **state)
{
    (void)state;
    char buf[WORDS_SIZE] = "x";
    assert_int_equal(words_name(&dispatch__kind__descriptor, 0, buf, sizeof(buf)), -EINVAL);
    assert_string_equal(buf, "");
    assert_int_equal(words_name(&dispatch__kind__descriptor, 99, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(words_name(&dispatch__kind__descriptor, -1, buf, sizeof(buf)), -EINVAL);
    char small[8];
    assert_int_equal(words_name(&dispatch__channel__descriptor,
                                DISPATCH__CHANNEL__CHANNEL_MESSAGE_BOARD, small, sizeof(small)),
                     -ENOSPC);
    assert_string_equal(small, "");
    assert_int_equal(words_name(&dispatch__kind__descriptor, DISPATCH__KIND__KIND_HELP, small, 0),
                     -ENOSPC);

    expect_refused(&dispatch__kind__descriptor, "unspecified");
    expect_refused(&dispatch__kind__descriptor, "");
    expect_refused(&dispatch__kind__descriptor, NULL);
    expect_refused(&dispatch__kind__descriptor, "KIND_HELP");
    expect_refused(&dispatch__kind__descriptor, "hel");
    expect_refused(&dispatch__kind__descriptor, "helps");
    expect_refused(&dispatch__channel__descriptor, "message_board");
    expect_refused(&dispatch__channel__descriptor, "message board");
    expect_refused(&dispatch__satisfaction__descriptor, "basically satisfied");
    expect_refused(&dispatch__satisfaction__descriptor, "partly"); /* another enum's alias */
}

static void test_suffixes(void **state)
{
    (void)state;
    assert_string_equal(words_suffix(&dispatch__ticket_state__descriptor,
                                     DISPATCH__TICKET_STATE__TICKET_STATE_DISPATCHED),
                        "DISPATCHED");
    assert_string_equal(words_suffix(&dispatch__ticket_state__descriptor, 0), "UNSPECIFIED");
    assert_string_equal(words_suffix(&dispatch__error_code__descriptor, 0), "OK");
    assert_string_equal(words_suffix(&dispatch__event_type__descriptor,
                                     DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_REGISTERED),
                        "TICKET_REGISTERED");
    assert_null(words_suffix(&dispatch__ticket_state__descriptor, 99));
}

/* Every value of every enum of the contract carries its enum's prefix, so
 * its word is short, and its word parses back to it. */
static void test_every_value_round_trips(void **state)
{
    (void)state;
    for (size_t e = 0; e < sizeof(contract_enums) / sizeof(contract_enums[0]); e++) {
        const ProtobufCEnumDescriptor *descriptor = contract_enums[e];
        for (unsigned i = 0; i < descriptor->n_values; i++) {
            const ProtobufCEnumValue *named = &descriptor->values[i];
            const char *suffix = words_suffix(descriptor, named->value);
            assert_non_null(suffix);
            if (suffix == named->name)
                fail_msg("%s: %s does not carry the enum's prefix", descriptor->name, named->name);
            char word[WORDS_SIZE];
            if (strcmp(suffix, "UNSPECIFIED") == 0) {
                assert_int_equal(words_name(descriptor, named->value, word, sizeof(word)), -EINVAL);
                continue;
            }
            assert_int_equal(words_name(descriptor, named->value, word, sizeof(word)), 0);
            expect_parse(descriptor, word, named->value);
        }
    }
}

/* The words dispatchctl, the simulators' data files, the router's registry
 * file and the escalation's deadline table accepted before the rule. */
static void test_words_accepted_before_are_accepted(void **state)
{
    (void)state;
    static const struct {
        const ProtobufCEnumDescriptor *descriptor;
        const char *word;
        int value;
    } accepted[] = {
        {&dispatch__channel__descriptor, "phone", DISPATCH__CHANNEL__CHANNEL_PHONE},
        {&dispatch__channel__descriptor, "wechat", DISPATCH__CHANNEL__CHANNEL_WECHAT},
        {&dispatch__channel__descriptor, "web", DISPATCH__CHANNEL__CHANNEL_WEB},
        {&dispatch__channel__descriptor, "open311", DISPATCH__CHANNEL__CHANNEL_OPEN311},
        {&dispatch__channel__descriptor, "message-board", DISPATCH__CHANNEL__CHANNEL_MESSAGE_BOARD},
        {&dispatch__channel__descriptor, "proactive", DISPATCH__CHANNEL__CHANNEL_PROACTIVE},
        {&dispatch__channel__descriptor, "reception-day", DISPATCH__CHANNEL__CHANNEL_RECEPTION_DAY},
        {&dispatch__kind__descriptor, "consult", DISPATCH__KIND__KIND_CONSULT},
        {&dispatch__kind__descriptor, "help", DISPATCH__KIND__KIND_HELP},
        {&dispatch__kind__descriptor, "complaint", DISPATCH__KIND__KIND_COMPLAINT},
        {&dispatch__kind__descriptor, "report", DISPATCH__KIND__KIND_REPORT},
        {&dispatch__kind__descriptor, "suggestion", DISPATCH__KIND__KIND_SUGGESTION},
        {&dispatch__urgency__descriptor, "normal", DISPATCH__URGENCY__URGENCY_NORMAL},
        {&dispatch__urgency__descriptor, "urgent", DISPATCH__URGENCY__URGENCY_URGENT},
        {&dispatch__satisfaction__descriptor, "satisfied",
         DISPATCH__SATISFACTION__SATISFACTION_SATISFIED},
        {&dispatch__satisfaction__descriptor, "basically",
         DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED},
        {&dispatch__satisfaction__descriptor, "unsatisfied",
         DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED},
        {&dispatch__resolution_result__descriptor, "solved",
         DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_SOLVED},
        {&dispatch__resolution_result__descriptor, "partly",
         DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_PARTLY_SOLVED},
        {&dispatch__resolution_result__descriptor, "not-solved",
         DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_NOT_SOLVED},
        {&dispatch__resolution_result__descriptor, "explained",
         DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_EXPLAINED},
        {&dispatch__return_reason__descriptor, "not-our-duty",
         DISPATCH__RETURN_REASON__RETURN_REASON_NOT_OUR_DUTY},
        {&dispatch__return_reason__descriptor, "wrong-area",
         DISPATCH__RETURN_REASON__RETURN_REASON_WRONG_AREA},
        {&dispatch__return_reason__descriptor, "wrong-level",
         DISPATCH__RETURN_REASON__RETURN_REASON_WRONG_LEVEL},
        {&dispatch__return_reason__descriptor, "insufficient-info",
         DISPATCH__RETURN_REASON__RETURN_REASON_INSUFFICIENT_INFO},
        {&dispatch__return_reason__descriptor, "duplicate",
         DISPATCH__RETURN_REASON__RETURN_REASON_DUPLICATE},
        {&dispatch__return_reason__descriptor, "other",
         DISPATCH__RETURN_REASON__RETURN_REASON_OTHER},
        {&dispatch__emergency_line__descriptor, "110",
         DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_POLICE_110},
        {&dispatch__emergency_line__descriptor, "119",
         DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_FIRE_119},
        {&dispatch__emergency_line__descriptor, "120",
         DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_AMBULANCE_120},
        {&dispatch__emergency_line__descriptor, "122",
         DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_TRAFFIC_122},
        {&dispatch__unit_level__descriptor, "city", DISPATCH__UNIT_LEVEL__UNIT_LEVEL_CITY},
        {&dispatch__unit_level__descriptor, "district", DISPATCH__UNIT_LEVEL__UNIT_LEVEL_DISTRICT},
        {&dispatch__unit_level__descriptor, "street", DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET},
        {&dispatch__unit_level__descriptor, "community",
         DISPATCH__UNIT_LEVEL__UNIT_LEVEL_COMMUNITY},
        {&dispatch__unit_level__descriptor, "bureau", DISPATCH__UNIT_LEVEL__UNIT_LEVEL_BUREAU},
        {&dispatch__unit_level__descriptor, "enterprise",
         DISPATCH__UNIT_LEVEL__UNIT_LEVEL_ENTERPRISE},
        {&dispatch__role__descriptor, "operator", DISPATCH__ROLE__ROLE_OPERATOR},
        {&dispatch__role__descriptor, "dispatcher", DISPATCH__ROLE__ROLE_DISPATCHER},
        {&dispatch__role__descriptor, "supervisor", DISPATCH__ROLE__ROLE_SUPERVISOR},
        {&dispatch__role__descriptor, "leader", DISPATCH__ROLE__ROLE_LEADER},
        {&dispatch__role__descriptor, "unit", DISPATCH__ROLE__ROLE_UNIT},
        {&dispatch__role__descriptor, "admin", DISPATCH__ROLE__ROLE_ADMIN},
        {&dispatch__kpi_dimension__descriptor, "unit", DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT},
        {&dispatch__kpi_dimension__descriptor, "district",
         DISPATCH__KPI_DIMENSION__KPI_DIMENSION_DISTRICT},
        {&dispatch__kpi_dimension__descriptor, "category",
         DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CATEGORY},
        {&dispatch__kpi_dimension__descriptor, "city", DISPATCH__KPI_DIMENSION__KPI_DIMENSION_CITY},
        {&dispatch__kpi_period__descriptor, "day", DISPATCH__KPI_PERIOD__KPI_PERIOD_DAY},
        {&dispatch__kpi_period__descriptor, "month", DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH},
        {&dispatch__kpi_period__descriptor, "quarter", DISPATCH__KPI_PERIOD__KPI_PERIOD_QUARTER},
        /* dispatchctl ignored case */
        {&dispatch__channel__descriptor, "Message-Board", DISPATCH__CHANNEL__CHANNEL_MESSAGE_BOARD},
        {&dispatch__satisfaction__descriptor, "BASICALLY",
         DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED},
    };
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
        expect_parse(accepted[i].descriptor, accepted[i].word, accepted[i].value);
}

/* Words printed before the rule: the kinds and urgencies of the deadline
 * table's sections and messages, the simulators' kinds. */
static void test_words_printed_before_are_printed(void **state)
{
    (void)state;
    static const char *const kinds[] = {NULL,        "consult", "help",
                                        "complaint", "report",  "suggestion"};
    for (int kind = 1; kind < 6; kind++)
        expect_word(&dispatch__kind__descriptor, kind, kinds[kind]);
    expect_word(&dispatch__urgency__descriptor, DISPATCH__URGENCY__URGENCY_NORMAL, "normal");
    expect_word(&dispatch__urgency__descriptor, DISPATCH__URGENCY__URGENCY_URGENT, "urgent");
}

static void test_aliases(void **state)
{
    (void)state;
    assert_string_equal(words_alias(&dispatch__satisfaction__descriptor,
                                    DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED),
                        "basically");
    assert_string_equal(words_alias(&dispatch__emergency_line__descriptor,
                                    DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_TRAFFIC_122),
                        "122");
    assert_null(words_alias(&dispatch__satisfaction__descriptor,
                            DISPATCH__SATISFACTION__SATISFACTION_SATISFIED));
    /* the word itself is still the rule's */
    expect_parse(&dispatch__satisfaction__descriptor, "basically-satisfied",
                 DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED);
    expect_parse(&dispatch__emergency_line__descriptor, "police-110",
                 DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_POLICE_110);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_from_the_descriptor),
        cmocka_unit_test(test_unspecified_and_unknown_have_no_word),
        cmocka_unit_test(test_suffixes),
        cmocka_unit_test(test_every_value_round_trips),
        cmocka_unit_test(test_words_accepted_before_are_accepted),
        cmocka_unit_test(test_words_printed_before_are_printed),
        cmocka_unit_test(test_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

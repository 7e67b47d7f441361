/* Unit tests for common/mask: phones of every length reveal at most 7
 * digits, names keep one UTF-8 character, and small buffers cut the
 * result safely. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "mask.h"

static void expect_phone(const char *in, const char *expected)
{
    char out[128];
    memset(out, 'x', sizeof(out));
    mask_phone(in, out, sizeof(out));
    assert_string_equal(out, expected);
}

static void expect_name(const char *in, const char *expected)
{
    char out[128];
    memset(out, 'x', sizeof(out));
    mask_name(in, out, sizeof(out));
    assert_string_equal(out, expected);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

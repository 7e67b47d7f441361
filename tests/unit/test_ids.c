/* Unit tests for common/ids: dates in the city's time zone (across the
 * local midnight), counter padding and growth, the process's TZ left as it
 * was, and the parser refusing every other shape. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"

/* 2026-11-24T17:00:00Z is 2026-11-25 01:00 in Shanghai (UTC+8). */
#define NOV24_1700Z INT64_C(1795539600000)
#define NOV24_155959_999Z INT64_C(1795535999999) /* 23:59:59.999 in Shanghai */
#define NOV24_1600Z INT64_C(1795536000000)       /* midnight in Shanghai */
#define NOV24_235959_999Z INT64_C(1795564799999)
#define NOV25_0000Z INT64_C(1795564800000)

static char *format(const char *prefix, int64_t unix_ms, const char *tz, uint64_t counter)
{
    static char buffer[IDS_TICKET_SIZE];
    int r = ids_format_ticket(buffer, sizeof(buffer), prefix, unix_ms, tz, counter);
    if (r != 0)
        fail_msg("ids_format_ticket(%s, %lld, %s) = %d", prefix, (long long)unix_ms, tz, r);
    return buffer;
}

static void test_date_in_city_zone(void **state)
{
    (void)state;
    assert_string_equal(format("CY", NOV24_1700Z, "Asia/Shanghai", 123), "CY-20261125-000123");
    assert_string_equal(format("CY", NOV24_1700Z, "UTC", 123), "CY-20261124-000123");

    /* both sides of midnight in Shanghai */
    assert_string_equal(format("CY", NOV24_155959_999Z, "Asia/Shanghai", 1), "CY-20261124-000001");
    assert_string_equal(format("CY", NOV24_1600Z, "Asia/Shanghai", 1), "CY-20261125-000001");
    /* and in UTC */
    assert_string_equal(format("CY", NOV24_235959_999Z, "UTC", 1), "CY-20261124-000001");
    assert_string_equal(format("CY", NOV25_0000Z, "UTC", 1), "CY-20261125-000001");
    /* a zone behind UTC: still the 24th in New York at 17:00Z */
    assert_string_equal(format("CY", NOV24_1700Z, "America/New_York", 1), "CY-20261124-000001");

    /* milliseconds round down: -1 ms is still 1969 */
    assert_string_equal(format("CY", -1, "UTC", 1), "CY-19691231-000001");
}

/* The date is kept per UTC minute (ids.c): a minute in which the zone's
 * date changes is never kept. Shanghai's local mean time (+8:05:43, until
 * 1901) had its midnights at 15:54:17 UTC: both sides of one, in one UTC
 * minute, in either order, and again after other zones and minutes. */
static void test_date_changes_inside_a_utc_minute(void **state)
{
    (void)state;
    const int64_t before = -2209017950LL * 1000; /* 1899-12-31 23:59:53 LMT */
    const int64_t after = -2209017940LL * 1000;  /* 1900-01-01 00:00:03 LMT */
    for (int round = 0; round < 2; round++) {
        assert_string_equal(format("CY", before, "Asia/Shanghai", 1), "CY-18991231-000001");
        assert_string_equal(format("CY", after, "Asia/Shanghai", 2), "CY-19000101-000002");
        assert_string_equal(format("CY", before, "Asia/Shanghai", 3), "CY-18991231-000003");
        /* The same minute in another zone is another date. */
        assert_string_equal(format("CY", after, "UTC", 4), "CY-18991231-000004");
        assert_string_equal(format("CY", after, "Asia/Shanghai", 5), "CY-19000101-000005");
    }
    /* A kept minute answers for its zone only. */
    assert_string_equal(format("CY", NOV24_1700Z, "Asia/Shanghai", 6), "CY-20261125-000006");
    assert_string_equal(format("CY", NOV24_1700Z, "America/New_York", 7), "CY-20261124-000007");
    assert_string_equal(format("CY", NOV24_1700Z, "Asia/Shanghai", 8), "CY-20261125-000008");
}

static void test_process_time_zone_untouched(void **state)
{
    (void)state;
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    assert_string_equal(format("CY", NOV24_1700Z, "Asia/Shanghai", 1), "CY-20261125-000001");
    assert_string_equal(getenv("TZ"), "Europe/Berlin");
    /* localtime still answers in Berlin (UTC+1 in November) */
    time_t seconds = (time_t)(NOV24_1700Z / 1000);
    struct tm local;
    assert_non_null(localtime_r(&seconds, &local));
    assert_int_equal(local.tm_hour, 18);

    /* the fast path: TZ already names the zone */
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    assert_string_equal(format("CY", NOV24_1700Z, "Asia/Shanghai", 1), "CY-20261125-000001");
    assert_string_equal(getenv("TZ"), "Asia/Shanghai");

    unsetenv("TZ");
    tzset();
    assert_string_equal(format("CY", NOV24_1700Z, "Asia/Shanghai", 1), "CY-20261125-000001");
    assert_null(getenv("TZ"));
}

static void test_counter_padding_and_growth(void **state)
{
    (void)state;
    assert_string_equal(format("NG", NOV24_1700Z, "UTC", 0), "NG-20261124-000000");
    assert_string_equal(format("NG", NOV24_1700Z, "UTC", 7), "NG-20261124-000007");
    assert_string_equal(format("NG", NOV24_1700Z, "UTC", 999999), "NG-20261124-999999");
    assert_string_equal(format("NG", NOV24_1700Z, "UTC", 1000000), "NG-20261124-1000000");
    assert_string_equal(format("NG", NOV24_1700Z, "UTC", 123456789012), "NG-20261124-123456789012");
    assert_string_equal(format("INTAKE01", NOV24_1700Z, "UTC", UINT64_MAX),
                        "INTAKE01-20261124-18446744073709551615");
    assert_true(strlen("INTAKE01-20261124-18446744073709551615") < IDS_TICKET_SIZE);
}

static void test_format_refusals(void **state)
{
    (void)state;
    char buffer[IDS_TICKET_SIZE];
    static const char *const bad_prefixes[] = {"", "cy", "C-Y", "1CY", "ABCDEFGHI", "C Y", "CY\n"};
    for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++)
        assert_int_equal(
            ids_format_ticket(buffer, sizeof(buffer), bad_prefixes[i], NOV24_1700Z, "UTC", 1),
            -EINVAL);
    assert_int_equal(ids_format_ticket(buffer, sizeof(buffer), NULL, 0, "UTC", 1), -EINVAL);

    assert_int_equal(ids_format_ticket(buffer, sizeof(buffer), "CY", 0, "Mars/Olympus_Mons", 1),
                     -ENOENT);
    assert_int_equal(ids_format_ticket(buffer, sizeof(buffer), "CY", 0, "../../etc/passwd", 1),
                     -EINVAL);
    assert_int_equal(ids_format_ticket(buffer, sizeof(buffer), "CY", 0, "/etc/localtime", 1),
                     -EINVAL);
    assert_int_equal(ids_format_ticket(buffer, sizeof(buffer), "CY", 0, NULL, 1), -EINVAL);

    /* year 10000 does not fit the date field */
    assert_int_equal(
        ids_format_ticket(buffer, sizeof(buffer), "CY", INT64_C(253402300800000), "UTC", 1),
        -ERANGE);

    /* too small: refused, and no cut-off id is left behind */
    char small[18]; /* "CY-20261124-000001" needs 19 */
    memset(small, 'x', sizeof(small));
    assert_int_equal(ids_format_ticket(small, sizeof(small), "CY", NOV24_1700Z, "UTC", 1), -ENOSPC);
    assert_string_equal(small, "");
    char exact[19];
    assert_int_equal(ids_format_ticket(exact, sizeof(exact), "CY", NOV24_1700Z, "UTC", 1), 0);
    assert_string_equal(exact, "CY-20261124-000001");
    assert_int_equal(ids_format_ticket(NULL, 0, "CY", NOV24_1700Z, "UTC", 1), -ENOSPC);
}

static void test_check_timezone(void **state)
{
    (void)state;
    assert_int_equal(ids_check_timezone("Asia/Shanghai"), 0);
    assert_int_equal(ids_check_timezone("UTC"), 0);
    assert_int_equal(ids_check_timezone("Asia/Nowhere"), -ENOENT);
    assert_int_equal(ids_check_timezone("Asia/../../etc/passwd"), -EINVAL);
    assert_int_equal(ids_check_timezone(""), -EINVAL);
    assert_int_equal(ids_check_timezone(NULL), -EINVAL);
}

static void test_parse_round_trip(void **state)
{
    (void)state;
    ids_ticket_t ticket;
    const char *id = format("CY", NOV24_1700Z, "Asia/Shanghai", 123);
    assert_int_equal(ids_parse_ticket(id, &ticket), 0);
    assert_string_equal(ticket.prefix, "CY");
    assert_int_equal(ticket.year, 2026);
    assert_int_equal(ticket.month, 11);
    assert_int_equal(ticket.day, 25);
    assert_int_equal(ticket.counter, 123);

    assert_int_equal(ids_parse_ticket("INTAKE01-20240229-18446744073709551615", &ticket), 0);
    assert_string_equal(ticket.prefix, "INTAKE01");
    assert_int_equal(ticket.day, 29);
    assert_true(ticket.counter == UINT64_MAX);

    assert_int_equal(ids_parse_ticket("K2-20261125-1000000", &ticket), 0);
    assert_int_equal(ticket.counter, 1000000);
    assert_int_equal(ids_parse_ticket("K2-20261125-000000", NULL), 0);
}

static void test_parse_rejects_bad_shapes(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "CY",
        "CY-",
        "CY-20261125",
        "CY-20261125-",
        "-20261125-000123",
        "cy-20261125-000123",        /* lower case prefix */
        "1C-20261125-000123",        /* prefix starts with a digit */
        "ABCDEFGHI-20261125-000123", /* prefix too long */
        "CY_20261125-000123",
        "CY-2026112-000123", /* 7-digit date */
        "CY-202611250-000123",
        "CY-2026-11-25-000123",
        "CY-20261325-000123",  /* month 13 */
        "CY-20261100-000123",  /* day 0 */
        "CY-20261131-000123",  /* 31 November */
        "CY-20250229-000123",  /* 2025 is not a leap year */
        "CY-21000229-000123",  /* nor is 2100 */
        "CY-00001125-000123",  /* year 0 */
        "CY-20261125-00123",   /* 5-digit counter */
        "CY-20261125-0001234", /* padded beyond 6 digits: not canonical */
        "CY-20261125-000123x",
        "CY-20261125-00012a",
        "CY-20261125--00123",
        "CY-20261125-+00123",
        "CY-20261125-18446744073709551616", /* 2^64 */
        "CY-20261125-000123 ",
        " CY-20261125-000123",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ids_ticket_t ticket = {.counter = 42};
        if (ids_parse_ticket(bad[i], &ticket) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(ticket.counter, 42); /* untouched on failure */
    }
    assert_int_equal(ids_parse_ticket(NULL, NULL), -EINVAL);
    assert_int_equal(ids_parse_ticket("CY-20000229-000001", NULL), 0); /* 2000 is a leap year */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_in_city_zone),
        cmocka_unit_test(test_date_changes_inside_a_utc_minute),
        cmocka_unit_test(test_process_time_zone_untouched),
        cmocka_unit_test(test_counter_padding_and_growth),
        cmocka_unit_test(test_format_refusals),
        cmocka_unit_test(test_check_timezone),
        cmocka_unit_test(test_parse_round_trip),
        cmocka_unit_test(test_parse_rejects_bad_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

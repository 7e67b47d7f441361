/* Unit tests for common/clock: a fast clock is anchored in its --clock
 * value, so a process that starts late is on the same timeline as one that
 * started at the anchor; the value without an anchor starts at the
 * process's own start; refusals; the real-time wait of a fast clock. */
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
#include <time.h>

#include "clock.h"

#define START_MS INT64_C(1795539600000) /* 2026-11-25 01:00 in Shanghai */
#define SPEED 60

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* |value - expected| within SPEED x slack_ms real milliseconds. */
static void assert_near(int64_t value, int64_t expected, int64_t slack_ms)
{
    int64_t off = value - expected;
    if (off < -SPEED * slack_ms || off > SPEED * slack_ms)
        fail_msg("business time %lld is %lld ms off %lld", (long long)value, (long long)off,
                 (long long)expected);
}

/* A worker started ten seconds after the anchor (a restart, a late host) is
 * where the timeline is now, not at its start: 600 business seconds on. */
static void test_anchored_clock_is_one_timeline_whenever_started(void **state)
{
    (void)state;
    char spec[96];
    int64_t anchor = unix_ms() - 10000;
    snprintf(spec, sizeof(spec), "fast:%d@%lld/%lld", SPEED, (long long)START_MS,
             (long long)anchor);
    assert_int_equal(clock_init(spec), 0);
    assert_near(clock_now_ms(), START_MS + (unix_ms() - anchor) * SPEED, 250);
    assert_true(clock_now_ms() >= START_MS + 10000 * SPEED);

    /* Two starts of the same value a moment apart agree on the instant. */
    int64_t first = clock_now_ms();
    assert_int_equal(clock_init(spec), 0);
    assert_near(clock_now_ms(), first, 250);
    assert_true(clock_speed() == SPEED);

    /* An anchor in the future: the timeline is before start, as it says. */
    snprintf(spec, sizeof(spec), "fast:%d@%lld/%lld", SPEED, (long long)START_MS,
             (long long)(unix_ms() + 60000));
    assert_int_equal(clock_init(spec), 0);
    assert_near(clock_now_ms(), START_MS - 60000 * SPEED, 250);
}

static void test_unanchored_clock_starts_with_the_process(void **state)
{
    (void)state;
    char spec[96];
    snprintf(spec, sizeof(spec), "fast:%d@%lld", SPEED, (long long)START_MS);
    assert_int_equal(clock_init(spec), 0);
    assert_near(clock_now_ms(), START_MS, 250);
}

static void test_clock_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "fast:60@1795539600000/",
        "fast:60@1795539600000/12x",
        "fast:0@1795539600000/1",
        "fast:-1@1795539600000/1",
        "fast:60@",
        "fast:60@12/34/56",
        "fast:60@1795539600000 now",
        "slow:60@1/2",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (clock_init(bad[i]) != -EINVAL)
            fail_msg("--clock \"%s\" was taken", bad[i]);
    assert_int_equal(clock_init("real"), 0);
    assert_near(clock_now_ms(), unix_ms(), 5);
}

/* A minute of business time at SPEED 60 is a second of real time. */
static void test_real_wait_of_a_fast_clock(void **state)
{
    (void)state;
    char spec[96];
    snprintf(spec, sizeof(spec), "fast:%d@%lld/%lld", SPEED, (long long)START_MS,
             (long long)unix_ms());
    assert_int_equal(clock_init(spec), 0);
    int64_t wait = clock_real_ms_until(clock_now_ms() + 60000);
    assert_true(wait >= 900 && wait <= 1001);
    assert_int_equal(clock_real_ms_until(clock_now_ms() - 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anchored_clock_is_one_timeline_whenever_started),
        cmocka_unit_test(test_unanchored_clock_starts_with_the_process),
        cmocka_unit_test(test_clock_refusals),
        cmocka_unit_test(test_real_wait_of_a_fast_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

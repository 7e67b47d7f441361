/* The business calendar file (calendar.h), then the working-day arithmetic
 * on what it parsed. */
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "fuzz.h"

#define NOW 1772413200000LL /* 2026-03-02 09:00 CST */
#define DAY_MS (86400LL * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    calendar_t *calendar = NULL;
    char err[512];
    if (calendar_parse_string(text, &calendar, err, sizeof(err)) == 0) {
        int64_t due = calendar_add_working_days(calendar, NOW, 5);
        calendar_working_ms_between(calendar, NOW, due);
        calendar_add_working_ms(calendar, NOW, 3 * DAY_MS);
        calendar_add_working_days(calendar, NOW, 400);
        char buf[64];
        calendar_format(calendar, due, buf, sizeof(buf));
        calendar_is_working_day(calendar, calendar_day_of(calendar, NOW));
        calendar_destroy(&calendar);
    }
    free(text);
    return 0;
}

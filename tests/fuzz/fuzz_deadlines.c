/* The deadline table file (deadlines.h), then every rule it gives, each
 * span formatted and laid on the calendar of deploy/data. */
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "deadlines.h"
#include "fuzz.h"
#include "schedule.h"

#ifndef DEPLOY_DATA
#define DEPLOY_DATA "deploy/data"
#endif

#define NOW 1772413200000LL /* 2026-03-02 09:00 CST */

static calendar_t *calendar;

static void span_use(const Dispatch__Escalation__Span *span)
{
    if (!span)
        return;
    char buf[64];
    deadlines_span_format(span, buf, sizeof(buf));
    if (calendar)
        schedule_after(calendar, NOW, span);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (!calendar)
        calendar_load(DEPLOY_DATA "/calendar.ini", &calendar, err, sizeof(err));
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    deadlines_t *table = NULL;
    if (deadlines_parse_string(text, &table, err, sizeof(err)) == 0) {
        static const Dispatch__Kind kinds[] = {
            DISPATCH__KIND__KIND_CONSULT, DISPATCH__KIND__KIND_HELP, DISPATCH__KIND__KIND_COMPLAINT,
            DISPATCH__KIND__KIND_REPORT, DISPATCH__KIND__KIND_SUGGESTION};
        static const Dispatch__Urgency urgencies[] = {DISPATCH__URGENCY__URGENCY_NORMAL,
                                                      DISPATCH__URGENCY__URGENCY_URGENT};
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            for (size_t u = 0; u < sizeof(urgencies) / sizeof(urgencies[0]); u++) {
                const Dispatch__Escalation__Rule *rule =
                    deadlines_rule(table, kinds[k], urgencies[u]);
                if (!rule)
                    continue;
                span_use(rule->sign_for);
                span_use(rule->handle);
                for (size_t i = 0; i < rule->n_sign_for_ladder; i++)
                    span_use(rule->sign_for_ladder[i]);
                for (size_t i = 0; i < rule->n_handle_ladder; i++)
                    span_use(rule->handle_ladder[i]);
            }
        }
        deadlines_destroy(&table);
    }
    free(text);
    return 0;
}

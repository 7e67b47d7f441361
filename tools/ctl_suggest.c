/* dispatchctl rules suggest: routing rules learned from who really handled
 * past tickets.
 *
 *   rules suggest [--days N] [--history FILE] [--min-support N] [--min-share S]
 *                 [--evaluate SHARE] [--out FILE]
 *
 * The history is a list of (time, category, area, unit): the final owner
 * of each ticket, after returns, re-routes and triage assignments. It comes
 * from the router of the district (TicketOwnersList: its tickets of the
 * last --days days that a unit signed for) or from a CSV file (--history,
 * header at,category,area,unit; at is "YYYY-MM-DD HH:MM[:SS]" or unix ms).
 *
 * Learning: per category, the unit that handled most of its tickets is the
 * category default; per (category, area) seen at least --min-support times
 * whose most frequent unit differs from the default and handled at least
 * --min-share of them, an area rule. Each suggestion carries its support
 * (tickets it was learned from) and its expected accuracy (the share of
 * those tickets that went to its unit). The output is a rules.csv (with
 * those figures as comments) that `rules import --dry-run` can compare.
 *
 * --evaluate SHARE: learns from the first SHARE of the history by time and
 * routes the rest, against a category-only table (the defaults alone)
 * learned from the same tickets: the share each sends to the unit that
 * handled the ticket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csv.h"
#include "ctl_common.h"

#define OWNERS_PAGE 5000

typedef struct observation {
    int64_t at;
    char *category, *area, *unit;
} observation_t;

typedef struct history {
    observation_t *items;
    size_t count, capacity;
} history_t;

typedef struct suggestion {
    const char *category, *area, *unit; /* point into the history */
    size_t support, agree;              /* tickets learned from; of them, handled by unit */
} suggestion_t;

typedef struct rule_table {
    suggestion_t *items; /* sorted by (category, area) */
    size_t count, capacity;
    size_t defaults, area_rules;
} rule_table_t;

static void history_free(history_t *history)
{
    for (size_t i = 0; i < history->count; i++) {
        free(history->items[i].category);
        free(history->items[i].area);
        free(history->items[i].unit);
    }
    free(history->items);
}

static int history_add(history_t *history, int64_t at, const char *category, const char *area,
                       const char *unit)
{
    if (history->count == history->capacity) {
        size_t next = history->capacity ? history->capacity * 2 : 1024;
        observation_t *grown = realloc(history->items, next * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        history->items = grown;
        history->capacity = next;
    }
    observation_t *o = &history->items[history->count];
    o->at = at;
    o->category = strdup(category);
    o->area = strdup(area);
    o->unit = strdup(unit);
    history->count++;
    return o->category && o->area && o->unit ? 0 : -ENOMEM;
}

/* "YYYY-MM-DD HH:MM[:SS]" (display time zone) or unix ms. */
static int parse_at(const char *text, int64_t *at)
{
    char *end;
    if (*text >= '0' && *text <= '9' && !strchr(text, '-')) {
        long long ms = strtoll(text, &end, 10);
        if (*end)
            return -EINVAL;
        *at = ms;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    end = strptime(text, "%Y-%m-%d %H:%M", &tm);
    if (end && *end == ':')
        end = strptime(end + 1, "%S", &tm);
    if (!end || *end)
        return -EINVAL;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *at = (int64_t)t * 1000;
    return 0;
}

static int read_history(const char *path, history_t *history)
{
    csv_t *csv;
    int rc = csv_open(path, &csv);
    if (rc < 0)
        return ctl_usage_error("cannot read %s: %s", path, strerror(-rc));
    bool header = true;
    rc = CTL_EXIT_OK;
    for (;;) {
        const char *f[CSV_FIELDS_MAX];
        size_t n;
        char err[256];
        int got = csv_next(csv, f, &n, err, sizeof(err));
        if (got < 0) {
            rc = ctl_usage_error("%s: %s", path, err);
            break;
        }
        if (got == 0)
            break;
        if (header) {
            header = false;
            if (n != 4 || strcmp(f[0], "at") || strcmp(f[1], "category") || strcmp(f[2], "area") ||
                strcmp(f[3], "unit")) {
                rc = ctl_usage_error("%s: the first line must be the header at,category,area,unit",
                                     path);
                break;
            }
            continue;
        }
        int64_t at;
        if (n != 4 || parse_at(f[0], &at) < 0) {
            rc = ctl_usage_error("%s: line %lu: expected a time and three fields", path,
                                 csv_line(csv));
            break;
        }
        if (!*f[1] || !*f[3])
            continue; /* no category or no owner: nothing to learn */
        if (history_add(history, at, f[1], f[2], f[3]) < 0) {
            rc = ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
            break;
        }
    }
    csv_destroy(&csv);
    return rc;
}

/* The router's final owners of the last `days` days, page by page. */
static int fetch_history(ctl_t *ctl, uint32_t days, history_t *history)
{
    const char *url;
    int rc = ctl_router_url(ctl, NULL, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    char after[128] = "";
    bool more = true;
    bool json = ctl->json;
    ctl->json = false;
    while (rc == CTL_EXIT_OK && more) {
        Dispatch__TicketOwnersList list = DISPATCH__TICKET_OWNERS_LIST__INIT;
        list.days = days;
        list.after_ticket_id = after;
        list.limit = OWNERS_PAGE;
        Dispatch__AdminReply *reply;
        rc = ctl_admin_call(ctl, url, DISPATCH__ADMIN_REQUEST__BODY_TICKET_OWNERS_LIST, &list,
                            ctl_actor(ctl, "dispatchctl"), DISPATCH__ROLE__ROLE_ADMIN, &reply);
        if (rc != CTL_EXIT_OK)
            break;
        if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_OWNERS) {
            protobuf_c_message_free_unpacked(&reply->base, NULL);
            rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
            break;
        }
        const Dispatch__TicketOwners *owners = reply->owners;
        for (size_t i = 0; rc == CTL_EXIT_OK && i < owners->n_owners; i++) {
            const Dispatch__TicketOwner *o = owners->owners[i];
            if (history_add(history, o->registered_at, o->category, o->area, o->unit_id) < 0)
                rc = ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
        }
        more = owners->more && owners->n_owners > 0;
        if (owners->n_owners)
            snprintf(after, sizeof(after), "%s", owners->owners[owners->n_owners - 1]->ticket_id);
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    }
    ctl->json = json;
    return rc;
}

/* ------------------------------------------------------------ learning */

static int by_category_area_unit(const void *a, const void *b)
{
    const observation_t *x = *(observation_t *const *)a, *y = *(observation_t *const *)b;
    int c = strcmp(x->category, y->category);
    if (!c)
        c = strcmp(x->area, y->area);
    return c ? c : strcmp(x->unit, y->unit);
}

static int by_category_unit(const void *a, const void *b)
{
    const observation_t *x = *(observation_t *const *)a, *y = *(observation_t *const *)b;
    int c = strcmp(x->category, y->category);
    return c ? c : strcmp(x->unit, y->unit);
}

static int by_time(const void *a, const void *b)
{
    const observation_t *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

static int suggestion_compare(const void *a, const void *b)
{
    const suggestion_t *x = a, *y = b;
    int c = strcmp(x->category, y->category);
    return c ? c : strcmp(x->area, y->area);
}

static int table_add(rule_table_t *table, const char *category, const char *area, const char *unit,
                     size_t support, size_t agree)
{
    if (table->count == table->capacity) {
        size_t next = table->capacity ? table->capacity * 2 : 256;
        suggestion_t *grown = realloc(table->items, next * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        table->items = grown;
        table->capacity = next;
    }
    table->items[table->count++] = (suggestion_t){category, area, unit, support, agree};
    return 0;
}

static const suggestion_t *table_find(const rule_table_t *table, const char *category,
                                      const char *area)
{
    suggestion_t key = {.category = category, .area = area};
    return bsearch(&key, table->items, table->count, sizeof(*table->items), suggestion_compare);
}

/* The unit a table sends (category, area) to, NULL = triage. */
static const char *table_route(const rule_table_t *table, const char *category, const char *area)
{
    const suggestion_t *rule = *area ? table_find(table, category, area) : NULL;
    if (!rule)
        rule = table_find(table, category, "");
    return rule ? rule->unit : NULL;
}

/* Whether two rows fall in one group: the same category, and the same area
 * when by_area. */
static bool same_group(const observation_t *a, const observation_t *b, bool by_area)
{
    return strcmp(a->category, b->category) == 0 && (!by_area || strcmp(a->area, b->area) == 0);
}

typedef struct majority {
    size_t end;       /* the index after the group */
    size_t total;     /* rows in the group */
    size_t best;      /* rows of its most frequent unit */
    const char *unit; /* that unit (the first of equals), pointing into the rows */
} majority_t;

/* The group that starts at order[start], in rows sorted by group, then
 * unit. */
static majority_t group_majority(observation_t *const *order, size_t count, size_t start,
                                 bool by_area)
{
    majority_t group = {start, 0, 0, NULL};
    while (group.end < count && same_group(order[group.end], order[start], by_area)) {
        size_t run = group.end;
        while (run < count && same_group(order[run], order[start], by_area) &&
               strcmp(order[run]->unit, order[group.end]->unit) == 0)
            run++;
        if (run - group.end > group.best) {
            group.best = run - group.end;
            group.unit = order[group.end]->unit;
        }
        group.total += run - group.end;
        group.end = run;
    }
    return group;
}

/* Learns the table from rows (count of them); area rules only when
 * with_areas. */
static int learn(observation_t *rows, size_t count, size_t min_support, double min_share,
                 bool with_areas, rule_table_t *table)
{
    memset(table, 0, sizeof(*table));
    observation_t **order = malloc((count ? count : 1) * sizeof(*order));
    if (!order)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++)
        order[i] = &rows[i];
    /* Defaults: the most frequent unit of each category. */
    qsort(order, count, sizeof(*order), by_category_unit);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count;) {
        majority_t group = group_majority(order, count, i, false);
        rc = table_add(table, order[i]->category, "", group.unit, group.total, group.best);
        table->defaults++;
        i = group.end;
    }
    qsort(table->items, table->count, sizeof(*table->items), suggestion_compare);
    /* Area rules: where the area's own majority differs from the default. */
    size_t defaults = table->count;
    qsort(order, count, sizeof(*order), by_category_area_unit);
    for (size_t i = 0; rc == 0 && with_areas && i < count;) {
        majority_t group = group_majority(order, count, i, true);
        rule_table_t defaults_only = {table->items, defaults, defaults, 0, 0};
        const char *fallback = table_route(&defaults_only, order[i]->category, "");
        if (*order[i]->area && group.total >= min_support &&
            (double)group.best / (double)group.total >= min_share &&
            (!fallback || strcmp(fallback, group.unit) != 0)) {
            rc = table_add(table, order[i]->category, order[i]->area, group.unit, group.total,
                           group.best);
            table->area_rules++;
        }
        i = group.end;
    }
    qsort(table->items, table->count, sizeof(*table->items), suggestion_compare);
    /* A default's figures: the tickets no area rule takes. */
    for (size_t i = 0; rc == 0 && i < table->count; i++)
        if (!*table->items[i].area)
            table->items[i].support = table->items[i].agree = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const suggestion_t *rule =
            *rows[i].area ? table_find(table, rows[i].category, rows[i].area) : NULL;
        if (rule)
            continue;
        suggestion_t *fallback = (suggestion_t *)table_find(table, rows[i].category, "");
        if (fallback) {
            fallback->support++;
            fallback->agree += strcmp(fallback->unit, rows[i].unit) == 0;
        }
    }
    free(order);
    return rc;
}

static size_t score(const rule_table_t *table, const observation_t *rows, size_t count)
{
    size_t hits = 0;
    for (size_t i = 0; i < count; i++) {
        const char *unit = table_route(table, rows[i].category, rows[i].area);
        hits += unit && strcmp(unit, rows[i].unit) == 0;
    }
    return hits;
}

static double percent(size_t part, size_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void print_table(FILE *out, const rule_table_t *table, size_t history_count)
{
    fprintf(out,
            "# Rules learned from the final owners of %zu tickets: %zu category defaults and "
            "%zu area rules.\n"
            "# support = tickets the rule was learned from; accuracy = the share of them its "
            "unit handled.\n"
            "category,area,lead_unit,assisting_units,priority\n",
            history_count, table->defaults, table->area_rules);
    for (size_t i = 0; i < table->count; i++) {
        const suggestion_t *s = &table->items[i];
        fprintf(out, "# support %zu, expected accuracy %.1f %%\n", s->support,
                percent(s->agree, s->support));
        fprintf(out, "%s,%s,%s,,0\n", s->category, s->area, s->unit);
    }
}

static int evaluate(history_t *history, double share, size_t min_support, double min_share)
{
    qsort(history->items, history->count, sizeof(*history->items), by_time);
    size_t train = (size_t)((double)history->count * share);
    if (train == 0 || train >= history->count)
        return ctl_usage_error("--evaluate %.2f leaves no tickets to learn from or to score",
                               share);
    rule_table_t learned, category_only;
    if (learn(history->items, train, min_support, min_share, true, &learned) < 0 ||
        learn(history->items, train, min_support, min_share, false, &category_only) < 0)
        return ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
    const observation_t *test = history->items + train;
    size_t test_count = history->count - train;
    size_t learned_hits = score(&learned, test, test_count);
    size_t category_hits = score(&category_only, test, test_count);
    char from[32], to[32], split[32];
    printf("history: %zu tickets, %s .. %s\n", history->count,
           ctl_time(history->items[0].at, from, sizeof(from)),
           ctl_time(history->items[history->count - 1].at, to, sizeof(to)));
    printf("learned from the first %zu (%.0f %%, until %s), scored on the %zu after\n", train,
           share * 100, ctl_time(test[0].at, split, sizeof(split)), test_count);
    printf("learned rules (%zu defaults + %zu area rules): %zu of %zu = %.1f %% to the unit that "
           "handled the ticket\n",
           learned.defaults, learned.area_rules, learned_hits, test_count,
           percent(learned_hits, test_count));
    printf("category-only table (%zu rules):            %zu of %zu = %.1f %%\n",
           category_only.defaults, category_hits, test_count, percent(category_hits, test_count));
    free(learned.items);
    free(category_only.items);
    return CTL_EXIT_OK;
}

static int parse_share(const char *option, const char *arg, void *value)
{
    char *end;
    double share = strtod(arg, &end);
    if (*end == '%') {
        share /= 100;
        end++;
    }
    if (end == arg || *end || share <= 0 || share > 1) {
        fprintf(stderr, "dispatchctl: %s: '%s' is not a share (0.6 or 60%%)\n", option, arg);
        return -EINVAL;
    }
    *(double *)value = share;
    return 0;
}

int ctl_rules_suggest(ctl_t *ctl, int argc, char **argv)
{
    const char *history_path = NULL, *out_path = NULL;
    long days = 90, min_support = 2;
    double min_share = 0.5, evaluate_share = 0;
    const ctl_option_t options[] = {
        {"history", CTL_OPTION_TEXT, .value = &history_path},
        {"days", CTL_OPTION_LONG, &days, .min = 1, .max = 366},
        {"min-support", CTL_OPTION_LONG, &min_support, .min = 1, .max = 1000000},
        {"min-share", CTL_OPTION_CHECK, &min_share, .check = parse_share},
        {"evaluate", CTL_OPTION_CHECK, &evaluate_share, .check = parse_share},
        {"out", CTL_OPTION_TEXT, .value = &out_path},
    };
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "rules suggest", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    history_t history = {0};
    rc = history_path ? read_history(history_path, &history)
                      : fetch_history(ctl, (uint32_t)days, &history);
    if (rc == CTL_EXIT_OK && history.count == 0)
        rc = ctl_fail(CTL_EXIT_NOT_FOUND, "no ticket with a final owner to learn from");
    if (rc == CTL_EXIT_OK && evaluate_share > 0) {
        rc = evaluate(&history, evaluate_share, (size_t)min_support, min_share);
    } else if (rc == CTL_EXIT_OK) {
        rule_table_t table;
        if (learn(history.items, history.count, (size_t)min_support, min_share, true, &table) < 0) {
            rc = ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
        } else {
            FILE *out = out_path ? fopen(out_path, "w") : stdout;
            if (!out) {
                rc = ctl_usage_error("cannot write %s: %s", out_path, strerror(errno));
            } else {
                print_table(out, &table, history.count);
                if (out != stdout && fclose(out) != 0)
                    rc = ctl_fail(CTL_EXIT_INTERNAL, "cannot write %s", out_path);
                else if (out != stdout)
                    printf("%zu rules (%zu defaults, %zu area rules) learned from %zu tickets "
                           "written to %s: rules import %s --dry-run compares them\n",
                           table.count, table.defaults, table.area_rules, history.count, out_path,
                           out_path);
            }
            free(table.items);
        }
    }
    history_free(&history);
    return rc;
}

/* dispatchctl rule keeping at a router's admin endpoint (docs/protocol.md
 * section 6.3):
 *
 *   rules import FILE [--dry-run] [--moved-days N]   replace the district's rules
 *   rules reload [--dry-run] [--moved-days N]        the router reads its data_dir again
 *   rules export                                     every rule as rules.csv, on stdout
 *   rules list [--category C] [--limit N]            a table
 *   units list [--after ID] [--limit N]
 *   route explain --category C [--area A]            which rule, which unit, why
 *   triage reroute [--dry-run]                       route again what a rule now routes
 *
 * An import is atomic: the router checks every rule and switches to the
 * whole new set in one transaction, or refuses it (naming the file's line)
 * and keeps the old one. The answer is the diff: rules added, changed and
 * removed, the tickets of the last --moved-days days whose route changes,
 * the tickets in triage the new rules route, and warnings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "ctl_common.h"

#define EXPORT_PAGE 5000
#define ASSIST_MAX 16

/* ------------------------------------------------------------ a call */

static int router_call(ctl_t *ctl, Dispatch__AdminRequest__BodyCase body_case, void *body,
                       Dispatch__Role role, Dispatch__AdminReply__BodyCase expected,
                       Dispatch__AdminReply **reply)
{
    const char *url;
    int rc = ctl_router_url(ctl, NULL, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = ctl_admin_call(ctl, url, body_case, body, ctl_actor(ctl, "dispatchctl"), role, reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if ((*reply)->body_case != expected) {
        protobuf_c_message_free_unpacked(&(*reply)->base, NULL);
        *reply = NULL;
        return ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    }
    return CTL_EXIT_OK;
}

/* ------------------------------------------------------------ the diff */

static void print_rule(const char *sign, const Dispatch__RoutingRule *rule)
{
    char category[128], area[128], lead[128];
    printf("  %s %s/%s -> %s", sign, ctl_clean(rule->category, category, sizeof(category)),
           *rule->area ? ctl_clean(rule->area, area, sizeof(area)) : "*",
           ctl_clean(rule->lead_unit, lead, sizeof(lead)));
    for (size_t i = 0; i < rule->n_assisting_units; i++)
        printf("%s%s", i ? ";" : " assisted by ",
               ctl_clean(rule->assisting_units[i], lead, sizeof(lead)));
    if (rule->priority)
        printf(" (priority %d)", rule->priority);
    printf("\n");
}

static void print_diff(const Dispatch__RulesDiff *diff, const char *what, uint32_t moved_days)
{
    printf("%s: added %u, changed %u, removed %u, unchanged %u: %s\n", what, diff->added_count,
           diff->changed_count, diff->removed_count, diff->unchanged_count,
           diff->applied ? "applied" : "dry run, nothing changed");
    if (diff->units_added || diff->units_changed)
        printf("units: added %u, changed %u\n", diff->units_added, diff->units_changed);
    for (size_t i = 0; i < diff->n_added; i++)
        print_rule("+", diff->added[i]);
    for (size_t i = 0; i < diff->n_changed; i++) {
        print_rule("-", diff->changed[i]->before);
        print_rule("+", diff->changed[i]->after);
    }
    for (size_t i = 0; i < diff->n_removed; i++)
        print_rule("-", diff->removed[i]);
    if (diff->n_added + diff->n_changed + diff->n_removed <
        diff->added_count + diff->changed_count + diff->removed_count)
        printf("  (the first %zu of each are listed)\n", (size_t)1000);
    if (moved_days)
        printf("tickets of the last %u days that would route elsewhere: %u\n", moved_days,
               diff->moved_count);
    for (size_t i = 0; i < diff->n_moved; i++) {
        const Dispatch__TicketMove *move = diff->moved[i];
        char id[128], category[128], area[128], from[128], to[128];
        printf("  %s  %s/%s  %s -> %s  (%s)\n", ctl_clean(move->ticket_id, id, sizeof(id)),
               ctl_clean(move->category, category, sizeof(category)),
               *move->area ? ctl_clean(move->area, area, sizeof(area)) : "*",
               *move->from_unit ? ctl_clean(move->from_unit, from, sizeof(from)) : "triage",
               *move->to_unit ? ctl_clean(move->to_unit, to, sizeof(to)) : "triage",
               ctl_enum_name(&dispatch__ticket_state__descriptor, move->state, true));
    }
    if (diff->triage_routable)
        printf("triage: %u waiting tickets are routed by these rules%s\n", diff->triage_routable,
               diff->applied ? ": dispatchctl triage reroute sends them" : "");
    for (size_t i = 0; i < diff->n_warnings; i++) {
        char text[1024];
        fprintf(stderr, "warning: %s\n", ctl_clean(diff->warnings[i], text, sizeof(text)));
    }
}

/* ------------------------------------------------------------ import */

typedef struct rule_file {
    Dispatch__RoutingRule **rules;
    unsigned long *lines;
    size_t count, capacity;
} rule_file_t;

static void rule_file_free(rule_file_t *file)
{
    for (size_t i = 0; i < file->count; i++) {
        Dispatch__RoutingRule *rule = file->rules[i];
        free(rule->category);
        free(rule->area);
        free(rule->lead_unit);
        ctl_free_list(rule->assisting_units, rule->n_assisting_units);
        free(rule);
    }
    free(file->rules);
    free(file->lines);
}

static int add_rule(rule_file_t *file, const char *const *fields, unsigned long line,
                    const char *district, const char *path)
{
    if (file->count == file->capacity) {
        size_t next = file->capacity ? file->capacity * 2 : 256;
        Dispatch__RoutingRule **rules = realloc(file->rules, next * sizeof(*rules));
        if (!rules)
            return -ENOMEM;
        file->rules = rules;
        unsigned long *lines = realloc(file->lines, next * sizeof(*lines));
        if (!lines)
            return -ENOMEM;
        file->lines = lines;
        file->capacity = next;
    }
    Dispatch__RoutingRule *rule = calloc(1, sizeof(*rule));
    if (!rule)
        return -ENOMEM;
    dispatch__routing_rule__init(rule);
    rule->district = (char *)district;
    rule->category = strdup(fields[0]);
    rule->area = strdup(fields[1]);
    rule->lead_unit = strdup(fields[2]);
    file->rules[file->count] = rule;
    file->lines[file->count++] = line;
    if (!rule->category || !rule->area || !rule->lead_unit)
        return -ENOMEM;
    char *end;
    errno = 0;
    long priority = *fields[4] ? strtol(fields[4], &end, 10) : 0;
    if (*fields[4] && (errno || *end || priority < INT32_MIN || priority > INT32_MAX)) {
        fprintf(stderr, "dispatchctl: %s: line %lu: priority '%s' is not a 32-bit integer\n", path,
                line, fields[4]);
        return -EINVAL;
    }
    rule->priority = (int32_t)priority;
    if (*fields[3]) {
        /* assisting units separated by ';' as in rules.csv */
        char *list = strdup(fields[3]);
        if (!list)
            return -ENOMEM;
        for (char *p = list; *p; p++)
            if (*p == ';')
                *p = ',';
        int rc = ctl_split_list("assisting_units", list, ASSIST_MAX, &rule->assisting_units,
                                &rule->n_assisting_units);
        free(list);
        if (rc < 0) {
            fprintf(stderr, "dispatchctl: %s: line %lu: more than %d assisting units\n", path, line,
                    ASSIST_MAX);
            return rc;
        }
    }
    return 0;
}

/* Reads a rules.csv (header category,area,lead_unit,assisting_units,priority). */
static int read_rules(const char *path, const char *district, rule_file_t *file)
{
    static const char *const header[] = {"category", "area", "lead_unit", "assisting_units",
                                         "priority"};
    csv_t *csv;
    int rc = csv_open(path, &csv);
    if (rc < 0)
        return ctl_usage_error("cannot read %s: %s", path, strerror(-rc));
    bool first = true;
    for (;;) {
        const char *fields[CSV_FIELDS_MAX];
        size_t n;
        char err[256];
        rc = csv_next(csv, fields, &n, err, sizeof(err));
        if (rc < 0) {
            rc = ctl_usage_error("%s: %s", path, err);
            break;
        }
        if (rc == 0) {
            rc = first ? ctl_usage_error("%s is empty: not even a header", path) : CTL_EXIT_OK;
            break;
        }
        if (first) {
            bool same = n == 5;
            for (size_t i = 0; same && i < 5; i++)
                same = strcmp(fields[i], header[i]) == 0;
            first = false;
            if (!same) {
                rc = ctl_usage_error("%s: the first line must be the header "
                                     "category,area,lead_unit,assisting_units,priority",
                                     path);
                break;
            }
            continue;
        }
        if (n != 5) {
            rc = ctl_usage_error("%s: line %lu: %zu fields, expected 5", path, csv_line(csv), n);
            break;
        }
        rc = add_rule(file, fields, csv_line(csv), district, path);
        if (rc == -ENOMEM) {
            rc = ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
            break;
        }
        if (rc < 0) {
            rc = CTL_EXIT_USAGE;
            break;
        }
    }
    csv_destroy(&csv);
    return rc;
}

static int rules_import(ctl_t *ctl, int argc, char **argv)
{
    protobuf_c_boolean dry_run = 0;
    long moved_days = 0;
    const ctl_option_t options[] = {
        {"dry-run", CTL_OPTION_TRUE, .value = &dry_run},
        {"moved-days", CTL_OPTION_LONG, &moved_days, .min = 0, .max = 366},
    };
    int first;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (argc - first != 1)
        return ctl_usage_error("usage: rules import FILE [--dry-run] [--moved-days N]");
    const char *path = argv[first];
    rule_file_t file = {0};
    rc = read_rules(path, ctl->district ? ctl->district : "", &file);
    if (rc == CTL_EXIT_OK) {
        Dispatch__RulesImport import = DISPATCH__RULES_IMPORT__INIT;
        import.rules = file.rules;
        import.n_rules = file.count;
        import.dry_run = dry_run;
        import.moved_days = (uint32_t)moved_days;
        ctl_refusal_lines("rules_import.rules", path, file.lines, file.count);
        Dispatch__AdminReply *reply;
        rc =
            router_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_RULES_IMPORT, &import,
                        DISPATCH__ROLE__ROLE_ADMIN, DISPATCH__ADMIN_REPLY__BODY_RULES_DIFF, &reply);
        ctl_refusal_lines(NULL, NULL, NULL, 0);
        if (rc == CTL_EXIT_OK) {
            char what[1200];
            snprintf(what, sizeof(what), "rules import %s (%zu rules)", path, file.count);
            if (!ctl->json)
                print_diff(reply->rules_diff, what, (uint32_t)moved_days);
            protobuf_c_message_free_unpacked(&reply->base, NULL);
        }
    }
    rule_file_free(&file);
    return rc;
}

static int rules_reload(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__DataReload reload = DISPATCH__DATA_RELOAD__INIT;
    long moved_days = 0;
    const ctl_option_t options[] = {
        {"dry-run", CTL_OPTION_TRUE, .value = &reload.dry_run},
        {"moved-days", CTL_OPTION_LONG, &moved_days, .min = 0, .max = 366},
    };
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "rules reload", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    reload.moved_days = (uint32_t)moved_days;
    Dispatch__AdminReply *reply;
    rc = router_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_DATA_RELOAD, &reload,
                     DISPATCH__ROLE__ROLE_ADMIN, DISPATCH__ADMIN_REPLY__BODY_RULES_DIFF, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!ctl->json)
        print_diff(reply->rules_diff, "rules reload (the router's data_dir)", reload.moved_days);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return CTL_EXIT_OK;
}

/* ------------------------------------------------------------ listing */

/* A CSV field, quoted when it must be. */
static void csv_field(const char *text)
{
    if (!strpbrk(text, ",\"\r\n") && text[0] != '#') {
        fputs(text, stdout);
        return;
    }
    putchar('"');
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            putchar('"');
        putchar(*p);
    }
    putchar('"');
}

static void export_rule(const Dispatch__RoutingRule *rule)
{
    csv_field(rule->category);
    putchar(',');
    csv_field(rule->area);
    putchar(',');
    csv_field(rule->lead_unit);
    putchar(',');
    for (size_t i = 0; i < rule->n_assisting_units; i++) {
        if (i)
            putchar(';');
        csv_field(rule->assisting_units[i]);
    }
    printf(",%d\n", rule->priority);
}

/* Pages through RulesList: each rule to the table or the CSV. */
static int rules_pages(ctl_t *ctl, const char *category, long limit, bool csv)
{
    static const char *const headers[] = {"CATEGORY", "AREA", "LEAD", "ASSISTING", "PRIORITY"};
    ctl_table_t *table = NULL;
    if (!csv && !ctl->json && ctl_table_new(5, headers, &table) < 0)
        return ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
    if (csv)
        printf("category,area,lead_unit,assisting_units,priority\n");
    char after_category[128] = "", after_area[128] = "";
    long shown = 0;
    int rc = CTL_EXIT_OK;
    uint32_t total = 0;
    bool more = true;
    while (rc == CTL_EXIT_OK && more && (!limit || shown < limit)) {
        Dispatch__RulesList list = DISPATCH__RULES_LIST__INIT;
        list.after_category = after_category;
        list.after_area = after_area;
        list.category = (char *)(category ? category : "");
        list.limit = limit && limit - shown < EXPORT_PAGE ? (uint32_t)(limit - shown) : EXPORT_PAGE;
        Dispatch__AdminReply *reply;
        rc = router_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_RULES_LIST, &list,
                         DISPATCH__ROLE__ROLE_ADMIN, DISPATCH__ADMIN_REPLY__BODY_RULES, &reply);
        if (rc != CTL_EXIT_OK)
            break;
        const Dispatch__RulesView *view = reply->rules;
        total = view->total;
        for (size_t i = 0; i < view->n_rules; i++) {
            const Dispatch__RoutingRule *rule = view->rules[i];
            if (csv) {
                export_rule(rule);
            } else if (table) {
                char assist[1200] = "", priority[16];
                for (size_t k = 0; k < rule->n_assisting_units; k++)
                    snprintf(assist + strlen(assist), sizeof(assist) - strlen(assist), "%s%s",
                             k ? ";" : "", rule->assisting_units[k]);
                snprintf(priority, sizeof(priority), "%d", rule->priority);
                const char *cells[] = {rule->category, *rule->area ? rule->area : "*",
                                       rule->lead_unit, assist, priority};
                ctl_table_add(table, cells);
            }
        }
        shown += (long)view->n_rules;
        more = view->more && view->n_rules > 0;
        if (view->n_rules) {
            snprintf(after_category, sizeof(after_category), "%s",
                     view->rules[view->n_rules - 1]->category);
            snprintf(after_area, sizeof(after_area), "%s", view->rules[view->n_rules - 1]->area);
        }
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    }
    if (table && rc == CTL_EXIT_OK) {
        ctl_table_print(table, stdout);
        printf("(%ld shown of %u rules%s)\n", shown, total, more ? "; more: raise --limit" : "");
    }
    ctl_table_destroy(&table);
    return rc;
}

static int rules_export(ctl_t *ctl, int argc, char **argv)
{
    int rc = ctl_parse_options(argc, argv, NULL, 0, "rules export", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    bool json = ctl->json;
    ctl->json = false; /* CSV is the output */
    rc = rules_pages(ctl, NULL, 0, true);
    ctl->json = json;
    return rc;
}

static int rules_list(ctl_t *ctl, int argc, char **argv)
{
    const char *category = NULL;
    long limit = 200;
    const ctl_option_t options[] = {
        {"category", CTL_OPTION_TEXT, .value = &category},
        {"limit", CTL_OPTION_LONG, &limit, .min = 1, .max = 1000000},
    };
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "rules list", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    return rules_pages(ctl, category, limit, false);
}

static const char rules_usage[] =
    "usage: dispatchctl [--district D] rules COMMAND\n"
    "  import FILE [--dry-run] [--moved-days N]\n"
    "      replaces the district's rules with FILE (rules.csv format: category,area,\n"
    "      lead_unit,assisting_units,priority) in one step, or refuses it naming the line;\n"
    "      prints rules added, changed, removed, the tickets of the last N days that would\n"
    "      route elsewhere, the tickets in triage the rules route, and warnings\n"
    "  reload [--dry-run] [--moved-days N]\n"
    "      the router reads units.csv and rules.csv of its data_dir again, the same way\n"
    "  export                       every rule, as rules.csv, on stdout\n"
    "  list [--category C] [--limit N]\n"
    "  suggest [--days N | --history FILE] [--min-support N] [--min-share S]\n"
    "          [--evaluate SHARE] [--out FILE]\n"
    "      rules learned from the final owners of past tickets (the router's of the last N\n"
    "      days, default 90, or a CSV at,category,area,unit), with each one's support and\n"
    "      expected accuracy, as a rules.csv; --evaluate 0.6 learns from the first 60 %% by\n"
    "      time and scores the rest against a category-only table\n";

int ctl_cmd_rules(ctl_t *ctl, int argc, char **argv)
{
    const char *verb = argc >= 2 ? argv[1] : "";
    if (strcmp(verb, "import") == 0)
        return rules_import(ctl, argc - 1, argv + 1);
    if (strcmp(verb, "reload") == 0)
        return rules_reload(ctl, argc - 1, argv + 1);
    if (strcmp(verb, "export") == 0)
        return rules_export(ctl, argc - 1, argv + 1);
    if (strcmp(verb, "list") == 0)
        return rules_list(ctl, argc - 1, argv + 1);
    if (strcmp(verb, "suggest") == 0)
        return ctl_rules_suggest(ctl, argc - 1, argv + 1);
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(rules_usage, stdout);
        return CTL_EXIT_OK;
    }
    return ctl_usage_error("rules: %s '%s' (import, reload, export, list, suggest; rules --help)",
                           *verb ? "unknown command" : "a command is needed", verb);
}

/* ------------------------------------------------------------ units */

int ctl_cmd_units(ctl_t *ctl, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "list") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("usage: dispatchctl [--district D] units list [--after ID] [--limit N]\n"
                   "  the unit registry of the district's router, in id order\n");
            return CTL_EXIT_OK;
        }
        return ctl_usage_error("usage: units list [--after ID] [--limit N]");
    }
    Dispatch__UnitsList list = DISPATCH__UNITS_LIST__INIT;
    long limit = 0;
    const ctl_option_t options[] = {
        {"after", CTL_OPTION_TEXT, .value = &list.after_id},
        {"limit", CTL_OPTION_LONG, &limit, .min = 1, .max = 10000},
    };
    int rc = ctl_parse_options(argc - 1, argv + 1, options, CTL_COUNT(options), "units list", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    list.limit = (uint32_t)limit;
    Dispatch__AdminReply *reply;
    rc = router_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_UNITS_LIST, &list,
                     DISPATCH__ROLE__ROLE_ADMIN, DISPATCH__ADMIN_REPLY__BODY_UNITS, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    const Dispatch__UnitsView *view = reply->units;
    if (!ctl->json) {
        static const char *const headers[] = {"ID",    "NAME",     "PARENT",
                                              "LEVEL", "DISTRICT", "ACTIVE"};
        ctl_table_t *table;
        if (ctl_table_new(6, headers, &table) == 0) {
            for (size_t i = 0; i < view->n_units; i++) {
                const Dispatch__Unit *unit = view->units[i];
                char level[32];
                const char *cells[] = {unit->id,
                                       unit->name,
                                       unit->parent_id,
                                       ctl_enum_lower(&dispatch__unit_level__descriptor,
                                                      unit->level, level, sizeof(level)),
                                       unit->district,
                                       unit->active ? "yes" : "no"};
                ctl_table_add(table, cells);
            }
            ctl_table_print(table, stdout);
            ctl_table_destroy(&table);
        }
        if (view->more && view->n_units)
            printf("(%zu of %u units; more: --after %s)\n", view->n_units, view->total,
                   view->units[view->n_units - 1]->id);
        else
            printf("(%zu of %u units)\n", view->n_units, view->total);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return CTL_EXIT_OK;
}

/* ------------------------------------------------------------ route */

int ctl_cmd_route(ctl_t *ctl, int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: dispatchctl [--district D] route explain --category C [--area A]\n"
               "  which rule routes a ticket of that category and area now, to which unit, "
               "and why\n");
        return CTL_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "explain") != 0)
        return ctl_usage_error("usage: route explain --category C [--area A]");
    Dispatch__RouteExplain explain = DISPATCH__ROUTE_EXPLAIN__INIT;
    const ctl_option_t options[] = {
        {"category", CTL_OPTION_TEXT, .value = &explain.category},
        {"area", CTL_OPTION_TEXT, .value = &explain.area},
    };
    int rc =
        ctl_parse_options(argc - 1, argv + 1, options, CTL_COUNT(options), "route explain", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!*explain.category)
        return ctl_usage_error("route explain needs --category");
    Dispatch__AdminReply *reply;
    rc = router_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_ROUTE_EXPLAIN, &explain,
                     DISPATCH__ROLE__ROLE_ADMIN, DISPATCH__ADMIN_REPLY__BODY_ROUTE, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    const Dispatch__RouteExplanation *route = reply->route;
    if (!ctl->json) {
        char text[1200];
        printf("%s\n", ctl_clean(route->text, text, sizeof(text)));
        if (route->rule)
            print_rule(route->area_rule ? "area rule" : "default", route->rule);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return CTL_EXIT_OK;
}

/* ------------------------------------------------------------ triage */

int ctl_triage_reroute(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__TriageReroute reroute = DISPATCH__TRIAGE_REROUTE__INIT;
    const ctl_option_t options[] = {
        {"dry-run", CTL_OPTION_TRUE, .value = &reroute.dry_run},
    };
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "triage reroute", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__AdminReply *reply;
    rc = router_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_REROUTE, &reroute,
                     DISPATCH__ROLE__ROLE_DISPATCHER, DISPATCH__ADMIN_REPLY__BODY_RULES_DIFF,
                     &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    const Dispatch__RulesDiff *diff = reply->rules_diff;
    if (!ctl->json) {
        printf("triage reroute: %u tickets %s\n", diff->moved_count,
               diff->applied ? "sent by the rules of now" : "would be sent (dry run)");
        for (size_t i = 0; i < diff->n_moved; i++) {
            char id[128], unit[128];
            printf("  %s -> %s\n", ctl_clean(diff->moved[i]->ticket_id, id, sizeof(id)),
                   ctl_clean(diff->moved[i]->to_unit, unit, sizeof(unit)));
        }
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return CTL_EXIT_OK;
}

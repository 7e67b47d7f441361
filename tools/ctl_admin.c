/* dispatchctl commands on a router's admin endpoint: triage, registry,
 * rule (docs/protocol.md section 6). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"

/* The number of entries AdminRequest lists may hold (assisting units). */
#define ASSIST_MAX 16

enum {
    OPT_UNIT = 256,
    OPT_ASSIST,
    OPT_NOTE,
    OPT_LIMIT,
    OPT_AFTER,
    OPT_ID,
    OPT_NAME,
    OPT_LEVEL,
    OPT_PARENT,
    OPT_DISTRICT,
    OPT_INACTIVE,
    OPT_CATEGORY,
    OPT_AREA,
    OPT_LEAD,
    OPT_PRIORITY,
};

/* "done" line for AdminDone: the ticket and its state when given. */
static void print_done(const Dispatch__AdminReply *reply)
{
    const Dispatch__AdminDone *done =
        reply->body_case == DISPATCH__ADMIN_REPLY__BODY_DONE ? reply->done : NULL;
    char id[128];
    if (done && *done->ticket_id)
        printf("%s  %s\n", ctl_clean(done->ticket_id, id, sizeof(id)),
               ctl_enum_name(&dispatch__ticket_state__descriptor, done->state, true));
    else
        printf("done\n");
}

/* Sends request to the router (of `district` when --district is not given)
 * and prints AdminDone. */
static int admin_done(ctl_t *ctl, const char *district, Dispatch__AdminRequest *request,
                      Dispatch__Role default_role)
{
    const char *url;
    int rc = ctl_router_url(ctl, district, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__AdminReply *reply;
    rc = ctl_admin_call(ctl, url, request, ctl_actor(ctl, "dispatchctl"), default_role, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_DONE)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    else if (!ctl->json)
        print_done(reply);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

/* Lists a queue page of the router; shared by "triage list" and "unit list". */
static int list_queue(ctl_t *ctl, Dispatch__ListQueue *list, const char *default_actor,
                      Dispatch__Role default_role)
{
    const char *url;
    int rc = ctl_router_url(ctl, NULL, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE;
    request.list_queue = list;
    Dispatch__AdminReply *reply;
    rc = ctl_admin_call(ctl, url, &request, default_actor, default_role, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_QUEUE || !reply->queue)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    else if (!ctl->json)
        ctl_print_queue(reply->queue, list->kind != DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

/* Parses --limit and --after of a list command into list. */
static int parse_list_options(int argc, char **argv, Dispatch__ListQueue *list, const char **unit)
{
    static const struct option options[] = {
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"after", required_argument, NULL, OPT_AFTER},
        {"unit", required_argument, NULL, OPT_UNIT},
        {NULL, 0, NULL, 0},
    };
    long limit;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_LIMIT:
            if (ctl_parse_long("--limit", optarg, 1, 500, &limit) < 0)
                return CTL_EXIT_USAGE;
            list->limit = (uint32_t)limit;
            break;
        case OPT_AFTER:
            list->after_ticket_id = optarg;
            break;
        case OPT_UNIT:
            if (!unit)
                return ctl_usage_error("--unit is not an option of this command");
            *unit = optarg;
            break;
        default:
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return ctl_usage_error("unexpected argument '%s'", argv[optind]);
    return CTL_EXIT_OK;
}

int ctl_list_unit_queue(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT;
    const char *unit = NULL;
    int rc = parse_list_options(argc, argv, &list, &unit);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!unit)
        return ctl_usage_error("unit list needs --unit U");
    list.unit_id = (char *)unit;
    if (ctl->district)
        list.district = (char *)ctl->district;
    return list_queue(ctl, &list, unit, DISPATCH__ROLE__ROLE_UNIT);
}

static int triage_assign(ctl_t *ctl, int argc, char **argv)
{
    static const struct option options[] = {
        {"unit", required_argument, NULL, OPT_UNIT},
        {"assist", required_argument, NULL, OPT_ASSIST},
        {"note", required_argument, NULL, OPT_NOTE},
        {NULL, 0, NULL, 0},
    };
    Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
    const char *assist = NULL;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_UNIT:
            assign.lead_unit = optarg;
            break;
        case OPT_ASSIST:
            assist = optarg;
            break;
        case OPT_NOTE:
            assign.note = optarg;
            break;
        default:
            return CTL_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || !*assign.lead_unit)
        return ctl_usage_error("usage: triage assign TICKET --unit U [--assist U1,U2] [--note T]");
    assign.ticket_id = argv[optind];
    char **units = NULL;
    size_t count = 0;
    if (assist) {
        int rc = ctl_split_list("--assist", assist, ASSIST_MAX, &units, &count);
        if (rc < 0)
            return rc == -ENOMEM ? ctl_fail(CTL_EXIT_INTERNAL, "out of memory") : CTL_EXIT_USAGE;
    }
    assign.assisting_units = units;
    assign.n_assisting_units = count;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN;
    request.triage_assign = &assign;
    int rc = admin_done(ctl, NULL, &request, DISPATCH__ROLE__ROLE_DISPATCHER);
    ctl_free_list(units, count);
    return rc;
}

int ctl_cmd_triage(ctl_t *ctl, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error("usage: triage list | triage assign TICKET --unit U");
    if (strcmp(argv[1], "list") == 0) {
        Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
        list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_TRIAGE;
        int rc = parse_list_options(argc - 1, argv + 1, &list, NULL);
        if (rc != CTL_EXIT_OK)
            return rc;
        if (ctl->district)
            list.district = (char *)ctl->district;
        return list_queue(ctl, &list, ctl_actor(ctl, "dispatchctl"),
                          DISPATCH__ROLE__ROLE_DISPATCHER);
    }
    if (strcmp(argv[1], "assign") == 0)
        return triage_assign(ctl, argc - 1, argv + 1);
    return ctl_usage_error("triage: unknown command '%s' (list, assign)", argv[1]);
}

/* --- registry --- */

static int registry_upsert(ctl_t *ctl, int argc, char **argv)
{
    static const struct option options[] = {
        {"id", required_argument, NULL, OPT_ID},
        {"name", required_argument, NULL, OPT_NAME},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"parent", required_argument, NULL, OPT_PARENT},
        {"district", required_argument, NULL, OPT_DISTRICT},
        {"inactive", no_argument, NULL, OPT_INACTIVE},
        {NULL, 0, NULL, 0},
    };
    Dispatch__Unit unit = DISPATCH__UNIT__INIT;
    unit.active = true;
    int value = 0, opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_ID:
            unit.id = optarg;
            break;
        case OPT_NAME:
            unit.name = optarg;
            break;
        case OPT_LEVEL:
            if (ctl_parse_word(ctl_level_words, "--level", optarg, &value) < 0)
                return CTL_EXIT_USAGE;
            unit.level = value;
            break;
        case OPT_PARENT:
            unit.parent_id = optarg;
            break;
        case OPT_DISTRICT:
            unit.district = optarg;
            break;
        case OPT_INACTIVE:
            unit.active = false;
            break;
        default:
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return ctl_usage_error("registry upsert: unexpected argument '%s'", argv[optind]);
    if (!*unit.id || !*unit.name || !unit.level)
        return ctl_usage_error("registry upsert needs --id, --name and --level");
    Dispatch__UnitUpsert upsert = DISPATCH__UNIT_UPSERT__INIT;
    upsert.unit = &unit;
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT;
    request.unit_upsert = &upsert;
    return admin_done(ctl, *unit.district ? unit.district : NULL, &request,
                      DISPATCH__ROLE__ROLE_ADMIN);
}

static int registry_remove(ctl_t *ctl, int argc, char **argv)
{
    static const struct option options[] = {
        {"id", required_argument, NULL, OPT_ID},
        {NULL, 0, NULL, 0},
    };
    Dispatch__UnitRemove remove = DISPATCH__UNIT_REMOVE__INIT;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (opt != OPT_ID)
            return CTL_EXIT_USAGE;
        remove.unit_id = optarg;
    }
    if (optind < argc || !*remove.unit_id)
        return ctl_usage_error("usage: registry remove --id U");
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    request.body_case = DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE;
    request.unit_remove = &remove;
    return admin_done(ctl, NULL, &request, DISPATCH__ROLE__ROLE_ADMIN);
}

int ctl_cmd_registry(ctl_t *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "upsert") == 0)
        return registry_upsert(ctl, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "remove") == 0)
        return registry_remove(ctl, argc - 1, argv + 1);
    return ctl_usage_error("usage: registry upsert ... | registry remove --id U");
}

/* --- rule --- */

static int rule_command(ctl_t *ctl, int argc, char **argv, bool upsert)
{
    static const struct option options[] = {
        {"category", required_argument, NULL, OPT_CATEGORY},
        {"area", required_argument, NULL, OPT_AREA},
        {"lead", required_argument, NULL, OPT_LEAD},
        {"assist", required_argument, NULL, OPT_ASSIST},
        {"priority", required_argument, NULL, OPT_PRIORITY},
        {"district", required_argument, NULL, OPT_DISTRICT},
        {NULL, 0, NULL, 0},
    };
    Dispatch__RoutingRule rule = DISPATCH__ROUTING_RULE__INIT;
    const char *assist = NULL;
    long priority;
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_CATEGORY:
            rule.category = optarg;
            break;
        case OPT_AREA:
            rule.area = optarg;
            break;
        case OPT_DISTRICT:
            rule.district = optarg;
            break;
        case OPT_LEAD:
        case OPT_ASSIST:
        case OPT_PRIORITY:
            if (!upsert)
                return ctl_usage_error("rule remove takes --category, --area, --district");
            if (opt == OPT_LEAD)
                rule.lead_unit = optarg;
            else if (opt == OPT_ASSIST)
                assist = optarg;
            else if (ctl_parse_long("--priority", optarg, INT32_MIN, INT32_MAX, &priority) < 0)
                return CTL_EXIT_USAGE;
            else
                rule.priority = (int32_t)priority;
            break;
        default:
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return ctl_usage_error("rule: unexpected argument '%s'", argv[optind]);
    if (!*rule.district && ctl->district)
        rule.district = (char *)ctl->district;
    if (!*rule.category || !*rule.district || (upsert && !*rule.lead_unit))
        return ctl_usage_error(upsert ? "rule upsert needs --category, --lead and --district"
                                      : "rule remove needs --category and --district");
    Dispatch__AdminRequest request = DISPATCH__ADMIN_REQUEST__INIT;
    Dispatch__RuleUpsert rule_upsert = DISPATCH__RULE_UPSERT__INIT;
    Dispatch__RuleRemove rule_remove = DISPATCH__RULE_REMOVE__INIT;
    char **units = NULL;
    size_t count = 0;
    if (upsert) {
        if (assist) {
            int rc = ctl_split_list("--assist", assist, ASSIST_MAX, &units, &count);
            if (rc < 0)
                return rc == -ENOMEM ? ctl_fail(CTL_EXIT_INTERNAL, "out of memory")
                                     : CTL_EXIT_USAGE;
        }
        rule.assisting_units = units;
        rule.n_assisting_units = count;
        rule_upsert.rule = &rule;
        request.body_case = DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT;
        request.rule_upsert = &rule_upsert;
    } else {
        rule_remove.district = rule.district;
        rule_remove.category = rule.category;
        rule_remove.area = rule.area;
        request.body_case = DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE;
        request.rule_remove = &rule_remove;
    }
    int rc = admin_done(ctl, rule.district, &request, DISPATCH__ROLE__ROLE_ADMIN);
    ctl_free_list(units, count);
    return rc;
}

int ctl_cmd_rule(ctl_t *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "upsert") == 0)
        return rule_command(ctl, argc - 1, argv + 1, true);
    if (argc >= 2 && strcmp(argv[1], "remove") == 0)
        return rule_command(ctl, argc - 1, argv + 1, false);
    return ctl_usage_error("usage: rule upsert ... | rule remove ...");
}

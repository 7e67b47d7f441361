/* dispatchctl commands on a router's admin endpoint: triage, registry,
 * rule (docs/protocol.md section 6). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"

/* The number of entries AdminRequest lists may hold (assisting units). */
#define ASSIST_MAX 16

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
    for (size_t i = 0; done && i < done->n_warnings; i++) {
        char text[1024];
        fprintf(stderr, "warning: %s\n", ctl_clean(done->warnings[i], text, sizeof(text)));
    }
}

/* Sends a request to the router (of `district` when --district is not
 * given; NULL: the only one) and prints its reply: AdminDone, or the queue
 * page of list_queue ("triage list", "unit list"). */
static int admin_request(ctl_t *ctl, const char *district,
                         Dispatch__AdminRequest__BodyCase body_case, void *body,
                         const char *default_actor, Dispatch__Role default_role)
{
    const char *url;
    int rc = ctl_router_url(ctl, district, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__AdminReply *reply;
    rc = ctl_admin_call(ctl, url, body_case, body, default_actor, default_role, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    const Dispatch__ListQueue *list =
        body_case == DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE ? body : NULL;
    bool expected = list ? reply->body_case == DISPATCH__ADMIN_REPLY__BODY_QUEUE && reply->queue
                         : reply->body_case == DISPATCH__ADMIN_REPLY__BODY_DONE;
    if (!expected)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    else if (!ctl->json && list)
        ctl_print_queue(reply->queue, list->kind != DISPATCH__QUEUE_KIND__QUEUE_KIND_UNIT);
    else if (!ctl->json)
        print_done(reply);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

/* A command that changes something: AdminDone is its answer. */
static int admin_done(ctl_t *ctl, const char *district, Dispatch__AdminRequest__BodyCase body_case,
                      void *body, Dispatch__Role default_role)
{
    return admin_request(ctl, district, body_case, body, ctl_actor(ctl, "dispatchctl"),
                         default_role);
}

/* --assist U1,U2 (may be NULL) into a list the caller frees with
 * ctl_free_list. */
static int split_assist(const char *assist, char ***units, size_t *count)
{
    *units = NULL;
    *count = 0;
    if (!assist)
        return CTL_EXIT_OK;
    int rc = ctl_split_list("--assist", assist, ASSIST_MAX, units, count);
    if (rc == -ENOMEM)
        return ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
    return rc < 0 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
}

/* Parses --limit and --after of a list command into list. */
static int parse_list_options(int argc, char **argv, Dispatch__ListQueue *list, const char **unit)
{
    long limit = 0;
    const ctl_option_t options[] = {
        {"limit", CTL_OPTION_LONG, &limit, .min = 1, .max = 500},
        {"after", CTL_OPTION_TEXT, .value = &list->after_ticket_id},
        unit ? (ctl_option_t){"unit", CTL_OPTION_TEXT, .value = unit}
             : (ctl_option_t){"unit", CTL_OPTION_CHECK, "--unit is not an option of this command",
                              .check = ctl_option_refused},
    };
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    list->limit = (uint32_t)limit;
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
    return admin_request(ctl, NULL, DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE, &list, unit,
                         DISPATCH__ROLE__ROLE_UNIT);
}

static int triage_assign(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__TriageAssign assign = DISPATCH__TRIAGE_ASSIGN__INIT;
    const char *assist = NULL;
    const ctl_option_t options[] = {
        {"unit", CTL_OPTION_TEXT, .value = &assign.lead_unit},
        {"assist", CTL_OPTION_TEXT, .value = &assist},
        {"note", CTL_OPTION_TEXT, .value = &assign.note},
    };
    int first;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (argc - first != 1 || !*assign.lead_unit)
        return ctl_usage_error("usage: triage assign TICKET --unit U [--assist U1,U2] [--note T]");
    assign.ticket_id = argv[first];
    rc = split_assist(assist, &assign.assisting_units, &assign.n_assisting_units);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = admin_done(ctl, NULL, DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN, &assign,
                    DISPATCH__ROLE__ROLE_DISPATCHER);
    ctl_free_list(assign.assisting_units, assign.n_assisting_units);
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
        return admin_request(ctl, NULL, DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE, &list,
                             ctl_actor(ctl, "dispatchctl"), DISPATCH__ROLE__ROLE_DISPATCHER);
    }
    if (strcmp(argv[1], "assign") == 0)
        return triage_assign(ctl, argc - 1, argv + 1);
    if (strcmp(argv[1], "reroute") == 0)
        return ctl_triage_reroute(ctl, argc - 1, argv + 1);
    return ctl_usage_error("triage: unknown command '%s' (list, assign, reroute)", argv[1]);
}

/* --- registry --- */

static int registry_upsert(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__Unit unit = DISPATCH__UNIT__INIT;
    unit.active = true;
    const ctl_option_t options[] = {
        {"id", CTL_OPTION_TEXT, .value = &unit.id},
        {"name", CTL_OPTION_TEXT, .value = &unit.name},
        {"level", CTL_OPTION_WORD, &unit.level, .words = &dispatch__unit_level__descriptor},
        {"parent", CTL_OPTION_TEXT, .value = &unit.parent_id},
        {"district", CTL_OPTION_TEXT, .value = &unit.district},
        {"inactive", CTL_OPTION_FALSE, .value = &unit.active},
    };
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "registry upsert", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!*unit.id || !*unit.name || !unit.level)
        return ctl_usage_error("registry upsert needs --id, --name and --level");
    Dispatch__UnitUpsert upsert = DISPATCH__UNIT_UPSERT__INIT;
    upsert.unit = &unit;
    return admin_done(ctl, *unit.district ? unit.district : NULL,
                      DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT, &upsert,
                      DISPATCH__ROLE__ROLE_ADMIN);
}

static int registry_remove(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__UnitRemove remove = DISPATCH__UNIT_REMOVE__INIT;
    const ctl_option_t options[] = {
        {"id", CTL_OPTION_TEXT, .value = &remove.unit_id},
    };
    int first;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (first < argc || !*remove.unit_id)
        return ctl_usage_error("usage: registry remove --id U");
    return admin_done(ctl, NULL, DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE, &remove,
                      DISPATCH__ROLE__ROLE_ADMIN);
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
    Dispatch__RoutingRule rule = DISPATCH__ROUTING_RULE__INIT;
    const char *assist = NULL;
    long priority = 0;
    ctl_option_t options[] = {
        {"category", CTL_OPTION_TEXT, .value = &rule.category},
        {"area", CTL_OPTION_TEXT, .value = &rule.area},
        {"district", CTL_OPTION_TEXT, .value = &rule.district},
        {"lead", CTL_OPTION_TEXT, .value = &rule.lead_unit},
        {"assist", CTL_OPTION_TEXT, .value = &assist},
        {"priority", CTL_OPTION_LONG, &priority, .min = INT32_MIN, .max = INT32_MAX},
    };
    /* rule remove refuses what only an upsert takes (from --lead on). */
    for (size_t i = 3; !upsert && i < CTL_COUNT(options); i++) {
        options[i].kind = CTL_OPTION_CHECK;
        options[i].value = "rule remove takes --category, --area, --district";
        options[i].check = ctl_option_refused;
    }
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "rule", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    rule.priority = (int32_t)priority;
    if (!*rule.district && ctl->district)
        rule.district = (char *)ctl->district;
    if (!*rule.category || !*rule.district || (upsert && !*rule.lead_unit))
        return ctl_usage_error(upsert ? "rule upsert needs --category, --lead and --district"
                                      : "rule remove needs --category and --district");
    if (!upsert) {
        Dispatch__RuleRemove rule_remove = DISPATCH__RULE_REMOVE__INIT;
        rule_remove.district = rule.district;
        rule_remove.category = rule.category;
        rule_remove.area = rule.area;
        return admin_done(ctl, rule.district, DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE,
                          &rule_remove, DISPATCH__ROLE__ROLE_ADMIN);
    }
    rc = split_assist(assist, &rule.assisting_units, &rule.n_assisting_units);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__RuleUpsert rule_upsert = DISPATCH__RULE_UPSERT__INIT;
    rule_upsert.rule = &rule;
    rc = admin_done(ctl, rule.district, DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT, &rule_upsert,
                    DISPATCH__ROLE__ROLE_ADMIN);
    ctl_free_list(rule.assisting_units, rule.n_assisting_units);
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

/* dispatchctl supervise: supervisors and leaders at the escalation of a
 * district (docs/protocol.md section 6, DESIGN.md section 2).
 *
 *   supervise list [--queue extension|sign-off|overdue|urgent] [--limit N] [--after T]
 *   supervise extensions          the extension requests waiting for a decision
 *   supervise sign-offs           the leader sign-off queue (role leader)
 *   supervise grant TICKET [--request ID] [--until TIME] [--reason T]
 *   supervise refuse TICKET [--request ID] --reason T
 *   supervise sign-off TICKET | --report ID  --instruction T
 *
 * Every call goes to the escalation's admin endpoint (--escalation URL, else
 * the topology's escalation of --district, or the only one). Without
 * --request, grant and refuse answer the request pending on the ticket (read
 * from the extension queue). TIME is "YYYY-MM-DD" (the end of that day) or
 * "YYYY-MM-DD HH:MM" in the city's time zone; without --until a grant gives
 * what the unit asked for. The decision and the instruction reach the unit
 * through its router, as every delivery does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_common.h"

/* The queues a supervisor or a leader lists, by the command line's word. */
static const struct {
    const char *word;
    Dispatch__QueueKind kind;
    Dispatch__Role role; /* the default role for listing it */
} queues[] = {
    {"extension", DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION, DISPATCH__ROLE__ROLE_SUPERVISOR},
    {"sign-off", DISPATCH__QUEUE_KIND__QUEUE_KIND_SIGN_OFF, DISPATCH__ROLE__ROLE_LEADER},
    {"overdue", DISPATCH__QUEUE_KIND__QUEUE_KIND_OVERDUE, DISPATCH__ROLE__ROLE_SUPERVISOR},
    {"urgent", DISPATCH__QUEUE_KIND__QUEUE_KIND_URGENT, DISPATCH__ROLE__ROLE_SUPERVISOR},
};

static int choose_queue(const char *option, const char *arg, void *value)
{
    for (size_t i = 0; i < CTL_COUNT(queues); i++) {
        if (strcmp(arg, queues[i].word) == 0) {
            *(size_t *)value = i;
            return 0;
        }
    }
    fprintf(stderr, "dispatchctl: %s: '%s' is not one of extension, sign-off, overdue, urgent\n",
            option, arg);
    return -EINVAL;
}

/* "YYYY-MM-DD" (24:00 of that day, the deadline convention) or
 * "YYYY-MM-DD HH:MM" / "YYYY-MM-DDTHH:MM", in the display time zone. */
static int parse_until(const char *option, const char *arg, void *value)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(arg, "%Y-%m-%d", &tm);
    bool day_only = end && *end == '\0';
    if (end && !day_only && (*end == ' ' || *end == 'T'))
        end = strptime(end + 1, "%H:%M", &tm);
    if (!end || *end != '\0' || tm.tm_year < 100 || tm.tm_year > 300) {
        fprintf(stderr, "dispatchctl: %s: '%s' is not YYYY-MM-DD or YYYY-MM-DD HH:MM\n", option,
                arg);
        return -EINVAL;
    }
    if (day_only)
        tm.tm_mday++; /* mktime normalizes the day after */
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1) {
        fprintf(stderr, "dispatchctl: %s: '%s' is not a time\n", option, arg);
        return -EINVAL;
    }
    *(int64_t *)value = (int64_t)t * 1000;
    return 0;
}

/* One call to the escalation: the reply (free it) or an exit code. */
static int escalation_call(ctl_t *ctl, Dispatch__AdminRequest__BodyCase body_case, void *body,
                           Dispatch__Role default_role, Dispatch__AdminReply **reply)
{
    const char *url;
    int rc = ctl_escalation_url(ctl, NULL, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    return ctl_admin_call(ctl, url, body_case, body, ctl_actor(ctl, "dispatchctl"), default_role,
                          reply);
}

static int list_queue(ctl_t *ctl, int argc, char **argv, size_t queue)
{
    Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
    long limit = 0;
    const ctl_option_t options[] = {
        {"queue", CTL_OPTION_CHECK, &queue, .check = choose_queue},
        {"limit", CTL_OPTION_LONG, &limit, .min = 1, .max = 500},
        {"after", CTL_OPTION_TEXT, .value = &list.after_ticket_id},
    };
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "supervise list", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    list.kind = queues[queue].kind;
    list.limit = (uint32_t)limit;
    if (ctl->district)
        list.district = (char *)ctl->district;
    Dispatch__AdminReply *reply;
    rc = escalation_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE, &list, queues[queue].role,
                         &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_QUEUE || !reply->queue)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply to list_queue");
    else if (!ctl->json)
        ctl_print_queue(reply->queue, true);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

/* The id of the extension request pending on ticket, from the extension
 * queue, into buf. */
static int pending_request(ctl_t *ctl, const char *ticket, char *buf, size_t len)
{
    bool json = ctl->json;
    ctl->json = false; /* the lookup is not the command's answer */
    char after[128] = "";
    int rc = CTL_EXIT_OK;
    bool found = false, more = true;
    while (rc == CTL_EXIT_OK && !found && more) {
        Dispatch__ListQueue list = DISPATCH__LIST_QUEUE__INIT;
        list.kind = DISPATCH__QUEUE_KIND__QUEUE_KIND_EXTENSION;
        list.limit = 500;
        list.after_ticket_id = after;
        if (ctl->district)
            list.district = (char *)ctl->district;
        Dispatch__AdminReply *reply;
        rc = escalation_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE, &list,
                             DISPATCH__ROLE__ROLE_SUPERVISOR, &reply);
        if (rc != CTL_EXIT_OK)
            break;
        if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_QUEUE || !reply->queue) {
            rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply to list_queue");
        } else {
            const Dispatch__QueueView *queue = reply->queue;
            for (size_t i = 0; i < queue->n_items && !found; i++) {
                if (strcmp(queue->items[i]->ticket_id, ticket) == 0 &&
                    *queue->items[i]->request_id) {
                    snprintf(buf, len, "%s", queue->items[i]->request_id);
                    found = true;
                }
            }
            more = queue->more && queue->n_items > 0;
            if (more)
                snprintf(after, sizeof(after), "%s", queue->items[queue->n_items - 1]->ticket_id);
        }
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    }
    ctl->json = json;
    if (rc == CTL_EXIT_OK && !found)
        rc = ctl_fail(CTL_EXIT_NOT_FOUND, "ticket %s has no extension request waiting", ticket);
    return rc;
}

static int decide(ctl_t *ctl, int argc, char **argv, bool grant)
{
    Dispatch__ExtensionDecision decision = DISPATCH__EXTENSION_DECISION__INIT;
    const char *reason = NULL;
    int64_t until = 0;
    const ctl_option_t options[] = {
        {"request", CTL_OPTION_TEXT, .value = &decision.request_id},
        {"reason", CTL_OPTION_TEXT, .value = &reason},
        {"note", CTL_OPTION_TEXT, .value = &reason},
        grant ? (ctl_option_t){"until", CTL_OPTION_CHECK, &until, .check = parse_until}
              : (ctl_option_t){"until", CTL_OPTION_CHECK, "a refusal sets no new deadline",
                               .check = ctl_option_refused},
    };
    int first;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (argc - first != 1)
        return ctl_usage_error(grant ? "usage: supervise grant TICKET [--request ID] [--until "
                                       "TIME] [--reason T]"
                                     : "usage: supervise refuse TICKET [--request ID] --reason T");
    if (!grant && (!reason || !*reason))
        return ctl_usage_error("supervise refuse needs --reason: the unit is told why");
    decision.ticket_id = argv[first];
    decision.granted = grant;
    decision.new_deadline = until;
    decision.note = (char *)(reason ? reason : "");
    char request_id[128];
    if (!*decision.request_id) {
        rc = pending_request(ctl, decision.ticket_id, request_id, sizeof(request_id));
        if (rc != CTL_EXIT_OK)
            return rc;
        decision.request_id = request_id;
    }
    Dispatch__AdminReply *reply;
    rc = escalation_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION, &decision,
                         DISPATCH__ROLE__ROLE_SUPERVISOR, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_DONE || !reply->done) {
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply to extension_decision");
    } else if (!ctl->json) {
        char id[128], request[128], at[32];
        printf("%s  extension %s %s", ctl_clean(decision.ticket_id, id, sizeof(id)),
               ctl_clean(decision.request_id, request, sizeof(request)),
               grant ? "granted" : "refused");
        if (grant && until)
            printf(" until %s", ctl_time(until, at, sizeof(at)));
        else if (grant)
            printf(" as requested");
        printf("  (%s)\n",
               ctl_enum_name(&dispatch__ticket_state__descriptor, reply->done->state, true));
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static int sign_off(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__LeaderSignOff body = DISPATCH__LEADER_SIGN_OFF__INIT;
    const ctl_option_t options[] = {
        {"report", CTL_OPTION_TEXT, .value = &body.report_id},
        {"instruction", CTL_OPTION_TEXT, .value = &body.instruction},
    };
    int first;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    bool report = *body.report_id;
    if (argc - first != (report ? 0 : 1) || !*body.instruction)
        return ctl_usage_error("usage: supervise sign-off TICKET --instruction T | supervise "
                               "sign-off --report ID --instruction T");
    if (!report)
        body.ticket_id = argv[first];
    Dispatch__AdminReply *reply;
    rc = escalation_call(ctl, DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF, &body,
                         DISPATCH__ROLE__ROLE_LEADER, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (reply->body_case != DISPATCH__ADMIN_REPLY__BODY_DONE || !reply->done) {
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply to leader_sign_off");
    } else if (!ctl->json) {
        char id[128];
        printf("%s %s  signed off\n", report ? "report" : "ticket",
               ctl_clean(report ? body.report_id : body.ticket_id, id, sizeof(id)));
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

static const char supervise_usage[] =
    "usage: dispatchctl [--escalation URL] [--district D] supervise COMMAND\n"
    "  list [--queue extension|sign-off|overdue|urgent] [--limit N] [--after TICKET]\n"
    "      a queue of the district's escalation (default: extension)\n"
    "  extensions             the extension requests waiting for a decision\n"
    "  sign-offs              the leader sign-off queue (role leader)\n"
    "  grant TICKET [--request ID] [--until TIME] [--reason T]\n"
    "      grants the pending request; --until sets another deadline than asked\n"
    "  refuse TICKET [--request ID] --reason T\n"
    "  sign-off TICKET --instruction T\n"
    "  sign-off --report ID --instruction T   (a special report: categories-<period>)\n"
    "TIME: YYYY-MM-DD (the end of that day) or \"YYYY-MM-DD HH:MM\", city time.\n"
    "Roles: supervisor for queues and decisions, leader for sign-offs (--role wins).\n";

int ctl_cmd_supervise(ctl_t *ctl, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error("supervise needs a command (supervise --help lists them)");
    const char *verb = argv[1];
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(supervise_usage, stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(verb, "list") == 0)
        return list_queue(ctl, argc - 1, argv + 1, 0);
    if (strcmp(verb, "extensions") == 0)
        return list_queue(ctl, argc - 1, argv + 1, 0);
    if (strcmp(verb, "sign-offs") == 0)
        return list_queue(ctl, argc - 1, argv + 1, 1);
    if (strcmp(verb, "grant") == 0 || strcmp(verb, "refuse") == 0)
        return decide(ctl, argc - 1, argv + 1, strcmp(verb, "grant") == 0);
    if (strcmp(verb, "sign-off") == 0)
        return sign_off(ctl, argc - 1, argv + 1);
    return ctl_usage_error("supervise: unknown command '%s' (list, extensions, sign-offs, grant, "
                           "refuse, sign-off)",
                           verb);
}

/* dispatchctl commands of a unit on a router's unit endpoint: actions on a
 * ticket and the delivery watch (docs/protocol.md section 5), and the
 * unit's own list (admin endpoint, in ctl_admin.c).
 *
 * Actions go out on a side session, routing id "<unit>/cli-<pid>", so they
 * never take the place of the unit's main session, which receives the
 * deliveries. "unit watch" is the main session: it acks every delivery it
 * has printed (cumulative, in order, as section 5.1 asks) and sends the ack
 * again as a heartbeat when idle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_common.h"
#include "unit_session.h"

/* Idle time after which the watch acks again (protocol: at least every 10 s). */
#define HEARTBEAT_MS 10000

typedef enum unit_verb {
    VERB_SIGN_FOR,
    VERB_PROGRESS,
    VERB_RESOLVE,
    VERB_RETURN,
    VERB_OBJECT,
    VERB_EXTEND,
} unit_verb_t;

/* Options an action takes besides --unit and --request-id. */
enum {
    TAKES_TEXT = 1 << 0,
    TAKES_RESULT = 1 << 1,
    TAKES_REASON_CODE = 1 << 2,
    TAKES_REASON = 1 << 3,
    TAKES_SUGGEST = 1 << 4,
    TAKES_DAYS = 1 << 5,
};

static const struct {
    const char *word;
    unit_verb_t verb;
    unsigned takes;
} verbs[] = {
    {"sign-for", VERB_SIGN_FOR, TAKES_TEXT},
    {"progress", VERB_PROGRESS, TAKES_TEXT},
    {"resolve", VERB_RESOLVE, TAKES_TEXT | TAKES_RESULT},
    {"return", VERB_RETURN, TAKES_REASON_CODE | TAKES_REASON | TAKES_SUGGEST},
    {"object", VERB_OBJECT, TAKES_REASON_CODE | TAKES_REASON | TAKES_SUGGEST},
    {"extend", VERB_EXTEND, TAKES_DAYS | TAKES_REASON},
};

typedef struct action_options {
    const char *unit, *text, *reason, *suggest, *request_id;
    int result, reason_code;
    long days;
} action_options_t;

/* A CHECK for an option the verb (value) does not take. */
static int not_taken(const char *option, const char *arg, void *value)
{
    ctl_usage_error("%s is not an option of unit %s", option, (const char *)value);
    return -EINVAL;
}

static int parse_action_options(const char *verb_word, unsigned takes, int argc, char **argv,
                                action_options_t *out)
{
    struct {
        unsigned bit; /* 0: every verb takes it */
        ctl_option_t option;
    } table[] = {
        {0, {"unit", CTL_OPTION_TEXT, .value = &out->unit}},
        {TAKES_TEXT, {"text", CTL_OPTION_TEXT, .value = &out->text}},
        {TAKES_RESULT,
         {"result", CTL_OPTION_WORD, &out->result,
          .words = &dispatch__resolution_result__descriptor}},
        {TAKES_REASON_CODE,
         {"reason-code", CTL_OPTION_WORD, &out->reason_code,
          .words = &dispatch__return_reason__descriptor}},
        {TAKES_REASON, {"reason", CTL_OPTION_TEXT, .value = &out->reason}},
        {TAKES_SUGGEST, {"suggest", CTL_OPTION_TEXT, .value = &out->suggest}},
        {TAKES_DAYS, {"days", CTL_OPTION_LONG, &out->days, .min = 1, .max = 365}},
        {0, {"request-id", CTL_OPTION_TEXT, .value = &out->request_id}},
    };
    enum { COUNT = sizeof(table) / sizeof(table[0]) };
    ctl_option_t options[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        options[i] = table[i].option;
        if (table[i].bit && !(takes & table[i].bit))
            options[i] = (ctl_option_t){table[i].option.name, CTL_OPTION_CHECK, (void *)verb_word,
                                        .check = not_taken};
    }
    int first;
    int rc = ctl_parse_options(argc, argv, options, COUNT, NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (argc - first != 1 || !out->unit)
        return ctl_usage_error("usage: unit %s TICKET --unit U ...", verb_word);
    return CTL_EXIT_OK;
}

static int open_unit_session(ctl_t *ctl, const char *unit, const char *session,
                             unit_session_t **ret)
{
    const char *url;
    int rc = ctl_units_url(ctl, NULL, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    const auth_client_t *curve;
    ctl->key_actor = ctl->actor ? ctl->actor : unit; /* else ctl_actor()'s key */
    rc = ctl_curve(ctl, url, &curve);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = unit_session_new(ctl->zmq, url, unit, session, curve, ret);
    if (rc == -ENOMEM)
        return ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
    if (rc < 0)
        return ctl_usage_error("cannot connect to '%s' as unit '%s': %s", url, unit, strerror(-rc));
    return CTL_EXIT_OK;
}

static int unit_action(ctl_t *ctl, size_t verb_index, int argc, char **argv)
{
    const char *word = verbs[verb_index].word;
    action_options_t in = {0};
    int rc = parse_action_options(word, verbs[verb_index].takes, argc, argv, &in);
    if (rc != CTL_EXIT_OK)
        return rc;

    Dispatch__UnitAction action = DISPATCH__UNIT_ACTION__INIT;
    Dispatch__SignFor sign_for = DISPATCH__SIGN_FOR__INIT;
    Dispatch__Progress progress = DISPATCH__PROGRESS__INIT;
    Dispatch__Resolve resolve = DISPATCH__RESOLVE__INIT;
    Dispatch__ReturnTicket return_ticket = DISPATCH__RETURN_TICKET__INIT;
    Dispatch__Objection objection = DISPATCH__OBJECTION__INIT;
    Dispatch__ExtensionRequest extension = DISPATCH__EXTENSION_REQUEST__INIT;
    switch (verbs[verb_index].verb) {
    case VERB_SIGN_FOR:
        if (in.text)
            sign_for.note = (char *)in.text;
        action.body_case = DISPATCH__UNIT_ACTION__BODY_SIGN_FOR;
        action.sign_for = &sign_for;
        break;
    case VERB_PROGRESS:
        if (!in.text)
            return ctl_usage_error("unit progress needs --text");
        progress.text = (char *)in.text;
        action.body_case = DISPATCH__UNIT_ACTION__BODY_PROGRESS;
        action.progress = &progress;
        break;
    case VERB_RESOLVE:
        if (!in.result || !in.text)
            return ctl_usage_error("unit resolve needs --result and --text");
        resolve.result = in.result;
        resolve.text = (char *)in.text;
        action.body_case = DISPATCH__UNIT_ACTION__BODY_RESOLVE;
        action.resolve = &resolve;
        break;
    case VERB_RETURN:
    case VERB_OBJECT:
        if (!in.reason_code || !in.reason)
            return ctl_usage_error("unit %s needs --reason-code and --reason", word);
        if (verbs[verb_index].verb == VERB_RETURN) {
            return_ticket.reason_code = in.reason_code;
            return_ticket.reason = (char *)in.reason;
            if (in.suggest)
                return_ticket.suggested_unit = (char *)in.suggest;
            action.body_case = DISPATCH__UNIT_ACTION__BODY_RETURN_TICKET;
            action.return_ticket = &return_ticket;
        } else {
            objection.reason_code = in.reason_code;
            objection.reason = (char *)in.reason;
            if (in.suggest)
                objection.suggested_unit = (char *)in.suggest;
            action.body_case = DISPATCH__UNIT_ACTION__BODY_OBJECTION;
            action.objection = &objection;
        }
        break;
    case VERB_EXTEND:
        if (!in.days || !in.reason)
            return ctl_usage_error("unit extend needs --days and --reason");
        extension.extra_working_days = (uint32_t)in.days;
        extension.reason = (char *)in.reason;
        action.body_case = DISPATCH__UNIT_ACTION__BODY_EXTENSION_REQUEST;
        action.extension_request = &extension;
        break;
    }
    char generated[48];
    in.request_id = ctl_request_id(in.request_id, generated, sizeof(generated));
    action.unit_id = (char *)in.unit;
    action.ticket_id = argv[argc - 1];
    action.action_id = (char *)in.request_id;

    char session_name[32];
    snprintf(session_name, sizeof(session_name), "cli-%ld", (long)getpid());
    unit_session_t *session;
    rc = open_unit_session(ctl, in.unit, session_name, &session);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__ActionResult *result;
    rc = unit_session_act(session, &action, ctl->timeout_ms, &result);
    unit_session_destroy(&session);
    if (rc == -ETIMEDOUT || rc == -EINTR) {
        ctl_fail(CTL_EXIT_UNAVAILABLE, "no result within %d ms", ctl->timeout_ms);
        ctl_retry_hint(in.request_id);
        return CTL_EXIT_UNAVAILABLE;
    }
    if (rc < 0)
        return ctl_fail(CTL_EXIT_INTERNAL, "unit %s failed: %s", word, strerror(-rc));
    rc = ctl->json ? ctl_print_json(&result->base) : CTL_EXIT_OK;
    if (result->error) {
        rc = ctl_refused(result->error);
    } else if (!ctl->json) {
        char id[128];
        printf("%s  %s\n", ctl_clean(action.ticket_id, id, sizeof(id)),
               ctl_enum_name(&dispatch__ticket_state__descriptor, result->state, true));
    }
    protobuf_c_message_free_unpacked(&result->base, NULL);
    return rc;
}

/* --- watch --- */

static void print_line(const char *label, const char *text)
{
    if (!text || !*text)
        return;
    printf("    %-12s ", label);
    ctl_print_block(stdout, text, 17);
}

static void print_ticket_summary(const ctl_t *ctl, const Dispatch__Ticket *ticket)
{
    if (!ticket)
        return;
    char kind[32], urgency[32], buf[64];
    printf(
        "    %-12s %s, %s, %s\n", "ticket", *ticket->category ? ticket->category : "(unclassified)",
        ctl_enum_lower(&dispatch__kind__descriptor, ticket->kind, kind, sizeof(kind)),
        ctl_enum_lower(&dispatch__urgency__descriptor, ticket->urgency, urgency, sizeof(urgency)));
    if (ticket->location)
        print_line("address", ticket->location->address);
    printf("    %-12s ", "caller");
    ctl_print_caller(ctl, stdout, ticket->caller_name, ticket->caller_phone,
                     ticket->caller_confidential);
    print_line("description", ticket->description);
    if (ticket->deadline_sign_for)
        printf("    %-12s %s\n", "sign for by",
               ctl_time(ticket->deadline_sign_for, buf, sizeof(buf)));
    if (ticket->deadline_handle)
        printf("    %-12s %s\n", "handle by", ctl_time(ticket->deadline_handle, buf, sizeof(buf)));
}

static void print_delivery(const ctl_t *ctl, const Dispatch__UnitDelivery *delivery)
{
    char at[32], id[128], a[64], b[64];
    printf("#%llu  %s  %s  ", (unsigned long long)delivery->seq,
           ctl_time(delivery->at, at, sizeof(at)), ctl_clean(delivery->ticket_id, id, sizeof(id)));
    switch (delivery->body_case) {
    case DISPATCH__UNIT_DELIVERY__BODY_DISPATCHED: {
        const Dispatch__DispatchedTicket *d = delivery->dispatched;
        printf("dispatched as %s (%s)\n",
               ctl_enum_lower(&dispatch__handling_role__descriptor, d->role, a, sizeof(a)),
               ctl_enum_lower(&dispatch__dispatch_cause__descriptor, d->cause, b, sizeof(b)));
        print_ticket_summary(ctl, d->ticket);
        print_line("note", d->note);
        break;
    }
    case DISPATCH__UNIT_DELIVERY__BODY_REMINDER: {
        const Dispatch__Reminder *r = delivery->reminder;
        printf("reminder: %s deadline %s%s, supervision %s\n",
               ctl_enum_lower(&dispatch__deadline_kind__descriptor, r->deadline_kind, a, sizeof(a)),
               ctl_time(r->deadline, b, sizeof(b)), r->overdue ? " (overdue)" : "",
               ctl_enum_name(&dispatch__supervision_level__descriptor, r->level, true));
        print_line("text", r->text);
        break;
    }
    case DISPATCH__UNIT_DELIVERY__BODY_SIGN_OFF:
        printf("leader sign-off by %s\n",
               ctl_clean(*delivery->sign_off->leader ? delivery->sign_off->leader : "-", a,
                         sizeof(a)));
        print_line("instruction", delivery->sign_off->instruction);
        break;
    case DISPATCH__UNIT_DELIVERY__BODY_EXTENSION_DECISION: {
        const Dispatch__ExtensionDecision *e = delivery->extension_decision;
        printf("extension %s (request %s)", e->granted ? "granted" : "refused",
               ctl_clean(e->request_id, a, sizeof(a)));
        if (e->granted && e->new_deadline)
            printf(", handle by %s", ctl_time(e->new_deadline, b, sizeof(b)));
        printf("\n");
        print_line("note", e->note);
        break;
    }
    case DISPATCH__UNIT_DELIVERY__BODY_REOPENED: {
        const Dispatch__ReopenedTicket *r = delivery->reopened;
        printf("reopened (satisfaction %s)\n",
               ctl_enum_lower(&dispatch__satisfaction__descriptor, r->satisfaction, a, sizeof(a)));
        print_line("reason", r->reason);
        print_ticket_summary(ctl, r->ticket);
        break;
    }
    case DISPATCH__UNIT_DELIVERY__BODY_WITHDRAWN:
        printf("withdrawn\n");
        print_line("reason", delivery->withdrawn->reason);
        break;
    default:
        printf("(unknown delivery)\n");
        break;
    }
}

static int unit_watch(ctl_t *ctl, int argc, char **argv)
{
    const char *unit = NULL;
    long count = 0;
    const ctl_option_t options[] = {
        {"unit", CTL_OPTION_TEXT, .value = &unit},
        {"count", CTL_OPTION_LONG, &count, .min = 1, .max = 1000000000},
    };
    int first;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (first < argc || !unit)
        return ctl_usage_error("usage: unit watch --unit U [--count N]");
    unit_session_t *session;
    rc = open_unit_session(ctl, unit, NULL, &session);
    if (rc != CTL_EXIT_OK)
        return rc;

    ctl_follow_t follow;
    ctl_follow_start(&follow, ctl, "delivery");

    /* The watch keeps nothing across runs: it starts from "applied none"
     * and continues from what the router holds as acknowledged. */
    long printed = 0;
    rc = unit_session_start(session, 0) < 0 ? CTL_EXIT_INTERNAL : CTL_EXIT_OK;
    while (rc == CTL_EXIT_OK && !ctl_follow_stopped() && (count == 0 || printed < count)) {
        int wait;
        rc = ctl_follow_wait(&follow, HEARTBEAT_MS, &wait);
        if (rc != CTL_EXIT_OK)
            break;
        Dispatch__UnitDelivery *delivery;
        int got = unit_session_next(session, wait, &delivery);
        if (got == -ETIMEDOUT) {
            unit_session_ack_due(session, 0); /* heartbeat */
            continue;
        }
        if (got == -EINTR)
            continue;
        if (got < 0) {
            rc = ctl_fail(CTL_EXIT_INTERNAL, "receiving failed: %s", strerror(-got));
            break;
        }
        /* seq 0: a result of an action sent on the main session by another
         * program; not a delivery, not acked. A refusal without an action
         * id answers the session's own ack: the router refuses the session
         * (an unknown unit, a key of another unit); it is not kept open. */
        if (delivery->seq == 0 &&
            delivery->body_case == DISPATCH__UNIT_DELIVERY__BODY_ACTION_RESULT &&
            delivery->action_result && delivery->action_result->error &&
            !*delivery->action_result->action_id) {
            rc = ctl_refused(delivery->action_result->error);
        } else if (delivery->seq != 0) {
            rc = ctl->json ? ctl_print_json(&delivery->base) : CTL_EXIT_OK;
            if (!ctl->json) {
                print_delivery(ctl, delivery);
                fflush(stdout);
            }
            printed++;
            ctl_follow_seen(&follow);
            if (unit_session_ack_due(session, -1) < 0)
                rc = ctl_fail(CTL_EXIT_INTERNAL, "cannot send the ack");
        }
        protobuf_c_message_free_unpacked(&delivery->base, NULL);
    }
    unit_session_destroy(&session);
    return rc;
}

int ctl_cmd_unit(ctl_t *ctl, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error("usage: unit list|watch|sign-for|progress|resolve|return|object|"
                               "extend ...");
    if (strcmp(argv[1], "list") == 0)
        return ctl_list_unit_queue(ctl, argc - 1, argv + 1);
    if (strcmp(argv[1], "watch") == 0)
        return unit_watch(ctl, argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(argv[1], verbs[i].word) == 0)
            return unit_action(ctl, i, argc - 1, argv + 1);
    return ctl_usage_error("unit: unknown command '%s'", argv[1]);
}

/* dispatchctl commands on the intake request endpoint: submit, get,
 * callback (docs/protocol.md section 4). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"

/* Sends a Request to the intake; on CTL_EXIT_OK *reply holds the body
 * `expected`. `request_id` (may be NULL) is named in the hint printed when
 * no answer came, so the retry reuses the key. */
static int intake_call(ctl_t *ctl, Dispatch__Request *request, Dispatch__Reply__BodyCase expected,
                       const char *request_id, Dispatch__Reply **reply)
{
    *reply = NULL;
    const char *url;
    int rc = ctl_intake_url(ctl, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    request->actor = (char *)ctl_actor(ctl, "dispatchctl");
    ProtobufCMessage *msg;
    rc = ctl_call(ctl, url, &request->base, &dispatch__reply__descriptor, &msg);
    if (rc == CTL_EXIT_UNAVAILABLE && request_id)
        fprintf(stderr,
                "dispatchctl: it may have been applied; retrying with --request-id %s "
                "never applies it twice\n",
                request_id);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__Reply *answer = (Dispatch__Reply *)msg;
    if (ctl->json)
        rc = ctl_print_json(msg);
    if (answer->body_case == DISPATCH__REPLY__BODY_ERROR && answer->error)
        rc = ctl_refused(answer->error);
    else if (answer->body_case != expected)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    if (rc != CTL_EXIT_OK) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    *reply = answer;
    return CTL_EXIT_OK;
}

/* Degrees to microdegrees, within +-limit. */
static int parse_degrees(const char *option, const char *text, double limit, int32_t *value)
{
    char *end;
    errno = 0;
    double degrees = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(degrees) || degrees < -limit ||
        degrees > limit) {
        ctl_usage_error("%s: '%s' is not a number of degrees from %g to %g", option, text, -limit,
                        limit);
        return -EINVAL;
    }
    double micro = degrees * 1e6;
    *value = (int32_t)(micro < 0 ? micro - 0.5 : micro + 0.5);
    return 0;
}

enum {
    OPT_CHANNEL = 256,
    OPT_KIND,
    OPT_URGENCY,
    OPT_DISTRICT,
    OPT_CATEGORY,
    OPT_AREA,
    OPT_ADDRESS,
    OPT_LAT,
    OPT_LON,
    OPT_CALLER_NAME,
    OPT_PHONE,
    OPT_CONFIDENTIAL,
    OPT_DESCRIPTION,
    OPT_ANSWERED,
    OPT_ANSWER,
    OPT_TRANSFER_TO,
    OPT_REQUEST_ID,
    OPT_SATISFACTION,
    OPT_SOLVED,
    OPT_NOT_SOLVED,
    OPT_UNREACHABLE,
    OPT_COMMENT,
};

int ctl_cmd_submit(ctl_t *ctl, int argc, char **argv)
{
    static const struct option options[] = {
        {"channel", required_argument, NULL, OPT_CHANNEL},
        {"kind", required_argument, NULL, OPT_KIND},
        {"urgency", required_argument, NULL, OPT_URGENCY},
        {"district", required_argument, NULL, OPT_DISTRICT},
        {"category", required_argument, NULL, OPT_CATEGORY},
        {"area", required_argument, NULL, OPT_AREA},
        {"address", required_argument, NULL, OPT_ADDRESS},
        {"lat", required_argument, NULL, OPT_LAT},
        {"lon", required_argument, NULL, OPT_LON},
        {"caller-name", required_argument, NULL, OPT_CALLER_NAME},
        {"phone", required_argument, NULL, OPT_PHONE},
        {"confidential", no_argument, NULL, OPT_CONFIDENTIAL},
        {"description", required_argument, NULL, OPT_DESCRIPTION},
        {"answered", no_argument, NULL, OPT_ANSWERED},
        {"answer", required_argument, NULL, OPT_ANSWER},
        {"transfer-to", required_argument, NULL, OPT_TRANSFER_TO},
        {"request-id", required_argument, NULL, OPT_REQUEST_ID},
        {NULL, 0, NULL, 0},
    };
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    Dispatch__Location location = DISPATCH__LOCATION__INIT;
    Dispatch__GeoPoint point = DISPATCH__GEO_POINT__INIT;
    bool has_lat = false, has_lon = false, has_location = false;
    const char *request_id = NULL;
    int value = 0, opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
        case OPT_CHANNEL:
            rc = ctl_parse_word(ctl_channel_words, "--channel", optarg, &value);
            submit.channel = value;
            break;
        case OPT_KIND:
            rc = ctl_parse_word(ctl_kind_words, "--kind", optarg, &value);
            submit.kind = value;
            break;
        case OPT_URGENCY:
            rc = ctl_parse_word(ctl_urgency_words, "--urgency", optarg, &value);
            submit.urgency = value;
            break;
        case OPT_DISTRICT:
            submit.district = optarg;
            break;
        case OPT_CATEGORY:
            submit.category = optarg;
            break;
        case OPT_AREA:
            submit.area = optarg;
            break;
        case OPT_ADDRESS:
            location.address = optarg;
            has_location = true;
            break;
        case OPT_LAT:
            rc = parse_degrees("--lat", optarg, 90, &point.lat_e6);
            has_lat = true;
            break;
        case OPT_LON:
            rc = parse_degrees("--lon", optarg, 180, &point.lon_e6);
            has_lon = true;
            break;
        case OPT_CALLER_NAME:
            submit.caller_name = optarg;
            break;
        case OPT_PHONE:
            submit.caller_phone = optarg;
            break;
        case OPT_CONFIDENTIAL:
            submit.caller_confidential = true;
            break;
        case OPT_DESCRIPTION:
            submit.description = optarg;
            break;
        case OPT_ANSWERED:
            submit.answered = true;
            break;
        case OPT_ANSWER:
            submit.answer = optarg;
            break;
        case OPT_TRANSFER_TO:
            rc = ctl_parse_word(ctl_line_words, "--transfer-to", optarg, &value);
            submit.transfer_to = value;
            break;
        case OPT_REQUEST_ID:
            request_id = optarg;
            break;
        default:
            return CTL_EXIT_USAGE;
        }
        if (rc < 0)
            return CTL_EXIT_USAGE;
    }
    if (optind < argc)
        return ctl_usage_error("submit: unexpected argument '%s'", argv[optind]);
    if (!submit.channel || !submit.kind || !submit.urgency)
        return ctl_usage_error("submit needs --channel, --kind and --urgency");
    if (!*submit.district && ctl->district)
        submit.district = (char *)ctl->district;
    if (!*submit.district && !*submit.area)
        return ctl_usage_error("submit needs --district (or an --area the intake maps)");
    if (has_lat != has_lon)
        return ctl_usage_error("submit: --lat and --lon go together");
    if (has_lat) {
        location.point = &point;
        has_location = true;
    }
    if (has_location)
        submit.location = &location;
    if (submit.answer[0] && !submit.answered)
        return ctl_usage_error("submit: --answer needs --answered");
    char generated[48];
    if (!request_id) {
        ctl_request_id(generated, sizeof(generated));
        request_id = generated;
    }
    submit.client_request_id = (char *)request_id;

    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &submit;
    Dispatch__Reply *reply;
    int rc = intake_call(ctl, &request, DISPATCH__REPLY__BODY_SUBMIT, request_id, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!ctl->json) {
        const Dispatch__SubmitReply *result = reply->submit;
        char id[128], master[128];
        printf("%s  %s", ctl_clean(result->ticket_id, id, sizeof(id)),
               ctl_enum_name(&dispatch__ticket_state__descriptor, result->state, true));
        if (*result->master_id)
            printf("  duplicate of %s", ctl_clean(result->master_id, master, sizeof(master)));
        if (!result->created)
            printf("  (submitted before with this request id: no new ticket)");
        printf("\n");
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return CTL_EXIT_OK;
}

/* --- get --- */

static void print_field(const char *label, const char *value)
{
    char clean[512];
    if (value && *value)
        printf("  %-12s %s\n", label, ctl_clean(value, clean, sizeof(clean)));
}

static void print_ticket(const ctl_t *ctl, const Dispatch__Ticket *ticket)
{
    char buf[512], a[32], b[32], c[32];
    printf("%s  %s\n", ctl_clean(ticket->id, buf, sizeof(buf)),
           ctl_enum_name(&dispatch__ticket_state__descriptor, ticket->state, true));
    printf("  %-12s %s, %s, via %s\n", "kind",
           ctl_enum_lower(&dispatch__kind__descriptor, ticket->kind, a, sizeof(a)),
           ctl_enum_lower(&dispatch__urgency__descriptor, ticket->urgency, b, sizeof(b)),
           ctl_enum_lower(&dispatch__channel__descriptor, ticket->channel, c, sizeof(c)));
    print_field("category", *ticket->category ? ticket->category : "(unclassified)");
    print_field("district", ticket->district);
    print_field("area", ticket->area);
    if (ticket->location) {
        print_field("address", ticket->location->address);
        if (ticket->location->point)
            printf("  %-12s %.6f, %.6f\n", "point", ticket->location->point->lat_e6 / 1e6,
                   ticket->location->point->lon_e6 / 1e6);
    }
    printf("  %-12s ", "caller");
    ctl_print_caller(ctl, stdout, ticket->caller_name, ticket->caller_phone,
                     ticket->caller_confidential);
    if (*ticket->description) {
        printf("  %-12s ", "description");
        ctl_print_block(stdout, ticket->description, 15);
    }
    if (ticket->answered_at_intake || *ticket->answer) {
        printf("  %-12s ", "answer");
        ctl_print_block(stdout, ticket->answer, 15);
    }
    if (ticket->transferred_to)
        printf("  %-12s %s\n", "transferred",
               ctl_enum_name(&dispatch__emergency_line__descriptor, ticket->transferred_to, true));
    print_field("master", ticket->master_id);
    if (*ticket->assigned_unit) {
        printf("  %-12s %s", "unit", ctl_clean(ticket->assigned_unit, buf, sizeof(buf)));
        for (size_t i = 0; i < ticket->n_assisting_units; i++)
            printf("%s%s", i == 0 ? "  assisting: " : ", ",
                   ctl_clean(ticket->assisting_units[i], buf, sizeof(buf)));
        printf("\n");
    }
    const struct {
        const char *label;
        int64_t at;
    } times[] = {
        {"registered", ticket->registered_at},  {"dispatched", ticket->dispatched_at},
        {"accepted", ticket->accepted_at},      {"resolved", ticket->resolved_at},
        {"closed", ticket->closed_at},          {"sign for by", ticket->deadline_sign_for},
        {"handle by", ticket->deadline_handle}, {"updated", ticket->updated_at},
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
        if (times[i].at)
            printf("  %-12s %s\n", times[i].label, ctl_time(times[i].at, buf, sizeof(buf)));
    if (ticket->supervision)
        printf("  %-12s %s\n", "supervision",
               ctl_enum_name(&dispatch__supervision_level__descriptor, ticket->supervision, true));
    if (ticket->result)
        printf("  %-12s %s\n", "result",
               ctl_enum_name(&dispatch__resolution_result__descriptor, ticket->result, true));
    if (ticket->satisfaction)
        printf("  %-12s %s\n", "satisfaction",
               ctl_enum_name(&dispatch__satisfaction__descriptor, ticket->satisfaction, true));
    if (ticket->reopen_count || ticket->return_count || ticket->extension_count)
        printf("  %-12s reopened %u, returned %u, extended %u\n", "counts", ticket->reopen_count,
               ticket->return_count, ticket->extension_count);
}

static void print_history(const Dispatch__TicketView *view)
{
    printf("\nhistory\n");
    static const char *const headers[] = {"  TIME", "EVENT", "ACTOR", "UNIT", "TEXT"};
    ctl_table_t *table;
    if (ctl_table_new(5, headers, &table) < 0)
        return;
    for (size_t i = 0; i < view->n_history; i++) {
        const Dispatch__HistoryEntry *entry = view->history[i];
        char at[32], timed[40], event[64];
        snprintf(timed, sizeof(timed), "  %s", ctl_time(entry->at, at, sizeof(at)));
        const char *cells[5] = {
            timed,
            ctl_enum_lower(&dispatch__event_type__descriptor, entry->type, event, sizeof(event)),
            entry->actor,
            entry->unit_id,
            entry->text,
        };
        if (ctl_table_add(table, cells) < 0)
            break;
    }
    ctl_table_print(table, stdout);
    ctl_table_destroy(&table);
}

int ctl_cmd_get(ctl_t *ctl, int argc, char **argv)
{
    static const struct option options[] = {{NULL, 0, NULL, 0}};
    optind = 0;
    if (getopt_long(argc, argv, "", options, NULL) != -1)
        return CTL_EXIT_USAGE;
    if (argc - optind != 1)
        return ctl_usage_error("usage: get TICKET");
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = argv[optind];
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    Dispatch__Reply *reply;
    int rc = intake_call(ctl, &request, DISPATCH__REPLY__BODY_TICKET, NULL, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!ctl->json && reply->ticket->ticket) {
        print_ticket(ctl, reply->ticket->ticket);
        print_history(reply->ticket);
    } else if (!ctl->json) {
        rc = ctl_fail(CTL_EXIT_INTERNAL, "the reply holds no ticket");
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

/* --- callback --- */

int ctl_cmd_callback(ctl_t *ctl, int argc, char **argv)
{
    static const struct option options[] = {
        {"satisfaction", required_argument, NULL, OPT_SATISFACTION},
        {"solved", no_argument, NULL, OPT_SOLVED},
        {"not-solved", no_argument, NULL, OPT_NOT_SOLVED},
        {"unreachable", no_argument, NULL, OPT_UNREACHABLE},
        {"comment", required_argument, NULL, OPT_COMMENT},
        {"request-id", required_argument, NULL, OPT_REQUEST_ID},
        {NULL, 0, NULL, 0},
    };
    Dispatch__Callback callback = DISPATCH__CALLBACK__INIT;
    callback.solved = true; /* unless --not-solved */
    const char *request_id = NULL;
    int value = 0, opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_SATISFACTION:
            if (ctl_parse_word(ctl_satisfaction_words, "--satisfaction", optarg, &value) < 0)
                return CTL_EXIT_USAGE;
            callback.satisfaction = value;
            break;
        case OPT_SOLVED:
            callback.solved = true;
            break;
        case OPT_NOT_SOLVED:
            callback.solved = false;
            break;
        case OPT_UNREACHABLE:
            callback.unreachable = true;
            break;
        case OPT_COMMENT:
            callback.comment = optarg;
            break;
        case OPT_REQUEST_ID:
            request_id = optarg;
            break;
        default:
            return CTL_EXIT_USAGE;
        }
    }
    if (argc - optind != 1)
        return ctl_usage_error("usage: callback TICKET --satisfaction S | --unreachable");
    if (!callback.satisfaction && !callback.unreachable)
        return ctl_usage_error("callback needs --satisfaction (or --unreachable)");
    callback.ticket_id = argv[optind];
    char generated[48];
    if (!request_id) {
        ctl_request_id(generated, sizeof(generated));
        request_id = generated;
    }
    callback.client_request_id = (char *)request_id;

    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.body_case = DISPATCH__REQUEST__BODY_CALLBACK;
    request.callback = &callback;
    Dispatch__Reply *reply;
    int rc = intake_call(ctl, &request, DISPATCH__REPLY__BODY_CALLBACK, request_id, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!ctl->json) {
        char id[128];
        printf("%s  %s", ctl_clean(reply->callback->ticket_id, id, sizeof(id)),
               ctl_enum_name(&dispatch__ticket_state__descriptor, reply->callback->state, true));
        if (reply->callback->reopen_count)
            printf("  (reopen count %u)", reply->callback->reopen_count);
        printf("\n");
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return CTL_EXIT_OK;
}

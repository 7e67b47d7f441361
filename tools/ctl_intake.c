/* dispatchctl commands on the intake request endpoint: submit, get,
 * callback (docs/protocol.md section 4). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_common.h"

/* Prints a reply for a person (not with --json); returns the exit code. */
typedef int (*reply_printer_t)(const ctl_t *ctl, const Dispatch__Reply *reply);

/* Sends a Request with body (of body_case) to the intake and prints the
 * reply: as JSON with --json, else with print when its body is `expected`.
 * `request_id` (may be NULL) is named in the hint printed when no answer
 * came, so the retry reuses the key. */
static int intake_request(ctl_t *ctl, Dispatch__Request__BodyCase body_case, void *body,
                          Dispatch__Reply__BodyCase expected, const char *request_id,
                          reply_printer_t print)
{
    const char *url;
    int rc = ctl_intake_url(ctl, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    ctl_set_body(&request.base, body_case, body);
    request.actor = (char *)ctl_intake_actor(ctl, url);
    ProtobufCMessage *msg;
    rc = ctl_call(ctl, url, &request.base, &dispatch__reply__descriptor, &msg);
    if (rc == CTL_EXIT_UNAVAILABLE && request_id)
        ctl_retry_hint(request_id);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__Reply *answer = (Dispatch__Reply *)msg;
    if (ctl->json)
        rc = ctl_print_json(msg);
    if (answer->body_case == DISPATCH__REPLY__BODY_ERROR && answer->error)
        rc = ctl_refused(answer->error);
    else if (answer->body_case != expected)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    else if (!ctl->json)
        rc = print(ctl, answer);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
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

static int print_submitted(const ctl_t *ctl, const Dispatch__Reply *reply)
{
    const Dispatch__SubmitReply *result = reply->submit;
    char id[128], master[128];
    printf("%s  %s", ctl_clean(result->ticket_id, id, sizeof(id)),
           ctl_enum_name(&dispatch__ticket_state__descriptor, result->state, true));
    if (*result->master_id)
        printf("  duplicate of %s", ctl_clean(result->master_id, master, sizeof(master)));
    if (!result->created)
        printf("  (submitted before with this request id: no new ticket)");
    printf("\n");
    return CTL_EXIT_OK;
}

/* --lat / --lon: degrees into microdegrees. */
typedef struct degrees {
    double limit;
    int32_t *e6;
    bool given;
} degrees_t;

static int check_degrees(const char *option, const char *arg, void *value)
{
    degrees_t *degrees = value;
    degrees->given = true;
    return parse_degrees(option, arg, degrees->limit, degrees->e6);
}

int ctl_cmd_submit(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    Dispatch__Location location = DISPATCH__LOCATION__INIT;
    Dispatch__GeoPoint point = DISPATCH__GEO_POINT__INIT;
    degrees_t lat = {90, &point.lat_e6, false}, lon = {180, &point.lon_e6, false};
    const char *address = NULL, *request_id = NULL;
    const ctl_option_t options[] = {
        {"channel", CTL_OPTION_WORD, &submit.channel, .words = &dispatch__channel__descriptor},
        {"kind", CTL_OPTION_WORD, &submit.kind, .words = &dispatch__kind__descriptor},
        {"urgency", CTL_OPTION_WORD, &submit.urgency, .words = &dispatch__urgency__descriptor},
        {"district", CTL_OPTION_TEXT, .value = &submit.district},
        {"category", CTL_OPTION_TEXT, .value = &submit.category},
        {"area", CTL_OPTION_TEXT, .value = &submit.area},
        {"address", CTL_OPTION_TEXT, .value = &address},
        {"lat", CTL_OPTION_CHECK, &lat, .check = check_degrees},
        {"lon", CTL_OPTION_CHECK, &lon, .check = check_degrees},
        {"caller-name", CTL_OPTION_TEXT, .value = &submit.caller_name},
        {"phone", CTL_OPTION_TEXT, .value = &submit.caller_phone},
        {"confidential", CTL_OPTION_TRUE, .value = &submit.caller_confidential},
        {"description", CTL_OPTION_TEXT, .value = &submit.description},
        {"answered", CTL_OPTION_TRUE, .value = &submit.answered},
        {"answer", CTL_OPTION_TEXT, .value = &submit.answer},
        {"transfer-to", CTL_OPTION_WORD, &submit.transfer_to,
         .words = &dispatch__emergency_line__descriptor},
        {"request-id", CTL_OPTION_TEXT, .value = &request_id},
    };
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), "submit", NULL);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!submit.channel || !submit.kind || !submit.urgency)
        return ctl_usage_error("submit needs --channel, --kind and --urgency");
    if (!*submit.district && ctl->district)
        submit.district = (char *)ctl->district;
    if (!*submit.district && !*submit.area)
        return ctl_usage_error("submit needs --district (or an --area the intake maps)");
    if (lat.given != lon.given)
        return ctl_usage_error("submit: --lat and --lon go together");
    if (address)
        location.address = (char *)address;
    if (lat.given)
        location.point = &point;
    if (address || lat.given)
        submit.location = &location;
    if (submit.answer[0] && !submit.answered)
        return ctl_usage_error("submit: --answer needs --answered");
    char generated[48];
    submit.client_request_id = (char *)ctl_request_id(request_id, generated, sizeof(generated));
    return intake_request(ctl, DISPATCH__REQUEST__BODY_SUBMIT, &submit,
                          DISPATCH__REPLY__BODY_SUBMIT, submit.client_request_id, print_submitted);
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

static int print_view(const ctl_t *ctl, const Dispatch__Reply *reply)
{
    if (!reply->ticket->ticket)
        return ctl_fail(CTL_EXIT_INTERNAL, "the reply holds no ticket");
    print_ticket(ctl, reply->ticket->ticket);
    print_history(reply->ticket);
    return CTL_EXIT_OK;
}

int ctl_cmd_get(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    const ctl_option_t options[] = {
        {"code", CTL_OPTION_TEXT, .value = &get.lookup_code},
    };
    int first;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (argc - first != 1)
        return ctl_usage_error("usage: get TICKET [--code LOOKUP_CODE]");
    get.ticket_id = argv[first];
    return intake_request(ctl, DISPATCH__REQUEST__BODY_GET_TICKET, &get,
                          DISPATCH__REPLY__BODY_TICKET, NULL, print_view);
}

/* --- callback --- */

static int print_called_back(const ctl_t *ctl, const Dispatch__Reply *reply)
{
    char id[128];
    printf("%s  %s", ctl_clean(reply->callback->ticket_id, id, sizeof(id)),
           ctl_enum_name(&dispatch__ticket_state__descriptor, reply->callback->state, true));
    if (reply->callback->reopen_count)
        printf("  (reopen count %u)", reply->callback->reopen_count);
    printf("\n");
    return CTL_EXIT_OK;
}

int ctl_cmd_callback(ctl_t *ctl, int argc, char **argv)
{
    Dispatch__Callback callback = DISPATCH__CALLBACK__INIT;
    callback.solved = true; /* unless --not-solved */
    const char *request_id = NULL;
    const ctl_option_t options[] = {
        {"satisfaction", CTL_OPTION_WORD, &callback.satisfaction,
         .words = &dispatch__satisfaction__descriptor},
        {"solved", CTL_OPTION_TRUE, .value = &callback.solved},
        {"not-solved", CTL_OPTION_FALSE, .value = &callback.solved},
        {"unreachable", CTL_OPTION_TRUE, .value = &callback.unreachable},
        {"comment", CTL_OPTION_TEXT, .value = &callback.comment},
        {"request-id", CTL_OPTION_TEXT, .value = &request_id},
    };
    int first;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (argc - first != 1)
        return ctl_usage_error("usage: callback TICKET --satisfaction S | --unreachable");
    if (!callback.satisfaction && !callback.unreachable)
        return ctl_usage_error("callback needs --satisfaction (or --unreachable)");
    callback.ticket_id = argv[first];
    char generated[48];
    callback.client_request_id = (char *)ctl_request_id(request_id, generated, sizeof(generated));
    return intake_request(ctl, DISPATCH__REQUEST__BODY_CALLBACK, &callback,
                          DISPATCH__REPLY__BODY_CALLBACK, callback.client_request_id,
                          print_called_back);
}

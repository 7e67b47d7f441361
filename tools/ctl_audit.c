/* dispatchctl commands on the audit:
 *
 *   audit verify [--state DIR | --remote] [--from N]
 *   audit history TICKET
 *   tail [--from N] [--district D] [--count N]
 *   kpi [--by unit|district|category|city] [--period day|month|quarter] [--at DATE]
 *       [--key K] [--json|--csv]
 *   report [--period day|month|quarter] [--at DATE] [--top N] [--json|--csv]
 *
 * Every command takes --audit URL (the audit's request endpoint) and tail
 * also --publish URL (its stream); otherwise they come from the topology's
 * audit worker. "audit verify" reads the audit's LMDB store itself,
 * read-only, beside the running worker (--state DIR, else the worker's
 * state_dir in the topology); --remote asks the worker instead.
 *
 * Nothing printed here shows a caller's name or phone unmasked: the audit
 * masks them in every reply, and the store's events are never printed.
 */
#include "ctl_audit.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "follower.h"
#include "pbjson.h"
#include "trail.h"

#define VERIFY_CHUNK 20000
#define KPI_PAGE 1000
#define TAIL_WAIT_MS 1000

enum {
    OPT_AUDIT = 256,
    OPT_PUBLISH,
    OPT_STATE,
    OPT_REMOTE,
    OPT_FROM,
    OPT_DISTRICT,
    OPT_COUNT,
    OPT_BY,
    OPT_PERIOD,
    OPT_AT,
    OPT_KEY,
    OPT_TOP,
    OPT_JSON,
    OPT_CSV,
};

typedef struct audit_args {
    const char *audit_url, *publish_url, *state, *district, *at, *key;
    bool remote, csv;
    long from, count, top;
    int by, period;
} audit_args_t;

/* Parses the command's options (those in `allowed`) from argv[1] on;
 * positional arguments are left at argv[optind..]. */
static int parse_args(ctl_t *ctl, int argc, char **argv, const char *allowed, audit_args_t *args,
                      int *first_positional)
{
    static const struct option options[] = {
        {"audit", required_argument, NULL, OPT_AUDIT},
        {"publish", required_argument, NULL, OPT_PUBLISH},
        {"state", required_argument, NULL, OPT_STATE},
        {"remote", no_argument, NULL, OPT_REMOTE},
        {"from", required_argument, NULL, OPT_FROM},
        {"district", required_argument, NULL, OPT_DISTRICT},
        {"count", required_argument, NULL, OPT_COUNT},
        {"by", required_argument, NULL, OPT_BY},
        {"period", required_argument, NULL, OPT_PERIOD},
        {"at", required_argument, NULL, OPT_AT},
        {"key", required_argument, NULL, OPT_KEY},
        {"top", required_argument, NULL, OPT_TOP},
        {"json", no_argument, NULL, OPT_JSON},
        {"csv", no_argument, NULL, OPT_CSV},
        {NULL, 0, NULL, 0},
    };
    int opt, word;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *o = options; o->name; o++)
            if (o->val == opt)
                name = o->name;
        if (!name || !strstr(allowed, name))
            return ctl_usage_error("%s: option not accepted here", argv[0]);
        switch (opt) {
        case OPT_AUDIT:
            args->audit_url = optarg;
            break;
        case OPT_PUBLISH:
            args->publish_url = optarg;
            break;
        case OPT_STATE:
            args->state = optarg;
            break;
        case OPT_REMOTE:
            args->remote = true;
            break;
        case OPT_DISTRICT:
            args->district = optarg;
            break;
        case OPT_AT:
            args->at = optarg;
            break;
        case OPT_KEY:
            args->key = optarg;
            break;
        case OPT_JSON:
            ctl->json = true;
            break;
        case OPT_CSV:
            args->csv = true;
            break;
        case OPT_FROM:
            if (ctl_parse_long("--from", optarg, 0, LONG_MAX, &args->from) < 0)
                return CTL_EXIT_USAGE;
            break;
        case OPT_COUNT:
            if (ctl_parse_long("--count", optarg, 1, LONG_MAX, &args->count) < 0)
                return CTL_EXIT_USAGE;
            break;
        case OPT_TOP:
            if (ctl_parse_long("--top", optarg, 1, 100, &args->top) < 0)
                return CTL_EXIT_USAGE;
            break;
        case OPT_BY:
            if (ctl_parse_word(&dispatch__kpi_dimension__descriptor, "--by", optarg, &word) < 0)
                return CTL_EXIT_USAGE;
            args->by = word;
            break;
        case OPT_PERIOD:
            if (ctl_parse_word(&dispatch__kpi_period__descriptor, "--period", optarg, &word) < 0)
                return CTL_EXIT_USAGE;
            args->period = word;
            break;
        default:
            return CTL_EXIT_USAGE;
        }
    }
    if (ctl->json && args->csv)
        return ctl_usage_error("--json and --csv do not go together");
    *first_positional = optind;
    return CTL_EXIT_OK;
}

/* The topology's audit worker, or NULL (after a usage error). */
static const config_worker_t *audit_worker(ctl_t *ctl, const char *option)
{
    if (!ctl->config) {
        ctl_usage_error("no topology file: give --config FILE or %s", option);
        return NULL;
    }
    for (size_t i = 0; i < config_worker_count(ctl->config); i++) {
        const config_worker_t *worker = config_worker_at(ctl->config, i);
        if (strcmp(worker->kind, "audit") == 0)
            return worker;
    }
    ctl_usage_error("%s has no audit worker: give %s", ctl->config_path, option);
    return NULL;
}

static int request_url(ctl_t *ctl, const audit_args_t *args, const char **url)
{
    if (args->audit_url) {
        *url = args->audit_url;
        return CTL_EXIT_OK;
    }
    const config_worker_t *audit = audit_worker(ctl, "--audit URL");
    if (!audit)
        return CTL_EXIT_USAGE;
    if (!audit->request)
        return ctl_usage_error("worker %s has no request endpoint: give --audit URL", audit->name);
    *url = audit->request;
    return CTL_EXIT_OK;
}

/* One query with body (of body_case); on CTL_EXIT_OK *reply holds the
 * expected body. */
static int audit_call(ctl_t *ctl, const char *url, Dispatch__AuditQuery__BodyCase body_case,
                      void *body, Dispatch__AuditReply__BodyCase expected,
                      Dispatch__AuditReply **reply)
{
    Dispatch__AuditQuery query = DISPATCH__AUDIT_QUERY__INIT;
    ctl_set_body(&query.base, body_case, body);
    ProtobufCMessage *msg;
    int rc = ctl_call(ctl, url, &query.base, &dispatch__audit_reply__descriptor, &msg);
    if (rc != CTL_EXIT_OK)
        return rc;
    *reply = (Dispatch__AuditReply *)msg;
    if ((*reply)->error)
        rc = ctl_refused((*reply)->error);
    else if ((*reply)->body_case != expected)
        rc = ctl_fail(CTL_EXIT_INTERNAL, "unexpected reply from %s", url);
    if (rc != CTL_EXIT_OK) {
        protobuf_c_message_free_unpacked(msg, NULL);
        *reply = NULL;
    }
    return rc;
}

/* ---- audit verify ------------------------------------------------------ */

static void hex(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

static int print_verdict(ctl_t *ctl, const Dispatch__VerifyReply *verdict)
{
    if (ctl->json) {
        int rc = ctl_print_json(&verdict->base);
        if (rc != CTL_EXIT_OK)
            return rc;
    } else if (verdict->intact) {
        char hash[2 * 32 + 1] = "-";
        if (verdict->hash.len == 32)
            hex(verdict->hash.data, 32, hash);
        printf("intact: %llu records checked from seq %llu, head at seq %llu\nhead hash %s\n",
               (unsigned long long)verdict->checked, (unsigned long long)verdict->from_seq,
               (unsigned long long)verdict->last_seq, hash);
    } else {
        char problem[512];
        printf("BROKEN at seq %llu: %s\n%llu records sound before it; head at seq %llu\n",
               (unsigned long long)verdict->broken_seq,
               ctl_clean(verdict->problem, problem, sizeof(problem)),
               (unsigned long long)verdict->checked, (unsigned long long)verdict->last_seq);
    }
    return verdict->intact ? CTL_EXIT_OK : CTL_EXIT_BROKEN;
}

static int verify_local(ctl_t *ctl, const audit_args_t *args)
{
    const char *dir = args->state;
    if (!dir) {
        const config_worker_t *audit = audit_worker(ctl, "--state DIR or --remote");
        if (!audit)
            return CTL_EXIT_USAGE;
        dir = audit->state_dir;
    }
    trail_verdict_t verdict;
    int rc = trail_verify_dir(dir, (uint64_t)args->from, 0, &verdict);
    if (rc == -ENOENT)
        return ctl_fail(CTL_EXIT_NOT_FOUND, "no audit store in %s", dir);
    if (rc < 0)
        return ctl_fail(CTL_EXIT_INTERNAL, "cannot read the audit store in %s: %s", dir,
                        store_strerror(rc));
    Dispatch__VerifyReply reply = DISPATCH__VERIFY_REPLY__INIT;
    reply.intact = verdict.broken_seq == 0;
    reply.from_seq = verdict.from_seq;
    reply.checked = verdict.checked;
    reply.last_seq = verdict.last_seq;
    reply.broken_seq = verdict.broken_seq;
    reply.problem = verdict.problem;
    reply.hash = (ProtobufCBinaryData){verdict.checked ? 32 : 0, verdict.hash};
    return print_verdict(ctl, &reply);
}

static int verify_remote(ctl_t *ctl, const audit_args_t *args)
{
    const char *url = NULL;
    int rc = request_url(ctl, args, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    /* In chunks, so the worker never stops for long; each chunk starts
     * from the hash the store holds for the record before it. */
    uint64_t from = args->from ? (uint64_t)args->from : 1, checked = 0;
    for (;;) {
        Dispatch__VerifyQuery check = DISPATCH__VERIFY_QUERY__INIT;
        check.from_seq = from;
        check.limit = VERIFY_CHUNK;
        Dispatch__AuditReply *reply;
        rc = audit_call(ctl, url, DISPATCH__AUDIT_QUERY__BODY_VERIFY, &check,
                        DISPATCH__AUDIT_REPLY__BODY_VERIFY, &reply);
        if (rc != CTL_EXIT_OK)
            return rc;
        Dispatch__VerifyReply *verdict = reply->verify;
        checked += verdict->checked;
        bool done = !verdict->intact || verdict->checked < VERIFY_CHUNK ||
                    from + verdict->checked > verdict->last_seq;
        if (done) {
            verdict->checked = checked;
            verdict->from_seq = args->from ? (uint64_t)args->from : 1;
            rc = print_verdict(ctl, verdict);
        }
        from += verdict->checked;
        protobuf_c_message_free_unpacked(&reply->base, NULL);
        if (done)
            return rc;
    }
}

static int print_history(ctl_t *ctl, const audit_args_t *args, const char *ticket)
{
    const char *url = NULL;
    int rc = request_url(ctl, args, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    uint64_t after = 0;
    bool more = true;
    while (rc == CTL_EXIT_OK && more) {
        Dispatch__HistoryQuery history = DISPATCH__HISTORY_QUERY__INIT;
        history.ticket_id = (char *)ticket;
        history.after_seq = after;
        history.limit = 1000;
        Dispatch__AuditReply *reply;
        rc = audit_call(ctl, url, DISPATCH__AUDIT_QUERY__BODY_HISTORY, &history,
                        DISPATCH__AUDIT_REPLY__BODY_HISTORY, &reply);
        if (rc != CTL_EXIT_OK)
            return rc;
        more = reply->history->more && reply->history->n_records > 0;
        for (size_t i = 0; i < reply->history->n_records; i++) {
            const Dispatch__AuditRecord *record = reply->history->records[i];
            after = record->seq;
            if (ctl->json) {
                rc = ctl_print_json(&record->base);
                continue;
            }
            char at[32], actor[128], name[40];
            const Dispatch__Event *event = record->event;
            printf("#%-8llu %s  %-22s %s\n", (unsigned long long)record->seq,
                   ctl_time(event ? event->at : record->recorded_at, at, sizeof(at)),
                   event ? ctl_enum_lower(&dispatch__event_type__descriptor, (int)event->body_case,
                                          name, sizeof(name))
                         : "(unreadable)",
                   event ? ctl_clean(event->actor, actor, sizeof(actor)) : "");
        }
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    }
    return rc;
}

int ctl_cmd_audit(ctl_t *ctl, int argc, char **argv)
{
    if (argc < 2)
        return ctl_usage_error("usage: audit verify|history ...");
    audit_args_t args = {0};
    int first = 0;
    if (strcmp(argv[1], "verify") == 0) {
        int rc = parse_args(ctl, argc - 1, argv + 1, "audit state remote from json", &args, &first);
        if (rc != CTL_EXIT_OK)
            return rc;
        if (first < argc - 1)
            return ctl_usage_error("usage: audit verify [--state DIR | --remote] [--from N]");
        if (args.remote && args.state)
            return ctl_usage_error("--state and --remote do not go together");
        return args.remote ? verify_remote(ctl, &args) : verify_local(ctl, &args);
    }
    if (strcmp(argv[1], "history") == 0) {
        int rc = parse_args(ctl, argc - 1, argv + 1, "audit json", &args, &first);
        if (rc != CTL_EXIT_OK)
            return rc;
        if (first != argc - 2)
            return ctl_usage_error("usage: audit history TICKET");
        return print_history(ctl, &args, argv[argc - 1]);
    }
    return ctl_usage_error("audit: unknown command '%s'", argv[1]);
}

/* ---- tail ------------------------------------------------------------------ */

static void print_record(const Dispatch__AuditRecord *record)
{
    const Dispatch__Event *event = record->event;
    char at[32], district[80], ticket[80], actor[80], name[40];
    if (!event) {
        printf("#%-8llu (unreadable record)\n", (unsigned long long)record->seq);
        return;
    }
    printf("#%-8llu %s  %-12s %-22s %-24s %s\n", (unsigned long long)record->seq,
           ctl_time(event->at, at, sizeof(at)),
           ctl_clean(*event->district ? event->district : "_", district, sizeof(district)),
           ctl_enum_lower(&dispatch__event_type__descriptor, (int)event->body_case, name,
                          sizeof(name)),
           ctl_clean(*event->ticket_id ? event->ticket_id : "-", ticket, sizeof(ticket)),
           ctl_clean(event->actor, actor, sizeof(actor)));
}

int ctl_cmd_tail(ctl_t *ctl, int argc, char **argv)
{
    audit_args_t args = {0};
    int first = 0;
    int rc = parse_args(ctl, argc, argv, "audit publish from district count json", &args, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (first < argc)
        return ctl_usage_error("usage: tail [--from N] [--district D] [--count N]");
    const char *request = NULL, *publish = args.publish_url;
    rc = request_url(ctl, &args, &request);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (!publish) {
        const config_worker_t *audit = audit_worker(ctl, "--publish URL");
        if (!audit)
            return CTL_EXIT_USAGE;
        if (!audit->publish)
            return ctl_usage_error("worker %s has no publish endpoint: give --publish URL",
                                   audit->name);
        publish = audit->publish;
    }
    follower_options_t options = {.from_seq = (uint64_t)args.from,
                                  .call_timeout_ms = ctl->timeout_ms};
    rc = ctl_curve(ctl, publish, &options.curve);
    if (rc != CTL_EXIT_OK)
        return rc;
    follower_t *follower;
    rc = follower_new(ctl->zmq, publish, request, &options, &follower);
    if (rc < 0)
        return ctl_usage_error("cannot follow %s and %s: %s", publish, request, strerror(-rc));

    ctl_follow_t follow;
    ctl_follow_start(&follow, ctl, "record");

    /* The whole stream is followed (gaps show only there); --district
     * filters what is printed. */
    long printed = 0;
    rc = CTL_EXIT_OK;
    while (!ctl_follow_stopped() && (args.count == 0 || printed < args.count)) {
        int wait;
        rc = ctl_follow_wait(&follow, TAIL_WAIT_MS, &wait);
        if (rc != CTL_EXIT_OK)
            break;
        const Dispatch__AuditRecord *record;
        int got = follower_next(follower, wait, &record);
        if (got == -ETIMEDOUT || got == -EINTR)
            continue;
        if (got < 0) {
            rc = ctl_fail(CTL_EXIT_UNAVAILABLE, "the audit does not answer: %s", strerror(-got));
            break;
        }
        if (args.district &&
            (!record->event ||
             strcmp(*record->event->district ? record->event->district : "_", args.district) != 0))
            continue;
        if (ctl->json)
            rc = ctl_print_json(&record->base);
        else
            print_record(record);
        fflush(stdout);
        printed++;
        ctl_follow_seen(&follow);
        if (rc != CTL_EXIT_OK)
            break;
    }
    follower_destroy(&follower);
    return rc;
}

/* ---- kpi ------------------------------------------------------------------- */

static const char *percent(double rate, uint64_t denominator, char *buf, size_t len)
{
    if (!denominator)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.1f%%", rate * 100);
    return buf;
}

static void csv_field(const char *text)
{
    bool quote = strpbrk(text, ",\"\n\r") != NULL;
    if (!quote) {
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

/* One line of CSV: the cells, quoted where needed. */
static void csv_row(const char *const *cells, size_t count)
{
    for (size_t c = 0; c < count; c++) {
        if (c)
            putchar(',');
        csv_field(cells[c]);
    }
    putchar('\n');
}

static const char *const kpi_headers[] = {
    "key",          "registered",  "dispatched", "signed", "in time",    "response",    "returned",
    "resolved",     "on time",     "on-time %",  "solved", "resolution", "called back", "satisfied",
    "satisfaction", "unreachable", "reopened",   "reopen", "closed",     "overdue",
};
#define KPI_COLUMNS (sizeof(kpi_headers) / sizeof(kpi_headers[0]))

static void kpi_cells(const Dispatch__KpiRow *row, bool raw, char cells[KPI_COLUMNS][48])
{
    const Dispatch__KpiCounts *c = row->counts;
    const Dispatch__KpiRates *r = row->rates;
    uint64_t counts[] = {c->registered, c->dispatched, c->signed_for, c->signed_in_time};
    snprintf(cells[0], 48, "%s", row->key);
    for (int i = 0; i < 4; i++)
        snprintf(cells[1 + i], 48, "%llu", (unsigned long long)counts[i]);
    struct {
        double rate;
        uint64_t denominator;
    } rates[] = {{r->response, c->dispatched},
                 {r->on_time, c->resolved},
                 {r->resolution, c->resolved},
                 {r->satisfaction, c->called_back},
                 {r->reopen, c->resolved}};
    uint64_t rest[] = {c->returned,
                       c->resolved,
                       c->resolved_on_time,
                       0,
                       c->resolved_solved,
                       0,
                       c->called_back,
                       c->satisfied,
                       0,
                       c->unreachable,
                       c->reopened,
                       0,
                       c->closed,
                       c->overdue};
    int rate_index[] = {-1, -1, -1, 1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1};
    /* column 5: response */
    if (raw)
        snprintf(cells[5], 48, "%.6f", rates[0].rate);
    else
        percent(rates[0].rate, rates[0].denominator, cells[5], 48);
    for (int i = 0; i < 14; i++) {
        int k = rate_index[i];
        if (k < 0)
            snprintf(cells[6 + i], 48, "%llu", (unsigned long long)rest[i]);
        else if (raw)
            snprintf(cells[6 + i], 48, "%.6f", rates[k].rate);
        else
            percent(rates[k].rate, rates[k].denominator, cells[6 + i], 48);
    }
}

int ctl_cmd_kpi(ctl_t *ctl, int argc, char **argv)
{
    audit_args_t args = {.by = DISPATCH__KPI_DIMENSION__KPI_DIMENSION_UNIT,
                         .period = DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH};
    int first = 0;
    int rc = parse_args(ctl, argc, argv, "audit by period at key json csv", &args, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (first < argc)
        return ctl_usage_error("usage: kpi [--by unit|district|category|city] "
                               "[--period day|month|quarter] [--at DATE] [--key K] "
                               "[--json|--csv]");
    const char *url = NULL;
    rc = request_url(ctl, &args, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_table_t *table = NULL;
    if (!ctl->json && !args.csv && ctl_table_new(KPI_COLUMNS, kpi_headers, &table) < 0)
        return ctl_fail(CTL_EXIT_INTERNAL, "out of memory");
    if (args.csv)
        csv_row(kpi_headers, KPI_COLUMNS);
    char after[80] = "", period_key[32] = "";
    bool more = true;
    size_t rows = 0;
    while (rc == CTL_EXIT_OK && more) {
        Dispatch__KpiQuery kpi = DISPATCH__KPI_QUERY__INIT;
        kpi.by = args.by;
        kpi.period = args.period;
        kpi.at = (char *)(args.at ? args.at : "");
        kpi.key = (char *)(args.key ? args.key : "");
        kpi.after_key = after;
        kpi.limit = KPI_PAGE;
        Dispatch__AuditReply *reply;
        rc = audit_call(ctl, url, DISPATCH__AUDIT_QUERY__BODY_KPI, &kpi,
                        DISPATCH__AUDIT_REPLY__BODY_KPI, &reply);
        if (rc != CTL_EXIT_OK)
            break;
        Dispatch__KpiReply *page = reply->kpi;
        snprintf(period_key, sizeof(period_key), "%s", page->period_key);
        more = page->more && page->n_rows > 0;
        if (ctl->json)
            rc = ctl_print_json(&page->base);
        for (size_t i = 0; i < page->n_rows && !ctl->json; i++) {
            char cells[KPI_COLUMNS][48];
            kpi_cells(page->rows[i], args.csv, cells);
            const char *pointers[KPI_COLUMNS];
            for (size_t c = 0; c < KPI_COLUMNS; c++)
                pointers[c] = cells[c];
            if (args.csv)
                csv_row(pointers, KPI_COLUMNS);
            else
                ctl_table_add(table, pointers);
        }
        rows += page->n_rows;
        if (page->n_rows)
            snprintf(after, sizeof(after), "%s", page->rows[page->n_rows - 1]->key);
        protobuf_c_message_free_unpacked(&reply->base, NULL);
    }
    if (table && rc == CTL_EXIT_OK) {
        char by[32];
        printf("KPIs by %s, %s (docs/kpi.md)\n",
               ctl_enum_lower(&dispatch__kpi_dimension__descriptor, args.by, by, sizeof(by)),
               period_key);
        if (rows)
            ctl_table_print(table, stdout);
        else
            printf("(nothing recorded)\n");
    }
    ctl_table_destroy(&table);
    return rc;
}

/* ---- report ------------------------------------------------------------------ */

int ctl_cmd_report(ctl_t *ctl, int argc, char **argv)
{
    audit_args_t args = {.period = DISPATCH__KPI_PERIOD__KPI_PERIOD_MONTH};
    int first = 0;
    int rc = parse_args(ctl, argc, argv, "audit period at top json csv", &args, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (first < argc)
        return ctl_usage_error("usage: report [--period day|month|quarter] [--at DATE] "
                               "[--top N] [--json|--csv]");
    const char *url = NULL;
    rc = request_url(ctl, &args, &url);
    if (rc != CTL_EXIT_OK)
        return rc;
    Dispatch__ReportQuery report_query = DISPATCH__REPORT_QUERY__INIT;
    report_query.period = args.period;
    report_query.at = (char *)(args.at ? args.at : "");
    report_query.top = (uint32_t)args.top;
    Dispatch__AuditReply *reply;
    rc = audit_call(ctl, url, DISPATCH__AUDIT_QUERY__BODY_REPORT, &report_query,
                    DISPATCH__AUDIT_REPLY__BODY_REPORT, &reply);
    if (rc != CTL_EXIT_OK)
        return rc;
    const Dispatch__SpecialReport *report = reply->report;
    static const char *const headers[] = {"rank",       "category",  "tickets", "share", "previous",
                                          "prev share", "prev rank", "change",  "trend"};
    if (ctl->json) {
        rc = ctl_print_json(&report->base);
    } else {
        ctl_table_t *table = NULL;
        if (args.csv) {
            printf("rank,category,tickets,share,previous,previous_share,previous_rank,change,"
                   "change_ratio\n");
        } else {
            printf("Special report %s: top categories of %s (%llu tickets) against %s (%llu)\n",
                   report->report_id, report->period_key, (unsigned long long)report->total,
                   report->previous_key, (unsigned long long)report->previous_total);
            ctl_table_new(9, headers, &table);
        }
        for (size_t i = 0; i < report->n_categories; i++) {
            const Dispatch__CategoryShare *s = report->categories[i];
            char cells[9][64];
            const char *pointers[9];
            for (int c = 0; c < 9; c++)
                pointers[c] = cells[c];
            snprintf(cells[0], 64, "%u", s->rank);
            snprintf(cells[1], 64, "%s", s->category);
            snprintf(cells[2], 64, "%llu", (unsigned long long)s->count);
            snprintf(cells[4], 64, "%llu", (unsigned long long)s->previous_count);
            snprintf(cells[6], 64, "%u", s->previous_rank);
            snprintf(cells[7], 64, "%+lld", (long long)s->change);
            if (args.csv) {
                snprintf(cells[3], 64, "%.6f", s->share);
                snprintf(cells[5], 64, "%.6f", s->previous_share);
                snprintf(cells[8], 64, "%.6f", s->change_ratio);
                csv_row(pointers, 9);
                continue;
            }
            snprintf(cells[3], 64, "%.1f%%", s->share * 100);
            percent(s->previous_share, report->previous_total, cells[5], 64);
            if (!s->previous_rank)
                snprintf(cells[6], 64, "-");
            if (s->previous_count)
                snprintf(cells[8], 64, "%+.1f%%", s->change_ratio * 100);
            else
                snprintf(cells[8], 64, "new");
            ctl_table_add(table, pointers);
        }
        if (table) {
            if (report->n_categories)
                ctl_table_print(table, stdout);
            printf("these %zu categories: %.1f%% of %s", report->n_categories,
                   report->top_share * 100, report->period_key);
            if (report->previous_total)
                printf(" (%.1f%% of %s)", report->previous_top_share * 100, report->previous_key);
            printf("\n");
        }
        ctl_table_destroy(&table);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return rc;
}

/* dispatch-callgen: the hotline's callers, and its satisfaction callback.
 *
 *   dispatch-callgen --config FILE [--clock SPEC] [--intake URL] [--data DIR]
 *                    [--rate CALLS_PER_HOUR] [--flat] [--duration DURATION]
 *                    [--replay FILE [--map FILE] [--limit N]]
 *                    [--urgent-share S] [--repeat-share S] [--answered-share S]
 *                    [--transfer-share S] [--no-callbacks] [--callback-after RANGE]
 *                    [--poll-rate N] [--no-audit] [--window N] [--timeout MS]
 *                    [--client-id ID] [--seed N] [--verify SECONDS]
 *                    [--ready-fd N] [--progress-fd N] [--progress-every MS]
 *
 * Calls (synthetic, the default): arrivals at --rate calls per business
 * hour on average (clock.h; --clock like the workers), shaped by the
 * hotline's day (quiet at night, peaks at 9-11 and 14-16; --flat for a
 * constant rate), in the mix of <data>/categories.csv: category, then its
 * kind; district in proportion to its communities and an area of the
 * category's level from <data>/units.csv (--data: default the parent of
 * the first router's data_dir, deploy/data in the example topology); channel (phone 60 %, WeChat 18
 * %, web 9 %, proactive 5 %, Open311 3 %, message board 3 %, reception day 2 %); about 2 % urgent
 * (--urgent-share; utilities and lifts more often, consults never: RULES.md); consults answered at
 * once at intake
 * (--answered-share of them); a few calls that belong to 110/119/120/122
 * (--transfer-share); repeat callers (--repeat-share) who call again about
 * a recent matter, same phone, address and category, which intake merges
 * while the first ticket is open.
 *
 * Replay (--replay FILE, the Los Angeles 311 sample's
 * service_requests.csv): each row is submitted at its created_date, rows
 * spaced as in the file in business time (so the clock's speed scales
 * them), mapped by --map (default <data>/la311-map.csv): type -> category
 * and kind, source -> channel, council -> area, region -> district (a row
 * without a region: the district of the nearest region centroid), address
 * and coordinates -> location. The replay ends after the last row (or
 * --limit rows) unless --duration says otherwise.
 *
 * Callback: for the tickets it submitted, once RESOLVED, it calls back
 * after --callback-after (business time, default 30m-4h): about 90 %
 * satisfied or basically satisfied, fewer when the unit did not solve the
 * matter; the unsatisfied are mostly "not solved" and reopen the ticket.
 * It learns that a ticket is resolved from the audit stream's
 * "<district>.ticket_resolved" when the topology has an audit publish
 * endpoint, and by GetTicket polls (at most --poll-rate a second, oldest
 * first) in any case, since a PUB stream may drop.
 *
 * Requests go over one DEALER with up to --window in flight, matched by
 * Request.tag; an answer that does not come within --timeout, or an
 * UNAVAILABLE, makes it send the same request again: the idempotency key
 * (client_request_id) makes a retry safe.
 *
 * --verify SECONDS: after the run, checks for up to SECONDS (real time)
 * that every ticket acknowledged as REGISTERED has reached its router
 * (its history shows ticket_dispatched or ticket_triaged), prints
 * "verify acknowledged=.. registered=.. routed=.. dispatched=.. triage=..
 * lost=.." and exits 1 when one is lost or a submission was never
 * acknowledged.
 *
 * Progress: one line of counters (business time, totals, "d.<district>.
 * <counter>=N") every --progress-every ms on --progress-fd; readiness:
 * "ready" on --ready-fd before the first call. The statistics go to
 * stdout at the end. SIGTERM / SIGINT end the calls early (the run then
 * finishes as at its end).
 *
 * Invariants: a call is in one phase (new, open, resolved = its callback
 * is scheduled, final); at most --window requests are in flight, each in
 * one slot that keeps its packed bytes, so a resend is the same request;
 * a call has at most one live poll timer and one live callback timer
 * (older heap entries carry an outdated generation and are skipped).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "client.h"
#include "clock.h"
#include "codec.h"
#include "config.h"
#include "csv.h"
#include "dealer.h"
#include "sim_array.h"
#include "sim_cli.h"
#include "sim_data.h"
#include "sim_heap.h"
#include "sim_map.h"
#include "sim_random.h"
#include "tool_keys.h"

#define MAX_DISTRICTS 32
#define MAX_WINDOW 1024
#define REPEAT_POOL 400
#define SEATS 40
#define FINISH_WAIT_MS 30000
#define UNAVAILABLE_RETRY_MS 500
#define VERIFY_RECHECK_MS 1000
#define VERIFY_RATE 2000.0

#define MINUTE_MS (60 * 1000LL)
#define HOUR_MS (60 * MINUTE_MS)

/* Calls per hour of the day relative to the day's mean (sums to 24). */
static const double day_profile[24] = {
    0.25, 0.15, 0.10, 0.10, 0.10, 0.20, 0.50, 1.00, 1.65, 1.95, 1.95, 1.65,
    1.20, 1.40, 1.75, 1.75, 1.50, 1.20, 1.00, 0.90, 0.80, 0.70, 0.50, 0.35,
};

typedef enum op_type { OP_SUBMIT, OP_GET, OP_CALLBACK } op_type_t;

typedef enum phase { PHASE_NEW, PHASE_OPEN, PHASE_RESOLVED, PHASE_FINAL } phase_t;

typedef struct call {
    char request_id[72];
    char ticket_id[65];
    char actor[24];
    uint32_t district;
    const char *category; /* owned by the category table or the LA map */
    Dispatch__Kind kind;
    Dispatch__Channel channel;
    bool urgent;
    char area[65];
    char address[257];
    char name[65];
    char phone[24];
    phase_t phase;
    Dispatch__TicketState submit_state; /* as acknowledged; 0 = not yet */
    bool routed, triaged;
    Dispatch__ResolutionResult result;
    uint32_t round; /* callbacks made */
    uint32_t poll_generation, callback_generation;
    int64_t poll_interval;
    bool checking;        /* a GetTicket is in flight */
    int64_t checked_real; /* when verify last asked */
} call_t;

typedef struct op {
    bool used;
    op_type_t type;
    uint64_t tag;
    uint32_t call;
    void *packed;
    size_t len;
    int64_t sent_real;
} op_t;

typedef struct district_stats {
    uint64_t registered, closed, reopened, merged;
} district_stats_t;

typedef struct replay_row {
    int64_t created_s;
    char srnumber[24];
    char type_id[8], source_id[8], council_id[8], region_id[8];
    char address[257];
    double latitude, longitude;
} replay_row_t;

typedef struct options {
    sim_options_t common; /* without --seed, the seed is drawn from the time and pid */
    const char *intake_url, *data_dir, *replay, *map, *client_id;
    double rate;
    bool flat, callbacks, audit;
    long limit;
    double urgent_share, repeat_share, answered_share, transfer_share;
    int64_t callback[2]; /* --callback-after: low, high */
    double poll_rate;
    long window, timeout_ms;
    long verify_seconds;
} options_t;

typedef struct gen {
    options_t options;
    config_t *config;
    void *zmq, *dealer, *sub;
    const char *districts[MAX_DISTRICTS];
    size_t district_count;
    double district_weights[MAX_DISTRICTS];
    district_stats_t stats[MAX_DISTRICTS];
    /* Areas per district: unit ids of streets and communities. */
    const char **streets[MAX_DISTRICTS], **communities[MAX_DISTRICTS];
    size_t street_count[MAX_DISTRICTS], community_count[MAX_DISTRICTS];
    sim_units_t *units;
    sim_category_t *categories;
    size_t category_count;
    double *category_weights;
    sim_la_map_t *la_map;
    replay_row_t *rows;
    size_t row_count, next_row;
    int64_t replay_zero_s;

    call_t *calls;
    size_t call_count, call_capacity;
    sim_map_t *by_ticket;
    op_t ops[MAX_WINDOW];
    size_t in_flight;
    uint64_t next_tag;
    sim_heap_t *polls, *callbacks;
    sim_random_t random;
    double poll_tokens;
    int64_t last_token_real;

    int64_t started_business, started_real, next_arrival;
    bool generating;
    /* Totals. */
    uint64_t submitted, acked, registered, merged, transferred, answered, refused, resent,
        callbacks_sent, closed, reopened, unreachable, satisfied, basically, unsatisfied,
        polls_sent, audit_seen, late_ms_max;
    uint64_t refused_codes[16];
} gen_t;

/* --- names, places, texts ------------------------------------------------ */

static const char *const surnames[] = {"王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴",
                                       "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马", "罗",
                                       "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "曹"};
static const char *const given_names[] = {
    "伟",   "芳",   "娜",   "秀英", "敏", "静",   "丽",   "强",   "磊", "军",   "洋",   "勇",
    "艳",   "杰",   "娟",   "涛",   "明", "超",   "秀兰", "霞",   "平", "刚",   "桂英", "建华",
    "玉兰", "志强", "红梅", "海燕", "雪", "淑珍", "国庆", "春生", "鹏", "子涵", "浩然", "欣怡"};
static const char *const roads[] = {
    "Renmin Street",  "Xi'an Road",       "Ziyou Road",     "Hongqi Street",  "Gongnong Road",
    "Jiefang Road",   "Tongzhi Street",   "Chongqing Road", "Guilin Road",    "Xinmin Street",
    "Yan'an Avenue",  "Weixing Road",     "Nanhu Avenue",   "Qianjin Avenue", "Shengli Street",
    "Changchun Road", "Dongsheng Street", "Kaiyun Street",  "Jilin Road",     "Yatai Street",
    "Puyang Street",  "Huguang Road",     "Hongqi Road",    "Minkang Road",   "Xingfu Road"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void make_caller(gen_t *g, call_t *c)
{
    snprintf(c->name, sizeof(c->name), "%s%s",
             surnames[sim_random_below(&g->random, COUNT(surnames))],
             given_names[sim_random_below(&g->random, COUNT(given_names))]);
    if (sim_random_chance(&g->random, 0.12)) /* a landline in the 0431 area */
        snprintf(c->phone, sizeof(c->phone), "04318%07llu",
                 (unsigned long long)sim_random_below(&g->random, 10000000));
    else
        snprintf(c->phone, sizeof(c->phone), "1%c%09llu", "35789"[sim_random_below(&g->random, 5)],
                 (unsigned long long)sim_random_below(&g->random, 1000000000));
}

static void make_address(gen_t *g, call_t *c)
{
    const char *road = roads[sim_random_below(&g->random, COUNT(roads))];
    if (strstr(c->area, "-c")) /* a community: building, entrance, flat */
        snprintf(c->address, sizeof(c->address), "Building %zu, entrance %zu, flat %zu%02zu, %s",
                 1 + sim_random_below(&g->random, 40), 1 + sim_random_below(&g->random, 6),
                 1 + sim_random_below(&g->random, 18), 1 + sim_random_below(&g->random, 6),
                 c->area);
    else if (*c->area)
        snprintf(c->address, sizeof(c->address), "No. %zu %s, %s",
                 1 + sim_random_below(&g->random, 999), road, c->area);
    else
        snprintf(c->address, sizeof(c->address), "No. %zu %s, %s district",
                 1 + sim_random_below(&g->random, 999), road, g->districts[c->district]);
}

static const char *kind_phrase(Dispatch__Kind kind)
{
    switch (kind) {
    case DISPATCH__KIND__KIND_CONSULT:
        return "Asks about";
    case DISPATCH__KIND__KIND_HELP:
        return "Asks for help with";
    case DISPATCH__KIND__KIND_COMPLAINT:
        return "Complains about";
    case DISPATCH__KIND__KIND_REPORT:
        return "Reports";
    case DISPATCH__KIND__KIND_SUGGESTION:
        return "Suggests an improvement to";
    case DISPATCH__KIND__KIND_UNSPECIFIED:
        break;
    }
    return "Calls about";
}

/* --- calls ----------------------------------------------------------------- */

static int call_new(gen_t *g, uint32_t *index)
{
    int rc =
        sim_array_reserve(&g->calls, g->call_count, &g->call_capacity, sizeof(*g->calls), 4096);
    if (rc < 0)
        return rc;
    call_t *c = &g->calls[g->call_count];
    memset(c, 0, sizeof(*c));
    *index = (uint32_t)g->call_count++;
    return 0;
}

static const sim_category_t *category_of(const gen_t *g, const call_t *c)
{
    for (size_t i = 0; i < g->category_count; i++)
        if (g->categories[i].code == c->category)
            return &g->categories[i];
    return NULL;
}

static bool urgent_prone(const char *category)
{
    static const char *const prone[] = {"gas",     "elevator",    "power-outage",  "water-supply",
                                        "heating", "road-damage", "manhole-cover", "drainage"};
    for (size_t i = 0; i < COUNT(prone); i++)
        if (strcmp(category, prone[i]) == 0)
            return true;
    return false;
}

static void pick_area(gen_t *g, call_t *c, sim_area_level_t level)
{
    uint32_t d = c->district;
    if (level == SIM_AREA_ANY) {
        double x = sim_random_unit(&g->random);
        level = x < 0.5 ? SIM_AREA_COMMUNITY : x < 0.8 ? SIM_AREA_STREET : SIM_AREA_ANY;
    }
    const char *area = "";
    if (level == SIM_AREA_COMMUNITY && g->community_count[d])
        area = g->communities[d][sim_random_below(&g->random, g->community_count[d])];
    else if (level == SIM_AREA_STREET && g->street_count[d])
        area = g->streets[d][sim_random_below(&g->random, g->street_count[d])];
    snprintf(c->area, sizeof(c->area), "%s", area);
}

/* A synthetic call: fills c. *transfer and *answered say what else the
 * request carries. */
static void make_call(gen_t *g, call_t *c, Dispatch__EmergencyLine *transfer, bool *answered)
{
    *transfer = DISPATCH__EMERGENCY_LINE__EMERGENCY_LINE_UNSPECIFIED;
    *answered = false;
    c->district = (uint32_t)sim_random_weighted(&g->random, g->district_weights, g->district_count);
    static const double channel_weights[] = {0, 60, 18, 9, 3, 3, 5, 2};
    c->channel =
        (Dispatch__Channel)sim_random_weighted(&g->random, channel_weights, COUNT(channel_weights));
    if (sim_random_chance(&g->random, g->options.transfer_share)) {
        c->category = "";
        c->kind = DISPATCH__KIND__KIND_HELP;
        c->channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
        *transfer = (Dispatch__EmergencyLine)(1 + sim_random_below(&g->random, 4));
        pick_area(g, c, SIM_AREA_STREET);
        make_caller(g, c);
        make_address(g, c);
        return;
    }
    const sim_category_t *category =
        &g->categories[sim_random_weighted(&g->random, g->category_weights, g->category_count)];
    c->category = category->code;
    c->kind = (Dispatch__Kind)sim_random_weighted(&g->random, category->kinds, SIM_KIND_COUNT);
    if (c->channel == DISPATCH__CHANNEL__CHANNEL_PROACTIVE)
        c->kind = DISPATCH__KIND__KIND_REPORT; /* found in the field: no caller */
    double urgent = g->options.urgent_share * (urgent_prone(c->category) ? 3.0 : 0.7);
    c->urgent = c->kind != DISPATCH__KIND__KIND_CONSULT && sim_random_chance(&g->random, urgent);
    pick_area(g, c, category->area_level);
    if (c->channel != DISPATCH__CHANNEL__CHANNEL_PROACTIVE)
        make_caller(g, c);
    make_address(g, c);
    *answered = c->kind == DISPATCH__KIND__KIND_CONSULT &&
                sim_random_chance(&g->random, g->options.answered_share);
}

/* A repeat caller: the same matter as a recent call. */
static bool make_repeat(gen_t *g, call_t *c)
{
    size_t pool = g->call_count > REPEAT_POOL + 1 ? REPEAT_POOL : g->call_count - 1;
    if (pool == 0)
        return false;
    const call_t *first = &g->calls[g->call_count - 2 - sim_random_below(&g->random, pool)];
    if (!*first->phone || !*first->category || first->submit_state == 0 ||
        first->submit_state == DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED)
        return false;
    c->district = first->district;
    c->category = first->category;
    c->kind =
        first->kind == DISPATCH__KIND__KIND_CONSULT ? DISPATCH__KIND__KIND_COMPLAINT : first->kind;
    c->channel = sim_random_chance(&g->random, 0.7) ? DISPATCH__CHANNEL__CHANNEL_PHONE
                                                    : DISPATCH__CHANNEL__CHANNEL_WECHAT;
    c->urgent = first->urgent;
    memcpy(c->area, first->area, sizeof(c->area));
    memcpy(c->address, first->address, sizeof(c->address));
    memcpy(c->name, first->name, sizeof(c->name));
    memcpy(c->phone, first->phone, sizeof(c->phone));
    return true;
}

/* --- requests ---------------------------------------------------------------- */

static op_t *op_free_slot(gen_t *g)
{
    for (long i = 0; i < g->options.window; i++)
        if (!g->ops[i].used)
            return &g->ops[i];
    return NULL;
}

/* Packs request (its tag set to a fresh one) into a free slot and sends it. */
static int op_start(gen_t *g, op_type_t type, uint32_t call, Dispatch__Request *request)
{
    op_t *op = op_free_slot(g);
    if (!op)
        return -EAGAIN;
    request->tag = ++g->next_tag;
    int rc = codec_encode(&request->base, &op->packed, &op->len);
    if (rc < 0)
        return rc;
    op->used = true;
    op->type = type;
    op->tag = request->tag;
    op->call = call;
    op->sent_real = sim_monotonic_ms();
    g->in_flight++;
    if (dealer_send(g->dealer, op->packed, op->len) < 0)
        op->sent_real -= g->options.timeout_ms; /* resend at the next turn */
    return 0;
}

static void op_finish(gen_t *g, op_t *op)
{
    if (op->type == OP_GET)
        g->calls[op->call].checking = false;
    free(op->packed);
    memset(op, 0, sizeof(*op));
    g->in_flight--;
}

static bool window_full(const gen_t *g)
{
    return g->in_flight >= (size_t)g->options.window;
}

static int submit_call(gen_t *g, uint32_t index, Dispatch__EmergencyLine transfer, bool answered,
                       const char *description, double latitude, double longitude, bool has_point)
{
    call_t *c = &g->calls[index];
    Dispatch__SubmitTicket submit = DISPATCH__SUBMIT_TICKET__INIT;
    Dispatch__Location location = DISPATCH__LOCATION__INIT;
    Dispatch__GeoPoint point = DISPATCH__GEO_POINT__INIT;
    submit.client_request_id = c->request_id;
    submit.channel = c->channel;
    submit.kind = c->kind;
    submit.category = (char *)c->category;
    submit.urgency =
        c->urgent ? DISPATCH__URGENCY__URGENCY_URGENT : DISPATCH__URGENCY__URGENCY_NORMAL;
    submit.district = (char *)g->districts[c->district];
    submit.area = c->area;
    location.address = c->address;
    if (has_point) {
        point.lat_e6 = (int32_t)lround(latitude * 1e6);
        point.lon_e6 = (int32_t)lround(longitude * 1e6);
        location.point = &point;
    }
    submit.location = &location;
    submit.caller_name = c->name;
    submit.caller_phone = c->phone;
    submit.caller_confidential = *c->phone && sim_random_chance(&g->random, 0.04);
    submit.description = (char *)description;
    submit.transfer_to = transfer;
    if (answered) {
        submit.answered = true;
        submit.answer = "Answered at once from the knowledge base: the operator explained the "
                        "rules, the documents needed and the office hours.";
    }
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = c->actor;
    request.body_case = DISPATCH__REQUEST__BODY_SUBMIT;
    request.submit = &submit;
    g->submitted++;
    return op_start(g, OP_SUBMIT, index, &request);
}

static int new_synthetic_call(gen_t *g)
{
    uint32_t index;
    int rc = call_new(g, &index);
    if (rc < 0)
        return rc;
    call_t *c = &g->calls[index];
    snprintf(c->request_id, sizeof(c->request_id), "%s-%06zu", g->options.client_id,
             (size_t)index + 1);
    snprintf(c->actor, sizeof(c->actor), "agent-%02zu", 1 + sim_random_below(&g->random, SEATS));
    Dispatch__EmergencyLine transfer = 0;
    bool answered = false, repeat = false;
    if (sim_random_chance(&g->random, g->options.repeat_share))
        repeat = make_repeat(g, c);
    if (!repeat)
        make_call(g, c, &transfer, &answered);
    const sim_category_t *category = category_of(g, c);
    char description[600];
    if (transfer)
        snprintf(description, sizeof(description),
                 "Caller reports an emergency at %s: handed over to the emergency line at once.",
                 c->address);
    else if (repeat)
        snprintf(description, sizeof(description), "Calls again: %s at %s is still not dealt with.",
                 category ? category->name : "the matter", c->address);
    else
        snprintf(description, sizeof(description), "%s: %s. At %s.%s", kind_phrase(c->kind),
                 category && *category->code ? category->name : "a matter the caller describes",
                 c->address, c->urgent ? " Urgent: people are affected now." : "");
    double latitude = 43.88 + 0.03 * ((double)c->district - (double)g->district_count / 2) +
                      sim_random_between(&g->random, -0.02, 0.02);
    double longitude = 125.32 + sim_random_between(&g->random, -0.04, 0.04);
    bool has_point = c->channel == DISPATCH__CHANNEL__CHANNEL_WECHAT ||
                     c->channel == DISPATCH__CHANNEL__CHANNEL_OPEN311 ||
                     c->channel == DISPATCH__CHANNEL__CHANNEL_PROACTIVE;
    return submit_call(g, index, transfer, answered, description, latitude, longitude, has_point);
}

static long district_index(const gen_t *g, const char *district)
{
    for (size_t i = 0; i < g->district_count; i++)
        if (strcmp(g->districts[i], district) == 0)
            return (long)i;
    return -1;
}

static int new_replay_call(gen_t *g, const replay_row_t *row)
{
    const char *category = "", *type_name = "", *area = "", *district = NULL,
               *council_district = NULL;
    Dispatch__Kind kind = DISPATCH__KIND__KIND_REPORT;
    Dispatch__Channel channel = DISPATCH__CHANNEL__CHANNEL_PHONE;
    sim_la_map_type(g->la_map, row->type_id, &category, &kind, &type_name);
    sim_la_map_source(g->la_map, row->source_id, &channel);
    if (sim_la_map_council(g->la_map, row->council_id, &area, &council_district) < 0)
        area = "";
    if (sim_la_map_region(g->la_map, row->region_id, &district) < 0 || !*district)
        district = council_district;
    bool has_point = row->latitude != 0 && row->longitude != 0;
    if (!district && has_point)
        district = sim_la_map_nearest(g->la_map, row->latitude, row->longitude);
    long d = district ? district_index(g, district) : -1;
    if (d < 0)
        d = 0;
    uint32_t index;
    int rc = call_new(g, &index);
    if (rc < 0)
        return rc;
    call_t *c = &g->calls[index];
    snprintf(c->request_id, sizeof(c->request_id), "%s-la-%s", g->options.client_id, row->srnumber);
    snprintf(c->actor, sizeof(c->actor), "gateway-la311");
    c->district = (uint32_t)d;
    c->category = category;
    c->kind = kind ? kind : DISPATCH__KIND__KIND_REPORT;
    c->channel = channel;
    c->urgent = c->kind != DISPATCH__KIND__KIND_CONSULT &&
                sim_random_chance(&g->random, g->options.urgent_share);
    snprintf(c->area, sizeof(c->area), "%s", area);
    snprintf(c->address, sizeof(c->address), "%s", row->address);
    char description[600];
    snprintf(description, sizeof(description), "%s at %s (LA 311 request %s).",
             *type_name ? type_name : "Request", row->address, row->srnumber);
    return submit_call(g, index, 0, false, description, row->latitude, row->longitude, has_point);
}

static int get_ticket(gen_t *g, uint32_t index)
{
    Dispatch__GetTicket get = DISPATCH__GET_TICKET__INIT;
    get.ticket_id = g->calls[index].ticket_id;
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "callback-desk";
    request.body_case = DISPATCH__REQUEST__BODY_GET_TICKET;
    request.get_ticket = &get;
    g->polls_sent++;
    int rc = op_start(g, OP_GET, index, &request);
    if (rc == 0)
        g->calls[index].checking = true;
    return rc;
}

/* The caller's verdict, given how the unit resolved the matter. */
static void draw_verdict(gen_t *g, const call_t *c, Dispatch__Callback *callback)
{
    double unsatisfied = 0.05, basically = 0.18;
    if (c->result == DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_NOT_SOLVED)
        unsatisfied = 0.55, basically = 0.30;
    else if (c->result == DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_PARTLY_SOLVED)
        unsatisfied = 0.20, basically = 0.45;
    if (c->round > 0)
        unsatisfied /= 2; /* handled a second time */
    if (sim_random_chance(&g->random, 0.03)) {
        callback->unreachable = true;
        return;
    }
    double x = sim_random_unit(&g->random);
    if (x < unsatisfied) {
        callback->satisfaction = DISPATCH__SATISFACTION__SATISFACTION_UNSATISFIED;
        callback->solved = !sim_random_chance(&g->random, 0.7);
        callback->comment = callback->solved ? "Solved, but the staff were rude and slow."
                                             : "Nothing has changed; please send someone again.";
    } else if (x < unsatisfied + basically) {
        callback->satisfaction = DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED;
        callback->solved = true;
        callback->comment = "Basically fine, it took a while.";
    } else {
        callback->satisfaction = DISPATCH__SATISFACTION__SATISFACTION_SATISFIED;
        callback->solved = true;
        callback->comment = "Satisfied, thank you.";
    }
}

static int send_callback(gen_t *g, uint32_t index)
{
    call_t *c = &g->calls[index];
    char request_id[96];
    snprintf(request_id, sizeof(request_id), "%s-cb-%s-%u", g->options.client_id, c->ticket_id,
             c->round);
    Dispatch__Callback callback = DISPATCH__CALLBACK__INIT;
    callback.client_request_id = request_id;
    callback.ticket_id = c->ticket_id;
    draw_verdict(g, c, &callback);
    Dispatch__Request request = DISPATCH__REQUEST__INIT;
    request.actor = "callback-desk";
    request.body_case = DISPATCH__REQUEST__BODY_CALLBACK;
    request.callback = &callback;
    g->callbacks_sent++;
    return op_start(g, OP_CALLBACK, index, &request);
}

/* --- scheduling -------------------------------------------------------------- */

static int schedule_poll(gen_t *g, uint32_t index, int64_t at)
{
    call_t *c = &g->calls[index];
    c->poll_generation++;
    return sim_heap_push(g->polls, at, index, c->poll_generation);
}

static int schedule_callback(gen_t *g, uint32_t index, int64_t now)
{
    call_t *c = &g->calls[index];
    if (c->phase == PHASE_RESOLVED || c->phase == PHASE_FINAL)
        return 0;
    c->phase = PHASE_RESOLVED;
    c->poll_generation++; /* no more polls until the callback is done */
    if (!g->options.callbacks)
        return 0;
    int64_t delay = (int64_t)sim_random_between(&g->random, (double)g->options.callback[0],
                                                (double)g->options.callback[1]);
    c->callback_generation++;
    return sim_heap_push(g->callbacks, now + delay, index, c->callback_generation);
}

/* First look soon after submit, then less and less often. */
static int poll_later(gen_t *g, uint32_t index, int64_t now)
{
    call_t *c = &g->calls[index];
    int64_t base = g->sub ? 2 * HOUR_MS : 45 * MINUTE_MS;
    c->poll_interval = c->poll_interval ? c->poll_interval * 2 : base;
    if (c->poll_interval > 8 * HOUR_MS)
        c->poll_interval = 8 * HOUR_MS;
    return schedule_poll(g, index, now + c->poll_interval);
}

/* --- replies ------------------------------------------------------------------ */

static void count_refusal(gen_t *g, const Dispatch__Error *error, const call_t *c)
{
    g->refused++;
    if ((unsigned)error->code < 16)
        g->refused_codes[error->code]++;
    if (g->refused <= 5)
        fprintf(stderr, "dispatch-callgen: %s refused: %s (%s)\n", c->request_id, error->message,
                error->field);
}

static bool retry_later(gen_t *g, op_t *op, const Dispatch__Reply *reply)
{
    if (reply->body_case != DISPATCH__REPLY__BODY_ERROR ||
        (reply->error->code != DISPATCH__ERROR_CODE__ERROR_CODE_UNAVAILABLE &&
         reply->error->code != DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL))
        return false;
    op->sent_real = sim_monotonic_ms() - g->options.timeout_ms + UNAVAILABLE_RETRY_MS;
    return true;
}

static int on_submit_reply(gen_t *g, uint32_t index, const Dispatch__Reply *reply, int64_t now)
{
    call_t *c = &g->calls[index];
    if (reply->body_case != DISPATCH__REPLY__BODY_SUBMIT) {
        if (reply->body_case == DISPATCH__REPLY__BODY_ERROR)
            count_refusal(g, reply->error, c);
        c->phase = PHASE_FINAL;
        return 0;
    }
    const Dispatch__SubmitReply *submit = reply->submit;
    g->acked++;
    snprintf(c->ticket_id, sizeof(c->ticket_id), "%s", submit->ticket_id);
    c->submit_state = submit->state;
    district_stats_t *stats = &g->stats[c->district];
    switch (submit->state) {
    case DISPATCH__TICKET_STATE__TICKET_STATE_MERGED:
        g->merged++;
        stats->merged++;
        c->phase = PHASE_FINAL;
        return 0;
    case DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED:
        g->transferred++;
        c->phase = PHASE_FINAL;
        return 0;
    default:
        break;
    }
    int rc = sim_map_put(g->by_ticket, c->ticket_id, index);
    if (rc < 0 && rc != -EEXIST)
        return rc;
    if (submit->state == DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED) {
        g->answered++;
        c->result = DISPATCH__RESOLUTION_RESULT__RESOLUTION_RESULT_EXPLAINED;
        c->phase = PHASE_OPEN;
        return schedule_callback(g, index, now);
    }
    g->registered++;
    stats->registered++;
    c->phase = PHASE_OPEN;
    return poll_later(g, index, now);
}

static bool history_has(const Dispatch__TicketView *view, Dispatch__EventType type)
{
    for (size_t i = 0; i < view->n_history; i++)
        if (view->history[i]->type == type)
            return true;
    return false;
}

static int on_ticket_reply(gen_t *g, uint32_t index, const Dispatch__Reply *reply, int64_t now)
{
    call_t *c = &g->calls[index];
    if (reply->body_case != DISPATCH__REPLY__BODY_TICKET || !reply->ticket->ticket)
        return c->phase == PHASE_OPEN ? poll_later(g, index, now) : 0;
    const Dispatch__TicketView *view = reply->ticket;
    const Dispatch__Ticket *ticket = view->ticket;
    if (!c->routed)
        c->routed = history_has(view, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_DISPATCHED) ||
                    history_has(view, DISPATCH__EVENT_TYPE__EVENT_TYPE_TICKET_TRIAGED);
    c->triaged = ticket->state == DISPATCH__TICKET_STATE__TICKET_STATE_TRIAGE;
    if (c->phase != PHASE_OPEN)
        return 0;
    switch (ticket->state) {
    case DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED:
        c->result = ticket->result;
        return schedule_callback(g, index, now);
    case DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_MERGED:
    case DISPATCH__TICKET_STATE__TICKET_STATE_TRANSFERRED:
        c->phase = PHASE_FINAL;
        return 0;
    default:
        return poll_later(g, index, now);
    }
}

static int on_callback_reply(gen_t *g, uint32_t index, const Dispatch__Reply *reply, int64_t now)
{
    call_t *c = &g->calls[index];
    district_stats_t *stats = &g->stats[c->district];
    if (reply->body_case == DISPATCH__REPLY__BODY_CALLBACK) {
        c->round++;
        if (reply->callback->state == DISPATCH__TICKET_STATE__TICKET_STATE_REOPENED) {
            g->reopened++;
            stats->reopened++;
            c->phase = PHASE_OPEN;
            c->poll_interval = 0;
            return poll_later(g, index, now);
        }
        g->closed++;
        stats->closed++;
        c->phase = PHASE_FINAL;
        return 0;
    }
    if (reply->body_case == DISPATCH__REPLY__BODY_ERROR &&
        reply->error->code == DISPATCH__ERROR_CODE__ERROR_CODE_CONFLICT) {
        /* Not RESOLVED any more (or not yet again): look later. */
        c->phase = PHASE_OPEN;
        c->poll_interval = 0;
        return poll_later(g, index, now);
    }
    if (reply->body_case == DISPATCH__REPLY__BODY_ERROR)
        count_refusal(g, reply->error, c);
    c->phase = PHASE_FINAL;
    return 0;
}

static void note_verdict(gen_t *g, const op_t *op)
{
    Dispatch__Request *request = dispatch__request__unpack(NULL, op->len, op->packed);
    if (!request)
        return;
    if (request->body_case == DISPATCH__REQUEST__BODY_CALLBACK) {
        const Dispatch__Callback *cb = request->callback;
        if (cb->unreachable)
            g->unreachable++;
        else if (cb->satisfaction == DISPATCH__SATISFACTION__SATISFACTION_SATISFIED)
            g->satisfied++;
        else if (cb->satisfaction == DISPATCH__SATISFACTION__SATISFACTION_BASICALLY_SATISFIED)
            g->basically++;
        else
            g->unsatisfied++;
    }
    dispatch__request__free_unpacked(request, NULL);
}

static int drain_replies(gen_t *g)
{
    for (;;) {
        ProtobufCMessage *msg;
        int rc = dealer_recv(g->dealer, &dispatch__reply__descriptor, &msg);
        if (rc == -EAGAIN)
            return 0;
        if (rc == -EPROTO || rc == -EBADMSG)
            continue;
        if (rc < 0)
            return rc;
        Dispatch__Reply *reply = (Dispatch__Reply *)msg;
        op_t *op = NULL;
        for (long i = 0; i < g->options.window && reply->tag; i++)
            if (g->ops[i].used && g->ops[i].tag == reply->tag)
                op = &g->ops[i];
        rc = 0;
        if (op && !retry_later(g, op, reply)) {
            int64_t now = clock_now_ms();
            uint32_t index = op->call;
            if (op->type == OP_SUBMIT)
                rc = on_submit_reply(g, index, reply, now);
            else if (op->type == OP_GET)
                rc = on_ticket_reply(g, index, reply, now);
            else {
                if (reply->body_case == DISPATCH__REPLY__BODY_CALLBACK)
                    note_verdict(g, op);
                rc = on_callback_reply(g, index, reply, now);
            }
            op_finish(g, op);
        }
        protobuf_c_message_free_unpacked(msg, NULL);
        if (rc < 0)
            return rc;
    }
}

/* The audit stream: "<district>.ticket_resolved" of our tickets. */
static int drain_audit(gen_t *g)
{
    for (;;) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        if (zmq_msg_recv(&topic, g->sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&topic);
            return errno == EAGAIN ? 0 : -errno;
        }
        zmq_msg_close(&topic);
        int more = 0;
        size_t size = sizeof(more);
        zmq_getsockopt(g->sub, ZMQ_RCVMORE, &more, &size);
        if (!more)
            continue;
        zmq_msg_init(&body);
        int received = zmq_msg_recv(&body, g->sub, 0);
        for (zmq_getsockopt(g->sub, ZMQ_RCVMORE, &more, &size); more;
             zmq_getsockopt(g->sub, ZMQ_RCVMORE, &more, &size)) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            zmq_msg_recv(&part, g->sub, 0);
            zmq_msg_close(&part);
        }
        ProtobufCMessage *msg = NULL;
        char err[256];
        if (received >= 0)
            codec_decode(&dispatch__audit_record__descriptor, zmq_msg_data(&body),
                         zmq_msg_size(&body), DEALER_MAX_MESSAGE, &msg, err, sizeof(err));
        zmq_msg_close(&body);
        if (!msg)
            continue;
        const Dispatch__AuditRecord *record = (const Dispatch__AuditRecord *)msg;
        const Dispatch__Event *event = record->event;
        uint32_t index;
        int rc = 0;
        if (event && event->body_case == DISPATCH__EVENT__BODY_TICKET_RESOLVED &&
            sim_map_get(g->by_ticket, event->ticket_id, &index) == 0) {
            g->audit_seen++;
            call_t *c = &g->calls[index];
            c->routed = c->routed || !event->ticket_resolved->at_intake;
            if (c->phase == PHASE_OPEN) {
                c->result = event->ticket_resolved->result;
                rc = schedule_callback(g, index, clock_now_ms());
            }
        }
        protobuf_c_message_free_unpacked(msg, NULL);
        if (rc < 0)
            return rc;
    }
}

/* --- the loop ------------------------------------------------------------------ */

static double arrivals_per_ms(const gen_t *g, int64_t now)
{
    double per_ms = g->options.rate / (double)HOUR_MS;
    if (g->options.flat)
        return per_ms;
    int hour, weekday;
    sim_local_hour(now, &hour, &weekday);
    double weekend = weekday == 0 || weekday == 6 ? 0.7 : 1.0;
    return per_ms * day_profile[hour] * weekend;
}

/* Next synthetic arrival after `from` (a Poisson process whose rate is
 * taken at `from`; hours change slowly against the gaps). */
static int64_t next_arrival(gen_t *g, int64_t from)
{
    double rate = arrivals_per_ms(g, from);
    if (rate <= 0)
        return from + HOUR_MS;
    double gap = sim_random_exponential(&g->random, 1.0 / rate);
    return from + (int64_t)gap + 1;
}

static int generate(gen_t *g, int64_t now)
{
    while (g->generating && !window_full(g)) {
        if (g->rows) {
            if (g->next_row >= g->row_count) {
                g->generating = false;
                break;
            }
            const replay_row_t *row = &g->rows[g->next_row];
            int64_t due = g->started_business + (row->created_s - g->replay_zero_s) * 1000;
            if (due > now)
                break;
            if ((uint64_t)(now - due) > g->late_ms_max)
                g->late_ms_max = (uint64_t)(now - due);
            g->next_row++;
            int rc = new_replay_call(g, row);
            if (rc < 0)
                return rc;
        } else {
            if (g->next_arrival > now)
                break;
            if ((uint64_t)(now - g->next_arrival) > g->late_ms_max)
                g->late_ms_max = (uint64_t)(now - g->next_arrival);
            g->next_arrival = next_arrival(g, g->next_arrival);
            int rc = new_synthetic_call(g);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int run_callbacks(gen_t *g, int64_t now)
{
    sim_timer_t timer;
    while (!window_full(g) && sim_heap_peek(g->callbacks, &timer) && timer.due <= now) {
        sim_heap_pop(g->callbacks, &timer);
        call_t *c = &g->calls[timer.item];
        if (timer.generation != c->callback_generation || c->phase != PHASE_RESOLVED)
            continue;
        int rc = send_callback(g, timer.item);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int run_polls(gen_t *g, int64_t now, bool unlimited)
{
    int64_t real = sim_monotonic_ms();
    g->poll_tokens += (double)(real - g->last_token_real) * g->options.poll_rate / 1000.0;
    if (g->poll_tokens > g->options.poll_rate)
        g->poll_tokens = g->options.poll_rate;
    g->last_token_real = real;
    sim_timer_t timer;
    while (!window_full(g) && (unlimited || g->poll_tokens >= 1) &&
           sim_heap_peek(g->polls, &timer) && timer.due <= now) {
        sim_heap_pop(g->polls, &timer);
        call_t *c = &g->calls[timer.item];
        if (timer.generation != c->poll_generation)
            continue;
        if (!unlimited && c->phase != PHASE_OPEN)
            continue;
        g->poll_tokens -= 1;
        int rc = get_ticket(g, timer.item);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void resend_overdue(gen_t *g)
{
    int64_t real = sim_monotonic_ms();
    for (long i = 0; i < g->options.window; i++) {
        op_t *op = &g->ops[i];
        if (!op->used || real - op->sent_real < g->options.timeout_ms)
            continue;
        op->sent_real = real;
        g->resent++;
        dealer_send(g->dealer, op->packed, op->len);
    }
}

static void write_progress(gen_t *g, int64_t now)
{
    if (g->options.common.progress_fd < 0)
        return;
    char line[4096], when[32];
    int n = snprintf(line, sizeof(line),
                     "calls t=%s calls=%llu acked=%llu registered=%llu merged=%llu "
                     "transferred=%llu answered=%llu refused=%llu callbacks=%llu closed=%llu "
                     "reopened=%llu in_flight=%zu resent=%llu",
                     sim_format_time(now, when, sizeof(when)), (unsigned long long)g->submitted,
                     (unsigned long long)g->acked, (unsigned long long)g->registered,
                     (unsigned long long)g->merged, (unsigned long long)g->transferred,
                     (unsigned long long)g->answered, (unsigned long long)g->refused,
                     (unsigned long long)g->callbacks_sent, (unsigned long long)g->closed,
                     (unsigned long long)g->reopened, g->in_flight, (unsigned long long)g->resent);
    for (size_t d = 0; d < g->district_count && n > 0 && (size_t)n < sizeof(line); d++)
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      " d.%s.registered=%llu d.%s.closed=%llu d.%s.reopened=%llu", g->districts[d],
                      (unsigned long long)g->stats[d].registered, g->districts[d],
                      (unsigned long long)g->stats[d].closed, g->districts[d],
                      (unsigned long long)g->stats[d].reopened);
    sim_write_progress(&g->options.common, line);
}

static int poll_sockets(gen_t *g, long wait_ms)
{
    zmq_pollitem_t items[2] = {{.socket = g->dealer, .events = ZMQ_POLLIN},
                               {.socket = g->sub, .events = ZMQ_POLLIN}};
    int n = zmq_poll(items, g->sub ? 2 : 1, wait_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    int rc = 0;
    if (items[0].revents & ZMQ_POLLIN)
        rc = drain_replies(g);
    if (rc == 0 && g->sub && (items[1].revents & ZMQ_POLLIN))
        rc = drain_audit(g);
    return rc;
}

static long wait_for(const gen_t *g, int64_t now)
{
    long wait = 50;
    if (g->generating && !g->rows) {
        double real = (double)(g->next_arrival - now) / clock_speed();
        if (real < wait)
            wait = real < 0 ? 0 : (long)real;
    }
    return wait;
}

static int run(gen_t *g)
{
    g->started_business = clock_now_ms();
    g->started_real = sim_monotonic_ms();
    g->last_token_real = g->started_real;
    g->next_arrival = g->started_business;
    g->generating = true;
    int64_t next_progress = 0, next_resend = 0;
    int rc = 0;
    /* The run: calls, polls and callbacks until the duration, the end of the
     * replay, or a stop signal. */
    while (rc == 0) {
        int64_t now = clock_now_ms();
        if (sim_stop_requested() ||
            (g->options.common.duration && now - g->started_business >= g->options.common.duration))
            g->generating = false;
        if (!g->generating && (g->options.common.duration == 0 || sim_stop_requested() ||
                               now - g->started_business >= g->options.common.duration))
            break;
        rc = generate(g, now);
        if (rc == 0)
            rc = run_callbacks(g, now);
        if (rc == 0)
            rc = run_polls(g, now, false);
        int64_t real = sim_monotonic_ms();
        if (real >= next_resend) {
            resend_overdue(g);
            next_resend = real + 200;
        }
        if (real >= next_progress) {
            write_progress(g, now);
            next_progress = real + g->options.common.progress_every;
        }
        if (rc == 0)
            rc = poll_sockets(g, wait_for(g, now));
    }
    /* Submissions in flight get their answer (or are given up on). */
    int64_t give_up = sim_monotonic_ms() + FINISH_WAIT_MS;
    while (rc == 0 && sim_monotonic_ms() < give_up) {
        bool submitting = false;
        for (long i = 0; i < g->options.window; i++)
            submitting = submitting || (g->ops[i].used && g->ops[i].type == OP_SUBMIT);
        if (!submitting)
            break;
        resend_overdue(g);
        rc = poll_sockets(g, 50);
    }
    write_progress(g, clock_now_ms());
    return rc;
}

/* --- verification ---------------------------------------------------------------- */

static int verify(gen_t *g, uint64_t *lost)
{
    int64_t give_up = sim_monotonic_ms() + g->options.verify_seconds * 1000;
    int64_t last_real = sim_monotonic_ms();
    double tokens = VERIFY_RATE / 10.0;
    int rc = 0;
    for (;;) {
        /* Every registered ticket not known to be routed gets a look, at
         * most every VERIFY_RECHECK_MS and VERIFY_RATE a second in all. */
        size_t pending = 0;
        int64_t real = sim_monotonic_ms();
        tokens += (double)(real - last_real) * VERIFY_RATE / 1000.0;
        if (tokens > VERIFY_RATE / 10.0)
            tokens = VERIFY_RATE / 10.0;
        last_real = real;
        for (size_t i = 0; i < g->call_count && rc == 0; i++) {
            call_t *c = &g->calls[i];
            if (c->submit_state != DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED || c->routed)
                continue;
            pending++;
            if (!c->checking && !window_full(g) && tokens >= 1 &&
                real - c->checked_real >= VERIFY_RECHECK_MS) {
                c->checked_real = real;
                tokens -= 1;
                rc = get_ticket(g, (uint32_t)i);
            }
        }
        if (rc < 0)
            return rc;
        if (pending == 0 || real >= give_up) {
            *lost = pending;
            break;
        }
        resend_overdue(g);
        rc = poll_sockets(g, 20);
        if (rc < 0)
            return rc;
    }
    uint64_t registered = 0, routed = 0, triage = 0;
    for (size_t i = 0; i < g->call_count; i++) {
        const call_t *c = &g->calls[i];
        if (c->submit_state != DISPATCH__TICKET_STATE__TICKET_STATE_REGISTERED)
            continue;
        registered++;
        routed += c->routed;
        triage += c->routed && c->triaged;
    }
    uint64_t unacked = g->submitted - g->acked - g->refused;
    printf("verify acknowledged=%llu registered=%llu routed=%llu dispatched=%llu triage=%llu "
           "lost=%llu unacknowledged=%llu\n",
           (unsigned long long)g->acked, (unsigned long long)registered, (unsigned long long)routed,
           (unsigned long long)(routed - triage), (unsigned long long)triage,
           (unsigned long long)*lost, (unsigned long long)unacked);
    *lost += unacked;
    return 0;
}

/* --- statistics ------------------------------------------------------------------- */

static void print_stats(const gen_t *g)
{
    int64_t business = clock_now_ms() - g->started_business;
    double real = (double)(sim_monotonic_ms() - g->started_real) / 1000.0;
    printf("callgen: %s for %lldh%02lldm of business time in %.1f s: %llu calls, %llu "
           "acknowledged (registered %llu, merged as repeats %llu, answered at intake %llu, "
           "transferred to 110/119/120/122 %llu), refused %llu, resent %llu\n",
           g->rows ? "replay" : "synthetic calls", (long long)(business / HOUR_MS),
           (long long)(business % HOUR_MS / MINUTE_MS), real, (unsigned long long)g->submitted,
           (unsigned long long)g->acked, (unsigned long long)g->registered,
           (unsigned long long)g->merged, (unsigned long long)g->answered,
           (unsigned long long)g->transferred, (unsigned long long)g->refused,
           (unsigned long long)g->resent);
    uint64_t rated = g->satisfied + g->basically + g->unsatisfied;
    printf("callgen: callbacks %llu: closed %llu, reopened %llu; satisfied %llu, basically "
           "satisfied %llu, unsatisfied %llu, unreachable %llu (satisfaction %.1f %%); ticket "
           "polls %llu, resolutions seen on the audit stream %llu\n",
           (unsigned long long)g->callbacks_sent, (unsigned long long)g->closed,
           (unsigned long long)g->reopened, (unsigned long long)g->satisfied,
           (unsigned long long)g->basically, (unsigned long long)g->unsatisfied,
           (unsigned long long)g->unreachable,
           rated ? 100.0 * (double)(g->satisfied + g->basically) / (double)rated : 0.0,
           (unsigned long long)g->polls_sent, (unsigned long long)g->audit_seen);
    printf("callgen: most behind schedule: %.1f min of business time; client id %s, seed %llu\n",
           (double)g->late_ms_max / 60000.0, g->options.client_id,
           (unsigned long long)g->options.common.seed);
    for (size_t d = 0; d < g->district_count; d++)
        printf("callgen:   %-12s registered %6llu  merged %5llu  closed %6llu  reopened %5llu\n",
               g->districts[d], (unsigned long long)g->stats[d].registered,
               (unsigned long long)g->stats[d].merged, (unsigned long long)g->stats[d].closed,
               (unsigned long long)g->stats[d].reopened);
    fflush(stdout);
}

/* --- setup ------------------------------------------------------------------------ */

static const char usage_text[] =
    "dispatch-callgen --config FILE [--clock SPEC] [--intake URL] [--data DIR]\n"
    "         [--rate CALLS_PER_HOUR] [--flat] [--duration DURATION]\n"
    "         [--replay FILE [--map FILE] [--limit N]]\n"
    "         [--urgent-share S] [--repeat-share S] [--answered-share S]\n"
    "         [--transfer-share S] [--no-callbacks] [--callback-after RANGE]\n"
    "         [--poll-rate N] [--no-audit] [--window N] [--timeout MS]\n"
    "         [--client-id ID] [--seed N] [--verify SECONDS]\n"
    "         [--ready-fd N] [--progress-fd N] [--progress-every MS] [--key FILE]\n"
    "  --key: the generator's key (security = curve); default\n"
    "         <keys_dir>/callgen.key_secret (a gateway with role operator)\n"
    "  S: a share, 0.05 or 5%; DURATION: business time, 90s 15m 12h 2d;\n"
    "  RANGE: LOW-HIGH durations, e.g. 30m-4h\n";

/* A client id goes into every idempotency key: short, and no '/'. */
static int check_client_id(const char *arg, void *value)
{
    if (!*arg || strlen(arg) > 24 || strchr(arg, '/'))
        return -EINVAL;
    *(const char **)value = arg;
    return 0;
}

static int parse_options(int argc, char **argv, options_t *o)
{
    const sim_option_t options[] = {
        {"intake", SIM_OPTION_TEXT, .value = &o->intake_url},
        {"data", SIM_OPTION_TEXT, .value = &o->data_dir},
        {"rate", SIM_OPTION_POSITIVE, &o->rate, .max = 1e7},
        {"flat", SIM_OPTION_SET, .value = &o->flat},
        {"replay", SIM_OPTION_TEXT, .value = &o->replay},
        {"map", SIM_OPTION_TEXT, .value = &o->map},
        {"limit", SIM_OPTION_LONG, &o->limit, .min = 1, .max = 100000000},
        {"urgent-share", SIM_OPTION_SHARE, &o->urgent_share, .max = 1},
        {"repeat-share", SIM_OPTION_SHARE, &o->repeat_share, .max = 1},
        {"answered-share", SIM_OPTION_SHARE, &o->answered_share, .max = 1},
        {"transfer-share", SIM_OPTION_SHARE, &o->transfer_share, .max = 1},
        {"no-callbacks", SIM_OPTION_CLEAR, .value = &o->callbacks},
        {"callback-after", SIM_OPTION_RANGE, .value = o->callback},
        {"poll-rate", SIM_OPTION_NUMBER, &o->poll_rate, .min = 1, .max = 1e6},
        {"no-audit", SIM_OPTION_CLEAR, .value = &o->audit},
        {"window", SIM_OPTION_LONG, &o->window, .min = 1, .max = MAX_WINDOW},
        {"timeout", SIM_OPTION_LONG, &o->timeout_ms, .min = 50, .max = 600000},
        {"client-id", SIM_OPTION_CHECK, &o->client_id, .check = check_client_id},
        {"verify", SIM_OPTION_LONG, &o->verify_seconds, .min = 1, .max = 86400},
    };
    return sim_parse_options("dispatch-callgen", usage_text, argc, argv, options,
                             sizeof(options) / sizeof(options[0]), &o->common);
}

static int compare_rows(const void *a, const void *b)
{
    const replay_row_t *x = a, *y = b;
    if (x->created_s != y->created_s)
        return x->created_s < y->created_s ? -1 : 1;
    return strcmp(x->srnumber, y->srnumber);
}

/* "2020-01-01 00:05:00" as seconds (the zone does not matter: only
 * differences are used). */
static int parse_created(const char *text, int64_t *seconds)
{
    struct tm tm = {0};
    if (sscanf(text, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *seconds = (int64_t)timegm(&tm);
    return 0;
}

static int load_replay(gen_t *g)
{
    static const char *const header[] = {"request_id", "srnumber",  "created_date", "closed_date",
                                         "type_id",    "agency_id", "source_id",    "council_id",
                                         "region_id",  "address",   "latitude",     "longitude"};
    const char *path = g->options.replay;
    csv_t *csv = NULL;
    int rc = csv_open(path, &csv);
    if (rc < 0) {
        fprintf(stderr, "dispatch-callgen: %s: %s\n", path, strerror(-rc));
        return rc;
    }
    const char *fields[CSV_FIELDS_MAX];
    size_t n;
    char err[256];
    rc = csv_next(csv, fields, &n, err, sizeof(err));
    bool same = rc == 1 && n >= COUNT(header);
    for (size_t i = 0; same && i < COUNT(header); i++)
        same = strcmp(fields[i], header[i]) == 0;
    if (!same) {
        fprintf(stderr, "dispatch-callgen: %s: not a service_requests.csv (header %s,...)\n", path,
                header[0]);
        csv_destroy(&csv);
        return -EINVAL;
    }
    size_t capacity = 0;
    while ((rc = csv_next(csv, fields, &n, err, sizeof(err))) == 1) {
        if (n < COUNT(header))
            continue;
        rc = sim_array_reserve(&g->rows, g->row_count, &capacity, sizeof(*g->rows), 4096);
        if (rc < 0)
            break;
        replay_row_t *row = &g->rows[g->row_count];
        memset(row, 0, sizeof(*row));
        if (parse_created(fields[2], &row->created_s) < 0)
            continue;
        snprintf(row->srnumber, sizeof(row->srnumber), "%s", fields[1]);
        snprintf(row->type_id, sizeof(row->type_id), "%s", fields[4]);
        snprintf(row->source_id, sizeof(row->source_id), "%s", fields[6]);
        snprintf(row->council_id, sizeof(row->council_id), "%s", fields[7]);
        snprintf(row->region_id, sizeof(row->region_id), "%s", fields[8]);
        snprintf(row->address, sizeof(row->address), "%s", fields[9]);
        row->latitude = atof(fields[10]);
        row->longitude = atof(fields[11]);
        g->row_count++;
    }
    csv_destroy(&csv);
    if (rc < 0) {
        fprintf(stderr, "dispatch-callgen: %s: %s\n", path, rc == -ENOMEM ? "out of memory" : err);
        return rc;
    }
    if (g->row_count == 0) {
        fprintf(stderr, "dispatch-callgen: %s: no rows\n", path);
        return -EINVAL;
    }
    qsort(g->rows, g->row_count, sizeof(*g->rows), compare_rows);
    if (g->options.limit && (size_t)g->options.limit < g->row_count)
        g->row_count = (size_t)g->options.limit;
    g->replay_zero_s = g->rows[0].created_s;
    return 0;
}

static int add_area(const char ***list, size_t *count, const char *id)
{
    const char **grown = realloc(*list, (*count + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    grown[(*count)++] = id;
    *list = grown;
    return 0;
}

static int load_data(gen_t *g)
{
    char path[1024], err[1024];
    const char *dir = g->options.data_dir;
    snprintf(path, sizeof(path), "%s/units.csv", dir);
    int rc = sim_units_load(path, &g->units, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "dispatch-callgen: %s\n", err);
        return rc;
    }
    for (size_t i = 0; i < sim_units_count(g->units); i++) {
        const sim_unit_t *unit = sim_units_at(g->units, i);
        long d = district_index(g, unit->district);
        if (d < 0)
            continue;
        if (unit->level == DISPATCH__UNIT_LEVEL__UNIT_LEVEL_STREET)
            rc = add_area(&g->streets[d], &g->street_count[d], unit->id);
        else if (unit->level == DISPATCH__UNIT_LEVEL__UNIT_LEVEL_COMMUNITY)
            rc = add_area(&g->communities[d], &g->community_count[d], unit->id);
        if (rc < 0)
            return rc;
    }
    for (size_t d = 0; d < g->district_count; d++)
        g->district_weights[d] = g->community_count[d] ? (double)g->community_count[d] : 1.0;
    if (g->options.replay) {
        char map[1024];
        if (!g->options.map)
            snprintf(map, sizeof(map), "%s/la311-map.csv", dir);
        rc = sim_la_map_load(g->options.map ? g->options.map : map, &g->la_map, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "dispatch-callgen: %s\n", err);
            return rc;
        }
        return load_replay(g);
    }
    snprintf(path, sizeof(path), "%s/categories.csv", dir);
    rc = sim_categories_load(path, &g->categories, &g->category_count, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "dispatch-callgen: %s\n", err);
        return rc;
    }
    g->category_weights = calloc(g->category_count, sizeof(double));
    if (!g->category_weights)
        return -ENOMEM;
    for (size_t i = 0; i < g->category_count; i++)
        g->category_weights[i] = g->categories[i].weight;
    return 0;
}

static int connect_sockets(gen_t *g)
{
    const char *intake = g->options.intake_url, *publish = NULL;
    for (size_t i = 0; i < config_worker_count(g->config); i++) {
        const config_worker_t *w = config_worker_at(g->config, i);
        if (!intake && strcmp(w->kind, "intake") == 0 && w->request)
            intake = w->request;
        if (!publish && strcmp(w->kind, "audit") == 0 && w->publish)
            publish = w->publish;
    }
    if (!intake) {
        fprintf(stderr, "dispatch-callgen: no intake request endpoint (--intake URL)\n");
        return -EINVAL;
    }
    g->zmq = zmq_ctx_new();
    if (!g->zmq)
        return -errno;
    char err[512];
    auth_client_t intake_keys, audit_keys;
    const auth_client_t *intake_curve, *audit_curve = NULL;
    int rc =
        tool_keys(g->config, g->options.common.key_path, "callgen",
                  tool_server_of(g->config, intake), &intake_keys, &intake_curve, err, sizeof(err));
    if (rc == 0 && publish)
        rc = tool_keys(g->config, g->options.common.key_path, "callgen",
                       tool_server_of(g->config, publish), &audit_keys, &audit_curve, err,
                       sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "dispatch-callgen: %s\n", err);
        return rc;
    }
    rc = dealer_open(g->zmq, intake, NULL, intake_curve, &g->dealer);
    if (rc < 0) {
        fprintf(stderr, "dispatch-callgen: %s: %s\n", intake, zmq_strerror(-rc));
        return rc;
    }
    int zero = 0;
    int64_t max_message = DEALER_MAX_MESSAGE;
    if (publish && g->options.audit && g->options.callbacks) {
        g->sub = zmq_socket(g->zmq, ZMQ_SUB);
        zmq_setsockopt(g->sub, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(g->sub, ZMQ_MAXMSGSIZE, &max_message, sizeof(max_message));
        for (size_t d = 0; d < g->district_count; d++) {
            char topic[128];
            snprintf(topic, sizeof(topic), "%s.ticket_resolved", g->districts[d]);
            zmq_setsockopt(g->sub, ZMQ_SUBSCRIBE, topic, strlen(topic));
        }
        if (auth_client_apply(g->sub, audit_curve) < 0 || zmq_connect(g->sub, publish) < 0) {
            zmq_close(g->sub);
            g->sub = NULL;
        }
    }
    return 0;
}

static void teardown(gen_t *g)
{
    for (long i = 0; i < MAX_WINDOW; i++)
        free(g->ops[i].packed);
    free(g->calls);
    free(g->rows);
    for (size_t d = 0; d < MAX_DISTRICTS; d++) {
        free(g->streets[d]);
        free(g->communities[d]);
    }
    if (g->categories)
        sim_categories_free(g->categories, g->category_count);
    free(g->category_weights);
    sim_la_map_destroy(&g->la_map);
    sim_units_destroy(&g->units);
    sim_map_destroy(&g->by_ticket);
    sim_heap_destroy(&g->polls);
    sim_heap_destroy(&g->callbacks);
    if (g->dealer)
        zmq_close(g->dealer);
    if (g->sub)
        zmq_close(g->sub);
    if (g->zmq)
        zmq_ctx_term(g->zmq);
    config_destroy(&g->config);
}

int main(int argc, char **argv)
{
    static gen_t gen = {
        .options =
            {
                .rate = 1000,
                .callbacks = true,
                .audit = true,
                .urgent_share = 0.02,
                .repeat_share = 0.06,
                .answered_share = 0.6,
                .transfer_share = 0.003,
                .callback = {30 * MINUTE_MS, 4 * HOUR_MS},
                .poll_rate = 200,
                .window = 64,
                .timeout_ms = 3000,
                .common = {.seed = 1, .ready_fd = -1, .progress_fd = -1, .progress_every = 1000},
            },
    };
    gen_t *g = &gen;
    int rc = parse_options(argc, argv, &g->options);
    if (rc == 0)
        rc = sim_start("dispatch-callgen", &g->options.common);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (!g->options.common.seed_given)
        g->options.common.seed =
            (uint64_t)sim_monotonic_ms() ^ ((uint64_t)getpid() << 20) ^ (uint64_t)time(NULL);
    char client_id[32];
    if (!g->options.client_id) {
        uint64_t x = (uint64_t)clock_now_ms() ^ ((uint64_t)getpid() << 32) ^ g->options.common.seed;
        snprintf(client_id, sizeof(client_id), "cg-%08llx", (unsigned long long)(x & 0xffffffffu));
        g->options.client_id = client_id;
    }
    sim_random_seed(&g->random, g->options.common.seed, 2);
    g->next_tag = sim_random_u64(&g->random) >> 16;
    if (sim_load_topology("dispatch-callgen", &g->options.common, &g->config) < 0) {
        teardown(g);
        return 2;
    }
    char data_dir[1024];
    if (!g->options.data_dir) {
        /* The parent of the first router's data_dir (deploy/data/<district>). */
        snprintf(data_dir, sizeof(data_dir), "deploy/data");
        for (size_t i = 0; i < config_worker_count(g->config); i++) {
            const config_worker_t *w = config_worker_at(g->config, i);
            if (strcmp(w->kind, "router") != 0 || !w->data_dir)
                continue;
            snprintf(data_dir, sizeof(data_dir), "%s", w->data_dir);
            char *slash = strrchr(data_dir, '/');
            if (slash && slash != data_dir)
                *slash = '\0';
            else
                snprintf(data_dir, sizeof(data_dir), ".");
            break;
        }
        g->options.data_dir = data_dir;
    }
    for (size_t d = 0; d < config_district_count(g->config) && d < MAX_DISTRICTS; d++)
        g->districts[g->district_count++] = config_district_at(g->config, d)->id;
    if ((rc = sim_map_new(&g->by_ticket)) < 0 || (rc = sim_heap_new(&g->polls)) < 0 ||
        (rc = sim_heap_new(&g->callbacks)) < 0 || (rc = load_data(g)) < 0 ||
        (rc = connect_sockets(g)) < 0) {
        teardown(g);
        return 1;
    }
    sim_announce_ready(&g->options.common);
    rc = run(g);
    uint64_t lost = 0;
    if (rc == 0 && g->options.verify_seconds)
        rc = verify(g, &lost);
    if (rc < 0)
        fprintf(stderr, "dispatch-callgen: %s\n", strerror(-rc));
    print_stats(g);
    teardown(g);
    return rc < 0 || lost ? 1 : 0;
}

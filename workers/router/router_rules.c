/* router_rules.c: rule keeping at the router's admin endpoint
 * (docs/protocol.md section 6.3).
 *
 * RulesImport and DataReload replace the district's whole rule set in one
 * step: everything happens in a transaction nested in the batch's, which
 * is committed only when every rule passed its check and the request is
 * not a dry run; a refusal or a dry run leaves nothing behind. Both answer
 * with the diff against the rules before (added, changed, removed), the
 * tickets of the last N days whose route the new set changes, the tickets
 * in triage it would route, and warnings for rules that are accepted but
 * look wrong (an area no unit and no ticket carries, an inactive lead).
 *
 * RulesList, UnitsList and RouteExplain only read. TriageReroute routes
 * again, by the rules of now, every ticket waiting in triage that a rule
 * routes to a usable unit: as a dispatcher's assignment (TriageAssigned in
 * the requester's name, then dispatched), so the history says who did it.
 *
 * The reply points into a router_rules_reply_t kept in the router's reply
 * memory until the next request.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "codec.h"
#include "record.h"
#include "router_internal.h"

#define DIFF_LIST_MAX 1000
#define WARNINGS_MAX 100
#define IMPORT_RULES_MAX 50000
#define LIST_DEFAULT_LIMIT 1000
#define LIST_MAX_LIMIT 10000
#define LIST_MAX_BYTES (900 * 1024)
#define MOVED_DAYS_MAX 366
#define DAY_MS (24 * 3600 * 1000LL)

typedef admin_call_t admin_t;

struct router_rules_reply {
    Dispatch__TicketOwners owners;
    Dispatch__RulesDiff diff;
    Dispatch__RulesView rules;
    Dispatch__UnitsView units;
    Dispatch__RouteExplanation route;
    ProtobufCMessage **owned; /* unpacked messages the reply points into */
    size_t owned_count, owned_capacity;
    void **blocks; /* malloc'ed memory the reply points into */
    size_t block_count, block_capacity;
};

void router_rules_reply_free(router_rules_reply_t **self)
{
    router_rules_reply_t *reply = *self;
    if (!reply)
        return;
    for (size_t i = 0; i < reply->owned_count; i++)
        protobuf_c_message_free_unpacked(reply->owned[i], NULL);
    for (size_t i = 0; i < reply->block_count; i++)
        free(reply->blocks[i]);
    free(reply->owned);
    free(reply->blocks);
    free(reply);
    *self = NULL;
}

static int grow(void ***array, size_t count, size_t *capacity)
{
    if (count < *capacity)
        return 0;
    size_t next = *capacity ? *capacity * 2 : 64;
    void **grown = realloc(*array, next * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    *array = grown;
    *capacity = next;
    return 0;
}

/* The reply memory of this request (fresh). */
static int reply_memory(router_t *router, router_rules_reply_t **ret)
{
    router_rules_reply_free(&router->reply.rules);
    router->reply.rules = calloc(1, sizeof(router_rules_reply_t));
    *ret = router->reply.rules;
    return *ret ? 0 : -ENOMEM;
}

/* Keeps msg until the reply is done; on failure frees it at once. */
static int own(router_rules_reply_t *reply, ProtobufCMessage *msg)
{
    if (grow((void ***)&reply->owned, reply->owned_count, &reply->owned_capacity) < 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return -ENOMEM;
    }
    reply->owned[reply->owned_count++] = msg;
    return 0;
}

static void *block(router_rules_reply_t *reply, size_t size)
{
    if (grow(&reply->blocks, reply->block_count, &reply->block_capacity) < 0)
        return NULL;
    void *memory = calloc(1, size ? size : 1);
    if (memory)
        reply->blocks[reply->block_count++] = memory;
    return memory;
}

static char *copy(router_rules_reply_t *reply, const char *text)
{
    size_t len = strlen(text);
    char *memory = block(reply, len + 1);
    if (memory)
        memcpy(memory, text, len + 1);
    return memory;
}

/* A deep copy of a message (pack, unpack), owned by the reply. */
static ProtobufCMessage *duplicate(router_rules_reply_t *reply, const ProtobufCMessage *msg)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    uint8_t *packed = malloc(size ? size : 1);
    if (!packed)
        return NULL;
    protobuf_c_message_pack(msg, packed);
    ProtobufCMessage *copied = protobuf_c_message_unpack(msg->descriptor, NULL, size, packed);
    free(packed);
    if (!copied || own(reply, copied) < 0)
        return NULL;
    return copied;
}

/* ---------------------------------------------------------- rule sets */

/* Rules sorted by key (category, area); each points into the reply's memory
 * or the request. */
typedef struct rule_set {
    Dispatch__RoutingRule **items;
    size_t count, capacity;
} rule_set_t;

static int set_add(rule_set_t *set, Dispatch__RoutingRule *rule)
{
    if (grow((void ***)&set->items, set->count, &set->capacity) < 0)
        return -ENOMEM;
    set->items[set->count++] = rule;
    return 0;
}

static int key_compare(const char *category_a, const char *area_a, const char *category_b,
                       const char *area_b)
{
    int c = strcmp(category_a, category_b);
    return c ? c : strcmp(area_a, area_b);
}

static int rule_compare(const void *a, const void *b)
{
    const Dispatch__RoutingRule *x = *(Dispatch__RoutingRule *const *)a;
    const Dispatch__RoutingRule *y = *(Dispatch__RoutingRule *const *)b;
    int c = key_compare(x->category, x->area, y->category, y->area);
    if (c)
        return c;
    /* The kept one first: the higher priority, then the smaller lead unit. */
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return strcmp(x->lead_unit, y->lead_unit);
}

static const Dispatch__RoutingRule *set_find(const rule_set_t *set, const char *category,
                                             const char *area)
{
    size_t low = 0, high = set->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        const Dispatch__RoutingRule *rule = set->items[mid];
        int c = key_compare(rule->category, rule->area, category, area);
        if (c == 0)
            return rule;
        if (c < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return NULL;
}

/* The rule that routes (category, area) in set: the area's own, else the
 * category default (registry_route's order). */
static const Dispatch__RoutingRule *set_route(const rule_set_t *set, const char *category,
                                              const char *area)
{
    if (!*category)
        return NULL;
    const Dispatch__RoutingRule *rule = *area ? set_find(set, category, area) : NULL;
    return rule ? rule : set_find(set, category, "");
}

static bool same_rule(const Dispatch__RoutingRule *a, const Dispatch__RoutingRule *b)
{
    if (strcmp(a->lead_unit, b->lead_unit) != 0 || a->priority != b->priority ||
        a->n_assisting_units != b->n_assisting_units)
        return false;
    for (size_t i = 0; i < a->n_assisting_units; i++)
        if (strcmp(a->assisting_units[i], b->assisting_units[i]) != 0)
            return false;
    return true;
}

typedef struct collect {
    router_rules_reply_t *reply;
    rule_set_t *set;
} collect_t;

static int collect_rule(Dispatch__RoutingRule *rule, void *ctx)
{
    collect_t *collect = ctx;
    int rc = own(collect->reply, &rule->base);
    return rc < 0 ? rc : set_add(collect->set, rule);
}

/* ---------------------------------------------------------- the diff */

typedef struct diff_run {
    router_t *router;
    MDB_txn *txn;
    int64_t now;
    router_rules_reply_t *reply;
    Dispatch__RulesDiff *diff;
    const rule_set_t *before, *after;
    int64_t moved_since; /* 0: no moved tickets asked */
    /* Areas of new rules that no unit has: found on a ticket or not. */
    const char **areas;
    bool *area_seen;
    size_t area_count;
} diff_run_t;

static int warn(diff_run_t *run, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int warn(diff_run_t *run, const char *format, ...)
{
    Dispatch__RulesDiff *diff = run->diff;
    if (diff->n_warnings >= WARNINGS_MAX)
        return 0;
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    char *kept = copy(run->reply, text);
    if (!kept)
        return -ENOMEM;
    diff->warnings[diff->n_warnings++] = kept;
    return 0;
}

static int add_move(diff_run_t *run, const Dispatch__Ticket *ticket, const char *from,
                    const char *to)
{
    Dispatch__RulesDiff *diff = run->diff;
    diff->moved_count++;
    if (diff->n_moved >= DIFF_LIST_MAX)
        return 0;
    Dispatch__TicketMove *move = block(run->reply, sizeof(*move));
    if (!move)
        return -ENOMEM;
    dispatch__ticket_move__init(move);
    move->ticket_id = copy(run->reply, ticket->id);
    move->category = copy(run->reply, ticket->category);
    move->area = copy(run->reply, ticket->area);
    move->from_unit = copy(run->reply, from);
    move->to_unit = copy(run->reply, to);
    move->state = ticket->state;
    if (!move->ticket_id || !move->category || !move->area || !move->from_unit || !move->to_unit)
        return -ENOMEM;
    diff->moved[diff->n_moved++] = move;
    return 0;
}

static int area_compare(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One ticket of the router: where the old and the new rules send it, and
 * which unknown areas it carries. */
static int scan_ticket(const Dispatch__Router__RouterTicket *record, void *ctx)
{
    diff_run_t *run = ctx;
    const Dispatch__Ticket *ticket = record->ticket;
    if (run->area_count && *ticket->area) {
        const char *key = ticket->area;
        const char **found =
            bsearch(&key, run->areas, run->area_count, sizeof(*run->areas), area_compare);
        if (found)
            run->area_seen[found - run->areas] = true;
    }
    if (!run->moved_since || ticket->registered_at < run->moved_since)
        return 0;
    const Dispatch__RoutingRule *from = set_route(run->before, ticket->category, ticket->area);
    const Dispatch__RoutingRule *to = set_route(run->after, ticket->category, ticket->area);
    const char *from_unit = from ? from->lead_unit : "", *to_unit = to ? to->lead_unit : "";
    return strcmp(from_unit, to_unit) != 0 ? add_move(run, ticket, from_unit, to_unit) : 0;
}

typedef struct triage_count {
    diff_run_t *run;
    uint32_t routable;
} triage_count_t;

static int count_routable(const char *ticket_id, Dispatch__HandlingRole role, void *ctx)
{
    (void)role;
    triage_count_t *count = ctx;
    diff_run_t *run = count->run;
    Dispatch__Router__RouterTicket *record;
    int rc = tickets_get(run->router->tickets, run->txn, ticket_id, &record);
    if (rc == -ENOENT || rc == -EPROTO)
        return 0;
    if (rc < 0)
        return rc;
    const Dispatch__RoutingRule *rule =
        set_route(run->after, record->ticket->category, record->ticket->area);
    bool usable = false;
    if (rule)
        rc = registry_unit_usable(run->router->registry, run->txn, rule->lead_unit, &usable);
    dispatch__router__router_ticket__free_unpacked(record, NULL);
    if (rc == 0 && usable)
        count->routable++;
    return rc < 0 ? rc : 0;
}

/* Lists before -> after in the diff; warnings; tickets. */
static int compute_diff(diff_run_t *run)
{
    Dispatch__RulesDiff *diff = run->diff;
    const rule_set_t *before = run->before, *after = run->after;
    size_t lists = before->count + after->count;
    diff->added =
        block(run->reply, (lists < DIFF_LIST_MAX ? lists : DIFF_LIST_MAX) * sizeof(*diff->added));
    diff->removed =
        block(run->reply, (lists < DIFF_LIST_MAX ? lists : DIFF_LIST_MAX) * sizeof(*diff->removed));
    diff->changed =
        block(run->reply, (lists < DIFF_LIST_MAX ? lists : DIFF_LIST_MAX) * sizeof(*diff->changed));
    diff->moved = block(run->reply, DIFF_LIST_MAX * sizeof(*diff->moved));
    diff->warnings = block(run->reply, WARNINGS_MAX * sizeof(*diff->warnings));
    run->areas = block(run->reply, (after->count + 1) * sizeof(*run->areas));
    if (!diff->added || !diff->removed || !diff->changed || !diff->moved || !diff->warnings ||
        !run->areas)
        return -ENOMEM;

    size_t i = 0, j = 0;
    while (i < before->count || j < after->count) {
        const Dispatch__RoutingRule *old = i < before->count ? before->items[i] : NULL;
        Dispatch__RoutingRule *new = j < after->count ? after->items[j] : NULL;
        int c = !old   ? 1
                : !new ? -1
                       : key_compare(old->category, old->area, new->category, new->area);
        if (c < 0) {
            diff->removed_count++;
            if (diff->n_removed < DIFF_LIST_MAX)
                diff->removed[diff->n_removed++] = (Dispatch__RoutingRule *)old;
            i++;
            continue;
        }
        if (c == 0 && same_rule(old, new)) {
            diff->unchanged_count++;
            i++, j++;
            continue;
        }
        if (c == 0) {
            diff->changed_count++;
            if (diff->n_changed < DIFF_LIST_MAX) {
                Dispatch__RuleChange *change = block(run->reply, sizeof(*change));
                if (!change)
                    return -ENOMEM;
                dispatch__rule_change__init(change);
                change->before = (Dispatch__RoutingRule *)old;
                change->after = new;
                diff->changed[diff->n_changed++] = change;
            }
            i++;
        } else {
            diff->added_count++;
            if (diff->n_added < DIFF_LIST_MAX)
                diff->added[diff->n_added++] = new;
        }
        j++;
        /* A new or changed rule: does it look right? */
        bool usable;
        int rc = registry_unit_usable(run->router->registry, run->txn, new->lead_unit, &usable);
        if (rc < 0)
            return rc;
        if (!usable)
            rc = warn(run, "rule %s/%s: lead unit %s is inactive: its tickets go to triage",
                      new->category, new->area, new->lead_unit);
        Dispatch__Unit *unit;
        if (rc == 0 && *new->area) {
            rc = registry_unit_get(run->router->registry, run->txn, new->area, &unit);
            if (rc == 0)
                dispatch__unit__free_unpacked(unit, NULL);
            else if (rc == -ENOENT)
                run->areas[run->area_count++] = new->area, rc = 0;
        }
        if (rc < 0)
            return rc;
    }
    /* Unknown areas: unique, sorted, looked for on the tickets. */
    qsort(run->areas, run->area_count, sizeof(*run->areas), area_compare);
    size_t unique = 0;
    for (size_t k = 0; k < run->area_count; k++)
        if (unique == 0 || strcmp(run->areas[unique - 1], run->areas[k]) != 0)
            run->areas[unique++] = run->areas[k];
    run->area_count = unique;
    run->area_seen = block(run->reply, (unique + 1) * sizeof(bool));
    if (!run->area_seen)
        return -ENOMEM;
    if (run->area_count || run->moved_since) {
        int rc = tickets_each_record(run->router->tickets, run->txn, "", scan_ticket, run);
        if (rc < 0)
            return rc;
    }
    for (size_t k = 0; k < run->area_count; k++) {
        if (run->area_seen[k])
            continue;
        int rc = warn(run,
                      "area '%s' is no registered unit and no ticket here carries it: its rules "
                      "match nothing yet (a typo?)",
                      run->areas[k]);
        if (rc < 0)
            return rc;
    }
    triage_count_t count = {run, 0};
    int rc = tickets_triage_each(run->router->tickets, run->txn, "", count_routable, &count);
    diff->triage_routable = count.routable;
    return rc < 0 ? rc : 0;
}

/* Writes after over before in txn. */
static int apply_diff(diff_run_t *run)
{
    registry_t *registry = run->router->registry;
    const rule_set_t *before = run->before, *after = run->after;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < before->count; i++)
        if (!set_find(after, before->items[i]->category, before->items[i]->area))
            rc = registry_rule_delete(registry, run->txn, before->items[i]->category,
                                      before->items[i]->area);
    for (size_t j = 0; rc == 0 && j < after->count; j++) {
        const Dispatch__RoutingRule *old =
            set_find(before, after->items[j]->category, after->items[j]->area);
        if (!old || !same_rule(old, after->items[j]))
            rc = registry_rule_put(registry, run->txn, after->items[j]);
    }
    return rc;
}

/* Checks, sorts and dedupes `incoming` (rules of the request or a file;
 * field names them for refusals, lines for warnings when not NULL), and
 * replaces the rules with it in txn. */
static int replace_rules(admin_t *a, MDB_txn *txn, rule_set_t *incoming, const char *field,
                         const unsigned long *lines, uint32_t moved_days, bool dry_run,
                         router_rules_reply_t *reply, Dispatch__RulesDiff *diff)
{
    router_t *router = a->worker;
    for (size_t i = 0; i < incoming->count; i++) {
        char path[96];
        if (lines)
            snprintf(path, sizeof(path), "%s line %lu", field, lines[i]);
        else
            snprintf(path, sizeof(path), "%s[%zu]", field, i);
        int rc = registry_check_rule(router->registry, txn, incoming->items[i], path, a->err);
        if (rc != 0)
            return rc;
    }
    /* Sorted: the rule kept for a key comes first among its duplicates. */
    rule_set_t after = *incoming;
    qsort(after.items, after.count, sizeof(*after.items), rule_compare);
    size_t kept = 0;
    diff_run_t run = {router, txn, a->now, reply, diff, NULL, &after, 0, NULL, NULL, 0};
    rule_set_t before = {0};
    int rc = 0;
    char duplicate_warnings[WARNINGS_MAX][256];
    size_t duplicates = 0;
    for (size_t i = 0; i < after.count; i++) {
        const Dispatch__RoutingRule *rule = after.items[i];
        if (kept && key_compare(after.items[kept - 1]->category, after.items[kept - 1]->area,
                                rule->category, rule->area) == 0) {
            if (duplicates < WARNINGS_MAX)
                snprintf(duplicate_warnings[duplicates++], sizeof(duplicate_warnings[0]),
                         "rule %s/%s is given twice: priority %d (lead %s) is kept, priority %d "
                         "(lead %s) dropped",
                         rule->category, rule->area, after.items[kept - 1]->priority,
                         after.items[kept - 1]->lead_unit, rule->priority, rule->lead_unit);
            continue;
        }
        after.items[kept++] = after.items[i];
    }
    after.count = kept;
    collect_t collect = {reply, &before};
    rc = registry_rules_each(router->registry, txn, collect_rule, &collect);
    if (rc == 0) {
        run.before = &before;
        run.moved_since = moved_days ? a->now - (int64_t)moved_days * DAY_MS : 0;
        rc = compute_diff(&run);
    }
    for (size_t i = 0; rc == 0 && i < duplicates; i++)
        rc = warn(&run, "%s", duplicate_warnings[i]);
    if (rc == 0 && !dry_run)
        rc = apply_diff(&run);
    if (rc == 0)
        diff->applied = !dry_run;
    free(before.items);
    return rc;
}

/* Runs fn in a transaction nested in the batch's: committed when it
 * returns 0 and commit is set, else aborted. */
static int nested(admin_t *a, bool *commit, int (*fn)(admin_t *a, MDB_txn *txn, bool *commit))
{
    MDB_txn *child;
    int rc = store_rc(mdb_txn_begin(mdb_txn_env(a->txn), a->txn, 0, &child));
    if (rc < 0)
        return rc;
    rc = fn(a, child, commit);
    if (rc == 0 && *commit)
        return store_rc(mdb_txn_commit(child));
    mdb_txn_abort(child);
    return rc;
}

static int check_moved_days(admin_t *a, const char *field, uint32_t days)
{
    if (days > MOVED_DAYS_MAX)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, field,
                      "%s %u is over %d days", field, days, MOVED_DAYS_MAX);
    return 0;
}

static int check_list_limit(admin_t *a, const char *field, uint32_t limit)
{
    if (limit > LIST_MAX_LIMIT)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, field,
                      "limit %u is over %d", limit, LIST_MAX_LIMIT);
    return 0;
}

static int diff_reply(admin_t *a, router_rules_reply_t *reply)
{
    a->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_RULES_DIFF;
    a->reply->rules_diff = &reply->diff;
    return 0;
}

/* Answers with the diff that fn fills in fresh reply memory, fn running in
 * a transaction nested in the batch's (see nested). */
static int nested_diff(admin_t *a, int (*fn)(admin_t *a, MDB_txn *txn, bool *commit))
{
    router_rules_reply_t *reply;
    int rc = reply_memory(a->worker, &reply);
    if (rc < 0)
        return rc;
    dispatch__rules_diff__init(&reply->diff);
    bool commit = false;
    rc = nested(a, &commit, fn);
    if (rc != 0)
        return rc;
    return diff_reply(a, reply);
}

/* ---------------------------------------------------------- RulesImport */

static int import_in(admin_t *a, MDB_txn *txn, bool *commit)
{
    router_t *router = a->worker;
    const Dispatch__RulesImport *request = a->request->rules_import;
    router_rules_reply_t *reply = router->reply.rules;
    /* Deep copies with the district filled in: the reply outlives the
     * request, and the request is not touched. */
    rule_set_t incoming = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < request->n_rules; i++) {
        if (!request->rules[i]) {
            free(incoming.items);
            return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                          "rules_import.rules", "an empty rule");
        }
        Dispatch__RoutingRule rule = *request->rules[i];
        if (!*rule.district)
            rule.district = router->district;
        ProtobufCMessage *copied = duplicate(reply, &rule.base);
        rc = copied ? set_add(&incoming, (Dispatch__RoutingRule *)copied) : -ENOMEM;
    }
    if (rc == 0)
        rc = replace_rules(a, txn, &incoming, "rules_import.rules", NULL, request->moved_days,
                           request->dry_run, reply, &reply->diff);
    free(incoming.items);
    *commit = rc == 0 && !request->dry_run;
    return rc;
}

static int rules_import(admin_t *a)
{
    const Dispatch__RulesImport *request = a->request->rules_import;
    if (admin_require(a, AUTHZ_REGISTRY) ||
        check_moved_days(a, "rules_import.moved_days", request->moved_days))
        return REFUSED;
    if (request->n_rules > IMPORT_RULES_MAX)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "rules_import.rules",
                      "%zu rules, at most %d in one import", request->n_rules, IMPORT_RULES_MAX);
    return nested_diff(a, import_in);
}

/* ---------------------------------------------------------- DataReload */

typedef struct file_rules {
    router_rules_reply_t *reply;
    rule_set_t *set;
    unsigned long *lines;
    size_t line_capacity;
} file_rules_t;

static int read_file_rule(const Dispatch__RoutingRule *rule, unsigned long line, void *ctx)
{
    file_rules_t *file = ctx;
    ProtobufCMessage *copied = duplicate(file->reply, &rule->base);
    if (!copied)
        return -ENOMEM;
    size_t count = file->set->count;
    if (count == file->line_capacity) {
        size_t next = file->line_capacity ? file->line_capacity * 2 : 256;
        unsigned long *grown = realloc(file->lines, next * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        file->lines = grown;
        file->line_capacity = next;
    }
    file->lines[count] = line;
    return set_add(file->set, (Dispatch__RoutingRule *)copied);
}

/* A data file that cannot be read or parsed is the requester's to fix: a
 * refusal naming what is wrong; other errors pass through. */
static int reload_refusal(admin_t *a, int rc, const char *err)
{
    if (rc == -EINVAL || rc == -ENOENT || rc == -EACCES)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "data_reload", "%s",
                      err[0] ? err : strerror(-rc));
    return rc;
}

static int reload_in(admin_t *a, MDB_txn *txn, bool *commit)
{
    router_t *router = a->worker;
    const Dispatch__DataReload *request = a->request->data_reload;
    router_rules_reply_t *reply = router->reply.rules;
    char path[4200], err[1024] = "";
    size_t added = 0, changed = 0;
    snprintf(path, sizeof(path), "%s/units.csv", router->data_dir);
    int rc =
        registry_reload_units_csv(router->registry, txn, path, &added, &changed, err, sizeof(err));
    if (rc < 0)
        return reload_refusal(a, rc, err);
    reply->diff.units_added = (uint32_t)added;
    reply->diff.units_changed = (uint32_t)changed;
    rule_set_t incoming = {0};
    file_rules_t file = {reply, &incoming, NULL, 0};
    snprintf(path, sizeof(path), "%s/rules.csv", router->data_dir);
    rc = registry_read_rules_csv(router->registry, path, read_file_rule, &file, err, sizeof(err));
    if (rc < 0)
        rc = reload_refusal(a, rc, err);
    if (rc == 0)
        rc = replace_rules(a, txn, &incoming, path, file.lines, request->moved_days,
                           request->dry_run, reply, &reply->diff);
    free(incoming.items);
    free(file.lines);
    *commit = rc == 0 && !request->dry_run;
    return rc;
}

static int data_reload(admin_t *a)
{
    const Dispatch__DataReload *request = a->request->data_reload;
    router_t *router = a->worker;
    if (admin_require(a, AUTHZ_REGISTRY) ||
        check_moved_days(a, "data_reload.moved_days", request->moved_days))
        return REFUSED;
    if (!router->data_dir[0])
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "data_reload",
                      "router %s has no data_dir in the topology", router->name);
    return nested_diff(a, reload_in);
}

/* ---------------------------------------------------------- lists */

typedef struct rule_page {
    router_rules_reply_t *reply;
    const Dispatch__RulesList *request;
    uint32_t limit;
    size_t bytes;
    Dispatch__RulesView *view;
} rule_page_t;

static int page_rule(Dispatch__RoutingRule *rule, void *ctx)
{
    rule_page_t *page = ctx;
    const Dispatch__RulesList *request = page->request;
    bool after =
        key_compare(rule->category, rule->area, request->after_category, request->after_area) > 0 ||
        (!*request->after_category && !*request->after_area);
    bool wanted = after && (!*request->category || strcmp(request->category, rule->category) == 0);
    if (!wanted) {
        dispatch__routing_rule__free_unpacked(rule, NULL);
        return 0;
    }
    size_t size = dispatch__routing_rule__get_packed_size(rule) + 4;
    if (page->view->n_rules == page->limit || page->bytes + size > LIST_MAX_BYTES) {
        page->view->more = true;
        dispatch__routing_rule__free_unpacked(rule, NULL);
        return 1;
    }
    int rc = own(page->reply, &rule->base);
    if (rc < 0)
        return rc;
    page->bytes += size;
    page->view->rules[page->view->n_rules++] = rule;
    return 0;
}

static uint32_t page_limit(uint32_t limit)
{
    return limit ? limit : LIST_DEFAULT_LIMIT;
}

static int rules_list(admin_t *a)
{
    const Dispatch__RulesList *request = a->request->rules_list;
    router_t *router = a->worker;
    if (admin_require(a, AUTHZ_RULES_READ) ||
        refuse_text(a->err, "rules_list.after_category", request->after_category, LIMIT_ID,
                    false) ||
        refuse_text(a->err, "rules_list.after_area", request->after_area, LIMIT_ID, false) ||
        refuse_text(a->err, "rules_list.category", request->category, LIMIT_ID, false))
        return REFUSED;
    if (check_list_limit(a, "rules_list.limit", request->limit))
        return REFUSED;
    router_rules_reply_t *reply;
    int rc = reply_memory(router, &reply);
    if (rc < 0)
        return rc;
    Dispatch__RulesView *view = &reply->rules;
    dispatch__rules_view__init(view);
    uint32_t limit = page_limit(request->limit);
    view->rules = block(reply, limit * sizeof(*view->rules));
    if (!view->rules)
        return -ENOMEM;
    rule_page_t page = {reply, request, limit, 0, view};
    rc = registry_rules_each(router->registry, a->txn, page_rule, &page);
    if (rc < 0)
        return rc;
    view->total = (uint32_t)registry_rule_count(router->registry, a->txn);
    a->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_RULES;
    a->reply->rules = view;
    return 0;
}

typedef struct unit_page {
    router_rules_reply_t *reply;
    const char *after;
    uint32_t limit;
    size_t bytes;
    Dispatch__UnitsView *view;
} unit_page_t;

static int page_unit(const Dispatch__Unit *unit, void *ctx)
{
    unit_page_t *page = ctx;
    if (*page->after && strcmp(unit->id, page->after) <= 0)
        return 0;
    size_t size = dispatch__unit__get_packed_size(unit) + 4;
    if (page->view->n_units == page->limit || page->bytes + size > LIST_MAX_BYTES) {
        page->view->more = true;
        return 1;
    }
    ProtobufCMessage *copied = duplicate(page->reply, &unit->base);
    if (!copied)
        return -ENOMEM;
    page->bytes += size;
    page->view->units[page->view->n_units++] = (Dispatch__Unit *)copied;
    return 0;
}

static int units_list(admin_t *a)
{
    const Dispatch__UnitsList *request = a->request->units_list;
    router_t *router = a->worker;
    if (admin_require(a, AUTHZ_RULES_READ) ||
        refuse_text(a->err, "units_list.after_id", request->after_id, LIMIT_ID, false))
        return REFUSED;
    if (check_list_limit(a, "units_list.limit", request->limit))
        return REFUSED;
    router_rules_reply_t *reply;
    int rc = reply_memory(router, &reply);
    if (rc < 0)
        return rc;
    Dispatch__UnitsView *view = &reply->units;
    dispatch__units_view__init(view);
    uint32_t limit = page_limit(request->limit);
    view->units = block(reply, limit * sizeof(*view->units));
    if (!view->units)
        return -ENOMEM;
    unit_page_t page = {reply, request->after_id, limit, 0, view};
    rc = registry_units_each(router->registry, a->txn, page_unit, &page);
    if (rc < 0)
        return rc;
    view->total = (uint32_t)registry_unit_count(router->registry, a->txn);
    a->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_UNITS;
    a->reply->units = view;
    return 0;
}

/* ---------------------------------------------------------- RouteExplain */

static int route_explain(admin_t *a)
{
    const Dispatch__RouteExplain *request = a->request->route_explain;
    router_t *router = a->worker;
    if (admin_require(a, AUTHZ_RULES_READ) ||
        refuse_text(a->err, "route_explain.category", request->category, LIMIT_ID, true) ||
        refuse_text(a->err, "route_explain.area", request->area, LIMIT_ID, false))
        return REFUSED;
    router_rules_reply_t *reply;
    int rc = reply_memory(router, &reply);
    if (rc < 0)
        return rc;
    Dispatch__RouteExplanation *route = &reply->route;
    dispatch__route_explanation__init(route);
    Dispatch__RoutingRule *rule = NULL;
    if (*request->area) {
        rc = registry_rule_get(router->registry, a->txn, request->category, request->area, &rule);
        route->area_rule = rc == 0;
    }
    if (!rule)
        rc = registry_rule_get(router->registry, a->txn, request->category, "", &rule);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    char text[1024];
    if (!rule) {
        snprintf(text, sizeof(text),
                 "no rule for category '%s' in area '%s' nor a default for the category in "
                 "district %s: a ticket goes to triage (NO_RULE)",
                 request->category, request->area, router->district);
    } else {
        if ((rc = own(reply, &rule->base)) < 0)
            return rc;
        route->rule = rule;
        bool usable;
        rc = registry_unit_usable(router->registry, a->txn, rule->lead_unit, &usable);
        if (rc < 0)
            return rc;
        route->lead_usable = usable;
        route->lead_unit = usable ? rule->lead_unit : "";
        const char *which = route->area_rule ? "the area's own rule"
                            : *request->area ? "the category default (no rule for the area)"
                                             : "the category default";
        if (usable)
            snprintf(text, sizeof(text), "%s %s/%s (priority %d) sends it to %s%s%s", which,
                     rule->category, *rule->area ? rule->area : "*", rule->priority,
                     rule->lead_unit, rule->n_assisting_units ? ", assisted by " : "",
                     rule->n_assisting_units ? rule->assisting_units[0] : "");
        else
            snprintf(text, sizeof(text),
                     "%s %s/%s names %s, which is inactive or not registered: a ticket goes to "
                     "triage (UNIT_INACTIVE)",
                     which, rule->category, *rule->area ? rule->area : "*", rule->lead_unit);
    }
    route->text = copy(reply, text);
    if (!route->text)
        return -ENOMEM;
    if (!route->lead_unit)
        route->lead_unit = "";
    a->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_ROUTE;
    a->reply->route = route;
    return 0;
}

/* ---------------------------------------------------------- TriageReroute */

typedef struct triage_ids {
    char (*ids)[LIMIT_ID + 1];
    size_t count, capacity;
} triage_ids_t;

static int collect_triage(const char *ticket_id, Dispatch__HandlingRole role, void *ctx)
{
    (void)role;
    triage_ids_t *list = ctx;
    if (list->count == list->capacity) {
        size_t next = list->capacity ? list->capacity * 2 : 64;
        void *grown = realloc(list->ids, next * sizeof(*list->ids));
        if (!grown)
            return -ENOMEM;
        list->ids = grown;
        list->capacity = next;
    }
    snprintf(list->ids[list->count++], LIMIT_ID + 1, "%s", ticket_id);
    return 0;
}

/* One ticket of the triage queue: assigned by the rule that routes it now. */
static int reroute_one(admin_t *a, diff_run_t *run, const char *ticket_id, bool dry_run)
{
    router_t *router = a->worker;
    Dispatch__Router__RouterTicket *record;
    int rc = tickets_get(router->tickets, a->txn, ticket_id, &record);
    if (rc == -ENOENT || rc == -EPROTO)
        return 0;
    if (rc < 0)
        return rc;
    Dispatch__RoutingRule *rule = NULL;
    rc = registry_route(router->registry, a->txn, record->ticket->category, record->ticket->area,
                        &rule);
    bool usable = false;
    if (rc == 0)
        rc = registry_unit_usable(router->registry, a->txn, rule->lead_unit, &usable);
    if (rc == -ENOENT || (rc == 0 && !usable)) {
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    run->diff->triage_routable++;
    rc = add_move(run, record->ticket, "", rule->lead_unit);
    if (rc < 0 || dry_run)
        goto out;
    char *assisting[LIMIT_UNITS];
    size_t count = 0;
    for (size_t i = 0; rc == 0 && i < rule->n_assisting_units && count < LIMIT_UNITS; i++) {
        bool ok;
        rc = registry_unit_usable(router->registry, a->txn, rule->assisting_units[i], &ok);
        if (rc == 0 && ok && strcmp(rule->assisting_units[i], rule->lead_unit) != 0)
            assisting[count++] = rule->assisting_units[i];
    }
    char note[LIMIT_TEXT + 1];
    snprintf(note, sizeof(note), "re-routed from triage by rule %s/%s", rule->category,
             *rule->area ? rule->area : "*");
    Dispatch__TriageAssigned assigned = DISPATCH__TRIAGE_ASSIGNED__INIT;
    assigned.lead_unit = rule->lead_unit;
    assigned.assisting_units = assisting;
    assigned.n_assisting_units = count;
    assigned.note = note;
    if (rc == 0)
        rc = router_emit(router, a->txn, record->ticket, a->request->actor_id, a->now,
                         &assigned.base);
    router_assignment_t assignment = {
        .lead = rule->lead_unit,
        .assisting = assisting,
        .assisting_count = count,
        .cause = DISPATCH__DISPATCH_CAUSE__DISPATCH_CAUSE_TRIAGE,
        .note = note,
        .actor = a->request->actor_id,
    };
    if (rc == 0)
        rc = router_assign(router, a->txn, record, &assignment, a->now);
out:
    if (rule)
        dispatch__routing_rule__free_unpacked(rule, NULL);
    dispatch__router__router_ticket__free_unpacked(record, NULL);
    return rc;
}

static int triage_reroute(admin_t *a)
{
    router_t *router = a->worker;
    if (admin_require(a, AUTHZ_TRIAGE_REROUTE))
        return REFUSED;
    router_rules_reply_t *reply;
    int rc = reply_memory(router, &reply);
    if (rc < 0)
        return rc;
    Dispatch__RulesDiff *diff = &reply->diff;
    dispatch__rules_diff__init(diff);
    diff->moved = block(reply, DIFF_LIST_MAX * sizeof(*diff->moved));
    if (!diff->moved)
        return -ENOMEM;
    triage_ids_t list = {0};
    rc = tickets_triage_each(router->tickets, a->txn, "", collect_triage, &list);
    diff_run_t run = {.router = router, .txn = a->txn, .now = a->now, .reply = reply, .diff = diff};
    for (size_t i = 0; rc == 0 && i < list.count; i++)
        rc = reroute_one(a, &run, list.ids[i], a->request->triage_reroute->dry_run);
    free(list.ids);
    if (rc < 0)
        return rc;
    diff->applied = !a->request->triage_reroute->dry_run;
    return diff_reply(a, reply);
}

/* ---------------------------------------------------------- TicketOwnersList */

typedef struct owner_page {
    router_rules_reply_t *reply;
    int64_t since;
    uint32_t limit;
    size_t bytes;
    Dispatch__TicketOwners *view;
    int rc;
} owner_page_t;

static bool owned_by_unit(Dispatch__TicketState state)
{
    return state == DISPATCH__TICKET_STATE__TICKET_STATE_ACCEPTED ||
           state == DISPATCH__TICKET_STATE__TICKET_STATE_RESOLVED ||
           state == DISPATCH__TICKET_STATE__TICKET_STATE_CLOSED;
}

static int page_owner(const Dispatch__Router__RouterTicket *record, void *ctx)
{
    owner_page_t *page = ctx;
    const Dispatch__Ticket *ticket = record->ticket;
    if (ticket->registered_at < page->since || !owned_by_unit(ticket->state) ||
        !*ticket->assigned_unit)
        return 0;
    size_t size = strlen(ticket->id) + strlen(ticket->category) + strlen(ticket->area) +
                  strlen(ticket->assigned_unit) + 32;
    if (page->view->n_owners == page->limit || page->bytes + size > LIST_MAX_BYTES) {
        page->view->more = true;
        return 1;
    }
    Dispatch__TicketOwner *owner = block(page->reply, sizeof(*owner));
    if (!owner)
        return -ENOMEM;
    dispatch__ticket_owner__init(owner);
    owner->ticket_id = copy(page->reply, ticket->id);
    owner->category = copy(page->reply, ticket->category);
    owner->area = copy(page->reply, ticket->area);
    owner->unit_id = copy(page->reply, ticket->assigned_unit);
    owner->registered_at = ticket->registered_at;
    owner->state = ticket->state;
    if (!owner->ticket_id || !owner->category || !owner->area || !owner->unit_id)
        return -ENOMEM;
    page->bytes += size;
    page->view->owners[page->view->n_owners++] = owner;
    return 0;
}

static int ticket_owners_list(admin_t *a)
{
    const Dispatch__TicketOwnersList *request = a->request->ticket_owners_list;
    router_t *router = a->worker;
    if (admin_require(a, AUTHZ_RULES_READ) ||
        refuse_text(a->err, "ticket_owners_list.after_ticket_id", request->after_ticket_id,
                    LIMIT_ID, false))
        return REFUSED;
    if (request->days == 0)
        return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD,
                      "ticket_owners_list.days", "ticket_owners_list.days is required");
    if (check_moved_days(a, "ticket_owners_list.days", request->days))
        return REFUSED;
    if (check_list_limit(a, "ticket_owners_list.limit", request->limit))
        return REFUSED;
    router_rules_reply_t *reply;
    int rc = reply_memory(router, &reply);
    if (rc < 0)
        return rc;
    Dispatch__TicketOwners *view = &reply->owners;
    dispatch__ticket_owners__init(view);
    uint32_t limit = page_limit(request->limit);
    view->owners = block(reply, limit * sizeof(*view->owners));
    if (!view->owners)
        return -ENOMEM;
    owner_page_t page = {reply, a->now - (int64_t)request->days * DAY_MS, limit, 0, view, 0};
    rc = tickets_each_record(router->tickets, a->txn, request->after_ticket_id, page_owner, &page);
    if (rc < 0)
        return rc;
    a->reply->body_case = DISPATCH__ADMIN_REPLY__BODY_OWNERS;
    a->reply->owners = view;
    return 0;
}

/* ---------------------------------------------------------- RuleUpsert */

typedef struct area_search {
    const char *area;
    bool found;
} area_search_t;

static int find_area(const Dispatch__Router__RouterTicket *record, void *ctx)
{
    area_search_t *search = ctx;
    search->found = strcmp(record->ticket->area, search->area) == 0;
    return search->found ? 1 : 0;
}

int router_rule_warnings(admin_call_t *a, const Dispatch__RoutingRule *rule)
{
    router_t *router = a->worker;
    router_rules_reply_t *reply;
    int rc = reply_memory(router, &reply);
    if (rc < 0)
        return rc;
    Dispatch__RulesDiff *diff = &reply->diff; /* only its warnings are used */
    dispatch__rules_diff__init(diff);
    diff->warnings = block(reply, 2 * sizeof(*diff->warnings));
    if (!diff->warnings)
        return -ENOMEM;
    diff_run_t run = {.router = router, .txn = a->txn, .reply = reply, .diff = diff};
    bool usable;
    rc = registry_unit_usable(router->registry, a->txn, rule->lead_unit, &usable);
    if (rc == 0 && !usable)
        rc = warn(&run, "lead unit %s is inactive: the rule's tickets go to triage",
                  rule->lead_unit);
    if (rc == 0 && *rule->area) {
        Dispatch__Unit *unit;
        rc = registry_unit_get(router->registry, a->txn, rule->area, &unit);
        if (rc == 0) {
            dispatch__unit__free_unpacked(unit, NULL);
        } else if (rc == -ENOENT) {
            area_search_t search = {rule->area, false};
            rc = tickets_each_record(router->tickets, a->txn, "", find_area, &search);
            if (rc == 0 && !search.found)
                rc = warn(&run,
                          "area '%s' is no registered unit and no ticket here carries it: the "
                          "rule matches nothing yet (a typo?)",
                          rule->area);
        }
    }
    if (rc < 0)
        return rc;
    if (a->reply->body_case == DISPATCH__ADMIN_REPLY__BODY_DONE && a->reply->done) {
        a->reply->done->warnings = diff->warnings;
        a->reply->done->n_warnings = diff->n_warnings;
    }
    return 0;
}

/* ---------------------------------------------------------- at start */

typedef struct file_compare {
    router_t *router;
    MDB_txn *txn;
    size_t file_rules, differ;
} file_compare_t;

static int compare_file_rule(const Dispatch__RoutingRule *rule, unsigned long line, void *ctx)
{
    (void)line;
    file_compare_t *compare = ctx;
    compare->file_rules++;
    Dispatch__RoutingRule *stored;
    int rc = registry_rule_get(compare->router->registry, compare->txn, rule->category, rule->area,
                               &stored);
    if (rc == -ENOENT) {
        compare->differ++;
        return 0;
    }
    if (rc < 0)
        return rc;
    /* A key given twice in the file: the first differs from what was kept. */
    if (!same_rule(stored, rule))
        compare->differ++;
    dispatch__routing_rule__free_unpacked(stored, NULL);
    return 0;
}

int router_rules_file_check(router_t *router, MDB_txn *txn, const char *path, size_t *differ,
                            size_t *file_rules, size_t *stored_rules)
{
    char err[512];
    file_compare_t compare = {router, txn, 0, 0};
    int rc = registry_read_rules_csv(router->registry, path, compare_file_rule, &compare, err,
                                     sizeof(err));
    *differ = compare.differ;
    *file_rules = compare.file_rules;
    *stored_rules = registry_rule_count(router->registry, txn);
    return rc;
}

/* ---------------------------------------------------------- entry */

int router_serve_rules(admin_call_t *a)
{
    switch (a->request->body_case) {
    case DISPATCH__ADMIN_REQUEST__BODY_RULES_IMPORT:
        return rules_import(a);
    case DISPATCH__ADMIN_REQUEST__BODY_DATA_RELOAD:
        return data_reload(a);
    case DISPATCH__ADMIN_REQUEST__BODY_RULES_LIST:
        return rules_list(a);
    case DISPATCH__ADMIN_REQUEST__BODY_UNITS_LIST:
        return units_list(a);
    case DISPATCH__ADMIN_REQUEST__BODY_ROUTE_EXPLAIN:
        return route_explain(a);
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_REROUTE:
        return triage_reroute(a);
    case DISPATCH__ADMIN_REQUEST__BODY_TICKET_OWNERS_LIST:
        return ticket_owners_list(a);
    case DISPATCH__ADMIN_REQUEST__BODY_TRIAGE_ASSIGN: /* router_requests.c */
    case DISPATCH__ADMIN_REQUEST__BODY_EXTENSION_DECISION:
    case DISPATCH__ADMIN_REQUEST__BODY_LEADER_SIGN_OFF:
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_UPSERT:
    case DISPATCH__ADMIN_REQUEST__BODY_UNIT_REMOVE:
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_UPSERT:
    case DISPATCH__ADMIN_REQUEST__BODY_RULE_REMOVE:
    case DISPATCH__ADMIN_REQUEST__BODY_LIST_QUEUE:
    case DISPATCH__ADMIN_REQUEST__BODY_LINKS_QUERY:
    case DISPATCH__ADMIN_REQUEST__BODY_STATS:
    case DISPATCH__ADMIN_REQUEST__BODY_LINK_ACCEPT:
    case DISPATCH__ADMIN_REQUEST__BODY__NOT_SET:
        break;
    }
    return refuse(a->err, DISPATCH__ERROR_CODE__ERROR_CODE_INTERNAL, "body", "not served here");
}

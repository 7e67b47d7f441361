#include "registry.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "csv.h"
#include "record.h"
#include "words.h"

/* Longer parent chains than this are taken for a cycle. */
#define REGISTRY_MAX_DEPTH 256
#define RULE_KEY_SIZE (3 * LIMIT_ID + 3)

struct registry {
    MDB_dbi units, rules;
    char district[LIMIT_ID + 1];
};

int registry_new(store_t *store, const char *district, registry_t **ret)
{
    if (strlen(district) > LIMIT_ID)
        return -EINVAL;
    registry_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    snprintf(self->district, sizeof(self->district), "%s", district);
    const store_db_t dbs[] = {
        {"router.units", &self->units, 0},
        {"router.rules", &self->rules, 0},
    };
    int rc = store_dbis(store, dbs, sizeof(dbs) / sizeof(dbs[0]));
    if (rc < 0) {
        free(self);
        return rc;
    }
    *ret = self;
    return 0;
}

void registry_destroy(registry_t **self)
{
    free(*self);
    *self = NULL;
}

const char *registry_district(const registry_t *self)
{
    return self->district;
}

/* ------------------------------------------------------------------ units */

int registry_unit_get(registry_t *self, MDB_txn *txn, const char *id, Dispatch__Unit **ret)
{
    *ret = NULL;
    if (!*id || strlen(id) > LIMIT_ID)
        return -ENOENT;
    return record_get(txn, self->units, id, strlen(id), &dispatch__unit__descriptor,
                      (ProtobufCMessage **)ret);
}

int registry_unit_usable(registry_t *self, MDB_txn *txn, const char *id, bool *usable)
{
    Dispatch__Unit *unit;
    int rc = registry_unit_get(self, txn, id, &unit);
    *usable = rc == 0 && unit->active;
    if (unit)
        dispatch__unit__free_unpacked(unit, NULL);
    return rc == -ENOENT ? 0 : rc;
}

/* An id: 1..64 bytes, no '/' (it separates a unit from a session in a
 * routing id), no control characters. */
static int check_id(const char *value, bool required, const char *field, const char *what,
                    refusal_t *err)
{
    size_t len = strlen(value);
    if (len == 0)
        return required ? refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, field,
                                 "%s is required", what)
                        : 0;
    if (len > LIMIT_ID)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, field,
                      "%s is %zu bytes, at most %d", what, len, LIMIT_ID);
    if (!codec_utf8_valid(value, len))
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8, field,
                      "%s is not valid UTF-8", what);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '/')
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, field,
                          "%s may not contain '/' or control characters", what);
    return 0;
}

static void join_field(char *out, size_t len, const char *base, const char *name)
{
    snprintf(out, len, "%s%s%s", base, *base ? "." : "", name);
}

int registry_check_unit(registry_t *self, MDB_txn *txn, const Dispatch__Unit *unit,
                        bool check_parent, const char *field, refusal_t *err)
{
    char path[128];
    if (!unit)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, field,
                      "a unit is required");
    join_field(path, sizeof(path), field, "id");
    if (check_id(unit->id, true, path, "unit id", err))
        return REFUSED;
    join_field(path, sizeof(path), field, "name");
    size_t name_len = strlen(unit->name);
    if (name_len == 0)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, path,
                      "unit name is required");
    if (name_len > LIMIT_NAME)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, path,
                      "unit name is %zu bytes, at most %d", name_len, LIMIT_NAME);
    if (!codec_utf8_valid(unit->name, name_len))
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_INVALID_UTF8, path,
                      "unit name is not valid UTF-8");
    join_field(path, sizeof(path), field, "level");
    if (unit->level == DISPATCH__UNIT_LEVEL__UNIT_LEVEL_UNSPECIFIED)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, path,
                      "unit level is required");
    if (!protobuf_c_enum_descriptor_get_value(&dispatch__unit_level__descriptor, unit->level))
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, path,
                      "unit level %d is unknown", unit->level);
    join_field(path, sizeof(path), field, "district");
    if (check_id(unit->district, false, path, "district", err))
        return REFUSED;
    join_field(path, sizeof(path), field, "parent_id");
    if (check_id(unit->parent_id, false, path, "parent id", err))
        return REFUSED;
    if (strcmp(unit->parent_id, unit->id) == 0)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, path,
                      "unit %s cannot be its own parent", unit->id);
    if (!check_parent || !*unit->parent_id)
        return 0;

    /* Walk up from the parent: reaching the unit itself would close a cycle. */
    char current[LIMIT_ID + 1];
    snprintf(current, sizeof(current), "%s", unit->parent_id);
    for (int depth = 0; *current; depth++) {
        if (depth == REGISTRY_MAX_DEPTH)
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, path,
                          "the hierarchy above %s is deeper than %d levels", unit->id,
                          REGISTRY_MAX_DEPTH);
        Dispatch__Unit *ancestor;
        int rc = registry_unit_get(self, txn, current, &ancestor);
        if (rc == -ENOENT)
            return depth == 0 ? refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, path,
                                       "parent unit %s is not registered", unit->parent_id)
                              : 0;
        if (rc < 0)
            return rc;
        bool cycle = strcmp(ancestor->id, unit->id) == 0;
        snprintf(current, sizeof(current), "%s", ancestor->parent_id);
        dispatch__unit__free_unpacked(ancestor, NULL);
        if (cycle)
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, path,
                          "parent %s is below unit %s: that would make a cycle", unit->parent_id,
                          unit->id);
    }
    return 0;
}

int registry_unit_put(registry_t *self, MDB_txn *txn, const Dispatch__Unit *unit)
{
    return record_put(txn, self->units, unit->id, strlen(unit->id), &unit->base, 0);
}

int registry_unit_delete(registry_t *self, MDB_txn *txn, const char *id)
{
    return record_delete(txn, self->units, id, strlen(id));
}

/* Calls fn for every unit until it returns non-zero (returned) or a
 * negative code. */
typedef int (*unit_fn)(const Dispatch__Unit *unit, void *ctx);

/* Unpacks every record of dbi in key order and hands it to fn, which then
 * owns it, until fn returns non-zero (returned as is) or a record does not
 * decode (-EPROTO). */
typedef int (*record_fn)(ProtobufCMessage *msg, void *ctx);

static int each_record(MDB_txn *txn, MDB_dbi dbi, const ProtobufCMessageDescriptor *descriptor,
                       record_fn fn, void *ctx)
{
    MDB_cursor *cursor;
    int rc = store_rc(mdb_cursor_open(txn, dbi, &cursor));
    if (rc < 0)
        return rc;
    MDB_val k, v;
    int op = MDB_FIRST, stop = 0;
    while ((rc = mdb_cursor_get(cursor, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        ProtobufCMessage *msg = protobuf_c_message_unpack(descriptor, NULL, v.mv_size, v.mv_data);
        if (!msg) {
            stop = -EPROTO;
            break;
        }
        stop = fn(msg, ctx);
        if (stop != 0)
            break;
    }
    mdb_cursor_close(cursor);
    if (stop != 0)
        return stop;
    return rc == MDB_NOTFOUND ? 0 : store_rc(rc);
}

typedef struct unit_visit {
    unit_fn fn;
    void *ctx;
} unit_visit_t;

static int visit_unit(ProtobufCMessage *msg, void *ctx)
{
    unit_visit_t *visit = ctx;
    Dispatch__Unit *unit = (Dispatch__Unit *)msg;
    int stop = visit->fn(unit, visit->ctx);
    dispatch__unit__free_unpacked(unit, NULL);
    return stop;
}

static int each_unit(registry_t *self, MDB_txn *txn, unit_fn fn, void *ctx)
{
    unit_visit_t visit = {fn, ctx};
    return each_record(txn, self->units, &dispatch__unit__descriptor, visit_unit, &visit);
}

typedef struct child_search {
    const char *parent;
    char *child;
} child_search_t;

static int match_child(const Dispatch__Unit *unit, void *ctx)
{
    child_search_t *search = ctx;
    if (strcmp(unit->parent_id, search->parent) != 0)
        return 0;
    snprintf(search->child, LIMIT_ID + 1, "%s", unit->id);
    return 1;
}

int registry_unit_first_child(registry_t *self, MDB_txn *txn, const char *id, char *child)
{
    child_search_t search = {id, child};
    *child = '\0';
    int rc = each_unit(self, txn, match_child, &search);
    return rc < 0 ? rc : 0;
}

static size_t db_entries(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat stat;
    return mdb_stat(txn, dbi, &stat) == 0 ? stat.ms_entries : 0;
}

size_t registry_unit_count(registry_t *self, MDB_txn *txn)
{
    return db_entries(txn, self->units);
}

/* ------------------------------------------------------------------ rules */

static size_t rule_key(const registry_t *self, char *key, const char *category, const char *area)
{
    return record_key3(key, RULE_KEY_SIZE, self->district, category, area);
}

int registry_check_rule(registry_t *self, MDB_txn *txn, const Dispatch__RoutingRule *rule,
                        const char *field, refusal_t *err)
{
    char path[128];
    if (!rule)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_MISSING_FIELD, field,
                      "a rule is required");
    join_field(path, sizeof(path), field, "district");
    if (check_id(rule->district, true, path, "district", err))
        return REFUSED;
    if (strcmp(rule->district, self->district) != 0)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_BAD_REQUEST, path,
                      "district %s is served by its own router; this router serves %s",
                      rule->district, self->district);
    join_field(path, sizeof(path), field, "category");
    if (check_id(rule->category, true, path, "category", err))
        return REFUSED;
    join_field(path, sizeof(path), field, "area");
    if (check_id(rule->area, false, path, "area", err))
        return REFUSED;
    join_field(path, sizeof(path), field, "lead_unit");
    if (check_id(rule->lead_unit, true, path, "lead unit", err))
        return REFUSED;
    Dispatch__Unit *unit;
    int rc = registry_unit_get(self, txn, rule->lead_unit, &unit);
    if (rc == -ENOENT)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, path,
                      "lead unit %s is not registered", rule->lead_unit);
    if (rc < 0)
        return rc;
    dispatch__unit__free_unpacked(unit, NULL);
    join_field(path, sizeof(path), field, "assisting_units");
    if (rule->n_assisting_units > LIMIT_UNITS)
        return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, path,
                      "%zu assisting units, at most %d", rule->n_assisting_units, LIMIT_UNITS);
    for (size_t i = 0; i < rule->n_assisting_units; i++) {
        const char *id = rule->assisting_units[i];
        if (check_id(id, true, path, "assisting unit", err))
            return REFUSED;
        if (strcmp(id, rule->lead_unit) == 0 ||
            record_strings_contain(rule->assisting_units, i, id))
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_OUT_OF_RANGE, path,
                          "unit %s is named twice", id);
        rc = registry_unit_get(self, txn, id, &unit);
        if (rc == -ENOENT)
            return refuse(err, DISPATCH__ERROR_CODE__ERROR_CODE_NOT_FOUND, path,
                          "assisting unit %s is not registered", id);
        if (rc < 0)
            return rc;
        dispatch__unit__free_unpacked(unit, NULL);
    }
    return 0;
}

int registry_rule_put(registry_t *self, MDB_txn *txn, const Dispatch__RoutingRule *rule)
{
    char key[RULE_KEY_SIZE];
    size_t len = rule_key(self, key, rule->category, rule->area);
    if (len == 0)
        return -EINVAL;
    return record_put(txn, self->rules, key, len, &rule->base, 0);
}

int registry_rule_get(registry_t *self, MDB_txn *txn, const char *category, const char *area,
                      Dispatch__RoutingRule **ret)
{
    *ret = NULL;
    char key[RULE_KEY_SIZE];
    size_t len = rule_key(self, key, category, area);
    if (len == 0)
        return -ENOENT;
    return record_get(txn, self->rules, key, len, &dispatch__routing_rule__descriptor,
                      (ProtobufCMessage **)ret);
}

int registry_rule_delete(registry_t *self, MDB_txn *txn, const char *category, const char *area)
{
    char key[RULE_KEY_SIZE];
    size_t len = rule_key(self, key, category, area);
    if (len == 0)
        return -ENOENT;
    return record_delete(txn, self->rules, key, len);
}

int registry_route(registry_t *self, MDB_txn *txn, const char *category, const char *area,
                   Dispatch__RoutingRule **ret)
{
    *ret = NULL;
    if (!*category)
        return -ENOENT;
    if (*area) {
        int rc = registry_rule_get(self, txn, category, area, ret);
        if (rc != -ENOENT)
            return rc;
    }
    return registry_rule_get(self, txn, category, "", ret);
}

typedef struct rule_naming {
    const char *unit_id;
    char *rule;
} rule_naming_t;

/* 1 (stop) with the rule's name when it names the unit. */
static int name_rule(ProtobufCMessage *msg, void *ctx)
{
    rule_naming_t *naming = ctx;
    Dispatch__RoutingRule *item = (Dispatch__RoutingRule *)msg;
    bool named =
        strcmp(item->lead_unit, naming->unit_id) == 0 ||
        record_strings_contain(item->assisting_units, item->n_assisting_units, naming->unit_id);
    if (named)
        snprintf(naming->rule, 2 * LIMIT_ID + 2, "%s/%s", item->category, item->area);
    dispatch__routing_rule__free_unpacked(item, NULL);
    return named;
}

int registry_rule_naming(registry_t *self, MDB_txn *txn, const char *unit_id, char *rule)
{
    *rule = '\0';
    rule_naming_t naming = {unit_id, rule};
    int rc = each_record(txn, self->rules, &dispatch__routing_rule__descriptor, name_rule, &naming);
    return rc > 0 ? 0 : rc;
}

size_t registry_rule_count(registry_t *self, MDB_txn *txn)
{
    return db_entries(txn, self->rules);
}

/* ------------------------------------------------------------- seed files */

static int expect_header(csv_t *csv, const char *const *names, size_t count, const char *path,
                         char *err, size_t err_len)
{
    const char *fields[CSV_FIELDS_MAX];
    size_t n;
    char detail[256];
    int rc = csv_next(csv, fields, &n, detail, sizeof(detail));
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, detail);
        return rc;
    }
    bool same = rc == 1 && n == count;
    for (size_t i = 0; same && i < count; i++)
        same = strcmp(fields[i], names[i]) == 0;
    if (!same) {
        char expected[256] = "";
        for (size_t i = 0; i < count; i++)
            snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), "%s%s",
                     i ? "," : "", names[i]);
        snprintf(err, err_len, "%s: the first line must be the header %s", path, expected);
        return -EINVAL;
    }
    return 0;
}

static int parse_int32(const char *text, int32_t *value)
{
    if (!*text) {
        *value = 0;
        return 0;
    }
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    if (errno || *end || parsed < INT32_MIN || parsed > INT32_MAX)
        return -EINVAL;
    *value = (int32_t)parsed;
    return 0;
}

typedef struct parent_check {
    registry_t *registry;
    MDB_txn *txn;
    char *err;
    size_t err_len;
    const char *path;
} parent_check_t;

static int check_loaded_parent(const Dispatch__Unit *unit, void *ctx)
{
    parent_check_t *check = ctx;
    refusal_t error = {0};
    int rc = registry_check_unit(check->registry, check->txn, unit, true, "", &error);
    if (rc == REFUSED) {
        snprintf(check->err, check->err_len, "%s: unit %s: %s", check->path, unit->id,
                 error.message);
        return -EINVAL;
    }
    return rc;
}

/* What a units file does to units already there: refused as listed twice
 * (a first seed), or replaced (a reload), counted. */
typedef struct unit_load {
    bool replace;
    size_t added, changed;
} unit_load_t;

/* The unit's packed bytes equal what is stored under its id. */
static bool unit_unchanged(registry_t *self, MDB_txn *txn, const Dispatch__Unit *unit, bool *known)
{
    MDB_val k = {strlen(unit->id), (void *)unit->id}, v;
    *known = mdb_get(txn, self->units, &k, &v) == 0;
    if (!*known)
        return false;
    size_t size = dispatch__unit__get_packed_size(unit);
    if (size != v.mv_size)
        return false;
    uint8_t *packed = malloc(size ? size : 1);
    if (!packed)
        return false;
    dispatch__unit__pack(unit, packed);
    bool same = memcmp(packed, v.mv_data, size) == 0;
    free(packed);
    return same;
}

static int load_unit(registry_t *self, MDB_txn *txn, const char *const *fields, const char *path,
                     unsigned long line, void *ctx, char *err, size_t err_len)
{
    unit_load_t *mode = ctx;
    Dispatch__Unit unit = DISPATCH__UNIT__INIT;
    unit.id = (char *)fields[0];
    unit.name = (char *)fields[1];
    unit.parent_id = (char *)fields[2];
    int level = 0;
    words_parse(&dispatch__unit_level__descriptor, fields[3], &level);
    unit.level = (Dispatch__UnitLevel)level;
    unit.district = (char *)fields[4];
    unit.active = strcmp(fields[5], "1") == 0;
    if (unit.level == DISPATCH__UNIT_LEVEL__UNIT_LEVEL_UNSPECIFIED) {
        snprintf(err, err_len,
                 "%s: line %lu: level '%s' is none of city, district, street, community, "
                 "bureau, enterprise",
                 path, line, fields[3]);
        return -EINVAL;
    }
    if (strcmp(fields[5], "1") != 0 && strcmp(fields[5], "0") != 0) {
        snprintf(err, err_len, "%s: line %lu: active must be 1 or 0, not '%s'", path, line,
                 fields[5]);
        return -EINVAL;
    }
    refusal_t error = {0};
    int rc = registry_check_unit(self, txn, &unit, false, "", &error);
    if (rc == REFUSED) {
        snprintf(err, err_len, "%s: line %lu: %s: %s", path, line, error.field, error.message);
        return -EINVAL;
    }
    if (rc == 0 && mode && mode->replace) {
        bool known;
        if (unit_unchanged(self, txn, &unit, &known))
            return 0;
        if (known)
            mode->changed++;
        else
            mode->added++;
        rc = record_put(txn, self->units, unit.id, strlen(unit.id), &unit.base, 0);
    } else if (rc == 0) {
        rc = record_put(txn, self->units, unit.id, strlen(unit.id), &unit.base, MDB_NOOVERWRITE);
    }
    if (rc == MDB_KEYEXIST) {
        snprintf(err, err_len, "%s: line %lu: unit %s is listed twice", path, line, unit.id);
        return -EINVAL;
    }
    if (rc < 0)
        snprintf(err, err_len, "%s: line %lu: %s", path, line, store_strerror(rc));
    return rc;
}

typedef int (*line_fn)(registry_t *self, MDB_txn *txn, const char *const *fields, const char *path,
                       unsigned long line, void *ctx, char *err, size_t err_len);

/* Reads path: the header, then every record through load (with ctx). */
static int load_file(registry_t *self, MDB_txn *txn, const char *path, const char *const *header,
                     size_t columns, line_fn load, void *ctx, char *err, size_t err_len)
{
    csv_t *csv;
    int rc = csv_open(path, &csv);
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(-rc));
        return rc;
    }
    rc = expect_header(csv, header, columns, path, err, err_len);
    while (rc == 0) {
        const char *fields[CSV_FIELDS_MAX];
        size_t n;
        char detail[256];
        rc = csv_next(csv, fields, &n, detail, sizeof(detail));
        if (rc < 0) {
            snprintf(err, err_len, "%s: %s", path, detail);
            break;
        }
        if (rc == 0)
            break;
        if (n != columns) {
            snprintf(err, err_len, "%s: line %lu: %zu fields, expected %zu", path, csv_line(csv), n,
                     columns);
            rc = -EINVAL;
            break;
        }
        rc = load(self, txn, fields, path, csv_line(csv), ctx, err, err_len);
    }
    csv_destroy(&csv);
    return rc;
}

int registry_load_units_csv(registry_t *self, MDB_txn *txn, const char *path, char *err,
                            size_t err_len)
{
    static const char *const header[] = {"id", "name", "parent_id", "level", "district", "active"};
    int rc = load_file(self, txn, path, header, 6, load_unit, NULL, err, err_len);
    if (rc < 0)
        return rc;
    /* Parents may come after their children in the file: check them now. */
    parent_check_t check = {self, txn, err, err_len, path};
    return each_unit(self, txn, check_loaded_parent, &check);
}

static int split_units(char *list, char **units, size_t *count)
{
    *count = 0;
    if (!*list)
        return 0;
    for (char *item = list;;) {
        char *semicolon = strchr(item, ';');
        if (semicolon)
            *semicolon = '\0';
        if (*count == LIMIT_UNITS)
            return -E2BIG;
        units[(*count)++] = item;
        if (!semicolon)
            return 0;
        item = semicolon + 1;
    }
}

/* A rules file's record as a rule of this district (strings point into
 * fields and units); -EINVAL and err for a malformed one. */
static int parse_rule(registry_t *self, const char *const *fields, const char *path,
                      unsigned long line, char *assisting, char **units,
                      Dispatch__RoutingRule *rule, char *err, size_t err_len)
{
    snprintf(assisting, CSV_LINE_MAX + 1, "%s", fields[3]);
    rule->category = (char *)fields[0];
    rule->area = (char *)fields[1];
    rule->district = self->district;
    rule->lead_unit = (char *)fields[2];
    if (split_units(assisting, units, &rule->n_assisting_units) < 0) {
        snprintf(err, err_len, "%s: line %lu: more than %d assisting units", path, line,
                 LIMIT_UNITS);
        return -EINVAL;
    }
    rule->assisting_units = units;
    if (parse_int32(fields[4], &rule->priority) < 0) {
        snprintf(err, err_len, "%s: line %lu: priority '%s' is not a 32-bit integer", path, line,
                 fields[4]);
        return -EINVAL;
    }
    return 0;
}

static int load_rule(registry_t *self, MDB_txn *txn, const char *const *fields, const char *path,
                     unsigned long line, void *ctx, char *err, size_t err_len)
{
    (void)ctx;
    char assisting[CSV_LINE_MAX + 1];
    char *units[LIMIT_UNITS];
    Dispatch__RoutingRule rule = DISPATCH__ROUTING_RULE__INIT;
    if (parse_rule(self, fields, path, line, assisting, units, &rule, err, err_len) < 0)
        return -EINVAL;
    refusal_t error = {0};
    int rc = registry_check_rule(self, txn, &rule, "", &error);
    if (rc == REFUSED) {
        snprintf(err, err_len, "%s: line %lu: %s: %s", path, line, error.field, error.message);
        return -EINVAL;
    }
    if (rc < 0)
        return rc;

    Dispatch__RoutingRule *existing;
    rc = registry_rule_get(self, txn, rule.category, rule.area, &existing);
    if (rc == 0) {
        bool keep_existing = existing->priority > rule.priority ||
                             (existing->priority == rule.priority &&
                              strcmp(existing->lead_unit, rule.lead_unit) <= 0);
        dispatch__routing_rule__free_unpacked(existing, NULL);
        if (keep_existing)
            return 0;
    } else if (rc != -ENOENT) {
        return rc;
    }
    return registry_rule_put(self, txn, &rule);
}

int registry_load_rules_csv(registry_t *self, MDB_txn *txn, const char *path, char *err,
                            size_t err_len)
{
    static const char *const header[] = {"category", "area", "lead_unit", "assisting_units",
                                         "priority"};
    return load_file(self, txn, path, header, 5, load_rule, NULL, err, err_len);
}

/* ------------------------------------------------------------- rule keeping */

typedef struct rule_visit {
    registry_rule_fn fn;
    void *ctx;
} rule_visit_t;

static int visit_rule(ProtobufCMessage *msg, void *ctx)
{
    rule_visit_t *visit = ctx;
    return visit->fn((Dispatch__RoutingRule *)msg, visit->ctx);
}

int registry_rules_each(registry_t *self, MDB_txn *txn, registry_rule_fn fn, void *ctx)
{
    rule_visit_t visit = {fn, ctx};
    int rc = each_record(txn, self->rules, &dispatch__routing_rule__descriptor, visit_rule, &visit);
    return rc > 0 ? 0 : rc;
}

int registry_units_each(registry_t *self, MDB_txn *txn, registry_unit_fn fn, void *ctx)
{
    int rc = each_unit(self, txn, fn, ctx);
    return rc > 0 ? 0 : rc;
}

typedef struct rule_reader {
    registry_rule_line_fn fn;
    void *ctx;
} rule_reader_t;

static int read_rule(registry_t *self, MDB_txn *txn, const char *const *fields, const char *path,
                     unsigned long line, void *ctx, char *err, size_t err_len)
{
    (void)txn;
    rule_reader_t *reader = ctx;
    char assisting[CSV_LINE_MAX + 1];
    char *units[LIMIT_UNITS];
    Dispatch__RoutingRule rule = DISPATCH__ROUTING_RULE__INIT;
    int rc = parse_rule(self, fields, path, line, assisting, units, &rule, err, err_len);
    if (rc == 0)
        rc = reader->fn(&rule, line, reader->ctx);
    return rc;
}

int registry_read_rules_csv(registry_t *self, const char *path, registry_rule_line_fn fn, void *ctx,
                            char *err, size_t err_len)
{
    static const char *const header[] = {"category", "area", "lead_unit", "assisting_units",
                                         "priority"};
    rule_reader_t reader = {fn, ctx};
    return load_file(self, NULL, path, header, 5, read_rule, &reader, err, err_len);
}

int registry_reload_units_csv(registry_t *self, MDB_txn *txn, const char *path, size_t *added,
                              size_t *changed, char *err, size_t err_len)
{
    static const char *const header[] = {"id", "name", "parent_id", "level", "district", "active"};
    unit_load_t mode = {.replace = true};
    int rc = load_file(self, txn, path, header, 6, load_unit, &mode, err, err_len);
    *added = mode.added;
    *changed = mode.changed;
    if (rc < 0)
        return rc;
    parent_check_t check = {self, txn, err, err_len, path};
    return each_unit(self, txn, check_loaded_parent, &check);
}

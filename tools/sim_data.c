#include "sim_data.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "sim_array.h"
#include "sim_map.h"
#include "words.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t len, const char *format,
                                                      ...)
{
    if (err && len) {
        va_list args;
        va_start(args, format);
        vsnprintf(err, len, format, args);
        va_end(args);
    }
    return -EINVAL;
}

/* Opens path and checks its header line against names. */
static int open_with_header(const char *path, const char *const *names, size_t count, csv_t **ret,
                            char *err, size_t err_len)
{
    int rc = csv_open(path, ret);
    if (rc < 0) {
        fail(err, err_len, "%s: %s", path, strerror(-rc));
        return rc;
    }
    const char *fields[CSV_FIELDS_MAX];
    size_t n;
    char detail[256];
    rc = csv_next(*ret, fields, &n, detail, sizeof(detail));
    bool same = rc == 1 && n == count;
    for (size_t i = 0; same && i < count; i++)
        same = strcmp(fields[i], names[i]) == 0;
    if (!same) {
        csv_destroy(ret);
        return fail(err, err_len, "%s: the first line must be the header (%s, ...)", path,
                    names[0]);
    }
    return 0;
}

/* Next record with exactly count fields: 1, 0 at the end, or an error. */
static int next_record(csv_t *csv, const char *path, size_t count, const char **fields, char *err,
                       size_t err_len)
{
    size_t n;
    char detail[256];
    int rc = csv_next(csv, fields, &n, detail, sizeof(detail));
    if (rc < 0)
        return fail(err, err_len, "%s: %s", path, detail);
    if (rc == 1 && n != count)
        return fail(err, err_len, "%s: line %lu: %zu fields, expected %zu", path, csv_line(csv), n,
                    count);
    return rc;
}

/* One record of a file (exactly the header's count of fields), at line:
 * 0 to go on, or a negative code with err saying why. */
typedef int (*record_fn)(void *ctx, const char *path, unsigned long line, const char **fields,
                         char *err, size_t err_len);

/* Reads path: the header names[count], then fn on each record. */
static int each_record(const char *path, const char *const *names, size_t count, record_fn fn,
                       void *ctx, char *err, size_t err_len)
{
    csv_t *csv = NULL;
    int rc = open_with_header(path, names, count, &csv, err, err_len);
    while (rc == 0) {
        const char *fields[CSV_FIELDS_MAX];
        rc = next_record(csv, path, count, fields, err, err_len);
        if (rc <= 0)
            break;
        rc = fn(ctx, path, csv_line(csv), fields, err, err_len);
    }
    if (csv)
        csv_destroy(&csv);
    return rc;
}

/* --- words --- */

/* The value of an enum word (common/words.h); 0, UNSPECIFIED, when unknown. */
static int word_value(const ProtobufCEnumDescriptor *descriptor, const char *word)
{
    int value;
    return words_parse(descriptor, word, &value) == 0 ? value : 0;
}

/* --- units --- */

struct sim_units {
    sim_unit_t *units;
    size_t count, capacity;
    sim_map_t *index;
};

void sim_units_destroy(sim_units_t **self)
{
    sim_units_t *units = *self;
    if (!units)
        return;
    for (size_t i = 0; i < units->count; i++) {
        free((char *)units->units[i].id);
        free((char *)units->units[i].name);
        free((char *)units->units[i].parent);
        free((char *)units->units[i].district);
    }
    free(units->units);
    sim_map_destroy(&units->index);
    free(units);
    *self = NULL;
}

static int units_add(sim_units_t *self, const char *const *fields)
{
    int rc =
        sim_array_reserve(&self->units, self->count, &self->capacity, sizeof(*self->units), 1024);
    if (rc < 0)
        return rc;
    sim_unit_t *unit = &self->units[self->count];
    *unit = (sim_unit_t){
        .id = strdup(fields[0]),
        .name = strdup(fields[1]),
        .parent = strdup(fields[2]),
        .district = strdup(fields[4]),
        .level = (Dispatch__UnitLevel)word_value(&dispatch__unit_level__descriptor, fields[3]),
        .active = strcmp(fields[5], "1") == 0,
    };
    self->count++;
    if (!unit->id || !unit->name || !unit->parent || !unit->district)
        return -ENOMEM;
    return sim_map_put(self->index, unit->id, (uint32_t)(self->count - 1));
}

static int unit_record(void *ctx, const char *path, unsigned long line, const char **fields,
                       char *err, size_t err_len)
{
    int rc = units_add(ctx, fields);
    if (rc == -EEXIST)
        return fail(err, err_len, "%s: line %lu: unit %s is listed twice", path, line, fields[0]);
    if (rc < 0)
        fail(err, err_len, "%s: out of memory", path);
    return rc;
}

int sim_units_load(const char *path, sim_units_t **ret, char *err, size_t err_len)
{
    static const char *const header[] = {"id", "name", "parent_id", "level", "district", "active"};
    sim_units_t *self = calloc(1, sizeof(*self));
    if (!self || sim_map_new(&self->index) < 0) {
        free(self);
        return -ENOMEM;
    }
    int rc = each_record(path, header, 6, unit_record, self, err, err_len);
    if (rc < 0) {
        sim_units_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

size_t sim_units_count(const sim_units_t *self)
{
    return self->count;
}

const sim_unit_t *sim_units_at(const sim_units_t *self, size_t i)
{
    return &self->units[i];
}

long sim_units_find(const sim_units_t *self, const char *id)
{
    uint32_t index;
    return sim_map_get(self->index, id, &index) == 0 ? (long)index : -1;
}

/* --- rules --- */

typedef struct rule_units {
    sim_rule_unit_fn fn;
    void *ctx;
} rule_units_t;

static int rule_record(void *ctx, const char *path, unsigned long line, const char **fields,
                       char *err, size_t err_len)
{
    rule_units_t *each = ctx;
    int rc = each->fn(fields[2], each->ctx);
    char assisting[CSV_LINE_MAX + 1];
    snprintf(assisting, sizeof(assisting), "%s", fields[3]);
    char *save = NULL;
    for (char *unit = strtok_r(assisting, ";", &save); unit && rc == 0;
         unit = strtok_r(NULL, ";", &save))
        rc = each->fn(unit, each->ctx);
    return rc;
}

int sim_rules_each_unit(const char *path, sim_rule_unit_fn fn, void *ctx, char *err, size_t err_len)
{
    static const char *const header[] = {"category", "area", "lead_unit", "assisting_units",
                                         "priority"};
    rule_units_t each = {fn, ctx};
    return each_record(path, header, 5, rule_record, &each, err, err_len);
}

/* --- categories --- */

void sim_categories_free(sim_category_t *categories, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(categories[i].code);
        free(categories[i].name);
    }
    free(categories);
}

static int parse_kinds(const char *text, double *kinds)
{
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", text);
    char *save = NULL;
    double sum = 0;
    for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        char *colon = strchr(item, ':');
        if (!colon)
            return -EINVAL;
        *colon = '\0';
        Dispatch__Kind kind = (Dispatch__Kind)word_value(&dispatch__kind__descriptor, item);
        char *end;
        double weight = strtod(colon + 1, &end);
        if (!kind || kind >= SIM_KIND_COUNT || *end || !(weight >= 0))
            return -EINVAL;
        kinds[kind] = weight;
        sum += weight;
    }
    return sum > 0 ? 0 : -EINVAL;
}

typedef struct categories {
    sim_category_t *list;
    size_t count, capacity;
} categories_t;

static int category_record(void *ctx, const char *path, unsigned long line, const char **fields,
                           char *err, size_t err_len)
{
    categories_t *categories = ctx;
    int rc = sim_array_reserve(&categories->list, categories->count, &categories->capacity,
                               sizeof(*categories->list), 64);
    if (rc < 0)
        return rc;
    sim_category_t *c = &categories->list[categories->count++];
    memset(c, 0, sizeof(*c));
    c->code = strdup(fields[0]);
    c->name = strdup(fields[1]);
    char *end;
    c->weight = strtod(fields[2], &end);
    if (!c->code || !c->name)
        return -ENOMEM;
    if (*end || !(c->weight >= 0))
        return fail(err, err_len, "%s: line %lu: weight '%s' is not a number >= 0", path, line,
                    fields[2]);
    if (strcmp(fields[3], "street") == 0)
        c->area_level = SIM_AREA_STREET;
    else if (strcmp(fields[3], "community") == 0)
        c->area_level = SIM_AREA_COMMUNITY;
    else if (strcmp(fields[3], "any") != 0)
        return fail(err, err_len,
                    "%s: line %lu: area_level '%s' is none of street, "
                    "community, any",
                    path, line, fields[3]);
    if (parse_kinds(fields[4], c->kinds) < 0)
        return fail(err, err_len, "%s: line %lu: kinds '%s' is not kind:weight;...", path, line,
                    fields[4]);
    return 0;
}

int sim_categories_load(const char *path, sim_category_t **ret, size_t *count, char *err,
                        size_t err_len)
{
    static const char *const header[] = {"category", "name", "weight", "area_level", "kinds"};
    categories_t categories = {NULL, 0, 0};
    int rc = each_record(path, header, 5, category_record, &categories, err, err_len);
    if (rc == 0 && categories.count == 0)
        rc = fail(err, err_len, "%s: no categories", path);
    if (rc < 0) {
        sim_categories_free(categories.list, categories.count);
        return rc;
    }
    *ret = categories.list;
    *count = categories.count;
    return 0;
}

/* --- LA map --- */

typedef struct la_entry {
    char table[16];
    char *id, *value, *extra, *note;
    double latitude, longitude;
} la_entry_t;

struct sim_la_map {
    la_entry_t *entries;
    size_t count, capacity;
};

void sim_la_map_destroy(sim_la_map_t **self)
{
    sim_la_map_t *map = *self;
    if (!map)
        return;
    for (size_t i = 0; i < map->count; i++) {
        free(map->entries[i].id);
        free(map->entries[i].value);
        free(map->entries[i].extra);
        free(map->entries[i].note);
    }
    free(map->entries);
    free(map);
    *self = NULL;
}

static int la_record(void *ctx, const char *path, unsigned long line, const char **fields,
                     char *err, size_t err_len)
{
    sim_la_map_t *self = ctx;
    int rc = sim_array_reserve(&self->entries, self->count, &self->capacity, sizeof(*self->entries),
                               256);
    if (rc < 0)
        return rc;
    la_entry_t *e = &self->entries[self->count++];
    memset(e, 0, sizeof(*e));
    snprintf(e->table, sizeof(e->table), "%s", fields[0]);
    e->id = strdup(fields[1]);
    e->value = strdup(fields[2]);
    e->extra = strdup(fields[3]);
    e->note = strdup(fields[6]);
    e->latitude = atof(fields[4]);
    e->longitude = atof(fields[5]);
    return !e->id || !e->value || !e->extra || !e->note ? -ENOMEM : 0;
}

int sim_la_map_load(const char *path, sim_la_map_t **ret, char *err, size_t err_len)
{
    static const char *const header[] = {"table",    "id",        "value", "ticket_kind",
                                         "latitude", "longitude", "note"};
    sim_la_map_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    int rc = each_record(path, header, 7, la_record, self, err, err_len);
    if (rc < 0) {
        sim_la_map_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

static const la_entry_t *la_find(const sim_la_map_t *self, const char *table, const char *id)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->entries[i].table, table) == 0 && strcmp(self->entries[i].id, id) == 0)
            return &self->entries[i];
    return NULL;
}

int sim_la_map_type(const sim_la_map_t *self, const char *type_id, const char **category,
                    Dispatch__Kind *kind, const char **name)
{
    const la_entry_t *e = la_find(self, "type", type_id);
    if (!e)
        return -ENOENT;
    *category = e->value;
    *kind = (Dispatch__Kind)word_value(&dispatch__kind__descriptor, e->extra);
    *name = e->note;
    return 0;
}

int sim_la_map_source(const sim_la_map_t *self, const char *source_id, Dispatch__Channel *channel)
{
    const la_entry_t *e = la_find(self, "source", source_id);
    if (!e)
        return -ENOENT;
    *channel = (Dispatch__Channel)word_value(&dispatch__channel__descriptor, e->value);
    return *channel ? 0 : -ENOENT;
}

int sim_la_map_council(const sim_la_map_t *self, const char *council_id, const char **area,
                       const char **district)
{
    const la_entry_t *e = la_find(self, "council", council_id);
    if (!e)
        return -ENOENT;
    *area = e->value;
    *district = e->extra;
    return 0;
}

int sim_la_map_region(const sim_la_map_t *self, const char *region_id, const char **district)
{
    const la_entry_t *e = la_find(self, "region", region_id);
    if (!e)
        return -ENOENT;
    *district = e->value;
    return 0;
}

const char *sim_la_map_nearest(const sim_la_map_t *self, double latitude, double longitude)
{
    const char *best = NULL;
    double best_distance = INFINITY;
    for (size_t i = 0; i < self->count; i++) {
        const la_entry_t *e = &self->entries[i];
        if (strcmp(e->table, "region") != 0)
            continue;
        double distance = hypot(e->latitude - latitude, e->longitude - longitude);
        if (distance < best_distance) {
            best_distance = distance;
            best = e->value;
        }
    }
    return best;
}

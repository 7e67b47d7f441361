/* city_lists: see city_lists.h. */
#include "city_lists.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "refusal.h"

typedef struct list {
    city_list_entry_t *items;
    size_t count, capacity;
} list_t;

struct city_lists {
    list_t categories, areas;
    list_t areas_by_id; /* the same entries, sorted by id, for lookups */
};

static void list_free(list_t *list, bool strings)
{
    for (size_t i = 0; strings && i < list->count; i++) {
        free((char *)list->items[i].id);
        free((char *)list->items[i].district);
        free((char *)list->items[i].name);
    }
    free(list->items);
}

void city_lists_destroy(city_lists_t **self)
{
    if (!*self)
        return;
    list_free(&(*self)->categories, true);
    list_free(&(*self)->areas, true);
    list_free(&(*self)->areas_by_id, false);
    free(*self);
    *self = NULL;
}

static int list_add(list_t *list, const char *id, const char *district, const char *name)
{
    if (list->count == list->capacity) {
        size_t next = list->capacity ? list->capacity * 2 : 256;
        city_list_entry_t *grown = realloc(list->items, next * sizeof(*grown));
        if (!grown)
            return -ENOMEM;
        list->items = grown;
        list->capacity = next;
    }
    city_list_entry_t *entry = &list->items[list->count++];
    entry->id = strdup(id);
    entry->district = strdup(district);
    entry->name = strdup(name);
    return entry->id && entry->district && entry->name ? 0 : -ENOMEM;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const city_list_entry_t *)a)->id, ((const city_list_entry_t *)b)->id);
}

static int by_district_id(const void *a, const void *b)
{
    const city_list_entry_t *x = a, *y = b;
    int c = strcmp(x->district, y->district);
    return c ? c : strcmp(x->id, y->id);
}

/* -EINVAL when sorted list holds an id twice (err names it). */
static int check_unique(const list_t *list, const char *what, const char *path, char *err,
                        size_t err_len)
{
    for (size_t i = 1; i < list->count; i++)
        if (strcmp(list->items[i - 1].id, list->items[i].id) == 0) {
            snprintf(err, err_len, "%s: %s '%s' is listed twice", path, what, list->items[i].id);
            return -EINVAL;
        }
    return 0;
}

static int load_line(city_lists_t *self, const char *const *f, size_t n, const char *path,
                     unsigned long line, char *err, size_t err_len)
{
    if (n != 4) {
        snprintf(err, err_len, "%s: line %lu: %zu fields, expected 4", path, line, n);
        return -EINVAL;
    }
    size_t id_len = strlen(f[1]);
    if (id_len == 0 || id_len > LIMIT_ID || strlen(f[2]) > LIMIT_ID) {
        snprintf(err, err_len, "%s: line %lu: an id of 1 to %d bytes is required", path, line,
                 LIMIT_ID);
        return -EINVAL;
    }
    if (strcmp(f[0], "category") == 0)
        return list_add(&self->categories, f[1], "", f[3]);
    if (strcmp(f[0], "area") == 0) {
        if (!*f[2]) {
            snprintf(err, err_len, "%s: line %lu: area %s has no district", path, line, f[1]);
            return -EINVAL;
        }
        return list_add(&self->areas, f[1], f[2], f[3]);
    }
    snprintf(err, err_len, "%s: line %lu: list '%s' is neither category nor area", path, line,
             f[0]);
    return -EINVAL;
}

int city_lists_load(const char *path, city_lists_t **ret, char *err, size_t err_len)
{
    *ret = NULL;
    csv_t *csv;
    int rc = csv_open(path, &csv);
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(-rc));
        return rc;
    }
    city_lists_t *self = calloc(1, sizeof(*self));
    if (!self) {
        csv_destroy(&csv);
        return -ENOMEM;
    }
    bool header = true;
    for (;;) {
        const char *f[CSV_FIELDS_MAX];
        size_t n;
        char detail[256];
        rc = csv_next(csv, f, &n, detail, sizeof(detail));
        if (rc < 0) {
            snprintf(err, err_len, "%s: %s", path, detail);
            break;
        }
        if (rc == 0)
            break;
        if (header) {
            header = false;
            if (n != 4 || strcmp(f[0], "list") || strcmp(f[1], "id") || strcmp(f[2], "district") ||
                strcmp(f[3], "name")) {
                snprintf(err, err_len,
                         "%s: the first line must be the header list,id,district,name", path);
                rc = -EINVAL;
                break;
            }
            continue;
        }
        rc = load_line(self, f, n, path, csv_line(csv), err, err_len);
        if (rc < 0)
            break;
    }
    csv_destroy(&csv);
    if (rc == 0) {
        qsort(self->categories.items, self->categories.count, sizeof(city_list_entry_t), by_id);
        qsort(self->areas.items, self->areas.count, sizeof(city_list_entry_t), by_district_id);
        self->areas_by_id.items =
            malloc((self->areas.count ? self->areas.count : 1) * sizeof(city_list_entry_t));
        if (!self->areas_by_id.items)
            rc = -ENOMEM;
    }
    if (rc == 0) {
        memcpy(self->areas_by_id.items, self->areas.items,
               self->areas.count * sizeof(city_list_entry_t));
        self->areas_by_id.count = self->areas.count;
        qsort(self->areas_by_id.items, self->areas_by_id.count, sizeof(city_list_entry_t), by_id);
        rc = check_unique(&self->categories, "category", path, err, err_len);
        if (rc == 0)
            rc = check_unique(&self->areas_by_id, "area", path, err, err_len);
    }
    if (rc < 0) {
        city_lists_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

static const city_list_entry_t *find(const list_t *list, const char *id)
{
    city_list_entry_t key = {.id = id};
    return bsearch(&key, list->items, list->count, sizeof(*list->items), by_id);
}

bool city_lists_has_category(const city_lists_t *self, const char *category)
{
    return find(&self->categories, category) != NULL;
}

const char *city_lists_area_district(const city_lists_t *self, const char *area)
{
    const city_list_entry_t *entry = find(&self->areas_by_id, area);
    return entry ? entry->district : NULL;
}

size_t city_lists_categories(const city_lists_t *self, const city_list_entry_t **ret)
{
    *ret = self->categories.items;
    return self->categories.count;
}

size_t city_lists_areas(const city_lists_t *self, const city_list_entry_t **ret)
{
    *ret = self->areas.items;
    return self->areas.count;
}

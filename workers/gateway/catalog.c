/* catalog: Open311 services and district centroids; see catalog.h. */
#include "catalog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "words.h"

typedef struct centroid {
    double lat, lon;
    char district[65];
} centroid_t;

struct catalog {
    catalog_service_t *services;
    size_t service_count, service_capacity;
    centroid_t *centroids;
    size_t centroid_count, centroid_capacity;
};

static int grow(void **items, size_t *capacity, size_t count, size_t size)
{
    if (count < *capacity)
        return 0;
    size_t next = *capacity ? *capacity * 2 : 32;
    void *bigger = realloc(*items, next * size);
    if (!bigger)
        return -ENOMEM;
    *items = bigger;
    *capacity = next;
    return 0;
}

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

static int add_service(catalog_t *self, const char *code, const char *name, const char *group,
                       const char *keywords, Dispatch__Kind kind)
{
    if (!*code || strlen(code) > 64 || catalog_service_find(self, code))
        return 0;
    int rc = grow((void **)&self->services, &self->service_capacity, self->service_count,
                  sizeof(catalog_service_t));
    if (rc < 0)
        return rc;
    catalog_service_t *s = &self->services[self->service_count++];
    memset(s, 0, sizeof(*s));
    copy(s->code, sizeof(s->code), code);
    copy(s->name, sizeof(s->name), name);
    copy(s->group, sizeof(s->group), group);
    copy(s->keywords, sizeof(s->keywords), keywords);
    s->kind = kind;
    return 0;
}

/* "complaint:70;report:25" -> the kind of the largest weight, and the
 * kinds as a comma list. */
static Dispatch__Kind kinds_pick(const char *kinds, char *keywords, size_t len)
{
    Dispatch__Kind best = DISPATCH__KIND__KIND_REPORT;
    double best_weight = -1;
    keywords[0] = '\0';
    char buf[256];
    copy(buf, sizeof(buf), kinds);
    char *save = NULL;
    for (char *part = strtok_r(buf, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
        char *colon = strchr(part, ':');
        double weight = 1;
        if (colon) {
            *colon = '\0';
            weight = strtod(colon + 1, NULL);
        }
        int value;
        if (words_parse(&dispatch__kind__descriptor, part, &value) < 0)
            continue;
        size_t used = strlen(keywords);
        snprintf(keywords + used, len - used, "%s%s", used ? "," : "", part);
        if (weight > best_weight) {
            best_weight = weight;
            best = (Dispatch__Kind)value;
        }
    }
    return best;
}

static int load_categories(catalog_t *self, const char *path, char *err, size_t err_len)
{
    csv_t *csv;
    int rc = csv_open(path, &csv);
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(-rc));
        return rc;
    }
    const char *fields[CSV_FIELDS_MAX];
    size_t count;
    bool header = true;
    while ((rc = csv_next(csv, fields, &count, err, err_len)) == 1) {
        if (header) {
            header = false;
            if (count > 0 && strcmp(fields[0], "category") == 0)
                continue;
        }
        if (count < 2)
            continue;
        char keywords[129];
        Dispatch__Kind kind = kinds_pick(count > 4 ? fields[4] : "", keywords, sizeof(keywords));
        rc = add_service(self, fields[0], fields[1], "city", keywords, kind);
        if (rc < 0)
            break;
    }
    csv_destroy(&csv);
    return rc < 0 ? rc : 0;
}

/* table,id,value,ticket_kind,latitude,longitude,note */
static int load_la311(catalog_t *self, const char *path, char *err, size_t err_len)
{
    csv_t *csv;
    int rc = csv_open(path, &csv);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(-rc));
        return rc;
    }
    const char *fields[CSV_FIELDS_MAX];
    size_t count;
    while ((rc = csv_next(csv, fields, &count, err, err_len)) == 1) {
        if (count < 7)
            continue;
        if (strcmp(fields[0], "type") == 0) {
            int value = DISPATCH__KIND__KIND_REPORT;
            words_parse(&dispatch__kind__descriptor, fields[3], &value);
            rc = add_service(self, fields[2], fields[6], "la311", fields[3], (Dispatch__Kind)value);
        } else if (strcmp(fields[0], "region") == 0 && *fields[2] && *fields[4] && *fields[5]) {
            rc = grow((void **)&self->centroids, &self->centroid_capacity, self->centroid_count,
                      sizeof(centroid_t));
            if (rc == 0) {
                centroid_t *c = &self->centroids[self->centroid_count++];
                c->lat = strtod(fields[4], NULL);
                c->lon = strtod(fields[5], NULL);
                copy(c->district, sizeof(c->district), fields[2]);
            }
        }
        if (rc < 0)
            break;
    }
    csv_destroy(&csv);
    return rc < 0 ? rc : 0;
}

int catalog_load(const char *data_dir, catalog_t **ret, char *err, size_t err_len)
{
    catalog_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    char path[4096];
    snprintf(path, sizeof(path), "%s/categories.csv", data_dir);
    int rc = load_categories(self, path, err, err_len);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/la311-map.csv", data_dir);
        rc = load_la311(self, path, err, err_len);
    }
    if (rc == 0 && self->service_count == 0) {
        snprintf(err, err_len, "%s: no services", data_dir);
        rc = -EINVAL;
    }
    if (rc < 0) {
        catalog_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void catalog_destroy(catalog_t **self)
{
    if (!self || !*self)
        return;
    free((*self)->services);
    free((*self)->centroids);
    free(*self);
    *self = NULL;
}

size_t catalog_service_count(const catalog_t *self)
{
    return self->service_count;
}

const catalog_service_t *catalog_service_at(const catalog_t *self, size_t i)
{
    return &self->services[i];
}

const catalog_service_t *catalog_service_find(const catalog_t *self, const char *code)
{
    for (size_t i = 0; i < self->service_count; i++)
        if (strcmp(self->services[i].code, code) == 0)
            return &self->services[i];
    return NULL;
}

const char *catalog_nearest_district(const catalog_t *self, double lat, double lon)
{
    const char *best = NULL;
    double best_distance = INFINITY;
    for (size_t i = 0; i < self->centroid_count; i++) {
        const centroid_t *c = &self->centroids[i];
        /* Equirectangular: exact enough to pick the nearest of a city's centroids. */
        double dx = (lon - c->lon) * cos((lat + c->lat) * M_PI / 360.0);
        double dy = lat - c->lat;
        double d = dx * dx + dy * dy;
        if (d < best_distance) {
            best_distance = d;
            best = c->district;
        }
    }
    return best;
}

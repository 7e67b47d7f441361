/* catalog: what the gateway offers as Open311 services and how it places a
 * request in a district.
 *
 * Read once at start from the city's data directory:
 *   - categories.csv (category,name,weight,area_level,kinds): one service
 *     per category, group "city", kind = the kind of the largest weight;
 *   - la311-map.csv, when present: its `type` rows as further services
 *     (group "la311", kind from the row) and its `region` rows' centroids,
 *     each naming a district: a request with coordinates and no district is
 *     placed in the district of the nearest centroid.
 * Services whose code is already listed are skipped (first wins).
 *
 * A loaded catalog is immutable and may be read from any thread.
 * Errors: 0 or negative errno; err says what and where.
 */
#ifndef DISPATCH_GATEWAY_CATALOG_H
#define DISPATCH_GATEWAY_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "dispatch.pb-c.h"

typedef struct catalog catalog_t;

typedef struct catalog_service {
    char code[65];
    char name[129];
    char group[32];
    char keywords[129];  /* comma list: the kinds it is filed as */
    Dispatch__Kind kind; /* what a request of this service is filed as */
} catalog_service_t;

int catalog_load(const char *data_dir, catalog_t **ret, char *err, size_t err_len);
void catalog_destroy(catalog_t **self);

size_t catalog_service_count(const catalog_t *self);
const catalog_service_t *catalog_service_at(const catalog_t *self, size_t i);
/* NULL when no service has this code. */
const catalog_service_t *catalog_service_find(const catalog_t *self, const char *code);

/* The district of the centroid nearest (lat, lon) in degrees; NULL when the
 * catalog has no centroids. */
const char *catalog_nearest_district(const catalog_t *self, double lat, double lon);

#endif

/* city_lists: the city's categories and areas (deploy/data/lists.csv), what
 * a submit's category and area must be one of (docs/protocol.md 4.1), and
 * what CityListsQuery serves.
 *
 * Format: header list,id,district,name; list is "category" (district
 * empty) or "area" (district required: an area belongs to one district).
 * Loaded once at start; read-only after. Strings returned point into the
 * lists and live as long as they do.
 */
#ifndef DISPATCH_INTAKE_CITY_LISTS_H
#define DISPATCH_INTAKE_CITY_LISTS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct city_lists city_lists_t;

typedef struct city_list_entry {
    const char *id, *district, *name;
} city_list_entry_t;

/* 0 and *ret; -errno (the file), -EINVAL with err ("path: line N: ..."). */
int city_lists_load(const char *path, city_lists_t **ret, char *err, size_t err_len);
void city_lists_destroy(city_lists_t **self);

bool city_lists_has_category(const city_lists_t *self, const char *category);
/* The district of an area; NULL when the area is not on the list. */
const char *city_lists_area_district(const city_lists_t *self, const char *area);

/* The entries, sorted by id (areas: by district, then id). */
size_t city_lists_categories(const city_lists_t *self, const city_list_entry_t **ret);
size_t city_lists_areas(const city_lists_t *self, const city_list_entry_t **ret);

#endif

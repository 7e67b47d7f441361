/* sim_data: the city's data files as the unit simulator and the call
 * generator read them (the files tools/citygen.py writes into deploy/data):
 *
 *   units.csv       id,name,parent_id,level,district,active   (the registry)
 *   rules.csv       category,area,lead_unit,assisting_units,priority
 *   categories.csv  category,name,weight,area_level,kinds     (the call mix)
 *   la311-map.csv   table,id,value,ticket_kind,latitude,longitude,note
 *
 * They are parsed with the CSV reader the router uses too (common/csv.h),
 * so a file the router accepts reads the same here. Loaded data is
 * read-only and owned by its object until *_destroy(). Errors are 0 or a
 * negative errno; err (when not NULL) says "path: line N: what".
 */
#ifndef DISPATCH_SIM_DATA_H
#define DISPATCH_SIM_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "dispatch.pb-c.h"

/* --- units.csv --- */

typedef struct sim_unit {
    const char *id;
    const char *name;
    const char *parent;   /* "" at the top */
    const char *district; /* "" for city-level units */
    Dispatch__UnitLevel level;
    bool active;
} sim_unit_t;

typedef struct sim_units sim_units_t;

int sim_units_load(const char *path, sim_units_t **ret, char *err, size_t err_len);
void sim_units_destroy(sim_units_t **self);
size_t sim_units_count(const sim_units_t *self);
const sim_unit_t *sim_units_at(const sim_units_t *self, size_t i);
/* Index of the unit, or -1. */
long sim_units_find(const sim_units_t *self, const char *id);

/* --- rules.csv --- */

/* Calls fn for the lead unit and every assisting unit of every rule (a
 * unit named by several rules comes several times). fn returns 0 to go
 * on, or an error that stops the walk and is returned. */
typedef int (*sim_rule_unit_fn)(const char *unit_id, void *ctx);
int sim_rules_each_unit(const char *path, sim_rule_unit_fn fn, void *ctx, char *err,
                        size_t err_len);

/* --- categories.csv --- */

typedef enum sim_area_level {
    SIM_AREA_ANY = 0, /* a community, a street or none */
    SIM_AREA_STREET,
    SIM_AREA_COMMUNITY,
} sim_area_level_t;

#define SIM_KIND_COUNT 6 /* indexes are Dispatch__Kind values; 0 unused */

typedef struct sim_category {
    char *code; /* "" = unclassified */
    char *name;
    double weight;
    sim_area_level_t area_level;
    double kinds[SIM_KIND_COUNT]; /* weight of each Dispatch__Kind */
} sim_category_t;

/* *ret is a malloc'ed array of *count categories; free with
 * sim_categories_free(). */
int sim_categories_load(const char *path, sim_category_t **ret, size_t *count, char *err,
                        size_t err_len);
void sim_categories_free(sim_category_t *categories, size_t count);

/* --- la311-map.csv --- */

typedef struct sim_la_map sim_la_map_t;

int sim_la_map_load(const char *path, sim_la_map_t **ret, char *err, size_t err_len);
void sim_la_map_destroy(sim_la_map_t **self);
/* Lookups by the Los Angeles ids (decimal text): 0, or -ENOENT. Returned
 * strings belong to the map. */
int sim_la_map_type(const sim_la_map_t *self, const char *type_id, const char **category,
                    Dispatch__Kind *kind, const char **name);
int sim_la_map_source(const sim_la_map_t *self, const char *source_id, Dispatch__Channel *channel);
int sim_la_map_council(const sim_la_map_t *self, const char *council_id, const char **area,
                       const char **district);
int sim_la_map_region(const sim_la_map_t *self, const char *region_id, const char **district);
/* The district of the region whose centroid is nearest (degrees); NULL
 * when the map has no regions. */
const char *sim_la_map_nearest(const sim_la_map_t *self, double latitude, double longitude);

#endif

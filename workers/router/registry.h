/* registry: the units of the hierarchy and the routing rules of one
 * district, in LMDB.
 *
 *   router.units   unit id                          -> dispatch.Unit
 *   router.rules   district NUL category NUL area   -> dispatch.RoutingRule
 *
 * Invariants (kept by the admin checks and the seed loader):
 *  - every stored unit passed registry_check_unit(): id, name and level set,
 *    limits kept, id free of '/' and control characters, and its parent (if
 *    any) is a stored unit that is not itself nor one of its descendants, so
 *    the hierarchy is a forest;
 *  - every stored rule passed registry_check_rule() and belongs to this
 *    registry's district;
 *  - at most one rule per (district, category, area): the key.
 *
 * Routing picks the most specific rule: (category, area) beats the category
 * default (category, ""). Lookups are two point reads.
 *
 * Returned messages are owned by the caller (free with
 * protobuf_c_message_free_unpacked(msg, NULL)). Functions return 0, -ENOENT
 * for an absent record, REFUSED for a failed check (err filled), or
 * another negative code.
 */
#ifndef DISPATCH_ROUTER_REGISTRY_H
#define DISPATCH_ROUTER_REGISTRY_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>

#include "dispatch.pb-c.h"
#include "refusal.h"
#include "store.h"

typedef struct registry registry_t;

int registry_new(store_t *store, const char *district, registry_t **ret);
void registry_destroy(registry_t **self);
const char *registry_district(const registry_t *self);

/* Units. */
int registry_unit_get(registry_t *self, MDB_txn *txn, const char *id, Dispatch__Unit **ret);
/* *usable: the unit exists and is active (it may receive new tickets). */
int registry_unit_usable(registry_t *self, MDB_txn *txn, const char *id, bool *usable);
/* Checks a unit before it is stored; field is the path of the unit in the
 * request ("unit_upsert.unit"). With check_parent, the parent must exist and
 * the change may not make a cycle. */
int registry_check_unit(registry_t *self, MDB_txn *txn, const Dispatch__Unit *unit,
                        bool check_parent, const char *field, refusal_t *err);
int registry_unit_put(registry_t *self, MDB_txn *txn, const Dispatch__Unit *unit);
int registry_unit_delete(registry_t *self, MDB_txn *txn, const char *id);
/* The first unit whose parent is id, or "" (child of size LIMIT_ID + 1). */
int registry_unit_first_child(registry_t *self, MDB_txn *txn, const char *id, char *child);
size_t registry_unit_count(registry_t *self, MDB_txn *txn);

/* Rules (all of this registry's district). */
int registry_check_rule(registry_t *self, MDB_txn *txn, const Dispatch__RoutingRule *rule,
                        const char *field, refusal_t *err);
int registry_rule_put(registry_t *self, MDB_txn *txn, const Dispatch__RoutingRule *rule);
int registry_rule_get(registry_t *self, MDB_txn *txn, const char *category, const char *area,
                      Dispatch__RoutingRule **ret);
int registry_rule_delete(registry_t *self, MDB_txn *txn, const char *category, const char *area);
/* The rule that routes (category, area): the area's own rule, else the
 * category default; -ENOENT when neither exists or category is "". */
int registry_route(registry_t *self, MDB_txn *txn, const char *category, const char *area,
                   Dispatch__RoutingRule **ret);
/* The first rule that names unit_id as lead or assisting unit, as
 * "category/area" in rule (size 2 * LIMIT_ID + 2), or "". */
int registry_rule_naming(registry_t *self, MDB_txn *txn, const char *unit_id, char *rule);
size_t registry_rule_count(registry_t *self, MDB_txn *txn);

/* Seed files (header lines are required):
 *   units.csv  id,name,parent_id,level,district,active
 *              level: city|district|street|community|bureau|enterprise; active: 1|0
 *   rules.csv  category,area,lead_unit,assisting_units,priority
 *              assisting_units separated by ';'; area "" = the category default;
 *              priority: a 32-bit integer, "" = 0
 * Each record is checked like an admin request. A units file may list a
 * parent after its children; every parent must be in the registry when the
 * file is loaded. A rules file's units must be in the registry. Two rules
 * with the same key: the higher priority is kept (on a tie the smaller lead
 * unit). On error err says "line N: ..." and the caller aborts the txn. */
int registry_load_units_csv(registry_t *self, MDB_txn *txn, const char *path, char *err,
                            size_t err_len);
int registry_load_rules_csv(registry_t *self, MDB_txn *txn, const char *path, char *err,
                            size_t err_len);

/* Rule keeping. Every rule (key order: category, then area) or every
 * unit (id order) to fn until it returns non-zero (< 0: returned). A rule
 * given to registry_rules_each's fn is the caller's to free. */
typedef int (*registry_rule_fn)(Dispatch__RoutingRule *rule, void *ctx);
int registry_rules_each(registry_t *self, MDB_txn *txn, registry_rule_fn fn, void *ctx);
typedef int (*registry_unit_fn)(const Dispatch__Unit *unit, void *ctx);
int registry_units_each(registry_t *self, MDB_txn *txn, registry_unit_fn fn, void *ctx);
/* Reads a rules file without checking it against the registry: each
 * record (the registry's district; strings valid during the call) to fn
 * with its line number. */
typedef int (*registry_rule_line_fn)(const Dispatch__RoutingRule *rule, unsigned long line,
                                     void *ctx);
int registry_read_rules_csv(registry_t *self, const char *path, registry_rule_line_fn fn, void *ctx,
                            char *err, size_t err_len);
/* Loads a units file over the registry: new units added, listed ones
 * replaced when they differ (none removed); parents checked after. */
int registry_reload_units_csv(registry_t *self, MDB_txn *txn, const char *path, size_t *added,
                              size_t *changed, char *err, size_t err_len);

/* Unit levels by name ("street") and back; UNSPECIFIED when unknown. */

#endif

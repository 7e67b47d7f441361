/* sim_map: string keys to uint32 values (ticket id -> ticket slot), for the
 * unit simulator and the call generator.
 *
 * Open addressing with linear probing, grown to stay at most half full.
 * Keys are copied. There is no removal: the tools keep every ticket they
 * have seen for their run.
 */
#ifndef DISPATCH_SIM_MAP_H
#define DISPATCH_SIM_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_map sim_map_t;

int sim_map_new(sim_map_t **ret);
void sim_map_destroy(sim_map_t **self);
/* 0, -EEXIST (the key is there; the value is not changed) or -ENOMEM. */
int sim_map_put(sim_map_t *self, const char *key, uint32_t value);
/* 0 and *value, or -ENOENT. */
int sim_map_get(const sim_map_t *self, const char *key, uint32_t *value);
size_t sim_map_size(const sim_map_t *self);

#endif

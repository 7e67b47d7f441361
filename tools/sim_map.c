#include "sim_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot {
    char *key; /* NULL = empty */
    uint32_t value;
} slot_t;

struct sim_map {
    slot_t *slots;
    size_t count, capacity; /* capacity: a power of two */
};

static uint64_t hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

int sim_map_new(sim_map_t **ret)
{
    sim_map_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->capacity = 1024;
    self->slots = calloc(self->capacity, sizeof(slot_t));
    if (!self->slots) {
        free(self);
        return -ENOMEM;
    }
    *ret = self;
    return 0;
}

void sim_map_destroy(sim_map_t **self)
{
    sim_map_t *map = *self;
    if (!map)
        return;
    for (size_t i = 0; i < map->capacity; i++)
        free(map->slots[i].key);
    free(map->slots);
    free(map);
    *self = NULL;
}

static slot_t *find(const sim_map_t *self, const char *key)
{
    size_t mask = self->capacity - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
        slot_t *slot = &self->slots[i];
        if (!slot->key || strcmp(slot->key, key) == 0)
            return slot;
    }
}

static int grow(sim_map_t *self)
{
    sim_map_t bigger = {.capacity = self->capacity * 2};
    bigger.slots = calloc(bigger.capacity, sizeof(slot_t));
    if (!bigger.slots)
        return -ENOMEM;
    for (size_t i = 0; i < self->capacity; i++)
        if (self->slots[i].key)
            *find(&bigger, self->slots[i].key) = self->slots[i];
    free(self->slots);
    self->slots = bigger.slots;
    self->capacity = bigger.capacity;
    return 0;
}

int sim_map_put(sim_map_t *self, const char *key, uint32_t value)
{
    if ((self->count + 1) * 2 > self->capacity && grow(self) < 0)
        return -ENOMEM;
    slot_t *slot = find(self, key);
    if (slot->key)
        return -EEXIST;
    slot->key = strdup(key);
    if (!slot->key)
        return -ENOMEM;
    slot->value = value;
    self->count++;
    return 0;
}

int sim_map_get(const sim_map_t *self, const char *key, uint32_t *value)
{
    const slot_t *slot = find(self, key);
    if (!slot->key)
        return -ENOENT;
    *value = slot->value;
    return 0;
}

size_t sim_map_size(const sim_map_t *self)
{
    return self->count;
}

#include "sim_heap.h"

#include <errno.h>
#include <stdlib.h>

#include "sim_array.h"

struct sim_heap {
    sim_timer_t *timers;
    size_t count, capacity;
};

int sim_heap_new(sim_heap_t **ret)
{
    sim_heap_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    *ret = self;
    return 0;
}

void sim_heap_destroy(sim_heap_t **self)
{
    if (!*self)
        return;
    free((*self)->timers);
    free(*self);
    *self = NULL;
}

static int earlier(const sim_timer_t *a, const sim_timer_t *b)
{
    return a->due < b->due || (a->due == b->due && a->item < b->item);
}

int sim_heap_push(sim_heap_t *self, int64_t due, uint32_t item, uint32_t generation)
{
    int rc =
        sim_array_reserve(&self->timers, self->count, &self->capacity, sizeof(*self->timers), 256);
    if (rc < 0)
        return rc;
    size_t i = self->count++;
    sim_timer_t timer = {due, item, generation};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(&timer, &self->timers[parent]))
            break;
        self->timers[i] = self->timers[parent];
        i = parent;
    }
    self->timers[i] = timer;
    return 0;
}

int sim_heap_peek(const sim_heap_t *self, sim_timer_t *ret)
{
    if (self->count == 0)
        return 0;
    *ret = self->timers[0];
    return 1;
}

int sim_heap_pop(sim_heap_t *self, sim_timer_t *ret)
{
    if (self->count == 0)
        return 0;
    *ret = self->timers[0];
    sim_timer_t last = self->timers[--self->count];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->count)
            break;
        if (child + 1 < self->count && earlier(&self->timers[child + 1], &self->timers[child]))
            child++;
        if (!earlier(&self->timers[child], &last))
            break;
        self->timers[i] = self->timers[child];
        i = child;
    }
    if (self->count > 0)
        self->timers[i] = last;
    return 1;
}

size_t sim_heap_size(const sim_heap_t *self)
{
    return self->count;
}

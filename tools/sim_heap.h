/* sim_heap: timers of the unit simulator and the call generator, a binary
 * min-heap of (due, item, generation).
 *
 * Invariant: every entry's due is >= its parent's. A timer is never removed
 * from the middle: its owner bumps the item's generation instead, and
 * sim_heap_pop() hands back stale entries, which the owner recognises by
 * the generation and skips. Memory: the heap grows as needed and is freed
 * by sim_heap_destroy().
 */
#ifndef DISPATCH_SIM_HEAP_H
#define DISPATCH_SIM_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_heap sim_heap_t;

typedef struct sim_timer {
    int64_t due;
    uint32_t item;
    uint32_t generation;
} sim_timer_t;

int sim_heap_new(sim_heap_t **ret);
void sim_heap_destroy(sim_heap_t **self);
/* 0 or -ENOMEM. */
int sim_heap_push(sim_heap_t *self, int64_t due, uint32_t item, uint32_t generation);
/* The earliest timer without removing it; 0 when the heap is empty. */
int sim_heap_peek(const sim_heap_t *self, sim_timer_t *ret);
/* Removes and returns the earliest timer; 0 when the heap is empty. */
int sim_heap_pop(sim_heap_t *self, sim_timer_t *ret);
size_t sim_heap_size(const sim_heap_t *self);

#endif

/* sim_array: the simulators' growing arrays (calls, tickets, sessions,
 * units, timers): room for one more item, by doubling.
 *
 * The array is a plain pointer and two counts its owner keeps: `count`
 * items in use, `capacity` allocated. The owner frees it with free().
 */
#ifndef DISPATCH_SIM_ARRAY_H
#define DISPATCH_SIM_ARRAY_H

#include <stddef.h>

/* items points to the array's pointer (e.g. &self->units). When count ==
 * *capacity, grows the array to twice its capacity (at first `first`
 * items) and updates both. 0, or -ENOMEM with the array as it was. */
int sim_array_reserve(void *items, size_t count, size_t *capacity, size_t item_size, size_t first);

#endif

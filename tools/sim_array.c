#include "sim_array.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sim_array_reserve(void *items, size_t count, size_t *capacity, size_t item_size, size_t first)
{
    if (count < *capacity)
        return 0;
    size_t grown_capacity = *capacity ? *capacity * 2 : first;
    /* The caller's pointer is copied, not cast: it may be of any object
     * pointer type. */
    void *array;
    memcpy(&array, items, sizeof(array));
    void *grown = realloc(array, grown_capacity * item_size);
    if (!grown)
        return -ENOMEM;
    memcpy(items, &grown, sizeof(grown));
    *capacity = grown_capacity;
    return 0;
}

/* arena: the memory of one reply, freed together.
 *
 * Replies of the audit are built from many small pieces (rows, records,
 * masked events). Each piece is allocated here or adopted with its own free
 * function; arena_reset() frees them all, newest first. A reply therefore
 * lives until the arena is reset (the audit does that at its next request).
 *
 * Invariant: every pointer handed out since the last reset is live, and is
 * freed exactly once, by the next reset or by arena_destroy().
 */
#ifndef DISPATCH_AUDIT_ARENA_H
#define DISPATCH_AUDIT_ARENA_H

#include <stddef.h>

typedef struct arena arena_t;

int arena_new(arena_t **ret);
void arena_destroy(arena_t **self);

/* size zeroed bytes, or NULL (out of memory). */
void *arena_alloc(arena_t *self, size_t size);
/* A copy of text, or NULL. */
char *arena_strdup(arena_t *self, const char *text);
/* ptr is freed with free_fn(ptr) at the next reset. On failure (-ENOMEM)
 * ptr is freed at once. */
int arena_adopt(arena_t *self, void *ptr, void (*free_fn)(void *));
void arena_reset(arena_t *self);

#endif

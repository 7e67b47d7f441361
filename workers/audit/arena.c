/* arena: see arena.h. A singly linked list of owned pointers. */
#include "arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct piece {
    struct piece *next;
    void *ptr;
    void (*free_fn)(void *);
} piece_t;

struct arena {
    piece_t *pieces;
};

int arena_new(arena_t **ret)
{
    *ret = calloc(1, sizeof(**ret));
    return *ret ? 0 : -ENOMEM;
}

void arena_destroy(arena_t **self)
{
    if (!*self)
        return;
    arena_reset(*self);
    free(*self);
    *self = NULL;
}

int arena_adopt(arena_t *self, void *ptr, void (*free_fn)(void *))
{
    piece_t *piece = malloc(sizeof(*piece));
    if (!piece) {
        free_fn(ptr);
        return -ENOMEM;
    }
    *piece = (piece_t){.next = self->pieces, .ptr = ptr, .free_fn = free_fn};
    self->pieces = piece;
    return 0;
}

void *arena_alloc(arena_t *self, size_t size)
{
    void *ptr = calloc(1, size ? size : 1);
    if (!ptr || arena_adopt(self, ptr, free) < 0)
        return NULL;
    return ptr;
}

char *arena_strdup(arena_t *self, const char *text)
{
    size_t len = strlen(text);
    char *copy = arena_alloc(self, len + 1);
    if (copy)
        memcpy(copy, text, len);
    return copy;
}

void arena_reset(arena_t *self)
{
    while (self->pieces) {
        piece_t *piece = self->pieces;
        self->pieces = piece->next;
        piece->free_fn(piece->ptr);
        free(piece);
    }
}

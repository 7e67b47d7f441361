/* buspeer: what a tools/bus-peer receiver applied, read back from its
 * store (the process stopped, or still running: LMDB readers share it). */
#ifndef DISPATCH_BUSPEER_H
#define DISPATCH_BUSPEER_H

#include <stdint.h>

typedef struct buspeer_applied {
    uint64_t count;       /* values in peer.applied */
    uint64_t first, last; /* the smallest and largest of them (0 when none) */
    uint64_t holes;       /* values that do not follow the one before */
    uint64_t dups;        /* peer.meta "dups": values applied again */
    uint64_t disorder;    /* peer.meta "disorder": applied out of order */
    uint64_t last_meta;   /* peer.meta "last": the value applied last */
} buspeer_applied_t;

/* Reads the receiver's figures from its state dir; 0 or a negative code. */
int buspeer_applied(const char *state, buspeer_applied_t *ret);

#endif

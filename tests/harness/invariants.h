/* invariants: for the tests of invariant checks (loop.h). A test writes a
 * list of changes in one batch, some of them breaking an invariant on
 * purpose, then asks what a check says about the store.
 */
#ifndef DISPATCH_HARNESS_INVARIANTS_H
#define DISPATCH_HARNESS_INVARIANTS_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>

#include "loop.h"
#include "store.h"

/* Applies change `index` inside the batch's write transaction. */
typedef int (*harness_change_fn)(MDB_txn *txn, size_t index, void *ctx);

/* Applies changes 0 .. count - 1, in order, in one write transaction;
 * returns the first error (nothing is written then) or 0. */
int harness_write_changes(store_t *store, harness_change_fn apply, size_t count, void *ctx);

/* Runs batch_check and then full_check (either may be NULL), each in its
 * own read transaction of store, with ctx. True when each returns expected
 * and, when named is not NULL, its sentence contains named; otherwise
 * false, with what it said on stderr. */
bool harness_checks_say(store_t *store, loop_check_fn batch_check, loop_check_fn full_check,
                        void *ctx, int expected, const char *named);

#endif

#include "invariants.h"

#include <stdio.h>
#include <string.h>

typedef struct changes {
    harness_change_fn apply;
    size_t count;
    void *ctx;
} changes_t;

static int write_fn(MDB_txn *txn, void *ctx)
{
    const changes_t *changes = ctx;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < changes->count; i++)
        rc = changes->apply(txn, i, changes->ctx);
    return rc;
}

int harness_write_changes(store_t *store, harness_change_fn apply, size_t count, void *ctx)
{
    changes_t changes = {apply, count, ctx};
    return store_write(store, write_fn, &changes);
}

static bool check_says(store_t *store, loop_check_fn check, void *ctx, int expected,
                       const char *named)
{
    MDB_txn *txn;
    int rc = store_read_begin(store, &txn);
    if (rc < 0) {
        fprintf(stderr, "harness_checks_say: read transaction: %s\n", store_strerror(rc));
        return false;
    }
    char why[512] = "";
    rc = check(ctx, txn, why, sizeof(why));
    store_read_end(&txn);
    if (rc == expected && (!named || strstr(why, named)))
        return true;
    fprintf(stderr, "the check returned %d (%s), saying \"%s\"; expected %d%s%s%s\n", rc,
            rc ? store_strerror(rc) : "holds", why, expected, named ? " saying \"" : "",
            named ? named : "", named ? "\"" : "");
    return false;
}

bool harness_checks_say(store_t *store, loop_check_fn batch_check, loop_check_fn full_check,
                        void *ctx, int expected, const char *named)
{
    return (!batch_check || check_says(store, batch_check, ctx, expected, named)) &&
           (!full_check || check_says(store, full_check, ctx, expected, named));
}

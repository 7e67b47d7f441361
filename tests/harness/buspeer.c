#include "buspeer.h"

#include "store.h"

int buspeer_applied(const char *state, buspeer_applied_t *ret)
{
    *ret = (buspeer_applied_t){0};
    store_t *store;
    int rc = store_open(state, NULL, &store);
    if (rc < 0)
        return rc;
    MDB_dbi applied, meta;
    MDB_txn *txn = NULL;
    rc = store_dbi(store, "peer.applied", 0, &applied);
    if (rc == 0)
        rc = store_dbi(store, "peer.meta", 0, &meta);
    if (rc == 0)
        rc = store_read_begin(store, &txn);
    if (rc == 0)
        rc = store_get_u64(txn, meta, "dups", 4, 0, &ret->dups);
    if (rc == 0)
        rc = store_get_u64(txn, meta, "disorder", 8, 0, &ret->disorder);
    if (rc == 0)
        rc = store_get_u64(txn, meta, "last", 4, 0, &ret->last_meta);
    MDB_cursor *cursor = NULL;
    if (rc == 0)
        rc = store_rc(mdb_cursor_open(txn, applied, &cursor));
    if (rc == 0) {
        MDB_val k, v;
        for (int op = MDB_FIRST; mdb_cursor_get(cursor, &k, &v, op) == 0; op = MDB_NEXT) {
            uint64_t value = store_u64_decode(k.mv_data);
            if (ret->count == 0)
                ret->first = value;
            else if (value != ret->last + 1)
                ret->holes++;
            ret->last = value;
            ret->count++;
        }
        mdb_cursor_close(cursor);
    }
    store_read_end(&txn);
    store_destroy(&store);
    return rc;
}

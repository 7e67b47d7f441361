/* The seed files: the CSV reader itself, then the router's unit registry
 * and routing rules loaded from the same bytes (csv.h, registry.h). */
#include <stdio.h>

#include <errno.h>

#include "csv.h"
#include "fuzz.h"
#include "router.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    scratch_city_t *city = scratch_city();
    char path[700], err[512];
    scratch_write_file("fuzz.csv", data, size, path, sizeof(path));

    csv_t *csv;
    if (csv_open(path, &csv) == 0) {
        const char *fields[CSV_FIELDS_MAX];
        size_t count;
        while (csv_next(csv, fields, &count, err, sizeof(err)) > 0)
            csv_line(csv);
        csv_destroy(&csv);
    }

    MDB_txn *txn = scratch_begin(&city->router);
    router_batch_begin(city->router_app);
    router_load_units_csv(city->router_app, txn, path, err, sizeof(err));
    scratch_abort(&city->router, &txn);
    router_batch_done(city->router_app, -ECANCELED, NULL, NULL);

    txn = scratch_begin(&city->router);
    router_batch_begin(city->router_app);
    router_load_rules_csv(city->router_app, txn, path, err, sizeof(err));
    scratch_abort(&city->router, &txn);
    router_batch_done(city->router_app, -ECANCELED, NULL, NULL);
    return 0;
}

/* audit: the worker around the log (trail.c), the projections (kpi.c) and
 * the stream (stream.c). See audit.h for the guarantees.
 *
 * Batches: the bus applies events inside the loop's write transaction
 * (audit_apply_event; restartable, every effect goes through the txn).
 * The loop's done() then, after the commit, publishes the records between
 * the last one published and the committed head, and answers the queries
 * queued in this iteration from a read transaction: queries never write,
 * and a replay sees every record of the batch that just committed.
 */
#include "audit_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"

void audit_options_init(audit_options_t *options)
{
    *options = (audit_options_t){0};
    kpi_options_init(&options->kpi);
}

int audit_new(store_t *store, const audit_options_t *options, audit_t **ret)
{
    audit_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -ENOMEM;
    self->store = store;
    if (options)
        self->options = *options;
    else
        audit_options_init(&self->options);
    int rc = 0;
    const char *tz = self->options.timezone;
    if (tz) {
        rc = ids_check_timezone(tz);
        const char *current = getenv("TZ");
        if (rc == 0 && (!current || strcmp(current, tz) != 0)) {
            rc = setenv("TZ", tz, 1) == 0 ? 0 : -errno;
            tzset();
        }
        self->options.timezone = NULL; /* the string is the caller's */
    }
    if (rc == 0)
        rc = arena_new(&self->arena);
    if (rc == 0)
        rc = trail_new(store, &self->trail);
    if (rc == 0)
        rc = kpi_new(store, &self->options.kpi, &self->kpi);
    if (rc == 0)
        rc = store_dbi(store, "audit.events", 0, &self->events);
    if (rc < 0) {
        audit_destroy(&self);
        return rc;
    }
    *ret = self;
    return 0;
}

void audit_destroy(audit_t **self)
{
    audit_t *audit = *self;
    if (!audit)
        return;
    endpoint_destroy(&audit->endpoint);
    stream_destroy(&audit->stream);
    arena_destroy(&audit->arena);
    trail_destroy(&audit->trail);
    kpi_destroy(&audit->kpi);
    linkview_free(&audit->links);
    free(audit);
    *self = NULL;
}

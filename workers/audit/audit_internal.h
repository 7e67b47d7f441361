/* audit_internal: what the audit's files share (audit.c: construction;
 * audit_events.c: recording; audit_requests.c: queries; audit_service.c:
 * the loop and the stream). */
#ifndef DISPATCH_AUDIT_INTERNAL_H
#define DISPATCH_AUDIT_INTERNAL_H

#include <stdbool.h>

#include "arena.h"
#include "audit.h"
#include "endpoint.h"
#include "kpi.h"
#include "linkview.h"
#include "stream.h"
#include "trail.h"

struct audit {
    store_t *store;
    audit_options_t options;
    trail_t *trail;
    kpi_t *kpi;
    MDB_dbi events;
    arena_t *arena; /* the last reply */

    /* The worker loop's part; NULL / unused when handlers are called
     * directly. */
    endpoint_t *endpoint;
    bus_t *bus;       /* answers LinksQuery and LinkAccept */
    linkview_t links; /* the last LinksView */
    stream_t *stream;
    uint64_t published; /* highest seq put on the stream */
    bool appended;      /* the bus applied events in this iteration */
};

#endif

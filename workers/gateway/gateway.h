/* gateway: the HTTP front door of a city (DESIGN.md section 1).
 *
 * One process serves, on one HTTP port:
 *   - Open311 GeoReport v2 (open311.c): services, requests, in JSON; XML
 *     answers 501;
 *   - Prometheus metrics (metrics.c): GET /metrics;
 *   - the big screen (screen.c): GET /screen, its live feed
 *     /screen/events (Server-Sent Events from the audit stream), its KPIs
 *     /screen/kpi.json.
 * It is a client of intake and audit with its own CURVE key (the actor
 * `name`), through their client endpoints; it holds no ticket of its own
 * (board.h is a table rebuilt from the audit log at each start).
 *
 * Threads: libmicrohttpd runs one thread per connection; calls to intake
 * and audit go through pools of clients, each client used by one thread at
 * a time.
 */
#ifndef DISPATCH_GATEWAY_H
#define DISPATCH_GATEWAY_H

#include <stdint.h>

typedef struct gateway gateway_t;

typedef struct gateway_options {
    const char *config_path;  /* the topology (required) */
    const char *name;         /* the gateway's key actor; default "gateway" */
    const char *listen;       /* "ADDRESS:PORT", port 0 = any; default "127.0.0.1:0" */
    const char *api_keys;     /* file of "<api_key> <client_id>" lines (required) */
    const char *data_dir;     /* categories.csv, la311-map.csv; default "deploy/data" */
    const char *web_dir;      /* the big screen's files; default: built-in path */
    const char *jurisdiction; /* Open311 jurisdiction_id; default: the city's name */
    int timeout_ms;           /* one call to intake or audit; default 5000 */
    unsigned max_connections; /* default 256 */
} gateway_options_t;

/* Loads, connects, binds and starts serving. err says why it could not. */
int gateway_new(const gateway_options_t *options, gateway_t **ret, char *err, size_t err_len);
/* The port it listens on. */
uint16_t gateway_port(const gateway_t *self);
void gateway_destroy(gateway_t **self);

#endif

/* gateway_private: what the gateway's handlers share (gateway.c,
 * open311.c, metrics.c, screen.c). Nothing outside workers/gateway
 * includes it. */
#ifndef DISPATCH_GATEWAY_PRIVATE_H
#define DISPATCH_GATEWAY_PRIVATE_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apikeys.h"
#include "auth.h"
#include "board.h"
#include "catalog.h"
#include "client.h"
#include "config.h"
#include "gateway.h"

/* Bodies over this are refused with 413 (the intake's own limit is 64 KiB
 * of protobuf; a form says the same in fewer bytes). */
#define GATEWAY_BODY_MAX (64 * 1024)
#define GATEWAY_POOL 16

/* A pool of clients of one server: each call takes a free one. */
typedef struct gateway_pool {
    char url[256];
    auth_client_t curve;
    bool has_curve;
    client_t *clients[GATEWAY_POOL];
    pthread_mutex_t locks[GATEWAY_POOL];
    atomic_uint next;
} gateway_pool_t;

typedef struct gateway_intake {
    char name[64];
    char prefix[16]; /* id_prefix; "" when the topology gives none */
    gateway_pool_t pool;
} gateway_intake_t;

/* Histogram buckets of request handling in seconds (metrics.c). */
#define GATEWAY_BUCKETS 10
extern const double gateway_buckets[GATEWAY_BUCKETS];

typedef enum gateway_route {
    GATEWAY_ROUTE_SERVICES,
    GATEWAY_ROUTE_SERVICE,
    GATEWAY_ROUTE_REQUESTS,
    GATEWAY_ROUTE_REQUEST,
    GATEWAY_ROUTE_METRICS,
    GATEWAY_ROUTE_SCREEN,
    GATEWAY_ROUTE_OTHER,
    GATEWAY_ROUTE_COUNT,
} gateway_route_t;

typedef struct gateway_route_stats {
    atomic_uint_fast64_t by_class[6]; /* responses 1xx..5xx, index = status / 100 */
    atomic_uint_fast64_t buckets[GATEWAY_BUCKETS + 1];
    atomic_uint_fast64_t micros; /* sum of handling time */
} gateway_route_stats_t;

struct gateway {
    gateway_options_t options;
    char name[AUTH_NAME_MAX + 1];
    char jurisdiction[128];
    char web_dir[1024];
    config_t *config;
    void *zmq;
    catalog_t *catalog;
    apikeys_t *apikeys;
    board_t *board;
    gateway_intake_t *intakes;
    size_t intake_count;
    gateway_pool_t audit;
    char audit_publish[256];
    bool has_audit;
    struct MHD_Daemon *daemon;
    uint16_t port;
    gateway_route_stats_t routes[GATEWAY_ROUTE_COUNT];
    atomic_uint_fast64_t submits, submit_retries, refusals, upstream_errors;
    atomic_uint_fast64_t screen_streams;
    atomic_bool stopping; /* streams end when set */
};

/* One call through a pool: 0, or the client's negative codes. */
int gateway_pool_call(gateway_t *self, gateway_pool_t *pool, const ProtobufCMessage *request,
                      const ProtobufCMessageDescriptor *reply_descriptor, ProtobufCMessage **reply);

/* The intake a ticket id belongs to (by its prefix); the first otherwise. */
gateway_intake_t *gateway_intake_for(gateway_t *self, const char *ticket_id);

/* Responses: each queues one and returns what the access handler returns.
 * gateway_respond_json steals `body`. */
enum MHD_Result gateway_respond(struct MHD_Connection *connection, unsigned status,
                                const char *content_type, const void *data, size_t len);
enum MHD_Result gateway_respond_json(struct MHD_Connection *connection, unsigned status,
                                     json_t *body);
/* Open311's error array: [{"code": status, "description": ...}]. */
enum MHD_Result gateway_respond_error(struct MHD_Connection *connection, unsigned status,
                                      const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Unix ms -> "2026-11-29T10:00:00Z" (W3C, UTC) into buf. */
void gateway_format_time(int64_t ms, char *buf, size_t len);
/* W3C date or date-time -> unix ms: 0 or -EINVAL. */
int gateway_parse_time(const char *text, int64_t *ms);
/* Whether a ticket in state is done for the public (resolved, closed,
 * merged or transferred): Open311's "closed", off the screen's open list. */
bool gateway_ticket_closed(Dispatch__TicketState state);

/* Request parameters: the query string and the body (form or JSON). */
typedef struct gateway_params gateway_params_t;
const char *gateway_param(const gateway_params_t *params, const char *name);

/* open311.c */
enum MHD_Result open311_services(gateway_t *self, struct MHD_Connection *connection);
enum MHD_Result open311_service(gateway_t *self, struct MHD_Connection *connection,
                                const char *code);
enum MHD_Result open311_post_request(gateway_t *self, struct MHD_Connection *connection,
                                     const gateway_params_t *params);
enum MHD_Result open311_get_requests(gateway_t *self, struct MHD_Connection *connection,
                                     const gateway_params_t *params);
enum MHD_Result open311_get_request(gateway_t *self, struct MHD_Connection *connection,
                                    const char *id);
/* Whether jurisdiction_id, when given, is this city's; else responds. */
bool open311_jurisdiction_ok(gateway_t *self, const gateway_params_t *params);

/* metrics.c */
enum MHD_Result metrics_serve(gateway_t *self, struct MHD_Connection *connection);
/* A worker of the topology as /metrics shows it: its answer to the
 * gateway's StatsQuery (NULL: it did not answer) and how long it took. */
typedef struct metrics_worker {
    const config_worker_t *worker;
    const Dispatch__WorkerStats *stats;
    double seconds;
} metrics_worker_t;
/* The figures of count workers, in the Prometheus text format, to out. */
void metrics_workers(FILE *out, const metrics_worker_t *workers, size_t count);

#endif

/* Shared pieces of the intake + router integration tests: a client of the
 * intake and of the routers' admin endpoints, and a pool of unit sessions
 * (common/unit_session.h: one main session per unit, as each unit's own
 * desk client connects). */
#ifndef DISPATCH_TEST_H
#define DISPATCH_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "city.h"
#include "client.h"
#include "dispatch.pb-c.h"
#include "unit_session.h"

#define TEST_TIMEOUT_MS 10000

/* Submits through a fresh REQ-like call; returns the reply (caller frees). */
Dispatch__Reply *test_call_intake(client_t *intake, Dispatch__Request *request);
Dispatch__SubmitReply *test_submit(client_t *intake, const char *request_id, const char *district,
                                   const char *category, const char *area, const char *phone,
                                   const char *address, Dispatch__Reply **keep);
Dispatch__TicketView *test_get(client_t *intake, const char *ticket_id, Dispatch__Reply **keep);
/* Repeats GetTicket until the ticket is in state (or the deadline passes);
 * returns true when it is. */
bool test_wait_state(client_t *intake, const char *ticket_id, Dispatch__TicketState state);
bool test_history_has(const Dispatch__TicketView *view, Dispatch__EventType type);
Dispatch__AdminReply *test_admin(client_t *router, const char *actor, Dispatch__Role role,
                                 Dispatch__AdminRequest *request);

/* The keys of actor (one of the city's test actors, city.h) toward the
 * worker serving url; NULL for a plain city. Fails the test when missing.
 * Points to static storage (four in turn): use it at once. */
const auth_client_t *test_keys(const city_t *city, const char *actor, const char *url);

/* A pool of unit sessions on one router's unit endpoint. */
typedef struct unit_pool unit_pool_t;
typedef void (*unit_delivery_fn)(void *ctx, const char *unit, const Dispatch__UnitDelivery *d);

/* Sessions connect with the city's "units" gateway key. */
int unit_pool_new(void *zmq_context, const city_t *city, size_t capacity, unit_pool_t **ret);
void unit_pool_destroy(unit_pool_t **self);
/* Connects unit's main session and acks `acked` (0 on a first connect). */
int unit_pool_connect(unit_pool_t *self, const char *url, const char *unit, uint64_t acked);
/* Closes a unit's session (the unit goes offline). */
void unit_pool_disconnect(unit_pool_t *self, const char *unit);
/* Receives for up to wait_ms; each new delivery (seq = what the unit
 * applied + 1) goes to fn and is acked; a resent one is dropped. A session
 * silent for a second sends its ack again as a heartbeat, as unit clients
 * do. Returns the number of new deliveries. */
size_t unit_pool_poll(unit_pool_t *self, int wait_ms, unit_delivery_fn fn, void *ctx);
uint64_t unit_pool_applied(const unit_pool_t *self, const char *unit);
/* Over the pool's open sessions: sequenced deliveries dropped as already
 * applied (resent), and as beyond the next one (gaps). */
/* The unit's open session (to act with), or NULL. */
unit_session_t *unit_pool_session(unit_pool_t *self, const char *unit);
uint64_t unit_pool_duplicates(const unit_pool_t *self);
uint64_t unit_pool_gaps(const unit_pool_t *self);

/* Runs dispatchctl ($DISPATCHCTL) with the arguments that follow
 * (NULL-terminated); its stdout goes to out. Returns its exit code. */
int test_ctl(char *out, size_t out_len, ...);
/* The topology test_ctl() gives dispatchctl (--config: where the city's
 * keys are, whose endpoint is whose); it runs as actor "tester", the
 * city's key of every role. NULL = none. */
void test_ctl_config(const char *topology);

/* A file of deploy/data ($DEPLOY_DATA) as text, for a city's data files;
 * aborts the test when it cannot be read or is empty. The caller frees it. */
char *test_deploy_data(const char *name);

#endif

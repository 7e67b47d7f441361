/* follower: a subscriber that sees every record of the audit stream, in
 * order, exactly once (the ZeroMQ "clone" pattern, docs/protocol.md 7.3).
 *
 * It subscribes first (SUB to the stream, topic ""), then replays from the
 * seq it wants next over the request endpoint until the log has nothing
 * more; live records are then taken in order, duplicates dropped, and a
 * live record beyond the next seq (the PUB dropped some at its high-water
 * mark) makes it replay the gap first. When nothing waits on the stream
 * it asks by replay (at most every 200 ms) whether records it missed at
 * the tail exist.
 *
 * Invariant between calls: every record with seq < next_seq has been
 * returned once, none after it.
 *
 * A client of the audit's stream and replay endpoints (docs/protocol.md 7.1,
 * 7.3); used by `dispatchctl tail`, the integration tests and the replay
 * benchmark. Nothing here logs.
 * Errors: 0 or negative (client.h codes; -ETIMEDOUT when no record came).
 */
#ifndef DISPATCH_FOLLOWER_H
#define DISPATCH_FOLLOWER_H

#include <stdint.h>

#include "auth.h"
#include "dispatch.pb-c.h"

typedef struct follower follower_t;

typedef struct follower_options {
    uint64_t from_seq;     /* first seq wanted; 0 = only records appended from now on */
    int rcvhwm;            /* the SUB's ZMQ_RCVHWM; 0 = ZeroMQ's default */
    int call_timeout_ms;   /* one replay call; 0 = 5000 */
    uint32_t replay_limit; /* records per replay request; 0 = 1000 */
    /* Keys for the audit's stream and request endpoints (one server key);
     * NULL = plain. Copied by follower_new(). */
    const auth_client_t *curve;
} follower_options_t;

typedef struct follower_stats {
    uint64_t live;       /* records taken from the stream */
    uint64_t replayed;   /* records taken from replies */
    uint64_t replays;    /* replay requests */
    uint64_t gaps;       /* live records that showed a gap */
    uint64_t duplicates; /* records dropped as already returned */
} follower_stats_t;

int follower_new(void *zmq_context, const char *publish_url, const char *request_url,
                 const follower_options_t *options, follower_t **ret);
void follower_destroy(follower_t **self);

/* The next record, waiting up to wait_ms for the stream. *ret is owned by
 * the follower and valid until the next call. */
int follower_next(follower_t *self, int wait_ms, const Dispatch__AuditRecord **ret);

/* The seq the next record will have; the log's last seq as last seen. */
uint64_t follower_next_seq(const follower_t *self);
uint64_t follower_last_seq(const follower_t *self);
void follower_stats(const follower_t *self, follower_stats_t *stats);

#endif

/* board: what the gateway knows of the city's tickets, read from the audit
 * stream (the follower's clone pattern: nothing missed, nothing twice).
 *
 * A thread follows the audit log from seq 1 and folds every record into a
 * table of tickets (id, service, district, state, times, coordinates): the
 * lists of GET /requests.json and the figures of /metrics come from it.
 * The table lives in memory only; it is rebuilt from the audit log at each
 * start, so the gateway holds no state of its own. Personal data never
 * enters it (the stream is masked, and the table keeps no names, phones,
 * addresses or text).
 *
 * Invariant: the table reflects exactly the records with seq < board_seq();
 * every read takes the board's lock, so a reader sees a whole record's effect
 * or none of it.
 *
 * Errors: 0 or negative errno.
 */
#ifndef DISPATCH_GATEWAY_BOARD_H
#define DISPATCH_GATEWAY_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "dispatch.pb-c.h"

typedef struct board board_t;

typedef struct board_ticket {
    char id[65];
    char category[65];
    char district[65];
    char area[65];
    Dispatch__TicketState state;
    Dispatch__Channel channel;
    Dispatch__Kind kind;
    Dispatch__Urgency urgency;
    int64_t registered_at;
    int64_t updated_at;
    int32_t lat_e6, lon_e6;
    bool has_point;
    bool overdue;    /* a deadline passed and the ticket is not yet resolved */
    bool registered; /* its TicketRegistered was read (events may come first) */
} board_ticket_t;

/* Starts following; publish_url and request_url are the audit's; days are
 * those of time_zone (the city's). */
int board_new(void *zmq_context, const char *publish_url, const char *request_url,
              const auth_client_t *curve, const char *time_zone, board_t **ret);
void board_destroy(board_t **self);

/* The seq the next record will have (records before it are folded in). */
uint64_t board_next_seq(board_t *self);
/* Waits until board_next_seq() > seq: 0 or -ETIMEDOUT. */
int board_wait(board_t *self, uint64_t seq, int timeout_ms);

/* Copies the ticket id into *ret: 0 or -ENOENT. */
int board_find(board_t *self, const char *id, board_ticket_t *ret);

/* Calls fn for each ticket (registration order) under the board's lock;
 * fn returns false to stop. fn must not call back into the board. Returns
 * board_next_seq() as it was for this walk. */
uint64_t board_each(board_t *self, bool (*fn)(void *ctx, const board_ticket_t *ticket), void *ctx);

/* The first seq whose event falls on the newest city day seen (by
 * Event.at); 0 before any record. A page of today's figures reads the log
 * from there instead of from seq 1. */
uint64_t board_day_first_seq(board_t *self);

typedef struct board_stats {
    uint64_t records;       /* records folded in */
    uint64_t tickets;       /* tickets known */
    uint64_t live;          /* records taken from the stream */
    uint64_t replayed;      /* records taken from replay */
    uint64_t errors;        /* follower errors (other than timeouts) */
    int64_t last_record_at; /* recorded_at of the last record, unix ms */
} board_stats_t;
void board_stats(board_t *self, board_stats_t *ret);

/* Events recorded per emitting worker (Event.origin) and event (the member
 * of Event.body): calls fn for each nonzero count, under the lock. At most
 * BOARD_ORIGINS_MAX origins are told apart; the rest count as "other". */
#define BOARD_ORIGINS_MAX 64
void board_each_event_count(board_t *self,
                            void (*fn)(void *ctx, const char *origin,
                                       Dispatch__Event__BodyCase body, uint64_t count),
                            void *ctx);

#endif

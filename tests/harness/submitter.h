/* submitter: many SubmitTicket requests in flight on one DEALER, as a busy
 * agent desk or gateway sends them. Each request keeps its tag and its
 * client_request_id: one that gets no reply within the timeout is sent
 * again, unchanged, so a retry after a crash is answered with the original
 * ticket (idempotency), never a second one.
 */
#ifndef DISPATCH_SUBMITTER_H
#define DISPATCH_SUBMITTER_H

#include <stddef.h>

#include "auth.h"
#include "dispatch.pb-c.h"

typedef struct submitter submitter_t;

/* window: requests in flight. */
/* curve: the keys to reach the intake (NULL: plain); copied. */
int submitter_new(void *zmq_context, const char *url, size_t window, const auth_client_t *curve,
                  submitter_t **ret);
void submitter_destroy(submitter_t **self);

/* Queues one submission (packed now); returns its index. */
size_t submitter_add(submitter_t *self, const char *actor, const Dispatch__SubmitTicket *submit);

/* Sends everything queued and collects one reply each; a request without a
 * reply after retry_ms is resent. Calls on_reply(ctx, index, reply) once per
 * request; on_progress(ctx, answered) after each reply when not NULL (a
 * crash test kills workers from there). Returns 0, or -ETIMEDOUT when
 * deadline_ms passed with requests unanswered. */
int submitter_run(submitter_t *self, int retry_ms, int deadline_ms,
                  void (*on_reply)(void *ctx, size_t index, const Dispatch__Reply *reply),
                  void (*on_progress)(void *ctx, size_t answered), void *ctx);

#endif

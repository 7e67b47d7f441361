/* sim_supervisors: the district supervisors and a city leader of the demo,
 * at each escalation's admin endpoint (docs/protocol.md section 6), with
 * their own keys (<keys_dir>/<supervisor>.key_secret, <leader>.key_secret;
 * the demo's are named "supervisor" and "leader").
 *
 * Each turn a supervisor lists the extension requests of its district and
 * grants most of them (the share given; a grant gives what the unit asked
 * for) and refuses the rest with a reason; the leader lists the sign-off
 * queue and instructs every ticket in it, and every urgent ticket overdue
 * at city supervision or above. Calls
 * are blocking, with a short timeout: a worker that does not answer is
 * skipped until the next turn.
 */
#ifndef DISPATCH_SIM_SUPERVISORS_H
#define DISPATCH_SIM_SUPERVISORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "sim_random.h"

typedef struct sim_supervisors sim_supervisors_t;

typedef struct sim_supervisors_counts {
    uint64_t granted, refused, signed_off, failed;
} sim_supervisors_counts_t;

/* One supervisor and the leader per escalation of the listed districts
 * (all when count is 0). 0 and *ret; a negative errno and err (a missing
 * key, no escalation). */
int sim_supervisors_new(void *zmq, const config_t *config, const char *const *districts,
                        size_t count, const char *supervisor, const char *leader,
                        double grant_share, sim_supervisors_t **ret, char *err, size_t err_len);
void sim_supervisors_destroy(sim_supervisors_t **self);
/* One round of decisions and sign-offs at every escalation. */
void sim_supervisors_turn(sim_supervisors_t *self, sim_random_t *random);
sim_supervisors_counts_t sim_supervisors_counts(const sim_supervisors_t *self);
/* "supervisors: ..." lines of the summary, each after prefix. */
void sim_supervisors_print(const sim_supervisors_t *self, FILE *out, const char *prefix);

#endif

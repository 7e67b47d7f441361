/* sim_random: the seeded random numbers of the unit simulator and the call
 * generator, so that a run is reproducible from its --seed.
 *
 * xoshiro256** seeded through splitmix64. A sim_random_t is a small value
 * (its state is its whole self): a tool keeps one per stream, so that
 * adding a draw in one place does not shift every later draw elsewhere.
 */
#ifndef DISPATCH_SIM_RANDOM_H
#define DISPATCH_SIM_RANDOM_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_random {
    uint64_t s[4];
} sim_random_t;

/* The same seed and stream give the same numbers. */
void sim_random_seed(sim_random_t *self, uint64_t seed, uint64_t stream);
uint64_t sim_random_u64(sim_random_t *self);
/* Uniform in [0, 1). */
double sim_random_unit(sim_random_t *self);
/* Uniform in [low, high]. */
double sim_random_between(sim_random_t *self, double low, double high);
/* Uniform integer in [0, n); 0 when n is 0. */
size_t sim_random_below(sim_random_t *self, size_t n);
/* True with probability p. */
int sim_random_chance(sim_random_t *self, double p);
/* Exponential with the given mean. */
double sim_random_exponential(sim_random_t *self, double mean);
/* Log-normal with the given median and sigma (of the underlying normal). */
double sim_random_lognormal(sim_random_t *self, double median, double sigma);
/* Index drawn with probability weights[i] / sum; n must be > 0 and the sum > 0. */
size_t sim_random_weighted(sim_random_t *self, const double *weights, size_t n);

#endif

#include "sim_random.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void sim_random_seed(sim_random_t *self, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (int i = 0; i < 4; i++)
        self->s[i] = splitmix64(&x);
}

uint64_t sim_random_u64(sim_random_t *self)
{
    uint64_t *s = self->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sim_random_unit(sim_random_t *self)
{
    return (double)(sim_random_u64(self) >> 11) * 0x1.0p-53;
}

double sim_random_between(sim_random_t *self, double low, double high)
{
    return low + (high - low) * sim_random_unit(self);
}

size_t sim_random_below(sim_random_t *self, size_t n)
{
    return n ? (size_t)(sim_random_unit(self) * (double)n) % n : 0;
}

int sim_random_chance(sim_random_t *self, double p)
{
    return sim_random_unit(self) < p;
}

double sim_random_exponential(sim_random_t *self, double mean)
{
    return -mean * log(1.0 - sim_random_unit(self));
}

double sim_random_lognormal(sim_random_t *self, double median, double sigma)
{
    /* Box-Muller; the second value is not kept. */
    double u1 = 1.0 - sim_random_unit(self), u2 = sim_random_unit(self);
    double normal = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    return median * exp(sigma * normal);
}

size_t sim_random_weighted(sim_random_t *self, const double *weights, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += weights[i];
    double x = sim_random_unit(self) * sum;
    for (size_t i = 0; i < n; i++) {
        if (x < weights[i])
            return i;
        x -= weights[i];
    }
    return n - 1;
}

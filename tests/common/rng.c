/* rng: see rng.h. */
#include "rng.h"

static uint64_t stream = RNG_SEED;

uint64_t rng_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

uint64_t rng(void)
{
    return rng_next(&stream);
}

void rng_seed(uint64_t seed)
{
    stream = seed;
}

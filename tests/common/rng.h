/* rng: a deterministic xorshift64 for tests, so a failure reproduces from
 * its seed. */
#ifndef TURNSTILE_TEST_RNG_H
#define TURNSTILE_TEST_RNG_H

#include <stdint.h>

/* Where rng() starts in every test program (xorshift's classic seed). */
#define RNG_SEED 88172645463325252ull

/* Advances *state (never 0) and returns the new value. */
uint64_t rng_next(uint64_t *state);

/* The program's one stream, for a suite that needs no other: rng_next() on
 * a state that starts at RNG_SEED. */
uint64_t rng(void);

/* Restarts rng()'s stream from seed (never 0). */
void rng_seed(uint64_t seed);

#endif

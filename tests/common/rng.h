/* rng: a deterministic xorshift64 for tests, so a failure reproduces from
 * its seed. */
#ifndef TURNSTILE_TEST_RNG_H
#define TURNSTILE_TEST_RNG_H

#include <stdint.h>

/* Advances *state (never 0) and returns the new value. */
uint64_t rng_next(uint64_t *state);

#endif

/* ms: the loop clock (loop_now_us) in the milliseconds tests think in. */
#ifndef TURNSTILE_TEST_MS_H
#define TURNSTILE_TEST_MS_H

#include <stdint.h>

/* The deadline ms milliseconds from now, in loop_now_us()'s unit. */
int64_t ms_from_now(int ms);

/* Whole milliseconds since t0_us, a loop_now_us() reading. */
int64_t ms_since(int64_t t0_us);

#endif

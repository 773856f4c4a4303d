/* ms: see ms.h. */
#include "ms.h"

#include "loop.h"

int64_t ms_from_now(int ms)
{
    return loop_now_us() + (int64_t)ms * 1000;
}

int64_t ms_since(int64_t t0_us)
{
    return (loop_now_us() - t0_us) / 1000;
}

/* tally: see tally.h. */
#include "tally.h"

#include <stddef.h>

const char *const tally_route_names[TALLY_ROUTES] = {
    [TALLY_ACCESS] = "/access", [TALLY_STATS] = "/stats",   [TALLY_METRICS] = "/metrics",
    [TALLY_DASHBOARD] = "/",    [TALLY_EVENTS] = "/events", [TALLY_UNKNOWN] = "unknown",
    [TALLY_NONE] = "none",
};

static const int status_codes[TALLY_STATUSES] = {
    [TALLY_200] = 200, [TALLY_400] = 400, [TALLY_404] = 404, [TALLY_405] = 405, [TALLY_408] = 408,
    [TALLY_413] = 413, [TALLY_414] = 414, [TALLY_417] = 417, [TALLY_431] = 431, [TALLY_500] = 500,
    [TALLY_501] = 501, [TALLY_503] = 503, [TALLY_505] = 505, [TALLY_OTHER] = 0,
};

const char *const tally_status_names[TALLY_STATUSES] = {
    [TALLY_200] = "200", [TALLY_400] = "400",     [TALLY_404] = "404", [TALLY_405] = "405",
    [TALLY_408] = "408", [TALLY_413] = "413",     [TALLY_414] = "414", [TALLY_417] = "417",
    [TALLY_431] = "431", [TALLY_500] = "500",     [TALLY_501] = "501", [TALLY_503] = "503",
    [TALLY_505] = "505", [TALLY_OTHER] = "other",
};

const char *const tally_end_names[TALLY_ENDS] = {
    [TALLY_END_CLIENT] = "client",
    [TALLY_END_DONE] = "done",
    [TALLY_END_BAD_REQUEST] = "bad_request",
    [TALLY_END_TIMEOUT] = "timeout",
    [TALLY_END_IDLE] = "idle",
    [TALLY_END_GONE] = "gone",
};

enum tally_status tally_status_of(int status)
{
    for (unsigned i = 0; i < TALLY_OTHER; i++)
        if (status_codes[i] == status)
            return (enum tally_status)i;
    return TALLY_OTHER;
}

int tally_status_code(enum tally_status slot)
{
    return status_codes[slot];
}

void tally_response(struct tally_requests *t, enum tally_route route, int status)
{
    tally_add(&t->by_route[route][tally_status_of(status)], 1);
}

/* The structs are nothing but uint64_t counts: summed word by word. */
static void sum_words(uint64_t *dst, const uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void tally_sum_requests(struct tally_requests *dst, const struct tally_requests *src)
{
    _Static_assert(sizeof(*src) % sizeof(uint64_t) == 0, "only counts");
    sum_words((uint64_t *)dst, (const uint64_t *)src, sizeof(*src) / sizeof(uint64_t));
}

void tally_sum_conns(struct tally_conns *dst, const struct tally_conns *src)
{
    _Static_assert(sizeof(*src) % sizeof(uint64_t) == 0, "only counts");
    sum_words((uint64_t *)dst, (const uint64_t *)src, sizeof(*src) / sizeof(uint64_t));
}

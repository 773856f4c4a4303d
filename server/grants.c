/* grants: see grants.h. */
#include "grants.h"

#include "textbuf.h"

void grants_record(struct grants *g, uint64_t n, uint64_t us, int64_t at_us)
{
    g->ring[g->total % GRANTS_CAP] = (struct grant){.n = n, .us = us, .at_us = at_us};
    g->total++;
}

void grants_json(const struct grants *g, struct textbuf *o, int64_t since_us)
{
    uint64_t first = g->total > GRANTS_CAP ? g->total - GRANTS_CAP : 0;
    textbuf_printf(o, "{\"total\": %llu, \"time\": \"" GRANTS_TIME_KEY "\", \"recent\": [",
                   (unsigned long long)g->total);
    for (uint64_t i = first; i < g->total; i++) {
        const struct grant *r = &g->ring[i % GRANTS_CAP];
        textbuf_printf(o, "%s{\"n\": %llu, \"" GRANTS_TIME_KEY "\": %llu, \"at_s\": %.3f}",
                       i > first ? ", " : "", (unsigned long long)r->n, (unsigned long long)r->us,
                       (double)(r->at_us - since_us) / 1e6);
    }
    textbuf_printf(o, "]}");
}

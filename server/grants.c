/* grants: see grants.h. */
#include "grants.h"

#include "textbuf.h"

void grants_init(struct grants *g)
{
    *g = (struct grants){0};
    pthread_mutex_init(&g->mu, NULL);
}

void grants_fini(struct grants *g)
{
    pthread_mutex_destroy(&g->mu);
}

void grants_record(struct grants *g, uint64_t n, uint64_t us, int64_t at_us)
{
    pthread_mutex_lock(&g->mu);
    g->ring[g->total % GRANTS_CAP] = (struct grant){.n = n, .us = us, .at_us = at_us};
    g->total++;
    pthread_mutex_unlock(&g->mu);
}

void grants_json(struct grants *g, struct textbuf *o, int64_t since_us)
{
    pthread_mutex_lock(&g->mu);
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
    pthread_mutex_unlock(&g->mu);
}

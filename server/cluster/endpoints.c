/* endpoints: the shared health table. See endpoints.h. */
#include "endpoints.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

int endpoints_add(struct endpoints *t, const char *url)
{
    if (t->n == ENDPOINTS_MAX)
        return -ENOSPC;
    snprintf(t->url[t->n], sizeof(t->url[t->n]), "%s", url);
    atomic_store(&t->bad[t->n], false);
    t->n++;
    return 0;
}

bool endpoints_bad(const struct endpoints *t, unsigned i)
{
    return i < t->n && atomic_load_explicit(&t->bad[i], memory_order_relaxed);
}

unsigned endpoints_choose(const struct endpoints *t, unsigned from)
{
    for (unsigned k = 0; k < t->n; k++) {
        unsigned i = (from + k) % t->n;
        if (!endpoints_bad(t, i))
            return i;
    }
    return from;
}

void endpoints_abandon(struct endpoints *t, unsigned i, int rc)
{
    if (i >= t->n || atomic_exchange(&t->bad[i], true))
        return;
    atomic_fetch_add(&t->abandoned, 1);
    log_msg(LOG_LEVEL_WARN, "cluster: etcd endpoint %s abandoned (%s); calls move to the others",
            t->url[i], strerror(-rc));
    if (t->on_change)
        t->on_change(t->arg);
}

bool endpoints_better(const struct endpoints *t, unsigned i)
{
    return endpoints_choose(t, i) != i;
}

void endpoints_restore(struct endpoints *t, unsigned i)
{
    if (i >= t->n || !atomic_exchange(&t->bad[i], false))
        return;
    log_msg(LOG_LEVEL_WARN, "cluster: etcd endpoint %s is back: it serves linearizable reads",
            t->url[i]);
    if (t->on_change)
        t->on_change(t->arg);
}

void endpoints_describe(const struct endpoints *t, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < t->n && len < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s %s", i ? ", " : "", t->url[i],
                         endpoints_bad(t, i) ? "down" : "up");
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

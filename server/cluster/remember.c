/* remember: Idempotency-Keys in etcd. See remember.h. */
#include "remember.h"

#include <string.h>

#include "etcd.h"
#include "instance.h"
#include "loop.h"

_Static_assert(sizeof(((struct cluster *)0)->prefix) <= 80, "REMEMBER_NAME_MAX");

size_t remember_name(const struct cluster *c, const char *key, size_t len, char *buf)
{
    size_t plen = strlen(c->prefix);
    memcpy(buf, c->prefix, plen);
    memcpy(buf + plen, "idem/", 5);
    memcpy(buf + plen + 5, key, len);
    buf[plen + 5 + len] = '\0';
    return plen + 5 + len;
}

int remember_lease(struct cluster_loop *cl, uint64_t retention_ms, int64_t *lease)
{
    int64_t now = loop_now_us(), bucket_ms = (int64_t)(retention_ms / 24);
    if (bucket_ms < 1000)
        bucket_ms = 1000;
    if (cl->idem_lease && now < cl->idem_lease_until && cl->idem_retention_ms == retention_ms) {
        *lease = cl->idem_lease;
        return 0;
    }
    /* Whole seconds, rounded up: a key never lives less than the window. */
    int64_t ttl_s = ((int64_t)retention_ms + bucket_ms + 999) / 1000;
    int rc = etcd_lease_grant(&cl->section, ttl_s, lease, NULL,
                              instance_call_deadline(cl->c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    cl->idem_lease = *lease;
    cl->idem_lease_until = now + bucket_ms * 1000;
    cl->idem_retention_ms = retention_ms;
    return 0;
}

/* proof: settling a write whose reply was lost. See proof.h. */
#include "proof.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "counter.h"
#include "counts.h"
#include "log.h"

/* What is being proven. */
struct claim {
    struct counter_copy read; /* what the write was based on: it wrote read.value + 1 */
    const struct ticket *t;   /* the writer: its key and create revision, the receipt */
};

/* The counter as of revision rev (0: the latest) into *value and its
 * mod revision; its writer's kv, if out_kv is given, stays in reply r. */
static int counter_at(struct cluster_loop *cl, int64_t rev, struct etcd_reply *r, uint64_t *value,
                      const struct etcd_kv **out_kv)
{
    struct etcd_range_req req = {
        .key = cl->c->counter_key, .key_len = strlen(cl->c->counter_key), .revision = rev};
    int rc = etcd_range(&cl->section, &req, r, instance_call_deadline(cl->c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    const struct etcd_kv *kv = r->ops[0].nkvs ? &r->ops[0].kvs[0] : NULL;
    *value = 0;
    if (kv && counter_parse(kv->value, kv->value_len, value) < 0) {
        etcd_reply_free(r);
        return -EIO;
    }
    if (out_kv)
        *out_kv = kv;
    return 0;
}

/* Returns 0 (the claim's write was applied), -EAGAIN (someone else's
 * write followed the version read: the claim's was not), or another
 * error (not proven: etcd unreachable, or the history compacted). */
static int prove(struct cluster_loop *cl, const struct claim *w)
{
    struct etcd_reply r;
    const struct etcd_kv *kv;
    uint64_t v;
    int64_t lo = w->read.mod_revision + 1, hi;
    int rc = counter_at(cl, 0, &r, &v, &kv);
    if (rc < 0)
        return rc;
    hi = kv ? kv->mod_revision : 0;
    etcd_reply_free(&r);
    if (v <= w->read.value)
        return -EAGAIN; /* nothing was written since it was read: not applied */
    while (lo < hi) {   /* the first revision in [lo, hi] where the counter exceeds N */
        int64_t mid = lo + (hi - lo) / 2;
        if ((rc = counter_at(cl, mid, &r, &v, NULL)) < 0)
            return rc;
        etcd_reply_free(&r);
        if (v > w->read.value)
            hi = mid;
        else
            lo = mid + 1;
    }
    if ((rc = counter_at(cl, lo, &r, &v, &kv)) < 0)
        return rc;
    bool applied = kv && counter_written_by(kv->value, kv->value_len, w->t->entry->key,
                                            w->t->entry->key_len, w->t->revision);
    etcd_reply_free(&r);
    return applied ? 0 : -EAGAIN;
}

void proof_patience_init(struct proof_patience *p, const struct cluster *c)
{
    *p = (struct proof_patience){.left_us = (atomic_load(&c->lease_ttl_ms) + 2 * c->call_ms) * 1000,
                                 .cap_us = c->call_ms * 1000 + CLUSTER_RETRY_US};
}

void proof_patience_call(struct proof_patience *p)
{
    p->started_us = loop_now_us();
}

bool proof_patience_failed(struct proof_patience *p)
{
    int64_t spent = loop_now_us() - p->started_us;
    p->left_us -= spent < p->cap_us ? spent : p->cap_us;
    return p->left_us > 0;
}

int proof_settle(struct cluster_loop *cl, const struct counter_copy *read, const struct ticket *t,
                 struct proof_patience *p)
{
    struct claim w = {*read, t};
    int rc;
    for (;;) {
        proof_patience_call(p);
        rc = prove(cl, &w);
        if (rc == 0 || rc == -EAGAIN || rc == -ERANGE || !proof_patience_failed(p))
            break;
        loop_sleep_us(CLUSTER_RETRY_US);
    }
    if (rc == 0 || rc == -EAGAIN) {
        log_msg(LOG_LEVEL_INFO, "cluster: a write of %" PRIu64 " whose reply was lost %s",
                read->value + 1, rc == 0 ? "was applied: 200" : "was not: 503");
        return rc;
    }
    log_msg(LOG_LEVEL_WARN,
            "cluster: the write of %" PRIu64 " may have been applied, and cannot be proven (%s): "
            "outcome unknown, 500",
            read->value + 1,
            rc == -ERANGE ? "etcd compacted that history" : "etcd does not answer");
    return -ENOTRECOVERABLE;
}

/* compactor: periodic compaction, one instance an interval. See compactor.h. */
#include "compactor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "counts.h"
#include "log.h"

/* What the compactor remembers between rounds. */
struct compactor {
    struct cluster_loop *cl;
    int64_t version;  /* of the compact key, as last seen */
    int64_t revision; /* the store's, at the previous round: the next compaction's target */
};

/* The election: put the compact key if its version is still the one seen
 * last. Returns 0 with *won, or a negative errno; k->version follows. */
static int elect(struct compactor *k, int64_t *revision, bool *won)
{
    struct cluster *c = k->cl->c;
    char value[24];
    snprintf(value, sizeof(value), "%" PRId64, k->revision);
    struct etcd_cmp cmp = {.key = c->compact_key,
                           .key_len = strlen(c->compact_key),
                           .target = ETCD_CMP_VERSION,
                           .number = k->version};
    struct etcd_op put = {.type = ETCD_OP_PUT,
                          .put = {.key = c->compact_key,
                                  .key_len = strlen(c->compact_key),
                                  .value = value,
                                  .value_len = strlen(value)}};
    struct etcd_op get = instance_range_op(c->compact_key, false, false);
    struct etcd_txn txn = {
        .cmps = &cmp, .ncmps = 1, .success = &put, .nsuccess = 1, .failure = &get, .nfailure = 1};
    struct etcd_reply r;
    int rc = etcd_txn(&c->maint, &txn, &r, instance_call_deadline(c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    *won = r.succeeded;
    *revision = r.revision;
    k->version = r.succeeded ? k->version + 1 : r.ops[0].nkvs ? r.ops[0].kvs[0].version : 0;
    etcd_reply_free(&r);
    return 0;
}

static void compact(struct compactor *k)
{
    struct cluster *c = k->cl->c;
    int rc = etcd_compact(&c->maint, k->revision, instance_call_deadline(c, LOOP_FOREVER));
    if (rc == 0)
        counts_bump(k->cl, &k->cl->shown.compactions);
    if (rc == 0 || rc == -ERANGE) /* another instance was there first */
        log_msg(LOG_LEVEL_DEBUG, "cluster: etcd's history compacted to revision %" PRId64,
                k->revision);
    else
        log_msg(LOG_LEVEL_WARN, "cluster: compacting etcd to revision %" PRId64 " failed: %s",
                k->revision, etcd_last_error(&c->maint));
}

/* One round; the first only remembers the revision (nothing is known to
 * be an interval old yet). */
static void round_once(struct compactor *k)
{
    int64_t revision = 0;
    bool won = false;
    int rc = elect(k, &revision, &won);
    if (rc == -ENOSPC) /* the quota: compacting is what the operator needs */
        won = true;
    else if (rc < 0)
        return; /* etcd unreachable: k->revision only gets older, still safe */
    if (won && k->revision > 0)
        compact(k);
    if (revision > 0)
        k->revision = revision;
}

void compactor_main(void *arg)
{
    struct compactor k = {.cl = arg};
    struct cluster *c = k.cl->c;
    while (!atomic_load(&c->stopping)) {
        round_once(&k);
        counts_publish(k.cl);
        loop_sleep_us(c->compact_ms * 1000);
    }
    k.cl->running--;
}

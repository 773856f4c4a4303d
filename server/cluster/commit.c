/* commit: the fenced write. See commit.h. */
#include "commit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alarm.h"
#include "counter.h"
#include "counts.h"
#include "log.h"
#include "proof.h"
#include "remember.h"
#include "writeline.h"

#define COMMIT_TRIES 4 /* counter moved under a stale copy: re-read and retry */

/* A txn in progress: the write of a group of one loop's requests. */
struct fenced_write {
    struct ticket *group[WRITELINE_GROUP_MAX]; /* [0] the leader, whose turn it is */
    size_t k;
    struct counter_copy read; /* what the write is based on: it writes read.value + 1 .. + k */
    bool unsure;              /* a try may have been applied unseen */
    struct proof_patience patience; /* for etcd's silence (proof.h) */
    /* With an Idempotency-Key (a group of one): its entry's name, and the
     * lease to put it on. */
    struct cluster_idem *idem;
    char idem_name[REMEMBER_NAME_MAX];
    size_t idem_name_len;
    int64_t idem_lease;
};

static bool key_held(const struct etcd_op_result *range, const struct ticket *t)
{
    return range->nkvs && range->kvs[0].create_revision == t->revision;
}

/* The compares: each key still has its create revision (its lease holds),
 * the counter still has the mod revision read, and the Idempotency-Key's
 * entry does not exist (this write is the key's first). */
static size_t txn_compares(const struct cluster *c, const struct fenced_write *w,
                           struct etcd_cmp *cmps)
{
    size_t n = 0;
    cmps[n++] = (struct etcd_cmp){.key = c->counter_key,
                                  .key_len = strlen(c->counter_key),
                                  .target = ETCD_CMP_MOD,
                                  .number = w->read.mod_revision};
    for (size_t i = 0; i < w->k; i++)
        cmps[n++] = (struct etcd_cmp){.key = w->group[i]->entry->key,
                                      .key_len = w->group[i]->entry->key_len,
                                      .target = ETCD_CMP_CREATE,
                                      .number = w->group[i]->revision};
    if (w->idem)
        cmps[n++] = (struct etcd_cmp){
            .key = w->idem_name, .key_len = w->idem_name_len, .target = ETCD_CMP_CREATE};
    return n;
}

/* Success: the counter (value, with every writer's receipt), `released`,
 * each key deleted, the Idempotency-Key's entry (n: its N) put. */
static size_t txn_writes(const struct cluster *c, const struct fenced_write *w, const char *value,
                         const char *released, const char *n, struct etcd_op *ops)
{
    size_t k = 0;
    ops[k++] = (struct etcd_op){.type = ETCD_OP_PUT,
                                .put = {.key = c->counter_key,
                                        .key_len = strlen(c->counter_key),
                                        .value = value,
                                        .value_len = strlen(value)}};
    ops[k++] = (struct etcd_op){.type = ETCD_OP_PUT,
                                .put = {.key = c->released_key,
                                        .key_len = strlen(c->released_key),
                                        .value = released,
                                        .value_len = strlen(released)}};
    for (size_t i = 0; i < w->k; i++)
        ops[k++] = (struct etcd_op){
            .type = ETCD_OP_DELETE,
            .del = {.key = w->group[i]->entry->key, .key_len = w->group[i]->entry->key_len}};
    if (w->idem)
        ops[k++] = (struct etcd_op){.type = ETCD_OP_PUT,
                                    .put = {.key = w->idem_name,
                                            .key_len = w->idem_name_len,
                                            .value = n,
                                            .value_len = strlen(n),
                                            .lease = w->idem_lease}};
    return k;
}

/* Failure: read the counter, each key and the Idempotency-Key's entry. */
static size_t txn_reads(const struct cluster *c, const struct fenced_write *w, struct etcd_op *ops)
{
    size_t k = 0;
    ops[k++] = instance_range_op(c->counter_key, false, false);
    for (size_t i = 0; i < w->k; i++)
        ops[k++] = instance_range_op(w->group[i]->entry->key, false, false);
    if (w->idem)
        ops[k++] = instance_range_op(w->idem_name, false, false);
    return k;
}

static int try_txn(struct cluster_loop *cl, struct fenced_write *w, struct etcd_reply *r)
{
    struct cluster *c = cl->c;
    struct counter_writer writers[WRITELINE_GROUP_MAX];
    for (size_t i = 0; i < w->k; i++)
        writers[i] = (struct counter_writer){w->group[i]->entry->key, w->group[i]->entry->key_len,
                                             w->group[i]->revision};
    char value[COUNTER_VALUE_MAX(WRITELINE_GROUP_MAX)], released[48], n[24];
    counter_format(value, sizeof(value), w->read.value + w->k, writers, w->k);
    snprintf(released, sizeof(released), "%" PRId64 " %s", instance_wall_us(), c->self);
    snprintf(n, sizeof(n), "%" PRIu64, w->read.value + 1);
    struct etcd_cmp cmps[WRITELINE_GROUP_MAX + 2];
    struct etcd_op ok[WRITELINE_GROUP_MAX + 3], failed[WRITELINE_GROUP_MAX + 2];
    struct etcd_txn txn = {.cmps = cmps,
                           .ncmps = txn_compares(c, w, cmps),
                           .success = ok,
                           .nsuccess = txn_writes(c, w, value, released, n, ok),
                           .failure = failed,
                           .nfailure = txn_reads(c, w, failed)};
    return etcd_txn(&cl->section, &txn, r, instance_call_deadline(c, LOOP_FOREVER));
}

/* Every key of the group is gone from etcd (at rev, or 0 if unknown). */
static void group_done(struct fenced_write *w, int64_t rev)
{
    for (size_t i = 0; i < w->k; i++)
        ticket_done(w->group[i], rev);
}

/* The key's entry was found: the key was applied before, its N is the
 * answer. My place goes: gone already, or left to the reaper (commit_write). */
static int on_repeat(struct fenced_write *w, const struct etcd_kv *entry, bool held)
{
    uint64_t n;
    if (counter_parse(entry->value, entry->value_len, &n) < 0)
        return -EIO;
    w->read.value = n - 1; /* commit_write answers read.value + 1 */
    w->idem->repeat = true;
    if (!held)
        ticket_done(w->group[0], 0);
    return 0;
}

/* A failed compare: a key gone means fenced off, unless an unseen try
 * applied (it deletes every key: with any key still held it did not, and
 * with none, the leader's receipt settles the all-or-nothing txn); else
 * the counter moved under a stale copy, and the next try writes on the
 * value read now. */
static int on_failed_compare(struct cluster_loop *cl, struct fenced_write *w, struct etcd_reply *r,
                             bool *again)
{
    bool leader_held = key_held(&r->ops[1], w->group[0]);
    size_t held = leader_held;
    for (size_t i = 1; i < w->k && i + 1 < r->nops; i++)
        held += key_held(&r->ops[1 + i], w->group[i]);
    if (w->idem && r->nops > 2 && r->ops[2].nkvs)
        return on_repeat(w, &r->ops[2].kvs[0], leader_held);
    if (held < w->k) {
        int rc = w->unsure && held == 0 ? proof_settle(cl, &w->read, w->group[0], &w->patience)
                                        : -EAGAIN;
        if (rc == -EAGAIN)
            counts_add(cl, &cl->shown.fenced, w->k);
        return rc;
    }
    int rc = counter_read(cl, &r->ops[0]);
    w->read = cl->counter;
    w->unsure = false;
    *again = rc == 0;
    return rc < 0 ? rc : -EAGAIN;
}

/* etcd's refusals before a txn is proposed, and a connection never made:
 * that try certainly did not apply. */
static bool surely_not_applied(int rc)
{
    return rc == -ENOSPC || rc == -EINVAL || rc == -EACCES || rc == -ECONNREFUSED;
}

/* One try and what it tells. Returns 0 (written), -EAGAIN (refused, or
 * again = true: retry at once), -ENOTRECOVERABLE (settled as unknown) or
 * another error (this try's outcome unknown: try again). */
static int try_once(struct cluster_loop *cl, struct fenced_write *w, bool *again)
{
    struct etcd_reply r;
    *again = false;
    proof_patience_call(&w->patience);
    int rc = try_txn(cl, w, &r);
    if (rc < 0) {
        w->unsure = w->unsure || !surely_not_applied(rc);
        if (rc == -ENOSPC)
            alarm_suspect(cl);
        if (rc == -ENOSPC && !w->unsure)
            rc = -EAGAIN; /* the quota: certainly not applied, 503 */
    } else if (r.succeeded) {
        counter_see(cl, w->read.value + w->k, r.revision);
        group_done(w, r.revision);
    } else {
        rc = on_failed_compare(cl, w, &r, again);
        if (rc == 0 && !(w->idem && w->idem->repeat))
            group_done(w, 0);
    }
    etcd_reply_free(&r);
    return rc;
}

/* Tries until settled, or etcd has been silent past the patience. */
static int run(struct cluster_loop *cl, struct fenced_write *w)
{
    for (int tries = 0;;) {
        bool again;
        int rc = try_once(cl, w, &again);
        if (rc == 0 || rc == -ENOTRECOVERABLE || (rc == -EAGAIN && !again))
            return rc;
        if (again ? ++tries >= COMMIT_TRIES : !proof_patience_failed(&w->patience))
            break;
        if (!again && rc != -ECANCELED)
            loop_sleep_us(CLUSTER_RETRY_US / 10);
    }
    if (!w->unsure)
        return -EAGAIN;
    log_msg(LOG_LEVEL_WARN,
            "cluster: the write of %" PRIu64 " (%zu requests) may have been applied; etcd did not "
            "answer: outcome unknown, 500",
            w->read.value + 1, w->k);
    return -ENOTRECOVERABLE;
}

/* The key's entry name and the lease to put it on. */
static int prepare_idem(struct cluster_loop *cl, struct fenced_write *w, struct cluster_idem *idem)
{
    w->idem = idem;
    if (!idem)
        return 0;
    idem->repeat = false;
    w->idem_name_len = remember_name(cl->c, idem->key, idem->len, w->idem_name);
    return remember_lease(cl, idem->retention_ms, &w->idem_lease) < 0 ? -EAGAIN : 0;
}

/* My turn: writes for my group, from the copy with the highest revision
 * seen, the previous write's outcome included (what the sections read,
 * unless a late event brought a newer one: the compare tells). */
static int lead(struct cluster_loop *cl, struct ticket *t, struct cluster_idem *idem, uint64_t *n)
{
    struct fenced_write w = {0};
    proof_patience_init(&w.patience, cl->c);
    int rc = prepare_idem(cl, &w, idem);
    if (rc == 0) {
        w.k = writeline_group(cl, t, idem != NULL, w.group);
        w.read = cl->counter; /* after the gathering: events may have come */
        rc = run(cl, &w);
    }
    writeline_done(cl, w.group, w.k, rc, w.read.value);
    if (rc == 0)
        *n = w.read.value + 1;
    return rc;
}

int commit_write(struct cluster_loop *cl, struct ticket *t, struct cluster_idem *idem, uint64_t *n)
{
    int64_t started = loop_now_us();
    t->state = T_WRITING; /* my section is over: the next local waiter's may start */
    ticket_grant_head(cl);
    int rc = writeline_wait(cl, t, idem != NULL);
    if (rc == WRITELINE_CARRIED) {
        rc = t->write_rc;
        *n = t->write_n;
    } else if (rc == 0) {
        rc = lead(cl, t, idem, n);
    } else {
        rc = -EAGAIN; /* no room to wait: certainly not written */
    }
    if (rc == -ENOTRECOVERABLE)
        counts_bump(cl, &cl->shown.unknown);
    counts_publish(cl);
    if ((rc < 0 || (idem && idem->repeat)) && t->state == T_WRITING)
        ticket_leave(t); /* my key may still be there: it must not block the queue */
    ticket_release(t);
    ticket_grant_head(cl); /* my key gone: the next waiter may be on this loop */
    counts_held(cl, loop_now_us() - started);
    return rc;
}

/* commit: the fenced write. See commit.h. */
#include "commit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "counter.h"
#include "counts.h"
#include "proof.h"

#define COMMIT_TRIES 4 /* counter moved under a stale copy: re-read and retry */

/* One write in progress. */
struct fenced_write {
    struct ticket *t;
    struct counter_copy read; /* what the write is based on */
    bool unsure;              /* a try may have been applied unseen */
    int64_t started;
    int64_t give_up; /* tries go on until then (commit.h) */
};

static int try_txn(struct cluster_loop *cl, struct fenced_write *w, struct etcd_reply *r)
{
    struct cluster *c = cl->c;
    const struct mirror_entry *key = w->t->entry;
    char value[24 + CLUSTER_KEY_MAX], released[48];
    counter_format(value, sizeof(value), w->read.value + 1, key->key, key->key_len);
    snprintf(released, sizeof(released), "%" PRId64 " %s", instance_wall_us(), c->self);
    struct etcd_cmp cmps[2] = {
        {.key = key->key,
         .key_len = key->key_len,
         .target = ETCD_CMP_CREATE,
         .number = w->t->revision},
        {.key = c->counter_key,
         .key_len = strlen(c->counter_key),
         .target = ETCD_CMP_MOD,
         .number = w->read.mod_revision},
    };
    struct etcd_op ok[3] = {
        {.type = ETCD_OP_PUT,
         .put = {.key = c->counter_key,
                 .key_len = strlen(c->counter_key),
                 .value = value,
                 .value_len = strlen(value)}},
        {.type = ETCD_OP_PUT,
         .put = {.key = c->released_key,
                 .key_len = strlen(c->released_key),
                 .value = released,
                 .value_len = strlen(released)}},
        {.type = ETCD_OP_DELETE, .del = {.key = key->key, .key_len = key->key_len}},
    };
    struct etcd_op failed[2] = {instance_range_op(c->counter_key, false, false),
                                instance_range_op(key->key, false, false)};
    struct etcd_txn txn = {
        .cmps = cmps, .ncmps = 2, .success = ok, .nsuccess = 3, .failure = failed, .nfailure = 2};
    return etcd_txn(&cl->section, &txn, r, instance_call_deadline(c, LOOP_FOREVER));
}

/* A failed compare: my key gone means fenced off (or, after an unseen
 * try, perhaps applied); else the counter moved under a stale copy, and
 * the next try writes on the value read now. */
static int on_failed_compare(struct cluster_loop *cl, struct fenced_write *w, struct etcd_reply *r,
                             bool *again)
{
    const struct etcd_op_result *counter = &r->ops[0], *key = &r->ops[1];
    bool key_held = key->nkvs && key->kvs[0].create_revision == w->t->revision;
    if (!key_held) {
        int rc = w->unsure ? proof_settle(cl, &w->read, w->t->entry->key, w->t->entry->key_len,
                                          w->give_up)
                           : -EAGAIN;
        if (rc < 0)
            counts_bump(cl, &cl->shown.fenced);
        return rc;
    }
    int rc = counter_read(cl, counter);
    w->read = cl->counter;
    w->unsure = false;
    *again = rc == 0;
    return rc < 0 ? rc : -EAGAIN;
}

/* One try and what it tells. Returns 0 (written), -EAGAIN (refused, or
 * again = true: retry at once) or another error (outcome unknown). */
static int try_once(struct cluster_loop *cl, struct fenced_write *w, bool *again)
{
    struct etcd_reply r;
    *again = false;
    int rc = try_txn(cl, w, &r);
    if (rc < 0) {
        w->unsure = true;
    } else if (r.succeeded) {
        counter_see(cl, w->read.value + 1, r.revision);
        ticket_done(w->t, r.revision);
    } else {
        rc = on_failed_compare(cl, w, &r, again);
        if (rc == 0)
            ticket_done(w->t, 0);
    }
    etcd_reply_free(&r);
    return rc;
}

static int run(struct cluster_loop *cl, struct fenced_write *w)
{
    for (int tries = 0;;) {
        bool again;
        int rc = try_once(cl, w, &again);
        if (rc == 0 || (rc == -EAGAIN && !again))
            return rc;
        if (again ? ++tries >= COMMIT_TRIES : loop_now_us() >= w->give_up)
            break;
        if (!again && rc != -ECANCELED)
            loop_sleep_us(CLUSTER_RETRY_US / 10);
    }
    if (w->unsure)
        counts_bump(cl, &cl->shown.unknown);
    return -EAGAIN;
}

int commit_write(struct cluster_loop *cl, struct ticket *t, uint64_t *n)
{
    struct cluster *c = cl->c;
    /* The copy with the highest revision seen: what the section read,
     * unless a late event brought a newer one (the compare tells). */
    struct fenced_write w = {.t = t, .read = cl->counter, .started = loop_now_us()};
    w.give_up = w.started + (atomic_load(&c->lease_ttl_ms) + 2 * c->call_ms) * 1000;
    int rc = run(cl, &w);
    counts_publish(cl);
    if (rc == 0)
        *n = w.read.value + 1;
    else if (t->state == T_GRANTED)
        ticket_leave(t); /* my key may still be there: it must not block the queue */
    ticket_release(t);
    counts_held(cl, loop_now_us() - w.started);
    return rc;
}

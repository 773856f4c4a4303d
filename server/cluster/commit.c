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

#define COMMIT_TRIES 4 /* counter moved under a stale copy: re-read and retry */

/* One write in progress. */
struct fenced_write {
    struct ticket *t;
    struct counter_copy read; /* what the write is based on */
    bool unsure;              /* a try may have been applied unseen */
    int64_t started;
    struct proof_patience patience; /* for etcd's silence (proof.h) */
    /* With an Idempotency-Key: its entry's name, and the lease to put it on. */
    struct cluster_idem *idem;
    char idem_name[REMEMBER_NAME_MAX];
    size_t idem_name_len;
    int64_t idem_lease;
};

static int try_txn(struct cluster_loop *cl, struct fenced_write *w, struct etcd_reply *r)
{
    struct cluster *c = cl->c;
    const struct mirror_entry *key = w->t->entry;
    char value[COUNTER_VALUE_MAX], released[48], n[24];
    counter_format(value, sizeof(value), w->read.value + 1, key->key, key->key_len, w->t->revision);
    snprintf(released, sizeof(released), "%" PRId64 " %s", instance_wall_us(), c->self);
    snprintf(n, sizeof(n), "%" PRIu64, w->read.value + 1);
    struct etcd_cmp cmps[3] = {
        {.key = key->key,
         .key_len = key->key_len,
         .target = ETCD_CMP_CREATE,
         .number = w->t->revision},
        {.key = c->counter_key,
         .key_len = strlen(c->counter_key),
         .target = ETCD_CMP_MOD,
         .number = w->read.mod_revision},
        /* The key's entry does not exist: this write is the key's first. */
        {.key = w->idem_name, .key_len = w->idem_name_len, .target = ETCD_CMP_CREATE},
    };
    struct etcd_op ok[4] = {
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
        {.type = ETCD_OP_PUT,
         .put = {.key = w->idem_name,
                 .key_len = w->idem_name_len,
                 .value = n,
                 .value_len = strlen(n),
                 .lease = w->idem_lease}},
    };
    struct etcd_op failed[3] = {instance_range_op(c->counter_key, false, false),
                                instance_range_op(key->key, false, false),
                                instance_range_op(w->idem_name, false, false)};
    bool keyed = w->idem != NULL;
    struct etcd_txn txn = {.cmps = cmps,
                           .ncmps = 2 + keyed,
                           .success = ok,
                           .nsuccess = 3 + keyed,
                           .failure = failed,
                           .nfailure = 2 + keyed};
    return etcd_txn(&cl->section, &txn, r, instance_call_deadline(c, LOOP_FOREVER));
}

/* The key's entry was found: the key was applied before, its N is the
 * answer. My place goes: gone already, or left to the reaper (commit_write). */
static int on_repeat(struct fenced_write *w, const struct etcd_kv *entry, bool key_held)
{
    uint64_t n;
    if (counter_parse(entry->value, entry->value_len, &n) < 0)
        return -EIO;
    w->read.value = n - 1; /* commit_write answers read.value + 1 */
    w->idem->repeat = true;
    if (!key_held)
        ticket_done(w->t, 0);
    return 0;
}

/* A failed compare: my key gone means fenced off (or, after an unseen
 * try, perhaps applied); else the counter moved under a stale copy, and
 * the next try writes on the value read now. */
static int on_failed_compare(struct cluster_loop *cl, struct fenced_write *w, struct etcd_reply *r,
                             bool *again)
{
    const struct etcd_op_result *counter = &r->ops[0], *key = &r->ops[1];
    bool key_held = key->nkvs && key->kvs[0].create_revision == w->t->revision;
    if (w->idem && r->nops > 2 && r->ops[2].nkvs)
        return on_repeat(w, &r->ops[2].kvs[0], key_held);
    if (!key_held) {
        int rc = w->unsure ? proof_settle(cl, &w->read, w->t, &w->patience) : -EAGAIN;
        if (rc == -EAGAIN)
            counts_bump(cl, &cl->shown.fenced);
        return rc;
    }
    int rc = counter_read(cl, counter);
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
        counter_see(cl, w->read.value + 1, r.revision);
        ticket_done(w->t, r.revision);
    } else {
        rc = on_failed_compare(cl, w, &r, again);
        if (rc == 0 && !(w->idem && w->idem->repeat))
            ticket_done(w->t, 0);
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
            "cluster: the write of %" PRIu64 " may have been applied; etcd did not answer: "
            "outcome unknown, 500",
            w->read.value + 1);
    return -ENOTRECOVERABLE;
}

/* This write's outcome is known: the next in line writes. */
static void pass_turn(struct cluster_loop *cl)
{
    struct waitq_entry *next = waitq_head(&cl->write_line);
    if (next)
        waitq_wake(next, 0); /* `writing` stays set: handed over */
    else
        cl->writing = false;
}

/* The line's first, handed the turn, was destroyed before it ran: the
 * turn goes on, or no write of this loop would ever be sent again. */
static void turn_abandoned(struct waitq_entry *e)
{
    if (e->woken)
        pass_turn(list_entry(e->q, struct cluster_loop, write_line));
}

/* Waits until no other write of this loop is under way, then starts one.
 * A cancel (the client left) does not end the wait: the section ran, and
 * its write is still owed. -ENOSPC: the coroutine has no room for the
 * wait's cleanup; parking again would spin, so the write is not sent. */
static int take_turn(struct cluster_loop *cl)
{
    while (cl->writing) {
        struct waitq_entry e = {.co = coro_current(), .abandoned = turn_abandoned};
        waitq_join(&cl->write_line, &e, NULL);
        int rc = waitq_park(&e, LOOP_FOREVER);
        if (rc == 0)
            return 0; /* handed the turn */
        if (rc == -ENOSPC)
            return rc;
    }
    cl->writing = true;
    return 0;
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

int commit_write(struct cluster_loop *cl, struct ticket *t, struct cluster_idem *idem, uint64_t *n)
{
    struct cluster *c = cl->c;
    if (take_turn(cl) < 0) { /* certainly not written */
        ticket_leave(t);
        ticket_release(t);
        return -EAGAIN;
    }
    /* The copy with the highest revision seen, the previous write's
     * outcome included: what the section read, unless a late event brought
     * a newer one (the compare tells). */
    struct fenced_write w = {.t = t, .read = cl->counter, .started = loop_now_us()};
    proof_patience_init(&w.patience, c);
    int rc = prepare_idem(cl, &w, idem);
    if (rc == 0) {
        t->state = T_WRITING; /* my section is over: the next local waiter's may start */
        ticket_grant_head(cl);
        rc = run(cl, &w);
    }
    pass_turn(cl);
    if (rc == -ENOTRECOVERABLE)
        counts_bump(cl, &cl->shown.unknown);
    counts_publish(cl);
    if (rc == 0)
        *n = w.read.value + 1;
    if ((rc < 0 || (idem && idem->repeat)) && (t->state == T_GRANTED || t->state == T_WRITING))
        ticket_leave(t); /* my key may still be there: it must not block the queue */
    ticket_release(t);
    ticket_grant_head(cl); /* my key gone: the next waiter may be on this loop */
    counts_held(cl, loop_now_us() - w.started);
    return rc;
}

/* cluster: the shared counter and fair lock in etcd. See cluster.h and
 * docs/design.md, "Cluster mode".
 *
 * Keys, under /turnstile/NAME/:
 *   counter        the counter, a decimal number, no lease
 *   queue/I-S      one request's place: I is the instance, S its sequence
 *                  number; attached to the instance's lease. Its create
 *                  revision is its place in the queue.
 *   released       "T I": wall-clock microseconds at which instance I sent
 *                  the last release, for the hand-off latency
 *
 * A request joins with one transaction (put its key, read the counter,
 * count the queue): alone in the queue, it holds the lock at once.
 * Otherwise it waits until its key is the oldest: each loop watches the
 * whole prefix once and keeps a copy of the queue (mirror.h), so a
 * release reaches the next holder as one watch event, with the counter's
 * new value in the same message. The write is one transaction: if my key
 * still has my create revision and the counter has the revision I read,
 * put counter+1 and delete my key (which releases the lock); else tell me
 * the counter and my key. */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "cluster/etcd_watch.h"
#include "mirror.h"

#define KEY_MAX      (CLUSTER_NAME_MAX + 64)
#define RETRY_US     100000  /* before another try at a lease grant or a watch */
#define LIVENESS_US  1000000 /* a watch silent this long while requests wait is checked */
#define COMMIT_TRIES 4       /* counter moved under a stale copy: re-read and retry */
#define STOP_WAIT_US 2000000 /* for the loop's coroutines to end at detach */
#define MAX_LOOPS    64

enum ticket_state {
    T_JOINING, /* its PUT is on its way */
    T_QUEUED,  /* in the queue at `revision`, waiting */
    T_GRANTED, /* holds the lock */
    T_LEAVING, /* its key must be deleted (the reaper does it) */
    T_DONE,    /* its key is gone from etcd as of done_rev */
};

/* One request's place. Lives on the heap: it outlives its request while
 * its key is deleted and until the watch has seen that. */
struct ticket {
    struct list_node link; /* in the part's live, leaving or done list */
    struct part *p;
    struct mirror_entry *entry; /* its key, tag pointing back here */
    coro_t *co;                 /* the waiting request */
    enum ticket_state state;
    bool owned; /* its request still uses it: not freed before it lets go */
    int64_t lease;
    int64_t revision; /* create revision of its key, 0 until known */
    int64_t done_rev;
    int64_t queued_wall_us; /* when it joined (wall clock), for the hand-off */
};

struct counter_copy {
    uint64_t value;
    int64_t mod_revision; /* 0: the counter does not exist (value 0) */
};

/* One loop's part. */
struct part {
    struct cluster *c;
    struct loop *loop;
    bool first;                 /* keeps the lease */
    struct etcd_client queue;   /* joins and deletes, in arrival order */
    struct etcd_client section; /* fenced writes */
    struct etcd_client watchc;  /* the watch and its reads */
    struct mirror mirror;
    bool synced;      /* the watch is open and the mirror follows it */
    int64_t revision; /* what the mirror reflects */
    int64_t read_rev; /* of the last resync's range: older events are in it */
    struct counter_copy counter;
    struct list_node live, leaving, done;
    char mine[KEY_MAX]; /* this loop's keys: queue_prefix + instance + '.' + loop + '-' */
    uint64_t seq;
    coro_t *watcher, *reaper, *keeper;
    bool reaper_idle;
    int running; /* coroutines of ours not yet ended */
    int64_t released_wall_us;
    bool released_elsewhere;
    /* Another loop lost the lease: tell this one on its own thread. */
    struct loop_post lost_post;
    _Atomic int64_t lost_lease;
    _Atomic bool lost_posted;
    pthread_mutex_t mu; /* guards stats against cluster_read_stats() */
    struct cluster_stats stats;
};

struct cluster {
    struct cluster_settings s;
    char endpoints[ETCD_MAX_ENDPOINTS * 80];
    char prefix[CLUSTER_NAME_MAX + 16]; /* /turnstile/NAME/ */
    char counter_key[KEY_MAX], queue_prefix[KEY_MAX], released_key[KEY_MAX];
    char self[17];
    char name[CLUSTER_NAME_MAX];
    int64_t ttl_s;
    struct etcd_client lease_client;
    _Atomic int64_t lease;        /* 0 while none */
    _Atomic int64_t lease_ttl_ms; /* as granted */
    _Atomic uint64_t counter;     /* the highest value seen */
    _Atomic bool stopping;
    int64_t stale_lease; /* lost here but maybe not in etcd: revoke when it answers */
    _Atomic(struct part *) parts[MAX_LOOPS]; /* set once each, read by any thread */
    _Atomic unsigned nparts;
};

static _Thread_local struct part *here; /* this thread's loop's part */

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t call_deadline(const struct cluster *c, int64_t limit)
{
    int64_t d = loop_now_us() + c->s.call_ms * 1000;
    return d < limit ? d : limit;
}

/* ---- statistics ---- */

static void count(struct part *p, uint64_t *field)
{
    pthread_mutex_lock(&p->mu);
    (*field)++;
    pthread_mutex_unlock(&p->mu);
}

static void count_waiters(struct part *p, int delta)
{
    pthread_mutex_lock(&p->mu);
    struct lock_stats *l = &p->stats.lock;
    l->waiters += (uint64_t)delta;
    if (l->waiters > l->max_waiters)
        l->max_waiters = l->waiters;
    pthread_mutex_unlock(&p->mu);
}

/* What other threads read (cluster_read_stats) of this loop's state,
 * copied under the stats mutex after each step that changes it. */
static void publish(struct part *p)
{
    const struct etcd_client *clients[4] = {&p->queue, &p->section, &p->watchc,
                                            p->first ? &p->c->lease_client : NULL};
    pthread_mutex_lock(&p->mu);
    p->stats.healthy = p->synced;
    p->stats.queue_length = p->mirror.queued;
    p->stats.revision = (uint64_t)p->revision;
    memset(p->stats.errors, 0, sizeof(p->stats.errors));
    for (int i = 0; i < 4; i++)
        for (int e = 0; clients[i] && e < ETCD_ERR_COUNT; e++)
            p->stats.errors[e] += clients[i]->stats.errors[e];
    snprintf(p->stats.endpoint, sizeof(p->stats.endpoint), "%s", etcd_endpoint(&p->queue));
    pthread_mutex_unlock(&p->mu);
}

static void see_counter(struct part *p, uint64_t value, int64_t mod_revision)
{
    if (mod_revision <= p->counter.mod_revision)
        return;
    p->counter = (struct counter_copy){value, mod_revision};
    uint64_t seen = atomic_load_explicit(&p->c->counter, memory_order_relaxed);
    while (value > seen &&
           !atomic_compare_exchange_weak_explicit(&p->c->counter, &seen, value,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static void see_revision(struct part *p, int64_t revision)
{
    if (revision > p->revision)
        p->revision = revision;
}

/* ---- the counter's value ---- */

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return -EIO;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EIO;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* The counter's value is "N KEY": the number, then the queue key of the
 * request that wrote it. The key is the write's receipt: a writer that
 * cannot tell whether its write was applied finds out from it (see
 * prove_write). A value without one (an older cluster) is just N. */
static size_t counter_digits(const char *value, size_t len)
{
    const char *space = memchr(value, ' ', len);
    return space ? (size_t)(space - value) : len;
}

/* The counter from a range result (none: 0 at revision 0). */
static int read_counter(struct part *p, const struct etcd_op_result *r)
{
    uint64_t v = 0;
    if (r->nkvs == 0) {
        see_counter(p, 0, 0);
        return 0;
    }
    int rc = parse_u64(r->kvs[0].value, counter_digits(r->kvs[0].value, r->kvs[0].value_len), &v);
    if (rc < 0) {
        log_msg(LOG_LEVEL_ERROR, "cluster: %s holds '%.*s', not a number", p->c->counter_key,
                (int)(r->kvs[0].value_len > 40 ? 40 : r->kvs[0].value_len), r->kvs[0].value);
        return rc;
    }
    see_counter(p, v, r->kvs[0].mod_revision);
    return 0;
}

static struct etcd_op range_op(const char *key, bool prefix, bool count_only)
{
    return (struct etcd_op){
        .type = ETCD_OP_RANGE,
        .range = {.key = key, .key_len = strlen(key), .prefix = prefix, .count_only = count_only}};
}

/* ---- tickets ---- */

static bool is_mine(const struct part *p, const struct mirror_entry *e)
{
    size_t n = strlen(p->mine);
    return e->key_len > n && memcmp(e->key, p->mine, n) == 0;
}

static void ticket_move(struct ticket *t, struct list_node *to, enum ticket_state state)
{
    if (list_linked(&t->link))
        list_remove(&t->link);
    list_push_back(to, &t->link);
    t->state = state;
}

/* Its key is gone from etcd (at rev, or 0 if unknown): the ticket stays
 * until the watch has seen that much, so a late event of its key is not
 * taken for a stranger's. */
static void ticket_done(struct ticket *t, int64_t rev)
{
    t->done_rev = rev;
    ticket_move(t, &t->p->done, T_DONE);
}

static void ticket_free(struct ticket *t)
{
    struct part *p = t->p;
    if (list_linked(&t->link))
        list_remove(&t->link);
    t->entry->tag = NULL;
    if (!list_linked(&t->entry->link))
        mirror_remove(&p->mirror, t->entry);
    free(t);
}

/* Its key may exist and must go: the reaper deletes it. */
static void ticket_leave(struct ticket *t)
{
    struct part *p = t->p;
    ticket_move(t, &p->leaving, T_LEAVING);
    if (p->reaper_idle)
        loop_wake(p->reaper, 0);
}

static int ticket_new(struct part *p, int64_t lease, struct ticket **out)
{
    char key[KEY_MAX];
    int len = snprintf(key, sizeof(key), "%s%016" PRIx64, p->mine, ++p->seq);
    struct ticket *t = calloc(1, sizeof(*t));
    if (!t || mirror_add(&p->mirror, key, (size_t)len, &t->entry) < 0) {
        free(t);
        return -ENOMEM;
    }
    t->p = p;
    t->lease = lease;
    t->owned = true;
    t->co = coro_current();
    t->entry->tag = t;
    t->queued_wall_us = wall_us();
    ticket_move(t, &p->live, T_JOINING);
    *out = t;
    return 0;
}

/* ---- granting: the head of the queue, if it is one of ours ---- */

static void record_handoff(struct part *p, const struct ticket *t)
{
    if (!p->released_elsewhere || p->released_wall_us < t->queued_wall_us)
        return;
    pthread_mutex_lock(&p->mu);
    hist_record(&p->stats.handoff_us, (uint64_t)(wall_us() - p->released_wall_us));
    pthread_mutex_unlock(&p->mu);
}

/* The head is granted once the mirror has seen its key: everything older
 * is then known to be gone. */
static void grant_head(struct part *p)
{
    struct mirror_entry *e = mirror_head(&p->mirror);
    struct ticket *t = e ? e->tag : NULL;
    if (!t || t->state != T_QUEUED || !p->synced || t->revision > p->revision)
        return;
    t->state = T_GRANTED;
    record_handoff(p, t);
    if (loop_parked(t->co)) /* else it is the caller, about to park */
        loop_wake(t->co, 0);
}

/* A waiting ticket whose key vanished (its lease expired): its request
 * gets -EAGAIN. */
static void ticket_lost(struct ticket *t, int64_t rev)
{
    ticket_done(t, rev);
    if (loop_parked(t->co))
        loop_wake(t->co, -EAGAIN);
}

/* ---- the lease ---- */

static void drop_lease_tickets(struct part *p, int64_t lease)
{
    list_for_each_safe(n, next, &p->live)
    {
        struct ticket *t = list_entry(n, struct ticket, link);
        if (t->lease == lease && t->state == T_QUEUED)
            ticket_lost(t, 0);
    }
}

/* On p's own loop: if the lease keeper lives here (the first loop), it
 * asks for a new lease now rather than at its next renewal. */
static void wake_keeper(struct part *p)
{
    if (p->keeper && loop_parked(p->keeper))
        loop_wake(p->keeper, 0);
}

/* On a part's own loop: another loop found the lease lost. */
static void on_lease_lost(void *arg)
{
    struct part *p = arg;
    atomic_store(&p->lost_posted, false);
    drop_lease_tickets(p, atomic_load(&p->lost_lease));
    wake_keeper(p);
}

/* The other loops' waiting requests lose their place too, even when etcd
 * is too far away for their watches to see the keys go. */
static void tell_other_parts(struct part *from, int64_t lease)
{
    struct cluster *c = from->c;
    unsigned n = atomic_load(&c->nparts);
    for (unsigned i = 0; i < n && i < MAX_LOOPS; i++) {
        struct part *q = atomic_load(&c->parts[i]);
        if (!q || q == from)
            continue;
        atomic_store(&q->lost_lease, lease);
        if (!atomic_exchange(&q->lost_posted, true))
            loop_post(q->loop, &q->lost_post);
    }
}

/* The lease is gone, with every key on it: waiting requests of every
 * loop lose their place (-EAGAIN: 503). */
static void lease_lost(struct part *p, int64_t lease)
{
    struct cluster *c = p->c;
    int64_t expect = lease;
    if (!atomic_compare_exchange_strong(&c->lease, &expect, 0))
        return;
    log_msg(LOG_LEVEL_WARN, "cluster: lease %" PRIx64 " lost; waiting requests get 503",
            (uint64_t)lease);
    count(p, &p->stats.lease_losses);
    drop_lease_tickets(p, lease);
    tell_other_parts(p, lease);
    wake_keeper(p); /* or the first loop does, as it is told */
}

static int lease_grant(struct part *p)
{
    struct cluster *c = p->c;
    int64_t id, ttl;
    int rc =
        etcd_lease_grant(&c->lease_client, c->ttl_s, &id, &ttl, call_deadline(c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    if (c->stale_lease) /* its keys would block the queue until it expires */
        etcd_lease_revoke(&c->lease_client, c->stale_lease, call_deadline(c, LOOP_FOREVER));
    c->stale_lease = 0;
    atomic_store(&c->lease_ttl_ms, ttl * 1000);
    atomic_store(&c->lease, id);
    count(p, &p->stats.lease_grants);
    log_msg(LOG_LEVEL_INFO, "cluster: lease %" PRIx64 " granted, TTL %" PRId64 " s", (uint64_t)id,
            ttl);
    return 0;
}

/* Renews the lease every third of its TTL; a lease that could not be
 * renewed for a whole TTL is taken as lost here (etcd may still have it:
 * it is revoked once etcd answers). */
static int lease_keep(struct part *p, int64_t id, int64_t *valid_until)
{
    struct cluster *c = p->c;
    int64_t ttl_us = atomic_load(&c->lease_ttl_ms) * 1000, sent = loop_now_us();
    int rc = etcd_lease_keepalive(&c->lease_client, id, NULL, call_deadline(c, *valid_until));
    if (rc == 0) {
        *valid_until = sent + ttl_us;
        return loop_sleep_us(ttl_us / 3);
    }
    if (rc == -ENOENT || loop_now_us() >= *valid_until) {
        if (rc != -ENOENT)
            c->stale_lease = id;
        lease_lost(p, id);
        return 0;
    }
    return loop_sleep_us(RETRY_US);
}

static void keeper_main(void *arg)
{
    struct part *p = arg;
    struct cluster *c = p->c;
    bool said_down = false;
    int64_t valid_until = 0;
    while (!atomic_load(&c->stopping)) {
        int64_t id = atomic_load(&c->lease);
        if (id) {
            lease_keep(p, id, &valid_until);
            publish(p);
            continue;
        }
        int rc = lease_grant(p);
        publish(p);
        if (rc == 0) {
            said_down = false;
            valid_until = loop_now_us() + atomic_load(&c->lease_ttl_ms) * 1000;
            continue;
        }
        if (!said_down) /* once per outage, not every retry */
            log_msg(LOG_LEVEL_WARN, "cluster: etcd (%s) does not answer: %s; /access answers 503",
                    etcd_endpoint(&c->lease_client), etcd_last_error(&c->lease_client));
        said_down = true;
        loop_sleep_us(RETRY_US);
    }
    p->running--;
}

/* ---- the watch: the mirror follows etcd ---- */

static void on_queue_put(struct part *p, const struct etcd_kv *kv)
{
    struct mirror_entry *e;
    if (mirror_add(&p->mirror, kv->key, kv->key_len, &e) < 0)
        return; /* out of memory: the next resync repairs the mirror */
    mirror_queue(&p->mirror, e, kv->create_revision);
    struct ticket *t = e->tag;
    if (!t && is_mine(p, e)) {
        /* Ours, but no request has it: a PUT applied after its request
         * gave up. It would block the queue until the lease ends. */
        struct ticket *ghost = calloc(1, sizeof(*ghost));
        if (!ghost)
            return;
        *ghost = (struct ticket){.p = p, .entry = e, .lease = kv->lease};
        e->tag = ghost;
        ticket_leave(ghost);
    }
}

static void on_queue_delete(struct part *p, const struct etcd_kv *kv)
{
    struct mirror_entry *e = mirror_find(&p->mirror, kv->key, kv->key_len);
    if (!e)
        return;
    struct ticket *t = e->tag;
    if (!t) {
        mirror_remove(&p->mirror, e);
        return;
    }
    mirror_unqueue(&p->mirror, e);
    if (t->state == T_QUEUED)
        ticket_lost(t, kv->mod_revision);
}

static void on_released(struct part *p, const struct etcd_kv *kv)
{
    long long at = 0;
    char who[17] = "";
    if (sscanf(kv->value, "%lld %16s", &at, who) == 2) {
        p->released_wall_us = at;
        p->released_elsewhere = strcmp(who, p->c->self) != 0;
    }
}

/* Frees done tickets once the mirror has seen their keys go (those whose
 * request still runs wait for it to let go). */
static void collect(struct part *p)
{
    list_for_each_safe(n, next, &p->done)
    {
        struct ticket *t = list_entry(n, struct ticket, link);
        if (!t->owned && t->done_rev <= p->revision)
            ticket_free(t);
    }
}

/* The request is done with t: the part frees it when etcd's view allows. */
static void ticket_release(struct ticket *t)
{
    t->owned = false;
    t->co = NULL;
}

static void apply_event(struct part *p, const struct etcd_event *ev)
{
    const struct etcd_kv *kv = &ev->kv;
    const struct cluster *c = p->c;
    size_t qlen = strlen(c->queue_prefix);
    if (kv->mod_revision <= p->read_rev)
        return; /* the range read it already (a txn's events share a revision) */
    see_revision(p, kv->mod_revision);
    bool queue = kv->key_len > qlen && memcmp(kv->key, c->queue_prefix, qlen) == 0;
    if (queue && ev->type == ETCD_EVENT_PUT)
        on_queue_put(p, kv);
    else if (queue)
        on_queue_delete(p, kv);
    else if (ev->type == ETCD_EVENT_PUT && strcmp(kv->key, c->counter_key) == 0)
        read_counter(p, &(struct etcd_op_result){.nkvs = 1, .kvs = (struct etcd_kv *)kv});
    else if (ev->type == ETCD_EVENT_PUT && strcmp(kv->key, c->released_key) == 0)
        on_released(p, kv);
    collect(p);
    grant_head(p);
    publish(p);
}

/* Forgets the mirror's queue: what is not ours goes, ours wait for the range. */
static void mirror_forget(struct part *p)
{
    struct mirror_entry *e;
    while ((e = mirror_head(&p->mirror))) {
        if (e->tag)
            mirror_unqueue(&p->mirror, e);
        else
            mirror_remove(&p->mirror, e);
    }
}

/* Our waiting tickets that the range should have shown, and did not:
 * their keys went while the watch was down. */
static void drop_missing(struct part *p, int64_t rev)
{
    list_for_each_safe(n, next, &p->live)
    {
        struct ticket *t = list_entry(n, struct ticket, link);
        if (t->state == T_QUEUED && t->revision <= rev && !list_linked(&t->entry->link))
            ticket_lost(t, rev);
    }
}

/* Reads the queue and the counter at one revision, after the watch was
 * created: with the events after it, the mirror misses nothing. */
static int resync(struct part *p)
{
    struct cluster *c = p->c;
    struct etcd_op ops[2] = {range_op(c->queue_prefix, true, false),
                             range_op(c->counter_key, false, false)};
    ops[0].range.sort_order = ETCD_SORT_ASCEND;
    ops[0].range.sort_target = ETCD_SORT_CREATE;
    struct etcd_txn txn = {.success = ops, .nsuccess = 2};
    struct etcd_reply r;
    int rc = etcd_txn(&p->watchc, &txn, &r, call_deadline(c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    mirror_forget(p);
    p->revision = p->read_rev = r.revision;
    for (size_t i = 0; i < r.ops[0].nkvs; i++)
        on_queue_put(p, &r.ops[0].kvs[i]);
    rc = read_counter(p, &r.ops[1]);
    etcd_reply_free(&r);
    drop_missing(p, p->revision);
    collect(p); /* the range is the truth now */
    return rc;
}

/* A watch can go silent without breaking (its member stalled): while
 * requests wait, compare with a fresh read now and then. */
static bool watch_alive(struct part *p)
{
    struct etcd_range_req req = {
        .key = p->c->counter_key, .key_len = strlen(p->c->counter_key), .count_only = true};
    struct etcd_reply r;
    if (p->stats.lock.waiters == 0)
        return true;
    int rc = etcd_range(&p->watchc, &req, &r, call_deadline(p->c, LOOP_FOREVER));
    bool alive = rc == 0 && r.revision <= p->revision;
    etcd_reply_free(&r);
    return alive || rc == -ECANCELED;
}

static void follow(struct part *p, struct etcd_watch *w)
{
    struct etcd_event ev;
    int64_t quiet_until = loop_now_us() + LIVENESS_US;
    while (!atomic_load(&p->c->stopping)) {
        int rc = etcd_watch_next(w, &ev, quiet_until);
        if (rc == 0) {
            apply_event(p, &ev);
            quiet_until = loop_now_us() + LIVENESS_US;
        } else if (rc == -ETIMEDOUT) {
            if (!watch_alive(p))
                return;
            quiet_until = loop_now_us() + LIVENESS_US;
        } else if (rc != -ECANCELED) {
            return;
        }
    }
}

static void watcher_main(void *arg)
{
    struct part *p = arg;
    struct cluster *c = p->c;
    while (!atomic_load(&c->stopping)) {
        struct etcd_watch w;
        int rc = etcd_watch_open(&p->watchc, &w, c->prefix, strlen(c->prefix), true,
                                 call_deadline(c, LOOP_FOREVER));
        if (rc < 0) {
            loop_sleep_us(RETRY_US);
            continue;
        }
        rc = resync(p);
        if (rc == 0) {
            p->synced = true;
            count(p, &p->stats.resyncs);
            grant_head(p);
            publish(p);
            follow(p, &w);
        } else {
            loop_sleep_us(RETRY_US);
        }
        p->synced = false;
        publish(p);
        etcd_watch_close(&w);
    }
    p->running--;
}

/* ---- the reaper: deletes the keys of requests that left ---- */

static void reaper_main(void *arg)
{
    struct part *p = arg;
    struct cluster *c = p->c;
    while (!atomic_load(&c->stopping)) {
        if (list_empty(&p->leaving)) {
            p->reaper_idle = true;
            loop_park(LOOP_FOREVER);
            p->reaper_idle = false;
            continue;
        }
        struct ticket *t = list_entry(p->leaving.next, struct ticket, link);
        struct etcd_delete_req del = {.key = t->entry->key, .key_len = t->entry->key_len};
        struct etcd_reply r;
        int rc = etcd_delete(&p->queue, &del, &r, call_deadline(c, LOOP_FOREVER));
        if (rc == 0)
            ticket_done(t, r.revision);
        publish(p);
        if (rc < 0)
            loop_sleep_us(RETRY_US);
        etcd_reply_free(&r);
    }
    p->running--;
}

/* ---- acquiring ---- */

/* The join: my key, the counter and the queue's length, at one revision. */
static int join(struct part *p, struct ticket *t, int64_t deadline, bool *alone)
{
    struct cluster *c = p->c;
    struct etcd_op ops[3] = {
        {.type = ETCD_OP_PUT,
         .put = {.key = t->entry->key,
                 .key_len = t->entry->key_len,
                 .value = c->self,
                 .value_len = strlen(c->self),
                 .lease = t->lease}},
        range_op(c->counter_key, false, false),
        range_op(c->queue_prefix, true, true),
    };
    struct etcd_txn txn = {.success = ops, .nsuccess = 3};
    struct etcd_reply r;
    int rc = etcd_txn(&p->queue, &txn, &r, call_deadline(c, deadline));
    if (rc < 0)
        return rc;
    t->revision = r.revision;
    rc = read_counter(p, &r.ops[1]);
    *alone = r.ops[2].count == 1;
    etcd_reply_free(&r);
    return rc;
}

/* Why a request that did not get the lock gets what it gets. */
static int refusal(struct part *p, int rc, int64_t deadline)
{
    if (rc == -ECANCELED) {
        count(p, &p->stats.lock.cancellations);
        return rc;
    }
    if (rc == -ETIMEDOUT && loop_now_us() >= deadline) {
        count(p, &p->stats.lock.timeouts);
        return rc;
    }
    count(p, &p->stats.unavailable);
    return -EAGAIN;
}

static int wait_turn(struct part *p, struct ticket *t, int64_t deadline)
{
    t->state = T_QUEUED;
    grant_head(p);
    if (t->state == T_GRANTED)
        return 0;
    count_waiters(p, 1);
    int rc = loop_park(deadline);
    count_waiters(p, -1);
    if (rc == 0)
        count(p, &p->stats.lock.contended);
    return rc;
}

static int enter(struct part *p, struct ticket *t, int64_t deadline)
{
    bool alone = false;
    int rc = join(p, t, deadline, &alone);
    if (rc == -ENOENT) /* the lease: etcd no longer has it */
        lease_lost(p, t->lease);
    if (rc < 0) {
        ticket_leave(t);
        return rc;
    }
    if (alone) {
        t->state = T_GRANTED;
        return 0;
    }
    rc = wait_turn(p, t, deadline);
    if (rc < 0 && t->state != T_DONE)
        ticket_leave(t); /* timed out or cancelled: my key must go */
    return rc;
}

static bool queue_full(const struct part *p, uint64_t max_waiters)
{
    return max_waiters && p->synced && p->mirror.queued > max_waiters;
}

int cluster_acquire(struct cluster *c, int64_t deadline_us, uint64_t max_waiters,
                    struct cluster_hold *h)
{
    struct part *p = here;
    struct ticket *t;
    int64_t asked = loop_now_us(), lease = atomic_load(&c->lease);
    if (!p) /* this loop could not attach */
        return -EAGAIN;
    if (!lease || atomic_load(&c->stopping))
        return refusal(p, -EAGAIN, deadline_us);
    if (queue_full(p, max_waiters)) {
        count(p, &p->stats.lock.shed);
        return -EBUSY;
    }
    if (ticket_new(p, lease, &t) < 0)
        return refusal(p, -ENOMEM, deadline_us);
    int rc = enter(p, t, deadline_us);
    publish(p);
    if (rc < 0) {
        ticket_release(t);
        return refusal(p, rc, deadline_us);
    }
    pthread_mutex_lock(&p->mu);
    p->stats.lock.acquisitions++;
    hist_record(&p->stats.lock.wait_us, (uint64_t)(loop_now_us() - asked));
    pthread_mutex_unlock(&p->mu);
    *h = (struct cluster_hold){.t = t};
    return 0;
}

/* ---- the fenced write ---- */

struct commit {
    struct ticket *t;
    struct counter_copy read; /* what the write is based on */
    bool unsure;              /* a try may have been applied unseen */
    int64_t started;
    /* Tries go on this long: while etcd elects a new leader, and for as
     * long as the lease may live, an unseen try can still be settled. */
    int64_t give_up;
};

static int commit_try(struct part *p, struct commit *k, struct etcd_reply *r)
{
    struct cluster *c = p->c;
    char value[24 + KEY_MAX], released[48];
    snprintf(value, sizeof(value), "%" PRIu64 " %.*s", k->read.value + 1, (int)k->t->entry->key_len,
             k->t->entry->key);
    snprintf(released, sizeof(released), "%" PRId64 " %s", wall_us(), c->self);
    struct etcd_cmp cmps[2] = {
        {.key = k->t->entry->key,
         .key_len = k->t->entry->key_len,
         .target = ETCD_CMP_CREATE,
         .number = k->t->revision},
        {.key = c->counter_key,
         .key_len = strlen(c->counter_key),
         .target = ETCD_CMP_MOD,
         .number = k->read.mod_revision},
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
        {.type = ETCD_OP_DELETE, .del = {.key = k->t->entry->key, .key_len = k->t->entry->key_len}},
    };
    struct etcd_op failed[2] = {range_op(c->counter_key, false, false),
                                range_op(k->t->entry->key, false, false)};
    struct etcd_txn txn = {
        .cmps = cmps, .ncmps = 2, .success = ok, .nsuccess = 3, .failure = failed, .nfailure = 2};
    return etcd_txn(&p->section, &txn, r, call_deadline(c, LOOP_FOREVER));
}

/* The counter as of revision rev (0: the latest) into *value and its
 * mod revision; its writer's key, if out_kv is given, stays in reply r. */
static int counter_at(struct part *p, int64_t rev, struct etcd_reply *r, uint64_t *value,
                      const struct etcd_kv **out_kv)
{
    struct etcd_range_req req = {
        .key = p->c->counter_key, .key_len = strlen(p->c->counter_key), .revision = rev};
    int rc = etcd_range(&p->section, &req, r, call_deadline(p->c, LOOP_FOREVER));
    if (rc < 0)
        return rc;
    const struct etcd_kv *kv = r->ops[0].nkvs ? &r->ops[0].kvs[0] : NULL;
    *value = 0;
    if (kv && parse_u64(kv->value, counter_digits(kv->value, kv->value_len), value) < 0) {
        etcd_reply_free(r);
        return -EIO;
    }
    if (out_kv)
        *out_kv = kv;
    return 0;
}

/* Whether my write of N+1 (on N at mod revision R) was applied, when its
 * reply was lost. Every write compares the counter's mod revision with
 * the one it read, so exactly one write follows R, and it wrote N+1: the
 * first revision after R at which the counter exceeds N. etcd keeps the
 * history (until compacted): a binary search over revisions finds that
 * version, and the key in its value says whose write it was. Returns 0
 * (mine: applied), -EAGAIN (someone else's: mine was not), or another
 * error (not proven: etcd unreachable, or the history compacted). */
static int prove_write(struct part *p, const struct commit *k)
{
    struct etcd_reply r;
    const struct etcd_kv *kv;
    uint64_t v;
    int64_t lo = k->read.mod_revision + 1, hi;
    int rc = counter_at(p, 0, &r, &v, &kv);
    if (rc < 0)
        return rc;
    hi = kv ? kv->mod_revision : 0;
    etcd_reply_free(&r);
    if (v <= k->read.value)
        return -EAGAIN; /* nothing was written since I read: not applied */
    while (lo < hi) {   /* the first revision in [lo, hi] where the counter exceeds N */
        int64_t mid = lo + (hi - lo) / 2;
        if ((rc = counter_at(p, mid, &r, &v, NULL)) < 0)
            return rc;
        etcd_reply_free(&r);
        if (v > k->read.value)
            hi = mid;
        else
            lo = mid + 1;
    }
    if ((rc = counter_at(p, lo, &r, &v, &kv)) < 0)
        return rc;
    const char *tag = kv ? memchr(kv->value, ' ', kv->value_len) : NULL;
    bool mine = tag && (size_t)(kv->value + kv->value_len - tag - 1) == k->t->entry->key_len &&
                memcmp(tag + 1, k->t->entry->key, k->t->entry->key_len) == 0;
    etcd_reply_free(&r);
    return mine ? 0 : -EAGAIN;
}

/* My key is gone, so an earlier try that may have gone unseen was
 * applied, or the lease took the key: the counter's history says which.
 * etcd may be electing a leader: ask again until it answers. */
static int settle_unsure(struct part *p, struct commit *k)
{
    int rc = -ETIMEDOUT;
    while (rc != 0 && rc != -EAGAIN && loop_now_us() < k->give_up) {
        rc = prove_write(p, k);
        if (rc != 0 && rc != -EAGAIN)
            loop_sleep_us(RETRY_US);
    }
    if (rc == 0 || rc == -EAGAIN) {
        log_msg(LOG_LEVEL_INFO, "cluster: a write of %" PRIu64 " whose reply was lost %s",
                k->read.value + 1, rc == 0 ? "was applied: 200" : "was not: 503");
        return rc;
    }
    count(p, &p->stats.unknown);
    log_msg(LOG_LEVEL_WARN,
            "cluster: the write of %" PRIu64 " may have been applied, and cannot be proven: 503",
            k->read.value + 1);
    return -EAGAIN;
}

/* A failed compare: my key gone means fenced off (or, after an unseen
 * try, perhaps applied); else the counter moved under a stale copy, and
 * the next try writes on the value read now. */
static int commit_failed(struct part *p, struct commit *k, struct etcd_reply *r, bool *again)
{
    const struct etcd_op_result *counter = &r->ops[0], *key = &r->ops[1];
    bool mine = key->nkvs && key->kvs[0].create_revision == k->t->revision;
    if (!mine) {
        int rc = k->unsure ? settle_unsure(p, k) : -EAGAIN;
        if (rc < 0)
            count(p, &p->stats.fenced);
        return rc;
    }
    int rc = read_counter(p, counter);
    k->read = p->counter;
    k->unsure = false;
    *again = rc == 0;
    return rc < 0 ? rc : -EAGAIN;
}

/* One try and what it tells. Returns 0 (written), -EAGAIN (refused, or
 * again = true: retry at once) or another error (outcome unknown). */
static int commit_step(struct part *p, struct commit *k, bool *again)
{
    struct etcd_reply r;
    *again = false;
    int rc = commit_try(p, k, &r);
    if (rc < 0) {
        k->unsure = true;
    } else if (r.succeeded) {
        see_counter(p, k->read.value + 1, r.revision);
        ticket_done(k->t, r.revision);
    } else {
        rc = commit_failed(p, k, &r, again);
        if (rc == 0)
            ticket_done(k->t, 0);
    }
    etcd_reply_free(&r);
    return rc;
}

static int commit_run(struct part *p, struct commit *k)
{
    for (int tries = 0;;) {
        bool again;
        int rc = commit_step(p, k, &again);
        if (rc == 0 || (rc == -EAGAIN && !again))
            return rc;
        if (again ? ++tries >= COMMIT_TRIES : loop_now_us() >= k->give_up)
            break;
        if (!again && rc != -ECANCELED)
            loop_sleep_us(RETRY_US / 10);
    }
    if (k->unsure)
        count(p, &p->stats.unknown);
    return -EAGAIN;
}

int cluster_commit(struct cluster *c, struct cluster_hold *h, uint64_t *n)
{
    struct part *p = here;
    struct ticket *t = h->t;
    /* The copy with the highest revision seen: what the section read,
     * unless a late event brought a newer one (the compare tells). */
    struct commit k = {.t = t, .read = p->counter, .started = loop_now_us()};
    k.give_up = k.started + (atomic_load(&c->lease_ttl_ms) + 2 * c->s.call_ms) * 1000;
    int rc = commit_run(p, &k);
    publish(p);
    if (rc == 0)
        *n = k.read.value + 1;
    else if (t->state == T_GRANTED)
        ticket_leave(t); /* my key may still be there: it must not block the queue */
    ticket_release(t);
    pthread_mutex_lock(&p->mu);
    hist_record(&p->stats.lock.hold_us, (uint64_t)(loop_now_us() - k.started));
    pthread_mutex_unlock(&p->mu);
    return rc;
}

uint64_t cluster_counter(const struct cluster *c)
{
    return atomic_load_explicit(&c->counter, memory_order_relaxed);
}

/* ---- set up and tear down ---- */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= CLUSTER_NAME_MAX)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static void make_keys(struct cluster *c)
{
    snprintf(c->prefix, sizeof(c->prefix), "/turnstile/%s/", c->name);
    snprintf(c->counter_key, sizeof(c->counter_key), "%scounter", c->prefix);
    snprintf(c->queue_prefix, sizeof(c->queue_prefix), "%squeue/", c->prefix);
    snprintf(c->released_key, sizeof(c->released_key), "%sreleased", c->prefix);
    /* Unique per process: the time and the pid, so a restarted instance
     * never mistakes its predecessor's keys for its own. */
    uint64_t id = (uint64_t)wall_us() * 2654435761u ^ ((uint64_t)getpid() << 40);
    snprintf(c->self, sizeof(c->self), "%016" PRIx64, id);
}

int cluster_open(struct cluster **out, const struct cluster_settings *s)
{
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->s = *s;
    snprintf(c->endpoints, sizeof(c->endpoints), "%s", s->endpoints);
    c->s.endpoints = c->endpoints;
    c->ttl_s = (s->lease_ttl_ms + 999) / 1000;
    if (!name_ok(s->name) || etcd_client_init(&c->lease_client, c->endpoints) < 0) {
        free(c);
        return -EINVAL;
    }
    snprintf(c->name, sizeof(c->name), "%s", s->name);
    c->s.name = c->name;
    make_keys(c);
    *out = c;
    return 0;
}

static int spawn(struct part *p, coro_fn fn, coro_t **co)
{
    int rc = loop_spawn(p->loop, fn, p, co);
    if (rc == 0)
        p->running++;
    return rc;
}

int cluster_attach(struct cluster *c, struct loop *loop)
{
    unsigned i = atomic_fetch_add(&c->nparts, 1);
    struct part *p = i < MAX_LOOPS ? calloc(1, sizeof(*p)) : NULL;
    if (!p)
        return -ENOMEM;
    *p = (struct part){.c = c, .loop = loop, .first = i == 0};
    p->lost_post = (struct loop_post){.fn = on_lease_lost, .arg = p};
    snprintf(p->mine, sizeof(p->mine), "%squeue/%s.%u-", c->prefix, c->self, i);
    pthread_mutex_init(&p->mu, NULL);
    lock_stats_init(&p->stats.lock);
    hist_init(&p->stats.handoff_us);
    list_init(&p->live);
    list_init(&p->leaving);
    list_init(&p->done);
    mirror_init(&p->mirror);
    etcd_client_init(&p->queue, c->endpoints);
    etcd_client_init(&p->section, c->endpoints);
    etcd_client_init(&p->watchc, c->endpoints);
    atomic_store(&c->parts[i], p);
    here = p;
    int rc = spawn(p, watcher_main, &p->watcher);
    if (rc == 0)
        rc = spawn(p, reaper_main, &p->reaper);
    if (rc == 0 && p->first)
        rc = spawn(p, keeper_main, &p->keeper);
    return rc;
}

/* Runs on the loop at detach: ends our coroutines, revokes the lease. */
static void stopper_main(void *arg)
{
    struct part *p = arg;
    struct cluster *c = p->c;
    int64_t end = loop_now_us() + STOP_WAIT_US;
    coro_t *mine[3] = {p->watcher, p->reaper, p->keeper};
    for (int i = 0; i < 3; i++)
        if (mine[i] && loop_parked(mine[i]))
            loop_cancel(mine[i]);
    while (p->running > 0 && loop_now_us() < end)
        loop_sleep_us(1000);
    int64_t lease = atomic_exchange(&c->lease, 0);
    if (p->first && lease)
        etcd_lease_revoke(&c->lease_client, lease, call_deadline(c, LOOP_FOREVER));
    p->running = -1;
    loop_break(p->loop);
}

static void free_tickets(struct list_node *list)
{
    while (!list_empty(list)) {
        struct ticket *t = list_entry(list->next, struct ticket, link);
        list_remove(&t->link);
        free(t);
    }
}

void cluster_detach(struct cluster *c, struct loop *loop)
{
    struct part *p = here;
    if (!p || p->loop != loop)
        return;
    atomic_store(&c->stopping, true);
    if (loop_spawn(loop, stopper_main, p, NULL) == 0)
        while (p->running != -1)
            loop_run(loop);
    etcd_client_fini(&p->queue);
    etcd_client_fini(&p->section);
    etcd_client_fini(&p->watchc);
    if (p->first)
        etcd_client_fini(&c->lease_client);
    free_tickets(&p->live);
    free_tickets(&p->leaving);
    free_tickets(&p->done);
    mirror_fini(&p->mirror);
    here = NULL;
}

void cluster_close(struct cluster *c)
{
    unsigned n = atomic_load(&c->nparts);
    for (unsigned i = 0; i < n && i < MAX_LOOPS; i++) {
        struct part *p = atomic_load(&c->parts[i]);
        if (p)
            pthread_mutex_destroy(&p->mu);
        free(p);
    }
    free(c);
}

/* ---- statistics ---- */

/* Sums what adds up; the queue and the revision are the most any loop saw. */
static void add_stats(struct cluster_stats *to, const struct cluster_stats *from)
{
    lock_stats_add(&to->lock, &from->lock);
    if (from->queue_length > to->queue_length)
        to->queue_length = from->queue_length;
    if (from->revision > to->revision)
        to->revision = from->revision;
    to->lease_grants += from->lease_grants;
    to->lease_losses += from->lease_losses;
    to->fenced += from->fenced;
    to->unavailable += from->unavailable;
    to->unknown += from->unknown;
    to->resyncs += from->resyncs;
    for (int e = 0; e < ETCD_ERR_COUNT; e++)
        to->errors[e] += from->errors[e];
    hist_merge(&to->handoff_us, &from->handoff_us);
}

static void part_stats(struct part *p, struct cluster_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

void cluster_read_stats(struct cluster *c, struct cluster_stats *out)
{
    unsigned n = atomic_load(&c->nparts);
    *out = (struct cluster_stats){0};
    lock_stats_init(&out->lock);
    hist_init(&out->handoff_us);
    bool healthy = n > 0;
    for (unsigned i = 0; i < n && i < MAX_LOOPS && atomic_load(&c->parts[i]); i++) {
        struct cluster_stats *one = malloc(sizeof(*one));
        if (!one)
            return;
        part_stats(atomic_load(&c->parts[i]), one);
        healthy = healthy && one->healthy;
        add_stats(out, one);
        free(one);
    }
    int64_t lease = atomic_load(&c->lease);
    out->healthy = healthy && lease;
    out->lease_ttl_ms = (uint64_t)atomic_load(&c->lease_ttl_ms);
    snprintf(out->lease, sizeof(out->lease), lease ? "%" PRIx64 : "", (uint64_t)lease);
    struct part *first = atomic_load(&c->parts[0]);
    if (first) {
        pthread_mutex_lock(&first->mu);
        memcpy(out->endpoint, first->stats.endpoint, sizeof(out->endpoint));
        pthread_mutex_unlock(&first->mu);
    }
}

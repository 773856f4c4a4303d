/* ticket: places in the queue. See ticket.h. */
#include "ticket.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counts.h"

static void ticket_move(struct ticket *t, struct list_node *to, enum ticket_state state)
{
    if (list_linked(&t->link))
        list_remove(&t->link);
    list_push_back(to, &t->link);
    t->state = state;
}

bool ticket_key_is_ours(const struct cluster_loop *cl, const struct mirror_entry *e)
{
    size_t n = strlen(cl->key_prefix);
    return e->key_len > n && memcmp(e->key, cl->key_prefix, n) == 0;
}

/* A free slot: the most recently freed (its name is the likeliest to be
 * in etcd's caches), else a new one. */
static uint32_t slot_take(struct slots *s)
{
    return s->nfree ? s->free[--s->nfree] : s->made++;
}

/* Gives a slot back; out of memory, it is dropped (a new one is made). */
static void slot_put(struct slots *s, uint32_t slot)
{
    if (s->nfree == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        uint32_t *grown = realloc(s->free, cap * sizeof(*grown));
        if (!grown)
            return;
        s->free = grown;
        s->cap = cap;
    }
    s->free[s->nfree++] = slot;
}

int ticket_new(struct cluster_loop *cl, int64_t lease, struct ticket **out)
{
    char key[CLUSTER_KEY_MAX];
    struct ticket *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->slot = slot_take(&cl->slots);
    t->has_slot = true;
    int len = snprintf(key, sizeof(key), "%s%" PRIx32, cl->key_prefix, t->slot);
    if (mirror_add(&cl->mirror, key, (size_t)len, &t->entry) < 0) {
        slot_put(&cl->slots, t->slot);
        free(t);
        return -ENOMEM;
    }
    t->cl = cl;
    t->lease = lease;
    t->owned = true;
    t->co = coro_current();
    t->entry->tag = t;
    t->queued_wall_us = instance_wall_us();
    ticket_move(t, &cl->live, T_JOINING);
    *out = t;
    return 0;
}

struct ticket *ticket_ghost(struct cluster_loop *cl, struct mirror_entry *e, int64_t lease)
{
    struct ticket *ghost = calloc(1, sizeof(*ghost));
    if (!ghost)
        return NULL;
    *ghost = (struct ticket){.cl = cl, .entry = e, .lease = lease, .revision = e->create_revision};
    e->tag = ghost;
    ticket_leave(ghost);
    return ghost;
}

void ticket_done(struct ticket *t, int64_t rev)
{
    t->done_rev = rev;
    ticket_move(t, &t->cl->done, T_DONE);
}

static void ticket_free(struct ticket *t)
{
    struct cluster_loop *cl = t->cl;
    if (list_linked(&t->link))
        list_remove(&t->link);
    t->entry->tag = NULL;
    if (list_linked(&t->entry->link))
        t->retire_slot = true; /* the mirror still shows its key */
    else
        mirror_remove(&cl->mirror, t->entry);
    if (t->has_slot && !t->retire_slot)
        slot_put(&cl->slots, t->slot);
    free(t);
}

void ticket_leave(struct ticket *t)
{
    struct cluster_loop *cl = t->cl;
    ticket_move(t, &cl->leaving, T_LEAVING);
    if (cl->reaper_idle)
        loop_wake(cl->reaper, 0);
}

void ticket_lost(struct ticket *t, int64_t rev)
{
    ticket_done(t, rev);
    if (loop_parked(t->co))
        loop_wake(t->co, -EAGAIN);
}

void ticket_release(struct ticket *t)
{
    t->owned = false;
    t->co = NULL;
}

/* A grant that follows a release on another instance: its latency. */
static void record_handoff(struct cluster_loop *cl, const struct ticket *t)
{
    if (!cl->released_elsewhere || cl->released_wall_us < t->queued_wall_us)
        return;
    counts_handoff(cl, instance_wall_us() - cl->released_wall_us);
}

/* How the first key that may still hold the lock was reached. */
enum head_path {
    HEAD_WATCH,     /* it is the mirror's first: the watch showed every older key go */
    HEAD_EARLY,     /* past keys this loop's own etcd replies showed gone */
    HEAD_PIPELINED, /* past keys of this loop whose sections are over, writes owed */
};

/* A key of ours that the next grant may pass: its ticket's write is owed
 * (its section is over), or its deletion is known from this loop's own
 * etcd reply (a release's, a delete's) though the watch has not shown it
 * yet. A done key is passed only at the create revision its ticket knew: a
 * PUT that lands after its ticket gave up is a key of its own. */
static bool passable(const struct ticket *t, const struct mirror_entry *e)
{
    if (t->state == T_WRITING)
        return true;
    return t->state == T_DONE && t->revision && t->revision == e->create_revision;
}

/* The first ticket of ours in the mirror's order past passable keys, and
 * how it was reached; NULL if the first key that may still exist is not
 * ours. */
static struct ticket *live_head(const struct cluster_loop *cl, enum head_path *how)
{
    const struct mirror_entry *e = mirror_head(&cl->mirror);
    struct ticket *t = e ? e->tag : NULL;
    *how = HEAD_WATCH;
    while (t && passable(t, e)) {
        if (t->state == T_WRITING)
            *how = HEAD_PIPELINED;
        else if (*how == HEAD_WATCH)
            *how = HEAD_EARLY;
        e = mirror_next(&cl->mirror, e);
        t = e ? e->tag : NULL;
    }
    return t;
}

/* Granting t is strict FIFO even before the watch shows its elders gone:
 * t->revision <= cl->revision, so the mirror holds every key created up to
 * t's place, and keys created later sort behind it. The keys before t are
 * all this loop's, passable: gone from etcd (each done ticket's key was
 * deleted, as etcd's own reply said, and a key never comes back under the
 * same create revision; the local fast path), or keys whose sections are
 * over and whose writes are owed here (pipelined). So a waiter of
 * another loop or instance with an older key is never overtaken: it is
 * gone, or it would stop the walk. Once t's key is the first in etcd, t
 * holds the lock as any head does; until then nobody else can be granted,
 * since every other waiter's key is behind t's or the holder's.
 *
 * Pipelined, t's section overlaps only the earlier writes' wait and
 * flight: on this loop sections still follow one another (a key is passed
 * only once its section is over), and t's write follows theirs, alone or
 * in their group's txn, fenced as any other on its key's create revision
 * and the counter's mod revision the earlier outcome left (commit.h).
 * Across instances the guarantee is today's lease-based fencing: if this
 * instance was paused past its lease, t's key went with it, and t's write
 * is refused. */
void ticket_grant_head(struct cluster_loop *cl)
{
    enum head_path how;
    struct ticket *t = live_head(cl, &how);
    if (!t || t->state != T_QUEUED || !cl->synced || t->revision > cl->revision)
        return;
    t->state = T_GRANTED;
    if (how == HEAD_PIPELINED)
        counts_bump(cl, &cl->shown.pipelined);
    else if (how == HEAD_EARLY) /* no watch event: `released` says nothing of this grant */
        counts_bump(cl, &cl->shown.local_handoffs);
    else
        record_handoff(cl, t);
    if (loop_parked(t->co)) /* else it is the caller, about to park */
        loop_wake(t->co, 0);
}

void ticket_drop_lease(struct cluster_loop *cl, int64_t lease)
{
    list_for_each_safe(n, next, &cl->live)
    {
        struct ticket *t = list_entry(n, struct ticket, link);
        if (t->lease == lease && t->state == T_QUEUED)
            ticket_lost(t, 0);
    }
}

void ticket_drop_if_missing(struct ticket *t, int64_t rev)
{
    if (t->state == T_QUEUED && t->revision <= rev && !list_linked(&t->entry->link))
        ticket_lost(t, rev);
}

void ticket_drop_missing(struct cluster_loop *cl, int64_t rev)
{
    list_for_each_safe(n, next, &cl->live)
    {
        ticket_drop_if_missing(list_entry(n, struct ticket, link), rev);
    }
}

void ticket_collect(struct cluster_loop *cl)
{
    list_for_each_safe(n, next, &cl->done)
    {
        struct ticket *t = list_entry(n, struct ticket, link);
        /* A txn's events share a revision: at done_rev itself, wait for
         * the event of the key's own deletion (its slot is then free). */
        bool seen = t->done_rev < cl->revision ||
                    (t->done_rev == cl->revision && !list_linked(&t->entry->link));
        if (!t->owned && seen)
            ticket_free(t);
    }
}

void ticket_free_all(struct list_node *list)
{
    while (!list_empty(list)) {
        struct ticket *t = list_entry(list->next, struct ticket, link);
        list_remove(&t->link);
        free(t);
    }
}

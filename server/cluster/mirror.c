/* mirror: the queue as etcd holds it. See mirror.h. */
#include "mirror.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: keys differ in their last hex digits, and every byte counts. */
static uint64_t hash_key(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3u;
    return h;
}

void mirror_init(struct mirror *m)
{
    *m = (struct mirror){0};
    list_init(&m->order);
}

void mirror_fini(struct mirror *m)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct mirror_entry *e = m->buckets[i], *next; e; e = next) {
            next = e->chain;
            free(e);
        }
    free(m->buckets);
    mirror_init(m);
}

static struct mirror_entry **bucket_of(const struct mirror *m, uint64_t hash)
{
    return &m->buckets[hash & (m->nbuckets - 1)];
}

struct mirror_entry *mirror_find(const struct mirror *m, const char *key, size_t len)
{
    if (!m->nbuckets)
        return NULL;
    uint64_t h = hash_key(key, len);
    for (struct mirror_entry *e = *bucket_of(m, h); e; e = e->chain)
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

/* Doubles the buckets when there are more entries than buckets. */
static int grow(struct mirror *m)
{
    if (m->nentries < m->nbuckets)
        return 0;
    size_t n = m->nbuckets ? m->nbuckets * 2 : 64;
    struct mirror_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct mirror_entry *e = m->buckets[i], *next; e; e = next) {
            next = e->chain;
            e->chain = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int mirror_add(struct mirror *m, const char *key, size_t len, struct mirror_entry **out)
{
    *out = mirror_find(m, key, len);
    if (*out)
        return 0;
    struct mirror_entry *e = malloc(sizeof(*e) + len + 1);
    if (!e || grow(m) < 0) {
        free(e);
        return -ENOMEM;
    }
    *e = (struct mirror_entry){.hash = hash_key(key, len), .key_len = len};
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    struct mirror_entry **b = bucket_of(m, e->hash);
    e->chain = *b;
    *b = e;
    m->nentries++;
    *out = e;
    return 0;
}

void mirror_unqueue(struct mirror *m, struct mirror_entry *e)
{
    if (!list_linked(&e->link))
        return;
    list_remove(&e->link);
    e->create_revision = 0;
    m->queued--;
}

/* True if a's place is after (rev, seq). */
static bool after(const struct mirror_entry *a, int64_t rev, uint64_t seq)
{
    return a->create_revision > rev || (a->create_revision == rev && a->seq > seq);
}

void mirror_queue(struct mirror *m, struct mirror_entry *e, int64_t create_revision, uint64_t seq)
{
    mirror_unqueue(m, e);
    struct list_node *pos = &m->order;
    while (pos->prev != &m->order &&
           after(list_entry(pos->prev, struct mirror_entry, link), create_revision, seq))
        pos = pos->prev;
    e->create_revision = create_revision;
    e->seq = seq;
    list_insert_before(pos, &e->link);
    m->queued++;
}

void mirror_remove(struct mirror *m, struct mirror_entry *e)
{
    mirror_unqueue(m, e);
    struct mirror_entry **p = bucket_of(m, e->hash);
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    m->nentries--;
    free(e);
}

struct mirror_entry *mirror_head(const struct mirror *m)
{
    struct list_node *n = list_first(&m->order);
    return n ? list_entry(n, struct mirror_entry, link) : NULL;
}

const struct mirror_entry *mirror_next(const struct mirror *m, const struct mirror_entry *e)
{
    return e->link.next != &m->order ? list_entry(e->link.next, struct mirror_entry, link) : NULL;
}

/* idem: remembered Idempotency-Keys. See idem.h. */
#include "idem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct idem_entry {
    struct list_node by_age;  /* in idem.order */
    struct idem_entry *chain; /* next in its bucket */
    uint64_t hash;
    int64_t at_us; /* when it was remembered */
    struct idem_outcome outcome;
    size_t len;
    char key[]; /* len bytes: fields.c bounds a key */
};

/* Buckets for the cap at the first key, within these bounds: a reload that
 * raises the cap lengthens the chains instead of rehashing under the mutex. */
#define MIN_BUCKETS 64
#define MAX_BUCKETS (1u << 20)

void idem_init(struct idem *m, uint64_t retention_ms, uint64_t max_keys)
{
    *m = (struct idem){0};
    pthread_mutex_init(&m->mu, NULL);
    list_init(&m->order);
    idem_configure(m, retention_ms, max_keys);
}

void idem_configure(struct idem *m, uint64_t retention_ms, uint64_t max_keys)
{
    pthread_mutex_lock(&m->mu);
    m->st.retention_ms = retention_ms;
    m->st.max_keys = max_keys;
    m->retention_us = (int64_t)retention_ms * 1000;
    pthread_mutex_unlock(&m->mu);
}

void idem_destroy(struct idem *m)
{
    list_for_each_safe(node, next, &m->order) free(list_entry(node, struct idem_entry, by_age));
    free(m->bucket);
    pthread_mutex_destroy(&m->mu);
}

/* FNV-1a: keys are short and chosen by clients, but a client can only slow
 * its own lookups by colliding: the chains are per key, not per client. */
static uint64_t hash_key(const struct idem_key *key)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < key->len; i++)
        h = (h ^ (unsigned char)key->s[i]) * 1099511628211u;
    return h;
}

static struct idem_entry **slot(struct idem *m, uint64_t hash)
{
    return &m->bucket[hash & (m->nbuckets - 1)];
}

static struct idem_entry *lookup(struct idem *m, const struct idem_key *key, uint64_t hash)
{
    if (!m->bucket)
        return NULL;
    for (struct idem_entry *e = *slot(m, hash); e; e = e->chain)
        if (e->hash == hash && e->len == key->len && memcmp(e->key, key->s, key->len) == 0)
            return e;
    return NULL;
}

static void forget(struct idem *m, struct idem_entry *e)
{
    struct idem_entry **p = slot(m, e->hash);
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    list_remove(&e->by_age);
    m->st.keys--;
    free(e);
}

/* Oldest first: past the window, then as many as the cap needs (room for
 * one more when making room). */
static void trim(struct idem *m, int64_t now_us, uint64_t room)
{
    struct list_node *node;
    while ((node = list_first(&m->order)) != NULL) {
        struct idem_entry *e = list_entry(node, struct idem_entry, by_age);
        if (now_us - e->at_us >= m->retention_us)
            m->st.expired++;
        else if (m->st.keys + room > m->st.max_keys)
            m->st.evicted++;
        else
            return;
        forget(m, e);
    }
}

bool idem_find(struct idem *m, const struct idem_key *key, int64_t now_us, struct idem_outcome *out)
{
    uint64_t hash = hash_key(key);
    pthread_mutex_lock(&m->mu);
    trim(m, now_us, 0);
    struct idem_entry *e = lookup(m, key, hash);
    if (e) {
        *out = e->outcome;
        m->st.repeats++;
    }
    pthread_mutex_unlock(&m->mu);
    return e != NULL;
}

static int make_buckets(struct idem *m)
{
    size_t n = MIN_BUCKETS;
    while (n < m->st.max_keys && n < MAX_BUCKETS)
        n *= 2;
    m->bucket = calloc(n, sizeof(*m->bucket));
    if (!m->bucket)
        return -ENOMEM;
    m->nbuckets = n;
    return 0;
}

int idem_put(struct idem *m, const struct idem_key *key, int64_t now_us,
             const struct idem_outcome *o)
{
    uint64_t hash = hash_key(key);
    struct idem_entry *e = malloc(sizeof(*e) + key->len);
    int rc = -ENOMEM;
    pthread_mutex_lock(&m->mu);
    if (!e || (!m->bucket && make_buckets(m) < 0))
        goto fail;
    trim(m, now_us, 1);
    *e = (struct idem_entry){.hash = hash, .at_us = now_us, .outcome = *o, .len = key->len};
    memcpy(e->key, key->s, key->len);
    e->chain = *slot(m, hash);
    *slot(m, hash) = e;
    list_push_back(&m->order, &e->by_age);
    m->st.keys++;
    e = NULL;
    rc = 0;
fail:
    pthread_mutex_unlock(&m->mu);
    free(e);
    return rc;
}

void idem_count_repeat(struct idem *m)
{
    pthread_mutex_lock(&m->mu);
    m->st.repeats++;
    pthread_mutex_unlock(&m->mu);
}

void idem_read_stats(struct idem *m, struct idem_stats *out)
{
    pthread_mutex_lock(&m->mu);
    *out = m->st;
    pthread_mutex_unlock(&m->mu);
}

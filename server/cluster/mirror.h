/* mirror: one loop's copy of the cluster's lock queue as etcd holds it:
 * every queue key, in the order of its place in the queue: its create
 * revision, then, for the keys one join txn created together, the
 * arrival sequence in its value (queue.h),
 * found by name in O(1). The watcher fills it from one prefix watch and a
 * range (watcher.h), and the tickets ask it one question: whose key is at
 * the head? A plain data structure: no I/O, no loop.
 *
 * An entry may also exist while it is not queued: a local request makes
 * the entry of its key before etcd has it (tag points back at the
 * request), so the watch event of its PUT, which can come before the
 * reply to the PUT itself, finds it. */
#ifndef TURNSTILE_CLUSTER_MIRROR_H
#define TURNSTILE_CLUSTER_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

struct mirror_entry {
    struct list_node link; /* in create-revision order, while queued */
    struct mirror_entry *chain;
    uint64_t hash;
    int64_t create_revision; /* its place; 0 while not queued */
    uint64_t seq;            /* its place within create_revision */
    void *tag;               /* the owner's (a local request), NULL for others' keys */
    size_t key_len;
    char key[]; /* NUL-terminated as well */
};

struct mirror {
    struct mirror_entry **buckets;
    size_t nbuckets; /* a power of two, or 0 before the first entry */
    size_t nentries;
    struct list_node order; /* queued entries, first place first */
    uint64_t queued;        /* entries in order: the cluster's queue length */
};

void mirror_init(struct mirror *m);
/* Frees every entry. */
void mirror_fini(struct mirror *m);

/* The entry of key, or NULL. */
struct mirror_entry *mirror_find(const struct mirror *m, const char *key, size_t len);
/* The entry of key, made (unqueued, no tag) if there was none. Returns 0
 * or -ENOMEM. */
int mirror_add(struct mirror *m, const char *key, size_t len, struct mirror_entry **out);
/* Puts e in order at (create_revision, seq) (keys come nearly in order:
 * the scan starts at the tail). Already queued: moved. */
void mirror_queue(struct mirror *m, struct mirror_entry *e, int64_t create_revision, uint64_t seq);
/* Takes e out of order (create_revision back to 0); it stays findable. */
void mirror_unqueue(struct mirror *m, struct mirror_entry *e);
/* Unqueues and frees e. */
void mirror_remove(struct mirror *m, struct mirror_entry *e);
/* The queued entry with the lowest create revision, or NULL. */
struct mirror_entry *mirror_head(const struct mirror *m);
/* The queued entry after e (queued) in create-revision order, or NULL: with
 * mirror_head, a read-only walk of the queue (glance.h's view of it). */
const struct mirror_entry *mirror_next(const struct mirror *m, const struct mirror_entry *e);

#endif

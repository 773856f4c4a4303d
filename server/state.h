/* state: the counter on disk (--state-file), so that it survives restarts
 * and crashes, and a reply says N only once N is durable.
 *
 * Why a writer thread. fdatasync takes microseconds on some disks and tens
 * of milliseconds on others (a VM's virtual disk, a disk without a write
 * cache); the loop serves every connection and must never wait for it.
 * libevent has no asynchronous file I/O and io_uring is not everywhere, so
 * one thread does the disk work. The loop hands it each new value under a
 * mutex that is never held across a syscall (state_commit: no syscall
 * unless the writer sleeps), and the writer saves the newest value it has:
 * one write + fdatasync covers every commit made since its previous round
 * (group commit). When the disk is slow, rounds grow bigger, not more
 * numerous, and the loop keeps running. After each round the writer pokes
 * an eventfd that the loop watches; the loop then wakes, in commit order,
 * every coroutine whose commit the disk now holds.
 *
 * Why two slots. Overwriting the only copy in place would lose it if a crash
 * tore the write. The file is two slots of STATE_SLOT_SIZE bytes, each
 * holding one record:
 *
 *     offset  0  magic      "TSTATE1\0"
 *             8  generation u64, little-endian, +1 per successful round
 *            16  counter    u64, little-endian
 *            24  crc32      u32, little-endian (zlib's CRC-32 of bytes 0..23)
 *
 * After it, at offset 32 of the slot, the Idempotency-Keys of the newest
 * keyed updates (issue 29), so that a crash between the write and the
 * reply cannot let a retry of the key count twice:
 *
 *            32  magic      "TKEYS1\0\0"
 *            40  generation u64, the record's own: a leftover section of an
 *                           older round does not count
 *            48  count      u16, up to STATE_KEYS
 *            50  each key:  length u8 (1..STATE_KEY_MAX), N u64, the bytes
 *             .  crc32      u32 of the section from its magic on
 *
 * A record without the section (written before it existed) has no keys;
 * one whose section is damaged is damaged (the older slot is used). The
 * section's head shares the record's first sector, so a torn write cannot
 * pass for a record without keys. The newest STATE_KEYS keyed updates are
 * saved, whatever their age: a round that covers more keyed updates than
 * that (the disk slower than STATE_KEYS sections) saves only the newest of
 * them. Older servers read the counter and ignore the keys.
 *
 * A round writes the slot that does NOT hold the newest durable record, so
 * a torn write can only damage the older copy; recovery takes the valid
 * record (magic and CRC) with the highest generation. Slots are a page
 * apart, so one torn sector or page cannot reach both. A new file is built
 * aside and renamed into place, so it exists whole or not at all.
 *
 * A file that exists but holds no valid record, or is larger than two
 * slots, is not ours: it is refused, never written. While a server uses a
 * state file it holds an flock on it; a second server is refused.
 *
 * Failures at runtime (write or fdatasync fails): the round's waiters get
 * -EIO (the server answers 500: it cannot say the update is durable), one
 * line goes to stderr per run of failures, and the next commit tries again.
 * Retrying is sound because every round writes the whole state, not a
 * delta: a later successful round makes every earlier commit durable. */
#ifndef TURNSTILE_STATE_H
#define TURNSTILE_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "waitq.h"

#define STATE_SLOT_SIZE   4096 /* a page: the two records never share one */
#define STATE_RECORD_SIZE 28
#define STATE_KEYS        48 /* keys saved with the counter: they fit the slot */
#define STATE_KEY_MAX     64 /* bytes of a key (fields.h bounds it the same) */

/* An Idempotency-Key and the N it was answered. */
struct state_key {
    uint64_t n;
    unsigned char len;
    char key[STATE_KEY_MAX];
};

/* The newest keys, oldest first once full: a ring. */
struct state_keys {
    struct state_key k[STATE_KEYS];
    unsigned count, next; /* next: where the next key goes */
};

struct loop;
struct loop_watch;

struct state {
    const char *path; /* for messages; must outlive the state */
    int fd;
    /* The durability barrier the writer calls after each write: fdatasync.
     * Tests put a slow or failing one here before state_start(). */
    int (*sync)(int fd);

    /* The writer's (the closing thread's once the writer has stopped). */
    uint64_t generation; /* of the newest durable record */
    unsigned slot;       /* where that record is; rounds write the other */
    bool failing;        /* the last round failed: a line was logged */

    /* Shared between the loop and the writer, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t more;    /* a commit came, or stopping */
    uint64_t value;         /* the newest commit's counter */
    struct state_keys keys; /* the newest commits' keys */
    uint64_t commits;       /* commits so far; the newest has seq == commits */
    uint64_t taken_seq;     /* the newest commit a round has started on */
    uint64_t saved_seq;     /* the newest commit on disk */
    uint64_t failed_seq;    /* the newest commit whose round failed */
    uint64_t syncs;         /* rounds done, failed ones included */
    bool stopping;

    struct state_keys round_keys;       /* the writer's copy for its round */
    unsigned char buf[STATE_SLOT_SIZE]; /* the writer's: a slot read or written */

    /* The loop's. */
    bool started;
    pthread_t writer;
    int efd;                  /* eventfd: the writer finished a round */
    struct loop_watch *watch; /* on efd */
    /* Under mu too: waiters come from every loop. */
    uint64_t durable_seq; /* saved_seq as the loop last saw it */
    uint64_t lost_seq;    /* failed_seq as the loop last saw it */
    struct waitq waiters; /* parked in state_wait(), by seq */
};

/* Opens the state file at path, creating it with counter 0 if it does not
 * exist, and recovers the counter into *value (and the keys saved with it:
 * state_recovered_keys()). Starts no thread: commits
 * before state_start() are saved by state_close(). Returns 0; -EINVAL when
 * the file or its path is at fault (not a turnstile state file, cannot be
 * created or read); -EBUSY when another process uses it; or another
 * negative errno. Every failure prints one line on stderr. */
int state_open(struct state *st, const char *path, uint64_t *value);

/* After state_open(): the keys saved with the counter, oldest first: calls
 * each(arg, key) for every one. */
void state_recovered_keys(const struct state *st,
                          void (*each)(void *arg, const struct state_key *k), void *arg);

/* Starts the writer thread and watches for its rounds on loop. Returns 0,
 * or a negative errno after one line on stderr (state_close() still
 * cleans up). */
int state_start(struct state *st, struct loop *loop);

/* From the loop's thread: value is the counter now, and key (len bytes,
 * 1..STATE_KEY_MAX; NULL: none) the Idempotency-Key it answers. Returns the
 * commit's sequence number, for state_wait(). Never blocks on the disk. */
uint64_t state_commit(struct state *st, uint64_t value, const char *key, size_t len);

/* From a coroutine: parks until commit seq is on disk. Returns 0; -EIO if
 * the round that covered it failed; -ECANCELED if cancelled first (the
 * commit still gets saved); -ENOSPC if the coroutine has no room for
 * another cleanup (coro.h). Waiters are woken in seq order. */
int state_wait(struct state *st, uint64_t seq);

/* Stops the writer once it has saved the newest commit (tried once more if
 * its last round failed), then closes everything; waiters still parked are
 * left parked. Returns 0, or a negative errno if the newest commit could
 * not be saved (after one line on stderr). */
int state_close(struct state *st);

#endif

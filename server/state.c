/* state: the durable counter. See state.h for the design and the format.
 *
 * Threads: the loop (state_commit, state_wait, on_round) and the writer
 * (writer_main, save). They share only the fields under mu; the writer
 * never holds mu across a syscall, so a commit waits at most for a few
 * stores. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define FILE_SIZE (2 * STATE_SLOT_SIZE)

static const char magic[8] = "TSTATE1";
static const char keys_magic[8] = "TKEYS1";

#define KEYS_AT   32 /* the key section's offset in a slot (state.h) */
#define KEYS_HEAD 18 /* magic, generation, count */
#define KEY_HEAD  9  /* length, N */
_Static_assert(KEYS_AT + KEYS_HEAD + STATE_KEYS * (KEY_HEAD + STATE_KEY_MAX) + 4 <= STATE_SLOT_SIZE,
               "the keys fit the slot");

struct state_waiter {
    struct waitq_entry e; /* first: the entry is the waiter */
    uint64_t seq;
};

static struct state_waiter *waiter_of(struct waitq_entry *e)
{
    return (struct state_waiter *)e;
}

/* ---- the record ---- */

/* zlib's CRC-32 (reflected 0xEDB88320): bit by bit, as it runs once per
 * round over 24 bytes. */
static uint32_t crc32(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void encode(unsigned char *rec, uint64_t generation, uint64_t counter)
{
    memcpy(rec, magic, sizeof(magic));
    put_le(rec + 8, generation, 8);
    put_le(rec + 16, counter, 8);
    put_le(rec + 24, crc32(rec, 24), 4);
}

static bool decode(const unsigned char *rec, uint64_t *generation, uint64_t *counter)
{
    if (memcmp(rec, magic, sizeof(magic)) != 0 || get_le(rec + 24, 4) != crc32(rec, 24))
        return false;
    *generation = get_le(rec + 8, 8);
    *counter = get_le(rec + 16, 8);
    return true;
}

/* The i-th oldest key of the ring. */
static const struct state_key *key_at(const struct state_keys *ks, unsigned i)
{
    return &ks->k[(ks->next + STATE_KEYS - ks->count + i) % STATE_KEYS];
}

/* The key section after the record; returns the bytes of both. */
static size_t encode_keys(unsigned char *slot, uint64_t generation, const struct state_keys *ks)
{
    unsigned char *p = slot + KEYS_AT;
    size_t len = KEYS_HEAD;
    memcpy(p, keys_magic, sizeof(keys_magic));
    put_le(p + 8, generation, 8);
    put_le(p + 16, ks->count, 2);
    for (unsigned i = 0; i < ks->count; i++) {
        const struct state_key *k = key_at(ks, i);
        p[len] = k->len;
        put_le(p + len + 1, k->n, 8);
        memcpy(p + len + KEY_HEAD, k->key, k->len);
        len += KEY_HEAD + k->len;
    }
    put_le(p + len, crc32(p, len), 4);
    return KEYS_AT + len + 4;
}

/* One key at p[*len] of a section avail bytes long into k; false if it
 * does not fit or is no key. */
static bool decode_key(const unsigned char *p, size_t avail, size_t *len, struct state_key *k)
{
    if (*len + KEY_HEAD > avail || p[*len] == 0 || p[*len] > STATE_KEY_MAX ||
        *len + KEY_HEAD + p[*len] > avail)
        return false;
    k->len = p[*len];
    k->n = get_le(p + *len + 1, 8);
    memcpy(k->key, p + *len + KEY_HEAD, k->len);
    *len += KEY_HEAD + k->len;
    return true;
}

/* The keys saved with the record of generation in slot (avail bytes read).
 * No section, or one left by an older round (another generation): no keys.
 * False: the section is damaged, and so is the record. */
static bool decode_keys(const unsigned char *slot, size_t avail, uint64_t generation,
                        struct state_keys *out)
{
    const unsigned char *p = slot + KEYS_AT;
    size_t len = KEYS_HEAD;
    *out = (struct state_keys){0};
    if (avail < KEYS_AT + KEYS_HEAD || memcmp(p, keys_magic, sizeof(keys_magic)) != 0 ||
        get_le(p + 8, 8) != generation)
        return true;
    avail -= KEYS_AT;
    unsigned count = (unsigned)get_le(p + 16, 2);
    if (count > STATE_KEYS)
        return false;
    for (unsigned i = 0; i < count; i++)
        if (!decode_key(p, avail, &len, &out->k[i]))
            return false;
    if (len + 4 > avail || get_le(p + len, 4) != crc32(p, len))
        return false;
    out->count = count;
    out->next = count % STATE_KEYS;
    return true;
}

/* ---- opening ---- */

__attribute__((format(printf, 3, 4))) static int fail(const char *path, int rc, const char *fmt,
                                                      ...)
{
    va_list ap;
    fprintf(stderr, "turnstile: %s: ", path);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return rc;
}

/* The directory entry of a new file is durable only once its directory is. */
static int sync_parent(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int rc = fsync(dfd) == 0 ? 0 : -errno;
    close(dfd);
    return rc;
}

/* A new file: slot 0 holds generation 1, counter 0; slot 1 is empty. */
static int write_new(int fd)
{
    unsigned char file[FILE_SIZE] = {0};
    encode(file, 1, 0);
    errno = EIO; /* a short write sets none */
    if (pwrite(fd, file, sizeof(file), 0) != (ssize_t)sizeof(file) || fsync(fd) != 0)
        return -errno;
    return 0;
}

/* Builds a new file next to path and renames it into place, unless path
 * appeared meanwhile. Returns 0, -EEXIST (someone else created it: use
 * theirs) or a negative errno. */
static int create(const char *path)
{
    char tmp[4096 + 8];
    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = write_new(fd);
    if (rc == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0)
        rc = -errno;
    close(fd);
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    return sync_parent(path);
}

/* Reads both slots and picks the valid record with the highest generation.
 * A slot cut short by truncation is simply invalid. */
static int recover(struct state *st, uint64_t *value)
{
    struct stat sb;
    if (fstat(st->fd, &sb) != 0)
        return fail(st->path, -EINVAL, "%s", strerror(errno));
    if (!S_ISREG(sb.st_mode) || sb.st_size > FILE_SIZE)
        return fail(st->path, -EINVAL, "not a turnstile state file");
    bool found = false;
    for (unsigned slot = 0; slot < 2; slot++) {
        unsigned char *rec = st->buf;
        uint64_t gen, counter;
        struct state_keys keys;
        ssize_t n = pread(st->fd, rec, STATE_SLOT_SIZE, (off_t)slot * STATE_SLOT_SIZE);
        if (n < 0)
            return fail(st->path, -EINVAL, "cannot read: %s", strerror(errno));
        if (n < STATE_RECORD_SIZE || !decode(rec, &gen, &counter) ||
            !decode_keys(rec, (size_t)n, gen, &keys))
            continue;
        if (!found || gen > st->generation) {
            st->generation = gen;
            st->slot = slot;
            st->keys = keys;
            *value = counter;
        }
        found = true;
    }
    return found ? 0 : fail(st->path, -EINVAL, "not a turnstile state file");
}

/* Opens path, creating it first if it is missing. Returns the descriptor,
 * or -EINVAL after one line. */
static int open_or_create(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        int rc = create(path);
        if (rc < 0 && rc != -EEXIST)
            return fail(path, -EINVAL, "cannot create: %s", strerror(-rc));
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    return fd >= 0 ? fd : fail(path, -EINVAL, "cannot open: %s", strerror(errno));
}

/* Two servers saving one file would each overwrite the other's count. The
 * lock goes with the descriptor, so a killed server leaves none behind. */
static int lock_file(struct state *st)
{
    if (flock(st->fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        return fail(st->path, -EBUSY, "in use by another turnstile");
    return fail(st->path, -EINVAL, "cannot lock: %s", strerror(errno));
}

int state_open(struct state *st, const char *path, uint64_t *value)
{
    *st = (struct state){.path = path, .sync = fdatasync, .efd = -1};
    waitq_init(&st->waiters);
    /* Waiters may be coroutines of any loop: the line is guarded by mu,
     * which the writer holds only for a few stores (waitq.h). */
    st->waiters.mu = &st->mu;
    *value = 0;
    st->fd = open_or_create(path);
    if (st->fd < 0)
        return st->fd;
    int rc = lock_file(st);
    if (rc == 0)
        rc = recover(st, value);
    if (rc < 0) {
        close(st->fd);
        return rc;
    }
    st->value = *value;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->more, NULL);
    return 0;
}

/* ---- the writer ---- */

/* One round: the newest value into the spare slot, then the barrier. A
 * failed round leaves generation and slot alone, so the retry goes to the
 * same spare slot and the newest durable record is never at risk. */
static int save(struct state *st, uint64_t value)
{
    unsigned char *rec = st->buf;
    unsigned spare = st->slot ^ 1;
    encode(rec, st->generation + 1, value);
    memset(rec + STATE_RECORD_SIZE, 0, KEYS_AT - STATE_RECORD_SIZE);
    size_t len = encode_keys(rec, st->generation + 1, &st->round_keys);
    errno = EIO; /* a short write sets none */
    if (pwrite(st->fd, rec, len, (off_t)spare * STATE_SLOT_SIZE) != (ssize_t)len ||
        st->sync(st->fd) != 0)
        return -errno;
    st->generation++;
    st->slot = spare;
    return 0;
}

/* One line per run of failures, not one per round; and one when it ends. */
static void report(struct state *st, int rc)
{
    if (rc < 0 && !st->failing)
        fprintf(stderr,
                "turnstile: %s: cannot save the counter: %s (answering 500 until a save "
                "succeeds)\n",
                st->path, strerror(-rc));
    else if (rc == 0 && st->failing)
        fprintf(stderr, "turnstile: %s: saving the counter works again\n", st->path);
    st->failing = rc < 0;
}

/* Waits for a commit newer than the last round's and takes it; false when
 * stopping and there is none. */
static bool take_round(struct state *st, uint64_t *seq, uint64_t *value)
{
    pthread_mutex_lock(&st->mu);
    while (st->taken_seq == st->commits && !st->stopping)
        pthread_cond_wait(&st->more, &st->mu);
    bool more = st->taken_seq < st->commits;
    *seq = st->taken_seq = st->commits;
    *value = st->value;
    st->round_keys = st->keys;
    pthread_mutex_unlock(&st->mu);
    return more;
}

static void end_round(struct state *st, uint64_t seq, int rc)
{
    pthread_mutex_lock(&st->mu);
    st->syncs++;
    if (rc == 0)
        st->saved_seq = seq;
    else
        st->failed_seq = seq;
    pthread_mutex_unlock(&st->mu);
}

static void *writer_main(void *arg)
{
    struct state *st = arg;
    uint64_t seq, value;
    while (take_round(st, &seq, &value)) {
        int rc = save(st, value);
        report(st, rc);
        end_round(st, seq, rc);
        eventfd_write(st->efd, 1); /* wakes the loop: on_round() */
    }
    return NULL;
}

/* ---- the loop's side ---- */

/* Keeps the line sorted by seq. Waiters mostly come in seq order, so the
 * walk from the tail stops at once. */
static void join_in_order(struct state *st, struct state_waiter *w)
{
    struct waitq_entry *pos = NULL; /* join before it; NULL: at the tail */
    for (struct waitq_entry *e = waitq_tail(&st->waiters); e && waiter_of(e)->seq > w->seq;
         e = waitq_prev(e))
        pos = e;
    waitq_join(&st->waiters, &w->e, pos);
}

/* Wakes, from the head, every waiter whose commit a round has settled.
 * A waiter resumes inside waitq_wake() and may park here again, always
 * behind the head: so re-read the head each time, and never touch a
 * waiter after waking it (it lives on that coroutine's stack). */
static void wake_settled(struct state *st)
{
    struct waitq_entry *e;
    while ((e = waitq_head(&st->waiters))) {
        uint64_t seq = waiter_of(e)->seq;
        if (seq > st->durable_seq && seq > st->lost_seq)
            break;
        waitq_wake(e, seq <= st->durable_seq ? 0 : -EIO);
    }
}

static void on_round(void *arg)
{
    struct state *st = arg;
    eventfd_t rounds;
    eventfd_read(st->efd, &rounds);
    pthread_mutex_lock(&st->mu);
    st->durable_seq = st->saved_seq;
    st->lost_seq = st->failed_seq;
    wake_settled(st);
    pthread_mutex_unlock(&st->mu);
}

int state_start(struct state *st, struct loop *loop)
{
    st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (st->efd < 0)
        return fail(st->path, -errno, "cannot start saving: %s", strerror(errno));
    /* A finished round is as urgent as socket I/O: its waiters' replies
     * are ready to go, and must not wait behind the rest of the turn. */
    st->watch = loop_watch_fd(loop, st->efd, LOOP_PRIO_IO, on_round, st);
    if (!st->watch || loop_watch_start(st->watch, 0) != 0)
        return fail(st->path, -ENOMEM, "cannot start saving: %s", strerror(ENOMEM));
    /* Signals are the loop's business (SIGTERM starts the drain): the
     * writer inherits a mask that blocks them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&st->writer, NULL, writer_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return fail(st->path, -rc, "cannot start the writer thread: %s", strerror(rc));
    st->started = true;
    return 0;
}

void state_recovered_keys(const struct state *st,
                          void (*each)(void *arg, const struct state_key *k), void *arg)
{
    for (unsigned i = 0; i < st->keys.count; i++)
        each(arg, key_at(&st->keys, i));
}

static void add_key(struct state_keys *ks, uint64_t n, const char *key, size_t len)
{
    struct state_key *k = &ks->k[ks->next];
    k->n = n;
    k->len = (unsigned char)len;
    memcpy(k->key, key, len);
    ks->next = (ks->next + 1) % STATE_KEYS;
    ks->count += ks->count < STATE_KEYS;
}

uint64_t state_commit(struct state *st, uint64_t value, const char *key, size_t len)
{
    pthread_mutex_lock(&st->mu);
    st->value = value;
    if (key && len > 0 && len <= STATE_KEY_MAX)
        add_key(&st->keys, value, key, len);
    uint64_t seq = ++st->commits;
    pthread_cond_signal(&st->more);
    pthread_mutex_unlock(&st->mu);
    return seq;
}

int state_wait(struct state *st, uint64_t seq)
{
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    if (seq <= st->durable_seq) {
        rc = 0;
    } else if (seq <= st->lost_seq) {
        rc = -EIO;
    } else {
        struct state_waiter w = {.e = {.co = coro_current()}, .seq = seq};
        join_in_order(st, &w);
        /* A wake beats a cancel of the same turn; a waiter destroyed while
         * parked just leaves the line (waitq.h). */
        rc = waitq_park(&w.e, LOOP_FOREVER);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- closing ---- */

static void stop_writer(struct state *st)
{
    pthread_mutex_lock(&st->mu);
    uint64_t commits = st->commits, saved = st->saved_seq;
    st->stopping = true;
    pthread_cond_signal(&st->more);
    pthread_mutex_unlock(&st->mu);
    log_msg(LOG_LEVEL_DEBUG, "stop: waiting for the state writer (%llu commits, %llu on disk)",
            (unsigned long long)commits, (unsigned long long)saved);
    pthread_join(st->writer, NULL);
}

int state_close(struct state *st)
{
    int rc = 0;
    if (st->started)
        stop_writer(st);
    loop_watch_free(st->watch);
    if (st->efd >= 0)
        close(st->efd);
    /* No writer now: its fields are ours. Commits it never took (it was
     * not started), or whose round failed, get one more try. */
    if (st->saved_seq < st->commits) {
        st->round_keys = st->keys;
        rc = save(st, st->value);
        if (rc < 0)
            fail(st->path, rc, "cannot save the counter (%llu) at exit: %s",
                 (unsigned long long)st->value, strerror(-rc));
        else
            st->saved_seq = st->commits;
    }
    close(st->fd);
    pthread_cond_destroy(&st->more);
    pthread_mutex_destroy(&st->mu);
    return rc;
}

/* Unit tests for server/state.c: the two-slot format and its recovery
 * (newer slot wins, a torn or truncated slot falls back to the other, a
 * foreign file is refused and left alone), group commit while the writer
 * is held in its barrier, and waiters woken in commit order only once
 * their commit is durable, or with -EIO when its round failed.
 *
 * The writer's barrier (st.sync) is replaced by a gate the test opens one
 * round at a time, so every count below is exact, not a race. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "scratch.h"
#include "loop.h"
#include "state.h"

static char dir[64], path[128];
static struct loop loop;
static struct state st;
static bool live; /* st has a writer thread: a failed test leaves it to teardown */

/* ---- files ---- */

static size_t read_file(unsigned char *buf, size_t cap)
{
    return scratch_read(path, buf, cap);
}

static void write_file(const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static int count_entries(const char *where)
{
    DIR *d = opendir(where);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The slot (0 or 1) whose record has the higher generation field. */
static unsigned newest_slot(const unsigned char *file)
{
    return le64(file + STATE_SLOT_SIZE + 8) > le64(file + 8);
}

/* Open, commit, close: no writer thread; state_close() saves it. */
static void save(uint64_t value)
{
    uint64_t old;
    ck_assert_int_eq(state_open(&st, path, &old), 0);
    state_commit(&st, value, NULL, 0);
    ck_assert_int_eq(state_close(&st), 0);
}

static uint64_t load(void)
{
    uint64_t value;
    ck_assert_int_eq(state_open(&st, path, &value), 0);
    ck_assert_int_eq(state_close(&st), 0);
    return value;
}

/* state_open() must fail with rc and leave the file as it was. */
static void expect_refused(int rc)
{
    static unsigned char before[3 * STATE_SLOT_SIZE], after[sizeof(before)];
    uint64_t value;
    size_t n = read_file(before, sizeof(before));
    ck_assert_int_eq(state_open(&st, path, &value), rc);
    ck_assert_uint_eq(read_file(after, sizeof(after)), n);
    ck_assert_msg(memcmp(before, after, n) == 0, "a refused file was changed");
    ck_assert_int_eq(count_entries(dir), 1); /* and nothing was created beside it */
}

/* ---- the gate: a barrier that waits for the test's permission ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered; /* barrier calls so far */
    int permits; /* calls allowed to return */
    int fails;   /* how many of the next calls fail with EIO */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static int gated_sync(int fd)
{
    pthread_mutex_lock(&gate.mu);
    gate.entered++;
    pthread_cond_broadcast(&gate.cv);
    while (gate.permits == 0)
        pthread_cond_wait(&gate.cv, &gate.mu);
    gate.permits--;
    bool fail = gate.fails > 0;
    gate.fails -= fail;
    pthread_mutex_unlock(&gate.mu);
    if (fail) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static void gate_allow(int rounds, int fails)
{
    pthread_mutex_lock(&gate.mu);
    gate.permits += rounds;
    gate.fails += fails;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

/* Blocks until the writer has entered the barrier n times in all. */
static void gate_wait_entered(int n)
{
    pthread_mutex_lock(&gate.mu);
    while (gate.entered < n)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
}

/* The state with a writer thread behind the gate. */
static void start_gated(void)
{
    uint64_t value;
    ck_assert_int_eq(state_open(&st, path, &value), 0);
    st.sync = gated_sync;
    ck_assert_int_eq(state_start(&st, &loop), 0);
    live = true;
}

static int stop(void)
{
    live = false;
    return state_close(&st);
}

/* ---- waiters ---- */

enum { MAXW = 64 };

struct waiter {
    uint64_t seq;
    int rc;     /* 1 while parked */
    bool stops; /* stops the loop once resumed */
    coro_t *co;
};
static struct waiter ws[MAXW];
static uint64_t order[MAXW]; /* seqs in the order their waiters resumed */
static int norder;

/* Resumes only once its commit (value seq * 10) is on disk: check the file
 * itself, not only the state's own bookkeeping. */
static void waiter_main(void *arg)
{
    static unsigned char file[2 * STATE_SLOT_SIZE];
    struct waiter *w = arg;
    w->rc = state_wait(&st, w->seq);
    order[norder++] = w->seq;
    if (w->rc == 0) {
        read_file(file, sizeof(file));
        uint64_t on_disk = le64(file + newest_slot(file) * STATE_SLOT_SIZE + 16);
        ck_assert_msg(on_disk >= w->seq * 10, "seq %llu resumed with %llu on disk",
                      (unsigned long long)w->seq, (unsigned long long)on_disk);
    }
    if (w->stops)
        loop_break(&loop);
}

static struct waiter *spawn_waiter(int i, uint64_t seq, bool stops)
{
    ws[i] = (struct waiter){.seq = seq, .rc = 1, .stops = stops};
    ck_assert_int_eq(loop_spawn(&loop, waiter_main, &ws[i], &ws[i].co), 0);
    return &ws[i];
}

static bool settled;

/* Waits for seq like the others (queued behind those of the same seq), then
 * stops the loop. */
static void watcher_main(void *arg)
{
    state_wait(&st, *(uint64_t *)arg);
    settled = true;
    loop_break(&loop);
}

/* Runs the loop until a coroutine breaks it. A bug must fail the test, not
 * hang it: hence the time limit. */
static void stop_loop(void *arg)
{
    loop_break(arg);
}

static void run_loop(void)
{
    struct loop_watch *limit = loop_watch_timer(&loop, false, LOOP_PRIO_IO, stop_loop, &loop);
    ck_assert_ptr_nonnull(limit);
    ck_assert_int_eq(loop_watch_start(limit, 10 * 1000000), 0);
    ck_assert_int_eq(loop_run(&loop), 0);
    loop_watch_free(limit);
}

static void run_until_settled(uint64_t seq)
{
    settled = false;
    ck_assert_int_eq(loop_spawn(&loop, watcher_main, &seq, NULL), 0);
    if (!settled)
        run_loop();
    ck_assert_msg(settled, "commit %llu not settled within 10 s", (unsigned long long)seq);
}

/* ---- fixture ---- */

static void setup(void)
{
    strcpy(dir, "/tmp/test_state_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/counter", dir);
    ck_assert_int_eq(loop_init(&loop, 0, MAXW), 0);
    gate.entered = gate.permits = gate.fails = 0;
    norder = 0;
}

static void teardown(void)
{
    if (live) { /* the test failed with the writer perhaps held in the gate */
        gate_allow(1 << 20, 0);
        stop();
    }
    scratch_remove(dir);
    loop_fini(&loop);
}

/* ---- the format ---- */

START_TEST(missing_file_is_created_at_zero)
{
    static unsigned char file[3 * STATE_SLOT_SIZE];
    ck_assert_uint_eq(load(), 0);
    ck_assert_uint_eq(read_file(file, sizeof(file)), 2 * STATE_SLOT_SIZE);
    ck_assert_int_eq(count_entries(dir), 1); /* built aside, renamed: no leftovers */
    ck_assert_uint_eq(load(), 0);
}
END_TEST

START_TEST(round_trip_and_layout)
{
    static unsigned char file[2 * STATE_SLOT_SIZE];
    static const uint64_t values[] = {1, 2, 41, 1ull << 40, UINT64_MAX};
    uint64_t last_gen = 0;
    unsigned last_slot = 2;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        save(values[i]);
        ck_assert_uint_eq(load(), values[i]);
        read_file(file, sizeof(file));
        unsigned slot = newest_slot(file);
        const unsigned char *rec = file + slot * STATE_SLOT_SIZE;
        ck_assert_mem_eq(rec, "TSTATE1\0", 8);
        ck_assert_uint_eq(le64(rec + 16), values[i]);
        ck_assert_uint_gt(le64(rec + 8), last_gen); /* generations grow ... */
        ck_assert_uint_ne(slot, last_slot);         /* ... and slots alternate */
        last_gen = le64(rec + 8);
        last_slot = slot;
    }
}
END_TEST

/* ---- Idempotency-Keys saved with the counter ---- */

static char got_keys[STATE_KEYS + 1][STATE_KEY_MAX + 24];
static unsigned ngot;

static void collect(void *arg, const struct state_key *k)
{
    (void)arg;
    snprintf(got_keys[ngot++], sizeof(got_keys[0]), "%.*s=%llu", (int)k->len, k->key,
             (unsigned long long)k->n);
}

/* Open, collect the keys recovered, close. */
static void load_keys(void)
{
    uint64_t value;
    ngot = 0;
    ck_assert_int_eq(state_open(&st, path, &value), 0);
    state_recovered_keys(&st, collect, NULL);
    ck_assert_int_eq(state_close(&st), 0);
}

START_TEST(keys_are_saved_with_the_counter_newest_first_kept)
{
    uint64_t old;
    char key[16];
    ck_assert_int_eq(state_open(&st, path, &old), 0);
    state_commit(&st, 1, "a", 1);
    state_commit(&st, 2, NULL, 0); /* no key */
    for (unsigned i = 0; i < STATE_KEYS; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        state_commit(&st, 3 + i, key, strlen(key));
    }
    ck_assert_int_eq(state_close(&st), 0);
    load_keys(); /* "a" is the oldest: pushed out */
    ck_assert_uint_eq(ngot, STATE_KEYS);
    ck_assert_str_eq(got_keys[0], "k0=3");
    ck_assert_str_eq(got_keys[STATE_KEYS - 1], "k47=50");
    /* Kept by the next round too, and a key of the longest kind. */
    char longest[STATE_KEY_MAX];
    memset(longest, 'x', sizeof(longest));
    ck_assert_int_eq(state_open(&st, path, &old), 0);
    state_commit(&st, 51, longest, sizeof(longest));
    ck_assert_int_eq(state_close(&st), 0);
    load_keys();
    ck_assert_uint_eq(ngot, STATE_KEYS);
    ck_assert_str_eq(got_keys[0], "k1=4");
    ck_assert_uint_eq(strlen(got_keys[STATE_KEYS - 1]), STATE_KEY_MAX + 3);
}
END_TEST

/* A record whose keys are damaged (a write torn after its first sector)
 * is damaged: the older slot is used, keys and all. */
START_TEST(damaged_keys_fall_back_to_the_older_record)
{
    static unsigned char file[2 * STATE_SLOT_SIZE];
    uint64_t old;
    ck_assert_int_eq(state_open(&st, path, &old), 0);
    state_commit(&st, 1, "first", 5);
    ck_assert_int_eq(state_close(&st), 0);
    ck_assert_int_eq(state_open(&st, path, &old), 0);
    state_commit(&st, 2, "second", 6);
    ck_assert_int_eq(state_close(&st), 0);
    read_file(file, sizeof(file));
    file[newest_slot(file) * STATE_SLOT_SIZE + 32 + 18 + 9] ^= 1; /* the newest key's first byte */
    write_file(file, sizeof(file));
    ck_assert_uint_eq(load(), 1);
    load_keys();
    ck_assert_uint_eq(ngot, 1);
    ck_assert_str_eq(got_keys[0], "first=1");
}
END_TEST

START_TEST(newer_valid_slot_wins_wherever_it_is)
{
    static unsigned char file[2 * STATE_SLOT_SIZE], swapped[sizeof(file)];
    save(5);
    save(7);
    ck_assert_uint_eq(load(), 7);
    read_file(file, sizeof(file));
    memcpy(swapped, file + STATE_SLOT_SIZE, STATE_SLOT_SIZE);
    memcpy(swapped + STATE_SLOT_SIZE, file, STATE_SLOT_SIZE);
    write_file(swapped, sizeof(swapped));
    ck_assert_uint_eq(load(), 7); /* by generation, not by position */
}
END_TEST

START_TEST(any_corrupt_byte_of_the_newest_falls_back)
{
    static unsigned char file[2 * STATE_SLOT_SIZE], bad[sizeof(file)];
    save(5);
    save(7);
    read_file(file, sizeof(file));
    size_t newest = newest_slot(file) * STATE_SLOT_SIZE;
    for (size_t i = 0; i < STATE_RECORD_SIZE; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, file, sizeof(file));
            bad[newest + i] ^= (unsigned char)(1u << bit);
            write_file(bad, sizeof(bad));
            ck_assert_msg(load() == 5, "byte %zu bit %d flipped: not detected", i, bit);
        }
    }
    /* The next save goes to the damaged slot and repairs it. */
    save(9);
    ck_assert_uint_eq(load(), 9);
}
END_TEST

START_TEST(truncated_newest_falls_back)
{
    static unsigned char file[2 * STATE_SLOT_SIZE];
    save(5);
    save(7);
    save(9);
    read_file(file, sizeof(file));
    size_t newest = newest_slot(file) * STATE_SLOT_SIZE;
    ck_assert_uint_eq(newest, STATE_SLOT_SIZE); /* a crash while the file grew */
    ck_assert_int_eq(truncate(path, STATE_SLOT_SIZE + STATE_RECORD_SIZE - 1), 0);
    ck_assert_uint_eq(load(), 7);
    save(11);
    ck_assert_uint_eq(load(), 11);
}
END_TEST

START_TEST(truncated_older_still_loads)
{
    save(5);
    save(7); /* in slot 0: creation, 5, 7 */
    ck_assert_int_eq(truncate(path, STATE_SLOT_SIZE + 3), 0);
    ck_assert_uint_eq(load(), 7);
}
END_TEST

START_TEST(foreign_files_are_refused_and_left_alone)
{
    static unsigned char file[2 * STATE_SLOT_SIZE], other[2 * STATE_SLOT_SIZE + 1];
    static const char ini[] = "[turnstile]\ncounter = 5\n";

    srandom(42);
    for (size_t i = 0; i < sizeof(other); i++)
        other[i] = (unsigned char)random();
    write_file(other, sizeof(file));
    expect_refused(-EINVAL); /* garbage of the right size */
    write_file(ini, sizeof(ini) - 1);
    expect_refused(-EINVAL); /* another format */
    write_file("", 0);
    expect_refused(-EINVAL); /* empty: we never leave one */

    unlink(path);
    save(5);
    read_file(file, sizeof(file));
    memcpy(other, file, sizeof(file));
    other[sizeof(file)] = '\n';
    write_file(other, sizeof(other));
    expect_refused(-EINVAL); /* ours plus more: too long to be ours */
    for (size_t slot = 0; slot < 2; slot++)
        memcpy(file + slot * STATE_SLOT_SIZE, "TSTATE2", 8);
    write_file(file, sizeof(file));
    expect_refused(-EINVAL); /* a later version's magic */
}
END_TEST

START_TEST(bad_paths_are_refused)
{
    char missing[192];
    uint64_t value;
    snprintf(missing, sizeof(missing), "%s/no/such/dir", dir);
    ck_assert_int_eq(state_open(&st, missing, &value), -EINVAL);
    ck_assert_int_eq(state_open(&st, dir, &value), -EINVAL); /* a directory */
    ck_assert_int_eq(count_entries(dir), 0);
}
END_TEST

START_TEST(one_server_per_file)
{
    struct state other;
    uint64_t value;
    ck_assert_int_eq(state_open(&st, path, &value), 0);
    ck_assert_int_eq(state_open(&other, path, &value), -EBUSY);
    ck_assert_int_eq(state_close(&st), 0);
    ck_assert_int_eq(state_open(&other, path, &value), 0);
    ck_assert_int_eq(state_close(&other), 0);
}
END_TEST

/* ---- the writer ---- */

START_TEST(group_commit_while_the_writer_is_busy)
{
    enum { COMMITS = 100 };
    start_gated();
    state_commit(&st, 10, NULL, 0);
    gate_wait_entered(1); /* round 1 (commit 1) is in its barrier */
    for (uint64_t seq = 2; seq <= COMMITS; seq++)
        state_commit(&st, seq * 10, NULL, 0);
    gate_allow(COMMITS, 0);
    run_until_settled(COMMITS);
    ck_assert_uint_eq(st.commits, COMMITS);
    ck_assert_uint_eq(st.syncs, 2); /* round 2 took commits 2..100 at once */
    ck_assert_int_eq(stop(), 0);
    ck_assert_uint_eq(load(), COMMITS * 10);
}
END_TEST

START_TEST(waiters_resume_in_commit_order_once_durable)
{
    static const uint64_t arrival[] = {5, 2, 8, 1, 7, 3, 6, 4};
    enum { N = sizeof(arrival) / sizeof(arrival[0]) };
    start_gated();
    state_commit(&st, 10, NULL, 0);
    gate_wait_entered(1); /* round 1 holds commit 1 only */
    for (uint64_t seq = 2; seq <= N; seq++)
        state_commit(&st, seq * 10, NULL, 0);
    for (int i = 0; i < N; i++) /* they park out of order */
        spawn_waiter(i, arrival[i], false);
    ck_assert_int_eq(norder, 0);

    gate_allow(1, 0);
    run_until_settled(1);
    ck_assert_int_eq(norder, 1); /* round 1 covers commit 1, nobody else */
    ck_assert_uint_eq(order[0], 1);

    gate_allow(1, 0);
    run_until_settled(N);
    ck_assert_int_eq(norder, N);
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(order[i], (uint64_t)i + 1);
        ck_assert_int_eq(ws[i].rc, 0);
    }
    spawn_waiter(0, 3, false); /* already durable: no park */
    ck_assert_int_eq(ws[0].rc, 0);
    ck_assert_int_eq(stop(), 0);
}
END_TEST

START_TEST(failed_round_answers_eio_and_the_next_succeeds)
{
    start_gated();
    state_commit(&st, 10, NULL, 0);
    struct waiter *a = spawn_waiter(0, 1, false);
    gate_allow(1, 1);
    run_until_settled(1);
    ck_assert_int_eq(a->rc, -EIO);
    ck_assert_uint_eq(st.lost_seq, 1);

    /* Every round writes the whole state: once one succeeds, commit 1 is
     * durable too. */
    state_commit(&st, 20, NULL, 0);
    struct waiter *b = spawn_waiter(1, 2, false);
    gate_allow(1, 0);
    run_until_settled(2);
    ck_assert_int_eq(b->rc, 0);
    spawn_waiter(2, 1, false);
    ck_assert_int_eq(ws[2].rc, 0);

    /* The last commit cannot be saved, not even by close's retry: close
     * says so, and the file holds what a lost barrier may leave. */
    state_commit(&st, 30, NULL, 0);
    gate_allow(2, 2);
    ck_assert_int_eq(stop(), -EIO);
    uint64_t value = load();
    ck_assert(value == 20 || value == 30);
}
END_TEST

START_TEST(cancelled_waiter_leaves_the_queue)
{
    start_gated();
    state_commit(&st, 10, NULL, 0);
    struct waiter *a = spawn_waiter(0, 1, true);
    struct waiter *b = spawn_waiter(1, 1, false);
    ck_assert_int_eq(loop_cancel(a->co), 0); /* as conn does on a hang-up */
    run_loop();
    ck_assert_int_eq(a->rc, -ECANCELED);
    ck_assert_int_eq(b->rc, 1);
    ck_assert_uint_eq(st.waiters.len, 1); /* b alone */
    ck_assert_ptr_eq(waitq_head(&st.waiters)->co, b->co);
    gate_allow(1, 0);
    run_until_settled(1);
    ck_assert_int_eq(b->rc, 0);
    ck_assert_ptr_null(waitq_head(&st.waiters));
    ck_assert_int_eq(stop(), 0);
    ck_assert_uint_eq(load(), 10); /* a cancelled wait is saved all the same */
}
END_TEST

START_TEST(close_saves_the_newest_commit)
{
    start_gated();
    gate_allow(1 << 20, 0); /* the writer runs free */
    for (uint64_t v = 1; v <= 1000; v++)
        state_commit(&st, v, NULL, 0);
    ck_assert_int_eq(stop(), 0);
    ck_assert_uint_le(st.syncs, 1000);
    ck_assert_uint_eq(load(), 1000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("format");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, missing_file_is_created_at_zero);
    tcase_add_test(tc, round_trip_and_layout);
    tcase_add_test(tc, keys_are_saved_with_the_counter_newest_first_kept);
    tcase_add_test(tc, damaged_keys_fall_back_to_the_older_record);
    tcase_add_test(tc, newer_valid_slot_wins_wherever_it_is);
    tcase_add_test(tc, any_corrupt_byte_of_the_newest_falls_back);
    tcase_add_test(tc, truncated_newest_falls_back);
    tcase_add_test(tc, truncated_older_still_loads);
    tcase_add_test(tc, foreign_files_are_refused_and_left_alone);
    tcase_add_test(tc, bad_paths_are_refused);
    tcase_add_test(tc, one_server_per_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, group_commit_while_the_writer_is_busy);
    tcase_add_test(tc, waiters_resume_in_commit_order_once_durable);
    tcase_add_test(tc, failed_round_answers_eio_and_the_next_succeeds);
    tcase_add_test(tc, cancelled_waiter_leaves_the_queue);
    tcase_add_test(tc, close_saves_the_newest_commit);
    suite_add_tcase(s, tc);

    return check_run(s);
}

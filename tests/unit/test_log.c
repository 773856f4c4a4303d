/* Unit tests for server/log.c: level names and the threshold, the shape of
 * a log line on stderr, and the access log (Common Log Format plus the lock
 * wait) written to a file or to stdout, buffered until flushed or closed.
 *
 * stderr and stdout are pointed at scratch files for the tests that read
 * them, and put back afterwards. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "check_run.h"
#include "log.h"
#include "scratch.h"

static char dir[64], path[128], out[8192];

static void setup(void)
{
    strcpy(dir, "/tmp/test_log_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/log", dir);
    log_set_level(LOG_LEVEL_INFO);
}

static void teardown(void)
{
    log_access_close();
    scratch_remove(dir);
}

/* Reads the scratch file into out (NUL-terminated); returns its length. */
static size_t read_out(void)
{
    size_t n = scratch_read(path, out, sizeof(out) - 1);
    out[n] = '\0';
    return n;
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "\"%s\" does not match %s", text, pattern);
}

/* Points descriptor fd (1 or 2) at the scratch file; returns the saved
 * original for restore(). */
static int redirect(int fd)
{
    int file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(file, 0);
    int saved = dup(fd);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(file, fd), fd);
    close(file);
    return saved;
}

static void restore(int fd, int saved)
{
    ck_assert_int_eq(dup2(saved, fd), fd);
    close(saved);
}

/* ---- levels ---- */

START_TEST(level_names_round_trip)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_int_eq(log_level_parse(names[i]), (int)i);
        ck_assert_str_eq(log_level_name(i), names[i]);
    }
    ck_assert_int_eq(log_level_parse("warning"), -1);
    ck_assert_int_eq(log_level_parse("INFO"), -1);
    ck_assert_int_eq(log_level_parse(""), -1);
    ck_assert_str_eq(log_level_name(4), "?");
    ck_assert_str_eq(log_level_name(~0u), "?");
}
END_TEST

START_TEST(threshold_enables_its_level_and_the_more_severe)
{
    log_set_level(LOG_LEVEL_WARN);
    ck_assert(log_enabled(LOG_LEVEL_ERROR));
    ck_assert(log_enabled(LOG_LEVEL_WARN));
    ck_assert(!log_enabled(LOG_LEVEL_INFO));
    ck_assert(!log_enabled(LOG_LEVEL_DEBUG));
    log_set_level(LOG_LEVEL_DEBUG);
    ck_assert(log_enabled(LOG_LEVEL_DEBUG));
    log_set_level(LOG_LEVEL_ERROR);
    ck_assert(!log_enabled(LOG_LEVEL_WARN));
}
END_TEST

/* ---- log lines ---- */

START_TEST(a_log_line_has_a_utc_stamp_and_its_level)
{
    log_set_level(LOG_LEVEL_WARN);
    int saved = redirect(2);
    log_msg(LOG_LEVEL_WARN, "stopping: %s, %d requests in flight", "SIGTERM", 3);
    log_msg(LOG_LEVEL_INFO, "not shown");
    log_msg(LOG_LEVEL_ERROR, "shown");
    restore(2, saved);
    read_out();
    assert_matches(out, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                        "warn: stopping: SIGTERM, 3 requests in flight\n"
                        "[0-9T:.-]+Z error: shown\n$");
}
END_TEST

/* A message longer than the line buffer is cut, but still one line. */
START_TEST(a_long_message_is_still_one_line)
{
    static char big[4000];
    memset(big, 'x', sizeof(big) - 1);
    int saved = redirect(2);
    log_msg(LOG_LEVEL_ERROR, "%s", big);
    restore(2, saved);
    size_t n = read_out();
    ck_assert_uint_gt(n, 100);
    ck_assert_int_eq(out[n - 1], '\n');
    ck_assert_ptr_eq(strchr(out, '\n'), out + n - 1);
}
END_TEST

/* ---- the access log ---- */

#define CLF_STAMP "\\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000\\]"

START_TEST(access_lines_in_common_log_format_with_the_wait)
{
    ck_assert(!log_access_enabled());
    ck_assert_int_eq(log_access_open(path), 0);
    ck_assert(log_access_enabled());
    log_access("127.0.0.1", "GET", "/access", 1, 200, 26, 1234);
    log_access("::1", "POST", "/stats", 0, 405, 20, -1); /* did not queue */
    log_access("-", "-", "-", 1, 400, 12, 0);
    log_access_flush();
    read_out();
    assert_matches(out, "^127\\.0\\.0\\.1 - - " CLF_STAMP
                        " \"GET /access HTTP/1\\.1\" 200 26 wait_ms=1\\.234\n"
                        "::1 - - " CLF_STAMP " \"POST /stats HTTP/1\\.0\" 405 20\n"
                        "- - - " CLF_STAMP " \"- - HTTP/1\\.1\" 400 12 wait_ms=0\\.000\n$");
    log_access_close();
    ck_assert(!log_access_enabled());
}
END_TEST

/* Buffered: nothing reaches the file before a flush (a request costs no
 * syscall), everything does by the close. */
START_TEST(access_log_is_buffered_until_flushed)
{
    ck_assert_int_eq(log_access_open(path), 0);
    log_access("127.0.0.1", "GET", "/", 1, 200, 10, -1);
    ck_assert_uint_eq(read_out(), 0);
    log_access_flush();
    ck_assert_uint_gt(read_out(), 0);
    log_access("127.0.0.1", "GET", "/", 1, 200, 10, -1);
    log_access_close();
    read_out();
    ck_assert_ptr_nonnull(strchr(strchr(out, '\n') + 1, '\n')); /* two lines */
}
END_TEST

START_TEST(access_log_appends)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("old line\n", f);
    fclose(f);
    ck_assert_int_eq(log_access_open(path), 0);
    log_access("127.0.0.1", "GET", "/", 1, 200, 10, -1);
    log_access_close();
    read_out();
    ck_assert_int_eq(strncmp(out, "old line\n127.0.0.1 ", 19), 0);
}
END_TEST

START_TEST(unopenable_access_log_is_an_errno)
{
    char bad[200];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/log", dir);
    ck_assert_int_eq(log_access_open(bad), -ENOENT);
    ck_assert(!log_access_enabled());
}
END_TEST

/* Loops write while worker 0 reopens the log (SIGUSR1). A loop looks
 * whether there is a log before it writes a line, without the lock; one
 * that found it closed for a moment skipped its line. */
static struct {
    _Atomic bool stop;
    long written, closed_seen;
} side;

static void *write_lines(void *arg)
{
    (void)arg;
    while (!side.stop) {
        log_access("127.0.0.1", "GET", "/access", 1, 200, 26, 5);
        side.written++;
    }
    return NULL;
}

/* Only looks, never waiting for the lock that the reopening holds: it is
 * the look that went wrong. */
static void *look(void *arg)
{
    (void)arg;
    while (!side.stop)
        side.closed_seen += !log_access_enabled();
    return NULL;
}

START_TEST(reopening_never_closes_the_log_to_other_threads)
{
    pthread_t writer, looker;
    ck_assert_int_eq(log_access_open(path), 0);
    side.stop = false;
    side.written = side.closed_seen = 0;
    ck_assert_int_eq(pthread_create(&writer, NULL, write_lines, NULL), 0);
    ck_assert_int_eq(pthread_create(&looker, NULL, look, NULL), 0);
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(log_access_reopen(), 0);
    side.stop = true;
    pthread_join(writer, NULL);
    pthread_join(looker, NULL);
    log_access_close();
    ck_assert_msg(side.closed_seen == 0, "the log was seen closed %ld times", side.closed_seen);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long lines = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        lines += c == '\n';
    fclose(f);
    ck_assert_int_eq(lines, side.written); /* every line reached a file */
}
END_TEST

/* "-" is stdout. Once the access log is closed, stdout must still work,
 * and not by writing into the access log's freed buffer. libc's own writes
 * are not seen by ASan, so look: under ASan, stdout's buffer (glibc's
 * _IO_buf_base) must not be freed memory; in any build, a block the
 * allocator hands out next must not be written by a printf to stdout. */
START_TEST(access_log_on_stdout_and_stdout_after_it)
{
    enum { BLOCK = 64 * 1024 };
    fflush(stdout);
    int saved = redirect(1);
    int rc = log_access_open("-");
    if (rc == 0)
        log_access("127.0.0.1", "GET", "/access", 1, 200, 26, 5);
    log_access_close();
    bool freed = false;
#if defined(__SANITIZE_ADDRESS__)
    freed = stdout->_IO_buf_base && __asan_address_is_poisoned(stdout->_IO_buf_base);
#endif
    unsigned char *next = malloc(BLOCK); /* glibc: often the block just freed */
    ck_assert_ptr_nonnull(next);
    memset(next, 0x5A, BLOCK);
    printf("after the access log\n");
    bool clobbered = false;
    for (size_t i = 0; i < BLOCK; i++)
        clobbered |= next[i] != 0x5A;
    fflush(stdout);
    free(next);
    restore(1, saved); /* before any assertion: Check reports on stdout */
    ck_assert_int_eq(rc, 0);
    ck_assert(!log_access_enabled());
    ck_assert_msg(!freed, "stdout's buffer is freed memory");
    ck_assert_msg(!clobbered, "printf to stdout wrote into a block malloc handed out");
    read_out();
    assert_matches(out, "^127\\.0\\.0\\.1 - - " CLF_STAMP
                        " \"GET /access HTTP/1\\.1\" 200 26 wait_ms=0\\.005\n"
                        "after the access log\n$");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, level_names_round_trip);
    tcase_add_test(tc, threshold_enables_its_level_and_the_more_severe);
    tcase_add_test(tc, a_log_line_has_a_utc_stamp_and_its_level);
    tcase_add_test(tc, a_long_message_is_still_one_line);
    tcase_add_test(tc, access_lines_in_common_log_format_with_the_wait);
    tcase_add_test(tc, access_log_is_buffered_until_flushed);
    tcase_add_test(tc, access_log_appends);
    tcase_add_test(tc, unopenable_access_log_is_an_errno);
    tcase_add_test(tc, reopening_never_closes_the_log_to_other_threads);
    tcase_add_test(tc, access_log_on_stdout_and_stdout_after_it);
    suite_add_tcase(s, tc);
    return check_run(s);
}

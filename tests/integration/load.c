/* load: see load.h. */
#include "load.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"

static const char get_access[] = "GET /access HTTP/1.1\r\nHost: t\r\n\r\n";

struct load {
    int port;
    int max;         /* requests at most */
    long long until; /* now_ms() at which to stop */
    int n, ok, unavailable, other;
    long long *ns;    /* N of each 200 */
    long long *ok_at; /* now_ms() of each 200 */
    struct reader rd; /* 64 KiB: off the thread's stack */
    char why[96];     /* the last failure */
};

/* A connection and a request without Check: a failed assertion on this
 * thread would unwind the test's own. False if either failed. */
static bool thread_send(struct reader *rd, int port)
{
    if (rd->fd < 0) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *rd = (struct reader){.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
        if (rd->fd < 0 || connect(rd->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
            return false;
    }
    return send(rd->fd, get_access, sizeof(get_access) - 1, MSG_NOSIGNAL) ==
           (ssize_t)sizeof(get_access) - 1;
}

static void *load_main(void *arg)
{
    struct load *l = arg;
    struct reader *rd = &l->rd;
    rd->fd = -1;
    while (l->n < l->max && now_ms() < l->until) {
        struct resp r;
        l->n++;
        if (!thread_send(rd, l->port) || read_response(rd, &r, 20000) < 0) {
            snprintf(l->why, sizeof(l->why), "request %d: %s", l->n, strerror(errno));
            l->other++;
            if (rd->fd >= 0)
                close(rd->fd);
            rd->fd = -1;
            continue;
        }
        if (r.status == 200) {
            l->ns[l->ok] = access_n(&r);
            l->ok_at[l->ok++] = now_ms();
        } else if (r.status == 503 && has_header(&r, "Retry-After: 1")) {
            l->unavailable++;
        } else {
            l->other++;
        }
    }
    if (rd->fd >= 0)
        close(rd->fd);
    return NULL;
}

static struct {
    int nthreads, ok;
    bool running; /* threads started and not yet joined */
    struct load l[LOAD_THREADS];
    pthread_t th[LOAD_THREADS];
    long long ns[LOAD_THREADS * LOAD_MAX_REPLIES], at[LOAD_THREADS * LOAD_MAX_REPLIES];
    long long all[LOAD_THREADS * LOAD_MAX_REPLIES + 2]; /* Ns, then times and two edges */
} run;

/* Joins the threads of a run whose test failed before load_finish(): they
 * end by their own deadline, and must not share the next run's state. */
static void join_stale(void)
{
    for (int i = 0; run.running && i < run.nthreads; i++)
        pthread_join(run.th[i], NULL);
    run.running = false;
}

void load_start(const int *ports, int nports, int nthreads, int per_thread, int duration_ms)
{
    join_stale();
    ck_assert_int_le(nthreads, LOAD_THREADS);
    ck_assert_int_le(per_thread, LOAD_MAX_REPLIES);
    run.nthreads = 0;
    for (int i = 0; i < nthreads; i++) {
        run.l[i] = (struct load){.port = ports[i % nports],
                                 .max = per_thread,
                                 .until = now_ms() + duration_ms,
                                 .ns = run.ns + i * LOAD_MAX_REPLIES,
                                 .ok_at = run.at + i * LOAD_MAX_REPLIES};
        ck_assert_int_eq(pthread_create(&run.th[i], NULL, load_main, &run.l[i]), 0);
        run.nthreads = i + 1;
        run.running = true;
    }
}

int load_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int load_finish(int *unavailable, int *ok_after, long long after_ms)
{
    int ok = 0;
    *unavailable = *ok_after = 0;
    join_stale();
    for (int i = 0; i < run.nthreads; i++) {
        struct load *l = &run.l[i];
        ck_assert_msg(l->other == 0, "thread %d: %d replies neither 200 nor 503 (%s)", i, l->other,
                      l->why);
        for (int k = 0; k < l->ok; k++) {
            run.all[ok++] = l->ns[k];
            *ok_after += l->ok_at[k] > after_ms;
        }
        *unavailable += l->unavailable;
    }
    qsort(run.all, (size_t)ok, sizeof(run.all[0]), load_cmp_ll);
    for (int k = 1; k < ok; k++)
        ck_assert_msg(run.all[k] != run.all[k - 1], "N %lld given twice", run.all[k]);
    run.ok = ok;
    return ok;
}

long long load_longest_gap(long long from_ms, long long to_ms, long long *at)
{
    int n = 0;
    run.all[n++] = from_ms;
    for (int i = 0; i < run.nthreads; i++)
        for (int k = 0; k < run.l[i].ok; k++)
            if (run.l[i].ok_at[k] > from_ms && run.l[i].ok_at[k] < to_ms)
                run.all[n++] = run.l[i].ok_at[k];
    run.all[n++] = to_ms;
    qsort(run.all, (size_t)n, sizeof(run.all[0]), load_cmp_ll);
    long long gap = 0;
    for (int k = 1; k < n; k++)
        if (run.all[k] - run.all[k - 1] > gap) {
            gap = run.all[k] - run.all[k - 1];
            if (at)
                *at = run.all[k - 1];
        }
    return gap;
}

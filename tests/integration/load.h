/* load: client threads that send GET /access over one keep-alive
 * connection each, to instances given by port, and what came back: every
 * 200's N and the moment (now_ms()) it arrived, measured on the clients'
 * side. One run at a time. */
#ifndef TURNSTILE_LOAD_H
#define TURNSTILE_LOAD_H

#define LOAD_THREADS     16
#define LOAD_MAX_REPLIES 4000 /* per thread */

/* Starts nthreads threads, thread i on ports[i % nports], each sending at
 * most per_thread requests, one after the other, until duration_ms passed. */
void load_start(const int *ports, int nports, int nthreads, int per_thread, int duration_ms);

/* Joins the threads and checks the replies: each 200 or 503 with
 * Retry-After, and every N distinct. Returns how many 200s; *unavailable
 * the 503s, *ok_after the 200s that came after after_ms. */
int load_finish(int *unavailable, int *ok_after, long long after_ms);

/* After load_finish: the longest time without a 200 from any thread
 * between from_ms and to_ms (both ends count as edges), and where it
 * started (*at, may be NULL). */
long long load_longest_gap(long long from_ms, long long to_ms, long long *at);

/* For qsort(): long longs in ascending order. */
int load_cmp_ll(const void *a, const void *b);

#endif

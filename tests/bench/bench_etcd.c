/* The etcd client's throughput (not run by `meson test`): sequential fenced
 * compare-and-put txns, the shape of the cluster mode's critical section
 * write ("the counter is still at the revision I read: put n+1"), one at a
 * time through one client on a loop. The cluster benchmark compares its
 * throughput to this.
 *
 * Usage: bench_etcd [ENDPOINTS [TXNS]]
 *   ENDPOINTS  "http://127.0.0.1:2379,..." (default: start a single-node
 *              etcd of our own in a temporary directory, and stop it after)
 *   TXNS       how many (default 2000), after 100 unmeasured ones */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd.h"
#include "etcd_proc.h"
#include "hist.h"

#define KEY    "bench/counter"
#define WARMUP 100

struct bench {
    struct etcd_client client;
    long txns;
    int64_t mod_revision; /* the fence: the counter's revision as last written */
    uint64_t value;
    long fenced_out; /* txns whose compare failed: someone else wrote */
    struct hist latency_us;
    double seconds;
    int rc;
};

/* If the counter is still at the revision we wrote, put value + 1 and
 * learn the new revision; if not, read where it is now. */
static int fenced_put(struct bench *b)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, b->value + 1);
    struct etcd_cmp cmp = {
        .key = KEY, .key_len = strlen(KEY), .target = ETCD_CMP_MOD, .number = b->mod_revision};
    struct etcd_op put = {
        .type = ETCD_OP_PUT,
        .put = {.key = KEY, .key_len = strlen(KEY), .value = text, .value_len = strlen(text)}};
    struct etcd_op get = {.type = ETCD_OP_RANGE, .range = {.key = KEY, .key_len = strlen(KEY)}};
    struct etcd_txn txn = {
        .cmps = &cmp, .ncmps = 1, .success = &put, .nsuccess = 1, .failure = &get, .nfailure = 1};
    struct etcd_reply r;
    int rc = etcd_txn(&b->client, &txn, &r, loop_now_us() + 5000000);
    if (rc < 0)
        return rc;
    if (r.succeeded) {
        b->mod_revision = r.revision;
        b->value++;
    } else {
        b->fenced_out++;
        const struct etcd_op_result *got = &r.ops[0];
        b->mod_revision = got->nkvs ? got->kvs[0].mod_revision : 0;
        b->value = got->nkvs ? strtoull(got->kvs[0].value, NULL, 10) : 0;
    }
    etcd_reply_free(&r);
    return 0;
}

static void run(void *arg)
{
    struct bench *b = arg;
    for (long i = 0; i < WARMUP && b->rc == 0; i++)
        b->rc = fenced_put(b);
    b->fenced_out = 0;
    int64_t t0 = loop_now_us();
    for (long i = 0; i < b->txns && b->rc == 0; i++) {
        int64_t start = loop_now_us();
        b->rc = fenced_put(b);
        hist_record(&b->latency_us, (uint64_t)(loop_now_us() - start));
    }
    b->seconds = (double)(loop_now_us() - t0) / 1e6;
    loop_break(loop_current());
}

static int bench(struct bench *b)
{
    struct loop loop;
    int rc = loop_init(&loop, 0, 4);
    if (rc == 0)
        rc = loop_spawn(&loop, run, b, NULL);
    if (rc == 0)
        rc = loop_run(&loop);
    etcd_client_fini(&b->client);
    loop_fini(&loop);
    return rc < 0 ? rc : b->rc;
}

int main(int argc, char **argv)
{
    static struct bench b;
    struct etcd_proc own = {0};
    const char *endpoints = argc > 1 ? argv[1] : NULL;
    b.txns = argc > 2 ? atol(argv[2]) : 2000;
    hist_init(&b.latency_us);
    if (!endpoints) {
        if (etcd_proc_start(&own, 1, 30000) < 0) {
            fprintf(stderr, "bench_etcd: cannot start etcd\n");
            return 1;
        }
        endpoints = own.endpoints;
    }
    int rc = etcd_client_init(&b.client, endpoints);
    if (rc == 0)
        rc = bench(&b);
    etcd_proc_stop(&own);
    if (rc < 0) {
        fprintf(stderr, "bench_etcd: %s (%s)\n", strerror(-rc), b.client.last_error);
        return 1;
    }
    printf("etcd txn    %6.0f txns/s  sequential fenced compare-and-put, %ld txns, p50 %" PRIu64
           " us, p99 %" PRIu64 " us, %ld fenced out (%s)\n",
           (double)b.txns / b.seconds, b.txns, hist_percentile(&b.latency_us, 50),
           hist_percentile(&b.latency_us, 99), b.fenced_out, etcd_endpoint(&b.client));
    return 0;
}

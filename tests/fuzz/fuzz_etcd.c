/* libFuzzer target: arbitrary bytes as etcd's JSON gateway's reply, through
 * the real etcd client (etcd.c's calls and etcd_watch.c, over the courier
 * of etcd_client.c and etcd_conn.c), to a gateway of the target's own on a
 * loopback port, served from the fuzzer's thread between loop turns.
 *
 * The first byte chooses the call and the size of the pieces the reply is
 * sent in; the rest is the reply, after which the gateway closes its side.
 * So every call ends on the bytes alone (their end is an EOF), never on a
 * clock: a deadline that passes is a hang, and fails. One loop and one
 * client live for the whole run, so what a bad reply leaves behind (a call
 * still queued, a coroutine that never ended, a miscounted statistic, a
 * second connection) fails the check of that input. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "cluster/etcd.h"
#include "cluster/etcd_watch.h"

#define DEADLINE_US (5 * 1000 * 1000) /* a safety net only: passing it fails */

enum kind { RANGE, TXN, DELETE, GRANT, KEEPALIVE, REVOKE, WATCH, NKINDS };

static struct loop loop;
static struct etcd_client client;
static int listen_fd;

/* The gateway's side of this input's connection. */
static struct gateway {
    int fd; /* -1 until the client connects */
    const uint8_t *reply;
    size_t len, sent, piece;
    bool shut;
} gw;

static void fail(const char *what, int rc)
{
    fprintf(stderr, "fuzz_etcd: %s (rc %d: %s)\n", what, rc, strerror(-rc));
    abort();
}

/* At exit, before LeakSanitizer looks: the courier's buffers are held
 * only by its stack, which is no heap that LeakSanitizer scans. */
static void finish(void)
{
    etcd_client_fini(&client);
    loop_fini(&loop);
    close(listen_fd);
}

static void setup(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    char url[64];
    signal(SIGPIPE, SIG_IGN);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, len) < 0 ||
        listen(listen_fd, 4) < 0 || getsockname(listen_fd, (struct sockaddr *)&a, &len) < 0)
        fail("no loopback listener", -errno);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    if (loop_init(&loop, 0, 4) != 0 || etcd_client_init(&client, url) != 0)
        fail("no loop or client", -EINVAL);
    atexit(finish);
}

/* One step of the gateway: takes the connection, sends the next piece of
 * the reply (then closes its side), and drops what the client sent. */
static void gateway_step(void)
{
    char sink[4096];
    if (gw.fd < 0)
        gw.fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (gw.fd < 0)
        return;
    if (gw.sent < gw.len) {
        size_t n = gw.len - gw.sent < gw.piece ? gw.len - gw.sent : gw.piece;
        ssize_t done = send(gw.fd, gw.reply + gw.sent, n, MSG_NOSIGNAL);
        gw.sent += done > 0 ? (size_t)done : 0;
    }
    if (gw.sent == gw.len && !gw.shut)
        gw.shut = shutdown(gw.fd, SHUT_WR) == 0;
    while (recv(gw.fd, sink, sizeof(sink), 0) > 0)
        ;
}

/* ---- the caller's result, against the contract of etcd.h ---- */

/* What a call may return when the endpoint takes the connection and then
 * sends whatever it likes and closes: etcd.h's list, less the deadline,
 * cancel, connect and local errors; a watch's open, -EPIPE as well. */
static bool call_rc_ok(enum kind kind, int rc)
{
    switch (-rc) {
    case EPIPE:
        return kind == WATCH;
    case 0:
    case ECONNRESET:
    case EIO:
    case EMSGSIZE:
    case EINVAL:
    case ENOENT:
    case EEXIST:
    case EACCES:
    case ENOSPC:
    case ERANGE:
    case EAGAIN:
    case EREMOTEIO:
        return true;
    default:
        return false;
    }
}

/* Reads every byte of a decoded field (so ASan sees a read past it) and
 * the NUL that etcd_decode.h promises after it. */
static void check_bytes(const char *p, size_t len)
{
    volatile char sum = 0;
    for (size_t i = 0; i < len; i++)
        sum ^= p[i];
    (void)sum;
    if (p[len] != '\0')
        fail("bytes not NUL-terminated", 0);
}

static void check_kv(const struct etcd_kv *kv)
{
    check_bytes(kv->key, kv->key_len);
    check_bytes(kv->value, kv->value_len);
}

/* A reply of 0: the revision etcd had, and one result per op, of its type. */
static void check_reply(const struct etcd_reply *r, const struct etcd_op *ops, size_t nops)
{
    if (r->revision <= 0 || r->nops != nops)
        fail("reply: no revision, or not one result per op", 0);
    for (size_t i = 0; i < nops; i++) {
        const struct etcd_op_result *res = &r->ops[i];
        if (res->type != ops[i].type || (res->nkvs > 0 && !res->kvs))
            fail("reply: a result of the wrong type", 0);
        for (size_t k = 0; k < res->nkvs; k++)
            check_kv(&res->kvs[k]);
    }
}

/* ---- the calls ---- */

static const struct etcd_op txn_success[] = {
    {.type = ETCD_OP_PUT, .put = {.key = "/q/a", .key_len = 4, .value = "1", .value_len = 1}},
    {.type = ETCD_OP_RANGE, .range = {.key = "/q/b", .key_len = 4}},
    {.type = ETCD_OP_DELETE, .del = {.key = "/q/c", .key_len = 4, .prev_kv = true}},
};
static const struct etcd_op txn_failure[] = {
    {.type = ETCD_OP_RANGE, .range = {.key = "/q/a", .key_len = 4}},
};

static int kv_call(enum kind kind, int64_t deadline_us)
{
    static const struct etcd_cmp cmp = {.key = "/q/a", .key_len = 4, .target = ETCD_CMP_CREATE};
    static const struct etcd_txn txn = {&cmp, 1, txn_success, 3, txn_failure, 1};
    static const struct etcd_op range = {.type = ETCD_OP_RANGE};
    static const struct etcd_op del = {.type = ETCD_OP_DELETE};
    struct etcd_reply r;
    int rc;
    if (kind == RANGE)
        rc = etcd_range(&client,
                        &(struct etcd_range_req){.key = "/q/", .key_len = 3, .prefix = true}, &r,
                        deadline_us);
    else if (kind == TXN)
        rc = etcd_txn(&client, &txn, &r, deadline_us);
    else
        rc = etcd_delete(&client, &(struct etcd_delete_req){.key = "/q/", .key_len = 3}, &r,
                         deadline_us);
    if (rc < 0 && (r.mem || r.ops))
        fail("a failed call left memory in its reply", rc);
    if (rc == 0 && kind == TXN)
        check_reply(&r, r.succeeded ? txn_success : txn_failure, r.succeeded ? 3 : 1);
    else if (rc == 0)
        check_reply(&r, kind == RANGE ? &range : &del, 1);
    etcd_reply_free(&r);
    return rc;
}

static int lease_call(enum kind kind, int64_t deadline_us)
{
    int64_t id = -1, ttl = -1;
    int rc;
    if (kind == GRANT) {
        rc = etcd_lease_grant(&client, 30, &id, &ttl, deadline_us);
        if (rc == 0 ? id == 0 || ttl <= 0 : id != 0 || ttl != 0)
            fail("grant: an ID and a TTL on success, zeros else", rc);
    } else if (kind == KEEPALIVE) {
        rc = etcd_lease_keepalive(&client, 42, &ttl, deadline_us);
        if (rc == 0 ? ttl <= 0 : ttl != 0)
            fail("keepalive: a TTL on success, zero else", rc);
    } else {
        rc = etcd_lease_revoke(&client, 42, deadline_us);
    }
    return rc;
}

/* Opens a watch and reads its events until the stream ends (the gateway's
 * EOF at the latest). Returns the open's result. */
static int watch_call(int64_t deadline_us)
{
    struct etcd_watch w;
    struct etcd_event ev;
    uint64_t broken = client.stats.watch_errors;
    int rc = etcd_watch_open(&client, &w, "/w/", 3, true, deadline_us);
    if (rc < 0)
        return rc;
    if (w.revision <= 0)
        fail("watch: created without a revision", 0);
    int next;
    while ((next = etcd_watch_next(&w, &ev, deadline_us)) == 0) {
        if (ev.type != ETCD_EVENT_PUT && ev.type != ETCD_EVENT_DELETE)
            fail("watch: an event of no type", 0);
        check_kv(&ev.kv);
    }
    /* etcd_watch.h: the ends of a call, and -EPIPE; never a deadline. */
    if (!call_rc_ok(WATCH, next))
        fail("watch: not an end that etcd_watch.h lists", next);
    if (etcd_watch_next(&w, &ev, deadline_us) != next || client.stats.watch_errors != broken + 1)
        fail("watch: an ended watch did not stay ended, counted once", next);
    etcd_watch_close(&w);
    return rc;
}

struct run {
    enum kind kind;
    int rc;
    bool done;
};

static void caller(void *arg)
{
    struct run *run = arg;
    int64_t deadline_us = loop_now_us() + DEADLINE_US;
    if (run->kind == WATCH)
        run->rc = watch_call(deadline_us);
    else if (run->kind <= DELETE)
        run->rc = kv_call(run->kind, deadline_us);
    else
        run->rc = lease_call(run->kind, deadline_us);
    run->done = true;
}

/* ---- the client's state afterwards ---- */

static uint64_t failed_calls(const struct etcd_stats *s)
{
    uint64_t n = 0;
    for (int k = 0; k < ETCD_ERR_COUNT; k++)
        n += s->errors[k];
    return n;
}

static void check_client(const struct run *run, const struct etcd_stats *before,
                         const struct etcd_endpoints *was)
{
    const struct etcd_stats *s = &client.stats;
    if (!call_rc_ok(run->kind, run->rc))
        fail("a result that etcd.h does not list for a reply", run->rc);
    if (s->calls != before->calls + 1 || s->ok != before->ok + (run->rc == 0) ||
        failed_calls(s) != failed_calls(before) + (run->rc != 0) || s->errors[ETCD_ERR_CONNECT] ||
        s->errors[ETCD_ERR_TIMEOUT] || s->errors[ETCD_ERR_CANCELED])
        fail("the call was not counted once, by its kind", run->rc);
    if (etcd_last_ok(&client) != (run->rc == 0) || (run->rc < 0 && !etcd_last_error(&client)[0]))
        fail("last_ok or last_error do not tell the outcome", run->rc);
    if (client.inflight || !list_empty(&client.calls) || (client.courier && !client.courier_idle))
        fail("the courier is not idle after the call", run->rc);
    if (loop.pool.nlive != (client.courier ? 1u : 0u))
        fail("a coroutine outlived its call", run->rc);
    if (client.endpoints.connects != was->connects + 1 || client.endpoints.connect_failures)
        fail("not one connection for the call", run->rc);
    if (accept4(listen_fd, NULL, NULL, 0) >= 0 || errno != EAGAIN)
        fail("a second connection for the call", -errno);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size < 1)
        return 0;
    /* Pieces: the whole reply at once, or 1, 2, 4 ... 128 bytes a turn. */
    unsigned cut = data[0] / NKINDS % 9;
    struct run run = {.kind = data[0] % NKINDS};
    gw = (struct gateway){.fd = -1, .reply = data + 1, .len = size - 1};
    gw.piece = cut ? 1u << (cut - 1) : gw.len;
    struct etcd_stats before = client.stats;
    struct etcd_endpoints was = client.endpoints;
    if (loop_spawn(&loop, caller, &run, NULL) != 0)
        fail("no coroutine", -ENOMEM);
    while (!run.done) {
        gateway_step();
        loop_run_once(&loop);
    }
    check_client(&run, &before, &was);
    close(gw.fd);
    return 0;
}

/* etcd_run: what the etcd client's suites share (the fake gateway's in
 * tests/unit, real etcd's in tests/integration): their driver and the op
 * most of them write with. */
#ifndef TURNSTILE_TEST_ETCD_RUN_H
#define TURNSTILE_TEST_ETCD_RUN_H

#include "cluster/etcd.h"
#include "loop.h"

/* Runs fn() in a coroutine on *loop, made afresh, with *client made afresh
 * for endpoints (both the suite's, for fn to use), then finishes the client
 * and the loop. Fails the test unless every step returned 0 and, with the
 * client finished, no coroutine is left. */
void etcd_run(struct loop *loop, struct etcd_client *client, void (*fn)(void),
              const char *endpoints);

/* A put of the strings key and value (which it points to, not copies) under
 * lease (0: none); no prev_kv. */
struct etcd_op etcd_run_put_op(const char *key, const char *value, int64_t lease);

#endif

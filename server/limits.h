/* limits: every default the server starts with, and why. Each is also a
 * flag and a config-file key (see cfg.h). Sources: nginx and h2o defaults,
 * and docs/design.md "Limits and their reasons". */
#ifndef TURNSTILE_LIMITS_H
#define TURNSTILE_LIMITS_H

#define LIMIT_BIND            "127.0.0.1" /* loopback: exposing it is a choice */
#define LIMIT_PORT            8080
#define LIMIT_DELAY_MS        100.0 /* the aiohttp example's simulated work */
#define LIMIT_JITTER_MS       0.0   /* uniform extra delay, 0 = fixed delay */
#define LIMIT_LOCK_TIMEOUT_MS 0.0   /* 0 = wait for the lock forever */
#define LIMIT_MAX_WAITERS     0     /* 0 = unbounded queue */

/* Idempotency-Key: a repeat within this window is answered from memory (or
 * etcd). The draft leaves the window to the server; Stripe keeps keys 24 h,
 * long enough for any client's retries and a balancer's. The cap bounds
 * memory: an entry is ~100 bytes, so a million keys ~100 MiB; 100 000 keys
 * cover 24 h at ~1 request/s, or the last few minutes at full speed. */
#define LIMIT_IDEM_RETENTION_MS 86400000
#define LIMIT_IDEM_MAX_KEYS     100000

/* Cluster mode (--etcd). A lease of a few seconds: a dead instance's place
 * in the queue goes within that, and keepalives every third of it cost
 * etcd little. A call to etcd that takes longer than LIMIT_ETCD_CALL_MS is
 * given up (a stalled member, a partition): /access then answers 503 even
 * with --lock-timeout-ms 0, and the client moves to the next endpoint. */
#define LIMIT_CLUSTER_NAME "turnstile"
#define LIMIT_LEASE_TTL_MS 5000
#define LIMIT_ETCD_CALL_MS 1000
/* etcd keeps every revision until compacted: every 5 minutes, as
 * Kubernetes' API server compacts its etcd; one interval of history is
 * kept, so a write whose reply was lost can be settled that long after. */
#define LIMIT_COMPACT_INTERVAL_MS 300000
/* etcd's own default --quota-backend-bytes (2 GiB): past it etcd raises
 * NOSPACE and refuses writes. etcd 3.4's status call does not report the
 * quota, so the page's db size bar is drawn against this (a flag). */
#define LIMIT_ETCD_QUOTA_BYTES (2ull << 30)

/* Whole-header deadline, not idle time: a client dribbling a byte a second
 * cannot hold a connection (slowloris). nginx: client_header_timeout 60s;
 * h2o: 10s. */
#define LIMIT_HEADER_TIMEOUT_MS 10000
/* Idle keep-alive connection between requests. nginx: 75s; h2o: 10s. */
#define LIMIT_KEEPALIVE_TIMEOUT_MS 15000
/* A client that does not drain its replies is cut after this. */
#define LIMIT_SEND_TIMEOUT_MS 10000
/* After SIGINT/SIGTERM, queued and in-flight requests get this long. */
#define LIMIT_DRAIN_TIMEOUT_MS 30000

/* Staged close (conn.c, linger()): after a reply that ends a connection
 * while the client may still be sending (an error, pipelined requests after
 * a "Connection: close"), we read and drop its input until it closes too,
 * so that our close sends no reset that could destroy the reply. At most
 * this long in all (nginx: lingering_time 30s), this long without a byte
 * (nginx: lingering_timeout 5s), and this many bytes: a 16 MiB upload that
 * overshot the body limit drains in milliseconds on a fast link, while a
 * client sending forever is cut by the byte cap or the clock. */
#define LIMIT_LINGER_MS       30000
#define LIMIT_LINGER_QUIET_MS 5000
#define LIMIT_LINGER_BYTES    (64u << 20)

/* Two mappings per coroutine stack: 10 000 connections use 20 000 of the
 * default vm.max_map_count (65 530). Above the limit the listener pauses. */
#define LIMIT_MAX_CONNECTIONS 10000

/* Event loops (--threads). One: the lock is then a plain single-thread
 * lock, the cheapest; more spread parsing, /stats and many connections
 * over cores (docs/design.md, "Many cores"). */
#define LIMIT_THREADS 1
#define LIMIT_BACKLOG 4096 /* listen(2) queue; the kernel caps it */

#define LIMIT_MAX_HEADER_BYTES 8192       /* request line + headers: 431 (URL alone: 414) */
#define LIMIT_MAX_HEADERS      100        /* header fields: 431 */
#define LIMIT_MAX_BODY         (1u << 20) /* request body, read and discarded: 413 */

#endif

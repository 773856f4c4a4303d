/* proxy: a TCP proxy on 127.0.0.1 between a client under test (an
 * instance) and a server (an etcd member), to inject the faults of a
 * network path. A mode says what the path does:
 *   PROXY_PASS       bytes are forwarded both ways;
 *   PROXY_BLACKHOLE  connections are accepted and read, but nothing is
 *                    forwarded or answered (a cut path, a peer that hangs):
 *                    what is read is counted as swallowed;
 *   PROXY_RESET      every open connection is reset (SO_LINGER 0) and the
 *                    listener is closed, so that a new one is refused by
 *                    the kernel at once, as with a crashed peer; leaving
 *                    the mode listens again on the same port.
 * A mode applies to the connections open at the switch as well as new ones.
 *
 * A trap loses one reply at a known moment, which a signal to a process
 * (SIGSTOP) cannot promise: armed with a needle, the first request chunk
 * that holds it is forwarded, the server's reply to it is read and dropped
 * (so the request certainly took effect, and its sender never learns it),
 * and the mode becomes PROXY_RESET until the test sets another.
 *
 * One thread per proxy polls the listener and every pair of sockets; the
 * test's calls take effect within a few ms. Every function but start and
 * stop is safe while it runs. Functions return 0 or a negative errno and
 * never call Check. */
#ifndef TURNSTILE_PROXY_H
#define TURNSTILE_PROXY_H

#include <stdint.h>

enum proxy_mode { PROXY_PASS, PROXY_BLACKHOLE, PROXY_RESET };

struct proxy;

/* Listens on a free port of 127.0.0.1 (*port) and forwards to target_port,
 * in PROXY_PASS. Returns 0 or a negative errno. */
int proxy_start(struct proxy **out, int target_port, int *port);

/* Switches the mode. */
void proxy_set(struct proxy *p, enum proxy_mode mode);

/* Bytes read and dropped in PROXY_BLACKHOLE, both ways, so far. */
uint64_t proxy_swallowed(const struct proxy *p);

/* Arms the trap (needle: up to 255 bytes, copied). */
void proxy_trap(struct proxy *p, const char *needle);

/* Waits until the trap sprang: its request forwarded, the reply dropped,
 * the mode PROXY_RESET. Returns 0, or -ETIMEDOUT after timeout_ms. */
int proxy_wait_trap(struct proxy *p, int timeout_ms);

/* Stops the thread and closes everything. Safe on NULL. */
void proxy_stop(struct proxy *p);

#endif

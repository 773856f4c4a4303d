/* proxy: a TCP proxy on 127.0.0.1 between a client under test and a
 * server (an instance and an etcd member), run by a thread of its own, to
 * inject the faults of a network path:
 *   PROXY_PASS       bytes are forwarded both ways;
 *   PROXY_BLACKHOLE  connections are accepted and read, but nothing is
 *                    forwarded or answered (a cut path, a peer that hangs):
 *                    what is read is counted as swallowed;
 *   PROXY_RESET      every connection is reset (SO_LINGER 0), the open ones
 *                    and each new one, as a crashed peer's kernel does.
 * A mode applies to the connections open at the switch as well as new
 * ones. Functions return 0 or a negative errno and never call Check. */
#ifndef TURNSTILE_PROXY_H
#define TURNSTILE_PROXY_H

#include <stdint.h>

enum proxy_mode { PROXY_PASS, PROXY_BLACKHOLE, PROXY_RESET };

struct proxy;

/* Listens on a free port of 127.0.0.1 (*port) and forwards to target_port.
 * Returns 0 or a negative errno. */
int proxy_start(struct proxy **out, int target_port, int *port);

/* Switches the mode; the proxy's thread applies it within a few ms. */
void proxy_set(struct proxy *p, enum proxy_mode mode);

/* Bytes read and dropped in PROXY_BLACKHOLE, both ways, so far. */
uint64_t proxy_swallowed(const struct proxy *p);

/* Stops the thread and closes everything. Safe on NULL. */
void proxy_stop(struct proxy *p);

#endif

/* tcp_proxy: a TCP relay on 127.0.0.1 between a server under test and its
 * upstream (etcd), that can lose one reply on purpose. A test arms a trap
 * with a needle; the first request chunk that holds it is relayed, the
 * upstream's reply to it is read and dropped (so the request certainly
 * took effect, and its sender never learns it), and from then on the path
 * is cut: every connection is reset and new ones are refused, until the
 * test heals it. A lost reply thus happens at a known moment, which a
 * signal to a process (SIGSTOP) cannot promise.
 *
 * One thread of its own; no Check in it. Every function but start is
 * safe while the relay runs. */
#ifndef TURNSTILE_TCP_PROXY_H
#define TURNSTILE_TCP_PROXY_H

#include <stdbool.h>

struct tcp_proxy;

/* Listens on 127.0.0.1 (a free port) and relays to 127.0.0.1:upstream.
 * Returns the proxy, or NULL (errno set). */
struct tcp_proxy *tcp_proxy_start(int upstream_port);

/* The port it listens on. */
int tcp_proxy_port(const struct tcp_proxy *p);

/* Arms the trap (needle: up to 255 bytes, copied). */
void tcp_proxy_trap(struct tcp_proxy *p, const char *needle);

/* Waits until the trap sprang and its reply was dropped (the path is cut
 * now): true, or false after timeout_ms. */
bool tcp_proxy_wait_cut(struct tcp_proxy *p, int timeout_ms);

/* Listens again, on the same port, and relays (from its next poll round). */
void tcp_proxy_heal(struct tcp_proxy *p);

/* Stops the thread and closes everything. NULL is fine. */
void tcp_proxy_stop(struct tcp_proxy *p);

#endif

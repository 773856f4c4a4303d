/* fake_gateway: a scripted stand-in for etcd's JSON gateway on a loopback
 * port, for the suites of the etcd client's layers. A thread accepts one
 * connection at a time, reads each request whole (head, then its
 * Content-Length), remembers it, and answers with the script: raw bytes,
 * sent in pieces of a chosen size (1 cuts a reply at every byte), then
 * the connection closed or kept. Replies can be anything: that is the
 * point. */
#ifndef TURNSTILE_FAKE_GATEWAY_H
#define TURNSTILE_FAKE_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

#define FAKE_GATEWAY_REQUEST_MAX 4096

/* What the gateway saw. */
struct fake_gateway_seen {
    int accepted;                           /* connections */
    int requests;                           /* requests read whole */
    char request[FAKE_GATEWAY_REQUEST_MAX]; /* the last, head and body */
};

/* Listens on 127.0.0.1 and starts serving; returns the port, or -1. */
int fake_gateway_start(void);
/* Stops and joins the thread; what it saw is reset at the next start. */
void fake_gateway_stop(void);

/* What every request is answered with from now on: bytes (copied), sent
 * piece bytes at a time (0: at once); with close_after the connection is
 * closed once they are sent. */
void fake_gateway_script(const char *bytes, size_t len, size_t piece, bool close_after);
/* An HTTP/1.1 reply with status and body, closing the connection after. */
void fake_gateway_reply(int status, const char *body, size_t len);
/* Like fake_gateway_script, closing with a reset (SO_LINGER 0) after
 * the bytes: they and the reset reach the client together. */
void fake_gateway_script_reset(const char *bytes, size_t len);

/* Requests are read and never answered (nor their connections closed). */
void fake_gateway_silence(void);

void fake_gateway_seen(struct fake_gateway_seen *out);

#endif

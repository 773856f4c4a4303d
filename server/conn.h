/* conn: one client connection, served start to end by one coroutine: read,
 * parse, dispatch, reply, keep-alive, in order for pipelined requests. */
#ifndef TURNSTILE_CONN_H
#define TURNSTILE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct conn;

/* Why a connection ended; /stats counts each. */
enum conn_end {
    CONN_END_CLIENT,      /* the client closed or reset it */
    CONN_END_DONE,        /* Connection: close, HTTP/1.0, or the server stopping */
    CONN_END_BAD_REQUEST, /* answered 4xx/5xx for a malformed request */
    CONN_END_TIMEOUT,     /* header deadline (408) or send timeout */
    CONN_END_IDLE,        /* keep-alive idle timeout */
    CONN_END_GONE,        /* the client left while its request was in flight */
    CONN_END_COUNT
};

/* How /stats and /metrics name each enum conn_end. */
extern const char *const conn_end_names[CONN_END_COUNT];

/* Takes over an accepted, non-blocking socket: starts its coroutine, or
 * answers 503 and closes when no coroutine can be had. */
void conn_accept(struct server *srv, int fd);

/* On stop: closes the connections idle between requests at once; the others
 * finish their request and close after the reply. */
void conn_drain_all(struct server *srv);

/* For streaming routes: sends len bytes within timeout_ms, or fails with a
 * negative errno (the client left, or reads too slowly: then the stream
 * should end rather than buffer). */
int conn_stream_write(struct conn *c, const char *buf, size_t len, uint64_t timeout_ms);
/* Sleeps between stream events; false when the stream should end (the
 * client hung up or the server is stopping). */
bool conn_stream_pause(struct conn *c, int64_t us);

#endif

/* tls_server: an in-process TLS server on 127.0.0.1 for the TLS client's
 * tests: a thread of blocking OpenSSL calls that serves connections one at
 * a time, each echoing the lines it reads until the client closes. No
 * OpenSSL (nor Check) in this header: the suites that use it have server/
 * on their include path, whose limits.h shadows the <limits.h> that
 * OpenSSL's headers include. */
#ifndef TURNSTILE_TLS_SERVER_H
#define TURNSTILE_TLS_SERVER_H

#include <stdbool.h>

enum tls_server_mode {
    TLS_SERVER_ECHO,   /* handshake, then echo lines */
    TLS_SERVER_PLAIN,  /* no TLS: reads, answers with an HTTP 400 in plain text */
    TLS_SERVER_HANGUP, /* accepts and closes at once */
};

struct tls_server_opts {
    enum tls_server_mode mode;
    const char *cert, *key; /* the server's PEM certificate and key */
    const char *client_ca;  /* require a client certificate signed by it; NULL: ask none */
};

struct tls_server;

/* Listens on a free port and serves until tls_server_stop(). Returns 0 or
 * a negative errno (and prints OpenSSL's reason to stderr). */
int tls_server_start(struct tls_server **out, const struct tls_server_opts *o);

int tls_server_port(const struct tls_server *s);

/* Handshakes that completed, and of them those that resumed a session. */
unsigned tls_server_handshakes(const struct tls_server *s);
unsigned tls_server_resumed(const struct tls_server *s);

/* Stops (within 100 ms of the connection in hand ending) and frees s. */
void tls_server_stop(struct tls_server *s);

#endif

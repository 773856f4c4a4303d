/* dead_port: a loopback port to be refused at, for tests of what a client
 * does when an endpoint is down. */
#ifndef TURNSTILE_TEST_DEAD_PORT_H
#define TURNSTILE_TEST_DEAD_PORT_H

/* A port of 127.0.0.1 where nothing listens: one the kernel just handed
 * out for a bind, closed again (so a connect there is refused unless some
 * other process takes it meanwhile). Fails the test if there is none. */
int dead_port(void);

#endif

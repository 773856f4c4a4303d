/* libFuzzer target: arbitrary bytes through the real connection path
 * (conn -> http -> route -> resource -> reply), with the network replaced
 * by a socketpair. One server lives for the whole run, so state that leaks
 * from one input to the next (a lock left held, a connection never closed,
 * a counter moved by a bad request) shows up as a failed check. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfg.h"
#include "server.h"

static struct server srv;

static void setup(void)
{
    static struct cfg cfg;
    cfg_defaults(&cfg);
    cfg.delay_ms = 0;
    signal(SIGPIPE, SIG_IGN);
    if (server_init(&srv, &cfg) != 0)
        abort();
}

/* Feeds what fits of the input, then reads and drops the replies. */
static void pump(int fd, const uint8_t *data, size_t size, size_t *off, bool *shut)
{
    char sink[65536];
    if (*off < size) {
        ssize_t n = send(fd, data + *off, size - *off, MSG_NOSIGNAL);
        if (n > 0)
            *off += (size_t)n;
    }
    if (*off == size && !*shut) {
        shutdown(fd, SHUT_WR); /* end of input: the client is done talking */
        *shut = true;
    }
    while (recv(fd, sink, sizeof(sink), 0) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    int sv[2];
    if (!ready) {
        setup();
        ready = true;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    struct worker *w = &srv.workers[0];
    const uint64_t *granted = &w->requests.by_route[TALLY_ACCESS][TALLY_200];
    uint64_t counter = resource_counter(&srv.resource), ok = *granted;
    size_t off = 0;
    bool shut = false;
    worker_adopt(w, sv[1]);
    while (w->tally.active > 0) {
        pump(sv[0], data, size, &off, &shut);
        loop_run_once(&w->loop);
    }
    close(sv[0]);
    /* Only a 200 from /access moves the counter, by exactly one. */
    uint64_t now = resource_counter(&srv.resource);
    if (lock_locked(&srv.resource.lock) || now < counter || now - counter > *granted - ok)
        abort();
    return 0;
}

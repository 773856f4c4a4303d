/* turnstile: the daemon's entry point. Exit status: 0 after a clean stop,
 * 2 for a usage or configuration error, 1 for a runtime failure. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>

#include "cfg.h"
#include "server.h"

int main(int argc, char **argv)
{
    static struct cfg cfg;
    static struct server srv;

    cfg_defaults(&cfg);
    int rc = cfg_parse(&cfg, argc, argv);
    if (rc == CFG_EXIT_OK)
        return 0;
    if (rc < 0)
        return 2;
    if (cfg.no_lock)
        fprintf(stderr, "turnstile: --no-lock: the critical section runs unlocked; "
                        "concurrent updates will be lost (a demonstration)\n");
    /* A client that vanishes mid-reply is an EPIPE to handle, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    /* The kernel may fire a timer up to the slack late (50 us by default);
     * the simulated delay is the whole critical section, so ask for 1 ns. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    rc = server_start(&srv, &cfg);
    if (rc == 0)
        rc = server_run(&srv);
    server_fini(&srv);
    if (rc == -EINVAL)
        return 2;
    return rc < 0 ? 1 : 0;
}

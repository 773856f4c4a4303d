/* turnstile: the daemon's entry point. Exit status: 0 after a clean stop,
 * 2 for a usage or configuration error, 1 for a runtime failure. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "server.h"

/* One line with what this run is: handy when reading logs later. */
static void log_started(const struct cfg *cfg, const struct server *srv)
{
    log_msg(LOG_LEVEL_INFO,
            "started: %s%s%s, pid %d, delay %g ms + 0..%g jitter, lock %s, lock timeout %g ms, "
            "max waiters %llu, state %s",
            srv->url, srv->admin_url[0] ? ", admin " : "", srv->admin_url, (int)getpid(),
            cfg->delay_ms, cfg->jitter_ms, cfg->no_lock ? "OFF" : "on", cfg->lock_timeout_ms,
            (unsigned long long)cfg->max_waiters,
            cfg->state_file[0] ? cfg->state_file : "in memory");
}

struct args {
    int argc;
    char **argv;
};

/* A reload (SIGHUP) reads the same flags and config file again. */
static int reread(struct cfg *next, void *arg)
{
    const struct args *a = arg;
    return cfg_reparse(next, a->argc, a->argv);
}

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
    log_set_level((enum log_level)cfg.log_level);
    if (cfg.access_log[0] && (rc = log_access_open(cfg.access_log)) < 0) {
        fprintf(stderr, "turnstile: cannot open access log %s: %s\n", cfg.access_log,
                strerror(-rc));
        return 2;
    }
    if (cfg.no_lock && !cfg.etcd[0]) /* with --etcd: refused, in one line (server.c) */
        log_msg(LOG_LEVEL_WARN, "--no-lock: the critical section runs unlocked; concurrent updates "
                                "will be lost (a demonstration)");
    /* A client that vanishes mid-reply is an EPIPE to handle, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    /* The kernel may fire a timer up to the slack late (50 us by default);
     * the simulated delay is the whole critical section, so ask for 1 ns. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    rc = server_start(&srv, &cfg);
    struct args args = {argc, argv};
    server_on_reload(&srv, reread, &args);
    if (rc == 0) {
        log_started(&cfg, &srv);
        rc = server_run(&srv);
    }
    /* A stop that could not save the counter (--state-file) is a failure. */
    if (server_fini(&srv) < 0 && rc == 0)
        rc = -EIO;
    log_access_close();
    if (rc == -EINVAL)
        return 2;
    if (rc == 0)
        log_msg(LOG_LEVEL_INFO, "stopped: counter %llu",
                (unsigned long long)resource_counter(&srv.resource));
    return rc < 0 ? 1 : 0;
}

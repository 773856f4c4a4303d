/* errlog: a run of the same etcd error, told to the operator. One failed
 * call is a blip (the caller answers for it: a 503, a retry); the same
 * error again and again, with nothing succeeding in between, is etcd (or
 * the way to it) failing, and says so at error level once, with what it
 * means and what to do; again every ERRLOG_REPEAT_US while it lasts; and
 * its end at info.
 *
 * Per process: every etcd client of every loop reports each call's outcome
 * (etcd_client_account()), so a run is "no call of this process to etcd
 * succeeds, and they fail with this errno". One etcd member among several
 * that fails is no run (the clients move on, their calls succeed; the
 * endpoints' own health says which member). Not told here, as others
 * tell them: -ECANCELED (ours, not etcd's), -ENOSPC (the alarm sentry,
 * alarm.h), the refusals of a secured etcd (etcd_secure.h).
 *
 * Every function is safe from any thread; the clock is the caller's, so
 * tests can drive it. */
#ifndef TURNSTILE_CLUSTER_ERRLOG_H
#define TURNSTILE_CLUSTER_ERRLOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* A run: a failure this long after the first of its errno, none
 * succeeding in between. Not a count: clients that fail at one moment
 * (one slow second of etcd's) make no run. */
#define ERRLOG_RUN_US    2000000
#define ERRLOG_REPEAT_US 60000000 /* a lasting run is told again this often */
#define ERRLOG_KINDS     8        /* errnos followed at once; more are not told */
#define ERRLOG_WHY_CAP   160

/* One errno's run. */
struct errlog_run {
    int rc; /* 0: the slot is free */
    uint64_t failures;
    int64_t first_us, said_us; /* its first failure; its last line */
    bool told;                 /* at error: its end is told too */
    char why[ERRLOG_WHY_CAP];  /* the last failure's words */
};

struct errlog {
    pthread_mutex_t mu;
    _Atomic bool open; /* a run is followed: a success must end it */
    struct errlog_run runs[ERRLOG_KINDS];
};

/* What errlog_note() logged. */
enum errlog_said {
    ERRLOG_QUIET,   /* nothing */
    ERRLOG_STARTED, /* a run, at error */
    ERRLOG_LASTS,   /* a run told before, again at error */
    ERRLOG_ENDED    /* the end of a told run, at info */
};

/* The process's, which etcd_client_account() reports to. */
struct errlog *errlog_process(void);

/* A log of one's own (tests); errlog_fini() after the last note. */
void errlog_init(struct errlog *l);
void errlog_fini(struct errlog *l);

/* A call ended with rc (0 or a negative errno), why saying what went
 * wrong (may be NULL), at now_us (the caller's monotonic clock). Returns
 * what was logged: ERRLOG_STARTED at the failure that makes a run
 * (ERRLOG_RUN_US), ERRLOG_LASTS at the first failure ERRLOG_REPEAT_US after
 * the last line,
 * ERRLOG_ENDED at the success that ends a told run, else ERRLOG_QUIET.
 * A success costs one atomic load while no run is followed. */
enum errlog_said errlog_note(struct errlog *l, int rc, const char *why, int64_t now_us);

#endif

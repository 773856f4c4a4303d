/* errlog: runs of the same etcd error. See errlog.h. */
#include "errlog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd_secure.h"
#include "log.h"

static struct errlog process = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct errlog *errlog_process(void)
{
    return &process;
}

void errlog_init(struct errlog *l)
{
    *l = (struct errlog){0};
    pthread_mutex_init(&l->mu, NULL);
}

void errlog_fini(struct errlog *l)
{
    pthread_mutex_destroy(&l->mu);
}

/* What a run of rc means, and what to do. */
static const char *meaning(int rc)
{
    switch (-rc) {
    case ETIMEDOUT:
        return "etcd does not answer within a call's deadline: it is stopped, overloaded or "
               "its disk is slow, or the network drops packets; see 'etcdctl endpoint status' "
               "and etcd's log";
    case ECONNRESET:
    case EPIPE:
        return "connections to etcd break mid-call: etcd restarts, or something between cuts "
               "them; see etcd's log";
    case EIO:
    case EMSGSIZE:
        return "etcd's replies are not what turnstile reads: is --etcd the JSON gateway of "
               "etcd 3.4 or later, not another service?";
    case ENOMEM:
    case EMFILE:
    case ENFILE:
        return "this process lacks memory or file descriptors: raise its limits";
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
        return "no etcd endpoint takes a connection: etcd is down or --etcd names the wrong "
               "addresses; start etcd or correct --etcd";
    default:
        return "etcd refuses the calls; see etcd's log";
    }
}

/* Told elsewhere, or no fault of etcd's (errlog.h). */
static bool told_elsewhere(int rc)
{
    return rc == -ECANCELED || rc == -ENOSPC || etcd_secure_is_refusal(rc);
}

/* rc's run, or a free slot for it; NULL when every slot is taken. */
static struct errlog_run *run_of(struct errlog *l, int rc)
{
    struct errlog_run *free_slot = NULL;
    for (unsigned i = 0; i < ERRLOG_KINDS; i++) {
        if (l->runs[i].rc == rc)
            return &l->runs[i];
        if (!l->runs[i].rc && !free_slot)
            free_slot = &l->runs[i];
    }
    return free_slot;
}

static void say(const struct errlog_run *r, const char *again, int64_t now_us)
{
    log_msg(LOG_LEVEL_ERROR, "cluster: etcd calls fail%s: %s (%llu in a row over %.1f s): %s",
            again, r->why, (unsigned long long)r->failures, (double)(now_us - r->first_us) / 1e6,
            meaning(r->rc));
}

static enum errlog_said failed(struct errlog *l, int rc, const char *why, int64_t now_us)
{
    struct errlog_run *r = run_of(l, rc);
    if (!r)
        return ERRLOG_QUIET;
    if (!r->rc)
        *r = (struct errlog_run){.rc = rc, .first_us = now_us};
    atomic_store(&l->open, true);
    r->failures++;
    snprintf(r->why, sizeof(r->why), "%s", why ? why : strerror(-rc));
    bool run = now_us - r->first_us >= ERRLOG_RUN_US;
    enum errlog_said said = !run                                      ? ERRLOG_QUIET
                            : !r->told                                ? ERRLOG_STARTED
                            : now_us - r->said_us >= ERRLOG_REPEAT_US ? ERRLOG_LASTS
                                                                      : ERRLOG_QUIET;
    if (said != ERRLOG_QUIET) {
        say(r, said == ERRLOG_LASTS ? ", still" : "", now_us);
        r->told = true;
        r->said_us = now_us;
    }
    return said;
}

/* A success ends every run: etcd answers this process again. */
static enum errlog_said succeeded(struct errlog *l, int64_t now_us)
{
    enum errlog_said said = ERRLOG_QUIET;
    for (unsigned i = 0; i < ERRLOG_KINDS; i++) {
        struct errlog_run *r = &l->runs[i];
        if (r->rc && r->told) {
            log_msg(LOG_LEVEL_INFO,
                    "cluster: etcd answers again, after %llu calls failed (%s) "
                    "over %.1f s",
                    (unsigned long long)r->failures, r->why, (double)(now_us - r->first_us) / 1e6);
            said = ERRLOG_ENDED;
        }
        r->rc = 0;
    }
    atomic_store(&l->open, false);
    return said;
}

enum errlog_said errlog_note(struct errlog *l, int rc, const char *why, int64_t now_us)
{
    if (told_elsewhere(rc) || (rc == 0 && !atomic_load_explicit(&l->open, memory_order_relaxed)))
        return ERRLOG_QUIET;
    pthread_mutex_lock(&l->mu);
    enum errlog_said said = rc == 0 ? succeeded(l, now_us) : failed(l, rc, why, now_us);
    pthread_mutex_unlock(&l->mu);
    return said;
}

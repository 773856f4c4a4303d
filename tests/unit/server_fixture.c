/* server_fixture: see server_fixture.h. */
#include "server_fixture.h"

#include <check.h>
#include <stdint.h>

void fixture_init(struct fixture *f, const struct resource_settings *s)
{
    resource_init(&f->res, s);
    f->requests = (struct tally_requests){0};
    f->conns = (struct tally_conns){0};
    f->requests_of[0] = &f->requests;
    f->conns_of[0] = &f->conns;
    grants_init(&f->grants);
    f->draining = false;
    f->src = (struct stats_source){.resource = &f->res,
                                   .requests = f->requests_of,
                                   .conns = f->conns_of,
                                   .nloops = 1,
                                   .grants = &f->grants,
                                   .draining = &f->draining,
                                   .started_us = loop_now_us()};
    f->hctx = (struct handler_ctx){
        .resource = &f->res, .tally = &f->requests, .grants = &f->grants, .stats = &f->src};
}

void fixture_fini(struct fixture *f)
{
    grants_fini(&f->grants);
}

void fixture_fill_max(struct fixture *f)
{
    struct lock_stats *l = &f->res.lock.stats;
    f->res.counter = f->res.in_section = UINT64_MAX;
    l->waiters = l->max_waiters = l->acquisitions = l->contended = UINT64_MAX;
    l->timeouts = l->cancellations = l->shed = UINT64_MAX;
    /* A quarter of the range: 19 digits in the maximum and percentiles,
     * and a sum that cannot wrap, whatever the suite recorded before. */
    hist_record(&l->wait_us, UINT64_MAX / 4);
    hist_record(&l->hold_us, UINT64_MAX / 4);
    f->requests.total = f->requests.access = f->requests.gone = UINT64_MAX;
    /* Each cell as large as it can be without the responses by class,
     * their sums, wrapping. */
    for (unsigned r = 0; r < TALLY_ROUTES; r++)
        for (unsigned s = 0; s < TALLY_STATUSES; s++)
            f->requests.by_route[r][s] = UINT64_MAX / (TALLY_ROUTES * TALLY_STATUSES);
    f->conns.accepted = f->conns.active = f->conns.refused = f->conns.lingering = UINT64_MAX;
    for (unsigned i = 0; i < TALLY_ENDS; i++)
        f->conns.ended[i] = UINT64_MAX;
    for (int i = 0; i < GRANTS_CAP; i++)
        grants_record(&f->grants, UINT64_MAX, UINT64_MAX, INT64_MAX / 2);
    /* The grants are all alike, so the count may jump to its largest:
     * which slot holds the oldest no longer matters. */
    f->grants.total = UINT64_MAX;
    /* Uptime and grant times (each less the start) as long as they get
     * without overflowing. */
    f->src.started_us = -INT64_MAX / 4;
}

static void holder_main(void *arg)
{
    struct fixture_holder *h = arg;
    ck_assert_int_eq(lock_acquire(h->lock, LOOP_FOREVER), 0);
    ck_assert_int_eq(loop_park(LOOP_FOREVER), 0);
    ck_assert_int_eq(lock_release(h->lock), 0);
    h->co = NULL;
}

void fixture_hold(struct fixture_holder *h, struct loop *loop, struct lock *lock)
{
    h->lock = lock;
    ck_assert_int_eq(loop_spawn(loop, holder_main, h, &h->co), 0);
    ck_assert(lock_locked(lock));
}

void fixture_release(struct fixture_holder *h)
{
    ck_assert_ptr_nonnull(h->co);
    ck_assert_int_eq(loop_wake(h->co, 0), 0);
}

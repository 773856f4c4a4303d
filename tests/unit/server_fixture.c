/* server_fixture: see server_fixture.h. */
#include "server_fixture.h"

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

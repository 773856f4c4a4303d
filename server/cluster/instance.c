/* instance: the shared state's few helpers. See instance.h. */
#include "instance.h"

#include <string.h>
#include <time.h>

static _Thread_local struct cluster_loop *here;

struct cluster_loop *instance_here(void)
{
    return here;
}

void instance_set_here(struct cluster_loop *cl)
{
    here = cl;
}

int64_t instance_call_deadline(const struct cluster *c, int64_t limit)
{
    int64_t d = loop_now_us() + c->call_ms * 1000;
    return d < limit ? d : limit;
}

int64_t instance_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct etcd_op instance_range_op(const char *key, bool prefix, bool count_only)
{
    return (struct etcd_op){
        .type = ETCD_OP_RANGE,
        .range = {.key = key, .key_len = strlen(key), .prefix = prefix, .count_only = count_only}};
}

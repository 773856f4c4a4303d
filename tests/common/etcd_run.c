/* etcd_run: see etcd_run.h. */
#include "etcd_run.h"

#include <check.h>
#include <string.h>

#include "run_task.h"

void etcd_run(struct loop *loop, struct etcd_client *client, void (*fn)(void),
              const char *endpoints)
{
    ck_assert_int_eq(loop_init(loop, 0, 16), 0);
    ck_assert_int_eq(etcd_client_init(client, endpoints), 0);
    run_task_until_done(loop, fn); /* the client's courier would keep it busy */
    etcd_client_fini(client);
    ck_assert_uint_eq(loop->pool.nlive, 0);
    loop_fini(loop);
}

struct etcd_op etcd_run_put_op(const char *key, const char *value, int64_t lease)
{
    return (struct etcd_op){.type = ETCD_OP_PUT,
                            .put = {.key = key,
                                    .key_len = strlen(key),
                                    .value = value,
                                    .value_len = strlen(value),
                                    .lease = lease}};
}

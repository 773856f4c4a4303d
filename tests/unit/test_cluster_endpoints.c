/* Unit tests for server/cluster/endpoints.c, the health table every etcd
 * client of a process shares: a healthy endpoint is chosen first, one
 * report abandons an endpoint for everyone (and tells the owner once), and
 * only a restore brings it back. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "check_run.h"
#include "cluster/endpoints.h"
#include "log.h"

static int changes;

static void count_change(void *arg)
{
    (void)arg;
    changes++;
}

static void three(struct endpoints *t)
{
    *t = (struct endpoints){.on_change = count_change};
    changes = 0;
    ck_assert_int_eq(endpoints_add(t, "http://127.0.0.1:1"), 0);
    ck_assert_int_eq(endpoints_add(t, "http://127.0.0.1:2"), 0);
    ck_assert_int_eq(endpoints_add(t, "http://127.0.0.1:3"), 0);
}

START_TEST(abandoned_once_for_everyone)
{
    struct endpoints t;
    three(&t);
    ck_assert_uint_eq(endpoints_choose(&t, 1), 1);
    endpoints_abandon(&t, 1, -ETIMEDOUT);
    endpoints_abandon(&t, 1, -ECONNRESET); /* a second client learns it too: nothing new */
    ck_assert_int_eq(changes, 1);
    ck_assert_uint_eq(t.abandoned, 1);
    ck_assert(endpoints_bad(&t, 1));
    ck_assert_uint_eq(endpoints_choose(&t, 1), 2); /* the next healthy one */
    ck_assert(endpoints_better(&t, 1));
    ck_assert(!endpoints_better(&t, 0));
}
END_TEST

START_TEST(all_abandoned_keeps_trying)
{
    struct endpoints t;
    three(&t);
    for (unsigned i = 0; i < 3; i++)
        endpoints_abandon(&t, i, -EAGAIN);
    ck_assert_uint_eq(endpoints_choose(&t, 2), 2); /* someone must still be tried */
    ck_assert(!endpoints_better(&t, 2));           /* and moving would bring nothing */
    endpoints_restore(&t, 0);
    ck_assert_int_eq(changes, 4);
    ck_assert_uint_eq(endpoints_choose(&t, 2), 0);
    ck_assert(endpoints_better(&t, 2)); /* the first one back takes them */
    endpoints_restore(&t, 0);           /* already back: nothing */
    ck_assert_int_eq(changes, 4);
}
END_TEST

START_TEST(described_for_stats)
{
    struct endpoints t;
    char buf[128], tiny[20];
    three(&t);
    endpoints_abandon(&t, 1, -ETIMEDOUT);
    endpoints_describe(&t, buf, sizeof(buf));
    ck_assert_str_eq(buf, "http://127.0.0.1:1 up, http://127.0.0.1:2 down, http://127.0.0.1:3 up");
    endpoints_describe(&t, tiny, sizeof(tiny)); /* cut, never overrun */
    ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
    for (int i = 3; i < ENDPOINTS_MAX; i++)
        ck_assert_int_eq(endpoints_add(&t, "http://127.0.0.1:9"), 0);
    ck_assert_int_eq(endpoints_add(&t, "http://127.0.0.1:9"), -ENOSPC);
}
END_TEST

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR); /* the warnings are the integration tests' to read */
    Suite *s = suite_create("cluster_endpoints");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, abandoned_once_for_everyone);
    tcase_add_test(tc, all_abandoned_keeps_trying);
    tcase_add_test(tc, described_for_stats);
    suite_add_tcase(s, tc);
    return check_run(s);
}

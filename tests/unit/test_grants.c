/* Unit tests for server/grants.c: the ring of recent grants, oldest first,
 * and its /stats object, before and after the ring wraps. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_run.h"
#include "grants.h"
#include "textbuf.h"

static struct grants g;
static char buf[8192];

static void setup(void)
{
    grants_init(&g);
}

static void teardown(void)
{
    grants_fini(&g);
}

static const char *json(int64_t since_us)
{
    struct textbuf t;
    textbuf_init(&t, buf, sizeof(buf));
    grants_json(&g, &t, since_us);
    ck_assert_uint_gt(textbuf_len(&t), 0);
    return buf;
}

START_TEST(no_grants_yet)
{
    ck_assert_str_eq(json(0), "{\"total\": 0, \"time\": \"" GRANTS_TIME_KEY "\", \"recent\": []}");
}
END_TEST

START_TEST(grants_oldest_first_with_times_since_the_start)
{
    int64_t start = 5000000;
    grants_record(&g, 1, 10, start + 250000);
    grants_record(&g, 2, 20, start + 1500000);
    ck_assert_uint_eq(g.total, 2);
    ck_assert_str_eq(json(start), "{\"total\": 2, \"time\": \"wait_us\", \"recent\": ["
                                  "{\"n\": 1, \"wait_us\": 10, \"at_s\": 0.250}, "
                                  "{\"n\": 2, \"wait_us\": 20, \"at_s\": 1.500}]}");
}
END_TEST

/* Past GRANTS_CAP the oldest are dropped: the last GRANTS_CAP remain, still
 * oldest first, and total counts them all. */
START_TEST(the_ring_keeps_the_latest_in_order)
{
    enum { EXTRA = 5 };
    for (uint64_t n = 1; n <= GRANTS_CAP + EXTRA; n++)
        grants_record(&g, n, n * 10, (int64_t)n * 1000);
    ck_assert_uint_eq(g.total, GRANTS_CAP + EXTRA);
    const char *p = json(0);
    char want[64];
    snprintf(want, sizeof(want), "{\"total\": %d, ", GRANTS_CAP + EXTRA);
    ck_assert_int_eq(strncmp(p, want, strlen(want)), 0);
    uint64_t expect = EXTRA + 1, seen = 0;
    for (const char *q = strstr(p, "{\"n\": "); q; q = strstr(q + 1, "{\"n\": ")) {
        unsigned long long n, us;
        ck_assert_int_eq(sscanf(q, "{\"n\": %llu, \"wait_us\": %llu", &n, &us), 2);
        ck_assert_uint_eq(n, expect);
        ck_assert_uint_eq(us, expect * 10);
        expect++;
        seen++;
    }
    ck_assert_uint_eq(seen, GRANTS_CAP);
}
END_TEST

/* The object is cut cleanly when the buffer is too small: length 0. */
START_TEST(a_full_ring_that_does_not_fit_is_zero)
{
    for (uint64_t n = 1; n <= GRANTS_CAP; n++)
        grants_record(&g, UINT64_MAX, UINT64_MAX, INT64_MAX / 2);
    struct textbuf t;
    char small[256];
    textbuf_init(&t, small, sizeof(small));
    grants_json(&g, &t, 0);
    ck_assert_uint_eq(textbuf_len(&t), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grants");
    TCase *tc = tcase_create("grants");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, no_grants_yet);
    tcase_add_test(tc, grants_oldest_first_with_times_since_the_start);
    tcase_add_test(tc, the_ring_keeps_the_latest_in_order);
    tcase_add_test(tc, a_full_ring_that_does_not_fit_is_zero);
    suite_add_tcase(s, tc);
    return check_run(s);
}

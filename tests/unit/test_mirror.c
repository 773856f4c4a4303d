/* Unit tests for server/cluster/mirror.c: the cluster's queue as one instance sees
 * it. Entries are found by key whatever their number (the table grows),
 * the order is by create revision whatever order keys are queued in, and
 * an entry taken out of order stays findable until it is removed. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check_run.h"
#include "cluster/mirror.h"
#include "rng.h"

static struct mirror m;

static void setup(void)
{
    mirror_init(&m);
}

static void teardown(void)
{
    mirror_fini(&m);
}

static struct mirror_entry *add(const char *key)
{
    struct mirror_entry *e;
    ck_assert_int_eq(mirror_add(&m, key, strlen(key), &e), 0);
    return e;
}

/* The create revisions in order, head first, as "1 2 3". */
static const char *order(void)
{
    static char out[256];
    size_t n = 0;
    out[0] = '\0';
    for (struct mirror_entry *e = mirror_head(&m); e;
         e = e->link.next == &m.order ? NULL : list_entry(e->link.next, struct mirror_entry, link))
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%lld", n ? " " : "",
                              (long long)e->create_revision);
    return out;
}

START_TEST(add_finds_the_same_entry)
{
    struct mirror_entry *a = add("/q/a"), *b = add("/q/b");
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(add("/q/a"), a);
    ck_assert_ptr_eq(mirror_find(&m, "/q/b", 4), b);
    ck_assert_ptr_null(mirror_find(&m, "/q/c", 4));
    ck_assert_ptr_null(mirror_find(&m, "/q/a", 3)); /* a prefix is another key */
    ck_assert_str_eq(a->key, "/q/a");
    ck_assert_uint_eq(m.nentries, 2);
    ck_assert_uint_eq(m.queued, 0);
    ck_assert_ptr_null(mirror_head(&m));
}
END_TEST

START_TEST(order_is_by_create_revision)
{
    mirror_queue(&m, add("c"), 30, 0);
    mirror_queue(&m, add("a"), 10, 0);
    mirror_queue(&m, add("d"), 40, 0);
    mirror_queue(&m, add("b"), 20, 0);
    ck_assert_str_eq(order(), "10 20 30 40");
    ck_assert_uint_eq(m.queued, 4);
    ck_assert_str_eq(mirror_head(&m)->key, "a");
    mirror_queue(&m, mirror_find(&m, "a", 1), 50, 0); /* queued again: moved */
    ck_assert_str_eq(order(), "20 30 40 50");
    ck_assert_uint_eq(m.queued, 4);
}
END_TEST

/* Keys one join txn put share a create revision: their arrival sequence
 * orders them, whatever order they are seen in. */
START_TEST(one_revision_is_ordered_by_sequence)
{
    mirror_queue(&m, add("x"), 20, 7);
    mirror_queue(&m, add("w"), 20, 5);
    mirror_queue(&m, add("y"), 30, 1);
    mirror_queue(&m, add("v"), 10, 9);
    mirror_queue(&m, add("z"), 20, 6);
    const char *want[] = {"v", "w", "z", "x", "y"};
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(mirror_head(&m)->key, want[i]);
        mirror_remove(&m, mirror_head(&m));
    }
}
END_TEST

/* The read-only walk the cluster's view takes (glance.c): head, then
 * mirror_next, in create-revision order, past unqueued entries. */
START_TEST(next_walks_the_queue_in_order)
{
    mirror_queue(&m, add("c"), 30, 1);
    mirror_queue(&m, add("a"), 10, 1);
    mirror_queue(&m, add("b"), 20, 1);
    add("x"); /* not queued: not walked */
    char keys[8] = "";
    for (const struct mirror_entry *e = mirror_head(&m); e; e = mirror_next(&m, e))
        strcat(keys, e->key);
    ck_assert_str_eq(keys, "abc");
}
END_TEST

START_TEST(unqueued_stays_findable_until_removed)
{
    struct mirror_entry *a = add("a"), *b = add("b");
    mirror_queue(&m, a, 1, 0);
    mirror_queue(&m, b, 2, 0);
    mirror_unqueue(&m, a);
    ck_assert_int_eq(a->create_revision, 0);
    ck_assert_ptr_eq(mirror_head(&m), b);
    ck_assert_ptr_eq(mirror_find(&m, "a", 1), a);
    mirror_unqueue(&m, a); /* twice: nothing */
    ck_assert_uint_eq(m.queued, 1);
    mirror_remove(&m, b);
    ck_assert_ptr_null(mirror_head(&m));
    ck_assert_ptr_null(mirror_find(&m, "b", 1));
    ck_assert_uint_eq(m.nentries, 1);
}
END_TEST

/* Thousands of keys through several growths, queued in random order and
 * removed head first, as releases do. */
START_TEST(many_keys_grow_and_keep_order)
{
    enum { N = 5000 };
    static int revs[N];
    char key[32];
    uint64_t seed = 0x5eed;
    for (int i = 0; i < N; i++)
        revs[i] = i + 1;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(rng_next(&seed) % (uint64_t)(i + 1)), t = revs[i];
        revs[i] = revs[j];
        revs[j] = t;
    }
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "/t/queue/%08d", revs[i]);
        mirror_queue(&m, add(key), revs[i], 0);
    }
    ck_assert_uint_eq(m.nentries, N);
    ck_assert_uint_ge(m.nbuckets, N);
    for (int want = 1; want <= N; want++) {
        struct mirror_entry *e = mirror_head(&m);
        ck_assert_int_eq(e->create_revision, want);
        snprintf(key, sizeof(key), "/t/queue/%08d", want);
        ck_assert_ptr_eq(mirror_find(&m, key, strlen(key)), e);
        mirror_remove(&m, e);
    }
    ck_assert_uint_eq(m.nentries, 0);
    ck_assert_uint_eq(m.queued, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mirror");
    TCase *tc = tcase_create("mirror");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, add_finds_the_same_entry);
    tcase_add_test(tc, order_is_by_create_revision);
    tcase_add_test(tc, one_revision_is_ordered_by_sequence);
    tcase_add_test(tc, next_walks_the_queue_in_order);
    tcase_add_test(tc, unqueued_stays_findable_until_removed);
    tcase_add_test(tc, many_keys_grow_and_keep_order);
    suite_add_tcase(s, tc);
    return check_run(s);
}

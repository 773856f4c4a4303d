/* Unit tests for server/cluster/counter.c's value format, "N KEY REV ...":
 * the number is 1 to 19 digits followed by a space or the end, and the
 * pairs after it say who wrote it, the first pair being the txn's receipt
 * (what proof.c reads). */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "check_run.h"
#include "cluster/counter.h"

static int parse(const char *value, uint64_t *n)
{
    return counter_parse(value, strlen(value), n);
}

START_TEST(the_number_before_the_key)
{
    uint64_t n = 0;
    ck_assert_int_eq(parse("41 /turnstile/x/queue/a.0-1", &n), 0);
    ck_assert_uint_eq(n, 41);
    ck_assert_int_eq(parse("7", &n), 0); /* set by hand: written by no request */
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(parse("9999999999999999999", &n), 0);
    ck_assert_uint_eq(n, 9999999999999999999u);
    static const char *const bad[] = {
        "", " 1", "+1", "-1", "1x", "1\t2", "x 1", "12345678901234567890", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i], &n) == -EIO, "took '%s'", bad[i]);
}
END_TEST

/* Key names are reused (ticket.h): the receipt is the key and its create
 * revision, and a write by an earlier or later holder of the name is
 * another's. */
START_TEST(the_key_and_its_revision_are_the_receipt)
{
    char value[COUNTER_VALUE_MAX(1)];
    counter_format(value, sizeof(value), 42, &(struct counter_writer){"/q/a-1", 6, 907}, 1);
    ck_assert_str_eq(value, "42 /q/a-1 907");
    ck_assert(counter_written_by(value, strlen(value), "/q/a-1", 6, 907));
    ck_assert(!counter_written_by(value, strlen(value), "/q/a-1", 6, 90)); /* another incarnation */
    ck_assert(!counter_written_by(value, strlen(value), "/q/a-1", 6, 9070));
    ck_assert(!counter_written_by(value, strlen(value), "/q/a-", 5, 907)); /* a prefix is another */
    ck_assert(!counter_written_by(value, strlen(value), "/q/a-10", 7, 907));
    ck_assert(
        !counter_written_by("42 /q/a-1", 9, "/q/a-1", 6, 907)); /* an old receipt: no revision */
    ck_assert(!counter_written_by("42", 2, "", 0, 0));
}
END_TEST

/* A group's txn (commit.h): the leader's pair first, then the others in
 * the order of their Ns; the value is the last N, and only the leader's
 * pair is the receipt. */
START_TEST(a_groups_receipt_is_its_leaders)
{
    const struct counter_writer w[3] = {{"/q/a-1", 6, 907}, {"/q/a-2", 6, 908}, {"/q/a-10", 7, 9}};
    char value[COUNTER_VALUE_MAX(3)];
    uint64_t n = 0;
    counter_format(value, sizeof(value), 45, w, 3);
    ck_assert_str_eq(value, "45 /q/a-1 907 /q/a-2 908 /q/a-10 9");
    ck_assert_int_eq(parse(value, &n), 0);
    ck_assert_uint_eq(n, 45);
    ck_assert(counter_written_by(value, strlen(value), "/q/a-1", 6, 907));
    ck_assert(!counter_written_by(value, strlen(value), "/q/a-1", 6, 90));  /* not a prefix */
    ck_assert(!counter_written_by(value, strlen(value), "/q/a-2", 6, 908)); /* not the leader */
    char cut[12]; /* too small: the number, and no pair cut in half */
    counter_format(cut, sizeof(cut), 45, w, 3);
    ck_assert_str_eq(cut, "45");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster_counter");
    TCase *tc = tcase_create("cluster_counter");
    tcase_add_test(tc, the_number_before_the_key);
    tcase_add_test(tc, the_key_and_its_revision_are_the_receipt);
    tcase_add_test(tc, a_groups_receipt_is_its_leaders);
    suite_add_tcase(s, tc);
    return check_run(s);
}

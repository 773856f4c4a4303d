/* Unit tests for server/cluster/counter.c's value format, "N KEY": the
 * number is 1 to 19 digits followed by a space or the end, and the key
 * after the space says who wrote it (the receipt proof.c reads). */
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
    char value[COUNTER_VALUE_MAX];
    counter_format(value, sizeof(value), 42, "/q/a-1", 6, 907);
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

int main(void)
{
    Suite *s = suite_create("cluster_counter");
    TCase *tc = tcase_create("cluster_counter");
    tcase_add_test(tc, the_number_before_the_key);
    tcase_add_test(tc, the_key_and_its_revision_are_the_receipt);
    suite_add_tcase(s, tc);
    return check_run(s);
}

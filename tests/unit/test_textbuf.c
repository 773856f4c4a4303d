/* Unit tests for server/textbuf.c: appends, the exact boundary (the text
 * and its NUL must fit), and overflow that is remembered and never writes
 * past the buffer. */
#include <check.h>
#include <string.h>

#include "check_run.h"
#include "textbuf.h"

enum { GUARD = 16 };

static char mem[64 + GUARD];

/* A buffer of cap bytes followed by GUARD bytes nobody may touch. */
static char *fresh(size_t cap)
{
    ck_assert_uint_le(cap, 64);
    memset(mem, 0x5A, sizeof(mem));
    return mem + 64 - cap;
}

static void assert_guard(void)
{
    for (size_t i = 64; i < sizeof(mem); i++)
        ck_assert_msg(mem[i] == 0x5A, "byte %zu past the buffer was written", i - 64);
}

START_TEST(appends_concatenate)
{
    struct textbuf t;
    char *buf = fresh(32);
    textbuf_init(&t, buf, 32);
    textbuf_printf(&t, "{\"a\": %d", 1);
    textbuf_printf(&t, ", \"b\": %s}", "true");
    ck_assert_uint_eq(textbuf_len(&t), strlen("{\"a\": 1, \"b\": true}"));
    ck_assert_str_eq(buf, "{\"a\": 1, \"b\": true}");
    assert_guard();
}
END_TEST

START_TEST(empty_is_length_zero_without_overflow)
{
    struct textbuf t;
    textbuf_init(&t, fresh(8), 8);
    ck_assert_uint_eq(textbuf_len(&t), 0);
    ck_assert(!t.overflow);
    textbuf_printf(&t, "%s", "");
    ck_assert_uint_eq(textbuf_len(&t), 0);
    ck_assert(!t.overflow);
}
END_TEST

/* "hello" needs six bytes: five do not do. */
START_TEST(the_text_and_its_nul_must_fit)
{
    struct textbuf t;
    char *buf = fresh(6);
    textbuf_init(&t, buf, 6);
    textbuf_printf(&t, "hel");
    textbuf_printf(&t, "lo");
    ck_assert_uint_eq(textbuf_len(&t), 5);
    ck_assert_str_eq(buf, "hello");
    assert_guard();

    buf = fresh(5);
    textbuf_init(&t, buf, 5);
    textbuf_printf(&t, "hello");
    ck_assert(t.overflow);
    ck_assert_uint_eq(textbuf_len(&t), 0);
    assert_guard();
}
END_TEST

/* Once over, it stays over: later appends that would fit do not hide the
 * loss, and nothing is written past cap. */
START_TEST(overflow_is_remembered)
{
    struct textbuf t;
    textbuf_init(&t, fresh(8), 8);
    textbuf_printf(&t, "abc");
    textbuf_printf(&t, "%s", "far too long for eight bytes");
    ck_assert_uint_eq(textbuf_len(&t), 0);
    textbuf_printf(&t, "x");
    ck_assert_uint_eq(textbuf_len(&t), 0);
    assert_guard();
}
END_TEST

START_TEST(zero_capacity_overflows_at_once)
{
    struct textbuf t;
    textbuf_init(&t, fresh(0), 0);
    textbuf_printf(&t, "x");
    ck_assert_uint_eq(textbuf_len(&t), 0);
    assert_guard();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("textbuf");
    TCase *tc = tcase_create("textbuf");
    tcase_add_test(tc, appends_concatenate);
    tcase_add_test(tc, empty_is_length_zero_without_overflow);
    tcase_add_test(tc, the_text_and_its_nul_must_fit);
    tcase_add_test(tc, overflow_is_remembered);
    tcase_add_test(tc, zero_capacity_overflows_at_once);
    suite_add_tcase(s, tc);
    return check_run(s);
}

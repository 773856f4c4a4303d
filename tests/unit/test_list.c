/* Unit tests for lib/list.h: the intrusive list under every queue of the
 * runtime. Each test checks the whole ring both ways (next and prev), so a
 * link that one operation forgets to update shows up at once. */
#include <check.h>
#include <stddef.h>

#include "check_run.h"
#include "list.h"

struct item {
    int id;
    struct list_node node;
};

static struct list_node head;
static struct item items[6];

static int id_of(const struct list_node *node)
{
    return list_entry(node, struct item, node)->id;
}

static void setup(void)
{
    list_init(&head);
    for (int i = 0; i < 6; i++)
        items[i] = (struct item){.id = i}; /* node zeroed: in no list */
}

/* The list must hold exactly the ids of want, in order, walking forward
 * with list_for_each and backward through prev. */
static void assert_ids(const int *want, int n)
{
    int i = 0;
    list_for_each(node, &head)
    {
        ck_assert_int_lt(i, n);
        ck_assert_int_eq(id_of(node), want[i]);
        ck_assert_ptr_eq(node->next->prev, node);
        i++;
    }
    ck_assert_int_eq(i, n);
    for (struct list_node *node = head.prev; node != &head; node = node->prev)
        ck_assert_int_eq(id_of(node), want[--i]);
    ck_assert_int_eq(i, 0);
    ck_assert(list_empty(&head) == (n == 0));
    if (n == 0) {
        ck_assert_ptr_null(list_first(&head));
        ck_assert_ptr_null(list_last(&head));
    } else {
        ck_assert_int_eq(id_of(list_first(&head)), want[0]);
        ck_assert_int_eq(id_of(list_last(&head)), want[n - 1]);
    }
}

START_TEST(empty_list)
{
    ck_assert(list_empty(&head));
    ck_assert_ptr_eq(head.next, &head);
    ck_assert_ptr_eq(head.prev, &head);
    assert_ids(NULL, 0);
    ck_assert(!list_linked(&items[0].node));
}
END_TEST

START_TEST(push_back_and_front)
{
    list_push_back(&head, &items[1].node);
    list_push_back(&head, &items[2].node);
    list_push_front(&head, &items[0].node);
    list_push_back(&head, &items[3].node);
    int want[] = {0, 1, 2, 3};
    assert_ids(want, 4);
    for (int i = 0; i < 4; i++)
        ck_assert(list_linked(&items[i].node));
    ck_assert(!list_linked(&items[4].node));
}
END_TEST

START_TEST(insert_before)
{
    list_push_back(&head, &items[0].node);
    list_push_back(&head, &items[2].node);
    list_insert_before(&items[2].node, &items[1].node); /* in the middle */
    list_insert_before(&items[0].node, &items[3].node); /* before the first */
    list_insert_before(&head, &items[4].node);          /* before the sentinel: the tail */
    int want[] = {3, 0, 1, 2, 4};
    assert_ids(want, 5);
}
END_TEST

START_TEST(remove_anywhere)
{
    for (int i = 0; i < 5; i++)
        list_push_back(&head, &items[i].node);
    list_remove(&items[2].node); /* middle */
    ck_assert(!list_linked(&items[2].node));
    ck_assert_ptr_null(items[2].node.prev);
    int want1[] = {0, 1, 3, 4};
    assert_ids(want1, 4);
    list_remove(&items[0].node); /* head */
    list_remove(&items[4].node); /* tail */
    int want2[] = {1, 3};
    assert_ids(want2, 2);
    list_remove(&items[1].node);
    list_remove(&items[3].node);
    assert_ids(NULL, 0);
    for (int i = 0; i < 5; i++)
        ck_assert(!list_linked(&items[i].node));
    /* A removed node can be linked again. */
    list_push_front(&head, &items[2].node);
    int want3[] = {2};
    assert_ids(want3, 1);
}
END_TEST

/* list_for_each_safe: the body may remove the node it is on. */
START_TEST(remove_while_iterating_safely)
{
    for (int i = 0; i < 6; i++)
        list_push_back(&head, &items[i].node);
    list_for_each_safe(n, next, &head)
    {
        if (id_of(n) % 2)
            list_remove(n);
    }
    int want[] = {0, 2, 4};
    assert_ids(want, 3);
}
END_TEST

START_TEST(entry_of_a_member)
{
    ck_assert_ptr_eq(list_entry(&items[3].node, struct item, node), &items[3]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("list");
    TCase *tc = tcase_create("list");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, empty_list);
    tcase_add_test(tc, push_back_and_front);
    tcase_add_test(tc, insert_before);
    tcase_add_test(tc, remove_anywhere);
    tcase_add_test(tc, remove_while_iterating_safely);
    tcase_add_test(tc, entry_of_a_member);
    suite_add_tcase(s, tc);
    return check_run(s);
}

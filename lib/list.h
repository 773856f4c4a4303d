/* list: an intrusive, circular doubly linked list, after h2o's linklist.h.
 *
 * The node lives inside the element (often on a coroutine's stack), so
 * linking never allocates and unlinking is O(1). A list is a sentinel node
 * pointing at itself when empty; a node that is in no list has next == NULL,
 * so "am I linked?" is one load. Every queue in the runtime and the server
 * (run queues, lock waiters, disk waiters, open connections) is one of these. */
#ifndef TURNSTILE_LIST_H
#define TURNSTILE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
    struct list_node *prev, *next;
};

/* The element that contains node as its member `field`. */
#define list_entry(node, type, field) ((type *)((char *)(node)-offsetof(type, field)))

static inline void list_init(struct list_node *head)
{
    head->prev = head->next = head;
}

static inline bool list_empty(const struct list_node *head)
{
    return head->next == head;
}

/* True while node is in a list (false after list_remove). */
static inline bool list_linked(const struct list_node *node)
{
    return node->next != NULL;
}

/* Links node just before pos (before the sentinel: at the tail). */
static inline void list_insert_before(struct list_node *pos, struct list_node *node)
{
    node->prev = pos->prev;
    node->next = pos;
    pos->prev->next = node;
    pos->prev = node;
}

static inline void list_push_back(struct list_node *head, struct list_node *node)
{
    list_insert_before(head, node);
}

static inline void list_push_front(struct list_node *head, struct list_node *node)
{
    list_insert_before(head->next, node);
}

static inline void list_remove(struct list_node *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = NULL;
}

/* The first or last node, or NULL when the list is empty. */
static inline struct list_node *list_first(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

static inline struct list_node *list_last(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->prev;
}

/* Iterates over the nodes; `node` may not be removed inside the loop body
 * (list_for_each_safe may). */
#define list_for_each(node, head)                                                                  \
    for (struct list_node *node = (head)->next; node != (head); node = node->next)

/* Iterates over the nodes with the next one saved first, so the body may
 * remove `node` (but no other node). */
#define list_for_each_safe(node, next, head)                                                       \
    for (struct list_node *node = (head)->next, *next = node->next; node != (head);                \
         node = next, next = node->next)

#endif

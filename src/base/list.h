/* netframe — intrusive doubly linked lists (container-of style), the one copy.
 * An empty list is a head pointing at itself; a node that is on no list has
 * next == NULL (so "is it queued?" is one load). */
#ifndef NF_BASE_LIST_H
#define NF_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct nf__list {
    struct nf__list *next, *prev;
} nf__list_t;

#define nf__container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void nf__list_init(nf__list_t *head) { head->next = head->prev = head; }
static inline bool nf__list_empty(const nf__list_t *head) { return head->next == head; }
static inline bool nf__list_linked(const nf__list_t *node) { return node->next != NULL; }

static inline void nf__list_push_back(nf__list_t *head, nf__list_t *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void nf__list_remove(nf__list_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = NULL;
}

static inline nf__list_t *nf__list_pop_front(nf__list_t *head)
{
    nf__list_t *n = head->next;
    if (n == head)
        return NULL;
    nf__list_remove(n);
    return n;
}

#endif

/* netframe — timers on a binary min-heap (see timer.h for why a heap).
 *
 * The heap holds pointers to the caller's nf_timer_t; each timer records its
 * index so it can be removed from the middle in O(log n). Order: due time,
 * then arming sequence, so equal deadlines fire in the order armed. */
#include <stdlib.h>

#include "core/internal.h"

#define NOT_ARMED UINT32_MAX

static inline bool before(const nf_timer_t *a, const nf_timer_t *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static inline void place(nf_timer_t **h, uint32_t i, nf_timer_t *t)
{
    h[i] = t;
    t->heap_index = i;
}

static void sift_up(nf_timer_t **h, uint32_t i)
{
    nf_timer_t *t = h[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(t, h[p]))
            break;
        place(h, i, h[p]);
        i = p;
    }
    place(h, i, t);
}

static void sift_down(nf_timer_t **h, uint32_t n, uint32_t i)
{
    nf_timer_t *t = h[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(h[c + 1], h[c]))
            c++;
        if (!before(h[c], t))
            break;
        place(h, i, h[c]);
        i = c;
    }
    place(h, i, t);
}

static void heap_remove(nf_loop_t *loop, nf_timer_t *t)
{
    uint32_t i = t->heap_index;
    nf_timer_t *last = loop->heap[--loop->heap_len];
    t->heap_index = NOT_ARMED;
    if (last == t)
        return;
    place(loop->heap, i, last);
    if (i > 0 && before(last, loop->heap[(i - 1) / 2]))
        sift_up(loop->heap, i);
    else
        sift_down(loop->heap, loop->heap_len, i);
}

NF__EXPORT void nf_timer_init(nf_loop_t *loop, nf_timer_t *t)
{
    t->loop = loop;
    t->cb = NULL;
    t->due = 0;
    t->repeat = 0;
    t->seq = 0;
    t->heap_index = NOT_ARMED;
}

NF__EXPORT int nf_timer_start(nf_timer_t *t, nf_timer_cb cb, uint64_t timeout_ms, uint64_t repeat_ms)
{
    nf_loop_t *loop = t->loop;
    if (!loop->running)
        nf_loop_update_time(loop); /* armed from outside the loop: `now` may be old */
    if (t->heap_index != NOT_ARMED)
        heap_remove(loop, t);
    else if (loop->heap_len == loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        nf_timer_t **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->cb = cb;
    t->due = loop->now + timeout_ms;
    t->repeat = repeat_ms;
    t->seq = loop->timer_seq++;
    place(loop->heap, loop->heap_len++, t);
    sift_up(loop->heap, t->heap_index);
    loop->stats.timers_active = loop->heap_len;
    nf__kick(loop); /* event mode, armed from outside: the timerfd must learn of it */
    return 0;
}

NF__EXPORT void nf_timer_stop(nf_timer_t *t)
{
    if (t->heap_index == NOT_ARMED)
        return;
    heap_remove(t->loop, t);
    t->loop->stats.timers_active = t->loop->heap_len;
}

NF__EXPORT int nf_timer_active(const nf_timer_t *t) { return t->heap_index != NOT_ARMED; }

int nf__timers_next(nf_loop_t *loop)
{
    if (loop->heap_len == 0)
        return -1;
    uint64_t due = loop->heap[0]->due;
    if (due <= loop->now)
        return 0;
    uint64_t d = due - loop->now;
    return d > INT32_MAX ? INT32_MAX : (int)d;
}

int nf__timers_run(nf_loop_t *loop)
{
    /* A timer re-armed from its callback for 0 ms gets a later seq but the same
     * due time; bound the pass so it cannot spin forever within one call. */
    uint64_t limit = loop->timer_seq;
    while (loop->heap_len > 0) {
        nf_timer_t *t = loop->heap[0];
        if (t->due > loop->now || t->seq >= limit)
            break;
        heap_remove(loop, t);
        if (t->repeat) {
            t->due = loop->now + t->repeat;
            t->seq = loop->timer_seq++;
            place(loop->heap, loop->heap_len++, t);
            sift_up(loop->heap, t->heap_index);
        }
        loop->stats.timers_active = loop->heap_len;
        t->cb(t);
    }
    loop->stats.timers_active = loop->heap_len;
    return nf__timers_next(loop);
}

/* netframe — timers.
 *
 * Timers live in a binary min-heap keyed by due time (ties broken by the order
 * they were armed), stored in one array owned by the loop; each timer keeps its
 * heap index, so start, stop and restart are O(log n) and finding the next
 * deadline is O(1). With 100,000 live timers an operation touches at most 17
 * levels of one contiguous array. A hashed wheel would make start/stop O(1)
 * but rounds deadlines to its tick and must step through empty slots; the heap
 * keeps exact millisecond order, which read and idle timeouts rely on. */
#ifndef NETFRAME_TIMER_H
#define NETFRAME_TIMER_H

#include <stdint.h>
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_timer nf_timer_t;
typedef void (*nf_timer_cb)(nf_timer_t *t);

/* The caller owns the memory of a timer (embed it in your struct). The fields
 * are private, except `data`. */
struct nf_timer {
    void *data;
    nf_loop_t *loop;
    nf_timer_cb cb;
    uint64_t due;        /* ms, loop clock */
    uint64_t repeat;     /* ms, 0 = one-shot */
    uint64_t seq;        /* arming order, for ties */
    uint32_t heap_index; /* UINT32_MAX when not armed */
};

/* Prepares a timer for loop. Never fails. */
void nf_timer_init(nf_loop_t *loop, nf_timer_t *t);

/* Arms (or re-arms) t to call cb after timeout_ms, then every repeat_ms if
 * repeat_ms > 0. Returns 0 or -ENOMEM. An armed timer keeps the loop alive. */
int nf_timer_start(nf_timer_t *t, nf_timer_cb cb, uint64_t timeout_ms, uint64_t repeat_ms);

/* Disarms t; no callback fires after this returns. Safe on a disarmed timer
 * and from inside its own callback. */
void nf_timer_stop(nf_timer_t *t);

/* Non-zero while armed. */
int nf_timer_active(const nf_timer_t *t);

#ifdef __cplusplus
}
#endif
#endif

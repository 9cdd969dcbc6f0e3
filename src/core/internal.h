/* netframe — the core's internal header: the loop, handles, posts, timers,
 * buffer pools and the upper layers' per-loop records. It knows no
 * connection, socket or filter (those are the net layer's,
 * src/net/transport.h). The backend contract (the engine's ops table, the
 * I/O base objects embed and the up-calls a backend reports through) is in
 * core/backend.h. Nothing here is public API. */
#ifndef NF_CORE_INTERNAL_H
#define NF_CORE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/export.h"
#include "base/list.h"
#include "netframe/buf.h"
#include "netframe/error.h"
#include "netframe/loop.h"
#include "netframe/timer.h"

/* The backend contract (the engine's ops table, the I/O base and its
 * up-calls) is in core/backend.h; the loop only holds the table. */
typedef struct nf__backend_ops nf__backend_ops_t;

/* ---- posts --------------------------------------------------------------- */

typedef struct nf__post {
    struct nf__post *next;
    nf_post_fn fn;
    void *arg;
} nf__post_t;

/* ---- handles --------------------------------------------------------------
 *
 * The loop knows no connection, listener or socket: an upper layer embeds a
 * handle in its object and gives it ops. The loop keeps two queues of
 * handles and, once per iteration, walks them in order:
 *   flush         hand the object's queued output to the kernel (the object
 *                 was put on loop->flush with nf__handle_flush_later)
 *   finish_close  the backend has released the object (put on loop->closing
 *                 with nf__handle_close_later): close its fd, deliver its
 *                 close callback, free it
 * A handle is on at most one of the two queues at a time (the node is
 * shared). */
typedef struct nf__handle nf__handle_t;
typedef struct nf__handle_ops {
    size_t size; /* sizeof(nf__handle_ops_t), for versioning */
    void (*flush)(nf__handle_t *h);
    void (*finish_close)(nf__handle_t *h);
} nf__handle_ops_t;
struct nf__handle {
    nf__list_t qnode; /* loop->flush or loop->closing */
    const nf__handle_ops_t *ops;
};

/* ---- per-loop state of the layers above ---------------------------------
 *
 * The loop keeps no field for any upper layer: a layer that needs state per
 * loop (its lists, its counters, a resolver) asks for a record with
 * nf__loop_ext, keyed by its ops table, and the loop hands the same record
 * back on every later call. The loop frees the records in nf_loop_free
 * (before the backend goes: a record may still hold watches), and
 * nf_loop_stats lets each record add its counters to the public struct:
 * each layer owns its counters, the loop's struct only gathers them.
 * Look-up walks a short list: a layer on a hot path keeps the pointer. */
typedef struct nf__loop_ext nf__loop_ext_t;
typedef struct nf__loop_ext_ops {
    const char *name;
    /* adds the record's counters to *out (may be NULL) */
    void (*stats)(const nf__loop_ext_t *x, nf_loop_stats_t *out);
    /* releases what the record holds, not the record (may be NULL) */
    void (*free)(nf__loop_ext_t *x, nf_loop_t *loop);
} nf__loop_ext_ops_t;
struct nf__loop_ext {
    nf__loop_ext_t *next;
    const nf__loop_ext_ops_t *ops;
};
/* The loop's record for `ops`, made on first use with `size` bytes (at least
 * sizeof(nf__loop_ext_t), the rest zeroed); NULL if memory ran out. */
nf__loop_ext_t *nf__loop_ext(nf_loop_t *loop, const nf__loop_ext_ops_t *ops, size_t size);
/* The loop's record for `ops`, or NULL if none was made. */
nf__loop_ext_t *nf__loop_ext_find(const nf_loop_t *loop, const nf__loop_ext_ops_t *ops);

/* ---- the loop ------------------------------------------------------------ */

struct nf_loop {
    const nf__backend_ops_t *ops;
    void *be; /* backend state */
    void *data;
    nf_loop_config_t cfg;
    uint64_t now;
    bool stop;
    bool freeing;
    bool running;     /* inside nf_loop_run: `now` is fresh */
    unsigned handles; /* open listeners + connections, pending closes */

    /* timers: binary min-heap of pointers */
    nf_timer_t **heap;
    uint32_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* cross-thread posts */
    pthread_mutex_t post_mu;
    nf__post_t *post_head, *post_tail;
    atomic_uint posts_pending;
    int wake_fd; /* eventfd, watched by the backend */

    /* handles (any layer's): output to flush, releases to finish */
    nf__list_t flush;   /* nf__handle_t with writes to hand to the kernel */
    nf__list_t closing; /* nf__handle_t released by the backend, to finish */

    /* pool of 16 KiB chunks for copied writes (any layer's) */
    nf_buf_t *chunk_pool[64];
    unsigned chunk_pool_len;

    nf_loop_stats_t stats;
    nf__loop_ext_t *ext; /* the upper layers' per-loop records (nf__loop_ext) */
    char features[320];

    /* completion modes (issue 4) */
    atomic_int stop_async; /* nf_loop_stop_async: any thread, signal-safe */
    int timer_fd;          /* NF_MODE_EVENT: timerfd at the next deadline, else -1 */
    uint64_t timer_fd_due; /* what timer_fd is armed for (0: disarmed) */
    bool kicked;           /* NF_MODE_EVENT: the wake fd was written by nf__kick */
    int kick_fd;           /* NF_MODE_EVENT: eventfd that makes nf_loop_fd readable */
};

/* The loop's record for `ops`, known to exist (made earlier with
 * nf__loop_ext): for a layer's hot path, a walk of a list of one or two
 * records without a call. */
static inline nf__loop_ext_t *nf__loop_ext_get(const nf_loop_t *loop, const nf__loop_ext_ops_t *ops)
{
    nf__loop_ext_t *x = loop->ext;
    while (x->ops != ops)
        x = x->next;
    return x;
}

/* Queues h for its flush op at the next flush point of the loop. */
static inline void nf__handle_flush_later(nf_loop_t *loop, nf__handle_t *h)
{
    nf__list_push_back(&loop->flush, &h->qnode);
}
/* Queues h (released by the backend) for its finish_close op. */
static inline void nf__handle_close_later(nf_loop_t *loop, nf__handle_t *h)
{
    nf__list_push_back(&loop->closing, &h->qnode);
}
/* Runs the flush op of every handle queued (and of those queued meanwhile). */
void nf__handles_flush(nf_loop_t *loop);

/* NF_MODE_EVENT: a call made outside nf_loop_run left work for the next step
 * (a timer armed, a request prepared, a close to finish): make the loop's fd
 * readable, once per step. Cheap and silent in the other modes. */
void nf__event_kick(nf_loop_t *loop);
static inline void nf__kick(nf_loop_t *loop)
{
    if (NF__UNLIKELY(!loop->running) && loop->cfg.mode == NF_MODE_EVENT)
        nf__event_kick(loop);
}

/* Runs expired timers; returns ms until the next deadline, or -1 for none. */
int nf__timers_run(nf_loop_t *loop);
int nf__timers_next(nf_loop_t *loop);

/* Drains the post queue (after a wake-up). */
void nf__posts_run(nf_loop_t *loop);
/* Reads the wake eventfd counter (for backends that see it readable). */
void nf__wake_drain(nf_loop_t *loop);
/* NF_MODE_EVENT: consumes the timerfd's expiry (backends that see it readable). */
void nf__timer_fd_drain(nf_loop_t *loop);

/* Read buffers: nf_buf_t allocated with the loop's accounting. */
nf_buf_t *nf__rbuf_new(nf_loop_t *loop, size_t cap);
void nf__rbuf_mark_kept(nf_loop_t *loop, nf_buf_t *b);

/* Copy-write chunks. */
#define NF__CHUNK_SIZE 16384
nf_buf_t *nf__chunk_get(nf_loop_t *loop, size_t need);
void nf__chunk_put(nf_loop_t *loop, nf_buf_t *b);

#endif

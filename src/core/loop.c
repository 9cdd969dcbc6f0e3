/* netframe — the loop: backend choice, iterations, posts, stats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/backend.h"

/* Adds 1 to an eventfd's counter, making it readable. Async-signal-safe;
 * EAGAIN (counter saturated) means it is readable already. */
static void efd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof(one));
    (void)r;
}

NF__EXPORT void nf_loop_config_init(nf_loop_config_t *cfg) { memset(cfg, 0, sizeof(*cfg)); }

static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* NF_MODE=block|poll|event: the mode of loops whose config leaves it at the
 * default (NF_MODE_BLOCK), as NF_BACKEND does for the backend. */
static int mode_from_env(void)
{
    const char *e = getenv("NF_MODE");
    if (e && strcmp(e, "poll") == 0)
        return NF_MODE_POLL;
    if (e && strcmp(e, "event") == 0)
        return NF_MODE_EVENT;
    return NF_MODE_BLOCK;
}

/* The loop up to its engine: nf_loop_new (src/backend/select.c) picks the
 * engine, so the core names none. */
int nf__loop_alloc(nf_loop_t **out, const nf_loop_config_t *cfg)
{
    nf_loop_t *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    if (cfg)
        loop->cfg = *cfg;
    nf_loop_config_t *c = &loop->cfg;
    if (!c->queue_entries)
        c->queue_entries = 1024;
    if (!c->buf_count)
        c->buf_count = 256;
    if (c->buf_count & (c->buf_count - 1)) { /* round up to a power of two */
        unsigned p = 1;
        while (p < c->buf_count)
            p <<= 1;
        c->buf_count = p;
    }
    if (c->buf_count > 32768)
        c->buf_count = 32768;
    if (!c->buf_size)
        c->buf_size = 16384;
    if (!c->max_events)
        c->max_events = 256;
    if (c->mode == NF_MODE_BLOCK) /* the default: NF_MODE may choose (tests run every mode) */
        c->mode = mode_from_env();
    if (c->mode != NF_MODE_POLL && c->mode != NF_MODE_EVENT)
        c->mode = NF_MODE_BLOCK;
    if (!c->sqpoll_idle_ms)
        c->sqpoll_idle_ms = 1000;
    if (!c->uring_disable && getenv("NF_URING_DISABLE")) /* measurements: bench/modes.sh */
        c->uring_disable = (unsigned)strtoul(getenv("NF_URING_DISABLE"), NULL, 0);
    if (!c->zc_send_min && getenv("NF_ZC_SEND_MIN"))
        c->zc_send_min = (unsigned)strtoul(getenv("NF_ZC_SEND_MIN"), NULL, 0);
    if (!c->fixed_files && getenv("NF_FIXED_FILES"))
        c->fixed_files = (unsigned)strtoul(getenv("NF_FIXED_FILES"), NULL, 0);
    loop->timer_fd = -1;
    loop->kick_fd = -1;

    nf__list_init(&loop->flush);
    nf__list_init(&loop->closing);
    pthread_mutex_init(&loop->post_mu, NULL);
    atomic_init(&loop->posts_pending, 0);
    loop->now = clock_ms();
    loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_fd < 0) {
        int err = -errno;
        pthread_mutex_destroy(&loop->post_mu);
        free(loop);
        return err;
    }
    if (c->mode == NF_MODE_EVENT) { /* due timers make the loop's fd readable */
        loop->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (loop->timer_fd < 0) {
            int err = -errno;
            close(loop->wake_fd);
            pthread_mutex_destroy(&loop->post_mu);
            free(loop);
            return err;
        }
    }

    *out = loop;
    return 0;
}

/* A loop whose engine did not start (nothing else was made with it). */
void nf__loop_discard(nf_loop_t *loop)
{
    if (loop->timer_fd >= 0)
        close(loop->timer_fd);
    close(loop->wake_fd);
    pthread_mutex_destroy(&loop->post_mu);
    free(loop);
}

NF__EXPORT int nf_loop_free(nf_loop_t *loop)
{
    if (!loop)
        return 0;
    /* Anything still pointing at the loop makes freeing it unsafe: open
     * handles, armed timers, posts not yet run, read buffers the program
     * kept (they count themselves in the loop's stats when dropped). */
    if (nf_loop_alive(loop) > 0 || loop->stats.bufs_kept > 0)
        return -EBUSY;
    pthread_mutex_lock(&loop->post_mu);
    loop->freeing = true;
    nf__post_t *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_mu);
    while (p) { /* posts that never ran are dropped: their loop is gone */
        nf__post_t *n = p->next;
        free(p);
        p = n;
    }
    while (loop->ext) { /* the upper layers' records, newest first: before the backend (watches) */
        nf__loop_ext_t *x = loop->ext;
        loop->ext = x->next;
        if (x->ops->free)
            x->ops->free(x, loop);
        free(x);
    }
    loop->ops->destroy(loop);
    while (loop->chunk_pool_len > 0)
        nf_buf_unref(loop->chunk_pool[--loop->chunk_pool_len]);
    free(loop->heap);
    if (loop->timer_fd >= 0)
        close(loop->timer_fd);
    close(loop->wake_fd);
    pthread_mutex_destroy(&loop->post_mu);
    free(loop);
    return 0;
}

NF__EXPORT unsigned nf_loop_alive(const nf_loop_t *loop)
{
    return loop->handles + loop->heap_len + atomic_load_explicit(&loop->posts_pending, memory_order_acquire);
}

NF__EXPORT void nf_loop_stop(nf_loop_t *loop) { loop->stop = true; }

NF__EXPORT void nf_loop_stop_async(nf_loop_t *loop)
{
    atomic_store_explicit(&loop->stop_async, 1, memory_order_release);
    efd_signal(loop->wake_fd);
}

NF__EXPORT int nf_loop_fd(const nf_loop_t *loop)
{
    if (loop->cfg.mode != NF_MODE_EVENT || !loop->ops->event_fd)
        return -EINVAL;
    return loop->ops->event_fd(loop);
}

NF__EXPORT int nf_loop_next_timeout(const nf_loop_t *loop)
{
    if (loop->heap_len == 0)
        return -1;
    uint64_t due = loop->heap[0]->due, now = clock_ms();
    if (due <= now)
        return 0;
    return due - now > INT32_MAX ? INT32_MAX : (int)(due - now);
}

NF__EXPORT int nf_loop_mode(const nf_loop_t *loop) { return loop->cfg.mode; }

NF__EXPORT uint64_t nf_loop_now(const nf_loop_t *loop) { return loop->now; }

NF__EXPORT void nf_loop_update_time(nf_loop_t *loop) { loop->now = clock_ms(); }

NF__EXPORT const char *nf_loop_backend_name(const nf_loop_t *loop) { return loop->ops->name; }

NF__EXPORT const char *nf_loop_features(const nf_loop_t *loop) { return loop->features; }

NF__EXPORT void *nf_loop_get_data(const nf_loop_t *loop) { return loop->data; }

NF__EXPORT void nf_loop_set_data(nf_loop_t *loop, void *data) { loop->data = data; }

NF__EXPORT void nf_loop_stats(const nf_loop_t *loop, nf_loop_stats_t *out)
{
    *out = loop->stats;
    for (const nf__loop_ext_t *x = loop->ext; x; x = x->next)
        if (x->ops->stats)
            x->ops->stats(x, out);
}

nf__loop_ext_t *nf__loop_ext_find(const nf_loop_t *loop, const nf__loop_ext_ops_t *ops)
{
    for (nf__loop_ext_t *x = loop->ext; x; x = x->next)
        if (x->ops == ops)
            return x;
    return NULL;
}

nf__loop_ext_t *nf__loop_ext(nf_loop_t *loop, const nf__loop_ext_ops_t *ops, size_t size)
{
    nf__loop_ext_t *x = nf__loop_ext_find(loop, ops);
    if (x)
        return x;
    if (size < sizeof(*x))
        size = sizeof(*x);
    x = calloc(1, size);
    if (!x)
        return NULL;
    x->ops = ops;
    x->next = loop->ext;
    loop->ext = x;
    return x;
}

/* ---- posts ---------------------------------------------------------------- */

NF__EXPORT int nf_loop_post(nf_loop_t *loop, nf_post_fn fn, void *arg)
{
    nf__post_t *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->post_mu);
    if (loop->freeing) {
        pthread_mutex_unlock(&loop->post_mu);
        free(p);
        return NF_ECLOSED;
    }
    bool was_empty = loop->post_head == NULL;
    if (loop->post_tail)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    atomic_fetch_add_explicit(&loop->posts_pending, 1, memory_order_release);
    /* Wake only on the empty -> non-empty edge: the loop drains the whole
     * queue on each wake-up, so one write per batch is enough. */
    if (was_empty) {
        efd_signal(loop->wake_fd);
    }
    pthread_mutex_unlock(&loop->post_mu);
    return 0;
}

void nf__wake_drain(nf_loop_t *loop)
{
    uint64_t v;
    ssize_t r = read(loop->wake_fd, &v, sizeof(v));
    (void)r;
}

void nf__posts_run(nf_loop_t *loop)
{
    if (atomic_load_explicit(&loop->posts_pending, memory_order_acquire) == 0)
        return;
    pthread_mutex_lock(&loop->post_mu);
    nf__post_t *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_mu);
    while (p) {
        nf__post_t *n = p->next;
        p->fn(loop, p->arg);
        free(p);
        atomic_fetch_sub_explicit(&loop->posts_pending, 1, memory_order_release);
        p = n;
    }
}

static int run(nf_loop_t *loop, nf_run_mode_t mode);

/* ---- handles -------------------------------------------------------------- */

void nf__handles_flush(nf_loop_t *loop)
{
    nf__list_t *n;
    while ((n = nf__list_pop_front(&loop->flush)) != NULL) {
        nf__handle_t *h = nf__container_of(n, nf__handle_t, qnode);
        h->ops->flush(h);
    }
}

static void handles_close(nf_loop_t *loop)
{
    nf__list_t *n;
    while ((n = nf__list_pop_front(&loop->closing)) != NULL) {
        nf__handle_t *h = nf__container_of(n, nf__handle_t, qnode);
        h->ops->finish_close(h);
    }
}

static bool handles_queued(const nf_loop_t *loop)
{
    return !nf__list_empty(&loop->flush) || !nf__list_empty(&loop->closing);
}

/* ---- iterations ----------------------------------------------------------- */

static int iterate(nf_loop_t *loop, nf_run_mode_t mode)
{
    loop->stats.iterations++;
    nf_loop_update_time(loop);
    int next = nf__timers_run(loop);
    nf__posts_run(loop);
    nf__handles_flush(loop);
    handles_close(loop);

    int timeout;
    if (mode == NF_RUN_NOWAIT || loop->cfg.mode == NF_MODE_POLL || loop->stop ||
        atomic_load_explicit(&loop->stop_async, memory_order_relaxed) || handles_queued(loop))
        timeout = 0;
    else if (nf_loop_alive(loop) == 0)
        timeout = 0;
    else {
        next = nf__timers_next(loop);
        timeout = next;
    }
    int r = loop->ops->wait(loop, timeout);
    if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY)
        return r;

    nf_loop_update_time(loop);
    nf__timers_run(loop);
    nf__posts_run(loop);
    handles_close(loop);
    return 0;
}

NF__EXPORT int nf_loop_run(nf_loop_t *loop, nf_run_mode_t mode)
{
    loop->stop = false;
    loop->running = true;
    loop->kicked = false;
    int r = run(loop, mode);
    loop->running = false;
    return r;
}

/* NF_MODE_EVENT: after a step, make the loop's fd tell the truth. Work the
 * step left behind (completions past the per-step bound, closes, writes,
 * posts) makes it readable at once through the wake eventfd; the timerfd is
 * armed for the next deadline. */
static void event_rearm(nf_loop_t *loop)
{
    bool again = handles_queued(loop) || atomic_load_explicit(&loop->posts_pending, memory_order_acquire) > 0 ||
                 (loop->ops->pending && loop->ops->pending(loop));
    if (again) {
        efd_signal(loop->kick_fd);
    }
    uint64_t due = loop->heap_len ? loop->heap[0]->due : 0;
    if (due == 0 && loop->timer_fd_due == 0)
        return;
    if (due == loop->timer_fd_due)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (due) { /* absolute, on the loop's clock (CLOCK_MONOTONIC in ms) */
        its.it_value.tv_sec = (time_t)(due / 1000u);
        its.it_value.tv_nsec = (long)(due % 1000u) * 1000000L;
    }
    timerfd_settime(loop->timer_fd, due ? TFD_TIMER_ABSTIME : 0, &its, NULL);
    loop->timer_fd_due = due;
}

void nf__event_kick(nf_loop_t *loop)
{
    if (loop->kicked)
        return;
    loop->kicked = true;
    efd_signal(loop->kick_fd >= 0 ? loop->kick_fd : loop->wake_fd);
}

/* The backend saw the timerfd readable: consume the expiry. */
void nf__timer_fd_drain(nf_loop_t *loop)
{
    uint64_t v;
    ssize_t r = read(loop->timer_fd, &v, sizeof(v));
    (void)r;
    loop->timer_fd_due = 0; /* expired: re-armed by the end of the step */
}

static void step_end(nf_loop_t *loop)
{
    nf__handles_flush(loop); /* hand writes made by the callbacks to the kernel */
    if (loop->ops->submit)
        loop->ops->submit(loop);
    if (loop->cfg.mode == NF_MODE_EVENT)
        event_rearm(loop);
}

static int run(nf_loop_t *loop, nf_run_mode_t mode)
{
    if (mode != NF_RUN_DEFAULT) {
        int r = iterate(loop, mode);
        atomic_store_explicit(&loop->stop_async, 0, memory_order_relaxed);
        step_end(loop);
        return r < 0 ? r : (int)nf_loop_alive(loop);
    }
    while (!loop->stop && nf_loop_alive(loop) > 0) {
        int r = iterate(loop, mode);
        if (r < 0)
            return r;
        if (atomic_load_explicit(&loop->stop_async, memory_order_relaxed)) {
            atomic_store_explicit(&loop->stop_async, 0, memory_order_relaxed);
            break;
        }
    }
    step_end(loop);
    return (int)nf_loop_alive(loop);
}

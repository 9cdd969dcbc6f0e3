/* netframe — a server on N loops, one per thread (see server.h).
 *
 * Threads: each worker creates its loop (and, with REUSEPORT, its listener)
 * on its own thread, runs it until the server stops, then closes its
 * listener and every connection and runs the loop out. nf_server_wait joins
 * the threads and frees the loops. With ACCEPTOR, one more thread blocks in
 * poll() on the listening socket and an eventfd, accepts, and posts each
 * socket to the loops in turn.
 *
 * Stopping is async-signal-safe: nf_server_stop only stores atomics and
 * writes eventfds. In ACCEPTOR mode it stops the acceptor first and the
 * acceptor stops the workers once it accepts no more, so every socket it
 * posted is adopted (or closed) by a loop that still runs. */
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "base/export.h"
#include "netframe/server.h"
#include "netframe/tcp.h"
#include "netframe/timer.h"

/* Write-queue limits as nf_conn_set_write_limits takes them. */
typedef struct wlimits {
    size_t high, low, max;
} wlimits_t;

/* The limits a listener with listen.write_* gives its connections (tcp.h:
 * 0 the default, NF_WRITE_LIMIT_OFF off, a lone high-water mark with a
 * quarter of it as low-water): the ACCEPTOR applies them to the sockets it
 * hands over. -EINVAL when the low-water mark is not below the high one, as
 * nf_listen says. */
static int wlimits_of(const nf_listen_config_t *lc, wlimits_t *out)
{
    size_t high = lc->write_high_water ? lc->write_high_water : NF_WRITE_HIGH_DEFAULT, low = lc->write_low_water;
    if (low == NF_WRITE_LIMIT_OFF)
        low = 0; /* resume once empty */
    else if (!low)
        low = !lc->write_high_water ? NF_WRITE_LOW_DEFAULT : high == NF_WRITE_LIMIT_OFF ? 0 : high / 4;
    if (high != NF_WRITE_LIMIT_OFF && low >= high)
        return -EINVAL;
    *out = (wlimits_t){high, low, lc->write_max ? lc->write_max : NF_WRITE_MAX_DEFAULT};
    return 0;
}

typedef struct worker {
    nf_server_t *s;
    unsigned index;
    pthread_t th;
    bool th_started;
    _Atomic(nf_loop_t *) loop; /* published once created; the loop lives until nf_server_wait */
    nf_listener_t *l;
    nf_timer_t keep; /* ACCEPTOR: keeps a loop with no listener and no connection alive */
    int err;
    bool ready;  /* start-up done (err says how) */
    bool closed; /* run out: posts are no longer taken (under s->mu) */
    nf_loop_stats_t final;
} worker_t;

struct nf_server {
    nf_server_config_t cfg;
    unsigned n;
    worker_t *w;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stopping;
    atomic_int signalling; /* nf_server_stop calls still touching loops */
    int stop_fd;           /* eventfd: wakes the acceptor */
    int acc_fd;            /* ACCEPTOR: the listening socket */
    int slot_fd;           /* ACCEPTOR with max_conns: eventfd, a slot came free */
    atomic_uint open;      /* ACCEPTOR: connections handed over and not yet freed */
    atomic_ullong refused; /* ACCEPTOR: closed at max_conns (NF_LIMIT_CLOSE) */
    pthread_t acc_th;
    bool acc_started;
    unsigned rr;
    nf_addr_t addr;
    bool waited;
    wlimits_t wl; /* ACCEPTOR: listen.write_* for adopted connections */
    bool wl_set;  /* ... when the config named any */
};

NF__EXPORT void nf_server_config_init(nf_server_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    nf_loop_config_init(&cfg->loop);
    cfg->listen.host = "127.0.0.1";
}

/* ---- hand-over (ACCEPTOR) --------------------------------------------------- */

typedef struct handover {
    nf_server_t *s;
    int fd;
} handover_t;

/* A connection the acceptor counted is gone (freed after its on_close, or
 * never adopted): give its slot back and wake an acceptor paused at
 * max_conns. Runs on a loop thread. */
static void slot_release(void *arg)
{
    nf_server_t *s = arg;
    unsigned was = atomic_fetch_sub(&s->open, 1);
    if (s->slot_fd >= 0 && was >= s->cfg.listen.max_conns) {
        uint64_t one = 1;
        ssize_t r = write(s->slot_fd, &one, sizeof(one));
        (void)r;
    }
}

static void adopt_post(nf_loop_t *loop, void *arg)
{
    handover_t *h = arg;
    nf_server_t *s = h->s;
    int fd = h->fd;
    free(h);
    nf_conn_t *c = NULL;
    const nf_listen_config_t *lc = &s->cfg.listen;
    nf_adopt_config_t ac = {.handler = lc->handler,
                            .data = lc->data,
                            .filters = lc->filters,
                            .nfilters = lc->nfilters,
                            .oob_inline = lc->oob_inline,
                            .on_released = slot_release,
                            .released_arg = s};
    if (atomic_load(&s->stopping) || nf_conn_adopt_ex(loop, fd, &ac, &c) != 0) {
        close(fd);
        slot_release(s);
    } else if (s->wl_set && !nf_conn_is_closing(c)) /* as a listener would have (on_open saw the defaults) */
        nf_conn_set_write_limits(c, s->wl.high, s->wl.low, s->wl.max);
}

static void apply_sockopts(const nf_listen_config_t *lc, int fd)
{
    int one = 1;
    if (lc->nodelay >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (lc->keepalive_s > 0) {
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &lc->keepalive_s, sizeof(lc->keepalive_s));
    }
}

/* At max_conns (counted across the loops: handed over and not yet freed)
 * the listener's on_limit applies as on a loop's own listener: PAUSE stops
 * accepting until a connection is freed (slot_fd), CLOSE accepts and resets
 * (counted in refused). */
static bool at_limit(nf_server_t *s)
{
    unsigned max = s->cfg.listen.max_conns;
    return max && atomic_load(&s->open) >= max;
}

static void *acceptor_main(void *arg)
{
    nf_server_t *s = arg;
    bool pause_at_limit = s->cfg.listen.on_limit == NF_LIMIT_PAUSE;
    struct pollfd p[3] = {{.fd = s->acc_fd, .events = POLLIN},
                          {.fd = s->stop_fd, .events = POLLIN},
                          {.fd = s->slot_fd, .events = POLLIN}};
    while (!atomic_load(&s->stopping)) {
        /* a negative fd is ignored by poll(): paused, wait for a slot */
        p[0].fd = pause_at_limit && at_limit(s) ? -1 : s->acc_fd;
        int r = poll(p, 3, -1);
        if (r < 0)
            continue; /* EINTR */
        if (p[1].revents || atomic_load(&s->stopping))
            break;
        if (p[2].revents) {
            uint64_t v;
            ssize_t n = read(s->slot_fd, &v, sizeof(v));
            (void)n;
        }
        for (int i = 0; i < 64 && p[0].fd >= 0; i++) {
            bool full = at_limit(s);
            if (full && pause_at_limit)
                break;
            int fd = accept4(s->acc_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                    struct timespec ts = {0, 10 * 1000000L}; /* let connections close */
                    nanosleep(&ts, NULL);
                }
                break; /* EAGAIN, ECONNABORTED...: poll again */
            }
            if (full) {
                struct linger lg = {1, 0};
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                close(fd);
                atomic_fetch_add(&s->refused, 1);
                continue;
            }
            apply_sockopts(&s->cfg.listen, fd);
            atomic_fetch_add(&s->open, 1);
            worker_t *w = &s->w[s->rr++ % s->n];
            handover_t *h = malloc(sizeof(*h));
            if (h) {
                h->s = s;
                h->fd = fd;
            }
            if (!h || nf_loop_post(atomic_load(&w->loop), adopt_post, h) != 0) {
                free(h);
                close(fd);
                atomic_fetch_sub(&s->open, 1);
            }
        }
    }
    /* No more hand-overs: now the loops may stop (their queues hold every
     * socket posted above, and posts keep a loop alive until they ran). */
    for (unsigned i = 0; i < s->n; i++)
        nf_loop_stop_async(atomic_load(&s->w[i].loop));
    return NULL;
}

/* ---- workers ------------------------------------------------------------------ */

static void keep_cb(nf_timer_t *t) { (void)t; }

static void close_one(nf_conn_t *c, void *arg) { (void)arg, nf_conn_close(c); }

static int worker_setup(worker_t *w, nf_loop_t **out)
{
    nf_server_t *s = w->s;
    nf_loop_t *loop;
    int err = nf_loop_new(&loop, &s->cfg.loop);
    if (err)
        return err;
    *out = loop;
    if (s->cfg.spread == NF_SERVER_REUSEPORT && s->cfg.listen.handler) {
        nf_listen_config_t lc = s->cfg.listen;
        lc.reuseport = 1;
        if (w->index > 0)
            lc.port = nf_addr_port(&s->addr); /* loop 0 knows the port */
        err = nf_listen(loop, &lc, &w->l);
        if (err)
            return err;
        if (w->index == 0)
            nf_listener_addr(w->l, &s->addr);
    } else {
        nf_timer_init(loop, &w->keep);
        err = nf_timer_start(&w->keep, keep_cb, 3600u * 1000u, 3600u * 1000u);
        if (err)
            return err;
    }
    if (s->cfg.on_loop_start)
        err = s->cfg.on_loop_start(s, loop, w->index);
    return err;
}

/* Runs the loop until the server stops. */
static int worker_run(worker_t *w, nf_loop_t *loop)
{
    nf_server_t *s = w->s;
    if (nf_loop_mode(loop) == NF_MODE_EVENT) { /* config, or NF_MODE */
        /* as a program embedding the loop would: poll its fd, step */
        struct pollfd p = {.fd = nf_loop_fd(loop), .events = POLLIN};
        int r = nf_loop_run(loop, NF_RUN_NOWAIT); /* submit what setup prepared */
        while (r >= 0 && !atomic_load(&s->stopping)) {
            if (poll(&p, 1, -1) > 0)
                r = nf_loop_run(loop, NF_RUN_NOWAIT);
        }
        return r < 0 ? r : 0;
    }
    while (!atomic_load(&s->stopping)) {
        int r = nf_loop_run(loop, NF_RUN_DEFAULT);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Closes everything on the loop and runs it until nothing is left. */
static int worker_drain(worker_t *w, nf_loop_t *loop)
{
    nf_server_t *s = w->s;
    if (s->cfg.on_loop_stop)
        s->cfg.on_loop_stop(s, loop, w->index);
    nf_timer_stop(&w->keep);
    if (w->l) {
        nf_listener_close(w->l, NULL);
        w->l = NULL;
    }
    nf_conn_walk(loop, close_one, NULL);
    int err = 0;
    for (int pass = 0; pass < 2; pass++) {
        while (nf_loop_alive(loop) > 0) {
            int r = nf_loop_run(loop, NF_RUN_DEFAULT);
            if (r < 0) {
                err = r;
                break;
            }
            if (r > 0) /* connections made by posts after the walk */
                nf_conn_walk(loop, close_one, NULL);
        }
        /* take no more posts, then run what slipped in */
        pthread_mutex_lock(&s->mu);
        w->closed = true;
        pthread_mutex_unlock(&s->mu);
    }
    nf_loop_stats(loop, &w->final);
    return err;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    nf_server_t *s = w->s;
    nf_loop_t *loop = NULL;
    w->keep.heap_index = UINT32_MAX; /* not armed, whatever happens below */
    int err = worker_setup(w, &loop);
    if (loop)
        atomic_store(&w->loop, loop);
    pthread_mutex_lock(&s->mu);
    w->err = err;
    w->ready = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!loop)
        return NULL;
    if (!err) {
        err = worker_run(w, loop);
        if (err) {
            w->err = err;
            nf_server_stop(s); /* one loop failed: stop them all */
        }
    }
    int derr = worker_drain(w, loop);
    if (!w->err)
        w->err = derr;
    return NULL;
}

/* ---- start / stop / wait ------------------------------------------------------- */

/* The acceptor's socket, made as nf_listen makes one. */
static int acceptor_listen(nf_server_t *s)
{
    int fd = nf_listen_socket(&s->cfg.listen, &s->addr);
    if (fd < 0)
        return fd;
    s->acc_fd = fd;
    return 0;
}

/* Starts workers [from, to) and waits until each has set up; returns the
 * first error. */
static int start_workers(nf_server_t *s, unsigned from, unsigned to)
{
    int err = 0;
    for (unsigned i = from; i < to; i++) {
        int r = pthread_create(&s->w[i].th, NULL, worker_main, &s->w[i]);
        if (r) {
            err = -r;
            break;
        }
        s->w[i].th_started = true;
    }
    pthread_mutex_lock(&s->mu);
    for (unsigned i = from; i < to; i++) {
        if (!s->w[i].th_started)
            break;
        while (!s->w[i].ready)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!err)
            err = s->w[i].err;
    }
    pthread_mutex_unlock(&s->mu);
    return err;
}

NF__EXPORT int nf_server_start(nf_server_t **out, const nf_server_config_t *cfg)
{
    if (!cfg || (cfg->spread != NF_SERVER_REUSEPORT && cfg->spread != NF_SERVER_ACCEPTOR))
        return -EINVAL;
    if (!cfg->listen.handler) { /* loops only: sockets made by on_loop_start (UDP) */
        if (!cfg->on_loop_start || cfg->spread != NF_SERVER_REUSEPORT)
            return -EINVAL;
    } else if (!cfg->listen.handler->on_read || !cfg->listen.handler->on_close) {
        return -EINVAL;
    }
    wlimits_t wl;
    if (wlimits_of(&cfg->listen, &wl))
        return -EINVAL;
    nf_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    s->wl = wl;
    s->wl_set = cfg->listen.write_high_water || cfg->listen.write_low_water || cfg->listen.write_max;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s->n = cfg->threads ? cfg->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
    s->acc_fd = -1;
    s->slot_fd = -1;
    s->w = calloc(s->n, sizeof(*s->w));
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int err = !s->w ? -ENOMEM : s->stop_fd < 0 ? -errno : 0;
    if (err)
        goto fail;
    for (unsigned i = 0; i < s->n; i++) {
        s->w[i].s = s;
        s->w[i].index = i;
    }
    if (cfg->spread == NF_SERVER_ACCEPTOR) {
        if (cfg->listen.max_conns) {
            s->slot_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (s->slot_fd < 0) {
                err = -errno;
                goto fail;
            }
        }
        err = acceptor_listen(s);
        if (!err)
            err = start_workers(s, 0, s->n);
        if (!err) {
            int r = pthread_create(&s->acc_th, NULL, acceptor_main, s);
            if (r)
                err = -r;
            else
                s->acc_started = true;
        }
    } else {
        err = start_workers(s, 0, 1); /* loop 0 binds: the others learn the port */
        if (!err)
            err = start_workers(s, 1, s->n);
    }
    if (err) {
        nf_server_stop(s);
        nf_server_wait(s);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    nf_server_free(s);
    return err;
}

NF__EXPORT void nf_server_stop(nf_server_t *s)
{
    atomic_fetch_add(&s->signalling, 1);
    if (atomic_exchange(&s->stopping, 1) == 0) {
        if (s->acc_started) {
            uint64_t one = 1;
            ssize_t r = write(s->stop_fd, &one, sizeof(one)); /* the acceptor stops the loops */
            (void)r;
        } else {
            for (unsigned i = 0; i < s->n; i++) {
                nf_loop_t *loop = atomic_load(&s->w[i].loop);
                if (loop)
                    nf_loop_stop_async(loop);
            }
        }
    }
    atomic_fetch_sub(&s->signalling, 1);
}

static bool on_own_loop_thread(const nf_server_t *s)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->w[i].th_started && pthread_equal(s->w[i].th, pthread_self()))
            return true;
    return false;
}

NF__EXPORT int nf_server_wait(nf_server_t *s)
{
    if (s->waited)
        return 0;
    if (on_own_loop_thread(s))
        return -EDEADLK;
    if (s->acc_started)
        pthread_join(s->acc_th, NULL);
    int err = 0;
    for (unsigned i = 0; i < s->n; i++) {
        if (!s->w[i].th_started)
            continue;
        pthread_join(s->w[i].th, NULL);
        if (!err)
            err = s->w[i].err;
    }
    /* a stop may still be writing to the loops' eventfds */
    while (atomic_load(&s->signalling) > 0)
        sched_yield();
    for (unsigned i = 0; i < s->n; i++) {
        nf_loop_t *loop = atomic_load(&s->w[i].loop);
        if (!loop)
            continue;
        int r = nf_loop_free(loop);
        if (r && !err)
            err = r; /* -EBUSY: something kept a read buffer (the loop is leaked) */
        atomic_store(&s->w[i].loop, NULL);
    }
    if (s->acc_fd >= 0) {
        close(s->acc_fd);
        s->acc_fd = -1;
    }
    s->waited = true;
    return err;
}

NF__EXPORT void nf_server_free(nf_server_t *s)
{
    if (!s)
        return;
    if (!s->waited) {
        nf_server_stop(s);
        nf_server_wait(s);
    }
    if (s->stop_fd >= 0)
        close(s->stop_fd);
    if (s->slot_fd >= 0)
        close(s->slot_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->w);
    free(s);
}

NF__EXPORT int nf_server_addr(const nf_server_t *s, nf_addr_t *out)
{
    *out = s->addr;
    return 0;
}

NF__EXPORT unsigned nf_server_threads(const nf_server_t *s) { return s->n; }

NF__EXPORT nf_loop_t *nf_server_loop(const nf_server_t *s, unsigned index)
{
    return index < s->n ? atomic_load(&s->w[index].loop) : NULL;
}

NF__EXPORT void *nf_server_get_data(const nf_server_t *s) { return s->cfg.data; }

/* ---- stats ---------------------------------------------------------------------- */

typedef struct snap_req {
    nf_server_t *s;
    unsigned refs; /* under s->mu: the caller + each post not yet run */
    unsigned left;
    nf_loop_stats_t *st; /* one per loop */
} snap_req_t;

typedef struct snap_one {
    snap_req_t *req;
    unsigned index;
} snap_one_t;

static void snap_release(snap_req_t *req) /* under s->mu */
{
    if (--req->refs == 0) {
        free(req->st);
        free(req);
    }
}

static void snap_post(nf_loop_t *loop, void *arg)
{
    snap_one_t *one = arg;
    snap_req_t *req = one->req;
    nf_server_t *s = req->s;
    pthread_mutex_lock(&s->mu);
    nf_loop_stats(loop, &req->st[one->index]);
    req->left--;
    pthread_cond_broadcast(&s->cv);
    snap_release(req);
    pthread_mutex_unlock(&s->mu);
    free(one);
}

static void stats_add(nf_loop_stats_t *sum, const nf_loop_stats_t *st)
{
    uint64_t *a = (uint64_t *)sum;
    const uint64_t *b = (const uint64_t *)st;
    const size_t hwm = offsetof(nf_loop_stats_t, flow_held_hwm) / sizeof(uint64_t);
    for (size_t i = 0; i < sizeof(*sum) / sizeof(uint64_t); i++)
        a[i] = i == hwm ? (a[i] > b[i] ? a[i] : b[i]) : a[i] + b[i];
}

NF__EXPORT int nf_server_stats(nf_server_t *s, nf_loop_stats_t *out, nf_loop_stats_t *per_loop)
{
    memset(out, 0, sizeof(*out));
    out->conns_refused = atomic_load(&s->refused); /* the acceptor's, in no loop's counters */
    if (s->waited) {
        for (unsigned i = 0; i < s->n; i++) {
            stats_add(out, &s->w[i].final);
            if (per_loop)
                per_loop[i] = s->w[i].final;
        }
        return 0;
    }
    if (on_own_loop_thread(s))
        return -EDEADLK;
    snap_req_t *req = calloc(1, sizeof(*req));
    nf_loop_stats_t *st = calloc(s->n, sizeof(*st));
    if (!req || !st) {
        free(req);
        free(st);
        return -ENOMEM;
    }
    req->s = s;
    req->st = st;
    req->refs = 1;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; i < s->n; i++) {
        worker_t *w = &s->w[i];
        nf_loop_t *loop = atomic_load(&w->loop);
        if (!loop || w->closed) {
            st[i] = w->final;
            continue;
        }
        snap_one_t *one = malloc(sizeof(*one));
        if (!one)
            continue;
        one->req = req;
        one->index = i;
        req->refs++;
        req->left++;
        if (nf_loop_post(loop, snap_post, one) != 0) {
            req->refs--;
            req->left--;
            free(one);
        }
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 1;
    int err = 0;
    while (req->left > 0 && err == 0)
        err = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
    for (unsigned i = 0; i < s->n; i++) {
        stats_add(out, &st[i]);
        if (per_loop)
            per_loop[i] = st[i];
    }
    int left = (int)req->left;
    snap_release(req);
    pthread_mutex_unlock(&s->mu);
    return left ? -ETIMEDOUT : 0;
}

/* netframe — TCP listeners: accepting (with the connection limit and the
 * accept back-off), listener close, and the loop's graceful shutdown. */
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tcp_private.h"
#include "net/resolve.h"

/* ---- accepted connections ----------------------------------------------------- */

/* Out of file descriptors or memory: accepting again at once would fail
 * again at once (a level-triggered listener or a re-armed accept spins the
 * loop), and the connection waits in the backlog anyway. Pause accepting for
 * a while; connections closing meanwhile free what the next accept needs. */
#define NF__ACCEPT_BACKOFF_MS 100

static void backoff_end(nf_timer_t *t)
{
    nf_listener_t *l = t->data;
    l->flags &= ~NF__L_BACKOFF;
    if (!(l->flags & (NF__L_PAUSED | NF__L_CLOSING)))
        l->loop->ops->pause_listener(&l->io, false);
}

void nf__listener_accepted(nf_listener_t *l, int fd)
{
    nf_loop_t *loop = l->loop;
    if (fd < 0) {
        if ((fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) && !(l->flags & NF__L_CLOSING)) {
            nf__net(loop)->st.accept_errors++;
            if (!(l->flags & NF__L_BACKOFF)) {
                l->flags |= NF__L_BACKOFF;
                if (!(l->flags & NF__L_PAUSED))
                    loop->ops->pause_listener(&l->io, true);
                nf_timer_start(&l->backoff_timer, backoff_end, NF__ACCEPT_BACKOFF_MS, 0);
            }
        }
        return; /* other accept errors (ECONNABORTED...) are transient: keep accepting */
    }
    if (l->flags & NF__L_CLOSING) {
        close(fd);
        return;
    }
    if (l->max_conns && l->conns >= l->max_conns) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
        nf__net(loop)->st.conns_refused++;
        return;
    }
    nf_conn_t *c = nf__conn_new(loop, l->h, l->filters, l->nfilters);
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->listener = l;
    nf__conn_sock_opts(c, l->nodelay, l->keepalive_s, l->oob_inline);
    c->wl = l->wl;
    l->conns++;
    nf__net(loop)->st.conns_accepted++;
    if (l->max_conns && l->conns >= l->max_conns && l->on_limit == NF_LIMIT_PAUSE && !(l->flags & NF__L_PAUSED)) {
        l->flags |= NF__L_PAUSED;
        if (!(l->flags & NF__L_BACKOFF))
            loop->ops->pause_listener(&l->io, true);
    }
    nf__conn_opened(c);
}

NF__EXPORT int nf_conn_adopt_ex(nf_loop_t *loop, int fd, const nf_adopt_config_t *cfg, nf_conn_t **out)
{
    if (fd < 0 || !cfg || !cfg->handler || !cfg->handler->on_read || !cfg->handler->on_close)
        return -EINVAL;
    nf_conn_t *c = nf__conn_new(loop, cfg->handler, cfg->filters, cfg->filters ? cfg->nfilters : 0);
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    c->data = cfg->data;
    c->released = cfg->on_released;
    c->released_arg = cfg->released_arg;
    if (cfg->oob_inline) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
        c->flags |= NF__C_OOBINLINE;
    }
    if (out)
        *out = c;
    nf__net(loop)->st.conns_accepted++;
    nf__conn_opened(c);
    return 0;
}

NF__EXPORT int nf_conn_adopt(nf_loop_t *loop, int fd, const nf_conn_handler_t *h, void *data, nf_conn_t **out)
{
    nf_adopt_config_t cfg = {.handler = h, .data = data};
    return nf_conn_adopt_ex(loop, fd, &cfg, out);
}

void nf__listener_released(nf_listener_t *l) { nf__io_released(&l->io); }

/* ---- listener close (its handle's finish_close) ---------------------------------- */

/* A listener released by the backend: close its socket, tell the program. */
static void listener_finish_close(nf__handle_t *h)
{
    nf_listener_t *l = nf__container_of(h, nf_listener_t, hd);
    nf_loop_t *loop = l->loop;
    if (l->fd >= 0)
        close(l->fd);
    loop->handles--;
    if (l->close_cb)
        l->close_cb(l);
    free(l);
}

static void listener_flush(nf__handle_t *h) { (void)h; /* a listener queues no output */ }

/* The up-calls the backends make (core/backend.h). */
static void io_accepted(nf__io_t *io, int fd) { nf__listener_accepted(nf__listener_of(io), fd); }
static void io_released(nf__io_t *io) { nf__listener_released(nf__listener_of(io)); }

static const nf__io_ops_t listener_io_ops = {
    .hd = {.size = sizeof(nf__handle_ops_t), .flush = listener_flush, .finish_close = listener_finish_close},
    .released = io_released,
    .accepted = io_accepted,
};

/* ---- listeners -------------------------------------------------------------- */

/* A listening socket for cfg; flags: socket()'s besides SOCK_CLOEXEC. The
 * backends set a listener's blocking mode themselves, so nf_listen asks for
 * none; a program accepting by itself wants SOCK_NONBLOCK. */
static int listen_socket(const nf_listen_config_t *cfg, nf_addr_t *bound, int flags)
{
    nf_addr_t addr;
    int err = nf_addr_parse(&addr, cfg->host, cfg->port);
    if (err)
        return err;
    nf__bind_cfg_t bc = {.type = SOCK_STREAM,
                         .flags = flags,
                         .reuseaddr = true,
                         .reuseport = cfg->reuseport != 0,
                         .ipv6_only = cfg->ipv6_only != 0,
                         .backlog = cfg->backlog};
    int fd = nf__sock_bind(&addr, &bc);
    if (fd >= 0 && bound)
        *bound = addr;
    return fd;
}

NF__EXPORT int nf_listen_socket(const nf_listen_config_t *cfg, nf_addr_t *bound)
{
    return listen_socket(cfg, bound, SOCK_NONBLOCK);
}

int nf__sock_bind(nf_addr_t *addr, const nf__bind_cfg_t *cfg)
{
    int fd = socket(addr->u.sa.sa_family, cfg->type | SOCK_CLOEXEC | cfg->flags, 0);
    if (fd < 0)
        return -errno;
    int err = 0;
    if (cfg->reuseaddr)
        err = nf__sock_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (!err && cfg->reuseport)
        err = nf__sock_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (!err && addr->u.sa.sa_family == AF_INET6)
        err = nf__sock_set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, cfg->ipv6_only ? 1 : 0);
    if (!err)
        err = nf__sock_buffers(fd, cfg->rcvbuf, cfg->sndbuf);
    if (!err && bind(fd, &addr->u.sa, addr->len) < 0)
        err = -errno;
    if (!err && cfg->type == SOCK_STREAM && listen(fd, cfg->backlog > 0 ? cfg->backlog : 511) < 0)
        err = -errno;
    if (err) {
        close(fd);
        return err;
    }
    socklen_t len = sizeof(addr->u);
    getsockname(fd, &addr->u.sa, &len); /* port 0: the one the kernel chose */
    addr->len = len;
    return fd;
}

NF__EXPORT int nf_listen(nf_loop_t *loop, const nf_listen_config_t *cfg, nf_listener_t **out)
{
    if (!cfg || !cfg->handler || !cfg->handler->on_close || !cfg->handler->on_read)
        return -EINVAL;
    nf__wlimits_t wl;
    if (nf__wlimits_from_cfg(&wl, cfg->write_high_water, cfg->write_low_water, cfg->write_max) != 0)
        return -EINVAL;
    nf__net_t *n = nf__net_make(loop);
    nf_listener_t *l = n ? calloc(1, sizeof(*l)) : NULL;
    if (!l)
        return -ENOMEM;
    l->fd = -1;
    l->fd = listen_socket(cfg, &l->addr, 0);
    int err = l->fd < 0 ? l->fd : 0;
    if (!err) {
        l->loop = loop;
        l->hd.ops = &listener_io_ops.hd;
        l->wl = wl;
        l->h = cfg->handler;
        l->data = cfg->data;
        l->max_conns = cfg->max_conns;
        if (l->max_conns)
            l->flags |= NF__L_ACCEPT_ONE;
        l->on_limit = cfg->on_limit;
        l->nodelay = cfg->nodelay;
        l->keepalive_s = cfg->keepalive_s;
        l->filters = cfg->filters;
        l->nfilters = cfg->filters ? cfg->nfilters : 0;
        l->oob_inline = cfg->oob_inline != 0;
        nf_timer_init(loop, &l->backoff_timer);
        l->backoff_timer.data = l;
        err = loop->ops->start_listener(&l->io);
    }
    if (err) { /* the one way out of a failure */
        if (l->fd >= 0)
            close(l->fd);
        free(l);
        return err;
    }
    loop->handles++;
    nf__list_push_back(&n->listeners, &l->lnode);
    *out = l;
    return 0;
}

NF__EXPORT int nf_listener_addr(const nf_listener_t *l, nf_addr_t *out)
{
    *out = l->addr;
    return 0;
}

NF__EXPORT unsigned nf_listener_conns(const nf_listener_t *l) { return l->conns; }

NF__EXPORT void nf_listener_close(nf_listener_t *l, void (*cb)(nf_listener_t *l))
{
    if (l->flags & NF__L_CLOSING)
        return;
    l->flags |= NF__L_CLOSING;
    l->close_cb = cb;
    nf_timer_stop(&l->backoff_timer);
    nf_loop_t *loop = l->loop;
    nf__net_t *net = nf__net(loop);
    nf__list_remove(&l->lnode);
    /* Connections outlive their listener: forget it in each of them. */
    for (nf__list_t *n = net->conns.next; n != &net->conns; n = n->next) {
        nf_conn_t *c = nf__container_of(n, nf_conn_t, node);
        if (c->listener == l)
            c->listener = NULL;
    }
    l->conns = 0;
    loop->ops->stop_listener(&l->io);
}

NF__EXPORT void *nf_listener_get_data(const nf_listener_t *l) { return l->data; }
NF__EXPORT void nf_listener_set_data(nf_listener_t *l, void *data) { l->data = data; }

/* ---- graceful shutdown ----------------------------------------------------------- */

struct nf__shutdown {
    nf_timer_t timer;
    void (*done)(nf_loop_t *loop, unsigned forced, void *arg);
    void *arg;
    unsigned forced;
    bool finished;
};

static void shutdown_finish(nf_loop_t *loop)
{
    nf__net_t *n = nf__net(loop);
    struct nf__shutdown *sd = n->shutdown;
    if (sd->finished)
        return;
    sd->finished = true;
    nf_timer_stop(&sd->timer);
    n->shutdown = NULL;
    if (sd->done)
        sd->done(loop, sd->forced, sd->arg);
    free(sd);
}

void nf__shutdown_check(nf_loop_t *loop)
{
    if (nf__list_empty(&nf__net(loop)->conns))
        shutdown_finish(loop);
}

static void close_forced(nf_conn_t *c, void *arg)
{
    unsigned *n = arg;
    (*n)++;
    nf_conn_close(c);
}

static void shutdown_deadline(nf_timer_t *t)
{
    nf_loop_t *loop = t->loop;
    struct nf__shutdown *sd = nf__net(loop)->shutdown;
    if (nf__list_empty(&nf__net(loop)->conns)) {
        shutdown_finish(loop);
        return;
    }
    /* the deadline passed: close what is left; done follows the last close */
    nf_conn_walk(loop, close_forced, &sd->forced);
}

NF__EXPORT int nf_loop_shutdown(nf_loop_t *loop, uint64_t deadline_ms,
                                void (*done)(nf_loop_t *loop, unsigned forced, void *arg), void *arg)
{
    nf__net_t *net = nf__net_make(loop);
    if (!net)
        return -ENOMEM;
    if (net->shutdown)
        return -EALREADY;
    struct nf__shutdown *sd = calloc(1, sizeof(*sd));
    if (!sd)
        return -ENOMEM;
    sd->done = done;
    sd->arg = arg;
    net->shutdown = sd;
    nf__list_t *n;
    while ((n = net->listeners.next) != &net->listeners)
        nf_listener_close(nf__container_of(n, nf_listener_t, lnode), NULL);
    nf_timer_init(loop, &sd->timer);
    /* With no connection left, done runs at once from the loop (timer 0). */
    nf_timer_start(&sd->timer, shutdown_deadline, nf__list_empty(&net->conns) ? 0 : deadline_ms, 0);
    return 0;
}

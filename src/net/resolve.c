/* netframe — name resolution on the loop, with c-ares.
 *
 * One c-ares channel per loop, made at the first nf_connect to a name and
 * destroyed with the loop (a per-loop record, nf__loop_ext: nf_loop_free frees it). No thread
 * is started: c-ares tells us (ARES_OPT_SOCK_STATE_CB) which of its sockets
 * to watch for reading or writing, the backend watches them like any other
 * file descriptor (epoll: level-triggered registration; io_uring: one-shot
 * POLL_ADD), and readiness goes to ares_process_fd. c-ares's retransmits and
 * timeouts run on one loop timer, armed for ares_timeout() while queries are
 * pending.
 *
 * Why watches rather than polling c-ares on a timer: a polled resolver either
 * answers late (the poll period) or spins; a watch costs one epoll_ctl or one
 * POLL_ADD per DNS socket (c-ares opens one UDP socket per server, not one per
 * query) and answers within the step the reply arrives in.
 *
 * Lookups are "fb": the hosts file first, then DNS. The hosts file is
 * /etc/hosts, or the file named by CARES_HOSTS in the environment (c-ares's
 * ARES_AI_ENVHOSTS; ignored in set-user-ID programs, read with
 * secure_getenv). Servers are /etc/resolv.conf's, or the loop config's
 * dns_servers.
 *
 * A connection closed while its name resolves forgets its query (q->c =
 * NULL): the answer, when it comes, is dropped. When no connection waits any
 * more, every query left is cancelled (ares_cancel), so abandoned queries
 * neither hold the loop's timer nor outlive the last interested connection. */
#include <ares.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "net/resolve.h"

#define NF__RESOLVE_RCVBUF (1 << 20)

struct sock_watch {
    nf__watch_t w; /* first: the backend hands back &w */
    struct nf__resolver *r;
    struct sock_watch *next; /* r->socks */
};

struct nf__resolver {
    nf_loop_t *loop;
    ares_channel ch;
    nf_timer_t timer;         /* c-ares's next timeout, while queries are pending */
    struct sock_watch *socks; /* c-ares's open sockets */
    unsigned live;            /* queries a connection waits for */
    unsigned pending;         /* queries c-ares holds (live + abandoned) */
    unsigned busy;            /* inside a c-ares call: no ares_cancel now */
};

struct nf__resolve {
    struct nf__resolver *r;
    nf_conn_t *c; /* NULL once the connection gave up */
    uint16_t port;
    bool starting; /* inside ares_getaddrinfo: nf__resolve_start frees q */
    bool done;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_lib_status = ARES_ENOTINITIALIZED;

static void lib_init(void) { g_lib_status = ares_library_init(ARES_LIB_INIT_ALL); }

/* ---- timeouts ------------------------------------------------------------------ */

static void timer_update(struct nf__resolver *r);
static void cancel_abandoned(struct nf__resolver *r);

static void on_timer(nf_timer_t *t)
{
    struct nf__resolver *r = t->data;
    r->busy++;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* expired queries: retry or fail */
    r->busy--;
    cancel_abandoned(r);
}

/* Armed while queries are pending. A query added later never times out
 * before the ones already waiting (one timeout for all), so an armed timer
 * stays early enough; when it fires, the next deadline is asked again. That
 * keeps ares_timeout (a walk over every query) to one call per expiry. */
static void timer_update(struct nf__resolver *r)
{
    if (r->pending == 0) {
        nf_timer_stop(&r->timer);
        return;
    }
    if (nf_timer_active(&r->timer))
        return;
    struct timeval tv;
    struct timeval *tp = ares_timeout(r->ch, NULL, &tv);
    /* No deadline with queries pending (none seen with c-ares 1.18): look
     * again in a second rather than never. */
    uint64_t ms = tp ? (uint64_t)tp->tv_sec * 1000u + ((uint64_t)tp->tv_usec + 999u) / 1000u : 1000u;
    nf_timer_start(&r->timer, on_timer, ms, 0);
}

/* No connection waits any more: drop what is left (the callbacks free it). */
static void cancel_abandoned(struct nf__resolver *r)
{
    if (r->live == 0 && r->pending > 0 && r->busy == 0) {
        r->busy++;
        ares_cancel(r->ch);
        r->busy--;
    }
    timer_update(r);
}

/* ---- c-ares's sockets ----------------------------------------------------------- */

static void sock_ready(nf__watch_t *w, uint32_t rev)
{
    struct sock_watch *s = (struct sock_watch *)w;
    struct nf__resolver *r = s->r; /* s may be stopped by the call below */
    int fd = w->fd;
    bool err = (rev & (POLLERR | POLLHUP)) != 0;
    ares_socket_t rfd = ((rev & POLLIN) || err) ? fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = ((rev & POLLOUT) || (err && (w->events & POLLOUT))) ? fd : ARES_SOCKET_BAD;
    r->busy++;
    ares_process_fd(r->ch, rfd, wfd);
    r->busy--;
    cancel_abandoned(r);
}

static void sock_released(nf__watch_t *w) { free(w); }

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct nf__resolver *r = data;
    nf_loop_t *loop = r->loop;
    struct sock_watch **pp = &r->socks;
    while (*pp && (*pp)->w.fd != fd)
        pp = &(*pp)->next;
    struct sock_watch *s = *pp;
    if (!readable && !writable) { /* c-ares closes fd next */
        if (s) {
            *pp = s->next;
            loop->ops->watch_stop(&s->w);
        }
        return;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return; /* unwatched: its queries end by c-ares's timeout */
        s->w.loop = loop;
        s->w.fd = fd;
        s->w.on_ready = sock_ready;
        s->w.on_released = sock_released;
        s->r = r;
        s->next = r->socks;
        r->socks = s;
    }
    s->w.events = (readable ? POLLIN : 0u) | (writable ? POLLOUT : 0u);
    loop->ops->watch_set(&s->w); /* a failure: its queries end by c-ares's timeout */
}

/* Sockets of this library are close-on-exec; c-ares 1.18 does not ask. */
static int sock_configure(ares_socket_t fd, int type, void *data)
{
    (void)type;
    (void)data;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    return 0;
}

/* ---- the channel ------------------------------------------------------------------ */

/* The loop's record: the resolver, once made. */
struct resolver_ext {
    nf__loop_ext_t x;
    struct nf__resolver *r;
};

static void resolver_free(nf__loop_ext_t *x, nf_loop_t *loop)
{
    struct nf__resolver *r = ((struct resolver_ext *)x)->r;
    if (!r)
        return;
    r->busy++;
    ares_destroy(r->ch); /* abandoned queries end (ARES_EDESTRUCTION), sockets close */
    while (r->socks) {   /* any c-ares did not report closed */
        struct sock_watch *s = r->socks;
        r->socks = s->next;
        loop->ops->watch_stop(&s->w);
    }
    nf_timer_stop(&r->timer);
    free(r);
    ((struct resolver_ext *)x)->r = NULL;
}

static const nf__loop_ext_ops_t resolver_ext_ops = {.name = "resolver", .free = resolver_free};

static int resolver_get(nf_loop_t *loop, struct nf__resolver **out)
{
    struct resolver_ext *rx = (struct resolver_ext *)nf__loop_ext(loop, &resolver_ext_ops, sizeof(*rx));
    if (!rx)
        return -ENOMEM;
    if (rx->r) {
        *out = rx->r;
        return 0;
    }
    pthread_once(&g_once, lib_init);
    if (g_lib_status != ARES_SUCCESS)
        return -ENOMEM;
    struct nf__resolver *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->loop = loop;
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = r;
    o.lookups = (char *)"fb"; /* the hosts file, then DNS */
    /* Queries go out inside nf_connect, answers are read when the loop next
     * waits: a burst of answers must fit the socket meanwhile (the kernel
     * caps this at net.core.rmem_max). */
    o.socket_receive_buffer_size = NF__RESOLVE_RCVBUF;
    int st = ares_init_options(&r->ch, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_RCVBUF);
    if (st != ARES_SUCCESS) {
        free(r);
        return st == ARES_ENOMEM ? -ENOMEM : NF_EADDR;
    }
    if (loop->cfg.dns_servers && ares_set_servers_ports_csv(r->ch, loop->cfg.dns_servers) != ARES_SUCCESS) {
        ares_destroy(r->ch);
        free(r);
        return -EINVAL;
    }
    ares_set_socket_configure_callback(r->ch, sock_configure, NULL);
    nf_timer_init(loop, &r->timer);
    r->timer.data = r;
    rx->r = r;
    *out = r;
    return 0;
}

/* ---- queries ----------------------------------------------------------------------- */

static int map_status(int st)
{
    switch (st) {
    case ARES_ETIMEOUT: return -ETIMEDOUT;
    case ARES_ENOMEM: return -ENOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return -ECANCELED;
    case ARES_ECONNREFUSED:
    case ARES_EREFUSED:
    case ARES_ESERVFAIL:
    case ARES_EBADRESP:
    case ARES_EFORMERR:
    case ARES_ENOTIMP: return -ECONNREFUSED; /* no server would answer */
    default: return NF_EADDR;                /* ENOTFOUND, ENODATA, EBADNAME... */
    }
}

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    (void)timeouts;
    struct nf__resolve *q = arg;
    struct nf__resolver *r = q->r;
    nf_conn_t *c = q->c;
    r->pending--;
    if (c) {
        r->live--;
        q->c = NULL;
        nf_addr_t addrs[NF__RESOLVE_MAX];
        unsigned n = 0;
        int err = status == ARES_SUCCESS ? 0 : map_status(status);
        for (const struct ares_addrinfo_node *a = ai && !err ? ai->nodes : NULL; a && n < NF__RESOLVE_MAX;
             a = a->ai_next) {
            nf_addr_t *d = &addrs[n];
            memset(d, 0, sizeof(*d));
            if (a->ai_family == AF_INET && a->ai_addrlen >= sizeof(d->u.in4)) {
                memcpy(&d->u.in4, a->ai_addr, sizeof(d->u.in4));
                d->u.in4.sin_port = htons(q->port);
                d->len = sizeof(d->u.in4);
            } else if (a->ai_family == AF_INET6 && a->ai_addrlen >= sizeof(d->u.in6)) {
                memcpy(&d->u.in6, a->ai_addr, sizeof(d->u.in6));
                d->u.in6.sin6_port = htons(q->port);
                d->len = sizeof(d->u.in6);
            } else {
                continue;
            }
            n++;
        }
        if (!err && n == 0)
            err = NF_EADDR;
        nf__conn_resolved(c, err, addrs, err ? 0 : n);
    }
    if (ai)
        ares_freeaddrinfo(ai);
    if (q->starting)
        q->done = true;
    else
        free(q);
}

struct nf__resolve *nf__resolve_start(nf_conn_t *c, const char *host, uint16_t port)
{
    struct nf__resolver *r = NULL;
    int err = resolver_get(c->loop, &r);
    struct nf__resolve *q = err ? NULL : calloc(1, sizeof(*q));
    if (!q) {
        nf__conn_resolved(c, err ? err : -ENOMEM, NULL, 0);
        return NULL;
    }
    q->r = r;
    q->c = c;
    q->port = port;
    q->starting = true;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (secure_getenv("CARES_HOSTS"))
        hints.ai_flags |= ARES_AI_ENVHOSTS;
    r->live++;
    r->pending++;
    r->busy++;
    ares_getaddrinfo(r->ch, host, NULL, &hints, on_answer, q); /* may answer inside */
    r->busy--;
    q->starting = false;
    if (q->done) {
        free(q);
        q = NULL;
    }
    cancel_abandoned(r); /* arms the timer for what was sent */
    return q;
}

void nf__resolve_cancel(struct nf__resolve *q)
{
    struct nf__resolver *r = q->r;
    if (!q->c)
        return;
    q->c = NULL;
    r->live--;
    cancel_abandoned(r);
}

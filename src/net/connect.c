/* netframe — outbound TCP connections: numeric or resolved targets, one
 * socket per address tried, the connect timeout. */
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tcp_private.h"
#include "net/resolve.h"

struct nf__connect_state {
    nf_timer_t timer; /* timeout_ms: resolution + every connect attempt */
    nf_addr_t addr;   /* the address being tried */
    struct nf__resolve *job;
    nf_addr_t *more; /* addresses to try after addr, in the resolver's order */
    unsigned nmore, next;
    int nodelay, keepalive_s; /* for every socket the connect creates */
    bool oob_inline;
};

void nf__connect_state_free(nf_conn_t *c)
{
    nf_timer_stop(&c->cs->timer);
    if (c->cs->job)
        nf__resolve_cancel(c->cs->job);
    free(c->cs->more);
    free(c->cs);
    c->cs = NULL;
}

/* ---- outbound connections --------------------------------------------------- */

const nf_addr_t *nf__conn_target(const nf_conn_t *c) { return &c->cs->addr; }

static void connect_timeout(nf_timer_t *t)
{
    nf_conn_t *c = t->data;
    nf__conn_fail(c, -ETIMEDOUT);
}

/* A new socket for cs->addr, with the options, and its connect started;
 * a failure at once goes on to the next address, like a refused connect. */
static void connect_start(nf_conn_t *c)
{
    struct nf__connect_state *cs = c->cs;
    int err;
    for (;;) {
        int fd = socket(cs->addr.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = -errno;
        } else {
            c->fd = fd;
            nf__conn_sock_opts(c, cs->nodelay, cs->keepalive_s, cs->oob_inline);
            err = c->loop->ops->connect(&c->io);
            if (err == NF__PENDING || err == 0)
                return;
            if (c->loop->ops->connect_reset)
                c->loop->ops->connect_reset(&c->io);
            close(c->fd);
            c->fd = -1;
            c->flags &= ~NF__C_OOBINLINE; /* set again only if the next socket takes it */
        }
        if (cs->next >= cs->nmore)
            break;
        cs->addr = cs->more[cs->next++];
    }
    nf__conn_fail(c, err);
}

void nf__conn_connected(nf_conn_t *c, int res)
{
    if (c->flags & NF__C_CLOSING)
        return;
    if (res < 0 && c->cs->next < c->cs->nmore) {
        /* Refused, unreachable...: the name has more addresses; the last
         * attempt's error is the one reported if none connects. */
        if (c->loop->ops->connect_reset)
            c->loop->ops->connect_reset(&c->io);
        close(c->fd);
        c->fd = -1;
        c->flags &= ~NF__C_OOBINLINE;
        c->cs->addr = c->cs->more[c->cs->next++];
        connect_start(c);
        return;
    }
    c->flags &= ~NF__C_CONNECTING;
    if (res < 0) {
        nf__conn_fail(c, res);
        return;
    }
    nf__connect_state_free(c);
    c->net->st.conns_connected++;
    nf__conn_opened(c);
}

void nf__conn_resolved(nf_conn_t *c, int err, const nf_addr_t *addrs, unsigned n)
{
    struct nf__connect_state *cs = c->cs;
    cs->job = NULL;
    if (c->flags & NF__C_CLOSING)
        return; /* closed meanwhile (the query is cancelled at the close's end) */
    if (err) {
        nf__conn_fail(c, err);
        return;
    }
    if (n > 1) {
        cs->more = malloc((n - 1) * sizeof(*cs->more));
        if (cs->more) {
            memcpy(cs->more, addrs + 1, (n - 1) * sizeof(*cs->more));
            cs->nmore = n - 1;
        }
    }
    cs->addr = addrs[0];
    connect_start(c);
}

NF__EXPORT int nf_connect(nf_loop_t *loop, const nf_connect_config_t *cfg, nf_conn_t **out)
{
    nf__wlimits_t wl;
    /* an outbound connection does not pause by default: see tcp.h */
    if (!cfg || !cfg->handler || !cfg->handler->on_close || !cfg->handler->on_read || !cfg->host ||
        nf__wlimits_from_cfg(&wl, cfg->write_high_water ? cfg->write_high_water : NF_WRITE_LIMIT_OFF,
                             cfg->write_low_water, cfg->write_max) != 0)
        return -EINVAL;
    /* the connect state first: a connection made is never taken apart again */
    struct nf__connect_state *cs = calloc(1, sizeof(*cs));
    nf_conn_t *c = cs ? nf__conn_new(loop, cfg->handler, cfg->filters, cfg->filters ? cfg->nfilters : 0) : NULL;
    if (!c) {
        free(cs);
        return -ENOMEM;
    }
    c->wl = wl;
    c->cs = cs;
    c->cs->nodelay = cfg->nodelay;
    c->cs->keepalive_s = cfg->keepalive_s;
    c->cs->oob_inline = cfg->oob_inline != 0;
    c->data = cfg->data;
    c->flags |= NF__C_CONNECTING;
    nf_timer_init(loop, &c->cs->timer);
    c->cs->timer.data = c;
    if (cfg->timeout_ms)
        nf_timer_start(&c->cs->timer, connect_timeout, cfg->timeout_ms, 0);
    *out = c;

    if (nf_addr_parse(&c->cs->addr, cfg->host, cfg->port) == 0)
        connect_start(c);
    else /* on the loop's resolver; an answer known at once is acted on inside */
        c->cs->job = nf__resolve_start(c, cfg->host, cfg->port);
    return 0;
}

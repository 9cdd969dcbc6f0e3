/* netframe — UDP sockets (see include/netframe/udp.h and docs/udp.md).
 *
 * The net layer owns the socket, the send queue with its bounds and drop
 * policy, the peer table and the counters; the backends (uring_udp.c,
 * epoll/udp.c) move datagrams between the kernel and the up-calls of
 * udp_io_ops (nf__udp_recv, tx_pop, tx_done...). Sends are queued by nf_udp_send and
 * handed to the kernel by udp_flush (its handle's flush op) at the end of
 * the loop step, so the datagrams a batch of receive callbacks answers
 * leave in one batch. Receiving and the peer table are in udp_rx.c. */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/udp_internal.h"

#define DEF_RECV_SIZE  2048u
#define DEF_MAX_DGRAMS 1024u
#define DEF_MAX_BYTES  (4u << 20)
#define DEF_MAX_PEERS  65536u
#define TX_POOL_MAX    256u

NF__EXPORT void nf_udp_config_init(nf_udp_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
}

static const nf__io_ops_t udp_io_ops;

/* The queue links entries through their backend part (dg.next). */
static inline nf__udp_tx_t *tx_next(const nf__udp_tx_t *tx) { return (nf__udp_tx_t *)(void *)tx->dg.next; }

/* ---- socket ------------------------------------------------------------------ */

NF__EXPORT int nf_udp_open(nf_loop_t *loop, const nf_udp_config_t *cfg, nf_udp_t **out)
{
    if (!cfg || !cfg->handler || !cfg->handler->on_recv || !loop->ops->udp_start)
        return -EINVAL;
    nf_addr_t local;
    int err = nf_addr_parse(&local, cfg->host, cfg->port);
    if (err)
        return err;
    if (cfg->connect_to && cfg->connect_to->u.sa.sa_family != local.u.sa.sa_family)
        return -EAFNOSUPPORT;
    nf_udp_t *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->loop = loop;
    u->fd = -1;
    u->hd.ops = &udp_io_ops.hd;
    u->h = cfg->handler;
    u->data = cfg->data;
    u->family = local.u.sa.sa_family;
    u->recv_size = cfg->recv_size ? cfg->recv_size : DEF_RECV_SIZE;
    if (u->recv_size > 65536u + 64u)
        u->recv_size = 65536u + 64u;
    u->recv_count = cfg->recv_count;
    u->max_dgrams = cfg->max_queued_dgrams ? cfg->max_queued_dgrams : DEF_MAX_DGRAMS;
    u->max_bytes = cfg->max_queued_bytes ? cfg->max_queued_bytes : DEF_MAX_BYTES;
    u->drop = cfg->drop;
    nf__list_init(&u->peer_lru);
    nf_timer_init(loop, &u->sweep);
    u->sweep.data = u;
    if (cfg->peer_idle_ms) {
        u->peer_idle_ms = cfg->peer_idle_ms;
        u->max_peers = cfg->max_peers ? cfg->max_peers : DEF_MAX_PEERS;
        u->peer_rate = cfg->peer_rate;
        u->peer_burst = cfg->peer_burst ? cfg->peer_burst : cfg->peer_rate;
        u->pmask = 63;
        u->ptab = calloc(u->pmask + 1, sizeof(*u->ptab));
        if (!u->ptab)
            err = -ENOMEM;
    }
    if (!err) {
        nf__bind_cfg_t bc = {.type = SOCK_DGRAM,
                             .flags = SOCK_NONBLOCK,
                             .reuseaddr = cfg->reuseaddr != 0,
                             .reuseport = cfg->reuseport != 0,
                             .ipv6_only = cfg->ipv6_only != 0,
                             .rcvbuf = cfg->rcvbuf,
                             .sndbuf = cfg->sndbuf};
        u->local = local;
        u->fd = nf__sock_bind(&u->local, &bc);
        err = u->fd < 0 ? u->fd : 0;
    }
    if (!err && cfg->connect_to) {
        if (connect(u->fd, &cfg->connect_to->u.sa, cfg->connect_to->len) < 0)
            err = -errno;
        u->peer = *cfg->connect_to;
        u->flags |= NF__U_CONNECTED;
    }
    if (!err)
        err = loop->ops->udp_start(&u->io, u->recv_size, u->recv_count, u->features, sizeof(u->features));
    if (err) { /* the one way out of a failure */
        if (u->fd >= 0)
            close(u->fd);
        free(u->ptab);
        free(u);
        return err;
    }
    loop->handles++;
    *out = u;
    return 0;
}

NF__EXPORT int nf_udp_local_addr(const nf_udp_t *u, nf_addr_t *out)
{
    *out = u->local;
    return 0;
}

NF__EXPORT const char *nf_udp_features(const nf_udp_t *u) { return u->features; }
NF__EXPORT nf_loop_t *nf_udp_loop(const nf_udp_t *u) { return u->loop; }
NF__EXPORT int nf_udp_fd(const nf_udp_t *u) { return u->fd; }
NF__EXPORT void *nf_udp_get_data(const nf_udp_t *u) { return u->data; }
NF__EXPORT void nf_udp_set_data(nf_udp_t *u, void *data) { u->data = data; }

NF__EXPORT void nf_udp_stats(const nf_udp_t *u, nf_udp_stats_t *out)
{
    *out = u->st;
    out->queued_dgrams = u->nwait + u->ninflight;
    out->queued_bytes = u->qbytes;
}

NF__EXPORT int nf_udp_set_buffers(nf_udp_t *u, int rcvbuf, int sndbuf)
{
    return nf__sock_buffers(u->fd, rcvbuf, sndbuf);
}

/* ---- multicast ------------------------------------------------------------------ */

/* iface (NULL or "": any; a name; or, IPv4, a local address) as the IPv4
 * request m (zeroed, with its interface address and index) and *ifindex
 * (0 when not named); 0 or NF_EADDR. */
static int iface_mreqn(const char *iface, struct ip_mreqn *m, unsigned *ifindex)
{
    memset(m, 0, sizeof(*m));
    *ifindex = 0;
    if (iface && *iface && inet_pton(AF_INET, iface, &m->imr_address) != 1) {
        m->imr_address.s_addr = htonl(INADDR_ANY);
        if (!(*ifindex = if_nametoindex(iface)))
            return NF_EADDR;
    }
    m->imr_ifindex = (int)*ifindex;
    return 0;
}

static int membership(nf_udp_t *u, const char *group, const char *iface, bool join)
{
    struct ip_mreqn m4;
    unsigned ifindex;
    int err = iface_mreqn(iface, &m4, &ifindex);
    if (err)
        return err;
    if (u->family == AF_INET) {
        if (!group || inet_pton(AF_INET, group, &m4.imr_multiaddr) != 1)
            return NF_EADDR;
        int opt = join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP;
        return setsockopt(u->fd, IPPROTO_IP, opt, &m4, sizeof(m4)) < 0 ? -errno : 0;
    }
    struct ipv6_mreq m;
    memset(&m, 0, sizeof(m));
    if (!group || inet_pton(AF_INET6, group, &m.ipv6mr_multiaddr) != 1)
        return NF_EADDR;
    if (iface && !ifindex) /* an IPv4 address names no IPv6 interface */
        return NF_EADDR;
    m.ipv6mr_interface = ifindex;
    int opt = join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP;
    return setsockopt(u->fd, IPPROTO_IPV6, opt, &m, sizeof(m)) < 0 ? -errno : 0;
}

NF__EXPORT int nf_udp_join(nf_udp_t *u, const char *group, const char *iface)
{
    return membership(u, group, iface, true);
}

NF__EXPORT int nf_udp_leave(nf_udp_t *u, const char *group, const char *iface)
{
    return membership(u, group, iface, false);
}

NF__EXPORT int nf_udp_set_multicast_if(nf_udp_t *u, const char *iface)
{
    struct ip_mreqn m4;
    unsigned ifindex;
    int err = iface_mreqn(iface, &m4, &ifindex);
    if (err)
        return err;
    if (u->family == AF_INET)
        return setsockopt(u->fd, IPPROTO_IP, IP_MULTICAST_IF, &m4, sizeof(m4)) < 0 ? -errno : 0;
    if (iface && !ifindex)
        return NF_EADDR;
    return nf__sock_set_int(u->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)ifindex);
}

NF__EXPORT int nf_udp_set_multicast_ttl(nf_udp_t *u, int ttl)
{
    if (ttl < 0 || ttl > 255)
        return -EINVAL;
    if (u->family == AF_INET)
        return nf__sock_set_int(u->fd, IPPROTO_IP, IP_MULTICAST_TTL, ttl);
    return nf__sock_set_int(u->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ttl);
}

NF__EXPORT int nf_udp_set_multicast_loop(nf_udp_t *u, int on)
{
    if (u->family == AF_INET)
        return nf__sock_set_int(u->fd, IPPROTO_IP, IP_MULTICAST_LOOP, on ? 1 : 0);
    return nf__sock_set_int(u->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on ? 1 : 0);
}

NF__EXPORT int nf_udp_set_ttl(nf_udp_t *u, int ttl)
{
    if (ttl < 1 || ttl > 255)
        return -EINVAL;
    if (u->family == AF_INET)
        return nf__sock_set_int(u->fd, IPPROTO_IP, IP_TTL, ttl);
    return nf__sock_set_int(u->fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl);
}

/* ---- sending ------------------------------------------------------------------- */

static nf__udp_tx_t *tx_get(nf_udp_t *u, size_t inline_len)
{
    nf__udp_tx_t *tx;
    if (inline_len <= NF__UDP_TX_INLINE && u->pool) {
        tx = u->pool;
        u->pool = tx_next(tx);
        u->npool--;
    } else {
        size_t cap = inline_len <= NF__UDP_TX_INLINE ? NF__UDP_TX_INLINE : inline_len;
        tx = malloc(sizeof(*tx) + cap);
        if (!tx)
            return NULL;
        tx->cap = cap;
        tx->dg.io = &u->io;
    }
    tx->dg.next = NULL;
    tx->buf = NULL;
    tx->dg.data = (char *)(tx + 1);
    tx->dg.len = 0;
    tx->dg.to = NULL;
    return tx;
}

static void tx_put(nf_udp_t *u, nf__udp_tx_t *tx)
{
    if (tx->buf) {
        nf_buf_unref(tx->buf);
        tx->buf = NULL;
    }
    if (tx->cap == NF__UDP_TX_INLINE && u->npool < TX_POOL_MAX) {
        tx->dg.next = u->pool ? &u->pool->dg : NULL;
        u->pool = tx;
        u->npool++;
        return;
    }
    free(tx);
}

/* While the socket is full (epoll) the flush waits for writability. */
static void schedule_flush(nf_udp_t *u)
{
    if (!(u->flags & NF__U_BLOCKED))
        nf__io_flush_later(&u->io);
}

/* (epoll) the socket is writable again: flush what waits. */
static void udp_writable(nf_udp_t *u)
{
    u->flags &= ~NF__U_BLOCKED;
    if (u->wq_head)
        schedule_flush(u);
}

/* Checks a send; returns 0 or the error. */
static int send_check(nf_udp_t *u, size_t len, const nf_addr_t *to)
{
    if (nf__udp_closing(u))
        return NF_ECLOSED;
    if (len > (u->family == AF_INET ? NF_UDP_MAX_DGRAM4 : NF_UDP_MAX_DGRAM6))
        return -EMSGSIZE;
    if (!to && !(u->flags & NF__U_CONNECTED))
        return -EDESTADDRREQ;
    if (to && to->u.sa.sa_family != u->family)
        return -EAFNOSUPPORT;
    return 0;
}

/* Makes room for one datagram of len bytes under the bounds; returns false
 * when the datagram must be dropped (counted by the caller). */
static bool make_room(nf_udp_t *u, size_t len)
{
    while (u->nwait + u->ninflight + 1 > u->max_dgrams || u->qbytes + len > u->max_bytes) {
        if (u->drop != NF_UDP_DROP_OLDEST || !u->wq_head)
            return false; /* drop newest (or all queued are in the kernel already) */
        nf__udp_tx_t *old = u->wq_head;
        u->wq_head = tx_next(old);
        if (!u->wq_head)
            u->wq_tail = NULL;
        u->nwait--;
        u->qbytes -= old->dg.len;
        u->st.dropped++;
        tx_put(u, old);
    }
    return true;
}

static void enqueue(nf_udp_t *u, nf__udp_tx_t *tx, const nf_addr_t *to)
{
    if (to) {
        tx->to = *to;
        tx->dg.to = &tx->to.u.sa;
        tx->dg.tolen = tx->to.len;
    }
    if (u->wq_tail)
        u->wq_tail->dg.next = &tx->dg;
    else
        u->wq_head = tx;
    u->wq_tail = tx;
    u->nwait++;
    u->qbytes += tx->dg.len;
    schedule_flush(u);
}

NF__EXPORT int nf_udp_send(nf_udp_t *u, const void *data, size_t len, const nf_addr_t *to)
{
    int err = send_check(u, len, to);
    if (err)
        return err;
    if (!make_room(u, len)) {
        u->st.dropped++;
        return NF_WRITE_DROPPED;
    }
    nf__udp_tx_t *tx = tx_get(u, len);
    if (!tx)
        return -ENOMEM;
    if (len)
        memcpy(tx->dg.data, data, len);
    tx->dg.len = len;
    enqueue(u, tx, to);
    return 0;
}

NF__EXPORT int nf_udp_send_buf(nf_udp_t *u, nf_buf_t *b, const nf_addr_t *to)
{
    int err = send_check(u, b->len, to);
    if (!err && !make_room(u, b->len)) {
        u->st.dropped++;
        err = NF_WRITE_DROPPED;
    }
    nf__udp_tx_t *tx = err ? NULL : tx_get(u, 0);
    if (!tx) {
        nf_buf_unref(b);
        return err ? err : -ENOMEM;
    }
    tx->buf = b;
    tx->dg.data = b->base;
    tx->dg.len = b->len;
    enqueue(u, tx, to);
    return 0;
}

/* Takes the oldest waiting datagram to hand to the kernel (NULL: none); it
 * counts as in flight until tx_done. */
static nf__udp_tx_t *tx_pop(nf_udp_t *u)
{
    nf__udp_tx_t *tx = u->wq_head;
    if (!tx)
        return NULL;
    u->wq_head = tx_next(tx);
    if (!u->wq_head)
        u->wq_tail = NULL;
    tx->dg.next = NULL;
    u->nwait--;
    u->ninflight++;
    return tx;
}

/* The kernel finished with tx: res = bytes sent or -errno. Frees tx. */
static void tx_done(nf_udp_t *u, nf__udp_tx_t *tx, int res)
{
    u->ninflight--;
    u->qbytes -= tx->dg.len;
    if (res >= 0) {
        u->st.dgrams_out++;
        u->st.bytes_out += (uint64_t)res;
    } else if (res == -ECANCELED) {
        u->st.dropped++; /* closed before the kernel took it */
    } else {
        u->st.send_errors++;
        if (u->h->on_error && !nf__udp_closing(u))
            u->h->on_error(u, res);
    }
    tx_put(u, tx);
}

/* The loop's flush point reached u: hand its waiting datagrams down. */
static void udp_flush(nf__handle_t *h)
{
    nf_udp_t *u = nf__container_of(h, nf_udp_t, hd);
    nf__io_flushing(&u->io);
    if (!nf__udp_closing(u) && u->wq_head)
        u->loop->ops->udp_flush(&u->io);
}

/* ---- closing ---------------------------------------------------------------------- */

NF__EXPORT void nf_udp_close(nf_udp_t *u)
{
    if (!nf__io_close_begin(&u->io))
        return;
    nf_timer_stop(&u->sweep);
    while (u->wq_head) { /* never handed to the kernel */
        nf__udp_tx_t *tx = tx_pop(u);
        u->ninflight--;
        u->qbytes -= tx->dg.len;
        u->st.dropped++;
        tx_put(u, tx);
    }
    while (!nf__list_empty(&u->peer_lru))
        nf__udp_peer_free(u, nf__container_of(u->peer_lru.next, nf_udp_peer_t, lru));
    u->loop->ops->udp_stop(&u->io);
    nf__kick(u->loop);
}

/* The backend is done with u (nothing in flight): finish the close. */
static void udp_released(nf_udp_t *u) { nf__io_released(&u->io); }

/* Released by the backend: close the socket, free, deliver on_close. */
static void udp_finish_close(nf__handle_t *h)
{
    nf_udp_t *u = nf__container_of(h, nf_udp_t, hd);
    nf_loop_t *loop = u->loop;
    if (u->fd >= 0)
        close(u->fd);
    loop->handles--;
    while (u->pool) {
        nf__udp_tx_t *tx = u->pool;
        u->pool = tx_next(tx);
        free(tx);
    }
    free(u->ptab);
    if (u->h->on_close)
        u->h->on_close(u);
    free(u);
}

/* ---- the up-calls the backends make (core/backend.h) ----------------------------- */

static inline nf_udp_t *udp_of(const nf__io_t *io) { return (nf_udp_t *)(void *)(uintptr_t)io; }
static void io_released(nf__io_t *io) { udp_released(udp_of(io)); }
static void io_writable(nf__io_t *io) { udp_writable(udp_of(io)); }
static void io_dgram(nf__io_t *io, const char *data, size_t len, const struct sockaddr *from, socklen_t fromlen,
                     unsigned flags)
{
    nf__udp_recv(udp_of(io), data, len, from, fromlen, flags);
}
static void io_dgram_error(nf__io_t *io, int err) { nf__udp_recv_error(udp_of(io), err); }
static nf__dgram_t *io_tx_head(nf__io_t *io)
{
    nf__udp_tx_t *tx = udp_of(io)->wq_head;
    return tx ? &tx->dg : NULL;
}
static nf__dgram_t *io_tx_pop(nf__io_t *io)
{
    nf__udp_tx_t *tx = tx_pop(udp_of(io));
    return tx ? &tx->dg : NULL;
}
static void io_tx_done(nf__io_t *io, nf__dgram_t *d, int res) { tx_done(udp_of(io), (nf__udp_tx_t *)(void *)d, res); }

_Static_assert(NF__DGRAM_TRUNC == NF_UDP_TRUNC, "one truncation flag");

static const nf__io_ops_t udp_io_ops = {
    .hd = {.size = sizeof(nf__handle_ops_t), .flush = udp_flush, .finish_close = udp_finish_close},
    .released = io_released,
    .schedule_flush = io_writable,
    .dgram = io_dgram,
    .dgram_error = io_dgram_error,
    .tx_head = io_tx_head,
    .tx_pop = io_tx_pop,
    .tx_done = io_tx_done,
};

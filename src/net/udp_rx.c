/* netframe — UDP sockets: receiving (what the backends hand up, the peer
 * table and its idle sweep). Sockets, sending and closing are in
 * udp.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "net/udp_internal.h"

static void sweep_cb(nf_timer_t *t);

/* ---- receiving -------------------------------------------------------------------- */

static uint32_t addr_hash(const struct sockaddr *sa)
{
    uint32_t h = 2166136261u;
    const unsigned char *p;
    size_t n;
    uint16_t port;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        p = (const unsigned char *)&a->sin_addr;
        n = 4;
        port = a->sin_port;
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        p = (const unsigned char *)&a->sin6_addr;
        n = 16;
        port = a->sin6_port;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    h = (h ^ (port & 0xff)) * 16777619u;
    h = (h ^ (port >> 8)) * 16777619u;
    return h;
}

static bool addr_eq(const nf_addr_t *a, const struct sockaddr *sa)
{
    if (a->u.sa.sa_family != sa->sa_family)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *b = (const struct sockaddr_in *)(const void *)sa;
        return a->u.in4.sin_port == b->sin_port && a->u.in4.sin_addr.s_addr == b->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)(const void *)sa;
    return a->u.in6.sin6_port == b->sin6_port && memcmp(&a->u.in6.sin6_addr, &b->sin6_addr, 16) == 0 &&
           a->u.in6.sin6_scope_id == b->sin6_scope_id;
}

static nf_udp_peer_t *peer_lookup(nf_udp_t *u, const struct sockaddr *sa, uint32_t h)
{
    for (nf_udp_peer_t *p = u->ptab[h & u->pmask]; p; p = p->hnext)
        if (p->hash == h && addr_eq(&p->addr, sa))
            return p;
    return NULL;
}

static void peer_grow(nf_udp_t *u)
{
    unsigned nb = (u->pmask + 1) * 2;
    nf_udp_peer_t **t = calloc(nb, sizeof(*t));
    if (!t)
        return; /* longer chains, still correct */
    for (unsigned i = 0; i <= u->pmask; i++) {
        nf_udp_peer_t *p = u->ptab[i];
        while (p) {
            nf_udp_peer_t *next = p->hnext;
            p->hnext = t[p->hash & (nb - 1)];
            t[p->hash & (nb - 1)] = p;
            p = next;
        }
    }
    free(u->ptab);
    u->ptab = t;
    u->pmask = nb - 1;
}

static void sweep_arm(nf_udp_t *u)
{
    if (nf__list_empty(&u->peer_lru) || nf_timer_active(&u->sweep) || nf__udp_closing(u))
        return;
    nf_udp_peer_t *oldest = nf__container_of(u->peer_lru.next, nf_udp_peer_t, lru);
    uint64_t due = oldest->last_seen + u->peer_idle_ms;
    uint64_t now = nf_loop_now(u->loop);
    nf_timer_start(&u->sweep, sweep_cb, due > now ? due - now : 0, 0);
}

void nf__udp_peer_free(nf_udp_t *u, nf_udp_peer_t *p)
{
    nf_udp_peer_t **pp = &u->ptab[p->hash & u->pmask];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
    nf__list_remove(&p->lru);
    u->st.peers--;
    if (u->h->on_peer_close)
        u->h->on_peer_close(u, p);
    free(p);
}

static void sweep_cb(nf_timer_t *t)
{
    nf_udp_t *u = t->data;
    uint64_t now = nf_loop_now(u->loop);
    while (!nf__list_empty(&u->peer_lru)) {
        nf_udp_peer_t *p = nf__container_of(u->peer_lru.next, nf_udp_peer_t, lru);
        if (p->last_seen + u->peer_idle_ms > now)
            break;
        u->st.peers_expired++;
        nf__udp_peer_free(u, p);
    }
    sweep_arm(u);
}

/* The sender's peer (created on first sight), or NULL when the datagram is
 * to be dropped (*drop set). */
static nf_udp_peer_t *peer_for(nf_udp_t *u, const struct sockaddr *sa, bool *drop)
{
    uint32_t h = addr_hash(sa);
    nf_udp_peer_t *p = peer_lookup(u, sa, h);
    uint64_t now = nf_loop_now(u->loop);
    if (!p) {
        if (u->st.peers >= u->max_peers || !(p = calloc(1, sizeof(*p)))) {
            u->st.peers_refused++;
            *drop = true;
            return NULL;
        }
        p->u = u;
        p->hash = h;
        memcpy(&p->addr.u, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        p->addr.len = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        p->tokens = u->peer_burst;
        p->tok_ts = now;
        p->last_seen = now;
        p->hnext = u->ptab[h & u->pmask];
        u->ptab[h & u->pmask] = p;
        nf__list_push_back(&u->peer_lru, &p->lru);
        u->st.peers++;
        u->st.peers_opened++;
        if (u->st.peers > 2u * (u->pmask + 1))
            peer_grow(u);
        if (u->h->on_peer_open) {
            u->h->on_peer_open(u, p);
            /* the program may have closed the peer (or the socket) */
            if (nf__udp_closing(u) || !(p = peer_lookup(u, sa, h))) {
                *drop = true;
                return NULL;
            }
        }
        sweep_arm(u);
    } else {
        p->last_seen = now;
        nf__list_remove(&p->lru);
        nf__list_push_back(&u->peer_lru, &p->lru);
    }
    if (u->peer_rate > 0) {
        p->tokens += (double)(now - p->tok_ts) * u->peer_rate / 1000.0;
        if (p->tokens > u->peer_burst)
            p->tokens = u->peer_burst;
        p->tok_ts = now;
        if (p->tokens < 1.0) {
            u->st.rate_dropped++;
            *drop = true;
            return NULL;
        }
        p->tokens -= 1.0;
    }
    return p;
}

void nf__udp_recv(nf_udp_t *u, const char *data, size_t len, const struct sockaddr *from, socklen_t fromlen,
                  unsigned flags)
{
    if (nf__udp_closing(u))
        return;
    nf_addr_t a;
    if (from && fromlen > 0 && (from->sa_family == AF_INET || from->sa_family == AF_INET6)) {
        size_t n = fromlen < sizeof(a.u) ? fromlen : sizeof(a.u);
        memcpy(&a.u, from, n);
        a.len = (socklen_t)n;
    } else {
        a = u->peer; /* connected: the kernel may leave the name out */
    }
    nf_udp_peer_t *p = NULL;
    if (u->ptab) {
        bool drop = false;
        p = peer_for(u, &a.u.sa, &drop);
        if (drop)
            return;
    }
    u->st.dgrams_in++;
    u->st.bytes_in += len;
    if (flags & NF_UDP_TRUNC)
        u->st.truncated++;
    u->h->on_recv(u, data, len, &a, flags, p);
}

void nf__udp_recv_error(nf_udp_t *u, int err)
{
    u->st.recv_errors++;
    if (u->h->on_error && !nf__udp_closing(u))
        u->h->on_error(u, err);
}

/* ---- peers ------------------------------------------------------------------------ */

NF__EXPORT const nf_addr_t *nf_udp_peer_addr(const nf_udp_peer_t *p) { return &p->addr; }
NF__EXPORT void *nf_udp_peer_get_data(const nf_udp_peer_t *p) { return p->data; }
NF__EXPORT void nf_udp_peer_set_data(nf_udp_peer_t *p, void *data) { p->data = data; }
NF__EXPORT uint64_t nf_udp_peer_last_seen(const nf_udp_peer_t *p) { return p->last_seen; }

NF__EXPORT int nf_udp_peer_send(nf_udp_peer_t *p, const void *data, size_t len)
{
    return nf_udp_send(p->u, data, len, &p->addr);
}

NF__EXPORT void nf_udp_peer_close(nf_udp_peer_t *p) { nf__udp_peer_free(p->u, p); }

NF__EXPORT nf_udp_peer_t *nf_udp_peer_find(nf_udp_t *u, const nf_addr_t *a)
{
    if (!u->ptab)
        return NULL;
    return peer_lookup(u, &a->u.sa, addr_hash(&a->u.sa));
}

/*
 * nf_ws_epoll_echo - the floor of the WebSocket echo benchmark: a minimal
 * RFC 6455 echo server on plain epoll, no library (its SHA-1, for the
 * handshake's accept value, is written here).
 *
 * Level-triggered epoll, one thread.  Per connection one read buffer (64 KiB,
 * grown for a larger frame).  The opening handshake: read up to the blank
 * line, take Sec-WebSocket-Key, answer 101 with the accept value.  Then per
 * complete frame in the buffer: unmask the payload in place (8 bytes a step),
 * write the server's (unmasked, 4 bytes shorter) header just before the
 * payload, in the bytes the client's header and mask used, and send header +
 * payload with one send() straight from the read buffer: no copy.  A short
 * send keeps the rest in a per-connection out buffer and stops reading
 * until it has drained (EPOLLOUT).  Ping is answered with pong, close with
 * close.
 *
 * What it skips (what a real server must do and this floor does not): UTF-8
 * validation of text messages, fragmented messages (a continuation frame or a
 * data frame without FIN closes the connection), extensions
 * (permessage-deflate), checks of the request's method, Host, Upgrade,
 * Connection, Version and Origin headers, close codes, limits on frame size,
 * and any timeout.  It is what the bench's generator needs: whole masked text
 * frames, 64 B and 16 KiB.
 *
 * Usage: nf_ws_epoll_echo [--host H] --port P   (port 0: any free port)
 * Prints "listening on H:P backend=ws-epoll-floor"; exits 0 on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor_common.h"

#define RBUF0   65536
#define MAXCONN 65536

struct conn {
    int fd;
    int ws;        /* handshake done */
    uint8_t *rbuf; /* bytes read and not yet handled */
    size_t rlen, rcap;
    uint8_t *obuf; /* bytes still to send */
    size_t olen, ooff, ocap;
};

static struct conn *conns[MAXCONN];
static int ep;

/* --- SHA-1 (FIPS 180-4), for the accept value only ------------------------- */
static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5A827999u;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ED9EBA1u;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
        else
            f = b ^ c ^ d, k = 0xCA62C1D6u;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void sha1(const uint8_t *msg, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    size_t i = 0;
    for (; i + 64 <= len; i += 64)
        sha1_block(h, msg + i);
    uint8_t tail[128] = {0};
    size_t rest = len - i;
    memcpy(tail, msg + i, rest);
    tail[rest] = 0x80;
    size_t tl = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int j = 0; j < 8; j++)
        tail[tl - 1 - j] = (uint8_t)(bits >> (8 * j));
    for (size_t j = 0; j < tl; j += 64)
        sha1_block(h, tail + j);
    for (int j = 0; j < 5; j++)
        out[4 * j] = (uint8_t)(h[j] >> 24), out[4 * j + 1] = (uint8_t)(h[j] >> 16),
                out[4 * j + 2] = (uint8_t)(h[j] >> 8), out[4 * j + 3] = (uint8_t)h[j];
}

static void base64(const uint8_t *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/* --- connections ------------------------------------------------------------ */
static void conn_free(struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->rbuf);
    free(c->obuf);
    free(c);
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need)
        nc *= 2;
    uint8_t *q = realloc(*p, nc);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* Send what is pending, then data[0..len): what the socket does not take is
 * kept in obuf.  0 ok, -1 the connection failed. */
static int out(struct conn *c, const uint8_t *data, size_t len)
{
    if (c->olen == c->ooff) {
        while (len > 0) {
            ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
            if (n > 0) {
                data += n, len -= (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                break;
            return -1;
        }
        if (len == 0)
            return 0;
        c->olen = c->ooff = 0;
        struct epoll_event ev = {.events = EPOLLOUT, .data.fd = c->fd}; /* stop reading until drained */
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (grow(&c->obuf, &c->ocap, c->olen + len))
        return -1;
    memcpy(c->obuf + c->olen, data, len);
    c->olen += len;
    return 0;
}

static int flush_out(struct conn *c)
{
    while (c->ooff < c->olen) {
        ssize_t n = send(c->fd, c->obuf + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
        if (n > 0) {
            c->ooff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        return -1;
    }
    c->olen = c->ooff = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

static int handshake(struct conn *c, size_t *used)
{
    uint8_t *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (end == NULL)
        return c->rlen > 8192 ? -1 : 0;
    *end = 0;
    char *k = strcasestr((char *)c->rbuf, "\r\nSec-WebSocket-Key:");
    if (k == NULL)
        return -1;
    k += 20;
    while (*k == ' ' || *k == '\t')
        k++;
    size_t kl = strcspn(k, "\r\n \t");
    if (kl == 0 || kl > 64)
        return -1;
    uint8_t cat[128], dig[20];
    memcpy(cat, k, kl);
    memcpy(cat + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    sha1(cat, kl + 36, dig);
    char acc[32], resp[256];
    base64(dig, 20, acc);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     acc);
    *used = (size_t)(end + 4 - c->rbuf);
    c->ws = 1;
    return out(c, (uint8_t *)resp, (size_t)n) ? -1 : 1;
}

static void unmask(uint8_t *p, size_t n, const uint8_t key[4])
{
    uint32_t k32;
    memcpy(&k32, key, 4);
    uint64_t k64 = (uint64_t)k32 << 32 | k32;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k64;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= key[i & 3];
}

/* Handle the complete frames at the start of rbuf; *used = bytes consumed.
 * 0 ok, -1 close the connection. */
static int frames(struct conn *c, size_t *used)
{
    size_t pos = *used;
    while (c->rlen - pos >= 2) {
        uint8_t *p = c->rbuf + pos;
        size_t avail = c->rlen - pos;
        unsigned fin = p[0] >> 7, op = p[0] & 15;
        if (!(p[1] & 0x80) || (p[0] & 0x70))
            return -1; /* unmasked client frame, or RSV bits: no extension was agreed */
        uint64_t len = p[1] & 127;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3], hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            hl = 10;
        }
        if (len > (64u << 20))
            return -1;
        if (avail < hl + 4 + len) {
            if (grow(&c->rbuf, &c->rcap, pos + hl + 4 + (size_t)len))
                return -1;
            break;
        }
        uint8_t *pl = p + hl + 4;
        unmask(pl, (size_t)len, p + hl);
        if (op == 8) { /* close: answer with close, then go */
            uint8_t h[2] = {0x88, 0};
            out(c, h, 2);
            return -1;
        }
        if (!fin || op == 0)
            return -1;  /* fragmented messages: not handled by this floor */
        if (op != 10) { /* text, binary, ping: echo (a ping as a pong) */
            /* the server header is 4 bytes shorter: it fits before the payload */
            uint8_t *h = pl - (hl - 0);
            h[0] = (uint8_t)(0x80 | (op == 9 ? 10 : op));
            if (hl == 2)
                h[1] = (uint8_t)len;
            else if (hl == 4)
                h[1] = 126, h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len;
            else {
                h[1] = 127;
                for (int i = 0; i < 8; i++)
                    h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
            }
            if (out(c, h, hl + (size_t)len))
                return -1;
        }
        pos += hl + 4 + (size_t)len;
        if (c->olen > c->ooff)
            break; /* the socket is full: read no more until it drains */
    }
    *used = pos;
    return 0;
}

static int on_read(struct conn *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 4096 && grow(&c->rbuf, &c->rcap, c->rlen + RBUF0))
            return -1;
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        c->rlen += (size_t)n;
        size_t used = 0;
        if (!c->ws) {
            int r = handshake(c, &used);
            if (r < 0)
                return -1;
            if (r == 0)
                continue;
        }
        if (frames(c, &used))
            return -1;
        if (used > 0) {
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
            c->rlen -= used;
        }
        if (c->olen > c->ooff)
            return 0; /* wait for EPOLLOUT */
        if ((size_t)n < 4096)
            return 0; /* most likely drained; level-triggered epoll says if not */
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
    }
    if (port < 0) {
        fprintf(stderr, "usage: nf_ws_epoll_echo [--host H] --port P\n");
        return 2;
    }
    int one = 1, bound = 0;
    int lfd = floor_socket(host, port, SOCK_STREAM | SOCK_NONBLOCK, &bound);
    if (lfd < 0) {
        perror("nf_ws_epoll_echo: listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    floor_signals();
    signal(SIGPIPE, SIG_IGN);
    printf("listening on %s:%d backend=ws-epoll-floor\n", host, bound);
    fflush(stdout);

    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct conn *c = calloc(1, sizeof *c);
                    if (cfd >= MAXCONN || c == NULL) {
                        free(c);
                        close(cfd);
                        continue;
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c->fd = cfd;
                    conns[cfd] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (c == NULL)
                continue;
            int bad = 0;
            if (evs[i].events & EPOLLOUT) {
                bad = flush_out(c) != 0;
                /* frames left in rbuf while the socket was full */
                if (!bad && c->olen == c->ooff && c->rlen > 0) {
                    size_t used = 0;
                    bad = frames(c, &used) != 0;
                    if (!bad && used) {
                        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
                        c->rlen -= used;
                    }
                }
            }
            if (!bad && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                bad = on_read(c) != 0;
            if (bad)
                conn_free(c);
        }
    }
    close(ep);
    close(lfd);
    return 0;
}

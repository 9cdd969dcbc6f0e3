/*
 * nf_ws_loadgen - closed-loop WebSocket echo load generator for the netframe
 * benchmarks (bench/ws.sh).
 *
 * Plain sockets + epoll + zlib, no WebSocket library, so that it costs little
 * and the server is what gets measured. Each connection does the opening
 * handshake (blocking, before the clock starts), then runs a closed loop:
 * send one text message of --size bytes as one masked frame, wait for the
 * whole echo (which may come in several frames), check it, record the
 * round-trip time, send the next.
 *
 * The frame is built once per connection: payload of ASCII letters, a fixed
 * masking key per connection. Without --deflate the first 8 payload bytes
 * carry the message's sequence number in hex (re-masked per message: 8
 * bytes), so a lost, repeated or stale echo is an error. With --deflate the
 * generator offers "permessage-deflate; client_no_context_takeover", sends
 * one precompressed frame every time (valid because its compressor starts
 * afresh per message) and inflates each reply with a per-connection inflater
 * (the server may keep its context), then compares all bytes. It counts the
 * replies that came compressed (RSV1): a server may leave short messages
 * uncompressed.
 *
 * --verify-every N (default 16): every reply's length and its sequence
 * number are checked; every N-th message of a connection is compared byte for
 * byte as well (N = 1: all).  Unsampled replies are not copied out of the
 * read buffer.  With --deflate every reply is inflated (the server may keep
 * its context), only the comparison is sampled.
 *
 * --rate R: a paced closed loop, as nf_loadgen's: messages are started on a
 * global clock schedule, one every 1/R s over all connections, each
 * connection with at most one in flight (so a server that cannot keep up
 * gets less than R; the rate printed says what it got).  Without it:
 * saturation.
 *
 * --idle: connect and complete the handshakes, print "ready conns=N", hold
 * the connections open for --seconds, exit (for memory per connection).
 *
 * Output (stdout, one line):
 * --messages N: exactly N messages over all connections, no warmup, then exit
 * (the instruction-count runs of bench/ws.sh use it).
 *
 *   msgs=N secs=F rate=F p50_us=F p99_us=F errors=N compressed=N zbytes=N
 * (compressed: replies that came compressed; zbytes: their compressed
 * payload bytes, both counted in the measuring window)
 * Exit status: 0 no errors, 1 errors (or nothing measured), 2 usage or
 * could not connect / handshake.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define STALL_NS 2000000000ull

struct conn {
    int fd;
    uint32_t id;
    uint64_t seq;
    uint64_t t_start;
    int active, want_out;
    uint8_t key[4];
    uint8_t *frame; /* the masked frame to send */
    size_t flen, hlen, sent;
    uint8_t *rbuf; /* bytes received, not yet parsed */
    size_t rlen, rcap;
    uint8_t *msg; /* the reply's payload so far (joined fragments) */
    size_t mlen, mcap;
    int mcompressed, in_msg;
    int verify; /* compare the whole reply of the current message */
    z_stream inf;
};

static struct {
    const char *host, *port;
    long conns;
    size_t size;
    double seconds, warmup;
    int deflate, idle;
    long messages; /* --messages: stop after this many replies (all connections), no warmup */
    double rate;
    long verify_every;
} o = {"127.0.0.1", NULL, 1, 64, 5.0, 1.0, 0, 0, 0, 0, 16};
static uint64_t verified;

static uint8_t *plain;                      /* the payload (unmasked), size bytes */
static uint64_t errors, compressed, zbytes; /* in the measuring window */
static uint64_t measure_from;
static unsigned logs;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void err(struct conn *c, const char *what)
{
    if (logs++ < 10)
        fprintf(stderr, "ws_loadgen: conn %u: %s\n", c ? (unsigned)c->id : 0u, what);
    errors++;
}

static int need(uint8_t **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 4096;
    while (nc < n)
        nc *= 2;
    uint8_t *q = realloc(*p, nc);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static size_t write_header(uint8_t *h, int rsv1, uint64_t len, const uint8_t key[4])
{
    size_t n = 2;
    h[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | 0x1);
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    h[1] |= 0x80;
    memcpy(h + n, key, 4);
    return n + 4;
}

/* Builds c->frame: header + masked payload (compressed with --deflate). */
static int build_frame(struct conn *c)
{
    const uint8_t *payload = plain;
    size_t plen = o.size;
    uint8_t *z = NULL;
    if (o.deflate) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        size_t cap = deflateBound(&zs, o.size) + 16;
        z = malloc(cap);
        zs.next_in = plain;
        zs.avail_in = (uInt)o.size;
        zs.next_out = z;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_SYNC_FLUSH) != Z_OK || zs.avail_in != 0)
            return -1;
        plen = cap - zs.avail_out;
        deflateEnd(&zs);
        if (plen < 4 || memcmp(z + plen - 4, "\x00\x00\xff\xff", 4) != 0)
            return -1;
        plen -= 4;
        payload = z;
    }
    c->frame = malloc(plen + 14);
    if (!c->frame)
        return -1;
    c->hlen = write_header(c->frame, o.deflate, plen, c->key);
    for (size_t i = 0; i < plen; i++)
        c->frame[c->hlen + i] = payload[i] ^ c->key[i & 3];
    c->flen = c->hlen + plen;
    free(z);
    return 0;
}

/* Blocking connect + opening handshake. 0 or -1 (message printed). */
static int open_conn(struct conn *c, const struct addrinfo *ai)
{
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "ws_loadgen: connect: %s\n", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     o.host, o.port,
                     o.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n" : "");
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "ws_loadgen: send handshake: %s\n", strerror(errno));
        return -1;
    }
    char head[4096];
    size_t hl = 0;
    while (hl < sizeof head - 1) { /* byte by byte: nothing past the head is consumed */
        ssize_t r = recv(c->fd, head + hl, 1, 0);
        if (r <= 0) {
            fprintf(stderr, "ws_loadgen: handshake answer: %s\n", r ? strerror(errno) : "EOF");
            return -1;
        }
        hl++;
        if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[hl] = 0;
    /* the accept value for the RFC's sample key (section 1.3) */
    if (strncmp(head, "HTTP/1.1 101", 12) != 0 || !strcasestr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
        fprintf(stderr, "ws_loadgen: handshake refused: %.200s\n", head);
        return -1;
    }
    char *ext = strcasestr(head, "\nsec-websocket-extensions:");
    if (o.deflate != (ext && strcasestr(ext, "permessage-deflate") != NULL)) {
        fprintf(stderr, "ws_loadgen: permessage-deflate %s by the server\n", o.deflate ? "not agreed" : "sent");
        return -1;
    }
    tv.tv_sec = 0;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -1;
    if (o.deflate && inflateInit2(&c->inf, -15) != Z_OK)
        return -1;
    return 0;
}

static int set_out(int ep, struct conn *c, int want)
{
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
    c->want_out = want;
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void drop(int ep, struct conn *c, const char *why, long *alive)
{
    err(c, why);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->active = 0;
    (*alive)--;
}

static int pump(int ep, struct conn *c, long *alive)
{
    while (c->sent < c->flen) {
        ssize_t n = send(c->fd, c->frame + c->sent, c->flen - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            if (!c->want_out)
                set_out(ep, c, 1);
            return 0;
        } else {
            drop(ep, c, "send failed", alive);
            return -1;
        }
    }
    if (c->want_out)
        set_out(ep, c, 0);
    return 0;
}

static void stamp(struct conn *c)
{
    /* seq in hex into the first 8 payload bytes, masked (no --deflate) */
    static const char hex[] = "0123456789abcdef";
    size_t n = o.size < 8 ? o.size : 8;
    for (size_t i = 0; i < n; i++)
        c->frame[c->hlen + i] = (uint8_t)hex[(c->seq >> (4 * i)) & 15] ^ c->key[i & 3];
}

static int start(int ep, struct conn *c, uint64_t now, long *alive)
{
    c->seq++;
    c->verify = c->seq % (uint64_t)o.verify_every == 0;
    if (!o.deflate)
        stamp(c);
    c->sent = 0;
    c->t_start = now;
    c->active = 1;
    return pump(ep, c, alive);
}

/* The whole reply is in c->msg: check it. 0 ok, -1 bad. */
static int check_reply(struct conn *c)
{
    const uint8_t *got = c->msg;
    size_t glen = c->mlen;
    static uint8_t *out;
    static size_t ocap;
    if (c->mcompressed) {
        if (!o.deflate)
            return -1;
        if (c->t_start >= measure_from) {
            compressed++;
            zbytes += c->mlen;
        }
        if (need(&c->msg, &c->mcap, c->mlen + 4))
            return -1;
        memcpy(c->msg + c->mlen, "\x00\x00\xff\xff", 4);
        if (need(&out, &ocap, o.size + 64))
            return -1;
        c->inf.next_in = c->msg;
        c->inf.avail_in = (uInt)(c->mlen + 4);
        c->inf.next_out = out;
        c->inf.avail_out = (uInt)ocap;
        int rc = inflate(&c->inf, Z_SYNC_FLUSH);
        if ((rc != Z_OK && rc != Z_BUF_ERROR) || c->inf.avail_in != 0)
            return -1;
        got = out;
        glen = ocap - c->inf.avail_out;
    }
    if (glen != o.size)
        return -1;
    if (c->verify)
        verified++;
    if (!o.deflate) {
        static const char hex[] = "0123456789abcdef";
        size_t n = o.size < 8 ? o.size : 8;
        for (size_t i = 0; i < n; i++)
            if (got[i] != (uint8_t)hex[(c->seq >> (4 * i)) & 15])
                return -1;
        return c->verify && memcmp(got + n, plain + n, o.size - n) ? -1 : 0;
    }
    return c->verify && memcmp(got, plain, o.size) ? -1 : 0;
}

/* Parses the frames in rbuf. Returns 1 when a whole reply was taken, 0 when
 * more bytes are needed, -1 on a protocol error. */
static int parse(struct conn *c, const char **why)
{
    size_t pos = 0;
    int done = 0;
    while (!done) {
        uint8_t *p = c->rbuf + pos;
        size_t avail = c->rlen - pos;
        if (avail < 2)
            break;
        unsigned op = p[0] & 15, fin = p[0] >> 7, rsv1 = (p[0] >> 6) & 1;
        if (p[1] & 0x80) {
            *why = "masked frame from the server";
            return -1;
        }
        uint64_t len = p[1] & 127;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            hl = 10;
        }
        if (len > (64u << 20)) {
            *why = "frame too long";
            return -1;
        }
        if (avail < hl + len)
            break;
        if (op >= 8) {
            if (op == 8) {
                *why = "the server closed";
                return -1;
            }
            /* ping / pong: ignored (a ping needs no answer here) */
        } else {
            if ((op == 0) != (c->in_msg != 0) || (op != 0 && op != 1)) {
                *why = "unexpected opcode";
                return -1;
            }
            if (op == 1) {
                c->in_msg = 1;
                c->mlen = 0;
                c->mcompressed = (int)rsv1;
            }
            if (need(&c->msg, &c->mcap, c->mlen + len + 4)) {
                *why = "out of memory";
                return -1;
            }
            if (c->verify || o.deflate)
                memcpy(c->msg + c->mlen, p + hl, len);
            else if (c->mlen < 8) /* unsampled: only the sequence number */
                memcpy(c->msg + c->mlen, p + hl, len < 8 - c->mlen ? len : 8 - c->mlen);
            c->mlen += len;
            if (fin) {
                c->in_msg = 0;
                done = 1;
            }
        }
        pos += hl + len;
    }
    if (pos) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
    if (done && c->rlen) {
        *why = "bytes after the reply (closed loop: one message in flight)";
        return -1;
    }
    return done;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t pct(const uint64_t *v, size_t n, unsigned p)
{
    if (!n)
        return 0;
    size_t r = (n * p + 99) / 100;
    return v[r ? r - 1 : 0];
}

static void usage(void)
{
    fprintf(stderr, "usage: nf_ws_loadgen --port P [--host H] [--connections N] [--size BYTES]\n"
                    "                     [--seconds S] [--warmup W] [--deflate] [--idle] [--messages N]\n"
                    "                     [--rate R] [--verify-every N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, NULL, 'h'},     {"port", 1, NULL, 'p'},   {"connections", 1, NULL, 'c'},  {"size", 1, NULL, 's'},
        {"seconds", 1, NULL, 't'},  {"warmup", 1, NULL, 'w'}, {"deflate", 0, NULL, 'd'},      {"idle", 0, NULL, 'i'},
        {"messages", 1, NULL, 'm'}, {"rate", 1, NULL, 'r'},   {"verify-every", 1, NULL, 'v'}, {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = optarg; break;
        case 'c': o.conns = atol(optarg); break;
        case 's': o.size = (size_t)atol(optarg); break;
        case 't': o.seconds = atof(optarg); break;
        case 'w': o.warmup = atof(optarg); break;
        case 'd': o.deflate = 1; break;
        case 'i': o.idle = 1; break;
        case 'm': o.messages = atol(optarg); break;
        case 'r': o.rate = atof(optarg); break;
        case 'v': o.verify_every = atol(optarg); break;
        default: usage();
        }
    }
    if (!o.port || o.conns < 1 || o.conns > 100000 || o.size < 1 || o.size > (16u << 20) || o.seconds <= 0 ||
        o.warmup < 0 || o.rate < 0 || o.verify_every < 1)
        usage();
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(o.host, o.port, &hints, &ai) != 0) {
        fprintf(stderr, "ws_loadgen: cannot resolve %s\n", o.host);
        return 2;
    }
    plain = malloc(o.size);
    for (size_t i = 0; i < o.size; i++) /* text: letters, compressible like prose */
        plain[i] = (uint8_t)('a' + (i * 7 + i / 13) % 26);
    struct conn *cs = calloc((size_t)o.conns, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!plain || !cs || ep < 0)
        return 2;
    for (long i = 0; i < o.conns; i++) {
        struct conn *c = &cs[i];
        c->id = (uint32_t)i;
        uint32_t k = 0x9e3779b9u * (uint32_t)(i + 1);
        memcpy(c->key, &k, 4);
        if (open_conn(c, ai) != 0 || build_frame(c) != 0)
            return 2;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            return 2;
    }
    freeaddrinfo(ai);
    if (o.idle) {
        printf("ready conns=%ld\n", o.conns);
        fflush(stdout);
        struct timespec ts = {(time_t)o.seconds, (long)((o.seconds - (time_t)o.seconds) * 1e9)};
        nanosleep(&ts, NULL);
        return 0;
    }
    long alive = o.conns;
    if (o.messages) { /* a fixed count: for instruction counts (callgrind), not timing */
        o.warmup = 0;
        o.seconds = 3600;
    }
    long started = 0;
    uint64_t t0 = now_ns(), tw = t0 + (uint64_t)(o.warmup * 1e9), te = tw + (uint64_t)(o.seconds * 1e9);
    measure_from = tw;
    uint64_t *lat = NULL, nlat = 0, clat = 0, msgs = 0;
    /* --rate: connections with nothing in flight wait in a FIFO for their slot */
    long *idle = malloc((size_t)o.conns * sizeof *idle), idle_head = 0, idle_n = 0;
    const uint64_t interval = o.rate > 0 ? (uint64_t)(1e9 / o.rate) : 0;
    uint64_t next_slot = t0;
    if (!idle)
        return 2;
    if (o.rate > 0 && !o.messages) {
        for (long i = 0; i < o.conns; i++)
            idle[idle_n++] = i;
    } else {
        for (long i = 0; i < o.conns && (!o.messages || started < o.messages); i++, started++)
            start(ep, &cs[i], t0, &alive);
    }
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        if (now >= te || alive == 0 || (o.messages && (long)msgs >= o.messages))
            break;
        uint64_t wait_ns = te - now;
        if (idle_n > 0) {
            if (next_slot + 10000000u < now) /* a backlog of at most 10 ms is caught up */
                next_slot = now - 10000000u;
            while (idle_n > 0 && next_slot <= now) {
                struct conn *c = &cs[idle[idle_head]];
                idle_head = (idle_head + 1) % o.conns;
                idle_n--;
                next_slot += interval;
                if (c->fd >= 0)
                    start(ep, c, now, &alive);
            }
            if (idle_n > 0 && next_slot - now < wait_ns)
                wait_ns = next_slot - now;
        }
        struct timespec wts = {(time_t)(wait_ns / 1000000000u), (long)(wait_ns % 1000000000u)};
        int n = epoll_pwait2(ep, evs, 256, &wts, NULL);
        if (n < 0 && errno != EINTR)
            break;
        now = now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (evs[i].events & EPOLLOUT) {
                if (pump(ep, c, &alive))
                    continue;
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            for (;;) {
                if (need(&c->rbuf, &c->rcap, c->rlen + 65536)) {
                    drop(ep, c, "out of memory", &alive);
                    break;
                }
                ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && errno == EAGAIN)
                    break;
                if (r <= 0) {
                    drop(ep, c, r ? "recv failed" : "the server closed the connection", &alive);
                    break;
                }
                c->rlen += (size_t)r;
                const char *why = NULL;
                int got = parse(c, &why);
                if (got < 0) {
                    drop(ep, c, why, &alive);
                    break;
                }
                if (got == 0)
                    continue;
                if (!c->active || check_reply(c) != 0) {
                    drop(ep, c, "the echo differs from the message", &alive);
                    break;
                }
                if (c->t_start >= tw && now < te) {
                    msgs++;
                    if (nlat == clat) {
                        clat = clat ? clat * 2 : 1u << 16;
                        lat = realloc(lat, clat * sizeof *lat);
                        if (!lat)
                            return 2;
                    }
                    lat[nlat++] = now - c->t_start;
                }
                c->active = 0;
                if (o.rate > 0 && !o.messages) {
                    idle[(idle_head + idle_n) % o.conns] = (long)(c - cs);
                    idle_n++;
                    break;
                }
                if (o.messages && started >= o.messages)
                    break;
                started++;
                if (start(ep, c, now, &alive))
                    break;
            }
        }
    }
    uint64_t end = now_ns();
    for (long i = 0; i < o.conns; i++)
        if (cs[i].fd >= 0 && cs[i].active && end - cs[i].t_start > STALL_NS)
            err(&cs[i], "an echo is more than 2 s late");
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double secs = o.messages ? (double)(end - t0) / 1e9 : o.seconds;
    printf("msgs=%llu secs=%.3f rate=%.1f p50_us=%.2f p99_us=%.2f errors=%llu compressed=%llu zbytes=%llu "
           "verified=%llu\n",
           (unsigned long long)msgs, secs, (double)msgs / secs, (double)pct(lat, nlat, 50) / 1e3,
           (double)pct(lat, nlat, 99) / 1e3, (unsigned long long)errors, (unsigned long long)compressed,
           (unsigned long long)zbytes, (unsigned long long)verified);
    return errors || msgs == 0 ? 1 : 0;
}

/*
 * nf_loadgen - closed-loop TCP echo load generator for the netframe benchmarks.
 *
 * Plain non-blocking sockets + epoll, no library.  Every connection runs a
 * closed loop: send one message of --size bytes, wait until the full echo has
 * arrived, verify every byte, record the round-trip latency, send the next.
 * Message contents depend on (connection id, message sequence number): each
 * message is a window into a per-connection random block, at an offset that
 * moves with every message, headed by a hash of (id, seq).  So corruption,
 * truncation, duplication and misordering are all detected, without spending
 * the generator's CPU on regenerating 16 KiB per message.
 *
 * Output (stdout, exactly one line):
 *   msgs=<n> secs=<f> rate=<f> p50_us=<f> p99_us=<f> p999_us=<f> errors=<n>
 *
 * With --messages N the run ends once N messages were echoed in the
 * measuring window (for instruction counts per message under callgrind).
 *
 * --verify-every N (default 16): every echo's length and its first 8 bytes
 * (the (id, seq) stamp) are checked; every N-th message of a connection is
 * compared byte for byte as well (N = 1: all of them).  Sampling lets the
 * generator saturate a server with 16 KiB messages; a wrong byte in a
 * sampled message is still an error, and so is a stamp out of order.
 *
 * --rate R: a paced closed loop.  Messages are started on a global clock
 * schedule, one every 1/R s over all connections (a late wake-up starts the
 * messages that are due at once); a connection still has at most one message
 * in flight, so a server that cannot keep up gets less than R, and the rate
 * printed says what it got.  Latency is measured from the actual send.
 * Without --rate: saturation, each connection sends its next message as soon
 * as the echo of the last one is complete.
 *
 * --tls (when built with OpenSSL): TLS 1.2/1.3 over every connection, the
 * handshake done before the clock starts, the server's certificate not
 * checked (a benchmark, not a client).  OpenSSL's default ciphers.
 *
 * Exit status: 0 = no errors, 1 = errors (or nothing measured),
 *              2 = usage error or could not connect.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef NF_LOADGEN_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define CONNECT_TIMEOUT_MS 5000
#define MAX_SIZE           (64u * 1024u * 1024u)
#define MAX_CONNECTIONS    100000
#define MAX_ERROR_LOGS     10
/* A message still unanswered this long when the run ends counts as an error:
 * the server lost (part of) the echo. */
#define STALL_NS 2000000000ull

struct conn {
    int fd;
    uint32_t id;
    uint64_t seq;        /* sequence number of the message in flight */
    size_t sent;         /* bytes of the current message written */
    size_t rcvd;         /* bytes of the current echo received */
    uint64_t t_start;    /* CLOCK_MONOTONIC ns when the message was started */
    int want_out;        /* EPOLLOUT currently registered */
    int active;          /* a message is in flight */
    unsigned char *pat;  /* per-connection random block, 2 * size bytes */
    unsigned char *sbuf; /* current message: a window into pat */
    unsigned char *rbuf;
    int verify; /* compare every byte of the current message */
#ifdef NF_LOADGEN_TLS
    SSL *ssl;
#endif
};

struct opts {
    const char *host;
    const char *port;
    long connections;
    size_t size;
    double seconds;
    double warmup;
    long messages;     /* stop after this many measured messages (0: no limit) */
    double rate;       /* messages/s over all connections (0: saturate) */
    long verify_every; /* compare every byte of 1 in N messages */
    int tls;
};

#ifdef NF_LOADGEN_TLS
static SSL_CTX *g_ssl_ctx;
#endif
static int g_tls;

static uint64_t g_errors;
static unsigned g_error_logs;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void errlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Log the first MAX_ERROR_LOGS errors to stderr; count them all. */
static void errlog(const char *fmt, ...)
{
    if (g_error_logs < MAX_ERROR_LOGS) {
        va_list ap;
        va_start(ap, fmt);
        fputs("loadgen: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    } else if (g_error_logs == MAX_ERROR_LOGS) {
        fputs("loadgen: further errors not logged\n", stderr);
    }
    g_error_logs++;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Fill buf with a pseudo-random pattern unique to (conn id, seq). */
static void fill_pattern(unsigned char *buf, size_t len, uint32_t id, uint64_t seq)
{
    uint64_t x = splitmix64(((uint64_t)id << 40) ^ seq) | 1u;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    if (i < len) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, len - i);
    }
}

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s --port P [--host H] [--connections N] [--size BYTES]\n"
            "          [--seconds S] [--warmup W] [--messages N] [--rate R]\n"
            "          [--verify-every N] [--tls]\n"
            "  --host H         server address (default 127.0.0.1)\n"
            "  --port P         server port (required)\n"
            "  --connections N  concurrent connections (default 1)\n"
            "  --size BYTES     message size (default 64)\n"
            "  --seconds S      measuring window in seconds (default 5)\n"
            "  --warmup W       warmup seconds before measuring (default 1)\n"
            "  --messages N     end the run after N measured messages (within --seconds)\n"
            "  --rate R         paced closed loop: start R messages/s over all connections\n"
            "                   (default: saturate)\n"
            "  --verify-every N compare every byte of 1 in N messages (default 16; 1 = all);\n"
            "                   length and (id, seq) stamp are checked on all\n"
            "  --tls            TLS over every connection (OpenSSL; certificate not checked)\n",
            argv0);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo) || !(v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"seconds", required_argument, NULL, 't'},
        {"warmup", required_argument, NULL, 'w'},
        {"messages", required_argument, NULL, 'm'},
        {"rate", required_argument, NULL, 'r'},
        {"verify-every", required_argument, NULL, 'v'},
        {"tls", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    long v;
    int c;

    o->host = "127.0.0.1";
    o->port = NULL;
    o->connections = 1;
    o->size = 64;
    o->seconds = 5.0;
    o->warmup = 1.0;
    o->messages = 0;
    o->rate = 0;
    o->verify_every = 16;
    o->tls = 0;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': o->host = optarg; break;
        case 'p':
            if (parse_long(optarg, 1, 65535, &v) != 0) {
                fprintf(stderr, "loadgen: invalid --port '%s'\n", optarg);
                return -1;
            }
            o->port = optarg;
            break;
        case 'c':
            if (parse_long(optarg, 1, MAX_CONNECTIONS, &v) != 0) {
                fprintf(stderr, "loadgen: invalid --connections '%s'\n", optarg);
                return -1;
            }
            o->connections = v;
            break;
        case 's':
            if (parse_long(optarg, 1, (long)MAX_SIZE, &v) != 0) {
                fprintf(stderr, "loadgen: invalid --size '%s'\n", optarg);
                return -1;
            }
            o->size = (size_t)v;
            break;
        case 't':
            if (parse_double(optarg, 0.001, 86400.0, &o->seconds) != 0) {
                fprintf(stderr, "loadgen: invalid --seconds '%s'\n", optarg);
                return -1;
            }
            break;
        case 'w':
            if (parse_double(optarg, 0.0, 86400.0, &o->warmup) != 0) {
                fprintf(stderr, "loadgen: invalid --warmup '%s'\n", optarg);
                return -1;
            }
            break;
        case 'm':
            if (parse_long(optarg, 1, 1000000000L, &v) != 0) {
                fprintf(stderr, "loadgen: invalid --messages '%s'\n", optarg);
                return -1;
            }
            o->messages = v;
            break;
        case 'r':
            if (parse_double(optarg, 1.0, 1e9, &o->rate) != 0) {
                fprintf(stderr, "loadgen: invalid --rate '%s'\n", optarg);
                return -1;
            }
            break;
        case 'v':
            if (parse_long(optarg, 1, 1000000000L, &v) != 0) {
                fprintf(stderr, "loadgen: invalid --verify-every '%s'\n", optarg);
                return -1;
            }
            o->verify_every = v;
            break;
        case 'T':
#ifdef NF_LOADGEN_TLS
            o->tls = 1;
            break;
#else
            fprintf(stderr, "loadgen: built without OpenSSL: no --tls\n");
            return -1;
#endif
        case 'H': usage(stdout, argv[0]); exit(0);
        default: return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "loadgen: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->port == NULL) {
        fprintf(stderr, "loadgen: --port is required\n");
        return -1;
    }
    return 0;
}

/* Connect one non-blocking socket, waiting at most CONNECT_TIMEOUT_MS. */
static int connect_one(const struct addrinfo *ai, char *err, size_t errlen)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(err, errlen, "%s", strerror(errno));
            close(fd);
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int r;
        do {
            r = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
        } while (r < 0 && errno == EINTR);
        if (r <= 0) {
            snprintf(err, errlen, "%s", r == 0 ? "timed out" : strerror(errno));
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr != 0) {
            snprintf(err, errlen, "%s", strerror(soerr));
            close(fd);
            return -1;
        }
    }
    int one = 1;
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* send/recv, over TLS when --tls: -1 with errno EAGAIN when it would block. */
static ssize_t c_send(struct conn *c, const void *buf, size_t len)
{
#ifdef NF_LOADGEN_TLS
    if (c->ssl != NULL) {
        int n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0)
            return n;
        int e = SSL_get_error(c->ssl, n);
        errno = (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? EAGAIN : EIO;
        return -1;
    }
#endif
    return send(c->fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t c_recv(struct conn *c, void *buf, size_t len)
{
#ifdef NF_LOADGEN_TLS
    if (c->ssl != NULL) {
        int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        if (n > 0)
            return n;
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        errno = (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? EAGAIN : EIO;
        return -1;
    }
#endif
    return recv(c->fd, buf, len, 0);
}

#ifdef NF_LOADGEN_TLS
/* Blocking TLS handshake on a connected non-blocking socket. 0 or -1. */
static int tls_handshake(struct conn *c, char *err, size_t errlen)
{
    c->ssl = SSL_new(g_ssl_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(err, errlen, "SSL_new failed");
        return -1;
    }
    SSL_set_connect_state(c->ssl);
    for (int i = 0; i < 1000; i++) {
        int r = SSL_do_handshake(c->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(c->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            snprintf(err, errlen, "TLS handshake failed: %s", ERR_reason_error_string(ERR_get_error()));
            return -1;
        }
        struct pollfd pfd = {.fd = c->fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
        if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) <= 0) {
            snprintf(err, errlen, "TLS handshake timed out");
            return -1;
        }
    }
    snprintf(err, errlen, "TLS handshake did not finish");
    return -1;
}
#endif

static int set_events(int ep, struct conn *c, int want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        return -1;
    c->want_out = want_out;
    return 0;
}

static void conn_fail(int ep, struct conn *c, const char *what, int err, long *alive)
{
    if (err != 0)
        errlog("conn %u: %s: %s", (unsigned)c->id, what, strerror(err));
    else
        errlog("conn %u: %s", (unsigned)c->id, what);
    g_errors++;
    (void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->active = 0;
    (*alive)--;
}

/* Write as much of the current message as the socket accepts.  0 ok, -1 failed. */
static int pump_send(int ep, struct conn *c, size_t size, long *alive)
{
    while (c->sent < size) {
        ssize_t n = c_send(c, c->sbuf + c->sent, size - c->sent);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out && set_events(ep, c, 1) != 0) {
                conn_fail(ep, c, "epoll_ctl", errno, alive);
                return -1;
            }
            return 0;
        } else {
            conn_fail(ep, c, "send failed", n < 0 ? errno : 0, alive);
            return -1;
        }
    }
    if (c->want_out && set_events(ep, c, 0) != 0) {
        conn_fail(ep, c, "epoll_ctl", errno, alive);
        return -1;
    }
    return 0;
}

static long g_verify_every = 16;
static uint64_t g_verified;

static int start_message(int ep, struct conn *c, size_t size, uint64_t now, long *alive)
{
    c->seq++;
    c->verify = (c->seq % (uint64_t)g_verify_every) == 0;
    /* Slide the window by a large odd stride, then stamp a (id, seq) hash on
     * its head; the stamp stays in pat, which is fine: we always compare
     * against exactly the bytes that were sent. */
    c->sbuf = c->pat + (size_t)((c->seq * 40503u) % size);
    uint64_t stamp = splitmix64(((uint64_t)c->id << 40) ^ c->seq);
    memcpy(c->sbuf, &stamp, size < 8 ? size : 8);
    c->sent = 0;
    c->rcvd = 0;
    c->t_start = now;
    c->active = 1;
    return pump_send(ep, c, size, alive);
}

struct lat_vec {
    uint64_t *v;
    size_t n, cap;
};

static int lat_push(struct lat_vec *lv, uint64_t x)
{
    if (lv->n == lv->cap) {
        size_t ncap = lv->cap ? lv->cap * 2 : 1u << 16;
        uint64_t *nv = realloc(lv->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        lv->v = nv;
        lv->cap = ncap;
    }
    lv->v[lv->n++] = x;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, permille in 1..1000. */
static uint64_t percentile(const uint64_t *v, size_t n, unsigned permille)
{
    if (n == 0)
        return 0;
    size_t rank = (n * permille + 999) / 1000; /* ceil(n * permille / 1000) */
    if (rank == 0)
        rank = 1;
    return v[rank - 1];
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0) {
        usage(stderr, argv[0]);
        return 2;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(o.host, o.port, &hints, &res);
    if (gai != 0 || res == NULL) {
        fprintf(stderr, "loadgen: cannot resolve %s:%s: %s\n", o.host, o.port,
                gai != 0 ? gai_strerror(gai) : "no address");
        return 2;
    }

    g_verify_every = o.verify_every;
    g_tls = o.tls;
#ifdef NF_LOADGEN_TLS
    if (o.tls) {
        g_ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (g_ssl_ctx == NULL) {
            fprintf(stderr, "loadgen: SSL_CTX_new failed\n");
            return 2;
        }
        SSL_CTX_set_verify(g_ssl_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(g_ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
#endif

    size_t nconn = (size_t)o.connections;
    struct conn *conns = calloc(nconn, sizeof *conns);
    unsigned char *bufs = malloc(nconn * o.size * 3);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || bufs == NULL || ep < 0) {
        fprintf(stderr, "loadgen: out of memory / epoll_create1 failed\n");
        return 2;
    }

    for (size_t i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        char err[128];
        c->id = (uint32_t)i;
        c->pat = bufs + i * o.size * 3;
        c->rbuf = c->pat + o.size * 2;
        fill_pattern(c->pat, o.size * 2, c->id, 0);
        c->fd = connect_one(res, err, sizeof err);
        if (c->fd < 0) {
            fprintf(stderr, "loadgen: connect to %s:%s failed (connection %zu of %zu): %s\n", o.host, o.port, i + 1,
                    nconn, err);
            return 2;
        }
#ifdef NF_LOADGEN_TLS
        if (o.tls && tls_handshake(c, err, sizeof err) != 0) {
            fprintf(stderr, "loadgen: connection %zu of %zu: %s\n", i + 1, nconn, err);
            return 2;
        }
#endif
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            fprintf(stderr, "loadgen: epoll_ctl: %s\n", strerror(errno));
            return 2;
        }
    }
    freeaddrinfo(res);

    struct lat_vec lat = {0};
    const uint64_t t0 = now_ns();
    const uint64_t t_warm = t0 + (uint64_t)(o.warmup * 1e9);
    const uint64_t t_end = t_warm + (uint64_t)(o.seconds * 1e9);
    long alive = (long)nconn;
    uint64_t msgs = 0;
    uint64_t now = t0;

    /* --rate: connections with nothing in flight wait in a FIFO for their
     * slot on the schedule (one every 1e9 / rate ns, over all connections). */
    size_t *idle = malloc(nconn * sizeof *idle);
    size_t idle_head = 0, idle_n = 0;
    const uint64_t interval = o.rate > 0 ? (uint64_t)(1e9 / o.rate) : 0;
    uint64_t next_slot = t0;
    if (idle == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 2;
    }
    if (o.rate > 0) {
        for (size_t i = 0; i < nconn; i++)
            idle[idle_n++] = i;
    } else {
        for (size_t i = 0; i < nconn; i++)
            (void)start_message(ep, &conns[i], o.size, now, &alive);
    }

    int maxev = nconn < 256 ? (int)nconn : 256;
    struct epoll_event *evs = calloc((size_t)maxev, sizeof *evs);
    if (evs == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 2;
    }

    while (alive > 0) {
        now = now_ns();
        if (now >= t_end || (o.messages && msgs >= (uint64_t)o.messages))
            break;
        uint64_t wait_ns = t_end - now;
        if (wait_ns > 100000000u)
            wait_ns = 100000000u;
        if (o.rate > 0) {
            /* start what is due; a backlog of at most 10 ms is caught up */
            if (next_slot + 10000000u < now)
                next_slot = now - 10000000u;
            while (idle_n > 0 && next_slot <= now) {
                struct conn *c = &conns[idle[idle_head]];
                idle_head = (idle_head + 1) % nconn;
                idle_n--;
                next_slot += interval;
                if (c->fd >= 0)
                    (void)start_message(ep, c, o.size, now, &alive);
            }
            if (idle_n > 0 && next_slot - now < wait_ns)
                wait_ns = next_slot - now;
        }
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u), .tv_nsec = (long)(wait_ns % 1000000000u)};
        int n = epoll_pwait2(ep, evs, maxev, &ts, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "loadgen: epoll_wait: %s\n", strerror(errno));
            g_errors++;
            break;
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            uint32_t e = evs[k].events;
            if (c->fd < 0)
                continue;
            if (e & EPOLLERR) {
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                (void)getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                conn_fail(ep, c, "socket error", soerr, &alive);
                continue;
            }
            /* over TLS a write may wait for the socket to be readable */
            if (((e & EPOLLOUT) || g_tls) && c->active && c->sent < o.size) {
                if (pump_send(ep, c, o.size, &alive) != 0)
                    continue;
            }
            if (!(e & (EPOLLIN | EPOLLHUP)))
                continue;
            /* Read until EAGAIN or the echo of the current message is complete. */
            for (;;) {
                if (!c->active) {
                    /* Nothing outstanding: any data (or EOF) now is a protocol error. */
                    unsigned char junk[256];
                    ssize_t r = c_recv(c, junk, sizeof junk);
                    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                        break;
                    conn_fail(ep, c, r > 0 ? "unexpected data from server" : "connection closed", r < 0 ? errno : 0,
                              &alive);
                    break;
                }
                ssize_t r = c_recv(c, c->rbuf + c->rcvd, o.size - c->rcvd);
                if (r < 0) {
                    if (errno == EINTR)
                        continue;
                    if (errno == EAGAIN || errno == EWOULDBLOCK)
                        break;
                    conn_fail(ep, c, "recv failed", errno, &alive);
                    break;
                }
                if (r == 0) {
                    conn_fail(ep, c, "server closed the connection", 0, &alive);
                    break;
                }
                size_t asked = o.size - c->rcvd;
                c->rcvd += (size_t)r;
                if (c->rcvd > c->sent) {
                    conn_fail(ep, c, "server echoed bytes that were never sent", 0, &alive);
                    break;
                }
                if (c->rcvd < o.size) {
                    /* Short read: the socket is most likely drained; level-triggered
                     * epoll reports it again if not.  Saves an EAGAIN recv.
                     * (Not over TLS: OpenSSL may hold decrypted bytes.) */
                    if ((size_t)r < asked && !g_tls)
                        break;
                    continue;
                }

                /* Full echo received (sent == rcvd == size). */
                uint64_t done = now_ns();
                size_t cmp_len = c->verify ? o.size : (o.size < 8 ? o.size : 8);
                if (c->verify)
                    g_verified++;
                if (memcmp(c->sbuf, c->rbuf, cmp_len) != 0) {
                    size_t off = 0;
                    while (off < o.size && c->sbuf[off] == c->rbuf[off])
                        off++;
                    errlog("conn %u: echo mismatch in message %llu at byte offset %zu of %zu", (unsigned)c->id,
                           (unsigned long long)c->seq, off, o.size);
                    g_errors++;
                }
                if (done >= t_warm && done < t_end) {
                    msgs++;
                    if (lat_push(&lat, done - c->t_start) != 0) {
                        fprintf(stderr, "loadgen: out of memory for latencies\n");
                        return 2;
                    }
                }
                c->active = 0;
                if (done >= t_end || (o.messages && msgs >= (uint64_t)o.messages))
                    break;
                if (o.rate > 0) {
                    idle[(idle_head + idle_n) % nconn] = (size_t)(c - conns);
                    idle_n++;
                    break;
                }
                (void)start_message(ep, c, o.size, done, &alive);
                break; /* the echo cannot be there yet; epoll will tell */
            }
        }
    }

    now = now_ns();
    uint64_t win_end = now < t_end ? now : t_end;
    double secs = win_end > t_warm ? (double)(win_end - t_warm) / 1e9 : 0.0;

    for (size_t i = 0; i < nconn; i++) {
        const struct conn *c = &conns[i];
        if (c->fd >= 0 && c->active && now - c->t_start > STALL_NS) {
            errlog("conn %u: no complete echo of message %llu after %llu ms "
                   "(%zu of %zu bytes sent, %zu echoed)",
                   (unsigned)c->id, (unsigned long long)c->seq, (unsigned long long)((now - c->t_start) / 1000000u),
                   c->sent, o.size, c->rcvd);
            g_errors++;
        }
    }

    for (size_t i = 0; i < nconn; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    close(ep);

    if (lat.n > 1)
        qsort(lat.v, lat.n, sizeof *lat.v, cmp_u64);
    double p50 = (double)percentile(lat.v, lat.n, 500) / 1000.0;
    double p99 = (double)percentile(lat.v, lat.n, 990) / 1000.0;
    double p999 = (double)percentile(lat.v, lat.n, 999) / 1000.0;
    double rate = secs > 0.0 ? (double)msgs / secs : 0.0;

    printf("msgs=%llu secs=%.3f rate=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f errors=%llu verified=%llu\n",
           (unsigned long long)msgs, secs, rate, p50, p99, p999, (unsigned long long)g_errors,
           (unsigned long long)g_verified);
    fflush(stdout);

    if (msgs == 0 && g_errors == 0)
        fprintf(stderr, "loadgen: no message completed in the measuring window\n");

    free(lat.v);
    free(idle);
    free(evs);
    free(bufs);
    free(conns);
    return (g_errors == 0 && msgs > 0) ? 0 : 1;
}

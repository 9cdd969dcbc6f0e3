/* soak_driver — storms a soak_server with bad peers while well-behaved
 * clients verify every echoed byte (tests/soak/README.md).
 *
 *   soak_driver --server PATH [--quiet S] [--storm S] [--p99-factor F]
 *               [--no-rss-check]   (sanitizer builds: ASan's quarantine)
 *               [--slack N]        (time bounds x N: a server under valgrind)
 *
 * Starts PATH (inheriting NF_BACKEND and ASAN_OPTIONS), then:
 *   quiet  good clients only: TCP echo and WebSocket echo, every byte checked,
 *          round-trip latencies recorded;
 *   storm  the same good clients, plus: connection churn (open and drop,
 *          mid-handshake at every stage, resets), resets mid-write, slowloris
 *          WebSocket handshakes (a byte every 300 ms), slow readers, and
 *          WebSocket peers sending oversized frames, invalid UTF-8, unmasked
 *          frames, reserved opcodes and bits, 2^63 lengths, long control
 *          frames, bad close codes, and bad handshakes;
 *   drain  everything closes; the server's counters (GET /stats) must show
 *          every bad connection closed with the right reason.
 * Pass criteria (each failure is printed):
 *   - the good clients saw no error, and their storm p99 is within
 *     --p99-factor (default 10) of the quiet p99 (at least 2 ms);
 *   - every bad peer was closed as expected (close code, HTTP status, timing),
 *     and the server's counters agree;
 *   - afterwards no connection is open, no byte is held, the server's file
 *     descriptors are back to their count before the run and its RSS is
 *     within 4 MiB of its size after the quiet run;
 *   - the server exits 0 on SIGTERM (under ASan: no leak).
 * Only plain POSIX sockets here: the driver shares no code with the server. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_certs.h"

/* ---- common ------------------------------------------------------------------ */

static uint16_t echo_port, ws_port, tls_port;
static SSL_CTX *client_ctx; /* verifies the server against the test CA */
static pid_t server_pid;
static atomic_int phase; /* 0 quiet, 1 storm, 2 stop */
static atomic_int failures;
static unsigned slack = 1; /* --slack: time bounds multiplied (valgrind) */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    int n = atomic_fetch_add(&failures, 1);
    if (n >= 30)
        return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_mu);
    fprintf(stderr, "soak: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_mu);
    va_end(ap);
}

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {5 * (time_t)slack, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static void close_reset(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes: 0, -errno, or 1 on EOF first. */
static int recv_full(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = recv(fd, c, n, 0);
        if (r == 0)
            return 1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static unsigned char pat(uint64_t off, uint32_t seed)
{
    uint32_t x = (uint32_t)off * 2654435761u + seed * 40503u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return (unsigned char)(x >> 24);
}

/* ---- latencies --------------------------------------------------------------- */

#define MAX_LAT 400000
typedef struct {
    uint32_t *v[2];
    size_t n[2];
} lat_t;

static void lat_add(lat_t *l, uint64_t us)
{
    int p = atomic_load(&phase);
    if (p > 1 || l->n[p] >= MAX_LAT)
        return;
    l->v[p][l->n[p]++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- WebSocket bits ----------------------------------------------------------- */

static const char ws_request[] = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n";

/* Reads an HTTP head (byte by byte: nothing past it is consumed); returns the
 * status code, or -1. */
static int read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r <= 0)
            return -1;
        n++;
        if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    buf[n] = 0;
    if (n < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0)
        return -1;
    return atoi(buf + 9);
}

static int ws_open(uint16_t port)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return fd;
    char head[1024];
    if (send_all(fd, ws_request, sizeof ws_request - 1) != 0 || read_head(fd, head, sizeof head) != 101 ||
        !strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
        close(fd);
        return -EPROTO;
    }
    return fd;
}

/* A client frame: masked unless mask == 0 is asked. */
static size_t ws_frame(unsigned char *out, unsigned first, const unsigned char *p, uint64_t len, int masked,
                       int actual_len_bytes)
{
    size_t h = 0;
    out[h++] = (unsigned char)first;
    unsigned char mbit = masked ? 0x80 : 0;
    if (len < 126) {
        out[h++] = mbit | (unsigned char)len;
    } else if (len < 65536) {
        out[h++] = mbit | 126;
        out[h++] = (unsigned char)(len >> 8);
        out[h++] = (unsigned char)len;
    } else {
        out[h++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (unsigned char)(len >> (8 * i));
    }
    static const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    for (int i = 0; i < actual_len_bytes; i++)
        out[h + (size_t)i] = masked ? (unsigned char)(p[i] ^ key[i & 3]) : p[i];
    return h + (size_t)actual_len_bytes;
}

/* Reads one server frame into buf (cap bytes). Returns the opcode, -1 on a
 * read error/EOF, -2 on a malformed or oversized frame. */
static int ws_read(int fd, unsigned char *buf, size_t cap, size_t *len)
{
    unsigned char h[10];
    if (recv_full(fd, h, 2) != 0)
        return -1;
    if (h[1] & 0x80)
        return -2; /* server frames are not masked */
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        if (recv_full(fd, h + 2, 2) != 0)
            return -1;
        n = (uint64_t)h[2] << 8 | h[3];
    } else if (n == 127) {
        if (recv_full(fd, h + 2, 8) != 0)
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | h[2 + i];
    }
    if (n > cap)
        return -2;
    if (recv_full(fd, buf, (size_t)n) != 0)
        return -1;
    *len = (size_t)n;
    return h[0] & 0x0f;
}

/* Reads frames until a close frame; returns its code (1005 when empty), or
 * -1 when the connection ended without one. */
static int ws_await_close(int fd)
{
    static __thread unsigned char buf[70000];
    for (;;) {
        size_t n;
        int op = ws_read(fd, buf, sizeof buf, &n);
        if (op < 0)
            return -1;
        if (op == 8)
            return n >= 2 ? (buf[0] << 8 | buf[1]) : 1005;
    }
}

/* ---- good clients -------------------------------------------------------------- */

static void pat_fill(unsigned char *p, size_t n, uint64_t off, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pat(off + i, seed);
}

typedef struct {
    int id;
    int ws;
    uint64_t msgs, bytes, conns, clean_closes;
    lat_t lat;
} good_t;

/* One message of n bytes echoed, sent at t0 (now_us). */
static void good_count(good_t *g, uint64_t t0, size_t n)
{
    lat_add(&g->lat, now_us() - t0);
    g->msgs++;
    g->bytes += n;
}

static void *good_echo(void *arg)
{
    good_t *g = arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)g->id;
    unsigned char *out = malloc(65536), *in = malloc(65536);
    uint64_t off = 0;
    while (atomic_load(&phase) < 2) {
        int fd = tcp_connect(echo_port);
        if (fd < 0) {
            fail("good echo %d: connect: %s", g->id, strerror(-fd));
            sleep_ms(50);
            continue;
        }
        g->conns++;
        for (int k = 0; k < 300 && atomic_load(&phase) < 2; k++) {
            size_t n = 1 + rnd(&seed) % 32768;
            pat_fill(out, n, off, (uint32_t)g->id);
            uint64_t t0 = now_us();
            int rc = send_all(fd, out, n);
            if (rc == 0)
                rc = recv_full(fd, in, n);
            if (rc != 0) {
                fail("good echo %d: message %llu (%zu bytes): %s", g->id, (unsigned long long)g->msgs, n,
                     rc > 0 ? "EOF" : strerror(-rc));
                break;
            }
            lat_add(&g->lat, now_us() - t0);
            if (memcmp(in, out, n) != 0) {
                fail("good echo %d: echoed bytes differ", g->id);
                break;
            }
            off += n;
            g->msgs++;
            g->bytes += n;
        }
        close(fd);
    }
    free(out);
    free(in);
    return NULL;
}

static void *good_ws(void *arg)
{
    good_t *g = arg;
    uint64_t seed = 0x51afd7ed558ccd1full ^ (uint64_t)g->id;
    unsigned char *payload = malloc(20000), *frame = malloc(20020), *in = malloc(70000);
    uint64_t off = 0;
    while (atomic_load(&phase) < 2) {
        int fd = ws_open(ws_port);
        if (fd < 0) {
            fail("good ws %d: handshake: %s", g->id, strerror(-fd));
            sleep_ms(50);
            continue;
        }
        g->conns++;
        int ok = 1;
        for (int k = 0; k < 300 && atomic_load(&phase) < 2; k++) {
            size_t n = rnd(&seed) % 16384;
            pat_fill(payload, n, off, (uint32_t)g->id + 100);
            size_t fl = ws_frame(frame, 0x82, payload, n, 1, (int)n);
            uint64_t t0 = now_us();
            size_t got;
            int rc = send_all(fd, frame, fl);
            int op = rc == 0 ? ws_read(fd, in, 70000, &got) : -1;
            if (op != 2 || got != n || memcmp(in, payload, n) != 0) {
                fail("good ws %d: message %llu (%zu bytes): send %d, opcode %d", g->id, (unsigned long long)g->msgs, n,
                     rc, op);
                ok = 0;
                break;
            }
            off += n;
            good_count(g, t0, n);
        }
        if (ok) {
            unsigned char cf[16];
            const unsigned char code[2] = {1000 >> 8, 1000 & 0xff};
            size_t fl = ws_frame(cf, 0x88, code, 2, 1, 2);
            int c = send_all(fd, cf, fl) == 0 ? ws_await_close(fd) : -1;
            if (c != 1000)
                fail("good ws %d: close handshake answered %d", g->id, c);
            else
                g->clean_closes++;
        }
        close(fd);
    }
    free(payload);
    free(frame);
    free(in);
    return NULL;
}

/* TLS echo through OpenSSL on a blocking socket, verifying the server's
 * certificate (the test CA, host name 127.0.0.1); close_notify at the end. */
static void *good_tls(void *arg)
{
    good_t *g = arg;
    uint64_t seed = 0x2545f4914f6cdd1dull ^ (uint64_t)g->id;
    unsigned char *out = malloc(65536), *in = malloc(65536);
    uint64_t off = 0;
    while (atomic_load(&phase) < 2) {
        int fd = tcp_connect(tls_port);
        SSL *ssl = fd >= 0 ? SSL_new(client_ctx) : NULL;
        if (!ssl) {
            fail("good tls %d: connect: %s", g->id, fd < 0 ? strerror(-fd) : "SSL_new");
            if (fd >= 0)
                close(fd);
            sleep_ms(50);
            continue;
        }
        SSL_set_fd(ssl, fd);
        SSL_set1_host(ssl, "127.0.0.1");
        if (SSL_connect(ssl) != 1) {
            char e[256];
            ERR_error_string_n(ERR_get_error(), e, sizeof e);
            fail("good tls %d: handshake: %s", g->id, e);
            SSL_free(ssl);
            close(fd);
            sleep_ms(50);
            continue;
        }
        g->conns++;
        int ok = 1;
        for (int k = 0; k < 300 && atomic_load(&phase) < 2; k++) {
            size_t n = 1 + rnd(&seed) % 32768;
            pat_fill(out, n, off, (uint32_t)g->id + 200);
            uint64_t t0 = now_us();
            size_t got = 0;
            int rc = SSL_write(ssl, out, (int)n) == (int)n;
            while (rc && got < n) {
                int r = SSL_read(ssl, in + got, (int)(n - got));
                if (r <= 0)
                    rc = 0;
                else
                    got += (size_t)r;
            }
            if (!rc || memcmp(in, out, n) != 0) {
                fail("good tls %d: message %llu (%zu bytes): %s", g->id, (unsigned long long)g->msgs, n,
                     rc ? "bytes differ" : "read/write failed");
                ok = 0;
                break;
            }
            off += n;
            good_count(g, t0, n);
        }
        if (ok && SSL_shutdown(ssl) >= 0)
            g->clean_closes++;
        SSL_free(ssl);
        close(fd);
    }
    free(out);
    free(in);
    return NULL;
}

/* ---- bad peers ------------------------------------------------------------------- */

enum { CH_ECHO_DROP, CH_WS_DROP, CH_WS_PARTIAL, CH_WS_NOREAD, CH_WS_RESET_OPEN, CH_ECHO_RESET, CH_KINDS };
static const char *ch_names[CH_KINDS] = {"echo connect+close", "ws connect+close",   "ws partial request+close",
                                         "ws request+close",   "ws open then reset", "echo send+reset"};

typedef struct {
    uint64_t churn[CH_KINDS];
    uint64_t reset_mid_write;
    uint64_t slowloris, slowloris_ok;
    uint64_t slow_readers;
    uint64_t ws_code[3];     /* expected closes seen: 1002, 1007, 1009 */
    uint64_t http_status[3]; /* 400, 426, 431 */
    uint64_t tls_garbage, tls_stall, tls_stall_ok, tls_reset_hs;
} bad_t;

static bad_t bad;

static void *churn_thread(void *arg)
{
    (void)arg;
    uint64_t seed = 12345;
    while (atomic_load(&phase) == 1) {
        int k = (int)(rnd(&seed) % CH_KINDS);
        int echo = k == CH_ECHO_DROP || k == CH_ECHO_RESET;
        int fd = tcp_connect(echo ? echo_port : ws_port);
        if (fd < 0) {
            fail("churn: connect: %s", strerror(-fd));
            sleep_ms(20);
            continue;
        }
        int graceful = 0;
        switch (k) {
        case CH_ECHO_DROP:
        case CH_WS_DROP: graceful = (rnd(&seed) & 7) == 0; break;
        case CH_WS_PARTIAL:
            send_all(fd, ws_request, 1 + rnd(&seed) % (sizeof ws_request - 2));
            graceful = (rnd(&seed) & 7) == 0;
            break;
        case CH_WS_NOREAD: send_all(fd, ws_request, sizeof ws_request - 1); break;
        case CH_WS_RESET_OPEN: {
            char head[1024];
            send_all(fd, ws_request, sizeof ws_request - 1);
            if (read_head(fd, head, sizeof head) != 101)
                fail("churn: ws handshake refused");
            break;
        }
        case CH_ECHO_RESET: {
            char b[100];
            memset(b, 'r', sizeof b);
            send_all(fd, b, sizeof b);
            break;
        }
        }
        /* Mostly resets: the side that closes first gracefully keeps a
         * TIME_WAIT on its port for 60 s, and thousands of them exhaust the
         * ephemeral ports that other tests bind. */
        if (graceful)
            close(fd);
        else
            close_reset(fd);
        bad.churn[k]++;
        sleep_ms(1); /* about a thousand a second: churn, not a port exhaustion test */
    }
    return NULL;
}

/* Sends 256 KiB without reading (the server's echo fills our receive
 * buffer and its socket), then resets: the server is mid-write. */
static void *reset_thread(void *arg)
{
    (void)arg;
    static unsigned char buf[65536];
    memset(buf, 'x', sizeof buf);
    while (atomic_load(&phase) == 1) {
        int fd = tcp_connect(echo_port);
        if (fd < 0) {
            fail("reset: connect: %s", strerror(-fd));
            sleep_ms(20);
            continue;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        size_t sent = 0;
        uint64_t t0 = now_us();
        while (sent < 256 * 1024 && now_us() - t0 < 200000) {
            ssize_t w = send(fd, buf, sizeof buf, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else
                sleep_ms(1);
        }
        sleep_ms(5);
        close_reset(fd);
        bad.reset_mid_write++;
        sleep_ms(15);
    }
    return NULL;
}

/* Up to 8 WebSocket handshakes at once, one byte every 300 ms: the server
 * must close each after its 1 s handshake timeout (not before 900 ms, not
 * after 3.5 s). */
static void *slowloris_thread(void *arg)
{
    (void)arg;
    enum { N = 8 };
    int fd[N];
    uint64_t opened[N], last[N];
    size_t pos[N];
    for (int i = 0; i < N; i++)
        fd[i] = -1;
    for (;;) {
        int storm = atomic_load(&phase) == 1, open = 0;
        uint64_t t = now_us();
        for (int i = 0; i < N; i++) {
            if (fd[i] < 0) {
                if (!storm)
                    continue;
                fd[i] = tcp_connect(ws_port);
                if (fd[i] < 0) {
                    fail("slowloris: connect: %s", strerror(-fd[i]));
                    continue;
                }
                fcntl(fd[i], F_SETFL, O_NONBLOCK);
                opened[i] = last[i] = t;
                pos[i] = 0;
                bad.slowloris++;
            }
            open++;
            char b[256];
            ssize_t r = recv(fd[i], b, sizeof b, 0);
            int closed = r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
            uint64_t ms = (t - opened[i]) / 1000;
            if (closed) {
                if (ms < 900 || ms > 3500ull * slack)
                    fail("slowloris: closed after %llu ms (handshake timeout 1000 ms)", (unsigned long long)ms);
                else
                    bad.slowloris_ok++;
                close(fd[i]);
                fd[i] = -1;
                continue;
            }
            if (ms > 3500ull * slack) {
                fail("slowloris: still open after %llu ms", (unsigned long long)ms);
                close(fd[i]);
                fd[i] = -1;
                continue;
            }
            if (t - last[i] >= 300000 && pos[i] < sizeof ws_request - 2) {
                (void)send(fd[i], ws_request + pos[i], 1, MSG_NOSIGNAL);
                pos[i]++;
                last[i] = t;
            }
        }
        if (!storm && !open)
            break;
        sleep_ms(10);
    }
    return NULL;
}

/* Sends without ever reading: the server's flow control must end it. Its
 * held echo rises above high_water, so the flow filter stops reading it (its
 * window closes) and the idle timeout (4 s) closes it; or, when more than
 * 256 KiB were held first, it is closed as a slow consumer. */
static void *slow_reader_thread(void *arg)
{
    (void)arg;
    static unsigned char buf[65536];
    memset(buf, 's', sizeof buf);
    while (atomic_load(&phase) == 1) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rcv = 16384;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        struct sockaddr_in a = {
            .sin_family = AF_INET, .sin_port = htons(echo_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            fail("slow reader: connect: %s", strerror(errno));
            close(fd);
            sleep_ms(20);
            continue;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        bad.slow_readers++;
        uint64_t t0 = now_us();
        int closed = 0;
        while (!closed && now_us() - t0 < 8000000ull * slack) {
            ssize_t w = send(fd, buf, sizeof buf, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                closed = 1;
                break;
            }
            struct pollfd p = {fd, POLLRDHUP, 0};
            if (poll(&p, 1, w > 0 ? 0 : 20) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                closed = 1;
        }
        if (!closed)
            fail("slow reader: not closed by the server after 8 s");
        close(fd);
    }
    return NULL;
}

/* WebSocket peers that break the protocol; each must get the right close
 * code (or HTTP status) back. */
static void *bad_ws_thread(void *arg)
{
    (void)arg;
    unsigned char f[200];
    int round = 0;
    while (atomic_load(&phase) == 1) {
        int k = round++ % 12;
        if (k >= 9) {
            /* bad handshakes: oversized head (431), wrong version (426), no key (400) */
            int fd = tcp_connect(ws_port);
            if (fd < 0)
                continue;
            char req[20000];
            int want;
            if (k == 9) {
                int n = snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: ");
                memset(req + n, 'b', 18000);
                memcpy(req + n + 18000, "\r\n\r\n", 5);
                want = 431;
            } else if (k == 10) {
                snprintf(req, sizeof req,
                         "GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n");
                want = 426;
            } else {
                snprintf(req, sizeof req,
                         "GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n");
                want = 400;
            }
            send_all(fd, req, strlen(req));
            char head[2048];
            int st = read_head(fd, head, sizeof head);
            if (st != want)
                fail("bad handshake %d: status %d, want %d", k, st, want);
            else
                bad.http_status[k - 9]++;
            close(fd);
            continue;
        }
        int fd = ws_open(ws_port);
        if (fd < 0) {
            fail("bad ws: handshake: %s", strerror(-fd));
            sleep_ms(20);
            continue;
        }
        size_t n = 0;
        int want = 1002;
        const unsigned char bad_utf8[] = {0xce, 0xba, 0xc3, 0x28, 'x'};
        const unsigned char close_1005[] = {0x03, 0xed};
        unsigned char big[130];
        memset(big, 'p', sizeof big);
        switch (k) {
        case 0: /* frame over max_frame (64 KiB): the header is enough */
            n = ws_frame(f, 0x82, NULL, 100000, 1, 0);
            want = 1009;
            break;
        case 1:
            n = ws_frame(f, 0x81, bad_utf8, sizeof bad_utf8, 1, sizeof bad_utf8);
            want = 1007;
            break;
        case 2: /* unmasked client frame */ n = ws_frame(f, 0x82, (const unsigned char *)"abc", 3, 0, 3); break;
        case 3: /* reserved opcode */ n = ws_frame(f, 0x83, (const unsigned char *)"abc", 3, 1, 3); break;
        case 4: /* RSV1 without an extension */ n = ws_frame(f, 0xc2, (const unsigned char *)"abc", 3, 1, 3); break;
        case 5: /* 2^63 length (most significant bit set) */ n = ws_frame(f, 0x82, NULL, 1ull << 63, 1, 0); break;
        case 6: /* control frame over 125 bytes */ n = ws_frame(f, 0x89, big, 126, 1, 126); break;
        case 7: /* close code 1005 on the wire */ n = ws_frame(f, 0x88, close_1005, 2, 1, 2); break;
        case 8: /* garbage */
            memcpy(f, "\x47\x41\x52\x42\x41\x47\x45\xff\x00\x13", 10);
            n = 10;
            break;
        }
        send_all(fd, f, n);
        int code = ws_await_close(fd);
        if (code != want)
            fail("bad ws case %d: close code %d, want %d", k, code, want);
        else
            bad.ws_code[want == 1002 ? 0 : want == 1007 ? 1 : 2]++;
        close(fd);
    }
    return NULL;
}

/* A ClientHello as the client would send it (made through memory BIOs). */
static size_t client_hello(unsigned char *out, size_t cap)
{
    SSL *ssl = SSL_new(client_ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl);
    int n = BIO_read(wb, out, (int)cap);
    SSL_free(ssl);
    return n > 0 ? (size_t)n : 0;
}

/* Waits for the server to close fd; returns the ms it took, or -1. */
static long await_server_close(int fd, unsigned timeout_ms)
{
    uint64_t t0 = now_us();
    char b[512];
    while (now_us() - t0 < timeout_ms * 1000ull) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                return (long)((now_us() - t0) / 1000);
        }
    }
    return -1;
}

/* TLS peers that misbehave: garbage instead of a ClientHello (the server
 * must fail the handshake: NF_ETLS), half a ClientHello then silence (its 1 s
 * handshake timeout), a whole ClientHello then a reset. */
static void *bad_tls_thread(void *arg)
{
    (void)arg;
    unsigned char hello[4096];
    size_t hl = client_hello(hello, sizeof hello);
    if (hl < 50) {
        fail("bad tls: no ClientHello made");
        return NULL;
    }
    int round = 0;
    while (atomic_load(&phase) == 1) {
        int k = round++ % 3;
        int fd = tcp_connect(tls_port);
        if (fd < 0) {
            fail("bad tls: connect: %s", strerror(-fd));
            sleep_ms(20);
            continue;
        }
        if (k == 0) {
            static const char junk[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
            send_all(fd, junk, sizeof junk - 1);
            long ms = await_server_close(fd, 3000 * slack);
            if (ms < 0)
                fail("bad tls: garbage instead of a ClientHello, still open after 3 s");
            bad.tls_garbage++;
            close(fd);
        } else if (k == 1) {
            send_all(fd, hello, hl / 2);
            long ms = await_server_close(fd, 3500 * slack);
            if (ms < 0 || ms < 900)
                fail("bad tls: half a ClientHello, closed after %ld ms (handshake timeout 1000 ms)", ms);
            else
                bad.tls_stall_ok++;
            bad.tls_stall++;
            close(fd);
        } else {
            send_all(fd, hello, hl);
            sleep_ms(1);
            close_reset(fd);
            bad.tls_reset_hs++;
        }
    }
    return NULL;
}

/* ---- the server ------------------------------------------------------------------- */

typedef struct {
    long v[64];
    char name[64][32];
    int n;
} stats_t;

static long stat_get(const stats_t *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return s->v[i];
    fail("stats: no %s", name);
    return -1;
}

static int get_stats(stats_t *s)
{
    int fd = tcp_connect(ws_port);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /stats HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    char buf[8192];
    size_t n = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    if (!body || strncmp(buf, "HTTP/1.1 200", 12) != 0)
        return -1;
    s->n = 0;
    for (char *line = strtok(body + 4, "\n"); line && s->n < 64; line = strtok(NULL, "\n")) {
        if (sscanf(line, "%31s %ld", s->name[s->n], &s->v[s->n]) == 2)
            s->n++;
    }
    return 0;
}

static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static pid_t start_server(const char *path, const char *cert, const char *key)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(path, path, "--tls-cert", cert, "--tls-key", key, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[128];
    size_t n = 0;
    while (n + 1 < sizeof line) {
        ssize_t r = read(p[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = 0;
    close(p[0]);
    unsigned e, w, t;
    if (sscanf(line, "ports echo=%u ws=%u tls=%u", &e, &w, &t) != 3 || !t) {
        fprintf(stderr, "soak: server said \"%s\"\n", line);
        kill(pid, SIGKILL);
        return -1;
    }
    echo_port = (uint16_t)e;
    ws_port = (uint16_t)w;
    tls_port = (uint16_t)t;
    return pid;
}

/* Waits for the server's counters to settle with nothing open but the
 * stats request itself. */
static int wait_idle(stats_t *s, unsigned timeout_ms)
{
    uint64_t end = now_us() + timeout_ms * 1000ull;
    do {
        if (get_stats(s) == 0 && stat_get(s, "conns_open") == 1 && stat_get(s, "flow_bytes_held") == 0)
            return 0;
        sleep_ms(100);
    } while (now_us() < end);
    return -1;
}

int main(int argc, char **argv)
{
    const char *server = NULL;
    unsigned quiet_s = 3, storm_s = 8;
    double factor = 10;
    int rss_check = 1;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--no-rss-check") == 0) {
            rss_check = 0;
            i--;
            continue;
        }
        if (i + 1 >= argc)
            break;
        if (strcmp(argv[i], "--server") == 0)
            server = argv[i + 1];
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet_s = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--storm") == 0)
            storm_s = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--slack") == 0)
            slack = (unsigned)atoi(argv[i + 1]) ? (unsigned)atoi(argv[i + 1]) : 1;
        else if (strcmp(argv[i], "--p99-factor") == 0)
            factor = atof(argv[i + 1]);
    }
    if (!server) {
        fprintf(stderr, "usage: soak_driver --server PATH [--quiet S] [--storm S] [--p99-factor F] "
                        "[--no-rss-check]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    tc_certs_t certs;
    if (tc_make(&certs) != 0) {
        fprintf(stderr, "soak: could not make test certificates\n");
        return 1;
    }
    client_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
    if (!client_ctx || SSL_CTX_load_verify_locations(client_ctx, tc_path(&certs, "ca.pem"), NULL) != 1) {
        fprintf(stderr, "soak: client TLS context\n");
        return 1;
    }
    server_pid = start_server(server, tc_path(&certs, "server.pem"), tc_path(&certs, "server.key"));
    if (server_pid < 0)
        return 1;
    const char *be = getenv("NF_BACKEND");
    printf("soak: server pid %d backend=%s echo=%u ws=%u tls=%u quiet %us storm %us\n", (int)server_pid,
           be ? be : "auto", echo_port, ws_port, tls_port, quiet_s, storm_s);

    stats_t s0, s1;
    if (wait_idle(&s0, 3000 * slack) != 0) {
        fail("server not idle at start");
        kill(server_pid, SIGKILL);
        return 1;
    }
    sleep_ms(100);
    int fds0 = count_fds(server_pid);

    enum { NGOOD_ECHO = 3, NGOOD_WS = 2, NGOOD_TLS = 1 };
    good_t good[NGOOD_ECHO + NGOOD_WS + NGOOD_TLS];
    pthread_t gt[NGOOD_ECHO + NGOOD_WS + NGOOD_TLS];
    memset(good, 0, sizeof good);
    for (int i = 0; i < NGOOD_ECHO + NGOOD_WS + NGOOD_TLS; i++) {
        good[i].id = i;
        good[i].ws = i >= NGOOD_ECHO && i < NGOOD_ECHO + NGOOD_WS;
        for (int p = 0; p < 2; p++)
            good[i].lat.v[p] = malloc(MAX_LAT * sizeof(uint32_t));
        pthread_create(&gt[i], NULL,
                       i >= NGOOD_ECHO + NGOOD_WS ? good_tls
                       : good[i].ws               ? good_ws
                                                  : good_echo,
                       &good[i]);
    }
    sleep_ms(quiet_s * 1000);
    /* RSS baseline: after the quiet run, when the read buffers (the io_uring
     * ring's included) have been touched once */
    stats_t sq;
    long rss0 = get_stats(&sq) == 0 ? stat_get(&sq, "rss_kib") : -1;

    atomic_store(&phase, 1);
    enum { NBAD = 6 };
    pthread_t bt[NBAD];
    void *(*bad_fns[NBAD])(void *) = {churn_thread,       reset_thread,  slowloris_thread,
                                      slow_reader_thread, bad_ws_thread, bad_tls_thread};
    for (int i = 0; i < NBAD; i++)
        pthread_create(&bt[i], NULL, bad_fns[i], NULL);
    sleep_ms(storm_s * 1000);
    atomic_store(&phase, 2);
    for (int i = 0; i < NBAD; i++)
        pthread_join(bt[i], NULL);
    for (int i = 0; i < NGOOD_ECHO + NGOOD_WS + NGOOD_TLS; i++)
        pthread_join(gt[i], NULL);

    /* ---- judge ---- */
    uint64_t gmsgs = 0, gbytes = 0, gconns = 0, wsclean = 0;
    size_t nl[2] = {0, 0};
    uint32_t *all[2];
    for (int p = 0; p < 2; p++) {
        all[p] = malloc((NGOOD_ECHO + NGOOD_WS + NGOOD_TLS) * MAX_LAT * sizeof(uint32_t));
        for (int i = 0; i < NGOOD_ECHO + NGOOD_WS + NGOOD_TLS; i++) {
            memcpy(all[p] + nl[p], good[i].lat.v[p], good[i].lat.n[p] * sizeof(uint32_t));
            nl[p] += good[i].lat.n[p];
        }
        qsort(all[p], nl[p], sizeof(uint32_t), cmp_u32);
    }
    for (int i = 0; i < NGOOD_ECHO + NGOOD_WS + NGOOD_TLS; i++) {
        gmsgs += good[i].msgs;
        gbytes += good[i].bytes;
        gconns += good[i].conns;
        if (good[i].ws)
            wsclean += good[i].clean_closes;
    }
    double p50q = nl[0] ? all[0][nl[0] / 2] / 1000.0 : 0, p99q = nl[0] ? all[0][nl[0] * 99 / 100] / 1000.0 : 0;
    double p50s = nl[1] ? all[1][nl[1] / 2] / 1000.0 : 0, p99s = nl[1] ? all[1][nl[1] * 99 / 100] / 1000.0 : 0;
    printf("soak: good clients: %llu messages, %llu bytes verified, %llu connections, %llu clean ws closes\n",
           (unsigned long long)gmsgs, (unsigned long long)gbytes, (unsigned long long)gconns,
           (unsigned long long)wsclean);
    printf("soak: good latency quiet p50 %.2f ms p99 %.2f ms (%zu); storm p50 %.2f ms p99 %.2f ms (%zu)\n", p50q, p99q,
           nl[0], p50s, p99s, nl[1]);
    if (nl[0] < 100 || nl[1] < 100)
        fail("too few good round trips (%zu quiet, %zu storm)", nl[0], nl[1]);
    double floor_ms = p99q > 2.0 ? p99q : 2.0;
    if (p99s > factor * floor_ms)
        fail("storm p99 %.2f ms > %.0f x quiet p99 %.2f ms", p99s, factor, floor_ms);
    uint64_t churn_total = 0;
    for (int k = 0; k < CH_KINDS; k++) {
        churn_total += bad.churn[k];
        printf("soak: churn %-26s %llu\n", ch_names[k], (unsigned long long)bad.churn[k]);
    }
    printf("soak: resets mid-write %llu, slowloris %llu (closed on time %llu), slow readers %llu\n",
           (unsigned long long)bad.reset_mid_write, (unsigned long long)bad.slowloris,
           (unsigned long long)bad.slowloris_ok, (unsigned long long)bad.slow_readers);
    printf("soak: bad ws closes seen 1002 x%llu, 1007 x%llu, 1009 x%llu; bad handshakes 431 x%llu, 426 x%llu, 400 "
           "x%llu\n",
           (unsigned long long)bad.ws_code[0], (unsigned long long)bad.ws_code[1], (unsigned long long)bad.ws_code[2],
           (unsigned long long)bad.http_status[0], (unsigned long long)bad.http_status[1],
           (unsigned long long)bad.http_status[2]);
    if (!churn_total || !bad.reset_mid_write || !bad.slowloris_ok || !bad.slow_readers || !bad.ws_code[0] ||
        !bad.ws_code[1] || !bad.ws_code[2] || !bad.tls_garbage || !bad.tls_stall_ok || !bad.tls_reset_hs)
        fail("a kind of bad peer never ran to completion");

    if (wait_idle(&s1, 8000 * slack) != 0)
        fail("connections still open 8 s after the storm: conns_open %ld, flow_bytes_held %ld",
             stat_get(&s1, "conns_open"), stat_get(&s1, "flow_bytes_held"));
    /* the server's view agrees with ours */
    long slow = stat_get(&s1, "echo_slow"), paused = stat_get(&s1, "echo_timeout");
    if (slow + paused != (long)bad.slow_readers) /* see slow_reader_thread */
        fail("server closed %ld connections as slow and %ld paused ones by the idle timeout, %llu slow readers ran",
             slow, paused, (unsigned long long)bad.slow_readers);
    if (stat_get(&s1, "conns_closed_slow") != slow)
        fail("conns_closed_slow %ld != echo_slow %ld", stat_get(&s1, "conns_closed_slow"), slow);
    if (stat_get(&s1, "echo_reset") < (long)bad.reset_mid_write)
        fail("server saw %ld resets, %llu resets mid-write were made", stat_get(&s1, "echo_reset"),
             (unsigned long long)bad.reset_mid_write);
    if (stat_get(&s1, "echo_other") != 0 || stat_get(&s1, "echo_local") != 0)
        fail("echo closes with unexpected reasons: other %ld, local %ld", stat_get(&s1, "echo_other"),
             stat_get(&s1, "echo_local"));
    if (stat_get(&s1, "ws_close_1007") != (long)bad.ws_code[1])
        fail("server: %ld closes 1007, driver saw %llu", stat_get(&s1, "ws_close_1007"),
             (unsigned long long)bad.ws_code[1]);
    if (stat_get(&s1, "ws_close_1009") != (long)bad.ws_code[2])
        fail("server: %ld closes 1009, driver saw %llu", stat_get(&s1, "ws_close_1009"),
             (unsigned long long)bad.ws_code[2]);
    if (stat_get(&s1, "ws_close_1002") != (long)bad.ws_code[0])
        fail("server: %ld closes 1002, driver saw %llu", stat_get(&s1, "ws_close_1002"),
             (unsigned long long)bad.ws_code[0]);
    if (stat_get(&s1, "ws_close_1000") != (long)wsclean)
        fail("server: %ld closes 1000, good clients closed %llu", stat_get(&s1, "ws_close_1000"),
             (unsigned long long)wsclean);
    long c1006 = stat_get(&s1, "ws_close_1006");
    if (c1006 < (long)bad.churn[CH_WS_RESET_OPEN] ||
        c1006 > (long)(bad.churn[CH_WS_RESET_OPEN] + bad.churn[CH_WS_NOREAD]))
        fail("server: %ld closes 1006, expected %llu..%llu", c1006, (unsigned long long)bad.churn[CH_WS_RESET_OPEN],
             (unsigned long long)(bad.churn[CH_WS_RESET_OPEN] + bad.churn[CH_WS_NOREAD]));
    /* TLS: failed handshakes, timeouts and resets as made */
    uint64_t tlsclean = good[NGOOD_ECHO + NGOOD_WS].clean_closes;
    long tfail = stat_get(&s1, "tls_failed"), tto = stat_get(&s1, "tls_timeout");
    printf("soak: tls: garbage %llu, stalled handshakes %llu (closed on time %llu), resets after the ClientHello "
           "%llu; server: failed %ld, timed out %ld, reset %ld, clean %ld\n",
           (unsigned long long)bad.tls_garbage, (unsigned long long)bad.tls_stall, (unsigned long long)bad.tls_stall_ok,
           (unsigned long long)bad.tls_reset_hs, tfail, tto, stat_get(&s1, "tls_reset"), stat_get(&s1, "tls_clean"));
    if (tto != (long)bad.tls_stall)
        fail("server: %ld TLS handshake timeouts, %llu stalled handshakes were made", tto,
             (unsigned long long)bad.tls_stall);
    if (tfail < (long)bad.tls_garbage || tfail > (long)(bad.tls_garbage + bad.tls_reset_hs))
        fail("server: %ld failed TLS handshakes, expected %llu..%llu", tfail, (unsigned long long)bad.tls_garbage,
             (unsigned long long)(bad.tls_garbage + bad.tls_reset_hs));
    if (stat_get(&s1, "tls_clean") < (long)tlsclean)
        fail("server: %ld clean TLS closes, the good client closed %llu", stat_get(&s1, "tls_clean"),
             (unsigned long long)tlsclean);
    if (stat_get(&s1, "tls_other") != 0 || stat_get(&s1, "tls_slow") != 0)
        fail("server: TLS closes with unexpected reasons: other %ld, slow %ld", stat_get(&s1, "tls_other"),
             stat_get(&s1, "tls_slow"));
    long other_ws = stat_get(&s1, "ws_close_0") + stat_get(&s1, "ws_close_1001");
    if (other_ws != 0)
        fail("server: %ld ws closes with other codes", other_ws);
    sleep_ms(100);
    int fds1 = count_fds(server_pid);
    long rss1 = stat_get(&s1, "rss_kib");
    printf("soak: server accepted %ld connections; fds %d -> %d; rss %ld -> %ld KiB; accept errors %ld\n",
           stat_get(&s1, "conns_accepted"), fds0, fds1, rss0, rss1, stat_get(&s1, "accept_errors"));
    if (fds1 != fds0)
        fail("server file descriptors %d after the run, %d before", fds1, fds0);
    if (rss_check && rss1 > rss0 + 4096)
        fail("server RSS %ld KiB after the run, %ld KiB before (+4 MiB allowed)", rss1, rss0);

    kill(server_pid, SIGTERM);
    int status = 0;
    uint64_t end = now_us() + 15000000;
    pid_t w;
    while ((w = waitpid(server_pid, &status, WNOHANG)) == 0 && now_us() < end)
        sleep_ms(20);
    if (w == 0) {
        fail("server did not exit 15 s after SIGTERM");
        kill(server_pid, SIGKILL);
        waitpid(server_pid, &status, 0);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail("server exit status %d (signal %d): see its stderr (ASan?)", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
             WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    SSL_CTX_free(client_ctx);
    tc_cleanup(&certs);
    int nf = atomic_load(&failures);
    printf("soak: %s (%d failure%s)\n", nf ? "FAILED" : "passed", nf, nf == 1 ? "" : "s");
    for (int p = 0; p < 2; p++)
        free(all[p]);
    for (int i = 0; i < NGOOD_ECHO + NGOOD_WS + NGOOD_TLS; i++)
        for (int p = 0; p < 2; p++)
            free(good[i].lat.v[p]);
    return nf ? 1 : 0;
}

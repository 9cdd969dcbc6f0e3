/* udp_load — a UDP load generator for echo servers (udp_echo_server, the
 * bench peers). Plain sockets, so the generator costs as little as it can:
 * datagrams leave in sendmmsg batches and come back in recvmmsg batches,
 * from several sockets (flows, so SO_REUSEPORT servers spread them).
 *
 *   udp_load [--host 127.0.0.1] [--port 7001] [--size 64] [--flows 4]
 *            [--rate N | --window W] [--batch 32] [--seconds 5]
 *
 * --rate N: open loop, N datagrams per second in total (paced per batch).
 * Without --rate: closed loop, at most W datagrams (default 64) in flight
 * per flow, as fast as the server answers; a flow that hears nothing for
 * 20 ms counts its in-flight datagrams as lost and goes on.
 * Each datagram carries its send time; the echo's arrival gives the round
 * trip. After the run, 200 ms more are given to late echoes. Prints one
 * human line and one "RESULT key=value ..." line (bench/udp.sh reads it):
 * datagrams/s sent and echoed, lost, latency p50/p99/p99.9 in microseconds. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netframe/netframe.h>

#define MAXB    64
#define HIST_US 200000 /* 1 us buckets up to 200 ms */

typedef struct flow {
    int fd;
    uint64_t sent, got;
    uint64_t inflight;
    uint64_t last_rx_ns;
} flow_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t *hist;
static uint64_t hist_n, hist_over;

static void record(uint64_t ns)
{
    uint64_t us = ns / 1000;
    if (us >= HIST_US)
        hist_over++;
    else
        hist[us]++;
    hist_n++;
}

static double pct(double p)
{
    if (!hist_n)
        return 0;
    uint64_t want = (uint64_t)(p * (double)hist_n), acc = 0;
    for (uint64_t i = 0; i < HIST_US; i++) {
        acc += hist[i];
        if (acc > want)
            return (double)i + 0.5;
    }
    return HIST_US;
}

static void usage(void)
{
    fprintf(stderr, "usage: udp_load [--host ADDR] [--port N] [--size BYTES] [--flows N] [--rate N | --window N]\n"
                    "                [--batch N] [--seconds S]\n");
    exit(2);
}

static size_t g_size = 64;
static unsigned g_batch = 32;
static char txbuf[MAXB][65536];
static char rxbuf[MAXB][65536];

static unsigned send_batch(flow_t *f, unsigned n, const nf_addr_t *to)
{
    struct mmsghdr m[MAXB];
    struct iovec iov[MAXB];
    uint64_t t = now_ns();
    for (unsigned i = 0; i < n; i++) {
        memcpy(txbuf[i], &t, sizeof(t));
        iov[i].iov_base = txbuf[i];
        iov[i].iov_len = g_size;
        memset(&m[i].msg_hdr, 0, sizeof(m[i].msg_hdr));
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    (void)to; /* the flow's socket is connected */
    int r = sendmmsg(f->fd, m, n, MSG_DONTWAIT);
    if (r <= 0)
        return 0;
    if (!f->inflight)
        f->last_rx_ns = t; /* the silence timer starts with the first in flight */
    f->sent += (unsigned)r;
    f->inflight += (unsigned)r;
    return (unsigned)r;
}

static unsigned recv_all(flow_t *f)
{
    struct mmsghdr m[MAXB];
    struct iovec iov[MAXB];
    unsigned total = 0;
    for (;;) {
        for (unsigned i = 0; i < g_batch; i++) {
            iov[i].iov_base = rxbuf[i];
            iov[i].iov_len = sizeof(rxbuf[i]);
            memset(&m[i].msg_hdr, 0, sizeof(m[i].msg_hdr));
            m[i].msg_hdr.msg_iov = &iov[i];
            m[i].msg_hdr.msg_iovlen = 1;
        }
        int r = recvmmsg(f->fd, m, g_batch, MSG_DONTWAIT, NULL);
        if (r <= 0)
            break;
        uint64_t t = now_ns();
        for (int i = 0; i < r; i++) {
            uint64_t ts;
            if (m[i].msg_len >= sizeof(ts)) {
                memcpy(&ts, rxbuf[i], sizeof(ts));
                record(t - ts);
            }
        }
        f->got += (unsigned)r;
        f->inflight = f->inflight > (unsigned)r ? f->inflight - (unsigned)r : 0;
        f->last_rx_ns = t;
        total += (unsigned)r;
        if ((unsigned)r < g_batch)
            break;
    }
    return total;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 7001;
    unsigned nflows = 4, window = 64;
    double rate = 0, seconds = 5;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--host") == 0)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--size") == 0)
            g_size = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--flows") == 0)
            nflows = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0)
            rate = atof(argv[++i]);
        else if (strcmp(argv[i], "--window") == 0)
            window = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0)
            g_batch = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[++i]);
        else
            usage();
    }
    if (g_size < 8 || g_size > 65507 || nflows < 1 || nflows > 1024 || g_batch < 1 || g_batch > MAXB || window < 1)
        usage();
    nf_addr_t to;
    if (nf_addr_parse(&to, host, (uint16_t)port) != 0) {
        fprintf(stderr, "udp_load: bad address %s\n", host);
        return 2;
    }
    hist = calloc(HIST_US, sizeof(*hist));
    flow_t *fl = calloc(nflows, sizeof(*fl));
    struct pollfd *pf = calloc(nflows, sizeof(*pf));
    if (!hist || !fl || !pf)
        return 1;
    for (unsigned i = 0; i < nflows; i++) {
        fl[i].fd = socket(to.u.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int big = 4 << 20;
        setsockopt(fl[i].fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
        setsockopt(fl[i].fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
        if (fl[i].fd < 0 || connect(fl[i].fd, &to.u.sa, to.len) < 0) {
            perror("udp_load: socket/connect");
            return 1;
        }
        pf[i].fd = fl[i].fd;
        pf[i].events = POLLIN;
    }
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), sent = 0;
    unsigned rr = 0;
    while (now_ns() < end) {
        uint64_t t = now_ns();
        unsigned did = 0;
        if (rate > 0) {
            uint64_t due = (uint64_t)((double)(t - t0) * rate / 1e9);
            while (sent < due) {
                unsigned n = due - sent > g_batch ? g_batch : (unsigned)(due - sent);
                unsigned k = send_batch(&fl[rr++ % nflows], n, &to);
                sent += n; /* paced: a refused batch is not retried (counted as lost) */
                did += k;
                if (!k)
                    break;
            }
        } else {
            for (unsigned i = 0; i < nflows; i++) {
                flow_t *f = &fl[i];
                if (f->inflight && t > f->last_rx_ns + 20000000u)
                    f->inflight = 0; /* lost: go on */
                if (f->inflight + g_batch <= window)
                    did += send_batch(f, g_batch, &to);
            }
        }
        for (unsigned i = 0; i < nflows; i++)
            did += recv_all(&fl[i]);
        if (!did && rate == 0)
            poll(pf, nflows, 1);
        else if (!did)
            poll(pf, nflows, 0);
    }
    double elapsed = (double)(now_ns() - t0) / 1e9;
    uint64_t late_end = now_ns() + 200000000u;
    while (now_ns() < late_end) {
        unsigned did = 0;
        for (unsigned i = 0; i < nflows; i++)
            did += recv_all(&fl[i]);
        if (!did)
            poll(pf, nflows, 10);
    }
    uint64_t tsent = 0, tgot = 0;
    for (unsigned i = 0; i < nflows; i++) {
        tsent += fl[i].sent;
        tgot += fl[i].got;
        close(fl[i].fd);
    }
    if (rate > 0)
        tsent = sent > tsent ? sent : tsent;
    uint64_t lost = tsent > tgot ? tsent - tgot : 0;
    double p50 = pct(0.50), p99 = pct(0.99), p999 = pct(0.999);
    printf("udp_load: %.1f s, size %zu, %u flows, %s: sent %.0f/s, echoed %.0f/s, lost %llu of %llu (%.2f%%), "
           "latency p50 %.0f us p99 %.0f us p99.9 %.0f us\n",
           elapsed, g_size, nflows, rate > 0 ? "open loop" : "closed loop", (double)tsent / elapsed,
           (double)tgot / elapsed, (unsigned long long)lost, (unsigned long long)tsent,
           tsent ? 100.0 * (double)lost / (double)tsent : 0.0, p50, p99, p999);
    printf("RESULT sent_per_s=%.0f echoed_per_s=%.0f sent=%llu echoed=%llu lost=%llu p50_us=%.1f p99_us=%.1f "
           "p999_us=%.1f\n",
           (double)tsent / elapsed, (double)tgot / elapsed, (unsigned long long)tsent, (unsigned long long)tgot,
           (unsigned long long)lost, p50, p99, p999);
    free(hist);
    free(fl);
    free(pf);
    return 0;
}

/*
 * nf_udp_loadgen - a byte-verifying UDP echo load generator for
 * bench/tables.sh.  Plain sockets, one thread, no library.
 *
 * --flows F connected UDP sockets.  Every datagram carries its flow (4
 * bytes), a sequence number (8) and its send time (8), then --size - 20
 * bytes that depend on (flow, seq).  An echo is checked: its length, its flow,
 * that its sequence number was sent and has not come back before (a window of
 * the last 65536 per flow); 1 in N of them (--verify-every N, default 16; 1 =
 * all) byte for byte as well.  Any of these wrong is an error.  A loss is not
 * an error (UDP), it is counted.
 *
 * Two loads:
 *   default        closed loop: at most --window W datagrams (default 64) in
 *                  flight per flow, sent in sendmmsg batches of --batch B
 *                  (default 32) as echoes free the window; a flow that hears
 *                  nothing for 20 ms counts what it has in flight as lost.
 *   --rate R       open loop: R datagrams/s in total on a clock schedule, sent
 *                  round-robin over the flows in sendmmsg batches of what is
 *                  due (at most B), whatever comes back.
 * Echoes come back with recvmmsg (up to 64 at a time).
 *
 * Output (stdout, one line):
 *   msgs=N secs=F rate=F p50_us=F p99_us=F p999_us=F errors=N sent=N lost=N verified=N
 * msgs: echoes received in the measuring window (after --warmup); sent: sent
 * in the window; lost: sent in the window and not back 200 ms after it.
 * Exit status: 0 no errors, 1 errors (or nothing echoed), 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXF    64
#define MAXB    64
#define HDR     20
#define SEEN    65536 /* per-flow window of sequence numbers remembered */
#define HIST_US 200000
#define IDLE_NS 20000000ull

struct flow {
    int fd;
    uint64_t next_seq; /* seq of the next datagram to send */
    uint64_t inflight;
    uint64_t last_rx;
    uint8_t seen[SEEN / 8];
};

static struct {
    const char *host, *port;
    size_t size;
    int flows, window, batch;
    double rate, seconds, warmup;
    long verify_every;
} o = {"127.0.0.1", NULL, 64, 4, 64, 32, 0, 5, 1, 16};

static struct flow fl[MAXF];
static uint64_t *hist, hist_n, errors, verified;
static unsigned logs;
static uint64_t seq_warm[MAXF], seq_end[MAXF]; /* per flow: the seqs sent in the window */
static uint64_t back_in_win;                   /* echoes of those */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void err(int f, uint64_t seq, const char *what)
{
    if (logs++ < 10)
        fprintf(stderr, "udp_loadgen: flow %d seq %llu: %s\n", f, (unsigned long long)seq, what);
    errors++;
}

/* the bytes after the header, for (flow, seq) */
static void body(uint8_t *p, size_t n, uint32_t f, uint64_t seq)
{
    uint64_t x = ((uint64_t)f << 48 ^ seq) * 0x9E3779B97F4A7C15ull | 1;
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(p + i, &x, n - i < 8 ? n - i : 8);
    }
}

static double pct(double p)
{
    if (hist_n == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)hist_n), acc = 0;
    for (uint64_t i = 0; i < HIST_US; i++) {
        acc += hist[i];
        if (acc > want)
            return (double)i + 0.5;
    }
    return HIST_US;
}

static uint8_t sbuf[MAXB][2048];
static uint8_t rbuf[MAXB][2048];

/* Send n datagrams on flow f (sendmmsg); returns how many went. */
static int send_batch(int f, int n, uint64_t now)
{
    struct mmsghdr m[MAXB];
    struct iovec iov[MAXB];
    struct flow *w = &fl[f];
    for (int i = 0; i < n; i++) {
        uint64_t seq = w->next_seq + (uint64_t)i;
        uint32_t f32 = (uint32_t)f;
        memcpy(sbuf[i], &f32, 4);
        memcpy(sbuf[i] + 4, &seq, 8);
        memcpy(sbuf[i] + 12, &now, 8);
        body(sbuf[i] + HDR, o.size - HDR, f32, seq);
        iov[i] = (struct iovec){sbuf[i], o.size};
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int s = sendmmsg(w->fd, m, (unsigned)n, MSG_DONTWAIT);
    if (s <= 0)
        return 0;
    for (int i = 0; i < s; i++) { /* forget what this window slot saw before */
        uint64_t seq = w->next_seq + (uint64_t)i;
        w->seen[(seq % SEEN) / 8] &= (uint8_t) ~(1u << (seq % 8));
    }
    w->next_seq += (uint64_t)s;
    w->inflight += (uint64_t)s;
    return s;
}

/* Receive what flow f has; returns the echoes counted in the window. */
static uint64_t recv_all(int f, uint64_t t_warm, uint64_t t_end, uint64_t *in_win)
{
    struct mmsghdr m[MAXB];
    struct iovec iov[MAXB];
    struct flow *w = &fl[f];
    uint64_t got = 0;
    for (;;) {
        for (int i = 0; i < MAXB; i++) {
            iov[i] = (struct iovec){rbuf[i], sizeof rbuf[i]};
            memset(&m[i], 0, sizeof m[i]);
            m[i].msg_hdr.msg_iov = &iov[i];
            m[i].msg_hdr.msg_iovlen = 1;
        }
        int r = recvmmsg(w->fd, m, MAXB, MSG_DONTWAIT, NULL);
        if (r <= 0)
            break;
        uint64_t now = now_ns();
        w->last_rx = now;
        for (int i = 0; i < r; i++) {
            uint8_t *p = rbuf[i];
            uint32_t f32;
            uint64_t seq, ts;
            if (m[i].msg_len != o.size) {
                err(f, 0, "echo of the wrong length");
                continue;
            }
            memcpy(&f32, p, 4);
            memcpy(&seq, p + 4, 8);
            memcpy(&ts, p + 12, 8);
            if (f32 != (uint32_t)f) {
                err(f, seq, "echo of another flow's datagram");
                continue;
            }
            if (seq >= w->next_seq) {
                err(f, seq, "echo of a datagram never sent");
                continue;
            }
            if (w->next_seq - seq > SEEN)
                continue; /* too old to tell a duplicate: ignored */
            uint8_t bit = (uint8_t)(1u << (seq % 8));
            if (w->seen[(seq % SEEN) / 8] & bit) {
                err(f, seq, "duplicate echo");
                continue;
            }
            w->seen[(seq % SEEN) / 8] |= bit;
            if (seq % (uint64_t)o.verify_every == 0) {
                uint8_t want[2048];
                body(want, o.size - HDR, f32, seq);
                verified++;
                if (memcmp(want, p + HDR, o.size - HDR) != 0) {
                    err(f, seq, "echo differs from the datagram");
                    continue;
                }
            }
            if (w->inflight)
                w->inflight--;
            if (seq >= seq_warm[f] && seq < seq_end[f])
                back_in_win++;
            got++;
            if (now >= t_warm && now < t_end) {
                (*in_win)++;
                uint64_t us = (now - ts) / 1000;
                hist[us < HIST_US ? us : HIST_US - 1]++;
                hist_n++;
            }
        }
    }
    return got;
}

static void usage(void)
{
    fprintf(stderr, "usage: nf_udp_loadgen --port P [--host H] [--size B] [--flows F] [--window W | --rate R]\n"
                    "                      [--batch B] [--seconds S] [--warmup W] [--verify-every N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, NULL, 'h'},   {"port", 1, NULL, 'p'},         {"size", 1, NULL, 's'}, {"flows", 1, NULL, 'f'},
        {"window", 1, NULL, 'W'}, {"batch", 1, NULL, 'b'},        {"rate", 1, NULL, 'r'}, {"seconds", 1, NULL, 't'},
        {"warmup", 1, NULL, 'w'}, {"verify-every", 1, NULL, 'v'}, {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = optarg; break;
        case 's': o.size = (size_t)atol(optarg); break;
        case 'f': o.flows = atoi(optarg); break;
        case 'W': o.window = atoi(optarg); break;
        case 'b': o.batch = atoi(optarg); break;
        case 'r': o.rate = atof(optarg); break;
        case 't': o.seconds = atof(optarg); break;
        case 'w': o.warmup = atof(optarg); break;
        case 'v': o.verify_every = atol(optarg); break;
        default: usage();
        }
    }
    if (!o.port || o.size < HDR || o.size > 2048 || o.flows < 1 || o.flows > MAXF || o.window < 1 || o.batch < 1 ||
        o.batch > MAXB || o.rate < 0 || o.seconds <= 0 || o.warmup < 0 || o.verify_every < 1)
        usage();
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai;
    if (getaddrinfo(o.host, o.port, &hints, &ai) != 0) {
        fprintf(stderr, "udp_loadgen: cannot resolve %s\n", o.host);
        return 2;
    }
    hist = calloc(HIST_US, sizeof *hist);
    struct pollfd pf[MAXF];
    for (int f = 0; f < o.flows; f++) {
        fl[f].fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int big = 4 << 20;
        setsockopt(fl[f].fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
        setsockopt(fl[f].fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
        if (fl[f].fd < 0 || connect(fl[f].fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            fprintf(stderr, "udp_loadgen: connect: %s\n", strerror(errno));
            return 2;
        }
        pf[f] = (struct pollfd){.fd = fl[f].fd, .events = POLLIN};
    }
    freeaddrinfo(ai);

    const uint64_t t0 = now_ns(), t_warm = t0 + (uint64_t)(o.warmup * 1e9),
                   t_end = t_warm + (uint64_t)(o.seconds * 1e9);
    uint64_t msgs = 0, sent_total = 0, sent_win = 0;
    for (int f = 0; f < o.flows; f++)
        seq_warm[f] = seq_end[f] = UINT64_MAX;
    int warm_marked = 0, rr = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (!warm_marked && now >= t_warm) {
            for (int f = 0; f < o.flows; f++)
                seq_warm[f] = fl[f].next_seq;
            warm_marked = 1;
        }
        if (now >= t_end)
            break;
        uint64_t wait_ns = 1000000;
        if (o.rate > 0) {
            uint64_t due = (uint64_t)((double)(now - t0) * o.rate / 1e9);
            if (due > sent_total + 100000)
                sent_total = due - 100000; /* more than 100k behind: give up on those */
            while (sent_total < due) {
                uint64_t n = due - sent_total;
                int b = n > (uint64_t)o.batch ? o.batch : (int)n;
                int s = send_batch(rr, b, now);
                rr = (rr + 1) % o.flows;
                sent_total += (uint64_t)b; /* what did not go is dropped, as a network would */
                if (s < b)
                    break;
            }
            uint64_t next = t0 + (uint64_t)((double)(sent_total + 1) * 1e9 / o.rate);
            wait_ns = next > now ? next - now : 0;
        } else {
            for (int f = 0; f < o.flows; f++) {
                struct flow *w = &fl[f];
                if (w->inflight > 0 && now - w->last_rx > IDLE_NS && now - t0 > IDLE_NS)
                    w->inflight = 0; /* lost */
                while (w->inflight + (uint64_t)o.batch <= (uint64_t)o.window ||
                       (w->inflight == 0 && o.window < o.batch)) {
                    int b = o.window < o.batch ? o.window : o.batch;
                    if (w->last_rx == 0)
                        w->last_rx = now;
                    if (send_batch(f, b, now) < b)
                        break;
                }
            }
        }
        struct timespec ts = {(time_t)(wait_ns / 1000000000u), (long)(wait_ns % 1000000000u)};
        int n = ppoll(pf, (nfds_t)o.flows, &ts, NULL);
        if (n < 0 && errno != EINTR)
            break;
        for (int f = 0; f < o.flows; f++)
            if (pf[f].revents & POLLIN)
                recv_all(f, t_warm, t_end, &msgs);
    }
    for (int f = 0; f < o.flows; f++) {
        seq_end[f] = fl[f].next_seq;
        sent_win += seq_end[f] - seq_warm[f];
    }
    /* late echoes: 200 ms more, not counted in msgs but in the losses */
    uint64_t late = 0, drain_end = now_ns() + 200000000u;
    for (uint64_t now = now_ns(); now < drain_end; now = now_ns()) {
        struct timespec ts = {0, 10000000};
        if (ppoll(pf, (nfds_t)o.flows, &ts, NULL) > 0)
            for (int f = 0; f < o.flows; f++)
                if (pf[f].revents & POLLIN)
                    recv_all(f, t_warm, t_end, &late);
    }
    /* lost: sent in the window and not back */
    uint64_t lost = sent_win > back_in_win ? sent_win - back_in_win : 0;
    printf("msgs=%llu secs=%.3f rate=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f errors=%llu sent=%llu lost=%llu "
           "verified=%llu\n",
           (unsigned long long)msgs, o.seconds, (double)msgs / o.seconds, pct(0.5), pct(0.99), pct(0.999),
           (unsigned long long)errors, (unsigned long long)sent_win, (unsigned long long)lost,
           (unsigned long long)verified);
    return errors || msgs == 0 ? 1 : 0;
}

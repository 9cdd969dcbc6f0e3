/* Integration: the flow-control filter (flow.h) against a peer that does not
 * read.
 *
 * The peer is a plain socket with a small SO_RCVBUF. The server first fills
 * the kernel (64 KiB writes until the kernel stops taking them), so that
 * what it writes next stays in netframe. Every write is a framed message:
 *
 *     u32 magic | u32 seq | u32 total length | payload (pattern of seq)
 *
 * so that the peer, once it reads, can tell that no message was cut, that
 * sequence numbers only increase, and exactly which messages arrived. The
 * test keeps a model of the held queue (from the contract in flow.h) and
 * checks each nf_conn_write result, the per-connection and per-loop
 * statistics, and the set of messages that arrive against it.
 *
 * Covered: DROP_NEWEST (bytes and write-count limits), DROP_OLDEST, CALLBACK
 * (HOLD, DROP, nf_flow_drop_oldest + HOLD, SLOW), CLOSE, the drain
 * hysteresis, a peer that resets while writes are held, nf_conn_end with
 * held writes, and the loop's flow counters over two connections. */
#include "helpers.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAGIC     0x4e464d47u
#define HDR       12u
#define FILL_MSG  (64u * 1024)
#define MAX_MSG   (FILL_MSG + HDR)
#define MAX_SEQ   20000
#define MAX_CONNS 4

/* ---- messages ---------------------------------------------------------------- */

static unsigned char g_msgbuf[MAX_MSG];

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* nf_conn_write of message `seq`, `len` bytes in all (len >= HDR). */
static int write_msg(nf_conn_t *c, uint32_t seq, size_t len)
{
    if (len < HDR || len > MAX_MSG)
        fail_msg("bad message length %zu", len);
    put32(g_msgbuf, MAGIC);
    put32(g_msgbuf + 4, seq);
    put32(g_msgbuf + 8, (uint32_t)len);
    h_pattern_fill(g_msgbuf + HDR, len - HDR, 0, seq);
    return nf_conn_write(c, g_msgbuf, len);
}

/* ---- the reading peer (a thread) ------------------------------------------------- */

typedef struct reader {
    int fd;
    size_t chunk;      /* bytes per recv */
    unsigned delay_ms; /* pause between recvs */
    unsigned timeout_ms;
    h_result_t res;
    /* parser */
    unsigned char hdr[HDR];
    size_t hdr_got;
    uint32_t seq, len;
    size_t body_got;
    int have_last;
    uint32_t last_seq;
    /* results */
    uint8_t seen[MAX_SEQ];
    size_t msgs;
    uint64_t bytes;
    int eof;
} reader_t;

static int reader_feed(reader_t *r, const unsigned char *p, size_t n)
{
    while (n > 0) {
        if (r->hdr_got < HDR) {
            size_t k = HDR - r->hdr_got;
            if (k > n)
                k = n;
            memcpy(r->hdr + r->hdr_got, p, k);
            r->hdr_got += k;
            p += k;
            n -= k;
            if (r->hdr_got < HDR)
                return 0;
            if (get32(r->hdr) != MAGIC) {
                h_result_fail(&r->res,
                              "bad magic 0x%08x after %zu messages (%llu bytes): a "
                              "message was cut or bytes were lost",
                              get32(r->hdr), r->msgs, (unsigned long long)r->bytes);
                return -1;
            }
            r->seq = get32(r->hdr + 4);
            r->len = get32(r->hdr + 8);
            r->body_got = 0;
            if (r->len < HDR || r->len > MAX_MSG || r->seq >= MAX_SEQ) {
                h_result_fail(&r->res, "bad header seq %u len %u", r->seq, r->len);
                return -1;
            }
            if (r->have_last && r->seq <= r->last_seq) {
                h_result_fail(&r->res, "sequence %u after %u: not increasing", r->seq, r->last_seq);
                return -1;
            }
        }
        size_t want = r->len - HDR - r->body_got;
        size_t k = want < n ? want : n;
        size_t bad = h_pattern_check(p, k, r->body_got, r->seq);
        if (bad != SIZE_MAX) {
            h_result_fail(&r->res, "message %u: payload byte %zu is wrong (cut or mixed)", r->seq, r->body_got + bad);
            return -1;
        }
        r->body_got += k;
        p += k;
        n -= k;
        if (r->body_got == r->len - HDR) {
            r->seen[r->seq] = 1;
            r->have_last = 1;
            r->last_seq = r->seq;
            r->msgs++;
            r->hdr_got = 0;
        }
    }
    return 0;
}

static void *reader_thread(void *arg)
{
    reader_t *r = arg;
    unsigned char *buf = malloc(r->chunk);
    uint64_t deadline = h_now_ms() + r->timeout_ms;
    if (!buf) {
        h_result_fail(&r->res, "malloc");
        goto out;
    }
    for (;;) {
        uint64_t now = h_now_ms();
        if (now >= deadline) {
            h_result_fail(&r->res, "no EOF after %u ms (%zu messages, %llu bytes)", r->timeout_ms, r->msgs,
                          (unsigned long long)r->bytes);
            break;
        }
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)(deadline - now));
        if (pr < 0 && errno != EINTR) {
            h_result_fail(&r->res, "poll: %s", strerror(errno));
            break;
        }
        if (pr <= 0)
            continue;
        ssize_t n = recv(r->fd, buf, r->chunk, MSG_DONTWAIT);
        if (n == 0) {
            r->eof = 1;
            if (r->hdr_got)
                h_result_fail(&r->res, "EOF inside message %u (%zu of %u bytes): cut", r->seq,
                              r->hdr_got < HDR ? r->hdr_got : HDR + r->body_got, r->len);
            break;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            h_result_fail(&r->res, "recv after %llu bytes: %s", (unsigned long long)r->bytes, strerror(errno));
            break;
        }
        r->bytes += (uint64_t)n;
        if (reader_feed(r, buf, (size_t)n) != 0)
            break;
        if (r->delay_ms)
            h_sleep_ms(r->delay_ms);
    }
out:
    free(buf);
    return h_peer_done(&r->res);
}

/* ---- the server -------------------------------------------------------------- */

typedef struct sconn {
    nf_conn_t *c;
    int closed, reason;
    int drains;
    size_t drain_total; /* held + queued seen at the last on_drain */
    size_t drain_max_total;
} sconn_t;

#define OV_MAX 8
typedef struct ov_call {
    size_t incoming;
    size_t held_bytes; /* nf_flow_stats at the call */
    size_t dropped_by_cb;
} ov_call_t;

static struct {
    sconn_t conn[MAX_CONNS];
    int nopen, nclosed;
    /* CALLBACK policy script */
    int ov_decide[OV_MAX];
    int ov_drop_oldest[OV_MAX]; /* nf_flow_drop_oldest(c, n) before deciding */
    ov_call_t ov[OV_MAX];
    int nov;
    /* what each write did, by seq */
    int8_t result[MAX_SEQ];  /* -1: not written; NF_WRITE_*; 9: error */
    uint8_t expect[MAX_SEQ]; /* 1: should arrive */
    uint32_t next_seq;
} g;

static void reset_g(void)
{
    memset(&g, 0, sizeof g);
    memset(g.result, -1, sizeof g.result);
}

static void srv_open(nf_conn_t *c)
{
    if (g.nopen >= MAX_CONNS) {
        nf_conn_close(c);
        return;
    }
    sconn_t *s = &g.conn[g.nopen++];
    s->c = c;
    s->reason = 12345;
    nf_conn_set_data(c, s);
}

static void srv_drain(nf_conn_t *c)
{
    sconn_t *s = nf_conn_get_data(c);
    nf_flow_stats_t fs;
    memset(&fs, 0, sizeof fs);
    nf_flow_stats(c, &fs);
    s->drains++;
    s->drain_total = fs.held_bytes + nf_conn_queued(c);
    if (s->drain_total > s->drain_max_total)
        s->drain_max_total = s->drain_total;
}

static void srv_close(nf_conn_t *c, int reason)
{
    sconn_t *s = nf_conn_get_data(c);
    if (!s)
        return;
    s->closed++;
    s->reason = reason;
    s->c = NULL;
    g.nclosed++;
}

static const nf_conn_handler_t srv_handler = {
    .on_open = srv_open,
    .on_read = h_ignore_read,
    .on_drain = srv_drain,
    .on_close = srv_close,
};

static int on_overflow(nf_conn_t *c, size_t incoming_len)
{
    int i = g.nov++;
    if (i >= OV_MAX)
        return NF_FLOW_DROP;
    nf_flow_stats_t fs;
    memset(&fs, 0, sizeof fs);
    nf_flow_stats(c, &fs);
    g.ov[i].incoming = incoming_len;
    g.ov[i].held_bytes = fs.held_bytes;
    if (g.ov_drop_oldest[i])
        g.ov[i].dropped_by_cb = nf_flow_drop_oldest(c, (size_t)g.ov_drop_oldest[i]);
    return g.ov_decide[i];
}

/* ---- setup helpers ------------------------------------------------------------- */

/* A plain peer with a small receive buffer (set before connect, so the
 * window it advertises stays small). */
static int peer_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    int rcv = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect: %s", strerror(errno));
    return fd;
}

/* The flow filter's config most tests use: 64 KiB in flight before writes
 * are held, at most max_held_bytes held (0: no byte limit), then policy. */
static nf_flow_config_t flow_cfg(nf_flow_policy_t policy, size_t max_held_bytes)
{
    nf_flow_config_t fc;
    memset(&fc, 0, sizeof fc);
    fc.max_inflight_bytes = 64 * 1024;
    fc.max_held_bytes = max_held_bytes;
    fc.policy = policy;
    return fc;
}

typedef struct setup {
    nf_loop_t *loop;
    nf_listener_t *l;
    uint16_t port;
    nf_filter_spec_t spec;
    nf_flow_config_t fc;
} setup_t;

static void setup_begin(setup_t *su, const nf_flow_config_t *fc)
{
    reset_g();
    memset(su, 0, sizeof *su);
    su->fc = *fc;
    su->spec.ops = &nf_flow_filter;
    su->spec.config = &su->fc;
    su->loop = h_loop_new();
    su->port = h_listen_filters(su->loop, &srv_handler, &su->spec, 1, &su->l);
}

static void setup_end(setup_t *su) { h_listener_finish(su->loop, su->l, 5000); }

/* Accepts one more peer; returns its fd and sets *sc. */
static int add_peer(setup_t *su, sconn_t **sc)
{
    int want = g.nopen + 1;
    int fd = peer_connect(su->port);
    H_RUN_UNTIL(su->loop, g.nopen == want, 3000);
    *sc = &g.conn[want - 1];
    return fd;
}

static nf_flow_stats_t fstats(nf_conn_t *c)
{
    nf_flow_stats_t fs;
    memset(&fs, 0xab, sizeof fs);
    int rc = nf_flow_stats(c, &fs);
    if (rc != 0)
        fail_msg("nf_flow_stats = %d (%s)", rc, nf_err_name(rc));
    return fs;
}

static void record(uint32_t seq, int rc)
{
    if (seq >= MAX_SEQ)
        fail_msg("too many messages");
    if (rc == NF_WRITE_OK || rc == NF_WRITE_HELD || rc == NF_WRITE_DROPPED)
        g.result[seq] = (int8_t)rc;
    else
        g.result[seq] = 9;
    g.expect[seq] = rc == NF_WRITE_OK || rc == NF_WRITE_HELD;
}

/* Writes the next message (len bytes) and records what the write did;
 * returns nf_conn_write's result and, if asked, the message's seq. */
static int write_next(sconn_t *sc, size_t len, uint32_t *seqp)
{
    uint32_t seq = g.next_seq++;
    int rc = write_msg(sc->c, seq, len);
    record(seq, rc);
    if (seqp)
        *seqp = seq;
    return rc;
}

/* Fills the kernel: writes 64 KiB messages (each passes straight down: the
 * transport holds less than max_inflight_bytes) until one write is not
 * taken by the kernel at all. After it, the transport's queue holds at least
 * one whole fill message and the socket buffer is full. Returns the number
 * of bytes written. */
static uint64_t fill_kernel(setup_t *su, sconn_t *sc)
{
    uint64_t written = 0;
    uint64_t deadline = h_now_ms() + 5000;
    size_t inflight = su->fc.max_inflight_bytes ? su->fc.max_inflight_bytes : 256 * 1024;
    for (;;) {
        if (h_now_ms() > deadline)
            fail_msg("the kernel kept taking bytes: %llu written", (unsigned long long)written);
        if (nf_conn_queued(sc->c) >= inflight) {
            /* the next write would be held: wait for the kernel, or stop */
            uint64_t out0 = h_stats(su->loop).bytes_out;
            h_run_for(su->loop, 30);
            if (h_stats(su->loop).bytes_out == out0)
                break;
            continue;
        }
        uint64_t out0 = h_stats(su->loop).bytes_out;
        uint32_t seq;
        int rc = write_next(sc, FILL_MSG, &seq);
        if (rc != NF_WRITE_OK)
            fail_msg("fill write %u = %d (%s), expected NF_WRITE_OK", seq, rc, nf_err_name(rc));
        written += FILL_MSG;
        int ok;
        H_RUN_WAIT(ok, su->loop, !sc->c || nf_conn_queued(sc->c) == 0, 30);
        if (!sc->c)
            fail_msg("connection closed while filling (reason %s)", nf_err_name(sc->reason));
        if (!ok && h_stats(su->loop).bytes_out == out0)
            break; /* the kernel took none of this write */
    }
    /* settle: the kernel takes no more */
    size_t q = nf_conn_queued(sc->c);
    h_run_for(su->loop, 40);
    if (nf_conn_queued(sc->c) != q || q == 0)
        fail_msg("queue still moving after the fill (%zu -> %zu)", q, nf_conn_queued(sc->c));
    return written;
}

/* Starts a reader thread on fd; the reader is the caller's to free. */
static reader_t *reader_start(int fd, size_t chunk, unsigned delay_ms, pthread_t *th)
{
    reader_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->fd = fd;
    r->chunk = chunk;
    r->delay_ms = delay_ms;
    r->timeout_ms = 8000;
    *th = h_thread_start(reader_thread, r);
    return r;
}

/* After the reader saw EOF: every message that should have arrived did,
 * nothing else. */
static void check_arrivals(const reader_t *r)
{
    H_ASSERT_PEER_OK(&r->res);
    assert_true(r->eof);
    size_t want = 0;
    for (uint32_t s = 0; s < g.next_seq; s++) {
        want += g.expect[s];
        if (r->seen[s] != g.expect[s])
            fail_msg("message %u (write result %d): %s", s, g.result[s],
                     r->seen[s] ? "arrived but should not have" : "should have arrived but did not");
    }
    assert_int_equal(r->msgs, want);
}

/* Ends the connection once nothing is held or queued, then waits for the
 * reader's EOF and the close. */
static void finish_with_reader(setup_t *su, sconn_t *sc, reader_t *r, pthread_t th)
{
    H_RUN_UNTIL(su->loop, !sc->c || (fstats(sc->c).held_bytes == 0 && nf_conn_queued(sc->c) == 0), 8000);
    assert_non_null(sc->c);
    nf_conn_end(sc->c);
    H_RUN_UNTIL(su->loop, sc->closed == 1 && atomic_load(&r->res.done), 8000);
    h_thread_join(th, 3000);
    H_ASSERT_ERR(sc->reason, NF_CLOSE_LOCAL);
    check_arrivals(r);
}

/* The connection closed once, with NF_ESLOW, counted as a slow close, with
 * nothing left held or open. Returns the loop's stats. */
static nf_loop_stats_t expect_closed_slow(setup_t *su, sconn_t *sc)
{
    H_RUN_UNTIL(su->loop, sc->closed == 1, 3000);
    h_run_for(su->loop, 30);
    assert_int_equal(sc->closed, 1);
    H_ASSERT_ERR(sc->reason, NF_ESLOW);
    nf_loop_stats_t ls = h_stats(su->loop);
    assert_int_equal(ls.conns_closed_slow, 1);
    assert_int_equal(ls.flow_bytes_held, 0);
    assert_int_equal(ls.conns_open, 0);
    return ls;
}

/* setup_begin, one peer, fill_kernel: how most tests start. Returns the
 * peer's fd and sets *sc. */
static int setup_filled(setup_t *su, const nf_flow_config_t *fc, sconn_t **sc)
{
    setup_begin(su, fc);
    int fd = add_peer(su, sc);
    fill_kernel(su, *sc);
    return fd;
}

/* n writes of len bytes, each of which must be passed down or held.
 * Returns how many were held. */
static int write_burst(sconn_t *sc, int n, size_t len)
{
    int nheld = 0;
    for (int i = 0; i < n; i++) {
        uint32_t seq;
        int rc = write_next(sc, len, &seq);
        nheld += rc == NF_WRITE_HELD;
        if (rc != NF_WRITE_OK && rc != NF_WRITE_HELD)
            fail_msg("write %u = %d (%s)", seq, rc, nf_err_name(rc));
    }
    return nheld;
}

/* Writes that were held but never reached the reader. */
static size_t count_held_lost(const reader_t *r)
{
    size_t lost = 0;
    for (uint32_t s = 0; s < g.next_seq; s++)
        if (g.result[s] == NF_WRITE_HELD && !r->seen[s])
            lost++;
    return lost;
}

/* The peer reads everything; the connection ends once nothing is held or
 * queued; every message that should arrive did. Closes fd. */
static void read_out(setup_t *su, sconn_t *sc, int fd)
{
    pthread_t th;
    reader_t *r = reader_start(fd, 64 * 1024, 0, &th);
    finish_with_reader(su, sc, r, th);
    free(r);
    close(fd);
}

static const size_t k_sizes[] = {700, 1300, 2500, 400, 3100, 1000, 64, 2048};
#define N_SIZES (sizeof k_sizes / sizeof k_sizes[0])

/* ---- DROP_NEWEST --------------------------------------------------------------- */

static void test_drop_newest(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_DROP_NEWEST, 10000);
    setup_t su;
    setup_begin(&su, &fc);
    sconn_t *sc;
    int fd = add_peer(&su, &sc);
    uint64_t filled = fill_kernel(&su, sc);
    print_message("[ info     ] kernel took %llu KiB before it stopped\n", (unsigned long long)(filled / 1024));
    /* (the fill may itself have risen above high_water and drained once) */
    uint64_t drains0 = fstats(sc->c).drains;

    /* Model: once one write is held, a write is held when it fits under
     * max_held_bytes, dropped otherwise. */
    size_t held = 0, hwm = 0, nheld = 0, ndropped = 0, bytes_dropped = 0, nok = 0;
    int holding = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 150; i++) {
            uint32_t seq = g.next_seq++;
            size_t len = k_sizes[seq % N_SIZES];
            int rc = write_msg(sc->c, seq, len);
            record(seq, rc);
            if (!holding && rc == NF_WRITE_OK) {
                nok++;
                continue;
            }
            holding = 1;
            int want = held + len <= fc.max_held_bytes ? NF_WRITE_HELD : NF_WRITE_DROPPED;
            if (rc != want)
                fail_msg("write %u (%zu bytes, %zu held) = %d (%s), expected %d", seq, len, held, rc, nf_err_name(rc),
                         want);
            if (rc == NF_WRITE_HELD) {
                held += len;
                nheld++;
                if (held > hwm)
                    hwm = held;
            } else {
                ndropped++;
                bytes_dropped += len;
            }
            nf_flow_stats_t fs = fstats(sc->c);
            assert_true(fs.held_bytes <= fc.max_held_bytes);
            assert_int_equal(fs.held_bytes, held);
        }
        /* The loop runs, the peer still does not read: nothing moves. */
        h_run_for(su.loop, 50);
    }
    assert_true(holding);
    assert_true(ndropped > 0);
    nf_flow_stats_t fs = fstats(sc->c);
    assert_int_equal(fs.held_bytes, held);
    assert_int_equal(fs.held_writes, nheld);
    assert_int_equal(fs.held_bytes_hwm, hwm);
    assert_int_equal(fs.writes_held, nheld);
    assert_int_equal(fs.writes_dropped, ndropped);
    assert_int_equal(fs.bytes_dropped, bytes_dropped);
    assert_int_equal(fs.drains, drains0); /* nothing drained while held */
    nf_loop_stats_t ls = h_stats(su.loop);
    assert_int_equal(ls.flow_bytes_held, held);
    assert_int_equal(ls.flow_held_hwm, hwm);
    assert_int_equal(ls.flow_writes_dropped, ndropped);
    assert_int_equal(ls.conns_closed_slow, 0);
    print_message("[ info     ] %zu passed, %zu held (%zu bytes), %zu dropped\n", nok, nheld, held, ndropped);

    /* The peer reads: the held writes go out, the dropped never do. */
    read_out(&su, sc, fd);
    ls = h_stats(su.loop);
    assert_int_equal(ls.flow_bytes_held, 0);
    assert_int_equal(ls.flow_writes_dropped, ndropped);
    setup_end(&su);
}

/* max_held_writes bounds the count of held writes. */
static void test_drop_newest_count(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_DROP_NEWEST, 0);
    fc.max_held_writes = 3;
    setup_t su;
    sconn_t *sc;
    int fd = setup_filled(&su, &fc, &sc);
    int held = 0, dropped = 0, holding = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t seq;
        int rc = write_next(sc, 500, &seq);
        if (!holding && rc == NF_WRITE_OK)
            continue;
        holding = 1;
        int want = held < 3 ? NF_WRITE_HELD : NF_WRITE_DROPPED;
        if (rc != want)
            fail_msg("write %u with %d held = %d (%s), expected %d", seq, held, rc, nf_err_name(rc), want);
        if (rc == NF_WRITE_HELD)
            held++;
        else
            dropped++;
    }
    nf_flow_stats_t fs = fstats(sc->c);
    assert_int_equal(fs.held_writes, 3);
    assert_int_equal(fs.held_bytes, 1500);
    assert_int_equal(fs.writes_dropped, (uint64_t)dropped);
    read_out(&su, sc, fd);
    setup_end(&su);
}

/* ---- DROP_OLDEST --------------------------------------------------------------- */

static void test_drop_oldest(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_DROP_OLDEST, 10000);
    setup_t su;
    sconn_t *sc;
    int fd = setup_filled(&su, &fc, &sc);

    /* Model: a FIFO of held messages; the new one is always held, the oldest
     * are dropped (whole) until it fits. */
    uint32_t fifo[MAX_SEQ];
    size_t head = 0, tail = 0, held = 0, hwm = 0, ndropped = 0, bytes_dropped = 0;
    uint32_t first_held = UINT32_MAX;
    int holding = 0;
    for (int i = 0; i < 200; i++) {
        uint32_t seq = g.next_seq++;
        size_t len = k_sizes[seq % N_SIZES];
        int rc = write_msg(sc->c, seq, len);
        record(seq, rc);
        if (!holding && rc == NF_WRITE_OK)
            continue;
        holding = 1;
        if (first_held == UINT32_MAX)
            first_held = seq;
        if (rc != NF_WRITE_HELD)
            fail_msg("write %u (%zu bytes) = %d (%s), expected NF_WRITE_HELD", seq, len, rc, nf_err_name(rc));
        while (held + len > fc.max_held_bytes) {
            assert_true(head < tail);
            uint32_t old = fifo[head++];
            size_t ol = k_sizes[old % N_SIZES];
            held -= ol;
            g.expect[old] = 0;
            ndropped++;
            bytes_dropped += ol;
        }
        fifo[tail++] = seq;
        held += len;
        if (held > hwm)
            hwm = held;
        nf_flow_stats_t fs = fstats(sc->c);
        if (fs.held_bytes != held || fs.held_writes != tail - head)
            fail_msg("after write %u: flow holds %zu bytes in %zu writes, model %zu in %zu", seq, fs.held_bytes,
                     fs.held_writes, held, tail - head);
    }
    assert_true(ndropped > 0);
    nf_flow_stats_t fs = fstats(sc->c);
    assert_int_equal(fs.writes_dropped, ndropped);
    assert_int_equal(fs.bytes_dropped, bytes_dropped);
    assert_int_equal(fs.held_bytes_hwm, hwm);
    assert_true(fs.held_bytes <= fc.max_held_bytes);
    nf_loop_stats_t ls = h_stats(su.loop);
    assert_int_equal(ls.flow_writes_dropped, ndropped);
    assert_int_equal(ls.flow_bytes_held, held);

    pthread_t th;
    reader_t *r = reader_start(fd, 64 * 1024, 0, &th);
    finish_with_reader(&su, sc, r, th);
    /* The peer got a prefix of whole messages, then only later ones: the
     * missing messages are exactly the dropped ones, one contiguous run
     * among the held. */
    uint32_t miss_lo = UINT32_MAX, miss_hi = 0;
    size_t missing = 0;
    uint64_t missing_bytes = 0;
    for (uint32_t s = 0; s < g.next_seq; s++) {
        if (r->seen[s])
            continue;
        missing++;
        missing_bytes += k_sizes[s % N_SIZES];
        if (s < miss_lo)
            miss_lo = s;
        miss_hi = s;
    }
    assert_int_equal(missing, fs.writes_dropped);
    assert_int_equal(missing_bytes, fs.bytes_dropped);
    assert_true(miss_lo >= first_held);
    assert_int_equal(miss_hi - miss_lo + 1, missing);
    print_message("[ info     ] messages %u..%u dropped (%zu), first held %u, last %u\n", miss_lo, miss_hi, missing,
                  first_held, g.next_seq - 1);
    free(r);
    close(fd);
    setup_end(&su);
}

/* ---- CALLBACK ----------------------------------------------------------------- */

static void test_callback(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_CALLBACK, 10000);
    fc.on_overflow = on_overflow;
    setup_t su;
    setup_begin(&su, &fc);
    g.ov_decide[0] = NF_FLOW_HOLD;
    g.ov_decide[1] = NF_FLOW_DROP;
    g.ov_decide[2] = NF_FLOW_HOLD;
    g.ov_drop_oldest[2] = 2;
    g.ov_decide[3] = NF_FLOW_SLOW;
    sconn_t *sc;
    int fd = add_peer(&su, &sc);
    fill_kernel(&su, sc);

    /* 1000-byte messages until exactly 10 are held: no callback yet. */
    int nheld = 0;
    for (int i = 0; i < 500 && nheld < 10; i++) {
        uint32_t seq;
        int rc = write_next(sc, 1000, &seq);
        if (rc == NF_WRITE_HELD)
            nheld++;
        else if (rc != NF_WRITE_OK || nheld > 0)
            fail_msg("write %u = %d (%s) with %d held", seq, rc, nf_err_name(rc), nheld);
    }
    assert_int_equal(nheld, 10);
    assert_int_equal(g.nov, 0);
    assert_int_equal(fstats(sc->c).held_bytes, 10000);

    /* 1: HOLD anyway */
    H_ASSERT_ERR(write_next(sc, 1001, NULL), NF_WRITE_HELD);
    assert_int_equal(g.nov, 1);
    assert_int_equal(g.ov[0].incoming, 1001);
    assert_int_equal(g.ov[0].held_bytes, 10000);
    assert_int_equal(fstats(sc->c).held_bytes, 11001);
    /* 2: DROP */
    H_ASSERT_ERR(write_next(sc, 1002, NULL), NF_WRITE_DROPPED);
    assert_int_equal(g.nov, 2);
    assert_int_equal(g.ov[1].incoming, 1002);
    assert_int_equal(g.ov[1].held_bytes, 11001);
    nf_flow_stats_t fs = fstats(sc->c);
    assert_int_equal(fs.held_bytes, 11001);
    assert_int_equal(fs.writes_dropped, 1);
    assert_int_equal(fs.bytes_dropped, 1002);
    /* 3: the callback drops the two oldest held writes, then HOLDs */
    H_ASSERT_ERR(write_next(sc, 1003, NULL), NF_WRITE_HELD);
    assert_int_equal(g.nov, 3);
    assert_int_equal(g.ov[2].incoming, 1003);
    assert_int_equal(g.ov[2].dropped_by_cb, 2);
    fs = fstats(sc->c);
    assert_int_equal(fs.held_bytes, 11001 - 2000 + 1003);
    assert_int_equal(fs.held_writes, 10);
    assert_int_equal(fs.writes_dropped, 3);
    assert_int_equal(fs.bytes_dropped, 1002 + 2000);
    assert_int_equal(h_stats(su.loop).flow_writes_dropped, 3);
    /* 4: SLOW: the write fails, the connection closes with NF_ESLOW */
    int rc = write_next(sc, 1004, NULL);
    if (rc >= 0)
        fail_msg("write after NF_FLOW_SLOW = %d (%s), expected an error", rc, nf_err_name(rc));
    assert_int_equal(g.nov, 4);
    assert_int_equal(g.ov[3].incoming, 1004);
    /* the connection is closing: further writes fail, no callback */
    if (sc->c) {
        rc = write_msg(sc->c, g.next_seq++, 1005);
        H_ASSERT_ERR(rc, NF_ECLOSED);
        assert_int_equal(g.nov, 4);
    }
    assert_int_equal(expect_closed_slow(&su, sc).flow_writes_dropped, 3);
    close(fd);
    setup_end(&su);
}

/* ---- CLOSE --------------------------------------------------------------------- */

static void test_close_policy(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_CLOSE, 10000);
    setup_t su;
    sconn_t *sc;
    int fd = setup_filled(&su, &fc, &sc);
    int nheld = 0, failed_rc = 0;
    for (int i = 0; i < 500 && sc->c; i++) {
        int rc = write_next(sc, 1000, NULL);
        if (rc == NF_WRITE_HELD) {
            nheld++;
            continue;
        }
        if (rc == NF_WRITE_OK && nheld == 0)
            continue;
        failed_rc = rc;
        break;
    }
    assert_int_equal(nheld, 10);
    if (failed_rc >= 0)
        fail_msg("the write over the limit = %d (%s), expected an error", failed_rc, nf_err_name(failed_rc));
    print_message("[ info     ] write over the limit returned %s\n", nf_err_name(failed_rc));
    if (sc->c)
        H_ASSERT_ERR(write_msg(sc->c, g.next_seq++, 100), NF_ECLOSED);
    assert_int_equal(expect_closed_slow(&su, sc).flow_held_hwm, 10000);
    /* the peer sees the connection end */
    int r = h_recv_eof(fd, 5000);
    if (r < 0 && r != -ECONNRESET)
        fail_msg("peer: h_recv_eof = %d", r);
    close(fd);
    setup_end(&su);
}

/* ---- drain hysteresis ------------------------------------------------------------ */

static void test_drain_hysteresis(void **state)
{
    (void)state;
    nf_flow_config_t fc = {
        .max_inflight_bytes = 32 * 1024,
        .max_held_bytes = 4u << 20,
        .high_water = 96 * 1024,
        .low_water = 24 * 1024,
        .policy = NF_FLOW_DROP_NEWEST,
    };
    setup_t su;
    sconn_t *sc;
    int fd = setup_filled(&su, &fc, &sc);
    /* the fill stays under high_water (queued < 32 KiB before each 64 KiB
     * write), but count from here anyway */
    const int d0 = sc->drains;
    assert_int_equal(fstats(sc->c).drains, (uint64_t)d0);

    /* 400 KB, far above high_water */
    write_burst(sc, 100, 4000);
    assert_true(fstats(sc->c).held_bytes > fc.high_water);
    uint64_t writes0 = h_stats(su.loop).writes;

    /* A slow reader: 16 KiB at a time, with pauses. */
    pthread_t th;
    reader_t *r = reader_start(fd, 16 * 1024, 1, &th);
    H_RUN_UNTIL(su.loop, sc->drains >= 1 || !sc->c, 8000);
    H_RUN_UNTIL(su.loop, !sc->c || (fstats(sc->c).held_bytes == 0 && nf_conn_queued(sc->c) == 0), 8000);
    h_run_for(su.loop, 30);
    uint64_t sends = h_stats(su.loop).writes - writes0;
    print_message("[ info     ] round 1: %llu sends, %d drains\n", (unsigned long long)sends, sc->drains - d0);
    assert_int_equal(sc->drains, d0 + 1);
    assert_true(sc->drain_max_total <= fc.low_water);
    assert_true(sends >= 8); /* many sends, one drain */
    assert_int_equal(fstats(sc->c).drains, (uint64_t)d0 + 1);

    /* Round 2: above high_water again, the same again. */
    writes0 = h_stats(su.loop).writes;
    for (int i = 0; i < 100; i++)
        write_next(sc, 4000, NULL);
    H_RUN_UNTIL(su.loop, !sc->c || (fstats(sc->c).held_bytes == 0 && nf_conn_queued(sc->c) == 0), 8000);
    h_run_for(su.loop, 30);
    sends = h_stats(su.loop).writes - writes0;
    print_message("[ info     ] round 2: %llu sends, %d drains\n", (unsigned long long)sends, sc->drains - d0);
    assert_int_equal(sc->drains, d0 + 2);
    assert_true(sc->drain_max_total <= fc.low_water);

    /* Small writes that never go above high_water: no drain at all. */
    writes0 = h_stats(su.loop).writes;
    for (int i = 0; i < 20; i++) {
        uint32_t seq = g.next_seq++;
        H_ASSERT_ERR(write_msg(sc->c, seq, 2000), NF_WRITE_OK);
        record(seq, NF_WRITE_OK);
        H_RUN_UNTIL(su.loop, !sc->c || nf_conn_queued(sc->c) == 0, 3000);
    }
    h_run_for(su.loop, 30);
    assert_true(h_stats(su.loop).writes - writes0 >= 20);
    assert_int_equal(sc->drains, d0 + 2);
    assert_int_equal(fstats(sc->c).drains, (uint64_t)d0 + 2);

    finish_with_reader(&su, sc, r, th);
    free(r);
    close(fd);
    setup_end(&su);
}

/* ---- a peer that resets while writes are held --------------------------------------- */

static void test_reset_while_held(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_DROP_NEWEST, 1u << 20);
    setup_t su;
    sconn_t *sc;
    int fd = setup_filled(&su, &fc, &sc);
    write_burst(sc, 60, 4000);
    assert_true(fstats(sc->c).held_writes > 10);
    assert_true(h_stats(su.loop).flow_bytes_held > 0);

    h_close_reset(fd);
    H_RUN_UNTIL(su.loop, sc->closed >= 1, 5000);
    h_run_for(su.loop, 50);
    assert_int_equal(sc->closed, 1);
    if (sc->reason != -ECONNRESET && sc->reason != -EPIPE)
        fail_msg("on_close reason %d (%s), expected -ECONNRESET or -EPIPE", sc->reason, nf_err_name(sc->reason));
    nf_loop_stats_t ls = h_stats(su.loop);
    assert_int_equal(ls.flow_bytes_held, 0);
    assert_int_equal(ls.conns_open, 0);
    assert_int_equal(ls.conns_closed, 1);
    assert_int_equal(ls.conns_closed_slow, 0);
    setup_end(&su); /* ASan: the held buffers must have been freed */
}

/* ---- graceful end with writes held: "held back, sent later" ------------------------ */

static void test_end_flushes_held(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_DROP_NEWEST, 1u << 20);
    setup_t su;
    sconn_t *sc;
    int fd = setup_filled(&su, &fc, &sc);
    int nheld = write_burst(sc, 40, 3000);
    assert_true(nheld > 0);
    /* End now, while writes are held; then the peer reads everything. */
    nf_conn_end(sc->c);
    pthread_t th;
    reader_t *r = reader_start(fd, 64 * 1024, 0, &th);
    H_RUN_UNTIL(su.loop, sc->closed == 1 && atomic_load(&r->res.done), 8000);
    h_thread_join(th, 3000);
    H_ASSERT_ERR(sc->reason, NF_CLOSE_LOCAL);
    size_t held_lost = count_held_lost(r);
    /* clean up before judging, so that ASan reports only the library's leaks */
    H_ASSERT_PEER_OK(&r->res);
    uint64_t still_held = h_stats(su.loop).flow_bytes_held;
    free(r);
    close(fd);
    setup_end(&su);
    if (held_lost)
        fail_msg("nf_conn_end with %d writes held: %zu of them never reached the peer "
                 "(NF_WRITE_HELD promises 'sent later')",
                 nheld, held_lost);
    assert_int_equal(still_held, 0);
}

/* The same for a half-close: nf_conn_shutdown with writes held must send
 * them before the FIN. */
static void test_shutdown_flushes_held(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_DROP_NEWEST, 1u << 20);
    setup_t su;
    sconn_t *sc;
    int fd = setup_filled(&su, &fc, &sc);
    int nheld = write_burst(sc, 40, 3000);
    assert_true(nheld > 0);
    H_ASSERT_ERR(nf_conn_shutdown(sc->c), 0);
    pthread_t th;
    reader_t *r = reader_start(fd, 64 * 1024, 0, &th);
    H_RUN_UNTIL(su.loop, atomic_load(&r->res.done), 8000);
    h_thread_join(th, 3000);
    size_t held_lost = count_held_lost(r);
    H_ASSERT_PEER_OK(&r->res);
    close(fd); /* the server then sees EOF and closes */
    H_RUN_UNTIL(su.loop, sc->closed == 1, 3000);
    uint64_t still_held = h_stats(su.loop).flow_bytes_held;
    free(r);
    setup_end(&su);
    if (held_lost)
        fail_msg("nf_conn_shutdown with %d writes held: %zu of them never reached the peer "
                 "before its EOF",
                 nheld, held_lost);
    assert_int_equal(still_held, 0);
}

/* ---- loop counters over two connections ------------------------------------------- */

static void test_loop_stats_two_conns(void **state)
{
    (void)state;
    nf_flow_config_t fc = flow_cfg(NF_FLOW_DROP_NEWEST, 10000);
    setup_t su;
    setup_begin(&su, &fc);
    sconn_t *a, *b;
    int fda = add_peer(&su, &a);
    int fdb = add_peer(&su, &b);
    fill_kernel(&su, a);
    fill_kernel(&su, b);
    /* a: 1000-byte writes (fills 10000); b: 3000-byte writes (holds 9000) */
    for (int i = 0; i < 120; i++)
        write_next(a, 1000, NULL);
    for (int i = 0; i < 80; i++)
        write_next(b, 3000, NULL);
    nf_flow_stats_t fa = fstats(a->c), fb = fstats(b->c);
    assert_int_equal(fa.held_bytes, 10000);
    assert_int_equal(fb.held_bytes, 9000);
    nf_loop_stats_t ls = h_stats(su.loop);
    assert_int_equal(ls.flow_bytes_held, fa.held_bytes + fb.held_bytes);
    assert_int_equal(ls.flow_held_hwm, 10000);
    assert_int_equal(ls.flow_writes_dropped, fa.writes_dropped + fb.writes_dropped);
    assert_true(fa.writes_dropped > 0 && fb.writes_dropped > 0);
    assert_int_equal(ls.conns_closed_slow, 0);
    /* nf_flow_stats on a connection without the filter */
    /* (every connection here has one; see test_no_filter) */

    /* a's peer resets: only a's held bytes leave the count */
    h_close_reset(fda);
    H_RUN_UNTIL(su.loop, a->closed == 1, 5000);
    ls = h_stats(su.loop);
    assert_int_equal(ls.flow_bytes_held, fb.held_bytes);
    assert_int_equal(ls.flow_held_hwm, 10000);
    assert_int_equal(ls.flow_writes_dropped, fa.writes_dropped + fb.writes_dropped);
    h_close_reset(fdb);
    H_RUN_UNTIL(su.loop, b->closed == 1, 5000);
    ls = h_stats(su.loop);
    assert_int_equal(ls.flow_bytes_held, 0);
    assert_int_equal(ls.conns_open, 0);
    setup_end(&su);
}

/* nf_flow_stats / nf_flow_drop_oldest on a connection without the filter. */
static int g_nofilter_rc = 12345;
static size_t g_nofilter_dropped = 12345;
static int g_nofilter_closed;

static void nf_open(nf_conn_t *c)
{
    nf_flow_stats_t fs;
    g_nofilter_rc = nf_flow_stats(c, &fs);
    g_nofilter_dropped = nf_flow_drop_oldest(c, 5);
    nf_conn_close(c);
}

static void nf_close(nf_conn_t *c, int reason)
{
    (void)c;
    (void)reason;
    g_nofilter_closed++;
}

static const nf_conn_handler_t nofilter_handler = {
    .on_open = nf_open,
    .on_read = h_ignore_read,
    .on_close = nf_close,
};

static void test_no_filter(void **state)
{
    (void)state;
    h_fixture_t f;
    h_fixture_start(&f, &nofilter_handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    H_RUN_UNTIL(loop, g_nofilter_closed == 1, 3000);
    H_ASSERT_ERR(g_nofilter_rc, -ENOENT);
    assert_int_equal(g_nofilter_dropped, 0);
    close(fd);
    h_fixture_finish(&f, 3000);
}

/* NF_ESLOW is a close reason programs will log: nf_err_name / nf_strerror
 * must know it (error.h: "nf_strerror names both"). */
static void test_eslow_named(void **state)
{
    (void)state;
    const char *name = nf_err_name(NF_ESLOW);
    const char *text = nf_strerror(NF_ESLOW);
    if (strcmp(name, "NF_ESLOW") != 0 || strcmp(text, "unknown error") == 0)
        fail_msg("NF_ESLOW is named \"%s\" / \"%s\"", name, text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_newest),
        cmocka_unit_test(test_drop_newest_count),
        cmocka_unit_test(test_drop_oldest),
        cmocka_unit_test(test_callback),
        cmocka_unit_test(test_close_policy),
        cmocka_unit_test(test_drain_hysteresis),
        cmocka_unit_test(test_reset_while_held),
        cmocka_unit_test(test_end_flushes_held),
        cmocka_unit_test(test_shutdown_flushes_held),
        cmocka_unit_test(test_loop_stats_two_conns),
        cmocka_unit_test(test_no_filter),
        cmocka_unit_test(test_eslow_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

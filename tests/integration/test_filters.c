/* Integration: the connection filter stack (filter.h), public API only.
 *
 * Two custom filters, stacked [upper, swallow] (filters[0] = upper, next to
 * the transport):
 *   - upper:   upper-cases bytes going up, counts bytes going down;
 *   - swallow: swallows the first N bytes going up and, once it has them,
 *              writes a reply down by itself.
 * Checked: init order and zeroed state, open / read / write / close order
 * through the stack, that swallow sees upper's output (so upper saw the data
 * first), that swallow's own reply passes through upper, that nf_conn_filter
 * finds each instance, that every filter's on_close runs once, bottom up,
 * before the program's on_close, and that an init failure closes the
 * connection with that error without on_open reaching the program. The same
 * stack also runs on an outbound nf_connect. */
#include "helpers.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- an event log shared by the filters and the program ------------------- */

enum ev {
    EV_UP_INIT = 1,
    EV_SW_INIT,
    EV_FAIL_INIT,
    EV_UP_OPEN,
    EV_SW_OPEN,
    EV_PROG_OPEN,
    EV_UP_READ,
    EV_SW_READ,
    EV_PROG_READ,
    EV_SW_WRITE,
    EV_UP_WRITE,
    EV_SW_CLOSEREQ,
    EV_UP_CLOSE,
    EV_SW_CLOSE,
    EV_FAIL_CLOSE,
    EV_PROG_CLOSE,
};

#define LOG_MAX 512
static struct {
    int ev[LOG_MAX];
    int n;
} g_log;

static void log_ev(int e)
{
    if (g_log.n < LOG_MAX)
        g_log.ev[g_log.n] = e;
    g_log.n++;
}

static int log_count(int e)
{
    int k = 0;
    for (int i = 0; i < g_log.n && i < LOG_MAX; i++)
        k += g_log.ev[i] == e;
    return k;
}

static int log_first(int e)
{
    for (int i = 0; i < g_log.n && i < LOG_MAX; i++)
        if (g_log.ev[i] == e)
            return i;
    return -1;
}

static int log_last(int e)
{
    int k = -1;
    for (int i = 0; i < g_log.n && i < LOG_MAX; i++)
        if (g_log.ev[i] == e)
            k = i;
    return k;
}

/* ---- filter "upper" ---------------------------------------------------------- */

typedef struct upper_state {
    int state_was_zero;
    int inits, opens, closes;
    int close_reason;
    uint64_t up_bytes, down_bytes;
    int down_writes;
} upper_state_t;

static int up_init(nf_filter_t *f)
{
    upper_state_t *st = f->state;
    static const upper_state_t zero;
    st->state_was_zero = memcmp(st, &zero, sizeof zero) == 0;
    st->inits++;
    log_ev(EV_UP_INIT);
    return 0;
}

static void up_open(nf_filter_t *f)
{
    upper_state_t *st = f->state;
    st->opens++;
    log_ev(EV_UP_OPEN);
    nf_filter_open_up(f);
}

static void up_read(nf_filter_t *f, const char *data, size_t len)
{
    upper_state_t *st = f->state;
    log_ev(EV_UP_READ);
    st->up_bytes += len;
    char *p = malloc(len ? len : 1);
    if (!p) {
        nf_filter_close_down(f, NF_HOW_CLOSE);
        return;
    }
    for (size_t i = 0; i < len; i++)
        p[i] = (char)toupper((unsigned char)data[i]);
    nf_filter_read_up(f, p, len);
    free(p);
}

static int up_write(nf_filter_t *f, nf_buf_t *b)
{
    upper_state_t *st = f->state;
    log_ev(EV_UP_WRITE);
    st->down_bytes += b->len;
    st->down_writes++;
    return nf_filter_write_down(f, b);
}

static void up_close(nf_filter_t *f, int reason)
{
    upper_state_t *st = f->state;
    st->closes++;
    st->close_reason = reason;
    log_ev(EV_UP_CLOSE);
}

static const nf_filter_ops_t upper_ops = {
    .size = sizeof(nf_filter_ops_t),
    .name = "upper",
    .state_size = sizeof(upper_state_t),
    .init = up_init,
    .on_open = up_open,
    .on_read = up_read,
    .write = up_write,
    .on_close = up_close,
};

/* ---- filter "swallow" -------------------------------------------------------- */

typedef struct swallow_config {
    size_t n;          /* bytes to swallow */
    const char *reply; /* written down once they are in (NULL: none) */
} swallow_config_t;

typedef struct swallow_state {
    int inits, opens, closes, close_reqs;
    int close_reason;
    size_t swallowed;
    char seen[64]; /* the swallowed bytes, as this filter saw them */
    int reply_rc;
    int replied;
    uint64_t write_bytes; /* bytes the program wrote through this filter */
} swallow_state_t;

static int sw_init(nf_filter_t *f)
{
    swallow_state_t *st = f->state;
    st->inits++;
    st->reply_rc = 12345;
    log_ev(EV_SW_INIT);
    return 0;
}

static void sw_open(nf_filter_t *f)
{
    swallow_state_t *st = f->state;
    st->opens++;
    log_ev(EV_SW_OPEN);
    nf_filter_open_up(f);
}

static void sw_read(nf_filter_t *f, const char *data, size_t len)
{
    const swallow_config_t *cfg = f->config;
    swallow_state_t *st = f->state;
    log_ev(EV_SW_READ);
    if (st->swallowed < cfg->n) {
        size_t k = cfg->n - st->swallowed;
        if (k > len)
            k = len;
        if (st->swallowed + k < sizeof st->seen)
            memcpy(st->seen + st->swallowed, data, k);
        st->swallowed += k;
        data += k;
        len -= k;
        if (st->swallowed == cfg->n && cfg->reply && !st->replied) {
            st->replied = 1;
            size_t rl = strlen(cfg->reply);
            nf_buf_t *b = nf_buf_new(rl);
            if (!b) {
                st->reply_rc = -ENOMEM;
            } else {
                memcpy(b->base, cfg->reply, rl);
                b->len = rl;
                st->reply_rc = nf_filter_write_down(f, b);
            }
        }
    }
    if (len > 0)
        nf_filter_read_up(f, data, len);
}

static int sw_write(nf_filter_t *f, nf_buf_t *b)
{
    swallow_state_t *st = f->state;
    log_ev(EV_SW_WRITE);
    st->write_bytes += b->len;
    return nf_filter_write_down(f, b);
}

static void sw_closereq(nf_filter_t *f, nf_close_how_t how)
{
    swallow_state_t *st = f->state;
    st->close_reqs++;
    log_ev(EV_SW_CLOSEREQ);
    nf_filter_close_down(f, how);
}

static void sw_close(nf_filter_t *f, int reason)
{
    swallow_state_t *st = f->state;
    st->closes++;
    st->close_reason = reason;
    log_ev(EV_SW_CLOSE);
}

static const nf_filter_ops_t swallow_ops = {
    .size = sizeof(nf_filter_ops_t),
    .name = "swallow",
    .state_size = sizeof(swallow_state_t),
    .init = sw_init,
    .on_open = sw_open,
    .on_read = sw_read,
    .write = sw_write,
    .close = sw_closereq,
    .on_close = sw_close,
};

/* ---- filter "fail": its init fails ------------------------------------------ */

static int fail_init(nf_filter_t *f)
{
    (void)f;
    log_ev(EV_FAIL_INIT);
    return -EPROTO;
}

static void fail_open(nf_filter_t *f)
{
    (void)f;
    fail_msg("on_open of a filter whose init failed");
}

static void fail_close(nf_filter_t *f, int reason)
{
    (void)f;
    (void)reason;
    log_ev(EV_FAIL_CLOSE);
}

static const nf_filter_ops_t fail_ops = {
    .size = sizeof(nf_filter_ops_t),
    .name = "fail",
    .state_size = 8,
    .init = fail_init,
    .on_open = fail_open,
    .on_close = fail_close,
};

/* A filter that is never part of any stack: nf_conn_filter must not find it. */
static const nf_filter_ops_t unused_ops = {
    .size = sizeof(nf_filter_ops_t),
    .name = "unused",
};

/* ---- the program ------------------------------------------------------------- */

static const swallow_config_t k_sw_cfg = {.n = 8, .reply = "ok"};
static const nf_filter_spec_t k_stack[] = {
    {.ops = &upper_ops, .config = NULL},
    {.ops = &swallow_ops, .config = &k_sw_cfg},
};
static const nf_filter_spec_t k_fail_stack[] = {
    {.ops = &upper_ops, .config = NULL},
    {.ops = &fail_ops, .config = NULL},
};

static struct {
    nf_conn_t *c;
    int opened, closed, reason;
    char got[256];
    size_t got_len;
    int write_rc; /* first non-zero nf_conn_write result */
    int writes;
    /* what the program saw of its filters */
    int lookup_ok; /* nf_conn_filter checks in on_open */
    char lookup_msg[200];
    int up_closes_at_close, sw_closes_at_close, up_reason_at_close, sw_reason_at_close;
    uint64_t up_down_bytes_at_close, sw_write_bytes_at_close;
    int sw_reply_rc_at_close;
    char sw_seen_at_close[64];
    int up_inits_at_close, sw_inits_at_close, up_state_was_zero;
    int close_when_got; /* client: close after this many bytes */
} g;

static void reset_all(void)
{
    memset(&g, 0, sizeof g);
    memset(&g_log, 0, sizeof g_log);
    g.reason = 12345;
    g.lookup_ok = -1;
}

static void lookup_fail(const char *msg)
{
    if (g.lookup_ok != 0)
        snprintf(g.lookup_msg, sizeof g.lookup_msg, "%s", msg);
    g.lookup_ok = 0;
}

/* nf_conn_filter finds each instance, wired as the stack was stated. */
static void check_lookup(nf_conn_t *c, const void *sw_config)
{
    g.lookup_ok = 1;
    nf_filter_t *up = nf_conn_filter(c, &upper_ops);
    nf_filter_t *sw = nf_conn_filter(c, &swallow_ops);
    if (!up || !sw) {
        lookup_fail("nf_conn_filter returned NULL for a filter of the stack");
        return;
    }
    if (up->ops != &upper_ops || sw->ops != &swallow_ops)
        lookup_fail("instance has the wrong ops");
    if (up->conn != c || sw->conn != c)
        lookup_fail("instance ->conn is not the connection");
    if (up->down != NULL)
        lookup_fail("filters[0] has a filter below it");
    if (up->up != sw || sw->down != up)
        lookup_fail("upper/swallow are not neighbours in the stated order");
    if (sw->up != NULL)
        lookup_fail("the last filter has a filter above it");
    if (sw->config != sw_config)
        lookup_fail("swallow's config is not the spec's pointer");
    if (!up->state || !sw->state || up->state == sw->state)
        lookup_fail("state pointers missing or shared");
    if (nf_conn_filter(c, &unused_ops) != NULL)
        lookup_fail("nf_conn_filter found a filter that is not in the stack");
}

static void prog_open(nf_conn_t *c)
{
    log_ev(EV_PROG_OPEN);
    g.opened++;
    g.c = c;
    check_lookup(c, &k_sw_cfg);
}

/* Server: collect and echo what comes up. */
static void srv_read(nf_conn_t *c, const char *data, size_t len)
{
    log_ev(EV_PROG_READ);
    if (g.got_len + len <= sizeof g.got) {
        memcpy(g.got + g.got_len, data, len);
    }
    g.got_len += len;
    int rc = nf_conn_write(c, data, len);
    g.writes++;
    if (rc != NF_WRITE_OK && g.write_rc == 0)
        g.write_rc = rc ? rc : -1;
}

static void prog_close(nf_conn_t *c, int reason)
{
    log_ev(EV_PROG_CLOSE);
    g.closed++;
    g.reason = reason;
    g.c = NULL;
    /* The instances are still there during the program's on_close. */
    nf_filter_t *up = nf_conn_filter(c, &upper_ops);
    nf_filter_t *sw = nf_conn_filter(c, &swallow_ops);
    if (up) {
        upper_state_t *st = up->state;
        g.up_closes_at_close = st->closes;
        g.up_reason_at_close = st->close_reason;
        g.up_down_bytes_at_close = st->down_bytes;
        g.up_inits_at_close = st->inits;
        g.up_state_was_zero = st->state_was_zero;
    } else {
        g.up_closes_at_close = -1;
    }
    if (sw) {
        swallow_state_t *st = sw->state;
        g.sw_closes_at_close = st->closes;
        g.sw_reason_at_close = st->close_reason;
        g.sw_write_bytes_at_close = st->write_bytes;
        g.sw_reply_rc_at_close = st->reply_rc;
        g.sw_inits_at_close = st->inits;
        memcpy(g.sw_seen_at_close, st->seen, sizeof st->seen);
    } else {
        g.sw_closes_at_close = -1;
    }
}

static const nf_conn_handler_t srv_handler = {
    .on_open = prog_open,
    .on_read = srv_read,
    .on_close = prog_close,
};

static void assert_log_prefix(const int *want, int n)
{
    for (int i = 0; i < n; i++)
        if (i >= g_log.n || g_log.ev[i] != want[i])
            fail_msg("event %d is %d, expected %d (log has %d events)", i, i < g_log.n ? g_log.ev[i] : -1, want[i],
                     g_log.n);
}

static void assert_log_suffix(const int *want, int n)
{
    if (g_log.n < n || g_log.n > LOG_MAX)
        fail_msg("log has %d events", g_log.n);
    for (int i = 0; i < n; i++) {
        int at = g_log.n - n + i;
        if (g_log.ev[at] != want[i])
            fail_msg("event %d (of the last %d) is %d, expected %d", i, n, g_log.ev[at], want[i]);
    }
}

/* ---- tests ------------------------------------------------------------------- */

/* Server side, plain peer: "preamble" is swallowed (after upper-casing), the
 * filter replies "ok" by itself, the program gets and echoes the rest. */
static void test_server_stack(void **state)
{
    (void)state;
    reset_all();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen_filters(loop, &srv_handler, k_stack, 2, &l);

    int fd = h_tcp_connect("127.0.0.1", port);
    assert_true(fd >= 0);
    H_RUN_UNTIL(loop, g.opened == 1, 3000);
    const int open_order[] = {EV_UP_INIT, EV_SW_INIT, EV_UP_OPEN, EV_SW_OPEN, EV_PROG_OPEN};
    assert_log_prefix(open_order, 5);
    if (g.lookup_ok != 1)
        fail_msg("nf_conn_filter: %s", g.lookup_msg);

    const char *msg = "preamblehello world";
    assert_int_equal(h_send_all(fd, msg, strlen(msg), 2000), 0);
    H_RUN_UNTIL(loop, g.got_len >= 11, 3000);
    H_RUN_UNTIL(loop, g.c && nf_conn_queued(g.c) == 0, 3000);
    assert_int_equal(g.got_len, 11);
    assert_memory_equal(g.got, "HELLO WORLD", 11);
    H_ASSERT_ERR(g.write_rc, 0);

    /* The peer gets the filter's reply first, then the program's echo. */
    char buf[64];
    ssize_t n = h_recv_full(fd, buf, 13, 3000);
    assert_int_equal(n, 13);
    assert_memory_equal(buf, "okHELLO WORLD", 13);

    /* Reads: upper first, then swallow, then the program. */
    assert_true(log_first(EV_UP_READ) >= 0);
    assert_true(log_first(EV_UP_READ) < log_first(EV_SW_READ));
    assert_true(log_first(EV_SW_READ) < log_first(EV_PROG_READ));
    assert_int_equal(log_count(EV_UP_READ), log_count(EV_SW_READ));
    /* Program writes go through swallow, then upper; swallow's own reply
     * passes through upper only. */
    assert_int_equal(log_count(EV_SW_WRITE), g.writes);
    assert_int_equal(log_count(EV_UP_WRITE), g.writes + 1);
    int first_prog_write = log_first(EV_SW_WRITE);
    assert_true(first_prog_write >= 0 && first_prog_write + 1 < g_log.n);
    assert_int_equal(g_log.ev[first_prog_write + 1], EV_UP_WRITE);

    close(fd); /* EOF: no on_eof in the handler, so the connection closes */
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    h_run_for(loop, 30);
    assert_int_equal(g.closed, 1);
    H_ASSERT_ERR(g.reason, NF_EOF);
    const int close_order[] = {EV_UP_CLOSE, EV_SW_CLOSE, EV_PROG_CLOSE};
    assert_log_suffix(close_order, 3);
    assert_int_equal(log_count(EV_UP_CLOSE), 1);
    assert_int_equal(log_count(EV_SW_CLOSE), 1);
    assert_int_equal(log_count(EV_PROG_CLOSE), 1);
    /* The end that follows EOF may travel down the stack as a close request
     * (so that a filter can flush, e.g. TLS); at most once. */
    assert_true(log_count(EV_SW_CLOSEREQ) <= 1);
    assert_int_equal(g.up_closes_at_close, 1);
    assert_int_equal(g.sw_closes_at_close, 1);
    H_ASSERT_ERR(g.up_reason_at_close, NF_EOF);
    H_ASSERT_ERR(g.sw_reason_at_close, NF_EOF);
    assert_int_equal(g.up_inits_at_close, 1);
    assert_int_equal(g.sw_inits_at_close, 1);
    assert_true(g.up_state_was_zero);
    /* swallow saw upper's output: upper is below it and saw the data first */
    assert_memory_equal(g.sw_seen_at_close, "PREAMBLE", 8);
    H_ASSERT_ERR(g.sw_reply_rc_at_close, NF_WRITE_OK);
    assert_int_equal(g.up_down_bytes_at_close, 2 + 11);
    assert_int_equal(g.sw_write_bytes_at_close, 11);

    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, 1);
    h_listener_finish(loop, l, 3000);
}

/* A filter whose init fails: the connection closes with that error, the
 * program never sees on_open, the filter below (already initialised) still
 * gets its on_close before the program's. */
static void fail_prog_open(nf_conn_t *c)
{
    (void)c;
    log_ev(EV_PROG_OPEN);
    g.opened++;
}

static void fail_prog_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)c;
    (void)data;
    g.got_len += len;
}

static void fail_prog_close(nf_conn_t *c, int reason)
{
    log_ev(EV_PROG_CLOSE);
    g.closed++;
    g.reason = reason;
    nf_filter_t *up = nf_conn_filter(c, &upper_ops);
    g.up_closes_at_close = up ? ((upper_state_t *)up->state)->closes : -1;
    g.up_inits_at_close = up ? ((upper_state_t *)up->state)->inits : -1;
}

static const nf_conn_handler_t fail_handler = {
    .on_open = fail_prog_open,
    .on_read = fail_prog_read,
    .on_close = fail_prog_close,
};

static void test_init_failure(void **state)
{
    (void)state;
    reset_all();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen_filters(loop, &fail_handler, k_fail_stack, 2, &l);

    int fd = h_tcp_connect("127.0.0.1", port);
    assert_true(fd >= 0);
    h_send_all(fd, "hello", 5, 1000); /* must never reach the program */
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    h_run_for(loop, 50);
    assert_int_equal(g.closed, 1);
    assert_int_equal(g.opened, 0);
    assert_int_equal(log_count(EV_PROG_OPEN), 0);
    assert_int_equal(log_count(EV_UP_OPEN), 0);
    assert_int_equal(g.got_len, 0);
    H_ASSERT_ERR(g.reason, -EPROTO);
    assert_int_equal(log_count(EV_FAIL_INIT), 1);
    /* upper (below) was initialised, and its on_close ran once, before the
     * program's */
    assert_int_equal(g.up_inits_at_close, 1);
    assert_int_equal(g.up_closes_at_close, 1);
    assert_int_equal(log_count(EV_UP_CLOSE), 1);
    assert_true(log_first(EV_UP_INIT) < log_first(EV_FAIL_INIT));
    assert_true(log_last(EV_UP_CLOSE) < log_last(EV_PROG_CLOSE));
    assert_int_equal(log_last(EV_PROG_CLOSE), g_log.n - 1);

    /* The peer sees its connection end (EOF or reset). */
    int r = h_recv_eof(fd, 3000);
    if (r != 0 && r != -ECONNRESET)
        fail_msg("peer: h_recv_eof = %d (%s)", r, strerror(r < 0 ? -r : 0));
    close(fd);
    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_open, 0);
    assert_int_equal(s.conns_closed, 1);
    h_listener_finish(loop, l, 3000);
}

/* Outbound: the same stack on an nf_connect to an echo server. The client
 * writes "preamblehello"; the echo comes back up through upper ("PREAMBLE"
 * swallowed, "HELLO" to the program); swallow's own "ok" goes to the echo
 * server and comes back as "OK". */
static void cli_read(nf_conn_t *c, const char *data, size_t len)
{
    log_ev(EV_PROG_READ);
    if (g.got_len + len <= sizeof g.got)
        memcpy(g.got + g.got_len, data, len);
    g.got_len += len;
    if (g.got_len >= (size_t)g.close_when_got)
        nf_conn_close(c);
}

static void cli_open(nf_conn_t *c)
{
    prog_open(c);
    int rc = nf_conn_write(c, "preamblehello", 13);
    g.writes++;
    if (rc != NF_WRITE_OK)
        g.write_rc = rc ? rc : -1;
}

static const nf_conn_handler_t cli_handler = {
    .on_open = cli_open,
    .on_read = cli_read,
    .on_close = prog_close,
};

static void test_connect_stack(void **state)
{
    (void)state;
    reset_all();
    h_echo_reset();
    g.close_when_got = 7;
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);

    nf_connect_config_t cc = h_connect_config("127.0.0.1", port, &cli_handler, NULL);
    cc.filters = k_stack;
    cc.nfilters = 2;
    cc.timeout_ms = 3000;
    nf_conn_t *c = NULL;
    H_ASSERT_ERR(nf_connect(loop, &cc, &c), 0);
    assert_non_null(c);
    H_RUN_UNTIL(loop, g.closed == 1 && h_echo.closed == 1, 5000);
    h_run_for(loop, 30);

    assert_int_equal(g.opened, 1);
    assert_int_equal(g.closed, 1);
    H_ASSERT_ERR(g.reason, NF_CLOSE_LOCAL);
    if (g.lookup_ok != 1)
        fail_msg("nf_conn_filter: %s", g.lookup_msg);
    H_ASSERT_ERR(g.write_rc, 0);
    assert_int_equal(g.got_len, 7);
    assert_memory_equal(g.got, "HELLOOK", 7);
    const int open_order[] = {EV_UP_INIT, EV_SW_INIT, EV_UP_OPEN, EV_SW_OPEN, EV_PROG_OPEN, EV_SW_WRITE, EV_UP_WRITE};
    assert_log_prefix(open_order, 7);
    assert_true(log_first(EV_UP_READ) < log_first(EV_SW_READ));
    assert_memory_equal(g.sw_seen_at_close, "PREAMBLE", 8);
    H_ASSERT_ERR(g.sw_reply_rc_at_close, NF_WRITE_OK);
    assert_int_equal(g.up_down_bytes_at_close, 13 + 2);
    assert_int_equal(g.sw_write_bytes_at_close, 13);
    assert_int_equal(h_echo.bytes, 15);
    /* nf_conn_close went down through swallow's close op, once */
    assert_int_equal(log_count(EV_SW_CLOSEREQ), 1);
    const int close_order[] = {EV_UP_CLOSE, EV_SW_CLOSE, EV_PROG_CLOSE};
    assert_log_suffix(close_order, 3);
    assert_int_equal(g.up_closes_at_close, 1);
    assert_int_equal(g.sw_closes_at_close, 1);
    H_ASSERT_ERR(g.up_reason_at_close, NF_CLOSE_LOCAL);
    H_ASSERT_ERR(g.sw_reason_at_close, NF_CLOSE_LOCAL);

    nf_loop_stats_t s = h_stats(loop);
    assert_int_equal(s.conns_connected, 1);
    assert_int_equal(s.conns_open, 0);
    h_listener_finish(loop, l, 3000);
}

/* An outbound connection whose filter init fails: on_close with the error,
 * no on_open. */
static void test_connect_init_failure(void **state)
{
    (void)state;
    reset_all();
    h_echo_reset();
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &h_echo_handler, NULL, &l);

    nf_connect_config_t cc = h_connect_config("127.0.0.1", port, &fail_handler, NULL);
    cc.filters = k_fail_stack;
    cc.nfilters = 2;
    nf_conn_t *c = NULL;
    H_ASSERT_ERR(nf_connect(loop, &cc, &c), 0);
    H_RUN_UNTIL(loop, g.closed == 1 && h_echo.closed == 1, 5000);
    h_run_for(loop, 30);
    assert_int_equal(g.closed, 1);
    assert_int_equal(g.opened, 0);
    H_ASSERT_ERR(g.reason, -EPROTO);
    assert_int_equal(g.up_closes_at_close, 1);
    assert_true(log_last(EV_UP_CLOSE) < log_last(EV_PROG_CLOSE));
    h_listener_finish(loop, l, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_stack),
        cmocka_unit_test(test_init_failure),
        cmocka_unit_test(test_connect_stack),
        cmocka_unit_test(test_connect_init_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

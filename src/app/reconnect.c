/* netframe — the reconnecting connector (see reconnect.h).
 *
 * One handle, a sequence of connections. The handle owns one timer, used
 * for the first connect, each backoff and the deferred STOPPED report, and
 * at most one connection at a time (connecting or up). Held writes are
 * copies in a FIFO; on the next on_open they are written, in order, before
 * the program hears UP (so what it writes then goes after them).
 *
 * Every callback to the program may call nf_reconnect_stop(); after each one
 * the code checks `stopping` and returns. The handle is freed only from the
 * timer or from the connection's on_close, never from inside a call the
 * program made, so it stays valid for the rest of the callback chain. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/export.h"
#include "base/fifo.h"
#include "netframe/buf.h"
#include "netframe/error.h"
#include "netframe/flow.h" /* NF_WRITE_HELD / NF_WRITE_DROPPED */
#include "netframe/loop.h"
#include "netframe/tcp.h"
#include "netframe/timer.h"
#include "netframe/reconnect.h"

struct nf_reconnect {
    nf_loop_t *loop;
    nf_reconnect_config_t cfg;
    char *host;
    void *data;
    nf_reconnect_state_t state;
    nf_conn_t *conn; /* connecting or up, else NULL */
    nf_timer_t timer;
    bool stopping;
    uint64_t prev_delay; /* decorrelated jitter */
    uint64_t rng;
    nf__fifo_t held;         /* copies of writes made while down */
    nf_reconnect_stats_t st; /* held_bytes, held_writes: see held */
};

static void do_connect(nf_timer_t *t);
static void finish(nf_timer_t *t);

/* ---- backoff ------------------------------------------------------------------ */

static uint64_t next_rand(nf_reconnect_t *rc)
{
    /* xorshift64*: plenty for spreading reconnects; not for secrets */
    uint64_t x = rc->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rc->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t rand_between(nf_reconnect_t *rc, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + next_rand(rc) % (hi - lo + 1);
}

static uint64_t initial_of(const nf_reconnect_t *rc) { return rc->cfg.initial_ms ? rc->cfg.initial_ms : 100; }
static uint64_t max_of(const nf_reconnect_t *rc)
{
    uint64_t m = rc->cfg.max_ms ? rc->cfg.max_ms : 30000;
    return m < initial_of(rc) ? initial_of(rc) : m;
}
static double mult_of(const nf_reconnect_t *rc) { return rc->cfg.multiplier > 1.0 ? rc->cfg.multiplier : 2.0; }

static uint64_t mul_cap(uint64_t v, double m, uint64_t cap)
{
    double d = (double)v * m;
    return d >= (double)cap ? cap : (uint64_t)d;
}

/* The wait before the next connect, after `attempt` failed attempts. */
static uint64_t next_delay(nf_reconnect_t *rc)
{
    uint64_t init = initial_of(rc), max = max_of(rc), base = init;
    for (unsigned i = 0; i < rc->st.attempt && base < max; i++)
        base = mul_cap(base, mult_of(rc), max);
    switch (rc->cfg.jitter) {
    case NF_RC_JITTER_NONE: return base;
    case NF_RC_JITTER_DECORRELATED: {
        uint64_t prev = rc->prev_delay ? rc->prev_delay : init;
        uint64_t hi = mul_cap(prev, mult_of(rc), max);
        uint64_t d = rand_between(rc, init < hi ? init : hi, hi);
        rc->prev_delay = d;
        return d;
    }
    case NF_RC_JITTER_FULL:
    default: return rand_between(rc, 0, base);
    }
}

/* ---- held writes ---------------------------------------------------------------- */

static void drop_held(nf_reconnect_t *rc)
{
    rc->st.writes_dropped += rc->held.count;
    rc->st.bytes_dropped += rc->held.bytes;
    nf__fifo_clear(&rc->held);
}

static void flush_held(nf_reconnect_t *rc, nf_conn_t *c)
{
    while (!nf__fifo_empty(&rc->held) && !nf_conn_is_closing(c)) {
        rc->st.writes_flushed++;
        nf_conn_write_buf(c, nf__fifo_pop(&rc->held)); /* takes the reference */
    }
}

/* ---- state ------------------------------------------------------------------------ */

static void report(nf_reconnect_t *rc, nf_reconnect_state_t s, int reason, uint64_t delay)
{
    rc->state = s;
    rc->cfg.on_state(rc, s, reason, delay);
}

static void c_open(nf_conn_t *c)
{
    nf_reconnect_t *rc = nf_conn_get_data(c);
    if (rc->stopping)
        return;
    rc->st.ups++;
    rc->st.attempt = 0;
    rc->prev_delay = 0;
    flush_held(rc, c);
    report(rc, NF_RC_UP, 0, 0);
}

static void c_read(nf_conn_t *c, const char *data, size_t len)
{
    nf_reconnect_t *rc = nf_conn_get_data(c);
    if (!rc->stopping)
        rc->cfg.on_read(rc, data, len);
}

static void c_drain(nf_conn_t *c)
{
    nf_reconnect_t *rc = nf_conn_get_data(c);
    if (!rc->stopping && rc->cfg.on_drain)
        rc->cfg.on_drain(rc);
}

static void c_close(nf_conn_t *c, int reason)
{
    nf_reconnect_t *rc = nf_conn_get_data(c);
    rc->conn = NULL;
    if (rc->state == NF_RC_UP)
        rc->st.downs++;
    else
        rc->st.failures++;
    if (rc->stopping) {
        finish(&rc->timer);
        return;
    }
    report(rc, NF_RC_DOWN, reason, 0);
    if (rc->stopping)
        return; /* stop() armed the finish timer */
    uint64_t delay = next_delay(rc);
    rc->st.attempt++;
    report(rc, NF_RC_BACKOFF, 0, delay);
    if (rc->stopping)
        return;
    nf_timer_start(&rc->timer, do_connect, delay, 0);
}

static const nf_conn_handler_t k_handler = {
    .on_open = c_open,
    .on_read = c_read,
    .on_drain = c_drain,
    .on_close = c_close,
};

static void do_connect(nf_timer_t *t)
{
    nf_reconnect_t *rc = t->data;
    report(rc, NF_RC_CONNECTING, 0, 0);
    if (rc->stopping)
        return;
    nf_connect_config_t cc = rc->cfg.connect;
    cc.host = rc->host;
    cc.handler = &k_handler;
    cc.data = rc;
    rc->st.connects++;
    nf_conn_t *c = NULL;
    int err = nf_connect(rc->loop, &cc, &c);
    if (err) { /* no callback will come: count it as a failed attempt now */
        rc->st.failures++;
        report(rc, NF_RC_DOWN, err, 0);
        if (rc->stopping)
            return;
        uint64_t delay = next_delay(rc);
        rc->st.attempt++;
        report(rc, NF_RC_BACKOFF, 0, delay);
        if (!rc->stopping)
            nf_timer_start(&rc->timer, do_connect, delay, 0);
        return;
    }
    rc->conn = c;
}

static void finish(nf_timer_t *t)
{
    nf_reconnect_t *rc = t->data;
    nf_timer_stop(&rc->timer);
    drop_held(rc);
    report(rc, NF_RC_STOPPED, 0, 0);
    free(rc->host);
    free(rc);
}

/* ---- public --------------------------------------------------------------------- */

NF__EXPORT int nf_reconnect_start(nf_loop_t *loop, const nf_reconnect_config_t *cfg, nf_reconnect_t **out)
{
    if (!loop || !cfg || !cfg->connect.host || !cfg->on_state || !cfg->on_read || !out)
        return -EINVAL;
    /* the write-queue limits nf_connect would refuse on every attempt */
    size_t high = cfg->connect.write_high_water, low = cfg->connect.write_low_water;
    if (high && high != NF_WRITE_LIMIT_OFF && low && low != NF_WRITE_LIMIT_OFF && low >= high)
        return -EINVAL;
    nf_reconnect_t *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return -ENOMEM;
    rc->host = strdup(cfg->connect.host);
    if (!rc->host) {
        free(rc);
        return -ENOMEM;
    }
    rc->loop = loop;
    rc->cfg = *cfg;
    rc->cfg.connect.host = rc->host;
    rc->data = cfg->data;
    rc->state = NF_RC_DOWN;
    if (cfg->seed) {
        rc->rng = cfg->seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rc->rng = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)rc;
    }
    if (!rc->rng)
        rc->rng = 0x9E3779B97F4A7C15ULL;
    nf_timer_init(loop, &rc->timer);
    rc->timer.data = rc;
    int err = nf_timer_start(&rc->timer, do_connect, 0, 0);
    if (err) {
        free(rc->host);
        free(rc);
        return err;
    }
    *out = rc;
    return 0;
}

NF__EXPORT int nf_reconnect_write(nf_reconnect_t *rc, const void *data, size_t len)
{
    if (rc->stopping)
        return NF_ECLOSED;
    if (rc->state == NF_RC_UP && rc->conn && !nf_conn_is_closing(rc->conn))
        return nf_conn_write(rc->conn, data, len);
    if (rc->cfg.down_policy == NF_RC_REFUSE) {
        rc->st.writes_refused++;
        return -ENOTCONN;
    }
    size_t max_bytes = rc->cfg.max_held_bytes ? rc->cfg.max_held_bytes : 1024 * 1024;
    size_t max_writes = rc->cfg.max_held_writes ? rc->cfg.max_held_writes : SIZE_MAX;
    if (len > max_bytes - rc->held.bytes || rc->held.count >= max_writes) {
        rc->st.writes_dropped++;
        rc->st.bytes_dropped += len;
        return NF_WRITE_DROPPED;
    }
    nf_buf_t *b = nf_buf_new(len);
    if (b) {
        memcpy(b->base, data, len);
        b->len = len;
    }
    if (!b || nf__fifo_push(&rc->held, b) != 0) {
        nf_buf_unref(b);
        return -ENOMEM;
    }
    rc->st.writes_held++;
    return NF_WRITE_HELD;
}

NF__EXPORT void nf_reconnect_stop(nf_reconnect_t *rc)
{
    if (rc->stopping)
        return;
    rc->stopping = true;
    nf_timer_stop(&rc->timer);
    drop_held(rc);
    if (rc->conn) { /* its on_close finishes */
        if (rc->state == NF_RC_UP)
            nf_conn_end(rc->conn);
        else
            nf_conn_close(rc->conn);
        return;
    }
    nf_timer_start(&rc->timer, finish, 0, 0);
}

NF__EXPORT nf_conn_t *nf_reconnect_conn(const nf_reconnect_t *rc)
{
    return rc->state == NF_RC_UP && !rc->stopping ? rc->conn : NULL;
}
NF__EXPORT nf_reconnect_state_t nf_reconnect_state(const nf_reconnect_t *rc) { return rc->state; }
NF__EXPORT void nf_reconnect_stats(const nf_reconnect_t *rc, nf_reconnect_stats_t *out)
{
    *out = rc->st;
    out->held_bytes = rc->held.bytes;
    out->held_writes = rc->held.count;
}
NF__EXPORT void *nf_reconnect_get_data(const nf_reconnect_t *rc) { return rc->data; }
NF__EXPORT void nf_reconnect_set_data(nf_reconnect_t *rc, void *data) { rc->data = data; }

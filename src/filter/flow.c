/* netframe — the flow-control filter (see flow.h for the contract).
 *
 * Writes pass down while the transport holds fewer than max_inflight_bytes
 * not yet accepted by the kernel; after that they wait here, whole, in FIFO
 * order. The transport's drain (its queue emptied) moves held writes down
 * again. Policy applies only when the held queue is over its limits.
 *
 * Priority writes (NF_BUF_PRIORITY: pongs, close frames) are held past the
 * limits of the others, up to max_priority_bytes of them; past that the
 * policy applies to them too. While more than high_water bytes are held the
 * filter holds reading (NF__RHOLD_FILTER) until they drain to low_water: a
 * peer whose input makes output it does not read closes its own window
 * (accepted connections by default; read_hold).
 *
 * The filter uses the public filter API, apart from one read of the
 * transport's count of queued buffers (max_inflight_writes: no public call
 * gives it yet). Its loop-wide counters are its own per-loop record
 * (nf__loop_ext), added to nf_loop_stats. */
#include <stdlib.h>

#include "base/export.h"
#include "base/fifo.h"
#include "core/internal.h"
#include "netframe/flow.h"

/* The loop's flow-control counters (nf_loop_stats_t's flow_* and, with the
 * TLS filter's, conns_closed_slow). */
typedef struct flow_loop {
    nf__loop_ext_t x;
    uint64_t bytes_held, held_hwm, writes_dropped, closed_slow;
} flow_loop_t;

static void flow_loop_stats(const nf__loop_ext_t *x, nf_loop_stats_t *out)
{
    const flow_loop_t *fx = (const flow_loop_t *)x;
    out->flow_bytes_held += fx->bytes_held;
    if (fx->held_hwm > out->flow_held_hwm)
        out->flow_held_hwm = fx->held_hwm;
    out->flow_writes_dropped += fx->writes_dropped;
    out->conns_closed_slow += fx->closed_slow;
}

static const nf__loop_ext_ops_t flow_loop_ops = {.name = "flow", .stats = flow_loop_stats};

typedef struct flow {
    nf__fifo_t q;          /* held writes; q.bytes / q.count are st.held_bytes / held_writes */
    flow_loop_t *lx;       /* the loop's counters */
    bool above;            /* rose above high_water since the last drain callback */
    bool end_pending;      /* nf_conn_end asked while writes were held */
    bool shutdown_pending; /* nf_conn_shutdown asked while writes were held */
    bool may_hold;         /* read holds are on for this connection (read_hold) */
    bool rhold;            /* holding reading: held_bytes rose above high_water */
    size_t prio_bytes;     /* of q.bytes, in priority writes */
    nf_flow_stats_t st;    /* held_bytes, held_writes: see q */
} flow_t;

typedef struct limits {
    size_t inflight, inflight_writes, held_bytes, held_writes, high, low, prio;
} limits_t;

static limits_t limits_of(const nf_filter_t *f)
{
    static const nf_flow_config_t defaults;
    const nf_flow_config_t *cfg = f->config ? f->config : &defaults;
    limits_t l;
    l.inflight = cfg->max_inflight_bytes ? cfg->max_inflight_bytes : 256 * 1024;
    l.inflight_writes = cfg->max_inflight_writes ? cfg->max_inflight_writes : SIZE_MAX;
    l.held_bytes = cfg->max_held_bytes ? cfg->max_held_bytes : 4 * 1024 * 1024;
    l.held_writes = cfg->max_held_writes ? cfg->max_held_writes : SIZE_MAX;
    l.high = cfg->high_water ? cfg->high_water : l.inflight;
    l.low = cfg->low_water ? cfg->low_water : l.high / 2;
    l.prio = cfg->max_priority_bytes ? cfg->max_priority_bytes : 64 * 1024;
    return l;
}

/* The held bytes changed by delta (fl->q already counts it). */
static void account(flow_t *fl, long long delta)
{
    fl->lx->bytes_held = (uint64_t)((long long)fl->lx->bytes_held + delta);
    if (fl->q.bytes > fl->st.held_bytes_hwm)
        fl->st.held_bytes_hwm = fl->q.bytes;
    if (fl->st.held_bytes_hwm > fl->lx->held_hwm)
        fl->lx->held_hwm = fl->st.held_bytes_hwm;
}

static void dropped(flow_t *fl, nf_buf_t *b)
{
    fl->st.writes_dropped++;
    fl->st.bytes_dropped += b->len;
    fl->lx->writes_dropped++;
    nf_buf_unref(b);
}

/* Drops up to n of the oldest held writes, never a priority one (those
 * stay, in order). */
static size_t drop_oldest(flow_t *fl, size_t n)
{
    size_t done = 0;
    nf__fifo_node_t **pp = &fl->q.head;
    while (done < n && *pp) {
        if ((*pp)->buf->flags & NF_BUF_PRIORITY) {
            pp = &(*pp)->next;
            continue;
        }
        nf_buf_t *b = nf__fifo_unlink(&fl->q, pp);
        account(fl, -(long long)b->len);
        dropped(fl, b);
        done++;
    }
    return done;
}

/* Reading follows what is held: stop above high_water, resume at low_water. */
static void read_follow(const limits_t *l, flow_t *fl, nf_filter_t *f)
{
    if (!fl->rhold && fl->may_hold && fl->q.bytes > l->high) {
        fl->rhold = true;
        nf_filter_read_hold(f, true);
    } else if (fl->rhold && fl->q.bytes <= l->low) {
        fl->rhold = false;
        nf_filter_read_hold(f, false);
    }
}

static void slow(nf_filter_t *f, flow_t *fl, nf_buf_t *b)
{
    nf_buf_unref(b);
    fl->lx->closed_slow++;
    nf_filter_fail(f, NF_ESLOW);
}

/* Room below: the transport takes more bytes and more buffers. */
static bool room_below(const limits_t *l, const nf_conn_t *c)
{
    return nf_conn_queued(c) < l->inflight && nf_conn_queued_writes(c) < l->inflight_writes;
}

static bool fits(const limits_t *l, const flow_t *fl, size_t len)
{
    return fl->q.bytes + len <= l->held_bytes && fl->q.count + 1 <= l->held_writes;
}

static void check_high(const limits_t *l, flow_t *fl, nf_conn_t *c)
{
    if (fl->q.bytes + nf_conn_queued(c) > l->high)
        fl->above = true;
}

static int f_write(nf_filter_t *f, nf_buf_t *b)
{
    flow_t *fl = f->state;
    nf_conn_t *c = f->conn;
    limits_t l = limits_of(f);
    if (fl->end_pending || fl->shutdown_pending) {
        nf_buf_unref(b);
        return NF_ECLOSED;
    }
    if (nf__fifo_empty(&fl->q) && room_below(&l, c)) {
        int r = nf_filter_write_down(f, b);
        check_high(&l, fl, c);
        return r;
    }
    size_t len = b->len;
    bool prio = (b->flags & NF_BUF_PRIORITY) != 0;
    /* A priority write (pong, close frame) is held past the other limits:
     * it is small, and dropping it would break the protocol above; but only
     * up to max_priority_bytes of them, or a peer that makes us answer
     * without reading the answers would hold us to any size. */
    if (prio ? fl->prio_bytes + len > l.prio : !fits(&l, fl, len)) {
        const nf_flow_config_t *cfg = f->config;
        switch (cfg ? cfg->policy : NF_FLOW_DROP_NEWEST) {
        case NF_FLOW_DROP_NEWEST: dropped(fl, b); return NF_WRITE_DROPPED;
        case NF_FLOW_DROP_OLDEST:
            /* held priority writes are never dropped for a newer one: the
             * newest is, and its writer learns it (the WebSocket layer
             * closes the connection when that was its close frame) */
            if (prio || len > l.held_bytes) { /* can never fit: keep what is held */
                dropped(fl, b);
                return NF_WRITE_DROPPED;
            }
            while (!fits(&l, fl, len) && drop_oldest(fl, 1)) {
            }
            if (!fits(&l, fl, len)) { /* larger than the whole allowance */
                dropped(fl, b);
                return NF_WRITE_DROPPED;
            }
            break;
        case NF_FLOW_CALLBACK: {
            int d = cfg->on_overflow ? cfg->on_overflow(c, len) : NF_FLOW_DROP;
            if (nf_filter_closing(f)) {
                nf_buf_unref(b);
                return NF_ECLOSED;
            }
            if (d == NF_FLOW_DROP) {
                dropped(fl, b);
                return NF_WRITE_DROPPED;
            }
            if (d == NF_FLOW_SLOW) {
                slow(f, fl, b);
                return NF_ESLOW;
            }
            break; /* NF_FLOW_HOLD */
        }
        case NF_FLOW_CLOSE: slow(f, fl, b); return NF_ESLOW;
        }
    }
    if (nf__fifo_push(&fl->q, b) != 0) {
        nf_buf_unref(b);
        return -ENOMEM;
    }
    fl->st.writes_held++;
    if (prio)
        fl->prio_bytes += len;
    account(fl, (long long)len);
    check_high(&l, fl, c);
    read_follow(&l, fl, f);
    return NF_WRITE_HELD;
}

static void f_drain(nf_filter_t *f)
{
    flow_t *fl = f->state;
    nf_conn_t *c = f->conn;
    limits_t l = limits_of(f);
    while (!nf__fifo_empty(&fl->q) && room_below(&l, c) && !nf_filter_closing(f)) {
        nf_buf_t *b = nf__fifo_pop(&fl->q);
        account(fl, -(long long)b->len);
        if (b->flags & NF_BUF_PRIORITY)
            fl->prio_bytes -= b->len;
        if (nf_filter_write_down(f, b) < 0)
            return; /* the transport refused (closing): on_close frees the rest */
    }
    read_follow(&l, fl, f);
    if (nf__fifo_empty(&fl->q) && fl->end_pending) { /* everything held went down: end now */
        fl->end_pending = false;
        nf_filter_close_down(f, NF_HOW_END);
        return;
    }
    if (nf__fifo_empty(&fl->q) && fl->shutdown_pending) {
        fl->shutdown_pending = false;
        nf_filter_shutdown_down(f);
    }
    if (fl->above && fl->q.bytes + nf_conn_queued(c) <= l.low) {
        fl->above = false;
        fl->st.drains++;
        nf_filter_drain_up(f);
    }
}

/* A graceful end or a shutdown waits for the held writes: they were promised
 * (NF_WRITE_HELD means "sent later"). A close or abort drops them. */
static void f_close_req(nf_filter_t *f, nf_close_how_t how)
{
    flow_t *fl = f->state;
    if (how == NF_HOW_END && !nf__fifo_empty(&fl->q)) {
        fl->end_pending = true;
        return;
    }
    nf_filter_close_down(f, how);
}

static int f_shutdown(nf_filter_t *f)
{
    flow_t *fl = f->state;
    if (fl->end_pending || fl->shutdown_pending)
        return 0;
    if (!nf__fifo_empty(&fl->q)) {
        fl->shutdown_pending = true;
        return 0;
    }
    return nf_filter_shutdown_down(f);
}

/* Accepted connections hold reading by default; outbound ones do not: a
 * client uploading to a server that pauses too would deadlock (each waits
 * for the other to read), as with the transport's write-queue bound. */
static int f_init(nf_filter_t *f)
{
    flow_t *fl = f->state;
    const nf_flow_config_t *cfg = f->config;
    int rh = cfg ? cfg->read_hold : 0;
    fl->may_hold = rh > 0 || (rh == 0 && nf_conn_listener(f->conn) != NULL);
    /* the loop's record, kept here: no look-up per write */
    fl->lx = (flow_loop_t *)nf__loop_ext(nf_conn_loop(f->conn), &flow_loop_ops, sizeof(flow_loop_t));
    return fl->lx ? 0 : -ENOMEM;
}

static void f_close(nf_filter_t *f, int reason)
{
    (void)reason;
    flow_t *fl = f->state;
    while (!nf__fifo_empty(&fl->q)) { /* q is empty when init did not run */
        nf_buf_t *b = nf__fifo_pop(&fl->q);
        account(fl, -(long long)b->len);
        nf_buf_unref(b);
    }
    fl->prio_bytes = 0;
}

NF__EXPORT const nf_filter_ops_t nf_flow_filter = {
    .size = sizeof(nf_filter_ops_t),
    .name = "flow",
    .state_size = sizeof(flow_t),
    .init = f_init,
    .write = f_write,
    .on_drain = f_drain,
    .on_close = f_close,
    .shutdown = f_shutdown,
    .close = f_close_req,
};

NF__EXPORT int nf_flow_stats(const nf_conn_t *c, nf_flow_stats_t *out)
{
    nf_filter_t *f = nf_conn_filter(c, &nf_flow_filter);
    if (!f)
        return -ENOENT;
    const flow_t *fl = f->state;
    *out = fl->st;
    out->held_bytes = fl->q.bytes;
    out->held_writes = fl->q.count;
    return 0;
}

NF__EXPORT size_t nf_flow_drop_oldest(nf_conn_t *c, size_t n)
{
    nf_filter_t *f = nf_conn_filter(c, &nf_flow_filter);
    if (!f)
        return 0;
    size_t done = drop_oldest(f->state, n);
    limits_t l = limits_of(f);
    read_follow(&l, f->state, f);
    return done;
}

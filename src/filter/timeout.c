/* netframe — read and idle timeout filters.
 *
 * Activity only records the loop's cached time (no timer operation per
 * read or write); when the timer fires it checks how long the connection has
 * really been quiet and re-arms for the rest, or closes with -ETIMEDOUT. */
#include <errno.h>

#include "base/export.h"
#include "netframe/filter.h"
#include "netframe/loop.h"
#include "netframe/timer.h"

typedef struct tstate {
    nf_timer_t timer;
    uint64_t last;
} tstate_t;

static uint64_t timeout_of(const nf_filter_t *f)
{
    const nf_timeout_config_t *cfg = f->config;
    return cfg && cfg->timeout_ms ? cfg->timeout_ms : 30000;
}

static void fire(nf_timer_t *t)
{
    nf_filter_t *f = t->data;
    tstate_t *st = f->state;
    nf_loop_t *loop = nf_conn_loop(f->conn);
    uint64_t to = timeout_of(f), quiet = nf_loop_now(loop) - st->last;
    if (quiet >= to)
        nf_filter_fail(f, -ETIMEDOUT);
    else
        nf_timer_start(&st->timer, fire, to - quiet, 0);
}

static int t_init(nf_filter_t *f)
{
    tstate_t *st = f->state;
    nf_timer_init(nf_conn_loop(f->conn), &st->timer);
    st->timer.data = f;
    return 0;
}

static void t_open(nf_filter_t *f)
{
    tstate_t *st = f->state;
    /* One fresh clock read per connection: the loop's cached time can be
     * many ms old on a loaded machine (preempted since the iteration began),
     * which would fire the first timeout early by that much. */
    nf_loop_update_time(nf_conn_loop(f->conn));
    st->last = nf_loop_now(nf_conn_loop(f->conn));
    nf_timer_start(&st->timer, fire, timeout_of(f), 0);
    nf_filter_open_up(f);
}

static void t_read(nf_filter_t *f, const char *data, size_t len)
{
    tstate_t *st = f->state;
    st->last = nf_loop_now(nf_conn_loop(f->conn));
    nf_filter_read_up(f, data, len);
}

static int t_write(nf_filter_t *f, nf_buf_t *b)
{
    tstate_t *st = f->state;
    st->last = nf_loop_now(nf_conn_loop(f->conn));
    return nf_filter_write_down(f, b);
}

static void t_close(nf_filter_t *f, int reason)
{
    (void)reason;
    tstate_t *st = f->state;
    nf_timer_stop(&st->timer);
}

NF__EXPORT const nf_filter_ops_t nf_read_timeout_filter = {
    .size = sizeof(nf_filter_ops_t),
    .name = "read_timeout",
    .state_size = sizeof(tstate_t),
    .init = t_init,
    .on_open = t_open,
    .on_read = t_read,
    .on_close = t_close,
};

NF__EXPORT const nf_filter_ops_t nf_idle_timeout_filter = {
    .size = sizeof(nf_filter_ops_t),
    .name = "idle_timeout",
    .state_size = sizeof(tstate_t),
    .init = t_init,
    .on_open = t_open,
    .on_read = t_read,
    .write = t_write,
    .on_close = t_close,
};

/* netframe — the connection filter stack: the transport's side of the plug
 * point in netframe/filter.h. It lives in the net layer because the
 * transport calls it; it reaches the filters (src/filter/, or a program's)
 * only through the ops tables they register, so it names none of them.
 *
 * Instances of a connection's filters live in one allocation (instances,
 * then each filter's state, 16-byte aligned), made when the connection is
 * created and freed after its on_close. Dispatch is one indirect call per
 * filter that implements the op; a filter that does not is skipped. */
#include <stdlib.h>
#include <string.h>

#include "net/transport.h"

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

int nf__filters_new(nf_conn_t *c, const nf_filter_spec_t *specs, unsigned n)
{
    size_t size = ALIGN16(n * sizeof(nf_filter_t));
    for (unsigned i = 0; i < n; i++)
        size += ALIGN16(specs[i].ops->state_size);
    char *mem = calloc(1, size);
    if (!mem)
        return -ENOMEM;
    nf_filter_t *fs = (nf_filter_t *)(void *)mem;
    char *st = mem + ALIGN16(n * sizeof(nf_filter_t));
    for (unsigned i = 0; i < n; i++) {
        fs[i].ops = specs[i].ops;
        fs[i].config = specs[i].config;
        fs[i].conn = c;
        fs[i].down = i > 0 ? &fs[i - 1] : NULL;
        fs[i].up = i + 1 < n ? &fs[i + 1] : NULL;
        fs[i].state = specs[i].ops->state_size ? st : NULL;
        st += ALIGN16(specs[i].ops->state_size);
    }
    c->fbottom = &fs[0];
    c->ftop = &fs[n - 1];
    return 0;
}

/* Stands in for filters whose init never ran (one below failed): their
 * on_close must not run on state they never set up. */
static const nf_filter_ops_t k_not_initialized = {.size = sizeof(nf_filter_ops_t), .name = "not-initialized"};

int nf__filters_init(nf_conn_t *c)
{
    for (nf_filter_t *f = c->fbottom; f; f = f->up) {
        if (f->ops->init) {
            int err = f->ops->init(f);
            if (err) {
                for (nf_filter_t *g = f->up; g; g = g->up)
                    g->ops = &k_not_initialized;
                return err;
            }
        }
    }
    return 0;
}

void nf__filters_close(nf_conn_t *c, int reason)
{
    for (nf_filter_t *f = c->fbottom; f; f = f->up)
        if (f->ops->on_close)
            f->ops->on_close(f, reason);
}

NF__EXPORT nf_filter_t *nf_conn_filter(const nf_conn_t *c, const nf_filter_ops_t *ops)
{
    for (nf_filter_t *f = c->fbottom; f; f = f->up)
        if (f->ops == ops)
            return f;
    return NULL;
}

/* ---- up ---------------------------------------------------------------------- */

void nf__filter_open(nf_filter_t *f)
{
    if (f->ops->on_open)
        f->ops->on_open(f);
    else
        nf_filter_open_up(f);
}

NF__EXPORT void nf_filter_open_up(nf_filter_t *f)
{
    nf_conn_t *c = f->conn;
    if (c->flags & NF__C_CLOSING)
        return;
    if (f->up)
        nf__filter_open(f->up);
    else if (c->h->on_open)
        c->h->on_open(c);
}

void nf__filter_read(nf_filter_t *f, const char *data, size_t len)
{
    if (f->ops->on_read)
        f->ops->on_read(f, data, len);
    else
        nf_filter_read_up(f, data, len);
}

NF__EXPORT void nf_filter_read_up(nf_filter_t *f, const char *data, size_t len)
{
    nf_conn_t *c = f->conn;
    if (c->flags & (NF__C_CLOSING | NF__C_END))
        return;
    if (f->up)
        nf__filter_read(f->up, data, len);
    else
        c->h->on_read(c, data, len);
}

void nf__filter_eof(nf_filter_t *f)
{
    if (f->ops->on_eof)
        f->ops->on_eof(f);
    else
        nf_filter_eof_up(f);
}

NF__EXPORT void nf_filter_eof_up(nf_filter_t *f)
{
    nf_conn_t *c = f->conn;
    if (c->flags & NF__C_CLOSING)
        return;
    if (f->up)
        nf__filter_eof(f->up);
    else if (c->h->on_eof)
        c->h->on_eof(c);
    else { /* as without filters: flush, close with NF_EOF */
        c->flags |= NF__C_PEER_END;
        nf__filter_close(c->ftop, NF_HOW_END);
    }
}

void nf__filter_drain(nf_filter_t *f)
{
    if (f->ops->on_drain)
        f->ops->on_drain(f);
    else
        nf_filter_drain_up(f);
}

NF__EXPORT void nf_filter_drain_up(nf_filter_t *f)
{
    nf_conn_t *c = f->conn;
    if (c->flags & NF__C_CLOSING)
        return;
    if (f->up)
        nf__filter_drain(f->up);
    else if (c->h->on_drain)
        c->h->on_drain(c);
}

/* ---- down -------------------------------------------------------------------- */

int nf__filter_write(nf_filter_t *f, nf_buf_t *b)
{
    if (f->ops->write)
        return f->ops->write(f, b);
    return nf_filter_write_down(f, b);
}

NF__EXPORT int nf_filter_write_down(nf_filter_t *f, nf_buf_t *b)
{
    if (f->down)
        return nf__filter_write(f->down, b);
    return nf__transport_write(f->conn, b);
}

int nf__filter_shutdown(nf_filter_t *f)
{
    if (f->ops->shutdown)
        return f->ops->shutdown(f);
    return nf_filter_shutdown_down(f);
}

NF__EXPORT int nf_filter_shutdown_down(nf_filter_t *f)
{
    if (f->down)
        return nf__filter_shutdown(f->down);
    return nf__transport_shutdown(f->conn);
}

void nf__filter_close(nf_filter_t *f, nf_close_how_t how)
{
    if (f->ops->close)
        f->ops->close(f, how);
    else
        nf_filter_close_down(f, how);
}

NF__EXPORT void nf_filter_close_down(nf_filter_t *f, nf_close_how_t how)
{
    if (f->down)
        nf__filter_close(f->down, how);
    else
        nf__transport_close(f->conn, how);
}

/* ---- what a filter may ask of its connection (filter.h) ------------------ */

NF__EXPORT void nf_filter_fail(nf_filter_t *f, int reason) { nf__conn_fail(f->conn, reason); }

NF__EXPORT void nf_filter_end(nf_filter_t *f, int reason)
{
    f->conn->reason = reason; /* kept by the transport's graceful close */
    nf_filter_close_down(f, NF_HOW_END);
}

NF__EXPORT int nf_filter_closing(const nf_filter_t *f) { return (f->conn->flags & NF__C_CLOSING) != 0; }

NF__EXPORT void nf_filter_read_hold(nf_filter_t *f, bool on) { nf__conn_read_hold(f->conn, NF__RHOLD_FILTER, on); }

NF__EXPORT int nf_filter_read_paused(const nf_filter_t *f) { return (f->conn->flags & NF__C_RPAUSED) != 0; }

NF__EXPORT int nf_filter_read_once(const nf_filter_t *f) { return (f->conn->flags & NF__C_RONCE) != 0; }

NF__EXPORT void nf_filter_unread(nf_filter_t *f, nf_buf_t *b) { nf__conn_unread(f->conn, b); }

NF__EXPORT nf_buf_t *nf_filter_set_read_buf(nf_filter_t *f, nf_buf_t *b)
{
    nf__net_t *n = f->conn->net;
    nf_buf_t *prev = n->cur_read;
    n->cur_read = b;
    return prev;
}

NF__EXPORT void nf_filter_set_peer_addr(nf_filter_t *f, const nf_addr_t *addr) { f->conn->peer_override = addr; }

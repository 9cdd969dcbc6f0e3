/* netframe — connection filters.
 *
 * A filter sits between the transport (the TCP connection) and the program's
 * handler. Completions travel up, requests travel down:
 *
 *        program handler  (on_open, on_read, on_eof, on_drain, on_close)
 *              ^  |
 *   filter[n-1]|  |   nf_conn_write / nf_conn_shutdown / nf_conn_close ...
 *      ...     |  v
 *   filter[0]  ^  |
 *        transport: socket, write queue, backend
 *
 * filters[0] is the one next to the transport; filters[n-1] the one next to
 * the program. Bytes handed up by on_read lie in a read buffer the loop owns
 * and are writable during the call: a filter may transform them in place
 * (unmask, decrypt) before passing them on. Each op of a filter is optional: a missing op passes the event
 * on unchanged. A filter may swallow an event (not pass it), change it (pass
 * other bytes), or generate events (write a reply down, deliver data up) by
 * calling the nf_filter_*_up / nf_filter_*_down functions below, which reach
 * only its neighbours.
 *
 * Each connection gets one instance of every filter of its listener or
 * connector, with `state_size` zeroed bytes of private state. on_close runs
 * for every filter, bottom up, before the program's on_close; the instance
 * and its state are freed after the program's on_close returns. */
#ifndef NETFRAME_FILTER_H
#define NETFRAME_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "tcp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_filter nf_filter_t;

/* What a write did (returned by nf_conn_write and filter write ops): */
#define NF_WRITE_OK      0 /* queued for the kernel */
#define NF_WRITE_HELD    1 /* held back by flow control: will be sent later */
#define NF_WRITE_DROPPED 2 /* discarded by flow control policy: never sent */

/* How a close request travels down: */
typedef enum nf_close_how {
    NF_HOW_END = 0, /* graceful: flush, then close (nf_conn_end) */
    NF_HOW_CLOSE,   /* now, dropping what is queued (nf_conn_close) */
    NF_HOW_ABORT,   /* reset (nf_conn_abort) */
} nf_close_how_t;

typedef struct nf_filter_ops {
    size_t size; /* sizeof(nf_filter_ops_t) */
    const char *name;
    size_t state_size; /* private per-connection state, zeroed */
    /* the connection was created (before on_open); may fail with -errno */
    int (*init)(nf_filter_t *f);
    /* up */
    void (*on_open)(nf_filter_t *f);
    void (*on_read)(nf_filter_t *f, const char *data, size_t len);
    void (*on_eof)(nf_filter_t *f);
    void (*on_drain)(nf_filter_t *f);
    void (*on_close)(nf_filter_t *f, int reason); /* release state; not passed by the filter */
    /* down */
    int (*write)(nf_filter_t *f, nf_buf_t *b); /* takes b's reference; NF_WRITE_* or -errno */
    int (*shutdown)(nf_filter_t *f);
    void (*close)(nf_filter_t *f, nf_close_how_t how);
} nf_filter_ops_t;

/* One filter of a stack: its ops and its configuration, shared by every
 * connection (must outlive the listener / connector). */
typedef struct nf_filter_spec {
    const nf_filter_ops_t *ops;
    const void *config;
} nf_filter_spec_t;

struct nf_filter {
    const nf_filter_ops_t *ops;
    const void *config;
    nf_conn_t *conn;
    nf_filter_t *up, *down; /* NULL: the program above / the transport below */
    void *state;
};

/* Pass an event to the neighbour above (or the program's handler). */
void nf_filter_open_up(nf_filter_t *f);
void nf_filter_read_up(nf_filter_t *f, const char *data, size_t len);
void nf_filter_eof_up(nf_filter_t *f);
void nf_filter_drain_up(nf_filter_t *f);

/* Pass a request to the neighbour below (or the transport). */
int nf_filter_write_down(nf_filter_t *f, nf_buf_t *b);
int nf_filter_shutdown_down(nf_filter_t *f);
void nf_filter_close_down(nf_filter_t *f, nf_close_how_t how);

/* The instance of `ops` on connection c, or NULL. */
nf_filter_t *nf_conn_filter(const nf_conn_t *c, const nf_filter_ops_t *ops);

/* ---- what a filter may ask of its connection -----------------------------
 *
 * The built-in filters (flow control, timeouts, TLS, PROXY, WebSocket) reach
 * the transport through these and the functions above, as any filter can. */

/* Closes the connection now, dropping what is queued, with `reason` as its
 * on_close reason (-ETIMEDOUT, NF_ESLOW, a protocol's code). No-op once
 * closing. */
void nf_filter_fail(nf_filter_t *f, int reason);

/* A graceful close with `reason` as the on_close reason: what is queued
 * below f is sent first (a TLS alert, a close frame), then the connection
 * closes (NF_HOW_END passed down from f). */
void nf_filter_end(nf_filter_t *f, int reason);

/* Non-zero once the connection is closing (a close was asked, or it failed):
 * start no new work. A graceful end not yet done does not count (see
 * nf_conn_is_closing, which counts it). */
int nf_filter_closing(const nf_filter_t *f);

/* The filters' read hold: `on` stops reading the socket (reads already on
 * their way are kept, in order), `!on` releases it. One hold for all the
 * filters of a connection, apart from the program's nf_conn_read_stop and
 * the transport's own write-queue hold: reading runs only while none is
 * set. Reads kept meanwhile are delivered from the loop, never from inside
 * this call. */
void nf_filter_read_hold(nf_filter_t *f, bool on);

/* The program paused reading (nf_conn_read_stop), or asked for one read only
 * (nf_conn_read_once): a filter that hands up bytes of its own outside a
 * read from below (the PROXY filter, after the header) honours them. */
int nf_filter_read_paused(const nf_filter_t *f);
int nf_filter_read_once(const nf_filter_t *f);

/* Puts bytes in front of the reads the transport keeps while reading is
 * paused: delivered first when it resumes. Takes a reference to b. */
void nf_filter_unread(nf_filter_t *f, nf_buf_t *b);

/* Sets the buffer nf_conn_keep_read() returns a reference to, for the bytes
 * this filter hands up next: b when they lie in b (a buffer the filter
 * made), NULL when the program may not keep them (a filter's scratch output,
 * such as decrypted bytes). Returns the previous one, which the filter puts
 * back when it has handed its bytes up. */
nf_buf_t *nf_filter_set_read_buf(nf_filter_t *f, nf_buf_t *b);

/* Sets the address nf_conn_peer_addr() reports instead of the socket's
 * (the PROXY filter: the client behind the proxy). `addr` must stay valid
 * while the connection lives (in the filter's state). */
void nf_filter_set_peer_addr(nf_filter_t *f, const nf_addr_t *addr);

/* ---- built-in filters: timeouts --------------------------------------- */

/* Closes the connection with -ETIMEDOUT when no byte was read for
 * `timeout_ms` (read timeout), or when nothing was read or written for
 * `timeout_ms` (idle timeout). Activity costs a clock read; the timer is
 * re-armed only when it fires early. Config: nf_timeout_config_t. */
typedef struct nf_timeout_config {
    uint64_t timeout_ms;
} nf_timeout_config_t;

extern const nf_filter_ops_t nf_read_timeout_filter;
extern const nf_filter_ops_t nf_idle_timeout_filter;

#ifdef __cplusplus
}
#endif
#endif

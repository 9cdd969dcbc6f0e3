/* netframe — a reconnecting connector: an outbound TCP connection kept up.
 *
 * nf_reconnect_start() connects to host:port and keeps doing so: when the
 * connection closes or a connect fails, it waits (exponential backoff with
 * jitter) and connects again, until nf_reconnect_stop(). The program holds
 * one stable handle, nf_reconnect_t, and writes to it; it never has to keep
 * a pointer to a connection that may die. Each new connection gets the
 * configured filters again (a fresh instance of each spec).
 *
 *   state callback:  CONNECTING → UP → DOWN(reason) → BACKOFF(delay) →
 *                    CONNECTING → ... → STOPPED (the last call)
 *
 * Writes made while the connection is not up (connecting, backing off) are
 * either held — up to max_held_bytes / max_held_writes, then written, in
 * order, on the next connection before anything written after it — or
 * refused, as configured. Bytes already handed to a connection that then
 * dies are lost with it (TCP does not say what the peer received): a
 * program that needs delivery must acknowledge at its own level. */
#ifndef NETFRAME_RECONNECT_H
#define NETFRAME_RECONNECT_H

#include <stddef.h>
#include <stdint.h>

#include "tcp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_reconnect nf_reconnect_t;

typedef enum nf_reconnect_state {
    NF_RC_CONNECTING = 0, /* a connect is in progress */
    NF_RC_UP,             /* connected: on_open of the connection ran */
    NF_RC_DOWN,           /* the connection closed or the connect failed; reason given */
    NF_RC_BACKOFF,        /* waiting delay_ms before the next connect */
    NF_RC_STOPPED,        /* after nf_reconnect_stop: the last callback; the handle is freed after it */
} nf_reconnect_state_t;

typedef enum nf_reconnect_jitter {
    NF_RC_JITTER_FULL = 0,     /* delay uniform in [0, base] (default) */
    NF_RC_JITTER_NONE,         /* delay = base = min(max, initial * multiplier^n) */
    NF_RC_JITTER_DECORRELATED, /* delay uniform in [initial, previous * multiplier], capped at max */
} nf_reconnect_jitter_t;

typedef enum nf_reconnect_down_policy {
    NF_RC_HOLD = 0, /* hold writes while down (bounded), flush them on reconnect */
    NF_RC_REFUSE,   /* refuse writes while down: nf_reconnect_write returns -ENOTCONN */
} nf_reconnect_down_policy_t;

typedef struct nf_reconnect_config {
    /* The connection: host, port, timeout_ms, nodelay, keepalive_s, filters,
     * oob_inline and the write-queue limits (write_high_water, ...) as for
     * nf_connect. `handler` and `data` are ignored: the
     * connector's own handler drives each connection. */
    nf_connect_config_t connect;

    uint64_t initial_ms; /* first backoff delay; 0: 100 */
    uint64_t max_ms;     /* cap; 0: 30000 */
    double multiplier;   /* growth per failed attempt; <= 1: 2.0 */
    nf_reconnect_jitter_t jitter;
    uint64_t seed; /* jitter's random generator; 0: seeded from the clock and the handle */

    nf_reconnect_down_policy_t down_policy;
    size_t max_held_bytes;  /* NF_RC_HOLD: 0: 1 MiB */
    size_t max_held_writes; /* NF_RC_HOLD: 0: no limit on the count */

    /* Required. Each state change. reason: for NF_RC_DOWN, why (-ECONNREFUSED,
     * NF_EOF, -ETIMEDOUT, a filter's reason, ...); else 0. delay_ms: for
     * NF_RC_BACKOFF, the wait before the next connect; else 0. May call
     * nf_reconnect_write or nf_reconnect_stop. */
    void (*on_state)(nf_reconnect_t *rc, nf_reconnect_state_t state, int reason, uint64_t delay_ms);
    /* Required. Bytes from the current connection (valid during the call). */
    void (*on_read)(nf_reconnect_t *rc, const char *data, size_t len);
    /* Optional. The current connection's queues emptied (nf_conn's on_drain). */
    void (*on_drain)(nf_reconnect_t *rc);
    void *data; /* the handle's user pointer */
} nf_reconnect_config_t;

typedef struct nf_reconnect_stats {
    uint64_t connects;       /* connect attempts started */
    uint64_t ups;            /* connections that came up */
    uint64_t failures;       /* attempts that never came up */
    uint64_t downs;          /* connections that were up and closed */
    uint64_t writes_held;    /* writes held while down (ever) */
    uint64_t writes_flushed; /* held writes written on a new connection */
    uint64_t writes_dropped; /* writes discarded: over the hold limit, or held when stopped */
    uint64_t bytes_dropped;
    uint64_t writes_refused; /* NF_RC_REFUSE: writes refused while down */
    size_t held_bytes;       /* held now */
    size_t held_writes;
    unsigned attempt; /* failed attempts since the last up (drives the backoff) */
} nf_reconnect_stats_t;

/* Starts the first connect (CONNECTING is reported from a later loop
 * iteration, like every callback). Copies *cfg (the filter array and its
 * configs must outlive the handle). Returns 0 and sets *out, or -EINVAL
 * (missing host, on_state or on_read; write_low_water >= write_high_water)
 * / -ENOMEM; no callback then. */
int nf_reconnect_start(nf_loop_t *loop, const nf_reconnect_config_t *cfg, nf_reconnect_t **out);

/* Writes a copy of data: to the connection when up (nf_conn_write's result:
 * NF_WRITE_OK / NF_WRITE_HELD / NF_WRITE_DROPPED from a flow filter); while
 * down, NF_WRITE_HELD (held, sent on the next connection), NF_WRITE_DROPPED
 * (over the hold limit: discarded, counted) or -ENOTCONN (NF_RC_REFUSE,
 * counted). NF_ECLOSED after nf_reconnect_stop; -ENOMEM. */
int nf_reconnect_write(nf_reconnect_t *rc, const void *data, size_t len);

/* Stops: cancels the backoff timer, ends the current connection gracefully
 * (what it queued is sent, then it closes) or cancels the connect in
 * progress, drops held writes (counted in writes_dropped), then reports
 * NF_RC_STOPPED (from a later loop iteration or the connection's close) and
 * frees the handle. Idempotent. */
void nf_reconnect_stop(nf_reconnect_t *rc);

/* The current connection when up, else NULL. Valid until the next
 * NF_RC_DOWN; do not close it directly unless a reconnect is wanted. */
nf_conn_t *nf_reconnect_conn(const nf_reconnect_t *rc);
nf_reconnect_state_t nf_reconnect_state(const nf_reconnect_t *rc);
void nf_reconnect_stats(const nf_reconnect_t *rc, nf_reconnect_stats_t *out);
void *nf_reconnect_get_data(const nf_reconnect_t *rc);
void nf_reconnect_set_data(nf_reconnect_t *rc, void *data);

#ifdef __cplusplus
}
#endif
#endif

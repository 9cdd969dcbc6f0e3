/* netframe — flow control for asynchronous writes.
 *
 * With asynchronous writes the receiver decides how long the sender's
 * buffers live: a peer that reads slowly makes a naive sender's queue — and
 * its memory — grow without bound. The flow-control filter bounds it:
 *
 *   - up to `max_inflight_bytes` (and `max_inflight_writes` buffers) are
 *     handed to the transport (bytes the kernel has not accepted yet,
 *     nf_conn_queued()); writes beyond are held, whole, in the filter's queue (nf_conn_write returns
 *     NF_WRITE_HELD);
 *   - past `max_held_bytes` or `max_held_writes` held, `policy` applies:
 *     drop the newest write (NF_WRITE_DROPPED), drop the oldest held writes
 *     until the new one fits, ask a callback, or close the connection as a
 *     slow consumer (reason NF_ESLOW);
 *   - on_drain reaches the program once the total queued (held + in flight)
 *     falls to `low_water` after having risen above `high_water`
 *     (hysteresis: not on every byte).
 *
 * A write whose buffer carries NF_BUF_PRIORITY (buf.h; the WebSocket layer
 * marks pongs and close frames so) is held past the limits above, counted
 * in held_bytes / held_writes, and drop-oldest skips it — up to
 * `max_priority_bytes` of priority writes held (default 64 KiB). Past that
 * cap the policy applies to the priority write itself: NF_FLOW_CLOSE closes
 * with NF_ESLOW; NF_FLOW_DROP_NEWEST and NF_FLOW_DROP_OLDEST drop it (the
 * newest: held priority writes stay, in order) and return NF_WRITE_DROPPED
 * (the WebSocket layer then closes the connection with NF_ESLOW if it was
 * its close frame, since the peer would never see it); NF_FLOW_CALLBACK asks
 * on_overflow. The WebSocket layer keeps at most one pong and one close
 * frame below, so it never reaches the cap by itself.
 *
 * Reading follows held output: while more than `high_water` bytes are held
 * the filter stops reading the connection (a read hold, like
 * nf_conn_read_stop but apart from the program's), and reads again once the
 * held bytes drained to `low_water`. A peer whose own input makes output it
 * never reads (pings, requests) thereby closes its own TCP window instead of
 * growing the queue; the program's read/idle timeouts still run. By default
 * on accepted connections only (`read_hold`).
 *
 * Writes are never split: a held or dropped write is one nf_conn_write call.
 * Bytes held count what the filter above handed down: what the program wrote,
 * or TLS records when the flow filter sits below TLS ({flow, tls}: counted as
 * they go on the wire; see docs/tls.md). */
#ifndef NETFRAME_FLOW_H
#define NETFRAME_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "filter.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NF_ESLOW (error.h): closed as a slow consumer (on_close reason). */

typedef enum nf_flow_policy {
    NF_FLOW_DROP_NEWEST = 0, /* the write that does not fit is discarded */
    NF_FLOW_DROP_OLDEST,     /* held writes are discarded, oldest first */
    NF_FLOW_CALLBACK,        /* on_overflow decides */
    NF_FLOW_CLOSE,           /* the connection is closed with NF_ESLOW */
} nf_flow_policy_t;

/* What on_overflow returns: */
#define NF_FLOW_HOLD 0 /* hold the new write anyway */
#define NF_FLOW_DROP 1 /* discard the new write */
#define NF_FLOW_SLOW 2 /* close the connection as a slow consumer */

typedef struct nf_flow_config {
    size_t max_inflight_bytes;  /* 0: 256 KiB */
    size_t max_inflight_writes; /* 0: no limit on the count of buffers queued below */
    size_t max_held_bytes;      /* 0: 4 MiB */
    size_t max_held_writes;     /* 0: no limit on the count */
    size_t high_water;          /* 0: max_inflight_bytes */
    size_t low_water;           /* 0: high_water / 2 */
    nf_flow_policy_t policy;
    /* NF_FLOW_CALLBACK: called with the write that does not fit; it may
     * inspect and drop held writes (nf_flow_drop_oldest) and returns
     * NF_FLOW_HOLD, NF_FLOW_DROP or NF_FLOW_SLOW. */
    int (*on_overflow)(nf_conn_t *c, size_t incoming_len);
    /* Priority writes (NF_BUF_PRIORITY) held at once, in bytes; 0: 64 KiB.
     * Past it `policy` applies to them as well (see above). */
    size_t max_priority_bytes;
    /* Holding reading while more than high_water bytes are held (see
     * above): 0: on for accepted connections, off for outbound ones (a
     * client uploading to a server that pauses too would deadlock: each
     * waits for the other to read); > 0: on for both; < 0: off. */
    int read_hold;
} nf_flow_config_t;

extern const nf_filter_ops_t nf_flow_filter;

typedef struct nf_flow_stats {
    size_t held_bytes;       /* now */
    size_t held_writes;      /* now */
    size_t held_bytes_hwm;   /* the most ever held */
    uint64_t writes_held;    /* writes that had to wait */
    uint64_t writes_dropped; /* writes discarded by policy */
    uint64_t bytes_dropped;
    uint64_t drains; /* on_drain deliveries */
} nf_flow_stats_t;

/* Copies c's flow statistics; -ENOENT when c has no flow filter. */
int nf_flow_stats(const nf_conn_t *c, nf_flow_stats_t *out);

/* Discards up to n of the oldest held writes; returns how many. For
 * on_overflow, or any time. */
size_t nf_flow_drop_oldest(nf_conn_t *c, size_t n);

#ifdef __cplusplus
}
#endif
#endif

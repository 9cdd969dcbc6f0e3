/* netframe — pub/sub topics with encode-once fan-out (docs/pubsub.md).
 *
 * A hub (nf_pubsub_t) belongs to one loop. Connections of that loop subscribe
 * to topics (any bytes, up to NF_PUBSUB_TOPIC_MAX); a publish frames the
 * message once into one reference-counted buffer that every subscriber's
 * write queue shares: no per-subscriber copy or framing.
 *
 *   WebSocket subscribers (server connections): one unmasked frame shared
 *     by all of them. Client or Hixie-76 connections may subscribe too; they
 *     get a copy framed for them (nf_ws_send).
 *   TCP subscribers: connections whose filter stack lists nf_pubsub_filter
 *     (on top); they get the payload as given, or the program's framer's
 *     output (built once per message and loop).
 *
 * A connection's subscriptions are released when it closes. Hubs of the loops
 * of one nf_server join an nf_pubsub_group_t: a publish on any of them, or
 * nf_pubsub_group_publish from any thread, reaches the subscribers of every
 * loop; the message is copied once and shared by the loops (an atomic count).
 *
 * Slow subscribers: before each delivery the hub looks at the subscriber's
 * transport queue (nf_conn_queued): when it is not empty and this message
 * would take it past max_queued, the message is not written to that
 * subscriber (NF_PUBSUB_SLOW_DROP: this message is dropped for it, the ones
 * queued earlier stay and are sent; counted in the topic's `dropped`) or the
 * connection is closed with NF_ESLOW (NF_PUBSUB_SLOW_CLOSE). A flow filter
 * below applies its own policy on top (its drops count in `dropped` too,
 * when it drops the write the hub made).
 *
 * Everything but nf_pubsub_group_publish runs on the hub's loop thread. */
#ifndef NETFRAME_PUBSUB_H
#define NETFRAME_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "filter.h"
#include "loop.h"
#include "tcp.h"
#include "ws.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nf_pubsub nf_pubsub_t;
typedef struct nf_pubsub_group nf_pubsub_group_t;

/* The longest topic name, in bytes. */
#define NF_PUBSUB_TOPIC_MAX 1024

typedef enum nf_pubsub_slow {
    NF_PUBSUB_SLOW_DROP = 0, /* skip this message for that subscriber */
    NF_PUBSUB_SLOW_CLOSE,    /* close the subscriber with NF_ESLOW */
} nf_pubsub_slow_t;

/* Frames a message for TCP subscribers: returns a new buffer (one
 * reference) holding what every TCP subscriber of the loop is sent, or NULL
 * (the message is then dropped for them, counted). Called at most once per
 * message and loop, on that loop's thread. */
typedef nf_buf_t *(*nf_pubsub_framer_fn)(void *arg, unsigned opcode, const void *data, size_t len);

typedef struct nf_pubsub_config {
    /* The bound on a subscriber's queued bytes (see above). 0:
     * NF_WRITE_HIGH_DEFAULT (1 MiB); NF_WRITE_LIMIT_OFF: the hub does not
     * check (the connection's own ceiling still closes it, NF_EWQFULL). */
    size_t max_queued;
    nf_pubsub_slow_t slow;
    nf_pubsub_framer_fn framer; /* NULL: TCP subscribers get the payload */
    void *framer_arg;
    /* Optional: the group this hub joins as member `index` (every member on
     * a different loop; see nf_pubsub_group_new). */
    nf_pubsub_group_t *group;
    unsigned index;
} nf_pubsub_config_t;

/* Makes a hub on loop (cfg may be NULL: defaults). Returns 0 and sets *out,
 * or -ENOMEM, -EINVAL (index out of the group's range), -EBUSY (that member
 * of the group is taken). */
int nf_pubsub_new(nf_loop_t *loop, const nf_pubsub_config_t *cfg, nf_pubsub_t **out);

/* Releases every subscription and topic and frees the hub (and leaves its
 * group: messages still on their way to it are dropped). Loop thread; not
 * from inside a delivery of this hub. NULL is ignored. */
void nf_pubsub_free(nf_pubsub_t *ps);

/* Subscribes an open WebSocket connection of the hub's loop to topic[0..len).
 * A connection belongs to at most one hub. Returns 0, -EALREADY (subscribed
 * already), -EINVAL (len 0 or > NF_PUBSUB_TOPIC_MAX), -ENOTCONN (not open),
 * -EBUSY (it belongs to another hub, or another layer is attached), -EXDEV
 * (another loop), -ENOMEM. */
int nf_pubsub_subscribe(nf_pubsub_t *ps, nf_ws_conn_t *ws, const char *topic, size_t len);
/* Returns 0 or -ENOENT (not subscribed). Safe inside a delivery. */
int nf_pubsub_unsubscribe(nf_pubsub_t *ps, nf_ws_conn_t *ws, const char *topic, size_t len);

/* The filter that makes a TCP connection a possible subscriber: list it
 * last (on top) in the connection's filters. Its state holds the
 * connection's subscriptions; they are released when it closes. */
extern const nf_filter_ops_t nf_pubsub_filter;

/* As nf_pubsub_subscribe, for a TCP connection with nf_pubsub_filter
 * (-ENOENT without it). */
int nf_pubsub_subscribe_tcp(nf_pubsub_t *ps, nf_conn_t *c, const char *topic, size_t len);
int nf_pubsub_unsubscribe_tcp(nf_pubsub_t *ps, nf_conn_t *c, const char *topic, size_t len);

/* Publishes data[0..len) to every subscriber of topic: opcode is
 * NF_WS_OP_TEXT or NF_WS_OP_BINARY (for WebSocket subscribers; given to the
 * framer). `except` (an nf_ws_conn_t * or nf_conn_t * of this hub, or NULL)
 * is skipped. In a group, the subscribers of the other loops get it too,
 * from their loops, soon after. Returns the number of local subscribers the
 * message was queued for (dropped and failed ones are not counted), or
 * -EINVAL (bad opcode or topic), -ENOMEM. A subscriber added during a
 * delivery (by a callback) does not get the message being delivered. */
int nf_pubsub_publish(nf_pubsub_t *ps, const char *topic, size_t tlen, unsigned opcode, const void *data, size_t len);
int nf_pubsub_publish_except(nf_pubsub_t *ps, const char *topic, size_t tlen, unsigned opcode, const void *data,
                             size_t len, const void *except);

/* Subscribers of topic on this hub's loop (0 when the topic is unknown). */
unsigned nf_pubsub_count(const nf_pubsub_t *ps, const char *topic, size_t len);
/* Topics with at least one subscriber on this hub. */
size_t nf_pubsub_topics(const nf_pubsub_t *ps);

typedef struct nf_pubsub_topic_stats {
    unsigned subscribers;
    uint64_t published; /* messages delivered to this topic on this loop */
    uint64_t delivered; /* writes queued for subscribers */
    uint64_t dropped;   /* messages not written to a subscriber (slow,
                           flow filter, write error) */
} nf_pubsub_topic_stats_t;

/* The topic's counters on this hub (they live as long as the topic has
 * subscribers). Returns 0 or -ENOENT. */
int nf_pubsub_topic_stats(const nf_pubsub_t *ps, const char *topic, size_t len, nf_pubsub_topic_stats_t *out);

/* ---- groups: one hub per loop of a server ------------------------------ */

/* A group of n hubs (one per loop: nf_pubsub_config_t.group / index).
 * Returns 0 and sets *out, or -EINVAL (n 0), -ENOMEM. */
int nf_pubsub_group_new(unsigned n, nf_pubsub_group_t **out);
/* Frees the group, once every member hub is freed and no loop runs any
 * more (after nf_server_wait). NULL is ignored. */
void nf_pubsub_group_free(nf_pubsub_group_t *g);
/* Publishes from any thread (a loop's or not): the message is copied once
 * and posted to every member's loop (nf_loop_post), which delivers it to
 * its subscribers. Messages published from one thread reach each
 * subscriber in the order published. Returns the number of loops it was
 * posted to, or -EINVAL, -ENOMEM. */
int nf_pubsub_group_publish(nf_pubsub_group_t *g, const char *topic, size_t tlen, unsigned opcode, const void *data,
                            size_t len);

#ifdef __cplusplus
}
#endif
#endif

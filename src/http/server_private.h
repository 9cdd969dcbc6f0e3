/* netframe — the HTTP/1.1 server (see netframe/http_server.h, docs/http.md).
 *
 * Per connection: the request stream reader, a FIFO of requests in arrival
 * order, one deadline timer and one "kick" timer for work deferred out of
 * the program's calls. Only the request at the head of the FIFO writes to
 * the connection; a later one that answers first keeps its bytes in its own
 * buffer until it reaches the head, so responses leave in request order.
 * Reading pauses (nf_conn_read_stop, the rest of the read kept in `stash`)
 * while max_pipeline requests wait for their responses, while a streamed
 * body's consumer paused, and after a request that ends the connection.
 *
 * The private header of src/http/server.c (the server, timers, routing,
 * reading, the connection handler) and src/http/response.c (the response
 * queue, the answers the server makes, the program's calls). */
#ifndef NF_HTTP_SERVER_PRIVATE_H
#define NF_HTTP_SERVER_PRIVATE_H
#include <errno.h>
#include "base/export.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netframe/http_server.h"
#include "netframe/timer.h"

#define DEF_STREAM_BODY   ((uint64_t)64 * 1024 * 1024)
#define DEF_PIPELINE      16
#define DEF_HEAD_TIMEOUT  10000
#define DEF_BODY_TIMEOUT  60000
#define DEF_IDLE_TIMEOUT  30000
#define DEF_WRITE_TIMEOUT 30000
#define DEF_STREAM_HWM    ((size_t)256 * 1024)

struct nf_http_server {
    nf_http_server_config_t cfg;
    _Atomic uint64_t conns_open, requests, responses, errors, t_head, t_body, t_idle, t_write, upgrades;
};

typedef struct hconn hconn_t;
typedef struct hreq hreq_t;

enum { T_NONE, T_IDLE, T_HEAD, T_BODY, T_WRITE, T_LINGER };
enum { R_NONE, R_STREAM, R_DONE };

struct hreq {
    nf_http_req_t pub;
    hconn_t *hc; /* NULL once detached from its connection */
    hreq_t *next;
    const nf_http_req_ops_t *ops;
    int is_head;    /* HEAD: no body bytes */
    int keep_alive; /* this exchange lets the connection go on */
    int streamed;   /* STREAM_BODY route */
    int called;     /* the handler has run */
    int req_done;   /* the request was read to its end */
    int resp;       /* R_* */
    int chunked;    /* chunked response */
    int waiting;    /* got NF_HTTP_WAIT */
    int no_body;    /* response carries no body (HEAD, 1xx, 204, 304) */
    uint64_t left;  /* response bytes still owed (length known) */
    int has_len;
    char *out; /* bytes waiting for this request to reach the head */
    size_t out_len, out_cap;
    char *body;
    size_t body_len, body_cap;
    char *head; /* the head copied */
    nf_http_header_t *hdrs;
};

struct hconn {
    nf_http_server_t *srv;
    nf_conn_t *c;
    nf_http_reader_t rd;
    nf_timer_t timer, kick;
    int tstate;
    hreq_t *qhead, *qtail, *cur;
    unsigned nq;
    char *stash;
    size_t stash_len;
    int paused_pipe, paused_body, stopped; /* stopped: no more requests are read */
    int close_after;                       /* end the connection once the queue is empty */
    int head_started;
    int in_advance, again, reading_stopped;
    int lingering; /* last answer sent: write side shut, reading and dropping until EOF */
    size_t linger_bytes;
};

static inline void s_add(_Atomic uint64_t *v, int64_t d)
{
    atomic_fetch_add_explicit(v, (uint64_t)d, memory_order_relaxed);
}

/* Shared between server.c and response.c. */
int nf__http_append(char **buf, size_t *len, size_t *cap, const void *p, size_t n);
void nf__http_arm(hconn_t *hc, int st);
const char *nf__http_date(void);
void nf__http_kick(hconn_t *hc);
void nf__http_rearm(hconn_t *hc);
void nf__http_advance(hconn_t *hc);
void nf__http_answer(hconn_t *hc, int status, int reason);
hreq_t *nf__http_new_req(hconn_t *hc);
void nf__http_req_free(hreq_t *r);
void nf__http_unlink_req(hconn_t *hc, hreq_t *r);

#endif

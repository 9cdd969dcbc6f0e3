/* netframe — the epoll backend's private header: its per-loop state and the
 * data tags of its registrations. epoll.c (the loop's engine, listeners,
 * connections, watches) calls udp.c (datagram sockets), which uses only this
 * header: no circle. */
#ifndef NF_BACKEND_EPOLL_H
#define NF_BACKEND_EPOLL_H

#include <stdint.h>

#include "backend/backend_private.h"

/* epoll data: the object | a tag (malloc'd objects are 16-byte aligned) */
enum { T_CONN = 0, T_LISTENER = 1, T_WAKE = 2, T_TIMER = 3, T_UDP = 4, T_WATCH = 5 };
#define T_MASK 7u

typedef struct nf__ep {
    int epfd;
    struct epoll_event *events;
    unsigned nevents;
    nf_buf_t *scratch;
    nf__io_t **again, **again2;
    unsigned nagain, again_cap;
    nf__watch_t *wdead; /* stopped watches, released after the events in hand */
} nf__ep_t;

static inline nf__ep_t *E(const nf_loop_t *loop) { return loop->be; }

/* udp.c */
int nf__epoll_udp_start(nf__io_t *u, unsigned recv_size, unsigned recv_count, char *features, size_t features_len);
void nf__epoll_udp_flush(nf__io_t *u);
void nf__epoll_udp_stop(nf__io_t *u);
void nf__epoll_udp_event(nf__io_t *u, uint32_t events);

#endif

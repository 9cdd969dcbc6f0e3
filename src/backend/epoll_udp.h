/* netframe — the epoll backend's UDP part (epoll_udp.c), hooked into epoll.c. */
#ifndef NF_BACKEND_EPOLL_UDP_H
#define NF_BACKEND_EPOLL_UDP_H

#include <stdint.h>

#include "net/udp_internal.h"

#define NF__EP_T_UDP 4u /* epoll data tag of a UDP socket (epoll.c's T_MASK covers it) */

int nf__epoll_fd(nf_loop_t *loop); /* epoll.c */

int nf__epoll_udp_start(nf_udp_t *u);
void nf__epoll_udp_flush(nf_udp_t *u);
void nf__epoll_udp_stop(nf_udp_t *u);
void nf__epoll_udp_event(nf_udp_t *u, uint32_t events);

#endif

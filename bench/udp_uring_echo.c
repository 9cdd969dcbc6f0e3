/*
 * nf_udp_uring_echo - the io_uring floor of the UDP echo benchmark: a
 * minimal UDP echo server written straight on liburing, no netframe.
 *
 * One socket (4 MiB receive and send buffers, as bench/udp_epoll_echo.c),
 * one ring, one thread.  A multishot recvmsg picks its buffers from one
 * provided-buffer ring (NBUF buffers of BUFSZ bytes); every datagram is sent
 * back with a sendmsg SQE whose address and payload point into that same
 * buffer (no copy), and the buffer goes back to the ring when the send has
 * completed.  All the sends a batch of completions asks for go to the kernel
 * in the next io_uring_submit_and_wait(1): one system call per loop
 * iteration, however many datagrams it echoes.  If the buffer ring runs dry
 * the kernel ends the multishot recvmsg (ENOBUFS); it is re-armed when sends
 * have returned buffers.  What it leaves out: registered files and buffers,
 * SQPOLL, zero-copy sends, GSO/GRO.
 *
 * Usage: nf_udp_uring_echo [--host H] --port P   (port 0: any free port)
 * Prints "listening on H:P udp backend=uring-floor"; exits 0 on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor_common.h"

#define NBUF    1024 /* power of two */
#define BUFSZ   2048
#define BGID    1
#define QDEPTH  2048
#define OP_RECV 0xffffffffull /* user_data of the recvmsg; a send's is its buffer id */

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static unsigned char *bufs;
static struct msghdr rmsg; /* the multishot recvmsg's template: name length only */
static struct msghdr smsg[NBUF];
static struct iovec siov[NBUF];

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static void buf_return(unsigned bid)
{
    io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, (unsigned short)bid, io_uring_buf_ring_mask(NBUF), 0);
    io_uring_buf_ring_advance(br, 1);
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recvmsg_multishot(sqe, fd, &rmsg, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, OP_RECV);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
    }
    if (port < 0) {
        fprintf(stderr, "usage: nf_udp_uring_echo [--host H] --port P\n");
        return 2;
    }
    int bound = 0;
    int fd = floor_socket(host, port, SOCK_DGRAM, &bound);
    if (fd < 0) {
        perror("nf_udp_uring_echo: bind");
        return 1;
    }
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);

    struct io_uring_params prm = {.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                                           IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int r = io_uring_queue_init_params(QDEPTH, &ring, &prm);
    if (r < 0) {
        fprintf(stderr, "nf_udp_uring_echo: io_uring_queue_init: %s\n", strerror(-r));
        return 1;
    }
    br = mmap(NULL, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    bufs = malloc((size_t)NBUF * BUFSZ);
    if (br == MAP_FAILED || bufs == NULL)
        return 1;
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NBUF, .bgid = BGID};
    r = io_uring_register_buf_ring(&ring, &reg, 0);
    if (r < 0) {
        fprintf(stderr, "nf_udp_uring_echo: io_uring_register_buf_ring: %s\n", strerror(-r));
        return 1;
    }
    for (unsigned i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUFSZ, BUFSZ, (unsigned short)i, io_uring_buf_ring_mask(NBUF),
                              (int)i);
    io_uring_buf_ring_advance(br, NBUF);
    rmsg.msg_namelen = sizeof(struct sockaddr_in6);

    floor_signals();
    arm_recv(fd);
    printf("listening on %s:%d udp backend=uring-floor\n", host, bound);
    fflush(stdout);

    unsigned long long in = 0, out = 0, rearm = 0;
    int armed = 1;
    unsigned inflight = 0; /* sends not completed */
    while (!stop) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR) {
            fprintf(stderr, "nf_udp_uring_echo: io_uring_submit_and_wait: %s\n", strerror(-r));
            break;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            if (ud != OP_RECV) { /* a send completed: its buffer goes back */
                if (cqe->res >= 0)
                    out++;
                inflight--;
                buf_return((unsigned)ud);
                if (!armed) {
                    arm_recv(fd);
                    armed = 1;
                    rearm++;
                }
                continue;
            }
            if (!(cqe->flags & IORING_CQE_F_MORE))
                armed = 0;
            if (!(cqe->flags & IORING_CQE_F_BUFFER))
                continue; /* ENOBUFS or an error: re-armed when a buffer returns */
            unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
            unsigned char *b = bufs + (size_t)bid * BUFSZ;
            struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(b, cqe->res, &rmsg);
            if (cqe->res < 0 || o == NULL || (o->flags & MSG_TRUNC)) {
                buf_return(bid);
                continue;
            }
            in++;
            siov[bid].iov_base = io_uring_recvmsg_payload(o, &rmsg);
            siov[bid].iov_len = io_uring_recvmsg_payload_length(o, cqe->res, &rmsg);
            smsg[bid].msg_name = io_uring_recvmsg_name(o);
            smsg[bid].msg_namelen = o->namelen;
            smsg[bid].msg_iov = &siov[bid];
            smsg[bid].msg_iovlen = 1;
            struct io_uring_sqe *sqe = sqe_get();
            io_uring_prep_sendmsg(sqe, fd, &smsg[bid], 0);
            io_uring_sqe_set_data64(sqe, bid);
            inflight++;
        }
        io_uring_cq_advance(&ring, seen);
        if (!armed && inflight == 0) {
            arm_recv(fd); /* ended without a send pending (an error, not a lack of buffers) */
            armed = 1;
            rearm++;
        }
    }
    fprintf(stderr, "nf_udp_uring_echo: in=%llu out=%llu rearmed=%llu\n", in, out, rearm);
    io_uring_queue_exit(&ring);
    close(fd);
    return 0;
}

/*
 * nf_uring_echo - the io_uring floor of the TCP echo benchmark: a minimal
 * echo server written straight on liburing, no netframe.
 *
 * One ring, one thread.  A multishot accept; per connection a multishot
 * recv that picks its buffers from one provided-buffer ring (NBUF buffers of
 * BUFSZ = 64 KiB, shared by all connections: 64 KiB reads, as the epoll
 * floor makes); each received buffer is sent
 * back as it is, and returned to the buffer ring once its send completed.
 * At most one send per connection is in flight (sends queued behind it keep
 * the byte order); a short send is resubmitted for the rest.  When the
 * buffer ring runs dry the kernel ends the multishot recv (ENOBUFS) and it
 * is re-armed once buffers come back.  Completions are reaped in batches:
 * io_uring_submit_and_wait(1), then every CQE there is.  TCP_NODELAY on the
 * accepted sockets.  What it leaves out: registered files, SQPOLL, zero-copy
 * sends, send bundles, any limit on memory per connection.
 *
 * Usage: nf_uring_echo [--host H] --port P   (port 0: any free port)
 * Prints "listening on H:P backend=uring-floor"; exits 0 on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor_common.h"

#define NBUF    512 /* power of two */
#define BUFSZ   65536
#define BGID    1
#define MAXCONN 4096
#define QDEPTH  4096

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
#define UD(op, fd) (((uint64_t)(op) << 32) | (uint32_t)(fd))

struct pend {
    uint16_t bid;
    uint32_t len, off;
};

struct conn {
    int open;
    int recv_armed;
    int sending; /* a send is in flight */
    int closing;
    struct pend *q; /* FIFO of buffers to send: q[head..head+n) */
    unsigned head, n, cap;
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static unsigned char *bufs;
static struct conn conns[MAXCONN];
static int starved; /* connections whose recv ended for lack of buffers */

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static void buf_return(uint16_t bid)
{
    io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, bid, io_uring_buf_ring_mask(NBUF), 0);
    io_uring_buf_ring_advance(br, 1);
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, UD(OP_RECV, fd));
    conns[fd].recv_armed = 1;
}

static void send_head(int fd)
{
    struct conn *c = &conns[fd];
    struct pend *p = &c->q[c->head];
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, fd, bufs + (size_t)p->bid * BUFSZ + p->off, p->len - p->off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, UD(OP_SEND, fd));
    c->sending = 1;
}

static void conn_close(int fd)
{
    struct conn *c = &conns[fd];
    c->closing = 1;
    if (c->recv_armed == 1) {
        shutdown(fd, SHUT_RDWR); /* ends the multishot recv; its last completion comes back here */
        return;
    }
    if (c->sending)
        return; /* its completion comes back here */
    if (c->recv_armed == -1)
        starved--;
    for (unsigned i = 0; i < c->n; i++)
        buf_return(c->q[(c->head + i) % c->cap].bid);
    free(c->q);
    memset(c, 0, sizeof *c);
    close(fd);
}

static void enqueue(int fd, uint16_t bid, uint32_t len)
{
    struct conn *c = &conns[fd];
    if (c->n == c->cap) {
        unsigned ncap = c->cap ? c->cap * 2 : 8;
        struct pend *nq = malloc(ncap * sizeof *nq);
        if (nq == NULL) {
            buf_return(bid);
            conn_close(fd);
            return;
        }
        for (unsigned i = 0; i < c->n; i++)
            nq[i] = c->q[(c->head + i) % c->cap];
        free(c->q);
        c->q = nq;
        c->head = 0;
        c->cap = ncap;
    }
    c->q[(c->head + c->n) % c->cap] = (struct pend){.bid = bid, .len = len, .off = 0};
    c->n++;
    if (!c->sending)
        send_head(fd);
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
        fprintf(stderr, "usage: nf_uring_echo [--host H] --port P\n");
        return 2;
    }
    int bound = 0;
    int lfd = floor_socket(host, port, SOCK_STREAM, &bound);
    if (lfd < 0) {
        perror("nf_uring_echo: listen");
        return 1;
    }
    struct io_uring_params prm = {.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                                           IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int r = io_uring_queue_init_params(QDEPTH, &ring, &prm);
    if (r < 0) {
        fprintf(stderr, "nf_uring_echo: io_uring_queue_init: %s\n", strerror(-r));
        return 1;
    }
    size_t brsz = NBUF * sizeof(struct io_uring_buf);
    br = mmap(NULL, brsz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    bufs = malloc((size_t)NBUF * BUFSZ);
    if (br == MAP_FAILED || bufs == NULL)
        return 1;
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NBUF, .bgid = BGID};
    r = io_uring_register_buf_ring(&ring, &reg, 0);
    if (r < 0) {
        fprintf(stderr, "nf_uring_echo: io_uring_register_buf_ring: %s\n", strerror(-r));
        return 1;
    }
    for (unsigned i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(br, bufs + (size_t)i * BUFSZ, BUFSZ, (unsigned short)i, io_uring_buf_ring_mask(NBUF),
                              (int)i);
    io_uring_buf_ring_advance(br, NBUF);

    floor_signals();

    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, UD(OP_ACCEPT, lfd));
    printf("listening on %s:%d backend=uring-floor\n", host, bound);
    fflush(stdout);

    while (!stop) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR && r != -ETIME) {
            fprintf(stderr, "nf_uring_echo: io_uring_submit_and_wait: %s\n", strerror(-r));
            break;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            int op = (int)(ud >> 32), fd = (int)(uint32_t)ud;
            int res = cqe->res;
            switch (op) {
            case OP_ACCEPT:
                if (res >= 0) {
                    if (res >= MAXCONN) {
                        close(res);
                    } else {
                        int one = 1;
                        setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        conns[res].open = 1;
                        arm_recv(res);
                    }
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    sqe = sqe_get();
                    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
                    io_uring_sqe_set_data64(sqe, UD(OP_ACCEPT, lfd));
                }
                break;
            case OP_RECV: {
                struct conn *c = &conns[fd];
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    c->recv_armed = 0;
                if (res > 0) {
                    uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
                    if (c->closing)
                        buf_return(bid);
                    else
                        enqueue(fd, bid, (uint32_t)res);
                }
                if (c->closing) {
                    conn_close(fd);
                } else if (!c->recv_armed) {
                    if (res == -ENOBUFS) {
                        starved++;
                        c->recv_armed = -1; /* re-armed when a send returns a buffer */
                    } else if (res > 0) {
                        arm_recv(fd);
                    } else {
                        conn_close(fd); /* EOF or an error */
                    }
                }
                break;
            }
            case OP_SEND: {
                struct conn *c = &conns[fd];
                c->sending = 0;
                struct pend *p = &c->q[c->head];
                if (res > 0 && !c->closing) {
                    p->off += (uint32_t)res;
                    if (p->off < p->len) {
                        send_head(fd);
                        break;
                    }
                }
                buf_return(p->bid);
                c->head = (c->head + 1) % c->cap;
                c->n--;
                if (res <= 0 || c->closing) {
                    conn_close(fd);
                    break;
                }
                if (c->n > 0)
                    send_head(fd);
                if (starved > 0) { /* buffers are back: re-arm the starved receives */
                    for (int i = 0; i < MAXCONN && starved > 0; i++) {
                        if (conns[i].open && conns[i].recv_armed == -1) {
                            starved--;
                            arm_recv(i);
                        }
                    }
                }
                break;
            }
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    close(lfd);
    return 0;
}

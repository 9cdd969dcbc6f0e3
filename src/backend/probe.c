/* netframe — what the kernel offers io_uring: asked once per process.
 *
 * Kernel features do not change while a process runs, so they are probed once
 * (the first io_uring loop pays ~100 us), on a throw-away ring, and every
 * loop of a thread pool reuses the answer: multishot receive with a buffer
 * ring and SEND_ZC for streams, multishot recvmsg and SEND with an address
 * for datagrams. Setup flags are tried per loop (uring/uring.c: a refused
 * flag costs one failed io_uring_setup). */
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend_private.h"

static nf__probe_t g_probe;
static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;

/* Does this kernel do multishot receive with buffer selection? Ask it: arm
 * one on a socketpair, send a byte, see what completes. */
static bool probe_recv_multishot(struct io_uring *ring)
{
    bool ok = false;
    enum { N = 2, SZ = 64 };
    static char bufs[N][SZ];
    size_t bytes = N * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return false;
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = N, .bgid = 0};
    if (io_uring_register_buf_ring(ring, &reg, 0) < 0) {
        munmap(mem, bytes);
        return false;
    }
    struct io_uring_buf_ring *br = mem;
    io_uring_buf_ring_init(br);
    for (unsigned i = 0; i < N; i++)
        io_uring_buf_ring_add(br, bufs[i], SZ, (unsigned short)i, io_uring_buf_ring_mask(N), (int)i);
    io_uring_buf_ring_advance(br, N);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
        io_uring_sqe_set_data64(sqe, 1);
        io_uring_submit(ring);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 1};
        if (write(sv[1], "x", 1) == 1 && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
            ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER) && (cqe->flags & IORING_CQE_F_MORE);
            bool more = cqe->flags & IORING_CQE_F_MORE;
            io_uring_cqe_seen(ring, cqe);
            close(sv[1]);
            sv[1] = -1;
            /* the peer's close ends the receive; collect its last completion */
            while (more && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
                more = cqe->flags & IORING_CQE_F_MORE;
                io_uring_cqe_seen(ring, cqe);
            }
        }
        if (sv[1] >= 0)
            close(sv[1]);
        close(sv[0]);
    }
    io_uring_unregister_buf_ring(ring, 0);
    munmap(mem, bytes);
    return ok;
}

/* Does this kernel do multishot recvmsg with buffer selection on a datagram
 * socket, and IORING_OP_SEND with a destination address? */
static void probe_dgram(struct io_uring *ring)
{
    enum { N = 2, SZ = 256 };
    static char bufs[N][SZ];
    size_t bytes = N * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    int a = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), b = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = N, .bgid = 1};
    if (mem != MAP_FAILED && a >= 0 && b >= 0 && bind(a, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(a, (struct sockaddr *)&sa, &len) == 0 && io_uring_register_buf_ring(ring, &reg, 0) == 0) {
        struct io_uring_buf_ring *br = mem;
        io_uring_buf_ring_init(br);
        for (unsigned i = 0; i < N; i++)
            io_uring_buf_ring_add(br, bufs[i], SZ, (unsigned short)i, io_uring_buf_ring_mask(N), (int)i);
        io_uring_buf_ring_advance(br, N);
        struct msghdr mh = {.msg_namelen = sizeof(struct sockaddr_in6)};
        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
        io_uring_prep_recvmsg_multishot(sqe, a, &mh, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 1;
        io_uring_sqe_set_data64(sqe, 1);
        io_uring_submit(ring);
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {.tv_sec = 1};
        if (sendto(b, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa)) == 1 &&
            io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
            struct io_uring_recvmsg_out *o =
                cqe->res > 0 ? io_uring_recvmsg_validate(bufs[cqe->flags >> IORING_CQE_BUFFER_SHIFT], cqe->res, &mh)
                             : NULL;
            g_probe.recvmsg_multishot = o && (cqe->flags & IORING_CQE_F_MORE) && (cqe->flags & IORING_CQE_F_BUFFER) &&
                                        io_uring_recvmsg_payload_length(o, cqe->res, &mh) == 1;
            bool more = cqe->flags & IORING_CQE_F_MORE;
            io_uring_cqe_seen(ring, cqe);
            if (more) { /* cancel it and collect the end */
                sqe = io_uring_get_sqe(ring);
                io_uring_prep_cancel64(sqe, 1, 0);
                io_uring_sqe_set_data64(sqe, 2);
                io_uring_submit(ring);
                for (int i = 0; i < 2 && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0; i++)
                    io_uring_cqe_seen(ring, cqe);
            }
        }
        io_uring_unregister_buf_ring(ring, 1);
        /* IORING_OP_SEND with a destination address (sqe->addr2, 6.0+): one
         * datagram without a msghdr for the kernel to copy in */
        struct io_uring_sqe *s2 = io_uring_get_sqe(ring);
        io_uring_prep_send(s2, b, "y", 1, 0);
        io_uring_prep_send_set_addr(s2, (struct sockaddr *)&sa, sizeof(sa));
        io_uring_sqe_set_data64(s2, 3);
        io_uring_submit(ring);
        if (io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
            char c = 0;
            g_probe.send_addr = cqe->res == 1 && recv(a, &c, 1, MSG_DONTWAIT) == 1 && c == 'y' &&
                                !getenv("NF_URING_UDP_SENDMSG"); /* measurements: docs/udp.md */
            io_uring_cqe_seen(ring, cqe);
        }
    }
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    if (mem != MAP_FAILED)
        munmap(mem, bytes);
}

static void probe_once(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(8, &ring, 0) < 0)
        return;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    if (probe) {
        g_probe.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
        io_uring_free_probe(probe);
    }
    g_probe.recv_multishot = probe_recv_multishot(&ring);
    io_uring_queue_exit(&ring);
    /* a ring of its own: nothing left over from the stream probe */
    if (io_uring_queue_init(8, &ring, 0) == 0) {
        probe_dgram(&ring);
        io_uring_queue_exit(&ring);
    }
}

const nf__probe_t *nf__probe(void)
{
    pthread_once(&g_probe_once, probe_once);
    return &g_probe;
}

/* nf_uring_micro — what registered files and zero-copy sends cost or save
 * per send, measured in isolation on loopback TCP with liburing alone.
 *
 *   nf_uring_micro [--size BYTES] [--sends N] [--rounds R]
 *
 * One thread sends N messages of --size bytes over a loopback TCP
 * connection with io_uring (batches of 32 send requests per
 * io_uring_submit_and_wait, SINGLE_ISSUER|DEFER_TASKRUN like a block-mode
 * netframe loop), draining the receiving end with recv() between batches.
 * Variants, interleaved in R rounds so that a shared machine's noise hits all
 * of them alike: plain fd, registered (fixed) file, SEND_ZC (plain fd), and
 * SEND_ZC from a registered buffer (IORING_RECVSEND_FIXED_BUF). The process
 * has a second, idle thread, as a netframe server does: the kernel's fget()
 * on a plain fd is then an atomic reference count.
 *
 * Prints, per variant, the median over the rounds of the process CPU time
 * (user + system, getrusage) per send, in nanoseconds, and for SEND_ZC how
 * many notifications said the kernel copied the bytes anyway; then the CPU
 * time to install a socket in a fixed slot and empty it again (what each
 * connection pays for a slot). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

enum { BATCH = 32, VARIANTS = 4 };
static const char *const names[VARIANTS] = {"send, plain fd", "send, fixed file", "send_zc, plain fd",
                                            "send_zc, registered buffer"};

static double cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

static void *idle_thread(void *arg)
{
    (void)arg;
    pause();
    return NULL;
}

static int tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    *a = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*a, (struct sockaddr *)&sa, sizeof sa) < 0)
        return -1;
    *b = accept(l, NULL, NULL);
    close(l);
    int one = 1;
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return *b < 0 ? -1 : 0;
}

static void drain(int fd, char *buf, size_t cap)
{
    while (recv(fd, buf, cap, MSG_DONTWAIT) > 0) {
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    size_t size = 64;
    long sends = 200000, rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size"))
            size = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--sends"))
            sends = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atol(argv[i + 1]);
    }
    if (size == 0 || sends < BATCH || rounds < 1 || rounds > 100) {
        fprintf(stderr, "usage: nf_uring_micro [--size BYTES] [--sends N] [--rounds R]\n");
        return 2;
    }
    pthread_t th;
    pthread_create(&th, NULL, idle_thread, NULL);

    struct io_uring ring;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    if (io_uring_queue_init_params(256, &ring, &p) < 0 && io_uring_queue_init(256, &ring, 0) < 0) {
        fprintf(stderr, "nf_uring_micro: no io_uring\n");
        return 1;
    }
    int tx, rx;
    if (tcp_pair(&tx, &rx) < 0) {
        perror("nf_uring_micro: loopback pair");
        return 1;
    }
    char *msg = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
    size_t rcap = 1 << 20;
    char *rbuf = malloc(rcap);
    memset(msg, 'x', size);
    int have_files = io_uring_register_files(&ring, &tx, 1) == 0;
    struct iovec iov = {.iov_base = msg, .iov_len = (size + 4095) / 4096 * 4096};
    int have_bufs = io_uring_register_buffers(&ring, &iov, 1) == 0;

    double res[VARIANTS][100];
    unsigned long copied[VARIANTS] = {0}, notifs[VARIANTS] = {0};
    int ok[VARIANTS] = {1, have_files, 1, have_bufs};
    for (long r = 0; r < rounds; r++) {
        for (int v = 0; v < VARIANTS; v++) {
            if (!ok[v])
                continue;
            double t0 = cpu_ns();
            long done = 0, zc_pending = 0;
            while (done < sends || zc_pending > 0) {
                int n = 0;
                for (; n < BATCH && done + n < sends; n++) {
                    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                    switch (v) {
                    case 0: io_uring_prep_send(sqe, tx, msg, size, MSG_NOSIGNAL); break;
                    case 1:
                        io_uring_prep_send(sqe, 0, msg, size, MSG_NOSIGNAL);
                        sqe->flags |= IOSQE_FIXED_FILE;
                        break;
                    case 2: io_uring_prep_send_zc(sqe, tx, msg, size, MSG_NOSIGNAL, IORING_SEND_ZC_REPORT_USAGE); break;
                    case 3:
                        io_uring_prep_send_zc_fixed(sqe, tx, msg, size, MSG_NOSIGNAL, IORING_SEND_ZC_REPORT_USAGE, 0);
                        break;
                    }
                }
                io_uring_submit_and_wait(&ring, n ? (unsigned)n : 1);
                struct io_uring_cqe *cqe;
                unsigned head, seen = 0;
                io_uring_for_each_cqe(&ring, head, cqe)
                {
                    seen++;
                    if (cqe->flags & IORING_CQE_F_NOTIF) {
                        zc_pending--;
                        notifs[v]++;
                        if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
                            copied[v]++;
                        continue;
                    }
                    if (cqe->res < 0) {
                        fprintf(stderr, "nf_uring_micro: %s: %s\n", names[v], strerror(-cqe->res));
                        ok[v] = 0;
                    }
                    if (cqe->flags & IORING_CQE_F_MORE)
                        zc_pending++;
                    done++;
                }
                io_uring_cq_advance(&ring, seen);
                drain(rx, rbuf, rcap);
                if (!ok[v])
                    break;
            }
            res[v][r] = (cpu_ns() - t0) / (double)sends;
        }
    }
    /* What a connection pays to use a fixed slot: install and empty it. */
    double reg_ns = -1;
    if (have_files) {
        int none = -1;
        double t0 = cpu_ns();
        for (int i = 0; i < 20000; i++) {
            io_uring_register_files_update(&ring, 0, &none, 1);
            io_uring_register_files_update(&ring, 0, &tx, 1);
        }
        reg_ns = (cpu_ns() - t0) / 20000;
    }
    printf("nf_uring_micro: %zu-byte sends on loopback TCP, %ld per round, %ld rounds (median CPU ns per send)\n", size,
           sends, rounds);
    for (int v = 0; v < VARIANTS; v++) {
        if (!ok[v]) {
            printf("  %-28s  n/a (refused)\n", names[v]);
            continue;
        }
        qsort(res[v], (size_t)rounds, sizeof(double), cmp_d);
        printf("  %-28s %8.0f ns", names[v], res[v][rounds / 2]);
        if (v >= 2)
            printf("   (notifications: %lu, kernel copied: %lu)", notifs[v], copied[v]);
        printf("\n");
    }
    if (reg_ns >= 0)
        printf("  fixed slot install + release (two io_uring_register calls): %.0f ns per connection\n", reg_ns);
    return 0;
}

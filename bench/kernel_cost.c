/*
 * nf_kernel_cost - what the kernel alone costs on this machine, below any
 * server: one system call (getppid), and one 64-byte message through the
 * loopback on one thread -- UDP sendto + recv, TCP send + recv on a
 * connected pair.  An echo server pays the second once per message
 * (receive one, send one), so it is the floor under the floors; the first
 * is what batching (recvmmsg/sendmmsg, io_uring) saves per call avoided.
 *
 * Usage: nf_kernel_cost [--size BYTES]   (pin it: taskset -c 0)
 * Prints one line per figure: best of 5 rounds, microseconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t size = 64;
    if (argc == 3 && strcmp(argv[1], "--size") == 0)
        size = (size_t)atol(argv[2]);
    if (size < 1 || size > 60000) {
        fprintf(stderr, "usage: nf_kernel_cost [--size BYTES]\n");
        return 2;
    }
    char *buf = calloc(1, size);
    if (buf == NULL)
        return 1;
    double best = 1e9;
    const int n = 2000000, m = 200000;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (int i = 0; i < n; i++)
            syscall(SYS_getppid);
        double d = (now() - t0) / n;
        best = d < best ? d : best;
    }
    printf("syscall (getppid): %.3f us\n", best * 1e6);

    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    if (u1 < 0 || u2 < 0 || bind(u2, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(u2, (struct sockaddr *)&sa, &sl) != 0)
        return 1;
    best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (int i = 0; i < m; i++) {
            if (sendto(u1, buf, size, 0, (struct sockaddr *)&sa, sizeof sa) < 0 || recv(u2, buf, size, 0) < 0)
                return 1;
        }
        double d = (now() - t0) / m;
        best = d < best ? d : best;
    }
    printf("udp %zu B sendto + recv, loopback, one thread: %.3f us per datagram\n", size, best * 1e6);

    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    sa.sin_port = 0;
    sl = sizeof sa;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) != 0)
        return 1;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) != 0)
        return 1;
    int s = accept(l, NULL, NULL);
    if (s < 0)
        return 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (int i = 0; i < m; i++) {
            if (send(c, buf, size, 0) != (ssize_t)size)
                return 1;
            size_t got = 0;
            while (got < size) {
                ssize_t k = recv(s, buf + got, size - got, 0);
                if (k <= 0)
                    return 1;
                got += (size_t)k;
            }
        }
        double d = (now() - t0) / m;
        best = d < best ? d : best;
    }
    printf("tcp %zu B send + recv, loopback, one thread: %.3f us per message\n", size, best * 1e6);
    free(buf);
    return 0;
}

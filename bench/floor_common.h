/* netframe bench — what the floor servers (uring_echo.c, udp_uring_echo.c,
 * ws_epoll_echo.c, tls_epoll_echo.c) share besides their kernel interface:
 * the stop flag set by SIGINT/SIGTERM and the bound socket on host:port.
 * Header-only; each floor stays one file on the kernel interface alone. */
#ifndef NF_BENCH_FLOOR_COMMON_H
#define NF_BENCH_FLOOR_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s, stop = 1; }

/* SIGINT and SIGTERM set `stop`. */
static void floor_signals(void)
{
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* A socket of `type` (SOCK_STREAM or SOCK_DGRAM, with socket() flags)
 * bound to host:port with SO_REUSEADDR, listening (backlog 1024) when it is
 * a stream socket; *bound gets the port bound. -1 on failure (errno). */
static int floor_socket(const char *host, int port, int type, int *bound)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || ((type & 0xf) == SOCK_STREAM && listen(fd, 1024) != 0))
        return -1;
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    *bound = ntohs(a.sin_port);
    return fd;
}

#endif

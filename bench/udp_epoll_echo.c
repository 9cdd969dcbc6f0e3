/*
 * nf_udp_epoll_echo - a UDP echo server on plain epoll, written here as the
 * baseline for bench/udp.sh: what a careful hand-written server does.
 *
 * One non-blocking socket, level-triggered EPOLLIN. Per readiness: recvmmsg
 * batches of 64 datagrams (up to 4 batches), each batch answered at once
 * with one sendmmsg to the senders' addresses (datagrams the socket buffer
 * does not take are dropped, as UDP does).
 *
 * Usage: nf_udp_epoll_echo [--host H] --port P
 * Prints "listening on H:P udp backend=epoll-plain"; exits 0 on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define B   64
#define BUF 2048

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s, stop = 1; }

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
        fprintf(stderr, "usage: nf_udp_epoll_echo [--host H] --port P\n");
        return 2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return 2;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        perror("bind");
        return 1;
    }
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("listening on %s:%d udp backend=epoll-plain\n", host, ntohs(a.sin_port));
    fflush(stdout);

    static char bufs[B][BUF];
    struct mmsghdr m[B];
    struct iovec iov[B];
    struct sockaddr_storage names[B];
    unsigned long long in = 0, out = 0;
    while (!stop) {
        struct epoll_event e;
        int n = epoll_wait(ep, &e, 1, -1);
        if (n <= 0)
            continue;
        for (int round = 0; round < 4; round++) {
            for (int i = 0; i < B; i++) {
                iov[i].iov_base = bufs[i];
                iov[i].iov_len = BUF;
                memset(&m[i].msg_hdr, 0, sizeof(m[i].msg_hdr));
                m[i].msg_hdr.msg_iov = &iov[i];
                m[i].msg_hdr.msg_iovlen = 1;
                m[i].msg_hdr.msg_name = &names[i];
                m[i].msg_hdr.msg_namelen = sizeof(names[i]);
            }
            int r = recvmmsg(fd, m, B, MSG_DONTWAIT, NULL);
            if (r <= 0)
                break;
            in += (unsigned)r;
            for (int i = 0; i < r; i++)
                iov[i].iov_len = m[i].msg_len; /* send back what came */
            int done = 0;
            while (done < r) {
                int s = sendmmsg(fd, m + done, (unsigned)(r - done), MSG_DONTWAIT);
                if (s <= 0) {
                    if (s < 0 && errno == EINTR)
                        continue;
                    break; /* EAGAIN or an error: the rest is dropped */
                }
                done += s;
            }
            out += (unsigned)done;
            if (r < B)
                break;
        }
    }
    fprintf(stderr, "nf_udp_epoll_echo: in=%llu out=%llu\n", in, out);
    close(ep);
    close(fd);
    return 0;
}

/*
 * nf_epoll_echo - a plain, hand-written epoll TCP echo server.
 *
 * Baseline for the netframe benchmarks: what a competent C programmer would
 * write without a library.  Level-triggered epoll, non-blocking sockets, one
 * 64 KiB read buffer shared by all connections, data written straight back.
 * If a write is short, the rest is kept per connection, reading from that
 * connection stops (back-pressure) and EPOLLOUT is awaited.
 *
 * Usage: nf_epoll_echo [--host H] --port P
 * Prints "listening on H:P backend=epoll-plain" once ready; exits 0 on
 * SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE   (64 * 1024)
#define MAX_EVENTS 256

enum kind { K_LISTEN, K_SIGNAL, K_CONN };

struct conn {
    enum kind kind; /* must be first: epoll data.ptr points at it */
    int fd;
    unsigned char *pending; /* unsent echo bytes (BUF_SIZE capacity), lazily allocated */
    size_t pend_off, pend_len;
    struct conn *prev, *next;
};

static struct conn *g_conns;
static unsigned char g_buf[BUF_SIZE];

static void usage(FILE *f, const char *argv0) { fprintf(f, "usage: %s [--host H] --port P\n", argv0); }

static void conn_close(int ep, struct conn *c)
{
    (void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        g_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->pending);
    free(c);
}

static int conn_set_events(int ep, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write buf[0..len) to c.  Returns bytes written, or -1 on a fatal error. */
static ssize_t write_some(int fd, const unsigned char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += (size_t)n;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            return -1;
        }
    }
    return (ssize_t)off;
}

/* Readable: read once (level-triggered keeps fairness), echo it back. */
static void on_readable(int ep, struct conn *c)
{
    ssize_t n;
    do {
        n = recv(c->fd, g_buf, sizeof g_buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        conn_close(ep, c);
        return;
    }
    if (n < 0)
        return;

    ssize_t w = write_some(c->fd, g_buf, (size_t)n);
    if (w < 0) {
        conn_close(ep, c);
        return;
    }
    if (w == n)
        return;

    /* Short write: park the rest, stop reading until it is flushed. */
    if (c->pending == NULL && (c->pending = malloc(BUF_SIZE)) == NULL) {
        conn_close(ep, c);
        return;
    }
    c->pend_len = (size_t)(n - w);
    c->pend_off = 0;
    memcpy(c->pending, g_buf + w, c->pend_len);
    if (conn_set_events(ep, c, EPOLLOUT) != 0)
        conn_close(ep, c);
}

static void on_writable(int ep, struct conn *c)
{
    ssize_t w = write_some(c->fd, c->pending + c->pend_off, c->pend_len);
    if (w < 0) {
        conn_close(ep, c);
        return;
    }
    c->pend_off += (size_t)w;
    c->pend_len -= (size_t)w;
    if (c->pend_len == 0 && conn_set_events(ep, c, EPOLLIN) != 0)
        conn_close(ep, c);
}

static void on_accept(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fprintf(stderr, "epoll_echo: accept4: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->kind = K_CONN;
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            fprintf(stderr, "epoll_echo: epoll_ctl: %s\n", strerror(errno));
            close(fd);
            free(c);
            continue;
        }
        c->next = g_conns;
        if (g_conns)
            g_conns->prev = c;
        g_conns = c;
    }
}

static int listen_on(const char *host, const char *port, char *bound_port, size_t bplen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res, *ai;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "epoll_echo: cannot resolve %s:%s: %s\n", host, port, gai_strerror(gai));
        return -1;
    }
    int fd = -1, err = 0;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "epoll_echo: cannot listen on %s:%s: %s\n", host, port, strerror(err));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, bound_port, (socklen_t)bplen, NI_NUMERICSERV) != 0)
        snprintf(bound_port, bplen, "%s", port);
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *port = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = optarg; break;
        case 'H': usage(stdout, argv[0]); return 0;
        default: usage(stderr, argv[0]); return 2;
        }
    }
    if (port == NULL || optind < argc) {
        usage(stderr, argv[0]);
        return 2;
    }

    /* SIGINT/SIGTERM arrive through a signalfd in the epoll set. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        perror("epoll_echo: sigprocmask");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        perror("epoll_echo: signalfd");
        return 1;
    }

    char bound_port[16];
    int lfd = listen_on(host, port, bound_port, sizeof bound_port);
    if (lfd < 0)
        return 1;

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_echo: epoll_create1");
        return 1;
    }
    static enum kind listen_tag = K_LISTEN, signal_tag = K_SIGNAL;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &signal_tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) != 0) {
        perror("epoll_echo: epoll_ctl");
        return 1;
    }

    printf("listening on %s:%s backend=epoll-plain\n", host, bound_port);
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    int running = 1;
    while (running) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_echo: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            enum kind *k = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (*k == K_LISTEN) {
                on_accept(ep, lfd);
            } else if (*k == K_SIGNAL) {
                running = 0;
            } else {
                /* Each fd is reported at most once per epoll_wait, so a
                 * connection freed here is never seen again in this batch. */
                struct conn *c = (struct conn *)k;
                if (e & EPOLLERR) {
                    conn_close(ep, c);
                } else if (c->pend_len > 0) {
                    if (e & (EPOLLOUT | EPOLLHUP))
                        on_writable(ep, c);
                } else if (e & (EPOLLIN | EPOLLHUP)) {
                    on_readable(ep, c);
                }
            }
        }
    }

    while (g_conns)
        conn_close(ep, g_conns);
    close(lfd);
    close(sfd);
    close(ep);
    return 0;
}

/* embedded_loop — a netframe echo server inside an epoll loop that the
 * program owns (NF_MODE_EVENT).
 *
 *   embedded_loop [--port 7000] [--backend uring|epoll] [--seconds N]
 *
 * The program's own loop watches three things: netframe's fd
 * (nf_loop_fd), a signalfd for SIGINT/SIGTERM, and a timerfd of its own that
 * prints netframe's counters every second. When netframe's fd is readable it
 * runs one non-blocking step, nf_loop_run(loop, NF_RUN_NOWAIT): completions,
 * timers and posts are handled there and writes handed to the kernel. The fd
 * is level-triggered and stays readable while a step is due, so nothing
 * waits past one wake-up. netframe never blocks this thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <netframe/netframe.h>

static void on_read(nf_conn_t *c, const char *data, size_t len)
{
    nf_buf_t *b = nf_conn_keep_read(c); /* zero-copy echo */
    if (b)
        nf_conn_write_buf(c, b);
    else
        nf_conn_write(c, data, len);
}

static void on_close(nf_conn_t *c, int reason) { (void)c, (void)reason; }

static const nf_conn_handler_t echo = {.on_read = on_read, .on_close = on_close};

static void close_one(nf_conn_t *c, void *arg) { (void)arg, nf_conn_close(c); }

enum { TAG_NETFRAME = 1, TAG_SIGNAL, TAG_TICK };

int main(int argc, char **argv)
{
    int port = 7000, seconds = 0;
    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.mode = NF_MODE_EVENT;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--backend") == 0)
            cfg.backend = strcmp(argv[i + 1], "epoll") == 0 ? NF_BACKEND_EPOLL : NF_BACKEND_URING;
        else {
            fprintf(stderr, "usage: embedded_loop [--port N] [--backend uring|epoll] [--seconds N]\n");
            return 2;
        }
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "usage: embedded_loop [--port N] [--backend uring|epoll] [--seconds N]\n");
        return 2;
    }

    nf_loop_t *loop;
    int err = nf_loop_new(&loop, &cfg);
    if (err) {
        fprintf(stderr, "embedded_loop: %s\n", nf_strerror(err));
        return 1;
    }
    nf_listener_t *l;
    nf_listen_config_t lc = {.host = "127.0.0.1", .port = (uint16_t)port, .handler = &echo};
    err = nf_listen(loop, &lc, &l);
    if (err) {
        fprintf(stderr, "embedded_loop: listen: %s\n", nf_strerror(err));
        nf_loop_free(loop);
        return 1;
    }

    /* the program's own event loop */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct itimerspec every_second = {.it_interval = {1, 0}, .it_value = {1, 0}};
    timerfd_settime(tfd, 0, &every_second, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_NETFRAME};
    epoll_ctl(ep, EPOLL_CTL_ADD, nf_loop_fd(loop), &ev); /* level-triggered */
    ev.data.u32 = TAG_SIGNAL;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    ev.data.u32 = TAG_TICK;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);

    nf_addr_t a;
    char name[64];
    nf_listener_addr(l, &a);
    fprintf(stderr, "%s\n", nf_loop_features(loop));
    printf("listening on %s backend=%s\n", nf_addr_format(&a, name, sizeof(name)), nf_loop_backend_name(loop));
    fflush(stdout);

    int ticks = 0;
    bool stopping = false;
    uint64_t steps = 0;
    while (!stopping || nf_loop_alive(loop) > 0) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            switch (evs[i].data.u32) {
            case TAG_NETFRAME:
                err = nf_loop_run(loop, NF_RUN_NOWAIT);
                steps++;
                if (err < 0) {
                    fprintf(stderr, "embedded_loop: %s\n", nf_strerror(err));
                    return 1;
                }
                break;
            case TAG_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) == sizeof(si))
                    stopping = true;
                break;
            }
            case TAG_TICK: {
                uint64_t exp;
                if (read(tfd, &exp, sizeof(exp)) != sizeof(exp))
                    break;
                nf_loop_stats_t st;
                nf_loop_stats(loop, &st);
                fprintf(stderr, "embedded_loop: conns=%llu reads=%llu bytes_out=%llu steps=%llu\n",
                        (unsigned long long)st.conns_open, (unsigned long long)st.reads,
                        (unsigned long long)st.bytes_out, (unsigned long long)steps);
                if (seconds && ++ticks >= seconds)
                    stopping = true;
                break;
            }
            }
        }
        if (stopping && l) {
            /* calls made outside a step take effect at the next one: the
             * loop's fd becomes readable for it */
            nf_listener_close(l, NULL);
            l = NULL;
            nf_conn_walk(loop, close_one, NULL);
        }
    }
    close(tfd);
    close(sfd);
    close(ep);
    return nf_loop_free(loop) == 0 ? 0 : 1;
}

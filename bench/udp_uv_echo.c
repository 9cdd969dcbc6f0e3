/*
 * nf_udp_uv_echo - a UDP echo server on libuv, the reference peer for
 * bench/udp.sh, written the way a performance-minded libuv program would:
 * the handle is created with UV_UDP_RECVMMSG (libuv then reads with
 * recvmmsg into the 64-datagram buffer alloc_cb hands out), and every
 * datagram is answered at once with uv_udp_try_send (a direct sendmsg, no
 * request allocated); only when the socket buffer is full does it fall back
 * to a queued uv_udp_send with a copy.
 *
 * Usage: nf_udp_uv_echo [--host H] --port P
 * Prints "listening on H:P udp backend=libuv"; exits 0 on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define DGRAM 65536 /* libuv cuts the buffer into 64 KiB datagram slots */
#define MMSG  64

static uv_udp_t udp;
static uv_signal_t sigint, sigterm;
static char slab[DGRAM * MMSG];
static unsigned long long in, out, queued;

typedef struct sreq {
    uv_udp_send_t req;
    uv_buf_t buf;
} sreq_t;

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    *buf = uv_buf_init(slab, sizeof(slab)); /* one buffer, reused: libuv is done with it when recv_cb returns */
}

static void sent_cb(uv_udp_send_t *req, int status)
{
    (void)status;
    free(req);
}

static void recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags)
{
    (void)flags;
    if (nread < 0 || !addr)
        return; /* nread 0 with no address: nothing more (or the end of an mmsg batch) */
    in++;
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    int r = uv_udp_try_send(h, &b, 1, addr);
    if (r >= 0) {
        out++;
        return;
    }
    if (r != UV_EAGAIN)
        return;
    sreq_t *s = malloc(sizeof(*s) + (size_t)nread);
    if (!s)
        return;
    s->buf = uv_buf_init((char *)(s + 1), (unsigned)nread);
    memcpy(s->buf.base, buf->base, (size_t)nread);
    if (uv_udp_send(&s->req, h, &s->buf, 1, addr, sent_cb) == 0) {
        queued++;
        out++;
    } else {
        free(s);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_udp_recv_stop(&udp);
    uv_close((uv_handle_t *)&udp, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    (void)s;
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
        fprintf(stderr, "usage: nf_udp_uv_echo [--host H] --port P\n");
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in a;
    uv_ip4_addr(host, port, &a);
    uv_udp_init_ex(loop, &udp, AF_INET | UV_UDP_RECVMMSG);
    int r = uv_udp_bind(&udp, (const struct sockaddr *)&a, 0);
    if (r) {
        fprintf(stderr, "bind: %s\n", uv_strerror(r));
        return 1;
    }
    int big = 4 << 20;
    uv_recv_buffer_size((uv_handle_t *)&udp, &big);
    big = 4 << 20;
    uv_send_buffer_size((uv_handle_t *)&udp, &big);
    int namelen = sizeof(a);
    uv_udp_getsockname(&udp, (struct sockaddr *)&a, &namelen);
    uv_udp_recv_start(&udp, alloc_cb, recv_cb);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    printf("listening on %s:%d udp backend=libuv\n", host, ntohs(a.sin_port));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    fprintf(stderr, "nf_udp_uv_echo: in=%llu out=%llu queued=%llu mmsg=%d\n", in, out, queued,
            uv_udp_using_recvmmsg(&udp));
    uv_loop_close(loop);
    return 0;
}

/*
 * nf_uv_echo - a TCP echo server on libuv, written the way a typical libuv
 * program would be.  Reference peer for the netframe benchmarks.
 *
 * Each connection owns a 64 KiB read buffer handed out by alloc_cb.  Data read
 * is copied into a write request (request and payload in one block) and
 * written back with uv_write; the write callback releases the request.  If
 * more than WRITE_HIGH_WATER bytes are queued, reading pauses until the queue
 * drains.
 *
 * Write requests are recycled through a small free list by default, as a
 * performance-minded libuv program would do: with a plain malloc/free per
 * write, glibc keeps growing and trimming the heap (a brk() pair per 16 KiB
 * message), which would make the baseline measure the allocator rather than
 * libuv.  --no-pool switches to plain malloc/free per write.
 *
 * Usage: nf_uv_echo [--host H] --port P [--no-pool]
 * Prints "listening on H:P backend=libuv" once ready; exits 0 on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define READ_BUF_SIZE    (64 * 1024)
#define WRITE_HIGH_WATER (1024 * 1024)
#define POOL_MAX         256 /* free write requests kept for reuse */

struct conn {
    uv_tcp_t tcp; /* must be first: handle pointers are cast to struct conn */
    int reading;
    char buf[READ_BUF_SIZE];
};

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
    struct write_req *next_free;
    char data[]; /* payload follows the request */
};

static int g_use_pool = 1;
static struct write_req *g_pool;
static unsigned g_pool_len;

static struct write_req *wreq_get(size_t len)
{
    if (!g_use_pool)
        return malloc(sizeof(struct write_req) + len);
    /* Pooled requests all have room for a full read buffer (len <= that). */
    struct write_req *wr = g_pool;
    if (wr != NULL) {
        g_pool = wr->next_free;
        g_pool_len--;
        return wr;
    }
    return malloc(sizeof(struct write_req) + READ_BUF_SIZE);
}

static void wreq_put(struct write_req *wr)
{
    if (!g_use_pool || g_pool_len >= POOL_MAX) {
        free(wr);
        return;
    }
    wr->next_free = g_pool;
    g_pool = wr;
    g_pool_len++;
}

static void pool_drain(void)
{
    while (g_pool != NULL) {
        struct write_req *wr = g_pool;
        g_pool = wr->next_free;
        free(wr);
    }
    g_pool_len = 0;
}

static uv_tcp_t g_server;
static uv_signal_t g_sigint, g_sigterm;

static void on_close_free(uv_handle_t *h) { free(h); }

static void on_close_noop(uv_handle_t *h) { (void)h; }

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = (struct conn *)h;
    (void)suggested;
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void write_cb(uv_write_t *req, int status)
{
    struct conn *c = (struct conn *)req->handle;
    wreq_put((struct write_req *)req);
    if (status < 0) {
        if (!uv_is_closing((uv_handle_t *)c))
            uv_close((uv_handle_t *)c, on_close_free);
        return;
    }
    if (!c->reading && !uv_is_closing((uv_handle_t *)c) && c->tcp.write_queue_size < WRITE_HIGH_WATER / 2) {
        if (uv_read_start((uv_stream_t *)c, alloc_cb, read_cb) == 0)
            c->reading = 1;
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)s;
    if (nread < 0) { /* UV_EOF or an error */
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_close_free);
        return;
    }
    if (nread == 0)
        return;

    struct write_req *wr = wreq_get((size_t)nread);
    if (wr == NULL) {
        uv_close((uv_handle_t *)s, on_close_free);
        return;
    }
    memcpy(wr->data, buf->base, (size_t)nread);
    wr->buf = uv_buf_init(wr->data, (unsigned int)nread);
    int r = uv_write(&wr->req, s, &wr->buf, 1, write_cb);
    if (r < 0) {
        wreq_put(wr);
        uv_close((uv_handle_t *)s, on_close_free);
        return;
    }
    if (c->tcp.write_queue_size > WRITE_HIGH_WATER) {
        uv_read_stop(s);
        c->reading = 0;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        fprintf(stderr, "uv_echo: connection error: %s\n", uv_strerror(status));
        return;
    }
    struct conn *c = malloc(sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close_free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->reading = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0;
    if (!c->reading)
        uv_close((uv_handle_t *)&c->tcp, on_close_free);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&g_server || h == (uv_handle_t *)&g_sigint || h == (uv_handle_t *)&g_sigterm)
        uv_close(h, on_close_noop);
    else
        uv_close(h, on_close_free); /* client connections */
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    uv_walk(sig->loop, close_walk_cb, NULL);
}

static void usage(FILE *f, const char *argv0) { fprintf(f, "usage: %s [--host H] --port P [--no-pool]\n", argv0); }

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"no-pool", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1";
    long port = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': {
            char *end;
            port = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "uv_echo: invalid --port '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'n': g_use_pool = 0; break;
        case 'H': usage(stdout, argv[0]); return 0;
        default: usage(stderr, argv[0]); return 2;
        }
    }
    if (port < 0 || optind < argc) {
        usage(stderr, argv[0]);
        return 2;
    }

    /* libuv leaves SIGPIPE alone; a write to a peer that went away must not
     * kill the server. */
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_storage addr;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr) != 0) {
        fprintf(stderr, "uv_echo: invalid --host '%s' (numeric IPv4/IPv6 expected)\n", host);
        return 2;
    }

    uv_tcp_init(loop, &g_server);
    int r = uv_tcp_bind(&g_server, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&g_server, SOMAXCONN, on_connection);
    if (r != 0) {
        fprintf(stderr, "uv_echo: cannot listen on %s:%ld: %s\n", host, port, uv_strerror(r));
        return 1;
    }

    uv_signal_init(loop, &g_sigint);
    uv_signal_init(loop, &g_sigterm);
    uv_signal_start(&g_sigint, on_signal, SIGINT);
    uv_signal_start(&g_sigterm, on_signal, SIGTERM);

    struct sockaddr_storage bound;
    int blen = sizeof bound;
    int bport = (int)port;
    if (uv_tcp_getsockname(&g_server, (struct sockaddr *)&bound, &blen) == 0)
        bport = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    printf("listening on %s:%d backend=libuv\n", host, bport);
    fflush(stdout);

    r = uv_run(loop, UV_RUN_DEFAULT);
    (void)r;
    r = uv_loop_close(loop);
    if (r != 0)
        fprintf(stderr, "uv_echo: uv_loop_close: %s\n", uv_strerror(r));
    pool_drain();
    return 0;
}

/* libFuzzer target: the TLS filter (src/filter/tls.c), server side, fed
 * hostile bytes over a real loopback connection into a netframe loop (epoll
 * backend), so the filter's memory-BIO plumbing, handshake failure paths,
 * alerts and close handling all run on attacker-chosen records.
 *
 * Input: first byte selects the mode, the rest is what the peer sends.
 *   mode & 1: prefix the bytes with a genuine ClientHello (made once at start
 *             with OpenSSL through memory BIOs), so records after it reach
 *             the states past the first flight;
 *   mode & 2: half-close after sending (else a reset once the server has
 *             read every byte).
 * Each input: connect, send, then run the loop until the server closes the
 * connection (it must, within the 200 ms handshake timeout at the latest),
 * draining whatever it answered. A connection still open after 3 s, or
 * on_open for garbage, aborts. Build: tests/fuzz/fuzz.cmake (clang). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "netframe/netframe.h"
#include "netframe/tls.h"
#include "tls_certs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static nf_loop_t *loop;
static nf_listener_t *listener;
static uint16_t port;
static nf_tls_ctx_t *ctx;
static int opened, closed;
static unsigned char hello[4096];
static size_t hello_len;

static void on_open(nf_conn_t *c)
{
    (void)c;
    opened++;
}
static void on_read(nf_conn_t *c, const char *p, size_t n) { (void)nf_conn_write(c, p, n); }
static void on_close(nf_conn_t *c, int reason)
{
    (void)c, (void)reason;
    closed++;
}
static const nf_conn_handler_t handler = {.on_open = on_open, .on_read = on_read, .on_close = on_close};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void setup(void)
{
    static tc_certs_t certs;
    if (tc_make(&certs) != 0)
        abort();
    nf_tls_config_t tc = {.server = 1,
                          .cert_file = tc_path(&certs, "server.pem"),
                          .key_file = tc_path(&certs, "server.key"),
                          .handshake_timeout_ms = 200};
    char why[256];
    if (nf_tls_ctx_new(&ctx, &tc, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_tls: %s\n", why);
        abort();
    }
    nf_loop_config_t lc;
    nf_loop_config_init(&lc);
    lc.backend = NF_BACKEND_EPOLL;
    if (nf_loop_new(&loop, &lc) != 0)
        abort();
    static nf_filter_spec_t spec[1];
    spec[0] = (nf_filter_spec_t){.ops = &nf_tls_filter, .config = ctx};
    nf_listen_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = "127.0.0.1";
    cfg.handler = &handler;
    cfg.filters = spec;
    cfg.nfilters = 1;
    if (nf_listen(loop, &cfg, &listener) != 0)
        abort();
    nf_addr_t a;
    nf_listener_addr(listener, &a);
    port = nf_addr_port(&a);
    /* a genuine ClientHello, from a client that trusts nothing in particular */
    SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(cc);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl);
    int n = BIO_read(wb, hello, (int)sizeof hello);
    hello_len = n > 0 ? (size_t)n : 0;
    SSL_free(ssl);
    SSL_CTX_free(cc);
    tc_cleanup(&certs); /* the context has loaded them */
}

static void drain(int fd)
{
    char b[4096];
    while (recv(fd, b, sizeof b, MSG_DONTWAIT) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!loop)
        setup();
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    data++;
    size--;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        abort();
    fcntl(fd, F_SETFL, O_NONBLOCK);
    int want = closed + 1, opened0 = opened;
    nf_loop_stats_t ls;
    nf_loop_stats(loop, &ls);
    uint64_t in0 = ls.bytes_in;
    size_t off = 0, total = ((mode & 1) ? hello_len : 0) + size;
    uint64_t start = now_ms();
    int shut = 0;
    while (closed < want) {
        /* send what the kernel takes; the loop reads it meanwhile */
        while (off < total) {
            const unsigned char *p;
            size_t n;
            if ((mode & 1) && off < hello_len) {
                p = hello + off;
                n = hello_len - off;
            } else {
                size_t o = off - ((mode & 1) ? hello_len : 0);
                p = data + o;
                n = size - o;
            }
            ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (off >= total && !shut) {
            shut = 1;
            if (mode & 2)
                shutdown(fd, SHUT_WR);
        }
        nf_loop_run(loop, NF_RUN_NOWAIT);
        drain(fd);
        nf_loop_stats(loop, &ls);
        /* reset once the server has read everything (or after 20 ms) */
        if (shut == 1 && !(mode & 2) && (ls.bytes_in - in0 >= total || now_ms() - start > 20)) {
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close(fd);
            fd = -1;
            shut = 2;
        }
        if (closed < want) {
            if (now_ms() - start > 3000) {
                fprintf(stderr,
                        "fuzz_tls: connection still open after 3 s (accepted %llu, open %llu, closed %llu, "
                        "on_close %d)\n",
                        (unsigned long long)ls.conns_accepted, (unsigned long long)ls.conns_open,
                        (unsigned long long)ls.conns_closed, closed);
                abort();
            }
            struct pollfd pf = {fd, POLLIN, 0};
            poll(&pf, fd >= 0 ? 1 : 0, 1);
        }
    }
    if (fd >= 0)
        close(fd);
    /* a handshake can only complete with a real client: bytes from the
     * fuzzer after a genuine ClientHello cannot finish it */
    if (opened != opened0)
        abort();
    return 0;
}

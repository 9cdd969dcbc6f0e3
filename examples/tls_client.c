/* tls_client — send a line over TLS, print the answer.
 *
 *   tls_client [--ca FILE] [--insecure] [--name HOST] [--alpn P] [--cert F --key F]
 *              [--tls12] [--connections N] [--expect TEXT] [--backend uring|epoll]
 *              HOST PORT TEXT
 *
 * Connects N times, one after the other (the later ones offer the session
 * of the earlier: resumption), sends TEXT plus a newline, reads until as
 * many bytes came back (or the peer closes), ends with close_notify and
 * prints one line per connection:
 *
 *   tls version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 alpn=- resumed=0 reply="..."
 *
 * The server is verified against the system CA store or --ca, with --name
 * (default: HOST) as its name, unless --insecure. Exit status 0 when every
 * connection got its reply (equal to --expect plus a newline, if given), 1
 * otherwise (the TLS failure is printed). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netframe/netframe.h>

static const char *host, *name, *text, *expect;
static unsigned port, left = 1;
static nf_filter_spec_t spec[1];
static char reply[4096];
static size_t got, want;
static int failures;

static void start(nf_loop_t *loop);

static void on_open(nf_conn_t *c)
{
    got = 0;
    want = strlen(text) + 1;
    nf_conn_write(c, text, strlen(text));
    nf_conn_write(c, "\n", 1);
}

static void on_read(nf_conn_t *c, const char *data, size_t len)
{
    size_t n = len < sizeof reply - 1 - got ? len : sizeof reply - 1 - got;
    memcpy(reply + got, data, n);
    got += n;
    if (got >= want)
        nf_conn_end(c);
}

static void on_close(nf_conn_t *c, int reason)
{
    reply[got] = 0;
    if (got && reply[got - 1] == '\n')
        reply[got - 1] = 0;
    const char *err = nf_tls_conn_error(c);
    if (got < want || (reason != NF_CLOSE_LOCAL && reason != NF_EOF)) {
        fprintf(stderr, "tls_client: closed: %s%s%s\n", nf_strerror(reason), err ? ": " : "", err ? err : "");
        failures++;
    } else if (expect && strcmp(reply, expect) != 0) {
        fprintf(stderr, "tls_client: reply \"%s\" differs from \"%s\"\n", reply, expect);
        failures++;
    }
    if (--left > 0 && !failures)
        start(nf_conn_loop(c));
}

static void on_tls_open(nf_conn_t *c)
{
    size_t alen = 0;
    const char *alpn = nf_tls_conn_alpn(c, &alen);
    printf("tls version=%s cipher=%s alpn=%.*s resumed=%d", nf_tls_conn_version(c), nf_tls_conn_cipher(c),
           alpn ? (int)alen : 1, alpn ? alpn : "-", nf_tls_conn_resumed(c));
    on_open(c);
}

static void on_tls_close(nf_conn_t *c, int reason)
{
    if (nf_tls_conn_established(c))
        printf(" reply=\"%.*s\"\n", (int)(got && reply[got - 1] == '\n' ? got - 1 : got), reply);
    fflush(stdout);
    on_close(c, reason);
}

static const nf_conn_handler_t handler = {.on_open = on_tls_open, .on_read = on_read, .on_close = on_tls_close};

static void start(nf_loop_t *loop)
{
    nf_connect_config_t cc = {.host = host, .port = (uint16_t)port, .timeout_ms = 10000, .handler = &handler};
    cc.filters = spec;
    cc.nfilters = 1;
    nf_conn_t *c;
    int err = nf_connect(loop, &cc, &c);
    if (err) {
        fprintf(stderr, "tls_client: connect: %s\n", nf_strerror(err));
        failures++;
        return;
    }
    nf_tls_set_server_name(c, name);
}

static void usage(void)
{
    fprintf(stderr, "usage: tls_client [--ca FILE] [--insecure] [--name HOST] [--alpn P] [--cert F --key F]\n"
                    "                  [--tls12] [--connections N] [--expect TEXT] [--backend uring|epoll]\n"
                    "                  HOST PORT TEXT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    nf_tls_config_t tc = {0};
    const char *alpn[2] = {NULL, NULL}, *backend = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--insecure") == 0)
            tc.insecure = 1;
        else if (strcmp(argv[i], "--tls12") == 0)
            tc.max_version = NF_TLS_1_2;
        else if (i + 1 >= argc)
            usage();
        else if (strcmp(argv[i], "--ca") == 0)
            tc.ca_file = argv[++i];
        else if (strcmp(argv[i], "--name") == 0)
            name = argv[++i];
        else if (strcmp(argv[i], "--alpn") == 0)
            alpn[0] = argv[++i];
        else if (strcmp(argv[i], "--cert") == 0)
            tc.cert_file = argv[++i];
        else if (strcmp(argv[i], "--key") == 0)
            tc.key_file = argv[++i];
        else if (strcmp(argv[i], "--connections") == 0)
            left = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--expect") == 0)
            expect = argv[++i];
        else if (strcmp(argv[i], "--backend") == 0)
            backend = argv[++i];
        else
            usage();
    }
    if (argc - i != 3 || left < 1)
        usage();
    host = argv[i];
    port = (unsigned)atoi(argv[i + 1]);
    text = argv[i + 2];
    if (!name)
        name = host;
    if (alpn[0])
        tc.alpn = alpn;
    char why[256];
    nf_tls_ctx_t *ctx;
    if (nf_tls_ctx_new(&ctx, &tc, why, sizeof why) != 0) {
        fprintf(stderr, "tls_client: %s\n", why);
        return 1;
    }
    spec[0].ops = &nf_tls_filter;
    spec[0].config = ctx;
    nf_loop_config_t lc;
    nf_loop_config_init(&lc);
    if (backend)
        lc.backend = strcmp(backend, "epoll") == 0 ? NF_BACKEND_EPOLL : NF_BACKEND_URING;
    nf_loop_t *loop;
    int err = nf_loop_new(&loop, &lc);
    if (err) {
        fprintf(stderr, "tls_client: loop: %s\n", nf_strerror(err));
        return 1;
    }
    start(loop);
    nf_loop_run(loop, NF_RUN_DEFAULT);
    nf_loop_free(loop);
    nf_tls_ctx_free(ctx);
    return failures ? 1 : 0;
}

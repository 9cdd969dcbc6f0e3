/* Integration: the TLS filter (tls.h), netframe client <-> netframe server on
 * one loop, with certificates made at test time (tls_certs.c).
 *
 * Covered: echo of 1 MiB over TLS 1.3 and 1.2 with close_notify both ways;
 * ALPN agreement and refusal; SNI choosing between two certificates;
 * session resumption (second connection resumed, 1.3 and 1.2); client
 * certificates required / requested / absent; bad peers, each failing only
 * its own connection with a readable reason while a good connection runs:
 * self-signed, expired, wrong host name, garbage instead of a ClientHello, a
 * peer silent mid-handshake (handshake timeout, both sides), reset while the
 * server writes; a slow reader over TLS with the flow filter below TLS stays
 * bounded; a plain and a TLS listener with the same echo handler. */
#include "helpers.h"
#include "tls_certs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <netframe/tls.h>

static tc_certs_t certs;

/* the certificates, made once for the group */
static int setup(void **state) { return (void)state, tc_make(&certs); }
static int teardown(void **state) { return (void)state, tc_cleanup(&certs), 0; }

static nf_tls_ctx_t *ctx_new(const nf_tls_config_t *cfg)
{
    char err[256];
    nf_tls_ctx_t *c = NULL;
    int r = nf_tls_ctx_new(&c, cfg, err, sizeof err);
    if (r)
        fail_msg("nf_tls_ctx_new = %d: %s", r, err);
    return c;
}

/* The server side with the "server" certificate; callers add options. */
static nf_tls_config_t server_cfg(void)
{
    nf_tls_config_t cfg = {.server = 1};
    cfg.cert_file = tc_path(&certs, "server.pem");
    cfg.key_file = tc_path(&certs, "server.key");
    return cfg;
}

/* The client side that trusts the test CA and expects "localhost". */
static nf_tls_config_t client_cfg(void)
{
    nf_tls_config_t cfg = {0};
    cfg.ca_file = tc_path(&certs, "ca.pem");
    cfg.server_name = "localhost";
    return cfg;
}

static nf_tls_ctx_t *server_ctx(const char *name)
{
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "%s.pem", name);
    snprintf(key, sizeof key, "%s.key", name);
    nf_tls_config_t cfg = {.server = 1};
    cfg.cert_file = tc_path(&certs, cert);
    cfg.key_file = tc_path(&certs, key);
    return ctx_new(&cfg);
}

static nf_tls_ctx_t *client_ctx(void)
{
    nf_tls_config_t cfg = client_cfg();
    return ctx_new(&cfg);
}

/* ---- what one side saw ------------------------------------------------- */

typedef struct side {
    int opened, closed, eofs, reason;
    char err[160];
    char alpn[32], sni[64], version[16], subject[256];
    int resumed, has_cert;
    uint64_t bytes;
} side_t;

static void side_open(side_t *s, nf_conn_t *c)
{
    s->opened++;
    size_t n = 0;
    const char *a = nf_tls_conn_alpn(c, &n);
    snprintf(s->alpn, sizeof s->alpn, "%.*s", (int)n, a ? a : "");
    const char *sn = nf_tls_conn_server_name(c);
    snprintf(s->sni, sizeof s->sni, "%s", sn ? sn : "");
    const char *v = nf_tls_conn_version(c);
    snprintf(s->version, sizeof s->version, "%s", v ? v : "plain");
    s->resumed = nf_tls_conn_resumed(c);
    s->has_cert = nf_tls_conn_peer_subject(c, s->subject, sizeof s->subject);
    assert_true(nf_tls_conn_established(c) || !v);
}

static void side_close(side_t *s, nf_conn_t *c, int reason)
{
    s->closed++;
    s->reason = reason;
    const char *e = nf_tls_conn_error(c);
    snprintf(s->err, sizeof s->err, "%s", e ? e : "");
}

/* The server: echoes, answers close_notify with its own. One per test. */
static side_t srv;

static void srv_open(nf_conn_t *c) { side_open(&srv, c); }
static void srv_read(nf_conn_t *c, const char *d, size_t n)
{
    srv.bytes += n;
    nf_conn_write(c, d, n);
}
static void srv_eof(nf_conn_t *c)
{
    srv.eofs++;
    nf_conn_end(c);
}
static void srv_close(nf_conn_t *c, int reason) { side_close(&srv, c, reason); }
static const nf_conn_handler_t srv_handler = {srv_open, srv_read, srv_eof, NULL, srv_close, NULL};

typedef struct server {
    nf_filter_spec_t spec[2];
    nf_listener_t *l;
    uint16_t port;
} server_t;

/* A TLS listener (ctx) with handler h; srv starts from zero. */
static void server_start_with(nf_loop_t *loop, server_t *s, nf_tls_ctx_t *ctx, const nf_conn_handler_t *h)
{
    memset(&srv, 0, sizeof srv);
    s->spec[0].ops = &nf_tls_filter;
    s->spec[0].config = ctx;
    s->port = h_listen_filters(loop, h, s->spec, 1, &s->l);
}

static void server_start(nf_loop_t *loop, server_t *s, nf_tls_ctx_t *ctx)
{
    server_start_with(loop, s, ctx, &srv_handler);
}

/* The client: writes `total` pattern bytes, checks the echo, then ends. */
typedef struct client {
    side_t s;
    nf_filter_spec_t spec[2];
    nf_conn_t *c;
    size_t total, got;
    uint32_t seed;
    int bad;      /* echo mismatch */
    int abort_at; /* abort after this many bytes (reset test) */
} client_t;

static void cli_open(nf_conn_t *c)
{
    client_t *cl = nf_conn_get_data(c);
    side_open(&cl->s, c);
    static char buf[16384];
    for (size_t off = 0; off < cl->total; off += sizeof buf) {
        size_t n = cl->total - off < sizeof buf ? cl->total - off : sizeof buf;
        h_pattern_fill(buf, n, off, cl->seed);
        assert_true(nf_conn_write(c, buf, n) >= 0);
    }
    if (cl->total == 0 && !cl->abort_at)
        nf_conn_end(c);
}
static void cli_read(nf_conn_t *c, const char *d, size_t n)
{
    client_t *cl = nf_conn_get_data(c);
    if (cl->abort_at) {
        cl->got += n;
        if (cl->got >= (size_t)cl->abort_at)
            nf_conn_abort(c);
        return;
    }
    if (h_pattern_check(d, n, cl->got, cl->seed) != SIZE_MAX || cl->got + n > cl->total)
        cl->bad++;
    cl->got += n;
    if (cl->got == cl->total)
        nf_conn_end(c); /* close_notify */
}
static void cli_eof(nf_conn_t *c)
{
    client_t *cl = nf_conn_get_data(c);
    cl->s.eofs++;
    nf_conn_end(c);
}
static void cli_close(nf_conn_t *c, int reason)
{
    client_t *cl = nf_conn_get_data(c);
    side_close(&cl->s, c, reason);
}
static const nf_conn_handler_t cli_handler = {cli_open, cli_read, cli_eof, NULL, cli_close, NULL};

static void client_start(nf_loop_t *loop, client_t *cl, nf_tls_ctx_t *ctx, uint16_t port, size_t total,
                         const char *name)
{
    memset(cl, 0, sizeof *cl);
    cl->total = total;
    cl->seed = (uint32_t)port;
    cl->spec[0].ops = &nf_tls_filter;
    cl->spec[0].config = ctx;
    nf_connect_config_t cc = h_connect_config("127.0.0.1", port, &cli_handler, cl);
    cc.filters = ctx ? cl->spec : NULL;
    cc.nfilters = ctx ? 1 : 0;
    assert_int_equal(nf_connect(loop, &cc, &cl->c), 0);
    if (name)
        assert_int_equal(nf_tls_set_server_name(cl->c, name), 0);
}

static void expect_ok(const client_t *cl)
{
    if (cl->s.reason != NF_CLOSE_LOCAL || cl->bad || cl->got != cl->total)
        fail_msg("client: reason %s (%s) got %zu of %zu bad %d", nf_err_name(cl->s.reason), cl->s.err, cl->got,
                 cl->total, cl->bad);
    assert_int_equal(cl->s.opened, 1);
}

static void expect_fail(const side_t *s, int reason, const char *text)
{
    if (s->reason != reason || !strstr(s->err, text))
        fail_msg("expected %s with \"%s\", got %s (%d) with \"%s\"", nf_err_name(reason), text, nf_err_name(s->reason),
                 s->reason, s->err);
    assert_int_equal(s->opened, 0);
}

/* ---- echo, versions, close_notify ----------------------------------------- */

static void echo_version(int maxv, const char *want)
{
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *sctx = server_ctx("server");
    nf_tls_config_t cc = client_cfg();
    cc.max_version = maxv;
    nf_tls_ctx_t *cctx = ctx_new(&cc);
    server_t s;
    server_start(loop, &s, sctx);
    client_t cl;
    client_start(loop, &cl, cctx, s.port, 1 << 20, NULL);
    H_RUN_UNTIL(loop, cl.s.closed && srv.closed, 10000);
    expect_ok(&cl);
    assert_string_equal(cl.s.version, want);
    assert_string_equal(srv.version, want);
    assert_int_equal(srv.bytes, 1 << 20);
    /* the server saw our close_notify as EOF, answered with its own */
    assert_int_equal(srv.eofs, 1);
    assert_int_equal(srv.reason, NF_CLOSE_LOCAL);
    assert_string_equal(srv.err, "");
    assert_string_equal(cl.s.err, "");
    h_listener_finish(loop, s.l, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

static void test_echo_tls13(void **state)
{
    (void)state;
    echo_version(0, "TLSv1.3");
}

static void test_echo_tls12(void **state)
{
    (void)state;
    echo_version(NF_TLS_1_2, "TLSv1.2");
}

/* ---- ALPN ------------------------------------------------------------------ */

static void test_alpn(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    const char *sp[] = {"h2", "http/1.1", NULL};
    nf_tls_config_t scfg = server_cfg();
    scfg.alpn = sp;
    nf_tls_ctx_t *sctx = ctx_new(&scfg);
    const char *cp[] = {"foo", "http/1.1", NULL};
    nf_tls_config_t ccfg = client_cfg();
    ccfg.alpn = cp;
    nf_tls_ctx_t *cctx = ctx_new(&ccfg);
    const char *bad[] = {"spdy/1", NULL};
    ccfg.alpn = bad;
    nf_tls_ctx_t *cbad = ctx_new(&ccfg);
    server_t s;
    server_start(loop, &s, sctx);
    client_t cl, cl2;
    client_start(loop, &cl, cctx, s.port, 1000, NULL);
    H_RUN_UNTIL(loop, cl.s.closed && srv.closed, 10000);
    expect_ok(&cl);
    assert_string_equal(cl.s.alpn, "http/1.1");
    assert_string_equal(srv.alpn, "http/1.1");
    /* no protocol in common: the server refuses with no_application_protocol */
    memset(&srv, 0, sizeof srv);
    client_start(loop, &cl2, cbad, s.port, 1000, NULL);
    H_RUN_UNTIL(loop, cl2.s.closed && srv.closed, 10000);
    expect_fail(&cl2.s, NF_ETLS, "no application protocol");
    expect_fail(&srv, NF_ETLS, "no application protocol");
    h_listener_finish(loop, s.l, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
    nf_tls_ctx_free(cbad);
}

/* ---- SNI ------------------------------------------------------------------- */

static void test_sni(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_tls_cert_t more[] = {{"other.test", tc_path(&certs, "other.pem"), tc_path(&certs, "other.key")}};
    nf_tls_config_t scfg = server_cfg();
    scfg.sni_certs = more;
    scfg.nsni_certs = 1;
    nf_tls_ctx_t *sctx = ctx_new(&scfg);
    nf_tls_ctx_t *cctx = client_ctx();
    server_t s;
    server_start(loop, &s, sctx);
    client_t a, b;
    client_start(loop, &a, cctx, s.port, 5000, "other.test");
    H_RUN_UNTIL(loop, a.s.closed && srv.closed, 10000);
    expect_ok(&a); /* verified as other.test: the server chose the second certificate */
    assert_string_equal(srv.sni, "other.test");
    assert_non_null(strstr(a.s.subject, "other.test"));
    memset(&srv, 0, sizeof srv);
    client_start(loop, &b, cctx, s.port, 5000, "localhost");
    H_RUN_UNTIL(loop, b.s.closed && srv.closed, 10000);
    expect_ok(&b);
    assert_string_equal(srv.sni, "localhost");
    assert_non_null(strstr(b.s.subject, "localhost"));
    h_listener_finish(loop, s.l, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

/* ---- resumption ------------------------------------------------------------ */

static void resume_version(int maxv)
{
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *sctx = server_ctx("server");
    nf_tls_config_t cc = client_cfg();
    cc.max_version = maxv;
    nf_tls_ctx_t *cctx = ctx_new(&cc);
    server_t s;
    server_start(loop, &s, sctx);
    client_t a, b;
    client_start(loop, &a, cctx, s.port, 4000, NULL);
    H_RUN_UNTIL(loop, a.s.closed && srv.closed, 10000);
    expect_ok(&a);
    assert_int_equal(a.s.resumed, 0);
    assert_int_equal(srv.resumed, 0);
    memset(&srv, 0, sizeof srv);
    client_start(loop, &b, cctx, s.port, 4000, NULL);
    H_RUN_UNTIL(loop, b.s.closed && srv.closed, 10000);
    expect_ok(&b);
    assert_int_equal(b.s.resumed, 1); /* the ticket of the first connection */
    assert_int_equal(srv.resumed, 1);
    h_listener_finish(loop, s.l, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

static void test_resume_tls13(void **state)
{
    (void)state;
    resume_version(0);
}

static void test_resume_tls12(void **state)
{
    (void)state;
    resume_version(NF_TLS_1_2);
}

/* ---- client certificates ----------------------------------------------------- */

static void test_client_cert(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_tls_config_t scfg = server_cfg();
    scfg.ca_file = tc_path(&certs, "ca.pem");
    scfg.verify_client = NF_TLS_VERIFY_REQUIRE;
    nf_tls_ctx_t *sreq = ctx_new(&scfg);
    scfg.verify_client = NF_TLS_VERIFY_REQUEST;
    nf_tls_ctx_t *sopt = ctx_new(&scfg);
    nf_tls_ctx_t *anon = client_ctx();
    nf_tls_config_t ccfg = client_cfg();
    ccfg.cert_file = tc_path(&certs, "client.pem");
    ccfg.key_file = tc_path(&certs, "client.key");
    nf_tls_ctx_t *withcert = ctx_new(&ccfg);
    server_t s;
    client_t a, b, c;
    /* required, presented */
    server_start(loop, &s, sreq);
    client_start(loop, &a, withcert, s.port, 3000, NULL);
    H_RUN_UNTIL(loop, a.s.closed && srv.closed, 10000);
    expect_ok(&a);
    assert_int_equal(srv.has_cert, 1);
    assert_non_null(strstr(srv.subject, "netframe test client"));
    /* required, absent: the server fails it; the client learns by the alert */
    memset(&srv, 0, sizeof srv);
    client_start(loop, &b, anon, s.port, 3000, NULL);
    H_RUN_UNTIL(loop, b.s.closed && srv.closed, 10000);
    expect_fail(&srv, NF_ETLS, "peer did not return a certificate");
    assert_int_equal(b.s.reason, NF_ETLS);
    assert_non_null(strstr(b.s.err, "certificate required"));
    nf_listener_close(s.l, NULL);
    /* requested, absent: accepted without one */
    server_start(loop, &s, sopt);
    client_start(loop, &c, anon, s.port, 3000, NULL);
    H_RUN_UNTIL(loop, c.s.closed && srv.closed, 10000);
    expect_ok(&c);
    assert_int_equal(srv.has_cert, 0);
    h_listener_finish(loop, s.l, 5000);
    nf_tls_ctx_free(sreq);
    nf_tls_ctx_free(sopt);
    nf_tls_ctx_free(anon);
    nf_tls_ctx_free(withcert);
}

/* ---- bad certificates: each fails only its own connection ---------------------- */

static void bad_server_cert(const char *certname, const char *client_name, const char *text)
{
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *good = server_ctx("server");
    nf_tls_ctx_t *bad = server_ctx(certname);
    nf_tls_ctx_t *cctx = client_ctx();
    server_t gs, bs;
    server_start(loop, &bs, bad);
    server_start(loop, &gs, good);
    client_t ok, ko;
    client_start(loop, &ok, cctx, gs.port, 200000, NULL);
    client_start(loop, &ko, cctx, bs.port, 1000, client_name);
    H_RUN_UNTIL(loop, ok.s.closed && ko.s.closed, 10000);
    expect_fail(&ko.s, NF_ETLS, text);
    expect_ok(&ok);
    nf_listener_close(gs.l, NULL);
    h_listener_finish(loop, bs.l, 5000);
    nf_tls_ctx_free(good);
    nf_tls_ctx_free(bad);
    nf_tls_ctx_free(cctx);
}

static void test_self_signed(void **state)
{
    (void)state;
    bad_server_cert("self", NULL, "self-signed certificate");
}

static void test_expired(void **state)
{
    (void)state;
    bad_server_cert("expired", NULL, "certificate has expired");
}

static void test_wrong_name(void **state)
{
    (void)state;
    bad_server_cert("server", "wrong.test", "hostname mismatch");
}

/* ---- bad peers: garbage, silence, reset ------------------------------------------ */

typedef struct raw {
    const char *send; /* written in on_open; NULL: nothing */
    size_t len;       /* 0: strlen(send) */
    int closed, reason;
} raw_t;

static void raw_open(nf_conn_t *c)
{
    raw_t *r = nf_conn_get_data(c);
    if (!r) { /* accepted: the listener's */
        r = nf_listener_get_data(nf_conn_listener(c));
        nf_conn_set_data(c, r);
    }
    if (r->send)
        nf_conn_write(c, r->send, r->len ? r->len : strlen(r->send));
}
static void raw_close(nf_conn_t *c, int reason)
{
    raw_t *r = nf_conn_get_data(c);
    r->closed++;
    r->reason = reason;
}
static const nf_conn_handler_t raw_handler = {.on_open = raw_open, .on_read = h_ignore_read, .on_close = raw_close};

static void test_garbage(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *sctx = server_ctx("server");
    nf_tls_ctx_t *cctx = client_ctx();
    server_t s;
    server_start(loop, &s, sctx);
    raw_t r = {.send = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"};
    h_connect(loop, "127.0.0.1", s.port, &raw_handler, &r);
    H_RUN_UNTIL(loop, srv.closed && r.closed, 10000);
    expect_fail(&srv, NF_ETLS, "http request");
    /* binary garbage */
    memset(&srv, 0, sizeof srv);
    /* a handshake record of 257 bytes holding an unknown message type */
    static char junk[5 + 257] = {0x16, 0x03, 0x01, 0x01, 0x01};
    memset(junk + 5, 0xfe, 257);
    raw_t r2 = {.send = junk, .len = sizeof junk};
    h_connect(loop, "127.0.0.1", s.port, &raw_handler, &r2);
    H_RUN_UNTIL(loop, srv.closed && r2.closed, 10000);
    assert_int_equal(srv.reason, NF_ETLS);
    assert_true(srv.err[0] != 0);
    /* the next connection is unaffected */
    memset(&srv, 0, sizeof srv);
    client_t ok;
    client_start(loop, &ok, cctx, s.port, 100000, NULL);
    H_RUN_UNTIL(loop, ok.s.closed && srv.closed, 10000);
    expect_ok(&ok);
    h_listener_finish(loop, s.l, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_tls_config_t scfg = server_cfg();
    scfg.handshake_timeout_ms = 200;
    nf_tls_ctx_t *sctx = ctx_new(&scfg);
    nf_tls_config_t ccfg = client_cfg();
    ccfg.handshake_timeout_ms = 200;
    nf_tls_ctx_t *cctx = ctx_new(&ccfg);
    server_t s;
    server_start(loop, &s, sctx);
    /* server side: a peer that connects and says nothing, and one that stops
     * after half a ClientHello */
    raw_t r = {0}, r2 = {.send = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", .len = 11};
    h_connect(loop, "127.0.0.1", s.port, &raw_handler, &r);
    H_RUN_UNTIL(loop, srv.closed && r.closed, 10000);
    expect_fail(&srv, -ETIMEDOUT, "handshake timeout");
    memset(&srv, 0, sizeof srv);
    h_connect(loop, "127.0.0.1", s.port, &raw_handler, &r2);
    H_RUN_UNTIL(loop, srv.closed && r2.closed, 10000);
    expect_fail(&srv, -ETIMEDOUT, "handshake timeout");
    /* client side: a server that accepts and never answers */
    static raw_t silent;
    nf_listener_t *pl;
    uint16_t pport = h_listen(loop, NULL, &raw_handler, &silent, &pl);
    client_t cl;
    client_start(loop, &cl, cctx, pport, 10, NULL);
    H_RUN_UNTIL(loop, cl.s.closed, 10000);
    expect_fail(&cl.s, -ETIMEDOUT, "handshake timeout");
    nf_listener_close(s.l, NULL);
    h_listener_finish(loop, pl, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

/* The server streams 8 MiB; the client resets after the first 100 KiB. */
static void stream_open(nf_conn_t *c)
{
    side_open(&srv, c);
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < 128; i++)
        nf_conn_write(c, buf, sizeof buf);
}
static const nf_conn_handler_t stream_handler = {stream_open, srv_read, srv_eof, NULL, srv_close, NULL};

static void test_reset_mid_write(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *sctx = server_ctx("server");
    nf_tls_ctx_t *cctx = client_ctx();
    server_t s;
    server_start_with(loop, &s, sctx, &stream_handler);
    static side_t stream_srv;
    client_t cl;
    client_start(loop, &cl, cctx, s.port, 0, NULL);
    cl.abort_at = 100000;
    H_RUN_UNTIL(loop, cl.s.closed && srv.closed, 10000);
    stream_srv = srv;
    assert_int_equal(cl.s.reason, NF_CLOSE_LOCAL);
    if (stream_srv.reason != -ECONNRESET && stream_srv.reason != -EPIPE)
        fail_msg("server closed with %s (%s)", nf_err_name(stream_srv.reason), stream_srv.err);
    /* the listener goes on: a good connection after it */
    server_t s2;
    server_start(loop, &s2, sctx);
    client_t ok;
    client_start(loop, &ok, cctx, s2.port, 100000, NULL);
    H_RUN_UNTIL(loop, ok.s.closed && srv.closed, 10000);
    expect_ok(&ok);
    nf_listener_close(s2.l, NULL);
    h_listener_finish(loop, s.l, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

/* ---- flow control below TLS: a slow reader stays bounded ------------------------- */

#define SLOW_TOTAL    (4u << 20)
#define SLOW_WRITE    65536u
#define SLOW_INFLIGHT (64u * 1024)
#define SLOW_HELD     (256u * 1024)

typedef struct pusher {
    size_t sent;
    size_t max_queued; /* nf_conn_queued after a write: ciphertext below the flow filter */
    int bad_result;
    nf_flow_stats_t st;
    int closed, reason;
} pusher_t;
static pusher_t push_state;

static void push(nf_conn_t *c)
{
    static char buf[SLOW_WRITE];
    while (push_state.sent < SLOW_TOTAL) {
        h_pattern_fill(buf, SLOW_WRITE, push_state.sent, 7);
        int r = nf_conn_write(c, buf, SLOW_WRITE);
        if (r < 0 || r == NF_WRITE_DROPPED) {
            push_state.bad_result = r ? r : -1;
            return;
        }
        push_state.sent += SLOW_WRITE;
        if (nf_conn_queued(c) > push_state.max_queued)
            push_state.max_queued = nf_conn_queued(c);
        if (r == NF_WRITE_HELD)
            return; /* back-pressure: wait for on_drain */
    }
}
static void push_open(nf_conn_t *c)
{
    int small = 16384;
    setsockopt(nf_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    push(c);
}
static void push_close(nf_conn_t *c, int reason)
{
    nf_flow_stats(c, &push_state.st);
    push_state.closed++;
    push_state.reason = reason;
}
static const nf_conn_handler_t push_handler = {push_open, h_ignore_read, NULL, push, push_close, NULL};

typedef struct slow {
    nf_timer_t t;
    nf_conn_t *c;
    size_t got;
    int bad, closed, reason, open;
} slow_t;
static slow_t slow_state;

static void slow_tick(nf_timer_t *t)
{
    (void)t;
    if (slow_state.open && !slow_state.closed)
        nf_conn_read_once(slow_state.c);
}
static void slow_open(nf_conn_t *c)
{
    int small = 16384;
    setsockopt(nf_conn_fd(c), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    slow_state.open = 1;
    nf_conn_read_stop(c);
    nf_timer_start(&slow_state.t, slow_tick, 1, 1);
}
static void slow_read(nf_conn_t *c, const char *d, size_t n)
{
    if (h_pattern_check(d, n, slow_state.got, 7) != SIZE_MAX)
        slow_state.bad++;
    slow_state.got += n;
    if (slow_state.got >= SLOW_TOTAL)
        nf_conn_end(c);
}
static void slow_close(nf_conn_t *c, int reason)
{
    (void)c;
    slow_state.closed++;
    slow_state.reason = reason;
    nf_timer_stop(&slow_state.t);
}
static const nf_conn_handler_t slow_handler = {.on_open = slow_open, .on_read = slow_read, .on_close = slow_close};

static void test_flow_slow_reader(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *sctx = server_ctx("server");
    nf_tls_ctx_t *cctx = client_ctx();
    memset(&push_state, 0, sizeof push_state);
    memset(&slow_state, 0, sizeof slow_state);
    nf_flow_config_t fc = {.max_inflight_bytes = SLOW_INFLIGHT, .max_held_bytes = SLOW_HELD, .policy = NF_FLOW_CLOSE};
    /* flow next to the transport: it counts TLS records, the bytes on the wire */
    nf_filter_spec_t spec[2] = {{&nf_flow_filter, &fc}, {&nf_tls_filter, sctx}};
    nf_listen_config_t lc = {.handler = &push_handler, .filters = spec, .nfilters = 2};
    nf_listener_t *l;
    uint16_t port = h_listen_cfg(loop, &lc, &l);
    nf_timer_init(loop, &slow_state.t);
    nf_filter_spec_t cspec[1] = {{&nf_tls_filter, cctx}};
    nf_connect_config_t cc = {
        .host = "127.0.0.1", .port = port, .handler = &slow_handler, .filters = cspec, .nfilters = 1};
    assert_int_equal(nf_connect(loop, &cc, &slow_state.c), 0);
    H_RUN_UNTIL(loop, slow_state.closed && push_state.closed, 15000);
    if (push_state.bad_result)
        fail_msg("a write returned %s", nf_err_name(push_state.bad_result));
    assert_int_equal(slow_state.got, SLOW_TOTAL);
    assert_int_equal(slow_state.bad, 0);
    assert_int_equal(slow_state.reason, NF_CLOSE_LOCAL);
    /* back-pressure happened, nothing was dropped, and memory stayed bounded:
     * held (ciphertext) under its limit, queued below at most one write past
     * the in-flight limit */
    assert_true(push_state.st.writes_held > 0);
    assert_int_equal(push_state.st.writes_dropped, 0);
    assert_true(push_state.st.held_bytes_hwm <= SLOW_HELD);
    assert_true(push_state.st.held_bytes_hwm > 0);
    assert_true(push_state.max_queued <= SLOW_INFLIGHT + SLOW_WRITE + 1024);
    print_message("slow reader over TLS: held hwm %zu B, max queued %zu B, writes held %llu, drains %llu\n",
                  push_state.st.held_bytes_hwm, push_state.max_queued, (unsigned long long)push_state.st.writes_held,
                  (unsigned long long)push_state.st.drains);
    h_listener_finish(loop, l, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

/* ---- one server, a plain and a TLS listener, the same handler ---------------------- */

static void test_plain_and_tls(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *sctx = server_ctx("server");
    nf_tls_ctx_t *cctx = client_ctx();
    server_t tls_srv;
    server_start(loop, &tls_srv, sctx);
    nf_listen_config_t lc = {.handler = &srv_handler};
    nf_listener_t *plain;
    uint16_t pport = h_listen_cfg(loop, &lc, &plain);
    client_t a, b;
    client_start(loop, &a, cctx, tls_srv.port, 300000, NULL);
    client_start(loop, &b, NULL, pport, 300000, NULL);
    H_RUN_UNTIL(loop, a.s.closed && b.s.closed && srv.closed == 2, 10000);
    expect_ok(&a);
    expect_ok(&b);
    assert_string_equal(a.s.version, "TLSv1.3");
    assert_string_equal(b.s.version, "plain");
    assert_int_equal(srv.bytes, 600000);
    nf_listener_close(tls_srv.l, NULL);
    h_listener_finish(loop, plain, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

/* ---- half-close: close_notify + FIN one way, the other way still writes ------------ */

static char hc_got[64];
static size_t hc_len;
static int hc_client_eof, hc_client_closed, hc_client_reason;

static void hcs_eof(nf_conn_t *c)
{
    srv.eofs++;
    assert_int_equal(nf_conn_write(c, "bye", 3), NF_WRITE_OK); /* our side is still open */
    nf_conn_end(c);
}
static const nf_conn_handler_t hc_srv_handler = {srv_open, srv_read, hcs_eof, NULL, srv_close, NULL};

static void hcc_open(nf_conn_t *c)
{
    nf_conn_write(c, "hello", 5);
    assert_int_equal(nf_conn_shutdown(c), 0); /* close_notify, then FIN; reading goes on */
    assert_true(nf_conn_write(c, "late", 4) < 0);
}
static void hcc_read(nf_conn_t *c, const char *d, size_t n)
{
    (void)c;
    if (hc_len + n <= sizeof hc_got) {
        memcpy(hc_got + hc_len, d, n);
        hc_len += n;
    }
}
static void hcc_eof(nf_conn_t *c)
{
    hc_client_eof++;
    nf_conn_end(c);
}
static void hcc_close(nf_conn_t *c, int reason)
{
    hc_client_closed++;
    hc_client_reason = reason;
    assert_null(nf_tls_conn_error(c)); /* the server's close_notify came: no truncation */
}
static const nf_conn_handler_t hc_cli_handler = {hcc_open, hcc_read, hcc_eof, NULL, hcc_close, NULL};

static void test_half_close(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_tls_ctx_t *sctx = server_ctx("server");
    nf_tls_ctx_t *cctx = client_ctx();
    server_t s;
    server_start_with(loop, &s, sctx, &hc_srv_handler);
    nf_filter_spec_t cspec[1] = {{&nf_tls_filter, cctx}};
    nf_connect_config_t cc = {
        .host = "127.0.0.1", .port = s.port, .handler = &hc_cli_handler, .filters = cspec, .nfilters = 1};
    nf_conn_t *c;
    assert_int_equal(nf_connect(loop, &cc, &c), 0);
    H_RUN_UNTIL(loop, hc_client_closed && srv.closed, 10000);
    assert_int_equal(hc_len, 8);
    assert_memory_equal(hc_got, "hellobye", 8);
    assert_int_equal(srv.eofs, 1);
    assert_int_equal(hc_client_eof, 1);
    assert_int_equal(hc_client_reason, NF_CLOSE_LOCAL);
    assert_int_equal(srv.reason, NF_CLOSE_LOCAL);
    assert_string_equal(srv.err, "");
    h_listener_finish(loop, s.l, 5000);
    nf_tls_ctx_free(sctx);
    nf_tls_ctx_free(cctx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_echo_tls13),
    cmocka_unit_test(test_echo_tls12),
    cmocka_unit_test(test_alpn),
    cmocka_unit_test(test_sni),
    cmocka_unit_test(test_resume_tls13),
    cmocka_unit_test(test_resume_tls12),
    cmocka_unit_test(test_client_cert),
    cmocka_unit_test(test_self_signed),
    cmocka_unit_test(test_expired),
    cmocka_unit_test(test_wrong_name),
    cmocka_unit_test(test_garbage),
    cmocka_unit_test(test_handshake_timeout),
    cmocka_unit_test(test_reset_mid_write),
    cmocka_unit_test(test_flow_slow_reader),
    cmocka_unit_test(test_plain_and_tls),
    cmocka_unit_test(test_half_close),
};

int main(void) { return cmocka_run_group_tests(tests, setup, teardown); }

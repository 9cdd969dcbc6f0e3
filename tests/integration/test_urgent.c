/* Integration: urgent (out-of-band) data against plain-socket peers using
 * MSG_OOB, and between two netframe connections.
 *
 *  - The peer sends "abc", then "!" with MSG_OOB, then "def": on_urgent gets
 *    '!' and on_read gets "abcdef" (without the '!'). Several rounds.
 *  - With oob_inline = 1 the '!' stays in the stream ("abc!def") and
 *    on_urgent is never called.
 *  - nf_conn_send_urgent from the server: the plain peer sees POLLPRI and
 *    reads the byte with recv(MSG_OOB); normal bytes written after it arrive
 *    in the stream without it.
 *  - netframe to netframe: client -> server urgent byte (on_urgent), and
 *    server -> client with the client's oob_inline = 1 (in the stream). */
#include "helpers.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
    nf_conn_t *c;
    int opened, closed, reason;
    char stream[256];
    size_t len;
    unsigned char urgent[16];
    int nurgent;
    int send_rc;
    int send_on_read; /* server: on "go", send an urgent '#' then "tail" */
    int send_in_open; /* server: send an urgent 'Z' from on_open */
    int write_rc;
} g;

/* client side (netframe to netframe) */
static struct {
    nf_conn_t *c;
    int opened, closed, reason;
    char stream[64];
    size_t len;
    int nurgent;
    int send_rc;
} gc;

static void reset_g(void)
{
    memset(&g, 0, sizeof g);
    memset(&gc, 0, sizeof gc);
    g.reason = gc.reason = 12345;
    g.send_rc = gc.send_rc = 12345;
}

static void srv_open(nf_conn_t *c)
{
    g.opened++;
    g.c = c;
    if (g.send_in_open)
        g.send_rc = nf_conn_send_urgent(c, 'Z');
}

static void srv_read(nf_conn_t *c, const char *data, size_t len)
{
    if (g.len + len <= sizeof g.stream)
        memcpy(g.stream + g.len, data, len);
    g.len += len;
    if (g.send_on_read && g.len >= 2 && memcmp(g.stream, "go", 2) == 0 && g.send_on_read == 1) {
        g.send_on_read = 2;
        g.send_rc = nf_conn_send_urgent(c, '#');
        g.write_rc = nf_conn_write(c, "tail", 4);
    }
}

static void srv_urgent(nf_conn_t *c, unsigned char byte)
{
    (void)c;
    if (g.nurgent < (int)sizeof g.urgent)
        g.urgent[g.nurgent] = byte;
    g.nurgent++;
}

static void srv_close(nf_conn_t *c, int reason)
{
    (void)c;
    g.closed++;
    g.reason = reason;
    g.c = NULL;
}

static const nf_conn_handler_t srv_handler = {
    .on_open = srv_open,
    .on_read = srv_read,
    .on_close = srv_close,
    .on_urgent = srv_urgent,
};

/* The server (oob_inline as given) and one plain peer, accepted. */
static h_fixture_t start(int oob_inline)
{
    nf_listen_config_t cfg = h_listen_config(&srv_handler, NULL);
    cfg.oob_inline = oob_inline;
    h_fixture_t f;
    h_fixture_open(&f, &cfg);
    H_RUN_UNTIL(f.loop, g.opened == 1, 3000);
    return f;
}

static void send_oob(int fd, char byte)
{
    ssize_t n = send(fd, &byte, 1, MSG_OOB | MSG_NOSIGNAL);
    if (n != 1)
        fail_msg("send(MSG_OOB) = %zd: %s", n, strerror(errno));
}

/* ---- peer -> server, out of line ---------------------------------------------- */

static void test_peer_urgent(void **state)
{
    (void)state;
    reset_g();
    h_fixture_t f = start(0);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;

    static const char marks[] = {'!', '?', '*'};
    char want[64];
    size_t wlen = 0;
    for (int round = 0; round < 3; round++) {
        /* TCP keeps one urgent byte: wait for each before sending the next */
        assert_int_equal(h_send_all(fd, "abc", 3, 1000), 0);
        send_oob(fd, marks[round]);
        assert_int_equal(h_send_all(fd, "def", 3, 1000), 0);
        memcpy(want + wlen, "abcdef", 6);
        wlen += 6;
        int ok;
        H_RUN_WAIT(ok, loop, g.nurgent == round + 1 && g.len >= wlen, 2000);
        if (!ok)
            fail_msg("round %d: %d urgent bytes (first 0x%02x), stream %zu bytes \"%.*s\", "
                     "expected %zu \"%.*s\"",
                     round, g.nurgent, g.urgent[0], g.len, (int)(g.len < 64 ? g.len : 64), g.stream, wlen, (int)wlen,
                     want);
        h_run_for(loop, 20);
        assert_int_equal(g.nurgent, round + 1);
        assert_int_equal(g.urgent[round], (unsigned char)marks[round]);
        assert_int_equal(g.len, wlen);
        assert_memory_equal(g.stream, want, wlen);
    }
    close(fd);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    H_ASSERT_ERR(g.reason, NF_EOF);
    assert_int_equal(g.nurgent, 3);
    h_fixture_end(&f);
}

/* An urgent byte alone (no normal data around it). */
static void test_peer_urgent_alone(void **state)
{
    (void)state;
    reset_g();
    h_fixture_t f = start(0);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    send_oob(fd, 'U');
    int ok;
    H_RUN_WAIT(ok, loop, g.nurgent == 1, 2000);
    if (!ok)
        fail_msg("no on_urgent; %zu stream bytes \"%.*s\"", g.len, (int)(g.len < 64 ? g.len : 64), g.stream);
    h_run_for(loop, 30);
    assert_int_equal(g.nurgent, 1);
    assert_int_equal(g.urgent[0], 'U');
    assert_int_equal(g.len, 0);
    assert_int_equal(g.closed, 0);
    /* the connection still works normally afterwards */
    assert_int_equal(h_send_all(fd, "xyz", 3, 1000), 0);
    H_RUN_UNTIL(loop, g.len == 3, 3000);
    assert_memory_equal(g.stream, "xyz", 3);
    close(fd);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    H_ASSERT_ERR(g.reason, NF_EOF);
    h_fixture_end(&f);
}

/* ---- peer -> server, inline ---------------------------------------------------- */

static void test_peer_urgent_inline(void **state)
{
    (void)state;
    reset_g();
    h_fixture_t f = start(1);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    assert_int_equal(h_send_all(fd, "abc", 3, 1000), 0);
    send_oob(fd, '!');
    assert_int_equal(h_send_all(fd, "def", 3, 1000), 0);
    int ok;
    H_RUN_WAIT(ok, loop, g.len >= 7, 2000);
    if (!ok)
        fail_msg("stream %zu bytes \"%.*s\", expected \"abc!def\"; %d urgent", g.len, (int)(g.len < 64 ? g.len : 64),
                 g.stream, g.nurgent);
    h_run_for(loop, 50);
    assert_int_equal(g.len, 7);
    assert_memory_equal(g.stream, "abc!def", 7);
    assert_int_equal(g.nurgent, 0);
    close(fd);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    H_ASSERT_ERR(g.reason, NF_EOF);
    assert_int_equal(g.nurgent, 0);
    h_fixture_end(&f);
}

/* ---- server -> peer ------------------------------------------------------------ */

static void test_server_sends_urgent(void **state)
{
    (void)state;
    reset_g();
    g.send_on_read = 1;
    h_fixture_t f = start(0);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    assert_int_equal(h_send_all(fd, "go", 2, 1000), 0);
    H_RUN_UNTIL(loop, g.send_on_read == 2 && g.c && nf_conn_queued(g.c) == 0, 3000);
    H_ASSERT_ERR(g.send_rc, 0);
    H_ASSERT_ERR(g.write_rc, 0);

    /* The peer: POLLPRI within a bound, then recv(MSG_OOB). */
    struct pollfd p = {.fd = fd, .events = POLLPRI};
    uint64_t deadline = h_now_ms() + 3000;
    int pr;
    do
        pr = poll(&p, 1, 100);
    while ((pr == 0 || (pr < 0 && errno == EINTR)) && h_now_ms() < deadline);
    if (pr <= 0 || !(p.revents & POLLPRI))
        fail_msg("no POLLPRI at the peer (poll = %d, revents 0x%x)", pr, p.revents);
    unsigned char b = 0;
    ssize_t n = recv(fd, &b, 1, MSG_OOB | MSG_DONTWAIT);
    if (n != 1)
        fail_msg("recv(MSG_OOB) = %zd: %s", n, strerror(errno));
    assert_int_equal(b, '#');
    /* the normal stream carries "tail" only */
    char buf[16];
    assert_int_equal(h_recv_full(fd, buf, 4, 3000), 4);
    assert_memory_equal(buf, "tail", 4);
    assert_int_equal(recv(fd, buf, sizeof buf, MSG_DONTWAIT), -1);
    close(fd);
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    h_fixture_end(&f);
}

/* nf_conn_send_urgent on a closing connection: NF_ECLOSED. */
static void close_then_send(nf_conn_t *c)
{
    g.opened++;
    nf_conn_close(c);
    g.send_rc = nf_conn_send_urgent(c, 'x');
}

static const nf_conn_handler_t closing_handler = {
    .on_open = close_then_send,
    .on_read = srv_read,
    .on_close = srv_close,
};

static void test_send_urgent_closing(void **state)
{
    (void)state;
    reset_g();
    h_fixture_t f;
    h_fixture_start(&f, &closing_handler, NULL);
    nf_loop_t *loop = f.loop;
    int fd = f.fd;
    H_RUN_UNTIL(loop, g.closed == 1, 3000);
    H_ASSERT_ERR(g.send_rc, NF_ECLOSED);
    close(fd);
    h_fixture_finish(&f, 3000);
}

/* ---- netframe to netframe ------------------------------------------------------- */

static void cli_open(nf_conn_t *c)
{
    gc.opened++;
    gc.c = c;
    gc.send_rc = nf_conn_send_urgent(c, 'Y');
}

static void cli_read(nf_conn_t *c, const char *data, size_t len)
{
    (void)c;
    if (gc.len + len <= sizeof gc.stream)
        memcpy(gc.stream + gc.len, data, len);
    gc.len += len;
}

static void cli_urgent(nf_conn_t *c, unsigned char byte)
{
    (void)c;
    (void)byte;
    gc.nurgent++;
}

static void cli_close(nf_conn_t *c, int reason)
{
    (void)c;
    gc.closed++;
    gc.reason = reason;
    gc.c = NULL;
}

static const nf_conn_handler_t cli_handler = {
    .on_open = cli_open,
    .on_read = cli_read,
    .on_close = cli_close,
    .on_urgent = cli_urgent,
};

static void test_nf_to_nf(void **state)
{
    (void)state;
    reset_g();
    g.send_in_open = 1;
    nf_loop_t *loop = h_loop_new();
    nf_listener_t *l;
    uint16_t port = h_listen(loop, NULL, &srv_handler, NULL, &l);
    nf_connect_config_t cc = h_connect_config("127.0.0.1", port, &cli_handler, NULL);
    cc.oob_inline = 1;
    nf_conn_t *c = NULL;
    H_ASSERT_ERR(nf_connect(loop, &cc, &c), 0);
    int ok;
    H_RUN_WAIT(ok, loop, g.nurgent == 1 && gc.len >= 1, 2000);
    if (!ok)
        fail_msg("server: %d urgent, %zu stream bytes, send_rc %d; client: %zu stream bytes, %d "
                 "urgent, send_rc %d",
                 g.nurgent, g.len, g.send_rc, gc.len, gc.nurgent, gc.send_rc);
    h_run_for(loop, 30);
    H_ASSERT_ERR(gc.send_rc, 0);
    H_ASSERT_ERR(g.send_rc, 0);
    /* client -> server: out of line, on_urgent */
    assert_int_equal(g.nurgent, 1);
    assert_int_equal(g.urgent[0], 'Y');
    assert_int_equal(g.len, 0);
    /* server -> client (oob_inline): in the stream, no on_urgent */
    assert_int_equal(gc.len, 1);
    assert_int_equal(gc.stream[0], 'Z');
    assert_int_equal(gc.nurgent, 0);
    nf_conn_close(gc.c);
    H_RUN_UNTIL(loop, gc.closed == 1 && g.closed == 1, 3000);
    H_ASSERT_ERR(gc.reason, NF_CLOSE_LOCAL);
    H_ASSERT_ERR(g.reason, NF_EOF);
    h_listener_finish(loop, l, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_urgent),         cmocka_unit_test(test_peer_urgent_alone),
        cmocka_unit_test(test_peer_urgent_inline),  cmocka_unit_test(test_server_sends_urgent),
        cmocka_unit_test(test_send_urgent_closing), cmocka_unit_test(test_nf_to_nf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

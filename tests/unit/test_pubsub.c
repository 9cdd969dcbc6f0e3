/* The pub/sub hub on one loop, with TCP subscribers (nf_pubsub_filter) over
 * loopback pairs read directly by the test: counts, fan-out exactly once,
 * except-sender, (un)subscribes, closes and publishes from inside a delivery,
 * 10,000 topics, a connection's topics released on close, slow subscribers
 * (drop and close), and a group of hubs on one loop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "integration/helpers.h"
#include "netframe/flow.h"
#include "netframe/pubsub.h"

#define MAXC 8

typedef struct sub {
    nf_conn_t *c;
    int peer; /* the test's end */
    int closed, reason;
} sub_t;

static void s_read(nf_conn_t *c, const char *data, size_t len) { (void)c, (void)data, (void)len; }
static void s_close(nf_conn_t *c, int reason)
{
    sub_t *s = nf_conn_get_data(c);
    s->closed = 1;
    s->reason = reason;
}
static const nf_conn_handler_t s_handler = {.on_read = s_read, .on_close = s_close};
static const nf_filter_spec_t ps_filters[] = {{&nf_pubsub_filter, NULL}};

/* A loopback TCP pair: the loop adopts one end (with nf_pubsub_filter). */
static void sub_open(nf_loop_t *loop, sub_t *s, int sndbuf)
{
    uint16_t port;
    int l = h_tcp_listen(1, &port);
    s->peer = h_tcp_connect("127.0.0.1", port);
    assert_true(s->peer >= 0);
    int fd = accept(l, NULL, NULL);
    assert_true(fd >= 0);
    close(l);
    if (sndbuf)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    nf_adopt_config_t ac = {.handler = &s_handler, .data = s, .filters = ps_filters, .nfilters = 1};
    assert_int_equal(nf_conn_adopt_ex(loop, fd, &ac, &s->c), 0);
}

/* Reads what arrived within ms into buf (non-blocking peer). */
static size_t drain(nf_loop_t *loop, sub_t *s, char *buf, size_t cap, unsigned ms)
{
    size_t n = 0;
    uint64_t end = h_now_ms() + ms;
    h_set_nonblock(s->peer, 1);
    while (h_now_ms() < end && n < cap) {
        nf_loop_run(loop, NF_RUN_NOWAIT);
        ssize_t r = recv(s->peer, buf + n, cap - n, 0);
        if (r > 0)
            n += (size_t)r;
        else
            h_sleep_ms(1);
    }
    return n;
}

static void close_all(nf_loop_t *loop, sub_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        if (!s[i].closed)
            nf_conn_close(s[i].c);
        close(s[i].peer);
    }
    h_loop_finish(loop, 5000);
}

#define T(s) (s), strlen(s)

static void test_fanout_counts(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_pubsub_t *ps;
    assert_int_equal(nf_pubsub_new(loop, NULL, &ps), 0);
    sub_t s[4] = {0};
    for (int i = 0; i < 4; i++)
        sub_open(loop, &s[i], 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(nf_pubsub_subscribe_tcp(ps, s[i].c, T("room")), 0);
    assert_int_equal(nf_pubsub_subscribe_tcp(ps, s[0].c, T("room")), -EALREADY);
    assert_int_equal(nf_pubsub_subscribe_tcp(ps, s[3].c, T("other")), 0);
    assert_int_equal(nf_pubsub_subscribe_tcp(ps, s[3].c, "", 0), -EINVAL);
    assert_int_equal(nf_pubsub_count(ps, T("room")), 3);
    assert_int_equal(nf_pubsub_count(ps, T("other")), 1);
    assert_int_equal(nf_pubsub_count(ps, T("none")), 0);
    assert_int_equal(nf_pubsub_topics(ps), 2);

    assert_int_equal(nf_pubsub_publish(ps, T("room"), NF_WS_OP_TEXT, "one,", 4), 3);
    assert_int_equal(nf_pubsub_publish_except(ps, T("room"), NF_WS_OP_TEXT, "two,", 4, s[1].c), 2);
    assert_int_equal(nf_pubsub_publish(ps, T("none"), NF_WS_OP_TEXT, "x", 1), 0);
    assert_int_equal(nf_pubsub_publish(ps, T("room"), 9, "x", 1), -EINVAL);
    assert_int_equal(nf_pubsub_unsubscribe_tcp(ps, s[2].c, T("room")), 0);
    assert_int_equal(nf_pubsub_unsubscribe_tcp(ps, s[2].c, T("room")), -ENOENT);
    assert_int_equal(nf_pubsub_publish(ps, T("room"), NF_WS_OP_BINARY, "three", 5), 2);

    char buf[64];
    size_t n = drain(loop, &s[0], buf, sizeof buf, 200);
    assert_int_equal(n, 13);
    assert_memory_equal(buf, "one,two,three", 13);
    n = drain(loop, &s[1], buf, sizeof buf, 50);
    assert_int_equal(n, 9);
    assert_memory_equal(buf, "one,three", 9);
    n = drain(loop, &s[2], buf, sizeof buf, 50);
    assert_int_equal(n, 8);
    assert_memory_equal(buf, "one,two,", 8);
    assert_int_equal(drain(loop, &s[3], buf, sizeof buf, 50), 0);

    nf_pubsub_topic_stats_t st;
    assert_int_equal(nf_pubsub_topic_stats(ps, T("room"), &st), 0);
    assert_int_equal(st.subscribers, 2);
    assert_int_equal(st.published, 3);
    assert_int_equal(st.delivered, 7);
    assert_int_equal(st.dropped, 0);

    /* a closed connection's topics are released */
    nf_conn_close(s[3].c);
    nf_conn_close(s[0].c);
    h_run_for(loop, 20);
    assert_true(s[3].closed && s[0].closed);
    assert_int_equal(nf_pubsub_count(ps, T("other")), 0);
    assert_int_equal(nf_pubsub_count(ps, T("room")), 1);
    assert_int_equal(nf_pubsub_topics(ps), 1);
    nf_pubsub_free(ps);
    close_all(loop, s, 4);
}

/* The framer runs during the walk (at the first TCP subscriber): from there
 * it closes one subscriber, unsubscribes another, subscribes a new one and
 * publishes again to the same topic. */
typedef struct mut {
    nf_pubsub_t *ps;
    sub_t *s;
    int calls;
    int mode; /* 0: mixed; 1: unsubscribe everyone */
} mut_t;

static nf_buf_t *mut_framer(void *arg, unsigned opcode, const void *data, size_t len)
{
    mut_t *m = arg;
    (void)opcode;
    if (m->calls++ == 0) {
        if (m->mode == 0) {
            nf_conn_close(m->s[2].c);
            assert_int_equal(nf_pubsub_unsubscribe_tcp(m->ps, m->s[1].c, T("t")), 0);
            assert_int_equal(nf_pubsub_subscribe_tcp(m->ps, m->s[3].c, T("t")), 0);
            /* s0, s2 (closing: dropped) and s3 */
            assert_int_equal(nf_pubsub_publish(m->ps, T("t"), NF_WS_OP_TEXT, "inner;", 6), 2);
        } else {
            for (int i = 0; i < 3; i++)
                assert_int_equal(nf_pubsub_unsubscribe_tcp(m->ps, m->s[i].c, T("t")), 0);
            assert_int_equal(nf_pubsub_topics(m->ps), 0);
        }
    }
    nf_buf_t *b = nf_buf_new(len);
    memcpy(b->base, data, len);
    b->len = len;
    return b;
}

static void test_mutate_inside_delivery(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    mut_t m = {0};
    nf_pubsub_config_t cfg = {.framer = mut_framer, .framer_arg = &m};
    assert_int_equal(nf_pubsub_new(loop, &cfg, &m.ps), 0);
    sub_t s[4] = {0};
    m.s = s;
    for (int i = 0; i < 4; i++)
        sub_open(loop, &s[i], 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(nf_pubsub_subscribe_tcp(m.ps, s[i].c, T("t")), 0);
    /* outer: s0 only (s1 left, s2 closing, s3 joined during the walk) */
    assert_int_equal(nf_pubsub_publish(m.ps, T("t"), NF_WS_OP_TEXT, "outer;", 6), 1);
    char buf[64];
    size_t n = drain(loop, &s[0], buf, sizeof buf, 200);
    assert_int_equal(n, 12);
    assert_memory_equal(buf, "inner;outer;", 12);
    assert_int_equal(drain(loop, &s[1], buf, sizeof buf, 30), 0);
    assert_int_equal(drain(loop, &s[3], buf, sizeof buf, 30), 6);
    assert_memory_equal(buf, "inner;", 6);
    assert_true(s[2].closed);
    assert_int_equal(nf_pubsub_count(m.ps, T("t")), 2);

    /* everyone leaves inside the walk (a fresh hub, three subscribers): the
     * topic lives until the walk ends, then goes */
    m.calls = 0;
    m.mode = 1;
    nf_pubsub_free(m.ps);
    assert_int_equal(nf_pubsub_new(loop, &cfg, &m.ps), 0);
    sub_t t[3] = {0};
    m.s = t;
    for (int i = 0; i < 3; i++) {
        sub_open(loop, &t[i], 0);
        assert_int_equal(nf_pubsub_subscribe_tcp(m.ps, t[i].c, T("t")), 0);
    }
    assert_int_equal(nf_pubsub_publish(m.ps, T("t"), NF_WS_OP_TEXT, "gone", 4), 1);
    assert_int_equal(nf_pubsub_topics(m.ps), 0);
    assert_int_equal(nf_pubsub_count(m.ps, T("t")), 0);
    nf_pubsub_free(m.ps);
    for (int i = 0; i < 3; i++) {
        nf_conn_close(t[i].c);
        close(t[i].peer);
    }
    close_all(loop, s, 4);
}

static void test_10000_topics(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_pubsub_t *ps;
    assert_int_equal(nf_pubsub_new(loop, NULL, &ps), 0);
    sub_t s[2] = {0};
    sub_open(loop, &s[0], 0);
    sub_open(loop, &s[1], 0);
    char name[32];
    for (int i = 0; i < 10000; i++) {
        int k = snprintf(name, sizeof name, "topic-%d", i);
        assert_int_equal(nf_pubsub_subscribe_tcp(ps, s[0].c, name, (size_t)k), 0);
        if (i % 2 == 0)
            assert_int_equal(nf_pubsub_subscribe_tcp(ps, s[1].c, name, (size_t)k), 0);
    }
    assert_int_equal(nf_pubsub_topics(ps), 10000);
    int total = 0;
    for (int i = 0; i < 10000; i++) {
        int k = snprintf(name, sizeof name, "topic-%d", i);
        assert_int_equal(nf_pubsub_count(ps, name, (size_t)k), i % 2 == 0 ? 2 : 1);
        total += nf_pubsub_publish(ps, name, (size_t)k, NF_WS_OP_BINARY, "x", 1);
    }
    assert_int_equal(total, 15000);
    char *buf = malloc(20000);
    assert_int_equal(drain(loop, &s[0], buf, 20000, 300), 10000);
    assert_int_equal(drain(loop, &s[1], buf, 20000, 100), 5000);
    free(buf);
    /* half of s0's topics by hand, the rest on close */
    for (int i = 0; i < 10000; i += 2) {
        int k = snprintf(name, sizeof name, "topic-%d", i);
        assert_int_equal(nf_pubsub_unsubscribe_tcp(ps, s[0].c, name, (size_t)k), 0);
    }
    assert_int_equal(nf_pubsub_topics(ps), 10000);
    nf_conn_close(s[0].c);
    h_run_for(loop, 20);
    assert_int_equal(nf_pubsub_topics(ps), 5000);
    nf_conn_close(s[1].c);
    h_run_for(loop, 20);
    assert_int_equal(nf_pubsub_topics(ps), 0);
    nf_pubsub_free(ps);
    close_all(loop, s, 2);
}

/* A subscriber that never reads, next to one that does. */
static void slow_case(nf_pubsub_slow_t policy)
{
    nf_loop_t *loop = h_loop_new();
    nf_pubsub_t *ps;
    nf_pubsub_config_t cfg = {.max_queued = 64 * 1024, .slow = policy};
    assert_int_equal(nf_pubsub_new(loop, &cfg, &ps), 0);
    sub_t s[2] = {0};
    sub_open(loop, &s[0], 16384); /* never read */
    sub_open(loop, &s[1], 0);
    assert_int_equal(nf_pubsub_subscribe_tcp(ps, s[0].c, T("feed")), 0);
    assert_int_equal(nf_pubsub_subscribe_tcp(ps, s[1].c, T("feed")), 0);
    char msg[1024];
    size_t got = 0, maxq = 0;
    char *rx = malloc(4096);
    h_set_nonblock(s[1].peer, 1);
    for (int i = 0; i < 4000; i++) {
        memset(msg, 'a' + i % 26, sizeof msg);
        nf_pubsub_publish(ps, T("feed"), NF_WS_OP_BINARY, msg, sizeof msg);
        nf_loop_run(loop, NF_RUN_NOWAIT);
        if (!s[0].closed && nf_conn_queued(s[0].c) > maxq)
            maxq = nf_conn_queued(s[0].c);
        ssize_t r;
        while ((r = recv(s[1].peer, rx, 4096, 0)) > 0) {
            for (ssize_t k = 0; k < r; k++) /* in order, none lost */
                assert_int_equal(rx[k], 'a' + (int)((got + (size_t)k) / 1024) % 26);
            got += (size_t)r;
        }
    }
    got += drain(loop, &s[1], rx, 4096, 0);
    uint64_t end = h_now_ms() + 2000;
    while (got < 4000 * 1024 && h_now_ms() < end) {
        ssize_t r = recv(s[1].peer, rx, 4096, 0);
        nf_loop_run(loop, NF_RUN_NOWAIT);
        if (r > 0)
            got += (size_t)r;
    }
    free(rx);
    assert_int_equal(got, 4000 * 1024); /* the reader got everything */
    assert_true(maxq <= 64 * 1024);     /* the other one stayed bounded */
    nf_pubsub_topic_stats_t st;
    assert_int_equal(nf_pubsub_topic_stats(ps, T("feed"), &st), 0);
    if (policy == NF_PUBSUB_SLOW_DROP) {
        assert_false(s[0].closed);
        assert_true(st.dropped > 3000); /* the socket took < 1000 KiB */
        assert_int_equal(st.delivered + st.dropped, 8000);
    } else {
        h_run_for(loop, 20);
        assert_true(s[0].closed);
        assert_int_equal(s[0].reason, NF_ESLOW);
        assert_int_equal(st.subscribers, 1);
    }
    nf_pubsub_free(ps);
    close_all(loop, s, 2);
}

static void test_slow_drop(void **state)
{
    (void)state;
    slow_case(NF_PUBSUB_SLOW_DROP);
}
static void test_slow_close(void **state)
{
    (void)state;
    slow_case(NF_PUBSUB_SLOW_CLOSE);
}

/* Two hubs of one group on one loop: each message reaches the other hub's
 * subscribers once (by a post), in order, and its own at once. */
static void test_group_one_loop(void **state)
{
    (void)state;
    nf_loop_t *loop = h_loop_new();
    nf_pubsub_group_t *g;
    assert_int_equal(nf_pubsub_group_new(2, &g), 0);
    nf_pubsub_t *a, *b, *x;
    nf_pubsub_config_t ca = {.group = g, .index = 0}, cb = {.group = g, .index = 1}, cx = {.group = g, .index = 2};
    assert_int_equal(nf_pubsub_new(loop, &ca, &a), 0);
    assert_int_equal(nf_pubsub_new(loop, &cb, &b), 0);
    assert_int_equal(nf_pubsub_new(loop, &cx, &x), -EINVAL);
    assert_int_equal(nf_pubsub_new(loop, &ca, &x), -EBUSY);
    sub_t s[2] = {0};
    sub_open(loop, &s[0], 0);
    sub_open(loop, &s[1], 0);
    assert_int_equal(nf_pubsub_subscribe_tcp(a, s[0].c, T("g")), 0);
    assert_int_equal(nf_pubsub_subscribe_tcp(b, s[0].c, T("g")), -EBUSY); /* one hub per connection */
    assert_int_equal(nf_pubsub_subscribe_tcp(b, s[1].c, T("g")), 0);
    assert_int_equal(nf_pubsub_publish(a, T("g"), NF_WS_OP_TEXT, "1", 1), 1);
    assert_int_equal(nf_pubsub_publish(b, T("g"), NF_WS_OP_TEXT, "2", 1), 1);
    assert_int_equal(nf_pubsub_group_publish(g, T("g"), NF_WS_OP_TEXT, "3", 1), 1); /* one loop */
    char buf[8];
    assert_int_equal(drain(loop, &s[0], buf, sizeof buf, 100), 3);
    assert_memory_equal(buf, "123", 3); /* "1" at once; "2" and "3" by post */
    /* b's own "2" went at once, a's "1" came by post: each publisher's
     * order holds, not an order across publishers */
    assert_int_equal(drain(loop, &s[1], buf, sizeof buf, 50), 3);
    assert_memory_equal(buf, "213", 3);
    nf_pubsub_free(a);
    nf_pubsub_free(b);
    close_all(loop, s, 2);
    nf_pubsub_group_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fanout_counts), cmocka_unit_test(test_mutate_inside_delivery),
        cmocka_unit_test(test_10000_topics),  cmocka_unit_test(test_slow_drop),
        cmocka_unit_test(test_slow_close),    cmocka_unit_test(test_group_one_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

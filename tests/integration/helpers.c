/* netframe integration tests — shared helpers (see helpers.h). */
#include "helpers.h"

#include <netframe/config.h>
#if NF_HAVE_URING
#include <liburing.h>
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The ctest variants that turn a feature on from the environment
 * (NAME.uring.fixed: NF_FIXED_FILES, NAME.uring.zc: NF_ZC_SEND_MIN): when
 * the kernel has the feature, every loop must report it on (checked in
 * h_loop_new_cfg) and the process must have used it at least once (checked
 * in h_group_result), so a variant cannot pass on the plain path. */
static struct {
    int fixed_expected, zc_expected;
    uint64_t fixed_peak, zc_sends;
} h_var;

/* ---- time -------------------------------------------------------------- */

uint64_t h_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t h_now_ms(void) { return h_now_ns() / 1000000u; }

void h_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- loop driving ------------------------------------------------------ */

static void h_tick_cb(nf_timer_t *t) { (void)t; }

void h_runner_begin(h_runner_t *r, nf_loop_t *loop, unsigned timeout_ms)
{
    r->loop = loop;
    r->deadline = h_now_ms() + timeout_ms;
    nf_timer_init(loop, &r->tick);
    int rc = nf_timer_start(&r->tick, h_tick_cb, H_TICK_MS, H_TICK_MS);
    if (rc != 0)
        fail_msg("nf_timer_start(tick) = %d (%s)", rc, nf_err_name(rc));
}

int h_runner_step(h_runner_t *r)
{
    if (h_now_ms() >= r->deadline)
        return 0;
    int rc = nf_loop_run(r->loop, NF_RUN_ONCE);
    if (rc < 0) {
        nf_timer_stop(&r->tick);
        fail_msg("nf_loop_run(NF_RUN_ONCE) = %d (%s)", rc, nf_err_name(rc));
    }
    if (h_var.fixed_expected) {
        nf_loop_stats_t s = h_stats(r->loop);
        if (s.conns_fixed_file > h_var.fixed_peak)
            h_var.fixed_peak = s.conns_fixed_file;
    }
    return 1;
}

void h_runner_end(h_runner_t *r) { nf_timer_stop(&r->tick); }

void h_run_for(nf_loop_t *loop, unsigned ms)
{
    h_runner_t r;
    h_runner_begin(&r, loop, ms);
    while (h_runner_step(&r)) {
    }
    h_runner_end(&r);
}

int h_run_until_idle(nf_loop_t *loop, unsigned timeout_ms)
{
    if (nf_loop_alive(loop) == 0)
        return 1;
    h_runner_t r;
    h_runner_begin(&r, loop, timeout_ms);
    /* The tick timer itself counts as one live handle. */
    while (nf_loop_alive(loop) > 1 && h_runner_step(&r)) {
    }
    h_runner_end(&r);
    return nf_loop_alive(loop) == 0;
}

void h_print_backend(nf_loop_t *loop)
{
    static char last[256];
    if (strncmp(last, nf_loop_features(loop), sizeof last - 1) != 0) {
        snprintf(last, sizeof last, "%s", nf_loop_features(loop));
        print_message("[ info     ] backend=%s features=\"%s\"\n", nf_loop_backend_name(loop), nf_loop_features(loop));
    }
}

/* ---- skips and the kernel's own answers ---------------------------------- */

static int h_skips;

static int h_backend_is_epoll(void)
{
    const char *want = getenv("NF_BACKEND");
    return want && strcmp(want, "epoll") == 0;
}

void h_skip(const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (h_backend_is_epoll())
        fail_msg("cannot run on epoll, where nothing may be skipped: %s", why);
    h_skips++;
    print_message("[ NF-SKIP  ] %s\n", why);
    skip();
    abort(); /* skip() longjmps out of the test */
}

void h_group_begin(void)
{
    const char *only = getenv("NF_TEST_FILTER");
    if (only)
        cmocka_set_test_filter(only);
}

int h_group_result(int failures)
{
    if (failures != 0)
        return failures;
    if (h_var.fixed_expected && h_var.fixed_peak == 0) {
        print_error(
            "[  FAILED  ] NF_FIXED_FILES is set and the kernel has fixed files, yet no connection used a slot\n");
        return 1;
    }
    if (h_var.zc_expected && h_var.zc_sends == 0) {
        print_error("[  FAILED  ] NF_ZC_SEND_MIN is set and the kernel has IORING_OP_SEND_ZC, yet no zero-copy send "
                    "completed\n");
        return 1;
    }
    return h_skips ? 77 : 0;
}

#if NF_HAVE_URING
/* Can this process create an io_uring at all? Asked of the kernel through
 * liburing, so the answer does not depend on the library under test. */
int h_kernel_has_uring(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) != 0)
        return 0;
    io_uring_queue_exit(&ring);
    return 1;
}

int h_kernel_has_fixed_files(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) != 0)
        return 0;
    int ok = io_uring_register_files_sparse(&ring, 8) == 0;
    io_uring_queue_exit(&ring);
    return ok;
}

/* A provided-buffer ring and a multishot receive on it, tried for real on a
 * socket pair: the receive must deliver the bytes and stay armed (F_MORE). */
int h_kernel_has_multishot_recv(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) != 0)
        return 0;
    enum { NBUF = 8, BUFSZ = 64, BGID = 7 };
    static char bufs[NBUF][BUFSZ];
    int sv[2] = {-1, -1}, ok = 0;
    struct io_uring_buf_ring *br = NULL;
    if (posix_memalign((void **)&br, (size_t)sysconf(_SC_PAGESIZE), NBUF * sizeof(struct io_uring_buf)) != 0)
        goto out;
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NBUF, .bgid = BGID};
    if (io_uring_register_buf_ring(&ring, &reg, 0) != 0)
        goto out;
    for (int i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(br, bufs[i], BUFSZ, (unsigned short)i, io_uring_buf_ring_mask(NBUF), i);
    io_uring_buf_ring_advance(br, NBUF);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        goto out;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    if (io_uring_submit(&ring) != 1 || write(sv[1], "probe", 5) != 5)
        goto out;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = 2};
    if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0) {
        ok = cqe->res == 5 && (cqe->flags & IORING_CQE_F_MORE) && (cqe->flags & IORING_CQE_F_BUFFER);
        io_uring_cqe_seen(&ring, cqe);
    }
out:
    if (sv[0] >= 0) {
        close(sv[0]);
        close(sv[1]);
    }
    io_uring_queue_exit(&ring); /* cancels the armed receive */
    free(br);
    return ok;
}

int h_kernel_has_send_zc(void)
{
    struct io_uring_probe *probe = io_uring_get_probe();
    if (probe == NULL)
        return 0;
    int ok = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    io_uring_free_probe(probe);
    return ok;
}
#else
/* A library built without io_uring (NF_WITH_URING=OFF) uses none of the
 * kernel's io_uring features, whatever the kernel has: none is required. */
int h_kernel_has_uring(void) { return 0; }
int h_kernel_has_fixed_files(void) { return 0; }
int h_kernel_has_multishot_recv(void) { return 0; }
int h_kernel_has_send_zc(void) { return 0; }
#endif

void h_skip_if_uring_refused(int rc)
{
    const char *want = getenv("NF_BACKEND");
    if (rc == NF_EBACKEND && want && strcmp(want, "uring") == 0 && !h_kernel_has_uring())
        h_skip("the kernel refuses io_uring_setup here (sysctl or seccomp)");
}

/* NF_FIXED_FILES / NF_ZC_SEND_MIN reach every io_uring loop whose config
 * leaves the setting at 0: when the kernel has the feature, it must be on. */
static void h_check_env_features(nf_loop_t *loop, const nf_loop_config_t *cfg)
{
    const char *feat = nf_loop_features(loop);
    char want[64];
    const char *ff = getenv("NF_FIXED_FILES");
    if (ff && (!cfg || cfg->fixed_files == 0) && h_kernel_has_fixed_files()) {
        snprintf(want, sizeof want, "files=fixed:%lu ", strtoul(ff, NULL, 0));
        if (!strstr(feat, want))
            fail_msg("NF_FIXED_FILES=%s and the kernel has fixed files, but the loop reports \"%s\"", ff, feat);
        h_var.fixed_expected = 1;
    }
    const char *zc = getenv("NF_ZC_SEND_MIN");
    if (zc && (!cfg || cfg->zc_send_min == 0) && h_kernel_has_send_zc()) {
        snprintf(want, sizeof want, "send_zc=on>=%lu", strtoul(zc, NULL, 0));
        if (!strstr(feat, want))
            fail_msg("NF_ZC_SEND_MIN=%s and the kernel has IORING_OP_SEND_ZC, but the loop reports \"%s\"", zc, feat);
        h_var.zc_expected = 1;
    }
}

nf_loop_t *h_loop_new_cfg(const nf_loop_config_t *cfg)
{
    nf_loop_t *loop = NULL;
    int rc = nf_loop_new(&loop, cfg);
    h_skip_if_uring_refused(rc);
    const char *want = getenv("NF_BACKEND");
    if (rc != 0 || loop == NULL)
        fail_msg("nf_loop_new = %d (%s)", rc, nf_err_name(rc));
    const char *name = nf_loop_backend_name(loop);
    if (want && strcmp(want, "uring") == 0 && strcmp(name, "io_uring") != 0)
        fail_msg("NF_BACKEND=uring but the loop runs %s", name);
    if (want && strcmp(want, "epoll") == 0 && strcmp(name, "epoll") != 0)
        fail_msg("NF_BACKEND=epoll but the loop runs %s", name);
    /* NF_MODE=poll|event (ctest's NAME.BACKEND.MODE variants) must reach
     * every loop left at the default mode. */
    const char *mode = getenv("NF_MODE");
    if (mode && (!cfg || cfg->mode == NF_MODE_BLOCK)) {
        int m = strcmp(mode, "poll") == 0 ? NF_MODE_POLL : strcmp(mode, "event") == 0 ? NF_MODE_EVENT : NF_MODE_BLOCK;
        if (nf_loop_mode(loop) != m)
            fail_msg("NF_MODE=%s but the loop runs mode %d", mode, nf_loop_mode(loop));
    }
    if (strcmp(name, "io_uring") == 0)
        h_check_env_features(loop, cfg);
    h_print_backend(loop);
    return loop;
}

nf_loop_t *h_loop_new(void) { return h_loop_new_cfg(NULL); }

void h_loop_finish(nf_loop_t *loop, unsigned timeout_ms)
{
    if (!h_run_until_idle(loop, timeout_ms))
        fail_msg("loop still has %u live handles after %u ms", nf_loop_alive(loop), timeout_ms);
    h_var.zc_sends += h_stats(loop).zc_sends;
    int rc = nf_loop_free(loop);
    if (rc != 0)
        fail_msg("nf_loop_free = %d (%s)", rc, nf_err_name(rc));
}

void h_listener_finish(nf_loop_t *loop, nf_listener_t *l, unsigned timeout_ms)
{
    nf_listener_close(l, NULL);
    h_loop_finish(loop, timeout_ms);
}

nf_loop_stats_t h_stats(nf_loop_t *loop)
{
    nf_loop_stats_t s;
    memset(&s, 0xab, sizeof s); /* make fields the library forgot to fill visible */
    nf_loop_stats(loop, &s);
    return s;
}

/* ---- listeners / connectors -------------------------------------------- */

uint16_t h_listen_cfg(nf_loop_t *loop, nf_listen_config_t *cfg, nf_listener_t **out)
{
    nf_listener_t *l = NULL;
    int rc = nf_listen(loop, cfg, &l);
    if (rc != 0 || l == NULL)
        fail_msg("nf_listen(%s) = %d (%s)", cfg->host ? cfg->host : "NULL", rc, nf_err_name(rc));
    nf_addr_t a;
    memset(&a, 0, sizeof a);
    rc = nf_listener_addr(l, &a);
    if (rc != 0)
        fail_msg("nf_listener_addr = %d (%s)", rc, nf_err_name(rc));
    uint16_t port = nf_addr_port(&a);
    if (port == 0)
        fail_msg("nf_listener_addr returned port 0");
    *out = l;
    return port;
}

nf_listen_config_t h_listen_config(const nf_conn_handler_t *h, void *data)
{
    nf_listen_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.handler = h;
    cfg.data = data;
    return cfg;
}

nf_connect_config_t h_connect_config(const char *host, uint16_t port, const nf_conn_handler_t *h, void *data)
{
    nf_connect_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.host = host;
    cfg.port = port;
    cfg.handler = h;
    cfg.data = data;
    return cfg;
}

uint16_t h_listen(nf_loop_t *loop, const char *host, const nf_conn_handler_t *h, void *data, nf_listener_t **out)
{
    nf_listen_config_t cfg = h_listen_config(h, data);
    cfg.host = host;
    cfg.backlog = 1024;
    return h_listen_cfg(loop, &cfg, out);
}

uint16_t h_listen_filters(nf_loop_t *loop, const nf_conn_handler_t *h, const nf_filter_spec_t *filters, unsigned n,
                          nf_listener_t **out)
{
    nf_listen_config_t cfg = h_listen_config(h, NULL);
    cfg.filters = filters;
    cfg.nfilters = n;
    return h_listen_cfg(loop, &cfg, out);
}

nf_conn_t *h_connect(nf_loop_t *loop, const char *host, uint16_t port, const nf_conn_handler_t *h, void *data)
{
    nf_connect_config_t cfg = h_connect_config(host, port, h, data);
    nf_conn_t *c = NULL;
    int rc = nf_connect(loop, &cfg, &c);
    if (rc != 0 || c == NULL)
        fail_msg("nf_connect(%s:%u) = %d (%s)", host, port, rc, nf_err_name(rc));
    return c;
}

/* ---- echo server ------------------------------------------------------- */

h_echo_state_t h_echo;

void h_ignore_read(nf_conn_t *c, const char *data, size_t len) { (void)c, (void)data, (void)len; }

void h_echo_reset(void) { memset(&h_echo, 0, sizeof h_echo); }

static void h_echo_on_open(nf_conn_t *c)
{
    (void)c;
    h_echo.opened++;
}

static void h_echo_on_read(nf_conn_t *c, const char *data, size_t len)
{
    h_echo.reads++;
    int rc = nf_conn_write(c, data, len);
    if (rc != 0)
        h_echo.write_errors++;
    else
        h_echo.bytes += len;
}

static void h_echo_on_close(nf_conn_t *c, int reason)
{
    (void)c;
    h_echo.closed++;
    h_echo.last_reason = reason;
    if (reason == NF_EOF)
        h_echo.close_eof++;
    else if (reason == -ECONNRESET)
        h_echo.close_reset++;
    else if (reason == NF_CLOSE_LOCAL)
        h_echo.close_local++;
    else if (reason == NF_ELIMIT)
        h_echo.close_limit++;
    else
        h_echo.close_other++;
}

const nf_conn_handler_t h_echo_handler = {
    .on_open = h_echo_on_open,
    .on_read = h_echo_on_read,
    .on_close = h_echo_on_close,
};

/* ---- patterns ---------------------------------------------------------- */

void h_pattern_fill(void *buf, size_t len, uint64_t off, uint32_t seed)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = h_pattern_byte(off + i, seed);
}

size_t h_pattern_check(const void *buf, size_t len, uint64_t off, uint32_t seed)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != h_pattern_byte(off + i, seed))
            return i;
    return SIZE_MAX;
}

/* ---- threads ------------------------------------------------------------ */

void h_result_fail(h_result_t *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->failed = 1;
}

int h_peer_connect(h_result_t *res, const char *ip, uint16_t port)
{
    int fd = h_tcp_connect(ip, port);
    if (fd < 0) {
        h_result_fail(res, "connect [%s]:%u: %s", ip, port, strerror(-fd));
        return -1;
    }
    return fd;
}

void *h_peer_done(h_result_t *res)
{
    atomic_store(&res->done, 1);
    return NULL;
}

pthread_t h_thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    if (rc != 0)
        fail_msg("pthread_create: %s", strerror(rc));
    return t;
}

void h_thread_join(pthread_t t, unsigned timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = pthread_timedjoin_np(t, NULL, &ts);
    if (rc != 0)
        fail_msg("peer thread did not finish within %u ms (%s)", timeout_ms, strerror(rc));
}

/* ---- plain sockets ------------------------------------------------------ */

static int h_make_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof *in4;
        return AF_INET;
    }
    if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof *in6;
        return AF_INET6;
    }
    return -1;
}

int h_tcp_listen(int backlog, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, backlog), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

int h_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* A TCP socket (with `flags` added to its type) for ip's family, and ip:port
 * in *ss; the fd or -errno (-EINVAL: ip is not a numeric address). */
static int h_tcp_socket(const char *ip, uint16_t port, int flags, struct sockaddr_storage *ss, socklen_t *len)
{
    int fam = h_make_addr(ip, port, ss, len);
    if (fam < 0)
        return -EINVAL;
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    return fd < 0 ? -errno : fd;
}

int h_tcp_connect(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = h_tcp_socket(ip, port, 0, &ss, &len);
    if (fd < 0)
        return fd;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&ss, len);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int h_tcp_connect_nb(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = h_tcp_socket(ip, port, SOCK_NONBLOCK, &ss, &len);
    if (fd < 0)
        return fd;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

void h_close_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static int h_wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = h_now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

int h_send_all(int fd, const void *buf, size_t len, unsigned timeout_ms)
{
    const char *p = buf;
    uint64_t deadline = h_now_ms() + timeout_ms;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = h_wait_fd(fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* After a non-blocking recv on fd failed: 0 to try again (EINTR, or data
 * may be there now), else -errno (-ETIMEDOUT once deadline has passed). */
static int h_recv_again(int fd, uint64_t deadline)
{
    if (errno == EINTR)
        return 0;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -errno;
    return h_wait_fd(fd, POLLIN, deadline);
}

ssize_t h_recv_full(int fd, void *buf, size_t len, unsigned timeout_ms)
{
    char *p = buf;
    size_t got = 0;
    uint64_t deadline = h_now_ms() + timeout_ms;
    while (got < len) {
        ssize_t n = recv(fd, p + got, len - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            return (ssize_t)got;
        int rc = h_recv_again(fd, deadline);
        if (rc < 0)
            return rc;
    }
    return (ssize_t)got;
}

int h_recv_eof(int fd, unsigned timeout_ms)
{
    uint64_t deadline = h_now_ms() + timeout_ms;
    char buf[4096];
    int extra = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0)
            return extra;
        if (n > 0) {
            extra += (int)n;
            continue;
        }
        int rc = h_recv_again(fd, deadline);
        if (rc < 0)
            return rc;
    }
}

int h_echo_roundtrip(int fd, size_t size, uint32_t seed, unsigned timeout_ms, char *err, size_t errlen)
{
    enum { CHUNK = 256 * 1024 };
    char *out = malloc(CHUNK);
    char *in = malloc(CHUNK);
    if (!out || !in) {
        free(out);
        free(in);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t sent = 0, got = 0;
    size_t out_off = 0, out_len = 0; /* out holds pattern bytes [out_off, out_off+out_len) */
    uint64_t deadline = h_now_ms() + timeout_ms;
    int ret = -1;
    while (got < size) {
        uint64_t now = h_now_ms();
        if (now >= deadline) {
            snprintf(err, errlen, "size %zu: timeout after %u ms (sent %zu, echoed %zu)", size, timeout_ms, sent, got);
            goto out;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < size ? POLLOUT : 0)};
        int pr = poll(&p, 1, (int)(deadline - now));
        if (pr < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            goto out;
        }
        if (pr <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, in, CHUNK, MSG_DONTWAIT);
            if (n == 0) {
                snprintf(err, errlen, "size %zu: EOF after %zu echoed bytes", size, got);
                goto out;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(err, errlen, "size %zu: recv after %zu bytes: %s", size, got, strerror(errno));
                goto out;
            }
            if (n > 0) {
                if (got + (size_t)n > sent) {
                    snprintf(err, errlen, "size %zu: got %zu echo bytes but sent only %zu", size, got + (size_t)n,
                             sent);
                    goto out;
                }
                size_t bad = h_pattern_check(in, (size_t)n, got, seed);
                if (bad != SIZE_MAX) {
                    snprintf(err, errlen, "size %zu: echo byte %zu is 0x%02x, expected 0x%02x", size, got + bad,
                             (unsigned char)in[bad], h_pattern_byte(got + bad, seed));
                    goto out;
                }
                got += (size_t)n;
            }
        }
        if (sent < size && (p.revents & POLLOUT)) {
            if (sent >= out_off + out_len) {
                out_off = sent;
                out_len = size - sent < CHUNK ? size - sent : CHUNK;
                h_pattern_fill(out, out_len, out_off, seed);
            }
            size_t avail = out_off + out_len - sent;
            ssize_t n = send(fd, out + (sent - out_off), avail, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(err, errlen, "size %zu: send after %zu bytes: %s", size, sent, strerror(errno));
                goto out;
            }
            if (n > 0)
                sent += (size_t)n;
        }
    }
    ret = 0;
out:
    free(out);
    free(in);
    return ret;
}

/* ---- WebSocket servers --------------------------------------------------- */

uint16_t h_ws_listen(nf_loop_t *loop, const nf_ws_server_config_t *cfg, nf_ws_server_t **out)
{
    H_ASSERT_ERR(nf_ws_listen(loop, cfg, out), 0);
    nf_addr_t a;
    H_ASSERT_ERR(nf_ws_server_addr(*out, &a), 0);
    return nf_addr_port(&a);
}

static int h_ws_closed;
static void h_ws_on_closed(nf_ws_server_t *s) { (void)s, h_ws_closed = 1; }

void h_ws_server_stop(nf_loop_t *loop, nf_ws_server_t *s, unsigned code)
{
    h_ws_closed = 0;
    nf_ws_server_close(s, code, h_ws_on_closed);
    H_RUN_UNTIL(loop, h_ws_closed, 5000);
}

void h_ws_end_open(nf_ws_conn_t *ws)
{
    h_ws_end_t *e = nf_ws_conn_get_data(ws);
    e->opened++;
}

void h_ws_end_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen)
{
    (void)reason, (void)rlen;
    h_ws_end_t *e = nf_ws_conn_get_data(ws);
    e->closed++;
    e->code = code;
    e->error = nf_ws_conn_error(ws);
}

/* ---- an echo client thread ---------------------------------------------- */

void *h_echo_client_thread(void *arg)
{
    h_echo_client_t *cl = arg;
    int fd = h_peer_connect(&cl->res, cl->ip ? cl->ip : "127.0.0.1", cl->port);
    if (fd < 0)
        return h_peer_done(&cl->res);
    h_set_nonblock(fd, 1);
    size_t n = cl->sizes ? cl->nsizes : (size_t)cl->rounds;
    for (size_t i = 0; i < n; i++) {
        char err[256];
        size_t size = cl->sizes ? cl->sizes[i] : cl->size;
        if (h_echo_roundtrip(fd, size, cl->seed + (uint32_t)i, cl->timeout_ms ? cl->timeout_ms : 10000, err,
                             sizeof err) != 0) {
            h_result_fail(&cl->res, "%s", err);
            break;
        }
    }
    if (cl->ready)
        atomic_fetch_add(cl->ready, 1);
    uint64_t dl = h_now_ms() + 10000;
    while (cl->release && !atomic_load(cl->release) && h_now_ms() < dl)
        h_sleep_ms(1);
    close(fd);
    return h_peer_done(&cl->res);
}

int h_echo_clients_done(h_echo_client_t *cl, int n)
{
    for (int i = 0; i < n; i++)
        if (!atomic_load(&cl[i].res.done))
            return 0;
    return 1;
}

/* ---- process resources ------------------------------------------------- */

int h_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        fail_msg("opendir(/proc/self/fd): %s", strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

unsigned long h_raise_nofile(unsigned long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        fail_msg("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fail_msg("setrlimit(RLIMIT_NOFILE, %lu): %s", want, strerror(errno));
    }
    return rl.rlim_cur == RLIM_INFINITY ? want : (unsigned long)rl.rlim_cur;
}

uint16_t h_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail_msg("socket: %s", strerror(errno));
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("bind/getsockname: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

void h_fixture_open(h_fixture_t *f, nf_listen_config_t *cfg)
{
    f->loop = h_loop_new();
    f->port = h_listen_cfg(f->loop, cfg, &f->l);
    f->fd = h_tcp_connect("127.0.0.1", f->port);
    if (f->fd < 0)
        fail_msg("peer connect to port %u: %s", f->port, strerror(-f->fd));
}

void h_fixture_start(h_fixture_t *f, const nf_conn_handler_t *h, void *data)
{
    nf_listen_config_t cfg = h_listen_config(h, data);
    cfg.backlog = 1024;
    h_fixture_open(f, &cfg);
}

void h_fixture_finish(h_fixture_t *f, unsigned timeout_ms) { h_listener_finish(f->loop, f->l, timeout_ms); }

void h_fixture_end(h_fixture_t *f) { h_fixture_finish(f, 3000); }

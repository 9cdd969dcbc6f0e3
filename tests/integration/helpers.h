/* netframe integration tests — shared helpers.
 *
 * Everything here uses the public API only (include/netframe/netframe.h) plus
 * plain POSIX sockets for the peers. Loops are always driven with NF_RUN_ONCE
 * under a wall-clock deadline and a short ticking timer, so a test that waits
 * for something that never happens fails instead of hanging.
 *
 * cmocka assertions may only be used on the test's main thread; peer threads
 * report through h_result_t and the main thread asserts after joining. */
#ifndef NF_IT_HELPERS_H
#define NF_IT_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include <netframe/netframe.h>
#include <netframe/ws.h>

/* ---- assertions -------------------------------------------------------- */

/* Compares two netframe result codes and names both on failure. */
#define H_ASSERT_ERR(actual, expected)                                                                                 \
    do {                                                                                                               \
        int a_ = (actual), e_ = (expected);                                                                            \
        if (a_ != e_)                                                                                                  \
            fail_msg("%s = %d (%s), expected %d (%s)", #actual, a_, nf_err_name(a_), e_, nf_err_name(e_));             \
    } while (0)

/* Fails with the peer thread's message if it reported one. */
#define H_ASSERT_PEER_OK(res)                                                                                          \
    do {                                                                                                               \
        if ((res)->failed)                                                                                             \
            fail_msg("peer thread failed: %s", (res)->msg);                                                            \
    } while (0)

/* ---- skips ------------------------------------------------------------- */

/* Skips the current test, printing "[ NF-SKIP  ] reason" (the line
 * scripts/test_summary.sh collects). Only io_uring tests may skip, for what
 * the machine lacks (the kernel refuses io_uring, no IPv6 loopback...): under
 * NF_BACKEND=epoll the same call fails the test, since an epoll test that
 * cannot run is a broken set-up. */
void h_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* cmocka exits 0 when tests were skipped; the group's result goes through
 * h_group_result instead: failures as they are, else 77 (ctest's
 * SKIP_RETURN_CODE) when any test of the process called h_skip, else 0.
 * h_group_begin applies NF_TEST_FILTER (e.g. NF_TEST_FILTER=test_x: run
 * only the tests whose names match) to every integration test. */
void h_group_begin(void);
int h_group_result(int failures);
#undef cmocka_run_group_tests
#define cmocka_run_group_tests(group_tests, group_setup, group_teardown)                                               \
    (h_group_begin(),                                                                                                  \
     h_group_result(_cmocka_run_group_tests(#group_tests, group_tests, sizeof(group_tests) / sizeof((group_tests)[0]), \
                                            group_setup, group_teardown)))
#undef cmocka_run_group_tests_name
#define cmocka_run_group_tests_name(group_name, group_tests, group_setup, group_teardown)                              \
    (h_group_begin(),                                                                                                  \
     h_group_result(_cmocka_run_group_tests(group_name, group_tests, sizeof(group_tests) / sizeof((group_tests)[0]),   \
                                            group_setup, group_teardown)))
/* With NF_BACKEND=uring: skips (h_skip) when rc is NF_EBACKEND and the kernel
 * itself refuses io_uring_setup (asked without the library). Any other
 * NF_EBACKEND is the library's failure and is left to the caller to fail. */
void h_skip_if_uring_refused(int rc);
/* The kernel's own answers, independent of the library under test (liburing
 * on a probe ring): 1 when the kernel supports the feature, 0 when not. */
int h_kernel_has_uring(void);
int h_kernel_has_fixed_files(void);    /* a sparse registered file table */
int h_kernel_has_multishot_recv(void); /* a buffer ring and a multishot receive on it */
int h_kernel_has_send_zc(void);        /* IORING_OP_SEND_ZC */

/* ---- time -------------------------------------------------------------- */

uint64_t h_now_ms(void);
uint64_t h_now_ns(void);
void h_sleep_ms(unsigned ms);

/* ---- loop driving ------------------------------------------------------ */

#define H_TICK_MS 5

/* A deadline-bounded driver for NF_RUN_ONCE. While it is active a repeating
 * timer of H_TICK_MS keeps every NF_RUN_ONCE call short, so conditions that
 * change on other threads are seen promptly. */
typedef struct h_runner {
    nf_loop_t *loop;
    nf_timer_t tick;
    uint64_t deadline;
} h_runner_t;

void h_runner_begin(h_runner_t *r, nf_loop_t *loop, unsigned timeout_ms);
/* One NF_RUN_ONCE; returns 0 once the deadline has passed (nothing run). */
int h_runner_step(h_runner_t *r);
void h_runner_end(h_runner_t *r);

/* Runs the loop until cond (re-evaluated between iterations) is true or
 * timeout_ms passed; sets `ok` to whether cond became true. */
#define H_RUN_WAIT(ok, loop, cond, timeout_ms)                                                                         \
    do {                                                                                                               \
        h_runner_t hr_;                                                                                                \
        h_runner_begin(&hr_, (loop), (timeout_ms));                                                                    \
        while (!(cond) && h_runner_step(&hr_)) {                                                                       \
        }                                                                                                              \
        h_runner_end(&hr_);                                                                                            \
        (ok) = (cond) ? 1 : 0;                                                                                         \
    } while (0)

/* The same, failing the test with the condition's text on timeout. */
#define H_RUN_UNTIL(loop, cond, timeout_ms)                                                                            \
    do {                                                                                                               \
        int hok_;                                                                                                      \
        H_RUN_WAIT(hok_, loop, cond, timeout_ms);                                                                      \
        if (!hok_)                                                                                                     \
            fail_msg("timed out after %u ms waiting for: %s", (unsigned)(timeout_ms), #cond);                          \
    } while (0)

/* Runs the loop for about `ms` milliseconds, whatever happens. */
void h_run_for(nf_loop_t *loop, unsigned ms);

/* Runs until nf_loop_alive() == 0; returns 1 on success, 0 on timeout. */
int h_run_until_idle(nf_loop_t *loop, unsigned timeout_ms);

/* nf_loop_new(&loop, NULL) (backend from NF_BACKEND), asserting success.
 * With NF_BACKEND=uring on a kernel that refuses io_uring_setup (disabled by
 * sysctl or seccomp), the test is skipped instead. */
nf_loop_t *h_loop_new(void);
/* Same with a config; cfg->backend is left as given (AUTO follows NF_BACKEND). */
nf_loop_t *h_loop_new_cfg(const nf_loop_config_t *cfg);

/* Runs the loop out (asserts nf_loop_alive() reaches 0 within timeout_ms),
 * then asserts nf_loop_free() == 0. */
void h_loop_finish(nf_loop_t *loop, unsigned timeout_ms);

/* The usual end of a test with one listener: nf_listener_close(l, NULL),
 * then h_loop_finish(loop, timeout_ms). */
void h_listener_finish(nf_loop_t *loop, nf_listener_t *l, unsigned timeout_ms);

nf_loop_stats_t h_stats(nf_loop_t *loop);

/* ---- listeners --------------------------------------------------------- */

/* A zeroed config with handler h and data set (callers add the rest). */
nf_listen_config_t h_listen_config(const nf_conn_handler_t *h, void *data);
nf_connect_config_t h_connect_config(const char *host, uint16_t port, const nf_conn_handler_t *h, void *data);

/* nf_listen with *cfg (cfg->port should be 0); asserts success and returns
 * the kernel-chosen port through nf_listener_addr. */
uint16_t h_listen_cfg(nf_loop_t *loop, nf_listen_config_t *cfg, nf_listener_t **out);
/* Listens on 127.0.0.1 port 0 with handler h over the filter stack
 * filters[0..n) (filters[0] lowest); otherwise as h_listen_config. */
uint16_t h_listen_filters(nf_loop_t *loop, const nf_conn_handler_t *h, const nf_filter_spec_t *filters, unsigned n,
                          nf_listener_t **out);
/* Listens on host (NULL: 127.0.0.1) port 0 with handler h and data. */
uint16_t h_listen(nf_loop_t *loop, const char *host, const nf_conn_handler_t *h, void *data, nf_listener_t **out);

/* nf_connect to host:port with handler h and data; asserts nf_connect == 0. */
nf_conn_t *h_connect(nf_loop_t *loop, const char *host, uint16_t port, const nf_conn_handler_t *h, void *data);

/* ---- WebSocket servers --------------------------------------------------- */

/* nf_ws_listen with *cfg; asserts success and returns the port it got. */
uint16_t h_ws_listen(nf_loop_t *loop, const nf_ws_server_config_t *cfg, nf_ws_server_t **out);
/* nf_ws_server_close(s, code) and runs the loop until its callback ran. */
void h_ws_server_stop(nf_loop_t *loop, nf_ws_server_t *s, unsigned code);

/* How a WebSocket client's connection went: a client's state starts with
 * one (nf_ws_conn_get_data(ws) points at it), and its handler uses
 * h_ws_end_open / h_ws_end_close as on_open / on_close, or calls them. */
typedef struct h_ws_end {
    int opened, closed; /* on_open and on_close calls */
    unsigned code;      /* the close code on_close was given */
    int error;          /* nf_ws_conn_error at on_close */
} h_ws_end_t;

void h_ws_end_open(nf_ws_conn_t *ws);
void h_ws_end_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t rlen);

/* ---- a server and one plain peer ---------------------------------------- */

/* A new loop (h_loop_new), nf_listen with *cfg on 127.0.0.1 and port 0, and
 * a blocking plain peer connected to it. The loop has not run yet: the
 * connection is accepted by the caller's next run. */
typedef struct h_fixture {
    nf_loop_t *loop;
    nf_listener_t *l;
    uint16_t port;
    int fd;
} h_fixture_t;

void h_fixture_open(h_fixture_t *f, nf_listen_config_t *cfg);
/* The same with a plain listener as h_listen makes it: handler h, data,
 * backlog 1024, no filters. */
void h_fixture_start(h_fixture_t *f, const nf_conn_handler_t *h, void *data);
/* Closes the listener and runs the loop out (h_loop_finish). The peer's fd
 * is the caller's to close. */
void h_fixture_end(h_fixture_t *f);
/* The same with the caller's timeout for running the loop out. */
void h_fixture_finish(h_fixture_t *f, unsigned timeout_ms);

/* ---- a ready-made echo server (one per process, reset by h_echo_reset) -- */

typedef struct h_echo_state {
    int opened;       /* on_open calls */
    int closed;       /* on_close calls */
    int reads;        /* on_read calls */
    int write_errors; /* nf_conn_write returned non-zero */
    int close_eof;    /* reasons == NF_EOF */
    int close_reset;  /* reasons == -ECONNRESET */
    int close_local;  /* reasons == NF_CLOSE_LOCAL */
    int close_limit;  /* reasons == NF_ELIMIT */
    int close_other;  /* any other reason */
    int last_reason;
    uint64_t bytes; /* bytes echoed */
} h_echo_state_t;

extern h_echo_state_t h_echo;
/* An on_read that drops what it is given (for handlers that only count
 * opens and closes, or readers that must not matter). */
void h_ignore_read(nf_conn_t *c, const char *data, size_t len);
extern const nf_conn_handler_t h_echo_handler;
void h_echo_reset(void);

/* ---- patterned bytes --------------------------------------------------- */

/* A position-dependent byte stream: byte `off` of stream `seed`. Reordered,
 * repeated or lost bytes show up as mismatches. */
static inline unsigned char h_pattern_byte(uint64_t off, uint32_t seed)
{
    uint32_t x = (uint32_t)off * 2654435761u + seed * 40503u + (uint32_t)(off >> 32);
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return (unsigned char)(x >> 24);
}
void h_pattern_fill(void *buf, size_t len, uint64_t off, uint32_t seed);
/* Index of the first byte that differs from the pattern, or SIZE_MAX. */
size_t h_pattern_check(const void *buf, size_t len, uint64_t off, uint32_t seed);

/* ---- peer threads and plain sockets ------------------------------------- */

typedef struct h_result {
    atomic_int done;
    int failed;
    char msg[512];
} h_result_t;

/* Records the first failure of a peer thread (printf-style). */
void h_result_fail(h_result_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A peer thread's blocking connect to ip:port (h_tcp_connect): the fd, or
 * -1 after recording "connect [ip]:port: error" in res. */
int h_peer_connect(h_result_t *res, const char *ip, uint16_t port);
/* The last step of a peer thread: marks res done; returns NULL (the
 * thread's result). */
void *h_peer_done(h_result_t *res);

/* Starts a thread; asserts success (main thread only). */
pthread_t h_thread_start(void *(*fn)(void *), void *arg);
/* Joins with a deadline; fails the test if the thread is still running. */
void h_thread_join(pthread_t t, unsigned timeout_ms);

/* Blocking TCP connect to a numeric IPv4/IPv6 address. Returns the fd (with
 * 10 s SO_RCVTIMEO/SO_SNDTIMEO) or -errno. */
int h_tcp_connect(const char *ip, uint16_t port);
/* A plain listening socket on 127.0.0.1, a kernel-chosen port (returned
 * through *port), that nobody accepts from until the caller does; asserts. */
int h_tcp_listen(int backlog, uint16_t *port);
/* Non-blocking connect started; returns fd or -errno (EINPROGRESS is ok). */
int h_tcp_connect_nb(const char *ip, uint16_t port);
int h_set_nonblock(int fd, int on);
/* Abortive close: SO_LINGER {1, 0} then close (the peer gets a RST). */
void h_close_reset(int fd);

/* Sends all of buf (MSG_NOSIGNAL; polls on EAGAIN). 0 or -errno. */
int h_send_all(int fd, const void *buf, size_t len, unsigned timeout_ms);
/* Reads up to exactly len bytes. Returns the count read (< len on EOF), or
 * -errno (-ETIMEDOUT after timeout_ms). */
ssize_t h_recv_full(int fd, void *buf, size_t len, unsigned timeout_ms);
/* Waits until the peer's EOF or an error. Returns 0 on EOF, -errno on
 * error/timeout, or the number of unexpected bytes if data arrived first. */
int h_recv_eof(int fd, unsigned timeout_ms);
/* Sends `size` pattern bytes of stream `seed` while reading the echo back,
 * verifying every byte. 0 on success, -1 with a message in err. */
int h_echo_roundtrip(int fd, size_t size, uint32_t seed, unsigned timeout_ms, char *err, size_t errlen);

/* ---- an echo client thread (a plain socket) ----------------------------- */

/* Connects to ip:port, runs pattern round trips (h_echo_roundtrip: every
 * byte checked), optionally holds the connection until released, closes.
 * Round i uses stream seed + i. Failures go to res; res.done is set last. */
typedef struct h_echo_client {
    const char *ip; /* NULL: 127.0.0.1 */
    uint16_t port;
    const size_t *sizes; /* one round trip per entry... */
    size_t nsizes;
    size_t size; /* ...or, with sizes NULL, `rounds` round trips of size */
    int rounds;
    uint32_t seed;
    unsigned timeout_ms; /* per round trip; 0: 10 s */
    atomic_int *ready;   /* if set: incremented after the round trips */
    atomic_int *release; /* if set: the connection is held until non-zero (10 s at most) */
    h_result_t res;
} h_echo_client_t;

void *h_echo_client_thread(void *arg);
/* Whether all n clients have finished (res.done). */
int h_echo_clients_done(h_echo_client_t *cl, int n);

/* ---- process resources ------------------------------------------------- */

/* Number of open file descriptors (entries of /proc/self/fd). */
int h_count_fds(void);
/* Raises RLIMIT_NOFILE's soft limit to at least `want` (up to the hard
 * limit); returns the new soft limit. */
unsigned long h_raise_nofile(unsigned long want);
/* A loopback port that was free a moment ago: nothing listens there. */
uint16_t h_closed_port(void);

/* Prints "backend=... features=..." when they differ from the last print. */
void h_print_backend(nf_loop_t *loop);

#endif

/* slow_reader — what a slow consumer does to a sender's memory, with and
 * without netframe's flow-control filter.
 *
 *   slow_reader [--seconds S] [--rate BYTES_PER_S] [--total BYTES] [--backend uring|epoll]
 *
 * For each mode, a netframe server pushes --total bytes (default 1 GiB) in
 * 64 KiB writes to one client, a plain socket in a thread that reads
 * --rate bytes per second (default 1 MB/s) for --seconds (default 5):
 *
 *   none     no filter, the write-queue bound off (NF_WRITE_LIMIT_OFF):
 *            every write is queued at once (what a naive asynchronous
 *            server does)
 *   ceiling  no filter, netframe's default bound: the write that would
 *            take the queue past 64 MiB fails with NF_EWQFULL and the
 *            connection closes (issue 13)
 *   backpressure  flow filter; the producer stops when a write comes back
 *            NF_WRITE_HELD and resumes on on_drain
 *   drop     flow filter, policy drop-newest; the producer ignores the
 *            results and keeps writing every millisecond
 *
 * The server's RSS (VmRSS) is sampled every 50 ms. One table is printed:
 * peak RSS over the baseline, the transport queue's high-water mark, the
 * flow filter's held high-water mark, writes dropped and bytes delivered.
 * Each mode runs in a fresh child process so RSS does not carry over. */
#define _GNU_SOURCE
#include <netframe/netframe.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

enum mode { M_NONE, M_CEILING, M_BACKPRESSURE, M_DROP };
static const char *mode_name[] = {"none", "ceiling", "backpressure", "drop"};

static double seconds = 5;
static size_t rate = 1000000, total = (size_t)1 << 30;
static nf_backend_kind_t backend = NF_BACKEND_AUTO;

struct result {
    long rss_base_kb, rss_peak_kb;
    size_t queue_hwm, held_hwm, delivered;
    unsigned long long dropped, written;
    int reason; /* on_close's */
};

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the slow client: a plain socket in a thread ---------------------------- */

static int port;
static size_t client_read;

static void *client(void *arg)
{
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        exit(2);
    }
    static char buf[CHUNK];
    double start = now_s();
    while (now_s() - start < seconds) {
        /* 10 reads a second, each allowed rate/10 bytes */
        size_t want = rate / 10;
        while (want > 0) {
            ssize_t n = recv(fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
            if (n <= 0)
                goto out;
            want -= (size_t)n;
            client_read += (size_t)n;
        }
        usleep(100000);
    }
out:
    close(fd); /* mid-stream: the server sees the peer go away */
    return NULL;
}

/* ---- the server --------------------------------------------------------------- */

static enum mode mode;
static struct result res;
static nf_conn_t *conn;
static size_t produced;
static nf_timer_t sample, tick;
static char *payload;

static void produce(nf_conn_t *c)
{
    while (produced < total && !nf_conn_is_closing(c)) {
        int r = nf_conn_write(c, payload, CHUNK);
        res.written++;
        produced += CHUNK;
        if (r == NF_WRITE_DROPPED)
            res.dropped++;
        if (r < 0)
            return;
        if (nf_conn_queued(c) > res.queue_hwm)
            res.queue_hwm = nf_conn_queued(c);
        if (r == NF_WRITE_HELD && mode == M_BACKPRESSURE)
            return; /* wait for on_drain */
        if (mode == M_DROP)
            return; /* one write per millisecond tick */
    }
}

static void on_open(nf_conn_t *c)
{
    conn = c;
    produce(c);
}

static void on_read(nf_conn_t *c, const char *d, size_t n) { (void)c, (void)d, (void)n; }

static void on_drain(nf_conn_t *c)
{
    if (mode == M_BACKPRESSURE)
        produce(c);
}

static void on_close(nf_conn_t *c, int reason)
{
    res.reason = reason;
    nf_flow_stats_t fs;
    if (nf_flow_stats(c, &fs) == 0 && fs.held_bytes_hwm > res.held_hwm)
        res.held_hwm = fs.held_bytes_hwm;
    conn = NULL;
}

static void on_sample(nf_timer_t *t)
{
    long kb = rss_kb();
    if (kb > res.rss_peak_kb)
        res.rss_peak_kb = kb;
    if (conn) {
        size_t q = nf_conn_queued(conn);
        if (q > res.queue_hwm)
            res.queue_hwm = q;
        nf_flow_stats_t fs;
        if (nf_flow_stats(conn, &fs) == 0 && fs.held_bytes_hwm > res.held_hwm)
            res.held_hwm = fs.held_bytes_hwm;
    }
    (void)t;
}

static void on_tick(nf_timer_t *t)
{
    (void)t;
    if (conn && mode == M_DROP)
        produce(conn);
}

static void run_mode(enum mode m, int out_fd)
{
    mode = m;
    payload = malloc(CHUNK);
    memset(payload, 'x', CHUNK);
    nf_loop_config_t lc;
    nf_loop_config_init(&lc);
    lc.backend = backend;
    nf_loop_t *loop;
    if (nf_loop_new(&loop, &lc) != 0)
        exit(2);
    static const nf_conn_handler_t h = {
        .on_open = on_open, .on_read = on_read, .on_drain = on_drain, .on_close = on_close};
    static const nf_flow_config_t bp = {
        .max_inflight_bytes = 1 << 20, .max_held_bytes = 4 << 20, .policy = NF_FLOW_DROP_NEWEST};
    static const nf_filter_spec_t flow[] = {{&nf_flow_filter, &bp}};
    nf_listen_config_t cfg = {.port = 0, .handler = &h};
    if (m == M_NONE)
        cfg.write_high_water = cfg.write_max = NF_WRITE_LIMIT_OFF;
    if (m == M_BACKPRESSURE || m == M_DROP) {
        cfg.filters = flow;
        cfg.nfilters = 1;
    }
    nf_listener_t *l;
    if (nf_listen(loop, &cfg, &l) != 0)
        exit(2);
    nf_addr_t a;
    nf_listener_addr(l, &a);
    port = nf_addr_port(&a);
    res.rss_base_kb = res.rss_peak_kb = rss_kb();

    nf_timer_init(loop, &sample);
    nf_timer_start(&sample, on_sample, 50, 50);
    nf_timer_init(loop, &tick);
    nf_timer_start(&tick, on_tick, 1, 1);
    pthread_t th;
    pthread_create(&th, NULL, client, NULL);
    double start = now_s();
    while (now_s() - start < seconds + 1.0)
        nf_loop_run(loop, NF_RUN_ONCE);
    pthread_join(th, NULL);
    on_sample(&sample);
    if (conn)
        nf_conn_close(conn);
    nf_listener_close(l, NULL);
    nf_timer_stop(&sample);
    nf_timer_stop(&tick);
    while (nf_loop_alive(loop))
        nf_loop_run(loop, NF_RUN_ONCE);
    nf_loop_free(loop);
    res.delivered = client_read;
    if (write(out_fd, &res, sizeof(res)) != sizeof(res))
        exit(2);
    exit(0);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate"))
            rate = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--total"))
            total = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--backend"))
            backend = !strcmp(argv[i + 1], "epoll") ? NF_BACKEND_EPOLL : NF_BACKEND_URING;
        else {
            fprintf(stderr, "usage: slow_reader [--seconds S] [--rate B/s] [--total BYTES] [--backend uring|epoll]\n");
            return 2;
        }
    }
    printf("slow reader: server pushes %zu MiB in 64 KiB writes, client reads %zu B/s for %.0f s\n", total >> 20, rate,
           seconds);
    printf("flow filter: max_inflight 1 MiB, max_held 4 MiB, policy drop-newest\n\n");
    printf("| mode | peak RSS over baseline | transport queue hwm | flow held hwm | writes | dropped | delivered | "
           "closed with |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---|\n");
    int fail = 0;
    for (int m = M_NONE; m <= M_DROP; m++) {
        int p[2];
        if (pipe(p) < 0)
            return 2;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            run_mode((enum mode)m, p[1]);
        }
        close(p[1]);
        struct result r;
        ssize_t n = read(p[0], &r, sizeof(r));
        close(p[0]);
        int st;
        waitpid(pid, &st, 0);
        if (n != sizeof(r)) {
            printf("| %s | (failed) | | | | | | |\n", mode_name[m]);
            fail = 1;
            continue;
        }
        printf("| %s | %.1f MiB | %.1f MiB | %.1f MiB | %llu | %llu | %.1f MiB | %s |\n", mode_name[m],
               (double)(r.rss_peak_kb - r.rss_base_kb) / 1024.0, (double)r.queue_hwm / 1048576.0,
               (double)r.held_hwm / 1048576.0, r.written, r.dropped, (double)r.delivered / 1048576.0,
               r.reason == 0 ? "-" : nf_err_name(r.reason));
        fflush(stdout);
    }
    return fail;
}

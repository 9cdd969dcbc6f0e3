/* echo_client — a closed-loop load generator for an echo server.
 *
 * Opens N connections with nf_connect. Each one writes SIZE patterned bytes,
 * waits for the whole echo (checking every byte), records the round-trip
 * time and starts over. After S seconds a timer closes every connection,
 * the loop runs out and the program prints one line:
 *
 *   connections=N size=B seconds=S messages=M rate=R msg/s p50=X us p99=Y us p999=Z us errors=E
 *
 * Exit status 0 iff errors == 0 and at least one message made the round trip.
 *
 *   echo_client [--host 127.0.0.1] [--port 7000] [--connections 10]
 *               [--size 64] [--seconds 5] [--backend uring|epoll|auto]
 *               [--tls] [--tls-ca FILE] [--tls-insecure] [--tls-name NAME]
 *               [--reconnect] [--tls-no-resume]
 *
 * --tls runs every connection over TLS (tls.h): verified against --tls-ca
 * (or the system store) with the name --tls-name (default localhost), or not
 * at all with --tls-insecure. --reconnect makes each connection do one
 * round trip, reset (so no TIME_WAIT is left on the client's ports) and
 * connect again: with --tls it measures
 * handshakes per second (resumed ones unless --tls-no-resume). The line
 * then also says handshakes=N hs_rate=R/s.
 *
 * Uses the public API only. */
#define _POSIX_C_SOURCE 200809L

#include <netframe/netframe.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct client client_t;

typedef struct app {
    nf_loop_t *loop;
    size_t size;
    unsigned nconns;
    client_t *clients;
    unsigned open; /* connections not yet closed */
    int stopping;  /* the run time is over */
    nf_timer_t stop_timer;
    uint64_t t_start_ns, t_stop_ns;
    uint64_t messages;
    uint64_t errors;
    uint64_t *lat_ns; /* one round-trip time per message */
    size_t lat_len, lat_cap;
    int verbose_errors;      /* how many errors are still worth a line on stderr */
    nf_connect_config_t cc;  /* how to connect (reconnects reuse it) */
    nf_filter_spec_t tls[1]; /* the TLS filter, when --tls */
    const char *tls_name;
    int reconnect;
    uint64_t handshakes, resumed;
} app_t;

struct client {
    app_t *app;
    unsigned id;
    nf_conn_t *conn;
    int closed;
    uint32_t seq;     /* message number on this connection */
    char *msg;        /* the message in flight, as sent */
    size_t got;       /* bytes of its echo received */
    uint64_t sent_ns; /* when it was written */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report_error(app_t *app, const client_t *cl, const char *what, int err)
{
    app->errors++;
    if (app->verbose_errors > 0) {
        app->verbose_errors--;
        if (err)
            fprintf(stderr, "echo_client: connection %u: %s: %s\n", cl->id, what, nf_strerror(err));
        else
            fprintf(stderr, "echo_client: connection %u: %s\n", cl->id, what);
    }
}

/* Message `seq` of connection `id`: a byte pattern that differs between
 * positions, messages and connections, so lost, repeated, reordered or
 * crossed bytes are caught. */
static void fill_message(char *p, size_t n, unsigned id, uint32_t seq)
{
    uint32_t x = (id + 1) * 2654435761u ^ (seq + 1) * 40503u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (char)(x >> 24);
    }
}

static int record_latency(app_t *app, uint64_t ns)
{
    if (app->lat_len == app->lat_cap) {
        size_t cap = app->lat_cap ? app->lat_cap * 2 : 65536;
        uint64_t *p = realloc(app->lat_ns, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        app->lat_ns = p;
        app->lat_cap = cap;
    }
    app->lat_ns[app->lat_len++] = ns;
    return 0;
}

static void send_next(client_t *cl)
{
    app_t *app = cl->app;
    fill_message(cl->msg, app->size, cl->id, cl->seq);
    cl->got = 0;
    cl->sent_ns = now_ns();
    int rc = nf_conn_write(cl->conn, cl->msg, app->size);
    if (rc != 0) {
        report_error(app, cl, "write", rc);
        nf_conn_close(cl->conn);
    }
}

static void on_open(nf_conn_t *c)
{
    client_t *cl = nf_conn_get_data(c);
    cl->app->handshakes++;
    if (nf_tls_conn_resumed(c))
        cl->app->resumed++;
    if (cl->app->stopping) {
        nf_conn_close(c);
        return;
    }
    send_next(cl);
}

static void on_read(nf_conn_t *c, const char *data, size_t len)
{
    client_t *cl = nf_conn_get_data(c);
    app_t *app = cl->app;
    if (nf_conn_is_closing(c))
        return;
    if (cl->got + len > app->size) {
        report_error(app, cl, "the server sent more bytes than were written", 0);
        nf_conn_close(c);
        return;
    }
    if (memcmp(data, cl->msg + cl->got, len) != 0) {
        report_error(app, cl, "echoed bytes differ from the bytes sent", 0);
        nf_conn_close(c);
        return;
    }
    cl->got += len;
    if (cl->got < app->size)
        return;
    /* One full round trip. */
    uint64_t t = now_ns();
    if (record_latency(app, t - cl->sent_ns) != 0) {
        report_error(app, cl, "recording latency", -ENOMEM);
        nf_conn_close(c);
        return;
    }
    app->messages++;
    cl->seq++;
    if (app->reconnect)
        nf_conn_abort(c); /* on_close connects again; a reset leaves no TIME_WAIT behind */
    else if (!app->stopping)
        send_next(cl);
}

static void on_close(nf_conn_t *c, int reason)
{
    client_t *cl = nf_conn_get_data(c);
    app_t *app = cl->app;
    cl->closed = 1;
    cl->conn = NULL;
    /* We close connections only at the end of the run or after an error we
     * already counted; any other reason (refused, reset, the server's EOF,
     * a connect timeout) is an error. */
    if (reason != NF_CLOSE_LOCAL) {
        const char *tls = nf_tls_conn_error(c);
        report_error(app, cl, tls ? tls : "connection closed", tls ? 0 : reason);
    } else if (app->reconnect && !app->stopping) {
        app->cc.data = cl;
        if (nf_connect(app->loop, &app->cc, &cl->conn) == 0) {
            cl->closed = 0;
            if (app->tls_name)
                nf_tls_set_server_name(cl->conn, app->tls_name);
            return;
        }
        cl->conn = NULL;
        report_error(app, cl, "nf_connect", -ENOMEM);
    }
    app->open--;
    if (app->open == 0 && !app->stopping) {
        /* Nothing left to measure: end the run now. */
        app->stopping = 1;
        app->t_stop_ns = now_ns();
        nf_timer_stop(&app->stop_timer);
    }
}

static const nf_conn_handler_t handler = {
    .on_open = on_open,
    .on_read = on_read,
    .on_close = on_close,
};

static void on_stop(nf_timer_t *t)
{
    app_t *app = t->data;
    app->stopping = 1;
    app->t_stop_ns = now_ns();
    for (unsigned i = 0; i < app->nconns; i++)
        if (app->clients[i].conn)
            nf_conn_close(app->clients[i].conn);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static double percentile_us(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t rank = (size_t)(p * (double)n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1000.0;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--host 127.0.0.1] [--port 7000] [--connections 10] [--size 64]\n"
            "          [--seconds 5] [--backend uring|epoll|auto]\n"
            "          [--tls] [--tls-ca FILE] [--tls-insecure] [--tls-name NAME] [--reconnect] [--tls-no-resume]\n",
            prog);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    uint64_t port = 7000, nconns = 10, size = 64, seconds = 5;
    nf_backend_kind_t backend = NF_BACKEND_AUTO;
    int use_tls = 0, insecure = 0, reconnect = 0, no_resume = 0;
    const char *tls_ca = NULL, *tls_name = "localhost";

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = NULL;
        const char *eq = strchr(opt, '=');
        size_t optlen = eq ? (size_t)(eq - opt) : strlen(opt);
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(argv[0]);
            return 0;
        }
        int *flag = strcmp(opt, "--tls") == 0             ? &use_tls
                    : strcmp(opt, "--tls-insecure") == 0  ? &insecure
                    : strcmp(opt, "--reconnect") == 0     ? &reconnect
                    : strcmp(opt, "--tls-no-resume") == 0 ? &no_resume
                                                          : NULL;
        if (flag) {
            *flag = 1;
            continue;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        if (!val) {
            fprintf(stderr, "echo_client: %s needs a value\n", opt);
            usage(argv[0]);
            return 2;
        }
#define IS(name) (optlen == strlen(name) && strncmp(opt, name, optlen) == 0)
        int bad = 0;
        if (IS("--host"))
            host = val;
        else if (IS("--port"))
            bad = parse_u64(val, 1, 65535, &port);
        else if (IS("--connections"))
            bad = parse_u64(val, 1, 1000000, &nconns);
        else if (IS("--size"))
            bad = parse_u64(val, 1, (uint64_t)1 << 30, &size);
        else if (IS("--tls-ca"))
            tls_ca = val;
        else if (IS("--tls-name"))
            tls_name = val;
        else if (IS("--seconds"))
            bad = parse_u64(val, 1, 86400, &seconds);
        else if (IS("--backend")) {
            if (strcmp(val, "uring") == 0)
                backend = NF_BACKEND_URING;
            else if (strcmp(val, "epoll") == 0)
                backend = NF_BACKEND_EPOLL;
            else if (strcmp(val, "auto") == 0)
                backend = NF_BACKEND_AUTO;
            else
                bad = 1;
        } else {
            fprintf(stderr, "echo_client: unknown option %.*s\n", (int)optlen, opt);
            usage(argv[0]);
            return 2;
        }
#undef IS
        if (bad) {
            fprintf(stderr, "echo_client: bad value for %.*s: %s\n", (int)optlen, opt, val);
            return 2;
        }
    }

    int rc;
    app_t app;
    memset(&app, 0, sizeof app);
    app.size = (size_t)size;
    app.nconns = (unsigned)nconns;
    app.verbose_errors = 10;
    app.reconnect = reconnect;
    nf_tls_ctx_t *tls = NULL;
    if (use_tls) {
        char why[256];
        nf_tls_config_t tc = {.ca_file = tls_ca, .insecure = insecure, .session_cache = no_resume ? -1 : 0};
        rc = nf_tls_ctx_new(&tls, &tc, why, sizeof why);
        if (rc != 0) {
            fprintf(stderr, "echo_client: TLS: %s\n", why);
            return 1;
        }
        app.tls[0].ops = &nf_tls_filter;
        app.tls[0].config = tls;
        app.tls_name = tls_name;
    }

    nf_loop_config_t cfg;
    nf_loop_config_init(&cfg);
    cfg.backend = backend;
    rc = nf_loop_new(&app.loop, &cfg);
    if (rc != 0) {
        fprintf(stderr, "echo_client: nf_loop_new: %s\n", nf_strerror(rc));
        return 1;
    }
    fprintf(stderr, "echo_client: %s, %s\n", nf_loop_backend_name(app.loop), nf_loop_features(app.loop));

    app.clients = calloc(app.nconns, sizeof *app.clients);
    if (!app.clients) {
        fprintf(stderr, "echo_client: out of memory\n");
        nf_loop_free(app.loop);
        return 1;
    }
    for (unsigned i = 0; i < app.nconns; i++) {
        client_t *cl = &app.clients[i];
        cl->app = &app;
        cl->id = i;
        cl->msg = malloc(app.size);
        if (!cl->msg) {
            report_error(&app, cl, "allocating the message", -ENOMEM);
            continue;
        }
        nf_connect_config_t *cc = &app.cc;
        memset(cc, 0, sizeof *cc);
        cc->host = host;
        cc->port = (uint16_t)port;
        cc->timeout_ms = 5000;
        cc->handler = &handler;
        cc->data = cl;
        if (tls) {
            cc->filters = app.tls;
            cc->nfilters = 1;
        }
        rc = nf_connect(app.loop, cc, &cl->conn);
        if (rc != 0) {
            cl->conn = NULL;
            report_error(&app, cl, "nf_connect", rc);
            continue;
        }
        if (tls)
            nf_tls_set_server_name(cl->conn, tls_name);
        app.open++;
    }

    nf_timer_init(app.loop, &app.stop_timer);
    app.stop_timer.data = &app;
    app.t_start_ns = now_ns();
    if (app.open > 0) {
        rc = nf_timer_start(&app.stop_timer, on_stop, seconds * 1000u, 0);
        if (rc != 0) {
            fprintf(stderr, "echo_client: nf_timer_start: %s\n", nf_strerror(rc));
            app.errors++;
            on_stop(&app.stop_timer);
        }
    } else {
        app.stopping = 1;
        app.t_stop_ns = app.t_start_ns;
    }

    /* Runs until every connection has closed and the timer is done. */
    rc = nf_loop_run(app.loop, NF_RUN_DEFAULT);
    if (rc < 0) {
        fprintf(stderr, "echo_client: nf_loop_run: %s\n", nf_strerror(rc));
        app.errors++;
    }
    while (nf_loop_alive(app.loop) > 0 && rc >= 0)
        rc = nf_loop_run(app.loop, NF_RUN_DEFAULT);
    rc = nf_loop_free(app.loop);
    if (rc != 0) {
        fprintf(stderr, "echo_client: nf_loop_free: %s\n", nf_strerror(rc));
        app.errors++;
    }

    if (app.t_stop_ns == 0)
        app.t_stop_ns = now_ns();
    double elapsed = (double)(app.t_stop_ns - app.t_start_ns) / 1e9;
    if (elapsed <= 0)
        elapsed = 1e-9;
    if (app.lat_len > 0)
        qsort(app.lat_ns, app.lat_len, sizeof *app.lat_ns, cmp_u64);
    printf("connections=%u size=%zu seconds=%" PRIu64 " messages=%" PRIu64
           " rate=%.0f msg/s p50=%.1f us p99=%.1f us p999=%.1f us errors=%" PRIu64 "\n",
           app.nconns, app.size, seconds, app.messages, (double)app.messages / elapsed,
           percentile_us(app.lat_ns, app.lat_len, 0.50), percentile_us(app.lat_ns, app.lat_len, 0.99),
           percentile_us(app.lat_ns, app.lat_len, 0.999), app.errors);
    if (tls || reconnect)
        printf("handshakes=%" PRIu64 " resumed=%" PRIu64 " hs_rate=%.0f/s\n", app.handshakes, app.resumed,
               (double)app.handshakes / elapsed);
    nf_tls_ctx_free(tls);

    for (unsigned i = 0; i < app.nconns; i++)
        free(app.clients[i].msg);
    free(app.clients);
    free(app.lat_ns);
    return (app.errors == 0 && app.messages > 0) ? 0 : 1;
}

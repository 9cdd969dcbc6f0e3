/* pubsub_room — the smallest fan-out server (docs/pubsub.md).
 *
 *   pubsub_room [--host 127.0.0.1] [--port 8080] [--backend uring|epoll|auto]
 *               [--threads N] [--deflate] [--forloop]
 *
 * A WebSocket client of path /NAME is subscribed to topic NAME; every text or
 * binary message it sends is published to NAME, the sender included, as is,
 * with no other frames. With --threads N the server runs N loops (one hub
 * each, joined in one group): a message reaches the room's clients on every
 * loop. Prints "listening on HOST:PORT"; SIGTERM or SIGINT stops it (exit 0).
 *
 * --deflate: permessage-deflate, with no context takeover on the server's
 * side, so that each message is compressed once for all the clients that
 * agreed to it (the others get it uncompressed).
 *
 * --forloop (one thread): the same room without the hub, for comparison:
 * each message is sent with nf_ws_send to every member, one by one (a copy
 * and a frame per member), as a program did before pub/sub. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netframe/netframe.h>
#include <netframe/pubsub.h>
#include <netframe/ws.h>

#define MAX_LOOPS 64

static nf_server_t *server;
static nf_pubsub_group_t *group;
static nf_pubsub_t *hubs[MAX_LOOPS];
static nf_ws_server_t *ws_servers[MAX_LOOPS];
static const char *host = "127.0.0.1";
static uint16_t port = 8080;
static int forloop, deflate;

/* --forloop: every open connection (one loop), its topic in its path. */
static nf_ws_conn_t **members;
static size_t nmembers, cap_members;

/* The topic of a connection: its path without the leading '/' and the query. */
static const char *topic_of(nf_ws_conn_t *ws, size_t *len)
{
    const char *p = nf_ws_conn_path(ws);
    size_t n = strcspn(p, "?");
    if (n > 1 && p[0] == '/') {
        p++;
        n--;
    }
    *len = n;
    return p;
}

static nf_pubsub_t *hub_of(nf_ws_conn_t *ws) { return nf_ws_server_get_data(nf_ws_conn_server(ws)); }

static void on_open(nf_ws_conn_t *ws)
{
    if (forloop) {
        if (nmembers == cap_members) {
            size_t n = cap_members ? cap_members * 2 : 64;
            nf_ws_conn_t **m = realloc(members, n * sizeof *m);
            if (!m) {
                nf_ws_close(ws, 1011, NULL, 0);
                return;
            }
            members = m;
            cap_members = n;
        }
        members[nmembers++] = ws;
        return;
    }
    size_t len;
    const char *t = topic_of(ws, &len);
    if (nf_pubsub_subscribe(hub_of(ws), ws, t, len) != 0)
        nf_ws_close(ws, 1011, NULL, 0);
}

static void on_message(nf_ws_conn_t *ws, unsigned opcode, const char *data, size_t len)
{
    size_t tlen;
    const char *t = topic_of(ws, &tlen);
    if (forloop) {
        for (size_t i = 0; i < nmembers; i++) {
            size_t ml;
            const char *mt = topic_of(members[i], &ml);
            if (ml == tlen && memcmp(mt, t, tlen) == 0)
                nf_ws_send(members[i], opcode, data, len);
        }
        return;
    }
    nf_pubsub_publish(hub_of(ws), t, tlen, opcode, data, len);
}

/* The hub releases the connection's topic by itself. */
static void on_close(nf_ws_conn_t *ws, unsigned code, const char *reason, size_t len)
{
    (void)code, (void)reason, (void)len;
    for (size_t i = 0; forloop && i < nmembers; i++)
        if (members[i] == ws) {
            members[i] = members[--nmembers];
            break;
        }
}

static const nf_ws_handler_t handler = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
static const nf_ws_route_t routes[] = {{.path = "*", .handler = &handler}};

static int loop_start(nf_server_t *s, nf_loop_t *loop, unsigned index)
{
    (void)s;
    nf_pubsub_config_t pc = {.group = group, .index = index};
    int err = nf_pubsub_new(loop, &pc, &hubs[index]);
    if (err)
        return err;
    nf_ws_server_config_t cfg = {0};
    cfg.listen.host = host;
    cfg.listen.port = port; /* loop 0 may have got it from the kernel */
    cfg.listen.reuseport = 1;
    cfg.routes = routes;
    cfg.nroutes = 1;
    cfg.data = hubs[index];
    cfg.opts.deflate = deflate;
    cfg.opts.pmd.server_no_context_takeover = deflate;
    err = nf_ws_listen(loop, &cfg, &ws_servers[index]);
    if (err)
        return err;
    nf_ws_server_set_data(ws_servers[index], hubs[index]);
    if (index == 0) {
        nf_addr_t a;
        nf_ws_server_addr(ws_servers[0], &a);
        port = nf_addr_port(&a);
    }
    return 0;
}

static void loop_stop(nf_server_t *s, nf_loop_t *loop, unsigned index)
{
    (void)s, (void)loop;
    nf_ws_server_close(ws_servers[index], 1001, NULL);
    nf_pubsub_free(hubs[index]);
    hubs[index] = NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    nf_server_stop(server); /* signal-safe */
}

static void usage(void)
{
    fprintf(stderr, "usage: pubsub_room [--host ADDR] [--port N] [--backend uring|epoll|auto] [--threads N] "
                    "[--deflate] [--forloop]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *backend = NULL;
    unsigned threads = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--forloop") == 0 || strcmp(argv[i], "--deflate") == 0) {
            *(argv[i][2] == 'f' ? &forloop : &deflate) = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--host") == 0)
            host = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            port = (uint16_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--backend") == 0)
            backend = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0)
            threads = (unsigned)atoi(argv[++i]);
        else
            usage();
    }
    if (threads < 1 || threads > MAX_LOOPS || (forloop && threads != 1))
        usage();
    nf_server_config_t cfg;
    nf_server_config_init(&cfg);
    cfg.threads = threads;
    if (backend && strcmp(backend, "uring") == 0)
        cfg.loop.backend = NF_BACKEND_URING;
    else if (backend && strcmp(backend, "epoll") == 0)
        cfg.loop.backend = NF_BACKEND_EPOLL;
    else if (backend && strcmp(backend, "auto") != 0)
        usage();
    cfg.listen.handler = NULL; /* the loops listen for WebSocket themselves */
    cfg.on_loop_start = loop_start;
    cfg.on_loop_stop = loop_stop;
    int err = nf_pubsub_group_new(threads, &group);
    if (!err)
        err = nf_server_start(&server, &cfg);
    if (err) {
        fprintf(stderr, "pubsub_room: %s\n", nf_strerror(err));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("listening on %s:%u\n", host, (unsigned)port);
    fflush(stdout);
    err = nf_server_wait(server);
    nf_server_free(server);
    nf_pubsub_group_free(group);
    free(members);
    if (err < 0) {
        fprintf(stderr, "pubsub_room: %s\n", nf_strerror(err));
        return 1;
    }
    return 0;
}

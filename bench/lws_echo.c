/* nf_lws_echo - a WebSocket echo server on libwebsockets (Debian
 * libwebsockets-dev), the reference peer of bench/ws.sh.
 *
 *   nf_lws_echo [--host 127.0.0.1] --port P [--deflate]
 *
 * Written the way libwebsockets asks: received fragments are joined into a
 * per-connection buffer (with LWS_PRE bytes of headroom) and the reply is
 * written from the WRITEABLE callback with one lws_write. Made for a
 * closed-loop client (one message in flight per connection, like
 * nf_ws_loadgen): reception is not paused while a reply waits (pausing it
 * with lws_rx_flow_control stalled permessage-deflate messages for seconds). Text stays text, binary stays binary.
 * UTF-8 of text messages is validated (LWS_SERVER_OPTION_VALIDATE_UTF8), as RFC 6455 requires and the other servers do.
 * --deflate enables libwebsockets' permessage-deflate extension, with its defaults except: the zlib level is 6 like
 * netframe's and ws' (bench/ws.sh compares equal work), and its inflate / deflate buffers are 64 KiB (rx_buf_size /
 * tx_buf_size 2^16) instead of 1 KiB, without which a 16 KiB message took ~8x longer.
 *
 * Prints "listening on HOST:PORT backend=libwebsockets-VERSION"; SIGINT or
 * SIGTERM ends it (exit 0). */
#define _POSIX_C_SOURCE 200809L
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pss {
    unsigned char *buf; /* LWS_PRE headroom, then the message */
    size_t len, cap;
    int binary, ready;
};

static volatile sig_atomic_t interrupted;

static int grow(struct pss *p, size_t add)
{
    if (LWS_PRE + p->len + add <= p->cap)
        return 0;
    size_t cap = p->cap ? p->cap : 4096;
    while (cap < LWS_PRE + p->len + add)
        cap *= 2;
    unsigned char *b = realloc(p->buf, cap);
    if (!b)
        return -1;
    p->buf = b;
    p->cap = cap;
    return 0;
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(p, 0, sizeof *p);
        /* zlib level 6 as netframe's and ws' defaults, 64 KiB buffers (see
         * the top); no-ops when permessage-deflate was not agreed */
        lws_set_extension_option(wsi, "permessage-deflate", "compression_level", "6");
        lws_set_extension_option(wsi, "permessage-deflate", "rx_buf_size", "16");
        lws_set_extension_option(wsi, "permessage-deflate", "tx_buf_size", "16");
        break;
    case LWS_CALLBACK_RECEIVE:
        if (lws_is_first_fragment(wsi)) {
            p->len = 0;
            p->binary = lws_frame_is_binary(wsi);
        }
        if (grow(p, len))
            return -1;
        memcpy(p->buf + LWS_PRE + p->len, in, len);
        p->len += len;
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            p->ready = 1;
            lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!p->ready)
            break;
        if (grow(p, 0))
            return -1;
        if (lws_write(wsi, p->buf + LWS_PRE, p->len, p->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)p->len)
            return -1;
        p->ready = 0;
        p->len = 0;
        break;
    case LWS_CALLBACK_CLOSED:
        free(p->buf);
        p->buf = NULL;
        p->cap = p->len = 0;
        break;
    default: break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"echo", cb, sizeof(struct pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_extension exts[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate, "permessage-deflate; client_no_context_takeover"},
    {NULL, NULL, NULL},
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0, deflate = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--deflate"))
            deflate = 1;
        else if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: nf_lws_echo [--host H] --port P [--deflate]\n");
            return 2;
        }
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    if (deflate)
        info.extensions = exts;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "nf_lws_echo: lws_create_context failed\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct lws_vhost *vh = lws_get_vhost_by_name(ctx, "default");
    printf("listening on %s:%d backend=libwebsockets-%s\n", host, vh ? lws_get_vhost_listen_port(vh) : port,
           lws_get_library_version());
    fflush(stdout);
    while (!interrupted)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_context_destroy(ctx);
    return 0;
}

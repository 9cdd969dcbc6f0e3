/* netframe — socket options, written once: setting an int, buffer sizes,
 * and the one place a connection's socket gets TCP_NODELAY, SO_KEEPALIVE and
 * SO_OOBINLINE. */
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tcp_private.h"

/* ---- socket options --------------------------------------------------------- */

int nf__sock_set_int(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

int nf__sock_buffers(int fd, int rcvbuf, int sndbuf)
{
    if (rcvbuf > 0 && nf__sock_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf) != 0 &&
        nf__sock_set_int(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf) != 0)
        return -errno;
    if (sndbuf > 0 && nf__sock_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, sndbuf) != 0 &&
        nf__sock_set_int(fd, SOL_SOCKET, SO_SNDBUF, sndbuf) != 0)
        return -errno;
    return 0;
}

int nf__sock_nodelay(int fd, int on) { return nf__sock_set_int(fd, IPPROTO_TCP, TCP_NODELAY, on); }

int nf__sock_keepalive(int fd, int on, int idle_s)
{
    int err = nf__sock_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, on);
    if (!err && on && idle_s > 0)
        err = nf__sock_set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s);
    return err;
}

/* The one place a connection's socket gets its configured options: every
 * accepted socket, and every socket a connect creates (numeric host or
 * resolved name, first address or a later one). nodelay: 0 on, -1 off;
 * keepalive_s > 0: SO_KEEPALIVE with that idle time. The connection is
 * flagged inline only if SO_OOBINLINE was really set. */
void nf__conn_sock_opts(nf_conn_t *c, int nodelay, int keepalive_s, bool oob_inline)
{
    if (oob_inline && nf__sock_set_int(c->fd, SOL_SOCKET, SO_OOBINLINE, 1) == 0)
        c->flags |= NF__C_OOBINLINE;
    nf__sock_opts(c->fd, nodelay, keepalive_s);
}

void nf__sock_opts(int fd, int nodelay, int keepalive_s)
{
    if (nodelay >= 0)
        nf__sock_nodelay(fd, 1);
    if (keepalive_s > 0)
        nf__sock_keepalive(fd, 1, keepalive_s);
}

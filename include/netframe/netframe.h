/* netframe — a completion-based network library for Linux (io_uring, epoll).
 * Include this one header. */
#ifndef NETFRAME_NETFRAME_H
#define NETFRAME_NETFRAME_H

#define NETFRAME_VERSION_MAJOR 0
#define NETFRAME_VERSION_MINOR 1
#define NETFRAME_VERSION_PATCH 0

#include "error.h"
#include "buf.h"
#include "loop.h"
#include "timer.h"
#include "tcp.h"
#include "filter.h"
#include "flow.h"
#include "tls.h"
#include "server.h"
#include "proxy.h"
#include "reconnect.h"
#include "udp.h"

#endif

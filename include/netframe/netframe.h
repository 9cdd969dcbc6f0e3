/* netframe — a completion-based network library for Linux (io_uring, epoll).
 * Include this one header. */
#ifndef NETFRAME_NETFRAME_H
#define NETFRAME_NETFRAME_H

#include "version.h"
/* The names of 0.1.0, kept: NF_VERSION_* (netframe/config.h) are the same. */
#define NETFRAME_VERSION_MAJOR NF_VERSION_MAJOR
#define NETFRAME_VERSION_MINOR NF_VERSION_MINOR
#define NETFRAME_VERSION_PATCH NF_VERSION_PATCH

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

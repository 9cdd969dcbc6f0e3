/* netframe — the one place that names the engines: nf_loop_new makes the
 * loop (core), then starts io_uring or epoll on it, as the configuration,
 * NF_BACKEND and the kernel allow. The core never names a backend. */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "backend/backend_private.h"
#include "netframe/config.h"

static nf_backend_kind_t backend_from_env(nf_backend_kind_t asked)
{
    if (asked != NF_BACKEND_AUTO)
        return asked;
    const char *e = getenv("NF_BACKEND");
    if (e && strcmp(e, "uring") == 0)
        return NF_BACKEND_URING;
    if (e && strcmp(e, "epoll") == 0)
        return NF_BACKEND_EPOLL;
    return NF_BACKEND_AUTO;
}

NF__EXPORT int nf_loop_new(nf_loop_t **out, const nf_loop_config_t *cfg)
{
    nf_loop_t *loop;
    int err = nf__loop_alloc(&loop, cfg);
    if (err)
        return err;
    nf_backend_kind_t kind = backend_from_env(loop->cfg.backend);
    err = NF_EBACKEND;
#if NF_HAVE_URING
    if (kind == NF_BACKEND_URING || kind == NF_BACKEND_AUTO) {
        loop->ops = &nf__uring_ops;
        err = loop->ops->init(loop);
        if (err && kind == NF_BACKEND_URING)
            err = NF_EBACKEND;
    }
#endif
    if (err && kind != NF_BACKEND_URING) {
        loop->ops = &nf__epoll_ops;
        err = loop->ops->init(loop);
    }
    if (err) {
        nf__loop_discard(loop);
        return err;
    }
    if (loop->kick_fd < 0)
        loop->kick_fd = loop->wake_fd; /* epoll: the wake fd is in the epoll set */
    /* What this build has (netframe/config.h), after what the kernel gave. */
    size_t used = strlen(loop->features);
    if (used < sizeof(loop->features))
        snprintf(loop->features + used, sizeof(loop->features) - used, " build=%s%s",
                 NF_HAVE_URING ? "io_uring,epoll" : "epoll", NF_HAVE_DEFLATE ? ",deflate" : "");
    *out = loop;
    return 0;
}

/* Shared by the idle-memory benchmarks (idle_mem.c, ws_idle_mem.c,
 * tls_idle_mem.c): the process's RSS and a raised descriptor limit. */
#ifndef NF_BENCH_IDLE_COMMON_H
#define NF_BENCH_IDLE_COMMON_H

#include <stdio.h>
#include <sys/resource.h>

/* VmRSS of this process in KiB, or -1. */
static inline long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* Raises RLIMIT_NOFILE to its hard limit; 0 when that leaves room for
 * `need` descriptors, else prints why (as `prog`) and returns 2. */
static inline int raise_nofile(long need, const char *prog)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < need) {
        fprintf(stderr, "%s: RLIMIT_NOFILE hard limit %ld is below %ld\n", prog, (long)rl.rlim_cur, need);
        return 2;
    }
    return 0;
}

#endif

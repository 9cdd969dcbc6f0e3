/* netframe integration tests — resolution peers (see resolve_peer.h). */
#include "resolve_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

const char *rp_hosts_file(const char *content)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/nf_hosts_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    size_t len = strlen(content);
    if (write(fd, content, len) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    close(fd);
    setenv("CARES_HOSTS", path, 1);
    return path;
}

static int udp_bound(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* One query in q[0..n): the answer in a[], its length, or 0 to ignore. */
static size_t dns_answer(const unsigned char *q, size_t n, unsigned char *a, int *slow)
{
    if (n < 12 || (q[2] & 0x80))
        return 0;
    char name[256];
    size_t off = 12, nl = 0;
    while (off < n && q[off] != 0) {
        size_t l = q[off];
        if (l > 63 || off + 1 + l > n || nl + l + 1 >= sizeof name)
            return 0;
        if (nl)
            name[nl++] = '.';
        memcpy(name + nl, q + off + 1, l);
        nl += l;
        off += 1 + l;
    }
    name[nl] = '\0';
    off++;
    if (off + 4 > n)
        return 0;
    unsigned qtype = (unsigned)q[off] << 8 | q[off + 1];
    off += 4;
    memcpy(a, q, off);                            /* header and question; any additional record is dropped */
    a[2] = (unsigned char)(0x80 | (q[2] & 0x01)); /* QR, RD as asked */
    a[3] = 0x80;                                  /* RA, NOERROR */
    memset(a + 6, 0, 6);                          /* no answer, authority, additional */
    *slow = strcasecmp(name, RP_DNS_SLOW_NAME) == 0;
    if (strcasecmp(name, RP_DNS_NAME) != 0 && !*slow) {
        a[3] = 0x80 | 3; /* NXDOMAIN */
        return off;
    }
    if (qtype == 1) { /* A 127.0.0.1, TTL 60 */
        static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
        memcpy(a + off, rr, sizeof rr);
        off += sizeof rr;
        a[7] = 1;
    }
    return off; /* other types: NOERROR without records (NODATA) */
}

int rp_dns_start(rp_dns_t *d)
{
    int fd = udp_bound(&d->port);
    if (fd < 0)
        return fd;
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    snprintf(d->servers, sizeof d->servers, "127.0.0.1:%u", d->port);
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (pid == 0) {
        unsigned char q[1500], a[1600];
        for (;;) {
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
            if (n < 0 && errno != EINTR)
                _exit(1);
            int slow = 0;
            size_t len = n > 0 ? dns_answer(q, (size_t)n, a, &slow) : 0;
            if (!len)
                continue;
            if (slow)
                usleep(200 * 1000);
            sendto(fd, a, len, 0, (struct sockaddr *)&from, fl);
        }
    }
    close(fd);
    d->pid = pid;
    return 0;
}

void rp_dns_stop(rp_dns_t *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
}

int rp_dns_silent(char *servers, size_t size)
{
    uint16_t port;
    int fd = udp_bound(&port);
    if (fd >= 0)
        snprintf(servers, size, "127.0.0.1:%u", port);
    return fd;
}

int rp_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

int rp_group_start(const char *hosts, const char **hosts_path, rp_dns_t *d)
{
    *hosts_path = rp_hosts_file(hosts);
    if (!*hosts_path)
        return -1;
    if (rp_dns_start(d) != 0) {
        unlink(*hosts_path);
        *hosts_path = NULL;
        return -1;
    }
    return 0;
}

void rp_group_stop(const char *hosts_path, rp_dns_t *d)
{
    rp_dns_stop(d);
    if (hosts_path)
        unlink(hosts_path);
}

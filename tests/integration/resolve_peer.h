/* netframe integration tests — peers for name resolution: a hosts file the
 * loop's resolver reads instead of /etc/hosts (c-ares's CARES_HOSTS), a
 * small DNS server in a child process (so it adds no thread to the test's
 * process), and a DNS server that never answers. */
#ifndef NF_IT_RESOLVE_PEER_H
#define NF_IT_RESOLVE_PEER_H

#include <stdint.h>
#include <sys/types.h>

/* Writes `content` to a fresh temporary hosts file and points CARES_HOSTS at
 * it (before any loop resolves). Returns the path (static storage). */
const char *rp_hosts_file(const char *content);

/* The DNS server's answers, by name (case-insensitive):
 *   RP_DNS_NAME        A 127.0.0.1, no AAAA
 *   RP_DNS_SLOW_NAME   the same, each answer sent 200 ms late
 *   anything else      NXDOMAIN */
#define RP_DNS_NAME      "nf-dns.test"
#define RP_DNS_SLOW_NAME "nf-slow.test"

typedef struct rp_dns {
    pid_t pid;
    uint16_t port;
    char servers[32]; /* "127.0.0.1:port", for nf_loop_config_t.dns_servers */
} rp_dns_t;

/* Starts the server on 127.0.0.1 (a child process); 0 or -errno. */
int rp_dns_start(rp_dns_t *d);
/* Kills it (by its pid) and reaps it. */
void rp_dns_stop(rp_dns_t *d);

/* A bound UDP socket on 127.0.0.1 that nobody reads: queries sent there are
 * never answered. Returns the fd (close it when done) and fills servers. */
int rp_dns_silent(char *servers, size_t size);

/* Both peers for a test group: the hosts file with `hosts` (CARES_HOSTS)
 * and the DNS server. 0, or -1 with nothing left running. */
int rp_group_start(const char *hosts, const char **hosts_path, rp_dns_t *d);
/* Stops the server and removes the hosts file (path may be NULL). */
void rp_group_stop(const char *hosts_path, rp_dns_t *d);

/* The process's thread count (/proc/self/status Threads:), or -1. */
int rp_threads(void);

#endif

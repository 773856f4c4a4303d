/* etcd_proc: real etcd processes for tests and benchmarks. One node or an
 * N-member cluster on 127.0.0.1, on free ports, with its data in a
 * temporary directory, healthy before use (polled with a deadline, never a
 * fixed sleep) and gone afterwards. Members die with the process that
 * started them, even if it crashes.
 *
 * With TLS (certificates from tests/common/certs.sh) and etcd's auth
 * (users and roles by key prefix) when a test asks, as a hardened etcd is.
 *
 * Runs `etcd` from PATH (Debian's etcd-server), or $ETCD_BIN. Functions
 * return 0 or a negative errno and never call Check, so benchmarks can use
 * them too; a start that fails prints the members' log tails to stderr. */
#ifndef TURNSTILE_ETCD_PROC_H
#define TURNSTILE_ETCD_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#define ETCD_PROC_MAX 5

#define ETCD_PROC_ROOT_PASSWORD "root-secret" /* etcd's root, once auth is on */

struct etcd_proc_member {
    pid_t pid; /* 0 while not running */
    int client_port, peer_port;
    int health_port; /* where GET /health is served: client_port, or a plain metrics port */
    char name[12];   /* "m0" */
    char url[32];    /* client URL: "http://127.0.0.1:PORT" or "https://..." */
};

/* How the members serve their clients. */
struct etcd_proc_opts {
    /* A directory made by tests/common/certs.sh: serve https with
     * server.pem and require client certificates signed by ca.pem
     * (--client-cert-auth). NULL: plain http. */
    const char *certs;
    int auth_token_ttl_s;           /* --auth-token-ttl once auth is on; 0: etcd's 300 s */
    unsigned long long quota_bytes; /* --quota-backend-bytes; 0: etcd's default (2 GiB) */
};

struct etcd_proc {
    unsigned n;
    char dir[64];                       /* each member's data (m0.data) and log (m0.log) */
    char endpoints[ETCD_PROC_MAX * 32]; /* every member's client URL, comma-separated */
    char certs[64];                     /* opts.certs, "" for none */
    int auth_token_ttl_s;
    bool auth; /* etcd_proc_auth_enable() ran: etcdctl goes as root */
    struct etcd_proc_member m[ETCD_PROC_MAX];
    unsigned long long quota_bytes; /* --quota-backend-bytes; 0: etcd's default (2 GiB) */
};

/* Starts n members (1..ETCD_PROC_MAX) as one new cluster and waits, at
 * most timeout_ms, until each is healthy (a leader is elected). On failure
 * nothing is left running or on disk. opts may be NULL: plain http. */
int etcd_proc_start(struct etcd_proc *p, unsigned n, int timeout_ms);
int etcd_proc_start_opts(struct etcd_proc *p, unsigned n, const struct etcd_proc_opts *opts,
                         int timeout_ms);

/* Runs `etcdctl ARGS...` (NULL-ended; $ETCDCTL_BIN or etcdctl from PATH)
 * against every member, with the client certificate if the members use
 * TLS, and as root once auth is on. Returns 0, or -EIO after printing
 * what etcdctl said (-ETIMEDOUT if it ran 30 s). */
int etcd_proc_ctl(struct etcd_proc *p, ...);

/* Turns etcd's auth on, with user root (ETCD_PROC_ROOT_PASSWORD). */
int etcd_proc_auth_enable(struct etcd_proc *p);

/* Adds a user. prefix not NULL: with a role of its own (named after it)
 * that may read and write the keys under prefix; NULL: no role at all. */
int etcd_proc_add_user(struct etcd_proc *p, const char *user, const char *password,
                       const char *prefix);

/* The same with a backend quota of quota_bytes (0: etcd's default), past
 * which etcd raises the NOSPACE alarm and refuses writes. */
int etcd_proc_start_quota(struct etcd_proc *p, unsigned n, unsigned long long quota_bytes,
                          int timeout_ms);

/* Kills every member and removes the directory. Safe on a zeroed p, on
 * stopped (SIGSTOP) members, and twice. */
void etcd_proc_stop(struct etcd_proc *p);

/* Sends sig to member i. SIGSTOP stalls it: the kernel still accepts
 * connections, nothing answers (returns once every thread is stopped).
 * SIGCONT resumes it (returns once they run again). */
int etcd_proc_signal(struct etcd_proc *p, unsigned i, int sig);

/* Kills member i (SIGKILL) and reaps it: its ports refuse connections. */
int etcd_proc_kill(struct etcd_proc *p, unsigned i);

/* Starts killed member i again on its ports and data, and waits at most
 * timeout_ms until it is healthy. */
int etcd_proc_restart(struct etcd_proc *p, unsigned i, int timeout_ms);

/* The member that leads, as it says itself (/v3/maintenance/status),
 * polled until timeout_ms passes: its index, or -ETIMEDOUT. Member skip
 * (-1: none) is not asked: a stopped one would hold each round a second. */
int etcd_proc_leader(const struct etcd_proc *p, int skip, int timeout_ms);

/* True once member i answers GET /health with "true", polled until
 * timeout_ms passes (over plain http: with TLS, on its metrics port). */
bool etcd_proc_healthy(const struct etcd_proc *p, unsigned i, int timeout_ms);

#endif

/* etcd_encode: what etcd is asked, and the JSON the gateway takes for it.
 *
 * The request types of the etcd client (etcd.h), and their encoding as
 * etcd 3.4's JSON gateway reads it: keys and values as base64 strings,
 * int64s as decimal strings (exact beyond 2^53), enums by name, fields at
 * their zero value left out. Each encoder checks its arguments first and
 * returns 0 with *text a NUL-terminated JSON object (the caller frees
 * it), or -EINVAL (an argument etcd would refuse or that makes no sense:
 * nothing is encoded) or -ENOMEM. No I/O, no loop: usable anywhere. */
#ifndef TURNSTILE_ETCD_ENCODE_H
#define TURNSTILE_ETCD_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum etcd_op_type { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE };

enum etcd_sort_order { ETCD_SORT_NONE, ETCD_SORT_ASCEND, ETCD_SORT_DESCEND };
enum etcd_sort_target {
    ETCD_SORT_KEY,
    ETCD_SORT_VERSION,
    ETCD_SORT_CREATE, /* by create revision: queue order */
    ETCD_SORT_MOD,
    ETCD_SORT_VALUE
};

/* One key, or with prefix every key that starts with key (an empty key
 * with prefix: every key). */
struct etcd_range_req {
    const char *key;
    size_t key_len;
    bool prefix;
    int64_t limit; /* at most this many kvs, 0: all */
    enum etcd_sort_order sort_order;
    enum etcd_sort_target sort_target;
    bool count_only;             /* count, no kvs */
    int64_t max_create_revision; /* only keys created at or before it; 0: any */
    int64_t revision;            /* as of this revision (history); 0: the latest */
};

struct etcd_put_req {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t lease; /* attach to this lease (deleted when it expires); 0: none */
    bool prev_kv;  /* return the pair it replaces */
};

struct etcd_delete_req {
    const char *key;
    size_t key_len;
    bool prefix;  /* every key that starts with key */
    bool prev_kv; /* return the pairs deleted */
};

struct etcd_op {
    enum etcd_op_type type;
    union {
        struct etcd_range_req range;
        struct etcd_put_req put;
        struct etcd_delete_req del;
    };
};

enum etcd_cmp_target {
    ETCD_CMP_VERSION,
    ETCD_CMP_CREATE, /* create revision; 0 for a key that does not exist */
    ETCD_CMP_MOD,
    ETCD_CMP_VALUE,
    ETCD_CMP_LEASE
};
enum etcd_cmp_result { ETCD_CMP_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS, ETCD_CMP_NOT_EQUAL };

/* "key's target <result> operand", e.g. create revision EQUAL 0: the key
 * does not exist. */
struct etcd_cmp {
    const char *key;
    size_t key_len;
    enum etcd_cmp_target target;
    enum etcd_cmp_result result;
    int64_t number;    /* VERSION, CREATE, MOD, LEASE */
    const char *value; /* VALUE */
    size_t value_len;
};

/* If every compare holds, run `success`, else `failure`: atomically, at
 * one revision. etcd refuses (-EINVAL) two ops that write one key. */
struct etcd_txn {
    const struct etcd_cmp *cmps;
    size_t ncmps;
    const struct etcd_op *success;
    size_t nsuccess;
    const struct etcd_op *failure;
    size_t nfailure;
};

/* /v3/kv/range, /v3/kv/txn, /v3/kv/deleterange. */
int etcd_encode_range(const struct etcd_range_req *r, char **text);
int etcd_encode_txn(const struct etcd_txn *t, char **text);
int etcd_encode_delete(const struct etcd_delete_req *d, char **text);

/* The lease endpoints: {"ID": id} and/or {"TTL": ttl_s}; a zero is left
 * out. -EINVAL when both are zero. */
int etcd_encode_lease(int64_t id, int64_t ttl_s, char **text);

/* /v3/kv/compaction: {"revision": N}, N > 0 (else -EINVAL). */
int etcd_encode_compact(int64_t revision, char **text);
/* /v3/maintenance/alarm, listing the active alarms: {}. */
int etcd_encode_alarm_list(char **text);

/* /v3/watch: {"create_request": {key, range_end}} with no start revision. */
int etcd_encode_watch(const char *key, size_t key_len, bool prefix, char **text);

#endif

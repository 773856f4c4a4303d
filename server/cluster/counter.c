/* counter: the counter's value. See counter.h. */
#include "counter.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* At most 19 digits: no overflow to check. sscanf alone would also take
 * leading blanks and signs. */
int counter_parse(const char *value, size_t len, uint64_t *n)
{
    int used = 0;
    if (len == 0 || !isdigit((unsigned char)value[0]) ||
        sscanf(value, "%19" SCNu64 "%n", n, &used) != 1)
        return -EIO;
    return (size_t)used == len || value[used] == ' ' ? 0 : -EIO;
}

/* The receipt after N: "KEY CREATE_REVISION". */
static int format_receipt(char *buf, size_t cap, const char *key, size_t key_len, int64_t rev)
{
    return snprintf(buf, cap, "%.*s %" PRId64, (int)key_len, key, rev);
}

bool counter_written_by(const char *value, size_t len, const char *key, size_t key_len,
                        int64_t create_revision)
{
    char want[CLUSTER_KEY_MAX + 24];
    const char *space = memchr(value, ' ', len);
    int n = format_receipt(want, sizeof(want), key, key_len, create_revision);
    size_t after = space ? (size_t)(value + len - space - 1) : 0; /* bytes past the space */
    return space && n > 0 && (size_t)n < sizeof(want) && after >= (size_t)n &&
           memcmp(space + 1, want, (size_t)n) == 0 && (after == (size_t)n || space[1 + n] == ' ');
}

void counter_format(char *buf, size_t cap, uint64_t n, const struct counter_writer *w, size_t k)
{
    size_t used = (size_t)snprintf(buf, cap, "%" PRIu64, n);
    for (size_t i = 0; i < k && used + 1 < cap; i++) {
        buf[used++] = ' ';
        int more =
            format_receipt(buf + used, cap - used, w[i].key, w[i].key_len, w[i].create_revision);
        if (more < 0 || (size_t)more >= cap - used) {
            buf[used - 1] = '\0'; /* no pair cut in half (COUNTER_VALUE_MAX(k) leaves room) */
            break;
        }
        used += (size_t)more;
    }
}

void counter_see(struct cluster_loop *cl, uint64_t value, int64_t mod_revision)
{
    if (mod_revision <= cl->counter.mod_revision)
        return;
    cl->counter = (struct counter_copy){value, mod_revision};
    uint64_t seen = atomic_load_explicit(&cl->c->counter, memory_order_relaxed);
    while (value > seen &&
           !atomic_compare_exchange_weak_explicit(&cl->c->counter, &seen, value,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

int counter_read(struct cluster_loop *cl, const struct etcd_op_result *r)
{
    uint64_t v = 0;
    if (r->nkvs == 0) {
        counter_see(cl, 0, 0);
        return 0;
    }
    const struct etcd_kv *kv = &r->kvs[0];
    int rc = counter_parse(kv->value, kv->value_len, &v);
    if (rc < 0) {
        log_msg(LOG_LEVEL_ERROR, "cluster: %s holds '%.*s', not a number", cl->c->counter_key,
                (int)(kv->value_len > 40 ? 40 : kv->value_len), kv->value);
        return rc;
    }
    counter_see(cl, v, kv->mod_revision);
    return 0;
}

/* etcd_encode: requests as the gateway's JSON. See etcd_encode.h.
 *
 * The requests have a few fixed shapes whose names are constants and whose
 * strings are base64 or decimal: nothing needs escaping. So they are
 * written straight into one growing buffer, not built as a jansson tree
 * and dumped (that was a ninth of turnstile's CPU per cluster request,
 * issue 28). Base64 is OpenSSL's EVP_EncodeBlock: one-shot, on
 * length-bounded input, written in place. */
#include "etcd_encode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* EVP_EncodeBlock counts in int: longer bytes are refused (as out of
 * memory: nothing that long is ever sent). */
#define BYTES_MAX (64u << 20)
#define FIRST_CAP 256 /* most requests fit: one allocation */

/* ---- a writer of compact JSON into a growing buffer ---- */

/* Once failed (out of memory), every write is a no-op. */
struct writer {
    char *buf;
    size_t len, cap;
    bool failed;
};

/* Whether there is room for n more bytes and a NUL. */
static bool room(struct writer *w, size_t n)
{
    if (w->failed)
        return false;
    if (w->cap - w->len > n)
        return true;
    size_t cap = w->cap ? w->cap : FIRST_CAP;
    while (cap - w->len <= n)
        cap *= 2;
    char *buf = realloc(w->buf, cap);
    if (!buf) {
        w->failed = true;
        return false;
    }
    w->buf = buf;
    w->cap = cap;
    return true;
}

static void put(struct writer *w, const char *s, size_t n)
{
    if (room(w, n)) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    }
}

/* The comma before a member or an element, unless it is its container's first. */
static void sep(struct writer *w)
{
    if (!w->failed && w->len && w->buf[w->len - 1] != '{' && w->buf[w->len - 1] != '[')
        put(w, ",", 1);
}

/* "name": (names are constants that need no escaping). */
static void name(struct writer *w, const char *key)
{
    sep(w);
    put(w, "\"", 1);
    put(w, key, strlen(key));
    put(w, "\":", 2);
}

/* Opens an object or array: "key":{ , or with key NULL an element {. */
static void enter(struct writer *w, const char *key, char bracket)
{
    if (key)
        name(w, key);
    else
        sep(w);
    put(w, &bracket, 1);
}

static void leave(struct writer *w, char bracket)
{
    put(w, &bracket, 1);
}

/* An enum's name. */
static void str(struct writer *w, const char *key, const char *s)
{
    name(w, key);
    put(w, "\"", 1);
    put(w, s, strlen(s));
    put(w, "\"", 1);
}

static void yes(struct writer *w, const char *key)
{
    name(w, key);
    put(w, "true", 4);
}

/* int64s go as strings, as etcd sends them: exact beyond 2^53. */
static void number(struct writer *w, const char *key, int64_t v)
{
    char text[24]; /* '"', a sign, 19 digits, '"' */
    size_t i = sizeof(text);
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    text[--i] = '"';
    do {
        text[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        text[--i] = '-';
    text[--i] = '"';
    name(w, key);
    put(w, text + i, sizeof(text) - i);
}

/* The gateway carries bytes as base64 strings, encoded in place. */
static void bytes(struct writer *w, const char *key, const char *data, size_t len)
{
    size_t n = 4 * ((len + 2) / 3);
    name(w, key);
    if (len > BYTES_MAX)
        w->failed = true;
    if (!room(w, n + 2))
        return;
    w->buf[w->len++] = '"';
    w->len += (size_t)EVP_EncodeBlock((unsigned char *)w->buf + w->len, (const unsigned char *)data,
                                      (int)len);
    w->buf[w->len++] = '"';
}

/* 0 with *text the NUL-terminated JSON (the caller's), or -ENOMEM. */
static int finish(struct writer *w, char **text)
{
    if (!room(w, 0)) {
        free(w->buf);
        *text = NULL;
        return -ENOMEM;
    }
    w->buf[w->len] = '\0';
    *text = w->buf;
    return 0;
}

/* ---- requests as JSON ---- */

static const char *const sort_orders[] = {"NONE", "ASCEND", "DESCEND"};
static const char *const sort_targets[] = {"KEY", "VERSION", "CREATE", "MOD", "VALUE"};
static const char *const cmp_targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const cmp_fields[] = {"version", "create_revision", "mod_revision", "value",
                                         "lease"};
static const char *const cmp_results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* key, and with prefix the range_end that makes it a prefix: the key with
 * its last byte below 0xff incremented and what follows cut off (as
 * clientv3.GetPrefixRangeEnd); "\0" (every key from key on) when there is
 * none. An empty key with prefix is every key: key "\0", range_end "\0". */
static void key_range(struct writer *w, const char *key, size_t len, bool prefix)
{
    static const char zero;
    if (!prefix) {
        bytes(w, "key", key, len);
        return;
    }
    if (len == 0) {
        bytes(w, "key", &zero, 1);
        bytes(w, "range_end", &zero, 1);
        return;
    }
    char *end = malloc(len);
    if (!end) {
        w->failed = true;
        return;
    }
    memcpy(end, key, len);
    size_t n = len;
    while (n > 0 && (unsigned char)end[n - 1] == 0xff)
        n--;
    if (n == 0)
        end[n++] = '\0';
    else
        end[n - 1]++;
    bytes(w, "key", key, len);
    bytes(w, "range_end", end, n);
    free(end);
}

/* The members of each request, inside an object the caller opened. */
static void range_members(struct writer *w, const struct etcd_range_req *r)
{
    key_range(w, r->key, r->key_len, r->prefix);
    if (r->limit)
        number(w, "limit", r->limit);
    if (r->sort_order != ETCD_SORT_NONE)
        str(w, "sort_order", sort_orders[r->sort_order]);
    if (r->sort_target != ETCD_SORT_KEY)
        str(w, "sort_target", sort_targets[r->sort_target]);
    if (r->count_only)
        yes(w, "count_only");
    if (r->max_create_revision)
        number(w, "max_create_revision", r->max_create_revision);
    if (r->revision)
        number(w, "revision", r->revision);
}

static void put_members(struct writer *w, const struct etcd_put_req *p)
{
    bytes(w, "key", p->key, p->key_len);
    bytes(w, "value", p->value, p->value_len);
    if (p->lease)
        number(w, "lease", p->lease);
    if (p->prev_kv)
        yes(w, "prev_kv");
}

static void delete_members(struct writer *w, const struct etcd_delete_req *d)
{
    key_range(w, d->key, d->key_len, d->prefix);
    if (d->prev_kv)
        yes(w, "prev_kv");
}

/* {"request_put": {...}} and the like: a txn's RequestOp. */
static void op_element(struct writer *w, const struct etcd_op *op)
{
    static const char *const names[] = {"request_range", "request_put", "request_delete_range"};
    enter(w, NULL, '{');
    enter(w, names[op->type], '{');
    if (op->type == ETCD_OP_RANGE)
        range_members(w, &op->range);
    else if (op->type == ETCD_OP_PUT)
        put_members(w, &op->put);
    else
        delete_members(w, &op->del);
    leave(w, '}');
    leave(w, '}');
}

static void cmp_element(struct writer *w, const struct etcd_cmp *cmp)
{
    enter(w, NULL, '{');
    bytes(w, "key", cmp->key, cmp->key_len);
    str(w, "target", cmp_targets[cmp->target]);
    str(w, "result", cmp_results[cmp->result]);
    if (cmp->target == ETCD_CMP_VALUE)
        bytes(w, "value", cmp->value, cmp->value_len);
    else
        number(w, cmp_fields[cmp->target], cmp->number);
    leave(w, '}');
}

/* name: [each op], left out when there are none (absent means empty). */
static void op_list(struct writer *w, const char *key, const struct etcd_op *ops, size_t n)
{
    if (n == 0)
        return;
    enter(w, key, '[');
    for (size_t i = 0; i < n; i++)
        op_element(w, &ops[i]);
    leave(w, ']');
}

static void txn_members(struct writer *w, const struct etcd_txn *t)
{
    if (t->ncmps) {
        enter(w, "compare", '[');
        for (size_t i = 0; i < t->ncmps; i++)
            cmp_element(w, &t->cmps[i]);
        leave(w, ']');
    }
    op_list(w, "success", t->success, t->nsuccess);
    op_list(w, "failure", t->failure, t->nfailure);
}

/* ---- argument checks: a bad one is -EINVAL before anything is sent ---- */

static bool key_ok(const char *key, size_t len, bool prefix)
{
    return (key || len == 0) && (len > 0 || prefix);
}

static bool range_ok(const struct etcd_range_req *r)
{
    return key_ok(r->key, r->key_len, r->prefix) && r->limit >= 0 &&
           (unsigned)r->sort_order < COUNT(sort_orders) &&
           (unsigned)r->sort_target < COUNT(sort_targets) && r->max_create_revision >= 0 &&
           r->revision >= 0;
}

static bool op_ok(const struct etcd_op *op)
{
    switch (op->type) {
    case ETCD_OP_RANGE:
        return range_ok(&op->range);
    case ETCD_OP_PUT:
        return key_ok(op->put.key, op->put.key_len, false) &&
               (op->put.value || op->put.value_len == 0);
    case ETCD_OP_DELETE:
        return key_ok(op->del.key, op->del.key_len, op->del.prefix);
    }
    return false;
}

static bool txn_ok(const struct etcd_txn *t)
{
    for (size_t i = 0; i < t->ncmps; i++) {
        const struct etcd_cmp *cmp = &t->cmps[i];
        if (!key_ok(cmp->key, cmp->key_len, false) || (unsigned)cmp->target >= COUNT(cmp_targets) ||
            (unsigned)cmp->result >= COUNT(cmp_results))
            return false;
    }
    for (size_t i = 0; i < t->nsuccess; i++)
        if (!op_ok(&t->success[i]))
            return false;
    for (size_t i = 0; i < t->nfailure; i++)
        if (!op_ok(&t->failure[i]))
            return false;
    return true;
}

/* A request's writer, its object opened. */
static struct writer begin(void)
{
    struct writer w = {0};
    enter(&w, NULL, '{');
    return w;
}

/* Closes the request's object; then as finish. */
static int end(struct writer *w, char **text)
{
    leave(w, '}');
    return finish(w, text);
}

int etcd_encode_range(const struct etcd_range_req *r, char **text)
{
    *text = NULL;
    if (!range_ok(r))
        return -EINVAL;
    struct writer w = begin();
    range_members(&w, r);
    return end(&w, text);
}

int etcd_encode_txn(const struct etcd_txn *t, char **text)
{
    *text = NULL;
    if (!txn_ok(t))
        return -EINVAL;
    struct writer w = begin();
    txn_members(&w, t);
    return end(&w, text);
}

int etcd_encode_delete(const struct etcd_delete_req *d, char **text)
{
    *text = NULL;
    if (!key_ok(d->key, d->key_len, d->prefix))
        return -EINVAL;
    struct writer w = begin();
    delete_members(&w, d);
    return end(&w, text);
}

/* {"ID": "id"} and optionally {"TTL": "ttl"}: etcd ignores "id" and "ttl". */
int etcd_encode_lease(int64_t id, int64_t ttl_s, char **text)
{
    *text = NULL;
    if (!id && !ttl_s)
        return -EINVAL;
    struct writer w = begin();
    if (id)
        number(&w, "ID", id);
    if (ttl_s)
        number(&w, "TTL", ttl_s);
    return end(&w, text);
}

int etcd_encode_compact(int64_t revision, char **text)
{
    *text = NULL;
    if (revision <= 0)
        return -EINVAL;
    struct writer w = begin();
    number(&w, "revision", revision);
    return end(&w, text);
}

int etcd_encode_alarm_list(char **text)
{
    struct writer w = begin(); /* {}: action GET, the default */
    return end(&w, text);
}

int etcd_encode_watch(const char *key, size_t key_len, bool prefix, char **text)
{
    *text = NULL;
    if (!key_ok(key, key_len, prefix))
        return -EINVAL;
    struct writer w = begin();
    enter(&w, "create_request", '{');
    key_range(&w, key, key_len, prefix);
    leave(&w, '}');
    return end(&w, text);
}

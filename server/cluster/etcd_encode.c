/* etcd_encode: requests as the gateway's JSON. See etcd_encode.h.
 *
 * JSON is built with jansson (why jansson: etcd_decode.c), base64 with
 * OpenSSL's EVP_EncodeBlock: one-shot, on length-bounded input. */
#include "etcd_encode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

/* EVP_EncodeBlock counts in int: longer bytes are refused (as out of
 * memory: nothing that long is ever sent). */
#define BYTES_MAX (64u << 20)

/* ---- base64 ---- */

/* The gateway carries bytes as base64 JSON strings. NULL: out of memory. */
static json_t *b64_json(const char *data, size_t len)
{
    if (len > BYTES_MAX)
        return NULL;
    char *text = malloc(4 * ((len + 2) / 3) + 1);
    if (!text)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)text, (const unsigned char *)data, (int)len);
    json_t *s = json_stringn(text, (size_t)n);
    free(text);
    return s;
}

/* ---- requests as JSON ---- */

static const char *const sort_orders[] = {"NONE", "ASCEND", "DESCEND"};
static const char *const sort_targets[] = {"KEY", "VERSION", "CREATE", "MOD", "VALUE"};
static const char *const cmp_targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const cmp_fields[] = {"version", "create_revision", "mod_revision", "value",
                                         "lease"};
static const char *const cmp_results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The setters return 0 or -1 (out of memory; json_object_set_new takes
 * the value's reference even then). */
static int set_bytes(json_t *o, const char *name, const char *data, size_t len)
{
    return json_object_set_new(o, name, b64_json(data, len));
}

/* int64s go as strings, as etcd sends them: exact beyond 2^53. */
static int set_int(json_t *o, const char *name, int64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRId64, v);
    return json_object_set_new(o, name, json_string(text));
}

static int set_str(json_t *o, const char *name, const char *s)
{
    return json_object_set_new(o, name, json_string(s));
}

/* key, and with prefix the range_end that makes it a prefix: the key with
 * its last byte below 0xff incremented and what follows cut off (as
 * clientv3.GetPrefixRangeEnd); "\0" (every key from key on) when there is
 * none. An empty key with prefix is every key: key "\0", range_end "\0". */
static int set_key_range(json_t *o, const char *key, size_t len, bool prefix)
{
    static const char zero;
    if (!prefix)
        return set_bytes(o, "key", key, len);
    if (len == 0)
        return set_bytes(o, "key", &zero, 1) | set_bytes(o, "range_end", &zero, 1);
    char *end = malloc(len);
    if (!end)
        return -1;
    memcpy(end, key, len);
    size_t n = len;
    while (n > 0 && (unsigned char)end[n - 1] == 0xff)
        n--;
    if (n == 0)
        end[n++] = '\0';
    else
        end[n - 1]++;
    int rc = set_bytes(o, "key", key, len) | set_bytes(o, "range_end", end, n);
    free(end);
    return rc;
}

/* Each builder returns a new object, or NULL when out of memory. */
static json_t *checked(json_t *o, int failed)
{
    if (!failed)
        return o;
    json_decref(o);
    return NULL;
}

static json_t *range_json(const struct etcd_range_req *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_key_range(o, r->key, r->key_len, r->prefix);
    if (r->limit)
        bad |= set_int(o, "limit", r->limit);
    if (r->sort_order != ETCD_SORT_NONE)
        bad |= set_str(o, "sort_order", sort_orders[r->sort_order]);
    if (r->sort_target != ETCD_SORT_KEY)
        bad |= set_str(o, "sort_target", sort_targets[r->sort_target]);
    if (r->count_only)
        bad |= json_object_set_new(o, "count_only", json_true());
    if (r->max_create_revision)
        bad |= set_int(o, "max_create_revision", r->max_create_revision);
    if (r->revision)
        bad |= set_int(o, "revision", r->revision);
    return checked(o, bad);
}

static json_t *put_json(const struct etcd_put_req *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_bytes(o, "key", p->key, p->key_len);
    bad |= set_bytes(o, "value", p->value, p->value_len);
    if (p->lease)
        bad |= set_int(o, "lease", p->lease);
    if (p->prev_kv)
        bad |= json_object_set_new(o, "prev_kv", json_true());
    return checked(o, bad);
}

static json_t *delete_json(const struct etcd_delete_req *d)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_key_range(o, d->key, d->key_len, d->prefix);
    if (d->prev_kv)
        bad |= json_object_set_new(o, "prev_kv", json_true());
    return checked(o, bad);
}

/* {"request_put": {...}} and the like: a txn's RequestOp. (jansson's
 * setters take NULL for either object and fail, dropping the value.) */
static json_t *op_json(const struct etcd_op *op)
{
    static const char *const names[] = {"request_range", "request_put", "request_delete_range"};
    json_t *body = op->type == ETCD_OP_RANGE ? range_json(&op->range)
                   : op->type == ETCD_OP_PUT ? put_json(&op->put)
                                             : delete_json(&op->del);
    json_t *o = json_object();
    return checked(o, json_object_set_new(o, names[op->type], body));
}

static json_t *cmp_json(const struct etcd_cmp *cmp)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_bytes(o, "key", cmp->key, cmp->key_len);
    bad |= set_str(o, "target", cmp_targets[cmp->target]);
    bad |= set_str(o, "result", cmp_results[cmp->result]);
    if (cmp->target == ETCD_CMP_VALUE)
        bad |= set_bytes(o, "value", cmp->value, cmp->value_len);
    else
        bad |= set_int(o, cmp_fields[cmp->target], cmp->number);
    return checked(o, bad);
}

/* Adds name: [each element] unless there are none (absent means empty). */
static int set_list(json_t *o, const char *name, const void *items, size_t n, size_t size,
                    json_t *(*to_json)(const void *item))
{
    if (n == 0)
        return 0;
    json_t *list = json_array();
    int bad = json_object_set_new(o, name, list);
    for (size_t i = 0; i < n && !bad; i++)
        bad = json_array_append_new(list, to_json((const char *)items + i * size));
    return bad;
}

static json_t *op_item(const void *op)
{
    return op_json(op);
}

static json_t *cmp_item(const void *cmp)
{
    return cmp_json(cmp);
}

static json_t *txn_json(const struct etcd_txn *t)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_list(o, "compare", t->cmps, t->ncmps, sizeof(*t->cmps), cmp_item);
    bad |= set_list(o, "success", t->success, t->nsuccess, sizeof(*t->success), op_item);
    bad |= set_list(o, "failure", t->failure, t->nfailure, sizeof(*t->failure), op_item);
    return checked(o, bad);
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

/* {"ID": "id"} and optionally {"TTL": "ttl"}: etcd ignores "id" and "ttl". */
static json_t *lease_json(int64_t id, int64_t ttl_s)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = id ? set_int(o, "ID", id) : 0;
    if (ttl_s)
        bad |= set_int(o, "TTL", ttl_s);
    return checked(o, bad);
}

static json_t *watch_json(const char *key, size_t key_len, bool prefix)
{
    json_t *create = json_object();
    int bad = set_key_range(create, key, key_len, prefix);
    json_t *o = json_object();
    bad |= json_object_set_new(o, "create_request", create);
    return checked(o, bad);
}

/* The object as compact text (the object is taken). */
static int dump(json_t *o, char **text)
{
    *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return *text ? 0 : -ENOMEM;
}

int etcd_encode_range(const struct etcd_range_req *r, char **text)
{
    *text = NULL;
    return range_ok(r) ? dump(range_json(r), text) : -EINVAL;
}

int etcd_encode_txn(const struct etcd_txn *t, char **text)
{
    *text = NULL;
    return txn_ok(t) ? dump(txn_json(t), text) : -EINVAL;
}

int etcd_encode_delete(const struct etcd_delete_req *d, char **text)
{
    *text = NULL;
    return key_ok(d->key, d->key_len, d->prefix) ? dump(delete_json(d), text) : -EINVAL;
}

int etcd_encode_lease(int64_t id, int64_t ttl_s, char **text)
{
    *text = NULL;
    return id || ttl_s ? dump(lease_json(id, ttl_s), text) : -EINVAL;
}

int etcd_encode_compact(int64_t revision, char **text)
{
    *text = NULL;
    if (revision <= 0)
        return -EINVAL;
    json_t *o = json_object();
    return dump(checked(o, o ? set_int(o, "revision", revision) : -1), text);
}

int etcd_encode_alarm_list(char **text)
{
    return dump(json_object(), text); /* action GET, the default */
}

int etcd_encode_watch(const char *key, size_t key_len, bool prefix, char **text)
{
    *text = NULL;
    return key_ok(key, key_len, prefix) ? dump(watch_json(key, key_len, prefix), text) : -EINVAL;
}

/* etcd: an etcd v3 client over the JSON gateway. See etcd.h.
 *
 * Libraries, and why:
 * - JSON is jansson's: it parses from a length-bounded buffer (json_loadb:
 *   an HTTP body is not NUL-terminated), checks types as it is read, and
 *   its reference counting lets a reply's tree be read and dropped whole.
 * - Base64 is OpenSSL's libcrypto (EVP_EncodeBlock/EVP_DecodeBlock):
 *   one-shot calls on length-bounded input, from a library already on every
 *   machine that builds us (libcurl's -dev package pulls in libssl-dev),
 *   where glibc's b64_pton wants a NUL-terminated string and is a legacy
 *   libresolv export. Its decoder tolerates '=' anywhere and trims white
 *   space, so where padding may stand is checked here before it runs.
 * - HTTP replies are parsed by llhttp in response mode, chunked bodies
 *   included (the watch and keepalive endpoints stream).
 *
 * Shape: a call lives on its caller's stack (struct etcd_call) while the
 * caller is parked; the worker coroutine owns the socket and every buffer
 * it reads into or writes from. A caller that gives up (deadline, cancel)
 * unhooks its call; the worker never touches a call after that, and simply
 * drops the reply. Decoding into the caller's result happens in the worker
 * while the caller is still parked, so everything about a call's outcome
 * (result, statistics) is settled in one place. */
#include "etcd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

/* jansson recurses once per nesting level and allows 2048 of them: some
 * 100 KiB of stack, more than a coroutine has (CORO_DEFAULT_STACK). etcd's
 * replies nest 6 deep; deeper input is refused before jansson sees it. */
#define JSON_MAX_DEPTH 32
#define MEM_BLOCK      4096        /* reply memory comes in blocks of this */
#define BODY_KEEP      (256 << 10) /* a reply buffer larger than this is freed after use */
#define WHY_CAP        160         /* what went wrong, for etcd_last_error() */

const char *const etcd_err_names[ETCD_ERR_COUNT] = {"timeout",   "canceled", "connect", "broken",
                                                    "bad_reply", "etcd",     "local"};

struct etcd_call {
    struct etcd_call *prev, *next; /* in the client's queue */
    coro_t *co;                    /* the caller, parked */
    const char *path;
    const char *body; /* request JSON, the caller's until it returns */
    size_t body_len;
    int64_t deadline_us;
    bool stream; /* a streaming endpoint: the reply is {"result": ...} */
    bool done;   /* rc is final */
    int rc;
    const char *why; /* set by decode for an error it finds */
    /* Fills out from the reply; runs in the worker while the caller waits. */
    int (*decode)(const json_t *doc, struct etcd_call *k);
    const void *req;
    void *out;
};

/* ---- errors and statistics ---- */

static enum etcd_err_kind err_kind(int rc)
{
    switch (-rc) {
    case ETIMEDOUT:
        return ETCD_ERR_TIMEOUT;
    case ECANCELED:
        return ETCD_ERR_CANCELED;
    case ECONNRESET:
        return ETCD_ERR_BROKEN;
    case EIO:
    case EMSGSIZE:
        return ETCD_ERR_BAD_REPLY;
    case EINVAL:
    case ENOENT:
    case EEXIST:
    case EACCES:
    case ENOSPC:
    case ERANGE:
    case EAGAIN:
    case EREMOTEIO:
        return ETCD_ERR_ETCD;
    case ENOMEM:
    case EMFILE:
    case ENFILE:
        return ETCD_ERR_LOCAL;
    default: /* what connect(2) says */
        return ETCD_ERR_CONNECT;
    }
}

/* Counts one call's outcome; why (may be NULL) says what went wrong. */
static void account(struct etcd_client *c, int rc, const char *why)
{
    c->stats.calls++;
    c->last_result = rc;
    if (rc == 0) {
        c->stats.ok++;
        return;
    }
    c->stats.errors[err_kind(rc)]++;
    snprintf(c->last_error, sizeof(c->last_error), "%s", why ? why : strerror(-rc));
}

/* etcd's gRPC status codes, as errnos (see etcd.h). */
static int grpc_errno(json_int_t code)
{
    switch (code) {
    case 3: /* INVALID_ARGUMENT */
        return -EINVAL;
    case 5: /* NOT_FOUND */
        return -ENOENT;
    case 6: /* ALREADY_EXISTS */
        return -EEXIST;
    case 7:  /* PERMISSION_DENIED */
    case 16: /* UNAUTHENTICATED */
        return -EACCES;
    case 8: /* RESOURCE_EXHAUSTED */
        return -ENOSPC;
    case 11: /* OUT_OF_RANGE */
        return -ERANGE;
    case 14: /* UNAVAILABLE */
        return -EAGAIN;
    default:
        return -EREMOTEIO;
    }
}

/* An error document: {"error": "...", "message": "...", "code": N} from a
 * unary endpoint, {"error": {"grpc_code": N, "message": "...", ...}} inside
 * a stream. */
static int error_doc(const json_t *doc, char *why)
{
    const json_t *e = json_object_get(doc, "error");
    const json_t *src = json_is_object(e) ? e : doc;
    const json_t *code = json_object_get(src, json_is_object(e) ? "grpc_code" : "code");
    const json_t *msg = json_object_get(src, "message");
    if (!json_is_integer(code) || !json_is_string(msg))
        return -EIO;
    snprintf(why, WHY_CAP, "etcd: %s", json_string_value(msg));
    return grpc_errno(json_integer_value(code));
}

/* ---- reply memory ---- */

struct etcd_mem {
    struct etcd_mem *next;
    size_t used, cap;
    max_align_t data[];
};

static void *mem_alloc(struct etcd_mem **head, size_t n)
{
    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    struct etcd_mem *m = *head;
    if (!m || m->cap - m->used < n) {
        size_t cap = n > MEM_BLOCK ? n : MEM_BLOCK;
        m = malloc(sizeof(*m) + cap);
        if (!m)
            return NULL;
        *m = (struct etcd_mem){.next = *head, .cap = cap};
        *head = m;
    }
    void *p = (char *)m->data + m->used;
    m->used += n;
    return p;
}

static void mem_free(struct etcd_mem **head)
{
    while (*head) {
        struct etcd_mem *next = (*head)->next;
        free(*head);
        *head = next;
    }
}

void etcd_reply_free(struct etcd_reply *r)
{
    mem_free(&r->mem);
    *r = (struct etcd_reply){0};
}

/* ---- base64 ---- */

/* The gateway carries bytes as base64 JSON strings. NULL: out of memory. */
static json_t *b64_json(const char *data, size_t len)
{
    if (len > ETCD_MAX_REPLY) /* EVP_EncodeBlock counts in int */
        return NULL;
    char *text = malloc(4 * ((len + 2) / 3) + 1);
    if (!text)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)text, (const unsigned char *)data, (int)len);
    json_t *s = json_stringn(text, (size_t)n);
    free(text);
    return s;
}

static bool b64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

/* Decodes into mem, NUL-terminated. OpenSSL's decoder trims white space
 * and takes '=' anywhere, and counts padding in its length: so the text
 * must be whole quads, start and end (before padding) with a base64
 * character, and hold '=' only as its last one or two characters. */
static int b64_decode(const char *text, size_t len, struct etcd_mem **mem, const char **out,
                      size_t *out_len)
{
    size_t pad = 0;
    while (pad < 2 && pad < len && text[len - 1 - pad] == '=')
        pad++;
    if (len % 4 != 0 || len > ETCD_MAX_REPLY ||
        (len > 0 && (!b64_char(text[0]) || !b64_char(text[len - 1 - pad]))) ||
        memchr(text, '=', len - pad))
        return -EIO;
    unsigned char *buf = mem_alloc(mem, len / 4 * 3 + 1);
    if (!buf)
        return -ENOMEM;
    int n = len ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len) : 0;
    if (n < 0)
        return -EIO;
    n -= (int)pad;
    buf[n] = '\0';
    *out = (const char *)buf;
    *out_len = (size_t)n;
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

static json_t *cmp_json(const struct etcd_cmp *k)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_bytes(o, "key", k->key, k->key_len);
    bad |= set_str(o, "target", cmp_targets[k->target]);
    bad |= set_str(o, "result", cmp_results[k->result]);
    if (k->target == ETCD_CMP_VALUE)
        bad |= set_bytes(o, "value", k->value, k->value_len);
    else
        bad |= set_int(o, cmp_fields[k->target], k->number);
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
        const struct etcd_cmp *k = &t->cmps[i];
        if (!key_ok(k->key, k->key_len, false) || (unsigned)k->target >= COUNT(cmp_targets) ||
            (unsigned)k->result >= COUNT(cmp_results))
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

/* ---- replies from JSON: absent fields are zero, wrong types -EIO ---- */

/* Refuses input nested deeper than JSON_MAX_DEPTH (see there); brackets
 * inside strings do not count. Not a parser: jansson judges the rest. */
static bool nesting_ok(const char *s, size_t n)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '{' || ch == '[') {
            if (++depth > JSON_MAX_DEPTH)
                return false;
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    return true;
}

/* An object parsed from s, or NULL. */
static json_t *parse_object(const char *s, size_t n)
{
    json_t *doc = nesting_ok(s, n) ? json_loadb(s, n, 0, NULL) : NULL;
    if (doc && !json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static int get_int(const json_t *o, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(o, name);
    *out = 0;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -EIO;
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) || errno || end != s + json_string_length(v))
        return -EIO;
    *out = n;
    return 0;
}

static int get_bool(const json_t *o, const char *name, bool *out)
{
    const json_t *v = json_object_get(o, name);
    *out = json_is_true(v);
    return !v || json_is_boolean(v) ? 0 : -EIO;
}

static int get_bytes(const json_t *o, const char *name, struct etcd_mem **mem, const char **out,
                     size_t *len)
{
    const json_t *v = json_object_get(o, name);
    *out = "";
    *len = 0;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return -EIO;
    return b64_decode(json_string_value(v), json_string_length(v), mem, out, len);
}

/* An optional object field: NULL if absent, -EIO if not an object. */
static int get_object(const json_t *o, const char *name, const json_t **out)
{
    *out = json_object_get(o, name);
    return !*out || json_is_object(*out) ? 0 : -EIO;
}

static int decode_kv(const json_t *o, struct etcd_mem **mem, struct etcd_kv *kv)
{
    if (!json_is_object(o))
        return -EIO;
    int rc = get_bytes(o, "key", mem, &kv->key, &kv->key_len);
    if (rc == 0)
        rc = get_bytes(o, "value", mem, &kv->value, &kv->value_len);
    if (rc == 0)
        rc = get_int(o, "create_revision", &kv->create_revision);
    if (rc == 0)
        rc = get_int(o, "mod_revision", &kv->mod_revision);
    if (rc == 0)
        rc = get_int(o, "version", &kv->version);
    if (rc == 0)
        rc = get_int(o, "lease", &kv->lease);
    return rc;
}

/* A list of kvs (absent: none), or a single one when `one`. */
static int decode_kvs(const json_t *o, const char *name, bool one, struct etcd_mem **mem,
                      struct etcd_op_result *r)
{
    const json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    if (!one && !json_is_array(v))
        return -EIO;
    size_t n = one ? 1 : json_array_size(v);
    r->kvs = mem_alloc(mem, n * sizeof(*r->kvs) + 1);
    if (!r->kvs)
        return -ENOMEM;
    for (; r->nkvs < n; r->nkvs++) {
        int rc = decode_kv(one ? v : json_array_get(v, r->nkvs), mem, &r->kvs[r->nkvs]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Every reply has a header with the store's revision, which is at least 1. */
static int decode_revision(const json_t *doc, int64_t *revision)
{
    const json_t *header;
    int rc = get_object(doc, "header", &header);
    if (rc == 0 && header)
        rc = get_int(header, "revision", revision);
    return rc == 0 && *revision > 0 ? 0 : -EIO;
}

static int decode_result(enum etcd_op_type type, const json_t *o, struct etcd_mem **mem,
                         struct etcd_op_result *r)
{
    *r = (struct etcd_op_result){.type = type};
    switch (type) {
    case ETCD_OP_RANGE: {
        int rc = get_int(o, "count", &r->count);
        if (rc == 0)
            rc = get_bool(o, "more", &r->more);
        return rc ? rc : decode_kvs(o, "kvs", false, mem, r);
    }
    case ETCD_OP_PUT:
        return decode_kvs(o, "prev_kv", true, mem, r);
    case ETCD_OP_DELETE: {
        int rc = get_int(o, "deleted", &r->count);
        return rc ? rc : decode_kvs(o, "prev_kvs", false, mem, r);
    }
    }
    return -EIO;
}

/* A reply with one result (range, deleterange) at its top level. */
static int decode_single(const json_t *doc, struct etcd_call *k, enum etcd_op_type type)
{
    struct etcd_reply *out = k->out;
    int rc = decode_revision(doc, &out->revision);
    if (rc < 0)
        return rc;
    out->ops = mem_alloc(&out->mem, sizeof(*out->ops));
    if (!out->ops)
        return -ENOMEM;
    out->nops = 1;
    return decode_result(type, doc, &out->mem, out->ops);
}

static int decode_range(const json_t *doc, struct etcd_call *k)
{
    return decode_single(doc, k, ETCD_OP_RANGE);
}

static int decode_delete(const json_t *doc, struct etcd_call *k)
{
    return decode_single(doc, k, ETCD_OP_DELETE);
}

/* One ResponseOp per op of the branch that ran, of the op's own type. */
static int decode_responses(const json_t *list, const struct etcd_op *ops, size_t n,
                            struct etcd_reply *out)
{
    static const char *const names[] = {"response_range", "response_put", "response_delete_range"};
    if ((list && !json_is_array(list)) || json_array_size(list) != n)
        return -EIO;
    out->ops = mem_alloc(&out->mem, n * sizeof(*out->ops) + 1);
    if (!out->ops)
        return -ENOMEM;
    for (; out->nops < n; out->nops++) {
        const struct etcd_op *op = &ops[out->nops];
        const json_t *r;
        int rc = get_object(json_array_get(list, out->nops), names[op->type], &r);
        if (rc == 0 && !r)
            rc = -EIO;
        if (rc == 0)
            rc = decode_result(op->type, r, &out->mem, &out->ops[out->nops]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int decode_txn(const json_t *doc, struct etcd_call *k)
{
    const struct etcd_txn *t = k->req;
    struct etcd_reply *out = k->out;
    int rc = decode_revision(doc, &out->revision);
    if (rc == 0)
        rc = get_bool(doc, "succeeded", &out->succeeded);
    if (rc < 0)
        return rc;
    const json_t *list = json_object_get(doc, "responses");
    return out->succeeded ? decode_responses(list, t->success, t->nsuccess, out)
                          : decode_responses(list, t->failure, t->nfailure, out);
}

struct lease_out {
    int64_t id, ttl;
};

static int decode_lease(const json_t *doc, struct etcd_call *k)
{
    struct lease_out *out = k->out;
    int64_t revision;
    int rc = decode_revision(doc, &revision);
    if (rc == 0)
        rc = get_int(doc, "ID", &out->id);
    if (rc == 0)
        rc = get_int(doc, "TTL", &out->ttl);
    return rc;
}

/* A granted lease has an ID and a TTL. */
static int decode_grant(const json_t *doc, struct etcd_call *k)
{
    const struct lease_out *out = k->out;
    int rc = decode_lease(doc, k);
    return rc == 0 && (out->id == 0 || out->ttl <= 0) ? -EIO : rc;
}

/* A keepalive of a lease that is gone is answered with no TTL. */
static int decode_keepalive(const json_t *doc, struct etcd_call *k)
{
    const struct lease_out *out = k->out;
    int rc = decode_lease(doc, k);
    if (rc == 0 && out->ttl <= 0) {
        k->why = "etcd: lease expired or unknown";
        rc = -ENOENT;
    }
    return rc;
}

static int decode_revoke(const json_t *doc, struct etcd_call *k)
{
    int64_t revision;
    (void)k;
    return decode_revision(doc, &revision);
}

/* ---- endpoints ---- */

static int endpoint_parse(struct etcd_endpoint *ep, const char *url, size_t len)
{
    static const char scheme[] = "http://";
    char host[sizeof(ep->host)];
    while (len > 0 && url[len - 1] == '/')
        len--;
    if (len >= sizeof(ep->url) || len <= strlen(scheme) || strncmp(url, scheme, strlen(scheme)))
        return -EINVAL;
    *ep = (struct etcd_endpoint){0};
    memcpy(ep->url, url, len);
    memcpy(ep->host, url + strlen(scheme), len - strlen(scheme));
    memcpy(host, ep->host, sizeof(host));
    bool v6 = host[0] == '[';
    char *colon = v6 ? strstr(host, "]:") : strrchr(host, ':');
    if (!colon)
        return -EINVAL;
    char *port_text = colon + (v6 ? 2 : 1), *end;
    *colon = '\0';
    long port = strtol(port_text, &end, 10);
    if (*end || end == port_text || port < 1 || port > 65535)
        return -EINVAL;
    if (v6 && inet_pton(AF_INET6, host + 1, &ep->addr.v6.sin6_addr) == 1) {
        ep->addr.v6.sin6_family = AF_INET6;
        ep->addr.v6.sin6_port = htons((uint16_t)port);
        ep->addr_len = sizeof(ep->addr.v6);
    } else if (!v6 && inet_pton(AF_INET, host, &ep->addr.v4.sin_addr) == 1) {
        ep->addr.v4.sin_family = AF_INET;
        ep->addr.v4.sin_port = htons((uint16_t)port);
        ep->addr_len = sizeof(ep->addr.v4);
    } else {
        return -EINVAL;
    }
    return 0;
}

int etcd_client_init(struct etcd_client *c, const char *endpoints)
{
    *c = (struct etcd_client){0};
    for (const char *s = endpoints; *s;) {
        s += strspn(s, ", ");
        size_t len = strcspn(s, ", ");
        if (len == 0)
            break;
        if (c->nendpoints == ETCD_MAX_ENDPOINTS ||
            endpoint_parse(&c->endpoints[c->nendpoints], s, len) < 0)
            return -EINVAL;
        c->nendpoints++;
        s += len;
    }
    return c->nendpoints ? 0 : -EINVAL;
}

const char *etcd_endpoint(const struct etcd_client *c)
{
    return c->endpoints[c->current].url;
}

bool etcd_last_ok(const struct etcd_client *c)
{
    return c->stats.calls > 0 && c->last_result == 0;
}

const char *etcd_last_error(const struct etcd_client *c)
{
    return c->last_error;
}

/* The endpoint `failed` let us down: the next one is tried from now on,
 * unless someone already moved past it. */
static void move_on(struct etcd_client *c, unsigned failed)
{
    if (c->current != failed || c->nendpoints < 2)
        return;
    c->current = (c->current + 1) % c->nendpoints;
    c->stats.rotations++;
}

/* ---- one connection ---- */

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct etcd_conn *k = p->data;
    if (len > ETCD_MAX_REPLY - k->body_len)
        k->error = -EMSGSIZE;
    else if (grow(&k->body, &k->body_cap, k->body_len + len) < 0)
        k->error = -ENOMEM;
    if (k->error)
        return -1;
    memcpy(k->body + k->body_len, at, len);
    k->body_len += len;
    return 0;
}

/* A declared length past the limit fails before any of it is read. */
static int on_headers_complete(llhttp_t *p)
{
    struct etcd_conn *k = p->data;
    if (p->content_length <= ETCD_MAX_REPLY)
        return 0;
    k->error = -EMSGSIZE;
    return -1;
}

/* Pauses: whatever follows the reply is not ours to parse. */
static int on_message_complete(llhttp_t *p)
{
    struct etcd_conn *k = p->data;
    k->complete = true;
    if (!llhttp_should_keep_alive(p))
        k->stale = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t reply_settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Readies k for the reply to a request about to be sent. */
static void conn_expect_reply(struct etcd_conn *k)
{
    llhttp_init(&k->parser, HTTP_RESPONSE, &reply_settings);
    k->parser.data = k;
    k->complete = false;
    k->error = 0;
    k->body_len = 0;
    if (k->body_cap > BODY_KEEP) {
        free(k->body);
        k->body = NULL;
        k->body_cap = 0;
    }
}

static void conn_close(struct etcd_conn *k)
{
    if (k->fd < 0)
        return;
    loop_io_close(&k->io);
    close(k->fd);
    k->fd = -1;
}

static int sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

static int conn_dial(struct etcd_conn *k, const struct etcd_endpoint *ep, int64_t deadline_us)
{
    int fd = socket(ep->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A request is one write; waiting for an ACK before sending would cost
     * a delayed-ACK timeout each time. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = 0;
    if (connect(fd, &ep->addr.sa, ep->addr_len) < 0 && errno != EINPROGRESS)
        rc = -errno;
    if (rc == 0)
        rc = loop_io_open(&k->io, fd, NULL, NULL);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    k->fd = fd;
    k->stale = false;
    loop_io_clear(&k->io, LOOP_WRITE); /* opened as writable: wait for the connect's edge */
    rc = loop_io_wait(&k->io, LOOP_WRITE, deadline_us);
    if (rc == 0)
        rc = sock_error(fd);
    if (rc < 0)
        conn_close(k);
    return rc;
}

/* Connects to the endpoint in use, else to the next ones in turn: nothing
 * was sent, so moving on is safe for any call. */
static int conn_connect(struct etcd_client *c, struct etcd_conn *k, int64_t deadline_us)
{
    int rc = -ECONNREFUSED;
    for (unsigned i = 0; i < c->nendpoints; i++) {
        unsigned ep = c->current;
        rc = conn_dial(k, &c->endpoints[ep], deadline_us);
        if (rc == 0) {
            k->endpoint = ep;
            c->stats.connects++;
            return 0;
        }
        if (rc == -ECANCELED)
            return rc;
        c->stats.connect_failures++;
        move_on(c, ep);
        if (rc == -ETIMEDOUT)
            return rc;
    }
    return rc;
}

static int conn_send(struct etcd_conn *k, const char *data, size_t len, int64_t deadline_us)
{
    while (len > 0) {
        ssize_t n = send(k->fd, data, len, MSG_NOSIGNAL);
        if (n >= 0) {
            data += n;
            len -= (size_t)n;
        } else if (errno == EAGAIN) {
            loop_io_clear(&k->io, LOOP_WRITE);
            int rc = loop_io_wait(&k->io, LOOP_WRITE, deadline_us);
            if (rc < 0)
                return rc;
        } else if (errno != EINTR) {
            return -ECONNRESET;
        }
    }
    return 0;
}

static int conn_feed(struct etcd_conn *k, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&k->parser, data, len);
    if (e == HPE_PAUSED) {
        /* Bytes after the reply are none we asked for. */
        if (llhttp_get_error_pos(&k->parser) != data + len)
            k->stale = true;
        return 0;
    }
    if (e == HPE_OK)
        return 0;
    return k->error ? k->error : -EIO;
}

/* The peer closed: a body that runs to the end of the connection ends
 * here; any other reply was cut short. */
static int conn_eof(struct etcd_conn *k)
{
    k->stale = true;
    if (!k->complete)
        llhttp_finish(&k->parser);
    return k->complete ? 0 : -ECONNRESET;
}

/* Reads what has arrived, parking until something does or the deadline,
 * and feeds it to the parser. */
static int conn_fill(struct etcd_conn *k, int64_t deadline_us)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(k->fd, buf, sizeof(buf), 0);
        if (n > 0)
            return conn_feed(k, buf, (size_t)n);
        if (n == 0)
            return conn_eof(k);
        if (errno == EAGAIN) {
            loop_io_clear(&k->io, LOOP_READ);
            int rc = loop_io_wait(&k->io, LOOP_READ, deadline_us);
            if (rc < 0)
                return rc;
        } else if (errno != EINTR) {
            return -ECONNRESET;
        }
    }
}

/* "POST path" with body, into *buf. */
static int request_format(char **buf, size_t *cap, size_t *len, const char *host, const char *path,
                          const char *body, size_t body_len)
{
    static const char fmt[] = "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n";
    size_t head = sizeof(fmt) + strlen(path) + strlen(host) + 20;
    if (grow(buf, cap, head + body_len) < 0)
        return -ENOMEM;
    int n = snprintf(*buf, *cap, fmt, path, host, body_len);
    memcpy(*buf + n, body, body_len);
    *len = (size_t)n + body_len;
    return 0;
}

/* The reply's document, or the error it carries. A streaming endpoint's
 * reply is one message, {"result": ...} or {"error": ...}. */
static int reply_doc(const struct etcd_conn *k, bool stream, json_t **doc, char *why)
{
    json_t *root = parse_object(k->body, k->body_len);
    int status = k->parser.status_code;
    int rc = 0;
    if (!root) {
        snprintf(why, WHY_CAP, "HTTP %d with a body that is not a JSON object", status);
        rc = -EIO;
    } else if (status != 200 || json_object_get(root, "error")) {
        rc = error_doc(root, why);
    } else if (stream) {
        json_t *result = json_object_get(root, "result");
        rc = json_is_object(result) ? 0 : -EIO;
        *doc = json_incref(result);
    } else {
        *doc = json_incref(root);
    }
    if (rc == -EIO && !why[0])
        snprintf(why, WHY_CAP, "HTTP %d: unexpected reply", status);
    json_decref(root);
    return rc;
}

/* ---- the worker: owns the connection, serves the queue in order ---- */

struct worker {
    struct etcd_client *c;
    struct etcd_conn conn;
    char *out; /* the request being sent */
    size_t out_cap, out_len;
    char why[WHY_CAP];
};

/* The worker destroyed by etcd_client_fini(): its descriptor's watch was
 * already dropped by the loop (a later cleanup runs first). */
static void worker_abandon(void *arg)
{
    struct worker *w = arg;
    if (w->conn.fd >= 0)
        close(w->conn.fd);
    free(w->conn.body);
    free(w->out);
}

static void queue_push(struct etcd_client *c, struct etcd_call *k)
{
    k->next = NULL;
    k->prev = c->tail;
    if (c->tail)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
}

static void queue_remove(struct etcd_client *c, struct etcd_call *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        c->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        c->tail = k->prev;
}

static void call_done(struct etcd_client *c, struct etcd_call *k, int rc, const char *why)
{
    account(c, rc, why);
    k->rc = rc;
    k->done = true;
    loop_wake(k->co, 0);
}

/* Keeps the connection only after a whole exchange: after a timeout etcd
 * may still answer, and the answer would be taken for the next call's.
 * A member that timed out, broke or is unavailable gives way to the next. */
static void worker_after(struct worker *w, int rc)
{
    struct etcd_conn *k = &w->conn;
    bool move = rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EAGAIN;
    if (move)
        move_on(w->c, k->endpoint);
    if (move || !k->complete || k->stale)
        conn_close(k);
}

/* Sends k's request and reads the reply into *doc. */
static int worker_exchange(struct worker *w, struct etcd_call *k, json_t **doc)
{
    struct etcd_client *c = w->c;
    struct etcd_conn *conn = &w->conn;
    int64_t deadline = k->deadline_us;
    bool stream = k->stream;
    int rc = request_format(&w->out, &w->out_cap, &w->out_len, c->endpoints[conn->endpoint].host,
                            k->path, k->body, k->body_len);
    /* From here on k may be abandoned: use only what was copied. */
    conn_expect_reply(conn);
    if (rc == 0)
        rc = conn_send(conn, w->out, w->out_len, deadline);
    while (rc == 0 && !conn->complete)
        rc = conn_fill(conn, deadline);
    if (rc == 0)
        rc = reply_doc(conn, stream, doc, w->why);
    worker_after(w, rc);
    return rc;
}

/* A kept-alive connection is fit for the next call only if nothing came
 * since the last reply: an end (etcd restarted or died), an error, or bytes
 * nobody asked for. The peek sees what the kernel knows even when the loop
 * has not yet told us (a member killed a moment ago); it costs far less
 * than a call failing on a connection that was already closed. */
static bool conn_fit(const struct etcd_conn *k)
{
    char byte;
    return k->fd >= 0 && !k->stale && recv(k->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           errno == EAGAIN;
}

static int worker_serve(struct worker *w, struct etcd_call *k, json_t **doc)
{
    struct etcd_client *c = w->c;
    if (!conn_fit(&w->conn)) {
        conn_close(&w->conn);
        int rc = conn_connect(c, &w->conn, k->deadline_us);
        if (rc < 0)
            return rc;
        if (c->inflight != k)
            return -ECANCELED; /* abandoned while connecting: never sent */
    }
    return worker_exchange(w, k, doc);
}

static void worker_main(void *arg)
{
    struct worker w = {.c = arg, .conn = {.fd = -1}};
    struct etcd_client *c = w.c;
    /* A new coroutine holds only the loop's own cleanup: this one fits. */
    coro_defer(coro_current(), worker_abandon, &w);
    for (;;) {
        struct etcd_call *k = c->head;
        if (!k) {
            c->worker_idle = true;
            loop_park(LOOP_FOREVER);
            c->worker_idle = false;
            continue;
        }
        queue_remove(c, k);
        c->inflight = k;
        json_t *doc = NULL;
        w.why[0] = '\0';
        int rc = worker_serve(&w, k, &doc);
        if (c->inflight == k) { /* the caller still waits */
            if (rc == 0)
                rc = k->decode(doc, k);
            c->inflight = NULL;
            call_done(c, k, rc, k->why ? k->why : w.why[0] ? w.why : NULL);
        }
        json_decref(doc);
    }
}

/* ---- calls ---- */

static int worker_nudge(struct etcd_client *c)
{
    if (!c->worker)
        return loop_spawn(loop_current(), worker_main, c, &c->worker);
    if (c->worker_idle)
        loop_wake(c->worker, 0);
    return 0;
}

/* Queues k and parks until the worker settles it, or the deadline or a
 * cancel comes first (then k is unhooked: the worker drops its reply). */
static int call_wait(struct etcd_client *c, struct etcd_call *k)
{
    if (c->finished)
        return -ECANCELED;
    if (k->deadline_us <= loop_now_us()) {
        account(c, -ETIMEDOUT, NULL);
        return -ETIMEDOUT;
    }
    k->co = coro_current();
    queue_push(c, k);
    int rc = worker_nudge(c);
    if (rc < 0) {
        queue_remove(c, k);
        account(c, rc, NULL);
        return rc;
    }
    /* The worker may have settled k already: a refused connect can fail
     * without ever parking. Only a settled call ends the wait with 0. */
    rc = 0;
    while (!k->done && rc == 0)
        rc = loop_park(k->deadline_us);
    if (k->done)
        return k->rc;
    if (c->inflight == k)
        c->inflight = NULL;
    else
        queue_remove(c, k);
    account(c, rc, NULL);
    return rc;
}

/* Sends body (taken) to path and decodes the reply with k->decode. */
static int call(struct etcd_client *c, struct etcd_call *k, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        account(c, -ENOMEM, NULL);
        return -ENOMEM;
    }
    k->body = text;
    k->body_len = strlen(text);
    int rc = call_wait(c, k);
    free(text);
    return rc;
}

/* The reply's memory goes with a failure. */
static int reply_call(struct etcd_client *c, struct etcd_call *k, json_t *body)
{
    int rc = call(c, k, body);
    if (rc < 0)
        etcd_reply_free(k->out);
    return rc;
}

int etcd_range(struct etcd_client *c, const struct etcd_range_req *req, struct etcd_reply *out,
               int64_t deadline_us)
{
    *out = (struct etcd_reply){0};
    if (!range_ok(req))
        return -EINVAL;
    struct etcd_call k = {.path = "/v3/kv/range",
                          .deadline_us = deadline_us,
                          .decode = decode_range,
                          .req = req,
                          .out = out};
    return reply_call(c, &k, range_json(req));
}

int etcd_txn(struct etcd_client *c, const struct etcd_txn *txn, struct etcd_reply *out,
             int64_t deadline_us)
{
    *out = (struct etcd_reply){0};
    if (!txn_ok(txn))
        return -EINVAL;
    struct etcd_call k = {.path = "/v3/kv/txn",
                          .deadline_us = deadline_us,
                          .decode = decode_txn,
                          .req = txn,
                          .out = out};
    return reply_call(c, &k, txn_json(txn));
}

int etcd_delete(struct etcd_client *c, const struct etcd_delete_req *req, struct etcd_reply *out,
                int64_t deadline_us)
{
    *out = (struct etcd_reply){0};
    if (!key_ok(req->key, req->key_len, req->prefix))
        return -EINVAL;
    struct etcd_call k = {.path = "/v3/kv/deleterange",
                          .deadline_us = deadline_us,
                          .decode = decode_delete,
                          .req = req,
                          .out = out};
    return reply_call(c, &k, delete_json(req));
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

int etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t *id, int64_t *granted_ttl_s,
                     int64_t deadline_us)
{
    struct lease_out out = {0};
    if (ttl_s <= 0)
        return -EINVAL;
    struct etcd_call k = {
        .path = "/v3/lease/grant", .deadline_us = deadline_us, .decode = decode_grant, .out = &out};
    int rc = call(c, &k, lease_json(0, ttl_s));
    *id = rc == 0 ? out.id : 0;
    if (granted_ttl_s)
        *granted_ttl_s = rc == 0 ? out.ttl : 0;
    return rc;
}

int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t *ttl_s, int64_t deadline_us)
{
    struct lease_out out = {0};
    if (id == 0)
        return -EINVAL;
    /* A stream endpoint: the request body's end closes our side of the
     * stream, and etcd answers this one keepalive, then ends the reply. */
    struct etcd_call k = {.path = "/v3/lease/keepalive",
                          .deadline_us = deadline_us,
                          .stream = true,
                          .decode = decode_keepalive,
                          .out = &out};
    int rc = call(c, &k, lease_json(id, 0));
    if (ttl_s)
        *ttl_s = rc == 0 ? out.ttl : 0;
    return rc;
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id, int64_t deadline_us)
{
    if (id == 0)
        return -EINVAL;
    struct etcd_call k = {
        .path = "/v3/lease/revoke", .deadline_us = deadline_us, .decode = decode_revoke};
    return call(c, &k, lease_json(id, 0));
}

void etcd_client_fini(struct etcd_client *c)
{
    struct etcd_call *pending = c->inflight;
    if (c->worker)
        coro_destroy(c->worker);
    c->worker = NULL;
    c->finished = true;
    /* Unhook everything before waking anyone: a caller woken from here
     * runs at once when we are outside the loop. */
    if (pending)
        pending->next = c->head;
    else
        pending = c->head;
    c->inflight = c->head = c->tail = NULL;
    while (pending) {
        struct etcd_call *k = pending;
        pending = k->next; /* k is gone once its caller runs */
        call_done(c, k, -ECANCELED, "client finished");
    }
}

/* ---- watches ---- */

/* The watch's coroutine destroyed while it was open: the loop already
 * dropped the descriptor's watch (a later cleanup runs first). */
static void watch_abandon(void *arg)
{
    struct etcd_watch *w = arg;
    if (w->conn.fd >= 0)
        close(w->conn.fd);
    free(w->conn.body);
    json_decref(w->msg);
    mem_free(&w->mem);
}

void etcd_watch_close(struct etcd_watch *w)
{
    conn_close(&w->conn);
    watch_abandon(w);
    coro_undefer(coro_current(), watch_abandon, w);
    *w = (struct etcd_watch){.conn = {.fd = -1}};
}

/* Takes the first line of the body (messages end with '\n'), parsed. */
static int watch_take(struct etcd_watch *w, const char *nl, json_t **msg, char *why)
{
    struct etcd_conn *k = &w->conn;
    size_t len = (size_t)(nl - k->body);
    json_t *root = parse_object(k->body, len);
    memmove(k->body, nl + 1, k->body_len - len - 1);
    k->body_len -= len + 1;
    if (!root)
        return -EIO;
    json_t *result = json_object_get(root, "result");
    int rc = json_object_get(root, "error") ? error_doc(root, why)
             : json_is_object(result)       ? 0
                                            : -EIO;
    *msg = rc == 0 ? json_incref(result) : NULL;
    json_decref(root);
    return rc;
}

/* The next message of the stream: a WatchResponse. */
static int watch_read(struct etcd_watch *w, json_t **msg, int64_t deadline_us, char *why)
{
    struct etcd_conn *k = &w->conn;
    for (;;) {
        if (k->complete && k->parser.status_code != 200) {
            json_t *doc = NULL;
            int rc = reply_doc(k, false, &doc, why);
            json_decref(doc);
            return rc < 0 ? rc : -EIO;
        }
        const char *nl = k->parser.status_code == 200 ? memchr(k->body, '\n', k->body_len) : NULL;
        if (nl)
            return watch_take(w, nl, msg, why);
        if (k->complete)
            return -EPIPE; /* etcd ended the stream */
        int rc = conn_fill(k, deadline_us);
        if (rc < 0)
            return rc;
    }
}

/* A message that cancels the watch ends it: compacted or otherwise. */
static int watch_check(const json_t *msg)
{
    bool canceled;
    int64_t compacted;
    int rc = get_bool(msg, "canceled", &canceled);
    if (rc == 0)
        rc = get_int(msg, "compact_revision", &compacted);
    if (rc == 0 && canceled)
        rc = compacted ? -ERANGE : -EPIPE;
    const json_t *events = json_object_get(msg, "events");
    if (rc == 0 && events && !json_is_array(events))
        rc = -EIO;
    return rc;
}

static json_t *watch_json(const char *key, size_t key_len, bool prefix)
{
    json_t *create = json_object();
    int bad = set_key_range(create, key, key_len, prefix);
    json_t *o = json_object();
    bad |= json_object_set_new(o, "create_request", create);
    return checked(o, bad);
}

/* Sends the create request and waits for etcd to say the watch exists. */
static int watch_start(struct etcd_watch *w, const char *body, int64_t deadline_us, char *why)
{
    struct etcd_client *c = w->client;
    struct etcd_conn *k = &w->conn;
    char *req = NULL;
    size_t cap = 0, len = 0;
    int rc = conn_connect(c, k, deadline_us);
    if (rc == 0)
        rc = request_format(&req, &cap, &len, c->endpoints[k->endpoint].host, "/v3/watch", body,
                            strlen(body));
    conn_expect_reply(k);
    if (rc == 0)
        rc = conn_send(k, req, len, deadline_us);
    free(req);
    json_t *msg = NULL;
    if (rc == 0)
        rc = watch_read(w, &msg, deadline_us, why);
    bool created = false;
    if (rc == 0)
        rc = watch_check(msg);
    if (rc == 0)
        rc = get_bool(msg, "created", &created);
    if (rc == 0)
        rc = created ? decode_revision(msg, &w->revision) : -EIO;
    json_decref(msg);
    return rc;
}

int etcd_watch_open(struct etcd_client *c, struct etcd_watch *w, const char *key, size_t key_len,
                    bool prefix, int64_t deadline_us)
{
    *w = (struct etcd_watch){.client = c, .conn = {.fd = -1}};
    if (!key_ok(key, key_len, prefix))
        return -EINVAL;
    if (c->finished)
        return -ECANCELED;
    json_t *body = watch_json(key, key_len, prefix);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    char why[WHY_CAP] = "";
    /* Registered before the descriptor's own cleanup, so it runs after. */
    int rc = text ? coro_defer(coro_current(), watch_abandon, w) : -ENOMEM;
    if (rc == 0)
        rc = watch_start(w, text, deadline_us, why);
    free(text);
    account(c, rc, why[0] ? why : NULL);
    if (rc < 0)
        etcd_watch_close(w);
    return rc;
}

static int decode_event(const json_t *o, struct etcd_mem **mem, struct etcd_event *ev)
{
    const json_t *type = json_object_get(o, "type");
    const char *name = type ? json_string_value(type) : "PUT"; /* PUT is 0: absent */
    if (!name || (strcmp(name, "PUT") && strcmp(name, "DELETE")))
        return -EIO;
    ev->type = strcmp(name, "PUT") ? ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
    const json_t *kv;
    int rc = get_object(o, "kv", &kv);
    return rc == 0 && kv ? decode_kv(kv, mem, &ev->kv) : -EIO;
}

/* An error other than a quiet deadline or a cancel ends the watch. */
static int watch_fail(struct etcd_watch *w, int rc)
{
    if (rc != -ETIMEDOUT && rc != -ECANCELED) {
        w->failed = rc;
        w->client->stats.watch_errors++;
    }
    return rc;
}

int etcd_watch_next(struct etcd_watch *w, struct etcd_event *ev, int64_t deadline_us)
{
    mem_free(&w->mem);
    *ev = (struct etcd_event){0};
    if (w->failed)
        return w->failed;
    for (;;) {
        const json_t *events = json_object_get(w->msg, "events");
        if (w->next_event < json_array_size(events)) {
            int rc = decode_event(json_array_get(events, w->next_event++), &w->mem, ev);
            return rc < 0 ? watch_fail(w, rc) : 0;
        }
        json_decref(w->msg);
        w->msg = NULL;
        w->next_event = 0;
        char why[WHY_CAP] = "";
        int rc = watch_read(w, &w->msg, deadline_us, why);
        if (rc == 0)
            rc = watch_check(w->msg);
        if (rc < 0)
            return watch_fail(w, rc);
    }
}

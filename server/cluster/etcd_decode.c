/* etcd_decode: replies from the gateway's JSON. See etcd_decode.h.
 *
 * Libraries, and why:
 * - JSON is etcd_json's scanner: a length-bounded text (an HTTP body is
 *   not NUL-terminated) read in place, with no tree built per reply (jansson
 *   did that, and it cost a fifth of a cluster instance's CPU: issue 28).
 * - Base64 is OpenSSL's libcrypto (EVP_EncodeBlock/EVP_DecodeBlock):
 *   one-shot calls on length-bounded input, from a library already on every
 *   machine that builds us (libcurl's -dev package pulls in libssl-dev),
 *   where glibc's b64_pton wants a NUL-terminated string and is a legacy
 *   libresolv export. Its decoder tolerates '=' anywhere and trims white
 *   space, so where padding may stand is checked here before it runs. */
#include "etcd_decode.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "etcd_auth.h"

#define MEM_BLOCK   4096        /* reply memory comes in blocks of this */
#define BYTES_MAX   (64u << 20) /* EVP_DecodeBlock counts in int */
#define MESSAGE_CAP 1024        /* etcd's error messages are a line; longer ones are cut */

/* ---- errors ---- */

/* etcd's gRPC status codes, as errnos (see etcd_decode.h). */
static int grpc_errno(int64_t code)
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
static int error_doc(struct etcd_jv doc, char why[ETCD_WHY_CAP])
{
    struct etcd_jv e = etcd_json_get(doc, "error");
    bool inner = etcd_json_type(e) == ETCD_JSON_OBJECT;
    struct etcd_jv src = inner ? e : doc;
    struct etcd_jv code = etcd_json_get(src, inner ? "grpc_code" : "code");
    char msg[MESSAGE_CAP];
    int64_t n;
    if (etcd_json_type(code) != ETCD_JSON_NUMBER || etcd_json_int(code, &n) < 0 || n < INT32_MIN ||
        n > INT32_MAX ||
        etcd_json_string(etcd_json_get(src, "message"), msg, sizeof(msg), NULL) < 0)
        return -EIO;
    snprintf(why, ETCD_WHY_CAP, "etcd: %.*s", (int)(ETCD_WHY_CAP - sizeof("etcd: ")), msg);
    int token = etcd_auth_errno((int)n, msg);
    return token ? token : grpc_errno(n);
}

/* etcd 3.4's gateway, with etcd's auth on, answers a client certificate
 * that has a CommonName with HTTP 400 and this text, not JSON: it would
 * take the name for the user. A 400 may have no body at all (NULL). */
static bool common_name_refused(const char *body, size_t len, int status)
{
    static const char text[] = "CommonName of client sending a request against gateway";
    return status == 400 && body && memmem(body, len, text, sizeof(text) - 1) != NULL;
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

void etcd_mem_free(struct etcd_mem **head)
{
    while (*head) {
        struct etcd_mem *next = (*head)->next;
        free(*head);
        *head = next;
    }
}

void etcd_reply_free(struct etcd_reply *r)
{
    etcd_mem_free(&r->mem);
    *r = (struct etcd_reply){0};
}

/* ---- base64 ---- */

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
    if (len % 4 != 0 || len > BYTES_MAX ||
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

/* ---- replies from JSON: absent fields are zero, wrong types -EIO ---- */

/* text parsed into json: 0 if it is an object, else -EIO or -ENOMEM. */
static int parse_object(struct etcd_json *json, const char *text, size_t len)
{
    int rc = etcd_json_parse(json, text, len);
    if (rc == 0 && etcd_json_type(etcd_json_root(json)) != ETCD_JSON_OBJECT)
        rc = -EIO;
    return rc;
}

/* A field of bytes in base64; absent: none. */
static int get_bytes(struct etcd_jv v, struct etcd_mem **mem, const char **out, size_t *len)
{
    *out = "";
    *len = 0;
    if (etcd_json_type(v) == ETCD_JSON_NONE)
        return 0;
    if (etcd_json_type(v) != ETCD_JSON_STRING)
        return -EIO;
    size_t cap = etcd_json_string_cap(v), text_len;
    char *text = mem_alloc(mem, cap);
    if (!text)
        return -ENOMEM;
    etcd_json_string(v, text, cap, &text_len);
    return b64_decode(text, text_len, mem, out, len);
}

/* An optional object: absent is fine, another type -EIO. */
static int check_object(struct etcd_jv v)
{
    enum etcd_json_type type = etcd_json_type(v);
    return type == ETCD_JSON_NONE || type == ETCD_JSON_OBJECT ? 0 : -EIO;
}

static int decode_kv(struct etcd_jv o, struct etcd_mem **mem, struct etcd_kv *kv)
{
    if (etcd_json_type(o) != ETCD_JSON_OBJECT)
        return -EIO;
    int rc = get_bytes(etcd_json_get(o, "key"), mem, &kv->key, &kv->key_len);
    if (rc == 0)
        rc = get_bytes(etcd_json_get(o, "value"), mem, &kv->value, &kv->value_len);
    if (rc == 0)
        rc = etcd_json_int(etcd_json_get(o, "create_revision"), &kv->create_revision);
    if (rc == 0)
        rc = etcd_json_int(etcd_json_get(o, "mod_revision"), &kv->mod_revision);
    if (rc == 0)
        rc = etcd_json_int(etcd_json_get(o, "version"), &kv->version);
    if (rc == 0)
        rc = etcd_json_int(etcd_json_get(o, "lease"), &kv->lease);
    return rc;
}

/* A list of kvs (absent: none), or a single one when `one`. */
static int decode_kvs(struct etcd_jv v, bool one, struct etcd_mem **mem, struct etcd_op_result *r)
{
    if (etcd_json_type(v) == ETCD_JSON_NONE)
        return 0;
    if (!one && etcd_json_type(v) != ETCD_JSON_ARRAY)
        return -EIO;
    size_t n = one ? 1 : etcd_json_count(v);
    r->kvs = mem_alloc(mem, n * sizeof(*r->kvs) + 1);
    if (!r->kvs)
        return -ENOMEM;
    struct etcd_jv item = one ? v : etcd_json_first(v);
    for (; r->nkvs < n; r->nkvs++, item = etcd_json_next(item)) {
        int rc = decode_kv(item, mem, &r->kvs[r->nkvs]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Every reply has a header with the store's revision, which is at least 1. */
static int decode_revision(struct etcd_jv doc, int64_t *revision)
{
    struct etcd_jv header = etcd_json_get(doc, "header");
    int rc = check_object(header);
    if (rc == 0)
        rc = etcd_json_int(etcd_json_get(header, "revision"), revision);
    return rc == 0 && *revision > 0 ? 0 : -EIO;
}

static int decode_result(enum etcd_op_type type, struct etcd_jv o, struct etcd_mem **mem,
                         struct etcd_op_result *r)
{
    *r = (struct etcd_op_result){.type = type};
    switch (type) {
    case ETCD_OP_RANGE: {
        int rc = etcd_json_int(etcd_json_get(o, "count"), &r->count);
        if (rc == 0)
            rc = etcd_json_bool(etcd_json_get(o, "more"), &r->more);
        return rc ? rc : decode_kvs(etcd_json_get(o, "kvs"), false, mem, r);
    }
    case ETCD_OP_PUT:
        return decode_kvs(etcd_json_get(o, "prev_kv"), true, mem, r);
    case ETCD_OP_DELETE: {
        int rc = etcd_json_int(etcd_json_get(o, "deleted"), &r->count);
        return rc ? rc : decode_kvs(etcd_json_get(o, "prev_kvs"), false, mem, r);
    }
    }
    return -EIO;
}

/* A reply with one result (range, deleterange) at its top level. */
static int decode_single(struct etcd_jv doc, enum etcd_op_type type, struct etcd_reply *out)
{
    *out = (struct etcd_reply){0};
    int rc = decode_revision(doc, &out->revision);
    if (rc < 0)
        return rc;
    out->ops = mem_alloc(&out->mem, sizeof(*out->ops));
    if (!out->ops)
        return -ENOMEM;
    out->nops = 1;
    return decode_result(type, doc, &out->mem, out->ops);
}

int etcd_decode_range(struct etcd_jv doc, struct etcd_reply *out)
{
    return decode_single(doc, ETCD_OP_RANGE, out);
}

int etcd_decode_delete(struct etcd_jv doc, struct etcd_reply *out)
{
    return decode_single(doc, ETCD_OP_DELETE, out);
}

/* One ResponseOp per op of the branch that ran, of the op's own type. */
static int decode_responses(struct etcd_jv list, const struct etcd_op *ops, size_t n,
                            struct etcd_reply *out)
{
    static const char *const names[] = {"response_range", "response_put", "response_delete_range"};
    enum etcd_json_type type = etcd_json_type(list);
    if ((type != ETCD_JSON_NONE && type != ETCD_JSON_ARRAY) || etcd_json_count(list) != n)
        return -EIO;
    out->ops = mem_alloc(&out->mem, n * sizeof(*out->ops) + 1);
    if (!out->ops)
        return -ENOMEM;
    struct etcd_jv item = etcd_json_first(list);
    for (; out->nops < n; out->nops++, item = etcd_json_next(item)) {
        const struct etcd_op *op = &ops[out->nops];
        struct etcd_jv r = etcd_json_get(item, names[op->type]);
        int rc = etcd_json_type(r) == ETCD_JSON_OBJECT ? 0 : -EIO;
        if (rc == 0)
            rc = decode_result(op->type, r, &out->mem, &out->ops[out->nops]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int etcd_decode_txn(struct etcd_jv doc, const struct etcd_txn *t, struct etcd_reply *out)
{
    *out = (struct etcd_reply){0};
    int rc = decode_revision(doc, &out->revision);
    if (rc == 0)
        rc = etcd_json_bool(etcd_json_get(doc, "succeeded"), &out->succeeded);
    if (rc < 0)
        return rc;
    struct etcd_jv list = etcd_json_get(doc, "responses");
    return out->succeeded ? decode_responses(list, t->success, t->nsuccess, out)
                          : decode_responses(list, t->failure, t->nfailure, out);
}

/* A lease's reply: a header, then "ID" and "TTL" (absent: 0). */
static int decode_lease(struct etcd_jv doc, int64_t *id, int64_t *ttl_s)
{
    int64_t revision;
    int rc = decode_revision(doc, &revision);
    if (rc == 0)
        rc = etcd_json_int(etcd_json_get(doc, "ID"), id);
    if (rc == 0)
        rc = etcd_json_int(etcd_json_get(doc, "TTL"), ttl_s);
    return rc;
}

int etcd_decode_grant(struct etcd_jv doc, int64_t *id, int64_t *ttl_s)
{
    int rc = decode_lease(doc, id, ttl_s);
    return rc == 0 && (*id == 0 || *ttl_s <= 0) ? -EIO : rc;
}

int etcd_decode_keepalive(struct etcd_jv doc, int64_t *ttl_s, const char **why)
{
    int64_t id;
    int rc = decode_lease(doc, &id, ttl_s);
    if (rc == 0 && *ttl_s <= 0) {
        *why = "etcd: lease expired or unknown";
        rc = -ENOENT;
    }
    return rc;
}

int etcd_decode_header(struct etcd_jv doc, int64_t *revision)
{
    return decode_revision(doc, revision);
}

static const char *const alarm_names[] = {"NONE", "NOSPACE", "CORRUPT"}; /* etcd's enum */
#define ALARM_TYPES (sizeof(alarm_names) / sizeof(alarm_names[0]))

/* One alarm's type, named ("NOSPACE") or numbered (1) as etcd's enum. */
static int alarm_bit(struct etcd_jv v, unsigned *bit)
{
    enum etcd_json_type type = etcd_json_type(v);
    int64_t n = -1;
    if (type == ETCD_JSON_NUMBER && etcd_json_int(v, &n) < 0)
        n = -1; /* a number that is no enum's */
    for (unsigned i = 1; i < ALARM_TYPES; i++)
        if (etcd_json_string_is(v, alarm_names[i]) || n == (int64_t)i) {
            *bit = 1u << i;
            return 0;
        }
    *bit = 0; /* one this build does not know: NONE, or a newer etcd's */
    return type == ETCD_JSON_STRING || type == ETCD_JSON_NUMBER || type == ETCD_JSON_NONE ? 0
                                                                                          : -EIO;
}

/* Adds bit to member's entry (a new one if there is room). */
static void alarm_add(struct etcd_alarms *out, const char *member, unsigned bit)
{
    unsigned i = 0;
    while (i < out->n && strcmp(out->at[i].member, member) != 0)
        i++;
    if (i == ETCD_ALARM_MEMBERS)
        return;
    if (i == out->n) {
        snprintf(out->at[i].member, sizeof(out->at[i].member), "%s", member);
        out->at[out->n++].bits = 0;
    }
    out->at[i].bits |= bit;
}

/* etcd 3.4's gateway writes no header in this reply: {"alarms": [...]},
 * and {} when there is none. (The decoder before etcd_json asked for the
 * header's revision and passed only on what its uninitialised variable
 * held.) */
int etcd_decode_alarms(struct etcd_jv doc, struct etcd_alarms *out)
{
    struct etcd_jv list = etcd_json_get(doc, "alarms");
    enum etcd_json_type type = etcd_json_type(list);
    int rc = check_object(etcd_json_get(doc, "header"));
    *out = (struct etcd_alarms){0};
    if (rc == 0 && type != ETCD_JSON_NONE && type != ETCD_JSON_ARRAY)
        rc = -EIO;
    for (struct etcd_jv item = etcd_json_first(list);
         rc == 0 && etcd_json_type(item) != ETCD_JSON_NONE; item = etcd_json_next(item)) {
        unsigned bit = 0;
        char member[sizeof(out->at[0].member)];
        rc = etcd_json_type(item) == ETCD_JSON_OBJECT
                 ? alarm_bit(etcd_json_get(item, "alarm"), &bit)
                 : -EIO;
        bool named =
            etcd_json_string(etcd_json_get(item, "memberID"), member, sizeof(member), NULL) == 0;
        out->all |= rc == 0 ? bit : 0;
        if (rc == 0 && bit && named)
            alarm_add(out, member, bit);
    }
    return rc;
}

void etcd_alarm_names(unsigned mask, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned i = 1; i < ALARM_TYPES && len < cap; i++)
        if (mask & (1u << i))
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? " " : "", alarm_names[i]);
}

/* ---- documents ---- */

/* The reply's document, or the error it carries. A streaming endpoint's
 * reply is one message, {"result": ...} or {"error": ...}. */
int etcd_decode_doc(const char *body, size_t len, int status, bool stream, struct etcd_json *json,
                    struct etcd_jv *doc, char why[ETCD_WHY_CAP])
{
    int rc = parse_object(json, body, len);
    struct etcd_jv root = etcd_json_root(json);
    *doc = (struct etcd_jv){0};
    if (rc == -ENOMEM) {
        snprintf(why, ETCD_WHY_CAP, "no memory to read etcd's reply");
    } else if (rc < 0 && common_name_refused(body, len, status)) {
        snprintf(why, ETCD_WHY_CAP,
                 "etcd's gateway refuses a client certificate with a CommonName while etcd's "
                 "auth is on: use one without");
        rc = -EACCES;
    } else if (rc < 0) {
        snprintf(why, ETCD_WHY_CAP, "HTTP %d with a body that is not a JSON object", status);
    } else if (status != 200 || etcd_json_type(etcd_json_get(root, "error")) != ETCD_JSON_NONE) {
        rc = error_doc(root, why);
    } else if (stream) {
        *doc = etcd_json_get(root, "result");
        rc = etcd_json_type(*doc) == ETCD_JSON_OBJECT ? 0 : -EIO;
    } else {
        *doc = root;
    }
    if (rc == -EIO && !why[0])
        snprintf(why, ETCD_WHY_CAP, "HTTP %d: unexpected reply", status);
    if (rc < 0)
        *doc = (struct etcd_jv){0};
    return rc;
}

int etcd_decode_message(const char *line, size_t len, struct etcd_json *json, struct etcd_jv *msg,
                        char why[ETCD_WHY_CAP])
{
    int rc = parse_object(json, line, len);
    struct etcd_jv root = etcd_json_root(json);
    *msg = (struct etcd_jv){0};
    if (rc < 0)
        return rc;
    struct etcd_jv result = etcd_json_get(root, "result");
    rc = etcd_json_type(etcd_json_get(root, "error")) != ETCD_JSON_NONE ? error_doc(root, why)
         : etcd_json_type(result) == ETCD_JSON_OBJECT                   ? 0
                                                                        : -EIO;
    if (rc == 0)
        *msg = result;
    return rc;
}

/* ---- watch messages ---- */

/* A message that cancels the watch ends it: compacted, refused (etcd
 * 3.4 creates a watch of keys the user's role lacks, then cancels it with
 * this reason) or otherwise. */
int etcd_decode_watch_status(struct etcd_jv msg)
{
    bool canceled;
    int64_t compacted;
    char reason[ETCD_WHY_CAP];
    int rc = etcd_json_bool(etcd_json_get(msg, "canceled"), &canceled);
    if (rc == 0)
        rc = etcd_json_int(etcd_json_get(msg, "compact_revision"), &compacted);
    etcd_json_string(etcd_json_get(msg, "cancel_reason"), reason, sizeof(reason), NULL);
    if (rc == 0 && canceled)
        rc = compacted ? -ERANGE : strstr(reason, "permission denied") ? -EACCES : -EPIPE;
    enum etcd_json_type events = etcd_json_type(etcd_json_get(msg, "events"));
    if (rc == 0 && events != ETCD_JSON_NONE && events != ETCD_JSON_ARRAY)
        rc = -EIO;
    return rc;
}

int etcd_decode_watch_created(struct etcd_jv msg, int64_t *revision)
{
    bool created = false;
    int rc = etcd_decode_watch_status(msg);
    if (rc == 0)
        rc = etcd_json_bool(etcd_json_get(msg, "created"), &created);
    return rc == 0 ? created ? decode_revision(msg, revision) : -EIO : rc;
}

struct etcd_jv etcd_decode_events(struct etcd_jv msg)
{
    return etcd_json_first(etcd_json_get(msg, "events"));
}

int etcd_decode_event(struct etcd_jv *it, struct etcd_mem **mem, struct etcd_event *ev)
{
    struct etcd_jv o = *it;
    struct etcd_jv type = etcd_json_get(o, "type"); /* PUT is 0: absent */
    *it = etcd_json_next(o);
    *ev = (struct etcd_event){0};
    bool put = etcd_json_type(type) == ETCD_JSON_NONE || etcd_json_string_is(type, "PUT");
    if (!put && !etcd_json_string_is(type, "DELETE"))
        return -EIO;
    ev->type = put ? ETCD_EVENT_PUT : ETCD_EVENT_DELETE;
    struct etcd_jv kv = etcd_json_get(o, "kv");
    return etcd_json_type(kv) == ETCD_JSON_OBJECT ? decode_kv(kv, mem, &ev->kv) : -EIO;
}

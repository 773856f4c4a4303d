/* etcd_decode: replies from the gateway's JSON. See etcd_decode.h.
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
 *   space, so where padding may stand is checked here before it runs. */
#include "etcd_decode.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "etcd_auth.h"

/* jansson recurses once per nesting level and allows 2048 of them: some
 * 100 KiB of stack, more than a coroutine has (CORO_DEFAULT_STACK). etcd's
 * replies nest 6 deep; deeper input is refused before jansson sees it. */
#define JSON_MAX_DEPTH 32
#define MEM_BLOCK      4096        /* reply memory comes in blocks of this */
#define BYTES_MAX      (64u << 20) /* EVP_DecodeBlock counts in int */

/* ---- errors ---- */

/* etcd's gRPC status codes, as errnos (see etcd_decode.h). */
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
static int error_doc(const json_t *doc, char why[ETCD_WHY_CAP])
{
    const json_t *e = json_object_get(doc, "error");
    const json_t *src = json_is_object(e) ? e : doc;
    const json_t *code = json_object_get(src, json_is_object(e) ? "grpc_code" : "code");
    const json_t *msg = json_object_get(src, "message");
    if (!json_is_integer(code) || !json_is_string(msg))
        return -EIO;
    snprintf(why, ETCD_WHY_CAP, "etcd: %s", json_string_value(msg));
    int token = etcd_auth_errno((int)json_integer_value(code), json_string_value(msg));
    return token ? token : grpc_errno(json_integer_value(code));
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

int etcd_decode_int(const json_t *o, const char *name, int64_t *out)
{
    return get_int(o, name, out);
}

json_t *etcd_decode_object(const char *s, size_t n)
{
    return parse_object(s, n);
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
static int decode_single(const json_t *doc, enum etcd_op_type type, struct etcd_reply *out)
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

int etcd_decode_range(const json_t *doc, struct etcd_reply *out)
{
    return decode_single(doc, ETCD_OP_RANGE, out);
}

int etcd_decode_delete(const json_t *doc, struct etcd_reply *out)
{
    return decode_single(doc, ETCD_OP_DELETE, out);
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

int etcd_decode_txn(const json_t *doc, const struct etcd_txn *t, struct etcd_reply *out)
{
    *out = (struct etcd_reply){0};
    int rc = decode_revision(doc, &out->revision);
    if (rc == 0)
        rc = get_bool(doc, "succeeded", &out->succeeded);
    if (rc < 0)
        return rc;
    const json_t *list = json_object_get(doc, "responses");
    return out->succeeded ? decode_responses(list, t->success, t->nsuccess, out)
                          : decode_responses(list, t->failure, t->nfailure, out);
}

/* A lease's reply: a header, then "ID" and "TTL" (absent: 0). */
static int decode_lease(const json_t *doc, int64_t *id, int64_t *ttl_s)
{
    int64_t revision;
    int rc = decode_revision(doc, &revision);
    if (rc == 0)
        rc = get_int(doc, "ID", id);
    if (rc == 0)
        rc = get_int(doc, "TTL", ttl_s);
    return rc;
}

int etcd_decode_grant(const json_t *doc, int64_t *id, int64_t *ttl_s)
{
    int rc = decode_lease(doc, id, ttl_s);
    return rc == 0 && (*id == 0 || *ttl_s <= 0) ? -EIO : rc;
}

int etcd_decode_keepalive(const json_t *doc, int64_t *ttl_s, const char **why)
{
    int64_t id;
    int rc = decode_lease(doc, &id, ttl_s);
    if (rc == 0 && *ttl_s <= 0) {
        *why = "etcd: lease expired or unknown";
        rc = -ENOENT;
    }
    return rc;
}

int etcd_decode_header(const json_t *doc, int64_t *revision)
{
    return decode_revision(doc, revision);
}

static const char *const alarm_names[] = {"NONE", "NOSPACE", "CORRUPT"}; /* etcd's enum */
#define ALARM_TYPES (sizeof(alarm_names) / sizeof(alarm_names[0]))

/* One alarm's type, named ("NOSPACE") or numbered (1) as etcd's enum. */
static int alarm_bit(const json_t *v, unsigned *bit)
{
    for (unsigned i = 1; i < ALARM_TYPES; i++)
        if ((json_is_string(v) && strcmp(json_string_value(v), alarm_names[i]) == 0) ||
            (json_is_integer(v) && json_integer_value(v) == (json_int_t)i)) {
            *bit = 1u << i;
            return 0;
        }
    *bit = 0; /* one this build does not know: NONE, or a newer etcd's */
    return json_is_string(v) || json_is_integer(v) || !v ? 0 : -EIO;
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

int etcd_decode_alarms(const json_t *doc, struct etcd_alarms *out)
{
    int64_t revision;
    const json_t *list = json_object_get(doc, "alarms");
    int rc = decode_revision(doc, &revision);
    *out = (struct etcd_alarms){0};
    if (rc == 0 && list && !json_is_array(list))
        rc = -EIO;
    for (size_t i = 0; rc == 0 && list && i < json_array_size(list); i++) {
        unsigned bit = 0;
        const json_t *item = json_array_get(list, i);
        rc = json_is_object(item) ? alarm_bit(json_object_get(item, "alarm"), &bit) : -EIO;
        const char *member = rc == 0 ? json_string_value(json_object_get(item, "memberID")) : NULL;
        out->all |= rc == 0 ? bit : 0;
        if (bit && member)
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
int etcd_decode_doc(const char *body, size_t len, int status, bool stream, json_t **doc,
                    char why[ETCD_WHY_CAP])
{
    json_t *root = parse_object(body, len);
    int rc = 0;
    *doc = NULL;
    if (!root && common_name_refused(body, len, status)) {
        snprintf(why, ETCD_WHY_CAP,
                 "etcd's gateway refuses a client certificate with a CommonName while etcd's "
                 "auth is on: use one without");
        rc = -EACCES;
    } else if (!root) {
        snprintf(why, ETCD_WHY_CAP, "HTTP %d with a body that is not a JSON object", status);
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
        snprintf(why, ETCD_WHY_CAP, "HTTP %d: unexpected reply", status);
    json_decref(root);
    return rc;
}

int etcd_decode_message(const char *line, size_t len, json_t **msg, char why[ETCD_WHY_CAP])
{
    json_t *root = parse_object(line, len);
    *msg = NULL;
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

void etcd_decode_drop(json_t *doc)
{
    json_decref(doc);
}

/* ---- watch messages ---- */

/* A message that cancels the watch ends it: compacted, refused (etcd
 * 3.4 creates a watch of keys the user's role lacks, then cancels it with
 * this reason) or otherwise. */
int etcd_decode_watch_status(const json_t *msg)
{
    bool canceled;
    int64_t compacted;
    int rc = get_bool(msg, "canceled", &canceled);
    if (rc == 0)
        rc = get_int(msg, "compact_revision", &compacted);
    const char *reason = json_string_value(json_object_get(msg, "cancel_reason"));
    if (rc == 0 && canceled)
        rc = compacted ? -ERANGE : reason && strstr(reason, "permission denied") ? -EACCES : -EPIPE;
    const json_t *events = json_object_get(msg, "events");
    if (rc == 0 && events && !json_is_array(events))
        rc = -EIO;
    return rc;
}

int etcd_decode_watch_created(const json_t *msg, int64_t *revision)
{
    bool created = false;
    int rc = etcd_decode_watch_status(msg);
    if (rc == 0)
        rc = get_bool(msg, "created", &created);
    return rc == 0 ? created ? decode_revision(msg, revision) : -EIO : rc;
}

size_t etcd_decode_nevents(const json_t *msg)
{
    return json_array_size(json_object_get(msg, "events"));
}

int etcd_decode_event(const json_t *msg, size_t i, struct etcd_mem **mem, struct etcd_event *ev)
{
    const json_t *o = json_array_get(json_object_get(msg, "events"), i);
    const json_t *type = json_object_get(o, "type");
    const char *name = type ? json_string_value(type) : "PUT"; /* PUT is 0: absent */
    *ev = (struct etcd_event){0};
    if (!name || (strcmp(name, "PUT") && strcmp(name, "DELETE")))
        return -EIO;
    ev->type = strcmp(name, "PUT") ? ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
    const json_t *kv;
    int rc = get_object(o, "kv", &kv);
    return rc == 0 && kv ? decode_kv(kv, mem, &ev->kv) : -EIO;
}

/* etcd: the calls, each an encoder, a path and a decoder. See etcd.h. */
#include "etcd.h"

#include <errno.h>
#include <stdlib.h>

/* Sends text (taken) to path: the reply is decoded by decode into out. A
 * request that could not be encoded for want of memory is a failed call;
 * bad arguments (-EINVAL) are not calls at all. */
static int make_call(struct etcd_client *c, const char *path, int encoded, char *text, bool stream,
                     etcd_decode_fn *decode, void *out, int64_t deadline_us)
{
    if (encoded == -ENOMEM)
        etcd_client_account(c, encoded, NULL);
    if (encoded < 0)
        return encoded;
    struct etcd_call call = {.path = path,
                             .body = text,
                             .deadline_us = deadline_us,
                             .stream = stream,
                             .decode = decode,
                             .out = out};
    int rc = etcd_client_call(c, &call);
    free(text);
    return rc;
}

/* ---- kv ---- */

static int decode_range(struct etcd_jv doc, void *out, const char **why)
{
    (void)why;
    return etcd_decode_range(doc, out);
}

static int decode_delete(struct etcd_jv doc, void *out, const char **why)
{
    (void)why;
    return etcd_decode_delete(doc, out);
}

struct txn_out {
    const struct etcd_txn *txn;
    struct etcd_reply *reply;
};

static int decode_txn(struct etcd_jv doc, void *out, const char **why)
{
    struct txn_out *t = out;
    (void)why;
    return etcd_decode_txn(doc, t->txn, t->reply);
}

/* A call whose result is a reply: zeroed first, its memory freed on a
 * failure. */
static int kv_call(struct etcd_client *c, const char *path, int encoded, char *text,
                   etcd_decode_fn *decode, void *arg, struct etcd_reply *out, int64_t deadline_us)
{
    *out = (struct etcd_reply){0};
    int rc = make_call(c, path, encoded, text, false, decode, arg, deadline_us);
    if (rc < 0)
        etcd_reply_free(out);
    return rc;
}

int etcd_range(struct etcd_client *c, const struct etcd_range_req *req, struct etcd_reply *out,
               int64_t deadline_us)
{
    char *text;
    int encoded = etcd_encode_range(req, &text);
    return kv_call(c, "/v3/kv/range", encoded, text, decode_range, out, out, deadline_us);
}

int etcd_txn(struct etcd_client *c, const struct etcd_txn *txn, struct etcd_reply *out,
             int64_t deadline_us)
{
    char *text;
    int encoded = etcd_encode_txn(txn, &text);
    struct txn_out t = {txn, out};
    return kv_call(c, "/v3/kv/txn", encoded, text, decode_txn, &t, out, deadline_us);
}

int etcd_delete(struct etcd_client *c, const struct etcd_delete_req *req, struct etcd_reply *out,
                int64_t deadline_us)
{
    char *text;
    int encoded = etcd_encode_delete(req, &text);
    return kv_call(c, "/v3/kv/deleterange", encoded, text, decode_delete, out, out, deadline_us);
}

/* ---- leases ---- */

struct lease_out {
    int64_t id, ttl;
};

static int decode_grant(struct etcd_jv doc, void *out, const char **why)
{
    struct lease_out *l = out;
    (void)why;
    return etcd_decode_grant(doc, &l->id, &l->ttl);
}

static int decode_keepalive(struct etcd_jv doc, void *out, const char **why)
{
    struct lease_out *l = out;
    return etcd_decode_keepalive(doc, &l->ttl, why);
}

/* A reply whose header is all there is (revoke, compaction). */
static int decode_header_only(struct etcd_jv doc, void *out, const char **why)
{
    int64_t revision;
    (void)out;
    (void)why;
    return etcd_decode_header(doc, &revision);
}

int etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t *id, int64_t *granted_ttl_s,
                     int64_t deadline_us)
{
    struct lease_out out = {0};
    char *text = NULL;
    int encoded = ttl_s > 0 ? etcd_encode_lease(0, ttl_s, &text) : -EINVAL;
    int rc = make_call(c, "/v3/lease/grant", encoded, text, false, decode_grant, &out, deadline_us);
    *id = rc == 0 ? out.id : 0;
    if (granted_ttl_s)
        *granted_ttl_s = rc == 0 ? out.ttl : 0;
    return rc;
}

int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t *ttl_s, int64_t deadline_us)
{
    struct lease_out out = {0};
    char *text = NULL;
    int encoded = id ? etcd_encode_lease(id, 0, &text) : -EINVAL;
    /* A stream endpoint: the request body's end closes our side of the
     * stream, and etcd answers this one keepalive, then ends the reply. */
    int rc = make_call(c, "/v3/lease/keepalive", encoded, text, true, decode_keepalive, &out,
                       deadline_us);
    if (ttl_s)
        *ttl_s = rc == 0 ? out.ttl : 0;
    return rc;
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id, int64_t deadline_us)
{
    char *text = NULL;
    int encoded = id ? etcd_encode_lease(id, 0, &text) : -EINVAL;
    return make_call(c, "/v3/lease/revoke", encoded, text, false, decode_header_only, NULL,
                     deadline_us);
}

/* ---- maintenance ---- */

static int decode_alarms(struct etcd_jv doc, void *out, const char **why)
{
    (void)why;
    return etcd_decode_alarms(doc, out);
}

int etcd_compact(struct etcd_client *c, int64_t revision, int64_t deadline_us)
{
    char *text;
    int encoded = etcd_encode_compact(revision, &text);
    return make_call(c, "/v3/kv/compaction", encoded, text, false, decode_header_only, NULL,
                     deadline_us);
}

int etcd_alarms(struct etcd_client *c, struct etcd_alarms *alarms, int64_t deadline_us)
{
    char *text;
    int encoded = etcd_encode_alarm_list(&text);
    *alarms = (struct etcd_alarms){0};
    return make_call(c, "/v3/maintenance/alarm", encoded, text, false, decode_alarms, alarms,
                     deadline_us);
}

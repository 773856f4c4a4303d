/* members: this instance in etcd, and the list of the live ones. See
 * members.h. */
#include "members.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMBERS_DIR "members/"

static void key_of(const struct cluster *c, const char *id, char *key, size_t cap)
{
    snprintf(key, cap, "%s" MEMBERS_DIR "%s", c->prefix, id);
}

int members_register(struct etcd_client *ec, const struct cluster *c, const struct members_self *me,
                     int64_t lease, int64_t deadline_us)
{
    char key[CLUSTER_KEY_MAX];
    key_of(c, c->self, key, sizeof(key));
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:I}", "addr", me->addr, "admin", me->admin,
                            "version", TURNSTILE_VERSION, "started_us", (json_int_t)me->started_us,
                            "loops", (json_int_t)me->loops);
    char *value = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!value)
        return -ENOMEM;
    struct etcd_op put = {.type = ETCD_OP_PUT,
                          .put = {.key = key,
                                  .key_len = strlen(key),
                                  .value = value,
                                  .value_len = strlen(value),
                                  .lease = lease}};
    struct etcd_txn txn = {.success = &put, .nsuccess = 1};
    struct etcd_reply r;
    int rc = etcd_txn(ec, &txn, &r, deadline_us);
    etcd_reply_free(&r);
    free(value);
    return rc;
}

static void copy_str(struct etcd_jv doc, const char *name, char *out, size_t cap)
{
    etcd_json_string(etcd_json_get(doc, name), out, cap, NULL); /* not a string: "" */
}

/* The rest of a member from its value, as far as it can be read (a value
 * that is not an object gives nothing). */
static void member_fields(struct etcd_jv doc, struct cluster_view_member *m)
{
    int64_t started = 0, loops = 0;
    copy_str(doc, "addr", m->addr, sizeof(m->addr));
    copy_str(doc, "admin", m->admin, sizeof(m->admin));
    copy_str(doc, "version", m->version, sizeof(m->version));
    if (etcd_json_int(etcd_json_get(doc, "started_us"), &started) == 0)
        m->started_us = started;
    if (etcd_json_int(etcd_json_get(doc, "loops"), &loops) == 0 && loops > 0)
        m->loops = (uint64_t)loops;
}

/* One member from its key and value: the id from the key, the rest from
 * the value. */
static void member_of(const struct etcd_kv *kv, size_t dir_len, struct cluster_view_member *m)
{
    struct etcd_json json = {0};
    *m = (struct cluster_view_member){0};
    snprintf(m->id, sizeof(m->id), "%.*s", (int)(kv->key_len - dir_len), kv->key + dir_len);
    if (etcd_json_parse(&json, kv->value, kv->value_len) == 0)
        member_fields(etcd_json_root(&json), m);
    etcd_json_free(&json);
}

int members_read(struct etcd_client *ec, const struct cluster *c, struct cluster_view *v,
                 int64_t deadline_us)
{
    char dir[CLUSTER_KEY_MAX];
    key_of(c, "", dir, sizeof(dir));
    struct etcd_range_req req = {
        .key = dir, .key_len = strlen(dir), .prefix = true, .limit = CLUSTER_VIEW_MEMBERS};
    struct etcd_reply r;
    int rc = etcd_range(ec, &req, &r, deadline_us);
    if (rc < 0)
        return rc;
    const struct etcd_op_result *res = &r.ops[0];
    v->nmembers = res->count > 0 ? (uint64_t)res->count : 0;
    v->nlisted = 0;
    for (size_t i = 0; i < res->nkvs && v->nlisted < CLUSTER_VIEW_MEMBERS; i++)
        member_of(&res->kvs[i], req.key_len, &v->members[v->nlisted++]);
    etcd_reply_free(&r);
    return 0;
}

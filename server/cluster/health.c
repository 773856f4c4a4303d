/* health: etcd's status and alarms. See health.h. */
#include "health.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* A string field; member ids are among them: unsigned 64-bit numbers,
 * which the gateway writes as decimal strings (past int64: kept so). */
static void copy_id(const json_t *o, const char *name, char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(o, name));
    snprintf(out, cap, "%s", s ? s : "");
}

static uint64_t size_of(const json_t *doc, const char *name, int *rc)
{
    int64_t n = 0;
    if (etcd_decode_int(doc, name, &n) < 0 || n < 0)
        *rc = -EIO;
    return (uint64_t)(n > 0 ? n : 0);
}

static int decode_status(const struct json_t *doc, void *out, const char **why)
{
    struct cluster_view_etcd *row = out;
    char leader[sizeof(row->member_id)];
    int rc = 0;
    copy_id(json_object_get(doc, "header"), "member_id", row->member_id, sizeof(row->member_id));
    copy_id(doc, "leader", leader, sizeof(leader));
    copy_id(doc, "version", row->version, sizeof(row->version));
    row->leader = row->member_id[0] && strcmp(leader, row->member_id) == 0;
    row->raft_term = size_of(doc, "raftTerm", &rc);
    row->db_size = size_of(doc, "dbSize", &rc);
    row->db_size_in_use = size_of(doc, "dbSizeInUse", &rc);
    if (rc < 0)
        *why = "a status reply of the wrong shape";
    return rc;
}

int health_status(struct etcd_client *ec, struct cluster_view_etcd *row, int64_t deadline_us)
{
    struct etcd_call call = {.path = "/v3/maintenance/status",
                             .body = "{}",
                             .deadline_us = deadline_us,
                             .decode = decode_status,
                             .out = row};
    int rc = etcd_client_call(ec, &call);
    row->reachable = rc == 0;
    snprintf(row->error, sizeof(row->error), "%s", rc == 0 ? "" : etcd_last_error(ec));
    if (rc < 0)
        row->leader = false;
    return rc;
}

struct alarms_out {
    struct cluster_view_etcd *rows;
    unsigned n;
};

/* Appends alarm to the row of member, if it has one. */
static void add_alarm(struct alarms_out *a, const char *member, const char *alarm)
{
    for (unsigned i = 0; i < a->n; i++) {
        char *list = a->rows[i].alarms;
        size_t len = strlen(list);
        if (strcmp(a->rows[i].member_id, member) == 0)
            snprintf(list + len, sizeof(a->rows[i].alarms) - len, "%s%s", len ? " " : "", alarm);
    }
}

static int decode_alarms(const struct json_t *doc, void *out, const char **why)
{
    struct alarms_out *a = out;
    const json_t *list = json_object_get(doc, "alarms"), *item;
    size_t i;
    if (list && !json_is_array(list)) {
        *why = "an alarm reply of the wrong shape";
        return -EIO;
    }
    for (unsigned r = 0; r < a->n; r++)
        a->rows[r].alarms[0] = '\0';
    json_array_foreach(list, i, item)
    {
        const char *member = json_string_value(json_object_get(item, "memberID"));
        const char *alarm = json_string_value(json_object_get(item, "alarm"));
        if (member && alarm && strspn(alarm, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == strlen(alarm))
            add_alarm(a, member, alarm);
    }
    return 0;
}

int health_alarms(struct etcd_client *ec, struct cluster_view_etcd *rows, unsigned nrows,
                  int64_t deadline_us)
{
    struct alarms_out a = {rows, nrows};
    struct etcd_call call = {.path = "/v3/maintenance/alarm",
                             .body = "{\"action\": \"GET\"}",
                             .deadline_us = deadline_us,
                             .decode = decode_alarms,
                             .out = &a};
    return etcd_client_call(ec, &call);
}

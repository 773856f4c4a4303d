/* health: etcd's status and alarms. See health.h. */
#include "health.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A string field; member ids are among them: unsigned 64-bit numbers,
 * which the gateway writes as decimal strings (past int64: kept so). */
static void copy_id(struct etcd_jv o, const char *name, char *out, size_t cap)
{
    etcd_json_string(etcd_json_get(o, name), out, cap, NULL); /* not a string: "" */
}

static uint64_t size_of(struct etcd_jv doc, const char *name, int *rc)
{
    int64_t n = 0;
    if (etcd_json_int(etcd_json_get(doc, name), &n) < 0 || n < 0)
        *rc = -EIO;
    return (uint64_t)(n > 0 ? n : 0);
}

static int decode_status(struct etcd_jv doc, void *out, const char **why)
{
    struct cluster_view_etcd *row = out;
    char leader[sizeof(row->member_id)];
    int rc = 0;
    copy_id(etcd_json_get(doc, "header"), "member_id", row->member_id, sizeof(row->member_id));
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

void health_alarms(const struct etcd_alarms *alarms, struct cluster_view_etcd *rows, unsigned nrows)
{
    for (unsigned r = 0; r < nrows; r++) {
        unsigned bits = 0;
        for (unsigned i = 0; i < alarms->n; i++)
            if (rows[r].member_id[0] && strcmp(alarms->at[i].member, rows[r].member_id) == 0)
                bits |= alarms->at[i].bits;
        etcd_alarm_names(bits, rows[r].alarms, sizeof(rows[r].alarms));
    }
}

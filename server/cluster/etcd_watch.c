/* etcd_watch: a streamed reply, one message a line. See etcd_watch.h. */
#include "etcd_watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The watch's coroutine destroyed while it was open: the loop already
 * dropped the descriptor's watch (a later cleanup runs first). */
static void watch_abandon(void *arg)
{
    struct etcd_watch *w = arg;
    etcd_conn_free(&w->conn);
    etcd_json_free(&w->json);
    etcd_mem_free(&w->mem);
}

bool etcd_watch_abandoned(const struct etcd_watch *w)
{
    return etcd_conn_abandoned(&w->conn, &w->client->endpoints);
}

void etcd_watch_close(struct etcd_watch *w)
{
    etcd_conn_close(&w->conn);
    watch_abandon(w);
    coro_undefer(coro_current(), watch_abandon, w);
    *w = (struct etcd_watch){0};
    etcd_conn_init(&w->conn);
}

/* The next message of the stream: a WatchResponse. Messages end with '\n'.
 * It is read in place: the one before is dropped from the body first. */
static int watch_read(struct etcd_watch *w, struct etcd_jv *msg, int64_t deadline_us,
                      char why[ETCD_WHY_CAP])
{
    struct etcd_conn *conn = &w->conn;
    etcd_conn_consume(conn, w->taken);
    w->taken = 0;
    for (;;) {
        if (conn->complete && conn->status != 200) {
            struct etcd_jv doc;
            int rc = etcd_decode_doc(conn->body, conn->body_len, conn->status, false, &w->json,
                                     &doc, why);
            return rc < 0 ? rc : -EIO;
        }
        /* body is NULL until the first byte of it (memchr must not see that). */
        const char *nl =
            conn->status == 200 && conn->body_len ? memchr(conn->body, '\n', conn->body_len) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - conn->body);
            w->taken = len + 1;
            return etcd_decode_message(conn->body, len, &w->json, msg, why);
        }
        if (conn->complete)
            return -EPIPE; /* etcd ended the stream */
        int rc = etcd_conn_read(conn, deadline_us);
        if (rc < 0)
            return rc;
    }
}

/* Sends the create request (with the token, when etcd's auth is used)
 * and waits for etcd to say the watch exists. */
static int watch_try(struct etcd_watch *w, const char *body, bool expired, int64_t deadline_us,
                     char why[ETCD_WHY_CAP])
{
    struct etcd_conn *conn = &w->conn;
    struct etcd_endpoints *e = &w->client->endpoints;
    int rc = etcd_conn_open(conn, e, deadline_us);
    if (rc == 0)
        rc = etcd_client_login(conn, e, expired, deadline_us);
    if (rc == 0)
        rc = etcd_conn_send(conn, "/v3/watch", body, strlen(body), deadline_us);
    struct etcd_jv msg;
    if (rc == 0)
        rc = watch_read(w, &msg, deadline_us, why);
    if (rc == 0)
        rc = etcd_decode_watch_created(msg, &w->revision);
    if (rc == -EACCES && !why[0] && !conn->why[0] && conn->secure && conn->secure->auth)
        etcd_auth_blame(conn->secure->auth, "permission denied to watch the cluster's keys", why,
                        ETCD_WHY_CAP);
    else if (rc < 0 && !why[0])
        snprintf(why, ETCD_WHY_CAP, "%s", conn->why);
    return rc;
}

/* A token etcd found expired is renewed and the watch asked for again. */
static int watch_start(struct etcd_watch *w, const char *body, int64_t deadline_us,
                       char why[ETCD_WHY_CAP])
{
    bool renews = etcd_client_renews(&w->client->endpoints);
    int rc = watch_try(w, body, false, deadline_us, why);
    if (rc == -EKEYEXPIRED && renews) {
        why[0] = '\0';
        rc = watch_try(w, body, true, deadline_us, why);
    }
    return rc == -EKEYEXPIRED && !renews ? -EACCES : rc; /* no token of ours: a refusal */
}

int etcd_watch_open(struct etcd_client *c, struct etcd_watch *w, const char *key, size_t key_len,
                    bool prefix, int64_t deadline_us)
{
    *w = (struct etcd_watch){.client = c};
    etcd_conn_init(&w->conn);
    char *text = NULL;
    int rc = etcd_encode_watch(key, key_len, prefix, &text);
    if (rc == -EINVAL)
        return rc;
    if (c->finished) {
        free(text);
        return -ECANCELED;
    }
    char why[ETCD_WHY_CAP] = "";
    /* Registered before the descriptor's own cleanup, so it runs after. */
    if (rc == 0)
        rc = coro_defer(coro_current(), watch_abandon, w);
    if (rc == 0)
        rc = watch_start(w, text, deadline_us, why);
    free(text);
    etcd_client_account(c, rc, why[0] ? why : NULL);
    if (rc < 0)
        etcd_watch_close(w);
    return rc;
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
    etcd_mem_free(&w->mem);
    *ev = (struct etcd_event){0};
    if (w->failed)
        return w->failed;
    for (;;) {
        if (etcd_json_type(w->next_event) != ETCD_JSON_NONE) {
            int rc = etcd_decode_event(&w->next_event, &w->mem, ev);
            return rc < 0 ? watch_fail(w, rc) : 0;
        }
        char why[ETCD_WHY_CAP] = "";
        struct etcd_jv msg;
        int rc = watch_read(w, &msg, deadline_us, why);
        if (rc == 0)
            rc = etcd_decode_watch_status(msg);
        if (rc < 0)
            return watch_fail(w, rc);
        w->next_event = etcd_decode_events(msg);
    }
}

/* etcd_client: the call queue and its courier. See etcd_client.h.
 *
 * A call lives on its caller's stack (struct etcd_call) while the caller
 * is parked; the courier coroutine owns the connection and every buffer it
 * reads into or writes from. A caller that gives up (deadline, cancel)
 * unhooks its call; the courier never touches a call after that, and
 * simply drops the reply. */
#include "etcd_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "errlog.h"
#include "etcd_auth.h"

#define LOGIN_POLL_US 2000 /* while another client logs in */

/* ---- errors and statistics ---- */

static enum etcd_err_kind err_kind(int rc)
{
    switch (-rc) {
    case ETIMEDOUT:
        return ETCD_ERR_TIMEOUT;
    case ECANCELED:
        return ETCD_ERR_CANCELED;
    case ECONNRESET:
    case EPIPE: /* a watch's stream ended before etcd said it was created */
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
    case EKEYEXPIRED:
        return ETCD_ERR_ETCD;
    case ENOMEM:
    case EMFILE:
    case ENFILE:
        return ETCD_ERR_LOCAL;
    default: /* what connect(2) says */
        return ETCD_ERR_CONNECT;
    }
}

void etcd_client_account(struct etcd_client *c, int rc, const char *why)
{
    c->stats.calls++;
    c->last_result = rc;
    etcd_secure_note(c->endpoints.secure, c, rc, why);
    errlog_note(errlog_process(), rc, why, loop_clock_us()); /* a run of one error is told */
    if (rc == 0) {
        c->stats.ok++;
        return;
    }
    c->stats.errors[err_kind(rc)]++;
    snprintf(c->last_error, sizeof(c->last_error), "%s", why ? why : strerror(-rc));
}

int etcd_client_init(struct etcd_client *c, const char *endpoints)
{
    *c = (struct etcd_client){0};
    list_init(&c->calls);
    return etcd_endpoints_parse(&c->endpoints, endpoints);
}

void etcd_client_secure(struct etcd_client *c, struct etcd_secure *secure)
{
    c->endpoints.secure = secure;
}

/* ---- etcd's auth ---- */

/* etcd's refusals of a user: a wrong password (3), auth not enabled (9),
 * and whatever else it has to say but "unavailable". */
static bool login_refused(int rc)
{
    return rc == -EINVAL || rc == -EREMOTEIO || rc == -EACCES;
}

/* POSTs the user and password over conn; the token becomes the one to send
 * unless the one numbered `used` was replaced meanwhile. */
static int authenticate(struct etcd_conn *conn, struct etcd_auth *a, uint64_t used,
                        int64_t deadline_us)
{
    char *body = etcd_auth_request(a);
    if (!body)
        return -ENOMEM;
    int rc = etcd_conn_exchange(conn, ETCD_AUTH_PATH, body, strlen(body), deadline_us);
    etcd_auth_request_free(body);
    etcd_conn_forget_request(conn);
    if (rc < 0)
        return rc; /* the connection's, TLS's refusal included: conn->why says it */
    struct etcd_json json = {0};
    struct etcd_jv doc;
    char cause[ETCD_WHY_CAP] = "";
    rc = etcd_decode_doc(conn->body, conn->body_len, conn->status, false, &json, &doc, cause);
    if (rc == 0 && etcd_auth_accept(a, doc, used) < 0) {
        snprintf(cause, sizeof(cause), "etcd's answer holds no token");
        rc = -EIO;
    }
    etcd_json_free(&json);
    if (login_refused(rc)) {
        etcd_auth_blame(a, cause, conn->why, sizeof(conn->why));
        rc = -EACCES;
    } else if (rc < 0 && cause[0]) {
        snprintf(conn->why, sizeof(conn->why), "%s", cause);
    }
    return rc;
}

/* Parks while another client (of any loop) logs in: 0 once a token other
 * than the one numbered `seen` is there (conn takes it), 1 when this one
 * may log in itself, or -ETIMEDOUT, -ECANCELED. The other may be on
 * another thread, so this polls, briefly, rather than waits on a queue. */
static int login_turn(struct etcd_conn *conn, struct etcd_auth *a, uint64_t seen,
                      int64_t deadline_us)
{
    char token[ETCD_AUTH_TOKEN_CAP];
    while (!etcd_auth_login_begin(a, loop_now_us(), deadline_us)) {
        if (loop_now_us() >= deadline_us)
            return -ETIMEDOUT;
        int rc = loop_sleep_us(LOGIN_POLL_US);
        if (rc < 0)
            return rc;
        uint64_t current = etcd_auth_token(a, token, sizeof(token));
        if (token[0] && current != seen) {
            etcd_conn_set_token(conn, token, current);
            return 0;
        }
    }
    return 1;
}

bool etcd_client_renews(const struct etcd_endpoints *e)
{
    return e->secure && e->secure->auth;
}

int etcd_client_login(struct etcd_conn *conn, struct etcd_endpoints *e, bool expired,
                      int64_t deadline_us)
{
    struct etcd_auth *a = conn->secure ? conn->secure->auth : NULL;
    if (!a)
        return 0;
    char token[ETCD_AUTH_TOKEN_CAP];
    uint64_t used = conn->token_generation;
    uint64_t current = etcd_auth_token(a, token, sizeof(token));
    if (token[0] && !(expired && current == used)) {
        etcd_conn_set_token(conn, token, current);
        return 0;
    }
    int rc = login_turn(conn, a, current, deadline_us);
    if (rc <= 0)
        return rc;
    uint64_t now = etcd_auth_token(a, token, sizeof(token)); /* renewed before our turn? */
    if (token[0] && now != current) {
        etcd_auth_login_done(a);
        etcd_conn_set_token(conn, token, now);
        return 0;
    }
    etcd_conn_set_token(conn, "", current);
    rc = authenticate(conn, a, current, deadline_us);
    etcd_auth_login_done(a);
    etcd_conn_settle(conn, e, rc);
    if (rc == 0) {
        current = etcd_auth_token(a, token, sizeof(token));
        etcd_conn_set_token(conn, token, current);
    }
    return rc;
}

const char *etcd_endpoint(const struct etcd_client *c)
{
    return c->endpoints.at[c->endpoints.current].url;
}

bool etcd_last_ok(const struct etcd_client *c)
{
    return c->stats.calls > 0 && c->last_result == 0;
}

const char *etcd_last_error(const struct etcd_client *c)
{
    return c->last_error;
}

/* ---- the courier: owns the connection, serves the calls in order ---- */

struct courier {
    struct etcd_client *c;
    struct etcd_conn conn;
    struct etcd_json json; /* the last reply's tokens; its memory serves the next */
    char why[ETCD_WHY_CAP];
};

/* The courier destroyed by etcd_client_fini(): its descriptor's watch was
 * already dropped by the loop (a later cleanup runs first). */
static void courier_abandon(void *arg)
{
    struct courier *cr = arg;
    etcd_conn_free(&cr->conn);
    etcd_json_free(&cr->json);
}

static void call_done(struct etcd_client *c, struct etcd_call *call, int rc, const char *why)
{
    etcd_client_account(c, rc, why);
    call->rc = rc;
    call->done = true;
    loop_wake(call->co, 0);
}

/* Sends call's request and reads the reply's document into *doc (valid
 * until the next exchange: it is read in place, in conn's body). */
static int courier_exchange(struct courier *cr, struct etcd_call *call, struct etcd_jv *doc)
{
    struct etcd_conn *conn = &cr->conn;
    bool stream = call->stream;
    /* call may be abandoned while this parks: the request is copied first,
     * and only what was copied is used. */
    int rc =
        etcd_conn_exchange(conn, call->path, call->body, strlen(call->body), call->deadline_us);
    if (rc == 0)
        rc = etcd_decode_doc(conn->body, conn->body_len, conn->status, stream, &cr->json, doc,
                             cr->why);
    etcd_conn_settle(conn, &cr->c->endpoints, rc);
    return rc;
}

/* One try at call: a connection, a token, the exchange. */
static int courier_try(struct courier *cr, struct etcd_call *call, bool expired,
                       struct etcd_jv *doc)
{
    struct etcd_client *c = cr->c;
    /* The connect and the login park, and the caller may abandon call
     * meanwhile (its memory is the caller's): its deadline is read first,
     * and call is touched again only while it is still in flight. */
    int64_t deadline_us = call->deadline_us;
    int rc = 0;
    cr->why[0] = '\0';
    if (!etcd_conn_fit(&cr->conn) || etcd_conn_abandoned(&cr->conn, &c->endpoints))
        rc = etcd_conn_open(&cr->conn, &c->endpoints, deadline_us);
    if (rc == 0 && c->inflight == call)
        rc = etcd_client_login(&cr->conn, &c->endpoints, expired, deadline_us);
    if (rc == 0 && c->inflight != call)
        return -ECANCELED; /* abandoned while connecting: never sent */
    if (rc == 0)
        rc = courier_exchange(cr, call, doc);
    if (rc < 0 && !cr->why[0])
        snprintf(cr->why, sizeof(cr->why), "%s", cr->conn.why);
    return rc;
}

/* A token etcd found expired is renewed and the call sent again, once: no
 * call fails for it. */
static int courier_serve(struct courier *cr, struct etcd_call *call, struct etcd_jv *doc)
{
    bool renews = etcd_client_renews(&cr->c->endpoints);
    int rc = courier_try(cr, call, false, doc);
    if (rc == -EKEYEXPIRED && renews && cr->c->inflight == call)
        rc = courier_try(cr, call, true, doc);
    return rc == -EKEYEXPIRED && !renews ? -EACCES : rc; /* no token of ours: a refusal */
}

static void courier_main(void *arg)
{
    struct courier cr = {.c = arg};
    struct etcd_client *c = cr.c;
    etcd_conn_init(&cr.conn);
    c->conn = &cr.conn;
    /* A new coroutine holds only the loop's own cleanup: this one fits. */
    coro_defer(coro_current(), courier_abandon, &cr);
    for (;;) {
        struct list_node *next = list_first(&c->calls);
        if (!next) {
            c->courier_idle = true;
            loop_park(LOOP_FOREVER);
            c->courier_idle = false;
            continue;
        }
        struct etcd_call *call = list_entry(next, struct etcd_call, link);
        list_remove(&call->link);
        c->inflight = call;
        struct etcd_jv doc = {0};
        const char *why = NULL;
        int rc = courier_serve(&cr, call, &doc);
        if (rc == -ECANCELED && c->moving)
            rc = -ECONNRESET; /* moved off an abandoned endpoint: the caller may retry */
        c->moving = false;
        if (c->inflight == call) { /* the caller still waits */
            if (rc == 0)
                rc = call->decode(doc, call->out, &why);
            c->inflight = NULL;
            call_done(c, call, rc, why ? why : cr.why[0] ? cr.why : NULL);
        }
    }
}

/* ---- calls ---- */

static int courier_nudge(struct etcd_client *c)
{
    if (!c->courier)
        return loop_spawn(loop_current(), courier_main, c, &c->courier);
    if (c->courier_idle)
        loop_wake(c->courier, 0);
    return 0;
}

void etcd_client_move(struct etcd_client *c)
{
    if (!c->courier || c->courier_idle || !c->conn || !etcd_conn_abandoned(c->conn, &c->endpoints))
        return;
    if (loop_parked(c->courier) && loop_cancel(c->courier) == 0)
        c->moving = true;
}

int etcd_client_call(struct etcd_client *c, struct etcd_call *call)
{
    if (c->finished)
        return -ECANCELED;
    if (call->deadline_us <= loop_now_us()) {
        etcd_client_account(c, -ETIMEDOUT, NULL);
        return -ETIMEDOUT;
    }
    call->co = coro_current();
    call->done = false;
    list_push_back(&c->calls, &call->link);
    int rc = courier_nudge(c);
    if (rc < 0) {
        list_remove(&call->link);
        etcd_client_account(c, rc, NULL);
        return rc;
    }
    /* The courier may have settled call already: a refused connect can fail
     * without ever parking. Only a settled call ends the wait with 0. */
    rc = 0;
    while (!call->done && rc == 0)
        rc = loop_park(call->deadline_us);
    if (call->done)
        return call->rc;
    if (c->inflight == call)
        c->inflight = NULL;
    else
        list_remove(&call->link);
    etcd_client_account(c, rc, NULL);
    return rc;
}

void etcd_client_fini(struct etcd_client *c)
{
    struct list_node pending;
    list_init(&pending);
    if (c->inflight)
        list_push_back(&pending, &c->inflight->link);
    if (c->courier)
        coro_destroy(c->courier);
    c->courier = NULL;
    c->conn = NULL;
    etcd_endpoints_fini(&c->endpoints);
    c->finished = true;
    c->inflight = NULL;
    /* Unhook everything before waking anyone: a caller woken from here
     * runs at once when we are outside the loop. */
    while (!list_empty(&c->calls)) {
        struct list_node *n = list_first(&c->calls);
        list_remove(n);
        list_push_back(&pending, n);
    }
    while (!list_empty(&pending)) {
        struct etcd_call *call = list_entry(list_first(&pending), struct etcd_call, link);
        list_remove(&call->link); /* call is gone once its caller runs */
        call_done(c, call, -ECANCELED, "client finished");
    }
}

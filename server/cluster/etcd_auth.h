/* etcd_auth: etcd's own authentication, for every etcd client of the
 * process: a user, its password (read from a file, never logged), and the
 * token that /v3/auth/authenticate hands out for them, which goes in the
 * Authorization header of every call (the JSON gateway passes it on to
 * etcd as the gRPC "authorization" metadata).
 *
 * One token serves every client on every loop: etcd checks a password with
 * bcrypt (tens of milliseconds of its CPU), so it is asked as seldom as
 * can be. A token expires (etcd's --auth-token-ttl, counted from its last
 * use) and is invalidated by a change of users or roles; the client that
 * sees it refused renews it and sends its call again, so no call fails
 * for it. Tokens are numbered: a client that finds the one it used
 * already replaced by another client's renewal takes the new one instead
 * of asking etcd again.
 *
 * Every function is safe from any thread. */
#ifndef TURNSTILE_ETCD_AUTH_H
#define TURNSTILE_ETCD_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd_json.h"

#define ETCD_AUTH_TOKEN_CAP 1024 /* a simple token is ~20 bytes; a JWT a few hundred */
#define ETCD_AUTH_PATH      "/v3/auth/authenticate"

/* Fields are private. */
struct etcd_auth {
    pthread_mutex_t mu; /* guards everything below */
    char user[256];
    char *password_file;
    char *password; /* NUL-terminated, wiped before it is freed */
    char token[ETCD_AUTH_TOKEN_CAP];
    uint64_t generation;    /* of token; "" (none yet) counts too */
    int64_t login_until_us; /* a login is under way until this deadline; 0: none */
};

/* Reads the password from password_file: its first line, without the line
 * end. Returns 0; what fopen(3) says (-ENOENT, -EACCES...) if it cannot be
 * read; -EINVAL if user is empty or too long, or the file is empty, holds
 * a NUL or more than 1 KiB. why (cap bytes) names the file and the cause,
 * never the password. */
int etcd_auth_init(struct etcd_auth *a, const char *user, const char *password_file, char *why,
                   size_t cap);

/* Reads the password file again (SIGHUP): on success the token is
 * forgotten, so the next call authenticates with the new password; on
 * failure (as etcd_auth_init) nothing changes. */
int etcd_auth_reload(struct etcd_auth *a, char *why, size_t cap);

void etcd_auth_fini(struct etcd_auth *a);

/* Copies the token to send into token (cap >= ETCD_AUTH_TOKEN_CAP; "" when
 * none was obtained yet: authenticate first) and returns its number. */
uint64_t etcd_auth_token(struct etcd_auth *a, char *token, size_t cap);

/* One login at a time for the whole process: at startup every client of
 * every loop finds no token, and as many bcrypt checks at once can keep
 * etcd busy past the calls' deadlines. True if the caller may log in now
 * (none under way, or the one under way passed its deadline, now_us past
 * it): then it must call etcd_auth_login_done() after. */
bool etcd_auth_login_begin(struct etcd_auth *a, int64_t now_us, int64_t deadline_us);
void etcd_auth_login_done(struct etcd_auth *a);

/* The body of a POST to ETCD_AUTH_PATH, malloc'd, or NULL when out of
 * memory. It holds the password: free it with etcd_auth_request_free(). */
char *etcd_auth_request(struct etcd_auth *a);
void etcd_auth_request_free(char *body);

/* Takes the token from a reply of ETCD_AUTH_PATH (its JSON document) and
 * makes it the one to send, unless the token numbered `used` (the one the
 * caller saw refused) was already replaced. Returns 0, or -EIO if doc has
 * no token (or one too long). */
int etcd_auth_accept(struct etcd_auth *a, struct etcd_jv doc, uint64_t used);

/* What etcd's refusal (its gRPC code and message) says of the token:
 * -EKEYEXPIRED, it is no longer good (expired, or issued before a change
 * of users or roles): renew it and send again; -EACCES, none was sent
 * while etcd's auth is on; 0, nothing (the refusal is about the call). */
int etcd_auth_errno(int grpc_code, const char *message);

/* etcd's cause for refusing to authenticate, as a line naming the user
 * and the password file (never the password), into why (cap bytes). */
void etcd_auth_blame(const struct etcd_auth *a, const char *cause, char *why, size_t cap);

#endif

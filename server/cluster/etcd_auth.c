/* etcd_auth: see etcd_auth.h. */
#include "etcd_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define PASSWORD_MAX 1024

/* etcd 3.4's refusals of a token (etcdserver/api/v3rpc/rpctypes): an
 * unknown or expired one is UNAUTHENTICATED (16), "invalid auth token";
 * one issued before a change of users or roles is INVALID_ARGUMENT (3),
 * "revision of auth store is old"; none at all is INVALID_ARGUMENT (3),
 * "user name is empty". */
#define GRPC_INVALID_ARGUMENT 3
#define GRPC_UNAUTHENTICATED  16

static void wipe_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

/* Up to cap - 1 bytes of path into buf, NUL-terminated; read(2) rather
 * than stdio, whose buffer would keep a copy of the password. Returns how
 * many, or a negative errno. */
static ssize_t file_read(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) != 0) {
        if (r < 0 && errno != EINTR) {
            int rc = -errno;
            close(fd);
            return rc;
        }
        n += r > 0 ? (size_t)r : 0;
    }
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* The password: the file's first line, without its end. */
static int password_read(const char *path, char **out, char *why, size_t cap)
{
    char buf[PASSWORD_MAX + 2];
    ssize_t n = file_read(path, buf, sizeof(buf));
    if (n < 0) {
        snprintf(why, cap, "cannot read password file %s: %s", path, strerror((int)-n));
        return (int)n;
    }
    size_t len = strcspn(buf, "\r\n");
    int rc = -EINVAL;
    if (len == 0) {
        snprintf(why, cap, "password file %s is empty", path);
    } else if (len > PASSWORD_MAX || memchr(buf, '\0', (size_t)n)) {
        snprintf(why, cap, "password file %s: not one line of at most %d bytes", path,
                 PASSWORD_MAX);
    } else if (!(*out = strndup(buf, len))) {
        snprintf(why, cap, "out of memory");
        rc = -ENOMEM;
    } else {
        rc = 0;
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

int etcd_auth_init(struct etcd_auth *a, const char *user, const char *password_file, char *why,
                   size_t cap)
{
    *a = (struct etcd_auth){0};
    if (!user[0] || strlen(user) >= sizeof(a->user)) {
        snprintf(why, cap, "an etcd user name of 1 to %zu bytes is needed", sizeof(a->user) - 1);
        return -EINVAL;
    }
    snprintf(a->user, sizeof(a->user), "%s", user);
    a->password_file = strdup(password_file);
    int rc = a->password_file ? password_read(password_file, &a->password, why, cap) : -ENOMEM;
    if (rc < 0) {
        free(a->password_file);
        return rc;
    }
    pthread_mutex_init(&a->mu, NULL);
    return 0;
}

int etcd_auth_reload(struct etcd_auth *a, char *why, size_t cap)
{
    char *fresh = NULL;
    int rc = password_read(a->password_file, &fresh, why, cap);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&a->mu);
    char *old = a->password;
    a->password = fresh;
    a->token[0] = '\0';
    a->generation++;
    pthread_mutex_unlock(&a->mu);
    wipe_free(old);
    return 0;
}

void etcd_auth_fini(struct etcd_auth *a)
{
    pthread_mutex_destroy(&a->mu);
    wipe_free(a->password);
    free(a->password_file);
    explicit_bzero(a->token, sizeof(a->token));
}

uint64_t etcd_auth_token(struct etcd_auth *a, char *token, size_t cap)
{
    pthread_mutex_lock(&a->mu);
    snprintf(token, cap, "%s", a->token);
    uint64_t generation = a->generation;
    pthread_mutex_unlock(&a->mu);
    return generation;
}

bool etcd_auth_login_begin(struct etcd_auth *a, int64_t now_us, int64_t deadline_us)
{
    pthread_mutex_lock(&a->mu);
    bool mine = a->login_until_us <= now_us;
    if (mine)
        a->login_until_us = deadline_us;
    pthread_mutex_unlock(&a->mu);
    return mine;
}

void etcd_auth_login_done(struct etcd_auth *a)
{
    pthread_mutex_lock(&a->mu);
    a->login_until_us = 0;
    pthread_mutex_unlock(&a->mu);
}

/* jansson keeps a copy of the password in the document while it is
 * dumped; it frees it without wiping (it has no hook for one string). */
char *etcd_auth_request(struct etcd_auth *a)
{
    pthread_mutex_lock(&a->mu);
    json_t *doc = json_pack("{s:s, s:s}", "name", a->user, "password", a->password);
    pthread_mutex_unlock(&a->mu);
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return body;
}

void etcd_auth_request_free(char *body)
{
    wipe_free(body);
}

int etcd_auth_accept(struct etcd_auth *a, struct etcd_jv doc, uint64_t used)
{
    char token[sizeof(a->token)];
    size_t len;
    if (etcd_json_string(etcd_json_get(doc, "token"), token, sizeof(token), &len) < 0 || !len ||
        len >= sizeof(token))
        return -EIO;
    pthread_mutex_lock(&a->mu);
    if (a->generation == used) {
        snprintf(a->token, sizeof(a->token), "%s", token);
        a->generation++;
    }
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int etcd_auth_errno(int grpc_code, const char *message)
{
    if (grpc_code == GRPC_UNAUTHENTICATED && strstr(message, "invalid auth token"))
        return -EKEYEXPIRED;
    if (grpc_code == GRPC_INVALID_ARGUMENT && strstr(message, "revision of auth store is old"))
        return -EKEYEXPIRED;
    if (grpc_code == GRPC_INVALID_ARGUMENT && strstr(message, "user name is empty"))
        return -EACCES;
    return 0;
}

/* user and password_file never change after init: no lock. */
void etcd_auth_blame(const struct etcd_auth *a, const char *cause, char *why, size_t cap)
{
    snprintf(why, cap, "etcd refused user %s (password file %s): %s", a->user, a->password_file,
             cause);
}

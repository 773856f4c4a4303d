/* etcd_secure: see etcd_secure.h. */
#include "etcd_secure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"

#define RELOG_US (60 * 1000000LL) /* the same refusal is logged again after this */

static const char *or_null(const char *path)
{
    return path && path[0] ? path : NULL;
}

/* The pairs that make sense alone are for the modules to check; these
 * are the flags that make no sense together. */
static int files_check(const struct etcd_secure_files *f, bool https, char *why, size_t cap)
{
    bool tls_files = or_null(f->cacert) || or_null(f->cert) || or_null(f->key);
    if (tls_files && !https) {
        snprintf(why, cap, "--etcd-cacert, --etcd-cert and --etcd-key need https:// endpoints");
        return -EINVAL;
    }
    if (!or_null(f->user) != !or_null(f->password_file)) {
        snprintf(why, cap, "--etcd-user and --etcd-password-file go together");
        return -EINVAL;
    }
    return 0;
}

static int auth_new(struct etcd_auth **out, const struct etcd_secure_files *f, char *why,
                    size_t cap)
{
    struct etcd_auth *a = malloc(sizeof(*a));
    if (!a) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    int rc = etcd_auth_init(a, f->user, f->password_file, why, cap);
    if (rc < 0) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int etcd_secure_new(struct etcd_secure **out, const struct etcd_secure_files *f, bool https,
                    char *why, size_t cap)
{
    struct etcd_secure *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    int rc = files_check(f, https, why, cap);
    struct tls_files tf = {or_null(f->cacert), or_null(f->cert), or_null(f->key)};
    if (rc == 0 && https)
        rc = tls_ctx_new(&s->tls, &tf, why, cap);
    if (rc == 0 && or_null(f->user))
        rc = auth_new(&s->auth, f, why, cap);
    if (rc < 0) {
        etcd_secure_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int etcd_secure_reload(struct etcd_secure *s, char *why, size_t cap)
{
    int rc = s->tls ? tls_ctx_reload(s->tls, why, cap) : 0;
    char later[ETCD_SECURE_WHY_CAP];
    int auth_rc = s->auth ? etcd_auth_reload(s->auth, later, sizeof(later)) : 0;
    if (rc == 0 && auth_rc < 0) {
        snprintf(why, cap, "%s", later);
        rc = auth_rc;
    }
    return rc;
}

void etcd_secure_free(struct etcd_secure *s)
{
    if (!s)
        return;
    tls_ctx_free(s->tls);
    if (s->auth)
        etcd_auth_fini(s->auth);
    free(s->auth);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

bool etcd_secure_is_refusal(int rc)
{
    return rc == -EACCES || rc == -EKEYREJECTED || rc == -EPROTO;
}

/* What JSON and a log line can hold as is. */
static void tidy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
    for (char *p = dst; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = *p == '"' ? '\'' : *p == '\\' ? '/' : ' ';
}

static void refused(struct etcd_secure *s, const void *who, int rc, const char *why)
{
    char text[ETCD_SECURE_WHY_CAP];
    tidy(text, sizeof(text), why ? why : strerror(-rc));
    int64_t now = loop_now_us();
    pthread_mutex_lock(&s->mu);
    memcpy(s->refusal, text, sizeof(text));
    atomic_store(&s->refused, who);
    bool log = strcmp(text, s->logged) != 0 || now - s->logged_us >= RELOG_US;
    if (log) {
        memcpy(s->logged, text, sizeof(text));
        s->logged_us = now;
    }
    pthread_mutex_unlock(&s->mu);
    if (log)
        log_msg(LOG_LEVEL_ERROR, "cluster: %s; /access answers 503", text);
}

void etcd_secure_note(struct etcd_secure *s, const void *who, int rc, const char *why)
{
    if (!s)
        return;
    if (etcd_secure_is_refusal(rc)) {
        refused(s, who, rc, why);
    } else if (rc == 0 && atomic_load_explicit(&s->refused, memory_order_relaxed) == who) {
        /* The common case, every call on a healthy cluster, takes no lock. */
        pthread_mutex_lock(&s->mu);
        if (atomic_load(&s->refused) == who) {
            s->refusal[0] = '\0';
            s->logged[0] = '\0';
            atomic_store(&s->refused, NULL);
        }
        pthread_mutex_unlock(&s->mu);
    }
}

void etcd_secure_refusal(struct etcd_secure *s, char *buf, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    snprintf(buf, cap, "%s", s->refusal);
    pthread_mutex_unlock(&s->mu);
}

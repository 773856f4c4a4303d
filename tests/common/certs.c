/* certs: see certs.h. */
#include "certs.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* CERTS_SH: the script's path in the source tree (tests/common/meson.build). */

static void print_log(const char *path)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    fprintf(stderr, "certs: %s failed:\n%s\n", CERTS_SH, buf);
}

int certs_make(char *dir, size_t cap)
{
    char cmd[512];
    if (snprintf(dir, cap, "/tmp/certs_XXXXXX") >= (int)cap)
        return -EINVAL;
    if (!mkdtemp(dir))
        return -errno;
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s' > '%s/certs.log' 2>&1", CERTS_SH, dir, dir);
    int status = system(cmd);
    if (status == 0) {
        snprintf(cmd, sizeof(cmd), "%s/certs.log", dir);
        unlink(cmd);
        return 0;
    }
    snprintf(cmd, sizeof(cmd), "%s/certs.log", dir);
    print_log(cmd);
    certs_remove(dir);
    return status < 0 ? -errno : -EIO;
}

void certs_remove(const char *dir)
{
    DIR *d = opendir(dir);
    char name[512];
    for (struct dirent *e; d && (e = readdir(d));) {
        snprintf(name, sizeof(name), "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlink(name);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

const char *certs_path(const char *dir, const char *name)
{
    static char buf[8][128];
    static unsigned next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

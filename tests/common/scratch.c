/* scratch: see scratch.h. */
#include "scratch.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

void scratch_remove(const char *dir)
{
    DIR *d = opendir(dir);
    char name[512];
    for (struct dirent *e; d && (e = readdir(d));) {
        snprintf(name, sizeof(name), "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(name);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

size_t scratch_read(const char *path, void *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, cap);
    ck_assert_int_ge(n, 0);
    close(fd);
    return (size_t)n;
}

/* scratch: see scratch.h. */
#include "scratch.h"

#include <dirent.h>
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

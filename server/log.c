/* log: see log.h. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define ACCESS_BUFFER (64 * 1024)

static enum log_level threshold = LOG_LEVEL_INFO;
static FILE *access_file;
static char *access_buffer;
static char access_path[4096]; /* "-" for stdout */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name)
{
    for (int i = 0; i <= LOG_LEVEL_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(unsigned level)
{
    return level <= LOG_LEVEL_DEBUG ? level_names[level] : "?";
}

void log_set_level(enum log_level level)
{
    __atomic_store_n(&threshold, level, __ATOMIC_RELAXED); /* a reload, read by every loop */
}

bool log_enabled(enum log_level level)
{
    return level <= __atomic_load_n(&threshold, __ATOMIC_RELAXED);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    struct timeval tv;
    struct tm tm;
    char stamp[32];
    va_list ap;
    if (!log_enabled(level))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per part, but stderr is unbuffered: build the line first
     * so concurrent writers (the state thread) never interleave mid-line. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s.%03ldZ %s: ", stamp, (long)tv.tv_usec / 1000,
                     level_names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

/* Opens path with a large buffer of its own; NULL with errno set on
 * failure. stdout keeps the buffer stdio gave it: it outlives the log. */
static FILE *open_buffered(const char *path, char **buffer)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "a");
    if (!f)
        return NULL;
    *buffer = malloc(ACCESS_BUFFER);
    if (*buffer)
        setvbuf(f, *buffer, _IOFBF, ACCESS_BUFFER);
    return f;
}

/* Every loop writes the access log: the file and its path change only
 * under access_mu, and every line is written whole under it. */
static pthread_mutex_t access_mu = PTHREAD_MUTEX_INITIALIZER;

/* Puts f (and its buffer) in place of the file open now, which is
 * flushed and closed; under access_mu. The file is never NULL between
 * the two: loops read it without the lock (log_access_enabled) and would
 * drop the lines of a reopening. */
static void swap_locked(FILE *f, char *buffer)
{
    FILE *old = access_file;
    char *old_buffer = access_buffer;
    __atomic_store_n(&access_file, f, __ATOMIC_RELAXED);
    access_buffer = buffer;
    if (old == stdout)
        fflush(stdout);
    else if (old)
        fclose(old);
    free(old_buffer);
}

/* The new file is open before the old one closes: a path that cannot be
 * opened leaves the log where it was, and every buffered line reaches the
 * old file before it is closed. */
int log_access_open(const char *path)
{
    char *buffer = NULL;
    if (strlen(path) >= sizeof(access_path))
        return -ENAMETOOLONG;
    FILE *f = open_buffered(path, &buffer);
    if (!f)
        return -errno;
    pthread_mutex_lock(&access_mu);
    swap_locked(f, buffer);
    snprintf(access_path, sizeof(access_path), "%s", path);
    pthread_mutex_unlock(&access_mu);
    return 0;
}

int log_access_reopen(void)
{
    char path[sizeof(access_path)];
    pthread_mutex_lock(&access_mu);
    bool reopen = access_file && strcmp(access_path, "-") != 0;
    snprintf(path, sizeof(path), "%s", access_path);
    pthread_mutex_unlock(&access_mu);
    return reopen ? log_access_open(path) : 0;
}

const char *log_access_path(void)
{
    return access_file ? access_path : "";
}

bool log_access_enabled(void)
{
    return __atomic_load_n(&access_file, __ATOMIC_RELAXED) != NULL;
}

void log_access(const char *client, const char *method, const char *path, int minor, int status,
                uint64_t bytes, int64_t wait_us)
{
    static _Thread_local time_t cached_second;
    static _Thread_local char stamp[40];
    time_t now = time(NULL);
    if (now != cached_second) { /* strftime once a second, not per request */
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        cached_second = now;
    }
    pthread_mutex_lock(&access_mu);
    if (access_file) {
        fprintf(access_file, "%s - - [%s] \"%s %s HTTP/1.%d\" %d %llu", client, stamp, method, path,
                minor, status, (unsigned long long)bytes);
        if (wait_us >= 0)
            fprintf(access_file, " wait_ms=%.3f", (double)wait_us / 1000.0);
        fputc('\n', access_file);
    }
    pthread_mutex_unlock(&access_mu);
}

void log_access_flush(void)
{
    pthread_mutex_lock(&access_mu);
    if (access_file)
        fflush(access_file);
    pthread_mutex_unlock(&access_mu);
}

void log_access_close(void)
{
    pthread_mutex_lock(&access_mu);
    swap_locked(NULL, NULL);
    pthread_mutex_unlock(&access_mu);
}

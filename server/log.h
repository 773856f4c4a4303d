/* log: one line per event on stderr, with a level, and an optional access
 * log in Common Log Format plus the lock wait.
 *
 *   2026-11-25T14:41:18.123Z info: stopping: SIGTERM, 3 requests in flight
 *   127.0.0.1 - - [25/Nov/2026:14:41:18 +0000] "GET /access HTTP/1.1" 200 26 wait_ms=1.234
 *
 * The access log is written through a large buffer flushed once a second
 * and at exit, so a request costs no syscall for it. */
#ifndef TURNSTILE_LOG_H
#define TURNSTILE_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Parses "error", "warn", "info" or "debug"; -1 if none. */
int log_level_parse(const char *name);
const char *log_level_name(unsigned level);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
__attribute__((format(printf, 2, 3))) void log_msg(enum log_level level, const char *fmt, ...);

/* Opens the access log: a path (appended to) or "-" for stdout, in place
 * of the one open now (which stays if path cannot be opened). Returns 0 or
 * a negative errno. */
int log_access_open(const char *path);
/* Closes and opens the access log's file again, by its name (SIGUSR1, after
 * logrotate renamed it): no line is lost, the buffered ones go to the old
 * file. Returns 0 or a negative errno (the old file stays in use). */
int log_access_reopen(void);
/* The path open now ("" if none). */
const char *log_access_path(void);
bool log_access_enabled(void);
/* One request: client address, request line parts, status, body bytes,
 * and the lock wait (negative when the request did not queue). */
void log_access(const char *client, const char *method, const char *path, int minor, int status,
                uint64_t bytes, int64_t wait_us);
/* Writes out what is buffered (the server calls it once a second). */
void log_access_flush(void);
void log_access_close(void);

#endif

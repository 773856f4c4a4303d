/* scratch: temporary directories of tests, removed even when a test fails. */
#ifndef TURNSTILE_SCRATCH_H
#define TURNSTILE_SCRATCH_H

#include <stddef.h>

/* Removes the files directly in dir, then dir itself; quiet if missing. */
void scratch_remove(const char *dir);

/* Reads up to cap bytes of path into buf; returns how many (fails the
 * running Check test if the file cannot be read). */
size_t scratch_read(const char *path, void *buf, size_t cap);

#endif

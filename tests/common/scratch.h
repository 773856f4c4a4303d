/* scratch: temporary directories of tests, removed even when a test fails. */
#ifndef TURNSTILE_SCRATCH_H
#define TURNSTILE_SCRATCH_H

/* Removes the files directly in dir, then dir itself; quiet if missing. */
void scratch_remove(const char *dir);

#endif

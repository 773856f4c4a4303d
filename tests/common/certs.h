/* certs: the certificates of the TLS tests, made at test time by certs.sh
 * (the openssl command) in a new directory; certs.sh lists them. No Check
 * in it, so etcd_proc and benchmarks use it too. */
#ifndef TURNSTILE_CERTS_H
#define TURNSTILE_CERTS_H

#include <stddef.h>

/* Makes a directory /tmp/certs_XXXXXX (its name in dir, cap >= 24 bytes)
 * holding the certificates. Returns 0, or a negative errno after printing
 * what openssl said to stderr (nothing is left on disk then). */
int certs_make(char *dir, size_t cap);

/* "dir/name", in one of 8 static buffers used in turn: a call's result
 * lasts through the next seven (enough for one call's arguments). */
const char *certs_path(const char *dir, const char *name);

/* Removes dir and the files in it; quiet if it is missing. */
void certs_remove(const char *dir);

#endif

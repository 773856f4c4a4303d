/* check_run: the one main() every Check suite of ours ends with. */
#ifndef TURNSTILE_CHECK_RUN_H
#define TURNSTILE_CHECK_RUN_H

#include <check.h>

/* Runs every test of s, prints Check's normal report (whose closing line
 * CI reads) and returns the process exit status: 0 only if all passed. */
int check_run(Suite *s);

#endif

/* textbuf: printf-style appending into a fixed buffer, remembering
 * overflow instead of checking every call (for /stats and /metrics). */
#ifndef TURNSTILE_TEXTBUF_H
#define TURNSTILE_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct textbuf {
    char *buf;
    size_t cap, len;
    bool overflow;
};

void textbuf_init(struct textbuf *t, char *buf, size_t cap);
__attribute__((format(printf, 2, 3))) void textbuf_printf(struct textbuf *t, const char *fmt, ...);
/* The length written, or 0 if anything did not fit. */
size_t textbuf_len(const struct textbuf *t);

#endif

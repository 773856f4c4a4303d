/* textbuf: see textbuf.h. */
#include "textbuf.h"

#include <stdarg.h>
#include <stdio.h>

void textbuf_init(struct textbuf *t, char *buf, size_t cap)
{
    *t = (struct textbuf){.buf = buf, .cap = cap};
}

void textbuf_printf(struct textbuf *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->len < t->cap ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0 || t->len + (size_t)n >= t->cap)
        t->overflow = true;
    else
        t->len += (size_t)n;
}

size_t textbuf_len(const struct textbuf *t)
{
    return t->overflow ? 0 : t->len;
}

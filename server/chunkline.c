/* chunkline: BWS before a chunk extension. See chunkline.h.
 *
 * Why not a lenient flag: none of llhttp 8.1's allows it (with all five on
 * it still stops at the blank), and the nearest ones let through what
 * request smuggling is made of (Transfer-Encoding with Content-Length).
 * Only the blanks before ';' are dropped; a blank elsewhere in the line is
 * llhttp's to refuse as before. */
#include "chunkline.h"

#include "abnf.h"

void chunkline_start(struct chunkline *c)
{
    c->state = CHUNKLINE_SIZE;
}

size_t chunkline_pass(struct chunkline *c, const char *s, size_t n)
{
    size_t i = 0;

    if (c->state == CHUNKLINE_SIZE) {
        while (i < n && abnf_hex((unsigned char)s[i]) >= 0)
            i++;
        if (i == n)
            return n;
        /* ';' or the line's end: llhttp's, as is any other byte. */
        c->state = abnf_ws(s[i]) ? CHUNKLINE_BWS : CHUNKLINE_OUT;
        return c->state == CHUNKLINE_OUT ? n : i;
    }
    if (c->state == CHUNKLINE_BWS && n > 0 && !abnf_ws(s[0]))
        c->state = s[0] == ';' ? CHUNKLINE_OUT : CHUNKLINE_BAD;
    return c->state == CHUNKLINE_OUT ? n : 0;
}

/* reqline: the request line's strict form. See reqline.h. */
#include "reqline.h"

#include <string.h>

#include "abnf.h"

static enum reqline_state next_state(struct reqline *l, unsigned char c)
{
    switch (l->state) {
    case REQLINE_START:
        if (c == '\r' || c == '\n')
            return REQLINE_START;
        return abnf_tchar(c) ? REQLINE_METHOD : REQLINE_BAD;
    case REQLINE_METHOD:
        return c == ' ' ? REQLINE_TARGET0 : abnf_tchar(c) ? REQLINE_METHOD : REQLINE_BAD;
    case REQLINE_TARGET0:
    case REQLINE_TARGET:
        if (c == ' ' && l->state == REQLINE_TARGET)
            return REQLINE_PROTO;
        /* Visible bytes; llhttp also takes obs-text (0x80 and up). */
        return c > ' ' && c != 0x7f ? REQLINE_TARGET : REQLINE_BAD;
    case REQLINE_PROTO:
        if (c != "HTTP/"[l->idx])
            return REQLINE_BAD;
        return ++l->idx == 5 ? REQLINE_MAJOR : REQLINE_PROTO;
    case REQLINE_MAJOR:
        l->major = (char)c;
        return abnf_digit(c) ? REQLINE_DOT : REQLINE_BAD;
    case REQLINE_DOT:
        return c == '.' ? REQLINE_MINOR : REQLINE_BAD;
    case REQLINE_MINOR:
        return abnf_digit(c) ? REQLINE_CR : REQLINE_BAD;
    case REQLINE_CR:
        return c == '\r' ? REQLINE_LF : REQLINE_BAD;
    case REQLINE_LF:
        return c == '\n' ? REQLINE_DONE : REQLINE_BAD;
    default:
        return (enum reqline_state)l->state;
    }
}

/* "HTTP/D.D\r\n" whole at s: the usual end of a line, checked at once. */
static bool whole_version(const char *s, size_t n)
{
    return n >= 10 && memcmp(s, "HTTP/", 5) == 0 && abnf_digit((unsigned char)s[5]) &&
           s[6] == '.' && abnf_digit((unsigned char)s[7]) && s[8] == '\r' && s[9] == '\n';
}

/* The fast paths take the bytes that change no state: letters of the
 * method, bytes of the target, a whole version. */
bool reqline_scan(struct reqline *l, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && l->state < REQLINE_DONE) {
        unsigned char c = (unsigned char)s[i];
        if ((l->state == REQLINE_METHOD && abnf_alpha(c)) ||
            (l->state == REQLINE_TARGET && c > ' ' && c != 0x7f)) {
            i++;
        } else if (l->state == REQLINE_PROTO && l->idx == 0 && whole_version(s + i, n - i)) {
            l->major = s[i + 5];
            l->state = REQLINE_DONE;
            i += 10;
        } else {
            reqline_step(l, c);
            i++;
        }
    }
    return l->state != REQLINE_BAD;
}

enum reqline_state reqline_step(struct reqline *l, unsigned char c)
{
    l->state = (unsigned char)next_state(l, c);
    return (enum reqline_state)l->state;
}

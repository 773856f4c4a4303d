/* fields: Host, Expect and Transfer-Encoding, read as they arrive. See
 * fields.h.
 *
 * Names are matched as their bytes come, values checked byte by byte with
 * a few bytes of state each: no field is copied, and every verdict is tied
 * to the byte that decides it. */
#include "fields.h"

#include <arpa/inet.h>
#include <string.h>

#include "abnf.h"

/* The fields we read ourselves. */
enum field { FIELD_OTHER, FIELD_HOST, FIELD_EXPECT, FIELD_TE, FIELD_IDEM, FIELD_COUNT };

struct word {
    const char *s; /* lower case */
    size_t len;
};

#define WORD(lit)                                                                                  \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }

static const struct word field_names[FIELD_COUNT] = {
    [FIELD_HOST] = WORD("host"),
    [FIELD_EXPECT] = WORD("expect"),
    [FIELD_TE] = WORD("transfer-encoding"),
    [FIELD_IDEM] = WORD("idempotency-key"),
};

/* The first letter picks the one field a name may be (h, e, t, i); the rest
 * is compared with that one as it arrives. Most names are ruled out at
 * their first byte and cost nothing more. */
void fields_name(struct fields *f, const char *at, size_t n)
{
    for (size_t i = 0; i < n && (f->name_len == 0 || f->name_cand != FIELD_OTHER);
         i++, f->name_len++) {
        char c = abnf_lower(at[i]);
        const struct word *w = &field_names[f->name_cand];
        if (f->name_len == 0)
            f->name_cand = c == 'h'   ? FIELD_HOST
                           : c == 'e' ? FIELD_EXPECT
                           : c == 't' ? FIELD_TE
                           : c == 'i' ? FIELD_IDEM
                                      : FIELD_OTHER;
        else if (f->name_len >= w->len || c != w->s[f->name_len])
            f->name_cand = FIELD_OTHER;
    }
}

static enum field name_end(struct fields *f, bool trailer)
{
    enum field field = (enum field)f->name_cand;

    if (f->name_len != field_names[field].len)
        field = FIELD_OTHER;
    f->name_len = 0;
    f->name_cand = FIELD_OTHER;
    /* Trailers are discarded: a Host among them is nobody's business. */
    return trailer ? FIELD_OTHER : field;
}

/* Host = uri-host [ ":" port ] (RFC 9110 7.2), where uri-host is a reg-name
 * (IPv4 is one too) or an IP-literal, checked byte by byte. llhttp strips
 * the whitespace before a value but not after it. IPvFuture is refused. */
enum host_state {
    HOST_START,
    HOST_REG, /* reg-name: unreserved, sub-delims, %XX */
    HOST_PCT1,
    HOST_PCT2,
    HOST_V6, /* inside [ ], collected in v6 */
    HOST_V6_END,
    HOST_PORT,
    HOST_OWS, /* trailing whitespace: nothing else may follow */
    HOST_BAD,
};

static bool is_reg_char(unsigned char c)
{
    return abnf_unreserved(c) || (c != 0 && strchr("!$&'()*+,;=", c) != NULL);
}

static enum host_state host_v6(struct fields *f, unsigned char c)
{
    if (c == ']') {
        struct in6_addr a;
        f->v6[f->v6_len] = '\0';
        return inet_pton(AF_INET6, f->v6, &a) == 1 ? HOST_V6_END : HOST_BAD;
    }
    if ((abnf_hex(c) < 0 && c != ':' && c != '.') || (size_t)f->v6_len + 1 >= sizeof(f->v6))
        return HOST_BAD;
    f->v6[f->v6_len++] = (char)c;
    return HOST_V6;
}

static enum host_state host_step(struct fields *f, unsigned char c)
{
    enum host_state s = (enum host_state)f->host;

    if (abnf_ws((char)c))
        return s == HOST_REG || s == HOST_V6_END || s == HOST_PORT || s == HOST_OWS ? HOST_OWS
                                                                                    : HOST_BAD;
    switch (s) {
    case HOST_START:
    case HOST_REG:
        if (c == '[' && s == HOST_START)
            return HOST_V6;
        if (c == ':' && s == HOST_REG) /* an empty host with a port is no host */
            return HOST_PORT;
        if (c == '%')
            return HOST_PCT1;
        return is_reg_char(c) ? HOST_REG : HOST_BAD;
    case HOST_PCT1:
    case HOST_PCT2:
        if (abnf_hex(c) < 0)
            return HOST_BAD;
        return s == HOST_PCT1 ? HOST_PCT2 : HOST_REG;
    case HOST_V6:
        return host_v6(f, c);
    case HOST_V6_END:
        return c == ':' ? HOST_PORT : HOST_BAD;
    case HOST_PORT:
        return abnf_digit(c) ? HOST_PORT : HOST_BAD;
    default:
        return HOST_BAD;
    }
}

/* An empty Host names no host: RFC 9110 4.2.1 makes an "http" URI with an
 * empty host invalid (nginx refuses it too). */
static bool host_valid(const struct fields *f)
{
    enum host_state s = (enum host_state)f->host;

    return s == HOST_REG || s == HOST_V6_END || s == HOST_PORT || s == HOST_OWS;
}

/* Expect and Transfer-Encoding are comma-separated lists (RFC 9110 5.6.1)
 * of which we know one member each: "100-continue", "chunked" (both
 * case-insensitive). Each member is compared as it arrives. */
static const struct word members[FIELD_COUNT] = {
    [FIELD_EXPECT] = WORD("100-continue"),
    [FIELD_TE] = WORD("chunked"),
};

static void member_end(struct fields *f, enum field which)
{
    bool known = !f->member_miss && f->member_len == members[which].len;

    if (f->member_len == 0) /* empty members are allowed and mean nothing */
        return;
    if (which == FIELD_EXPECT && known)
        f->expect_continue = true;
    else if (which == FIELD_EXPECT)
        f->expect_other = true;
    else if (!known)
        f->te_other = true;
    f->member_len = 0;
    f->member_miss = f->member_ws = false;
}

static void member_char(struct fields *f, enum field which, char c)
{
    const struct word *w = &members[which];

    if (c == ',') {
        member_end(f, which);
    } else if (abnf_ws(c)) {
        f->member_ws = f->member_len > 0;
    } else {
        /* Anything after the token ("chunked;x", "100-continue x") makes
         * it another member. */
        if (f->member_ws || f->member_len >= w->len || abnf_lower(c) != w->s[f->member_len])
            f->member_miss = true;
        f->member_len += f->member_len < 255;
    }
}

static bool host_feed(struct fields *f, const char *at, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)at[i];
        /* Most of a host name and its port: no state to change. */
        if ((f->host == HOST_REG && (abnf_alpha(c) || abnf_digit(c) || c == '.' || c == '-')) ||
            (f->host == HOST_PORT && abnf_digit(c)))
            continue;
        f->host = (unsigned char)host_step(f, c);
        if (f->host == HOST_BAD)
            return false;
    }
    return true;
}

/* Idempotency-Key: the value is kept as it comes (it is the one field
 * copied) and judged whole at its end. Whitespace past the buffer may only
 * be trailing OWS: anything after it makes the value too long. */
static void idem_feed(struct fields *f, const char *at, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (f->idem_len < sizeof(f->idem))
            f->idem[f->idem_len++] = at[i];
        else if (!abnf_ws(at[i]) || f->idem_long)
            f->idem_long = true;
    }
}

static bool idem_quoted_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Leaves the key at the start of idem, or sets idem_bad. */
static void idem_end(struct fields *f)
{
    size_t len = f->idem_len, start = 0;
    while (len > 0 && abnf_ws(f->idem[len - 1]))
        len--;
    bool quoted = len >= 2 && f->idem[0] == '"' && f->idem[len - 1] == '"';
    if (quoted)
        start = 1, len--;
    bool ok = !f->idem_long && len > start && len - start <= FIELDS_IDEM_MAX;
    for (size_t i = start; i < len && ok; i++)
        ok = quoted ? idem_quoted_char((unsigned char)f->idem[i])
                    : abnf_unreserved((unsigned char)f->idem[i]);
    f->idem_bad |= !ok || f->idem_fields > 1;
    memmove(f->idem, f->idem + start, len - start);
    f->idem_len = (unsigned char)(len - start);
}

/* ---- the calls of http.c's callbacks ---- */

int fields_name_end(struct fields *f, bool trailer)
{
    f->field = (unsigned char)name_end(f, trailer);
    /* RFC 9112 3.2: more than one Host is a 400, whatever the version. */
    if (f->field == FIELD_HOST && ++f->hosts > 1)
        return 400;
    if (f->field == FIELD_TE && f->te_fields < 255)
        f->te_fields++;
    if (f->field == FIELD_IDEM) {
        f->idem_fields += f->idem_fields < 255;
        f->idem_len = 0; /* a second one is bad, whatever the first held */
        f->idem_long = false;
    }
    return 0;
}

int fields_value(struct fields *f, const char *at, size_t n)
{
    if (f->field == FIELD_HOST)
        return host_feed(f, at, n) ? 0 : 400;
    if (f->field == FIELD_IDEM) {
        idem_feed(f, at, n);
        return 0;
    }
    for (size_t i = 0; i < n && f->field != FIELD_OTHER; i++)
        member_char(f, (enum field)f->field, at[i]);
    return 0;
}

int fields_value_end(struct fields *f)
{
    enum field which = (enum field)f->field;

    f->field = FIELD_OTHER;
    if (which == FIELD_HOST && !host_valid(f))
        return 400;
    if (which == FIELD_EXPECT || which == FIELD_TE)
        member_end(f, which);
    if (which == FIELD_IDEM)
        idem_end(f);
    return 0;
}

int fields_verdict(const struct fields *f, const llhttp_t *h, uint64_t max_body)
{
    /* RFC 9112 3.2: an HTTP/1.1 request without Host. */
    if (f->hosts == 0 && h->http_minor > 0)
        return 400;
    if (f->te_fields > 0) {
        /* HTTP/1.0 has no chunked coding: a TE there is a smuggling
         * attempt (RFC 9112 6.1; nginx answers 400 too). Without chunked
         * last, the body has no length (RFC 9112 6.3, llhttp's own 400). */
        if (h->http_minor == 0 || !(h->flags & F_CHUNKED))
            return 400;
        if (f->te_other) /* "gzip, chunked": a coding we cannot undo */
            return 501;
    }
    if (f->expect_other)
        return 417;
    /* Refuse an oversized body before reading any of it. */
    if ((h->flags & F_CONTENT_LENGTH) && h->content_length > max_body)
        return 413;
    return 0;
}

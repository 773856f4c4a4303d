/* http: llhttp wrapper and reply formatter. See http.h.
 *
 * One request goes through llhttp in two phases. The head phase feeds at
 * most the bytes the header limit still allows, and on_headers_complete
 * pauses the parser, so we know exactly where the head ends: that makes the
 * 431 count exact across calls and lets us scan the head for what llhttp 8.1
 * (Debian's node-llhttp, loose mode) lets through but we must refuse:
 *  - a bare LF ending the request line or the empty line ("GET / HTTP/1.1\n\n"),
 *  - obs-fold continuation lines, which it silently joins into the value,
 *  - spaces in or after a header name, and empty header names,
 *  - request lines that are not method SP target SP HTTP/D.D CRLF: HTTP/0.9
 *    lines without a version, several spaces, "RTSP/1.0" and "ICE/1.0".
 * The body phase feeds the rest until on_message_complete pauses the parser,
 * which leaves pipelined bytes unconsumed.
 *
 * What llhttp does not look at, the callbacks check byte by byte as the
 * pieces arrive, with a few bytes of state each and no copy: the target's
 * path (normalised into req.path), and the values of Host, Expect and
 * Transfer-Encoding. Every verdict is tied to the byte that decides it, so
 * it does not depend on how reads split the request. */
#include "http.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static int fail(struct http_parser *p, int status)
{
    if (!p->error_status)
        p->error_status = status;
    /* Any value but 0 and HPE_PAUSED stops llhttp; on_headers_complete
     * gives 1 and 2 a meaning, HPE_USER has none anywhere. */
    return HPE_USER;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int hex_value(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 'a' - 'A') : c;
}

/* RFC 3986 2.3: what a %XX may be decoded to without changing the URI. */
static bool is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* ---- the request line ---- */

/* RFC 9112 3: method SP request-target SP HTTP-version CRLF, one SP each. */
enum line_state {
    LINE_START, /* empty lines before a request are skipped (RFC 9112 2.2) */
    LINE_METHOD,
    LINE_TARGET0, /* the target's first byte */
    LINE_TARGET,
    LINE_PROTO, /* "HTTP/", line_idx bytes of it so far */
    LINE_MAJOR,
    LINE_DOT,
    LINE_MINOR,
    LINE_CR,
    LINE_LF,
    LINE_DONE,
    LINE_BAD,
};

/* RFC 9110 5.6.2 tchar: what a method is made of. */
static bool is_tchar(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static enum line_state line_step(struct http_parser *p, unsigned char c)
{
    switch (p->st.line) {
    case LINE_START:
        if (c == '\r' || c == '\n')
            return LINE_START;
        return is_tchar(c) ? LINE_METHOD : LINE_BAD;
    case LINE_METHOD:
        return c == ' ' ? LINE_TARGET0 : is_tchar(c) ? LINE_METHOD : LINE_BAD;
    case LINE_TARGET0:
    case LINE_TARGET:
        if (c == ' ' && p->st.line == LINE_TARGET)
            return LINE_PROTO;
        /* Visible bytes; llhttp also takes obs-text (0x80 and up). */
        return c > ' ' && c != 0x7f ? LINE_TARGET : LINE_BAD;
    case LINE_PROTO:
        if (c != "HTTP/"[p->st.line_idx])
            return LINE_BAD;
        return ++p->st.line_idx == 5 ? LINE_MAJOR : LINE_PROTO;
    case LINE_MAJOR:
        p->st.line_major = (char)c;
        return is_digit(c) ? LINE_DOT : LINE_BAD;
    case LINE_DOT:
        return c == '.' ? LINE_MINOR : LINE_BAD;
    case LINE_MINOR:
        return is_digit(c) ? LINE_CR : LINE_BAD;
    case LINE_CR:
        return c == '\r' ? LINE_LF : LINE_BAD;
    case LINE_LF:
        return c == '\n' ? LINE_DONE : LINE_BAD;
    default:
        return (enum line_state)p->st.line;
    }
}

/* Runs the request-line check over head bytes llhttp consumed; false once
 * the line is malformed. Past the line it costs one comparison per call. */
/* "HTTP/D.D\r\n" whole at s: the usual end of a line, checked at once. */
static bool whole_version(const char *s, size_t n)
{
    return n >= 10 && memcmp(s, "HTTP/", 5) == 0 && is_digit((unsigned char)s[5]) && s[6] == '.' &&
           is_digit((unsigned char)s[7]) && s[8] == '\r' && s[9] == '\n';
}

/* The fast paths take the bytes that change no state: letters of the
 * method, bytes of the target, a whole version. */
static bool line_scan(struct http_parser *p, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && p->st.line < LINE_DONE) {
        unsigned char c = (unsigned char)s[i];
        if ((p->st.line == LINE_METHOD && is_alpha(c)) ||
            (p->st.line == LINE_TARGET && c > ' ' && c != 0x7f)) {
            i++;
        } else if (p->st.line == LINE_PROTO && p->st.line_idx == 0 && whole_version(s + i, n - i)) {
            p->st.line_major = s[i + 5];
            p->st.line = LINE_DONE;
            i += 10;
        } else {
            p->st.line = (unsigned char)line_step(p, c);
            i++;
        }
    }
    return p->st.line != LINE_BAD;
}

/* llhttp stops at a method it does not know, and at the version of one it
 * knows only for RTSP ("DESCRIBE / HTTP/1.1"). RFC 9110 9.1 asks for 501
 * there, but only a well-formed line deserves it: the line check reads on. */
static bool unknown_method(const struct http_parser *p, llhttp_errno_t err)
{
    if (err == HPE_INVALID_METHOD)
        return true;
    return err == HPE_INVALID_CONSTANT && p->llhttp.method > HTTP_PRI && p->st.line == LINE_MAJOR;
}

/* The head budget allows for the target as in llhttp mode (see on_url). */
static size_t execute_line(struct http_parser *p, const char *data, size_t n)
{
    const struct http_limits *l = &p->limits;
    size_t i = 0;

    while (i < n && p->st.line < LINE_DONE) {
        p->st.line = (unsigned char)line_step(p, (unsigned char)data[i++]);
        p->st.url_open = p->st.line == LINE_TARGET;
        if (p->st.url_open && ++p->st.url_bytes > l->max_url) {
            fail(p, 414);
            break;
        }
        if (!p->st.url_open && p->st.head_bytes + i > l->max_header_bytes) {
            fail(p, 431);
            break;
        }
    }
    p->st.head_bytes += i;
    if (p->st.line == LINE_BAD)
        fail(p, 400);
    else if (p->st.line == LINE_DONE)
        fail(p, p->st.line_major == '1' ? 501 : 505);
    return i;
}

/* ---- the request target ---- */

enum target_state {
    TARGET_START,
    TARGET_SCHEME,    /* could still be "http://" or "https://" */
    TARGET_AUTHORITY, /* after "http://": skipped up to the path */
    TARGET_PATH,      /* origin-form path, normalised */
    TARGET_RAW,       /* "*", authority-form, other schemes: kept as sent */
};

/* Appends to the path, or flags it truncated: no route matches then. */
static void emit(struct http_request *r, char c)
{
    if (r->path_len < HTTP_MAX_PATH)
        r->path[r->path_len++] = c;
    else
        r->path_truncated = true;
}

enum segment { SEGMENT_KEPT, SEGMENT_DROPPED, SEGMENT_ABOVE_ROOT };

/* RFC 3986 5.2.4 on the segment that just ended: "." goes, ".." takes the
 * one before it along; either way the path then ends in the '/' that began
 * the segment. ".." at the root is refused (400, as nginx does) rather than
 * ignored: no client of ours has a reason to send it. A truncated path is
 * not routed, so it is left alone. */
static enum segment end_segment(struct http_parser *p)
{
    struct http_request *r = &p->req;
    size_t seg = p->st.seg, n = r->path_len - seg;
    const char *s = r->path + seg;

    if (r->path_truncated || n == 0 || n > 2 || s[0] != '.' || (n == 2 && s[1] != '.'))
        return SEGMENT_KEPT;
    if (n == 1) {
        r->path_len = seg;
        return SEGMENT_DROPPED;
    }
    if (seg <= 1)
        return SEGMENT_ABOVE_ROOT;
    size_t prev = seg - 1; /* the '/' before "..": back to the one before it */
    while (prev > 0 && r->path[prev - 1] != '/')
        prev--;
    r->path_len = prev;
    p->st.seg = (uint16_t)prev;
    return SEGMENT_DROPPED;
}

static int path_slash(struct http_parser *p)
{
    enum segment s = end_segment(p);

    if (s == SEGMENT_ABOVE_ROOT)
        return 400;
    if (s == SEGMENT_KEPT)
        emit(&p->req, '/');
    p->st.seg = (uint16_t)p->req.path_len;
    return 0;
}

/* The second hex digit of a %XX. A NUL is refused (400, as nginx): no
 * resource is named with one. An encoded '/' stays encoded, so it never
 * separates segments and "/a%2Fb" is not "/a/b" (nginx decodes it). */
static int path_pct(struct http_parser *p, int lo)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char c = (unsigned char)(p->st.pct_hi << 4 | lo);

    p->st.pct = 0;
    if (c == 0)
        return 400;
    if (is_unreserved(c)) {
        emit(&p->req, (char)c);
        return 0;
    }
    emit(&p->req, '%');
    emit(&p->req, hex[p->st.pct_hi]);
    emit(&p->req, hex[lo]);
    return 0;
}

/* One byte of an origin-form path; 0 or the status that refuses it. */
static int path_char(struct http_parser *p, char c)
{
    if (p->st.pct) {
        int v = hex_value((unsigned char)c);
        if (v < 0)
            return 400; /* RFC 3986 2.1: "%" HEXDIG HEXDIG */
        if (p->st.pct == 1) {
            p->st.pct_hi = (unsigned char)v;
            p->st.pct = 2;
            return 0;
        }
        return path_pct(p, v);
    }
    if (c == '%') {
        p->st.pct = 1;
        return 0;
    }
    if (c == '/')
        return path_slash(p);
    emit(&p->req, c);
    return 0;
}

/* Until the scheme decides: RFC 9112 3.2.2 makes us accept the absolute
 * form ("GET http://host/path"), and routes only want the path. */
static void scheme_char(struct http_parser *p, char c)
{
    struct http_request *r = &p->req;
    size_t n;

    emit(r, c);
    n = r->path_len;
    if ((n == 7 && strncasecmp(r->path, "http://", 7) == 0) ||
        (n == 8 && strncasecmp(r->path, "https://", 8) == 0)) {
        r->path_len = 0;
        p->st.target = TARGET_AUTHORITY;
    } else if (!(n < 7 && strncasecmp(r->path, "http://", n) == 0) &&
               !(n < 8 && strncasecmp(r->path, "https://", n) == 0)) {
        p->st.target = TARGET_RAW;
    }
}

static int target_char(struct http_parser *p, char c)
{
    switch (p->st.target) {
    case TARGET_START:
        p->st.target = c == '/' ? TARGET_PATH : TARGET_SCHEME;
        return target_char(p, c);
    case TARGET_SCHEME:
        scheme_char(p, c);
        return 0;
    case TARGET_AUTHORITY:
        if (c == '/')
            p->st.target = TARGET_PATH;
        return c == '/' ? path_char(p, c) : 0;
    case TARGET_PATH:
        return path_char(p, c);
    default:
        emit(&p->req, c);
        return 0;
    }
}

/* The path ends at '?', '#' or the end of the target. */
static int path_finish(struct http_parser *p)
{
    struct http_request *r = &p->req;

    if (p->st.path_done)
        return 0;
    p->st.path_done = true;
    if (p->st.target == TARGET_PATH && (p->st.pct || end_segment(p) == SEGMENT_ABOVE_ROOT))
        return 400;
    if (p->st.target == TARGET_AUTHORITY)
        emit(r, '/'); /* "http://host" and "http://host?q" ask for "/" */
    r->path[r->path_len] = '\0';
    return 0;
}

/* A byte of a path that only needs copying. */
static bool plain_path_byte(const struct http_parser *p, char c)
{
    return p->st.target == TARGET_PATH && !p->st.pct && c != '/' && c != '%' && c != '?' &&
           c != '#';
}

static int path_feed(struct http_parser *p, const char *at, size_t n)
{
    for (size_t i = 0; i < n && !p->st.path_done; i++) {
        if (plain_path_byte(p, at[i])) {
            emit(&p->req, at[i]);
            continue;
        }
        /* A bad %XX before the '?' is still refused. */
        if ((at[i] == '?' || at[i] == '#') && !p->st.pct)
            return path_finish(p);
        int status = target_char(p, at[i]);
        if (status)
            return status;
    }
    return 0;
}

static int on_url(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;
    size_t room = p->limits.max_url - p->st.url_bytes; /* url_bytes <= max_url here */
    size_t take = n < room ? n : room;

    /* Counted across calls: llhttp hands over the target in pieces when it
     * spans several reads. The path is checked up to the limit and no
     * further, so a bad %XX before it is a 400 however the target split. */
    p->st.url_open = true;
    p->st.url_bytes += n;
    int status = path_feed(p, at, take);
    if (status)
        return fail(p, status);
    if (take < n)
        return fail(p, 414);
    return 0;
}

static int on_url_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;
    int status = path_finish(p);

    p->st.url_open = false;
    return status ? fail(p, status) : 0;
}

static int on_version_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;

    /* LENIENT_VERSION lets any D.D through: 1.2 and up are read as 1.1
     * (RFC 9110 2.5), another major version is not ours. */
    if (h->http_major != 1)
        return fail(p, 505);
    return 0;
}

/* ---- header fields ---- */

/* The fields we read ourselves. */
enum field { FIELD_OTHER, FIELD_HOST, FIELD_EXPECT, FIELD_TE, FIELD_COUNT };

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
};

/* The first letter picks the one field a name may be (h, e, t); the rest
 * is compared with that one as it arrives. Most names are ruled out at
 * their first byte and cost nothing more. */
static void name_feed(struct http_parser *p, const char *at, size_t n)
{
    for (size_t i = 0; i < n && (p->st.name_len == 0 || p->st.name_cand != FIELD_OTHER);
         i++, p->st.name_len++) {
        char c = lower(at[i]);
        const struct word *w = &field_names[p->st.name_cand];
        if (p->st.name_len == 0)
            p->st.name_cand = c == 'h'   ? FIELD_HOST
                              : c == 'e' ? FIELD_EXPECT
                              : c == 't' ? FIELD_TE
                                         : FIELD_OTHER;
        else if (p->st.name_len >= w->len || c != w->s[p->st.name_len])
            p->st.name_cand = FIELD_OTHER;
    }
}

static enum field name_end(struct http_parser *p)
{
    enum field f = (enum field)p->st.name_cand;

    if (p->st.name_len != field_names[f].len)
        f = FIELD_OTHER;
    p->st.name_len = 0;
    p->st.name_cand = FIELD_OTHER;
    /* Trailers are discarded: a Host among them is nobody's business. */
    return p->head_done ? FIELD_OTHER : f;
}

static int on_header_field(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;

    /* llhttp takes "Ho st:" and "Host :" (RFC 9112 5.1: MUST reject with
     * 400) as long as the name is not one it interprets itself. */
    if (memchr(at, ' ', n) != NULL)
        return fail(p, 400);
    p->st.field_len += n;
    name_feed(p, at, n);
    return 0;
}

static int on_header_field_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;

    /* llhttp also takes an empty name (": value"). */
    if (p->st.field_len == 0)
        return fail(p, 400);
    p->st.field_len = 0;
    /* Trailers count too: they are header fields after a chunked body. */
    if (++p->st.nheaders > p->limits.max_headers)
        return fail(p, 431);
    p->st.field = (unsigned char)name_end(p);
    /* RFC 9112 3.2: more than one Host is a 400, whatever the version. */
    if (p->st.field == FIELD_HOST && ++p->st.hosts > 1)
        return fail(p, 400);
    if (p->st.field == FIELD_TE && p->st.te_fields < 255)
        p->st.te_fields++;
    return 0;
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
    return is_unreserved(c) || (c != 0 && strchr("!$&'()*+,;=", c) != NULL);
}

static enum host_state host_v6(struct http_parser *p, unsigned char c)
{
    if (c == ']') {
        struct in6_addr a;
        p->st.v6[p->st.v6_len] = '\0';
        return inet_pton(AF_INET6, p->st.v6, &a) == 1 ? HOST_V6_END : HOST_BAD;
    }
    if ((hex_value(c) < 0 && c != ':' && c != '.') || (size_t)p->st.v6_len + 1 >= sizeof(p->st.v6))
        return HOST_BAD;
    p->st.v6[p->st.v6_len++] = (char)c;
    return HOST_V6;
}

static enum host_state host_step(struct http_parser *p, unsigned char c)
{
    enum host_state s = (enum host_state)p->st.host;

    if (is_ws((char)c))
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
        if (hex_value(c) < 0)
            return HOST_BAD;
        return s == HOST_PCT1 ? HOST_PCT2 : HOST_REG;
    case HOST_V6:
        return host_v6(p, c);
    case HOST_V6_END:
        return c == ':' ? HOST_PORT : HOST_BAD;
    case HOST_PORT:
        return is_digit(c) ? HOST_PORT : HOST_BAD;
    default:
        return HOST_BAD;
    }
}

/* An empty Host names no host: RFC 9110 4.2.1 makes an "http" URI with an
 * empty host invalid (nginx refuses it too). */
static bool host_valid(const struct http_parser *p)
{
    enum host_state s = (enum host_state)p->st.host;

    return s == HOST_REG || s == HOST_V6_END || s == HOST_PORT || s == HOST_OWS;
}

/* Expect and Transfer-Encoding are comma-separated lists (RFC 9110 5.6.1)
 * of which we know one member each: "100-continue", "chunked" (both
 * case-insensitive). Each member is compared as it arrives. */
static const struct word members[FIELD_COUNT] = {
    [FIELD_EXPECT] = WORD("100-continue"),
    [FIELD_TE] = WORD("chunked"),
};

static void member_end(struct http_parser *p, enum field f)
{
    bool known = !p->st.member_miss && p->st.member_len == members[f].len;

    if (p->st.member_len == 0) /* empty members are allowed and mean nothing */
        return;
    if (f == FIELD_EXPECT && known)
        p->st.expect_continue = true;
    else if (f == FIELD_EXPECT)
        p->st.expect_other = true;
    else if (!known)
        p->st.te_other = true;
    p->st.member_len = 0;
    p->st.member_miss = p->st.member_ws = false;
}

static void member_char(struct http_parser *p, enum field f, char c)
{
    const struct word *w = &members[f];

    if (c == ',') {
        member_end(p, f);
    } else if (is_ws(c)) {
        p->st.member_ws = p->st.member_len > 0;
    } else {
        /* Anything after the token ("chunked;x", "100-continue x") makes
         * it another member. */
        if (p->st.member_ws || p->st.member_len >= w->len || lower(c) != w->s[p->st.member_len])
            p->st.member_miss = true;
        p->st.member_len += p->st.member_len < 255;
    }
}

static bool host_feed(struct http_parser *p, const char *at, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)at[i];
        /* Most of a host name and its port: no state to change. */
        if ((p->st.host == HOST_REG && (is_alpha(c) || is_digit(c) || c == '.' || c == '-')) ||
            (p->st.host == HOST_PORT && is_digit(c)))
            continue;
        p->st.host = (unsigned char)host_step(p, c);
        if (p->st.host == HOST_BAD)
            return false;
    }
    return true;
}

static int on_header_value(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;

    if (p->st.field == FIELD_HOST)
        return host_feed(p, at, n) ? 0 : fail(p, 400);
    for (size_t i = 0; i < n && p->st.field != FIELD_OTHER; i++)
        member_char(p, (enum field)p->st.field, at[i]);
    return 0;
}

static int on_header_value_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;
    enum field f = (enum field)p->st.field;

    p->st.field = FIELD_OTHER;
    if (f == FIELD_HOST && !host_valid(p))
        return fail(p, 400);
    if (f == FIELD_EXPECT || f == FIELD_TE)
        member_end(p, f);
    return 0;
}

/* ---- the end of the head ---- */

static bool has_body(const llhttp_t *h)
{
    return (h->flags & F_CHUNKED) || ((h->flags & F_CONTENT_LENGTH) && h->content_length > 0);
}

/* What is wrong with a head llhttp accepted, in order of precedence. */
static int head_status(const struct http_parser *p, const llhttp_t *h)
{
    /* RFC 9112 3.2: an HTTP/1.1 request without Host. */
    if (p->st.hosts == 0 && h->http_minor > 0)
        return 400;
    if (p->st.te_fields > 0) {
        /* HTTP/1.0 has no chunked coding: a TE there is a smuggling
         * attempt (RFC 9112 6.1; nginx answers 400 too). Without chunked
         * last, the body has no length (RFC 9112 6.3, llhttp's own 400). */
        if (h->http_minor == 0 || !(h->flags & F_CHUNKED))
            return 400;
        if (p->st.te_other) /* "gzip, chunked": a coding we cannot undo */
            return 501;
    }
    if (p->st.expect_other)
        return 417;
    /* Refuse an oversized body before reading any of it. */
    if ((h->flags & F_CONTENT_LENGTH) && h->content_length > p->limits.max_body)
        return 413;
    return 0;
}

static int on_headers_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;
    int status = head_status(p, h);

    if (status)
        return fail(p, status);
    p->req.method = h->method;
    p->req.major = 1;
    p->req.minor = h->http_minor > 0;
    /* RFC 9110 10.1.1: an HTTP/1.0 client's 100-continue is ignored, and
     * without a body there is nothing to wait for. */
    p->req.expect_continue = p->st.expect_continue && p->req.minor == 1 && has_body(h);
    p->head_done = true;
    /* Pause so feed_head() learns where the head ends; it resumes. */
    return HPE_PAUSED;
}

static int on_chunk_header(llhttp_t *h)
{
    struct http_parser *p = h->data;

    /* content_length is this chunk's size: refuse before reading it. */
    if (h->content_length > p->limits.max_body - p->st.chunk_total)
        return fail(p, 413);
    p->st.chunk_total += h->content_length;
    return 0;
}

static int on_body(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;

    (void)at;
    p->req.body_bytes += n;
    return 0;
}

static int on_message_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;

    /* After CONNECT or Upgrade llhttp parses nothing more, and we switch
     * to no other protocol: answer and close. */
    p->req.keep_alive = llhttp_should_keep_alive(h) && !h->upgrade;
    p->complete = true;
    /* Pipelined bytes wait until the route has answered this request. */
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_chunk_header = on_chunk_header,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void reset_request(struct http_parser *p)
{
    struct http_request *r = &p->req;

    /* Field by field: clearing the whole path array would cost 1 KiB of
     * stores per request. */
    r->method = 0;
    r->path[0] = '\0';
    r->path_len = 0;
    r->path_truncated = false;
    r->major = r->minor = 0;
    r->keep_alive = false;
    r->expect_continue = false;
    r->body_bytes = 0;
    memset(&p->st, 0, sizeof(p->st));
    p->head_done = false;
    p->complete = false;
}

void http_parser_init(struct http_parser *p, const struct http_limits *limits)
{
    static const struct http_limits defaults = HTTP_LIMITS_DEFAULT;

    p->limits = limits ? *limits : defaults;
    p->error_status = 0;
    reset_request(p);
    llhttp_init(&p->llhttp, HTTP_REQUEST, &settings);
    /* llhttp 8.1 has no setter for it yet (9.x has). It only stops llhttp
     * from refusing a well-formed version other than 0.9, 1.0, 1.1 and 2.0,
     * which on_version_complete judges instead; the digits and the dot are
     * still required, and the line check insists on "HTTP/". */
    p->llhttp.lenient_flags |= LENIENT_VERSION;
    p->llhttp.data = p;
}

void http_parser_next(struct http_parser *p)
{
    if (!p->complete)
        return;
    reset_request(p);
    llhttp_resume(&p->llhttp);
}

bool http_parser_idle(const struct http_parser *p)
{
    return p->st.head_bytes == 0 && !p->head_done && !p->complete && !p->error_status;
}

bool http_parser_continue_due(const struct http_parser *p)
{
    return p->head_done && p->req.expect_continue && !p->complete && !p->error_status &&
           !p->st.continue_sent;
}

void http_parser_continue_sent(struct http_parser *p)
{
    p->st.continue_sent = true;
}

/* Bytes llhttp consumed before it stopped with err. */
static size_t consumed(const llhttp_t *h, const char *data, size_t n, llhttp_errno_t err)
{
    if (err == HPE_OK)
        return n;
    const char *pos = llhttp_get_error_pos(h);
    return pos ? (size_t)(pos - data) : n;
}

/* Every LF of a head must follow a CR (no bare LF) and must not be followed
 * by SP or HTAB (no obs-fold). RFC 9112 allows refusing both, and lenient
 * line endings are where request smuggling starts. The request line must
 * have its strict form. Returns false on any of these. */
static bool scan_head(struct http_parser *p, const char *s, size_t n)
{
    const char *end = s + n;

    if (n == 0)
        return true;
    if (!line_scan(p, s, n))
        return false;
    if (p->st.lf_pending && is_ws(s[0]))
        return false;
    for (const char *q = s; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) {
        if ((q > s ? q[-1] : p->st.prev) != '\r')
            return false;
        if (q + 1 < end && is_ws(q[1]))
            return false;
    }
    p->st.prev = end[-1];
    p->st.lf_pending = end[-1] == '\n';
    return true;
}

/* Head bytes we may still feed. Past the header limit inside the request
 * target we read on until the target either ends (431) or outgrows max_url
 * (414, from on_url): the status then names the part that was too long. */
static size_t head_budget(const struct http_parser *p)
{
    const struct http_limits *l = &p->limits;

    if (p->st.head_bytes < l->max_header_bytes)
        return l->max_header_bytes - p->st.head_bytes;
    if (p->st.url_open && p->st.url_bytes <= l->max_url)
        return l->max_url + 1 - p->st.url_bytes;
    return 0;
}

static size_t execute_head(struct http_parser *p, const char *data, size_t n)
{
    if (p->st.line_only)
        return execute_line(p, data, n);

    llhttp_errno_t err = llhttp_execute(&p->llhttp, data, n);
    size_t used = consumed(&p->llhttp, data, n, err);

    p->st.head_bytes += used;
    if (!scan_head(p, data, used))
        /* The defect lies before wherever llhttp or a callback stopped, so
         * it wins: the status then does not depend on how reads split. */
        p->error_status = 400;
    else if (err == HPE_PAUSED && p->st.head_bytes > p->limits.max_header_bytes)
        fail(p, 431); /* the head ended within the extra URL budget */
    else if (err == HPE_PAUSED)
        llhttp_resume(&p->llhttp); /* paused by on_headers_complete */
    else if (err != HPE_OK && !p->error_status && unknown_method(p, err))
        p->st.line_only = true; /* feed_head() goes on with execute_line() */
    else if (err != HPE_OK)
        fail(p, 400); /* unless a callback said why */
    return used;
}

static size_t feed_head(struct http_parser *p, const char *data, size_t len)
{
    size_t off = 0;

    while (off < len && !p->head_done && !p->error_status) {
        size_t budget = head_budget(p);
        if (budget == 0) {
            fail(p, 431);
            break;
        }
        size_t n = len - off < budget ? len - off : budget;
        off += execute_head(p, data + off, n);
    }
    return off;
}

/* Body-phase bytes we may still feed. Chunk framing is not body, yet a
 * client could send it forever (llhttp takes any number of leading zeros
 * in a chunk size, and extensions): allow the body limit plus one head's
 * worth of framing. */
static uint64_t body_budget(const struct http_parser *p)
{
    uint64_t limit = p->limits.max_body + p->limits.max_header_bytes;

    return p->st.body_wire < limit ? limit - p->st.body_wire : 0;
}

static size_t feed_body(struct http_parser *p, const char *data, size_t len)
{
    uint64_t budget = body_budget(p);
    size_t n = len < budget ? len : (size_t)budget;

    /* Runs even for n == 0: a request without a body completes only when
     * llhttp is called once more after the head pause. */
    llhttp_errno_t err = llhttp_execute(&p->llhttp, data, n);
    size_t used = consumed(&p->llhttp, data, n, err);

    p->st.body_wire += used;
    if (err == HPE_PAUSED && p->complete)
        return used;
    if (err != HPE_OK)
        fail(p, 400); /* unless a callback said why */
    else if (n < len)
        fail(p, 413);
    return used;
}

size_t http_parse(struct http_parser *p, const char *data, size_t len)
{
    size_t off = 0;

    if (p->complete || p->error_status)
        return 0;
    if (!p->head_done) {
        off = feed_head(p, data, len);
        if (!p->head_done || p->error_status)
            return off;
    }
    return off + feed_body(p, data + off, len - off);
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

static char *put2(char *s, int v)
{
    s[0] = (char)('0' + v / 10 % 10);
    s[1] = (char)('0' + v % 10);
    return s + 2;
}

/* IMF-fixdate by hand: strftime would consult the locale for the names. */
static void format_date(char *s, time_t now)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;

    if (gmtime_r(&now, &tm) == NULL) {
        time_t epoch = 0;
        gmtime_r(&epoch, &tm);
    }
    memcpy(s, days + 3 * tm.tm_wday, 3);
    memcpy(s + 3, ", ", 2);
    s = put2(s + 5, tm.tm_mday);
    *s++ = ' ';
    memcpy(s, months + 3 * tm.tm_mon, 3);
    s[3] = ' ';
    s = put2(put2(s + 4, (tm.tm_year + 1900) / 100), (tm.tm_year + 1900) % 100);
    *s++ = ' ';
    s = put2(s, tm.tm_hour);
    *s++ = ':';
    s = put2(s, tm.tm_min);
    *s++ = ':';
    s = put2(s, tm.tm_sec);
    memcpy(s, " GMT", 5);
}

const char *http_date(time_t now)
{
    /* Per thread, so a second event loop thread would stay correct. */
    static _Thread_local char cache[HTTP_DATE_LEN + 1];
    static _Thread_local time_t cached_at;
    static _Thread_local bool valid;

    if (!valid || now != cached_at) {
        format_date(cache, now);
        cached_at = now;
        valid = true;
    }
    return cache;
}

/* An output cursor that turns NULL once anything failed to fit, so the
 * formatter checks for overflow once, at the end. */
struct out {
    char *p;
    char *end;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->p == NULL)
        return;
    if ((size_t)(o->end - o->p) < n) {
        o->p = NULL;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

size_t http_u64(char *dst, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    memcpy(dst, tmp + i, sizeof(tmp) - i);
    return sizeof(tmp) - i;
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[20];
    put(o, tmp, http_u64(tmp, v));
}

static void put_headers(struct out *o, const struct http_reply *r)
{
    PUT_LIT(o, "Date: ");
    put(o, http_date(r->now ? r->now : time(NULL)), HTTP_DATE_LEN);
    PUT_LIT(o, "\r\nServer: turnstile\r\n");
    if (r->content_type || r->body_len) {
        PUT_LIT(o, "Content-Type: ");
        put_str(o, r->content_type ? r->content_type : "text/plain; charset=utf-8");
        PUT_LIT(o, "\r\n");
    }
    /* RFC 9110 8.6: never in a 1xx or 204 reply; a stream has no end. */
    if (r->status >= 200 && r->status != 204 && !r->stream) {
        PUT_LIT(o, "Content-Length: ");
        put_u64(o, r->body_len);
        PUT_LIT(o, "\r\n");
    }
    if (!r->keep_alive || r->stream)
        PUT_LIT(o, "Connection: close\r\n");
    else if (r->http10)
        PUT_LIT(o, "Connection: keep-alive\r\n");
    if (r->extra_headers)
        put_str(o, r->extra_headers);
}

size_t http_format_reply(char *buf, size_t cap, const struct http_reply *r)
{
    struct out o = {buf, buf + cap};
    bool interim = r->status < 200;

    if (r->status < 100 || r->status > 999)
        return 0;
    PUT_LIT(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)r->status);
    PUT_LIT(&o, " ");
    put_str(&o, http_reason(r->status));
    PUT_LIT(&o, "\r\n");
    /* An interim reply is followed by the final one, which carries the
     * rest (RFC 9110 15.2): HTTP_CONTINUE is exactly this. */
    if (interim && r->extra_headers)
        put_str(&o, r->extra_headers);
    else if (!interim)
        put_headers(&o, r);
    PUT_LIT(&o, "\r\n");
    /* RFC 9110 6.4.1: no content in a 1xx or 204 reply, nor after HEAD. */
    if (!r->head && !interim && r->status != 204 && r->body_len)
        put(&o, r->body, r->body_len);
    return o.p ? (size_t)(o.p - buf) : 0;
}

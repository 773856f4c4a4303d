/* http: the llhttp wrapper. See http.h.
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
 *    lines without a version, several spaces, "RTSP/1.0" and "ICE/1.0"
 *    (reqline.c).
 * The body phase feeds the rest until on_message_complete pauses the parser,
 * which leaves pipelined bytes unconsumed.
 *
 * What llhttp does not look at, the callbacks check byte by byte as the
 * pieces arrive, with a few bytes of state each and no copy: the target's
 * path (normalised into req.path, here), and the values of Host, Expect and
 * Transfer-Encoding (fields.c). Every verdict is tied to the byte that decides it, so
 * it does not depend on how reads split the request. */
#include "http.h"

#include <string.h>
#include <strings.h>

#include "abnf.h"

static int fail(struct http_parser *p, int status)
{
    if (!p->error_status)
        p->error_status = status;
    /* Any value but 0 and HPE_PAUSED stops llhttp; on_headers_complete
     * gives 1 and 2 a meaning, HPE_USER has none anywhere. */
    return HPE_USER;
}

/* ---- the request line ---- */

/* llhttp stops at a method it does not know, and at the version of one it
 * knows only for RTSP ("DESCRIBE / HTTP/1.1"). RFC 9110 9.1 asks for 501
 * there, but only a well-formed line deserves it: the line check reads on. */
static bool unknown_method(const struct http_parser *p, llhttp_errno_t err)
{
    if (err == HPE_INVALID_METHOD)
        return true;
    return err == HPE_INVALID_CONSTANT && p->llhttp.method > HTTP_PRI &&
           p->st.line.state == REQLINE_MAJOR;
}

/* Once llhttp gave up on the method (line_only), we read the rest of the
 * line ourselves, for its 501 or 505. The head budget allows for the
 * target as in llhttp mode (see on_url). */
static size_t execute_line(struct http_parser *p, const char *data, size_t n)
{
    const struct http_limits *l = &p->limits;
    size_t i = 0;

    while (i < n && p->st.line.state < REQLINE_DONE) {
        reqline_step(&p->st.line, (unsigned char)data[i++]);
        p->st.url_open = p->st.line.state == REQLINE_TARGET;
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
    if (p->st.line.state == REQLINE_BAD)
        fail(p, 400);
    else if (p->st.line.state == REQLINE_DONE)
        fail(p, p->st.line.major == '1' ? 501 : 505);
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
    if (abnf_unreserved(c)) {
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
        int v = abnf_hex((unsigned char)c);
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

/* RFC 9112 3.2.4: "*" is the target of a server-wide OPTIONS and of
 * nothing else (judged with the head: the version's 505 comes first, as
 * for the HTTP/2 preface "PRI * HTTP/2.0"). */
static bool asterisk_form(const struct http_parser *p)
{
    const struct http_request *r = &p->req;

    return p->st.url_bytes == 1 && r->path_len == 1 && r->path[0] == '*';
}

static int on_url_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;
    int status = path_finish(p);

    p->req.asterisk = !status && asterisk_form(p);
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

/* ---- header fields (fields.c reads the ones we judge) ---- */

static int on_header_field(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;

    /* llhttp takes "Ho st:" and "Host :" (RFC 9112 5.1: MUST reject with
     * 400) as long as the name is not one it interprets itself. */
    if (memchr(at, ' ', n) != NULL)
        return fail(p, 400);
    p->st.field_len += n;
    fields_name(&p->st.fields, at, n);
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
    int status = fields_name_end(&p->st.fields, p->head_done);
    return status ? fail(p, status) : 0;
}

static int on_header_value(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;
    int status = fields_value(&p->st.fields, at, n);

    return status ? fail(p, status) : 0;
}

static int on_header_value_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;
    int status = fields_value_end(&p->st.fields);

    return status ? fail(p, status) : 0;
}

/* ---- the end of the head ---- */

static bool has_body(const llhttp_t *h)
{
    return (h->flags & F_CHUNKED) || ((h->flags & F_CONTENT_LENGTH) && h->content_length > 0);
}

/* An Idempotency-Key with an empty value gets no value callback: it is a
 * field without a key, as bad as a malformed one. */
static void copy_idem(struct http_request *req, const struct fields *f)
{
    req->idem_bad = f->idem_bad || (f->idem_fields > 0 && f->idem_len == 0);
    req->idem_len = req->idem_bad ? 0 : f->idem_len;
    memcpy(req->idem_key, f->idem, req->idem_len);
}

static int on_headers_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;
    int status = fields_verdict(&p->st.fields, h, p->limits.max_body);

    if (!status && p->req.asterisk && h->method != HTTP_OPTIONS)
        status = 400;
    if (status)
        return fail(p, status);
    p->req.method = h->method;
    p->req.major = 1;
    p->req.minor = h->http_minor > 0;
    /* RFC 9110 10.1.1: an HTTP/1.0 client's 100-continue is ignored, and
     * without a body there is nothing to wait for. */
    p->req.expect_continue = p->st.fields.expect_continue && p->req.minor == 1 && has_body(h);
    copy_idem(&p->req, &p->st.fields);
    p->head_done = true;
    if (h->flags & F_CHUNKED)
        chunkline_start(&p->st.chunk);
    /* Pause so feed_head() learns where the head ends; it resumes. */
    return HPE_PAUSED;
}

/* The next byte begins a chunk-size line (or the trailers): pause, so
 * that execute_body() hands it to chunkline from its first byte. */
static int on_chunk_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;

    chunkline_start(&p->st.chunk);
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
    .on_chunk_complete = on_chunk_complete,
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
    r->asterisk = false;
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
    if (!reqline_scan(&p->st.line, s, n))
        return false;
    if (p->st.lf_pending && abnf_ws(s[0]))
        return false;
    for (const char *q = s; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) {
        if ((q > s ? q[-1] : p->st.prev) != '\r')
            return false;
        if (q + 1 < end && abnf_ws(q[1]))
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

/* Feeds llhttp the body's bytes, less the blanks chunkline holds back, and
 * goes on after each chunk's pause (on_chunk_complete). Calls llhttp even
 * for n == 0: a request without a body completes only when llhttp is
 * called once more after the head pause. Returns the bytes used, dropped
 * blanks included; *err is llhttp's last word, HPE_USER for a bad line. */
static size_t execute_body(struct http_parser *p, const char *data, size_t n, llhttp_errno_t *err)
{
    size_t off = 0;

    for (;;) {
        size_t k = chunkline_pass(&p->st.chunk, data + off, n - off);
        *err = llhttp_execute(&p->llhttp, data + off, k);
        off += consumed(&p->llhttp, data + off, k, *err);
        if (*err == HPE_PAUSED && !p->complete) {
            llhttp_resume(&p->llhttp); /* a chunk ended: its successor's size line is next */
            continue;
        }
        if (*err != HPE_OK || off == n)
            return off;
        if (p->st.chunk.state == CHUNKLINE_BAD) {
            *err = fail(p, 400);
            return off;
        }
        off++; /* a blank before a chunk extension's ';' */
    }
}

static size_t feed_body(struct http_parser *p, const char *data, size_t len)
{
    uint64_t budget = body_budget(p);
    size_t n = len < budget ? len : (size_t)budget;
    llhttp_errno_t err;
    size_t used = execute_body(p, data, n, &err);

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

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
 *  - HTTP/0.9 and HTTP/2.0 request lines, and request lines with no version.
 * The body phase feeds the rest until on_message_complete pauses the parser,
 * which leaves pipelined bytes unconsumed. */
#include "http.h"

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

/* Keeps the path part of the target: stops at '?' or '#', truncates (and
 * flags) past HTTP_MAX_PATH. */
static void copy_path(struct http_parser *p, const char *at, size_t n)
{
    struct http_request *r = &p->req;
    for (size_t i = 0; i < n && !p->st.path_done; i++) {
        if (at[i] == '?' || at[i] == '#')
            p->st.path_done = true;
        else if (r->path_len < HTTP_MAX_PATH)
            r->path[r->path_len++] = at[i];
        else
            r->path_truncated = true;
    }
    r->path[r->path_len] = '\0';
}

static int on_url(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;

    /* Counted across calls: llhttp hands over the target in pieces when it
     * spans several reads. */
    p->st.url_open = true;
    p->st.url_bytes += n;
    if (p->st.url_bytes > p->limits.max_url)
        return fail(p, 414);
    copy_path(p, at, n);
    return 0;
}

/* RFC 9112 3.2.2: a server must accept the absolute form
 * ("GET http://host/path"); routes only want the path. */
static void strip_authority(struct http_request *r)
{
    size_t skip;

    if (r->path_len >= 7 && strncasecmp(r->path, "http://", 7) == 0)
        skip = 7;
    else if (r->path_len >= 8 && strncasecmp(r->path, "https://", 8) == 0)
        skip = 8;
    else
        return;
    const char *slash = memchr(r->path + skip, '/', r->path_len - skip);
    if (slash == NULL) {
        r->path_len = 1; /* an empty path is "/" */
        r->path[0] = '/';
    } else {
        r->path_len -= (size_t)(slash - r->path);
        memmove(r->path, slash, r->path_len);
    }
    r->path[r->path_len] = '\0';
}

static int on_url_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;

    p->st.url_open = false;
    strip_authority(&p->req);
    return 0;
}

static int on_version(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;

    /* Kept only to tell "HTTP/1.2" (505) from "HTTP/x.y" (400): llhttp
     * reports both as HPE_INVALID_VERSION. */
    for (size_t i = 0; i < n; i++, p->st.version_len++)
        if (p->st.version_len < sizeof(p->st.version))
            p->st.version[p->st.version_len] = at[i];
    return 0;
}

static int on_version_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;

    /* llhttp accepts 0.9, 1.0, 1.1 and 2.0; we speak 1.0 and 1.1 only. */
    p->st.version_done = true;
    if (h->http_major != 1 || h->http_minor > 1)
        return fail(p, 505);
    return 0;
}

static int on_header_field(llhttp_t *h, const char *at, size_t n)
{
    struct http_parser *p = h->data;

    /* llhttp takes "Ho st:" and "Host :" (RFC 9112 5.1: MUST reject with
     * 400) as long as the name is not one it interprets itself. */
    if (memchr(at, ' ', n) != NULL)
        return fail(p, 400);
    p->st.field_len += n;
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
    return 0;
}

static int on_headers_complete(llhttp_t *h)
{
    struct http_parser *p = h->data;

    /* "GET /\r\n" is an HTTP/0.9 simple request: llhttp takes it, and
     * never calls on_version. */
    if (p->st.version_len == 0)
        return fail(p, 400);
    /* Refuse an oversized body before reading any of it. */
    if ((h->flags & F_CONTENT_LENGTH) && h->content_length > p->limits.max_body)
        return fail(p, 413);
    p->req.method = h->method;
    p->req.major = h->http_major;
    p->req.minor = h->http_minor;
    p->st.head_done = true;
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
    .on_version = on_version,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
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
    r->body_bytes = 0;
    memset(&p->st, 0, sizeof(p->st));
    p->complete = false;
}

void http_parser_init(struct http_parser *p, const struct http_limits *limits)
{
    static const struct http_limits defaults = HTTP_LIMITS_DEFAULT;

    p->limits = limits ? *limits : defaults;
    p->error_status = 0;
    reset_request(p);
    llhttp_init(&p->llhttp, HTTP_REQUEST, &settings);
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
    return p->st.head_bytes == 0 && !p->st.head_done && !p->complete && !p->error_status;
}

/* Bytes llhttp consumed before it stopped with err. */
static size_t consumed(const llhttp_t *h, const char *data, size_t n, llhttp_errno_t err)
{
    if (err == HPE_OK)
        return n;
    const char *pos = llhttp_get_error_pos(h);
    return pos ? (size_t)(pos - data) : n;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The status for an error llhttp found itself; callbacks set their own. */
static void set_error(struct http_parser *p, llhttp_errno_t err)
{
    const char *v = p->st.version;

    if (p->error_status)
        return;
    /* llhttp rejects "HTTP/1.2" before on_version_complete, and "HTTP/1.1x"
     * after it, both as HPE_INVALID_VERSION. */
    if (err == HPE_INVALID_VERSION && !p->st.version_done && p->st.version_len == 3 &&
        is_digit(v[0]) && v[1] == '.' && is_digit(v[2]))
        p->error_status = 505; /* well-formed, just not 1.0 or 1.1 */
    else
        p->error_status = 400;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* Every LF of a head must follow a CR (no bare LF) and must not be followed
 * by SP or HTAB (no obs-fold). RFC 9112 allows refusing both, and lenient
 * line endings are where request smuggling starts. Returns false on either. */
static bool scan_head(struct http_parser *p, const char *s, size_t n)
{
    const char *end = s + n;

    if (n == 0)
        return true;
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
    llhttp_errno_t err = llhttp_execute(&p->llhttp, data, n);
    size_t used = consumed(&p->llhttp, data, n, err);

    p->st.head_bytes += used;
    if (!scan_head(p, data, used))
        /* The defect lies before wherever llhttp or a callback stopped, so
         * it wins: the status then does not depend on how reads split. */
        p->error_status = 400;
    else if (err != HPE_OK && err != HPE_PAUSED)
        set_error(p, err);
    else if (err == HPE_PAUSED && p->st.head_bytes > p->limits.max_header_bytes)
        fail(p, 431); /* the head ended within the extra URL budget */
    else if (err == HPE_PAUSED)
        llhttp_resume(&p->llhttp); /* paused by on_headers_complete */
    return used;
}

static size_t feed_head(struct http_parser *p, const char *data, size_t len)
{
    size_t off = 0;

    while (off < len && !p->st.head_done && !p->error_status) {
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
        set_error(p, err);
    else if (n < len)
        fail(p, 413);
    return used;
}

size_t http_parse(struct http_parser *p, const char *data, size_t len)
{
    size_t off = 0;

    if (p->complete || p->error_status)
        return 0;
    if (!p->st.head_done) {
        off = feed_head(p, data, len);
        if (!p->st.head_done || p->error_status)
            return off;
    }
    return off + feed_body(p, data + off, len - off);
}

const char *http_reason(int status)
{
    switch (status) {
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

    if (r->status < 100 || r->status > 999)
        return 0;
    PUT_LIT(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)r->status);
    PUT_LIT(&o, " ");
    put_str(&o, http_reason(r->status));
    PUT_LIT(&o, "\r\n");
    put_headers(&o, r);
    PUT_LIT(&o, "\r\n");
    if (!r->head && r->body_len)
        put(&o, r->body, r->body_len);
    return o.p ? (size_t)(o.p - buf) : 0;
}

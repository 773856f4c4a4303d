/* reply: HTTP/1.1 responses, formatted whole. See reply.h. */
#include "reply.h"

#include <string.h>

const char *reply_reason(int status)
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

const char *reply_date(time_t now)
{
    /* Per thread, so a second event loop thread would stay correct. */
    static _Thread_local char cache[REPLY_DATE_LEN + 1];
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

size_t reply_u64(char *dst, uint64_t v)
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
    put(o, tmp, reply_u64(tmp, v));
}

static void put_headers(struct out *o, const struct reply *r)
{
    PUT_LIT(o, "Date: ");
    put(o, reply_date(r->now ? r->now : time(NULL)), REPLY_DATE_LEN);
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

size_t reply_format(char *buf, size_t cap, const struct reply *r)
{
    struct out o = {buf, buf + cap};
    bool interim = r->status < 200;

    if (r->status < 100 || r->status > 999)
        return 0;
    PUT_LIT(&o, "HTTP/1.1 ");
    put_u64(&o, (uint64_t)r->status);
    PUT_LIT(&o, " ");
    put_str(&o, reply_reason(r->status));
    PUT_LIT(&o, "\r\n");
    /* An interim reply is followed by the final one, which carries the
     * rest (RFC 9110 15.2): REPLY_CONTINUE is exactly this. */
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

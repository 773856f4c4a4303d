/* etcd_json: a strict scanner of the gateway's JSON. See etcd_json.h.
 *
 * Why not jansson (which this replaced on every reply): it builds a tree
 * of allocated values for each reply and each watch message, and that
 * was a fifth of a cluster instance's CPU (issue 28). The gateway's
 * shapes are fixed and small; a flat token array read in place costs one
 * pass and no allocation once the array has grown. */
#include "etcd_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TOK_FIRST 64     /* tokens of a new array */
#define TOK_KEEP  65536u /* an array larger than this is not kept for the next text */
#define INT_CHARS 32     /* a decimal int64 string is shorter than this */

struct etcd_json_tok {
    uint8_t type;   /* enum etcd_json_type */
    bool escaped;   /* a string with a '\\' in it */
    uint32_t start; /* where its text starts (a string's: after the quote) */
    uint32_t len;   /* its text's length (a string's: without the quotes) */
    uint32_t next;  /* the next element or member name of its container; 0: none */
    uint32_t count; /* an array's elements, an object's members */
};

/* ---- scanning ---- */

struct scan {
    struct etcd_json *j;
    const char *s;
    size_t n, pos;
    int depth;
};

static int tok_add(struct scan *sc, enum etcd_json_type type, size_t start)
{
    struct etcd_json *j = sc->j;
    if (j->n == j->cap) {
        uint32_t cap = j->cap ? j->cap * 2 : TOK_FIRST;
        struct etcd_json_tok *tok = realloc(j->tok, cap * sizeof(*tok));
        if (!tok)
            return -ENOMEM;
        j->tok = tok;
        j->cap = cap;
    }
    j->tok[j->n] = (struct etcd_json_tok){.type = (uint8_t)type, .start = (uint32_t)start};
    return (int)j->n++;
}

static void skip_blanks(struct scan *sc)
{
    while (sc->pos < sc->n && (sc->s[sc->pos] == ' ' || sc->s[sc->pos] == '\t' ||
                               sc->s[sc->pos] == '\n' || sc->s[sc->pos] == '\r'))
        sc->pos++;
}

/* The next byte, or 0 at the end (a NUL in the text is never valid there). */
static char peek(const struct scan *sc)
{
    return sc->pos < sc->n ? sc->s[sc->pos] : '\0';
}

static int hex4(const char *s, size_t left, unsigned *out)
{
    *out = 0;
    if (left < 4)
        return -EIO;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d > 15)
            return -EIO;
        *out = *out << 4 | d;
    }
    return 0;
}

/* The length of the escape at s (after its '\\'), left bytes there; 0 if
 * invalid. A high surrogate must be followed by a low one. */
static size_t escape_len(const char *s, size_t left)
{
    unsigned u, low;
    if (left < 1)
        return 0;
    if (s[0] != 'u')
        return s[0] && strchr("\"\\/bfnrt", s[0]) ? 1 : 0;
    if (hex4(s + 1, left - 1, &u) < 0 || (u >= 0xDC00 && u <= 0xDFFF))
        return 0;
    if (u < 0xD800 || u > 0xDBFF)
        return 5;
    if (left < 11 || s[5] != '\\' || s[6] != 'u' || hex4(s + 7, left - 7, &low) < 0)
        return 0;
    return low >= 0xDC00 && low <= 0xDFFF ? 11 : 0;
}

/* The length of the UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF); 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len = c >= 0xC2 && c <= 0xDF   ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (len == 0 || left < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* A string at the opening quote. */
static int scan_string(struct scan *sc)
{
    int t = tok_add(sc, ETCD_JSON_STRING, ++sc->pos);
    if (t < 0)
        return t;
    while (sc->pos < sc->n) {
        unsigned char c = (unsigned char)sc->s[sc->pos];
        size_t step = 1;
        if (c == '"') {
            sc->j->tok[t].len = (uint32_t)(sc->pos++ - sc->j->tok[t].start);
            return t;
        }
        if (c == '\\') {
            size_t len = escape_len(sc->s + sc->pos + 1, sc->n - sc->pos - 1);
            step = len ? 1 + len : 0;
            sc->j->tok[t].escaped = true;
        } else if (c >= 0x80) {
            step = utf8_len((const unsigned char *)sc->s + sc->pos, sc->n - sc->pos);
        }
        if (c < 0x20 || step == 0)
            return -EIO;
        sc->pos += step;
    }
    return -EIO; /* cut short */
}

static bool scan_digits(struct scan *sc)
{
    size_t from = sc->pos;
    while (peek(sc) >= '0' && peek(sc) <= '9')
        sc->pos++;
    return sc->pos > from;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(struct scan *sc)
{
    size_t start = sc->pos;
    if (peek(sc) == '-')
        sc->pos++;
    if (peek(sc) == '0')
        sc->pos++;
    else if (!scan_digits(sc))
        return -EIO;
    if (peek(sc) == '.' && (sc->pos++, !scan_digits(sc)))
        return -EIO;
    if (peek(sc) == 'e' || peek(sc) == 'E') {
        sc->pos++;
        if (peek(sc) == '+' || peek(sc) == '-')
            sc->pos++;
        if (!scan_digits(sc))
            return -EIO;
    }
    int t = tok_add(sc, ETCD_JSON_NUMBER, start);
    if (t >= 0)
        sc->j->tok[t].len = (uint32_t)(sc->pos - start);
    return t;
}

static int scan_literal(struct scan *sc, const char *word, enum etcd_json_type type)
{
    size_t len = strlen(word);
    if (sc->n - sc->pos < len || memcmp(sc->s + sc->pos, word, len) != 0)
        return -EIO;
    int t = tok_add(sc, type, sc->pos);
    sc->pos += len;
    return t;
}

static int scan_value(struct scan *sc);

/* A member of an object: its name's token (its value's follows it). */
static int scan_member(struct scan *sc)
{
    int name = peek(sc) == '"' ? scan_string(sc) : -EIO;
    if (name < 0)
        return name;
    skip_blanks(sc);
    if (peek(sc) != ':')
        return -EIO;
    sc->pos++;
    int value = scan_value(sc);
    return value < 0 ? value : name;
}

/* The elements of an array, or the members of an object (members: name,
 * ':', value), up to the closing bracket; links each to the next. */
static int scan_items(struct scan *sc, int t, bool members, char close)
{
    int prev = -1;
    skip_blanks(sc);
    if (peek(sc) == close) {
        sc->pos++;
        return t;
    }
    for (;;) {
        skip_blanks(sc);
        int item = members ? scan_member(sc) : scan_value(sc);
        if (item < 0)
            return item;
        if (prev >= 0)
            sc->j->tok[prev].next = (uint32_t)item;
        prev = item;
        sc->j->tok[t].count++;
        skip_blanks(sc);
        char c = peek(sc);
        sc->pos++;
        if (c == close)
            return t;
        if (c != ',')
            return -EIO;
    }
}

static int scan_container(struct scan *sc, enum etcd_json_type type)
{
    if (++sc->depth > ETCD_JSON_MAX_DEPTH)
        return -EIO;
    int t = tok_add(sc, type, sc->pos++);
    if (t >= 0)
        t = scan_items(sc, t, type == ETCD_JSON_OBJECT, type == ETCD_JSON_OBJECT ? '}' : ']');
    sc->depth--;
    return t;
}

/* One value, blanks before it skipped: its token, or an error. */
static int scan_value(struct scan *sc)
{
    skip_blanks(sc);
    switch (peek(sc)) {
    case '{':
        return scan_container(sc, ETCD_JSON_OBJECT);
    case '[':
        return scan_container(sc, ETCD_JSON_ARRAY);
    case '"':
        return scan_string(sc);
    case 't':
        return scan_literal(sc, "true", ETCD_JSON_TRUE);
    case 'f':
        return scan_literal(sc, "false", ETCD_JSON_FALSE);
    case 'n':
        return scan_literal(sc, "null", ETCD_JSON_NULL);
    default:
        return scan_number(sc);
    }
}

int etcd_json_parse(struct etcd_json *j, const char *text, size_t len)
{
    if (j->cap > TOK_KEEP)
        etcd_json_free(j);
    j->text = text;
    j->n = 0;
    if (len >= UINT32_MAX)
        return -EIO;
    struct scan sc = {.j = j, .s = text, .n = len};
    int rc = scan_value(&sc);
    skip_blanks(&sc);
    if (rc >= 0 && sc.pos != len)
        rc = -EIO; /* something after the value */
    if (rc < 0)
        j->n = 0;
    return rc < 0 ? rc : 0;
}

void etcd_json_free(struct etcd_json *j)
{
    free(j->tok);
    *j = (struct etcd_json){0};
}

/* ---- reading ---- */

/* A value's `at` is its token's index + 1, so that a zeroed one is none. */
#define JV_NONE 0
#define JV_BAD  (-1)

static struct etcd_jv jv(const struct etcd_json *j, int32_t at)
{
    return (struct etcd_jv){.json = j, .at = at};
}

/* Token t's value. */
static struct etcd_jv jv_tok(const struct etcd_json *j, uint32_t t)
{
    return jv(j, (int32_t)t + 1);
}

static const struct etcd_json_tok *tok_of(struct etcd_jv v)
{
    return v.at > 0 ? &v.json->tok[v.at - 1] : NULL;
}

struct etcd_jv etcd_json_root(const struct etcd_json *j)
{
    return j->n ? jv_tok(j, 0) : jv(j, JV_NONE);
}

enum etcd_json_type etcd_json_type(struct etcd_jv v)
{
    return v.at == JV_BAD ? ETCD_JSON_BAD : v.at == JV_NONE ? ETCD_JSON_NONE : tok_of(v)->type;
}

/* The bytes the character or escape at s[*i] stands for, into out (up to
 * 4); *i moves past it. The text was checked when it was scanned. */
static size_t unescape_one(const char *s, size_t *i, char out[4])
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    unsigned u, low;
    if (s[*i] != '\\') {
        out[0] = s[(*i)++];
        return 1;
    }
    if (s[*i + 1] != 'u') {
        out[0] = to[strchr(from, s[*i + 1]) - from];
        *i += 2;
        return 1;
    }
    hex4(s + *i + 2, 4, &u);
    *i += 6;
    if (u >= 0xD800 && u <= 0xDBFF) {
        hex4(s + *i + 2, 4, &low);
        *i += 6;
        u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
    }
    if (u < 0x80) {
        out[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (char)(0xC0 | u >> 6);
        out[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    size_t n = u < 0x10000 ? 3 : 4;
    out[0] = (char)(n == 3 ? 0xE0 | u >> 12 : 0xF0 | u >> 18);
    for (size_t k = 1; k < n; k++)
        out[k] = (char)(0x80 | ((u >> (6 * (n - 1 - k))) & 0x3F));
    return n;
}

/* Whether string token t says exactly text (len bytes). */
static bool string_eq(const struct etcd_json *j, const struct etcd_json_tok *t, const char *text,
                      size_t len)
{
    const char *s = j->text + t->start;
    if (!t->escaped)
        return t->len == len && memcmp(s, text, len) == 0;
    size_t i = 0, at = 0;
    char bytes[4];
    while (i < t->len) {
        size_t n = unescape_one(s, &i, bytes);
        if (n > len - at || memcmp(text + at, bytes, n) != 0)
            return false;
        at += n;
    }
    return at == len;
}

struct etcd_jv etcd_json_get(struct etcd_jv obj, const char *name)
{
    const struct etcd_json_tok *o = tok_of(obj);
    if (!o)
        return obj; /* none stays none, bad stays bad */
    if (o->type != ETCD_JSON_OBJECT)
        return jv(obj.json, JV_BAD);
    size_t len = strlen(name);
    struct etcd_jv found = jv(obj.json, JV_NONE);
    uint32_t key = o->count ? (uint32_t)obj.at : 0; /* the first name's token follows obj's */
    for (; key; key = obj.json->tok[key].next) {
        if (!string_eq(obj.json, &obj.json->tok[key], name, len))
            continue;
        if (found.at != JV_NONE)
            return jv(obj.json, JV_BAD); /* named twice: which one is meant? */
        found = jv_tok(obj.json, key + 1);
    }
    return found;
}

size_t etcd_json_count(struct etcd_jv v)
{
    const struct etcd_json_tok *t = tok_of(v);
    return t && (t->type == ETCD_JSON_ARRAY || t->type == ETCD_JSON_OBJECT) ? t->count : 0;
}

struct etcd_jv etcd_json_first(struct etcd_jv array)
{
    const struct etcd_json_tok *t = tok_of(array);
    bool any = t && t->type == ETCD_JSON_ARRAY && t->count;
    return any ? jv_tok(array.json, (uint32_t)array.at) : jv(array.json, JV_NONE);
}

struct etcd_jv etcd_json_next(struct etcd_jv v)
{
    const struct etcd_json_tok *t = tok_of(v);
    return t && t->next ? jv_tok(v.json, t->next) : jv(v.json, JV_NONE);
}

/* -?[0-9]+ within int64. */
static int int_of(const char *s, size_t len, int64_t *out)
{
    bool neg = len > 0 && s[0] == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, n = 0;
    size_t i = neg;
    if (i == len)
        return -EIO;
    for (; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || n > (limit - d) / 10)
            return -EIO;
        n = n * 10 + d;
    }
    *out = neg ? (int64_t)(0 - n) : (int64_t)n;
    return 0;
}

int etcd_json_int(struct etcd_jv v, int64_t *out)
{
    const struct etcd_json_tok *t = tok_of(v);
    char text[INT_CHARS];
    size_t len;
    *out = 0;
    if (v.at == JV_NONE)
        return 0;
    if (t && t->type == ETCD_JSON_NUMBER)
        return int_of(v.json->text + t->start, t->len, out); /* a fraction or exponent: -EIO */
    if (etcd_json_string(v, text, sizeof(text), &len) < 0 || len >= sizeof(text))
        return -EIO;
    int rc = int_of(text, len, out);
    if (rc < 0)
        *out = 0;
    return rc;
}

int etcd_json_bool(struct etcd_jv v, bool *out)
{
    enum etcd_json_type type = etcd_json_type(v);
    *out = type == ETCD_JSON_TRUE;
    return type == ETCD_JSON_NONE || type == ETCD_JSON_TRUE || type == ETCD_JSON_FALSE ? 0 : -EIO;
}

int etcd_json_string(struct etcd_jv v, char *buf, size_t cap, size_t *len)
{
    const struct etcd_json_tok *t = tok_of(v);
    buf[0] = '\0';
    if (!t || t->type != ETCD_JSON_STRING)
        return v.at == JV_NONE ? -ENOENT : -EIO;
    const char *s = v.json->text + t->start;
    size_t i = 0, at = t->escaped ? 0 : t->len;
    char bytes[4];
    if (!t->escaped)
        memcpy(buf, s, at < cap - 1 ? at : cap - 1);
    while (t->escaped && i < t->len) {
        size_t n = unescape_one(s, &i, bytes);
        for (size_t k = 0; k < n; k++, at++)
            if (at < cap - 1)
                buf[at] = bytes[k];
    }
    buf[at < cap - 1 ? at : cap - 1] = '\0';
    if (len)
        *len = at;
    return 0;
}

size_t etcd_json_string_cap(struct etcd_jv v)
{
    const struct etcd_json_tok *t = tok_of(v);
    /* An escape never stands for more bytes than it takes. */
    return t && t->type == ETCD_JSON_STRING ? (size_t)t->len + 1 : 1;
}

bool etcd_json_string_is(struct etcd_jv v, const char *text)
{
    const struct etcd_json_tok *t = tok_of(v);
    return t && t->type == ETCD_JSON_STRING && string_eq(v.json, t, text, strlen(text));
}

/* abnf: the character classes of HTTP's grammar (RFC 5234 core rules, RFC
 * 9110 tokens, RFC 3986 unreserved), byte by byte and locale-free: what the
 * request line, target and header checks are made of. Inline: they run on
 * every byte of a head. */
#ifndef TURNSTILE_ABNF_H
#define TURNSTILE_ABNF_H

#include <stdbool.h>
#include <string.h>

/* DIGIT */
static inline bool abnf_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* ALPHA, either case */
static inline bool abnf_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

/* The value of a HEXDIG (either case), or -1 for any other byte. */
static inline int abnf_hex(unsigned char c)
{
    if (abnf_digit(c))
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* SP or HTAB: the whitespace inside a header line. */
static inline bool abnf_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* c in lower case if it is an ASCII capital, else c. */
static inline char abnf_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 'a' - 'A') : c;
}

/* RFC 3986 2.3: what a %XX may be decoded to without changing the URI. */
static inline bool abnf_unreserved(unsigned char c)
{
    return abnf_alpha(c) || abnf_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 5.6.2 tchar: what a method or a field name is made of. */
static inline bool abnf_tchar(unsigned char c)
{
    return abnf_alpha(c) || abnf_digit(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

#endif

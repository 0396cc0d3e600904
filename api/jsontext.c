/* jsontext: see jsontext.h. */
#include <string.h>

#include "../core/hex.h"
#include "jsontext.h"

#define INT_NEG_MIN "9223372036854775808"  /* -2^63, without the sign */
#define INT_POS_MAX "18446744073709551615" /* 2^64 - 1 */

static int cont(unsigned char c, unsigned char lo, unsigned char hi)
{
	return c >= lo && c <= hi;
}

size_t jsontext_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c;
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else /* a continuation byte, an over-long lead (C0, C1) or F5-FF */
		return 0;
	/* the second byte rules out the over-long forms (E0, F0), the
	 * surrogates U+D800-DFFF (ED) and what lies beyond U+10FFFF (F4) */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || !cont(p[1], lo, hi))
		return 0;
	for (size_t i = 2; i < len; i++)
		if (!cont(p[i], 0x80, 0xbf))
			return 0;
	return len;
}


/* The UTF-16 unit of the escape \uXXXX at p[0..n) (p[0] the backslash),
 * or -1 when p holds no such escape. */
static long unit_at(const unsigned char *p, size_t n)
{
	if (n < 6 || p[0] != '\\' || p[1] != 'u')
		return -1;
	return hex_u16((const char *)p + 2);
}

static int is_high(long u)
{
	return u >= 0xd800 && u <= 0xdbff;
}

static int is_low(long u)
{
	return u >= 0xdc00 && u <= 0xdfff;
}

/* The string whose opening quote is at p[*i]: moves *i past its closing
 * quote. 0, or -1 when it is not a JSON string. */
static int string_token(const unsigned char *p, size_t n, size_t *i)
{
	size_t k = *i + 1, len;

	while (k < n) {
		if (p[k] == '"') {
			*i = k + 1;
			return 0;
		}
		if (p[k] < 0x20) /* raw controls must be escaped (RFC 8259 §7) */
			return -1;
		if (p[k] == '\\') {
			if (k + 1 >= n)
				return -1;
			if (p[k + 1] == 'u') {
				long u = unit_at(p + k, n - k);

				/* a surrogate only as half of a pair (RFC 7493
				 * §2.1): alone it is no character, and json-c
				 * would put U+FFFD in its place */
				if (u < 0 || is_low(u))
					return -1;
				if (is_high(u) && !is_low(unit_at(p + k + 6, n - k - 6)))
					return -1;
				k += is_high(u) ? 12 : 6;
			} else if (strchr("\"\\/bfnrt", p[k + 1]) != NULL && p[k + 1] != '\0') {
				k += 2;
			} else {
				return -1;
			}
			continue;
		}
		if ((len = jsontext_utf8_seq(p + k, n - k)) == 0)
			return -1;
		k += len;
	}
	return -1; /* no closing quote */
}

static size_t digits(const unsigned char *t, size_t n, size_t i)
{
	size_t k = i;

	while (k < n && t[k] >= '0' && t[k] <= '9')
		k++;
	return k - i;
}

/* Whether the integer's digits t[0..n) (no sign, no leading zero) exceed
 * max, a decimal of the same kind. */
static int beyond(const unsigned char *t, size_t n, const char *max)
{
	size_t m = strlen(max);

	return n > m || (n == m && memcmp(t, max, m) > 0);
}

/* A run of the characters numbers and literals are made of, t[0..n):
 * JSONTEXT_OK, JSONTEXT_BIG_INTEGER or JSONTEXT_MALFORMED. */
static enum jsontext_result word_token(const unsigned char *t, size_t n)
{
	size_t i = 0, d;
	int neg = 0, integer = 1;

	if ((n == 4 && memcmp(t, "true", 4) == 0) || (n == 5 && memcmp(t, "false", 5) == 0) ||
	    (n == 4 && memcmp(t, "null", 4) == 0))
		return JSONTEXT_OK;
	/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
	if (i < n && t[i] == '-')
		neg = 1, i++;
	d = digits(t, n, i);
	if (d == 0 || (d > 1 && t[i] == '0'))
		return JSONTEXT_MALFORMED;
	i += d;
	if (i < n && t[i] == '.') {
		integer = 0;
		if ((d = digits(t, n, i + 1)) == 0)
			return JSONTEXT_MALFORMED;
		i += 1 + d;
	}
	if (i < n && (t[i] == 'e' || t[i] == 'E')) {
		integer = 0;
		i++;
		if (i < n && (t[i] == '+' || t[i] == '-'))
			i++;
		if ((d = digits(t, n, i)) == 0)
			return JSONTEXT_MALFORMED;
		i += d;
	}
	if (i != n)
		return JSONTEXT_MALFORMED;
	if (integer && beyond(t + neg, n - (size_t)neg, neg ? INT_NEG_MIN : INT_POS_MAX))
		return JSONTEXT_BIG_INTEGER;
	return JSONTEXT_OK;
}

static int word_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '+' || c == '-' || c == '.';
}

enum jsontext_result jsontext_check(const char *text, size_t n)
{
	const unsigned char *p = (const unsigned char *)text;
	enum jsontext_result rc = JSONTEXT_OK, w;
	size_t i = 0, k;

	while (i < n) {
		switch (p[i]) {
		case ' ': case '\t': case '\n': case '\r':
		case '{': case '}': case '[': case ']': case ':': case ',':
			i++;
			break;
		case '"':
			if (string_token(p, n, &i) < 0)
				return JSONTEXT_MALFORMED;
			break;
		default:
			/* a number or a literal; anything else (quotes ', comments,
			 * a byte order mark, NUL, bytes above 0x7F) is no token */
			for (k = i; k < n && word_char(p[k]); k++)
				;
			if (k == i || (w = word_token(p + i, k - i)) == JSONTEXT_MALFORMED)
				return JSONTEXT_MALFORMED;
			if (w == JSONTEXT_BIG_INTEGER)
				rc = w;
			i = k;
		}
	}
	return rc;
}

size_t jsontext_pairs_to_utf8(char *text, size_t n)
{
	unsigned char *p = (unsigned char *)text;
	size_t r = 0, w = 0;

	while (r < n) {
		long hi = p[r] == '\\' ? unit_at(p + r, n - r) : -1, lo;
		unsigned long cp;

		if (hi < 0) {
			/* any other escape is two bytes or \uXXXX: copied
			 * as they are (the second byte is never a quote) */
			size_t len = p[r] == '\\' && r + 1 < n ? 2 : 1;

			memmove(p + w, p + r, len);
			r += len, w += len;
			continue;
		}
		lo = unit_at(p + r + 6, n - r - 6);
		if (!is_high(hi) || !is_low(lo)) {
			memmove(p + w, p + r, 6);
			r += 6, w += 6;
			continue;
		}
		cp = 0x10000 + ((unsigned long)(hi - 0xd800) << 10) + (unsigned long)(lo - 0xdc00);

		p[w++] = (unsigned char)(0xf0 | cp >> 18);
		p[w++] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		p[w++] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		p[w++] = (unsigned char)(0x80 | (cp & 0x3f));
		r += 12;
	}
	if (w < n)
		p[w] = '\0';
	return w;
}

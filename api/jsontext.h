/* jsontext: the lexical half of reading a request body as JSON, strictly
 * by RFC 8259 and RFC 3629, which json-c 0.16 is not even with
 * JSON_TOKENER_STRICT: it takes single-quoted strings, NaN, Infinity, "1.",
 * raw control characters in strings, and any bytes of the form of UTF-8
 * (over-long forms, surrogates, code points beyond U+10FFFF); and it
 * saturates integers it cannot hold (99999999999999999999999 becomes
 * 18446744073709551615) without a word.
 *
 * jsontext_check looks at the tokens only: strings (escapes, no raw
 * controls, UTF-8), numbers (the JSON grammar), true, false, null,
 * whitespace and the six structural characters, nothing else. How they
 * nest (brackets, commas, depth) is left to json-c's strict parser, which
 * gets that right; the two together accept exactly JSON. A surrogate
 * escape must be half of a pair (RFC 7493 §2.1: "\ud800" alone is no
 * character; json-c would put U+FFFD in its place).
 *
 * json-c 0.16 also decodes some escaped pairs wrongly: a code point of
 * U+1D800-1DFFF, U+2D800-2DFFF, ... (whose low 16 bits look like a
 * surrogate) comes out as U+FFFD (json-c pull request #893, open).
 * jsontext_pairs_to_utf8 writes every pair as its UTF-8 before json-c
 * sees it, so json-c decodes only escapes it gets right. Leaf module. */
#ifndef FCGI_SSE_API_JSONTEXT_H
#define FCGI_SSE_API_JSONTEXT_H

#include <stddef.h>

enum jsontext_result {
	JSONTEXT_OK = 0,
	JSONTEXT_MALFORMED = -1,   /* a token that is not JSON, or bytes not UTF-8 */
	JSONTEXT_BIG_INTEGER = -2, /* JSON, but an integer beyond -2^63..2^64-1 */
};

/* Checks the tokens of p[0..n) (any bytes, NUL included). Returns
 * JSONTEXT_MALFORMED when one is not JSON, else JSONTEXT_BIG_INTEGER when
 * an integer (a number without fraction or exponent) lies outside
 * -9223372036854775808..18446744073709551615, the range json-c holds
 * exactly, else JSONTEXT_OK. */
enum jsontext_result jsontext_check(const char *p, size_t n);

/* The length of the UTF-8 sequence (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF) that starts p[0..n), 1 to 4, or 0 when
 * none does. */
size_t jsontext_utf8_seq(const unsigned char *p, size_t n);

/* Rewrites, in place, every escaped surrogate pair (\uD83D\uDE00) of a
 * text jsontext_check did not call malformed as the UTF-8 of its code
 * point, which is shorter; the other escapes and bytes stay as they are.
 * Returns the new length, and writes a NUL there when the text shrank. */
size_t jsontext_pairs_to_utf8(char *text, size_t n);

#endif

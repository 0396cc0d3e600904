#include "b64.h"

static const char b64url_alphabet[64] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of each byte, or -1 for bytes outside the alphabet;
 * the inverse of b64url_alphabet. */
static const signed char b64url_value[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

size_t b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void b64url_encode(const unsigned char *in, size_t n, char *out)
{
	unsigned long acc;
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		acc = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
		*out++ = b64url_alphabet[acc >> 18 & 63];
		*out++ = b64url_alphabet[acc >> 12 & 63];
		*out++ = b64url_alphabet[acc >> 6 & 63];
		*out++ = b64url_alphabet[acc & 63];
	}
	if (n - i == 1) {
		acc = (unsigned long)in[i] << 16;
		*out++ = b64url_alphabet[acc >> 18 & 63];
		*out++ = b64url_alphabet[acc >> 12 & 63];
	} else if (n - i == 2) {
		acc = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
		*out++ = b64url_alphabet[acc >> 18 & 63];
		*out++ = b64url_alphabet[acc >> 12 & 63];
		*out++ = b64url_alphabet[acc >> 6 & 63];
	}
	*out = '\0';
}

size_t b64url_decoded_max(size_t n)
{
	return n / 4 * 3 + (n % 4 == 3 ? 2 : n % 4 == 2 ? 1 : 0);
}

/* Decodes the last 2 or 3 characters s[0..rem) into 1 or 2 bytes. The
 * bits they carry beyond those bytes must be zero, or two encodings would
 * decode to the same bytes. */
static int b64url_decode_tail(const unsigned char *s, size_t rem, unsigned char *out)
{
	int a = b64url_value[s[0]], b = b64url_value[s[1]];
	int c = rem == 3 ? b64url_value[s[2]] : 0;

	if ((a | b | c) < 0)
		return -1;
	if (rem == 2) {
		if ((b & 15) != 0)
			return -1;
		out[0] = (unsigned char)(a << 2 | b >> 4);
		return 0;
	}
	if ((c & 3) != 0)
		return -1;
	out[0] = (unsigned char)(a << 2 | b >> 4);
	out[1] = (unsigned char)((b & 15) << 4 | c >> 2);
	return 0;
}

int b64url_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i, o = 0;
	unsigned long v;
	int a, b, c, d;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i + 4 <= n; i += 4) {
		a = b64url_value[s[i]];
		b = b64url_value[s[i + 1]];
		c = b64url_value[s[i + 2]];
		d = b64url_value[s[i + 3]];
		if ((a | b | c | d) < 0)
			return -1;
		v = (unsigned long)a << 18 | (unsigned long)b << 12 | (unsigned long)c << 6 |
		    (unsigned long)d;
		out[o++] = (unsigned char)(v >> 16);
		out[o++] = (unsigned char)(v >> 8);
		out[o++] = (unsigned char)v;
	}
	if (n - i > 0) {
		if (b64url_decode_tail(s + i, n - i, out + o) < 0)
			return -1;
		o += n - i - 1;
	}
	*outlen = o;
	return 0;
}

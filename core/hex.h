/* hex: hexadecimal digits as the parsers of untrusted text read them
 * (%XX in a query, \uXXXX in JSON). Pure, no locale. */
#ifndef FCGI_SSE_HEX_H
#define FCGI_SSE_HEX_H

/* The value of the hex digit c (either case), or -1. */
static inline int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The value of the four hex digits at p (0..0xffff), or -1 when one is
 * not a hex digit (p must have four bytes to read, or a NUL before). */
static inline long hex_u16(const char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int d = hex_digit((unsigned char)p[i]);
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

#endif

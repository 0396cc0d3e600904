#include "session.h"

#include <openssl/rand.h>
#include <string.h>

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int session_id_new(char *out)
{
	unsigned char raw[16];
	unsigned bits = 0, acc = 0;
	size_t o = 0;

	out[0] = '\0';
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = b64url[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return 0;
}

int session_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n != SESSION_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strchr(b64url, s[i]) == NULL || s[i] == '\0')
			return 0;
	/* 128 bits fill 21 characters and 2 bits of the 22nd: its low 4 bits
	 * are always zero in an id we issued */
	return ((strchr(b64url, s[n - 1]) - b64url) & 15) == 0;
}

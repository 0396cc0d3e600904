#include "reqid.h"

#include <openssl/rand.h>
#include <string.h>

int reqid_is_sane(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];
		if (n >= 64)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-'))
			return 0;
	}
	return n > 0;
}

int reqid_generate(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[REQID_GENERATED_LEN / 2];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[REQID_GENERATED_LEN] = '\0';
	return 0;
}

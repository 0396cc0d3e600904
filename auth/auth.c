#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

static int token68_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~' || c == '+' || c == '/';
}

enum auth_bearer auth_bearer_parse(const char *header, const char **tok, size_t *len)
{
	const char *p;
	size_t n = 0;

	if (header == NULL || *header == '\0')
		return AUTH_BEARER_MISSING;
	if (strncasecmp(header, "Bearer", 6) != 0 || header[6] != ' ')
		return AUTH_BEARER_MALFORMED;
	p = header + 7;
	while (*p == ' ')
		p++;
	while (token68_char((unsigned char)p[n]))
		n++;
	if (n == 0)
		return AUTH_BEARER_MALFORMED;
	while (p[n] == '=') /* token68 padding, only at the end */
		n++;
	if (n > AUTH_TOKEN_MAX || p[n] != '\0')
		return AUTH_BEARER_MALFORMED;
	*tok = p;
	*len = n;
	return AUTH_BEARER_OK;
}

int auth_secret_equal(const char *given, const char *expected)
{
	unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
	int empty = expected == NULL || *expected == '\0';

	if (given == NULL)
		given = "";
	SHA256((const unsigned char *)given, strlen(given), a);
	SHA256((const unsigned char *)(empty ? "" : expected), empty ? 0 : strlen(expected), b);
	return (CRYPTO_memcmp(a, b, sizeof(a)) == 0) & !empty;
}

int auth_role_level(const char *role)
{
	if (role == NULL)
		return 0;
	if (strcmp(role, "viewer") == 0)
		return AUTH_ROLE_VIEWER;
	if (strcmp(role, "operator") == 0)
		return AUTH_ROLE_OPERATOR;
	if (strcmp(role, "admin") == 0)
		return AUTH_ROLE_ADMIN;
	return 0;
}

void auth_fingerprint_hash(const char *cookie, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)cookie, len, md);
	for (size_t i = 0; i < sizeof(md); i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[AUTH_FGP_HEX_LEN] = '\0';
}

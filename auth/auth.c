#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
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

/* SHA-256 fetched once: OpenSSL 3's SHA256() looks the algorithm up in
 * its provider tables (locks, a refcount) on every call, and this one
 * runs on every authenticated request. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void sha256(const void *p, size_t len, unsigned char md[SHA256_DIGEST_LENGTH])
{
	pthread_once(&sha256_once, sha256_fetch);
	if (sha256_md == NULL || EVP_Digest(p, len, md, NULL, sha256_md, NULL) != 1)
		SHA256(p, len, md); /* the fetch failed: the one-shot way */
}

int auth_secret_equal(const char *given, const char *expected)
{
	unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
	int empty = expected == NULL || *expected == '\0';

	if (given == NULL)
		given = "";
	sha256(given, strlen(given), a);
	sha256(empty ? "" : expected, empty ? 0 : strlen(expected), b);
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

	sha256(cookie, len, md);
	for (size_t i = 0; i < sizeof(md); i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[AUTH_FGP_HEX_LEN] = '\0';
}

#define FGP_MEMO_COOKIE_MAX 128

static __thread struct {
	size_t len; /* 0: empty */
	char cookie[FGP_MEMO_COOKIE_MAX];
	char hex[AUTH_FGP_HEX_LEN + 1];
} fgp_memo;

int auth_fingerprint_matches(const char *cookie, size_t len, const char *want)
{
	char hex[AUTH_FGP_HEX_LEN + 1];

	if (strlen(want) != AUTH_FGP_HEX_LEN)
		return 0;
	if (len > 0 && fgp_memo.len == len && CRYPTO_memcmp(fgp_memo.cookie, cookie, len) == 0) {
		memcpy(hex, fgp_memo.hex, sizeof(hex));
	} else {
		auth_fingerprint_hash(cookie, len, hex);
		if (len > 0 && len <= FGP_MEMO_COOKIE_MAX) {
			memcpy(fgp_memo.cookie, cookie, len);
			memcpy(fgp_memo.hex, hex, sizeof(hex));
			fgp_memo.len = len;
		}
	}
	return CRYPTO_memcmp(hex, want, AUTH_FGP_HEX_LEN) == 0;
}

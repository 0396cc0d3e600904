#include "password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "../core/b64.h"

#define PREFIX "pbkdf2-sha256$"
#define SALT_LEN 16
#define DK_LEN 32
#define SALT_B64_LEN 22 /* b64url_encoded_len(SALT_LEN) */
#define DK_B64_LEN 43   /* b64url_encoded_len(DK_LEN) */
#define ITER_DIGITS_MAX 8 /* PASSWORD_ITER_MAX has 8 digits */

static int derive(const char *pw, size_t pwlen, const unsigned char *salt, long iterations,
		  unsigned char dk[DK_LEN])
{
	return PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, SALT_LEN, (int)iterations, EVP_sha256(),
				 DK_LEN, dk) == 1 ? 0 : -1;
}

int password_hash(const char *pw, long iterations, char *out)
{
	unsigned char salt[SALT_LEN], dk[DK_LEN];
	char salt64[SALT_B64_LEN + 1], dk64[DK_B64_LEN + 1];
	size_t pwlen;
	int rc = -1;

	if (pw == NULL || iterations < PASSWORD_ITER_MIN || iterations > PASSWORD_ITER_MAX)
		return -1;
	pwlen = strnlen(pw, PASSWORD_MAX_LEN + 1);
	if (pwlen > PASSWORD_MAX_LEN)
		return -1;
	if (RAND_bytes(salt, sizeof(salt)) != 1 || derive(pw, pwlen, salt, iterations, dk) < 0)
		goto out;
	b64url_encode(salt, sizeof(salt), salt64);
	b64url_encode(dk, sizeof(dk), dk64);
	snprintf(out, PASSWORD_HASH_MAX, PREFIX "%ld$%s$%s", iterations, salt64, dk64);
	rc = 0;
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	OPENSSL_cleanse(dk64, sizeof(dk64));
	return rc;
}

/* Parses the canonical decimal at *s up to '$' (no sign, no leading zero)
 * and advances *s past the '$'. Returns the value, or -1. */
static long parse_iterations(const char **s)
{
	const char *p = *s;
	long v = 0;
	int n = 0;

	if (*p == '0')
		return -1;
	while (*p >= '0' && *p <= '9' && n < ITER_DIGITS_MAX + 1) {
		v = v * 10 + (*p++ - '0');
		n++;
	}
	if (n == 0 || n > ITER_DIGITS_MAX || *p != '$')
		return -1;
	*s = p + 1;
	return v;
}

/* Decodes exactly want bytes from the base64url field at *s, which ends at
 * the terminator end ('$' or NUL), and advances *s past it. */
static int parse_field(const char **s, char end, unsigned char *out, size_t want)
{
	const char *p = strchr(*s, end);
	size_t n, got;

	if (p == NULL || (size_t)(p - *s) != b64url_encoded_len(want))
		return -1;
	n = (size_t)(p - *s);
	if (b64url_decode(*s, n, out, &got) < 0 || got != want)
		return -1;
	*s = end == '\0' ? p : p + 1;
	return 0;
}

/* Splits stored into its parts. Returns 0, or -1 when it is not exactly
 * the encoded form password_hash writes. */
static int parse_stored(const char *stored, long *iterations, unsigned char salt[SALT_LEN],
			unsigned char dk[DK_LEN])
{
	const char *p = stored;

	if (strnlen(stored, PASSWORD_HASH_MAX) >= PASSWORD_HASH_MAX)
		return -1;
	if (strncmp(p, PREFIX, strlen(PREFIX)) != 0)
		return -1;
	p += strlen(PREFIX);
	*iterations = parse_iterations(&p);
	if (*iterations < PASSWORD_ITER_MIN || *iterations > PASSWORD_ITER_MAX)
		return -1;
	if (parse_field(&p, '$', salt, SALT_LEN) < 0 || parse_field(&p, '\0', dk, DK_LEN) < 0)
		return -1;
	return 0;
}

int password_verify(const char *pw, const char *stored)
{
	unsigned char salt[SALT_LEN], want[DK_LEN], got[DK_LEN];
	long iterations;
	size_t pwlen;
	int rc = -1;

	if (stored == NULL || parse_stored(stored, &iterations, salt, want) < 0)
		return -1;
	if (pw == NULL)
		pw = "";
	/* A too-long password still costs a full derivation (over its first
	 * PASSWORD_MAX_LEN + 1 bytes) so that its refusal is not faster. */
	pwlen = strnlen(pw, PASSWORD_MAX_LEN + 1);
	if (derive(pw, pwlen, salt, iterations, got) < 0)
		goto out;
	rc = (CRYPTO_memcmp(got, want, DK_LEN) == 0) & (pwlen <= PASSWORD_MAX_LEN);
out:
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}

/* password: password hashing with PBKDF2-HMAC-SHA256 (OpenSSL), per-user
 * random salt, self-describing encoded form so parameters can change:
 *   pbkdf2-sha256$<iterations>$<salt base64url>$<hash base64url>
 * (16-byte salt, 32-byte hash). Comparison is constant-time. Leaf module. */
#ifndef FCGI_SSE_PASSWORD_H
#define FCGI_SSE_PASSWORD_H

#define PASSWORD_HASH_MAX 160   /* encoded form, including the NUL */
#define PASSWORD_MAX_LEN 1024   /* longer passwords are refused */
#define PASSWORD_ITER_MIN 1000
#define PASSWORD_ITER_MAX 10000000
#define PASSWORD_ITER_DEFAULT 600000 /* OWASP 2023 for PBKDF2-HMAC-SHA256 */

/* Hashes pw with a new random salt and writes the encoded form to out
 * (PASSWORD_HASH_MAX bytes). Returns 0, or -1 when iterations are out of
 * PASSWORD_ITER_MIN..MAX, pw is longer than PASSWORD_MAX_LEN, or OpenSSL
 * failed. */
int password_hash(const char *pw, long iterations, char *out);

/* Checks pw against an encoded hash. Takes the time of the hash's own
 * iteration count whether or not pw matches. Returns 1 on a match, 0 on a
 * mismatch, -1 when stored is not a valid encoded form. */
int password_verify(const char *pw, const char *stored);

#endif

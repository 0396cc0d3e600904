/* jwt_bench: how long one token verification, one signing and one
 * password check take on this machine.
 *
 *   make bench/jwt_bench && bench/jwt_bench [verifications]
 *
 * Signs one realistic access token, then times N verifications (default
 * 200000, after an untimed warm-up), N signings, and a few password_verify calls at
 * PASSWORD_ITER_DEFAULT. Exits non-zero when any operation fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../auth/jwt.h"
#include "../auth/password.h"

#define DEFAULT_OPS 200000L
#define WARMUP_OPS 2000L
#define PASSWORD_OPS 3

static const char keys[] =
	"2025-06:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8,"
	"2025-05:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void claims_fill(struct jwt_claims *c, long long now)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->sub, "6f1c2a3e-8b4d-4e5f-9a0b-1c2d3e4f5a6b");
	strcpy(c->tid, "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a");
	strcpy(c->sid, "c3b2a190-8f7e-4d6c-5b4a-392817060504");
	strcpy(c->jti, "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d");
	strcpy(c->iss, "https://auth.example.com");
	strcpy(c->aud, "fcgi_sse");
	strcpy(c->fgp, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	strcpy(c->roles[0], "member");
	strcpy(c->roles[1], "admin");
	c->nroles = 2;
	c->iat = now;
	c->nbf = now;
	c->exp = now + 900;
}

static int bench_verify(const struct jwt_keyring *kr, const struct buf *tok, long n,
			long long now)
{
	const struct jwt_policy p = { "https://auth.example.com", "fcgi_sse", 30 };
	struct jwt_claims out;
	double t0, t1;
	long bad = 0;

	/* Untimed warm-up: fills the MAC context pool and malloc's arenas. */
	for (long i = 0; i < WARMUP_OPS; i++)
		bad += jwt_verify(kr, tok->data, tok->len, &p, now, &out) != JWT_OK;
	t0 = seconds();
	for (long i = 0; i < n; i++)
		bad += jwt_verify(kr, tok->data, tok->len, &p, now, &out) != JWT_OK;
	t1 = seconds();
	printf("jwt_verify, the same token again (this thread's memo): %.2f us/op (%ld ops)\n",
	       (t1 - t0) * 1e6 / (double)n, n);
	t0 = seconds();
	for (long i = 0; i < n; i++)
		bad += jwt_verify_signature(kr, tok->data, tok->len, NULL) != JWT_OK;
	t1 = seconds();
	printf("jwt_verify_signature: %.2f us/op (%ld ops)\n", (t1 - t0) * 1e6 / (double)n, n);
	return bad == 0 ? 0 : -1;
}

/* Verification of tokens this thread has not seen lately: MISS_TOKENS
 * distinct tokens in turn, four times the memo's slots. */
#define MISS_TOKENS 64

static int bench_verify_new(const struct jwt_keyring *kr, const struct jwt_claims *c, long n,
			    long long now)
{
	const struct jwt_policy p = { "https://auth.example.com", "fcgi_sse", 30 };
	struct buf toks[MISS_TOKENS];
	struct jwt_claims one = *c, out;
	double t0, t1;
	long bad = 0;

	for (int i = 0; i < MISS_TOKENS; i++) {
		toks[i] = (struct buf)BUF_INIT;
		snprintf(one.jti, sizeof(one.jti), "jti-%d", i);
		bad += jwt_sign(kr, &one, &toks[i]) != 0;
	}
	t0 = seconds();
	for (long i = 0; i < n; i++) {
		const struct buf *t = &toks[(i * 7) % MISS_TOKENS];
		bad += jwt_verify(kr, t->data, t->len, &p, now, &out) != JWT_OK;
	}
	t1 = seconds();
	printf("jwt_verify, %d tokens in turn (mostly not in the memo): %.2f us/op (%ld ops)\n",
	       MISS_TOKENS, (t1 - t0) * 1e6 / (double)n, n);
	for (int i = 0; i < MISS_TOKENS; i++)
		buf_release(&toks[i]);
	return bad == 0 ? 0 : -1;
}

static int bench_sign(const struct jwt_keyring *kr, const struct jwt_claims *c, long n)
{
	struct buf tok = BUF_INIT;
	double t0, t1;
	long bad = 0;

	t0 = seconds();
	for (long i = 0; i < n; i++) {
		buf_reset(&tok);
		bad += jwt_sign(kr, c, &tok) != 0;
	}
	t1 = seconds();
	buf_release(&tok);
	printf("jwt_sign: %.2f us/op (%ld ops)\n", (t1 - t0) * 1e6 / (double)n, n);
	return bad == 0 ? 0 : -1;
}

static int bench_password(void)
{
	char stored[PASSWORD_HASH_MAX];
	double t0, t1;
	int bad = 0;

	if (password_hash("correct horse battery staple", PASSWORD_ITER_DEFAULT, stored) < 0)
		return -1;
	t0 = seconds();
	for (int i = 0; i < PASSWORD_OPS; i++)
		bad += password_verify("correct horse battery staple", stored) != 1;
	t1 = seconds();
	printf("password_verify: %.1f ms/op (%d ops, %d iterations)\n",
	       (t1 - t0) * 1e3 / PASSWORD_OPS, PASSWORD_OPS, PASSWORD_ITER_DEFAULT);
	return bad == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct buf err = BUF_INIT, tok = BUF_INIT;
	struct jwt_keyring *kr;
	struct jwt_claims c;
	long long now = (long long)time(NULL);
	long n = DEFAULT_OPS;
	int rc = 1;

	if (argc > 1) {
		char *end;

		n = strtol(argv[1], &end, 10);
		if (*argv[1] == '\0' || *end != '\0' || n < 1) {
			fprintf(stderr, "usage: %s [verifications]\n", argv[0]);
			return 2;
		}
	}
	kr = jwt_keyring_parse(keys, &err);
	if (kr == NULL) {
		fprintf(stderr, "jwt_bench: keys: %s\n", buf_str(&err));
		goto out;
	}
	claims_fill(&c, now);
	if (jwt_sign(kr, &c, &tok) < 0) {
		fprintf(stderr, "jwt_bench: cannot sign\n");
		goto out;
	}
	printf("token: %zu bytes\n", tok.len);
	if (bench_verify(kr, &tok, n, now) < 0 || bench_verify_new(kr, &c, n, now) < 0 ||
	    bench_sign(kr, &c, n) < 0 ||
	    bench_password() < 0) {
		fprintf(stderr, "jwt_bench: an operation failed\n");
		goto out;
	}
	rc = 0;
out:
	jwt_keyring_free(kr);
	buf_release(&tok);
	buf_release(&err);
	return rc;
}

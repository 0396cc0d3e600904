/* fuzz: what the libFuzzer targets share. A target is one fuzz/<name>.c
 * defining LLVMFuzzerTestOneInput; this header gives it a reader over the
 * input (taking bytes, numbers and length-prefixed strings off the front,
 * like LLVM's FuzzedDataProvider) and an assertion that aborts, so that a
 * broken property is a crash libFuzzer keeps as an artifact. */
#ifndef FCGI_SSE_FUZZ_H
#define FCGI_SSE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* json-c seeds its string hash from /dev/urandom: which keys it compares
 * (memcmp, strcmp, which libFuzzer watches for its mutations) would differ
 * from run to run. Its seedless hash keeps a run of fuzz/run.sh ci the
 * same on every machine (with address randomisation off, which run.sh
 * sees to). */
__attribute__((constructor)) static void fuzz_fixed_json_hash(void)
{
	if (json_global_set_string_hash(JSON_C_STR_HASH_PERLLIKE) != 0)
		abort();
}

/* For the same reason, OpenSSL's RAND_bytes (request ids, say) is replaced
 * in every target by a fixed sequence: the target's definition comes
 * before libcrypto's. Nothing a target checks depends on the bytes being
 * unpredictable. */
int RAND_bytes(unsigned char *buf, int num);
int RAND_bytes(unsigned char *buf, int num)
{
	static uint64_t x = 0x2545f4914f6cdd1dULL;

	for (int i = 0; i < num; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		buf[i] = (unsigned char)(x >> 32);
	}
	return 1;
}

#define FUZZ_CHECK(cond)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                \
			abort();                                                       \
		}                                                                      \
	} while (0)

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

/* The next byte, 0 once the input is used up. */
static inline unsigned fuzz_byte(struct fuzz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

/* A NUL-terminated copy (malloc'ed) of the next field: bytes up to the
 * next sep byte (consumed, not copied) or the end. The copy stops at an
 * embedded NUL, as a C string the program is handed would. */
static inline char *fuzz_field(struct fuzz_in *in, uint8_t sep)
{
	const uint8_t *end = in->n ? memchr(in->p, sep, in->n) : NULL;
	size_t len = end ? (size_t)(end - in->p) : in->n;
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	if (len > 0)
		memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len + (end ? 1 : 0);
	in->n -= len + (end ? 1 : 0);
	return s;
}

/* The rest of the input as a NUL-terminated copy (embedded NULs kept;
 * *len is the full length). */
static inline char *fuzz_rest(struct fuzz_in *in, size_t *len)
{
	char *s = malloc(in->n + 1);

	if (s == NULL)
		abort();
	if (in->n > 0)
		memcpy(s, in->p, in->n);
	s[in->n] = '\0';
	*len = in->n;
	in->p += in->n;
	in->n = 0;
	return s;
}

#endif

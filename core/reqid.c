#include "reqid.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
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

/* splitmix64 (Steele, Lea, Flood 2014): a bijection of a counter, so one
 * thread's ids never repeat; the counter starts at 64 random bits from the
 * OS's generator per thread, so threads and processes do not meet. Request
 * ids must be unique, not secret: one RAND_bytes per id cost a getpid and
 * a lock per request. */
static __thread uint64_t id_state;
static __thread int id_seeded;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void reseed_in_child(void)
{
	id_seeded = 0; /* the child's only thread: a fork must not repeat ids */
}

static void install_atfork(void)
{
	pthread_atfork(NULL, NULL, reseed_in_child);
}

static uint64_t next64(void)
{
	uint64_t z = (id_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int reqid_generate(char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t half[2];

	if (!id_seeded) {
		pthread_once(&atfork_once, install_atfork);
		if (RAND_bytes((unsigned char *)&id_state, sizeof(id_state)) != 1)
			return -1;
		id_seeded = 1;
	}
	half[0] = next64();
	half[1] = next64();
	for (int i = 0; i < REQID_GENERATED_LEN; i++)
		out[i] = hex[(half[i / 16] >> (60 - 4 * (i % 16))) & 15];
	out[REQID_GENERATED_LEN] = '\0';
	return 0;
}

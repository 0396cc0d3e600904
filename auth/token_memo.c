#include "token_memo.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	unsigned long long serial; /* 0: empty (keyring serials start at 1) */
	char iss[JWT_STR_MAX + 1], aud[JWT_STR_MAX + 1];
	char *token;
	size_t len;
	struct jwt_claims claims;
};

static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;
static int memo_key_ok;

static void memo_free(void *p)
{
	struct slot *s = p;

	for (int i = 0; i < TOKEN_MEMO_SLOTS; i++) {
		OPENSSL_cleanse(&s[i].claims, sizeof(s[i].claims));
		free(s[i].token);
	}
	free(s);
}

static void memo_init(void)
{
	memo_key_ok = pthread_key_create(&memo_key, memo_free) == 0;
}

/* This thread's slots, made on first use; NULL when out of memory. */
static struct slot *slots(int create)
{
	struct slot *s;

	pthread_once(&memo_once, memo_init);
	if (!memo_key_ok)
		return NULL;
	s = pthread_getspecific(memo_key);
	if (s == NULL && create && (s = calloc(TOKEN_MEMO_SLOTS, sizeof(*s))) != NULL &&
	    pthread_setspecific(memo_key, s) != 0) {
		free(s);
		s = NULL;
	}
	return s;
}

/* The slot of a token: from its last bytes (the signature's). */
static unsigned slot_of(const char *token, size_t len)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (size_t i = len > 8 ? len - 8 : 0; i < len; i++)
		h = (h ^ (unsigned char)token[i]) * 16777619u;
	return h % TOKEN_MEMO_SLOTS;
}

int token_memo_get(unsigned long long serial, const char *iss, const char *aud, const char *token,
		   size_t len, struct jwt_claims *out)
{
	struct slot *s = slots(0);

	if (s == NULL || serial == 0 || iss == NULL || aud == NULL)
		return 0;
	s += slot_of(token, len);
	if (s->serial != serial || s->len != len || CRYPTO_memcmp(s->token, token, len) != 0 ||
	    strcmp(s->iss, iss) != 0 || strcmp(s->aud, aud) != 0)
		return 0;
	*out = s->claims;
	return 1;
}

void token_memo_put(unsigned long long serial, const char *iss, const char *aud, const char *token,
		    size_t len, const struct jwt_claims *c)
{
	struct slot *s = slots(1);
	char *copy;

	if (s == NULL || serial == 0 || iss == NULL || aud == NULL || strlen(iss) > JWT_STR_MAX ||
	    strlen(aud) > JWT_STR_MAX || len == 0 || (copy = malloc(len)) == NULL)
		return;
	memcpy(copy, token, len);
	s += slot_of(token, len);
	free(s->token);
	s->serial = serial;
	s->token = copy;
	s->len = len;
	memcpy(s->iss, iss, strlen(iss) + 1);
	memcpy(s->aud, aud, strlen(aud) + 1);
	s->claims = *c;
}

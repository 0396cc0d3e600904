/* Target: JSON objects decoded into structs (core/jsonflat.c, with
 * core/jsonf.c as the general path), and api/jsontext.c, the strict lexer
 * every request body passes first (check_jsontext).
 *
 * jsonflat.h promises that the fast decoder "never decides differently
 * from the general one, it only answers first": whatever jflat_decode
 * accepts, json-c (as the callers run it: json_tokener_parse_ex, then
 * jsonf_str / jsonf_int per field) must accept too, with the same values,
 * byte for byte. Checked with the field tables of the two callers,
 * sessions_decode (session/sessions.c) and devices_decode
 * (api/device_cache.c), copied here with the structs of store.h (those
 * modules bring the cache and the store with them), and with a table of
 * tight capacities for the edges.
 *
 * The request bodies of api/ (login, devices, telemetry, events) are
 * read by api_read_json, json-c's strict parser, and checked field by
 * field in static functions of each handler that take an api_call: no
 * pure parser of ours to call (see fuzz/README.md).
 *
 * Input: one byte choosing the table, then the JSON text. */
#include "../api/jsontext.h"
#include "fuzz.h"

#include <json-c/json.h>

#include "../core/jsonf.h"
#include "../core/jsonflat.h"
#include "../store/store.h"

#define MAXF 9

struct spec {
	const char *name;
	enum jflat_type type;
	size_t off, cap;
};

#define S(st, f) { #f, JFLAT_STR, offsetof(struct st, f), sizeof(((struct st *)0)->f) }
#define I(st, f) { #f, JFLAT_INT, offsetof(struct st, f), 0 }

static const struct spec session_spec[] = {
	S(store_session, id), S(store_session, user_id), S(store_session, tenant_id),
	S(store_session, role), I(store_session, created_at), I(store_session, expires_at),
	I(store_session, revoked_at),
};

static const struct spec device_spec[] = {
	S(store_device, id), S(store_device, tenant_id), S(store_device, name),
	S(store_device, status), S(store_device, metadata), I(store_device, created_at),
	I(store_device, updated_at), I(store_device, last_seen_at), I(store_device, version),
};

struct tight {
	char a[1], b[2], c[5];
	long long n;
};
static const struct spec tight_spec[] = {
	S(tight, a), S(tight, b), S(tight, c), I(tight, n),
};

/* The general path, as the callers run it, but for json-c's misreading
 * of some escaped surrogate pairs (\ud836\udc00, U+1D800, as U+FFFD:
 * json-c pull request #893): the reference reads them as request bodies
 * are read, written as UTF-8 first (jsontext_pairs_to_utf8). The fast
 * decoder gets them right itself. */
static int general(const char *text, size_t n, const struct spec *sp, int nf, char *dst)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	char *p = malloc(n + 1);
	int rc = -1;

	FUZZ_CHECK(tok != NULL && p != NULL);
	memcpy(p, text, n);
	p[n] = '\0';
	n = jsontext_pairs_to_utf8(p, n);
	o = json_tokener_parse_ex(tok, p, (int)n);
	if (o != NULL && json_object_is_type(o, json_type_object)) {
		rc = 0;
		for (int i = 0; i < nf && rc == 0; i++)
			rc = sp[i].type == JFLAT_STR
				     ? jsonf_str(o, sp[i].name, dst + sp[i].off, sp[i].cap)
				     : jsonf_int(o, sp[i].name, (long long *)(void *)(dst + sp[i].off));
	}
	json_object_put(o);
	json_tokener_free(tok);
	free(p);
	return rc;
}

static void check(const char *p, size_t n, const struct spec *sp, int nf, size_t size)
{
	struct jflat_field f[MAXF];
	char *fast = calloc(1, size), *slow = calloc(1, size);

	FUZZ_CHECK(fast != NULL && slow != NULL && nf <= MAXF);
	for (int i = 0; i < nf; i++)
		f[i] = (struct jflat_field){ sp[i].name, sp[i].type, fast + sp[i].off, sp[i].cap };
	if (jflat_decode(p, n, f, nf) == 0) {
		FUZZ_CHECK(general(p, n, sp, nf, slow) == 0);
		FUZZ_CHECK(memcmp(fast, slow, size) == 0);
		for (int i = 0; i < nf; i++)
			if (sp[i].type == JFLAT_STR)
				FUZZ_CHECK(strlen(fast + sp[i].off) < sp[i].cap);
	}
	free(fast);
	free(slow);
}

/* api/jsontext, the lexer every JSON body goes through first: whatever it
 * does not call malformed is UTF-8 throughout (outside strings only ASCII
 * tokens are JSON) and holds no control character but JSON's whitespace
 * (inside strings they must be escaped). */
static void check_jsontext(const char *p, size_t n)
{
	enum jsontext_result r = jsontext_check(p, n);
	char *q;
	size_t m;

	if (r == JSONTEXT_MALFORMED)
		return;
	FUZZ_CHECK(r == JSONTEXT_OK || r == JSONTEXT_BIG_INTEGER);
	for (size_t i = 0; i < n;) {
		size_t k = jsontext_utf8_seq((const unsigned char *)p + i, n - i);
		FUZZ_CHECK(k >= 1 && k <= 4);
		FUZZ_CHECK((unsigned char)p[i] >= 0x20 || p[i] == '\t' || p[i] == '\n' || p[i] == '\r');
		i += k;
	}
	/* pairs written as UTF-8: still the same kind of text, 8 bytes
	 * shorter per pair, and none left (a second pass changes nothing) */
	q = malloc(n + 1);
	FUZZ_CHECK(q != NULL);
	memcpy(q, p, n);
	q[n] = '\0';
	m = jsontext_pairs_to_utf8(q, n);
	FUZZ_CHECK(m <= n && (n - m) % 8 == 0 && q[m] == '\0');
	FUZZ_CHECK(jsontext_check(q, m) == r);
	FUZZ_CHECK(jsontext_pairs_to_utf8(q, m) == m);
	free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned which = fuzz_byte(&in) % 3;
	size_t n;
	char *p = fuzz_rest(&in, &n);

	if (n > 1 << 20) {
		free(p);
		return 0;
	}
	check_jsontext(p, n);
	if (which == 0)
		check(p, n, session_spec, 7, sizeof(struct store_session));
	else if (which == 1)
		check(p, n, device_spec, 9, sizeof(struct store_device));
	else
		check(p, n, tight_spec, 4, sizeof(struct tight));
	free(p);
	return 0;
}

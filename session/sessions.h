/* sessions: auth sessions, read through the cache (sess:{id}) over the
 * durable store. Creating, revoking one, revoking all of a user's: the
 * store changes first, then the cache entry is replaced by a tombstone so
 * every process sees the change on its next request. A tombstone that
 * cannot be written (Redis down) is retried on later calls of this
 * process. */
#ifndef FCGI_SSE_SESSIONS_H
#define FCGI_SSE_SESSIONS_H

#include "../cache/cache.h"
#include "../store/store.h"

enum session_state {
	SESSION_LIVE,
	SESSION_GONE,  /* unknown, revoked or expired */
	SESSION_ERROR, /* the store failed */
};

struct sessions;

/* Creates the service over st and c (neither is owned). ttl_s is the
 * lifetime of new sessions. NULL when out of memory. */
struct sessions *sessions_new(struct store *st, struct cache *c, long long ttl_s,
			      long long cache_ttl_ms);

/* Frees the service. */
void sessions_free(struct sessions *s);

/* Starts a session for u at now; fills *out. Returns 0, or -1 when the
 * store failed. */
int sessions_begin(struct sessions *s, const struct store_user *u, long long now,
		   struct store_session *out);

/* Looks id up (cache first). On SESSION_LIVE fills *out. */
enum session_state sessions_lookup(struct sessions *s, const char *id, long long now,
				   struct store_session *out);

/* Names session id's cache entry in *a, for cache_fetch_ahead with the
 * other entries a request reads (see cache.h); then sessions_lookup_ahead
 * answers as sessions_lookup. */
void sessions_ahead(struct sessions *s, const char *id, struct cache_ahead *a);
enum session_state sessions_lookup_ahead(struct sessions *s, struct cache_ahead *a, long long now,
					 struct store_session *out);

/* Revokes one session. Returns 0 (also when it was unknown or already
 * revoked), -1 when the store failed. */
int sessions_revoke(struct sessions *s, const char *id, long long now);

/* Revokes every live session of a user; *count gets how many. Returns 0 or
 * -1 as sessions_revoke. */
int sessions_revoke_user(struct sessions *s, const char *tenant_id, const char *user_id,
			 long long now, int *count);

/* Deletes sessions that ended (expired, or revoked more than keep_revoked_s
 * ago) from the store and tombstones their cache entries. *count gets how
 * many. Returns 0 or -1 when the store failed. */
int sessions_purge(struct sessions *s, long long now, long long keep_revoked_s, int *count);

/* Serialises and parses the cached form of a session (JSON). Pure;
 * exposed for tests. parse returns 0 or -1. */
int sessions_encode(const struct store_session *ss, struct buf *out);
int sessions_decode(const char *json, size_t len, struct store_session *out);

#endif

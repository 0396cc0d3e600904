/* session_bench: µs per session lookup through the read-through cache, on a
 * cache hit, on a cache miss (Redis GET miss + SQLite read + Redis SET), and
 * with Redis unreachable (straight to SQLite).
 *
 * usage: session_bench REDIS_PORT [N]   (bench/auth.sh starts a redis-server) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../cache/cache.h"
#include "../redis/redis.h"
#include "../redis/redis_kv.h"
#include "../session/sessions.h"
#include "../store/store.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static struct sessions *open_sessions(struct store *st, int port, struct redis **r,
				      struct cache **c)
{
	const struct redis_opts ro = { "127.0.0.1", port, "", 200, 200, 60000, 0, 0, NULL, NULL, NULL };
	const struct cache_opts co = { "bench-sess:", 1800000, 10, 5000 };
	struct cache_kv kv;

	*r = redis_new(&ro);
	redis_kv(*r, &kv);
	*c = cache_new(&kv, &co);
	return sessions_new(st, *c, 3600, 1800000);
}

static int fixture(struct store *st, struct store_session *ss)
{
	struct store_tenant t;
	struct store_user u;
	long long now = (long long)time(NULL);

	memset(&u, 0, sizeof(u));
	if (store_tenant_create(st, "bench", now, &t) != STORE_OK)
		return -1;
	snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", t.id);
	snprintf(u.username, sizeof(u.username), "ana");
	snprintf(u.role, sizeof(u.role), "viewer");
	snprintf(u.password_hash, sizeof(u.password_hash), "unused");
	u.created_at = now;
	if (store_user_create(st, &u) != STORE_OK)
		return -1;
	memset(ss, 0, sizeof(*ss));
	return 0;
}

/* Times n lookups; when cold, each is preceded (untimed) by an invalidation. */
static double time_lookups(struct sessions *s, struct cache *c, const char *id, int n, int cold)
{
	struct store_session out;
	double total = 0;
	long long now = (long long)time(NULL);

	for (int i = 0; i < n; i++) {
		double t0;
		if (cold)
			cache_invalidate(c, id);
		t0 = now_us();
		if (sessions_lookup(s, id, now, &out) != SESSION_LIVE) {
			fprintf(stderr, "lookup failed\n");
			exit(1);
		}
		total += now_us() - t0;
	}
	return total / n;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/session_bench.XXXXXX", path[64];
	int port = argc > 1 ? atoi(argv[1]) : 6379, n = argc > 2 ? atoi(argv[2]) : 20000;
	struct buf err = BUF_INIT;
	struct store *st;
	struct redis *r, *dead_r;
	struct cache *c, *dead_c;
	struct sessions *s, *dead;
	struct store_session ss;
	struct store_user u;
	struct store_tenant t;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/bench.db", dir);
	if ((st = store_open_sqlite(path, 5000, &err)) == NULL || fixture(st, &ss) < 0) {
		fprintf(stderr, "store: %s\n", buf_str(&err));
		return 1;
	}
	store_tenant_by_name(st, "bench", &t);
	store_user_by_name(st, t.id, "ana", &u);
	s = open_sessions(st, port, &r, &c);
	dead = open_sessions(st, 1, &dead_r, &dead_c); /* port 1: nothing listens */
	if (sessions_begin(s, &u, (long long)time(NULL), &ss) < 0)
		return 1;
	time_lookups(s, c, ss.id, 100, 0); /* warm up */
	printf("session lookup, cache hit:        %7.2f us/op (%d ops)\n", time_lookups(s, c, ss.id, n, 0), n);
	printf("session lookup, cache miss:       %7.2f us/op (%d ops; Redis GET + SQLite + SET NX)\n",
	       time_lookups(s, c, ss.id, n / 4, 1), n / 4);
	printf("session lookup, Redis unreachable: %6.2f us/op (%d ops; SQLite only)\n",
	       time_lookups(dead, dead_c, ss.id, n, 0), n);
	sessions_free(dead);
	cache_free(dead_c);
	redis_free(dead_r);
	sessions_free(s);
	cache_free(c);
	redis_free(r);
	store_close(st);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bench.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bench.db-shm", dir);
	unlink(path);
	rmdir(dir);
	buf_release(&err);
	return 0;
}

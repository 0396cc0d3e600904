/* hub: streams over socketpairs standing in for the front server's
 * FastCGI connections; the test reads and unframes what the hub writes. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../redis/bus.h"
#include "../../sse/hub.h"
#include "suites.h"
#include "testutil.h"

/* The reading end of one stream: raw bytes, the STDOUT text so far, and
 * whether END_REQUEST / EOF were seen. */
struct peer {
	int fd;
	struct buf raw, text;
	int ended, eof;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Moves complete records from raw into text. */
static void unframe(struct peer *p)
{
	size_t off = 0;

	while (off + 8 <= p->raw.len) {
		const unsigned char *h = (const unsigned char *)p->raw.data + off;
		size_t clen = ((size_t)h[4] << 8) | h[5], plen = h[6];
		if (off + 8 + clen + plen > p->raw.len)
			break;
		if (h[1] == 6)
			buf_append(&p->text, p->raw.data + off + 8, clen);
		else if (h[1] == 3)
			p->ended = 1;
		off += 8 + clen + plen;
	}
	memmove(p->raw.data, p->raw.data + off, p->raw.len - off);
	p->raw.len -= off;
}

/* Reads until text contains want (or, want NULL, until EOF), at most ms. */
static int read_until(struct peer *p, const char *want, long long ms)
{
	long long end = now_ms() + ms;
	char chunk[8192];

	while ((want ? strstr(buf_str(&p->text), want) == NULL : !p->eof) && now_ms() < end) {
		struct pollfd pf = { p->fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&pf, 1, 50) <= 0)
			continue;
		n = read(p->fd, chunk, sizeof(chunk));
		if (n <= 0) {
			p->eof = 1;
			break;
		}
		buf_append(&p->raw, chunk, (size_t)n);
		unframe(p);
	}
	return want ? strstr(buf_str(&p->text), want) != NULL : p->eof;
}

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	buf_release(&p->raw);
	buf_release(&p->text);
}

static struct hub *start(long long heartbeat_ms, size_t max_buffer, int max_streams)
{
	const struct hub_opts o = { heartbeat_ms, 0, 0, max_buffer, max_streams, NULL, NULL, 0, 0, 0 };
	struct buf err = BUF_INIT;
	struct hub *h = hub_start(&o, &err);

	buf_release(&err);
	return h;
}

/* Hands sp to the hub over a new socketpair (sp->fd is set here): the hub
 * gets one end, p the other. Returns 0 or -1. */
static int add_peer(struct hub *h, struct peer *p, struct hub_stream_spec *sp)
{
	int sv[2];

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -1;
	sp->fd = sv[0];
	if (hub_add(h, sp) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	p->fd = sv[1];
	return 0;
}

/* Opens a stream and waits for its head. */
static int open_stream(struct hub *h, struct peer *p, const char *tenant, const char *events,
		       const char *topics, const char *key)
{
	static const char head[] = "Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\nretry: 1000\n\n";
	struct hub_stream_spec sp = { .request_id = 1, .tenant_id = tenant, .events = events,
				      .topics = topics, .key = key, .auth_session = "auth-1",
				      .user_id = "user-1", .request_log_id = "test", .head = head,
				      .head_len = sizeof(head) - 1 };

	if (add_peer(h, p, &sp) < 0)
		return -1;
	return read_until(p, "retry: 1000", 2000) ? 0 : -1;
}

static int publish(struct hub *h, const char *tenant, const char *type, const char *topic,
		   const char *data, int close, char *id)
{
	const struct hub_event e = { tenant, type, topic, data, strlen(data), close };

	return hub_publish(h, &e, id);
}

static void test_list_has(void)
{
	CU_ASSERT_TRUE(hub_list_has(NULL, "x"));
	CU_ASSERT_TRUE(hub_list_has("a,b,c", "b"));
	CU_ASSERT_TRUE(hub_list_has("a", "a"));
	CU_ASSERT_FALSE(hub_list_has("ab,c", "a"));
	CU_ASSERT_FALSE(hub_list_has("a,bc", "b"));
	CU_ASSERT_FALSE(hub_list_has("", "a"));
}

static void test_fan_out_with_filters(void)
{
	struct hub *h = start(60000, 65536, 100);
	struct peer all, typed, topical, other;
	char id[HUB_ID_MAX + 1], want[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &all, "t1", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &typed, "t1", "b.type", NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &topical, "t1", NULL, "task:1,task:2", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &other, "t2", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(publish(h, "t1", "a.type", NULL, "{\"n\":1}", 0, id), 0);
	snprintf(want, sizeof(want), "id: %s\nevent: a.type\ndata: {\"n\":1}\n\n", id);
	CU_ASSERT_TRUE(read_until(&all, want, 2000));
	CU_ASSERT_EQUAL(publish(h, "t1", "b.type", "task:2", "{\"n\":2}", 0, id), 0);
	CU_ASSERT_TRUE(read_until(&all, "{\"n\":2}", 2000));
	CU_ASSERT_TRUE(read_until(&typed, "{\"n\":2}", 2000));
	CU_ASSERT_TRUE(read_until(&topical, "{\"n\":2}", 2000));
	CU_ASSERT_EQUAL(publish(h, "t2", "a.type", NULL, "{\"n\":3}", 0, id), 0);
	CU_ASSERT_TRUE(read_until(&other, "{\"n\":3}", 2000));
	/* what a stream must not see has had time to arrive by now */
	CU_ASSERT_PTR_NULL(strstr(buf_str(&typed.text), "{\"n\":1}"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&topical.text), "{\"n\":1}"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&all.text), "{\"n\":3}"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&other.text), "{\"n\":1}"));
	hub_stop(h, 500);
	hub_free(h);
	peer_close(&all);
	peer_close(&typed);
	peer_close(&topical);
	peer_close(&other);
}

static void test_payload_newlines_are_split(void)
{
	struct hub *h = start(60000, 65536, 10);
	struct peer p;
	char id[HUB_ID_MAX + 1];

	CU_ASSERT_EQUAL_FATAL(open_stream(h, &p, "t", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(publish(h, "t", "x", NULL, "one\nevent: evil\r\ntwo\rthree", 0, id), 0);
	CU_ASSERT_TRUE(read_until(&p, "data: three\n\n", 2000));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&p.text),
				      "data: one\ndata: event: evil\ndata: two\ndata: three\n\n"));
	hub_stop(h, 500);
	hub_free(h);
	peer_close(&p);
}

static void test_heartbeats_repeat_the_last_id(void)
{
	struct hub *h = start(100, 65536, 10);
	struct peer p;
	char id[HUB_ID_MAX + 1], want[128];

	CU_ASSERT_EQUAL_FATAL(open_stream(h, &p, "t", NULL, NULL, NULL), 0);
	CU_ASSERT_TRUE(read_until(&p, "event: ping", 3000));
	CU_ASSERT_EQUAL(publish(h, "t", "x", NULL, "{}", 0, id), 0);
	CU_ASSERT_TRUE(read_until(&p, "event: x", 2000));
	buf_reset(&p.text);
	snprintf(want, sizeof(want), "id: %s\nevent: ping\n", id);
	CU_ASSERT_TRUE(read_until(&p, want, 3000));
	hub_stop(h, 500);
	hub_free(h);
	peer_close(&p);
}

static void test_close_ends_topic_streams(void)
{
	struct hub *h = start(60000, 65536, 10);
	struct peer sub, bystander;
	char id[HUB_ID_MAX + 1];

	CU_ASSERT_EQUAL_FATAL(open_stream(h, &sub, "t", NULL, "task:9", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &bystander, "t", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(publish(h, "t", "task.done", "task:9", "{\"ok\":true}", 1, id), 0);
	CU_ASSERT_TRUE(read_until(&sub, NULL, 2000)); /* EOF */
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&sub.text), "event: task.done"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&sub.text), "event: close"));
	CU_ASSERT_TRUE(sub.ended);
	CU_ASSERT_TRUE(read_until(&bystander, "event: task.done", 2000));
	CU_ASSERT_FALSE(bystander.eof);
	hub_stop(h, 500);
	hub_free(h);
	peer_close(&sub);
	peer_close(&bystander);
}

static void test_slow_client_is_dropped_others_unaffected(void)
{
	struct hub *h = start(60000, 8192, 10);
	struct peer slow, fast;
	struct hub_stats st;
	char id[HUB_ID_MAX + 1], data[2048];
	int small = 4096;

	CU_ASSERT_EQUAL_FATAL(open_stream(h, &slow, "t", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &fast, "t", NULL, NULL, NULL), 0);
	setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	memset(data, 'x', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	for (int i = 0; i < 400; i++) {
		CU_ASSERT_EQUAL_FATAL(publish(h, "t", "bulk", NULL, data, 0, id), 0);
		read_until(&fast, id, 2000); /* the fast one keeps up */
	}
	CU_ASSERT_TRUE(read_until(&fast, id, 2000));
	/* the slow one never read: it was dropped, and only it */
	for (long long end = now_ms() + 2000; now_ms() < end;) {
		hub_get_stats(h, &st);
		if (st.dropped_slow > 0)
			break;
		usleep(20000);
	}
	hub_get_stats(h, &st);
	CU_ASSERT_EQUAL(st.dropped_slow, 1);
	CU_ASSERT_EQUAL(st.open, 1);
	CU_ASSERT_EQUAL(st.published, 400);
	hub_stop(h, 500);
	hub_free(h);
	peer_close(&slow);
	peer_close(&fast);
}

static void test_gone_client_is_freed(void)
{
	struct hub *h = start(60000, 65536, 10);
	struct peer p;
	struct hub_stats st;

	CU_ASSERT_EQUAL_FATAL(open_stream(h, &p, "t", NULL, NULL, NULL), 0);
	peer_close(&p);
	for (long long end = now_ms() + 2000; now_ms() < end;) {
		hub_get_stats(h, &st);
		if (st.open == 0)
			break;
		usleep(10000);
	}
	hub_get_stats(h, &st);
	CU_ASSERT_EQUAL(st.open, 0);
	CU_ASSERT_EQUAL(st.closed, 1);
	hub_stop(h, 500);
	hub_free(h);
}

static void test_limit_and_replacement(void)
{
	struct hub *h = start(60000, 65536, 2);
	struct peer a, b, c;

	CU_ASSERT_EQUAL_FATAL(open_stream(h, &a, "t", NULL, NULL, "session-1"), 0);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &b, "t", NULL, NULL, "session-1"), 0);
	/* b replaced a: a ends cleanly */
	CU_ASSERT_TRUE(read_until(&a, NULL, 2000));
	CU_ASSERT_TRUE(a.ended);
	CU_ASSERT_FALSE(b.eof);
	peer_close(&a);
	usleep(100000);
	CU_ASSERT_EQUAL(open_stream(h, &c, "t", NULL, NULL, NULL), 0);
	peer_close(&c);
	hub_stop(h, 500);
	CU_ASSERT_TRUE(read_until(&b, NULL, 2000));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&b.text), "event: shutdown"));
	CU_ASSERT_TRUE(b.ended);
	hub_free(h);
	peer_close(&b);
}

static void test_full_hub_refuses(void)
{
	struct hub *h = start(60000, 65536, 1);
	struct peer a, b;

	CU_ASSERT_EQUAL_FATAL(open_stream(h, &a, "t", NULL, NULL, NULL), 0);
	errno = 0;
	CU_ASSERT_EQUAL(open_stream(h, &b, "t", NULL, NULL, NULL), -1);
	CU_ASSERT_EQUAL(errno, EAGAIN);
	hub_stop(h, 500);
	CU_ASSERT_EQUAL(open_stream(h, &b, "t", NULL, NULL, NULL), -1);
	CU_ASSERT_EQUAL(errno, ESHUTDOWN);
	hub_free(h);
	peer_close(&a);
}

/* An fd the hub cannot make non-blocking is refused (with fcntl's errno),
 * and takes no place; a blocking fd would stall every stream. */
static void test_an_fd_that_cannot_be_made_non_blocking_is_refused(void)
{
	static const char head[] = "Status: 200 OK\r\n\r\n";
	struct hub *h = start(60000, 65536, 1);
	struct hub_stream_spec sp = { .request_id = 1, .tenant_id = "t", .auth_session = "auth-1",
				      .user_id = "user-1", .request_log_id = "test", .head = head,
				      .head_len = sizeof(head) - 1 };
	int sv[2];
	struct peer a;

	CU_ASSERT_FATAL(h != NULL);
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	close(sv[0]);
	close(sv[1]);
	sp.fd = sv[0]; /* closed: fcntl fails with EBADF */
	errno = 0;
	CU_ASSERT_EQUAL(hub_add(h, &sp), -1);
	CU_ASSERT_EQUAL(errno, EBADF);
	/* the one place (max_streams 1) is still free */
	CU_ASSERT_EQUAL(open_stream(h, &a, "t", NULL, NULL, NULL), 0);
	hub_stop(h, 500);
	hub_free(h);
	peer_close(&a);
}

static void test_revocation_ends_streams_of_a_login_or_user(void)
{
	struct hub *h = start(60000, 65536, 10);
	struct peer a, b;

	/* open_stream binds every stream to login auth-1 of user-1 */
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &a, "t", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &b, "t2", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(hub_revoke_session(h, "other-login"), 0);
	CU_ASSERT_EQUAL(hub_revoke_session(h, "auth-1"), 0);
	CU_ASSERT_TRUE(read_until(&a, NULL, 2000));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&a.text), "event: revoked"));
	CU_ASSERT_TRUE(a.ended);
	CU_ASSERT_TRUE(read_until(&b, NULL, 2000));
	peer_close(&a);
	peer_close(&b);
	/* by user: only that tenant's user */
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &a, "t", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(open_stream(h, &b, "t2", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(hub_revoke_user(h, "t", "user-1"), 0);
	CU_ASSERT_TRUE(read_until(&a, NULL, 2000));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&a.text), "event: revoked"));
	usleep(200000);
	CU_ASSERT_FALSE(b.eof);
	CU_ASSERT_PTR_NULL(strstr(buf_str(&b.text), "event: revoked"));
	hub_stop(h, 500);
	hub_free(h);
	peer_close(&a);
	peer_close(&b);
}

/* ---------------------------------------------------------------- with the bus */

/* A hub joined to the real Redis of tests/unit/run.sh. */
static struct hub *start_bus(int port)
{
	const struct redis_opts ro = { "127.0.0.1", port, "", 200, 200, 200, 0, 0, NULL, NULL, NULL };
	const struct hub_opts o = { 60000, 0, 0, 65536, 10, NULL, &ro, 4, 0, 0 };
	struct buf err = BUF_INIT;
	struct hub *h = hub_start(&o, &err);

	buf_release(&err);
	return h;
}

/* A stream that announces itself and resumes from `from` (NULL: fresh). */
static int open_resume(struct hub *h, struct peer *p, const char *tenant, const char *from,
		       const char *events)
{
	static const char head[] = "Status: 200 OK\r\n\r\nretry: 1000\n\n";
	struct hub_stream_spec sp = { .request_id = 1, .tenant_id = tenant, .events = events,
				      .request_log_id = "conn-1", .announce = 1, .resume_from = from,
				      .head = head, .head_len = sizeof(head) - 1 };

	return add_peer(h, p, &sp);
}

static int bus_pub(struct redis *r, long long max_len, const char *tenant, const char *type,
		   const char *data, char *id)
{
	const struct bus_history hist = { max_len, 0 };
	const struct bus_entry e = { NULL, type, NULL, data, strlen(data), 0 };

	return bus_publish(r, &hist, tenant, &e, id);
}

/* Replay from an id, then live, with no gap and no duplicate; an id the
 * history no longer covers (or no id at all) gets a reset and then what
 * history still holds. */
static void test_bus_resume_replay_and_reset(void)
{
	int port = test_redis_port();
	char tenant[64], ids[6][HUB_ID_MAX + 1], want[256];
	struct redis *r;
	struct hub *h;
	struct peer a, b, c, d;

	CU_ASSERT_FATAL(port > 0);
	snprintf(tenant, sizeof(tenant), "t-hub-%ld-%lld", (long)getpid(), now_ms());
	r = test_redis_client(port);
	CU_ASSERT_FATAL(r != NULL);
	for (int i = 0; i < 4; i++) /* history keeps 4 */
		CU_ASSERT_EQUAL_FATAL(bus_pub(r, 4, tenant, i % 2 ? "odd" : "even", "{}", ids[i]), 0);
	h = start_bus(port);
	CU_ASSERT_FATAL(h != NULL);

	CU_ASSERT_EQUAL_FATAL(open_resume(h, &a, tenant, ids[0], NULL), 0);
	CU_ASSERT_EQUAL_FATAL(open_resume(h, &b, tenant, NULL, "even"), 0);
	snprintf(want, sizeof(want), "id: %s\nevent: connected\n", ids[0]);
	CU_ASSERT_TRUE(read_until(&a, want, 3000));
	snprintf(want, sizeof(want), "id: %s\nevent: odd\n", ids[3]);
	CU_ASSERT_TRUE(read_until(&a, want, 3000));
	snprintf(want, sizeof(want), "id: %s\nevent: connected\n", ids[3]); /* fresh: the newest */
	CU_ASSERT_TRUE(read_until(&b, want, 3000));
	/* live: a and b only after their position, each event once */
	CU_ASSERT_EQUAL_FATAL(bus_pub(r, 4, tenant, "even", "{\"live\":1}", ids[4]), 0);
	CU_ASSERT_EQUAL_FATAL(bus_pub(r, 4, tenant, "odd", "{\"live\":2}", ids[5]), 0);
	snprintf(want, sizeof(want), "id: %s\nevent: odd\n", ids[5]);
	CU_ASSERT_TRUE(read_until(&a, want, 3000));
	snprintf(want, sizeof(want), "id: %s\nevent: even\n", ids[4]);
	CU_ASSERT_TRUE(read_until(&b, want, 3000));
	for (int i = 1; i < 6; i++) {
		snprintf(want, sizeof(want), "id: %s\nevent: %s\n", ids[i], i % 2 ? "odd" : "even");
		const char *first = strstr(buf_str(&a.text), want);
		CU_ASSERT_PTR_NOT_NULL(first);
		CU_ASSERT(first == NULL || strstr(first + 1, want) == NULL); /* no duplicate */
	}
	CU_ASSERT_PTR_NULL(strstr(buf_str(&a.text), "event: reset"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&b.text), "event: odd"));

	/* ids[0] and ids[1] were trimmed (4 kept of 6): resuming from ids[0]
	 * lost ids[1]; from ids[1] (the newest trimmed) nothing was lost */
	CU_ASSERT_EQUAL_FATAL(open_resume(h, &c, tenant, ids[0], NULL), 0);
	snprintf(want, sizeof(want), "id: %s\nevent: reset\n", ids[1]); /* from the newest trimmed */
	CU_ASSERT_TRUE(read_until(&c, want, 3000));
	snprintf(want, sizeof(want), "id: %s\nevent: even\n", ids[2]); /* then what history holds */
	CU_ASSERT_TRUE(read_until(&c, want, 3000));
	snprintf(want, sizeof(want), "id: %s\nevent: odd\n", ids[5]);
	CU_ASSERT_TRUE(read_until(&c, want, 3000));
	CU_ASSERT_EQUAL_FATAL(open_resume(h, &d, tenant, ids[1], NULL), 0);
	snprintf(want, sizeof(want), "id: %s\nevent: odd\n", ids[5]);
	CU_ASSERT_TRUE(read_until(&d, want, 3000));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&d.text), "event: reset"));
	peer_close(&c);
	CU_ASSERT_EQUAL_FATAL(open_resume(h, &c, tenant, "not-an-id", NULL), 0);
	CU_ASSERT_TRUE(read_until(&c, "event: reset", 3000));
	peer_close(&c);
	peer_close(&d);

	/* with the history gone from Redis, an id this hub saw live is still
	 * answered from memory; one from before it is not */
	{
		char key[128];
		const char *argv[1] = { key };
		size_t lens[1];
		struct buf out = BUF_INIT;
		lens[0] = (size_t)snprintf(key, sizeof(key), "fcgi_sse:{%s}:events", tenant);
		/* "0" is no script's sha: EVAL runs it */
		CU_ASSERT_EQUAL(redis_script(r, "0", "return redis.call('DEL', KEYS[1])", 1, 1, argv, lens, &out), 0);
		buf_release(&out);
	}
	CU_ASSERT_EQUAL_FATAL(open_resume(h, &c, tenant, ids[4], NULL), 0);
	snprintf(want, sizeof(want), "id: %s\nevent: odd\n", ids[5]);
	CU_ASSERT_TRUE(read_until(&c, want, 3000));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&c.text), "event: reset"));
	CU_ASSERT_EQUAL_FATAL(open_resume(h, &d, tenant, ids[3], NULL), 0);
	CU_ASSERT_TRUE(read_until(&d, "event: reset", 3000));
	hub_stop(h, 500);
	hub_free(h);
	redis_free(r);
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
	peer_close(&d);
}

/* A stream ends with `event: revoked` when its login expires, without
 * anyone telling the hub: every process holding one does so on its own. */
static void test_stream_ends_when_its_login_expires(void)
{
	static const char head[] = "Status: 200 OK\r\n\r\nretry: 1000\n\n";
	struct hub *h = start(60000, 65536, 10);
	struct hub_stream_spec sp = { .request_id = 1, .tenant_id = "t", .auth_session = "auth-9",
				      .user_id = "user-9", .auth_expires = (long long)time(NULL) + 1,
				      .request_log_id = "x", .head = head, .head_len = sizeof(head) - 1 };
	struct peer p;

	CU_ASSERT_FATAL(h != NULL);
	CU_ASSERT_FATAL(add_peer(h, &p, &sp) == 0);
	CU_ASSERT_TRUE(read_until(&p, "retry: 1000", 2000));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&p.text), "event: revoked"));
	CU_ASSERT_TRUE(read_until(&p, NULL, 4000));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&p.text), "event: revoked"));
	CU_ASSERT_TRUE(p.ended);
	hub_stop(h, 500);
	hub_free(h);
	peer_close(&p);
}

/* A live stream whose position is trimmed away while this process is cut
 * off from the bus gets, once the bus is back, a reset and then what
 * history holds: never a silent gap. */
static void test_bus_trimmed_while_away_resets(void)
{
	int port = test_redis_port();
	char tenant[64], ids[7][HUB_ID_MAX + 1], want[256];
	struct redis *r;
	struct hub *h;
	struct peer a;

	CU_ASSERT_FATAL(port > 0);
	snprintf(tenant, sizeof(tenant), "t-gap-%ld-%lld", (long)getpid(), now_ms());
	r = test_redis_client(port);
	h = start_bus(port);
	CU_ASSERT_FATAL(r != NULL && h != NULL);
	CU_ASSERT_EQUAL_FATAL(open_resume(h, &a, tenant, NULL, NULL), 0);
	CU_ASSERT_TRUE(read_until(&a, "event: connected", 3000));
	CU_ASSERT_EQUAL_FATAL(bus_pub(r, 3, tenant, "x", "{}", ids[0]), 0);
	snprintf(want, sizeof(want), "id: %s\nevent: x\n", ids[0]);
	CU_ASSERT_TRUE(read_until(&a, want, 3000));
	test_redis_command(port, TEST_KILL_SUBSCRIBERS);
	for (int i = 1; i < 7; i++) /* history keeps 3: ids[0..3] are trimmed */
		CU_ASSERT_EQUAL_FATAL(bus_pub(r, 3, tenant, "x", "{}", ids[i]), 0);
	snprintf(want, sizeof(want), "id: %s\nevent: reset\n", ids[3]);
	CU_ASSERT_TRUE(read_until(&a, want, 5000));
	snprintf(want, sizeof(want), "id: %s\nevent: x\n", ids[6]);
	CU_ASSERT_TRUE(read_until(&a, want, 3000));
	for (int i = 1; i < 7; i++) { /* before the reset: none; after: the kept 3 */
		snprintf(want, sizeof(want), "id: %s\nevent: x\n", ids[i]);
		CU_ASSERT((strstr(buf_str(&a.text), want) != NULL) == (i >= 4));
	}
	hub_stop(h, 500);
	hub_free(h);
	redis_free(r);
	peer_close(&a);
}

static CU_TestInfo tests[] = {
	{ "history trimmed while cut off from the bus: reset, not a gap", test_bus_trimmed_while_away_resets },
	{ "resume from an id over the bus: replay, live, reset", test_bus_resume_replay_and_reset },
	{ "a stream ends when its login expires", test_stream_ends_when_its_login_expires },
	{ "revocation ends the streams of a login or a user", test_revocation_ends_streams_of_a_login_or_user },
	{ "comma lists", test_list_has },
	{ "fan-out by tenant, type and topic", test_fan_out_with_filters },
	{ "payload newlines become data lines", test_payload_newlines_are_split },
	{ "heartbeats repeat the last event id", test_heartbeats_repeat_the_last_id },
	{ "close ends the topic's streams", test_close_ends_topic_streams },
	{ "a slow client is dropped, others unaffected", test_slow_client_is_dropped_others_unaffected },
	{ "a gone client is freed", test_gone_client_is_freed },
	{ "one stream per key; shutdown reaches every stream", test_limit_and_replacement },
	{ "a full or stopped hub refuses", test_full_hub_refuses },
	{ "an fd that cannot be made non-blocking is refused", test_an_fd_that_cannot_be_made_non_blocking_is_refused },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "hub", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_hub_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}

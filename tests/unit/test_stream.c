/* stream, catchup, control: the hub's parts on their own, over real
 * socketpairs and a real epoll set, with no hub thread and no Redis. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/fcgi_record.h"
#include "../../sse/catchup.h"
#include "../../sse/control.h"
#include "../../sse/stream.h"
#include "suites.h"

struct fixture {
	pthread_mutex_t mu;
	struct hub_stats stats;
	struct registry reg;
	struct hub_opts o;
};

static void setup(struct fixture *f, size_t max_buffer)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->o.heartbeat_ms = 60000;
	f->o.max_buffer = max_buffer;
	f->o.max_streams = 100;
	f->reg.ep = epoll_create1(EPOLL_CLOEXEC);
	CU_ASSERT_FATAL(f->reg.ep >= 0);
	f->reg.mu = &f->mu;
	f->reg.stats = &f->stats;
}

static void teardown(struct fixture *f)
{
	while (f->reg.all != NULL)
		stream_destroy(&f->reg, f->reg.all);
	registry_free_dead(&f->reg);
	close(f->reg.ep);
	pthread_mutex_destroy(&f->mu);
}

/* A stream of tenant over a new socketpair, added to the registry; *peer
 * is the front server's end; conn (NULL: none) the client's TCP
 * connection it names, shared: that it is HTTP/2. The head is "HEAD",
 * framed, pending. */
static struct stream *add_on(struct fixture *f, int *peer, const char *tenant, const char *events,
			     const char *topics, const char *key, const char *auth,
			     const struct peer_conn *conn, int shared)
{
	struct hub_stream_spec sp = { .request_id = 3, .tenant_id = tenant, .events = events,
				      .topics = topics, .key = key, .auth_session = auth,
				      .request_log_id = "req-1", .peer = conn, .peer_shared = shared };
	struct buf head = BUF_INIT;
	struct stream *s;
	int sv[2];

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CU_ASSERT_FATAL(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) == 0);
	CU_ASSERT_FATAL(fcgi_record_stdout(&head, 3, "HEAD", 4) == 0);
	sp.fd = sv[0];
	sp.head = head.data;
	sp.head_len = head.len;
	s = stream_new(&f->o, &sp);
	buf_release(&head);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT_FATAL(registry_add(&f->reg, s) == 0);
	CU_ASSERT_EQUAL(stream_flush(&f->reg, s), 0);
	f->stats.open++; /* hub_add reserves the slot */
	*peer = sv[1];
	return s;
}

static struct stream *add(struct fixture *f, int *peer, const char *tenant, const char *events,
			  const char *topics, const char *key, const char *auth)
{
	return add_on(f, peer, tenant, events, topics, key, auth, NULL, 0);
}

/* What the peer has now, FastCGI-unframed: the STDOUT content in out (NUL
 * ended), and whether an END_REQUEST came. Returns the STDOUT records. */
static int read_peer(int fd, char *out, size_t cap, int *ended)
{
	static char raw[1 << 17];
	size_t n = 0, o = 0;
	ssize_t k;
	int recs = 0;

	*ended = 0;
	while (n < sizeof(raw) && (k = recv(fd, raw + n, sizeof(raw) - n, MSG_DONTWAIT)) > 0)
		n += (size_t)k;
	for (size_t p = 0; p + FCGI_RECORD_HEADER <= n;) {
		const unsigned char *h = (const unsigned char *)raw + p;
		size_t len = (size_t)h[4] << 8 | h[5], pad = h[6];
		if (p + FCGI_RECORD_HEADER + len + pad > n)
			break;
		if (h[1] == FCGI_TYPE_STDOUT && len > 0) {
			recs++;
			if (o + len < cap) {
				memcpy(out + o, raw + p + FCGI_RECORD_HEADER, len);
				o += len;
			}
		} else if (h[1] == FCGI_TYPE_END_REQUEST) {
			*ended = 1;
		}
		p += FCGI_RECORD_HEADER + len + pad;
	}
	out[o] = '\0';
	return recs;
}

static void test_events_of_a_pass_go_out_as_one_record(void)
{
	struct fixture f;
	struct bus_entry e1 = { "10-1", "reading", "device:a", "{\"v\":1}", 7, 0 },
			 e2 = { "10-2", "other", "device:a", "{\"v\":2}", 7, 0 },
			 e3 = { "10-3", "reading", "device:b", "{\"v\":3}", 7, 0 },
			 e4 = { "10-4", "reading", "device:a", "{\"v\":4}", 7, 0 };
	struct bus_entry *all[] = { &e1, &e2, &e3, &e4 };
	struct frames fr[4];
	char out[4096];
	int peer, ended, given = 0;
	struct stream *s;

	setup(&f, 65536);
	s = add(&f, &peer, "t1", "reading", "device:a", NULL, NULL);
	CU_ASSERT_EQUAL(read_peer(peer, out, sizeof(out), &ended), 1);
	CU_ASSERT_STRING_EQUAL(out, "HEAD");
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_FATAL(frames_encode(&fr[i], all[i]) == 0);
		given += stream_give(&f.reg, s, all[i], &fr[i]);
	}
	CU_ASSERT_EQUAL(given, 2);                /* wrong type, wrong topic: skipped */
	CU_ASSERT_STRING_EQUAL(s->pos, "10-4");   /* ... but passed */
	CU_ASSERT_EQUAL(read_peer(peer, out, sizeof(out), &ended), 0); /* nothing before commit */
	registry_commit(&f.reg);
	CU_ASSERT_EQUAL(read_peer(peer, out, sizeof(out), &ended), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "id: 10-1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "id: 10-4\n"));
	CU_ASSERT_PTR_NULL(strstr(out, "10-2"));
	CU_ASSERT_PTR_NULL(strstr(out, "10-3"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "data: {\"v\":4}"));
	CU_ASSERT_FALSE(ended);
	for (int i = 0; i < 4; i++)
		frames_release(&fr[i]);
	close(peer);
	teardown(&f);
}

/* A close for the stream's topic: the event, `event: close`, the end
 * record, and the stream is gone (counted) once the registry frees it. */
static void test_close_event_ends_the_stream(void)
{
	struct fixture f;
	struct bus_entry e = { "11-0", "job", "job:7", "{}", 2, 1 };
	struct frames fr;
	char out[4096];
	int peer, ended;
	struct stream *s;

	setup(&f, 65536);
	s = add(&f, &peer, "t1", NULL, "job:7", NULL, NULL);
	read_peer(peer, out, sizeof(out), &ended);
	CU_ASSERT_FATAL(frames_encode(&fr, &e) == 0);
	CU_ASSERT_EQUAL(stream_give(&f.reg, s, &e, &fr), 1);
	CU_ASSERT_TRUE(s->dead);              /* flushed at once: closed */
	CU_ASSERT_EQUAL(f.reg.count, 0);
	CU_ASSERT_PTR_NULL(f.reg.all);
	CU_ASSERT_EQUAL(f.stats.closed, 1);
	CU_ASSERT_EQUAL(f.stats.open, 0);
	read_peer(peer, out, sizeof(out), &ended);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "event: job\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "event: close\n"));
	CU_ASSERT_TRUE(ended);
	registry_commit(&f.reg);              /* a dead stream on the dirty list is skipped */
	registry_free_dead(&f.reg);
	CU_ASSERT_PTR_NULL(f.reg.dead);
	frames_release(&fr);
	close(peer);
	teardown(&f);
}

/* Lifetimes: the end of a login revokes, the end of the lifetime ends,
 * a heartbeat goes out when due and not before. */
static void test_deadlines(void)
{
	struct fixture f;
	char out[4096];
	int p1, p2, ended;
	struct stream *a, *b;
	long long now;

	setup(&f, 65536);
	a = add(&f, &p1, "t1", NULL, NULL, NULL, NULL);
	b = add(&f, &p2, "t1", NULL, NULL, NULL, NULL);
	read_peer(p1, out, sizeof(out), &ended);
	read_peer(p2, out, sizeof(out), &ended);
	now = clock_mono_ms();
	a->revoke_at_ms = now + 50;
	b->deadline_ms = now + 100;
	CU_ASSERT_EQUAL(stream_due(&f.reg, a, now), 1);
	CU_ASSERT_EQUAL(stream_due(&f.reg, b, now), 1);
	stream_ping_due(&f.reg, a, now, 1000); /* next ping is a minute away */
	CU_ASSERT_EQUAL(read_peer(p1, out, sizeof(out), &ended), 0);
	stream_ping_due(&f.reg, a, a->next_ping_ms, 1000);
	CU_ASSERT_EQUAL(read_peer(p1, out, sizeof(out), &ended), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "event: ping\n"));
	CU_ASSERT_EQUAL(stream_due(&f.reg, a, now + 50), 0);
	CU_ASSERT_TRUE(a->dead);
	read_peer(p1, out, sizeof(out), &ended);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "event: revoked\n"));
	CU_ASSERT_TRUE(ended);
	CU_ASSERT_EQUAL(stream_due(&f.reg, b, now + 99), 1);
	CU_ASSERT_EQUAL(stream_due(&f.reg, b, now + 100), 0);
	CU_ASSERT_TRUE(b->dead);
	CU_ASSERT_EQUAL(read_peer(p2, out, sizeof(out), &ended), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "event: lifetime\n")); /* a planned end, said so */
	CU_ASSERT_TRUE(ended);
	CU_ASSERT_EQUAL(f.stats.closed, 2);
	close(p1);
	close(p2);
	teardown(&f);
}

/* A peer that does not read is dropped when its bound fills, and counted;
 * a peer that goes away ends its stream at the next epoll event. */
static void test_slow_and_gone_peers(void)
{
	struct fixture f;
	static char big[8192];
	struct epoll_event ev;
	char out[256];
	int p1, p2, ended, rc, tries = 0;
	struct stream *slow, *gone;

	setup(&f, 16384);
	slow = add(&f, &p1, "t1", NULL, NULL, NULL, NULL);
	gone = add(&f, &p2, "t1", NULL, NULL, NULL, NULL);
	memset(big, 'x', sizeof(big));
	while (!slow->dead && tries++ < 10000) {
		if ((rc = stream_queue(&f.reg, slow, big, sizeof(big))) < 0)
			stream_fail(&f.reg, slow, rc); /* as stream_give does */
		else
			registry_commit(&f.reg);
	}
	CU_ASSERT_TRUE(slow->dead);
	CU_ASSERT_EQUAL(slow->reason, END_SLOW);
	CU_ASSERT_EQUAL(f.stats.dropped_slow, 1);
	read_peer(p2, out, sizeof(out), &ended);
	close(p2);
	CU_ASSERT_EQUAL_FATAL(epoll_wait(f.reg.ep, &ev, 1, 1000), 1);
	CU_ASSERT_PTR_EQUAL(ev.data.ptr, gone);
	stream_on_io(&f.reg, ev.data.ptr, ev.events);
	CU_ASSERT_TRUE(gone->dead);
	CU_ASSERT_EQUAL(gone->reason, END_GONE);
	CU_ASSERT_EQUAL(f.stats.closed, 2);
	CU_ASSERT_EQUAL(f.reg.count, 0);
	close(p1);
	teardown(&f);
}

/* The peer check ends the streams on a connection the kernel listed as
 * closed or gone, but only those begun before the kernel was asked: a
 * client's port is free again at once after a reset, and a new stream on
 * a new connection with the same addresses and ports is no stream of the
 * old one (the soak saw a live stream ended that way). */
static void test_peer_end_spares_streams_begun_since(void)
{
	struct fixture f;
	struct peer_conn c;
	struct stream *old, *fresh, *other;
	int p1, p2, p3;
	long long asked;

	CU_ASSERT_FATAL(peer_conn_parse(&c, "127.0.0.1", "8080", "127.0.0.1", "40001") == 0);
	setup(&f, 16384);
	old = add_on(&f, &p1, "t1", NULL, NULL, NULL, NULL, &c, 0);
	fresh = add_on(&f, &p2, "t1", NULL, NULL, NULL, NULL, &c, 0);
	other = add(&f, &p3, "t1", NULL, NULL, NULL, NULL);
	asked = old->started_ms + 10;
	fresh->started_ms = asked; /* begun as the kernel was asked, or after */
	/* (an ended stream is dead, or closing while its end record is
	 * queued; freed only by registry_free_dead) */
	CU_ASSERT_EQUAL(registry_end_peer(&f.reg, &c, END_PEER_CLOSED, asked), 1);
	CU_ASSERT_TRUE((old->dead || old->closing) && old->reason == END_PEER_CLOSED);
	CU_ASSERT_FALSE(fresh->dead || fresh->closing);
	CU_ASSERT_FALSE(other->dead || other->closing);
	/* a later look that lists the connection again ends the new one */
	CU_ASSERT_EQUAL(registry_end_peer(&f.reg, &c, END_PEER_CLOSED, asked + 1), 1);
	CU_ASSERT_TRUE((fresh->dead || fresh->closing) && fresh->reason == END_PEER_CLOSED);
	CU_ASSERT_FALSE(other->dead || other->closing);
	CU_ASSERT_EQUAL(f.reg.count, 1);
	close(p1);
	close(p2);
	close(p3);
	teardown(&f);
}

/* The registry counts the streams on HTTP/2 connections, for which the
 * peer thread lists the established connections at every look (sse/hub.c):
 * a stream counts from its add to its end, and one whose connection the
 * front server did not name (nothing to look for) does not count. */
static void test_streams_on_http2_connections_are_counted(void)
{
	struct fixture f;
	struct peer_conn c4, c6;
	struct stream *a, *b, *plain, *unnamed;
	int p1, p2, p3, p4;

	CU_ASSERT_FATAL(peer_conn_parse(&c4, "127.0.0.1", "443", "10.0.0.9", "40001") == 0);
	CU_ASSERT_FATAL(peer_conn_parse(&c6, "2001:db8::1", "443", "2001:db8::9", "40002") == 0);
	setup(&f, 16384);
	a = add_on(&f, &p1, "t1", NULL, NULL, NULL, NULL, &c4, 1);
	b = add_on(&f, &p2, "t1", NULL, NULL, NULL, NULL, &c6, 1);
	plain = add_on(&f, &p3, "t1", NULL, NULL, NULL, NULL, &c4, 0);
	unnamed = add_on(&f, &p4, "t1", NULL, NULL, NULL, NULL, NULL, 1);
	CU_ASSERT_EQUAL(atomic_load(&f.reg.peers_shared), 2);
	CU_ASSERT_EQUAL(atomic_load(&f.reg.peers_v4), 2);
	CU_ASSERT_EQUAL(atomic_load(&f.reg.peers_v6), 1);
	stream_end(&f.reg, a, END_GONE, 0);
	registry_free_dead(&f.reg);
	CU_ASSERT_EQUAL(atomic_load(&f.reg.peers_shared), 1);
	stream_end(&f.reg, plain, END_GONE, 0);
	stream_end(&f.reg, unnamed, END_GONE, 0);
	registry_free_dead(&f.reg);
	CU_ASSERT_EQUAL(atomic_load(&f.reg.peers_shared), 1);
	stream_end(&f.reg, b, END_GONE, 0);
	registry_free_dead(&f.reg);
	CU_ASSERT_EQUAL(atomic_load(&f.reg.peers_shared), 0);
	CU_ASSERT_EQUAL(atomic_load(&f.reg.peers_v4) + atomic_load(&f.reg.peers_v6), 0);
	close(p1);
	close(p2);
	close(p3);
	close(p4);
	teardown(&f);
}

/* The names of the streams registry_take_due hands out at now, in a
 * string sorted by the streams' tenants ("a,b"); each goes back on the
 * wheel as the hub's tick puts it (after its visit). */
static void due_at(struct fixture *f, long long now, char *out, size_t cap)
{
	const char *names[16];
	struct stream *s, *got[16];
	size_t n = 0, o = 0;

	registry_take_due(&f->reg, now);
	while ((s = registry_next_due(&f->reg)) != NULL) {
		CU_ASSERT_PTR_NULL(s->tmhead); /* on no list while visited */
		if (n < 16)
			got[n++] = s;
	}
	for (size_t i = 0; i < n; i++) {
		names[i] = got[i]->tenant;
		registry_schedule(&f->reg, got[i]);
	}
	for (size_t i = 1; i < n; i++) /* insertion sort: a handful */
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	out[0] = '\0';
	for (size_t i = 0; i < n && o + strlen(names[i]) + 2 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", names[i]);
}

/* The hub's tick looks only at the streams with something due: each is in
 * the timer wheel's slot of its first heartbeat, lifetime end or login
 * end; while not live (a catch-up to send) at every tick; while closing at
 * the end of its grace. A stream ended meanwhile leaves the wheel, and a
 * stall longer than the wheel's turn misses nothing. */
static void test_the_tick_visits_only_streams_with_something_due(void)
{
	struct fixture f;
	struct stream *a, *b, *c, *d;
	int pa, pb, pc, pd;
	char got[128];
	long long t0;

	setup(&f, 16384);
	a = add(&f, &pa, "a", NULL, NULL, NULL, NULL);
	b = add(&f, &pb, "b", NULL, NULL, NULL, NULL);
	c = add(&f, &pc, "c", NULL, NULL, NULL, NULL);
	d = add(&f, &pd, "d", NULL, NULL, NULL, NULL);
	t0 = 1000000; /* any monotonic time, tick-aligned */
	a->live = b->live = c->live = 1;
	a->next_ping_ms = t0 + 15000;
	b->next_ping_ms = t0 + 15000;
	b->deadline_ms = t0 + 350;                    /* its lifetime first */
	c->next_ping_ms = t0 + 60000;
	c->revoke_at_ms = t0 + 200000;                /* beyond a turn of the wheel */
	c->next_ping_ms = t0 + 200000;
	registry_schedule(&f.reg, a);
	registry_schedule(&f.reg, b);
	registry_schedule(&f.reg, c);
	registry_schedule(&f.reg, d);                 /* not live: every tick */

	due_at(&f, t0, got, sizeof(got));             /* the first take looks everywhere */
	CU_ASSERT_STRING_EQUAL(got, "d");
	due_at(&f, t0 + 100, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "d");
	d->live = 1;
	d->next_ping_ms = t0 + 15000;
	due_at(&f, t0 + 200, got, sizeof(got));       /* d visited once more, then at its ping */
	CU_ASSERT_STRING_EQUAL(got, "d");
	due_at(&f, t0 + 300, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "");
	due_at(&f, t0 + 349, got, sizeof(got));       /* the same slot, before b's time */
	CU_ASSERT_STRING_EQUAL(got, "");
	due_at(&f, t0 + 350, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "b");
	b->deadline_ms = 0;                           /* (as if it had ended and come back) */
	registry_schedule(&f.reg, b);
	/* ticks that come late skip no slot */
	due_at(&f, t0 + 14950, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "");
	due_at(&f, t0 + 15230, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "a,b,d");
	a->next_ping_ms = b->next_ping_ms = d->next_ping_ms = t0 + 300000;
	registry_schedule(&f.reg, a);
	registry_schedule(&f.reg, b);
	registry_schedule(&f.reg, d);
	/* a graceful end: due at the end of its grace, not its heartbeat */
	a->closing = 1;
	a->close_by_ms = t0 + 16000;
	registry_schedule(&f.reg, a);
	due_at(&f, t0 + 15900, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "");
	due_at(&f, t0 + 16000, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "a");
	due_at(&f, t0 + 16100, got, sizeof(got));     /* still closing: at every tick now */
	CU_ASSERT_STRING_EQUAL(got, "a");
	a->closing = 0;
	registry_schedule(&f.reg, a);
	/* c's slot came round at t0 + 102.4 s and more: not due yet, kept */
	due_at(&f, t0 + 110000, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "");
	/* an ended stream leaves the wheel */
	stream_end(&f.reg, b, END_GONE, 0);
	CU_ASSERT_PTR_NULL(b->tmhead);
	/* a stall of more than a turn: everything due is found */
	due_at(&f, t0 + 400000, got, sizeof(got));
	CU_ASSERT_STRING_EQUAL(got, "a,c,d");
	registry_free_dead(&f.reg);
	close(pa);
	close(pb);
	close(pc);
	close(pd);
	teardown(&f);
}

/* A closed stream that a bus answer still names is kept until it has come. */
static void test_a_stream_named_by_a_query_waits(void)
{
	struct fixture f;
	int peer;
	struct stream *s;

	setup(&f, 65536);
	s = add(&f, &peer, "t1", NULL, NULL, NULL, NULL);
	s->in_flight = 1;
	stream_end(&f.reg, s, END_GONE, 0);
	registry_free_dead(&f.reg);
	CU_ASSERT_PTR_EQUAL(f.reg.zombies, s); /* still readable: ASan would say otherwise */
	CU_ASSERT_TRUE(s->dead);
	s->in_flight = 0;
	registry_free_dead(&f.reg);
	CU_ASSERT_PTR_NULL(f.reg.zombies);
	close(peer);
	teardown(&f);
}

/* control without a bus: a newer stream with the same key (and tenant)
 * replaces the older; a revocation ends the login's streams only. */
static void test_replacement_and_revocation(void)
{
	struct fixture f;
	struct control ctl;
	char out[4096];
	int p1, p2, p3, p4, ended;
	struct stream *old, *other_tenant, *newer, *plain;

	setup(&f, 65536);
	control_init(&ctl, &f.reg, NULL, NULL);
	old = add(&f, &p1, "t1", NULL, NULL, "key-1", "login-a");
	control_claim(&ctl, old);
	other_tenant = add(&f, &p2, "t2", NULL, NULL, "key-1", "login-b");
	control_claim(&ctl, other_tenant);
	CU_ASSERT_FALSE(old->dead);
	newer = add(&f, &p3, "t1", NULL, NULL, "key-1", "login-a");
	control_claim(&ctl, newer);
	CU_ASSERT_TRUE(old->dead);
	CU_ASSERT_EQUAL(old->reason, END_REPLACED);
	CU_ASSERT_FALSE(other_tenant->dead);
	plain = add(&f, &p4, "t1", NULL, NULL, NULL, "login-b");
	read_peer(p3, out, sizeof(out), &ended);
	control_revoke_login(&ctl, "login-a");
	CU_ASSERT_TRUE(newer->dead);
	CU_ASSERT_EQUAL(newer->reason, END_REVOKED);
	read_peer(p3, out, sizeof(out), &ended);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "event: revoked\n"));
	CU_ASSERT_FALSE(plain->dead);
	CU_ASSERT_FALSE(other_tenant->dead);
	CU_ASSERT_EQUAL(f.reg.count, 2);
	control_free(&ctl);
	close(p1);
	close(p2);
	close(p3);
	close(p4);
	teardown(&f);
}

static void test_must_reset(void)
{
	struct bus_info in = { 1, "100-5", "90-0", "89-9" };
	struct bus_info whole = { 1, "100-5", "1-0", "0-0" };
	struct bus_info none = { 0, "", "", "" };

	CU_ASSERT_FALSE(catchup_must_reset("95-0", &in));   /* kept */
	CU_ASSERT_FALSE(catchup_must_reset("100-5", &in));  /* the newest */
	CU_ASSERT_FALSE(catchup_must_reset("89-9", &in));   /* the newest trimmed */
	CU_ASSERT_TRUE(catchup_must_reset("0-0", &in));     /* from the start: some are gone */
	CU_ASSERT_FALSE(catchup_must_reset("0-0", &whole)); /* ... unless none was trimmed */
	CU_ASSERT_TRUE(catchup_must_reset("89-0", &in));    /* trimmed away */
	CU_ASSERT_TRUE(catchup_must_reset("100-6", &in));   /* after the newest: not ours */
	CU_ASSERT_FALSE(catchup_must_reset("0-0", &none));
	CU_ASSERT_TRUE(catchup_must_reset("5-0", &none));   /* history gone */
}

static void test_ring_may_replay(void)
{
	long long now = 1000000;

	/* no bounds: memory may always answer */
	CU_ASSERT_TRUE(catchup_ring_may_replay(0, 0, "5-0", 5000, now));
	/* length: 100 kept, trimmed in batches of 1: at most 100 after */
	CU_ASSERT_TRUE(catchup_ring_may_replay(100, 0, "5-0", 100, now));
	CU_ASSERT_FALSE(catchup_ring_may_replay(100, 0, "5-0", 101, now));
	/* age: an id older than the bound may be trimmed already */
	CU_ASSERT_TRUE(catchup_ring_may_replay(0, 1000, "999000-0", 3, now));
	CU_ASSERT_FALSE(catchup_ring_may_replay(0, 1000, "998999-0", 3, now));
	CU_ASSERT_FALSE(catchup_ring_may_replay(0, 1000, "bogus", 3, now));
}

/* A client that reads nothing: once its buffer is full, the event that
 * does not fit is counted as dropped, and the stream ends as slow. */
static void test_an_event_that_does_not_fit_is_counted_dropped(void)
{
	static char big[8192];
	struct fixture f;
	struct bus_entry e = { "12-0", "job", NULL, big, sizeof(big) - 1, 0 };
	struct frames fr;
	int peer, given = 0, tries = 0;
	struct stream *s;

	memset(big, 'x', sizeof(big) - 1);
	setup(&f, 16384);
	s = add(&f, &peer, "t1", NULL, NULL, NULL, NULL);
	CU_ASSERT_FATAL(frames_encode(&fr, &e) == 0);
	while (!s->dead && tries++ < 10000) {
		given += stream_give(&f.reg, s, &e, &fr);
		registry_commit(&f.reg);
	}
	CU_ASSERT_TRUE(s->dead);
	CU_ASSERT_EQUAL(s->reason, END_SLOW);
	CU_ASSERT(given >= 1);
	CU_ASSERT_EQUAL(f.stats.dropped, 1);
	CU_ASSERT_EQUAL(f.stats.dropped_slow, 1);
	frames_release(&fr);
	close(peer);
	teardown(&f);
}

/* Cursors of tenants no stream follows any more go after a while idle, so
 * a process does not keep one (and its ring) for every tenant it ever
 * saw; those with streams, with a query in flight, or used lately stay. */
static void test_idle_cursors_are_freed(void)
{
	struct catchup cu;
	struct cursor *gone, *followed, *recent;
	struct bus_entry e = { "1-0", "t.x", NULL, "{}", 2, 0 };
	struct frames f;
	long long now;

	memset(&cu, 0, sizeof(cu));
	cu.bus = (struct bus *)&cu; /* only compared with NULL by catchup_keep */
	gone = catchup_cursor(&cu, "gone", 1);
	followed = catchup_cursor(&cu, "followed", 1);
	recent = catchup_cursor(&cu, "recent", 1);
	CU_ASSERT_FATAL(gone != NULL && followed != NULL && recent != NULL);
	CU_ASSERT_FATAL(frames_encode(&f, &e) == 0);
	catchup_keep(&cu, gone, &e, &f); /* a ring with an event in it: freed too */
	CU_ASSERT_EQUAL(gone->ring.len, 1);
	catchup_count(followed, 1);
	now = clock_mono_ms();
	gone->used_ms = followed->used_ms = now - CATCHUP_IDLE_MS - 1;
	CU_ASSERT_EQUAL(catchup_evict_idle(&cu, now), 1);
	CU_ASSERT_PTR_NULL(catchup_cursor(&cu, "gone", 0));
	CU_ASSERT_PTR_EQUAL(catchup_cursor(&cu, "followed", 0), followed);
	CU_ASSERT_PTR_EQUAL(catchup_cursor(&cu, "recent", 0), recent);
	/* its last stream ends: idle from then on, not from its last event */
	catchup_count(followed, -1);
	CU_ASSERT_EQUAL(catchup_evict_idle(&cu, now), 0);
	CU_ASSERT_EQUAL(catchup_evict_idle(&cu, clock_mono_ms() + CATCHUP_IDLE_MS), 2);
	CU_ASSERT_PTR_NULL(catchup_cursor(&cu, "followed", 0));
	catchup_free(&cu);
}

static CU_TestInfo tests[] = {
	{ "idle cursors are freed", test_idle_cursors_are_freed },
	{ "an event that does not fit is counted dropped", test_an_event_that_does_not_fit_is_counted_dropped },
	{ "the events of a pass go out as one record", test_events_of_a_pass_go_out_as_one_record },
	{ "a close event ends the stream", test_close_event_ends_the_stream },
	{ "deadlines: revoked, lifetime, heartbeat", test_deadlines },
	{ "slow and gone peers", test_slow_and_gone_peers },
	{ "the peer check spares streams begun since it asked", test_peer_end_spares_streams_begun_since },
	{ "a stream named by a query waits", test_a_stream_named_by_a_query_waits },
	{ "streams on HTTP/2 connections are counted", test_streams_on_http2_connections_are_counted },
	{ "the tick visits only streams with something due", test_the_tick_visits_only_streams_with_something_due },
	{ "replacement and revocation", test_replacement_and_revocation },
	{ "catchup: when a client must reset", test_must_reset },
	{ "catchup: when memory may answer", test_ring_may_replay },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "stream", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_stream_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}

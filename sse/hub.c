/* hub: the event loop that owns open streams (see hub.h).
 *
 * The parts live in their own files: sse/writer (a stream's FastCGI
 * output), sse/stream (a stream, the registry and lifetimes), sse/ring (a
 * tenant's recent events), sse/catchup (start points and catch-up from
 * history), sse/control (replacement and revocation across processes),
 * redis/busmsg (the bus's messages). This file is the loop: commands from
 * worker threads, epoll events, timers, and the live fan-out. */
#include "hub.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../core/fcgi_record.h"
#include "../core/reqid.h"
#include "../redis/busmsg.h"
#include "../redis/bus.h"
#include "catchup.h"
#include "counts.h"
#include "control.h"
#include "peerwatch.h"
#include "ring.h"
#include "stream.h"

#define TICK_MS STREAM_TICK_MS /* heartbeat and lifetime resolution */
#define PROBE_MS 2000         /* a delivery self-test through the bus this often */
#define EVICT_MS 60000        /* idle tenants' cursors are looked for this often */
#define EPOLL_BATCH 256

enum cmd_kind { CMD_ADD, CMD_EVENT, CMD_STOP, CMD_REVOKE_SESSION, CMD_REVOKE_USER, CMD_PEERS };

/* Work handed to the hub's thread by the others. */
struct cmd {
	enum cmd_kind kind;
	struct cmd *next;
	struct stream *stream;  /* CMD_ADD */
	char *strs;             /* CMD_EVENT: one allocation for the fields */
	const char *tenant;
	struct bus_entry e;
	char *who, *who2;       /* CMD_REVOKE_*: session id, or tenant and user */
	struct peer_list peers; /* CMD_PEERS: connections their clients closed */
	long long peers_at_ms;  /* CMD_PEERS: when the kernel was asked */
};

struct hub {
	struct hub_opts o;
	pthread_t thread;
	int ep, wake_fd;
	atomic_int stopping;
	long long grace_ms;
	pthread_mutex_t mu;      /* guards the queue, id assignment and stats */
	struct cmd *head, *tail;
	long long last_ms, seq;  /* in-process ids */
	struct hub_stats stats;
	/* owned by the hub thread */
	int bus_mode;            /* set at start: events come from the bus */
	int bus_warned;          /* bus_unreachable was logged */
	long long started_ms;
	char nonce[REQID_GENERATED_LEN + 1]; /* this process's probes */
	long long probe_next_ms;
	long long evict_next_ms;
	long long probe_seen_ms; /* when one came back (guarded by mu); 0: none yet */
	long long probe_rtt_ms;  /* guarded by mu */
	struct bus *bus;         /* NULL: in-process only */
	struct stream_counts *counts; /* open streams per tenant and user */
	struct peerwatch *pw;    /* NULL: not looking for closed clients */
	pthread_t peer_thread;   /* runs while pw != NULL */
	pthread_cond_t peer_cv;  /* with mu: wakes it to stop */
	struct registry reg;
	struct catchup cu;
	struct control ctl;
};

int hub_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (list == NULL)
		return 1;
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, name, n) == 0)
			return 1;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

static void enqueue(struct hub *h, struct cmd *c)
{
	uint64_t one = 1;

	pthread_mutex_lock(&h->mu);
	c->next = NULL;
	if (h->tail)
		h->tail->next = c;
	else
		h->head = c;
	h->tail = c;
	pthread_mutex_unlock(&h->mu);
	/* EAGAIN only when the counter is saturated: the hub is awake anyway */
	ssize_t w = write(h->wake_fd, &one, sizeof(one));
	(void)w;
}

/* ---------------------------------------------------------------- live events */

/* Whether the event (ms, seq) comes after pos, as bus_id_cmp would say,
 * with the event's id parsed once for every stream. */
static int after_pos(uint64_t ms, uint64_t seq, const char *pos)
{
	uint64_t pm = 0, ps = 0;

	bus_id_parse(pos, &pm, &ps);
	return ms != pm ? ms > pm : seq > ps;
}

/* The fan-out: every live stream of the tenant that has not seen e. */
static void on_event(struct hub *h, const char *tenant, const struct bus_entry *e)
{
	struct cursor *c = catchup_saw(&h->cu, tenant, e);
	struct stream *s, *next;
	struct frames f;
	int ok_f = frames_encode(&f, e) == 0;
	long long n = 0;
	uint64_t ems = 0, eseq = 0;

	bus_id_parse(e->id, &ems, &eseq);
	for (s = h->reg.buckets[stream_bucket(tenant)]; s != NULL; s = next) {
		next = s->tnext; /* s may end below */
		if (s->closing || !s->live ||
		    (c != NULL && s->cur != NULL ? s->cur != c : strcmp(s->tenant, tenant) != 0) ||
		    (s->pos[0] && !after_pos(ems, eseq, s->pos)))
			continue;
		n += stream_give(&h->reg, s, e, ok_f ? &f : NULL);
	}
	catchup_keep(&h->cu, c, e, ok_f ? &f : NULL);
	frames_release(&f);
	pthread_mutex_lock(&h->mu);
	h->stats.published++;
	h->stats.delivered += n;
	pthread_mutex_unlock(&h->mu);
}

/* ---------------------------------------------------------------- the bus */

static void on_bus_event(void *ctx, const char *tenant, const struct bus_entry *e)
{
	on_event(ctx, tenant, e);
}

static void on_bus_control(void *ctx, const struct busmsg *m)
{
	struct hub *h = ctx;

	if (m->kind == BUSMSG_PROBE) { /* others' probes are theirs */
		if (strcmp(m->nonce, h->nonce) == 0) {
			long long now = clock_mono_ms();
			pthread_mutex_lock(&h->mu);
			h->probe_seen_ms = now;
			h->probe_rtt_ms = now - m->sent_ms;
			pthread_mutex_unlock(&h->mu);
		}
		return;
	}
	control_on_bus(&h->ctl, m);
}

static void count_stream(void *ctx, const struct stream *s, int delta)
{
	struct hub *h = ctx;

	counts_add(h->counts, s->tenant, s->user, delta);
	if (s->cur != NULL) /* the hub made it; the stream only reads it */
		catchup_count((struct cursor *)s->cur, delta);
}

struct stream_counts *hub_counts(struct hub *h)
{
	return h->counts;
}

/* The delivery self-test: a probe through Redis to every process, this
 * one included; `ready` reports how long ago one came back. */
static void probe(struct hub *h, long long now)
{
	struct buf msg = BUF_INIT;

	if (h->bus == NULL || now < h->probe_next_ms)
		return;
	h->probe_next_ms = now + PROBE_MS;
	if (bus_is_up(h->bus) && busmsg_probe(&msg, h->nonce, now) == 0)
		bus_send_control(h->bus, msg.data, msg.len);
	buf_release(&msg);
}

static void on_bus_info(void *ctx, void *tag, const struct bus_info *in)
{
	struct hub *h = ctx;

	catchup_on_info(&h->cu, tag, in);
}

static void on_bus_range(void *ctx, void *tag, const char *trimmed, const struct bus_entry *es,
			 size_t n, int ok)
{
	struct hub *h = ctx;

	catchup_on_range(&h->cu, tag, trimmed, es, n, ok);
}

static void on_bus_up(void *ctx)
{
	struct hub *h = ctx;
	unsigned epoch = ++h->cu.epoch;

	pthread_mutex_lock(&h->mu);
	h->stats.bus_up = 1;
	if (epoch > 1)
		h->stats.bus_reconnects++;
	pthread_mutex_unlock(&h->mu);
	log_text(h->o.log, epoch > 1 ? LOG_WARN : LOG_INFO, "bus_up",
		 epoch > 1 ? "reconnected: streams catch up from history" : "subscribed");
	control_flush(&h->ctl);
	catchup_resync(&h->cu);
}

static void on_bus_lost(void *ctx)
{
	struct hub *h = ctx;

	stream_stat_add(&h->reg, &h->stats.bus_up, -1);
	log_text(h->o.log, LOG_WARN, "bus_lost", "Redis unreachable: streams stay open, publishing is refused");
}

/* ---------------------------------------------------------------- loop */

static void add_stream(struct hub *h, struct stream *s)
{
	s->cur = s->tenant[0] ? catchup_cursor(&h->cu, s->tenant, 1) : NULL;
	if (registry_add(&h->reg, s) < 0)
		return;
	control_claim(&h->ctl, s);
	catchup_start(&h->cu, s);
}

/* The streams with something due: only those (the registry's wheel), so an
 * idle stream costs nothing between its heartbeats. A walk of every stream
 * each tick cost about 1.4 us a stream a visit here, cache misses on the
 * list (BENCHMARKS.md). */
static void tick(struct hub *h, long long now)
{
	struct stream *s;

	registry_take_due(&h->reg, now);
	while ((s = registry_next_due(&h->reg)) != NULL) {
		if (stream_due(&h->reg, s, now)) {
			if (!s->live && !s->in_flight && h->bus != NULL && bus_is_up(h->bus))
				catchup_sync(&h->cu, s); /* a query that could not be sent: try again */
			stream_ping_due(&h->reg, s, now, h->o.heartbeat_ms);
		}
		registry_schedule(&h->reg, s);
	}
}

/* Ends the streams whose client has closed its connection while the front
 * server has not noticed (sse/peerwatch.h): the peer thread's list of the
 * connections that closed or vanished since its last look. */
static void on_peers_gone(struct hub *h, const struct peer_list *gone, long long asked_ms)
{
	for (size_t i = 0; i < gone->n; i++)
		registry_end_peer(&h->reg, &gone->v[i].c, END_PEER_CLOSED, asked_ms);
}

/* The peer thread. Every peer_check_ms while streams are open: the
 * kernel's list of connections in CLOSE_WAIT (a client's FIN), every one
 * of which goes to the hub; and every PEER_SWEEP_EVERY-th time the
 * established ones too, compared with the last such list: what vanished
 * in between (a client's reset, which Apache does not notice) goes to the
 * hub as well. Listing every established connection costs about 0.4 µs
 * each, hence only every so often. The walk takes a few ms on a busy host,
 * so not on the hub's thread. A stream whose connection was never listed
 * (addresses the kernel does not know) is never named.
 *
 * While a stream is on an HTTP/2 connection, every look is a sweep: when
 * such a client leaves, Apache's mod_http2 reads the FIN and closes the
 * socket itself, so the connection never shows in CLOSE_WAIT and only its
 * absence from the established tells; and a stream that began after the
 * last sweep would not be known to have been there. The listing's cost
 * is then paid twice a second, not once in five seconds: about 0.7 µs a
 * second for each established socket listed. */
#define PEER_SWEEP_EVERY 10

static void send_gone(struct hub *h, struct peer_list *gone, long long asked_ms)
{
	struct cmd *c;

	if (gone->n == 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->kind = CMD_PEERS;
	c->peers = *gone;
	c->peers_at_ms = asked_ms;
	*gone = (struct peer_list){ 0 };
	enqueue(h, c);
}

static void *peer_main(void *arg)
{
	struct hub *h = arg;
	struct peer_list lists[2] = { { 0 }, { 0 } }, *prev = &lists[0], *cur = &lists[1];
	struct peer_list closed = { 0 }, gone = { 0 };
	unsigned round = 0, families;
	long long asked_ms = 0;
	int v4, v6;
	int n = 0, err = 0, v6_mapped = 1; /* until a sweep says otherwise */

	pthread_mutex_lock(&h->mu);
	while (!atomic_load(&h->stopping)) {
		struct timespec due;
		int sweep;
		clock_gettime(CLOCK_MONOTONIC, &due);
		due.tv_sec += h->o.peer_check_ms / 1000;
		due.tv_nsec += h->o.peer_check_ms % 1000 * 1000000L;
		if (due.tv_nsec >= 1000000000L)
			due.tv_sec++, due.tv_nsec -= 1000000000L;
		while (!atomic_load(&h->stopping) &&
		       pthread_cond_timedwait(&h->peer_cv, &h->mu, &due) != ETIMEDOUT)
			;
		if (atomic_load(&h->stopping))
			break;
		if (h->stats.open == 0) {
			prev->n = 0; /* nothing to compare the next sweep with */
			continue;
		}
		pthread_mutex_unlock(&h->mu);
		sweep = round++ % PEER_SWEEP_EVERY == 0 || atomic_load(&h->reg.peers_shared) > 0;
		/* each family is a walk of the kernel's table: a sweep looks in
		 * both; between sweeps only where the streams' connections can
		 * be (an IPv4 peer on an IPv6 socket only where the last sweep
		 * saw such connections at all) */
		v4 = atomic_load(&h->reg.peers_v4);
		v6 = atomic_load(&h->reg.peers_v6);
		families = v4 + v6 == 0 ? 0 /* no stream names its connection: nothing to find */
			 : sweep ? PEER_V4 | PEER_V6
				 : (v4 > 0 ? PEER_V4 : 0) | (v6 > 0 || (v6_mapped && v4 > 0) ? PEER_V6 : 0);
		if (families == 0) {
			n = 0;
			if (sweep)
				prev->n = 0;
		} else if ((asked_ms = clock_mono_ms()),
			   (n = peerwatch_scan(h->pw, sweep ? cur : &closed, sweep, families)) < 0) {
			err = errno;
		} else if (sweep) {
			struct peer_list *t = prev;
			v6_mapped = cur->v6_mapped;
			if (peer_list_gone(prev, cur, &gone) == 0)
				send_gone(h, &gone, asked_ms);
			gone.n = 0;
			prev = cur;
			cur = t;
		} else {
			send_gone(h, &closed, asked_ms);
		}
		pthread_mutex_lock(&h->mu);
		if (n < 0)
			break;
	}
	pthread_mutex_unlock(&h->mu);
	if (n < 0) {
		struct json_object *f = json_object_new_object();
		json_object_object_add(f, "error", json_object_new_string(strerror(err)));
		log_json(h->o.log, LOG_WARN, "peer_check_off", f); /* refused once (a sandbox): always */
	}
	peer_list_free(&lists[0]);
	peer_list_free(&lists[1]);
	peer_list_free(&closed);
	peer_list_free(&gone);
	return NULL;
}

static void begin_shutdown(struct hub *h)
{
	struct stream *s, *next;
	int rc;

	for (s = h->reg.all; s != NULL; s = next) {
		next = s->gnext;
		if (s->closing)
			continue;
		if ((rc = stream_send_control(&h->reg, s, "shutdown")) < 0)
			stream_fail(&h->reg, s, rc);
		else
			stream_end(&h->reg, s, END_SHUTDOWN, 1);
	}
}

static void run_cmd(struct hub *h, struct cmd *c, int *stop)
{
	switch (c->kind) {
	case CMD_ADD:
		add_stream(h, c->stream);
		break;
	case CMD_EVENT:
		on_event(h, c->tenant, &c->e);
		break;
	case CMD_STOP:
		*stop = 1;
		begin_shutdown(h);
		break;
	case CMD_REVOKE_SESSION:
		control_revoke_login(&h->ctl, c->who);
		break;
	case CMD_REVOKE_USER:
		control_revoke_user(&h->ctl, c->who, c->who2);
		break;
	case CMD_PEERS:
		on_peers_gone(h, &c->peers, c->peers_at_ms);
		break;
	}
	peer_list_free(&c->peers);
	free(c->strs);
	free(c->who);
	free(c);
}

static int drain_commands(struct hub *h)
{
	struct cmd *c, *next;
	uint64_t n;
	int stop = 0;

	if (read(h->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return 0;
	pthread_mutex_lock(&h->mu);
	c = h->head;
	h->head = h->tail = NULL;
	pthread_mutex_unlock(&h->mu);
	for (; c != NULL; c = next) {
		next = c->next;
		run_cmd(h, c, &stop);
	}
	return stop;
}

/* Paced catch-ups whose output drained (sse/catchup.h) go on at once: a
 * few rounds of history and commit in this pass, for as long as the
 * socket takes it all; the rest at their next write or tick. The list is
 * empty when this returns, so no dead stream stays on it. */
static void resume_drained(struct hub *h)
{
	for (int round = 0; round < 8 && h->reg.drained != NULL; round++) {
		struct stream *s, *next;
		for (s = registry_take_drained(&h->reg); s != NULL; s = next) {
			next = s->rnext;
			if (!s->dead && !s->closing && !s->in_flight && !s->live)
				catchup_sync(&h->cu, s);
		}
		registry_commit(&h->reg);
	}
	registry_take_drained(&h->reg);
}

static void *hub_main(void *arg)
{
	struct hub *h = arg;
	struct epoll_event evs[EPOLL_BATCH];
	long long next_tick = clock_mono_ms() + TICK_MS, stop_by = 0;
	int stopping = 0;

	for (;;) {
		long long now = clock_mono_ms();
		int n = epoll_wait(h->ep, evs, EPOLL_BATCH, next_tick > now ? (int)(next_tick - now) : 0);

		for (int i = 0; i < n; i++) {
			void *ptr = evs[i].data.ptr;
			if (ptr == NULL) {
				if (drain_commands(h) && !stopping) {
					stopping = 1;
					stop_by = clock_mono_ms() + h->grace_ms;
				}
			} else if (h->bus != NULL && bus_owns(h->bus, ptr)) {
				bus_on_io(h->bus, ptr, evs[i].events);
			} else {
				stream_on_io(&h->reg, ptr, evs[i].events);
			}
		}
		now = clock_mono_ms();
		if (now >= next_tick) {
			next_tick = now + TICK_MS;
			if (h->bus != NULL)
				bus_tick(h->bus, now);
			probe(h, now);
			if (now >= h->evict_next_ms) {
				h->evict_next_ms = now + EVICT_MS;
				catchup_evict_idle(&h->cu, now);
			}
			if (h->bus != NULL && h->cu.epoch == 0 && !h->bus_warned &&
			    now - h->started_ms > 2000) {
				/* never up since start: say so once (after that, lost/up say it) */
				h->bus_warned = 1;
				log_text(h->o.log, LOG_WARN, "bus_unreachable",
					 "Redis unreachable since start: streams wait, publishing is refused");
			}
			if (!stopping)
				tick(h, now);
		}
		registry_commit(&h->reg);
		resume_drained(h);
		registry_free_dead(&h->reg);
		if (stopping && (h->reg.all == NULL || now >= stop_by))
			break;
	}
	while (h->reg.all != NULL) {
		h->reg.all->reason = END_SHUTDOWN;
		stream_destroy(&h->reg, h->reg.all);
	}
	bus_free(h->bus); /* no answers will come: zombies and fetches can go */
	h->bus = h->cu.bus = h->ctl.bus = NULL;
	catchup_abandon(&h->cu);
	for (struct stream *s = h->reg.dead; s != NULL; s = s->gnext)
		s->in_flight = 0;
	for (struct stream *s = h->reg.zombies; s != NULL; s = s->gnext)
		s->in_flight = 0;
	registry_free_dead(&h->reg);
	return NULL;
}

/* ---------------------------------------------------------------- public */

/* Looks for closed clients when configured and the kernel lets us; a hub
 * without works as before (closed streams end at their next heartbeat). */
static void start_peer_thread(struct hub *h)
{
	pthread_condattr_t ca;

	if (h->o.peer_check_ms <= 0)
		return;
	if ((h->pw = peerwatch_open()) == NULL) {
		log_text(h->o.log, LOG_WARN, "peer_check_off", "no sock_diag netlink socket: a stream "
			 "whose client closed ends at its next heartbeat");
		return;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->peer_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&h->peer_thread, NULL, peer_main, h) != 0) {
		pthread_cond_destroy(&h->peer_cv);
		peerwatch_close(h->pw);
		h->pw = NULL;
	}
}

struct hub *hub_start(const struct hub_opts *o, struct buf *err)
{
	struct hub *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { EPOLLIN, { .ptr = NULL } };
	const struct bus_handlers bh = { h, on_bus_up, on_bus_lost, on_bus_event, on_bus_control,
					 on_bus_info, on_bus_range };

	if (h == NULL) {
		buf_puts(err, "out of memory");
		return NULL;
	}
	h->o = *o;
	h->o.redis = NULL; /* the bus keeps its own copy */
	h->stats.bus_up = o->redis == NULL;
	h->bus_mode = o->redis != NULL;
	h->started_ms = clock_mono_ms();
	if (reqid_generate(h->nonce) < 0)
		snprintf(h->nonce, sizeof(h->nonce), "%lld-%ld", h->started_ms, (long)getpid());
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&h->mu, NULL);
	if (h->ep < 0 || h->wake_fd < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->wake_fd, &ev) < 0)
		goto err;
	h->reg.ep = h->ep;
	h->reg.log = o->log;
	h->reg.mu = &h->mu;
	h->reg.stats = &h->stats;
	if ((h->counts = counts_new()) == NULL) {
		errno = ENOMEM;
		goto err;
	}
	h->reg.on_count = count_stream;
	h->reg.count_ctx = h;
	if (o->redis != NULL && (h->bus = bus_open(o->redis, h->ep, &bh)) == NULL) {
		errno = ENOMEM;
		goto err;
	}
	h->cu.reg = &h->reg;
	h->cu.bus = h->bus;
	h->cu.history_max_len = o->history_max_len;
	h->cu.history_max_age_ms = o->history_max_age_ms;
	control_init(&h->ctl, &h->reg, h->bus, o->log);
	if (pthread_create(&h->thread, NULL, hub_main, h) != 0)
		goto err;
	start_peer_thread(h);
	return h;
err:
	buf_printf(err, "hub: %s", strerror(errno));
	bus_free(h->bus);
	counts_free(h->counts);
	if (h->ep >= 0)
		close(h->ep);
	if (h->wake_fd >= 0)
		close(h->wake_fd);
	pthread_mutex_destroy(&h->mu);
	free(h);
	return NULL;
}

int hub_add(struct hub *h, const struct hub_stream_spec *sp)
{
	struct cmd *c;
	struct stream *s;
	struct buf framed = BUF_INIT;
	struct hub_stream_spec spec = *sp;
	int full, fl;

	if (atomic_load(&h->stopping)) {
		errno = ESHUTDOWN;
		return -1;
	}
	pthread_mutex_lock(&h->mu);
	full = h->stats.open >= h->o.max_streams;
	if (!full)
		h->stats.open++; /* reserved now, so concurrent adds respect the bound */
	pthread_mutex_unlock(&h->mu);
	if (full) {
		errno = EAGAIN;
		return -1;
	}
	/* the hub's thread never blocks on one stream: refuse an fd that
	 * cannot be made non-blocking */
	if ((fl = fcntl(sp->fd, F_GETFL)) < 0 ||
	    (!(fl & O_NONBLOCK) && fcntl(sp->fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
		int err = errno;
		stream_stat_add(&h->reg, &h->stats.open, -1);
		errno = err;
		return -1;
	}
	/* the head goes out as FCGI_STDOUT records like everything else */
	fcgi_record_stdout(&framed, sp->request_id, sp->head, sp->head_len);
	spec.head = framed.data;
	spec.head_len = framed.len;
	s = framed.oom ? NULL : stream_new(&h->o, &spec);
	buf_release(&framed);
	if (s == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
		if (s != NULL)
			stream_free(s);
		stream_stat_add(&h->reg, &h->stats.open, -1);
		errno = ENOMEM;
		return -1;
	}
	stream_stat_add(&h->reg, &h->stats.opened, 1);
	c->kind = CMD_ADD;
	c->stream = s;
	enqueue(h, c);
	return 0;
}

/* Assigns the next in-process id: "<unix ms>-<seq>", increasing even if the
 * clock steps back. Caller holds h->mu. */
static void next_id(struct hub *h, char *id)
{
	struct timespec ts;
	long long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (ms > h->last_ms) {
		h->last_ms = ms;
		h->seq = 0;
	} else {
		h->seq++;
	}
	snprintf(id, HUB_ID_MAX + 1, "%lld-%lld", h->last_ms, h->seq);
}

int hub_publish(struct hub *h, const struct hub_event *e, char *id)
{
	struct cmd *c;
	size_t lt = strlen(e->tenant_id) + 1, ly = strlen(e->type) + 1,
	       lp = e->topic ? strlen(e->topic) + 1 : 0, li = HUB_ID_MAX + 1;
	char *p;

	if (h->bus_mode || atomic_load(&h->stopping) || (c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((p = c->strs = malloc(li + lt + ly + lp + e->len + 1)) == NULL) {
		free(c);
		return -1;
	}
	/* the id is assigned and queued under one lock, so queue order is id order */
	c->e.id = p;
	c->tenant = memcpy(p + li, e->tenant_id, lt);
	c->e.type = memcpy(p + li + lt, e->type, ly);
	c->e.topic = lp ? memcpy(p + li + lt + ly, e->topic, lp) : NULL;
	c->e.data = memcpy(p + li + lt + ly + lp, e->data, e->len);
	p[li + lt + ly + lp + e->len] = '\0';
	c->e.len = e->len;
	c->e.close = e->close;
	c->kind = CMD_EVENT;
	pthread_mutex_lock(&h->mu);
	next_id(h, c->strs);
	memcpy(id, c->strs, strlen(c->strs) + 1);
	pthread_mutex_unlock(&h->mu);
	enqueue(h, c);
	return 0;
}

static int enqueue_revoke(struct hub *h, enum cmd_kind kind, const char *a, const char *b)
{
	size_t la = strlen(a) + 1, lb = b ? strlen(b) + 1 : 0;
	struct cmd *c;

	if (atomic_load(&h->stopping) || (c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((c->who = malloc(la + lb)) == NULL) {
		free(c);
		return -1;
	}
	memcpy(c->who, a, la);
	c->who2 = lb ? memcpy(c->who + la, b, lb) : NULL;
	c->kind = kind;
	enqueue(h, c);
	return 0;
}

int hub_revoke_session(struct hub *h, const char *auth_session)
{
	return enqueue_revoke(h, CMD_REVOKE_SESSION, auth_session, NULL);
}

int hub_revoke_user(struct hub *h, const char *tenant_id, const char *user_id)
{
	return enqueue_revoke(h, CMD_REVOKE_USER, tenant_id, user_id);
}

int hub_stopping(struct hub *h)
{
	return atomic_load(&h->stopping);
}

void hub_stop(struct hub *h, long long grace_ms)
{
	struct cmd *c = calloc(1, sizeof(*c));

	h->grace_ms = grace_ms;
	atomic_store(&h->stopping, 1);
	if (h->pw != NULL) {
		pthread_mutex_lock(&h->mu);
		pthread_cond_signal(&h->peer_cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->peer_thread, NULL);
	}
	if (c != NULL) {
		c->kind = CMD_STOP;
		enqueue(h, c);
	}
	pthread_join(h->thread, NULL);
}

void hub_free(struct hub *h)
{
	struct cmd *c, *next;

	if (h == NULL)
		return;
	for (c = h->head; c != NULL; c = next) { /* commands that came after stop */
		next = c->next;
		if (c->kind == CMD_ADD) {
			close(c->stream->w.fd);
			stream_free(c->stream);
		}
		peer_list_free(&c->peers);
		free(c->strs);
		free(c->who);
		free(c);
	}
	catchup_free(&h->cu);
	control_free(&h->ctl);
	counts_free(h->counts);
	if (h->pw != NULL) {
		peerwatch_close(h->pw);
		pthread_cond_destroy(&h->peer_cv);
	}
	close(h->ep);
	close(h->wake_fd);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void hub_get_stats(struct hub *h, struct hub_stats *out)
{
	long long now = clock_mono_ms();

	pthread_mutex_lock(&h->mu);
	*out = h->stats;
	/* without a bus, delivery is in-process: nothing to wait for */
	out->probe_age_ms = h->bus == NULL ? 0 : h->probe_seen_ms ? now - h->probe_seen_ms : -1;
	out->probe_rtt_ms = h->bus == NULL ? 0 : h->probe_rtt_ms;
	pthread_mutex_unlock(&h->mu);
}

/* The outbox: events of committed changes (devices, telemetry) reach the
 * bus after their commit, never instead of it. A change writes its event
 * in its own transaction (store_event); the handler publishes it at once
 * and deletes the row; what the bus refused then is published later by
 * api_outbox_drain (the outbox thread of fcgi_sse.c). */
#include <string.h>

#include "../redis/bus.h"
#include "api.h"

/* Publishes ev; 0 or -1 (the bus refused; logged). */
static int publish(struct api_env *env, const struct store_event *ev)
{
	const struct bus_history hist = { env->cfg->history_max_len,
					  env->cfg->history_max_age_s * 1000 };
	const struct bus_entry e = { NULL, ev->type, ev->topic[0] ? ev->topic : NULL, ev->data,
				     strlen(ev->data), 0 };
	char id[BUS_ID_MAX + 1];

	if (env->bus == NULL || bus_publish(env->bus, &hist, ev->tenant_id, &e, id) < 0) {
		log_text(env->log, LOG_WARN, "outbox_publish_failed",
			 env->bus ? redis_errstr(env->bus) : "no bus");
		return -1;
	}
	return 0;
}

/* 0, or -1 when the rows stay: a failure here publishes the events twice
 * (the drain finds them again): at least once, never lost. */
static int forget(struct api_env *env, long long first, long long last)
{
	if (store_outbox_delete(env->store, first, last) != STORE_OK) {
		log_text(env->log, LOG_WARN, "outbox_delete_failed", store_errstr(env->store));
		return -1;
	}
	return 0;
}

void api_outbox_publish_all(struct api_env *env, const struct store_event *evs, size_t n)
{
	size_t done = 0;

	/* in order, up to the first refusal: the rest waits for the drain, so
	 * no event overtakes an earlier one */
	while (done < n && publish(env, &evs[done]) == 0)
		done++;
	if (done > 0)
		(void)forget(env, evs[0].seq, evs[done - 1].seq);
}

void api_outbox_publish(struct api_env *env, const struct store_event *ev)
{
	api_outbox_publish_all(env, ev, 1);
}

struct drain {
	struct api_env *env;
	int published, refused;
};

static int drain_one(void *ctx, const struct store_event *ev)
{
	struct drain *d = ctx;

	if (publish(d->env, ev) < 0) {
		d->refused = 1;
		return 1; /* the bus is down: the rest waits for the next round */
	}
	d->published++;
	if (forget(d->env, ev->seq, ev->seq) < 0) {
		/* the row stays: going on would list and publish it again
		 * at once, in a loop, while the store refuses (its breaker
		 * open): the next round, after the drain's pause, retries */
		d->refused = 1;
		return 1;
	}
	return 0;
}

int api_outbox_drain(struct api_env *env, long long before)
{
	struct drain d = { env, 0, 0 };

	/* in batches, until nothing older than before is left */
	do {
		int before_batch = d.published;
		if (store_outbox_list(env->store, before, 100, drain_one, &d) != STORE_OK)
			return -1;
		if (d.published == before_batch)
			break;
	} while (!d.refused);
	return d.published;
}

/* GET /api/{v1,v2}/health: 200 while the process runs. GET /api/v2/ready:
 * 200 when the store answers and events really flow through the bus. */
#include <json-c/json.h>
#include <string.h>
#include <time.h>

#include "../redis/redis.h"
#include "api.h"

void api_health(struct api_call *call)
{
	struct json_object *o = json_object_new_object();
	time_t t = time(NULL);

	if (call->version == 1) {
		/* v1 shape: flat, Unix seconds */
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "time", json_object_new_int64((int64_t)t));
	} else {
		json_object_object_add(o, "status", json_object_new_string("ok"));
		json_object_object_add(o, "time", api_json_time(t));
	}
	api_json(call, 200, o);
}

/* Each breaker's state as the request found it (the checks below may be
 * the trials that close them); NULL when there are none. */
static struct json_object *breakers(const struct api_env *env)
{
	struct json_object *b;
	long long now = clock_mono_ms();

	if (env->nbreakers == 0)
		return NULL;
	b = json_object_new_object();
	for (int i = 0; i < env->nbreakers; i++)
		json_object_object_add(b, env->breakers[i].dependency,
				       json_object_new_string(breaker_state_name(
					       breaker_state(env->breakers[i].b, now))));
	return b;
}

static int breaker_is_open(const struct api_env *env, const char *dependency)
{
	for (int i = 0; i < env->nbreakers; i++)
		if (strcmp(env->breakers[i].dependency, dependency) == 0)
			return breaker_state(env->breakers[i].b, clock_mono_ms()) == BREAKER_OPEN;
	return 0;
}

void api_ready(struct api_call *call)
{
	const struct config *cfg = call->env->cfg;
	struct json_object *o = json_object_new_object(), *d = json_object_new_object();
	struct store_tenant t;
	struct hub_stats hs;
	int store_ok, writes_ok, redis_ok, delivery_ok, ready;
	struct json_object *b = breakers(call->env);

	/* any lookup: found or not, the store answered; and writes are not
	 * failing so steadily that their breaker opened (a full disk), nor
	 * impossible (a store file or directory read-only to this process,
	 * seen before any write fails) */
	store_ok = store_tenant_by_name(call->env->store, "ready-check", &t) != STORE_ERROR;
	writes_ok = !breaker_is_open(call->env, "store_writes") && store_writable(call->env->store) != 0;
	redis_ok = call->env->redis == NULL || redis_ping(call->env->redis) == 0;
	hub_get_stats(call->env->hub, &hs);
	delivery_ok = hs.probe_age_ms >= 0 && hs.probe_age_ms <= cfg->ready_probe_max_age_ms;
	ready = store_ok && writes_ok && delivery_ok;
	json_object_object_add(o, "status", json_object_new_string(ready ? "ready" : "not_ready"));
	json_object_object_add(o, "store", json_object_new_string(!store_ok ? "unavailable"
								  : writes_ok ? "ok" : "writes_failing"));
	json_object_object_add(o, "redis", json_object_new_string(redis_ok ? "ok" : "unavailable"));
	json_object_object_add(o, "bus", json_object_new_string(hs.bus_up ? "up" : "down"));
	json_object_object_add(d, "ok", json_object_new_boolean(delivery_ok));
	json_object_object_add(d, "last_probe_ms_ago",
			       hs.probe_age_ms >= 0 ? json_object_new_int64(hs.probe_age_ms) : NULL);
	json_object_object_add(d, "round_trip_ms",
			       hs.probe_age_ms >= 0 ? json_object_new_int64(hs.probe_rtt_ms) : NULL);
	json_object_object_add(d, "max_age_ms", json_object_new_int64(cfg->ready_probe_max_age_ms));
	json_object_object_add(o, "delivery", d);
	if (b != NULL)
		json_object_object_add(o, "breakers", b);
	if (!ready)
		http_response_header(call->resp, "Retry-After", "1");
	api_json(call, ready ? 200 : 503, o);
}

/* Internal to api/: devices as the other handlers need them (telemetry
 * checks the device, reads go through the device cache). */
#ifndef FCGI_SSE_API_DEVICES_H
#define FCGI_SSE_API_DEVICES_H

#include "api.h"

/* The tenant's device id, through the device cache when there is one.
 * Returns STORE_OK, STORE_NOT_FOUND or STORE_ERROR. */
int devices_load(struct api_env *env, const char *tenant_id, const char *id,
		 struct store_device *out);

/* devices_load in two steps, to read the entry in the round trip that
 * checks the session (api_session): devices_ahead names the entry in *a
 * (its key in key, which must outlive a), devices_load_ahead reads it. */
#define DEVICES_KEY_MAX (2 * STORE_ID_MAX + 2)
void devices_ahead(struct api_env *env, const char *tenant_id, const char *id,
		   char key[DEVICES_KEY_MAX], struct cache_ahead *a);
int devices_load_ahead(struct api_env *env, struct cache_ahead *a, const char *tenant_id,
		       const char *id, struct store_device *out);

/* The cache entry of a device: its value after a change (write-through:
 * a read racing the change cannot put the old value back), or a "not
 * found" entry after a delete. A cache failure is logged; the entry then
 * lives until its TTL. */
void devices_cache_put(struct api_env *env, const struct store_device *d);
void devices_cache_drop(struct api_env *env, const char *tenant_id, const char *id);

/* Drops the tenant's cached list views (first pages and counts). */
void devices_views_drop(struct api_env *env, const char *tenant_id);

#define DEVICES_LIST_DEFAULT 50

/* A v2 page of the tenant's devices (status and after may be NULL) into
 * *out: {"items", "next_cursor"}. Returns a store code (devices.c). */
int devices_v2_page(struct store *st, const char *tenant, const char *status, const char *after,
		    int limit, struct json_object **out);

/* Answers the first page (count 0) or the count (1) of the tenant's
 * devices with status (NULL: any) through the view cache: 0 when answered
 * (or 503 set), -1 when there is no view cache (device_cache.c). */
int devices_answer_view(struct api_call *call, const char *tenant, const char *status, int count);

/* Cache values, exported for tests: a device as bytes and back. */
int devices_encode(const struct store_device *d, struct buf *out);
int devices_decode(const char *p, size_t n, struct store_device *out);

#endif

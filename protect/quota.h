/* quota: open streams per tenant and per (tenant, user) across every
 * process and host, through Redis.
 *
 * Each process keeps its own counts (sse/counts) and publishes them every
 * second (quota_sync) as its field in one Redis hash per tenant and one per
 * user, with a liveness key that expires lease_ms after its last sync. An
 * open (quota_open) sums the fields of live processes (dropping those of
 * dead ones: a SIGKILLed process's streams stop counting within lease_ms),
 * refuses at the limit, else counts the new stream at once in its own field
 * (the next sync replaces that with the true count). */
#ifndef FCGI_SSE_QUOTA_H
#define FCGI_SSE_QUOTA_H

#include <stddef.h>

#include "../sse/counts.h"

struct redis;
struct quota;

enum quota_result { QUOTA_OK, QUOTA_TENANT_FULL, QUOTA_USER_FULL, QUOTA_UNAVAILABLE };

/* NULL when out of memory. */
struct quota *quota_new(struct redis *r, long long lease_ms);
void quota_free(struct quota *q);

/* Whether one more stream of tenant by user (may be "") fits max_tenant
 * and max_user (0: no limit); QUOTA_OK counts it. */
enum quota_result quota_open(struct quota *q, const char *tenant, const char *user,
			     long long max_tenant, long long max_user);

/* Publishes this process's counts (a counts_snapshot) and renews its
 * liveness; counts that went to zero since the last sync are removed.
 * Returns 0, or -1 when Redis did not answer (the next sync tries again).
 * One thread at a time (the janitor). */
int quota_sync(struct quota *q, const struct count_entry *e, size_t n);

#endif

/* counts: a process's open streams per tenant and per (tenant, user), for
 * the cluster-wide stream quotas (the janitor copies them to Redis).
 * Thread-safe: the hub thread adds, the janitor takes snapshots. */
#ifndef FCGI_SSE_COUNTS_H
#define FCGI_SSE_COUNTS_H

#include <stddef.h>

#define COUNTS_ID_MAX 64

struct count_entry {
	char tenant[COUNTS_ID_MAX + 1];
	char user[COUNTS_ID_MAX + 1]; /* "": the tenant's total */
	long long n;
};

struct stream_counts;

struct stream_counts *counts_new(void);
void counts_free(struct stream_counts *c);

/* A stream of tenant by user (user may be "" or NULL) opened (+1) or
 * ended (-1): moves the user's count and the tenant's total. Ids longer
 * than COUNTS_ID_MAX are cut. */
void counts_add(struct stream_counts *c, const char *tenant, const char *user, int delta);

/* Copies every non-zero count (users' and tenants' totals) into a new
 * array (*out, freed by the caller). Returns 0, or -1 when out of memory. */
int counts_snapshot(struct stream_counts *c, struct count_entry **out, size_t *n);

#endif

#include "counts.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

struct node {
	struct count_entry e;
	struct node *next;
};

struct stream_counts {
	pthread_mutex_t mu;
	struct node *b[BUCKETS];
	size_t live; /* nodes with n != 0 */
};

struct stream_counts *counts_new(void)
{
	struct stream_counts *c = calloc(1, sizeof(*c));

	if (c != NULL)
		pthread_mutex_init(&c->mu, NULL);
	return c;
}

void counts_free(struct stream_counts *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < BUCKETS; i++)
		for (struct node *n = c->b[i], *next; n != NULL; n = next) {
			next = n->next;
			free(n);
		}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static unsigned bucket_of(const char *tenant, const char *user)
{
	uint32_t h = 2166136261u; /* FNV-1a over "tenant\nuser" */

	for (const char *p = tenant; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ '\n') * 16777619u;
	for (const char *p = user; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % BUCKETS;
}

/* Moves one count; a count back at zero is unlinked and freed. */
static void bump(struct stream_counts *c, const char *tenant, const char *user, int delta)
{
	struct node **pp = &c->b[bucket_of(tenant, user)], *n;

	for (; (n = *pp) != NULL; pp = &n->next)
		if (strcmp(n->e.tenant, tenant) == 0 && strcmp(n->e.user, user) == 0)
			break;
	if (n == NULL) {
		if (delta <= 0 || (n = calloc(1, sizeof(*n))) == NULL)
			return; /* an end of a stream never counted, or out of memory */
		snprintf(n->e.tenant, sizeof(n->e.tenant), "%s", tenant);
		snprintf(n->e.user, sizeof(n->e.user), "%s", user);
		n->next = c->b[bucket_of(tenant, user)];
		c->b[bucket_of(tenant, user)] = n;
		c->live++;
		pp = NULL;
	}
	n->e.n += delta;
	if (n->e.n <= 0 && pp != NULL) {
		*pp = n->next;
		free(n);
		c->live--;
	}
}

void counts_add(struct stream_counts *c, const char *tenant, const char *user, int delta)
{
	char t[COUNTS_ID_MAX + 1], u[COUNTS_ID_MAX + 1];

	snprintf(t, sizeof(t), "%s", tenant);
	snprintf(u, sizeof(u), "%s", user ? user : "");
	pthread_mutex_lock(&c->mu);
	bump(c, t, "", delta);
	if (u[0])
		bump(c, t, u, delta);
	pthread_mutex_unlock(&c->mu);
}

int counts_snapshot(struct stream_counts *c, struct count_entry **out, size_t *n)
{
	size_t k = 0;

	pthread_mutex_lock(&c->mu);
	*out = malloc((c->live ? c->live : 1) * sizeof(**out));
	if (*out == NULL) {
		pthread_mutex_unlock(&c->mu);
		return -1;
	}
	for (int i = 0; i < BUCKETS; i++)
		for (struct node *nd = c->b[i]; nd != NULL; nd = nd->next)
			if (nd->e.n > 0 && k < c->live)
				(*out)[k++] = nd->e;
	pthread_mutex_unlock(&c->mu);
	*n = k;
	return 0;
}

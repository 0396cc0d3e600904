/* perthread: see perthread.h. */
#include "perthread.h"

#include <stdlib.h>

static void unlink_obj(struct perthread *pt, struct perthread_link *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		pt->head = l->next;
	if (l->next)
		l->next->prev = l->prev;
}

/* Thread-exit destructor of the key. */
static void thread_exit(void *obj)
{
	struct perthread_link *l = obj;
	struct perthread *pt = l->owner;

	pthread_mutex_lock(&pt->mu);
	unlink_obj(pt, l);
	pthread_mutex_unlock(&pt->mu);
	pt->free_obj(obj);
}

int perthread_init(struct perthread *pt, size_t size, void (*free_obj)(void *obj))
{
	pt->head = NULL;
	pt->size = size < sizeof(struct perthread_link) ? sizeof(struct perthread_link) : size;
	pt->free_obj = free_obj;
	if (pthread_mutex_init(&pt->mu, NULL) != 0)
		return -1;
	if (pthread_key_create(&pt->key, thread_exit) != 0) {
		pthread_mutex_destroy(&pt->mu);
		return -1;
	}
	return 0;
}

void *perthread_get(struct perthread *pt, int *made)
{
	struct perthread_link *l = pthread_getspecific(pt->key);

	if (made != NULL)
		*made = 0;
	if (l != NULL)
		return l;
	if ((l = calloc(1, pt->size)) == NULL)
		return NULL;
	l->owner = pt;
	if (pthread_setspecific(pt->key, l) != 0) {
		free(l);
		return NULL;
	}
	pthread_mutex_lock(&pt->mu);
	l->next = pt->head;
	if (pt->head)
		pt->head->prev = l;
	pt->head = l;
	pthread_mutex_unlock(&pt->mu);
	if (made != NULL)
		*made = 1;
	return l;
}

void perthread_close(struct perthread *pt)
{
	struct perthread_link *l, *next;

	pthread_mutex_lock(&pt->mu);
	l = pt->head;
	pt->head = NULL;
	pthread_mutex_unlock(&pt->mu);
	for (; l != NULL; l = next) {
		next = l->next;
		pt->free_obj(l);
	}
	/* after this no destructor runs for threads still holding an object */
	pthread_key_delete(pt->key);
	pthread_mutex_destroy(&pt->mu);
}

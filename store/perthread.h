/* perthread: one object per calling thread, for the store backends' own
 * connections. An object is made (zeroed) on a thread's first call,
 * freed when that thread exits, and whatever objects are left are freed
 * by perthread_close. An object begins with its struct perthread_link.
 * Private to store/; leaf module (pthreads only). */
#ifndef FCGI_SSE_STORE_PERTHREAD_H
#define FCGI_SSE_STORE_PERTHREAD_H

#include <pthread.h>
#include <stddef.h>

struct perthread;

struct perthread_link {
	struct perthread *owner;
	struct perthread_link *prev, *next;
};

struct perthread {
	pthread_key_t key;
	pthread_mutex_t mu;            /* guards head */
	struct perthread_link *head;   /* every live object */
	size_t size;                   /* of an object, its link first */
	void (*free_obj)(void *obj);   /* frees what obj holds and obj */
};

/* 0, or -1 (out of resources). */
int perthread_init(struct perthread *pt, size_t size, void (*free_obj)(void *obj));

/* The calling thread's object, made zeroed on its first call (1 in *made
 * then, unless made is NULL); NULL when memory ran out. */
void *perthread_get(struct perthread *pt, int *made);

/* Frees every object left and the key. No thread may be using pt (a thread
 * exiting meanwhile would race its destructor): the store's callers are
 * joined or idle when it closes. */
void perthread_close(struct perthread *pt);

#endif

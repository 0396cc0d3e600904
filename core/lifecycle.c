#include "lifecycle.h"

#include <errno.h>
#include <time.h>

int lifecycle_init(struct lifecycle *lc)
{
	pthread_condattr_t attr;

	lc->_stopping = 0;
	if (pthread_mutex_init(&lc->_mu, NULL) != 0)
		return -1;
	if (pthread_condattr_init(&attr) != 0)
		goto err;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (pthread_cond_init(&lc->_cv, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		goto err;
	}
	pthread_condattr_destroy(&attr);
	return 0;
err:
	pthread_mutex_destroy(&lc->_mu);
	return -1;
}

void lifecycle_free(struct lifecycle *lc)
{
	pthread_cond_destroy(&lc->_cv);
	pthread_mutex_destroy(&lc->_mu);
}

void lifecycle_stop(struct lifecycle *lc)
{
	pthread_mutex_lock(&lc->_mu);
	lc->_stopping = 1;
	pthread_cond_broadcast(&lc->_cv);
	pthread_mutex_unlock(&lc->_mu);
}

int lifecycle_stopping(struct lifecycle *lc)
{
	int s;

	pthread_mutex_lock(&lc->_mu);
	s = lc->_stopping;
	pthread_mutex_unlock(&lc->_mu);
	return s;
}

int lifecycle_wait(struct lifecycle *lc, long long ms)
{
	struct timespec deadline;
	int s;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lc->_mu);
	while (!lc->_stopping) {
		if (pthread_cond_timedwait(&lc->_cv, &lc->_mu, &deadline) == ETIMEDOUT)
			break;
	}
	s = lc->_stopping;
	pthread_mutex_unlock(&lc->_mu);
	return s;
}

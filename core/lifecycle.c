#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

int lifecycle_init(struct lifecycle *lc)
{
	atomic_init(&lc->_stopping, 0);
	return pipe2(lc->_pipe, O_CLOEXEC | O_NONBLOCK);
}

void lifecycle_free(struct lifecycle *lc)
{
	for (int i = 0; i < 2; i++) {
		if (lc->_pipe[i] >= 0)
			close(lc->_pipe[i]);
		lc->_pipe[i] = -1;
	}
}

void lifecycle_stop(struct lifecycle *lc)
{
	if (atomic_exchange(&lc->_stopping, 1) == 0) {
		/* never read: the pipe stays readable for every later poll */
		ssize_t n = write(lc->_pipe[1], "x", 1);
		(void)n;
	}
}

int lifecycle_stopping(struct lifecycle *lc)
{
	return atomic_load(&lc->_stopping);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum lifecycle_wake lifecycle_wait(struct lifecycle *lc, int peer_fd, long long ms)
{
	long long deadline = now_ms() + ms;
	struct pollfd p[2] = {
		{ lc->_pipe[0], POLLIN, 0 },
		/* POLLRDHUP only: the request body belongs to libfcgi, and a
		 * closed connection reports POLLHUP/POLLRDHUP without reading */
		{ peer_fd, POLLRDHUP, 0 },
	};

	for (;;) {
		long long left = deadline - now_ms();
		int n;

		if (lifecycle_stopping(lc))
			return LIFECYCLE_STOPPING;
		if (left <= 0)
			return LIFECYCLE_TIMEOUT;
		n = poll(p, peer_fd >= 0 ? 2 : 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno != EINTR)
			return LIFECYCLE_TIMEOUT;
		if (n > 0 && lifecycle_stopping(lc))
			return LIFECYCLE_STOPPING;
		if (n > 0 && peer_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
			return LIFECYCLE_PEER_GONE;
	}
}

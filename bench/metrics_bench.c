/* metrics_bench: what the per-request metrics cost a request, measured
 * alone: the calls api_handle makes after each answer (api_metrics_count,
 * a clock read, api_metrics_request), by THREADS threads at once on one
 * route, so that their counters' cache lines move between cores as they
 * do under load. Prints ns per request.
 * usage: bench/metrics_bench [THREADS (2)] [ITERATIONS per thread (20000000)] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../api/api.h"

static long iterations = 20000000;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	struct timespec started, now;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &started);
	for (long i = 0; i < iterations; i++) {
		api_metrics_count(200);
		clock_gettime(CLOCK_MONOTONIC, &now);
		api_metrics_request(20, 2, 200,
				    (now.tv_sec - started.tv_sec) * 1000000LL +
					    (now.tv_nsec - started.tv_nsec) / 1000 % 3000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	pthread_t t[64];
	double t0, t1;

	if (argc > 2)
		iterations = atol(argv[2]);
	if (threads < 1 || threads > 64 || iterations < 1) {
		fprintf(stderr, "usage: metrics_bench [THREADS 1-64] [ITERATIONS]\n");
		return 2;
	}
	t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	t1 = now_s();
	printf("threads %d: %.1f ns per request (wall time per thread's call; %ld calls each)\n",
	       threads, (t1 - t0) * 1e9 / (double)iterations, iterations);
	return 0;
}

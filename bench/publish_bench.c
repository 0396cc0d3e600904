/* publish_bench: the publish path (bus_publish: one Lua script that trims,
 * records the watermark, appends and fans out) against a redis-server whose
 * tenants' histories are already full, as in production.
 *
 * usage: publish_bench PORT fill TENANTS MAX_LEN AGE_S
 *          publishes MAX_LEN + 1000 events into each of TENANTS tenants
 *          ("bench-t0" ...)
 *        publish_bench PORT run TENANTS MAX_LEN AGE_S N
 *          N more publishes, round robin over the tenants; prints the
 *          client round trip per publish (p50, p99, mean, in µs)
 *        publish_bench PORT fill-ids MAX_LEN AGE_S COUNT TENANT_ID...
 *          COUNT events into each tenant (by id, as fcgi_sse names them)
 *        publish_bench PORT pace MAX_LEN AGE_S RATE SECONDS TENANT_ID...
 *          RATE events a second for SECONDS (or until killed), round
 *          robin over the tenants: other tenants' traffic during a run
 * bench/publish.sh runs fill and run, and reads redis-server's CPU and
 * INFO commandstats around the timed part; bench/sse.sh uses fill-ids and
 * pace to give fcgi_sse full histories and neighbours. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../redis/bus.h"
#include "../redis/redis.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A telemetry-sized event: about 120 bytes of JSON. */
static int publish_to(struct redis *r, const struct bus_history *h, const char *t, long n)
{
	char data[160], id[BUS_ID_MAX + 1];
	struct bus_entry e;

	snprintf(data, sizeof(data),
		 "{\"device_id\":\"dev-%05ld\",\"seq\":%ld,\"temp_c\":21.5,\"humidity\":40.25,"
		 "\"battery\":0.87,\"status\":\"online\"}", n % 500, n);
	e = (struct bus_entry){ NULL, "telemetry", "device:bench", data, strlen(data), 0 };
	return bus_publish(r, h, t, &e, id);
}

static int publish_one(struct redis *r, const struct bus_history *h, int tenant, long n)
{
	char t[32];

	snprintf(t, sizeof(t), "bench-t%d", tenant);
	return publish_to(r, h, t, n);
}

/* fill-ids and pace: argv[0..] after the mode */
static int by_ids(struct redis *r, struct bus_history *h, const char *mode, int argc, char **argv)
{
	long count = 0;
	double rate = 0, seconds = 0, t0 = now_us();
	int first;

	if (strcmp(mode, "fill-ids") == 0 && argc >= 4) {
		count = atol(argv[2]);
		first = 3;
	} else if (strcmp(mode, "pace") == 0 && argc >= 5) {
		rate = atof(argv[2]);
		seconds = atof(argv[3]);
		count = (long)(rate * seconds);
		first = 4;
	} else {
		return 2;
	}
	h->max_len = atoll(argv[0]);
	h->max_age_ms = atoll(argv[1]) * 1000;
	for (long i = 0; i < count; i++) {
		const char *t = argv[first + i % (argc - first)];
		if (rate > 0) { /* on schedule, never in a burst to catch up */
			double due = t0 + (double)i * 1e6 / rate, now = now_us();
			if (due > now)
				usleep((useconds_t)(due - now));
		}
		if (publish_to(r, h, t, i) < 0) {
			fprintf(stderr, "publish failed: %s\n", redis_errstr(r));
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct redis_opts ro = { "127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, "", 1000, 5000, 1000, 0, 0, NULL, NULL, NULL };
	struct bus_history h;
	struct redis *r;
	int tenants;
	long n;

	if (argc > 2 && (strcmp(argv[2], "fill-ids") == 0 || strcmp(argv[2], "pace") == 0)) {
		struct bus_history hb;
		int rc;
		if ((r = redis_new(&ro)) == NULL)
			return 1;
		rc = by_ids(r, &hb, argv[2], argc - 3, argv + 3);
		if (rc == 2)
			fprintf(stderr, "usage: publish_bench PORT fill-ids MAX_LEN AGE_S COUNT ID... |"
					" pace MAX_LEN AGE_S RATE SECONDS ID...\n");
		redis_free(r);
		return rc;
	}
	if (argc < 6 || (strcmp(argv[2], "fill") != 0 && strcmp(argv[2], "run") != 0) ||
	    (strcmp(argv[2], "run") == 0 && argc < 7)) {
		fprintf(stderr, "usage: publish_bench PORT fill|run TENANTS MAX_LEN AGE_S [N]\n");
		return 2;
	}
	tenants = atoi(argv[3]);
	h.max_len = atoll(argv[4]);
	h.max_age_ms = atoll(argv[5]) * 1000;
	if ((r = redis_new(&ro)) == NULL || tenants < 1)
		return 1;
	if (strcmp(argv[2], "fill") == 0) {
		for (int t = 0; t < tenants; t++)
			for (n = 0; n < h.max_len + 1000; n++)
				if (publish_one(r, &h, t, n) < 0) {
					fprintf(stderr, "publish failed: %s\n", redis_errstr(r));
					return 1;
				}
		redis_free(r);
		return 0;
	}
	n = atol(argv[6]);
	double *lat = malloc(sizeof(double) * (size_t)n), sum = 0;
	if (lat == NULL)
		return 1;
	for (long i = 0; i < n; i++) {
		double t0 = now_us();
		if (publish_one(r, &h, (int)(i % tenants), 1000000 + i) < 0) {
			fprintf(stderr, "publish failed: %s\n", redis_errstr(r));
			return 1;
		}
		lat[i] = now_us() - t0;
		sum += lat[i];
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	printf("round trip per publish: p50 %.1f us, p99 %.1f us, mean %.1f us (%ld publishes)\n",
	       lat[n / 2], lat[(n * 99) / 100], sum / (double)n, n);
	free(lat);
	redis_free(r);
	return 0;
}

/* publish_bench: the publish path (bus_publish: one Lua script that trims,
 * records the watermark, appends and fans out) against a redis-server whose
 * tenants' histories are already full, as in production.
 *
 * usage: publish_bench PORT fill TENANTS MAX_LEN AGE_S
 *          publishes MAX_LEN + 1000 events into each of TENANTS tenants
 *        publish_bench PORT run TENANTS MAX_LEN AGE_S N
 *          N more publishes, round robin over the tenants; prints the
 *          client round trip per publish (p50, p99, mean, in µs)
 * bench/publish.sh runs both and reads redis-server's CPU and
 * INFO commandstats around the timed part. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
static int publish_one(struct redis *r, const struct bus_history *h, int tenant, long n)
{
	char t[32], data[160], id[BUS_ID_MAX + 1];
	struct bus_entry e;

	snprintf(t, sizeof(t), "bench-t%d", tenant);
	snprintf(data, sizeof(data),
		 "{\"device_id\":\"dev-%05ld\",\"seq\":%ld,\"temp_c\":21.5,\"humidity\":40.25,"
		 "\"battery\":0.87,\"status\":\"online\"}", n % 500, n);
	e = (struct bus_entry){ NULL, "telemetry", "device:bench", data, strlen(data), 0 };
	return bus_publish(r, h, t, &e, id);
}

int main(int argc, char **argv)
{
	const struct redis_opts ro = { "127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, "", 1000, 5000, 1000 };
	struct bus_history h;
	struct redis *r;
	int tenants;
	long n;

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

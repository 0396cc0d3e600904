/* peerwatch_bench: what the hub's check for closed clients (sse/peerwatch)
 * costs, with N established loopback TCP connections on the host (as many
 * streams would hold) and K of them closed by their client (in CLOSE_WAIT
 * on the accepting side). Prints µs per scan, and per check of every
 * stream's connection against the list (what the hub does not do: it
 * looks up only what changed, in an index).
 * ESTABLISHED=1 in the environment lists the established connections too.
 * usage: bench/peerwatch_bench [N (5000)] [K (0)] [SCANS (2000)] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../sse/peerwatch.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 5000, k = argc > 2 ? atoi(argv[2]) : 0;
	int scans = argc > 3 ? atoi(argv[3]) : 2000, lfd, found = 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct rlimit rl;
	int *cli = calloc((size_t)n, sizeof(int)), *srv = calloc((size_t)n, sizeof(int));
	struct peer_conn *conns = calloc((size_t)n, sizeof(*conns));
	struct peerwatch *w = peerwatch_open();
	struct peer_list closed = { 0 };
	double t0, t1, t2;
	int est = getenv("ESTABLISHED") != NULL && atoi(getenv("ESTABLISHED"));

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (w == NULL || cli == NULL || srv == NULL || conns == NULL || 2 * (rlim_t)n + 16 > rl.rlim_cur) {
		fprintf(stderr, "peerwatch_bench: no sock_diag, no memory, or N too large for the file limit\n");
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
		return 1;
	for (int i = 0; i < n; i++) {
		struct sockaddr_in l, r;
		socklen_t ll = sizeof(l), rl2 = sizeof(r);
		char la[INET_ADDRSTRLEN], ra[INET_ADDRSTRLEN], lp[8], rp[8];
		cli[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(cli[i], (struct sockaddr *)&a, sizeof(a)) < 0 || (srv[i] = accept(lfd, NULL, NULL)) < 0)
			return 1;
		/* the accepting side's view, as a front server names it */
		getsockname(srv[i], (struct sockaddr *)&l, &ll);
		getpeername(srv[i], (struct sockaddr *)&r, &rl2);
		inet_ntop(AF_INET, &l.sin_addr, la, sizeof(la));
		inet_ntop(AF_INET, &r.sin_addr, ra, sizeof(ra));
		snprintf(lp, sizeof(lp), "%u", ntohs(l.sin_port));
		snprintf(rp, sizeof(rp), "%u", ntohs(r.sin_port));
		peer_conn_parse(&conns[i], la, lp, ra, rp);
	}
	for (int i = 0; i < k && i < n; i++)
		close(cli[i]); /* FIN: srv[i] goes to CLOSE_WAIT */
	usleep(100000);
	t0 = now_s();
	for (int s = 0; s < scans; s++)
		if (peerwatch_scan(w, &closed, est, PEER_V4 | PEER_V6) < 0) {
			perror("peerwatch_scan");
			return 1;
		}
	t1 = now_s();
	for (int s = 0; s < scans; s++)
		for (int i = 0; i < n; i++)
			found += (peer_list_find(&closed, &conns[i]) != NULL && peer_list_find(&closed, &conns[i])->closed);
	t2 = now_s();
	printf("connections %d, closed %d, established listed %d: scan %.1f us (%d listed), "
	       "matching every stream %.1f us, %d found closed\n",
	       n, k, est, (t1 - t0) / scans * 1e6, peerwatch_scan(w, &closed, est, PEER_V4 | PEER_V6), (t2 - t1) / scans * 1e6, found / scans);
	return 0;
}

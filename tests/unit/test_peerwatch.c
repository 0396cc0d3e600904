/* peerwatch: the front server's names of a connection are read as the
 * kernel reports them (IPv4 as mapped IPv6), what ended between two
 * looks is found, and a real loopback connection is listed while
 * established, as closed after its client's FIN, and not at all after its
 * client's reset. */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../sse/peerwatch.h"
#include "suites.h"

static void test_names_parse_as_the_kernel_reports_them(void)
{
	struct peer_conn a, b;

	CU_ASSERT_EQUAL(peer_conn_parse(&a, "127.0.0.1", "8080", "10.1.2.3", "50123"), 0);
	CU_ASSERT_EQUAL(peer_conn_parse(&b, "::ffff:127.0.0.1", "8080", "::ffff:10.1.2.3", "50123"), 0);
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0); /* a dual-stack socket's view */
	CU_ASSERT_EQUAL(a.local.port, 8080);
	CU_ASSERT_EQUAL(a.remote.port, 50123);
	CU_ASSERT_EQUAL(a.remote.addr[15], 3);
	CU_ASSERT_EQUAL(peer_conn_parse(&b, "[::1]", "443", "2001:db8::7", "1"), 0);
	CU_ASSERT_EQUAL(b.local.addr[15], 1);
	CU_ASSERT_EQUAL(b.remote.addr[0], 0x20);
	CU_ASSERT_EQUAL(peer_conn_parse(&b, "127.0.0.1", "8080", "10.1.2.3", "50124"), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
}

static void test_what_is_not_an_address_and_port_is_refused(void)
{
	static const char *const bad[][4] = {
		{ NULL, "80", "10.0.0.1", "5000" },      /* a unix-socket front end */
		{ "127.0.0.1", NULL, "10.0.0.1", "5000" },
		{ "127.0.0.1", "80", "10.0.0.1", "" },
		{ "127.0.0.1", "0", "10.0.0.1", "5000" },
		{ "127.0.0.1", "65536", "10.0.0.1", "5000" },
		{ "127.0.0.1", "123456", "10.0.0.1", "5000" },
		{ "127.0.0.1", "+80", "10.0.0.1", "5000" },
		{ "127.0.0.1", "80 ", "10.0.0.1", "5000" },
		{ "localhost", "80", "10.0.0.1", "5000" },
		{ "127.0.0.1", "80", "fe80::1%eth0", "5000" },
		{ "127.0.0.1", "80", "[10.0.0.1", "5000" },
		{ "", "80", "10.0.0.1", "5000" },
		{ "127.0.0.1", "80", "unix:/run/x.sock", "5000" },
	};
	struct peer_conn c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0x5a, sizeof(c));
		CU_ASSERT_EQUAL(peer_conn_parse(&c, bad[i][0], bad[i][1], bad[i][2], bad[i][3]), -1);
		CU_ASSERT_EQUAL(c.local.port, 0); /* nothing half-filled */
	}
}

static struct peer_seen seen(unsigned port, int closed)
{
	struct peer_seen e;
	char p[8];

	snprintf(p, sizeof(p), "%u", port);
	peer_conn_parse(&e.c, "127.0.0.1", "80", "10.0.0.1", p);
	e.closed = (unsigned char)closed;
	return e;
}

static int listed(const struct peer_list *l, unsigned port)
{
	struct peer_seen e = seen(port, 0);

	return peer_list_find(l, &e.c) != NULL;
}

static void test_the_connections_that_ended_between_two_looks_are_found(void)
{
	/* sorted by port, as the ports are the last bytes that differ */
	struct peer_seen p[] = { seen(1001, 0), seen(1002, 0), seen(1003, 0), seen(1005, 1) };
	struct peer_seen c[] = { seen(1001, 0), seen(1003, 1), seen(1004, 0), seen(1006, 1) };
	struct peer_list prev = { p, 4, 4, 0 }, cur = { c, 4, 4, 0 }, gone = { 0 };

	CU_ASSERT_EQUAL(peer_list_gone(&prev, &cur, &gone), 0);
	CU_ASSERT_EQUAL(gone.n, 4);
	CU_ASSERT(listed(&gone, 1002));  /* vanished: a reset */
	CU_ASSERT(listed(&gone, 1003));  /* closed since */
	CU_ASSERT(listed(&gone, 1005));  /* closed, then gone */
	CU_ASSERT(listed(&gone, 1006));  /* new, and closed already */
	CU_ASSERT(!listed(&gone, 1001)); /* still open */
	CU_ASSERT(!listed(&gone, 1004)); /* new and open */
	peer_list_free(&gone);
	/* the first look has nothing to compare with: only what is closed */
	prev.n = 0;
	CU_ASSERT_EQUAL(peer_list_gone(&prev, &cur, &gone), 0);
	CU_ASSERT_EQUAL(gone.n, 2);
	peer_list_free(&gone);
}

/* A loopback connection as a front server has it: the accepted socket,
 * named by its own addresses. */
struct pair {
	int lfd, cli, srv;
	struct peer_conn c;
};

static int pair_open(struct pair *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in l, r;
	socklen_t al = sizeof(a), ll = sizeof(l), rl = sizeof(r);
	char la[INET_ADDRSTRLEN], ra[INET_ADDRSTRLEN], lp[8], rp[8];

	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	p->cli = socket(AF_INET, SOCK_STREAM, 0);
	if (p->lfd < 0 || p->cli < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(p->lfd, 4) < 0 || getsockname(p->lfd, (struct sockaddr *)&a, &al) < 0 ||
	    connect(p->cli, (struct sockaddr *)&a, sizeof(a)) < 0 || (p->srv = accept(p->lfd, NULL, NULL)) < 0 ||
	    getsockname(p->srv, (struct sockaddr *)&l, &ll) < 0 || getpeername(p->srv, (struct sockaddr *)&r, &rl) < 0)
		return -1;
	inet_ntop(AF_INET, &l.sin_addr, la, sizeof(la));
	inet_ntop(AF_INET, &r.sin_addr, ra, sizeof(ra));
	snprintf(lp, sizeof(lp), "%u", ntohs(l.sin_port));
	snprintf(rp, sizeof(rp), "%u", ntohs(r.sin_port));
	return peer_conn_parse(&p->c, la, lp, ra, rp);
}

/* Looks until the state of p's connection is want (1 closed, 0 open, -1
 * not listed), for at most 200 looks 10 ms apart: the kernel handles a
 * loopback FIN or reset at once, this only bounds a slow machine. */
static int look_until(struct peerwatch *w, struct peer_list *l, const struct pair *p, int established,
		      int want)
{
	for (int i = 0; i < 200; i++) {
		const struct peer_seen *e;
		if (peerwatch_scan(w, l, established, PEER_V4 | PEER_V6) < 0)
			return 0;
		e = peer_list_find(l, &p->c);
		if ((e == NULL ? -1 : e->closed) == want)
			return 1;
		poll(NULL, 0, 10);
	}
	return 0;
}

static void test_a_real_connection_is_seen_closed_and_then_reset(void)
{
	struct peerwatch *w = peerwatch_open();
	struct peer_list l = { 0 };
	struct pair fin, rst;
	struct linger lg = { 1, 0 };

	if (w == NULL) {
		CU_FAIL("no sock_diag netlink socket on this machine");
		return;
	}
	CU_ASSERT_FATAL(pair_open(&fin) == 0);
	CU_ASSERT_FATAL(pair_open(&rst) == 0);
	CU_ASSERT(look_until(w, &l, &fin, 1, 0));  /* established, listed as such */
	CU_ASSERT(look_until(w, &l, &fin, 0, -1)); /* not among the closed */
	close(fin.cli);                            /* a FIN: fin.srv in CLOSE_WAIT */
	CU_ASSERT(look_until(w, &l, &fin, 0, 1));
	CU_ASSERT(look_until(w, &l, &rst, 1, 0));
	setsockopt(rst.cli, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(rst.cli);                            /* a reset: rst.srv leaves the table */
	CU_ASSERT(look_until(w, &l, &rst, 1, -1));
	CU_ASSERT(look_until(w, &l, &fin, 1, 1));  /* the FIN's still closed, open ones listed */
	close(fin.srv);
	close(fin.lfd);
	close(rst.srv);
	close(rst.lfd);
	peer_list_free(&l);
	peerwatch_close(w);
}

static CU_TestInfo tests[] = {
	{ "names parse as the kernel reports them", test_names_parse_as_the_kernel_reports_them },
	{ "what is not an address and port is refused", test_what_is_not_an_address_and_port_is_refused },
	{ "the connections that ended between two looks are found",
	  test_the_connections_that_ended_between_two_looks_are_found },
	{ "a real connection is seen closed and then reset", test_a_real_connection_is_seen_closed_and_then_reset },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "peerwatch", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_peerwatch_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}

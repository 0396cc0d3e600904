/* peerwatch: streams whose client closed, from the kernel's socket table
 * (see peerwatch.h). */
#include "peerwatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RECV_BUF 32768
#define RECV_TIMEOUT_MS 500 /* the kernel answers at once; a bound, not a wait */

struct peerwatch {
	int fd;
	uint32_t seq;
	unsigned char buf[RECV_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
};

/* ---------------------------------------------------------------- addresses */

static int parse_end(struct peer_end *e, const char *addr, const char *port)
{
	char tmp[INET6_ADDRSTRLEN + 2];
	struct in_addr v4;
	size_t len;
	long p = 0;

	if (addr == NULL || port == NULL || *port == '\0')
		return -1;
	for (const char *q = port; *q; q++) {
		if (*q < '0' || *q > '9' || q - port >= 5)
			return -1;
		p = p * 10 + (*q - '0');
	}
	if (p < 1 || p > 65535)
		return -1;
	len = strlen(addr);
	if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') /* [::1], as some write it */
		addr++, len -= 2;
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, addr, len);
	tmp[len] = '\0';
	memset(e, 0, sizeof(*e));
	if (inet_pton(AF_INET, tmp, &v4) == 1) {
		e->addr[10] = e->addr[11] = 0xff;
		memcpy(e->addr + 12, &v4, 4);
	} else if (inet_pton(AF_INET6, tmp, e->addr) != 1) {
		return -1;
	}
	e->port = (uint16_t)p;
	return 0;
}

int peer_conn_parse(struct peer_conn *c, const char *server_addr, const char *server_port,
		    const char *remote_addr, const char *remote_port)
{
	memset(c, 0, sizeof(*c));
	if (parse_end(&c->local, server_addr, server_port) < 0 ||
	    parse_end(&c->remote, remote_addr, remote_port) < 0) {
		memset(c, 0, sizeof(*c));
		return -1;
	}
	return 0;
}

/* A sock_diag address (network order, family f) in peer_end form. */
static void from_diag(struct peer_end *e, int family, const __be32 *a, __be16 port)
{
	memset(e, 0, sizeof(*e));
	if (family == AF_INET) {
		e->addr[10] = e->addr[11] = 0xff;
		memcpy(e->addr + 12, a, 4);
	} else {
		memcpy(e->addr, a, 16);
	}
	e->port = ntohs(port);
}

int peer_conn_v4(const struct peer_conn *c)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(c->local.addr, mapped, sizeof(mapped)) == 0;
}

static int conn_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct peer_conn)); /* the first member of peer_seen */
}

static struct peer_seen *grow(struct peer_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct peer_seen *v;
		if (l->cap >= PEERWATCH_MAX)
			return NULL;
		if ((v = realloc(l->v, cap * sizeof(*v))) == NULL)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	return &l->v[l->n++];
}

int peer_list_add(struct peer_list *l, const struct peer_conn *c)
{
	struct peer_seen *e = grow(l);

	if (e == NULL)
		return -1;
	e->c = *c;
	e->closed = 1;
	return 0;
}

const struct peer_seen *peer_list_find(const struct peer_list *l, const struct peer_conn *c)
{
	return l->n > 0 ? bsearch(c, l->v, l->n, sizeof(*l->v), conn_cmp) : NULL;
}

int peer_list_gone(const struct peer_list *prev, const struct peer_list *cur, struct peer_list *gone)
{
	size_t i = 0, j = 0;

	/* one merge of the two sorted lists */
	while (i < prev->n || j < cur->n) {
		int d = i == prev->n ? 1 : j == cur->n ? -1 : conn_cmp(&prev->v[i].c, &cur->v[j].c);
		if (d < 0) { /* vanished: reset, or closed by the front server */
			if (peer_list_add(gone, &prev->v[i].c) < 0)
				return -1;
			i++;
			continue;
		}
		if (cur->v[j].closed && peer_list_add(gone, &cur->v[j].c) < 0)
			return -1;
		i += d == 0;
		j++;
	}
	return 0;
}

void peer_list_free(struct peer_list *l)
{
	free(l->v);
	*l = (struct peer_list){ 0 };
}

/* ---------------------------------------------------------------- netlink */

struct peerwatch *peerwatch_open(void)
{
	struct peerwatch *w = calloc(1, sizeof(*w));
	struct timeval tv = { 0, RECV_TIMEOUT_MS * 1000 };

	if (w == NULL)
		return NULL;
	w->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (w->fd < 0) {
		int e = errno;
		free(w);
		errno = e;
		return NULL;
	}
	setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return w;
}

static int keep(struct peer_list *l, const struct inet_diag_msg *m)
{
	struct peer_seen *e = grow(l);

	if (e == NULL)
		return l->cap >= PEERWATCH_MAX ? 0 : -1; /* past the bound: the rest end at their heartbeat */
	from_diag(&e->c.local, m->idiag_family, m->id.idiag_src, m->id.idiag_sport);
	from_diag(&e->c.remote, m->idiag_family, m->id.idiag_dst, m->id.idiag_dport);
	e->closed = m->idiag_state == TCP_CLOSE_WAIT;
	if (m->idiag_family == AF_INET6 && peer_conn_v4(&e->c))
		l->v6_mapped = 1;
	return 0;
}

/* One family's dump into l. Returns 0, or -1 with errno. */
static int dump(struct peerwatch *w, int family, uint32_t states, struct peer_list *l)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	uint32_t seq = ++w->seq;

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = seq;
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = states; /* the kernel skips the other sockets */
	if (sendto(w->fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -1;
	for (;;) {
		ssize_t got = recv(w->fd, w->buf, sizeof(w->buf), 0);
		unsigned int len = got > 0 ? (unsigned int)got : 0;
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)w->buf; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != seq)
				continue; /* an answer to an earlier, abandoned request */
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				errno = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? -e->error : EPROTO;
				return -1;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
			    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)) &&
			    keep(l, NLMSG_DATA(h)) < 0)
				return -1;
		}
	}
}

int peerwatch_scan(struct peerwatch *w, struct peer_list *out, int established, unsigned families)
{
	uint32_t states = 1u << TCP_CLOSE_WAIT | (established ? 1u << TCP_ESTABLISHED : 0);

	out->n = 0;
	out->v6_mapped = 0;
	if (((families & PEER_V4) && dump(w, AF_INET, states, out) < 0) ||
	    ((families & PEER_V6) && dump(w, AF_INET6, states, out) < 0)) {
		/* a dump cut short would answer the next request: start afresh */
		int e = errno, fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		struct timeval tv = { 0, RECV_TIMEOUT_MS * 1000 };
		if (fd >= 0) {
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			dup2(fd, w->fd);
			close(fd);
		}
		out->n = 0;
		errno = e;
		return -1;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), conn_cmp);
	return (int)out->n;
}

void peerwatch_close(struct peerwatch *w)
{
	if (w == NULL)
		return;
	close(w->fd);
	free(w);
}

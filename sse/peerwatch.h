/* peerwatch: notices stream clients that have closed their connection to
 * the front server when the front server does not say so.
 *
 * lighttpd 1.4 takes a client's FIN on an HTTP/1.1 connection for a
 * half-close (src/connections.c, connection_revents_err: a FIN cannot be
 * told from shutdown(SHUT_WR)), stops watching the socket and learns that
 * the client is gone only when its next write draws a reset; Apache's
 * FastCGI handlers do not watch the client while they relay a response at
 * all. For an idle stream that next write is the heartbeat, up to
 * sse.heartbeat_interval_ms later, and until then the stream holds its
 * place, two file descriptors and its user's stream quota.
 *
 * The kernel knows sooner: the front server's socket for the connection is
 * in CLOSE_WAIT after a FIN, or gone from the table after a reset. The
 * front server names the connection in the CGI variables (SERVER_ADDR,
 * SERVER_PORT, REMOTE_ADDR, REMOTE_PORT); a thread of the hub asks the
 * kernel for the TCP connections that are ESTABLISHED or in CLOSE_WAIT
 * (one sock_diag netlink dump per address family, filtered by state in the
 * kernel; the established ones every tenth look, or every look while a
 * stream is on HTTP/2, sse/hub.c) and tells the hub of those that closed
 * or vanished since its last look; the hub ends the streams on them (an index by connection:
 * nothing is done per stream while no client has left). A connection never
 * seen established is never taken for gone, so where the addresses do not
 * match the kernel's nothing is ended.
 *
 * It sees only sockets in fcgi_sse's own network namespace: behind a front
 * server in another container, or a proxy that rewrites the addresses,
 * nothing matches and streams end at their next heartbeat as before. A
 * client that half-closes on purpose is taken as gone, as nginx does. */
#ifndef FCGI_SSE_PEERWATCH_H
#define FCGI_SSE_PEERWATCH_H

#include <stddef.h>
#include <stdint.h>

/* One end of a TCP connection: the address in IPv6 form (IPv4 as
 * ::ffff:a.b.c.d, as a dual-stack socket reports it) and the port. */
struct peer_end {
	unsigned char addr[16];
	uint16_t port;
};

/* A connection as the front server's socket sees it. */
struct peer_conn {
	struct peer_end local, remote;
};

/* Fills c from the front server's CGI variables. Returns 0, or -1 when one
 * is missing or is not an IP address or port (a unix-socket front end). */
int peer_conn_parse(struct peer_conn *c, const char *server_addr, const char *server_port,
		    const char *remote_addr, const char *remote_port);

/* A connection at a scan, and whether its client had closed it. */
struct peer_seen {
	struct peer_conn c;
	unsigned char closed;   /* CLOSE_WAIT (else ESTABLISHED) */
};

/* Connections, sorted by c (memcmp order). */
struct peer_list {
	struct peer_seen *v;
	size_t n, cap;
	int v6_mapped;          /* an IPv6 socket's peer was an IPv4 address */
};

/* Address families to look in (peerwatch_scan). */
#define PEER_V4 1u
#define PEER_V6 2u

/* Whether c's local address is IPv4 (mapped) rather than IPv6. */
int peer_conn_v4(const struct peer_conn *c);

/* Whether c is in l (and then its entry). */
const struct peer_seen *peer_list_find(const struct peer_list *l, const struct peer_conn *c);

/* Appends c; -1 when out of memory. */
int peer_list_add(struct peer_list *l, const struct peer_conn *c);

/* What ended between two scans: the connections in cur that are closed,
 * and those of prev no longer in cur at all (their client reset them,
 * or the front server closed them), appended to gone. Returns 0, or -1
 * when out of memory. */
int peer_list_gone(const struct peer_list *prev, const struct peer_list *cur, struct peer_list *gone);

void peer_list_free(struct peer_list *l);

struct peerwatch;

/* Opens the netlink socket. NULL (errno set) where sock_diag is not
 * available (an old kernel, a sandbox without AF_NETLINK). */
struct peerwatch *peerwatch_open(void);

/* Asks the kernel for this namespace's TCP connections in CLOSE_WAIT, and
 * with established also those ESTABLISHED, of the families (PEER_V4,
 * PEER_V6: one walk of the table each), and puts them (at most
 * PEERWATCH_MAX) in out, sorted, reusing its memory. Returns their count,
 * or -1 with errno set (out is then empty). The kernel walks its whole
 * connection table for either, a few ms on a busy host (call it off any
 * latency-critical thread); listing the established ones costs about
 * 0.35 µs more for each. */
#define PEERWATCH_MAX 262144
int peerwatch_scan(struct peerwatch *w, struct peer_list *out, int established, unsigned families);

void peerwatch_close(struct peerwatch *w);

#endif

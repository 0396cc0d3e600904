/* listen: listening socket addresses ("unix:/path", "HOST:PORT",
 * "[IPv6]:PORT") and the socket behind them. */
#ifndef FCGI_SSE_LISTEN_H
#define FCGI_SSE_LISTEN_H

#include "buf.h"

enum listen_kind { LISTEN_UNIX, LISTEN_TCP };

struct listen_addr {
	enum listen_kind kind;
	char path[108];  /* LISTEN_UNIX: sun_path */
	char host[256];  /* LISTEN_TCP: numeric address or name, brackets removed */
	int port;        /* LISTEN_TCP: 1..65535 */
};

/* Parses spec. Pure. Returns 0 and fills *out, or -1 when spec is not one
 * of the accepted forms (path too long, port not 1..65535, empty host). */
int listen_parse(const char *spec, struct listen_addr *out);

/* Creates, binds and listens on a. A stale unix socket file at the path is
 * replaced; any other file there is an error. Returns the close-on-exec fd,
 * or -1 with a message in err. */
int listen_open(const struct listen_addr *a, int backlog, struct buf *err);

/* The file a unix socket was bound to, as lstat saw it. */
struct listen_file {
	unsigned long long dev, ino;
	int valid;
};

/* Records which file path is now (right after listen_open). */
void listen_file_of(const char *path, struct listen_file *out);

/* Removes the socket file at path at exit, unless it is no longer f: a
 * process started after this one (a restart that starts the new process
 * before stopping the old) has replaced it with its own socket, which must
 * stay. (What lstat and unlink see may differ if a third process swaps the
 * file in between; a restart does not.) */
void listen_unlink_own(const char *path, const struct listen_file *f);

/* Returns 1 if fd is a listening socket (fd 0 from a process manager),
 * 0 otherwise. */
int listen_fd_is_listening(int fd);

/* Returns 1 if the listening socket fd is TCP (so accepted connections want
 * TCP_NODELAY), 0 otherwise. */
int listen_fd_is_tcp(int fd);

#endif

#include "listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int parse_port(const char *s)
{
	long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > 65535)
			return -1;
	}
	return v >= 1 ? (int)v : -1;
}

int listen_parse(const char *spec, struct listen_addr *out)
{
	const char *colon, *host = spec;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;
		if (*path != '/' || strlen(path) >= sizeof(out->path))
			return -1;
		out->kind = LISTEN_UNIX;
		memcpy(out->path, path, strlen(path) + 1);
		return 0;
	}
	out->kind = LISTEN_TCP;
	if (*spec == '[') {
		const char *close = strchr(spec, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		host = spec + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || memchr(spec, ':', (size_t)(colon - spec)) != NULL)
			return -1;
		hlen = (size_t)(colon - spec);
	}
	if (hlen == 0 || hlen >= sizeof(out->host))
		return -1;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if ((out->port = parse_port(colon + 1)) < 0)
		return -1;
	return 0;
}

static int open_unix(const struct listen_addr *a, int backlog, struct buf *err)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
	if (lstat(a->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			buf_printf(err, "%s exists and is not a socket", a->path);
			return -1;
		}
		unlink(a->path);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	buf_printf(err, "unix:%s: %s", a->path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

void listen_file_of(const char *path, struct listen_file *out)
{
	struct stat st;

	out->valid = lstat(path, &st) == 0;
	out->dev = out->valid ? (unsigned long long)st.st_dev : 0;
	out->ino = out->valid ? (unsigned long long)st.st_ino : 0;
}

void listen_unlink_own(const char *path, const struct listen_file *f)
{
	struct listen_file now;

	listen_file_of(path, &now);
	if (f->valid && now.valid && now.dev == f->dev && now.ino == f->ino)
		unlink(path);
}

static int open_tcp(const struct listen_addr *a, int backlog, struct buf *err)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", a->port);
	if ((rc = getaddrinfo(a->host, port, &hints, &res)) != 0) {
		buf_printf(err, "%s:%d: %s", a->host, a->port, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	buf_printf(err, "%s:%d: %s", a->host, a->port, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

int listen_open(const struct listen_addr *a, int backlog, struct buf *err)
{
	return a->kind == LISTEN_UNIX ? open_unix(a, backlog, err)
				      : open_tcp(a, backlog, err);
}

int listen_fd_is_listening(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0)
		return 0;
	return v != 0;
}

int listen_fd_is_tcp(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
}

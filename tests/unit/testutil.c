/* testutil: helpers shared by unit-test files (testutil.h). */
#include "testutil.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int test_redis_port(void)
{
	const char *p = getenv("FCGI_SSE_TEST_REDIS_PORT");

	return p ? atoi(p) : 0;
}

struct redis *test_redis_client(int port)
{
	const struct redis_opts o = { "127.0.0.1", port, "", 200, 200, 200, 0, 0, NULL, NULL, NULL };

	return redis_new(&o);
}

void test_redis_command(int port, const char *resp)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char reply[256];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    write(fd, resp, strlen(resp)) == (ssize_t)strlen(resp))
		CU_ASSERT(read(fd, reply, sizeof(reply)) > 0);
	close(fd);
}

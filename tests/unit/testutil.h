/* testutil: helpers shared by unit-test files. */
#ifndef FCGI_SSE_TESTUTIL_H
#define FCGI_SSE_TESTUTIL_H

#include "../../redis/redis.h"

/* The port of the redis-server that tests/unit/run.sh started (0: none). */
int test_redis_port(void);

/* A client of the redis-server on loopback port, with short timeouts. */
struct redis *test_redis_client(int port);

/* Sends one RESP-encoded command to the redis-server on loopback port and
 * reads (and drops) its answer: the tests' own admin channel, for commands
 * such as CLIENT KILL that the code under test never sends. */
void test_redis_command(int port, const char *resp);

/* RESP for CLIENT KILL TYPE pubsub: drops every subscriber connection. */
#define TEST_KILL_SUBSCRIBERS "*4\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$4\r\nTYPE\r\n$6\r\npubsub\r\n"

#endif

/* api_floor: the least a libfcgi responder can do for a JSON GET, as the
 * floor under fcgi_sse's API figures behind the same lighttpd (issue #11).
 *
 * THREADS threads, each accepting on the unix socket with libfcgi and
 * answering every request with the same 200 JSON body the size of a v2
 * device. No routing, auth, cache or store: what remains is FastCGI, libfcgi
 * and the front server.
 *
 * usage: api_floor SOCKET_PATH [THREADS (4)] */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char body[] =
	"{\"id\":\"3fXk2c9QmKq0b6T1w8Zr4A\",\"name\":\"Boiler 1\",\"status\":{\"state\":\"online\","
	"\"last_seen_at\":null},\"metadata\":{\"room\":\"B2\"},\"created_at\":\"2026-12-01T09:58:12Z\","
	"\"updated_at\":\"2026-12-01T09:58:12Z\",\"version\":1}";

static int sock;

static void *serve(void *arg)
{
	FCGX_Request rq;

	(void)arg;
	if (FCGX_InitRequest(&rq, sock, 0) != 0)
		return NULL;
	while (FCGX_Accept_r(&rq) == 0) {
		/* libfcgi's own printf knows no %zu */
		FCGX_FPrintF(rq.out,
			     "Status: 200 OK\r\nContent-Type: application/json\r\n"
			     "Cache-Control: no-store\r\nContent-Length: %d\r\n\r\n",
			     (int)(sizeof(body) - 1));
		FCGX_PutStr(body, (int)(sizeof(body) - 1), rq.out);
		FCGX_Finish_r(&rq);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 4;
	pthread_t t[64];

	if (argc < 2 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: api_floor SOCKET_PATH [THREADS]\n");
		return 2;
	}
	if (FCGX_Init() != 0 || (sock = FCGX_OpenSocket(argv[1], 128)) < 0) {
		fprintf(stderr, "api_floor: cannot listen on %s\n", argv[1]);
		return 1;
	}
	chmod(argv[1], 0666);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, serve, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	return 0;
}

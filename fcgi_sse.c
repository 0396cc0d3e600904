/* fcgi_sse: process start-up, signals and shutdown. The composition root:
 * it reads the config, creates each service once and passes it in by
 * pointer. Only this file prints usage errors or decides to exit. */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "core/config.h"
#include "core/lifecycle.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/server.h"

#ifndef FCGI_SSE_VERSION
#define FCGI_SSE_VERSION "0.0.0-dev"
#endif
#ifndef BUILD_COMMIT
#define BUILD_COMMIT "unknown"
#endif
#ifndef BUILD_EPOCH
#define BUILD_EPOCH 0
#endif

/* sysexits.h values, spelled out so the meaning is visible here */
#define EXIT_USAGE 64
#define EXIT_SOFTWARE 70
#define EXIT_OSERR 71
#define EXIT_CONFIG 78

extern char **environ;

struct options {
	const char *config_path;
	const char *listen;
	int check_config;
	int describe_config;
};

static void usage(FILE *to)
{
	fputs("usage: fcgi_sse [--config FILE] [--listen unix:/path|HOST:PORT]\n"
	      "       fcgi_sse --check-config [--config FILE]\n"
	      "       fcgi_sse --describe-config | --version | --help\n"
	      "\n"
	      "Without --listen (or server.listen) the FastCGI listening socket is\n"
	      "expected on fd 0, as mod_fcgid, lighttpd bin-path and spawn-fcgi pass it.\n"
	      "The config file may also be named by FCGI_SSE_CONFIG; every key can be\n"
	      "overridden by FCGI_SSE_<SECTION>_<KEY> (see docs/CONFIG.md).\n",
	      to);
}

/* Returns 0, 1 when the process should exit 0 now, or -1 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "--config") == 0 || strcmp(a, "--listen") == 0) && i + 1 < argc) {
			if (a[2] == 'c')
				o->config_path = argv[++i];
			else
				o->listen = argv[++i];
		} else if (strcmp(a, "--check-config") == 0) {
			o->check_config = 1;
		} else if (strcmp(a, "--describe-config") == 0) {
			o->describe_config = 1;
		} else if (strcmp(a, "--version") == 0) {
			printf("fcgi_sse %s (%s)\n", FCGI_SSE_VERSION, BUILD_COMMIT);
			return 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else {
			fprintf(stderr, "fcgi_sse: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

/* Builds the effective configuration. Returns 0, or -1 with a message. */
static int load_config(const struct options *o, struct config *cfg, struct buf *err)
{
	const char *path = o->config_path ? o->config_path : getenv(CONFIG_FILE_ENV);

	if (config_init_defaults(cfg) < 0) {
		buf_puts(err, "out of memory");
		return -1;
	}
	if (path != NULL && *path != '\0' && config_load_file(cfg, path, err) < 0)
		return -1;
	if (config_load_env(cfg, environ, err) < 0)
		return -1;
	if (o->listen != NULL) {
		struct listen_addr a;
		if (listen_parse(o->listen, &a) < 0) {
			buf_printf(err, "--listen: \"%s\" is not \"unix:/path\", \"HOST:PORT\" "
				   "or \"[IPv6]:PORT\"", o->listen);
			return -1;
		}
		free(cfg->listen);
		if ((cfg->listen = strdup(o->listen)) == NULL) {
			buf_puts(err, "out of memory");
			return -1;
		}
	}
	return config_validate(cfg, err);
}

/* Returns the listening fd, or -1 with a message. */
static int open_listener(const struct config *cfg, struct buf *err)
{
	struct listen_addr a;

	if (*cfg->listen == '\0') {
		if (!listen_fd_is_listening(0)) {
			buf_puts(err, "no listening socket: fd 0 is not one (start fcgi_sse from "
				      "a FastCGI process manager, or pass --listen)");
			return -1;
		}
		return 0;
	}
	if (listen_parse(cfg->listen, &a) < 0) {
		buf_printf(err, "server.listen: cannot parse \"%s\"", cfg->listen);
		return -1;
	}
	return listen_open(&a, (int)cfg->backlog, err);
}

static void log_startup(const struct logger *lg, const struct config *cfg)
{
	struct json_object *f = json_object_new_object();

	json_object_object_add(f, "version", json_object_new_string(FCGI_SSE_VERSION));
	json_object_object_add(f, "commit", json_object_new_string(BUILD_COMMIT));
	json_object_object_add(f, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(f, "listen", json_object_new_string(
						    *cfg->listen ? cfg->listen : "fd:0"));
	json_object_object_add(f, "workers", json_object_new_int64(cfg->workers));
	log_json(lg, LOG_INFO, "startup", f);
}

/* Blocks the shutdown signals in this thread and every thread started
 * after, so that only sigwait below receives them. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM); /* mod_fcgid, lighttpd, systemd, supervisord */
	sigaddset(set, SIGINT);  /* Ctrl-C */
	sigaddset(set, SIGHUP);  /* terminal gone */
	sigaddset(set, SIGUSR1); /* libfcgi's own graceful-stop signal */
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN); /* a gone client is a write error, not a death */
}

static int wait_for_signal(const sigset_t *set)
{
	int sig;

	while (sigwait(set, &sig) != 0)
		;
	return sig;
}

static int run(const struct config *cfg, int listen_fd, const sigset_t *sigs)
{
	const struct logger lg = { cfg->log_level, 2 };
	const struct build_info build = { FCGI_SSE_VERSION, BUILD_COMMIT, (time_t)BUILD_EPOCH };
	struct lifecycle lc;
	struct api_env env;
	struct server_opts so;
	struct server *srv;
	struct buf err = BUF_INIT;
	struct json_object *f;
	int sig, busy;

	if (lifecycle_init(&lc) < 0)
		return EXIT_OSERR;
	api_env_init(&env, cfg, &lg, &lc, &build);
	so = (struct server_opts){ listen_fd, (int)cfg->workers, &lg, api_handle, &env };
	if ((srv = server_start(&so, &err)) == NULL) {
		log_text(&lg, LOG_ERROR, "startup_failed", buf_str(&err));
		buf_release(&err);
		lifecycle_free(&lc);
		return EXIT_OSERR;
	}
	log_startup(&lg, cfg);
	sig = wait_for_signal(sigs);
	f = json_object_new_object();
	json_object_object_add(f, "signal", json_object_new_string(strsignal(sig)));
	json_object_object_add(f, "streams_open", json_object_new_int(atomic_load(&env.streams_open)));
	log_json(&lg, LOG_INFO, "shutdown_begin", f);
	lifecycle_stop(&lc);
	busy = server_stop(srv, cfg->shutdown_timeout_ms);
	f = json_object_new_object();
	json_object_object_add(f, "clean", json_object_new_boolean(busy == 0));
	json_object_object_add(f, "abandoned_requests", json_object_new_int(busy));
	log_json(&lg, busy ? LOG_WARN : LOG_INFO, "shutdown", f);
	if (busy == 0) {
		server_free(srv);
		lifecycle_free(&lc);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct config cfg;
	struct buf err = BUF_INIT, out = BUF_INIT;
	sigset_t sigs;
	int rc, listen_fd;

	if ((rc = parse_args(argc, argv, &o)) != 0)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (o.describe_config) {
		config_describe(&out);
		fputs(buf_str(&out), stdout);
		buf_release(&out);
		return 0;
	}
	if (load_config(&o, &cfg, &err) < 0) {
		fprintf(stderr, "fcgi_sse: config error: %s\n", buf_str(&err));
		rc = EXIT_CONFIG;
		goto out;
	}
	if (o.check_config) {
		rc = config_dump(&cfg, &out) < 0 ? EXIT_SOFTWARE : 0;
		fputs(buf_str(&out), stdout);
		goto out;
	}
	block_signals(&sigs);
	if ((listen_fd = open_listener(&cfg, &err)) < 0) {
		fprintf(stderr, "fcgi_sse: %s\n", buf_str(&err));
		rc = *cfg.listen ? EXIT_OSERR : EXIT_USAGE;
		goto out;
	}
	rc = run(&cfg, listen_fd, &sigs);
	if (listen_fd != 0)
		close(listen_fd);
	if (strncmp(cfg.listen, "unix:", 5) == 0)
		unlink(cfg.listen + 5);
out:
	config_release(&cfg);
	buf_release(&err);
	buf_release(&out);
	return rc;
}

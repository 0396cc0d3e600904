/* config: the process configuration, one table of typed entries.
 *
 * Values come from, in order: built-in defaults, one JSON file (sections of
 * keys: {"server": {"workers": 8}}), then FCGI_SSE_<SECTION>_<KEY>
 * environment variables (FCGI_SSE_SERVER_WORKERS=8). Unknown keys, wrong
 * types and out-of-range values are errors with a precise message; nothing is
 * silently ignored. Library code: returns codes, never prints or exits. */
#ifndef FCGI_SSE_CONFIG_H
#define FCGI_SSE_CONFIG_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum store_backend { STORE_BACKEND_SQLITE, STORE_BACKEND_POSTGRES };

struct config {
	/* server */
	char *listen;                  /* "" = socket on fd 0 from a process manager */
	long long workers;
	long long backlog;
	long long shutdown_timeout_ms;
	/* http */
	long long max_body_bytes;
	long long body_timeout_ms;
	/* log */
	int log_level;                 /* enum log_level */
	/* api */
	time_t v1_deprecation;
	time_t v1_sunset;
	char *v1_successor_url;
	char *v1_deprecation_url;
	/* sse */
	long long heartbeat_interval_ms;
	long long peer_check_ms;
	long long retry_ms;
	long long retry_jitter_pct;
	long long ready_probe_max_age_ms;
	long long max_streams_per_tenant;
	long long max_streams_per_user;
	long long stream_quota_lease_ms;
	long long max_streams;
	long long max_lifetime_ms;
	long long lifetime_jitter_pct;
	long long max_buffer_bytes;
	long long shutdown_grace_ms;
	long long stream_session_connect_s;
	long long stream_session_max_age_s;
	long long history_max_len;
	long long history_max_age_s;
	/* security */
	char *internal_secret;
	/* store */
	int store_backend;             /* enum store_backend */
	char *store_path;
	char *store_postgres;          /* libpq connection string */
	long long store_busy_timeout_ms;
	long long store_statement_timeout_ms;
	/* redis */
	char *redis_host;
	long long redis_port;
	char *redis_password;
	char *redis_sentinels;         /* "host:port,host:port"; "" for none */
	char *redis_sentinel_master;
	char *redis_sentinel_password;
	long long redis_connect_timeout_ms;
	long long redis_command_timeout_ms;
	long long redis_backoff_max_ms;
	/* cache */
	long long cache_jitter_pct;
	long long cache_negative_ttl_ms;
	long long device_cache_ttl_s;
	long long device_list_cache_ttl_s;
	long long recent_cache_ttl_s;
	long long profile_cache_ttl_s;
	long long audit_cache_ttl_s;
	/* telemetry */
	long long telemetry_retention_s;
	long long telemetry_max_points;
	/* auth */
	char *jwt_keys;
	char *jwt_issuer;
	char *jwt_audience;
	long long token_ttl_s;
	long long token_leeway_s;
	long long session_ttl_s;
	long long session_cache_ttl_s;
	long long pbkdf2_iterations;
	long long session_purge_interval_s;
	long long login_attempts_per_address;
	long long login_failures_per_user;
	long long login_failure_window_s;
	long long max_concurrent_hashes;
	char *trusted_proxies;
	/* resilience */
	long long breaker_failures;
	long long breaker_window_ms;
	long long breaker_open_ms;
	long long breaker_probes;
	long long retries;
	long long retry_backoff_ms;
	/* ratelimit */
	long long rl_reads_per_min;
	long long rl_writes_per_min;
	long long rl_publish_per_min;
	long long rl_streams_per_min;
};

/* Environment variable naming the config file when --config is not given. */
#define CONFIG_FILE_ENV "FCGI_SSE_CONFIG"

/* Fills cfg with the built-in defaults. Returns 0, or -1 when memory ran
 * out. Release with config_release. */
int config_init_defaults(struct config *cfg);

/* Applies the JSON file at path over cfg. Returns 0, or -1 with a
 * one-line message in err (it never contains a secret value). */
int config_load_file(struct config *cfg, const char *path, struct buf *err);

/* Applies the FCGI_SSE_* variables of envp (NULL-terminated "K=V" strings)
 * over cfg; CONFIG_FILE_ENV is skipped. Returns 0, or -1 with a message. */
int config_load_env(struct config *cfg, char *const *envp, struct buf *err);

/* Checks rules that span several entries. Returns 0, or -1 with a message. */
int config_validate(const struct config *cfg, struct buf *err);

/* Appends the effective configuration as pretty JSON to out, with every
 * secret replaced by "<redacted>" (or "" when unset). Returns 0 or -1. */
int config_dump(const struct config *cfg, struct buf *out);

/* Appends a Markdown table of every entry (name, env, type, default,
 * bounds, meaning) to out; docs/CONFIG.md is generated from it. */
int config_describe(struct buf *out);

/* Frees what cfg owns; cfg may be reused after config_init_defaults. */
void config_release(struct config *cfg);

/* Returns the name of a log level ("info"), static storage. */
const char *config_log_level_name(int level);

#endif

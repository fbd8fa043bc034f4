/* settings.h - mtps-proxy's settings: the option table (command line, config file, --help,
 * -T), loading them, and what is derived from them.
 *
 * Where a value comes from: the table's default, then the config file (-c FILE, or
 * SETTINGS_DEFAULT_FILE when that exists), then the command line, which wins. A SIGHUP
 * reload loads them again the same way, from the same command line.
 * Threads: main thread only.
 */
#ifndef MTPS_SETTINGS_H
#define MTPS_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "balancer.h"
#include "opts.h"
#include "policy.h"

/* The file read when -c is not given, if it exists. */
#define SETTINGS_DEFAULT_FILE SYSCONFDIR "/mtps/mtps.conf"

struct settings {
	char *listen;
	struct opt_list backends;
	char *balance;
	char *health_path;
	uint64_t health_interval_ms;
	uint64_t health_timeout_ms;
	int rise;
	int fall;
	uint64_t slow_start_ms;
	int retries;
	int threads;
	int max_connections;
	uint64_t timeout_ms;
	uint64_t conn_memory;
	uint64_t max_body;
	uint64_t cache_size;
	uint64_t max_object_size;
	char *eviction;
	uint64_t upstream_timeout_ms;
	uint64_t connect_timeout_ms;
	uint64_t coalesce_timeout_ms;
	int coalesce_max;
	uint64_t hit_for_miss_ms;
	uint64_t stale_if_error_ms;
	uint64_t heuristic_max_ms;
	char *set_cookie;
	bool cache_status_key;
	uint64_t stream_buffer;
	char *host_header;
	char *via_name;
	uint64_t drain_timeout_ms;
	char *log_level;
	char *admin;
	char *admin_token;
	char *error_log;
	char *access_log;
	char *access_log_format;
	char *user;
	char *group;
	char *pid_file;
	int ready_fd;
	char *config;		/* the file read, if any (also when it was the default one) */
	bool test_config;
	bool print_config;
	bool help;
	bool version;
};

/* The table; OPT_RESTART marks what a reload cannot change. */
extern const struct opt_def settings_options[];

/* Loads <s> (zeroed here) from defaults, the config file and argv, and checks what the
 * table cannot: listen and backend values, at least one backend (unless only -T, --help or
 * --version is asked for). Returns 0, or -EINVAL (-ENOMEM) with <err> set; an error in the
 * file reads "FILE:LINE: what is wrong". <s> must be freed with settings_free() either way. */
int settings_load(struct settings *s, int argc, char **argv, char *err, size_t errlen);

void settings_free(struct settings *s);

/* The caching choices of <s> (--set-cookie, --heuristic-max), for policy.c. */
struct policy_config settings_policy(const struct settings *s);

/* Splits "ADDR:PORT" or "[V6ADDR]:PORT" into a socket address. Returns 0 or -EINVAL. */
int settings_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* The pool of backends the settings describe (all up). NULL when out of memory. */
struct balancer *settings_make_pool(const struct settings *s);

/* --max-object-size, or its default: a 256th of the cache. */
size_t settings_max_object(const struct settings *s);

#endif

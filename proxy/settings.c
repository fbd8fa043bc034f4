/* settings.c - mtps-proxy's option table and how settings are loaded (see settings.h). */
#include "config.h"

#include "settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "accesslog.h"
#include "cache.h"
#include "log.h"

static const char *const host_header_choices[] = { "client", "backend", NULL };
static const char *const set_cookie_choices[] = { "store", "refuse", NULL };

#define S(field) offsetof(struct settings, field)
#define DAY_MS (86400LL * 1000)

const struct opt_def settings_options[] = {
	{ "listen", 'l', OPT_STRING, OPT_RESTART, S(listen), "ADDR:PORT", "127.0.0.1:8080", 0, 0,
	  "address and port for clients; port 0 picks a free one ([::1]:8080 for IPv6)", NULL },
	{ "backend", 'B', OPT_LIST, 0, S(backends), "HOST:PORT[,weight=N]", NULL, 0, 0,
	  "an origin server to forward to; one at least", NULL },
	{ "balance", 0, OPT_STRING, 0, S(balance), "POLICY", "round-robin", 0, 0,
	  "how misses spread: round-robin, least-conn, hash or random-two",
	  balance_policy_names },
	{ "health-path", 0, OPT_STRING, 0, S(health_path), "PATH", "/health", 0, 0,
	  "active health checks GET this path on every backend", NULL },
	{ "health-interval", 0, OPT_DURATION, 0, S(health_interval_ms), "SECONDS", "2", 0, DAY_MS,
	  "time between health checks of a backend; 0 turns them off", NULL },
	{ "health-timeout", 0, OPT_DURATION, 0, S(health_timeout_ms), "SECONDS", "1", 100, DAY_MS,
	  "a health check not answered within this fails", NULL },
	{ "rise", 0, OPT_INT, 0, S(rise), "N", "2", 1, 100,
	  "passing checks in a row that bring a backend back", NULL },
	{ "fall", 0, OPT_INT, 0, S(fall), "N", "3", 1, 100,
	  "failed checks (or failed requests) in a row that take it out", NULL },
	{ "slow-start", 0, OPT_DURATION, 0, S(slow_start_ms), "SECONDS", "10", 0, DAY_MS,
	  "a returning backend's weight ramps up over this long", NULL },
	{ "retries", 0, OPT_INT, 0, S(retries), "N", "2", 0, 7,
	  "other backends a failed request may try before an answer was sent", NULL },
	{ "threads", 0, OPT_INT, OPT_RESTART, S(threads), "N", "0", 0, 1024,
	  "worker threads for clients; 0 means one per CPU core", NULL },
	{ "max-connections", 0, OPT_INT, OPT_RESTART, S(max_connections), "N", "4096", 1, 1000000,
	  "most concurrent client connections", NULL },
	{ "timeout", 0, OPT_DURATION, OPT_RESTART, S(timeout_ms), "SECONDS", "60", 1000, DAY_MS,
	  "close a client connection idle this long", NULL },
	{ "conn-memory", 0, OPT_SIZE, OPT_RESTART, S(conn_memory), "SIZE", "16K", 4096, 1 << 24,
	  "memory per client connection for its request line and fields", NULL },
	{ "max-body", 0, OPT_SIZE, 0, S(max_body), "SIZE", "16M", 0, 1LL << 32,
	  "largest request body forwarded (413 past it)", NULL },
	{ "cache-size", 0, OPT_SIZE, 0, S(cache_size), "SIZE", "256M", 0, 1LL << 44,
	  "memory for stored responses", NULL },
	{ "max-object-size", 0, OPT_SIZE, 0, S(max_object_size), "SIZE", "0", 0, 1LL << 44,
	  "largest response stored; bigger ones stream through (0: cache size / 256)", NULL },
	{ "eviction", 0, OPT_STRING, OPT_RESTART, S(eviction), "POLICY", "sieve", 0, 0,
	  "what leaves a full cache first: sieve or lru", cache_policy_names },
	{ "upstream-timeout", 0, OPT_DURATION, 0, S(upstream_timeout_ms), "SECONDS", "30", 100,
	  DAY_MS, "longest wait for a backend's response fields, or between its body bytes (504)",
	  NULL },
	{ "connect-timeout", 0, OPT_DURATION, 0, S(connect_timeout_ms), "SECONDS", "5", 100,
	  DAY_MS, "longest wait for a backend connection", NULL },
	{ "coalesce-timeout", 0, OPT_DURATION, 0, S(coalesce_timeout_ms), "SECONDS", "10", 0,
	  DAY_MS, "longest a request waits on another's fetch before fetching alone", NULL },
	{ "coalesce-max", 0, OPT_INT, 0, S(coalesce_max), "N", "1024", 1, 1000000,
	  "most requests sharing one fetch", NULL },
	{ "hit-for-miss", 0, OPT_DURATION, 0, S(hit_for_miss_ms), "SECONDS", "10", 0, DAY_MS,
	  "how long requests for an uncacheable URL skip coalescing", NULL },
	{ "stale-if-error", 0, OPT_DURATION, 0, S(stale_if_error_ms), "SECONDS", "0", 0,
	  365 * DAY_MS, "serve a stale response this long past its freshness when the origin fails "
	  "(RFC 5861); 0: only when the response says so", NULL },
	{ "heuristic-max", 0, OPT_DURATION, 0, S(heuristic_max_ms), "SECONDS", "86400", 0,
	  365 * DAY_MS, "longest heuristic freshness (10 % of the time since Last-Modified)",
	  NULL },
	{ "set-cookie", 0, OPT_STRING, 0, S(set_cookie), "WHAT", "store", 0, 0,
	  "responses with Set-Cookie: store them (as RFC 9111 allows) or refuse to",
	  set_cookie_choices },
	{ "cache-status-key", 0, OPT_FLAG, 0, S(cache_status_key), NULL, NULL, 0, 0,
	  "add the cache key to the Cache-Status field", NULL },
	{ "stream-buffer", 0, OPT_SIZE, 0, S(stream_buffer), "SIZE", "1M", 16384, 1LL << 30,
	  "most bytes held per response that is not stored, for slow clients", NULL },
	{ "host-header", 0, OPT_STRING, 0, S(host_header), "WHICH", "client", 0, 0,
	  "Host sent to the backend: the client's, or the backend's address",
	  host_header_choices },
	{ "via-name", 0, OPT_STRING, OPT_RESTART, S(via_name), "NAME", "mtps", 0, 0,
	  "this proxy's name in Via fields", NULL },
	{ "drain-timeout", 0, OPT_DURATION, 0, S(drain_timeout_ms), "SECONDS", "10", 0, DAY_MS,
	  "on SIGTERM, longest wait for requests in flight", NULL },
	{ "log-level", 0, OPT_STRING, 0, S(log_level), "LEVEL", "info", 0, 0,
	  "error, warn, info or debug", log_level_names },
	{ "admin", 0, OPT_STRING, OPT_RESTART, S(admin), "ADDR:PORT", "127.0.0.1:9080", 0, 0,
	  "the admin listener (metrics, stats, dashboard, purge); off: none", NULL },
	{ "admin-token", 0, OPT_STRING, OPT_RESTART, S(admin_token), "TOKEN", NULL, 0, 0,
	  "admin requests but the dashboard page need Authorization: Bearer TOKEN", NULL },
	{ "error-log", 0, OPT_STRING, 0, S(error_log), "FILE", NULL, 0, 0,
	  "write the error log to FILE instead of standard error; SIGUSR1 reopens it", NULL },
	{ "access-log", 0, OPT_STRING, 0, S(access_log), "FILE", "off", 0, 0,
	  "one line per request to FILE, or off; SIGUSR1 reopens it", NULL },
	{ "access-log-format", 0, OPT_STRING, 0, S(access_log_format), "FORMAT", "combined", 0, 0,
	  "combined (Apache/nginx, plus cache status and times) or json (one object a line)",
	  accesslog_format_names },
	{ "user", 0, OPT_STRING, OPT_RESTART, S(user), "USER", NULL, 0, 0,
	  "when started as root, switch to USER after binding", NULL },
	{ "group", 0, OPT_STRING, OPT_RESTART, S(group), "GROUP", NULL, 0, 0,
	  "when started as root, switch to GROUP (default: USER's group)", NULL },
	{ "pid-file", 0, OPT_STRING, OPT_RESTART, S(pid_file), "FILE", NULL, 0, 0,
	  "write the process id to FILE once listening; removed at exit", NULL },
	{ "ready-fd", 0, OPT_INT, OPT_CLI_ONLY, S(ready_fd), "FD", "-1", -1, 65535,
	  "once listening, write the port (and the admin port) and a newline to FD", NULL },
	{ "config", 'c', OPT_STRING, OPT_CLI_ONLY, S(config), "FILE", NULL, 0, 0,
	  "read settings from FILE first (default: " SETTINGS_DEFAULT_FILE
	  " if it exists); the command line wins", NULL },
	{ "test-config", 't', OPT_FLAG, OPT_CLI_ONLY, S(test_config), NULL, NULL, 0, 0,
	  "check the settings and the config file, then exit (0 when fine, 2 when not)", NULL },
	{ "print-config", 'T', OPT_FLAG, OPT_CLI_ONLY, S(print_config), NULL, NULL, 0, 0,
	  "print the effective settings and exit", NULL },
	{ "help", 'h', OPT_FLAG, OPT_CLI_ONLY, S(help), NULL, NULL, 0, 0,
	  "show this help and exit", NULL },
	{ "version", 'V', OPT_FLAG, OPT_CLI_ONLY, S(version), NULL, NULL, 0, 0,
	  "show the version and exit", NULL },
	OPT_END
};

int settings_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *colon, *a = s;
	size_t alen;
	long long port;

	memset(ss, 0, sizeof(*ss));
	colon = strrchr(s, ':');
	if (colon == NULL || opts_parse_int(colon + 1, &port) || port < 0 || port > 65535)
		return -EINVAL;
	alen = (size_t)(colon - s);
	if (alen >= 2 && s[0] == '[' && s[alen - 1] == ']') {
		a++;
		alen -= 2;
	}
	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, a, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -EINVAL;
}

/* The checks the table cannot express, for one value from the file or the command line. */
static int check_value(const struct opt_def *o, const char *value, char *err, size_t errlen)
{
	if (strcmp(o->name, "listen") == 0) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (settings_parse_listen(value, &ss, &len)) {
			snprintf(err, errlen, "want ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
			return -EINVAL;
		}
	} else if (strcmp(o->name, "backend") == 0) {
		char name[BALANCER_MAX_NAME], why[256], prefix[64];
		unsigned weight;
		size_t n;

		if (balancer_parse_spec(value, name, sizeof(name), &weight, why, sizeof(why)) == 0)
			return 0;
		/* the value is named once, by the caller */
		snprintf(prefix, sizeof(prefix), "'%s': ", value);
		n = strlen(prefix);
		snprintf(err, errlen, "%s", strncmp(why, prefix, n) == 0 ? why + n : why);
		return -EINVAL;
	} else if (strcmp(o->name, "admin") == 0 && strcmp(value, "off") != 0) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (settings_parse_listen(value, &ss, &len)) {
			snprintf(err, errlen, "want ADDR:PORT, e.g. 127.0.0.1:9080, or off");
			return -EINVAL;
		}
	} else if (strcmp(o->name, "health-path") == 0 && value[0] != '/') {
		snprintf(err, errlen, "it must start with /");
		return -EINVAL;
	} else if ((strcmp(o->name, "error-log") == 0 || strcmp(o->name, "pid-file") == 0 ||
		    (strcmp(o->name, "access-log") == 0 && strcmp(value, "off") != 0)) &&
		   value[0] == '\0') {
		snprintf(err, errlen, "want a file name");
		return -EINVAL;
	}
	return 0;
}

/* Counts the lines of <path> (for an error about the file as a whole). */
static unsigned count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	int c, last = '\n';

	if (f == NULL)
		return 1;
	while ((c = getc(f)) != EOF) {
		if (c == '\n')
			n++;
		last = c;
	}
	fclose(f);
	if (last != '\n')
		n++;
	return n ? n : 1;
}

int settings_load(struct settings *s, int argc, char **argv, char *err, size_t errlen)
{
	const char *file;
	int r;

	memset(s, 0, sizeof(*s));
	r = opts_set_defaults(settings_options, s, err, errlen);
	if (r)
		return r;
	file = opts_peek_arg(settings_options, argc, argv, "config");
	if (file == NULL && access(SETTINGS_DEFAULT_FILE, F_OK) == 0)
		file = SETTINGS_DEFAULT_FILE;
	if (file) {
		r = opts_parse_file_checked(settings_options, s, file, check_value, err, errlen);
		if (r)
			return r;
	}
	r = opts_parse_args(settings_options, s, argc, argv, err, errlen);
	if (r)
		return r;
	if (file && s->config == NULL) {
		s->config = strdup(file);	/* the default one: a reload reads it again */
		if (s->config == NULL) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	if (s->help || s->version)
		return 0;
	/* the command line's values; the file's were checked line by line */
	for (const struct opt_def *o = settings_options; o->name; o++) {
		const void *p = (const char *)s + o->offset;
		char why[256];

		if (o->type == OPT_STRING && *(char *const *)p) {
			const char *v = *(char *const *)p;

			if (check_value(o, v, why, sizeof(why))) {
				snprintf(err, errlen, "bad value '%s' for %s: %s", v, o->name, why);
				return -EINVAL;
			}
		} else if (o->type == OPT_LIST) {
			const struct opt_list *l = p;

			for (size_t i = 0; i < l->n; i++) {
				if (check_value(o, l->v[i], why, sizeof(why))) {
					snprintf(err, errlen, "bad value '%s' for %s: %s", l->v[i],
						 o->name, why);
					return -EINVAL;
				}
			}
		}
	}
	if (s->backends.n == 0 && !(s->print_config && !s->test_config)) {
		if (file)
			snprintf(err, errlen,
				 "%s:%u: no backend: add a line 'backend HOST:PORT' (one per "
				 "origin) or give --backend", file, count_lines(file));
		else
			snprintf(err, errlen,
				 "no backend: give --backend HOST:PORT (once per origin)");
		return -EINVAL;
	}
	if (strcmp(s->admin, "off") != 0) {
		if (strcmp(s->admin, s->listen) == 0 && strcmp(strrchr(s->admin, ':'), ":0") != 0) {
			snprintf(err, errlen, "admin and listen are both %s: the admin listener needs "
				 "an address of its own", s->admin);
			return -EINVAL;
		}
		if (!admin_address_is_loopback(s->admin) &&
		    (s->admin_token == NULL || s->admin_token[0] == '\0')) {
			snprintf(err, errlen, "admin listener on %s, which is not loopback, without "
				 "an admin-token: give --admin-token TOKEN", s->admin);
			return -EINVAL;
		}
	}
	if (s->backends.n > BALANCER_MAX_BACKENDS) {
		snprintf(err, errlen, "too many backends: at most %d", BALANCER_MAX_BACKENDS);
		return -EINVAL;
	}
	return 0;
}

void settings_free(struct settings *s)
{
	opts_free(settings_options, s);
}

struct balancer *settings_make_pool(const struct settings *s)
{
	struct balancer_config cfg = {
		.rise = (unsigned)s->rise,
		.fall = (unsigned)s->fall,
		.slow_start_ms = s->slow_start_ms,
		.seed = (uint64_t)getpid() ^ (uint64_t)time(NULL),
	};
	char names[BALANCER_MAX_BACKENDS][BALANCER_MAX_NAME], why[256];
	const char *np[BALANCER_MAX_BACKENDS];
	unsigned weights[BALANCER_MAX_BACKENDS];
	size_t n = s->backends.n < BALANCER_MAX_BACKENDS ? s->backends.n : BALANCER_MAX_BACKENDS;

	for (int p = 0; balance_policy_names[p]; p++)
		if (strcmp(s->balance, balance_policy_names[p]) == 0)
			cfg.policy = (enum balance_policy)p;
	for (size_t i = 0; i < n; i++) {
		balancer_parse_spec(s->backends.v[i], names[i], sizeof(names[i]), &weights[i], why,
				    sizeof(why));
		np[i] = names[i];
	}
	return balancer_new(&cfg, np, weights, n);
}

size_t settings_max_object(const struct settings *s)
{
	return s->max_object_size ? (size_t)s->max_object_size : (size_t)(s->cache_size / 256);
}

struct policy_config settings_policy(const struct settings *s)
{
	return (struct policy_config){
		.refuse_set_cookie = strcmp(s->set_cookie, "refuse") == 0,
		.heuristic_max = (long long)(s->heuristic_max_ms / 1000),
	};
}

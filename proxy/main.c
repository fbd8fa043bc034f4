/* main.c - mtps-proxy: a caching reverse proxy in front of an HTTP backend.
 *
 * Threads: main() parses options, binds, starts the upstream thread and libmicrohttpd's
 * worker pool, then only waits for signals. The workers run frontend.c; the upstream
 * thread runs upstream.c. SIGTERM/SIGINT drain: stop accepting, let the requests in
 * flight finish (bounded by --drain-timeout), exit 0.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "admin.h"
#include "balancer.h"
#include "cache.h"
#include "frontend.h"
#include "inflight.h"
#include "log.h"
#include "metrics.h"
#include "opts.h"
#include "server.h"
#include "upstream.h"

#define PROG "mtps-proxy"
#define HUP_MESSAGE "reloading is not supported yet; nothing changed"
#define HIT_FOR_MISS_MAX 100000	/* keys remembered as uncacheable at once */

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
	uint64_t stream_buffer;
	char *host_header;
	char *via_name;
	uint64_t drain_timeout_ms;
	char *log_level;
	char *admin;
	char *admin_token;
	int ready_fd;
	char *config;
	bool print_config;
	bool help;
	bool version;
};

static const char *const host_header_choices[] = { "client", "backend", NULL };

#define S(field) offsetof(struct settings, field)
#define DAY_MS (86400LL * 1000)

static const struct opt_def options[] = {
	{ "listen", 'l', OPT_STRING, 0, S(listen), "ADDR:PORT", "127.0.0.1:8080", 0, 0,
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
	{ "threads", 't', OPT_INT, 0, S(threads), "N", "0", 0, 1024,
	  "worker threads for clients; 0 means one per CPU core", NULL },
	{ "max-connections", 0, OPT_INT, 0, S(max_connections), "N", "4096", 1, 1000000,
	  "most concurrent client connections", NULL },
	{ "timeout", 0, OPT_DURATION, 0, S(timeout_ms), "SECONDS", "60", 1000, DAY_MS,
	  "close a client connection idle this long", NULL },
	{ "conn-memory", 0, OPT_SIZE, 0, S(conn_memory), "SIZE", "16K", 4096, 1 << 24,
	  "memory per client connection for its request line and fields", NULL },
	{ "max-body", 0, OPT_SIZE, 0, S(max_body), "SIZE", "16M", 0, 1LL << 32,
	  "largest request body forwarded (413 past it)", NULL },
	{ "cache-size", 0, OPT_SIZE, 0, S(cache_size), "SIZE", "256M", 0, 1LL << 44,
	  "memory for stored responses", NULL },
	{ "max-object-size", 0, OPT_SIZE, 0, S(max_object_size), "SIZE", "0", 0, 1LL << 44,
	  "largest response stored; bigger ones stream through (0: cache size / 256)", NULL },
	{ "eviction", 0, OPT_STRING, 0, S(eviction), "POLICY", "sieve", 0, 0,
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
	{ "stream-buffer", 0, OPT_SIZE, 0, S(stream_buffer), "SIZE", "1M", 16384, 1LL << 30,
	  "most bytes held per response that is not stored, for slow clients", NULL },
	{ "host-header", 0, OPT_STRING, 0, S(host_header), "WHICH", "client", 0, 0,
	  "Host sent to the backend: the client's, or the backend's address",
	  host_header_choices },
	{ "via-name", 0, OPT_STRING, 0, S(via_name), "NAME", "mtps", 0, 0,
	  "this proxy's name in Via fields", NULL },
	{ "drain-timeout", 0, OPT_DURATION, 0, S(drain_timeout_ms), "SECONDS", "10", 0, DAY_MS,
	  "on SIGTERM, longest wait for requests in flight", NULL },
	{ "log-level", 0, OPT_STRING, 0, S(log_level), "LEVEL", "info", 0, 0,
	  "error, warn, info or debug", log_level_names },
	{ "admin", 0, OPT_STRING, 0, S(admin), "ADDR:PORT", "127.0.0.1:9080", 0, 0,
	  "the admin listener (metrics, stats, dashboard, purge); off: none", NULL },
	{ "admin-token", 0, OPT_STRING, 0, S(admin_token), "TOKEN", NULL, 0, 0,
	  "admin requests but the dashboard page need Authorization: Bearer TOKEN", NULL },
	{ "ready-fd", 0, OPT_INT, OPT_CLI_ONLY, S(ready_fd), "FD", "-1", -1, 65535,
	  "once listening, write the port (and the admin port) and a newline to FD", NULL },
	{ "config", 'c', OPT_STRING, OPT_CLI_ONLY, S(config), "FILE", NULL, 0, 0,
	  "read settings from FILE first; the command line wins", NULL },
	{ "print-config", 'T', OPT_FLAG, OPT_CLI_ONLY, S(print_config), NULL, NULL, 0, 0,
	  "print the effective settings and exit", NULL },
	{ "help", 'h', OPT_FLAG, OPT_CLI_ONLY, S(help), NULL, NULL, 0, 0,
	  "show this help and exit", NULL },
	{ "version", 'V', OPT_FLAG, OPT_CLI_ONLY, S(version), NULL, NULL, 0, 0,
	  "show the version and exit", NULL },
	OPT_END
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --backend HOST:PORT [OPTION]...\n"
		"A multithreaded caching reverse proxy: fresh responses are answered from memory,\n"
		"the rest are forwarded to the backend.\n"
		"\n"
		"Options (each also a key in the -c file, except the last five):\n");
	opts_usage(options, out);
	fprintf(out, "\nSee mtps-proxy(8).\n");
}

/* Splits "ADDR:PORT" or "[V6ADDR]:PORT" into a socket address. Returns 0 or -EINVAL. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
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

/* Applies defaults, then the config file named by -c, then the command line. Returns 0,
 * or the exit status (2) after printing why. */
/* Builds the pool from the --backend values (already checked). NULL when out of memory. */
static struct balancer *make_pool(const struct settings *s)
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

static int load_settings(struct settings *s, int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[512];
	const char *file;

	memset(s, 0, sizeof(*s));
	if (opts_set_defaults(options, s, err, sizeof(err)))
		goto fail;
	file = opts_peek_arg(options, argc, argv, "config");
	if (file && opts_parse_file(options, s, file, err, sizeof(err)))
		goto fail;
	if (opts_parse_args(options, s, argc, argv, err, sizeof(err)))
		goto fail;
	if (s->help || s->version)
		return 0;
	if (parse_listen(s->listen, &ss, &len)) {
		snprintf(err, sizeof(err),
			 "bad value '%s' for listen: want ADDR:PORT, e.g. 127.0.0.1:8080", s->listen);
		goto fail;
	}
	if (s->backends.n == 0 && !s->print_config) {
		snprintf(err, sizeof(err), "no backend: give --backend HOST:PORT (once per origin)");
		goto fail;
	}
	for (size_t i = 0; i < s->backends.n; i++) {
		char name[BALANCER_MAX_NAME], why[256];
		unsigned weight;

		if (balancer_parse_spec(s->backends.v[i], name, sizeof(name), &weight, why,
					sizeof(why))) {
			snprintf(err, sizeof(err), "bad value for backend: %s", why);
			goto fail;
		}
	}
	if (strcmp(s->admin, "off") != 0) {
		if (parse_listen(s->admin, &ss, &len)) {
			snprintf(err, sizeof(err),
				 "bad value '%s' for admin: want ADDR:PORT, e.g. 127.0.0.1:9080, or off",
				 s->admin);
			goto fail;
		}
		if (strcmp(s->admin, s->listen) == 0 &&
		    strcmp(strrchr(s->admin, ':'), ":0") != 0) {
			snprintf(err, sizeof(err), "admin and listen are both %s: the admin listener "
				 "needs an address of its own", s->admin);
			goto fail;
		}
		if (!admin_address_is_loopback(s->admin) &&
		    (s->admin_token == NULL || s->admin_token[0] == '\0')) {
			snprintf(err, sizeof(err), "admin listener on %s, which is not loopback, "
				 "without an admin-token: give --admin-token TOKEN", s->admin);
			goto fail;
		}
	}
	if (s->health_path[0] != '/') {
		snprintf(err, sizeof(err), "bad value '%s' for health-path: it must start with /",
			 s->health_path);
		goto fail;
	}
	return 0;
fail:
	fprintf(stderr, PROG ": %s\n", err);
	return 2;
}

/* Creates the listening socket ourselves, so that "address in use" is reported plainly
 * and port 0 can tell which port it got. Returns the socket or -1 after logging. */
static int listen_on(const char *where, int *bound_port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (parse_listen(where, &ss, &len))
		return -1;
	return server_listen(&ss, len, where, bound_port);
}

int main(int argc, char **argv)
{
	struct settings s;
	struct MHD_Daemon *daemon = NULL;
	struct frontend fe;
	struct upstream_config ucfg;
	struct balancer *backends = NULL;
	struct metrics *metrics = NULL;
	struct admin *admin = NULL;
	int admin_fd = -1, admin_port = -1;
	char via[128];
	sigset_t sigs;
	int listen_fd = -1, sigfd = -1, port = 0, status, sig;
	unsigned threads;
	size_t max_object;
	bool curl_ready = false;

	log_init(PROG);
	memset(&fe, 0, sizeof(fe));
	fe.idle_fd = -1;
	status = load_settings(&s, argc, argv);
	if (status)
		goto out_settings;
	if (s.help) {
		usage(stdout);
		goto out_settings;
	}
	if (s.version) {
		printf(PROG " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n");
		goto out_settings;
	}
	if (s.print_config) {
		opts_print(options, &s, stdout);
		goto out_settings;
	}
	log_set_level((enum log_level)log_level_parse(s.log_level));
	status = 1;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);	/* every thread inherits it */
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		goto out;
	}
	curl_ready = true;

	max_object = s.max_object_size ? (size_t)s.max_object_size : (size_t)(s.cache_size / 256);
	snprintf(via, sizeof(via), "1.1 %s", s.via_name);
	fe.cfg = (struct frontend_config){
		.max_body = s.max_body,
		.max_object_size = max_object,
		.stream_window = (size_t)s.stream_buffer,
		.coalesce_max = (unsigned)s.coalesce_max,
		.hit_for_miss_ms = s.hit_for_miss_ms,
		.via = via,
		.preserve_host = strcmp(s.host_header, "client") == 0,
		.retry_after_s = s.health_interval_ms >= 1000 ? (unsigned)(s.health_interval_ms / 1000)
							      : 1,
	};
	backends = make_pool(&s);
	fe.idle_fd = eventfd(0, EFD_CLOEXEC);
	fe.cache = cache_new((size_t)s.cache_size,
			     strcmp(s.eviction, "lru") == 0 ? CACHE_LRU : CACHE_SIEVE);
	fe.inflight = inflight_new(HIT_FOR_MISS_MAX);
	if (sigfd < 0 || fe.idle_fd < 0 || fe.cache == NULL || fe.inflight == NULL ||
	    backends == NULL) {
		log_error("cannot start: %s", strerror(errno ? errno : ENOMEM));
		goto out;
	}
	listen_fd = listen_on(s.listen, &port);
	if (listen_fd < 0)
		goto out;
	if (strcmp(s.admin, "off") != 0) {
		const char *names[BALANCER_MAX_BACKENDS];

		for (size_t i = 0; i < balancer_count(backends); i++)
			names[i] = balancer_backend(backends, i)->name;
		metrics = metrics_new(names, balancer_count(backends));
		if (metrics == NULL) {
			log_error("cannot start: %s", strerror(ENOMEM));
			goto out;
		}
		frontend_observe(&fe, metrics_observe, metrics);
		admin_fd = listen_on(s.admin, &admin_port);
		if (admin_fd < 0)
			goto out;
	}
	ucfg = (struct upstream_config){
		.balancer = backends,
		.via = via,
		.health_path = s.health_path,
		.health_interval_ms = s.health_interval_ms,
		.health_timeout_ms = s.health_timeout_ms,
		.retries = (unsigned)s.retries,
		.connect_timeout_ms = s.connect_timeout_ms,
		.timeout_ms = s.upstream_timeout_ms,
		.coalesce_timeout_ms = s.coalesce_timeout_ms,
		.hooks = &frontend_upstream_hooks,
		.hooks_data = &fe,
	};
	fe.upstream = upstream_start(&ucfg);
	if (fe.upstream == NULL)
		goto out;

	threads = s.threads > 0 ? (unsigned)s.threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;
	/* a single thread is MHD's polling thread itself: no pool */
	struct MHD_OptionItem pool[] = {
		{ threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, frontend_handler, &fe,
		MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, NULL,	/* first, to catch every message */
		MHD_OPTION_LISTEN_SOCKET, listen_fd,
		MHD_OPTION_ARRAY, pool,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)s.max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(s.timeout_ms / 1000),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)s.conn_memory,
		MHD_OPTION_URI_LOG_CALLBACK, frontend_uri_log, &fe,
		MHD_OPTION_NOTIFY_COMPLETED, frontend_completed, &fe,
		MHD_OPTION_UNESCAPE_CALLBACK, frontend_unescape, NULL,
		metrics ? MHD_OPTION_NOTIFY_CONNECTION : MHD_OPTION_END, metrics_connection, metrics,
		MHD_OPTION_END);
	if (daemon == NULL) {
		log_error("cannot start the HTTP server on %s", s.listen);
		goto out;
	}
	listen_fd = -1;		/* MHD's now, until MHD_quiesce_daemon() hands it back */
	log_info("listening on %s (port %d) with %u threads; %zu backends (%s); cache %" PRIu64
		 " bytes, objects up to %zu bytes, %s eviction",
		 s.listen, port, threads, s.backends.n, s.balance, s.cache_size, max_object,
		 s.eviction);
	if (metrics) {
		admin = admin_start(&(struct admin_config){
			.listen_fd = admin_fd,
			.token = s.admin_token,
			.fe = &fe,
			.metrics = metrics,
		});
		if (admin == NULL)
			goto out;
		admin_fd = -1;
		log_info("admin listener on %s (port %d)%s", s.admin, admin_port,
			 s.admin_token && s.admin_token[0] ? ", token required" : "");
	}
	server_report_ready_admin(s.ready_fd, port, admin_port);

	do
		sig = server_read_signal(sigfd, HUP_MESSAGE);
	while (sig == SIGHUP);
	if (sig < 0)
		goto out;
	log_info("%s: stopping; %ld requests in flight", strsignal(sig),
		 atomic_load(&fe.in_flight));
	atomic_store(&fe.draining, true);
	/* No new connections: shutdown() makes the kernel refuse connects at once instead of
	 * queueing them; the descriptor is closed after MHD_stop_daemon(), as MHD requires. */
	listen_fd = MHD_quiesce_daemon(daemon);
	if (listen_fd >= 0)
		shutdown(listen_fd, SHUT_RDWR);
	server_drain(&fe.in_flight, fe.idle_fd, sigfd, s.drain_timeout_ms, HUP_MESSAGE);
	status = 0;
out:
	admin_stop(admin);	/* first: it calls into the upstream thread */
	if (admin_fd >= 0)
		close(admin_fd);
	/* Order matters: stopping the upstream thread fails what still runs and resumes every
	 * waiting connection, which MHD must see before it stops. */
	upstream_stop(fe.upstream);
	if (daemon)
		MHD_stop_daemon(daemon);
	upstream_free(fe.upstream);
	balancer_free(backends);
	if (listen_fd >= 0)
		close(listen_fd);
	inflight_free(fe.inflight);
	metrics_free(metrics);
	cache_free(fe.cache);
	if (fe.idle_fd >= 0)
		close(fe.idle_fd);
	if (sigfd >= 0)
		close(sigfd);
	if (curl_ready)
		curl_global_cleanup();
	if (status == 0)
		log_info("stopped");
out_settings:
	opts_free(options, &s);
	return status;
}

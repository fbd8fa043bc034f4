/* main.c - mtps-origin: the demo back-end server that mtps-proxy sits in front of.
 *
 * Threads: main() parses options, binds, starts libmicrohttpd's thread pool and then only
 * waits for signals; MHD's workers run api.c; the delay queue's thread (only with
 * --latency-ms) resumes suspended requests. SIGTERM/SIGINT drain: stop accepting, let the
 * requests in flight finish (bounded by --drain-timeout), exit 0.
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
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "log.h"
#include "opts.h"
#include "server.h"
#include "users.h"

#define PROG "mtps-origin"
#define HUP_MESSAGE "mtps-origin has nothing to reload"
#define SEED_TIME 1767225600	/* 2026-01-01T00:00:00Z */

struct settings {
	int port;
	char *bind;
	char *name;
	int threads;
	uint64_t max_age_ms;
	uint64_t large_max_age_ms;
	int latency_ms;
	int seed_users;
	int max_users;
	uint64_t max_body;
	uint64_t max_large;
	int max_connections;
	uint64_t timeout_ms;
	uint64_t drain_timeout_ms;
	char *log_level;
	int ready_fd;
	char *config;
	bool print_config;
	bool help;
	bool version;
};

#define S(field) offsetof(struct settings, field)
#define DAY_MS (86400LL * 1000)

static const struct opt_def options[] = {
	{ "port", 'p', OPT_INT, 0, S(port), "PORT", "3000", 0, 65535,
	  "TCP port to listen on; 0 picks a free one", NULL },
	{ "bind", 'b', OPT_STRING, 0, S(bind), "ADDR", "127.0.0.1", 0, 0,
	  "IPv4 or IPv6 address to listen on (0.0.0.0 or :: for all)", NULL },
	{ "name", 'n', OPT_STRING, 0, S(name), "NAME", NULL, 0, 0,
	  "instance name in X-Served-By and status (default: origin-PORT)", NULL },
	{ "threads", 't', OPT_INT, 0, S(threads), "N", "0", 0, 1024,
	  "worker threads; 0 means one per CPU core", NULL },
	{ "max-age", 0, OPT_DURATION, 0, S(max_age_ms), "SECONDS", "60", 0, 365 * DAY_MS,
	  "Cache-Control max-age on user reads", NULL },
	{ "large-max-age", 0, OPT_DURATION, 0, S(large_max_age_ms), "SECONDS", "86400", 0,
	  365 * DAY_MS, "Cache-Control max-age on /api/large", NULL },
	{ "latency-ms", 0, OPT_INT, 0, S(latency_ms), "N", "0", 0, 600000,
	  "simulated processing delay on /api/ routes (not /health)", NULL },
	{ "seed-users", 0, OPT_INT, 0, S(seed_users), "N", "5", 0, 10000000,
	  "users created at start", NULL },
	{ "max-users", 0, OPT_INT, 0, S(max_users), "N", "100000", 1, 100000000,
	  "most users the table holds (507 past it)", NULL },
	{ "max-body", 0, OPT_SIZE, 0, S(max_body), "SIZE", "1M", 0, 1LL << 30,
	  "largest request body (413 past it)", NULL },
	{ "max-large", 0, OPT_SIZE, 0, S(max_large), "SIZE", "64G", 0, 1LL << 50,
	  "largest size /api/large serves", NULL },
	{ "max-connections", 0, OPT_INT, 0, S(max_connections), "N", "1024", 1, 1000000,
	  "most concurrent client connections", NULL },
	{ "timeout", 0, OPT_DURATION, 0, S(timeout_ms), "SECONDS", "60", 1000, DAY_MS,
	  "close a connection idle this long", NULL },
	{ "drain-timeout", 0, OPT_DURATION, 0, S(drain_timeout_ms), "SECONDS", "10", 0, DAY_MS,
	  "on SIGTERM, longest wait for requests in flight", NULL },
	{ "log-level", 0, OPT_STRING, 0, S(log_level), "LEVEL", "info", 0, 0,
	  "error, warn, info or debug", log_level_names },
	{ "ready-fd", 0, OPT_INT, OPT_CLI_ONLY, S(ready_fd), "FD", "-1", -1, 65535,
	  "once listening, write the port and a newline to FD and close it", NULL },
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
		"Usage: " PROG " [OPTION]...\n"
		"The mtps demo origin: a users CRUD JSON API, large-data and status endpoints.\n"
		"\n"
		"Options (each also a key in the -c file, except the last five):\n");
	opts_usage(options, out);
	fprintf(out,
		"\n"
		"Routes: GET /health, GET /api/test, GET|POST /api/users,\n"
		"        GET|PUT|PATCH|DELETE /api/users/ID, GET /api/large?size=BYTES\n"
		"See mtps-origin(8).\n");
}

static bool address_valid(const char *addr)
{
	struct in6_addr a;

	return inet_pton(AF_INET, addr, &a) == 1 || inet_pton(AF_INET6, addr, &a) == 1;
}

/* Applies defaults, then the config file named by -c, then the command line. Returns 0,
 * or the exit status (2) after printing why. */
static int load_settings(struct settings *s, int argc, char **argv)
{
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
	if (!address_valid(s->bind)) {
		snprintf(err, sizeof(err), "bad value '%s' for bind: not an IPv4 or IPv6 address",
			 s->bind);
		goto fail;
	}
	return 0;
fail:
	fprintf(stderr, PROG ": %s\n", err);
	return 2;
}

/* Creates the listening socket ourselves, so that "address in use" is reported plainly
 * and --port 0 can tell which port it got. Returns the socket or -1 after logging. */
static int listen_on(const char *addr, int port, int *bound_port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char where[INET6_ADDRSTRLEN + 16];

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	} else {
		log_error("--bind %s: not an IPv4 or IPv6 address", addr);
		return -1;
	}
	snprintf(where, sizeof(where), "%s port %d", addr, port);
	return server_listen(&ss, len, where, bound_port);
}

static int seed(struct users *users, int n)
{
	for (int i = 1; i <= n; i++) {
		char name[32], email[64];
		int r;

		snprintf(name, sizeof(name), "User %d", i);
		snprintf(email, sizeof(email), "user%d@example.com", i);
		/* a fixed time, so that every instance serves the same bytes for them */
		r = users_create(users, name, email, SEED_TIME, NULL);
		if (r) {
			log_error("cannot seed user %d: %s", i, strerror(-r));
			return -1;
		}
	}
	return 0;
}

/* Waits for SIGTERM or SIGINT. */
static int wait_for_stop(int sigfd)
{
	int sig;

	do
		sig = server_read_signal(sigfd, HUP_MESSAGE);
	while (sig == SIGHUP);
	return sig;
}

int main(int argc, char **argv)
{
	struct settings s;
	struct MHD_Daemon *daemon = NULL;
	struct api api;
	char name[64];
	sigset_t sigs;
	int listen_fd = -1, sigfd = -1, port = 0, status = 1, sig;
	unsigned threads;

	log_init(PROG);
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

	/* Every thread started from here on inherits the blocked set; main reads the signals
	 * from a signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);	/* a logrotate that signals every mtps process: no files */
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	memset(&api, 0, sizeof(api));
	api.idle_fd = eventfd(0, EFD_CLOEXEC);
	api.users = users_new((size_t)s.max_users);
	if (sigfd < 0 || api.idle_fd < 0 || api.users == NULL) {
		log_error("cannot start: %s", strerror(errno));
		goto out;
	}
	if (s.seed_users > s.max_users)
		s.seed_users = s.max_users;
	if (seed(api.users, s.seed_users))
		goto out;
	listen_fd = listen_on(s.bind, s.port, &port);
	if (listen_fd < 0)
		goto out;
	if (s.name == NULL) {
		snprintf(name, sizeof(name), "origin-%d", port);
		s.name = strdup(name);
		if (s.name == NULL)
			goto out;
	}
	if (s.latency_ms > 0) {
		api.delay = delay_start((size_t)s.max_connections);
		if (api.delay == NULL) {
			log_error("cannot start the delay thread: %s", strerror(errno));
			goto out;
		}
	}
	api.cfg = (struct api_config){
		.name = s.name,
		.port = port,
		.latency_ms = (unsigned)s.latency_ms,
		.max_age_s = s.max_age_ms / 1000,
		.large_max_age_s = s.large_max_age_ms / 1000,
		.max_body = s.max_body,
		.max_large = s.max_large,
	};
	api.started_ms = delay_now_ms();
	threads = s.threads > 0 ? (unsigned)s.threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;

	/* a single thread is MHD's polling thread itself: no pool */
	struct MHD_OptionItem pool[] = {
		{ threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	daemon = MHD_start_daemon(
		/* poll(), not epoll: MHD_quiesce_daemon() on an epoll thread pool races the
		 * workers removing the listening socket and aborts the process (libmicrohttpd
		 * 0.9.75, still open), and a drain must never crash */
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, api_handler, &api,
		MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, NULL,	/* first, to catch every message */
		MHD_OPTION_LISTEN_SOCKET, listen_fd,
		MHD_OPTION_ARRAY, pool,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)s.max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(s.timeout_ms / 1000),
		MHD_OPTION_NOTIFY_COMPLETED, api_completed, &api,
		MHD_OPTION_UNESCAPE_CALLBACK, api_unescape, NULL,
		MHD_OPTION_END);
	if (daemon == NULL) {
		log_error("cannot start the HTTP server on %s port %d", s.bind, port);
		goto out;
	}
	listen_fd = -1;		/* MHD's now, until MHD_quiesce_daemon() hands it back */
	log_info("%s listening on %s port %d with %u threads (latency %d ms, %d users)",
		 s.name, s.bind, port, threads, s.latency_ms, s.seed_users);
	server_report_ready(s.ready_fd, port);

	sig = wait_for_stop(sigfd);
	if (sig < 0)
		goto out;
	log_info("%s: stopping; %ld requests in flight", strsignal(sig),
		 atomic_load(&api.in_flight));
	atomic_store(&api.draining, true);
	/* No new connections: MHD stops accepting, and shutdown() makes the kernel refuse
	 * connects at once instead of queueing them in the backlog. The descriptor itself is
	 * closed only after MHD_stop_daemon(), as MHD requires with internal threads. */
	listen_fd = MHD_quiesce_daemon(daemon);
	if (listen_fd >= 0)
		shutdown(listen_fd, SHUT_RDWR);
	server_drain(&api.in_flight, api.idle_fd, sigfd, s.drain_timeout_ms, HUP_MESSAGE);
	status = 0;
out:
	/* Order matters: the workers may call delay_add() until MHD_stop_daemon() returns,
	 * so the queue is shut down first (resuming whatever waits; later requests are
	 * answered at once) and freed last. */
	if (api.delay)
		delay_shutdown(api.delay);
	if (daemon)
		MHD_stop_daemon(daemon);	/* closes the listen socket unless quiesced */
	delay_free(api.delay);
	if (listen_fd >= 0)
		close(listen_fd);
	users_free(api.users);
	if (api.idle_fd >= 0)
		close(api.idle_fd);
	if (sigfd >= 0)
		close(sigfd);
	if (status == 0)
		log_info("stopped");
out_settings:
	opts_free(options, &s);
	return status;
}

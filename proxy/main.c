/* main.c - mtps-proxy: a caching reverse proxy in front of an HTTP backend.
 *
 * Threads: main() parses options, binds, starts the upstream thread and libmicrohttpd's
 * worker pool, then only waits for signals. The workers run frontend.c; the upstream
 * thread runs upstream.c. SIGTERM/SIGINT drain: stop accepting, let the requests in
 * flight finish (bounded by --drain-timeout), exit 0. SIGHUP reloads the configuration
 * (reload.c), SIGUSR1 reopens the log files; both run here, on the main thread.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
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

#include "accesslog.h"
#include "balancer.h"
#include "cache.h"
#include "daemon.h"
#include "frontend.h"
#include "inflight.h"
#include "admin.h"
#include "log.h"
#include "metrics.h"
#include "opts.h"
#include "reload.h"
#include "server.h"
#include "settings.h"
#include "upstream.h"

#define PROG "mtps-proxy"
#define HIT_FOR_MISS_MAX 100000	/* keys remembered as uncacheable at once */

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --backend HOST:PORT [OPTION]...\n"
		"       " PROG " -t [-c FILE] [OPTION]...   check the configuration\n"
		"A multithreaded caching reverse proxy: fresh responses are answered from memory,\n"
		"the rest are forwarded to the backend.\n"
		"\n"
		"Options (each also a key in the -c file, except the last six):\n");
	opts_usage(settings_options, out);
	fprintf(out, "\nSignals: HUP reloads the configuration, USR1 reopens the log files, "
		"TERM and\nINT stop after the requests in flight. See mtps-proxy(8) and "
		"mtps.conf(5).\n");
}

/* Creates the listening socket ourselves, so that "address in use" is reported plainly
 * and port 0 can tell which port it got. Returns the socket or -1 after logging. */
static int listen_on(const char *where, int *bound_port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (settings_parse_listen(where, &ss, &len))
		return -1;
	return server_listen(&ss, len, where, bound_port);
}

/* SIGHUP: loads the settings again (the file, then the same command line) and applies
 * them; a file with errors changes nothing. */
static void reload(struct reload_target *t, struct settings *cur, int argc, char **argv)
{
	struct settings next;
	char err[1024];

	log_info("SIGHUP: reloading %s", cur->config ? cur->config : "the command line");
	if (settings_load(&next, argc, argv, err, sizeof(err))) {
		log_error("reload rejected: %s; the old configuration stays", err);
	} else {
		reload_apply(t, cur, &next);
	}
	settings_free(&next);
}

/* Writes <name> as a Structured Field item (RFC 8941 §3.3): a token when it is one, else
 * a quoted string - Cache-Status names the cache so (RFC 9211 §2). */
static void sf_name(const char *name, char *out, size_t len)
{
	bool token = isalpha((unsigned char)name[0]) || name[0] == '*';
	size_t j = 0;

	for (const char *p = name; *p && token; p++)
		token = isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~:/", *p);
	if (token) {
		snprintf(out, len, "%s", name);
		return;
	}
	out[j++] = '"';
	for (const char *p = name; *p && j + 3 < len; p++) {
		if (*p < 0x20 || *p > 0x7e)
			continue;	/* not allowed in an sf-string */
		if (*p == '"' || *p == '\\')
			out[j++] = '\\';
		out[j++] = *p;
	}
	out[j++] = '"';
	out[j] = '\0';
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
	struct reload_target rt = { .fe = &fe, .saved_stderr = -1 };
	char via[128], cache_name[300], err[1024];
	sigset_t sigs;
	int listen_fd = -1, sigfd = -1, port = 0, status, sig, r;
	unsigned threads;
	bool curl_ready = false, pid_written = false;

	log_init(PROG);
	memset(&fe, 0, sizeof(fe));
	fe.idle_fd = -1;
	if (settings_load(&s, argc, argv, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		status = 2;
		goto out_settings;
	}
	status = 0;
	if (s.help) {
		usage(stdout);
		goto out_settings;
	}
	if (s.version) {
		printf(PROG " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n");
		goto out_settings;
	}
	if (s.print_config)
		opts_print(settings_options, &s, stdout);
	if (s.test_config)
		fprintf(stderr, PROG ": the configuration%s%s is fine\n",
			s.config ? " in " : "", s.config ? s.config : "");
	if (s.print_config || s.test_config)
		goto out_settings;
	status = 1;
	rt.saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (s.error_log) {
		if (reload_error_log(&rt, s.error_log, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			goto out_settings;
		}
		log_init(PROG);		/* stderr is a file now, not the journal */
	}
	log_set_level((enum log_level)log_level_parse(s.log_level));
	if (s.config)
		log_info("read %s", s.config);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);	/* every thread inherits it */
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		goto out;
	}
	curl_ready = true;

	snprintf(via, sizeof(via), "1.1 %s", s.via_name);
	sf_name(s.via_name, cache_name, sizeof(cache_name));
	fe.cfg = (struct frontend_config){
		.max_body = s.max_body,
		.max_object_size = settings_max_object(&s),
		.stream_window = (size_t)s.stream_buffer,
		.coalesce_max = (unsigned)s.coalesce_max,
		.hit_for_miss_ms = s.hit_for_miss_ms,
		.via = via,
		.cache_name = cache_name,
		.cache_status_key = s.cache_status_key,
		.stale_if_error_s = (long long)(s.stale_if_error_ms / 1000),
		.preserve_host = strcmp(s.host_header, "client") == 0,
		.retry_after_s = s.health_interval_ms >= 1000 ? (unsigned)(s.health_interval_ms / 1000)
							      : 1,
	};
	backends = settings_make_pool(&s);
	fe.idle_fd = eventfd(0, EFD_CLOEXEC);
	fe.cache = cache_new((size_t)s.cache_size,
			     strcmp(s.eviction, "lru") == 0 ? CACHE_LRU : CACHE_SIEVE);
	fe.inflight = inflight_new(HIT_FOR_MISS_MAX);
	rt.accesslog = accesslog_new();
	if (sigfd < 0 || fe.idle_fd < 0 || fe.cache == NULL || fe.inflight == NULL ||
	    backends == NULL || rt.accesslog == NULL) {
		log_error("cannot start: %s", strerror(errno ? errno : ENOMEM));
		goto out;
	}
	/* opened before dropping root, as the listening socket is */
	r = accesslog_open(rt.accesslog, s.access_log,
			   strcmp(s.access_log_format, "json") == 0 ? ACCESSLOG_JSON
								    : ACCESSLOG_COMBINED);
	if (r) {
		log_error("cannot open the access log %s: %s", s.access_log, strerror(-r));
		goto out;
	}
	frontend_observe(&fe, accesslog_observe, rt.accesslog);
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
	if (s.pid_file) {
		if (daemon_write_pid(s.pid_file, err, sizeof(err))) {
			log_error("%s", err);
			goto out;
		}
		pid_written = true;
	}
	if (daemon_drop_privileges(s.user, s.group, err, sizeof(err))) {
		log_error("%s", err);
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
		.policy = settings_policy(&s),
		.hooks = &frontend_upstream_hooks,
		.hooks_data = &fe,
	};
	fe.upstream = upstream_start(&ucfg);
	if (fe.upstream == NULL)
		goto out;
	backends = NULL;	/* the upstream's now: a reload replaces it there */

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
		 s.listen, port, threads, s.backends.n, s.balance, s.cache_size,
		 settings_max_object(&s), s.eviction);
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

	for (;;) {
		sig = server_read_signal(sigfd, "reloading the configuration");
		if (sig == SIGHUP)
			reload(&rt, &s, argc, argv);
		else if (sig == SIGUSR1)
			reload_reopen_logs(&rt, &s);
		else
			break;
	}
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
	server_drain(&fe.in_flight, fe.idle_fd, sigfd, s.drain_timeout_ms,
		     "ignored: the proxy is stopping");
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
	if (fe.upstream)
		backends = upstream_balancer(fe.upstream);	/* the last reload's pool */
	upstream_free(fe.upstream);
	balancer_free(backends);
	if (listen_fd >= 0)
		close(listen_fd);
	inflight_free(fe.inflight);
	metrics_free(metrics);
	cache_free(fe.cache);
	accesslog_free(rt.accesslog);
	if (fe.idle_fd >= 0)
		close(fe.idle_fd);
	if (sigfd >= 0)
		close(sigfd);
	if (curl_ready)
		curl_global_cleanup();
	if (pid_written)
		daemon_remove_pid(s.pid_file);
	if (status == 0)
		log_info("stopped");
	if (rt.saved_stderr >= 0)
		close(rt.saved_stderr);
out_settings:
	settings_free(&s);
	return status;
}

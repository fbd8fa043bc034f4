/* refserver.c - mtps-refserver: the ceiling for any server built on libmicrohttpd.
 *
 * `make bench` measures mtps-proxy's fresh-hit path against this program. It starts
 * libmicrohttpd with the proxy's daemon flags and answers every request, whatever its method
 * and target, with one response built once at start: --size bytes of the origin's
 * /api/large stream (common/pattern.h) and the headers a cache hit carries. Whatever a
 * request costs here is the least it can cost behind libmicrohttpd, so the proxy's CPU per
 * request is reported as a multiple of this program's.
 *
 * Threads: main() parses options, starts libmicrohttpd (its polling thread, or a pool of
 * --threads workers) and then only waits for SIGTERM or SIGINT, on which it stops the daemon
 * and exits 0. The workers share the one response read-only.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "opts.h"
#include "server.h"
#include "pattern.h"

#define PROG "mtps-refserver"

struct settings {
	char *listen;
	int threads;
	uint64_t size;
	uint64_t conn_memory;
	int ready_fd;
	bool help;
	bool version;
};

#define S(field) offsetof(struct settings, field)

static const struct opt_def options[] = {
	{ "listen", 'l', OPT_STRING, 0, S(listen), "ADDR:PORT", "127.0.0.1:0", 0, 0,
	  "address and port to listen on ([ADDR]:PORT for IPv6); port 0 picks a free one",
	  NULL },
	{ "threads", 't', OPT_INT, 0, S(threads), "N", "1", 1, 1024,
	  "worker threads; 1 means MHD's polling thread alone, no pool", NULL },
	{ "size", 's', OPT_SIZE, 0, S(size), "BYTES", "1K", 0, 1LL << 30,
	  "body size of the one response", NULL },
	{ "conn-memory", 'm', OPT_SIZE, 0, S(conn_memory), "BYTES", "0", 0, 1LL << 30,
	  "per-connection memory pool (MHD_OPTION_CONNECTION_MEMORY_LIMIT); 0 = MHD's default",
	  NULL },
	{ "ready-fd", 0, OPT_INT, 0, S(ready_fd), "FD", "-1", -1, 65535,
	  "once listening, write the port and a newline to FD and close it", NULL },
	{ "help", 'h', OPT_FLAG, 0, S(help), NULL, NULL, 0, 0,
	  "show this help and exit", NULL },
	{ "version", 'V', OPT_FLAG, 0, S(version), NULL, NULL, 0, 0,
	  "show the version and exit", NULL },
	OPT_END
};

/* Marks a connection whose current request has had its first access-handler call. */
static char request_seen;

/* Parses "1.2.3.4:80" or "[::1]:80" into <ss>. Returns 0 or -EINVAL. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(spec, ':');
	char addr[INET6_ADDRSTRLEN + 2];
	size_t addr_len;
	long long port;

	if (colon == NULL || opts_parse_int(colon + 1, &port) || port < 0 || port > 65535)
		return -EINVAL;
	addr_len = (size_t)(colon - spec);
	if (addr_len >= 2 && spec[0] == '[' && spec[addr_len - 1] == ']') {
		spec++;
		addr_len -= 2;
	}
	if (addr_len >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, spec, addr_len);
	addr[addr_len] = '\0';

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
	} else {
		return -EINVAL;
	}
	return 0;
}

/* Builds the one response: <size> bytes of the pattern stream in a buffer that lives as
 * long as the program (MHD_RESPMEM_PERSISTENT: MHD neither copies nor frees it), with the
 * header fields of a fresh cache hit. Returns NULL on failure, after logging. */
static struct MHD_Response *build_response(uint64_t size, void **body)
{
	struct MHD_Response *resp;
	char etag[64];

	*body = malloc(size ? (size_t)size : 1);
	if (*body == NULL) {
		log_error("cannot allocate a %" PRIu64 "-byte body", size);
		return NULL;
	}
	pattern_fill(*body, 0, (size_t)size);
	resp = MHD_create_response_from_buffer((size_t)size, *body, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		log_error("cannot create the response");
		return NULL;
	}
	snprintf(etag, sizeof(etag), "\"large-%" PRIu64 "\"", size);
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				    "application/octet-stream") == MHD_NO ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				    "public, max-age=86400") == MHD_NO ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag) == MHD_NO ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_AGE, "0") == MHD_NO ||
	    MHD_add_response_header(resp, "X-Cache", "HIT") == MHD_NO) {
		log_error("cannot add the response headers");
		MHD_destroy_response(resp);
		return NULL;
	}
	return resp;
}

/* Answers every request with the response in <cls>. libmicrohttpd 0.9.75 answers with
 * "Connection: close" when a response is queued on the first access-handler call of a
 * request, even a GET without a body, so the first call only marks the request (MHD resets
 * *con_cls for the next one) and the response is queued on the second. A request body is
 * read and dropped. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct MHD_Response *resp = cls;

	if (*con_cls == NULL) {
		*con_cls = &request_seen;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	return MHD_queue_response(c, MHD_HTTP_OK, resp);
}

int main(int argc, char **argv)
{
	struct settings s;
	struct sockaddr_storage ss;
	struct MHD_Daemon *daemon = NULL;
	struct MHD_Response *resp = NULL;
	const union MHD_DaemonInfo *info;
	struct MHD_OptionItem tuning[3];
	size_t ntuning = 0;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	void *body = NULL;
	char err[512];
	sigset_t sigs;
	int status = 2, sig;

	log_init(PROG);
	memset(&s, 0, sizeof(s));
	if (opts_set_defaults(options, &s, err, sizeof(err)) ||
	    opts_parse_args(options, &s, argc, argv, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out_settings;
	}
	if (s.help) {
		printf("Usage: " PROG " [OPTION]...\n"
		       "Answers every request with one prebuilt response: the libmicrohttpd\n"
		       "ceiling that `make bench` compares mtps-proxy with.\n\n");
		opts_usage(options, stdout);
		status = 0;
		goto out_settings;
	}
	if (s.version) {
		printf(PROG " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n");
		status = 0;
		goto out_settings;
	}
	if (parse_listen(s.listen, &ss)) {
		fprintf(stderr, PROG ": bad value '%s' for listen: expected ADDR:PORT\n",
			s.listen);
		goto out_settings;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	status = 1;

	/* MHD's threads inherit the blocked set; main() takes the signals with sigwait(). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	resp = build_response(s.size, &body);
	if (resp == NULL)
		goto out;

	/* A single thread is MHD's polling thread itself: no pool. Without --conn-memory
	 * MHD keeps its default pool size (32 KiB). */
	if (s.threads > 1)
		tuning[ntuning++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE,
							     s.threads, NULL };
	if (s.conn_memory > 0)
		tuning[ntuning++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
							     (intptr_t)s.conn_memory, NULL };
	tuning[ntuning] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, resp,
				  MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, NULL,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_ARRAY, tuning,
				  MHD_OPTION_END);
	if (daemon == NULL) {
		log_error("cannot start the HTTP server on %s", s.listen);	/* MHD said why */
		goto out;
	}
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0) {
		log_error("cannot tell which port the server listens on");
		goto out;
	}
	log_info("listening on %s (port %u), %d thread%s, %" PRIu64 "-byte body, "
		 "connection memory %" PRIu64 "%s",
		 s.listen, info->port, s.threads, s.threads == 1 ? "" : "s", s.size,
		 s.conn_memory, s.conn_memory ? "" : " (MHD default)");
	server_report_ready(s.ready_fd, (int)info->port);

	if (sigwait(&sigs, &sig) == 0) {
		log_info("%s: stopping", strsignal(sig));
		status = 0;
	}
out:
	if (daemon)
		MHD_stop_daemon(daemon);
	if (resp)
		MHD_destroy_response(resp);
	free(body);
out_settings:
	opts_free(options, &s);
	return status;
}

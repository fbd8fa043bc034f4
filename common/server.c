/* server.c - the start-up steps every mtps server shares (see server.h). */
#include "config.h"

#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int server_listen(const struct sockaddr_storage *ss, socklen_t len, const char *where,
		  int *bound_port)
{
	struct sockaddr_storage got;
	socklen_t got_len = sizeof(got);
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 1024) < 0) {
		log_error("cannot listen on %s: %s%s", where, strerror(errno),
			  errno == EADDRINUSE ? " (is another server running there?)" : "");
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&got, &got_len);
	*bound_port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
						      : ((struct sockaddr_in6 *)&got)->sin6_port);
	return fd;
}

void server_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("libmicrohttpd: %s", msg);
}

void server_report_ready(int fd, int port)
{
	char line[16];
	int n;

	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%d\n", port);
	if (write(fd, line, (size_t)n) != n)
		log_warn("--ready-fd %d: %s", fd, strerror(errno));
	close(fd);
}

void server_report_ready_admin(int fd, int port, int admin_port)
{
	char line[32];
	int n;

	if (fd < 0)
		return;
	if (admin_port < 0)
		n = snprintf(line, sizeof(line), "%d\n", port);
	else
		n = snprintf(line, sizeof(line), "%d %d\n", port, admin_port);
	if (write(fd, line, (size_t)n) != n)
		log_warn("--ready-fd %d: %s", fd, strerror(errno));
	close(fd);
}

int server_read_signal(int sigfd, const char *hup_message)
{
	struct signalfd_siginfo si;
	ssize_t n;

	do
		n = read(sigfd, &si, sizeof(si));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(si)) {
		log_error("signalfd: %s", strerror(errno));
		return -1;
	}
	if (si.ssi_signo == SIGHUP)
		log_info("SIGHUP: %s", hup_message);
	return (int)si.ssi_signo;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* While draining, SIGHUP and SIGUSR1 (reload, log reopen) are no reason to stop at once. */
static bool stop_ignored(int sig)
{
	return sig == SIGHUP || sig == SIGUSR1;
}

void server_drain(atomic_long *in_flight, int idle_fd, int sigfd, uint64_t timeout_ms,
		  const char *hup_message)
{
	uint64_t deadline = monotonic_ms() + timeout_ms;

	while (atomic_load(in_flight) > 0) {
		struct pollfd pfd[2] = { { idle_fd, POLLIN, 0 }, { sigfd, POLLIN, 0 } };
		uint64_t now = monotonic_ms();
		int r;

		if (now >= deadline) {
			log_warn("drain timeout: closing %ld requests in flight",
				 atomic_load(in_flight));
			return;
		}
		r = poll(pfd, 2, (int)(deadline - now));
		if (r < 0 && errno != EINTR)
			return;
		if ((pfd[1].revents & POLLIN) &&
		    !stop_ignored(server_read_signal(sigfd, hup_message))) {
			log_warn("second stop signal: closing %ld requests in flight",
				 atomic_load(in_flight));
			return;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(idle_fd, &v, sizeof(v)) < 0)
				return;
		}
	}
}

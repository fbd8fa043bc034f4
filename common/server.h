/* server.h - what every mtps server's main() does the same way: create its listening
 * socket, log libmicrohttpd's messages, and tell a supervisor (or a test) it is ready.
 * Called from main() only. */
#ifndef MTPS_SERVER_H
#define MTPS_SERVER_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

/* Creates a listening socket on <ss> (<len> bytes) ourselves, so that "address in use" is
 * reported plainly and port 0 can tell which port it got (*bound_port). <where> names the
 * address in messages. Returns the socket, or -1 after logging why. */
int server_listen(const struct sockaddr_storage *ss, socklen_t len, const char *where,
		  int *bound_port);

/* MHD_OPTION_EXTERNAL_LOGGER: libmicrohttpd's messages as warnings, one line each. */
void server_mhd_log(void *cls, const char *fmt, va_list ap);

/* --ready-fd: writes "<port>\n" to <fd> and closes it; nothing when fd < 0. */
void server_report_ready(int fd, int port);

/* --ready-fd of a server with an admin listener: writes "<port> <admin_port>\n" (or
 * "<port>\n" when admin_port < 0: no admin listener) to <fd> and closes it. */
void server_report_ready_admin(int fd, int port, int admin_port);

/* Reads one signal from <sigfd> (a signalfd), blocking. Returns its number, or -1 after
 * logging. A SIGHUP is logged as <hup_message>. */
int server_read_signal(int sigfd, const char *hup_message);

/* The drain after a stop signal: waits until <in_flight> is 0 (<idle_fd>, an eventfd, is
 * written when it gets there), <timeout_ms> passes, or another stop signal arrives; logs
 * why it stopped waiting early. */
void server_drain(atomic_long *in_flight, int idle_fd, int sigfd, uint64_t timeout_ms,
		  const char *hup_message);

#endif

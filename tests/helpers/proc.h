/* proc.h - start a server binary on a free loopback port, wait until it listens, stop it.
 *
 * The server is started with "--port 0 --ready-fd 3" (mtps-origin), or with "--ready-fd 3"
 * and the caller's "--listen 127.0.0.1:0" (mtps-proxy): it binds a port the kernel picks and
 * writes that port to fd 3 once it accepts connections, so tests need neither fixed ports
 * nor sleeps. MTPS_WRAPPER in the environment (e.g. "valgrind --error-exitcode=99") is put
 * in front of the command. A server dies with SIGKILL when the thread that started it ends,
 * so a failed or timed-out test leaves nothing running. Used from one thread (the test's).
 */
#ifndef MTPS_TEST_PROC_H
#define MTPS_TEST_PROC_H

#include <stdbool.h>
#include <sys/types.h>

struct proc {
	pid_t pid;
	int exit_fd;		/* reads end-of-file once the process has exited */
	int port;		/* what the server reported on its ready fd */
	char url[64];		/* "http://127.0.0.1:PORT" */
	int admin_port;		/* mtps-proxy's admin listener; 0 when it has none */
	char admin_url[64];	/* "http://127.0.0.1:ADMIN_PORT", "" when none */
};

/* Starts <path> with the extra arguments <args> (NULL-terminated, may be NULL) plus
 * "--ready-fd 3", and "--port 0" unless <args> has a --port or a --listen (the proxy's
 * address option) of its own. For the proxy (<args> has --listen) "--admin 127.0.0.1:0" is
 * added unless <args> has an --admin: the admin port it reports goes to p->admin_port. When <stderr_path> is not NULL the server's stderr goes to
 * that file. Waits up to <timeout_ms> for the port.
 * Returns 0, or a negative errno (-ETIMEDOUT, or -ECHILD when the server exited first; the
 * server is then reaped and *p is unusable). */
int proc_start(struct proc *p, const char *path, const char *const *args,
	       const char *stderr_path, unsigned timeout_ms);

/* Sends <sig> and waits up to <timeout_ms> for the exit; kills with SIGKILL after that.
 * Returns the exit status (0-255), 128 + signal number when a signal ended it, or
 * -ETIMEDOUT when it had to be killed. */
int proc_stop(struct proc *p, int sig, unsigned timeout_ms);

/* Waits up to <timeout_ms> for the process to exit by itself; same returns as proc_stop(). */
int proc_wait(struct proc *p, unsigned timeout_ms);

/* Runs <path> with <args> to completion (no --port/--ready-fd added), stdout and stderr
 * captured together into <out> (NUL-terminated, truncated to <outlen>). Returns the exit
 * status as proc_stop() does. */
int proc_run(const char *path, const char *const *args, char *out, size_t outlen,
	     unsigned timeout_ms);

/* Says whether servers run under MTPS_WRAPPER (valgrind): tens of times slower, and their
 * resident size means nothing. */
bool proc_wrapped(void);

/* "<p->url><path>", in one of 8 rotating static buffers: valid until 8 more calls. */
char *proc_url(const struct proc *p, const char *path);

/* Reads a whole small file into <buf> (NUL-terminated). Returns bytes read or -errno. */
long proc_read_file(const char *path, char *buf, size_t len);

#endif

/* proc.c - start and stop servers for integration tests (see proc.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

#define MAX_ARGS 64

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Builds argv: the MTPS_WRAPPER words, <path>, <args>, and <extra>. Returns argc or -1. */
static int build_argv(char **argv, char *wrapper_copy, const char *path,
		      const char *const *args, const char *const *extra)
{
	int n = 0;

	if (wrapper_copy) {
		for (char *save = NULL, *w = strtok_r(wrapper_copy, " ", &save); w;
		     w = strtok_r(NULL, " ", &save)) {
			if (n >= MAX_ARGS - 1)
				return -1;
			argv[n++] = w;
		}
	}
	argv[n++] = (char *)path;
	for (int k = 0; args && args[k]; k++) {
		if (n >= MAX_ARGS - 1)
			return -1;
		argv[n++] = (char *)args[k];
	}
	for (int k = 0; extra && extra[k]; k++) {
		if (n >= MAX_ARGS - 1)
			return -1;
		argv[n++] = (char *)extra[k];
	}
	argv[n] = NULL;
	return n;
}

static int decode_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -EINVAL;
}

/* Forks and execs; the child's fd 3 is <ready_w> (when >= 0), its stdout/stderr go to
 * <out_fd> (when >= 0). Sets *exit_fd to a descriptor that reads end-of-file once the
 * program has exited: the child keeps the other end of a pipe open across exec, and the
 * kernel closes it when the process ends. (pidfd_open would do, but valgrind does not
 * know it.) Returns the pid, or -1 with errno set. */
static pid_t spawn(char **argv, int ready_w, int out_fd, bool both, int *exit_fd)
{
	pid_t parent = getpid();
	int ends[2];
	pid_t pid;

	if (pipe2(ends, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid != 0) {
		close(ends[1]);
		if (pid < 0)
			close(ends[0]);
		else
			*exit_fd = ends[0];
		return pid;
	}
	close(ends[0]);
	/* A test that fails (Check's forked child exits) or times out (it is killed) cannot
	 * stop its servers: the kernel does, instead of leaving them running. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	fcntl(ends[1], F_SETFD, 0);	/* held open by the program until it exits */
	if (out_fd >= 0) {
		if (both)
			dup2(out_fd, STDOUT_FILENO);
		dup2(out_fd, STDERR_FILENO);
	}
	if (ready_w == 3)
		fcntl(3, F_SETFD, 0);	/* keep it across exec */
	else if (ready_w >= 0)
		dup2(ready_w, 3);	/* the copy has no close-on-exec flag */
	execvp(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Says whether <args> choose the listening address themselves: mtps-origin's --port, or
 * mtps-proxy's --listen ADDR:PORT (which has no --port). */
static bool has_port_arg(const char *const *args)
{
	for (int k = 0; args && args[k]; k++)
		if (strcmp(args[k], "--port") == 0 || strncmp(args[k], "--port=", 7) == 0 ||
		    strcmp(args[k], "--listen") == 0 || strncmp(args[k], "--listen=", 9) == 0)
			return true;
	return false;
}

/* Says whether <args> are mtps-proxy's (it alone has --listen) without an --admin: such a
 * proxy gets an admin listener on a free port, never the fixed default. */
static bool wants_admin_port(const char *const *args)
{
	bool proxy = false;

	for (int k = 0; args && args[k]; k++) {
		if (strcmp(args[k], "--admin") == 0 || strncmp(args[k], "--admin=", 8) == 0)
			return false;
		if (strcmp(args[k], "--listen") == 0 || strncmp(args[k], "--listen=", 9) == 0)
			proxy = true;
	}
	return proxy;
}

int proc_start(struct proc *p, const char *path, const char *const *args,
	       const char *stderr_path, unsigned timeout_ms)
{
	static const char *const ready_port[] = { "--port", "0", "--ready-fd", "3", NULL };
	static const char *const ready_only[] = { "--ready-fd", "3", NULL };
	static const char *const ready_admin[] = { "--admin", "127.0.0.1:0", "--ready-fd", "3",
						    NULL };
	const char *wrapper = getenv("MTPS_WRAPPER");
	char *wrapper_copy = wrapper && *wrapper ? strdup(wrapper) : NULL;
	char *argv[MAX_ARGS];
	char line[32] = "";
	size_t got = 0;
	int fds[2], out_fd = -1, r = 0;
	long long deadline = now_ms() + timeout_ms;

	memset(p, 0, sizeof(*p));
	p->exit_fd = -1;
	if (build_argv(argv, wrapper_copy, path, args,
		       wants_admin_port(args) ? ready_admin
		       : has_port_arg(args)   ? ready_only
					      : ready_port) < 0) {
		free(wrapper_copy);
		return -E2BIG;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(wrapper_copy);
		return -errno;
	}
	if (stderr_path) {
		out_fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out_fd < 0) {
			r = -errno;
			goto out;
		}
	}
	p->pid = spawn(argv, fds[1], out_fd, false, &p->exit_fd);
	if (p->pid < 0) {
		r = -errno;
		goto out;
	}
	close(fds[1]);
	fds[1] = -1;
	while (memchr(line, '\n', got) == NULL) {
		struct pollfd pfd = { fds[0], POLLIN, 0 };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			r = -ETIMEDOUT;
			break;
		}
		n = read(fds[0], line + got, sizeof(line) - 1 - got);
		if (n <= 0) {
			r = -ECHILD;	/* closed without a port: it exited */
			break;
		}
		got += (size_t)n;
		if (got >= sizeof(line) - 1) {
			r = -EPROTO;
			break;
		}
	}
	if (r == 0) {
		line[got] = '\0';
		/* "PORT\n", or "PORT ADMIN_PORT\n" from a proxy with an admin listener */
		if (sscanf(line, "%d %d", &p->port, &p->admin_port) < 2)
			p->admin_port = 0;
		snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
		if (p->admin_port > 0)
			snprintf(p->admin_url, sizeof(p->admin_url), "http://127.0.0.1:%d",
				 p->admin_port);
	} else {
		proc_stop(p, SIGKILL, 5000);
	}
out:
	if (fds[1] >= 0)
		close(fds[1]);
	close(fds[0]);
	if (out_fd >= 0)
		close(out_fd);
	free(wrapper_copy);
	return r;
}

int proc_wait(struct proc *p, unsigned timeout_ms)
{
	struct pollfd pfd = { p->exit_fd, POLLIN, 0 };
	int status;

	if (p->pid <= 0)
		return -ECHILD;
	if (poll(&pfd, 1, (int)timeout_ms) == 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		close(p->exit_fd);
		p->exit_fd = -1;
		p->pid = 0;
		return -ETIMEDOUT;
	}
	if (waitpid(p->pid, &status, 0) < 0)
		return -errno;
	if (p->exit_fd >= 0)
		close(p->exit_fd);
	p->exit_fd = -1;
	p->pid = 0;
	return decode_status(status);
}

int proc_stop(struct proc *p, int sig, unsigned timeout_ms)
{
	if (p->pid <= 0)
		return -ECHILD;
	kill(p->pid, sig);
	return proc_wait(p, timeout_ms);
}

int proc_run(const char *path, const char *const *args, char *out, size_t outlen,
	     unsigned timeout_ms)
{
	char tmpl[] = "/tmp/mtps-test-XXXXXX";
	char *argv[MAX_ARGS];
	struct proc p;
	int fd, r;

	if (build_argv(argv, NULL, path, args, NULL) < 0)
		return -E2BIG;
	fd = mkstemp(tmpl);
	if (fd < 0)
		return -errno;
	unlink(tmpl);
	memset(&p, 0, sizeof(p));
	p.pid = spawn(argv, -1, fd, true, &p.exit_fd);
	if (p.pid < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = proc_wait(&p, timeout_ms);
	if (out && outlen) {
		ssize_t n = pread(fd, out, outlen - 1, 0);

		out[n > 0 ? n : 0] = '\0';
	}
	close(fd);
	return r;
}

long proc_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (long)n;
}

char *proc_url(const struct proc *p, const char *path)
{
	static char buf[8][256];
	static int next;
	char *u = buf[next++ % 8];

	snprintf(u, 256, "%s%s", p->url, path);
	return u;
}

bool proc_wrapped(void)
{
	const char *w = getenv("MTPS_WRAPPER");

	return w && *w;
}

/* spawn.c - child servers with a ready fd (see spawn.h). */
#include "config.h"

#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPAWN_MAX_ARGS 64

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int spawn_start(struct spawn *s, const char *path, const char *const *args,
		const char *log_path, unsigned timeout_ms)
{
	const char *argv[SPAWN_MAX_ARGS + 4];
	long long deadline = now_ms() + timeout_ms;
	char buf[32];
	size_t got = 0, n = 0;
	int fds[2], status;
	pid_t pid, parent;

	argv[n++] = path;
	for (size_t i = 0; args && args[i] && n < SPAWN_MAX_ARGS; i++)
		argv[n++] = args[i];
	argv[n++] = "--ready-fd";
	argv[n++] = "3";
	argv[n] = NULL;
	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		int e = -errno;

		close(fds[0]);
		close(fds[1]);
		return e;
	}
	if (pid == 0) {
		int log = open(log_path ? log_path : "/dev/null",
			       O_WRONLY | O_CREAT | O_APPEND, 0644);
		int null = open("/dev/null", O_RDWR);

		if (log >= 0)
			dup2(log, 2);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		/* a suite that dies (Ctrl-C, a closed pipe) takes its servers with it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);	/* it died before the line above */
		if (dup2(fds[1], 3) < 0)
			_exit(127);
		execvp(path, (char *const *)argv);
		fprintf(stderr, "mtps-bench: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = { fds[0], POLLIN, 0 };
		long long left = deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			close(fds[0]);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		r = read(fds[0], buf + got, sizeof(buf) - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fds[0]);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ECHILD;
		}
		got += (size_t)r;
		buf[got] = '\0';
		if (strchr(buf, '\n') || got == sizeof(buf) - 1)
			break;
	}
	close(fds[0]);
	s->pid = pid;
	s->port = atoi(buf);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	return 0;
}

int spawn_stop(struct spawn *s, unsigned timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int status;

	if (s->pid <= 0)
		return 0;
	kill(s->pid, SIGTERM);
	while (now_ms() < deadline) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);

		if (r == s->pid) {
			s->pid = 0;
			return exit_code(status);
		}
		if (r < 0) {
			s->pid = 0;
			return -ECHILD;
		}
		poll(NULL, 0, 10);	/* a child gives no fd to wait on; 10 ms steps */
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	s->pid = 0;
	return -ETIMEDOUT;
}

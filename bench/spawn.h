/* spawn.h - start mtps-origin or mtps-proxy for `mtps-bench suite --spawn`, and stop them.
 *
 * The child gets "--ready-fd 3" and writes its port there once it accepts connections, so
 * the suite waits exactly as long as start-up takes and learns a port the kernel picked.
 * A child gets SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG), so a suite
 * that dies leaves no server behind. Used from the suite's main thread only.
 */
#ifndef MTPS_BENCH_SPAWN_H
#define MTPS_BENCH_SPAWN_H

#include <sys/types.h>

struct spawn {
	pid_t pid;		/* 0: not running */
	int port;
	char url[64];		/* "http://127.0.0.1:PORT" */
};

/* Runs <path> with <args> (NULL-terminated; "--ready-fd 3" is added), stderr to <log_path>
 * (appended; NULL: /dev/null), and waits up to <timeout_ms> for its port. Returns 0, or a
 * negative errno (-ETIMEDOUT, -ECHILD when it exited first; then it is reaped). */
int spawn_start(struct spawn *s, const char *path, const char *const *args,
		const char *log_path, unsigned timeout_ms);

/* Sends SIGTERM, waits up to <timeout_ms>, then SIGKILL. Returns the exit status, 128 +
 * signal, or -ETIMEDOUT when it had to be killed. Nothing when it is not running. */
int spawn_stop(struct spawn *s, unsigned timeout_ms);

#endif

/* reload.h - SIGHUP and SIGUSR1 for mtps-proxy: apply newly loaded settings to the running
 * proxy, and reopen its log files.
 *
 * A reload changes, without dropping a connection or emptying the cache: the backends and
 * how they are balanced and checked (a new pool is built here and swapped in on the upstream
 * thread; backends that keep their name keep their health and counters, fetches running on a
 * removed backend finish there), the retry and timeout settings, the cache's size (shrinking
 * evicts down to it) and what it stores, the log level and the log files. The options marked
 * OPT_RESTART (listening address, threads, connection limits, ...) keep their running value;
 * each one that changed is logged as needing a restart.
 * Threads: main thread only (it waits for the upstream thread to take the new pool).
 */
#ifndef MTPS_RELOAD_H
#define MTPS_RELOAD_H

#include "accesslog.h"
#include "frontend.h"
#include "settings.h"

/* The running parts a reload reaches. */
struct reload_target {
	struct frontend *fe;		/* its cache, upstream and cfg */
	struct accesslog *accesslog;
	int saved_stderr;		/* the original stderr, for when --error-log goes away */
};

/* Points the error log (stderr) at <path>, or back at the original stderr when <path> is
 * NULL. Returns 0 or a negative errno with <err> set and the log as it was. */
int reload_error_log(struct reload_target *t, const char *path, char *err, size_t errlen);

/* Applies <next> (loaded and checked by settings_load()) over the running <cur>. On success
 * returns 0 and <cur> holds the new settings (restart-only options keep their running
 * values) and <next> the old ones, for the caller to free. On failure (a log file that cannot
 * be opened, no memory) returns a negative errno after logging why; nothing changed. */
int reload_apply(struct reload_target *t, struct settings *cur, struct settings *next);

/* SIGUSR1: opens the error log and the access log files again by name (logrotate moved
 * them). Logs what fails; the old files stay in use then. */
void reload_reopen_logs(struct reload_target *t, const struct settings *cur);

#endif

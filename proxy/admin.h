/* admin.h - mtps-proxy's admin listener: a separate small libmicrohttpd daemon (never the
 * client port) serving
 *
 *   GET  /metrics                       Prometheus text format 0.0.4 (metrics.h)
 *   GET  /stats                         the same as JSON, plus health detail and events
 *   GET  /  (and its .js/.css)          the live dashboard, compiled in (dashboard.h)
 *   PURGE /path?query                   removes that URL (every host, every variant)
 *   POST /purge {"url": "http://h/p"}   removes one URL of one host, with its variants
 *   POST /ban {"prefix": "..."} or {"regex": "..."}   removes every URL that matches
 *   GET  /backends                      the backends, as in /stats
 *   POST /backends/NAME/drain|disable|enable           maintenance (NAME = host:port)
 *
 * Answers are JSON; errors are {"error": "...", "status": N}. With a token set, every
 * request but the dashboard's static files needs "Authorization: Bearer TOKEN" (401).
 *
 * Threads: the admin daemon's own (ADMIN_THREADS); it reads the metrics' atomics, asks the
 * upstream thread for the backends' state with upstream_call(), and purges through the
 * cache's and the in-flight table's own locks. Nothing here runs on the request path.
 */
#ifndef MTPS_ADMIN_H
#define MTPS_ADMIN_H

#include "frontend.h"
#include "metrics.h"

#define ADMIN_THREADS 2
#define ADMIN_MAX_BODY 65536		/* largest request body (413 past it) */

struct admin_config {
	int listen_fd;			/* a listening socket; the daemon's once started */
	const char *token;		/* NULL or "": no authentication */
	struct frontend *fe;		/* cache, in-flight table, upstream; outlives the admin */
	struct metrics *metrics;
};

struct admin;

/* Starts the admin daemon. Returns NULL after logging when it cannot. */
struct admin *admin_start(const struct admin_config *cfg);

/* Stops the daemon and frees it (NULL is fine). Call before the upstream thread stops. */
void admin_stop(struct admin *a);

/* Says whether "ADDR:PORT" names a loopback address (127.0.0.0/8, ::1). */
bool admin_address_is_loopback(const char *addr);

#endif

/* metrics.h - mtps-proxy's counters and latency histograms, and their two renderings:
 * Prometheus text (GET /metrics) and JSON (GET /stats) on the admin listener.
 *
 * Collection: metrics_observe() is an exchange observer (frontend_observe()) and
 * metrics_connection() libmicrohttpd's connection notifier; both run on the client worker
 * threads and only add to relaxed atomics and lock-free histograms (hist.h): no lock on the
 * request path. What other modules own - the cache's statistics, the backends' state on the
 * upstream thread - comes in a struct metrics_view the caller fills (admin.c) just before
 * rendering, so that this module stays free of threads and sockets.
 */
#ifndef MTPS_METRICS_H
#define MTPS_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>
#include <microhttpd.h>

#include "balancer.h"
#include "cache.h"
#include "exchange.h"
#include "hist.h"

/* Request methods counted by name; the rest count as "OTHER". */
enum metrics_method {
	METRICS_GET = 0,
	METRICS_HEAD,
	METRICS_POST,
	METRICS_PUT,
	METRICS_DELETE,
	METRICS_PATCH,
	METRICS_OPTIONS,
	METRICS_OTHER,
	METRICS_METHOD_MAX,
};
extern const char *const metrics_method_names[];

/* Status classes: "1xx" .. "5xx", and "none" when no response was sent. */
#define METRICS_CLASS_MAX 6
extern const char *const metrics_class_names[];

struct metrics_backend {
	char name[BALANCER_MAX_NAME];
	struct hist upstream_us;	/* request sent to fields back, uncoalesced fetches */
};

struct metrics {
	atomic_uint_fast64_t requests[METRICS_METHOD_MAX][METRICS_CLASS_MAX][EXCHANGE_CACHE_MAX];
	atomic_uint_fast64_t incomplete;	/* responses cut before their end */
	atomic_uint_fast64_t coalesced;		/* requests that shared another's fetch */
	atomic_uint_fast64_t bytes_in;		/* request bodies */
	atomic_uint_fast64_t bytes_out;		/* response bodies sent */
	atomic_uint_fast64_t connections_total;
	atomic_long connections;		/* open now */
	struct hist client_us;			/* request begun to completed */
	struct hist upstream_us;		/* every backend's */
	/* by name, in the order first seen: a reload may add backends, and those it removes
	 * keep their series until a restart. Slots below nbackends are complete and never
	 * change; a new name is added under add_lock. */
	struct metrics_backend *backends;
	atomic_size_t nbackends;
	pthread_mutex_t add_lock;
	struct timespec started;		/* CLOCK_MONOTONIC */
	time_t started_wall;
};

/* One backend as the upstream thread saw it (filled through upstream_call()). */
struct metrics_backend_view {
	const char *name;
	const char *state;		/* balancer_state_name() */
	const char *admin;		/* backend_admin_names[] */
	int up;
	unsigned weight;		/* configured */
	unsigned effective_weight;	/* now, in BALANCER_WEIGHT_SCALE units */
	unsigned in_flight;
	uint64_t requests, errors, retries;
	int health;
	unsigned checks_passed, checks_failed, passive_failures;
};

struct metrics_event_view {
	double seconds_ago;
	time_t at;			/* wall clock */
	const char *backend;
	const char *state;
	const char *why;
};

/* What the caller gathers from other modules just before rendering. */
struct metrics_view {
	struct cache_stats cache;
	long in_flight;			/* requests begun and not completed */
	struct metrics_backend_view backends[BALANCER_MAX_BACKENDS];
	size_t nbackends;
	struct metrics_event_view events[BALANCER_HISTORY];
	size_t nevents;
	/* client latency over a recent window (admin.c keeps the snapshots); NULL: none */
	const struct hist *recent_client_us;
	double recent_seconds;
};

/* The most backend names one process keeps series for (the pool's bound, twice over for
 * reloads); latencies of others go to the total only. */
#define METRICS_MAX_BACKENDS (2 * BALANCER_MAX_BACKENDS)

/* The counters of backend <name>, added when first seen; NULL when the table is full. */
struct metrics_backend *metrics_backend(struct metrics *m, const char *name);

/* Creates the counters for a pool of backends named <names> (<n> of them). NULL when out
 * of memory. */
struct metrics *metrics_new(const char *const *names, size_t n);
void metrics_free(struct metrics *m);

/* The exchange observer (data = the metrics). */
void metrics_observe(void *data, const struct exchange *ex);

/* MHD_OPTION_NOTIFY_CONNECTION for the client daemon (cls = the metrics). */
void metrics_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
			enum MHD_ConnectionNotificationCode toe);

/* Seconds since metrics_new(). */
double metrics_uptime(const struct metrics *m);

/* Writes every metric in the Prometheus text format 0.0.4 to <out>. */
void metrics_prometheus(const struct metrics *m, const struct metrics_view *v, FILE *out);

/* The same as a JSON object (the caller puts it). NULL when out of memory. */
struct json_object *metrics_json(const struct metrics *m, const struct metrics_view *v);

/* The latency buckets' upper bounds in seconds, for Prometheus' le labels. */
#define METRICS_LATENCY_BOUNDS 15
extern const double metrics_latency_bounds[METRICS_LATENCY_BOUNDS];

#endif

/* frontend.h - mtps-proxy's client side: the libmicrohttpd callbacks.
 *
 * Runs on libmicrohttpd's worker threads. A request is read (its body buffered up to
 * --max-body), then answered from the cache when a fresh copy is stored - a prebuilt
 * response on the stored bytes, no copy - or else its connection is suspended and the
 * fetch handed to the upstream thread; the connection resumes when the response's fields
 * arrive and its body streams from the shared object. No worker ever waits on the network.
 */
#ifndef MTPS_FRONTEND_H
#define MTPS_FRONTEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "cache.h"
#include "exchange.h"
#include "inflight.h"
#include "upstream.h"

struct frontend_config {
	uint64_t max_body;		/* largest request body */
	size_t max_object_size;		/* largest body the cache keeps */
	size_t stream_window;		/* most bytes held per response not kept */
	unsigned coalesce_max;		/* most readers sharing one fetch */
	uint64_t hit_for_miss_ms;	/* how long an uncacheable key skips coalescing */
	const char *via;		/* "1.1 mtps" */
	bool preserve_host;		/* send the client's Host upstream, else the backend's */
	unsigned retry_after_s;		/* Retry-After on a 503 when every backend is down */
	const char *cache_name;		/* in Cache-Status: the --via-name, as an sf-token or
					 * an sf-string (RFC 8941) */
	bool cache_status_key;		/* Cache-Status tells the key */
	long long stale_if_error_s;	/* --stale-if-error: a default window, 0 none */
};

#define FRONTEND_MAX_OBSERVERS 4
#define FRONTEND_INVAL_SLOTS 4096	/* a power of two */

struct frontend_observer {
	exchange_observer_fn *fn;
	void *data;
};

struct frontend {
	struct frontend_config cfg;
	struct frontend_observer observers[FRONTEND_MAX_OBSERVERS];
	unsigned nobservers;
	struct cache *cache;
	struct inflight *inflight;
	struct upstream *upstream;
	atomic_long in_flight;		/* requests begun and not completed */
	atomic_uint_fast64_t vary_gen;	/* the last Vary marker generation given */
	/* Invalidations by URL hash: inval_at[h] is the clock of the last one whose key hashed
	 * to h. A fetch born before it may be outdated and is not stored or joined; a slot
	 * two keys share errs towards not storing. */
	atomic_uint_fast64_t inval_clock;
	atomic_uint_fast64_t inval_at[FRONTEND_INVAL_SLOTS];
	atomic_bool draining;
	int idle_fd;			/* eventfd: written when a drain sees in_flight reach 0 */
};

/* Adds an observer told of every completed request (exchange.h), on the worker thread
 * that completed it. Call before the daemon starts; at most FRONTEND_MAX_OBSERVERS. */
void frontend_observe(struct frontend *fe, exchange_observer_fn *fn, void *data);

/* The hooks the upstream thread calls (upstream_config.hooks, data = the frontend). */
extern const struct upstream_hooks frontend_upstream_hooks;

/* MHD_OPTION_URI_LOG_CALLBACK (cls = the frontend): keeps the raw request target and
 * starts the request's state. */
void *frontend_uri_log(void *cls, const char *uri, struct MHD_Connection *connection);

/* The MHD_AccessHandlerCallback (cls = the frontend). */
enum MHD_Result frontend_handler(void *cls, struct MHD_Connection *connection,
				 const char *url, const char *method, const char *version,
				 const char *upload_data, size_t *upload_data_size,
				 void **con_cls);

/* MHD_OPTION_NOTIFY_COMPLETED (cls = the frontend). */
void frontend_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
			enum MHD_RequestTerminationCode toe);

/* MHD_OPTION_UNESCAPE_CALLBACK: leaves the target as the client wrote it; the proxy
 * forwards it unchanged and keys the cache on it. */
size_t frontend_unescape(void *cls, struct MHD_Connection *connection, char *s);

#endif

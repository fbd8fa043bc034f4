/* exchange.h - what one client request and its answer were, as the front end reports it
 * when the request completes: the access log and the metrics read it.
 *
 * The front end fills a struct exchange on the MHD worker thread that completes the
 * request and calls every observer with it there; an observer must copy what it keeps
 * (the strings live only for the call) and must not block: it runs on the request path.
 */
#ifndef MTPS_EXCHANGE_H
#define MTPS_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* How the cache took part (the X-Cache value). */
enum exchange_cache {
	EXCHANGE_BYPASS = 0,	/* not a cache matter: unsafe method, Authorization, error */
	EXCHANGE_HIT,		/* a fresh stored response */
	EXCHANGE_MISS,		/* fetched: nothing usable stored */
	EXCHANGE_STALE,		/* a stale stored response (stale-while-revalidate, -if-error) */
	EXCHANGE_REVALIDATED,	/* stored, checked with the origin (304) */
	EXCHANGE_CACHE_MAX,
};

/* "BYPASS", "HIT", ... by enum exchange_cache. */
extern const char *const exchange_cache_names[];

struct exchange {
	const char *method;		/* "GET"; "-" when the request line never completed */
	const char *target;		/* as the client wrote it */
	const char *version;		/* "HTTP/1.1" */
	const char *host;		/* the Host (lower-cased), "" when none */
	const char *client;		/* the client's address, "1.2.3.4" or "::1" */
	const char *user_agent;		/* NULL when absent */
	const char *referer;		/* NULL when absent */
	int status;			/* the status sent, 0 when no response was queued */
	enum exchange_cache cache;
	bool completed;			/* the whole response was sent */
	bool coalesced;			/* shared a fetch another request started */
	const char *backend;		/* "host:port" of the backend that answered, or NULL */
	uint64_t bytes_in;		/* request body bytes */
	uint64_t bytes_out;		/* response body bytes sent */
	int64_t upstream_us;		/* request sent upstream to its fields back; -1: none */
	uint64_t total_us;		/* request begun to request completed */
	struct timespec start;		/* wall clock when the request began */
};

typedef void exchange_observer_fn(void *data, const struct exchange *ex);

#endif

/* upstream.h - the upstream thread: one libcurl multi handle that runs every fetch.
 *
 * Client threads never touch the network towards origins: they describe a request
 * (struct fetch_spec), hand it over with upstream_submit() and suspend. The upstream
 * thread sleeps in curl_multi_poll() until a socket is ready, a timer is due or another
 * thread wakes it (curl_multi_wakeup()); it fills the fetch's object as the response
 * arrives (object.h) and calls the owner's hooks when the fields are known and when the
 * fetch ends. Connections to the backend are kept alive in the multi handle's pool.
 */
#ifndef MTPS_UPSTREAM_H
#define MTPS_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

#include "balancer.h"
#include "object.h"
#include "policy.h"

struct upstream;

/* Called on the upstream thread, with no lock held. */
struct upstream_hooks {
	/* the status and fields of <o> are known, before any reader sees them (an unsafe
	 * request's invalidation happens here, so its client cannot ask again first) */
	void (*answered)(void *data, struct object *o);
	/* the status and fields of <o> are known; o->storable says whether it is kept, o->store
	 * whether it goes into the cache; o->revalidated that a 304 refreshed o->validating
	 * (o then holds the stored response with updated fields, its body complete) */
	void (*fields)(void *data, struct object *o, bool shared);
	/* the fetch of <o> ended (o->state is COMPLETE or FAILED) */
	void (*finished)(void *data, struct object *o);
};

struct upstream_config {
	struct balancer *balancer;	/* the backends; used by the upstream thread only */
	const char *via;		/* our Via entry, e.g. "1.1 mtps" */
	const char *health_path;	/* active checks: GET this on every backend ... */
	uint64_t health_interval_ms;	/* ... this often (0: no active checks) */
	uint64_t health_timeout_ms;	/* ... answered within this, 2xx or 3xx */
	unsigned retries;		/* further backends a failed fetch may try */
	uint64_t connect_timeout_ms;
	uint64_t timeout_ms;		/* for the response fields, and between body bytes */
	uint64_t coalesce_timeout_ms;	/* longest a coalesced reader waits for the fields */
	struct policy_config policy;	/* what may be stored, and for how long */
	const struct upstream_hooks *hooks;
	void *hooks_data;
};

/* One request to forward. upstream_submit() takes ownership of everything in it. */
struct fetch_spec {
	char *method;			/* "GET", "POST", ... */
	char *target;			/* origin-form: "/path?query" */
	struct curl_slist *headers;	/* request fields to send, ready for libcurl */
	struct header_list client_fields;	/* the client's own fields, as it sent them: a
						 * Vary response's secondary key is read from
						 * these, as lookups read it */
	bool client_fields_cut;		/* some did not fit: no variant may be stored */
	char *body;			/* request body, or NULL */
	size_t body_len;
	struct policy_request policy;	/* for the storable decision */
	bool may_store;			/* a candidate for the cache at all */
	struct object *obj;		/* a reference; the owner reader is attached */
};

/* Starts the thread. Returns NULL (after logging) when it cannot. */
struct upstream *upstream_start(const struct upstream_config *cfg);

/* Stops the thread: every fetch still running fails (its readers are woken and see 503),
 * later submits fail at once. <u> stays valid for those until upstream_free(). */
void upstream_stop(struct upstream *u);

/* Frees a stopped upstream, once no other thread can submit (NULL is fine). */
void upstream_free(struct upstream *u);

/* Runs fn(u, arg) on the upstream thread, between transfers, and returns when it has run:
 * the way other threads (admin requests, a reload) read or change what the upstream thread
 * owns, such as the balancer. <fn> must not block. Must not be called on the upstream
 * thread. Returns 0, or -ESHUTDOWN (fn not run) once the thread is stopping. */
int upstream_call(struct upstream *u, void (*fn)(struct upstream *u, void *arg), void *arg);

/* A reload, on the upstream thread only (call it from a function given to upstream_call()):
 * takes <cfg>'s pool, health settings, retries and timeouts (its via and hooks are ignored).
 * Backends that keep their name keep their health and counters (balancer_inherit()); the
 * health checks start again on the new pool at once. Fetches running on the old pool finish
 * there: the upstream keeps it until none uses it and then frees it (upstream_free() frees
 * what is left); the caller must not free it. Returns 0, or -ENOMEM with nothing changed. */
int upstream_reconfigure(struct upstream *u, const struct upstream_config *cfg);

/* The pool of backends; only the upstream thread (and functions given to upstream_call())
 * may use it. */
struct balancer *upstream_balancer(struct upstream *u);

/* Queues a fetch. Returns 0, or -ESHUTDOWN when stopping (the spec is freed and the object
 * is failed with 503, waking its readers). */
int upstream_submit(struct upstream *u, struct fetch_spec *spec);

/* The writer callbacks objects of this module's fetches carry (object.h). */
extern const struct object_writer_ops upstream_writer_ops;

/* Frees what a spec holds (for callers that never submitted it). */
void fetch_spec_free(struct fetch_spec *spec);

/* Milliseconds on a monotonic clock. */
uint64_t upstream_now_ms(void);

#endif

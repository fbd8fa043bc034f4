/* frontend.c - the client side of mtps-proxy (see frontend.h).
 *
 * A request's life, on MHD's worker threads:
 *   uri_log      the raw target is kept; the request's state is allocated
 *   handler #1   fields are checked (framing, target, Host); nothing is queued yet - in
 *                libmicrohttpd 0.9.75 a response queued on the first call closes the
 *                connection, so even hits wait for the next call
 *   handler #2.. the body, if any, is buffered
 *   last call    a fresh hit is queued at once; otherwise a stream (a reader of an object)
 *                is attached to a fetch - a new one, or one already running for the same
 *                key - and the connection is suspended until the fields arrive
 *   resumed      the response is queued; its content reader copies from the object and
 *                suspends the connection again whenever it has caught up with the origin
 *
 * A fresh hit reuses one prebuilt MHD_Response per stored object and Age value: the
 * response points at the stored body (no copy) and holds a reference to the object, so the
 * bytes outlive an eviction while a client still reads them. Building it costs one set of
 * allocations per object per second of age; every other hit is a lookup and a queue.
 */
#include "config.h"

#include "frontend.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

/* Bytes MHD asks a content reader for at most. MHD callocs the block with every
 * response, so small bodies get a block their size: zeroing 64 KiB per request was a
 * fifth of the miss path's CPU. */
#define STREAM_BLOCK_MAX (64 * 1024)
#define STREAM_BLOCK_UNKNOWN (16 * 1024)
#define STREAM_BLOCK_MIN 256
#define BODY_DISCARD_MAX (1024 * 1024)	/* read past --max-body before closing instead */

/* A frontend_config field a reload may change while workers read it (proxy/reload.c stores
 * them atomically): each read is an atomic one, seeing the old value or the new. */
#define LIVE(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

enum request_phase {
	REQ_NEW = 0,		/* nothing seen but the target */
	REQ_BODY,		/* fields checked, body arriving */
	REQ_WAITING,		/* suspended until a fetch has fields */
	REQ_ANSWERED,		/* a response is queued */
};

/* One client's reading of an object. Owned by the request until a response is queued,
 * then by that response (freed by its free callback). */
struct stream {
	struct object_reader reader;	/* first: the reader callbacks find the stream */
	struct object *obj;		/* NULL once the response let go of it */
	struct MHD_Connection *conn;
	uint64_t sent;			/* body bytes handed to MHD */
	atomic_uint refs;		/* the request's and, once queued, the response's */
};

/* Why a request went to the origin, as Cache-Status' fwd parameter says (RFC 9211 §2.2). */
enum fwd_reason {
	FWD_NONE = 0,		/* it did not: a hit */
	FWD_URI_MISS,		/* nothing stored */
	FWD_VARY_MISS,		/* stored, but not for this request's Vary fields */
	FWD_STALE,		/* stored but stale (or no-cache): revalidated or fetched */
	FWD_REQUEST,		/* the request asked for it (no-cache, max-age=0, ...) */
	FWD_BYPASS,		/* not a request the cache handles */
};

static const char *const fwd_names[] = {
	[FWD_NONE] = NULL,
	[FWD_URI_MISS] = "uri-miss",
	[FWD_VARY_MISS] = "vary-miss",
	[FWD_STALE] = "stale",
	[FWD_REQUEST] = "request",
	[FWD_BYPASS] = "bypass",
};

struct request {
	struct frontend *fe;
	struct MHD_Connection *conn;
	enum request_phase phase;
	char *target;			/* origin-form: raw, or a copy made from absolute-form */
	bool target_owned;		/* target was malloc'd */
	char *host;			/* lower-cased Host, or the absolute-form authority;
					 * lives in key's allocation */
	char *key;			/* "host target" */
	size_t key_len;
	char *vkey;			/* a Vary variant's key: key, "\x01", secondary key;
					 * NULL until a marker says the URL varies */
	size_t vkey_len;
	uint64_t vary_gen;		/* the marker's generation, with vkey */
	const char *method;		/* libmicrohttpd's, valid until the request completes */
	bool get, head;
	bool lookup;			/* may be answered from the cache */
	bool coalesce;			/* may share a fetch with others */
	bool unsafe;			/* a method that is not safe (RFC 9110 §9.2.1) */
	bool cond_local;		/* If-None-Match / If-Modified-Since answered here */
	const char *inm, *ims;		/* their values (MHD's) */
	struct object *stale;		/* a stored response not usable as it is: validated,
					 * or served if the origin fails (referenced) */
	bool validate;			/* the fetch revalidates <stale> */
	enum fwd_reason fwd;		/* why the cache went forward (Cache-Status) */
	int stale_error;		/* answered stale as the origin failed: its status,
					 * or -1 when it gave none */
	struct policy_request policy;
	char *body;
	size_t body_len, body_cap, discarded;
	int error_status;
	const char *error_reason;
	enum exchange_cache cache;	/* what X-Cache says */
	bool coalesced;			/* joined another request's fetch */
	int status;			/* the status queued, 0 before */
	uint64_t bytes_out;		/* body bytes of an answer not streamed */
	const char *version, *user_agent, *referer;	/* MHD's, until completion */
	uint64_t start_us;		/* monotonic */
	struct timespec start;		/* wall clock */
	struct stream *stream;		/* the stream not yet handed to a response */
	struct stream *sent;		/* the stream a response reads: counts bytes */
	int64_t upstream_us;		/* the object's, when fetched */
	char backend[BALANCER_MAX_NAME];	/* the object's, when fetched */
	char raw[];			/* the target as the client wrote it */
};

const char *const exchange_cache_names[] = {
	[EXCHANGE_BYPASS] = "BYPASS",
	[EXCHANGE_HIT] = "HIT",
	[EXCHANGE_MISS] = "MISS",
	[EXCHANGE_STALE] = "STALE",
	[EXCHANGE_REVALIDATED] = "REVALIDATED",
};

static uint64_t now_ms(void)
{
	return upstream_now_ms();
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- small answers ---------------------------------------------------------------------- */

static void add_field(struct MHD_Response *r, const char *name, const char *value)
{
	/* MHD refuses fields it manages itself (Content-Length, ...): those are dropped */
	if (MHD_add_response_header(r, name, value) != MHD_YES)
		log_debug("response field dropped: %s: %s", name, value);
}

/* Adds Cache-Status (RFC 9211) for <rq>: "name; hit; ttl=N" when answered from <o>, else
 * "name; fwd=why" with the status the origin gave (<o>'s, or 304 when it revalidated),
 * "stored" when the response goes into the cache, "collapsed" when shared. */
static void add_cache_status(struct MHD_Response *r, const struct request *rq,
			     const struct object *o, long long ttl)
{
	const struct frontend_config *cfg = &rq->fe->cfg;
	char v[512], key[300];
	int n;

	if (rq->error_status) {
		return;			/* refused before the cache took part */
	} else if (rq->fwd == FWD_NONE && o == NULL) {
		n = snprintf(v, sizeof(v), "%s; detail=only-if-cached", cfg->cache_name);
	} else if (rq->fwd == FWD_NONE && o) {
		n = snprintf(v, sizeof(v), "%s; hit; ttl=%lld", cfg->cache_name, ttl);
	} else if (rq->stale_error && o) {
		/* forwarded, failed, and answered from the store (RFC 5861 §4) */
		n = snprintf(v, sizeof(v), "%s; fwd=%s", cfg->cache_name, fwd_names[rq->fwd]);
		if (rq->stale_error > 0)
			n += snprintf(v + n, sizeof(v) - (size_t)n, "; fwd-status=%d",
				      rq->stale_error);
		n += snprintf(v + n, sizeof(v) - (size_t)n, "; ttl=%lld", ttl);
	} else {
		n = snprintf(v, sizeof(v), "%s; fwd=%s", cfg->cache_name,
			     fwd_names[rq->fwd ? rq->fwd : FWD_URI_MISS]);
		if (o && o->status)
			n += snprintf(v + n, sizeof(v) - (size_t)n, "; fwd-status=%d",
				      o->revalidated ? 304 : o->status);
		if (o && o->store)
			n += snprintf(v + n, sizeof(v) - (size_t)n, "; stored");
		if (rq->coalesced)
			n += snprintf(v + n, sizeof(v) - (size_t)n, "; collapsed");
	}
	if (LIVE(cfg->cache_status_key) && rq->key && (size_t)n < sizeof(v)) {
		size_t j = 0;

		for (size_t i = 0; i < rq->key_len && j < sizeof(key) - 2; i++) {
			char c = rq->key[i];

			if (c == '"' || c == '\\')
				key[j++] = '\\';
			key[j++] = c;
		}
		key[j] = '\0';
		snprintf(v + n, sizeof(v) - (size_t)n, "; key=\"%s\"", key);
	}
	add_field(r, "Cache-Status", v);
}

/* Queues a JSON error {"error": reason, "status": N}. */
static enum MHD_Result respond_error(struct request *rq, int status, const char *reason)
{
	char body[512], esc[300];
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t j = 0;
	int n;

	for (const char *p = reason; *p && j < sizeof(esc) - 2; p++) {
		if (*p == '"' || *p == '\\')
			esc[j++] = '\\';
		esc[j++] = (char)(isprint((unsigned char)*p) ? *p : '?');
	}
	esc[j] = '\0';
	n = snprintf(body, sizeof(body), "{\"error\": \"%s\", \"status\": %d}\n", esc, status);
	r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	add_field(r, "Content-Type", "application/json");
	add_field(r, "Cache-Control", "no-store");
	add_field(r, "X-Cache", exchange_cache_names[rq->cache]);
	add_cache_status(r, rq, NULL, 0);
	if (status == 503) {
		char after[16];

		snprintf(after, sizeof(after), "%u", LIVE(rq->fe->cfg.retry_after_s));
		add_field(r, "Retry-After", after);
	}
	ret = MHD_queue_response(rq->conn, (unsigned)status, r);
	MHD_destroy_response(r);
	rq->phase = REQ_ANSWERED;
	rq->status = status;
	rq->bytes_out = rq->head ? 0 : (uint64_t)n;
	return ret;
}

/* Remembers why the request is refused; the first reason wins. */
static void refuse(struct request *rq, int status, const char *reason)
{
	if (rq->error_status == 0) {
		rq->error_status = status;
		rq->error_reason = reason;
		log_info("refused %s %s: %d: %s", rq->method ? rq->method : "-", rq->raw,
			 status, reason);
	}
}

/* ---- hits ------------------------------------------------------------------------------- */

static void hit_free(void *cls)
{
	object_put(cls);
}

/* Adds <o>'s stored fields but Age. Answers not validated with the origin (<unvalidated>)
 * leave out the fields a qualified no-cache names (RFC 9111 §5.2.2.4). */
static void add_object_fields(struct MHD_Response *r, const struct object *o,
			      bool unvalidated)
{
	for (size_t i = 0; i < o->fields.n; i++) {
		const char *name = o->fields.v[i].name;

		if (strcasecmp(name, "Age") == 0)
			continue;
		if (unvalidated && o->cc.no_cache_fields[0] &&
		    headers_list_has(o->cc.no_cache_fields, name))
			continue;
		add_field(r, name, o->fields.v[i].value);
	}
}

static void add_age(struct MHD_Response *r, long long age)
{
	char age_s[24];

	snprintf(age_s, sizeof(age_s), "%lld", age);
	add_field(r, "Age", age_s);
}

/* A response on the stored body of <o> with Age <age>, for a request answered as <rq> was
 * (HIT or STALE); it holds a reference to <o>. */
static struct MHD_Response *hit_build(const struct request *rq, struct object *o,
				      long long age)
{
	struct MHD_Response *r;

	object_get(o);
	r = MHD_create_response_from_buffer_with_free_callback_cls(o->len, o->body, hit_free, o);
	if (r == NULL) {
		object_put(o);
		return NULL;
	}
	add_object_fields(r, o, true);
	add_age(r, age);
	add_field(r, "X-Cache", exchange_cache_names[rq->cache]);
	add_cache_status(r, rq, o, o->lifetime - age);
	return r;
}

/* The fields a 304 carries (RFC 9110 §15.4.5): those a 200 would have that guide caches,
 * not the representation's metadata. */
static bool not_modified_field(const char *name, bool etag)
{
	static const char *const keep[] = {
		"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary", "Via",
	};

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (strcasecmp(name, keep[i]) == 0)
			return true;
	return !etag && strcasecmp(name, "Last-Modified") == 0;
}

/* Says whether <rq>'s own If-None-Match / If-Modified-Since hold against <o> (a 200). */
static bool client_not_modified(const struct request *rq, const struct object *o)
{
	if (!rq->cond_local || o->status != 200)
		return false;
	return policy_not_modified(rq->inm, rq->ims, headers_get(&o->fields, "ETag"),
				   headers_get(&o->fields, "Last-Modified"),
				   headers_get(&o->fields, "Date"), o->response_time);
}

/* Age (RFC 9111 §5.1) on an answer from <o>: its current age when it comes from the store;
 * on a response fetched for this request, only when the backend said one (an Age implies
 * the origin did not just make or validate it). */
static void add_answer_age(struct MHD_Response *r, const struct request *rq,
			   const struct object *o, long long age)
{
	if (rq->cache == EXCHANGE_HIT || rq->cache == EXCHANGE_STALE ||
	    headers_get(&o->fields, "Age"))
		add_age(r, age);
}

static ssize_t never_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Queues a 304 for <rq> from <o> (RFC 9111 §4.3.2). libmicrohttpd sends a 304 the
 * Content-Length of its response as for a HEAD, so the response claims the full
 * representation's length - the one value RFC 9110 §8.6 allows - and is never read. Returns
 * 1 when queued, 0 when that length is not known yet (the caller sends the full response),
 * -1 on failure. */
static int respond_not_modified(struct request *rq, struct object *o, long long age)
{
	bool etag = headers_get(&o->fields, "ETag") != NULL;
	bool unvalidated = rq->cache == EXCHANGE_HIT || rq->cache == EXCHANGE_STALE;
	struct MHD_Response *r;
	enum MHD_Result ret;
	int64_t size = o->length;

	if (size < 0) {
		pthread_mutex_lock(&o->lock);
		if (o->state == OBJECT_COMPLETE && o->base == 0)
			size = (int64_t)o->len;
		pthread_mutex_unlock(&o->lock);
	}
	if (size < 0)
		return 0;
	r = MHD_create_response_from_callback((uint64_t)size, STREAM_BLOCK_MIN, never_read, NULL,
					      NULL);
	if (r == NULL)
		return -1;
	for (size_t i = 0; i < o->fields.n; i++) {
		const char *name = o->fields.v[i].name;

		if (!not_modified_field(name, etag))
			continue;
		if (unvalidated && o->cc.no_cache_fields[0] &&
		    headers_list_has(o->cc.no_cache_fields, name))
			continue;
		add_field(r, name, o->fields.v[i].value);
	}
	add_answer_age(r, rq, o, age);
	add_field(r, "X-Cache", exchange_cache_names[rq->cache]);
	add_cache_status(r, rq, o, o->lifetime - age);
	ret = MHD_queue_response(rq->conn, MHD_HTTP_NOT_MODIFIED, r);
	MHD_destroy_response(r);
	rq->phase = REQ_ANSWERED;
	rq->status = MHD_HTTP_NOT_MODIFIED;
	rq->bytes_out = 0;
	return ret == MHD_YES ? 1 : -1;
}

/* Answers <rq> with the stored <o> as it is: fresh (HIT) or, when <stale>, stale (STALE).
 * A fresh hit reuses <o>'s prebuilt response for its current age. Returns 1 when queued,
 * -1 when queueing failed. */
static int respond_hit(struct request *rq, struct object *o, bool stale)
{
	long long age = policy_current_age(o->initial_age, o->response_time, time(NULL));
	struct MHD_Response *r, *old = NULL;
	enum MHD_Result ret = MHD_NO;

	rq->cache = stale ? EXCHANGE_STALE : EXCHANGE_HIT;
	if (!rq->stale_error)
		rq->fwd = FWD_NONE;
	if (client_not_modified(rq, o)) {
		int n = respond_not_modified(rq, o, age);

		if (n != 0)
			return n;
	}
	pthread_mutex_lock(&o->lock);
	if (o->unlinked || stale || !o->in_cache) {
		/* evicted since the lookup, never stored, or an answer of its own: build it
		 * once (a kept one would keep <o> alive: only leaving the cache lets go) */
		r = hit_build(rq, o, age);
		if (r) {
			ret = MHD_queue_response(rq->conn, (unsigned)o->status, r);
			MHD_destroy_response(r);
		}
	} else {
		if (o->hit_response == NULL || o->hit_age != age) {
			r = hit_build(rq, o, age);
			if (r) {
				old = o->hit_response;
				o->hit_response = r;
				o->hit_age = age;
			}
		}
		/* queued under the lock: the slot's reference keeps it alive until MHD has
		 * taken its own */
		if (o->hit_response)
			ret = MHD_queue_response(rq->conn, (unsigned)o->status, o->hit_response);
	}
	pthread_mutex_unlock(&o->lock);
	if (old)
		MHD_destroy_response(old);
	rq->phase = REQ_ANSWERED;
	rq->status = o->status;
	rq->bytes_out = rq->head ? 0 : o->len;
	return ret == MHD_YES ? 1 : -1;
}

/* The cache let go of <e>: drop its prebuilt hit response, which references it. */
static void object_unlinked(struct cache_entry *e)
{
	struct object *o = (struct object *)e;
	struct MHD_Response *r;

	pthread_mutex_lock(&o->lock);
	o->unlinked = true;
	r = o->hit_response;
	o->hit_response = NULL;
	pthread_mutex_unlock(&o->lock);
	if (r)
		MHD_destroy_response(r);
}

/* ---- streams ---------------------------------------------------------------------------- */

static void reader_suspend(struct object_reader *r)
{
	MHD_suspend_connection(((struct stream *)r)->conn);
}

static void reader_wake(struct object_reader *r)
{
	MHD_resume_connection(((struct stream *)r)->conn);
}

static void stream_put(struct stream *s)
{
	if (atomic_fetch_sub(&s->refs, 1) == 1)
		free(s);
}

/* The reader is done: the object is let go at once (a slow reader holds a window); the
 * byte count lives on until the request completes. */
static void stream_free(void *cls)
{
	struct stream *s = cls;

	if (s->obj) {
		object_detach(s->obj, &s->reader);
		object_put(s->obj);
		s->obj = NULL;
	}
	stream_put(s);
}

static void request_drop_stream(struct request *rq)
{
	if (rq->stream) {
		stream_free(rq->stream);
		rq->stream = NULL;
	}
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	ssize_t n = object_read(s->obj, &s->reader, buf, max);

	(void)pos;	/* the reader keeps its own position */
	if (n > 0)
		s->sent += (uint64_t)n;
	if (n == OBJECT_EOF)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n == OBJECT_ERROR)
		return MHD_CONTENT_READER_END_WITH_ERROR;	/* cuts the connection */
	return n;	/* OBJECT_WAIT (0): suspended until more arrives */
}

static bool status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

/* Queues the response whose fields <rq>'s stream now knows. */
static enum MHD_Result respond_stream(struct request *rq)
{
	struct stream *s = rq->stream;
	struct object *o = s->obj;
	struct MHD_Response *r;
	enum MHD_Result ret;
	long long age = policy_current_age(o->initial_age, o->response_time, time(NULL));

	if (o->revalidated)
		rq->cache = EXCHANGE_REVALIDATED;
	if (o->backend[0] && rq->cache != EXCHANGE_HIT) {
		memcpy(rq->backend, o->backend, sizeof(rq->backend));
		rq->upstream_us = o->upstream_us;
	}
	if (client_not_modified(rq, o)) {
		int n = respond_not_modified(rq, o, age);

		if (n != 0) {
			request_drop_stream(rq);
			return n > 0 ? MHD_YES : MHD_NO;
		}
	}
	if (status_has_body(o->status)) {
		uint64_t size = o->length >= 0 ? (uint64_t)o->length : MHD_SIZE_UNKNOWN;
		size_t block = STREAM_BLOCK_UNKNOWN;

		if (o->length >= 0)
			block = o->length > STREAM_BLOCK_MAX	 ? STREAM_BLOCK_MAX
				: o->length < STREAM_BLOCK_MIN ? STREAM_BLOCK_MIN
							       : (size_t)o->length;
		r = MHD_create_response_from_callback(size, block, stream_read, s, stream_free);
		if (r) {
			/* the response's now; the request keeps a reference for the count */
			atomic_fetch_add(&s->refs, 1);
			rq->sent = s;
			rq->stream = NULL;
		}
	} else {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (r == NULL)
		return respond_error(rq, 500, "out of memory");
	add_object_fields(r, o, rq->cache == EXCHANGE_HIT);
	add_answer_age(r, rq, o, age);
	add_field(r, "X-Cache", exchange_cache_names[rq->cache]);
	if (rq->cache == EXCHANGE_HIT)
		rq->fwd = FWD_NONE;
	add_cache_status(r, rq, o, o->lifetime - age);
	ret = MHD_queue_response(rq->conn, (unsigned)o->status, r);
	MHD_destroy_response(r);
	rq->phase = REQ_ANSWERED;
	rq->status = o->status;
	request_drop_stream(rq);	/* body-less answers are done with the object */
	return ret;
}

/* ---- fetches ---------------------------------------------------------------------------- */

/* The marker of a URL whose responses vary (object.h): no response, the Vary names and a
 * generation its variants carry. Returns a referenced marker, or NULL. */
static struct object *marker_for(struct frontend *fe, const char *key, size_t key_len,
				 const char *names)
{
	struct object *m = (struct object *)cache_lookup(fe->cache, key, key_len);

	if (m && m->marker && strcmp(m->vary_names, names) == 0)
		return m;
	if (m)
		object_put(m);
	m = object_new(key, key_len, 0, 0, 0, object_unlinked);
	if (m == NULL)
		return NULL;
	m->marker = true;
	m->state = OBJECT_COMPLETE;
	m->vary_names = strdup(names);
	m->gen = atomic_fetch_add(&fe->vary_gen, 1) + 1;
	if (m->vary_names == NULL) {
		object_put(m);
		return NULL;
	}
	m->entry.size = object_size(m);
	if (cache_insert(fe->cache, &m->entry) != 0) {
		object_put(m);
		return NULL;
	}
	return m;
}

/* Says whether an unsafe request invalidated URL key <key> since clock value <born>. */
static bool invalidated_since(struct frontend *fe, const char *key, size_t len, uint64_t born)
{
	uint64_t h = cache_hash(key, len);

	return atomic_load(&fe->inval_at[h & (FRONTEND_INVAL_SLOTS - 1)]) > born;
}

/* object.h's on_complete: a complete, storable response goes into the cache before any
 * reader sees its end (the object's lock is held; nothing here takes another object's).
 * A response that varies is stored under its variant key, beside its URL's marker. */
static void store_object(struct object *o, void *data)
{
	struct frontend *fe = data;

	if (!o->store || o->invalidated ||
	    invalidated_since(fe, o->entry.key, o->primary_len, o->born))
		return;
	if (o->vary_names) {
		size_t klen = o->primary_len + 1 + strlen(o->vary_key);
		char *key = malloc(klen + 1);
		struct object *m;

		if (key == NULL)
			return;
		snprintf(key, klen + 1, "%.*s\x01%s", (int)o->primary_len, o->entry.key,
			 o->vary_key);
		if ((o->entry.key_len != klen || memcmp(o->entry.key, key, klen) != 0) &&
		    cache_entry_rekey(&o->entry, key, klen) != 0) {
			free(key);
			return;
		}
		free(key);
		m = marker_for(fe, o->entry.key, o->primary_len, o->vary_names);
		if (m == NULL)
			return;
		if (o->gen && o->gen != m->gen) {
			/* fetched for a marker that is gone since: the URL was invalidated
			 * (or the marker evicted) while this ran, so it may be outdated */
			object_put(m);
			return;
		}
		o->gen = m->gen;
		object_put(m);
	} else if (o->entry.key_len != o->primary_len &&
		   cache_entry_rekey(&o->entry, o->entry.key, o->primary_len) != 0) {
		return;		/* made for a variant, but the response no longer varies */
	}
	o->entry.size = object_size(o);
	if (cache_insert(fe->cache, &o->entry) == 0)
		o->in_cache = true;
}

static struct object *make_object(void *arg)
{
	struct request *rq = arg;
	const struct frontend_config *cfg = &rq->fe->cfg;
	struct object *o;

	o = object_new(rq->vkey ? rq->vkey : rq->key, rq->vkey ? rq->vkey_len : rq->key_len,
		       LIVE(cfg->max_object_size), LIVE(cfg->stream_window),
		       LIVE(cfg->coalesce_max), object_unlinked);
	if (o) {
		o->primary_len = rq->key_len;
		o->gen = rq->vkey ? rq->vary_gen : 0;
		o->born = atomic_load(&rq->fe->inval_clock);
		o->candidate = rq->get;		/* policy_storable() weighs Authorization */
		o->plain = rq->coalesce;
		o->unsafe = rq->unsafe;
		if (rq->validate) {
			object_get(rq->stale);
			o->validating = rq->stale;
		}
		if (o->candidate) {
			o->on_complete = store_object;
			o->on_complete_data = rq->fe;
		}
	}
	return o;
}

/* policy_field_fn over the client's request fields. */
struct field_get {
	const char *name;
	char *buf;
	size_t len, used;
	bool found;
};

static enum MHD_Result field_get_one(void *cls, enum MHD_ValueKind kind, const char *name,
				     const char *value)
{
	struct field_get *g = cls;

	(void)kind;
	if (strcasecmp(name, g->name) != 0)
		return MHD_YES;
	g->used += (size_t)snprintf(g->buf + g->used, g->used < g->len ? g->len - g->used : 0,
				    "%s%s", g->found ? ", " : "", value);
	g->found = true;
	return MHD_YES;
}

static const char *request_field(void *ctx, const char *name, char *buf, size_t len)
{
	struct request *rq = ctx;
	struct field_get g = { name, buf, len, 0, false };

	buf[0] = '\0';
	MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, field_get_one, &g);
	if (g.used >= len)
		buf[len - 1] = '\0';
	return g.found ? buf : NULL;
}

/* Sets rq->vkey to the variant key <rq> has under the Vary names of <marker>. */
static bool request_vary_key(struct request *rq, const struct object *marker)
{
	char key[8192];
	int n = policy_vary_key(marker->vary_names, request_field, rq, key, sizeof(key));

	free(rq->vkey);
	rq->vkey = NULL;
	if (n < 0)
		return false;
	rq->vkey_len = rq->key_len + 1 + (size_t)n;
	rq->vkey = malloc(rq->vkey_len + 1);
	if (rq->vkey == NULL)
		return false;
	snprintf(rq->vkey, rq->vkey_len + 1, "%s\x01%s", rq->key, key);
	rq->vary_gen = marker->gen;
	return true;
}

/* The stored response for <rq>, referenced, following its URL's marker to the variant for
 * this request's fields (RFC 9111 §4.1); NULL when none. */
static struct object *lookup(struct request *rq)
{
	struct cache *c = rq->fe->cache;
	struct object *o = (struct object *)cache_lookup(c, rq->key, rq->key_len);
	struct object *v;

	if (o == NULL || !o->marker)
		return o;
	if (!request_vary_key(rq, o)) {
		object_put(o);
		return NULL;
	}
	object_put(o);
	v = (struct object *)cache_lookup(c, rq->vkey, rq->vkey_len);
	if (v && v->gen != rq->vary_gen) {
		object_put(v);		/* stored before its URL was invalidated */
		v = NULL;
	}
	if (v == NULL)
		rq->fwd = FWD_VARY_MISS;
	return v;
}

/* How stored <o> may answer <rq> now. */
static enum policy_reuse reuse(const struct request *rq, const struct object *o)
{
	struct policy_stored st = {
		.cc = &o->cc,
		.lifetime = o->lifetime,
		.age = policy_current_age(o->initial_age, o->response_time, time(NULL)),
		.validator = o->validator,
	};

	return policy_reuse(&rq->policy, &st);
}

/* Says whether stale <o> may answer <rq> in place of an error (RFC 5861 §4). */
static bool stale_if_error(const struct request *rq, const struct object *o)
{
	struct policy_stored st = {
		.cc = &o->cc,
		.lifetime = o->lifetime,
		.age = policy_current_age(o->initial_age, o->response_time, time(NULL)),
		.validator = o->validator,
	};

	return policy_stale_if_error(&rq->policy, &st, LIVE(rq->fe->cfg.stale_if_error_s));
}

/* inflight_claim()'s second look in the cache (the table's lock held): only a response
 * this request may use as it is. */
static struct object *lookup_stored(void *arg)
{
	struct request *rq = arg;
	struct object *o;

	if (!rq->lookup)
		return NULL;	/* this request may not be answered from the store */
	o = (struct object *)cache_lookup(rq->fe->cache, rq->vkey ? rq->vkey : rq->key,
					  rq->vkey ? rq->vkey_len : rq->key_len);
	if (o && (o->marker || (rq->vkey && o->gen != rq->vary_gen) ||
		  reuse(rq, o) != POLICY_FRESH)) {
		object_put(o);	/* this request starts the one fetch others join */
		return NULL;
	}
	return o;
}

/* What building the upstream request's fields collects. */
struct field_walk {
	struct request *rq;
	struct curl_slist *list;
	bool failed;
	bool accept, content_type;
	char connection[1024];		/* the Connection fields' tokens, joined */
	char forwarded_for[1024];
	char via[1024];
};

static void walk_append(struct field_walk *w, const char *name, const char *value)
{
	char line[8192];
	struct curl_slist *l;

	/* libcurl drops "Name:" but sends "Name;" as an empty field */
	if (value[0] == '\0')
		snprintf(line, sizeof(line), "%s;", name);
	else if (snprintf(line, sizeof(line), "%s: %s", name, value) >= (int)sizeof(line))
		w->failed = true;
	l = curl_slist_append(w->list, line);
	if (l == NULL)
		w->failed = true;
	else
		w->list = l;
}

static enum MHD_Result walk_connection(void *cls, enum MHD_ValueKind kind, const char *name,
				       const char *value)
{
	struct field_walk *w = cls;

	(void)kind;
	if (strcasecmp(name, "Connection") == 0) {
		char joined[sizeof(w->connection)];

		headers_join(joined, sizeof(joined), w->connection, value);
		memcpy(w->connection, joined, sizeof(joined));
	}
	return MHD_YES;
}

static enum MHD_Result walk_field(void *cls, enum MHD_ValueKind kind, const char *name,
				  const char *value)
{
	struct field_walk *w = cls;
	char joined[1024];

	(void)kind;
	if (headers_is_hop_by_hop(name) || headers_list_has(w->connection, name))
		return MHD_YES;
	if (w->rq->cond_local && w->rq->get &&
	    (strcasecmp(name, "If-None-Match") == 0 || strcasecmp(name, "If-Modified-Since") == 0))
		return MHD_YES;		/* answered here, against the full response */
	if (strcasecmp(name, "Host") == 0 || strcasecmp(name, "Content-Length") == 0 ||
	    strcasecmp(name, "Expect") == 0 || strcasecmp(name, "X-Forwarded-Proto") == 0 ||
	    strcasecmp(name, "X-Forwarded-Host") == 0)
		return MHD_YES;		/* set below, or by libcurl */
	if (strcasecmp(name, "X-Forwarded-For") == 0) {
		headers_join(joined, sizeof(joined), w->forwarded_for, value);
		memcpy(w->forwarded_for, joined, sizeof(joined));
		return MHD_YES;
	}
	if (strcasecmp(name, "Via") == 0) {
		headers_join(joined, sizeof(joined), w->via, value);
		memcpy(w->via, joined, sizeof(joined));
		return MHD_YES;
	}
	if (strcasecmp(name, "Accept") == 0)
		w->accept = true;
	else if (strcasecmp(name, "Content-Type") == 0)
		w->content_type = true;
	walk_append(w, name, value);
	return MHD_YES;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(buf, len, "unknown");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  (socklen_t)len);
}

/* The fields sent upstream: the client's end-to-end fields, Host (the client's unless
 * configured otherwise), X-Forwarded-For/-Proto/-Host and Via; libcurl's own defaults
 * (Accept, Expect, a form Content-Type) are switched off. NULL when out of memory. */
static struct curl_slist *upstream_fields(struct request *rq)
{
	const struct frontend_config *cfg = &rq->fe->cfg;
	struct field_walk w;
	char addr[INET6_ADDRSTRLEN + 8], joined[1024];

	memset(&w, 0, sizeof(w));
	w.rq = rq;
	MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, walk_connection, &w);
	MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, walk_field, &w);
	/* without a Host line libcurl sends the backend's host:port */
	if (LIVE(cfg->preserve_host) && rq->host[0])
		walk_append(&w, "Host", rq->host);
	client_address(rq->conn, addr, sizeof(addr));
	headers_join(joined, sizeof(joined), w.forwarded_for, addr);
	walk_append(&w, "X-Forwarded-For", joined);
	walk_append(&w, "X-Forwarded-Proto", "http");
	if (rq->host[0])
		walk_append(&w, "X-Forwarded-Host", rq->host);
	headers_join(joined, sizeof(joined), w.via, cfg->via);
	walk_append(&w, "Via", joined);
	if (rq->validate) {
		/* RFC 9111 §4.3.1: the stored response's validators */
		const char *etag = headers_get(&rq->stale->fields, "ETag");
		const char *lm = headers_get(&rq->stale->fields, "Last-Modified");

		if (etag)
			walk_append(&w, "If-None-Match", etag);
		if (lm)
			walk_append(&w, "If-Modified-Since", lm);
	}
	w.list = curl_slist_append(w.list, "Expect:");
	if (!w.accept && w.list)
		w.list = curl_slist_append(w.list, "Accept:");
	if (!w.content_type && w.list)
		w.list = curl_slist_append(w.list, "Content-Type:");
	if (w.failed || w.list == NULL) {
		curl_slist_free_all(w.list);
		return NULL;
	}
	return w.list;
}

static enum MHD_Result resumed(struct request *rq);

static enum MHD_Result copy_field(void *cls, enum MHD_ValueKind kind, const char *name,
				  const char *value)
{
	struct fetch_spec *spec = cls;

	(void)kind;
	/* a field that does not fit makes the copy unfit to key a variant by */
	if (headers_add(&spec->client_fields, name, strlen(name), value, strlen(value)) != 0)
		spec->client_fields_cut = true;
	return MHD_YES;
}

/* Sends the fetch of new object <o> for <rq> upstream. Returns 0, or -ENOMEM after failing
 * <o> (its readers see 503). */
static int submit_fetch(struct request *rq, struct object *o)
{
	struct frontend *fe = rq->fe;
	struct fetch_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.method = strdup(rq->validate ? "GET" : rq->method);
	spec.target = strdup(rq->target);
	spec.headers = upstream_fields(rq);
	spec.policy = rq->policy;
	spec.may_store = o->candidate;
	if (o->candidate)
		MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, copy_field, &spec);
	if (spec.method == NULL || spec.target == NULL || spec.headers == NULL) {
		fetch_spec_free(&spec);
		object_finish(o, false, 503, "the proxy is out of memory");
		frontend_upstream_hooks.finished(fe, o);
		return -ENOMEM;
	}
	if (rq->body) {
		/* a background revalidation has no body to give: only the request's own */
		spec.body = rq->body;
		spec.body_len = rq->body_len;
		rq->body = NULL;
	}
	object_get(o);
	spec.obj = o;
	upstream_submit(fe->upstream, &spec);
	return 0;
}

/* stale-while-revalidate (RFC 5861 §3): <rq> was answered with stale <stale>; one fetch
 * per key, with no client, refreshes it. */
static void revalidate_in_background(struct request *rq, struct object *stale)
{
	struct object *o = NULL;
	enum inflight_claim claim;

	if (rq->stale != stale) {
		if (rq->stale)
			object_put(rq->stale);
		object_get(stale);
		rq->stale = stale;
	}
	rq->validate = stale->validator && rq->get;
	claim = inflight_claim(rq->fe->inflight, rq->vkey ? rq->vkey : rq->key,
			       rq->vkey ? rq->vkey_len : rq->key_len, NULL, now_ms(), NULL,
			       make_object, rq, &o);
	if (claim == INFLIGHT_MARKED)
		o = make_object(rq);	/* hit-for-miss: not coalesced, but still refreshed */
	if (claim == INFLIGHT_OWNER || (claim == INFLIGHT_MARKED && o)) {
		submit_fetch(rq, o);
		log_debug("revalidating %s in the background", rq->key);
	}
	if (o)
		object_put(o);
}

/* Answers <rq> from stored <o> when it may be used without the origin: 1 when answered, 0
 * when the origin must be asked (rq->stale and rq->validate say how), -1 on failure. */
static int answer_stored(struct request *rq, struct object *o)
{
	switch (reuse(rq, o)) {
	case POLICY_FRESH:
		return respond_hit(rq, o, false);
	case POLICY_STALE:
		return respond_hit(rq, o, true);
	case POLICY_STALE_REVALIDATE: {
		int r = respond_hit(rq, o, true);

		if (rq->get)
			revalidate_in_background(rq, o);
		return r;
	}
	case POLICY_VALIDATE:
		rq->validate = rq->get;
		/* fall through */
	case POLICY_FETCH:
		break;
	}
	if (rq->stale == NULL) {
		object_get(o);
		rq->stale = o;
	}
	if (rq->fwd == FWD_URI_MISS) {
		long long age = policy_current_age(o->initial_age, o->response_time, time(NULL));

		/* still fresh: the request's own directives sent it on (RFC 9211 §2.2) */
		rq->fwd = age < o->lifetime && !(o->cc.flags & CC_NO_CACHE) ? FWD_REQUEST
									     : FWD_STALE;
	}
	return 0;
}

static bool same_variant(struct request *rq, const struct object *o);

/* Hands <rq> to a fetch: joins the one running for its key when <coalesce>, else starts
 * one. The connection is suspended until the fields are known. */
static enum MHD_Result start_fetch(struct request *rq, bool coalesce)
{
	struct frontend *fe = rq->fe;
	enum inflight_claim claim = INFLIGHT_PASS;
	struct stream *s;
	struct object *o = NULL;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return respond_error(rq, 503, "the proxy is out of memory");
	atomic_init(&s->refs, 1);
	s->reader.suspend = reader_suspend;
	s->reader.wake = reader_wake;
	s->conn = rq->conn;
	if (coalesce)
		claim = inflight_claim(fe->inflight, rq->vkey ? rq->vkey : rq->key,
				       rq->vkey ? rq->vkey_len : rq->key_len, &s->reader, now_ms(),
				       lookup_stored, make_object, rq, &o);
	if (claim == INFLIGHT_STORED) {
		/* stored between our lookup and the claim */
		int r = respond_hit(rq, o, false);

		object_put(o);
		free(s);
		return r > 0 ? MHD_YES : MHD_NO;
	}
	if (claim == INFLIGHT_MARKED) {
		rq->cache = EXCHANGE_BYPASS;	/* known not to be stored */
		rq->fwd = FWD_BYPASS;
	}
	if (claim == INFLIGHT_PASS || claim == INFLIGHT_MARKED) {
		o = make_object(rq);
		if (o == NULL) {
			free(s);
			return respond_error(rq, 503, "the proxy is out of memory");
		}
		s->reader.owner = true;
		object_attach(o, &s->reader, now_ms());
	}
	s->obj = o;
	rq->stream = s;
	rq->phase = REQ_WAITING;
	if (claim == INFLIGHT_JOINED) {
		bool stored;

		/* (o's key is the upstream thread's to change; the URL is rq's too) */
		if (invalidated_since(fe, rq->key, rq->key_len, o->born) ||
		    (o->gen && o->gen != rq->vary_gen)) {
			/* started before an unsafe request changed the URL: not to be shared */
			request_drop_stream(rq);
			return start_fetch(rq, false);
		}
		pthread_mutex_lock(&o->lock);
		stored = o->state == OBJECT_COMPLETE && o->storable && o->store && !o->invalidated;
		pthread_mutex_unlock(&o->lock);
		if (stored) {
			/* complete, and stored or about to be: judged as any stored response -
			 * it may be too old for this request, or another variant */
			int r = 0;

			object_get(o);
			request_drop_stream(rq);
			if (!o->vary_names || same_variant(rq, o))
				r = answer_stored(rq, o);
			object_put(o);
			if (r != 0)
				return r > 0 ? MHD_YES : MHD_NO;
			return start_fetch(rq, false);
		}
		rq->coalesced = true;
		if (object_wait_fields(o, &s->reader))
			return MHD_YES;
		return resumed(rq);
	}
	/* suspend first: the upstream thread may resume us as soon as it has the fetch; a
	 * fetch that cannot start fails the object, which resumes us with its 503 */
	object_wait_fields(o, &s->reader);
	submit_fetch(rq, o);
	return MHD_YES;
}

/* Says whether <rq> is the variant of the response <o>, which varies. */
static bool same_variant(struct request *rq, const struct object *o)
{
	char key[8192];

	if (policy_vary_key(o->vary_names, request_field, rq, key, sizeof(key)) < 0)
		return false;
	return o->vary_key && strcmp(key, o->vary_key) == 0;
}

/* Called again after the fetch's fields arrived (or it failed, or refused us). */
static enum MHD_Result resumed(struct request *rq)
{
	struct stream *s = rq->stream;
	struct object *o = s->obj;
	enum object_state state;

	if (s->reader.refused) {
		/* the response was not for sharing, or we waited too long: go alone */
		request_drop_stream(rq);
		return start_fetch(rq, false);
	}
	pthread_mutex_lock(&o->lock);
	state = o->state;
	pthread_mutex_unlock(&o->lock);
	if (state == OBJECT_PENDING && object_wait_fields(o, &s->reader))
		return MHD_YES;
	if (state == OBJECT_FAILED && o->error_status) {
		int status = o->error_status;
		const char *reason = o->error_reason;

		request_drop_stream(rq);
		if (rq->stale && stale_if_error(rq, rq->stale)) {
			rq->stale_error = -1;
			return respond_hit(rq, rq->stale, true) > 0 ? MHD_YES : MHD_NO;
		}
		if (rq->stale && !policy_may_serve_stale(&rq->stale->cc)) {
			/* RFC 9111 §4.2.4: it may not be used stale and could not be validated */
			status = 504;
			reason = "the stored response must be revalidated and the origin failed";
		}
		return respond_error(rq, status, reason);
	}
	if (o->vary_names && !s->reader.owner && !same_variant(rq, o)) {
		/* the response varies on fields this request has otherwise: go alone */
		request_drop_stream(rq);
		rq->coalesced = false;
		return start_fetch(rq, false);
	}
	if (rq->stale && (o->status == 500 || o->status == 502 || o->status == 503 ||
			  o->status == 504) && stale_if_error(rq, rq->stale)) {
		rq->stale_error = o->status;
		request_drop_stream(rq);
		return respond_hit(rq, rq->stale, true) > 0 ? MHD_YES : MHD_NO;
	}
	return respond_stream(rq);
}

/* Forgets everything stored under URL key <key>: the response, or the marker whose
 * generation its variants carry (they can no longer be found), any fetch running for it
 * (it will not be stored) and its hit-for-miss mark. */
static void invalidate(struct frontend *fe, const char *key, size_t len)
{
	atomic_uint_fast64_t *slot =
		&fe->inval_at[cache_hash(key, len) & (FRONTEND_INVAL_SLOTS - 1)];
	uint_fast64_t now = atomic_fetch_add(&fe->inval_clock, 1) + 1, at = atomic_load(slot);

	/* first the clock: a fetch of this URL running now, in the coalescing table or not,
	 * will not be stored */
	while (at < now && !atomic_compare_exchange_weak(slot, &at, now))
		;
	inflight_invalidate(fe->inflight, key, len);
	if (cache_remove(fe->cache, key, len))
		log_debug("invalidated %.*s", (int)len, key);
}

/* RFC 9111 §4.4: a non-error response to an unsafe request invalidates its target URI
 * and the Location and Content-Location URIs on the same host. */
static void invalidate_after(struct frontend *fe, const struct object *o)
{
	const char *key = o->entry.key, *space = memchr(key, ' ', o->primary_len);
	char host[512], target[CACHE_MAX_KEY], other[CACHE_MAX_KEY];
	size_t hlen;

	invalidate(fe, key, o->primary_len);
	if (space == NULL || (hlen = (size_t)(space - key)) >= sizeof(host))
		return;
	memcpy(host, key, hlen);
	host[hlen] = '\0';
	snprintf(target, sizeof(target), "%.*s", (int)(o->primary_len - hlen - 1), space + 1);
	for (size_t i = 0; i < o->fields.n; i++) {
		const char *name = o->fields.v[i].name;

		if ((strcasecmp(name, "Location") == 0 ||
		     strcasecmp(name, "Content-Location") == 0) &&
		    policy_invalidation_key(host, target, o->fields.v[i].value, other,
					    sizeof(other)))
			invalidate(fe, other, strlen(other));
	}
}

/* The fetch's fields are known: a response that is not kept leaves the coalescing table
 * so that later requests do not queue behind it, and one not for sharing marks its key
 * hit-for-miss for a while. */
static void hook_answered(void *data, struct object *o)
{
	if (o->unsafe && policy_invalidates(o->status))
		invalidate_after(data, o);
}

static void hook_fields(void *data, struct object *o, bool shared)
{
	struct frontend *fe = data;
	uint64_t now;

	if (!o->candidate || o->storable)
		return;
	inflight_remove(fe->inflight, o);
	if (!o->plain)
		return;		/* a 304 or 206 says nothing about the plain GET */
	(void)shared;
	now = now_ms();
	inflight_mark_pass(fe->inflight, o->entry.key, o->primary_len, now,
			   now + LIVE(fe->cfg.hit_for_miss_ms));
}

/* The fetch ended: a complete, storable response goes into the cache. */
static void hook_finished(void *data, struct object *o)
{
	struct frontend *fe = data;
	bool store;

	if (o->validator_mismatch)
		invalidate(fe, o->entry.key, o->primary_len);	/* the next request fetches anew */
	if (!o->candidate)
		return;
	pthread_mutex_lock(&o->lock);
	store = o->state == OBJECT_COMPLETE && o->storable;
	pthread_mutex_unlock(&o->lock);
	/* stored already (store_object(), when it completed): it leaves the coalescing table
	 * only now, so a request in between finds one or the other, never neither */
	if (store)
		inflight_unmark(fe->inflight, o->entry.key, o->primary_len);
	inflight_remove(fe->inflight, o);
}

const struct upstream_hooks frontend_upstream_hooks = {
	.answered = hook_answered,
	.fields = hook_fields,
	.finished = hook_finished,
};

/* ---- reading the request ---------------------------------------------------------------- */

/* What the first call learns from the request's fields. */
struct field_scan {
	struct http_framing framing;
	bool authorization, conditional, range;
	const char *inm, *ims;		/* the conditions a cache answers */
	struct cache_control cc;
	bool cache_control, pragma_no_cache;
	const char *user_agent, *referer;
};

static enum MHD_Result scan_field(void *cls, enum MHD_ValueKind kind, const char *name,
				  const char *value)
{
	struct field_scan *f = cls;

	(void)kind;
	http_framing_add(&f->framing, name, value);
	if (strcasecmp(name, "Authorization") == 0) {
		f->authorization = true;
	} else if (strcasecmp(name, "Range") == 0) {
		f->range = true;
	} else if (strcasecmp(name, "If-None-Match") == 0) {
		f->inm = value;
	} else if (strcasecmp(name, "If-Modified-Since") == 0) {
		f->ims = value;
	} else if (strncasecmp(name, "If-", 3) == 0) {
		f->conditional = true;		/* for the origin alone */
	} else if (strcasecmp(name, "Cache-Control") == 0) {
		f->cache_control = true;
		policy_cc_parse(&f->cc, value);
	} else if (strcasecmp(name, "Pragma") == 0 && headers_list_has(value, "no-cache")) {
		f->pragma_no_cache = true;
	} else if (strcasecmp(name, "User-Agent") == 0) {
		f->user_agent = value;
	} else if (strcasecmp(name, "Referer") == 0) {
		f->referer = value;
	}
	return MHD_YES;
}

static bool target_char_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '#';
}

/* Turns rq->target into origin-form and finds the host; builds the cache key. Returns
 * false after refusing. */
static bool parse_target(struct request *rq, const char *host_field)
{
	const char *t = rq->target, *host = host_field ? host_field : "";
	size_t host_len = strlen(host), target_len;

	for (const char *p = t; *p; p++) {
		if (!target_char_ok((unsigned char)*p)) {
			refuse(rq, 400, "the request target has a character not allowed there");
			return false;
		}
	}
	if (strncasecmp(t, "http://", 7) == 0) {
		/* absolute-form (RFC 9112 §3.2.2): its authority wins over Host */
		const char *path = strchr(t + 7, '/');
		const char *q = strchr(t + 7, '?');
		char *origin_form;

		if (q && (path == NULL || q < path))
			path = q;
		host = t + 7;
		host_len = path ? (size_t)(path - host) : strlen(host);
		if (host_len == 0 || memchr(host, '@', host_len)) {
			refuse(rq, 400, "the request target's authority is not host[:port]");
			return false;
		}
		if (path == NULL)
			path = "/";
		if (asprintf(&origin_form, "%s%s", *path == '?' ? "/" : "", path) < 0)
			return false;
		rq->target = origin_form;	/* host still points into rq->raw */
		rq->target_owned = true;
	} else if (t[0] != '/') {
		refuse(rq, 400, "the request target must be a path or an http:// URL");
		return false;
	}
	/* one allocation: "host target", NUL, then the host alone */
	target_len = strlen(rq->target);
	rq->key_len = host_len + 1 + target_len;
	rq->key = malloc(rq->key_len + 1 + host_len + 1);
	if (rq->key == NULL)
		return false;
	for (size_t i = 0; i < host_len; i++)
		rq->key[i] = (char)tolower((unsigned char)host[i]);
	rq->key[host_len] = ' ';
	memcpy(rq->key + host_len + 1, rq->target, target_len + 1);
	rq->host = rq->key + rq->key_len + 1;
	memcpy(rq->host, rq->key, host_len);
	rq->host[host_len] = '\0';
	return true;
}

/* The first call: checks the request's fields and decides what the cache may do. */
static void request_begin(struct request *rq, const char *method, const char *version)
{
	struct frontend *fe = rq->fe;
	struct field_scan f;
	const char *reason;
	int status;

	rq->method = method;
	rq->version = version;
	memset(&f, 0, sizeof(f));
	policy_cc_init(&f.cc);
	MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, scan_field, &f);
	rq->user_agent = f.user_agent;
	rq->referer = f.referer;
	status = http_framing_check(&f.framing, strcmp(version, MHD_HTTP_VERSION_1_1) == 0,
				    LIVE(fe->cfg.max_body), &reason);
	if (status) {
		refuse(rq, status, reason);
		return;
	}
	if (!parse_target(rq, f.framing.host)) {
		refuse(rq, 503, "the proxy is out of memory");
		return;
	}
	if (f.cache_control == false && f.pragma_no_cache)
		f.cc.flags |= CC_NO_CACHE;	/* RFC 9111 §5.4 */
	rq->get = strcmp(method, "GET") == 0;
	rq->head = strcmp(method, "HEAD") == 0;
	rq->unsafe = !rq->get && !rq->head && strcmp(method, "OPTIONS") != 0 &&
		     strcmp(method, "TRACE") != 0;
	rq->policy.get = rq->get && !f.conditional;
	rq->policy.authorization = f.authorization;
	rq->policy.cc = f.cc;
	/* RFC 9111 §3.5: a request with Authorization may use what the cache holds; only its
	 * own response is stored under the stricter rule (policy_storable()) */
	rq->lookup = (rq->get || rq->head) && !f.conditional;
	rq->cond_local = rq->lookup && (f.inm || f.ims);
	rq->inm = f.inm;
	rq->ims = f.ims;
	rq->coalesce = rq->get && !f.authorization && !f.conditional && !f.range &&
		       !(f.cc.flags & CC_NO_STORE);
	rq->cache = rq->lookup ? EXCHANGE_MISS : EXCHANGE_BYPASS;
	rq->fwd = rq->lookup ? FWD_URI_MISS : FWD_BYPASS;
}

/* Keeps up to --max-body bytes of the request body; past that, drops them and remembers
 * 413. Returns false once more than BODY_DISCARD_MAX bytes were dropped: the connection is
 * then closed rather than read on forever (libmicrohttpd 0.9.75 cannot answer before the
 * body has been read). */
static bool request_body(struct request *rq, const char *data, size_t n)
{
	uint64_t max = LIVE(rq->fe->cfg.max_body);

	if (rq->error_status) {
		rq->discarded += n;
		return rq->discarded <= BODY_DISCARD_MAX;
	}
	if (n > max - rq->body_len) {
		refuse(rq, 413, "the request body is too large");
		free(rq->body);
		rq->body = NULL;
		rq->body_len = rq->body_cap = 0;
		rq->discarded = n;
		return true;
	}
	if (rq->body_len + n > rq->body_cap) {
		size_t cap = rq->body_cap ? rq->body_cap : 4096;
		char *body;

		while (cap < rq->body_len + n)
			cap *= 2;
		if (cap > max)
			cap = (size_t)max;
		body = realloc(rq->body, cap);
		if (body == NULL) {
			refuse(rq, 503, "the proxy is out of memory");
			return true;
		}
		rq->body = body;
		rq->body_cap = cap;
	}
	memcpy(rq->body + rq->body_len, data, n);
	rq->body_len += n;
	return true;
}

/* The request is complete: answer from the cache or fetch. */
static enum MHD_Result dispatch(struct request *rq)
{
	if (rq->error_status)
		return respond_error(rq, rq->error_status, rq->error_reason);
	if (rq->lookup) {
		struct object *o = lookup(rq);

		if (o) {
			int r = answer_stored(rq, o);

			object_put(o);
			if (r != 0)
				return r > 0 ? MHD_YES : MHD_NO;
		}
		if (rq->policy.cc.flags & CC_ONLY_IF_CACHED) {
			/* RFC 9111 §5.2.1.7 */
			rq->cache = EXCHANGE_MISS;
			rq->fwd = FWD_NONE;	/* not forwarded either */
			return respond_error(rq, 504, "only-if-cached, and nothing usable is stored");
		}
	}
	return start_fetch(rq, rq->coalesce);
}

/* ---- libmicrohttpd callbacks ------------------------------------------------------------ */

void *frontend_uri_log(void *cls, const char *uri, struct MHD_Connection *connection)
{
	struct frontend *fe = cls;
	size_t len = strlen(uri);
	struct request *rq = malloc(sizeof(*rq) + len + 1);

	if (rq == NULL)
		return NULL;
	memset(rq, 0, sizeof(*rq));
	rq->fe = fe;
	rq->conn = connection;
	memcpy(rq->raw, uri, len + 1);
	rq->target = rq->raw;
	rq->start_us = now_us();
	clock_gettime(CLOCK_REALTIME, &rq->start);
	atomic_fetch_add(&fe->in_flight, 1);
	return rq;
}

enum MHD_Result frontend_handler(void *cls, struct MHD_Connection *connection,
				 const char *url, const char *method, const char *version,
				 const char *upload_data, size_t *upload_data_size,
				 void **con_cls)
{
	struct request *rq = *con_cls;

	(void)cls;
	(void)url;	/* decoded; the raw target came through frontend_uri_log() */
	if (rq == NULL)
		return MHD_NO;
	rq->conn = connection;
	switch (rq->phase) {
	case REQ_NEW:
		request_begin(rq, method, version);
		rq->phase = REQ_BODY;
		/* refuse before reading any body; MHD then closes the connection */
		if (rq->error_status)
			return respond_error(rq, rq->error_status, rq->error_reason);
		return MHD_YES;
	case REQ_BODY:
		if (*upload_data_size > 0) {
			bool go_on = request_body(rq, upload_data, *upload_data_size);

			*upload_data_size = 0;
			return go_on ? MHD_YES : MHD_NO;
		}
		return dispatch(rq);
	case REQ_WAITING:
		return resumed(rq);
	case REQ_ANSWERED:
		break;
	}
	return MHD_YES;
}

/* Tells every observer what the request was. */
static void report_exchange(struct request *rq, struct MHD_Connection *conn,
			    enum MHD_RequestTerminationCode toe)
{
	struct frontend *fe = rq->fe;
	char addr[INET6_ADDRSTRLEN + 8];
	struct exchange ex = {
		.method = rq->method ? rq->method : "-",
		.target = rq->raw,
		.version = rq->version ? rq->version : "-",
		.host = rq->host ? rq->host : "",
		.client = addr,
		.user_agent = rq->user_agent,
		.referer = rq->referer,
		.status = rq->status,
		.cache = rq->cache,
		.completed = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK,
		.coalesced = rq->coalesced,
		.bytes_in = rq->body_len,
		.bytes_out = rq->sent ? rq->sent->sent : rq->bytes_out,
		.upstream_us = -1,
		.total_us = now_us() - rq->start_us,
		.start = rq->start,
	};

	if (rq->backend[0]) {
		ex.backend = rq->backend;
		ex.upstream_us = rq->upstream_us;
	}
	client_address(conn, addr, sizeof(addr));
	for (unsigned i = 0; i < fe->nobservers; i++)
		fe->observers[i].fn(fe->observers[i].data, &ex);
}

void frontend_observe(struct frontend *fe, exchange_observer_fn *fn, void *data)
{
	if (fe->nobservers < FRONTEND_MAX_OBSERVERS)
		fe->observers[fe->nobservers++] = (struct frontend_observer){fn, data};
}

void frontend_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
			enum MHD_RequestTerminationCode toe)
{
	struct frontend *fe = cls;
	struct request *rq = *con_cls;

	if (rq == NULL)
		return;
	request_drop_stream(rq);
	if (fe->nobservers)
		report_exchange(rq, connection, toe);
	if (rq->sent)
		stream_put(rq->sent);
	if (rq->target_owned)
		free(rq->target);
	free(rq->key);
	free(rq->vkey);
	free(rq->body);
	if (rq->stale)
		object_put(rq->stale);
	free(rq);
	*con_cls = NULL;
	if (atomic_fetch_sub(&fe->in_flight, 1) == 1 && atomic_load(&fe->draining)) {
		uint64_t one = 1;

		/* wake main(): the last request in flight during a drain is done */
		if (write(fe->idle_fd, &one, sizeof(one)) < 0)
			log_warn("cannot signal the end of the drain: %s", strerror(errno));
	}
}

size_t frontend_unescape(void *cls, struct MHD_Connection *connection, char *s)
{
	(void)cls;
	(void)connection;
	return strlen(s);
}

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
	const char *method;		/* libmicrohttpd's, valid until the request completes */
	bool get, head;
	bool lookup;			/* may be answered from the cache */
	bool coalesce;			/* may share a fetch with others */
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
	if (status == 503) {
		char after[16];

		snprintf(after, sizeof(after), "%u", rq->fe->cfg.retry_after_s);
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

static void add_object_fields(struct MHD_Response *r, const struct object *o)
{
	for (size_t i = 0; i < o->fields.n; i++)
		if (strcasecmp(o->fields.v[i].name, "Age") != 0)
			add_field(r, o->fields.v[i].name, o->fields.v[i].value);
}

/* A response on the stored body of <o> with Age <age>; it holds a reference to <o>. */
static struct MHD_Response *hit_build(struct object *o, long long age)
{
	struct MHD_Response *r;
	char age_s[24];

	object_get(o);
	r = MHD_create_response_from_buffer_with_free_callback_cls(o->len, o->body, hit_free, o);
	if (r == NULL) {
		object_put(o);
		return NULL;
	}
	add_object_fields(r, o);
	snprintf(age_s, sizeof(age_s), "%lld", age);
	add_field(r, "Age", age_s);
	add_field(r, "X-Cache", "HIT");
	return r;
}

/* Answers <rq> from the stored object <o> when it is fresh. Returns 1 when a response was
 * queued, 0 when <o> is stale (the caller fetches), -1 when queueing failed. */
static int respond_hit(struct request *rq, struct object *o)
{
	long long age = policy_current_age(o->initial_age, o->response_time, time(NULL));
	struct MHD_Response *r, *old = NULL;
	enum MHD_Result ret = MHD_NO;

	if (age >= o->lifetime)
		return 0;
	pthread_mutex_lock(&o->lock);
	if (o->unlinked) {
		/* evicted since the lookup: answer once, keep nothing */
		r = hit_build(o, age);
		if (r) {
			ret = MHD_queue_response(rq->conn, (unsigned)o->status, r);
			MHD_destroy_response(r);
		}
	} else {
		if (o->hit_response == NULL || o->hit_age != age) {
			r = hit_build(o, age);
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
	rq->cache = EXCHANGE_HIT;
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
	add_object_fields(r, o);
	{
		long long age = policy_current_age(o->initial_age, o->response_time, time(NULL));
		char age_s[24];

		/* a HIT always says its age; a MISS passes on an age the backend reported */
		if (rq->cache == EXCHANGE_HIT || age > 0) {
			snprintf(age_s, sizeof(age_s), "%lld", age);
			add_field(r, "Age", age_s);
		}
	}
	add_field(r, "X-Cache", exchange_cache_names[rq->cache]);
	if (o->backend[0] && rq->cache != EXCHANGE_HIT) {
		memcpy(rq->backend, o->backend, sizeof(rq->backend));
		rq->upstream_us = o->upstream_us;
	}
	ret = MHD_queue_response(rq->conn, (unsigned)o->status, r);
	MHD_destroy_response(r);
	rq->phase = REQ_ANSWERED;
	rq->status = o->status;
	request_drop_stream(rq);	/* body-less answers are done with the object */
	return ret;
}

/* ---- fetches ---------------------------------------------------------------------------- */

/* object.h's on_complete: a complete, storable response goes into the cache before any
 * reader sees its end (the object's lock is held; cache_insert() takes only its own). */
static void store_object(struct object *o, void *data)
{
	struct frontend *fe = data;

	o->entry.size = object_size(o);
	cache_insert(fe->cache, &o->entry);
}

static struct object *make_object(void *arg)
{
	struct request *rq = arg;
	const struct frontend_config *cfg = &rq->fe->cfg;
	struct object *o;

	o = object_new(rq->key, rq->key_len, cfg->max_object_size, cfg->stream_window,
		       cfg->coalesce_max, object_unlinked);
	if (o) {
		o->candidate = rq->get;		/* policy_storable() weighs Authorization */
		o->plain = rq->coalesce;
		if (o->candidate) {
			o->on_complete = store_object;
			o->on_complete_data = rq->fe;
		}
	}
	return o;
}

/* inflight_claim()'s second look in the cache (the table's lock held). */
static struct object *lookup_stored(void *arg)
{
	struct request *rq = arg;

	struct object *o;

	if (!rq->lookup || (rq->policy.cc.flags & CC_NO_CACHE))
		return NULL;	/* this request may not be answered from the store */
	o = (struct object *)cache_lookup(rq->fe->cache, rq->key, rq->key_len);
	if (o && policy_current_age(o->initial_age, o->response_time, time(NULL)) >= o->lifetime) {
		object_put(o);	/* stale: this request starts the one fetch others join */
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
	if (cfg->preserve_host && rq->host[0])
		walk_append(&w, "Host", rq->host);
	client_address(rq->conn, addr, sizeof(addr));
	headers_join(joined, sizeof(joined), w.forwarded_for, addr);
	walk_append(&w, "X-Forwarded-For", joined);
	walk_append(&w, "X-Forwarded-Proto", "http");
	if (rq->host[0])
		walk_append(&w, "X-Forwarded-Host", rq->host);
	headers_join(joined, sizeof(joined), w.via, cfg->via);
	walk_append(&w, "Via", joined);
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

/* Hands <rq> to a fetch: joins the one running for its key when <coalesce>, else starts
 * one. The connection is suspended until the fields are known. */
static enum MHD_Result start_fetch(struct request *rq, bool coalesce)
{
	struct frontend *fe = rq->fe;
	enum inflight_claim claim = INFLIGHT_PASS;
	struct fetch_spec spec;
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
		claim = inflight_claim(fe->inflight, rq->key, rq->key_len, &s->reader, now_ms(),
				       lookup_stored, make_object, rq, &o);
	if (claim == INFLIGHT_STORED) {
		/* stored between our lookup and the claim */
		int r = respond_hit(rq, o);

		object_put(o);
		free(s);
		if (r != 0)
			return r > 0 ? MHD_YES : MHD_NO;
		return start_fetch(rq, false);
	}
	if (claim == INFLIGHT_PASS) {
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
		rq->coalesced = true;
		pthread_mutex_lock(&o->lock);
		if (o->state == OBJECT_COMPLETE && o->storable)
			rq->cache = EXCHANGE_HIT;	/* whole and kept: answered from memory */
		pthread_mutex_unlock(&o->lock);
		if (object_wait_fields(o, &s->reader))
			return MHD_YES;
		return resumed(rq);
	}

	memset(&spec, 0, sizeof(spec));
	spec.method = strdup(rq->method);
	spec.target = strdup(rq->target);
	spec.headers = upstream_fields(rq);
	spec.policy = rq->policy;
	spec.may_store = o->candidate;
	if (spec.method == NULL || spec.target == NULL || spec.headers == NULL) {
		fetch_spec_free(&spec);
		object_finish(o, false, 503, "the proxy is out of memory");
		frontend_upstream_hooks.finished(fe, o);
		request_drop_stream(rq);
		return respond_error(rq, 503, "the proxy is out of memory");
	}
	spec.body = rq->body;
	spec.body_len = rq->body_len;
	rq->body = NULL;
	object_get(o);
	spec.obj = o;
	/* suspend first: the upstream thread may resume us as soon as it has the fetch */
	object_wait_fields(o, &s->reader);
	upstream_submit(fe->upstream, &spec);
	return MHD_YES;
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
		return respond_error(rq, status, reason);
	}
	return respond_stream(rq);
}

/* The fetch's fields are known: a response that is not kept leaves the coalescing table
 * so that later requests do not queue behind it, and one not for sharing marks its key
 * hit-for-miss for a while. */
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
	inflight_mark_pass(fe->inflight, o->entry.key, o->entry.key_len, now,
			   now + fe->cfg.hit_for_miss_ms);
}

/* The fetch ended: a complete, storable response goes into the cache. */
static void hook_finished(void *data, struct object *o)
{
	struct frontend *fe = data;
	bool store;

	if (!o->candidate)
		return;
	pthread_mutex_lock(&o->lock);
	store = o->state == OBJECT_COMPLETE && o->storable;
	pthread_mutex_unlock(&o->lock);
	/* stored already (store_object(), when it completed): it leaves the coalescing table
	 * only now, so a request in between finds one or the other, never neither */
	if (store)
		inflight_unmark(fe->inflight, o->entry.key, o->entry.key_len);
	inflight_remove(fe->inflight, o);
}

const struct upstream_hooks frontend_upstream_hooks = {
	.fields = hook_fields,
	.finished = hook_finished,
};

/* ---- reading the request ---------------------------------------------------------------- */

/* What the first call learns from the request's fields. */
struct field_scan {
	struct http_framing framing;
	bool authorization, conditional, range;
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
	} else if (strncasecmp(name, "If-", 3) == 0) {
		f->conditional = true;
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
				    fe->cfg.max_body, &reason);
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
	rq->policy.get = rq->get;
	rq->policy.authorization = f.authorization;
	rq->policy.cc = f.cc;
	rq->lookup = (rq->get || rq->head) && !f.authorization;
	rq->coalesce = rq->get && !f.authorization && !f.conditional && !f.range &&
		       !(f.cc.flags & CC_NO_STORE);
	rq->cache = rq->lookup ? EXCHANGE_MISS : EXCHANGE_BYPASS;
}

/* Keeps up to --max-body bytes of the request body; past that, drops them and remembers
 * 413. Returns false once more than BODY_DISCARD_MAX bytes were dropped: the connection is
 * then closed rather than read on forever (libmicrohttpd 0.9.75 cannot answer before the
 * body has been read). */
static bool request_body(struct request *rq, const char *data, size_t n)
{
	uint64_t max = rq->fe->cfg.max_body;

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
	if (rq->lookup && !(rq->policy.cc.flags & CC_NO_CACHE)) {
		struct cache_entry *e = cache_lookup(rq->fe->cache, rq->key, rq->key_len);

		if (e) {
			int r = respond_hit(rq, (struct object *)e);

			object_put((struct object *)e);
			if (r != 0)
				return r > 0 ? MHD_YES : MHD_NO;
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
	free(rq->body);
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

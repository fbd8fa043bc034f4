/* upstream.c - the upstream thread and its libcurl multi loop (see upstream.h).
 *
 * Cross-thread traffic goes through one mutex-guarded inbox: new fetches from client
 * threads, and requests about running ones (unpause when a slow reader made room, abort
 * when every reader left a body nobody keeps). Everything else - the easy handles, the
 * list of running fetches, their timers - belongs to the upstream thread alone.
 */
#include "config.h"

#include "upstream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "log.h"
#include "opts.h"

#define SCAN_MS 100			/* how often timers are checked while fetches run */
#define RECV_BUFFER (64 * 1024)		/* libcurl's receive buffer per transfer */
#define SPARE_HANDLES 256		/* easy handles kept for reuse */

/* What CURLOPT_PRIVATE points at: a client's fetch or a health probe. */
enum transfer_kind {
	TRANSFER_FETCH = 0,
	TRANSFER_PROBE,
};

#define MAX_TRIES 8			/* backends one fetch may try */

struct fetch {
	enum transfer_kind kind;	/* first: see transfer_kind */
	struct upstream *up;
	struct backend *be;		/* where it runs now */
	struct backend *tried[MAX_TRIES];
	size_t ntried;
	bool retry_status;		/* a 502/503/504 to try elsewhere */
	CURL *easy;
	struct fetch_spec spec;		/* spec.obj is the object being filled */
	char *url;
	struct header_list fields;	/* the response's, while they arrive */
	int status;
	int64_t length;
	uint64_t received;		/* body bytes */
	bool fields_done;
	bool body_done;			/* Content-Length bytes arrived: the object is
					 * complete before libcurl reports the end */
	bool paused;
	const char *error;		/* why a callback stopped the transfer */
	time_t request_time;
	uint64_t started_ms, last_ms;
	uint64_t started_us;		/* this try's request went out */
	struct fetch *prev, *next;	/* the running list, or the inbox */
	char errbuf[CURL_ERROR_SIZE];
};

enum note_kind {
	NOTE_UNPAUSE = 0,
	NOTE_ABORT,
};

struct note {
	enum note_kind kind;
	struct object *obj;		/* referenced */
	struct note *next;
};

/* A function another thread runs on the upstream thread (upstream_call()). */
struct call {
	void (*fn)(struct upstream *u, void *arg);
	void *arg;
	bool done;			/* under the upstream's lock */
	struct call *next;
};

/* An active health check of one backend. */
struct probe {
	enum transfer_kind kind;	/* first: see transfer_kind */
	struct backend *be;
	CURL *easy;
	bool running;
	char url[BALANCER_MAX_NAME + 1024];
};

struct upstream {
	struct upstream_config cfg;
	char *via;
	char *health_path;
	struct probe *probes;		/* one per backend */
	uint64_t next_probe_ms;
	struct balancer **retired;	/* pools a reload replaced, freed once unused */
	size_t nretired;
	CURLM *multi;
	pthread_t thread;

	pthread_mutex_t lock;		/* guards the inbox and stopping */
	struct fetch *inbox_head, *inbox_tail;
	struct note *notes;
	struct call *calls;
	pthread_cond_t call_done;
	bool stopping;

	/* the upstream thread's own */
	struct fetch *running;
	uint64_t next_scan_ms;
	CURL *spare[SPARE_HANDLES];	/* reset easy handles: a new one costs ~70 KiB of
					 * allocations, a fifth of a small miss's CPU */
	unsigned nspare;
};

uint64_t upstream_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void fetch_spec_free(struct fetch_spec *spec)
{
	free(spec->method);
	free(spec->target);
	curl_slist_free_all(spec->headers);
	headers_free(&spec->client_fields);
	free(spec->body);
	if (spec->obj)
		object_put(spec->obj);
	memset(spec, 0, sizeof(*spec));
}

/* ---- notes from client threads ---------------------------------------------------------- */

static void post_note(struct object *o, enum note_kind kind)
{
	struct upstream *u = NULL;
	struct note *n;
	bool stopping;

	/* the fetch is freed only after object_finish() cleared writer_data, under this lock */
	pthread_mutex_lock(&o->lock);
	if (o->writer_data)
		u = ((struct fetch *)o->writer_data)->up;
	pthread_mutex_unlock(&o->lock);
	if (u == NULL)
		return;
	pthread_mutex_lock(&u->lock);
	stopping = u->stopping;
	pthread_mutex_unlock(&u->lock);
	if (stopping)
		return;		/* every fetch is failed by now: nothing to pause or abort */
	n = malloc(sizeof(*n));
	if (n == NULL) {
		log_error("out of memory: a paused or abandoned fetch waits for its timeout");
		return;
	}
	object_get(o);
	n->obj = o;
	n->kind = kind;
	pthread_mutex_lock(&u->lock);
	n->next = u->notes;
	u->notes = n;
	pthread_mutex_unlock(&u->lock);
	curl_multi_wakeup(u->multi);
}

static void on_space(struct object *o)
{
	post_note(o, NOTE_UNPAUSE);
}

static void on_abandoned(struct object *o)
{
	post_note(o, NOTE_ABORT);
}

const struct object_writer_ops upstream_writer_ops = {
	.on_space = on_space,
	.on_abandoned = on_abandoned,
};

/* ---- the response, as libcurl delivers it (upstream thread) ----------------------------- */

/* Parses "HTTP/1.1 200 OK". Returns the status, or -1. */
static int status_line(const char *b, size_t len)
{
	const char *sp = memchr(b, ' ', len);
	int status = 0;

	if (sp == NULL || (size_t)(sp - b) + 4 > len)
		return -1;
	for (int i = 1; i <= 3; i++) {
		if (sp[i] < '0' || sp[i] > '9')
			return -1;
		status = status * 10 + (sp[i] - '0');
	}
	return status;
}

/* Reads Content-Length: returns the length, -1 when absent, -2 when invalid or several
 * that disagree (RFC 9112 §6.3: the response is unreadable). */
static int64_t content_length(const struct header_list *l)
{
	int64_t len = -1;

	for (size_t i = 0; i < l->n; i++) {
		long long v;

		if (strcasecmp(l->v[i].name, "Content-Length") != 0)
			continue;
		if (opts_parse_int(l->v[i].value, &v) || v < 0 || (len >= 0 && v != len))
			return -2;
		len = v;
	}
	return len;
}

static void log_change(const struct balancer_change *c)
{
	if (c->up)
		log_info("backend %s is up: %s", c->backend->name, c->why);
	else
		log_warn("backend %s is down: %s", c->backend->name, c->why);
}

/* A passive check: how a fetch went on <be>. Without active checks nothing would bring an
 * ejected backend back, so then there is no ejection either. */
static void note_traffic(struct upstream *u, struct backend *be, bool ok, const char *why)
{
	struct balancer_change c;

	if (be && !balancer_owns(u->cfg.balancer, be))
		return;		/* a backend a reload removed: its pool is on the way out */
	if (be && !ok)
		atomic_fetch_add_explicit(&be->errors, 1, memory_order_relaxed);
	if (be && u->cfg.health_interval_ms && balancer_traffic_result(u->cfg.balancer, be, ok, upstream_now_ms(), &c)) {
		if (why)
			c.why = why;
		log_change(&c);
	}
}

static bool method_idempotent(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "PUT") == 0 ||
	       strcmp(m, "DELETE") == 0 || strcmp(m, "OPTIONS") == 0 || strcmp(m, "TRACE") == 0;
}

/* Says whether <f>, failed before any response byte reached a client, may try another
 * backend: within --retries, and for a method that is not idempotent only when the request
 * provably never reached the backend (<unsent>: the connection was never made). */
static bool may_retry(const struct fetch *f, bool unsent)
{
	if (f->fields_done || f->ntried > f->up->cfg.retries || f->ntried >= MAX_TRIES)
		return false;
	return unsent || method_idempotent(f->spec.method);
}

/* policy_field_fn over the client's request fields. */
static const char *client_field(void *ctx, const char *name, char *buf, size_t len)
{
	const struct header_list *l = ctx;
	size_t used = 0;
	bool found = false;

	buf[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		if (strcasecmp(l->v[i].name, name) != 0)
			continue;
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s",
					 found ? ", " : "", l->v[i].value);
		found = true;
	}
	if (used >= len)
		buf[len - 1] = '\0';
	return found ? buf : NULL;
}

/* Sets o->vary_names and o->vary_key from the response's Vary fields and the request sent.
 * Returns false when they cannot be kept (too long, out of memory). */
static bool vary_setup(struct fetch *f, struct object *o)
{
	char vary[1024] = "", names[1024], key[8192];
	const struct header_list *l = &o->fields;

	for (size_t i = 0; i < l->n; i++) {
		char joined[sizeof(vary)];

		if (strcasecmp(l->v[i].name, "Vary") != 0)
			continue;
		if (headers_join(joined, sizeof(joined), vary, l->v[i].value) != 0)
			return false;
		memcpy(vary, joined, sizeof(vary));
	}
	if (policy_vary_names(vary, names, sizeof(names)) <= 0)
		return policy_vary_names(vary, names, sizeof(names)) == 0;
	if (f->spec.client_fields_cut)
		return false;	/* the key would not be the one lookups compute */
	if (policy_vary_key(names, client_field, &f->spec.client_fields, key, sizeof(key)) < 0)
		return false;
	o->vary_names = strdup(names);
	o->vary_key = strdup(key);
	return o->vary_names && o->vary_key;
}

static void body_complete(struct fetch *f);

/* The object's status and fields are set: the owner's hooks and the readers learn them
 * (the answered hook first, before any reader). <keep> and <shared> as for
 * object_fields_done(). Returns false when every client left a body not kept. */
static bool publish_fields(struct fetch *f, bool keep, bool shared)
{
	struct upstream *u = f->up;
	struct object *o = f->spec.obj;

	f->fields_done = true;
	f->last_ms = upstream_now_ms();
	snprintf(o->backend, sizeof(o->backend), "%s", f->be->name);
	o->upstream_us = (int64_t)(now_us() - f->started_us);
	if (u->cfg.hooks->answered)
		u->cfg.hooks->answered(u->cfg.hooks_data, o);
	if (!object_fields_done(o, keep, shared)) {
		f->error = "every client left";
		return false;
	}
	if (u->cfg.hooks->fields)
		u->cfg.hooks->fields(u->cfg.hooks_data, o, shared);
	return true;
}

/* Lets go of the stored response a fetch revalidated, once it is no longer needed: a
 * stored object must not keep its predecessor's body alive. */
static void drop_validating(struct object *o)
{
	if (o->validating) {
		object_put(o->validating);
		o->validating = NULL;
	}
}

/* A 304 answered the revalidation of o->validating (RFC 9111 §4.3.3): <o> becomes the
 * stored response with its fields updated from the 304's (§3.2: each field the 304 has
 * replaces the stored ones of that name) and the stored body, complete at once. */
static bool revalidated(struct fetch *f, time_t now)
{
	struct upstream *u = f->up;
	struct object *o = f->spec.obj, *old = o->validating;
	struct header_list merged = { 0 };
	struct policy_response pr;
	const char *etag = headers_get(&f->fields, "ETag");
	const char *old_etag = headers_get(&old->fields, "ETag");
	bool store, dated = headers_get(&f->fields, "Date") != NULL;
	int r = 0;

	/* what fails from here is not the backend's doing: no retry, no mark against it */
	f->fields_done = true;
	if (etag && etag[0] == '"' && (old_etag == NULL || strcmp(etag, old_etag) != 0)) {
		/* §4.3.4: a strong validator of another representation updates nothing */
		o->validator_mismatch = true;
		f->error = "the backend's 304 names another representation than the stored one";
		return false;
	}
	for (size_t i = 0; i < old->fields.n && r == 0; i++) {
		const char *name = old->fields.v[i].name, *value = old->fields.v[i].value;

		/* the stored Age and (when the 304 has none) Date describe the old response:
		 * kept, they would age the refreshed one from the start */
		if (headers_get(&f->fields, name) == NULL && strcasecmp(name, "Age") != 0 &&
		    (dated || strcasecmp(name, "Date") != 0))
			r = headers_add(&merged, name, strlen(name), value, strlen(value));
	}
	for (size_t i = 0; i < f->fields.n && r == 0; i++) {
		const char *name = f->fields.v[i].name, *value = f->fields.v[i].value;

		r = headers_add(&merged, name, strlen(name), value, strlen(value));
	}
	if (r == 0 && !dated) {
		char date[HTTP_DATE_LEN];

		http_date_format(now, date);	/* RFC 9110 §6.6.1: a cache adds one */
		r = headers_add(&merged, "Date", 4, date, strlen(date));
	}
	if (r) {
		headers_free(&merged);
		f->error = "the revalidated response's fields are too large";
		return false;
	}
	headers_free(&f->fields);
	policy_response_read(&pr, old->status, &merged, now);
	o->status = old->status;
	o->fields = merged;
	o->length = (int64_t)old->len;
	o->response_time = now;
	o->lifetime = policy_lifetime(&u->cfg.policy, &pr);
	o->initial_age = policy_initial_age(&pr, f->request_time);
	o->cc = pr.cc;
	o->validator = pr.etag || pr.has_last_modified;
	o->revalidated = true;
	if (old->vary_names) {
		o->vary_names = strdup(old->vary_names);
		o->vary_key = old->vary_key ? strdup(old->vary_key) : NULL;
		if (o->vary_names == NULL || (old->vary_key && o->vary_key == NULL)) {
			f->error = "the proxy is out of memory";
			return false;
		}
	}
	store = f->spec.may_store && policy_storable(&u->cfg.policy, &f->spec.policy, &pr, NULL) &&
		policy_worth_keeping(&pr, o->lifetime, o->initial_age);
	o->store = store;
	/* the whole body is here already: it is kept whoever reads it */
	if (!publish_fields(f, true, store))
		return false;
	if (old->len && object_append(o, old->body, old->len) != 0) {
		f->error = "the proxy is out of memory";
		return false;
	}
	f->received = old->len;
	body_complete(f);
	drop_validating(o);
	return true;
}

/* The status and fields are all here: decide what becomes of the response and let the
 * readers go. Returns false when the response is unusable. */
static bool fields_complete(struct fetch *f)
{
	struct upstream *u = f->up;
	struct object *o = f->spec.obj;
	struct policy_response pr;
	char via[1024];
	const char *why = NULL;
	bool storable, shared;
	time_t now = time(NULL);

	if (f->status == 502 || f->status == 503 || f->status == 504) {
		note_traffic(u, f->be, false, "it answers 5xx");
		/* with nowhere else to go, the backend's own answer is the best there is */
		if (may_retry(f, false) &&
		    balancer_available(u->cfg.balancer, f->tried, f->ntried)) {
			f->retry_status = true;		/* fetch_done() tries elsewhere */
			return false;
		}
	} else {
		note_traffic(u, f->be, true, NULL);
	}
	f->length = content_length(&f->fields);
	if (f->length == -2) {
		f->error = "the backend sent an invalid Content-Length";
		return false;
	}
	if (headers_get(&f->fields, "Transfer-Encoding"))
		f->length = -1;		/* RFC 9112 §6.3: the transfer coding frames the body */
	policy_response_read(&pr, f->status, &f->fields, now);
	headers_strip_hop_by_hop(&f->fields);
	headers_remove(&f->fields, "Content-Length");
	if (headers_join(via, sizeof(via), headers_get(&f->fields, "Via"), u->via) == 0) {
		headers_remove(&f->fields, "Via");
		if (headers_add(&f->fields, "Via", 3, via, strlen(via)) < 0) {
			f->error = "the backend's response fields are too large";
			return false;
		}
	}
	if (f->status == 304 && o->validating)
		return revalidated(f, now);
	drop_validating(o);	/* a full response replaces it */
	storable = f->spec.may_store &&
		   policy_storable(&u->cfg.policy, &f->spec.policy, &pr, &why);
	o->status = f->status;
	o->fields = f->fields;
	memset(&f->fields, 0, sizeof(f->fields));
	o->length = f->length;
	o->head = strcmp(f->spec.method, "HEAD") == 0;
	o->response_time = now;
	o->lifetime = policy_lifetime(&u->cfg.policy, &pr);
	o->initial_age = policy_initial_age(&pr, f->request_time);
	o->cc = pr.cc;
	o->validator = pr.etag || pr.has_last_modified;
	if (storable && !policy_worth_keeping(&pr, o->lifetime, o->initial_age)) {
		storable = false;
		why = "response is stale (or no-cache) and has no validator";
	}
	if (storable && pr.vary && !vary_setup(f, o)) {
		storable = false;
		why = "response's Vary cannot be kept";
	}
	shared = storable;
	if (storable && o->length >= 0 && (uint64_t)o->length > o->max_size) {
		storable = false;	/* shareable, but too big to keep: it streams */
		why = "response is larger than --max-object-size";
	}
	o->store = storable;
	if (!storable && f->spec.may_store)
		log_debug("not stored: %s: %s", o->entry.key, why ? why : "?");
	if (!publish_fields(f, storable, shared))
		return false;
	/* a response without a body is whole now: stored before its client can ask again,
	 * not when libcurl gets round to reporting the end */
	if (o->head || f->length == 0 || f->status == 204 || f->status == 304 ||
	    f->status < 200)
		body_complete(f);
	return true;
}

static size_t header_cb(char *b, size_t size, size_t n, void *p)
{
	struct fetch *f = p;
	size_t len = size * n;
	int r;

	if (f->fields_done)
		return len;	/* trailers: not forwarded */
	if (len >= 5 && memcmp(b, "HTTP/", 5) == 0) {
		/* a new status line: a 1xx before it is forgotten */
		headers_free(&f->fields);
		f->status = status_line(b, len);
		if (f->status < 100) {
			f->error = "the backend sent a malformed status line";
			return 0;
		}
		return len;
	}
	if (len <= 2 && (b[0] == '\r' || b[0] == '\n')) {
		if (f->status >= 200 && !fields_complete(f))
			return 0;
		return len;
	}
	r = headers_add_line(&f->fields, b, len);
	if (r == -E2BIG || r == -ENOMEM) {
		f->error = "the backend's response fields are too large";
		return 0;
	}
	return len;	/* a malformed line is dropped, as a recipient may (RFC 9112 §5) */
}

/* The whole body is here: the object completes (and may be stored) now, not when libcurl
 * gets round to reporting the transfer's end - a client that read the last byte and asks
 * again at once finds it in the cache. */
static void body_complete(struct fetch *f)
{
	struct upstream *u = f->up;

	f->body_done = true;
	object_finish(f->spec.obj, true, 0, NULL);
	if (u->cfg.hooks->finished)
		u->cfg.hooks->finished(u->cfg.hooks_data, f->spec.obj);
}

static size_t write_cb(char *b, size_t size, size_t n, void *p)
{
	struct fetch *f = p;
	size_t len = size * n;

	if (!f->fields_done) {
		f->error = "the backend sent a body before its fields";
		return 0;
	}
	switch (object_append(f->spec.obj, b, len)) {
	case -EAGAIN:
		f->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	case -EPIPE:
		f->error = "every client left, or the body outran its Content-Length";
		return 0;
	case -ENOMEM:
		f->error = "the proxy is out of memory";
		return 0;
	}
	f->last_ms = upstream_now_ms();
	f->received += len;
	if (f->length >= 0 && f->received == (uint64_t)f->length)
		body_complete(f);
	return len;
}

/* ---- fetch lifecycle (upstream thread) -------------------------------------------------- */

static void running_add(struct upstream *u, struct fetch *f)
{
	f->prev = NULL;
	f->next = u->running;
	if (u->running)
		u->running->prev = f;
	u->running = f;
}

static void running_del(struct upstream *u, struct fetch *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		u->running = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
}

/* Ends <f>: fails or completes its object, tells the owner, frees the fetch. <f> must not
 * be in the multi handle any more. */
static void fetch_end(struct fetch *f, bool ok, int status, const char *reason)
{
	struct upstream *u = f->up;
	struct object *o = f->spec.obj;

	if (f->be)
		atomic_fetch_sub_explicit(&f->be->in_flight, 1, memory_order_relaxed);

	if (f->body_done) {
		/* finished already; what libcurl says now concerns only the connection */
	} else {
		if (!ok && f->fields_done)
			log_info("%s %s: cut after %llu body bytes: %s", f->spec.method,
				 f->spec.target, (unsigned long long)f->received, reason);
		else if (!ok)
			log_info("%s %s: %d: %s", f->spec.method, f->spec.target, status, reason);
		object_finish(o, ok, status, reason);
		if (u->cfg.hooks->finished)
			u->cfg.hooks->finished(u->cfg.hooks_data, o);
	}
	if (f->easy && u->nspare < SPARE_HANDLES && f->started_ms) {
		curl_easy_reset(f->easy);
		u->spare[u->nspare++] = f->easy;
	} else if (f->easy) {
		curl_easy_cleanup(f->easy);
	}
	headers_free(&f->fields);
	free(f->url);
	fetch_spec_free(&f->spec);
	free(f);
}

static void fetch_fail(struct fetch *f, int status, const char *reason)
{
	if (f->easy)
		curl_multi_remove_handle(f->up->multi, f->easy);
	running_del(f->up, f);
	fetch_end(f, false, status, reason);
}

#define SET(opt, val)                                                  \
	do {                                                           \
		if (curl_easy_setopt(f->easy, opt, val) != CURLE_OK)   \
			return -EINVAL;                                \
	} while (0)

/* Sets the easy handle up for <f> on backend f->be. Returns 0 or a negative errno. */
static int fetch_setup(struct upstream *u, struct fetch *f)
{
	const char *method = f->spec.method;
	size_t ulen = strlen(f->be->name) + strlen(f->spec.target) + sizeof("http://");

	free(f->url);
	f->url = malloc(ulen);
	if (f->url == NULL)
		return -ENOMEM;
	snprintf(f->url, ulen, "http://%s%s", f->be->name, f->spec.target);
	SET(CURLOPT_URL, f->url);
	SET(CURLOPT_PATH_AS_IS, 1L);		/* forward the target as the client wrote it */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_HTTP_CONTENT_DECODING, 0L);	/* bodies pass as they are */
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)u->cfg.connect_timeout_ms);
	SET(CURLOPT_BUFFERSIZE, (long)RECV_BUFFER);
	SET(CURLOPT_HTTPHEADER, f->spec.headers);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, f);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, f);
	SET(CURLOPT_PRIVATE, f);
	SET(CURLOPT_ERRORBUFFER, f->errbuf);
	/* libcurl silently sends a request again when a reused connection dies before any
	 * answer; a request that is not idempotent must never travel twice */
	if (!method_idempotent(method))
		SET(CURLOPT_FRESH_CONNECT, 1L);
	if (strcmp(method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (f->spec.body || strcmp(method, "POST") == 0) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->spec.body_len);
		SET(CURLOPT_POSTFIELDS, f->spec.body ? f->spec.body : "");
		if (strcmp(method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") != 0) {
		SET(CURLOPT_CUSTOMREQUEST, method);
	}
	if (curl_multi_add_handle(u->multi, f->easy) != CURLM_OK)
		return -EINVAL;
	return 0;
}

/* Picks a backend not tried yet and starts <f> on it. Returns false (nothing started)
 * when no healthy backend is left or the set-up failed; *reason says which. */
static bool fetch_try(struct upstream *u, struct fetch *f, int *status, const char **reason)
{
	const struct cache_entry *key = &f->spec.obj->entry;
	uint64_t now = upstream_now_ms();

	f->be = balancer_pick(u->cfg.balancer, key->key, key->key_len, now, f->tried,
			      f->ntried);
	if (f->be == NULL) {
		*status = 503;
		*reason = f->ntried ? "no other healthy backend to try"
				    : "no healthy backend: every one is down";
		return false;
	}
	f->tried[f->ntried++] = f->be;
	atomic_fetch_add_explicit(&f->be->in_flight, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->be->requests, 1, memory_order_relaxed);
	if (f->easy == NULL)
		f->easy = u->nspare ? u->spare[--u->nspare] : curl_easy_init();
	if (f->easy == NULL || fetch_setup(u, f) != 0) {
		*status = 502;
		*reason = "cannot set up the backend request";
		return false;
	}
	f->started_ms = f->last_ms = now;
	f->started_us = now_us();
	return true;
}

/* Starts a new fetch. */
static void fetch_start(struct upstream *u, struct fetch *f)
{
	const char *reason;
	int status;

	if (!fetch_try(u, f, &status, &reason)) {
		fetch_end(f, false, status, reason);
		return;
	}
	pthread_mutex_lock(&f->spec.obj->lock);
	f->spec.obj->writer = &upstream_writer_ops;
	f->spec.obj->writer_data = f;
	pthread_mutex_unlock(&f->spec.obj->lock);
	running_add(u, f);
}

/* <f> failed on its backend before any response byte reached a client: tries the next
 * backend (it is out of the multi handle already). Returns false when it may not or
 * cannot; the caller then ends it. */
static bool fetch_retry(struct upstream *u, struct fetch *f, bool unsent)
{
	const char *reason;
	int status;

	const char *failed;

	if (!may_retry(f, unsent) || !balancer_available(u->cfg.balancer, f->tried, f->ntried))
		return false;	/* the client hears what went wrong with this one */
	failed = f->be->name;
	atomic_fetch_add_explicit(&f->be->retries, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&f->be->in_flight, 1, memory_order_relaxed);
	f->be = NULL;
	curl_easy_reset(f->easy);
	headers_free(&f->fields);
	f->status = 0;
	f->error = NULL;
	f->retry_status = false;
	if (fetch_try(u, f, &status, &reason)) {
		log_info("%s %s: %s failed; trying %s", f->spec.method, f->spec.target, failed,
			 f->be->name);
		return true;
	}
	f->error = reason;
	return false;
}

#undef SET

/* Maps a failed transfer to the status a waiting client gets. */
static int failure_status(CURLcode res, const char **reason)
{
	switch (res) {
	case CURLE_COULDNT_CONNECT:
		*reason = "the backend refused the connection";
		return 502;
	case CURLE_COULDNT_RESOLVE_HOST:
		*reason = "the backend's host name does not resolve";
		return 502;
	case CURLE_OPERATION_TIMEDOUT:
		*reason = "the backend did not accept the connection in time";
		return 504;
	case CURLE_GOT_NOTHING:
		*reason = "the backend closed the connection without answering";
		return 502;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
		*reason = "the backend sent a malformed response";
		return 502;
	case CURLE_PARTIAL_FILE:
		*reason = "the backend closed the connection before the body ended";
		return 502;
	default:
		*reason = "the connection to the backend failed";
		return 502;
	}
}

static void fetch_done(struct upstream *u, struct fetch *f, CURLcode res)
{
	const char *reason;
	int status;

	curl_multi_remove_handle(u->multi, f->easy);
	if (res == CURLE_OK && f->fields_done) {
		running_del(u, f);
		fetch_end(f, true, 0, NULL);
		return;
	}
	if (res == CURLE_OK)
		res = CURLE_GOT_NOTHING;
	status = failure_status(res, &reason);
	if (f->error)
		reason = f->error;
	if (!f->fields_done) {
		/* nothing reached a client yet: the next backend may do better */
		bool unsent = res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST;

		if (!f->retry_status)
			note_traffic(u, f->be, false, reason);
		if (fetch_retry(u, f, unsent))
			return;
		if (f->retry_status) {
			status = 503;
			reason = f->error ? f->error : "the backend failed";
		} else if (f->error) {
			reason = f->error;
		}
	}
	running_del(u, f);
	fetch_end(f, false, status, reason);
}

static void handle_note(struct upstream *u, struct note *n)
{
	struct fetch *f;

	pthread_mutex_lock(&n->obj->lock);
	f = n->obj->writer_data;	/* still running: only this thread ends fetches */
	pthread_mutex_unlock(&n->obj->lock);
	if (f == NULL)
		return;
	if (n->kind == NOTE_ABORT) {
		fetch_fail(f, 502, "every client left");
	} else if (f->paused) {
		f->paused = false;
		f->last_ms = upstream_now_ms();
		curl_easy_pause(f->easy, CURLPAUSE_CONT);	/* may write at once */
	}
	(void)u;
}

/* Enforces --upstream-timeout and the coalescing wait. */
static void scan_timers(struct upstream *u, uint64_t now)
{
	uint64_t timeout = u->cfg.timeout_ms;

	for (struct fetch *f = u->running, *next; f; f = next) {
		next = f->next;
		if (!f->fields_done && now - f->started_ms >= timeout) {
			curl_multi_remove_handle(u->multi, f->easy);
			note_traffic(u, f->be, false, "it did not answer within --upstream-timeout");
			if (fetch_retry(u, f, false))
				continue;
			running_del(u, f);
			fetch_end(f, false, 504, "the backend did not answer within --upstream-timeout");
		} else if (f->fields_done && !f->paused && now - f->last_ms >= timeout) {
			fetch_fail(f, 504, "the backend stalled in the body for --upstream-timeout");
		} else if (!f->fields_done && now >= u->cfg.coalesce_timeout_ms) {
			object_expire_waiters(f->spec.obj, now - u->cfg.coalesce_timeout_ms);
		}
	}
}

/* ---- active health checks (upstream thread) ---------------------------------------------- */

static size_t discard_cb(char *b, size_t size, size_t n, void *p)
{
	return size * n;
}

static void probe_start(struct upstream *u, struct probe *p)
{
	long timeout = (long)u->cfg.health_timeout_ms;
	long connect = (long)u->cfg.connect_timeout_ms;

	if (p->running)
		return;		/* the last one has not ended yet: it will, by its timeout */
	if (p->easy)
		curl_easy_reset(p->easy);
	else
		p->easy = curl_easy_init();
	if (p->easy == NULL)
		return;
	snprintf(p->url, sizeof(p->url), "http://%s%s", p->be->name, u->health_path);
	curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
	curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, connect < timeout ? connect : timeout);
	curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);
	if (curl_multi_add_handle(u->multi, p->easy) == CURLM_OK)
		p->running = true;
}

static void probe_done(struct upstream *u, struct probe *p, CURLcode res)
{
	struct balancer_change c;
	long code = 0;
	bool ok;

	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(u->multi, p->easy);
	p->running = false;
	ok = res == CURLE_OK && code >= 200 && code < 400;
	if (!balancer_check_result(u->cfg.balancer, p->be, ok, upstream_now_ms(), &c))
		return;
	if (c.up)
		log_info("backend %s is up: GET %s passes again", p->be->name, u->health_path);
	else if (res != CURLE_OK)
		log_warn("backend %s is down: GET %s: %s", p->be->name, u->health_path,
			 curl_easy_strerror(res));
	else
		log_warn("backend %s is down: GET %s answers %ld", p->be->name, u->health_path,
			 code);
}

static void probes_start(struct upstream *u, uint64_t now)
{
	for (size_t i = 0; i < balancer_count(u->cfg.balancer); i++)
		probe_start(u, &u->probes[i]);
	u->next_probe_ms = now + u->cfg.health_interval_ms;
}

static void probes_free(struct upstream *u)
{
	if (u->probes == NULL)
		return;
	for (size_t i = 0; i < balancer_count(u->cfg.balancer); i++) {
		struct probe *p = &u->probes[i];

		if (p->running)
			curl_multi_remove_handle(u->multi, p->easy);
		if (p->easy)
			curl_easy_cleanup(p->easy);
	}
	free(u->probes);
	u->probes = NULL;
}

/* How long the loop may sleep: until the next timer scan or health check. */
static long poll_timeout(const struct upstream *u, uint64_t now)
{
	uint64_t t = u->running ? SCAN_MS : 1000;

	if (u->cfg.health_interval_ms) {
		uint64_t left = u->next_probe_ms > now ? u->next_probe_ms - now : 0;

		if (left < t)
			t = left;
	}
	return (long)t;
}

/* Runs the calls other threads posted, in order, and tells each caller. With <u> stopping
 * they still run: a caller always gets its answer. */
static void run_calls(struct upstream *u, struct call *calls)
{
	struct call *in_order = NULL;

	while (calls) {		/* posted newest first */
		struct call *c = calls;

		calls = c->next;
		c->next = in_order;
		in_order = c;
	}
	while (in_order) {
		struct call *c = in_order;

		in_order = c->next;
		c->fn(u, c->arg);
		pthread_mutex_lock(&u->lock);
		c->done = true;
		pthread_cond_broadcast(&u->call_done);
		pthread_mutex_unlock(&u->lock);
	}
}

int upstream_call(struct upstream *u, void (*fn)(struct upstream *u, void *arg), void *arg)
{
	struct call c = { .fn = fn, .arg = arg };

	pthread_mutex_lock(&u->lock);
	if (u->stopping) {
		pthread_mutex_unlock(&u->lock);
		return -ESHUTDOWN;
	}
	c.next = u->calls;
	u->calls = &c;
	curl_multi_wakeup(u->multi);
	while (!c.done)
		pthread_cond_wait(&u->call_done, &u->lock);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

/* Says whether a running fetch points at a backend of <b> (now or in its list of tries). */
static bool pool_in_use(const struct upstream *u, const struct balancer *b)
{
	for (const struct fetch *f = u->running; f; f = f->next) {
		if (f->be && balancer_owns(b, f->be))
			return true;
		for (size_t i = 0; i < f->ntried; i++)
			if (balancer_owns(b, f->tried[i]))
				return true;
	}
	return false;
}

/* Frees the pools a reload replaced that no running fetch uses any more. */
static void retired_collect(struct upstream *u)
{
	size_t kept = 0;

	for (size_t i = 0; i < u->nretired; i++) {
		if (pool_in_use(u, u->retired[i]))
			u->retired[kept++] = u->retired[i];
		else
			balancer_free(u->retired[i]);
	}
	u->nretired = kept;
}

int upstream_reconfigure(struct upstream *u, const struct upstream_config *cfg)
{
	size_t n = balancer_count(cfg->balancer);
	char *path = strdup(cfg->health_path ? cfg->health_path : "/health");
	struct probe *probes = calloc(n, sizeof(*probes));
	struct balancer **retired = realloc(u->retired, (u->nretired + 1) * sizeof(*retired));

	if (retired)
		u->retired = retired;
	if (path == NULL || probes == NULL || retired == NULL) {
		free(path);
		free(probes);
		return -ENOMEM;
	}
	probes_free(u);		/* counts the old pool's backends */
	balancer_inherit(cfg->balancer, u->cfg.balancer);
	u->retired[u->nretired++] = u->cfg.balancer;
	u->cfg.balancer = cfg->balancer;
	u->cfg.health_interval_ms = cfg->health_interval_ms;
	u->cfg.health_timeout_ms = cfg->health_timeout_ms;
	u->cfg.retries = cfg->retries;
	u->cfg.connect_timeout_ms = cfg->connect_timeout_ms;
	u->cfg.timeout_ms = cfg->timeout_ms;
	u->cfg.coalesce_timeout_ms = cfg->coalesce_timeout_ms;
	u->cfg.policy = cfg->policy;
	free(u->health_path);
	u->health_path = path;
	u->cfg.health_path = path;
	for (size_t i = 0; i < n; i++) {
		probes[i].kind = TRANSFER_PROBE;
		probes[i].be = balancer_backend(cfg->balancer, i);
	}
	u->probes = probes;
	u->next_probe_ms = 0;	/* check the new pool at once */
	retired_collect(u);
	return 0;
}

struct balancer *upstream_balancer(struct upstream *u)
{
	return u->cfg.balancer;
}

static void *upstream_main(void *arg)
{
	struct upstream *u = arg;

	for (;;) {
		struct fetch *inbox;
		struct note *notes;
		struct call *calls;
		struct CURLMsg *msg;
		bool stopping;
		int running, left;
		uint64_t now;

		pthread_mutex_lock(&u->lock);
		inbox = u->inbox_head;
		u->inbox_head = u->inbox_tail = NULL;
		notes = u->notes;
		u->notes = NULL;
		calls = u->calls;
		u->calls = NULL;
		stopping = u->stopping;
		pthread_mutex_unlock(&u->lock);

		run_calls(u, calls);

		while (inbox) {
			struct fetch *f = inbox;

			inbox = f->next;
			f->next = NULL;
			if (stopping)
				fetch_end(f, false, 503, "the proxy is shutting down");
			else
				fetch_start(u, f);
		}
		while (notes) {
			struct note *n = notes;

			notes = n->next;
			if (!stopping)
				handle_note(u, n);
			object_put(n->obj);
			free(n);
		}
		if (stopping)
			break;

		curl_multi_perform(u->multi, &running);
		while ((msg = curl_multi_info_read(u->multi, &left))) {
			enum transfer_kind *kind;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&kind);
			if (*kind == TRANSFER_PROBE)
				probe_done(u, (struct probe *)kind, msg->data.result);
			else
				fetch_done(u, (struct fetch *)kind, msg->data.result);
		}
		now = upstream_now_ms();
		if (u->nretired && (u->running == NULL || now >= u->next_scan_ms))
			retired_collect(u);
		if (u->running && now >= u->next_scan_ms) {
			scan_timers(u, now);
			u->next_scan_ms = now + SCAN_MS;
		}
		if (u->cfg.health_interval_ms && now >= u->next_probe_ms)
			probes_start(u, now);
		curl_multi_poll(u->multi, NULL, 0, poll_timeout(u, now), NULL);
	}
	while (u->running)
		fetch_fail(u->running, 503, "the proxy is shutting down");
	probes_free(u);
	while (u->nspare)
		curl_easy_cleanup(u->spare[--u->nspare]);
	return NULL;
}

struct upstream *upstream_start(const struct upstream_config *cfg)
{
	struct upstream *u = calloc(1, sizeof(*u));
	size_t n = balancer_count(cfg->balancer);
	int r;

	if (u == NULL)
		return NULL;
	u->cfg = *cfg;
	u->via = strdup(cfg->via);
	u->health_path = strdup(cfg->health_path ? cfg->health_path : "/health");
	u->probes = calloc(n, sizeof(*u->probes));
	u->multi = curl_multi_init();
	if (u->via == NULL || u->health_path == NULL || u->probes == NULL || u->multi == NULL) {
		log_error("cannot start the upstream thread: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		u->probes[i].kind = TRANSFER_PROBE;
		u->probes[i].be = balancer_backend(cfg->balancer, i);
	}
	/* keep every backend connection open for reuse, however many ran at once */
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 1024L);
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->call_done, NULL);
	r = pthread_create(&u->thread, NULL, upstream_main, u);
	if (r) {
		log_error("cannot start the upstream thread: %s", strerror(r));
		pthread_cond_destroy(&u->call_done);
		pthread_mutex_destroy(&u->lock);
		goto fail;
	}
	return u;
fail:
	if (u->multi)
		curl_multi_cleanup(u->multi);
	free(u->probes);
	free(u->health_path);
	free(u->via);
	free(u);
	return NULL;
}

void upstream_stop(struct upstream *u)
{
	if (u == NULL)
		return;
	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	pthread_mutex_unlock(&u->lock);
	curl_multi_wakeup(u->multi);
	pthread_join(u->thread, NULL);
}

void upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	while (u->notes) {
		struct note *n = u->notes;

		u->notes = n->next;
		object_put(n->obj);
		free(n);
	}
	while (u->nretired)
		balancer_free(u->retired[--u->nretired]);
	free(u->retired);
	curl_multi_cleanup(u->multi);
	pthread_cond_destroy(&u->call_done);
	pthread_mutex_destroy(&u->lock);
	free(u->health_path);
	free(u->via);
	free(u);
}

int upstream_submit(struct upstream *u, struct fetch_spec *spec)
{
	struct fetch *f = calloc(1, sizeof(*f));
	bool stopping;

	if (f == NULL) {
		object_finish(spec->obj, false, 503, "the proxy is out of memory");
		if (u->cfg.hooks->finished)
			u->cfg.hooks->finished(u->cfg.hooks_data, spec->obj);
		fetch_spec_free(spec);
		return -ENOMEM;
	}
	f->kind = TRANSFER_FETCH;
	f->up = u;
	f->spec = *spec;
	memset(spec, 0, sizeof(*spec));
	f->length = -1;
	f->request_time = time(NULL);
	pthread_mutex_lock(&u->lock);
	stopping = u->stopping;
	if (!stopping) {
		if (u->inbox_tail)
			u->inbox_tail->next = f;
		else
			u->inbox_head = f;
		u->inbox_tail = f;
	}
	pthread_mutex_unlock(&u->lock);
	if (stopping) {
		fetch_end(f, false, 503, "the proxy is shutting down");
		return -ESHUTDOWN;
	}
	curl_multi_wakeup(u->multi);
	return 0;
}

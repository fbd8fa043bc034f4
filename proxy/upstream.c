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

#include "log.h"
#include "opts.h"

#define SCAN_MS 100			/* how often timers are checked while fetches run */
#define RECV_BUFFER (64 * 1024)		/* libcurl's receive buffer per transfer */
#define SPARE_HANDLES 256		/* easy handles kept for reuse */

struct fetch {
	struct upstream *up;
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

struct upstream {
	struct upstream_config cfg;
	char *base_url;			/* "http://host:port" */
	char *via;
	CURLM *multi;
	pthread_t thread;

	pthread_mutex_t lock;		/* guards the inbox and stopping */
	struct fetch *inbox_head, *inbox_tail;
	struct note *notes;
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

void fetch_spec_free(struct fetch_spec *spec)
{
	free(spec->method);
	free(spec->target);
	curl_slist_free_all(spec->headers);
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

	/* the fetch is freed only after object_finish() cleared writer_data, under this lock */
	pthread_mutex_lock(&o->lock);
	if (o->writer_data)
		u = ((struct fetch *)o->writer_data)->up;
	pthread_mutex_unlock(&o->lock);
	if (u == NULL)
		return;
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

	f->length = content_length(&f->fields);
	if (f->length == -2) {
		f->error = "the backend sent an invalid Content-Length";
		return false;
	}
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
	storable = f->spec.may_store && policy_storable(&f->spec.policy, &pr, &why);
	o->status = f->status;
	o->fields = f->fields;
	memset(&f->fields, 0, sizeof(f->fields));
	o->length = f->length;
	o->head = strcmp(f->spec.method, "HEAD") == 0;
	o->response_time = now;
	o->lifetime = policy_freshness_lifetime(&pr);
	o->initial_age = policy_initial_age(&pr, f->request_time);
	if (storable && o->lifetime <= o->initial_age) {
		storable = false;
		why = "response is already stale";
	}
	shared = storable;
	if (storable && o->length >= 0 && (uint64_t)o->length > o->max_size) {
		storable = false;	/* shareable, but too big to keep: it streams */
		why = "response is larger than --max-object-size";
	}
	if (!storable && f->spec.may_store)
		log_debug("not stored: %s: %s", o->entry.key, why ? why : "?");
	f->fields_done = true;
	f->last_ms = upstream_now_ms();
	if (!object_fields_done(o, storable, shared)) {
		f->error = "every client left";
		return false;
	}
	if (u->cfg.hooks->fields)
		u->cfg.hooks->fields(u->cfg.hooks_data, o, shared);
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
		f->error = "every client left";
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
			goto fail;                                     \
	} while (0)

/* Sets up and adds <f> to the multi handle. */
static void fetch_start(struct upstream *u, struct fetch *f)
{
	const char *method = f->spec.method;
	size_t ulen = strlen(u->base_url) + strlen(f->spec.target) + 1;

	f->url = malloc(ulen);
	f->easy = u->nspare ? u->spare[--u->nspare] : curl_easy_init();
	if (f->url == NULL || f->easy == NULL)
		goto fail;
	snprintf(f->url, ulen, "%s%s", u->base_url, f->spec.target);
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
		goto fail;
	f->started_ms = f->last_ms = upstream_now_ms();
	pthread_mutex_lock(&f->spec.obj->lock);
	f->spec.obj->writer = &upstream_writer_ops;
	f->spec.obj->writer_data = f;
	pthread_mutex_unlock(&f->spec.obj->lock);
	running_add(u, f);
	return;
fail:
	fetch_end(f, false, 502, "cannot set up the backend request");
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
	running_del(u, f);
	if (res == CURLE_OK && f->fields_done) {
		fetch_end(f, true, 0, NULL);
		return;
	}
	if (res == CURLE_OK)
		res = CURLE_GOT_NOTHING;
	status = failure_status(res, &reason);
	if (f->error)
		reason = f->error;
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
			fetch_fail(f, 504, "the backend did not answer within --upstream-timeout");
		} else if (f->fields_done && !f->paused && now - f->last_ms >= timeout) {
			fetch_fail(f, 504, "the backend stalled in the body for --upstream-timeout");
		} else if (!f->fields_done && now >= u->cfg.coalesce_timeout_ms) {
			object_expire_waiters(f->spec.obj, now - u->cfg.coalesce_timeout_ms);
		}
	}
}

static void *upstream_main(void *arg)
{
	struct upstream *u = arg;

	for (;;) {
		struct fetch *inbox;
		struct note *notes;
		struct CURLMsg *msg;
		bool stopping;
		int running, left;
		uint64_t now;

		pthread_mutex_lock(&u->lock);
		inbox = u->inbox_head;
		u->inbox_head = u->inbox_tail = NULL;
		notes = u->notes;
		u->notes = NULL;
		stopping = u->stopping;
		pthread_mutex_unlock(&u->lock);

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
			struct fetch *f;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
			fetch_done(u, f, msg->data.result);
		}
		now = upstream_now_ms();
		if (u->running && now >= u->next_scan_ms) {
			scan_timers(u, now);
			u->next_scan_ms = now + SCAN_MS;
		}
		curl_multi_poll(u->multi, NULL, 0, u->running ? SCAN_MS : 1000, NULL);
	}
	while (u->running)
		fetch_fail(u->running, 503, "the proxy is shutting down");
	while (u->nspare)
		curl_easy_cleanup(u->spare[--u->nspare]);
	return NULL;
}

struct upstream *upstream_start(const struct upstream_config *cfg)
{
	struct upstream *u = calloc(1, sizeof(*u));
	size_t len;
	int r;

	if (u == NULL)
		return NULL;
	u->cfg = *cfg;
	len = strlen(cfg->backend) + sizeof("http://");
	u->base_url = malloc(len);
	u->via = strdup(cfg->via);
	u->multi = curl_multi_init();
	if (u->base_url == NULL || u->via == NULL || u->multi == NULL) {
		log_error("cannot start the upstream thread: out of memory");
		goto fail;
	}
	snprintf(u->base_url, len, "http://%s", cfg->backend);
	/* keep every backend connection open for reuse, however many ran at once */
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 1024L);
	pthread_mutex_init(&u->lock, NULL);
	r = pthread_create(&u->thread, NULL, upstream_main, u);
	if (r) {
		log_error("cannot start the upstream thread: %s", strerror(r));
		pthread_mutex_destroy(&u->lock);
		goto fail;
	}
	return u;
fail:
	if (u->multi)
		curl_multi_cleanup(u->multi);
	free(u->via);
	free(u->base_url);
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
	curl_multi_cleanup(u->multi);
	pthread_mutex_destroy(&u->lock);
	free(u->via);
	free(u->base_url);
	free(u);
}

int upstream_submit(struct upstream *u, struct fetch_spec *spec)
{
	struct fetch *f = calloc(1, sizeof(*f));
	bool stopping;

	if (f == NULL) {
		object_finish(spec->obj, false, 503, "the proxy is out of memory");
		fetch_spec_free(spec);
		return -ENOMEM;
	}
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

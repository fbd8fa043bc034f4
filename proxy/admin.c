/* admin.c - the admin listener (see admin.h). */
#include "config.h"

#include "admin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "dashboard.h"
#include "log.h"
#include "server.h"

#define SNAPSHOTS 6		/* client latency snapshots, one a second at most: the window */
#define MAX_UNMARK 1024		/* hit-for-miss marks a purge clears by name */

/* The client latency histogram's buckets at one moment. */
struct snapshot {
	double t;		/* metrics_uptime() when taken; 0: unused */
	uint64_t sum;
	uint64_t buckets[HIST_BUCKETS];
};

struct admin {
	struct admin_config cfg;
	char *token;
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;	/* guards the snapshots */
	struct snapshot snaps[SNAPSHOTS];
	size_t next;
};

struct admin_request {
	char *body;
	size_t len;
	bool too_big;
};

/* ---- answers -------------------------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
			       void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"mtps-admin\"");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST, PURGE");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Answers <o> as JSON and puts it. */
static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned status,
				    struct json_object *o)
{
	const char *s;
	char *copy;

	if (o == NULL)
		return MHD_NO;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	copy = s ? strdup(s) : NULL;
	json_object_put(o);
	if (copy == NULL)
		return MHD_NO;
	return respond(conn, status, "application/json", copy, strlen(copy),
		       MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, unsigned status,
				     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum MHD_Result respond_error(struct MHD_Connection *conn, unsigned status,
				     const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "status", json_object_new_int((int)status));
	return respond_json(conn, status, o);
}

/* ---- authentication ------------------------------------------------------------------------- */

/* Compares in time that depends on the lengths only, not on where the first difference is. */
static bool token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[i < lb ? i : 0]);
	return diff == 0 && lb > 0;
}

static bool authorized(const struct admin *a, struct MHD_Connection *conn)
{
	const char *h;

	if (a->token == NULL)
		return true;
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	return token_equal(h, a->token);
}

/* ---- what other threads own ------------------------------------------------------------------ */

/* On the upstream thread (upstream_call(), arg = a struct metrics_view): the backends and
 * their recent state changes. */
static void view_backends(struct upstream *u, void *arg)
{
	struct metrics_view *v = arg;
	struct balancer *b = upstream_balancer(u);
	struct balancer_event ev[BALANCER_HISTORY];
	uint64_t now = upstream_now_ms();
	time_t wall = time(NULL);

	v->nbackends = balancer_count(b);
	for (size_t i = 0; i < v->nbackends; i++) {
		struct backend *be = balancer_backend(b, i);

		v->backends[i] = (struct metrics_backend_view){
			.name = be->name,
			.state = balancer_state_name(be),
			.admin = backend_admin_names[atomic_load(&be->admin)],
			.up = atomic_load(&be->up),
			.weight = be->weight,
			.effective_weight = balancer_effective_weight(b, be, now),
			.in_flight = atomic_load(&be->in_flight),
			.requests = atomic_load(&be->requests),
			.errors = atomic_load(&be->errors),
			.retries = atomic_load(&be->retries),
			.health = be->health,
			.checks_passed = be->checks_passed,
			.checks_failed = be->checks_failed,
			.passive_failures = be->passive_failures,
		};
	}
	v->nevents = balancer_history(b, ev, BALANCER_HISTORY);
	for (size_t k = 0; k < v->nevents; k++) {
		double ago = now >= ev[k].at_ms ? (double)(now - ev[k].at_ms) / 1000.0 : 0;

		v->events[k] = (struct metrics_event_view){
			.seconds_ago = ago,
			.at = wall - (time_t)ago,
			.backend = balancer_backend(b, ev[k].backend)->name,
			.state = ev[k].state,
			.why = ev[k].why,
		};
	}
}

/* Client latency over the last few seconds: the histogram now minus the oldest snapshot
 * kept (one is taken per second at most, when someone asks), into <out>. Returns the
 * window's length in seconds (0 on the first call). Takes a->lock. */
static double recent_latency(struct admin *a, struct hist *out)
{
	const struct hist *h = &a->cfg.metrics->client_us;
	double now;
	struct snapshot *oldest = NULL, *last;
	uint64_t count = 0, lo = UINT64_MAX, hi = 0;

	now = metrics_uptime(a->cfg.metrics);
	hist_init(out);
	pthread_mutex_lock(&a->lock);
	last = &a->snaps[(a->next + SNAPSHOTS - 1) % SNAPSHOTS];
	if (last->t == 0 || now - last->t >= 1.0) {
		struct snapshot *s = &a->snaps[a->next++ % SNAPSHOTS];

		s->t = now;
		s->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
		for (size_t i = 0; i < HIST_BUCKETS; i++)
			s->buckets[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
	}
	for (size_t k = 0; k < SNAPSHOTS; k++)
		if (a->snaps[k].t > 0 && (oldest == NULL || a->snaps[k].t < oldest->t))
			oldest = &a->snaps[k];
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		uint64_t c = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);

		c = c > oldest->buckets[i] ? c - oldest->buckets[i] : 0;
		if (c == 0)
			continue;
		atomic_store_explicit(&out->buckets[i], c, memory_order_relaxed);
		count += c;
		if (lo == UINT64_MAX)
			lo = hist_bucket_lo(i);
		hi = hist_bucket_hi(i);
	}
	if (count) {
		uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);

		atomic_store(&out->count, count);
		atomic_store(&out->sum, sum > oldest->sum ? sum - oldest->sum : 0);
		atomic_store(&out->min, lo);
		atomic_store(&out->max, hi < hist_max(h) ? hi : hist_max(h));
	}
	now -= oldest->t;
	pthread_mutex_unlock(&a->lock);
	return now;
}

/* Fills <v> from the cache, the front end and the upstream thread. Returns 0 or
 * -ESHUTDOWN. <recent> (may be NULL) receives the recent client latency. */
static int gather(struct admin *a, struct metrics_view *v, struct hist *recent)
{
	memset(v, 0, sizeof(*v));
	cache_get_stats(a->cfg.fe->cache, &v->cache);
	v->in_flight = atomic_load(&a->cfg.fe->in_flight);
	if (recent) {
		v->recent_seconds = recent_latency(a, recent);
		v->recent_client_us = recent;
	}
	return upstream_call(a->cfg.fe->upstream, view_backends, v);
}

/* ---- purge and ban ---------------------------------------------------------------------------- */

struct match {
	/* a URL: <host> (NULL: any) and <target> */
	const char *host;
	size_t host_len;
	const char *target;
	size_t target_len;
	/* or a ban */
	const char *prefix;
	regex_t *re;
	/* the primary keys removed, for their hit-for-miss marks */
	char *unmark[MAX_UNMARK];
	size_t nunmark;
};

/* Keeps a copy of the primary key <key> (<len> bytes) for its hit-for-miss mark; a URL's
 * variants repeat it, so a repeat of the last one is skipped. */
static void remember(struct match *m, const char *key, size_t len)
{
	char *last = m->nunmark ? m->unmark[m->nunmark - 1] : NULL;

	if (m->nunmark == MAX_UNMARK ||
	    (last && strlen(last) == len && memcmp(last, key, len) == 0))
		return;
	m->unmark[m->nunmark] = strndup(key, len);
	if (m->unmark[m->nunmark])
		m->nunmark++;
}

/* cache_match_fn: a key is "host target", and a variant's "host target\x01..." goes with
 * its URL. Called under a shard lock: only looks at the key. */
static bool match_key(const char *key, size_t key_len, void *arg)
{
	struct match *m = arg;
	const char *end = memchr(key, '\x01', key_len), *sp;
	size_t primary = end ? (size_t)(end - key) : key_len, host_len, target_len;
	const char *target;
	bool hit;

	sp = memchr(key, ' ', primary);
	if (sp == NULL)
		return false;
	host_len = (size_t)(sp - key);
	target = sp + 1;
	target_len = primary - host_len - 1;
	if (m->target) {
		hit = (m->host == NULL ||
		       (host_len == m->host_len && memcmp(key, m->host, host_len) == 0)) &&
		      target_len == m->target_len && memcmp(target, m->target, target_len) == 0;
	} else {
		char url[CACHE_MAX_KEY + 16];
		int n = snprintf(url, sizeof(url), "http://%.*s%.*s", (int)host_len, key,
				 (int)target_len, target);

		if (n < 0 || (size_t)n >= sizeof(url))
			return false;
		if (m->prefix && m->prefix[0] == '/')
			hit = strncmp(url + 7 + host_len, m->prefix, strlen(m->prefix)) == 0;
		else if (m->prefix)
			hit = strncasecmp(url, m->prefix, strlen(m->prefix)) == 0;
		else
			hit = regexec(m->re, url, 0, NULL, 0) == 0;
	}
	if (hit)
		remember(m, key, primary);
	return hit;
}

/* Removes what <m> matches, clears the hit-for-miss marks, answers {"purged": N}. */
static enum MHD_Result purge(struct admin *a, struct MHD_Connection *conn, struct match *m)
{
	struct frontend *fe = a->cfg.fe;
	size_t n = cache_remove_matching(fe->cache, match_key, m);
	struct json_object *o = json_object_new_object();

	for (size_t k = 0; k < m->nunmark; k++) {
		inflight_unmark(fe->inflight, m->unmark[k], strlen(m->unmark[k]));
		free(m->unmark[k]);
	}
	if (m->target && m->host) {
		/* an uncacheable URL is marked without being stored */
		char key[CACHE_MAX_KEY + 1];
		int len = snprintf(key, sizeof(key), "%.*s %.*s", (int)m->host_len, m->host,
				   (int)m->target_len, m->target);

		if (len > 0 && (size_t)len < sizeof(key))
			inflight_unmark(fe->inflight, key, (size_t)len);
	}
	json_object_object_add(o, "purged", json_object_new_int64((int64_t)n));
	log_info("admin: purged %zu stored responses", n);
	return respond_json(conn, MHD_HTTP_OK, o);
}

/* Splits "http://host[:port]/target" (or "/target": any host) into <m>, the host lower-cased
 * into <hostbuf>. Returns false when it is neither. */
static bool parse_url(const char *url, struct match *m, char *hostbuf, size_t hostlen)
{
	const char *path;
	size_t n;

	if (url[0] == '/') {
		m->target = url;
		m->target_len = strlen(url);
		return true;
	}
	if (strncasecmp(url, "http://", 7) != 0)
		return false;
	url += 7;
	path = url + strcspn(url, "/?");
	n = (size_t)(path - url);
	if (n == 0 || n >= hostlen || memchr(url, '@', n))
		return false;
	for (size_t i = 0; i < n; i++)
		hostbuf[i] = (char)tolower((unsigned char)url[i]);
	hostbuf[n] = '\0';
	m->host = hostbuf;
	m->host_len = n;
	m->target = *path == '/' ? path : "/";
	m->target_len = strlen(m->target);
	return true;
}

/* ---- request bodies -------------------------------------------------------------------------- */

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* The value of <key> in a JSON object or an x-www-form-urlencoded body, as a new string;
 * NULL when absent. *bad is set when the body is neither. */
static char *body_value(const char *body, const char *key, bool *bad)
{
	size_t klen = strlen(key);
	const char *p;

	if (body == NULL)
		return NULL;
	while (isspace((unsigned char)*body))
		body++;
	if (*body == '{') {
		struct json_object *o = json_tokener_parse(body), *v;
		char *s = NULL;

		if (o == NULL || !json_object_is_type(o, json_type_object)) {
			*bad = true;
		} else if (json_object_object_get_ex(o, key, &v)) {
			if (json_object_is_type(v, json_type_string))
				s = strdup(json_object_get_string(v));
			else
				*bad = true;
		}
		json_object_put(o);
		return s;
	}
	for (p = body; *p; p += strcspn(p, "&"), p += *p == '&') {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t n = strcspn(v, "&"), k = 0;
			char *s = malloc(n + 1);

			if (s == NULL)
				return NULL;
			for (size_t i = 0; i < n; i++) {
				if (v[i] == '+') {
					s[k++] = ' ';
				} else if (v[i] == '%' && i + 2 < n && hexval(v[i + 1]) >= 0 &&
					   hexval(v[i + 2]) >= 0) {
					s[k++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
					i += 2;
				} else {
					s[k++] = v[i];
				}
			}
			s[k] = '\0';
			return s;
		}
	}
	return NULL;
}

/* ---- backends ---------------------------------------------------------------------------------- */

struct backend_call {
	const char *name;
	enum backend_admin admin;
	bool change;			/* else just read */
	bool found;
	struct metrics_backend_view view;
};

static void backend_op(struct upstream *u, void *arg)
{
	struct backend_call *c = arg;
	struct balancer *b = upstream_balancer(u);
	struct backend *be = balancer_find(b, c->name);

	if (be == NULL)
		return;
	c->found = true;
	if (c->change && balancer_set_admin(b, be, c->admin, upstream_now_ms(),
					    c->admin == BACKEND_ENABLED ? "enabled by the admin"
					    : c->admin == BACKEND_DRAINING ? "drained by the admin"
					    : "disabled by the admin"))
		log_info("admin: backend %s: %s", be->name, backend_admin_names[c->admin]);
	c->view.name = be->name;
	c->view.state = balancer_state_name(be);
	c->view.admin = backend_admin_names[atomic_load(&be->admin)];
	c->view.in_flight = atomic_load(&be->in_flight);
	c->view.up = atomic_load(&be->up);
}

static enum MHD_Result backends_route(struct admin *a, struct MHD_Connection *conn,
				      const char *method, const char *rest)
{
	static const char *const verbs[] = { "enable", "drain", "disable" };
	struct backend_call c = { 0 };
	const char *slash = strrchr(rest, '/');
	char name[BALANCER_MAX_NAME];
	struct json_object *o;
	size_t n;
	int verb = -1;

	if (slash == NULL || slash == rest)
		return respond_error(conn, MHD_HTTP_NOT_FOUND,
				     "want POST /backends/HOST:PORT/drain, disable or enable");
	for (int k = 0; k < 3; k++)
		if (strcmp(slash + 1, verbs[k]) == 0)
			verb = k;
	if (verb < 0)
		return respond_error(conn, MHD_HTTP_NOT_FOUND,
				     "unknown action '%s': want drain, disable or enable", slash + 1);
	if (strcmp(method, "POST") != 0)
		return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
	n = (size_t)(slash - rest);
	if (n >= sizeof(name))
		return respond_error(conn, MHD_HTTP_NOT_FOUND, "no such backend");
	memcpy(name, rest, n);
	name[n] = '\0';
	c.name = name;
	c.change = true;
	c.admin = verb == 0 ? BACKEND_ENABLED : verb == 1 ? BACKEND_DRAINING : BACKEND_DISABLED;
	if (upstream_call(a->cfg.fe->upstream, backend_op, &c))
		return respond_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the proxy is stopping");
	if (!c.found)
		return respond_error(conn, MHD_HTTP_NOT_FOUND, "no backend '%s'", name);
	o = json_object_new_object();
	json_object_object_add(o, "backend", json_object_new_string(name));
	json_object_object_add(o, "state", json_object_new_string(c.view.state));
	json_object_object_add(o, "admin", json_object_new_string(c.view.admin));
	json_object_object_add(o, "up", json_object_new_boolean(c.view.up));
	json_object_object_add(o, "in_flight", json_object_new_int64(c.view.in_flight));
	return respond_json(conn, MHD_HTTP_OK, o);
}

/* ---- routes -------------------------------------------------------------------------------- */

static enum MHD_Result serve_metrics(struct admin *a, struct MHD_Connection *conn)
{
	struct metrics_view *v = malloc(sizeof(*v));
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	if (v == NULL)
		return MHD_NO;
	if (gather(a, v, NULL)) {
		free(v);
		return respond_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the proxy is stopping");
	}
	out = open_memstream(&buf, &len);
	if (out == NULL) {
		free(v);
		return MHD_NO;
	}
	metrics_prometheus(a->cfg.metrics, v, out);
	fclose(out);
	free(v);
	return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len,
		       MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_stats(struct admin *a, struct MHD_Connection *conn, bool only_backends)
{
	struct metrics_view *v = malloc(sizeof(*v));
	struct hist *recent = malloc(sizeof(*recent));
	struct json_object *o = NULL, *be;
	enum MHD_Result r;

	if (v == NULL || recent == NULL) {
		free(v);
		free(recent);
		return MHD_NO;
	}
	if (gather(a, v, recent)) {
		free(v);
		free(recent);
		return respond_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the proxy is stopping");
	}
	o = metrics_json(a->cfg.metrics, v);
	if (o && only_backends && json_object_object_get_ex(o, "backends", &be)) {
		json_object_get(be);
		json_object_put(o);
		o = be;
	}
	free(v);
	free(recent);
	r = respond_json(conn, MHD_HTTP_OK, o);
	return r;
}

static enum MHD_Result serve_file(struct MHD_Connection *conn, const char *url)
{
	for (const struct dashboard_file *f = dashboard_files; f->path; f++)
		if (strcmp(f->path, url) == 0 || (strcmp(url, "/index.html") == 0 &&
						  strcmp(f->path, "/") == 0))
			return respond(conn, MHD_HTTP_OK, f->content_type, (void *)f->data, f->len,
				       MHD_RESPMEM_PERSISTENT);
	return respond_error(conn, MHD_HTTP_NOT_FOUND, "no such page: %s", url);
}

static enum MHD_Result route(struct admin *a, struct MHD_Connection *conn, const char *url,
			     const char *method, struct admin_request *rq)
{
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	bool post = strcmp(method, "POST") == 0;
	bool bad = false;

	if (get && strcmp(url, "/metrics") != 0 && strcmp(url, "/stats") != 0 &&
	    strcmp(url, "/backends") != 0 && strncmp(url, "/backends/", 10) != 0)
		return serve_file(conn, url);	/* the dashboard: no token, nothing secret */
	if (!authorized(a, conn))
		return respond_error(conn, MHD_HTTP_UNAUTHORIZED,
				     "this needs Authorization: Bearer with the --admin-token");
	if (rq->too_big)
		return respond_error(conn, 413,	/* MHD renamed the constant in 0.9.74 */
				     "the request body is larger than %d bytes", ADMIN_MAX_BODY);
	if (get && strcmp(url, "/metrics") == 0)
		return serve_metrics(a, conn);
	if (get && strcmp(url, "/stats") == 0)
		return serve_stats(a, conn, false);
	if (get && strcmp(url, "/backends") == 0)
		return serve_stats(a, conn, true);
	if (strcmp(method, "PURGE") == 0) {
		struct match m = { 0 };
		char host[BALANCER_MAX_NAME];

		if (!parse_url(url, &m, host, sizeof(host)))
			return respond_error(conn, MHD_HTTP_BAD_REQUEST,
					     "PURGE wants a path or an http:// URL");
		return purge(a, conn, &m);
	}
	if (strncmp(url, "/backends/", 10) == 0)
		return backends_route(a, conn, method, url + 10);
	if (strcmp(url, "/purge") == 0 && post) {
		struct match m = { 0 };
		char host[BALANCER_MAX_NAME];
		char *u = body_value(rq->body, "url", &bad);
		enum MHD_Result r;

		if (u == NULL || !parse_url(u, &m, host, sizeof(host))) {
			free(u);
			return respond_error(conn, MHD_HTTP_BAD_REQUEST,
					     "want {\"url\": \"http://HOST/PATH\"} (or url=... as a form)");
		}
		r = purge(a, conn, &m);
		free(u);
		return r;
	}
	if (strcmp(url, "/ban") == 0 && post) {
		struct match m = { 0 };
		char *prefix = body_value(rq->body, "prefix", &bad);
		char *regex = body_value(rq->body, "regex", &bad);
		regex_t re;
		enum MHD_Result r;
		int err;

		if (bad || (prefix == NULL) == (regex == NULL) || (prefix && prefix[0] == '\0')) {
			free(prefix);
			free(regex);
			return respond_error(conn, MHD_HTTP_BAD_REQUEST,
					     "want {\"prefix\": \"/path/\"} or {\"regex\": \"...\"}");
		}
		if (prefix) {
			m.prefix = prefix;
			r = purge(a, conn, &m);
			free(prefix);
			return r;
		}
		err = regcomp(&re, regex, REG_EXTENDED | REG_NOSUB);
		if (err) {
			char why[256];

			regerror(err, &re, why, sizeof(why));
			free(regex);
			return respond_error(conn, MHD_HTTP_BAD_REQUEST, "bad regex: %s", why);
		}
		m.re = &re;
		r = purge(a, conn, &m);
		regfree(&re);
		free(regex);
		return r;
	}
	if (strcmp(url, "/purge") == 0 || strcmp(url, "/ban") == 0 || strcmp(url, "/metrics") == 0 ||
	    strcmp(url, "/stats") == 0)
		return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "%s is not allowed on %s",
				     method, url);
	return respond_error(conn, MHD_HTTP_NOT_FOUND, "no such page: %s %s", method, url);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct admin_request *rq = *con_cls;

	if (rq == NULL) {
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (rq->too_big || rq->len + n > ADMIN_MAX_BODY) {
			rq->too_big = true;
			return MHD_YES;
		}
		char *b = realloc(rq->body, rq->len + n + 1);

		if (b == NULL)
			return MHD_NO;
		memcpy(b + rq->len, upload_data, n);
		rq->len += n;
		b[rq->len] = '\0';
		rq->body = b;
		return MHD_YES;
	}
	return route(cls, conn, url, method, rq);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct admin_request *rq = *con_cls;

	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/* ---- start and stop ------------------------------------------------------------------------ */

struct admin *admin_start(const struct admin_config *cfg)
{
	struct admin *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		log_error("admin listener: out of memory");
		return NULL;
	}
	a->cfg = *cfg;
	if (cfg->token && cfg->token[0])
		a->token = strdup(cfg->token);
	pthread_mutex_init(&a->lock, NULL);
	a->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		handler, a,
		MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)ADMIN_THREADS,
		MHD_OPTION_CONNECTION_LIMIT, 64u,
		MHD_OPTION_CONNECTION_TIMEOUT, 30u,
		MHD_OPTION_NOTIFY_COMPLETED, completed, a,
		MHD_OPTION_END);
	if (a->daemon == NULL) {
		log_error("cannot start the admin listener");
		admin_stop(a);
		return NULL;
	}
	return a;
}

void admin_stop(struct admin *a)
{
	if (a == NULL)
		return;
	if (a->daemon)
		MHD_stop_daemon(a->daemon);
	pthread_mutex_destroy(&a->lock);
	free(a->token);
	free(a);
}

bool admin_address_is_loopback(const char *addr)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
	struct in_addr v4;
	struct in6_addr v6;

	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return false;
	memcpy(host, addr, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	return false;
}

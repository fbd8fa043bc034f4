/* metrics.c - counters, histograms and their renderings (see metrics.h). */
#include "config.h"

#include "metrics.h"

#include <stdlib.h>
#include <string.h>

const char *const metrics_method_names[] = { "GET",    "HEAD",  "POST",    "PUT", "DELETE",
					     "PATCH", "OPTIONS", "OTHER", NULL };
const char *const metrics_class_names[] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx", NULL };

/* Half a millisecond to ten seconds: what a cache hit and a slow origin take. */
const double metrics_latency_bounds[METRICS_LATENCY_BOUNDS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05,   0.1,     0.25,   0.5,   1,      2.5,   10,
};

static const double percentiles[] = { 50, 90, 95, 99, 99.9 };
static const char *const percentile_names[] = { "p50", "p90", "p95", "p99", "p99_9" };

static inline void add(atomic_uint_fast64_t *a, uint64_t n)
{
	atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static inline uint64_t ld(const atomic_uint_fast64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct metrics *metrics_new(const char *const *names, size_t n)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->backends = calloc(METRICS_MAX_BACKENDS, sizeof(*m->backends));
	if (m->backends == NULL) {
		free(m);
		return NULL;
	}
	atomic_init(&m->nbackends, 0);
	pthread_mutex_init(&m->add_lock, NULL);
	for (size_t i = 0; i < n; i++)
		metrics_backend(m, names[i]);
	hist_init(&m->client_us);
	hist_init(&m->upstream_us);
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	m->started_wall = time(NULL);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->add_lock);
	free(m->backends);
	free(m);
}

static struct metrics_backend *backend_find(const struct metrics *m, const char *name,
					    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(m->backends[i].name, name) == 0)
			return &m->backends[i];
	return NULL;
}

struct metrics_backend *metrics_backend(struct metrics *m, const char *name)
{
	size_t n = atomic_load_explicit(&m->nbackends, memory_order_acquire);
	struct metrics_backend *b = backend_find(m, name, n);

	if (b)
		return b;
	pthread_mutex_lock(&m->add_lock);
	n = atomic_load_explicit(&m->nbackends, memory_order_relaxed);
	b = backend_find(m, name, n);
	if (b == NULL && n < METRICS_MAX_BACKENDS) {
		b = &m->backends[n];
		snprintf(b->name, sizeof(b->name), "%s", name);
		hist_init(&b->upstream_us);
		/* published complete: readers see the slot only after this */
		atomic_store_explicit(&m->nbackends, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&m->add_lock);
	return b;
}

double metrics_uptime(const struct metrics *m)
{
	return monotonic_s() - ((double)m->started.tv_sec + (double)m->started.tv_nsec / 1e9);
}

static enum metrics_method method_index(const char *method)
{
	for (int i = 0; i < METRICS_OTHER; i++)
		if (strcmp(method, metrics_method_names[i]) == 0)
			return (enum metrics_method)i;
	return METRICS_OTHER;
}

static unsigned class_index(int status)
{
	return status >= 100 && status < 600 ? (unsigned)(status / 100) : 0;
}

void metrics_observe(void *data, const struct exchange *ex)
{
	struct metrics *m = data;
	unsigned cache = ex->cache < EXCHANGE_CACHE_MAX ? (unsigned)ex->cache : 0;

	add(&m->requests[method_index(ex->method)][class_index(ex->status)][cache], 1);
	if (!ex->completed)
		add(&m->incomplete, 1);
	if (ex->coalesced)
		add(&m->coalesced, 1);
	add(&m->bytes_in, ex->bytes_in);
	add(&m->bytes_out, ex->bytes_out);
	hist_record(&m->client_us, ex->total_us);
	/* a coalesced reader's upstream time is the fetch it joined: counted once, there */
	if (ex->backend && ex->upstream_us >= 0 && !ex->coalesced) {
		hist_record(&m->upstream_us, (uint64_t)ex->upstream_us);
		struct metrics_backend *b = metrics_backend(m, ex->backend);

		if (b)
			hist_record(&b->upstream_us, (uint64_t)ex->upstream_us);
	}
}

void metrics_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
			enum MHD_ConnectionNotificationCode toe)
{
	struct metrics *m = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		add(&m->connections_total, 1);
		atomic_fetch_add_explicit(&m->connections, 1, memory_order_relaxed);
	} else {
		atomic_fetch_sub_explicit(&m->connections, 1, memory_order_relaxed);
	}
}

static uint64_t cache_outcome(const struct metrics *m, enum exchange_cache c)
{
	uint64_t n = 0;

	for (int i = 0; i < METRICS_METHOD_MAX; i++)
		for (int k = 0; k < METRICS_CLASS_MAX; k++)
			n += ld(&m->requests[i][k][c]);
	return n;
}

/* ---- the unlabelled metrics: one table for /metrics and /stats ---------------------------- */

/* X(name, type, JSON section, JSON key, value, help): mtps_<name> in /metrics, section.key
 * in /stats; <value> is an expression over m (struct metrics) and v (struct metrics_view). */
#define METRICS_SCALARS(X)                                                                     \
	X(requests_in_flight, gauge, "requests", "in_flight", v->in_flight,                    \
	  "Client requests begun and not completed.")                                           \
	X(responses_incomplete_total, counter, "requests", "incomplete", ld(&m->incomplete),   \
	  "Responses cut before their end (client left, backend failed mid-body).")             \
	X(requests_coalesced_total, counter, "requests", "coalesced", ld(&m->coalesced),       \
	  "Requests that shared a fetch another request started.")                              \
	X(received_bytes_total, counter, "bytes", "received", ld(&m->bytes_in),                \
	  "Request body bytes received from clients.")                                          \
	X(sent_bytes_total, counter, "bytes", "sent", ld(&m->bytes_out),                       \
	  "Response body bytes sent to clients.")                                               \
	X(connections, gauge, "connections", "open",                                           \
	  atomic_load_explicit(&m->connections, memory_order_relaxed),                          \
	  "Client connections open now.")                                                       \
	X(connections_total, counter, "connections", "total", ld(&m->connections_total),       \
	  "Client connections accepted.")                                                       \
	X(cache_capacity_bytes, gauge, "cache", "capacity", v->cache.capacity,                 \
	  "The cache's size limit.")                                                            \
	X(cache_bytes, gauge, "cache", "bytes", v->cache.bytes,                                \
	  "Bytes charged by stored responses.")                                                 \
	X(cache_objects, gauge, "cache", "objects", v->cache.objects, "Stored responses.")     \
	X(cache_inserts_total, counter, "cache", "inserts", v->cache.inserts,                  \
	  "Responses stored.")                                                                  \
	X(cache_evictions_total, counter, "cache", "evictions", v->cache.evictions,            \
	  "Stored responses evicted for room.")                                                 \
	X(cache_lookups_total, counter, "cache", "lookups", v->cache.lookups,                  \
	  "Lookups in the store.")                                                              \
	X(cache_lookup_hits_total, counter, "cache", "lookup_hits", v->cache.hits,             \
	  "Lookups that found an entry.")

#define GETTER(name, type, section, key, value, help)                                          \
	static long long get_##name(const struct metrics *m, const struct metrics_view *v)     \
	{                                                                                      \
		(void)m;                                                                       \
		(void)v;                                                                       \
		return (long long)(value);                                                     \
	}
METRICS_SCALARS(GETTER)
#undef GETTER

static const struct scalar {
	const char *name, *type, *section, *key, *help;
	long long (*get)(const struct metrics *m, const struct metrics_view *v);
} scalars[] = {
#define ROW(name, type, section, key, value, help)                                             \
	{ "mtps_" #name, #type, section, key, help, get_##name },
	METRICS_SCALARS(ROW)
#undef ROW
};

/* ---- Prometheus text format 0.0.4 ---------------------------------------------------------- */

static void head(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(out, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

static void sample_u64(FILE *out, const char *name, const char *label, const char *value,
		       uint64_t v)
{
	fputs(name, out);
	if (label) {
		fprintf(out, "{%s=\"", label);
		label_value(out, value);
		fputs("\"}", out);
	}
	fprintf(out, " %llu\n", (unsigned long long)v);
}

/* A histogram of microseconds as seconds; <label>=<value> on every sample when set. */
static void histogram(FILE *out, const char *name, const char *label, const char *value,
		      const struct hist *h)
{
	uint64_t count = 0, sum = atomic_load_explicit(&h->sum, memory_order_relaxed);

	/* the buckets, not h->count, so that +Inf and _count agree under concurrent records */
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		count += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
	for (int b = 0; b < METRICS_LATENCY_BOUNDS; b++) {
		uint64_t le_us = (uint64_t)(metrics_latency_bounds[b] * 1e6 + 0.5);
		uint64_t n = hist_count_le(h, le_us);

		fprintf(out, "%s_bucket{", name);
		if (label) {
			fprintf(out, "%s=\"", label);
			label_value(out, value);
			fputs("\",", out);
		}
		fprintf(out, "le=\"%g\"} %llu\n", metrics_latency_bounds[b],
			(unsigned long long)(n < count ? n : count));
	}
	fprintf(out, "%s_bucket{", name);
	if (label) {
		fprintf(out, "%s=\"", label);
		label_value(out, value);
		fputs("\",", out);
	}
	fprintf(out, "le=\"+Inf\"} %llu\n", (unsigned long long)count);
	fprintf(out, "%s_sum", name);
	if (label) {
		fprintf(out, "{%s=\"", label);
		label_value(out, value);
		fputs("\"}", out);
	}
	fprintf(out, " %.6f\n", (double)sum / 1e6);
	fprintf(out, "%s_count", name);
	if (label) {
		fprintf(out, "{%s=\"", label);
		label_value(out, value);
		fputs("\"}", out);
	}
	fprintf(out, " %llu\n", (unsigned long long)count);
}

void metrics_prometheus(const struct metrics *m, const struct metrics_view *v, FILE *out)
{
	static const struct {
		const char *name;
		enum exchange_cache c;
		const char *help;
	} outcomes[] = {
		{ "mtps_cache_hits_total", EXCHANGE_HIT, "Requests answered from a fresh stored response." },
		{ "mtps_cache_misses_total", EXCHANGE_MISS, "Requests fetched because nothing usable was stored." },
		{ "mtps_cache_stale_total", EXCHANGE_STALE, "Requests answered from a stale stored response." },
		{ "mtps_cache_revalidations_total", EXCHANGE_REVALIDATED, "Requests answered from a stored response the origin confirmed (304)." },
		{ "mtps_cache_bypass_total", EXCHANGE_BYPASS, "Requests the cache took no part in." },
	};

	fprintf(out, "# HELP mtps_build_info The version of mtps-proxy running.\n"
		     "# TYPE mtps_build_info gauge\nmtps_build_info{version=\"%s\"} 1\n",
		PACKAGE_VERSION);
	head(out, "mtps_uptime_seconds", "gauge", "Seconds since mtps-proxy started.");
	fprintf(out, "mtps_uptime_seconds %.3f\n", metrics_uptime(m));

	head(out, "mtps_requests_total", "counter",
	     "Client requests completed, by method, status class and cache outcome.");
	for (int i = 0; i < METRICS_METHOD_MAX; i++)
		for (int k = 0; k < METRICS_CLASS_MAX; k++)
			for (int c = 0; c < EXCHANGE_CACHE_MAX; c++) {
				uint64_t n = ld(&m->requests[i][k][c]);

				if (n)
					fprintf(out,
						"mtps_requests_total{method=\"%s\",code=\"%s\","
						"cache=\"%s\"} %llu\n",
						metrics_method_names[i], metrics_class_names[k],
						exchange_cache_names[c], (unsigned long long)n);
			}
	for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]); k++) {
		head(out, outcomes[k].name, "counter", outcomes[k].help);
		sample_u64(out, outcomes[k].name, NULL, NULL, cache_outcome(m, outcomes[k].c));
	}
	for (size_t k = 0; k < sizeof(scalars) / sizeof(scalars[0]); k++) {
		head(out, scalars[k].name, scalars[k].type, scalars[k].help);
		fprintf(out, "%s %lld\n", scalars[k].name, scalars[k].get(m, v));
	}

	head(out, "mtps_backend_up", "gauge", "1 when the backend's health checks pass.");
	for (size_t i = 0; i < v->nbackends; i++)
		sample_u64(out, "mtps_backend_up", "backend", v->backends[i].name,
			   (uint64_t)v->backends[i].up);
	head(out, "mtps_backend_state", "gauge",
	     "1 for the backend's state: up, down, draining, drained or disabled.");
	for (size_t i = 0; i < v->nbackends; i++) {
		static const char *const states[] = { "up", "down", "draining", "drained",
						      "disabled" };

		for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
			fputs("mtps_backend_state{backend=\"", out);
			label_value(out, v->backends[i].name);
			fprintf(out, "\",state=\"%s\"} %d\n", states[k],
				strcmp(states[k], v->backends[i].state) == 0);
		}
	}
	head(out, "mtps_backend_weight", "gauge",
	     "The backend's weight now (slow start ramps it up to the configured one).");
	for (size_t i = 0; i < v->nbackends; i++) {
		fputs("mtps_backend_weight{backend=\"", out);
		label_value(out, v->backends[i].name);
		fprintf(out, "\"} %g\n",
			(double)v->backends[i].effective_weight / BALANCER_WEIGHT_SCALE);
	}
	head(out, "mtps_backend_in_flight", "gauge", "Fetches running on the backend.");
	for (size_t i = 0; i < v->nbackends; i++)
		sample_u64(out, "mtps_backend_in_flight", "backend", v->backends[i].name,
			   v->backends[i].in_flight);
	head(out, "mtps_upstream_requests_total", "counter",
	     "Fetches sent to the backend (retries included).");
	for (size_t i = 0; i < v->nbackends; i++)
		sample_u64(out, "mtps_upstream_requests_total", "backend", v->backends[i].name,
			   v->backends[i].requests);
	head(out, "mtps_upstream_errors_total", "counter",
	     "Fetches that failed on the backend: no connection, timeout, reset, 502-504.");
	for (size_t i = 0; i < v->nbackends; i++)
		sample_u64(out, "mtps_upstream_errors_total", "backend", v->backends[i].name,
			   v->backends[i].errors);
	head(out, "mtps_upstream_retries_total", "counter",
	     "Fetches that failed on the backend and were tried on another.");
	for (size_t i = 0; i < v->nbackends; i++)
		sample_u64(out, "mtps_upstream_retries_total", "backend", v->backends[i].name,
			   v->backends[i].retries);

	head(out, "mtps_client_latency_seconds", "histogram",
	     "Time from a client request's start to its last byte sent.");
	histogram(out, "mtps_client_latency_seconds", NULL, NULL, &m->client_us);
	head(out, "mtps_upstream_latency_seconds", "histogram",
	     "Time from a fetch sent to its response fields back, by backend.");
	for (size_t i = 0, n = atomic_load_explicit(&m->nbackends, memory_order_acquire); i < n;
	     i++)
		histogram(out, "mtps_upstream_latency_seconds", "backend", m->backends[i].name,
			  &m->backends[i].upstream_us);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static struct json_object *jlatency(const struct hist *h)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "count", json_object_new_int64((int64_t)hist_count(h)));
	json_object_object_add(o, "mean", json_object_new_double(hist_mean(h) / 1e6));
	json_object_object_add(o, "min", json_object_new_double((double)hist_min(h) / 1e6));
	json_object_object_add(o, "max", json_object_new_double((double)hist_max(h) / 1e6));
	for (size_t k = 0; k < sizeof(percentiles) / sizeof(percentiles[0]); k++)
		json_object_object_add(o, percentile_names[k],
				       json_object_new_double(
					       (double)hist_percentile(h, percentiles[k]) / 1e6));
	return o;
}

static void jset_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

struct json_object *metrics_json(const struct metrics *m, const struct metrics_view *v)
{
	struct json_object *root = json_object_new_object(), *o, *a;
	uint64_t total = 0, by_class[METRICS_CLASS_MAX] = { 0 };

	if (root == NULL)
		return NULL;
	json_object_object_add(root, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(root, "uptime", json_object_new_double(metrics_uptime(m)));
	jset_u64(root, "started", (uint64_t)m->started_wall);
	jset_u64(root, "time", (uint64_t)time(NULL));

	o = json_object_new_object();
	a = json_object_new_object();
	for (int i = 0; i < METRICS_METHOD_MAX; i++) {
		uint64_t n = 0;

		for (int k = 0; k < METRICS_CLASS_MAX; k++)
			for (int c = 0; c < EXCHANGE_CACHE_MAX; c++) {
				uint64_t x = ld(&m->requests[i][k][c]);

				n += x;
				by_class[k] += x;
			}
		total += n;
		if (n)
			jset_u64(a, metrics_method_names[i], n);
	}
	jset_u64(o, "total", total);
	json_object_object_add(o, "by_method", a);
	a = json_object_new_object();
	for (int k = 0; k < METRICS_CLASS_MAX; k++)
		jset_u64(a, metrics_class_names[k], by_class[k]);
	json_object_object_add(o, "by_status", a);
	a = json_object_new_object();
	for (int c = 0; c < EXCHANGE_CACHE_MAX; c++)
		jset_u64(a, exchange_cache_names[c], cache_outcome(m, (enum exchange_cache)c));
	json_object_object_add(o, "by_cache", a);
	json_object_object_add(root, "requests", o);
	for (size_t k = 0; k < sizeof(scalars) / sizeof(scalars[0]); k++) {
		struct json_object *section;

		if (!json_object_object_get_ex(root, scalars[k].section, &section)) {
			section = json_object_new_object();
			json_object_object_add(root, scalars[k].section, section);
		}
		json_object_object_add(section, scalars[k].key,
				       json_object_new_int64(scalars[k].get(m, v)));
	}

	o = json_object_new_object();
	json_object_object_add(o, "client", jlatency(&m->client_us));
	json_object_object_add(o, "upstream", jlatency(&m->upstream_us));
	if (v->recent_client_us) {
		struct json_object *r = jlatency(v->recent_client_us);

		json_object_object_add(r, "window",
				       json_object_new_double(v->recent_seconds));
		json_object_object_add(o, "client_recent", r);
	}
	json_object_object_add(root, "latency", o);

	a = json_object_new_array();
	for (size_t i = 0; i < v->nbackends; i++) {
		const struct metrics_backend_view *b = &v->backends[i];
		const struct metrics_backend *mb;
		struct json_object *be = json_object_new_object(), *h = json_object_new_object();

		json_object_object_add(be, "name", json_object_new_string(b->name));
		json_object_object_add(be, "state", json_object_new_string(b->state));
		json_object_object_add(be, "admin", json_object_new_string(b->admin));
		json_object_object_add(be, "up", json_object_new_boolean(b->up));
		jset_u64(be, "weight", b->weight);
		json_object_object_add(be, "effective_weight",
				       json_object_new_double((double)b->effective_weight /
							      BALANCER_WEIGHT_SCALE));
		jset_u64(be, "in_flight", b->in_flight);
		jset_u64(be, "requests", b->requests);
		jset_u64(be, "errors", b->errors);
		jset_u64(be, "retries", b->retries);
		json_object_object_add(h, "health", json_object_new_int(b->health));
		jset_u64(h, "checks_passed_in_row", b->checks_passed);
		jset_u64(h, "checks_failed_in_row", b->checks_failed);
		jset_u64(h, "traffic_failures_in_row", b->passive_failures);
		json_object_object_add(be, "health", h);
		mb = backend_find(m, b->name,
				  atomic_load_explicit(&m->nbackends, memory_order_acquire));
		if (mb)
			json_object_object_add(be, "latency", jlatency(&mb->upstream_us));
		json_object_array_add(a, be);
	}
	json_object_object_add(root, "backends", a);

	a = json_object_new_array();
	for (size_t k = 0; k < v->nevents; k++) {
		const struct metrics_event_view *e = &v->events[k];
		struct json_object *ev = json_object_new_object();

		jset_u64(ev, "time", (uint64_t)e->at);
		json_object_object_add(ev, "seconds_ago", json_object_new_double(e->seconds_ago));
		json_object_object_add(ev, "backend", json_object_new_string(e->backend));
		json_object_object_add(ev, "state", json_object_new_string(e->state));
		json_object_object_add(ev, "reason", json_object_new_string(e->why));
		json_object_array_add(a, ev);
	}
	json_object_object_add(root, "events", a);
	return root;
}

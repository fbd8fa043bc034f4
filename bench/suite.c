/* suite.c - the scenarios of `mtps-bench suite` (see suite.h). */
#include "config.h"

#include "suite.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "load.h"
#include "pattern.h"
#include "spawn.h"
#include "stats.h"
#include "urls.h"

#define FETCH_MAX_BODY (1 << 20)	/* kept for parsing; larger bodies are only counted */
#define SPAWN_TIMEOUT_MS 30000
#define TAKE_BACK_TIMEOUT_MS 20000
#define MAX_URL 512

const char *const suite_scenario_names[] = {
	"status", "large", "cache", "concurrency", "balance", "crud", NULL,
};

/* ---- one blocking HTTP exchange ---------------------------------------------------------- */

struct fetch {
	long status;
	int code;			/* CURLcode */
	double seconds;
	uint64_t bytes;
	bool verify;			/* check the body against the /api/large pattern */
	bool corrupt;
	uint64_t corrupt_at;
	char *body;			/* the first FETCH_MAX_BODY bytes, NUL-terminated */
	size_t len;
	char cache[32], served_by[STATS_MAX_NAME], location[256];
};

static size_t fetch_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;
	size_t n = size * nmemb;

	if (f->verify && !f->corrupt) {
		size_t ok = pattern_check(ptr, f->bytes, n);

		if (ok < n) {
			f->corrupt = true;
			f->corrupt_at = f->bytes + ok;
		}
	}
	if (!f->verify && f->len < FETCH_MAX_BODY) {
		size_t take = n < FETCH_MAX_BODY - f->len ? n : FETCH_MAX_BODY - f->len;
		char *b = realloc(f->body, f->len + take + 1);

		if (b == NULL)
			return 0;
		memcpy(b + f->len, ptr, take);
		f->body = b;
		f->len += take;
		b[f->len] = '\0';
	}
	f->bytes += n;
	return n;
}

static void copy_header(const char *line, size_t len, const char *name, char *out,
			size_t outlen)
{
	size_t nlen = strlen(name), vlen;

	if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
		return;
	line += nlen + 1;
	len -= nlen + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
		len--;
	vlen = len < outlen - 1 ? len : outlen - 1;
	memcpy(out, line, vlen);
	out[vlen] = '\0';
}

static size_t fetch_header(char *line, size_t size, size_t nitems, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * nitems;

	copy_header(line, len, "X-Cache", f->cache, sizeof(f->cache));
	copy_header(line, len, "X-Served-By", f->served_by, sizeof(f->served_by));
	copy_header(line, len, "Location", f->location, sizeof(f->location));
	return len;
}

/* Sends <method> <url> (with a JSON <body> when not NULL). Returns 0 when an answer came
 * (any status), -1 when none did (f->code says why). Free with fetch_free(). */
static int fetch(const char *method, const char *url, const char *body, bool verify,
		 uint64_t timeout_ms, struct fetch *f)
{
	struct curl_slist *hdrs = NULL;
	CURL *e = curl_easy_init();
	CURLcode rc;

	memset(f, 0, sizeof(*f));
	f->verify = verify;
	if (e == NULL) {
		f->code = CURLE_OUT_OF_MEMORY;
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, fetch_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "mtps-bench/" PACKAGE_VERSION);
	if (body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	}
	rc = curl_easy_perform(e);
	f->code = (int)rc;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &f->seconds);
	curl_easy_cleanup(e);
	curl_slist_free_all(hdrs);
	return rc == CURLE_OK ? 0 : -1;
}

static void fetch_free(struct fetch *f)
{
	free(f->body);
	f->body = NULL;
}

/* ---- the run and its current scenario ----------------------------------------------------- */

struct run {
	const struct suite_config *c;
	FILE *out;
	char tag[32];			/* makes this run's URLs new to the proxy's cache */
	const char *proxy;
	const char *origins[SUITE_MAX_ORIGINS];
	char *origin_names[SUITE_MAX_ORIGINS];	/* from /api/test, or NULL */
	unsigned norigins;
	struct spawn origin_sp[SUITE_MAX_ORIGINS], proxy_sp, crud_sp;
	char origin_ports[SUITE_MAX_ORIGINS][8];
	struct json_object *root, *scenarios;
	/* the scenario being run */
	const char *name;
	struct json_object *notes, *metrics;
	bool failed, skipped;
	unsigned nfailed;
};

static void note(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct run *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(r->out, "  %s\n", line);
	fflush(r->out);
	json_object_array_add(r->notes, json_object_new_string(line));
}

#define failed(r, ...) do { (r)->failed = true; note(r, "FAIL: " __VA_ARGS__); } while (0)

static void begin(struct run *r, const char *name)
{
	r->name = name;
	r->notes = json_object_new_array();
	r->metrics = json_object_new_object();
	r->failed = false;
	r->skipped = false;
	fprintf(r->out, "[%s]\n", name);
	fflush(r->out);
}

static void end(struct run *r)
{
	struct json_object *s = json_object_new_object();
	const char *verdict = r->failed ? "FAIL" : r->skipped ? "SKIP" : "PASS";

	json_object_object_add(s, "name", json_object_new_string(r->name));
	json_object_object_add(s, "verdict", json_object_new_string(verdict));
	json_object_object_add(s, "notes", r->notes);
	json_object_object_add(s, "metrics", r->metrics);
	json_object_array_add(r->scenarios, s);
	fprintf(r->out, "  => %s %s\n", r->name, verdict);
	fflush(r->out);
	if (r->failed)
		r->nfailed++;
}

static void metric(struct run *r, const char *key, double v)
{
	json_object_object_add(r->metrics, key, json_object_new_double(v));
}

/* Opens <name> in the report folder for writing, or returns NULL when there is none. */
static FILE *report_file(struct run *r, const char *name)
{
	char path[4096];
	FILE *f;

	if (r->c->report_dir == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", r->c->report_dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		note(r, "cannot write %s: %s", path, strerror(errno));
	return f;
}

static const char *curl_reason(const struct fetch *f, char *buf, size_t len)
{
	if (f->code)
		snprintf(buf, len, "no answer: %s", curl_easy_strerror((CURLcode)f->code));
	else
		snprintf(buf, len, "HTTP %ld", f->status);
	return buf;
}

static double ms_of(const struct hist *h, double p)
{
	return (double)hist_percentile(h, p) / 1000.0;
}

/* Runs a load on the single URL or pattern <url>; adds to <st>. Returns 0 or -1 (noted). */
static int run_load(struct run *r, const char *url, unsigned conns, double zipf_s,
		    uint64_t duration_ms, struct stats *st)
{
	struct urls u = { 0 };
	char err[512];
	struct load_config lc = {
		.urls = &u,
		.zipf_s = zipf_s,
		.connections = conns,
		.threads = conns < 2 ? 1 : 2,
		.duration_ms = duration_ms,
		.timeout_ms = r->c->timeout_ms,
		.seed = 1,
	};
	int rc = urls_add(&u, url, err, sizeof(err));

	if (rc == 0)
		rc = load_run(&lc, st, err, sizeof(err));
	urls_free(&u);
	if (rc) {
		failed(r, "load on %s: %s", url, err);
		return -1;
	}
	return 0;
}

/* Fails the scenario when <st> saw errors or statuses other than 2xx. */
static void expect_clean(struct run *r, const struct stats *st, const char *what)
{
	struct stats_summary m;

	stats_summarize(st, &m);
	if (m.responses == 0)
		failed(r, "%s: no answer at all", what);
	if (m.errors)
		failed(r, "%s: %" PRIu64 " requests got no answer (connect %" PRIu64 ", timeout %"
		       PRIu64 ", io %" PRIu64 ", other %" PRIu64 ")", what, m.errors,
		       st->errors[STATS_ERR_CONNECT], st->errors[STATS_ERR_TIMEOUT],
		       st->errors[STATS_ERR_IO], st->errors[STATS_ERR_OTHER]);
	if (m.non_2xx_3xx)
		failed(r, "%s: %" PRIu64 " answers were not 2xx or 3xx", what, m.non_2xx_3xx);
}

/* ---- 1. status ---------------------------------------------------------------------------- */

static void check_status_of(struct run *r, const char *base, const char *who, int origin)
{
	static const char *const paths[] = { "/api/test", "/health" };
	char url[MAX_URL], why[256];
	struct fetch f;

	for (int i = 0; i < 2; i++) {
		snprintf(url, sizeof(url), "%s%s", base, paths[i]);
		if (fetch("GET", url, NULL, false, r->c->timeout_ms, &f) || f.status != 200) {
			failed(r, "%s: GET %s: %s", who, url, curl_reason(&f, why, sizeof(why)));
		} else if (i == 0 && origin >= 0) {
			struct json_object *o = json_tokener_parse(f.body ? f.body : "");
			struct json_object *name;

			if (o && json_object_object_get_ex(o, "name", &name) &&
			    json_object_is_type(name, json_type_string)) {
				free(r->origin_names[origin]);
				r->origin_names[origin] = strdup(json_object_get_string(name));
			}
			json_object_put(o);
			note(r, "%s: %s answers /api/test and /health (name %s)", who, base,
			     r->origin_names[origin] ? r->origin_names[origin] : "?");
		} else if (i == 0) {
			note(r, "%s: %s answers /api/test and /health (X-Served-By %s)", who,
			     base, f.served_by[0] ? f.served_by : "-");
		}
		fetch_free(&f);
	}
}

static void scenario_status(struct run *r)
{
	char who[32];

	for (unsigned i = 0; i < r->norigins; i++) {
		snprintf(who, sizeof(who), "origin %u", i + 1);
		check_status_of(r, r->origins[i], who, (int)i);
	}
	check_status_of(r, r->proxy, "proxy", -1);
	metric(r, "servers", r->norigins + 1);
}

/* ---- 2. large ----------------------------------------------------------------------------- */

static const char *size_label(uint64_t n, char *buf, size_t len)
{
	if (n >= (1ULL << 30) && n % (1ULL << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "GiB", n >> 30);
	else if (n >= (1ULL << 20) && n % (1ULL << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "MiB", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 "KiB", n >> 10);
	else
		snprintf(buf, len, "%" PRIu64 "B", n);
	return buf;
}

/* Fetches one large body and checks it; returns MB/s (MiB/s), or -1 when it failed. */
static double large_fetch(struct run *r, const char *url, uint64_t size, const char *what,
			  char *cache, size_t cachelen)
{
	char why[256];
	struct fetch f;
	double mbps = -1;

	if (fetch("GET", url, NULL, true, r->c->timeout_ms, &f) || f.status != 200)
		failed(r, "%s: GET %s: %s", what, url, curl_reason(&f, why, sizeof(why)));
	else if (f.bytes != size)
		failed(r, "%s: %" PRIu64 " bytes arrived, not %" PRIu64, what, f.bytes, size);
	else if (f.corrupt)
		failed(r, "%s: byte %" PRIu64 " differs from the pattern", what, f.corrupt_at);
	else
		mbps = f.seconds > 0 ? (double)size / 1048576.0 / f.seconds : 0;
	snprintf(cache, cachelen, "%s", f.cache[0] ? f.cache : "-");
	fetch_free(&f);
	return mbps;
}

static void scenario_large(struct run *r)
{
	struct json_object *rows = json_object_new_array();
	FILE *csv = report_file(r, "large.csv");

	if (csv)
		fprintf(csv, "size_bytes,label,miss_MBps,hit_MBps,direct_MBps\n");
	for (unsigned i = 0; i < r->c->nlarge; i++) {
		uint64_t size = r->c->large_sizes[i];
		char url[MAX_URL], label[32], what[64], c1[32], c2[32], c3[32];
		double miss, hit, direct;
		struct json_object *row = json_object_new_object();

		size_label(size, label, sizeof(label));
		snprintf(url, sizeof(url), "%s/api/large?size=%" PRIu64 "&run=%s", r->proxy, size,
			 r->tag);
		snprintf(what, sizeof(what), "%s through the proxy (first)", label);
		miss = large_fetch(r, url, size, what, c1, sizeof(c1));
		snprintf(what, sizeof(what), "%s through the proxy (again)", label);
		hit = large_fetch(r, url, size, what, c2, sizeof(c2));
		snprintf(url, sizeof(url), "%s/api/large?size=%" PRIu64 "&run=%s", r->origins[0],
			 size, r->tag);
		snprintf(what, sizeof(what), "%s direct", label);
		direct = large_fetch(r, url, size, what, c3, sizeof(c3));
		note(r, "%s checked byte for byte: first %.1f MB/s (X-Cache %s), again %.1f MB/s "
		     "(X-Cache %s), direct %.1f MB/s", label, miss, c1, hit, c2, direct);
		json_object_object_add(row, "size", json_object_new_uint64(size));
		json_object_object_add(row, "label", json_object_new_string(label));
		json_object_object_add(row, "miss_MBps", json_object_new_double(miss));
		json_object_object_add(row, "hit_MBps", json_object_new_double(hit));
		json_object_object_add(row, "direct_MBps", json_object_new_double(direct));
		json_object_object_add(row, "first_x_cache", json_object_new_string(c1));
		json_object_object_add(row, "again_x_cache", json_object_new_string(c2));
		json_object_array_add(rows, row);
		if (csv)
			fprintf(csv, "%" PRIu64 ",%s,%.2f,%.2f,%.2f\n", size, label, miss, hit,
				direct);
	}
	json_object_object_add(r->metrics, "sizes", rows);
	if (csv)
		fclose(csv);
}

/* ---- 3. cache ----------------------------------------------------------------------------- */

#define CACHE_URLS 200

static void scenario_cache(struct run *r)
{
	struct stats *direct = stats_new(), *proxied = stats_new();
	struct stats_summary d, p;
	char url[MAX_URL];
	FILE *csv;
	double hit50, miss50;

	if (direct == NULL || proxied == NULL) {
		failed(r, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/api/large?run=%s-cache&size={1000..%d}", r->origins[0],
		 r->tag, 1000 + CACHE_URLS - 1);
	if (run_load(r, url, r->c->connections, r->c->zipf_s, r->c->step_ms, direct))
		goto out;
	snprintf(url, sizeof(url), "%s/api/large?run=%s-cache&size={1000..%d}", r->proxy,
		 r->tag, 1000 + CACHE_URLS - 1);
	if (run_load(r, url, r->c->connections, r->c->zipf_s, r->c->step_ms, proxied))
		goto out;
	expect_clean(r, direct, "direct");
	expect_clean(r, proxied, "through the proxy");
	stats_summarize(direct, &d);
	stats_summarize(proxied, &p);
	hit50 = ms_of(&proxied->by_cache[STATS_CACHE_HIT], 50);
	miss50 = ms_of(&proxied->by_cache[STATS_CACHE_MISS], 50);
	if (proxied->cache[STATS_CACHE_NONE])
		failed(r, "%" PRIu64 " answers through the proxy had no X-Cache header",
		       proxied->cache[STATS_CACHE_NONE]);
	if (proxied->cache[STATS_CACHE_HIT] == 0)
		failed(r, "no answer through the proxy was a cache HIT");
	note(r, "%d URLs, Zipf s=%.2f, %u connections, %.1f s each", CACHE_URLS, r->c->zipf_s,
	     r->c->connections, (double)r->c->step_ms / 1000.0);
	note(r, "direct:  %" PRIu64 " requests, %.0f req/s, p50 %.2f ms, p99 %.2f ms",
	     d.responses, d.requests_per_s, d.p50_ms, d.p99_ms);
	note(r, "proxied: %" PRIu64 " requests, %.0f req/s, p50 %.2f ms, p99 %.2f ms, hit ratio "
	     "%.1f %% (HIT %" PRIu64 ", MISS %" PRIu64 ")", p.responses, p.requests_per_s,
	     p.p50_ms, p.p99_ms, p.hit_ratio * 100.0, proxied->cache[STATS_CACHE_HIT],
	     proxied->cache[STATS_CACHE_MISS]);
	note(r, "HIT p50 %.3f ms, MISS p50 %.2f ms; speed-up at p50 %.1fx (throughput %.1fx)",
	     hit50, miss50, p.p50_ms > 0 ? d.p50_ms / p.p50_ms : 0,
	     d.requests_per_s > 0 ? p.requests_per_s / d.requests_per_s : 0);
	metric(r, "direct_p50_ms", d.p50_ms);
	metric(r, "direct_p99_ms", d.p99_ms);
	metric(r, "proxy_p50_ms", p.p50_ms);
	metric(r, "proxy_p99_ms", p.p99_ms);
	metric(r, "hit_p50_ms", hit50);
	metric(r, "miss_p50_ms", miss50);
	metric(r, "hit_ratio", p.hit_ratio);
	metric(r, "direct_rps", d.requests_per_s);
	metric(r, "proxy_rps", p.requests_per_s);
	json_object_object_add(r->metrics, "direct", stats_to_json(direct));
	json_object_object_add(r->metrics, "proxy", stats_to_json(proxied));

	csv = report_file(r, "cache_latency.csv");
	if (csv) {
		fprintf(csv, "percentile,direct_ms,proxy_ms,hit_ms,miss_ms\n");
		for (unsigned i = 0; i < stats_npercentiles; i++) {
			double q = stats_percentiles[i];

			fprintf(csv, "%g,%.3f,%.3f,%.3f,%.3f\n", q, ms_of(&direct->latency, q),
				ms_of(&proxied->latency, q),
				ms_of(&proxied->by_cache[STATS_CACHE_HIT], q),
				ms_of(&proxied->by_cache[STATS_CACHE_MISS], q));
		}
		fclose(csv);
	}
	csv = report_file(r, "timeseries.csv");
	if (csv) {
		unsigned n = direct->nseconds > proxied->nseconds ? direct->nseconds
								  : proxied->nseconds;
		/* a last, partial second is scaled to a rate */
		double dlast = (double)(direct->elapsed_us % 1000000) / 1e6;
		double plast = (double)(proxied->elapsed_us % 1000000) / 1e6;

		fprintf(csv, "second,direct_rps,proxy_rps,proxy_hits_per_s\n");
		for (unsigned i = 0; i < n; i++) {
			double dw = i + 1 == direct->nseconds && dlast > 0.05 ? dlast : 1.0;
			double pw = i + 1 == proxied->nseconds && plast > 0.05 ? plast : 1.0;

			fprintf(csv, "%u,%.1f,%.1f,%.1f\n", i,
				(double)direct->seconds[i].responses / dw,
				(double)proxied->seconds[i].responses / pw,
				(double)proxied->seconds[i].hits / pw);
		}
		fclose(csv);
	}
out:
	stats_free(direct);
	stats_free(proxied);
}

/* ---- 4. concurrency ----------------------------------------------------------------------- */

static void scenario_concurrency(struct run *r)
{
	struct json_object *rows = json_object_new_array();
	FILE *csv = report_file(r, "concurrency.csv");
	char url[MAX_URL], what[64];

	snprintf(url, sizeof(url), "%s/api/large?size=1024&run=%s-sweep", r->proxy, r->tag);
	if (csv)
		fprintf(csv, "connections,requests_per_s,p50_ms,p99_ms,errors\n");
	for (unsigned i = 0; i < r->c->nsweep; i++) {
		struct stats *st = stats_new();
		struct json_object *row;
		struct stats_summary m;

		if (st == NULL || run_load(r, url, r->c->sweep[i], 0, r->c->step_ms, st)) {
			stats_free(st);
			break;
		}
		snprintf(what, sizeof(what), "%u connections", r->c->sweep[i]);
		expect_clean(r, st, what);
		stats_summarize(st, &m);
		note(r, "%4u connections: %8.0f req/s, p50 %.3f ms, p99 %.3f ms, %" PRIu64
		     " errors", r->c->sweep[i], m.requests_per_s, m.p50_ms, m.p99_ms, m.errors);
		row = json_object_new_object();
		json_object_object_add(row, "connections", json_object_new_int((int)r->c->sweep[i]));
		json_object_object_add(row, "requests_per_s", json_object_new_double(m.requests_per_s));
		json_object_object_add(row, "p50_ms", json_object_new_double(m.p50_ms));
		json_object_object_add(row, "p99_ms", json_object_new_double(m.p99_ms));
		json_object_object_add(row, "errors", json_object_new_uint64(m.errors));
		json_object_array_add(rows, row);
		if (csv)
			fprintf(csv, "%u,%.1f,%.3f,%.3f,%" PRIu64 "\n", r->c->sweep[i],
				m.requests_per_s, m.p50_ms, m.p99_ms, m.errors);
		stats_free(st);
	}
	json_object_object_add(r->metrics, "steps", rows);
	if (csv)
		fclose(csv);
}

/* ---- 5. balance --------------------------------------------------------------------------- */

struct bg_load {
	struct run *r;
	char url[MAX_URL];
	uint64_t duration_ms;
	struct stats *st;
	int rc;
	char err[512];
};

static void *bg_load_main(void *arg)
{
	struct bg_load *b = arg;
	struct urls u = { 0 };
	struct load_config lc = {
		.urls = &u,
		.connections = b->r->c->connections,
		.threads = 1,
		.duration_ms = b->duration_ms,
		.timeout_ms = b->r->c->timeout_ms,
		.seed = 2,
	};

	b->rc = urls_add(&u, b->url, b->err, sizeof(b->err));
	if (b->rc == 0)
		b->rc = load_run(&lc, b->st, b->err, sizeof(b->err));
	urls_free(&u);
	return NULL;
}

static void wait_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Stops origin 1 under load and starts it again; the proxy must hide it from clients and
 * take it back. Only with --spawn: the suite cannot stop servers it did not start. */
static void balance_stop_start(struct run *r)
{
	struct bg_load b = { .r = r, .duration_ms = 3 * r->c->step_ms };
	const char *victim = r->origin_names[0] ? r->origin_names[0] : "origin-1";
	const char *args[] = { "--port", r->origin_ports[0], "--name", "origin-1",
			       "--latency-ms", NULL, NULL };
	char latency[16], log[4096], why[256];
	uint64_t t0, took;
	pthread_t tid;
	struct fetch f;
	int rc;

	snprintf(latency, sizeof(latency), "%u", r->c->latency_ms);
	args[5] = latency;
	snprintf(b.url, sizeof(b.url), "%s/api/test", r->proxy);
	b.st = stats_new();
	if (b.st == NULL || pthread_create(&tid, NULL, bg_load_main, &b)) {
		failed(r, "cannot start the load");
		stats_free(b.st);
		return;
	}
	wait_ms(r->c->step_ms);
	rc = spawn_stop(&r->origin_sp[0], 10000);
	note(r, "stopped %s under load (exit status %d)", victim, rc);
	wait_ms(r->c->step_ms);
	snprintf(log, sizeof(log), "%s/origin-1.log", r->c->log_dir ? r->c->log_dir : ".");
	rc = spawn_start(&r->origin_sp[0], r->c->origin_bin, args,
			 r->c->log_dir ? log : NULL, SPAWN_TIMEOUT_MS);
	if (rc)
		failed(r, "could not restart %s on port %s: %s", victim, r->origin_ports[0],
		       strerror(-rc));
	else
		note(r, "restarted %s on the same port", victim);
	/* while the load goes on: the proxy's health checks take it back after some passing
	 * probes */
	t0 = load_now_us();
	while (rc == 0) {
		bool back = false;

		if (fetch("GET", b.url, NULL, false, r->c->timeout_ms, &f) == 0)
			back = strcmp(f.served_by, victim) == 0;
		curl_reason(&f, why, sizeof(why));
		fetch_free(&f);
		took = (load_now_us() - t0) / 1000;
		if (back) {
			note(r, "%s was back in rotation %.1f s after its restart", victim,
			     (double)took / 1000.0);
			metric(r, "take_back_s", (double)took / 1000.0);
			break;
		}
		if (took > TAKE_BACK_TIMEOUT_MS) {
			failed(r, "%s was not back in rotation %d s after its restart (last: %s)",
			       victim, TAKE_BACK_TIMEOUT_MS / 1000, why);
			break;
		}
		wait_ms(20);
	}
	pthread_join(tid, NULL);
	if (b.rc)
		failed(r, "load: %s", b.err);
	else
		expect_clean(r, b.st, "while an origin was stopped and started");
	note(r, "%" PRIu64 " requests while %s was stopped and restarted, %" PRIu64
	     " failed", b.st->responses, victim,
	     b.st->errors[0] + b.st->errors[1] + b.st->errors[2] + b.st->errors[3]);
	metric(r, "stop_start_requests", (double)b.st->responses);
	metric(r, "stop_start_errors", (double)(b.st->errors[0] + b.st->errors[1] +
						 b.st->errors[2] + b.st->errors[3]));
	stats_free(b.st);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct stats_backend *)a)->name,
		      ((const struct stats_backend *)b)->name);
}

static void scenario_balance(struct run *r)
{
	struct stats *st = stats_new();
	struct json_object *dist = json_object_new_object();
	char url[MAX_URL];
	FILE *csv;

	snprintf(url, sizeof(url), "%s/api/test", r->proxy);
	if (st == NULL || run_load(r, url, r->c->connections, 0, r->c->step_ms, st)) {
		stats_free(st);
		json_object_put(dist);
		return;
	}
	expect_clean(r, st, "/api/test through the proxy");
	qsort(st->backends, st->nbackends, sizeof(st->backends[0]), by_name);
	csv = report_file(r, "backends.csv");
	if (csv)
		fprintf(csv, "backend,count\n");
	for (unsigned i = 0; i < st->nbackends; i++) {
		note(r, "%-20s %8" PRIu64 " answers (%.1f %%)", st->backends[i].name,
		     st->backends[i].count,
		     st->responses ? 100.0 * (double)st->backends[i].count / (double)st->responses
				   : 0.0);
		json_object_object_add(dist, st->backends[i].name,
				       json_object_new_uint64(st->backends[i].count));
		if (csv)
			fprintf(csv, "\"%s\",%" PRIu64 "\n", st->backends[i].name,
				st->backends[i].count);
	}
	if (csv)
		fclose(csv);
	json_object_object_add(r->metrics, "distribution", dist);
	if (st->nbackends == 0)
		failed(r, "no answer named its origin (X-Served-By)");
	for (unsigned i = 0; i < r->norigins; i++) {
		bool seen = false;

		if (r->origin_names[i] == NULL)
			continue;	/* the status scenario did not run or failed */
		for (unsigned j = 0; j < st->nbackends; j++)
			seen |= strcmp(st->backends[j].name, r->origin_names[i]) == 0;
		if (!seen)
			failed(r, "origin %s (%s) answered none of %" PRIu64 " requests",
			       r->origin_names[i], r->origins[i], st->responses);
	}
	stats_free(st);
	if (r->c->spawn && r->norigins >= 2)
		balance_stop_start(r);
	else
		note(r, "stopping an origin under load needs --spawn (the suite stops only the "
		     "servers it started): not checked");
}

/* ---- 6. crud ------------------------------------------------------------------------------ */

/* GETs <url> and checks the status and that field <key> has <want> (when not NULL). */
static void crud_read(struct run *r, const char *url, long want_status, const char *key,
		      const char *want, const char *after)
{
	struct json_object *o, *v;
	char why[256];
	struct fetch f;

	if (fetch("GET", url, NULL, false, r->c->timeout_ms, &f)) {
		failed(r, "GET %s after %s: %s", url, after, curl_reason(&f, why, sizeof(why)));
		fetch_free(&f);
		return;
	}
	if (f.status != want_status) {
		failed(r, "GET after %s: HTTP %ld (X-Cache %s), expected %ld%s", after, f.status,
		       f.cache[0] ? f.cache : "-", want_status,
		       f.status == 200 && want_status == 404 ? ": a stale read" : "");
	} else if (key) {
		o = json_tokener_parse(f.body ? f.body : "");
		if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
		    strcmp(json_object_get_string(v), want) != 0)
			failed(r, "GET after %s: %s is '%s' (X-Cache %s), expected '%s': a stale "
			       "read", after, key, o && json_object_object_get_ex(o, key, &v) ?
			       json_object_get_string(v) : "(missing)", f.cache[0] ? f.cache : "-",
			       want);
		else
			note(r, "GET after %s: %s = '%s' (X-Cache %s)", after, key, want,
			     f.cache[0] ? f.cache : "-");
		json_object_put(o);
	} else {
		note(r, "GET after %s: HTTP %ld (X-Cache %s)", after, f.status,
		     f.cache[0] ? f.cache : "-");
	}
	fetch_free(&f);
}

static bool crud_write(struct run *r, const char *method, const char *url, const char *body,
		       long want, struct fetch *f)
{
	char why[256];

	if (fetch(method, url, body, false, r->c->timeout_ms, f) || f->status != want) {
		failed(r, "%s %s: %s, expected %ld%s%s", method, url,
		       curl_reason(f, why, sizeof(why)), want, f->body ? ": " : "",
		       f->body ? f->body : "");
		return false;
	}
	note(r, "%s %s: HTTP %ld", method, url, f->status);
	return true;
}

static void scenario_crud(struct run *r)
{
	const char *base = r->c->crud_proxy;
	char url[MAX_URL], body[256], name[64], name2[64], email2[96];
	struct fetch f;

	if (base == NULL && r->norigins == 1)
		base = r->proxy;
	if (base == NULL && r->crud_sp.pid > 0)
		base = r->crud_sp.url;
	if (base == NULL) {
		r->skipped = true;
		note(r, "SKIP: the %u origins keep separate user tables, so a proxy balancing "
		     "over them cannot read its writes back; give --crud-proxy (a proxy with one "
		     "origin), or use --spawn", r->norigins);
		return;
	}
	note(r, "through %s", base);
	snprintf(name, sizeof(name), "bench-%s", r->tag);
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"email\":\"%s@example.com\"}", name,
		 name);
	snprintf(url, sizeof(url), "%s/api/users", base);
	if (!crud_write(r, "POST", url, body, 201, &f)) {
		fetch_free(&f);
		return;
	}
	if (f.location[0] == '\0') {
		failed(r, "POST answered 201 without a Location");
		fetch_free(&f);
		return;
	}
	snprintf(url, sizeof(url), "%s%s", base, f.location);
	fetch_free(&f);
	crud_read(r, url, 200, "name", name, "POST");
	crud_read(r, url, 200, "name", name, "a GET (now cached)");

	snprintf(name2, sizeof(name2), "bench-%s-put", r->tag);
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"email\":\"%s@example.com\"}", name2,
		 name);
	if (crud_write(r, "PUT", url, body, 200, &f))
		crud_read(r, url, 200, "name", name2, "PUT");
	fetch_free(&f);
	crud_read(r, url, 200, "name", name2, "a GET (cached again)");

	snprintf(email2, sizeof(email2), "patched-%s@example.com", r->tag);
	snprintf(body, sizeof(body), "{\"email\":\"%s\"}", email2);
	if (crud_write(r, "PATCH", url, body, 200, &f))
		crud_read(r, url, 200, "email", email2, "PATCH");
	fetch_free(&f);

	if (crud_write(r, "DELETE", url, NULL, 204, &f))
		crud_read(r, url, 404, NULL, NULL, "DELETE");
	fetch_free(&f);
}

/* ---- the run ------------------------------------------------------------------------------ */

int suite_check_scenarios(const char *list, char *err, size_t errlen)
{
	const char *p = list;

	if (strcmp(list, "all") == 0)
		return 0;
	while (*p) {
		size_t len = strcspn(p, ","), i;

		for (i = 0; suite_scenario_names[i]; i++)
			if (strlen(suite_scenario_names[i]) == len &&
			    strncmp(p, suite_scenario_names[i], len) == 0)
				break;
		if (suite_scenario_names[i] == NULL) {
			snprintf(err, errlen, "unknown scenario '%.*s' (known: all, status, large, "
				 "cache, concurrency, balance, crud)", (int)len, p);
			return -EINVAL;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static bool wanted(const struct suite_config *c, const char *name)
{
	const char *p = c->scenarios;
	size_t n = strlen(name);

	if (p == NULL || strcmp(p, "all") == 0)
		return true;
	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

static int start_servers(struct run *r, char *err, size_t errlen)
{
	const struct suite_config *c = r->c;
	char name[32], latency[16], log[4096], backends[SUITE_MAX_ORIGINS][32], listen[] =
		"127.0.0.1:0";
	const char *args[2 * SUITE_MAX_ORIGINS + 16];
	unsigned n;
	int rc;

	snprintf(latency, sizeof(latency), "%u", c->latency_ms);
	for (unsigned i = 0; i < c->spawn_origins; i++) {
		snprintf(name, sizeof(name), "origin-%u", i + 1);
		snprintf(log, sizeof(log), "%s/%s.log", c->log_dir ? c->log_dir : ".", name);
		n = 0;
		args[n++] = "--port";
		args[n++] = "0";
		args[n++] = "--name";
		args[n++] = name;
		args[n++] = "--latency-ms";
		args[n++] = latency;
		args[n] = NULL;
		rc = spawn_start(&r->origin_sp[i], c->origin_bin, args, c->log_dir ? log : NULL,
				 SPAWN_TIMEOUT_MS);
		if (rc) {
			snprintf(err, errlen, "could not start %s (%s): %s", name, c->origin_bin,
				 strerror(-rc));
			return rc;
		}
		snprintf(r->origin_ports[i], sizeof(r->origin_ports[i]), "%d",
			 r->origin_sp[i].port);
		r->origin_names[i] = strdup(name);
		r->origins[i] = r->origin_sp[i].url;
		r->norigins++;
	}
	for (int crud = 0; crud < 2; crud++) {
		struct spawn *s = crud ? &r->crud_sp : &r->proxy_sp;

		n = 0;
		args[n++] = "--listen";
		args[n++] = listen;
		for (unsigned i = 0; i < (crud ? 1 : r->norigins); i++) {
			snprintf(backends[i], sizeof(backends[i]), "127.0.0.1:%d",
				 r->origin_sp[i].port);
			args[n++] = "--backend";
			args[n++] = backends[i];
		}
		args[n++] = "--health-interval";
		args[n++] = "500ms";
		args[n++] = "--admin";		/* a free port: never a fixed one's clash */
		args[n++] = "127.0.0.1:0";
		args[n] = NULL;
		snprintf(log, sizeof(log), "%s/%s.log", c->log_dir ? c->log_dir : ".",
			 crud ? "proxy-crud" : "proxy");
		rc = spawn_start(s, c->proxy_bin, args, c->log_dir ? log : NULL,
				 SPAWN_TIMEOUT_MS);
		if (rc) {
			snprintf(err, errlen, "could not start mtps-proxy (%s): %s", c->proxy_bin,
				 strerror(-rc));
			return rc;
		}
	}
	r->proxy = r->proxy_sp.url;
	return 0;
}

static void stop_servers(struct run *r)
{
	spawn_stop(&r->crud_sp, 10000);
	spawn_stop(&r->proxy_sp, 10000);
	for (unsigned i = 0; i < SUITE_MAX_ORIGINS; i++)
		spawn_stop(&r->origin_sp[i], 10000);
}

static void write_json(struct run *r)
{
	char path[4096];

	if (r->c->report_dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/suite.json", r->c->report_dir);
	if (json_object_to_file_ext(path, r->root, JSON_C_TO_STRING_PRETTY |
				    JSON_C_TO_STRING_NOSLASHESCAPE))
		fprintf(r->out, "mtps-bench: cannot write %s\n", path);
}

int suite_run(const struct suite_config *c, FILE *out, char *err, size_t errlen)
{
	struct run *r = calloc(1, sizeof(*r));
	struct json_object *origins;
	char when[64];
	time_t now = time(NULL);
	int rc = 0;

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->c = c;
	r->out = out;
	snprintf(r->tag, sizeof(r->tag), "%lx-%x", (unsigned long)now, (unsigned)getpid());
	if (c->report_dir && mkdir(c->report_dir, 0755) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", c->report_dir, strerror(errno));
		free(r);
		return -errno;
	}
	if (c->spawn) {
		rc = start_servers(r, err, errlen);
		if (rc)
			goto out;
		fprintf(out, "started %u origins and mtps-proxy on %s\n", r->norigins, r->proxy);
	} else {
		r->proxy = c->proxy;
		for (size_t i = 0; i < c->origins->n && i < SUITE_MAX_ORIGINS; i++)
			r->origins[r->norigins++] = c->origins->v[i];
	}
	r->root = json_object_new_object();
	r->scenarios = json_object_new_array();
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	json_object_object_add(r->root, "tool", json_object_new_string("mtps-bench " PACKAGE_VERSION));
	json_object_object_add(r->root, "date", json_object_new_string(when));
	json_object_object_add(r->root, "proxy", json_object_new_string(r->proxy));
	origins = json_object_new_array();
	for (unsigned i = 0; i < r->norigins; i++)
		json_object_array_add(origins, json_object_new_string(r->origins[i]));
	json_object_object_add(r->root, "origins", origins);
	json_object_object_add(r->root, "spawned", json_object_new_boolean(c->spawn));
	json_object_object_add(r->root, "scenarios", r->scenarios);

	/* status always runs first when chosen: balance uses the origins' names */
	static void (*const run_fn[])(struct run *) = {
		scenario_status, scenario_large, scenario_cache, scenario_concurrency,
		scenario_balance, scenario_crud,
	};
	for (int i = 0; suite_scenario_names[i]; i++) {
		if (!wanted(c, suite_scenario_names[i]))
			continue;
		begin(r, suite_scenario_names[i]);
		run_fn[i](r);
		end(r);
	}
	json_object_object_add(r->root, "failed", json_object_new_int((int)r->nfailed));
	write_json(r);
	rc = (int)r->nfailed;
out:
	stop_servers(r);
	json_object_put(r->root);
	for (unsigned i = 0; i < SUITE_MAX_ORIGINS; i++)
		free(r->origin_names[i]);
	free(r);
	return rc;
}

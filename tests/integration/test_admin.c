/* Integration tests: mtps-proxy's admin listener, on its own free port (proc.c passes
 * --admin 127.0.0.1:0), in front of two real mtps-origin processes.
 *
 * Counters move by exactly the number of requests sent, per cache outcome and per backend;
 * /metrics passes a line-by-line check of the Prometheus text format 0.0.4 (or promtool's,
 * when installed); /stats is JSON with the documented fields; PURGE, POST /purge and a
 * prefix or regex ban turn the next request into a MISS; a token is enforced (401); drain
 * and disable move the traffic off a backend and enable brings it back; a bad --admin, or
 * a non-loopback one without a token, stops the start. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "proc.h"

#define TIMEOUT_MS 60000
#define ORIGINS 2

static struct proc origins[ORIGINS];
static char backend_name[ORIGINS][32];	/* "127.0.0.1:PORT" */
static char served_by[ORIGINS][32];	/* "origin-PORT" */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void origins_start_with(const char *latency_ms)
{
	const char *args[] = { "--threads", "2", "--latency-ms", latency_ms, NULL };

	for (int i = 0; i < ORIGINS; i++) {
		ck_assert_int_eq(proc_start(&origins[i], getenv("MTPS_ORIGIN"), args, NULL,
					    TIMEOUT_MS), 0);
		snprintf(backend_name[i], sizeof(backend_name[i]), "127.0.0.1:%d", origins[i].port);
		snprintf(served_by[i], sizeof(served_by[i]), "origin-%d", origins[i].port);
	}
}

static void origins_start(void)
{
	origins_start_with("0");
}

static void origins_stop(void)
{
	for (int i = 0; i < ORIGINS; i++)
		proc_stop(&origins[i], SIGTERM, TIMEOUT_MS);
}

/* Starts a proxy in front of both origins, round-robin, no slow start, plus <extra>. */
static void proxy_start(struct proc *p, const char *const *extra)
{
	const char *args[32] = { "--listen", "127.0.0.1:0", "--threads", "2", "--slow-start",
				 "0" };
	int n = 6;

	for (int i = 0; i < ORIGINS; i++) {
		args[n++] = "--backend";
		args[n++] = backend_name[i];
	}
	for (int k = 0; extra && extra[k]; k++)
		args[n++] = extra[k];
	args[n] = NULL;
	ck_assert_int_eq(proc_start(p, getenv("MTPS_PROXY"), args, NULL, TIMEOUT_MS), 0);
	if (strcmp(args[n - 1], "off") == 0)
		return;
	ck_assert_int_gt(p->admin_port, 0);
	ck_assert_int_ne(p->admin_port, p->port);
}

static char *admin_url(const struct proc *p, const char *path)
{
	static char buf[4][256];
	static int next;
	char *u = buf[next++ % 4];

	snprintf(u, 256, "%s%s", p->admin_url, path);
	return u;
}

/* GET through the proxy; returns the X-Cache value's index in "HIT MISS ..." order. */
static void get(const struct proc *p, const char *path, const char *want_cache,
		int *origin_index)
{
	struct http_reply r;
	const char *xc, *by;

	ck_assert_int_eq(http_get(proc_url(p, path), &r), 0);
	ck_assert_int_eq(r.status, 200);
	xc = http_reply_header(&r, "X-Cache");
	ck_assert_ptr_nonnull(xc);
	if (want_cache)
		ck_assert_msg(strcmp(xc, want_cache) == 0, "GET %s: X-Cache %s, want %s", path,
			      xc, want_cache);
	if (origin_index) {
		by = http_reply_header(&r, "X-Served-By");
		*origin_index = -1;
		for (int i = 0; by && i < ORIGINS; i++)
			if (strcmp(by, served_by[i]) == 0)
				*origin_index = i;
	}
	http_reply_free(&r);
}

/* GET /stats as JSON (the caller puts it). */
static struct json_object *stats(const struct proc *p)
{
	struct http_reply r;
	struct json_object *o;

	ck_assert_int_eq(http_get(admin_url(p, "/stats"), &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(http_reply_header(&r, "Content-Type"), "application/json");
	o = expect_json(&r);
	http_reply_free(&r);
	return o;
}

/* The integer at a path of members, "requests", "by_cache", "HIT", NULL. */
static int64_t jpath(struct json_object *o, ...)
{
	va_list ap;
	const char *k;

	va_start(ap, o);
	while ((k = va_arg(ap, const char *)) != NULL) {
		struct json_object *next;

		ck_assert_msg(json_object_object_get_ex(o, k, &next), "no member %s", k);
		o = next;
	}
	va_end(ap);
	return json_object_get_int64(o);
}

/* The backend <name>'s object in /stats' "backends" (borrowed from <o>). */
static struct json_object *jbackend(struct json_object *o, const char *name)
{
	struct json_object *a;

	ck_assert(json_object_object_get_ex(o, "backends", &a));
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *b = json_object_array_get_idx(a, i);

		if (strcmp(expect_jstr(b, "name"), name) == 0)
			return b;
	}
	ck_abort_msg("backend %s not in /stats", name);
	return NULL;
}

/* Waits until /stats counts <total> completed requests (the count is taken when MHD
 * reports a request complete, a moment after the client has its answer). */
static struct json_object *stats_when(const struct proc *p, int64_t total)
{
	uint64_t deadline = now_ms() + TIMEOUT_MS;

	for (;;) {
		struct json_object *o = stats(p);
		int64_t n = jpath(o, "requests", "total", NULL);

		if (n >= total || now_ms() > deadline) {
			ck_assert_int_eq(n, total);
			return o;
		}
		json_object_put(o);
		usleep(10000);	/* polling with a deadline, not a sleep as synchronisation */
	}
}

/* ---- Prometheus text format 0.0.4 ------------------------------------------------------------ */

struct family {
	char name[128];
	char type[16];
	bool help, sampled;
};

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return false;
	return true;
}

/* Parses a sample line into name, labels ("" or "a=\"x\",b=\"y\"") and value; fails the
 * test with <lineno> on a syntax error. */
static void parse_sample(const char *line, int lineno, char *name, char *labels, double *value)
{
	size_t n = strcspn(line, "{ ");
	const char *p = line + n;
	char *end;

	ck_assert_msg(name_ok(line, n), "line %d: bad metric name: %s", lineno, line);
	memcpy(name, line, n);
	name[n] = '\0';
	labels[0] = '\0';
	if (*p == '{') {
		const char *start = ++p;

		while (*p != '}') {
			size_t ln = strcspn(p, "=");

			ck_assert_msg(name_ok(p, ln) && p[ln] == '=' && p[ln + 1] == '"',
				      "line %d: bad label: %s", lineno, line);
			p += ln + 2;
			while (*p && *p != '"') {
				if (*p == '\\') {
					ck_assert_msg(p[1] == '\\' || p[1] == '"' || p[1] == 'n',
						      "line %d: bad escape", lineno);
					p++;
				}
				p++;
			}
			ck_assert_msg(*p == '"', "line %d: unterminated label value", lineno);
			p++;
			ck_assert_msg(*p == ',' || *p == '}', "line %d: want , or }: %s", lineno,
				      line);
			if (*p == ',')
				p++;
		}
		memcpy(labels, start, (size_t)(p - start));
		labels[p - start] = '\0';
		p++;
	}
	ck_assert_msg(*p == ' ', "line %d: want a space before the value: %s", lineno, line);
	p++;
	if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 || strcmp(p, "NaN") == 0) {
		*value = strcmp(p, "NaN") == 0 ? NAN : p[0] == '+' ? INFINITY : -INFINITY;
		return;
	}
	*value = strtod(p, &end);
	/* an optional timestamp */
	ck_assert_msg(end != p && (*end == '\0' || (*end == ' ' && isdigit((unsigned char)end[1]))),
		      "line %d: bad value: %s", lineno, line);
}

/* The labels without le="...", and le's value (NAN when none). */
static double split_le(const char *labels, char *rest)
{
	const char *le = strstr(labels, "le=\"");
	double v = NAN;

	strcpy(rest, labels);
	if (le == NULL)
		return v;
	v = strncmp(le + 4, "+Inf", 4) == 0 ? INFINITY : strtod(le + 4, NULL);
	rest[le - labels] = '\0';
	strcat(rest, le + 4 + strcspn(le + 4, "\"") + 1);
	return v;
}

/* Checks <text> line by line; returns the number of samples. */
static int check_exposition(char *text)
{
	struct family fam[128];
	int nfam = 0, samples = 0, lineno = 0;
	/* histogram state: the last bucket's labels, le and count */
	char hist_labels[512] = "", hist_name[128] = "";
	double last_le = -INFINITY, last_count = 0, inf_count = -1;

	ck_assert_msg(text[0] && text[strlen(text) - 1] == '\n', "the text must end in a newline");
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct family *f = NULL;
		char name[128], labels[512], rest[512], base[128];
		double value;
		size_t n;

		lineno++;
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
			bool help = line[2] == 'H';
			const char *m = line + 7;

			n = strcspn(m, " ");
			ck_assert_msg(name_ok(m, n) && m[n] == ' ', "line %d: %s", lineno, line);
			for (int k = 0; k < nfam; k++)
				if (strlen(fam[k].name) == n && strncmp(fam[k].name, m, n) == 0)
					f = &fam[k];
			if (f == NULL) {
				ck_assert_int_lt(nfam, 128);
				f = &fam[nfam++];
				memset(f, 0, sizeof(*f));
				memcpy(f->name, m, n);
			}
			ck_assert_msg(!f->sampled, "line %d: %s after its samples", lineno, line);
			if (help) {
				ck_assert_msg(!f->help, "line %d: a second HELP", lineno);
				f->help = true;
			} else {
				ck_assert_msg(f->type[0] == '\0', "line %d: a second TYPE", lineno);
				snprintf(f->type, sizeof(f->type), "%s", m + n + 1);
				ck_assert_msg(strcmp(f->type, "counter") == 0 ||
						      strcmp(f->type, "gauge") == 0 ||
						      strcmp(f->type, "histogram") == 0 ||
						      strcmp(f->type, "summary") == 0 ||
						      strcmp(f->type, "untyped") == 0,
					      "line %d: unknown type %s", lineno, f->type);
			}
			continue;
		}
		ck_assert_msg(line[0] != '#' || line[1] == ' ', "line %d: %s", lineno, line);
		if (line[0] == '#')
			continue;
		parse_sample(line, lineno, name, labels, &value);
		samples++;
		/* the family: the name itself, or a histogram's base */
		snprintf(base, sizeof(base), "%s", name);
		for (int k = 0; k < nfam && f == NULL; k++)
			if (strcmp(fam[k].name, name) == 0)
				f = &fam[k];
		for (const char *suffix = "_bucket\0_sum\0_count\0"; f == NULL && *suffix;
		     suffix += strlen(suffix) + 1) {
			size_t ln = strlen(name), ls = strlen(suffix);

			if (ln > ls && strcmp(name + ln - ls, suffix) == 0) {
				snprintf(base, sizeof(base), "%.*s", (int)(ln - ls), name);
				for (int k = 0; k < nfam; k++)
					if (strcmp(fam[k].name, base) == 0 &&
					    strcmp(fam[k].type, "histogram") == 0)
						f = &fam[k];
			}
		}
		ck_assert_msg(f && f->help && f->type[0], "line %d: %s has no HELP and TYPE before it",
			      lineno, name);
		f->sampled = true;
		if (strcmp(f->type, "counter") == 0) {
			n = strlen(name);
			ck_assert_msg(n > 6 && strcmp(name + n - 6, "_total") == 0,
				      "line %d: a counter's name ends in _total", lineno);
			ck_assert_msg(value >= 0, "line %d: a negative counter", lineno);
		}
		if (strcmp(f->type, "histogram") != 0)
			continue;
		if (strstr(name, "_bucket")) {
			double le = split_le(labels, rest);

			ck_assert_msg(!isnan(le), "line %d: a bucket without le", lineno);
			if (strcmp(rest, hist_labels) != 0 || strcmp(base, hist_name) != 0) {
				/* a new series begins: the last one ended with +Inf */
				snprintf(hist_labels, sizeof(hist_labels), "%s", rest);
				snprintf(hist_name, sizeof(hist_name), "%s", base);
				last_le = -INFINITY;
				last_count = 0;
				inf_count = -1;
			}
			ck_assert_msg(le > last_le, "line %d: le not increasing", lineno);
			ck_assert_msg(value >= last_count, "line %d: bucket counts decrease",
				      lineno);
			last_le = le;
			last_count = value;
			if (isinf(le))
				inf_count = value;
		} else if (strstr(name, "_count")) {
			ck_assert_msg(inf_count >= 0, "line %d: _count without a +Inf bucket",
				      lineno);
			ck_assert_msg(value == inf_count,
				      "line %d: _count %g differs from the +Inf bucket %g", lineno,
				      value, inf_count);
		}
	}
	for (int k = 0; k < nfam; k++)
		ck_assert_msg(fam[k].help && fam[k].type[0], "%s lacks HELP or TYPE", fam[k].name);
	return samples;
}

/* The value of the sample whose line begins with <prefix> ("name{labels}"), or -1. */
static double sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static char *metrics_text(const struct proc *p)
{
	struct http_reply r;
	char *copy;

	ck_assert_int_eq(http_get(admin_url(p, "/metrics"), &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(http_reply_header(&r, "Content-Type"),
			 "text/plain; version=0.0.4; charset=utf-8");
	copy = strdup(r.body);
	http_reply_free(&r);
	return copy;
}

/* ---- tests ----------------------------------------------------------------------------------- */

START_TEST(test_counters)
{
	struct proc p;
	struct json_object *o;
	char path[64], *text, *copy, line[128];
	int by[ORIGINS] = { 0 }, who;

	proxy_start(&p, NULL);
	/* 6 misses over 6 URLs, then 4 hits on the first two, one HEAD miss */
	for (int i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "/api/users/1?count=%d", i);
		get(&p, path, "MISS", &who);
		ck_assert_int_ge(who, 0);
		by[who]++;
	}
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/api/users/1?count=%d", i % 2);
		get(&p, path, "HIT", NULL);
	}
	ck_assert_int_eq(by[0], 3);	/* round-robin */
	ck_assert_int_eq(by[1], 3);
	o = stats_when(&p, 10);
	ck_assert_int_eq(jpath(o, "requests", "by_cache", "HIT", NULL), 4);
	ck_assert_int_eq(jpath(o, "requests", "by_cache", "MISS", NULL), 6);
	ck_assert_int_eq(jpath(o, "requests", "by_cache", "STALE", NULL), 0);
	ck_assert_int_eq(jpath(o, "requests", "by_status", "2xx", NULL), 10);
	ck_assert_int_eq(jpath(o, "requests", "by_method", "GET", NULL), 10);
	ck_assert_int_eq(jpath(o, "cache", "objects", NULL), 6);
	ck_assert_int_eq(jpath(o, "latency", "client", "count", NULL), 10);
	ck_assert_int_eq(jpath(o, "latency", "upstream", "count", NULL), 6);
	ck_assert_int_gt(jpath(o, "bytes", "sent", NULL), 0);
	ck_assert_int_ge(jpath(o, "connections", "total", NULL), 1);
	for (int i = 0; i < ORIGINS; i++) {
		struct json_object *b = jbackend(o, backend_name[i]), *lat;

		ck_assert_int_eq(expect_jint(b, "requests"), 3);
		ck_assert_int_eq(expect_jint(b, "errors"), 0);
		ck_assert_str_eq(expect_jstr(b, "state"), "up");
		ck_assert(json_object_object_get_ex(b, "latency", &lat));
		ck_assert_int_eq(expect_jint(lat, "count"), 3);
	}
	json_object_put(o);

	/* the same counts in /metrics, and the text is well formed */
	text = metrics_text(&p);
	ck_assert_double_eq(sample(text, "mtps_requests_total{method=\"GET\",code=\"2xx\",cache=\"HIT\"}"), 4);
	ck_assert_double_eq(sample(text, "mtps_requests_total{method=\"GET\",code=\"2xx\",cache=\"MISS\"}"), 6);
	ck_assert_double_eq(sample(text, "mtps_cache_hits_total"), 4);
	ck_assert_double_eq(sample(text, "mtps_cache_misses_total"), 6);
	ck_assert_double_eq(sample(text, "mtps_cache_objects"), 6);
	ck_assert_double_eq(sample(text, "mtps_client_latency_seconds_count"), 10);
	for (int i = 0; i < ORIGINS; i++) {
		snprintf(line, sizeof(line), "mtps_upstream_requests_total{backend=\"%s\"}",
			 backend_name[i]);
		ck_assert_double_eq(sample(text, line), 3);
		snprintf(line, sizeof(line), "mtps_backend_up{backend=\"%s\"}", backend_name[i]);
		ck_assert_double_eq(sample(text, line), 1);
		snprintf(line, sizeof(line),
			 "mtps_upstream_latency_seconds_bucket{backend=\"%s\",le=\"+Inf\"}",
			 backend_name[i]);
		ck_assert_double_eq(sample(text, line), 3);
	}
	copy = strdup(text);
	ck_assert_int_gt(check_exposition(copy), 50);
	free(copy);
	/* promtool, when installed, agrees */
	if (access("/usr/bin/promtool", X_OK) == 0) {
		char file[] = "/tmp/mtps-metrics-XXXXXX", cmd[128], out[4096];
		int fd = mkstemp(file);
		const char *args[] = { "-c", cmd, NULL };

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
		close(fd);
		snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", file);
		ck_assert_msg(proc_run("/bin/sh", args, out, sizeof(out), TIMEOUT_MS) == 0,
			      "promtool: %s", out);
		unlink(file);
	}
	free(text);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

/* The exposition checker itself refuses what it must. */
static const char *const bad_texts[] = {
	"mtps_x_total 1\n",						/* no HELP/TYPE */
	"# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v} 1\n",	/* unterminated */
	"# HELP a x\n# TYPE a counter\na 1\n",				/* no _total */
	"# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",				/* a bad name */
	"# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
	"h_sum 1\nh_count 1\n",						/* decreasing */
	"# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
	"h_sum 1\nh_count 3\n",						/* count != +Inf */
	"# HELP g x\n# TYPE g gauge\ng one\n",				/* a bad value */
};

START_TEST(test_checker_refuses)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* a failing check ends this child's test run: run it without forking again */
		char *copy = strdup(bad_texts[_i]);

		check_exposition(copy);
		_exit(0);	/* accepted: wrong */
	}
	waitpid(pid, &status, 0);
	ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
		      "the checker accepted bad text %d", _i);
}
END_TEST

START_TEST(test_stats_fields)
{
	static const char *const top[] = { "version", "uptime", "requests", "bytes", "connections",
					   "cache", "latency", "backends", "events" };
	static const char *const backend[] = { "name", "state", "admin", "up", "weight",
					       "effective_weight", "in_flight", "requests",
					       "errors", "retries", "health", "latency" };
	static const char *const latency[] = { "count", "mean", "min", "max", "p50", "p90",
					       "p95", "p99", "p99_9" };
	struct proc p;
	struct json_object *o, *v, *b;

	proxy_start(&p, NULL);
	get(&p, "/api/users/2", "MISS", NULL);
	o = stats_when(&p, 1);
	for (size_t k = 0; k < ARRAY_LEN(top); k++)
		ck_assert_msg(json_object_object_get_ex(o, top[k], NULL), "no %s", top[k]);
	ck_assert_str_eq(expect_jstr(o, "version"), PACKAGE_VERSION);
	ck_assert(json_object_object_get_ex(o, "latency", &v));
	ck_assert(json_object_object_get_ex(v, "client", &v));
	for (size_t k = 0; k < ARRAY_LEN(latency); k++)
		ck_assert_msg(json_object_object_get_ex(v, latency[k], NULL), "no latency %s",
			      latency[k]);
	ck_assert(json_object_object_get_ex(o, "backends", &v));
	ck_assert_int_eq(json_object_array_length(v), ORIGINS);
	b = json_object_array_get_idx(v, 0);
	for (size_t k = 0; k < ARRAY_LEN(backend); k++)
		ck_assert_msg(json_object_object_get_ex(b, backend[k], NULL), "no backend %s",
			      backend[k]);
	json_object_put(o);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

static int64_t post(const struct proc *p, const char *path, const char *body, long want)
{
	struct http_reply r;
	struct json_object *o;
	int64_t n = -1;

	ck_assert_int_eq(http_request("POST", admin_url(p, path), NULL, body,
				      body ? strlen(body) : 0, &r), 0);
	ck_assert_msg(r.status == want, "POST %s %s: %ld, want %ld: %s", path, body ? body : "",
		      r.status, want, r.body);
	o = expect_json(&r);
	if (want == 200 && json_object_object_get_ex(o, "purged", NULL))
		n = expect_jint(o, "purged");
	json_object_put(o);
	http_reply_free(&r);
	return n;
}

START_TEST(test_purge)
{
	struct proc p;
	struct http_reply r;
	struct json_object *o;
	char body[256];

	proxy_start(&p, NULL);
	get(&p, "/api/users/1", "MISS", NULL);
	get(&p, "/api/users/1", "HIT", NULL);
	/* PURGE with the path: every host's copy */
	ck_assert_int_eq(http_request("PURGE", admin_url(&p, "/api/users/1"), NULL, NULL, 0, &r),
			 0);
	ck_assert_int_eq(r.status, 200);
	o = expect_json(&r);
	ck_assert_int_eq(expect_jint(o, "purged"), 1);
	json_object_put(o);
	http_reply_free(&r);
	get(&p, "/api/users/1", "MISS", NULL);
	get(&p, "/api/users/1", "HIT", NULL);
	/* POST /purge with the URL of one host (as the client named it in Host) */
	snprintf(body, sizeof(body), "{\"url\": \"http://127.0.0.1:%d/api/users/1\"}", p.port);
	ck_assert_int_eq(post(&p, "/purge", body, 200), 1);
	get(&p, "/api/users/1", "MISS", NULL);
	/* another host's URL is not ours; a form body works too */
	ck_assert_int_eq(post(&p, "/purge", "url=http%3A%2F%2Fexample.com%2Fapi%2Fusers%2F1", 200),
			 0);
	get(&p, "/api/users/1", "HIT", NULL);
	/* bans: by path prefix, by URL prefix, by regex */
	get(&p, "/api/users/2", "MISS", NULL);
	get(&p, "/api/users/3", "MISS", NULL);
	ck_assert_int_eq(post(&p, "/ban", "{\"prefix\": \"/api/users/\"}", 200), 3);
	get(&p, "/api/users/2", "MISS", NULL);
	get(&p, "/api/users/3", "MISS", NULL);
	get(&p, "/api/users/1", "MISS", NULL);
	snprintf(body, sizeof(body), "{\"prefix\": \"http://127.0.0.1:%d/api/users/2\"}", p.port);
	ck_assert_int_eq(post(&p, "/ban", body, 200), 1);
	get(&p, "/api/users/2", "MISS", NULL);
	ck_assert_int_eq(post(&p, "/ban", "{\"regex\": \"/users/[13]$\"}", 200), 2);
	get(&p, "/api/users/1", "MISS", NULL);
	get(&p, "/api/users/2", "HIT", NULL);
	/* bad requests: clear errors, the proxy keeps serving */
	post(&p, "/ban", "{\"regex\": \"(\"}", 400);
	post(&p, "/ban", "{}", 400);
	post(&p, "/ban", "{\"prefix\": \"/a\", \"regex\": \"b\"}", 400);
	post(&p, "/ban", "not json {", 400);
	post(&p, "/purge", "{\"url\": \"ftp://x/\"}", 400);
	{
		/* a body over ADMIN_MAX_BODY (64 KiB) */
		size_t big = 70000;
		char *huge = malloc(big + 1);

		ck_assert_ptr_nonnull(huge);
		memset(huge, ' ', big);
		huge[big] = '\0';
		huge[0] = '{';
		huge[big - 1] = '}';
		post(&p, "/ban", huge, 413);
		free(huge);
	}
	ck_assert_int_eq(http_get(admin_url(&p, "/nothing"), &r), 0);
	expect_error(&r, 404, "no such page");
	http_reply_free(&r);
	ck_assert_int_eq(http_request("DELETE", admin_url(&p, "/stats"), NULL, NULL, 0, &r), 0);
	expect_error(&r, 405, NULL);
	http_reply_free(&r);
	get(&p, "/api/users/2", "HIT", NULL);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

START_TEST(test_token)
{
	static const char *const extra[] = { "--admin-token", "s3cret", NULL };
	static const char *const right[] = { "Authorization: Bearer s3cret", NULL };
	static const char *const wrong[] = { "Authorization: Bearer s3cres", NULL };
	static const char *const longer[] = { "Authorization: Bearer s3cret2", NULL };
	static const char *const basic[] = { "Authorization: Basic czNjcmV0", NULL };
	static const char *const paths[] = { "/metrics", "/stats", "/backends" };
	struct proc p;
	struct http_reply r;

	proxy_start(&p, extra);
	for (size_t k = 0; k < ARRAY_LEN(paths); k++) {
		const char *const *bad[] = { NULL, wrong, longer, basic };

		for (size_t b = 0; b < ARRAY_LEN(bad); b++) {
			ck_assert_int_eq(http_request("GET", admin_url(&p, paths[k]), bad[b], NULL, 0,
						      &r), 0);
			expect_error(&r, 401, "Bearer");
			ck_assert_ptr_nonnull(http_reply_header(&r, "WWW-Authenticate"));
			http_reply_free(&r);
		}
		ck_assert_int_eq(http_request("GET", admin_url(&p, paths[k]), right, NULL, 0, &r),
				 0);
		ck_assert_int_eq(r.status, 200);
		http_reply_free(&r);
	}
	ck_assert_int_eq(http_request("PURGE", admin_url(&p, "/x"), NULL, NULL, 0, &r), 0);
	expect_error(&r, 401, NULL);
	http_reply_free(&r);
	ck_assert_int_eq(http_request("POST", admin_url(&p, "/ban"), NULL, "{\"prefix\":\"/\"}", 14,
				      &r), 0);
	expect_error(&r, 401, NULL);
	http_reply_free(&r);
	/* the dashboard's static files need none: the page asks for the token */
	ck_assert_int_eq(http_get(admin_url(&p, "/"), &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "<svg"));
	http_reply_free(&r);
	ck_assert_int_eq(http_get(admin_url(&p, "/dashboard.js"), &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(http_reply_header(&r, "Content-Type"), "text/javascript; charset=utf-8");
	http_reply_free(&r);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

/* Sends <n> misses; counts which origin answered each. */
static void misses(const struct proc *p, int n, int *by, int *seq)
{
	char path[64];

	by[0] = by[1] = 0;
	for (int i = 0; i < n; i++) {
		int who;

		snprintf(path, sizeof(path), "/api/users/1?m=%d", (*seq)++);
		get(p, path, "MISS", &who);
		ck_assert_int_ge(who, 0);
		by[who]++;
	}
}

static struct json_object *backend_action(const struct proc *p, int i, const char *action,
					  bool escaped)
{
	char path[128];
	struct http_reply r;
	struct json_object *o;

	snprintf(path, sizeof(path), "/backends/127.0.0.1%s%d/%s", escaped ? "%3A" : ":",
		 origins[i].port, action);
	ck_assert_int_eq(http_request("POST", admin_url(p, path), NULL, NULL, 0, &r), 0);
	ck_assert_msg(r.status == 200, "%s: %ld %s", path, r.status, r.body);
	o = expect_json(&r);
	http_reply_free(&r);
	ck_assert_str_eq(expect_jstr(o, "backend"), backend_name[i]);
	return o;
}

START_TEST(test_backends)
{
	struct proc p;
	struct json_object *o, *b;
	struct http_reply r;
	int by[ORIGINS], seq = 0;

	proxy_start(&p, NULL);
	misses(&p, 4, by, &seq);
	ck_assert_int_eq(by[0], 2);
	ck_assert_int_eq(by[1], 2);
	/* drain 0: every miss goes to 1 */
	o = backend_action(&p, 0, "drain", true);
	ck_assert_str_eq(expect_jstr(o, "admin"), "draining");
	ck_assert_int_eq(expect_jint(o, "in_flight"), 0);
	ck_assert_str_eq(expect_jstr(o, "state"), "drained");
	json_object_put(o);
	misses(&p, 4, by, &seq);
	ck_assert_int_eq(by[0], 0);
	ck_assert_int_eq(by[1], 4);
	/* enable: back in rotation */
	json_object_put(backend_action(&p, 0, "enable", false));
	misses(&p, 4, by, &seq);
	ck_assert_int_eq(by[0], 2);
	ck_assert_int_eq(by[1], 2);
	/* disable 1: every miss goes to 0 */
	o = backend_action(&p, 1, "disable", false);
	ck_assert_str_eq(expect_jstr(o, "state"), "disabled");
	json_object_put(o);
	misses(&p, 4, by, &seq);
	ck_assert_int_eq(by[0], 4);
	ck_assert_int_eq(by[1], 0);
	o = stats_when(&p, 16);
	b = jbackend(o, backend_name[1]);
	ck_assert_str_eq(expect_jstr(b, "state"), "disabled");
	ck_assert_int_eq(expect_jint(b, "requests"), 2 + 4 + 2);
	ck_assert_int_eq(expect_jint(jbackend(o, backend_name[0]), "requests"), 2 + 2 + 4);
	ck_assert(json_object_object_get_ex(o, "events", &b));
	ck_assert_int_eq(json_object_array_length(b), 3);	/* drain, enable, disable */
	ck_assert_str_eq(expect_jstr(json_object_array_get_idx(b, 0), "state"), "disabled");
	ck_assert_str_eq(expect_jstr(json_object_array_get_idx(b, 0), "reason"),
			 "disabled by the admin");
	json_object_put(o);
	/* both out: 503 */
	json_object_put(backend_action(&p, 0, "drain", false));
	ck_assert_int_eq(http_get(proc_url(&p, "/api/users/1?m=none"), &r), 0);
	ck_assert_int_eq(r.status, 503);
	http_reply_free(&r);
	json_object_put(backend_action(&p, 0, "enable", false));
	json_object_put(backend_action(&p, 1, "enable", false));
	misses(&p, 2, by, &seq);
	ck_assert_int_eq(by[0], 1);
	ck_assert_int_eq(by[1], 1);
	/* unknown backend or action, wrong method */
	ck_assert_int_eq(http_request("POST", admin_url(&p, "/backends/127.0.0.1:1/drain"), NULL,
				      NULL, 0, &r), 0);
	expect_error(&r, 404, "no backend");
	http_reply_free(&r);
	ck_assert_int_eq(http_request("POST", admin_url(&p, "/backends/x/explode"), NULL, NULL, 0,
				      &r), 0);
	expect_error(&r, 404, "unknown action");
	http_reply_free(&r);
	ck_assert_int_eq(http_get(admin_url(&p, "/backends/x/drain"), &r), 0);
	expect_error(&r, 405, NULL);
	http_reply_free(&r);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

/* Drain with a fetch in flight: the answer counts it, the fetch finishes with a 200, and
 * the state turns from draining to drained. The origins take 1.5 s per request, so the
 * fetch is still running when the drain arrives (the test waits until /stats shows it). */
START_TEST(test_drain_in_flight)
{
	struct proc p;
	struct http_batch *b;
	struct json_object *o;
	const struct http_reply *r;
	uint64_t deadline;
	int busy = -1;

	static const char *const no_checks[] = { "--health-interval", "0", NULL };

	struct proc saved[ORIGINS];
	char saved_names[ORIGINS][32], saved_by[ORIGINS][32];

	/* slow origins of its own, for this test only */
	memcpy(saved, origins, sizeof(saved));
	memcpy(saved_names, backend_name, sizeof(saved_names));
	memcpy(saved_by, served_by, sizeof(saved_by));
	origins_start_with("1500");
	proxy_start(&p, no_checks);	/* the origins' /health is slow too */
	b = http_batch_new();
	ck_assert_ptr_nonnull(b);
	http_batch_add(b, "GET", proc_url(&p, "/api/users/1?slow"), NULL, NULL);
	deadline = now_ms() + TIMEOUT_MS;
	while (busy < 0) {
		http_batch_run(b, 10);
		o = stats(&p);
		for (int i = 0; i < ORIGINS; i++)
			if (expect_jint(jbackend(o, backend_name[i]), "in_flight") == 1)
				busy = i;
		json_object_put(o);
		ck_assert_msg(now_ms() < deadline, "the fetch never showed in flight");
	}
	o = backend_action(&p, busy, "drain", false);
	ck_assert_str_eq(expect_jstr(o, "state"), "draining");
	ck_assert_int_eq(expect_jint(o, "in_flight"), 1);
	json_object_put(o);
	ck_assert_int_eq(http_batch_run(b, TIMEOUT_MS), 0);
	r = http_batch_reply(b, 0);
	ck_assert_int_eq(r->status, 200);
	http_batch_free(b);
	for (;;) {
		const char *state;

		o = stats(&p);
		state = expect_jstr(jbackend(o, backend_name[busy]), "state");
		if (strcmp(state, "drained") == 0) {
			json_object_put(o);
			break;
		}
		ck_assert_str_eq(state, "draining");
		json_object_put(o);
		ck_assert_msg(now_ms() < deadline, "still draining");
		usleep(10000);
	}
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
	origins_stop();
	memcpy(origins, saved, sizeof(saved));
	memcpy(backend_name, saved_names, sizeof(saved_names));
	memcpy(served_by, saved_by, sizeof(saved_by));
}
END_TEST

/* Start-up: --admin off reports one port; a bad address or a public one without a token
 * is a configuration error (exit 2); a port in use is a start-up error (exit 1). */
START_TEST(test_startup)
{
	static const char *const off[] = { "--admin", "off", NULL };
	struct proc p, q;
	char out[4096], addr[32];
	const char *bad[] = { "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1", "--admin",
			      "nowhere", NULL };
	const char *pub[] = { "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1", "--admin",
			      "0.0.0.0:0", NULL };
	const char *busy[] = { "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1", "--admin",
			       addr, NULL };

	proxy_start(&p, off);
	ck_assert_int_eq(p.admin_port, 0);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
	ck_assert_int_eq(proc_run(getenv("MTPS_PROXY"), bad, out, sizeof(out), TIMEOUT_MS), 2);
	ck_assert_ptr_nonnull(strstr(out, "bad value 'nowhere' for admin"));
	ck_assert_int_eq(proc_run(getenv("MTPS_PROXY"), pub, out, sizeof(out), TIMEOUT_MS), 2);
	ck_assert_ptr_nonnull(strstr(out, "admin-token"));
	/* another proxy's admin port is taken */
	proxy_start(&q, NULL);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", q.admin_port);
	ck_assert_int_eq(proc_run(getenv("MTPS_PROXY"), busy, out, sizeof(out), TIMEOUT_MS), 1);
	ck_assert_ptr_nonnull(strstr(out, "cannot listen on"));
	ck_assert_int_eq(proc_stop(&q, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

static Suite *admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("admin");

	tcase_set_timeout(tc, 300);
	/* two origins for the whole suite, started in the parent process: the tests (forked
	 * children) share them; each starts a proxy of its own */
	tcase_add_unchecked_fixture(tc, origins_start, origins_stop);
	tcase_add_test(tc, test_counters);
	tcase_add_loop_test(tc, test_checker_refuses, 0, ARRAY_LEN(bad_texts));
	tcase_add_test(tc, test_stats_fields);
	tcase_add_test(tc, test_purge);
	tcase_add_test(tc, test_token);
	tcase_add_test(tc, test_backends);
	tcase_add_test(tc, test_drain_in_flight);
	tcase_add_test(tc, test_startup);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(admin_suite)

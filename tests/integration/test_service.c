/* Integration tests: mtps-proxy as a system service. `-t` checks a config file and names
 * every error's FILE:LINE; SIGHUP swaps the backend list under a steady load with no failed
 * request and without emptying the cache, a file with errors keeps the old configuration,
 * and options that need a restart say so; SIGUSR1 reopens the log files after logrotate
 * moved them; the access log's line for a HIT, a MISS and an error in both formats; the
 * pid file.
 *
 * Every test writes its files (config, logs) in a folder of its own and starts the
 * origins and the proxy it needs; the proxy's messages tell a test when a reload or a
 * reopen happened, instead of waiting for some time. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "load.h"
#include "proc.h"

#define TIMEOUT_MS 60000	/* generous bounds, never waits: servers may run under valgrind */
#define ORIGINS 4

static struct proc origins[ORIGINS];
static char served_by[ORIGINS][32];	/* "origin-PORT": what each puts in X-Served-By */
static char dir[64];			/* this test's files */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "<dir>/<name>", in one of 8 rotating static buffers. */
static const char *path_of(const char *name)
{
	static char buf[8][128];
	static int next;
	char *b = buf[next++ % 8];

	snprintf(b, 128, "%s/%s", dir, name);
	return b;
}

static void write_text(const char *path, const char *text)
{
	char tmp[160];
	FILE *f;

	/* renamed into place: the proxy never reads half a file */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

static char file_buf[1 << 20];

/* The file's text ("" when missing), in a static buffer. */
static const char *read_text(const char *path)
{
	if (proc_read_file(path, file_buf, sizeof(file_buf)) < 0)
		file_buf[0] = '\0';
	return file_buf;
}

static int count_of(const char *path, const char *needle)
{
	int n = 0;

	for (const char *p = read_text(path); (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Waits until <path> holds <needle> <n> times or more. */
static void wait_count(const char *path, const char *needle, int n)
{
	uint64_t deadline = now_ms() + TIMEOUT_MS;

	while (count_of(path, needle) < n) {
		ck_assert_msg(now_ms() < deadline, "no %d \"%s\" in %s after %d ms: %s", n, needle,
			      path, TIMEOUT_MS, read_text(path));
		poll(NULL, 0, 10);
	}
}

static void setup(void)
{
	memset(origins, 0, sizeof(origins));
	strcpy(dir, "/tmp/mtps-service-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
}

static void teardown(void)
{
	char cmd[128];

	for (int i = 0; i < ORIGINS; i++)
		if (origins[i].pid > 0)
			kill(origins[i].pid, SIGTERM);
	for (int i = 0; i < ORIGINS; i++)
		if (origins[i].pid > 0)
			ck_assert_int_eq(proc_wait(&origins[i], TIMEOUT_MS), 0);
	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void origin_start(int i)
{
	const char *args[] = { "--threads", "2", NULL };

	ck_assert_int_eq(proc_start(&origins[i], getenv("MTPS_ORIGIN"), args, NULL, TIMEOUT_MS), 0);
	snprintf(served_by[i], sizeof(served_by[i]), "origin-%d", origins[i].port);
}

/* Starts the proxy with <args> (after "--listen 127.0.0.1:0"); its stderr goes to
 * <dir>/stderr. */
static void proxy_start(struct proc *p, const char *const *args)
{
	const char *all[32] = { "--listen", "127.0.0.1:0" };
	size_t n = 2;
	int r;

	for (size_t i = 0; args[i] && n < 31; i++)
		all[n++] = args[i];
	all[n] = NULL;
	r = proc_start(p, getenv("MTPS_PROXY"), all, path_of("stderr"), TIMEOUT_MS);
	ck_assert_msg(r == 0, "cannot start mtps-proxy: %d: %s", r, read_text(path_of("stderr")));
}

static void proxy_stop(struct proc *p)
{
	int status = proc_stop(p, SIGTERM, TIMEOUT_MS);

	ck_assert_msg(status == 0, "mtps-proxy exited with status %d", status);
}

static int served_index(const struct http_reply *r)
{
	const char *by = http_reply_header(r, "X-Served-By");

	for (int i = 0; by && i < ORIGINS; i++)
		if (served_by[i][0] && strcmp(by, served_by[i]) == 0)
			return i;
	return -1;
}

/* ---- -t: checking a file ----------------------------------------------------------------- */

static const struct {
	const char *text;		/* the file; NULL: no -c */
	const char *args;		/* more arguments, space-separated, or NULL */
	int status;
	const char *message;		/* in the output; "@" stands for the file's path */
} checks[] = {
	{ "backend 127.0.0.1:3000\n", NULL, 0, "the configuration in @ is fine" },
	{ "# comment\n\nbackend 127.0.0.1:3000 # a comment\nbackend 127.0.0.1:3001,weight=2\n"
	  "cache-size 64M\nhealth-interval 500ms\naccess-log-format json\n",
	  NULL, 0, "is fine" },
	{ "backend 127.0.0.1:3000\ncache-sise 1G\n", NULL, 2, "@:2: unknown key 'cache-sise'" },
	{ "backend 127.0.0.1:3000\n\ncache-size lots\n", NULL, 2,
	  "@:3: bad value 'lots' for cache-size" },
	{ "listen 127.0.0.1:1\nbackend 127.0.0.1:3000\nlisten 127.0.0.1:2\n", NULL, 2,
	  "@:3: 'listen' is already set on line 1" },
	{ "# no backend at all\ncache-size 1G\n", NULL, 2, "@:2: no backend" },
	{ "backend 127.0.0.1:3000\nbackend 127.0.0.1\n", NULL, 2,
	  "@:2: bad value '127.0.0.1' for backend" },
	{ "backend 127.0.0.1:3000\nlisten localhost\n", NULL, 2,
	  "@:2: bad value 'localhost' for listen: want ADDR:PORT" },
	{ "backend 127.0.0.1:3000\nhealth-path health\n", NULL, 2,
	  "@:2: bad value 'health' for health-path: it must start with /" },
	{ "backend 127.0.0.1:3000\naccess-log-format xml\n", NULL, 2,
	  "@:2: bad value 'xml' for access-log-format: expected one of combined, json" },
	{ "backend 127.0.0.1:3000\nthreads 2\nconfig other.conf\n", NULL, 2,
	  "@:3: 'config' can only be given on the command line" },
	/* the command line wins, and its own errors have no line */
	{ "cache-size 1G\n", "--backend 127.0.0.1:3000", 0, "is fine" },
	{ "backend 127.0.0.1:3000\n", "--backend nope", 2, "bad value 'nope' for backend" },
	{ "backend 127.0.0.1:3000\n", "--threads 4", 0, "is fine" },
	/* -t is the check now, no longer --threads */
	{ "backend 127.0.0.1:3000\n", "4", 2, "unexpected argument '4'" },
	{ NULL, "--backend 127.0.0.1:3000", 0, "the configuration is fine" },
	{ NULL, NULL, 2, "no backend: give --backend" },
};

START_TEST(test_check_config)
{
	const char *conf = path_of("mtps.conf");
	const char *args[16] = { "-t" };
	char out[4096], want[256], extra[256];
	size_t n = 1;
	int status;
	const char *at;

	if (checks[_i].text) {
		write_text(conf, checks[_i].text);
		args[n++] = "-c";
		args[n++] = conf;
	}
	if (checks[_i].args) {
		snprintf(extra, sizeof(extra), "%s", checks[_i].args);
		for (char *tok = strtok(extra, " "); tok && n < 15; tok = strtok(NULL, " "))
			args[n++] = tok;
	}
	args[n] = NULL;
	status = proc_run(getenv("MTPS_PROXY"), args, out, sizeof(out), TIMEOUT_MS);
	at = strchr(checks[_i].message, '@');
	if (at)
		snprintf(want, sizeof(want), "%.*s%s%s", (int)(at - checks[_i].message),
			 checks[_i].message, conf, at + 1);
	else
		snprintf(want, sizeof(want), "%s", checks[_i].message);
	ck_assert_msg(status == checks[_i].status, "row %d: status %d, want %d: %s", _i, status,
		      checks[_i].status, out);
	ck_assert_msg(strstr(out, want), "row %d: output \"%s\" lacks \"%s\"", _i, out, want);
	/* one line, and it does not start the proxy */
	ck_assert_msg(strstr(out, "listening") == NULL, "row %d: it started: %s", _i, out);
}
END_TEST

/* -T prints the effective settings, the command line winning, in a form -c reads back. */
START_TEST(test_print_config)
{
	const char *conf = path_of("mtps.conf"), *again = path_of("again.conf");
	const char *args[] = { "-T", "-c", conf, "--cache-size", "2G", NULL };
	const char *args2[] = { "-t", "-c", again, NULL };
	char out[16384];

	write_text(conf, "backend 127.0.0.1:3000\ncache-size 1G\naccess-log /tmp/x.log\n");
	ck_assert_int_eq(proc_run(getenv("MTPS_PROXY"), args, out, sizeof(out), TIMEOUT_MS), 0);
	ck_assert_ptr_nonnull(strstr(out, "cache-size 2G\n"));
	ck_assert_ptr_nonnull(strstr(out, "backend \"127.0.0.1:3000\"\n"));
	ck_assert_ptr_nonnull(strstr(out, "access-log \"/tmp/x.log\"\n"));
	ck_assert_ptr_nonnull(strstr(out, "access-log-format \"combined\"\n"));
	write_text(again, out);
	ck_assert_int_eq(proc_run(getenv("MTPS_PROXY"), args2, out, sizeof(out), TIMEOUT_MS), 0);
}
END_TEST

/* ---- SIGHUP ------------------------------------------------------------------------------ */

#define LOAD_THREADS 4

static long served_sum(struct load *l, int from, int to)
{
	long n = 0;

	for (int i = from; i <= to; i++)
		n += atomic_load(&l->served[i]);
	return n;
}

static void write_pool(const char *conf, int first, int second, const char *more)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "# written by test_service\nbackend 127.0.0.1:%d\nbackend 127.0.0.1:%d\n"
		 "health-interval 200ms\nthreads 2\n%s",
		 origins[first].port, origins[second].port, more);
	write_text(conf, text);
}

static const char *get_cache_status(const struct proc *p, const char *path)
{
	static char status[32];
	struct http_reply r;

	ck_assert_int_eq(http_get(proc_url(p, path), &r), 0);
	ck_assert_msg(r.status == 200, "GET %s: %ld", path, r.status);
	snprintf(status, sizeof(status), "%s",
		 http_reply_header(&r, "X-Cache") ? http_reply_header(&r, "X-Cache") : "?");
	http_reply_free(&r);
	return status;
}

/* The issue: "SIGHUP reloads the file: backends, balancing, health and cache settings
 * change without dropping a connection or emptying the cache; a file with errors is
 * rejected, logged, and the old configuration keeps running." */
START_TEST(test_reload_under_load)
{
	const char *conf = path_of("mtps.conf"), *err = path_of("stderr");
	const char *args[] = { "-c", conf, NULL };
	const long batch = proc_wrapped() ? 15 : 300;
	struct proc proxy;
	struct load l;
	long mark, old_pool;
	char rejected[256];

	for (int i = 0; i < ORIGINS; i++)
		origin_start(i);
	write_pool(conf, 0, 1, "cache-size 64M\n");
	proxy_start(&proxy, args);
	ck_assert_str_eq(get_cache_status(&proxy, "/api/users/1"), "MISS");
	ck_assert_str_eq(get_cache_status(&proxy, "/api/users/1"), "HIT");

	load_start(&l, proc_url(&proxy, "/api/test"), proc_wrapped() ? 2 : LOAD_THREADS, served_index);
	load_wait(&l, 0, batch, TIMEOUT_MS);
	ck_assert_int_gt(served_sum(&l, 0, 1), 0);
	ck_assert_int_eq(served_sum(&l, 2, 3), 0);

	/* 1. a new pool: origins 2 and 3 instead of 0 and 1, and a smaller cache */
	write_pool(conf, 2, 3, "cache-size 32M\nbalance least-conn\n");
	kill(proxy.pid, SIGHUP);
	wait_count(err, "reload: 2 backends (least-conn)", 1);
	old_pool = served_sum(&l, 0, 1);
	mark = atomic_load(&l.total);
	load_wait(&l, mark, batch, TIMEOUT_MS);
	/* at most the requests in flight when the pool changed went to the old one */
	ck_assert_msg(served_sum(&l, 0, 1) - old_pool <= l.nthreads,
		      "%ld requests went to the removed backends after the reload",
		      served_sum(&l, 0, 1) - old_pool);
	ck_assert_int_gt(atomic_load(&l.served[2]), 0);
	ck_assert_int_gt(atomic_load(&l.served[3]), 0);
	/* the cache was not emptied */
	ck_assert_str_eq(get_cache_status(&proxy, "/api/users/1"), "HIT");

	/* 2. a file with an error: rejected with its FILE:LINE, the pool stays */
	write_text(conf, "backend 127.0.0.1:1\nbogus yes\n");
	kill(proxy.pid, SIGHUP);
	snprintf(rejected, sizeof(rejected), "reload rejected: %s:2: unknown key 'bogus'", conf);
	wait_count(err, rejected, 1);
	mark = atomic_load(&l.total);
	old_pool = served_sum(&l, 2, 3);
	load_wait(&l, mark, batch, TIMEOUT_MS);
	ck_assert_int_ge(served_sum(&l, 2, 3) - old_pool, batch);

	/* 3. what cannot change live is kept and said so; the rest applies */
	write_pool(conf, 3, 2, "cache-size 32M\nvia-name other\n");
	kill(proxy.pid, SIGHUP);
	wait_count(err, "'via-name' changed, which needs a restart", 1);
	wait_count(err, "reload: 2 backends (round-robin)", 1);

	load_stop(&l);
	ck_assert_msg(atomic_load(&l.failed) == 0, "%ld of %ld requests failed; the first: %s",
		      atomic_load(&l.failed), atomic_load(&l.total), l.first_failure);
	ck_assert_int_eq(atomic_load(&l.unknown), 0);	/* every 200 from a known origin */
	ck_assert_str_eq(get_cache_status(&proxy, "/api/users/1"), "HIT");
	printf("test_reload_under_load: %ld requests, none failed; origins 0-3 served %ld %ld "
	       "%ld %ld\n", atomic_load(&l.total), atomic_load(&l.served[0]),
	       atomic_load(&l.served[1]), atomic_load(&l.served[2]), atomic_load(&l.served[3]));
	proxy_stop(&proxy);
}
END_TEST

struct slow_get {
	char url[128];
	struct http_reply r;
	int ret;
};

static void *slow_get_main(void *arg)
{
	struct slow_get *g = arg;

	g->ret = http_get(g->url, &g->r);
	return NULL;
}

/* Requests origin <i> is working on now. */
static long origin_in_flight(int i)
{
	struct http_reply r;
	struct json_object *j;
	long v;

	ck_assert_int_eq(http_get(proc_url(&origins[i], "/health"), &r), 0);
	j = expect_json(&r);
	v = (long)expect_jint(j, "in_flight") - 1;	/* less this status request */
	json_object_put(j);
	http_reply_free(&r);
	return v;
}

/* A fetch running on a backend that a reload removes finishes there: its pool lives until
 * the fetch ends (and is freed then: the sanitizers and valgrind would see otherwise). */
START_TEST(test_reload_inflight)
{
	const char *conf = path_of("mtps.conf"), *err = path_of("stderr");
	const char *args[] = { "-c", conf, "--health-interval", "0", NULL };
	const char *slow[] = { "--latency-ms", "1500", NULL };
	struct slow_get g;
	struct proc proxy;
	pthread_t t;
	uint64_t deadline = now_ms() + TIMEOUT_MS;
	char text[128];

	ck_assert_int_eq(proc_start(&origins[0], getenv("MTPS_ORIGIN"), slow, NULL, TIMEOUT_MS), 0);
	snprintf(served_by[0], sizeof(served_by[0]), "origin-%d", origins[0].port);
	origin_start(1);
	snprintf(text, sizeof(text), "backend 127.0.0.1:%d\n", origins[0].port);
	write_text(conf, text);
	proxy_start(&proxy, args);
	memset(&g, 0, sizeof(g));
	snprintf(g.url, sizeof(g.url), "%s/api/test", proxy.url);
	ck_assert_int_eq(pthread_create(&t, NULL, slow_get_main, &g), 0);
	while (origin_in_flight(0) < 1) {
		ck_assert_msg(now_ms() < deadline, "the request never reached origin 0");
		poll(NULL, 0, 5);
	}
	snprintf(text, sizeof(text), "backend 127.0.0.1:%d\n", origins[1].port);
	write_text(conf, text);
	kill(proxy.pid, SIGHUP);
	wait_count(err, "reload: 1 backends", 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(g.ret, 0);
	ck_assert_msg(g.r.status == 200, "the request on the removed backend got %ld: %s",
		      g.r.status, g.r.body);
	ck_assert_int_eq(served_index(&g.r), 0);
	http_reply_free(&g.r);
	ck_assert_int_eq(http_get(proc_url(&proxy, "/api/test"), &g.r), 0);
	ck_assert_int_eq(served_index(&g.r), 1);
	http_reply_free(&g.r);
	proxy_stop(&proxy);
}
END_TEST

/* ---- the access log ---------------------------------------------------------------------- */

/* The lines of <path> (at most 8), copied into <lines>. Returns how many. */
static int log_lines(const char *path, char lines[][4096], int max)
{
	const char *text = read_text(path);
	int n = 0;

	while (*text && n < max) {
		const char *nl = strchr(text, '\n');

		if (nl == NULL)
			break;
		snprintf(lines[n++], 4096, "%.*s", (int)(nl - text), text);
		text = nl + 1;
	}
	return n;
}

static void wait_lines(const char *path, int n)
{
	char lines[8][4096];
	uint64_t deadline = now_ms() + TIMEOUT_MS;

	while (log_lines(path, lines, 8) < n) {
		ck_assert_msg(now_ms() < deadline, "%s has fewer than %d lines: %s", path, n,
			      read_text(path));
		poll(NULL, 0, 10);
	}
}

static void assert_matches(const char *line, const char *pattern)
{
	regex_t re;

	ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "line\n  %s\ndoes not match\n  %s",
		      line, pattern);
	regfree(&re);
}

static const char *jstr(struct json_object *j, const char *key)
{
	struct json_object *v;

	ck_assert_msg(json_object_object_get_ex(j, key, &v), "no member %s", key);
	return json_object_is_type(v, json_type_null) ? NULL : json_object_get_string(v);
}

static bool jnull(struct json_object *j, const char *key)
{
	struct json_object *v;

	ck_assert_msg(json_object_object_get_ex(j, key, &v), "no member %s", key);
	return json_object_is_type(v, json_type_null);
}

static double jnum(struct json_object *j, const char *key)
{
	struct json_object *v;

	ck_assert_msg(json_object_object_get_ex(j, key, &v), "no member %s", key);
	ck_assert_msg(json_object_is_type(v, json_type_double) ||
		      json_object_is_type(v, json_type_int), "%s is not a number", key);
	return json_object_get_double(v);
}

static const char *const formats[] = { "combined", "json" };

/* Sorts the three lines of test_access_log into MISS, HIT, the error (/api/users/2). */
static void order_lines(char lines[][4096])
{
	static const char *const keys[] = { "MISS", "HIT", "/api/users/2" };
	char sorted[3][4096];

	for (int k = 0; k < 3; k++) {
		int found = -1;

		for (int i = 0; i < 3; i++)
			if (strstr(lines[i], keys[k]) && (k == 2 || !strstr(lines[i], keys[2])))
				found = i;
		ck_assert_msg(found >= 0, "no line with %s: %s | %s | %s", keys[k], lines[0],
			      lines[1], lines[2]);
		memcpy(sorted[k], lines[found], sizeof(sorted[k]));
	}
	memcpy(lines, sorted, sizeof(sorted));
}

/* A MISS, a HIT and an error (the origin gone), one line each, as documented. */
START_TEST(test_access_log)
{
	const char *alog = path_of("access.log");
	const char *args[] = { "--access-log", alog, "--access-log-format", formats[_i],
			       "--backend", NULL, "--health-interval", "0", NULL };
	const char *referer[] = { "Referer: http://example.com/\"q\"", NULL };
	char backend[32], lines[8][4096], pattern[1024];
	struct proc proxy;
	struct http_reply r;

	origin_start(0);
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", origins[0].port);
	args[5] = backend;
	proxy_start(&proxy, args);
	ck_assert_int_eq(http_request("GET", proc_url(&proxy, "/api/users/1"), referer, NULL, 0,
				      &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
	ck_assert_str_eq(get_cache_status(&proxy, "/api/users/1"), "HIT");
	ck_assert_int_eq(proc_stop(&origins[0], SIGTERM, TIMEOUT_MS), 0);
	origins[0].pid = 0;
	ck_assert_int_eq(http_get(proc_url(&proxy, "/api/users/2"), &r), 0);
	ck_assert_int_ge(r.status, 500);
	http_reply_free(&r);
	wait_lines(alog, 3);
	ck_assert_int_eq(log_lines(alog, lines, 8), 3);
	/* a line is written when its request completes, which for a kept-alive connection may
	 * be after the next one: put them in the order MISS, HIT, error */
	order_lines(lines);

	if (_i == 0) {
		const char *start = "^127\\.0\\.0\\.1 - - \\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}"
				    ":[0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000\\] ";

		snprintf(pattern, sizeof(pattern),
			 "%s\"GET /api/users/1 HTTP/1\\.1\" 200 [1-9][0-9]* "
			 "\"http://example\\.com/\\\\\"q\\\\\"\" \"[^\"]*\" \"MISS\" "
			 "backend=127\\.0\\.0\\.1:%d upstream=[0-9]+\\.[0-9]{3} "
			 "total=[0-9]+\\.[0-9]{3}$", start, origins[0].port);
		assert_matches(lines[0], pattern);
		snprintf(pattern, sizeof(pattern),
			 "%s\"GET /api/users/1 HTTP/1\\.1\" 200 [1-9][0-9]* \"-\" \"[^\"]*\" "
			 "\"HIT\" backend=- upstream=- total=[0-9]+\\.[0-9]{3}$", start);
		assert_matches(lines[1], pattern);
		snprintf(pattern, sizeof(pattern),
			 "%s\"GET /api/users/2 HTTP/1\\.1\" 5[0-9]{2} [0-9]+ \"-\" \"[^\"]*\" "
			 "\"[A-Z]+\" backend=[^ ]+ upstream=[-0-9.]+ total=[0-9]+\\.[0-9]{3}$",
			 start);
		assert_matches(lines[2], pattern);
	} else {
		struct json_object *j[3];

		for (int i = 0; i < 3; i++) {
			j[i] = json_tokener_parse(lines[i]);
			ck_assert_msg(j[i] != NULL, "not JSON: %s", lines[i]);
			ck_assert_str_eq(jstr(j[i], "client"), "127.0.0.1");
			ck_assert_str_eq(jstr(j[i], "method"), "GET");
			ck_assert_str_eq(jstr(j[i], "version"), "HTTP/1.1");
			assert_matches(jstr(j[i], "time"),
				       "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$");
			ck_assert(jnum(j[i], "total_time") >= 0);
			ck_assert(jnum(j[i], "bytes_in") == 0);
		}
		ck_assert_str_eq(jstr(j[0], "target"), "/api/users/1");
		ck_assert_str_eq(jstr(j[0], "cache"), "MISS");
		ck_assert_str_eq(jstr(j[0], "referer"), "http://example.com/\"q\"");
		ck_assert_str_eq(jstr(j[0], "backend"), backend);
		ck_assert(jnum(j[0], "upstream_time") >= 0);
		ck_assert(jnum(j[0], "status") == 200);
		ck_assert(jnum(j[0], "bytes_out") > 0);
		ck_assert_str_eq(jstr(j[1], "cache"), "HIT");
		ck_assert(jnull(j[1], "backend"));
		ck_assert(jnull(j[1], "upstream_time"));
		ck_assert(jnull(j[1], "referer"));
		ck_assert(jnum(j[1], "status") == 200);
		ck_assert_str_eq(jstr(j[2], "target"), "/api/users/2");
		ck_assert(jnum(j[2], "status") >= 500);
		for (int i = 0; i < 3; i++)
			json_object_put(j[i]);
	}
	proxy_stop(&proxy);
}
END_TEST

/* logrotate: the files are renamed, SIGUSR1, and the next lines go to new files by the
 * old names; nothing more goes to the renamed ones. */
START_TEST(test_reopen_logs)
{
	const char *alog = path_of("access.log"), *elog = path_of("error.log");
	const char *args[] = { "--access-log", alog, "--error-log", elog, "--backend", NULL,
			       "--health-interval", "0", NULL };
	char backend[32], rotated_a[160], rotated_e[160], text[4096];
	struct proc proxy;

	origin_start(0);
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", origins[0].port);
	args[5] = backend;
	proxy_start(&proxy, args);
	wait_count(elog, "listening on", 1);
	ck_assert_str_eq(get_cache_status(&proxy, "/api/users/1"), "MISS");
	wait_lines(alog, 1);
	snprintf(rotated_a, sizeof(rotated_a), "%s.1", alog);
	snprintf(rotated_e, sizeof(rotated_e), "%s.1", elog);
	ck_assert_int_eq(rename(alog, rotated_a), 0);
	ck_assert_int_eq(rename(elog, rotated_e), 0);
	kill(proxy.pid, SIGUSR1);
	wait_count(elog, "SIGUSR1: log files reopened", 1);
	ck_assert_str_eq(get_cache_status(&proxy, "/api/users/1"), "HIT");
	wait_lines(alog, 1);
	ck_assert_int_eq(count_of(alog, "\"HIT\""), 1);
	ck_assert_int_eq(count_of(alog, "\"MISS\""), 0);
	snprintf(text, sizeof(text), "%s", read_text(rotated_a));
	ck_assert_msg(strstr(text, "\"MISS\"") && !strstr(text, "\"HIT\""), "rotated: %s", text);
	ck_assert_int_eq(count_of(rotated_e, "reopened"), 0);
	proxy_stop(&proxy);
	ck_assert_int_eq(count_of(elog, "stopped"), 1);
	/* nothing went to standard error: the error log had it all */
	ck_assert_str_eq(read_text(path_of("stderr")), "");
}
END_TEST

/* --pid-file: written once listening, removed at exit. */
START_TEST(test_pid_file)
{
	const char *pidf = path_of("proxy.pid");
	const char *args[] = { "--pid-file", pidf, "--backend", "127.0.0.1:1",
			       "--health-interval", "0", NULL };
	struct proc proxy;
	char want[32];

	proxy_start(&proxy, args);
	snprintf(want, sizeof(want), "%ld\n", (long)proxy.pid);
	if (!proc_wrapped())		/* under valgrind the pid is the wrapper's own child */
		ck_assert_str_eq(read_text(pidf), want);
	else
		ck_assert_int_gt(strlen(read_text(pidf)), 1);
	proxy_stop(&proxy);
	ck_assert_int_eq(access(pidf, F_OK), -1);
}
END_TEST

/* An access log that cannot be opened: at start the proxy does not start (status 1); on a
 * reload the whole reload is refused and the old log goes on. */
START_TEST(test_access_log_unopenable)
{
	const char *conf = path_of("mtps.conf"), *alog = path_of("access.log");
	const char *args[] = { "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1",
			       "--access-log", "/nonexistent/dir/access.log", NULL };
	const char *args2[] = { "-c", conf, "--health-interval", "0", NULL };
	char out[1024], text[256];
	struct proc proxy;
	struct http_reply r;

	ck_assert_int_eq(proc_run(getenv("MTPS_PROXY"), args, out, sizeof(out), TIMEOUT_MS), 1);
	ck_assert_ptr_nonnull(strstr(out, "cannot open the access log /nonexistent/dir/a"));

	snprintf(text, sizeof(text), "backend 127.0.0.1:1\naccess-log %s\n", alog);
	write_text(conf, text);
	proxy_start(&proxy, args2);
	write_text(conf, "backend 127.0.0.1:2\naccess-log /nonexistent/dir/access.log\n");
	kill(proxy.pid, SIGHUP);
	wait_count(path_of("stderr"), "reload failed: cannot open the access log", 1);
	ck_assert_int_eq(http_get(proc_url(&proxy, "/x"), &r), 0);	/* 502: nobody there */
	http_reply_free(&r);
	wait_lines(alog, 1);
	proxy_stop(&proxy);
}
END_TEST

/* The "Uid:" line's real id in /proc/PID/status, or -1. */
static long proc_uid(pid_t pid)
{
	char path[64], line[256];
	long uid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %ld", &uid) == 1)
			break;
	fclose(f);
	return uid;
}

/* --user: started as root, the proxy serves as the user once it listens; started as
 * anyone else, asking for another user is an error before it serves. */
START_TEST(test_user)
{
	const char *args[] = { "--user", "nobody", "--backend", "127.0.0.1:1",
			       "--health-interval", "0", NULL };
	struct passwd *pw;
	struct proc proxy;

	if (geteuid() != 0) {
		const char *root[] = { "--listen", "127.0.0.1:0", "--user", "root", "--backend",
				       "127.0.0.1:1", NULL };
		char out[1024];

		ck_assert_int_eq(proc_run(getenv("MTPS_PROXY"), root, out, sizeof(out),
					  TIMEOUT_MS), 1);
		ck_assert_ptr_nonnull(strstr(out, "need root"));
		return;
	}
	pw = getpwnam("nobody");
	if (pw == NULL)
		return;		/* no such user here: nothing to switch to */
	proxy_start(&proxy, args);
	ck_assert_int_eq(proc_uid(proxy.pid), (long)pw->pw_uid);
	proxy_stop(&proxy);
}
END_TEST

static Suite *service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("service");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_check_config, 0, ARRAY_LEN(checks));
	tcase_add_test(tc, test_print_config);
	tcase_add_test(tc, test_reload_under_load);
	tcase_add_test(tc, test_reload_inflight);
	tcase_add_loop_test(tc, test_access_log, 0, ARRAY_LEN(formats));
	tcase_add_test(tc, test_reopen_logs);
	tcase_add_test(tc, test_pid_file);
	tcase_add_test(tc, test_user);
	tcase_add_test(tc, test_access_log_unopenable);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(service_suite)

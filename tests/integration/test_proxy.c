/* Integration tests: mtps-proxy in front of real mtps-origin processes, everything on free
 * loopback ports. Byte-exact pass-through from 0 B to 256 MiB, a MISS then a HIT, writes
 * with JSON bodies, HEAD, keep-alive, request coalescing, bounded memory behind a slow
 * client, and the drain on SIGTERM. Failures of the origin and header handling need an
 * origin that misbehaves on cue: they are in test_proxy_scripted.c. */
#include "config.h"

#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "pattern.h"
#include "proc.h"

#define TIMEOUT_MS 60000	/* generous bounds, never waits: servers may run under valgrind */
#define MIB (1024ULL * 1024)
#define MAX_BODY 4096		/* the proxy's --max-body */

static struct proc origin;		/* answers at once */
static struct proc proxy;		/* in front of origin */
static struct proc slow_origin;		/* --latency-ms 500 */
static struct proc slow_proxy;		/* in front of slow_origin */
static const char *const json_ctype[] = { "Content-Type: application/json", NULL };

static unsigned size_shift(void)
{
	return proc_wrapped() ? 4 : 0;
}

/* The proxy's --cache-size and --max-object-size: bodies up to 64 MiB are kept, 256 MiB
 * ones stream through without being stored. */
static uint64_t cache_size(void)
{
	return (512 * MIB) >> size_shift();
}

static uint64_t max_object_size(void)
{
	return (128 * MIB) >> size_shift();
}

/* ---- servers ---------------------------------------------------------------------------- */

/* Starts mtps-proxy in front of <backend> with <extra> arguments (may be NULL). */
static int proxy_start(struct proc *p, const struct proc *backend, const char *const *extra)
{
	char be[32];
	const char *args[32] = { "--listen", "127.0.0.1:0", "--backend", be, "--threads", "2" };
	size_t n = 6;

	snprintf(be, sizeof(be), "127.0.0.1:%d", backend->port);
	for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(args) - 1; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	return proc_start(p, getenv("MTPS_PROXY"), args, NULL, TIMEOUT_MS);
}

static void start_or_exit(int r, const char *what)
{
	if (r) {
		fprintf(stderr, "cannot start %s: %d\n", what, r);
		exit(1);
	}
}

static void servers_start(void)
{
	const char *fast[] = { "--threads", "2", NULL };
	const char *slow[] = { "--threads", "2", "--latency-ms", "500", NULL };
	char cache[32], object[32], body[32];
	const char *proxy_args[] = { "--cache-size", cache, "--max-object-size", object,
				     "--max-body", body, NULL };
	const char *slow_proxy_args[] = { "--max-object-size", "1048576", NULL };

	snprintf(cache, sizeof(cache), "%" PRIu64, cache_size());
	snprintf(object, sizeof(object), "%" PRIu64, max_object_size());
	snprintf(body, sizeof(body), "%d", MAX_BODY);
	start_or_exit(proc_start(&origin, getenv("MTPS_ORIGIN"), fast, NULL, TIMEOUT_MS),
		      "mtps-origin");
	start_or_exit(proc_start(&slow_origin, getenv("MTPS_ORIGIN"), slow, NULL, TIMEOUT_MS),
		      "the slow mtps-origin");
	start_or_exit(proxy_start(&proxy, &origin, proxy_args), "mtps-proxy");
	start_or_exit(proxy_start(&slow_proxy, &slow_origin, slow_proxy_args),
		      "the slow mtps-proxy");
}

static void stop_or_fail(struct proc *p, const char *what, bool *failed)
{
	int status = proc_stop(p, SIGTERM, TIMEOUT_MS);

	if (status != 0) {
		/* a leak report under the sanitizers or valgrind also lands here */
		fprintf(stderr, "%s exited with status %d\n", what, status);
		*failed = true;
	}
}

static void servers_stop(void)
{
	bool failed = false;

	stop_or_fail(&proxy, "mtps-proxy", &failed);
	stop_or_fail(&slow_proxy, "the slow mtps-proxy", &failed);
	stop_or_fail(&origin, "mtps-origin", &failed);
	stop_or_fail(&slow_origin, "the slow mtps-origin", &failed);
	if (failed)
		exit(1);
}

/* ---- replies ---------------------------------------------------------------------------- */

/* Sends a request through <p> and checks that an answer came; the caller frees *r. */
static void request(const struct proc *p, const char *method, const char *path,
		    const char *const *headers, const char *body, struct http_reply *r)
{
	int ret = http_request(method, proc_url(p, path), headers, body, body ? strlen(body) : 0, r);

	ck_assert_msg(ret == 0, "%s %s: curl error %d", method, path, r->curl_code);
}

static void expect_x_cache(const struct http_reply *r, const char *want, const char *what)
{
	const char *got = http_reply_header(r, "X-Cache");

	ck_assert_msg(got && strcmp(got, want) == 0, "%s: X-Cache %s, want %s", what,
		      got ? got : "(none)", want);
}

/* A field of an origin's status (GET /health, which the origin does not count). */
static int64_t origin_status(const struct proc *o, const char *key)
{
	struct http_reply r;
	struct json_object *j;
	int64_t v;

	ck_assert_int_eq(http_get(proc_url(o, "/health"), &r), 0);
	ck_assert_int_eq(r.status, 200);
	j = expect_json(&r);
	v = expect_jint(j, key);
	json_object_put(j);
	http_reply_free(&r);
	return v;
}

/* Requests <o> served, /health and /api/test excluded: what reached it through the proxy. */
static int64_t origin_requests(const struct proc *o)
{
	return origin_status(o, "requests");
}

/* ---- pass-through ----------------------------------------------------------------------- */

/* One /api/large download, checked byte for byte as it streams in (nothing is held). */
struct large_fetch {
	long status;
	int curl_code;
	curl_off_t length;	/* Content-Length, -1 when none */
	uint64_t received;
	uint64_t first_bad;
	bool bad;
	char x_cache[16];
};

static size_t on_large_body(char *data, size_t size, size_t n, void *arg)
{
	struct large_fetch *f = arg;
	size_t len = size * n;
	size_t ok = pattern_check(data, f->received, len);

	if (ok != len && !f->bad) {
		f->bad = true;
		f->first_bad = f->received + ok;
	}
	f->received += len;
	return len;
}

static size_t on_large_header(char *data, size_t size, size_t n, void *arg)
{
	struct large_fetch *f = arg;
	size_t len = size * n;

	if (len > 9 && strncasecmp(data, "X-Cache:", 8) == 0)
		sscanf(data + 8, " %15[A-Z]", f->x_cache);
	return len;
}

static void fetch_large(const struct proc *p, uint64_t size, struct large_fetch *f)
{
	CURL *h = curl_easy_init();
	char path[64];

	memset(f, 0, sizeof(*f));
	f->length = -1;
	snprintf(path, sizeof(path), "/api/large?size=%" PRIu64, size);
	curl_easy_setopt(h, CURLOPT_URL, proc_url(p, path));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_large_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_large_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L);
	f->curl_code = (int)curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &f->length);
	curl_easy_cleanup(h);
}

static void expect_large(const struct large_fetch *f, uint64_t size, const char *x_cache,
			 const char *what)
{
	ck_assert_msg(f->curl_code == 0, "%s %" PRIu64 " B: curl error %d after %" PRIu64 " B",
		      what, size, f->curl_code, f->received);
	ck_assert_int_eq(f->status, 200);
	ck_assert_msg(f->length == (curl_off_t)size,
		      "%s: Content-Length %" PRId64 ", want %" PRIu64, what, (int64_t)f->length,
		      size);
	ck_assert_msg(f->received == size, "%s: %" PRIu64 " bytes, want %" PRIu64, what,
		      f->received, size);
	ck_assert_msg(!f->bad, "%s %" PRIu64 " B: wrong byte at offset %" PRIu64, what, size,
		      f->first_bad);
	ck_assert_msg(strcmp(f->x_cache, x_cache) == 0, "%s %" PRIu64 " B: X-Cache %s, want %s",
		      what, size, f->x_cache[0] ? f->x_cache : "(none)", x_cache);
}

static const struct {
	uint64_t size;
	bool scaled;		/* shrunk under valgrind */
} passthrough[] = {
	{ 0, false },
	{ 1, false },
	{ 1024, false },
	{ MIB + 1, false },
	{ 64 * MIB, true },
	{ 256 * MIB, true },	/* over --max-object-size: streams, never stored */
};

/* Bodies arrive byte for byte, with their length, on the miss and again on the second
 * request: a HIT from memory when the body fits --max-object-size, else another MISS that
 * reached the origin again. */
START_TEST(test_passthrough)
{
	uint64_t size = passthrough[_i].size >> (passthrough[_i].scaled ? size_shift() : 0);
	bool kept = size <= max_object_size();
	struct large_fetch f;
	int64_t before = origin_requests(&origin);

	fetch_large(&proxy, size, &f);
	expect_large(&f, size, "MISS", "first fetch");
	ck_assert_int_eq(origin_requests(&origin), before + 1);
	fetch_large(&proxy, size, &f);
	ck_assert_msg(origin_requests(&origin) == before + (kept ? 1 : 2),
		      "second fetch of %" PRIu64 " B (X-Cache %s): the origin saw %" PRId64
		      " requests, want %d", size, f.x_cache, origin_requests(&origin) - before,
		      kept ? 1 : 2);
	expect_large(&f, size, kept ? "HIT" : "BYPASS", "second fetch");
}
END_TEST

/* ---- caching ---------------------------------------------------------------------------- */

/* A response with max-age is a MISS once, then a HIT with an Age (RFC 9111 §5.1) and the
 * same fields: the origin's X-Served-By passes through, Via names the proxy. */
START_TEST(test_miss_then_hit)
{
	struct http_reply miss, hit;
	char served_by[32];
	const char *age;
	int64_t before = origin_requests(&origin);

	snprintf(served_by, sizeof(served_by), "origin-%d", origin.port);
	request(&proxy, "GET", "/api/users/1", NULL, NULL, &miss);
	ck_assert_int_eq(miss.status, 200);
	expect_x_cache(&miss, "MISS", "first GET");
	ck_assert_str_eq(http_reply_header(&miss, "X-Served-By"), served_by);
	ck_assert_str_eq(http_reply_header(&miss, "Cache-Control"), "max-age=60");
	ck_assert_ptr_nonnull(http_reply_header(&miss, "Via"));
	ck_assert_ptr_nonnull(strstr(http_reply_header(&miss, "Via"), "mtps"));

	request(&proxy, "GET", "/api/users/1", NULL, NULL, &hit);
	ck_assert_int_eq(hit.status, 200);
	ck_assert_int_eq(origin_requests(&origin), before + 1);
	expect_x_cache(&hit, "HIT", "second GET");
	ck_assert_str_eq(hit.body, miss.body);
	ck_assert_str_eq(http_reply_header(&hit, "X-Served-By"), served_by);
	ck_assert_str_eq(http_reply_header(&hit, "ETag"), http_reply_header(&miss, "ETag"));
	ck_assert_str_eq(http_reply_header(&hit, "Content-Type"), "application/json");
	ck_assert_ptr_nonnull(http_reply_header(&hit, "Via"));
	ck_assert_ptr_nonnull(strstr(http_reply_header(&hit, "Via"), "mtps"));
	age = http_reply_header(&hit, "Age");
	ck_assert_msg(age != NULL, "a hit without Age");
	ck_assert_msg(strspn(age, "0123456789") == strlen(age) && atoi(age) < 60, "Age: %s", age);
	http_reply_free(&miss);
	http_reply_free(&hit);
}
END_TEST

/* ---- writes ----------------------------------------------------------------------------- */

static uint64_t created_id(const struct http_reply *r)
{
	struct json_object *o = expect_json(r);
	uint64_t id = (uint64_t)expect_jint(o, "id");

	json_object_put(o);
	return id;
}

/* Users CRUD through the proxy: JSON bodies go up, status codes, fields and bodies come
 * back as the origin gave them, errors included. */
START_TEST(test_writes)
{
	struct http_reply r, direct;
	struct json_object *o;
	char path[64], location[80];
	uint64_t id;

	request(&proxy, "POST", "/api/users", json_ctype,
		"{\"name\":\"Via Proxy\",\"email\":\"via-proxy@example.org\"}", &r);
	ck_assert_msg(r.status == 201, "POST: %ld %s", r.status, r.body);
	id = created_id(&r);
	snprintf(path, sizeof(path), "/api/users/%" PRIu64, id);
	snprintf(location, sizeof(location), "/api/users/%" PRIu64, id);
	ck_assert_ptr_nonnull(http_reply_header(&r, "Location"));
	ck_assert_ptr_nonnull(strstr(http_reply_header(&r, "Location"), location));
	ck_assert_ptr_nonnull(http_reply_header(&r, "X-Cache"));
	o = expect_json(&r);
	ck_assert_str_eq(expect_jstr(o, "name"), "Via Proxy");
	ck_assert_str_eq(expect_jstr(o, "email"), "via-proxy@example.org");
	json_object_put(o);
	http_reply_free(&r);
	/* it reached the origin once, with its body */
	ck_assert_int_eq(http_get(proc_url(&origin, path), &direct), 0);
	ck_assert_int_eq(direct.status, 200);
	o = expect_json(&direct);
	ck_assert_str_eq(expect_jstr(o, "email"), "via-proxy@example.org");
	json_object_put(o);
	http_reply_free(&direct);

	request(&proxy, "PUT", path, json_ctype,
		"{\"name\":\"Put Through\",\"email\":\"put-through@example.org\"}", &r);
	ck_assert_msg(r.status == 200, "PUT: %ld %s", r.status, r.body);
	o = expect_json(&r);
	ck_assert_str_eq(expect_jstr(o, "name"), "Put Through");
	ck_assert_int_eq(expect_jint(o, "version"), 2);
	json_object_put(o);
	http_reply_free(&r);

	request(&proxy, "PATCH", path, json_ctype, "{\"name\":\"Patched\"}", &r);
	ck_assert_msg(r.status == 200, "PATCH: %ld %s", r.status, r.body);
	o = expect_json(&r);
	ck_assert_str_eq(expect_jstr(o, "name"), "Patched");
	ck_assert_str_eq(expect_jstr(o, "email"), "put-through@example.org");
	ck_assert_int_eq(expect_jint(o, "version"), 3);
	json_object_put(o);
	http_reply_free(&r);

	/* the origin's errors pass through as they are */
	request(&proxy, "POST", "/api/users", json_ctype,
		"{\"name\":\"Dup\",\"email\":\"put-through@example.org\"}", &r);
	expect_error(&r, 409, NULL);
	http_reply_free(&r);
	request(&proxy, "PUT", path, json_ctype, "{\"name\":", &r);
	expect_error(&r, 400, NULL);
	http_reply_free(&r);

	/* a body whose length the client did not announce (chunked) goes up whole */
	{
		const char *const chunked[] = { json_ctype[0], "Transfer-Encoding: chunked", NULL };

		request(&proxy, "PATCH", path, chunked, "{\"email\":\"chunked@example.org\"}", &r);
		ck_assert_msg(r.status == 200, "chunked PATCH: %ld %s", r.status, r.body);
		o = expect_json(&r);
		ck_assert_str_eq(expect_jstr(o, "email"), "chunked@example.org");
		json_object_put(o);
		http_reply_free(&r);
	}

	request(&proxy, "DELETE", path, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	ck_assert_uint_eq(r.len, 0);
	http_reply_free(&r);
	request(&proxy, "DELETE", path, NULL, NULL, &r);
	expect_error(&r, 404, NULL);
	http_reply_free(&r);
	ck_assert_int_eq(http_get(proc_url(&origin, path), &direct), 0);
	ck_assert_int_eq(direct.status, 404);
	http_reply_free(&direct);
}
END_TEST

/* A body over --max-body is refused by the proxy with 413 and never reaches the origin,
 * whether announced by Content-Length or only known while reading it (chunked). Exactly
 * the limit passes. */
START_TEST(test_body_too_large)
{
	const char *const chunked[] = { json_ctype[0], "Transfer-Encoding: chunked", NULL };
	char *body = malloc(MAX_BODY + 2);
	struct http_reply r;
	int64_t before = origin_requests(&origin);

	memset(body, ' ', MAX_BODY + 1);
	body[MAX_BODY + 1] = '\0';
	request(&proxy, "POST", "/api/users", json_ctype, body, &r);
	expect_error(&r, 413, NULL);
	http_reply_free(&r);
	request(&proxy, "POST", "/api/users", chunked, body, &r);
	expect_error(&r, 413, NULL);
	http_reply_free(&r);
	ck_assert_int_eq(origin_requests(&origin), before);

	memcpy(body, "{\"name\":\"Limit\",\"email\":\"limit@example.org\"}", 44);
	body[MAX_BODY] = '\0';
	request(&proxy, "POST", "/api/users", json_ctype, body, &r);
	ck_assert_msg(r.status == 201, "a body of exactly --max-body: %ld %s", r.status, r.body);
	http_reply_free(&r);
	free(body);
	ck_assert_int_eq(origin_requests(&origin), before + 1);
}
END_TEST

/* ---- HEAD ------------------------------------------------------------------------------- */

/* Sends <req> on a new connection and returns everything that came until the proxy
 * closed it (the request asks for that). */
static size_t raw_exchange(const struct proc *p, const char *req, char *buf, size_t len)
{
	int fd = http_raw_connect(p->port);
	size_t got = 0;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (got < len - 1) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		ck_assert_msg(poll(&pfd, 1, TIMEOUT_MS) == 1, "no answer to %s", req);
		n = read(fd, buf + got, len - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

/* HEAD answers GET's fields with no body (RFC 9110 §9.3.2), on a miss and on a hit,
 * checked through libcurl and on the wire. */
START_TEST(test_head)
{
	static const char *const paths[] = { "/api/users/2", "/api/large?size=300007" };
	char raw[8192];

	for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
		struct http_reply g, h;
		char len[32], req[256];
		const char *end;
		size_t n;

		/* the length the origin gives */
		ck_assert_int_eq(http_get(proc_url(&origin, paths[i]), &g), 0);
		snprintf(len, sizeof(len), "%zu", g.len);
		http_reply_free(&g);

		request(&proxy, "HEAD", paths[i], NULL, NULL, &h);
		ck_assert_int_eq(h.status, 200);
		ck_assert_msg(h.len == 0, "HEAD %s (miss) sent a body", paths[i]);
		ck_assert_str_eq(http_reply_header(&h, "Content-Length"), len);
		expect_x_cache(&h, "MISS", "HEAD before any GET");
		http_reply_free(&h);

		request(&proxy, "GET", paths[i], NULL, NULL, &g);
		ck_assert_int_eq(g.status, 200);
		ck_assert_uint_eq(g.len, (size_t)atol(len));
		http_reply_free(&g);

		request(&proxy, "HEAD", paths[i], NULL, NULL, &h);
		ck_assert_int_eq(h.status, 200);
		ck_assert_msg(h.len == 0, "HEAD %s (hit) sent a body", paths[i]);
		ck_assert_str_eq(http_reply_header(&h, "Content-Length"), len);
		expect_x_cache(&h, "HIT", "HEAD after a GET");
		http_reply_free(&h);

		/* and nothing follows the fields on the wire */
		snprintf(req, sizeof(req),
			 "HEAD %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", paths[i]);
		n = raw_exchange(&proxy, req, raw, sizeof(raw));
		end = strstr(raw, "\r\n\r\n");
		ck_assert_msg(strncmp(raw, "HTTP/1.1 200 ", 13) == 0, "%s: got %.40s", req, raw);
		ck_assert_ptr_nonnull(end);
		ck_assert_msg(end + 4 == raw + n, "HEAD %s: %zu bytes after the fields", paths[i],
			      (size_t)(raw + n - end - 4));
	}
}
END_TEST

/* ---- keep-alive ------------------------------------------------------------------------- */

/* One client connection carries misses, hits, an error, HEAD, a write and a streamed body. */
START_TEST(test_keep_alive)
{
	static const struct {
		const char *method, *path, *body;
		long status;
		const char *x_cache;	/* NULL: not checked */
	} seq[] = {
		{ "GET", "/api/users/3", NULL, 200, "MISS" },
		{ "GET", "/api/users/3", NULL, 200, "HIT" },
		{ "GET", "/no/such/thing", NULL, 404, NULL },
		{ "HEAD", "/api/users/3", NULL, 200, "HIT" },
		{ "POST", "/api/users", "{\"name\":\"K\",\"email\":\"k@example.org\"}", 201, NULL },
		{ "GET", "/api/large?size=100003", NULL, 200, "MISS" },
		{ "GET", "/api/large?size=100003", NULL, 200, "HIT" },
		{ "POST", "/api/users", "{\"name\":", 400, NULL },
		{ "GET", "/api/users/3", NULL, 200, "HIT" },
		{ "GET", "/no/such/thing", NULL, 404, NULL },
		{ "GET", "/api/users/4", NULL, 200, "MISS" },
	};
	void *conn = NULL;

	for (size_t i = 0; i < ARRAY_LEN(seq); i++) {
		struct http_reply r;
		const char *body = seq[i].body;
		char what[96];
		int ret;

		snprintf(what, sizeof(what), "request %zu (%s %s)", i, seq[i].method, seq[i].path);
		ret = http_request_reuse(&conn, seq[i].method, proc_url(&proxy, seq[i].path), json_ctype,
					 body, body ? strlen(body) : 0, &r);
		ck_assert_msg(ret == 0, "%s: curl error %d", what, r.curl_code);
		ck_assert_msg(r.status == seq[i].status, "%s: status %ld", what, r.status);
		if (seq[i].x_cache)
			expect_x_cache(&r, seq[i].x_cache, what);
		ck_assert_msg(r.connects == (i == 0 ? 1 : 0), "%s opened %ld connections", what,
			      r.connects);
		http_reply_free(&r);
	}
	http_reuse_free(&conn);
}
END_TEST

/* ---- coalescing ------------------------------------------------------------------------- */

/* 50 clients ask for one cold key while the origin takes 500 ms to answer: one fetch
 * reaches the origin, and every client gets the whole, same answer. */
START_TEST(test_coalescing)
{
	enum { CLIENTS = 50 };
	struct http_batch *b = http_batch_new();
	int64_t before = origin_requests(&slow_origin);
	const struct http_reply *first;

	for (int i = 0; i < CLIENTS; i++)
		http_batch_add(b, "GET", proc_url(&slow_proxy, "/api/users/4"), NULL, NULL);
	ck_assert_int_eq(http_batch_run(b, 4 * TIMEOUT_MS), 0);
	first = http_batch_reply(b, 0);
	for (int i = 0; i < CLIENTS; i++) {
		const struct http_reply *r = http_batch_reply(b, i);

		ck_assert_msg(r->status == 200, "client %d: status %ld (curl %d)", i, r->status,
			      r->curl_code);
		ck_assert_msg(r->len == first->len && memcmp(r->body, first->body, r->len) == 0,
			      "client %d got another body: %s", i, r->body);
	}
	ck_assert_ptr_nonnull(strstr(first->body, "\"id\":4"));
	http_batch_free(b);
	ck_assert_int_eq(origin_requests(&slow_origin), before + 1);
}
END_TEST

/* Coalescing a body too big to store: clients that joined the fetch share its bytes as
 * they stream through, and each gets all of them. */
START_TEST(test_coalescing_streamed)
{
	enum { CLIENTS = 10 };
	const uint64_t size = 3 * MIB + 5;	/* over slow_proxy's --max-object-size */
	struct http_batch *b = http_batch_new();
	int64_t before = origin_requests(&slow_origin);
	char path[64];

	snprintf(path, sizeof(path), "/api/large?size=%" PRIu64, size);
	for (int i = 0; i < CLIENTS; i++)
		http_batch_add(b, "GET", proc_url(&slow_proxy, path), NULL, NULL);
	ck_assert_int_eq(http_batch_run(b, 4 * TIMEOUT_MS), 0);
	for (int i = 0; i < CLIENTS; i++) {
		const struct http_reply *r = http_batch_reply(b, i);
		size_t ok;

		ck_assert_msg(r->status == 200, "client %d: status %ld (curl %d)", i, r->status,
			      r->curl_code);
		ck_assert_msg(r->len == size, "client %d: %zu bytes", i, r->len);
		ok = pattern_check(r->body, 0, r->len);
		ck_assert_msg(ok == r->len, "client %d: wrong byte at offset %zu", i, ok);
	}
	http_batch_free(b);
	ck_assert_int_eq(origin_requests(&slow_origin), before + 1);
}
END_TEST

/* Many clients hit one stored response at once: every one gets it whole, from memory. */
START_TEST(test_concurrent_hits)
{
	enum { CLIENTS = 100 };
	struct http_batch *b = http_batch_new();
	struct http_reply first;
	int64_t before;

	request(&proxy, "GET", "/api/large?size=2003", NULL, NULL, &first);
	ck_assert_int_eq(first.status, 200);
	before = origin_requests(&origin);
	for (int i = 0; i < CLIENTS; i++)
		http_batch_add(b, "GET", proc_url(&proxy, "/api/large?size=2003"), NULL, NULL);
	ck_assert_int_eq(http_batch_run(b, 4 * TIMEOUT_MS), 0);
	for (int i = 0; i < CLIENTS; i++) {
		const struct http_reply *r = http_batch_reply(b, i);

		ck_assert_msg(r->status == 200, "client %d: status %ld (curl %d)", i, r->status,
			      r->curl_code);
		ck_assert_msg(r->len == first.len && memcmp(r->body, first.body, r->len) == 0,
			      "client %d got another body", i);
		expect_x_cache(r, "HIT", "a concurrent hit");
	}
	http_batch_free(b);
	http_reply_free(&first);
	ck_assert_int_eq(origin_requests(&origin), before);
}
END_TEST

/* ---- a slow client ---------------------------------------------------------------------- */

/* A field of /proc/PID/status in KiB (VmRSS, VmHWM), or -1. */
static long proc_status_kib(pid_t pid, const char *field)
{
	char path[64], buf[4096];
	const char *at;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (proc_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	at = strstr(buf, field);
	return at ? atol(at + strlen(field) + 1) : -1;
}

/* Reads from <fd> into <buf> (at most <len>), failing the test when nothing comes for
 * TIMEOUT_MS. Returns the count; 0 at end of stream. */
static size_t read_some(int fd, char *buf, size_t len)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t n;

	ck_assert_msg(poll(&pfd, 1, TIMEOUT_MS) == 1, "the proxy stopped sending");
	n = read(fd, buf, len);
	ck_assert_msg(n >= 0, "read failed");
	return (size_t)n;
}

/* AddressSanitizer holds freed memory in a quarantine (256 MiB by default) that counts as
 * resident: proxies started after this do without it, so that their size means something.
 * Other programs ignore the variable. */
static void asan_without_quarantine(void)
{
	const char *old = getenv("ASAN_OPTIONS");
	char opts[1024];

	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0", old ? old : "",
		 old && *old ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
}

/* Checks <n> body bytes at offset *body against the pattern and advances *body. */
static void body_check(const char *buf, size_t n, uint64_t *body)
{
	size_t ok = pattern_check(buf, *body, n);

	ck_assert_msg(ok == n, "wrong byte at offset %" PRIu64, *body + ok);
	*body += n;
}

/* A client reads 1 MiB of a 1 GiB body that is too big to store, then stops reading for
 * a while: the proxy pauses the origin instead of buffering, so its resident memory stays
 * within a bound. Then the client reads the rest at full speed and gets every byte. */
START_TEST(test_slow_client_bounded_memory)
{
	const uint64_t size = (1024 * MIB) >> (proc_wrapped() ? 5 : 0);
	const long bound_kib = 64 * 1024;
	char req[128], *buf = malloc(256 * 1024), *length;
	uint64_t body = 0;
	long base_kib, rss_kib = 0, peak_kib = 0;
	size_t got = 0, n;
	struct proc p;
	char *end;
	int fd, still = 0;

	asan_without_quarantine();
	ck_assert_int_eq(proxy_start(&p, &origin, NULL), 0);
	base_kib = proc_status_kib(p.pid, "VmRSS:");
	fd = http_raw_connect(p.port);
	ck_assert_int_ge(fd, 0);
	snprintf(req, sizeof(req),
		 "GET /api/large?size=%" PRIu64 " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		 size);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));

	/* the fields, then 1 MiB; strstr() is enough to find the fields' end, as a NUL can
	 * only come after it, in the body */
	buf[0] = '\0';
	while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
		ck_assert_msg(got < 8191, "no header section in the first 8 KiB");
		n = read_some(fd, buf + got, 8191 - got);
		ck_assert_msg(n > 0, "closed without an answer");
		got += n;
		buf[got] = '\0';
	}
	end[2] = '\0';	/* the fields as a string */
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "status line %.40s", buf);
	length = strcasestr(buf, "\r\nContent-Length: ");
	ck_assert_msg(length != NULL, "no Content-Length in %s", buf);
	ck_assert_uint_eq(strtoull(length + 18, NULL, 10), size);
	body_check(end + 4, got - (size_t)(end + 4 - buf), &body);
	while (body < MIB) {
		n = read_some(fd, buf, 256 * 1024);
		ck_assert_msg(n > 0, "the body ended after %" PRIu64 " bytes", body);
		body_check(buf, n, &body);
	}

	/* stop reading: wait until the proxy's resident size has settled (no change over 25
	 * probes 20 ms apart), at most 10 s; a proxy that kept buffering would not settle */
	for (int probe = 0; probe < 500 && still < 25; probe++) {
		long now = proc_status_kib(p.pid, "VmRSS:");

		still = (now >= rss_kib - 256 && now <= rss_kib + 256) ? still + 1 : 0;
		rss_kib = now;
		if (now > peak_kib)
			peak_kib = now;
		poll(NULL, 0, 20);
	}
	if (!proc_wrapped())
		ck_assert_msg(peak_kib - base_kib < bound_kib,
			      "the proxy grew from %ld KiB to %ld KiB behind a client that stopped "
			      "reading (bound: %ld KiB more)", base_kib, peak_kib, bound_kib);

	/* the rest, at full speed, byte for byte */
	while ((n = read_some(fd, buf, 256 * 1024)) > 0)
		body_check(buf, n, &body);
	ck_assert_msg(body == size, "%" PRIu64 " body bytes, want %" PRIu64, body, size);
	close(fd);
	fprintf(stderr, "slow client: proxy VmRSS %ld KiB at start, %ld KiB at most while the "
		"client stopped reading, VmHWM %ld KiB\n", base_kib, peak_kib,
		proc_status_kib(p.pid, "VmHWM:"));
	if (!proc_wrapped()) {
		peak_kib = proc_status_kib(p.pid, "VmHWM:");
		ck_assert_msg(peak_kib - base_kib < bound_kib,
			      "the proxy peaked at %ld KiB from %ld KiB (bound: %ld KiB more)",
			      peak_kib, base_kib, bound_kib);
	}
	free(buf);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

/* A client that leaves in the middle of a body nobody else reads: the proxy drops the
 * origin's transfer (the origin's request ends long before its 64 GiB could have been
 * sent) and serves on. */
START_TEST(test_client_leaves_mid_body)
{
	static const char req[] =
		"GET /api/large?size=68719476736 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	char *buf = malloc(256 * 1024);
	struct http_reply r;
	struct proc p;
	size_t got = 0;
	int fd, tries;

	ck_assert_int_eq(proxy_start(&p, &origin, NULL), 0);
	fd = http_raw_connect(p.port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (got < MIB) {
		size_t n = read_some(fd, buf, 256 * 1024);

		ck_assert_msg(n > 0, "the body ended after %zu bytes", got);
		if (got == 0)
			ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "got %.40s", buf);
		got += n;
	}
	close(fd);
	free(buf);
	/* until the origin's request ended: its /health then counts only itself. A proxy that
	 * kept the fetch would hold it paused (nobody reads) or take minutes to finish it. */
	for (tries = 0; tries < TIMEOUT_MS / 10; tries++) {
		if (origin_status(&origin, "in_flight") == 1)
			break;
		poll(NULL, 0, 10);
	}
	ck_assert_msg(tries < TIMEOUT_MS / 10, "the origin is still sending the abandoned body");
	ck_assert_int_eq(http_get(proc_url(&p, "/api/users/2"), &r), 0);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

/* ---- SIGTERM ---------------------------------------------------------------------------- */

/* SIGTERM while a request waits on a slow origin: it still gets its whole answer, then the
 * proxy exits 0. */
START_TEST(test_sigterm_drains)
{
	struct http_batch *b = http_batch_new();
	const struct http_reply *r;
	struct proc p;
	int tries;

	ck_assert_int_eq(proxy_start(&p, &slow_origin, NULL), 0);
	http_batch_add(b, "GET", proc_url(&p, "/api/users/5"), NULL, NULL);
	/* until the origin holds the request (its /health counts itself too) */
	for (tries = 0; tries < 100000; tries++) {
		http_batch_run(b, 5);
		if (origin_status(&slow_origin, "in_flight") >= 2)
			break;
	}
	ck_assert_msg(tries < 100000, "the request never reached the origin");
	kill(p.pid, SIGTERM);
	ck_assert_int_eq(http_batch_run(b, TIMEOUT_MS), 0);
	r = http_batch_reply(b, 0);
	ck_assert_msg(r->curl_code == 0, "curl error %d", r->curl_code);
	ck_assert_int_eq(r->status, 200);
	ck_assert_ptr_nonnull(strstr(r->body, "\"id\":5"));
	http_batch_free(b);
	ck_assert_int_eq(proc_wait(&p, TIMEOUT_MS), 0);
}
END_TEST

static Suite *proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("through-origin");

	tcase_add_unchecked_fixture(tc, servers_start, servers_stop);
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_passthrough, 0, ARRAY_LEN(passthrough));
	tcase_add_test(tc, test_miss_then_hit);
	tcase_add_test(tc, test_writes);
	tcase_add_test(tc, test_body_too_large);
	tcase_add_test(tc, test_head);
	tcase_add_test(tc, test_keep_alive);
	tcase_add_test(tc, test_coalescing);
	tcase_add_test(tc, test_coalescing_streamed);
	tcase_add_test(tc, test_concurrent_hits);
	tcase_add_test(tc, test_slow_client_bounded_memory);
	tcase_add_test(tc, test_client_leaves_mid_body);
	tcase_add_test(tc, test_sigterm_drains);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(proxy_suite)

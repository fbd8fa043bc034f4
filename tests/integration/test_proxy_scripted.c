/* Integration tests: mtps-proxy in front of a scripted origin (tests/helpers/script_origin.h:
 * a thread of this program that records every request it reads and answers as the test
 * says, or not at all). It shows what reached the origin (hop-by-hop fields dropped,
 * X-Forwarded-* and Via added), and it fails on cue: refused, hanging, cut mid-body. Also
 * here: uncacheable responses are never shared, and malformed requests get a 400. Each test
 * starts its own proxy (and scripted origin), so no test sees another's cache. */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "proc.h"
#include "script_origin.h"

#define TIMEOUT_MS 60000	/* generous bounds, never waits: servers may run under valgrind */

/* ---- the fixture: a scripted origin and a proxy in front of it -------------------------- */

struct fx {
	struct script_origin *o;
	struct proc p;
};

/* Starts a scripted origin and mtps-proxy in front of it, with <extra> arguments (may be
 * NULL). These tests are about one backend's answers; test_balance.c covers the pool. */
static void fx_start(struct fx *f, const char *const *extra)
{
	static const char *const args[] = { "--threads", "2", NULL };

	f->o = so_start();
	so_proxy_start(f->o, &f->p, args, extra);
}

static void fx_stop(struct fx *f)
{
	ck_assert_int_eq(proc_stop(&f->p, SIGTERM, TIMEOUT_MS), 0);
	so_free(f->o);
}

/* <path> answers "200 ok", not to be stored. */
static void route_ok(struct fx *f, const char *path)
{
	so_set(f->o, path, 200, "Content-Type: text/plain\r\nCache-Control: no-store\r\n", "ok");
}

static void expect_x_cache(const struct http_reply *r, const char *want, const char *what)
{
	const char *got = http_reply_header(r, "X-Cache");

	ck_assert_msg(got && strcmp(got, want) == 0, "%s: X-Cache %s, want %s", what,
		      got ? got : "(none)", want);
}

/* GET <path> through the proxy (with <headers>, may be NULL): <status>, and X-Cache <xcache>
 * and <body> when not NULL. The reply goes to *keep (the caller frees it) or is freed. */
static void get(struct fx *f, const char *path, const char *const *headers, long status,
		const char *xcache, const char *body, struct http_reply *keep)
{
	struct http_reply r;
	int ret = http_request("GET", proc_url(&f->p, path), headers, NULL, 0, &r);

	ck_assert_msg(ret == 0, "GET %s: curl error %d", path, r.curl_code);
	ck_assert_msg(r.status == status, "GET %s: status %ld, want %ld", path, r.status, status);
	if (xcache)
		expect_x_cache(&r, xcache, path);
	if (body)
		ck_assert_str_eq(r.body, body);
	if (keep)
		*keep = r;
	else
		http_reply_free(&r);
}

/* The origin's last request for <path> has the request line <line>. */
static void expect_line(struct fx *f, const char *path, const char *line)
{
	char seen[256];

	so_last_line(f->o, path, seen, sizeof(seen));
	ck_assert_msg(strcmp(seen, line) == 0, "request line: %s, want %s", seen, line);
}

/* ---- headers ---------------------------------------------------------------------------- */

/* RFC 9110 §7.6.1: hop-by-hop fields, and those a Connection field names, stay on the
 * client's hop; end-to-end fields pass, repeated ones too; the proxy adds Via (§7.6.3)
 * and X-Forwarded-For (appended to the client's), -Proto and -Host; Host is kept. */
START_TEST(test_request_fields)
{
	static const char *const headers[] = {
		"Host: www.example.test",
		"Connection: keep-alive, X-Private",
		"Keep-Alive: timeout=5",
		"TE: trailers",
		"Upgrade: websocket",
		"Proxy-Authorization: Basic Zm9vOmJhcg==",
		"Proxy-Connection: keep-alive",
		"X-Private: only for the proxy",
		"X-Forwarded-For: 203.0.113.7",
		"Via: 1.0 fred",
		"X-End-To-End: kept",
		"X-Repeated: one",
		"X-Repeated: two",
		"Accept: text/plain",
		NULL,
	};
	static const char *const dropped[] = {
		"Connection", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization",
		"Proxy-Connection", "X-Private",
	};
	static const struct {
		const char *name, *value;
	} forwarded[] = {
		{ "Host", "www.example.test" },
		{ "X-Forwarded-For", "203.0.113.7, 127.0.0.1" },
		{ "X-Forwarded-Proto", "http" },
		{ "X-Forwarded-Host", "www.example.test" },
		{ "Via", "1.0 fred, 1.1 mtps" },
		{ "X-End-To-End", "kept" },
		{ "X-Repeated", "one, two" },
		{ "Accept", "text/plain" },
	};
	const char *path = "/fields?x=1";
	char value[1024];
	struct fx f;

	fx_start(&f, NULL);
	route_ok(&f, path);
	get(&f, path, headers, 200, NULL, "ok", NULL);
	ck_assert_uint_eq(so_count(f.o, NULL), 1);
	expect_line(&f, path, "GET /fields?x=1 HTTP/1.1");
	for (size_t i = 0; i < ARRAY_LEN(dropped); i++)
		ck_assert_msg(so_last_field(f.o, path, dropped[i], value, sizeof(value)) == 0,
			      "%s reached the origin (%s)", dropped[i], value);
	for (size_t i = 0; i < ARRAY_LEN(forwarded); i++) {
		int n = so_last_field(f.o, path, forwarded[i].name, value, sizeof(value));

		ck_assert_msg(n > 0, "no %s reached the origin", forwarded[i].name);
		ck_assert_msg(strcmp(value, forwarded[i].value) == 0, "%s: \"%s\", want \"%s\"",
			      forwarded[i].name, value, forwarded[i].value);
	}
	ck_assert_int_eq(so_last_field(f.o, path, "Host", value, sizeof(value)), 1);
	fx_stop(&f);
}
END_TEST

/* The response's repeated fields all reach the client; its hop-by-hop ones do not, and
 * the origin's Connection: close ends the origin's connection, not the client's. */
START_TEST(test_response_fields)
{
	void *conn = NULL;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/cookies", 200,
	       "Content-Type: text/plain\r\n"
	       "Content-Length: 5\r\n"
	       "Set-Cookie: a=1; Path=/\r\n"
	       "Set-Cookie: b=2; Path=/\r\n"
	       "Connection: close, X-Hop-Resp\r\n"
	       "X-Hop-Resp: for the proxy only\r\n"
	       "Keep-Alive: timeout=5\r\n"
	       "Proxy-Authenticate: Basic realm=\"x\"\r\n"
	       "X-End: yes\r\n"
	       "Cache-Control: no-store\r\n", "hello");
	for (int i = 0; i < 2; i++) {
		const char *cookies[2] = { NULL, NULL }, *connection;
		struct http_reply r;
		int ncookies = 0;

		ck_assert_int_eq(http_request_reuse(&conn, "GET", proc_url(&f.p, "/cookies"), NULL,
						    NULL, 0, &r), 0);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "hello");
		for (size_t k = 0; k < r.nheaders; k++)
			if (strcasecmp(r.headers[k].name, "Set-Cookie") == 0 && ncookies < 2)
				cookies[ncookies++] = r.headers[k].value;
		ck_assert_int_eq(ncookies, 2);
		ck_assert_str_eq(cookies[0], "a=1; Path=/");
		ck_assert_str_eq(cookies[1], "b=2; Path=/");
		ck_assert_str_eq(http_reply_header(&r, "X-End"), "yes");
		ck_assert_ptr_nonnull(strstr(http_reply_header(&r, "Via"), "mtps"));
		ck_assert_ptr_null(http_reply_header(&r, "X-Hop-Resp"));
		ck_assert_ptr_null(http_reply_header(&r, "Keep-Alive"));
		ck_assert_ptr_null(http_reply_header(&r, "Proxy-Authenticate"));
		connection = http_reply_header(&r, "Connection");
		ck_assert_msg(connection == NULL || (!strcasestr(connection, "X-Hop-Resp") &&
						     !strcasestr(connection, "close")),
			      "Connection: %s", connection);
		ck_assert_msg(r.connects == (i == 0 ? 1 : 0), "request %d opened %ld connections",
			      i, r.connects);
		http_reply_free(&r);
	}
	http_reuse_free(&conn);
	ck_assert_uint_eq(so_count(f.o, NULL), 2);
	fx_stop(&f);
}
END_TEST

/* A chunked response is passed on whole, and kept when it may be: the cache does not
 * need a Content-Length. */
START_TEST(test_chunked_response)
{
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/chunked", 200, "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
	       "Cache-Control: max-age=60\r\n", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
	get(&f, "/chunked", NULL, 200, "MISS", "hello world", NULL);
	get(&f, "/chunked", NULL, 200, "HIT", "hello world", NULL);
	ck_assert_uint_eq(so_count(f.o, NULL), 1);
	fx_stop(&f);
}
END_TEST

/* RFC 9112 §3.2.2: a request in absolute-form goes upstream in origin-form, with the
 * URL's authority as Host. */
START_TEST(test_absolute_form)
{
	static const char req[] = "GET http://www.example.test/abs?q=1 HTTP/1.1\r\n"
				  "Host: ignored.example\r\nConnection: close\r\n\r\n";
	char buf[4096], value[256];
	size_t got = 0;
	struct fx f;
	ssize_t n;
	int fd;

	fx_start(&f, NULL);
	route_ok(&f, "/abs?q=1");
	fd = http_raw_connect(f.p.port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "got %.60s", buf);
	expect_line(&f, "/abs?q=1", "GET /abs?q=1 HTTP/1.1");
	ck_assert_int_eq(so_last_field(f.o, "/abs?q=1", "Host", value, sizeof(value)), 1);
	ck_assert_str_eq(value, "www.example.test");
	fx_stop(&f);
}
END_TEST

/* The origin's own errors are answers, not failures: status, fields and body pass. */
START_TEST(test_origin_error_passes)
{
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/busy", 503, "Retry-After: 5\r\nContent-Type: text/plain\r\n", "busy");
	get(&f, "/busy", NULL, 503, NULL, "busy", &r);
	ck_assert_str_eq(http_reply_header(&r, "Retry-After"), "5");
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* Connections to the origin are kept alive and reused: requests one after the other,
 * from different clients, travel on one origin connection. */
START_TEST(test_origin_connection_reused)
{
	unsigned conns;
	struct fx f;

	fx_start(&f, NULL);
	route_ok(&f, "/again");
	for (int i = 0; i < 5; i++)
		get(&f, "/again", NULL, 200, NULL, NULL, NULL);
	ck_assert_uint_eq(so_count(f.o, NULL), 5);
	conns = so_connections(f.o);
	ck_assert_msg(conns == 1, "5 requests came on %u origin connections", conns);
	fx_stop(&f);
}
END_TEST

/* ---- responses not for sharing ---------------------------------------------------------- */

static const char *const not_shared[] = {
	"Cache-Control: private, max-age=60\r\n",
	"Cache-Control: no-store\r\n",
	"",	/* not explicitly fresh: nothing to store */
};

/* RFC 9111 §3, §5.2.2.3, §5.2.2.7: a private or no-store response is neither stored nor
 * handed to other clients waiting for the same URL: concurrent requests each reach the
 * origin and each get their own answer, and so do later ones. */
START_TEST(test_uncacheable_not_shared)
{
	enum { CLIENTS = 8, LATER = 3 };
	struct http_batch *b = http_batch_new();
	char bodies[CLIENTS + LATER][16];
	struct fx f;
	int n;

	fx_start(&f, NULL);
	so_set(f.o, "/mine", 200, not_shared[_i], SO_SERIAL);
	/* hold the answers while the others come, up to 1 s after the first: only makes the
	 * requests overlap, no result depends on it */
	so_hold(f.o, true);
	for (int i = 0; i < CLIENTS; i++)
		http_batch_add(b, "GET", proc_url(&f.p, "/mine"), NULL, NULL);
	for (n = 0; n < TIMEOUT_MS / 10 && so_count(f.o, "/mine") == 0; n++)
		http_batch_run(b, 10);
	for (n = 0; n < 100 && so_count(f.o, "/mine") < CLIENTS; n++)
		http_batch_run(b, 10);
	so_hold(f.o, false);
	ck_assert_int_eq(http_batch_run(b, 4 * TIMEOUT_MS), 0);
	for (int i = 0; i < CLIENTS; i++) {
		const struct http_reply *r = http_batch_reply(b, i);

		ck_assert_msg(r->status == 200, "client %d: status %ld (curl %d)", i, r->status,
			      r->curl_code);
		ck_assert_uint_eq(r->len, 8);
		expect_x_cache(r, "MISS", "a concurrent request");
		snprintf(bodies[i], sizeof(bodies[i]), "%s", r->body);
	}
	http_batch_free(b);
	for (int i = 0; i < LATER; i++) {
		struct http_reply r;

		/* the URL is hit-for-miss */
		get(&f, "/mine", NULL, 200, "BYPASS", NULL, &r);
		snprintf(bodies[CLIENTS + i], sizeof(bodies[0]), "%s", r.body);
		http_reply_free(&r);
	}
	for (int i = 0; i < CLIENTS + LATER; i++)
		for (int k = 0; k < i; k++)
			ck_assert_msg(strcmp(bodies[i], bodies[k]) != 0,
				      "clients %d and %d got the same answer %s", k, i, bodies[i]);
	ck_assert_uint_eq(so_count(f.o, NULL), CLIENTS + LATER);
	fx_stop(&f);
}
END_TEST

/* ---- the origin fails ------------------------------------------------------------------- */

/* Nothing listens on the backend's port: 502 with a reason, for every request and method,
 * and the proxy still stops cleanly. */
START_TEST(test_origin_down)
{
	static const char *const paths[] = { "/api/users/1", "/api/users/1", "/other" };
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_down(f.o);	/* connecting to the port is refused now */
	for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
		get(&f, paths[i], NULL, 502, NULL, NULL, &r);
		expect_error(&r, 502, NULL);
		http_reply_free(&r);
	}
	ck_assert_int_eq(http_request("POST", proc_url(&f.p, "/api/users"), NULL, "{}", 2, &r), 0);
	expect_error(&r, 502, NULL);
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* The origin accepts and never answers: 504 after --upstream-timeout; the proxy serves
 * on, and asks the origin again for the same URL. */
START_TEST(test_origin_hangs)
{
	struct http_reply r;
	struct fx f;

	fx_start(&f, (const char *const[]){ "--upstream-timeout", "1", NULL });
	route_ok(&f, "/slow");
	so_set_hang(f.o, "/slow");
	get(&f, "/slow", NULL, 504, NULL, NULL, &r);
	expect_error(&r, 504, NULL);
	http_reply_free(&r);
	ck_assert_uint_eq(so_count(f.o, NULL), 1);
	route_ok(&f, "/slow");
	get(&f, "/slow", NULL, 200, NULL, "ok", NULL);
	ck_assert_uint_eq(so_count(f.o, NULL), 2);
	fx_stop(&f);
}
END_TEST

static const struct {
	bool chunked;		/* the body is chunked, and its last chunk never comes */
	bool stall;		/* the origin then stalls, instead of closing */
	const char *name;
} cuts[] = {
	{ false, false, "closes after 1000 of 2000 bytes" },
	{ true, false, "closes after a chunk, without the last one" },
	{ false, true, "stalls after 1000 of 2000 bytes" },
	{ true, true, "stalls after a chunk" },
};

/* The origin dies or stalls mid-body, 1000 bytes into a body announced longer (by
 * Content-Length, or by chunked coding without its last chunk): the client's transfer fails
 * (never a short body presented as complete), nothing is stored - the next request for the
 * URL is a MISS that reaches the origin - and the proxy serves on. */
START_TEST(test_origin_fails_mid_body)
{
	char body[1100] = "";
	struct http_reply r;
	struct fx f;
	int ret;

	fx_start(&f, (const char *const[]){ "--upstream-timeout", "1", NULL });
	if (cuts[_i].chunked)
		strcpy(body, "3e8\r\n");	/* a chunk of 1000 bytes */
	memset(body + strlen(body), 'x', 1000);
	so_set(f.o, "/cut", 200, cuts[_i].chunked ? "Transfer-Encoding: chunked\r\n"
	       "Cache-Control: max-age=60\r\n" : "Cache-Control: max-age=60\r\n", body);
	(cuts[_i].stall ? so_set_stall : so_set_cut)(f.o, "/cut", strlen(body));
	ret = http_request("GET", proc_url(&f.p, "/cut"), NULL, NULL, 0, &r);
	ck_assert_msg(ret != 0, "the origin %s, yet the client got a complete %ld of %zu bytes",
		      cuts[_i].name, r.status, r.len);
	ck_assert_msg(r.len <= 1000, "%zu bytes", r.len);
	http_reply_free(&r);
	ck_assert_uint_eq(so_count(f.o, NULL), 1);

	so_set(f.o, "/cut", 200, "Cache-Control: max-age=60\r\n", "whole");
	get(&f, "/cut", NULL, 200, "MISS", "whole", NULL);	/* after the cut */
	ck_assert_uint_eq(so_count(f.o, NULL), 2);
	get(&f, "/cut", NULL, 200, "HIT", "whole", NULL);	/* the complete answer */
	ck_assert_uint_eq(so_count(f.o, NULL), 2);
	fx_stop(&f);
}
END_TEST

/* The waiting list is bounded in time (--coalesce-timeout): a request that joined a fetch
 * whose origin does not answer gives up waiting and fetches on its own, before the
 * stuck fetch times out (--upstream-timeout). */
START_TEST(test_coalesce_timeout)
{
	/* the stuck fetch outlives the test: the drain on SIGTERM cuts it short */
	const char *const args[] = { "--coalesce-timeout", "1", "--upstream-timeout", "20",
				     "--drain-timeout", "1", NULL };
	struct http_batch *b = http_batch_new();
	struct fx f;
	int tries;

	fx_start(&f, args);
	route_ok(&f, "/stuck");
	so_set_hang(f.o, "/stuck");
	http_batch_add(b, "GET", proc_url(&f.p, "/stuck"), NULL, NULL);
	for (tries = 0; tries < TIMEOUT_MS && so_count(f.o, NULL) == 0; tries++)
		http_batch_run(b, 1);
	ck_assert_uint_eq(so_count(f.o, NULL), 1);
	route_ok(&f, "/stuck");	/* the next request gets an answer */
	http_batch_add(b, "GET", proc_url(&f.p, "/stuck"), NULL, NULL);
	/* the second is answered on its own fetch; the first still waits */
	for (tries = 0; tries < TIMEOUT_MS && http_batch_reply(b, 1)->status == 0 &&
			http_batch_reply(b, 1)->curl_code == 0; tries++)
		http_batch_run(b, 1);
	ck_assert_int_eq(http_batch_reply(b, 1)->status, 200);
	ck_assert_str_eq(http_batch_reply(b, 1)->body, "ok");
	ck_assert_int_eq(http_batch_reply(b, 0)->status, 0);
	ck_assert_uint_eq(so_count(f.o, NULL), 2);
	http_batch_free(b);	/* the first client leaves */
	fx_stop(&f);
}
END_TEST

/* ---- malformed requests ----------------------------------------------------------------- */

/* Sends <req> on a new connection and returns the status of the answer (0 when the proxy
 * closed without one). Reads the status line only, so it does not depend on whether the
 * proxy keeps the connection open. */
static int raw_status(const struct proc *p, const char *req)
{
	int fd = http_raw_connect(p->port);
	char buf[4096];
	size_t got = 0;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		ck_assert_msg(poll(&pfd, 1, TIMEOUT_MS) == 1, "no answer to %s", req);
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (got == 0)
		return 0;
	return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
}

static const struct {
	const char *req;
	int status;
} malformed[] = {
	/* RFC 9112 §3.2: origin-form or absolute-form, nothing else */
	{ "GET users/1 HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	{ "GET http://user@x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	/* §3.2: exactly one Host in HTTP/1.1 */
	{ "GET /a HTTP/1.1\r\n\r\n", 400 },
	{ "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
	/* §6.1, §6.3: framing that could be read two ways */
	{ "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}", 400 },
	{ "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400 },
	/* §5: a field line without a colon */
	{ "GET /a HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400 },
};

/* Malformed requests get a 400 from the proxy, never reach the origin, and cost nothing
 * else: the next request is served. */
START_TEST(test_malformed_request)
{
	struct fx f;
	int status;

	fx_start(&f, NULL);
	route_ok(&f, "/after");
	status = raw_status(&f.p, malformed[_i].req);
	ck_assert_msg(status == malformed[_i].status, "%s: status %d, want %d", malformed[_i].req,
		      status, malformed[_i].status);
	ck_assert_uint_eq(so_count(f.o, NULL), 0);
	get(&f, "/after", NULL, 200, NULL, NULL, NULL);
	ck_assert_uint_eq(so_count(f.o, NULL), 1);
	fx_stop(&f);
}
END_TEST

static Suite *scripted_suite(void)
{
	Suite *s = suite_create("proxy-scripted");
	TCase *tc = tcase_create("scripted-origin");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_request_fields);
	tcase_add_test(tc, test_response_fields);
	tcase_add_test(tc, test_chunked_response);
	tcase_add_test(tc, test_absolute_form);
	tcase_add_test(tc, test_origin_error_passes);
	tcase_add_test(tc, test_origin_connection_reused);
	tcase_add_loop_test(tc, test_uncacheable_not_shared, 0, ARRAY_LEN(not_shared));
	tcase_add_test(tc, test_origin_down);
	tcase_add_test(tc, test_origin_hangs);
	tcase_add_loop_test(tc, test_origin_fails_mid_body, 0, ARRAY_LEN(cuts));
	tcase_add_test(tc, test_coalesce_timeout);
	tcase_add_loop_test(tc, test_malformed_request, 0, ARRAY_LEN(malformed));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(scripted_suite)

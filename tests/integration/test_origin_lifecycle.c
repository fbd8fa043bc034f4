/* Integration tests: mtps-origin's life - start-up failures, --latency-ms without blocking
 * workers, and the graceful drain on SIGTERM / SIGINT. Each test starts its own server. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "proc.h"

#define TIMEOUT_MS 60000	/* generous bounds, never waits: the server may run under valgrind */

static const char *origin_path(void)
{
	return getenv("MTPS_ORIGIN");
}

static void start(struct proc *p, const char *const *args)
{
	int r = proc_start(p, origin_path(), args, NULL, TIMEOUT_MS);

	ck_assert_msg(r == 0, "cannot start mtps-origin: %d", r);
}

static long health_in_flight(const struct proc *p)
{
	struct http_reply r;
	struct json_object *o, *v;
	long n;

	ck_assert_int_eq(http_get(proc_url(p, "/health"), &r), 0);
	ck_assert_int_eq(r.status, 200);
	o = json_tokener_parse(r.body);
	ck_assert(json_object_object_get_ex(o, "in_flight", &v));
	n = (long)json_object_get_int64(v);
	json_object_put(o);
	http_reply_free(&r);
	return n;
}

/* Drives <b> until the server reports <n> requests in flight besides the /health probe.
 * Bounded by TIMEOUT_MS; no sleeping: each probe is a real request. */
static void wait_in_flight(struct http_batch *b, const struct proc *p, long n)
{
	for (int tries = 0; tries < 100000; tries++) {
		http_batch_run(b, 10);
		if (health_in_flight(p) >= n + 1)
			return;
	}
	ck_abort_msg("the server never had %ld requests in flight", n);
}

static bool connect_refused(int port)
{
	int fd = http_raw_connect(port);

	if (fd >= 0)
		close(fd);
	return fd == -ECONNREFUSED;
}

START_TEST(test_stop_idle)
{
	struct proc p;

	start(&p, NULL);
	ck_assert_int_eq(proc_stop(&p, _i == 0 ? SIGTERM : SIGINT, TIMEOUT_MS), 0);
}
END_TEST

START_TEST(test_port_in_use)
{
	struct proc a;
	char port[16], out[4096];
	const char *args[] = { "--port", port, NULL };

	start(&a, NULL);
	snprintf(port, sizeof(port), "%d", a.port);
	ck_assert_int_eq(proc_run(origin_path(), args, out, sizeof(out), TIMEOUT_MS), 1);
	ck_assert_msg(strstr(out, "Address already in use"), "output: %s", out);
	ck_assert_msg(strstr(out, port), "output names no port: %s", out);
	ck_assert_int_eq(proc_stop(&a, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

START_TEST(test_bad_option_exits_2)
{
	const char *args[] = { "--latency-ms", "-5", NULL };
	char out[1024];

	ck_assert_int_eq(proc_run(origin_path(), args, out, sizeof(out), TIMEOUT_MS), 2);
	ck_assert_msg(strstr(out, "latency-ms"), "output: %s", out);
}
END_TEST

/* --latency-ms delays /api/ routes, never /health; a delayed request holds no worker: with
 * one worker thread, /health still answers while twenty delayed requests wait. */
START_TEST(test_latency_does_not_block)
{
	const char *args[] = { "--threads", "1", "--latency-ms", "5000", NULL };
	struct http_batch *b = http_batch_new();
	struct proc p;

	start(&p, args);
	for (int i = 0; i < 20; i++)
		http_batch_add(b, "GET", proc_url(&p, "/api/test"), NULL, NULL);
	wait_in_flight(b, &p, 20);
	ck_assert_int_eq(http_batch_run(b, TIMEOUT_MS), 0);
	for (int i = 0; i < 20; i++) {
		const struct http_reply *r = http_batch_reply(b, i);

		ck_assert_int_eq(r->status, 200);
		ck_assert(r->seconds >= 5.0);	/* a lower bound: never flaky */
	}
	http_batch_free(b);
	ck_assert_int_eq(proc_stop(&p, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

/* SIGTERM with a request in flight: new connections are refused at once, the request
 * still gets its whole answer (with Connection: close), then the server exits 0. */
START_TEST(test_drain_finishes_in_flight)
{
	const char *args[] = { "--latency-ms", "5000", NULL };
	struct http_batch *b = http_batch_new();
	const struct http_reply *r;
	struct proc p;
	int refused = 0;

	start(&p, args);
	http_batch_add(b, "GET", proc_url(&p, "/api/users/1"), NULL, NULL);
	wait_in_flight(b, &p, 1);
	kill(p.pid, SIGTERM);
	for (int tries = 0; tries < 100000 && !refused; tries++)
		refused = connect_refused(p.port);	/* the signal is asynchronous */
	ck_assert_msg(refused, "still accepting connections after SIGTERM");
	ck_assert_int_eq(http_batch_run(b, TIMEOUT_MS), 0);
	r = http_batch_reply(b, 0);
	ck_assert_int_eq(r->curl_code, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(http_reply_header(r, "Connection"), "close");
	ck_assert_ptr_nonnull(strstr(r->body, "\"id\":1"));
	http_batch_free(b);
	ck_assert_int_eq(proc_wait(&p, TIMEOUT_MS), 0);
}
END_TEST

/* A drain is bounded: --drain-timeout, or a second signal, ends it with exit 0. */
START_TEST(test_drain_bounded)
{
	const char *args[] = { "--latency-ms", "600000", "--drain-timeout", _i == 0 ? "200ms" : "10m",
			       NULL };
	struct http_batch *b = http_batch_new();
	struct proc p;

	start(&p, args);
	http_batch_add(b, "GET", proc_url(&p, "/api/test"), NULL, NULL);
	wait_in_flight(b, &p, 1);
	kill(p.pid, SIGTERM);
	if (_i == 1) {
		/* wait until the first signal took effect, then send the second */
		bool refused = false;

		for (int tries = 0; tries < 100000 && !refused; tries++) {
			http_batch_run(b, 1);
			refused = connect_refused(p.port);
		}
		ck_assert(refused);
		kill(p.pid, SIGTERM);
	}
	ck_assert_int_eq(proc_wait(&p, TIMEOUT_MS), 0);
	http_batch_run(b, TIMEOUT_MS);
	http_batch_free(b);
}
END_TEST

/* Requests on idle keep-alive connections while the server stops: each gets an answer or
 * a closed connection, and the server exits cleanly. Under the sanitizer build or valgrind
 * this is where a use of the delay queue after its release would show. */
START_TEST(test_stop_with_idle_keepalive)
{
	const char *args[] = { "--latency-ms", "1", "--threads", "2", NULL };
	enum { CONNS = 40 };
	void *conn[CONNS] = { NULL };
	struct proc p;

	start(&p, args);
	for (int i = 0; i < CONNS; i++) {
		struct http_reply r;

		ck_assert_int_eq(http_request_reuse(&conn[i], "GET", proc_url(&p, "/api/users/1"), NULL,
						    NULL, 0, &r), 0);
		ck_assert_int_eq(r.status, 200);
		http_reply_free(&r);
	}
	kill(p.pid, SIGTERM);
	for (int i = 0; i < CONNS; i++) {
		struct http_reply r;

		/* either answered, or refused/closed: both are fine; a crash is not */
		if (http_request_reuse(&conn[i], "GET", proc_url(&p, "/api/test"), NULL, NULL, 0,
				       &r) == 0)
			ck_assert_int_eq(r.status, 200);
		http_reply_free(&r);
		http_reuse_free(&conn[i]);
	}
	ck_assert_int_eq(proc_wait(&p, TIMEOUT_MS), 0);
}
END_TEST

static const char *etag_of(const struct proc *p, const char *path, char *buf, size_t len)
{
	struct http_reply r;

	ck_assert_int_eq(http_get(proc_url(p, path), &r), 0);
	ck_assert_int_eq(r.status, 200);
	snprintf(buf, len, "%s", http_reply_header(&r, "ETag"));
	http_reply_free(&r);
	return buf;
}

/* A strong entity-tag names bytes (RFC 9110 §8.8.3): instances with the same data share
 * tags, so a cache may revalidate a copy from one against another; instances whose data
 * differ under the same id and version never do. */
START_TEST(test_etags_across_instances)
{
	const char *const json[] = { "Content-Type: application/json", NULL };
	const char *alice = "{\"name\":\"Alice\",\"email\":\"alice@example.org\"}";
	const char *bob = "{\"name\":\"Bob\",\"email\":\"bob@example.org\"}";
	char ta[64], tb[64];
	struct proc a, b;
	struct http_reply r;

	start(&a, NULL);
	start(&b, NULL);
	ck_assert_str_eq(etag_of(&a, "/api/users/2", ta, sizeof(ta)),
			 etag_of(&b, "/api/users/2", tb, sizeof(tb)));
	ck_assert_str_eq(etag_of(&a, "/api/users", ta, sizeof(ta)),
			 etag_of(&b, "/api/users", tb, sizeof(tb)));
	ck_assert_int_eq(http_request("POST", proc_url(&a, "/api/users"), json, alice, strlen(alice),
				      &r), 0);
	http_reply_free(&r);
	ck_assert_int_eq(http_request("POST", proc_url(&b, "/api/users"), json, bob, strlen(bob), &r),
			 0);
	http_reply_free(&r);
	ck_assert_str_ne(etag_of(&a, "/api/users/6", ta, sizeof(ta)),
			 etag_of(&b, "/api/users/6", tb, sizeof(tb)));
	ck_assert_int_eq(proc_stop(&a, SIGTERM, TIMEOUT_MS), 0);
	ck_assert_int_eq(proc_stop(&b, SIGTERM, TIMEOUT_MS), 0);
}
END_TEST

static Suite *lifecycle_suite(void)
{
	Suite *s = suite_create("origin-lifecycle");
	TCase *tc = tcase_create("lifecycle");

	tcase_set_timeout(tc, 180);
	tcase_add_loop_test(tc, test_stop_idle, 0, 2);
	tcase_add_test(tc, test_port_in_use);
	tcase_add_test(tc, test_bad_option_exits_2);
	tcase_add_test(tc, test_latency_does_not_block);
	tcase_add_test(tc, test_drain_finishes_in_flight);
	tcase_add_loop_test(tc, test_drain_bounded, 0, 2);
	tcase_add_test(tc, test_stop_with_idle_keepalive);
	tcase_add_test(tc, test_etags_across_instances);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(lifecycle_suite)

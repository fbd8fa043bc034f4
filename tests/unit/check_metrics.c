/* Unit tests for proxy/metrics.c and admin_address_is_loopback(): what an exchange adds to
 * which counter (method, status class, cache outcome; coalesced fetches counted once
 * upstream; unknown back-ends ignored), label escaping in the Prometheus text, the JSON
 * rendering's totals, and which admin addresses count as loopback. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "check_main.h"
#include "metrics.h"

static struct exchange ex(const char *method, int status, enum exchange_cache cache,
			  const char *backend, int64_t upstream_us)
{
	return (struct exchange){
		.method = method,
		.target = "/",
		.version = "HTTP/1.1",
		.host = "h",
		.client = "127.0.0.1",
		.status = status,
		.cache = cache,
		.completed = true,
		.backend = backend,
		.bytes_in = 3,
		.bytes_out = 10,
		.upstream_us = upstream_us,
		.total_us = 1500,
	};
}

static const struct {
	const char *method;
	int status;
	enum metrics_method m;
	unsigned cls;
} rows[] = {
	{ "GET", 200, METRICS_GET, 2 },
	{ "HEAD", 304, METRICS_HEAD, 3 },
	{ "POST", 201, METRICS_POST, 2 },
	{ "PUT", 404, METRICS_PUT, 4 },
	{ "DELETE", 503, METRICS_DELETE, 5 },
	{ "PATCH", 100, METRICS_PATCH, 1 },
	{ "OPTIONS", 200, METRICS_OPTIONS, 2 },
	{ "BREW", 418, METRICS_OTHER, 4 },	/* unknown methods are OTHER */
	{ "-", 0, METRICS_OTHER, 0 },		/* no request line, no response: "none" */
	{ "get", 999, METRICS_OTHER, 0 },	/* methods are case-sensitive; 999 is no class */
};

START_TEST(test_classes)
{
	const char *names[] = { "a:1" };
	struct metrics *m = metrics_new(names, 1);
	struct exchange e = ex(rows[_i].method, rows[_i].status, EXCHANGE_MISS, NULL, -1);

	ck_assert_ptr_nonnull(m);
	metrics_observe(m, &e);
	ck_assert_uint_eq(atomic_load(&m->requests[rows[_i].m][rows[_i].cls][EXCHANGE_MISS]), 1);
	ck_assert_uint_eq(atomic_load(&m->bytes_in), 3);
	ck_assert_uint_eq(atomic_load(&m->bytes_out), 10);
	ck_assert_uint_eq(hist_count(&m->client_us), 1);
	metrics_free(m);
}
END_TEST

START_TEST(test_upstream_latency)
{
	const char *names[] = { "a:1", "b:2" };
	struct metrics *m = metrics_new(names, 2);
	struct exchange e;

	e = ex("GET", 200, EXCHANGE_MISS, "b:2", 700);
	metrics_observe(m, &e);
	e.coalesced = true;		/* a reader of the same fetch: not again */
	metrics_observe(m, &e);
	e = ex("GET", 200, EXCHANGE_MISS, "c:3", 900);	/* added by a reload since */
	metrics_observe(m, &e);
	e = ex("GET", 200, EXCHANGE_HIT, NULL, -1);
	e.completed = false;
	metrics_observe(m, &e);
	ck_assert_uint_eq(hist_count(&m->backends[0].upstream_us), 0);
	ck_assert_uint_eq(hist_count(&m->backends[1].upstream_us), 1);
	ck_assert_uint_eq(hist_max(&m->backends[1].upstream_us), 700);
	/* a name first seen now gets a series of its own, after the first ones */
	ck_assert_uint_eq(atomic_load(&m->nbackends), 3);
	ck_assert_str_eq(m->backends[2].name, "c:3");
	ck_assert_uint_eq(hist_max(&m->backends[2].upstream_us), 900);
	ck_assert_ptr_eq(metrics_backend(m, "b:2"), &m->backends[1]);
	ck_assert_uint_eq(hist_count(&m->upstream_us), 2);
	ck_assert_uint_eq(atomic_load(&m->coalesced), 1);
	ck_assert_uint_eq(atomic_load(&m->incomplete), 1);
	ck_assert_uint_eq(hist_count(&m->client_us), 4);
	metrics_free(m);
}
END_TEST

/* Renders into a string the caller frees. */
static char *render(const struct metrics *m, const struct metrics_view *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(out);
	metrics_prometheus(m, v, out);
	fclose(out);
	return buf;
}

START_TEST(test_prometheus)
{
	const char *names[] = { "a\"b\\c:1" };	/* a quote and a backslash: escaped */
	struct metrics *m = metrics_new(names, 1);
	struct metrics_view *v = calloc(1, sizeof(*v));
	struct exchange e = ex("GET", 200, EXCHANGE_HIT, NULL, -1);
	char *text;

	ck_assert_ptr_nonnull(v);
	for (int i = 0; i < 3; i++)
		metrics_observe(m, &e);
	v->nbackends = 1;
	v->backends[0] = (struct metrics_backend_view){
		.name = names[0], .state = "drained", .admin = "draining", .up = 1, .weight = 2,
		.effective_weight = 150, .requests = 7,
	};
	v->cache.objects = 5;
	text = render(m, v);
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_requests_total{method=\"GET\",code=\"2xx\","
					   "cache=\"HIT\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_cache_hits_total 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_cache_misses_total 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_cache_objects 5\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_upstream_requests_total{backend=\"a\\\"b\\\\c:1\"} 7\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_backend_weight{backend=\"a\\\"b\\\\c:1\"} 1.5\n"));
	ck_assert_ptr_nonnull(strstr(text, "{backend=\"a\\\"b\\\\c:1\",state=\"drained\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "{backend=\"a\\\"b\\\\c:1\",state=\"up\"} 0\n"));
	/* every client request was 1.5 ms: none at or under 1 ms, all at or under 2.5 ms */
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_client_latency_seconds_bucket{le=\"0.001\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_client_latency_seconds_bucket{le=\"0.0025\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_client_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_client_latency_seconds_sum 0.004500\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmtps_client_latency_seconds_count 3\n"));
	free(text);
	free(v);
	metrics_free(m);
}
END_TEST

START_TEST(test_json)
{
	const char *names[] = { "a:1" };
	struct metrics *m = metrics_new(names, 1);
	struct metrics_view *v = calloc(1, sizeof(*v));
	struct exchange e = ex("POST", 502, EXCHANGE_BYPASS, "a:1", 100);
	struct json_object *o, *x;

	metrics_observe(m, &e);
	v->nbackends = 1;
	v->backends[0] = (struct metrics_backend_view){ .name = "a:1", .state = "up",
							.admin = "enabled" };
	v->nevents = 1;
	v->events[0] = (struct metrics_event_view){ .at = 1000, .seconds_ago = 2,
						    .backend = "a:1", .state = "down",
						    .why = "health checks fail" };
	o = metrics_json(m, v);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "requests", &x));
	ck_assert_int_eq(json_object_get_int(json_object_object_get(x, "total")), 1);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(
				 json_object_object_get(x, "by_status"), "5xx")), 1);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(
				 json_object_object_get(x, "by_method"), "POST")), 1);
	ck_assert_int_eq(json_object_get_int(json_object_object_get(
				 json_object_object_get(x, "by_cache"), "BYPASS")), 1);
	ck_assert(json_object_object_get_ex(o, "events", &x));
	ck_assert_str_eq(json_object_get_string(json_object_object_get(
				 json_object_array_get_idx(x, 0), "reason")), "health checks fail");
	ck_assert(json_object_object_get_ex(o, "backends", &x));
	x = json_object_object_get(json_object_array_get_idx(x, 0), "latency");
	ck_assert_int_eq(json_object_get_int(json_object_object_get(x, "count")), 1);
	json_object_put(o);
	free(v);
	metrics_free(m);
}
END_TEST

static const struct {
	const char *addr;
	bool loopback;
} addrs[] = {
	{ "127.0.0.1:9080", true },
	{ "127.1.2.3:0", true },
	{ "[::1]:9080", true },
	{ "0.0.0.0:9080", false },
	{ "[::]:9080", false },
	{ "10.0.0.1:9080", false },
	{ "128.0.0.1:9080", false },
	{ "[::ffff:127.0.0.1]:9080", false },	/* mapped: not ::1 */
	{ "localhost:9080", false },		/* names are not taken */
};

START_TEST(test_loopback)
{
	ck_assert_msg(admin_address_is_loopback(addrs[_i].addr) == addrs[_i].loopback, "%s",
		      addrs[_i].addr);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_loop_test(tc, test_classes, 0, ARRAY_LEN(rows));
	tcase_add_test(tc, test_upstream_latency);
	tcase_add_test(tc, test_prometheus);
	tcase_add_test(tc, test_json);
	tcase_add_loop_test(tc, test_loopback, 0, ARRAY_LEN(addrs));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(metrics_suite)

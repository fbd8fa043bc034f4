/* Unit tests for mtps-bench's results: bench/stats.c (summary math, CSV and JSON writers),
 * bench/urls.c (URL sets and patterns) and the findings of bench/report.c. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check_main.h"
#include "report.h"
#include "stats.h"
#include "urls.h"

START_TEST(test_cache_parse)
{
	static const struct {
		const char *value;
		enum stats_cache want;
	} cases[] = {
		{ NULL, STATS_CACHE_NONE }, { "HIT", STATS_CACHE_HIT }, { "hit", STATS_CACHE_HIT },
		{ " MISS", STATS_CACHE_MISS }, { "STALE", STATS_CACHE_STALE },
		{ "REVALIDATED", STATS_CACHE_REVALIDATED }, { "BYPASS", STATS_CACHE_BYPASS },
		{ "HIT from squid", STATS_CACHE_HIT }, { "HITS", STATS_CACHE_OTHER },
		{ "", STATS_CACHE_OTHER },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		ck_assert_msg(stats_cache_parse(cases[i].value) == cases[i].want, "'%s'",
			      cases[i].value ? cases[i].value : "(null)");
}
END_TEST

/* 100 answers of 1..100 ms in 2 s: 50 requests/s, p50 50 ms, p99 99 ms (to the histogram's
 * 0.4 %), 3 HIT and 1 MISS: hit ratio 75 %. */
START_TEST(test_summary_math)
{
	struct stats *s = stats_new();
	struct stats_summary m;

	for (int i = 1; i <= 100; i++)
		stats_record(s, (uint64_t)i * 10000, (uint64_t)i * 1000, i <= 98 ? 200 : 503, 1000,
			     i <= 3 ? STATS_CACHE_HIT : i == 4 ? STATS_CACHE_MISS : STATS_CACHE_NONE,
			     i % 2 ? "a" : "b");
	stats_record_error(s, 5000, STATS_ERR_CONNECT);
	stats_record_error(s, 1500000, STATS_ERR_TIMEOUT);
	s->elapsed_us = 2000000;
	stats_summarize(s, &m);
	ck_assert_uint_eq(m.responses, 100);
	ck_assert_uint_eq(m.errors, 2);
	ck_assert_uint_eq(m.non_2xx_3xx, 2);
	ck_assert_uint_eq(m.bytes, 100000);
	ck_assert_double_eq_tol(m.requests_per_s, 50.0, 1e-9);
	ck_assert_double_eq_tol(m.bytes_per_s, 50000.0, 1e-9);
	ck_assert_double_eq_tol(m.p50_ms, 50.0, 50.0 * HIST_RELATIVE_ERROR);
	ck_assert_double_eq_tol(m.p99_ms, 99.0, 99.0 * HIST_RELATIVE_ERROR);
	ck_assert_double_eq_tol(m.max_ms, 100.0, 1e-9);
	ck_assert_double_eq_tol(m.mean_ms, 50.5, 1e-9);
	ck_assert_double_eq_tol(m.hit_ratio, 0.75, 1e-12);
	ck_assert_uint_eq(s->nbackends, 2);
	ck_assert_uint_eq(s->backends[0].count + s->backends[1].count, 100);
	ck_assert_uint_eq(s->nseconds, 2);
	ck_assert_uint_eq(s->seconds[0].responses, 99);	/* 10 ms .. 990 ms */
	ck_assert_uint_eq(s->seconds[1].responses, 1);
	ck_assert_uint_eq(s->seconds[1].errors, 1);
	stats_free(s);
}
END_TEST

/* No X-Cache header at all: the hit ratio is unknown (-1), not 0. Merging adds up. */
START_TEST(test_merge_and_no_header)
{
	struct stats *a = stats_new(), *b = stats_new();
	struct stats_summary m;

	stats_record(a, 0, 1000, 200, 10, STATS_CACHE_NONE, "x");
	stats_record(b, 1500000, 3000, 404, 20, STATS_CACHE_NONE, "y");
	a->elapsed_us = 1000000;
	b->elapsed_us = 2000000;
	stats_merge(a, b);
	stats_summarize(a, &m);
	ck_assert_double_eq(m.hit_ratio, -1.0);
	ck_assert_uint_eq(m.responses, 2);
	ck_assert_uint_eq(a->status[200], 1);
	ck_assert_uint_eq(a->status[404], 1);
	ck_assert_uint_eq(a->elapsed_us, 2000000);
	ck_assert_uint_eq(a->nseconds, 2);
	ck_assert_uint_eq(a->nbackends, 2);
	stats_free(a);
	stats_free(b);
}
END_TEST

static char *written(int (*fn)(const struct stats *, FILE *), const struct stats *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fn(s, f), 0);
	fclose(f);
	return buf;
}

START_TEST(test_csv)
{
	struct stats *s = stats_new();
	char *csv;

	stats_record(s, 100, 2000, 200, 500, STATS_CACHE_HIT, NULL);
	stats_record(s, 200, 4000, 200, 500, STATS_CACHE_MISS, NULL);
	stats_record(s, 1000100, 1000, 200, 100, STATS_CACHE_HIT, NULL);
	stats_record_error(s, 1000200, STATS_ERR_IO);
	csv = written(stats_write_series_csv, s);
	ck_assert_str_eq(csv, "second,responses,bytes,errors,hits,mean_latency_ms\n"
			      "0,2,1000,0,1,3.000\n"
			      "1,1,100,1,1,1.000\n");
	free(csv);
	csv = written(stats_write_percentiles_csv, s);
	ck_assert_ptr_nonnull(strstr(csv, "percentile,all_ms,hit_ms,miss_ms\n0,1.000,1.000,4.000\n"));
	ck_assert_ptr_nonnull(strstr(csv, "\n100,4.000,2.000,4.000\n"));
	ck_assert_uint_eq(strlen(csv) > 0 && csv[strlen(csv) - 1] == '\n', 1);
	free(csv);
	stats_free(s);

	/* an empty column stays empty, not 0 */
	s = stats_new();
	stats_record(s, 0, 1000, 200, 1, STATS_CACHE_NONE, NULL);
	csv = written(stats_write_percentiles_csv, s);
	ck_assert_ptr_nonnull(strstr(csv, "\n50,1.000,,\n"));
	free(csv);
	stats_free(s);
}
END_TEST

START_TEST(test_json)
{
	struct stats *s = stats_new();
	struct json_object *o, *back, *v, *w;
	const char *text;

	stats_record(s, 0, 1000, 200, 10, STATS_CACHE_HIT, "origin-1");
	stats_record(s, 0, 3000, 200, 10, STATS_CACHE_MISS, "origin-2");
	stats_record(s, 1200000, 2000, 304, 0, STATS_CACHE_REVALIDATED, "origin-1");
	stats_record_error(s, 0, STATS_ERR_TIMEOUT);
	s->elapsed_us = 1500000;
	o = stats_to_json(s);
	text = json_object_to_json_string(o);
	back = json_tokener_parse(text);	/* what a reader of the file gets */
	ck_assert_ptr_nonnull(back);
	ck_assert(json_object_object_get_ex(back, "responses", &v));
	ck_assert_int_eq(json_object_get_int(v), 3);
	ck_assert(json_object_object_get_ex(back, "requests_per_s", &v));
	ck_assert_double_eq_tol(json_object_get_double(v), 2.0, 1e-9);
	ck_assert(json_object_object_get_ex(back, "status", &v));
	ck_assert(json_object_object_get_ex(v, "304", &w));
	ck_assert_int_eq(json_object_get_int(w), 1);
	ck_assert(json_object_object_get_ex(back, "errors_by_kind", &v));
	ck_assert(json_object_object_get_ex(v, "timeout", &w));
	ck_assert_int_eq(json_object_get_int(w), 1);
	ck_assert(json_object_object_get_ex(back, "x_cache", &v));
	ck_assert(json_object_object_get_ex(v, "HIT", &w));
	ck_assert(json_object_object_get_ex(w, "count", &w));
	ck_assert_int_eq(json_object_get_int(w), 1);
	ck_assert(json_object_object_get_ex(back, "hit_ratio", &v));
	ck_assert_double_eq_tol(json_object_get_double(v), 1.0 / 3.0, 1e-9);
	ck_assert(json_object_object_get_ex(back, "x_served_by", &v));
	ck_assert(json_object_object_get_ex(v, "origin-1", &w));
	ck_assert_int_eq(json_object_get_int(w), 2);
	ck_assert(json_object_object_get_ex(back, "series", &v));
	ck_assert_uint_eq(json_object_array_length(v), 2);
	ck_assert(json_object_object_get_ex(back, "latency_ms", &v));
	ck_assert(json_object_object_get_ex(v, "p99.9", &w));
	json_object_put(back);
	json_object_put(o);
	stats_free(s);
}
END_TEST

START_TEST(test_urls)
{
	struct urls u = { 0 };
	char err[256], buf[URLS_MAX_LEN];

	ck_assert_int_eq(urls_add(&u, "http://h:1/a", err, sizeof(err)), 0);
	ck_assert_int_eq(urls_add(&u, "http://h:1/item/{5..9}?x=1", err, sizeof(err)), 0);
	ck_assert_uint_eq(u.total, 6);
	ck_assert_int_eq(urls_get(&u, 0, buf, sizeof(buf)), 12);
	ck_assert_str_eq(buf, "http://h:1/a");
	urls_get(&u, 1, buf, sizeof(buf));
	ck_assert_str_eq(buf, "http://h:1/item/5?x=1");
	urls_get(&u, 5, buf, sizeof(buf));
	ck_assert_str_eq(buf, "http://h:1/item/9?x=1");
	ck_assert_int_eq(urls_get(&u, 6, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(urls_get(&u, 5, buf, 10), -ENOSPC);

	static const char *const bad[] = {
		"ftp://h/", "h:1/x", "http://h/{9..5}", "http://h/{1..}", "http://h/{a..b}",
		"http://h/{1..2}/{3..4}", "http://h/}", "http://h/a b",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ck_assert_msg(urls_add(&u, bad[i], err, sizeof(err)) == -EINVAL, "%s", bad[i]);
	ck_assert_uint_eq(u.total, 6);
	urls_free(&u);
}
END_TEST

START_TEST(test_urls_file)
{
	char path[] = "/tmp/check_urls_XXXXXX", err[512];
	struct urls u = { 0 };
	FILE *f;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs("# comment\n\n  http://h/x/{1..3}  \nhttp://h/y\r\n", f);
	fclose(f);
	ck_assert_int_eq(urls_add_file(&u, path, err, sizeof(err)), 0);
	ck_assert_uint_eq(u.total, 4);
	urls_free(&u);
	f = fopen(path, "w");
	fputs("http://h/ok\nnot a url\n", f);
	fclose(f);
	ck_assert_int_eq(urls_add_file(&u, path, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, ":2: "));
	urls_free(&u);
	unlink(path);
}
END_TEST

/* The report's sentences come from the numbers: 20 ms direct vs 0.5 ms hits is 40x. */
START_TEST(test_findings)
{
	const char *suite =
		"{\"scenarios\":["
		"{\"name\":\"status\",\"verdict\":\"PASS\",\"notes\":[],\"metrics\":{}},"
		"{\"name\":\"cache\",\"verdict\":\"PASS\",\"notes\":[],\"metrics\":{"
		"\"direct_p50_ms\":20.0,\"proxy_p50_ms\":0.8,\"hit_p50_ms\":0.5,\"hit_ratio\":0.973,"
		"\"direct_p99_ms\":25,\"proxy_p99_ms\":21,\"direct_rps\":400,\"proxy_rps\":4000}},"
		"{\"name\":\"concurrency\",\"verdict\":\"PASS\",\"notes\":[],\"metrics\":{\"steps\":["
		"{\"connections\":1,\"requests_per_s\":1000,\"p99_ms\":0.1},"
		"{\"connections\":8,\"requests_per_s\":5000,\"p99_ms\":0.5},"
		"{\"connections\":64,\"requests_per_s\":4000,\"p99_ms\":9}]}},"
		"{\"name\":\"crud\",\"verdict\":\"FAIL\",\"notes\":[\"POST ok\","
		"\"FAIL: GET after PUT: stale\"],\"metrics\":{}}]}";
	struct json_object *o = json_tokener_parse(suite), *f;
	char all[4096] = "";

	ck_assert_ptr_nonnull(o);
	f = report_findings(o);
	for (size_t i = 0; i < json_object_array_length(f); i++) {
		strcat(all, json_object_get_string(json_object_array_get_idx(f, i)));
		strcat(all, "\n");
	}
	ck_assert_msg(strstr(all, "3 of 4 scenarios passed; failed: crud.") != NULL, "%s", all);
	ck_assert_msg(strstr(all, "Cached reads were 40.0x faster at p50") != NULL, "%s", all);
	ck_assert_msg(strstr(all, "hit ratio 97.3 %") != NULL, "%s", all);
	ck_assert_msg(strstr(all, "10.0x") != NULL, "%s", all);
	ck_assert_msg(strstr(all, "peaked at 5000 requests/s with 8 connections") != NULL, "%s",
		      all);
	ck_assert_msg(strstr(all, "failed: GET after PUT: stale") != NULL, "%s", all);
	json_object_put(f);
	json_object_put(o);
}
END_TEST

static Suite *bench_stats_suite(void)
{
	Suite *s = suite_create("bench_stats");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_cache_parse);
	tcase_add_test(tc, test_summary_math);
	tcase_add_test(tc, test_merge_and_no_header);
	tcase_add_test(tc, test_csv);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_urls);
	tcase_add_test(tc, test_urls_file);
	tcase_add_test(tc, test_findings);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(bench_stats_suite)

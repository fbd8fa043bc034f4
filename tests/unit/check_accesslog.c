/* Unit tests for proxy/accesslog.c: the combined and JSON lines as documented (escaping,
 * missing fields, long fields cut), the file: reopen after a rename, lines from threads
 * that write at once stay whole. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "accesslog.h"
#include "check_main.h"

/* 2026-11-26 06:46:20.123 UTC */
#define T0 1795675580

static struct exchange example(void)
{
	return (struct exchange){
		.method = "GET",
		.target = "/api/users/1?x=1",
		.version = "HTTP/1.1",
		.host = "example.com",
		.client = "127.0.0.1",
		.user_agent = "curl/8.5.0",
		.referer = NULL,
		.status = 200,
		.cache = EXCHANGE_MISS,
		.completed = true,
		.backend = "127.0.0.1:3001",
		.bytes_out = 61,
		.upstream_us = 12345,
		.total_us = 13999,
		.start = { T0, 123000000 },
	};
}

static const char *line_of(enum accesslog_format fmt, const struct exchange *ex)
{
	static char buf[ACCESSLOG_MAX_LINE];
	size_t n = accesslog_format_line(fmt, ex, buf, sizeof(buf));

	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(buf[n - 1], '\n');
	buf[n - 1] = '\0';
	ck_assert_uint_eq(strlen(buf), n - 1);	/* no NUL inside */
	return buf;
}

START_TEST(test_combined)
{
	struct exchange ex = example();

	ck_assert_str_eq(line_of(ACCESSLOG_COMBINED, &ex),
			 "127.0.0.1 - - [26/Nov/2026:06:46:20 +0000] \"GET /api/users/1?x=1 "
			 "HTTP/1.1\" 200 61 \"-\" \"curl/8.5.0\" \"MISS\" backend=127.0.0.1:3001 "
			 "upstream=0.012 total=0.013");
	/* a hit: no backend, no upstream time */
	ex.cache = EXCHANGE_HIT;
	ex.backend = NULL;
	ex.upstream_us = -1;
	ex.referer = "http://a/\"b\"\\c";
	ex.user_agent = "tab\there\x01\xc3\xa9";
	ck_assert_str_eq(line_of(ACCESSLOG_COMBINED, &ex),
			 "127.0.0.1 - - [26/Nov/2026:06:46:20 +0000] \"GET /api/users/1?x=1 "
			 "HTTP/1.1\" 200 61 \"http://a/\\\"b\\\"\\\\c\" \"tab\\x09here\\x01\\xC3"
			 "\\xA9\" \"HIT\" backend=- upstream=- total=0.013");
	/* no request line: "-", as nginx writes it */
	ex = example();
	ex.method = "-";
	ex.status = 400;
	ex.cache = EXCHANGE_BYPASS;
	ck_assert_ptr_nonnull(strstr(line_of(ACCESSLOG_COMBINED, &ex), "] \"-\" 400 61 "));
}
END_TEST

START_TEST(test_json)
{
	struct exchange ex = example();
	struct json_object *j, *v;

	ex.user_agent = "q\"\\\x01\xc3\xa9";
	j = json_tokener_parse(line_of(ACCESSLOG_JSON, &ex));
	ck_assert_ptr_nonnull(j);
	ck_assert(json_object_object_get_ex(j, "time", &v));
	ck_assert_str_eq(json_object_get_string(v), "2026-11-26T06:46:20.123Z");
	ck_assert(json_object_object_get_ex(j, "user_agent", &v));
	/* bytes outside printable ASCII as \u00XX: valid JSON whatever the client sent */
	ck_assert_str_eq(json_object_get_string(v), "q\"\\\x01\xc3\x83\xc2\xa9");
	ck_assert(json_object_object_get_ex(j, "referer", &v));
	ck_assert(json_object_is_type(v, json_type_null));
	ck_assert(json_object_object_get_ex(j, "upstream_time", &v));
	ck_assert(json_object_get_double(v) > 0.0119 && json_object_get_double(v) < 0.0121);
	ck_assert(json_object_object_get_ex(j, "cache", &v));
	ck_assert_str_eq(json_object_get_string(v), "MISS");
	ck_assert(json_object_object_get_ex(j, "status", &v));
	ck_assert_int_eq(json_object_get_int(v), 200);
	ck_assert(json_object_object_get_ex(j, "completed", &v));
	ck_assert(json_object_get_boolean(v));
	json_object_put(j);
}
END_TEST

/* A target far longer than a line: cut, and the line still parses and ends well. */
START_TEST(test_long_fields)
{
	static char big[40000];
	struct exchange ex = example();
	const char *l;
	struct json_object *j;

	memset(big, '"', sizeof(big) - 1);	/* every byte doubles when escaped */
	ex.target = big;
	ex.referer = big;
	ex.user_agent = big;
	l = line_of(ACCESSLOG_COMBINED, &ex);
	ck_assert_uint_lt(strlen(l), ACCESSLOG_MAX_LINE);
	ck_assert_ptr_nonnull(strstr(l, "\" \"MISS\" backend=127.0.0.1:3001 upstream=0.012"));
	j = json_tokener_parse(line_of(ACCESSLOG_JSON, &ex));
	ck_assert_ptr_nonnull(j);
	json_object_put(j);
}
END_TEST

static long count_lines(const char *path)
{
	char buf[1 << 16];
	long n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), f))
		n++;
	fclose(f);
	return n;
}

/* SIGUSR1 after logrotate renamed the file: the next line goes to a new file by the old
 * name. Turning the log off writes nothing; another path moves the log there. */
START_TEST(test_reopen)
{
	char dir[] = "/tmp/check_accesslog-XXXXXX", path[64], moved[64], other[64];
	struct accesslog *al = accesslog_new();
	struct exchange ex = example();

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(moved, sizeof(moved), "%s/access.log.1", dir);
	snprintf(other, sizeof(other), "%s/other.log", dir);
	accesslog_observe(al, &ex);		/* not open yet: nothing, no crash */
	ck_assert_int_eq(accesslog_open(al, path, ACCESSLOG_COMBINED), 0);
	accesslog_observe(al, &ex);
	ck_assert_int_eq(rename(path, moved), 0);
	accesslog_observe(al, &ex);		/* still the old file */
	ck_assert_int_eq(accesslog_reopen(al), 0);
	accesslog_observe(al, &ex);
	ck_assert_int_eq(count_lines(moved), 2);
	ck_assert_int_eq(count_lines(path), 1);
	ck_assert_int_eq(accesslog_open(al, "off", ACCESSLOG_COMBINED), 0);
	accesslog_observe(al, &ex);
	ck_assert_int_eq(count_lines(path), 1);
	ck_assert_int_eq(accesslog_open(al, other, ACCESSLOG_JSON), 0);
	accesslog_observe(al, &ex);
	ck_assert_int_eq(count_lines(other), 1);
	ck_assert_int_eq(count_lines(path), 1);
	ck_assert_int_eq(accesslog_open(al, "/nonexistent/dir/x.log", ACCESSLOG_JSON), -ENOENT);
	accesslog_observe(al, &ex);		/* a failed open changed nothing */
	ck_assert_int_eq(count_lines(other), 2);
	accesslog_free(al);
	unlink(path);
	unlink(moved);
	unlink(other);
	rmdir(dir);
}
END_TEST

#define WRITERS 4
#define LINES 2000

static void *writer(void *arg)
{
	struct exchange ex = example();

	for (int i = 0; i < LINES; i++)
		accesslog_observe(arg, &ex);
	return NULL;
}

/* Threads writing at once, with no lock: every line is whole. */
START_TEST(test_concurrent_lines)
{
	char path[] = "/tmp/check_accesslog-XXXXXX", buf[1 << 16];
	struct accesslog *al = accesslog_new();
	struct exchange ex = example();
	pthread_t t[WRITERS];
	const char *want;
	long n = 0;
	FILE *f;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	want = line_of(ACCESSLOG_COMBINED, &ex);
	snprintf(buf, sizeof(buf), "%s\n", want);
	ck_assert_int_eq(accesslog_open(al, path, ACCESSLOG_COMBINED), 0);
	for (int i = 0; i < WRITERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, writer, al), 0);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	accesslog_free(al);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	{
		char line[1 << 16];

		while (fgets(line, sizeof(line), f)) {
			ck_assert_str_eq(line, buf);
			n++;
		}
	}
	fclose(f);
	unlink(path);
	ck_assert_int_eq(n, WRITERS * LINES);
}
END_TEST

static Suite *accesslog_suite(void)
{
	Suite *s = suite_create("accesslog");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_combined);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_long_fields);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_concurrent_lines);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(accesslog_suite)

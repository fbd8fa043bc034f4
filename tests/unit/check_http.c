/* Unit tests for common/http.c: HTTP dates, entity-tag comparison, media types. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "check_main.h"
#include "http.h"

/* RFC 9110 §5.6.7: the example instant in its three formats, and what must be refused. */
static const struct {
	const char *in;
	int ret;
	time_t t;
} dates[] = {
	{ "Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777 },	/* IMF-fixdate */
	{ "Sunday, 06-Nov-94 08:49:37 GMT", 0, 784111777 },	/* obsolete RFC 850 */
	{ "Sun Nov  6 08:49:37 1994", 0, 784111777 },		/* asctime */
	{ "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0 },
	{ "Tue, 29 Feb 2000 12:00:00 GMT", 0, 951825600 },	/* leap day */
	{ "Thursday, 01-Jan-37 00:00:00 GMT", 0, 2114380800 },	/* 00-69 are 20xx */
	{ "Sat, 31 Dec 2033 23:59:60 GMT", 0, 2019686399 },	/* leap second clamps */
	{ "Sun, 06 Nov 1994 08:49:37 UTC", -EINVAL, 0 },	/* only GMT */
	{ "Sun, 6 Nov 1994 08:49:37 GMT", -EINVAL, 0 },		/* two-digit day */
	{ "Sun, 06 Nov 94 08:49:37 GMT", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:49 GMT", -EINVAL, 0 },
	{ "Sun, 06 Foo 1994 08:49:37 GMT", -EINVAL, 0 },
	{ "Sun, 31 Nov 1994 08:49:37 GMT", -EINVAL, 0 },	/* no such day */
	{ "Mon, 29 Feb 1900 00:00:00 GMT", -EINVAL, 0 },	/* 1900 was not leap */
	{ "Sun, 06 Nov 1994 24:00:00 GMT", -EINVAL, 0 },
	{ "Sun, 06 Nov 1994 08:49:37 GMT trailing", -EINVAL, 0 },
	{ "0", -EINVAL, 0 },					/* Expires: 0 is invalid */
	{ "", -EINVAL, 0 },
};

START_TEST(test_date_parse)
{
	time_t t = -1;
	int r = http_date_parse(dates[_i].in, &t);

	ck_assert_msg(r == dates[_i].ret, "http_date_parse(\"%s\") returned %d", dates[_i].in, r);
	if (r == 0)
		ck_assert_msg(t == dates[_i].t, "\"%s\" gave %lld, want %lld", dates[_i].in,
			      (long long)t, (long long)dates[_i].t);
}
END_TEST

START_TEST(test_date_format)
{
	char buf[HTTP_DATE_LEN];
	time_t back;

	http_date_format(784111777, buf);
	ck_assert_str_eq(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
	http_date_format(0, buf);
	ck_assert_str_eq(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
	for (time_t t = 0; t < 4000000000; t += 86400 * 37 + 3671) {
		http_date_format(t, buf);
		ck_assert_int_eq(http_date_parse(buf, &back), 0);
		ck_assert_int_eq(back, t);
	}
}
END_TEST

/* RFC 9110 §8.8.3.2, the comparison table, plus list and wildcard forms. */
static const struct {
	const char *list;
	const char *etag;
	int strong;
	int weak;
} etags[] = {
	{ "W/\"1\"", "W/\"1\"", 0, 1 },
	{ "W/\"1\"", "W/\"2\"", 0, 0 },
	{ "W/\"1\"", "\"1\"", 0, 1 },
	{ "\"1\"", "\"1\"", 1, 1 },
	{ "\"a\", \"b\",\"c\"", "\"b\"", 1, 1 },
	{ "\"a\" , W/\"b\"", "\"b\"", 0, 1 },
	{ "*", "\"anything\"", 1, 1 },
	{ " * ", "W/\"x\"", 1, 1 },
	{ "\"a,b\"", "\"a,b\"", 1, 1 },		/* a comma inside the quotes */
	{ "\"ab\"", "\"a\"", 0, 0 },
	{ "a", "\"a\"", 0, 0 },			/* unquoted: malformed */
	{ "", "\"a\"", 0, 0 },
	{ "\"a\"", "a", 0, 0 },			/* our own tag malformed */
};

START_TEST(test_etag_match)
{
	ck_assert_msg(http_etag_match(etags[_i].list, etags[_i].etag, true) == etags[_i].strong,
		      "strong %s vs %s", etags[_i].list, etags[_i].etag);
	ck_assert_msg(http_etag_match(etags[_i].list, etags[_i].etag, false) == etags[_i].weak,
		      "weak %s vs %s", etags[_i].list, etags[_i].etag);
}
END_TEST

static const struct {
	const char *value;
	int is_json;
} media[] = {
	{ "application/json", 1 },
	{ "Application/JSON", 1 },
	{ "application/json; charset=utf-8", 1 },
	{ "application/json ;charset=utf-8", 1 },
	{ "application/jsonx", 0 },
	{ "text/plain", 0 },
	{ "application/x-www-form-urlencoded", 0 },
	{ "", 0 },
};

START_TEST(test_media_type)
{
	ck_assert_int_eq(http_media_type_is(media[_i].value, "application/json"),
			 media[_i].is_json);
}
END_TEST

START_TEST(test_media_type_null)
{
	ck_assert(!http_media_type_is(NULL, "application/json"));
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_date_parse, 0, ARRAY_LEN(dates));
	tcase_add_test(tc, test_date_format);
	tcase_add_loop_test(tc, test_etag_match, 0, ARRAY_LEN(etags));
	tcase_add_loop_test(tc, test_media_type, 0, ARRAY_LEN(media));
	tcase_add_test(tc, test_media_type_null);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(http_suite)

/* Unit tests for proxy/policy.c: the RFC 9111 decisions of a shared cache, as tables. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "headers.h"
#include "policy.h"

/* RFC 9110 §5.6.7's example instant, and some around it. */
#define D 784111777
#define D_STR "Sun, 06 Nov 1994 08:49:37 GMT"
#define D_MINUS_60 "Sun, 06 Nov 1994 08:48:37 GMT"
#define D_PLUS_60 "Sun, 06 Nov 1994 08:50:37 GMT"
#define D_PLUS_3600 "Sun, 06 Nov 1994 09:49:37 GMT"

#define MAX POLICY_DELTA_MAX

/* Builds a field list from "Name: value" lines separated by '\n'. */
static void fields(struct header_list *l, const char *text)
{
	char buf[2048];

	memset(l, 0, sizeof(*l));
	snprintf(buf, sizeof(buf), "%s", text);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		ck_assert_msg(headers_add_line(l, line, strlen(line)) == 0, "bad line \"%s\"",
			      line);
}

static void read_response(struct policy_response *r, int status, const char *text,
			  time_t response_time)
{
	struct header_list l;

	fields(&l, text);
	policy_response_read(r, status, &l, response_time);
	headers_free(&l);
}

/* ---- Cache-Control ----------------------------------------------------------------------- */

static const struct {
	const char *values[3];		/* one call each, as for several fields */
	unsigned flags;
	long long max_age, s_maxage, max_stale, min_fresh, swr, sie;
	const char *rule;
} cc[] = {
	{ { "max-age=60" }, 0, 60, -1, -1, -1, -1, -1, "RFC 9111 §5.2.2.1" },
	{ { "MAX-AGE=60" }, 0, 60, -1, -1, -1, -1, -1,
	  "RFC 9111 §5.2: names are case-insensitive" },
	{ { "Max-Age=60, S-MaxAge=30" }, 0, 60, 30, -1, -1, -1, -1, "RFC 9111 §5.2.2.10" },
	{ { "max-age=\"60\"" }, 0, 60, -1, -1, -1, -1, -1,
	  "RFC 9111 §5.2: recipients accept the quoted form too" },
	{ { "max-age=60, max-age=30" }, 0, 30, -1, -1, -1, -1, -1,
	  "given twice: the most restrictive (smallest)" },
	{ { "max-age=30, max-age=60" }, 0, 30, -1, -1, -1, -1, -1, "...in either order" },
	{ { "max-age=60", "max-age=20" }, 0, 20, -1, -1, -1, -1, -1, "...across fields" },
	{ { "max-age=abc" }, 0, 0, -1, -1, -1, -1, -1, "RFC 9111 §4.2.1: invalid: stale, 0" },
	{ { "max-age=-1" }, 0, 0, -1, -1, -1, -1, -1, "RFC 9111 §1.2.2: delta-seconds is digits" },
	{ { "max-age=1.5" }, 0, 0, -1, -1, -1, -1, -1, "RFC 9111 §1.2.2: no fractions" },
	{ { "max-age=" }, 0, 0, -1, -1, -1, -1, -1, "an empty argument is invalid" },
	{ { "max-age" }, 0, 0, -1, -1, -1, -1, -1, "a missing argument is invalid" },
	{ { "s-maxage=x, max-age=60" }, 0, 60, 0, -1, -1, -1, -1, "an invalid s-maxage is 0" },
	{ { "max-age=2147483647" }, 0, 2147483647LL, -1, -1, -1, -1, -1, "2^31 - 1" },
	{ { "max-age=2147483648" }, 0, MAX, -1, -1, -1, -1, -1, "RFC 9111 §1.2.2: 2^31" },
	{ { "max-age=99999999999999999999999" }, 0, MAX, -1, -1, -1, -1, -1,
	  "RFC 9111 §1.2.2: too large to represent: 2^31" },
	{ { "foo, bar=baz, max-age=5, qux=\"1\"" }, 0, 5, -1, -1, -1, -1, -1,
	  "RFC 9111 §5.2.3: unknown extensions are ignored" },
	{ { "ext=\"a, max-age=1\", max-age=7" }, 0, 7, -1, -1, -1, -1, -1,
	  "a comma inside a quoted string separates nothing" },
	{ { "ext=\"a\\\"b, max-age=1\", max-age=7" }, 0, 7, -1, -1, -1, -1, -1,
	  "RFC 9110 §5.6.4: quoted-pair inside a quoted string" },
	{ { "max-age=5 ,, , no-store" }, CC_NO_STORE, 5, -1, -1, -1, -1, -1,
	  "RFC 9110 §5.6.1: empty list members are ignored" },
	{ { "max-age=60", "no-store" }, CC_NO_STORE, 60, -1, -1, -1, -1, -1,
	  "RFC 9110 §5.3: several fields are one list" },
	{ { "", "" }, 0, -1, -1, -1, -1, -1, -1, "empty fields" },
	{ { "max-stale" }, 0, -1, -1, MAX, -1, -1, -1,
	  "RFC 9111 §5.2.1.2: max-stale without a value: any staleness" },
	{ { "max-stale=30" }, 0, -1, -1, 30, -1, -1, -1, "RFC 9111 §5.2.1.2" },
	{ { "max-stale, max-stale=30" }, 0, -1, -1, 30, -1, -1, -1, "the smaller of the two" },
	{ { "max-stale=30, max-stale" }, 0, -1, -1, 30, -1, -1, -1, "...in either order" },
	{ { "max-stale=abc" }, 0, -1, -1, -1, -1, -1, -1, "an invalid max-stale is ignored" },
	{ { "min-fresh=10" }, 0, -1, -1, -1, 10, -1, -1, "RFC 9111 §5.2.1.3" },
	{ { "min-fresh=10, min-fresh=20" }, 0, -1, -1, -1, 20, -1, -1,
	  "min-fresh given twice: the most restrictive is the larger" },
	{ { "stale-while-revalidate=30, stale-if-error=60" }, 0, -1, -1, -1, -1, 30, 60,
	  "RFC 5861 §3, §4" },
	{ { "stale-if-error=abc" }, 0, -1, -1, -1, -1, -1, -1, "invalid: ignored" },
	{ { "no-cache" }, CC_NO_CACHE, -1, -1, -1, -1, -1, -1, "RFC 9111 §5.2.2.4" },
	{ { "no-cache=\"Set-Cookie\"" }, CC_NO_CACHE_FIELDS, -1, -1, -1, -1, -1, -1,
	  "RFC 9111 §5.2.2.4: qualified no-cache names fields" },
	{ { "no-cache=\"Set-Cookie, X-A\", max-age=9" }, CC_NO_CACHE_FIELDS, 9, -1, -1, -1, -1, -1,
	  "RFC 9111 §5.2.2.4: a list of fields" },
	{ { "no-cache=Set-Cookie" }, CC_NO_CACHE_FIELDS, -1, -1, -1, -1, -1, -1,
	  "the token form is accepted too" },
	{ { "No-Cache, no-cache=\"A\"" }, CC_NO_CACHE | CC_NO_CACHE_FIELDS, -1, -1, -1, -1, -1, -1,
	  "both forms" },
	{ { "private=\"Set-Cookie\"" }, CC_PRIVATE, -1, -1, -1, -1, -1, -1,
	  "RFC 9111 §5.2.2.7: qualified private is still private" },
	{ { "public, must-revalidate, proxy-revalidate, no-transform, immutable" },
	  CC_PUBLIC | CC_MUST_REVALIDATE | CC_PROXY_REVALIDATE | CC_NO_TRANSFORM | CC_IMMUTABLE,
	  -1, -1, -1, -1, -1, -1, "RFC 9111 §5.2.2, RFC 8246" },
	{ { "only-if-cached, NO-STORE, Private, must-understand" },
	  CC_ONLY_IF_CACHED | CC_NO_STORE | CC_PRIVATE | CC_MUST_UNDERSTAND, -1, -1, -1, -1, -1,
	  -1, "RFC 9111 §5.2.1.7, §5.2.2.3" },
	{ { "no-storex, xno-store, no-stor" }, 0, -1, -1, -1, -1, -1, -1,
	  "names match whole, not as prefixes" },
};

START_TEST(test_cc_parse)
{
	struct cache_control c;

	policy_cc_init(&c);
	for (int k = 0; k < 3 && cc[_i].values[k]; k++)
		policy_cc_parse(&c, cc[_i].values[k]);
	ck_assert_msg(c.flags == cc[_i].flags, "%s: flags %#x, want %#x", cc[_i].rule, c.flags,
		      cc[_i].flags);
	ck_assert_msg(c.max_age == cc[_i].max_age, "%s: max-age %lld", cc[_i].rule, c.max_age);
	ck_assert_msg(c.s_maxage == cc[_i].s_maxage, "%s: s-maxage %lld", cc[_i].rule,
		      c.s_maxage);
	ck_assert_msg(c.max_stale == cc[_i].max_stale, "%s: max-stale %lld", cc[_i].rule,
		      c.max_stale);
	ck_assert_msg(c.min_fresh == cc[_i].min_fresh, "%s: min-fresh %lld", cc[_i].rule,
		      c.min_fresh);
	ck_assert_msg(c.stale_while_revalidate == cc[_i].swr, "%s: stale-while-revalidate %lld",
		      cc[_i].rule, c.stale_while_revalidate);
	ck_assert_msg(c.stale_if_error == cc[_i].sie, "%s: stale-if-error %lld", cc[_i].rule,
		      c.stale_if_error);
}
END_TEST

START_TEST(test_cc_parse_null)
{
	struct cache_control c;

	policy_cc_init(&c);
	policy_cc_parse(&c, NULL);
	ck_assert_uint_eq(c.flags, 0);
	ck_assert_int_eq(c.max_age, -1);
}
END_TEST

/* ---- reading a response -------------------------------------------------------------------- */

START_TEST(test_response_read)
{
	struct policy_response r;

	read_response(&r, 203,
		      "Date: " D_STR "\nExpires: " D_PLUS_60 "\nAge: 12\nVary: Accept\n"
		      "cache-control: max-age=5\nCache-Control: public",
		      D + 2);
	ck_assert_int_eq(r.status, 203);
	ck_assert(r.has_date);
	ck_assert_int_eq(r.date, D);
	ck_assert_int_eq(r.expires, 1);
	ck_assert_int_eq(r.expires_at, D + 60);
	ck_assert_int_eq(r.age, 12);
	ck_assert(r.vary);
	ck_assert_int_eq(r.cc.max_age, 5);
	ck_assert_uint_eq(r.cc.flags, CC_PUBLIC);
	ck_assert_int_eq(r.response_time, D + 2);

	read_response(&r, 200, "X-A: 1", D);
	ck_assert(!r.has_date);
	ck_assert_int_eq(r.expires, 0);
	ck_assert_int_eq(r.age, -1);
	ck_assert(!r.vary);
	ck_assert_int_eq(r.cc.max_age, -1);

	/* RFC 9111 §5.3: an invalid Expires, and several, mean "already expired" */
	read_response(&r, 200, "Expires: 0", D);
	ck_assert_int_eq(r.expires, -1);
	read_response(&r, 200, "Expires: " D_PLUS_60 "\nExpires: " D_PLUS_60, D);
	ck_assert_int_eq(r.expires, -1);
	/* an invalid Date is no Date; an invalid Age is no Age */
	read_response(&r, 200, "Date: yesterday\nAge: -3", D);
	ck_assert(!r.has_date);
	ck_assert_int_eq(r.age, -1);
}
END_TEST

static const struct policy_config config = { .refuse_set_cookie = false,
					     .heuristic_max = 86400 };

/* ---- storable (RFC 9111 §3) ------------------------------------------------------------------ */

static const struct {
	bool get;
	const char *request_cc;
	bool authorization;
	int status;
	const char *response;	/* fields */
	bool storable;
	const char *why;	/* a part of the reason given */
	const char *rule;
} storable[] = {
	{ true, "", false, 200, "Cache-Control: max-age=60", true, NULL,
	  "RFC 9111 §3: a GET, a final status, explicitly fresh" },
	{ true, "", false, 200, "Cache-Control: s-maxage=60", true, NULL, "RFC 9111 §5.2.2.10" },
	{ true, "", false, 200, "Date: " D_STR "\nExpires: " D_PLUS_60, true, NULL,
	  "RFC 9111 §5.3: Expires gives a lifetime" },
	{ true, "", false, 203, "Cache-Control: max-age=60", true, NULL, "203 is final" },
	{ true, "", false, 204, "Cache-Control: max-age=60", true, NULL, "204" },
	{ true, "", false, 300, "Cache-Control: max-age=60", true, NULL, "300" },
	{ true, "", false, 301, "Cache-Control: max-age=60", true, NULL, "301" },
	{ true, "", false, 404, "Cache-Control: max-age=60", true, NULL, "404" },
	{ true, "", false, 410, "Cache-Control: max-age=60", true, NULL, "410" },
	{ true, "", false, 501, "Cache-Control: max-age=60", true, NULL, "501" },
	{ false, "", false, 200, "Cache-Control: max-age=60", false, "not GET",
	  "RFC 9111 §3: only GET responses are stored here (HEAD is answered from GET's)" },
	{ true, "no-store", false, 200, "Cache-Control: max-age=60", false, "request",
	  "RFC 9111 §5.2.1.5: request no-store" },
	{ true, "", false, 206, "Cache-Control: max-age=60", false, "status",
	  "RFC 9111 §3.3: partial content is not a complete response" },
	{ true, "", false, 304, "Cache-Control: max-age=60", false, "status",
	  "RFC 9111 §4.3.4: a 304 updates, it is not stored" },
	{ true, "", false, 418, "Cache-Control: max-age=60", false, "status",
	  "RFC 9111 §3: a status the cache does not understand" },
	{ true, "", false, 100, "Cache-Control: max-age=60", false, "status",
	  "RFC 9111 §3: not a final response" },
	{ true, "", false, 200, "Cache-Control: max-age=60, no-store", false, "no-store",
	  "RFC 9111 §5.2.2.5: response no-store" },
	{ true, "", false, 200, "Cache-Control: private, max-age=60", false, "private",
	  "RFC 9111 §5.2.2.7: private, in a shared cache" },
	{ true, "", false, 200, "Cache-Control: private=\"Set-Cookie\", max-age=60", false,
	  "private", "RFC 9111 §5.2.2.7: qualified private (not supported: all refused)" },
	{ true, "", false, 200, "Cache-Control: max-age=60\nCache-Control: private", false,
	  "private", "RFC 9110 §5.3: directives from any Cache-Control field" },
	{ true, "", false, 200, "Cache-Control: no-cache, max-age=60", true, NULL,
	  "RFC 9111 §5.2.2.4: no-cache is stored, and validated on every use" },
	{ true, "", false, 200, "Cache-Control: no-cache=\"Set-Cookie\", max-age=60", true,
	  NULL, "RFC 9111 §5.2.2.4: qualified no-cache: stored, the fields held back" },
	{ true, "", true, 200, "Cache-Control: max-age=60", false, "Authorization",
	  "RFC 9111 §3.5: a request with Authorization" },
	{ true, "", true, 200, "Cache-Control: public, max-age=60", true, NULL,
	  "RFC 9111 §3.5: ...unless public" },
	{ true, "", true, 200, "Cache-Control: s-maxage=60", true, NULL,
	  "RFC 9111 §3.5: ...or s-maxage" },
	{ true, "", true, 200, "Cache-Control: must-revalidate, max-age=60", true, NULL,
	  "RFC 9111 §3.5: ...or must-revalidate" },
	{ true, "", true, 200, "Cache-Control: proxy-revalidate, max-age=60", false,
	  "Authorization", "RFC 9111 §3.5: proxy-revalidate is not among them" },
	{ true, "", false, 200, "Cache-Control: max-age=60\nVary: Accept-Encoding", true, NULL,
	  "RFC 9111 §4.1: a response with Vary is stored as a variant" },
	{ true, "", false, 200, "Cache-Control: max-age=60\nVary: Accept, *", false,
	  "Vary: *", "RFC 9111 §4.1: Vary: * never matches: not worth storing" },
	{ true, "", false, 200, "Last-Modified: " D_MINUS_60, true, NULL,
	  "RFC 9111 §4.2.2: 200 is heuristically cacheable" },
	{ true, "", false, 200, "Cache-Control: public", true, NULL,
	  "RFC 9111 §3: public makes it storable" },
	{ true, "", false, 302, "Location: /x", false, "explicit",
	  "RFC 9111 §3: 302 is not heuristically cacheable" },
	{ true, "", false, 302, "Location: /x\nCache-Control: max-age=60", true, NULL,
	  "RFC 9111 §3: ...but stored with explicit freshness" },
	{ true, "", false, 307, "Date: " D_STR "\nExpires: " D_PLUS_60, true, NULL,
	  "RFC 9111 §3: ...Expires counts as explicit" },
	{ true, "", false, 500, "Cache-Control: public", true, NULL,
	  "RFC 9111 §3: ...or public" },
	{ true, "", false, 200, "Cache-Control: no-store, must-understand, max-age=60", true,
	  NULL, "RFC 9111 §5.2.2.3: must-understand overrides no-store for a known status" },
	{ true, "", false, 200, "Set-Cookie: a=1\nCache-Control: max-age=60", true, NULL,
	  "RFC 9111 §7.3 allows storing Set-Cookie (--set-cookie store)" },
	{ true, "", false, 200, "Cache-Control: max-age=0", true, NULL,
	  "RFC 9111 §4.2.1: stale from the start, yet storable (kept when it has a validator)" },
	{ true, "", false, 200, "Date: " D_STR "\nExpires: 0", true, NULL,
	  "RFC 9111 §5.3: an invalid Expires is in the past, still storable" },
};

START_TEST(test_storable)
{
	struct policy_request rq = { .get = storable[_i].get,
				     .authorization = storable[_i].authorization };
	struct policy_response r;
	const char *why = "unset";
	bool ok;

	policy_cc_init(&rq.cc);
	policy_cc_parse(&rq.cc, storable[_i].request_cc);
	read_response(&r, storable[_i].status, storable[_i].response, D);
	ok = policy_storable(&config, &rq, &r, &why);
	ck_assert_msg(ok == storable[_i].storable, "%s: storable %d (%s)", storable[_i].rule, ok,
		      why ? why : "no reason");
	if (storable[_i].why)
		ck_assert_msg(why && strstr(why, storable[_i].why), "%s: reason \"%s\"",
			      storable[_i].rule, why ? why : "(null)");
	else
		ck_assert_ptr_null(why);
	/* the reason is optional */
	ck_assert(policy_storable(&config, &rq, &r, NULL) == ok);
}
END_TEST

/* ---- freshness lifetime (RFC 9111 §4.2.1) --------------------------------------------------- */

static const struct {
	const char *response;
	time_t response_time;
	long long lifetime;
	const char *rule;
} lifetime[] = {
	{ "Cache-Control: s-maxage=30, max-age=60\nDate: " D_STR "\nExpires: " D_PLUS_3600, D,
	  30, "a shared cache uses s-maxage first" },
	{ "Cache-Control: max-age=60\nDate: " D_STR "\nExpires: " D_PLUS_3600, D, 60,
	  "then max-age; Expires is ignored (§5.3)" },
	{ "Cache-Control: max-age=60\nExpires: 0", D, 60, "...even an invalid Expires" },
	{ "Date: " D_STR "\nExpires: " D_PLUS_3600, D + 100, 3600, "then Expires minus Date" },
	{ "Expires: " D_PLUS_3600, D + 600, 3000,
	  "without a Date, Expires minus the response time (RFC 9110 §6.6.1)" },
	{ "Date: garbage\nExpires: " D_PLUS_60, D, 60, "an invalid Date counts as none" },
	{ "Date: " D_STR "\nExpires: " D_STR, D, 0, "Expires equal to Date: stale" },
	{ "Date: " D_STR "\nExpires: " D_MINUS_60, D, 0,
	  "Expires before Date: stale, not negative" },
	{ "Date: " D_STR "\nExpires: 0", D, 0, "§5.3: an invalid Expires means already expired" },
	{ "Date: " D_STR "\nExpires: " D_PLUS_60 "\nExpires: " D_PLUS_3600, D, 0,
	  "§4.2.1: several Expires: stale" },
	{ "Cache-Control: max-age=abc", D, 0, "§4.2.1: an invalid max-age: stale" },
	{ "Date: " D_STR, D, -1, "no explicit lifetime" },
	{ "Cache-Control: public", D, -1, "no explicit lifetime" },
	{ "X-A: 1", D, -1, "no fields that matter" },
};

START_TEST(test_freshness_lifetime)
{
	struct policy_response r;
	long long got;

	read_response(&r, 200, lifetime[_i].response, lifetime[_i].response_time);
	got = policy_freshness_lifetime(&r);
	ck_assert_msg(got == lifetime[_i].lifetime, "%s: %lld, want %lld", lifetime[_i].rule, got,
		      lifetime[_i].lifetime);
}
END_TEST

/* ---- age (RFC 9111 §4.2.3) -------------------------------------------------------------------
 *
 *   apparent_age = max(0, response_time - date_value)
 *   response_delay = response_time - request_time
 *   corrected_age_value = age_value + response_delay
 *   corrected_initial_age = max(apparent_age, corrected_age_value)
 *   resident_time = now - response_time
 *   current_age = corrected_initial_age + resident_time
 */
static const struct {
	const char *response;
	time_t request_time, response_time, now;
	long long initial, current;
	const char *rule;
} ages[] = {
	{ "Date: " D_STR, D, D, D, 0, 0, "fresh from the origin, no delay" },
	{ "Date: " D_STR, D + 3, D + 5, D + 65, 5, 65,
	  "apparent 5 beats corrected 0 + 2; then 60 s resident" },
	{ "Date: " D_STR "\nAge: 100", D, D + 2, D + 10, 102, 110,
	  "corrected 100 + 2 beats apparent 2; then 8 s resident" },
	{ "Date: " D_PLUS_3600 "\nAge: 10", D, D + 2, D + 2, 12, 12,
	  "a Date ahead of our clock: apparent age 0, not negative" },
	{ "Age: 30", D, D + 1, D + 1, 31, 31, "no Date: the Age and the delay" },
	{ "Age: 30", D + 5, D + 1, D + 1, 30, 30, "a response before its request: no delay" },
	{ "Date: " D_STR "\nAge: abc", D, D, D + 7, 0, 7, "an invalid Age counts as none" },
	{ "Date: " D_MINUS_60, D - 1, D, D, 60, 60, "a response generated a minute ago" },
	{ "Date: " D_STR, D, D, D - 10, 0, 0, "a clock that went back adds no resident time" },
	{ "Age: 10\nAge: 20", D, D, D, 20, 20, "several Age fields: the larger (conservative)" },
};

START_TEST(test_age)
{
	struct policy_response r;
	long long initial, current;

	read_response(&r, 200, ages[_i].response, ages[_i].response_time);
	initial = policy_initial_age(&r, ages[_i].request_time);
	ck_assert_msg(initial == ages[_i].initial, "%s: corrected_initial_age %lld, want %lld",
		      ages[_i].rule, initial, ages[_i].initial);
	current = policy_current_age(initial, ages[_i].response_time, ages[_i].now);
	ck_assert_msg(current == ages[_i].current, "%s: current_age %lld, want %lld",
		      ages[_i].rule, current, ages[_i].current);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_cc_parse, 0, ARRAY_LEN(cc));
	tcase_add_test(tc, test_cc_parse_null);
	tcase_add_test(tc, test_response_read);
	tcase_add_loop_test(tc, test_storable, 0, ARRAY_LEN(storable));
	tcase_add_loop_test(tc, test_freshness_lifetime, 0, ARRAY_LEN(lifetime));
	tcase_add_loop_test(tc, test_age, 0, ARRAY_LEN(ages));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(policy_suite)

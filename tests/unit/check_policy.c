/* Unit tests for proxy/policy.c: the RFC 9111 decisions of a shared cache, as tables. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* ---- Cache-Control: qualified no-cache and malformed members -------------------------------- */

/* Field names of 120, 127 and 128 characters: no_cache_fields keeps POLICY_FIELDS_MAX - 1. */
#define NAME10 "abcdefghij"
#define NAME120 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10
#define NAME127 NAME120 "klmnopq"
#define NAME128 NAME127 "r"

static const struct {
	const char *values[3];		/* one call each, as for several fields */
	unsigned flags;
	const char *fields;		/* no_cache_fields; NULL: not checked */
	long long max_age, s_maxage;
	const char *rule;
} cc_more[] = {
	{ { "no-cache=\"Set-Cookie, X-Auth\"" }, CC_NO_CACHE_FIELDS, "set-cookie,x-auth", -1, -1,
	  "RFC 9111 §5.2.2.4: the names, lower-cased (RFC 9110 §5.1: case-insensitive)" },
	{ { "no-cache=\"A\"", "no-cache=\"B\"" }, CC_NO_CACHE_FIELDS, "a,b", -1, -1,
	  "RFC 9110 §5.3: qualified no-cache in several fields: the lists add up" },
	{ { "no-cache=\"A, B\", no-cache=\"C\"" }, CC_NO_CACHE_FIELDS, "a,b,c", -1, -1,
	  "RFC 9111 §5.2.2.4: given twice in one field: the lists add up" },
	{ { "no-cache=\" Set-Cookie ,, \tX-A \"" }, CC_NO_CACHE_FIELDS, "set-cookie,x-a", -1, -1,
	  "RFC 9110 §5.6.1: blanks and empty members of the quoted list" },
	{ { "no-cache=X-A" }, CC_NO_CACHE_FIELDS, "x-a", -1, -1,
	  "RFC 9111 §5.2.2.4: the token form names one field" },
	{ { "no-cache=\"" NAME127 "\"" }, CC_NO_CACHE_FIELDS, NAME127, -1, -1,
	  "RFC 9111 §5.2.2.4: a list of POLICY_FIELDS_MAX - 1 characters is kept" },
	{ { "no-cache=\"" NAME128 "\"" }, CC_NO_CACHE_FIELDS | CC_NO_CACHE, NULL, -1, -1,
	  "RFC 9111 §5.2.2.4: one character more: unqualified no-cache, the restrictive reading" },
	{ { "no-cache=\"" NAME120 "\"", "no-cache=\"abcdef\"" }, CC_NO_CACHE_FIELDS,
	  NAME120 ",abcdef", -1, -1, "RFC 9110 §5.3: two fields that just fit together" },
	{ { "no-cache=\"" NAME120 "\"", "no-cache=\"abcdefg\"" },
	  CC_NO_CACHE_FIELDS | CC_NO_CACHE, NULL, -1, -1,
	  "RFC 9111 §5.2.2.4: two fields too long together: unqualified no-cache" },
	{ { "no-cache=\"\"" }, CC_NO_CACHE, "", -1, -1,
	  "RFC 9111 §5.2.2.4: the qualified form lists one or more fields; none: unqualified" },
	{ { "no-cache=" }, CC_NO_CACHE, "", -1, -1,
	  "RFC 9111 §5.2.2.4: an empty argument names no field: unqualified" },
	{ { "no-cache=\" , \"" }, CC_NO_CACHE, "", -1, -1,
	  "RFC 9111 §5.2.2.4: a quoted list of no names is the same as \"\": unqualified" },
	{ { "ext=\"a, max-age=5" }, 0, "", -1, -1,
	  "RFC 9110 §5.6.4: an unterminated quoted string runs to the end: no max-age in it" },
	{ { "max-age=\"60" }, 0, "", 0, -1,
	  "RFC 9111 §4.2.1: max-age with an unterminated quoted string is invalid: stale" },
	{ { "=" }, 0, "", -1, -1, "RFC 9111 §5.2: a member without a name is ignored" },
	{ { "=5, max-age=7" }, 0, "", 7, -1, "RFC 9111 §5.2: ...and does not spoil the next" },
	{ { "=\"a, max-age=1\", max-age=7" }, 0, "", 7, -1,
	  "RFC 9110 §5.6.4: ...its quoted argument still hides its commas" },
	{ { ",,," }, 0, "", -1, -1, "RFC 9110 §5.6.1: only empty members" },
	{ { " , ,max-age=5 ,, " }, 0, "", 5, -1, "RFC 9110 §5.6.1: empty members around one" },
	{ { "max-age = 5" }, 0, "", 0, -1,
	  "RFC 9111 §5.2: no blanks around '=' in a directive; invalid, stale (§4.2.1)" },
	{ { "s-maxage =5, max-age=60" }, 0, "", 60, 0,
	  "RFC 9111 §5.2: s-maxage with a blank before '=': invalid, stale (§4.2.1)" },
	{ { "max-age=5\t,\tno-store" }, CC_NO_STORE, "", 5, -1,
	  "RFC 9110 §5.6.1: OWS around commas may be tabs" },
	{ { "\tpublic\t" }, CC_PUBLIC, "", -1, -1, "RFC 9110 §5.5: leading and trailing tabs" },
	{ { "max-age=5x" }, 0, "", 0, -1, "RFC 9111 §1.2.2: trailing junk in the token: invalid" },
	{ { "max-age=5 junk" }, 0, "", 0, -1,
	  "RFC 9111 §5.2: junk after the argument makes the member invalid: stale (§4.2.1)" },
	{ { "max-age=\"5\"junk" }, 0, "", 0, -1,
	  "RFC 9111 §5.2: junk after a quoted argument: invalid, stale (§4.2.1)" },
	{ { "max-age=5;no-store" }, 0, "", 0, -1,
	  "RFC 9110 §5.6.1: ';' separates nothing: one invalid max-age, no no-store" },
	{ { "max-age=5, junk junk, no-store" }, CC_NO_STORE, "", 5, -1,
	  "RFC 9110 §5.6.1: a malformed member does not spoil its neighbours" },
	{ { "no-store junk" }, CC_NO_STORE, "", -1, -1,
	  "RFC 9111 §4.2.1: a flag with junk after it: the restrictive reading keeps it" },
};

START_TEST(test_cc_parse_more)
{
	struct cache_control c;

	policy_cc_init(&c);
	for (int k = 0; k < 3 && cc_more[_i].values[k]; k++)
		policy_cc_parse(&c, cc_more[_i].values[k]);
	ck_assert_msg(c.flags == cc_more[_i].flags, "%s: flags %#x, want %#x", cc_more[_i].rule,
		      c.flags, cc_more[_i].flags);
	if (cc_more[_i].fields)
		ck_assert_msg(strcmp(c.no_cache_fields, cc_more[_i].fields) == 0,
			      "%s: no_cache_fields \"%s\", want \"%s\"", cc_more[_i].rule,
			      c.no_cache_fields, cc_more[_i].fields);
	ck_assert_msg(strlen(c.no_cache_fields) < sizeof(c.no_cache_fields), "%s: overflow",
		      cc_more[_i].rule);
	ck_assert_msg(c.max_age == cc_more[_i].max_age, "%s: max-age %lld, want %lld",
		      cc_more[_i].rule, c.max_age, cc_more[_i].max_age);
	ck_assert_msg(c.s_maxage == cc_more[_i].s_maxage, "%s: s-maxage %lld, want %lld",
		      cc_more[_i].rule, c.s_maxage, cc_more[_i].s_maxage);
}
END_TEST

/* ---- heuristically cacheable statuses (RFC 9110 §15.1) ------------------------------------- */

static const struct {
	int status;
	bool cacheable;
	const char *rule;
} heuristic_status[] = {
	{ 200, true, "RFC 9110 §15.1" },
	{ 203, true, "RFC 9110 §15.1" },
	{ 204, true, "RFC 9110 §15.1" },
	{ 206, true, "RFC 9110 §15.1 (storing it is another matter, RFC 9111 §3.3)" },
	{ 300, true, "RFC 9110 §15.1" },
	{ 301, true, "RFC 9110 §15.1" },
	{ 308, true, "RFC 9110 §15.1" },
	{ 404, true, "RFC 9110 §15.1" },
	{ 405, true, "RFC 9110 §15.1" },
	{ 410, true, "RFC 9110 §15.1" },
	{ 414, true, "RFC 9110 §15.1" },
	{ 451, true, "RFC 7725 §3: a 451 response is cacheable by default" },
	{ 501, true, "RFC 9110 §15.1" },
	{ 100, false, "RFC 9110 §15.2: not final" },
	{ 201, false, "RFC 9110 §15.3.2: not in the list" },
	{ 302, false, "RFC 9110 §15.4.3: only with explicit freshness" },
	{ 303, false, "RFC 9110 §15.4.4: only with explicit freshness" },
	{ 304, false, "RFC 9111 §4.3.4: a 304 updates" },
	{ 307, false, "RFC 9110 §15.4.8: only with explicit freshness" },
	{ 400, false, "RFC 9110 §15.5.1: not in the list" },
	{ 403, false, "RFC 9110 §15.5.4: not in the list" },
	{ 429, false, "RFC 6585 §4: MUST NOT be stored" },
	{ 500, false, "RFC 9110 §15.6.1: not in the list" },
	{ 502, false, "RFC 9110 §15.6.3: not in the list" },
	{ 503, false, "RFC 9110 §15.6.4: not in the list" },
	{ 504, false, "RFC 9110 §15.6.5: not in the list" },
};

START_TEST(test_heuristically_cacheable)
{
	bool got = policy_heuristically_cacheable(heuristic_status[_i].status);

	ck_assert_msg(got == heuristic_status[_i].cacheable, "%d: %s: %d",
		      heuristic_status[_i].status, heuristic_status[_i].rule, got);
}
END_TEST

/* ---- storable, per configuration (RFC 9111 §3) ----------------------------------------------- */

#define LM_OLD "Last-Modified: " D_MINUS_60

static const struct {
	bool refuse_set_cookie;
	bool authorization;
	const char *request_cc;
	int status;
	const char *response;	/* fields */
	bool storable;
	const char *why;	/* a part of the reason given */
	const char *rule;
} storable_cfg[] = {
	{ true, false, "", 200, "Set-Cookie: a=1\nCache-Control: max-age=60", false, "Set-Cookie",
	  "RFC 9111 §7.3 leaves Set-Cookie to the cache: --set-cookie refuse" },
	{ true, false, "", 200, "Cache-Control: max-age=60", true, NULL,
	  "RFC 9111 §3: --set-cookie refuse, no Set-Cookie: stored" },
	{ false, false, "", 200, "Set-Cookie: a=1\nCache-Control: max-age=60", true, NULL,
	  "RFC 9111 §7.3: --set-cookie store" },
	{ true, false, "", 200, "Set-Cookie: a=1\nCache-Control: private", false, "private",
	  "RFC 9111 §5.2.2.7: private is refused whatever the configuration" },
	/* must-understand (RFC 9111 §5.2.2.3) */
	{ false, false, "", 418, "Cache-Control: no-store, must-understand, max-age=60", false,
	  "status", "RFC 9111 §5.2.2.3: must-understand, a status not understood: not stored" },
	{ false, false, "", 299, "Cache-Control: must-understand, max-age=60", false, "status",
	  "RFC 9111 §5.2.2.3: must-understand, an unknown status: not stored" },
	{ false, false, "", 206, "Cache-Control: no-store, must-understand, max-age=60", false,
	  "status", "RFC 9111 §3.3, §5.2.2.3: partial content is not understood here" },
	{ false, false, "", 200, "Cache-Control: must-understand, max-age=60", true, NULL,
	  "RFC 9111 §5.2.2.3: must-understand alone, a known status: stored" },
	{ false, false, "", 404, "Cache-Control: must-understand, no-store\n" LM_OLD, true, NULL,
	  "RFC 9111 §5.2.2.3: no-store ignored, heuristic 404" },
	{ false, false, "", 302, "Cache-Control: no-store, must-understand", false, "explicit",
	  "RFC 9111 §3, §5.2.2.3: a known 302 still needs explicit freshness" },
	/* heuristically cacheable statuses (RFC 9110 §15.1), with no explicit freshness */
	{ false, false, "", 200, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 200 heuristically" },
	{ false, false, "", 203, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 203 heuristically" },
	{ false, false, "", 204, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 204 heuristically" },
	{ false, false, "", 206, LM_OLD, false, "status",
	  "RFC 9111 §3.3: 206 is heuristically cacheable, but partial: not stored" },
	{ false, false, "", 300, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 300 heuristically" },
	{ false, false, "", 301, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 301 heuristically" },
	{ false, false, "", 308, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 308 heuristically" },
	{ false, false, "", 404, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 404 heuristically" },
	{ false, false, "", 405, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 405 heuristically" },
	{ false, false, "", 410, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 410 heuristically" },
	{ false, false, "", 414, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 414 heuristically" },
	{ false, false, "", 451, LM_OLD, true, NULL, "RFC 7725 §3: 451 is cacheable by default" },
	{ false, false, "", 501, LM_OLD, true, NULL, "RFC 9111 §4.2.2: 501 heuristically" },
	{ false, false, "", 200, "X-A: 1", true, NULL,
	  "RFC 9111 §3: 200 without any freshness information is still storable" },
	/* the others need explicit freshness or public (RFC 9111 §3) */
	{ false, false, "", 302, LM_OLD, false, "explicit", "RFC 9111 §3: 302 without freshness" },
	{ false, false, "", 303, LM_OLD, false, "explicit", "RFC 9111 §3: 303 without freshness" },
	{ false, false, "", 307, LM_OLD, false, "explicit", "RFC 9111 §3: 307 without freshness" },
	{ false, false, "", 400, LM_OLD, false, "explicit", "RFC 9111 §3: 400 without freshness" },
	{ false, false, "", 403, LM_OLD, false, "explicit", "RFC 9111 §3: 403 without freshness" },
	{ false, false, "", 500, LM_OLD, false, "explicit", "RFC 9111 §3: 500 without freshness" },
	{ false, false, "", 502, LM_OLD, false, "explicit", "RFC 9111 §3: 502 without freshness" },
	{ false, false, "", 503, LM_OLD, false, "explicit", "RFC 9111 §3: 503 without freshness" },
	{ false, false, "", 504, LM_OLD, false, "explicit", "RFC 9111 §3: 504 without freshness" },
	{ false, false, "", 302, "Cache-Control: public", true, NULL, "RFC 9111 §3: public 302" },
	{ false, false, "", 303, "Cache-Control: public", true, NULL, "RFC 9111 §3: public 303" },
	{ false, false, "", 307, "Cache-Control: public", true, NULL, "RFC 9111 §3: public 307" },
	{ false, false, "", 503, "Cache-Control: public", true, NULL, "RFC 9111 §3: public 503" },
	{ false, false, "", 303, "Cache-Control: max-age=60", true, NULL,
	  "RFC 9111 §3: 303 with max-age" },
	{ false, false, "", 307, "Cache-Control: s-maxage=60", true, NULL,
	  "RFC 9111 §3: 307 with s-maxage" },
	{ false, false, "", 302, "Date: " D_STR "\nExpires: 0", true, NULL,
	  "RFC 9111 §5.3: an invalid Expires is explicit (already expired)" },
	{ false, false, "", 429, "Cache-Control: max-age=60", false, "status",
	  "RFC 6585 §4: 429 MUST NOT be stored" },
	/* Authorization (RFC 9111 §3.5) */
	{ false, true, "", 200, LM_OLD, false, "Authorization",
	  "RFC 9111 §3.5: Authorization, no directive allowing it" },
	{ false, true, "", 200, "Cache-Control: no-cache, max-age=60", false, "Authorization",
	  "RFC 9111 §3.5: no-cache does not allow it" },
	{ false, true, "", 200, "Cache-Control: public", true, NULL, "RFC 9111 §3.5: public" },
	{ false, true, "", 200, "Cache-Control: s-maxage=0", true, NULL,
	  "RFC 9111 §3.5: s-maxage, even 0" },
	{ false, true, "", 200, "Cache-Control: must-revalidate\n" LM_OLD, true, NULL,
	  "RFC 9111 §3.5: must-revalidate, heuristic freshness" },
	{ false, true, "", 200, "Cache-Control: public, private, max-age=60", false, "private",
	  "RFC 9111 §5.2.2.7: private wins over public (§4.2.1: the most restrictive)" },
	{ false, false, "", 200, "Cache-Control: proxy-revalidate, max-age=60", true, NULL,
	  "RFC 9111 §5.2.2.8: proxy-revalidate without Authorization is stored" },
	/* Vary: * (RFC 9111 §4.1) */
	{ false, false, "", 200, "Cache-Control: max-age=60\nVary: *", false, "Vary: *",
	  "RFC 9111 §4.1: Vary: * always fails to match" },
	{ false, false, "", 200, "Cache-Control: public, max-age=60\nVary:  * ", false, "Vary: *",
	  "RFC 9111 §4.1: blanks around it, public does not help" },
	{ false, false, "", 200, "Cache-Control: max-age=60\nVary: Accept\nVary: *", false,
	  "Vary: *", "RFC 9110 §5.3: \"*\" in a second Vary field" },
	{ false, false, "", 200, "Cache-Control: max-age=60\nVary: Accept,Cookie", true, NULL,
	  "RFC 9111 §4.1: named fields only" },
	/* the request's directives (RFC 9111 §5.2.1) */
	{ false, false, "no-store", 200, "Cache-Control: public, max-age=60", false, "request",
	  "RFC 9111 §5.2.1.5: request no-store, even for a public response" },
	{ false, false, "NO-STORE", 200, "Cache-Control: max-age=60", false, "request",
	  "RFC 9111 §5.2: request directive names are case-insensitive" },
	{ false, false, "max-age=0, no-store", 200, "Cache-Control: max-age=60", false, "request",
	  "RFC 9111 §5.2.1.5: among other directives" },
	{ false, false, "no-cache", 200, "Cache-Control: max-age=60", true, NULL,
	  "RFC 9111 §5.2.1.4: request no-cache is about reuse, not storing" },
	{ false, false, "max-age=0", 200, "Cache-Control: max-age=60", true, NULL,
	  "RFC 9111 §5.2.1.1: request max-age is about reuse, not storing" },
	{ false, false, "only-if-cached", 200, "Cache-Control: max-age=60", true, NULL,
	  "RFC 9111 §5.2.1.7: about reuse, not storing" },
};

START_TEST(test_storable_config)
{
	struct policy_config cfg = { .refuse_set_cookie = storable_cfg[_i].refuse_set_cookie,
				     .heuristic_max = 86400 };
	struct policy_request rq = { .get = true, .authorization = storable_cfg[_i].authorization };
	struct policy_response r;
	const char *why = "unset";
	bool ok;

	policy_cc_init(&rq.cc);
	policy_cc_parse(&rq.cc, storable_cfg[_i].request_cc);
	read_response(&r, storable_cfg[_i].status, storable_cfg[_i].response, D);
	ok = policy_storable(&cfg, &rq, &r, &why);
	ck_assert_msg(ok == storable_cfg[_i].storable, "%d: %s: storable %d (%s)",
		      storable_cfg[_i].status, storable_cfg[_i].rule, ok, why ? why : "no reason");
	if (storable_cfg[_i].why)
		ck_assert_msg(why && strstr(why, storable_cfg[_i].why), "%s: reason \"%s\"",
			      storable_cfg[_i].rule, why ? why : "(null)");
	else
		ck_assert_ptr_null(why);
}
END_TEST

/* ---- the lifetime used: explicit, else heuristic (RFC 9111 §4.2.1, §4.2.2) ---------------- */

#define D_MINUS_1000 "Sun, 06 Nov 1994 08:32:57 GMT"
#define D_MINUS_10D "Thu, 27 Oct 1994 08:49:37 GMT"
#define D_MINUS_20D "Mon, 17 Oct 1994 08:49:37 GMT"
#define D_MINUS_100000 "Sat, 05 Nov 1994 05:02:57 GMT"
#define D_PLUS_1000 "Sun, 06 Nov 1994 09:06:17 GMT"

static const struct {
	int status;
	const char *response;
	time_t response_time;
	long long heuristic_max;
	long long lifetime;
	const char *rule;
} heuristic[] = {
	{ 200, "Date: " D_STR "\nLast-Modified: " D_MINUS_1000, D, 86400, 100,
	  "RFC 9111 §4.2.2: 10 % of Date - Last-Modified" },
	{ 200, "Date: " D_STR "\nLast-Modified: " D_MINUS_10D, D, 86400, 86400,
	  "RFC 9111 §4.2.2: 10 % of 10 days is the cap exactly" },
	{ 200, "Date: " D_STR "\nLast-Modified: " D_MINUS_20D, D, 86400, 86400,
	  "RFC 9111 §4.2.2: capped by heuristic_max" },
	{ 200, "Date: " D_STR "\nLast-Modified: " D_MINUS_20D, D, 3600, 3600,
	  "RFC 9111 §4.2.2: ...whatever the cap" },
	{ 200, "Date: " D_STR "\nLast-Modified: " D_MINUS_1000, D, 0, 0,
	  "RFC 9111 §4.2.2: a cap of 0: no heuristic freshness" },
	{ 200, "Date: " D_STR "\nLast-Modified: " D_MINUS_1000, D + 5000, 86400, 100,
	  "RFC 9111 §4.2.2: as of Date, not of the response time" },
	{ 200, "Last-Modified: " D_MINUS_1000, D + 9000, 86400, 1000,
	  "RFC 9110 §6.6.1: without Date, as of the response time" },
	{ 200, "Date: garbage\nLast-Modified: " D_MINUS_1000, D, 86400, 100,
	  "RFC 9110 §6.6.1: an invalid Date is none: the response time" },
	{ 200, "Date: " D_STR "\nLast-Modified: " D_PLUS_1000, D, 86400, 0,
	  "RFC 9110 §8.8.2.1: Last-Modified after Date: no basis, 0" },
	{ 200, "Date: " D_STR "\nLast-Modified: " D_STR, D, 86400, 0,
	  "RFC 9111 §4.2.2: modified just now: 0" },
	{ 200, "Last-Modified: " D_PLUS_1000, D, 86400, 0,
	  "RFC 9110 §8.8.2.1: Last-Modified after the response time: 0" },
	{ 200, "Date: " D_STR "\nLast-Modified: garbage", D, 86400, 0,
	  "RFC 9110 §5.6.7: an invalid Last-Modified gives no basis" },
	{ 200, "Date: " D_STR, D, 86400, 0, "RFC 9111 §4.2.2: no Last-Modified: no heuristic" },
	{ 200, "Cache-Control: max-age=5\nDate: " D_STR "\nLast-Modified: " D_MINUS_100000, D,
	  86400, 5, "RFC 9111 §4.2.2: explicit max-age wins over the heuristic" },
	{ 200, "Date: " D_STR "\nExpires: " D_PLUS_60 "\nLast-Modified: " D_MINUS_100000, D,
	  86400, 60, "RFC 9111 §4.2.2: explicit Expires wins" },
	{ 200, "Cache-Control: max-age=0\nDate: " D_STR "\nLast-Modified: " D_MINUS_100000, D,
	  86400, 0, "RFC 9111 §4.2.1: explicit 0 wins" },
	{ 200, "Date: " D_STR "\nExpires: 0\nLast-Modified: " D_MINUS_100000, D, 86400, 0,
	  "RFC 9111 §5.3: an invalid Expires is explicit: already expired" },
	{ 404, "Date: " D_STR "\nLast-Modified: " D_MINUS_1000, D, 86400, 100,
	  "RFC 9110 §15.1: 404 heuristically" },
	{ 302, "Date: " D_STR "\nLast-Modified: " D_MINUS_1000, D, 86400, 0,
	  "RFC 9111 §4.2.2: 302 without explicit freshness: 0" },
	{ 302, "Cache-Control: public\nDate: " D_STR "\nLast-Modified: " D_MINUS_1000, D, 86400,
	  100, "RFC 9111 §4.2.2: public 302 with Last-Modified: heuristic" },
	{ 302, "Cache-Control: max-age=60\nDate: " D_STR "\nLast-Modified: " D_MINUS_1000, D,
	  86400, 60, "RFC 9111 §4.2.1: 302 with max-age: explicit" },
	{ 500, "Cache-Control: public\nDate: " D_STR "\nLast-Modified: " D_MINUS_1000, D, 86400,
	  100, "RFC 9111 §4.2.2: public 500: heuristic" },
	{ 307, "Cache-Control: public\nDate: " D_STR, D, 86400, 0,
	  "RFC 9111 §4.2.2: public without Last-Modified: 0" },
};

START_TEST(test_lifetime)
{
	struct policy_config cfg = { .heuristic_max = heuristic[_i].heuristic_max };
	struct policy_response r;
	long long got;

	read_response(&r, heuristic[_i].status, heuristic[_i].response,
		      heuristic[_i].response_time);
	got = policy_lifetime(&cfg, &r);
	ck_assert_msg(got == heuristic[_i].lifetime, "%s: %lld, want %lld", heuristic[_i].rule,
		      got, heuristic[_i].lifetime);
}
END_TEST

/* ---- worth keeping --------------------------------------------------------------------------- */

static const struct {
	const char *response;
	long long lifetime, age;
	bool keep;
	const char *rule;
} worth[] = {
	{ "X-A: 1", 60, 0, true, "RFC 9111 §4.2: fresh" },
	{ "X-A: 1", 60, 59, true, "RFC 9111 §4.2: fresh while lifetime > age" },
	{ "X-A: 1", 60, 60, false, "RFC 9111 §4.2: age == lifetime is stale; no validator" },
	{ "X-A: 1", 0, 0, false, "RFC 9111 §4.2.1: stale from the start, no validator" },
	{ "ETag: \"a\"", 60, 100, true, "RFC 9111 §4.3.1: stale, revalidated with If-None-Match" },
	{ "ETag: W/\"a\"", 0, 0, true, "RFC 9110 §8.8.3: a weak ETag is a validator too" },
	{ "Last-Modified: " D_MINUS_60, 0, 0, true,
	  "RFC 9111 §4.3.1: stale, revalidated with If-Modified-Since" },
	{ "Last-Modified: garbage", 0, 0, false,
	  "RFC 9110 §13.1.3: an invalid date cannot be used in If-Modified-Since" },
	{ "Cache-Control: no-cache", 60, 0, false,
	  "RFC 9111 §5.2.2.4: no-cache, no validator: never usable" },
	{ "Cache-Control: no-cache\nETag: \"a\"", 60, 0, true,
	  "RFC 9111 §5.2.2.4: no-cache with ETag: used after validation" },
	{ "Cache-Control: no-cache\nLast-Modified: " D_MINUS_60, 60, 0, true,
	  "RFC 9111 §5.2.2.4: no-cache with Last-Modified" },
	{ "Cache-Control: no-cache=\"Set-Cookie\"", 60, 0, true,
	  "RFC 9111 §5.2.2.4: qualified no-cache: used fresh without those fields" },
	{ "Cache-Control: must-revalidate\nETag: \"a\"", 0, 0, true,
	  "RFC 9111 §5.2.2.2: must-revalidate with a validator" },
};

START_TEST(test_worth_keeping)
{
	struct policy_response r;
	bool got;

	read_response(&r, 200, worth[_i].response, D);
	got = policy_worth_keeping(&r, worth[_i].lifetime, worth[_i].age);
	ck_assert_msg(got == worth[_i].keep, "%s: %d", worth[_i].rule, got);
}
END_TEST

/* ---- reuse (RFC 9111 §4, §5.2; RFC 5861 §3; RFC 8246) ---------------------------------------- */

#define FRESH POLICY_FRESH
#define STALE POLICY_STALE
#define STALE_REVALIDATE POLICY_STALE_REVALIDATE
#define VALIDATE POLICY_VALIDATE
#define FETCH POLICY_FETCH

/* The stored response is fresh for 60 s: age 10 is fresh, age 70 is 10 s stale. */
static const struct {
	const char *request_cc, *response_cc;
	long long lifetime, age;
	bool validator;
	enum policy_reuse reuse;
	const char *rule;
} reuse[] = {
	{ "", "max-age=60", 60, 10, true, FRESH, "RFC 9111 §4.2: fresh" },
	{ "", "max-age=60", 60, 10, false, FRESH, "RFC 9111 §4.2: fresh, no validator needed" },
	{ "", "max-age=60", 60, 59, false, FRESH, "RFC 9111 §4.2: fresh while lifetime > age" },
	{ "", "max-age=60", 60, 60, true, VALIDATE, "RFC 9111 §4.2: age == lifetime: stale" },
	{ "", "max-age=60", 60, 70, true, VALIDATE,
	  "RFC 9111 §4.3.1: stale with a validator: conditional request" },
	{ "", "max-age=60", 60, 70, false, FETCH, "RFC 9111 §4.3.1: stale, no validator: fetch" },
	{ "", "max-age=0", 0, 0, true, VALIDATE, "RFC 9111 §4.2.1: stale from the start" },
	/* request no-cache (§5.2.1.4) */
	{ "no-cache", "max-age=60", 60, 10, true, VALIDATE,
	  "RFC 9111 §5.2.1.4: request no-cache: validate even when fresh" },
	{ "no-cache", "max-age=60", 60, 10, false, FETCH,
	  "RFC 9111 §5.2.1.4: ...or fetch without a validator" },
	{ "no-cache, max-stale", "max-age=60", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.1.4: no-cache beats max-stale" },
	/* response no-cache (§5.2.2.4) */
	{ "", "no-cache, max-age=60", 60, 10, true, VALIDATE,
	  "RFC 9111 §5.2.2.4: response no-cache: validate on every use" },
	{ "", "no-cache", 60, 10, false, FETCH, "RFC 9111 §5.2.2.4: ...or fetch" },
	{ "max-stale", "no-cache", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.2.4: no-cache is not relaxed by max-stale" },
	{ "", "no-cache=\"Set-Cookie\", max-age=60", 60, 10, false, FRESH,
	  "RFC 9111 §5.2.2.4: qualified no-cache: reused, those fields held back" },
	/* request max-age (§5.2.1.1) */
	{ "max-age=20", "max-age=60", 60, 10, true, FRESH,
	  "RFC 9111 §5.2.1.1: age below the request's max-age" },
	{ "max-age=10", "max-age=60", 60, 10, true, FRESH,
	  "RFC 9111 §5.2.1.1: age equal to max-age is accepted (less than or equal)" },
	{ "max-age=9", "max-age=60", 60, 10, true, VALIDATE,
	  "RFC 9111 §5.2.1.1: age greater than max-age: validate" },
	{ "max-age=9", "max-age=60", 60, 10, false, FETCH,
	  "RFC 9111 §5.2.1.1: ...or fetch without a validator" },
	{ "max-age=0", "max-age=60", 60, 10, true, VALIDATE,
	  "RFC 9111 §5.2.1.1: max-age=0, age 10: validate (a reload)" },
	{ "max-age=0", "max-age=60", 60, 0, true, FRESH,
	  "RFC 9111 §5.2.1.1: max-age=0, age 0: less than or equal, accepted" },
	{ "max-age=100", "max-age=60", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.1.1: a larger max-age does not make a stale response usable" },
	{ "max-age=100, max-stale=20", "max-age=60", 60, 70, true, STALE,
	  "RFC 9111 §5.2.1.1, §5.2.1.2: max-age with max-stale" },
	{ "max-age=50, max-stale=20", "max-age=60", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.1.1: max-stale does not lift max-age" },
	/* min-fresh (§5.2.1.3) */
	{ "min-fresh=30", "max-age=60", 60, 10, true, FRESH,
	  "RFC 9111 §5.2.1.3: fresh for 50 more seconds, 30 wanted" },
	{ "min-fresh=50", "max-age=60", 60, 10, true, FRESH,
	  "RFC 9111 §5.2.1.3: lifetime no less than age + min-fresh" },
	{ "min-fresh=51", "max-age=60", 60, 10, true, VALIDATE,
	  "RFC 9111 §5.2.1.3: not fresh long enough: validate" },
	{ "min-fresh=51", "max-age=60", 60, 10, false, FETCH, "RFC 9111 §5.2.1.3: ...or fetch" },
	/* max-stale (§5.2.1.2) */
	{ "max-stale", "max-age=60", 60, 70, true, STALE,
	  "RFC 9111 §5.2.1.2: max-stale without a value: any staleness" },
	{ "max-stale", "max-age=60", 60, 1000000, false, STALE,
	  "RFC 9111 §5.2.1.2: ...however stale, validator or not" },
	{ "max-stale=10", "max-age=60", 60, 70, true, STALE,
	  "RFC 9111 §5.2.1.2: stale by no more than the value" },
	{ "max-stale=9", "max-age=60", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.1.2: stale by more: validate" },
	{ "max-stale=9", "max-age=60", 60, 70, false, FETCH, "RFC 9111 §5.2.1.2: ...or fetch" },
	{ "max-stale=30", "max-age=60", 60, 10, true, FRESH,
	  "RFC 9111 §5.2.1.2: a fresh response is simply fresh" },
	/* no stale use: must-revalidate, proxy-revalidate, s-maxage (§4.2.4) */
	{ "max-stale", "must-revalidate, max-age=60", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.2.2: must-revalidate forbids max-stale" },
	{ "max-stale", "must-revalidate, max-age=60", 60, 70, false, FETCH,
	  "RFC 9111 §5.2.2.2: ...fetch without a validator" },
	{ "max-stale", "proxy-revalidate, max-age=60", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.2.8: proxy-revalidate forbids it in a shared cache" },
	{ "max-stale=100", "s-maxage=60", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.2.10: s-maxage implies proxy-revalidate" },
	{ "", "must-revalidate, max-age=60, stale-while-revalidate=30", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.2.2: must-revalidate forbids stale-while-revalidate too" },
	{ "", "proxy-revalidate, max-age=60, stale-while-revalidate=30", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.2.8: proxy-revalidate forbids stale-while-revalidate" },
	{ "", "s-maxage=60, stale-while-revalidate=30", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.2.10: s-maxage forbids stale-while-revalidate" },
	{ "", "must-revalidate, max-age=60", 60, 10, true, FRESH,
	  "RFC 9111 §5.2.2.2: must-revalidate is about stale use only" },
	{ "", "s-maxage=60", 60, 10, false, FRESH, "RFC 9111 §5.2.2.10: fresh by s-maxage" },
	/* stale-while-revalidate (RFC 5861 §3) */
	{ "", "max-age=60, stale-while-revalidate=30", 60, 70, true, STALE_REVALIDATE,
	  "RFC 5861 §3: 10 s stale, within a 30 s window" },
	{ "", "max-age=60, stale-while-revalidate=30", 60, 90, true, STALE_REVALIDATE,
	  "RFC 5861 §3: up to the indicated number of seconds" },
	{ "", "max-age=60, stale-while-revalidate=30", 60, 91, true, VALIDATE,
	  "RFC 5861 §3: beyond the window: validate" },
	{ "", "max-age=60, stale-while-revalidate=30", 60, 91, false, FETCH,
	  "RFC 5861 §3: beyond the window, no validator: fetch" },
	{ "", "max-age=60, stale-while-revalidate=30", 60, 10, true, FRESH,
	  "RFC 5861 §3: fresh is fresh" },
	{ "", "max-age=60, stale-while-revalidate=0", 60, 70, true, VALIDATE,
	  "RFC 5861 §3: a window of 0" },
	{ "no-cache", "max-age=60, stale-while-revalidate=30", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.1.4: request no-cache beats stale-while-revalidate" },
	{ "", "no-cache, stale-while-revalidate=30", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.2.4: response no-cache beats stale-while-revalidate" },
	{ "max-age=0", "max-age=60, stale-while-revalidate=30", 60, 70, true, VALIDATE,
	  "RFC 9111 §5.2.1.1: a reload is not answered stale" },
	{ "max-stale=20", "max-age=60, stale-while-revalidate=30", 60, 70, true, STALE,
	  "RFC 9111 §5.2.1.2: the client accepts it stale: no background revalidation needed" },
	/* immutable (RFC 8246 §2) */
	{ "max-age=0", "max-age=60, immutable", 60, 10, true, FRESH,
	  "RFC 8246 §2: immutable and fresh: a reload (max-age=0) is answered from cache" },
	{ "max-age=5", "max-age=60, immutable", 60, 10, true, FRESH,
	  "RFC 8246 §2: ...any request max-age" },
	{ "no-cache", "max-age=60, immutable", 60, 10, true, VALIDATE,
	  "RFC 8246 §2: a forced reload (request no-cache) still validates" },
	{ "max-age=0", "max-age=60, immutable", 60, 70, true, VALIDATE,
	  "RFC 8246 §2: immutable only while fresh" },
	{ "", "no-cache, max-age=60, immutable", 60, 10, true, VALIDATE,
	  "RFC 9111 §5.2.2.4: response no-cache beats immutable" },
};

START_TEST(test_reuse)
{
	struct policy_request rq = { .get = true };
	struct cache_control response_cc;
	struct policy_stored s = { .cc = &response_cc, .lifetime = reuse[_i].lifetime,
				   .age = reuse[_i].age, .validator = reuse[_i].validator };
	enum policy_reuse got;

	policy_cc_init(&rq.cc);
	policy_cc_parse(&rq.cc, reuse[_i].request_cc);
	policy_cc_init(&response_cc);
	policy_cc_parse(&response_cc, reuse[_i].response_cc);
	got = policy_reuse(&rq, &s);
	ck_assert_msg(got == reuse[_i].reuse, "%s: %d, want %d (request \"%s\", response \"%s\")",
		      reuse[_i].rule, got, reuse[_i].reuse, reuse[_i].request_cc,
		      reuse[_i].response_cc);
}
END_TEST

/* ---- stale-if-error (RFC 5861 §4) ------------------------------------------------------------ */

/* Lifetime 60: age 100 is 40 s stale. */
static const struct {
	const char *request_cc, *response_cc;
	long long lifetime, age, default_s;
	bool serve;
	const char *rule;
} stale_if_error[] = {
	{ "", "max-age=60, stale-if-error=60", 60, 100, 0, true,
	  "RFC 5861 §4: 40 s stale within the response's 60 s" },
	{ "", "max-age=60, stale-if-error=60", 60, 120, 0, true,
	  "RFC 5861 §4: exactly at the upper limit" },
	{ "", "max-age=60, stale-if-error=60", 60, 121, 0, false,
	  "RFC 5861 §4: beyond the window: SHOULD NOT be used" },
	{ "stale-if-error=10", "max-age=60, stale-if-error=60", 60, 100, 0, false,
	  "RFC 5861 §4: the request's smaller window overrides" },
	{ "stale-if-error=100", "max-age=60, stale-if-error=60", 60, 150, 0, true,
	  "RFC 5861 §4, RFC 9111 §4.2.4: a larger request window overrides: the client permits" },
	{ "stale-if-error=60", "max-age=60", 60, 100, 0, true,
	  "RFC 5861 §4: a request window alone" },
	{ "stale-if-error=0", "max-age=60, stale-if-error=60", 60, 100, 300, false,
	  "RFC 5861 §4: the request's 0 refuses stale" },
	{ "", "max-age=60", 60, 100, 300, true,
	  "RFC 9111 §4.2.4: the configured default window (an out-of-band contract)" },
	{ "", "max-age=60", 60, 360, 300, true, "RFC 9111 §4.2.4: at the default's limit" },
	{ "", "max-age=60", 60, 361, 300, false, "RFC 9111 §4.2.4: beyond the default window" },
	{ "", "max-age=60", 60, 100, 0, false, "RFC 9111 §4.2.4: a zero default: never stale" },
	{ "", "max-age=60", 60, 60, 0, false,
	  "RFC 9111 §4.2.4: a zero default, even just stale" },
	{ "", "max-age=60, stale-if-error=10", 60, 100, 300, false,
	  "RFC 5861 §4: the response's window overrides the default" },
	{ "", "max-age=60, stale-if-error=0", 60, 100, 300, false,
	  "RFC 5861 §4: the response's 0 overrides the default" },
	{ "", "must-revalidate, max-age=60, stale-if-error=60", 60, 100, 300, false,
	  "RFC 9111 §5.2.2.2: must-revalidate: an error, never stale" },
	{ "", "proxy-revalidate, max-age=60, stale-if-error=60", 60, 100, 300, false,
	  "RFC 9111 §5.2.2.8: proxy-revalidate" },
	{ "", "s-maxage=60, stale-if-error=60", 60, 100, 300, false,
	  "RFC 9111 §5.2.2.10: s-maxage" },
	{ "", "no-cache, stale-if-error=60", 60, 100, 300, false,
	  "RFC 9111 §5.2.2.4: no-cache: never without validation" },
	{ "stale-if-error=60", "no-cache, max-age=60", 60, 100, 300, false,
	  "RFC 9111 §5.2.2.4: ...whatever the request allows" },
};

START_TEST(test_stale_if_error)
{
	struct policy_request rq = { .get = true };
	struct cache_control response_cc;
	struct policy_stored s = { .cc = &response_cc, .lifetime = stale_if_error[_i].lifetime,
				   .age = stale_if_error[_i].age, .validator = true };
	bool got;

	policy_cc_init(&rq.cc);
	policy_cc_parse(&rq.cc, stale_if_error[_i].request_cc);
	policy_cc_init(&response_cc);
	policy_cc_parse(&response_cc, stale_if_error[_i].response_cc);
	got = policy_stale_if_error(&rq, &s, stale_if_error[_i].default_s);
	ck_assert_msg(got == stale_if_error[_i].serve, "%s: %d", stale_if_error[_i].rule, got);
}
END_TEST

/* ---- entity-tags (RFC 9110 §8.8.3, §13.1.2) -------------------------------------------------- */

static const struct {
	const char *list, *etag;	/* If-None-Match; the stored ETag or NULL */
	bool match;
	const char *rule;
} etag_match[] = {
	{ "\"a\"", "\"a\"", true, "RFC 9110 §13.1.2: the same strong tag" },
	{ "W/\"a\"", "\"a\"", true, "RFC 9110 §8.8.3.2: weak comparison ignores W/" },
	{ "\"a\"", "W/\"a\"", true, "RFC 9110 §8.8.3.2: ...on either side" },
	{ "W/\"a\"", "W/\"a\"", true, "RFC 9110 §8.8.3.2: both weak" },
	{ "\"a\"", "\"b\"", false, "RFC 9110 §8.8.3.2: other opaque-tags" },
	{ "\"A\"", "\"a\"", false, "RFC 9110 §8.8.3.2: opaque-tags compare octet by octet" },
	{ "\"ab\"", "\"a\"", false, "RFC 9110 §8.8.3.2: not a prefix match" },
	{ "\"\"", "\"\"", true, "RFC 9110 §8.8.3: the empty opaque-tag" },
	{ "\"a\", \"b\", \"c\"", "\"b\"", true, "RFC 9110 §13.1.2: one of a list" },
	{ "\"a\",W/\"b\"", "\"b\"", true, "RFC 9110 §5.6.1: a list without blanks" },
	{ "  \"a\" ,\t\"b\"  ", "\"b\"", true, "RFC 9110 §5.6.1: blanks and tabs in the list" },
	{ "\"a\", \"b\"", "\"c\"", false, "RFC 9110 §13.1.2: none of the list" },
	{ "\"a,b\"", "\"a,b\"", true, "RFC 9110 §8.8.3: a comma inside an opaque-tag" },
	{ "\"a,b\"", "\"b\"", false, "RFC 9110 §8.8.3: ...does not split it" },
	{ "*", "\"a\"", true, "RFC 9110 §13.1.2: \"*\" matches any current representation" },
	{ "*", NULL, true, "RFC 9110 §13.1.2: ...one without an ETag too" },
	{ " *", "\"a\"", true, "RFC 9110 §5.5: leading blanks" },
	{ "\"a\"", NULL, false, "RFC 9110 §13.1.2: no stored ETag, no match" },
	{ "", "\"a\"", false, "RFC 9110 §13.1.2: an empty field matches nothing" },
	{ "a", "\"a\"", false, "RFC 9110 §8.8.3: an unquoted tag is malformed" },
	{ "\"a", "\"a\"", false, "RFC 9110 §8.8.3: an unterminated tag is malformed" },
	{ "w/\"a\"", "\"a\"", false, "RFC 9110 §8.8.3: W/ is case-sensitive (%s\"W/\")" },
	{ "W/ \"a\"", "\"a\"", false, "RFC 9110 §8.8.3: no blank after W/" },
	{ "\"a\"", "a", false, "RFC 9110 §8.8.3: a malformed stored ETag matches nothing" },
	{ "\"x\", junk, \"a\"", "\"a\"", false,
	  "RFC 9110 §8.8.3: a malformed member: the list is invalid, no 304 (a 200 is safe)" },
	{ "*, \"b\"", "\"a\"", false,
	  "RFC 9110 §13.1.2: \"*\" / #entity-tag, not both: invalid, no 304" },
	{ "\"b\"\"a\"", "\"a\"", false,
	  "RFC 9110 §5.6.1: entity-tags without a comma between: invalid, no 304" },
};

START_TEST(test_etag_match)
{
	bool got = policy_etag_match(etag_match[_i].list, etag_match[_i].etag);

	ck_assert_msg(got == etag_match[_i].match, "%s: '%s' vs '%s': %d", etag_match[_i].rule,
		      etag_match[_i].list, etag_match[_i].etag ? etag_match[_i].etag : "(none)",
		      got);
}
END_TEST

/* ---- answering a conditional request from cache (RFC 9110 §13, RFC 9111 §4.3.2) ------------ */

#define D_RFC850 "Sunday, 06-Nov-94 08:49:37 GMT"
#define D_ASCTIME "Sun Nov  6 08:49:37 1994"

static const struct {
	const char *inm, *ims;			/* request, NULL when absent */
	const char *etag, *last_modified, *date;	/* stored, NULL when absent */
	time_t response_time;
	bool not_modified;
	const char *rule;
} not_modified[] = {
	{ "\"a\"", NULL, "\"a\"", NULL, D_STR, D, true, "RFC 9110 §13.1.2: a matching tag" },
	{ "W/\"a\"", NULL, "\"a\"", NULL, D_STR, D, true, "RFC 9110 §13.1.2: weak comparison" },
	{ "\"b\"", NULL, "\"a\"", NULL, D_STR, D, false, "RFC 9110 §13.1.2: no match: 200" },
	{ "\"x\", \"a\"", NULL, "\"a\"", NULL, D_STR, D, true, "RFC 9110 §13.1.2: in a list" },
	{ "*", NULL, NULL, D_MINUS_60, D_STR, D, true,
	  "RFC 9110 §13.1.2: \"*\": a stored representation exists" },
	{ "\"b\"", D_STR, "\"a\"", D_MINUS_60, D_STR, D, false,
	  "RFC 9110 §13.1.3: If-None-Match present: If-Modified-Since ignored" },
	{ "\"a\"", D_MINUS_60, "\"a\"", D_STR, D_STR, D, true,
	  "RFC 9110 §13.2.2: If-None-Match decides alone, though modified since" },
	{ "\"a\"", D_STR, NULL, D_MINUS_60, D_STR, D, false,
	  "RFC 9110 §13.2.2: If-None-Match and no stored ETag: 200, whatever the date" },
	{ NULL, D_STR, "\"a\"", D_MINUS_60, D_STR, D, true,
	  "RFC 9110 §13.1.3: Last-Modified earlier than the date" },
	{ NULL, D_STR, NULL, D_STR, D_STR, D, true,
	  "RFC 9110 §13.1.3: Last-Modified equal to the date: not modified" },
	{ NULL, D_MINUS_60, NULL, D_STR, D_STR, D, false,
	  "RFC 9110 §13.1.3: modified after the date: 200" },
	{ NULL, "garbage", NULL, D_MINUS_60, D_STR, D, false,
	  "RFC 9110 §13.1.3: an invalid If-Modified-Since is ignored: 200" },
	{ NULL, "", NULL, D_MINUS_60, D_STR, D, false, "RFC 9110 §13.1.3: empty is invalid" },
	{ NULL, D_STR " ", NULL, D_MINUS_60, D_STR, D, false,
	  "RFC 9110 §5.6.7: trailing junk makes the date invalid" },
	{ NULL, D_RFC850, NULL, D_MINUS_60, D_STR, D, true,
	  "RFC 9110 §5.6.7: the rfc850-date form is accepted" },
	{ NULL, D_ASCTIME, NULL, D_MINUS_60, D_STR, D, true,
	  "RFC 9110 §5.6.7: the asctime-date form is accepted" },
	{ NULL, D_STR, NULL, NULL, D_STR, D + 100, true,
	  "RFC 9111 §4.3.2: no Last-Modified: the Date" },
	{ NULL, D_STR, NULL, NULL, D_PLUS_60, D, false,
	  "RFC 9111 §4.3.2: no Last-Modified, a later Date: 200" },
	{ NULL, D_STR, NULL, D_MINUS_60, D_PLUS_3600, D + 3600, true,
	  "RFC 9111 §4.3.2: Last-Modified first, the Date not consulted" },
	{ NULL, D_STR, NULL, D_PLUS_60, D_MINUS_60, D, false,
	  "RFC 9111 §4.3.2: Last-Modified first, even when the Date is earlier" },
	{ NULL, D_STR, NULL, "garbage", D_MINUS_60, D, true,
	  "RFC 9111 §4.3.2: an invalid Last-Modified counts as none: the Date" },
	{ NULL, D_STR, NULL, NULL, NULL, D, true,
	  "RFC 9111 §4.3.2: no Last-Modified, no Date: received at the date" },
	{ NULL, D_STR, NULL, NULL, NULL, D + 1, false,
	  "RFC 9111 §4.3.2: ...received after the date: 200" },
	{ NULL, D_STR, NULL, NULL, "garbage", D + 1, false,
	  "RFC 9111 §4.3.2: an invalid Date counts as none: the response time" },
	{ NULL, NULL, "\"a\"", D_MINUS_60, D_STR, D, false,
	  "RFC 9110 §13.1: no precondition: 200" },
};

START_TEST(test_not_modified)
{
	bool got = policy_not_modified(not_modified[_i].inm, not_modified[_i].ims,
				       not_modified[_i].etag, not_modified[_i].last_modified,
				       not_modified[_i].date, not_modified[_i].response_time);

	ck_assert_msg(got == not_modified[_i].not_modified, "%s: %d", not_modified[_i].rule, got);
}
END_TEST

/* ---- Vary (RFC 9111 §4.1) -------------------------------------------------------------------- */

static const struct {
	const char *vary;
	size_t len;		/* of the output buffer; 0: plenty */
	int ret;
	const char *names;	/* checked when ret >= 0 */
	const char *rule;
} vary_names[] = {
	{ "Accept-Encoding", 0, 15, "accept-encoding", "RFC 9110 §5.1: names lower-cased" },
	{ "Accept-Encoding, Accept", 0, 22, "accept,accept-encoding",
	  "RFC 9111 §4.1: order does not matter: sorted" },
	{ "User-Agent,accept, ACCEPT ,Accept", 0, 17, "accept,user-agent",
	  "RFC 9110 §5.1: duplicates in any case, once" },
	{ "b, a, c, a, b", 0, 5, "a,b,c", "RFC 9111 §4.1: duplicates and order" },
	{ "\tAccept\t,\tCookie", 0, 13, "accept,cookie", "RFC 9110 §5.6.1: tabs as OWS" },
	{ "Accept,,, ,Cookie", 0, 13, "accept,cookie", "RFC 9110 §5.6.1: empty members" },
	{ "", 0, 0, "", "RFC 9111 §4.1: an empty Vary names nothing" },
	{ " , ,\t", 0, 0, "", "RFC 9110 §5.6.1: only empty members" },
	{ "*", 0, -1, NULL, "RFC 9111 §4.1: \"*\" always fails to match" },
	{ " * ", 0, -1, NULL, "RFC 9111 §4.1: \"*\" with blanks" },
	{ "Accept, *", 0, -1, NULL, "RFC 9111 §4.1: \"*\" among names" },
	{ "Accept,*,Cookie", 0, -1, NULL, "RFC 9111 §4.1: \"*\" in the middle" },
	{ "Accept", 7, 6, "accept", "a buffer that just fits" },
	{ "Accept", 6, -1, NULL, "one byte short: does not fit" },
	{ "Accept, Accept", 7, 6, "accept", "duplicates take no room" },
};

START_TEST(test_vary_names)
{
	char out[256];
	size_t len = vary_names[_i].len ? vary_names[_i].len : sizeof(out) - 1;
	int got;

	memset(out, 'x', sizeof(out));
	got = policy_vary_names(vary_names[_i].vary, out, len);
	ck_assert_msg(got == vary_names[_i].ret, "%s: returned %d, want %d", vary_names[_i].rule,
		      got, vary_names[_i].ret);
	if (got >= 0) {
		ck_assert_msg(strcmp(out, vary_names[_i].names) == 0, "%s: \"%s\", want \"%s\"",
			      vary_names[_i].rule, out, vary_names[_i].names);
		ck_assert_int_eq((size_t)got, strlen(out));
	}
	ck_assert_msg(out[len] == 'x', "%s: wrote beyond len", vary_names[_i].rule);
}
END_TEST

/* A request as policy_field_fn sees it: name, value, name, value, ..., NULL. */
struct fake_request {
	const char *const *fields;
};

/* policy_field_fn over a fake request: joins several fields of <name> with ", ". */
static const char *fake_field(void *ctx, const char *name, char *buf, size_t len)
{
	const struct fake_request *rq = ctx;
	size_t n = 0;
	bool found = false;

	buf[0] = '\0';
	for (const char *const *f = rq->fields; f[0]; f += 2) {
		int k;

		if (strcasecmp(f[0], name) != 0)
			continue;
		k = snprintf(buf + n, len - n, "%s%s", found ? ", " : "", f[1]);
		ck_assert(k >= 0 && (size_t)k < len - n);
		n += (size_t)k;
		found = true;
	}
	return found ? buf : NULL;
}

static const struct {
	const char *names;		/* normalised, as policy_vary_names() gives */
	const char *request[9];		/* name, value, ..., NULL */
	size_t len;			/* of the output buffer; 0: plenty */
	const char *key;		/* NULL: does not fit (-1) */
	const char *rule;
} vary_key[] = {
	{ "accept", { "Accept", "text/html" }, 0, "accept=text/html\n",
	  "RFC 9111 §4.1: the request's value" },
	{ "accept,accept-encoding", { "Accept-Encoding", "gzip", "Accept", "text/html" }, 0,
	  "accept=text/html\naccept-encoding=gzip\n",
	  "RFC 9111 §4.1: each name of the list, in its order" },
	{ "accept", { "Accept-Encoding", "gzip" }, 0, "accept\n",
	  "RFC 9111 §4.1: an absent field is a value of its own" },
	{ "accept", { "Accept", "" }, 0, "accept=\n",
	  "RFC 9111 §4.1: an empty field is not an absent one" },
	{ "accept", { "Accept", "  \t " }, 0, "accept=\n",
	  "RFC 9110 §5.5: only blanks: an empty value" },
	{ "accept-encoding", { "Accept-Encoding", "  gzip ,  deflate  " }, 0,
	  "accept-encoding=gzip,deflate\n",
	  "RFC 9111 §4.1: blanks around commas and at the ends removed (RFC 9110 §5.6.1)" },
	{ "accept-encoding", { "Accept-Encoding", "gzip,deflate" }, 0,
	  "accept-encoding=gzip,deflate\n", "RFC 9111 §4.1: ...the same key as without blanks" },
	{ "accept-encoding", { "Accept-Encoding", "gzip, deflate" }, 0,
	  "accept-encoding=gzip,deflate\n", "RFC 9111 §4.1: ...or with the usual one" },
	{ "accept", { "Accept", "text/html;  \t q=0.9" }, 0, "accept=text/html; q=0.9\n",
	  "RFC 9111 §4.1: a run of blanks is one space" },
	{ "accept", { "Accept", "a", "Accept", "b" }, 0, "accept=a,b\n",
	  "RFC 9110 §5.3: several fields are one list" },
	{ "accept", { "Accept", "a ", "Accept", " b" }, 0, "accept=a,b\n",
	  "RFC 9110 §5.3: ...the same key as \"a, b\"" },
	{ "accept-language", { "Accept-Language", "EN-us" }, 0, "accept-language=EN-us\n",
	  "RFC 9111 §4.1: values keep their case" },
	{ "accept,user-agent", { "User-Agent", "x" }, 0, "accept\nuser-agent=x\n",
	  "RFC 9111 §4.1: one absent, one present" },
	{ "", { NULL }, 0, "", "RFC 9111 §4.1: no names, empty key" },
	{ "accept", { "Accept", "a" }, 10, "accept=a\n", "a buffer that just fits" },
	{ "accept", { "Accept", "a" }, 9, NULL, "one byte short: does not fit" },
	{ "accept", { NULL }, 8, "accept\n", "absent, just fits" },
	{ "accept", { NULL }, 7, NULL, "absent, one byte short" },
};

START_TEST(test_vary_key)
{
	struct fake_request rq = { vary_key[_i].request };
	char out[512];
	size_t len = vary_key[_i].len ? vary_key[_i].len : sizeof(out) - 1;
	int got;

	memset(out, 'x', sizeof(out));
	got = policy_vary_key(vary_key[_i].names, fake_field, &rq, out, len);
	if (vary_key[_i].key == NULL) {
		ck_assert_msg(got == -1, "%s: returned %d", vary_key[_i].rule, got);
	} else {
		ck_assert_msg(got >= 0 && strcmp(out, vary_key[_i].key) == 0,
			      "%s: %d \"%s\", want \"%s\"", vary_key[_i].rule, got,
			      got >= 0 ? out : "", vary_key[_i].key);
		ck_assert_int_eq((size_t)got, strlen(vary_key[_i].key));
	}
	ck_assert_msg(out[len] == 'x', "%s: wrote beyond len", vary_key[_i].rule);
}
END_TEST

/* ---- invalidation (RFC 9111 §4.4; RFC 3986 §5 for references) ------------------------------ */

static const struct {
	const char *host, *target, *uri;
	size_t len;		/* of the key buffer; 0: plenty */
	const char *key;	/* NULL: nothing to invalidate (false) */
	const char *rule;
} invalidation[] = {
	{ "example.com", "/a/b", "http://example.com/x", 0, "example.com /x",
	  "RFC 9111 §4.4: an absolute URI on the same host" },
	{ "example.com", "/a/b", "http://EXAMPLE.Com/x", 0, "example.com /x",
	  "RFC 3986 §6.2.2.1: the host is case-insensitive" },
	{ "Example.COM", "/a/b", "/x", 0, "example.com /x", "RFC 3986 §6.2.2.1: in the key too" },
	{ "example.com", "/a/b", "HTTP://example.com/x", 0, "example.com /x",
	  "RFC 3986 §3.1: the scheme is case-insensitive" },
	{ "example.com", "/a/b", "http://example.com/X/Y", 0, "example.com /X/Y",
	  "RFC 3986 §6.2.2.1: the path keeps its case" },
	{ "example.com", "/a/b", "http://example.com", 0, "example.com /",
	  "RFC 9110 §4.2.3: an empty path is \"/\"" },
	{ "example.com", "/a/b", "http://example.com?q=1", 0, "example.com /?q=1",
	  "RFC 9110 §4.2.3: ...before a query too" },
	{ "example.com", "/a/b", "http://example.com/x?q=1#f", 0, "example.com /x?q=1",
	  "RFC 3986 §3.5: the fragment is not sent, dropped" },
	{ "example.com", "/a/b", "http://other.com/x", 0, NULL,
	  "RFC 9111 §4.4: another host is not invalidated" },
	{ "example.com", "/a/b", "http://example.com.evil/x", 0, NULL,
	  "RFC 9111 §4.4: a longer host is another host" },
	{ "example.com", "/a/b", "http://example.co/x", 0, NULL,
	  "RFC 9111 §4.4: a shorter host is another host" },
	{ "example.com", "/a/b", "http://example.com:8080/x", 0, NULL,
	  "RFC 9110 §4.3.1: another port is another origin" },
	{ "example.com:8080", "/a/b", "http://example.com:8080/x", 0, "example.com:8080 /x",
	  "RFC 9111 §4.4: the same host and port" },
	{ "example.com:8080", "/a/b", "http://example.com/x", 0, NULL,
	  "RFC 9110 §4.3.1: the default port is another port than 8080" },
	{ "example.com", "/a/b", "http://example.com:80/x", 0, "example.com /x",
	  "RFC 9110 §4.2.3: the default port is the same URI as none" },
	{ "example.com", "/a/b", "http://user@example.com/x", 0, NULL,
	  "RFC 9110 §4.2.4: userinfo is an error: nothing invalidated" },
	{ "example.com", "/a/b", "https://example.com/x", 0, NULL,
	  "RFC 9110 §4.2.2: https has no shared identity with http" },
	{ "example.com", "/a/b", "ftp://example.com/x", 0, NULL,
	  "RFC 9111 §4.4: another scheme" },
	{ "example.com", "/a/b", "mailto:a@example.com", 0, NULL,
	  "RFC 3986 §3.1: a scheme without authority" },
	{ "example.com", "/a/b", "//example.com/x", 0, "example.com /x",
	  "RFC 3986 §4.2: a network-path reference to the same host" },
	{ "example.com", "/a/b", "//other.com/x", 0, NULL,
	  "RFC 3986 §4.2: ...to another host" },
	{ "example.com", "/a/b", "/x?q=1", 0, "example.com /x?q=1",
	  "RFC 3986 §4.2: an absolute-path reference" },
	{ "example.com", "/a/b", "/x#f", 0, "example.com /x", "RFC 3986 §3.5: fragment dropped" },
	{ "example.com", "/a/b", "  /x", 0, "example.com /x", "RFC 9110 §5.5: leading blanks" },
	{ "example.com", "/a/c?x=1", "b", 0, "example.com /a/b",
	  "RFC 3986 §5.2.3: a relative path merged with the base's directory" },
	{ "example.com", "/a/c?x=/y/z", "b", 0, "example.com /a/b",
	  "RFC 3986 §5.2.3: a '/' in the base's query is no directory" },
	{ "example.com", "/", "b?q", 0, "example.com /b?q", "RFC 3986 §5.2.3: from the root" },
	{ "example.com", "/a/c", "b#f", 0, "example.com /a/b",
	  "RFC 3986 §5.2.2: a relative path, fragment dropped" },
	/* RFC 3986 §5.4.1's examples, base "http://a/b/c/d;p?q" */
	{ "a", "/b/c/d;p?q", "g", 0, "a /b/c/g", "RFC 3986 §5.4.1: \"g\"" },
	{ "a", "/b/c/d;p?q", "g/", 0, "a /b/c/g/", "RFC 3986 §5.4.1: \"g/\"" },
	{ "a", "/b/c/d;p?q", "/g", 0, "a /g", "RFC 3986 §5.4.1: \"/g\"" },
	{ "a", "/b/c/d;p?q", "//g", 0, NULL, "RFC 3986 §5.4.1: \"//g\" is host g" },
	{ "a", "/b/c/d;p?q", "g?y", 0, "a /b/c/g?y", "RFC 3986 §5.4.1: \"g?y\"" },
	{ "a", "/b/c/d;p?q", "g#s", 0, "a /b/c/g", "RFC 3986 §5.4.1: \"g#s\", fragment dropped" },
	{ "a", "/b/c/d;p?q", ";x", 0, "a /b/c/;x", "RFC 3986 §5.4.1: \";x\"" },
	{ "a", "/b/c/d;p?q", "g;x?y#s", 0, "a /b/c/g;x?y", "RFC 3986 §5.4.1: \"g;x?y#s\"" },
	{ "a", "/b/c/d;p?q", "?y", 0, "a /b/c/d;p?y", "RFC 3986 §5.4.1: \"?y\" keeps the path" },
	{ "a", "/b/c/d;p?q", "#s", 0, "a /b/c/d;p?q",
	  "RFC 3986 §5.4.1: \"#s\" is the base itself, fragment dropped" },
	{ "a", "/b/c/d;p?q", "./g", 0, "a /b/c/g", "RFC 3986 §5.4.1: \"./g\"" },
	{ "a", "/b/c/d;p?q", "../g", 0, "a /b/g", "RFC 3986 §5.4.1: \"../g\"" },
	{ "a", "/b/c/d;p?q", "../../g", 0, "a /g", "RFC 3986 §5.4.1: \"../../g\"" },
	{ "a", "/b/c/d;p?q", "/./g", 0, "a /g", "RFC 3986 §5.4.2: \"/./g\"" },
	{ "a", "/b/c/d;p?q", "g:h", 0, NULL, "RFC 3986 §5.4.1: \"g:h\" has a scheme" },
	{ "example.com", "/a/b", "", 0, NULL,
	  "RFC 3986 §5.4.1: empty is the target itself, already invalidated: nothing more" },
	{ "example.com", "/a/b", "   ", 0, NULL, "RFC 9110 §5.5: blanks only: empty" },
	{ "example.com", "/a/b", "/x", 15, "example.com /x", "a key that just fits" },
	{ "example.com", "/a/b", "/x", 14, NULL, "one byte short: does not fit" },
};

START_TEST(test_invalidation_key)
{
	char key[512];
	size_t len = invalidation[_i].len ? invalidation[_i].len : sizeof(key);
	bool got;

	key[0] = '\0';
	got = policy_invalidation_key(invalidation[_i].host, invalidation[_i].target,
				      invalidation[_i].uri, key, len);
	if (invalidation[_i].key == NULL)
		ck_assert_msg(!got, "%s: '%s' gave \"%s\"", invalidation[_i].rule,
			      invalidation[_i].uri, key);
	else
		ck_assert_msg(got && strcmp(key, invalidation[_i].key) == 0,
			      "%s: '%s' gave %d \"%s\", want \"%s\"", invalidation[_i].rule,
			      invalidation[_i].uri, got, got ? key : "", invalidation[_i].key);
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
	tcase_add_loop_test(tc, test_cc_parse_more, 0, ARRAY_LEN(cc_more));
	tcase_add_loop_test(tc, test_heuristically_cacheable, 0, ARRAY_LEN(heuristic_status));
	tcase_add_loop_test(tc, test_storable_config, 0, ARRAY_LEN(storable_cfg));
	tcase_add_loop_test(tc, test_lifetime, 0, ARRAY_LEN(heuristic));
	tcase_add_loop_test(tc, test_worth_keeping, 0, ARRAY_LEN(worth));
	tcase_add_loop_test(tc, test_reuse, 0, ARRAY_LEN(reuse));
	tcase_add_loop_test(tc, test_stale_if_error, 0, ARRAY_LEN(stale_if_error));
	tcase_add_loop_test(tc, test_etag_match, 0, ARRAY_LEN(etag_match));
	tcase_add_loop_test(tc, test_not_modified, 0, ARRAY_LEN(not_modified));
	tcase_add_loop_test(tc, test_vary_names, 0, ARRAY_LEN(vary_names));
	tcase_add_loop_test(tc, test_vary_key, 0, ARRAY_LEN(vary_key));
	tcase_add_loop_test(tc, test_invalidation_key, 0, ARRAY_LEN(invalidation));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(policy_suite)

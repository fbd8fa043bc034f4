/* Unit tests for the pure parts of origin/api.c: routes, methods, JSON validation. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "check_main.h"

static const struct {
	const char *path;
	enum api_route route;
	uint64_t id;
} paths[] = {
	{ "/health", API_HEALTH, 0 },
	{ "/api/test", API_TEST, 0 },
	{ "/api/users", API_USERS, 0 },
	{ "/api/users/1", API_USER, 1 },
	{ "/api/users/1234567890", API_USER, 1234567890 },
	{ "/api/users/9223372036854775808", API_USER, 9223372036854775808ULL },	/* 2^63 */
	{ "/api/users/9223372036854775809", API_NOT_FOUND, 0 },
	{ "/api/users/99999999999999999999", API_NOT_FOUND, 0 },	/* would overflow */
	{ "/api/users/0", API_NOT_FOUND, 0 },
	{ "/api/users/01", API_NOT_FOUND, 0 },
	{ "/api/users/-1", API_NOT_FOUND, 0 },
	{ "/api/users/+1", API_NOT_FOUND, 0 },
	{ "/api/users/1a", API_NOT_FOUND, 0 },
	{ "/api/users/1/", API_NOT_FOUND, 0 },
	{ "/api/users/", API_NOT_FOUND, 0 },
	{ "/api/users/abc", API_NOT_FOUND, 0 },
	{ "/api/large", API_LARGE, 0 },
	{ "/api/large/", API_NOT_FOUND, 0 },
	{ "/API/test", API_NOT_FOUND, 0 },	/* paths are case-sensitive */
	{ "/", API_NOT_FOUND, 0 },
	{ "", API_NOT_FOUND, 0 },
};

START_TEST(test_routes)
{
	struct api_match m;

	api_route_match(paths[_i].path, &m);
	ck_assert_msg(m.route == paths[_i].route, "%s: route %d, want %d", paths[_i].path,
		      m.route, paths[_i].route);
	ck_assert_uint_eq(m.id, paths[_i].id);
	ck_assert_uint_eq(m.allowed != 0, m.route != API_NOT_FOUND);
}
END_TEST

START_TEST(test_methods_and_allow)
{
	struct api_match m;
	char allow[128];

	ck_assert_uint_eq(api_method_parse("GET"), API_GET);
	ck_assert_uint_eq(api_method_parse("PATCH"), API_PATCH);
	ck_assert_uint_eq(api_method_parse("get"), 0);	/* RFC 9110 §9.1: case-sensitive */
	ck_assert_uint_eq(api_method_parse("BREW"), 0);
	api_route_match("/api/users/7", &m);
	api_allow_format(m.allowed, allow, sizeof(allow));
	ck_assert_str_eq(allow, "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
	api_route_match("/api/users", &m);
	api_allow_format(m.allowed, allow, sizeof(allow));
	ck_assert_str_eq(allow, "GET, HEAD, POST, OPTIONS");
	api_route_match("/health", &m);
	api_allow_format(m.allowed, allow, sizeof(allow));
	ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
}
END_TEST

static const struct {
	const char *email;
	bool ok;
} emails[] = {
	{ "ann@example.org", true },
	{ "a.b+tag@sub.example.co.uk", true },
	{ "x@a-b.io", true },
	{ "ann@localhost", false },		/* the domain needs a dot */
	{ "ann", false },
	{ "@example.org", false },
	{ "ann@", false },
	{ "a@b@example.org", false },
	{ "a b@example.org", false },
	{ "ann@exa mple.org", false },
	{ "ann@-example.org", false },
	{ "ann@example-.org", false },
	{ "ann@example..org", false },
	{ "ann@.example.org", false },
	{ "ann@example.org.", false },
	{ "a(b)@example.org", false },
	{ "ann@exam_ple.org", false },
	{ ".ann@example.org", false },		/* RFC 5322 dot-atom */
	{ "ann.@example.org", false },
	{ "a..nn@example.org", false },
	{ "a.n.n@example.org", true },
	{ "\xc3\xa9@example.org", false },	/* ASCII only */
};

START_TEST(test_email)
{
	ck_assert_msg(api_email_valid(emails[_i].email) == emails[_i].ok, "%s", emails[_i].email);
}
END_TEST

START_TEST(test_email_lengths)
{
	char local[70], email[300];

	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(email, sizeof(email), "%s@example.org", local);
	ck_assert(api_email_valid(email));
	memset(local, 'a', 65);
	local[65] = '\0';
	snprintf(email, sizeof(email), "%s@example.org", local);
	ck_assert(!api_email_valid(email));	/* local part over 64 */
}
END_TEST

static const struct {
	const char *body;
	bool require_all;
	uint64_t id;
	int ret;
	const char *message;	/* substring of the reason, or the parsed name when ret is 0 */
} bodies[] = {
	{ "{\"name\":\"Ann\",\"email\":\"ann@example.org\"}", true, 0, 0, "Ann" },
	{ " {\"email\":\"ann@example.org\",\"name\":\"A\\u00e9\"}\n ", true, 0, 0, "A\xc3\xa9" },
	{ "{\"name\":\"Ann\"}", false, 5, 0, "Ann" },
	{ "{\"name\":\"Ann\",\"id\":5,\"version\":9,\"created_at\":\"x\"}", false, 5, 0, "Ann" },
	{ "", true, 0, -EINVAL, "body is empty" },
	{ "{\"name\":\"Ann\"", true, 0, -EINVAL, "unexpected end of input" },
	{ "{\"name\":\"Ann\",\"email\":\"a@b.org\"} x", true, 0, -EINVAL, "invalid JSON at byte 33" },
	{ "{'name':'Ann'}", true, 0, -EINVAL, "invalid JSON" },		/* strict mode */
	{ "[1,2]", true, 0, -EINVAL, "expected a JSON object" },
	{ "\"Ann\"", true, 0, -EINVAL, "expected a JSON object" },
	{ "{\"name\":\"Ann\"}", true, 0, -EINVAL, "'email' is required" },
	{ "{\"email\":\"ann@example.org\"}", true, 0, -EINVAL, "'name' is required" },
	{ "{}", false, 1, -EINVAL, "nothing to change" },
	{ "{\"name\":42,\"email\":\"a@b.org\"}", true, 0, -EINVAL, "'name' must be a string" },
	{ "{\"name\":null,\"email\":\"a@b.org\"}", true, 0, -EINVAL, "'name' must be a string" },
	{ "{\"name\":\"\",\"email\":\"a@b.org\"}", true, 0, -EINVAL, "'name' must not be empty" },
	{ "{\"name\":\"a\\u0000b\",\"email\":\"a@b.org\"}", true, 0, -EINVAL, "NUL" },
	{ "{\"name\":\"a\\nb\",\"email\":\"a@b.org\"}", true, 0, -EINVAL, "control characters" },
	{ "{\"name\":\"Ann\",\"email\":\"not-an-email\"}", true, 0, -EINVAL, "not a valid address" },
	{ "{\"name\":\"Ann\",\"email\":\"a@b.org\",\"role\":\"admin\"}", true, 0, -EINVAL,
	  "unknown field 'role'" },
	{ "{\"name\":\"Ann\",\"id\":6}", false, 5, -EINVAL, "'id' cannot be set" },
	{ "{\"name\":\"Ann\",\"email\":\"a@b.org\",\"id\":1}", true, 0, -EINVAL, "'id' cannot be set" },
	{ "{\"name\":\"\xff\xfe\",\"email\":\"a@b.org\"}", true, 0, -EINVAL, "invalid JSON" },	/* bad UTF-8 */
	{ "{\"name\":\"\xc0\xaf\",\"email\":\"a@b.org\"}", true, 0, -EINVAL, "UTF-8" },	/* overlong '/' */
	{ "{\"name\":\"\xed\xa0\x80\",\"email\":\"a@b.org\"}", true, 0, -EINVAL, "UTF-8" },	/* a surrogate */
	{ "{\"name\":\"\xf4\x90\x80\x80\",\"email\":\"a@b.org\"}", true, 0, -EINVAL, "UTF-8" },	/* past U+10FFFF */
	{ "{\"name\":\"\xf0\x9f\x98\x80\",\"email\":\"a@b.org\"}", true, 0, 0, "\xf0\x9f\x98\x80" },	/* U+1F600 */
	{ "{\"name\":\"a\",\"email\":\"a@b.org\",\"version\":NaN}", true, 0, -EINVAL, "" },
	{ "{\"name\":\"a\",\"email\":\"a@b.org\",\"version\":1.5}", true, 0, -EINVAL,
	  "'version' must be a whole number" },
	{ "{\"name\":\"a\",\"email\":\"a@b.org\",\"created_at\":1}", true, 0, -EINVAL,
	  "'created_at' must be a string" },
	{ "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	  true, 0, -EINVAL, "invalid JSON" },	/* nesting limit */
};

START_TEST(test_user_input)
{
	struct api_user_input in;
	char err[256] = "";
	int r = api_user_input_parse(bodies[_i].body, strlen(bodies[_i].body),
				     bodies[_i].require_all, bodies[_i].id, &in, err, sizeof(err));

	ck_assert_msg(r == bodies[_i].ret, "body %s: returned %d (%s)", bodies[_i].body, r, err);
	if (r == 0)
		ck_assert_str_eq(in.name, bodies[_i].message);
	else
		ck_assert_msg(strstr(err, bodies[_i].message), "body %s: reason \"%s\" lacks \"%s\"",
			      bodies[_i].body, err, bodies[_i].message);
}
END_TEST

START_TEST(test_user_input_name_limit)
{
	char body[USER_NAME_MAX + 64], err[256];
	struct api_user_input in;
	int n;

	n = snprintf(body, sizeof(body), "{\"email\":\"a@b.org\",\"name\":\"%0*d\"}",
		     USER_NAME_MAX, 0);
	ck_assert_int_eq(api_user_input_parse(body, (size_t)n, true, 0, &in, err, sizeof(err)), 0);
	n = snprintf(body, sizeof(body), "{\"email\":\"a@b.org\",\"name\":\"%0*d\"}",
		     USER_NAME_MAX + 1, 0);
	ck_assert_int_eq(api_user_input_parse(body, (size_t)n, true, 0, &in, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "longer than"));
}
END_TEST

/* json-c stops at a NUL byte; the body must not be read as shorter than it is. */
START_TEST(test_user_input_nul)
{
	static const char body[] = "{\"name\":\"a\",\"email\":\"a@b.org\"}\0junk";
	struct api_user_input in;
	char err[256];

	ck_assert_int_eq(api_user_input_parse(body, sizeof(body) - 1, true, 0, &in, err,
					      sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_routes, 0, ARRAY_LEN(paths));
	tcase_add_test(tc, test_methods_and_allow);
	tcase_add_loop_test(tc, test_email, 0, ARRAY_LEN(emails));
	tcase_add_test(tc, test_email_lengths);
	tcase_add_loop_test(tc, test_user_input, 0, ARRAY_LEN(bodies));
	tcase_add_test(tc, test_user_input_name_limit);
	tcase_add_test(tc, test_user_input_nul);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(api_suite)

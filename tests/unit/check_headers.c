/* Unit tests for proxy/headers.c: field lists, their bounds, and the proxy's rules for
 * hop-by-hop fields, Via and X-Forwarded-For (RFC 9110 §7.6, RFC 9112 §5). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "headers.h"

/* The byte count a list must show: names plus values, as headers.h defines it. */
static size_t bytes_of(const struct header_list *l)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += strlen(l->v[i].name) + strlen(l->v[i].value);
	return n;
}

/* Feeds "Name: value" lines separated by '\n' to headers_add_line(); each must be taken. */
static void add_lines(struct header_list *l, const char *text)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", text);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		ck_assert_msg(headers_add_line(l, line, strlen(line)) == 0, "refused \"%s\"", line);
}

/* The names in <l>, joined by spaces. */
static void names_of(const struct header_list *l, char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		size_t used = strlen(out);

		snprintf(out + used, len - used, "%s%s", i ? " " : "", l->v[i].name);
	}
}

/* ---- parsing field lines ------------------------------------------------------------------ */

static const struct {
	const char *lines[4];	/* fed in order, as libcurl's header callback delivers them */
	int ret;		/* of the last line; every earlier one returns 0 */
	size_t n;		/* fields in the list afterwards */
	const char *name, *value;	/* the last field */
	const char *rule;
} lines[] = {
	{ { "Content-Type: text/html\r\n" }, 0, 1, "Content-Type", "text/html",
	  "RFC 9112 §5: field-name \":\" OWS field-value OWS" },
	{ { "X-A:  padded \t\r\n" }, 0, 1, "X-A", "padded",
	  "RFC 9110 §5.5: leading and trailing whitespace is not part of the value" },
	{ { "X-A:in\tside\n" }, 0, 1, "X-A", "in\tside",
	  "inner whitespace is kept; LF alone ends a line" },
	{ { "X-A:\r\n" }, 0, 1, "X-A", "", "RFC 9110 §5.5: an empty value is allowed" },
	{ { "X-A: b:c\r\n" }, 0, 1, "X-A", "b:c", "only the first colon ends the name" },
	{ { "x-a: 1" }, 0, 1, "x-a", "1", "a name keeps its case; no line end is fine" },
	{ { "!#$%&'*+-.^_`|~09azAZ: v" }, 0, 1, "!#$%&'*+-.^_`|~09azAZ", "v",
	  "RFC 9110 §5.6.2: every tchar may make a name" },
	{ { "X-A: a\r\n", " b\r\n" }, 0, 1, "X-A", "a b",
	  "RFC 9112 §5.2: an obs-fold is replaced by SP" },
	{ { "X-A: a\r\n", "\t  b  \r\n" }, 0, 1, "X-A", "a b",
	  "RFC 9112 §5.2: obs-fold starts with SP or HTAB; its blanks become one SP" },
	{ { "X-A: a\r\n", " b\r\n", " c\r\n" }, 0, 1, "X-A", "a b c", "obs-fold over three lines" },
	{ { "X-A: a\r\n", "X-B: b\r\n", " c\r\n" }, 0, 2, "X-B", "b c",
	  "obs-fold continues the latest field" },
	{ { "X-A:\r\n", " b\r\n" }, 0, 1, "X-A", "b", "obs-fold onto an empty value" },
	{ { "X-A: a\r\n", "   \r\n" }, 0, 1, "X-A", "a",
	  "RFC 9110 §5.5: a blank continuation adds only whitespace, which is trimmed" },
	{ { " b\r\n" }, -EINVAL, 0, NULL, NULL, "obs-fold with no field to continue" },
	{ { "X-A : a\r\n" }, -EINVAL, 0, NULL, NULL,
	  "RFC 9112 §5.1: no whitespace between the name and the colon" },
	{ { ": a\r\n" }, -EINVAL, 0, NULL, NULL, "RFC 9110 §5.1: a name is at least one tchar" },
	{ { "X(A): a\r\n" }, -EINVAL, 0, NULL, NULL, "RFC 9110 §5.6.2: delimiters are not tchars" },
	{ { "X\x01" "A: a\r\n" }, -EINVAL, 0, NULL, NULL, "control characters are not tchars" },
	{ { "X\xc3\xa9: a\r\n" }, -EINVAL, 0, NULL, NULL, "non-ASCII bytes are not tchars" },
	{ { "no colon here\r\n" }, -EINVAL, 0, NULL, NULL, "a line without a colon" },
	{ { "HTTP/1.1 200 OK\r\n" }, -EINVAL, 0, NULL, NULL, "a status line is not a field" },
	{ { "\r\n" }, -EINVAL, 0, NULL, NULL, "the empty line that ends the fields" },
	{ { "X-A: 1\r\n", "bad line\r\n" }, -EINVAL, 1, "X-A", "1",
	  "a refused line leaves the list as it was" },
	{ { "Set-Cookie: a=1\r\n", "Set-Cookie: b=2\r\n" }, 0, 2, "Set-Cookie", "b=2",
	  "RFC 9110 §5.3: repeated Set-Cookie fields stay separate" },
};

START_TEST(test_add_line)
{
	struct header_list l = { 0 };
	size_t k;
	int r = 0;

	for (k = 0; lines[_i].lines[k]; k++) {
		const char *line = lines[_i].lines[k];

		r = headers_add_line(&l, line, strlen(line));
		if (lines[_i].lines[k + 1])
			ck_assert_msg(r == 0, "%s: line %zu returned %d", lines[_i].rule, k, r);
	}
	ck_assert_msg(r == lines[_i].ret, "%s: returned %d, want %d", lines[_i].rule, r,
		      lines[_i].ret);
	ck_assert_msg(l.n == lines[_i].n, "%s: %zu fields", lines[_i].rule, l.n);
	if (lines[_i].name) {
		ck_assert_str_eq(l.v[l.n - 1].name, lines[_i].name);
		ck_assert_msg(strcmp(l.v[l.n - 1].value, lines[_i].value) == 0,
			      "%s: value \"%s\", want \"%s\"", lines[_i].rule, l.v[l.n - 1].value,
			      lines[_i].value);
	}
	ck_assert_msg(l.bytes == bytes_of(&l), "%s: bytes %zu, but names and values make %zu",
		      lines[_i].rule, l.bytes, bytes_of(&l));
	headers_free(&l);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_uint_eq(l.bytes, 0);
}
END_TEST

/* headers_add() takes lengths: the strings need no NUL, and an embedded NUL in a name is
 * no tchar. */
START_TEST(test_add_lengths)
{
	struct header_list l = { 0 };

	ck_assert_int_eq(headers_add(&l, "X-AB", 3, " value!", 6), 0);
	ck_assert_str_eq(l.v[0].name, "X-A");
	ck_assert_str_eq(l.v[0].value, "value");
	ck_assert_int_eq(headers_add(&l, "X\0Y", 3, "v", 1), -EINVAL);
	ck_assert_int_eq(headers_add(&l, "X", 0, "v", 1), -EINVAL);
	ck_assert_int_eq(headers_add(&l, "Y", 1, "", 0), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_eq(l.bytes, 3 + 5 + 1);
	headers_free(&l);
}
END_TEST

/* ---- bounds (STYLE habit 5) ----------------------------------------------------------------- */

START_TEST(test_max_count)
{
	struct header_list l = { 0 };
	char name[16];

	for (int i = 0; i < HEADERS_MAX_COUNT; i++) {
		snprintf(name, sizeof(name), "X-%d", i);
		ck_assert_int_eq(headers_add(&l, name, strlen(name), "v", 1), 0);
	}
	ck_assert_int_eq(headers_add(&l, "X-Last", 6, "v", 1), -E2BIG);
	ck_assert_int_eq(headers_add_line(&l, "X-Last: v\r\n", 11), -E2BIG);
	ck_assert_uint_eq(l.n, HEADERS_MAX_COUNT);
	ck_assert_ptr_null(headers_get(&l, "X-Last"));
	/* a continuation adds no field: still allowed */
	ck_assert_int_eq(headers_add_line(&l, " w\r\n", 4), 0);
	ck_assert_str_eq(l.v[HEADERS_MAX_COUNT - 1].value, "v w");
	/* room again after a removal */
	headers_remove(&l, "X-0");
	ck_assert_int_eq(headers_add(&l, "X-Last", 6, "v", 1), 0);
	ck_assert_uint_eq(l.bytes, bytes_of(&l));
	headers_free(&l);
}
END_TEST

START_TEST(test_max_bytes)
{
	struct header_list l = { 0 };
	size_t big = HEADERS_MAX_BYTES - 1;
	char *value = malloc(big + 3);

	ck_assert_ptr_nonnull(value);
	memset(value, 'v', big + 2);
	value[big + 2] = '\0';
	/* one byte too many, then exactly the bound: names count, blanks around do not */
	ck_assert_int_eq(headers_add(&l, "X", 1, value, big + 1), -E2BIG);
	ck_assert_uint_eq(l.n, 0);
	value[0] = ' ';
	ck_assert_int_eq(headers_add(&l, "X", 1, value, big + 1), 0);
	ck_assert_uint_eq(l.bytes, HEADERS_MAX_BYTES);
	ck_assert_int_eq(headers_add(&l, "Y", 1, "", 0), -E2BIG);
	ck_assert_int_eq(headers_add_line(&l, "Y:\r\n", 4), -E2BIG);
	ck_assert_int_eq(headers_add_line(&l, " more\r\n", 7), -E2BIG);	/* obs-fold too */
	ck_assert_uint_eq(l.n, 1);
	ck_assert_uint_eq(strlen(l.v[0].value), big);
	ck_assert_uint_eq(l.bytes, HEADERS_MAX_BYTES);
	headers_free(&l);

	/* an obs-fold that lands exactly on the bound is taken */
	ck_assert_int_eq(headers_add(&l, "X", 1, value + 1, big - 2), 0);
	ck_assert_int_eq(headers_add_line(&l, " v\r\n", 4), 0);
	ck_assert_uint_eq(l.bytes, HEADERS_MAX_BYTES);
	ck_assert_uint_eq(l.bytes, bytes_of(&l));
	headers_free(&l);
	free(value);
}
END_TEST

/* ---- lookups and removal -------------------------------------------------------------------- */

START_TEST(test_get_remove)
{
	struct header_list l = { 0 };
	char names[256];

	add_lines(&l, "Content-Type: a\nSet-Cookie: 1\nX-Other: o\nset-cookie: 2\nSET-COOKIE: 3");
	/* RFC 9110 §5.1: field names are case-insensitive; the first field answers */
	ck_assert_str_eq(headers_get(&l, "content-type"), "a");
	ck_assert_str_eq(headers_get(&l, "CONTENT-TYPE"), "a");
	ck_assert_str_eq(headers_get(&l, "Set-Cookie"), "1");
	ck_assert_ptr_null(headers_get(&l, "Content"));
	ck_assert_ptr_null(headers_get(&l, "Content-Type-X"));
	ck_assert_ptr_null(headers_get(&l, ""));
	headers_remove(&l, "SET-cookie");
	names_of(&l, names, sizeof(names));
	ck_assert_str_eq(names, "Content-Type X-Other");	/* every one, order kept */
	ck_assert_uint_eq(l.bytes, bytes_of(&l));
	headers_remove(&l, "Absent");
	ck_assert_uint_eq(l.n, 2);
	headers_remove(&l, "content-type");
	headers_remove(&l, "x-other");
	ck_assert_uint_eq(l.n, 0);
	ck_assert_uint_eq(l.bytes, 0);
	ck_assert_int_eq(headers_add(&l, "Again", 5, "1", 1), 0);	/* usable after */
	ck_assert_str_eq(headers_get(&l, "again"), "1");
	headers_free(&l);
	headers_free(&l);	/* twice is harmless */
}
END_TEST

/* ---- hop-by-hop ------------------------------------------------------------------------------ */

static const struct {
	const char *in;		/* fields, one a line */
	const char *out;	/* the names left, in order */
	const char *rule;
} strip[] = {
	{ "Connection: close\nKeep-Alive: timeout=5\nProxy-Connection: keep-alive\nTE: trailers\n"
	  "Trailer: X-Sum\nTransfer-Encoding: chunked\nUpgrade: h2c\nProxy-Authenticate: Basic\n"
	  "Proxy-Authorization: Basic eA==\nContent-Type: text/plain",
	  "Content-Type", "RFC 9110 §7.6.1: the fixed hop-by-hop set never passes" },
	{ "TRANSFER-ENCODING: chunked\nkeep-alive: 5\nte: x\nX: 1", "X",
	  "RFC 9110 §5.1: the fixed set, any case" },
	{ "Connection: X-Foo\nX-Foo: 1\nX-Bar: 2", "X-Bar",
	  "RFC 9110 §7.6.1: fields named in Connection are removed" },
	{ "connection: x-foo\nX-FOO: 1\nX-Bar: 2", "X-Bar", "Connection's names, any case" },
	{ "Connection: a, b ,c\nA: 1\nB: 2\nC: 3\nD: 4", "D",
	  "RFC 9110 §5.6.1: a list, with optional whitespace" },
	{ "Connection: a\nA: 1\nConnection: b\nB: 2\nC: 3", "C",
	  "RFC 9110 §5.3: several Connection fields combine" },
	{ "Connection: ,, a ,\nA: 1\nB: 2", "B", "empty list members are ignored" },
	{ "Connection: Cache-Control\nCache-Control: max-age=60\nVary: A", "Vary",
	  "any field may be named, even an end-to-end one" },
	{ "Connection: X-Fooo\nX-Foo: 1", "X-Foo", "names match whole tokens" },
	{ "Connection: Foo\nX-Foo: 1\nFoo-X: 2", "X-Foo Foo-X", "...not parts of names" },
	{ "X-Connection: a\nA: 1", "X-Connection A", "only Connection itself lists names" },
	{ "Set-Cookie: a=1\nTE: x\nSet-Cookie: b=2", "Set-Cookie Set-Cookie",
	  "repeated end-to-end fields stay, in order" },
	{ "Via: 1.1 a\nX-Forwarded-For: 1.2.3.4\nAge: 3", "Via X-Forwarded-For Age",
	  "Via, X-Forwarded-For and Age are end-to-end" },
	{ "Connection: close", "", "only hop-by-hop fields: nothing left" },
};

START_TEST(test_strip_hop_by_hop)
{
	struct header_list l = { 0 };
	char names[512];

	add_lines(&l, strip[_i].in);
	headers_strip_hop_by_hop(&l);
	names_of(&l, names, sizeof(names));
	ck_assert_msg(strcmp(names, strip[_i].out) == 0, "%s: left \"%s\", want \"%s\"",
		      strip[_i].rule, names, strip[_i].out);
	ck_assert_uint_eq(l.bytes, bytes_of(&l));
	headers_free(&l);
}
END_TEST

static const struct {
	const char *name;
	bool hop;
} hop_names[] = {
	{ "Connection", true },	{ "connection", true },	{ "Keep-Alive", true },
	{ "Proxy-Connection", true },	{ "TE", true },	{ "Trailer", true },
	{ "Transfer-Encoding", true },	{ "UPGRADE", true },	{ "Proxy-Authenticate", true },
	{ "Proxy-Authorization", true },	{ "Authorization", false },
	{ "Trailers", false },
	{ "Content-Length", false },	{ "Via", false },	{ "", false },
};

START_TEST(test_is_hop_by_hop)
{
	ck_assert_msg(headers_is_hop_by_hop(hop_names[_i].name) == hop_names[_i].hop, "%s",
		      hop_names[_i].name);
}
END_TEST

static const struct {
	const char *list;
	const char *name;
	bool has;
} list_has[] = {
	{ "close", "close", true },
	{ "close", "Close", true },		/* RFC 9110 §7.6.1: case-insensitive */
	{ "keep-alive, Upgrade", "upgrade", true },
	{ "a,b", "b", true },
	{ " a ,\tb\t", "b", true },		/* OWS around members */
	{ "a,,b", "b", true },
	{ "ab", "a", false },
	{ "a", "ab", false },
	{ "a b", "a", false },			/* one member "a b", not two */
	{ "", "a", false },
	{ NULL, "a", false },
};

START_TEST(test_list_has)
{
	ck_assert_msg(headers_list_has(list_has[_i].list, list_has[_i].name) == list_has[_i].has,
		      "\"%s\" has \"%s\"", list_has[_i].list ? list_has[_i].list : "(null)",
		      list_has[_i].name);
}
END_TEST

/* ---- Via and X-Forwarded-For ----------------------------------------------------------------- */

static const struct {
	size_t len;
	const char *existing;
	const char *add;
	int ret;
	const char *out;
	const char *rule;
} join[] = {
	{ 64, NULL, "1.1 mtps", 0, "1.1 mtps", "RFC 9110 §7.6.3: the first Via member" },
	{ 64, "", "1.1 mtps", 0, "1.1 mtps", "an empty field is no member" },
	{ 64, " \t ", "1.1 mtps", 0, "1.1 mtps", "a blank field is no member" },
	{ 64, "1.0 fred, 1.1 p.example", "1.1 mtps", 0, "1.0 fred, 1.1 p.example, 1.1 mtps",
	  "RFC 9110 §7.6.3: each proxy appends its own member" },
	{ 64, " 203.0.113.7 ", "198.51.100.2", 0, "203.0.113.7, 198.51.100.2",
	  "X-Forwarded-For grows by the client address; blanks trimmed" },
	{ 5, "a", "b", 0, "a, b", "an exact fit (with the NUL)" },
	{ 4, "a", "b", -E2BIG, "b", "one byte short: the new member alone" },
	{ 2, "a", "b", -E2BIG, "b", "only the new member fits" },
	{ 2, NULL, "b", 0, "b", "the new member alone, exactly" },
	{ 3, "a", "bcd", -E2BIG, "bc", "nothing fits: truncated, still terminated" },
};

START_TEST(test_join)
{
	char buf[128];

	memset(buf, 'x', sizeof(buf));
	ck_assert_msg(headers_join(buf, join[_i].len, join[_i].existing, join[_i].add) ==
			      join[_i].ret,
		      "%s: wrong return", join[_i].rule);
	ck_assert_msg(strcmp(buf, join[_i].out) == 0, "%s: \"%s\", want \"%s\"", join[_i].rule,
		      buf, join[_i].out);
	ck_assert_msg(buf[join[_i].len] == 'x', "%s: wrote past the buffer", join[_i].rule);
}
END_TEST

static Suite *headers_suite(void)
{
	Suite *s = suite_create("headers");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_add_line, 0, ARRAY_LEN(lines));
	tcase_add_test(tc, test_add_lengths);
	tcase_add_test(tc, test_max_count);
	tcase_add_test(tc, test_max_bytes);
	tcase_add_test(tc, test_get_remove);
	tcase_add_loop_test(tc, test_strip_hop_by_hop, 0, ARRAY_LEN(strip));
	tcase_add_loop_test(tc, test_is_hop_by_hop, 0, ARRAY_LEN(hop_names));
	tcase_add_loop_test(tc, test_list_has, 0, ARRAY_LEN(list_has));
	tcase_add_loop_test(tc, test_join, 0, ARRAY_LEN(join));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(headers_suite)

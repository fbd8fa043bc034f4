/* Unit tests for common/opts.c: value parsers, the option table, config files. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "opts.h"

static const struct {
	const char *in;
	int ret;
	uint64_t bytes;
} sizes[] = {
	{ "0", 0, 0 },
	{ "4096", 0, 4096 },
	{ "64K", 0, 65536 },
	{ "64k", 0, 65536 },
	{ "1KiB", 0, 1024 },
	{ "256M", 0, 256ULL << 20 },
	{ "256MB", 0, 256ULL << 20 },
	{ "4G", 0, 4ULL << 30 },
	{ "1T", 0, 1ULL << 40 },
	{ "12B", 0, 12 },
	{ "", -EINVAL, 0 },
	{ "M", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+5", -EINVAL, 0 },
	{ " 5", -EINVAL, 0 },
	{ "5 M", -EINVAL, 0 },
	{ "1.5M", -EINVAL, 0 },
	{ "10X", -EINVAL, 0 },
	{ "99999999999999999999", -ERANGE, 0 },
	{ "20000000T", -ERANGE, 0 },	/* overflows 64 bits once multiplied */
};

START_TEST(test_parse_size)
{
	uint64_t v = 0;
	int r = opts_parse_size(sizes[_i].in, &v);

	ck_assert_msg(r == sizes[_i].ret, "opts_parse_size(\"%s\") returned %d, want %d",
		      sizes[_i].in, r, sizes[_i].ret);
	if (r == 0)
		ck_assert_uint_eq(v, sizes[_i].bytes);
}
END_TEST

static const struct {
	const char *in;
	int ret;
	uint64_t ms;
} durations[] = {
	{ "0", 0, 0 },
	{ "60", 0, 60000 },		/* a bare number is seconds */
	{ "500ms", 0, 500 },
	{ "2s", 0, 2000 },
	{ "5m", 0, 300000 },
	{ "1h", 0, 3600000 },
	{ "1d", 0, 86400000 },
	{ "2S", -EINVAL, 0 },		/* units are case-sensitive: M would be ambiguous */
	{ "1.5s", -EINVAL, 0 },
	{ "s", -EINVAL, 0 },
	{ "10 s", -EINVAL, 0 },
	{ "-1s", -EINVAL, 0 },
};

START_TEST(test_parse_duration)
{
	uint64_t v = 0;
	int r = opts_parse_duration(durations[_i].in, &v);

	ck_assert_msg(r == durations[_i].ret, "opts_parse_duration(\"%s\") returned %d, want %d",
		      durations[_i].in, r, durations[_i].ret);
	if (r == 0)
		ck_assert_uint_eq(v, durations[_i].ms);
}
END_TEST

struct demo {
	int port;
	char *name;
	uint64_t size;
	uint64_t wait_ms;
	bool verbose;
	char *level;
	char *config;
	struct opt_list backends;
	struct opt_list methods;
};

static const char *const levels[] = { "low", "high", NULL };
static const char *const method_names[] = { "GET", "HEAD", "POST", NULL };

#define D(f) offsetof(struct demo, f)
static const struct opt_def demo_opts[] = {
	{ "port", 'p', OPT_INT, 0, D(port), "PORT", "3000", 0, 65535, "port", NULL },
	{ "name", 'n', OPT_STRING, 0, D(name), "NAME", "demo", 0, 0, "name", NULL },
	{ "size", 0, OPT_SIZE, 0, D(size), "SIZE", "1M", 1, 1LL << 30, "size", NULL },
	{ "wait", 0, OPT_DURATION, 0, D(wait_ms), "TIME", "2s", 0, 60000, "wait", NULL },
	{ "verbose", 'v', OPT_FLAG, 0, D(verbose), NULL, NULL, 0, 0, "verbose", NULL },
	{ "level", 0, OPT_STRING, 0, D(level), "LEVEL", "low", 0, 0, "level", levels },
	{ "config", 'c', OPT_STRING, OPT_CLI_ONLY, D(config), "FILE", NULL, 0, 0, "config", NULL },
	{ "backend", 'B', OPT_LIST, 0, D(backends), "HOST:PORT", NULL, 0, 0, "backend", NULL },
	{ "method", 0, OPT_LIST, 0, D(methods), "METHOD", "GET", 0, 0, "method", method_names },
	OPT_END
};

static void demo_defaults(struct demo *d)
{
	char err[256];

	memset(d, 0, sizeof(*d));
	ck_assert_int_eq(opts_set_defaults(demo_opts, d, err, sizeof(err)), 0);
}

START_TEST(test_defaults)
{
	struct demo d;

	demo_defaults(&d);
	ck_assert_int_eq(d.port, 3000);
	ck_assert_str_eq(d.name, "demo");
	ck_assert_uint_eq(d.size, 1 << 20);
	ck_assert_uint_eq(d.wait_ms, 2000);
	ck_assert(!d.verbose);
	opts_free(demo_opts, &d);
	ck_assert_ptr_null(d.name);
}
END_TEST

START_TEST(test_args_forms)
{
	const char *argv[] = { "prog", "--port", "8080", "-n", "x", "--size=64K", "-v",
			       "--wait=500ms", NULL };
	struct demo d;
	char err[256];

	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_args(demo_opts, &d, 8, (char **)argv, err, sizeof(err)), 0);
	ck_assert_int_eq(d.port, 8080);
	ck_assert_str_eq(d.name, "x");
	ck_assert_uint_eq(d.size, 65536);
	ck_assert_uint_eq(d.wait_ms, 500);
	ck_assert(d.verbose);
	opts_free(demo_opts, &d);
}
END_TEST

START_TEST(test_args_short_attached)
{
	const char *argv[] = { "prog", "-p9000", NULL };
	struct demo d;
	char err[256];

	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_args(demo_opts, &d, 2, (char **)argv, err, sizeof(err)), 0);
	ck_assert_int_eq(d.port, 9000);
	opts_free(demo_opts, &d);
}
END_TEST

static const struct {
	const char *args[4];
	const char *message;	/* a substring of the error */
} bad_args[] = {
	{ { "--nope" }, "unknown option '--nope'" },
	{ { "-x" }, "unknown option '-x'" },
	{ { "--port", "65536" }, "bad value '65536' for port: must be 0..65535" },
	{ { "--port", "80a" }, "bad value '80a' for port" },
	{ { "--port" }, "option '--port' needs a value (PORT)" },
	{ { "--size", "0" }, "bad value '0' for size: must be 1..1G" },
	{ { "--wait", "2m" }, "bad value '2m' for wait: must be 0s..1m" },
	{ { "--name", "a\nb" }, "bad value for name: control characters are not allowed" },
	{ { "--level", "loud" }, "bad value 'loud' for level: expected one of low, high" },
	{ { "--wait", "2 minutes" }, "bad value '2 minutes' for wait" },
	{ { "--verbose=yes" }, "option '--verbose' takes no value" },
	{ { "stray" }, "unexpected argument 'stray'" },
	/* a list value is checked as a string is, on every occurrence */
	{ { "-Ba:1", "--backend", "a\tb" },
	  "bad value for backend: control characters are not allowed" },
	{ { "--method", "GET", "--method", "PUT" },
	  "bad value 'PUT' for method: expected one of GET, HEAD, POST" },
	{ { "--backend" }, "option '--backend' needs a value (HOST:PORT)" },
};

START_TEST(test_args_errors)
{
	const char *argv[6] = { "prog" };
	int argc = 1;
	struct demo d;
	char err[256] = "";

	for (int k = 0; k < 4 && bad_args[_i].args[k]; k++)
		argv[argc++] = bad_args[_i].args[k];
	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_args(demo_opts, &d, argc, (char **)argv, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, bad_args[_i].message), "error \"%s\" lacks \"%s\"", err,
		      bad_args[_i].message);
	opts_free(demo_opts, &d);
}
END_TEST

START_TEST(test_peek_config)
{
	const char *argv[] = { "prog", "-c", "a.conf", "--port", "1", "--config=b.conf", NULL };

	ck_assert_str_eq(opts_peek_arg(demo_opts, 6, (char **)argv, "config"), "b.conf");
	ck_assert_ptr_null(opts_peek_arg(demo_opts, 6, (char **)argv, "name"));
}
END_TEST

/* Writes <text> to a temporary file and returns its path (static buffer). */
static const char *write_conf(const char *text)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/check_opts-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(test_file_good)
{
	const char *path = write_conf("# a comment\n"
				      "\n"
				      "port 4000   # trailing comment\n"
				      "  name \"two words # not a comment\"\n"
				      "size 2M\n"
				      "verbose yes\n"
				      "wait 250ms\n");
	struct demo d;
	char err[256];

	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_file(demo_opts, &d, path, err, sizeof(err)), 0);
	unlink(path);
	ck_assert_int_eq(d.port, 4000);
	ck_assert_str_eq(d.name, "two words # not a comment");
	ck_assert_uint_eq(d.size, 2 << 20);
	ck_assert(d.verbose);
	ck_assert_uint_eq(d.wait_ms, 250);
	opts_free(demo_opts, &d);
}
END_TEST

static const struct {
	const char *text;
	const char *message;	/* after "PATH:" */
} bad_files[] = {
	{ "port 1\nbogus 2\n", "2: unknown key 'bogus'" },
	{ "\n\nport abc\n", "3: bad value 'abc' for port" },
	{ "port 1\nname x\nport 2\n", "3: 'port' is already set on line 1" },
	{ "port\n", "1: 'port' needs a value" },
	{ "name \"open\n", "1: unterminated quoted value" },
	{ "name \"a\" b\n", "1: unexpected text after the quoted value" },
	{ "config other.conf\n", "1: 'config' can only be given on the command line" },
	{ "level medium\n", "1: bad value 'medium' for level: expected one of low, high" },
	{ "verbose maybe\n", "1: bad value 'maybe' for verbose: expected yes or no" },
	/* a list key may repeat; every other key still may not */
	{ "backend a:1\nbackend b:2\nname x\nname y\n", "4: 'name' is already set on line 3" },
	{ "method GET\nmethod PUT\n",
	  "2: bad value 'PUT' for method: expected one of GET, HEAD, POST" },
	{ "backend a:1\nbackend \"a\tb\"\n",
	  "2: bad value for backend: control characters are not allowed" },
};

START_TEST(test_file_errors)
{
	const char *path = write_conf(bad_files[_i].text);
	char want[128], err[256] = "";
	struct demo d;

	snprintf(want, sizeof(want), "%s:%s", path, bad_files[_i].message);
	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_file(demo_opts, &d, path, err, sizeof(err)), -EINVAL);
	unlink(path);
	ck_assert_msg(strstr(err, want), "error \"%s\" lacks \"%s\"", err, want);
	opts_free(demo_opts, &d);
}
END_TEST

/* A program's own check: a backend needs a ':' */
static int demo_check(const struct opt_def *o, const char *value, char *err, size_t errlen)
{
	if (strcmp(o->name, "backend") == 0 && strchr(value, ':') == NULL) {
		snprintf(err, errlen, "want HOST:PORT");
		return -EINVAL;
	}
	return 0;
}

static const struct {
	const char *text;
	int ret;
	const char *message;	/* after "PATH:", or NULL */
} checked_files[] = {
	{ "backend a:1\nbackend b:2\n", 0, NULL },
	{ "port 1\n# c\n\nbackend a:1\nbackend nocolon\n", -EINVAL,
	  "5: bad value 'nocolon' for backend: want HOST:PORT" },
	/* the table's own errors come first and read as before */
	{ "backend a:1\nport x\n", -EINVAL, "2: bad value 'x' for port" },
};

START_TEST(test_file_checked)
{
	const char *path = write_conf(checked_files[_i].text);
	char want[160], err[256] = "";
	struct demo d;
	int r;

	demo_defaults(&d);
	r = opts_parse_file_checked(demo_opts, &d, path, demo_check, err, sizeof(err));
	unlink(path);
	ck_assert_int_eq(r, checked_files[_i].ret);
	if (checked_files[_i].message) {
		snprintf(want, sizeof(want), "%s:%s", path, checked_files[_i].message);
		ck_assert_msg(strstr(err, want), "error \"%s\" lacks \"%s\"", err, want);
	}
	opts_free(demo_opts, &d);
}
END_TEST

/* A reload compares the running settings with the new ones, option by option, and keeps
 * the running value of one it cannot change. */
START_TEST(test_equal_swap)
{
	const char *const a_args[] = { "x", "--port", "1", "--name", "a", "-B", "h:1", "-v",
				       NULL };
	const char *const b_args[] = { "x", "--port", "2", "--name", "a", "-B", "h:1", "-B",
				       "h:2", NULL };
	struct demo a, b;
	char err[256];

	demo_defaults(&a);
	demo_defaults(&b);
	ck_assert_int_eq(opts_parse_args(demo_opts, &a, 8, (char **)a_args, err, sizeof(err)), 0);
	ck_assert_int_eq(opts_parse_args(demo_opts, &b, 9, (char **)b_args, err, sizeof(err)), 0);
	for (const struct opt_def *o = demo_opts; o->name; o++) {
		bool same = strcmp(o->name, "port") != 0 && strcmp(o->name, "backend") != 0 &&
			    strcmp(o->name, "verbose") != 0;

		ck_assert_msg(opts_equal(o, &a, &b) == same, "opts_equal(%s) is %d", o->name,
			      !same);
		ck_assert(opts_equal(o, &a, &a));
	}
	opts_swap(&demo_opts[0], &a, &b);	/* port */
	ck_assert_int_eq(a.port, 2);
	ck_assert_int_eq(b.port, 1);
	opts_swap(&demo_opts[7], &a, &b);	/* backend: the lists change owners */
	ck_assert_uint_eq(a.backends.n, 2);
	ck_assert_uint_eq(b.backends.n, 1);
	ck_assert_str_eq(a.backends.v[1], "h:2");
	opts_swap(&demo_opts[1], &a, &b);	/* name: same text, other owner */
	ck_assert_str_eq(a.name, "a");
	opts_free(demo_opts, &a);
	opts_free(demo_opts, &b);
}
END_TEST

START_TEST(test_file_missing)
{
	struct demo d;
	char err[256];

	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_file(demo_opts, &d, "/nonexistent/x.conf", err, sizeof(err)),
			 -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.conf: cannot open"));
	opts_free(demo_opts, &d);
}
END_TEST

START_TEST(test_print_roundtrip)
{
	struct demo d, e;
	char err[256], buf[1024];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	const char *path;

	demo_defaults(&d);
	d.wait_ms = 1500;
	free(d.name);
	d.name = strdup("say \"hi\" \\ # there");	/* quotes and backslashes survive */
	opts_print(demo_opts, &d, f);
	fclose(f);
	ck_assert_ptr_null(strstr(buf, "config"));	/* command-line-only keys are left out */
	ck_assert_ptr_nonnull(strstr(buf, "wait 1500ms\n"));
	path = write_conf(buf);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(opts_parse_file(demo_opts, &e, path, err, sizeof(err)), 0);
	unlink(path);
	ck_assert_int_eq(e.port, d.port);
	ck_assert_str_eq(e.name, d.name);
	ck_assert_uint_eq(e.size, d.size);
	ck_assert_uint_eq(e.wait_ms, d.wait_ms);
	opts_free(demo_opts, &d);
	opts_free(demo_opts, &e);
}
END_TEST

START_TEST(test_usage_lists_every_option)
{
	char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	opts_usage(demo_opts, f);
	fclose(f);
	for (const struct opt_def *o = demo_opts; o->name; o++) {
		char want[64];

		snprintf(want, sizeof(want), "--%s", o->name);
		ck_assert_msg(strstr(buf, want), "usage lacks %s", want);
	}
	ck_assert_ptr_nonnull(strstr(buf, "-p, --port PORT"));
	ck_assert_ptr_nonnull(strstr(buf, "(default: 3000)"));
	ck_assert_ptr_nonnull(strstr(buf, "-B, --backend HOST:PORT"));
	ck_assert_ptr_nonnull(strstr(buf, "backend (repeatable)\n"));
	ck_assert_ptr_nonnull(strstr(buf, "method (default: GET) (repeatable)\n"));
	ck_assert_ptr_nonnull(strstr(buf, "port (default: 3000)\n"));	/* not repeatable */
}
END_TEST

/* Asserts that <l> holds exactly the NULL-terminated <want>, in order. */
static void ck_list_eq(const struct opt_list *l, const char *const *want, const char *what)
{
	size_t n = 0;

	while (want[n])
		n++;
	ck_assert_msg(l->n == n, "%s has %zu values, want %zu", what, l->n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strcmp(l->v[i], want[i]) == 0, "%s[%zu] is \"%s\", want \"%s\"",
			      what, i, l->v[i], want[i]);
	if (n == 0)
		ck_assert_ptr_null(l->v);
}

/* Where a list's values come from: the default, then the file's lines (which replace the
 * default), then the command line's options (which replace the file's lines); within one
 * source they add up in order. <file> NULL means no config file. */
static const struct {
	const char *file;
	const char *args[8];
	const char *backends[5];
	const char *methods[4];
} list_sources[] = {
	/* an empty list: no default, given nowhere */
	{ NULL, { NULL }, { NULL }, { "GET", NULL } },
	/* the command line repeats the option, in every spelling */
	{ NULL, { "--backend", "a:1", "-B", "b:2", "--backend=c:3", "-Bd:4" },
	  { "a:1", "b:2", "c:3", "d:4", NULL }, { "GET", NULL } },
	/* the file repeats the key, other keys in between */
	{ "backend a:1\nport 5\nbackend \"b:2\"   # second\n", { NULL },
	  { "a:1", "b:2", NULL }, { "GET", NULL } },
	/* the file's lines replace the default rather than adding to it */
	{ "method HEAD\nmethod POST\n", { NULL }, { NULL }, { "HEAD", "POST", NULL } },
	/* the command line replaces the file's values rather than adding to them */
	{ "backend a:1\nbackend b:2\n", { "-B", "c:3", "--backend", "d:4" },
	  { "c:3", "d:4", NULL }, { "GET", NULL } },
	{ "method HEAD\n", { "--method", "POST" }, { NULL }, { "POST", NULL } },
	/* a list the command line does not name keeps the file's values */
	{ "backend a:1\nmethod HEAD\n", { "--port", "1", "--method=POST" },
	  { "a:1", NULL }, { "POST", NULL } },
	/* the same value twice is two values */
	{ "backend a:1\nbackend a:1\n", { NULL }, { "a:1", "a:1", NULL }, { "GET", NULL } },
};

START_TEST(test_list_sources)
{
	const char *argv[9] = { "prog" };
	int argc = 1;
	struct demo d;
	char err[256] = "";

	for (int k = 0; k < 8 && list_sources[_i].args[k]; k++)
		argv[argc++] = list_sources[_i].args[k];
	demo_defaults(&d);
	if (list_sources[_i].file) {
		const char *path = write_conf(list_sources[_i].file);
		int r = opts_parse_file(demo_opts, &d, path, err, sizeof(err));

		unlink(path);
		ck_assert_msg(r == 0, "file: %s", err);
	}
	ck_assert_msg(opts_parse_args(demo_opts, &d, argc, (char **)argv, err, sizeof(err)) == 0,
		      "args: %s", err);
	ck_list_eq(&d.backends, list_sources[_i].backends, "backend");
	ck_list_eq(&d.methods, list_sources[_i].methods, "method");
	opts_free(demo_opts, &d);
	ck_assert_ptr_null(d.backends.v);
	ck_assert_uint_eq(d.backends.n, 0);
	ck_assert_ptr_null(d.methods.v);
	ck_assert_uint_eq(d.methods.n, 0);
}
END_TEST

/* OPTS_LIST_MAX values fit; one more is an error at the line (or option) that overflows. */
static const struct {
	int count;
	int ret;
} list_bounds[] = {
	{ 1, 0 },
	{ OPTS_LIST_MAX, 0 },
	{ OPTS_LIST_MAX + 1, -EINVAL },
	{ OPTS_LIST_MAX + 5, -EINVAL },		/* stops at the first value too many */
};

START_TEST(test_list_bound_file)
{
	char text[(OPTS_LIST_MAX + 5) * 24], want[128], last[16], err[256] = "";
	size_t len = 0;
	const char *path;
	struct demo d;

	text[0] = '\0';
	for (int k = 0; k < list_bounds[_i].count; k++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "backend h%d:80\n", k);
	path = write_conf(text);
	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_file(demo_opts, &d, path, err, sizeof(err)),
			 list_bounds[_i].ret);
	unlink(path);
	if (list_bounds[_i].ret == 0) {
		ck_assert_uint_eq(d.backends.n, (size_t)list_bounds[_i].count);
		snprintf(last, sizeof(last), "h%d:80", list_bounds[_i].count - 1);
		ck_assert_str_eq(d.backends.v[d.backends.n - 1], last);
	} else {
		snprintf(want, sizeof(want), "%s:%d: too many values for backend (at most 64)",
			 path, OPTS_LIST_MAX + 1);
		ck_assert_msg(strstr(err, want), "error \"%s\" lacks \"%s\"", err, want);
		ck_assert_uint_eq(d.backends.n, OPTS_LIST_MAX);	/* the full list is intact */
	}
	opts_free(demo_opts, &d);
}
END_TEST

START_TEST(test_list_bound_args)
{
	static char values[OPTS_LIST_MAX + 5][16];
	const char *argv[1 + 2 * (OPTS_LIST_MAX + 5)] = { "prog" };
	int argc = 1;
	struct demo d;
	char err[256] = "";

	for (int k = 0; k < list_bounds[_i].count; k++) {
		snprintf(values[k], sizeof(values[k]), "h%d:80", k);
		argv[argc++] = "--backend";
		argv[argc++] = values[k];
	}
	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_args(demo_opts, &d, argc, (char **)argv, err, sizeof(err)),
			 list_bounds[_i].ret);
	if (list_bounds[_i].ret == 0)
		ck_assert_uint_eq(d.backends.n, (size_t)list_bounds[_i].count);
	else
		ck_assert_str_eq(err, "too many values for backend (at most 64)");
	opts_free(demo_opts, &d);
}
END_TEST

START_TEST(test_list_set_appends)
{
	const struct opt_def *o = &demo_opts[7];
	static const char *const want[] = { "a:1", "b:2", NULL };
	struct demo d;
	char err[256];

	ck_assert_str_eq(o->name, "backend");
	demo_defaults(&d);
	ck_assert_int_eq(opts_set(o, &d, "a:1", err, sizeof(err)), 0);
	ck_assert_int_eq(opts_set(o, &d, "b:2", err, sizeof(err)), 0);
	ck_list_eq(&d.backends, want, "backend");
	/* a rejected value leaves the list as it was */
	ck_assert_int_eq(opts_set(o, &d, "c\n3", err, sizeof(err)), -EINVAL);
	ck_list_eq(&d.backends, want, "backend");
	opts_free(demo_opts, &d);
}
END_TEST

START_TEST(test_list_print_roundtrip)
{
	static const char *const backends[] = { "a:1", "say \"hi\" \\ # there", "", NULL };
	static const char *const methods[] = { "HEAD", "POST", NULL };
	const char *argv[] = { "prog", "-B", backends[0], "-B", backends[1], "-B", backends[2],
			       "--method", "HEAD", "--method", "POST", NULL };
	struct demo d, e;
	char err[256], buf[2048];
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	const char *path;

	demo_defaults(&d);
	ck_assert_int_eq(opts_parse_args(demo_opts, &d, 11, (char **)argv, err, sizeof(err)), 0);
	opts_print(demo_opts, &d, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "backend \"a:1\"\n"
					  "backend \"say \\\"hi\\\" \\\\ # there\"\n"
					  "backend \"\"\n"));
	ck_assert_ptr_nonnull(strstr(buf, "method \"HEAD\"\nmethod \"POST\"\n"));
	path = write_conf(buf);
	memset(&e, 0, sizeof(e));
	ck_assert_msg(opts_parse_file(demo_opts, &e, path, err, sizeof(err)) == 0, "%s", err);
	unlink(path);
	ck_list_eq(&e.backends, backends, "backend");
	ck_list_eq(&e.methods, methods, "method");
	opts_free(demo_opts, &d);
	opts_free(demo_opts, &e);
}
END_TEST

START_TEST(test_list_print_empty)
{
	struct demo d;
	char buf[1024];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	demo_defaults(&d);
	ck_assert_uint_eq(d.backends.n, 0);
	ck_assert_ptr_null(d.backends.v);
	opts_print(demo_opts, &d, f);
	fclose(f);
	ck_assert_ptr_null(strstr(buf, "backend"));	/* an empty list writes no line at all */
	ck_assert_ptr_nonnull(strstr(buf, "method \"GET\"\n"));	/* the default's one value */
	opts_free(demo_opts, &d);
}
END_TEST

static Suite *opts_suite(void)
{
	Suite *s = suite_create("opts");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse_size, 0, ARRAY_LEN(sizes));
	tcase_add_loop_test(tc, test_parse_duration, 0, ARRAY_LEN(durations));
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_args_forms);
	tcase_add_test(tc, test_args_short_attached);
	tcase_add_loop_test(tc, test_args_errors, 0, ARRAY_LEN(bad_args));
	tcase_add_test(tc, test_peek_config);
	tcase_add_test(tc, test_file_good);
	tcase_add_loop_test(tc, test_file_errors, 0, ARRAY_LEN(bad_files));
	tcase_add_test(tc, test_file_missing);
	tcase_add_test(tc, test_equal_swap);
	tcase_add_loop_test(tc, test_file_checked, 0, ARRAY_LEN(checked_files));
	tcase_add_test(tc, test_print_roundtrip);
	tcase_add_test(tc, test_usage_lists_every_option);
	tcase_add_loop_test(tc, test_list_sources, 0, ARRAY_LEN(list_sources));
	tcase_add_loop_test(tc, test_list_bound_file, 0, ARRAY_LEN(list_bounds));
	tcase_add_loop_test(tc, test_list_bound_args, 0, ARRAY_LEN(list_bounds));
	tcase_add_test(tc, test_list_set_appends);
	tcase_add_test(tc, test_list_print_roundtrip);
	tcase_add_test(tc, test_list_print_empty);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(opts_suite)

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
};

static const char *const levels[] = { "low", "high", NULL };

#define D(f) offsetof(struct demo, f)
static const struct opt_def demo_opts[] = {
	{ "port", 'p', OPT_INT, 0, D(port), "PORT", "3000", 0, 65535, "port", NULL },
	{ "name", 'n', OPT_STRING, 0, D(name), "NAME", "demo", 0, 0, "name", NULL },
	{ "size", 0, OPT_SIZE, 0, D(size), "SIZE", "1M", 1, 1LL << 30, "size", NULL },
	{ "wait", 0, OPT_DURATION, 0, D(wait_ms), "TIME", "2s", 0, 60000, "wait", NULL },
	{ "verbose", 'v', OPT_FLAG, 0, D(verbose), NULL, NULL, 0, 0, "verbose", NULL },
	{ "level", 0, OPT_STRING, 0, D(level), "LEVEL", "low", 0, 0, "level", levels },
	{ "config", 'c', OPT_STRING, OPT_CLI_ONLY, D(config), "FILE", NULL, 0, 0, "config", NULL },
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
	tcase_add_test(tc, test_print_roundtrip);
	tcase_add_test(tc, test_usage_lists_every_option);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(opts_suite)

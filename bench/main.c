/* main.c - mtps-bench: load generator, scenario suite and report (see mtps-bench(1)).
 *
 *   mtps-bench [OPTION]... -u URL...     load one server, print a wrk-like summary
 *   mtps-bench suite [OPTION]...         the named scenarios with pass/fail verdicts
 *   mtps-bench report DIR [OPTION]...    charts and report.html from a suite's results
 *
 * One table of options serves the three (only some apply to each), so that --help and the
 * man page list each option once. Threads: main() only; load.c starts its own.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "load.h"
#include "opts.h"
#include "report.h"
#include "stats.h"
#include "suite.h"
#include "urls.h"

#define PROG "mtps-bench"

#ifndef PKGDATADIR
#define PKGDATADIR "/usr/local/share/mtps"
#endif

struct settings {
	struct opt_list urls;
	char *urls_file;
	int connections, threads, rate, requests, seed;
	uint64_t duration_ms, timeout_ms;
	char *zipf;
	char *output;
	/* suite */
	char *proxy;
	struct opt_list origins;
	char *crud_proxy;
	bool spawn;
	int spawn_origins, latency_ms;
	char *origin_bin, *proxy_bin;
	char *scenarios, *large_sizes, *sweep;
	uint64_t step_ms;
	char *report;
	/* report */
	char *datadir;
	bool help, version;
};

#define S(f) offsetof(struct settings, f)
#define DAY_MS (86400LL * 1000)

static const struct opt_def options[] = {
	/* load */
	{ "url", 'u', OPT_LIST, OPT_CLI_ONLY, S(urls), "URL", NULL, 0, 0,
	  "a URL to ask for; {A..B} in it stands for each number from A to B", NULL },
	{ "urls", 0, OPT_STRING, OPT_CLI_ONLY, S(urls_file), "FILE", NULL, 0, 0,
	  "read URLs (and patterns) from FILE, one a line", NULL },
	{ "connections", 'c', OPT_INT, OPT_CLI_ONLY, S(connections), "N", "10", 1,
	  LOAD_MAX_CONNECTIONS, "connections kept open (keep-alive)", NULL },
	{ "threads", 't', OPT_INT, OPT_CLI_ONLY, S(threads), "N", "2", 1, LOAD_MAX_THREADS,
	  "threads, each with its own share of the connections", NULL },
	{ "rate", 'R', OPT_INT, OPT_CLI_ONLY, S(rate), "RPS", "0", 0, 100000000,
	  "open loop: send RPS requests per second in all, latency from each one's due time; "
	  "0 is a closed loop", NULL },
	{ "duration", 'd', OPT_DURATION, OPT_CLI_ONLY, S(duration_ms), "SECONDS", NULL, 0,
	  DAY_MS, "how long to send (10 s unless --requests is given)", NULL },
	{ "requests", 'n', OPT_INT, OPT_CLI_ONLY, S(requests), "N", "0", 0, INT_MAX,
	  "stop after N requests", NULL },
	{ "zipf", 0, OPT_STRING, OPT_CLI_ONLY, S(zipf), "S", NULL, 0, 0,
	  "URL popularity: Zipf with exponent S, the first URL the most popular (load default: "
	  "0, uniform; suite: 1)", NULL },
	{ "timeout", 0, OPT_DURATION, OPT_CLI_ONLY, S(timeout_ms), "SECONDS", "30", 1, DAY_MS,
	  "give up on one request after this long", NULL },
	{ "seed", 0, OPT_INT, OPT_CLI_ONLY, S(seed), "N", "1", 0, INT_MAX,
	  "seed of the URL choice", NULL },
	{ "output", 'o', OPT_STRING, OPT_CLI_ONLY, S(output), "DIR", NULL, 0, 0,
	  "write results.json, series.csv and percentiles.csv into DIR", NULL },
	/* suite */
	{ "proxy", 0, OPT_STRING, OPT_CLI_ONLY, S(proxy), "URL", NULL, 0, 0,
	  "suite: the mtps-proxy to test", NULL },
	{ "origin", 0, OPT_LIST, OPT_CLI_ONLY, S(origins), "URL", NULL, 0, 0,
	  "suite: an origin behind the proxy", NULL },
	{ "crud-proxy", 0, OPT_STRING, OPT_CLI_ONLY, S(crud_proxy), "URL", NULL, 0, 0,
	  "suite: a proxy with one origin behind it for the crud scenario", NULL },
	{ "spawn", 0, OPT_FLAG, OPT_CLI_ONLY, S(spawn), NULL, NULL, 0, 0,
	  "suite: start origins and a proxy on free loopback ports and test those", NULL },
	{ "spawn-origins", 0, OPT_INT, OPT_CLI_ONLY, S(spawn_origins), "N", "3", 2,
	  SUITE_MAX_ORIGINS, "suite --spawn: how many origins", NULL },
	{ "latency-ms", 0, OPT_INT, OPT_CLI_ONLY, S(latency_ms), "N", "20", 0, 600000,
	  "suite --spawn: the origins' simulated latency", NULL },
	{ "origin-bin", 0, OPT_STRING, OPT_CLI_ONLY, S(origin_bin), "PATH", NULL, 0, 0,
	  "suite --spawn: the mtps-origin to run (default: $MTPS_ORIGIN, next to mtps-bench, "
	  "or in PATH)", NULL },
	{ "proxy-bin", 0, OPT_STRING, OPT_CLI_ONLY, S(proxy_bin), "PATH", NULL, 0, 0,
	  "suite --spawn: the mtps-proxy to run (default: $MTPS_PROXY, next to mtps-bench, or "
	  "in PATH)", NULL },
	{ "scenarios", 0, OPT_STRING, OPT_CLI_ONLY, S(scenarios), "LIST", "all", 0, 0,
	  "suite: which scenarios, e.g. status,large,cache,concurrency,balance,crud", NULL },
	{ "large-sizes", 0, OPT_STRING, OPT_CLI_ONLY, S(large_sizes), "LIST", "1M,64M,1G", 0, 0,
	  "suite: the sizes of the large scenario", NULL },
	{ "sweep", 0, OPT_STRING, OPT_CLI_ONLY, S(sweep), "LIST", "1,8,64,256", 0, 0,
	  "suite: the connection counts of the concurrency scenario", NULL },
	{ "step-duration", 0, OPT_DURATION, OPT_CLI_ONLY, S(step_ms), "SECONDS", "3", 50,
	  DAY_MS, "suite: the length of each load step", NULL },
	{ "report", 0, OPT_STRING, OPT_CLI_ONLY, S(report), "DIR", NULL, 0, 0,
	  "suite: write the results and report.html into DIR", NULL },
	/* report */
	{ "datadir", 0, OPT_STRING, OPT_CLI_ONLY, S(datadir), "DIR", NULL, 0, 0,
	  "where the gnuplot scripts are (default: $MTPS_DATADIR, else " PKGDATADIR ")",
	  NULL },
	{ "help", 'h', OPT_FLAG, OPT_CLI_ONLY, S(help), NULL, NULL, 0, 0,
	  "show this help and exit", NULL },
	{ "version", 'V', OPT_FLAG, OPT_CLI_ONLY, S(version), NULL, NULL, 0, 0,
	  "show the version and exit", NULL },
	OPT_END
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [OPTION]... -u URL...\n"
		"       " PROG " suite (--proxy URL --origin URL... | --spawn) [OPTION]...\n"
		"       " PROG " report DIR [--datadir DIR]\n"
		"Loads HTTP servers and measures them (a summary like wrk's; raw results as CSV\n"
		"and JSON); runs the mtps scenarios with pass/fail verdicts; writes a report with\n"
		"charts.\n"
		"\n"
		"Options:\n");
	opts_usage(options, out);
	fprintf(out, "\nSee mtps-bench(1).\n");
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno || end == s || *end ? -EINVAL : 0;
}

static const char *find_bin(const char *given, const char *env, const char *name, char *buf,
			    size_t len)
{
	const char *e = getenv(env);
	char self[PATH_MAX];
	ssize_t n;

	if (given)
		return given;
	if (e && *e)
		return e;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			int w = snprintf(buf, len, "%s/%s", self, name);

			if (w > 0 && (size_t)w < len && access(buf, X_OK) == 0)
				return buf;
		}
	}
	return name;	/* execvp looks in PATH */
}

static const char *find_datadir(const char *given)
{
	const char *e = getenv("MTPS_DATADIR");

	if (given)
		return given;
	if (e && *e)
		return e;
	if (access(PKGDATADIR "/common.gp", R_OK) == 0)
		return PKGDATADIR;
#ifdef MTPS_SOURCE_PLOTS
	if (access(MTPS_SOURCE_PLOTS "/common.gp", R_OK) == 0)
		return MTPS_SOURCE_PLOTS;	/* run from the build tree, not installed */
#endif
	return PKGDATADIR;
}

static int write_file_json(const char *path, struct json_object *o)
{
	return json_object_to_file_ext(path, o, JSON_C_TO_STRING_PRETTY |
					JSON_C_TO_STRING_NOSLASHESCAPE) ? -EIO : 0;
}

static int write_outputs(const char *dir, const struct stats *st)
{
	char path[4096];
	struct json_object *o;
	FILE *f;
	int r = 0;

	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, PROG ": cannot create %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/series.csv", dir);
	f = fopen(path, "w");
	if (f == NULL || stats_write_series_csv(st, f) || fclose(f)) {
		fprintf(stderr, PROG ": cannot write %s\n", path);
		return -EIO;
	}
	snprintf(path, sizeof(path), "%s/percentiles.csv", dir);
	f = fopen(path, "w");
	if (f == NULL || stats_write_percentiles_csv(st, f) || fclose(f)) {
		fprintf(stderr, PROG ": cannot write %s\n", path);
		return -EIO;
	}
	snprintf(path, sizeof(path), "%s/results.json", dir);
	o = stats_to_json(st);
	if (o == NULL || write_file_json(path, o)) {
		fprintf(stderr, PROG ": cannot write %s\n", path);
		r = -EIO;
	}
	json_object_put(o);
	return r;
}

/* ---- the three commands ------------------------------------------------------------------ */

static int cmd_load(struct settings *s)
{
	struct urls u = { 0 };
	struct stats *st = NULL;
	char err[1024];
	double zipf = 0;
	int status = 2;
	struct load_config lc = {
		.urls = &u,
		.connections = (unsigned)s->connections,
		.rate = s->rate,
		.duration_ms = s->duration_ms,
		.count = (uint64_t)s->requests,
		.timeout_ms = s->timeout_ms,
		.seed = (uint64_t)s->seed,
	};

	for (size_t i = 0; i < s->urls.n; i++)
		if (urls_add(&u, s->urls.v[i], err, sizeof(err))) {
			fprintf(stderr, PROG ": --url: %s\n", err);
			goto out;
		}
	if (s->urls_file && urls_add_file(&u, s->urls_file, err, sizeof(err))) {
		fprintf(stderr, PROG ": --urls: %s\n", err);
		goto out;
	}
	if (u.total == 0) {
		fprintf(stderr, PROG ": give a URL (-u URL or --urls FILE); see --help\n");
		goto out;
	}
	if (s->zipf && (parse_double(s->zipf, &zipf) || zipf < 0 || zipf > 100)) {
		fprintf(stderr, PROG ": --zipf: '%s' is not a number from 0 to 100\n", s->zipf);
		goto out;
	}
	lc.zipf_s = zipf;
	if (lc.duration_ms == 0 && lc.count == 0)
		lc.duration_ms = 10000;
	lc.threads = (unsigned)s->threads < lc.connections ? (unsigned)s->threads
							    : lc.connections;
	st = stats_new();
	if (st == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	printf("Running %s%s test @ %s%s\n",
	       lc.rate ? "an open-loop" : "a closed-loop",
	       lc.duration_ms ? "" : " (request count)", u.v[0].prefix,
	       u.total > 1 ? " ..." : "");
	printf("  %u threads and %u connections, %" PRIu64 " URLs%s\n", lc.threads,
	       lc.connections, u.total, zipf > 0 ? " (Zipf)" : "");
	fflush(stdout);
	if (load_run(&lc, st, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	stats_print(st, NULL, stdout);
	status = 0;
	if (s->output && write_outputs(s->output, st))
		status = 1;
out:
	stats_free(st);
	urls_free(&u);
	return status;
}

static int parse_list_u64(const char *what, const char *text, bool sizes, uint64_t *out,
			  unsigned max, unsigned *n)
{
	char *copy = strdup(text), *save = NULL, *tok;
	int r = 0;

	*n = 0;
	if (copy == NULL)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long long v;
		uint64_t u;

		if (*n == max) {
			fprintf(stderr, PROG ": --%s: at most %u values\n", what, max);
			r = -EINVAL;
			break;
		}
		if (sizes ? opts_parse_size(tok, &u) || u == 0
			  : opts_parse_int(tok, &v) || v < 1 || v > LOAD_MAX_CONNECTIONS) {
			fprintf(stderr, PROG ": --%s: bad value '%s'\n", what, tok);
			r = -EINVAL;
			break;
		}
		out[(*n)++] = sizes ? u : (uint64_t)v;
	}
	free(copy);
	if (r == 0 && *n == 0) {
		fprintf(stderr, PROG ": --%s: empty list\n", what);
		r = -EINVAL;
	}
	return r;
}

static int cmd_suite(struct settings *s)
{
	struct suite_config c = {
		.proxy = s->proxy,
		.origins = &s->origins,
		.crud_proxy = s->crud_proxy,
		.spawn = s->spawn,
		.spawn_origins = (unsigned)s->spawn_origins,
		.latency_ms = (unsigned)s->latency_ms,
		.scenarios = s->scenarios,
		.step_ms = s->step_ms,
		.connections = (unsigned)s->connections,
		.timeout_ms = s->timeout_ms,
		.zipf_s = 1.0,
		.report_dir = s->report,
		.log_dir = s->report,
	};
	char err[1024], obin[PATH_MAX], pbin[PATH_MAX];
	uint64_t sweep[SUITE_MAX_SWEEP];
	int r;

	if (s->spawn && (s->proxy || s->origins.n)) {
		fprintf(stderr, PROG ": suite: --spawn starts its own servers; leave out --proxy "
			"and --origin\n");
		return 2;
	}
	if (!s->spawn && (s->proxy == NULL || s->origins.n == 0)) {
		fprintf(stderr, PROG ": suite: give --proxy URL and at least one --origin URL, "
			"or --spawn\n");
		return 2;
	}
	if (s->origins.n > SUITE_MAX_ORIGINS) {
		fprintf(stderr, PROG ": suite: at most %d origins\n", SUITE_MAX_ORIGINS);
		return 2;
	}
	if (suite_check_scenarios(s->scenarios, err, sizeof(err))) {
		fprintf(stderr, PROG ": --scenarios: %s\n", err);
		return 2;
	}
	if (s->zipf && (parse_double(s->zipf, &c.zipf_s) || c.zipf_s < 0 || c.zipf_s > 100)) {
		fprintf(stderr, PROG ": --zipf: '%s' is not a number from 0 to 100\n", s->zipf);
		return 2;
	}
	if (parse_list_u64("large-sizes", s->large_sizes, true, c.large_sizes, SUITE_MAX_SIZES,
			   &c.nlarge) ||
	    parse_list_u64("sweep", s->sweep, false, sweep, SUITE_MAX_SWEEP, &c.nsweep))
		return 2;
	for (unsigned i = 0; i < c.nsweep; i++)
		c.sweep[i] = (unsigned)sweep[i];
	c.origin_bin = find_bin(s->origin_bin, "MTPS_ORIGIN", "mtps-origin", obin, sizeof(obin));
	c.proxy_bin = find_bin(s->proxy_bin, "MTPS_PROXY", "mtps-proxy", pbin, sizeof(pbin));
	r = suite_run(&c, stdout, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, PROG ": suite: %s\n", err);
		return 2;
	}
	printf("%d scenario%s failed\n", r, r == 1 ? "" : "s");
	if (s->report) {
		if (report_write(s->report, find_datadir(s->datadir), stdout, err, sizeof(err))) {
			fprintf(stderr, PROG ": report: %s\n", err);
			return 2;
		}
	}
	return r ? 1 : 0;
}

static int cmd_report(struct settings *s, const char *dir)
{
	char err[1024];

	if (report_write(dir, find_datadir(s->datadir), stdout, err, sizeof(err))) {
		fprintf(stderr, PROG ": report: %s\n", err);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct settings s = { .connections = 0 };	/* zeroed: opts_set_defaults() frees lists */
	const char *mode = "load", *dir = NULL;
	char err[512];
	int status;

	if (argc > 1 && strcmp(argv[1], "suite") == 0) {
		mode = "suite";
		argc--;
		argv++;
	} else if (argc > 1 && strcmp(argv[1], "report") == 0) {
		mode = "report";
		argc--;
		argv++;
		if (argc > 1 && argv[1][0] != '-') {
			dir = argv[1];
			argc--;
			argv++;
		}
	}
	if (opts_set_defaults(options, &s, err, sizeof(err)) ||
	    opts_parse_args(options, &s, argc, argv, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\nTry '" PROG " --help'.\n", err);
		opts_free(options, &s);
		return 2;
	}
	if (s.help) {
		usage(stdout);
		opts_free(options, &s);
		return 0;
	}
	if (s.version) {
		printf(PROG " " PACKAGE_VERSION "\n");
		opts_free(options, &s);
		return 0;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, PROG ": libcurl did not initialise\n");
		opts_free(options, &s);
		return 2;
	}
	if (strcmp(mode, "suite") == 0) {
		status = cmd_suite(&s);
	} else if (strcmp(mode, "report") == 0) {
		if (dir == NULL) {
			fprintf(stderr, PROG ": report: name the folder, e.g. " PROG
				" report results/\n");
			status = 2;
		} else {
			status = cmd_report(&s, dir);
		}
	} else {
		status = cmd_load(&s);
	}
	curl_global_cleanup();
	opts_free(options, &s);
	return status;
}

/* report.c - charts by gnuplot and a self-contained report.html (see report.h). */
#include "config.h"

#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SVG (8 << 20)	/* a chart larger than this is not embedded */

struct chart {
	const char *name;	/* NAME.gp draws NAME.csv... */
	const char *csv;	/* ...from this file */
	const char *title;
	const char *caption;
};

static const struct chart charts[] = {
	{ "latency", "cache_latency.csv", "Latency: direct vs through the proxy",
	  "The same Zipf-popular URLs asked for directly from one origin and through the "
	  "proxy; latency at each percentile (log scale)." },
	{ "hitmiss", "cache_latency.csv", "Cache hits vs misses",
	  "Through the proxy: the latency of answers from the cache (HIT) and of those fetched "
	  "from an origin (MISS)." },
	{ "throughput", "timeseries.csv", "Throughput over time",
	  "Requests per second, second by second, of the cache scenario's two runs." },
	{ "concurrency", "concurrency.csv", "Throughput and p99 by concurrency",
	  "Closed loops of fresh hits through the proxy at each number of connections." },
	{ "backends", "backends.csv", "Distribution across origins",
	  "Answers to GET /api/test (never cached) through the proxy, by X-Served-By." },
	{ "large", "large.csv", "Large transfers",
	  "MB/s of each size through the proxy (first and second fetch) and direct; every "
	  "byte was checked against the origin's pattern." },
};

/* ---- findings ---------------------------------------------------------------------------- */

static struct json_object *scenario(struct json_object *suite, const char *name)
{
	struct json_object *arr, *s, *n;

	if (!json_object_object_get_ex(suite, "scenarios", &arr))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		s = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(s, "name", &n) &&
		    strcmp(json_object_get_string(n), name) == 0)
			return s;
	}
	return NULL;
}

static const char *verdict_of(struct json_object *s)
{
	struct json_object *v;

	if (s && json_object_object_get_ex(s, "verdict", &v))
		return json_object_get_string(v);
	return "?";
}

/* Metric <key> of scenario <s>; false when it is missing. */
static bool metric(struct json_object *s, const char *key, double *out)
{
	struct json_object *m, *v;

	if (s == NULL || !json_object_object_get_ex(s, "metrics", &m) ||
	    !json_object_object_get_ex(m, key, &v) || json_object_get_type(v) == json_type_null)
		return false;
	*out = json_object_get_double(v);
	return true;
}

static struct json_object *metric_obj(struct json_object *s, const char *key)
{
	struct json_object *m, *v;

	if (s == NULL || !json_object_object_get_ex(s, "metrics", &m) ||
	    !json_object_object_get_ex(m, key, &v))
		return NULL;
	return v;
}

static double jnum(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0.0;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "?";
}

static void add(struct json_object *arr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add(struct json_object *arr, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	json_object_array_add(arr, json_object_new_string(line));
}

/* The first note of <s> that starts with "FAIL: ", or NULL. */
static const char *first_failure(struct json_object *s)
{
	struct json_object *notes;

	if (s == NULL || !json_object_object_get_ex(s, "notes", &notes))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(notes); i++) {
		const char *t = json_object_get_string(json_object_array_get_idx(notes, i));

		if (strncmp(t, "FAIL: ", 6) == 0)
			return t + 6;
	}
	return NULL;
}

static void findings_verdicts(struct json_object *suite, struct json_object *out)
{
	struct json_object *arr;
	size_t n, pass = 0, skip = 0;
	char failed[512] = "";

	if (!json_object_object_get_ex(suite, "scenarios", &arr))
		return;
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);
		const char *v = verdict_of(s);

		if (strcmp(v, "PASS") == 0)
			pass++;
		else if (strcmp(v, "SKIP") == 0)
			skip++;
		else
			snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s%s",
				 failed[0] ? ", " : "", jstr(s, "name"));
	}
	if (skip)
		add(out, "%zu of %zu scenarios passed, %zu skipped%s%s.", pass, n, skip,
		    failed[0] ? "; failed: " : "", failed);
	else
		add(out, "%zu of %zu scenarios passed%s%s.", pass, n, failed[0] ? "; failed: " : "",
		    failed);
}

static void findings_cache(struct json_object *s, struct json_object *out)
{
	double hit, direct, proxy, ratio, d99, p99, drps, prps;

	if (s == NULL || !metric(s, "direct_p50_ms", &direct) || !metric(s, "proxy_p50_ms", &proxy))
		return;
	if (metric(s, "hit_p50_ms", &hit) && hit > 0 && metric(s, "hit_ratio", &ratio))
		add(out, "Cached reads were %.1fx faster at p50 than direct requests to the origin "
		    "(%.3f ms vs %.2f ms); hit ratio %.1f %%.", direct / hit, hit, direct,
		    ratio * 100.0);
	if (metric(s, "direct_p99_ms", &d99) && metric(s, "proxy_p99_ms", &p99) &&
	    metric(s, "direct_rps", &drps) && metric(s, "proxy_rps", &prps))
		add(out, "Through the proxy, hits and misses together: p50 %.2f ms (direct %.2f ms), "
		    "p99 %.2f ms (direct %.2f ms), %.0f requests/s (direct %.0f, %.1fx).", proxy,
		    direct, p99, d99, prps, drps, drps > 0 ? prps / drps : 0.0);
}

static void findings_concurrency(struct json_object *s, struct json_object *out)
{
	struct json_object *rows = metric_obj(s, "steps"), *best = NULL, *first, *last;
	size_t n;

	if (rows == NULL || (n = json_object_array_length(rows)) == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct json_object *row = json_object_array_get_idx(rows, i);

		if (best == NULL || jnum(row, "requests_per_s") > jnum(best, "requests_per_s"))
			best = row;
	}
	first = json_object_array_get_idx(rows, 0);
	last = json_object_array_get_idx(rows, n - 1);
	add(out, "Fresh hits through the proxy peaked at %.0f requests/s with %.0f connections; "
	    "p99 was %.2f ms with %.0f connection%s and %.2f ms with %.0f.",
	    jnum(best, "requests_per_s"), jnum(best, "connections"), jnum(first, "p99_ms"),
	    jnum(first, "connections"), jnum(first, "connections") == 1 ? "" : "s",
	    jnum(last, "p99_ms"), jnum(last, "connections"));
}

static void findings_large(struct json_object *s, struct json_object *out)
{
	struct json_object *rows = metric_obj(s, "sizes");

	if (rows == NULL)
		return;
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		struct json_object *row = json_object_array_get_idx(rows, i);

		add(out, "%s through the proxy: %.0f MB/s on the first fetch (%s), %.0f MB/s again "
		    "(%s); %.0f MB/s direct%s.", jstr(row, "label"), jnum(row, "miss_MBps"),
		    jstr(row, "first_x_cache"), jnum(row, "hit_MBps"), jstr(row, "again_x_cache"),
		    jnum(row, "direct_MBps"),
		    strcmp(verdict_of(s), "PASS") == 0 ? "; every byte matched" : "");
	}
}

static void findings_balance(struct json_object *s, struct json_object *out)
{
	struct json_object *dist = metric_obj(s, "distribution");
	char line[768] = "";
	double total = 0, req, err, back;
	int n = 0;

	if (dist == NULL)
		return;
	json_object_object_foreach(dist, k0, v0) {
		(void)k0;
		total += json_object_get_double(v0);
	}
	json_object_object_foreach(dist, k, v) {
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s %.1f %%",
			 n ? ", " : "", k, total > 0 ? 100.0 * json_object_get_double(v) / total : 0);
		n++;
	}
	add(out, "Uncached requests spread over %d origin%s: %s.", n, n == 1 ? "" : "s", line);
	if (metric(s, "stop_start_requests", &req) && metric(s, "stop_start_errors", &err)) {
		if (metric(s, "take_back_s", &back))
			add(out, "While one origin was stopped and restarted, %.0f of %.0f requests "
			    "failed; the proxy took it back %.1f s after its restart.", err, req,
			    back);
		else
			add(out, "While one origin was stopped and restarted, %.0f of %.0f requests "
			    "failed.", err, req);
	}
}

static void findings_crud(struct json_object *s, struct json_object *out)
{
	const char *v = verdict_of(s), *why = first_failure(s);

	if (s == NULL)
		return;
	if (strcmp(v, "PASS") == 0)
		add(out, "Every read through the proxy after a create, update or delete showed the "
		    "write: no stale read.");
	else if (strcmp(v, "FAIL") == 0)
		add(out, "Create/read/update/delete through the proxy failed: %s", why ? why : "?");
}

struct json_object *report_findings(struct json_object *suite)
{
	struct json_object *out = json_object_new_array();

	if (out == NULL)
		return NULL;
	findings_verdicts(suite, out);
	findings_cache(scenario(suite, "cache"), out);
	findings_concurrency(scenario(suite, "concurrency"), out);
	findings_large(scenario(suite, "large"), out);
	findings_balance(scenario(suite, "balance"), out);
	findings_crud(scenario(suite, "crud"), out);
	return out;
}

/* ---- gnuplot ----------------------------------------------------------------------------- */

/* Runs gnuplot with <expr> and then <script> (NULL: none), its output to <logpath>.
 * Returns its exit status, or -1 when it could not run. */
static int gnuplot(const char *expr, const char *script, const char *logpath)
{
	const char *prog = getenv("MTPS_GNUPLOT");
	int status;
	pid_t pid;

	if (prog == NULL || *prog == '\0')
		prog = "gnuplot";
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (script)
			execlp(prog, prog, "-e", expr, script, (char *)NULL);
		else
			execlp(prog, prog, "-e", expr, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_size > 0;
}

/* Writes <text> with HTML's special characters escaped. */
static void html(FILE *f, const char *text)
{
	for (; *text; text++) {
		switch (*text) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*text, f);
		}
	}
}

/* Copies the <svg ...>...</svg> element of file <path> into <f> (no XML prolog, which may
 * not appear inside HTML). Returns 0 or -1. */
static int embed_svg(FILE *f, const char *path)
{
	FILE *in = fopen(path, "r");
	char *buf, *start;
	size_t n;

	if (in == NULL)
		return -1;
	buf = malloc(MAX_SVG + 1);
	if (buf == NULL) {
		fclose(in);
		return -1;
	}
	n = fread(buf, 1, MAX_SVG, in);
	fclose(in);
	buf[n] = '\0';
	start = strstr(buf, "<svg");
	if (start == NULL || n == MAX_SVG) {
		free(buf);
		return -1;
	}
	fputs(start, f);
	free(buf);
	return 0;
}

static const char *const style =
	"body{font-family:Helvetica,Arial,sans-serif;max-width:60em;margin:2em auto;"
	"padding:0 1em;color:#222}"
	"h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}"
	"table{border-collapse:collapse}td,th{padding:.25em .8em;border:1px solid #ccc;"
	"text-align:left}"
	".PASS{color:#1a7f37;font-weight:bold}.FAIL{color:#c62828;font-weight:bold}"
	".SKIP{color:#888;font-weight:bold}"
	"figure{margin:1.5em 0}figcaption{color:#555;font-size:.9em}"
	"ul.findings li{margin:.3em 0}pre{background:#f6f8fa;padding:.6em;overflow-x:auto;"
	"font-size:.85em}";

static void write_html(FILE *f, const char *dir, struct json_object *suite,
		       struct json_object *findings, const bool *drawn, bool png)
{
	struct json_object *arr, *origins;
	char path[4096];

	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		"<title>mtps-bench report</title>\n<style>%s</style>\n</head>\n<body>\n", style);
	fprintf(f, "<h1>mtps-bench report</h1>\n<p>");
	html(f, jstr(suite, "tool"));
	fputs(", ", f);
	html(f, jstr(suite, "date"));
	fputs(". Proxy ", f);
	html(f, jstr(suite, "proxy"));
	if (json_object_object_get_ex(suite, "origins", &origins)) {
		fputs("; origins", f);
		for (size_t i = 0; i < json_object_array_length(origins); i++) {
			fputs(i ? ", " : " ", f);
			html(f, json_object_get_string(json_object_array_get_idx(origins, i)));
		}
	}
	fputs(".</p>\n<h2>Findings</h2>\n<ul class=\"findings\">\n", f);
	for (size_t i = 0; i < json_object_array_length(findings); i++) {
		fputs("<li>", f);
		html(f, json_object_get_string(json_object_array_get_idx(findings, i)));
		fputs("</li>\n", f);
	}
	fputs("</ul>\n<h2>Verdicts</h2>\n<table>\n<tr><th>scenario</th><th>verdict</th></tr>\n", f);
	if (json_object_object_get_ex(suite, "scenarios", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *s = json_object_array_get_idx(arr, i);
			const char *v = verdict_of(s);

			fputs("<tr><td>", f);
			html(f, jstr(s, "name"));
			fprintf(f, "</td><td class=\"%s\">%s</td></tr>\n",
				strcmp(v, "PASS") == 0 ? "PASS" : strcmp(v, "SKIP") == 0 ? "SKIP"
											: "FAIL",
				strcmp(v, "PASS") == 0 ? "PASS" : strcmp(v, "SKIP") == 0 ? "SKIP"
											: "FAIL");
		}
	fputs("</table>\n<h2>Charts</h2>\n", f);
	for (size_t i = 0; i < sizeof(charts) / sizeof(charts[0]); i++) {
		if (!drawn[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s.svg", dir, charts[i].name);
		fprintf(f, "<figure id=\"%s\">\n", charts[i].name);
		if (embed_svg(f, path))
			fprintf(f, "<p>(%s.svg could not be embedded)</p>\n", charts[i].name);
		fprintf(f, "\n<figcaption><b>%s.</b> %s (<a href=\"%s.svg\">SVG</a>%s%s%s)"
			"</figcaption>\n</figure>\n", charts[i].title, charts[i].caption,
			charts[i].name, png ? ", <a href=\"" : "", png ? charts[i].name : "",
			png ? ".png\">PNG</a>" : "");
	}
	fputs("<h2>Scenarios</h2>\n", f);
	if (json_object_object_get_ex(suite, "scenarios", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *s = json_object_array_get_idx(arr, i), *notes;

			fputs("<h3>", f);
			html(f, jstr(s, "name"));
			fputs(": ", f);
			html(f, verdict_of(s));
			fputs("</h3>\n<pre>", f);
			if (json_object_object_get_ex(s, "notes", &notes))
				for (size_t j = 0; j < json_object_array_length(notes); j++) {
					html(f, json_object_get_string(
							json_object_array_get_idx(notes, j)));
					fputc('\n', f);
				}
			fputs("</pre>\n", f);
		}
	fputs("<p>Raw results: <a href=\"suite.json\">suite.json</a> and the CSV files next to "
	      "this report.</p>\n</body>\n</html>\n", f);
}

int report_write(const char *dir, const char *datadir, FILE *log, char *err, size_t errlen)
{
	struct json_object *suite, *findings;
	bool drawn[sizeof(charts) / sizeof(charts[0])] = { false };
	char path[4096], script[4096], expr[8192 + 256], logpath[4096], tmp[4096];
	const char *png = NULL;
	bool have_gnuplot;
	FILE *f;

	if (strpbrk(dir, "'\n\\") || strpbrk(datadir, "'\n\\")) {
		snprintf(err, errlen, "a report folder or data folder with a quote, backslash or "
			 "newline in its name is not supported");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/suite.json", dir);
	suite = json_object_from_file(path);
	if (suite == NULL) {
		snprintf(err, errlen, "%s: cannot read it as JSON (run `mtps-bench suite --report "
			 "%s` first): %s", path, dir, json_util_get_last_err());
		return -EINVAL;
	}
	snprintf(logpath, sizeof(logpath), "%s/gnuplot.log", dir);
	unlink(logpath);
	have_gnuplot = gnuplot("print 1", NULL, logpath) == 0;
	if (!have_gnuplot) {
		fprintf(log, "mtps-bench: gnuplot did not run (apt-get install gnuplot-nox): the "
			"report has no charts\n");
	} else {
		snprintf(script, sizeof(script), "%s/common.gp", datadir);
		if (access(script, R_OK)) {
			snprintf(err, errlen, "%s: no gnuplot scripts there (--datadir or "
				 "MTPS_DATADIR names the folder holding common.gp)", datadir);
			json_object_put(suite);
			return -ENOENT;
		}
		if (gnuplot("set terminal pngcairo", NULL, logpath) == 0)
			png = "pngcairo";
		else if (gnuplot("set terminal png", NULL, logpath) == 0)
			png = "png";
	}
	for (size_t i = 0; have_gnuplot && i < sizeof(charts) / sizeof(charts[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, charts[i].csv);
		if (!file_exists(path))
			continue;
		snprintf(script, sizeof(script), "%s/%s.gp", datadir, charts[i].name);
		for (int k = 0; k < (png ? 2 : 1); k++) {
			const char *fmt = k ? png : "svg";

			snprintf(tmp, sizeof(tmp), "%s/%s.%s", dir, charts[i].name, k ? "png" : "svg");
			snprintf(expr, sizeof(expr), "dir='%s'; infile='%s'; outfile='%s'; fmt='%s'",
				 datadir, path, tmp, fmt);
			unlink(tmp);
			if (gnuplot(expr, script, logpath) != 0 || !file_exists(tmp)) {
				fprintf(log, "mtps-bench: gnuplot failed on %s (see %s)\n", script,
					logpath);
				break;
			}
			if (k == 0)
				drawn[i] = true;
		}
	}
	findings = report_findings(suite);
	snprintf(path, sizeof(path), "%s/report.html", dir);
	f = fopen(path, "w");
	if (f == NULL) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		json_object_put(findings);
		json_object_put(suite);
		return -errno;
	}
	write_html(f, dir, suite, findings, drawn, png != NULL);
	if (fclose(f)) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		json_object_put(findings);
		json_object_put(suite);
		return -EIO;
	}
	fprintf(log, "Report: %s\n", path);
	for (size_t i = 0; i < json_object_array_length(findings); i++)
		fprintf(log, "  %s\n", json_object_get_string(json_object_array_get_idx(findings, i)));
	json_object_put(findings);
	json_object_put(suite);
	return 0;
}

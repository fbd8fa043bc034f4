/* report.h - `mtps-bench report DIR`: charts and report.html from a suite's results.
 *
 * Reads DIR/suite.json and the CSV files the suite wrote next to it, draws each chart whose
 * CSV exists with gnuplot (the scripts in <datadir>: $(pkgdatadir) when installed,
 * bench/plots in the source tree; --datadir or MTPS_DATADIR say where) as DIR/NAME.svg and,
 * when gnuplot has a PNG terminal, DIR/NAME.png, and writes DIR/report.html: the verdicts,
 * the findings in words (computed from suite.json), every chart inline so the file opens
 * offline, and each scenario's notes. Used from one thread.
 */
#ifndef MTPS_BENCH_REPORT_H
#define MTPS_BENCH_REPORT_H

#include <stdio.h>

#include <json-c/json.h>

/* The findings in words, one string per line, computed from a suite.json object: e.g.
 * "Cached reads were 41.0x faster at p50 than direct requests (0.05 ms vs 20.3 ms); hit
 * ratio 97.3 %." Returns a JSON array of strings (the caller puts it) or NULL. */
struct json_object *report_findings(struct json_object *suite);

/* Writes the charts and report.html into <dir>. Progress and warnings (no gnuplot: a report
 * without charts) go to <log>. Returns 0, or a negative errno with <err> set. */
int report_write(const char *dir, const char *datadir, FILE *log, char *err, size_t errlen);

#endif

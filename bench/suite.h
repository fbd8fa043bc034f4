/* suite.h - `mtps-bench suite`: the named scenarios with pass/fail verdicts on function.
 *
 *   status       every origin and the proxy answer GET /api/test and GET /health with 200
 *   large        /api/large of each size through the proxy twice (miss, then hit) and once
 *                direct, every byte checked against the pattern; MB/s of each
 *   cache        the same Zipf-popular URLs direct to an origin and through the proxy:
 *                latency percentiles, hit/miss ratio, speed-up
 *   concurrency  closed loops of 1, 8, 64, 256 connections through the proxy (fresh hits):
 *                throughput and p99 at each; no errors allowed
 *   balance      GET /api/test (never cached) through the proxy: how the answers spread over
 *                the origins (X-Served-By); with --spawn also one origin stopped and
 *                restarted under load: no failed request, and the origin taken back
 *   crud         a user created, read, updated (PUT, PATCH), deleted through the proxy: every
 *                read after a write shows the write (no stale read from the cache)
 *
 * A verdict is about function, never speed: numbers are measured and reported, not judged.
 * Each origin keeps its own user table, so crud needs a proxy with one origin behind it:
 * --crud-proxy, the proxy itself when there is one --origin, or one the suite spawns.
 *
 * The results go to <report_dir> (when set) as suite.json and one CSV per chart; report.h
 * turns them into report.html. Used from one thread (the program's main).
 */
#ifndef MTPS_BENCH_SUITE_H
#define MTPS_BENCH_SUITE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "opts.h"

#define SUITE_MAX_SIZES 8
#define SUITE_MAX_SWEEP 16
#define SUITE_MAX_ORIGINS 16

struct suite_config {
	const char *proxy;		/* URL of the proxy (NULL with spawn) */
	const struct opt_list *origins;	/* URLs of the origins behind it (empty with spawn) */
	const char *crud_proxy;		/* NULL: see above */
	bool spawn;			/* start origins and a proxy on free loopback ports */
	const char *origin_bin, *proxy_bin;
	unsigned spawn_origins;		/* how many (2..SUITE_MAX_ORIGINS) */
	unsigned latency_ms;		/* the spawned origins' --latency-ms */
	const char *scenarios;		/* "status,large,..." or "all" */
	uint64_t large_sizes[SUITE_MAX_SIZES];
	unsigned nlarge;
	unsigned sweep[SUITE_MAX_SWEEP];
	unsigned nsweep;
	uint64_t step_ms;		/* each load step's length */
	unsigned connections;		/* of the cache and balance steps */
	uint64_t timeout_ms;		/* one request's limit */
	double zipf_s;			/* the cache scenario's popularity */
	const char *report_dir;		/* NULL: print only */
	const char *log_dir;		/* spawned servers' logs (NULL: report dir or none) */
};

/* The scenario names, in order. */
extern const char *const suite_scenario_names[];

/* Checks a --scenarios value. Returns 0 or -EINVAL with <err>. */
int suite_check_scenarios(const char *list, char *err, size_t errlen);

/* Runs the chosen scenarios, printing progress and verdicts to <out>, and writes the results
 * into c->report_dir. Returns the number of scenarios that failed (0: all passed or were
 * skipped), or a negative errno when the suite could not run at all (<err> says why). */
int suite_run(const struct suite_config *c, FILE *out, char *err, size_t errlen);

#endif

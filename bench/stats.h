/* stats.h - what a load run measured: latencies, statuses, errors, bytes, cache outcomes,
 * backends, per second; the summary math and the CSV/JSON/text writers.
 *
 * One struct stats per load thread, recorded into without locks, then merged into one at
 * the end (stats_merge). Latencies are microseconds in common/hist.h histograms: one for
 * every response, one per X-Cache outcome. The per-second series has STATS_MAX_SECONDS
 * slots; later seconds add to the last one. A struct stats is about 300 KiB: stats_new().
 */
#ifndef MTPS_BENCH_STATS_H
#define MTPS_BENCH_STATS_H

#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "hist.h"

#define STATS_MAX_SECONDS 3600
#define STATS_MAX_BACKENDS 32
#define STATS_MAX_NAME 64
#define STATS_MAX_STATUS 600

/* The X-Cache header mtps-proxy sets; NONE when the answer had none (an origin's). */
enum stats_cache {
	STATS_CACHE_NONE = 0,
	STATS_CACHE_HIT,
	STATS_CACHE_MISS,
	STATS_CACHE_STALE,
	STATS_CACHE_REVALIDATED,
	STATS_CACHE_BYPASS,
	STATS_CACHE_OTHER,
	STATS_CACHE_N,
};

/* Why a request got no answer. */
enum stats_error {
	STATS_ERR_CONNECT = 0,	/* refused, unreachable, DNS */
	STATS_ERR_TIMEOUT,
	STATS_ERR_IO,		/* the connection broke: send, receive, empty reply */
	STATS_ERR_OTHER,
	STATS_ERR_N,
};

struct stats_second {
	uint64_t responses, bytes, errors, hits, latency_sum_us;
};

struct stats_backend {
	char name[STATS_MAX_NAME];
	uint64_t count;
};

struct stats {
	struct hist latency;			/* every response */
	struct hist by_cache[STATS_CACHE_N];	/* by X-Cache outcome */
	uint64_t responses, bytes, elapsed_us;
	uint64_t errors[STATS_ERR_N];
	uint64_t status[STATS_MAX_STATUS];	/* [0] counts statuses out of range */
	uint64_t cache[STATS_CACHE_N];
	struct stats_backend backends[STATS_MAX_BACKENDS];
	unsigned nbackends;
	uint64_t backends_other;		/* named, but the table was full */
	uint64_t unsent;			/* open loop: fell due, never sent (no free
					 * connection before the end) */
	struct stats_second seconds[STATS_MAX_SECONDS];
	unsigned nseconds;			/* slots used */
};

/* A zeroed struct stats with its histograms ready; NULL when out of memory. */
struct stats *stats_new(void);
void stats_free(struct stats *s);

/* The X-Cache outcome a header value names ("HIT", "MISS from x", ...; case-insensitive). */
enum stats_cache stats_cache_parse(const char *value);
const char *stats_cache_name(enum stats_cache c);
const char *stats_error_name(enum stats_error e);

/* Records one answer that arrived <at_us> after the run started. <backend> may be NULL. */
void stats_record(struct stats *s, uint64_t at_us, uint64_t latency_us, long status,
		  uint64_t bytes, enum stats_cache cache, const char *backend);
/* Records one request that got no answer. */
void stats_record_error(struct stats *s, uint64_t at_us, enum stats_error e);

/* Adds <src> into <dst> (elapsed_us: the longer one). */
void stats_merge(struct stats *dst, const struct stats *src);

/* The numbers of a summary. */
struct stats_summary {
	uint64_t responses, errors, non_2xx_3xx, bytes;
	double seconds, requests_per_s, bytes_per_s;
	double p50_ms, p90_ms, p99_ms, p999_ms, max_ms, mean_ms;
	double hit_ratio;	/* HIT / answers that had an X-Cache header; -1 when none had */
};

void stats_summarize(const struct stats *s, struct stats_summary *out);

/* The text summary, as wrk prints it. */
void stats_print(const struct stats *s, const char *title, FILE *out);

/* CSV: "second,responses,bytes,errors,hits,mean_latency_ms", one line per second. */
int stats_write_series_csv(const struct stats *s, FILE *out);
/* CSV: "percentile,all_ms,hit_ms,miss_ms" at fixed percentiles from 0 to 99.999 (an empty
 * column is written as an empty field). */
int stats_write_percentiles_csv(const struct stats *s, FILE *out);
/* The whole result as a JSON object (summary, percentiles, statuses, errors, cache, backends,
 * series); the caller puts it. NULL when out of memory. */
struct json_object *stats_to_json(const struct stats *s);

/* The percentiles the CSV and JSON list. */
extern const double stats_percentiles[];
extern const unsigned stats_npercentiles;

#endif

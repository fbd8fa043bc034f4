/* hist.h - latency histograms: fixed log-linear buckets (as HdrHistogram lays them out),
 * lock-free to record into, mergeable, with percentiles to a stated relative error.
 *
 * Values are unsigned integers in whatever unit the caller picks (mtps records
 * microseconds). Values below 2^HIST_SUB_BITS get a bucket each; above, every power of two
 * is split into 2^HIST_SUB_BITS equal buckets, so a percentile read back is within
 * HIST_RELATIVE_ERROR of the value recorded (it reports the middle of its bucket). Values
 * from 2^HIST_MAX_BITS up count in the last bucket (and in max exactly).
 *
 * Threads: hist_record() and the readers use relaxed atomics, so any number of threads may
 * record into one histogram while another reads it, with no lock; a reader sees each
 * counter whole but may see count, sum and buckets from slightly different moments. A
 * struct hist is about 34 KiB: embed it or allocate it, zeroed by hist_init().
 */
#ifndef MTPS_HIST_H
#define MTPS_HIST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_MAX_BITS 40	/* 2^40 us is about 12.7 days */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) << HIST_SUB_BITS)
#define HIST_RELATIVE_ERROR (1.0 / (1 << (HIST_SUB_BITS + 1)))	/* 0.39 % */

struct hist {
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum;
	atomic_uint_fast64_t min;	/* UINT64_MAX while empty */
	atomic_uint_fast64_t max;
	atomic_uint_fast64_t buckets[HIST_BUCKETS];
};

void hist_init(struct hist *h);

/* Records one value. */
void hist_record(struct hist *h, uint64_t v);
/* Records <n> occurrences of <v> (coordinated-omission correction fills in with this). */
void hist_record_n(struct hist *h, uint64_t v, uint64_t n);

/* Adds every count of <src> into <dst>. */
void hist_merge(struct hist *dst, const struct hist *src);

uint64_t hist_count(const struct hist *h);
uint64_t hist_min(const struct hist *h);	/* 0 when empty */
uint64_t hist_max(const struct hist *h);
double hist_mean(const struct hist *h);		/* 0 when empty */

/* The value at percentile <p> (0..100): the smallest recorded value such that at least p %
 * of the values are at or below it, to HIST_RELATIVE_ERROR, clamped to [min, max]. 0 when
 * empty. */
uint64_t hist_percentile(const struct hist *h, double p);

/* How many recorded values are <= <v> (exact at bucket edges, else counts the whole bucket
 * holding <v>): cumulative buckets for Prometheus' le="...". */
uint64_t hist_count_le(const struct hist *h, uint64_t v);

/* Bucket layout, for walking a histogram: bucket <i> holds values in [lo, hi]. */
size_t hist_index(uint64_t v);
uint64_t hist_bucket_lo(size_t i);
uint64_t hist_bucket_hi(size_t i);

#endif

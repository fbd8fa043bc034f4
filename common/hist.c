/* hist.c - log-linear latency histograms (see hist.h). */
#include "config.h"

#include "hist.h"

#define SUB (UINT64_C(1) << HIST_SUB_BITS)

static inline uint64_t ld(const atomic_uint_fast64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

void hist_init(struct hist *h)
{
	atomic_init(&h->count, 0);
	atomic_init(&h->sum, 0);
	atomic_init(&h->min, UINT64_MAX);
	atomic_init(&h->max, 0);
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		atomic_init(&h->buckets[i], 0);
}

size_t hist_index(uint64_t v)
{
	unsigned msb;

	if (v < SUB)
		return (size_t)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	if (msb >= HIST_MAX_BITS)
		return HIST_BUCKETS - 1;
	/* msb - SUB_BITS whole groups of SUB buckets after the exact ones; v >> shift is in
	 * [SUB, 2 SUB) */
	return (size_t)(msb - HIST_SUB_BITS) * SUB + (size_t)(v >> (msb - HIST_SUB_BITS));
}

uint64_t hist_bucket_lo(size_t i)
{
	uint64_t group, shift;

	if (i < SUB)
		return i;
	group = i / SUB;	/* >= 1 */
	shift = group - 1;
	return (SUB + i % SUB) << shift;
}

uint64_t hist_bucket_hi(size_t i)
{
	if (i + 1 >= HIST_BUCKETS)
		return UINT64_MAX;
	return hist_bucket_lo(i + 1) - 1;
}

static void store_min(atomic_uint_fast64_t *a, uint64_t v)
{
	uint_fast64_t cur = ld(a);

	while (v < cur && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
								  memory_order_relaxed))
		;
}

static void store_max(atomic_uint_fast64_t *a, uint64_t v)
{
	uint_fast64_t cur = ld(a);

	while (v > cur && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
								  memory_order_relaxed))
		;
}

void hist_record_n(struct hist *h, uint64_t v, uint64_t n)
{
	if (n == 0)
		return;
	atomic_fetch_add_explicit(&h->buckets[hist_index(v)], n, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, v * n, memory_order_relaxed);
	store_min(&h->min, v);
	store_max(&h->max, v);
}

void hist_record(struct hist *h, uint64_t v)
{
	hist_record_n(h, v, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	uint64_t n = ld(&src->count);

	if (n == 0)
		return;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		uint64_t c = ld(&src->buckets[i]);

		if (c)
			atomic_fetch_add_explicit(&dst->buckets[i], c, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&dst->count, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&dst->sum, ld(&src->sum), memory_order_relaxed);
	store_min(&dst->min, ld(&src->min));
	store_max(&dst->max, ld(&src->max));
}

uint64_t hist_count(const struct hist *h)
{
	return ld(&h->count);
}

uint64_t hist_min(const struct hist *h)
{
	return ld(&h->count) ? ld(&h->min) : 0;
}

uint64_t hist_max(const struct hist *h)
{
	return ld(&h->max);
}

double hist_mean(const struct hist *h)
{
	uint64_t n = ld(&h->count);

	return n ? (double)ld(&h->sum) / (double)n : 0.0;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t total = 0, rank, seen = 0, v;
	uint64_t lo, hi;

	/* count the buckets themselves: h->count may be a moment ahead of them */
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		total += ld(&h->buckets[i]);
	if (total == 0)
		return 0;
	if (p <= 0)
		return hist_min(h);
	if (p >= 100)
		return hist_max(h);
	rank = (uint64_t)(p / 100.0 * (double)total + 0.999999);
	if (rank == 0)
		rank = 1;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += ld(&h->buckets[i]);
		if (seen >= rank) {
			lo = hist_bucket_lo(i);
			hi = hist_bucket_hi(i);
			v = hi == UINT64_MAX ? lo : lo + (hi - lo) / 2;
			if (v < hist_min(h))
				v = hist_min(h);
			if (v > hist_max(h))
				v = hist_max(h);
			return v;
		}
	}
	return hist_max(h);
}

uint64_t hist_count_le(const struct hist *h, uint64_t v)
{
	size_t last = hist_index(v);
	uint64_t n = 0;

	for (size_t i = 0; i <= last; i++)
		n += ld(&h->buckets[i]);
	return n;
}

/* Unit tests for common/hist.c: the bucket layout (every value lands in a bucket whose
 * bounds hold it, buckets tile the range), percentiles against a sorted reference on random
 * data within HIST_RELATIVE_ERROR, merge equals recording both, count_le at bucket edges,
 * the empty histogram, huge values, and concurrent recording from threads. */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "hist.h"

/* splitmix64: reproducible random data */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct hist *hist_alloc(void)
{
	struct hist *h = malloc(sizeof(*h));

	ck_assert_ptr_nonnull(h);
	hist_init(h);
	return h;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The reference: the smallest value with at least p % of the values at or below it. */
static uint64_t reference_percentile(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

START_TEST(test_layout)
{
	/* every value's bucket holds it; consecutive buckets tile [0, 2^MAX_BITS) */
	for (size_t i = 0; i + 1 < HIST_BUCKETS; i++) {
		ck_assert_uint_le(hist_bucket_lo(i), hist_bucket_hi(i));
		ck_assert_uint_eq(hist_bucket_hi(i) + 1, hist_bucket_lo(i + 1));
		ck_assert_uint_eq(hist_index(hist_bucket_lo(i)), i);
		ck_assert_uint_eq(hist_index(hist_bucket_hi(i)), i);
	}
	ck_assert_uint_eq(hist_bucket_lo(0), 0);
	ck_assert_uint_eq(hist_bucket_hi(HIST_BUCKETS - 1), UINT64_MAX);
	ck_assert_uint_eq(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	ck_assert_uint_eq(hist_index((uint64_t)1 << HIST_MAX_BITS), HIST_BUCKETS - 1);
	/* a bucket's width is within the stated relative error of its values */
	for (size_t i = 0; i + 1 < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);

		if (lo > 0)
			ck_assert_double_le((double)(hi - lo) / 2.0 / (double)lo,
					    HIST_RELATIVE_ERROR);
	}
}
END_TEST

/* Random data of several shapes: uniform small, uniform wide, log-uniform (latency-like). */
static uint64_t draw(int shape)
{
	switch (shape) {
	case 0:
		return rnd() % 100;
	case 1:
		return rnd() % 10000000;
	default:
		return (uint64_t)exp((double)(rnd() % 1000000) / 1000000.0 * log(1e9));
	}
}

START_TEST(test_percentiles)
{
	static const double ps[] = { 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100 };
	size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));
	struct hist *h = hist_alloc();

	ck_assert_ptr_nonnull(v);
	rng_state = 42 + (uint64_t)_i;
	for (size_t k = 0; k < n; k++) {
		v[k] = draw(_i);
		hist_record(h, v[k]);
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	ck_assert_uint_eq(hist_count(h), n);
	ck_assert_uint_eq(hist_min(h), v[0]);
	ck_assert_uint_eq(hist_max(h), v[n - 1]);
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		uint64_t want = reference_percentile(v, n, ps[k]);
		uint64_t got = hist_percentile(h, ps[k]);
		double err = fabs((double)got - (double)want);

		ck_assert_msg(err <= HIST_RELATIVE_ERROR * (double)want + 0.5,
			      "shape %d p%g: got %llu, want %llu", _i, ps[k],
			      (unsigned long long)got, (unsigned long long)want);
	}
	ck_assert_uint_eq(hist_percentile(h, 0), v[0]);
	free(v);
	free(h);
}
END_TEST

START_TEST(test_mean)
{
	struct hist *h = hist_alloc();

	hist_record(h, 10);
	hist_record(h, 20);
	hist_record_n(h, 30, 2);
	ck_assert_uint_eq(hist_count(h), 4);
	ck_assert_double_eq_tol(hist_mean(h), 22.5, 1e-9);
	hist_record_n(h, 1000, 0);	/* nothing */
	ck_assert_uint_eq(hist_count(h), 4);
	ck_assert_uint_eq(hist_max(h), 30);
	free(h);
}
END_TEST

START_TEST(test_merge)
{
	struct hist *a = hist_alloc(), *b = hist_alloc(), *both = hist_alloc();

	rng_state = 7;
	for (int k = 0; k < 50000; k++) {
		uint64_t x = draw(2);

		hist_record(k % 3 ? a : b, x);
		hist_record(both, x);
	}
	hist_merge(a, b);
	ck_assert_uint_eq(hist_count(a), hist_count(both));
	ck_assert_uint_eq(hist_min(a), hist_min(both));
	ck_assert_uint_eq(hist_max(a), hist_max(both));
	ck_assert_double_eq_tol(hist_mean(a), hist_mean(both), 1e-6);
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		ck_assert_uint_eq(atomic_load(&a->buckets[i]), atomic_load(&both->buckets[i]));
	/* merging an empty one changes nothing; into an empty one copies */
	hist_init(b);
	hist_merge(a, b);
	ck_assert_uint_eq(hist_count(a), hist_count(both));
	hist_merge(b, both);
	ck_assert_uint_eq(hist_min(b), hist_min(both));
	ck_assert_uint_eq(hist_percentile(b, 50), hist_percentile(both, 50));
	free(a);
	free(b);
	free(both);
}
END_TEST

START_TEST(test_count_le)
{
	struct hist *h = hist_alloc();
	size_t i = hist_index(1000);
	uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);

	ck_assert_uint_gt(hi, lo);	/* a bucket wider than one value */
	hist_record(h, lo - 1);
	hist_record(h, lo);
	hist_record(h, hi);
	hist_record(h, hi + 1);
	ck_assert_uint_eq(hist_count_le(h, lo - 1), 1);
	ck_assert_uint_eq(hist_count_le(h, hi), 3);		/* exact at the upper edge */
	ck_assert_uint_eq(hist_count_le(h, hi + 1), 4);
	ck_assert_uint_eq(hist_count_le(h, 0), 0);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX), 4);
	/* small values have a bucket each: exact */
	hist_record(h, 3);
	ck_assert_uint_eq(hist_count_le(h, 2), 0);
	ck_assert_uint_eq(hist_count_le(h, 3), 1);
	free(h);
}
END_TEST

START_TEST(test_empty)
{
	struct hist *h = hist_alloc();

	ck_assert_uint_eq(hist_count(h), 0);
	ck_assert_uint_eq(hist_min(h), 0);
	ck_assert_uint_eq(hist_max(h), 0);
	ck_assert_double_eq(hist_mean(h), 0.0);
	ck_assert_uint_eq(hist_percentile(h, 0), 0);
	ck_assert_uint_eq(hist_percentile(h, 50), 0);
	ck_assert_uint_eq(hist_percentile(h, 100), 0);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX), 0);
	free(h);
}
END_TEST

START_TEST(test_huge)
{
	struct hist *h = hist_alloc();
	uint64_t big = (uint64_t)1 << 50;

	hist_record(h, UINT64_MAX);
	hist_record(h, big);
	hist_record(h, 5);
	ck_assert_uint_eq(hist_count(h), 3);
	ck_assert_uint_eq(hist_max(h), UINT64_MAX);
	ck_assert_uint_eq(hist_min(h), 5);
	ck_assert_uint_eq(hist_percentile(h, 100), UINT64_MAX);
	/* both in the last bucket, which reaches from below 2^MAX_BITS to UINT64_MAX: read
	 * back as its lower bound (the only figure the bucket knows), the max exactly */
	ck_assert_uint_eq(hist_index(big), HIST_BUCKETS - 1);
	ck_assert_uint_lt(hist_bucket_lo(HIST_BUCKETS - 1), (uint64_t)1 << HIST_MAX_BITS);
	ck_assert_uint_eq(hist_percentile(h, 50), hist_bucket_lo(HIST_BUCKETS - 1));
	ck_assert_uint_eq(hist_percentile(h, 1), 5);
	ck_assert_uint_eq(hist_count_le(h, hist_bucket_lo(HIST_BUCKETS - 1) - 1), 1);
	ck_assert_uint_eq(hist_count_le(h, big), 3);
	/* the sum wraps past 2^64; count and percentiles do not depend on it */
	ck_assert_uint_eq(hist_count(h), 3);
	free(h);
}
END_TEST

#define THREADS 4
#define PER_THREAD 200000

static void *recorder(void *arg)
{
	struct hist *h = arg;

	for (uint64_t k = 0; k < PER_THREAD; k++)
		hist_record(h, k % 5000);
	return NULL;
}

START_TEST(test_threads)
{
	struct hist *h = hist_alloc();
	pthread_t t[THREADS];
	uint64_t sum = 0;

	for (int k = 0; k < THREADS; k++)
		ck_assert_int_eq(pthread_create(&t[k], NULL, recorder, h), 0);
	for (int k = 0; k < THREADS; k++)
		pthread_join(t[k], NULL);
	for (uint64_t k = 0; k < PER_THREAD; k++)
		sum += k % 5000;
	ck_assert_uint_eq(hist_count(h), (uint64_t)THREADS * PER_THREAD);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX), (uint64_t)THREADS * PER_THREAD);
	ck_assert_uint_eq(atomic_load(&h->sum), sum * THREADS);
	ck_assert_uint_eq(hist_min(h), 0);
	ck_assert_uint_eq(hist_max(h), 4999);
	free(h);
}
END_TEST

static Suite *hist_suite(void)
{
	Suite *s = suite_create("hist");
	TCase *tc = tcase_create("hist");

	tcase_add_test(tc, test_layout);
	tcase_add_loop_test(tc, test_percentiles, 0, 3);
	tcase_add_test(tc, test_mean);
	tcase_add_test(tc, test_merge);
	tcase_add_test(tc, test_count_le);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_huge);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(hist_suite)

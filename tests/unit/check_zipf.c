/* Unit tests for bench/zipf.c: the popularity sampler draws each rank as often as Zipf's
 * law says, within sampling error. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "check_main.h"
#include "zipf.h"

#define DRAWS 200000

/* Draws DRAWS ranks and checks each rank's frequency against k^-s / H(n, s) to within five
 * standard deviations of a binomial count (a false alarm about once in 3.5 million). */
static void check_frequencies(uint64_t n, double s, uint64_t seed)
{
	struct zipf z;
	struct zipf_rng r;
	uint64_t *count = calloc(n + 1, sizeof(*count)), outside = 0;

	ck_assert_int_eq(zipf_init(&z, n, s), 0);
	zipf_rng_seed(&r, seed);
	/* (no ck_assert in the loops: Check writes to a pipe for each one) */
	for (int i = 0; i < DRAWS; i++) {
		uint64_t k = zipf_next(&z, &r);

		if (k < 1 || k > n)
			outside++;
		else
			count[k]++;
	}
	ck_assert_uint_eq(outside, 0);
	for (uint64_t k = 1; k <= n; k++) {
		double p = zipf_probability(&z, k), want = p * DRAWS;
		double sd = sqrt(DRAWS * p * (1 - p));

		ck_assert_msg(fabs((double)count[k] - want) <= 5 * sd + 1,
			      "n=%llu s=%g: rank %llu drawn %llu times, expected %.1f (sd %.1f)",
			      (unsigned long long)n, s, (unsigned long long)k,
			      (unsigned long long)count[k], want, sd);
	}
	free(count);
}

/* The exponents web traces show, s = 1 exactly (the logarithmic special case), a steep one
 * and a flat one. */
START_TEST(test_frequencies)
{
	static const struct {
		uint64_t n;
		double s;
	} cases[] = {
		{ 10, 1.0 }, { 10, 0.8 }, { 50, 1.2 }, { 100, 0.5 }, { 20, 2.5 }, { 7, 0.0 },
		{ 2, 1.0 }, { 1000, 0.99 },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		check_frequencies(cases[i].n, cases[i].s, 42 + i);
}
END_TEST

/* A large n costs no memory: the first ranks of a million still get their share. */
START_TEST(test_large_n)
{
	struct zipf z;
	struct zipf_rng r;
	uint64_t ones = 0, twos = 0, max = 0;

	ck_assert_int_eq(zipf_init(&z, 1000000, 1.1), 0);
	zipf_rng_seed(&r, 7);
	for (int i = 0; i < DRAWS; i++) {
		uint64_t k = zipf_next(&z, &r);

		ones += k == 1;
		twos += k == 2;
		if (k > max)
			max = k;
	}
	/* H(10^6, 1.1) is about 8.1: rank 1 about 12.3 %, rank 2 about 5.7 % */
	ck_assert_double_eq_tol((double)ones / DRAWS, 1.0 / 8.1, 0.01);
	ck_assert_double_eq_tol((double)twos / (double)ones, pow(2, -1.1), 0.02);
	ck_assert_uint_le(max, 1000000);
	ck_assert_uint_gt(max, 1000);
}
END_TEST

START_TEST(test_bad_parameters)
{
	struct zipf z;

	ck_assert_int_eq(zipf_init(&z, 0, 1.0), -EINVAL);
	ck_assert_int_eq(zipf_init(&z, 10, -0.5), -EINVAL);
	ck_assert_int_eq(zipf_init(&z, 10, NAN), -EINVAL);
	ck_assert_int_eq(zipf_init(&z, 1, 1.0), 0);
	ck_assert_uint_eq(zipf_probability(&z, 1), 1);
}
END_TEST

/* The same seed gives the same sequence; rng_double stays in [0, 1). */
START_TEST(test_rng)
{
	struct zipf_rng a, b;

	zipf_rng_seed(&a, 99);
	zipf_rng_seed(&b, 99);
	int differ = 0, outside = 0;

	for (int i = 0; i < 1000; i++)
		differ += zipf_rng_next(&a) != zipf_rng_next(&b);
	for (int i = 0; i < 100000; i++) {
		double d = zipf_rng_double(&a);

		outside += !(d >= 0.0 && d < 1.0);
	}
	ck_assert_int_eq(differ, 0);
	ck_assert_int_eq(outside, 0);
}
END_TEST

static Suite *zipf_suite(void)
{
	Suite *s = suite_create("zipf");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_frequencies);
	tcase_add_test(tc, test_large_n);
	tcase_add_test(tc, test_bad_parameters);
	tcase_add_test(tc, test_rng);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(zipf_suite)

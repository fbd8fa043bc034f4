/* Unit tests for bench/pace.c: the open-loop send schedule and the backlog it keeps, which
 * is what coordinated-omission correction measures latency from. */
#include "config.h"

#include <errno.h>

#include "check_main.h"
#include "pace.h"

/* Due times are start + i / rate, rounded, from i each time: no drift. */
START_TEST(test_schedule)
{
	static const struct {
		double rate;
		uint64_t i, due_us;
	} cases[] = {
		{ 1000, 0, 0 }, { 1000, 1, 1000 }, { 1000, 999, 999000 },
		{ 3, 1, 333333 }, { 3, 2, 666667 }, { 3, 3, 1000000 },
		{ 3, 3000000, 1000000000000ULL },	/* a million seconds later, still exact */
		{ 0.5, 1, 2000000 }, { 7, 7, 1000000 },
	};
	struct pace p;

	for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
		ck_assert_int_eq(pace_init(&p, cases[k].rate, 0), 0);
		ck_assert_uint_eq(pace_due(&p, cases[k].i), cases[k].due_us);
		ck_assert_int_eq(pace_init(&p, cases[k].rate, 5000), 0);
		ck_assert_uint_eq(pace_due(&p, cases[k].i), 5000 + cases[k].due_us);
	}
}
END_TEST

/* A sender takes each request when it falls due and not before. */
START_TEST(test_take_on_time)
{
	struct pace p;
	uint64_t due = 0;

	pace_init(&p, 1000, 100);
	ck_assert(!pace_take(&p, 99, &due));
	ck_assert(pace_take(&p, 100, &due));
	ck_assert_uint_eq(due, 100);
	ck_assert(!pace_take(&p, 1099, &due));
	ck_assert_uint_eq(pace_next_due(&p), 1100);
	ck_assert(pace_take(&p, 1100, &due));
	ck_assert_uint_eq(due, 1100);
}
END_TEST

/* A sender that stalls owes every request that fell due meanwhile, and each keeps its own
 * due time: a 5 ms stall shows as 5, 4, 3, 2, 1 ms of extra latency (wrk2's correction), not
 * as one late request. */
START_TEST(test_backlog_keeps_due_times)
{
	struct pace p;
	uint64_t due = 0, now = 5500;

	pace_init(&p, 1000, 0);
	ck_assert(pace_take(&p, 0, &due));
	ck_assert_uint_eq(pace_backlog(&p, now), 5);
	for (uint64_t i = 1; i <= 5; i++) {
		ck_assert(pace_take(&p, now, &due));
		ck_assert_uint_eq(due, i * 1000);
		ck_assert_uint_eq(now - due, (6 - i) * 1000 - 500);
	}
	ck_assert(!pace_take(&p, now, &due));
	ck_assert_uint_eq(pace_backlog(&p, now), 0);
	ck_assert_uint_eq(pace_backlog(&p, 6000), 1);
}
END_TEST

START_TEST(test_bad_rate)
{
	struct pace p;

	ck_assert_int_eq(pace_init(&p, 0, 0), -EINVAL);
	ck_assert_int_eq(pace_init(&p, -5, 0), -EINVAL);
}
END_TEST

static Suite *pace_suite(void)
{
	Suite *s = suite_create("pace");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_schedule);
	tcase_add_test(tc, test_take_on_time);
	tcase_add_test(tc, test_backlog_keeps_due_times);
	tcase_add_test(tc, test_bad_rate);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(pace_suite)

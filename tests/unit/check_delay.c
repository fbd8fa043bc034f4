/* Unit tests for origin/delay.c: the timer queue behind --latency-ms. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "check_main.h"
#include "delay.h"

struct record {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int order[64];
	uint64_t at[64];
	int n;
};

struct item {
	struct record *rec;
	int tag;
};

static void fire(void *arg)
{
	struct item *it = arg;
	struct record *r = it->rec;

	pthread_mutex_lock(&r->lock);
	r->order[r->n] = it->tag;
	r->at[r->n] = delay_now_ms();
	r->n++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void wait_for(struct record *r, int n)
{
	pthread_mutex_lock(&r->lock);
	while (r->n < n)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

static struct record *record_new(void)
{
	struct record *r = calloc(1, sizeof(*r));

	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	return r;
}

/* Items fire in due order, whatever order they were added in; equal times keep theirs.
 * They are due far ahead, so the order is that of delay_shutdown(), not of the clock. */
START_TEST(test_due_order)
{
	static const int offsets[] = { 30, 10, 20, 0, 10, 5 };
	static const int expect[] = { 3, 5, 1, 4, 2, 0 };
	struct delay *d = delay_start(16);
	struct record *r = record_new();
	struct item items[6];
	uint64_t base = delay_now_ms() + 600000;

	for (int i = 0; i < 6; i++) {
		items[i] = (struct item){ r, i };
		ck_assert_int_eq(delay_add(d, base + (uint64_t)offsets[i], fire, &items[i]), 0);
	}
	delay_shutdown(d);
	ck_assert_int_eq(r->n, 6);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(r->order[i], expect[i]);
	ck_assert_int_eq(delay_add(d, base, fire, &items[0]), -ESHUTDOWN);
	delay_free(d);
	free(r);
}
END_TEST

/* The thread fires an item on time, never before. */
START_TEST(test_not_before_due)
{
	struct delay *d = delay_start(4);
	struct record *r = record_new();
	struct item it = { r, 7 };
	uint64_t due = delay_now_ms() + 100;

	ck_assert_int_eq(delay_add(d, due, fire, &it), 0);
	wait_for(r, 1);
	ck_assert_int_eq(r->order[0], 7);
	ck_assert_uint_ge(r->at[0], due);	/* a lower bound only: never flaky */
	delay_shutdown(d);
	delay_free(d);
	free(r);
}
END_TEST

/* An earlier item added while the thread waits for a later one is not held up by it. */
START_TEST(test_earlier_item_rearms)
{
	struct delay *d = delay_start(4);
	struct record *r = record_new();
	struct item late = { r, 1 }, soon = { r, 2 };
	uint64_t base = delay_now_ms();

	ck_assert_int_eq(delay_add(d, base + 60000, fire, &late), 0);
	ck_assert_int_eq(delay_add(d, base, fire, &soon), 0);
	wait_for(r, 1);
	ck_assert_int_eq(r->order[0], 2);
	ck_assert_uint_lt(r->at[0], base + 60000);
	delay_shutdown(d);	/* fires the late one at once */
	delay_free(d);
	ck_assert_int_eq(r->n, 2);
	ck_assert_int_eq(r->order[1], 1);
	free(r);
}
END_TEST

START_TEST(test_capacity)
{
	struct delay *d = delay_start(2);
	struct record *r = record_new();
	struct item it = { r, 0 };
	uint64_t far = delay_now_ms() + 600000;

	ck_assert_int_eq(delay_add(d, far, fire, &it), 0);
	ck_assert_int_eq(delay_add(d, far, fire, &it), 0);
	ck_assert_int_eq(delay_add(d, far, fire, &it), -ENOSPC);
	delay_shutdown(d);
	delay_free(d);
	ck_assert_int_eq(r->n, 2);
	free(r);
}
END_TEST

static Suite *delay_suite(void)
{
	Suite *s = suite_create("delay");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_due_order);
	tcase_add_test(tc, test_not_before_due);
	tcase_add_test(tc, test_earlier_item_rearms);
	tcase_add_test(tc, test_capacity);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(delay_suite)

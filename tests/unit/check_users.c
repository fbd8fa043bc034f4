/* Unit tests for origin/users.c: the user table, alone and under concurrent writers. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "users.h"

START_TEST(test_create_get)
{
	struct users *t = users_new(10);
	struct user u, v;

	ck_assert_int_eq(users_create(t, "Ann", "ann@example.org", 100, &u), 0);
	ck_assert_uint_eq(u.id, 1);
	ck_assert_uint_eq(u.version, 1);
	ck_assert_int_eq(users_get(t, 1, &v), 0);
	ck_assert_str_eq(v.name, "Ann");
	ck_assert_str_eq(v.email, "ann@example.org");
	ck_assert_int_eq(v.created, 100);
	ck_assert_int_eq(users_get(t, 2, &v), -ENOENT);
	ck_assert_uint_eq(users_count(t), 1);
	users_free(t);
}
END_TEST

START_TEST(test_email_unique_any_case)
{
	struct users *t = users_new(10);
	struct user u;

	ck_assert_int_eq(users_create(t, "A", "a@example.org", 0, NULL), 0);
	ck_assert_int_eq(users_create(t, "B", "A@Example.ORG", 0, NULL), -EEXIST);
	ck_assert_int_eq(users_create(t, "B", "b@example.org", 0, &u), 0);
	/* changing to another's email is refused; to one's own is fine */
	ck_assert_int_eq(users_update(t, u.id, NULL, "a@EXAMPLE.org", 0, 1, NULL), -EEXIST);
	ck_assert_int_eq(users_update(t, u.id, NULL, "B@example.org", 0, 1, NULL), 0);
	/* the old address is free again after a change */
	ck_assert_int_eq(users_update(t, u.id, NULL, "c@example.org", 0, 1, NULL), 0);
	ck_assert_int_eq(users_create(t, "D", "b@example.org", 0, NULL), 0);
	users_free(t);
}
END_TEST

START_TEST(test_update_versions)
{
	struct users *t = users_new(10);
	struct user u;

	users_create(t, "A", "a@example.org", 10, &u);
	ck_assert_int_eq(users_update(t, u.id, "A2", NULL, 0, 20, &u), 0);
	ck_assert_str_eq(u.name, "A2");
	ck_assert_str_eq(u.email, "a@example.org");
	ck_assert_uint_eq(u.version, 2);
	ck_assert_int_eq(u.created, 10);
	ck_assert_int_eq(u.updated, 20);
	/* If-Match: only the current version may write */
	ck_assert_int_eq(users_update(t, u.id, "A3", NULL, 1, 30, NULL), -ESTALE);
	ck_assert_int_eq(users_update(t, u.id, "A3", NULL, 2, 30, &u), 0);
	ck_assert_uint_eq(u.version, 3);
	ck_assert_int_eq(users_update(t, 99, "X", NULL, 0, 30, NULL), -ENOENT);
	ck_assert_int_eq(users_delete(t, u.id, 2), -ESTALE);
	ck_assert_int_eq(users_delete(t, u.id, 3), 0);
	ck_assert_int_eq(users_delete(t, u.id, 0), -ENOENT);
	users_free(t);
}
END_TEST

START_TEST(test_field_limits)
{
	struct users *t = users_new(10);
	char longname[USER_NAME_MAX + 2];

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(users_create(t, "", "a@example.org", 0, NULL), -EINVAL);
	ck_assert_int_eq(users_create(t, "A", "", 0, NULL), -EINVAL);
	ck_assert_int_eq(users_create(t, longname, "a@example.org", 0, NULL), -EINVAL);
	longname[USER_NAME_MAX] = '\0';
	ck_assert_int_eq(users_create(t, longname, "a@example.org", 0, NULL), 0);
	users_free(t);
}
END_TEST

START_TEST(test_capacity)
{
	struct users *t = users_new(3);
	struct user u;

	ck_assert_int_eq(users_create(t, "A", "a@example.org", 0, &u), 0);
	ck_assert_int_eq(users_create(t, "B", "b@example.org", 0, NULL), 0);
	ck_assert_int_eq(users_create(t, "C", "c@example.org", 0, NULL), 0);
	ck_assert_int_eq(users_create(t, "D", "d@example.org", 0, NULL), -ENOSPC);
	ck_assert_int_eq(users_delete(t, u.id, 0), 0);
	ck_assert_int_eq(users_create(t, "D", "d@example.org", 0, &u), 0);
	ck_assert_uint_eq(u.id, 4);	/* ids are never reused */
	users_free(t);
}
END_TEST

START_TEST(test_list_pages)
{
	struct users *t = users_new(1000);
	struct user *page;
	size_t total, n;
	uint64_t v1, v2;
	char email[32];

	for (int i = 1; i <= 25; i++) {
		snprintf(email, sizeof(email), "u%d@example.org", i);
		users_create(t, "U", email, 0, NULL);
	}
	users_delete(t, 3, 0);
	page = users_list(t, 0, 10, &n, &total, &v1);
	ck_assert_uint_eq(n, 10);
	ck_assert_uint_eq(total, 24);
	ck_assert_uint_eq(page[0].id, 1);
	ck_assert_uint_eq(page[2].id, 4);	/* 3 is gone */
	free(page);
	page = users_list(t, 20, 10, &n, &total, &v2);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(page[3].id, 25);
	ck_assert_uint_eq(v1, v2);
	free(page);
	page = users_list(t, 24, 10, &n, &total, &v2);
	ck_assert_uint_eq(n, 0);
	free(page);
	page = users_list(t, 1000000, 1000, &n, &total, &v2);	/* far past the end */
	ck_assert_uint_eq(n, 0);
	free(page);
	users_update(t, 1, "V", NULL, 0, 0, NULL);
	free(users_list(t, 0, 0, &n, &total, &v2));
	ck_assert_uint_gt(v2, v1);	/* any change moves the list's version */
	users_free(t);
}
END_TEST

/* Many threads create, update and delete at once; afterwards every surviving user is
 * there exactly once, under its own id and email, and the counts add up. */
#define THREADS 8
#define PER_THREAD 3000

struct worker {
	struct users *t;
	int n;
	uint64_t ids[PER_THREAD];
	int deleted;
	int updated;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	char email[64], name[32];
	struct user u;

	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(email, sizeof(email), "w%d-%d@example.org", w->n, i);
		snprintf(name, sizeof(name), "W%d", i);
		ck_assert_int_eq(users_create(w->t, name, email, 0, &u), 0);
		w->ids[i] = u.id;
		if (i % 2 == 0) {
			ck_assert_int_eq(users_update(w->t, u.id, "renamed", NULL, 1, 0, NULL), 0);
			w->updated++;
		}
		if (i % 4 == 1) {
			ck_assert_int_eq(users_delete(w->t, u.id, 0), 0);
			w->ids[i] = 0;
			w->deleted++;
		}
	}
	return NULL;
}

START_TEST(test_concurrent_writers)
{
	struct users *t = users_new(THREADS * PER_THREAD);
	struct worker *w = calloc(THREADS, sizeof(*w));
	pthread_t th[THREADS];
	struct user *all;
	size_t total, n, expect = 0;
	uint64_t version;

	for (int k = 0; k < THREADS; k++) {
		w[k].t = t;
		w[k].n = k;
		pthread_create(&th[k], NULL, worker_run, &w[k]);
	}
	for (int k = 0; k < THREADS; k++) {
		pthread_join(th[k], NULL);
		expect += PER_THREAD - (size_t)w[k].deleted;
	}
	all = users_list(t, 0, THREADS * PER_THREAD, &n, &total, &version);
	ck_assert_uint_eq(n, expect);
	ck_assert_uint_eq(total, expect);
	for (size_t i = 1; i < n; i++)
		ck_assert_uint_lt(all[i - 1].id, all[i].id);	/* sorted, no duplicates */
	for (int k = 0; k < THREADS; k++) {
		for (int i = 0; i < PER_THREAD; i++) {
			char email[64];
			struct user u;

			if (w[k].ids[i] == 0)
				continue;
			snprintf(email, sizeof(email), "w%d-%d@example.org", k, i);
			ck_assert_int_eq(users_get(t, w[k].ids[i], &u), 0);
			ck_assert_str_eq(u.email, email);
			ck_assert_uint_eq(u.version, i % 2 == 0 ? 2 : 1);
			/* the email index agrees: creating it again conflicts */
			ck_assert_int_eq(users_create(t, "dup", email, 0, NULL), -EEXIST);
		}
	}
	free(all);
	free(w);
	users_free(t);
}
END_TEST

/* Threads race to create the same email: exactly one wins. */
struct racer {
	struct users *t;
	atomic_int *wins;
};

static void *racer_run(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < 500; i++) {
		char email[32];

		snprintf(email, sizeof(email), "race%d@example.org", i);
		if (users_create(r->t, "R", email, 0, NULL) == 0)
			atomic_fetch_add(&r->wins[i], 1);
	}
	return NULL;
}

START_TEST(test_concurrent_same_email)
{
	struct users *t = users_new(10000);
	atomic_int wins[500];
	struct racer r = { t, wins };
	pthread_t th[4];

	for (int i = 0; i < 500; i++)
		atomic_init(&wins[i], 0);
	for (int k = 0; k < 4; k++)
		pthread_create(&th[k], NULL, racer_run, &r);
	for (int k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(atomic_load(&wins[i]), 1);
	ck_assert_uint_eq(users_count(t), 500);
	users_free(t);
}
END_TEST

static Suite *users_suite(void)
{
	Suite *s = suite_create("users");
	TCase *tc = tcase_create("core");
	TCase *mt = tcase_create("threads");

	tcase_add_test(tc, test_create_get);
	tcase_add_test(tc, test_email_unique_any_case);
	tcase_add_test(tc, test_update_versions);
	tcase_add_test(tc, test_field_limits);
	tcase_add_test(tc, test_capacity);
	tcase_add_test(tc, test_list_pages);
	tcase_add_test(mt, test_concurrent_writers);
	tcase_add_test(mt, test_concurrent_same_email);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, mt);
	return s;
}

CHECK_MAIN(users_suite)

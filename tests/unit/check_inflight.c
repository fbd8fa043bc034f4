/* Unit tests for proxy/inflight.c: request coalescing (one fetch per key, late requests
 * join it) and hit-for-miss marks (keys whose responses may not be shared go straight to
 * the origin). Times are now_ms arguments: no test sleeps. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "inflight.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static void no_suspend(struct object_reader *r)
{
	(void)r;
}

static void no_wake(struct object_reader *r)
{
	(void)r;
}

struct maker {
	const char *key;
	unsigned max_readers;
	atomic_int calls;
	bool fail;
};

static struct object *make(void *arg)
{
	struct maker *m = arg;

	atomic_fetch_add(&m->calls, 1);
	if (m->fail)
		return NULL;
	return object_new(m->key, strlen(m->key), 1 << 20, 1 << 16, m->max_readers, NULL);
}

static void reader_init(struct object_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->suspend = no_suspend;
	r->wake = no_wake;
}

static unsigned refs(struct object *o)
{
	return atomic_load(&o->entry.refs);
}

static const char *const claim_names[] = { "OWNER", "JOINED", "PASS" };

/* ---- coalescing ------------------------------------------------------------------------------ */

START_TEST(test_claim_join_remove)
{
	struct inflight *t = inflight_new(10);
	struct maker mk = { "GET h /k", 8, 0, false }, mo = { "GET h /other", 8, 0, false };
	struct object_reader r[5];
	struct object *o1, *o2, *o3, *o;

	for (int i = 0; i < 5; i++)
		reader_init(&r[i]);
	ck_assert_ptr_nonnull(t);

	/* the first request for a key starts the fetch */
	ck_assert_int_eq(inflight_claim(t, mk.key, strlen(mk.key), &r[0], 0, NULL, make, &mk, &o1),
			 INFLIGHT_OWNER);
	ck_assert_int_eq(atomic_load(&mk.calls), 1);
	ck_assert_ptr_nonnull(o1);
	ck_assert_str_eq(o1->entry.key, mk.key);
	ck_assert(r[0].owner);
	ck_assert(r[0].attached);
	ck_assert_uint_eq(refs(o1), 2);		/* the table's and ours */
	ck_assert_uint_eq(o1->nreaders, 1);

	/* the second joins it: the same object, one more reference, no new fetch */
	ck_assert_int_eq(inflight_claim(t, mk.key, strlen(mk.key), &r[1], 5, NULL, make, &mk, &o),
			 INFLIGHT_JOINED);
	ck_assert_ptr_eq(o, o1);
	ck_assert_int_eq(atomic_load(&mk.calls), 1);
	ck_assert_uint_eq(refs(o1), 3);
	ck_assert(r[1].attached);
	ck_assert(!r[1].owner);
	ck_assert_uint_eq(r[1].joined_ms, 5);
	ck_assert_uint_eq(o1->nreaders, 2);

	/* another key is another fetch */
	ck_assert_int_eq(inflight_claim(t, mo.key, strlen(mo.key), &r[2], 0, NULL, make, &mo, &o2),
			 INFLIGHT_OWNER);
	ck_assert_ptr_ne(o2, o1);

	/* once removed, the key starts a new fetch; removing twice does nothing */
	inflight_remove(t, o1);
	ck_assert_uint_eq(refs(o1), 2);
	inflight_remove(t, o1);
	ck_assert_uint_eq(refs(o1), 2);
	ck_assert_int_eq(inflight_claim(t, mk.key, strlen(mk.key), &r[3], 9, NULL, make, &mk, &o3),
			 INFLIGHT_OWNER);
	ck_assert_ptr_ne(o3, o1);
	ck_assert_int_eq(atomic_load(&mk.calls), 2);
	ck_assert_int_eq(inflight_claim(t, mk.key, strlen(mk.key), &r[4], 9, NULL, make, &mk, &o),
			 INFLIGHT_JOINED);
	ck_assert_ptr_eq(o, o3);

	object_detach(o1, &r[0]);
	object_detach(o1, &r[1]);
	object_put(o1);
	object_put(o1);
	object_detach(o2, &r[2]);
	object_put(o2);
	object_detach(o3, &r[3]);
	object_detach(o3, &r[4]);
	object_put(o3);
	object_put(o3);
	inflight_free(t);	/* drops the table's references of o2 and o3 */
}
END_TEST

/* Keys differ by any byte, and by length. */
START_TEST(test_keys)
{
	static const char *const keys[] = { "GET a /", "GET a /x", "GET a /X", "GET b /",
					     "GET a", "" };
	struct inflight *t = inflight_new(10);
	struct object_reader r[ARRAY_LEN(keys)];
	struct object *o[ARRAY_LEN(keys)];

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		struct maker m = { keys[i], 4, 0, false };

		reader_init(&r[i]);
		ck_assert_int_eq(inflight_claim(t, keys[i], strlen(keys[i]), &r[i], 0, NULL, make, &m,
						&o[i]),
				 INFLIGHT_OWNER);
	}
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		object_detach(o[i], &r[i]);
		object_put(o[i]);
	}
	inflight_free(t);
}
END_TEST

START_TEST(test_make_fails)
{
	struct inflight *t = inflight_new(10);
	struct maker mk = { "k", 4, 0, true };
	struct object_reader r;
	struct object *o = (struct object *)&mk;

	reader_init(&r);
	ck_assert_int_eq(inflight_claim(t, "k", 1, &r, 0, NULL, make, &mk, &o), INFLIGHT_PASS);
	ck_assert_ptr_null(o);
	ck_assert(!r.attached);
	/* nothing was entered: the next claim owns a new fetch */
	mk.fail = false;
	ck_assert_int_eq(inflight_claim(t, "k", 1, &r, 0, NULL, make, &mk, &o), INFLIGHT_OWNER);
	ck_assert_int_eq(atomic_load(&mk.calls), 2);
	object_detach(o, &r);
	object_put(o);
	inflight_free(t);
}
END_TEST

/* A fetch that can take no more readers sends later requests off on their own. */
START_TEST(test_join_full)
{
	struct inflight *t = inflight_new(10);
	struct maker mk = { "k", 2, 0, false };
	struct object_reader r[3];
	struct object *o, *j, *p = NULL;

	for (int i = 0; i < 3; i++)
		reader_init(&r[i]);
	ck_assert_int_eq(inflight_claim(t, "k", 1, &r[0], 0, NULL, make, &mk, &o), INFLIGHT_OWNER);
	ck_assert_int_eq(inflight_claim(t, "k", 1, &r[1], 0, NULL, make, &mk, &j), INFLIGHT_JOINED);
	ck_assert_int_eq(inflight_claim(t, "k", 1, &r[2], 0, NULL, make, &mk, &p), INFLIGHT_PASS);
	ck_assert_ptr_null(p);
	ck_assert(!r[2].attached);
	ck_assert_uint_eq(refs(o), 3);
	ck_assert_int_eq(atomic_load(&mk.calls), 1);
	/* a failed fetch takes no joiner either */
	object_detach(o, &r[1]);
	object_put(j);
	object_finish(o, false, 502, "test");
	ck_assert_int_eq(inflight_claim(t, "k", 1, &r[2], 0, NULL, make, &mk, &p), INFLIGHT_PASS);
	ck_assert_uint_eq(refs(o), 2);
	object_detach(o, &r[0]);
	object_put(o);
	inflight_free(t);
}
END_TEST

/* Concurrent misses for one cold key: exactly one fetch, everyone else joins it. */
#define RACERS 8

struct racer {
	struct inflight *t;
	struct maker *mk;
	pthread_barrier_t *start;
	struct object_reader r;
	struct object *o;
	enum inflight_claim claim;
};

static void *racer_run(void *arg)
{
	struct racer *x = arg;

	pthread_barrier_wait(x->start);
	x->claim = inflight_claim(x->t, "k", 1, &x->r, 0, NULL, make, x->mk, &x->o);
	return NULL;
}

START_TEST(test_concurrent_claims)
{
	struct inflight *t = inflight_new(10);
	struct maker mk = { "k", RACERS, 0, false };
	struct racer x[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t start;
	int owners = 0, joined = 0;
	struct object *o = NULL;

	pthread_barrier_init(&start, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		x[i] = (struct racer){ t, &mk, &start, { 0 }, NULL, INFLIGHT_PASS };
		reader_init(&x[i].r);
		pthread_create(&th[i], NULL, racer_run, &x[i]);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < RACERS; i++) {
		owners += x[i].claim == INFLIGHT_OWNER;
		joined += x[i].claim == INFLIGHT_JOINED;
		if (o == NULL)
			o = x[i].o;
		ck_assert_ptr_eq(x[i].o, o);
	}
	ck_assert_int_eq(owners, 1);
	ck_assert_int_eq(joined, RACERS - 1);
	ck_assert_int_eq(atomic_load(&mk.calls), 1);
	ck_assert_uint_eq(refs(o), RACERS + 1);
	ck_assert_uint_eq(o->nreaders, RACERS);
	for (int i = 0; i < RACERS; i++) {
		object_detach(o, &x[i].r);
		object_put(o);
	}
	inflight_free(t);
	pthread_barrier_destroy(&start);
}
END_TEST

/* ---- hit-for-miss marks: scripts ------------------------------------------------------------- */

enum mark_op {
	CLAIM = 0,	/* at ms; want the result */
	MARK,		/* until ms */
	UNMARK,
	REMOVE,		/* the running fetch of key leaves the table */
};

struct mark_step {
	enum mark_op op;
	const char *key;
	uint64_t ms;
	enum inflight_claim want;
	const char *rule;
};

struct mark_script {
	const char *name;
	size_t max_markers;
	const struct mark_step *steps;
	size_t n;
};

static const struct mark_step marks[] = {
	{ MARK, "k", 1000, 0, "a response for k was not for sharing" },
	{ CLAIM, "k", 0, INFLIGHT_MARKED, "hit-for-miss: fetch alone, at once" },
	{ CLAIM, "k", 999, INFLIGHT_MARKED, "...until the mark's time" },
	{ CLAIM, "k", 1000, INFLIGHT_OWNER, "at that time the mark is gone: coalesce again" },
	{ CLAIM, "k", 1001, INFLIGHT_JOINED, "...and later requests join that fetch" },
	{ MARK, "m", 100, 0, "" },
	{ MARK, "m", 200, 0, "marking again moves the time" },
	{ CLAIM, "m", 150, INFLIGHT_MARKED, "" },
	{ CLAIM, "m", 200, INFLIGHT_OWNER, "" },
	{ MARK, "u", 5000, 0, "" },
	{ UNMARK, "u", 0, 0, "a cacheable response (or a purge) forgets the mark" },
	{ CLAIM, "u", 0, INFLIGHT_OWNER, "" },
	{ UNMARK, "never", 0, 0, "forgetting an unknown key does nothing" },
};

static const struct mark_step mark_behind_fetch[] = {
	{ CLAIM, "f", 0, INFLIGHT_OWNER, "" },
	{ MARK, "f", 1000, 0, "marked while a fetch of f runs" },
	{ CLAIM, "f", 10, INFLIGHT_MARKED,
	  "the mark wins: the latest response for f could not be shared" },
	{ REMOVE, "f", 0, 0, "" },
	{ CLAIM, "f", 20, INFLIGHT_MARKED, "then the mark" },
	{ CLAIM, "f", 1000, INFLIGHT_OWNER, "" },
};

static const struct mark_step mark_bound[] = {
	{ MARK, "a", 1000, 0, "" },
	{ MARK, "b", 1000, 0, "" },
	{ MARK, "c", 1000, 0, "STYLE habit 5: past max_markers, a mark is not kept" },
	{ CLAIM, "a", 0, INFLIGHT_MARKED, "" },
	{ CLAIM, "b", 0, INFLIGHT_MARKED, "" },
	{ CLAIM, "c", 0, INFLIGHT_OWNER, "c was not remembered" },
	{ MARK, "a", 2000, 0, "updating a kept mark needs no room" },
	{ CLAIM, "a", 1500, INFLIGHT_MARKED, "" },
	{ UNMARK, "a", 0, 0, "" },
	{ MARK, "d", 1000, 0, "room again" },
	{ CLAIM, "d", 0, INFLIGHT_MARKED, "" },
	{ CLAIM, "b", 1000, INFLIGHT_OWNER, "b's mark expired: dropped as its key is claimed" },
	{ MARK, "e", 3000, 0, "room again" },
	{ CLAIM, "e", 2000, INFLIGHT_MARKED, "" },
};

/* A key's response turns out unshareable once per older request that fetched alone: each
 * marks it again, while a newer fetch of the key may already run. */
static const struct mark_step mark_twice_behind_fetch[] = {
	{ CLAIM, "f", 0, INFLIGHT_OWNER, "" },
	{ MARK, "f", 100, 0, "" },
	{ MARK, "f", 200, 0, "the same key again: one mark, moved to 200" },
	{ MARK, "g", 200, 0, "a second key fits in two markers" },
	{ CLAIM, "g", 50, INFLIGHT_MARKED, "g was remembered" },
	{ REMOVE, "f", 0, 0, "" },
	{ CLAIM, "f", 150, INFLIGHT_MARKED, "f's mark holds until 200" },
};

#define MSCRIPT(n, max) { #n, max, n, ARRAY_LEN(n) }

static const struct mark_script mark_scripts[] = {
	MSCRIPT(marks, 100),
	MSCRIPT(mark_behind_fetch, 100),
	MSCRIPT(mark_bound, 2),
	MSCRIPT(mark_twice_behind_fetch, 2),
};

#define MAX_CLAIMS 32

START_TEST(test_marks)
{
	const struct mark_script *sc = &mark_scripts[_i];
	struct inflight *t = inflight_new(sc->max_markers);
	struct object_reader r[MAX_CLAIMS];
	struct object *held[MAX_CLAIMS];
	struct object *running[MAX_CLAIMS] = { 0 };	/* by step: the fetch a claim owns */
	int nclaims = 0;

	ck_assert_ptr_nonnull(t);
	for (size_t k = 0; k < sc->n; k++) {
		const struct mark_step *s = &sc->steps[k];
		struct maker mk = { s->key, 8, 0, false };

		switch (s->op) {
		case CLAIM: {
			struct object *o;
			enum inflight_claim got;

			ck_assert_int_lt(nclaims, MAX_CLAIMS);
			reader_init(&r[nclaims]);
			got = inflight_claim(t, s->key, strlen(s->key), &r[nclaims], s->ms, NULL, make,
					     &mk, &o);
			ck_assert_msg(got == s->want, "%s step %zu (%s): %s, want %s", sc->name, k,
				      s->rule, claim_names[got], claim_names[s->want]);
			ck_assert_int_eq(atomic_load(&mk.calls), got == INFLIGHT_OWNER);
			ck_assert(got == INFLIGHT_MARKED ? o == NULL : o != NULL);
			held[nclaims++] = o;
			if (got == INFLIGHT_OWNER)
				running[k] = o;
			break;
		}
		case MARK:
			inflight_mark_pass(t, s->key, strlen(s->key), 0, s->ms);
			break;
		case UNMARK:
			inflight_unmark(t, s->key, strlen(s->key));
			break;
		case REMOVE:
			for (size_t j = 0; j < k; j++)
				if (running[j] && strcmp(running[j]->entry.key, s->key) == 0) {
					inflight_remove(t, running[j]);
					running[j] = NULL;
				}
			break;
		}
	}
	for (int i = 0; i < nclaims; i++)
		if (held[i]) {
			object_detach(held[i], &r[i]);
			object_put(held[i]);
		}
	inflight_free(t);
}
END_TEST

static Suite *inflight_suite(void)
{
	Suite *s = suite_create("inflight");
	TCase *tc = tcase_create("core");
	TCase *mt = tcase_create("threads");

	tcase_add_test(tc, test_claim_join_remove);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_make_fails);
	tcase_add_test(tc, test_join_full);
	tcase_add_loop_test(tc, test_marks, 0, ARRAY_LEN(mark_scripts));
	tcase_add_test(mt, test_concurrent_claims);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, mt);
	return s;
}

CHECK_MAIN(inflight_suite)

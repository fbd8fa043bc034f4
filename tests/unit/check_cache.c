/* Unit tests for proxy/cache.c: the sharded, byte-bounded store, its accounting, its
 * eviction orders (SIEVE as the NSDI '24 paper states it, and LRU) and its reference
 * counts, alone and under concurrent threads. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "check_main.h"

/* ---- test entries ------------------------------------------------------------------------- */

#define MAX_IDS 200000

/* What the tests store: an entry embedded first, as struct object does. */
struct item {
	struct cache_entry entry;
	int id;
	char name[32];
};

/* Per-id counts of the callbacks; an entry must see each exactly once. */
static atomic_int destroyed[MAX_IDS];
static atomic_int unlinked[MAX_IDS];
static atomic_int next_id;

/* The names the callbacks saw, in order, for the scripted tests. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char unlinked_log[4096];
static char destroyed_log[4096];

static void log_name(char *log, const char *name)
{
	pthread_mutex_lock(&log_lock);
	if (strlen(log) + strlen(name) + 2 < 4096) {
		if (*log)
			strcat(log, " ");
		strcat(log, name);
	}
	pthread_mutex_unlock(&log_lock);
}

static void logs_clear(void)
{
	unlinked_log[0] = '\0';
	destroyed_log[0] = '\0';
}

static void item_destroy(struct cache_entry *e)
{
	struct item *it = (struct item *)e;

	atomic_fetch_add(&destroyed[it->id], 1);
	log_name(destroyed_log, it->name);
	/* poison: a use after the last reference then fails loudly even without ASan */
	memset(it, 0xa5, sizeof(*it));
	__asm__ __volatile__("" : : "r"(it) : "memory");	/* keep the dead store */
	free(it);
}

static void item_unlinked(struct cache_entry *e)
{
	struct item *it = (struct item *)e;

	atomic_fetch_add(&unlinked[it->id], 1);
	log_name(unlinked_log, it->name);
}

static struct item *item_new_cb(const char *key, size_t size, cache_unlinked_fn *cb)
{
	struct item *it = calloc(1, sizeof(*it));

	ck_assert_ptr_nonnull(it);
	ck_assert_int_eq(cache_entry_init(&it->entry, key, strlen(key), item_destroy, cb), 0);
	it->entry.size = size;
	it->id = atomic_fetch_add(&next_id, 1);
	ck_assert_int_lt(it->id, MAX_IDS);
	snprintf(it->name, sizeof(it->name), "%s", key);
	return it;
}

static struct item *item_new(const char *key, size_t size)
{
	return item_new_cb(key, size, item_unlinked);
}

/* Inserts a new entry and drops the caller's reference: the store holds the only one. */
static int put_new(struct cache *c, const char *key, size_t size)
{
	struct item *it = item_new(key, size);
	int r = cache_insert(c, &it->entry);

	cache_entry_put(&it->entry);
	return r;
}

/* Looks <key> up and drops the reference at once: a plain hit. Returns whether it hit. */
static bool hit(struct cache *c, const char *key)
{
	struct cache_entry *e = cache_lookup(c, key, strlen(key));

	if (e == NULL)
		return false;
	ck_assert_uint_eq(e->key_len, strlen(key));
	ck_assert_int_eq(memcmp(e->key, key, e->key_len), 0);
	cache_entry_put(e);
	return true;
}

static void assert_stats(struct cache *c, size_t bytes, size_t objects, const char *when)
{
	struct cache_stats st;

	cache_get_stats(c, &st);
	ck_assert_msg(st.bytes == bytes && st.objects == objects,
		      "%s: bytes %zu objects %zu, want %zu and %zu", when, st.bytes, st.objects,
		      bytes, objects);
}

/* Sorts the space-separated words of <s> in place, so that logs compare as sets. */
static void sort_words(char *s)
{
	char *w[256], buf[4096];
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok(buf, " "); tok && n < 256; tok = strtok(NULL, " "))
		w[n++] = tok;
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && strcmp(w[j - 1], w[j]) > 0; j--) {
			char *t = w[j];

			w[j] = w[j - 1];
			w[j - 1] = t;
		}
	s[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, w[i]);
	}
}

static const enum cache_policy policies[] = { CACHE_SIEVE, CACHE_LRU };

/* Every test starts with clean counts, forked or not. */
static void reset(void)
{
	for (int i = 0; i < MAX_IDS; i++) {
		atomic_store(&destroyed[i], 0);
		atomic_store(&unlinked[i], 0);
	}
	atomic_store(&next_id, 0);
	logs_clear();
}

/* ---- accounting ----------------------------------------------------------------------------- */

/* Bytes and objects after every step, for a store of 1000 bytes. The steps evict only
 * unvisited entries, so both policies must agree. */
static const struct step {
	char op;		/* 'i' insert, 'l' lookup, 'r' remove */
	const char *key;
	size_t size;
	int ret;		/* insert: its return; lookup, remove: 1 when found */
	size_t bytes, objects;
	uint64_t evictions;	/* so far */
	const char *unlinked;	/* keys that left the table in this step (a set) */
	const char *rule;
} accounting[] = {
	{ 'i', "a", 100, 0, 100, 1, 0, "", "an insert charges its size" },
	{ 'i', "b", 200, 0, 300, 2, 0, "", "sizes add up" },
	{ 'l', "a", 0, 1, 300, 2, 0, "", "a hit charges nothing" },
	{ 'l', "zz", 0, 0, 300, 2, 0, "", "a miss finds nothing" },
	{ 'i', "a", 150, 0, 350, 2, 0, "a", "a replacement uncharges the old entry" },
	{ 'r', "b", 0, 1, 150, 1, 0, "b", "remove uncharges" },
	{ 'r', "b", 0, 0, 150, 1, 0, "", "removing an absent key does nothing" },
	{ 'i', "c", 850, 0, 1000, 2, 0, "", "exactly full: nothing leaves" },
	{ 'i', "d", 1, 0, 851, 2, 1, "a", "one byte over: the oldest unvisited entry leaves" },
	{ 'i', "e", 1001, -E2BIG, 851, 2, 1, "", "larger than the store: refused, no eviction" },
	{ 'i', "f", 1000, 0, 1000, 1, 3, "c d", "as large as the store: all else leaves" },
	{ 'i', "f", 10, 0, 10, 1, 3, "f", "replacing the only entry" },
	{ 'i', "", 5, 0, 15, 2, 3, "", "the empty key is a key" },
	{ 'r', "f", 0, 1, 5, 1, 3, "f", "remove" },
	{ 'r', "", 0, 1, 0, 0, 3, "", "the store is empty again" },
};

START_TEST(test_accounting)
{
	struct cache *c = cache_new(1000, policies[_i]);
	uint64_t inserts = 0;

	ck_assert_ptr_nonnull(c);
	for (size_t k = 0; k < ARRAY_LEN(accounting); k++) {
		const struct step *s = &accounting[k];
		struct cache_stats st;
		char want[256];
		int r = 0;

		logs_clear();
		if (s->op == 'i') {
			r = put_new(c, s->key, s->size);
			inserts += r == 0;
		} else if (s->op == 'l') {
			r = hit(c, s->key);
		} else {
			r = cache_remove(c, s->key, strlen(s->key));
		}
		ck_assert_msg(r == s->ret, "step %zu (%s): returned %d, want %d", k, s->rule, r,
			      s->ret);
		cache_get_stats(c, &st);
		ck_assert_msg(st.bytes == s->bytes && st.objects == s->objects,
			      "step %zu (%s): bytes %zu objects %zu, want %zu and %zu", k, s->rule,
			      st.bytes, st.objects, s->bytes, s->objects);
		ck_assert_msg(st.evictions == s->evictions, "step %zu (%s): %llu evictions", k,
			      s->rule, (unsigned long long)st.evictions);
		ck_assert_uint_eq(st.inserts, inserts);
		ck_assert_uint_eq(st.capacity, 1000);
		/* the empty key's name logs as an empty word: compare sets of named keys */
		snprintf(want, sizeof(want), "%s", s->unlinked);
		sort_words(unlinked_log);
		ck_assert_msg(strcmp(unlinked_log, want) == 0,
			      "step %zu (%s): unlinked \"%s\", want \"%s\"", k, s->rule,
			      unlinked_log, want);
	}
	cache_free(c);
	for (int id = 0; id < atomic_load(&next_id); id++) {
		ck_assert_int_eq(atomic_load(&destroyed[id]), 1);
		ck_assert_int_le(atomic_load(&unlinked[id]), 1);
	}
}
END_TEST

START_TEST(test_lookup_stats)
{
	struct cache *c = cache_new(1000, policies[_i]);
	struct cache_stats st;

	put_new(c, "a", 1);
	ck_assert(hit(c, "a"));
	ck_assert(hit(c, "a"));
	ck_assert(!hit(c, "b"));
	ck_assert(!hit(c, "A"));	/* keys are compared byte for byte */
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.lookups, 4);
	ck_assert_uint_eq(st.hits, 2);
	ck_assert_uint_eq(st.inserts, 1);
	cache_free(c);
}
END_TEST

/* A key that hashes into the same bucket as another must still be told apart: many keys
 * in one store, every one found with its own entry. */
START_TEST(test_many_keys)
{
	struct cache *c = cache_new(1 << 20, policies[_i]);
	char key[32];

	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "GET example.org /%d", i);
		ck_assert_int_eq(put_new(c, key, 100), 0);
	}
	assert_stats(c, 500000, 5000, "5000 inserts");
	for (int i = 0; i < 5000; i++) {
		struct cache_entry *e;

		snprintf(key, sizeof(key), "GET example.org /%d", i);
		e = cache_lookup(c, key, strlen(key));
		ck_assert_ptr_nonnull(e);
		ck_assert_str_eq(((struct item *)e)->name, key);
		cache_entry_put(e);
	}
	for (int i = 0; i < 5000; i += 2) {
		snprintf(key, sizeof(key), "GET example.org /%d", i);
		ck_assert(cache_remove(c, key, strlen(key)));
	}
	assert_stats(c, 250000, 2500, "2500 removes");
	cache_free(c);
	for (int id = 0; id < 5000; id++)
		ck_assert_int_eq(atomic_load(&destroyed[id]), 1);
}
END_TEST

START_TEST(test_key_bounds)
{
	static char key[CACHE_MAX_KEY + 2];
	struct cache_entry e;

	memset(key, 'k', sizeof(key));
	ck_assert_int_eq(cache_entry_init(&e, key, CACHE_MAX_KEY, item_destroy, NULL), 0);
	ck_assert_uint_eq(e.key_len, CACHE_MAX_KEY);
	ck_assert_uint_eq(atomic_load(&e.refs), 1);
	cache_entry_fini(&e);
	ck_assert_int_eq(cache_entry_init(&e, key, CACHE_MAX_KEY + 1, item_destroy, NULL),
			 -ENAMETOOLONG);
	/* the hash is FNV-1a 64: the empty string hashes to the offset basis */
	ck_assert_uint_eq(cache_hash("", 0), 0xcbf29ce484222325ULL);
	ck_assert_uint_eq(cache_hash("a", 1), 0xaf63dc4c8601ec8cULL);
}
END_TEST

/* ---- replacement and references ---------------------------------------------------------- */

START_TEST(test_replace_keeps_old_alive)
{
	struct cache *c = cache_new(1000, policies[_i]);
	struct item *old = item_new("k", 100), *new = item_new("k", 300);
	struct cache_entry *e;

	ck_assert_int_eq(cache_insert(c, &old->entry), 0);
	ck_assert_uint_eq(atomic_load(&old->entry.refs), 2);	/* ours and the store's */
	logs_clear();
	ck_assert_int_eq(cache_insert(c, &new->entry), 0);
	/* the old entry left the table once, and lives on: we still hold it */
	ck_assert_int_eq(atomic_load(&unlinked[old->id]), 1);
	ck_assert_int_eq(atomic_load(&destroyed[old->id]), 0);
	ck_assert_uint_eq(atomic_load(&old->entry.refs), 1);
	ck_assert_str_eq(old->entry.key, "k");
	assert_stats(c, 300, 1, "after the replacement");
	e = cache_lookup(c, "k", 1);
	ck_assert_ptr_eq(e, &new->entry);
	cache_entry_put(e);
	/* our last reference runs the destructor, once */
	cache_entry_put(&old->entry);
	ck_assert_int_eq(atomic_load(&destroyed[0]), 1);
	ck_assert_str_eq(destroyed_log, "k");
	ck_assert_int_eq(atomic_load(&unlinked[0]), 1);
	cache_entry_put(&new->entry);
	ck_assert_int_eq(atomic_load(&destroyed[1]), 0);	/* the store holds it */
	cache_free(c);
	ck_assert_int_eq(atomic_load(&unlinked[1]), 1);
	ck_assert_int_eq(atomic_load(&destroyed[1]), 1);
}
END_TEST

START_TEST(test_too_big)
{
	struct cache *c = cache_new(100, policies[_i]);
	struct item *big = item_new("big", 101);
	int id;

	put_new(c, "small", 60);
	ck_assert_int_eq(cache_insert(c, &big->entry), -E2BIG);
	ck_assert_uint_eq(atomic_load(&big->entry.refs), 1);	/* still only ours */
	ck_assert_int_eq(atomic_load(&unlinked[big->id]), 0);
	assert_stats(c, 60, 1, "after a refused insert");
	ck_assert(hit(c, "small"));
	ck_assert(!hit(c, "big"));
	id = big->id;
	cache_entry_put(&big->entry);
	ck_assert_int_eq(atomic_load(&destroyed[id]), 1);
	cache_free(c);
}
END_TEST

/* DESIGN.md: "The entry lives until its last reader is done, even if it is evicted
 * meanwhile." A reference from cache_lookup() keeps an evicted entry whole. */
START_TEST(test_ref_outlives_eviction)
{
	struct cache *c = cache_new(200, policies[_i]);
	struct cache_entry *held;

	put_new(c, "a", 100);
	held = cache_lookup(c, "a", 1);
	ck_assert_ptr_nonnull(held);
	/* LRU evicts "a" at "c". SIEVE: "c" passes over "a" (visited), clearing it, and
	 * evicts "b"; removing "c" sends the hand back to the tail, so "e" evicts "a". */
	put_new(c, "b", 100);
	put_new(c, "c", 100);
	cache_remove(c, "c", 1);
	put_new(c, "d", 100);
	put_new(c, "e", 100);
	ck_assert_int_eq(atomic_load(&unlinked[0]), 1);
	ck_assert_int_eq(atomic_load(&destroyed[0]), 0);
	ck_assert(!hit(c, "a"));
	/* still whole: its key and size are readable */
	ck_assert_str_eq(held->key, "a");
	ck_assert_uint_eq(held->size, 100);
	ck_assert_str_eq(((struct item *)held)->name, "a");
	ck_assert_uint_eq(atomic_load(&held->refs), 1);
	cache_entry_put(held);
	ck_assert_int_eq(atomic_load(&destroyed[0]), 1);
	cache_free(c);
}
END_TEST

static bool starts_with_arg(const char *key, size_t len, void *arg)
{
	size_t n = strlen(arg);

	return len >= n && memcmp(key, arg, n) == 0;
}

/* cache_remove_matching() takes out exactly what the predicate accepts, with its bytes,
 * and each removed entry is unlinked once; a held one lives on. */
START_TEST(test_remove_matching)
{
	struct cache *c = cache_new(1 << 20, policies[_i]);
	struct cache_stats st;
	struct cache_entry *held;
	char key[32];

	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "%s/%d", i % 3 ? "keep" : "gone", i);
		ck_assert_int_eq(put_new(c, key, 10), 0);
	}
	held = cache_lookup(c, "gone/0", 6);
	ck_assert_ptr_nonnull(held);
	ck_assert_uint_eq(cache_remove_matching(c, starts_with_arg, (char *)"gone/"), 100);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.objects, 200);
	ck_assert_uint_eq(st.bytes, 2000);
	ck_assert(!hit(c, "gone/3"));
	ck_assert(hit(c, "keep/1"));
	ck_assert_int_eq(atomic_load(&unlinked[0]), 1);
	ck_assert_int_eq(atomic_load(&destroyed[0]), 0);
	ck_assert_str_eq(held->key, "gone/0");
	cache_entry_put(held);
	ck_assert_int_eq(atomic_load(&destroyed[0]), 1);
	ck_assert_uint_eq(cache_remove_matching(c, starts_with_arg, (char *)"gone/"), 0);
	/* the store still evicts in order after holes were cut in its queue */
	for (int i = 0; i < 200000 / 1000; i++) {
		snprintf(key, sizeof(key), "new/%d", i);
		put_new(c, key, 10000);
	}
	cache_get_stats(c, &st);
	ck_assert_uint_le(st.bytes, st.capacity);
	cache_free(c);
}
END_TEST

/* cache_free() lets go of the store's references only. */
START_TEST(test_free_with_readers)
{
	struct cache *c = cache_new(1000, policies[_i]);
	struct cache_entry *held;

	put_new(c, "a", 10);
	put_new(c, "b", 10);
	held = cache_lookup(c, "a", 1);
	cache_free(c);
	ck_assert_int_eq(atomic_load(&unlinked[0]), 1);
	ck_assert_int_eq(atomic_load(&unlinked[1]), 1);
	ck_assert_int_eq(atomic_load(&destroyed[0]), 0);
	ck_assert_int_eq(atomic_load(&destroyed[1]), 1);
	cache_entry_put(held);
	ck_assert_int_eq(atomic_load(&destroyed[0]), 1);
}
END_TEST

/* ---- eviction order --------------------------------------------------------------------------
 *
 * SIEVE, NSDI '24, Algorithm 1: on a miss in a full cache, the hand (or the tail when it
 * is NULL) walks towards the head; a visited object has its bit cleared and is passed,
 * wrapping from the head to the tail; the first unvisited one is evicted and the hand
 * stays at its newer neighbour (NULL when it was the head). Only then is the new object
 * inserted at the head, unvisited. LRU: a hit moves the object to the head; the tail goes.
 * Every entry is 100 bytes in a store of 400.
 */
static const struct order_step {
	char op;		/* 'i' insert, 'h' hit */
	const char *key;
	const char *sieve;	/* evicted by this step */
	const char *lru;
	const char *rule;
} order[] = {
	{ 'i', "A", "", "", "" },
	{ 'i', "B", "", "", "" },
	{ 'i', "C", "", "", "" },
	{ 'i', "D", "", "", "queue, newest first: D C B A" },
	{ 'h', "A", "", "", "SIEVE: A visited; LRU: A C... moves to the head" },
	{ 'h', "C", "", "", "SIEVE: C visited" },
	{ 'i', "E", "B", "B", "SIEVE: hand at A, visited, cleared; B evicted, hand at C" },
	{ 'i', "F", "D", "D", "SIEVE: C cleared, D evicted, hand at E" },
	{ 'i', "G", "E", "A", "SIEVE: E unvisited, evicted; LRU: A is the least recent" },
	{ 'h', "F", "", "", "SIEVE: F visited; LRU: F to the head" },
	{ 'i', "H", "G", "C", "SIEVE: F cleared, G is the head: evicted, the hand is NULL" },
	{ 'i', "I", "A", "E", "SIEVE: a NULL hand starts at the tail: A (cleared at E) goes" },
	{ 'i', "J", "C", "G", "SIEVE: hand at C (cleared at F), evicted; hand at F" },
	{ 'i', "K", "F", "F", "SIEVE: F (cleared at H) evicted" },
};

/* A scripted store where all older entries were hit: the hand clears them all, wraps to
 * the tail and evicts the oldest. The new entry is never a candidate - it is inserted
 * after the eviction. */
static const struct order_step all_visited[] = {
	{ 'i', "A", "", "", "" },
	{ 'i', "B", "", "", "" },
	{ 'i', "C", "", "", "" },
	{ 'i', "D", "", "", "" },
	{ 'h', "A", "", "", "" },
	{ 'h', "B", "", "", "" },
	{ 'h', "C", "", "", "" },
	{ 'h', "D", "", "", "" },
	{ 'i', "E", "A", "A", "all visited: cleared in one pass, then the tail A goes" },
	{ 'h', "E", "", "", "E is stored: a hit" },
	{ 'i', "F", "B", "B", "SIEVE: hand at B (cleared), evicted" },
};

static void run_order(const struct order_step *steps, size_t n, enum cache_policy policy)
{
	struct cache *c = cache_new(400, policy);

	for (size_t k = 0; k < n; k++) {
		const struct order_step *s = &steps[k];
		const char *want = policy == CACHE_SIEVE ? s->sieve : s->lru;

		logs_clear();
		if (s->op == 'i') {
			ck_assert_int_eq(put_new(c, s->key, 100), 0);
		} else {
			/* LRU may have evicted the key already: a miss is fine there */
			bool found = hit(c, s->key);

			ck_assert_msg(found || policy == CACHE_LRU, "step %zu: %s missed", k,
				      s->key);
		}
		ck_assert_msg(strcmp(unlinked_log, want) == 0,
			      "%s step %zu (%c %s): evicted \"%s\", want \"%s\" (%s)",
			      cache_policy_names[policy], k, s->op, s->key, unlinked_log, want,
			      s->rule);
	}
	cache_free(c);
}

START_TEST(test_order)
{
	run_order(order, ARRAY_LEN(order), policies[_i]);
}
END_TEST

START_TEST(test_order_all_visited)
{
	run_order(all_visited, ARRAY_LEN(all_visited), policies[_i]);
}
END_TEST

/* The same rules as a model, run against the store on a random sequence of inserts (of
 * various sizes), hits, replacements and removes. Removing the hand's entry moves the
 * hand to the newer neighbour, as eviction does. */
#define MODEL_KEYS 16
#define MODEL_CAP 100

struct model {
	enum cache_policy policy;
	int q[MODEL_KEYS];		/* keys, q[0] the head (newest) */
	size_t size[MODEL_KEYS];
	bool visited[MODEL_KEYS];
	int n;
	int hand;			/* a key, or -1 */
	size_t bytes;
};

static int model_pos(const struct model *m, int key)
{
	for (int i = 0; i < m->n; i++)
		if (m->q[i] == key)
			return i;
	return -1;
}

static void model_unlink(struct model *m, int pos, char *out)
{
	int key = m->q[pos];
	size_t len = strlen(out);

	if (m->hand == key)
		m->hand = pos > 0 ? m->q[pos - 1] : -1;
	m->bytes -= m->size[key];
	memmove(&m->q[pos], &m->q[pos + 1], (size_t)(m->n - pos - 1) * sizeof(m->q[0]));
	m->n--;
	out[len] = (char)('a' + key);
	out[len + 1] = '\0';
}

static void model_hit(struct model *m, int key)
{
	int pos = model_pos(m, key);

	if (pos < 0)
		return;
	if (m->policy == CACHE_SIEVE) {
		m->visited[key] = true;
	} else {
		memmove(&m->q[1], &m->q[0], (size_t)pos * sizeof(m->q[0]));
		m->q[0] = key;
	}
}

static void model_insert(struct model *m, int key, size_t size, char *out)
{
	int pos = model_pos(m, key);

	if (pos >= 0)
		model_unlink(m, pos, out);
	while (m->bytes + size > MODEL_CAP) {
		int v = m->n - 1;

		if (m->policy == CACHE_SIEVE) {
			v = m->hand >= 0 ? model_pos(m, m->hand) : m->n - 1;
			while (m->visited[m->q[v]]) {
				m->visited[m->q[v]] = false;
				v = v > 0 ? v - 1 : m->n - 1;
			}
			m->hand = m->q[v];
		}
		model_unlink(m, v, out);
	}
	memmove(&m->q[1], &m->q[0], (size_t)m->n * sizeof(m->q[0]));
	m->q[0] = key;
	m->n++;
	m->size[key] = size;
	m->visited[key] = false;
	m->bytes += size;
}

/* Spells the one-letter keys of <keys> as sorted words: "ca" -> "a c". */
static void words(const char *keys, char *out)
{
	out[0] = '\0';
	for (size_t i = 0; keys[i]; i++) {
		size_t l = strlen(out);

		if (l)
			out[l++] = ' ';
		out[l] = keys[i];
		out[l + 1] = '\0';
	}
	sort_words(out);
}

START_TEST(test_order_model)
{
	struct cache *c = cache_new(MODEL_CAP, policies[_i]);
	struct model m = { .policy = policies[_i], .hand = -1 };
	unsigned seed = 12345;

	for (int step = 0; step < 20000; step++) {
		int op = rand_r(&seed) % 10, key = rand_r(&seed) % MODEL_KEYS;
		char name[2] = { (char)('a' + key), '\0' };
		char want[MODEL_KEYS + 2] = "", w[2 * MODEL_KEYS + 2], got[256];

		logs_clear();
		if (op < 5) {
			bool found = model_pos(&m, key) >= 0;

			model_hit(&m, key);
			ck_assert_msg(hit(c, name) == found, "step %d: hit %s", step, name);
		} else if (op < 9) {
			size_t size = 10 * (size_t)(1 + rand_r(&seed) % 4);

			model_insert(&m, key, size, want);
			ck_assert_int_eq(put_new(c, name, size), 0);
		} else {
			int pos = model_pos(&m, key);

			if (pos >= 0)
				model_unlink(&m, pos, want);
			ck_assert(cache_remove(c, name, 1) == (pos >= 0));
		}
		/* compare the keys that left, as sets */
		words(want, w);
		snprintf(got, sizeof(got), "%s", unlinked_log);
		sort_words(got);
		ck_assert_msg(strcmp(got, w) == 0,
			      "%s step %d (op %d key %s): left \"%s\", the paper's algorithm "
			      "says \"%s\"",
			      cache_policy_names[policies[_i]], step, op, name, got, w);
		assert_stats(c, m.bytes, (size_t)m.n, "model");
	}
	cache_free(c);
}
END_TEST

/* ---- concurrency ---------------------------------------------------------------------------- */

/* An entry evicted by one thread's insert while another thread removes (or replaces) the
 * same key. The store's reference may be the victim's last one; the evicting thread must
 * not touch the victim after the other thread released it. The second thread runs while
 * the first is inside cache_insert() between its unlock and the release of its victims
 * (the replaced entry's unlinked callback, which runs with no lock held, is that moment). */
struct race {
	struct cache *c;
	pthread_mutex_t m;
	pthread_cond_t cv;
	int phase;		/* 0 idle, 1 remove asked, 2 done, 3 stop */
};

static struct race race;

static void race_unlinked(struct cache_entry *e)
{
	item_unlinked(e);
	pthread_mutex_lock(&race.m);
	race.phase = 1;
	pthread_cond_broadcast(&race.cv);
	while (race.phase == 1)
		pthread_cond_wait(&race.cv, &race.m);
	pthread_mutex_unlock(&race.m);
}

static void *race_remover(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&race.m);
	while (race.phase == 0)
		pthread_cond_wait(&race.cv, &race.m);
	if (race.phase == 1) {
		pthread_mutex_unlock(&race.m);
		cache_remove(race.c, "victim", 6);
		pthread_mutex_lock(&race.m);
		race.phase = 2;
		pthread_cond_broadcast(&race.cv);
	}
	pthread_mutex_unlock(&race.m);
	return NULL;
}

START_TEST(test_evict_races_remove)
{
	struct item *old, *new;
	pthread_t th;

	race.c = cache_new(200, policies[_i]);
	pthread_mutex_init(&race.m, NULL);
	pthread_cond_init(&race.cv, NULL);
	race.phase = 0;
	pthread_create(&th, NULL, race_remover, NULL);

	put_new(race.c, "victim", 100);	/* id 0: the oldest, unvisited */
	old = item_new_cb("k", 50, race_unlinked);	/* id 1 */
	ck_assert_int_eq(cache_insert(race.c, &old->entry), 0);
	cache_entry_put(&old->entry);
	/* replacing "k" with 150 bytes: 100 + 150 > 200, "victim" is evicted */
	new = item_new("k", 150);	/* id 2 */
	ck_assert_int_eq(cache_insert(race.c, &new->entry), 0);
	cache_entry_put(&new->entry);

	pthread_mutex_lock(&race.m);
	if (race.phase == 0)
		race.phase = 3;
	pthread_cond_broadcast(&race.cv);
	pthread_mutex_unlock(&race.m);
	pthread_join(th, NULL);

	ck_assert_int_eq(atomic_load(&unlinked[0]), 1);
	ck_assert_int_eq(atomic_load(&destroyed[0]), 1);
	ck_assert_int_eq(atomic_load(&unlinked[1]), 1);
	ck_assert_int_eq(atomic_load(&destroyed[1]), 1);
	assert_stats(race.c, 150, 1, "after the race");
	cache_free(race.c);
	ck_assert_int_eq(atomic_load(&destroyed[2]), 1);
}
END_TEST

#define STRESS_THREADS 4
#define STRESS_KEYS 64
#define STRESS_CAP 2000

struct stresser {
	struct cache *c;
	unsigned seed;
	int iterations;
	uint64_t lookups;
};

static void *stress_run(void *arg)
{
	struct stresser *st = arg;
	struct cache_entry *held = NULL;

	for (int i = 0; i < st->iterations; i++) {
		int op = rand_r(&st->seed) % 10;
		char key[16];

		snprintf(key, sizeof(key), "k%d", rand_r(&st->seed) % STRESS_KEYS);
		if (op < 5) {
			struct cache_entry *e = cache_lookup(st->c, key, strlen(key));

			st->lookups++;
			if (e == NULL)
				continue;
			ck_assert_str_eq(e->key, key);
			ck_assert_str_eq(((struct item *)e)->name, key);
			/* sometimes keep it a while: it must outlive whatever happens to it */
			if (held == NULL && op == 0) {
				held = e;
				continue;
			}
			cache_entry_put(e);
		} else if (op < 9) {
			ck_assert_int_eq(put_new(st->c, key, 1 + (size_t)(rand_r(&st->seed) % 100)),
					 0);
		} else {
			cache_remove(st->c, key, strlen(key));
		}
		if (held && op == 9) {
			ck_assert_str_eq(((struct item *)held)->name, held->key);
			cache_entry_put(held);
			held = NULL;
		}
	}
	if (held)
		cache_entry_put(held);
	return NULL;
}

START_TEST(test_stress)
{
	struct cache *c = cache_new(STRESS_CAP, policies[_i]);
	struct stresser st[STRESS_THREADS];
	pthread_t th[STRESS_THREADS];
	struct cache_stats stats;
	size_t bytes = 0, objects = 0;
	uint64_t lookups = 0;
	int ids;

	for (int k = 0; k < STRESS_THREADS; k++) {
		st[k] = (struct stresser){ c, 1000u + (unsigned)k, 30000, 0 };
		pthread_create(&th[k], NULL, stress_run, &st[k]);
	}
	for (int k = 0; k < STRESS_THREADS; k++) {
		pthread_join(th[k], NULL);
		lookups += st[k].lookups;
	}
	for (int k = 0; k < STRESS_KEYS; k++) {
		char key[16];
		struct cache_entry *e;

		snprintf(key, sizeof(key), "k%d", k);
		e = cache_lookup(c, key, strlen(key));
		lookups++;
		if (e) {
			bytes += e->size;
			objects++;
			cache_entry_put(e);
		}
	}
	cache_get_stats(c, &stats);
	ck_assert_uint_eq(stats.bytes, bytes);
	ck_assert_uint_eq(stats.objects, objects);
	ck_assert_uint_le(stats.bytes, STRESS_CAP);
	ck_assert_uint_eq(stats.lookups, lookups);
	ids = atomic_load(&next_id);
	ck_assert_uint_eq(stats.inserts, (uint64_t)ids);
	ck_assert_uint_gt(stats.evictions, 0);
	cache_free(c);
	for (int id = 0; id < ids; id++) {
		ck_assert_msg(atomic_load(&destroyed[id]) == 1, "entry %d destroyed %d times", id,
			      atomic_load(&destroyed[id]));
		ck_assert_msg(atomic_load(&unlinked[id]) == 1, "entry %d unlinked %d times", id,
			      atomic_load(&unlinked[id]));
	}
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("core");
	TCase *ev = tcase_create("eviction");
	TCase *mt = tcase_create("threads");
	int np = (int)ARRAY_LEN(policies);

	tcase_add_checked_fixture(tc, reset, NULL);
	tcase_add_checked_fixture(ev, reset, NULL);
	tcase_add_checked_fixture(mt, reset, NULL);

	tcase_add_loop_test(tc, test_accounting, 0, np);
	tcase_add_loop_test(tc, test_lookup_stats, 0, np);
	tcase_add_loop_test(tc, test_many_keys, 0, np);
	tcase_add_test(tc, test_key_bounds);
	tcase_add_loop_test(tc, test_replace_keeps_old_alive, 0, np);
	tcase_add_loop_test(tc, test_too_big, 0, np);
	tcase_add_loop_test(tc, test_ref_outlives_eviction, 0, np);
	tcase_add_loop_test(tc, test_free_with_readers, 0, np);
	tcase_add_loop_test(tc, test_remove_matching, 0, np);
	tcase_add_loop_test(ev, test_order, 0, np);
	tcase_add_loop_test(ev, test_order_all_visited, 0, np);
	tcase_add_loop_test(ev, test_order_model, 0, np);
	tcase_add_loop_test(mt, test_evict_races_remove, 0, np);
	tcase_add_loop_test(mt, test_stress, 0, np);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, ev);
	suite_add_tcase(s, mt);
	return s;
}

CHECK_MAIN(cache_suite)

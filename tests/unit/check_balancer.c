/* Unit tests for proxy/balancer.c, as tables: backend specs, each policy's distribution
 * (weights honoured over many picks), consistent-hash stability (when a backend leaves only
 * its share of keys move, and they come back with it), the skip list of a retry, the
 * rise/fall health state machine (active and passive) and slow start. Times are now_ms
 * arguments: no test sleeps. */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "check_main.h"

#define RISE 2
#define FALL 3
#define SLOW_START_MS 10000
/* Far from 0: no backend is in slow start merely because the pool was just created. */
#define T0 ((uint64_t)1000000000)

#define PICKS 60000		/* a multiple of every total weight below */
#define KEYS 100000

/* ---- helpers --------------------------------------------------------------------------------- */

static char pool_names[BALANCER_MAX_BACKENDS + 1][BALANCER_MAX_NAME];

/* A pool of <n> backends 127.0.0.1:3001.. with <weights>, rise 2, fall 3. */
static struct balancer *pool(enum balance_policy policy, const unsigned *weights, size_t n,
			     uint64_t slow_start_ms, uint64_t seed)
{
	const char *names[BALANCER_MAX_BACKENDS + 1];
	struct balancer_config cfg = {
		.policy = policy,
		.rise = RISE,
		.fall = FALL,
		.slow_start_ms = slow_start_ms,
		.seed = seed,
	};
	struct balancer *b;

	ck_assert_uint_le(n, BALANCER_MAX_BACKENDS + 1);
	for (size_t i = 0; i < n; i++) {
		snprintf(pool_names[i], sizeof(pool_names[i]), "127.0.0.1:%zu", 3001 + i);
		names[i] = pool_names[i];
	}
	b = balancer_new(&cfg, names, weights, n);
	if (n >= 1 && n <= BALANCER_MAX_BACKENDS)
		ck_assert_ptr_nonnull(b);
	return b;
}

/* The index of <be> in the pool, -1 for NULL. */
static int index_of(struct balancer *b, const struct backend *be)
{
	if (!be)
		return -1;
	for (size_t i = 0; i < balancer_count(b); i++)
		if (balancer_backend(b, i) == be)
			return (int)i;
	ck_abort_msg("balancer_pick() returned a backend that is not in the pool");
	return -1;
}

/* The cache key of object <i>, as the proxy builds them. */
static size_t key_of(char *buf, size_t len, unsigned i)
{
	return (size_t)snprintf(buf, len, "GET www.example.com /objects/%u?v=%u", i, i * 7919u);
}

/* Picks for object <i>'s key; returns the backend's index or -1. */
static int pick(struct balancer *b, unsigned i, uint64_t now_ms, struct backend *const *skip,
		size_t nskip)
{
	char key[128];
	size_t len = key_of(key, sizeof(key), i);

	return index_of(b, balancer_pick(b, key, len, now_ms, skip, nskip));
}

enum how {
	ACTIVE = 0,		/* failing health checks */
	PASSIVE,		/* failing fetches on live traffic */
};

/* Takes backend <i> down with <fall> failures of one kind, and checks it went down on the
 * last one exactly, with one change reported. */
static void take_down(struct balancer *b, size_t i, enum how how, uint64_t now_ms)
{
	struct backend *be = balancer_backend(b, i);

	for (unsigned k = 1; k <= FALL; k++) {
		struct balancer_change change;
		bool changed = how == ACTIVE ?
			balancer_check_result(b, be, false, now_ms, &change) :
			balancer_traffic_result(b, be, false, now_ms, &change);

		ck_assert_msg(changed == (k == FALL), "backend %zu: failure %u of fall=%u: %s", i,
			      k, FALL, changed ? "changed" : "no change");
		ck_assert(atomic_load(&be->up) == (k < FALL));
		if (changed) {
			ck_assert_ptr_eq(change.backend, be);
			ck_assert(!change.up);
		}
	}
}

/* Brings backend <i> back up with <rise> passing checks, the last at <now_ms>. */
static void bring_up(struct balancer *b, size_t i, uint64_t now_ms)
{
	struct backend *be = balancer_backend(b, i);

	for (unsigned k = 1; k <= RISE; k++) {
		struct balancer_change change;
		bool changed = balancer_check_result(b, be, true, now_ms - (RISE - k) * 1000,
						     &change);

		ck_assert_msg(changed == (k == RISE), "backend %zu: success %u of rise=%u: %s", i,
			      k, RISE, changed ? "changed" : "no change");
		ck_assert(atomic_load(&be->up) == (k == RISE));
		if (changed) {
			ck_assert_ptr_eq(change.backend, be);
			ck_assert(change.up);
		}
	}
}

/* ---- names, pool ----------------------------------------------------------------------------- */

START_TEST(test_policy_names)
{
	/* issue 5: the --balance choices */
	ck_assert_str_eq(balance_policy_names[BALANCE_ROUND_ROBIN], "round-robin");
	ck_assert_str_eq(balance_policy_names[BALANCE_LEAST_CONN], "least-conn");
	ck_assert_str_eq(balance_policy_names[BALANCE_HASH], "hash");
	ck_assert_str_eq(balance_policy_names[BALANCE_RANDOM_TWO], "random-two");
	ck_assert_ptr_null(balance_policy_names[BALANCE_RANDOM_TWO + 1]);
}
END_TEST

START_TEST(test_new_limits)
{
	unsigned weights[BALANCER_MAX_BACKENDS + 1];
	struct balancer *b;

	for (size_t i = 0; i < ARRAY_LEN(weights); i++)
		weights[i] = 1 + (unsigned)i % BALANCER_MAX_WEIGHT;

	/* balancer.h: NULL when n is 0 or above BALANCER_MAX_BACKENDS */
	ck_assert_ptr_null(pool(BALANCE_ROUND_ROBIN, weights, 0, 0, 1));
	ck_assert_ptr_null(pool(BALANCE_ROUND_ROBIN, weights, BALANCER_MAX_BACKENDS + 1, 0, 1));

	/* ...and at the maximum, all up, names and weights as given */
	b = pool(BALANCE_ROUND_ROBIN, weights, BALANCER_MAX_BACKENDS, 0, 1);
	ck_assert_uint_eq(balancer_count(b), BALANCER_MAX_BACKENDS);
	for (size_t i = 0; i < BALANCER_MAX_BACKENDS; i++) {
		struct backend *be = balancer_backend(b, i);

		ck_assert_str_eq(be->name, pool_names[i]);
		ck_assert_uint_eq(be->weight, weights[i]);
		ck_assert(atomic_load(&be->up));
		ck_assert_int_ge(be->health, RISE);
		ck_assert_int_le(be->health, RISE + FALL - 1);
		ck_assert_uint_eq(atomic_load(&be->in_flight), 0);
	}
	balancer_free(b);
}
END_TEST

/* ---- balancer_parse_spec() ------------------------------------------------------------------- */

static const struct {
	const char *spec;
	int ret;
	const char *name;
	unsigned weight;
	const char *rule;
} specs[] = {
	{ "127.0.0.1:3001", 0, "127.0.0.1:3001", 1, "HOST:PORT: weight 1 when not given" },
	{ "h:80,weight=5", 0, "h:80", 5, "HOST:PORT,weight=N" },
	{ "[::1]:8080", 0, "[::1]:8080", 1, "IPv6 in brackets, the name kept as written" },
	{ "[2001:db8::1]:80,weight=2", 0, "[2001:db8::1]:80", 2, "IPv6 with a weight" },
	{ "origin.example.com:65535", 0, "origin.example.com:65535", 1, "the highest port" },
	{ "h:1", 0, "h:1", 1, "the lowest port" },
	{ "h:80,weight=1", 0, "h:80", 1, "the lowest weight" },
	{ "h:80,weight=1000", 0, "h:80", BALANCER_MAX_WEIGHT, "weight BALANCER_MAX_WEIGHT" },

	{ "h", -EINVAL, NULL, 0, "no port" },
	{ "h:", -EINVAL, NULL, 0, "an empty port" },
	{ "h:0", -EINVAL, NULL, 0, "port 0" },
	{ "h:65536", -EINVAL, NULL, 0, "port above 65535" },
	{ "h:abc", -EINVAL, NULL, 0, "a port that is not a number" },
	{ "h:80x", -EINVAL, NULL, 0, "garbage after the port" },
	{ "h:-80", -EINVAL, NULL, 0, "a negative port" },
	{ "h:+80", -EINVAL, NULL, 0, "a port is digits only: the name goes into URLs as is" },
	{ "h:99999999999999999999", -EINVAL, NULL, 0, "a port that overflows" },
	{ ":80", -EINVAL, NULL, 0, "an empty host" },
	{ "[]:80", -EINVAL, NULL, 0, "an empty host in brackets" },
	{ "", -EINVAL, NULL, 0, "an empty spec" },
	{ "[::1]", -EINVAL, NULL, 0, "IPv6 without a port" },
	{ "[::1:8080", -EINVAL, NULL, 0, "an unclosed bracket" },
	{ "::1:8080", -EINVAL, NULL, 0, "IPv6 without brackets: ambiguous, and no URL holds it" },
	{ "h:80,weight=0", -EINVAL, NULL, 0, "weight 0" },
	{ "h:80,weight=1001", -EINVAL, NULL, 0, "weight above BALANCER_MAX_WEIGHT" },
	{ "h:80,weight=", -EINVAL, NULL, 0, "an empty weight" },
	{ "h:80,weight=abc", -EINVAL, NULL, 0, "a weight that is not a number" },
	{ "h:80,weight=-1", -EINVAL, NULL, 0, "a negative weight" },
	{ "h:80,weight=5x", -EINVAL, NULL, 0, "garbage after the weight" },
	{ "h:80,weight=99999999999999999999", -EINVAL, NULL, 0, "a weight that overflows" },
	{ "h:80,foo=1", -EINVAL, NULL, 0, "an unknown parameter" },
	{ "h:80,", -EINVAL, NULL, 0, "a trailing comma" },
	{ "h:80,weight=5,", -EINVAL, NULL, 0, "a trailing comma after the weight" },
};

START_TEST(test_parse_spec)
{
	char name[BALANCER_MAX_NAME], err[256];
	unsigned weight = 777;
	int ret;

	err[0] = '\0';
	ret = balancer_parse_spec(specs[_i].spec, name, sizeof(name), &weight, err, sizeof(err));
	ck_assert_msg(ret == specs[_i].ret, "%s: \"%s\" returned %d, want %d", specs[_i].rule,
		      specs[_i].spec, ret, specs[_i].ret);
	if (ret == 0) {
		ck_assert_msg(strcmp(name, specs[_i].name) == 0, "%s: name \"%s\", want \"%s\"",
			      specs[_i].rule, name, specs[_i].name);
		ck_assert_msg(weight == specs[_i].weight, "%s: weight %u, want %u",
			      specs[_i].rule, weight, specs[_i].weight);
	} else {
		ck_assert_msg(err[0] != '\0', "%s: \"%s\" rejected without a reason",
			      specs[_i].rule, specs[_i].spec);
	}
}
END_TEST

START_TEST(test_parse_spec_length)
{
	char host[400], spec[512], name[BALANCER_MAX_NAME], err[256];
	unsigned weight;

	/* RFC 1035 §2.3.4: a 253-character DNS name (labels of 63) fits whole */
	snprintf(host, sizeof(host), "%.63s.%.63s.%.63s.%.61s",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		 "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
		 "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
	ck_assert_uint_eq(strlen(host), 253);
	snprintf(spec, sizeof(spec), "%s:65535,weight=3", host);
	ck_assert_int_eq(balancer_parse_spec(spec, name, sizeof(name), &weight, err, sizeof(err)),
			 0);
	ck_assert_uint_eq(strlen(name), 253 + strlen(":65535"));
	ck_assert_int_eq(strncmp(name, host, 253), 0);
	ck_assert_uint_eq(weight, 3);

	/* balancer.h: the name is at most BALANCER_MAX_NAME bytes with the NUL */
	memset(host, 'a', 300);
	host[300] = '\0';
	snprintf(spec, sizeof(spec), "%s:80", host);
	err[0] = '\0';
	ck_assert_int_eq(balancer_parse_spec(spec, name, sizeof(name), &weight, err, sizeof(err)),
			 -EINVAL);
	ck_assert(err[0] != '\0');
}
END_TEST

/* ---- smooth weighted round-robin: the order -------------------------------------------------- */

static const struct {
	unsigned weights[4];
	size_t n;
	const char *cycle;		/* one period, backend 0 as 'a' */
	const char *rule;
} rr_orders[] = {
	{ { 5, 1, 1 }, 3, "aabacaa",
	  "nginx's smooth WRR: the heavy backend's picks are spread, b and c apart" },
	{ { 2, 1 }, 2, "aba", "nginx's smooth WRR: 2:1 interleaved" },
	{ { 1, 2, 3 }, 3, "cbacbc", "nginx's smooth WRR: 1:2:3, ties to the first" },
	{ { 1, 1, 1 }, 3, "abc", "equal weights: plain round-robin in pool order" },
};

START_TEST(test_rr_order)
{
	struct balancer *b = pool(BALANCE_ROUND_ROBIN, rr_orders[_i].weights, rr_orders[_i].n, 0,
				  1);
	size_t period = strlen(rr_orders[_i].cycle);
	char got[64] = "";

	/* three periods: the state after each period is where it started */
	for (size_t k = 0; k < 3 * period; k++)
		got[k] = (char)('a' + pick(b, (unsigned)k, T0, NULL, 0));
	for (size_t k = 0; k < 3 * period; k++)
		ck_assert_msg(got[k] == rr_orders[_i].cycle[k % period],
			      "%s: sequence \"%s\", want \"%s\" repeated", rr_orders[_i].rule, got,
			      rr_orders[_i].cycle);
	balancer_free(b);
}
END_TEST

/* ---- each policy's distribution -------------------------------------------------------------- */

enum load {
	IDLE = 0,		/* nothing is counted in flight */
	FIFO,			/* picks counted in in_flight, released oldest first */
};

#define CONCURRENCY 60

static const struct {
	enum balance_policy policy;
	unsigned weights[4];
	size_t n;
	enum load load;
	unsigned tolerance_pct;		/* each count within this % of its share; 0: exact */
	const char *rule;
} dists[] = {
	{ BALANCE_ROUND_ROBIN, { 1, 2, 3 }, 3, IDLE, 0,
	  "smooth WRR: exactly proportional over every multiple of the total weight" },
	{ BALANCE_ROUND_ROBIN, { 1, 1, 1, 1 }, 4, IDLE, 0, "equal weights: exactly even" },
	{ BALANCE_ROUND_ROBIN, { 7, 1000, 1 }, 3, IDLE, 0, "extreme weights: still exact" },
	{ BALANCE_LEAST_CONN, { 1, 2, 3 }, 3, FIFO, 5,
	  "least-conn: fewest in flight for the weight, so picks follow weights" },
	{ BALANCE_LEAST_CONN, { 1, 1, 1, 1 }, 4, FIFO, 5, "least-conn: equal weights, even" },
	{ BALANCE_RANDOM_TWO, { 1, 1, 1, 1 }, 4, IDLE, 10,
	  "random-two: equal in flight, a random pair, an even spread" },
	{ BALANCE_RANDOM_TWO, { 1, 1, 1, 1 }, 4, FIFO, 10, "random-two: under load, even" },
	{ BALANCE_RANDOM_TWO, { 1, 2, 3 }, 3, FIFO, 20,
	  "issue 5: weights honoured by every policy (random-two under load)" },
	{ BALANCE_HASH, { 1, 1, 1 }, 3, IDLE, 15, "hash: distinct keys spread evenly" },
	{ BALANCE_HASH, { 1, 1, 1, 1 }, 4, IDLE, 15, "hash: distinct keys spread evenly" },
	{ BALANCE_HASH, { 1, 2, 3 }, 3, IDLE, 20, "hash: weights honoured roughly" },
};

START_TEST(test_distribution)
{
	const unsigned *w = dists[_i].weights;
	size_t n = dists[_i].n;
	unsigned total = 0, picks = dists[_i].policy == BALANCE_HASH ? KEYS : PICKS;
	unsigned long count[4] = { 0 };
	struct backend *running[CONCURRENCY] = { NULL };
	struct balancer *b = pool(dists[_i].policy, w, n, 0, 42);

	for (size_t i = 0; i < n; i++)
		total += w[i];
	if (dists[_i].tolerance_pct == 0)
		picks = picks / total * total;	/* exact only over whole periods */
	for (unsigned k = 0; k < picks; k++) {
		int i = pick(b, k, T0 + k, NULL, 0);
		struct backend *be;

		ck_assert_msg(i >= 0, "%s: no backend at pick %u", dists[_i].rule, k);
		count[i]++;
		be = balancer_backend(b, (size_t)i);
		if (dists[_i].load == FIFO) {
			struct backend **slot = &running[k % CONCURRENCY];

			if (*slot)
				atomic_fetch_sub(&(*slot)->in_flight, 1);
			atomic_fetch_add(&be->in_flight, 1);
			*slot = be;
		}
		if (dists[_i].tolerance_pct == 0 && (k + 1) % total == 0)
			for (size_t j = 0; j < n; j++)
				ck_assert_msg(count[j] == (unsigned long)w[j] * ((k + 1) / total),
					      "%s: after %u picks backend %zu has %lu, want %lu",
					      dists[_i].rule, k + 1, j, count[j],
					      (unsigned long)w[j] * ((k + 1) / total));
	}
	for (size_t j = 0; j < n; j++) {
		double want = (double)picks * w[j] / total;
		double off = (count[j] - want) / want * 100.0;

		ck_assert_msg(off <= dists[_i].tolerance_pct && -off <= dists[_i].tolerance_pct,
			      "%s: backend %zu (weight %u) got %lu of %u picks, want %.0f +- %u %%",
			      dists[_i].rule, j, w[j], count[j], picks, want,
			      dists[_i].tolerance_pct);
	}
	balancer_free(b);
}
END_TEST

/* ---- least-conn and random-two: who is busy -------------------------------------------------- */

static const struct {
	unsigned weights[3];
	unsigned in_flight[3];
	size_t n;
	int expect;
	const char *rule;
} busy[] = {
	{ { 1, 1, 1 }, { 3, 1, 2 }, 3, 1, "least-conn: the fewest in flight" },
	{ { 1, 1, 1 }, { 0, 5, 5 }, 3, 0, "least-conn: an idle backend first" },
	{ { 1, 3 }, { 1, 2 }, 2, 1, "least-conn: a heavier backend takes more in flight" },
	{ { 1, 3 }, { 1, 6 }, 2, 0, "least-conn: ...but only in proportion to its weight" },
	{ { 2, 1 }, { 4, 1 }, 2, 1, "least-conn: in flight for the weight, 4/2 > 1/1" },
};

START_TEST(test_least_conn_busy)
{
	struct balancer *b = pool(BALANCE_LEAST_CONN, busy[_i].weights, busy[_i].n, 0, 1);

	for (size_t i = 0; i < busy[_i].n; i++)
		atomic_store(&balancer_backend(b, i)->in_flight, busy[_i].in_flight[i]);
	for (unsigned k = 0; k < 10; k++) {
		int got = pick(b, k, T0, NULL, 0);

		ck_assert_msg(got == busy[_i].expect, "%s: picked %d, want %d", busy[_i].rule, got,
			      busy[_i].expect);
	}
	balancer_free(b);
}
END_TEST

START_TEST(test_random_two_busy)
{
	static const unsigned w[3] = { 1, 1, 1 };
	struct balancer *b = pool(BALANCE_RANDOM_TWO, w, 3, 0, 7);
	unsigned long count[3] = { 0 };

	/* power of two choices: in any pair with the busy one, the other wins */
	atomic_store(&balancer_backend(b, 1)->in_flight, 100);
	for (unsigned k = 0; k < 3000; k++) {
		int i = pick(b, k, T0, NULL, 0);

		ck_assert_int_ge(i, 0);
		count[i]++;
	}
	ck_assert_msg(count[1] == 0, "random-two: the busy backend got %lu of 3000", count[1]);
	ck_assert_uint_gt(count[0], 1000);
	ck_assert_uint_gt(count[2], 1000);
	balancer_free(b);
}
END_TEST

START_TEST(test_random_two_seed)
{
	static const unsigned w[4] = { 1, 1, 1, 1 };
	struct balancer *b1 = pool(BALANCE_RANDOM_TWO, w, 4, 0, 12345);
	struct balancer *b2 = pool(BALANCE_RANDOM_TWO, w, 4, 0, 12345);
	struct balancer *b3 = pool(BALANCE_RANDOM_TWO, w, 4, 0, 54321);
	unsigned same_seed_differs = 0, other_seed_differs = 0;

	/* balancer_config.seed: the generator is the seed's, nothing else's */
	for (unsigned k = 0; k < 1000; k++) {
		int i1 = pick(b1, k, T0, NULL, 0), i2 = pick(b2, k, T0, NULL, 0);
		int i3 = pick(b3, k, T0, NULL, 0);

		same_seed_differs += i1 != i2;
		other_seed_differs += i1 != i3;
	}
	ck_assert_uint_eq(same_seed_differs, 0);
	ck_assert_uint_gt(other_seed_differs, 100);
	balancer_free(b1);
	balancer_free(b2);
	balancer_free(b3);
}
END_TEST

/* ---- hash: stickiness and stability ---------------------------------------------------------- */

START_TEST(test_hash_sticky)
{
	static const unsigned w[3] = { 1, 1, 1 };
	struct balancer *b1 = pool(BALANCE_HASH, w, 3, 0, 1);
	struct balancer *b2 = pool(BALANCE_HASH, w, 3, 0, 1);
	int first[1000];
	char buf[64];
	int i;

	/* issue 5: one URL always goes to the same healthy backend, whatever comes between */
	for (unsigned k = 0; k < 1000; k++)
		first[k] = pick(b1, k, T0, NULL, 0);
	for (unsigned round = 0; round < 3; round++)
		for (unsigned k = 0; k < 1000; k++) {
			unsigned j = round % 2 ? 999 - k : k;

			ck_assert_int_eq(pick(b1, j, T0 + round, NULL, 0), first[j]);
			ck_assert_int_eq(pick(b2, j, T0, NULL, 0), first[j]);
		}

	/* the key is <key_len> bytes, not up to a NUL */
	snprintf(buf, sizeof(buf), "GET h /a");
	i = index_of(b1, balancer_pick(b1, buf, strlen(buf), T0, NULL, 0));
	snprintf(buf, sizeof(buf), "GET h /aZZZZZZZZ");
	ck_assert_int_eq(index_of(b1, balancer_pick(b1, buf, strlen("GET h /a"), T0, NULL, 0)),
			 i);
	balancer_free(b1);
	balancer_free(b2);
}
END_TEST

static const struct {
	enum how how;
	const char *rule;
} leaves[] = {
	{ ACTIVE, "a backend leaves after <fall> failed checks: only its keys move, ~1/N" },
	{ PASSIVE, "a backend ejected by live traffic: only its keys move, ~1/N" },
};

START_TEST(test_hash_stability)
{
	static const unsigned w[4] = { 1, 1, 1, 1 };
	enum { N = 4, GONE = 2 };
	struct balancer *b = pool(BALANCE_HASH, w, N, 0, 1);
	signed char *before = malloc(KEYS);
	unsigned long moved = 0, moved_to[N] = { 0 }, stayed_moved = 0, back = 0;
	double share;

	ck_assert_ptr_nonnull(before);
	for (unsigned k = 0; k < KEYS; k++)
		before[k] = (signed char)pick(b, k, T0, NULL, 0);

	take_down(b, GONE, leaves[_i].how, T0 + 1000);
	for (unsigned k = 0; k < KEYS; k++) {
		int now = pick(b, k, T0 + 2000, NULL, 0);

		ck_assert_int_ge(now, 0);
		ck_assert_int_ne(now, GONE);
		if (now != before[k]) {
			moved++;
			moved_to[now]++;
			stayed_moved += before[k] != GONE;
		}
	}
	share = (double)moved / KEYS;
	ck_assert_msg(stayed_moved == 0, "%s: %lu keys of the backends that stayed moved",
		      leaves[_i].rule, stayed_moved);
	ck_assert_msg(share >= 0.25 * 0.85 && share <= 0.25 * 1.15,
		      "%s: %.3f of the keys moved, want 1/4 +- 15 %%", leaves[_i].rule, share);
	/* virtual nodes: no single neighbour inherits all of the leaver's keys */
	for (size_t j = 0; j < N; j++)
		if (j != GONE)
			ck_assert_msg(moved_to[j] >= moved / 10,
				      "%s: backend %zu took %lu of the %lu moved keys",
				      leaves[_i].rule, j, moved_to[j], moved);

	/* it comes back after <rise> passing checks, and so do its keys */
	bring_up(b, GONE, T0 + 5000);
	for (unsigned k = 0; k < KEYS; k++)
		back += pick(b, k, T0 + 6000, NULL, 0) == before[k];
	ck_assert_msg(back == KEYS, "%s: only %lu of %u keys back where they were",
		      leaves[_i].rule, back, KEYS);
	free(before);
	balancer_free(b);
}
END_TEST

/* ---- the skip list, and nothing left --------------------------------------------------------- */

static const enum balance_policy policies[] = {
	BALANCE_ROUND_ROBIN,
	BALANCE_LEAST_CONN,
	BALANCE_HASH,
	BALANCE_RANDOM_TWO,
};

static const struct {
	unsigned down;			/* bit i: backend i taken down */
	unsigned skip;			/* bit i: backend i in the skip list */
	unsigned allowed;		/* bit i: backend i may be picked; 0: NULL */
	const char *rule;
} skips[] = {
	{ 0, 0x1, 0x6, "a retry never goes back to a backend it tried" },
	{ 0, 0x3, 0x4, "...nor to any of those it tried" },
	{ 0, 0x7, 0, "all tried: none left" },
	{ 0x2, 0, 0x5, "issue 5: an unhealthy backend gets no traffic" },
	{ 0x2, 0x1, 0x4, "down and tried are both left out" },
	{ 0x2, 0x5, 0, "the rest tried, one down: none left" },
	{ 0x7, 0, 0, "all down: none" },
};

START_TEST(test_skip)
{
	static const unsigned w[3] = { 1, 2, 3 };

	for (size_t p = 0; p < ARRAY_LEN(policies); p++) {
		struct balancer *b = pool(policies[p], w, 3, 0, 3);
		struct backend *skip[3];
		size_t nskip = 0;

		for (size_t i = 0; i < 3; i++) {
			if (skips[_i].down & (1u << i))
				take_down(b, i, ACTIVE, T0);
			if (skips[_i].skip & (1u << i))
				skip[nskip++] = balancer_backend(b, i);
		}
		for (unsigned k = 0; k < 600; k++) {
			int i = pick(b, k, T0 + 1000, skip, nskip);

			if (skips[_i].allowed == 0)
				ck_assert_msg(i == -1, "%s (%s): picked %d, want none",
					      skips[_i].rule, balance_policy_names[policies[p]], i);
			else
				ck_assert_msg(i >= 0 && (skips[_i].allowed & (1u << i)),
					      "%s (%s): picked %d", skips[_i].rule,
					      balance_policy_names[policies[p]], i);
		}
		balancer_free(b);
	}
}
END_TEST

/* ---- health: the rise/fall state machine ----------------------------------------------------- */

enum event {
	CHECK = 0,		/* balancer_check_result() */
	TRAFFIC,		/* balancer_traffic_result() */
};

struct step {
	enum event event;
	bool ok;
	bool up;			/* the state after it */
	bool change;			/* reported as a change */
	const char *rule;
};

/* rise=2, fall=3: health 0..1 down, 2..4 up */
static const struct step active_script[] = {
	{ CHECK, true, true, false, "up from the start; a success while up changes nothing" },
	{ CHECK, false, true, false, "1st failure of fall=3: still up" },
	{ CHECK, false, true, false, "2nd failure: still up" },
	{ CHECK, false, false, true, "fall-th failure in a row: down, reported" },
	{ CHECK, false, false, false, "a failure while down: reported once only" },
	{ CHECK, true, false, false, "1st success of rise=2: still down" },
	{ CHECK, true, true, true, "rise-th success: up, reported" },
	{ CHECK, true, true, false, "a success while up: reported once only" },
	{ CHECK, false, true, false, "back up at full health: 1st of fall failures again" },
	{ CHECK, false, true, false, "...2nd" },
	{ CHECK, true, true, false, "one integer: a success undoes one failure" },
	{ CHECK, false, true, false, "...so the next failure leaves it at rise, still up" },
	{ CHECK, false, false, true, "...and the one after takes it down" },
	{ CHECK, true, false, false, "recovering: 1st success" },
	{ CHECK, false, false, false, "a failure undoes it" },
	{ CHECK, true, false, false, "1st success again" },
	{ CHECK, true, true, true, "2nd: up" },
};

static const struct step passive_script[] = {
	{ TRAFFIC, true, true, false, "a good fetch changes nothing" },
	{ TRAFFIC, false, true, false, "1st failed fetch of fall=3: still up" },
	{ TRAFFIC, false, true, false, "2nd failed fetch: still up" },
	{ TRAFFIC, true, true, false, "a good fetch resets the count" },
	{ TRAFFIC, false, true, false, "1st failed fetch in a row again" },
	{ TRAFFIC, false, true, false, "2nd" },
	{ TRAFFIC, false, false, true, "fall failed fetches in a row: ejected at once, reported" },
	{ TRAFFIC, false, false, false, "a failed fetch while down: reported once only" },
	{ CHECK, true, false, false, "ejected: back only through rise passing checks, 1st" },
	{ CHECK, true, true, true, "2nd passing check: up, reported" },
	{ TRAFFIC, false, true, false, "back up with a clean count: 1st failed fetch" },
	{ TRAFFIC, false, true, false, "2nd" },
	{ TRAFFIC, false, false, true, "3rd: ejected again" },
};

static const struct {
	const struct step *steps;
	size_t n;
} scripts[] = {
	{ active_script, ARRAY_LEN(active_script) },
	{ passive_script, ARRAY_LEN(passive_script) },
};

/* A reload: the new pool's backends that keep their name keep their state; a new one
 * starts up; the old pool's backends are not the new pool's. */
START_TEST(test_inherit)
{
	static const unsigned w3[] = { 1, 1, 1 };
	struct balancer *old = pool(BALANCE_ROUND_ROBIN, w3, 3, 0, 1);
	const char *names[] = { "127.0.0.1:3002", "127.0.0.1:3003", "127.0.0.1:4000" };
	struct balancer_config cfg = { .policy = BALANCE_LEAST_CONN, .rise = 1, .fall = 5 };
	struct balancer *b = balancer_new(&cfg, names, w3, 3);
	struct backend *be;

	ck_assert_ptr_nonnull(b);
	take_down(old, 1, ACTIVE, T0);			/* 3002: down */
	atomic_store(&balancer_backend(old, 2)->requests, 42);	/* 3003: up, busy before */
	atomic_store(&balancer_backend(old, 2)->failures, 7);
	ck_assert_uint_eq(balancer_inherit(b, old), 2);
	be = balancer_backend(b, 0);
	ck_assert(!atomic_load(&be->up));
	ck_assert_int_lt(be->health, 1);		/* below the new rise: still down */
	be = balancer_backend(b, 1);
	ck_assert(atomic_load(&be->up));
	ck_assert_int_ge(be->health, 1);
	ck_assert_int_le(be->health, 5);		/* within the new rise + fall - 1 */
	ck_assert_uint_eq(atomic_load(&be->requests), 42);
	ck_assert_uint_eq(atomic_load(&be->failures), 7);
	be = balancer_backend(b, 2);
	ck_assert(atomic_load(&be->up));
	ck_assert_uint_eq(atomic_load(&be->requests), 0);
	for (size_t i = 0; i < 3; i++) {
		ck_assert(balancer_owns(b, balancer_backend(b, i)));
		ck_assert(!balancer_owns(b, balancer_backend(old, i)));
		ck_assert(balancer_owns(old, balancer_backend(old, i)));
	}
	/* one pick after the reload goes to a backend that is up: not 3002 */
	for (unsigned i = 0; i < 10; i++)
		ck_assert_int_ne(pick(b, i, T0, NULL, 0), 0);
	balancer_free(old);
	balancer_free(b);
}
END_TEST

START_TEST(test_health)
{
	static const unsigned w[2] = { 1, 1 };
	struct balancer *b = pool(BALANCE_ROUND_ROBIN, w, 2, 0, 1);
	struct backend *be = balancer_backend(b, 0), *other = balancer_backend(b, 1);

	for (size_t k = 0; k < scripts[_i].n; k++) {
		const struct step *s = &scripts[_i].steps[k];
		uint64_t now = T0 + 1000 * k;
		struct balancer_change change;
		bool changed;

		memset(&change, 0, sizeof(change));
		changed = s->event == CHECK ? balancer_check_result(b, be, s->ok, now, &change) :
			balancer_traffic_result(b, be, s->ok, now, &change);
		ck_assert_msg(changed == s->change, "step %zu, %s: %s", k, s->rule,
			      changed ? "a change reported" : "no change reported");
		ck_assert_msg(atomic_load(&be->up) == s->up, "step %zu, %s: %s", k, s->rule,
			      s->up ? "down" : "up");
		ck_assert_msg((be->health >= RISE) == s->up && be->health >= 0 &&
				      be->health <= RISE + FALL - 1,
			      "step %zu, %s: health %d", k, s->rule, be->health);
		if (changed) {
			ck_assert_ptr_eq(change.backend, be);
			ck_assert_msg(change.up == s->up, "step %zu, %s: change.up", k, s->rule);
			ck_assert_msg(change.why && change.why[0], "step %zu, %s: no reason", k,
				      s->rule);
		}
		/* the other backend never notices; a down one gets no picks */
		ck_assert(atomic_load(&other->up));
		if (!s->up)
			for (unsigned j = 0; j < 4; j++)
				ck_assert_int_eq(pick(b, j, now, NULL, 0), 1);
	}
	balancer_free(b);
}
END_TEST

/* ---- slow start ------------------------------------------------------------------------------ */

static const struct {
	unsigned weight;
	uint64_t slow_start_ms;
	uint64_t elapsed;		/* since it came up */
	unsigned expect;
	unsigned tolerance;
	const char *rule;
} ramps[] = {
	/* effective weights are in hundredths (BALANCER_WEIGHT_SCALE) */
	{ 100, SLOW_START_MS, 0, 1, 0, "just up: the least weight, 1" },
	{ 100, SLOW_START_MS, 2500, 2500, 100, "a quarter of slow start: a quarter of the weight" },
	{ 100, SLOW_START_MS, 5000, 5000, 100, "half way: half" },
	{ 100, SLOW_START_MS, 7500, 7500, 100, "three quarters" },
	{ 100, SLOW_START_MS, 10000, 10000, 0, "slow_start_ms after: full weight" },
	{ 100, SLOW_START_MS, 3600000, 10000, 0, "long after: full weight" },
	{ 1000, SLOW_START_MS, 9990, 99900, 100, "just before the end" },
	{ 1, SLOW_START_MS, 2500, 25, 1, "weight 1 ramps too, in hundredths" },
	{ 4, SLOW_START_MS, 1000, 40, 1, "4 x 0.1" },
	{ 100, 0, 0, 10000, 0, "slow_start_ms 0: full weight at once" },
};

START_TEST(test_slow_start_weight)
{
	const unsigned w[2] = { 100, ramps[_i].weight };
	struct balancer *b = pool(BALANCE_ROUND_ROBIN, w, 2, ramps[_i].slow_start_ms, 1);
	struct backend *steady = balancer_backend(b, 0), *be = balancer_backend(b, 1);
	uint64_t up_at = T0 + 5000;
	unsigned got;

	take_down(b, 1, ACTIVE, T0);
	bring_up(b, 1, up_at);
	ck_assert_uint_eq(be->up_since_ms, up_at);
	got = balancer_effective_weight(b, be, up_at + ramps[_i].elapsed);
	ck_assert_msg(got + ramps[_i].tolerance >= ramps[_i].expect &&
			      got <= ramps[_i].expect + ramps[_i].tolerance,
		      "%s: weight %u after %llu ms, effective %u, want %u", ramps[_i].rule,
		      ramps[_i].weight, (unsigned long long)ramps[_i].elapsed, got,
		      ramps[_i].expect);
	/* a backend that never left is never ramped */
	ck_assert_uint_eq(balancer_effective_weight(b, steady, up_at + ramps[_i].elapsed),
			  100 * BALANCER_WEIGHT_SCALE);
	balancer_free(b);
}
END_TEST

static const struct {
	uint64_t elapsed;
	unsigned permille;		/* the recovering backend's share of picks */
	const char *rule;
} rr_ramps[] = {
	{ 0, 0, "just up: 1 against 10000, a trickle" },
	{ 2500, 200, "25 against 100: a fifth of the picks" },
	{ 5000, 333, "50 against 100: a third" },
	{ 7500, 429, "75 against 100" },
	{ 10000, 500, "ramp done: an even share" },
	{ 60000, 500, "long after: an even share" },
};

START_TEST(test_slow_start_round_robin)
{
	static const unsigned w[2] = { 100, 100 };
	struct balancer *b = pool(BALANCE_ROUND_ROBIN, w, 2, SLOW_START_MS, 1);
	uint64_t up_at = T0 + 5000, now = up_at + rr_ramps[_i].elapsed;
	unsigned recovering = 0;

	/* while it is down, the other takes everything */
	take_down(b, 1, ACTIVE, T0);
	for (unsigned k = 0; k < 100; k++)
		ck_assert_int_eq(pick(b, k, T0 + 1000, NULL, 0), 0);
	bring_up(b, 1, up_at);
	for (unsigned k = 0; k < 1000; k++)
		recovering += pick(b, k, now, NULL, 0) == 1;
	ck_assert_msg(recovering + 20 >= rr_ramps[_i].permille &&
			      recovering <= rr_ramps[_i].permille + 20,
		      "%s: %u of 1000 picks to the recovering backend, want %u +- 20",
		      rr_ramps[_i].rule, recovering, rr_ramps[_i].permille);
	balancer_free(b);
}
END_TEST

/* ---- admin state: drain, disable, enable (the admin listener) ------------------------------- */

static const struct {
	enum balance_policy policy;
	enum backend_admin admin;
	const char *rule;
} admins[] = {
	{ BALANCE_ROUND_ROBIN, BACKEND_DRAINING, "round-robin: a draining backend gets no picks" },
	{ BALANCE_LEAST_CONN, BACKEND_DRAINING, "least-conn: a draining backend gets no picks" },
	{ BALANCE_HASH, BACKEND_DRAINING, "hash: a draining backend's keys move" },
	{ BALANCE_RANDOM_TWO, BACKEND_DRAINING, "random-two: a draining backend gets no picks" },
	{ BALANCE_ROUND_ROBIN, BACKEND_DISABLED, "round-robin: a disabled backend gets no picks" },
	{ BALANCE_HASH, BACKEND_DISABLED, "hash: a disabled backend's keys move" },
};

START_TEST(test_admin_state)
{
	static const unsigned w[3] = { 1, 1, 1 };
	struct balancer *b = pool(admins[_i].policy, w, 3, SLOW_START_MS, 5);
	struct backend *be = balancer_backend(b, 1);
	unsigned seen[3] = { 0, 0, 0 };

	ck_assert_str_eq(balancer_state_name(be), "up");
	ck_assert(balancer_set_admin(b, be, admins[_i].admin, T0, "test"));
	ck_assert(!balancer_set_admin(b, be, admins[_i].admin, T0, "test"));	/* no change */
	for (unsigned j = 0; j < 3000; j++) {
		int i = pick(b, j, T0, NULL, 0);

		ck_assert_msg(i == 0 || i == 2, "%s: picked %d", admins[_i].rule, i);
		seen[i]++;
	}
	ck_assert(seen[0] > 0 && seen[2] > 0);
	ck_assert(balancer_available(b, NULL, 0));
	/* enable: back in rotation, through slow start */
	ck_assert(balancer_set_admin(b, be, BACKEND_ENABLED, T0 + 1000, "test"));
	ck_assert_str_eq(balancer_state_name(be), "up");
	ck_assert_uint_lt(balancer_effective_weight(b, be, T0 + 2000),
			  BALANCER_WEIGHT_SCALE);
	memset(seen, 0, sizeof(seen));
	for (unsigned j = 0; j < 3000; j++)
		seen[pick(b, j, T0 + SLOW_START_MS + 1000, NULL, 0)]++;
	ck_assert_msg(seen[1] > 0, "%s: enabled again but never picked", admins[_i].rule);
	balancer_free(b);
}
END_TEST

START_TEST(test_admin_names)
{
	static const unsigned w[2] = { 1, 1 };
	struct balancer *b = pool(BALANCE_ROUND_ROBIN, w, 2, 0, 1);
	struct backend *be = balancer_backend(b, 0);

	ck_assert_str_eq(backend_admin_names[BACKEND_ENABLED], "enabled");
	ck_assert_str_eq(backend_admin_names[BACKEND_DRAINING], "draining");
	ck_assert_str_eq(backend_admin_names[BACKEND_DISABLED], "disabled");
	ck_assert_ptr_null(backend_admin_names[3]);
	ck_assert_ptr_eq(balancer_find(b, "127.0.0.1:3001"), be);
	ck_assert_ptr_eq(balancer_find(b, "127.0.0.1:3002"), balancer_backend(b, 1));
	ck_assert_ptr_null(balancer_find(b, "127.0.0.1:3003"));
	ck_assert_ptr_null(balancer_find(b, "127.0.0.1"));
	/* draining with fetches in flight, then drained when they end */
	atomic_store(&be->in_flight, 2);
	balancer_set_admin(b, be, BACKEND_DRAINING, T0, "test");
	ck_assert_str_eq(balancer_state_name(be), "draining");
	atomic_store(&be->in_flight, 0);
	ck_assert_str_eq(balancer_state_name(be), "drained");
	balancer_set_admin(b, be, BACKEND_DISABLED, T0, "test");
	ck_assert_str_eq(balancer_state_name(be), "disabled");
	/* disabled: check results are ignored, its health stays */
	for (int k = 0; k < 2 * FALL; k++)
		ck_assert(!balancer_check_result(b, be, false, T0 + (uint64_t)k, NULL));
	ck_assert(atomic_load(&be->up));
	balancer_set_admin(b, be, BACKEND_ENABLED, T0, "test");
	ck_assert_str_eq(balancer_state_name(be), "up");
	/* a down backend says so, whatever its admin state was */
	for (int k = 0; k < FALL; k++)
		balancer_check_result(b, be, false, T0 + (uint64_t)k, NULL);
	ck_assert_str_eq(balancer_state_name(be), "down");
	ck_assert_uint_eq(be->checks_failed, FALL);
	ck_assert_uint_eq(be->checks_passed, 0);
	balancer_check_result(b, be, true, T0 + 10, NULL);
	ck_assert_uint_eq(be->checks_failed, 0);
	ck_assert_uint_eq(be->checks_passed, 1);
	balancer_free(b);
}
END_TEST

START_TEST(test_history)
{
	static const unsigned w[2] = { 1, 1 };
	struct balancer *b = pool(BALANCE_ROUND_ROBIN, w, 2, 0, 1);
	struct backend *be = balancer_backend(b, 1);
	struct balancer_event ev[BALANCER_HISTORY + 5];

	ck_assert_uint_eq(balancer_history(b, ev, ARRAY_LEN(ev)), 0);
	for (int k = 0; k < FALL; k++)
		balancer_check_result(b, be, false, T0 + 1, NULL);
	balancer_set_admin(b, be, BACKEND_DISABLED, T0 + 2, "maintenance");
	ck_assert_uint_eq(balancer_history(b, ev, ARRAY_LEN(ev)), 2);
	/* newest first */
	ck_assert_str_eq(ev[0].state, "disabled");
	ck_assert_str_eq(ev[0].why, "maintenance");
	ck_assert_uint_eq(ev[0].at_ms, T0 + 2);
	ck_assert_uint_eq(ev[0].backend, 1);
	ck_assert_str_eq(ev[1].state, "down");
	ck_assert_uint_eq(ev[1].at_ms, T0 + 1);
	ck_assert_uint_eq(balancer_history(b, ev, 1), 1);
	ck_assert_str_eq(ev[0].state, "disabled");
	/* the ring keeps the last BALANCER_HISTORY */
	for (unsigned k = 0; k < BALANCER_HISTORY + 3; k++)
		balancer_set_admin(b, be, k % 2 ? BACKEND_DISABLED : BACKEND_ENABLED,
				   T0 + 100 + k, "flip");
	ck_assert_uint_eq(balancer_history(b, ev, ARRAY_LEN(ev)), BALANCER_HISTORY);
	ck_assert_uint_eq(ev[0].at_ms, T0 + 100 + BALANCER_HISTORY + 2);
	ck_assert_uint_eq(ev[BALANCER_HISTORY - 1].at_ms, T0 + 100 + 3);
	balancer_free(b);
}
END_TEST

static Suite *balancer_suite(void)
{
	Suite *s = suite_create("balancer");
	TCase *parse = tcase_create("parse");
	TCase *policy = tcase_create("policies");
	TCase *health = tcase_create("health");

	tcase_add_test(parse, test_policy_names);
	tcase_add_test(parse, test_new_limits);
	tcase_add_loop_test(parse, test_parse_spec, 0, ARRAY_LEN(specs));
	tcase_add_test(parse, test_parse_spec_length);

	tcase_add_loop_test(policy, test_rr_order, 0, ARRAY_LEN(rr_orders));
	tcase_add_loop_test(policy, test_distribution, 0, ARRAY_LEN(dists));
	tcase_add_loop_test(policy, test_least_conn_busy, 0, ARRAY_LEN(busy));
	tcase_add_test(policy, test_random_two_busy);
	tcase_add_test(policy, test_random_two_seed);
	tcase_add_test(policy, test_hash_sticky);
	tcase_add_loop_test(policy, test_hash_stability, 0, ARRAY_LEN(leaves));
	tcase_add_loop_test(policy, test_skip, 0, ARRAY_LEN(skips));

	tcase_add_loop_test(health, test_health, 0, ARRAY_LEN(scripts));
	tcase_add_test(health, test_inherit);
	tcase_add_loop_test(health, test_slow_start_weight, 0, ARRAY_LEN(ramps));
	tcase_add_loop_test(health, test_slow_start_round_robin, 0, ARRAY_LEN(rr_ramps));
	tcase_add_loop_test(health, test_admin_state, 0, ARRAY_LEN(admins));
	tcase_add_test(health, test_admin_names);
	tcase_add_test(health, test_history);

	suite_add_tcase(s, parse);
	suite_add_tcase(s, policy);
	suite_add_tcase(s, health);
	return s;
}

CHECK_MAIN(balancer_suite)

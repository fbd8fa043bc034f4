/* balancer.c - backend choice and health (see balancer.h).
 *
 * Consistent hashing: every backend owns POINTS_PER_WEIGHT points per unit of weight on a
 * 64-bit ring, placed by hashing "name#i". A key goes to the owner of the first point at or
 * after its hash that is up and not skipped. Taking a backend out moves only the keys
 * whose first point was one of its own - about 1/N of them - to the next owners along the
 * ring; putting it back moves them home.
 */
#include "config.h"

#include "balancer.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POINTS_PER_WEIGHT 512	/* fewer leave shares uneven: 64 gave one of 3 backends 28 % */
#define MAX_POINTS 65536

const char *const balance_policy_names[] = { "round-robin", "least-conn", "hash", "random-two",
					     NULL };

const char *const backend_admin_names[] = { "enabled", "draining", "disabled", NULL };

struct point {
	uint64_t hash;
	unsigned backend;
};

struct balancer {
	struct balancer_config cfg;
	struct backend *backends;
	size_t n;
	struct point *ring;		/* sorted by hash */
	size_t npoints;
	uint64_t rng;			/* splitmix64 state */
	size_t rotor;			/* least-conn: where ties start */
	struct balancer_event history[BALANCER_HISTORY];	/* a ring of state changes */
	size_t nevents;			/* ever recorded; the next goes at nevents % HISTORY */
};

/* splitmix64: a fast, well-mixed 64-bit generator and hash finaliser */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h);
}

static uint64_t next_random(struct balancer *b)
{
	b->rng += 0x9e3779b97f4a7c15ULL;
	return mix64(b->rng);
}

int balancer_parse_spec(const char *spec, char *name, size_t name_len, unsigned *weight,
			char *err, size_t errlen)
{
	const char *comma = strchr(spec, ','), *colon;
	size_t host_len, len = comma ? (size_t)(comma - spec) : strlen(spec);
	long port;
	char *end;

	*weight = 1;
	colon = memrchr(spec, ':', len);
	if (colon == NULL || colon == spec) {
		snprintf(err, errlen, "'%s': want HOST:PORT[,weight=N]", spec);
		return -EINVAL;
	}
	host_len = (size_t)(colon - spec);
	if ((spec[0] == '[' && (host_len < 3 || spec[host_len - 1] != ']')) ||
	    (spec[0] != '[' && memchr(spec, ':', host_len))) {
		snprintf(err, errlen, "'%s': an IPv6 address goes in brackets: [::1]:PORT", spec);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || end != spec + len || errno || port < 1 ||
	    port > 65535) {
		snprintf(err, errlen, "'%s': the port must be a number from 1 to 65535", spec);
		return -EINVAL;
	}
	if (len >= name_len) {
		snprintf(err, errlen, "'%s': the address is too long", spec);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (spec[i] <= ' ' || strchr("/@?#", spec[i])) {
			snprintf(err, errlen, "'%s': want HOST:PORT, without a scheme or path", spec);
			return -EINVAL;
		}
	}
	if (comma) {
		long w;

		if (strncmp(comma + 1, "weight=", 7) != 0) {
			snprintf(err, errlen, "'%s': the only parameter is weight=N", spec);
			return -EINVAL;
		}
		errno = 0;
		w = strtol(comma + 8, &end, 10);
		if (!isdigit((unsigned char)comma[8]) || *end != '\0' || errno || w < 1 ||
		    w > BALANCER_MAX_WEIGHT) {
			snprintf(err, errlen, "'%s': the weight must be a number from 1 to %d", spec,
				 BALANCER_MAX_WEIGHT);
			return -EINVAL;
		}
		*weight = (unsigned)w;
	}
	memcpy(name, spec, len);
	name[len] = '\0';
	return 0;
}

static int point_cmp(const void *a, const void *b)
{
	const struct point *x = a, *y = b;

	return x->hash < y->hash ? -1 : x->hash > y->hash;
}

static int build_ring(struct balancer *b)
{
	size_t total = 0, k = 0, sum = 0;

	for (size_t i = 0; i < b->n; i++)
		sum += b->backends[i].weight;
	total = sum * POINTS_PER_WEIGHT;
	if (total > MAX_POINTS)
		total = MAX_POINTS;
	b->ring = calloc(total, sizeof(*b->ring));
	if (b->ring == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		/* each backend's share of the points, in proportion to its weight */
		size_t mine = total * b->backends[i].weight / sum;
		for (size_t p = 0; p < mine && k < total; p++) {
			char label[BALANCER_MAX_NAME + 16];
			int len = snprintf(label, sizeof(label), "%s#%zu", b->backends[i].name, p);

			b->ring[k].hash = hash_bytes(label, (size_t)len);
			b->ring[k].backend = (unsigned)i;
			k++;
		}
	}
	b->npoints = k;
	qsort(b->ring, b->npoints, sizeof(*b->ring), point_cmp);
	return 0;
}

struct balancer *balancer_new(const struct balancer_config *cfg, const char *const *names,
			      const unsigned *weights, size_t n)
{
	struct balancer *b;

	if (n == 0 || n > BALANCER_MAX_BACKENDS)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->cfg = *cfg;
	if (b->cfg.rise < 1)
		b->cfg.rise = 1;
	if (b->cfg.fall < 1)
		b->cfg.fall = 1;
	b->rng = cfg->seed;
	b->backends = calloc(n, sizeof(*b->backends));
	if (b->backends == NULL) {
		free(b);
		return NULL;
	}
	b->n = n;
	for (size_t i = 0; i < n; i++) {
		struct backend *be = &b->backends[i];

		snprintf(be->name, sizeof(be->name), "%s", names[i]);
		be->weight = weights[i] < 1 ? 1 : weights[i];
		be->health = (int)(b->cfg.rise + b->cfg.fall - 1);	/* up until shown not */
		atomic_init(&be->up, true);
		atomic_init(&be->in_flight, 0);
		atomic_init(&be->requests, 0);
		atomic_init(&be->failures, 0);
		atomic_init(&be->admin, BACKEND_ENABLED);
		atomic_init(&be->errors, 0);
		atomic_init(&be->retries, 0);
	}
	if (build_ring(b)) {
		balancer_free(b);
		return NULL;
	}
	return b;
}

void balancer_free(struct balancer *b)
{
	if (b == NULL)
		return;
	free(b->ring);
	free(b->backends);
	free(b);
}

bool balancer_owns(const struct balancer *b, const struct backend *be)
{
	/* compared as integers: <be> may point into another pool */
	uintptr_t p = (uintptr_t)be, first = (uintptr_t)b->backends;

	return p >= first && p < first + b->n * sizeof(*b->backends);
}

size_t balancer_inherit(struct balancer *to, const struct balancer *from)
{
	int top = (int)(to->cfg.rise + to->cfg.fall - 1);
	size_t kept = 0;

	for (size_t i = 0; i < to->n; i++) {
		struct backend *be = &to->backends[i];

		for (size_t j = 0; j < from->n; j++) {
			const struct backend *old = &from->backends[j];
			bool up = atomic_load(&old->up);
			int h = old->health;

			if (strcmp(be->name, old->name) != 0)
				continue;
			if (up)
				h = h < (int)to->cfg.rise ? (int)to->cfg.rise : h > top ? top : h;
			else
				h = h >= (int)to->cfg.rise ? (int)to->cfg.rise - 1 : h;
			be->health = h;
			atomic_store(&be->up, up);
			be->passive_failures = old->passive_failures;
			be->up_since_ms = old->up_since_ms;
			atomic_store(&be->requests, atomic_load(&old->requests));
			atomic_store(&be->failures, atomic_load(&old->failures));
			kept++;
			break;
		}
	}
	return kept;
}

size_t balancer_count(const struct balancer *b)
{
	return b->n;
}

struct backend *balancer_backend(struct balancer *b, size_t i)
{
	return i < b->n ? &b->backends[i] : NULL;
}

unsigned balancer_effective_weight(const struct balancer *b, const struct backend *be,
				   uint64_t now_ms)
{
	uint64_t full = (uint64_t)be->weight * BALANCER_WEIGHT_SCALE, elapsed, w;

	if (b->cfg.slow_start_ms == 0 || be->up_since_ms == 0 || now_ms < be->up_since_ms)
		return (unsigned)full;
	elapsed = now_ms - be->up_since_ms;
	if (elapsed >= b->cfg.slow_start_ms)
		return (unsigned)full;
	w = full * elapsed / b->cfg.slow_start_ms;
	return w < 1 ? 1 : (unsigned)w;
}

static bool usable(const struct backend *be, struct backend *const *skip, size_t nskip)
{
	if (!atomic_load_explicit(&be->up, memory_order_relaxed) ||
	    atomic_load_explicit(&be->admin, memory_order_relaxed) != BACKEND_ENABLED)
		return false;
	for (size_t i = 0; i < nskip; i++)
		if (skip[i] == be)
			return false;
	return true;
}

bool balancer_available(const struct balancer *b, struct backend *const *skip, size_t nskip)
{
	for (size_t i = 0; i < b->n; i++)
		if (usable(&b->backends[i], skip, nskip))
			return true;
	return false;
}

/* nginx's smooth weighted round-robin: every candidate gains its weight, the richest is
 * chosen and pays the total. Heavy backends are chosen often but never in long runs. */
static struct backend *pick_round_robin(struct balancer *b, uint64_t now_ms,
					struct backend *const *skip, size_t nskip)
{
	struct backend *best = NULL;
	long long total = 0;

	for (size_t i = 0; i < b->n; i++) {
		struct backend *be = &b->backends[i];
		long long w;

		if (!usable(be, skip, nskip))
			continue;
		w = balancer_effective_weight(b, be, now_ms);
		be->current += w;
		total += w;
		if (best == NULL || be->current > best->current)
			best = be;
	}
	if (best)
		best->current -= total;
	return best;
}

/* Fewest fetches in flight for the weight: in_flight / weight compared without division. */
static struct backend *pick_least_conn(struct balancer *b, uint64_t now_ms,
				       struct backend *const *skip, size_t nskip)
{
	struct backend *best = NULL;
	unsigned long long best_load = 0, best_w = 1;

	for (size_t k = 0; k < b->n; k++) {
		struct backend *be = &b->backends[(b->rotor + k) % b->n];
		unsigned long long load, w;

		if (!usable(be, skip, nskip))
			continue;
		load = atomic_load_explicit(&be->in_flight, memory_order_relaxed);
		w = balancer_effective_weight(b, be, now_ms);
		if (best == NULL || load * best_w < best_load * w) {
			best = be;
			best_load = load;
			best_w = w;
		}
	}
	b->rotor++;		/* ties go round */
	return best;
}

static struct backend *pick_hash(struct balancer *b, const char *key, size_t key_len,
				 struct backend *const *skip, size_t nskip)
{
	uint64_t h = hash_bytes(key, key_len);
	size_t lo = 0, hi = b->npoints;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = 0; k < b->npoints; k++) {
		struct backend *be = &b->backends[b->ring[(lo + k) % b->npoints].backend];

		if (usable(be, skip, nskip))
			return be;
	}
	return NULL;
}

/* Draws a usable backend other than <not> at random, in proportion to its weight. */
static struct backend *draw(struct balancer *b, uint64_t now_ms, struct backend *const *skip,
			    size_t nskip, const struct backend *not)
{
	unsigned long long total = 0, r;

	for (size_t i = 0; i < b->n; i++)
		if (&b->backends[i] != not && usable(&b->backends[i], skip, nskip))
			total += balancer_effective_weight(b, &b->backends[i], now_ms);
	if (total == 0)
		return NULL;
	r = next_random(b) % total;
	for (size_t i = 0; i < b->n; i++) {
		struct backend *be = &b->backends[i];
		unsigned w;

		if (be == not || !usable(be, skip, nskip))
			continue;
		w = balancer_effective_weight(b, be, now_ms);
		if (r < w)
			return be;
		r -= w;
	}
	return NULL;
}

/* Two different usable backends at random (weighted); the one with less in flight per
 * weight wins (Mitzenmacher's power of two choices). */
static struct backend *pick_random_two(struct balancer *b, uint64_t now_ms,
				       struct backend *const *skip, size_t nskip)
{
	struct backend *one = draw(b, now_ms, skip, nskip, NULL), *two;
	unsigned long long l1, l2, w1, w2;

	if (one == NULL)
		return NULL;
	two = draw(b, now_ms, skip, nskip, one);
	if (two == NULL)
		return one;
	l1 = atomic_load_explicit(&one->in_flight, memory_order_relaxed);
	l2 = atomic_load_explicit(&two->in_flight, memory_order_relaxed);
	w1 = balancer_effective_weight(b, one, now_ms);
	w2 = balancer_effective_weight(b, two, now_ms);
	return l2 * w1 < l1 * w2 ? two : one;
}

struct backend *balancer_pick(struct balancer *b, const char *key, size_t key_len,
			      uint64_t now_ms, struct backend *const *skip, size_t nskip)
{
	switch (b->cfg.policy) {
	case BALANCE_LEAST_CONN:
		return pick_least_conn(b, now_ms, skip, nskip);
	case BALANCE_HASH:
		return pick_hash(b, key, key_len, skip, nskip);
	case BALANCE_RANDOM_TWO:
		return pick_random_two(b, now_ms, skip, nskip);
	case BALANCE_ROUND_ROBIN:
	default:
		return pick_round_robin(b, now_ms, skip, nskip);
	}
}

static void record(struct balancer *b, const struct backend *be, uint64_t now_ms,
		   const char *state, const char *why)
{
	b->history[b->nevents++ % BALANCER_HISTORY] = (struct balancer_event){
		.at_ms = now_ms,
		.backend = (size_t)(be - b->backends),
		.state = state,
		.why = why,
	};
}

/* Sets <be>'s state from its health; reports a change. */
static bool settle(struct balancer *b, struct backend *be, uint64_t now_ms, const char *why,
		   struct balancer_change *change)
{
	bool up = be->health >= (int)b->cfg.rise;
	bool was = atomic_load(&be->up);

	if (up == was)
		return false;
	atomic_store(&be->up, up);
	if (up) {
		be->up_since_ms = now_ms;
		be->current = 0;
	}
	be->passive_failures = 0;
	record(b, be, now_ms, up ? "up" : "down", why);
	if (change) {
		change->backend = be;
		change->up = up;
		change->why = why;
	}
	return true;
}

bool balancer_check_result(struct balancer *b, struct backend *be, bool ok, uint64_t now_ms,
			   struct balancer_change *change)
{
	int top = (int)(b->cfg.rise + b->cfg.fall - 1);

	if (atomic_load(&be->admin) == BACKEND_DISABLED)
		return false;	/* maintenance: a backend being restarted does not flap */
	be->checks_passed = ok ? be->checks_passed + 1 : 0;
	be->checks_failed = ok ? 0 : be->checks_failed + 1;
	if (ok) {
		if (be->health < (int)b->cfg.rise - 1)
			be->health++;
		else if (be->health < top)
			be->health = atomic_load(&be->up) ? be->health + 1 : top;
		return settle(b, be, now_ms, "health checks pass", change);
	}
	if (atomic_load(&be->up)) {
		/* from the top, the <fall>th failure in a row goes down, and from the bottom:
		 * <rise> passing checks are needed to return */
		if (be->health > (int)b->cfg.rise)
			be->health--;
		else
			be->health = 0;
	} else {
		be->health = 0;
	}
	return settle(b, be, now_ms, "health checks fail", change);
}

bool balancer_traffic_result(struct balancer *b, struct backend *be, bool ok, uint64_t now_ms,
			     struct balancer_change *change)
{
	if (ok) {
		be->passive_failures = 0;
		return false;
	}
	atomic_fetch_add_explicit(&be->failures, 1, memory_order_relaxed);
	if (!atomic_load(&be->up) || ++be->passive_failures < b->cfg.fall)
		return false;
	be->health = 0;		/* ejected: <rise> passing checks bring it back */
	return settle(b, be, now_ms, "requests to it fail", change);
}

size_t balancer_history(const struct balancer *b, struct balancer_event *out, size_t max)
{
	size_t n = b->nevents < BALANCER_HISTORY ? b->nevents : BALANCER_HISTORY;

	if (n > max)
		n = max;
	for (size_t k = 0; k < n; k++)
		out[k] = b->history[(b->nevents - 1 - k) % BALANCER_HISTORY];
	return n;
}

struct backend *balancer_find(struct balancer *b, const char *name)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->backends[i].name, name) == 0)
			return &b->backends[i];
	return NULL;
}

bool balancer_set_admin(struct balancer *b, struct backend *be, enum backend_admin admin,
			uint64_t now_ms, const char *why)
{
	if (atomic_load(&be->admin) == (int)admin)
		return false;
	atomic_store(&be->admin, (int)admin);
	if (admin == BACKEND_ENABLED) {
		be->up_since_ms = now_ms;	/* slow start again */
		be->current = 0;
		be->passive_failures = 0;
	}
	record(b, be, now_ms, balancer_state_name(be), why);
	return true;
}

const char *balancer_state_name(const struct backend *be)
{
	switch (atomic_load_explicit(&be->admin, memory_order_relaxed)) {
	case BACKEND_DRAINING:
		return atomic_load_explicit(&be->in_flight, memory_order_relaxed) ? "draining"
										    : "drained";
	case BACKEND_DISABLED:
		return "disabled";
	default:
		return atomic_load_explicit(&be->up, memory_order_relaxed) ? "up" : "down";
	}
}

/* balancer.h - which backend gets a fetch, and whether each backend is healthy.
 *
 * A pool of backends ("host:port", a weight) and a policy: round-robin (smooth weighted
 * round-robin, nginx's algorithm), least-conn (fewest fetches in flight for the weight),
 * hash (consistent hashing of the cache key: a URL sticks to one backend while it is
 * healthy, and when a backend leaves only its share of keys move) and random-two (two
 * backends at random, the less busy wins).
 *
 * Health is one integer per backend with hysteresis, as HAProxy keeps it: 0 .. rise-1 is
 * down, rise .. rise+fall-1 is up. A passing active check moves it up by one, a failing one
 * down by one, so a backend goes down after <fall> failures in a row and comes back after
 * <rise> successes; failures on live traffic (passive checks) eject it at once after <fall>
 * in a row. A backend that comes back gets its full weight gradually, over slow_start_ms.
 *
 * Threads: everything here runs on the upstream thread, which alone picks backends and
 * reports results, so the hot path takes no lock. The fields marked "atomic" may be read
 * from any thread (for status pages); nothing else may.
 */
#ifndef MTPS_BALANCER_H
#define MTPS_BALANCER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BALANCER_MAX_BACKENDS 64
#define BALANCER_MAX_WEIGHT 1000
#define BALANCER_MAX_NAME 272		/* "host:port" and its NUL */

enum balance_policy {
	BALANCE_ROUND_ROBIN = 0,
	BALANCE_LEAST_CONN,
	BALANCE_HASH,
	BALANCE_RANDOM_TWO,
};

/* The policy names by enum balance_policy, NULL-terminated (an option's choices). */
extern const char *const balance_policy_names[];

/* What an operator set through the admin listener, beside health: only an enabled, healthy
 * backend gets new fetches. */
enum backend_admin {
	BACKEND_ENABLED = 0,		/* in rotation while healthy */
	BACKEND_DRAINING,		/* no new fetches; those running finish */
	BACKEND_DISABLED,		/* no new fetches, health check results ignored */
};

/* "enabled", "draining", "disabled" by enum backend_admin, NULL-terminated. */
extern const char *const backend_admin_names[];

struct backend {
	char name[BALANCER_MAX_NAME];	/* "host:port", as configured */
	unsigned weight;		/* 1 .. BALANCER_MAX_WEIGHT */
	int health;			/* 0 .. rise+fall-1; up when >= rise */
	unsigned passive_failures;	/* failures on live traffic in a row */
	uint64_t up_since_ms;		/* when it last came up: slow start */
	long long current;		/* smooth weighted round-robin */
	atomic_bool up;			/* atomic: health >= rise */
	atomic_uint in_flight;		/* atomic: fetches running on it */
	atomic_uint_fast64_t requests;	/* atomic: fetches sent to it */
	atomic_uint_fast64_t failures;	/* atomic: fetches that failed on it */
	atomic_int admin;		/* atomic: enum backend_admin */
	atomic_uint_fast64_t errors;	/* atomic: attempts that failed (connect, timeout, 5xx) */
	atomic_uint_fast64_t retries;	/* atomic: failed attempts retried on another backend */
	unsigned checks_passed;		/* active checks passed in a row */
	unsigned checks_failed;		/* active checks failed in a row */
};

struct balancer_config {
	enum balance_policy policy;
	unsigned rise, fall;		/* >= 1 each */
	uint64_t slow_start_ms;		/* 0: full weight at once */
	uint64_t seed;			/* random-two's generator */
};

/* A state change for the log: what happened to which backend, and why. */
struct balancer_change {
	struct backend *backend;
	bool up;			/* its new state */
	const char *why;		/* static text */
};

struct balancer;

/* Parses a backend spec "HOST:PORT" or "HOST:PORT,weight=N" into <name> (HOST:PORT, at
 * most BALANCER_MAX_NAME bytes with the NUL) and *weight (1 when not given). Returns 0, or -EINVAL with the
 * reason worded into <err>. */
int balancer_parse_spec(const char *spec, char *name, size_t name_len, unsigned *weight,
			char *err, size_t errlen);

/* Creates a pool of <n> backends (names and weights from balancer_parse_spec()), all up.
 * Returns NULL when out of memory or n is 0 or above BALANCER_MAX_BACKENDS. */
struct balancer *balancer_new(const struct balancer_config *cfg, const char *const *names,
			      const unsigned *weights, size_t n);
void balancer_free(struct balancer *b);

/* Says whether <be> is one of <b>'s backends (a pointer check: after a reload, fetches may
 * still run on a backend of the pool that was replaced). */
bool balancer_owns(const struct balancer *b, const struct backend *be);

/* A reload: every backend of <to> whose name is also in <from> takes over its health, its
 * slow start and its request and failure counters (health is clamped into <to>'s rise and
 * fall, keeping up or down as it was), so that a reload neither revives a dead backend nor
 * resets the numbers. Backends new in <to> start up, as balancer_new() makes them. Runs on
 * the upstream thread, which owns both pools. Returns how many backends took over a state. */
size_t balancer_inherit(struct balancer *to, const struct balancer *from);

size_t balancer_count(const struct balancer *b);
struct backend *balancer_backend(struct balancer *b, size_t i);

/* Effective weights are in hundredths of a configured weight, so that slow start ramps
 * even a backend of weight 1. */
#define BALANCER_WEIGHT_SCALE 100

/* The weight a backend gets now, in BALANCER_WEIGHT_SCALE units: weight x 100, scaled down
 * during slow start (at least 1). */
unsigned balancer_effective_weight(const struct balancer *b, const struct backend *be,
				   uint64_t now_ms);

/* Picks a healthy backend for cache key <key> (used by the hash policy), skipping the
 * <nskip> backends in <skip> (those a retry already tried). Returns NULL when none is left.
 * The caller counts the fetch in be->in_flight itself. */
struct backend *balancer_pick(struct balancer *b, const char *key, size_t key_len,
			      uint64_t now_ms, struct backend *const *skip, size_t nskip);

/* Says whether a healthy backend outside <skip> is left (no state changes). */
bool balancer_available(const struct balancer *b, struct backend *const *skip, size_t nskip);

/* An active check's result. Returns true and fills *change when the backend's state
 * changed. */
bool balancer_check_result(struct balancer *b, struct backend *be, bool ok, uint64_t now_ms,
			   struct balancer_change *change);

/* A fetch's result on live traffic: <ok> false for a connect failure, a reset, a timeout or
 * a 5xx. After <fall> failures in a row the backend is ejected (down) at once. Returns true
 * and fills *change when its state changed. */
bool balancer_traffic_result(struct balancer *b, struct backend *be, bool ok, uint64_t now_ms,
			     struct balancer_change *change);

/* ---- the admin listener's view (upstream thread, like the rest) ------------------------ */

/* One state change, kept in a small ring for status pages. */
struct balancer_event {
	uint64_t at_ms;			/* the now_ms it happened at */
	size_t backend;			/* index in the pool */
	const char *state;		/* the new state: balancer_state_name()'s words */
	const char *why;		/* static text */
};

#define BALANCER_HISTORY 32		/* events kept */

/* The <max> most recent state changes into <out>, newest first. Returns how many. */
size_t balancer_history(const struct balancer *b, struct balancer_event *out, size_t max);

/* The backend named <name> ("host:port" as configured), or NULL. */
struct backend *balancer_find(struct balancer *b, const char *name);

/* Sets <be>'s admin state, recording the change at <now_ms> with <why> (static text).
 * Enabling starts its slow start again. Returns true when the state changed. */
bool balancer_set_admin(struct balancer *b, struct backend *be, enum backend_admin admin,
			uint64_t now_ms, const char *why);

/* One word for <be>'s state: "up", "down", "draining", "drained" (draining and nothing in
 * flight any more) or "disabled". Safe from any thread (reads atomics only). */
const char *balancer_state_name(const struct backend *be);

#endif

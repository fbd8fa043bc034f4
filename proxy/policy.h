/* policy.h - the caching decisions of a shared cache (RFC 9111, RFC 5861), as pure
 * functions over parsed fields and times: no locks, no I/O, no allocation, so they are tested
 * as tables (tests/unit/check_policy.c, each row citing its section).
 *
 * What is stored (policy_storable), for how long (policy_lifetime), whether a stored
 * response may answer a request as it is, stale, after validation or not at all
 * (policy_reuse, policy_stale_if_error), how a conditional request is answered from a stored
 * response (policy_not_modified), the secondary key of a Vary response (policy_vary_key) and
 * the URIs an unsafe request invalidates (policy_invalidation_key).
 */
#ifndef MTPS_POLICY_H
#define MTPS_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "headers.h"

/* RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31. */
#define POLICY_DELTA_MAX 2147483648LL

enum cc_flag {
	CC_NO_STORE = 1 << 0,
	CC_NO_CACHE = 1 << 1,		/* unqualified no-cache */
	CC_NO_CACHE_FIELDS = 1 << 2,	/* no-cache="field, ..." */
	CC_PRIVATE = 1 << 3,		/* private, qualified or not */
	CC_PUBLIC = 1 << 4,
	CC_MUST_REVALIDATE = 1 << 5,
	CC_PROXY_REVALIDATE = 1 << 6,
	CC_NO_TRANSFORM = 1 << 7,
	CC_IMMUTABLE = 1 << 8,
	CC_ONLY_IF_CACHED = 1 << 9,
	CC_MUST_UNDERSTAND = 1 << 10,
};

#define POLICY_FIELDS_MAX 128	/* bytes of a no-cache="..." field list kept */

/* The directives of one message's Cache-Control fields. Durations are seconds; -1 means
 * absent. A directive given twice keeps its most restrictive value: max-age and s-maxage
 * with two different values are 0 (stale, RFC 9111 §4.2.1), max-stale and the stale-*
 * extensions the smallest, min-fresh the largest. */
struct cache_control {
	unsigned flags;			/* enum cc_flag */
	/* no-cache="a, b": the field names, lower-case, comma-separated, no blanks. A list
	 * too long to keep turns into unqualified no-cache (CC_NO_CACHE). */
	char no_cache_fields[POLICY_FIELDS_MAX];
	long long max_age;
	long long s_maxage;
	long long max_stale;		/* request; POLICY_DELTA_MAX when given without a value */
	long long min_fresh;		/* request */
	long long stale_while_revalidate;	/* RFC 5861 */
	long long stale_if_error;		/* RFC 5861 */
};

void policy_cc_init(struct cache_control *cc);

/* Adds the directives of one Cache-Control field value (several fields: call once each).
 * Directive names are case-insensitive; arguments may be tokens or quoted strings; unknown
 * directives are ignored. A max-age or s-maxage whose argument is not a valid delta-seconds
 * counts as 0 (stale, RFC 9111 §4.2.1 - the most restrictive reading). */
void policy_cc_parse(struct cache_control *cc, const char *value);

/* What policy needs to know about a request. */
struct policy_request {
	bool get;			/* GET (HEAD is answered from GET's entry) */
	bool authorization;		/* carries Authorization (RFC 9111 §3.5) */
	struct cache_control cc;
};

/* What policy needs to know about a response, read from its fields by
 * policy_response_read(). */
struct policy_response {
	int status;
	struct cache_control cc;
	bool has_date;
	time_t date;
	int expires;			/* 0 absent, 1 valid, -1 present but invalid (stale) */
	time_t expires_at;
	bool has_last_modified;
	time_t last_modified;
	bool etag;			/* has an ETag */
	long long age;			/* the Age field, or -1 */
	bool vary;			/* has a Vary field */
	bool vary_star;			/* ...and it lists "*" */
	bool set_cookie;		/* has Set-Cookie */
	time_t response_time;		/* when it was received (our clock) */
};

/* The choices the RFC leaves to the cache, as configured. */
struct policy_config {
	bool refuse_set_cookie;		/* never store a response with Set-Cookie */
	long long heuristic_max;	/* cap of a heuristic lifetime, seconds */
};

/* Final statuses a cache may store with a heuristic lifetime (RFC 9110 §15.1). */
bool policy_heuristically_cacheable(int status);

/* Reads the caching-relevant fields of response <fields> with status <status>, received
 * at <response_time>. */
void policy_response_read(struct policy_response *r, int status,
			  const struct header_list *fields, time_t response_time);

/* Says whether a shared cache may store the response to <rq> (RFC 9111 §3): a GET, a final
 * status it understands, no no-store (unless must-understand), not private, Authorization
 * only with public, s-maxage or must-revalidate, not Vary: *, and either heuristically
 * cacheable or given explicit freshness or public. When it may not, *why names the rule,
 * for logs. Whether a response that is stale on arrival is worth keeping is the caller's
 * (see policy_worth_keeping()). */
bool policy_storable(const struct policy_config *cfg, const struct policy_request *rq,
		     const struct policy_response *r, const char **why);

/* The explicit freshness lifetime in seconds (RFC 9111 §4.2.1): s-maxage, else max-age,
 * else Expires minus Date (or minus the response time without a Date). 0 when stale from
 * the start; -1 when the response gives no explicit lifetime. */
long long policy_freshness_lifetime(const struct policy_response *r);

/* The lifetime used: the explicit one, else a heuristic (RFC 9111 §4.2.2) for heuristically
 * cacheable statuses or public responses: 10 % of the time since Last-Modified (as of Date,
 * or the response time), at most cfg->heuristic_max; else 0. */
long long policy_lifetime(const struct policy_config *cfg, const struct policy_response *r);

/* Says whether a storable response with lifetime <lifetime> and corrected initial age <age>
 * is worth keeping: fresh, or stale with a validator to revalidate it by. No-cache without
 * a validator is not: it could never be used. */
bool policy_worth_keeping(const struct policy_response *r, long long lifetime,
			  long long age);

/* corrected_initial_age of RFC 9111 §4.2.3, from the Age and Date fields and the times the
 * request was sent and the response received. */
long long policy_initial_age(const struct policy_response *r, time_t request_time);

/* current_age = corrected_initial_age + resident time (RFC 9111 §4.2.3). */
static inline long long policy_current_age(long long initial_age, time_t response_time,
					   time_t now)
{
	return initial_age + (now > response_time ? (long long)(now - response_time) : 0);
}

/* ---- reusing a stored response (RFC 9111 §4) ------------------------------------------- */

/* What reuse needs to know about a stored response. */
struct policy_stored {
	const struct cache_control *cc;	/* its Cache-Control */
	long long lifetime;		/* policy_lifetime() */
	long long age;			/* its current age, now */
	bool validator;			/* has ETag or Last-Modified */
};

enum policy_reuse {
	POLICY_FRESH = 0,	/* answer with it (§4.2) */
	POLICY_STALE,		/* answer with it stale: the request's max-stale allows (§4.2.4) */
	POLICY_STALE_REVALIDATE,/* answer with it stale and revalidate in the background
				 * (RFC 5861 stale-while-revalidate) */
	POLICY_VALIDATE,	/* send a conditional request first (§4.3.1) */
	POLICY_FETCH,		/* unusable: fetch anew */
};

/* Decides how a stored response may answer <rq> (RFC 9111 §4, §5.2.1, §5.2.2; RFC 5861 §3;
 * RFC 8246): request no-cache, max-age, min-fresh and max-stale, response no-cache,
 * must-revalidate, proxy-revalidate, s-maxage (no stale use), immutable (a fresh response
 * is used even when the request's max-age=0 asks for a reload), stale-while-revalidate. */
enum policy_reuse policy_reuse(const struct policy_request *rq, const struct policy_stored *s);

/* Says whether stale <s> may answer <rq> in place of an error (RFC 5861 §4): its staleness
 * is within the response's or request's stale-if-error, else within <default_s> (the
 * --stale-if-error default, 0 for none), and nothing forbids serving it stale. */
bool policy_stale_if_error(const struct policy_request *rq, const struct policy_stored *s,
			   long long default_s);

/* Says whether the response may be served stale at all: not must-revalidate,
 * proxy-revalidate or s-maxage (RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10). */
bool policy_may_serve_stale(const struct cache_control *cc);

/* The time-to-live Cache-Status reports: lifetime minus age (negative when stale). */
static inline long long policy_ttl(const struct policy_stored *s)
{
	return s->lifetime - s->age;
}

/* ---- conditional requests (RFC 9110 §13, RFC 9111 §4.3.2) ---------------------------- */

/* Weak comparison of the entity-tags in If-None-Match's <list> with <etag> ("*" matches
 * any). */
bool policy_etag_match(const char *list, const char *etag);

/* Says whether a GET or HEAD with If-None-Match <inm> and If-Modified-Since <ims> (NULL when
 * absent) is answered 304 from a stored 200 with <etag>, <last_modified> and <date> (NULL
 * when absent), received at <response_time>. If-None-Match, when present, decides alone;
 * an invalid If-Modified-Since is ignored. */
bool policy_not_modified(const char *inm, const char *ims, const char *etag,
			 const char *last_modified, const char *date, time_t response_time);

/* ---- Vary (RFC 9111 §4.1) ------------------------------------------------------------- */

/* Writes a request's value of field <name> (several fields joined with ", ") into <buf>
 * and returns buf, or NULL when the request has no such field. */
typedef const char *policy_field_fn(void *ctx, const char *name, char *buf, size_t len);

/* Normalises the Vary field value <vary> into <out>: field names lower-cased, sorted, each
 * once, comma-separated. Returns the length, 0 for none, -1 for "*" or when it does not fit. */
int policy_vary_names(const char *vary, char *out, size_t len);

/* Writes the secondary key of a request for normalised Vary names <names>: for each name,
 * "name=value\n" with the request's value normalised (blanks trimmed, runs of blanks one
 * space, none around commas), or "name\n" when the request lacks the field. Returns the
 * length, or -1 when it does not fit or a value is too long to be sure it was whole (4 KiB):
 * such a request neither matches nor stores a variant. */
int policy_vary_key(const char *names, policy_field_fn *get, void *ctx, char *out, size_t len);

/* ---- invalidation (RFC 9111 §4.4) ----------------------------------------------------- */

/* Turns a Location or Content-Location value <uri>, relative to <target> (origin-form) on
 * <host>, into the cache key "host path" it names. Returns false when it names another
 * host or scheme (not to be invalidated) or does not fit. */
bool policy_invalidation_key(const char *host, const char *target, const char *uri,
			     char *key, size_t len);

/* Says whether a response with <status> to an unsafe method invalidates (a non-error
 * status: 2xx or 3xx). */
static inline bool policy_invalidates(int status)
{
	return status >= 200 && status < 400;
}

#endif

/* policy.h - the caching decisions of a shared cache (RFC 9111), as pure functions over
 * parsed fields and times: no locks, no I/O, no allocation, so they are tested as tables.
 *
 * This first version stores only explicitly fresh responses and answers hits while they
 * are fresh; revalidation, heuristic freshness, Vary and the stale-* extensions come with
 * the RFC 9111 work (issue 4) and grow these same functions.
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

/* The directives of one message's Cache-Control fields. Durations are seconds; -1 means
 * absent. A directive given twice keeps its most restrictive value: the smallest, except
 * min-fresh, where the largest asks for more. */
struct cache_control {
	unsigned flags;			/* enum cc_flag */
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
	long long age;			/* the Age field, or -1 */
	bool vary;			/* has a Vary field */
	time_t response_time;		/* when it was received (our clock) */
};

/* Reads the caching-relevant fields of response <fields> with status <status>, received
 * at <response_time>. */
void policy_response_read(struct policy_response *r, int status,
			  const struct header_list *fields, time_t response_time);

/* Says whether a shared cache may store the response to <rq> (RFC 9111 §3). When it may
 * not, *why names the rule, for logs and X-Cache reasons. */
bool policy_storable(const struct policy_request *rq, const struct policy_response *r,
		     const char **why);

/* The freshness lifetime in seconds (RFC 9111 §4.2.1): s-maxage, else max-age, else
 * Expires minus Date (or minus the response time without a Date). 0 when stale from the
 * start; -1 when the response gives no explicit lifetime. */
long long policy_freshness_lifetime(const struct policy_response *r);

/* corrected_initial_age of RFC 9111 §4.2.3, from the Age and Date fields and the times the
 * request was sent and the response received. */
long long policy_initial_age(const struct policy_response *r, time_t request_time);

/* current_age = corrected_initial_age + resident time (RFC 9111 §4.2.3). */
static inline long long policy_current_age(long long initial_age, time_t response_time,
					   time_t now)
{
	return initial_age + (now > response_time ? (long long)(now - response_time) : 0);
}

#endif

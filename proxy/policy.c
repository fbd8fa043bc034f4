/* policy.c - RFC 9111 decisions for a shared cache, as pure functions (see policy.h). */
#include "config.h"

#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

void policy_cc_init(struct cache_control *cc)
{
	cc->flags = 0;
	cc->max_age = -1;
	cc->s_maxage = -1;
	cc->max_stale = -1;
	cc->min_fresh = -1;
	cc->stale_while_revalidate = -1;
	cc->stale_if_error = -1;
}

/* Parses delta-seconds (RFC 9111 §1.2.2): digits only. Returns -1 when invalid; values
 * too large become POLICY_DELTA_MAX. */
static long long delta_seconds(const char *s, size_t len)
{
	long long v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		if (v < POLICY_DELTA_MAX)
			v = v * 10 + (s[i] - '0');
	}
	return v > POLICY_DELTA_MAX ? POLICY_DELTA_MAX : v;
}

/* Keeps the smaller of two durations, -1 being absent. */
static void keep_min(long long *slot, long long v)
{
	if (*slot < 0 || v < *slot)
		*slot = v;
}

static const struct {
	const char *name;
	unsigned flag;
} flag_directives[] = {
	{ "no-store", CC_NO_STORE },
	{ "private", CC_PRIVATE },
	{ "public", CC_PUBLIC },
	{ "must-revalidate", CC_MUST_REVALIDATE },
	{ "proxy-revalidate", CC_PROXY_REVALIDATE },
	{ "no-transform", CC_NO_TRANSFORM },
	{ "immutable", CC_IMMUTABLE },
	{ "only-if-cached", CC_ONLY_IF_CACHED },
	{ "must-understand", CC_MUST_UNDERSTAND },
};

/* One directive: <name> with its argument <arg> (NULL when none; quotes removed). */
static void directive(struct cache_control *cc, const char *name, size_t nlen,
		      const char *arg, size_t alen)
{
#define IS(lit) (nlen == sizeof(lit) - 1 && strncasecmp(name, lit, nlen) == 0)
	long long v = arg ? delta_seconds(arg, alen) : -1;

	if (IS("max-age")) {
		keep_min(&cc->max_age, v < 0 ? 0 : v);
	} else if (IS("s-maxage")) {
		keep_min(&cc->s_maxage, v < 0 ? 0 : v);
	} else if (IS("max-stale")) {
		/* without a value the client accepts any staleness */
		if (arg == NULL)
			cc->max_stale = cc->max_stale < 0 ? POLICY_DELTA_MAX : cc->max_stale;
		else if (v >= 0)
			keep_min(&cc->max_stale, v);
	} else if (IS("min-fresh")) {
		if (v >= 0)
			cc->min_fresh = cc->min_fresh > v ? cc->min_fresh : v;
	} else if (IS("stale-while-revalidate")) {
		if (v >= 0)
			keep_min(&cc->stale_while_revalidate, v);
	} else if (IS("stale-if-error")) {
		if (v >= 0)
			keep_min(&cc->stale_if_error, v);
	} else if (IS("no-cache")) {
		cc->flags |= arg && alen > 0 ? CC_NO_CACHE_FIELDS : CC_NO_CACHE;
	} else {
		for (size_t i = 0; i < sizeof(flag_directives) / sizeof(flag_directives[0]); i++)
			if (strlen(flag_directives[i].name) == nlen &&
			    strncasecmp(name, flag_directives[i].name, nlen) == 0)
				cc->flags |= flag_directives[i].flag;
	}
#undef IS
}

void policy_cc_parse(struct cache_control *cc, const char *p)
{
	while (p && *p) {
		const char *name, *arg = NULL;
		size_t nlen, alen = 0;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		name = p;
		while (*p && *p != '=' && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		nlen = (size_t)(p - name);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '=') {
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == '"') {
				arg = ++p;
				while (*p && *p != '"') {
					if (*p == '\\' && p[1])
						p++;
					p++;
				}
				alen = (size_t)(p - arg);
				if (*p == '"')
					p++;
			} else {
				arg = p;
				while (*p && *p != ',' && *p != ' ' && *p != '\t')
					p++;
				alen = (size_t)(p - arg);
			}
		}
		if (nlen > 0)
			directive(cc, name, nlen, arg, alen);
		/* skip whatever is left of a malformed member */
		while (*p && *p != ',')
			p++;
	}
}

void policy_response_read(struct policy_response *r, int status,
			  const struct header_list *fields, time_t response_time)
{
	memset(r, 0, sizeof(*r));
	r->status = status;
	r->response_time = response_time;
	r->age = -1;
	policy_cc_init(&r->cc);
	for (size_t i = 0; i < fields->n; i++) {
		const char *name = fields->v[i].name, *value = fields->v[i].value;

		if (strcasecmp(name, "Cache-Control") == 0) {
			policy_cc_parse(&r->cc, value);
		} else if (strcasecmp(name, "Date") == 0) {
			r->has_date = http_date_parse(value, &r->date) == 0;
		} else if (strcasecmp(name, "Expires") == 0) {
			/* several Expires fields: the response is stale (§4.2.1) */
			if (r->expires != 0 || http_date_parse(value, &r->expires_at) != 0)
				r->expires = -1;
			else
				r->expires = 1;
		} else if (strcasecmp(name, "Age") == 0) {
			long long a = delta_seconds(value, strlen(value));

			if (a >= 0 && (r->age < 0 || a > r->age))
				r->age = a;
		} else if (strcasecmp(name, "Vary") == 0) {
			r->vary = true;
		}
	}
}

/* Final statuses this cache stores (RFC 9110 §15: those it understands; 206 and 304 are
 * not complete responses to a GET). */
static bool status_storable(int status)
{
	switch (status) {
	case 200: case 203: case 204: case 300: case 301: case 302: case 303: case 307:
	case 308: case 400: case 403: case 404: case 405: case 410: case 414: case 451:
	case 500: case 501: case 502: case 503: case 504:
		return true;
	default:
		return false;
	}
}

bool policy_storable(const struct policy_request *rq, const struct policy_response *r,
		     const char **why)
{
	const char *reason = NULL;

	if (!rq->get)
		reason = "request method is not GET";
	else if (rq->cc.flags & CC_NO_STORE)
		reason = "request has Cache-Control: no-store";
	else if (!status_storable(r->status))
		reason = "status code is not stored";
	else if (r->cc.flags & CC_NO_STORE)
		reason = "response has Cache-Control: no-store";
	else if (r->cc.flags & CC_PRIVATE)
		reason = "response has Cache-Control: private";
	else if (r->cc.flags & (CC_NO_CACHE | CC_NO_CACHE_FIELDS))
		reason = "response has Cache-Control: no-cache (revalidation not supported yet)";
	else if (rq->authorization && !(r->cc.flags & (CC_PUBLIC | CC_MUST_REVALIDATE)) &&
		 r->cc.s_maxage < 0)
		reason = "request has Authorization";
	else if (r->vary)
		reason = "response has Vary (variants not supported yet)";
	else if (policy_freshness_lifetime(r) <= 0)
		reason = "response is not explicitly fresh";
	if (why)
		*why = reason;
	return reason == NULL;
}

long long policy_freshness_lifetime(const struct policy_response *r)
{
	if (r->cc.s_maxage >= 0)
		return r->cc.s_maxage;
	if (r->cc.max_age >= 0)
		return r->cc.max_age;
	if (r->expires < 0)
		return 0;
	if (r->expires > 0) {
		time_t base = r->has_date ? r->date : r->response_time;

		return r->expires_at > base ? (long long)(r->expires_at - base) : 0;
	}
	return -1;
}

long long policy_initial_age(const struct policy_response *r, time_t request_time)
{
	time_t response_time = r->response_time;
	long long apparent = 0, corrected;

	if (r->has_date && response_time > r->date)
		apparent = (long long)(response_time - r->date);
	corrected = (r->age > 0 ? r->age : 0) +
		    (response_time > request_time ? (long long)(response_time - request_time) : 0);
	return apparent > corrected ? apparent : corrected;
}

/* policy.c - RFC 9111 decisions for a shared cache, as pure functions (see policy.h). */
#include "config.h"

#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
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
	cc->no_cache_fields[0] = '\0';
}

/* Adds the field names of a qualified no-cache to cc->no_cache_fields; a list that does
 * not fit becomes unqualified no-cache, the more restrictive reading. */
static void no_cache_fields(struct cache_control *cc, const char *arg, size_t alen)
{
	char *out = cc->no_cache_fields;
	size_t n = strlen(out);

	for (size_t i = 0; i < alen;) {
		size_t start, end;

		while (i < alen && (arg[i] == ',' || arg[i] == ' ' || arg[i] == '\t'))
			i++;
		start = i;
		while (i < alen && arg[i] != ',' && arg[i] != ' ' && arg[i] != '\t')
			i++;
		end = i;
		if (end == start)
			continue;
		if (n + (n > 0) + (end - start) + 1 > sizeof(cc->no_cache_fields)) {
			cc->flags |= CC_NO_CACHE | CC_NO_CACHE_FIELDS;
			return;
		}
		if (n > 0)
			out[n++] = ',';
		for (size_t k = start; k < end; k++)
			out[n++] = (char)tolower((unsigned char)arg[k]);
		out[n] = '\0';
	}
	if (n == 0)
		cc->flags |= CC_NO_CACHE;	/* names no field: the unqualified form */
	else
		cc->flags |= CC_NO_CACHE_FIELDS;
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

/* A freshness directive given twice with different values: RFC 9111 §4.2.1 lets a cache
 * use the first or consider the response stale; the stale reading is the safe one. */
static void keep_lifetime(long long *slot, long long v)
{
	if (*slot < 0)
		*slot = v;
	else if (*slot != v)
		*slot = 0;
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
		keep_lifetime(&cc->max_age, v < 0 ? 0 : v);
	} else if (IS("s-maxage")) {
		keep_lifetime(&cc->s_maxage, v < 0 ? 0 : v);
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
		if (arg && alen > 0) {
			no_cache_fields(cc, arg, alen);
		} else {
			cc->flags |= CC_NO_CACHE;
		}
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
		bool bad = false;	/* not token [ "=" ( token / quoted-string ) ] */

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		name = p;
		while (*p && *p != '=' && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		nlen = (size_t)(p - name);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '=') {
			bad = p > name + nlen;		/* no blanks before '=' (§5.2) */
			p++;
			if (*p == ' ' || *p == '\t')
				bad = true;		/* ...nor after it */
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
				else
					bad = true;		/* unterminated */
			} else {
				arg = p;
				while (*p && *p != ',' && *p != ' ' && *p != '\t')
					p++;
				alen = (size_t)(p - arg);
			}
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p && *p != ',')
				bad = true;			/* junk after the argument */
		}
		/* a malformed argument is an invalid one: max-age and s-maxage count as 0
		 * (§4.2.1), no-cache as unqualified, the others are ignored */
		if (nlen > 0)
			directive(cc, name, nlen, bad ? "" : arg, bad ? 0 : alen);
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
			if (headers_list_has(value, "*"))
				r->vary_star = true;
		} else if (strcasecmp(name, "Last-Modified") == 0) {
			r->has_last_modified = http_date_parse(value, &r->last_modified) == 0;
		} else if (strcasecmp(name, "ETag") == 0) {
			r->etag = true;
		} else if (strcasecmp(name, "Set-Cookie") == 0) {
			r->set_cookie = true;
		}
	}
}

/* Final statuses this cache understands and may store (RFC 9110 §15). 206 is not a
 * complete response (mtps keeps no ranges) and a 304 only updates (RFC 9111 §4.3.4). */
static bool status_understood(int status)
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

bool policy_heuristically_cacheable(int status)
{
	switch (status) {
	case 200: case 203: case 204: case 206: case 300: case 301: case 308: case 404:
	case 405: case 410: case 414: case 451: case 501:
		return true;		/* 451: RFC 7725 §3 */
	default:
		return false;
	}
}

bool policy_storable(const struct policy_config *cfg, const struct policy_request *rq,
		     const struct policy_response *r, const char **why)
{
	const char *reason = NULL;
	bool understood = status_understood(r->status);

	if (!rq->get)
		reason = "request method is not GET";
	else if (rq->cc.flags & CC_NO_STORE)
		reason = "request has Cache-Control: no-store";
	else if (!understood)
		reason = "status code is not stored";
	else if ((r->cc.flags & CC_NO_STORE) && !(r->cc.flags & CC_MUST_UNDERSTAND))
		reason = "response has Cache-Control: no-store";
	else if (r->cc.flags & CC_PRIVATE)
		reason = "response has Cache-Control: private";
	else if (rq->authorization && !(r->cc.flags & (CC_PUBLIC | CC_MUST_REVALIDATE)) &&
		 r->cc.s_maxage < 0)
		reason = "request has Authorization";
	else if (r->vary_star)
		reason = "response has Vary: *";
	else if (r->set_cookie && cfg->refuse_set_cookie)
		reason = "response has Set-Cookie (--set-cookie refuse)";
	else if (!policy_heuristically_cacheable(r->status) && !(r->cc.flags & CC_PUBLIC) &&
		 policy_freshness_lifetime(r) < 0)
		reason = "status code is stored only with explicit freshness";
	if (why)
		*why = reason;
	return reason == NULL;
}

long long policy_lifetime(const struct policy_config *cfg, const struct policy_response *r)
{
	long long explicit = policy_freshness_lifetime(r), since;
	time_t base;

	if (explicit >= 0)
		return explicit;
	if (!policy_heuristically_cacheable(r->status) && !(r->cc.flags & CC_PUBLIC))
		return 0;
	if (!r->has_last_modified)
		return 0;
	base = r->has_date ? r->date : r->response_time;
	if (base <= r->last_modified)
		return 0;
	since = (long long)(base - r->last_modified) / 10;
	return since < cfg->heuristic_max ? since : cfg->heuristic_max;
}

bool policy_worth_keeping(const struct policy_response *r, long long lifetime, long long age)
{
	bool validator = r->etag || r->has_last_modified;

	if (r->cc.flags & CC_NO_CACHE)
		return validator;
	return lifetime > age || validator;
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

/* ---- reuse ----------------------------------------------------------------------------- */

bool policy_may_serve_stale(const struct cache_control *cc)
{
	return !(cc->flags & (CC_MUST_REVALIDATE | CC_PROXY_REVALIDATE)) && cc->s_maxage < 0;
}

enum policy_reuse policy_reuse(const struct policy_request *rq, const struct policy_stored *s)
{
	const struct cache_control *q = &rq->cc, *cc = s->cc;
	enum policy_reuse check = s->validator ? POLICY_VALIDATE : POLICY_FETCH;
	bool fresh = s->age < s->lifetime;
	long long staleness = s->age - s->lifetime;

	if (q->flags & CC_NO_CACHE)
		return check;				/* §5.2.1.4 */
	if (cc->flags & CC_NO_CACHE)
		return check;				/* §5.2.2.4 */
	if (fresh && (cc->flags & CC_IMMUTABLE))
		return POLICY_FRESH;			/* RFC 8246 §2: no reload needed */
	if (q->max_age >= 0 && s->age > q->max_age)
		return check;				/* §5.2.1.1: "less than or equal" */
	if (fresh) {
		if (q->min_fresh >= 0 && s->lifetime - s->age < q->min_fresh)
			return check;			/* §5.2.1.3 */
		return POLICY_FRESH;
	}
	if (!policy_may_serve_stale(cc))
		return check;				/* §4.2.4 */
	if (q->max_stale >= 0 && staleness <= q->max_stale)
		return POLICY_STALE;			/* §5.2.1.2 */
	if (cc->stale_while_revalidate >= 0 && staleness <= cc->stale_while_revalidate)
		return POLICY_STALE_REVALIDATE;
	return check;
}

bool policy_stale_if_error(const struct policy_request *rq, const struct policy_stored *s,
			   long long default_s)
{
	long long staleness = s->age - s->lifetime, window = default_s;

	if (!policy_may_serve_stale(s->cc) || (s->cc->flags & CC_NO_CACHE))
		return false;
	if (s->cc->stale_if_error >= 0)
		window = s->cc->stale_if_error;
	if (rq->cc.stale_if_error >= 0)
		window = rq->cc.stale_if_error;		/* the client's wish wins */
	return staleness <= window && window > 0;
}

/* ---- conditional requests --------------------------------------------------------------- */

/* The opaque-tag of the entity-tag at <p> (weak prefix dropped), and the list separator
 * after it (RFC 9110 §8.8.3, §5.6.1): sets *tag and *len and returns the position of the next
 * member, "" at the end, or NULL when malformed. */
static const char *etag_next(const char *p, const char **tag, size_t *len)
{
	const char *q;

	while (*p == ' ' || *p == '\t')
		p++;
	if (p[0] == 'W' && p[1] == '/')
		p += 2;
	if (*p != '"')
		return NULL;
	q = strchr(p + 1, '"');
	if (q == NULL)
		return NULL;
	*tag = p + 1;
	*len = (size_t)(q - p - 1);
	for (p = q + 1; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0')
		return p;
	if (*p != ',')
		return NULL;		/* two tags need a comma between them */
	while (*p == ',' || *p == ' ' || *p == '\t')
		p++;
	return p;
}

bool policy_etag_match(const char *list, const char *etag)
{
	const char *want, *tag, *p = list;
	size_t want_len, len;
	bool match = false;

	while (*p == ' ' || *p == '\t')
		p++;
	if (p[0] == '*') {
		/* RFC 9110 §13.1.2: "*" alone, not in a list */
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		return *p == '\0';
	}
	if (etag == NULL || etag_next(etag, &want, &want_len) == NULL)
		return false;
	while (*p) {
		p = etag_next(p, &tag, &len);
		if (p == NULL)
			return false;		/* a malformed list matches nothing */
		if (len == want_len && memcmp(tag, want, len) == 0)
			match = true;		/* weak comparison, §8.8.3.2 */
	}
	return match;
}

bool policy_not_modified(const char *inm, const char *ims, const char *etag,
			 const char *last_modified, const char *date, time_t response_time)
{
	time_t since, t;

	if (inm)
		return policy_etag_match(inm, etag);	/* RFC 9110 §13.2.2 step 3 */
	if (ims == NULL || http_date_parse(ims, &since) != 0)
		return false;
	/* RFC 9111 §4.3.2: Last-Modified, else Date, else when it was received */
	if (last_modified && http_date_parse(last_modified, &t) == 0)
		return t <= since;
	if (date && http_date_parse(date, &t) == 0)
		return t <= since;
	return response_time <= since;
}

/* ---- Vary --------------------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int policy_vary_names(const char *vary, char *out, size_t len)
{
	char buf[1024], *names[64];
	size_t n = 0, used = 0;
	const char *p = vary;

	if (len == 0)
		return -1;
	out[0] = '\0';
	while (*p) {
		const char *start;
		size_t k;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		k = (size_t)(p - start);
		if (k == 0)
			continue;
		if (k == 1 && *start == '*')
			return -1;
		if (n == sizeof(names) / sizeof(names[0]) || used + k + 1 > sizeof(buf))
			return -1;
		names[n] = buf + used;
		for (size_t i = 0; i < k; i++)
			buf[used++] = (char)tolower((unsigned char)start[i]);
		buf[used++] = '\0';
		n++;
	}
	qsort(names, n, sizeof(names[0]), cmp_names);
	used = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(names[i]);

		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue;
		if (used + (used > 0) + k + 1 > len)
			return -1;
		if (used > 0)
			out[used++] = ',';
		memcpy(out + used, names[i], k + 1);
		used += k;
	}
	return (int)used;
}

/* Appends <v> normalised: blanks trimmed, runs of blanks one space, none around commas. */
static bool append_normalised(char *out, size_t len, size_t *used, const char *v)
{
	size_t n = *used;
	bool blank = false;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		char c = *v;

		if (c == ' ' || c == '\t') {
			blank = true;
			continue;
		}
		if (blank && c != ',' && n > *used && out[n - 1] != ',') {
			if (n + 1 >= len)
				return false;
			out[n++] = ' ';
		}
		blank = false;
		if (n + 1 >= len)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	*used = n;
	return true;
}

int policy_vary_key(const char *names, policy_field_fn *get, void *ctx, char *out, size_t len)
{
	char name[256], value[4096];
	size_t used = 0;
	const char *p = names;

	if (len == 0)
		return -1;
	out[0] = '\0';
	while (*p) {
		const char *end = strchr(p, ',');
		size_t k = end ? (size_t)(end - p) : strlen(p);
		const char *v;

		if (k >= sizeof(name) || used + k + 2 > len)
			return -1;
		memcpy(name, p, k);
		name[k] = '\0';
		memcpy(out + used, name, k);
		used += k;
		v = get(ctx, name, value, sizeof(value));
		if (v && strlen(v) >= sizeof(value) - 1)
			return -1;	/* it may have been cut: two values must never share a key */
		if (v) {
			out[used++] = '=';
			if (!append_normalised(out, len, &used, v))
				return -1;
		}
		if (used + 2 > len)
			return -1;
		out[used++] = '\n';
		out[used] = '\0';
		p += k;
		if (*p == ',')
			p++;
	}
	return (int)used;
}

/* ---- invalidation ------------------------------------------------------------------------- */

/* Says whether authority <a> (length <alen>) names host <host>: equal ignoring case, an
 * explicit default port (:80) being the same as none (RFC 9110 §4.2.3). */
static bool same_authority(const char *a, size_t alen, const char *host)
{
	size_t hlen = strlen(host);

	if (alen >= 3 && memcmp(a + alen - 3, ":80", 3) == 0)
		alen -= 3;
	if (hlen >= 3 && memcmp(host + hlen - 3, ":80", 3) == 0)
		hlen -= 3;
	return alen == hlen && strncasecmp(a, host, hlen) == 0;
}

/* RFC 3986 §5.2.4: removes "." and ".." segments of the path <in> (its first <n> bytes)
 * into <out>. Returns the length, or -1 when it does not fit. */
static int remove_dot_segments(const char *in, size_t n, char *out, size_t len)
{
	size_t o = 0;

	while (n > 0) {
		if (n >= 3 && memcmp(in, "../", 3) == 0) {
			in += 3, n -= 3;
		} else if (n >= 2 && memcmp(in, "./", 2) == 0) {
			in += 2, n -= 2;
		} else if (n >= 3 && memcmp(in, "/./", 3) == 0) {
			in += 2, n -= 2;
		} else if (n == 2 && memcmp(in, "/.", 2) == 0) {
			if (o + 1 >= len)
				return -1;
			out[o++] = '/';		/* "/." at the end is "/" */
			n = 0;
		} else if ((n >= 4 && memcmp(in, "/../", 4) == 0) ||
			   (n == 3 && memcmp(in, "/..", 3) == 0)) {
			bool last = n == 3;

			in += 3, n -= 3;
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;		/* the last segment and its '/' */
			if (last) {
				if (o + 1 >= len)
					return -1;
				out[o++] = '/';
			}
		} else if ((n == 1 && in[0] == '.') || (n == 2 && memcmp(in, "..", 2) == 0)) {
			n = 0;
		} else {
			size_t k = 1;

			while (k < n && in[k] != '/')
				k++;
			if (o + k >= len)
				return -1;
			memcpy(out + o, in, k);
			o += k, in += k, n -= k;
		}
	}
	out[o] = '\0';
	return (int)o;
}

bool policy_invalidation_key(const char *host, const char *target, const char *uri,
			     char *key, size_t len)
{
	size_t hlen = strlen(host), base_path = strcspn(target, "?#");
	char merged[8192], path[8192];
	const char *ref, *query;
	size_t plen;
	int n;

	while (*uri == ' ' || *uri == '\t')
		uri++;
	if (*uri == '\0' || hlen == 0)
		return false;
	if (strncasecmp(uri, "http://", 7) == 0 || strncmp(uri, "//", 2) == 0) {
		const char *auth = uri + (uri[0] == '/' ? 2 : 7);
		size_t alen = strcspn(auth, "/?#");

		if (!same_authority(auth, alen, host))
			return false;			/* another host: §4.4 */
		ref = auth + alen;
		if (*ref != '/') {
			/* an empty path is "/" */
			n = snprintf(merged, sizeof(merged), "/%.*s", (int)strcspn(ref, "#"), ref);
			ref = merged;
		}
	} else if (strcspn(uri, ":") < strcspn(uri, "/?#")) {
		return false;				/* another scheme */
	} else {
		ref = uri;
	}
	/* RFC 3986 §5.2.2 with the target as base: a path-absolute reference as it is, an
	 * empty path keeps the base's (a lone query replaces the base's query), a relative
	 * path merges with the base's directory (§5.2.3) */
	plen = strcspn(ref, "?#");
	query = ref + plen;
	if (ref[0] == '/') {
		n = remove_dot_segments(ref, plen, path, sizeof(path));
	} else if (plen == 0) {
		n = remove_dot_segments(target, base_path, path, sizeof(path));
		if (*query != '?')
			query = target + base_path;	/* "#frag" alone: the base itself */
	} else {
		size_t dir = base_path;

		while (dir > 0 && target[dir - 1] != '/')
			dir--;
		n = snprintf(merged, sizeof(merged), "%.*s%.*s", (int)dir, target, (int)plen, ref);
		if (n < 0 || (size_t)n >= sizeof(merged))
			return false;
		n = remove_dot_segments(merged, (size_t)n, path, sizeof(path));
	}
	if (n < 0)
		return false;
	n = snprintf(key, len, "%s %s%s%.*s", host, path[0] == '/' ? "" : "/", path,
		     (int)strcspn(query, "#"), query);
	if (n < 0 || (size_t)n >= len)
		return false;
	for (size_t i = 0; i < hlen; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
	return true;
}

/* Integration tests: mtps-proxy as a shared cache (RFC 9111, RFC 5861, RFC 9211), seen from
 * outside. Each test starts its own scripted origin (tests/helpers/script_origin.h: exactly
 * the status, fields and body the test sets per path, request counts, the last request's
 * fields) and its own proxy in front of it, so no test sees another's cache. A test is
 * named after the rule it checks and cites the section. Responses are made stale without
 * waiting by an old Date or an Age field; one test lets a second of wall clock pass.
 *
 * What "reached the origin" means is always read from the origin's request counts, never
 * from the proxy's own headers: X-Cache and Cache-Status are checked separately. */
#include "config.h"

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "check_main.h"
#include "http_client.h"
#include "proc.h"
#include "script_origin.h"

#define TIMEOUT_MS 60000	/* generous bounds, never waits: servers may run under valgrind */
#define DAY 86400L

/* A NULL-terminated list of request fields. */
#define H(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* ---- formatting ------------------------------------------------------------------------- */

/* printf into one of 16 rotating static buffers. */
static const char *fmt(const char *f, ...)
{
	static char bufs[16][4096];
	static unsigned next;
	char *b = bufs[next++ % 16];
	va_list ap;

	va_start(ap, f);
	vsnprintf(b, sizeof(bufs[0]), f, ap);
	va_end(ap);
	return b;
}

/* An IMF-fixdate <offset> seconds from now (negative: in the past). */
static const char *date_at(long offset)
{
	char d[64];

	return fmt("%s", so_http_date(offset, d, sizeof(d)));
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- the fixture: a scripted origin and a proxy in front of it -------------------------- */

struct fx {
	struct script_origin *o;
	struct proc p;
};

static void step(struct fx *f, const char *method, const char *path, const char *const *h,
		 long status, const char *xcache, const char *body, struct http_reply *keep);

/* Starts a scripted origin and a proxy in front of it, with <extra> arguments (may be NULL). */
static void fx_start(struct fx *f, const char *const *extra)
{
	static const char *const args[] = { "--threads", "4", "--upstream-timeout", "20", NULL };

	f->o = so_start();
	so_proxy_start(f->o, &f->p, args, extra);
}

/* fx_start(), with /s answering <status>, <fields> and "s########". */
static void fx_start_route(struct fx *f, const char *const *extra, int status,
			   const char *fields)
{
	fx_start(f, extra);
	so_set(f->o, "/s", status, fields, "s########");
}

/* fx_start_route() with 200, then a first GET /s: a MISS, "s00000001". */
static void fx_start_fetched(struct fx *f, const char *const *extra, const char *fields)
{
	fx_start_route(f, extra, 200, fields);
	step(f, "GET", "/s", NULL, 200, "MISS", "s00000001", NULL);
}

static void fx_stop(struct fx *f)
{
	so_hold(f->o, false);
	ck_assert_int_eq(proc_stop(&f->p, SIGTERM, TIMEOUT_MS), 0);
	so_free(f->o);
}

static void req(struct fx *f, const char *method, const char *path, const char *const *h,
		struct http_reply *r)
{
	const char *body = strcmp(method, "GET") && strcmp(method, "HEAD") ? "{}" : NULL;
	int ret = http_request(method, proc_url(&f->p, path), h, body, body ? 2 : 0, r);

	ck_assert_msg(ret == 0, "%s %s: curl error %d", method, path, r->curl_code);
}

static int header_count(const struct http_reply *r, const char *name)
{
	int n = 0;

	for (size_t i = 0; i < r->nheaders; i++)
		n += strcasecmp(r->headers[i].name, name) == 0;
	return n;
}

static const char *hdr(const struct http_reply *r, const char *name)
{
	const char *v = http_reply_header(r, name);

	return v ? v : "(none)";
}

/* Whether X-Cache is one of the '|'-separated <want>. */
static bool x_cache_is(const struct http_reply *r, const char *want)
{
	const char *got = http_reply_header(r, "X-Cache");
	size_t glen;

	if (got == NULL)
		return false;
	glen = strlen(got);
	for (const char *p = want; *p;) {
		const char *e = strchr(p, '|');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == glen && strncmp(p, got, n) == 0)
			return true;
		p += n + (e != NULL);
	}
	return false;
}

/* One request through the proxy, checked: <status>, X-Cache among <xcache> ("A|B") and
 * <body> when not NULL. The reply goes to *keep (the caller frees it) or is freed. */
static void step(struct fx *f, const char *method, const char *path, const char *const *h,
		 long status, const char *xcache, const char *body, struct http_reply *keep)
{
	struct http_reply r;

	req(f, method, path, h, &r);
	ck_assert_msg(r.status == status, "%s %s%s%s: status %ld, want %ld (X-Cache %s, "
		      "Cache-Status %s, body %.80s)", method, path, h ? " with " : "",
		      h ? h[0] : "", r.status, status, hdr(&r, "X-Cache"),
		      hdr(&r, "Cache-Status"), r.body);
	if (xcache)
		ck_assert_msg(x_cache_is(&r, xcache), "%s %s%s%s: X-Cache %s, want %s "
			      "(Cache-Status %s, Age %s, Date %s; the origin saw %u requests for "
			      "it)", method, path, h ? " with " : "", h ? h[0] : "",
			      hdr(&r, "X-Cache"), xcache, hdr(&r, "Cache-Status"), hdr(&r, "Age"),
			      hdr(&r, "Date"), so_count(f->o, path));
	if (body)
		ck_assert_msg(strcmp(r.body, body) == 0, "%s %s: body \"%.80s\", want \"%s\" "
			      "(X-Cache %s)", method, path, r.body, body, hdr(&r, "X-Cache"));
	if (keep)
		*keep = r;
	else
		http_reply_free(&r);
}

static void expect_count(struct fx *f, const char *path, unsigned want, const char *what)
{
	unsigned got = so_count(f->o, path);

	ck_assert_msg(got == want, "%s: the origin saw %u requests for %s, want %u", what, got,
		      path, want);
}

/* What the second of two GETs must be: a HIT of what the first stored... */
#define STORED "HIT"
/* ...or (any other X-Cache set) a request that reached the origin again. */
#define NOT_STORED "MISS|BYPASS"

/* GET <path> (with <h>) twice: a MISS that reaches the origin, then a HIT that does not;
 * both <status> and <body> (when not NULL). The HIT goes to *hit (the caller frees it) when
 * not NULL. */
static void expect_stored(struct fx *f, const char *path, const char *const *h, long status,
			  const char *body, const char *what, struct http_reply *hit)
{
	unsigned before = so_count(f->o, path);

	step(f, "GET", path, h, status, "MISS", body, NULL);
	step(f, "GET", path, h, status, STORED, body, hit);
	expect_count(f, path, before + 1, what);
}

/* GET <path> twice, both reaching the origin: a MISS with the body "<tag>" and the serial
 * of the request, then one whose X-Cache is among <again> with the next serial. */
static void expect_not_stored(struct fx *f, const char *path, long status, const char *tag,
			      const char *again, const char *what)
{
	unsigned before = so_count(f->o, path);

	step(f, "GET", path, NULL, status, "MISS", fmt("%s%08u", tag, before + 1), NULL);
	step(f, "GET", path, NULL, status, again, fmt("%s%08u", tag, before + 2), NULL);
	expect_count(f, path, before + 2, what);
}

/* A proxy (with <args>) in front of an origin whose /s answers <status> and <fields>; GET /s
 * twice: the second is <again>, STORED or not (NOT_STORED, or another X-Cache set). */
static void fetch_twice(const char *const *args, int status, const char *fields,
			const char *again)
{
	bool no_body = status == 204;
	struct fx f;

	fx_start_route(&f, args, status, fields);
	if (strcmp(again, STORED) == 0)
		expect_stored(&f, "/s", NULL, status, no_body ? "" : "s00000001", fields, NULL);
	else
		expect_not_stored(&f, "/s", status, "s", again, fields);
	fx_stop(&f);
}

/* GETs <path> until a HIT comes (a background fetch landed), into *r. Until then, each
 * answer is STALE with <stale_body> when that is not NULL. */
static void poll_until_hit(struct fx *f, const char *path, const char *stale_body,
			   struct http_reply *r)
{
	for (int i = 0;; i++) {
		req(f, "GET", path, NULL, r);
		if (x_cache_is(r, "HIT"))
			return;
		if (stale_body)
			ck_assert_msg(x_cache_is(r, "STALE") && strcmp(r->body, stale_body) == 0,
				      "while revalidating: X-Cache %s, body %s", hdr(r, "X-Cache"),
				      r->body);
		ck_assert_msg(i < 1000, "the background revalidation never landed");
		http_reply_free(r);
		nap_ms(10);
	}
}

/* GET /s with <h>: a HIT of "s00000001"; the origin still saw one request for /s. */
static void expect_hit(struct fx *f, const char *const *h, const char *what)
{
	step(f, "GET", "/s", h, 200, "HIT", "s00000001", NULL);
	expect_count(f, "/s", 1, what);
}

/* GET /s with <h>: 200 (<body> when not NULL), and the request reached the origin: it saw
 * <count> for /s after it. */
static void expect_forwarded(struct fx *f, const char *const *h, const char *body,
			     unsigned count, const char *what)
{
	step(f, "GET", "/s", h, 200, NULL, body, NULL);
	expect_count(f, "/s", count, what);
}

/* Holds the origin's answers (so_hold()) and adds <n> GET <path> to a new batch of
 * concurrent requests, for the caller to run and free. */
static struct http_batch *held_batch(struct fx *f, const char *path, int n)
{
	struct http_batch *b = http_batch_new();

	so_hold(f->o, true);
	for (int i = 0; i < n; i++)
		http_batch_add(b, "GET", proc_url(&f->p, path), NULL, NULL);
	return b;
}

/* GET /s: the error reaches the client, a status in lo..hi (no stale response). */
static void expect_error_status(struct fx *f, long lo, long hi, const char *what)
{
	struct http_reply r;

	req(f, "GET", "/s", NULL, &r);
	ck_assert_msg(r.status >= lo && r.status <= hi, "%s: %ld (X-Cache %s, body %.40s)", what,
		      r.status, hdr(&r, "X-Cache"), r.body);
	http_reply_free(&r);
}

/* ---- Cache-Status (RFC 9211), parsed loosely ---------------------------------------------- */

/* Our cache's member of Cache-Status (the last one, RFC 9211 §2), its parameters split on
 * ';' and trimmed: cs[0] is the cache name. Returns how many, 0 without the field. */
static int cache_status(const struct http_reply *r, char cs[16][256])
{
	const char *v = http_reply_header(r, "Cache-Status"), *start;
	bool quoted = false;
	int n = 0;

	if (v == NULL)
		return 0;
	start = v;
	for (const char *p = v; *p; p++) {	/* the last member: after the last bare comma */
		if (*p == '"')
			quoted = !quoted;
		else if (*p == ',' && !quoted)
			start = p + 1;
	}
	quoted = false;
	for (const char *p = start; n < 16;) {
		const char *e = p;
		size_t len;

		while (*e && (*e != ';' || quoted)) {
			if (*e == '"')
				quoted = !quoted;
			e++;
		}
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		len = (size_t)(e - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		snprintf(cs[n++], 256, "%.*s", (int)len, p);
		if (*e == '\0')
			break;
		p = e + 1;
	}
	return n;
}

/* The value of parameter <key> ("" for a bare one), or NULL when absent. */
static const char *cs_param(const struct http_reply *r, const char *key)
{
	static char cs[16][256];
	int n = cache_status(r, cs);
	size_t klen = strlen(key);

	for (int i = 1; i < n; i++) {
		if (strncasecmp(cs[i], key, klen) != 0)
			continue;
		if (cs[i][klen] == '\0')
			return "";
		if (cs[i][klen] == '=')
			return cs[i] + klen + 1;
	}
	return NULL;
}

static void expect_cs(const struct http_reply *r, const char *key, const char *value)
{
	const char *got = cs_param(r, key);

	if (value == NULL)
		ck_assert_msg(got == NULL, "Cache-Status \"%s\" has %s", hdr(r, "Cache-Status"),
			      key);
	else
		ck_assert_msg(got && strcmp(got, value) == 0, "Cache-Status \"%s\": %s is %s, "
			      "want %s", hdr(r, "Cache-Status"), key, got ? got : "absent", value);
}

/* Our cache's member of Cache-Status is named <name>. */
static void expect_cs_name(const struct http_reply *r, const char *name)
{
	char cs[16][256];

	ck_assert_msg(cache_status(r, cs) > 0 && strcmp(cs[0], name) == 0,
		      "Cache-Status \"%s\", want the cache %s", hdr(r, "Cache-Status"), name);
}

/* The ttl parameter, which must be there. */
static long cs_ttl(const struct http_reply *r)
{
	const char *t = cs_param(r, "ttl");
	char *end;
	long v;

	ck_assert_msg(t && *t, "Cache-Status \"%s\" has no ttl", hdr(r, "Cache-Status"));
	v = strtol(t, &end, 10);
	ck_assert_msg(*end == '\0', "Cache-Status ttl \"%s\"", t);
	return v;
}

/* Seconds a slow run (valgrind) may add to ages and take from ttls. */
static long slack(void)
{
	return proc_wrapped() ? 30 : 0;
}

static void expect_ttl(const struct http_reply *r, long lo, long hi)
{
	long ttl = cs_ttl(r);

	lo -= slack();
	ck_assert_msg(ttl >= lo && ttl <= hi, "Cache-Status \"%s\": ttl %ld, want %ld..%ld",
		      hdr(r, "Cache-Status"), ttl, lo, hi);
}

/* The Age field of a hit: exactly one, a number in lo..hi. */
static void expect_age(const struct http_reply *r, long lo, long hi)
{
	const char *a = http_reply_header(r, "Age");
	char *end;
	long v;

	hi += slack();
	ck_assert_msg(header_count(r, "Age") == 1, "%d Age fields", header_count(r, "Age"));
	v = strtol(a, &end, 10);
	ck_assert_msg(*a && *end == '\0' && v >= lo && v <= hi, "Age \"%s\", want %ld..%ld", a,
		      lo, hi);
}

/* Where a hit's Cache-Status ttl and Age must lie; no Age check when age_hi < 0. */
struct hit_want {
	long ttl_lo, ttl_hi, age_lo, age_hi;
};

#define TTL(lo, hi) ((struct hit_want){ (lo), (hi), 0, -1 })
#define TTL_AGE(lo, hi, alo, ahi) ((struct hit_want){ (lo), (hi), (alo), (ahi) })

/* expect_stored() for GET <path> (body <body>), its HIT as <want> says. */
static void expect_fresh(struct fx *f, const char *path, const char *body, struct hit_want want)
{
	struct http_reply r;

	expect_stored(f, path, NULL, 200, body, path, &r);
	expect_ttl(&r, want.ttl_lo, want.ttl_hi);
	if (want.age_hi >= 0)
		expect_age(&r, want.age_lo, want.age_hi);
	http_reply_free(&r);
}

/* A proxy (with <args>) in front of an origin whose /s answers 200 and <fresh>: stored,
 * its HIT as <want> says; and, when <unusable> is not NULL, whose /z answers 200 and
 * <unusable>: not stored. */
static void fresh_and_unusable(const char *const *args, const char *fresh, struct hit_want want,
			       const char *unusable)
{
	struct fx f;

	fx_start_route(&f, args, 200, fresh);
	expect_fresh(&f, "/s", "s00000001", want);
	if (unusable) {
		so_set(f.o, "/z", 200, unusable, "z########");
		expect_not_stored(&f, "/z", 200, "z", NOT_STORED, unusable);
	}
	fx_stop(&f);
}

/* A stored response that is already stale, with a validator: max-age=10 and a Date 30 s
 * ago, ETag "v1". <cc> is its whole Cache-Control value. */
static const char *stale_fields(const char *cc)
{
	return fmt("Cache-Control: %s\r\nETag: \"v1\"\r\nDate: %s\r\nX-Version: 1\r\n", cc,
		   date_at(-30));
}

/* The fields of a 304 that makes the response with ETag "v1" fresh for <max_age> s. */
static const char *fields_304(int max_age)
{
	return fmt("Cache-Control: max-age=%d\r\nETag: \"v1\"\r\n", max_age);
}

/* fx_start() with /s stale_fields(<cc>), stored by a first GET (a MISS, "s00000001"); a
 * revalidation gets a 304 with fields_304(<max_age_304>), or a 200 when it is 0. */
static void fx_start_stale(struct fx *f, const char *const *extra, const char *cc,
			   int max_age_304)
{
	fx_start_route(f, extra, 200, stale_fields(cc));
	if (max_age_304)
		so_set_304(f->o, "/s", "\"v1\"", NULL, fields_304(max_age_304));
	step(f, "GET", "/s", NULL, 200, "MISS", "s00000001", NULL);
}

/* =========================================================================================
 * §3 Storing responses in caches
 * ========================================================================================= */

static const int heuristic_statuses[] = { 200, 203, 204, 300, 301, 308, 404, 405, 410, 414,
					  501 };

/* §3, §4.2.2: a heuristically cacheable status with Last-Modified and no explicit
 * freshness is stored (heuristic freshness) and the next GET is a HIT. */
START_TEST(test_store_heuristically_cacheable_status)
{
	int status = heuristic_statuses[_i];

	fetch_twice(NULL, status, fmt("Last-Modified: %s\r\nLocation: /elsewhere\r\n",
				      date_at(-10 * DAY)), STORED);
}
END_TEST

static const int explicit_statuses[] = { 200, 203, 204, 300, 301, 302, 307, 308, 404, 410,
					 500 };

/* §3: any final status with explicit freshness (max-age) is stored. */
START_TEST(test_store_explicit_freshness_any_status)
{
	fetch_twice(NULL, explicit_statuses[_i], "Cache-Control: max-age=60\r\n"
		    "Location: /elsewhere\r\n", STORED);
}
END_TEST

static const int not_heuristic_statuses[] = { 302, 303, 307, 500, 503 };

/* §3, §4.2.2: statuses that are not heuristically cacheable are not stored on the strength
 * of Last-Modified alone (no heuristic freshness for them). */
START_TEST(test_heuristic_not_for_302)
{
	fetch_twice(NULL, not_heuristic_statuses[_i], fmt("Last-Modified: %s\r\n"
		    "Location: /elsewhere\r\n", date_at(-10 * DAY)), NOT_STORED);
}
END_TEST

/* §3, §4.2.2: "public" makes a response heuristically cacheable whatever its status. */
START_TEST(test_store_public_heuristic_302)
{
	fetch_twice(NULL, 302, fmt("Cache-Control: public\r\nLast-Modified: %s\r\n"
				   "Location: /elsewhere\r\n", date_at(-10 * DAY)), STORED);
}
END_TEST

/* §3.4 (contract): mtps never stores 206 Partial Content. */
START_TEST(test_store_206_never)
{
	fetch_twice(NULL, 206, "Cache-Control: max-age=60\r\nContent-Range: bytes 0-8/100\r\n",
		    NOT_STORED);
}
END_TEST

static const char *const never_stored_cc[] = {
	"no-store, max-age=60",
	"max-age=60, no-store",
	"public, no-store, max-age=60",
	"private, max-age=60",
	"private=\"X-User\", max-age=60",
	"s-maxage=60, private",
	"max-age=60\r\nCache-Control: private",
};

/* §3, §5.2.2.5 no-store, §5.2.2.7 private (qualified or not: mtps stores neither). */
START_TEST(test_store_no_store_private)
{
	fetch_twice(NULL, 200, fmt("Cache-Control: %s\r\nX-User: alice\r\n", never_stored_cc[_i]),
		    NOT_STORED);
}
END_TEST

/* §5.2.2.3: must-understand: a cache that understands the status may store the response and
 * ignore no-store (200); one whose status it does not know (299) is not stored. */
START_TEST(test_store_must_understand)
{
	const char *cc = "Cache-Control: must-understand, no-store, max-age=60\r\n";
	struct fx f;

	fx_start_route(&f, NULL, 200, cc);
	so_set(f.o, "/u", 299, cc, "u########");
	expect_stored(&f, "/s", NULL, 200, "s00000001", "must-understand, 200", NULL);
	expect_not_stored(&f, "/u", 299, "u", NOT_STORED, "must-understand, 299");
	fx_stop(&f);
}
END_TEST

/* mtps-proxy(8): a HEAD that finds nothing usable is forwarded as a HEAD, and its response
 * is not stored (it has no body to store). */
START_TEST(test_store_head_miss_not_stored)
{
	char line[128];
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	step(&f, "HEAD", "/s", NULL, 200, "MISS", "", NULL);
	so_last_line(f.o, "/s", line, sizeof(line));
	ck_assert_str_eq(line, "HEAD /s HTTP/1.1");
	step(&f, "GET", "/s", NULL, 200, "MISS", "s00000002", NULL);
	step(&f, "HEAD", "/s", NULL, 200, "HIT", "", NULL);
	expect_count(&f, "/s", 2, "HEAD, then GET");
	fx_stop(&f);
}
END_TEST

/* §3.5: a response to a request with Authorization is not stored by a shared cache without
 * public, s-maxage or must-revalidate - max-age alone is not enough. */
START_TEST(test_store_authorization_refused)
{
	const char *const *auth = H("Authorization: Basic dTpw");
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	step(&f, "GET", "/s", auth, 200, NULL, "s00000001", NULL);
	step(&f, "GET", "/s", auth, 200, NULL, "s00000002", NULL);
	/* §3.5 restricts what is stored, not what answers: mtps-proxy(8) serves the response
	 * stored for a request without Authorization to one with it */
	expect_stored(&f, "/s", NULL, 200, "s00000003", "Authorization with max-age only", NULL);
	step(&f, "GET", "/s", auth, 200, "HIT", "s00000003", NULL);
	fx_stop(&f);
}
END_TEST

static const char *const auth_ok_cc[] = {
	"public, max-age=60",
	"s-maxage=60",
	"must-revalidate, max-age=60",
};

/* §3.5: with public, s-maxage or must-revalidate it is stored and served to later requests,
 * with or without Authorization. */
START_TEST(test_store_authorization_allowed)
{
	const char *const *auth = H("Authorization: Basic dTpw");
	struct fx f;

	fx_start_route(&f, NULL, 200, fmt("Cache-Control: %s\r\n", auth_ok_cc[_i]));
	expect_stored(&f, "/s", auth, 200, "s00000001", auth_ok_cc[_i], NULL);
	step(&f, "GET", "/s", NULL, 200, "HIT", "s00000001", NULL);
	expect_count(&f, "/s", 1, auth_ok_cc[_i]);
	fx_stop(&f);
}
END_TEST

/* §3.1 and contract (--set-cookie store, the default): a response with Set-Cookie is stored
 * (nothing in RFC 9111 forbids it) and replayed with its Set-Cookie. */
START_TEST(test_store_set_cookie_default)
{
	struct http_reply r;
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\nSet-Cookie: id=1; Path=/\r\n");
	expect_stored(&f, "/s", NULL, 200, "s00000001", "Set-Cookie, stored", &r);
	ck_assert_str_eq(hdr(&r, "Set-Cookie"), "id=1; Path=/");
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* Contract: --set-cookie refuse never stores a response with Set-Cookie; others still are. */
START_TEST(test_store_set_cookie_refuse)
{
	struct fx f;

	fx_start_route(&f, H("--set-cookie", "refuse"), 200,
		       "Cache-Control: max-age=60\r\nSet-Cookie: id=1\r\n");
	so_set(f.o, "/plain", 200, "Cache-Control: max-age=60\r\n", "p########");
	expect_not_stored(&f, "/s", 200, "s", NOT_STORED, "Set-Cookie with --set-cookie refuse");
	expect_stored(&f, "/plain", NULL, 200, "p00000001", "no Set-Cookie", NULL);
	fx_stop(&f);
}
END_TEST

/* §3.3: an incomplete response (body cut by the origin) is not stored as if complete. */
START_TEST(test_store_cut_body_never)
{
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60\r\n", "0123456789");
	so_set_cut(f.o, "/s", 10);
	ck_assert_msg(http_request("GET", proc_url(&f.p, "/s"), NULL, NULL, 0, &r) != 0,
		      "a cut body arrived as complete: %ld, %zu bytes", r.status, r.len);
	http_reply_free(&r);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60\r\n", "whole");
	expect_stored(&f, "/s", NULL, 200, "whole", "after a cut body", NULL);
	fx_stop(&f);
}
END_TEST

/* §3 (contract): only GET responses are stored; HEAD is answered from the stored GET. */
START_TEST(test_store_get_only_head_from_get)
{
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "POST /s", 200, "Cache-Control: max-age=60\r\n", "post########");
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60\r\nX-Kind: get\r\n", "get########");
	step(&f, "POST", "/s", NULL, 200, NULL, NULL, NULL);
	expect_stored(&f, "/s", NULL, 200, "get00000002", "GET after POST", NULL);
	step(&f, "HEAD", "/s", NULL, 200, "HIT", "", &r);
	ck_assert_str_eq(hdr(&r, "X-Kind"), "get");
	http_reply_free(&r);
	expect_count(&f, "GET /s", 1, "GET after POST");
	expect_count(&f, "HEAD /s", 0, "HEAD after a stored GET");
	fx_stop(&f);
}
END_TEST

/* §4.2 / contract: a response already stale on arrival and without a validator cannot be
 * used, so it is not stored: both GETs reach the origin. */
START_TEST(test_store_stale_on_arrival_without_validator)
{
	fetch_twice(NULL, 200, fmt("Cache-Control: max-age=10\r\nDate: %s\r\n", date_at(-30)),
		    NOT_STORED);
}
END_TEST

/* §2 (contract): the cache key is the lower-cased Host plus the target: the Host's case
 * does not matter, another Host is another entry, and so is another query. */
START_TEST(test_store_key_host_and_target)
{
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	so_set(f.o, "/s?a=1", 200, "Cache-Control: max-age=60\r\n", "q########");
	step(&f, "GET", "/s", H("Host: WWW.Example.TEST"), 200, "MISS", "s00000001", NULL);
	step(&f, "GET", "/s", H("Host: www.example.test"), 200, "HIT", "s00000001", NULL);
	step(&f, "GET", "/s", H("Host: other.example.test"), 200, "MISS", "s00000002", NULL);
	step(&f, "GET", "/s?a=1", H("Host: www.example.test"), 200, "MISS", "q00000001", NULL);
	step(&f, "GET", "/s", H("Host: other.example.test"), 200, "HIT", "s00000002", NULL);
	expect_count(&f, "/s", 2, "two hosts");
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * §4.2 Freshness
 * ========================================================================================= */

/* §4.2.1: s-maxage wins over max-age in a shared cache. */
START_TEST(test_freshness_s_maxage_over_max_age)
{
	fresh_and_unusable(NULL, "Cache-Control: max-age=0, s-maxage=60\r\n", TTL(55, 60),
			   "Cache-Control: s-maxage=0, max-age=60\r\n");
}
END_TEST

/* §4.2.1: max-age wins over Expires. */
START_TEST(test_freshness_max_age_over_expires)
{
	fresh_and_unusable(NULL, fmt("Cache-Control: max-age=60\r\nExpires: %s\r\n",
				     date_at(-3600)), TTL(55, 60),
			   fmt("Cache-Control: max-age=0\r\nExpires: %s\r\n", date_at(3600)));
}
END_TEST

/* §4.2.1: without max-age, the lifetime is Expires minus Date; §4.2.3: the age counts from
 * Date. Date 30 s ago, Expires 30 s ahead: a lifetime of 60, about 30 left. Date 100 s
 * ago, Expires 40 s ago: stale. */
START_TEST(test_freshness_expires_minus_date)
{
	fresh_and_unusable(NULL, fmt("Date: %s\r\nExpires: %s\r\n", date_at(-30), date_at(30)),
			   TTL_AGE(25, 30, 30, 35),
			   fmt("Date: %s\r\nExpires: %s\r\n", date_at(-100), date_at(-40)));
}
END_TEST

static const char *const invalid_expires[] = {
	"0", "-1", "garbage", "",
	/* §4.2.1: two Expires fields: "the response should be considered stale" */
	"Thu, 01 Jan 2099 00:00:00 GMT\r\nExpires: Thu, 01 Jan 2099 00:00:00 GMT",
};

/* §5.3: an invalid Expires (e.g. "0") means already expired. */
START_TEST(test_freshness_invalid_expires)
{
	fetch_twice(NULL, 200, fmt("Expires: %s\r\nLast-Modified: %s\r\n", invalid_expires[_i],
				   date_at(-10 * DAY)), "MISS|BYPASS|REVALIDATED");
}
END_TEST

/* §4.2.2: heuristic freshness is 10 % of the time since Last-Modified, capped by
 * --heuristic-max (default 1 day): 10 days -> 86400; 1000 s -> 100. */
START_TEST(test_freshness_heuristic_last_modified)
{
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/old", 200, fmt("Last-Modified: %s\r\n", date_at(-10 * DAY)), "o########");
	so_set(f.o, "/new", 200, fmt("Last-Modified: %s\r\n", date_at(-1000)), "n########");
	expect_fresh(&f, "/old", "o00000001", TTL(DAY - 10, DAY));
	expect_fresh(&f, "/new", "n00000001", TTL(90, 100));
	fx_stop(&f);
}
END_TEST

/* Contract: --heuristic-max caps heuristic freshness. */
START_TEST(test_freshness_heuristic_max)
{
	fresh_and_unusable(H("--heuristic-max", "50"), fmt("Last-Modified: %s\r\n",
			   date_at(-10 * DAY)), TTL(40, 50), NULL);
}
END_TEST

/* §4.2.3: an Age field from upstream counts: max-age=100 with Age: 30 leaves about 70 s,
 * and the hit's Age starts at 30. max-age=10 with Age: 20 is stale on arrival. */
START_TEST(test_freshness_age_field)
{
	fresh_and_unusable(NULL, "Cache-Control: max-age=100\r\nAge: 30\r\n",
			   TTL_AGE(65, 70, 30, 35), "Cache-Control: max-age=10\r\nAge: 20\r\n");
}
END_TEST

/* §4.2.3: a Date in the past counts as age (apparent_age): max-age=100 with a Date 30 s
 * ago is served with Age >= 30. */
START_TEST(test_freshness_age_from_date)
{
	fresh_and_unusable(NULL, fmt("Cache-Control: max-age=100\r\nDate: %s\r\n", date_at(-30)),
			   TTL_AGE(65, 70, 30, 35), NULL);
}
END_TEST

/* §1.2.2, §4.2.3: an Age too large to represent counts as 2^31 (stale), not as garbage
 * or a wrapped negative number. */
START_TEST(test_freshness_age_overflow)
{
	fetch_twice(NULL, 200, "Cache-Control: max-age=60\r\nAge: 99999999999999999999\r\n",
		    NOT_STORED);
}
END_TEST

/* §4.2.3: apparent_age = max(0, response_time - date_value): an origin clock ahead of ours
 * (Date an hour in the future) does not make the age negative nor the response fresher. */
START_TEST(test_freshness_date_in_future)
{
	fresh_and_unusable(NULL, fmt("Cache-Control: max-age=60\r\nDate: %s\r\n", date_at(3600)),
			   TTL_AGE(55, 60, 0, 5), NULL);
}
END_TEST

/* =========================================================================================
 * §5.2 Cache-Control parsing, through the proxy
 * ========================================================================================= */

static const char *const cc_fresh_forms[] = {
	"CACHE-CONTROL: MAX-AGE=60\r\n",			/* names case-insensitive */
	"Cache-Control: Max-Age=60\r\n",
	"Cache-Control: max-age=\"60\"\r\n",			/* quoted argument */
	"Cache-Control: foo=bar, max-age=60, x-ext\r\n",	/* unknown extensions */
	"Cache-Control: public\r\nCache-Control: max-age=60\r\n",	/* several lines */
	"Cache-Control: max-age=60, , public\r\n",		/* empty list members */
	"Cache-Control: ext=\"a, no-store, private\", max-age=60\r\n",	/* quoted commas */
	"Cache-Control:max-age=60\r\n",				/* no space */
	"Cache-Control: max-age=99999999999999999999\r\n",	/* §1.2.2: 2^31, not stale */
};

/* §5.2: these forms all mean "fresh for 60 s": the second GET is a HIT. */
START_TEST(test_cc_parse_fresh_forms)
{
	fetch_twice(NULL, 200, cc_fresh_forms[_i], STORED);
}
END_TEST

static const char *const cc_unusable_forms[] = {
	"Cache-Control: max-age=60, max-age=0\r\n",	/* duplicates: most restrictive */
	"Cache-Control: max-age=0, max-age=60\r\n",
	"Cache-Control: max-age=60\r\nCache-Control: max-age=0\r\n",
	"Cache-Control: max-age=abc\r\n",		/* invalid numbers: stale */
	"Cache-Control: max-age=-1\r\n",
	"Cache-Control: max-age=\"x\"\r\n",
	"Cache-Control: max-age=\r\n",
	"Cache-Control: max-age=60\r\nCache-Control: no-store\r\n",
	"Cache-Control: max-age=60\r\nCache-Control: PRIVATE\r\n",
	"Cache-Control: NO-STORE, max-age=60\r\n",
	"Cache-Control: max-age=60, No-Store\r\n",
	"Cache-Control: no-cache, max-age=60\r\n",	/* no validator: never usable */
};

/* §5.2, §4.2.1: these forms leave nothing usable (stale from the start, or not storable):
 * both GETs reach the origin. */
START_TEST(test_cc_parse_unusable_forms)
{
	fetch_twice(NULL, 200, cc_unusable_forms[_i], NOT_STORED);
}
END_TEST

/* =========================================================================================
 * §5.2.1 Request directives
 * ========================================================================================= */

/* fx_start(), then stores a fresh response with ETag "v1" at /s (max-age=100, Age: 30,
 * about 70 s left), whose revalidation gets a 304; one request reached the origin. */
static void store_fresh(struct fx *f)
{
	fx_start_route(f, NULL, 200, "Cache-Control: max-age=100\r\nAge: 30\r\nETag: \"v1\"\r\n");
	so_set_304(f->o, "/s", "\"v1\"", NULL, fields_304(100));
	expect_stored(f, "/s", NULL, 200, "s00000001", "the stored response", NULL);
}

/* §5.2.1.4: request no-cache: the stored response is not used without validation with the
 * origin; Cache-Status says the client forced it (fwd=request). */
START_TEST(test_req_no_cache)
{
	struct http_reply r;
	struct fx f;

	store_fresh(&f);
	step(&f, "GET", "/s", H("Cache-Control: no-cache"), 200, NULL, "s00000001", &r);
	expect_count(&f, "/s", 2, "request no-cache");
	ck_assert_msg(!x_cache_is(&r, "HIT"), "X-Cache HIT for a request with no-cache");
	expect_cs(&r, "fwd", "request");
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* §5.4: Pragma: no-cache acts as no-cache when the request has no Cache-Control, and is
 * ignored when it has one. */
START_TEST(test_req_pragma)
{
	struct fx f;

	store_fresh(&f);
	expect_hit(&f, H("Pragma: no-cache", "Cache-Control: max-age=3600"),
		   "Pragma with Cache-Control");
	expect_forwarded(&f, H("Pragma: no-cache"), "s00000001", 2, "Pragma: no-cache alone");
	fx_stop(&f);
}
END_TEST

/* §5.2.1.5: request no-store: the response is not stored. X-Cache: the brief said BYPASS,
 * mtps-proxy(8) (the later word) says a forwarded no-store request is a MISS; Cache-Status
 * must not say "stored". */
START_TEST(test_req_no_store)
{
	struct http_reply r;
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	step(&f, "GET", "/s", H("Cache-Control: no-store"), 200, "MISS", "s00000001", &r);
	expect_cs(&r, "stored", NULL);
	http_reply_free(&r);
	expect_stored(&f, "/s", NULL, 200, "s00000002", "request no-store", NULL);
	/* §5.2.1.5: "if a request containing this directive is satisfied from a cache, the
	 * no-store request directive does not apply to the already stored response" */
	step(&f, "GET", "/s", H("Cache-Control: no-store"), 200, "HIT", "s00000002", NULL);
	expect_count(&f, "/s", 2, "request no-store");
	fx_stop(&f);
}
END_TEST

/* §5.2.1.1: request max-age=N: no stored response older than N; max-age=0 revalidates. */
START_TEST(test_req_max_age)
{
	struct fx f;

	store_fresh(&f);	/* age about 30 */
	expect_hit(&f, H("Cache-Control: max-age=60"), "request max-age=60, age 30");
	expect_forwarded(&f, H("Cache-Control: max-age=10"), NULL, 2, "request max-age=10, age 30");
	/* §4.3.4: the origin's 304 (no Age) validated it just now: its age starts again */
	step(&f, "GET", "/s", H("Cache-Control: max-age=10"), 200, "HIT", "s00000001", NULL);
	expect_count(&f, "/s", 2, "request max-age=10 after the 304");
	fx_stop(&f);
	store_fresh(&f);
	expect_forwarded(&f, H("Cache-Control: max-age=0"), NULL, 2, "request max-age=0, age 30");
	fx_stop(&f);
}
END_TEST

/* §5.2.1.2: request max-stale[=N]: a stale response within N (or any, without N) is served
 * (STALE) without contacting the origin; beyond N it is not. */
START_TEST(test_req_max_stale)
{
	struct http_reply r;
	struct fx f;

	fx_start_stale(&f, NULL, "max-age=10", 60);	/* stale by 20 s */
	step(&f, "GET", "/s", H("Cache-Control: max-stale=60"), 200, "STALE", "s00000001", &r);
	expect_ttl(&r, -25, -20);
	expect_cs(&r, "hit", "");
	http_reply_free(&r);
	step(&f, "GET", "/s", H("Cache-Control: max-stale"), 200, "STALE", "s00000001", NULL);
	expect_count(&f, "/s", 1, "max-stale within the staleness");
	step(&f, "GET", "/s", H("Cache-Control: max-stale=5"), 200, "REVALIDATED", "s00000001",
	     NULL);
	expect_count(&f, "/s", 2, "max-stale=5, stale by 20 s");
	fx_stop(&f);
}
END_TEST

/* §5.2.1.3: request min-fresh=N: only a response fresh for N more seconds. */
START_TEST(test_req_min_fresh)
{
	struct fx f;

	store_fresh(&f);	/* about 70 s left */
	expect_hit(&f, H("Cache-Control: min-fresh=10"), "min-fresh=10, 70 s left");
	expect_forwarded(&f, H("Cache-Control: min-fresh=90"), "s00000001", 2,
			 "min-fresh=90, 70 s left");
	fx_stop(&f);
}
END_TEST

/* §5.2.1.7: only-if-cached: 504 when nothing usable is stored, and the origin is never
 * contacted; a fresh stored response is served. */
START_TEST(test_req_only_if_cached)
{
	const char *const *oic = H("Cache-Control: only-if-cached");
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	so_set(f.o, "/stale", 200, stale_fields("max-age=10"), "t########");
	step(&f, "GET", "/s", oic, 504, NULL, NULL, NULL);
	expect_count(&f, "/s", 0, "only-if-cached, nothing stored");
	step(&f, "GET", "/s", NULL, 200, "MISS", "s00000001", NULL);
	step(&f, "GET", "/s", oic, 200, "HIT", "s00000001", NULL);
	step(&f, "GET", "/stale", NULL, 200, "MISS", "t00000001", NULL);
	step(&f, "GET", "/stale", oic, 504, NULL, NULL, NULL);
	/* stale is usable when the request also accepts it */
	step(&f, "GET", "/stale", H("Cache-Control: only-if-cached, max-stale=600"), 200, "STALE",
	     "t00000001", NULL);
	expect_count(&f, "/s", 1, "only-if-cached, stored");
	expect_count(&f, "/stale", 1, "only-if-cached, stale stored");
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * §5.2.2 Response directives
 * ========================================================================================= */

/* §5.2.2.4: response no-cache: stored, but validated with the origin on every use. */
START_TEST(test_resp_no_cache)
{
	const char *cc = "Cache-Control: no-cache, max-age=60\r\nETag: \"v1\"\r\n";
	char inm[256];
	struct fx f;

	fx_start_fetched(&f, NULL, cc);
	so_set_304(f.o, "/s", "\"v1\"", NULL, cc);
	step(&f, "GET", "/s", NULL, 200, "REVALIDATED", "s00000001", NULL);
	ck_assert_int_eq(so_last_field(f.o, "/s", "If-None-Match", inm, sizeof(inm)), 1);
	ck_assert_str_eq(inm, "\"v1\"");
	step(&f, "GET", "/s", NULL, 200, "REVALIDATED", "s00000001", NULL);
	expect_count(&f, "/s", 3, "response no-cache");
	fx_stop(&f);
}
END_TEST

/* §5.2.2.4: no-cache="X-Secret": the response is stored and reused, but the listed field
 * is not sent on a reuse that was not revalidated. */
START_TEST(test_resp_no_cache_field)
{
	struct http_reply r;
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60, no-cache=\"X-Secret\"\r\n"
		       "X-Secret: s3cret\r\nX-Other: fine\r\n");
	step(&f, "GET", "/s", NULL, 200, "MISS", "s00000001", &r);
	ck_assert_str_eq(hdr(&r, "X-Secret"), "s3cret");
	http_reply_free(&r);
	step(&f, "GET", "/s", NULL, 200, "HIT", "s00000001", &r);
	ck_assert_msg(http_reply_header(&r, "X-Secret") == NULL, "X-Secret replayed: %s",
		      hdr(&r, "X-Secret"));
	ck_assert_str_eq(hdr(&r, "X-Other"), "fine");
	http_reply_free(&r);
	expect_count(&f, "/s", 1, "no-cache=\"X-Secret\"");
	fx_stop(&f);
}
END_TEST

static const char *const revalidate_cc[] = {
	"max-age=10, must-revalidate, stale-if-error=600, stale-while-revalidate=600",
	"max-age=10, proxy-revalidate, stale-if-error=600, stale-while-revalidate=600",
	"s-maxage=10, stale-if-error=600, stale-while-revalidate=600",
};

/* §5.2.2.2 must-revalidate, §5.2.2.8 proxy-revalidate, §5.2.2.10 s-maxage: once stale, never
 * served stale - not for stale-if-error, not for request max-stale: with the origin down
 * the answer is 504. */
START_TEST(test_resp_must_revalidate_origin_down)
{
	struct fx f;

	fx_start_stale(&f, NULL, revalidate_cc[_i], 0);
	so_down(f.o);
	step(&f, "GET", "/s", NULL, 504, NULL, NULL, NULL);
	step(&f, "GET", "/s", H("Cache-Control: max-stale=600"), 504, NULL, NULL, NULL);
	step(&f, "GET", "/s", H("Cache-Control: stale-if-error=600"), 504, NULL, NULL, NULL);
	fx_stop(&f);
}
END_TEST

/* §5.2.2.2: must-revalidate (and its kin) with the origin up: request max-stale does not
 * let a stale response out; stale-while-revalidate neither: the origin is asked first. */
START_TEST(test_resp_must_revalidate_beats_max_stale)
{
	struct fx f;

	fx_start_stale(&f, NULL, revalidate_cc[_i], 60);
	step(&f, "GET", "/s", H("Cache-Control: max-stale=600"), 200, "REVALIDATED", "s00000001",
	     NULL);
	expect_count(&f, "/s", 2, revalidate_cc[_i]);
	fx_stop(&f);
}
END_TEST

/* RFC 8246 / contract: a fresh immutable response is served even to max-age=0; a request
 * no-cache still goes to the origin. */
START_TEST(test_resp_immutable)
{
	struct fx f;

	fx_start_fetched(&f, NULL, "Cache-Control: max-age=60, immutable\r\nETag: \"v1\"\r\n");
	so_set_304(f.o, "/s", "\"v1\"", NULL, "Cache-Control: max-age=60, immutable\r\n");
	expect_hit(&f, H("Cache-Control: max-age=0"), "immutable, request max-age=0");
	expect_forwarded(&f, H("Cache-Control: no-cache"), "s00000001", 2,
			 "immutable, request no-cache");
	fx_stop(&f);
}
END_TEST

/* §5.2.2.6 no-transform (and in general): a hit carries the body and representation fields
 * exactly as the origin sent them. */
START_TEST(test_resp_no_transform)
{
	static const char body[] = "\x1f\x8b not really gzip \t\r\n  trailing  ";
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60, no-transform\r\n"
	       "Content-Type: application/x-thing; charset=\"odd\"\r\nContent-Encoding: gzip\r\n"
	       "Content-Language: fr\r\n", body);
	step(&f, "GET", "/s", NULL, 200, "MISS", body, NULL);
	step(&f, "GET", "/s", NULL, 200, "HIT", NULL, &r);
	ck_assert_uint_eq(r.len, strlen(body));
	ck_assert_msg(memcmp(r.body, body, r.len) == 0, "the body changed on a hit");
	ck_assert_str_eq(hdr(&r, "Content-Type"), "application/x-thing; charset=\"odd\"");
	ck_assert_str_eq(hdr(&r, "Content-Encoding"), "gzip");
	ck_assert_str_eq(hdr(&r, "Content-Language"), "fr");
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * §4.1 Vary
 * ========================================================================================= */

/* §4.1: two variants side by side: one MISS each (the second a vary-miss), then both HIT
 * with their own body. */
START_TEST(test_vary_variants_side_by_side)
{
	const char *const *gz = H("Accept-Encoding: gzip"), *const *id =
		H("Accept-Encoding: identity");
	struct http_reply r;
	char seen[256];
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\nVary: Accept-Encoding\r\n");
	step(&f, "GET", "/s", gz, 200, "MISS", "s00000001", NULL);
	so_last_field(f.o, "/s", "Accept-Encoding", seen, sizeof(seen));
	ck_assert_str_eq(seen, "gzip");
	step(&f, "GET", "/s", id, 200, "MISS", "s00000002", &r);
	expect_cs(&r, "fwd", "vary-miss");
	http_reply_free(&r);
	so_last_field(f.o, "/s", "Accept-Encoding", seen, sizeof(seen));
	ck_assert_str_eq(seen, "identity");
	step(&f, "GET", "/s", gz, 200, "HIT", "s00000001", NULL);
	step(&f, "GET", "/s", id, 200, "HIT", "s00000002", NULL);
	expect_count(&f, "/s", 2, "two variants");
	fx_stop(&f);
}
END_TEST

/* §4.1: selecting field values are compared after normalisation (whitespace around commas,
 * several lines combined), and Vary's field names are case-insensitive. */
START_TEST(test_vary_normalised)
{
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n"
		       "Vary: ACCEPT-ENCODING , accept\r\n");
	step(&f, "GET", "/s", H("Accept-Encoding: gzip,deflate", "Accept: text/plain"), 200,
	     "MISS", "s00000001", NULL);
	expect_hit(&f, H("Accept-Encoding: gzip, deflate", "Accept: text/plain"), "spaces");
	expect_hit(&f, H("accept-encoding:  gzip ,  deflate ", "ACCEPT: text/plain"), "cases");
	/* §4.1: "combining multiple header field lines with the same field name" */
	expect_hit(&f, H("Accept-Encoding: gzip", "Accept-Encoding: deflate", "Accept: text/plain"),
		   "two lines");
	fx_stop(&f);
}
END_TEST

/* §4.1: Vary: * never matches: the response is never reused. */
START_TEST(test_vary_star)
{
	fetch_twice(NULL, 200, "Cache-Control: max-age=60\r\nVary: *\r\n", NOT_STORED);
}
END_TEST

/* §4.1: a request without the selecting field is its own variant (it matches only a stored
 * response whose request lacked it too). */
START_TEST(test_vary_missing_field)
{
	const char *const *fr = H("Accept-Language: fr");
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\nVary: Accept-Language\r\n");
	step(&f, "GET", "/s", fr, 200, "MISS", "s00000001", NULL);
	expect_stored(&f, "/s", NULL, 200, "s00000002", "without the field", NULL);
	step(&f, "GET", "/s", fr, 200, "HIT", "s00000001", NULL);
	expect_count(&f, "/s", 2, "with and without the field");
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * §4.3 Validation
 * ========================================================================================= */

/* §4.3.1, §4.3.4: a stale entry with an ETag is revalidated with If-None-Match; the 304
 * updates the stored fields (new Cache-Control, X-Version) and the stored body is served
 * (REVALIDATED, Cache-Status fwd=stale; fwd-status=304); then it is fresh again. */
START_TEST(test_validation_if_none_match_304_merge)
{
	struct http_reply r;
	char inm[256];
	struct fx f;

	fx_start_route(&f, NULL, 200, stale_fields("max-age=10"));
	so_set_304(f.o, "/s", "\"v1\"", NULL, fmt("%sX-Version: 2\r\n", fields_304(600)));
	step(&f, "GET", "/s", NULL, 200, "MISS", "s00000001", &r);
	ck_assert_str_eq(hdr(&r, "X-Version"), "1");
	http_reply_free(&r);
	step(&f, "GET", "/s", NULL, 200, "REVALIDATED", "s00000001", &r);
	ck_assert_int_eq(so_last_field(f.o, "/s", "If-None-Match", inm, sizeof(inm)), 1);
	ck_assert_str_eq(inm, "\"v1\"");
	ck_assert_str_eq(hdr(&r, "X-Version"), "2");
	ck_assert_int_eq(header_count(&r, "X-Version"), 1);
	ck_assert_str_eq(hdr(&r, "Cache-Control"), "max-age=600");
	/* §5.1: validated for this request, so no Age ("the presence of an Age header field
	 * implies that the response was not generated or validated by the origin server for
	 * this request"), or a small one: the 304's Date replaced the old one */
	if (header_count(&r, "Age"))
		expect_age(&r, 0, 5);
	expect_cs(&r, "fwd", "stale");
	expect_cs(&r, "fwd-status", "304");
	http_reply_free(&r);
	step(&f, "GET", "/s", NULL, 200, "HIT", "s00000001", &r);
	ck_assert_str_eq(hdr(&r, "X-Version"), "2");
	ck_assert_str_eq(hdr(&r, "ETag"), "\"v1\"");
	expect_ttl(&r, 590, 600);
	http_reply_free(&r);
	expect_count(&f, "/s", 2, "stale, 304, fresh");
	fx_stop(&f);
}
END_TEST

/* §3.2: a 304 updates the stored fields it carries, except Content-Length (a "Content-Length:
 * 0" in a 304 is a classic origin bug) and hop-by-hop fields; the other stored fields stay. */
START_TEST(test_validation_304_merge_exceptions)
{
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, fmt("%sX-Keep: kept\r\n", stale_fields("max-age=10")),
	       "the stored body");
	so_set_304(f.o, "/s", "\"v1\"", NULL, "Cache-Control: max-age=600\r\nETag: \"v1\"\r\n"
		   "Content-Length: 0\r\nConnection: X-Hop\r\nX-Hop: no\r\n"
		   "Keep-Alive: timeout=1\r\n");
	step(&f, "GET", "/s", NULL, 200, "MISS", "the stored body", NULL);
	for (int i = 0; i < 2; i++) {
		step(&f, "GET", "/s", NULL, 200, i ? "HIT" : "REVALIDATED", "the stored body", &r);
		ck_assert_str_eq(hdr(&r, "X-Keep"), "kept");
		ck_assert_str_eq(hdr(&r, "Cache-Control"), "max-age=600");
		ck_assert_msg(http_reply_header(&r, "X-Hop") == NULL, "X-Hop: %s", hdr(&r, "X-Hop"));
		ck_assert_msg(http_reply_header(&r, "Keep-Alive") == NULL, "Keep-Alive: %s",
			      hdr(&r, "Keep-Alive"));
		http_reply_free(&r);
	}
	expect_count(&f, "/s", 2, "304 merge");
	fx_stop(&f);
}
END_TEST

/* §4.3.4, §4.2.3: a 304 without Age validated the response now: the stored response's old
 * Age goes, so the refreshed response is fresh again (it was REVALIDATED on every request
 * while the stored Age: 100 outlived max-age=60). */
START_TEST(test_validation_304_drops_old_age)
{
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60\r\nAge: 100\r\nETag: \"v1\"\r\n",
	       "the stored body");
	so_set_304(f.o, "/s", "\"v1\"", NULL, fields_304(60));
	step(&f, "GET", "/s", NULL, 200, "MISS", "the stored body", NULL);
	step(&f, "GET", "/s", NULL, 200, "REVALIDATED", "the stored body", NULL);
	step(&f, "GET", "/s", NULL, 200, "HIT", "the stored body", NULL);
	expect_count(&f, "/s", 2, "a 304 without Age");
	fx_stop(&f);
}
END_TEST

/* §4.3.4: a 304 whose strong validator names another representation updates nothing: the
 * stored body is not served under the new ETag; the request fails (502) and the next one
 * fetches the full response. */
START_TEST(test_validation_304_other_etag)
{
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, stale_fields("max-age=10"), "body v1");
	so_set_304(f.o, "/s", "\"v1\"", NULL, "Cache-Control: max-age=60\r\nETag: \"v2\"\r\n");
	step(&f, "GET", "/s", NULL, 200, "MISS", "body v1", NULL);
	step(&f, "GET", "/s", NULL, 502, NULL, NULL, NULL);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60\r\nETag: \"v2\"\r\n", "body v2");
	step(&f, "GET", "/s", NULL, 200, "MISS", "body v2", &r);
	ck_assert_str_eq(hdr(&r, "ETag"), "\"v2\"");
	http_reply_free(&r);
	expect_count(&f, "/s", 3, "a 304 naming another representation");
	fx_stop(&f);
}
END_TEST

/* RFC 9111 §4.1: a request field value too long to compare whole (over 4 KiB) neither
 * stores a variant nor matches one: two such values that differ only at the end never
 * share a response. */
START_TEST(test_vary_long_value)
{
	char a[4310], c[4310];
	struct fx f;

	/* "X-V: xxx...xA" and "X-V: xxx...xC", 4300 bytes of value each */
	memcpy(a, "X-V: ", 5);
	memset(a + 5, 'x', sizeof(a) - 6);
	a[sizeof(a) - 1] = '\0';
	memcpy(c, a, sizeof(c));
	a[sizeof(a) - 2] = 'A';
	c[sizeof(c) - 2] = 'C';
	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60\r\nVary: X-V\r\n", "v ########");
	step(&f, "GET", "/s", H(a), 200, "MISS", "v 00000001", NULL);
	step(&f, "GET", "/s", H(c), 200, NULL, "v 00000002", NULL);
	step(&f, "GET", "/s", H(a), 200, NULL, "v 00000003", NULL);
	fx_stop(&f);
}
END_TEST

/* §4: a response stale on arrival is never reused without validation - not even by the
 * request that comes right after the one that fetched it (a race seen with the first
 * versions: the next request found the fetch still "in flight" and took its stale
 * response as a HIT). 200 paths, each fetched then asked again at once. */
START_TEST(test_validation_stale_on_arrival_race)
{
	enum { PATHS = 200 };
	struct fx f;

	fx_start(&f, NULL);
	for (int i = 0; i < PATHS; i++) {
		const char *path = fmt("/r%d", i);

		/* a new origin connection each time, as for the first request of a proxy */
		so_set(f.o, path, 200, fmt("%sConnection: close\r\n", stale_fields("max-age=10")),
		       "s########");
		so_set_304(f.o, path, "\"v1\"", NULL, "Cache-Control: max-age=600\r\n");
	}
	for (int i = 0; i < PATHS; i++) {
		char path[16];

		snprintf(path, sizeof(path), "/r%d", i);
		step(&f, "GET", path, NULL, 200, "MISS", "s00000001", NULL);
		step(&f, "GET", path, NULL, 200, "REVALIDATED", "s00000001", NULL);
		expect_count(&f, path, 2, "stale on arrival, asked again");
	}
	fx_stop(&f);
}
END_TEST

/* §4.3.1: with only Last-Modified, the revalidation carries If-Modified-Since with it. */
START_TEST(test_validation_if_modified_since)
{
	char lm[64], ims[256], inm[256];
	struct fx f;

	so_http_date(-3600, lm, sizeof(lm));
	fx_start_route(&f, NULL, 200, fmt("Cache-Control: max-age=10\r\nLast-Modified: %s\r\n"
					  "Date: %s\r\n", lm, date_at(-30)));
	so_set_304(f.o, "/s", NULL, lm, "Cache-Control: max-age=600\r\n");
	step(&f, "GET", "/s", NULL, 200, "MISS", "s00000001", NULL);
	step(&f, "GET", "/s", NULL, 200, "REVALIDATED", "s00000001", NULL);
	ck_assert_int_eq(so_last_field(f.o, "/s", "If-Modified-Since", ims, sizeof(ims)), 1);
	ck_assert_str_eq(ims, lm);
	ck_assert_int_eq(so_last_field(f.o, "/s", "If-None-Match", inm, sizeof(inm)), 0);
	step(&f, "GET", "/s", NULL, 200, "HIT", "s00000001", NULL);
	expect_count(&f, "/s", 2, "revalidated by date");
	fx_stop(&f);
}
END_TEST

/* §4.3.3: a full 200 to the revalidation replaces the stored response. */
START_TEST(test_validation_200_replaces)
{
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, stale_fields("max-age=10"), "old");
	step(&f, "GET", "/s", NULL, 200, "MISS", "old", NULL);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=600\r\nETag: \"v2\"\r\n", "new");
	step(&f, "GET", "/s", NULL, 200, NULL, "new", NULL);
	step(&f, "GET", "/s", NULL, 200, "HIT", "new", NULL);
	expect_count(&f, "/s", 2, "200 replaces");
	fx_stop(&f);
}
END_TEST

/* Sends a conditional GET and checks the proxy's own 304 (§4.3.2): no body, ETag,
 * Cache-Control, Date and Age, X-Cache HIT. */
static void expect_304_from_store(struct fx *f, const char *cond)
{
	struct http_reply r;

	step(f, "GET", "/s", H(cond), 304, "HIT", "", &r);
	ck_assert_ptr_nonnull(http_reply_header(&r, "ETag"));
	ck_assert_ptr_nonnull(http_reply_header(&r, "Cache-Control"));
	ck_assert_ptr_nonnull(http_reply_header(&r, "Date"));
	ck_assert_int_eq(header_count(&r, "Age"), 1);
	http_reply_free(&r);
}

/* §4.3.2: a client's If-None-Match on a fresh stored response is answered 304 from the
 * store, without the origin; a non-matching one gets the full stored response. */
START_TEST(test_validation_client_if_none_match)
{
	struct fx f;

	fx_start_fetched(&f, NULL, "Cache-Control: max-age=60\r\nETag: \"v1\"\r\n");
	expect_304_from_store(&f, "If-None-Match: \"v1\"");
	expect_304_from_store(&f, "If-None-Match: \"zz\", \"v1\"");
	expect_hit(&f, H("If-None-Match: \"other\""), "client If-None-Match");
	fx_stop(&f);
}
END_TEST

/* §4.3.2, RFC 9110 §13.1.3: If-Modified-Since at or after Last-Modified -> 304 from the
 * store; an earlier one gets the full response. */
START_TEST(test_validation_client_if_modified_since)
{
	char lm[64];
	struct fx f;

	so_http_date(-3600, lm, sizeof(lm));
	fx_start_fetched(&f, NULL, fmt("Cache-Control: max-age=60\r\nLast-Modified: %s\r\n"
				       "ETag: \"v1\"\r\n", lm));
	expect_304_from_store(&f, fmt("If-Modified-Since: %s", lm));
	expect_304_from_store(&f, fmt("If-Modified-Since: %s", date_at(-60)));
	expect_hit(&f, H(fmt("If-Modified-Since: %s", date_at(-7200))), "client If-Modified-Since");
	fx_stop(&f);
}
END_TEST

/* RFC 9110 §13.1.2: If-None-Match uses the weak comparison: W/"x" matches "x", both ways. */
START_TEST(test_validation_weak_comparison)
{
	struct fx f;

	fx_start_fetched(&f, NULL, "Cache-Control: max-age=60\r\nETag: W/\"x\"\r\n");
	expect_304_from_store(&f, "If-None-Match: \"x\"");
	expect_304_from_store(&f, "If-None-Match: W/\"x\"");
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60\r\nETag: \"y\"\r\n", "s########");
	step(&f, "GET", "/s", H("Cache-Control: no-cache"), 200, NULL, "s00000002", NULL);
	expect_304_from_store(&f, "If-None-Match: W/\"y\"");
	expect_count(&f, "/s", 2, "weak comparison");
	fx_stop(&f);
}
END_TEST

/* RFC 9110 §13.1.3, §13.2.2: If-Modified-Since is ignored when If-None-Match is present:
 * a non-matching If-None-Match gets the full response even though the date would match. */
START_TEST(test_validation_inm_overrides_ims)
{
	char lm[64];
	struct fx f;

	so_http_date(-3600, lm, sizeof(lm));
	fx_start_fetched(&f, NULL, fmt("Cache-Control: max-age=60\r\nETag: \"v1\"\r\n"
				       "Last-Modified: %s\r\n", lm));
	expect_hit(&f, H("If-None-Match: \"other\"", fmt("If-Modified-Since: %s", lm)),
		   "If-None-Match with If-Modified-Since");
	fx_stop(&f);
}
END_TEST

/* RFC 9110 §13.2.1: conditions apply only to what would be a 2xx: a stored 404 with an ETag
 * stays a 404 for a matching If-None-Match; a stored response without ETag never matches a
 * listed tag. */
START_TEST(test_validation_conditions_only_for_2xx)
{
	struct fx f;

	fx_start_fetched(&f, NULL, "Cache-Control: max-age=60\r\n");
	step(&f, "GET", "/s", H("If-None-Match: \"x\""), 200, "HIT", "s00000001", NULL);
	so_set(f.o, "/gone", 404, "Cache-Control: max-age=60\r\nETag: \"g\"\r\n", "gone");
	step(&f, "GET", "/gone", NULL, 404, "MISS", "gone", NULL);
	step(&f, "GET", "/gone", H("If-None-Match: \"g\""), 404, "HIT", "gone", NULL);
	expect_count(&f, "/gone", 1, "stored 404");
	expect_count(&f, "/s", 1, "stored without ETag");
	fx_stop(&f);
}
END_TEST

/* RFC 9110 §13.1.2: If-None-Match: * matches any stored representation. */
START_TEST(test_validation_if_none_match_star)
{
	struct fx f;

	fx_start_fetched(&f, NULL, "Cache-Control: max-age=60\r\nETag: \"v1\"\r\n");
	expect_304_from_store(&f, "If-None-Match: *");
	expect_count(&f, "/s", 1, "If-None-Match: *");
	fx_stop(&f);
}
END_TEST

/* §4.3.2: a client's condition is answered from the store only when the stored response
 * is fresh: on a stale one the proxy validates with the origin first. */
START_TEST(test_validation_client_conditional_on_stale)
{
	char inm[256];
	struct fx f;

	fx_start_stale(&f, NULL, "max-age=10", 0);
	/* the origin now has a new version: the client's "v1" no longer matches */
	so_set(f.o, "/s", 200, "Cache-Control: max-age=600\r\nETag: \"v2\"\r\n", "new########");
	step(&f, "GET", "/s", H("If-None-Match: \"v1\""), 200, NULL, "new00000002", NULL);
	so_last_field(f.o, "/s", "If-None-Match", inm, sizeof(inm));
	ck_assert_msg(strstr(inm, "\"v1\"") != NULL, "the revalidation sent If-None-Match: %s",
		      inm);
	expect_304_from_store(&f, "If-None-Match: \"v2\"");
	expect_count(&f, "/s", 2, "a condition on a stale entry");
	fx_stop(&f);
}
END_TEST

/* Contract (§4.3.2 allows it): a miss with a client condition fetches the full response,
 * stores it, and answers the condition itself. */
START_TEST(test_validation_conditional_miss)
{
	struct http_reply r;
	char inm[256];
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\nETag: \"v1\"\r\n");
	so_set_304(f.o, "/s", "\"v1\"", NULL, fields_304(60));
	step(&f, "GET", "/s", H("If-None-Match: \"v1\""), 304, NULL, "", NULL);
	ck_assert_msg(so_last_field(f.o, "/s", "If-None-Match", inm, sizeof(inm)) == 0,
		      "the proxy forwarded If-None-Match: %s on a miss", inm);
	/* the 304 may leave before the whole body arrived: the next request may share the
	 * fetch still in flight (MISS, collapsed) rather than find it stored (HIT) */
	step(&f, "GET", "/s", NULL, 200, "HIT|MISS", "s00000001", &r);
	ck_assert_msg(x_cache_is(&r, "HIT") || cs_param(&r, "collapsed"),
		      "a new fetch after a conditional miss: Cache-Status %s",
		      hdr(&r, "Cache-Status"));
	http_reply_free(&r);
	expect_count(&f, "/s", 1, "conditional miss");
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * §4.4 Invalidation
 * ========================================================================================= */

static const char *const unsafe_methods[] = { "POST", "PUT", "DELETE", "PATCH", "FROB" };

/* fx_start(), with /inv answering max-age=60 and "inv########", stored by GETs with <h>
 * (a MISS, then a HIT). */
static void fx_start_inv(struct fx *f, const char *const *h)
{
	fx_start(f, NULL);
	so_set(f->o, "/inv", 200, "Cache-Control: max-age=60\r\n", "inv########");
	expect_stored(f, "/inv", h, 200, "inv00000001", "storing /inv", NULL);
}

/* §4.4: a 2xx to an unsafe (or unknown) method invalidates the target URI. */
START_TEST(test_invalidate_unsafe_method)
{
	const char *m = unsafe_methods[_i];
	struct fx f;

	fx_start_inv(&f, NULL);
	so_set(f.o, fmt("%s /inv", m), 200, "Cache-Control: no-store\r\n", "done");
	step(&f, m, "/inv", NULL, 200, NULL, "done", NULL);
	step(&f, "GET", "/inv", NULL, 200, "MISS", "inv00000003", NULL);
	expect_count(&f, "GET /inv", 2, m);
	fx_stop(&f);
}
END_TEST

/* §4.4: the Location and Content-Location URIs of the response are invalidated too, when on
 * the same host, relative or absolute. */
START_TEST(test_invalidate_location)
{
	const char *field = _i & 1 ? "Content-Location" : "Location";
	struct fx f;
	char target[128];

	fx_start_inv(&f, NULL);
	if (_i & 2)
		snprintf(target, sizeof(target), "%s", proc_url(&f.p, "/inv"));
	else
		snprintf(target, sizeof(target), "/inv");
	so_set(f.o, "POST /users", 201, fmt("%s: %s\r\nCache-Control: no-store\r\n", field,
					    target), "made");
	step(&f, "POST", "/users", NULL, 201, NULL, "made", NULL);
	step(&f, "GET", "/inv", NULL, 200, "MISS", "inv00000002", NULL);
	ck_assert_msg(so_count(f.o, "GET /inv") == 2, "%s: %s did not invalidate", field, target);
	fx_stop(&f);
}
END_TEST

/* §4.4: "non-error" includes 3xx: a 303 See Other to a POST invalidates the target and its
 * Location. */
START_TEST(test_invalidate_on_3xx)
{
	struct fx f;

	fx_start_inv(&f, NULL);
	so_set(f.o, "/other", 200, "Cache-Control: max-age=60\r\n", "oth########");
	so_set(f.o, "POST /inv", 303, "Location: /other\r\nCache-Control: no-store\r\n", "see");
	step(&f, "GET", "/other", NULL, 200, "MISS", "oth00000001", NULL);
	step(&f, "POST", "/inv", NULL, 303, NULL, "see", NULL);
	step(&f, "GET", "/inv", NULL, 200, "MISS", "inv00000003", NULL);
	step(&f, "GET", "/other", NULL, 200, "MISS", "oth00000002", NULL);
	fx_stop(&f);
}
END_TEST

/* §4.4: what is invalidated is the target URI (and Location, Content-Location), not URIs
 * that merely start with it. */
START_TEST(test_invalidate_only_target)
{
	struct fx f;

	fx_start_inv(&f, NULL);
	so_set(f.o, "/inv2", 200, "Cache-Control: max-age=60\r\n", "two########");
	so_set(f.o, "/inv/sub", 200, "Cache-Control: max-age=60\r\n", "sub########");
	so_set(f.o, "POST /inv", 200, "Cache-Control: no-store\r\n", "done");
	step(&f, "GET", "/inv2", NULL, 200, "MISS", "two00000001", NULL);
	step(&f, "GET", "/inv/sub", NULL, 200, "MISS", "sub00000001", NULL);
	step(&f, "POST", "/inv", NULL, 200, NULL, "done", NULL);
	step(&f, "GET", "/inv2", NULL, 200, "HIT", "two00000001", NULL);
	step(&f, "GET", "/inv/sub", NULL, 200, "HIT", "sub00000001", NULL);
	step(&f, "GET", "/inv", NULL, 200, "MISS", "inv00000003", NULL);
	fx_stop(&f);
}
END_TEST

static const int error_statuses[] = { 400, 403, 404, 409, 500, 503 };

/* §4.4: an error response to an unsafe method invalidates nothing. */
START_TEST(test_invalidate_not_on_error)
{
	int status = error_statuses[_i];
	struct fx f;

	fx_start_inv(&f, NULL);
	so_set(f.o, "POST /inv", status, "Cache-Control: no-store\r\nLocation: /inv\r\n", "no");
	step(&f, "POST", "/inv", NULL, status, NULL, "no", NULL);
	step(&f, "GET", "/inv", NULL, 200, "HIT", "inv00000001", NULL);
	expect_count(&f, "GET /inv", 1, "after an error");
	fx_stop(&f);
}
END_TEST

/* §4.4: a Location or Content-Location on another host invalidates nothing there. */
START_TEST(test_invalidate_not_other_host)
{
	const char *const *other = H("Host: other.example");
	struct fx f;

	fx_start_inv(&f, other);
	so_set(f.o, "POST /users", 201, "Location: http://other.example/inv\r\n"
	       "Content-Location: http://other.example/inv\r\nCache-Control: no-store\r\n", "ok");
	step(&f, "POST", "/users", NULL, 201, NULL, "ok", NULL);
	step(&f, "GET", "/inv", other, 200, "HIT", "inv00000001", NULL);
	expect_count(&f, "GET /inv", 1, "another host's Location");
	fx_stop(&f);
}
END_TEST

/* §4.4: invalidation covers every stored variant of the URI. */
START_TEST(test_invalidate_all_variants)
{
	const char *const *gz = H("Accept-Encoding: gzip"), *const *id =
		H("Accept-Encoding: identity");
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/inv", 200, "Cache-Control: max-age=60\r\nVary: Accept-Encoding\r\n",
	       "inv########");
	so_set(f.o, "PUT /inv", 204, "", NULL);
	expect_stored(&f, "/inv", gz, 200, "inv00000001", "the gzip variant", NULL);
	expect_stored(&f, "/inv", id, 200, "inv00000002", "the identity variant", NULL);
	step(&f, "PUT", "/inv", NULL, 204, NULL, NULL, NULL);
	step(&f, "GET", "/inv", gz, 200, "MISS", "inv00000004", NULL);
	step(&f, "GET", "/inv", id, 200, "MISS", "inv00000005", NULL);
	expect_count(&f, "GET /inv", 4, "both variants invalidated");
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * RFC 5861 stale-while-revalidate
 * ========================================================================================= */

/* RFC 5861 §3: within the window, stale is served at once (STALE) while one background
 * request revalidates - one, even with 8 clients at once; the answers do not wait for the
 * origin (it holds its answer until they are all in). Then a HIT of the new version. */
START_TEST(test_swr_stale_at_once_one_revalidation)
{
	enum { CLIENTS = 8 };
	unsigned wait_ms = proc_wrapped() ? TIMEOUT_MS : 5000;
	struct http_batch *b;
	struct http_reply r;
	int running, i;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, stale_fields("max-age=10, stale-while-revalidate=600"),
	       "old########");
	step(&f, "GET", "/s", NULL, 200, "MISS", "old00000001", NULL);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=600\r\nETag: \"v2\"\r\n", "new########");
	b = held_batch(&f, "/s", CLIENTS);
	running = http_batch_run(b, wait_ms);
	if (running) {
		so_hold(f.o, false);
		http_batch_run(b, TIMEOUT_MS);
	}
	ck_assert_msg(running == 0, "%d of %d clients waited for the origin", running, CLIENTS);
	for (i = 0; i < CLIENTS; i++) {
		const struct http_reply *c = http_batch_reply(b, i);

		ck_assert_msg(c->status == 200 && x_cache_is(c, "STALE") &&
			      strcmp(c->body, "old00000001") == 0,
			      "client %d: %ld, X-Cache %s, body %s", i, c->status,
			      hdr(c, "X-Cache"), c->body);
		/* RFC 9211 §2.1: not forwarded itself, so a hit, with a negative ttl */
		expect_cs(c, "hit", "");
		expect_ttl(c, -25, -20);
	}
	http_batch_free(b);
	ck_assert_uint_eq(so_wait_count(f.o, "/s", 2, TIMEOUT_MS), 2);
	so_hold(f.o, false);
	/* until the background fetch is stored: STALE old, then HIT new */
	poll_until_hit(&f, "/s", "old00000001", &r);
	ck_assert_str_eq(r.body, "new00000002");
	http_reply_free(&r);
	expect_count(&f, "/s", 2, "8 clients within stale-while-revalidate");
	fx_stop(&f);
}
END_TEST

/* RFC 5861 §3: beyond the window the request waits for a revalidation (not STALE). */
START_TEST(test_swr_window_exceeded)
{
	struct fx f;

	fx_start_stale(&f, NULL, "max-age=10, stale-while-revalidate=5", 600);	/* stale by 20 s */
	step(&f, "GET", "/s", NULL, 200, "REVALIDATED", "s00000001", NULL);
	expect_count(&f, "/s", 2, "stale-while-revalidate=5, stale by 20 s");
	fx_stop(&f);
}
END_TEST

/* RFC 5861 §3 with the wall clock: fresh (HIT) for max-age=1, then STALE once the lifetime
 * passed, then HIT again after the background 304. */
START_TEST(test_swr_after_expiry)
{
	struct http_reply r;
	time_t t0 = time(NULL);
	struct fx f;

	fx_start_fetched(&f, NULL, "Cache-Control: max-age=1, stale-while-revalidate=600\r\n"
			 "ETag: \"v1\"\r\n");
	so_set_304(f.o, "/s", "\"v1\"", NULL, fields_304(600));
	/* the Date has whole seconds: stale for sure 3 s after the request was sent */
	while (time(NULL) < t0 + 3)
		nap_ms(50);
	step(&f, "GET", "/s", NULL, 200, "STALE", "s00000001", NULL);
	ck_assert_uint_eq(so_wait_count(f.o, "/s", 2, TIMEOUT_MS), 2);
	poll_until_hit(&f, "/s", NULL, &r);
	ck_assert_str_eq(r.body, "s00000001");
	http_reply_free(&r);
	expect_count(&f, "/s", 2, "after expiry");
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * RFC 5861 stale-if-error
 * ========================================================================================= */

/* RFC 5861 §4: the origin is down (connections refused): a stale response within the
 * stale-if-error window is served (STALE, a negative ttl). RFC 9211 §2.1: the request went
 * forward, so Cache-Status says fwd=stale, not hit ("hit and fwd are exclusive"; a stale
 * response that could not be used without going forward is not a hit) - the contract's
 * "hit; ttl=-3" fits max-stale and stale-while-revalidate, not this. */
START_TEST(test_sie_origin_down)
{
	struct http_reply r;
	struct fx f;

	fx_start_stale(&f, NULL, "max-age=10, stale-if-error=600", 0);
	so_down(f.o);
	step(&f, "GET", "/s", NULL, 200, "STALE", "s00000001", &r);
	expect_ttl(&r, -25, -20);
	expect_cs(&r, "fwd", "stale");
	expect_cs(&r, "hit", NULL);
	ck_assert_int_eq(header_count(&r, "Age"), 1);
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

static const int error_5xx[] = { 500, 502, 503, 504 };

/* RFC 5861 §4: the origin answers 500, 502, 503 or 504: the stale response instead. */
START_TEST(test_sie_origin_5xx)
{
	struct http_reply r;
	struct fx f;

	fx_start_stale(&f, NULL, "max-age=10, stale-if-error=600", 0);
	so_fail(f.o, error_5xx[_i]);
	step(&f, "GET", "/s", NULL, 200, "STALE", "s00000001", &r);
	expect_cs(&r, "fwd", "stale");	/* RFC 9211 §2.2, see test_sie_origin_down */
	expect_cs(&r, "fwd-status", fmt("%d", error_5xx[_i]));
	expect_cs(&r, "hit", NULL);
	http_reply_free(&r);
	expect_count(&f, "/s", 2, "the failed revalidation");
	fx_stop(&f);
}
END_TEST

/* RFC 5861 §4: an origin that does not answer in time (the proxy's 504) is an error too:
 * the stale response is served. */
START_TEST(test_sie_origin_timeout)
{
	struct fx f;

	fx_start_stale(&f, H("--upstream-timeout", "1"), "max-age=10, stale-if-error=600", 0);
	so_hold(f.o, true);
	step(&f, "GET", "/s", NULL, 200, "STALE", "s00000001", NULL);
	fx_stop(&f);
}
END_TEST

/* RFC 5861 §4: beyond the window the error goes to the client (or the proxy's own 5xx). */
START_TEST(test_sie_window_exceeded)
{
	struct fx f;

	fx_start_stale(&f, NULL, "max-age=10, stale-if-error=5", 0);	/* stale by 20 s */
	so_fail(f.o, 503);
	step(&f, "GET", "/s", NULL, 503, NULL, NULL, NULL);
	so_fail(f.o, 0);
	so_down(f.o);
	expect_error_status(&f, 500, 504, "origin down, beyond the window");
	fx_stop(&f);
}
END_TEST

/* Contract: without the directive and without --stale-if-error (default 0) a stale
 * response is not served when the origin fails. */
START_TEST(test_sie_off_by_default)
{
	struct fx f;

	fx_start_stale(&f, NULL, "max-age=10", 0);
	so_down(f.o);
	expect_error_status(&f, 500, 504, "origin down, no stale-if-error");
	fx_stop(&f);
}
END_TEST

/* Contract: --stale-if-error SECONDS gives responses without the directive that window. */
START_TEST(test_sie_default_option)
{
	struct fx f;

	fx_start_stale(&f, H("--stale-if-error", "600"), "max-age=10", 0);
	so_down(f.o);
	step(&f, "GET", "/s", NULL, 200, "STALE", "s00000001", NULL);
	so_up(f.o);
	so_fail(f.o, 502);
	step(&f, "GET", "/s", NULL, 200, "STALE", "s00000001", NULL);
	fx_stop(&f);
}
END_TEST

/* RFC 5861 §4: stale-if-error as a request directive. */
START_TEST(test_sie_request_directive)
{
	struct fx f;

	fx_start_stale(&f, NULL, "max-age=10", 0);
	so_down(f.o);
	step(&f, "GET", "/s", H("Cache-Control: stale-if-error=600"), 200, "STALE", "s00000001",
	     NULL);
	fx_stop(&f);
}
END_TEST

/* RFC 5861 §4, RFC 9111 §5.2.2.2: must-revalidate forbids stale-if-error, also the
 * --stale-if-error default: the origin's 503 (or a 504) reaches the client. */
START_TEST(test_sie_must_revalidate_forbids)
{
	struct fx f;

	fx_start_stale(&f, H("--stale-if-error", "600"),
		       "max-age=10, must-revalidate, stale-if-error=600", 0);
	so_fail(f.o, 503);
	expect_error_status(&f, 503, 504, "must-revalidate, origin 503");
	so_fail(f.o, 0);
	so_down(f.o);
	step(&f, "GET", "/s", NULL, 504, NULL, NULL, NULL);
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * X-Cache and Cache-Status (RFC 9211) for each outcome
 * ========================================================================================= */

/* A stored MISS: "mtps; fwd=uri-miss; fwd-status=200; stored"; its HIT: "mtps; hit;
 * ttl=N" without fwd. */
START_TEST(test_status_miss_then_hit)
{
	struct http_reply r;
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	step(&f, "GET", "/s", NULL, 200, "MISS", NULL, &r);
	expect_cs_name(&r, "mtps");
	expect_cs(&r, "fwd", "uri-miss");
	expect_cs(&r, "fwd-status", "200");
	expect_cs(&r, "stored", "");
	expect_cs(&r, "hit", NULL);
	expect_cs(&r, "key", NULL);
	http_reply_free(&r);
	step(&f, "GET", "/s", NULL, 200, "HIT", NULL, &r);
	expect_cs_name(&r, "mtps");
	expect_cs(&r, "hit", "");
	expect_cs(&r, "fwd", NULL);
	expect_ttl(&r, 55, 60);
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* An uncacheable response: MISS without "stored"; the next request for the URL is BYPASS
 * (hit-for-miss). */
START_TEST(test_status_uncacheable_then_bypass)
{
	static const char *const outcome[] = { "MISS", "BYPASS" }, *const fwd[] = { "uri-miss",
										  "bypass" };
	struct http_reply r;
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: no-store\r\n");
	for (int i = 0; i < 2; i++) {
		step(&f, "GET", "/s", NULL, 200, outcome[i], NULL, &r);
		expect_cs(&r, "fwd", fwd[i]);
		expect_cs(&r, "fwd-status", "200");
		expect_cs(&r, "stored", NULL);
		expect_cs(&r, "hit", NULL);
		http_reply_free(&r);
	}
	fx_stop(&f);
}
END_TEST

/* Requests the cache does not handle (mtps-proxy(8)): unsafe methods and conditions for the
 * origin alone (If-Match): BYPASS, fwd=bypass. */
START_TEST(test_status_bypass)
{
	struct http_reply r;
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	so_set(f.o, "POST /s", 201, "Cache-Control: no-store\r\n", "made");
	step(&f, "POST", "/s", NULL, 201, "BYPASS", "made", &r);
	expect_cs(&r, "fwd", "bypass");
	expect_cs(&r, "fwd-status", "201");
	http_reply_free(&r);
	/* mtps-proxy(8): a condition for the origin alone (If-Match) is not the cache's */
	step(&f, "GET", "/s", H("If-Match: \"zz\""), 200, "BYPASS", NULL, &r);
	expect_cs(&r, "fwd", "bypass");
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* RFC 9110 §14.2, RFC 9111 §3.4 (mtps-proxy(8): the proxy keeps no ranges): a Range request
 * with nothing stored goes to the origin with its Range (MISS), and the 206 is not stored;
 * one that finds a fresh stored response gets the whole of it, 200 (HIT). */
START_TEST(test_range_requests)
{
	const char *const *range = H("Range: bytes=0-1");
	char seen[128];
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	so_set(f.o, "/p", 206, "Cache-Control: max-age=60\r\nContent-Range: bytes 0-1/9\r\n",
	       "p#");
	step(&f, "GET", "/p", range, 206, "MISS", NULL, NULL);
	ck_assert_int_eq(so_last_field(f.o, "/p", "Range", seen, sizeof(seen)), 1);
	ck_assert_str_eq(seen, "bytes=0-1");
	step(&f, "GET", "/p", range, 206, "MISS", NULL, NULL);
	expect_count(&f, "/p", 2, "206 not stored");
	step(&f, "GET", "/s", NULL, 200, "MISS", "s00000001", NULL);
	step(&f, "GET", "/s", range, 200, "HIT", "s00000001", NULL);
	expect_count(&f, "/s", 1, "Range on a stored response");
	fx_stop(&f);
}
END_TEST

/* Concurrent requests sharing one fetch: one origin request; the others say "collapsed". */
START_TEST(test_status_collapsed)
{
	enum { CLIENTS = 4 };
	struct http_batch *b;
	int collapsed = 0;
	struct fx f;

	fx_start_route(&f, NULL, 200, "Cache-Control: max-age=60\r\n");
	b = held_batch(&f, "/s", CLIENTS);
	for (int i = 0; i < TIMEOUT_MS / 10 && so_count(f.o, "/s") == 0; i++)
		http_batch_run(b, 10);
	ck_assert_uint_eq(so_count(f.o, "/s"), 1);
	/* only lets the other requests reach the proxy: no result depends on it but the
	 * "collapsed" count, which needs one request to overlap */
	http_batch_run(b, proc_wrapped() ? 3000 : 300);
	so_hold(f.o, false);
	ck_assert_int_eq(http_batch_run(b, TIMEOUT_MS), 0);
	for (int i = 0; i < CLIENTS; i++) {
		const struct http_reply *c = http_batch_reply(b, i);

		ck_assert_msg(c->status == 200 && strcmp(c->body, "s00000001") == 0,
			      "client %d: %ld %s", i, c->status, c->body);
		collapsed += cs_param(c, "collapsed") != NULL;
	}
	http_batch_free(b);
	ck_assert_msg(collapsed >= 1, "no reply says collapsed");
	expect_count(&f, "/s", 1, "collapsed requests");
	fx_stop(&f);
}
END_TEST

/* --cache-status-key adds key="..."; --via-name names the cache. */
START_TEST(test_status_key_and_name)
{
	struct http_reply r;
	const char *key;
	struct fx f;

	fx_start(&f, H("--cache-status-key", "--via-name", "edge1"));
	so_set(f.o, "/s?q=1", 200, "Cache-Control: max-age=60\r\n", "s########");
	expect_stored(&f, "/s?q=1", NULL, 200, "s00000001", "?q=1", &r);
	expect_cs_name(&r, "edge1");
	key = cs_param(&r, "key");
	ck_assert_msg(key && key[0] == '"' && strstr(key, "/s?q=1"), "Cache-Status \"%s\"",
		      hdr(&r, "Cache-Status"));
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* =========================================================================================
 * Fields on hits
 * ========================================================================================= */

/* §5.1: every hit has exactly one Age, replacing the stored one (here the origin's Age: 5). */
START_TEST(test_age_on_hits_never_duplicated)
{
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/a", 200, "Cache-Control: max-age=100\r\nAge: 5\r\n", "a");
	so_set(f.o, "/b", 200, "Cache-Control: max-age=100\r\n", "b");
	expect_fresh(&f, "/a", "a", TTL_AGE(90, 95, 5, 10));
	expect_fresh(&f, "/b", "b", TTL_AGE(95, 100, 0, 5));
	step(&f, "HEAD", "/b", NULL, 200, "HIT", "", &r);
	expect_age(&r, 0, 5);
	http_reply_free(&r);
	fx_stop(&f);
}
END_TEST

/* §3.1, RFC 9110 §7.6.1: hop-by-hop fields of the stored response (Connection and the
 * fields it names, Keep-Alive, Proxy-Connection...) are not replayed on hits. */
START_TEST(test_hop_by_hop_not_replayed)
{
	static const char *const hop[] = { "X-Foo", "Keep-Alive", "Proxy-Connection",
					   "Upgrade", "Trailer" };
	struct http_reply r;
	struct fx f;

	fx_start(&f, NULL);
	so_set(f.o, "/s", 200, "Cache-Control: max-age=60\r\nConnection: X-Foo, Upgrade\r\n"
	       "X-Foo: bar\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
	       "Upgrade: h2c\r\nTrailer: X-Sum\r\nX-End: yes\r\n", "s");
	step(&f, "GET", "/s", NULL, 200, "MISS", "s", NULL);
	for (int i = 0; i < 2; i++) {
		step(&f, "GET", "/s", NULL, 200, "HIT", "s", &r);
		for (size_t k = 0; k < ARRAY_LEN(hop); k++)
			ck_assert_msg(http_reply_header(&r, hop[k]) == NULL, "hit %d: %s: %s", i,
				      hop[k], hdr(&r, hop[k]));
		ck_assert_msg(!strcasestr(hdr(&r, "Connection"), "X-Foo"), "Connection: %s",
			      hdr(&r, "Connection"));
		ck_assert_str_eq(hdr(&r, "X-End"), "yes");
		http_reply_free(&r);
	}
	fx_stop(&f);
}
END_TEST

static Suite *rfc9111_suite(void)
{
	Suite *s = suite_create("rfc9111");
	TCase *st = tcase_create("storing"), *fr = tcase_create("freshness");
	TCase *cc = tcase_create("cache-control"), *va = tcase_create("vary");
	TCase *vl = tcase_create("validation"), *in = tcase_create("invalidation");
	TCase *sw = tcase_create("stale"), *cs = tcase_create("status");
	TCase *all[] = { st, fr, cc, va, vl, in, sw, cs };

	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		tcase_set_timeout(all[i], 300);
		suite_add_tcase(s, all[i]);
	}
	tcase_add_loop_test(st, test_store_heuristically_cacheable_status, 0,
			    ARRAY_LEN(heuristic_statuses));
	tcase_add_loop_test(st, test_store_explicit_freshness_any_status, 0,
			    ARRAY_LEN(explicit_statuses));
	tcase_add_loop_test(st, test_heuristic_not_for_302, 0,
			    ARRAY_LEN(not_heuristic_statuses));
	tcase_add_test(st, test_store_public_heuristic_302);
	tcase_add_test(st, test_store_206_never);
	tcase_add_loop_test(st, test_store_no_store_private, 0, ARRAY_LEN(never_stored_cc));
	tcase_add_test(st, test_store_authorization_refused);
	tcase_add_test(st, test_store_must_understand);
	tcase_add_test(st, test_store_head_miss_not_stored);
	tcase_add_loop_test(st, test_store_authorization_allowed, 0, ARRAY_LEN(auth_ok_cc));
	tcase_add_test(st, test_store_set_cookie_default);
	tcase_add_test(st, test_store_set_cookie_refuse);
	tcase_add_test(st, test_store_cut_body_never);
	tcase_add_test(st, test_store_get_only_head_from_get);
	tcase_add_test(st, test_store_stale_on_arrival_without_validator);
	tcase_add_test(st, test_store_key_host_and_target);

	tcase_add_test(fr, test_freshness_s_maxage_over_max_age);
	tcase_add_test(fr, test_freshness_max_age_over_expires);
	tcase_add_test(fr, test_freshness_expires_minus_date);
	tcase_add_loop_test(fr, test_freshness_invalid_expires, 0, ARRAY_LEN(invalid_expires));
	tcase_add_test(fr, test_freshness_heuristic_last_modified);
	tcase_add_test(fr, test_freshness_heuristic_max);
	tcase_add_test(fr, test_freshness_age_field);
	tcase_add_test(fr, test_freshness_age_from_date);
	tcase_add_test(fr, test_freshness_age_overflow);
	tcase_add_test(fr, test_freshness_date_in_future);

	tcase_add_loop_test(cc, test_cc_parse_fresh_forms, 0, ARRAY_LEN(cc_fresh_forms));
	tcase_add_loop_test(cc, test_cc_parse_unusable_forms, 0, ARRAY_LEN(cc_unusable_forms));
	tcase_add_test(cc, test_req_no_cache);
	tcase_add_test(cc, test_req_pragma);
	tcase_add_test(cc, test_req_no_store);
	tcase_add_test(cc, test_req_max_age);
	tcase_add_test(cc, test_req_max_stale);
	tcase_add_test(cc, test_req_min_fresh);
	tcase_add_test(cc, test_req_only_if_cached);
	tcase_add_test(cc, test_resp_no_cache);
	tcase_add_test(cc, test_resp_no_cache_field);
	tcase_add_loop_test(cc, test_resp_must_revalidate_origin_down, 0,
			    ARRAY_LEN(revalidate_cc));
	tcase_add_loop_test(cc, test_resp_must_revalidate_beats_max_stale, 0,
			    ARRAY_LEN(revalidate_cc));
	tcase_add_test(cc, test_resp_immutable);
	tcase_add_test(cc, test_resp_no_transform);

	tcase_add_test(va, test_vary_variants_side_by_side);
	tcase_add_test(va, test_vary_normalised);
	tcase_add_test(va, test_vary_star);
	tcase_add_test(va, test_vary_missing_field);

	tcase_add_test(vl, test_validation_if_none_match_304_merge);
	tcase_add_test(vl, test_validation_if_modified_since);
	tcase_add_test(vl, test_validation_200_replaces);
	tcase_add_test(vl, test_validation_client_if_none_match);
	tcase_add_test(vl, test_validation_client_if_modified_since);
	tcase_add_test(vl, test_validation_weak_comparison);
	tcase_add_test(vl, test_validation_if_none_match_star);
	tcase_add_test(vl, test_validation_304_merge_exceptions);
	tcase_add_test(vl, test_validation_304_drops_old_age);
	tcase_add_test(vl, test_validation_304_other_etag);
	tcase_add_test(vl, test_vary_long_value);
	tcase_add_test(vl, test_validation_stale_on_arrival_race);
	tcase_add_test(vl, test_validation_inm_overrides_ims);
	tcase_add_test(vl, test_validation_conditions_only_for_2xx);
	tcase_add_test(vl, test_validation_conditional_miss);
	tcase_add_test(vl, test_validation_client_conditional_on_stale);

	tcase_add_loop_test(in, test_invalidate_unsafe_method, 0, ARRAY_LEN(unsafe_methods));
	tcase_add_loop_test(in, test_invalidate_location, 0, 4);
	tcase_add_loop_test(in, test_invalidate_not_on_error, 0, ARRAY_LEN(error_statuses));
	tcase_add_test(in, test_invalidate_not_other_host);
	tcase_add_test(in, test_invalidate_on_3xx);
	tcase_add_test(in, test_invalidate_only_target);
	tcase_add_test(in, test_invalidate_all_variants);

	tcase_add_test(sw, test_swr_stale_at_once_one_revalidation);
	tcase_add_test(sw, test_swr_window_exceeded);
	tcase_add_test(sw, test_swr_after_expiry);
	tcase_add_test(sw, test_sie_origin_down);
	tcase_add_loop_test(sw, test_sie_origin_5xx, 0, ARRAY_LEN(error_5xx));
	tcase_add_test(sw, test_sie_window_exceeded);
	tcase_add_test(sw, test_sie_origin_timeout);
	tcase_add_test(sw, test_sie_off_by_default);
	tcase_add_test(sw, test_sie_default_option);
	tcase_add_test(sw, test_sie_request_directive);
	tcase_add_test(sw, test_sie_must_revalidate_forbids);

	tcase_add_test(cs, test_status_miss_then_hit);
	tcase_add_test(cs, test_status_uncacheable_then_bypass);
	tcase_add_test(cs, test_status_bypass);
	tcase_add_test(cs, test_range_requests);
	tcase_add_test(cs, test_status_collapsed);
	tcase_add_test(cs, test_status_key_and_name);
	tcase_add_test(cs, test_age_on_hits_never_duplicated);
	tcase_add_test(cs, test_hop_by_hop_not_replayed);
	return s;
}

CHECK_MAIN(rfc9111_suite)

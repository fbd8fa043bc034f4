/* api.c - mtps-origin's routes (see api.h).
 *
 * A request's life in libmicrohttpd's callback protocol: the first call for a request
 * allocates its struct request and only decides what it can from the headers (route,
 * method, a Content-Length over the limit); the next calls feed the body, which is kept up
 * to --max-body and discarded past it; the last call (no more body) answers. A request that
 * must wait for --latency-ms is suspended there and resumed by the delay queue's thread,
 * which makes libmicrohttpd call us once more.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api.h"
#include "http.h"
#include "log.h"
#include "opts.h"
#include "pattern.h"

#define API_LIST_DEFAULT_LIMIT 100
#define API_LIST_MAX_LIMIT 1000
#define API_JSON_MAX_DEPTH 16
#define API_LARGE_BLOCK (64 * 1024)
#define API_BODY_DISCARD_MAX (1024 * 1024)	/* body past --max-body read before closing */

struct request {
	struct api_match match;
	unsigned method;	/* enum api_method bit, 0 when not implemented */
	int early_status;	/* decided from the headers or the body (400, 413, 501), or 0 */
	char early_reason[96];	/* what to say with it */
	uint64_t discarded;	/* body bytes dropped past --max-body */
	bool delayed;		/* the --latency-ms wait is behind us */
	char *body;		/* at most cfg.max_body bytes */
	size_t len;
	size_t cap;
};

/* ---- pure parts ------------------------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned bit;
} methods[] = {
	{ "GET", API_GET }, { "HEAD", API_HEAD }, { "POST", API_POST }, { "PUT", API_PUT },
	{ "PATCH", API_PATCH }, { "DELETE", API_DELETE }, { "OPTIONS", API_OPTIONS },
};

#define READ_METHODS (API_GET | API_HEAD | API_OPTIONS)

static const struct {
	const char *path;
	enum api_route route;
	unsigned allowed;
} routes[] = {
	{ "/health", API_HEALTH, READ_METHODS },
	{ "/api/test", API_TEST, READ_METHODS },
	{ "/api/users", API_USERS, READ_METHODS | API_POST },
	{ "/api/large", API_LARGE, READ_METHODS },
};

#define USER_PREFIX "/api/users/"
#define USER_METHODS (READ_METHODS | API_PUT | API_PATCH | API_DELETE)

unsigned api_method_parse(const char *method)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(method, methods[i].name) == 0)
			return methods[i].bit;
	return 0;
}

void api_route_match(const char *path, struct api_match *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(path, routes[i].path) == 0) {
			m->route = routes[i].route;
			m->allowed = routes[i].allowed;
			return;
		}
	}
	if (strncmp(path, USER_PREFIX, strlen(USER_PREFIX)) == 0) {
		const char *s = path + strlen(USER_PREFIX);
		uint64_t id = 0;

		/* digits only, no sign, no leading zero, at most 2^63 */
		if (s[0] < '1' || s[0] > '9' || strlen(s) > 19)
			return;
		for (; *s; s++) {
			if (!isdigit((unsigned char)*s))
				return;
			id = id * 10 + (uint64_t)(*s - '0');
		}
		if (id > (UINT64_C(1) << 63))
			return;
		m->route = API_USER;
		m->id = id;
		m->allowed = USER_METHODS;
	}
}

void api_allow_format(unsigned allowed, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (!(allowed & methods[i].bit))
			continue;
		int r = snprintf(buf + n, len - n, "%s%s", n ? ", " : "", methods[i].name);

		if (r < 0 || (size_t)r >= len - n)
			return;
		n += (size_t)r;
	}
}

static bool domain_label_valid(const char *s, size_t len)
{
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

bool api_email_valid(const char *email)
{
	const char *at = strchr(email, '@');
	const char *domain, *dot, *label;
	size_t local_len;

	if (at == NULL || strchr(at + 1, '@') != NULL || strlen(email) > USER_EMAIL_MAX)
		return false;
	local_len = (size_t)(at - email);
	if (local_len == 0 || local_len > 64)
		return false;
	/* a dot-atom (RFC 5322 §3.2.3): no dot first, last, or twice in a row */
	if (email[0] == '.' || at[-1] == '.' || memmem(email, local_len, "..", 2))
		return false;
	for (const char *p = email; p < at; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c >= 0x7f || strchr("\"(),:;<>[\\]", c))
			return false;
	}
	domain = at + 1;
	if (strchr(domain, '.') == NULL)
		return false;
	for (label = domain; (dot = strchr(label, '.')) != NULL; label = dot + 1)
		if (!domain_label_valid(label, (size_t)(dot - label)))
			return false;
	return domain_label_valid(label, strlen(label));
}

/* Says whether <s> is well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates,
 * nothing past U+10FFFF. json-c lets some of these through. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* Copies a JSON string member into <dst>. Returns 0 or -EINVAL with <err>. */
static int take_string(struct json_object *v, const char *key, char *dst, size_t max,
		       char *err, size_t errlen)
{
	const char *s;
	size_t n;

	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "'%s' must be a string", key);
		return -EINVAL;
	}
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0) {
		snprintf(err, errlen, "'%s' must not be empty", key);
		return -EINVAL;
	}
	if (n > max) {
		snprintf(err, errlen, "'%s' is longer than %zu bytes", key, max);
		return -EINVAL;
	}
	if (strlen(s) != n) {
		snprintf(err, errlen, "'%s' must not contain NUL characters", key);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(err, errlen, "'%s' must not contain control characters", key);
			return -EINVAL;
		}
	}
	if (!utf8_valid((const unsigned char *)s, n)) {
		snprintf(err, errlen, "'%s' is not valid UTF-8", key);
		return -EINVAL;
	}
	memcpy(dst, s, n + 1);
	return 0;
}

int api_user_input_parse(const char *body, size_t len, bool require_all, uint64_t id,
			 struct api_user_input *in, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	int r = 0;

	memset(in, 0, sizeof(*in));
	if (len == 0) {
		snprintf(err, errlen, "the request body is empty; expected a JSON object");
		return -EINVAL;
	}
	if (memchr(body, '\0', len)) {	/* json-c would stop reading there */
		snprintf(err, errlen, "invalid JSON: the body contains a NUL byte");
		return -EINVAL;
	}
	tok = json_tokener_new_ex(API_JSON_MAX_DEPTH);
	if (tok == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	/* strict mode also refuses anything but white space after the value */
	if (obj == NULL || jerr != json_tokener_success) {
		if (jerr == json_tokener_continue)
			snprintf(err, errlen, "invalid JSON: unexpected end of input");
		else
			snprintf(err, errlen, "invalid JSON at byte %zu: %s",
				 json_tokener_get_parse_end(tok), json_tokener_error_desc(jerr));
		r = -EINVAL;
		goto out;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(err, errlen, "expected a JSON object with \"name\" and \"email\"");
		r = -EINVAL;
		goto out;
	}
	json_object_object_foreach(obj, key, val) {
		if (strcmp(key, "name") == 0) {
			r = take_string(val, key, in->name, USER_NAME_MAX, err, errlen);
			in->has_name = r == 0;
		} else if (strcmp(key, "email") == 0) {
			r = take_string(val, key, in->email, USER_EMAIL_MAX, err, errlen);
			if (r == 0 && !api_email_valid(in->email)) {
				snprintf(err, errlen, "'email' is not a valid address: %s", in->email);
				r = -EINVAL;
			}
			in->has_email = r == 0;
		} else if (strcmp(key, "id") == 0) {
			if (!json_object_is_type(val, json_type_int) || id == 0 ||
			    (uint64_t)json_object_get_uint64(val) != id) {
				snprintf(err, errlen, "'id' cannot be set or changed");
				r = -EINVAL;
			}
		} else if (strcmp(key, "version") == 0) {
			/* read-only, ignored, but still well-typed */
			if (!json_object_is_type(val, json_type_int)) {
				snprintf(err, errlen, "'version' must be a whole number");
				r = -EINVAL;
			}
		} else if (strcmp(key, "created_at") == 0 || strcmp(key, "updated_at") == 0) {
			if (!json_object_is_type(val, json_type_string)) {
				snprintf(err, errlen, "'%s' must be a string", key);
				r = -EINVAL;
			}
		} else {
			snprintf(err, errlen, "unknown field '%s'", key);
			r = -EINVAL;
		}
		if (r)
			goto out;
	}
	if (require_all && !(in->has_name && in->has_email)) {
		snprintf(err, errlen, "'%s' is required", in->has_name ? "email" : "name");
		r = -EINVAL;
	} else if (!require_all && !in->has_name && !in->has_email) {
		snprintf(err, errlen, "nothing to change: give 'name' or 'email'");
		r = -EINVAL;
	}
out:
	if (obj)
		json_object_put(obj);
	json_tokener_free(tok);
	return r;
}

/* ---- responses --------------------------------------------------------------------------- */

static void add_common_headers(struct api *api, struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "X-Served-By", api->cfg.name);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, PACKAGE_NAME "-origin/" PACKAGE_VERSION);
	if (atomic_load(&api->draining))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Queues <resp> with <status> and the headers every response carries, then drops our
 * reference. */
static enum MHD_Result queue(struct api *api, struct MHD_Connection *c, unsigned status,
			     struct MHD_Response *resp)
{
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;	/* out of memory: MHD closes the connection */
	add_common_headers(api, resp);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Returns <obj> as JSON text plus a newline (malloc'd, length in *len) and releases
 * <obj>. Returns NULL when out of memory (or when <obj> is NULL). */
static char *json_text(struct json_object *obj, size_t *len)
{
	const char *text;
	char *out;

	if (obj == NULL)
		return NULL;
	text = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
	out = malloc(*len + 1);
	if (out) {
		memcpy(out, text, *len);
		out[(*len)++] = '\n';
	}
	json_object_put(obj);
	return out;
}

/* Builds an application/json response that takes over <text>. Frees it on failure. */
static struct MHD_Response *text_response(char *text, size_t len)
{
	struct MHD_Response *resp;

	if (text == NULL)
		return NULL;
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return resp;
}

static struct MHD_Response *json_response(struct json_object *obj)
{
	size_t len = 0;
	char *text = json_text(obj, &len);

	return text_response(text, len);
}

/* Builds the body {"error": "...", "status": N}. */
static struct MHD_Response *error_response(unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct MHD_Response *error_response(unsigned status, const char *fmt, ...)
{
	struct json_object *obj = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (obj) {
		json_object_object_add(obj, "error", json_object_new_string(msg));
		json_object_object_add(obj, "status", json_object_new_int((int)status));
	}
	return json_response(obj);
}

#define respond_error(api, c, status, ...) \
	queue((api), (c), (status), error_response((status), __VA_ARGS__))

static struct MHD_Response *empty_response(void)
{
	return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
}

static void set_validators(struct MHD_Response *resp, const char *etag, time_t modified)
{
	if (etag)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	if (modified) {
		char date[HTTP_DATE_LEN];

		http_date_format(modified, date);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
	}
}

static void set_cache_headers(struct MHD_Response *resp, const char *etag, time_t modified,
			      uint64_t max_age_s, bool public)
{
	char buf[64];

	set_validators(resp, etag, modified);
	snprintf(buf, sizeof(buf), "%smax-age=%" PRIu64, public ? "public, " : "", max_age_s);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, buf);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static bool has_preconditions(struct MHD_Connection *c)
{
	return header(c, MHD_HTTP_HEADER_IF_MATCH) || header(c, MHD_HTTP_HEADER_IF_NONE_MATCH) ||
	       header(c, MHD_HTTP_HEADER_IF_MODIFIED_SINCE) ||
	       header(c, MHD_HTTP_HEADER_IF_UNMODIFIED_SINCE);
}

/* Evaluates the request's preconditions in the order of RFC 9110 §13.2.2 against the
 * target's current representation: its entity-tag <etag> (NULL when it has none) and
 * its modification time <modified> (0 when it has none). Returns 0 to go on with the
 * method, MHD_HTTP_NOT_MODIFIED (GET and HEAD only) or MHD_HTTP_PRECONDITION_FAILED.
 * Callers evaluate only requests that would otherwise succeed (§13.2.1). */
static unsigned preconditions(struct MHD_Connection *c, unsigned method, const char *etag,
			      time_t modified)
{
	const char *im = header(c, MHD_HTTP_HEADER_IF_MATCH);
	const char *ius = header(c, MHD_HTTP_HEADER_IF_UNMODIFIED_SINCE);
	const char *inm = header(c, MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *ims = header(c, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	bool read = method == API_GET || method == API_HEAD;
	time_t t;

	/* steps 1 and 2: the state the client expects is still the current one */
	if (im) {
		if (etag == NULL || !http_etag_match(im, etag, true))
			return MHD_HTTP_PRECONDITION_FAILED;
	} else if (ius && modified && http_date_parse(ius, &t) == 0 && modified > t) {
		return MHD_HTTP_PRECONDITION_FAILED;
	}
	/* steps 3 and 4: the client's copy is not already current */
	if (inm) {
		if (etag && http_etag_match(inm, etag, false))
			return read ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_PRECONDITION_FAILED;
	} else if (read && ims && modified && http_date_parse(ims, &t) == 0 && modified <= t) {
		return MHD_HTTP_NOT_MODIFIED;
	}
	return 0;
}

/* Answers <ok>, the 200 response for the current representation (taken over; NULL when
 * out of memory), with its validators and caching headers, or a 304 / 412 instead when
 * the preconditions say so. */
static enum MHD_Result respond_representation(struct api *api, struct MHD_Connection *c,
					      unsigned method, struct MHD_Response *ok,
					      const char *etag, time_t modified,
					      uint64_t max_age_s, bool public)
{
	unsigned status = preconditions(c, method, etag, modified);
	struct MHD_Response *resp = ok;

	if (status == MHD_HTTP_PRECONDITION_FAILED) {
		if (ok)
			MHD_destroy_response(ok);
		return respond_error(api, c, status, "precondition failed: the resource is at %s",
				     etag);
	}
	if (status == MHD_HTTP_NOT_MODIFIED) {
		if (ok)
			MHD_destroy_response(ok);
		resp = empty_response();
	} else {
		status = MHD_HTTP_OK;
	}
	if (resp)
		set_cache_headers(resp, etag, modified, max_age_s, public);
	return queue(api, c, status, resp);
}

/* ---- status routes ----------------------------------------------------------------------- */

static enum MHD_Result serve_status(struct api *api, struct MHD_Connection *c)
{
	struct json_object *o = json_object_new_object();
	struct MHD_Response *resp;
	uint64_t uptime_ms;
	char uptime[32];

	if (o == NULL)
		return MHD_NO;
	json_object_object_add(o, "status", json_object_new_string("ok"));
	json_object_object_add(o, "name", json_object_new_string(api->cfg.name));
	json_object_object_add(o, "port", json_object_new_int(api->cfg.port));
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	uptime_ms = delay_now_ms() - api->started_ms;
	snprintf(uptime, sizeof(uptime), "%" PRIu64 ".%03" PRIu64, uptime_ms / 1000,
		 uptime_ms % 1000);
	json_object_object_add(o, "uptime_s",
			       json_object_new_double_s((double)uptime_ms / 1000.0, uptime));
	json_object_object_add(o, "requests",
			       json_object_new_uint64(atomic_load(&api->requests)));
	json_object_object_add(o, "status_requests",
			       json_object_new_uint64(atomic_load(&api->status_requests)));
	json_object_object_add(o, "in_flight",
			       json_object_new_int64(atomic_load(&api->in_flight)));
	json_object_object_add(o, "users", json_object_new_uint64(users_count(api->users)));
	json_object_object_add(o, "latency_ms", json_object_new_int64(api->cfg.latency_ms));
	resp = json_response(o);
	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return queue(api, c, MHD_HTTP_OK, resp);
}

/* ---- users ------------------------------------------------------------------------------- */

static void iso8601(time_t t, char buf[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static struct json_object *user_json(const struct user *u)
{
	struct json_object *o = json_object_new_object();
	char created[32], updated[32];

	if (o == NULL)
		return NULL;
	iso8601(u->created, created);
	iso8601(u->updated, updated);
	json_object_object_add(o, "id", json_object_new_uint64(u->id));
	json_object_object_add(o, "name", json_object_new_string(u->name));
	json_object_object_add(o, "email", json_object_new_string(u->email));
	json_object_object_add(o, "version", json_object_new_uint64(u->version));
	json_object_object_add(o, "created_at", json_object_new_string(created));
	json_object_object_add(o, "updated_at", json_object_new_string(updated));
	return o;
}

/* FNV-1a, 64 bits: tells representations apart, not a security measure. */
static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A user's representation and its strong entity-tag. The tag reads "u<id>-v<version>-"
 * for people and ends in a hash of the bytes, so that it changes whenever they do
 * (RFC 9110 §8.8.3): two instances, or two runs, with different data for the same id
 * and version never share a tag. Returns the text (malloc'd) or NULL. */
static char *user_representation(const struct user *u, size_t *len, char etag[64])
{
	char *text = json_text(user_json(u), len);

	if (text)
		snprintf(etag, 64, "\"u%" PRIu64 "-v%" PRIu64 "-%08" PRIx64 "\"", u->id,
			 u->version, fnv1a(text, *len) >> 32);
	return text;
}

/* Last-Modified only once the second of the change is over: until then another change in
 * the same second could not be told apart by If-Modified-Since (RFC 9110 §8.8.2.2). */
static time_t last_modified(time_t updated)
{
	return updated < time(NULL) ? updated : 0;
}

/* Parses an optional non-negative query argument. Returns 0 or -EINVAL. */
static int query_count(struct MHD_Connection *c, const char *name, size_t def, size_t max,
		       size_t *out)
{
	const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	long long v;

	if (s == NULL) {
		*out = def;
		return 0;
	}
	if (opts_parse_int(s, &v) || v < 0 || (unsigned long long)v > max)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

/* The list page at <offset>, <limit> and its entity-tag (a hash of its bytes). */
static char *list_representation(struct api *api, size_t offset, size_t limit, size_t *len,
				 char etag[64])
{
	struct json_object *o = json_object_new_object();
	struct json_object *arr = NULL;
	struct user *page;
	size_t total, n = 0;
	uint64_t version;
	char *text;

	page = users_list(api->users, offset, limit, &n, &total, &version);
	if (page)
		arr = json_object_new_array_ext((int)n);
	if (o == NULL || arr == NULL) {
		json_object_put(o);
		json_object_put(arr);
		free(page);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, user_json(&page[i]));
	free(page);
	json_object_object_add(o, "users", arr);
	json_object_object_add(o, "total", json_object_new_uint64(total));
	json_object_object_add(o, "offset", json_object_new_uint64(offset));
	json_object_object_add(o, "limit", json_object_new_uint64(limit));
	text = json_text(o, len);
	if (text)
		snprintf(etag, 64, "\"users-%016" PRIx64 "\"", fnv1a(text, *len));
	return text;
}

static enum MHD_Result list_users(struct api *api, struct MHD_Connection *c, unsigned method)
{
	size_t limit, offset, len;
	char etag[64], *text;

	if (query_count(c, "limit", API_LIST_DEFAULT_LIMIT, API_LIST_MAX_LIMIT, &limit))
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST,
				     "'limit' must be a whole number from 0 to %d",
				     API_LIST_MAX_LIMIT);
	if (query_count(c, "offset", 0, SIZE_MAX / 2, &offset))
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST,
				     "'offset' must be a whole number of 0 or more");
	text = list_representation(api, offset, limit, &len, etag);
	if (text == NULL)
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	return respond_representation(api, c, method, text_response(text, len), etag, 0,
				      api->cfg.max_age_s, false);
}

static enum MHD_Result write_error(struct api *api, struct MHD_Connection *c, int r,
				   uint64_t id, const char *email)
{
	switch (r) {
	case -ENOENT:
		return respond_error(api, c, MHD_HTTP_NOT_FOUND, "no user with id %" PRIu64, id);
	case -EEXIST:
		return respond_error(api, c, MHD_HTTP_CONFLICT,
				     "a user with email %s already exists", email);
	case -ESTALE:
		return respond_error(api, c, MHD_HTTP_PRECONDITION_FAILED,
				     "user %" PRIu64 " has changed (precondition failed)", id);
	case -ENOSPC:
		return respond_error(api, c, MHD_HTTP_INSUFFICIENT_STORAGE,
				     "the user table is full");
	case -EINVAL:
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST, "invalid user fields");
	default:
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", strerror(-r));
	}
}

/* Checks the request's media type and parses its JSON body into <in>. Returns MHD_YES
 * with *answered false to go on, or the result of the error answer with *answered true. */
static enum MHD_Result read_user_input(struct api *api, struct MHD_Connection *c,
				       struct request *rq, struct api_user_input *in,
				       bool *answered)
{
	const char *ctype = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
	struct MHD_Response *resp;
	char err[256];

	*answered = true;
	if (!http_media_type_is(ctype, "application/json")) {
		resp = error_response(MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
				      "Content-Type must be application/json, not %s",
				      ctype ? ctype : "(none)");
		if (resp) {	/* RFC 9110 §15.5.16, RFC 5789 §2.2: say what would do */
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT, "application/json");
			if (rq->method == API_PATCH)
				MHD_add_response_header(resp, "Accept-Patch", "application/json");
		}
		return queue(api, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, resp);
	}
	if (api_user_input_parse(rq->body, rq->len, rq->method != API_PATCH, rq->match.id, in,
				 err, sizeof(err)))
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST, "%s", err);
	*answered = false;
	return MHD_YES;
}

/* POST /api/users */
static enum MHD_Result create_user(struct api *api, struct MHD_Connection *c,
				   struct request *rq)
{
	struct api_user_input in;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char etag[64], location[64], *text;
	struct user u;
	bool answered;
	size_t len;
	int r;

	if (has_preconditions(c)) {
		/* the collection is the target; its first page stands for its state */
		text = list_representation(api, 0, API_LIST_DEFAULT_LIMIT, &len, etag);
		free(text);
		if (text == NULL)
			return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
					     "out of memory");
		if (preconditions(c, rq->method, etag, 0))
			return respond_error(api, c, MHD_HTTP_PRECONDITION_FAILED,
					     "precondition failed: the collection is at %s", etag);
	}
	ret = read_user_input(api, c, rq, &in, &answered);
	if (answered)
		return ret;
	r = users_create(api->users, in.name, in.email, time(NULL), &u);
	if (r)
		return write_error(api, c, r, 0, in.email);
	text = user_representation(&u, &len, etag);
	if (text == NULL)
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	resp = text_response(text, len);
	if (resp == NULL)
		return MHD_NO;
	snprintf(location, sizeof(location), "/api/users/%" PRIu64, u.id);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_LOCATION, location);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);	/* of the new user */
	return queue(api, c, MHD_HTTP_CREATED, resp);
}

/* GET, HEAD, PUT, PATCH, DELETE /api/users/ID */
static enum MHD_Result serve_user(struct api *api, struct MHD_Connection *c,
				  struct request *rq)
{
	uint64_t id = rq->match.id, if_version = 0;
	struct api_user_input in;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char etag[64], *text;
	unsigned status;
	struct user u;
	bool answered;
	size_t len;
	int r;

	/* A user that does not exist is a 404 whatever the preconditions say: they count
	 * only for requests that would otherwise succeed (RFC 9110 §13.2.1). */
	if (users_get(api->users, id, &u))
		return write_error(api, c, -ENOENT, id, NULL);
	text = user_representation(&u, &len, etag);
	if (text == NULL)
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	if (rq->method == API_GET || rq->method == API_HEAD)
		return respond_representation(api, c, rq->method, text_response(text, len),
					      etag, last_modified(u.updated), api->cfg.max_age_s,
					      false);
	free(text);

	/* Conditions before the content (§13.2.1); a write made under a condition happens
	 * only if the user is still at the version the condition was checked against. */
	status = preconditions(c, rq->method, etag, last_modified(u.updated));
	if (status)
		return respond_error(api, c, status, "precondition failed: user %" PRIu64
				     " is at %s", id, etag);
	if (has_preconditions(c))
		if_version = u.version;
	if (rq->method == API_DELETE) {
		r = users_delete(api->users, id, if_version);
		if (r)
			return write_error(api, c, r, id, NULL);
		return queue(api, c, MHD_HTTP_NO_CONTENT, empty_response());
	}
	ret = read_user_input(api, c, rq, &in, &answered);
	if (answered)
		return ret;
	r = users_update(api->users, id, in.has_name ? in.name : NULL,
			 in.has_email ? in.email : NULL, if_version, time(NULL), &u);
	if (r)
		return write_error(api, c, r, id, in.email);
	text = user_representation(&u, &len, etag);
	if (text == NULL)
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	resp = text_response(text, len);
	/* The stored user is not the PUT body (id, version and times are added), so a PUT
	 * answer carries no validator (RFC 9110 §9.3.4); PATCH answers with the new tag. */
	if (resp && rq->method == API_PATCH)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	return queue(api, c, MHD_HTTP_OK, resp);
}

/* ---- large ------------------------------------------------------------------------------- */

struct large_body {
	uint64_t size;
};

static ssize_t large_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct large_body *lb = cls;
	size_t n;

	if (pos >= lb->size)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = lb->size - pos < max ? (size_t)(lb->size - pos) : max;
	pattern_fill(buf, pos, n);
	return (ssize_t)n;
}

static enum MHD_Result serve_large(struct api *api, struct MHD_Connection *c, unsigned method)
{
	const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "size");
	struct MHD_Response *resp;
	struct large_body *lb;
	uint64_t size;
	char etag[64];

	if (arg == NULL)
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST,
				     "the 'size' query parameter is required, e.g. ?size=1M");
	if (opts_parse_size(arg, &size) || size > api->cfg.max_large)
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST,
				     "'size' must be a number of bytes (or 64K, 1M, 2G) from 0 to %" PRIu64,
				     api->cfg.max_large);
	/* the bytes depend on the size alone: the same tag on every instance, forever */
	snprintf(etag, sizeof(etag), "\"large-%" PRIu64 "\"", size);
	lb = malloc(sizeof(*lb));
	if (lb == NULL)
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	lb->size = size;
	/* streamed: the body is generated block by block as the socket takes it */
	resp = MHD_create_response_from_callback(size, API_LARGE_BLOCK, large_reader, lb, free);
	if (resp == NULL) {
		free(lb);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	return respond_representation(api, c, method, resp, etag, 0, api->cfg.large_max_age_s,
				      true);
}

static enum MHD_Result respond_early(struct api *api, struct MHD_Connection *c,
				     struct request *rq)
{
	if (rq->early_status == MHD_HTTP_CONTENT_TOO_LARGE)
		return respond_error(api, c, MHD_HTTP_CONTENT_TOO_LARGE,
				     "the request body is larger than %" PRIu64 " bytes",
				     api->cfg.max_body);
	return respond_error(api, c, (unsigned)rq->early_status, "%s", rq->early_reason);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static enum MHD_Result dispatch(struct api *api, struct MHD_Connection *c, struct request *rq,
				const char *url, const char *method)
{
	struct MHD_Response *resp;
	char allow[128];

	if (rq->method == 0)
		return respond_error(api, c, MHD_HTTP_NOT_IMPLEMENTED,
				     "method %s is not implemented", method);
	if (rq->match.route == API_NOT_FOUND)
		return respond_error(api, c, MHD_HTTP_NOT_FOUND, "no such resource: %s", url);
	if (!(rq->match.allowed & rq->method) || rq->method == API_OPTIONS) {
		unsigned status;

		if (rq->method == API_OPTIONS) {
			status = MHD_HTTP_NO_CONTENT;
			resp = empty_response();
		} else {
			status = MHD_HTTP_METHOD_NOT_ALLOWED;
			resp = error_response(status, "method %s is not allowed on %s", method, url);
		}
		api_allow_format(rq->match.allowed, allow, sizeof(allow));
		if (resp)	/* RFC 9110 §15.5.6: a 405 lists what is allowed */
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
		return queue(api, c, status, resp);
	}
	if (rq->early_status)
		return respond_early(api, c, rq);
	switch (rq->match.route) {
	case API_HEALTH:
	case API_TEST:
		return serve_status(api, c);
	case API_USERS:
		if (rq->method == API_POST)
			return create_user(api, c, rq);
		return list_users(api, c, rq->method);
	case API_USER:
		return serve_user(api, c, rq);
	case API_LARGE:
		return serve_large(api, c, rq->method);
	case API_NOT_FOUND:
		break;
	}
	return MHD_NO;
}

static void resume_connection(void *arg)
{
	MHD_resume_connection(arg);
}

/* /health answers at once, always: supervisors and load balancers rely on it. */
static bool route_is_delayed(enum api_route route)
{
	return route == API_TEST || route == API_USERS || route == API_USER ||
	       route == API_LARGE;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	http_framing_add(cls, key, value);
	return MHD_YES;
}

static void refuse(struct request *rq, int status, const char *reason)
{
	rq->early_status = status;
	snprintf(rq->early_reason, sizeof(rq->early_reason), "%s", reason);
}

/* Checks how the request is framed (common/http.h). */
static void check_framing(struct api *api, struct MHD_Connection *c, struct request *rq,
			  const char *version)
{
	struct http_framing f = { 0 };
	const char *reason;
	int status;

	MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &f);
	status = http_framing_check(&f, strcmp(version, MHD_HTTP_VERSION_1_1) == 0,
				    api->cfg.max_body, &reason);
	if (status)
		refuse(rq, status, reason);
}

/* First call for a request: decide what the headers allow us to. */
static struct request *request_begin(struct api *api, struct MHD_Connection *c,
				     const char *url, const char *method, const char *version)
{
	struct request *rq = calloc(1, sizeof(*rq));

	if (rq == NULL)
		return NULL;
	atomic_fetch_add(&api->in_flight, 1);
	api_route_match(url, &rq->match);
	rq->method = api_method_parse(method);
	if (rq->match.route == API_HEALTH || rq->match.route == API_TEST)
		atomic_fetch_add(&api->status_requests, 1);
	else
		atomic_fetch_add(&api->requests, 1);
	check_framing(api, c, rq, version);
	return rq;
}

/* Keeps up to --max-body bytes of the request body; past that, drops them and remembers
 * 413. Returns false once more than API_BODY_DISCARD_MAX bytes were dropped: the
 * connection is then closed rather than read on forever (libmicrohttpd 0.9.75 cannot send
 * an answer before the body has been read). */
static bool request_body(struct api *api, struct request *rq, const char *data, size_t n)
{
	if (rq->early_status) {
		rq->discarded += n;
		return rq->discarded <= API_BODY_DISCARD_MAX;
	}
	if (n > api->cfg.max_body - rq->len) {
		refuse(rq, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is too large");
		free(rq->body);
		rq->body = NULL;
		rq->len = rq->cap = 0;
		rq->discarded = n;
		return true;
	}
	if (rq->len + n > rq->cap) {
		size_t cap = rq->cap ? rq->cap : 1024;
		char *body;

		while (cap < rq->len + n)
			cap *= 2;
		if (cap > api->cfg.max_body)
			cap = (size_t)api->cfg.max_body;
		body = realloc(rq->body, cap);
		if (body == NULL) {
			refuse(rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
			       "out of memory reading the request body");
			return true;
		}
		rq->body = body;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
	return true;
}

enum MHD_Result api_handler(void *cls, struct MHD_Connection *connection, const char *url,
			    const char *method, const char *version, const char *upload_data,
			    size_t *upload_data_size, void **con_cls)
{
	struct api *api = cls;
	struct request *rq = *con_cls;

	if (rq == NULL) {
		rq = request_begin(api, connection, url, method, version);
		*con_cls = rq;
		if (rq == NULL)
			return MHD_NO;
		/* refuse before reading any body; MHD then closes the connection */
		if (rq->early_status)
			return respond_early(api, connection, rq);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		bool go_on = request_body(api, rq, upload_data, *upload_data_size);

		*upload_data_size = 0;
		return go_on ? MHD_YES : MHD_NO;
	}
	if (rq->early_status == MHD_HTTP_INTERNAL_SERVER_ERROR)
		return respond_early(api, connection, rq);
	if (api->delay && !rq->delayed && rq->method && route_is_delayed(rq->match.route)) {
		/* suspend first: the queue may resume us as soon as we are in it */
		rq->delayed = true;
		MHD_suspend_connection(connection);
		if (delay_add(api->delay, delay_now_ms() + api->cfg.latency_ms,
			      resume_connection, connection))
			MHD_resume_connection(connection);	/* full or stopping: answer now */
		return MHD_YES;
	}
	return dispatch(api, connection, rq, url, method);
}

size_t api_unescape(void *cls, struct MHD_Connection *connection, char *s)
{
	/* %00 would cut the string short and %2F would add a path segment: either way one
	 * resource would answer to many spellings. Such strings stay as they are, so they
	 * match no route or value and get a 404 or 400. */
	for (const char *p = strchr(s, '%'); p; p = strchr(p + 1, '%'))
		if ((p[1] == '0' && p[2] == '0') || (p[1] == '2' && (p[2] == 'f' || p[2] == 'F')))
			return strlen(s);
	return MHD_http_unescape(s);
}

void api_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
		   enum MHD_RequestTerminationCode toe)
{
	struct api *api = cls;
	struct request *rq = *con_cls;

	if (rq == NULL)
		return;
	free(rq->body);
	free(rq);
	*con_cls = NULL;
	if (atomic_fetch_sub(&api->in_flight, 1) == 1 && atomic_load(&api->draining)) {
		uint64_t one = 1;

		/* wake main(): the last in-flight request of a drain is done */
		if (write(api->idle_fd, &one, sizeof(one)) < 0)
			log_warn("cannot signal the end of the drain: %s", strerror(errno));
	}
}

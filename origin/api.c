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

struct request {
	struct api_match match;
	unsigned method;	/* enum api_method bit, 0 when not implemented */
	int early_status;	/* decided while reading the body (413), else 0 */
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
		} else if (strcmp(key, "version") != 0 && strcmp(key, "created_at") != 0 &&
			   strcmp(key, "updated_at") != 0) {
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

/* Builds a response whose body is <obj> as JSON plus a newline; releases <obj>. Returns
 * NULL when out of memory (or when <obj> is NULL). */
static struct MHD_Response *json_response(struct json_object *obj)
{
	struct MHD_Response *resp = NULL;
	const char *text;
	size_t len;
	char *body;

	if (obj == NULL)
		return NULL;
	text = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	body = malloc(len + 1);
	if (body) {
		memcpy(body, text, len);
		body[len] = '\n';
		resp = MHD_create_response_from_buffer(len + 1, body, MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			free(body);
		else
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						"application/json");
	}
	json_object_put(obj);
	return resp;
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

static void set_cache_headers(struct MHD_Response *resp, const char *etag, time_t modified,
			      uint64_t max_age_s, bool public)
{
	char buf[64];

	if (etag)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	if (modified) {
		char date[HTTP_DATE_LEN];

		http_date_format(modified, date);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
	}
	snprintf(buf, sizeof(buf), "%smax-age=%" PRIu64, public ? "public, " : "", max_age_s);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, buf);
}

/* RFC 9110 §13.1.2 and §13.1.3: whether a GET or HEAD may be answered 304. If-None-Match
 * wins; If-Modified-Since counts only without it. */
static bool not_modified(struct MHD_Connection *c, const char *etag, time_t modified)
{
	const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *ims;
	time_t since;

	if (inm)
		return http_etag_match(inm, etag, false);
	ims = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	return modified && ims && http_date_parse(ims, &since) == 0 && modified <= since;
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

static void user_etag(const struct user *u, char buf[64])
{
	snprintf(buf, 64, "\"u%" PRIu64 "-v%" PRIu64 "\"", u->id, u->version);
}

/* Answers a user with its validators. Used by reads (200/304) and writes (200/201). */
static enum MHD_Result respond_user(struct api *api, struct MHD_Connection *c, unsigned status,
				    const struct user *u, bool cacheable)
{
	struct MHD_Response *resp;
	char etag[64];

	user_etag(u, etag);
	if (cacheable && not_modified(c, etag, u->updated)) {
		status = MHD_HTTP_NOT_MODIFIED;
		resp = empty_response();
	} else {
		resp = json_response(user_json(u));
	}
	if (resp == NULL)
		return MHD_NO;
	if (cacheable) {
		set_cache_headers(resp, etag, u->updated, api->cfg.max_age_s, false);
	} else {
		char date[HTTP_DATE_LEN];

		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
		http_date_format(u->updated, date);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
	}
	if (status == MHD_HTTP_CREATED) {
		char location[64];

		snprintf(location, sizeof(location), "/api/users/%" PRIu64, u->id);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_LOCATION, location);
	}
	return queue(api, c, status, resp);
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
	if (parse_ll(s, &v) || v < 0 || (unsigned long long)v > max)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

static enum MHD_Result list_users(struct api *api, struct MHD_Connection *c)
{
	struct json_object *o, *arr;
	struct MHD_Response *resp;
	struct user *page;
	size_t limit, offset, total, n;
	uint64_t version;
	char etag[64];

	if (query_count(c, "limit", API_LIST_DEFAULT_LIMIT, API_LIST_MAX_LIMIT, &limit))
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST,
				     "'limit' must be a whole number from 0 to %d",
				     API_LIST_MAX_LIMIT);
	if (query_count(c, "offset", 0, SIZE_MAX / 2, &offset))
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST,
				     "'offset' must be a whole number of 0 or more");
	page = calloc(limit ? limit : 1, sizeof(*page));
	if (page == NULL)
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	n = users_list(api->users, offset, limit, page, &total, &version);
	snprintf(etag, sizeof(etag), "\"users-v%" PRIu64 "\"", version);
	if (not_modified(c, etag, 0)) {
		free(page);
		resp = empty_response();
		if (resp)
			set_cache_headers(resp, etag, 0, api->cfg.max_age_s, false);
		return queue(api, c, MHD_HTTP_NOT_MODIFIED, resp);
	}
	o = json_object_new_object();
	arr = json_object_new_array_ext((int)n);
	if (o == NULL || arr == NULL) {
		json_object_put(o);
		json_object_put(arr);
		free(page);
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, user_json(&page[i]));
	free(page);
	json_object_object_add(o, "users", arr);
	json_object_object_add(o, "total", json_object_new_uint64(total));
	json_object_object_add(o, "offset", json_object_new_uint64(offset));
	json_object_object_add(o, "limit", json_object_new_uint64(limit));
	resp = json_response(o);
	if (resp)
		set_cache_headers(resp, etag, 0, api->cfg.max_age_s, false);
	return queue(api, c, MHD_HTTP_OK, resp);
}

/* Checks If-Match (RFC 9110 §13.1.1) against user <id>. Returns 0 and the version a write
 * must still find (0: no condition), or the HTTP status to answer: 412 when the tag is not
 * current, 404 when the user does not exist (rather than a 412 that says nothing). */
static unsigned precondition(struct api *api, struct MHD_Connection *c, uint64_t id,
			     uint64_t *if_version)
{
	const char *im = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_IF_MATCH);
	struct user u;
	char etag[64];

	*if_version = 0;
	if (im == NULL)
		return 0;
	if (users_get(api->users, id, &u))
		return MHD_HTTP_NOT_FOUND;
	user_etag(&u, etag);
	if (!http_etag_match(im, etag, true))
		return MHD_HTTP_PRECONDITION_FAILED;
	*if_version = u.version;
	return 0;
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
				     "user %" PRIu64 " has changed (If-Match)", id);
	case -ENOSPC:
		return respond_error(api, c, MHD_HTTP_INSUFFICIENT_STORAGE,
				     "the user table is full");
	case -EINVAL:
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST, "invalid user fields");
	default:
		return respond_error(api, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", strerror(-r));
	}
}

static enum MHD_Result write_user(struct api *api, struct MHD_Connection *c,
				  struct request *rq)
{
	const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_CONTENT_TYPE);
	bool create = rq->method == API_POST;
	struct api_user_input in;
	uint64_t if_version = 0;
	struct user u;
	char err[256];
	unsigned status;
	int r;

	if (!http_media_type_is(ctype, "application/json"))
		return respond_error(api, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
				     "Content-Type must be application/json, not %s",
				     ctype ? ctype : "(none)");
	r = api_user_input_parse(rq->body, rq->len, rq->method != API_PATCH, rq->match.id, &in,
				 err, sizeof(err));
	if (r)
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST, "%s", err);
	if (create) {
		r = users_create(api->users, in.name, in.email, time(NULL), &u);
		if (r)
			return write_error(api, c, r, 0, in.email);
		log_debug("created user %" PRIu64, u.id);
		return respond_user(api, c, MHD_HTTP_CREATED, &u, false);
	}
	status = precondition(api, c, rq->match.id, &if_version);
	if (status)
		return write_error(api, c, status == MHD_HTTP_NOT_FOUND ? -ENOENT : -ESTALE,
				   rq->match.id, NULL);
	r = users_update(api->users, rq->match.id, in.has_name ? in.name : NULL,
			 in.has_email ? in.email : NULL, if_version, time(NULL), &u);
	if (r)
		return write_error(api, c, r, rq->match.id, in.email);
	return respond_user(api, c, MHD_HTTP_OK, &u, false);
}

static enum MHD_Result serve_users(struct api *api, struct MHD_Connection *c,
				   struct request *rq)
{
	uint64_t if_version;
	unsigned status;
	struct user u;
	int r;

	if (rq->match.route == API_USERS)
		return rq->method == API_POST ? write_user(api, c, rq) : list_users(api, c);
	switch (rq->method) {
	case API_GET:
	case API_HEAD:
		if (users_get(api->users, rq->match.id, &u))
			return write_error(api, c, -ENOENT, rq->match.id, NULL);
		return respond_user(api, c, MHD_HTTP_OK, &u, true);
	case API_DELETE:
		status = precondition(api, c, rq->match.id, &if_version);
		if (status)
			return write_error(api, c,
					   status == MHD_HTTP_NOT_FOUND ? -ENOENT : -ESTALE,
					   rq->match.id, NULL);
		r = users_delete(api->users, rq->match.id, if_version);
		if (r)
			return write_error(api, c, r, rq->match.id, NULL);
		return queue(api, c, MHD_HTTP_NO_CONTENT, empty_response());
	default:
		return write_user(api, c, rq);
	}
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

static enum MHD_Result serve_large(struct api *api, struct MHD_Connection *c)
{
	const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "size");
	struct MHD_Response *resp;
	struct large_body *lb;
	uint64_t size;
	char etag[64];

	if (arg == NULL)
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST,
				     "the 'size' query parameter is required, e.g. ?size=1M");
	if (parse_size(arg, &size) || size > api->cfg.max_large)
		return respond_error(api, c, MHD_HTTP_BAD_REQUEST,
				     "'size' must be a number of bytes (or 64K, 1M, 2G) from 0 to %" PRIu64,
				     api->cfg.max_large);
	snprintf(etag, sizeof(etag), "\"large-%" PRIu64 "\"", size);
	if (not_modified(c, etag, 0)) {
		resp = empty_response();
		if (resp)
			set_cache_headers(resp, etag, 0, api->cfg.large_max_age_s, true);
		return queue(api, c, MHD_HTTP_NOT_MODIFIED, resp);
	}
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
	set_cache_headers(resp, etag, 0, api->cfg.large_max_age_s, true);
	return queue(api, c, MHD_HTTP_OK, resp);
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
	if (rq->early_status == MHD_HTTP_CONTENT_TOO_LARGE)
		return respond_error(api, c, MHD_HTTP_CONTENT_TOO_LARGE,
				     "the request body is larger than %" PRIu64 " bytes",
				     api->cfg.max_body);
	switch (rq->match.route) {
	case API_HEALTH:
	case API_TEST:
		return serve_status(api, c);
	case API_USERS:
	case API_USER:
		return serve_users(api, c, rq);
	case API_LARGE:
		return serve_large(api, c);
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

/* First call for a request: decide what the headers allow us to. */
static struct request *request_begin(struct api *api, struct MHD_Connection *c,
				     const char *url, const char *method, const char *version)
{
	struct request *rq = calloc(1, sizeof(*rq));
	const char *cl;
	long long len;

	if (rq == NULL)
		return NULL;
	atomic_fetch_add(&api->in_flight, 1);
	api_route_match(url, &rq->match);
	rq->method = api_method_parse(method);
	if (rq->match.route == API_HEALTH || rq->match.route == API_TEST)
		atomic_fetch_add(&api->status_requests, 1);
	else
		atomic_fetch_add(&api->requests, 1);
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && parse_ll(cl, &len) == 0 && (uint64_t)len > api->cfg.max_body)
		rq->early_status = MHD_HTTP_CONTENT_TOO_LARGE;
	/* RFC 9112 §3.2: an HTTP/1.1 request without Host gets a 400 */
	if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST) == NULL)
		rq->early_status = MHD_HTTP_BAD_REQUEST;
	return rq;
}

/* Keeps up to --max-body bytes of the request body; past that, drops it and remembers 413. */
static void request_body(struct api *api, struct request *rq, const char *data, size_t n)
{
	if (rq->early_status)
		return;
	if (n > api->cfg.max_body - rq->len) {
		rq->early_status = MHD_HTTP_CONTENT_TOO_LARGE;
		free(rq->body);
		rq->body = NULL;
		rq->len = rq->cap = 0;
		return;
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
			rq->early_status = MHD_HTTP_INTERNAL_SERVER_ERROR;
			return;
		}
		rq->body = body;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
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
		if (rq->early_status == MHD_HTTP_BAD_REQUEST)
			return respond_error(api, connection, MHD_HTTP_BAD_REQUEST,
					     "an HTTP/1.1 request needs a Host header");
		if (rq->early_status == MHD_HTTP_CONTENT_TOO_LARGE)
			return respond_error(api, connection, MHD_HTTP_CONTENT_TOO_LARGE,
					     "the request body is larger than %" PRIu64 " bytes",
					     api->cfg.max_body);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		request_body(api, rq, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->early_status == MHD_HTTP_INTERNAL_SERVER_ERROR)
		return respond_error(api, connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
				     "out of memory reading the request body");
	if (api->delay && !rq->delayed && rq->method && route_is_delayed(rq->match.route)) {
		/* suspend first: the queue may resume us as soon as we are in it */
		rq->delayed = true;
		MHD_suspend_connection(connection);
		if (delay_add(api->delay, delay_now_ms() + api->cfg.latency_ms,
			      resume_connection, connection))
			MHD_resume_connection(connection);	/* queue full: answer now */
		return MHD_YES;
	}
	return dispatch(api, connection, rq, url, method);
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

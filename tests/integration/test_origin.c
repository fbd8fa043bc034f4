/* Integration tests: one real mtps-origin on a free loopback port, every route and every
 * error it promises, over HTTP with libcurl. */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "pattern.h"
#include "proc.h"

#define MAX_BODY 4096
#define START_TIMEOUT_MS 60000	/* generous: the server may run under valgrind */

static struct proc origin;
static const char *const json_ctype[] = { "Content-Type: application/json", NULL };

static void origin_start(void)
{
	const char *args[] = { "--seed-users", "5", "--max-body", "4K", "--max-large", "128M",
			       "--threads", "2", NULL };
	int r = proc_start(&origin, getenv("MTPS_ORIGIN"), args, NULL, START_TIMEOUT_MS);

	if (r) {
		fprintf(stderr, "cannot start %s: %d\n", getenv("MTPS_ORIGIN"), r);
		exit(1);
	}
}

static void origin_stop(void)
{
	int status = proc_stop(&origin, SIGTERM, START_TIMEOUT_MS);

	if (status != 0) {
		/* a leak report under the sanitizers or valgrind also lands here */
		fprintf(stderr, "mtps-origin exited with status %d\n", status);
		exit(1);
	}
}

static char *url(const char *path)
{
	static char buf[4][256];
	static int next;
	char *u = buf[next++ % 4];

	snprintf(u, 256, "%s%s", origin.url, path);
	return u;
}

/* Sends a request and checks that an answer came; the caller frees *r. */
static void request(const char *method, const char *path, const char *const *headers,
		    const char *body, struct http_reply *r)
{
	int ret = http_request(method, url(path), headers, body, body ? strlen(body) : 0, r);

	const char *by;
	char name[32];

	ck_assert_msg(ret == 0, "%s %s: curl error %d", method, path, r->curl_code);
	/* every answer, errors included, names the instance */
	by = http_reply_header(r, "X-Served-By");
	snprintf(name, sizeof(name), "origin-%d", origin.port);
	ck_assert_msg(by && strcmp(by, name) == 0, "%s %s: X-Served-By %s", method, path,
		      by ? by : "(none)");
}

/* Creates a user and returns its id. */
static uint64_t create_user(const char *name, const char *email)
{
	struct http_reply r;
	struct json_object *o;
	char body[512];
	uint64_t id;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"email\":\"%s\"}", name, email);
	request("POST", "/api/users", json_ctype, body, &r);
	ck_assert_msg(r.status == 201, "create %s: %ld %s", email, r.status, r.body);
	o = expect_json(&r);
	id = (uint64_t)expect_jint(o, "id");
	json_object_put(o);
	http_reply_free(&r);
	return id;
}

static int64_t status_field(const char *key)
{
	struct http_reply r;
	struct json_object *o;
	int64_t v;

	request("GET", "/health", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	o = expect_json(&r);
	v = expect_jint(o, key);
	json_object_put(o);
	http_reply_free(&r);
	return v;
}

/* ---- status ---- */

START_TEST(test_status_routes)
{
	static const char *const paths[] = { "/health", "/api/test" };
	char name[32];

	snprintf(name, sizeof(name), "origin-%d", origin.port);
	for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
		struct http_reply r;
		struct json_object *o;

		request("GET", paths[i], NULL, NULL, &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(http_reply_header(&r, "X-Served-By"), name);
		ck_assert_str_eq(http_reply_header(&r, "Cache-Control"), "no-store");
		o = expect_json(&r);
		ck_assert_str_eq(expect_jstr(o, "name"), name);
		ck_assert_int_eq(expect_jint(o, "port"), origin.port);
		ck_assert_int_ge(expect_jint(o, "in_flight"), 1);	/* this request */
		ck_assert(json_object_object_get_ex(o, "uptime_s", NULL));
		json_object_put(o);
		http_reply_free(&r);
	}
}
END_TEST

/* `requests` counts what reached the API, not status probes, so tests (and the proxy's
 * tests) can count exactly what an instance served. */
START_TEST(test_request_counter)
{
	int64_t before = status_field("requests");
	int64_t status_before = status_field("status_requests");
	struct http_reply r;

	for (int i = 0; i < 3; i++) {
		request("GET", "/api/users/2", NULL, NULL, &r);
		http_reply_free(&r);
	}
	request("GET", "/no/such/path", NULL, NULL, &r);
	http_reply_free(&r);
	ck_assert_int_eq(status_field("requests"), before + 4);
	ck_assert_int_eq(status_field("status_requests"), status_before + 2);
}
END_TEST

/* ---- users ---- */

START_TEST(test_get_seeded_user)
{
	struct http_reply r;
	struct json_object *o;

	request("GET", "/api/users/2", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(http_reply_header(&r, "Content-Type"), "application/json");
	ck_assert_str_eq(http_reply_header(&r, "Cache-Control"), "max-age=60");
	ck_assert_msg(strncmp(http_reply_header(&r, "ETag"), "\"u2-v1-", 7) == 0, "ETag %s",
		      http_reply_header(&r, "ETag"));
	/* seeded users carry a fixed time, so that every instance has the same bytes */
	ck_assert_str_eq(http_reply_header(&r, "Last-Modified"), "Thu, 01 Jan 2026 00:00:00 GMT");
	o = expect_json(&r);
	ck_assert_int_eq(expect_jint(o, "id"), 2);
	ck_assert_str_eq(expect_jstr(o, "name"), "User 2");
	ck_assert_str_eq(expect_jstr(o, "email"), "user2@example.com");
	ck_assert_int_eq(expect_jint(o, "version"), 1);
	json_object_put(o);
	http_reply_free(&r);
}
END_TEST

START_TEST(test_conditional_get)
{
	struct http_reply r;
	char inm[128], ims[128], etag[64];
	const char *const h_inm[] = { inm, NULL };
	const char *const h_ims[] = { ims, NULL };

	request("GET", "/api/users/3", NULL, NULL, &r);
	snprintf(etag, sizeof(etag), "%s", http_reply_header(&r, "ETag"));
	snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
	snprintf(ims, sizeof(ims), "If-Modified-Since: %s", http_reply_header(&r, "Last-Modified"));
	http_reply_free(&r);

	request("GET", "/api/users/3", h_inm, NULL, &r);	/* RFC 9110 §13.1.2 */
	ck_assert_int_eq(r.status, 304);
	ck_assert_uint_eq(r.len, 0);
	ck_assert_str_eq(http_reply_header(&r, "ETag"), etag);
	ck_assert_str_eq(http_reply_header(&r, "Cache-Control"), "max-age=60");
	http_reply_free(&r);

	snprintf(inm, sizeof(inm), "If-None-Match: \"x\", W/%s", etag);	/* weak compare */
	request("GET", "/api/users/3", h_inm, NULL, &r);
	ck_assert_int_eq(r.status, 304);
	http_reply_free(&r);

	snprintf(inm, sizeof(inm), "If-None-Match: \"u3-v0\"");
	request("GET", "/api/users/3", h_inm, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);

	request("GET", "/api/users/3", h_ims, NULL, &r);		/* §13.1.3 */
	ck_assert_int_eq(r.status, 304);
	http_reply_free(&r);

	snprintf(ims, sizeof(ims), "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT");
	request("GET", "/api/users/3", h_ims, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
}
END_TEST

START_TEST(test_create_read)
{
	struct http_reply r;
	struct json_object *o;
	char location[64];
	uint64_t id;

	request("POST", "/api/users", json_ctype,
		"{\"name\":\"Grace Hopper\",\"email\":\"grace@example.org\"}", &r);
	ck_assert_int_eq(r.status, 201);
	o = expect_json(&r);
	id = (uint64_t)expect_jint(o, "id");
	ck_assert_str_eq(expect_jstr(o, "name"), "Grace Hopper");
	ck_assert_int_eq(expect_jint(o, "version"), 1);
	json_object_put(o);
	snprintf(location, sizeof(location), "/api/users/%" PRIu64, id);
	ck_assert_str_eq(http_reply_header(&r, "Location"), location);
	ck_assert_ptr_nonnull(http_reply_header(&r, "ETag"));
	http_reply_free(&r);

	request("GET", location, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	o = expect_json(&r);
	ck_assert_str_eq(expect_jstr(o, "email"), "grace@example.org");
	json_object_put(o);
	http_reply_free(&r);
}
END_TEST

START_TEST(test_put_patch_delete)
{
	uint64_t id = create_user("Ada", "ada@example.org");
	struct http_reply r;
	struct json_object *o;
	char path[64], etag[64];

	snprintf(path, sizeof(path), "/api/users/%" PRIu64, id);
	request("PUT", path, json_ctype, "{\"name\":\"Ada L\",\"email\":\"ada.l@example.org\"}", &r);
	ck_assert_int_eq(r.status, 200);
	/* RFC 9110 §9.3.4: what is stored is not the PUT body, so no validators */
	ck_assert_ptr_null(http_reply_header(&r, "ETag"));
	ck_assert_ptr_null(http_reply_header(&r, "Last-Modified"));
	o = expect_json(&r);
	ck_assert_str_eq(expect_jstr(o, "name"), "Ada L");
	ck_assert_int_eq(expect_jint(o, "version"), 2);
	json_object_put(o);
	http_reply_free(&r);

	request("PUT", path, json_ctype, "{\"name\":\"only a name\"}", &r);
	expect_error(&r, 400, "'email' is required");
	http_reply_free(&r);

	request("PATCH", path, json_ctype, "{\"name\":\"Ada Lovelace\"}", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(http_reply_header(&r, "ETag"));
	o = expect_json(&r);
	ck_assert_str_eq(expect_jstr(o, "name"), "Ada Lovelace");
	ck_assert_str_eq(expect_jstr(o, "email"), "ada.l@example.org");	/* kept */
	ck_assert_int_eq(expect_jint(o, "version"), 3);
	json_object_put(o);
	http_reply_free(&r);

	request("GET", path, NULL, NULL, &r);
	snprintf(etag, sizeof(etag), "\"u%" PRIu64 "-v3-", id);
	ck_assert_msg(strncmp(http_reply_header(&r, "ETag"), etag, strlen(etag)) == 0, "ETag %s",
		      http_reply_header(&r, "ETag"));
	http_reply_free(&r);

	request("DELETE", path, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	ck_assert_uint_eq(r.len, 0);
	http_reply_free(&r);
	request("GET", path, NULL, NULL, &r);
	expect_error(&r, 404, "no user with id");
	http_reply_free(&r);
	request("DELETE", path, NULL, NULL, &r);
	expect_error(&r, 404, "no user with id");
	http_reply_free(&r);
	request("PUT", "/api/users/999999", json_ctype, "{\"name\":\"x\",\"email\":\"x@y.org\"}", &r);
	expect_error(&r, 404, "no user with id 999999");
	http_reply_free(&r);
}
END_TEST

/* Returns user <id>'s current ETag in <etag>. */
static void current_etag(uint64_t id, char *etag, size_t len)
{
	struct http_reply r;
	char path[64];

	snprintf(path, sizeof(path), "/api/users/%" PRIu64, id);
	request("GET", path, NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	snprintf(etag, len, "%s", http_reply_header(&r, "ETag"));
	http_reply_free(&r);
}

/* RFC 9110 §13.1.1: writes with If-Match only when the tag is current. */
START_TEST(test_if_match)
{
	uint64_t id = create_user("Edsger", "edsger@example.org");
	char path[64], tag[64], cond[128];
	const char *const h[] = { json_ctype[0], cond, NULL };
	struct http_reply r;

	snprintf(path, sizeof(path), "/api/users/%" PRIu64, id);
	current_etag(id, tag, sizeof(tag));
	snprintf(cond, sizeof(cond), "If-Match: \"u%" PRIu64 "-v0-00000000\"", id);
	request("PATCH", path, h, "{\"name\":\"E\"}", &r);
	expect_error(&r, 412, "precondition failed");
	http_reply_free(&r);
	snprintf(cond, sizeof(cond), "If-Match: W/%s", tag);	/* strong comparison */
	request("PATCH", path, h, "{\"name\":\"E\"}", &r);
	expect_error(&r, 412, "precondition failed");
	http_reply_free(&r);
	snprintf(cond, sizeof(cond), "If-Match: %s", tag);
	request("PATCH", path, h, "{\"name\":\"E\"}", &r);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
	request("DELETE", path, h, NULL, &r);	/* that tag is stale now */
	expect_error(&r, 412, "precondition failed");
	http_reply_free(&r);
	snprintf(cond, sizeof(cond), "If-Match: *");
	request("DELETE", path, h, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	http_reply_free(&r);
	/* §13.2.1: a request that would be a 404 ignores its preconditions */
	request("DELETE", path, h, NULL, &r);
	expect_error(&r, 404, "no user with id");
	http_reply_free(&r);
}
END_TEST

/* §13.1.2: If-None-Match on a write is false when the tag matches: 412, nothing done.
 * §13.1.4: If-Unmodified-Since before the last change: 412. */
START_TEST(test_write_preconditions)
{
	uint64_t id = create_user("Barbara", "barbara@example.org");
	char path[64], tag[64], cond[128];
	const char *const h[] = { json_ctype[0], cond, NULL };
	struct http_reply r;

	snprintf(path, sizeof(path), "/api/users/%" PRIu64, id);
	current_etag(id, tag, sizeof(tag));
	snprintf(cond, sizeof(cond), "If-None-Match: %s", tag);
	request("DELETE", path, h, NULL, &r);
	expect_error(&r, 412, "precondition failed");
	http_reply_free(&r);
	snprintf(cond, sizeof(cond), "If-None-Match: *");
	request("PUT", path, h, "{\"name\":\"B\",\"email\":\"barbara@example.org\"}", &r);
	expect_error(&r, 412, "precondition failed");
	http_reply_free(&r);
	request("POST", "/api/users", h, "{\"name\":\"B\",\"email\":\"b2@example.org\"}", &r);
	expect_error(&r, 412, "the collection is at");
	http_reply_free(&r);
	current_etag(id, cond, sizeof(cond));
	ck_assert_str_eq(cond, tag);	/* nothing changed */

	/* seeded user 4 was last changed on 2026-01-01 */
	snprintf(cond, sizeof(cond), "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT");
	request("PATCH", "/api/users/4", h, "{\"name\":\"x\"}", &r);
	expect_error(&r, 412, "precondition failed");
	http_reply_free(&r);
	snprintf(cond, sizeof(cond), "If-Unmodified-Since: Thu, 01 Jan 2026 00:00:00 GMT");
	request("GET", "/api/users/4", h, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
}
END_TEST

START_TEST(test_duplicate_email)
{
	uint64_t id = create_user("Alan", "alan@example.org");
	struct http_reply r;
	char path[64];

	request("POST", "/api/users", json_ctype, "{\"name\":\"A2\",\"email\":\"ALAN@example.org\"}",
		&r);
	expect_error(&r, 409, "already exists");
	http_reply_free(&r);
	create_user("Other", "other@example.org");
	snprintf(path, sizeof(path), "/api/users/%" PRIu64, id);
	request("PATCH", path, json_ctype, "{\"email\":\"other@example.org\"}", &r);
	expect_error(&r, 409, "already exists");
	http_reply_free(&r);
}
END_TEST

static const struct {
	const char *method;
	const char *path;
	const char *content_type;
	const char *body;
	long status;
	const char *reason;
} bad_requests[] = {
	{ "GET", "/nope", NULL, NULL, 404, "no such resource: /nope" },
	{ "GET", "/api/users/abc", NULL, NULL, 404, "no such resource" },
	{ "POST", "/api/users", "text/plain", "{}", 415, "Content-Type must be application/json" },
	{ "POST", "/api/users", NULL, "{}", 415, "Content-Type must be application/json" },
	{ "POST", "/api/users", "application/json", "{\"name\":", 400, "invalid JSON" },
	{ "POST", "/api/users", "application/json", "", 400, "body is empty" },
	{ "POST", "/api/users", "application/json", "{\"name\":\"x\",\"email\":\"nope\"}", 400,
	  "not a valid address" },
	{ "POST", "/api/users", "application/json; charset=utf-8", "{\"email\":\"a@b.org\"}", 400,
	  "'name' is required" },
	{ "PATCH", "/api/users/1", "application/json", "{\"role\":\"admin\"}", 400,
	  "unknown field 'role'" },
	{ "DELETE", "/api/users", NULL, NULL, 405, "method DELETE is not allowed" },
	{ "POST", "/health", NULL, NULL, 405, "not allowed" },
	{ "PUT", "/api/large", NULL, NULL, 405, "not allowed" },
	{ "BREW", "/api/users", NULL, NULL, 501, "method BREW is not implemented" },
	{ "GET", "/api/users?limit=abc", NULL, NULL, 400, "'limit' must be" },
	{ "GET", "/api/users?limit=1001", NULL, NULL, 400, "'limit' must be" },
	{ "GET", "/api/users?offset=-1", NULL, NULL, 400, "'offset' must be" },
	{ "GET", "/api/large", NULL, NULL, 400, "'size' query parameter is required" },
	{ "GET", "/api/large?size=lots", NULL, NULL, 400, "'size' must be" },
	{ "GET", "/api/large?size=129M", NULL, NULL, 400, "from 0 to 134217728" },
	/* %00 and %2F are not decoded: one resource, one spelling */
	{ "GET", "/api%2Fusers/2", NULL, NULL, 404, "no such resource" },
	{ "GET", "/api/users/2%00junk", NULL, NULL, 404, "no such resource" },
	{ "GET", "/api/large?size=1%00junk", NULL, NULL, 400, "'size' must be" },
};

START_TEST(test_bad_requests)
{
	char ctype[128];
	const char *const headers[] = { ctype, NULL };
	struct http_reply r;

	snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		 bad_requests[_i].content_type ? bad_requests[_i].content_type : "");
	request(bad_requests[_i].method, bad_requests[_i].path, headers, bad_requests[_i].body, &r);
	expect_error(&r, bad_requests[_i].status, bad_requests[_i].reason);
	if (r.status == 405)	/* RFC 9110 §15.5.6 */
		ck_assert_ptr_nonnull(http_reply_header(&r, "Allow"));
	if (r.status == 415)	/* §15.5.16 */
		ck_assert_str_eq(http_reply_header(&r, "Accept"), "application/json");
	http_reply_free(&r);
}
END_TEST

START_TEST(test_allow_and_options)
{
	struct http_reply r;

	request("DELETE", "/api/users", NULL, NULL, &r);
	ck_assert_str_eq(http_reply_header(&r, "Allow"), "GET, HEAD, POST, OPTIONS");
	http_reply_free(&r);
	request("OPTIONS", "/api/users/1", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	ck_assert_str_eq(http_reply_header(&r, "Allow"), "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
	http_reply_free(&r);
}
END_TEST

/* A body over --max-body is refused with 413, whether its size is announced up front
 * (Content-Length) or only known while reading it (chunked). */
START_TEST(test_body_too_large)
{
	const char *const chunked[] = { json_ctype[0], "Transfer-Encoding: chunked", NULL };
	char *body = malloc(MAX_BODY + 2);
	struct http_reply r;

	memset(body, ' ', MAX_BODY + 1);
	body[MAX_BODY + 1] = '\0';
	request("POST", "/api/users", json_ctype, body, &r);
	expect_error(&r, 413, "larger than 4096 bytes");
	http_reply_free(&r);
	request("POST", "/api/users", chunked, body, &r);
	expect_error(&r, 413, "larger than 4096 bytes");
	http_reply_free(&r);
	/* exactly the limit is fine (white space around the JSON) */
	memcpy(body, "{\"name\":\"Max\",\"email\":\"max@example.org\"}", 40);
	body[MAX_BODY] = '\0';
	request("POST", "/api/users", json_ctype, body, &r);
	ck_assert_int_eq(r.status, 201);
	http_reply_free(&r);
	free(body);
	/* and the server keeps serving */
	request("GET", "/health", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
}
END_TEST

START_TEST(test_list)
{
	struct http_reply r;
	struct json_object *o, *users;
	char inm[128];
	const char *const h_inm[] = { inm, NULL };

	request("GET", "/api/users?limit=2&offset=1", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	o = expect_json(&r);
	ck_assert(json_object_object_get_ex(o, "users", &users));
	ck_assert_int_eq(json_object_array_length(users), 2);
	ck_assert_int_eq(expect_jint(json_object_array_get_idx(users, 0), "id"), 2);
	ck_assert_int_eq(expect_jint(json_object_array_get_idx(users, 1), "id"), 3);
	ck_assert_int_ge(expect_jint(o, "total"), 5);
	ck_assert_int_eq(expect_jint(o, "limit"), 2);
	ck_assert_int_eq(expect_jint(o, "offset"), 1);
	json_object_put(o);
	snprintf(inm, sizeof(inm), "If-None-Match: %s", http_reply_header(&r, "ETag"));
	http_reply_free(&r);

	request("GET", "/api/users?limit=2&offset=1", h_inm, NULL, &r);
	ck_assert_int_eq(r.status, 304);
	http_reply_free(&r);
	create_user("Changes", "changes-the-list@example.org");
	request("GET", "/api/users?limit=2&offset=1", h_inm, NULL, &r);
	ck_assert_int_eq(r.status, 200);	/* any write changes the list's tag */
	http_reply_free(&r);

	request("GET", "/api/users?limit=0", NULL, NULL, &r);
	o = expect_json(&r);
	ck_assert(json_object_object_get_ex(o, "users", &users));
	ck_assert_int_eq(json_object_array_length(users), 0);
	json_object_put(o);
	http_reply_free(&r);
}
END_TEST

/* HEAD answers GET's headers, Content-Length included, with no body (RFC 9110 §9.3.2). */
START_TEST(test_head)
{
	static const char *const paths[] = { "/api/users/2", "/health", "/api/large?size=100000",
					     "/api/users?limit=3" };

	for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
		struct http_reply g, h;

		request("GET", paths[i], NULL, NULL, &g);
		request("HEAD", paths[i], NULL, NULL, &h);
		ck_assert_int_eq(h.status, g.status);
		ck_assert_uint_eq(h.len, 0);
		ck_assert_msg(h.len == 0, "HEAD %s sent a body", paths[i]);
		if (i != 1) {	/* /health's counters move between the two */
			char len[32];

			snprintf(len, sizeof(len), "%zu", g.len);
			ck_assert_str_eq(http_reply_header(&h, "Content-Length"), len);
			ck_assert_str_eq(http_reply_header(&h, "ETag"),
					 http_reply_header(&g, "ETag"));
		}
		http_reply_free(&g);
		http_reply_free(&h);
	}
}
END_TEST

/* /api/large, checked byte for byte as it streams in (nothing held in memory). */
struct stream_check {
	uint64_t received;
	uint64_t first_bad;
	int bad;
};

static size_t on_large(char *data, size_t size, size_t n, void *arg)
{
	struct stream_check *sc = arg;
	size_t len = size * n;
	size_t ok = pattern_check(data, sc->received, len);

	if (ok != len && !sc->bad) {
		sc->bad = 1;
		sc->first_bad = sc->received + ok;
	}
	sc->received += len;
	return len;
}

static void fetch_large(const char *size_arg, uint64_t expect)
{
	struct stream_check sc = { 0, 0, 0 };
	CURL *h = curl_easy_init();
	char path[64];
	long status = 0;
	curl_off_t cl = -1;

	snprintf(path, sizeof(path), "/api/large?size=%s", size_arg);
	curl_easy_setopt(h, CURLOPT_URL, url(path));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_large);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sc);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	curl_easy_cleanup(h);
	ck_assert_int_eq(status, 200);
	ck_assert_int_eq(cl, (curl_off_t)expect);
	ck_assert_uint_eq(sc.received, expect);
	ck_assert_msg(!sc.bad, "size %s: wrong byte at offset %" PRIu64, size_arg, sc.first_bad);
}

START_TEST(test_large_small_sizes)
{
	fetch_large("0", 0);
	fetch_large("1", 1);
	fetch_large("7", 7);
	fetch_large("65537", 65537);
	fetch_large("1K", 1024);
}
END_TEST

START_TEST(test_large_64m)
{
	fetch_large("64M", 64ULL << 20);
}
END_TEST

START_TEST(test_large_headers)
{
	struct http_reply r;
	const char *const inm[] = { "If-None-Match: \"large-1000\"", NULL };

	request("HEAD", "/api/large?size=1000", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(http_reply_header(&r, "ETag"), "\"large-1000\"");
	ck_assert_str_eq(http_reply_header(&r, "Cache-Control"), "public, max-age=86400");
	ck_assert_str_eq(http_reply_header(&r, "Content-Type"), "application/octet-stream");
	http_reply_free(&r);
	request("GET", "/api/large?size=1000", inm, NULL, &r);
	ck_assert_int_eq(r.status, 304);
	ck_assert_uint_eq(r.len, 0);
	http_reply_free(&r);
}
END_TEST

/* Connections stay open across requests, errors and writes alike. */
START_TEST(test_keep_alive)
{
	static const struct {
		const char *method, *path, *body;
		long status;
	} seq[] = {
		{ "GET", "/health", NULL, 200 },
		{ "GET", "/api/users/1", NULL, 200 },
		{ "GET", "/missing", NULL, 404 },
		{ "POST", "/api/users", "{\"name\":\"K\",\"email\":\"keepalive@example.org\"}", 201 },
		{ "POST", "/api/users", "{\"name\":", 400 },
		{ "GET", "/api/large?size=100K", NULL, 200 },
		{ "GET", "/health", NULL, 200 },
	};
	void *conn = NULL;

	for (size_t i = 0; i < ARRAY_LEN(seq); i++) {
		struct http_reply r;
		const char *body = seq[i].body;

		ck_assert_int_eq(http_request_reuse(&conn, seq[i].method, url(seq[i].path), json_ctype,
						    body, body ? strlen(body) : 0, &r), 0);
		ck_assert_int_eq(r.status, seq[i].status);
		ck_assert_msg(r.connects == (i == 0 ? 1 : 0), "request %zu (%s %s) opened %ld connections",
			      i, seq[i].method, seq[i].path, r.connects);
		http_reply_free(&r);
	}
	http_reuse_free(&conn);
}
END_TEST

/* 100 clients create users at the same time: all succeed, all ids differ, and the table
 * grew by exactly 100. */
START_TEST(test_concurrent_creates)
{
	struct http_batch *b = http_batch_new();
	int64_t before = status_field("users");
	uint64_t ids[100];

	for (int i = 0; i < 100; i++) {
		char body[128];

		snprintf(body, sizeof(body), "{\"name\":\"C%d\",\"email\":\"c%d@example.org\"}", i, i);
		http_batch_add(b, "POST", url("/api/users"), json_ctype, body);
	}
	ck_assert_int_eq(http_batch_run(b, 120000), 0);
	for (int i = 0; i < 100; i++) {
		const struct http_reply *r = http_batch_reply(b, i);
		struct json_object *o;

		ck_assert_msg(r->status == 201, "client %d: status %ld (curl %d)", i, r->status,
			      r->curl_code);
		o = expect_json(r);
		ids[i] = (uint64_t)expect_jint(o, "id");
		json_object_put(o);
		for (int k = 0; k < i; k++)
			ck_assert_uint_ne(ids[k], ids[i]);
	}
	http_batch_free(b);
	ck_assert_int_eq(status_field("users"), before + 100);
}
END_TEST

/* Sends <req> with Connection: close semantics and returns everything the server sent
 * until it closed, in <buf>. */
static size_t raw_exchange(const char *req, char *buf, size_t len)
{
	int fd = http_raw_connect(origin.port);
	size_t got = 0;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	return got;
}

/* Sends raw bytes on a new connection and returns the status line's code (0: closed
 * without an answer). Every request it is used with ends the connection. */
static int raw_status(const char *req)
{
	char buf[4096];

	if (raw_exchange(req, buf, sizeof(buf)) < 12)
		return 0;
	return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
}

/* Answers that have no content send none: nothing follows the header section of a HEAD,
 * 204 or 304 answer (RFC 9110 §6.4.1), checked on the wire rather than through curl. */
START_TEST(test_no_content_on_the_wire)
{
	static const char *const reqs[] = {
		"HEAD /api/users/2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		"HEAD /api/large?size=5000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		"OPTIONS /api/users HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		"GET /api/large?size=9 HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"large-9\"\r\n"
		"Connection: close\r\n\r\n",
	};
	static const char *const status[] = { "200", "200", "204", "304" };
	char buf[4096];

	for (size_t i = 0; i < ARRAY_LEN(reqs); i++) {
		size_t n = raw_exchange(reqs[i], buf, sizeof(buf));
		const char *end = strstr(buf, "\r\n\r\n");

		ck_assert_msg(strncmp(buf + 9, status[i], 3) == 0, "%s: got %.40s", reqs[i], buf);
		ck_assert_ptr_nonnull(end);
		ck_assert_msg(end + 4 == buf + n, "%s: %zu bytes after the headers", reqs[i],
			      (size_t)(buf + n - end - 4));
	}
}
END_TEST

/* A body over --max-body sent without a length cannot be answered before it ends
 * (libmicrohttpd 0.9.75); the server reads a bounded amount more, then closes the
 * connection instead of reading on forever. */
START_TEST(test_endless_chunked_body)
{
	static const char head[] = "POST /api/users HTTP/1.1\r\nHost: t\r\n"
				   "Content-Type: application/json\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	int fd = http_raw_connect(origin.port);
	char chunk[8192 + 16];
	size_t sent = 0;
	struct http_reply r;
	int n;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(send(fd, head, strlen(head), MSG_NOSIGNAL), 0);
	n = snprintf(chunk, sizeof(chunk), "2000\r\n");
	memset(chunk + n, ' ', 8192);
	memcpy(chunk + n + 8192, "\r\n", 2);
	while (sent < (256u << 20)) {	/* far more than the server may read */
		ssize_t w = send(fd, chunk, (size_t)n + 8194, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		sent += (size_t)w;
	}
	close(fd);
	ck_assert_msg(sent < (256u << 20), "the server read %zu bytes of an oversized body", sent);
	request("GET", "/health", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
}
END_TEST

/* Malformed requests get a 400 and cost nothing else. */
static const struct {
	const char *req;
	int status;
} malformed[] = {
	{ "GET /health HTTP/1.1\r\nNoColon\r\n\r\n", 400 },
	{ "GET /health HTTP/1.1\r\n\r\n", 400 },	/* RFC 9112 §3.2: no Host */
	{ "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400 },
	{ "POST /api/users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
	{ "GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 505 },
	{ "GET /health HTTP/1.0\r\n\r\n", 200 },	/* 1.0 needs no Host */
	/* RFC 9112 §3.2, §6.1, §6.3: a request that could be framed two ways is refused */
	{ "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
	{ "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
	  "Content-Length: 40\r\n\r\n{}", 400 },
	{ "POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },
	{ "POST /api/users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	  "0\r\n\r\n", 501 },
};

START_TEST(test_malformed_request)
{
	struct http_reply r;

	ck_assert_int_eq(raw_status(malformed[_i].req), malformed[_i].status);
	request("GET", "/health", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	http_reply_free(&r);
}
END_TEST

static Suite *origin_suite(void)
{
	Suite *s = suite_create("origin");
	TCase *tc = tcase_create("routes");

	tcase_add_unchecked_fixture(tc, origin_start, origin_stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_status_routes);
	tcase_add_test(tc, test_request_counter);
	tcase_add_test(tc, test_get_seeded_user);
	tcase_add_test(tc, test_conditional_get);
	tcase_add_test(tc, test_create_read);
	tcase_add_test(tc, test_put_patch_delete);
	tcase_add_test(tc, test_if_match);
	tcase_add_test(tc, test_write_preconditions);
	tcase_add_test(tc, test_duplicate_email);
	tcase_add_loop_test(tc, test_bad_requests, 0, ARRAY_LEN(bad_requests));
	tcase_add_test(tc, test_allow_and_options);
	tcase_add_test(tc, test_body_too_large);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_head);
	tcase_add_test(tc, test_large_small_sizes);
	tcase_add_test(tc, test_large_64m);
	tcase_add_test(tc, test_large_headers);
	tcase_add_test(tc, test_keep_alive);
	tcase_add_test(tc, test_concurrent_creates);
	tcase_add_loop_test(tc, test_malformed_request, 0, ARRAY_LEN(malformed));
	tcase_add_test(tc, test_no_content_on_the_wire);
	tcase_add_test(tc, test_endless_chunked_body);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(origin_suite)

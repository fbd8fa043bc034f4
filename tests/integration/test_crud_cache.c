/* Integration test: the users CRUD API of a real mtps-origin behind mtps-proxy. Reads are
 * cached (the origin says max-age=60), and every write made through the proxy invalidates
 * what it changed (RFC 9111 §4.4): a client never reads an old version after its own
 * write. */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "check_main.h"
#include "expect.h"
#include "http_client.h"
#include "proc.h"

#define TIMEOUT_MS 60000	/* generous bounds, never waits: servers may run under valgrind */

static const char *const json_ctype[] = { "Content-Type: application/json", NULL };

struct pair {
	struct proc origin, proxy;
};

static void pair_start(struct pair *p)
{
	const char *oargs[] = { "--threads", "2", "--max-age", "60", NULL };
	char be[32];
	const char *pargs[] = { "--listen", "127.0.0.1:0", "--backend", be, "--threads", "2",
				"--health-interval", "0", "--fall", "100", NULL };
	int r;

	r = proc_start(&p->origin, getenv("MTPS_ORIGIN"), oargs, NULL, TIMEOUT_MS);
	ck_assert_msg(r == 0, "cannot start mtps-origin: %d", r);
	snprintf(be, sizeof(be), "127.0.0.1:%d", p->origin.port);
	r = proc_start(&p->proxy, getenv("MTPS_PROXY"), pargs, NULL, TIMEOUT_MS);
	ck_assert_msg(r == 0, "cannot start mtps-proxy: %d", r);
}

static void pair_stop(struct pair *p)
{
	ck_assert_int_eq(proc_stop(&p->proxy, SIGTERM, TIMEOUT_MS), 0);
	ck_assert_int_eq(proc_stop(&p->origin, SIGTERM, TIMEOUT_MS), 0);
}

/* <method> <path> through the proxy; checks the status and X-Cache (when <xcache> is not
 * NULL); the caller frees *r. */
static void through(struct pair *p, const char *method, const char *path, const char *body,
		    long status, const char *xcache, struct http_reply *r)
{
	const char *xc;

	ck_assert_int_eq(http_request(method, proc_url(&p->proxy, path), body ? json_ctype : NULL,
				      body, body ? strlen(body) : 0, r), 0);
	xc = http_reply_header(r, "X-Cache");
	ck_assert_msg(r->status == status, "%s %s: %ld, want %ld (X-Cache %s): %.200s", method,
		      path, r->status, status, xc ? xc : "(none)", r->body);
	if (xcache)
		ck_assert_msg(xc && strcmp(xc, xcache) == 0, "%s %s: X-Cache %s, want %s", method,
			      path, xc ? xc : "(none)", xcache);
}

/* through(), the reply not needed further. */
static void exchange(struct pair *p, const char *method, const char *path, const char *body,
		   long status)
{
	struct http_reply r;

	through(p, method, path, body, status, NULL, &r);
	http_reply_free(&r);
}

/* through(), and the reply's body as JSON (the caller puts it). */
static struct json_object *through_json(struct pair *p, const char *method, const char *path,
					const char *body, long status, const char *xcache)
{
	struct http_reply r;
	struct json_object *o;

	through(p, method, path, body, status, xcache, &r);
	o = expect_json(&r);
	http_reply_free(&r);
	return o;
}

/* The integer member <key> of the JSON answer to through(). */
static int64_t through_jint(struct pair *p, const char *method, const char *path,
			    const char *body, long status, const char *xcache, const char *key)
{
	struct json_object *o = through_json(p, method, path, body, status, xcache);
	int64_t v = expect_jint(o, key);

	json_object_put(o);
	return v;
}

/* GET <path>, which is <xcache>: the user's name and version. */
static void read_user(struct pair *p, const char *path, const char *xcache, const char *name,
		      int64_t version)
{
	struct json_object *o = through_json(p, "GET", path, NULL, 200, xcache);

	ck_assert_msg(strcmp(expect_jstr(o, "name"), name) == 0 &&
		      expect_jint(o, "version") == version,
		      "GET %s (X-Cache %s): %s, want name %s version %" PRId64, path, xcache,
		      json_object_to_json_string(o), name, version);
	json_object_put(o);
}

/* §4.4 through the whole stack: create, read twice (MISS, HIT), PUT, read the new version
 * (never the old), PATCH, read, DELETE, read: 404. */
START_TEST(test_crud_through_cache)
{
	char path[64];
	struct pair p;
	int64_t id;

	pair_start(&p);
	id = through_jint(&p, "POST", "/api/users",
			  "{\"name\":\"Ada\",\"email\":\"ada@example.org\"}", 201, NULL, "id");
	snprintf(path, sizeof(path), "/api/users/%" PRId64, id);

	read_user(&p, path, "MISS", "Ada", 1);
	read_user(&p, path, "HIT", "Ada", 1);

	exchange(&p, "PUT", path, "{\"name\":\"Ada L\",\"email\":\"ada@example.org\"}", 200);
	read_user(&p, path, "MISS", "Ada L", 2);
	read_user(&p, path, "HIT", "Ada L", 2);

	exchange(&p, "PATCH", path, "{\"name\":\"Ada Lovelace\"}", 200);
	read_user(&p, path, "MISS", "Ada Lovelace", 3);
	read_user(&p, path, "HIT", "Ada Lovelace", 3);

	exchange(&p, "DELETE", path, NULL, 204);
	exchange(&p, "GET", path, NULL, 404);
	pair_stop(&p);
}
END_TEST

/* The collection: a POST to /api/users invalidates the stored list, so the new user shows
 * at once. */
START_TEST(test_crud_list_invalidated_by_post)
{
	int64_t before, after;
	struct pair p;

	pair_start(&p);
	through_jint(&p, "GET", "/api/users", NULL, 200, "MISS", "total");
	before = through_jint(&p, "GET", "/api/users", NULL, 200, "HIT", "total");
	exchange(&p, "POST", "/api/users", "{\"name\":\"Bob\",\"email\":\"bob@example.org\"}", 201);
	after = through_jint(&p, "GET", "/api/users", NULL, 200, "MISS", "total");
	ck_assert_msg(after == before + 1, "total %" PRId64 " after a POST, %" PRId64 " before",
		      after, before);
	pair_stop(&p);
}
END_TEST

static Suite *crud_suite(void)
{
	Suite *s = suite_create("crud-cache");
	TCase *tc = tcase_create("crud");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_crud_through_cache);
	tcase_add_test(tc, test_crud_list_invalidated_by_post);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(crud_suite)

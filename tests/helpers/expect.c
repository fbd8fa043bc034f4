/* expect.c - shared Check assertions on HTTP replies (see expect.h). */
#include "config.h"

#include "expect.h"

#include <string.h>

#include <check.h>

struct json_object *expect_json(const struct http_reply *r)
{
	struct json_object *o = json_tokener_parse(r->body);

	ck_assert_msg(o != NULL, "not JSON: %s", r->body);
	return o;
}

int64_t expect_jint(struct json_object *o, const char *key)
{
	struct json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key,
		      json_object_to_json_string(o));
	return json_object_get_int64(v);
}

const char *expect_jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key,
		      json_object_to_json_string(o));
	return json_object_get_string(v);
}

void expect_error(const struct http_reply *r, long status, const char *reason)
{
	const char *type = http_reply_header(r, "Content-Type");
	struct json_object *o;

	ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status, r->body);
	ck_assert_msg(type && strcmp(type, "application/json") == 0, "Content-Type %s",
		      type ? type : "(none)");
	o = expect_json(r);
	ck_assert_int_eq(expect_jint(o, "status"), status);
	ck_assert_msg(expect_jstr(o, "error")[0] != '\0', "an empty reason: %s", r->body);
	if (reason)
		ck_assert_msg(strstr(expect_jstr(o, "error"), reason), "reason \"%s\" lacks \"%s\"",
			      expect_jstr(o, "error"), reason);
	json_object_put(o);
}

/* expect.h - Check assertions on HTTP replies that several test programs share. Each
 * failed expectation fails the running Check test with a message saying what was seen. */
#ifndef MTPS_TEST_EXPECT_H
#define MTPS_TEST_EXPECT_H

#include <stdint.h>

#include <json-c/json.h>

#include "http_client.h"

/* Parses the reply's body as JSON; the caller puts the object. */
struct json_object *expect_json(const struct http_reply *r);

/* The integer and string members <key> of <o>, which must exist. */
int64_t expect_jint(struct json_object *o, const char *key);
const char *expect_jstr(struct json_object *o, const char *key);

/* Checks an error answer: <status>, Content-Type: application/json and a body
 * {"error": "...", "status": N} whose reason is not empty and contains <reason> (when not
 * NULL). */
void expect_error(const struct http_reply *r, long status, const char *reason);

#endif

/* api.h - mtps-origin's HTTP routes: status, users CRUD, large data.
 *
 * The route table, the method set and the JSON validation are pure functions, declared
 * here so the unit tests can reach them. api_handler() and api_completed() are the
 * libmicrohttpd callbacks; they run on MHD's worker threads and share only struct api,
 * whose counters are atomic and whose user table has its own lock.
 */
#ifndef MTPS_API_H
#define MTPS_API_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "delay.h"
#include "users.h"

enum api_route {
	API_NOT_FOUND = 0,
	API_HEALTH,		/* /health */
	API_TEST,		/* /api/test */
	API_USERS,		/* /api/users */
	API_USER,		/* /api/users/{id} */
	API_LARGE,		/* /api/large */
};

/* Methods as bits, so a route's allowed set is one unsigned. */
enum api_method {
	API_GET = 1 << 0,
	API_HEAD = 1 << 1,
	API_POST = 1 << 2,
	API_PUT = 1 << 3,
	API_PATCH = 1 << 4,
	API_DELETE = 1 << 5,
	API_OPTIONS = 1 << 6,
};

struct api_match {
	enum api_route route;
	uint64_t id;		/* API_USER: the id in the path */
	unsigned allowed;	/* enum api_method bits this route accepts */
};

/* Returns the enum api_method bit for a request method, or 0 when mtps-origin implements
 * no such method (it answers those with 501). Method names are case-sensitive. */
unsigned api_method_parse(const char *method);

/* Matches a request path (no query) to a route. An id that is not a decimal number in
 * 1..2^63 does not match API_USER, so "/api/users/abc" is API_NOT_FOUND. */
void api_route_match(const char *path, struct api_match *m);

/* Writes the Allow field value for <allowed>, e.g. "GET, HEAD, OPTIONS", into <buf>. */
void api_allow_format(unsigned allowed, char *buf, size_t len);

/* Says whether <email> looks like an address: one '@', a local part of 1-64 printable
 * characters (no leading, trailing or double dot), a domain of dot-separated
 * letter-digit-hyphen labels with at least one dot. */
bool api_email_valid(const char *email);

struct api_user_input {
	bool has_name, has_email;
	char name[USER_NAME_MAX + 1];
	char email[USER_EMAIL_MAX + 1];
};

/* Parses a JSON request body for a user. <require_all> (POST, PUT) needs both name and
 * email; otherwise (PATCH) at least one. "id" may be present only if it equals <id> (0
 * when there is no id to compare); "version", "created_at" and "updated_at" are ignored;
 * any other member is an error. Returns 0, or -EINVAL with a reason for a 400 in <err>. */
int api_user_input_parse(const char *body, size_t len, bool require_all, uint64_t id,
			 struct api_user_input *in, char *err, size_t errlen);

struct api_config {
	const char *name;	/* instance name, for X-Served-By and status */
	int port;
	unsigned latency_ms;	/* added to /api/ routes */
	uint64_t max_age_s;	/* Cache-Control max-age on user reads */
	uint64_t large_max_age_s;	/* ... and on /api/large */
	uint64_t max_body;	/* request body limit, bytes */
	uint64_t max_large;	/* largest /api/large size, bytes */
};

/* Server-wide state the handlers share. Owned by main(); the counters are atomic. */
struct api {
	struct api_config cfg;
	struct users *users;
	struct delay *delay;		/* NULL when latency_ms is 0 */
	uint64_t started_ms;		/* delay_now_ms() at start */
	atomic_uint_fast64_t requests;		/* all but /health and /api/test */
	atomic_uint_fast64_t status_requests;	/* /health and /api/test */
	atomic_long in_flight;			/* requests begun, not completed */
	atomic_bool draining;			/* shutting down: answer with Connection: close */
	int idle_fd;			/* eventfd, written when in_flight drops to 0 */
};

enum MHD_Result api_handler(void *cls, struct MHD_Connection *connection, const char *url,
			    const char *method, const char *version, const char *upload_data,
			    size_t *upload_data_size, void **con_cls);

void api_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
		   enum MHD_RequestTerminationCode toe);

/* MHD_OPTION_UNESCAPE_CALLBACK: percent-decodes <s> in place like MHD_http_unescape(),
 * except that a string with %00 or %2F is left as it is. Returns the new length. */
size_t api_unescape(void *cls, struct MHD_Connection *connection, char *s);

#endif

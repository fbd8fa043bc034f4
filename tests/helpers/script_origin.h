/* script_origin.h - a scripted HTTP/1.1 origin for integration tests: a thread of the test
 * program listening on a free 127.0.0.1 port, answering each request with exactly the
 * status, fields and body the test set for its target, and recording what it was asked.
 *
 * Routes are keyed by the request target as sent ("/a?x=1"), or by "METHOD target"
 * ("POST /a"), which wins over the bare target for that method. A target without a route
 * gets "404, Cache-Control: no-store". The test thread may change routes, failure modes
 * and holds at any time; each request uses the values of the moment it was read.
 *
 * Replies carry the route's fields as given, plus Content-Length (unless the fields have
 * Content-Length or Transfer-Encoding) and Date: now (unless the fields have a Date). In a
 * body, "########" is replaced by the number of the request among those for its target
 * (counted when it was read, 8 digits: "00000002"), so successive answers differ, also
 * those held together by so_hold(). Answers to HEAD carry no body. A route whose fields say
 * "Connection: close" closes the connection after its answer.
 *
 * Not for production: one thread per connection, bounded buffers, no pipelining limits.
 */
#ifndef MTPS_TEST_SCRIPT_ORIGIN_H
#define MTPS_TEST_SCRIPT_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

#define SO_SERIAL "########"

struct script_origin;

/* Starts listening on 127.0.0.1:<free port>. Aborts the test (Check) on failure. */
struct script_origin *so_start(void);

/* Stops listening, closes every connection, frees everything. */
void so_free(struct script_origin *so);

int so_port(const struct script_origin *so);

/* Sets the answer for <route> ("/path" or "METHOD /path"): <status>, <fields> ("Name:
 * value\r\n" lines, may be NULL or "") and <body> (may be NULL). Forgets what the route had
 * from so_set_304(), so_set_cut(), so_set_stall() and so_set_hang(). Strings are copied. */
void so_set(struct script_origin *so, const char *route, int status, const char *fields,
	    const char *body);

/* Adds a conditional answer to <route> (set it first): a request whose If-None-Match lists
 * <etag> (exactly, or "*"), or, when <last_modified> is not NULL, whose If-Modified-Since is
 * exactly <last_modified>, gets "304 Not Modified" with <fields_304> (and a Date) instead
 * of the route's answer. <etag> may be NULL. */
void so_set_304(struct script_origin *so, const char *route, const char *etag,
		const char *last_modified, const char *fields_304);

/* The route answers its head and the first <sent> bytes of a body whose Content-Length
 * says <sent> + 1000, then closes the connection: an incomplete response. */
void so_set_cut(struct script_origin *so, const char *route, size_t sent);

/* As so_set_cut(), but the connection then stays open and silent until the peer closes it
 * (or so_down()): a stalled response. */
void so_set_stall(struct script_origin *so, const char *route, size_t sent);

/* The route never answers: its requests are read and counted, then the connection stays
 * open and silent until the peer closes it (or so_down()). so_set() ends it for the
 * requests that come after. */
void so_set_hang(struct script_origin *so, const char *route);

/* Every request gets <status> (e.g. 503, with Cache-Control: no-store and a short body)
 * instead of its route's answer while <status> is not 0. */
void so_fail(struct script_origin *so, int status);

/* While held, requests are read and counted, but their answers wait for so_hold(so, false)
 * (or so_free()). */
void so_hold(struct script_origin *so, bool hold);

/* Stops listening and closes every connection: connecting to the port is refused (the
 * origin is down). so_up() listens on the same port again. Counts and routes stay. */
void so_down(struct script_origin *so);
void so_up(struct script_origin *so);

/* Requests read for <path> (the target as sent, any method); for "METHOD /path" only those
 * of that method. NULL: all requests. */
unsigned so_count(struct script_origin *so, const char *path);

/* Connections accepted since so_start(). */
unsigned so_connections(struct script_origin *so);

/* Waits up to <timeout_ms> until so_count(so, path) >= <n>. Returns the count. */
unsigned so_wait_count(struct script_origin *so, const char *path, unsigned n,
		       unsigned timeout_ms);

/* The value of field <name> in the last request for <path> (as so_count() matches), its
 * lines joined with ", ", copied into <out>. Returns the number of lines with that name
 * (0: absent; -1: no request for <path> yet). */
int so_last_field(struct script_origin *so, const char *path, const char *name, char *out,
		  size_t len);

/* The request line of the last request for <path> ("GET /a HTTP/1.1"), or "" when none. */
void so_last_line(struct script_origin *so, const char *path, char *out, size_t len);

struct proc;

/* Starts mtps-proxy ($MTPS_PROXY, tests/helpers/proc.h) on 127.0.0.1:<free port> with <so>
 * as its only backend, health checks off (they would be counted as requests) and no
 * ejection (--fall 100), then the arguments <args> and <more> (NULL-terminated lists, each
 * may be NULL; of an option given twice, the last counts). Aborts the test (Check) on
 * failure; stop the proxy with proc_stop(). */
void so_proxy_start(struct script_origin *so, struct proc *p, const char *const *args,
		    const char *const *more);

/* An IMF-fixdate (RFC 9110 §5.6.7) for now + <offset> seconds, into <out> (>= 30 bytes). */
char *so_http_date(long offset, char *out, size_t len);

#endif

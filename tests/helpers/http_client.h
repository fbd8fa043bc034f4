/* http_client.h - one HTTP exchange with libcurl, for integration tests.
 * Not thread-safe across calls that share a handle; each call uses its own. */
#ifndef MTPS_TEST_HTTP_CLIENT_H
#define MTPS_TEST_HTTP_CLIENT_H

#include <stddef.h>

#define HTTP_MAX_HEADERS 64

struct http_header {
	char *name;
	char *value;
};

struct http_reply {
	long status;
	char *body;		/* NUL-terminated for convenience; len excludes the NUL */
	size_t len;
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	double seconds;		/* total time of the exchange */
	int curl_code;		/* CURLcode; 0 on success */
	long connects;		/* new connections this exchange made (0 when reused) */
};

/* Sends <method> <url> with extra request <headers> ("Name: value", NULL-terminated, may be
 * NULL) and <body> (may be NULL). A HEAD request reads no body. Returns 0 when an answer
 * arrived (any status), or -1 with r->curl_code set. Free with http_reply_free(). */
int http_request(const char *method, const char *url, const char *const *headers,
		 const char *body, size_t body_len, struct http_reply *r);

/* The same exchange reusing a connection cache between calls: tests of keep-alive pass the
 * same <reuse> pointer (initialise it to NULL; release with http_reuse_free()). */
int http_request_reuse(void **reuse, const char *method, const char *url,
		       const char *const *headers, const char *body, size_t body_len,
		       struct http_reply *r);
void http_reuse_free(void **reuse);

/* Opens a plain TCP connection to 127.0.0.1:<port>, for tests that write raw bytes.
 * Returns the socket, or a negative errno (-ECONNREFUSED when nothing listens). */
int http_raw_connect(int port);

/* The Content-Length of a request or response head <head> (<len> bytes), 0 when none:
 * for the tests' scripted servers, which read raw requests. */
size_t http_head_content_length(const char *head, size_t len);

/* GET shorthand. */
int http_get(const char *url, struct http_reply *r);

/* Returns the value of the last header <name> (case-insensitive), or NULL. */
const char *http_reply_header(const struct http_reply *r, const char *name);

void http_reply_free(struct http_reply *r);

/* A batch of requests in flight at once on one libcurl multi handle, each on its own
 * connection: for "N concurrent clients" tests. Driven by the calling thread. */
struct http_batch;

struct http_batch *http_batch_new(void);
/* Adds a request; it starts moving on the next http_batch_run(). Returns its index. */
int http_batch_add(struct http_batch *b, const char *method, const char *url,
		   const char *const *headers, const char *body);
/* Moves transfers for up to <timeout_ms>; returns the number still running. */
int http_batch_run(struct http_batch *b, unsigned timeout_ms);
/* The reply of request <i> once it is done (status 0 and curl_code set on failure). */
const struct http_reply *http_batch_reply(struct http_batch *b, int i);
void http_batch_free(struct http_batch *b);

#endif

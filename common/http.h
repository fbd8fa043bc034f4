/* http.h - small pure helpers for HTTP fields (RFC 9110), shared by the origin and proxy.
 * No allocation, no locks: every function is safe to call from any thread. */
#ifndef MTPS_HTTP_H
#define MTPS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HTTP_DATE_LEN 30	/* "Sun, 06 Nov 1994 08:49:37 GMT" plus the NUL */

/* Formats <t> as an IMF-fixdate (RFC 9110 §5.6.7) into <buf> (HTTP_DATE_LEN bytes). */
void http_date_format(time_t t, char buf[HTTP_DATE_LEN]);

/* Parses an HTTP-date in any of the three formats a recipient must accept (RFC 9110
 * §5.6.7): IMF-fixdate, obsolete RFC 850 (two-digit years 70-99 are 19xx, 00-69 20xx) and
 * asctime. Returns 0 and sets *out, or -EINVAL. */
int http_date_parse(const char *s, time_t *out);

/* Says whether entity-tag <etag> (e.g. "\"v1\"" or "W/\"v1\"") matches the list in an
 * If-None-Match or If-Match field value <list> ("*", or tags separated by commas).
 * <strong> selects strong comparison (If-Match, RFC 9110 §13.1.1) over weak comparison
 * (If-None-Match, §13.1.2). A malformed member matches nothing. */
bool http_etag_match(const char *list, const char *etag, bool strong);

/* Says whether a Content-Type field value names media type <type> ("application/json"),
 * comparing case-insensitively and ignoring parameters such as "; charset=utf-8". */
bool http_media_type_is(const char *content_type, const char *type);

/* How a request is framed (RFC 9112 §3.2, §6.1, §6.3), learned by feeding every request
 * field to http_framing_add(). The strings point into the caller's fields. */
struct http_framing {
	unsigned hosts;
	unsigned lengths;
	bool lengths_differ;
	const char *host;
	const char *length;
	const char *transfer_encoding;
};

void http_framing_add(struct http_framing *f, const char *name, const char *value);

/* Judges the framing: returns 0 when the request can be read one way only, or the status
 * to refuse it with (400, 413 when Content-Length exceeds <max_body>, 501 for a transfer
 * coding other than chunked) and sets *reason. A request that could be read two ways is
 * refused: a proxy in front may have read it the other way. */
int http_framing_check(const struct http_framing *f, bool http11, uint64_t max_body,
		       const char **reason);

#endif

/* accesslog.h - one line per completed request, in the combined format or as JSON.
 *
 * An exchange observer (exchange.h, frontend_observe()): the worker thread that completes a
 * request formats its line into a buffer on its own stack and writes it with one write(2) to
 * a descriptor opened with O_APPEND, so lines from different threads never interleave and no
 * lock is taken per line. The combined format is Apache's and nginx's, with the cache's part
 * appended:
 *
 *   127.0.0.1 - - [26/Nov/2026:06:46:20 +0000] "GET /api/users/1 HTTP/1.1" 200 61 "-"
 *   "curl/8.5.0" "HIT" backend=- upstream=- total=0.000
 *
 * (one line): the client, the time the request began (UTC), the request line, the status,
 * the body bytes sent, Referer and User-Agent, then the cache status (HIT, MISS, STALE,
 * REVALIDATED or BYPASS), the backend that answered ("-" when none did), the time from
 * sending the request to the backend until its response fields arrived, and the whole
 * request's time, both in seconds with millisecond precision ("-" when nothing went
 * upstream). Inside quotes '"' and '\' are escaped with a '\' and bytes outside printable
 * ASCII are written as \xHH, as nginx does. The JSON format writes one object per line with
 * the same facts (see accesslog_format_line()).
 *
 * Reopening (SIGUSR1, a reload that changes the path) opens the file anew and dup2()s it
 * over the descriptor the workers write to: a worker writes either to the old file or to the
 * new one, never to a closed descriptor. Turning the log off leaves the descriptor open (a
 * worker may be about to write) and only stops new lines.
 *
 * Threads: accesslog_observe() runs on every worker; the rest on the main thread only.
 */
#ifndef MTPS_ACCESSLOG_H
#define MTPS_ACCESSLOG_H

#include <stddef.h>

#include "exchange.h"

enum accesslog_format {
	ACCESSLOG_COMBINED = 0,
	ACCESSLOG_JSON,
};

/* "combined", "json" by enum accesslog_format, NULL-terminated (an option's choices). */
extern const char *const accesslog_format_names[];

/* The longest line written; longer fields are cut (the line stays well formed). */
#define ACCESSLOG_MAX_LINE 16384

struct accesslog;

/* A log that writes nothing until accesslog_open(). NULL when out of memory. */
struct accesslog *accesslog_new(void);

/* Closes the file. No worker may still call accesslog_observe() with <al>. */
void accesslog_free(struct accesslog *al);

/* Starts (or keeps) writing to <path> in format <fmt>; "off" or NULL stops writing. A path
 * that differs from the current one is opened (created with mode 0640 when missing) before
 * anything changes. Returns 0, or a negative errno with the log as it was. */
int accesslog_open(struct accesslog *al, const char *path, enum accesslog_format fmt);

/* Opens the current path again (after logrotate moved the file). Returns 0 (also when the
 * log is off), or a negative errno with the old file still in use. */
int accesslog_reopen(struct accesslog *al);

/* The exchange observer; <data> is the struct accesslog. */
void accesslog_observe(void *data, const struct exchange *ex);

/* Formats <ex>'s line, newline included, into <buf> of <len> bytes (at least 256). Returns
 * its length. The JSON object has the members time (ISO 8601 UTC with milliseconds), client,
 * method, target, version, host, status, bytes_out, bytes_in, referer and user_agent (null
 * when absent), cache, coalesced, completed, backend (null when none), upstream_time (seconds
 * or null) and total_time (seconds). */
size_t accesslog_format_line(enum accesslog_format fmt, const struct exchange *ex, char *buf,
			     size_t len);

#endif

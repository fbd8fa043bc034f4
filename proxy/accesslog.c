/* accesslog.c - the access log (see accesslog.h). */
#include "config.h"

#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The most bytes of one field that a line carries, escaped; a line's fields together stay
 * below ACCESSLOG_MAX_LINE. */
#define FIELD_MAX 4096
#define SMALL_FIELD_MAX 1024

const char *const accesslog_format_names[] = {
	[ACCESSLOG_COMBINED] = "combined",
	[ACCESSLOG_JSON] = "json",
	NULL,
};

struct accesslog {
	atomic_int fd;			/* -1 until first opened; then only dup2()ed over */
	atomic_bool on;
	atomic_int format;		/* enum accesslog_format */
	char *path;			/* main thread only; NULL when off */
};

/* ---- formatting ------------------------------------------------------------------------- */

/* A bounded line under construction: appends past the end are dropped, one byte stays for
 * the newline. */
struct line {
	char *buf;
	size_t len, cap;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (n > l->cap - 1 - l->len)
		n = l->cap - 1 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct line *l, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Appends <s> with '"' and '\\' escaped by a backslash and every byte outside printable
 * ASCII as <prefix> and two hex digits from <hex>, at most <max> bytes of output. */
static void put_escaped_as(struct line *l, const char *s, size_t max, const char *prefix,
			   const char *hex)
{
	size_t start = l->len, plen = strlen(prefix);

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char e[8];
		size_t n = 0;

		if (*p == '"' || *p == '\\') {
			e[n++] = '\\';
			e[n++] = (char)*p;
		} else if (*p < 0x20 || *p >= 0x7f) {
			memcpy(e, prefix, plen);
			n = plen;
			e[n++] = hex[*p >> 4];
			e[n++] = hex[*p & 15];
		} else {
			e[n++] = (char)*p;
		}
		if (l->len - start + n > max)
			break;
		put(l, e, n);
	}
}

/* Appends <s> escaped for a quoted combined-format field (\" \\ \xHH), at most <max> bytes
 * of output; "-" for NULL. */
static void put_escaped(struct line *l, const char *s, size_t max)
{
	if (s == NULL)
		puts_(l, "-");
	else
		put_escaped_as(l, s, max, "\\x", "0123456789ABCDEF");
}

/* Appends <s> as a JSON string (or null), at most <max> bytes of output. Bytes outside
 * printable ASCII become \u00XX, so that the line is valid UTF-8 whatever the client sent. */
static void put_json_string(struct line *l, const char *s, size_t max)
{
	if (s == NULL) {
		puts_(l, "null");
		return;
	}
	puts_(l, "\"");
	put_escaped_as(l, s, max, "\\u00", "0123456789abcdef");
	puts_(l, "\"");
}

/* Seconds with millisecond precision from microseconds: "0.012". */
static void put_seconds(struct line *l, uint64_t us)
{
	putf(l, "%" PRIu64 ".%03" PRIu64, us / 1000000, (us / 1000) % 1000);
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static void format_combined(struct line *l, const struct exchange *ex)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&ex->start.tv_sec, &tm);
	put_escaped(l, or_dash(ex->client), SMALL_FIELD_MAX);
	putf(l, " - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"", tm.tm_mday, months[tm.tm_mon],
	     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (ex->method == NULL || strcmp(ex->method, "-") == 0) {
		puts_(l, "-");		/* no request line: nginx writes "-" too */
	} else {
		put_escaped(l, ex->method, SMALL_FIELD_MAX);
		puts_(l, " ");
		put_escaped(l, ex->target, FIELD_MAX);
		puts_(l, " ");
		put_escaped(l, ex->version, SMALL_FIELD_MAX);
	}
	putf(l, "\" %d %" PRIu64 " \"", ex->status, ex->bytes_out);
	put_escaped(l, ex->referer, FIELD_MAX);
	puts_(l, "\" \"");
	put_escaped(l, ex->user_agent, SMALL_FIELD_MAX);
	putf(l, "\" \"%s\" backend=", exchange_cache_names[ex->cache]);
	put_escaped(l, or_dash(ex->backend), SMALL_FIELD_MAX);
	puts_(l, " upstream=");
	if (ex->upstream_us >= 0)
		put_seconds(l, (uint64_t)ex->upstream_us);
	else
		puts_(l, "-");
	puts_(l, " total=");
	put_seconds(l, ex->total_us);
}

static void format_json(struct line *l, const struct exchange *ex)
{
	struct tm tm;

	gmtime_r(&ex->start.tv_sec, &tm);
	putf(l, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"client\":",
	     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	     ex->start.tv_nsec / 1000000);
	put_json_string(l, ex->client, SMALL_FIELD_MAX);
	puts_(l, ",\"method\":");
	put_json_string(l, ex->method, SMALL_FIELD_MAX);
	puts_(l, ",\"target\":");
	put_json_string(l, ex->target, FIELD_MAX);
	puts_(l, ",\"version\":");
	put_json_string(l, ex->version, SMALL_FIELD_MAX);
	puts_(l, ",\"host\":");
	put_json_string(l, ex->host, SMALL_FIELD_MAX);
	putf(l, ",\"status\":%d,\"bytes_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"referer\":",
	     ex->status, ex->bytes_out, ex->bytes_in);
	put_json_string(l, ex->referer, FIELD_MAX);
	puts_(l, ",\"user_agent\":");
	put_json_string(l, ex->user_agent, SMALL_FIELD_MAX);
	putf(l, ",\"cache\":\"%s\",\"coalesced\":%s,\"completed\":%s,\"backend\":",
	     exchange_cache_names[ex->cache], ex->coalesced ? "true" : "false",
	     ex->completed ? "true" : "false");
	put_json_string(l, ex->backend, SMALL_FIELD_MAX);
	puts_(l, ",\"upstream_time\":");
	if (ex->upstream_us >= 0)
		put_seconds(l, (uint64_t)ex->upstream_us);
	else
		puts_(l, "null");
	puts_(l, ",\"total_time\":");
	put_seconds(l, ex->total_us);
	puts_(l, "}");
}

size_t accesslog_format_line(enum accesslog_format fmt, const struct exchange *ex, char *buf,
			     size_t len)
{
	struct line l = { buf, 0, len };

	if (fmt == ACCESSLOG_JSON)
		format_json(&l, ex);
	else
		format_combined(&l, ex);
	buf[l.len++] = '\n';	/* put() always leaves this byte */
	return l.len;
}

/* ---- the file ---------------------------------------------------------------------------- */

struct accesslog *accesslog_new(void)
{
	struct accesslog *al = calloc(1, sizeof(*al));

	if (al == NULL)
		return NULL;
	atomic_init(&al->fd, -1);
	atomic_init(&al->on, false);
	atomic_init(&al->format, ACCESSLOG_COMBINED);
	return al;
}

void accesslog_free(struct accesslog *al)
{
	if (al == NULL)
		return;
	if (atomic_load(&al->fd) >= 0)
		close(atomic_load(&al->fd));
	free(al->path);
	free(al);
}

/* Opens <path> for appending and puts it where the workers write. */
static int install(struct accesslog *al, const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	int old = atomic_load(&al->fd);

	if (fd < 0)
		return -errno;
	if (old < 0) {
		atomic_store(&al->fd, fd);
		return 0;
	}
	/* atomically replaces what <old> refers to: a write in flight goes to one file or
	 * the other */
	if (dup3(fd, old, O_CLOEXEC) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	return 0;
}

int accesslog_open(struct accesslog *al, const char *path, enum accesslog_format fmt)
{
	char *copy;
	int r;

	if (path == NULL || strcmp(path, "off") == 0) {
		atomic_store(&al->on, false);
		free(al->path);
		al->path = NULL;
		atomic_store(&al->format, (int)fmt);
		return 0;
	}
	if (al->path == NULL || strcmp(al->path, path) != 0) {
		copy = strdup(path);
		if (copy == NULL)
			return -ENOMEM;
		r = install(al, path);
		if (r) {
			free(copy);
			return r;
		}
		free(al->path);
		al->path = copy;
	}
	atomic_store(&al->format, (int)fmt);
	atomic_store(&al->on, true);
	return 0;
}

int accesslog_reopen(struct accesslog *al)
{
	if (al->path == NULL)
		return 0;
	return install(al, al->path);
}

void accesslog_observe(void *data, const struct exchange *ex)
{
	struct accesslog *al = data;
	char buf[ACCESSLOG_MAX_LINE];
	size_t n;

	if (!atomic_load_explicit(&al->on, memory_order_acquire))
		return;
	n = accesslog_format_line((enum accesslog_format)atomic_load(&al->format), ex, buf,
				  sizeof(buf));
	/* one write per line: O_APPEND keeps lines from different threads whole */
	if (write(atomic_load(&al->fd), buf, n) < 0)
		return;		/* a full disk must not take the proxy down */
}

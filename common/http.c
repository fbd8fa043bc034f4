/* http.c - HTTP field helpers (see http.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static const char *const day_names[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const long_day_names[7] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};
static const char *const month_names[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

void http_date_format(time_t t, char buf[HTTP_DATE_LEN])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, HTTP_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 day_names[tm.tm_wday], tm.tm_mday % 100, month_names[tm.tm_mon],
		 (tm.tm_year + 1900) % 10000, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100);	/* the modulos only tell the compiler the widths */
}

/* Reads exactly <n> digits at *p and advances past them. */
static int digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int literal(const char **p, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n) != 0)
		return -EINVAL;
	*p += n;
	return 0;
}

static int month(const char **p, int *out)
{
	for (int m = 0; m < 12; m++) {
		if (strncmp(*p, month_names[m], 3) == 0) {
			*p += 3;
			*out = m;
			return 0;
		}
	}
	return -EINVAL;
}

/* "HH:MM:SS" */
static int clock_time(const char **p, struct tm *tm)
{
	if (digits(p, 2, &tm->tm_hour) || literal(p, ":") || digits(p, 2, &tm->tm_min) ||
	    literal(p, ":") || digits(p, 2, &tm->tm_sec))
		return -EINVAL;
	if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
		return -EINVAL;
	return 0;
}

static int days_in_month(int year, int mon)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 1 && leap ? 29 : days[mon];
}

static int finish(struct tm *tm, int year, time_t *out)
{
	time_t t;

	if (year < 1900 || tm->tm_mday < 1 || tm->tm_mday > days_in_month(year, tm->tm_mon))
		return -EINVAL;
	tm->tm_year = year - 1900;
	tm->tm_isdst = 0;
	if (tm->tm_sec == 60)
		tm->tm_sec = 59;	/* a leap second is the last second of its minute */
	t = timegm(tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = t;
	return 0;
}

int http_date_parse(const char *s, time_t *out)
{
	struct tm tm;
	const char *p = s;
	int year;

	memset(&tm, 0, sizeof(tm));
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	for (int d = 0; d < 7; d++) {
		if (strncmp(s, day_names[d], 3) == 0 && s[3] == ',') {
			p = s + 4;
			if (literal(&p, " ") || digits(&p, 2, &tm.tm_mday) || literal(&p, " ") ||
			    month(&p, &tm.tm_mon) || literal(&p, " ") || digits(&p, 4, &year) ||
			    literal(&p, " ") || clock_time(&p, &tm) || literal(&p, " GMT") || *p)
				return -EINVAL;
			return finish(&tm, year, out);
		}
	}
	/* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT" */
	for (int d = 0; d < 7; d++) {
		size_t n = strlen(long_day_names[d]);

		if (strncmp(s, long_day_names[d], n) == 0 && s[n] == ',') {
			p = s + n + 1;
			if (literal(&p, " ") || digits(&p, 2, &tm.tm_mday) || literal(&p, "-") ||
			    month(&p, &tm.tm_mon) || literal(&p, "-") || digits(&p, 2, &year) ||
			    literal(&p, " ") || clock_time(&p, &tm) || literal(&p, " GMT") || *p)
				return -EINVAL;
			return finish(&tm, year + (year < 70 ? 2000 : 1900), out);
		}
	}
	/* asctime-date: "Sun Nov  6 08:49:37 1994" */
	for (int d = 0; d < 7; d++) {
		if (strncmp(s, day_names[d], 3) == 0 && s[3] == ' ') {
			p = s + 4;
			if (month(&p, &tm.tm_mon) || literal(&p, " "))
				return -EINVAL;
			if (*p == ' ') {
				p++;
				if (digits(&p, 1, &tm.tm_mday))
					return -EINVAL;
			} else if (digits(&p, 2, &tm.tm_mday)) {
				return -EINVAL;
			}
			if (literal(&p, " ") || clock_time(&p, &tm) || literal(&p, " ") ||
			    digits(&p, 4, &year) || *p)
				return -EINVAL;
			return finish(&tm, year, out);
		}
	}
	return -EINVAL;
}

/* Reads one entity-tag at *p: [W/]"opaque". Sets *weak, *tag and *len to the quoted part
 * (quotes included) and advances. Returns 0 or -EINVAL. */
static int entity_tag(const char **p, bool *weak, const char **tag, size_t *len)
{
	const char *s = *p;
	const char *close;

	*weak = false;
	if (s[0] == 'W' && s[1] == '/') {
		*weak = true;
		s += 2;
	}
	if (*s != '"')
		return -EINVAL;
	close = strchr(s + 1, '"');
	if (close == NULL)
		return -EINVAL;
	*tag = s;
	*len = (size_t)(close - s) + 1;
	*p = close + 1;
	return 0;
}

bool http_etag_match(const char *list, const char *etag, bool strong)
{
	const char *p = list;
	const char *want;
	size_t want_len;
	bool want_weak;

	if (entity_tag(&etag, &want_weak, &want, &want_len))
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '*') {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		return *p == '\0';
	}
	while (*p) {
		const char *tag;
		size_t len;
		bool weak;

		if (*p == ',' || *p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		if (entity_tag(&p, &weak, &tag, &len))
			return false;
		if (len == want_len && memcmp(tag, want, len) == 0 &&
		    (!strong || (!weak && !want_weak)))
			return true;
	}
	return false;
}

bool http_media_type_is(const char *content_type, const char *type)
{
	size_t n = strlen(type);
	const char *rest;

	if (content_type == NULL)
		return false;
	while (*content_type == ' ' || *content_type == '\t')
		content_type++;
	if (strncasecmp(content_type, type, n) != 0)
		return false;
	rest = content_type + n;
	while (*rest == ' ' || *rest == '\t')
		rest++;
	return *rest == '\0' || *rest == ';';
}

void http_framing_add(struct http_framing *f, const char *name, const char *value)
{
	if (strcasecmp(name, "Host") == 0) {
		f->hosts++;
		f->host = value;
	} else if (strcasecmp(name, "Content-Length") == 0) {
		if (f->lengths++ && strcmp(f->length, value) != 0)
			f->lengths_differ = true;
		f->length = value;
	} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
		f->transfer_encoding = value;
	}
}

int http_framing_check(const struct http_framing *f, bool http11, uint64_t max_body,
		       const char **reason)
{
	unsigned long long len;
	char *end;

	if (http11 && f->hosts == 0) {
		*reason = "an HTTP/1.1 request needs a Host header";
		return 400;
	}
	if (f->hosts > 1) {
		*reason = "more than one Host header";
		return 400;
	}
	if (f->lengths_differ) {
		*reason = "conflicting Content-Length headers";
		return 400;
	}
	if (f->length && f->transfer_encoding) {
		*reason = "both Content-Length and Transfer-Encoding: the length is ambiguous";
		return 400;
	}
	if (f->transfer_encoding && strcasecmp(f->transfer_encoding, "chunked") != 0) {
		*reason = "only the chunked transfer coding is implemented";
		return 501;
	}
	if (f->length) {
		errno = 0;
		len = strtoull(f->length, &end, 10);
		if (!isdigit((unsigned char)f->length[0]) || *end != '\0' || errno) {
			*reason = "Content-Length is not a number";
			return 400;
		}
		if (len > max_body) {
			*reason = "the request body is too large";
			return 413;
		}
	}
	return 0;
}

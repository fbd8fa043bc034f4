/* urls.c - URL sets with {A..B} patterns (see urls.h). */
#include "config.h"

#include "urls.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 18)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int urls_add(struct urls *u, const char *text, char *err, size_t errlen)
{
	struct urls_entry e = { NULL, NULL, 0, 1 };
	const char *open, *dots, *close;
	uint64_t hi;

	if (strncmp(text, "http://", 7) != 0 && strncmp(text, "https://", 8) != 0) {
		snprintf(err, errlen, "'%s' is not an http:// or https:// URL", text);
		return -EINVAL;
	}
	if (strlen(text) >= URLS_MAX_LEN - 20) {
		snprintf(err, errlen, "URL longer than %d bytes", URLS_MAX_LEN - 20);
		return -EINVAL;
	}
	for (const char *c = text; *c; c++) {
		if ((unsigned char)*c <= ' ' || *c == 0x7f) {
			snprintf(err, errlen, "'%s': a URL may not hold spaces or control characters",
				 text);
			return -EINVAL;
		}
	}
	if (u->n >= URLS_MAX_ENTRIES) {
		snprintf(err, errlen, "too many URLs (at most %d; use a {A..B} pattern)",
			 URLS_MAX_ENTRIES);
		return -EINVAL;
	}
	open = strchr(text, '{');
	if (open) {
		dots = strstr(open, "..");
		close = strchr(open, '}');
		if (dots == NULL || close == NULL || dots > close ||
		    parse_u64(open + 1, (size_t)(dots - open - 1), &e.lo) ||
		    parse_u64(dots + 2, (size_t)(close - dots - 2), &hi) || hi < e.lo ||
		    strchr(close + 1, '{')) {
			snprintf(err, errlen, "'%s': a pattern is one {A..B} with numbers A <= B",
				 text);
			return -EINVAL;
		}
		e.count = hi - e.lo + 1;
		e.prefix = strndup(text, (size_t)(open - text));
		e.suffix = strdup(close + 1);
		if (e.prefix == NULL || e.suffix == NULL)
			goto nomem;
	} else if (strchr(text, '}')) {
		snprintf(err, errlen, "'%s': '}' without '{'", text);
		return -EINVAL;
	} else {
		e.prefix = strdup(text);
		if (e.prefix == NULL)
			goto nomem;
	}
	if (u->n % 16 == 0) {
		struct urls_entry *v = realloc(u->v, (u->n + 16) * sizeof(*v));

		if (v == NULL)
			goto nomem;
		u->v = v;
	}
	u->v[u->n++] = e;
	u->total += e.count;
	return 0;
nomem:
	free(e.prefix);
	free(e.suffix);
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

int urls_add_file(struct urls *u, const char *path, char *err, size_t errlen)
{
	char line[URLS_MAX_LEN], why[URLS_MAX_LEN / 2];
	unsigned lineno = 0;
	FILE *f = fopen(path, "r");
	int r = 0;

	if (f == NULL) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *s = line;

		lineno++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%u: line too long", path, lineno);
			r = -EINVAL;
			break;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
				   line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		r = urls_add(u, s, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			break;
		}
	}
	fclose(f);
	if (r == 0 && u->total == 0) {
		snprintf(err, errlen, "%s: no URL in the file", path);
		r = -EINVAL;
	}
	return r;
}

int urls_get(const struct urls *u, uint64_t index, char *buf, size_t len)
{
	int n;

	for (size_t i = 0; i < u->n; i++) {
		const struct urls_entry *e = &u->v[i];

		if (index >= e->count) {
			index -= e->count;
			continue;
		}
		if (e->suffix)
			n = snprintf(buf, len, "%s%" PRIu64 "%s", e->prefix, e->lo + index,
				     e->suffix);
		else
			n = snprintf(buf, len, "%s", e->prefix);
		return n < 0 || (size_t)n >= len ? -ENOSPC : n;
	}
	return -EINVAL;
}

void urls_free(struct urls *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->v[i].prefix);
		free(u->v[i].suffix);
	}
	free(u->v);
	u->v = NULL;
	u->n = 0;
	u->total = 0;
}

/* opts.c - table-driven options, config file reader and value parsers (see opts.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "opts.h"

#define OPTS_MAX_LINE 4096

int opts_parse_int(const char *s, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || !(isdigit((unsigned char)s[0]) ||
			   (s[0] == '-' && isdigit((unsigned char)s[1]))))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

/* Splits "<digits><unit>" and returns the number; <unit> points at what follows the digits. */
static int parse_number_unit(const char *s, uint64_t *num, const char **unit)
{
	char *end;
	unsigned long long v;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*num = v;
	*unit = end;
	return 0;
}

static int mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
	if (b != 0 && a > UINT64_MAX / b)
		return -ERANGE;
	*out = a * b;
	return 0;
}

int opts_parse_size(const char *s, uint64_t *out)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "", 1 }, { "B", 1 },
		{ "K", 1ULL << 10 }, { "KB", 1ULL << 10 }, { "KiB", 1ULL << 10 },
		{ "M", 1ULL << 20 }, { "MB", 1ULL << 20 }, { "MiB", 1ULL << 20 },
		{ "G", 1ULL << 30 }, { "GB", 1ULL << 30 }, { "GiB", 1ULL << 30 },
		{ "T", 1ULL << 40 }, { "TB", 1ULL << 40 }, { "TiB", 1ULL << 40 },
	};
	const char *unit;
	uint64_t num;
	int r;

	r = parse_number_unit(s, &num, &unit);
	if (r)
		return r;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(unit, units[i].suffix) == 0)
			return mul_overflows(num, units[i].mult, out);
	return -EINVAL;
}

int opts_parse_duration(const char *s, uint64_t *out)
{
	static const struct { const char *suffix; uint64_t ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	const char *unit;
	uint64_t num;
	int r;

	r = parse_number_unit(s, &num, &unit);
	if (r)
		return r;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(unit, units[i].suffix) == 0)
			return mul_overflows(num, units[i].ms, out);
	return -EINVAL;
}

static void *field(void *settings, const struct opt_def *o)
{
	return (char *)settings + o->offset;
}

static const void *cfield(const void *settings, const struct opt_def *o)
{
	return (const char *)settings + o->offset;
}

static int parse_flag(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "on", "true", "1" };
	static const char *const no[] = { "no", "off", "false", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Writes <bytes> the way a user would: 1G rather than 1073741824 where it is exact. */
static void format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (bytes >= 1024 && bytes % 1024 == 0 && u < 3) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, bytes);
	else
		snprintf(buf, len, "%" PRIu64 "%c", bytes, units[u]);
}

/* Writes <ms> in the largest unit that divides it: 500ms, 2s, 5m, 1h, 1d. */
static void format_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
			return;
		}
	}
	if (ms == 0)
		snprintf(buf, len, "0s");
	else
		snprintf(buf, len, "%" PRIu64 "ms", ms);
}

static void format_range(const struct opt_def *o, char *buf, size_t len)
{
	char lo[32], hi[32];

	if (o->type == OPT_SIZE) {
		format_size((uint64_t)o->min, lo, sizeof(lo));
		format_size((uint64_t)o->max, hi, sizeof(hi));
	} else if (o->type == OPT_DURATION) {
		format_duration((uint64_t)o->min, lo, sizeof(lo));
		format_duration((uint64_t)o->max, hi, sizeof(hi));
	} else {
		snprintf(lo, sizeof(lo), "%lld", o->min);
		snprintf(hi, sizeof(hi), "%lld", o->max);
	}
	snprintf(buf, len, "%s..%s", lo, hi);
}

/* Checks a string value: printable, and one of o->choices when there are any. */
static int check_string(const struct opt_def *o, const char *value, char *err, size_t errlen)
{
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "bad value for %s: control characters are not allowed",
				 o->name);
			return -EINVAL;
		}
	}
	if (o->choices) {
		char list[256] = "";
		size_t n = 0;

		for (const char *const *c = o->choices; *c; c++) {
			int w;

			if (strcmp(value, *c) == 0)
				return 0;
			if (n >= sizeof(list))
				continue;	/* the list is cut short, the check goes on */
			w = snprintf(list + n, sizeof(list) - n, "%s%s", n ? ", " : "", *c);
			n += w > 0 ? (size_t)w : 0;
		}
		snprintf(err, errlen, "bad value '%s' for %s: expected one of %s", value, o->name,
			 list);
		return -EINVAL;
	}
	return 0;
}

/* Empties a list, freeing its values. */
static void list_clear(struct opt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Appends a copy of <value> to list option <o>'s field, after the checks a string gets.
 * Returns 0, -EINVAL (bad value, or the list is full) or -ENOMEM, with <err> set; on failure
 * the list is as it was. */
static int list_append(const struct opt_def *o, struct opt_list *l, const char *value,
		       char *err, size_t errlen)
{
	char **grown;
	char *copy;
	int r;

	if (l->n >= OPTS_LIST_MAX) {
		snprintf(err, errlen, "too many values for %s (at most %d)", o->name,
			 OPTS_LIST_MAX);
		return -EINVAL;
	}
	r = check_string(o, value, err, errlen);
	if (r)
		return r;
	copy = strdup(value);
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* one realloc per value: a list is at most OPTS_LIST_MAX short strings */
	grown = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	if (grown == NULL) {
		free(copy);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	grown[l->n] = copy;
	l->v = grown;
	l->n++;
	return 0;
}

int opts_set(const struct opt_def *o, void *settings, const char *value, char *err,
	     size_t errlen)
{
	const char *expect = NULL;
	long long ll = 0;
	uint64_t u = 0;
	bool b;
	int r = 0;

	switch (o->type) {
	case OPT_FLAG:
		r = parse_flag(value, &b);
		if (r == 0)
			*(bool *)field(settings, o) = b;
		expect = "yes or no";
		break;
	case OPT_INT:
		r = opts_parse_int(value, &ll);
		if (r == 0 && (ll < o->min || ll > o->max))
			r = -ERANGE;
		if (r == 0)
			*(int *)field(settings, o) = (int)ll;
		expect = "a whole number";
		break;
	case OPT_SIZE:
		r = opts_parse_size(value, &u);
		if (r == 0 && (u < (uint64_t)o->min || u > (uint64_t)o->max))
			r = -ERANGE;
		if (r == 0)
			*(uint64_t *)field(settings, o) = u;
		expect = "a size such as 4096, 64K, 256M or 4G";
		break;
	case OPT_DURATION:
		r = opts_parse_duration(value, &u);
		if (r == 0 && (u < (uint64_t)o->min || u > (uint64_t)o->max))
			r = -ERANGE;
		if (r == 0)
			*(uint64_t *)field(settings, o) = u;
		expect = "a duration such as 500ms, 2s, 5m, 1h or a number of seconds";
		break;
	case OPT_STRING: {
		char **sp = field(settings, o);
		char *copy;

		r = check_string(o, value, err, errlen);
		if (r)
			return r;
		copy = strdup(value);
		if (copy == NULL) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		free(*sp);
		*sp = copy;
		return 0;
	}
	case OPT_LIST:
		return list_append(o, field(settings, o), value, err, errlen);
	}
	if (r == -ERANGE && o->type != OPT_FLAG) {
		char range[80];

		format_range(o, range, sizeof(range));
		snprintf(err, errlen, "bad value '%s' for %s: must be %s", value, o->name, range);
		return -EINVAL;
	}
	if (r) {
		snprintf(err, errlen, "bad value '%s' for %s: expected %s", value, o->name,
			 expect);
		return -EINVAL;
	}
	return 0;
}

int opts_set_defaults(const struct opt_def *tab, void *settings, char *err, size_t errlen)
{
	for (const struct opt_def *o = tab; o->name; o++) {
		int r;

		if (o->type == OPT_LIST)
			list_clear(field(settings, o));	/* the default is the whole list */
		if (o->def == NULL)
			continue;
		r = opts_set(o, settings, o->def, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

static const struct opt_def *find_long(const struct opt_def *tab, const char *name, size_t len)
{
	for (const struct opt_def *o = tab; o->name; o++)
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	return NULL;
}

static const struct opt_def *find_short(const struct opt_def *tab, char c)
{
	for (const struct opt_def *o = tab; o->name; o++)
		if (o->short_name && o->short_name == c)
			return o;
	return NULL;
}

/* Finds the option that argv[*i] names and its value (consuming argv[*i + 1] when needed).
 * Returns 0 with *opt and *value set (*value is NULL for a flag), or -EINVAL with <err>. */
static int next_option(const struct opt_def *tab, int argc, char **argv, int *i,
		       const struct opt_def **opt, const char **value, char *err, size_t errlen)
{
	const char *arg = argv[*i];
	const struct opt_def *o;
	const char *inline_value = NULL;

	if (arg[0] == '-' && arg[1] == '-' && arg[2] != '\0') {
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);

		o = find_long(tab, name, len);
		if (o == NULL) {
			snprintf(err, errlen, "unknown option '--%.*s' (try --help)", (int)len,
				 name);
			return -EINVAL;
		}
		if (eq)
			inline_value = eq + 1;
	} else if (arg[0] == '-' && arg[1] != '\0' && arg[1] != '-') {
		o = find_short(tab, arg[1]);
		if (o == NULL) {
			snprintf(err, errlen, "unknown option '-%c' (try --help)", arg[1]);
			return -EINVAL;
		}
		if (arg[2] != '\0') {
			if (o->type == OPT_FLAG) {
				snprintf(err, errlen, "option '-%c' takes no value", arg[1]);
				return -EINVAL;
			}
			inline_value = arg + 2;
		}
	} else {
		snprintf(err, errlen, "unexpected argument '%s' (try --help)", arg);
		return -EINVAL;
	}

	*opt = o;
	if (o->type == OPT_FLAG) {
		if (inline_value) {
			snprintf(err, errlen, "option '--%s' takes no value", o->name);
			return -EINVAL;
		}
		*value = NULL;
		return 0;
	}
	if (inline_value) {
		*value = inline_value;
		return 0;
	}
	if (*i + 1 >= argc) {
		snprintf(err, errlen, "option '--%s' needs a value (%s)", o->name,
			 o->metavar ? o->metavar : "VALUE");
		return -EINVAL;
	}
	*i += 1;
	*value = argv[*i];
	return 0;
}

int opts_parse_args(const struct opt_def *tab, void *settings, int argc, char **argv,
		    char *err, size_t errlen)
{
	/* The command line replaces a list rather than adding to the file's values: a first
	 * pass empties every list that argv names (emptying one twice is harmless), so the
	 * second pass only appends. The first pass stops at a bad argument, which the second
	 * pass then reports. */
	for (int i = 1; i < argc; i++) {
		const struct opt_def *o;
		const char *value;

		if (next_option(tab, argc, argv, &i, &o, &value, err, errlen))
			break;
		if (o->type == OPT_LIST)
			list_clear(field(settings, o));
	}
	for (int i = 1; i < argc; i++) {
		const struct opt_def *o;
		const char *value;
		int r;

		r = next_option(tab, argc, argv, &i, &o, &value, err, errlen);
		if (r)
			return r;
		if (o->type == OPT_FLAG) {
			*(bool *)field(settings, o) = true;
			continue;
		}
		r = opts_set(o, settings, value, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

const char *opts_peek_arg(const struct opt_def *tab, int argc, char **argv, const char *name)
{
	const char *found = NULL;
	char scratch[8];

	for (int i = 1; i < argc; i++) {
		const struct opt_def *o;
		const char *value;

		if (next_option(tab, argc, argv, &i, &o, &value, scratch, sizeof(scratch)))
			return found;	/* opts_parse_args() reports the error later */
		if (strcmp(o->name, name) == 0)
			found = value;
	}
	return found;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Parses one "key value" line in place. Returns 0 with *key NULL for a blank or comment
 * line, 0 with *key and *value set, or -EINVAL with <err> saying what is wrong. */
static int split_line(char *line, char **key, char **value, char *err, size_t errlen)
{
	char *p = trim(line);
	char *v;

	*key = NULL;
	if (*p == '\0' || *p == '#')
		return 0;
	*key = p;
	while (*p && !isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		snprintf(err, errlen, "'%s' needs a value", *key);
		return -EINVAL;
	}
	*p++ = '\0';
	v = trim(p);
	if (*v == '"') {
		char *in = v + 1, *out = v + 1, *rest;

		/* unescape \" and \\ in place, up to the closing quote */
		while (*in && *in != '"') {
			if (*in == '\\' && (in[1] == '"' || in[1] == '\\'))
				in++;
			*out++ = *in++;
		}
		if (*in != '"') {
			snprintf(err, errlen, "unterminated quoted value");
			return -EINVAL;
		}
		*out = '\0';
		rest = trim(in + 1);
		if (*rest != '\0' && *rest != '#') {
			snprintf(err, errlen, "unexpected text after the quoted value");
			return -EINVAL;
		}
		*value = v + 1;
		return 0;
	}
	/* an unquoted value ends at a comment that follows white space */
	for (char *c = v; *c; c++) {
		if (*c == '#' && c > v && isspace((unsigned char)c[-1])) {
			*c = '\0';
			v = trim(v);
			break;
		}
	}
	*value = v;
	return 0;
}

int opts_parse_file(const struct opt_def *tab, void *settings, const char *path, char *err,
		    size_t errlen)
{
	return opts_parse_file_checked(tab, settings, path, NULL, err, errlen);
}

int opts_parse_file_checked(const struct opt_def *tab, void *settings, const char *path,
			    opts_check_fn *check, char *err, size_t errlen)
{
	char line[OPTS_MAX_LINE + 2];
	char why[512];
	size_t count = 0;
	unsigned *first_line;
	unsigned lineno = 0;
	FILE *f;
	int r = 0;

	for (const struct opt_def *o = tab; o->name; o++)
		count++;
	f = fopen(path, "r");
	if (f == NULL) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return r;
	}
	first_line = calloc(count, sizeof(*first_line));
	if (first_line == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	errno = 0;
	while (fgets(line, sizeof(line), f)) {
		const struct opt_def *o;
		char *key, *value;
		size_t len = strlen(line);

		lineno++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
				 OPTS_MAX_LINE);
			r = -EINVAL;
			break;
		}
		r = split_line(line, &key, &value, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			break;
		}
		if (key == NULL)
			continue;
		o = find_long(tab, key, strlen(key));
		if (o == NULL) {
			snprintf(err, errlen, "%s:%u: unknown key '%s'", path, lineno, key);
			r = -EINVAL;
			break;
		}
		if (o->flags & OPT_CLI_ONLY) {
			snprintf(err, errlen, "%s:%u: '%s' can only be given on the command line",
				 path, lineno, key);
			r = -EINVAL;
			break;
		}
		if (o->type == OPT_LIST) {
			/* every line appends; the file's first one replaces the default */
			if (first_line[o - tab] == 0)
				list_clear(field(settings, o));
		} else if (first_line[o - tab]) {
			snprintf(err, errlen, "%s:%u: '%s' is already set on line %u", path,
				 lineno, key, first_line[o - tab]);
			r = -EINVAL;
			break;
		}
		if (first_line[o - tab] == 0)
			first_line[o - tab] = lineno;
		r = opts_set(o, settings, value, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			break;
		}
		if (check && check(o, value, why, sizeof(why))) {
			snprintf(err, errlen, "%s:%u: bad value '%s' for %s: %s", path, lineno,
				 value, key, why);
			r = -EINVAL;
			break;
		}
	}
	if (r == 0 && ferror(f)) {
		r = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-r));
	}
	free(first_line);
	fclose(f);
	return r;
}

void opts_usage(const struct opt_def *tab, FILE *out)
{
	for (const struct opt_def *o = tab; o->name; o++) {
		char left[64];

		snprintf(left, sizeof(left), "%c%c%s--%s%s%s",
			 o->short_name ? '-' : ' ', o->short_name ? o->short_name : ' ',
			 o->short_name ? ", " : "  ", o->name, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
		fprintf(out, "  %-28s %s", left, o->help);
		if (o->def && o->type != OPT_FLAG)
			fprintf(out, " (default: %s)", o->def);
		if (o->type == OPT_LIST)
			fputs(" (repeatable)", out);
		fputc('\n', out);
	}
}

/* Writes one "key "value"" line, escaping \" and \\ as split_line() expects. */
static void print_quoted(const char *key, const char *s, FILE *out)
{
	fprintf(out, "%s \"", key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputs("\"\n", out);
}

void opts_print(const struct opt_def *tab, const void *settings, FILE *out)
{
	for (const struct opt_def *o = tab; o->name; o++) {
		const void *p = cfield(settings, o);

		if (o->flags & OPT_CLI_ONLY)
			continue;
		switch (o->type) {
		case OPT_FLAG:
			fprintf(out, "%s %s\n", o->name, *(const bool *)p ? "yes" : "no");
			break;
		case OPT_INT:
			fprintf(out, "%s %d\n", o->name, *(const int *)p);
			break;
		case OPT_SIZE: {
			char sz[32];

			format_size(*(const uint64_t *)p, sz, sizeof(sz));
			fprintf(out, "%s %s\n", o->name, sz);
			break;
		}
		case OPT_DURATION: {
			char d[32];

			format_duration(*(const uint64_t *)p, d, sizeof(d));
			fprintf(out, "%s %s\n", o->name, d);
			break;
		}
		case OPT_STRING: {
			const char *s = *(char *const *)p;

			if (s == NULL) {
				fprintf(out, "# %s (unset)\n", o->name);
				break;
			}
			print_quoted(o->name, s, out);
			break;
		}
		case OPT_LIST: {
			const struct opt_list *l = p;

			for (size_t i = 0; i < l->n; i++)
				print_quoted(o->name, l->v[i], out);
			break;
		}
		}
	}
}

/* The bytes option <o>'s field takes in a settings struct. */
static size_t field_size(const struct opt_def *o)
{
	switch (o->type) {
	case OPT_FLAG:
		return sizeof(bool);
	case OPT_INT:
		return sizeof(int);
	case OPT_SIZE:
	case OPT_DURATION:
		return sizeof(uint64_t);
	case OPT_STRING:
		return sizeof(char *);
	case OPT_LIST:
		return sizeof(struct opt_list);
	}
	return 0;
}

bool opts_equal(const struct opt_def *o, const void *a, const void *b)
{
	const void *pa = cfield(a, o), *pb = cfield(b, o);

	switch (o->type) {
	case OPT_STRING: {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;

		return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
	}
	case OPT_LIST: {
		const struct opt_list *la = pa, *lb = pb;

		if (la->n != lb->n)
			return false;
		for (size_t i = 0; i < la->n; i++)
			if (strcmp(la->v[i], lb->v[i]) != 0)
				return false;
		return true;
	}
	default:
		return memcmp(pa, pb, field_size(o)) == 0;
	}
}

void opts_swap(const struct opt_def *o, void *a, void *b)
{
	unsigned char tmp[sizeof(struct opt_list)];
	size_t n = field_size(o);

	memcpy(tmp, field(a, o), n);
	memcpy(field(a, o), field(b, o), n);
	memcpy(field(b, o), tmp, n);
}

void opts_free(const struct opt_def *tab, void *settings)
{
	for (const struct opt_def *o = tab; o->name; o++) {
		if (o->type == OPT_STRING) {
			char **sp = field(settings, o);

			free(*sp);
			*sp = NULL;
		} else if (o->type == OPT_LIST) {
			list_clear(field(settings, o));
		}
	}
}

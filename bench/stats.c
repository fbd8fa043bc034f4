/* stats.c - load results: recording, merging, summary and writers (see stats.h). */
#include "config.h"

#include "stats.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const double stats_percentiles[] = {
	0, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97.5, 99, 99.5, 99.9, 99.99,
	99.999, 100,
};
const unsigned stats_npercentiles = sizeof(stats_percentiles) / sizeof(stats_percentiles[0]);

static const char *const cache_names[STATS_CACHE_N] = {
	"NONE", "HIT", "MISS", "STALE", "REVALIDATED", "BYPASS", "OTHER",
};

static const char *const error_names[STATS_ERR_N] = { "connect", "timeout", "io", "other" };

struct stats *stats_new(void)
{
	struct stats *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	hist_init(&s->latency);
	for (int i = 0; i < STATS_CACHE_N; i++)
		hist_init(&s->by_cache[i]);
	return s;
}

void stats_free(struct stats *s)
{
	free(s);
}

enum stats_cache stats_cache_parse(const char *value)
{
	size_t len;

	if (value == NULL)
		return STATS_CACHE_NONE;
	while (*value == ' ' || *value == '\t')
		value++;
	for (int i = STATS_CACHE_HIT; i < STATS_CACHE_OTHER; i++) {
		len = strlen(cache_names[i]);
		if (strncasecmp(value, cache_names[i], len) == 0 &&
		    (value[len] == '\0' || value[len] == ' ' || value[len] == ',' ||
		     value[len] == '\r' || value[len] == '\n'))
			return (enum stats_cache)i;
	}
	return STATS_CACHE_OTHER;
}

const char *stats_cache_name(enum stats_cache c)
{
	return (unsigned)c < STATS_CACHE_N ? cache_names[c] : "?";
}

const char *stats_error_name(enum stats_error e)
{
	return (unsigned)e < STATS_ERR_N ? error_names[e] : "?";
}

static struct stats_second *second_of(struct stats *s, uint64_t at_us)
{
	uint64_t i = at_us / 1000000;

	if (i >= STATS_MAX_SECONDS)
		i = STATS_MAX_SECONDS - 1;
	if (i + 1 > s->nseconds)
		s->nseconds = (unsigned)i + 1;
	return &s->seconds[i];
}

static void count_backend(struct stats *s, const char *name, uint64_t n)
{
	unsigned i;

	for (i = 0; i < s->nbackends; i++)
		if (strcmp(s->backends[i].name, name) == 0)
			break;
	if (i == s->nbackends) {
		if (i == STATS_MAX_BACKENDS || strlen(name) >= STATS_MAX_NAME) {
			s->backends_other += n;
			return;
		}
		strcpy(s->backends[i].name, name);
		s->nbackends++;
	}
	s->backends[i].count += n;
}

void stats_record(struct stats *s, uint64_t at_us, uint64_t latency_us, long status,
		  uint64_t bytes, enum stats_cache cache, const char *backend)
{
	struct stats_second *sec = second_of(s, at_us);

	if ((unsigned)cache >= STATS_CACHE_N)
		cache = STATS_CACHE_OTHER;
	hist_record(&s->latency, latency_us);
	hist_record(&s->by_cache[cache], latency_us);
	s->responses++;
	s->bytes += bytes;
	s->status[status >= 100 && status < STATS_MAX_STATUS ? status : 0]++;
	s->cache[cache]++;
	if (backend && *backend)
		count_backend(s, backend, 1);
	sec->responses++;
	sec->bytes += bytes;
	sec->latency_sum_us += latency_us;
	if (cache == STATS_CACHE_HIT)
		sec->hits++;
}

void stats_record_error(struct stats *s, uint64_t at_us, enum stats_error e)
{
	if ((unsigned)e >= STATS_ERR_N)
		e = STATS_ERR_OTHER;
	s->errors[e]++;
	second_of(s, at_us)->errors++;
}

void stats_merge(struct stats *dst, const struct stats *src)
{
	hist_merge(&dst->latency, &src->latency);
	for (int i = 0; i < STATS_CACHE_N; i++) {
		hist_merge(&dst->by_cache[i], &src->by_cache[i]);
		dst->cache[i] += src->cache[i];
	}
	dst->responses += src->responses;
	dst->bytes += src->bytes;
	if (src->elapsed_us > dst->elapsed_us)
		dst->elapsed_us = src->elapsed_us;
	for (int i = 0; i < STATS_ERR_N; i++)
		dst->errors[i] += src->errors[i];
	for (int i = 0; i < STATS_MAX_STATUS; i++)
		dst->status[i] += src->status[i];
	for (unsigned i = 0; i < src->nbackends; i++)
		count_backend(dst, src->backends[i].name, src->backends[i].count);
	dst->backends_other += src->backends_other;
	dst->unsent += src->unsent;
	for (unsigned i = 0; i < src->nseconds; i++) {
		dst->seconds[i].responses += src->seconds[i].responses;
		dst->seconds[i].bytes += src->seconds[i].bytes;
		dst->seconds[i].errors += src->seconds[i].errors;
		dst->seconds[i].hits += src->seconds[i].hits;
		dst->seconds[i].latency_sum_us += src->seconds[i].latency_sum_us;
	}
	if (src->nseconds > dst->nseconds)
		dst->nseconds = src->nseconds;
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

void stats_summarize(const struct stats *s, struct stats_summary *out)
{
	uint64_t with_header = 0;

	memset(out, 0, sizeof(*out));
	out->responses = s->responses;
	out->bytes = s->bytes;
	for (int i = 0; i < STATS_ERR_N; i++)
		out->errors += s->errors[i];
	for (int i = 0; i < STATS_MAX_STATUS; i++)
		if (i < 200 || i >= 400)
			out->non_2xx_3xx += s->status[i];
	out->seconds = (double)s->elapsed_us / 1e6;
	if (s->elapsed_us > 0) {
		out->requests_per_s = (double)s->responses / out->seconds;
		out->bytes_per_s = (double)s->bytes / out->seconds;
	}
	out->p50_ms = ms(hist_percentile(&s->latency, 50));
	out->p90_ms = ms(hist_percentile(&s->latency, 90));
	out->p99_ms = ms(hist_percentile(&s->latency, 99));
	out->p999_ms = ms(hist_percentile(&s->latency, 99.9));
	out->max_ms = ms(hist_max(&s->latency));
	out->mean_ms = hist_mean(&s->latency) / 1000.0;
	for (int i = STATS_CACHE_HIT; i < STATS_CACHE_N; i++)
		with_header += s->cache[i];
	out->hit_ratio = with_header ? (double)s->cache[STATS_CACHE_HIT] / (double)with_header
				     : -1.0;
}

/* "1.23ms", "45.60ms", "1.20s" */
static const char *fmt_ms(double v, char *buf, size_t len)
{
	if (v >= 1000.0)
		snprintf(buf, len, "%.2fs", v / 1000.0);
	else if (v >= 1.0)
		snprintf(buf, len, "%.2fms", v);
	else
		snprintf(buf, len, "%.0fus", v * 1000.0);
	return buf;
}

static const char *fmt_bytes(double v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KB", "MB", "GB", "TB" };
	int u = 0;

	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.2f%s", v, unit[u]);
	return buf;
}

void stats_print(const struct stats *s, const char *title, FILE *out)
{
	struct stats_summary m;
	char a[32], b[32];

	stats_summarize(s, &m);
	if (title)
		fprintf(out, "%s\n", title);
	fprintf(out, "  %" PRIu64 " requests in %.2fs, %s read\n", m.responses, m.seconds,
		fmt_bytes((double)m.bytes, a, sizeof(a)));
	fprintf(out, "  Latency   mean %s  max %s\n", fmt_ms(m.mean_ms, a, sizeof(a)),
		fmt_ms(m.max_ms, b, sizeof(b)));
	fprintf(out, "  Latency distribution\n");
	fprintf(out, "     50%%    %s\n", fmt_ms(m.p50_ms, a, sizeof(a)));
	fprintf(out, "     90%%    %s\n", fmt_ms(m.p90_ms, a, sizeof(a)));
	fprintf(out, "     99%%    %s\n", fmt_ms(m.p99_ms, a, sizeof(a)));
	fprintf(out, "   99.9%%    %s\n", fmt_ms(m.p999_ms, a, sizeof(a)));
	fprintf(out, "  Status:");
	for (int i = 0; i < STATS_MAX_STATUS; i++)
		if (s->status[i])
			fprintf(out, " %d=%" PRIu64, i ? i : 0, s->status[i]);
	fprintf(out, "\n");
	if (m.errors)
		fprintf(out, "  Socket errors: connect %" PRIu64 ", timeout %" PRIu64
			", io %" PRIu64 ", other %" PRIu64 "\n", s->errors[STATS_ERR_CONNECT],
			s->errors[STATS_ERR_TIMEOUT], s->errors[STATS_ERR_IO],
			s->errors[STATS_ERR_OTHER]);
	if (m.non_2xx_3xx)
		fprintf(out, "  Non-2xx or 3xx responses: %" PRIu64 "\n", m.non_2xx_3xx);
	if (s->unsent)
		fprintf(out, "  %" PRIu64 " requests fell due but were never sent: every connection "
			"was busy (raise -c)\n", s->unsent);
	if (m.hit_ratio >= 0) {
		fprintf(out, "  X-Cache:");
		for (int i = STATS_CACHE_HIT; i < STATS_CACHE_N; i++)
			if (s->cache[i])
				fprintf(out, " %s=%" PRIu64, cache_names[i], s->cache[i]);
		fprintf(out, "  (hit ratio %.1f %%)\n", m.hit_ratio * 100.0);
	}
	if (s->nbackends) {
		fprintf(out, "  X-Served-By:");
		for (unsigned i = 0; i < s->nbackends; i++)
			fprintf(out, " %s=%" PRIu64, s->backends[i].name, s->backends[i].count);
		fprintf(out, "\n");
	}
	fprintf(out, "Requests/sec: %10.2f\n", m.requests_per_s);
	fprintf(out, "Transfer/sec: %10s\n", fmt_bytes(m.bytes_per_s, a, sizeof(a)));
}

int stats_write_series_csv(const struct stats *s, FILE *out)
{
	fprintf(out, "second,responses,bytes,errors,hits,mean_latency_ms\n");
	for (unsigned i = 0; i < s->nseconds; i++) {
		const struct stats_second *sec = &s->seconds[i];

		fprintf(out, "%u,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.3f\n", i,
			sec->responses, sec->bytes, sec->errors, sec->hits,
			sec->responses ? (double)sec->latency_sum_us / 1000.0 /
						 (double)sec->responses : 0.0);
	}
	return ferror(out) ? -1 : 0;
}

static void csv_ms(const struct hist *h, double p, FILE *out)
{
	if (hist_count(h))
		fprintf(out, ",%.3f", ms(hist_percentile(h, p)));
	else
		fputc(',', out);
}

int stats_write_percentiles_csv(const struct stats *s, FILE *out)
{
	fprintf(out, "percentile,all_ms,hit_ms,miss_ms\n");
	for (unsigned i = 0; i < stats_npercentiles; i++) {
		fprintf(out, "%g", stats_percentiles[i]);
		csv_ms(&s->latency, stats_percentiles[i], out);
		csv_ms(&s->by_cache[STATS_CACHE_HIT], stats_percentiles[i], out);
		csv_ms(&s->by_cache[STATS_CACHE_MISS], stats_percentiles[i], out);
		fputc('\n', out);
	}
	return ferror(out) ? -1 : 0;
}

static void jadd_double(struct json_object *o, const char *key, double v)
{
	json_object_object_add(o, key, json_object_new_double(v));
}

static void jadd_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *percentiles_json(const struct hist *h)
{
	struct json_object *o = json_object_new_object();
	char key[32];

	for (unsigned i = 0; o && i < stats_npercentiles; i++) {
		snprintf(key, sizeof(key), "p%g", stats_percentiles[i]);
		jadd_double(o, key, ms(hist_percentile(h, stats_percentiles[i])));
	}
	return o;
}

struct json_object *stats_to_json(const struct stats *s)
{
	struct json_object *o = json_object_new_object(), *x, *arr;
	struct stats_summary m;
	char key[16];

	if (o == NULL)
		return NULL;
	stats_summarize(s, &m);
	jadd_u64(o, "responses", m.responses);
	jadd_u64(o, "errors", m.errors);
	jadd_u64(o, "non_2xx_3xx", m.non_2xx_3xx);
	jadd_u64(o, "unsent", s->unsent);
	jadd_u64(o, "bytes", m.bytes);
	jadd_double(o, "seconds", m.seconds);
	jadd_double(o, "requests_per_s", m.requests_per_s);
	jadd_double(o, "bytes_per_s", m.bytes_per_s);
	jadd_double(o, "mean_ms", m.mean_ms);
	jadd_double(o, "p50_ms", m.p50_ms);
	jadd_double(o, "p90_ms", m.p90_ms);
	jadd_double(o, "p99_ms", m.p99_ms);
	jadd_double(o, "p99.9_ms", m.p999_ms);
	jadd_double(o, "max_ms", m.max_ms);
	if (m.hit_ratio >= 0)
		jadd_double(o, "hit_ratio", m.hit_ratio);
	else
		json_object_object_add(o, "hit_ratio", NULL);
	json_object_object_add(o, "latency_ms", percentiles_json(&s->latency));
	x = json_object_new_object();
	for (int i = 0; x && i < STATS_MAX_STATUS; i++) {
		if (s->status[i] == 0)
			continue;
		snprintf(key, sizeof(key), "%d", i);
		jadd_u64(x, key, s->status[i]);
	}
	json_object_object_add(o, "status", x);
	x = json_object_new_object();
	for (int i = 0; x && i < STATS_ERR_N; i++)
		jadd_u64(x, error_names[i], s->errors[i]);
	json_object_object_add(o, "errors_by_kind", x);
	x = json_object_new_object();
	for (int i = 0; x && i < STATS_CACHE_N; i++) {
		struct json_object *c;

		if (s->cache[i] == 0)
			continue;
		c = json_object_new_object();
		if (c == NULL)
			break;
		jadd_u64(c, "count", s->cache[i]);
		jadd_double(c, "p50_ms", ms(hist_percentile(&s->by_cache[i], 50)));
		jadd_double(c, "p99_ms", ms(hist_percentile(&s->by_cache[i], 99)));
		json_object_object_add(x, cache_names[i], c);
	}
	json_object_object_add(o, "x_cache", x);
	x = json_object_new_object();
	for (unsigned i = 0; x && i < s->nbackends; i++)
		jadd_u64(x, s->backends[i].name, s->backends[i].count);
	if (x && s->backends_other)
		jadd_u64(x, "(other)", s->backends_other);
	json_object_object_add(o, "x_served_by", x);
	arr = json_object_new_array();
	for (unsigned i = 0; arr && i < s->nseconds; i++) {
		const struct stats_second *sec = &s->seconds[i];

		x = json_object_new_object();
		if (x == NULL)
			break;
		jadd_u64(x, "second", i);
		jadd_u64(x, "responses", sec->responses);
		jadd_u64(x, "bytes", sec->bytes);
		jadd_u64(x, "errors", sec->errors);
		jadd_u64(x, "hits", sec->hits);
		json_object_array_add(arr, x);
	}
	json_object_object_add(o, "series", arr);
	return o;
}

/* cache-compare.c - mtps-cache-compare: the store's SIEVE against its LRU, on one trace.
 *
 * `make bench` runs this after the HTTP cases. It needs no server: it drives proxy/cache.c
 * directly, the way the front end does (cache_lookup(); on a miss a new entry of the
 * object's size goes in with cache_insert(); every reference is dropped), and replays the
 * same synthetic trace against a store of each policy and each size. It reports per policy
 * and size the object and byte hit ratios, and the store's throughput (lookups + inserts
 * per second) with one thread and with --threads threads.
 *
 * The workload, all of it from fixed seeds (--seed), so every run sees the same requests:
 *   keys      --keys distinct keys, "mtps.bench:8080 /objects/ID" as the front end spells
 *             keys ("HOST TARGET"); ID 0 is the most popular.
 *   sizes     log-normal, median 8 KiB, clamped to 1 KiB-64 KiB, one per key. The store
 *             only charges the size: no body is allocated.
 *   requests  --requests draws from a Zipf distribution of exponent --zipf over the keys.
 *   scan      a second trace is the first with a burst of one-hit wonders at its middle:
 *             --scan percent of --keys new keys, requested once each, in order (a crawler,
 *             a backup). At the default 50% the burst carries about half the working set's
 *             bytes, more than the largest default store, so it flushes an LRU store
 *             entirely, and LRU then misses the popular keys until it has fetched them
 *             again; SIEVE's hand evicts the newcomers before it gets round to the popular
 *             entries. The column "after scan" is the object hit ratio of the Zipf requests
 *             right after the burst, as many as the burst had (the burst's own requests
 *             are misses for any policy; over the whole trace the dip is lost in the
 *             average).
 *
 * The traces are drawn once, before any timing, into an array of key ids: the sampler's
 * cost stays out of the figures, and the multi-threaded runs replay exactly the requests of
 * the single-threaded one. Thread i of T replays requests i, i+T, i+2T, ...: each slice keeps
 * the trace's popularity and its order, so the threads contend for the hot keys as the
 * front end's workers do. Hit ratios are from the single-threaded run (the threaded runs
 * interleave nondeterministically); throughput is total operations over wall time
 * (CLOCK_MONOTONIC), from the moment the threads are released to the last one's end, the
 * fastest of --repeat runs. Other processes on the cores skew those figures, so the CPU
 * time they took meanwhile is read from /proc/stat and a warning printed when it is more
 * than a tenth of the cores'.
 *
 * Threads: main() draws the workload and, for each run, starts the replay threads, which
 * share the store and read the workload (read-only); each writes only its own struct
 * replay, which main() reads after joining it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "opts.h"

#define PROG "mtps-cache-compare"

#define KEY_STRIDE 40		/* bytes per key in the key table, NUL included */
#define KEY_FORMAT "mtps.bench:8080 /objects/%" PRIu32
#define MIN_OBJECT 1024u	/* object sizes, bytes */
#define MAX_OBJECT 65536u
#define MEDIAN_OBJECT 8192.0
#define SIZE_SIGMA 0.8		/* of the size's natural logarithm */
#define MAX_CACHE_SIZES 16
#define MAX_ZIPF 10.0

/* What one run measures; the threads' tallies are summed into one. */
struct tally {
	uint64_t requests;	/* to the popular keys */
	uint64_t hits;
	uint64_t bytes;		/* sizes of the objects requested / hit */
	uint64_t hit_bytes;
	uint64_t scan_requests;	/* to one-hit wonders */
	uint64_t after_requests;	/* to the popular keys, in the window after the burst */
	uint64_t after_hits;
	uint64_t ops;		/* cache_lookup() + cache_insert() calls */
	uint64_t too_big;	/* objects larger than the whole store: not stored */
};

struct settings {
	int keys;
	int requests;
	char *zipf;
	int threads;
	int repeat;
	char *sizes;
	int scan;
	int seed;
	bool help;
	bool version;
};

#define S(field) offsetof(struct settings, field)

static const struct opt_def options[] = {
	{ "keys", 'k', OPT_INT, 0, S(keys), "N", "100000", 1, 10000000,
	  "distinct keys (the working set)", NULL },
	{ "requests", 'r', OPT_INT, 0, S(requests), "N", "2000000", 1, 100000000,
	  "requests in the trace (the scan burst comes on top)", NULL },
	{ "zipf", 'z', OPT_STRING, 0, S(zipf), "ALPHA", "0.9", 0, 0,
	  "Zipf exponent of the key popularity, 0 (uniform) to 10", NULL },
	{ "threads", 't', OPT_INT, 0, S(threads), "N", "2", 2, 256,
	  "threads of the multi-threaded runs (the other runs have one)", NULL },
	{ "repeat", 0, OPT_INT, 0, S(repeat), "N", "2", 1, 100,
	  "timed runs of each kind; the fastest counts (others' load only slows a run)", NULL },
	{ "sizes", 's', OPT_STRING, 0, S(sizes), "PCT,...", "1,5,10,25", 0, 0,
	  "store sizes, in percent of the working set's bytes", NULL },
	{ "scan", 0, OPT_INT, 0, S(scan), "PCT", "50", 0, 1000,
	  "one-hit wonders in the scan burst, in percent of --keys; 0 = no scan trace", NULL },
	{ "seed", 0, OPT_INT, 0, S(seed), "N", "1", 0, 2147483647,
	  "seed of the sizes and the trace", NULL },
	{ "help", 'h', OPT_FLAG, 0, S(help), NULL, NULL, 0, 0,
	  "show this help and exit", NULL },
	{ "version", 'V', OPT_FLAG, 0, S(version), NULL, NULL, 0, 0,
	  "show the version and exit", NULL },
	OPT_END
};

/* ---- deterministic randomness ------------------------------------------------------------ */

/* splitmix64 (Steele, Lea, Flood 2014): a 64-bit counter through a strong mixer. Tiny,
 * fast, and the same sequence on every platform for a seed. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A uniform double in [0, 1): the top 53 bits. */
static double uniform(uint64_t *state)
{
	return (double)(splitmix64(state) >> 11) * 0x1.0p-53;
}

/* An object size: exp(N(ln median, sigma)) by Box-Muller, clamped to the size range. */
static uint32_t draw_size(uint64_t *state)
{
	double u1 = 1.0 - uniform(state);	/* (0, 1]: log() stays finite */
	double u2 = uniform(state);
	double normal = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
	double size = MEDIAN_OBJECT * exp(SIZE_SIGMA * normal);

	if (size < MIN_OBJECT)
		return MIN_OBJECT;
	if (size > MAX_OBJECT)
		return MAX_OBJECT;
	return (uint32_t)size;
}

/* Zipf sampling by inversion of a precomputed CDF.
 *
 * Key k (0-based) is requested with probability (k+1)^-alpha / H, where H is the sum of
 * that weight over all keys. The table holds the running sums divided by H, so cdf[k] is
 * the probability of drawing a key <= k; a uniform u in [0, 1) maps to the first k with
 * cdf[k] > u, found by binary search. That is exact (to double rounding) for every alpha,
 * 1 and 0 included, where the closed-form shortcuts need special cases, and costs 8 bytes a
 * key and O(log keys) a draw. Rejection-inversion (Hoermann & Derflinger 1996) draws in
 * O(1) without the table, but the trace is drawn once before anything is timed, so the
 * simpler method costs nothing that shows. The last entry is forced to 1 so rounding
 * cannot leave a u above every entry. */
static double *zipf_cdf(uint32_t n, double alpha)
{
	double *cdf = malloc((size_t)n * sizeof(*cdf));
	double sum = 0;

	if (cdf == NULL)
		return NULL;
	for (uint32_t k = 0; k < n; k++) {
		sum += pow((double)k + 1.0, -alpha);
		cdf[k] = sum;
	}
	for (uint32_t k = 0; k < n; k++)
		cdf[k] /= sum;
	cdf[n - 1] = 1.0;
	return cdf;
}

/* The first k in [0, n) with cdf[k] > u, for u in [0, 1). */
static uint32_t zipf_draw(const double *cdf, uint32_t n, double u)
{
	uint32_t lo = 0, hi = n - 1;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ---- the workload ------------------------------------------------------------------------ */

struct workload {
	uint32_t nkeys;		/* popular keys: ids 0 .. nkeys-1, most popular first */
	uint32_t nscan;		/* one-hit wonders: ids nkeys .. nkeys+nscan-1 */
	char *keys;		/* KEY_STRIDE bytes per id */
	uint8_t *key_lens;
	uint32_t *sizes;	/* bytes, per id */
	uint64_t working_set;	/* bytes of the popular keys */
	uint64_t scan_bytes;	/* bytes of the one-hit wonders */
	uint32_t *trace;	/* key ids: the Zipf requests with the burst at the middle */
	size_t ntrace;
	size_t scan_end;	/* trace index just past the burst */
	size_t after_end;	/* ... and past as many requests again: the window after it */
};

static void workload_free(struct workload *w)
{
	free(w->keys);
	free(w->key_lens);
	free(w->sizes);
	free(w->trace);
	memset(w, 0, sizeof(*w));
}

/* Draws the keys, their sizes and the trace of <requests> Zipf requests (with <nscan>
 * one-hit wonders at the middle) into <w>. Returns 0 or -ENOMEM, having freed what it
 * built. */
static int workload_build(struct workload *w, uint32_t nkeys, uint32_t nscan, size_t requests,
			  double alpha, uint64_t seed)
{
	uint32_t nids = nkeys + nscan;
	uint64_t size_rng = seed ^ 0x5123e5a1c0ffee00ULL, trace_rng = seed ^ 0x7ace0f2a9b1ULL;
	size_t middle = requests / 2, t = 0;
	double *cdf;

	memset(w, 0, sizeof(*w));
	w->nkeys = nkeys;
	w->nscan = nscan;
	w->ntrace = requests + nscan;
	w->keys = malloc((size_t)nids * KEY_STRIDE);
	w->key_lens = malloc(nids);
	w->sizes = malloc((size_t)nids * sizeof(*w->sizes));
	w->trace = malloc(w->ntrace * sizeof(*w->trace));
	cdf = zipf_cdf(nkeys, alpha);
	if (w->keys == NULL || w->key_lens == NULL || w->sizes == NULL || w->trace == NULL ||
	    cdf == NULL) {
		free(cdf);
		workload_free(w);
		return -ENOMEM;
	}
	for (uint32_t id = 0; id < nids; id++) {
		int n = snprintf(w->keys + (size_t)id * KEY_STRIDE, KEY_STRIDE, KEY_FORMAT, id);

		w->key_lens[id] = (uint8_t)n;	/* at most 35: the format is short */
		w->sizes[id] = draw_size(&size_rng);
		if (id < nkeys)
			w->working_set += w->sizes[id];
		else
			w->scan_bytes += w->sizes[id];
	}
	for (size_t i = 0; i < requests; i++) {
		if (i == middle) {
			for (uint32_t s = 0; s < nscan; s++)
				w->trace[t++] = nkeys + s;
			w->scan_end = t;
			w->after_end = t + nscan;
		}
		w->trace[t++] = zipf_draw(cdf, nkeys, uniform(&trace_rng));
	}
	free(cdf);
	return 0;
}

/* ---- the replay -------------------------------------------------------------------------- */

/* What the store holds: an entry embedded first, as in the proxy's struct object. */
struct bench_object {
	struct cache_entry entry;
	uint32_t id;
};

static void object_destroy(struct cache_entry *e)
{
	free((struct bench_object *)e);
}

/* Releases the replay threads all at once. */
struct start_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;		/* 0 waiting, 1 go, -1 abandon */
};

/* One replay thread's work and results; written only by that thread until it is joined.
 * Aligned to a cache line so that one thread's counters never share a line with another's
 * (that would slow the multi-threaded runs for a reason that is not the store's). */
struct replay {
	pthread_t thread;
	struct cache *cache;
	const struct workload *w;
	struct start_gate *gate;
	bool with_scan;		/* false: the burst's requests are skipped */
	size_t first, step;	/* this thread's slice: trace[first], trace[first + step], ... */
	struct tally tally;
	int error;		/* 0 or a negative errno */
} __attribute__((aligned(64)));

/* Replays one slice of the trace: a lookup per request, and on a miss an insert of a new
 * entry of the object's size. The replay holds no reference once a request is done. */
static void *replay_main(void *arg)
{
	struct replay *r = arg;
	const struct workload *w = r->w;
	struct tally *t = &r->tally;
	int state;

	pthread_mutex_lock(&r->gate->lock);
	while ((state = r->gate->state) == 0)
		pthread_cond_wait(&r->gate->cond, &r->gate->lock);
	pthread_mutex_unlock(&r->gate->lock);
	if (state < 0)
		return NULL;

	for (size_t i = r->first; i < w->ntrace; i += r->step) {
		uint32_t id = w->trace[i];
		const char *key = w->keys + (size_t)id * KEY_STRIDE;
		size_t key_len = w->key_lens[id];
		struct cache_entry *e;
		struct bench_object *obj;
		int result;

		if (id >= w->nkeys) {
			if (!r->with_scan)
				continue;
			t->scan_requests++;
		} else {
			t->requests++;
			t->bytes += w->sizes[id];
		}
		t->ops++;
		e = cache_lookup(r->cache, key, key_len);
		if (r->with_scan && i >= w->scan_end && i < w->after_end) {
			t->after_requests++;
			t->after_hits += e != NULL;
		}
		if (e) {
			t->hits++;
			t->hit_bytes += e->size;
			cache_entry_put(e);
			continue;
		}
		obj = malloc(sizeof(*obj));
		if (obj == NULL) {
			r->error = -ENOMEM;
			return NULL;
		}
		result = cache_entry_init(&obj->entry, key, key_len, object_destroy, NULL);
		if (result) {
			free(obj);
			r->error = result;
			return NULL;
		}
		obj->id = id;
		obj->entry.size = w->sizes[id];
		t->ops++;
		result = cache_insert(r->cache, &obj->entry);
		if (result == -E2BIG)
			t->too_big++;
		else if (result)
			r->error = result;
		cache_entry_put(&obj->entry);	/* the store holds its own, if it took it */
		if (r->error)
			return NULL;
	}
	return NULL;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Replays the trace (with or without the scan burst) against a new store of <capacity>
 * bytes and <policy> on <nthreads> threads, and frees the store. Sums the threads' tallies
 * into <sum> and sets *seconds to the wall time of the replay. Returns 0, -ENOMEM, a thread
 * creation error, or -EPROTO when the store's own counters disagree with the replay's
 * (a bug in the store). */
static int run(const struct workload *w, enum cache_policy policy, size_t capacity,
	       int nthreads, bool with_scan, struct tally *sum, double *seconds)
{
	struct start_gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	/* sizeof(*r) is a multiple of its alignment, as aligned_alloc() wants */
	struct replay *r = aligned_alloc(_Alignof(struct replay), (size_t)nthreads * sizeof(*r));
	struct cache *c = cache_new(capacity, policy);
	struct cache_stats st;
	int started = 0, result = 0;
	double t0, t1;

	memset(sum, 0, sizeof(*sum));
	if (r == NULL || c == NULL) {
		result = -ENOMEM;
		goto out;
	}
	memset(r, 0, (size_t)nthreads * sizeof(*r));
	for (; started < nthreads; started++) {
		struct replay *rp = &r[started];

		rp->cache = c;
		rp->w = w;
		rp->gate = &gate;
		rp->with_scan = with_scan;
		rp->first = (size_t)started;
		rp->step = (size_t)nthreads;
		result = -pthread_create(&rp->thread, NULL, replay_main, rp);
		if (result)
			break;
	}
	pthread_mutex_lock(&gate.lock);
	gate.state = result ? -1 : 1;
	t0 = now_seconds();
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	for (int i = 0; i < started; i++)
		pthread_join(r[i].thread, NULL);
	t1 = now_seconds();
	*seconds = t1 - t0;
	if (result)
		goto out;

	for (int i = 0; i < nthreads; i++) {
		const struct tally *t = &r[i].tally;

		if (r[i].error && result == 0)
			result = r[i].error;
		sum->requests += t->requests;
		sum->hits += t->hits;
		sum->bytes += t->bytes;
		sum->hit_bytes += t->hit_bytes;
		sum->scan_requests += t->scan_requests;
		sum->after_requests += t->after_requests;
		sum->after_hits += t->after_hits;
		sum->ops += t->ops;
		sum->too_big += t->too_big;
	}
	if (result)
		goto out;
	cache_get_stats(c, &st);
	if (st.lookups != sum->requests + sum->scan_requests || st.hits != sum->hits ||
	    st.bytes > st.capacity)
		result = -EPROTO;
out:
	cache_free(c);
	free(r);
	return result;
}

/* ---- other processes -------------------------------------------------------------------- */

/* What the cores did, to tell how much of them other processes took during the runs. */
struct load_sample {
	double wall;		/* seconds, CLOCK_MONOTONIC */
	double busy;		/* seconds all cores ran processes (user, nice, system) */
	double self;		/* seconds of CPU this process used */
};

/* Samples the load. Returns 0, or -ENOENT when /proc/stat cannot be read. */
static int load_sample(struct load_sample *ls)
{
	unsigned long long user, nice, system;
	struct rusage ru;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (f == NULL)
		return -ENOENT;
	n = fscanf(f, "cpu %llu %llu %llu", &user, &nice, &system);
	fclose(f);
	if (n != 3 || hz <= 0 || getrusage(RUSAGE_SELF, &ru))
		return -ENOENT;
	ls->wall = now_seconds();
	ls->busy = (double)(user + nice + system) / (double)hz;
	ls->self = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
		   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
	return 0;
}

/* The percentage of all cores' time between <a> and <b> that other processes used. */
static double other_load(const struct load_sample *a, const struct load_sample *b)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	double other = (b->busy - b->self) - (a->busy - a->self);
	double span = (b->wall - a->wall) * (double)(cores > 0 ? cores : 1);

	return span > 0 && other > 0 ? other / span * 100 : 0;
}

/* ---- the report -------------------------------------------------------------------------- */

/* Per policy and store size. */
struct result {
	size_t capacity;
	double object_hits;	/* ratios, 0..1 */
	double byte_hits;
	double after_scan_hits;	/* object hit ratio in the window after the burst */
	double mops[2];		/* lookups + inserts, millions per second: 1 thread, --threads */
	uint64_t too_big;
};

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0;
}

/* Writes <bytes> with a binary unit into <buf>. */
static const char *human(char *buf, size_t len, double bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
	return buf;
}

/* Parses "1,5,10,25" into up to MAX_CACHE_SIZES percentages in (0, 100]. Returns the count,
 * or -EINVAL. */
static int parse_percentages(const char *s, double *pct)
{
	int n = 0;

	for (;;) {
		char *end;
		double v;

		if (n == MAX_CACHE_SIZES)
			return -EINVAL;
		errno = 0;
		v = strtod(s, &end);
		if (end == s || errno || !(v > 0 && v <= 100))
			return -EINVAL;
		pct[n++] = v;
		if (*end == '\0')
			return n;
		if (*end != ',')
			return -EINVAL;
		s = end + 1;
	}
}

/* Measures one policy at one store size: hit ratios and single-threaded throughput from
 * <repeat> single-threaded runs, multi-threaded throughput from as many with <threads>
 * (the fastest run of each kind counts), the scan trace's hit ratio from one more run
 * (when there is a burst). Returns 0 or a negative errno, after saying which run failed. */
static int measure(const struct workload *w, enum cache_policy policy, size_t capacity,
		   int threads, int repeat, struct result *res)
{
	const int nthreads[2] = { 1, threads };
	struct tally t;
	double seconds, mops;
	int result;

	memset(res, 0, sizeof(*res));
	res->capacity = capacity;
	for (int k = 0; k < repeat; k++)
		for (int i = 0; i < 2; i++) {
			result = run(w, policy, capacity, nthreads[i], false, &t, &seconds);
			if (result)
				goto fail;
			if (k == 0 && i == 0) {
				res->object_hits = ratio(t.hits, t.requests);
				res->byte_hits = ratio(t.hit_bytes, t.bytes);
				res->too_big = t.too_big;
			}
			mops = seconds > 0 ? (double)t.ops / seconds / 1e6 : 0;
			if (mops > res->mops[i])
				res->mops[i] = mops;
		}
	if (w->nscan > 0) {
		result = run(w, policy, capacity, 1, true, &t, &seconds);
		if (result)
			goto fail;
		res->after_scan_hits = ratio(t.after_hits, t.after_requests);
	}
	return 0;
fail:
	fprintf(stderr, PROG ": %s store of %zu bytes: %s\n", cache_policy_names[policy], capacity,
		result == -EPROTO ? "the store's counters disagree with the replay"
				  : strerror(-result));
	return result;
}

static void print_row(enum cache_policy policy, double pct, const struct result *res,
		      bool scan)
{
	char size[32], scan_col[24] = "";

	if (scan)
		snprintf(scan_col, sizeof(scan_col), " %11.1f%%", res->after_scan_hits * 100);
	printf("%-7s %6g%% %11s %8.1f%% %8.1f%%%s %10.2f %10.2f\n", cache_policy_names[policy],
	       pct, human(size, sizeof(size), (double)res->capacity), res->object_hits * 100,
	       res->byte_hits * 100, scan_col, res->mops[0], res->mops[1]);
}

/* One line per store size: SIEVE's lead over LRU. */
static void print_verdict(double pct, const struct result *sieve, const struct result *lru,
			  int threads, bool scan)
{
	double speed = lru->mops[1] > 0 ? sieve->mops[1] / lru->mops[1] : 0;
	char scan_part[96] = "";

	if (scan)
		snprintf(scan_part, sizeof(scan_part), ", %+.1f after the scan",
			 (sieve->after_scan_hits - lru->after_scan_hits) * 100);
	printf("  %g%%: SIEVE hit ratio %+.1f points over LRU (bytes %+.1f%s); "
	       "lookups+inserts %.2fx %s with %d threads\n",
	       pct, (sieve->object_hits - lru->object_hits) * 100,
	       (sieve->byte_hits - lru->byte_hits) * 100, scan_part,
	       speed >= 1 || speed == 0 ? speed : 1 / speed,
	       speed >= 1 || speed == 0 ? "faster" : "slower", threads);
}

int main(int argc, char **argv)
{
	static const enum cache_policy policies[] = { CACHE_SIEVE, CACHE_LRU };
	struct settings s;
	struct workload w;
	struct load_sample load_before, load_after;
	struct result res[MAX_CACHE_SIZES][2];
	double pct[MAX_CACHE_SIZES], alpha;
	char err[512], ws[32], scan_bytes[32], threads_col[24], *end;
	uint32_t nscan;
	int nsizes, status = 2;
	bool scan, have_load;

	memset(&s, 0, sizeof(s));
	memset(&w, 0, sizeof(w));
	if (opts_set_defaults(options, &s, err, sizeof(err)) ||
	    opts_parse_args(options, &s, argc, argv, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (s.help) {
		printf("Usage: " PROG " [OPTION]...\n"
		       "Replays one synthetic Zipf trace against the cache store with SIEVE and\n"
		       "with LRU eviction, and prints hit ratios and throughput side by side.\n\n");
		opts_usage(options, stdout);
		status = 0;
		goto out;
	}
	if (s.version) {
		printf(PROG " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n");
		status = 0;
		goto out;
	}
	errno = 0;
	alpha = strtod(s.zipf, &end);
	if (end == s.zipf || *end || errno || !(alpha >= 0 && alpha <= MAX_ZIPF)) {
		fprintf(stderr, PROG ": bad value '%s' for zipf: expected a number from 0 to %g\n",
			s.zipf, MAX_ZIPF);
		goto out;
	}
	nsizes = parse_percentages(s.sizes, pct);
	if (nsizes < 0) {
		fprintf(stderr, PROG ": bad value '%s' for sizes: expected up to %d percentages "
			"in (0, 100], comma-separated\n", s.sizes, MAX_CACHE_SIZES);
		goto out;
	}
	nscan = (uint32_t)((uint64_t)s.keys * (uint64_t)s.scan / 100);
	scan = nscan > 0;
	status = 1;

	if (workload_build(&w, (uint32_t)s.keys, nscan, (size_t)s.requests, alpha,
			   (uint64_t)s.seed)) {
		fprintf(stderr, PROG ": out of memory for the workload\n");
		goto out;
	}
	printf("cache store, SIEVE against LRU: %d keys, %s working set (1-64 KiB objects, "
	       "median 8 KiB), %d requests, Zipf alpha %g, seed %d\n", s.keys,
	       human(ws, sizeof(ws), (double)w.working_set), s.requests, alpha, s.seed);
	if (scan)
		printf("scan trace: the same requests with %" PRIu32 " one-hit wonders (%s) "
		       "in one burst at the middle\n", nscan,
		       human(scan_bytes, sizeof(scan_bytes), (double)w.scan_bytes));
	snprintf(threads_col, sizeof(threads_col), "Mops/s %dT", s.threads);
	printf("\n%-7s %7s %11s %9s %9s%s %10s %10s\n", "policy", "cache", "size", "obj hit",
	       "byte hit", scan ? "  after scan" : "", "Mops/s 1T", threads_col);
	have_load = load_sample(&load_before) == 0;
	for (int i = 0; i < nsizes; i++) {
		size_t capacity = (size_t)((double)w.working_set * pct[i] / 100);

		for (int p = 0; p < 2; p++) {
			if (measure(&w, policies[p], capacity, s.threads, s.repeat, &res[i][p]))
				goto out;
			print_row(policies[p], pct[i], &res[i][p], scan);
			fflush(stdout);
		}
	}
	printf("\nobj hit, byte hit: of the requests, and of the bytes requested, served from "
	       "the store (one thread)%s\n"
	       "Mops/s: cache_lookup() + cache_insert() calls per second, in millions, the "
	       "fastest of %d runs\n",
	       scan ? ";\nafter scan: the object hit ratio of the scan trace's first requests "
		      "after the burst,\nas many as the burst had" : "", s.repeat);
	if (have_load && load_sample(&load_after) == 0) {
		double other = other_load(&load_before, &load_after);

		printf("other processes took %.0f%% of the cores' time meanwhile%s\n", other,
		       other > 10 ? ": WARNING, the Mops/s figures are not reliable" : "");
	}
	for (int i = 0, slower = 0; i < nsizes && !slower; i++)
		for (int p = 0; p < 2 && !slower; p++)
			if (res[i][p].mops[1] < res[i][p].mops[0]) {
				printf("note: some stores did fewer operations per second with %d "
				       "threads than with one: their locks contend\n", s.threads);
				slower = 1;
			}
	for (int i = 0; i < nsizes; i++) {
		if (res[i][0].too_big || res[i][1].too_big)
			printf("  %g%%: objects larger than the store were not stored\n", pct[i]);
		print_verdict(pct[i], &res[i][0], &res[i][1], s.threads, scan);
	}
	status = 0;
out:
	workload_free(&w);
	opts_free(options, &s);
	return status;
}

/* zipf.h - which URL a request takes: a small random generator and a Zipf sampler.
 *
 * A load generator that asks for every URL equally often shows a cache at its worst or, with
 * few URLs, at its best; real traffic is skewed: the k-th most popular object is asked for
 * in proportion to 1 / k^s (Zipf's law, s around 0.6 to 1.2 for web objects). zipf_next()
 * draws ranks 1..n with exactly those probabilities in O(1) time and memory, whatever n is,
 * by rejection-inversion (W. Hörmann and G. Derflinger, "Rejection-inversion to generate
 * variates from monotone discrete distributions", 1996). s = 0 is the uniform distribution.
 *
 * Threads: a struct zipf is read-only after zipf_init() and may be shared; a struct zipf_rng
 * belongs to one thread.
 */
#ifndef MTPS_BENCH_ZIPF_H
#define MTPS_BENCH_ZIPF_H

#include <stdint.h>

/* xoshiro256** : fast, good enough for sampling, reproducible from a seed. */
struct zipf_rng {
	uint64_t s[4];
};

void zipf_rng_seed(struct zipf_rng *r, uint64_t seed);
uint64_t zipf_rng_next(struct zipf_rng *r);
/* A double uniform in [0, 1). */
double zipf_rng_double(struct zipf_rng *r);

struct zipf {
	uint64_t n;
	double s;
	double h_integral_x1, h_integral_n, threshold;	/* constants of the method */
};

/* Prepares sampling ranks 1..<n> (n >= 1) with exponent <s> (0 <= s <= 100).
 * Returns 0 or -EINVAL. */
int zipf_init(struct zipf *z, uint64_t n, double s);

/* Draws a rank in 1..n: rank k with probability k^-s / sum(j^-s, j = 1..n). */
uint64_t zipf_next(const struct zipf *z, struct zipf_rng *r);

/* The exact probability of rank <k>, for tests and reports (O(n)). */
double zipf_probability(const struct zipf *z, uint64_t k);

#endif

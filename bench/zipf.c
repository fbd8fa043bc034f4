/* zipf.c - xoshiro256** and rejection-inversion Zipf sampling (see zipf.h).
 *
 * The idea of rejection-inversion: the probabilities k^-s fall monotonically, so the
 * continuous hat function h(x) = x^-s, integrated over [k - 1/2, k + 1/2], is at least the
 * probability mass of rank k (h is convex). Drawing u uniformly under the hat's integral H
 * between 1.5 (minus the first rank's full mass) and n + 1/2, then inverting H, gives x; its
 * nearest integer k is accepted when u falls inside k's own share, which is almost always.
 * No table is needed, so n may be 10^9 as cheaply as 10. The helpers keep (e^x - 1) / x and
 * log(1 + x) / x accurate near x = 0, which is where s = 1 puts them.
 */
#include "config.h"

#include "zipf.h"

#include <errno.h>
#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void zipf_rng_seed(struct zipf_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t zipf_rng_next(struct zipf_rng *r)
{
	uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double zipf_rng_double(struct zipf_rng *r)
{
	return (double)(zipf_rng_next(r) >> 11) * 0x1.0p-53;
}

/* log1p(x) / x, accurate near 0 */
static double helper1(double x)
{
	if (fabs(x) > 1e-8)
		return log1p(x) / x;
	return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

/* expm1(x) / x, accurate near 0 */
static double helper2(double x)
{
	if (fabs(x) > 1e-8)
		return expm1(x) / x;
	return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

/* H(x) = (x^(1-s) - 1) / (1 - s), or log(x) when s = 1 */
static double h_integral(const struct zipf *z, double x)
{
	double lx = log(x);

	return helper2((1.0 - z->s) * lx) * lx;
}

static double h(const struct zipf *z, double x)
{
	return exp(-z->s * log(x));
}

static double h_integral_inverse(const struct zipf *z, double x)
{
	double t = x * (1.0 - z->s);

	if (t < -1.0)
		t = -1.0;	/* rounding could take it past the pole */
	return exp(helper1(t) * x);
}

int zipf_init(struct zipf *z, uint64_t n, double s)
{
	if (n < 1 || !(s >= 0.0 && s <= 100.0))
		return -EINVAL;
	z->n = n;
	z->s = s;
	z->h_integral_x1 = h_integral(z, 1.5) - 1.0;
	z->h_integral_n = h_integral(z, (double)n + 0.5);
	z->threshold = 2.0 - h_integral_inverse(z, h_integral(z, 2.5) - h(z, 2.0));
	return 0;
}

uint64_t zipf_next(const struct zipf *z, struct zipf_rng *r)
{
	if (z->s == 0.0 || z->n == 1)
		return 1 + zipf_rng_next(r) % z->n;	/* bias below 2^-40 for n < 2^24 */
	for (;;) {
		double u = z->h_integral_n + zipf_rng_double(r) *
					     (z->h_integral_x1 - z->h_integral_n);
		double x = h_integral_inverse(z, u);
		uint64_t k;

		if (x < 1.5)
			k = 1;
		else if (x >= (double)z->n)
			k = z->n;
		else
			k = (uint64_t)(x + 0.5);
		if ((double)k - x <= z->threshold ||
		    u >= h_integral(z, (double)k + 0.5) - h(z, (double)k))
			return k;
	}
}

double zipf_probability(const struct zipf *z, uint64_t k)
{
	double sum = 0.0;

	if (k < 1 || k > z->n)
		return 0.0;
	for (uint64_t j = z->n; j >= 1; j--)	/* smallest terms first */
		sum += pow((double)j, -z->s);
	return pow((double)k, -z->s) / sum;
}

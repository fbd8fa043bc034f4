/* pattern.c - the deterministic /api/large byte stream (see pattern.h). */
#include "config.h"

#include <string.h>

#include "pattern.h"

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Word w as 8 little-endian bytes, so the stream is the same on every host. */
static void word_bytes(uint64_t w, unsigned char out[8])
{
	uint64_t v = splitmix64(w);

	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)(v >> (8 * i));
}

void pattern_fill(void *buf, uint64_t offset, size_t len)
{
	unsigned char *p = buf;
	unsigned char word[8];
	uint64_t w = offset / 8;
	size_t skip = offset % 8;

	while (len > 0) {
		size_t n = 8 - skip;

		if (n > len)
			n = len;
		word_bytes(w++, word);
		memcpy(p, word + skip, n);
		p += n;
		len -= n;
		skip = 0;
	}
}

size_t pattern_check(const void *buf, uint64_t offset, size_t len)
{
	const unsigned char *p = buf;
	unsigned char chunk[4096];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(chunk) ? len - done : sizeof(chunk);

		pattern_fill(chunk, offset + done, n);
		if (memcmp(chunk, p + done, n) != 0) {
			for (size_t i = 0; i < n; i++)
				if (chunk[i] != p[done + i])
					return done + i;
		}
		done += n;
	}
	return len;
}

/* urls.h - the set of URLs a load draws from: literal URLs and numbered patterns.
 *
 * "http://h:8080/item/{1..100000}" stands for 100000 URLs without storing them; a set holds
 * any mix of literals and patterns (one {A..B} range each, A <= B) and numbers its members
 * 0..count-1 in the order they were added, so a popularity rank maps to one URL. The first
 * member is the most popular under Zipf.
 *
 * Threads: built by one thread, then read-only (urls_get() may run on many threads).
 */
#ifndef MTPS_BENCH_URLS_H
#define MTPS_BENCH_URLS_H

#include <stddef.h>
#include <stdint.h>

#define URLS_MAX_ENTRIES 4096	/* lines of a --urls file, -u options */
#define URLS_MAX_LEN 2048	/* one URL, expanded */

struct urls_entry {
	char *prefix;		/* the whole URL of a literal */
	char *suffix;		/* NULL for a literal */
	uint64_t lo, count;	/* pattern: lo .. lo + count - 1; literal: count 1 */
};

struct urls {
	struct urls_entry *v;
	size_t n;
	uint64_t total;		/* members in all */
};

/* Adds one URL or pattern (must start with http:// or https://). Returns 0, -ENOMEM, or
 * -EINVAL with the reason worded into <err>. */
int urls_add(struct urls *u, const char *text, char *err, size_t errlen);

/* Adds every line of <path> (blank lines and lines starting with '#' are skipped). Errors
 * read "FILE:LINE: what is wrong". Returns 0 or a negative errno. */
int urls_add_file(struct urls *u, const char *path, char *err, size_t errlen);

/* Writes member <index> (< u->total) to <buf>. Returns its length, or -ENOSPC when <len> is
 * too short, or -EINVAL when <index> is out of range. */
int urls_get(const struct urls *u, uint64_t index, char *buf, size_t len);

void urls_free(struct urls *u);

#endif

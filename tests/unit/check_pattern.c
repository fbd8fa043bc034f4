/* Unit tests for common/pattern.c: the /api/large byte stream. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "pattern.h"

#define LEN 100003	/* not a multiple of 8 */

/* Filling in pieces at odd offsets gives the same bytes as one fill. */
START_TEST(test_pieces_equal_whole)
{
	unsigned char *whole = malloc(LEN), *pieces = malloc(LEN);
	size_t off = 0, step = 1;

	pattern_fill(whole, 0, LEN);
	while (off < LEN) {
		size_t n = step < LEN - off ? step : LEN - off;

		pattern_fill(pieces + off, off, n);
		off += n;
		step = step * 3 + 1;
	}
	ck_assert(memcmp(whole, pieces, LEN) == 0);
	ck_assert_uint_eq(pattern_check(whole, 0, LEN), LEN);
	ck_assert_uint_eq(pattern_check(whole + 777, 777, LEN - 777), LEN - 777);
	free(whole);
	free(pieces);
}
END_TEST

/* A shifted or corrupted block is caught, at the right place. */
START_TEST(test_check_finds_errors)
{
	unsigned char *buf = malloc(LEN);

	pattern_fill(buf, 0, LEN);
	buf[5000] ^= 1;
	ck_assert_uint_eq(pattern_check(buf, 0, LEN), 5000);
	pattern_fill(buf, 0, LEN);
	ck_assert_uint_lt(pattern_check(buf, 8, LEN - 8), 8);	/* off by a word */
	ck_assert_uint_lt(pattern_check(buf, 4096, LEN - 4096), 8);	/* off by a block */
	free(buf);
}
END_TEST

/* The stream is fixed forever: instances and versions must agree on it. These are
 * splitmix64(0) as little-endian bytes, computed independently. */
START_TEST(test_known_bytes)
{
	static const unsigned char first[8] = { 0xaf, 0xcd, 0x1d, 0x7b, 0x39, 0xa8, 0x20, 0xe2 };
	unsigned char buf[8];

	pattern_fill(buf, 0, 8);
	ck_assert_msg(memcmp(buf, first, 8) == 0,
		      "first bytes %02x %02x %02x %02x %02x %02x %02x %02x", buf[0], buf[1],
		      buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]);
}
END_TEST

static Suite *pattern_suite(void)
{
	Suite *s = suite_create("pattern");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_pieces_equal_whole);
	tcase_add_test(tc, test_check_finds_errors);
	tcase_add_test(tc, test_known_bytes);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(pattern_suite)

/* pattern.h - the deterministic byte stream behind the origin's /api/large.
 *
 * Byte i of the stream is a pure function of i, so any instance produces the same bytes for
 * the same size, a client can check a download without a reference copy, and a chunk that
 * arrives at the wrong offset (or twice) is caught: every 8-byte word is a splitmix64 hash
 * of its index, so the stream has no short period.
 */
#ifndef MTPS_PATTERN_H
#define MTPS_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Writes bytes [offset, offset + len) of the stream to <buf>. */
void pattern_fill(void *buf, uint64_t offset, size_t len);

/* Returns the offset of the first byte in <buf> that differs from the stream at <offset>,
 * relative to <buf>, or <len> when all of them match. */
size_t pattern_check(const void *buf, uint64_t offset, size_t len);

#endif

/* pace.h - the send schedule of an open-loop (fixed rate) load: when request i is due.
 *
 * Request i is due at start + i / rate, computed from i each time, so rounding never adds up
 * to drift. A sender that falls behind (every connection busy) still owes the requests that
 * fell due; it sends them as soon as it can and measures each one's latency from the time it
 * was DUE, not from when it went out: a server that stalls for a second then shows a second
 * of latency on every request it delayed, as users would see it, instead of one slow request
 * and a pause ("coordinated omission", the correction wrk2 makes).
 *
 * Times are microseconds on any monotonic clock. Threads: one struct pace per sender.
 */
#ifndef MTPS_BENCH_PACE_H
#define MTPS_BENCH_PACE_H

#include <stdbool.h>
#include <stdint.h>

struct pace {
	uint64_t start_us;
	double rate;		/* requests per second, > 0 */
	uint64_t sent;		/* how many due times were taken */
};

/* Starts a schedule of <rate> requests per second (> 0) whose first is due at <start_us>.
 * Returns 0 or -EINVAL. */
int pace_init(struct pace *p, double rate, uint64_t start_us);

/* When request <i> (0-based) is due. */
uint64_t pace_due(const struct pace *p, uint64_t i);

/* The due time of the next request not yet taken. */
uint64_t pace_next_due(const struct pace *p);

/* When the next request is due at or before <now_us>, stores its due time in *due_us, counts
 * it as taken and returns true; else returns false. */
bool pace_take(struct pace *p, uint64_t now_us, uint64_t *due_us);

/* How many requests are due at <now_us> and not yet taken (the backlog). */
uint64_t pace_backlog(const struct pace *p, uint64_t now_us);

#endif

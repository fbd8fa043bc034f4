/* load.h - the load generator: libcurl multi on a few threads, many keep-alive connections.
 *
 * Each thread owns one multi handle and connections/threads easy handles; a connection that
 * finishes a request starts the next one on the same (kept-alive) connection. Closed loop
 * (rate 0): every connection sends its next request as soon as the last one is answered, so
 * the server sets the pace. Open loop (rate > 0): requests fall due at a fixed rate
 * (pace.h) and go out on whichever connection is free; latency counts from the due time,
 * so a stalled server is not flattered by the requests it kept from being sent.
 *
 * Threads: load_run() blocks its caller and starts <threads> threads of its own; it may run
 * on any thread, more than one at a time (each with its own config and stats). libcurl must
 * have been initialised (curl_global_init) by the program.
 */
#ifndef MTPS_BENCH_LOAD_H
#define MTPS_BENCH_LOAD_H

#include <stdint.h>

#include "stats.h"
#include "urls.h"

#define LOAD_MAX_CONNECTIONS 10000
#define LOAD_MAX_THREADS 64

struct load_config {
	const struct urls *urls;	/* what to ask for; at least one member */
	double zipf_s;			/* popularity: 0 uniform, else Zipf with this exponent */
	unsigned connections;		/* 1..LOAD_MAX_CONNECTIONS */
	unsigned threads;		/* 1..LOAD_MAX_THREADS; at most connections */
	double rate;			/* 0: closed loop; else requests per second in all */
	uint64_t duration_ms;		/* stop sending after this long; 0: no limit */
	uint64_t count;			/* stop after this many requests; 0: no limit */
	uint64_t timeout_ms;		/* one request's limit; 0: none */
	uint64_t seed;			/* of the URL choice, so that runs can be repeated */
};

/* Runs the load described by <c> (one of duration_ms and count must be set) and adds what it
 * measured into <out> (elapsed_us: the run's length). Requests still in flight when the
 * duration ends are abandoned and not counted. Returns 0, or -EINVAL / -ENOMEM with <err>
 * set (nothing was sent). */
int load_run(const struct load_config *c, struct stats *out, char *err, size_t errlen);

/* Microseconds on CLOCK_MONOTONIC. */
uint64_t load_now_us(void);

#endif

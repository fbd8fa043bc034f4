/* load.h - a steady load for integration tests: a few threads GET one URL in a loop until
 * stopped, counting each answer by the origin that served it, so a test can change
 * something under load (stop an origin, reload the proxy) and then check that no request
 * failed and where they went.
 */
#ifndef MTPS_TEST_LOAD_H
#define MTPS_TEST_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "http_client.h"

#define LOAD_MAX_THREADS 8
#define LOAD_MAX_ORIGINS 8

/* Which origin served <r>: 0 .. LOAD_MAX_ORIGINS - 1, or -1 when none the test knows. */
typedef int load_origin_fn(const struct http_reply *r);

struct load {
	char url[256];
	load_origin_fn *origin;
	atomic_bool stop;
	atomic_long total;		/* answers, of every kind */
	atomic_long failed;		/* no answer, or not a 200 */
	atomic_long served[LOAD_MAX_ORIGINS];	/* 200s, by origin */
	atomic_long unknown;		/* 200s from none of the origins */
	pthread_mutex_t lock;
	char first_failure[256];	/* lock */
	pthread_t threads[LOAD_MAX_THREADS];
	int nthreads;
};

/* Starts <threads> threads that GET <url> until load_stop(). */
void load_start(struct load *l, const char *url, int threads, load_origin_fn *origin);

/* Waits until the load has made <n> more requests than <from>, failing the test after
 * <timeout_ms>. */
void load_wait(struct load *l, long from, long n, unsigned timeout_ms);

/* Stops the threads and waits for them. */
void load_stop(struct load *l);

#endif

/* load.c - a steady load for integration tests (see load.h). */
#include "config.h"

#include "load.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <check.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *load_main(void *arg)
{
	struct load *l = arg;

	while (!atomic_load(&l->stop)) {
		struct http_reply r;
		int ret = http_get(l->url, &r), i;

		if (ret != 0 || r.status != 200) {
			pthread_mutex_lock(&l->lock);
			if (atomic_fetch_add(&l->failed, 1) == 0)
				snprintf(l->first_failure, sizeof(l->first_failure),
					 "curl error %d, status %ld: %.160s", r.curl_code, r.status,
					 r.body ? r.body : "");
			pthread_mutex_unlock(&l->lock);
		} else if ((i = l->origin(&r)) >= 0 && i < LOAD_MAX_ORIGINS) {
			atomic_fetch_add(&l->served[i], 1);
		} else {
			atomic_fetch_add(&l->unknown, 1);
		}
		atomic_fetch_add(&l->total, 1);
		http_reply_free(&r);
	}
	return NULL;
}

void load_start(struct load *l, const char *url, int threads, load_origin_fn *origin)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->url, sizeof(l->url), "%s", url);
	l->origin = origin;
	pthread_mutex_init(&l->lock, NULL);
	ck_assert_int_le(threads, LOAD_MAX_THREADS);
	for (l->nthreads = 0; l->nthreads < threads; l->nthreads++)
		ck_assert_int_eq(pthread_create(&l->threads[l->nthreads], NULL, load_main, l), 0);
}

void load_wait(struct load *l, long from, long n, unsigned timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;

	while (atomic_load(&l->total) < from + n) {
		ck_assert_msg(now_ms() < deadline, "the load made %ld requests in %u ms, want %ld",
			      atomic_load(&l->total) - from, timeout_ms, n);
		poll(NULL, 0, 5);
	}
}

void load_stop(struct load *l)
{
	atomic_store(&l->stop, true);
	for (int i = 0; i < l->nthreads; i++)
		pthread_join(l->threads[i], NULL);
	pthread_mutex_destroy(&l->lock);
}

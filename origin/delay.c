/* delay.c - the timer queue (see delay.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "delay.h"

struct delay_item {
	uint64_t due_ms;
	uint64_t seq;		/* ties keep insertion order */
	delay_fn *fn;
	void *arg;
};

struct delay {
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* signalled when an earlier item arrives or on stop */
	pthread_t thread;
	struct delay_item *heap;	/* guarded by lock */
	size_t count;
	size_t cap;
	uint64_t seq;
	bool stopping;
};

uint64_t delay_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool before(const struct delay_item *a, const struct delay_item *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void swap(struct delay_item *a, struct delay_item *b)
{
	struct delay_item t = *a;

	*a = *b;
	*b = t;
}

/* Removes and returns the earliest item. Caller holds the lock; count > 0. */
static struct delay_item pop(struct delay *d)
{
	struct delay_item top = d->heap[0];
	size_t i = 0;

	d->heap[0] = d->heap[--d->count];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < d->count && before(&d->heap[l], &d->heap[m]))
			m = l;
		if (r < d->count && before(&d->heap[r], &d->heap[m]))
			m = r;
		if (m == i)
			break;
		swap(&d->heap[i], &d->heap[m]);
		i = m;
	}
	return top;
}

static void *delay_thread(void *arg)
{
	struct delay *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		uint64_t now;

		if (d->count == 0) {
			pthread_cond_wait(&d->wake, &d->lock);
			continue;
		}
		now = delay_now_ms();
		if (d->heap[0].due_ms > now) {
			struct timespec until;
			uint64_t due = d->heap[0].due_ms;

			until.tv_sec = (time_t)(due / 1000);
			until.tv_nsec = (long)(due % 1000) * 1000000;
			pthread_cond_timedwait(&d->wake, &d->lock, &until);
			continue;
		}
		struct delay_item it = pop(d);

		pthread_mutex_unlock(&d->lock);
		it.fn(it.arg);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

struct delay *delay_start(size_t cap)
{
	struct delay *d = calloc(1, sizeof(*d));
	pthread_condattr_t attr;
	int r;

	if (d == NULL)
		return NULL;
	d->cap = cap;
	d->heap = calloc(cap ? cap : 1, sizeof(*d->heap));
	if (d->heap == NULL) {
		free(d);
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);	/* due times are monotonic */
	pthread_cond_init(&d->wake, &attr);
	pthread_condattr_destroy(&attr);
	r = pthread_create(&d->thread, NULL, delay_thread, d);
	if (r) {
		pthread_cond_destroy(&d->wake);
		pthread_mutex_destroy(&d->lock);
		free(d->heap);
		free(d);
		errno = r;
		return NULL;
	}
	return d;
}

int delay_add(struct delay *d, uint64_t due_ms, delay_fn *fn, void *arg)
{
	size_t i;

	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		pthread_mutex_unlock(&d->lock);
		return -ESHUTDOWN;
	}
	if (d->count == d->cap) {
		pthread_mutex_unlock(&d->lock);
		return -ENOSPC;
	}
	i = d->count++;
	d->heap[i] = (struct delay_item){ due_ms, d->seq++, fn, arg };
	while (i > 0 && before(&d->heap[i], &d->heap[(i - 1) / 2])) {
		swap(&d->heap[i], &d->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	if (i == 0)
		pthread_cond_signal(&d->wake);	/* the earliest changed: re-arm the wait */
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void delay_shutdown(struct delay *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	d->stopping = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	/* delay_add() refuses everything now, so the heap only shrinks */
	pthread_mutex_lock(&d->lock);
	while (d->count > 0) {
		struct delay_item it = pop(d);

		pthread_mutex_unlock(&d->lock);
		it.fn(it.arg);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
}

void delay_free(struct delay *d)
{
	if (d == NULL)
		return;
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
	free(d->heap);
	free(d);
}
